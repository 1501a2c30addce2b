#define BOOST_TEST_MODULE champ_test
#include <boost/mpl/list.hpp>
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "state/internal/champ.h"
#include "state/internal/reclaimer.h"
#include "state/internal/trees.h"

namespace kubefold::state::internal {
namespace {

// Records keyed by an integer name, under a hash the test chooses so that
// paths and full collisions are exact.
uint64_t (*g_hash)(int) = nullptr;

int KeyInt(WorkloadKeyView k) { return std::stoi(std::string(k.name)); }

// The store's tries are 16 wide (records and namespaces); the tests below
// that hold for any width also run 32 wide, the most a node's maps allow.
template <unsigned Bits>
struct TestTraitsOf : RecordTraits {
  static constexpr unsigned kBits = Bits;
  static uint64_t Hash(Key k) { return g_hash(KeyInt(k)); }
  static bool Less(Key a, Key b) { return KeyInt(a) < KeyInt(b); }
};
using TestTraits = TestTraitsOf<RecordTraits::kBits>;
static_assert(RecordTraits::kBits == 4 && NamespaceTraits::kBits == 4);
using Widths = boost::mpl::list<TestTraitsOf<5>, TestTraitsOf<4>>;

uint64_t IdentityHash(int k) { return static_cast<uint64_t>(k); }
uint64_t ConstantHash(int) { return 0xabcdefULL; }  // every key collides fully
uint64_t MixHash(int k) {
  uint64_t x = static_cast<uint64_t>(k) * 0x9e3779b97f4a7c15ULL;
  return x ^ (x >> 29);
}

// A working trie plus versions "published" through the reclaimer, the way the
// store does it.
template <class Traits>
struct FixtureOf {
  using Trie = Champ<Traits>;
  Reclaimer w;
  Node* root = nullptr;
  std::map<uint64_t, Node*> versions;  // seq -> root as published

  FixtureOf() { Publish(); }  // seq 0: empty
  ~FixtureOf() {
    // Hand the working trie over the way the store does at shutdown.
    auto* holder = CreateNamed<ClusterTree>(w.pool, "c");
    holder->set_birth(w.building());
    auto* ns = CreateNamed<NamespaceTree>(w.pool, "ns");
    ns->set_birth(w.building());
    ns->root = root;
    Heap::Enter(w.heap.nodes, ns->ByteSize());
    Heap::Enter(w.heap.nodes, holder->ByteSize());
    NamespaceTrie::Put(holder->root, ns, HashName("ns"), w);
    w.AdoptWorkingTree({holder});
  }

