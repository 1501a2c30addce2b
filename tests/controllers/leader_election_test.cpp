// Leader election against kube-emulator over HTTPS (the Lease of spec §5.4).
#define BOOST_TEST_MODULE leader_election_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <regex>
#include <string>
#include <thread>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "controllers/leader_election.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"

using namespace kubefold::controllers;
using namespace kubefold::kube;
using namespace std::chrono_literals;
namespace emu = kubefold::emulator;
using SteadyClock = std::chrono::steady_clock;
using kubefold::testing::Eventually;

namespace {


struct Cluster {
  std::unique_ptr<emu::Emulator> emulator;
  Cluster() {
    emu::EmulatorOptions options;
    options.clusters = {"host"};
    emulator = std::make_unique<emu::Emulator>(options);
    emulator->cluster("host").store().Mutate("/namespaces", "", "kubefold-system", [](const emu::ObjectPtr&) {
      return emu::Mutation::Put(emu::Json{{"kind", "Namespace"}, {"apiVersion", "v1"},
                                          {"metadata", {{"name", "kubefold-system"}}}});
    });
  }
  std::unique_ptr<RestClient> Client() {
    return kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*emulator, "host"),
                                        {.qps = 1000, .burst = 1000, .timeout = 2s});
  }
  emu::Json Lease() {
    auto o = emulator->cluster("host").store().Get("coordination.k8s.io/leases", "kubefold-system", "kubefold");
    return o ? o->json : emu::Json();
  }
};

LeaderElectionOptions Fast(const std::string& identity) {
  LeaderElectionOptions o;
  o.identity = identity;
  o.lease_duration = 1500ms;
  o.renew_deadline = 1000ms;
  o.retry_period = 200ms;
  return o;
}

// Timings with room for a loaded machine under a sanitizer (a renewal may
// take seconds there), for the tests that assert who leads at a moment.
LeaderElectionOptions Roomy(const std::string& identity) {
  LeaderElectionOptions o;
  o.identity = identity;
  o.lease_duration = 8000ms;
  o.renew_deadline = 6000ms;
  o.retry_period = 300ms;
  return o;
}

// A candidate with its own client, running on its own thread.
struct Candidate {
  std::unique_ptr<RestClient> client;
  std::unique_ptr<LeaderElector> elector;
  std::atomic<int> started{0};
  std::atomic<int> stopped{0};
  std::atomic<std::int64_t> started_at_ms{0};
  std::thread thread;

