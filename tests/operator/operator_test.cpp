// The operator end to end against kube-emulator: a host and three member
// clusters from one emulator, kubefold's CRDs, Secrets, MemberClusters and
// FailoverPolicies applied with real kubectl, the Operator in-process (and,
// for the leader handoff, two kubefold processes).
#define BOOST_TEST_MODULE operator_test
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/health.h"
#include "controllers/kube/internal/base64.h"
#include "operator/operator.h"
#include "state/diff.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"
#include "tests/operator/world.h"

using namespace std::chrono_literals;
using Json = nlohmann::json;
namespace emu = kubefold::emulator;
namespace state = kubefold::state;
namespace kube = kubefold::kube;
namespace ctl = kubefold::controllers;

using namespace optest;

BOOST_AUTO_TEST_CASE(members_registered_with_kubectl_are_folded_and_match_what_they_serve) {
  World w;
  w.Deploy("east", "web", 2);
  w.Deploy("east", "api", 1, "api");
  w.Deploy("west", "cache", 3, "cache");
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  CHECK_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());
  w.Deploy("north", "late", 1);
  CHECK_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());

  // Status: the vector component and workload count as the store has them.
  CHECK_WAITED(Eventually([&] {
                 const Json mc = w.Member("east");
                 const auto s = op->store().Current();
                 return mc["status"].value("vectorComponent", uint64_t{0}) == s.vector().Get("east") &&
                        mc["status"].value("workloadCount", 0) == 2 && mc["status"].contains("lastProbeTime") &&
                        mc["status"].value("observedGeneration", 0) == 1;
               }, kLong),
               w.Member("east").dump());
  // Each cluster's health is in the snapshot too.
  const auto s = op->store().Current();
  const state::Record* h = s.Get("west", ctl::kHealthNamespace, {ctl::kHealthGroup, ctl::kHealthKind, ctl::kHealthName});
  BOOST_REQUIRE(h != nullptr);
  BOOST_CHECK_EQUAL(ctl::ParseHealthRecord(h->object_json())->condition.status, "True");

  // A deleted MemberCluster's subtree is removed: a recorded change.
  const auto before = op->store().Current();
  w.Kubectl("delete membercluster west");
  REQUIRE_WAITED(Eventually([&] { return !op->store().Current().Cluster("west").has_value(); }), w.Log());
  auto d = state::Diff(before, op->store().Current(), state::DiffFilter{.cluster = "west", .ns = std::nullopt});
  BOOST_REQUIRE(d.ok());
  BOOST_CHECK_EQUAL(d->removed(), 2u);  // cache, and the health record
  BOOST_CHECK_EQUAL(d->added(), 0u);
}

BOOST_AUTO_TEST_CASE(new_credentials_in_the_secret_restart_the_cluster_without_churning_the_store) {
  World w;
  w.Deploy("east", "web", 2);
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  BOOST_REQUIRE(Eventually([&] { return Folded(op->store().Current()) == Served(w); }));
  const auto before = op->store().Current();
  // The old token stops working; the Secret gets a kubeconfig with the new one.
  w.emulator->RotateToken("east");
  w.members["east"] = kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*w.emulator, "east"));
  w.Secret("east", w.emulator->Kubeconfig("east"));
  REQUIRE_WAITED(Eventually([&] { return w.Log().find("member cluster east: settings changed; restarting") !=
                                         std::string::npos; }),
                 w.Log());
  w.Deploy("east", "after-restart", 1);  // only a working client sees this
  CHECK_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());
  BOOST_CHECK(Eventually([&] { return Condition(w.Member("east"), "Ready") == "True"; }));
  // The relist after the restart wrote only what differs: the new workload.
  auto d = state::Diff(before, op->store().Current(), state::DiffFilter{.cluster = "east", .ns = "shop"});
  BOOST_REQUIRE(d.ok());
  BOOST_CHECK_EQUAL(d->added(), 1u);
  BOOST_CHECK_EQUAL(d->modified(), 0u);
  BOOST_CHECK_EQUAL(d->removed(), 0u);
  BOOST_CHECK_GT(op->store().Current().vector().Get("east"), before.vector().Get("east"));
}

