#include "state/store.h"

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <unordered_set>

#include "state/internal/hazard.h"
#include "state/internal/record_heap.h"
#include "state/internal/snapshot_data.h"

namespace kubefold::state {

using internal::ClusterTree;
using internal::Heap;
using internal::NamespaceTraits;
using internal::NamespaceTree;
using internal::NamespaceTrie;
using internal::ObjKind;
using internal::RecordTraits;
using internal::RecordTrie;
using internal::Reclaimer;
using internal::SnapshotData;

namespace {

std::atomic<uint64_t> g_next_store_id{1};

StoreOptions Normalize(StoreOptions o) {
  if (!o.clock) o.clock = [] { return std::chrono::system_clock::now(); };
  if (o.history.keep_last == 0) o.history.keep_last = 1;
  return o;
}

std::string FormatTime(TimePoint t) {
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(t.time_since_epoch()).count();
  std::time_t secs = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%06lldZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<long long>(us % 1000000));
  return buf;
}

// Marks the single writer's section; a second concurrent writer is refused.
struct WriterGuard {
  std::atomic<bool>& flag;
  bool owned;
  explicit WriterGuard(std::atomic<bool>& f) : flag(f), owned(!f.exchange(true, std::memory_order_acquire)) {}
  ~WriterGuard() {
    if (owned) flag.store(false, std::memory_order_release);
  }
};
}  // namespace

Store::Store(StoreOptions options) : Store(std::move(options), 0) {}

Store::Store(StoreOptions options, uint64_t first_batch)
    : id_(g_next_store_id.fetch_add(1, std::memory_order_relaxed)),
      options_(Normalize(std::move(options))),
      domain_(std::make_shared<internal::StoreDomain>(first_batch)),
      log_(&domain_->change_log_bytes) {
  domain_->id = id_;
  auto* d = SnapshotData::Create(0);
  d->domain = domain_;
  d->epoch = first_batch;
  d->time = last_time_ = options_.clock();
  Heap::Enter(domain_->snapshots, d->ByteSize());
  d->refs.store(2, std::memory_order_relaxed);  // current + history
  d->log = log_.Publish(d->epoch, names_);
  domain_->reclaimer.Publish();                  // seq 0 is live
  current_.store(d, std::memory_order_release);
  history_.push_back(Retained{Snapshot(d), 0});
}

Store::~Store() {
  // REQUIRES: no call on this store is running; handles may still exist.
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    history_.clear();
    deps_.clear();
  }
  internal::Unref(current_.exchange(nullptr));
  for (SnapshotData* r : retired_) internal::Unref(r);
  retired_.clear();
  domain_->Drain(true);
  // The working tree goes to the domain, which frees it with everything
  // else once the last snapshot handle is gone (now, if none is held).
  std::vector<ClusterTree*> roots;
  for (WorkingCluster& wc : working_) roots.push_back(wc.tree);
  working_.clear();
  domain_->reclaimer.AdoptWorkingTree(std::move(roots));
  domain_->writer_alive.store(false, std::memory_order_seq_cst);
  domain_->Drain(false);  // anything released between the first drain and the flag
}

TimePoint Store::Now() const { return options_.clock(); }

// ---------------------------------------------------------------- writer ---

size_t Store::ClusterIndex(std::string_view name, bool create) {
  auto it = index_.find(name);  // heterogeneous: no string built per op
  if (it != index_.end()) return it->second;
  if (!create) return SIZE_MAX;
  auto names = std::make_shared<VersionVector::Names>(names_ ? *names_ : VersionVector::Names{});
  auto pos = std::lower_bound(names->begin(), names->end(), name);
  size_t at = static_cast<size_t>(pos - names->begin());
  names->insert(pos, std::string(name));
  working_.insert(working_.begin() + static_cast<ptrdiff_t>(at), WorkingCluster{});
  names_ = std::move(names);
  index_.clear();
  for (size_t i = 0; i < names_->size(); ++i) index_.emplace((*names_)[i], i);
  return at;
}

uint64_t Store::Advance(size_t ci) {
  if (restoring_) return 0;  // Restore sets the counters from the journal
  WorkingCluster& wc = working_[ci];
  ++wc.counter;
  if (wc.first_in_batch == 0) wc.first_in_batch = wc.counter;
  return wc.counter;
}

