#define BOOST_TEST_MODULE champ_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "state/internal/champ.h"

namespace kubefold::state::internal {
namespace {

// Entries whose hash the test chooses, so paths and collisions are exact.
struct Item : Counted {
  int key = 0;
  int value = 0;
};

int g_freed = 0;
uint64_t (*g_hash)(int) = nullptr;

struct ItemTraits {
  using Entry = Item;
  using Key = int;
  static Key KeyOf(const Item* i) { return i->key; }
  static uint64_t Hash(Key k) { return g_hash(k); }
  static bool Equal(Key a, Key b) { return a == b; }
  static bool Less(Key a, Key b) { return a < b; }
  static void Release(Item* i, Heap& heap) {
    if (--i->refs != 0) return;
    Heap::Free(heap.records, sizeof(Item));
    ++g_freed;
    delete i;
  }
  static void Leave(const Item*, Heap& heap) { Heap::Leave(heap.records, sizeof(Item)); }
};
using Trie = Champ<ItemTraits>;

uint64_t IdentityHash(int k) { return static_cast<uint64_t>(k); }
uint64_t ConstantHash(int) { return 0xabcdefULL; }  // every key collides fully
uint64_t MixHash(int k) {
  uint64_t x = static_cast<uint64_t>(k) * 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 29);
}

struct Fixture {
  Heap heap;
  Node* root = nullptr;
  Fixture() { g_freed = 0; }
  ~Fixture() { Trie::Release(root, heap); }

