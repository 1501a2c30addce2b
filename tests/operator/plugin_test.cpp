// kubectl-kubefold end to end: the real plugin binary against an
// in-process Operator serving its query API, over kube-emulator with a
// host and three members. Direct access (--server-url) to an API bound to
// 127.0.0.1 for every subcommand; kubectl's plugin discovery; access
// through the host's service proxy with RBAC.
#define BOOST_TEST_MODULE plugin_test
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <regex>
#include <sstream>

#include <yaml-cpp/yaml.h>

#include "tests/operator/world.h"

using namespace optest;

namespace {

using OJson = nlohmann::ordered_json;

struct PluginRun {
  int code = -1;
  std::string out, err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Runs `env KUBEFOLD_PLUGIN args`; stdout and stderr apart.
PluginRun Plugin(World& w, const std::string& args, const std::string& env = "") {
  const std::string err_path = w.dir + "/plugin.stderr";
  const std::string command = (env.empty() ? "" : "env " + env + " ") + KUBEFOLD_PLUGIN " " + args + " 2>" + err_path;
  PluginRun r;
  FILE* p = ::popen(command.c_str(), "r");
  BOOST_REQUIRE(p != nullptr);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = ReadFile(err_path);
  return r;
}

std::string Describe(const std::string& args, const PluginRun& r) {
  return "kubectl-kubefold " + args + " -> " + std::to_string(r.code) + "\n--- stdout\n" + r.out + "--- stderr\n" +
         r.err;
}

// Times and ages vary: an RFC 3339 time with microseconds becomes a
// placeholder of the same width (alignment is kept); an age becomes "AGE",
// and an AGE column that is not the last one is made 3 wide (its cells and
// header), as if every age were 3 characters long.
std::string Normalise(const std::string& text) {
  static const std::regex kTime(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z)");
  static const std::regex kAgeInside(R"(( )(?:AGE|(?:\d+[smhdy])+) {3,}(?=\S))");
  static const std::regex kAgeLast(R"(( )(?:\d+[smhdy])+$)");
  std::string out;
  std::istringstream in(std::regex_replace(text, kTime, "YYYY-MM-DDThh:mm:ss.uuuuuuZ"));
  for (std::string line; std::getline(in, line);) {
    out += std::regex_replace(std::regex_replace(line, kAgeInside, "$1AGE   "), kAgeLast, "$1AGE") + "\n";
  }
  return out;
}

// `s` padded with spaces to `width` (a table cell that is not the last).
std::string Pad(const std::string& s, size_t width) { return s + std::string(width > s.size() ? width - s.size() : 0, ' '); }

// A YAML document read back as JSON: plain scalars typed as a YAML reader
// types them (null, booleans, integers), quoted ones strings.
OJson FromYaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null: return nullptr;
    case YAML::NodeType::Sequence: {
      OJson a = OJson::array();
      for (const auto& e : n) a.push_back(FromYaml(e));
      return a;
    }
    case YAML::NodeType::Map: {
      OJson o = OJson::object();
      for (const auto& e : n) o[e.first.as<std::string>()] = FromYaml(e.second);
      return o;
    }
    case YAML::NodeType::Scalar: {
      const std::string s = n.Scalar();
      if (n.Tag() == "!") return s;  // quoted
      if (s == "null" || s == "~") return nullptr;
      if (s == "true") return true;
      if (s == "false") return false;
      const OJson number = OJson::parse(s, nullptr, false);
      if (!number.is_discarded() && number.is_number()) return number;
      return s;
    }
    default: return nullptr;
  }
}

// -o json is what the API answered, written as kubectl writes JSON.
OJson ParseJsonOutput(const std::string& args, const PluginRun& r) {
  BOOST_REQUIRE_MESSAGE(r.code == 0, Describe(args, r));
  const OJson j = OJson::parse(r.out, nullptr, false);
  BOOST_REQUIRE_MESSAGE(!j.is_discarded(), Describe(args, r));
  BOOST_CHECK_MESSAGE(r.out == j.dump(4) + "\n", "4-space JSON as kubectl prints it: " + Describe(args, r));
  return j;
}

