// Retry pacing for a client that talks to many API servers: the reflector's
// exponential backoff, a per-cluster token bucket for request rate, and the
// Retry-After header (k8s-wire-spec.md §3.1 item 4, §3.3).
//
// Nothing here sleeps: each call says how long to wait, and the caller
// waits on its own timer (or a test's clock). Time is injected.
//
// Thread-safety: each object is used by one thread at a time (one
// reflector, or one cluster's client under its own lock).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <random>
#include <string_view>

namespace kubefold::kube {

using Clock = std::chrono::steady_clock;
using ClockFn = std::function<Clock::time_point()>;

// client-go's reflector backoff (wait.NewExponentialBackoffManager(800ms,
// 30s, 2min, 2.0, 1.0)): the base delay starts at `initial` and doubles
// after each use up to `cap`; each delay adds up to `jitter` × base at
// random, so it falls in [base, base × (1 + jitter)); after `reset_after`
// without a backoff the base returns to `initial`.
class Backoff {
 public:
  struct Options {
    std::chrono::milliseconds initial{800};
    std::chrono::milliseconds cap{30000};
    std::chrono::milliseconds reset_after{120000};
    double factor = 2.0;
    double jitter = 1.0;
  };

  explicit Backoff(ClockFn clock) : Backoff(Options(), std::move(clock)) {}
  Backoff(Options options, ClockFn clock, uint64_t seed = std::random_device{}());

  // The delay to wait before the next attempt; advances the base.
  std::chrono::milliseconds Next();
  // The base the next delay starts from (for logs and tests).
  std::chrono::milliseconds base() const { return base_; }

 private:
  Options options_;
  ClockFn clock_;
  std::mt19937_64 rng_;
  std::chrono::milliseconds base_;
  std::optional<Clock::time_point> last_;
};

// A token bucket: `qps` tokens a second, holding at most `burst` (client-go's
// default for a REST client: 5 QPS, burst 10). Reserve() takes a token and
// says how long to wait until it may be used; a full bucket answers 0.
class TokenBucket {
 public:
  TokenBucket(double qps, int burst, ClockFn clock);

  // Takes one token, possibly borrowed from the future: the caller must wait
  // the returned time before sending. Never blocks.
  std::chrono::nanoseconds Reserve();
  // Tokens available now (negative while reservations are outstanding).
  double tokens();

 private:
  void Refill();
  double qps_;
  double burst_;
  ClockFn clock_;
  double tokens_;
  Clock::time_point last_;
};

// The Retry-After header of a 429 or 5xx answer, as client-go honours it: a
// whole number of seconds, at most `max`. nullopt for a missing or malformed
// value (an HTTP date is not used by API servers and is treated as absent),
// so the caller falls back to its own backoff.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value,
                                                    std::chrono::seconds max = std::chrono::seconds(3600));

}  // namespace kubefold::kube
