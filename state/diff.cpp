#include "state/diff.h"

#include <cstdint>
#include <vector>

#include "state/internal/snapshot_data.h"

namespace kubefold::state {

using internal::ClusterTree;
using internal::NamespaceTree;
using internal::NamespaceTrie;
using internal::RecordTrie;

std::string_view ChangeTypeName(ChangeType t) {
  switch (t) {
    case ChangeType::kAdded: return "added";
    case ChangeType::kRemoved: return "removed";
    case ChangeType::kModified: return "modified";
  }
  return "unknown";
}

namespace {

using internal::Node;
using internal::Versioned;

// Warmer: staged prefetching ahead of a diff.
//
// The walk below is depth-first, and each step down a trie waits for a
// cache miss: on a map larger than the caches, a diff of 1,000 changes is a
// chain of several thousand misses taken one after another (DiffCold in
// state_bench). Before a cluster is walked, the warmer goes down the same
// differing paths breadth-first, one level per pass for all of the
// cluster's paths at once, prefetching what the next pass reads; the misses
// of different paths then overlap, and the walk finds its nodes and records
// in cache. It reads only what the walk reads and changes nothing. It stops
// pushing after kMaxItems items per cluster: a diff that large reads far
// more than the caches hold, and the walk would evict what was fetched.
class Warmer {
 public:
  static constexpr size_t kMaxItems = 4096;

  void Cluster(const ClusterTree* a, const ClusterTree* b) {
    budget_ = kMaxItems;
    next_.clear();
    Push(a ? a->root : nullptr, b ? b->root : nullptr, Kind::kNamespaceNode);
    while (!next_.empty()) {
      cur_.swap(next_);
      next_.clear();
      for (const Item& it : cur_) Expand(it);
    }
  }

 private:
  enum class Kind : uint8_t { kNamespaceNode, kNamespace, kRecordNode };
  struct Item {
    const void* a;
    const void* b;
    Kind kind;
  };

  static void Prefetch(const void* p, Kind kind) {
    switch (kind) {
      case Kind::kNamespaceNode: NamespaceTrie::PrefetchNode(static_cast<const Node*>(p)); return;
      case Kind::kRecordNode: RecordTrie::PrefetchNode(static_cast<const Node*>(p)); return;
      case Kind::kNamespace:
        __builtin_prefetch(p);
        __builtin_prefetch(static_cast<const char*>(p) + sizeof(NamespaceTree) - 1);
        return;
    }
  }

  void Push(const void* a, const void* b, Kind kind) {
    if (a == b || budget_ == 0) return;
    --budget_;
    if (a != nullptr) Prefetch(a, kind);
    if (b != nullptr) Prefetch(b, kind);
    next_.push_back(Item{a, b, kind});
  }

  void Expand(const Item& it) {
    if (it.kind == Kind::kNamespace) {
      const auto* a = static_cast<const NamespaceTree*>(it.a);
      const auto* b = static_cast<const NamespaceTree*>(it.b);
      Push(a ? a->root : nullptr, b ? b->root : nullptr, Kind::kRecordNode);
      return;
    }
    Nodes(static_cast<const Node*>(it.a), static_cast<const Node*>(it.b), it.kind);
  }

  // Entries of two nodes at the same place that differ: namespaces go to the
  // next pass, records are prefetched (the walk compares their content).
  void Entries(const Versioned* x, const Versioned* y, Kind node_kind) {
    if (node_kind == Kind::kNamespaceNode) {
      Push(x, y, Kind::kNamespace);
      return;
    }
    if (x != nullptr) RecordTrie::PrefetchEntry(x);
    if (y != nullptr) RecordTrie::PrefetchEntry(y);
  }

  void Nodes(const Node* a, const Node* b, Kind kind) {
    auto entry = [&](const Versioned* x, const Versioned* y) { Entries(x, y, kind); };
    auto node = [&](const Versioned* x, const Versioned* y) { Push(x, y, kind); };
    if (kind == Kind::kNamespaceNode) {
      NamespaceTrie::ForEachDifferingChild(a, b, entry, node);
    } else {
      RecordTrie::ForEachDifferingChild(a, b, entry, node);
    }
  }

  std::vector<Item> cur_, next_;
  size_t budget_ = 0;
};

class Differ {
 public:
  Differ(const DiffFilter& filter, FunctionRef<bool(const Change&)> f) : filter_(filter), f_(f) {}