ClusterTree* Store::MutableCluster(size_t ci) {
  Reclaimer& w = domain_->reclaimer;
  WorkingCluster& wc = working_[ci];
  if (wc.tree != nullptr && wc.tree->birth() == w.building()) return wc.tree;
  ClusterTree* c;
  if (wc.tree == nullptr) {
    c = CreateNamed<ClusterTree>(w.pool, (*names_)[ci]);
  } else {
    ClusterTree* old = wc.tree;
    c = CopyNamed(w.pool, *old);
    Heap::Leave(w.heap.nodes, old->ByteSize());
    w.Retire(old, ObjKind::kCluster);
  }
  c->set_birth(w.building());
  Heap::Enter(w.heap.nodes, c->ByteSize());
  wc.tree = c;
  return c;
}

NamespaceTree* Store::MutableNamespace(ClusterTree* ct, std::string_view ns, uint64_t ns_hash, bool exists) {
  Reclaimer& w = domain_->reclaimer;
  if (!exists) {
    auto* n = CreateNamed<NamespaceTree>(w.pool, ns);
    n->set_birth(w.building());
    Heap::Enter(w.heap.nodes, n->ByteSize());
    NamespaceTrie::Put(ct->root, n, ns_hash, w);
    ++ct->namespaces;
    return n;
  }
  NamespaceTree** slot = NamespaceTrie::FindSlotMutable(ct->root, ns, ns_hash, w);
  NamespaceTree* old = *slot;
  if (old->birth() == w.building()) return old;
  auto* n = CopyNamed(w.pool, *old);
  n->set_birth(w.building());
  Heap::Leave(w.heap.nodes, old->ByteSize());
  w.Retire(old, ObjKind::kNamespace);
  Heap::Enter(w.heap.nodes, n->ByteSize());
  *slot = n;
  return n;
}

bool Store::ApplyUpsert(size_t ci, const std::string& ns, uint64_t ns_hash, Record*& record, uint64_t key_hash) {
  Reclaimer& w = domain_->reclaimer;
  bool ns_exists = false;
  if (const ClusterTree* c = working_[ci].tree) {
    if (const NamespaceTree* n = NamespaceTrie::Find(c->root, ns, ns_hash)) {
      ns_exists = true;
      const Record* cur = RecordTrie::Find(n->root, record->key(), key_hash);
      if (cur != nullptr && !restoring_ && cur->SameContent(*record)) {
        Record::Destroy(record);  // unchanged: no node, no counter
        record = nullptr;
        return false;
      }
    }
  }
  ClusterTree* ct = MutableCluster(ci);
  NamespaceTree* nt = MutableNamespace(ct, ns, ns_hash, ns_exists);
  if (!restoring_) record->set_counter(Advance(ci));
  record->set_birth(w.building());
  Heap::Enter(w.heap.records, record->ByteSize());
  Record* old = RecordTrie::Put(nt->root, record, key_hash, w);
  log_.Log(ci, ns, nt->log_name, old, record);
  record = nullptr;
  if (old != nullptr) {
    RecordTraits::RetireTree(old, w);
  } else {
    ++nt->workloads;
    ++ct->workloads;
    ++workloads_;
  }
  return true;
}

bool Store::ApplyDelete(size_t ci, std::string_view ns, uint64_t ns_hash, WorkloadKeyView key, uint64_t key_hash) {
  Reclaimer& w = domain_->reclaimer;
  const ClusterTree* c = working_[ci].tree;
  if (c == nullptr) return false;
  const NamespaceTree* n = NamespaceTrie::Find(c->root, ns, ns_hash);
  if (n == nullptr || RecordTrie::Find(n->root, key, key_hash) == nullptr) return false;
  ClusterTree* ct = MutableCluster(ci);
  NamespaceTree* nt = MutableNamespace(ct, ns, ns_hash, true);
  Record* gone = RecordTrie::Erase(nt->root, key, key_hash, w);
  log_.Log(ci, ns, nt->log_name, gone, nullptr);
  RecordTraits::RetireTree(gone, w);
  --nt->workloads;
  --ct->workloads;
  --workloads_;
  if (nt->workloads == 0) {  // a namespace exists while it has workloads
    NamespaceTraits::RetireTree(NamespaceTrie::Erase(ct->root, ns, ns_hash, w), w);
    --ct->namespaces;
  }
  Advance(ci);
  return true;
}

