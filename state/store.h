// Store: the versioned cluster -> namespace -> workload map.
//
// One writer thread applies batches; each batch that changes anything is
// published as a new immutable Snapshot {root, vector, seq, time}. Readers on
// any thread take the current snapshot in O(1) without copying and without
// ever blocking on the writer; the writer never waits for readers.
//
// Each cluster owns one vector component, advanced by one for every operation
// that changes that cluster's subtree (an unchanged write is dropped and
// advances nothing). Components never go backwards.
//
// History keeps recent snapshots by count and by time window, plus pinned
// ones; a view as of any vector can be composed from retained per-cluster
// subtrees; batches may record the snapshot they were decided from, so the
// store can tell whether a vector is causally closed.
//
// Thread-safety:
//   Writer thread only (one at a time; concurrent calls fail with
//   kFailedPrecondition): Apply, Collect.
//   Any thread: Current, Get, AtOrBefore, Pin, Unpin, ListRetained,
//   ComposeAt, CheckCausallyClosed, Stats, id.
//   Current never takes a lock. History lookups take a mutex held for
//   O(log retained); the writer holds it only to append and trim.
//   No call may still be running when the Store is destroyed; Snapshot
//   handles may outlive it.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "state/batch.h"
#include "state/internal/change_log.h"
#include "state/internal/trie_cursor.h"
#include "state/snapshot.h"
#include "state/stats.h"
#include "state/status.h"
#include "state/version_vector.h"

namespace kubefold::state {

namespace internal {
struct StoreDomain;
struct ClusterTree;
struct NamespaceTree;
struct SnapshotData;
}  // namespace internal

struct HistoryOptions {
  // The newest `keep_last` snapshots are kept (at least 1: the current one).
  size_t keep_last = 1024;
  // Older snapshots are kept while younger than this.
  std::chrono::milliseconds keep_for = std::chrono::minutes(10);
  // Hard cap on unpinned retained snapshots; the oldest go first.
  size_t max_retained = 100000;
};

// A recorded "decided from" dependency: the batch whose first event on
// `cluster` was `first_counter` was decided from snapshot `decided_seq`.
struct RecordedDependency {
  std::string cluster;
  uint64_t first_counter = 0;
  uint64_t decided_seq = 0;
  VersionVector decided;
};

// What the writer reports after each publication (StoreOptions::on_publish).
struct PublishEvent {
  Snapshot snapshot;                             // the newly published one
  std::vector<RecordedDependency> dependencies;  // recorded by its batch
};

struct StoreOptions {
  // Wall clock for snapshot times and delays. Default: system_clock::now.
  std::function<TimePoint()> clock;
  HistoryOptions history;
  // Called on the writer's thread after every publication by Apply (never
  // by Restore), e.g. to journal it. Must be cheap and must not call the
  // store's writer methods.
  std::function<void(const PublishEvent&)> on_publish;
};

// One change of a restored snapshot relative to the previous restored one.
struct RestoredChange {
  enum class Type : uint8_t { kPut, kErase, kAddCluster, kRemoveCluster };
  Type type = Type::kPut;
  std::string cluster;
  std::string ns;          // kPut, kErase
  WorkloadObject object;   // kPut: the whole object; kErase: the key only
  uint64_t counter = 0;    // kPut: the record's dot counter
};

// A snapshot as a journal recorded it: its identity, the changes since the
// previous restored snapshot (applied in order), its pins and dependencies.
struct RestoredSnapshot {
  uint64_t seq = 0;
  TimePoint time{};
  VersionVector vector;  // every cluster ever seen, with its component
  uint32_t pins = 0;
  std::vector<RestoredChange> changes;
  std::vector<RecordedDependency> dependencies;
};

// What history retention currently keeps, for mirroring it elsewhere:
// every published unpinned snapshot with seq >= oldest_unpinned, plus the
// pinned ones.
struct RetentionState {
  uint64_t newest = 0;
  uint64_t oldest_unpinned = 0;
  std::vector<std::pair<uint64_t, uint32_t>> pinned;  // (seq, pins), ascending
};

struct ApplyResult {
  bool published = false;  // false when every operation was a no-op
  uint64_t seq = 0;        // the newest snapshot after the batch
  size_t applied = 0;      // operations that changed the map
  size_t noops = 0;        // operations dropped as unchanged
};

struct RetainedSnapshot {
  uint64_t seq = 0;
  TimePoint time{};
  VersionVector vector;
  uint32_t pins = 0;
};

struct CausalCheck {
  bool closed = true;
  std::string reason;  // which dependency is missing, when not closed
};

class Store {
 public:
  explicit Store(StoreOptions options = {});
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // ---- Writer ----

