// kubefold's HTTP endpoints against a running Operator on kube-emulator:
// every query API endpoint with exact answers, errors with their codes and
// the parameter they name, /metrics checked by promtool, the probes, and
// logs that never carry a token.
#define BOOST_TEST_MODULE api_test
#include <boost/test/unit_test.hpp>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/internal/rfc3339.h"
#include "operator/logger.h"
#include "tests/operator/world.h"

using namespace optest;

namespace {

std::string Escape(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

// An error answer: the code, and the parameter it names ("" for none).
void CheckError(const Reply& r, int code, const std::string& parameter, const std::string& words = "") {
  BOOST_CHECK_EQUAL(r.code, code);
  const Json j = r.json();
  BOOST_REQUIRE_MESSAGE(j.is_object(), r.body);
  BOOST_CHECK_EQUAL(j.value("kind", ""), "Error");
  BOOST_CHECK_EQUAL(j.value("code", 0), code);
  BOOST_CHECK_EQUAL(j.value("parameter", ""), parameter);
  BOOST_CHECK_MESSAGE(j.value("message", "").find(words) != std::string::npos, j.dump());
}

kubefold::OperatorOptions Serving(World& w, const std::string& identity = "op-1") {
  kubefold::OperatorOptions o = w.Options(identity);
  o.serving.api = *kubefold::ParseBindAddress("127.0.0.1:0", "api");
  o.serving.metrics = *kubefold::ParseBindAddress("127.0.0.1:0", "metrics");
  o.serving.probes = *kubefold::ParseBindAddress("127.0.0.1:0", "probes");
  o.serving.build = {"9.9.9", "abc123", "g++"};
  return o;
}

// (cluster, namespace, name) -> desired replicas, from an API item list.
View Items(const Json& items) {
  View v;
  for (const auto& i : items) v[{i["cluster"], i["namespace"], i["name"]}] = i.value("desiredReplicas", -1);
  return v;
}

}  // namespace

BOOST_AUTO_TEST_CASE(the_query_api_answers_clusters_snapshots_as_of_views_and_diffs_exactly) {
  World w;
  w.Deploy("east", "web", 2);
  w.Deploy("east", "api", 1, "api");
  w.Deploy("west", "cache", 3, "cache");
  RegisterAll(w);
  auto op = Start(w, Serving(w));
  const int port = op->api_port();
  BOOST_REQUIRE(port > 0);
  REQUIRE_WAITED(Eventually([&] { return AllReady(w) && Folded(op->store().Current()) == Served(w); }),
                 w.Log());

  // /version
  const Json version = Call(port, "/version").json();
  BOOST_CHECK_EQUAL(version.dump(), R"({"compiler":"g++","gitCommit":"abc123","version":"9.9.9"})");

  // /api/v1/clusters
  {
    const Reply r = Call(port, "/api/v1/clusters");
    BOOST_REQUIRE_EQUAL(r.code, 200);
    const Json j = r.json();
    BOOST_CHECK_EQUAL(j["kind"], "ClusterList");
    const state::Snapshot s = op->store().Current();
    BOOST_REQUIRE_EQUAL(j["items"].size(), 3u);
    std::map<std::string, int> expected{{"east", 2}, {"north", 0}, {"west", 1}};
    for (const auto& c : j["items"]) {
      const std::string name = c["name"];
      BOOST_CHECK_EQUAL(c["ready"], "True");
      BOOST_CHECK_EQUAL(c["watching"], true);
      BOOST_CHECK_EQUAL(c["synced"], true);
      BOOST_CHECK_EQUAL(c["registered"], true);
      BOOST_CHECK_EQUAL(c["workloads"].get<int>(), expected[name]);
      BOOST_CHECK(c.contains("readySince"));
      // The vector component is at least the one of the snapshot taken before the call.
      BOOST_CHECK_GE(c["vectorComponent"].get<uint64_t>(), s.vector().Get(name));
    }
  }

  // /api/v1/snapshots/latest, filters, full objects, pages
  {
    const Reply r = Call(port, "/api/v1/snapshots/latest");
    BOOST_REQUIRE_EQUAL(r.code, 200);
    const Json j = r.json();
    BOOST_REQUIRE_MESSAGE(j.is_object(), r.body);
    BOOST_CHECK_EQUAL(j["kind"], "Snapshot");
    const uint64_t seq = j["snapshot"]["seq"];
    auto snap = op->store().Get(seq);
    BOOST_REQUIRE(snap.ok());
    BOOST_CHECK(Items(j["items"]) == Folded(*snap));
    BOOST_CHECK_EQUAL(j["snapshot"]["workloads"].get<uint64_t>(), 3u);
    BOOST_CHECK_EQUAL(j["snapshot"]["vector"].dump(), snap->vector().ToJson());
    for (const auto& i : j["items"]) {
      BOOST_CHECK_EQUAL(i["group"], "apps");
      BOOST_CHECK_EQUAL(i["kind"], "Deployment");
      BOOST_CHECK(!i.contains("object"));
      BOOST_CHECK_EQUAL(i["counter"].get<uint64_t>(),
                        snap->Get(i["cluster"].get<std::string>(), "shop",
                                  state::WorkloadKeyView("apps", "Deployment", i["name"].get<std::string>()))
                            ->counter());
    }
    const Json east = Call(port, "/api/v1/snapshots/" + std::to_string(seq) + "?cluster=east&full=true").json();
    BOOST_REQUIRE_EQUAL(east["items"].size(), 2u);
    for (const auto& i : east["items"]) {
      BOOST_CHECK_EQUAL(i["cluster"], "east");
      BOOST_CHECK_EQUAL(i["object"]["metadata"]["name"], i["name"]);
      BOOST_CHECK(!i["object"]["metadata"].contains("managedFields"));
    }
    const Json none = Call(port, "/api/v1/snapshots/" + std::to_string(seq) + "?kind=StatefulSet").json();
    BOOST_CHECK_EQUAL(none["items"].size(), 0u);
    const Json health = Call(port, "/api/v1/snapshots/" + std::to_string(seq) + "?namespace=kubefold.io").json();
    BOOST_CHECK_EQUAL(health["items"].size(), 3u);  // one health record per cluster
    // Pages of one through `latest`: the token pins the snapshot.
    View paged;
    std::string token;
    size_t pages = 0;
    do {
      const Json page =
          Call(port, "/api/v1/snapshots/latest?limit=1" + (token.empty() ? "" : "&continue=" + Escape(token))).json();
      BOOST_REQUIRE_MESSAGE(page.is_object() && page["items"].size() <= 1, page.dump());
      for (const auto& [k, v] : Items(page["items"])) paged[k] = v;
      token = page.value("continue", "");
      ++pages;
    } while (!token.empty() && pages < 10);
    BOOST_CHECK_EQUAL(pages, 3u);
    BOOST_CHECK(paged == Folded(*snap));

    // As-of views: the vector of that snapshot, and its time.
    const Json at = Call(port, "/api/v1/snapshots/at?vector=" + Escape(snap->vector().ToJson())).json();
    BOOST_CHECK(Items(at["items"]) == Folded(*snap));
    BOOST_CHECK_EQUAL(at["snapshot"]["vector"].dump(), snap->vector().ToJson());
    BOOST_CHECK_EQUAL(at["snapshot"]["composed"], true);
    const Json at_time =
        Call(port, "/api/v1/snapshots/at?time=" + Escape(kube::internal::FormatRfc3339Micro(snap->time()))).json();
    BOOST_CHECK_GE(at_time["snapshot"]["seq"].get<uint64_t>(), seq);
    // Paging an as-of-time view: the time resolves to a published snapshot,
    // whose "seq:offset" tokens the at path takes back (and every page comes
    // from that one snapshot).
    const std::string at_time_path =
        "/api/v1/snapshots/at?time=" + Escape(kube::internal::FormatRfc3339Micro(snap->time()));
    Json paged_at = Json::array();
    std::string at_token;
    size_t at_pages = 0;
    do {
      const Json page = Call(port, at_time_path + "&limit=2" + (at_token.empty() ? "" : "&continue=" + at_token)).json();
      BOOST_REQUIRE(page.contains("items"));
      BOOST_CHECK_EQUAL(page["snapshot"]["seq"], at_time["snapshot"]["seq"]);
      for (const auto& item : page["items"]) paged_at.push_back(item);
      at_token = page.value("continue", "");
      ++at_pages;
    } while (!at_token.empty() && at_pages < 10);
    BOOST_CHECK_GE(at_pages, 2u);
    BOOST_CHECK(Items(paged_at) == Items(at_time["items"]));
    // A token of one path is refused on the other, naming the parameter.
    CheckError(Call(port, at_time_path + "&continue=at:2"), 400, "continue", "composed view");
    CheckError(Call(port, "/api/v1/snapshots/at?vector=" + Escape(snap->vector().ToJson()) + "&continue=" +
                              std::to_string(at_time["snapshot"]["seq"].get<uint64_t>()) + ":2"),
               400, "continue", "not to what these parameters select");
  }

  // /api/v1/snapshots: oldest first, paginated
  {
    const Json all = Call(port, "/api/v1/snapshots").json();
    BOOST_REQUIRE(all["items"].size() >= 2);
    BOOST_CHECK_EQUAL(all["latest"].get<uint64_t>(), all["items"].back()["seq"].get<uint64_t>());
    const Json first = Call(port, "/api/v1/snapshots?limit=1").json();
    BOOST_REQUIRE_EQUAL(first["items"].size(), 1u);
    BOOST_CHECK_EQUAL(first["items"][0]["seq"], all["items"][0]["seq"]);
    const Json second = Call(port, "/api/v1/snapshots?limit=1&continue=" + first["continue"].get<std::string>()).json();
    BOOST_CHECK_EQUAL(second["items"][0]["seq"], all["items"][1]["seq"]);
  }

  // /api/v1/diff: one of each kind of change, with the exact RFC 6902 patch.
  {
    const uint64_t from = op->store().Current().seq();
    auto scaled = w.members["east"]->Patch("/apis/apps/v1/namespaces/shop/deployments/web",
                                           R"({"spec":{"replicas":5}})", kube::PatchOptions{});
    BOOST_REQUIRE(scaled.ok());
    w.Deploy("west", "new", 1, "new");
    BOOST_REQUIRE(w.members["west"]->Delete("/apis/apps/v1/namespaces/shop/deployments/cache").ok());
    REQUIRE_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());
    const uint64_t to = op->store().Current().seq();
    const Reply r = Call(port, "/api/v1/diff?from=" + std::to_string(from) + "&to=" + std::to_string(to));
    BOOST_REQUIRE_EQUAL(r.code, 200);
    const Json d = r.json();
    BOOST_REQUIRE_MESSAGE(d.is_object(), r.body);
    BOOST_CHECK_EQUAL(d["from"]["seq"].get<uint64_t>(), from);
    BOOST_CHECK_EQUAL(d["to"]["seq"].get<uint64_t>(), to);
    BOOST_CHECK_EQUAL(d["summary"].dump(), R"({"added":1,"modified":1,"removed":1})");
    std::map<std::string, Json> by_name;
    for (const auto& c : d["changes"]) by_name[c["name"]] = c;
    BOOST_REQUIRE_EQUAL(by_name.size(), 3u);
    // By cluster, namespace and name, whatever order they were made in (west
    // added "new" before it removed "cache").
    std::vector<std::string> order;
    for (const auto& c : d["changes"]) order.push_back(c["cluster"].get<std::string>() + "/" + c["name"].get<std::string>());
    BOOST_CHECK_EQUAL(order.size(), 3u);
    BOOST_CHECK((order == std::vector<std::string>{"east/web", "west/cache", "west/new"}));
    BOOST_CHECK_EQUAL(by_name["new"]["type"], "added");
    BOOST_CHECK_EQUAL(by_name["new"]["object"]["metadata"]["name"], "new");
    BOOST_CHECK_EQUAL(by_name["cache"]["type"], "removed");
    BOOST_CHECK_EQUAL(by_name["cache"]["object"]["spec"]["replicas"], 3);
    const Json& web = by_name["web"];
    BOOST_CHECK_EQUAL(web["type"], "modified");
    BOOST_CHECK_EQUAL(web["cluster"], "east");
    BOOST_CHECK_LT(web["fromCounter"].get<uint64_t>(), web["toCounter"].get<uint64_t>());
    // The patch turns the old object into the new one.
    auto before = op->store().Get(from);
    auto after = op->store().Get(to);
    BOOST_REQUIRE(before.ok() && after.ok());
    const Json old_web = Json::parse(before->Get("east", "shop", {"apps", "Deployment", "web"})->object_json());
    const Json new_web = Json::parse(after->Get("east", "shop", {"apps", "Deployment", "web"})->object_json());
    BOOST_CHECK_EQUAL(old_web.patch(web["patch"]).dump(), new_web.dump());
    bool replicas = false;
    for (const auto& op_ : web["patch"]) replicas |= op_["path"] == "/spec/replicas" && op_["value"] == 5;
    BOOST_CHECK_MESSAGE(replicas, web["patch"].dump());
    // Filters: only west; only east; no patches.
    const Json west = Call(port, "/api/v1/diff?from=" + std::to_string(from) + "&to=latest&cluster=west").json();
    BOOST_CHECK_EQUAL(west["summary"].dump(), R"({"added":1,"modified":0,"removed":1})");
    const Json bare = Call(port, "/api/v1/diff?from=" + std::to_string(from) + "&to=" + std::to_string(to) +
                                     "&cluster=east&patch=false")
                          .json();
    BOOST_REQUIRE_EQUAL(bare["changes"].size(), 1u);
    BOOST_CHECK(!bare["changes"][0].contains("patch"));
    // Equal snapshots: no changes.
    const Json same = Call(port, "/api/v1/diff?from=" + std::to_string(to) + "&to=" + std::to_string(to)).json();
    BOOST_CHECK_EQUAL(same["changes"].size(), 0u);
  }

