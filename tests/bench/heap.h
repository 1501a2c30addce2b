#pragma once
// The process heap as the allocator in use reports it: jemalloc in plain
// builds (KUBEFOLD_USES_JEMALLOC, CMakeLists.txt "Allocator"), else the C
// library's malloc. Benchmarks read memory through these, never through
// one allocator's interface, so their figures mean the same under either.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

#ifdef KUBEFOLD_USES_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

namespace kubefold::bench {

#ifdef KUBEFOLD_USES_JEMALLOC
// mallctl, or an error naming the control: a figure read from a failed call
// would be a silent zero.
inline void Mallctl(const char* name, void* out, size_t* out_len, void* in, size_t in_len) {
  if (const int rc = mallctl(name, out, out_len, in, in_len); rc != 0) {
    throw std::runtime_error(std::string("mallctl(\"") + name + "\") failed with error " + std::to_string(rc));
  }
}
#endif

// Bytes the allocator has handed out and not had back, every thread and
// arena (jemalloc: stats.allocated, refreshed; glibc: mallinfo2's in-use
// chunks plus mmapped ones).
inline size_t HeapInUse() {
#ifdef KUBEFOLD_USES_JEMALLOC
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  Mallctl("epoch", &epoch, &len, &epoch, len);  // refreshes the statistics
  size_t allocated = 0;
  len = sizeof(allocated);
  Mallctl("stats.allocated", &allocated, &len, nullptr, 0);
  return allocated;
#else
  const struct mallinfo2 m = ::mallinfo2();
  return m.uordblks + m.hblkhd;
#endif
}

// Hands the allocator's free pages back to the kernel, so RSS shows what is
// live rather than what the allocator keeps for reuse (jemalloc: purge every
// arena after flushing this thread's cache; glibc: malloc_trim).
inline void ReleaseFreedMemory() {
#ifdef KUBEFOLD_USES_JEMALLOC
  Mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  Mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);  // 4096: MALLCTL_ARENAS_ALL
#else
  ::malloc_trim(0);
#endif
}

}  // namespace kubefold::bench