BOOST_AUTO_TEST_CASE(a_member_watching_listed_namespaces_folds_only_those_and_its_relists_replace_only_them) {
  World w;
  w.CreateNamespace("north", "other");
  w.Deploy("north", "web", 1);
  w.Deploy("north", "gone-later", 1);
  auto other = w.members["north"]->Create(
      "/apis/apps/v1/namespaces/other/deployments",
      Json{{"apiVersion", "apps/v1"},
           {"kind", "Deployment"},
           {"metadata", {{"name", "elsewhere"}, {"namespace", "other"}}},
           {"spec", {{"replicas", 1}, {"selector", {{"matchLabels", {{"app", "x"}}}}},
                     {"template", {{"metadata", {{"labels", {{"app", "x"}}}}},
                                   {"spec", {{"containers", {{{"name", "x"}, {"image", "x"}}}}}}}}}}}
          .dump());
  BOOST_REQUIRE(other.ok());
  w.Apply("apiVersion: kubefold.io/v1alpha1\nkind: MemberCluster\nmetadata:\n  name: north\nspec:\n"
          "  kubeconfigSecretRef:\n    namespace: kubefold-system\n    name: north-kubeconfig\n"
          "  watch:\n    kinds: [Deployment]\n    namespaces: [shop]\n");
  auto op = w.StartOperator();
  auto names = [&] {
    std::set<std::string> out;
    op->store().Current().ForEachWorkload("north", [&](const state::WorkloadRef& r) {
      if (r.ns != ctl::kHealthNamespace) out.insert(std::string(r.ns) + "/" + std::string(r.record->name()));
      return true;
    });
    return out;
  };
  const std::set<std::string> both{"shop/gone-later", "shop/web"};
  REQUIRE_WAITED(Eventually([&] { return names() == both; }), w.Log());
  // Cut off, a delete meanwhile, history compacted: the watch's resume point
  // is gone (410), the relist replaces the namespace and the delete shows.
  w.emulator->server("north").Partition();
  w.emulator->cluster("north").store().Mutate("apps/deployments", "shop", "gone-later",
                                              [](const emu::ObjectPtr&) { return emu::Mutation::Delete(); });
  w.emulator->cluster("north").Compact();
  w.emulator->server("north").Heal();
  CHECK_WAITED(Eventually([&] { return names() == std::set<std::string>{"shop/web"}; }), w.Log());
  BOOST_CHECK_MESSAGE(w.Log().find("north Deployment in shop: watch") != std::string::npos &&
                          w.Log().find("relisting") != std::string::npos,
                      "the change came by a relist: " + w.Log());
}