  // Errors name what is wrong.
  const uint64_t newest = op->store().Current().seq();
  CheckError(Call(port, "/api/v1/diff?from=abc"), 400, "from", "\"abc\" is not a snapshot seq");
  CheckError(Call(port, "/api/v1/diff?to=latest"), 400, "from", "a snapshot is required");
  CheckError(Call(port, "/api/v1/diff?from=1&to=" + std::to_string(newest + 1000)), 404, "to", "does not exist");
  CheckError(Call(port, "/api/v1/diff?from=1&colour=red"), 400, "colour", "unknown parameter");
  CheckError(Call(port, "/api/v1/diff?from=1&from=2"), 400, "from", "more than once");
  CheckError(Call(port, "/api/v1/diff?from=1&patch=maybe"), 400, "patch", "not a boolean");
  CheckError(Call(port, "/api/v1/snapshots/banana"), 400, "", "not a snapshot seq");
  CheckError(Call(port, "/api/v1/snapshots/" + std::to_string(newest + 1000)), 404, "", "does not exist");
  CheckError(Call(port, "/api/v1/snapshots/latest?limit=0"), 400, "limit", "positive integer");
  CheckError(Call(port, "/api/v1/snapshots/latest?vector=east=1"), 400, "vector", "applies to /api/v1/snapshots/at");
  CheckError(Call(port, "/api/v1/snapshots/at"), 400, "vector", "exactly one");
  CheckError(Call(port, "/api/v1/snapshots/at?vector=east%3Dx"), 400, "vector", "not a counter");
  CheckError(Call(port, "/api/v1/snapshots/at?vector=mars%3D1"), 400, "vector", "mars");
  CheckError(Call(port, "/api/v1/snapshots/at?time=yesterday"), 400, "time", "RFC 3339");
  CheckError(Call(port, "/api/v1/snapshots/latest?continue=zz"), 400, "continue", "not a token");
  CheckError(Call(port, "/api/v1/whatif"), 400, "cluster", "required");
  CheckError(Call(port, "/api/v1/whatif?cluster=mars"), 404, "cluster", "no MemberCluster named \"mars\"");
  CheckError(Call(port, "/api/v1/audits/shop/nope/diff"), 404, "", "no FailoverAudit shop/nope");
  CheckError(Call(port, "/api/v1/nothing-here"), 404, "", "no such path");
  CheckError(Call(port, "/api/v1/clusters", "POST"), 405, "", "read-only");
}

