// Chaos soak: five member clusters, two kubefold replicas with leader
// election and durable history, a steady stream of workload changes, and
// faults injected at random — partitions, dropped and stalled watches,
// compactions (410 storms), 429 and 5xx bursts, slow and split streams,
// token rotation with Secret changes, replica restarts and leader handoffs.
//
// Checked all along: no replica's vector ever goes backwards (restarts
// included: the history continues it), and the process stays under a
// memory bound. Checked once faults stop: every replica's map equals what
// every member serves; every audit ends Completed, or Failed with a reason;
// every audit names its trigger; per workload, completed failovers chain
// (each moves from where the previous one left it: none is duplicated).
//
// Bounded and loopback only. KUBEFOLD_SOAK_SECONDS sets how long faults are
// injected (default 20: the CI run); scripts/soak.sh runs it for longer and
// prints the figures (events folded, faults, relists, failovers, memory).
#define BOOST_TEST_MODULE soak_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <random>

#include "tests/operator/world.h"

using namespace optest;

namespace {

const std::vector<std::string> kFive{"m1", "m2", "m3", "m4", "m5"};

// The bound on the whole process's resident memory (kube-emulator and both
// replicas: 80 MiB measured in a plain 20 s run). The sanitizers' shadow
// memory and quarantine multiply it (1.1 GiB measured under TSan).
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr double kMemoryBoundMiB = 6144;
#else
constexpr double kMemoryBoundMiB = 2048;
#endif

int SoakSeconds() {
  const char* s = std::getenv("KUBEFOLD_SOAK_SECONDS");
  return s && std::atoi(s) > 0 ? std::atoi(s) : 20;
}

// Resident and peak resident memory of this process (kube-emulator and both
// replicas), in MiB.
std::pair<double, double> MemoryMiB() {
  std::ifstream in("/proc/self/status");
  std::string line;
  double rss = 0, hwm = 0;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) rss = std::atof(line.c_str() + 6) / 1024;
    if (line.rfind("VmHWM:", 0) == 0) hwm = std::atof(line.c_str() + 6) / 1024;
  }
  return {rss, hwm};
}