BOOST_AUTO_TEST_CASE(a_partition_fails_over_once_with_an_exact_audit_and_manual_failback_waits_to_be_asked) {
  World w;
  w.Deploy("east", "web", 2);
  w.Deploy("east", "api", 1, "api");  // not governed
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  w.Apply(PolicyYaml("Manual"));
  REQUIRE_WAITED(Eventually([&] {
                   const Json p = w.Policy("web");
                   return Condition(p, "Ready") == "True" && p["status"].contains("workloads") &&
                          p["status"]["workloads"].size() == 1 &&
                          FirstWorkload(p, "activeCluster") == "east";
                 }),
                 w.Policy("web").dump() + w.Log());
  BOOST_CHECK(w.Audits().empty());

  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Audits().size() == 1; }, kLong), w.Log());
  REQUIRE_WAITED(Eventually([&] { return w.Served("west", "web") != nullptr; }), w.Audits().dump() + w.Log());
  const auto copy = w.Served("west", "web");
  BOOST_CHECK_EQUAL(copy->json["metadata"]["labels"].value(ctl::kCopyLabel, ""), "true");
  BOOST_CHECK_EQUAL(copy->json["metadata"]["labels"].value("tier", ""), "web");
  BOOST_CHECK_EQUAL(copy->json["spec"].value("replicas", 0), 2);
  BOOST_CHECK(!copy->json.contains("status") || !copy->json["status"].contains("availableReplicas"));
  BOOST_CHECK(w.Served("west", "api") == nullptr);
  BOOST_CHECK(w.Served("north", "web") == nullptr);

  Json audit = w.Audits()[0];
  BOOST_CHECK_EQUAL(audit["spec"]["from"], "east");
  BOOST_CHECK_EQUAL(audit["spec"]["to"], "west");
  BOOST_CHECK_EQUAL(audit["spec"]["trigger"]["cluster"], "east");
  BOOST_CHECK_EQUAL(audit["spec"]["trigger"]["reason"], "ClusterUnhealthy");
  BOOST_CHECK_EQUAL(audit["spec"]["workloads"].size(), 1u);
  BOOST_CHECK_EQUAL(audit["spec"]["workloads"][0]["action"], "Applied");
  BOOST_CHECK_EQUAL(copy->json["metadata"]["annotations"].value(ctl::kAuditAnnotation, ""),
                    audit["metadata"]["name"].get<std::string>());
  // The status is a second write (the status subresource ignores it on create).
  BOOST_CHECK(Eventually([&] { return Phase(w.Audits()[0]) == "InProgress"; }));

  // `before` is exactly the snapshot decided from: east unhealthy in it, no copy on west.
  const uint64_t before_seq = audit["spec"]["before"]["seq"];
  auto before = op->store().Get(before_seq);
  BOOST_REQUIRE(before.ok());
  BOOST_CHECK_EQUAL(before->vector().ToJson(), audit["spec"]["before"]["vector"].dump());
  const state::Record* east_health =
      before->Get("east", ctl::kHealthNamespace, {ctl::kHealthGroup, ctl::kHealthKind, ctl::kHealthName});
  BOOST_REQUIRE(east_health != nullptr);
  BOOST_CHECK_NE(ctl::ParseHealthRecord(east_health->object_json())->condition.status, "True");
  BOOST_CHECK(before->Get("west", "shop", {"apps", "Deployment", "web"}) == nullptr);

  // The target reports the workload available: the audit completes with `after`
  // the first snapshot showing that. First it reports 1 of 2 replicas, and a
  // pass deciding from that snapshot is held until the one showing both is
  // published: it then sees a retained snapshot newer than the one it decides
  // from, which must still be found (by the next pass).
  auto west_web = [](const state::Snapshot& s) {
    const state::Record* r = s.Get("west", "shop", {"apps", "Deployment", "web"});
    return r != nullptr ? r->summary().available_replicas : -1;
  };
  BOOST_REQUIRE(Eventually([&] { return west_web(op->store().Current()) == 0; }));
  struct Hold {
    uint64_t armed_at = 0;
    std::atomic<bool> entered{false};
    std::atomic<bool> released_by_publish{false};
  };
  auto hold = std::make_shared<Hold>();  // the hook may outlive this scope
  hold->armed_at = op->store().Current().seq();
  auto hook = std::make_shared<std::function<void()>>();
  *hook = [hold, o = op.get(), &w, west_web, again = std::weak_ptr<std::function<void()>>(hook)] {
    if (o->store().Current().seq() <= hold->armed_at) {
      // This pass decides from a snapshot an earlier one has looked at: wait for the next.
      if (auto h = again.lock()) {
        std::lock_guard lock(w.hook_mu);
        w.next_pass_hook = *h;
      }
      return;
    }
    hold->entered = true;
    hold->released_by_publish =
        kubefold::testing::Eventually([&] { return west_web(o->store().Current()) == 2; }, 30s);
  };
  {
    std::lock_guard lock(w.hook_mu);
    w.next_pass_hook = *hook;
  }
  w.MarkAvailable("west", "web", 1);
  REQUIRE_WAITED(Eventually([&] { return hold->entered.load(); }, 10s), w.Log());
  // The host's watches stall (a slow informer): the passes after the one
  // that completes the audit still read it InProgress from their cache, and
  // must not complete it again (one event, one count, one metric).
  w.emulator->cluster("host").SetStallWatches(true);
  w.MarkAvailable("west", "web");
  REQUIRE_WAITED(Eventually([&] { return Phase(w.Audits()[0]) == "Completed"; }, kLong),
                 w.Audits().dump() + w.Log());
  BOOST_CHECK(hold->released_by_publish.load());
  const uint64_t passes = op->failover().stats().passes;
  CHECK_WAITED(Eventually([&] { return op->failover().stats().passes >= passes + 3; }, 10s), w.Log());
  w.emulator->cluster("host").SetStallWatches(false);
  BOOST_CHECK_EQUAL(op->failover().stats().audits_completed, 1u);
  audit = w.Audits()[0];
  const uint64_t after_seq = audit["spec"]["after"]["seq"];
  auto after = op->store().Get(after_seq);
  BOOST_REQUIRE(after.ok());
  BOOST_CHECK_EQUAL(after->vector().ToJson(), audit["spec"]["after"]["vector"].dump());
  const state::Record* moved = after->Get("west", "shop", {"apps", "Deployment", "web"});
  BOOST_REQUIRE(moved != nullptr);
  BOOST_CHECK_EQUAL(moved->summary().available_replicas, 2);
  // ... and the one before it did not.
  auto prior = op->store().Get(after_seq - 1);
  BOOST_REQUIRE(prior.ok());
  const state::Record* prior_web = prior->Get("west", "shop", {"apps", "Deployment", "web"});
  BOOST_CHECK(prior_web == nullptr || prior_web->summary().available_replicas < 2);
  // The change summary is the diff of the two pinned snapshots.
  auto d = state::Diff(*before, *after);
  BOOST_REQUIRE(d.ok());
  BOOST_CHECK_EQUAL(audit["spec"]["changeSummary"]["added"].get<size_t>(), d->added());
  BOOST_CHECK_EQUAL(audit["spec"]["changeSummary"]["removed"].get<size_t>(), d->removed());
  BOOST_CHECK_EQUAL(audit["spec"]["changeSummary"]["modified"].get<size_t>(), d->modified());
  bool web_appeared_on_west = false;
  for (const auto& c : d->changes()) {
    if (c.type == state::ChangeType::kAdded && c.cluster == "west" && c.after->name() == "web") web_appeared_on_west = true;
    BOOST_CHECK_MESSAGE(c.cluster != "east" || c.ns == ctl::kHealthNamespace, "east's workloads did not change");
  }
  BOOST_CHECK(web_appeared_on_west);
  BOOST_CHECK(Eventually([&] {
    const Json p = w.Policy("web");
    return FirstWorkload(p, "activeCluster") == "west" &&
           FirstWorkload(p, "lastAudit") == audit["metadata"]["name"].get<std::string>();
  }));

  // Flapping east: no ping-pong, no second audit (failback is Manual).
  for (int i = 0; i < 3; ++i) {
    w.emulator->server("east").Heal();
    std::this_thread::sleep_for(1500ms);
    w.emulator->server("east").Partition();
    std::this_thread::sleep_for(1500ms);
  }
  w.emulator->server("east").Heal();
  BOOST_REQUIRE(Eventually([&] { return Condition(w.Member("east"), "Ready") == "True"; }, kLong));
  std::this_thread::sleep_for(4s);  // longer than stableSeconds: Manual still waits
  BOOST_CHECK_MESSAGE(w.Audits().size() == 1u, w.Audits().dump() + w.Log());
  BOOST_CHECK(w.Served("west", "web") != nullptr);
  BOOST_CHECK_EQUAL(op->failover().stats().applied, 1u);

  // Asked to fail back: home has the original (left alone), the copy goes once home is available.
  w.Kubectl("annotate failoverpolicy web -n shop kubefold.io/failback=now");
  REQUIRE_WAITED(Eventually([&] { return w.Audits().size() == 2; }, kLong), w.Log());
  Json back;
  for (const auto& a : w.Audits()) {
    if (a["spec"]["trigger"]["reason"] == "Failback") back = a;
  }
  BOOST_REQUIRE(back.is_object());
  BOOST_CHECK_EQUAL(back["spec"]["from"], "west");
  BOOST_CHECK_EQUAL(back["spec"]["to"], "east");
  BOOST_CHECK_EQUAL(back["spec"]["workloads"][0]["action"], "Unchanged");
  BOOST_CHECK(Eventually([&] { return !w.Policy("web")["metadata"].value("annotations", Json::object()).contains(ctl::kFailbackAnnotation); }));
  CHECK_WAITED(Eventually([&] { return w.Served("west", "web") == nullptr; }, kLong), w.Log());
  BOOST_CHECK(w.Served("east", "web") != nullptr);
  BOOST_CHECK(!w.Served("east", "web")->json["metadata"].value("labels", Json::object()).contains(ctl::kCopyLabel));
  BOOST_CHECK(Eventually([&] { return FirstWorkload(w.Policy("web"), "activeCluster") == "east"; }));
}

