#include "state/internal/reclaimer.h"

#include <algorithm>
#include <cassert>
#include <cstdlib>

#include "state/internal/record_heap.h"
#include "state/internal/trees.h"

namespace kubefold::state::internal {

namespace {

// Frees one object of `bytes` accounted bytes; never its children (each has
// its own interval). A node is not read at all.
void FreeObject(Versioned* o, ObjKind kind, size_t bytes, Heap& heap, NodePool& pool) {
  if (kind == ObjKind::kRecord) {
    Heap::Free(heap.records, bytes);
    Record::Destroy(static_cast<Record*>(o));
    return;
  }
  // Nodes, namespace and cluster objects: pool blocks, trivially destructible.
  Heap::Free(heap.nodes, bytes);
  pool.Free(o, bytes);
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
    unsigned nd = n->count() != 0 ? n->count() : n->num_data();
    for (unsigned i = 0; i < nd; ++i) FreeObject(n->slots()[i], ObjKind::kRecord, BytesOf(n->slots()[i], ObjKind::kRecord), heap, pool);
    if (n->count() == 0)
      for (unsigned i = nd; i < n->width(); ++i) Records(static_cast<Node*>(n->slots()[i]));
    FreeObject(n, ObjKind::kNode, BytesOf(n, ObjKind::kNode), heap, pool);
  }
  void Namespaces(Node* n) {
    if (n == nullptr) return;
    unsigned nd = n->count() != 0 ? n->count() : n->num_data();
    for (unsigned i = 0; i < nd; ++i) {
      auto* ns = static_cast<NamespaceTree*>(n->slots()[i]);
      Records(ns->root);
      FreeObject(ns, ObjKind::kNamespace, ns->ByteSize(), heap, pool);
    }
    if (n->count() == 0)
      for (unsigned i = nd; i < n->width(); ++i) Namespaces(static_cast<Node*>(n->slots()[i]));
    FreeObject(n, ObjKind::kNode, BytesOf(n, ObjKind::kNode), heap, pool);
  }
};

}  // namespace

void Reclaimer::Free(const Dead& d) { FreeObject(d.obj(), d.kind(), BytesOf(d.obj(), d.kind()), heap, pool); }

void Reclaimer::Retire(Versioned* o, ObjKind kind) {
  if (o->birth() == building_) {
    FreeObject(o, kind, BytesOf(o, kind), heap, pool);  // never published: nobody can see it
    return;
  }
  running_.emplace_back(o, kind);
}

void Reclaimer::PrefetchAhead(const std::vector<Dead>& objs, size_t i) {
  if (i + kPrefetchAhead >= objs.size()) return;
  const Dead& ahead = objs[i + kPrefetchAhead];
  __builtin_prefetch(ahead.obj());
  if (ahead.kind() == ObjKind::kRecord) RecordHeap::PrefetchFree(ahead.obj());
}

void Reclaimer::FreeAll(const std::vector<Dead>& objs) {
  for (size_t i = 0; i < objs.size(); ++i) {
    PrefetchAhead(objs, i);
    Free(objs[i]);
  }
}

void Reclaimer::Publish() {
  if (!running_.empty()) {
    // These objects die with this batch: seq building_ - 1, the current
    // snapshot until this one replaces it, is the newest that sees them.
    // An exact-size copy: it lives as long as that snapshot is held, and
    // growth slack would be kept with it. running_ keeps its capacity for
    // the next batch instead of growing from nothing again.
    if (!live_.empty() && live_.back().seq == building_ - 1) {
      live_.back().objs.assign(running_.begin(), running_.end());
    } else {
      // Not reached by the store, which publishes while the previous seq is
      // still current; without a snapshot that sees them last, they go where
      // that snapshot's death would have put them.
      Settle(running_, live_.end());
    }
    running_.clear();
  }
  live_.push_back(Live{building_, {}});
  ++building_;
}

// The newest live seq before `newer`: it protects what a seq that just died
// protected, since no snapshot between them can be published any more.
struct Reclaimer::Protector {
  Reclaimer& r;
  bool any;
  uint64_t seq;
  std::vector<Dead>* keep = nullptr;

  Protector(Reclaimer& rec, LiveList::iterator newer)
      : r(rec), any(newer != rec.live_.begin()), seq(any ? std::prev(newer)->seq : 0) {}

  // Frees `d` unless the protector sees it.
  void Place(const Dead& d) {
    if (!any || seq < d.birth()) {
      r.Free(d);
      return;
    }
    if (keep == nullptr) keep = &r.survivors_[seq];
    keep->push_back(d);
  }
};

void Reclaimer::Settle(const std::vector<Dead>& objs, LiveList::iterator newer) {
  Protector p(*this, newer);
  if (!p.any) {
    FreeAll(objs);  // no live snapshot before their death: all unreachable
    return;
  }
  for (size_t i = 0; i < objs.size(); ++i) {
    PrefetchAhead(objs, i);
    p.Place(objs[i]);
  }
}

void Reclaimer::Died(uint64_t seq) {
  auto it = std::lower_bound(live_.begin(), live_.end(), seq, [](const Live& l, uint64_t s) { return l.seq < s; });
  if (it == live_.end() || it->seq != seq) return;
  // Everything `seq` protected (objects that died right after it, and the
  // survivors filed under it) is now protected by the same snapshot: the
  // newest live one before `seq`. One lookup serves them all.
  std::vector<Dead> objs = std::move(it->objs);
  const auto newer = live_.erase(it);
  if (!objs.empty()) Settle(objs, newer);
  if (auto s = survivors_.find(seq); s != survivors_.end()) {
    std::vector<Dead> kept = std::move(s->second);
    survivors_.erase(s);
    Settle(kept, newer);
  }
}

Reclaimer::~Reclaimer() {
  FreeAll(running_);
  for (const Live& l : live_) FreeAll(l.objs);
  for (auto& [seq, objs] : survivors_) FreeAll(objs);
  TreeFreer freer{heap, pool};
  for (ClusterTree* c : final_roots_) {
    if (c == nullptr) continue;
    freer.Namespaces(c->root);
    FreeObject(c, ObjKind::kCluster, c->ByteSize(), heap, pool);
  }
}

}  // namespace kubefold::state::internal