  Item* Make(int key, int value) {
    auto* i = new Item();
    i->key = key;
    i->value = value;
    Heap::Enter(heap.records, sizeof(Item));
    return i;
  }
  void Put(int key, int value) {
    Item* old = Trie::Put(root, Make(key, value), ItemTraits::Hash(key), heap);
    if (old) {
      ItemTraits::Leave(old, heap);
      ItemTraits::Release(old, heap);
    }
  }
  bool Erase(int key) {
    Item* gone = Trie::Erase(root, key, ItemTraits::Hash(key), heap);
    if (!gone) return false;
    ItemTraits::Leave(gone, heap);
    ItemTraits::Release(gone, heap);
    return true;
  }
  int Get(const Node* r, int key) const {
    const Item* i = Trie::Find(r, key, ItemTraits::Hash(key));
    return i ? i->value : -1;
  }
  std::vector<int> Keys(const Node* r) const {
    std::vector<int> out;
    Trie::ForEach(r, [&](const Item* i) { out.push_back(i->key); return true; });
    return out;
  }
  // A persistent version: the caller holds one reference.
  Node* Keep() const {
    if (root) ++root->refs;
    return root;
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(put_find_erase_with_identity_hash) {
  g_hash = IdentityHash;
  Fixture f;
  for (int k = 0; k < 100; ++k) f.Put(k, k * 10);
  for (int k = 0; k < 100; ++k) BOOST_TEST(f.Get(f.root, k) == k * 10);
  BOOST_TEST(f.Get(f.root, 100) == -1);
  // Keys 0..31 fill the root's 32 data slots; 32..99 collide with them on
  // the first 5 bits and push sub-nodes down.
  BOOST_TEST(f.root->width() == 32u);
  for (int k = 0; k < 100; k += 2) BOOST_TEST(f.Erase(k));
  BOOST_TEST(!f.Erase(0));
  for (int k = 0; k < 100; ++k) BOOST_TEST(f.Get(f.root, k) == (k % 2 ? k * 10 : -1));
  for (int k = 1; k < 100; k += 2) BOOST_TEST(f.Erase(k));
  BOOST_TEST(f.root == nullptr);
  BOOST_TEST(f.heap.nodes.live == 0);
  BOOST_TEST(f.heap.records.live == 0);
  BOOST_TEST(g_freed == 100);
}

BOOST_AUTO_TEST_CASE(a_write_copies_only_the_shared_path) {
  g_hash = IdentityHash;
  Fixture f;
  // 1024 keys: root (32 sub-nodes), each sub-node holds 32 entries.
  for (int k = 0; k < 1024; ++k) f.Put(k, 1);
  BOOST_TEST(Trie::CountNodes(f.root) == 33u);
  Node* v1 = f.Keep();
  int64_t nodes_before = f.heap.nodes.live;
  f.Put(5, 2);  // key 5: root slot 5, second level slot 0
  // Exactly the root and one sub-node were copied.
  BOOST_TEST(f.heap.nodes.live - nodes_before == 2);
  BOOST_TEST(f.root != v1);
  BOOST_TEST(f.Get(v1, 5) == 1);
  BOOST_TEST(f.Get(f.root, 5) == 2);
  // The other 31 sub-nodes are shared by pointer.
  int shared = 0;
  for (unsigned i = 0; i < 32; ++i) shared += f.root->slots()[i] == v1->slots()[i];
  BOOST_TEST(shared == 31);
  // Later writes in the same version reuse the copies (transient mode).
  f.Put(37, 2);  // same sub-node as key 5
  f.Put(69, 2);
  BOOST_TEST(f.heap.nodes.live - nodes_before == 2);
  // Current counts only the newest version.
  BOOST_TEST(f.heap.nodes.current == 33);
  Trie::Release(v1, f.heap);
  BOOST_TEST(f.heap.nodes.live == 33);
}

BOOST_AUTO_TEST_CASE(shape_and_order_depend_on_content_only) {
  g_hash = MixHash;
  std::vector<int> keys(500);
  for (int i = 0; i < 500; ++i) keys[i] = i;
  Fixture a, b;
  for (int k : keys) a.Put(k, 1);
  std::mt19937 rng(7);
  std::shuffle(keys.begin(), keys.end(), rng);
  // b: a different insertion order, plus keys inserted then erased.
  for (int k : keys) b.Put(k, 1);
  for (int k = 1000; k < 1300; ++k) b.Put(k, 1);
  for (int k = 1000; k < 1300; ++k) BOOST_TEST(b.Erase(k));
  BOOST_TEST(a.Keys(a.root) == b.Keys(b.root));
  BOOST_TEST(Trie::CountNodes(a.root) == Trie::CountNodes(b.root));
}

BOOST_AUTO_TEST_CASE(full_hash_collisions_are_kept_sorted_and_canonical) {
  g_hash = ConstantHash;
  Fixture f;
  for (int k : {5, 3, 9, 1}) f.Put(k, k);
  BOOST_TEST(f.Keys(f.root) == (std::vector<int>{1, 3, 5, 9}));
  for (int k : {5, 3, 9, 1}) BOOST_TEST(f.Get(f.root, k) == k);
  Node* v1 = f.Keep();
  f.Put(3, 33);
  BOOST_TEST(f.Get(v1, 3) == 3);
  BOOST_TEST(f.Get(f.root, 3) == 33);
  BOOST_TEST(f.Erase(9));
  BOOST_TEST(f.Erase(1));
  BOOST_TEST(f.Erase(5));
  // One entry left: inlined all the way up into the root.
  BOOST_TEST(Trie::CountNodes(f.root) == 1u);
  BOOST_TEST(f.root->num_data() == 1u);
  BOOST_TEST(f.Keys(v1) == (std::vector<int>{1, 3, 5, 9}));
  Trie::Release(v1, f.heap);
}

BOOST_AUTO_TEST_CASE(diff_skips_shared_subtrees_and_reports_each_change) {
  g_hash = MixHash;
  Fixture f;
  for (int k = 0; k < 2000; ++k) f.Put(k, 0);
  Node* v1 = f.Keep();
  f.Put(10, 1);        // modified
  BOOST_TEST(f.Erase(20));  // removed
  f.Put(5000, 0);      // added
  std::map<int, std::string> seen;
  int visited = 0;
  Trie::Diff(v1, f.root, [&](const Item* a, const Item* b) {
    ++visited;
    if (a && b) seen[a->key] = "modified";
    else if (a) seen[a->key] = "removed";
    else seen[b->key] = "added";
    return true;
  });
  BOOST_TEST(visited == 3);
  BOOST_TEST(seen[10] == "modified");
  BOOST_TEST(seen[20] == "removed");
  BOOST_TEST(seen[5000] == "added");
  // Equal roots: nothing visited.
  visited = 0;
  Trie::Diff(v1, v1, [&](const Item*, const Item*) { ++visited; return true; });
  BOOST_TEST(visited == 0);
  // Diff against empty lists every entry.
  Trie::Diff(nullptr, v1, [&](const Item* a, const Item* b) { visited += (a == nullptr && b != nullptr); return true; });
  BOOST_TEST(visited == 2000);
  Trie::Release(v1, f.heap);
}

BOOST_AUTO_TEST_CASE(diff_matches_a_reference_on_random_versions) {
  g_hash = IdentityHash;  // small keys: deep shared prefixes exercise entry-vs-node cases
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    Fixture f;
    std::map<int, int> model;
    for (int i = 0; i < 60; ++i) {
      int k = static_cast<int>(rng() % 200) * 32;  // share the low bits: long paths
      f.Put(k, 0);
      model[k] = 0;
    }
    Node* v1 = f.Keep();
    std::map<int, int> m1 = model;
    for (int i = 0; i < 20; ++i) {
      int k = static_cast<int>(rng() % 200) * 32;
      if (rng() % 2) {
        f.Put(k, i + 1);
        model[k] = i + 1;
      } else {
        f.Erase(k);
        model.erase(k);
      }
    }
    std::map<int, std::pair<int, int>> expected, got;  // key -> (before, after), -1 = absent
    for (auto& [k, v] : m1)
      if (!model.count(k) || model[k] != v) expected[k] = {v, model.count(k) ? model[k] : -1};
    for (auto& [k, v] : model)
      if (!m1.count(k)) expected[k] = {-1, v};
    Trie::Diff(v1, f.root, [&](const Item* a, const Item* b) {
      int k = a ? a->key : b->key;
      BOOST_TEST(!got.count(k));
      got[k] = {a ? a->value : -1, b ? b->value : -1};
      return true;
    });
    // A re-put of the same value is a new entry: it is reported, so compare on values.
    std::erase_if(got, [](auto& kv) { return kv.second.first == kv.second.second; });
    BOOST_TEST((got == expected), "round " << round);
    Trie::Release(v1, f.heap);
  }
}

}  // namespace kubefold::state::internal