BOOST_AUTO_TEST_CASE(automatic_failback_waits_for_a_stable_home) {
  World w;
  w.Deploy("east", "web", 1);
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  w.Apply(PolicyYaml("Automatic"));
  BOOST_REQUIRE(Eventually([&] { return Condition(w.Policy("web"), "Ready") == "True"; }));
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Served("west", "web") != nullptr; }, kLong), w.Log());
  w.MarkAvailable("west", "web");
  const auto healed = std::chrono::steady_clock::now();
  w.emulator->server("east").Heal();
  REQUIRE_WAITED(Eventually([&] { return w.Audits().size() == 2; }, kLong), w.Log());
  // Not before east had been Ready for stableSeconds (3 s).
  BOOST_CHECK_GE(std::chrono::steady_clock::now() - healed, 3s);
  CHECK_WAITED(Eventually([&] { return w.Served("west", "web") == nullptr; }, kLong), w.Log());
}

BOOST_AUTO_TEST_CASE(unavailable_workloads_fail_over_within_the_in_flight_cap) {
  World w;
  for (const char* name : {"web-a", "web-b", "web-c"}) {
    w.Deploy("east", name, 1);
    w.MarkAvailable("east", name);
  }
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  std::string policy = PolicyYaml("Manual");
  policy.replace(policy.find("clusterUnhealthySeconds: 2"), 26,
                 "clusterUnhealthySeconds: 3600\n    workloadUnavailableSeconds: 2");
  policy += "  maxInFlight: 2\n";
  w.Apply(policy);
  BOOST_REQUIRE(Eventually([&] { return w.Policy("web")["status"].value("workloads", Json::array()).size() == 3; }));
  BOOST_CHECK(w.Audits().empty());
  // Every replica gone on a healthy cluster: after 2 s, two of the three move
  // (the cap), the third waits. The three are folded one by one, so the two
  // may cross their 2 s in one pass (one audit) or in two (two audits).
  for (const char* name : {"web-a", "web-b", "web-c"}) w.MarkUnavailable("east", name);
  auto moved = [&] {
    std::set<std::string> names;
    for (const auto& a : w.Audits()) {
      for (const auto& wl : a["spec"]["workloads"]) names.insert(wl["name"].get<std::string>());
    }
    return names;
  };
  REQUIRE_WAITED(Eventually([&] { return moved().size() == 2; }), w.Log());
  const Json first = w.Audits();
  for (const auto& a : first) {
    BOOST_CHECK_EQUAL(a["spec"]["trigger"]["reason"], "WorkloadUnavailable");
    BOOST_CHECK_EQUAL(a["spec"]["to"], "west");
  }
  CHECK_WAITED(Eventually([&] { return Condition(w.Policy("web"), "Degraded", "reason") == "Throttled"; }),
               w.Policy("web").dump());
  std::this_thread::sleep_for(2s);
  BOOST_CHECK_EQUAL(moved().size(), 2u);  // still capped
  const std::set<std::string> first_moved = moved();
  for (const auto& name : first_moved) w.MarkAvailable("west", name);
  REQUIRE_WAITED(Eventually([&] { return moved().size() == 3; }), w.Log());
  for (const auto& a : w.Audits()) {
    if (std::any_of(first.begin(), first.end(), [&](const Json& f) { return f["metadata"]["name"] == a["metadata"]["name"]; })) {
      continue;
    }
    BOOST_CHECK_EQUAL(a["spec"]["workloads"].size(), 1u);
    BOOST_CHECK_EQUAL(a["spec"]["to"], "west");
  }
  std::string third;
  for (const char* name : {"web-a", "web-b", "web-c"}) {
    if (!first_moved.contains(name)) third = name;
  }
  BOOST_CHECK(Eventually([&] { return w.Served("west", third) != nullptr; }));
}