// The query API answered directly, for comparison.
OJson Direct(int port, const std::string& path) {
  kube::RestConfig config;
  config.server = "http://127.0.0.1:" + std::to_string(port);
  auto client = kubefold::testing::ClientFor(config);
  auto body = client->Get(path);
  BOOST_REQUIRE_MESSAGE(body.ok(), path + ": " + body.status().ToString());
  return OJson::parse(*body);
}

std::unique_ptr<kubefold::Operator> StartServing(World& w, const std::string& bind) {
  auto o = w.Options("op-1");
  auto address = kubefold::ParseBindAddress(bind, "--api-bind-address");
  BOOST_REQUIRE(address.ok());
  o.serving.api = *address;
  o.serving.build = kubefold::BuildInfo{"9.9.9-test", "0123456789ab", "g++ test"};
  auto op = std::make_unique<kubefold::Operator>(
      kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(*w.emulator, "host")), o);
  BOOST_REQUIRE(op->Start().ok());
  BOOST_REQUIRE(op->api_port() > 0);
  return op;
}

// A port nothing listens on (bound, then closed).
int ClosedPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  BOOST_REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_subcommand_answers_with_exact_tables_json_yaml_and_exit_codes) {
  World w;
  w.Deploy("east", "web", 2);
  w.MarkAvailable("east", "web");
  w.Deploy("west", "cache", 3, "cache");
  w.Deploy("north", "gone", 1, "batch");
  RegisterAll(w);
  auto op = StartServing(w, "127.0.0.1:0");
  const int port = op->api_port();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  REQUIRE_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());
  w.Apply(PolicyYaml("Manual"));
  BOOST_REQUIRE(Eventually([&] { return Condition(w.Policy("web"), "Ready") == "True"; }));

  // The kubeconfig through KUBECONFIG, a missing file first (kubectl skips it).
  const std::string url = "--server-url http://127.0.0.1:" + std::to_string(port);
  const std::string env = "KUBECONFIG=/nonexistent/config:" + w.dir + "/host.kubeconfig";
  auto run = [&](const std::string& args) { return Plugin(w, args + " " + url, env); };
  // A table, normalised, once it equals `expected()` (computed afresh each
  // time: the answer may move on between two requests).
  auto table_is = [&](const std::string& args, const std::function<std::string()>& expected) {
    PluginRun r;
    std::string want;
    const bool ok = Eventually([&] {
      want = expected();
      r = run(args);
      return r.code == 0 && Normalise(r.out) == want;
    }, 20s);
    BOOST_CHECK_MESSAGE(ok, Describe(args, r) + "--- expected (normalised)\n" + want);
    return r;
  };
  auto json_of = [&](const std::string& args) { return ParseJsonOutput(args, run(args)); };
  auto yaml_of = [&](const std::string& args) {
    const PluginRun r = run(args);
    BOOST_REQUIRE_MESSAGE(r.code == 0, Describe(args, r));
    return FromYaml(YAML::Load(r.out));
  };

  // clusters
  // VECTOR and WATCH-ERRORS as the API has them now.
  auto counts = [&](const char* field) {
    std::map<std::string, std::string> v;
    const OJson list = Direct(port, "/api/v1/clusters");
    for (const auto& c : list["items"]) v[c["name"].get<std::string>()] = c[field].dump();
    return v;
  };
  table_is("clusters", [&] {
    auto v = counts("vectorComponent");
    return "NAME    READY   WATCHING   SYNCED   VECTOR   WORKLOADS   AGE\n"
           "east    True    true       true     " + Pad(v["east"], 6) + "   1           AGE\n"
           "north   True    true       true     " + Pad(v["north"], 6) + "   1           AGE\n"
           "west    True    true       true     " + Pad(v["west"], 6) + "   1           AGE\n";
  });
  table_is("clusters -o wide", [&] {
    auto v = counts("vectorComponent");
    auto e = counts("watchErrors");
    auto line = [&](const std::string& c) {
      return Pad(c, 5) + "   True    true       true     " + Pad(v[c], 6) + "   1           AGE   1            " +
             Pad(e[c], 12) + "   ProbeSucceeded\n";
    };
    return "NAME    READY   WATCHING   SYNCED   VECTOR   WORKLOADS   AGE   NAMESPACES   WATCH-ERRORS   REASON\n" +
           line("east") + line("north") + line("west");
  });
  BOOST_CHECK(Eventually([&] { return json_of("clusters -o json") == Direct(port, "/api/v1/clusters"); }, 20s));
  {
    const PluginRun r = run("clusters --color always");
    BOOST_CHECK_MESSAGE(r.out.find("east    \033[32mTrue\033[0m    true") != std::string::npos, Describe("", r));
  }

  // snapshots: the oldest two, and the token of the rest.
  auto workloads_at = [&](uint64_t seq) { return std::to_string(Folded(*op->store().Get(seq)).size()); };
  {
    const PluginRun r = table_is("snapshots --limit 2", [&] {
      return "SEQ   TIME                          WORKLOADS   PINS   PINNED-BY\n"
             "0     YYYY-MM-DDThh:mm:ss.uuuuuuZ   " + Pad(workloads_at(0), 9) + "   0      <none>\n"
             "1     YYYY-MM-DDThh:mm:ss.uuuuuuZ   " + Pad(workloads_at(1), 9) + "   0      <none>\n";
    });
    BOOST_CHECK_EQUAL(r.err, "More snapshots: --continue 2\n");
    const OJson j = json_of("snapshots --limit 2 -o json");
    BOOST_CHECK_EQUAL(j, Direct(port, "/api/v1/snapshots?limit=2"));
    BOOST_CHECK_EQUAL(json_of("snapshots --limit 1 --continue 1 -o json")["items"][0], j["items"][1]);
    std::string vector;
    for (const auto& [k, v] : j["items"][1]["vector"].items()) vector += (vector.empty() ? "" : ",") + k + "=" + v.dump();
    table_is("snapshots --limit 1 --continue 1 -o wide", [&] {
      return "SEQ   TIME                          WORKLOADS   PINS   PINNED-BY   VECTOR\n"
             "1     YYYY-MM-DDThh:mm:ss.uuuuuuZ   " + Pad(workloads_at(1), 9) + "   0      <none>      " + vector + "\n";
    });
  }

  // get: a fixed seq, filters, as-of views; JSON and YAML are the API's.
  const uint64_t a = op->store().Current().seq();
  const std::string sa = std::to_string(a);
  const std::string workloads =
      "CLUSTER   NAMESPACE   KIND         NAME    DESIRED   READY   AVAILABLE\n"
      "east      shop        Deployment   web     2         2       2\n"
      "north     shop        Deployment   gone    1         0       0\n"
      "west      shop        Deployment   cache   3         0       0\n";
  table_is("get " + sa, [&] { return workloads; });
  table_is("get", [&] { return workloads; });  // latest
  {
    const OJson j = json_of("get " + sa + " -o json");
    BOOST_CHECK_EQUAL(j, Direct(port, "/api/v1/snapshots/" + sa));
    std::map<std::string, std::string> counter;
    for (const auto& item : j["items"]) counter[item["name"]] = item["counter"].dump();
    table_is("get " + sa + " -o wide", [&] {
      return "CLUSTER   NAMESPACE   KIND         NAME    DESIRED   READY   AVAILABLE   GENERATION   OBSERVED   COUNTER\n"
             "east      shop        Deployment   web     2         2       2           1            1          " + counter["web"] + "\n"
             "north     shop        Deployment   gone    1         0       0           1            0          " + counter["gone"] + "\n"
             "west      shop        Deployment   cache   3         0       0           1            0          " + counter["cache"] + "\n";
    });
    std::string vector;
    for (const auto& [k, v] : j["snapshot"]["vector"].items()) vector += (vector.empty() ? "" : ",") + k + "=" + v.dump();
    table_is("get --at-vector " + vector, [&] { return workloads; });
    table_is("get --at-time " + j["snapshot"]["time"].get<std::string>(), [&] { return workloads; });
    BOOST_CHECK_EQUAL(yaml_of("get " + sa + " --full -o yaml"), Direct(port, "/api/v1/snapshots/" + sa + "?full=true"));
  }
  table_is("get " + sa + " --cluster west --namespace-filter shop --kind Deployment", [&] {
    return "CLUSTER   NAMESPACE   KIND         NAME    DESIRED   READY   AVAILABLE\n"
           "west      shop        Deployment   cache   3         0       0\n";
  });
  {
    const PluginRun r = run("get " + sa + " --kind StatefulSet");
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK_EQUAL(r.out, "");
    BOOST_CHECK_EQUAL(r.err, "No workloads found in snapshot " + sa + ".\n");
  }

  // whatif: nothing changes, the answer says what would.
  auto latest = [&] {
    const OJson s = Direct(port, "/api/v1/snapshots/latest?limit=1")["snapshot"];
    return "seq " + s["seq"].dump();
  };
  table_is("whatif east", [&] {
    return "if east failed at " + latest() + " (YYYY-MM-DDThh:mm:ss.uuuuuuZ): 1 policy lists it, 1 workload would move\n"
           "POLICY     NAMESPACE   KIND         NAME   FROM   TO     ACTION\n"
           "shop/web   shop        Deployment   web    east   west   Apply\n";
  });
  table_is("whatif east -o wide", [&] {
    return "if east failed at " + latest() + " (YYYY-MM-DDThh:mm:ss.uuuuuuZ): 1 policy lists it, 1 workload would move\n"
           "POLICY     NAMESPACE   KIND         NAME   FROM   TO     ACTION   REASON\n"
           "shop/web   shop        Deployment   web    east   west   Apply    server-side apply of the last known "
           "manifest to west, the next Ready cluster in order\n";
  });
  BOOST_CHECK(Eventually([&] { return json_of("whatif east -o json") == Direct(port, "/api/v1/whatif?cluster=east"); }, 20s));

  // version
  {
    const PluginRun r = run("version");
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK_EQUAL(r.out, "Client Version: " KUBEFOLD_VERSION " (commit " KUBEFOLD_GIT_COMMIT ")\n"
                             "Server Version: 9.9.9-test (commit 0123456789ab, g++ test)\n");
    const OJson y = yaml_of("version -o yaml");
    BOOST_CHECK_EQUAL(y["clientVersion"]["version"], KUBEFOLD_VERSION);
    BOOST_CHECK_EQUAL(y["serverVersion"], Direct(port, "/version"));
  }

  // diff: one of each kind of change.
  auto patched = w.members["west"]->Patch("/apis/apps/v1/namespaces/shop/deployments/cache",
                                          R"({"spec":{"replicas":4}})", kube::PatchOptions{});
  BOOST_REQUIRE(patched.ok());
  w.Deploy("north", "late", 1);
  BOOST_REQUIRE(w.members["north"]->Delete("/apis/apps/v1/namespaces/shop/deployments/gone").ok());
  REQUIRE_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());
  const std::string sb = std::to_string(op->store().Current().seq());
  const std::string head = "from seq " + sa + " (YYYY-MM-DDThh:mm:ss.uuuuuuZ) to seq " + sb +
                           " (YYYY-MM-DDThh:mm:ss.uuuuuuZ): ";
  table_is("diff " + sa + " " + sb, [&] {
    // The API sorts a diff by cluster, namespace and key.
    return head + "1 added, 1 removed, 1 modified\n"
           "TYPE       CLUSTER   NAMESPACE   KIND         NAME    CHANGES\n"
           "removed    north     shop        Deployment   gone    <none>\n"
           "added      north     shop        Deployment   late    <none>\n"
           "modified   west      shop        Deployment   cache   metadata.generation, spec.replicas\n";
  });
  table_is("diff " + sa + " " + sb + " --cluster west --namespace-filter shop -o wide", [&] {
    // A row per patch operation, in the patch's order; the resourceVersion
    // replaced is the emulator's.
    const OJson d = Direct(port, "/api/v1/diff?from=" + sa + "&to=" + sb + "&cluster=west");
    const std::string key = "modified   west      shop        Deployment   cache   replace   ";
    std::string rows;
    for (const auto& op : d["changes"][0]["patch"]) {
      if (op["path"] == "/metadata/generation") rows += key + "metadata.generation        2\n";
      if (op["path"] == "/metadata/resourceVersion") rows += key + "metadata.resourceVersion   " + op["value"].dump() + "\n";
      if (op["path"] == "/spec/replicas") rows += key + "spec.replicas              4\n";
    }
    return head + "0 added, 0 removed, 1 modified\n"
           "TYPE       CLUSTER   NAMESPACE   KIND         NAME    OP        PATH                       VALUE\n" + rows;
  });
  {
    const OJson j = json_of("diff " + sa + " " + sb + " -o json");
    BOOST_CHECK_EQUAL(j, Direct(port, "/api/v1/diff?from=" + sa + "&to=" + sb));
    BOOST_CHECK_EQUAL(yaml_of("diff " + sa + " " + sb + " -o yaml"), j);
    // A time names the newest snapshot at or before it.
    BOOST_CHECK_EQUAL(json_of("diff " + j["from"]["time"].get<std::string>() + " " + sb + " -o json"), j);
    const PluginRun c = run("diff " + sa + " " + sb + " --color always");
    BOOST_CHECK_MESSAGE(c.out.find("\033[32madded\033[0m") != std::string::npos &&
                            c.out.find("\033[31mremoved\033[0m") != std::string::npos &&
                            c.out.find("\033[33mmodified\033[0m") != std::string::npos,
                        Describe("diff --color always", c));
  }

  // audits: none yet; then a failover's, from the host API server.
  {
    const PluginRun r = run("audits -n shop");
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK_EQUAL(r.out, "");
    BOOST_CHECK_EQUAL(r.err, "No resources found in shop namespace.\n");
  }
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Served("west", "web") != nullptr; }), w.Log());
  w.MarkAvailable("west", "web");
  REQUIRE_WAITED(Eventually([&] { return w.Audits().size() == 1 && Phase(w.Audits()[0]) == "Completed"; }),
                 w.Log());
  const Json audit = w.Audits()[0];
  const std::string name = audit["metadata"]["name"];
  const std::string before = audit["spec"]["before"]["seq"].dump(), after = audit["spec"]["after"]["seq"].dump();
  const std::string row = Pad(name, 4) + "   web      east   west   ClusterUnhealthy   Completed   " + Pad(before, 6) +
                          "   " + Pad(after, 5) + "   AGE\n";
  const std::string audit_table =
      Pad("NAME", name.size()) + "   POLICY   FROM   TO     REASON             PHASE       BEFORE   AFTER   AGE\n" + row;
  table_is("audits -n shop", [&] { return audit_table; });
  table_is("audits -A", [&] {
    return "NAMESPACE   " + Pad("NAME", name.size()) +
           "   POLICY   FROM   TO     REASON             PHASE       BEFORE   AFTER   AGE\n"
           "shop        " + row;
  });
  BOOST_CHECK_EQUAL(Json::parse(json_of("audits -n shop -o json")["items"].dump()), w.Audits());
  table_is("audit " + name + " -n shop --diff", [&] {
    const std::string head = audit_table + "\nfrom seq " + before + " (YYYY-MM-DDThh:mm:ss.uuuuuuZ) to seq " + after +
                             " (YYYY-MM-DDThh:mm:ss.uuuuuuZ): ";
    // East's ClusterHealth may also have moved on between the two
    // snapshots: a failover decided while east was Unknown (no recent
    // contact) sees it turn False (probes failed) before the workload is
    // available on west. That happens on a slow build (the sanitizers).
    bool health_moved = false;
    const OJson audit_diff = Direct(port, "/api/v1/audits/shop/" + name + "/diff");  // kept: the loop reads into it
    for (const auto& c : audit_diff["changes"]) {
      if (c.value("cluster", "") == "east" && c.value("kind", "") == "ClusterHealth") health_moved = true;
    }
    if (health_moved) {
      return head + "1 added, 0 removed, 1 modified\n"
             "TYPE       CLUSTER   NAMESPACE     KIND            NAME    CHANGES\n"
             "modified   east      kubefold.io   ClusterHealth   ready   message, reason, status\n"
             "added      west      shop          Deployment      web     <none>\n";
    }
    return head + "1 added, 0 removed, 0 modified\n"
           "TYPE    CLUSTER   NAMESPACE   KIND         NAME   CHANGES\n"
           "added   west      shop        Deployment   web    <none>\n";
  });
  {
    const OJson j = json_of("audit " + name + " -n shop --diff -o json");
    BOOST_CHECK_EQUAL(Json::parse(j["audit"].dump()), audit);
    BOOST_CHECK_EQUAL(j["diff"], Direct(port, "/api/v1/audits/shop/" + name + "/diff"));
    BOOST_CHECK_EQUAL(yaml_of("audit " + name + " -n shop -o yaml"), j["audit"]);
  }

  // Exit codes: 1 with the API's message, 2 usage, 3 unreachable.
  auto fails = [&](const std::string& args, int code, const std::string& err_prefix, const std::string& env_ = "") {
    const PluginRun r = env_.empty() ? run(args) : Plugin(w, args, env_);
    BOOST_CHECK_MESSAGE(r.code == code && r.err.starts_with(err_prefix) && r.out.empty(),
                        Describe(args, r) + "--- expected " + std::to_string(code) + ", " + err_prefix);
  };
  fails("get 99999", 1, "error: snapshot 99999 does not exist (the newest is ");
  fails("get notaseq", 1, "error: \"notaseq\" is not a snapshot seq, \"latest\", or an RFC 3339 time\n");
  fails("diff 99999", 1, "error: parameter \"from\": snapshot 99999 does not exist");
  fails("whatif nosuch", 1, "error: ");
  fails("audit nosuch -n shop", 1, "error: failoveraudits.kubefold.io \"nosuch\" not found\n");
  fails("clusters --bogus", 2, "The following argument was not expected: --bogus");
  fails("get 3 --at-time 2026-01-01T00:00:00Z", 2, "SNAPSHOT: give a SNAPSHOT or --at-vector/--at-time, not both");
  fails("diff", 2, "FROM is required");
  fails("clusters -o xml", 2, "--output: xml not in {json,yaml,wide}");
  fails("clusters --server-url http://127.0.0.1:" + std::to_string(ClosedPort()), 3,
        "error: cannot reach kubefold at http://127.0.0.1:", env);
  {
    const PluginRun r = Plugin(w, "get --help");
    BOOST_CHECK_EQUAL(r.code, 0);
    BOOST_CHECK(r.out.find("Usage: kubectl kubefold get [OPTIONS] [SNAPSHOT]") != std::string::npos);
    BOOST_CHECK(r.out.find("3  kubefold cannot be reached") != std::string::npos);
  }

  // kubectl finds the plugin on PATH and hands it the arguments.
  {
    const std::string plugin_dir = std::filesystem::path(KUBEFOLD_PLUGIN).parent_path();
    const Run k = Shell("PATH=" + plugin_dir + ":$PATH kubectl kubefold get " + sa + " " + url);
    BOOST_CHECK_MESSAGE(k.code == 0 && k.out == workloads, k.out);
    const Run l = Shell("PATH=" + plugin_dir + ":$PATH kubectl plugin list");
    BOOST_CHECK_MESSAGE(l.out.find(KUBEFOLD_PLUGIN) != std::string::npos, l.out);
  }
}