BOOST_AUTO_TEST_CASE(retention_gives_410_whatif_predicts_and_an_audit_diff_shows_the_failover) {
  World w;
  w.Deploy("east", "web", 2);
  w.MarkAvailable("east", "web");
  RegisterAll(w);
  kubefold::OperatorOptions o = Serving(w);
  o.history.keep_last = 3;
  o.history.keep_for = 0ms;
  auto op = Start(w, std::move(o));
  const int port = op->api_port();
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  w.Apply(PolicyYaml("Manual"));
  REQUIRE_WAITED(Eventually([&] { return FirstWorkload(w.Policy("web"), "activeCluster") == "east"; }),
                 w.Log());

  // Snapshot 1 is long gone from a 3-deep history.
  for (int replicas = 3; replicas < 6; ++replicas) {
    auto r = w.members["west"]->Create("/apis/apps/v1/namespaces/shop/deployments",
                                       Json{{"apiVersion", "apps/v1"},
                                            {"kind", "Deployment"},
                                            {"metadata", {{"name", "filler-" + std::to_string(replicas)}}},
                                            {"spec",
                                             {{"replicas", replicas},
                                              {"selector", {{"matchLabels", {{"app", "f"}}}}},
                                              {"template",
                                               {{"metadata", {{"labels", {{"app", "f"}}}}},
                                                {"spec", {{"containers", {{{"name", "f"}, {"image", "f"}}}}}}}}}}}
                                           .dump());
    BOOST_REQUIRE(r.ok());
  }
  REQUIRE_WAITED(Eventually([&] { return Folded(op->store().Current()) == Served(w); }), w.Log());
  BOOST_REQUIRE_GT(op->store().Current().seq(), 6u);
  CheckError(Call(port, "/api/v1/snapshots/1"), 410, "", "dropped by retention");
  CheckError(Call(port, "/api/v1/diff?from=1"), 410, "from", "dropped by retention");

  // What if east failed now: web would move to west (the next Ready cluster).
  {
    const Reply r = Call(port, "/api/v1/whatif?cluster=east");
    BOOST_REQUIRE_EQUAL(r.code, 200);
    const Json j = r.json();
    BOOST_CHECK_EQUAL(j["policies"], 1);
    BOOST_REQUIRE_EQUAL(j["moves"].size(), 1u);
    const Json& m = j["moves"][0];
    BOOST_CHECK_EQUAL(m["policy"], "shop/web");
    BOOST_CHECK_EQUAL(m["kind"], "Deployment");
    BOOST_CHECK_EQUAL(m["name"], "web");
    BOOST_CHECK_EQUAL(m["from"], "east");
    BOOST_CHECK_EQUAL(m["to"], "west");
    BOOST_CHECK_EQUAL(m["action"], "Apply");
    // Nothing runs on west: no move if west failed.
    const Json west = Call(port, "/api/v1/whatif?cluster=west").json();
    BOOST_CHECK_EQUAL(west["moves"].size(), 0u);
    BOOST_CHECK(w.Audits().empty());  // what-if changed nothing
    BOOST_CHECK(!w.Served("west", "web"));
  }

  // The real thing: east cut off, web applied to west, available there.
  w.emulator->server("east").Partition();
  REQUIRE_WAITED(Eventually([&] { return w.Served("west", "web") != nullptr; }), w.Log());
  w.MarkAvailable("west", "web");
  REQUIRE_WAITED(Eventually([&] {
                   const Json a = w.Audits();
                   return a.size() == 1 && Phase(a[0]) == "Completed";
                 }),
                 w.Audits().dump() + w.Log());
  const Json audit = w.Audits()[0];
  const std::string name = audit["metadata"]["name"];
  const Reply r = Call(port, "/api/v1/audits/shop/" + name + "/diff");
  BOOST_REQUIRE_EQUAL(r.code, 200);
  const Json d = r.json();
  BOOST_REQUIRE_MESSAGE(d.is_object(), r.body);
  BOOST_CHECK_EQUAL(d["audit"]["name"], name);
  BOOST_CHECK_EQUAL(d["audit"]["phase"], "Completed");
  BOOST_CHECK_EQUAL(d["audit"]["complete"], true);
  BOOST_CHECK_EQUAL(d["from"]["seq"], audit["spec"]["before"]["seq"]);
  BOOST_CHECK_EQUAL(d["to"]["seq"], audit["spec"]["after"]["seq"]);
  // The audit's change summary is the diff's.
  const Json& cs = audit["spec"]["changeSummary"];
  BOOST_CHECK_EQUAL(d["summary"]["added"], cs["added"]);
  BOOST_CHECK_EQUAL(d["summary"]["removed"], cs["removed"]);
  BOOST_CHECK_EQUAL(d["summary"]["modified"], cs["modified"]);
  bool west_web_added = false;
  for (const auto& c : d["changes"]) {
    west_web_added |= c["cluster"] == "west" && c["name"] == "web" && c["type"] == "added" &&
                      c["object"]["metadata"]["labels"]["kubefold.io/failover-copy"] == "true";
  }
  BOOST_CHECK_MESSAGE(west_web_added, d.dump());
  // The pinned snapshots are listed as such.
  const Json list = Call(port, "/api/v1/snapshots?limit=1000").json();
  size_t pinned = 0;
  for (const auto& s : list["items"]) {
    if (s.contains("pinnedBy")) {
      BOOST_CHECK_EQUAL(s["pinnedBy"][0], "shop/" + name);
      ++pinned;
    }
  }
  BOOST_CHECK_EQUAL(pinned, 2u);
  w.emulator->server("east").Heal();
}

