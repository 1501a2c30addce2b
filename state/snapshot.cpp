#include "state/snapshot.h"

#include <algorithm>
#include <cassert>
#include <cstdint>

#include "state/internal/snapshot_data.h"

namespace kubefold::state {
namespace internal {

ptrdiff_t SnapshotData::Find(std::string_view cluster) const {
  const auto& names = vector.shared_names();
  if (!names) return -1;
  auto it = std::lower_bound(names->begin(), names->end(), cluster);
  if (it == names->end() || *it != cluster) return -1;
  return it - names->begin();
}

SnapshotData* SnapshotData::Create(size_t clusters) {
  static_assert(alignof(SnapshotData) % alignof(ClusterTree*) == 0);
  assert(clusters <= UINT32_MAX);
  void* mem = ::operator new(sizeof(SnapshotData) + clusters * sizeof(ClusterTree*));
  auto* d = new (mem) SnapshotData();
  d->num_clusters_ = static_cast<uint32_t>(clusters);
  std::fill_n(d->clusters().begin(), clusters, nullptr);
  return d;
}

void SnapshotData::Destroy(SnapshotData* d) {
  d->~SnapshotData();
  ::operator delete(d);
}

static void Push(StoreDomain* dom, SnapshotData* d) {
  if (d->log != nullptr) ChangeSegment::Unref(d->log);  // the field becomes next_pending
  SnapshotData* head = dom->pending.load(std::memory_order_relaxed);
  do {
    d->next_pending = head;
  } while (!dom->pending.compare_exchange_weak(head, d, std::memory_order_seq_cst, std::memory_order_relaxed));
}

void Unref(SnapshotData* d) {
  if (d->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  // The last reference: `d` is ours until pushed. Keep its domain alive
  // across the push, since a concurrent drain may free `d` right after.
  std::shared_ptr<StoreDomain> dom = d->domain;
  Push(dom.get(), d);
  // Once the writer is gone nobody else will drain: do it here. Orphan
  // drains only delete SnapshotData objects (the domain frees the trees), so
  // several threads may run them at once.
  if (!dom->writer_alive.load(std::memory_order_seq_cst)) dom->Drain(false);
}

void StoreDomain::Drain(bool writer) {
  std::vector<SnapshotData*> order;
  for (;;) {
    SnapshotData* list = pending.exchange(nullptr, std::memory_order_acquire);
    if (list == nullptr) return;
    // The stack holds the last release first. Deaths are handled oldest
    // epoch first: a dying snapshot's objects then find no older live
    // snapshot and are freed at once, where newest first would re-file each
    // under an older snapshot that dies next (the history journal releases
    // hundreds of snapshots together; retention releases one at a time).
    order.clear();
    for (; list != nullptr; list = list->next_pending) order.push_back(list);
    if (order.size() > 1) {
      std::sort(order.begin(), order.end(), [](const SnapshotData* a, const SnapshotData* b) {
        return a->composed() != b->composed() ? a->composed() : a->epoch < b->epoch;  // views first: they release sources
      });
    }
    for (SnapshotData* d : order) {
      if (d->composed()) {
        for (SnapshotData* s : *d->sources) {
          // Same domain (composition never crosses stores): push, the loop drains.
          if (s->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) Push(this, s);
        }
      } else if (writer) {
        reclaimer.Died(d->epoch);
        Heap::Free(snapshots, d->ByteSize());
      }
      // `d` may hold the last owner of this domain besides the caller's,
      // which keeps it alive for the whole loop.
      SnapshotData::Destroy(d);
    }
  }
}

}  // namespace internal

using internal::NamespaceTrie;
using internal::RecordTrie;
using internal::SnapshotData;

Snapshot::Snapshot(const Snapshot& other) : d_(other.d_) {
  if (d_) d_->refs.fetch_add(1, std::memory_order_relaxed);
}

Snapshot& Snapshot::operator=(const Snapshot& other) {
  if (this != &other) {
    if (other.d_) other.d_->refs.fetch_add(1, std::memory_order_relaxed);
    if (d_) internal::Unref(d_);
    d_ = other.d_;
  }
  return *this;
}

Snapshot& Snapshot::operator=(Snapshot&& other) noexcept {
  if (this != &other) {
    if (d_) internal::Unref(d_);
    d_ = other.d_;
    other.d_ = nullptr;
  }
  return *this;
}

Snapshot::~Snapshot() {
  if (d_) internal::Unref(d_);
}

uint64_t Snapshot::seq() const { return d_->seq; }
bool Snapshot::composed() const { return d_->composed(); }
TimePoint Snapshot::time() const { return d_->time; }
const VersionVector& Snapshot::vector() const { return d_->vector; }
uint64_t Snapshot::store_id() const { return d_->domain->id; }
uint64_t Snapshot::workload_count() const { return d_->workloads; }

size_t Snapshot::cluster_count() const {
  return static_cast<size_t>(std::count_if(d_->clusters().begin(), d_->clusters().end(),
                                           [](const internal::ClusterTree* c) { return c != nullptr; }));
}

static const internal::ClusterTree* FindCluster(const SnapshotData* d, std::string_view name) {
  ptrdiff_t i = d->Find(name);
  return i < 0 ? nullptr : d->clusters()[static_cast<size_t>(i)];
}

static const internal::NamespaceTree* FindNamespace(const SnapshotData* d, std::string_view cluster,
                                                     std::string_view ns) {
  const internal::ClusterTree* c = FindCluster(d, cluster);
  if (c == nullptr) return nullptr;
  return NamespaceTrie::Find(c->root, ns, HashName(ns));
}

const Record* Snapshot::Get(std::string_view cluster, std::string_view ns, WorkloadKeyView key) const {
  const internal::NamespaceTree* n = FindNamespace(d_, cluster, ns);
  if (n == nullptr) return nullptr;
  return RecordTrie::Find(n->root, key, HashKey(key));
}

std::optional<ClusterInfo> Snapshot::Cluster(std::string_view cluster) const {
  ptrdiff_t i = d_->Find(cluster);
  if (i < 0 || d_->clusters()[static_cast<size_t>(i)] == nullptr) return std::nullopt;
  const internal::ClusterTree* c = d_->clusters()[static_cast<size_t>(i)];
  return ClusterInfo{c->name(), d_->vector.counter(static_cast<size_t>(i)), c->namespaces, c->workloads};
}

uint64_t Snapshot::CountWorkloads(std::string_view cluster) const {
  const internal::ClusterTree* c = FindCluster(d_, cluster);
  return c == nullptr ? 0 : c->workloads;
}

uint64_t Snapshot::CountWorkloads(std::string_view cluster, std::string_view ns) const {
  const internal::NamespaceTree* n = FindNamespace(d_, cluster, ns);
  return n == nullptr ? 0 : n->workloads;
}

bool Snapshot::ForEachCluster(FunctionRef<bool(const ClusterInfo&)> f) const {
  for (size_t i = 0; i < d_->clusters().size(); ++i) {
    const internal::ClusterTree* c = d_->clusters()[i];
    if (c == nullptr) continue;
    if (!f(ClusterInfo{c->name(), d_->vector.counter(i), c->namespaces, c->workloads})) return false;
  }
  return true;
}

static bool VisitCluster(const internal::ClusterTree* c, FunctionRef<bool(const WorkloadRef&)> f) {
  return NamespaceTrie::ForEach(c->root, [&](const internal::NamespaceTree* n) {
    return RecordTrie::ForEach(n->root, [&](const Record* r) { return f(WorkloadRef{c->name(), n->name(), r}); });
  });
}

bool Snapshot::ForEachNamespace(std::string_view cluster, FunctionRef<bool(const NamespaceInfo&)> f) const {
  const internal::ClusterTree* c = FindCluster(d_, cluster);
  if (c == nullptr) return true;
  return NamespaceTrie::ForEach(
      c->root, [&](const internal::NamespaceTree* n) { return f(NamespaceInfo{c->name(), n->name(), n->workloads}); });
}

bool Snapshot::ForEachWorkload(FunctionRef<bool(const WorkloadRef&)> f) const {
  for (const internal::ClusterTree* c : d_->clusters()) {
    if (c != nullptr && !VisitCluster(c, f)) return false;
  }
  return true;
}

bool Snapshot::ForEachWorkload(std::string_view cluster, FunctionRef<bool(const WorkloadRef&)> f) const {
  const internal::ClusterTree* c = FindCluster(d_, cluster);
  return c == nullptr || VisitCluster(c, f);
}

bool Snapshot::ForEachWorkload(std::string_view cluster, std::string_view ns,
                               FunctionRef<bool(const WorkloadRef&)> f) const {
  const internal::ClusterTree* c = FindCluster(d_, cluster);
  if (c == nullptr) return true;
  const internal::NamespaceTree* n = NamespaceTrie::Find(c->root, ns, HashName(ns));
  if (n == nullptr) return true;
  return RecordTrie::ForEach(n->root, [&](const Record* r) { return f(WorkloadRef{c->name(), n->name(), r}); });
}

}  // namespace kubefold::state
