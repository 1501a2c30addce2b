#include "controllers/kube/backoff.h"

#include <algorithm>
#include <cmath>

namespace kubefold::kube {

Backoff::Backoff(Options options, ClockFn clock, uint64_t seed)
    : options_(options), clock_(std::move(clock)), rng_(seed), base_(options.initial) {}

std::chrono::milliseconds Backoff::Next() {
  const Clock::time_point now = clock_();
  // A quiet spell longer than reset_after since the last backoff: start over.
  if (last_ && now - *last_ > options_.reset_after) base_ = options_.initial;
  last_ = now;
  const auto base = std::min(base_, options_.cap);
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double extra = unit(rng_) * options_.jitter * static_cast<double>(base.count());
  const auto delay = base + std::chrono::milliseconds(static_cast<int64_t>(extra));
  const double grown = static_cast<double>(base.count()) * options_.factor;
  base_ = std::chrono::milliseconds(
      static_cast<int64_t>(std::min(grown, static_cast<double>(options_.cap.count()))));
  return delay;
}

TokenBucket::TokenBucket(double qps, int burst, ClockFn clock)
    : qps_(qps > 0 ? qps : 1e-9),
      burst_(burst > 0 ? burst : 1),
      clock_(std::move(clock)),
      tokens_(burst_),
      last_(clock_()) {}

void TokenBucket::Refill() {
  const Clock::time_point now = clock_();
  if (now > last_) {
    const double secs = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst_, tokens_ + secs * qps_);
    last_ = now;
  }
}

double TokenBucket::tokens() {
  Refill();
  return tokens_;
}

std::chrono::nanoseconds TokenBucket::Reserve() {
  Refill();
  tokens_ -= 1.0;
  if (tokens_ >= 0) return std::chrono::nanoseconds(0);
  return std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(-tokens_ / qps_ * 1e9)));
}

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, std::chrono::seconds max) {
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
  if (value.empty() || value.size() > 10) return std::nullopt;
  int64_t secs = 0;
  for (char c : value) {
    if (c < '0' || c > '9') return std::nullopt;
    secs = secs * 10 + (c - '0');
  }
  return std::chrono::seconds(std::min<int64_t>(secs, max.count()));
}

}  // namespace kubefold::kube
