// The REST client (and, for the old-server 410, the reflector) against
// kube-emulator in-process, over real HTTPS: the client items of the wire
// spec's §8 checklist that the unit tests check only against fakes — the
// `Gone` variant of an expired watch (§8.17, §8.24), 409 on a stale PUT and
// the caller's re-read (§8.30), JSON and merge patch (§8.32), server-side
// apply (§8.31), insecure-skip-tls-verify (§8.35), 429 with Retry-After as
// plain text and as JSON (§8.29) and the client-side rate limit (§8.37).
//
// Every wait polls with a deadline; the only sleeps are the client's own
// (Retry-After, the token bucket), whose lengths are what is asserted.
#define BOOST_TEST_MODULE rest_conformance_test
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/reflector.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "tests/controllers/emulator_client.h"
#include "tests/controllers/kube/test_util.h"
#include "tests/emulator/emulator.h"

using namespace kubefold::kube;
using namespace std::chrono_literals;
namespace emu = kubefold::emulator;
using kubefold::StatusCode;
using kubefold::kube::testing::Describe;
using kubefold::testing::Eventually;

namespace {

const ResourceType kDeployments{"apps", "v1", "Deployment"};
const std::string kCollection = "/apis/apps/v1/namespaces/default/deployments";

std::string PathOf(const std::string& name) { return kCollection + "/" + name; }

// A Deployment the emulator validates; no managedFields (apply refuses them).
emu::Json Deployment(const std::string& name, int replicas, const std::string& image = "nginx:1.27") {
  return emu::Json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
                          R"("},"spec":{"replicas":)" + std::to_string(replicas) +
                          R"(,"selector":{"matchLabels":{"app":")" + name +
                          R"("}},"template":{"metadata":{"labels":{"app":")" + name +
                          R"("}},"spec":{"containers":[{"name":"main","image":")" + image + R"("}]}}}})");
}

PatchOptions Options(PatchType type, std::string field_manager = "", bool force = false) {
  PatchOptions o;
  o.type = type;
  o.field_manager = std::move(field_manager);
  o.force = force;
  return o;
}

// A RestClient over the real transport that records the HTTP status of
// every request it sends (the verbs return only the body) and the
// transport's warnings.
class RecordingClient {
 public:
  explicit RecordingClient(const RestConfig& config, RestClientOptions options = {.qps = 1000, .burst = 1000}) {
    auto transport = NewHttpTransport(config, {.warn = [this](std::string_view w) {
                                                 std::lock_guard lock(mu_);
                                                 warnings_.emplace_back(w);
                                               }});
    if (!transport.ok()) throw std::runtime_error(transport.status().ToString());
    auto observed = ObserveTransport(std::move(*transport), [this](std::string_view, int status, std::chrono::nanoseconds) {
      std::lock_guard lock(mu_);
      statuses_.push_back(status);
    });
    rest_ = std::make_unique<RestClient>(std::move(observed),
                                         std::shared_ptr<TokenSource>(NewTokenSource(config)), options);
  }
  RestClient& rest() { return *rest_; }
  std::vector<int> statuses() const {
    std::lock_guard lock(mu_);
    return statuses_;
  }
  int last_status() const {
    std::lock_guard lock(mu_);
    return statuses_.empty() ? -1 : statuses_.back();
  }
  std::vector<std::string> warnings() const {
    std::lock_guard lock(mu_);
    return warnings_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<int> statuses_;          // Guarded by mu_
  std::vector<std::string> warnings_;  // Guarded by mu_
  std::unique_ptr<RestClient> rest_;
};

// One emulated cluster over HTTPS and a recording client for it.
struct Fixture {
  kubefold::kube::testing::TempDir dir;
  std::unique_ptr<emu::Emulator> emulator;
  RestConfig config;
  std::unique_ptr<RecordingClient> client;

  explicit Fixture(emu::ClusterOptions cluster = {}) {
    emu::EmulatorOptions options;
    options.clusters = {"c1"};
    options.dir = dir.path();
    options.cluster = cluster;
    emulator = std::make_unique<emu::Emulator>(options);
    config = kubefold::testing::EmulatorConfig(*emulator, "c1");
    client = std::make_unique<RecordingClient>(config);
  }
  emu::Cluster& cluster() { return emulator->cluster("c1"); }
  RestClient& rest() { return client->rest(); }

