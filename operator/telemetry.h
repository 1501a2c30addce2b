// Telemetry: kubefold's Prometheus metrics (served on /metrics).
//
// kubefold's own (kubefold_*):
//   update_delay_seconds                  event received -> visible in a published snapshot
//   snapshot_reads_total{source}          current | retained | composed (hit rate of history)
//   version_fragmentation_ratio           nodes kept alive only by history / nodes in the current tree
//   retained_snapshots, pinned_snapshots, retained_bytes, store_bytes{part}
//   store_events_total{result}            applied | noop
//   snapshot_seq                          the newest published snapshot
//   workloads{cluster}                    in the newest snapshot
//   cluster_ready{cluster}                1 when Ready is True
//   cluster_vector_component{cluster}
//   watch_events_total, watch_relists_total, watch_errors_total {cluster,kind}
//                                          since the cluster's watch (re)started
//   failovers_total{namespace,policy,from,to,result}   completed | failed
//   failover_duration_seconds             trigger threshold -> audit completed
//   audits{phase}                         FailoverAudits on the host
//   api_requests_total{route,code}, api_request_duration_seconds{route}
//   build_info{version,git_commit,cpp_compiler}
//   history_disk_bytes, history_disk_limit_bytes, history_disk_snapshots,
//   history_durable_seq, history_pending_snapshots, history_degraded,
//   history_commits_total, history_commit_failures_total,
//   history_coalesced_snapshots_total      the durable history (--history-file)
// The names dashboards already know: controller_runtime_reconcile_*,
// workqueue_* (controllers/controller_metrics.h), rest_client_requests_total
// {code,method,host}, rest_client_request_duration_seconds{verb,host},
// leader_election_master_status{name}, process_*.
//
// Labels are bounded: clusters, kinds, policies and routes are finite sets
// the user configures; no label carries a workload name or a path.
//
// Thread-safety: everything may be called from any thread.
#pragma once

#include <memory>
#include <string>

#include "controllers/controller_metrics.h"
#include "controllers/failover.h"
#include "controllers/kube/transport.h"
#include "controllers/metrics.h"
#include "controllers/registry.h"
#include "operator/query_api.h"
#include "state/journal.h"
#include "state/store.h"

namespace kubefold {

class Telemetry {
 public:
  explicit Telemetry(const BuildInfo& build, const std::string& lease_name = "kubefold");
  Telemetry(const Telemetry&) = delete;
  Telemetry& operator=(const Telemetry&) = delete;

  metrics::Registry& registry() { return registry_; }
  const controllers::ControllerMetrics* controllers() const { return controllers_.get(); }

  // An observer counting the requests to the API server at `server` (a
  // URL; the host label is its host:port).
  kube::TransportObserver RestObserver(const std::string& server);
  void SetLeader(bool leading);
  void ObserveApi(const std::string& route, int code, double seconds);
  void ObserveFailover(const std::string& policy, const std::string& from, const std::string& to, const char* result,
                       double seconds);
  // Adds the collector of the store's, registry's and audits' figures.
  // Everything passed must outlive the Telemetry's last scrape.
  void Watch(state::Store& store, controllers::ClusterRegistry& registry, controllers::FailoverReconciler& failover);
  // Adds the durable history's figures (kubefold_history_*).
  void WatchHistory(const state::Journal& journal);

 private:
  metrics::Registry registry_;
  std::unique_ptr<controllers::ControllerMetrics> controllers_;
  metrics::CounterFamily* rest_requests_ = nullptr;
  metrics::HistogramFamily* rest_duration_ = nullptr;
  metrics::Gauge* leader_ = nullptr;
  metrics::CounterFamily* api_requests_ = nullptr;
  metrics::HistogramFamily* api_duration_ = nullptr;
  metrics::CounterFamily* failovers_ = nullptr;
  metrics::Histogram* failover_duration_ = nullptr;
};

}  // namespace kubefold
