#include "state/internal/reclaimer.h"

#include <cstdlib>

#include "state/internal/trees.h"

namespace kubefold::state::internal {

namespace {

// Frees one object of `bytes` accounted bytes; never its children (each has
// its own interval). A node is not read at all.
void FreeObject(Versioned* o, ObjKind kind, size_t bytes, Heap& heap, NodePool& pool) {
  switch (kind) {
    case ObjKind::kNode:
      Heap::Free(heap.nodes, bytes);
      pool.Free(o, bytes);
      return;
    case ObjKind::kRecord:
      Heap::Free(heap.records, bytes);
      Record::Destroy(static_cast<Record*>(o));
      return;
    case ObjKind::kNamespace: {
      NamespaceTree* n = static_cast<NamespaceTree*>(o);
      Heap::Free(heap.nodes, bytes);
      n->~NamespaceTree();
      pool.Free(n, sizeof(NamespaceTree));
      return;
    }
    case ObjKind::kCluster: {
      ClusterTree* c = static_cast<ClusterTree*>(o);
      Heap::Free(heap.nodes, bytes);
      c->~ClusterTree();
      pool.Free(c, sizeof(ClusterTree));
      return;
    }
  }
}

size_t BytesOf(Versioned* o, ObjKind kind) {
  switch (kind) {
    case ObjKind::kNode: return Node::Bytes(static_cast<Node*>(o)->width());
    case ObjKind::kRecord: return static_cast<Record*>(o)->ByteSize();
    case ObjKind::kNamespace: return static_cast<NamespaceTree*>(o)->ByteSize();
    case ObjKind::kCluster: return static_cast<ClusterTree*>(o)->ByteSize();
  }
  return 0;
}

// Frees a whole tree (used only at the very end).
struct TreeFreer {
  Heap& heap;
  NodePool& pool;
  void Records(Node* n) {
    if (n == nullptr) return;
    unsigned nd = n->count != 0 ? n->count : n->num_data();
    for (unsigned i = 0; i < nd; ++i) FreeObject(n->slots()[i], ObjKind::kRecord, BytesOf(n->slots()[i], ObjKind::kRecord), heap, pool);
    if (n->count == 0)
      for (unsigned i = nd; i < n->width(); ++i) Records(static_cast<Node*>(n->slots()[i]));
    FreeObject(n, ObjKind::kNode, BytesOf(n, ObjKind::kNode), heap, pool);
  }
  void Namespaces(Node* n) {
    if (n == nullptr) return;
    unsigned nd = n->count != 0 ? n->count : n->num_data();
    for (unsigned i = 0; i < nd; ++i) {
      auto* ns = static_cast<NamespaceTree*>(n->slots()[i]);
      Records(ns->root);
      FreeObject(ns, ObjKind::kNamespace, ns->ByteSize(), heap, pool);
    }
    if (n->count == 0)
      for (unsigned i = nd; i < n->width(); ++i) Namespaces(static_cast<Node*>(n->slots()[i]));
    FreeObject(n, ObjKind::kNode, BytesOf(n, ObjKind::kNode), heap, pool);
  }
};

}  // namespace

void Reclaimer::Free(const Dead& d) { FreeObject(d.obj, d.kind, d.bytes, heap, pool); }

void Reclaimer::Retire(Versioned* o, ObjKind kind, size_t bytes) {
  Dead d{o, o->birth, static_cast<uint32_t>(bytes), kind};
  if (d.birth == building_) {
    Free(d);  // never published: nobody can see it
    return;
  }
  running_.push_back(d);
}

void Reclaimer::FreeAll(const std::vector<Dead>& objs) {
  // Records go back to malloc, which reads the chunk header in front of
  // each: prefetch a few ahead so those cold misses overlap.
  constexpr size_t kAhead = 8;
  for (size_t i = 0; i < objs.size(); ++i) {
    if (i + kAhead < objs.size() && objs[i + kAhead].kind == ObjKind::kRecord) {
      __builtin_prefetch(reinterpret_cast<const char*>(objs[i + kAhead].obj) - 16);
    }
    Free(objs[i]);
  }
}

void Reclaimer::Publish() {
  if (!running_.empty()) {
    // An exact-size copy: a bucket may live as long as its snapshot is held,
    // and growth slack would be kept with it. running_ keeps its capacity
    // for the next batch instead of growing from nothing again.
    buckets_.emplace(building_, std::vector<Dead>(running_.begin(), running_.end()));
    running_.clear();
  }
  live_.insert(building_);
  ++building_;
}

void Reclaimer::Died(uint64_t seq) {
  live_.erase(seq);
  // Everything `seq` protected (objects that died right after it, and the
  // survivors filed under it) is now protected by the same snapshot: the
  // newest live one before `seq`, since no snapshot between `seq` and a
  // later death can be published any more. One lookup serves them all.
  auto it = live_.lower_bound(seq);
  const bool protected_by_older = it != live_.begin();
  const uint64_t protector = protected_by_older ? *std::prev(it) : 0;
  std::vector<Survivor>* keep = nullptr;
  auto place = [&](const Dead& d, uint64_t death) {
    if (!protected_by_older || protector < d.birth) {
      Free(d);
      return;
    }
    if (keep == nullptr) keep = &survivors_[protector];
    keep->push_back(Survivor{d, death});
  };
  if (auto b = buckets_.find(seq + 1); b != buckets_.end()) {
    std::vector<Dead> objs = std::move(b->second);
    buckets_.erase(b);
    if (!protected_by_older) {
      FreeAll(objs);  // no live snapshot before their death: all unreachable
    } else {
      for (const Dead& d : objs) place(d, seq + 1);
    }
  }
  if (auto s = survivors_.find(seq); s != survivors_.end()) {
    std::vector<Survivor> objs = std::move(s->second);
    survivors_.erase(s);
    for (const Survivor& v : objs) place(v.dead, v.death);
  }
}

Reclaimer::~Reclaimer() {
  FreeAll(running_);
  for (auto& [death, objs] : buckets_) FreeAll(objs);
  for (auto& [seq, objs] : survivors_)
    for (const Survivor& v : objs) Free(v.dead);
  TreeFreer freer{heap, pool};
  for (ClusterTree* c : final_roots_) {
    if (c == nullptr) continue;
    freer.Namespaces(c->root);
    FreeObject(c, ObjKind::kCluster, c->ByteSize(), heap, pool);
  }
}

}  // namespace kubefold::state::internal