  void Create(const emu::Json& object) {
    auto r = rest().Create(kCollection, object.dump());
    BOOST_REQUIRE_MESSAGE(r.ok(), Describe(r.status()));
  }
  emu::Json Get(const std::string& name) {
    auto r = rest().Get(PathOf(name));
    BOOST_REQUIRE_MESSAGE(r.ok(), Describe(r.status()));
    return emu::Json::parse(*r);
  }
};

// `object` without what every write moves on its own (resourceVersion,
// generation, managedFields) and without status, for comparing the rest.
emu::Json Comparable(emu::Json object) {
  object["metadata"].erase("resourceVersion");
  object["metadata"].erase("generation");
  object["metadata"].erase("managedFields");
  object.erase("status");
  return object;
}

// manager -> the fieldsV1 it owns, from metadata.managedFields.
std::map<std::string, emu::Json> ManagedFields(const emu::Json& object) {
  std::map<std::string, emu::Json> out;
  for (const auto& entry : object["metadata"].value("managedFields", emu::Json::array())) {
    out[entry.value("manager", "")] = entry.value("fieldsV1", emu::Json::object());
  }
  return out;
}

bool OwnsReplicas(const emu::Json& fields) {
  return fields.contains("f:spec") && fields["f:spec"].contains("f:replicas");
}

// The reflector's output: every event in order, and the objects of the last
// replace (name -> resourceVersion and desired replicas).
class Sink {
 public:
  void Apply(ReflectorEvent&& e) {
    std::lock_guard lock(mu_);
    if (e.type == ReflectorEventType::kReplace) {
      ++replaces_;
      last_replace_.clear();
      for (const auto& o : e.objects) {
        last_replace_[o.workload.key.name] = {o.resource_version, o.workload.summary.desired_replicas};
      }
    } else if (e.type == ReflectorEventType::kSynced) {
      ++synced_;
    }
  }
  int replaces() const {
    std::lock_guard lock(mu_);
    return replaces_;
  }
  int synced() const {
    std::lock_guard lock(mu_);
    return synced_;
  }
  std::map<std::string, std::pair<std::string, int>> last_replace() const {
    std::lock_guard lock(mu_);
    return last_replace_;
  }