  bool Records(std::string_view cluster, std::string_view ns, const internal::Node* a, const internal::Node* b) {
    return RecordTrie::Diff(a, b, [&](const Record* x, const Record* y) {
      if (x == nullptr) return f_(Change{ChangeType::kAdded, cluster, ns, nullptr, y});
      if (y == nullptr) return f_(Change{ChangeType::kRemoved, cluster, ns, x, nullptr});
      if (x == y || (!filter_.same_content && x->SameContent(*y))) return true;
      return f_(Change{ChangeType::kModified, cluster, ns, x, y});
    });
  }

  bool Namespaces(std::string_view cluster, const ClusterTree* a, const ClusterTree* b) {
    const internal::Node* ra = a ? a->root : nullptr;
    const internal::Node* rb = b ? b->root : nullptr;
    if (filter_.ns) {  // one namespace: look it up directly
      uint64_t h = HashName(*filter_.ns);
      const NamespaceTree* na = NamespaceTrie::Find(ra, *filter_.ns, h);
      const NamespaceTree* nb = NamespaceTrie::Find(rb, *filter_.ns, h);
      if (na == nb) return true;
      return Records(cluster, na ? std::string_view(na->name) : std::string_view(nb->name),
                     na ? na->root : nullptr, nb ? nb->root : nullptr);
    }
    return NamespaceTrie::Diff(ra, rb, [&](const NamespaceTree* x, const NamespaceTree* y) {
      std::string_view ns = x ? std::string_view(x->name) : std::string_view(y->name);
      return Records(cluster, ns, x ? x->root : nullptr, y ? y->root : nullptr);
    });
  }

 private:
  const DiffFilter& filter_;
  FunctionRef<bool(const Change&)> f_;
};

}  // namespace

Status VisitDiff(const Snapshot& from, const Snapshot& to, const DiffFilter& filter,
                 FunctionRef<bool(const Change&)> f) {
  if (!from.valid() || !to.valid()) return InvalidArgument("diff of an invalid (empty) snapshot handle");
  if (from.store_id() != to.store_id()) {
    return InvalidArgument("diff across stores: snapshot " + std::to_string(from.seq()) + " of store " +
                           std::to_string(from.store_id()) + " vs snapshot " + std::to_string(to.seq()) +
                           " of store " + std::to_string(to.store_id()));
  }
  const internal::SnapshotData* a = SnapshotAccess::Data(from);
  const internal::SnapshotData* b = SnapshotAccess::Data(to);
  if (a == b) return Status::Ok();
  Differ differ(filter, f);
  Warmer warmer;
  // Walk the union of both cluster tables in name order.
  const VersionVector& va = a->vector;
  const VersionVector& vb = b->vector;
  size_t i = 0, j = 0;
  while (i < va.size() || j < vb.size()) {
    const ClusterTree* ca = nullptr;
    const ClusterTree* cb = nullptr;
    std::string_view name;
    if (j == vb.size() || (i < va.size() && va.name(i) < vb.name(j))) {
      name = va.name(i);
      ca = a->clusters()[i++];
    } else if (i == va.size() || vb.name(j) < va.name(i)) {
      name = vb.name(j);
      cb = b->clusters()[j++];
    } else {
      name = va.name(i);
      ca = a->clusters()[i++];
      cb = b->clusters()[j++];
    }
    if (ca == cb) continue;
    if (filter.cluster && name != *filter.cluster) continue;
    std::string_view stable_name = ca ? std::string_view(ca->name) : std::string_view(cb->name);
    if (!filter.ns) warmer.Cluster(ca, cb);  // one namespace: two lookups, nothing to overlap
    if (!differ.Namespaces(stable_name, ca, cb)) break;
  }
  return Status::Ok();
}

Result<DiffResult> Diff(const Snapshot& from, const Snapshot& to, const DiffFilter& filter) {
  DiffResult out;
  Status s = VisitDiff(from, to, filter, [&](const Change& c) {
    out.changes_.push_back(c);
    switch (c.type) {
      case ChangeType::kAdded: ++out.added_; break;
      case ChangeType::kRemoved: ++out.removed_; break;
      case ChangeType::kModified: ++out.modified_; break;
    }
    return true;
  });
  if (!s.ok()) return s;
  out.from_ = from;
  out.to_ = to;
  return out;
}

}  // namespace kubefold::state