size_t Store::ApplyReplaceKind(size_t ci, Batch::Op& op, size_t& noops) {
  const std::string& group = op.replace->group;
  const std::string& kind = op.replace->kind;
  std::vector<Batch::Item>& items = op.replace->items;
  // Present now, of this kind, and absent from the new list: delete.
  std::unordered_set<std::string> wanted;
  wanted.reserve(items.size());
  for (const auto& item : items) {
    std::string k = item.ns;
    k += '\0';
    k += item.record->name();
    wanted.insert(std::move(k));
  }
  std::vector<std::pair<std::string, std::string>> gone;  // (ns, name)
  if (const ClusterTree* c = working_[ci].tree) {
    std::string probe;
    NamespaceTrie::ForEach(c->root, [&](const NamespaceTree* n) {
      RecordTrie::ForEach(n->root, [&](const Record* r) {
        if (r->kind() == kind && r->group() == group) {
          probe.assign(n->name());
          probe += '\0';
          probe += r->name();
          if (!wanted.contains(probe)) gone.emplace_back(n->name(), std::string(r->name()));
        }
        return true;
      });
      return true;
    });
  }
  size_t changed = 0;
  for (const auto& [ns, name] : gone) {
    WorkloadKeyView key(group, kind, name);
    if (ApplyDelete(ci, ns, HashName(ns), key, HashKey(key))) ++changed;
  }
  for (auto& item : items) {
    if (ApplyUpsert(ci, item.ns, item.ns_hash, item.record, item.key_hash)) {
      ++changed;
    } else {
      ++noops;
    }
  }
  return changed;
}

void Store::PrefetchPaths(const Batch& batch) {
  if (batch.ops_.size() < 8) return;  // nothing to overlap
  std::vector<internal::TrieCursor>& cursors = cursors_;
  std::vector<const internal::Node*>& ns_roots = ns_roots_;
  // First every op's namespace (a namespace trie, then its NamespaceTree),
  // then every op's record path, each moved down one level per pass and
  // prefetching what it reaches: the misses of different ops overlap.
  cursors.clear();
  ns_roots.clear();
  for (const Batch::Op& op : batch.ops_) {
    const internal::Node* root = nullptr;
    if (op.type == Batch::OpType::kUpsert || op.type == Batch::OpType::kDelete) {
      auto it = index_.find(op.cluster);
      if (it != index_.end() && working_[it->second].tree != nullptr) root = working_[it->second].tree->root;
    }
    ns_roots.push_back(root);
    if (root == nullptr) continue;
    NamespaceTrie::PrefetchNode(root);
    cursors.push_back(internal::TrieCursor{root, op.ns_hash, 0});
  }
  for (bool more = true; more;) {
    more = false;
    for (internal::TrieCursor& c : cursors) more |= NamespaceTrie::Step(c);
  }
  cursors.clear();
  for (size_t i = 0; i < batch.ops_.size(); ++i) {
    if (ns_roots[i] == nullptr) continue;
    const Batch::Op& op = batch.ops_[i];
    const NamespaceTree* n = NamespaceTrie::Find(ns_roots[i], op.ns, op.ns_hash);
    if (n == nullptr || n->root == nullptr) continue;
    RecordTrie::PrefetchNode(n->root);
    cursors.push_back(internal::TrieCursor{n->root, op.key_hash, 0});
  }
  // One level per pass; stops when every cursor has reached its entry.
  for (bool more = true; more;) {
    more = false;
    for (internal::TrieCursor& c : cursors) more |= RecordTrie::Step(c);
  }
}

bool Store::ApplyAddCluster(size_t ci) {
  if (working_[ci].tree != nullptr) return false;
  MutableCluster(ci);
  Advance(ci);
  return true;
}

bool Store::ApplyRemoveCluster(size_t ci) {
  WorkingCluster& wc = working_[ci];
  if (wc.tree == nullptr) return false;
  workloads_ -= wc.tree->workloads;
  log_.Break();  // the subtree goes whole: its records are not visited
  internal::RetireCluster(wc.tree, domain_->reclaimer);  // O(subtree): rare
  wc.tree = nullptr;
  Advance(ci);
  return true;
}

Status Store::CheckBatchNumber() const {
  // Every object records the batch that made it in 48 bits (versioned.h).
  if (domain_->reclaimer.building() > internal::Versioned::kMaxBirth) {
    return FailedPrecondition("the store's next batch would be number " +
                              std::to_string(domain_->reclaimer.building()) +
                              ", past the last its objects can record (2^48 - 1); restart the process");
  }
  return Status::Ok();
}

