// ClusterRegistry: the member clusters kubefold watches (DESIGN.md §5).
//
// It watches MemberCluster objects on the host and the Secrets they name
// (one Secret informer per namespace referenced), and for each cluster
// runs:
//   * one reflector per watched kind (and per namespace when the
//     MemberCluster lists namespaces), whose events the Folder folds into
//     the store under the cluster's name — its vector component;
//   * a HealthProber; each change of the Ready condition is written to the
//     store as the cluster's health record (health.h) and reported.
// A MemberCluster whose kubeconfig, context, watch or health settings
// change is restarted (the relist writes only what differs); one that is
// deleted is stopped and its subtree removed (a recorded change).
//
// The kubeconfig in a Secret must be self-contained: file references
// (certificate-authority, client-certificate, client-key, tokenFile) and
// exec plugins are refused, because they would read files or run programs
// inside the operator's pod on behalf of whoever can write the Secret.
//
// Every replica watches (hot standby); only the leader writes MemberCluster
// status and Events (set_leader). A bad Secret gives the MemberCluster
// Watching=False with a reason naming what is wrong (SecretNotFound,
// SecretKeyMissing, KubeconfigInvalid) and a Warning Event; nothing else
// is disturbed.
//
// Thread-safety: every member function may be called from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/controller_metrics.h"
#include "controllers/events.h"
#include "controllers/folder.h"
#include "controllers/health.h"
#include "controllers/informer.h"
#include "controllers/kube/reflector.h"
#include "controllers/kube/rest_client.h"
#include "controllers/work_queue.h"
#include "state/store.h"

namespace kubefold::controllers {

struct RegistryOptions {
  // How often a MemberCluster's status (counts, probe time) is refreshed
  // while nothing else changes.
  std::chrono::milliseconds status_period{10000};
  // Rate limit of each member cluster's client (reflectors and writes).
  double member_qps = 50;
  int member_burst = 100;
  // Member reflectors: how long a watch may stay silent before it is
  // presumed dead (the API server's bookmarks keep it alive).
  std::chrono::milliseconds watch_inactivity{std::chrono::seconds(120)};
  std::chrono::seconds min_watch_timeout{300};
  std::function<void(std::string_view)> log;
  // Told (on any thread) when a cluster's health record changes or a
  // cluster comes or goes.
  std::function<void(const std::string& cluster)> on_cluster_change;
  // When set: an observer for the requests to each member cluster's API
  // server (rest_client_requests_total), given the server's URL.
  std::function<kube::TransportObserver(const std::string& server)> observe_transport;
  // controller-runtime's reconcile and work-queue metrics, as controller
  // "membercluster"; null: none. Must outlive the registry.
  const ControllerMetrics* metrics = nullptr;
};

// What the registry knows of one member cluster right now.
struct MemberInfo {
  std::string name;
  bool running = false;        // reflectors and prober started
  std::string problem_reason;  // why it is not running ("" when it is)
  std::string problem_message;
  ReadyCondition ready;
  bool synced = false;  // every reflector has listed once
  uint64_t reflector_errors = 0;
  // Per watched kind, summed over namespaces, since the cluster (re)started.
  std::map<std::string, kube::ReflectorStats> watch_stats;
};

class ClusterRegistry {
 public:
  // `host`, `store`, `folder` and `events` must outlive the registry.
  ClusterRegistry(kube::RestClient& host, state::Store& store, Folder& folder, EventRecorder& events,
                  RegistryOptions options);
  ~ClusterRegistry();  // Stop()
  ClusterRegistry(const ClusterRegistry&) = delete;
  ClusterRegistry& operator=(const ClusterRegistry&) = delete;

  void Start();
  void Stop();  // stops every cluster; the store keeps their subtrees
  void set_leader(bool leading);

  // True once the MemberCluster informer has listed.
  bool synced() const;
  // Names of the MemberCluster objects that exist.
  std::vector<std::string> Names() const;
  bool Exists(const std::string& name) const;
  std::vector<MemberInfo> Members() const;
  // The REST client of a running cluster (kept alive by the caller while
  // in use, even if the cluster restarts), or null.
  std::shared_ptr<kube::RestClient> Client(const std::string& name) const;

  // What is wrong with a MemberCluster's spec (JSON of the whole object),
  // naming the field; "" when it can be used. Never throws.
  static std::string SpecError(std::string_view object_json);

 private:
  struct Runtime;
  struct Spec;
  // Reads a MemberCluster's spec; "" or the problem, naming the field.
  static std::string ParseSpec(std::string_view object_json, Spec& spec);
  void Worker();
  void Reconcile(const std::string& name);
  // Starts the Secret informer for `ns` if needed; true once it has synced.
  bool SecretsSynced(const std::string& ns);
  void OnSecretChange(const std::string& key);
  void StopRuntime(std::unique_ptr<Runtime> rt);
  void OnHealthChange(const std::string& name, Runtime* rt, const ReadyCondition& c);
  void WriteStatus(const std::string& name, const kube::DecodedObject& mc, const Runtime* rt,
                   const std::string& problem_reason, const std::string& problem_message);
  void Log(std::string_view message) const;

  kube::RestClient& host_;
  state::Store& store_;
  Folder& folder_;
  EventRecorder& events_;
  const RegistryOptions options_;
  WorkQueue queue_;
  const ReconcileMetrics reconcile_metrics_;
  std::unique_ptr<Informer> members_;
  std::atomic<bool> leader_{false};
  std::atomic<bool> stopped_{false};
  std::thread worker_;

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<Informer>> secrets_;  // Guarded by mu_: by namespace
  std::map<std::string, std::unique_ptr<Runtime>> running_;   // Guarded by mu_
  std::map<std::string, std::pair<std::string, std::string>> problems_;  // Guarded by mu_: name -> reason, message
  std::map<std::string, std::string> last_status_;            // Guarded by mu_: name -> status JSON written
  std::map<std::string, std::string> announced_;              // Guarded by mu_: name -> Ready status evented
};

}  // namespace kubefold::controllers
