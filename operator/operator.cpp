#include "operator/operator.h"

#include <utility>

namespace kubefold {

Operator::Operator(std::unique_ptr<kube::RestClient> host, OperatorOptions options)
    : host_(std::move(host)), options_(std::move(options)) {}

Operator::~Operator() { Stop(); }

void Operator::Log(std::string_view m) const {
  if (options_.log) options_.log(m);
}

Status Operator::Start() {
  if (started_) return FailedPrecondition("the operator is already started");
  if (options_.identity.empty()) return InvalidArgument("identity: required (the pod name)");
  options_.leader.identity = options_.identity;
  if (options_.leader_elect) {
    if (Status s = controllers::ValidateLeaderElection(options_.leader); !s.ok()) return s;
  }
  started_ = true;

  state::StoreOptions so;
  so.history = options_.history;
  store_ = std::make_unique<state::Store>(so);
  controllers::FolderOptions fo;
  // A new snapshot matters to audits waiting for availability and to the
  // workload-unavailable trigger; bursts of snapshots are coalesced.
  fo.on_published = [this](uint64_t) {
    if (auto* f = poke_.load()) f->Poke(std::chrono::milliseconds(100));
  };
  folder_ = std::make_unique<controllers::Folder>(*store_, fo, options_.log);
  events_ = std::make_unique<controllers::EventRecorder>(*host_, options_.identity, options_.log);

  controllers::RegistryOptions ro = options_.registry;
  if (!ro.log) ro.log = options_.log;
  ro.on_cluster_change = [this, user = ro.on_cluster_change](const std::string& cluster) {
    if (auto* f = poke_.load()) f->Poke();
    if (user) user(cluster);
  };
  registry_ = std::make_unique<controllers::ClusterRegistry>(*host_, *store_, *folder_, *events_, ro);
  controllers::FailoverOptions fo2 = options_.failover;
  if (!fo2.log) fo2.log = options_.log;
  failover_ = std::make_unique<controllers::FailoverReconciler>(*host_, *store_, *registry_, *events_, fo2);

  registry_->Start();
  failover_->Start();
  poke_ = failover_.get();

  if (!options_.leader_elect) {
    Log("leader election is off: this replica leads");
    SetLeading(true);
    return Status::Ok();
  }
  controllers::LeaderElectionHooks hooks;
  hooks.started_leading = [this] { SetLeading(true); };
  hooks.stopped_leading = [this] { SetLeading(false); };
  hooks.new_leader = [this](const std::string& id) { Log("leader is now " + id); };
  hooks.log = options_.log;
  elector_ = std::make_unique<controllers::LeaderElector>(*host_, options_.leader, hooks);
  elector_thread_ = std::thread([this] { elector_->Run(); });
  return Status::Ok();
}

void Operator::SetLeading(bool leading) {
  leading_ = leading;
  Log(leading ? "leading: reconciling and writing" : "not leading: watching only");
  registry_->set_leader(leading);
  failover_->set_leader(leading);
}

void Operator::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Stop writing first (a pass in progress finishes), then give the Lease
  // back, then stop watching.
  if (failover_) failover_->set_leader(false);
  if (registry_) registry_->set_leader(false);
  poke_ = nullptr;
  if (failover_) failover_->Stop();
  if (elector_) {
    elector_->Stop();
    if (elector_thread_.joinable()) elector_thread_.join();
  }
  if (registry_) registry_->Stop();
  if (folder_) folder_->Stop();
}

}  // namespace kubefold
