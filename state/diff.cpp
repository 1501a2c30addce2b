#include "state/diff.h"

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