 private:
  mutable std::mutex mu_;
  int replaces_ = 0;
  int synced_ = 0;
  std::map<std::string, std::pair<std::string, int>> last_replace_;
};

std::map<std::string, std::pair<std::string, int>> ServerObjects(Fixture& f) {
  std::map<std::string, std::pair<std::string, int>> out;
  auto list = emu::Json::parse(*f.rest().Get(kCollection));
  for (const auto& item : list["items"]) {
    out[item["metadata"]["name"].get<std::string>()] = {item["metadata"]["resourceVersion"].get<std::string>(),
                                                       item["spec"]["replicas"].get<int>()};
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(an_in_stream_410_gone_from_an_old_server_relists_and_replaces_with_the_current_objects) {
  emu::ClusterOptions old_server;
  old_server.expired_reason = "Gone";  // as servers before 1.18 word a compacted watch
  Fixture f(old_server);
  f.Create(Deployment("keep", 1));
  f.Create(Deployment("gone", 1));

  Sink sink;
  std::mutex log_mu;
  std::string log;
  ReflectorOptions options;
  options.type = kDeployments;
  options.resource = "deployments";
  options.namespace_name = "default";
  options.backoff.initial = 20ms;
  options.backoff.cap = 200ms;
  ReflectorHooks hooks;
  hooks.sink = [&](ReflectorEvent&& e) { sink.Apply(std::move(e)); };
  hooks.authorize = [&](HttpRequest& r) { return f.rest().Authorize(r); };
  hooks.throttle = [&] { f.rest().Throttle(); };
  hooks.log = [&](std::string_view line) {
    std::lock_guard lock(log_mu);
    log.append(line).append("\n");
  };
  auto Log = [&] {
    std::lock_guard lock(log_mu);
    return log;
  };
  Reflector reflector(f.rest().transport(), options, hooks);
  std::thread runner([&] { reflector.Run(); });
  struct Join {
    Reflector& r;
    std::thread& t;
    ~Join() {
      r.Stop();
      t.join();
    }
  } join{reflector, runner};

  BOOST_REQUIRE(Eventually([&] { return sink.synced() == 1 && f.cluster().open_watches() == 1; }, 10s));
  BOOST_REQUIRE_EQUAL(sink.replaces(), 1);
  // The watch hears nothing while history changes and is compacted; when it
  // wakes its resume point is gone and the server says so in the stream.
  f.cluster().SetStallWatches(true);
  BOOST_REQUIRE(f.rest().Patch(PathOf("keep"), R"({"spec":{"replicas":3}})", {}).ok());
  BOOST_REQUIRE(f.rest().Delete(PathOf("gone")).ok());
  f.Create(Deployment("new", 2));
  f.cluster().Compact();
  f.cluster().SetStallWatches(false);

  REQUIRE_WAITED(Eventually([&] { return sink.replaces() == 2 && sink.synced() == 2; }, 10s), Log());
  const auto stats = reflector.stats();
  BOOST_CHECK_EQUAL(stats.expired, 1u);
  BOOST_CHECK_EQUAL(stats.lists, 2u);
  const auto replaced = sink.last_replace();
  const auto server = ServerObjects(f);
  BOOST_CHECK(replaced == server);
  BOOST_REQUIRE_EQUAL(replaced.size(), 2u);
  BOOST_CHECK_EQUAL(replaced.at("keep").second, 3);
  BOOST_CHECK_EQUAL(replaced.at("new").second, 2);
  BOOST_CHECK_EQUAL(replaced.count("gone"), 0u);
  BOOST_CHECK_MESSAGE(Log().find("HTTP 410 Gone: too old resource version: ") != std::string::npos, Log());
  // The new watch resumes from the relist's snapshot.
  const std::string snapshot = std::to_string(f.cluster().store().CurrentRv());
  CHECK_WAITED(Eventually([&] { return reflector.resume_version() == snapshot; }, 5s),
               "resume " << reflector.resume_version() << " want " << snapshot);
}

// No retry-on-conflict helper exists in controllers/kube: this is the
// caller's re-read-and-retry, as client-go's RetryOnConflict would do it.
BOOST_AUTO_TEST_CASE(a_put_with_a_stale_resource_version_is_a_conflict_and_a_reread_retry_succeeds) {
  Fixture f;
  f.Create(Deployment("x", 1));
  const emu::Json stale = f.Get("x");
  BOOST_REQUIRE(f.rest().Patch(PathOf("x"), R"({"spec":{"replicas":2}})", {}).ok());
  const emu::Json current = f.Get("x");
  BOOST_REQUIRE_NE(stale["metadata"]["resourceVersion"], current["metadata"]["resourceVersion"]);

  emu::Json edit = stale;
  edit["spec"]["replicas"] = 5;
  auto put = f.rest().Update(PathOf("x"), edit.dump());
  BOOST_REQUIRE(!put.ok());
  BOOST_CHECK_EQUAL(f.client->last_status(), 409);
  BOOST_CHECK_MESSAGE(put.status().code() == StatusCode::kConflict, Describe(put.status()));
  BOOST_CHECK_EQUAL(put.status().message(),
                    "HTTP 409 Conflict: Operation cannot be fulfilled on deployments.apps \"x\": the object has been "
                    "modified; please apply your changes to the latest version and try again");
  BOOST_CHECK_EQUAL(f.Get("x"), current);  // the refused write changed nothing

  // The caller's retry: read again, apply the same change, send it with the fresh resourceVersion.
  emu::Json fresh = f.Get("x");
  fresh["spec"]["replicas"] = 5;
  auto retried = f.rest().Update(PathOf("x"), fresh.dump());
  BOOST_REQUIRE_MESSAGE(retried.ok(), Describe(retried.status()));
  BOOST_CHECK_EQUAL(f.client->last_status(), 200);
  const emu::Json after = f.Get("x");
  BOOST_CHECK_EQUAL(after["spec"]["replicas"], 5);
  BOOST_CHECK_NE(after["metadata"]["resourceVersion"], current["metadata"]["resourceVersion"]);
  BOOST_CHECK_EQUAL(emu::Json::parse(*retried)["metadata"]["resourceVersion"], after["metadata"]["resourceVersion"]);
}

BOOST_AUTO_TEST_CASE(json_and_merge_patches_change_exactly_what_they_say_and_a_failed_test_op_is_422) {
  Fixture f;
  f.Create(Deployment("p", 1));
  const emu::Json before = f.Get("p");

  auto patched = f.rest().Patch(PathOf("p"),
                                R"([{"op":"test","path":"/spec/replicas","value":1},)"
                                R"({"op":"replace","path":"/spec/replicas","value":3},)"
                                R"({"op":"add","path":"/metadata/labels","value":{"tier":"web"}}])",
                                Options(PatchType::kJsonPatch));
  BOOST_REQUIRE_MESSAGE(patched.ok(), Describe(patched.status()));
  BOOST_CHECK_EQUAL(f.client->last_status(), 200);
  const emu::Json after_json_patch = f.Get("p");
  emu::Json expected = before;
  expected["spec"]["replicas"] = 3;
  expected["metadata"]["labels"] = {{"tier", "web"}};
  BOOST_CHECK_EQUAL(Comparable(after_json_patch), Comparable(expected));
  BOOST_CHECK_EQUAL(emu::Json::parse(*patched), after_json_patch);

  patched = f.rest().Patch(PathOf("p"), R"({"metadata":{"labels":{"tier":null,"team":"core"}},"spec":{"replicas":4}})",
                           Options(PatchType::kMerge));
  BOOST_REQUIRE_MESSAGE(patched.ok(), Describe(patched.status()));
  BOOST_CHECK_EQUAL(f.client->last_status(), 200);
  const emu::Json after_merge_patch = f.Get("p");
  expected["spec"]["replicas"] = 4;
  expected["metadata"]["labels"] = {{"team", "core"}};
  BOOST_CHECK_EQUAL(Comparable(after_merge_patch), Comparable(expected));

  // A `test` that fails aborts the whole patch: the replace after it is not applied.
  auto refused = f.rest().Patch(PathOf("p"),
                                R"([{"op":"test","path":"/spec/replicas","value":99},)"
                                R"({"op":"replace","path":"/spec/replicas","value":7}])",
                                Options(PatchType::kJsonPatch));
  BOOST_REQUIRE(!refused.ok());
  BOOST_CHECK_EQUAL(f.client->last_status(), 422);
  BOOST_CHECK_MESSAGE(refused.status().code() == StatusCode::kInvalidArgument, Describe(refused.status()));
  BOOST_CHECK_EQUAL(refused.status().message(),
                    "HTTP 422 Invalid: the server rejected our request due to an error in our request");
  BOOST_CHECK_EQUAL(f.Get("p"), after_merge_patch);
}

BOOST_AUTO_TEST_CASE(server_side_apply_creates_refuses_a_second_manager_with_a_conflict_and_force_takes_over) {
  Fixture f;
  const PatchOptions owner = Options(PatchType::kApply, "mgr-a");
  auto created = f.rest().Patch(PathOf("s"), Deployment("s", 2).dump(), owner);
  BOOST_REQUIRE_MESSAGE(created.ok(), Describe(created.status()));
  BOOST_CHECK_EQUAL(f.client->last_status(), 201);  // spec §5.2: apply upserts, creating with 201
  BOOST_CHECK_EQUAL(f.Get("s")["spec"]["replicas"], 2);
  {
    const auto managed = ManagedFields(f.Get("s"));
    BOOST_REQUIRE_EQUAL(managed.size(), 1u);
    BOOST_CHECK(OwnsReplicas(managed.at("mgr-a")));
  }

  const std::string replicas5 =
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"s"},"spec":{"replicas":5}})";
  auto conflict = f.rest().Patch(PathOf("s"), replicas5, Options(PatchType::kApply, "mgr-b"));
  BOOST_REQUIRE(!conflict.ok());
  BOOST_CHECK_EQUAL(f.client->last_status(), 409);
  BOOST_CHECK_MESSAGE(conflict.status().code() == StatusCode::kConflict, Describe(conflict.status()));
  BOOST_CHECK_EQUAL(conflict.status().message(),
                    "HTTP 409 Conflict: Apply failed with 1 conflict: conflict with \"mgr-a\": .spec.replicas");
  // The causes are not carried by the client's Status: read them from the raw answer.
  HttpRequest raw;
  raw.method = "PATCH";
  raw.path_and_query = PathOf("s") + "?fieldManager=mgr-b";
  raw.headers = {{"Content-Type", "application/apply-patch+yaml"}};
  raw.body = replicas5;
  auto answer = f.rest().Do(raw);
  BOOST_REQUIRE_MESSAGE(answer.ok(), Describe(answer.status()));
  BOOST_CHECK_EQUAL(answer->status, 409);
  const emu::Json status = emu::Json::parse(answer->body);
  BOOST_CHECK_EQUAL(status["reason"], "Conflict");
  BOOST_CHECK_EQUAL(status["code"], 409);
  BOOST_CHECK_EQUAL(status["details"]["causes"],
                    emu::Json::parse(R"([{"reason":"FieldManagerConflict","message":"conflict with \"mgr-a\"",)"
                                     R"("field":".spec.replicas"}])"));
  BOOST_CHECK_EQUAL(f.Get("s")["spec"]["replicas"], 2);

  auto forced = f.rest().Patch(PathOf("s"), replicas5,
                               Options(PatchType::kApply, "mgr-b", /*force=*/true));
  BOOST_REQUIRE_MESSAGE(forced.ok(), Describe(forced.status()));
  BOOST_CHECK_EQUAL(f.client->last_status(), 200);
  const emu::Json after = f.Get("s");
  BOOST_CHECK_EQUAL(after["spec"]["replicas"], 5);
  const auto managed = ManagedFields(after);
  BOOST_REQUIRE_EQUAL(managed.size(), 2u);
  BOOST_CHECK(OwnsReplicas(managed.at("mgr-b")));
  BOOST_CHECK(!OwnsReplicas(managed.at("mgr-a")));  // taken over, the rest of its fields kept
  BOOST_CHECK(managed.at("mgr-a")["f:spec"].contains("f:template"));
  for (const auto& entry : after["metadata"]["managedFields"]) BOOST_CHECK_EQUAL(entry["operation"], "Apply");
}

