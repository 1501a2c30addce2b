#include "controllers/work_queue.h"

#include <algorithm>
#include <cmath>

namespace kubefold::controllers {

WorkQueue::WorkQueue(WorkQueueOptions options)
    : options_(options), bucket_(options.qps, options.burst, [] { return Clock::now(); }) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutting_down_) return;
  if (!dirty_.insert(key).second) {
    ++stats_.deduplicated;
    return;
  }
  ++stats_.adds;
  if (options_.metrics.adds) options_.metrics.adds->Inc();
  if (options_.metrics.depth) options_.metrics.depth->Inc();
  if (options_.metrics.queue_duration) added_at_[key] = Clock::now();
  // A key being processed waits for Done: never two workers on one key.
  if (processing_.count(key) != 0) return;
  queue_.push_back(key);
  cv_.notify_one();
}

void WorkQueue::Add(const std::string& key) {
  std::lock_guard lock(mu_);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::nanoseconds delay) {
  std::lock_guard lock(mu_);
  if (shutting_down_) return;
  if (delay.count() <= 0) {
    AddLocked(key);
    return;
  }
  const Clock::time_point at = Clock::now() + delay;
  auto it = waiting_at_.find(key);
  if (it != waiting_at_.end()) {
    if (it->second <= at) return;  // already due sooner
    auto range = waiting_.equal_range(it->second);
    for (auto w = range.first; w != range.second; ++w) {
      if (w->second == key) {
        waiting_.erase(w);
        break;
      }
    }
    it->second = at;
  } else {
    waiting_at_.emplace(key, at);
  }
  waiting_.emplace(at, key);
  cv_.notify_all();  // a waiting Get may need to wake earlier
}

std::chrono::nanoseconds WorkQueue::RateLimitDelayLocked(const std::string& key) {
  const int failures = failures_[key]++;
  // base × 2^failures, capped; computed in double to avoid overflow.
  const double per_key_ns = std::min(static_cast<double>(options_.base_delay.count()) * 1e6 * std::pow(2.0, failures),
                                     static_cast<double>(options_.max_delay.count()) * 1e6);
  const auto bucket = bucket_.Reserve();
  return std::max(std::chrono::nanoseconds(static_cast<std::int64_t>(per_key_ns)), bucket);
}

void WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::nanoseconds delay;
  {
    std::lock_guard lock(mu_);
    if (shutting_down_) return;
    ++stats_.retries;
    if (options_.metrics.retries) options_.metrics.retries->Inc();
    delay = RateLimitDelayLocked(key);
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  failures_.erase(key);
}

int WorkQueue::NumRequeues(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

std::optional<Clock::time_point> WorkQueue::PromoteLocked(Clock::time_point now) {
  while (!waiting_.empty() && waiting_.begin()->first <= now) {
    const std::string key = waiting_.begin()->second;
    waiting_.erase(waiting_.begin());
    waiting_at_.erase(key);
    AddLocked(key);
  }
  if (waiting_.empty()) return std::nullopt;
  return waiting_.begin()->first;
}

std::optional<std::string> WorkQueue::GetFor(std::chrono::nanoseconds timeout) {
  const Clock::time_point deadline = Clock::now() + timeout;
  std::unique_lock lock(mu_);
  for (;;) {
    const Clock::time_point now = Clock::now();
    const auto next_delayed = shutting_down_ ? std::nullopt : PromoteLocked(now);
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      processing_.insert(key);
      dirty_.erase(key);
      ++stats_.gets;
      if (options_.metrics.depth) options_.metrics.depth->Dec();
      if (options_.metrics.queue_duration) {
        if (auto it = added_at_.find(key); it != added_at_.end()) {
          options_.metrics.queue_duration->Observe(std::chrono::duration<double>(now - it->second).count());
          added_at_.erase(it);
        }
      }
      if (options_.metrics.work_duration) started_at_[key] = now;
      return key;
    }
    if (shutting_down_ || now >= deadline) return std::nullopt;
    cv_.wait_until(lock, next_delayed ? std::min(*next_delayed, deadline) : deadline);
  }
}

std::optional<std::string> WorkQueue::Get() {
  // "Forever", in steps, so a delayed key's time is noticed.
  for (;;) {
    auto key = GetFor(std::chrono::hours(24));
    if (key || shutting_down()) return key;
  }
}

void WorkQueue::Done(const std::string& key) {
  std::lock_guard lock(mu_);
  processing_.erase(key);
  if (options_.metrics.work_duration) {
    if (auto it = started_at_.find(key); it != started_at_.end()) {
      options_.metrics.work_duration->Observe(std::chrono::duration<double>(Clock::now() - it->second).count());
      started_at_.erase(it);
    }
  }
  if (dirty_.count(key) != 0) {
    // Added while it was processed: its turn again now.
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  waiting_.clear();
  waiting_at_.clear();
  cv_.notify_all();
}

bool WorkQueue::shutting_down() const {
  std::lock_guard lock(mu_);
  return shutting_down_;
}

std::size_t WorkQueue::Len() const {
  std::lock_guard lock(mu_);
  return queue_.size();
}

WorkQueueStats WorkQueue::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace kubefold::controllers
