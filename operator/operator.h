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
#include "state/store.h"

namespace kubefold {

struct OperatorOptions {
  std::string identity;  // this replica (the pod name); required
  bool leader_elect = true;
  controllers::LeaderElectionOptions leader;  // identity is filled in from `identity`
  controllers::RegistryOptions registry;
  controllers::FailoverOptions failover;
  state::HistoryOptions history;
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

 private:
  void SetLeading(bool leading);
  void Log(std::string_view m) const;

  std::unique_ptr<kube::RestClient> host_;
  OperatorOptions options_;
  std::unique_ptr<state::Store> store_;
  std::unique_ptr<controllers::Folder> folder_;
  std::unique_ptr<controllers::EventRecorder> events_;
  std::unique_ptr<controllers::ClusterRegistry> registry_;
  std::unique_ptr<controllers::FailoverReconciler> failover_;
  std::unique_ptr<controllers::LeaderElector> elector_;
  std::thread elector_thread_;
  std::atomic<controllers::FailoverReconciler*> poke_{nullptr};
  std::atomic<bool> leading_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace kubefold
