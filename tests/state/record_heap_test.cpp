// RecordHeap (state/internal/record_heap.h): which sizes are carved, how
// slabs fill, are reused and go back, and that blocks handed to several
// threads and freed on others never overlap (run under ThreadSanitizer by
// `make test-tsan`). Under AddressSanitizer the heap hands every size to
// malloc; the carving cases then check exactly that.
#define BOOST_TEST_MODULE record_heap_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "state/internal/record_heap.h"
#include "state/record.h"

using kubefold::state::Record;
using kubefold::state::WorkloadObject;
using kubefold::state::internal::RecordHeap;

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kAsan = true;
#else
constexpr bool kAsan = false;
#endif

uintptr_t SlabOf(const void* p) {
  return reinterpret_cast<uintptr_t>(p) & ~uintptr_t{RecordHeap::kSlabBytes - 1};
}

// Blocks of one class per slab: after the header, whole blocks only.
constexpr size_t PerSlab(size_t block) { return (RecordHeap::kSlabBytes - RecordHeap::kSlabHeaderBytes) / block; }

// The block a request of `bytes` gets, as the heap counts it.
size_t BlockFor(size_t bytes) {
  const RecordHeap::Counts before = RecordHeap::Count();
  void* p = RecordHeap::Alloc(bytes);
  const size_t block = RecordHeap::Count().block_bytes - before.block_bytes;
  RecordHeap::Free(p, bytes);
  return block;
}

}  // namespace

BOOST_AUTO_TEST_CASE(sizes_from_129_to_1024_are_carved) {
  if (kAsan) {
    for (size_t n : {size_t{100}, size_t{129}, size_t{400}, size_t{1024}}) BOOST_TEST(!RecordHeap::Carves(n));
    void* p = RecordHeap::Alloc(400);
    std::memset(p, 1, 400);
    RecordHeap::Free(p, 400);
    return;
  }
  BOOST_TEST(!RecordHeap::Carves(128));
  BOOST_TEST(RecordHeap::Carves(129));
  BOOST_TEST(RecordHeap::Carves(1024));
  BOOST_TEST(!RecordHeap::Carves(1025));

  const RecordHeap::Counts before = RecordHeap::Count();
  void* a = RecordHeap::Alloc(395);  // a 400-byte block
  void* b = RecordHeap::Alloc(400);
  void* small = RecordHeap::Alloc(100);  // malloc's
  const RecordHeap::Counts mid = RecordHeap::Count();
  BOOST_TEST(mid.blocks - before.blocks == 2u);
  BOOST_TEST(mid.block_bytes - before.block_bytes == 800u);
  BOOST_TEST(mid.slabs - before.slabs == 1u);
  BOOST_TEST(reinterpret_cast<uintptr_t>(a) % 8 == 0u);
  BOOST_TEST(SlabOf(a) == SlabOf(b));
  BOOST_TEST(reinterpret_cast<uintptr_t>(b) - reinterpret_cast<uintptr_t>(a) == 400u);  // back to back
  std::memset(a, 0xa, 395);
  std::memset(b, 0xb, 400);
  std::memset(small, 0xc, 100);
  RecordHeap::Free(small, 100);
  RecordHeap::Free(b, 400);
  // The freed block is the next one handed out in its class.
  void* c = RecordHeap::Alloc(394);
  BOOST_TEST(c == b);
  RecordHeap::Free(a, 395);
  RecordHeap::Free(c, 394);
  const RecordHeap::Counts after = RecordHeap::Count();
  BOOST_TEST(after.blocks == before.blocks);
  BOOST_TEST(after.block_bytes == before.block_bytes);
  // The class's current slab stays for the next record, though empty.
  BOOST_TEST(after.slabs - before.slabs == 1u);
}

BOOST_AUTO_TEST_CASE(slabs_fill_are_reused_before_new_ones_and_go_back_when_empty) {
  if (kAsan) return;  // no slabs: the case above checks what the build does instead
  constexpr size_t kBlock = 480;  // a class no case before this one uses
  constexpr size_t kPer = PerSlab(kBlock);
  static_assert(kPer == 68);
  const RecordHeap::Counts before = RecordHeap::Count();
  std::vector<void*> blocks;
  for (size_t i = 0; i < 3 * kPer; ++i) blocks.push_back(RecordHeap::Alloc(kBlock));
  BOOST_TEST(RecordHeap::Count().slabs - before.slabs == 3u);
  // Three full slabs: what holds no block is their headers and tails.
  BOOST_TEST(RecordHeap::Count().free_bytes() - before.free_bytes() == 3 * (RecordHeap::kSlabBytes - kPer * kBlock));
  std::set<uintptr_t> slabs;
  for (void* p : blocks) slabs.insert(SlabOf(p));
  BOOST_TEST(slabs.size() == 3u);
  for (size_t i = 0; i < blocks.size(); ++i) BOOST_TEST(SlabOf(blocks[i]) == SlabOf(blocks[i / kPer * kPer]));

  // The first slab empties: it goes back (it is not the one being carved).
  for (size_t i = 0; i < kPer; ++i) RecordHeap::Free(blocks[i], kBlock);
  BOOST_TEST(RecordHeap::Count().slabs - before.slabs == 2u);
  // The second one is left with one block: new blocks come from it, not
  // from a new slab, while the third (current, full) is skipped.
  const uintptr_t second = SlabOf(blocks[kPer]);
  for (size_t i = kPer + 1; i < 2 * kPer; ++i) RecordHeap::Free(blocks[i], kBlock);
  std::vector<void*> again;
  for (size_t i = 0; i < kPer - 1; ++i) again.push_back(RecordHeap::Alloc(kBlock));
  for (void* p : again) BOOST_TEST(SlabOf(p) == second);
  BOOST_TEST(RecordHeap::Count().slabs - before.slabs == 2u);
  // One more needs a new slab.
  void* extra = RecordHeap::Alloc(kBlock);
  BOOST_TEST(SlabOf(extra) != second);
  BOOST_TEST(SlabOf(extra) != SlabOf(blocks[2 * kPer]));
  BOOST_TEST(RecordHeap::Count().slabs - before.slabs == 3u);

  // Everything freed: only the slab being carved from stays.
  RecordHeap::Free(extra, kBlock);
  for (void* p : again) RecordHeap::Free(p, kBlock);
  RecordHeap::Free(blocks[kPer], kBlock);
  for (size_t i = 2 * kPer; i < 3 * kPer; ++i) RecordHeap::Free(blocks[i], kBlock);
  const RecordHeap::Counts after = RecordHeap::Count();
  BOOST_TEST(after.slabs - before.slabs == 1u);
  BOOST_TEST(after.blocks == before.blocks);
}