Result<ApplyResult> Store::Apply(Batch batch) {
  WriterGuard guard(in_writer_);
  if (!guard.owned) {
    return FailedPrecondition("Store::Apply called while another Apply or Collect runs; the store has one writer");
  }
  const Snapshot& decided = batch.decided_from_;
  if (decided.valid()) {
    if (decided.store_id() != id_) {
      return InvalidArgument("batch is decided from a snapshot of store " + std::to_string(decided.store_id()) +
                             ", not of this store (" + std::to_string(id_) + ")");
    }
    if (decided.composed()) {
      return InvalidArgument("batch is decided from a composed view; decide from a published snapshot");
    }
  }
  if (Status s = CheckBatchNumber(); !s.ok()) return s;
  applied_once_ = true;
  domain_->Drain(true);
  const TimePoint start = Now();
  PrefetchPaths(batch);
  ApplyResult result;
  delays_.clear();
  for (Batch::Op& op : batch.ops_) {
    size_t changed = 0;
    size_t noops = 0;
    switch (op.type) {
      case Batch::OpType::kUpsert: {
        size_t ci = ClusterIndex(op.cluster, true);
        changed = ApplyUpsert(ci, op.ns, op.ns_hash, op.record, op.key_hash) ? 1 : 0;
        noops = 1 - changed;
        break;
      }
      case Batch::OpType::kDelete: {
        size_t ci = ClusterIndex(op.cluster, false);
        changed = ci != SIZE_MAX && ApplyDelete(ci, op.ns, op.ns_hash, op.record->key(), op.key_hash) ? 1 : 0;
        noops = 1 - changed;
        break;
      }
      case Batch::OpType::kReplaceKind: {
        size_t ci = ClusterIndex(op.cluster, !op.replace->items.empty());
        if (ci != SIZE_MAX) changed = ApplyReplaceKind(ci, op, noops);
        break;
      }
      case Batch::OpType::kAddCluster: {
        changed = ApplyAddCluster(ClusterIndex(op.cluster, true)) ? 1 : 0;
        noops = 1 - changed;
        break;
      }
      case Batch::OpType::kRemoveCluster: {
        size_t ci = ClusterIndex(op.cluster, false);
        changed = ci != SIZE_MAX && ApplyRemoveCluster(ci) ? 1 : 0;
        noops = 1 - changed;
        break;
      }
    }
    result.applied += changed;
    result.noops += noops;
    if (changed > 0) delays_.push_back(op.received == TimePoint{} ? start : op.received);
  }
  batches_.fetch_add(1, std::memory_order_relaxed);
  applied_.fetch_add(result.applied, std::memory_order_relaxed);
  noops_.fetch_add(result.noops, std::memory_order_relaxed);
  if (result.applied > 0) Publish(Now(), decided, seq_ + 1);
  for (WorkingCluster& wc : working_) wc.first_in_batch = 0;
  result.published = result.applied > 0;
  result.seq = seq_;
  domain_->Drain(true);
  PublishStats();
  return result;
}

void Store::Publish(TimePoint now, const Snapshot& decided, uint64_t seq) {
  const TimePoint t = std::max(now, last_time_);  // snapshot times never go backwards
  last_time_ = t;
  auto* d = SnapshotData::Create(working_.size());
  d->seq = seq_ = seq;
  d->epoch = domain_->reclaimer.building();
  d->time = t;
  std::vector<uint64_t> counters(working_.size());
  for (size_t i = 0; i < working_.size(); ++i) {
    counters[i] = working_[i].counter;
    d->clusters()[i] = working_[i].tree;
  }
  d->vector = VersionVector(names_, std::move(counters));
  d->log = log_.Publish(d->epoch, names_, !restoring_);
  d->workloads = workloads_;
  d->domain = domain_;
  Heap::Enter(domain_->snapshots, d->ByteSize());
  d->refs.store(2, std::memory_order_relaxed);  // current + history
  domain_->reclaimer.Publish();  // before any older seq can die: see reclaimer.h
  assert(d->epoch + 1 == domain_->reclaimer.building());

  std::vector<Snapshot> dropped;
  PublishEvent event;
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    history_.push_back(Retained{Snapshot(d), 0});
    if (options_.on_publish && !restoring_) event.snapshot = history_.back().snapshot;
    if (decided.valid()) {
      for (size_t i = 0; i < working_.size(); ++i) {
        if (working_[i].first_in_batch != 0) {
          deps_.push_back(Dependency{(*names_)[i], working_[i].first_in_batch, decided.seq(), decided.vector()});
          if (options_.on_publish) event.dependencies.push_back(deps_.back());
        }
      }
    }
    Trim(t, dropped);
  }
  published_seq_.store(seq_, std::memory_order_release);
  retired_.push_back(current_.exchange(d, std::memory_order_seq_cst));
  ScanRetired();
  if (event.snapshot.valid()) options_.on_publish(event);

  const auto published = t;
  for (TimePoint received : delays_) {
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(published - received).count();
    if (ns < 0) ns = 0;
    double secs = static_cast<double>(ns) / 1e9;
    size_t b = 0;
    while (b < DelayHistogram::kBoundsSeconds.size() && secs > DelayHistogram::kBoundsSeconds[b]) ++b;
    delay_buckets_[b].fetch_add(1, std::memory_order_relaxed);
    delay_sum_ns_.fetch_add(static_cast<uint64_t>(ns), std::memory_order_relaxed);
  }
}

