// RecordHeap: the blocks workload records live in.
//
// Why not malloc? Records are most of a store's memory: a pruned Deployment
// is a few hundred bytes to a few KiB, and a few hundred once compressed
// (the operator's default). Above 128 bytes jemalloc's size classes are a
// quarter of a power of two apart: 64 bytes between 256 and 512, 128
// between 512 and 1,024, so a record lost 32 to 64 bytes to rounding on
// average. In state_bench a 387-byte record took a 448-byte block: 61
// bytes per workload, and again per retained change. Here records of 129
// to 1,024 bytes are carved from 32 KiB slabs at 8-byte steps (a 392-byte
// block), which loses 3.5 bytes on average, plus the slab's header and the
// tail no block fits in, shared by the slab's blocks: at most a thirty-first
// of a block each (a slab holds 31 or more), 3 bytes for a 392-byte one.
// Smaller and larger records stay malloc's: below 129 bytes its classes are
// 16 bytes apart already, and above 1,024 a slab would hold too few.
//
// What classes keep: one slab each once used (at most 112 classes, 3.5 MiB
// if records of every size from 129 to 1,024 bytes have been stored).
//
// Freeing writes the slab's header, which for a record retired long ago is
// a cache miss: the reclaimer prefetches it a few records ahead
// (PrefetchFree), as it does the records' own headers.
//
// Memory goes back: a slab whose last block is freed returns to malloc,
// unless it is the one its class is carving from. A class's partly used
// slabs are reused before a new one is taken, so, as with malloc's own
// slabs, what a churning store can strand is partly used slabs.
//
// Records are created on any thread (a watcher builds its batch) and freed
// on the writer (the reclaimer) or wherever an unapplied batch dies: each
// size class has its own lock, held for a few instructions.
//
// Under AddressSanitizer every block is malloc's, so use-after-free and
// overflows are still caught.
//
// Thread-safety: every function may be called from any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kubefold::state::internal {

class RecordHeap {
 public:
  static constexpr size_t kGrain = 8;
  static constexpr size_t kMinCarved = 129;
  static constexpr size_t kMaxCarved = 1024;
  static constexpr size_t kSlabHeaderBytes = 64;
  static constexpr size_t kSlabBytes = 32 * 1024;  // aligned to its size: at least 31 blocks

  // Starts fetching what freeing `p` will write besides the block: its
  // slab's header. `p` may be any record, carved or not (a prefetch of
  // memory that is not a slab only costs the fetch).
  static void PrefetchFree(const void* p) {
    __builtin_prefetch(reinterpret_cast<const void*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kSlabBytes - 1}), 1);
  }

  // A block of at least `bytes`, 8-byte aligned. Throws std::bad_alloc.
  static void* Alloc(size_t bytes);
  // REQUIRES: `bytes` is what was passed to Alloc for `p`.
  static void Free(void* p, size_t bytes);

  // True when blocks of `bytes` are carved here (false under ASan).
  static bool Carves(size_t bytes);

  struct Counts {
    uint64_t slabs = 0;         // slabs held, all classes
    uint64_t blocks = 0;        // carved blocks in use
    uint64_t block_bytes = 0;   // their sizes (class sizes, not requests)
    // Slab bytes holding no block in use: free blocks, tails, headers.
    uint64_t free_bytes() const { return slabs * kSlabBytes - block_bytes; }
  };
  // Locks each class in turn: a consistent figure per class, not across
  // classes while other threads allocate.
  static Counts Count();
};

}  // namespace kubefold::state::internal
