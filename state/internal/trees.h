// The three levels of a store's tree and their trie traits:
//   cluster table (flat, in SnapshotData) -> ClusterTree
//   ClusterTree.root: Champ<NamespaceTraits> of NamespaceTree
//   NamespaceTree.root: Champ<RecordTraits> of Record
//
// Writer thread only for anything that mutates or retires; see champ.h.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "state/internal/champ.h"
#include "state/record.h"

namespace kubefold::state::internal {

struct RecordTraits {
  // 16-wide nodes. At 1,000 workloads per namespace a change copies three
  // of them (144, 144 and about 48 bytes) where 32-wide ones took two full
  // ones and often a third (272, 264 and about 32): 116 bytes less history
  // per change at 1M workloads, for one more level per lookup and about 5%
  // of fold throughput (README, "State store benchmarks").
  static constexpr unsigned kBits = 4;
  using Entry = Record;
  using Key = WorkloadKeyView;
  static Key KeyOf(const Record* r) { return r->key(); }
  static uint64_t Hash(Key k) { return HashKey(k); }
  static bool Equal(Key a, Key b) { return a.name == b.name && a.kind == b.kind && a.group == b.group; }
  static bool Less(Key a, Key b) { return a < b; }
  static void RetireTree(Record* r, Reclaimer& w) {
    Heap::Leave(w.heap.records, r->ByteSize());
    w.Retire(r, ObjKind::kRecord);
  }
};
using RecordTrie = Champ<RecordTraits>;

// Namespace and cluster objects keep their name in their own block, after
// the fields (a name is at most 253 bytes: one byte holds its length). Every
// change copies the object of its namespace and of its cluster; a
// std::string member added 32 bytes to each copy, and a malloc when the name
// was over 15 bytes.
template <class T>
T* CreateNamed(NodePool& pool, std::string_view name) {
  const size_t bytes = T::BytesFor(name.size());
  auto* t = new (pool.Alloc(bytes)) T();
  t->name_len = static_cast<uint8_t>(name.size());
  assert(reinterpret_cast<char*>(&t->name_len) + 1 == reinterpret_cast<char*>(t) + T::kNameAt);
  std::memcpy(reinterpret_cast<char*>(t) + T::kNameAt, name.data(), name.size());
  return t;
}
// A copy of `old`, fields and name, in a new block.
template <class T>
T* CopyNamed(NodePool& pool, const T& old) {
  const size_t bytes = old.ByteSize();
  void* p = pool.Alloc(bytes);
  std::memcpy(p, &old, bytes);
  return static_cast<T*>(p);
}

// The name accessors of T, whose name follows its fields: T::name_len bytes
// at T::kNameAt.
template <class T>
struct Named {
  static size_t BytesFor(size_t name_len) { return std::max(sizeof(T), T::kNameAt + name_len); }
  std::string_view name() const {
    const T* t = static_cast<const T*>(this);
    return {reinterpret_cast<const char*>(t) + T::kNameAt, t->name_len};
  }
  size_t ByteSize() const { return BytesFor(static_cast<const T*>(this)->name_len); }
};

struct NamespaceTree : Versioned, Named<NamespaceTree> {
  Node* root = nullptr;  // RecordTrie
  uint32_t workloads = 0;
  // Writer only: where the change log's current segment keeps this name
  // (ChangeLogWriter::Log); copied with the object.
  uint32_t log_name = 0;
  uint8_t name_len = 0;  // the name's bytes follow, at kNameAt

  static constexpr size_t kNameAt = 25;
};
static_assert(sizeof(NamespaceTree) == 32 && std::is_trivially_copyable_v<NamespaceTree>);

struct NamespaceTraits {
  // 16-wide nodes. A cluster has tens to hundreds of namespaces, and every
  // change copies the path to its namespace; at 100 namespaces a 32-wide
  // root is full (272 bytes) while a 16-wide one takes 144. Lookup and
  // fold at 1M workloads did not change beyond noise (README, "State store
  // benchmarks").
  static constexpr unsigned kBits = 4;
  using Entry = NamespaceTree;
  using Key = std::string_view;
  static Key KeyOf(const NamespaceTree* n) { return n->name(); }
  static uint64_t Hash(Key k) { return HashName(k); }
  static bool Equal(Key a, Key b) { return a == b; }
  static bool Less(Key a, Key b) { return a < b; }
  static void RetireTree(NamespaceTree* n, Reclaimer& w) {
    RecordTrie::RetireTree(n->root, w);
    Heap::Leave(w.heap.nodes, n->ByteSize());
    w.Retire(n, ObjKind::kNamespace);
  }
};
using NamespaceTrie = Champ<NamespaceTraits>;

struct ClusterTree : Versioned, Named<ClusterTree> {
  Node* root = nullptr;  // NamespaceTrie
  uint64_t workloads = 0;
  uint32_t namespaces = 0;
  uint8_t name_len = 0;  // the name's bytes follow, at kNameAt

  static constexpr size_t kNameAt = 29;
};
static_assert(sizeof(ClusterTree) == 32 && std::is_trivially_copyable_v<ClusterTree>);

// The whole cluster subtree leaves the working tree. O(size).
inline void RetireCluster(ClusterTree* c, Reclaimer& w) {
  NamespaceTrie::RetireTree(c->root, w);
  Heap::Leave(w.heap.nodes, c->ByteSize());
  w.Retire(c, ObjKind::kCluster);
}

}  // namespace kubefold::state::internal