BOOST_AUTO_TEST_CASE(metrics_pass_promtool_and_the_probes_answer) {
  World w;
  w.Deploy("east", "web", 2);
  RegisterAll(w);
  auto op = Start(w, Serving(w));
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  REQUIRE_WAITED(Eventually([&] { return Call(op->probe_port(), "/readyz").code == 200; }), w.Log());
  BOOST_CHECK_EQUAL(Call(op->probe_port(), "/healthz").body, "ok\n");
  BOOST_CHECK_EQUAL(Call(op->probe_port(), "/nope").code, 404);
  (void)Call(op->api_port(), "/api/v1/clusters");
  (void)Call(op->api_port(), "/api/v1/diff?from=zz");

  // A request is counted once its answer is written, which may be just
  // after the client has read it: scraped until both are counted.
  Reply m;
  Eventually([&] {
    m = Call(op->metrics_port(), "/metrics");
    return m.code == 200 &&
           m.body.find("kubefold_api_requests_total{route=\"/api/v1/clusters\",code=\"200\"} 1") != std::string::npos &&
           m.body.find("kubefold_api_requests_total{route=\"/api/v1/diff\",code=\"400\"} 1") != std::string::npos;
  });
  BOOST_REQUIRE_EQUAL(m.code, 200);
  BOOST_CHECK_EQUAL(kube::FindHeader(m.headers, "Content-Type"), "text/plain; version=0.0.4; charset=utf-8");
  const std::string path = w.dir + "/metrics.txt";
  std::ofstream(path) << m.body;
  const Run lint = Shell("promtool check metrics < " + path);
  BOOST_CHECK_MESSAGE(lint.code == 0 && lint.out.empty(), "promtool: " + lint.out);
  for (const char* want :
       {"kubefold_update_delay_seconds_bucket{le=\"+Inf\"}", "kubefold_snapshot_reads_total{source=\"current\"}",
        "kubefold_version_fragmentation_ratio", "kubefold_retained_snapshots", "kubefold_retained_bytes",
        "kubefold_workloads{cluster=\"east\"} 1", "kubefold_cluster_ready{cluster=\"east\"} 1",
        "kubefold_watch_events_total{cluster=\"east\",kind=\"Deployment\"}",
        "kubefold_watch_relists_total{cluster=\"west\",kind=\"StatefulSet\"}", "kubefold_audits{phase=\"Completed\"} 0",
        "kubefold_failover_duration_seconds_count 0", "kubefold_api_requests_total{route=\"/api/v1/clusters\",code=\"200\"} 1",
        "kubefold_api_requests_total{route=\"/api/v1/diff\",code=\"400\"} 1",
        "controller_runtime_reconcile_total{controller=\"membercluster\",result=\"success\"}",
        "controller_runtime_reconcile_errors_total{controller=\"failover\"}",
        "controller_runtime_reconcile_time_seconds_bucket{controller=\"membercluster\",le=\"0.005\"}",
        "workqueue_depth{controller=\"failover\",name=\"failover\"}",
        "workqueue_adds_total{controller=\"membercluster\",name=\"membercluster\"}",
        "workqueue_retries_total{controller=\"failover\",name=\"failover\"}",
        "workqueue_queue_duration_seconds_count{controller=\"membercluster\",name=\"membercluster\"}",
        "workqueue_work_duration_seconds_count{controller=\"failover\",name=\"failover\"}",
        "rest_client_requests_total{code=\"200\",method=\"GET\",host=\"127.0.0.1:",
        "leader_election_master_status{name=\"kubefold\"} 1", "process_resident_memory_bytes",
        "process_cpu_seconds_total", "kubefold_build_info{"}) {
    BOOST_CHECK_MESSAGE(m.body.find(want) != std::string::npos, std::string("missing: ") + want);
  }
}