  Candidate(Cluster& c, LeaderElectionOptions options) : client(c.Client()) {
    LeaderElectionHooks hooks;
    const auto t0 = SteadyClock::now();
    hooks.started_leading = [this, t0] {
      started_at_ms = std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - t0).count();
      ++started;
    };
    hooks.stopped_leading = [this] { ++stopped; };
    elector = std::make_unique<LeaderElector>(*client, options, hooks);
    thread = std::thread([this] { elector->Run(); });
  }
  void Stop() {
    elector->Stop();
    if (thread.joinable()) thread.join();
  }
  ~Candidate() { Stop(); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(options_must_keep_duration_above_deadline_above_1_2_retry) {
  LeaderElectionOptions o = Fast("a");
  BOOST_CHECK(ValidateLeaderElection(o).ok());
  BOOST_CHECK(ValidateLeaderElection(LeaderElectionOptions{.identity = "a"}).ok());  // 15 / 10 / 2 s
  o.renew_deadline = 1500ms;
  auto s = ValidateLeaderElection(o);
  BOOST_CHECK(s.code() == kubefold::StatusCode::kInvalidArgument);
  BOOST_CHECK(s.message().find("renew deadline") != std::string::npos);
  o = Fast("a");
  o.retry_period = 900ms;  // 1.2 × 900 ms > 1000 ms
  BOOST_CHECK(ValidateLeaderElection(o).message().find("1.2") != std::string::npos);
  o = Fast("");
  BOOST_CHECK(ValidateLeaderElection(o).message().find("identity") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(one_candidate_leads_and_a_stopping_leader_hands_over_at_once) {
  Cluster c;
  Candidate a(c, Roomy("replica-a"));
  Candidate b(c, Roomy("replica-b"));
  BOOST_REQUIRE(Eventually([&] { return a.elector->IsLeader() || b.elector->IsLeader(); }));
  // Several renewals: never two leaders, and exactly one at the end.
  const auto until = SteadyClock::now() + 1s;
  while (SteadyClock::now() < until) {
    BOOST_REQUIRE(!(a.elector->IsLeader() && b.elector->IsLeader()));
    std::this_thread::sleep_for(10ms);
  }
  BOOST_REQUIRE(a.elector->IsLeader() != b.elector->IsLeader());
  Candidate& leader = a.elector->IsLeader() ? a : b;
  Candidate& follower = a.elector->IsLeader() ? b : a;
  const std::string leader_id = leader.elector->leader();
  const std::string follower_id = leader_id == "replica-a" ? "replica-b" : "replica-a";
  BOOST_CHECK_EQUAL(follower.elector->leader(), leader_id);
  emu::Json lease = c.Lease();
  BOOST_CHECK_EQUAL(lease["spec"]["holderIdentity"], leader_id);
  BOOST_CHECK_EQUAL(lease["spec"]["leaseDurationSeconds"], 8);
  BOOST_CHECK_EQUAL(lease["spec"]["leaseTransitions"], 0);
  static const std::regex micro(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  BOOST_CHECK(std::regex_match(lease["spec"]["renewTime"].get<std::string>(), micro));

  const auto handover = SteadyClock::now();
  leader.Stop();  // releases the Lease
  BOOST_CHECK_EQUAL(leader.stopped.load(), 1);
  BOOST_REQUIRE(Eventually([&] { return follower.elector->IsLeader(); }));
  // Released, so no need to wait out the 8 s lease.
  BOOST_CHECK_LT(SteadyClock::now() - handover, 8000ms);
  lease = c.Lease();
  BOOST_CHECK_EQUAL(lease["spec"]["holderIdentity"], follower_id);
  BOOST_CHECK_EQUAL(lease["spec"]["leaseTransitions"], 1);
}

BOOST_AUTO_TEST_CASE(a_silent_holder_is_taken_over_only_after_its_lease_duration_on_our_clock) {
  Cluster c;
  // A holder that wrote a renewTime long ago but whose record we have never
  // seen change: its term starts when we first see it.
  c.emulator->cluster("host").store().Mutate("coordination.k8s.io/leases", "kubefold-system", "kubefold",
                                             [](const emu::ObjectPtr&) {
    return emu::Mutation::Put(emu::Json{
        {"kind", "Lease"}, {"apiVersion", "coordination.k8s.io/v1"},
        {"metadata", {{"name", "kubefold"}, {"namespace", "kubefold-system"}}},
        {"spec", {{"holderIdentity", "ghost"}, {"leaseDurationSeconds", 1},
                  {"acquireTime", "2020-01-01T00:00:00.000000Z"}, {"renewTime", "2020-01-01T00:00:00.000000Z"},
                  {"leaseTransitions", 4}}}});
  });
  Candidate a(c, Fast("replica-a"));
  BOOST_REQUIRE(Eventually([&] { return a.elector->IsLeader(); }));
  BOOST_CHECK_GE(a.started_at_ms.load(), 1000);
  const emu::Json lease = c.Lease();
  BOOST_CHECK_EQUAL(lease["spec"]["holderIdentity"], "replica-a");
  BOOST_CHECK_EQUAL(lease["spec"]["leaseTransitions"], 5);
  BOOST_CHECK_NE(lease["spec"]["acquireTime"], "2020-01-01T00:00:00.000000Z");
}

BOOST_AUTO_TEST_CASE(a_leader_cut_off_from_the_api_server_stops_leading_and_someone_leads_after_healing) {
  Cluster c;
  Candidate a(c, Fast("replica-a"));
  BOOST_REQUIRE(Eventually([&] { return a.elector->IsLeader(); }));
  c.emulator->server("host").Partition();
  // No renewal can succeed: leadership ends within the renew deadline (plus
  // a retry period and the request timeout).
  BOOST_CHECK(Eventually([&] { return !a.elector->IsLeader(); }, 6s));
  BOOST_CHECK_EQUAL(a.stopped.load(), 1);
  c.emulator->server("host").Heal();
  BOOST_CHECK(Eventually([&] { return a.elector->IsLeader(); }, 10s));
  // The callback runs after IsLeader() turns true (seen once under ASan).
  BOOST_CHECK(Eventually([&] { return a.started.load() == 2; }, 5s));
  BOOST_CHECK_EQUAL(a.started.load(), 2);
}
