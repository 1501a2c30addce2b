// The work queue the control loops share, with client-go's workqueue
// semantics (DESIGN.md §5):
//
//   - Deduplicating: a key added while it waits is queued once; a key added
//     while a worker processes it is queued again only after Done, so one
//     key is never processed by two workers at once, and no change is lost.
//   - Delayed adds (AddAfter), for requeues at a time.
//   - Rate limited (AddRateLimited): the maximum of a per-key exponential
//     backoff (5 ms doubling to 1000 s, reset by Forget) and an overall token
//     bucket (10 per second, burst 100) — client-go's
//     DefaultControllerRateLimiter (k8s-wire-spec.md §3.3).
//
// Thread-safety: every member function may be called from any thread; Get
// blocks. After ShutDown, Get hands out what is still queued and then
// returns nullopt; adds are ignored.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "controllers/kube/backoff.h"
#include "controllers/metrics.h"

namespace kubefold::controllers {

using kube::Clock;

// client-go's workqueue metrics, with the same meanings; any may be null.
//   depth           keys waiting (added and not yet handed out)
//   adds            Add calls that queued a key (not deduplicated away)
//   retries         AddRateLimited calls
//   queue_duration  seconds from a key's add to its Get
//   work_duration   seconds from Get to Done
struct WorkQueueMetrics {
  metrics::Gauge* depth = nullptr;
  metrics::Counter* adds = nullptr;
  metrics::Counter* retries = nullptr;
  metrics::Histogram* queue_duration = nullptr;
  metrics::Histogram* work_duration = nullptr;
};

struct WorkQueueOptions {
  std::chrono::milliseconds base_delay{5};         // per-key backoff: first delay
  std::chrono::milliseconds max_delay{1000 * 1000};  // per-key backoff: cap (1000 s)
  double qps = 10;                                 // overall bucket
  int burst = 100;
  WorkQueueMetrics metrics;
};

struct WorkQueueStats {
  std::uint64_t adds = 0;        // Add calls that queued a key (not deduplicated away)
  std::uint64_t deduplicated = 0;
  std::uint64_t gets = 0;
  std::uint64_t retries = 0;     // AddRateLimited calls
};

class WorkQueue {
 public:
  explicit WorkQueue(WorkQueueOptions options = {});
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // Queues `key` unless it is queued already. O(1) amortised.
  void Add(const std::string& key);
  // Queues `key` once `delay` has passed (at once if delay <= 0). A key
  // scheduled twice keeps the earlier time.
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  // AddAfter(key, the rate limiter's delay for key); counts a requeue.
  void AddRateLimited(const std::string& key);
  // Resets key's per-key backoff (call after a success).
  void Forget(const std::string& key);
  // How often key was requeued with AddRateLimited since its last Forget.
  int NumRequeues(const std::string& key) const;

  // Blocks until a key is ready and hands it to the caller, who must call
  // Done(key) when finished. nullopt once shut down and drained.
  std::optional<std::string> Get();
  // Like Get, but gives up after `timeout` (nullopt).
  std::optional<std::string> GetFor(std::chrono::nanoseconds timeout);
  // Ends processing of key; a key added meanwhile is queued now.
  void Done(const std::string& key);

  void ShutDown();
  bool shutting_down() const;
  // Keys queued and ready (not the delayed ones, not those being processed).
  std::size_t Len() const;
  WorkQueueStats stats() const;

 private:
  void AddLocked(const std::string& key);  // REQUIRES: mu_ held
  // Moves delayed keys whose time has come into the queue; returns the
  // earliest time still pending. REQUIRES: mu_ held.
  std::optional<Clock::time_point> PromoteLocked(Clock::time_point now);
  std::chrono::nanoseconds RateLimitDelayLocked(const std::string& key);  // REQUIRES: mu_ held

  const WorkQueueOptions options_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;                // Guarded by mu_: ready keys, in order
  std::unordered_set<std::string> dirty_;        // Guarded by mu_: keys needing processing
  std::unordered_set<std::string> processing_;   // Guarded by mu_: keys handed out, not Done
  std::map<std::string, Clock::time_point> waiting_at_;  // Guarded by mu_: delayed key -> when
  std::multimap<Clock::time_point, std::string> waiting_;  // Guarded by mu_: when -> delayed key
  std::unordered_map<std::string, int> failures_;  // Guarded by mu_: per-key requeues
  kube::TokenBucket bucket_;                     // Guarded by mu_
  bool shutting_down_ = false;                   // Guarded by mu_
  WorkQueueStats stats_;                         // Guarded by mu_
  std::unordered_map<std::string, Clock::time_point> added_at_;    // Guarded by mu_: dirty key -> when
  std::unordered_map<std::string, Clock::time_point> started_at_;  // Guarded by mu_: processing key -> when
};

}  // namespace kubefold::controllers
