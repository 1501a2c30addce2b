#define BOOST_TEST_MODULE health_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/health.h"
#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"

using namespace kubefold::controllers;
using namespace kubefold::kube;
using namespace std::chrono_literals;
namespace emu = kubefold::emulator;
using kubefold::testing::Eventually;

namespace {

HealthOptions Options(std::chrono::milliseconds period, int threshold, std::chrono::milliseconds grace) {
  HealthOptions o;
  o.period = period;
  o.failure_threshold = threshold;
  o.grace_period = grace;
  return o;
}


}  // namespace

BOOST_AUTO_TEST_CASE(ready_is_unknown_until_probed_true_on_success_and_false_after_the_threshold) {
  HealthTracker t(Options(10s, 3, 30s));
  const auto t0 = HealthClock::time_point{} + 1000s;
  BOOST_CHECK_EQUAL(t.Evaluate(t0).status, "Unknown");
  BOOST_CHECK_EQUAL(t.Evaluate(t0).reason, "NotProbedYet");
  t.ProbeSucceeded(t0);
  BOOST_CHECK_EQUAL(t.Evaluate(t0).status, "True");
  BOOST_CHECK_EQUAL(t.Evaluate(t0).reason, "ProbeSucceeded");
  t.ProbeFailed(t0 + 10s, "HTTP 500");
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 10s).status, "True");  // one failure, heard from recently
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 10s).reason, "RecentlySeen");
  t.ProbeFailed(t0 + 20s, "HTTP 500");
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 20s).status, "True");
  t.ProbeFailed(t0 + 30s, "connection refused");
  const ReadyCondition c = t.Evaluate(t0 + 30s);
  BOOST_CHECK_EQUAL(c.status, "False");
  BOOST_CHECK_EQUAL(c.reason, "ProbeFailed");
  BOOST_CHECK_EQUAL(c.message, "3 probes of /readyz failed in a row; last: connection refused");
  t.ProbeSucceeded(t0 + 40s);
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 40s).status, "True");
  BOOST_CHECK_EQUAL(t.consecutive_failures(), 0);
}

BOOST_AUTO_TEST_CASE(ready_goes_unknown_after_the_grace_period_and_watch_activity_counts_as_contact) {
  HealthTracker t(Options(10s, 3, 30s));
  const auto t0 = HealthClock::time_point{} + 1000s;
  t.ProbeSucceeded(t0);
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 30s).status, "True");
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 31s).status, "Unknown");
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 31s).reason, "NoRecentContact");
  t.WatchActivity(t0 + 40s);
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 45s).status, "True");
  // Probes failing while watches still flow: True until the threshold.
  t.ProbeFailed(t0 + 50s, "timeout");
  BOOST_CHECK_EQUAL(t.Evaluate(t0 + 50s).reason, "RecentlySeen");
  // Never reached at all: Unknown with the failure, until the threshold.
  HealthTracker never(Options(10s, 2, 30s));
  never.ProbeFailed(t0, "connection refused");
  BOOST_CHECK_EQUAL(never.Evaluate(t0).status, "Unknown");
  BOOST_CHECK_EQUAL(never.Evaluate(t0).reason, "ProbeFailing");
  never.ProbeFailed(t0 + 10s, "connection refused");
  BOOST_CHECK_EQUAL(never.Evaluate(t0 + 10s).status, "False");
}

BOOST_AUTO_TEST_CASE(the_prober_follows_an_emulated_cluster_through_a_partition_and_500s) {
  emu::EmulatorOptions eo;
  eo.clusters = {"member"};
  emu::Emulator e(eo);
  auto owned = kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(e, "member"));
  RestClient& client = *owned;
  std::mutex mu;
  std::vector<std::string> seen;  // status/reason transitions, in order
  std::vector<std::string> messages;  // their messages
  HealthOptions options = Options(100ms, 2, 300ms);
  options.probe_timeout = 5s;  // sanitizer builds handshake slowly; failures here are refusals and 500s
  HealthProber prober(client.transport(), options,
                      [&](HttpRequest& r) { return client.Authorize(r); },
                      [&](const ReadyCondition& c) {
                        std::lock_guard lock(mu);
                        seen.push_back(c.status + "/" + c.reason);
                        messages.push_back(c.message);
                      });
  BOOST_REQUIRE(Eventually([&] { return prober.Current().status == "True"; }));
  e.server("member").Partition();
  BOOST_REQUIRE(Eventually([&] { return prober.Current().status == "False"; }));
  {
    // The transition to False names the threshold's count. Current() may
    // already count a third failure, so read the transition itself.
    std::lock_guard lock(mu);
    const auto down = std::find(seen.begin(), seen.end(), "False/ProbeFailed");
    BOOST_REQUIRE(down != seen.end());
    const std::string& message = messages[static_cast<size_t>(down - seen.begin())];
    BOOST_CHECK_MESSAGE(message.find("2 probes of /readyz failed in a row") == 0, message);
  }
  e.server("member").Heal();
  BOOST_REQUIRE(Eventually([&] { return prober.Current().status == "True"; }));
  emu::FailSpec fail;
  fail.count = 1000;
  fail.code = 500;
  fail.retry_after_s = -1;
  e.cluster("member").FailNext(fail);
  BOOST_REQUIRE(Eventually([&] { return prober.Current().status == "False"; }));
  BOOST_CHECK(prober.Current().message.find("HTTP 500") != std::string::npos);
  e.cluster("member").FailNext({});
  BOOST_REQUIRE(Eventually([&] { return prober.Current().status == "True"; }));
  prober.Stop();
  std::lock_guard lock(mu);
  // In order: ready, not ready (partition), ready, not ready (500s), ready.
  auto at = seen.begin();
  for (const char* want : {"True/ProbeSucceeded", "False/ProbeFailed", "True/ProbeSucceeded", "False/ProbeFailed",
                           "True/ProbeSucceeded"}) {
    at = std::find(at, seen.end(), want);
    BOOST_REQUIRE_MESSAGE(at != seen.end(), "missing " << want << " in order");
    ++at;
  }
  BOOST_CHECK_EQUAL(seen.back(), "True/ProbeSucceeded");
}
