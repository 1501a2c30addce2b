#define BOOST_TEST_MODULE node_pool_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <utility>
#include <vector>

#include "state/internal/node_pool.h"

using kubefold::state::internal::NodePool;

namespace {

constexpr size_t kLargest = NodePool::kMaxPooledBytes;  // 280

uintptr_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

// Cache lines that `size` bytes at `p` touch.
size_t LinesTouched(const void* p, size_t size) { return (Addr(p) + size - 1) / 64 - Addr(p) / 64 + 1; }

}  // namespace

#if !defined(__SANITIZE_ADDRESS__)

BOOST_AUTO_TEST_CASE(large_nodes_are_carved_back_to_back_on_no_more_lines_than_they_need) {
  NodePool pool;
  std::mt19937 rng(7);
  std::vector<std::pair<void*, size_t>> blocks;
  size_t live = 0, skips = 0, adjacent = 0;
  for (int i = 0; i < 2000; ++i) {
    const size_t size = 16 + 8 * (15 + rng() % 2);  // 16-wide nodes with 15 or 16 slots
    const size_t chunks_before = pool.chunk_bytes();
    void* p = pool.Alloc(size);
    std::memset(p, 0xab, size);  // the whole block is ours
    BOOST_TEST(Addr(p) % 8 == 0u);
    BOOST_TEST(LinesTouched(p, size) == 3u);
    if (!blocks.empty() && pool.chunk_bytes() == chunks_before) {
      const uintptr_t end = Addr(blocks.back().first) + blocks.back().second;
      BOOST_TEST(Addr(p) >= end);
      BOOST_TEST(Addr(p) - end <= 8u);  // back to back, or a skip to stay on 3 lines
      if (Addr(p) == end) ++adjacent; else ++skips;
    }
    blocks.emplace_back(p, size);
    live += size;
    BOOST_TEST(pool.free_bytes() == pool.chunk_bytes() - live);
  }
  BOOST_TEST(adjacent > skips);
  BOOST_TEST(skips > 0u);
  // 2,000 blocks of 160 bytes (malloc's) would take 320,000.
  BOOST_TEST(pool.chunk_bytes() <= live * 103 / 100 + NodePool::kChunkBytes);
  for (const auto& [p, size] : blocks) pool.Free(p, size);
  BOOST_TEST(pool.free_bytes() == pool.chunk_bytes());
  // Freed carved blocks are all kept (they cannot go back to malloc) and
  // serve their sizes again, most recent first, before anything is carved.
  const size_t chunks = pool.chunk_bytes();
  BOOST_TEST(pool.Alloc(blocks.back().second) == blocks.back().first);
  BOOST_TEST(pool.chunk_bytes() == chunks);
}

BOOST_AUTO_TEST_CASE(smaller_blocks_are_mallocs_and_their_free_lists_are_capped) {
  NodePool pool;
  void* a = pool.Alloc(120);
  void* b = pool.Alloc(120);
  BOOST_TEST(pool.chunk_bytes() == 0u);
  BOOST_TEST(pool.free_bytes() == 0u);
  pool.Free(a, 120);
  BOOST_TEST(pool.free_bytes() == 120u);
  BOOST_TEST(pool.Alloc(117) == a);  // same 8-byte class (120)
  BOOST_TEST(pool.free_bytes() == 0u);
  pool.Free(a, 120);
  pool.Free(b, 120);
  BOOST_TEST(pool.Alloc(120) == b);  // the most recently freed first
  pool.Free(b, 120);
  // Carving starts at 129 bytes.
  void* c = pool.Alloc(128);
  BOOST_TEST(pool.chunk_bytes() == 0u);
  pool.Free(c, 128);
  NodePool other;
  void* d = other.Alloc(129);
  BOOST_TEST(other.chunk_bytes() == NodePool::kChunkBytes);
  other.Free(d, 129);

  std::vector<void*> many;
  for (size_t i = 0; i < NodePool::kMaxFreePerClass + 10; ++i) many.push_back(pool.Alloc(64));
  const size_t before = pool.free_bytes();
  for (void* p : many) pool.Free(p, 64);
  // Only kMaxFreePerClass are kept; the rest went back to malloc.
  BOOST_TEST(pool.free_bytes() - before == NodePool::kMaxFreePerClass * 64);
  BOOST_TEST(pool.chunk_bytes() == 0u);
}

#endif  // !__SANITIZE_ADDRESS__

BOOST_AUTO_TEST_CASE(blocks_too_large_for_the_pool_are_mallocs) {
  NodePool pool;
  void* p = pool.Alloc(kLargest + 1);
  std::memset(p, 0, kLargest + 1);
  BOOST_TEST(pool.chunk_bytes() == 0u);
  BOOST_TEST(pool.free_bytes() == 0u);
  pool.Free(p, kLargest + 1);
  BOOST_TEST(pool.free_bytes() == 0u);
}

#if defined(__SANITIZE_ADDRESS__)
BOOST_AUTO_TEST_CASE(under_asan_every_block_is_a_malloc) {
  NodePool pool;
  void* p = pool.Alloc(kLargest);
  pool.Free(p, kLargest);
  BOOST_TEST(pool.chunk_bytes() == 0u);
  BOOST_TEST(pool.free_bytes() == 0u);
}
#endif
