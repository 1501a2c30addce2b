// The operator's integration-test world: kube-emulator with a host and
// three member clusters (east, west, north), kubefold's CRDs applied with
// real kubectl, a Secret per member, and helpers to deploy workloads, play a
// Deployment controller, and read what kubefold wrote. Shared by the
// operator, query API and plugin tests (each its own executable).
#pragma once

#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
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
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/health.h"
#include "controllers/kube/http_transport.h"
#include "controllers/kube/internal/base64.h"
#include "operator/operator.h"
#include "state/diff.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"

namespace optest {

using namespace std::chrono_literals;
using Json = nlohmann::json;
namespace emu = kubefold::emulator;
namespace state = kubefold::state;
namespace kube = kubefold::kube;
namespace ctl = kubefold::controllers;

inline const std::vector<std::string> kMembers{"east", "west", "north"};

struct Run {
  int code;
  std::string out;
};

inline Run Shell(const std::string& command) {
  Run r{0, {}};
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  BOOST_REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// A request to kubefold's own endpoints (plain HTTP on 127.0.0.1).
struct Reply {
  int code = 0;
  std::string body;
  kube::Headers headers;
  Json json() const { return Json::parse(body, nullptr, false); }
};

inline Reply Call(int port, const std::string& path_and_query, const std::string& method = "GET",
                  const kube::Headers& headers = {}) {
  kube::RestConfig c;
  c.server = "http://127.0.0.1:" + std::to_string(port);
  auto t = kube::NewHttpTransport(c, {.warn = [](std::string_view) {}});
  BOOST_REQUIRE(t.ok());
  kube::HttpRequest r;
  r.method = method;
  r.path_and_query = path_and_query;
  r.headers = headers;
  auto resp = (*t)->Send(r);
  BOOST_REQUIRE_MESSAGE(resp.ok(), path_and_query + ": " + resp.status().ToString());
  return Reply{resp->status, resp->body, resp->headers};
}

// An emulator with a host and three members, kubefold's CRDs on the host.
struct World {
  std::string dir;
  std::unique_ptr<emu::Emulator> emulator;
  std::unique_ptr<kube::RestClient> host;
  std::map<std::string, std::unique_ptr<kube::RestClient>> members;
  std::mutex log_mu;
  std::string log;
  // Run once by the next failover pass, right after it has taken the
  // snapshot it decides from (the reconciler reads its clock there): a test
  // holds a pass at that point with it. Guarded by hook_mu.
  std::mutex hook_mu;
  std::function<void()> next_pass_hook;

  std::vector<std::string> names;  // the member clusters

  explicit World(std::vector<std::string> member_names = kMembers) : names(std::move(member_names)) {
    char tmpl[] = "/tmp/kubefold-operator-test-XXXXXX";
    BOOST_REQUIRE(::mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    emu::EmulatorOptions o;
    o.clusters = {"host"};
    o.clusters.insert(o.clusters.end(), names.begin(), names.end());
    o.dir = dir;
    emulator = std::make_unique<emu::Emulator>(o);
    host = kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*emulator, "host"));
    for (const auto& m : names) {
      members[m] = kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*emulator, m));
    }
    Kubectl("apply --validate=false -f " KUBEFOLD_SOURCE_DIR "/crds/");
    Kubectl("wait --for condition=established --timeout=20s crd/memberclusters.kubefold.io "
            "crd/failoverpolicies.kubefold.io crd/failoveraudits.kubefold.io");
    Apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: kubefold-system\n");
    Apply("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n");
    for (const auto& m : names) {
      CreateNamespace(m, "shop");
      Secret(m, emulator->Kubeconfig(m));
    }
  }
  ~World() {
    emulator.reset();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }

  std::string Kubectl(const std::string& args, bool must_succeed = true) {
    const Run r = Shell("kubectl --kubeconfig " + dir + "/host.kubeconfig " + args);
    if (must_succeed) BOOST_REQUIRE_MESSAGE(r.code == 0, "kubectl " + args + ": " + r.out);
    return r.out;
  }
  std::string Apply(const std::string& yaml) {
    const std::string path = dir + "/apply.yaml";
    std::ofstream(path) << yaml;
    return Kubectl("apply --validate=false -f " + path);
  }
  void Secret(const std::string& cluster, const std::string& kubeconfig, const std::string& key = "kubeconfig") {
    Apply("apiVersion: v1\nkind: Secret\nmetadata:\n  name: " + cluster + "-kubeconfig\n  namespace: kubefold-system\n"
          "data:\n  " + key + ": " + kube::internal::Base64Encode(kubeconfig) + "\n");
  }
  void Register(const std::string& cluster, const std::string& secret = "") {
    Apply("apiVersion: kubefold.io/v1alpha1\nkind: MemberCluster\nmetadata:\n  name: " + cluster +
          "\nspec:\n  kubeconfigSecretRef:\n    namespace: kubefold-system\n    name: " +
          (secret.empty() ? cluster + "-kubeconfig" : secret) +
          "\n  health:\n    periodSeconds: 1\n    timeoutSeconds: 10\n    failureThreshold: 2\n"
          "    gracePeriodSeconds: 3\n");
  }
  void CreateNamespace(const std::string& cluster, const std::string& ns) {
    auto r = members[cluster]->Create("/api/v1/namespaces",
                                      Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", ns}}}}.dump());
    BOOST_REQUIRE_MESSAGE(r.ok() || r.status().code() == kubefold::StatusCode::kAlreadyExists, r.status().ToString());
  }
  void Deploy(const std::string& cluster, const std::string& name, int replicas, const std::string& tier = "web") {
    Json d = {{"apiVersion", "apps/v1"},
              {"kind", "Deployment"},
              {"metadata", {{"name", name}, {"namespace", "shop"}, {"labels", {{"tier", tier}}}}},
              {"spec",
               {{"replicas", replicas},
                {"selector", {{"matchLabels", {{"app", name}}}}},
                {"template",
                 {{"metadata", {{"labels", {{"app", name}}}}},
                  {"spec", {{"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}}}}}};
    auto r = members[cluster]->Create("/apis/apps/v1/namespaces/shop/deployments", d.dump());
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }
  // What a Deployment controller would do: report the rollout done.
  // (`available` of them when given, else all.)
  void MarkAvailable(const std::string& cluster, const std::string& name, int available = -1) {
    emulator->cluster(cluster).store().Mutate("apps/deployments", "shop", name, [available](const emu::ObjectPtr& cur) {
      if (!cur) return emu::Mutation::None();
      emu::Json next = cur->json;
      const auto replicas = next["spec"].value("replicas", 1);
      const auto ready = available >= 0 ? available : replicas;
      next["status"] = {{"observedGeneration", next["metadata"].value("generation", 1)},
                        {"replicas", replicas},
                        {"readyReplicas", ready},
                        {"availableReplicas", ready}};
      return emu::Mutation::Put(next);
    });
  }
  // ... and that it lost every replica.
  void MarkUnavailable(const std::string& cluster, const std::string& name) {
    emulator->cluster(cluster).store().Mutate("apps/deployments", "shop", name, [](const emu::ObjectPtr& cur) {
      if (!cur) return emu::Mutation::None();
      emu::Json next = cur->json;
      next["status"] = {{"observedGeneration", next["metadata"].value("generation", 1)},
                        {"replicas", next["spec"].value("replicas", 1)},
                        {"unavailableReplicas", next["spec"].value("replicas", 1)}};
      return emu::Mutation::Put(next);
    });
  }
  emu::ObjectPtr Served(const std::string& cluster, const std::string& name) {
    return emulator->cluster(cluster).store().Get("apps/deployments", "shop", name);
  }
  Json HostGet(const std::string& path) {
    auto r = host->Get(path);
    if (!r.ok()) return Json();
    return Json::parse(*r);
  }
  Json Audits() {
    Json list = HostGet("/apis/kubefold.io/v1alpha1/namespaces/shop/failoveraudits");
    return list.is_object() ? list["items"] : Json::array();
  }
  // The policy, with `status` always an object (empty until first written).
  Json Policy(const std::string& name) {
    Json p = HostGet("/apis/kubefold.io/v1alpha1/namespaces/shop/failoverpolicies/" + name);
    if (!p.is_object()) p = Json::object();
    if (!p.contains("status") || !p["status"].is_object()) p["status"] = Json::object();
    if (!p.contains("metadata") || !p["metadata"].is_object()) p["metadata"] = Json::object();
    return p;
  }
  Json Member(const std::string& name) { return HostGet("/apis/kubefold.io/v1alpha1/memberclusters/" + name); }
  std::string Log() {
    std::lock_guard lock(log_mu);
    return log.size() > 6000 ? log.substr(log.size() - 6000) : log;
  }

  kubefold::OperatorOptions Options(const std::string& identity) {
    kubefold::OperatorOptions o;
    o.identity = identity;
    o.leader.lease_duration = 3s;
    o.leader.renew_deadline = 2s;
    o.leader.retry_period = 500ms;
    o.registry.status_period = 500ms;
    o.registry.watch_inactivity = 10s;
    o.failover.resync = 1s;
    o.failover.audit_deadline = 60s;
    o.failover.clock = [this] {
      std::function<void()> hook;
      {
        std::lock_guard lock(hook_mu);
        hook = std::exchange(next_pass_hook, nullptr);
      }
      if (hook) hook();
      return std::chrono::system_clock::now();
    };
    o.log = [this, identity](std::string_view m) {
      std::lock_guard lock(log_mu);
      log += identity + ": " + std::string(m) + "\n";
    };
    return o;
  }
  std::unique_ptr<kubefold::Operator> StartOperator(const std::string& identity = "op-1") {
    auto op = std::make_unique<kubefold::Operator>(
        kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*emulator, "host")), Options(identity));
    BOOST_REQUIRE(op->Start().ok());
    return op;
  }
};

// An operator with `o` against the world's host, started.
inline std::unique_ptr<kubefold::Operator> Start(World& w, kubefold::OperatorOptions o) {
  auto op = std::make_unique<kubefold::Operator>(
      kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*w.emulator, "host")), std::move(o));
  const kubefold::Status s = op->Start();
  BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  return op;
}

// Under ThreadSanitizer everything runs several times slower: waits are
// generous (they end as soon as the condition holds).
inline constexpr auto kLong = 90s;

inline bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = kLong) {
  return kubefold::testing::Eventually(pred, limit);
}

// status.workloads[0].<field> of a policy, "" while there is none.
inline std::string FirstWorkload(const Json& policy, const std::string& field) {
  if (!policy.is_object() || !policy.contains("status") || !policy["status"].is_object()) return "";
  const Json ws = policy["status"].value("workloads", Json::array());
  return ws.is_array() && !ws.empty() && ws[0].is_object() ? ws[0].value(field, "") : "";
}

inline std::string Phase(const Json& audit) {
  return audit.is_object() && audit.contains("status") && audit["status"].is_object()
             ? audit["status"].value("phase", "")
             : "";
}

inline std::string Condition(const Json& obj, const std::string& type, const std::string& field = "status") {
  if (!obj.is_object() || !obj.contains("status")) return "";
  for (const auto& c : obj["status"].value("conditions", Json::array())) {
    if (c.value("type", "") == type) return c.value(field, "");
  }
  return "";
}

using View = std::map<std::tuple<std::string, std::string, std::string>, int>;

inline View Served(World& w) {
  View v;
  for (const auto& m : w.names) {
    const auto list = w.emulator->cluster(m).store().List("apps/deployments", std::nullopt);
    for (const auto& o : list->objects) {
      v[{m, o->ns, o->name}] = o->json["spec"]["replicas"].get<int>();
    }
  }
  return v;
}

inline View Folded(const state::Snapshot& s) {
  View v;
  s.ForEachWorkload([&](const state::WorkloadRef& r) {
    if (r.ns != ctl::kHealthNamespace) {
      v[{std::string(r.cluster), std::string(r.ns), std::string(r.record->name())}] = r.record->summary().desired_replicas;
    }
    return true;
  });
  return v;
}

inline const char* kPolicy = R"(apiVersion: kubefold.io/v1alpha1
kind: FailoverPolicy
metadata:
  name: web
  namespace: shop
spec:
  selector:
    kinds: [Deployment]
    labelSelector: tier=web
  clusters: [east, west, north]
  trigger:
    clusterUnhealthySeconds: 2
  failback:
    mode: MODE
    stableSeconds: 3
)";

inline std::string PolicyYaml(const std::string& mode = "Manual") {
  std::string y = kPolicy;
  y.replace(y.find("MODE"), 4, mode);
  return y;
}

inline void RegisterAll(World& w) {
  for (const auto& m : w.names) w.Register(m);
}

inline bool AllReady(World& w) {
  for (const auto& m : w.names) {
    const Json mc = w.Member(m);
    if (Condition(mc, "Ready") != "True" || Condition(mc, "Synced") != "True") return false;
  }
  return true;
}

}  // namespace optest
