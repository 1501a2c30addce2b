// jemalloc's start-up options for every kubefold program linked with it
// (CMakeLists.txt, "Allocator"). jemalloc reads this symbol once, before the
// first allocation; the MALLOC_CONF environment variable is applied after it
// and so still overrides any option here.
//
// oversize_threshold: allocations of 1 MiB and more (HTTP bodies, list
// pages, decode buffers) come from jemalloc's dedicated arena, which returns
// freed pages to the kernel at once. jemalloc's default (8 MiB) keeps the
// freed buffers of a growing 1-8 MiB body resident for its 10 s decay, so an
// oversized list read raised peak RSS by 40-62 MB where 23 MB is live
// (bad_input_test). Folding never allocates that large: the writer's speed
// is unchanged (journal_bench BM_Fold, medians within run-to-run noise).
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
extern const char* malloc_conf;
const char* malloc_conf = "oversize_threshold:1048576";
}