BOOST_AUTO_TEST_CASE(insecure_skip_tls_verify_connects_without_or_with_a_wrong_ca_and_warns_once) {
  Fixture f;
  // From a kubeconfig: insecure-skip-tls-verify instead of the CA. Both at
  // once are refused at resolution, as client-go refuses them.
  std::string kubeconfig = f.emulator->Kubeconfig("c1");
  const auto ca_at = kubeconfig.find("certificate-authority-data:");
  BOOST_REQUIRE(ca_at != std::string::npos);
  {
    std::string both = kubeconfig;
    both.insert(both.find('\n', ca_at) + 1, "    insecure-skip-tls-verify: true\n");
    auto parsed = ParseKubeconfig(both, "c1");
    BOOST_REQUIRE_MESSAGE(parsed.ok(), Describe(parsed.status()));
    auto resolved = ResolveContext(*parsed);
    BOOST_REQUIRE(!resolved.ok());
    BOOST_CHECK_MESSAGE(resolved.status().code() == StatusCode::kInvalidArgument, Describe(resolved.status()));
    BOOST_CHECK_MESSAGE(resolved.status().message().find("insecure-skip-tls-verify") != std::string::npos,
                        Describe(resolved.status()));
  }
  kubeconfig.replace(ca_at, kubeconfig.find('\n', ca_at) - ca_at, "insecure-skip-tls-verify: true");
  auto parsed = ParseKubeconfig(kubeconfig, "c1");
  BOOST_REQUIRE_MESSAGE(parsed.ok(), Describe(parsed.status()));
  auto resolved = ResolveContext(*parsed);
  BOOST_REQUIRE_MESSAGE(resolved.ok(), Describe(resolved.status()));
  BOOST_REQUIRE(resolved->insecure_skip_tls_verify);
  BOOST_REQUIRE(resolved->ca_pem.empty());
  {
    RecordingClient insecure(*resolved);
    for (int i = 0; i < 3; ++i) {
      auto got = insecure.rest().Get("/api/v1/namespaces");
      BOOST_CHECK_MESSAGE(got.ok(), Describe(got.status()));
    }
    const auto warnings = insecure.warnings();
    BOOST_REQUIRE_EQUAL(warnings.size(), 1u);
    BOOST_CHECK_MESSAGE(warnings[0].find("insecure-skip-tls-verify") != std::string::npos, warnings[0]);
  }

  // A CA that did not sign the server's certificate, with verification off: still connects.
  RestConfig wrong_ca = f.config;
  wrong_ca.ca_pem = emu::CertificateAuthority("some-other-ca").cert_pem();
  wrong_ca.insecure_skip_tls_verify = true;
  {
    RecordingClient insecure(wrong_ca);
    auto got = insecure.rest().Get("/api/v1/namespaces");
    BOOST_CHECK_MESSAGE(got.ok(), Describe(got.status()));
    BOOST_CHECK_EQUAL(insecure.warnings().size(), 1u);
  }

  // The same wrong CA with verification on: refused, naming verification.
  wrong_ca.insecure_skip_tls_verify = false;
  RecordingClient verifying(wrong_ca);
  auto got = verifying.rest().Get("/api/v1/namespaces");
  BOOST_REQUIRE(!got.ok());
  BOOST_CHECK_MESSAGE(got.status().code() == StatusCode::kUnavailable, Describe(got.status()));
  BOOST_CHECK_MESSAGE(got.status().message().find("TLS verification failed") != std::string::npos,
                      Describe(got.status()));
  BOOST_CHECK(verifying.warnings().empty());
  BOOST_CHECK(verifying.statuses() == std::vector<int>{0});  // a transport failure, never an HTTP answer
}