BOOST_AUTO_TEST_CASE(log_lines_never_carry_credentials_and_json_lines_have_fields) {
  kubefold::Logger json(kubefold::LogFormat::kJson, 0);
  const std::string token = "eyJhbGciOiJSUzI1NiJ9.secret-part.sig";
  for (const std::string& m :
       {"request failed: Authorization: Bearer " + token, "kubeconfig {\"token\":\"" + token + "\"}",
        "users: token: " + token, "client-key-data: " + token, "url ?token=" + token + "&x=1"}) {
    const std::string line = json.Format("info", m, {{"cluster", "east"}});
    BOOST_CHECK_MESSAGE(line.find(token) == std::string::npos, line);
    BOOST_CHECK_MESSAGE(line.find("[REDACTED]") != std::string::npos, line);
  }
  const Json j = Json::parse(json.Format("error", "member cluster east: status: unavailable: down", {{"cluster", "east"}}));
  BOOST_CHECK_EQUAL(j["level"], "error");
  BOOST_CHECK_EQUAL(j["cluster"], "east");
  BOOST_CHECK_EQUAL(j["msg"], "member cluster east: status: unavailable: down");
  BOOST_CHECK(j.contains("ts"));
  kubefold::Logger text(kubefold::LogFormat::kText, 0);
  const std::string t = text.Format("info", "hello", {});
  BOOST_CHECK_MESSAGE(t.size() > 25 && t.substr(t.size() - 12) == " info  hello", t);
}

