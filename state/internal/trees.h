// The three levels of a store's tree and their trie traits:
//   cluster table (flat, in SnapshotData) -> ClusterTree
//   ClusterTree.root: Champ<NamespaceTraits> of NamespaceTree
//   NamespaceTree.root: Champ<RecordTraits> of Record
//
// Writer thread only for anything that mutates or retires; see champ.h.
#pragma once

#include <string>
#include <string_view>

#include "state/internal/champ.h"
#include "state/record.h"

namespace kubefold::state::internal {

struct RecordTraits {
  static constexpr unsigned kBits = 5;  // 32-wide nodes: thousands of workloads per namespace
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

inline size_t NameBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

struct NamespaceTree : Versioned {
  Node* root = nullptr;  // RecordTrie
  uint32_t workloads = 0;
  // Writer only: where the change log's current segment keeps this name
  // (ChangeLogWriter::Log); copied with the object.
  uint32_t log_name = 0;
  std::string name;

  size_t ByteSize() const { return sizeof(NamespaceTree) + NameBytes(name); }
};

struct NamespaceTraits {
  // 16-wide nodes. A cluster has tens to hundreds of namespaces, and every
  // change copies the path to its namespace; at 100 namespaces a 32-wide
  // root is full (280 bytes, a 320-byte jemalloc block) while a 16-wide one
  // takes 152 (160). Lookup and fold at 1M workloads did not change beyond
  // noise (README, "State store benchmarks").
  static constexpr unsigned kBits = 4;
  using Entry = NamespaceTree;
  using Key = std::string_view;
  static Key KeyOf(const NamespaceTree* n) { return n->name; }
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

struct ClusterTree : Versioned {
  Node* root = nullptr;  // NamespaceTrie
  uint64_t workloads = 0;
  uint64_t namespaces = 0;
  std::string name;

  size_t ByteSize() const { return sizeof(ClusterTree) + NameBytes(name); }
};

// The whole cluster subtree leaves the working tree. O(size).
inline void RetireCluster(ClusterTree* c, Reclaimer& w) {
  NamespaceTrie::RetireTree(c->root, w);
  Heap::Leave(w.heap.nodes, c->ByteSize());
  w.Retire(c, ObjKind::kCluster);
}

}  // namespace kubefold::state::internal