namespace {

// An IPv4 address of this host that is not loopback ("" when there is
// none): the Endpoints the service proxy follows may not be loopback, as
// in Kubernetes.
std::string HostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    const auto* in = reinterpret_cast<const sockaddr_in*>(i->ifa_addr);
    const uint32_t ip = ntohl(in->sin_addr.s_addr);
    if ((ip >> 24) == 127 || (ip >> 16) == 0xA9FE) continue;  // loopback, link-local
    char text[INET_ADDRSTRLEN];
    if (::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text) != nullptr) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

}  // namespace

BOOST_AUTO_TEST_CASE(through_the_service_proxy_the_users_token_reaches_kubefold_and_rbac_applies) {
  const std::string ip = HostAddress();
  if (ip.empty()) {
    BOOST_TEST_MESSAGE("no non-loopback IPv4 address on this host: the service-proxy case cannot run");
    return;
  }
  World w;
  w.Deploy("east", "web", 2);
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  // Not on localhost: every request needs a bearer token that the host
  // accepts and `get services/proxy` on kubefold (request_auth.h).
  auto op = StartServing(w, ip + ":0");
  const std::string port = std::to_string(op->api_port());
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  REQUIRE_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());

  // kubefold's Service, its pod and Endpoints, as a Deployment would have them.
  w.Apply("apiVersion: v1\nkind: Service\nmetadata:\n  name: kubefold\n  namespace: kubefold-system\nspec:\n"
          "  selector:\n    app: kubefold\n  ports:\n  - name: api\n    port: 8443\n    targetPort: " + port + "\n");
  w.Apply("apiVersion: v1\nkind: Pod\nmetadata:\n  name: kubefold-0\n  namespace: kubefold-system\n"
          "  labels:\n    app: kubefold\nspec:\n  containers:\n  - name: kubefold\n    image: kubefold\n");
  w.emulator->cluster("host").store().Mutate("/pods", "kubefold-system", "kubefold-0", [&](const emu::ObjectPtr& cur) {
    if (!cur) return emu::Mutation::None();
    emu::Json next = cur->json;
    next["status"] = {{"phase", "Running"}, {"podIP", ip}, {"podIPs", {{{"ip", ip}}}}};
    return emu::Mutation::Put(next);
  });
  w.Apply("apiVersion: v1\nkind: Endpoints\nmetadata:\n  name: kubefold\n  namespace: kubefold-system\nsubsets:\n"
          "- addresses:\n  - ip: " + ip + "\n    targetRef:\n      kind: Pod\n      namespace: kubefold-system\n"
          "      name: kubefold-0\n  ports:\n  - name: api\n    port: " + port + "\n");

  const std::string admin = w.dir + "/host.kubeconfig";
  const std::string proxied = "--service-scheme http --kubeconfig ";
  const std::string direct = "--server-url http://" + ip + ":" + port + " --token " + w.emulator->Info("host").token;
  const std::string no_kubeconfig = "KUBECONFIG=/nonexistent";

  // The admin's token, repeated in X-Kubefold-Authorization, passes both
  // checks; the answer is the one the API gives directly.
  const std::string seq = std::to_string(op->store().Current().seq());
  {
    const OJson via_proxy = ParseJsonOutput("get (proxy)", Plugin(w, proxied + admin + " get " + seq + " -o json"));
    const OJson straight = ParseJsonOutput("get (direct)", Plugin(w, direct + " get " + seq + " -o json", no_kubeconfig));
    BOOST_CHECK_EQUAL(via_proxy, straight);
    BOOST_CHECK_EQUAL(via_proxy["items"].size(), 1u);
    const PluginRun t = Plugin(w, proxied + admin + " get " + seq);
    BOOST_CHECK_EQUAL(t.out,
                      "CLUSTER   NAMESPACE   KIND         NAME   DESIRED   READY   AVAILABLE\n"
                      "east      shop        Deployment   web    2         2       2\n");
  }
  BOOST_CHECK(Eventually([&] {
    return ParseJsonOutput("clusters (proxy)", Plugin(w, proxied + admin + " clusters -o json")) ==
           ParseJsonOutput("clusters (direct)", Plugin(w, direct + " clusters -o json", no_kubeconfig));
  }, 20s));

  // Without a token kubefold refuses (401): exit 4.
  {
    const PluginRun r = Plugin(w, "--server-url http://" + ip + ":" + port + " clusters", no_kubeconfig);
    BOOST_CHECK_MESSAGE(r.code == 4 && r.err.starts_with("error: a bearer token is required"), Describe("", r));
  }
  // A user without RBAC: the API server refuses the proxy (403), and the
  // audits: exit 4.
  w.emulator->AddUser("host", emu::UserInfo{"alice", "", {}});
  const std::string alice = w.dir + "/host-alice.kubeconfig";
  for (const std::string args : {" clusters", " audits -n shop"}) {
    const PluginRun r = Plugin(w, proxied + alice + args);
    BOOST_CHECK_MESSAGE(r.code == 4 && r.err.starts_with("error: ") &&
                            r.err.find("User \"alice\" cannot") != std::string::npos,
                        Describe(args, r));
  }
  // A user allowed exactly `get services/proxy` on kubefold: the API server
  // lets the request through without its Authorization, kubefold checks the
  // repeated token with TokenReview and SubjectAccessReview. Both authorize
  // the name "SCHEME:SERVICE:PORT": one rule covers both checks.
  w.emulator->AddUser("host", emu::UserInfo{"bob", "", {}});
  w.Apply("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: kubefold-query\n"
          "  namespace: kubefold-system\nrules:\n- apiGroups: [\"\"]\n  resources: [services/proxy]\n"
          "  resourceNames: [\"http:kubefold:api\"]\n  verbs: [get]\n---\n"
          "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: bob-kubefold-query\n"
          "  namespace: kubefold-system\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n"
          "  name: kubefold-query\nsubjects:\n- kind: User\n  name: bob\n  apiGroup: rbac.authorization.k8s.io\n");
  {
    const PluginRun r = Plugin(w, proxied + w.dir + "/host-bob.kubeconfig get " + seq);
    BOOST_CHECK_MESSAGE(r.code == 0 && r.out.find("east      shop        Deployment   web") != std::string::npos,
                        Describe("get (bob)", r));
  }
  // No such Service, or nothing behind it: exit 3.
  {
    const PluginRun r = Plugin(w, proxied + admin + " --service nosuch clusters");
    BOOST_CHECK_MESSAGE(r.code == 3 &&
                            r.err.starts_with("error: cannot reach kubefold through the API server's service proxy: ") &&
                            r.err.find("\"nosuch\" not found") != std::string::npos,
                        Describe("--service nosuch", r));
    // version --wait (what the chart's helm test runs first): at once while
    // kubefold answers; while it cannot be reached, a retry every 2 s until
    // the time is up, then exit 3.
    const PluginRun up = Plugin(w, proxied + admin + " version --wait 30s");
    BOOST_CHECK_MESSAGE(up.code == 0 && up.out.find("Server Version: ") != std::string::npos &&
                            up.err.find("waiting for kubefold") == std::string::npos,
                        Describe("version --wait (up)", up));
    op->Stop();
    const PluginRun down = Plugin(w, proxied + admin + " clusters");
    BOOST_CHECK_MESSAGE(down.code == 3 && down.err.starts_with("error: cannot reach kubefold through the API "
                                                               "server's service proxy: "),
                        Describe("kubefold stopped", down));
    const auto waited_from = std::chrono::steady_clock::now();
    const PluginRun waited = Plugin(w, proxied + admin + " version --wait 5s");
    const auto waited_for = std::chrono::steady_clock::now() - waited_from;
    BOOST_CHECK_MESSAGE(waited.code == 3 && waited.err.find("waiting for kubefold: ") != std::string::npos &&
                            waited_for >= std::chrono::seconds(3) && waited_for < std::chrono::seconds(30),
                        Describe("version --wait (down)", waited));
  }
}
