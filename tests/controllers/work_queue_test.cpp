#define BOOST_TEST_MODULE work_queue_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "controllers/work_queue.h"

using kubefold::controllers::WorkQueue;
using kubefold::controllers::WorkQueueOptions;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

BOOST_AUTO_TEST_CASE(a_key_added_twice_while_queued_is_handed_out_once) {
  WorkQueue q;
  q.Add("a");
  q.Add("b");
  q.Add("a");
  BOOST_CHECK_EQUAL(q.Len(), 2u);
  BOOST_CHECK_EQUAL(*q.GetFor(1s), "a");
  BOOST_CHECK_EQUAL(*q.GetFor(1s), "b");
  BOOST_CHECK(!q.GetFor(10ms).has_value());
  BOOST_CHECK_EQUAL(q.stats().adds, 2u);
  BOOST_CHECK_EQUAL(q.stats().deduplicated, 1u);
}

BOOST_AUTO_TEST_CASE(a_key_added_while_processed_comes_back_after_done_and_not_before) {
  WorkQueue q;
  q.Add("a");
  BOOST_REQUIRE_EQUAL(*q.GetFor(1s), "a");
  q.Add("a");  // a change arrives while a worker has "a"
  q.Add("a");
  BOOST_CHECK_EQUAL(q.Len(), 0u);
  BOOST_CHECK(!q.GetFor(20ms).has_value());  // no second worker gets it
  q.Done("a");
  BOOST_CHECK_EQUAL(q.Len(), 1u);
  BOOST_CHECK_EQUAL(*q.GetFor(1s), "a");
  q.Done("a");
  BOOST_CHECK(!q.GetFor(10ms).has_value());  // nothing was added since
}

BOOST_AUTO_TEST_CASE(add_after_waits_and_keeps_the_earlier_time) {
  WorkQueue q;
  const auto start = Clock::now();
  q.AddAfter("late", 10s);
  q.AddAfter("late", 60ms);  // sooner wins
  q.AddAfter("late", 20s);   // later is ignored
  BOOST_CHECK(!q.GetFor(0ms).has_value());
  auto key = q.GetFor(5s);
  BOOST_REQUIRE(key.has_value());
  BOOST_CHECK_EQUAL(*key, "late");
  BOOST_CHECK_GE(Clock::now() - start, 60ms);
  BOOST_CHECK_LT(Clock::now() - start, 5s);
  q.Done("late");
  BOOST_CHECK(!q.GetFor(20ms).has_value());
}

BOOST_AUTO_TEST_CASE(rate_limited_requeues_back_off_per_key_until_forgotten) {
  WorkQueueOptions options;
  options.base_delay = 20ms;
  options.max_delay = 80ms;
  options.qps = 1e6;
  options.burst = 1000000;
  WorkQueue q(options);
  std::vector<std::chrono::nanoseconds> delays;
  for (int i = 0; i < 4; ++i) {
    const auto start = Clock::now();
    q.AddRateLimited("k");
    auto key = q.GetFor(5s);
    BOOST_REQUIRE(key.has_value());
    delays.push_back(Clock::now() - start);
    q.Done("k");
  }
  BOOST_CHECK_EQUAL(q.NumRequeues("k"), 4);
  // 20, 40, 80, 80 ms (capped): each at least its bound.
  BOOST_CHECK_GE(delays[0], 20ms);
  BOOST_CHECK_GE(delays[1], 40ms);
  BOOST_CHECK_GE(delays[2], 80ms);
  BOOST_CHECK_GE(delays[3], 80ms);
  BOOST_CHECK_LT(delays[3], 2s);
  q.Forget("k");
  BOOST_CHECK_EQUAL(q.NumRequeues("k"), 0);
  BOOST_CHECK_EQUAL(q.stats().retries, 4u);
}

BOOST_AUTO_TEST_CASE(the_overall_bucket_limits_requeues_across_keys) {
  WorkQueueOptions options;
  options.base_delay = 1ms;
  options.qps = 10;
  options.burst = 2;
  WorkQueue q(options);
  const auto start = Clock::now();
  for (int i = 0; i < 4; ++i) q.AddRateLimited("key" + std::to_string(i));
  for (int i = 0; i < 4; ++i) BOOST_REQUIRE(q.GetFor(5s).has_value());
  // Two from the burst, then one every 100 ms: the fourth no sooner than 200 ms.
  BOOST_CHECK_GE(Clock::now() - start, 190ms);
}

BOOST_AUTO_TEST_CASE(shut_down_hands_out_what_is_queued_then_nothing) {
  WorkQueue q;
  q.Add("a");
  q.AddAfter("later", 10s);
  q.ShutDown();
  q.Add("b");  // ignored
  BOOST_CHECK_EQUAL(*q.Get(), "a");
  BOOST_CHECK(!q.Get().has_value());
  BOOST_CHECK(q.shutting_down());
}

BOOST_AUTO_TEST_CASE(get_blocks_until_an_add_or_shut_down) {
  WorkQueue q;
  std::thread t([&] {
    std::this_thread::sleep_for(30ms);
    q.Add("x");
  });
  BOOST_CHECK_EQUAL(*q.Get(), "x");
  t.join();
  std::thread s([&] {
    std::this_thread::sleep_for(30ms);
    q.ShutDown();
  });
  BOOST_CHECK(!q.Get().has_value());
  s.join();
}

// Under ThreadSanitizer in `make test-tsan`: producers add keys at random
// while workers process them; no key is ever held by two workers at once,
// and the last change made to every key is processed.
BOOST_AUTO_TEST_CASE(workers_never_share_a_key_and_no_change_is_lost) {
  constexpr int kKeys = 40;
  WorkQueue q;
  std::mutex mu;
  std::set<int> held;                    // Guarded by mu
  std::vector<int> version(kKeys, 0);    // Guarded by mu: bumped before each Add
  std::vector<int> processed(kKeys, 0);  // Guarded by mu: version seen at the last Get
  std::atomic<int> overlaps{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto key = q.Get()) {
        const int k = std::stoi(*key);
        {
          std::lock_guard lock(mu);
          if (!held.insert(k).second) ++overlaps;
          processed[k] = version[k];
        }
        std::this_thread::yield();
        {
          std::lock_guard lock(mu);
          held.erase(k);
        }
        q.Done(*key);
      }
    });
  }
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937 rng(p + 1);
      for (int i = 0; i < 4000; ++i) {
        const int k = static_cast<int>(rng() % kKeys);
        {
          std::lock_guard lock(mu);
          ++version[k];
        }
        q.Add(std::to_string(k));
      }
    });
  }
  for (auto& t : producers) t.join();
  // Drain: wait until every key's last change has been picked up.
  const auto deadline = Clock::now() + 20s;
  for (;;) {
    {
      std::lock_guard lock(mu);
      if (processed == version && held.empty() && q.Len() == 0) break;
    }
    BOOST_REQUIRE(Clock::now() < deadline);
    std::this_thread::sleep_for(5ms);
  }
  q.ShutDown();
  for (auto& t : workers) t.join();
  BOOST_CHECK_EQUAL(overlaps.load(), 0);
  BOOST_CHECK(processed == version);
  BOOST_CHECK_GT(q.stats().deduplicated, 0u);
}
