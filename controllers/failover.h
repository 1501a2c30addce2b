// FailoverReconciler: FailoverPolicies evaluated against one snapshot per
// pass, workloads re-created on the next healthy cluster, and every move
// recorded as a FailoverAudit (DESIGN.md §5).
//
// A pass over one policy (a work-queue key "namespace/name"):
//   1. takes ONE snapshot S of the store and decides everything from it;
//   2. completes the policy's audits in progress: `after` is the first
//      retained snapshot since `before` in which the target reports every
//      applied workload available (observedGeneration caught up and
//      availableReplicas at the desired count); it is pinned, the change
//      summary is the diff of the two, and the audit is Completed — or
//      Failed with a reason once the audit deadline passes, or once the
//      target itself has been unhealthy for the trigger's threshold (the
//      workloads are then decided afresh);
//   3. finds the governed workloads: the policy's kinds in its namespace on
//      its clusters whose labels match its selector. A workload governed by
//      two policies is decided by the older one; the other reports a
//      Conflict condition;
//   4. per workload, its active cluster is the one the policy's status (or
//      an audit in progress) names, else the first cluster in order that
//      holds a copy kubefold did not create (its home). It fails over when
//      the active cluster's health record in S has not been True for
//      trigger.clusterUnhealthySeconds, or (when configured) the workload
//      has had no available replica there for workloadUnavailableSeconds.
//      The target is the next cluster in order whose health is True; with
//      none, a Degraded condition and a Warning Event, and no action.
//      Failback to the home cluster happens when the policy says Automatic
//      and home has been healthy for failback.stableSeconds, or when a user
//      sets the annotation kubefold.io/failback on the policy (Manual);
//   5. acts, at most spec.maxInFlight workloads in progress at once: the
//      workload's last known manifest (from S, the active copy or, failing
//      that, the first in order) is pruned of cluster-local fields, labelled
//      kubefold.io/failover-copy=true, annotated with the policy, audit and
//      source cluster, and applied to the target with server-side apply
//      (field manager "kubefold", no force) after creating the namespace if
//      it is missing. An object on the target that kubefold did not create
//      is never touched (the action is Unchanged). Then the FailoverAudit is
//      created (before = S, pinned) and the policy status names the new
//      active cluster;
//   6. make before break: a copy kubefold created on a cluster that is no
//      longer active is deleted only once the active copy is available and
//      no audit of the workload is in progress. Originals are never deleted
//      or scaled.
// Repeated passes over the same snapshot do nothing new: decisions are
// remembered until the host's cache shows the status and audit they wrote.
// Only the leader runs passes (set_leader); a new leader adopts audits in
// progress and completes them.
//
// Thread-safety: every member function may be called from any thread;
// passes run on the reconciler's workers, one policy never on two at once.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <string>
#include <thread>
#include <vector>

#include "controllers/controller_metrics.h"
#include "controllers/events.h"
#include "controllers/informer.h"
#include "controllers/kube/rest_client.h"
#include "controllers/registry.h"
#include "controllers/work_queue.h"
#include "state/store.h"

