// NodePool: the writer's free lists for tree nodes and subtree objects, and
// exact-size blocks for the largest nodes.
//
// Why not plain malloc? The writer frees in bursts (everything one snapshot
// kept alive goes at once when it dies), which overflows glibc's per-thread
// cache and sends every free down its slow path: 28% of fold time at 1M
// workloads. All of these objects are allocated and freed by the one writer
// thread, so exact-size free lists with no locking serve them from recently
// touched memory. Each list of malloc's blocks is capped, so a burst returns
// the excess to malloc instead of holding it forever.
//
// Why carve the larger sizes? jemalloc's size classes are 32 bytes apart
// between 128 and 256 (64 between 256 and 512), so a full or nearly full
// 16-wide trie node (136-144 bytes) took a 160-byte block, and every change
// to a large namespace copies two or three of them and keeps the old ones
// with history. Sizes from 129 bytes are carved from 64 KiB chunks
// instead, back to back, except that a block is never placed where it
// would touch one more cache line than its size needs: a 144-byte node at
// an offset of 56 in a line is moved 8 bytes on. (For 32-wide nodes of
// 264-280 bytes, placed without that skip, the sixth line cost 4% of fold
// throughput at 1M workloads.) Carving from 129 rather than only the
// largest sizes saved 25 bytes per retained change at 1M workloads, with
// fold throughput unchanged beyond noise. Carved blocks never go back to
// malloc: their free list keeps, per size, the most that were alive at
// once. Smaller sizes stay malloc's: its classes are 16 bytes apart there.
//
// Under AddressSanitizer the pool is bypassed so use-after-free is still
// caught.
//
// Thread-safety: writer thread only (and the destructor, when nothing else
// uses the pool).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <vector>

namespace kubefold::state::internal {

class NodePool {
 public:
  static constexpr size_t kGrain = 8;
  // A full 32-wide node is 272 bytes; a namespace object with a 253-byte
  // name, 278.
  static constexpr size_t kMaxPooledBytes = 280;
  static constexpr size_t kMaxFreePerClass = 8192;        // malloc's blocks
  static constexpr size_t kCarvedFrom = 129;              // sizes carved from chunks
  static constexpr size_t kChunkBytes = 64 * 1024;
  static constexpr size_t kLine = 64;

  NodePool() = default;
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;
  ~NodePool() {
    for (size_t cls = 0; cls < free_.size(); ++cls)
      if (!Carved(cls))
        for (void* p : free_[cls]) std::free(p);
    for (void* c : chunks_) std::free(c);
  }

  void* Alloc(size_t bytes) {  // NOLINT
#if !defined(__SANITIZE_ADDRESS__)
    if (bytes <= kMaxPooledBytes) {
      const size_t cls = Class(bytes);
      auto& list = free_[cls];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        free_bytes_ -= cls * kGrain;
        // Pooled blocks come back from freed, cold snapshots and the caller
        // writes the whole block at once: start fetching the block this
        // class hands out next, so that miss overlaps the caller's work.
        if (!list.empty()) {
          const char* next = static_cast<const char*>(list.back());
          for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(next + off, 1);
        }
        return p;
      }
      if (Carved(cls)) return Carve(cls * kGrain);
      bytes = cls * kGrain;  // so the block can serve its whole class
    }
#endif
    void* p = std::malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }

  // REQUIRES: `bytes` is what was passed to Alloc for `p`.
  void Free(void* p, [[maybe_unused]] size_t bytes) {
#if !defined(__SANITIZE_ADDRESS__)
    if (bytes <= kMaxPooledBytes) {
      const size_t cls = Class(bytes);
      auto& list = free_[cls];
      if (Carved(cls) || list.size() < kMaxFreePerClass) {
        list.push_back(p);  // may throw bad_alloc, like the malloc it stands for
        free_bytes_ += cls * kGrain;
        return;
      }
    }
#endif
    std::free(p);
  }

  // Bytes the pool holds that hold nothing: freed blocks kept for reuse, and
  // the chunks' bytes not carved (the newest one's rest, skips before lines,
  // older ones' last few bytes). Allocated as far as malloc is concerned.
  size_t free_bytes() const { return free_bytes_; }
  // Bytes of the chunks, carved or not.
  size_t chunk_bytes() const { return chunks_.size() * kChunkBytes; }

 private:
  static size_t Class(size_t bytes) { return (bytes + kGrain - 1) / kGrain; }
  static bool Carved(size_t cls) { return cls * kGrain >= kCarvedFrom; }

  // A new block of `size` bytes (a carved size) from the newest chunk.
  void* Carve(size_t size) {
    size_t skip = Skip(next_, size);
    if (left_ < skip + size) {
      void* c = std::malloc(kChunkBytes);
      if (c == nullptr) throw std::bad_alloc();
      try {
        chunks_.push_back(c);
      } catch (...) {
        std::free(c);
        throw;
      }
      free_bytes_ += kChunkBytes;  // the old chunk's rest stays counted: it holds nothing
      next_ = static_cast<char*>(c);
      left_ = kChunkBytes;
      skip = Skip(next_, size);
    }
    next_ += skip;
    left_ -= skip;
    void* p = next_;
    next_ += size;
    left_ -= size;
    free_bytes_ -= size;
    return p;
  }

  // Bytes to skip at `p` so that `size` bytes there touch no more cache
  // lines than `size` needs.
  static size_t Skip(const char* p, size_t size) {
    const size_t off = reinterpret_cast<uintptr_t>(p) % kLine;
    const size_t lines = (size + kLine - 1) / kLine;
    return off + size > lines * kLine ? kLine - off : 0;
  }

  std::array<std::vector<void*>, kMaxPooledBytes / kGrain + 1> free_;
  std::vector<void*> chunks_;
  char* next_ = nullptr;  // the newest chunk's first uncarved byte
  size_t left_ = 0;       // its uncarved bytes
  size_t free_bytes_ = 0;
};

}  // namespace kubefold::state::internal
