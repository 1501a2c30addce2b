#include "state/diff.h"

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/internal/diff_paths.h"
#include "state/internal/snapshot_data.h"

namespace kubefold::state {

using internal::ClusterTree;
using internal::NamespaceTree;
using internal::NamespaceTrie;
using internal::RecordTrie;
using internal::SnapshotData;

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
      return Records(cluster, na ? std::string_view(na->name()) : std::string_view(nb->name()),
                     na ? na->root : nullptr, nb ? nb->root : nullptr);
    }
    return NamespaceTrie::Diff(ra, rb, [&](const NamespaceTree* x, const NamespaceTree* y) {
      std::string_view ns = x ? std::string_view(x->name()) : std::string_view(y->name());
      return Records(cluster, ns, x ? x->root : nullptr, y ? y->root : nullptr);
    });
  }

 private:
  const DiffFilter& filter_;
  FunctionRef<bool(const Change&)> f_;
};

// The change log's answer (change_log.h): the entries between the two
// snapshots' ends, folded per record. Each entry names the record it
// replaced, so the entries of one workload chain by address: an entry whose
// `before` is the record an earlier entry put in continues that entry's
// chain. Addresses are compared, never read, except at the two ends of a
// chain, which are the records of the snapshots the caller holds. (An
// address can be reused only after its record was freed, which requires it
// to have been replaced first: in log order, one address is never the
// current record of two chains.)
class LogDiffer {
 public:
  using ChangeSegment = internal::ChangeSegment;
  // Entries [lo, hi) of one segment.
  struct Span {
    const ChangeSegment* seg;
    uint32_t lo, hi;
  };
  LogDiffer(const DiffFilter& filter, FunctionRef<bool(const Change&)> f) : filter_(filter), f_(f) {}

  // `spans` in log order (at most two: a segment and the one continuing it).
  void Run(std::span<const Span> spans, bool forward) {
    spans_ = spans;
    Fold();
    // Ends as the caller sees them: `from` then `to`.
    for (Chain& c : chains_) {
      if (!forward) std::swap(c.first, c.last);
      if (!c.single && c.first != nullptr && c.last != nullptr) {  // their content is compared
        __builtin_prefetch(c.first);
        __builtin_prefetch(c.last);
      }
    }
    PairRemovedWithAdded();
    Emit();
  }

 private:
  struct Chain {
    const Record* first;  // the record before the first entry (in `from`, once oriented)
    const Record* last;   // after the last entry (in `to`)
    uint32_t ns;          // offset in the names of spans_[span]
    uint8_t span;
    uint16_t cluster;
    bool dropped = false;
    // One entry: the writer logs a replacement only when the content
    // changed (an unchanged write is a no-op), so there is nothing to compare.
    bool single = true;
  };

  // Chains by their current record: open addressing, no deletion. The slot
  // of a replaced record stays but is not looked up again: its address can
  // come back only as a new record's, an `after` that overwrites the slot.
  void Fold() {
    size_t n = 0;
    for (const Span& sp : spans_) n += sp.hi - sp.lo;
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;
    slots_.assign(cap, Slot{nullptr, 0});
    chains_.clear();
    chains_.reserve(n);
    for (uint8_t k = 0; k < spans_.size(); ++k) FoldSpan(k, cap);
  }

  void FoldSpan(uint8_t k, size_t cap) {
    const Span& sp = spans_[k];
    const ChangeSegment::Entry* e = sp.seg->entries() + sp.lo;
    for (uint32_t i = sp.lo; i < sp.hi; ++i, ++e) {
      uint32_t idx = UINT32_MAX;
      if (e->before != nullptr) {
        for (size_t h = Hash(e->before) & (cap - 1);; h = (h + 1) & (cap - 1)) {
          if (slots_[h].key == nullptr) break;
          if (slots_[h].key == e->before) {
            idx = slots_[h].idx;
            break;
          }
        }
      }
      if (idx == UINT32_MAX) {
        idx = static_cast<uint32_t>(chains_.size());
        chains_.push_back(Chain{e->before, e->after, e->ns, k, e->cluster});
      } else {
        chains_[idx].last = e->after;
        chains_[idx].single = false;
      }
      if (e->after != nullptr) {
        size_t h = Hash(e->after) & (cap - 1);
        while (slots_[h].key != nullptr && slots_[h].key != e->after) h = (h + 1) & (cap - 1);
        slots_[h] = Slot{e->after, idx};
      }
    }
  }