BOOST_AUTO_TEST_CASE(the_kubefold_binary_logs_json_and_serves_no_token_and_takes_flags_from_the_environment) {
  World w;
  w.Deploy("east", "web", 1);
  RegisterAll(w);
  const std::string log = w.dir + "/kubefold.log";
  // Flags through the environment, as the chart sets them.
  const std::string cmd = "(KUBEFOLD_LOG_FORMAT=json KUBEFOLD_V=2 KUBEFOLD_API_BIND_ADDRESS=127.0.0.1:0 "
                          "KUBEFOLD_METRICS_BIND_ADDRESS=127.0.0.1:0 KUBEFOLD_HEALTH_PROBE_BIND_ADDRESS=127.0.0.1:0 "
                          "KUBEFOLD_LEADER_ELECT=false KUBEFOLD_STATUS_PERIOD=500ms "
                          "timeout -s TERM 20 " KUBEFOLD_BINARY " --kubeconfig " + w.dir + "/host.kubeconfig 2> " + log + ")";
  // Not Shell: Boost.Test's macros are not for other threads.
  std::thread runner([&] { (void)!std::system(cmd.c_str()); });
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  // --v=2 logs each API request: ask one, on the port the log names.
  int api_port = 0;
  BOOST_CHECK(Eventually([&] {
    std::ifstream in(log);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("serving the query API on 127.0.0.1:");
    if (at == std::string::npos) return false;
    api_port = std::atoi(text.c_str() + at + std::strlen("serving the query API on 127.0.0.1:"));
    return api_port > 0;
  }, 20s));
  if (api_port > 0) BOOST_CHECK_EQUAL(Call(api_port, "/api/v1/clusters?x=1").code, 400);
  // What it serves carries no credential either: the members' tokens are in
  // the kubeconfig Secrets kubefold read.
  std::string served;
  if (api_port > 0) {
    for (const char* path : {"/api/v1/clusters", "/api/v1/snapshots", "/api/v1/snapshots/latest?full=true",
                             "/api/v1/diff?from=0&to=latest", "/version"}) {
      const Reply r = Call(api_port, path);
      BOOST_CHECK_MESSAGE(r.code == 200, std::string(path) + ": " + std::to_string(r.code) + " " + r.body);
      served += r.body;
    }
  }
  {
    std::ifstream log_in(log);
    const std::string text((std::istreambuf_iterator<char>(log_in)), std::istreambuf_iterator<char>());
    const size_t at = text.find("serving metrics on 127.0.0.1:");
    BOOST_REQUIRE(at != std::string::npos);
    const Reply m = Call(std::atoi(text.c_str() + at + std::strlen("serving metrics on 127.0.0.1:")), "/metrics");
    BOOST_CHECK_EQUAL(m.code, 200);
    served += m.body;
  }
  runner.join();
  std::ifstream in(log);
  std::string line, all;
  size_t lines = 0;
  bool serving_api = false, cluster_field = false, request_logged = false;
  while (std::getline(in, line)) {
    all += line + "\n";
    const Json j = Json::parse(line, nullptr, false);
    BOOST_REQUIRE_MESSAGE(j.is_object() && j.contains("ts") && j.contains("level") && j.contains("msg"), line);
    serving_api |= j["msg"].get<std::string>().starts_with("serving the query API on 127.0.0.1:");
    cluster_field |= j.value("cluster", "") == "east";
    request_logged |= j["msg"].get<std::string>().starts_with("api GET /api/v1/clusters 400 ") &&
                      j.value("controller", "") == "api";
    ++lines;
  }
  BOOST_CHECK_GT(lines, 3u);
  BOOST_CHECK_MESSAGE(serving_api, all);
  BOOST_CHECK_MESSAGE(cluster_field, all);
  BOOST_CHECK_MESSAGE(request_logged, all);
  for (const auto& c : {"host", "east", "west", "north"}) {
    const std::string token = w.emulator->Info(c).token;
    BOOST_REQUIRE(!token.empty());
    BOOST_CHECK_MESSAGE(all.find(token) == std::string::npos, std::string("the log carries the token of ") + c);
    BOOST_CHECK_MESSAGE(served.find(token) == std::string::npos,
                        std::string("the API or /metrics serves the token of ") + c);
  }
  BOOST_CHECK_GT(served.size(), 1000u);
}

