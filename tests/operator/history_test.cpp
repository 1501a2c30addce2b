// The durable history end to end: kubefold restarted on the same
// --history-file restores its snapshots, vectors and pins, and an audit's
// diff answers the same after the restart; kubefold killed with SIGKILL at
// random points while it folds and fails over loses no committed history,
// leaves no audit dangling, and converges to what the clusters serve.
#define BOOST_TEST_MODULE history_test
#include <boost/test/unit_test.hpp>

#include <random>
#include <regex>

#include "tests/operator/world.h"

using namespace optest;

namespace {

kubefold::OperatorOptions Durable(World& w, const std::string& identity = "op-1") {
  kubefold::OperatorOptions o = w.Options(identity);
  o.leader_elect = false;
  o.history_file = w.dir + "/history.db";
  o.history_sync = false;
  o.serving.api = *kubefold::ParseBindAddress("127.0.0.1:0", "api");
  o.serving.metrics = kubefold::BindAddress{};
  o.serving.probes = kubefold::BindAddress{};
  return o;
}

std::string AuditName(World& w) { return w.Audits()[0]["metadata"]["name"].get<std::string>(); }

BOOST_AUTO_TEST_CASE(a_restart_restores_history_pins_and_audit_diffs) {
  World w;
  w.Deploy("east", "web", 2);
  w.MarkAvailable("east", "web");
  w.Deploy("west", "api", 1, "backend");
  RegisterAll(w);
  auto op = Start(w, Durable(w));
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  w.Apply(PolicyYaml("Manual"));
  REQUIRE_WAITED(Eventually([&] { return FirstWorkload(w.Policy("web"), "activeCluster") == "east"; }),
                 w.Log());
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Audits().size() == 1 && w.Served("west", "web") != nullptr; }),
                 w.Log());
  w.MarkAvailable("west", "web");
  REQUIRE_WAITED(Eventually([&] { return Phase(w.Audits()[0]) == "Completed"; }), w.Audits().dump() + w.Log());
  const std::string name = AuditName(w);
  const Json audit = w.Audits()[0];
  const uint64_t before_seq = audit["spec"]["before"]["seq"], after_seq = audit["spec"]["after"]["seq"];
  // The diff names the audit's phase as kubefold's cache has it, which may
  // lag the host by a watch event.
  Reply diff;
  REQUIRE_WAITED(Eventually([&] {
                   diff = Call(op->api_port(), "/api/v1/audits/shop/" + name + "/diff");
                   return diff.code == 200 && diff.json()["audit"].value("phase", "") == "Completed";
                 }),
                 diff.body);
  BOOST_REQUIRE(diff.body.find("\"web\"") != std::string::npos);
  const Reply list = Call(op->api_port(), "/api/v1/snapshots?limit=1");
  BOOST_REQUIRE_EQUAL(list.code, 200);
  BOOST_CHECK_EQUAL(list.json()["durable"].value("degraded", true), false);
  // Stopped first (it commits everything published), then read: the
  // health prober publishes until the stop.
  op->Stop();
  const state::VersionVector before_restart = op->store().Current().vector();
  const uint64_t newest = op->store().Current().seq();
  op.reset();

  auto again = Start(w, Durable(w));
  // Restored before anything is watched: the same newest snapshot. (The
  // new process publishes as soon as it watches, so the restore is read
  // from its log and from the snapshot it kept.)
  {
    std::lock_guard lock(w.log_mu);
    BOOST_CHECK_MESSAGE(w.log.find("(newest seq " + std::to_string(newest) + ", vector " + before_restart.ToJson() + ",") !=
                            std::string::npos,
                        w.log);
  }
  auto restored_newest = again->store().Get(newest);
  BOOST_REQUIRE_MESSAGE(restored_newest.ok(), restored_newest.status().ToString());
  BOOST_CHECK_EQUAL(restored_newest->vector().ToJson(), before_restart.ToJson());
  BOOST_CHECK_GE(again->store().Current().seq(), newest);
  auto before = again->store().Get(before_seq);
  BOOST_REQUIRE_MESSAGE(before.ok(), before.status().ToString());
  BOOST_CHECK_EQUAL(before->vector().ToJson(), audit["spec"]["before"]["vector"].dump());
  auto full_log = [&] {
    std::lock_guard lock(w.log_mu);
    return w.log;
  };
  REQUIRE_WAITED(Eventually([&] { return full_log().find("history: released 2 restored pins; audits pin 2 snapshots") != std::string::npos; }),
                 w.Log());
  const Reply diff2 = Call(again->api_port(), "/api/v1/audits/shop/" + name + "/diff");
  BOOST_CHECK_EQUAL(diff2.code, 200);
  BOOST_CHECK_EQUAL(diff2.body, diff.body);
  // The audit's snapshots stay pinned (by the audit now, not the restore).
  for (const auto& r : again->store().ListRetained()) {
    if (r.seq == before_seq || r.seq == after_seq) BOOST_CHECK_EQUAL(r.pins, 1u);
  }
  // Vectors continue: new events advance components from where they were.
  w.emulator->server("east").Heal();
  w.Deploy("north", "late", 1, "batch");
  REQUIRE_WAITED(Eventually([&] { return AllReady(w) && Folded(again->store().Current()) == Served(w); }),
                 w.Log());
  const state::VersionVector now = again->store().Current().vector();
  BOOST_CHECK(before_restart <= now);
  BOOST_CHECK_GT(now.Get("north"), before_restart.Get("north"));
  // Deleting the audit lets its snapshots go.
  w.Kubectl("delete failoveraudit -n shop " + name);
  BOOST_CHECK(Eventually([&] {
    for (const auto& r : again->store().ListRetained()) {
      if (r.pins > 0) return false;
    }
    return true;
  }));
}