  // A workload removed and added again between the two snapshots forms two
  // chains (nothing links an absent record to a present one): pair them by
  // key, as the walk would see one record replaced by another.
  void PairRemovedWithAdded() {
    bool any_removed = false, any_added = false;
    for (const Chain& c : chains_) {
      any_removed |= c.first != nullptr && c.last == nullptr;
      any_added |= c.first == nullptr && c.last != nullptr;
    }
    if (!any_removed || !any_added) return;
    std::unordered_map<std::string, size_t> removed;
    std::string k;
    auto key = [&](const Chain& c, const Record* r) {
      k.assign(reinterpret_cast<const char*>(&c.cluster), sizeof c.cluster);
      k += Name(c);
      for (std::string_view part : {r->group(), r->kind(), r->name()}) {
        k += '\0';
        k += part;
      }
      return k;
    };
    for (size_t i = 0; i < chains_.size(); ++i) {
      if (chains_[i].first != nullptr && chains_[i].last == nullptr) removed.emplace(key(chains_[i], chains_[i].first), i);
    }
    for (Chain& c : chains_) {
      if (c.first != nullptr || c.last == nullptr) continue;
      auto it = removed.find(key(c, c.last));
      if (it == removed.end()) continue;
      Chain& r = chains_[it->second];
      c.first = r.first;  // one chain: the old record replaced by the new
      c.single = false;
      r.dropped = true;
      removed.erase(it);
    }
  }

  // In cluster order (the names are sorted), each cluster's changes in the
  // order their first entries were logged.
  void Emit() {
    const std::vector<std::string>& names = *spans_.front().seg->cluster_names;
    std::vector<uint32_t> start(names.size() + 1, 0);
    for (const Chain& c : chains_) ++start[c.cluster + 1];
    for (size_t i = 1; i < start.size(); ++i) start[i] += start[i - 1];
    order_.resize(chains_.size());
    for (uint32_t i = 0; i < chains_.size(); ++i) order_[start[chains_[i].cluster]++] = i;
    std::string_view ns_filter = filter_.ns ? std::string_view(*filter_.ns) : std::string_view();
    for (uint32_t i : order_) {
      const Chain& c = chains_[i];
      if (c.dropped || (c.first == nullptr && c.last == nullptr)) continue;
      const std::string_view cluster = names[c.cluster];
      if (filter_.cluster && cluster != *filter_.cluster) continue;
      const std::string_view ns = Name(c);
      if (filter_.ns && ns != ns_filter) continue;
      Change change{ChangeType::kModified, cluster, ns, c.first, c.last};
      if (c.first == nullptr) {
        change.type = ChangeType::kAdded;
      } else if (c.last == nullptr) {
        change.type = ChangeType::kRemoved;
      } else if (c.first == c.last || (!c.single && !filter_.same_content && c.first->SameContent(*c.last))) {
        continue;
      }
      if (!f_(change)) return;
    }
  }

  struct Slot {
    const Record* key;
    uint32_t idx;
  };
  static size_t Hash(const Record* r) {
    return static_cast<size_t>((reinterpret_cast<uintptr_t>(r) >> 4) * 0x9e3779b97f4a7c15ull >> 20);
  }

  std::string_view Name(const Chain& c) const { return spans_[c.span].seg->Name(c.ns); }

  std::span<const Span> spans_;
  const DiffFilter& filter_;
  FunctionRef<bool(const Change&)> f_;
  std::vector<Slot> slots_;
  std::vector<Chain> chains_;
  std::vector<uint32_t> order_;
};

}  // namespace

namespace internal {

bool VisitDiffByLog(const SnapshotData* a, const SnapshotData* b, const DiffFilter& filter,
                    FunctionRef<bool(const Change&)> f) {
  if (a->composed() || b->composed()) return false;
  const bool forward = a->epoch <= b->epoch;
  const SnapshotData* older = forward ? a : b;
  const SnapshotData* newer = forward ? b : a;
  const ChangeSegment* sn = newer->log;
  if (sn == nullptr || sn->cluster_names == nullptr) return false;  // the newer one is a base
  const uint32_t end_newer = sn->End(newer->epoch);
  using Span = LogDiffer::Span;
  Span spans[2];
  size_t n = 0;
  const ChangeSegment* so = older->log;
  if (so == sn) {  // one segment
    spans[n++] = Span{sn, sn->End(older->epoch), end_newer};
  } else if (so == nullptr && older->epoch == sn->base_epoch) {  // the older one is its base
    spans[n++] = Span{sn, 0, end_newer};
  } else if (so != nullptr && sn->continues != 0 && sn->continues == so->serial) {
    // The newer segment continues the older's: its base is the older's
    // last snapshot.
    spans[n++] = Span{so, so->End(older->epoch), so->End(sn->base_epoch)};
    spans[n++] = Span{sn, 0, end_newer};
  } else {
    return false;
  }
  LogDiffer(filter, f).Run(std::span<const Span>(spans, n), forward);
  return true;
}

void VisitDiffByWalk(const SnapshotData* a, const SnapshotData* b, const DiffFilter& filter,
                     FunctionRef<bool(const Change&)> f) {
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
    std::string_view stable_name = ca ? std::string_view(ca->name()) : std::string_view(cb->name());
    if (!filter.ns) warmer.Cluster(ca, cb);  // one namespace: two lookups, nothing to overlap
    if (!differ.Namespaces(stable_name, ca, cb)) break;
  }
}

}  // namespace internal

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
  if (!internal::VisitDiffByLog(a, b, filter, f)) internal::VisitDiffByWalk(a, b, filter, f);
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
