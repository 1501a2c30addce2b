#define BOOST_TEST_MODULE backoff_test
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <vector>

#include "controllers/kube/backoff.h"

using namespace kubefold::kube;
using namespace std::chrono_literals;
using std::chrono::milliseconds;

namespace {

struct FakeClock {
  Clock::time_point now{};
  ClockFn Fn() {
    return [this] { return now; };
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(backoff_doubles_from_800ms_to_a_30s_cap_with_up_to_100_percent_jitter) {
  FakeClock clock;
  Backoff backoff(Backoff::Options(), clock.Fn(), /*seed=*/7);
  const std::vector<milliseconds> bases = {800ms,    1600ms,   3200ms,   6400ms,  12800ms,
                                           25600ms,  30000ms,  30000ms};
  for (milliseconds base : bases) {
    BOOST_TEST(backoff.base().count() == base.count());
    milliseconds d = backoff.Next();
    BOOST_TEST(d >= base);
    BOOST_TEST(d < 2 * base);
    clock.now += d;  // waited it out, then failed again
  }
}

BOOST_AUTO_TEST_CASE(backoff_without_jitter_is_exact_and_resets_after_two_quiet_minutes) {
  FakeClock clock;
  Backoff::Options o;
  o.jitter = 0;
  Backoff backoff(o, clock.Fn(), 1);
  BOOST_TEST(backoff.Next().count() == 800);
  clock.now += 10s;
  BOOST_TEST(backoff.Next().count() == 1600);
  clock.now += 120s;  // exactly two minutes: not yet a reset
  BOOST_TEST(backoff.Next().count() == 3200);
  clock.now += 121s;  // healthy for more than two minutes
  BOOST_TEST(backoff.Next().count() == 800);
  BOOST_TEST(backoff.base().count() == 1600);
}

BOOST_AUTO_TEST_CASE(jittered_delays_spread_over_the_whole_interval) {
  FakeClock clock;
  Backoff::Options o;
  o.factor = 1.0;  // stay at 800 ms
  Backoff backoff(o, clock.Fn(), 42);
  milliseconds lo = 1h, hi = 0ms;
  for (int i = 0; i < 2000; ++i) {
    milliseconds d = backoff.Next();
    lo = std::min(lo, d);
    hi = std::max(hi, d);
  }
  BOOST_TEST(lo.count() >= 800);
  BOOST_TEST(lo.count() < 820);
  BOOST_TEST(hi.count() < 1600);
  BOOST_TEST(hi.count() > 1580);
}

BOOST_AUTO_TEST_CASE(the_token_bucket_allows_a_burst_then_paces_at_qps) {
  FakeClock clock;
  TokenBucket bucket(5.0, 10, clock.Fn());
  for (int i = 0; i < 10; ++i) BOOST_TEST(bucket.Reserve().count() == 0);
  BOOST_TEST(std::chrono::duration_cast<milliseconds>(bucket.Reserve()).count() == 200);
  BOOST_TEST(std::chrono::duration_cast<milliseconds>(bucket.Reserve()).count() == 400);
  clock.now += 1s;  // five tokens come back; two were borrowed
  BOOST_TEST(bucket.tokens() == 3.0, boost::test_tools::tolerance(1e-9));
  for (int i = 0; i < 3; ++i) BOOST_TEST(bucket.Reserve().count() == 0);
  BOOST_TEST(std::chrono::duration_cast<milliseconds>(bucket.Reserve()).count() == 200);
  clock.now += 1h;  // never more than the burst
  BOOST_TEST(bucket.tokens() == 10.0, boost::test_tools::tolerance(1e-9));
}

BOOST_AUTO_TEST_CASE(retry_after_accepts_whole_seconds_only) {
  BOOST_TEST(ParseRetryAfter("1").value_or(-1s).count() == 1);
  BOOST_TEST(ParseRetryAfter(" 30\t").value_or(-1s).count() == 30);
  BOOST_TEST(ParseRetryAfter("0").value_or(-1s).count() == 0);
  BOOST_TEST(ParseRetryAfter("99999999").value_or(-1s).count() == 3600);  // capped
  BOOST_TEST(!ParseRetryAfter("").has_value());
  BOOST_TEST(!ParseRetryAfter("-1").has_value());
  BOOST_TEST(!ParseRetryAfter("1.5").has_value());
  BOOST_TEST(!ParseRetryAfter("soon").has_value());
  BOOST_TEST(!ParseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT").has_value());
  BOOST_TEST(!ParseRetryAfter("12345678901").has_value());
}
