// Leader election on a coordination.k8s.io/v1 Lease, as client-go's
// leaderelection does it (k8s-wire-spec.md §5.4): every replica runs an
// elector; the one holding the Lease leads and renews it every retry period;
// the others take it over once its holder has not renewed it for the lease
// duration *as observed on their own clock* (never trusting another
// machine's time stamps); a leader that cannot renew within the renew
// deadline stops leading; a leader that stops releases the Lease
// (leaseDurationSeconds 1, empty holder) so a successor takes over at once.
//
// Thread-safety: Run blocks its thread; Stop, IsLeader and leader() may be
// called from any thread. The callbacks run on Run's thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>

#include "controllers/kube/rest_client.h"
#include "state/status.h"

namespace kubefold::controllers {

struct LeaderElectionOptions {
  std::string lease_namespace = "kubefold-system";
  std::string lease_name = "kubefold";
  std::string identity;  // REQUIRES: non-empty and unique per replica (the pod name)
  // client-go's defaults (component-base): 15 s / 10 s / 2 s.
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

// kInvalidArgument naming the option unless lease_duration > renew_deadline
// > 1.2 × retry_period (client-go's JitterFactor) and identity is set.
Status ValidateLeaderElection(const LeaderElectionOptions& options);

struct LeaderElectionHooks {
  std::function<void()> started_leading;  // this replica leads now
  std::function<void()> stopped_leading;  // it no longer does (lost, or stopping)
  std::function<void(const std::string& identity)> new_leader;  // someone (maybe us) took the Lease
  std::function<void(std::string_view)> log;
};

class LeaderElector {
 public:
  // REQUIRES: ValidateLeaderElection(options).ok(); `client` outlives this.
  LeaderElector(kube::RestClient& client, LeaderElectionOptions options, LeaderElectionHooks hooks);
  LeaderElector(const LeaderElector&) = delete;
  LeaderElector& operator=(const LeaderElector&) = delete;

  // Campaigns, leads, and campaigns again after losing the Lease, until
  // Stop(); then releases the Lease if it holds it and returns.
  void Run();
  void Stop();
  bool IsLeader() const { return leading_.load(); }
  // The holder last seen on the Lease ("" if none yet).
  std::string leader() const;

 private:
  // One attempt: true if this replica holds the Lease afterwards.
  bool TryAcquireOrRenew();
  // Records the Lease record seen (or written) and when, on our clock.
  void Observe(const std::string& holder, const std::string& renew_time, std::chrono::steady_clock::time_point at);
  void Release();
  bool Sleep(std::chrono::milliseconds d);  // false when stopped
  void Log(std::string_view message) const;
  std::string LeasePath() const;

  kube::RestClient& client_;
  const LeaderElectionOptions options_;
  LeaderElectionHooks hooks_;

  std::atomic<bool> leading_{false};
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  std::string observed_holder_;  // Guarded by mu_
  // Run's thread only: the record last seen and when (our clock) it changed.
  std::string observed_renew_time_;
  std::chrono::steady_clock::time_point observed_at_{};
  std::string lease_resource_version_;
};

}  // namespace kubefold::controllers
