#include "controllers/allocator.h"

#ifdef KUBEFOLD_USES_JEMALLOC
#include <jemalloc/jemalloc.h>
#else
#include <malloc.h>
#endif

namespace kubefold::controllers {

bool ReleaseFreedMemory() {
#ifdef KUBEFOLD_USES_JEMALLOC
  static_assert(MALLCTL_ARENAS_ALL == 4096);
  return mallctl("thread.tcache.flush", nullptr, nullptr, nullptr, 0) == 0 &&
         mallctl("arena.4096.purge", nullptr, nullptr, nullptr, 0) == 0;
#else
  (void)::malloc_trim(0);  // 0 only says nothing was left to return
  return true;
#endif
}

}  // namespace kubefold::controllers
