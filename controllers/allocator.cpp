#include "controllers/allocator.h"

#ifdef KUBEFOLD_USES_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

namespace kubefold::controllers {

void ReleaseFreedMemory() {
#ifdef KUBEFOLD_USES_JEMALLOC
  // Failures leave the pages with jemalloc, which decays them on its own.
  (void)mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0);
  static_assert(MALLCTL_ARENAS_ALL == 4096);
  (void)mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0);
#else
  (void)::malloc_trim(0);
#endif
}

}  // namespace kubefold::controllers
