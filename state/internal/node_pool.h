// NodePool: the writer's free lists for tree nodes and subtree objects.
//
// Why not plain malloc? The writer frees in bursts (everything one snapshot
// kept alive goes at once when it dies), which overflows glibc's per-thread
// cache and sends every free down its slow path: 28% of fold time at 1M
// workloads. All of these objects are allocated and freed by the one writer
// thread, so exact-size free lists with no locking serve them from recently
// touched memory. Each list is capped, so a burst returns the excess to
// malloc instead of holding it forever.
//
// Under AddressSanitizer the pool is bypassed so use-after-free is still
// caught.
//
// Thread-safety: writer thread only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <vector>

namespace kubefold::state::internal {

class NodePool {
 public:
  static constexpr size_t kGrain = 8;
  static constexpr size_t kMaxPooledBytes = 24 + 32 * 8;  // a full trie node
  static constexpr size_t kMaxFreePerClass = 8192;

  NodePool() = default;
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;
  ~NodePool() {
    for (auto& list : free_)
      for (void* p : list) std::free(p);
  }

  void* Alloc(size_t bytes) {  // NOLINT
#if !defined(__SANITIZE_ADDRESS__)
    if (bytes <= kMaxPooledBytes) {
      auto& list = free_[Class(bytes)];
      if (!list.empty()) {
        void* p = list.back();
        list.pop_back();
        free_bytes_ -= Class(bytes) * kGrain;
        // Pooled blocks come back from freed, cold snapshots and the caller
        // writes the whole block at once: start fetching the block this
        // class hands out next, so that miss overlaps the caller's work.
        if (!list.empty()) {
          const char* next = static_cast<const char*>(list.back());
          for (size_t off = 0; off < bytes; off += 64) __builtin_prefetch(next + off, 1);
        }
        return p;
      }
      bytes = Class(bytes) * kGrain;  // so the block can serve its whole class
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
      auto& list = free_[Class(bytes)];
      if (list.size() < kMaxFreePerClass) {
        list.push_back(p);
        free_bytes_ += Class(bytes) * kGrain;
        return;
      }
    }
#endif
    std::free(p);
  }

  // Bytes of freed blocks kept in the free lists for reuse: allocated as far
  // as malloc is concerned, but holding nothing.
  size_t free_bytes() const { return free_bytes_; }

 private:
  static size_t Class(size_t bytes) { return (bytes + kGrain - 1) / kGrain; }
  std::array<std::vector<void*>, kMaxPooledBytes / kGrain + 1> free_;
  size_t free_bytes_ = 0;
};

}  // namespace kubefold::state::internal
