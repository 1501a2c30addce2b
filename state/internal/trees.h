// The three levels of a store's tree and their trie traits:
//   cluster table (flat, in SnapshotData) -> ClusterTree
//   ClusterTree.root: Champ<NamespaceTraits> of NamespaceTree
//   NamespaceTree.root: Champ<RecordTraits> of Record
//
// Writer thread only for anything that mutates or releases; see champ.h.
#pragma once

#include <string>
#include <string_view>

#include "state/internal/champ.h"
#include "state/record.h"

namespace kubefold::state::internal {

struct RecordTraits {
  using Entry = Record;
  using Key = WorkloadKeyView;
  static Key KeyOf(const Record* r) { return r->key(); }
  static uint64_t Hash(Key k) { return HashKey(k); }
  static bool Equal(Key a, Key b) { return a.name == b.name && a.kind == b.kind && a.group == b.group; }
  static bool Less(Key a, Key b) { return a < b; }
  static void Release(Record* r, Heap& heap) {
    if (--r->refs != 0) return;
    Heap::Free(heap.records, r->ByteSize());
    Record::Destroy(r);
  }
  static void Leave(const Record* r, Heap& heap) { Heap::Leave(heap.records, r->ByteSize()); }
};
using RecordTrie = Champ<RecordTraits>;

inline size_t NameBytes(const std::string& s) { return s.capacity() > 15 ? s.capacity() + 1 : 0; }

struct NamespaceTree : Counted {
  Node* root = nullptr;  // RecordTrie
  uint64_t workloads = 0;
  std::string name;

  size_t ByteSize() const { return sizeof(NamespaceTree) + NameBytes(name); }
};

struct NamespaceTraits {
  using Entry = NamespaceTree;
  using Key = std::string_view;
  static Key KeyOf(const NamespaceTree* n) { return n->name; }
  static uint64_t Hash(Key k) { return HashName(k); }
  static bool Equal(Key a, Key b) { return a == b; }
  static bool Less(Key a, Key b) { return a < b; }
  static void Release(NamespaceTree* n, Heap& heap) {
    if (--n->refs != 0) return;
    RecordTrie::Release(n->root, heap);
    Heap::Free(heap.nodes, n->ByteSize());
    delete n;
  }
  static void Leave(const NamespaceTree* n, Heap& heap) {
    Heap::Leave(heap.nodes, n->ByteSize());
    RecordTrie::Leave(n->root, heap);
  }
};
using NamespaceTrie = Champ<NamespaceTraits>;

struct ClusterTree : Counted {
  Node* root = nullptr;  // NamespaceTrie
  uint64_t workloads = 0;
  uint64_t namespaces = 0;
  std::string name;

  size_t ByteSize() const { return sizeof(ClusterTree) + NameBytes(name); }
};

inline void ReleaseCluster(ClusterTree* c, Heap& heap) {
  if (c == nullptr || --c->refs != 0) return;
  NamespaceTrie::Release(c->root, heap);
  Heap::Free(heap.nodes, c->ByteSize());
  delete c;
}

inline void LeaveCluster(const ClusterTree* c, Heap& heap) {
  if (c == nullptr) return;
  Heap::Leave(heap.nodes, c->ByteSize());
  NamespaceTrie::Leave(c->root, heap);
}

}  // namespace kubefold::state::internal