BOOST_AUTO_TEST_CASE(the_next_cluster_in_order_is_used_and_with_none_left_nothing_is_done) {
  World w;
  w.Deploy("east", "web", 1);
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  w.Apply(PolicyYaml("Manual"));
  BOOST_REQUIRE(Eventually([&] { return Condition(w.Policy("web"), "Ready") == "True"; }));
  w.emulator->server("west").Partition();
  BOOST_REQUIRE(Eventually([&] { return Condition(w.Member("west"), "Ready") == "False"; }, kLong));
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Served("north", "web") != nullptr; }, kLong), w.Log());
  BOOST_CHECK(w.Served("west", "web") == nullptr);
  BOOST_REQUIRE(Eventually([&] { return w.Audits().size() == 1; }));  // written right after the apply
  BOOST_CHECK_EQUAL(w.Audits()[0]["spec"]["to"], "north");

  // north fails too before the copy was available there: that failover
  // fails, and with nowhere left there is a condition and an Event, no action.
  w.emulator->server("north").Partition();
  CHECK_WAITED(Eventually([&] { return Phase(w.Audits()[0]) == "Failed"; }, kLong),
               w.Audits().dump());
  BOOST_CHECK_EQUAL(Condition(w.Audits()[0], "Completed", "reason"), "TargetUnhealthy");
  REQUIRE_WAITED(Eventually([&] { return Condition(w.Policy("web"), "Degraded") == "True"; }, kLong),
                 w.Policy("web").dump() + w.Log());
  BOOST_CHECK_EQUAL(Condition(w.Policy("web"), "Degraded", "reason"), "NoHealthyCluster");
  BOOST_CHECK(Eventually([&] {
    const Json events = w.HostGet("/api/v1/namespaces/shop/events");
    for (const auto& e : events.value("items", Json::array())) {
      if (e.value("reason", "") == "NoHealthyCluster") return true;
    }
    return false;
  }));
  BOOST_CHECK_EQUAL(w.Audits().size(), 1u);
}

