// Member-cluster health (DESIGN.md §5): periodic probes of the API server's
// /readyz (or /livez) plus watch liveness decide the MemberCluster's Ready
// condition.
//
//   True     the last probe succeeded, or the cluster was heard from (probe
//            or watch activity) within the grace period and fewer than
//            failure_threshold probes have failed in a row;
//   Unknown  nothing heard within the grace period (or never), fewer than
//            failure_threshold failures in a row;
//   False    failure_threshold probes in a row failed.
//
// HealthTracker is the decision alone, with time passed in (testable without
// waiting); HealthProber runs the probes on its own thread.
//
// Thread-safety: HealthTracker is a value for one thread at a time.
// HealthProber's member functions may be called from any thread; its
// on_change callback runs on the prober's thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "controllers/kube/transport.h"

namespace kubefold::controllers {

using HealthClock = std::chrono::steady_clock;

// Each cluster's Ready condition is also a record in its subtree of the
// store, so every snapshot says how healthy each cluster was and health
// transitions advance the cluster's vector component like any event. The
// namespace is not a valid Kubernetes namespace name, so it never collides
// with a workload's.
inline constexpr char kHealthNamespace[] = "kubefold.io";
inline constexpr char kHealthGroup[] = "kubefold.io";
inline constexpr char kHealthKind[] = "ClusterHealth";
inline constexpr char kHealthName[] = "ready";

struct HealthOptions {
  std::string probe_path = "/readyz";  // or "/livez"
  std::chrono::milliseconds period{10000};
  // A probe not answered within this long failed; 0 means one period.
  std::chrono::milliseconds probe_timeout{0};
  int failure_threshold = 3;
  std::chrono::milliseconds grace_period{30000};
};

struct ReadyCondition {
  std::string status = "Unknown";  // "True", "False", "Unknown"
  std::string reason;              // CamelCase, for the condition
  std::string message;
  friend bool operator==(const ReadyCondition&, const ReadyCondition&) = default;
};

// The record's JSON: {"status":..,"reason":..,"message":..,"since":RFC 3339}.
// `since` is when the cluster last became Ready, or stopped being Ready
// (Unknown -> False keeps it).
std::string HealthRecordJson(const ReadyCondition& c, std::chrono::system_clock::time_point since);
struct HealthRecord {
  ReadyCondition condition;
  std::chrono::system_clock::time_point since{};
};
// nullopt when `json` is not such a record.
std::optional<HealthRecord> ParseHealthRecord(std::string_view json);

class HealthTracker {
 public:
  explicit HealthTracker(HealthOptions options) : options_(std::move(options)) {}

  void ProbeSucceeded(HealthClock::time_point at);
  // `why`: what failed, for the condition's message ("503: [-]etcd failed").
  void ProbeFailed(HealthClock::time_point at, std::string why);
  // A watch event or bookmark arrived: the API server is alive.
  void WatchActivity(HealthClock::time_point at);

  ReadyCondition Evaluate(HealthClock::time_point now) const;
  int consecutive_failures() const { return consecutive_failures_; }

 private:
  HealthOptions options_;
  std::optional<HealthClock::time_point> last_contact_;
  bool last_probe_ok_ = false;
  int consecutive_failures_ = 0;
  std::string last_failure_;
};

class HealthProber {
 public:
  // Probes through `transport` (which carries the cluster's TLS settings);
  // `authorize` adds credentials. on_change gets every change of the
  // condition's status or reason (and the first evaluation).
  HealthProber(kube::Transport& transport, HealthOptions options,
               std::function<Status(kube::HttpRequest&)> authorize,
               std::function<void(const ReadyCondition&)> on_change);
  ~HealthProber();  // Stop()
  HealthProber(const HealthProber&) = delete;
  HealthProber& operator=(const HealthProber&) = delete;

  void WatchActivity();  // any thread: the cluster's watches are alive
  ReadyCondition Current() const;
  // When the last probe finished (epoch before the first).
  std::chrono::system_clock::time_point last_probe() const;
  void Stop();

 private:
  void Loop();
  bool ProbeOnce(std::string* why);

  kube::Transport& transport_;
  const HealthOptions options_;
  std::function<Status(kube::HttpRequest&)> authorize_;
  std::function<void(const ReadyCondition&)> on_change_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  HealthTracker tracker_;      // Guarded by mu_
  ReadyCondition current_;     // Guarded by mu_
  std::chrono::system_clock::time_point last_probe_{};  // Guarded by mu_
  bool stop_ = false;          // Guarded by mu_
  std::thread thread_;
};

}  // namespace kubefold::controllers