namespace kubefold::controllers {

inline constexpr char kFieldManager[] = "kubefold";
inline constexpr char kCopyLabel[] = "kubefold.io/failover-copy";
inline constexpr char kPolicyAnnotation[] = "kubefold.io/policy";
inline constexpr char kAuditAnnotation[] = "kubefold.io/audit";
inline constexpr char kSourceAnnotation[] = "kubefold.io/source-cluster";
inline constexpr char kFailbackAnnotation[] = "kubefold.io/failback";

struct FailoverOptions {
  int workers = 2;
  // A pass runs at least this often per policy (time-based triggers are
  // scheduled exactly; this is the safety net).
  std::chrono::milliseconds resync{std::chrono::seconds(5)};
  // An audit whose workloads are not all available on the target within
  // this long is marked Failed.
  std::chrono::milliseconds audit_deadline{std::chrono::minutes(10)};
  std::function<std::chrono::system_clock::time_point()> clock;  // default system_clock::now
  std::function<void(std::string_view)> log;
  // Told just before each apply request (bench and tests): the workload,
  // the target, and when its trigger threshold was crossed.
  std::function<void(const std::string& workload, const std::string& to, std::chrono::system_clock::time_point crossed)>
      on_apply;
  // Told when a failover ends (its audit Completed or Failed): the policy
  // ("ns/name"), from, to, "completed" or "failed", and the seconds from the
  // trigger's threshold to the end. On a worker thread.
  std::function<void(const std::string& policy, const std::string& from, const std::string& to, const char* result,
                     double seconds)>
      on_finished;
  // controller-runtime's reconcile and work-queue metrics, as controller
  // "failover"; null: none. Must outlive the reconciler.
  const ControllerMetrics* metrics = nullptr;
  // Makes snapshot `seq`, and the pins made so far, durable (the history
  // journal) before an audit names it; an error is logged and the audit is
  // written anyway (history then lives in memory only). Null: no journal.
  std::function<Status(uint64_t seq)> make_durable;
  // The vector of the newest snapshot restored from the history journal
  // (empty: nothing restored). A ClusterHealth record no newer than it was
  // written by a previous process: its cluster counts as not yet probed
  // until this process publishes its health, so no failover, failback or
  // audit failure is decided from a dead process's view of the clusters.
  state::VersionVector restored;
};

// A FailoverAudit as the host's cache shows it, for the query API.
struct AuditView {
  std::string ns, name, policy, from, to, reason, phase;
  uint64_t before_seq = 0;
  std::string before_vector;  // canonical JSON ("" when absent)
  std::optional<uint64_t> after_seq;
  std::string after_vector;
};

// One workload the reconciler would move if a cluster failed now.
struct WhatIfMove {
  std::string policy;  // "namespace/name"
  std::string ns, kind, name;
  std::string from, to;  // to is "" when no cluster could take it
  // Apply: kubefold would apply its copy to `to`. Unchanged: `to` holds an
  // object kubefold did not create, which it leaves alone. None: no Ready
  // cluster is left in the policy's order (the policy would be Degraded).
  std::string action;
  std::string reason;  // why, in words
};

struct WhatIfResult {
  state::Snapshot snapshot;  // decided from
  std::vector<WhatIfMove> moves;
  size_t policies = 0;  // policies that list the cluster
};

struct FailoverStats {
  uint64_t passes = 0;
  uint64_t applied = 0;          // apply requests that succeeded
  uint64_t apply_failures = 0;
  uint64_t audits_created = 0;
  uint64_t audits_completed = 0;
  uint64_t audits_failed = 0;
  uint64_t deleted_copies = 0;
};

class FailoverReconciler {
 public:
  // Everything passed must outlive the reconciler.
  FailoverReconciler(kube::RestClient& host, state::Store& store, ClusterRegistry& registry, EventRecorder& events,
                     FailoverOptions options);
  ~FailoverReconciler();  // Stop()
  FailoverReconciler(const FailoverReconciler&) = delete;
  FailoverReconciler& operator=(const FailoverReconciler&) = delete;

  void Start();  // informers and workers
  void Stop();
  void set_leader(bool leading);
  // Queues a pass over every policy (a cluster changed; or, with a delay
  // that coalesces bursts, a new snapshot).
  void Poke(std::chrono::milliseconds delay = std::chrono::milliseconds(0));

  bool synced() const;
  FailoverStats stats() const;

  // The audit `ns/name` in the host's cache, or nullopt. Any thread.
  std::optional<AuditView> FindAudit(const std::string& ns, const std::string& name);
  // FailoverAudits in the host's cache by phase (InProgress, Completed, Failed).
  std::map<std::string, size_t> CountAudits();
  // Snapshots this replica pinned for audits: seq -> audit keys "ns/name".
  std::map<uint64_t, std::vector<std::string>> PinnedBy() const;
  // Pins the before/after snapshots of every audit in the host's cache that
  // this store holds and that this reconciler has not pinned for it yet (a
  // restart restored them, or another replica wrote the audit). Audit events
  // do the same one by one; call this once the caches have synced. Returns
  // how many pins were taken.
  size_t AdoptAuditPins();
  // What the reconciler would do if `cluster` failed now: every policy that
  // lists it is evaluated against the current snapshot with that cluster's
  // health taken as False, by the same placement rules as a pass (active
  // cluster, the next Ready cluster in order, objects kubefold did not
  // create left alone). Changes nothing; runs on the caller's thread, on
  // any replica. kNotFound when no MemberCluster has that name;
  // kUnavailable until the caches have synced. O(workloads of the policies'
  // namespaces on their clusters).
  Result<WhatIfResult> WhatIf(const std::string& cluster);