BOOST_AUTO_TEST_CASE(bad_secrets_unknown_clusters_and_overlapping_policies_are_reported) {
  World w;
  w.Deploy("east", "web", 1);
  RegisterAll(w);
  // Broken registrations beside the good ones.
  w.Register("ghost", "no-such-secret");
  w.Apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: nokey\n  namespace: kubefold-system\ndata:\n  other: eA==\n");
  w.Register("nokey", "nokey");
  w.Secret("garbage", "clusters: [this is not: a kubeconfig");
  w.Register("garbage", "garbage-kubeconfig");
  w.Secret("filey", "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\n"
                    "    certificate-authority: /etc/ssl/certs/ca-certificates.crt\nusers:\n- name: u\n  user:\n"
                    "    token: t\ncontexts:\n- name: x\n  context:\n    cluster: c\n    user: u\ncurrent-context: x\n");
  w.Register("filey", "filey-kubeconfig");
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  auto expect = [&](const std::string& name, const std::string& reason, const std::string& words) {
    CHECK_WAITED(Eventually([&] {
                   const Json mc = w.Member(name);
                   return Condition(mc, "Watching") == "False" && Condition(mc, "Watching", "reason") == reason &&
                          Condition(mc, "Watching", "message").find(words) != std::string::npos;
                 }),
                 name + ": " + w.Member(name).dump());
  };
  expect("ghost", "SecretNotFound", "spec.kubeconfigSecretRef: Secret kubefold-system/no-such-secret does not exist");
  expect("nokey", "SecretKeyMissing", "has no key \"kubeconfig\" (it has: other)");
  expect("garbage", "KubeconfigInvalid", "garbage-kubeconfig");
  expect("filey", "KubeconfigInvalid", "certificate-authority (a file) is not allowed");
  BOOST_CHECK(Eventually([&] {
    const Json events = w.HostGet("/api/v1/namespaces/default/events");
    for (const auto& e : events.value("items", Json::array())) {
      if (e.value("reason", "") == "SecretNotFound" && e["involvedObject"].value("name", "") == "ghost") return true;
    }
    return false;
  }));
  // The good clusters are undisturbed.
  BOOST_CHECK(AllReady(w));
  BOOST_CHECK(Eventually([&] { return Folded(op->store().Current()) == Served(w); }));
  // Fixing the Secret brings the cluster up.
  w.Apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: nokey\n  namespace: kubefold-system\ndata:\n  kubeconfig: " +
          kube::internal::Base64Encode(w.emulator->Kubeconfig("north")) + "\n");
  CHECK_WAITED(Eventually([&] { return Condition(w.Member("nokey"), "Ready") == "True"; }, kLong),
               w.Member("nokey").dump());

  // A policy naming an unknown cluster; a second policy over the same workload.
  std::string unknown = PolicyYaml();
  unknown.replace(unknown.find("[east, west, north]"), 19, "[east, nowhere]");
  w.Apply(unknown);
  CHECK_WAITED(Eventually([&] {
                 const Json p = w.Policy("web");
                 return Condition(p, "Ready") == "False" && Condition(p, "Ready", "reason") == "UnknownCluster" &&
                        Condition(p, "Ready", "message").find("spec.clusters[1]: no MemberCluster named \"nowhere\"") !=
                            std::string::npos;
               }),
               w.Policy("web").dump());
  std::this_thread::sleep_for(1100ms);  // a younger creationTimestamp
  std::string second = PolicyYaml();
  second.replace(second.find("name: web"), 9, "name: web-too");
  w.Apply(second);
  CHECK_WAITED(Eventually([&] {
                 const Json p = w.Policy("web-too");
                 return Condition(p, "Conflict") == "True" &&
                        Condition(p, "Conflict", "message").find("older policy web") != std::string::npos;
               }),
               w.Policy("web-too").dump());
  BOOST_CHECK(Eventually([&] { return Condition(w.Policy("web"), "Conflict") == "False"; }));
}

