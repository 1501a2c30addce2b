#include "operator/telemetry.h"

#include "controllers/process_metrics.h"

namespace kubefold {

namespace {

// A registration that cannot fail unless the names above are wrong: a
// programming error, caught by the tests that scrape /metrics.
template <class T>
T Must(Result<T> r) {
  if (!r.ok()) throw std::logic_error("metrics: " + r.status().ToString());
  return std::move(r).value();
}

// "https://10.0.0.1:6443/base" -> "10.0.0.1:6443".
std::string HostOf(const std::string& url) {
  std::string_view s = url;
  if (auto p = s.find("://"); p != std::string_view::npos) s.remove_prefix(p + 3);
  if (auto p = s.find('/'); p != std::string_view::npos) s = s.substr(0, p);
  return std::string(s);
}

std::string Code(int status) { return status == 0 ? "<error>" : std::to_string(status); }

}  // namespace

Telemetry::Telemetry(const BuildInfo& build, const std::string& lease_name) {
  controllers_ = Must(controllers::ControllerMetrics::Register(registry_));
  rest_requests_ = Must(registry_.AddCounterFamily(
      "rest_client_requests_total", "Number of HTTP requests, partitioned by status code, method, and host.",
      {"code", "method", "host"}));
  rest_duration_ = Must(registry_.AddHistogramFamily(
      "rest_client_request_duration_seconds", "Request latency in seconds. Broken down by verb, and host.",
      {0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0}, {"verb", "host"}));
  auto* leader = Must(registry_.AddGaugeFamily(
      "leader_election_master_status",
      "Gauge of if the reporting system is master of the relevant lease, 0 indicates backup, 1 indicates master. "
      "'name' is the string used to identify the lease.",
      {"name"}));
  leader_ = Must(leader->WithLabels({lease_name}));
  api_requests_ = Must(registry_.AddCounterFamily("kubefold_api_requests_total",
                                                  "Query API requests by route and HTTP status code.",
                                                  {"route", "code"}));
  api_duration_ = Must(registry_.AddHistogramFamily(
      "kubefold_api_request_duration_seconds", "Query API request latency in seconds (whole response written).",
      metrics::ExponentialBuckets(0.0005, 2, 16), {"route"}));
  failovers_ = Must(registry_.AddCounterFamily(
      "kubefold_failovers_total", "Failovers that ended, by policy, source, target and result (completed, failed).",
      {"namespace", "policy", "from", "to", "result"}));
  failover_duration_ = Must(registry_.AddHistogram(
      "kubefold_failover_duration_seconds",
      "Seconds from a failover trigger's threshold to its audit completing (workloads available on the target).",
      {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800}));
  registry_.AddCollector(metrics::ProcessCollector());
  (void)metrics::AddBuildInfo(registry_, build.version, build.git_commit, build.compiler);
}

kube::TransportObserver Telemetry::RestObserver(const std::string& server) {
  const std::string host = HostOf(server);
  return [this, host](std::string_view method, int status, std::chrono::nanoseconds latency) {
    if (auto c = rest_requests_->WithLabels({Code(status), method, host}); c.ok()) (*c)->Inc();
    if (auto h = rest_duration_->WithLabels({method, host}); h.ok()) {
      (*h)->Observe(std::chrono::duration<double>(latency).count());
    }
  };
}

void Telemetry::SetLeader(bool leading) { leader_->Set(leading ? 1 : 0); }

void Telemetry::ObserveApi(const std::string& route, int code, double seconds) {
  if (auto c = api_requests_->WithLabels({route, std::to_string(code)}); c.ok()) (*c)->Inc();
  if (auto h = api_duration_->WithLabels({route}); h.ok()) (*h)->Observe(seconds);
}

void Telemetry::ObserveFailover(const std::string& policy, const std::string& from, const std::string& to,
                                const char* result, double seconds) {
  const size_t slash = policy.find('/');
  const std::string ns = slash == std::string::npos ? "" : policy.substr(0, slash);
  const std::string name = slash == std::string::npos ? policy : policy.substr(slash + 1);
  if (auto c = failovers_->WithLabels({ns, name, from, to, result}); c.ok()) (*c)->Inc();
  if (std::string_view(result) == "completed") failover_duration_->Observe(seconds);
}

void Telemetry::WatchHistory(const state::Journal& journal) {
  registry_.AddCollector([&journal](metrics::Collector& c) {
    const state::JournalStats st = journal.Stats();
    auto d = [](uint64_t v) { return static_cast<double>(v); };
    c.AddGauge("kubefold_history_disk_bytes", "Bytes the durable history uses on disk (database and write-ahead log).",
               {}, d(st.disk_bytes));
    c.AddGauge("kubefold_history_disk_limit_bytes", "The bound on the history database (--history-max-bytes); 0: none.",
               {}, d(st.limit_bytes));
    c.AddGauge("kubefold_history_disk_snapshots", "Snapshots the durable history holds on disk.", {},
               d(st.retained_rows));
    c.AddGauge("kubefold_history_durable_seq", "The newest snapshot committed to the durable history.", {},
               d(st.durable_seq));
    c.AddGauge("kubefold_history_pending_snapshots", "Snapshots published but not yet committed to disk.", {},
               d(st.pending));
    c.AddGauge("kubefold_history_degraded",
               "1 while commits to the durable history fail (full disk, I/O error): history is in memory only.", {},
               st.degraded ? 1 : 0);
    c.AddCounter("kubefold_history_commits_total", "Transactions committed to the durable history.", {},
                 d(st.commits));
    c.AddCounter("kubefold_history_commit_failures_total", "Commits to the durable history that failed.", {},
                 d(st.failures));
    c.AddCounter("kubefold_history_coalesced_snapshots_total",
                 "Snapshots merged into a later one before reaching disk (backlog or failed commits); their changes "
                 "are kept, their own seqs are not durable.",
                 {}, d(st.coalesced));
  });
}

void Telemetry::Watch(state::Store& store, controllers::ClusterRegistry& registry,
                      controllers::FailoverReconciler& failover) {
  registry_.AddCollector([&store, &registry, &failover](metrics::Collector& c) {
    const state::StoreStats st = store.Stats();
    const auto& d = st.update_delay;
    c.AddHistogram("kubefold_update_delay_seconds",
                   "Seconds from an event being handed to the store's writer to its publication in a snapshot.", {},
                   state::DelayHistogram::kBoundsSeconds, d.cumulative, d.count, d.sum_seconds);
    constexpr char kReads[] = "Snapshot reads by source: current, retained (an older snapshot), composed (as-of view).";
    c.AddCounter("kubefold_snapshot_reads_total", kReads, {{"source", "current"}}, static_cast<double>(st.reads_current));
    c.AddCounter("kubefold_snapshot_reads_total", kReads, {{"source", "retained"}},
                 static_cast<double>(st.reads_retained));
    c.AddCounter("kubefold_snapshot_reads_total", kReads, {{"source", "composed"}},
                 static_cast<double>(st.reads_composed));
    c.AddGauge("kubefold_version_fragmentation_ratio",
               "Tree nodes kept alive only by retained history, over the nodes of the current tree.", {},
               st.version_fragmentation);
    c.AddGauge("kubefold_retained_snapshots", "Snapshots retained (by count, age or pins).", {},
               static_cast<double>(st.retained_snapshots));
    c.AddGauge("kubefold_pinned_snapshots", "Snapshots pinned (by audits).", {}, static_cast<double>(st.pinned_snapshots));
    c.AddGauge("kubefold_retained_bytes", "Bytes alive only because retained history still holds old versions.", {},
               static_cast<double>(st.retained_bytes));
    constexpr char kBytes[] =
        "Bytes of the store alive, by part: tree nodes, workload records, snapshot headers, change log.";
    c.AddGauge("kubefold_store_bytes", kBytes, {{"part", "nodes"}}, static_cast<double>(st.node_bytes_live));
    c.AddGauge("kubefold_store_bytes", kBytes, {{"part", "records"}}, static_cast<double>(st.record_bytes_live));
    c.AddGauge("kubefold_store_bytes", kBytes, {{"part", "snapshots"}}, static_cast<double>(st.snapshot_bytes_live));
    c.AddGauge("kubefold_store_bytes", kBytes, {{"part", "change_log"}}, static_cast<double>(st.change_log_bytes));
    c.AddGauge("kubefold_store_free_list_bytes",
               "Bytes the store writer's node pool holds unused: freed tree objects kept for reuse and chunk bytes not carved.", {},
               static_cast<double>(st.pool_free_bytes));
    c.AddGauge("kubefold_record_slab_free_bytes",
               "Bytes of the slabs workload records are carved from that hold no record: freed blocks, unused slab "
               "tails and headers (process-wide).",
               {}, static_cast<double>(st.record_slab_free_bytes));
    constexpr char kEvents[] = "Operations folded into the store: applied (changed the map) or noop (unchanged).";
    c.AddCounter("kubefold_store_events_total", kEvents, {{"result", "applied"}}, static_cast<double>(st.events_applied));
    c.AddCounter("kubefold_store_events_total", kEvents, {{"result", "noop"}}, static_cast<double>(st.events_noop));
    c.AddGauge("kubefold_snapshot_seq", "Sequence number of the newest published snapshot.", {},
               static_cast<double>(st.seq));

    const state::Snapshot s = store.Current();
    for (const auto& m : registry.Members()) {
      const auto info = s.Cluster(m.name);
      const uint64_t health = s.CountWorkloads(m.name, controllers::kHealthNamespace);
      c.AddGauge("kubefold_workloads", "Workloads of a member cluster in the newest snapshot.", {{"cluster", m.name}},
                 info ? static_cast<double>(info->workloads - health) : 0);
      c.AddGauge("kubefold_cluster_ready", "1 when the member cluster's Ready condition is True, else 0.",
                 {{"cluster", m.name}}, m.ready.status == "True" ? 1 : 0);
      c.AddGauge("kubefold_cluster_vector_component", "The member cluster's component of the newest snapshot's vector.",
                 {{"cluster", m.name}}, info ? static_cast<double>(info->counter) : 0);
      for (const auto& [kind, w] : m.watch_stats) {
        c.AddCounter("kubefold_watch_events_total",
                     "Watch events received (added, modified, deleted), since the cluster's watch (re)started.",
                     {{"cluster", m.name}, {"kind", kind}}, static_cast<double>(w.events));
        c.AddCounter("kubefold_watch_relists_total", "Complete lists (initial and relists), since the cluster's watch (re)started.",
                     {{"cluster", m.name}, {"kind", kind}}, static_cast<double>(w.lists));
        c.AddCounter("kubefold_watch_errors_total", "Watch or list failures that led to a backoff, since the cluster's watch (re)started.",
                     {{"cluster", m.name}, {"kind", kind}}, static_cast<double>(w.errors));
      }
    }
    for (const auto& [phase, n] : failover.CountAudits()) {
      c.AddGauge("kubefold_audits", "FailoverAudits on the host cluster, by phase.", {{"phase", phase}},
                 static_cast<double>(n));
    }
  });
}

}  // namespace kubefold