void Store::Trim(TimePoint now, std::vector<Snapshot>& dropped) {
  const HistoryOptions& h = options_.history;
  const uint64_t newest = history_.back().snapshot.seq();
  auto young = [&](const Retained& r) {
    return r.snapshot.seq() + h.keep_last > newest || now - r.snapshot.time() <= h.keep_for;
  };
  // Retention is monotone in age: everything before the first young entry is
  // old; of those only the pinned stay.
  size_t old_end = 0;
  while (old_end < history_.size() && !young(history_[old_end])) ++old_end;
  if (old_end > 0) {
    size_t kept = 0;  // compact the pinned ones to the front, in order
    for (size_t i = 0; i < old_end; ++i) {
      if (history_[i].pins > 0) {
        if (kept != i) history_[kept] = std::move(history_[i]);
        ++kept;
      } else {
        dropped.push_back(std::move(history_[i].snapshot));
      }
    }
    history_.erase(history_.begin() + static_cast<ptrdiff_t>(kept), history_.begin() + static_cast<ptrdiff_t>(old_end));
  }
  // Hard cap on unpinned entries: the oldest go first, never the newest.
  size_t unpinned = history_.size() - pinned_;
  for (size_t i = 0; unpinned > h.max_retained && i + 1 < history_.size();) {
    if (history_[i].pins > 0) {
      ++i;
      continue;
    }
    dropped.push_back(std::move(history_[i].snapshot));
    history_.erase(history_.begin() + static_cast<ptrdiff_t>(i));
    --unpinned;
  }
  // A dependency already covered by the oldest retained vector holds for
  // every view history can still answer.
  const VersionVector& oldest = history_.front().snapshot.vector();
  std::erase_if(deps_, [&](const Dependency& dep) { return dep.decided <= oldest; });
}

void Store::ScanRetired() {
  if (retired_.empty()) return;
  hazards_.clear();
  internal::CollectHazards(hazards_);
  std::sort(hazards_.begin(), hazards_.end());
  std::erase_if(retired_, [&](SnapshotData* r) {
    if (std::binary_search(hazards_.begin(), hazards_.end(), static_cast<const void*>(r))) return false;
    internal::Unref(r);
    return true;
  });
}

void Store::Collect() {
  WriterGuard guard(in_writer_);
  if (!guard.owned) return;  // the running writer call does this work anyway
  domain_->Drain(true);
  std::vector<Snapshot> dropped;
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    Trim(Now(), dropped);
  }
  dropped.clear();
  ScanRetired();
  domain_->Drain(true);
  PublishStats();
}

void Store::PublishStats() {
  const Heap& heap = domain_->reclaimer.heap;
  auto u = [](int64_t v) { return static_cast<uint64_t>(v < 0 ? 0 : v); };
  st_nodes_live_.store(u(heap.nodes.live), std::memory_order_relaxed);
  st_nodes_current_.store(u(heap.nodes.current), std::memory_order_relaxed);
  st_node_bytes_live_.store(u(heap.nodes.live_bytes), std::memory_order_relaxed);
  st_node_bytes_current_.store(u(heap.nodes.current_bytes), std::memory_order_relaxed);
  st_records_live_.store(u(heap.records.live), std::memory_order_relaxed);
  st_record_bytes_live_.store(u(heap.records.live_bytes), std::memory_order_relaxed);
  st_record_bytes_current_.store(u(heap.records.current_bytes), std::memory_order_relaxed);
  st_snapshot_bytes_.store(u(domain_->snapshots.live_bytes), std::memory_order_relaxed);
  st_pool_free_bytes_.store(domain_->reclaimer.pool.free_bytes(), std::memory_order_relaxed);
  size_t clusters = 0;
  for (const WorkingCluster& wc : working_) clusters += wc.tree != nullptr;
  st_clusters_.store(clusters, std::memory_order_relaxed);
  st_workloads_.store(workloads_, std::memory_order_relaxed);
}