// A member that was unhealthy when kubefold stopped and healed while it was
// down: the restored snapshot still says unhealthy, for longer than the
// trigger, but that is a dead process's view. The restarted kubefold waits
// for its own probes and fails nothing over.
BOOST_AUTO_TEST_CASE(no_failover_is_decided_from_the_restored_view_of_health) {
  World w;
  w.Deploy("east", "web", 2);
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  auto op = Start(w, Durable(w));
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return Condition(w.Member("east"), "Ready") == "False"; }), w.Log());
  std::this_thread::sleep_for(3s);  // beyond the policy's clusterUnhealthySeconds (2)
  op->Stop();
  const uint64_t restored_seq = op->store().Current().seq();
  op.reset();
  w.emulator->server("east").Heal();
  w.Apply(PolicyYaml("Manual"));

  auto again = Start(w, Durable(w));
  REQUIRE_WAITED(Eventually([&] { return AllReady(w) && Condition(w.Policy("web"), "Ready") == "True"; }),
                 w.Log());
  std::this_thread::sleep_for(3s);  // a failover would have been decided by now
  BOOST_CHECK_MESSAGE(w.Audits().empty(), "failed over from the restored snapshot " + std::to_string(restored_seq) +
                                              ": " + w.Audits().dump());
  BOOST_CHECK_EQUAL(FirstWorkload(w.Policy("web"), "activeCluster"), "east");
}

// ---- SIGKILL at random points -------------------------------------------

struct Process {
  pid_t pid = -1;
  std::string log;
};