BOOST_AUTO_TEST_CASE(off_localhost_a_bearer_token_is_checked_with_token_and_subject_access_reviews) {
  World w;
  RegisterAll(w);
  kubefold::OperatorOptions o = Serving(w);
  o.serving.api = *kubefold::ParseBindAddress(":0", "api");          // every interface: guarded
  o.serving.metrics = *kubefold::ParseBindAddress("0.0.0.0:0", "metrics");
  o.leader.lease_namespace = "kubefold-system";
  auto op = Start(w, std::move(o));
  REQUIRE_WAITED(Eventually([&] { return AllReady(w); }), w.Log());
  const std::string alice = w.emulator->AddUser("host", emu::UserInfo{"alice", "u-alice", {"dev"}});
  const std::string bob = w.emulator->AddUser("host", emu::UserInfo{"bob", "u-bob", {}});
  const std::string prom = w.emulator->AddUser("host", emu::UserInfo{"prometheus", "u-prom", {"monitoring"}});
  // bob may use the API (get services/proxy on the kubefold Service); the
  // monitoring group may scrape /metrics.
  w.Apply(R"(apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: kubefold-query, namespace: kubefold-system}
rules:
- apiGroups: [""]
  resources: [services/proxy]
  resourceNames: ["http:kubefold:api"]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: kubefold-query-bob, namespace: kubefold-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: kubefold-query}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: User, name: bob}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: kubefold-metrics-reader}