Status Store::Restore(RestoredSnapshot s) {
  WriterGuard guard(in_writer_);
  if (!guard.owned) return FailedPrecondition("Store::Restore called while another writer call runs");
  if (applied_once_) {
    return FailedPrecondition("Store::Restore after Apply: restore a journal into a new store before folding");
  }
  if (Status st = CheckBatchNumber(); !st.ok()) return st;
  const std::string where = "restored snapshot " + std::to_string(s.seq) + ": ";
  if (s.seq <= seq_) {
    return InvalidArgument(where + "seq is not after the newest (" + std::to_string(seq_) + ")");
  }
  // Validate everything first: a refused snapshot changes nothing.
  for (const RestoredChange& c : s.changes) {
    if (c.cluster.empty() || c.cluster.size() > kMaxKeyPartBytes) {
      return InvalidArgument(where + "cluster name \"" + c.cluster + "\" is empty or longer than 253 bytes");
    }
    Status st = Status::Ok();
    if (c.type == RestoredChange::Type::kPut) st = ValidateWorkload(c.ns, c.object);
    if (c.type == RestoredChange::Type::kErase) st = ValidateKey(c.ns, c.object.key);
    if (!st.ok()) return InvalidArgument(where + st.message());
    if (c.type == RestoredChange::Type::kPut && c.counter == 0) {
      return InvalidArgument(where + "record " + c.ns + "/" + c.object.key.name + " has counter 0");
    }
  }
  for (size_t i = 0; i < s.vector.size(); ++i) {
    if (s.vector.name(i).empty()) return InvalidArgument(where + "the vector names an empty cluster");
  }
  domain_->Drain(true);
  restoring_ = true;
  delays_.clear();
  for (RestoredChange& c : s.changes) {
    switch (c.type) {
      case RestoredChange::Type::kPut: {
        Record* r = Record::Create(c.object);
        r->set_counter(c.counter);
        const uint64_t kh = HashKey(r->key());
        ApplyUpsert(ClusterIndex(c.cluster, true), c.ns, HashName(c.ns), r, kh);
        break;
      }
      case RestoredChange::Type::kErase: {
        size_t ci = ClusterIndex(c.cluster, false);
        if (ci != SIZE_MAX) ApplyDelete(ci, c.ns, HashName(c.ns), c.object.key, HashKey(c.object.key));
        break;
      }
      case RestoredChange::Type::kAddCluster: ApplyAddCluster(ClusterIndex(c.cluster, true)); break;
      case RestoredChange::Type::kRemoveCluster: {
        size_t ci = ClusterIndex(c.cluster, false);
        if (ci != SIZE_MAX) ApplyRemoveCluster(ci);
        break;
      }
    }
  }
  for (size_t i = 0; i < s.vector.size(); ++i) {
    working_[ClusterIndex(s.vector.name(i), true)].counter = s.vector.counter(i);
  }
  last_time_ = s.time;  // the journal's times, even if older than seq 0's
  Publish(s.time, Snapshot(), s.seq);
  restoring_ = false;
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    if (s.pins > 0) {
      history_.back().pins = s.pins;
      ++pinned_;
    }
    for (RecordedDependency& dep : s.dependencies) deps_.push_back(std::move(dep));
  }
  domain_->Drain(true);
  PublishStats();
  return Status::Ok();
}

// --------------------------------------------------------------- readers ---

void Store::CountRead(bool current, bool composed) const {
  ReadShard& shard = reads_[internal::ThisThreadHazardSlot().index % kReadShards];
  if (composed) {
    shard.composed.fetch_add(1, std::memory_order_relaxed);
  } else if (current) {
    shard.current.fetch_add(1, std::memory_order_relaxed);
  } else {
    shard.retained.fetch_add(1, std::memory_order_relaxed);
  }
}

Snapshot Store::Current() const {
  internal::HazardSlot& slot = internal::ThisThreadHazardSlot();
  SnapshotData* p = current_.load(std::memory_order_acquire);
  for (;;) {
    slot.ptr.store(p, std::memory_order_seq_cst);
    SnapshotData* q = current_.load(std::memory_order_seq_cst);
    if (q == p) break;
    p = q;
  }
  // p is announced and was current after the announcement: the writer will
  // not drop its reference before our slot is cleared.
  p->refs.fetch_add(1, std::memory_order_relaxed);
  slot.ptr.store(nullptr, std::memory_order_release);
  reads_[slot.index % kReadShards].current.fetch_add(1, std::memory_order_relaxed);
  return Snapshot(p);
}

ptrdiff_t Store::FindRetained(uint64_t seq) const {
  auto it = std::lower_bound(history_.begin(), history_.end(), seq,
                             [](const Retained& r, uint64_t s) { return r.snapshot.seq() < s; });
  if (it == history_.end() || it->snapshot.seq() != seq) return -1;
  return it - history_.begin();
}

Status Store::LookupError(uint64_t seq) const {
  uint64_t newest = history_.back().snapshot.seq();
  if (seq > newest) {
    return NotFound("snapshot " + std::to_string(seq) + " has not been published; the newest is " +
                    std::to_string(newest));
  }
  return Gone("snapshot " + std::to_string(seq) + " was dropped by retention; the oldest retained is " +
              std::to_string(history_.front().snapshot.seq()));
}