Process Spawn(World& w, int iteration) {
  Process p;
  p.log = w.dir + "/kubefold-" + std::to_string(iteration) + ".log";
  p.pid = ::fork();
  BOOST_REQUIRE(p.pid >= 0);
  if (p.pid == 0) {
    const int fd = ::open(p.log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(fd, 1);
    ::dup2(fd, 2);
    const std::string kubeconfig = w.dir + "/host.kubeconfig", file = w.dir + "/history.db";
    ::execl(KUBEFOLD_BINARY, KUBEFOLD_BINARY, "--kubeconfig", kubeconfig.c_str(), "--leader-elect=false",
            "--api-bind-address=127.0.0.1:0", "--metrics-bind-address=0", "--health-probe-bind-address=0",
            "--status-period=500ms", "--resync=1s", "--audit-deadline=20s", "--history-keep-last=64",
            "--history-sync=false", ("--history-file=" + file).c_str(), "--identity=op-crash",
            static_cast<char*>(nullptr));
    ::_exit(127);
  }
  return p;
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

int ApiPort(const Process& p) {
  int port = 0;
  Eventually([&] {
    const std::string text = Slurp(p.log);
    const size_t at = text.find("serving the query API on 127.0.0.1:");
    if (at != std::string::npos) port = std::atoi(text.c_str() + at + std::strlen("serving the query API on 127.0.0.1:"));
    return port > 0;
  }, 30s);
  return port;
}

void Kill(Process& p) {
  ::kill(p.pid, SIGKILL);
  int status = 0;
  ::waitpid(p.pid, &status, 0);
  BOOST_CHECK_MESSAGE(WIFSIGNALED(status), "kubefold exited by itself: " + Slurp(p.log));
}

View ApiView(int port) {
  View v;
  const Reply r = Call(port, "/api/v1/snapshots/latest?full=true&limit=10000");
  if (r.code != 200) return v;
  for (const auto& i : r.json().value("items", Json::array())) {
    if (i.value("namespace", "") == ctl::kHealthNamespace) continue;
    v[{i["cluster"], i["namespace"], i["name"]}] = i.value("desiredReplicas", -1);
  }
  return v;
}

// Plays every member's Deployment controller: all replicas available.
void MarkAllAvailable(World& w) {
  for (const auto& m : kMembers) {
    const auto list = w.emulator->cluster(m).store().List("apps/deployments", std::nullopt);
    for (const auto& o : list->objects) w.MarkAvailable(m, o->name);
  }
}

BOOST_AUTO_TEST_CASE(sigkill_at_random_points_loses_no_committed_history) {
  World w;
  w.Deploy("east", "web", 2);
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  w.Apply(PolicyYaml("Manual"));
  std::mt19937 rng(20261123);
  std::map<std::string, std::string> diffs;  // audit -> its diff, as answered before a kill
  uint64_t durable = 0;                      // the newest durable seq seen before a kill
  std::string durable_vector;
  int deployed = 0, partitions = 0;
  std::set<std::string> partitioned;
  const int kIterations = 8;
  for (int it = 0; it < kIterations; ++it) {
    Process p = Spawn(w, it);
    const int port = ApiPort(p);
    BOOST_REQUIRE_MESSAGE(port > 0, Slurp(p.log));
    const std::string log = Slurp(p.log);
    // What was committed before the last kill is all there.
    if (it > 0) {
      std::smatch m;
      const bool restored = std::regex_search(log, m, std::regex("restored \\d+ snapshots \\(newest seq (\\d+)"));
      BOOST_REQUIRE_MESSAGE(restored, log);
      const size_t at = static_cast<size_t>(m.position(0));  // the line the regex matched
      BOOST_TEST_MESSAGE("iteration " << it << ": " << log.substr(at, log.find('\n', at) - at));
      BOOST_CHECK_GE(std::stoull(m[1]), durable);
      const Reply s = Call(port, "/api/v1/snapshots/" + std::to_string(durable));
      if (s.code == 200) BOOST_CHECK_EQUAL(s.json()["vector"].dump(), durable_vector);
    }
    // Work while it runs: a partition (failovers) or a heal, and new
    // workloads throughout.
    if (partitioned.empty() && rng() % 3 != 0) {
      const std::string c = rng() % 2 ? "east" : "west";
      w.emulator->server(c).Partition();
      partitioned.insert(c);
      ++partitions;
    } else if (!partitioned.empty()) {
      w.emulator->server(*partitioned.begin()).Heal();
      partitioned.clear();
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(2000 + rng() % 5000);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string cluster = kMembers[rng() % kMembers.size()];
      if (!partitioned.contains(cluster)) {
        // A healed member's first request may meet a connection the
        // partition broke: the client retries once on a new one.
        const std::string name = "w" + std::to_string(deployed++), tier = rng() % 2 ? "web" : "batch";
        Json d = {{"apiVersion", "apps/v1"},
                  {"kind", "Deployment"},
                  {"metadata", {{"name", name}, {"namespace", "shop"}, {"labels", {{"tier", tier}}}}},
                  {"spec",
                   {{"replicas", 1},
                    {"selector", {{"matchLabels", {{"app", name}}}}},
                    {"template",
                     {{"metadata", {{"labels", {{"app", name}}}}},
                      {"spec", {{"containers", {{{"name", "app"}, {"image", "nginx:1.27"}}}}}}}}}}};
        auto r = w.members[cluster]->Create("/apis/apps/v1/namespaces/shop/deployments", d.dump());
        if (!r.ok()) r = w.members[cluster]->Create("/apis/apps/v1/namespaces/shop/deployments", d.dump());
        BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
      }
      MarkAllAvailable(w);
      std::this_thread::sleep_for(std::chrono::milliseconds(100 + rng() % 300));
    }
    // Before the kill: the audits' diffs, and what is durable.
    auto collect = [&] {
      for (const auto& a : w.Audits()) {
        const std::string name = a["metadata"]["name"];
        if (diffs.contains(name) || Phase(a) != "Completed") continue;
        const Reply d = Call(port, "/api/v1/audits/shop/" + name + "/diff");
        // Kept once kubefold's own cache shows the audit Completed too.
        if (d.code == 200 && d.json()["audit"].value("phase", "") == "Completed") diffs[name] = d.body;
      }
    };
    collect();
    if (it == kIterations - 1 && diffs.empty()) {
      // A slow build (the sanitizers) may not have completed a failover
      // in the random windows, and may even have been killed each time
      // before it listed a member: the last run gets one. Every member is
      // healed until kubefold's view equals what they serve, then the
      // cluster where the policy's workloads are active is partitioned.
      for (const auto& c : partitioned) w.emulator->server(c).Heal();
      partitioned.clear();
      MarkAllAvailable(w);
      CHECK_WAITED(Eventually([&] { return ApiView(port) == Served(w); }, 120s), Slurp(p.log));
      std::map<std::string, int> active;  // cluster -> governed workloads active there
      BOOST_CHECK(Eventually([&] {
        active.clear();
        for (const auto& e : w.Policy("web")["status"].value("workloads", Json::array())) {
          ++active[e.value("activeCluster", "")];
        }
        return !active.empty();
      }));
      std::string victim = "east";
      int most = 0;
      for (const auto& [c, n] : active) {
        if (!c.empty() && n > most) victim = c, most = n;
      }
      w.emulator->server(victim).Partition();
      partitioned.insert(victim);
      ++partitions;
      const bool got = Eventually([&] {
        MarkAllAvailable(w);
        collect();
        return !diffs.empty();
      }, 150s);
      BOOST_CHECK_MESSAGE(got, "no failover completed with " + victim + " partitioned; policy: " + w.Policy("web").dump() +
                                   "\naudits: " + w.Audits().dump() + "\nlog: " + Slurp(p.log));
    }
    const Reply list = Call(port, "/api/v1/snapshots?limit=1");
    if (list.code == 200 && list.json()["durable"].is_object()) {
      const uint64_t seq = list.json()["durable"].value("durableSeq", uint64_t{0});
      const Reply s = Call(port, "/api/v1/snapshots/" + std::to_string(seq));
      if (seq > 0 && s.code == 200) {
        durable = seq;
        durable_vector = s.json()["vector"].dump();
      }
    }
    Kill(p);
  }
  // The last run: no faults; everything settles.
  for (const auto& c : partitioned) w.emulator->server(c).Heal();
  Process p = Spawn(w, kIterations);
  const int port = ApiPort(p);
  BOOST_REQUIRE(port > 0);
  MarkAllAvailable(w);
  // Converges to what the clusters serve.
  CHECK_WAITED(Eventually([&] { return ApiView(port) == Served(w); }), Slurp(p.log));
  // Every audit ends, completed or failed with a reason; none is left InProgress.
  CHECK_WAITED(Eventually([&] {
    for (const auto& a : w.Audits()) {
      if (Phase(a) != "Completed" && Phase(a) != "Failed") return false;
      if (Phase(a) == "Failed" && Condition(a, "Completed", "reason").empty()) return false;
    }
    return true;
  }), w.Audits().dump());
  // Every diff answered before a kill answers the same now.
  for (const auto& [name, body] : diffs) {
    Reply d;
    Eventually([&] {  // 503 until the audit cache has synced
      d = Call(port, "/api/v1/audits/shop/" + name + "/diff");
      return d.code != 503;
    }, 30s);
    BOOST_CHECK_MESSAGE(d.body == body, "audit " + name + " answers differently after the restarts: " +
                                            std::to_string(d.code) + " " + d.body + "\nbefore: " + body);
  }
  // No failover without a trigger, none duplicated: one audit per
  // (workload, from, to, before snapshot).
  std::map<std::string, Json> seen;  // key -> the audit that has it
  for (const auto& a : w.Audits()) {
    for (const auto& wl : a["spec"].value("workloads", Json::array())) {
      const std::string k = wl.value("name", "") + "|" + a["spec"].value("from", "") + "|" +
                            a["spec"].value("to", "") + "|" + a["spec"]["before"]["seq"].dump();
      const auto [at, fresh] = seen.emplace(k, a);
      BOOST_CHECK_MESSAGE(fresh, "duplicated failover " + k + ":\n" + at->second.dump() + "\n" + a.dump());
    }
    BOOST_CHECK(!a["spec"]["trigger"].value("cluster", "").empty());
  }
  BOOST_TEST_MESSAGE("kills: " << kIterations << ", workloads deployed: " << deployed << ", partitions: " << partitions
                               << ", audits: " << w.Audits().size() << ", audit diffs compared: " << diffs.size());
  BOOST_CHECK_GT(diffs.size(), 0u);
  Kill(p);
}

}  // namespace
