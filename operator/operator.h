// Operator: the kubefold process wired together (DESIGN.md §1, §5): the
// store and its Folder, the cluster registry, the failover reconciler and
// audit recorder, Events, and leader election on a Lease on the host.
//
// Every replica watches and folds (hot standby); only the leader writes to
// the host and to member clusters. Losing the Lease stops writing at once;
// Stop() releases it so a successor takes over without waiting for it to
// expire.
//
// Thread-safety: Start and Stop from one thread; the accessors from any.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "controllers/events.h"
#include "controllers/failover.h"
#include "controllers/folder.h"
#include "controllers/kube/rest_client.h"
#include "controllers/leader_election.h"
#include "controllers/registry.h"
#include "operator/http_server.h"
#include "operator/query_api.h"
#include "operator/request_auth.h"
#include "operator/telemetry.h"
#include "state/journal.h"
#include "state/store.h"

namespace kubefold {

// An HTTP endpoint's address: "host:port", ":port" (every interface), or
// "" / "0" for off.
struct BindAddress {
  std::string host;  // "" when off
  int port = 0;
  bool off() const { return host.empty(); }
  // Loopback only: served without authentication.
  bool local() const;
};
// kInvalidArgument naming `flag` for a malformed address.
Result<BindAddress> ParseBindAddress(const std::string& text, const std::string& flag);

struct ServingOptions {
  BindAddress api;      // the query API (query_api.h)
  BindAddress metrics;  // /metrics
  BindAddress probes;   // /healthz, /readyz (never authenticated)
  // Both set: the API and /metrics serve TLS (re-read when the files change).
  std::string tls_cert_file, tls_key_file;
  // The Service in front of the API and the name of its port: a caller of a
  // non-local API needs `get services/proxy` in the operator's namespace on
  // the name the API server's proxy authorizes, "SCHEME:SERVICE:PORT"
  // (https when the API serves TLS), so one RBAC rule covers both ways in
  // (request_auth.h).
  std::string service_name = "kubefold";
  std::string service_port_name = "api";
  BuildInfo build;
  // Log every API request (method, path, status, time, peer): --v=2.
  bool log_requests = false;
};

struct OperatorOptions {
  std::string identity;  // this replica (the pod name); required
  bool leader_elect = true;
  controllers::LeaderElectionOptions leader;  // identity is filled in from `identity`
  controllers::RegistryOptions registry;
  controllers::FailoverOptions failover;
  state::HistoryOptions history;
  // The durable history (an SQLite file on the pod's volume); "" keeps
  // history in memory only. A file that cannot be read as history is moved
  // aside to <file>.unreadable-<unix time> and a new history begins.
  std::string history_file;
  uint64_t history_max_bytes = 0;  // bound on the file; 0 = the disk's
  bool history_sync = true;        // fsync each commit
  // Records keep member objects compressed (controllers::FolderOptions).
  bool compress_objects = true;
  ServingOptions serving;
  // Metrics; null: the operator makes its own. Shared so the caller can
  // observe the host client's transport with it before the operator exists.
  std::shared_ptr<Telemetry> telemetry;
  std::function<void(std::string_view)> log;
};

class Operator {
 public:
  // `host` talks to the host cluster.
  Operator(std::unique_ptr<kube::RestClient> host, OperatorOptions options);
  ~Operator();  // Stop()
  Operator(const Operator&) = delete;
  Operator& operator=(const Operator&) = delete;

  // kInvalidArgument naming a bad option; otherwise starts everything.
  Status Start();
  // Releases the Lease if held, stops the loops and watches. Idempotent.
  void Stop();

  bool leading() const { return leading_.load(); }
  state::Store& store() { return *store_; }
  controllers::Folder& folder() { return *folder_; }
  controllers::ClusterRegistry& registry() { return *registry_; }
  controllers::FailoverReconciler& failover() { return *failover_; }
  Telemetry& telemetry() { return *options_.telemetry; }
  // Bound ports (0 when off), for callers that asked for port 0.
  int api_port() const { return api_server_ ? api_server_->port() : 0; }
  int metrics_port() const { return metrics_server_ ? metrics_server_->port() : 0; }
  int probe_port() const { return probe_server_ ? probe_server_->port() : 0; }
  // Ready: the host caches have synced (MemberClusters, policies, audits)
  // and, when leading, the reconcilers run. `why` says what is missing.
  bool Ready(std::string* why = nullptr) const;

 private:
  void SetLeading(bool leading);
  void Log(std::string_view m) const;
  Status StartServing();

  std::unique_ptr<kube::RestClient> host_;
  OperatorOptions options_;
  Status OpenHistory();
  void ReleaseRestoredPins();

  std::unique_ptr<state::Journal> journal_;
  std::vector<std::pair<uint64_t, uint32_t>> restored_pins_;
  state::VersionVector restored_vector_;  // the restored newest snapshot's; empty: none
  std::thread restored_pins_thread_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<controllers::Folder> folder_;
  std::unique_ptr<controllers::EventRecorder> events_;
  std::unique_ptr<controllers::ClusterRegistry> registry_;
  std::unique_ptr<controllers::FailoverReconciler> failover_;
  std::unique_ptr<controllers::LeaderElector> elector_;
  std::unique_ptr<RequestAuthenticator> auth_;
  std::unique_ptr<QueryApi> api_;
  std::unique_ptr<HttpServer> api_server_, metrics_server_, probe_server_;
  std::thread elector_thread_;
  std::atomic<controllers::FailoverReconciler*> poke_{nullptr};
  std::atomic<bool> leading_{false};
  bool started_ = false;
  std::atomic<bool> stopped_{false};
};

}  // namespace kubefold