rules:
- nonResourceURLs: [/metrics]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: kubefold-metrics-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: kubefold-metrics-reader}
subjects:
- {apiGroup: rbac.authorization.k8s.io, kind: Group, name: monitoring}
)");
  const int api = op->api_port();
  const int metrics = op->metrics_port();
  auto bearer = [](const std::string& t) { return kube::Headers{{"Authorization", "Bearer " + t}}; };

  CheckError(Call(api, "/api/v1/clusters"), 401, "", "a bearer token is required");
  const Reply no_token = Call(api, "/api/v1/clusters");
  BOOST_CHECK_EQUAL(kube::FindHeader(no_token.headers, "WWW-Authenticate"), "Bearer");
  CheckError(Call(api, "/api/v1/clusters", "GET", bearer("not-a-token")), 401, "", "not accepted");
  CheckError(Call(api, "/api/v1/clusters", "GET", bearer(alice)), 403, "",
             "user \"alice\" may not get services/proxy \"http:kubefold:api\" in the namespace \"kubefold-system\"");
  const Reply ok = Call(api, "/api/v1/clusters", "GET", bearer(bob));
  BOOST_CHECK_EQUAL(ok.code, 200);
  BOOST_CHECK_EQUAL(ok.json()["items"].size(), 3u);
  // Through the API server's service proxy the token comes in its own header.
  BOOST_CHECK_EQUAL(Call(api, "/api/v1/clusters", "GET", {{"X-Kubefold-Authorization", "Bearer " + bob}}).code, 200);
  // Answers are cached briefly: bob keeps his access for the TTL even after
  // the binding goes, and loses it after.
  w.Kubectl("-n kubefold-system delete rolebinding kubefold-query-bob");
  CHECK_WAITED(Eventually([&] { return Call(api, "/api/v1/clusters", "GET", bearer(bob)).code == 403; }, 30s),
               "bob's access ends once the cached answer expires");

  // /metrics: a plain-text 401/403, 200 for the monitoring group.
  BOOST_CHECK_EQUAL(Call(metrics, "/metrics").code, 401);
  BOOST_CHECK_EQUAL(Call(metrics, "/metrics", "GET", bearer(alice)).code, 403);
  const Reply scraped = Call(metrics, "/metrics", "GET", bearer(prom));
  BOOST_CHECK_EQUAL(scraped.code, 200);
  BOOST_CHECK(scraped.body.find("kubefold_snapshot_seq") != std::string::npos);
  BOOST_CHECK_MESSAGE(w.Log().find(bob) == std::string::npos && w.Log().find(alice) == std::string::npos,
                      "tokens never reach the log");
}