Result<Snapshot> Store::Get(uint64_t seq) const {
  Snapshot s;
  bool newest = false;
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    ptrdiff_t i = FindRetained(seq);
    if (i < 0) return LookupError(seq);
    s = history_[static_cast<size_t>(i)].snapshot;
    newest = static_cast<size_t>(i) + 1 == history_.size();
  }
  CountRead(newest, false);
  return s;
}

Result<Snapshot> Store::AtOrBefore(TimePoint t) const {
  Snapshot s;
  bool newest = false;
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    auto it = std::upper_bound(history_.begin(), history_.end(), t,
                               [](TimePoint x, const Retained& r) { return x < r.snapshot.time(); });
    if (it == history_.begin()) {
      return Gone("no retained snapshot was published at or before " + FormatTime(t) +
                  "; the oldest retained (seq " + std::to_string(history_.front().snapshot.seq()) +
                  ") is from " + FormatTime(history_.front().snapshot.time()));
    }
    --it;
    s = it->snapshot;
    newest = it + 1 == history_.end();
  }
  CountRead(newest, false);
  return s;
}

Result<Snapshot> Store::Pin(uint64_t seq) {
  std::lock_guard<std::mutex> lock(history_mu_);
  ptrdiff_t i = FindRetained(seq);
  if (i < 0) return LookupError(seq);
  Retained& r = history_[static_cast<size_t>(i)];
  if (r.pins++ == 0) ++pinned_;
  return r.snapshot;
}

Status Store::Unpin(uint64_t seq) {
  std::lock_guard<std::mutex> lock(history_mu_);
  ptrdiff_t i = FindRetained(seq);
  if (i < 0 || history_[static_cast<size_t>(i)].pins == 0) {
    return FailedPrecondition("snapshot " + std::to_string(seq) + " is not pinned");
  }
  Retained& r = history_[static_cast<size_t>(i)];
  if (--r.pins == 0) --pinned_;  // retention drops it at the writer's next pass
  return Status::Ok();
}

RetentionState Store::Retention() const {
  RetentionState out;
  std::lock_guard<std::mutex> lock(history_mu_);
  out.newest = history_.back().snapshot.seq();
  out.oldest_unpinned = out.newest;
  bool found = false;
  for (const Retained& r : history_) {
    if (r.pins > 0) {
      out.pinned.emplace_back(r.snapshot.seq(), r.pins);
    } else if (!found) {
      out.oldest_unpinned = r.snapshot.seq();
      found = true;
    }
    // Unpinned entries are a suffix after the first one; pinned ones are
    // few: stop once every pinned entry has been seen.
    if (found && out.pinned.size() == pinned_) break;
  }
  return out;
}

std::vector<RetainedSnapshot> Store::ListRetained(uint64_t from_seq, size_t limit) const {
  std::vector<RetainedSnapshot> out;
  std::lock_guard<std::mutex> lock(history_mu_);
  auto it = std::lower_bound(history_.begin(), history_.end(), from_seq,
                             [](const Retained& r, uint64_t s) { return r.snapshot.seq() < s; });
  for (; it != history_.end() && out.size() < limit; ++it) {
    out.push_back(RetainedSnapshot{it->snapshot.seq(), it->snapshot.time(), it->snapshot.vector(), it->pins});
  }
  return out;
}

Result<Snapshot> Store::ComposeAt(const VersionVector& v) const {
  std::unique_lock<std::mutex> lock(history_mu_);
  const SnapshotData* newest = SnapshotAccess::Data(history_.back().snapshot);
  for (size_t i = 0; i < v.size(); ++i) {
    if (newest->Find(v.name(i)) < 0) {
      return InvalidArgument("vector names cluster \"" + std::string(v.name(i)) +
                             "\", which this store has never seen");
    }
  }
  const auto& names = newest->vector.shared_names();
  const size_t n = newest->vector.size();
  auto* d = SnapshotData::Create(n);
  d->domain = domain_;
  std::vector<uint64_t> counters(n);
  std::vector<SnapshotData*> sources;
  for (size_t ci = 0; ci < n; ++ci) {
    std::string_view name = (*names)[ci];
    const uint64_t target = v.Get(name);
    // Components grow with seq: find the newest entry not beyond target.
    auto it = std::partition_point(history_.begin(), history_.end(),
                                   [&](const Retained& r) { return r.snapshot.vector().Get(name) <= target; });
    if (it == history_.begin()) {
      SnapshotData::Destroy(d);
      return Gone("history no longer reaches cluster \"" + std::string(name) + "\" at counter " +
                  std::to_string(target) + ": the oldest retained snapshot (seq " +
                  std::to_string(history_.front().snapshot.seq()) + ") has it at " +
                  std::to_string(history_.front().snapshot.vector().Get(name)));
    }
    SnapshotData* src = SnapshotAccess::Data(std::prev(it)->snapshot);
    ptrdiff_t k = src->Find(name);
    if (k >= 0) {
      counters[ci] = src->vector.counter(static_cast<size_t>(k));
      d->clusters()[ci] = src->clusters()[static_cast<size_t>(k)];
      if (d->clusters()[ci] != nullptr) d->workloads += d->clusters()[ci]->workloads;
    }
    if (std::find(sources.begin(), sources.end(), src) == sources.end()) {
      sources.push_back(src);
      d->time = std::max(d->time, src->time);
    }
  }
  for (SnapshotData* s : sources) s->refs.fetch_add(1, std::memory_order_relaxed);
  lock.unlock();
  d->sources = std::make_unique<std::vector<SnapshotData*>>(std::move(sources));
  d->vector = VersionVector(names, std::move(counters));
  CountRead(false, true);
  return Snapshot(d);
}