  // How the reconciler reads what it watches, without a reconciler: what
  // makes a FailoverPolicy unusable, naming the field ("" when it can act),
  // and whether a FailoverAudit can be read. Never throw.
  static std::string PolicySpecError(const kube::DecodedObject& policy);
  static bool AuditReadable(const kube::DecodedObject& audit);

 private:
  struct Policy;
  struct Audit;
  struct Decision;
  struct ScanCache;
  struct Memo {
    std::string to;
    std::string audit;
    std::chrono::system_clock::time_point since;
    std::chrono::steady_clock::time_point at;
  };
  void Worker();
  void Pass(const std::string& key);
  const state::Record* FreshHealth(const state::Snapshot& s, const std::string& cluster) const;
  // Completes or fails one audit in progress; true when it is still in progress.
  // `target_failed`: why the target can no longer finish it ("" when it can).
  // `completed` (optional) is set when this call completed it.
  bool Progress(const Audit& audit, const state::Snapshot& s, std::chrono::system_clock::time_point now,
                const std::string& target_failed, bool* completed = nullptr);
  void OnAuditChange(const std::string& key);
  // Parsed objects, cached by resourceVersion (a pass reads every policy of
  // its namespace and every audit; parsing them each time would dominate).
  std::shared_ptr<const Policy> ParsedPolicy(const kube::DecodedObject& o);
  std::shared_ptr<const Audit> ParsedAudit(const kube::DecodedObject& o);  // null when not an audit
  void Log(std::string_view message) const;
  // Logs a failed write; the pass counts as a reconcile error.
  void LogError(std::string_view message) const;
  size_t AdoptPins(const Audit& audit);
  void KeepPin(const std::string& audit_key, uint64_t seq);
  void MakeDurable(const std::string& what, uint64_t seq);
  std::chrono::system_clock::time_point Now() const;
  Status EnsureNamespace(const std::string& cluster, kube::RestClient& client, const std::string& ns);

  kube::RestClient& host_;
  state::Store& store_;
  ClusterRegistry& registry_;
  EventRecorder& events_;
  const FailoverOptions options_;
  WorkQueue queue_;
  const ReconcileMetrics reconcile_metrics_;
  std::unique_ptr<Informer> policies_;
  std::unique_ptr<Informer> audits_;
  std::atomic<bool> leader_{false};
  std::atomic<bool> stopped_{false};
  std::vector<std::thread> workers_;

  mutable std::mutex mu_;
  FailoverStats stats_;                                       // Guarded by mu_
  std::map<std::string, Memo> memo_;                          // Guarded by mu_: "policy|kind/name" -> decision
  std::map<std::string, std::chrono::system_clock::time_point> unavailable_since_;  // Guarded by mu_
  std::map<std::string, std::vector<uint64_t>> pins_;         // Guarded by mu_: audit key -> pinned seqs
  std::map<std::string, uint64_t> cursor_;                    // Guarded by mu_: audit key -> next seq to check
  // Guarded by mu_: audits this process finished whose new phase the informer
  // has not shown yet -> true when Completed. A pass reading the cache
  // before the status write comes back must not finish them again.
  std::map<std::string, bool> finished_;
  std::set<std::string> namespaces_;                          // Guarded by mu_: "cluster/ns" known to exist
  std::map<std::string, std::string> last_status_;            // Guarded by mu_: policy key -> status JSON
  std::map<std::string, std::pair<std::string, std::shared_ptr<const Policy>>> policy_cache_;  // Guarded by mu_
  std::map<std::string, std::pair<std::string, std::shared_ptr<const Audit>>> audit_cache_;    // Guarded by mu_
  // Per policy: what the labels of each stored record say about it. The map
  // is guarded by mu_; a cache is used only by the worker holding its policy.
  std::map<std::string, std::unique_ptr<ScanCache>> scan_caches_;
  // Guarded by mu_: policy|from|to -> when a failover whose audit could not be
  // created may be tried again (1 s doubling to 60 s; erased on success).
  struct AuditRetry {
    std::chrono::steady_clock::time_point not_before;
    std::chrono::milliseconds delay{0};
    unsigned attempts = 0;
  };
  std::map<std::string, AuditRetry> audit_retry_;
  static std::chrono::milliseconds BackOff(AuditRetry& retry, std::chrono::steady_clock::time_point now);
};

}  // namespace kubefold::controllers