BOOST_AUTO_TEST_CASE(a_new_leader_completes_the_audit_of_a_failover_in_progress_without_repeating_it) {
  World w;
  w.Deploy("east", "web", 1);
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  // Two kubefold processes on one Lease.
  // posix_spawn, not fork: this process runs many threads (the emulator's),
  // and a forked child may not allocate before it execs.
  auto spawn = [&](const std::string& id) {
    const std::string log = w.dir + "/" + id + ".log";
    const std::string kubeconfig = w.dir + "/host.kubeconfig";
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    std::vector<std::string> args{KUBEFOLD_BINARY, "--kubeconfig", kubeconfig, "--identity", id, "--namespace",
                                  "kubefold-system", "--leader-elect-lease-duration", "3s",
                                  "--leader-elect-renew-deadline", "2s", "--leader-elect-retry-period", "500ms",
                                  "--resync", "1s", "--status-period", "500ms", "--api-bind-address", "0",
                                  "--metrics-bind-address", "0", "--health-probe-bind-address", "0"};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = -1;
    const int rc = ::posix_spawn(&pid, KUBEFOLD_BINARY, &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    BOOST_REQUIRE_MESSAGE(rc == 0, "posix_spawn " KUBEFOLD_BINARY ": " + std::string(std::strerror(rc)));
    return pid;
  };
  auto process_log = [&](const std::string& id) {
    std::ifstream in(w.dir + "/" + id + ".log");
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  const pid_t a = spawn("op-a");
  const pid_t b = spawn("op-b");
  auto holder = [&] {
    const Json lease = w.HostGet("/apis/coordination.k8s.io/v1/namespaces/kubefold-system/leases/kubefold");
    return lease.is_object() ? lease["spec"].value("holderIdentity", "") : std::string();
  };
  BOOST_REQUIRE(Eventually([&] { return !holder().empty(); }, kLong));
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), process_log("op-a") + process_log("op-b"));
  w.Apply(PolicyYaml("Manual"));
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Audits().size() == 1; }, kLong), process_log("op-a") + process_log("op-b"));
  BOOST_CHECK(Eventually([&] { return Phase(w.Audits()[0]) == "InProgress"; }));
  const auto copy = w.Served("west", "web");
  BOOST_REQUIRE(copy != nullptr);
  const std::string uid = copy->json["metadata"]["uid"];

  // The leader is stopped mid-failover; it releases the Lease on the way out.
  const std::string first = holder();
  const pid_t leader = first == "op-a" ? a : b;
  const pid_t standby = leader == a ? b : a;
  const std::string second = leader == a ? "op-b" : "op-a";
  ::kill(leader, SIGTERM);
  int status = 0;
  BOOST_REQUIRE(::waitpid(leader, &status, 0) == leader);
  BOOST_CHECK_MESSAGE(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                      "the stopped leader exited with status " + std::to_string(status) + ":\n" + process_log(first));
  CHECK_WAITED(Eventually([&] { return holder() == second; }, kLong), holder());

  w.MarkAvailable("west", "web");
  CHECK_WAITED(Eventually([&] { return Phase(w.Audits()[0]) == "Completed"; }, kLong),
               w.Audits().dump() + process_log(second));
  // One audit, one copy, never re-applied by the new leader.
  BOOST_CHECK_EQUAL(w.Audits().size(), 1u);
  const auto now_copy = w.Served("west", "web");
  BOOST_REQUIRE(now_copy != nullptr);
  BOOST_CHECK_EQUAL(now_copy->json["metadata"]["uid"].get<std::string>(), uid);
  BOOST_CHECK_EQUAL(now_copy->json["metadata"]["annotations"].value(ctl::kAuditAnnotation, ""),
                    w.Audits()[0]["metadata"]["name"].get<std::string>());
  BOOST_CHECK(w.Served("north", "web") == nullptr);
  BOOST_CHECK_MESSAGE(process_log(second).find("ClusterUnhealthy") == std::string::npos, process_log(second));

  ::kill(standby, SIGTERM);
  BOOST_REQUIRE(::waitpid(standby, &status, 0) == standby);
  BOOST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  CHECK_WAITED(Eventually([&] { return holder().empty(); }, kLong), "the Lease is released on SIGTERM");
}