Result<CausalCheck> Store::CheckCausallyClosed(const VersionVector& v) const {
  std::lock_guard<std::mutex> lock(history_mu_);
  const Snapshot& oldest = history_.front().snapshot;
  if (!(oldest.vector() <= v)) {
    return Gone("vector " + v.ToJson() + " is not covered by history: the oldest retained snapshot (seq " +
                std::to_string(oldest.seq()) + ") is at " + oldest.vector().ToJson());
  }
  for (const Dependency& dep : deps_) {
    if (v.Get(dep.cluster) >= dep.first_counter && !(dep.decided <= v)) {
      return CausalCheck{false, "includes event " + std::to_string(dep.first_counter) + " of cluster \"" +
                                    dep.cluster + "\", which was decided from snapshot " +
                                    std::to_string(dep.decided_seq) + " at " + dep.decided.ToJson() +
                                    ", but does not include that snapshot"};
    }
  }
  return CausalCheck{};
}

StoreStats Store::Stats() const {
  StoreStats s;
  s.seq = published_seq_.load(std::memory_order_acquire);
  s.workloads = st_workloads_.load(std::memory_order_relaxed);
  s.clusters = st_clusters_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.events_applied = applied_.load(std::memory_order_relaxed);
  s.events_noop = noops_.load(std::memory_order_relaxed);
  {
    std::lock_guard<std::mutex> lock(history_mu_);
    s.retained_snapshots = history_.size();
    s.pinned_snapshots = pinned_;
  }
  s.nodes_live = st_nodes_live_.load(std::memory_order_relaxed);
  s.nodes_current = st_nodes_current_.load(std::memory_order_relaxed);
  s.node_bytes_live = st_node_bytes_live_.load(std::memory_order_relaxed);
  s.node_bytes_current = st_node_bytes_current_.load(std::memory_order_relaxed);
  s.records_live = st_records_live_.load(std::memory_order_relaxed);
  s.record_bytes_live = st_record_bytes_live_.load(std::memory_order_relaxed);
  s.record_bytes_current = st_record_bytes_current_.load(std::memory_order_relaxed);
  s.snapshot_bytes_live = st_snapshot_bytes_.load(std::memory_order_relaxed);
  s.pool_free_bytes = st_pool_free_bytes_.load(std::memory_order_relaxed);
  s.change_log_bytes = static_cast<uint64_t>(std::max<int64_t>(0, domain_->change_log_bytes.load(std::memory_order_relaxed)));
  s.record_slab_free_bytes = internal::RecordHeap::Count().free_bytes();
  auto sub = [](uint64_t a, uint64_t b) { return a > b ? a - b : 0; };
  s.retained_bytes = sub(s.node_bytes_live, s.node_bytes_current) + sub(s.record_bytes_live, s.record_bytes_current);
  s.version_fragmentation = s.nodes_current == 0 ? 0.0
                                                 : static_cast<double>(sub(s.nodes_live, s.nodes_current)) /
                                                       static_cast<double>(s.nodes_current);
  for (const ReadShard& shard : reads_) {
    s.reads_current += shard.current.load(std::memory_order_relaxed);
    s.reads_retained += shard.retained.load(std::memory_order_relaxed);
    s.reads_composed += shard.composed.load(std::memory_order_relaxed);
  }
  uint64_t running = 0;
  for (size_t b = 0; b < DelayHistogram::kBoundsSeconds.size(); ++b) {
    running += delay_buckets_[b].load(std::memory_order_relaxed);
    s.update_delay.cumulative[b] = running;
  }
  s.update_delay.count = running + delay_buckets_.back().load(std::memory_order_relaxed);
  s.update_delay.sum_seconds = static_cast<double>(delay_sum_ns_.load(std::memory_order_relaxed)) / 1e9;
  return s;
}

}  // namespace kubefold::state
