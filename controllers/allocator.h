// The process allocator, as far as the control loops need it.
#pragma once

namespace kubefold::controllers {

// Hands the allocator's free pages back to the kernel, so that memory a
// burst freed (a relist's decoded objects) stops counting as resident:
// jemalloc purges every arena after flushing this thread's cache; glibc's
// malloc trims its heaps. Costs a few milliseconds per hundred MB purged; the
// Folder calls it after large relists only. False when the allocator
// refused (the pages then stay with it until they decay on their own).
bool ReleaseFreedMemory();

}  // namespace kubefold::controllers