BOOST_AUTO_TEST_CASE(a_429_storm_with_retry_after_is_waited_out_as_plain_text_and_as_json) {
  Fixture f;
  f.Create(Deployment("a", 1));
  for (const bool json : {false, true}) {
    BOOST_TEST_CONTEXT((json ? "JSON Status" : "plain text")) {
      f.cluster().FailNext({.count = 2, .code = 429, .retry_after_s = 1, .json = json});
      const auto requests = f.cluster().requests();
      const auto start = std::chrono::steady_clock::now();
      auto got = f.rest().Get(PathOf("a"));
      const auto elapsed = std::chrono::steady_clock::now() - start;
      BOOST_REQUIRE_MESSAGE(got.ok(), Describe(got.status()));
      BOOST_CHECK_EQUAL(emu::Json::parse(*got)["metadata"]["name"], "a");
      BOOST_CHECK_EQUAL(f.cluster().requests() - requests, 3u);  // two 429s, then the answer
      BOOST_CHECK_GE(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 1900);
      const auto statuses = f.client->statuses();
      BOOST_REQUIRE_GE(statuses.size(), 3u);
      BOOST_CHECK_EQUAL(statuses[statuses.size() - 3], 429);
      BOOST_CHECK_EQUAL(statuses[statuses.size() - 2], 429);
      BOOST_CHECK_EQUAL(statuses.back(), 200);

      // Without Retry-After the 429 comes back at once, its body decoded either way.
      f.cluster().FailNext({.count = 1, .code = 429, .retry_after_s = -1, .json = json});
      got = f.rest().Get(PathOf("a"));
      BOOST_REQUIRE(!got.ok());
      BOOST_CHECK_MESSAGE(got.status().code() == StatusCode::kUnavailable, Describe(got.status()));
      BOOST_CHECK_EQUAL(got.status().message(), json ? "HTTP 429 TooManyRequests: Too many requests, please try again later."
                                                     : "HTTP 429: Too many requests, please try again later.");
    }
  }
}

BOOST_AUTO_TEST_CASE(the_client_side_rate_limit_paces_requests_beyond_the_burst) {
  Fixture f;
  RecordingClient limited(f.config, {.qps = 5, .burst = 2});
  const auto requests = f.cluster().requests();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 7; ++i) {
    auto got = limited.rest().Get("/api/v1/namespaces/default");
    BOOST_REQUIRE_MESSAGE(got.ok(), Describe(got.status()));
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  BOOST_CHECK_EQUAL(f.cluster().requests() - requests, 7u);
  // Two from the burst, five more at 200 ms each: at least ~1 s. A lower
  // bound only; a loaded machine may take longer.
  BOOST_CHECK_GE(std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count(), 900);
}