BOOST_AUTO_TEST_CASE(a_failover_whose_apply_is_refused_keeps_the_workload_where_it_was_and_is_tried_again) {
  World w;
  w.Deploy("east", "web", 1);
  w.MarkAvailable("east", "web");
  // west is registered with a user that may read everything (so kubefold
  // folds and probes it) but write nothing: every apply there gets 403.
  w.emulator->AddUser("west", emu::UserInfo{"reader", "", {}}, "reader-token");
  auto created = w.members["west"]->Create(
      "/apis/rbac.authorization.k8s.io/v1/clusterroles",
      Json{{"apiVersion", "rbac.authorization.k8s.io/v1"},
           {"kind", "ClusterRole"},
           {"metadata", {{"name", "reader"}}},
           {"rules", {{{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"get", "list", "watch"}}}}}}
          .dump());
  BOOST_REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  const Json binding = {{"apiVersion", "rbac.authorization.k8s.io/v1"},
                        {"kind", "ClusterRoleBinding"},
                        {"metadata", {{"name", "reader"}}},
                        {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", "reader"}}},
                        {"subjects", {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "reader"}}}}};
  created = w.members["west"]->Create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", binding.dump());
  BOOST_REQUIRE_MESSAGE(created.ok(), created.status().ToString());
  std::ifstream reader_file(w.dir + "/west-reader.kubeconfig");
  const std::string reader_kubeconfig((std::istreambuf_iterator<char>(reader_file)), std::istreambuf_iterator<char>());
  BOOST_REQUIRE(!reader_kubeconfig.empty());
  w.Secret("west", reader_kubeconfig);
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  w.Apply(PolicyYaml("Manual"));
  BOOST_REQUIRE(Eventually([&] { return Condition(w.Policy("web"), "Ready") == "True"; }));

  const auto partitioned_at = std::chrono::steady_clock::now();
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return !w.Audits().empty(); }, kLong), w.Log());
  const Json first = w.Audits()[0];
  BOOST_CHECK_EQUAL(first["spec"]["to"], "west");
  BOOST_CHECK_EQUAL(first["spec"]["workloads"][0]["action"], "Failed");
  BOOST_CHECK_MESSAGE(first["spec"]["workloads"][0].value("message", "").find("forbidden") != std::string::npos,
                      first.dump());
  BOOST_CHECK(Eventually([&] { return Phase(w.Audits()[0]) == "Failed"; }));
  BOOST_CHECK(w.Served("west", "web") == nullptr);
  // The workload has not moved: the policy still names east, and it is
  // tried again, with backoff (1 s, 2 s, 4 s ... after the first try), not
  // on every event.
  CHECK_WAITED(Eventually([&] { return w.Audits().size() >= 2; }, kLong),
               "no second try: " + w.Audits().dump() + "\n" + w.Log());
  std::this_thread::sleep_for(3s);
  const Json policy = w.Policy("web");
  BOOST_REQUIRE_EQUAL(policy["status"]["workloads"].size(), 1u);
  BOOST_CHECK_EQUAL(policy["status"]["workloads"][0]["activeCluster"], "east");
  const size_t tries = w.Audits().size();
  // Tries by E seconds after the first: 1 + floor(log2(E + 1)); E is at
  // most the time since the partition. One more for a pass in flight.
  const double since = std::chrono::duration<double>(std::chrono::steady_clock::now() - partitioned_at).count();
  const size_t most = 2 + static_cast<size_t>(std::floor(std::log2(since + 1)));
  BOOST_CHECK_MESSAGE(tries <= most, std::to_string(tries) + " audits " + std::to_string(since) +
                                         " s after the partition (at most " + std::to_string(most) + " with backoff)\n" +
                                         w.Audits().dump() + "\n" + w.Log());
  for (const auto& a : w.Audits()) BOOST_CHECK_EQUAL(Phase(a), "Failed");

  // Writes allowed on west: the next try moves web, and its audit completes.
  auto granted = w.members["west"]->Create(
      "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
      Json{{"apiVersion", "rbac.authorization.k8s.io/v1"},
           {"kind", "ClusterRoleBinding"},
           {"metadata", {{"name", "reader-admin"}}},
           {"roleRef", {{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "ClusterRole"}, {"name", "cluster-admin"}}},
           {"subjects", {{{"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "User"}, {"name", "reader"}}}}}
          .dump());
  BOOST_REQUIRE_MESSAGE(granted.ok(), granted.status().ToString());
  REQUIRE_WAITED(Eventually([&] { return w.Served("west", "web") != nullptr; }, kLong), w.Log());
  w.MarkAvailable("west", "web");
  CHECK_WAITED(Eventually([&] {
                 for (const auto& a : w.Audits()) {
                   if (Phase(a) == "Completed") return true;
                 }
                 return false;
               }, kLong),
               w.Audits().dump());
  BOOST_CHECK(Eventually([&] { return w.Policy("web")["status"]["workloads"][0]["activeCluster"] == "west"; }));
}

BOOST_AUTO_TEST_CASE(a_member_whose_kubeconfig_skips_tls_verification_says_so_in_its_status) {
  World w;
  // north's kubeconfig without its CA, verification off: only the kubeconfig
  // can do that, and the MemberCluster reports it (condition and Event).
  std::string kubeconfig = w.emulator->Kubeconfig("north");
  const size_t ca = kubeconfig.find("    certificate-authority-data: ");
  BOOST_REQUIRE(ca != std::string::npos);
  kubeconfig.replace(ca, kubeconfig.find('\n', ca) - ca, "    insecure-skip-tls-verify: true");
  w.Secret("north", kubeconfig);
  RegisterAll(w);
  auto op = w.StartOperator();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, kLong), w.Log());
  BOOST_CHECK(Eventually([&] { return Condition(w.Member("north"), "TLSVerified", "reason") == "InsecureSkipTLSVerify"; }));
  BOOST_CHECK_EQUAL(Condition(w.Member("north"), "TLSVerified"), "False");
  BOOST_CHECK(Condition(w.Member("north"), "TLSVerified", "message").find("is not checked") != std::string::npos);
  BOOST_CHECK_EQUAL(Condition(w.Member("east"), "TLSVerified"), "True");
  BOOST_CHECK_EQUAL(Condition(w.Member("west"), "TLSVerified", "reason"), "Verified");
  BOOST_CHECK(Eventually([&] {
    const Json events = w.HostGet("/api/v1/namespaces/default/events");
    for (const auto& e : events.value("items", Json::array())) {
      if (e.value("reason", "") == "InsecureSkipTLSVerify" && e["involvedObject"].value("name", "") == "north") return true;
    }
    return false;
  }));
}