BOOST_AUTO_TEST_CASE(records_live_in_it_and_go_back_to_it) {
  WorkloadObject o;
  o.key = {"apps", "Deployment", "web"};
  o.object_json.assign(400, 'x');  // 32 + 17 + 5 + 400 = 454 bytes: a 456-byte block
  const RecordHeap::Counts before = RecordHeap::Count();
  Record* r = Record::Create(o);
  BOOST_TEST(r->object_json() == o.object_json);
  const RecordHeap::Counts mid = RecordHeap::Count();
  BOOST_TEST(mid.blocks - before.blocks == (kAsan ? 0u : 1u));
  BOOST_TEST(mid.block_bytes - before.block_bytes == (kAsan ? 0u : 456u));
  Record::Destroy(r);
  BOOST_TEST(RecordHeap::Count().blocks == before.blocks);
}

BOOST_AUTO_TEST_CASE(a_request_gets_the_smallest_class_that_holds_it) {
  if (kAsan) return;  // nothing is carved: the first case checks that
  // 8 bytes apart.
  BOOST_TEST(BlockFor(129) == 136u);
  BOOST_TEST(BlockFor(136) == 136u);
  BOOST_TEST(BlockFor(137) == 144u);
  BOOST_TEST(BlockFor(387) == 392u);
  BOOST_TEST(BlockFor(512) == 512u);
  BOOST_TEST(BlockFor(513) == 520u);
  BOOST_TEST(BlockFor(1000) == 1000u);
  BOOST_TEST(BlockFor(1021) == 1024u);
  BOOST_TEST(PerSlab(1024) == 31u);
}

// Threads allocate blocks of every carved class, fill them with a pattern
// of their own, hand half of them to the others to check and free, and
// check and free the rest themselves. A block handed out twice, or freed
// into the wrong slab, shows as a pattern overwritten by another owner.
BOOST_AUTO_TEST_CASE(blocks_never_overlap_across_threads) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 20000;
  struct Block {
    unsigned char* p;
    size_t bytes;
    unsigned char tag;
  };
  std::mutex mu;
  std::vector<Block> shared;
  std::atomic<int> bad{0};
  auto check_free = [&](const Block& b) {
    for (size_t i = 0; i < b.bytes; ++i)
      if (b.p[i] != b.tag) {
        bad.fetch_add(1);
        break;
      }
    RecordHeap::Free(b.p, b.bytes);
  };
  auto worker = [&](int id) {
    std::mt19937 rng(static_cast<unsigned>(id) * 7919u + 1u);
    std::vector<Block> mine;
    for (int round = 0; round < kRounds; ++round) {
      const size_t bytes = 100 + rng() % 1000;  // both sides of the carved range
      const auto tag = static_cast<unsigned char>(rng());
      auto* p = static_cast<unsigned char*>(RecordHeap::Alloc(bytes));
      std::memset(p, tag, bytes);
      Block b{p, bytes, tag};
      if (rng() % 2 == 0) {
        std::lock_guard lock(mu);
        shared.push_back(b);
      } else {
        mine.push_back(b);
      }
      if (mine.size() > 64) {
        check_free(mine.front());
        mine.erase(mine.begin());
      }
      Block theirs{};
      {
        std::lock_guard lock(mu);
        if (shared.size() > 32) {
          theirs = shared[rng() % shared.size()];
          shared.erase(std::find_if(shared.begin(), shared.end(), [&](const Block& x) { return x.p == theirs.p; }));
        }
      }
      if (theirs.p != nullptr) check_free(theirs);
    }
    for (const Block& b : mine) check_free(b);
  };
  const RecordHeap::Counts before = RecordHeap::Count();
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) threads.emplace_back(worker, t);
  for (auto& t : threads) t.join();
  for (const Block& b : shared) check_free(b);
  BOOST_TEST(bad.load() == 0);
  BOOST_TEST(RecordHeap::Count().blocks == before.blocks);
}