emu::Json NewDeployment(const std::string& name, const std::string& tier, int replicas) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "Deployment"},
          {"metadata", {{"name", name}, {"namespace", "shop"}, {"labels", {{"tier", tier}}}, {"generation", 1}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", {{"app", name}}}}},
            {"template",
             {{"metadata", {{"labels", {{"app", name}}}}},
              {"spec", {{"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}}}}}};
}

// The member's Deployment controller: the object at `replicas`, all available.
void Put(World& w, const std::string& cluster, const std::string& name, const std::string& tier, int replicas) {
  w.emulator->cluster(cluster).store().Mutate("apps/deployments", "shop", name, [&](const emu::ObjectPtr& cur) {
    emu::Json next = cur ? cur->json : NewDeployment(name, tier, replicas);
    next["spec"]["replicas"] = replicas;
    next["status"] = {{"observedGeneration", next["metadata"].value("generation", 1)},
                      {"replicas", replicas},
                      {"readyReplicas", replicas},
                      {"availableReplicas", replicas}};
    return emu::Mutation::Put(next);
  });
}

void MarkAllAvailable(World& w) {
  for (const auto& m : w.names) {
    const auto list = w.emulator->cluster(m).store().List("apps/deployments", std::nullopt);
    for (const auto& o : list->objects) {
      const int want = o->json["spec"].value("replicas", 1);
      if (o->json.contains("status") && o->json["status"].value("availableReplicas", -1) == want) continue;
      w.MarkAvailable(m, o->name);
    }
  }
}

double Sum(kubefold::Operator& op, const std::string& family) {
  double total = 0;
  std::string text;
  (void)op.telemetry().registry().WriteTo([&](std::string_view chunk) { text.append(chunk); });
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(family, 0) == 0 && (line[family.size()] == '{' || line[family.size()] == ' ')) {
      total += std::atof(line.c_str() + line.rfind(' ') + 1);
    }
  }
  return total;
}

struct Replica {
  std::string id;
  std::unique_ptr<kubefold::Operator> op;
  state::VersionVector last;  // the newest vector seen from this replica's history
};

struct Figures {
  std::map<std::string, int> faults;
  double events = 0, relists = 0;
  int restarts = 0, handoffs = 0, vector_checks = 0;
  // Resident memory (MiB) and the workloads the members serve, at every
  // tenth of the fault phase: growth that follows the workload count is the
  // data; growth without it would be a leak.
  std::vector<std::pair<double, size_t>> memory_trend;
};

BOOST_AUTO_TEST_CASE(five_members_faults_restarts_and_handoffs_keep_every_invariant) {
  World w(kFive);
  const char* seed_env = std::getenv("KUBEFOLD_SOAK_SEED");
  const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10))
                                 : static_cast<unsigned>(std::time(nullptr));
  std::mt19937 rng(seed);
  BOOST_TEST_MESSAGE("soak seed (KUBEFOLD_SOAK_SEED): " << seed);
  // Each member holds a few workloads of its own: tier web (the policy's)
  // and batch.
  std::vector<std::pair<std::string, std::string>> owned;  // (cluster, name)
  for (const auto& m : w.names) {
    for (int i = 0; i < 4; ++i) {
      const std::string name = m + "-app-" + std::to_string(i);
      Put(w, m, name, i % 2 ? "web" : "batch", 1 + i % 3);
      owned.emplace_back(m, name);
    }
  }
  RegisterAll(w);
  // The shared policy, over the five members.
  std::string policy = PolicyYaml("Manual");
  policy.replace(policy.find("[east, west, north]"), std::string("[east, west, north]").size(), "[m1, m2, m3, m4, m5]");
  w.Apply(policy);

  auto options = [&](const std::string& id) {
    kubefold::OperatorOptions o = w.Options(id);
    o.history_file = w.dir + "/" + id + ".db";
    o.history_sync = false;
    o.registry.watch_inactivity = 5s;  // a stalled watch is noticed
    o.failover.audit_deadline = 15s;
    o.history.keep_last = 256;
    return o;
  };
  Figures fig;
  auto start = [&](Replica& r) {
    r.op = std::make_unique<kubefold::Operator>(
        kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*w.emulator, "host")), options(r.id));
    const kubefold::Status s = r.op->Start();
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  };
  auto stop = [&](Replica& r) {
    fig.events += static_cast<double>(r.op->store().Stats().events_applied);
    fig.relists += Sum(*r.op, "kubefold_watch_relists_total");
    r.op.reset();
  };
  std::vector<Replica> replicas(2);
  replicas[0].id = "soak-a";
  replicas[1].id = "soak-b";
  for (auto& r : replicas) start(r);
  // Ten watches per replica per member start at once: under a sanitizer on
  // a loaded machine this takes minutes (the wait ends when they are up).
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }, 300s), w.Log());

  // Continuous invariants.
  auto check = [&] {
    for (auto& r : replicas) {
      if (!r.op) continue;
      const state::VersionVector v = r.op->store().Current().vector();
      BOOST_CHECK_MESSAGE(r.last <= v, r.id + ": the vector went backwards: " + r.last.ToJson() + " then " + v.ToJson());
      r.last = v;
      ++fig.vector_checks;
    }
    const auto [rss, hwm] = MemoryMiB();
    BOOST_CHECK_MESSAGE(rss < kMemoryBoundMiB, "resident memory " << rss << " MiB is over the bound of "
                                                                 << kMemoryBoundMiB << " MiB");
  };

  // Faults: each on one member, lifted after a while.
  struct Active {
    std::string cluster, kind;
    std::chrono::steady_clock::time_point until;
  };
  std::vector<Active> active;
  auto lift = [&](const Active& a) {
    auto& c = w.emulator->cluster(a.cluster);
    if (a.kind == "partition") w.emulator->server(a.cluster).Heal();
    if (a.kind == "slow") c.SetDelay(0ms);
    if (a.kind == "split") c.SetSplitChunks(false);
    if (a.kind == "stall") c.SetStallWatches(false);
  };
  const char* kKinds[] = {"partition", "429", "5xx",   "slow",    "split",   "drop",
                          "compact",   "stall", "token", "restart", "handoff"};
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(SoakSeconds());
  auto next_fault = std::chrono::steady_clock::now();
  int serial = 0;
  std::vector<std::string> order;
  const auto fault_phase = std::chrono::seconds(SoakSeconds());
  auto next_sample = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() < end) {
    const auto now = std::chrono::steady_clock::now();
    if (now >= next_sample) {
      fig.memory_trend.emplace_back(MemoryMiB().first, Served(w).size());
      next_sample += fault_phase / 10;
    }
    // Workload changes: scale, add, delete (each member's own workloads only;
    // kubefold's copies are its own).
    for (int k = 0; k < 3; ++k) {
      const auto& [cluster, name] = owned[rng() % owned.size()];
      const int roll = static_cast<int>(rng() % 10);
      if (roll < 7) {
        Put(w, cluster, name, name.back() % 2 ? "web" : "batch", 1 + static_cast<int>(rng() % 4));
      } else if (roll < 9) {
        const std::string fresh = cluster + "-new-" + std::to_string(serial++);
        Put(w, cluster, fresh, rng() % 2 ? "web" : "batch", 1);
        owned.emplace_back(cluster, fresh);
      } else {
        w.emulator->cluster(cluster).store().Mutate("apps/deployments", "shop", name, [](const emu::ObjectPtr& cur) {
          return cur ? emu::Mutation::Delete() : emu::Mutation::None();
        });
      }
    }
    MarkAllAvailable(w);
    // Lift expired faults; inject a new one now and then.
    for (auto it = active.begin(); it != active.end();) {
      if (now >= it->until) {
        lift(*it);
        it = active.erase(it);
      } else {
        ++it;
      }
    }
    if (now >= next_fault && active.size() < 2) {
      next_fault = now + std::chrono::milliseconds(300 + rng() % 900);
      // Every kind in turn, in a shuffled order per round: even a short run
      // injects each of them.
      if (order.empty()) {
        order.assign(std::begin(kKinds), std::end(kKinds));
        std::shuffle(order.begin(), order.end(), rng);
      }
      const std::string kind = order.back();
      std::string cluster = w.names[rng() % w.names.size()];
      bool busy = false;
      for (const auto& a : active) busy |= a.cluster == cluster;
      if (!busy) {
        order.pop_back();
        ++fig.faults[kind];
        auto& c = w.emulator->cluster(cluster);
        const auto until = now + std::chrono::milliseconds(1000 + rng() % 4000);
        if (kind == "partition") {
          w.emulator->server(cluster).Partition();
          active.push_back({cluster, kind, until});
        } else if (kind == "429") {
          c.FailNext({.count = 20, .code = 429, .retry_after_s = 1, .json = rng() % 2 == 0});
        } else if (kind == "5xx") {
          c.FailNext({.count = 20, .code = rng() % 2 ? 500 : 503, .retry_after_s = -1});
        } else if (kind == "slow") {
          c.SetDelay(std::chrono::milliseconds(100 + rng() % 400));
          active.push_back({cluster, kind, until});
        } else if (kind == "split") {
          c.SetSplitChunks(true);
          active.push_back({cluster, kind, until});
        } else if (kind == "drop") {
          c.DropWatches(rng() % 2 == 0);
        } else if (kind == "compact") {
          for (int i = 0; i < 3; ++i) {  // a 410 storm: every resume point expires
            c.Compact();
            c.DropWatches(false);
          }
        } else if (kind == "stall") {
          c.SetStallWatches(true);
          active.push_back({cluster, kind, until});
        } else if (kind == "token") {
          // The old token stops working; the new one arrives by Secret.
          w.emulator->RotateToken(cluster);
          w.Secret(cluster, w.emulator->Kubeconfig(cluster));
        } else if (kind == "restart" || kind == "handoff") {
          // restart: any replica; handoff: the leader (a standby takes over).
          Replica* pick = &replicas[rng() % replicas.size()];
          if (kind == "handoff") {
            for (auto& r : replicas) {
              if (r.op && r.op->leading()) pick = &r;
            }
          }
          stop(*pick);
          check();
          start(*pick);
          ++(kind == "restart" ? fig.restarts : fig.handoffs);
        }
      }
    }
    check();
    std::this_thread::sleep_for(std::chrono::milliseconds(50 + rng() % 150));
  }

  // Faults stop; everything settles.
  for (const auto& a : active) lift(a);
  for (const auto& m : w.names) {
    w.emulator->server(m).Heal();
    auto& c = w.emulator->cluster(m);
    c.SetDelay(0ms);
    c.SetSplitChunks(false);
    c.SetStallWatches(false);
  }
  for (auto& r : replicas) {
    const bool converged = Eventually([&] {
      MarkAllAvailable(w);
      check();
      return Folded(r.op->store().Current()) == Served(w);
    }, 300s);
    BOOST_CHECK_MESSAGE(converged, r.id + " does not hold what the members serve\n" + w.Log());
  }
  CHECK_WAITED(Eventually([&] {
    MarkAllAvailable(w);
    for (const auto& a : w.Audits()) {
      const std::string phase = Phase(a);
      if (phase != "Completed" && phase != "Failed") return false;
      if (phase == "Failed" && Condition(a, "Completed", "reason").empty()) return false;
    }
    return true;
  }, 300s), "an audit was left in progress or failed without a reason: " + w.Audits().dump());

  // Triggers and the chain of completed moves, per workload, by creation.
  std::map<std::string, std::vector<Json>> by_workload;
  Json audits = w.Audits();
  std::sort(audits.begin(), audits.end(), [](const Json& a, const Json& b) {
    return a["metadata"].value("creationTimestamp", "") < b["metadata"].value("creationTimestamp", "");
  });
  for (const auto& a : audits) {
    BOOST_CHECK(!a["spec"]["trigger"].value("cluster", "").empty());
    BOOST_CHECK(!a["spec"]["trigger"].value("reason", "").empty());
    if (Phase(a) != "Completed") continue;
    for (const auto& wl : a["spec"].value("workloads", Json::array())) {
      if (wl.value("action", "") != "Failed") by_workload[wl.value("name", "")].push_back(a);
    }
  }
  for (const auto& [name, moves] : by_workload) {
    for (size_t i = 1; i < moves.size(); ++i) {
      BOOST_CHECK_MESSAGE(moves[i]["spec"].value("from", "") != moves[i - 1]["spec"].value("from", "") ||
                              moves[i]["spec"].value("to", "") != moves[i - 1]["spec"].value("to", ""),
                          "workload " + name + " moved " + moves[i]["spec"].value("from", "") + " -> " +
                              moves[i]["spec"].value("to", "") + " twice in a row");
    }
  }
  fig.memory_trend.emplace_back(MemoryMiB().first, Served(w).size());
  for (auto& r : replicas) stop(r);
  const auto [rss, hwm] = MemoryMiB();
  std::ostringstream trend;
  for (const auto& [mib, workloads] : fig.memory_trend) trend << " " << static_cast<int>(mib) << "@" << workloads;
  std::ostringstream faults;
  int total = 0;
  for (const auto& [k, n] : fig.faults) {
    faults << " " << k << "=" << n;
    total += n;
  }
  BOOST_TEST_MESSAGE("soak " << SoakSeconds() << " s: events folded " << fig.events << ", faults " << total << " ("
                             << faults.str() << " ), relists " << fig.relists << ", replica restarts "
                             << fig.restarts << ", leader handoffs " << fig.handoffs << ", failovers (audits) "
                             << audits.size() << ", vector checks " << fig.vector_checks << ", peak memory "
                             << hwm << " MiB; resident MiB@workloads served, every tenth of the faults, then at the end:"
                             << trend.str());
  BOOST_CHECK_GT(total, 0);
  BOOST_CHECK_GT(fig.events, 0);
}

}  // namespace