  // Applies every operation of `batch` in order and publishes one snapshot
  // if anything changed. Errors, with nothing applied: kFailedPrecondition
  // when called concurrently; kInvalidArgument when the batch's DecidedFrom
  // snapshot belongs to another store or is a composed view. Cost: O(ops x depth) plus O(#clusters) to publish,
  // O(cluster size) per ReplaceKind.
  Result<ApplyResult> Apply(Batch batch);

  // Rebuilds history from a journal: publishes `s` with its own seq, time,
  // vector, record counters, pins and dependencies, without calling
  // on_publish. Call it for each restored snapshot in ascending seq order,
  // before the first Apply. Seqs may have gaps (what retention dropped).
  // Errors, with nothing applied: kFailedPrecondition after an Apply or when
  // called concurrently; kInvalidArgument when s.seq is not after the newest
  // snapshot or a change names an invalid workload, namespace or cluster.
  Status Restore(RestoredSnapshot s);

  // Frees what readers released and applies time-based retention. Call it
  // from the writer when idle; Apply does the same work each time.
  void Collect();

  // ---- Readers ----

  // The newest published snapshot. O(1), lock-free, no copy.
  Snapshot Current() const;

  // A retained snapshot. kNotFound for a seq not yet published; kGone for
  // one retention has dropped.
  Result<Snapshot> Get(uint64_t seq) const;

  // The newest retained snapshot published at or before `t`. kGone when `t`
  // is older than every retained snapshot.
  Result<Snapshot> AtOrBefore(TimePoint t) const;

  // Pins a retained snapshot (counted: each Pin needs an Unpin) so retention
  // keeps it. Errors as Get.
  Result<Snapshot> Pin(uint64_t seq);
  // kFailedPrecondition when the snapshot is not pinned.
  Status Unpin(uint64_t seq);

  // Retained snapshots with seq >= from_seq, oldest first, at most `limit`
  // (the next page starts at the last seq + 1). O(log retained + limit).
  std::vector<RetainedSnapshot> ListRetained(uint64_t from_seq = 0, size_t limit = SIZE_MAX) const;

  // A view as of `v`: for each cluster, its subtree from the newest retained
  // snapshot whose component for that cluster is <= v's (absent = 0). The
  // view's vector() says which state was found; it equals `v` when history
  // holds exactly that cut. O(#clusters x log retained).
  // Errors: kInvalidArgument for a cluster the store has never seen;
  // kGone when history no longer reaches back to v for some cluster.
  Result<Snapshot> ComposeAt(const VersionVector& v) const;

  // Whether a view at `v` respects every recorded "decided from" dependency:
  // if it includes an event of a batch decided from snapshot S, it must
  // include S. kGone when `v` is below the oldest retained snapshot (the
  // dependencies needed to answer are pruned with history).
  Result<CausalCheck> CheckCausallyClosed(const VersionVector& v) const;

  // What retention keeps now. O(#pinned).
  RetentionState Retention() const;

  StoreStats Stats() const;
  uint64_t id() const { return id_; }

 private:
  // Tests make a store whose batch numbers start near their limit
  // (Versioned::kMaxBirth) through this constructor.
  friend struct StoreTestPeer;
  Store(StoreOptions options, uint64_t first_batch);

  struct WorkingCluster {
    internal::ClusterTree* tree = nullptr;  // the writer's reference; null = absent
    uint64_t counter = 0;
    uint64_t first_in_batch = 0;  // first counter advanced by the running batch
  };
  struct Retained {
    Snapshot snapshot;
    uint32_t pins = 0;
  };
  using Dependency = RecordedDependency;
  static constexpr size_t kReadShards = 16;
  struct alignas(64) ReadShard {
    std::atomic<uint64_t> current{0}, retained{0}, composed{0};
  };

