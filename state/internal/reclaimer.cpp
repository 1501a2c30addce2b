#include "state/internal/reclaimer.h"

#include <cstdlib>

#include "state/internal/trees.h"

namespace kubefold::state::internal {

namespace {

// Frees one object; never its children (each has its own interval).
void FreeObject(Versioned* o, ObjKind kind, Heap& heap, NodePool& pool) {
  switch (kind) {
    case ObjKind::kNode: {
      Node* n = static_cast<Node*>(o);
      size_t bytes = Node::Bytes(n->width());
      Heap::Free(heap.nodes, bytes);
      pool.Free(n, bytes);
      return;
    }
    case ObjKind::kRecord: {
      Record* r = static_cast<Record*>(o);
      Heap::Free(heap.records, r->ByteSize());
      Record::Destroy(r);
      return;
    }
    case ObjKind::kNamespace: {
      NamespaceTree* n = static_cast<NamespaceTree*>(o);
      Heap::Free(heap.nodes, n->ByteSize());
      n->~NamespaceTree();
      pool.Free(n, sizeof(NamespaceTree));
      return;
    }
    case ObjKind::kCluster: {
      ClusterTree* c = static_cast<ClusterTree*>(o);
      Heap::Free(heap.nodes, c->ByteSize());
      c->~ClusterTree();
      pool.Free(c, sizeof(ClusterTree));
      return;
    }
  }
}

// Frees a whole tree (used only at the very end).
struct TreeFreer {
  Heap& heap;
  NodePool& pool;
  void Records(Node* n) {
    if (n == nullptr) return;
    unsigned nd = n->count != 0 ? n->count : n->num_data();
    for (unsigned i = 0; i < nd; ++i) FreeObject(n->slots()[i], ObjKind::kRecord, heap, pool);
    if (n->count == 0)
      for (unsigned i = nd; i < n->width(); ++i) Records(static_cast<Node*>(n->slots()[i]));
    FreeObject(n, ObjKind::kNode, heap, pool);
  }
  void Namespaces(Node* n) {
    if (n == nullptr) return;
    unsigned nd = n->count != 0 ? n->count : n->num_data();
    for (unsigned i = 0; i < nd; ++i) {
      auto* ns = static_cast<NamespaceTree*>(n->slots()[i]);
      Records(ns->root);
      FreeObject(ns, ObjKind::kNamespace, heap, pool);
    }
    if (n->count == 0)
      for (unsigned i = nd; i < n->width(); ++i) Namespaces(static_cast<Node*>(n->slots()[i]));
    FreeObject(n, ObjKind::kNode, heap, pool);
  }
};

}  // namespace

void Reclaimer::Free(const Dead& d) { FreeObject(d.obj, d.kind, heap, pool); }

void Reclaimer::Retire(Versioned* o, ObjKind kind) {
  if (o->birth == building_) {
    Free(Dead{o, kind});  // never published: nobody can see it
    return;
  }
  running_.push_back(Dead{o, kind});
}

void Reclaimer::Publish() {
  if (!running_.empty()) {
    buckets_.emplace(building_, std::move(running_));
    running_.clear();
  }
  live_.insert(building_);
  ++building_;
}

void Reclaimer::Place(const Dead& d, uint64_t death) {
  // Visible in [birth, death): protected by the newest live seq below death.
  auto it = live_.lower_bound(death);
  if (it == live_.begin() || *std::prev(it) < d.obj->birth) {
    Free(d);
    return;
  }
  survivors_[*std::prev(it)].push_back(Survivor{d, death});
}

void Reclaimer::Died(uint64_t seq) {
  live_.erase(seq);
  // Objects that died right after `seq` were protected by it (at least).
  if (auto b = buckets_.find(seq + 1); b != buckets_.end()) {
    std::vector<Dead> objs = std::move(b->second);
    buckets_.erase(b);
    for (const Dead& d : objs) Place(d, seq + 1);
  }
  // Objects kept only for `seq`: find their next protector, if any.
  if (auto s = survivors_.find(seq); s != survivors_.end()) {
    std::vector<Survivor> objs = std::move(s->second);
    survivors_.erase(s);
    for (const Survivor& v : objs) Place(v.dead, v.death);
  }
}

Reclaimer::~Reclaimer() {
  for (const Dead& d : running_) Free(d);
  for (auto& [death, objs] : buckets_)
    for (const Dead& d : objs) Free(d);
  for (auto& [seq, objs] : survivors_)
    for (const Survivor& v : objs) Free(v.dead);
  TreeFreer freer{heap, pool};
  for (ClusterTree* c : final_roots_) {
    if (c == nullptr) continue;
    freer.Namespaces(c->root);
    FreeObject(c, ObjKind::kCluster, heap, pool);
  }
}

}  // namespace kubefold::state::internal
