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
//
// narenas:2 (jemalloc's default is 4 per core: 8 here): kubefold's memory
// moves between threads — cpprestsdk's threads allocate what the watch
// threads decode and free, the watch threads allocate what the writer keeps
// — and with many arenas each keeps its own freed pages, so memory freed in
// one arena is faulted in afresh in another. The watch path (watch_bench,
// 5,000 Deployments of 4.4 KB streamed through a reflector) took 39-44 us of
// CPU per event with 8 arenas and 34-36 us with 2, same binary, alternating
// runs; the single-threaded fold is unchanged within noise. glibc builds are
// capped at two arenas the same way (operator/main.cpp).
extern "C" {
// NOLINTNEXTLINE: the name is jemalloc's.
extern const char* malloc_conf;
const char* malloc_conf = "oversize_threshold:1048576,narenas:2";
}