  TimePoint Now() const;
  size_t ClusterIndex(std::string_view name, bool create);
  internal::ClusterTree* MutableCluster(size_t ci);
  internal::NamespaceTree* MutableNamespace(internal::ClusterTree* ct, std::string_view ns, uint64_t ns_hash,
                                           bool exists);
  uint64_t Advance(size_t ci);
  // kFailedPrecondition once the batch numbers objects record are used up.
  Status CheckBatchNumber() const;
  bool ApplyUpsert(size_t ci, const std::string& ns, uint64_t ns_hash, Record*& record, uint64_t key_hash);
  bool ApplyDelete(size_t ci, std::string_view ns, uint64_t ns_hash, WorkloadKeyView key, uint64_t key_hash);
  size_t ApplyReplaceKind(size_t ci, Batch::Op& op, size_t& noops);
  bool ApplyAddCluster(size_t ci);
  void PrefetchPaths(const Batch& batch);
  bool ApplyRemoveCluster(size_t ci);
  void Publish(TimePoint now, const Snapshot& decided, uint64_t seq);
  void Trim(TimePoint now, std::vector<Snapshot>& dropped);  // REQUIRES: history_mu_ held
  void ScanRetired();
  void PublishStats();
  Status LookupError(uint64_t seq) const;  // REQUIRES: history_mu_ held
  ptrdiff_t FindRetained(uint64_t seq) const;  // REQUIRES: history_mu_ held
  void CountRead(bool current, bool composed) const;

  // Constant after construction.
  const uint64_t id_;
  const StoreOptions options_;
  const std::shared_ptr<internal::StoreDomain> domain_;

  // Published state.
  std::atomic<internal::SnapshotData*> current_{nullptr};  // the store holds one reference
  std::atomic<uint64_t> published_seq_{0};

  // Writer thread only.
  std::atomic<bool> in_writer_{false};
  bool restoring_ = false;  // Restore is applying: dots come from the journal
  bool applied_once_ = false;  // an Apply ran: Restore is refused
  std::shared_ptr<const VersionVector::Names> names_;  // sorted
  std::vector<WorkingCluster> working_;                // parallel to *names_
  struct NameHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, size_t, NameHash, std::equal_to<>> index_;  // name -> position in names_
  uint64_t seq_ = 0;
  TimePoint last_time_{};
  uint64_t workloads_ = 0;
  std::vector<internal::SnapshotData*> retired_;  // old currents, maybe still announced
  std::vector<const void*> hazards_;                     // scratch
  std::vector<TimePoint> delays_;                        // scratch: received times this batch
  std::vector<internal::TrieCursor> cursors_;           // scratch: PrefetchPaths
  std::vector<const internal::Node*> ns_roots_;         // scratch: PrefetchPaths
  internal::ChangeLogWriter log_;                       // what each batch changed

  // Guarded by history_mu_.
  mutable std::mutex history_mu_;
  std::deque<Retained> history_;  // by seq, ascending; newest is current
  size_t pinned_ = 0;
  std::vector<Dependency> deps_;

  // Statistics: written by the writer, read by anyone.
  mutable std::array<ReadShard, kReadShards> reads_;
  std::atomic<uint64_t> batches_{0}, applied_{0}, noops_{0};
  std::atomic<uint64_t> st_nodes_live_{0}, st_nodes_current_{0}, st_node_bytes_live_{0},
      st_node_bytes_current_{0}, st_records_live_{0}, st_record_bytes_live_{0}, st_record_bytes_current_{0},
      st_snapshot_bytes_{0}, st_pool_free_bytes_{0}, st_clusters_{0}, st_workloads_{0};
  std::array<std::atomic<uint64_t>, DelayHistogram::kBoundsSeconds.size() + 1> delay_buckets_{};
  std::atomic<uint64_t> delay_sum_ns_{0};
};

}  // namespace kubefold::state