  void Put(int key, int value) {
    WorkloadObject o;
    o.key = {"", "Item", std::to_string(key)};
    o.object_json = std::to_string(value);
    Record* r = Record::Create(o);
    r->set_birth(w.building());
    Heap::Enter(w.heap.records, r->ByteSize());
    if (Record* old = Trie::Put(root, r, g_hash(key), w)) Traits::RetireTree(old, w);
  }
  bool Erase(int key) {
    std::string name = std::to_string(key);
    Record* gone = Trie::Erase(root, WorkloadKeyView("", "Item", name), g_hash(key), w);
    if (!gone) return false;
    Traits::RetireTree(gone, w);
    return true;
  }
  uint64_t Publish() {
    uint64_t seq = w.building();
    versions[seq] = root;
    w.Publish();
    return seq;
  }
  void Drop(uint64_t seq) {
    versions.erase(seq);
    w.Died(seq);
  }
  static int Get(const Node* r, int key) {
    std::string name = std::to_string(key);
    const Record* i = Trie::Find(r, WorkloadKeyView("", "Item", name), g_hash(key));
    return i ? std::stoi(std::string(i->object_json())) : -1;
  }
  static std::vector<int> Keys(const Node* r) {
    std::vector<int> out;
    Trie::ForEach(r, [&](const Record* i) { out.push_back(KeyInt(i->key())); return true; });
    return out;
  }
};

using Fixture = FixtureOf<TestTraits>;
using Trie = Fixture::Trie;

}  // namespace

BOOST_AUTO_TEST_CASE_TEMPLATE(put_find_erase_with_identity_hash, Traits, Widths) {
  using Fixture = FixtureOf<Traits>;
  g_hash = IdentityHash;
  Fixture f;
  for (int k = 0; k < 100; ++k) f.Put(k, k * 10);
  for (int k = 0; k < 100; ++k) BOOST_TEST(Fixture::Get(f.root, k) == k * 10);
  BOOST_TEST(Fixture::Get(f.root, 100) == -1);
  // Keys 0..W-1 fill the root's W slots (W = 32 or 16); the rest share low
  // bits with them and push sub-nodes down.
  BOOST_TEST(f.root->width() == Fixture::Trie::kWidth);
  BOOST_TEST(f.root->num_nodes() == Fixture::Trie::kWidth);
  for (int k = 0; k < 100; k += 2) BOOST_TEST(f.Erase(k));
  BOOST_TEST(!f.Erase(0));
  for (int k = 0; k < 100; ++k) BOOST_TEST(Fixture::Get(f.root, k) == (k % 2 ? k * 10 : -1));
  for (int k = 1; k < 100; k += 2) BOOST_TEST(f.Erase(k));
  BOOST_TEST(f.root == nullptr);
  // Everything was born and died in the same (unpublished) batch: freed at once.
  BOOST_TEST(f.w.heap.nodes.live == 0);
  BOOST_TEST(f.w.heap.records.live == 0);
}

BOOST_AUTO_TEST_CASE(a_write_copies_only_the_published_path_and_batches_reuse_it) {
  g_hash = IdentityHash;
  Fixture f;
  // W x W keys (W = 16, the store's width): the root holds W sub-nodes of W
  // entries each.
  constexpr int W = static_cast<int>(Trie::kWidth);
  static_assert(W == 16);
  for (int k = 0; k < W * W; ++k) f.Put(k, 1);
  BOOST_TEST(Trie::CountNodes(f.root) == 17u);
  uint64_t v1 = f.Publish();
  int64_t nodes_before = f.w.heap.nodes.live;
  f.Put(5, 2);  // key 5: root slot 5, second level slot 0
  BOOST_TEST(f.w.heap.nodes.live - nodes_before == 2);  // root and one sub-node copied
  const Node* old = f.versions[v1];
  BOOST_TEST(Fixture::Get(old, 5) == 1);
  BOOST_TEST(Fixture::Get(f.root, 5) == 2);
  int shared = 0;
  for (int i = 0; i < W; ++i) shared += f.root->slots()[i] == old->slots()[i];
  BOOST_TEST(shared == 15);
  // More writes in the same batch change the copies in place.
  f.Put(5 + W, 2);  // same sub-node as key 5
  f.Put(5 + 2 * W, 2);
  BOOST_TEST(f.w.heap.nodes.live - nodes_before == 2);
  BOOST_TEST(f.w.heap.nodes.current == 17);
  uint64_t v2 = f.Publish();
  // While v1 lives, its displaced root, sub-node and three records stay.
  BOOST_TEST(f.w.heap.nodes.live == 19);
  BOOST_TEST(f.w.heap.records.live == 259);
  f.Drop(v1);
  BOOST_TEST(f.w.heap.nodes.live == 17);
  BOOST_TEST(f.w.heap.records.live == 256);
  BOOST_TEST(Fixture::Get(f.versions[v2], 5 + 2 * W) == 2);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(an_object_lives_while_any_snapshot_in_its_interval_does, Traits, Widths) {
  using Fixture = FixtureOf<Traits>;
  g_hash = MixHash;
  Fixture f;
  f.Put(1, 1);
  uint64_t s1 = f.Publish();  // record 1 born at s1... visible in [s1, s3)
  f.Put(2, 1);
  uint64_t s2 = f.Publish();
  f.Put(1, 2);                // displaces the first record 1 (death = s3)
  uint64_t s3 = f.Publish();
  BOOST_TEST(f.w.heap.records.live == 3);
  // s2 (the newest protector below s3) goes first: s1 still sees record 1.
  f.Drop(s2);
  BOOST_TEST(f.w.heap.records.live == 3);
  BOOST_TEST(Fixture::Get(f.versions[s1], 1) == 1);
  f.Drop(s1);
  BOOST_TEST(f.w.heap.records.live == 2);
  BOOST_TEST(Fixture::Get(f.versions[s3], 1) == 2);
  // The empty seq 0 never protected anything born later.
  f.Drop(0);
  BOOST_TEST(f.w.heap.records.live == 2);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(shape_and_order_depend_on_content_only, Traits, Widths) {
  using Fixture = FixtureOf<Traits>;
  using Trie = typename Fixture::Trie;
  g_hash = MixHash;
  std::vector<int> keys(500);
  for (int i = 0; i < 500; ++i) keys[i] = i;
  Fixture a, b;
  for (int k : keys) a.Put(k, 1);
  std::mt19937 rng(7);
  std::shuffle(keys.begin(), keys.end(), rng);
  // b: another insertion order, plus keys inserted, published, then erased.
  for (int k : keys) b.Put(k, 1);
  for (int k = 1000; k < 1300; ++k) b.Put(k, 1);
  b.Publish();
  for (int k = 1000; k < 1300; ++k) BOOST_TEST(b.Erase(k));
  BOOST_TEST(Fixture::Keys(a.root) == Fixture::Keys(b.root));
  BOOST_TEST(Trie::CountNodes(a.root) == Trie::CountNodes(b.root));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(full_hash_collisions_are_kept_sorted_and_canonical, Traits, Widths) {
  using Fixture = FixtureOf<Traits>;
  using Trie = typename Fixture::Trie;
  g_hash = ConstantHash;
  Fixture f;
  for (int k : {5, 3, 9, 1}) f.Put(k, k);
  BOOST_TEST(Fixture::Keys(f.root) == (std::vector<int>{1, 3, 5, 9}));
  for (int k : {5, 3, 9, 1}) BOOST_TEST(Fixture::Get(f.root, k) == k);
  uint64_t v1 = f.Publish();
  f.Put(3, 33);
  BOOST_TEST(Fixture::Get(f.versions[v1], 3) == 3);
  BOOST_TEST(Fixture::Get(f.root, 3) == 33);
  BOOST_TEST(f.Erase(9));
  BOOST_TEST(f.Erase(1));
  BOOST_TEST(f.Erase(5));
  // One entry left: inlined all the way up into the root.
  BOOST_TEST(Trie::CountNodes(f.root) == 1u);
  BOOST_TEST(f.root->num_data() == 1u);
  BOOST_TEST(Fixture::Keys(f.versions[v1]) == (std::vector<int>{1, 3, 5, 9}));
}

BOOST_AUTO_TEST_CASE_TEMPLATE(diff_skips_shared_subtrees_and_reports_each_change, Traits, Widths) {
  using Fixture = FixtureOf<Traits>;
  using Trie = typename Fixture::Trie;
  g_hash = MixHash;
  Fixture f;
  for (int k = 0; k < 2000; ++k) f.Put(k, 0);
  uint64_t v1 = f.Publish();
  const Node* old = f.versions[v1];
  f.Put(10, 1);             // modified
  BOOST_TEST(f.Erase(20));  // removed
  f.Put(5000, 0);           // added
  std::map<int, std::string> seen;
  int visited = 0;
  Trie::Diff(old, f.root, [&](const Record* a, const Record* b) {
    ++visited;
    if (a && b) seen[KeyInt(a->key())] = "modified";
    else if (a) seen[KeyInt(a->key())] = "removed";
    else seen[KeyInt(b->key())] = "added";
    return true;
  });
  BOOST_TEST(visited == 3);
  BOOST_TEST(seen[10] == "modified");
  BOOST_TEST(seen[20] == "removed");
  BOOST_TEST(seen[5000] == "added");
  visited = 0;
  Trie::Diff(old, old, [&](const Record*, const Record*) { ++visited; return true; });
  BOOST_TEST(visited == 0);
  Trie::Diff(nullptr, old, [&](const Record* a, const Record* b) { visited += (a == nullptr && b != nullptr); return true; });
  BOOST_TEST(visited == 2000);
}

BOOST_AUTO_TEST_CASE_TEMPLATE(diff_matches_a_reference_on_random_versions, Traits, Widths) {
  using Fixture = FixtureOf<Traits>;
  using Trie = typename Fixture::Trie;
  g_hash = IdentityHash;  // keys sharing low bits: long paths, entry-vs-node cases
  std::mt19937 rng(42);
  for (int round = 0; round < 200; ++round) {
    Fixture f;
    std::map<int, int> model;
    for (int i = 0; i < 60; ++i) {
      int k = static_cast<int>(rng() % 200) * 32;
      f.Put(k, 0);
      model[k] = 0;
    }
    uint64_t v1 = f.Publish();
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
    // Every record Diff reports is reached by following ForEachDifferingChild
    // down from the roots (what diff.cpp prefetches ahead of the walk).
    std::set<const Versioned*> reached;
    std::vector<std::pair<const Node*, const Node*>> level{{f.versions[v1], f.root}};
    while (!level.empty()) {
      std::vector<std::pair<const Node*, const Node*>> next;
      for (auto [a, b] : level) {
        Trie::ForEachDifferingChild(
            a, b,
            [&](const Versioned* x, const Versioned* y) {
              BOOST_TEST(x != y);
              if (x) reached.insert(x);
              if (y) reached.insert(y);
            },
            [&](const Versioned* x, const Versioned* y) {
              BOOST_TEST(x != y);
              next.emplace_back(static_cast<const Node*>(x), static_cast<const Node*>(y));
            });
      }
      level = std::move(next);
    }
    std::map<int, std::pair<int, int>> expected, got;  // key -> (before, after), -1 = absent
    for (auto& [k, v] : m1)
      if (!model.count(k) || model[k] != v) expected[k] = {v, model.count(k) ? model[k] : -1};
    for (auto& [k, v] : model)
      if (!m1.count(k)) expected[k] = {-1, v};
    Trie::Diff(f.versions[v1], f.root, [&](const Record* a, const Record* b) {
      int k = KeyInt(a ? a->key() : b->key());
      BOOST_TEST(!got.count(k));
      BOOST_TEST((a == nullptr || reached.count(a) == 1u));
      BOOST_TEST((b == nullptr || reached.count(b) == 1u));
      got[k] = {a ? std::stoi(std::string(a->object_json())) : -1, b ? std::stoi(std::string(b->object_json())) : -1};
      return true;
    });
    // A re-put of an equal value is a new record and is reported: compare values.
    std::erase_if(got, [](auto& kv) { return kv.second.first == kv.second.second; });
    BOOST_TEST((got == expected), "round " << round);
  }
}

BOOST_AUTO_TEST_CASE(a_dead_entry_is_one_word_with_the_kind_and_reads_the_birth_from_its_object) {
  static_assert(sizeof(Reclaimer::Dead) == sizeof(void*));
  Versioned objs[4];
  const ObjKind kinds[] = {ObjKind::kNode, ObjKind::kRecord, ObjKind::kNamespace, ObjKind::kCluster};
  for (size_t i = 0; i < 4; ++i) {
    objs[i].set_birth(Versioned::kMaxBirth - i);  // any birth, however old
    const Reclaimer::Dead d(&objs[i], kinds[i]);
    BOOST_TEST(d.obj() == &objs[i]);
    BOOST_TEST((d.kind() == kinds[i]));
    BOOST_TEST(d.birth() == Versioned::kMaxBirth - i);
  }
}

// Namespace and cluster objects keep their name right after their fields,
// in their own block; a copy carries it along.
BOOST_AUTO_TEST_CASE(subtree_objects_keep_their_names_in_their_own_block) {
  NodePool pool;
  const std::string long_name(253, 'n');
  for (const std::string& name : {std::string("ns"), std::string("payments-production"), long_name}) {
    auto* ns = CreateNamed<NamespaceTree>(pool, name);
    // (Addresses as integers: Boost.Test would compare char pointers as strings.)
    BOOST_TEST(reinterpret_cast<uintptr_t>(&ns->name_len) + 1 == reinterpret_cast<uintptr_t>(ns) + NamespaceTree::kNameAt);
    BOOST_TEST(ns->name() == name);
    BOOST_TEST(ns->ByteSize() == std::max<size_t>(32, 25 + name.size()));
    ns->workloads = 7;
    auto* copy = CopyNamed(pool, *ns);
    BOOST_TEST(copy->name() == name);
    BOOST_TEST(copy->workloads == 7u);
    pool.Free(ns, ns->ByteSize());
    pool.Free(copy, copy->ByteSize());

    auto* c = CreateNamed<ClusterTree>(pool, name);
    BOOST_TEST(reinterpret_cast<uintptr_t>(&c->name_len) + 1 == reinterpret_cast<uintptr_t>(c) + ClusterTree::kNameAt);
    BOOST_TEST(c->name() == name);
    BOOST_TEST(c->ByteSize() == std::max<size_t>(32, 29 + name.size()));
    pool.Free(c, c->ByteSize());
  }
}

}  // namespace kubefold::state::internal
