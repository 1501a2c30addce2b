// The client (configuration, TLS transport, REST, reflector) against
// kube-emulator in-process, over real HTTPS, with faults injected: the
// client items of the wire spec's §8 checklist. Run under ThreadSanitizer by
// `make test-tsan` (the reflector under faults).
#define BOOST_TEST_MODULE emulator_conformance_test
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/reflector.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "tests/controllers/kube/test_util.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"

using namespace kubefold::kube;
using namespace std::chrono_literals;
namespace emu = kubefold::emulator;
using kubefold::StatusCode;
using kubefold::testing::Eventually;

namespace {

const ResourceType kDeployments{"apps", "v1", "Deployment"};

std::string DeploymentJson(const std::string& name, int replicas, const std::string& image = "nginx:1.27") {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
         R"(","managedFields":[]},"spec":{"replicas":)" + std::to_string(replicas) +
         R"(,"selector":{"matchLabels":{"app":")" + name + R"("}},"template":{"metadata":{"labels":{"app":")" + name +
         R"("}},"spec":{"containers":[{"name":"main","image":")" + image + R"("}]}}}})";
}

// Polls `pred` until it holds or `limit` passes (never a bare sleep).

// What a reflector's sink builds: name -> resourceVersion, plus counters.
class Cache {
 public:
  void Apply(ReflectorEvent&& e) {
    std::lock_guard lock(mu_);
    switch (e.type) {
      case ReflectorEventType::kReplace:
        ++replaces_;
        objects_.clear();
        for (auto& o : e.objects) objects_[o.workload.key.name] = o.resource_version;
        break;
      case ReflectorEventType::kSynced:
        ++synced_;
        break;
      case ReflectorEventType::kAdded:
      case ReflectorEventType::kModified:
        objects_[e.object.workload.key.name] = e.object.resource_version;
        break;
      case ReflectorEventType::kDeleted:
        objects_.erase(e.object.workload.key.name);
        break;
    }
  }
  std::map<std::string, std::string> objects() const {
    std::lock_guard lock(mu_);
    return objects_;
  }
  int replaces() const {
    std::lock_guard lock(mu_);
    return replaces_;
  }
  int synced() const {
    std::lock_guard lock(mu_);
    return synced_;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::string> objects_;
  int replaces_ = 0;
  int synced_ = 0;
};

// The server's view: name -> resourceVersion, by a plain GET of the list.
std::map<std::string, std::string> ServerState(emu::Cluster& cluster, const std::string& ns) {
  std::map<std::string, std::string> out;
  auto list = cluster.store().List("apps/deployments", std::nullopt);
  for (const auto& o : list->objects) {
    if (o->ns == ns) out[o->name] = std::to_string(o->rv);
  }
  return out;
}

struct Client {
  RestConfig config;
  std::unique_ptr<RestClient> rest;
};

Client MakeClient(const RestConfig& config) {
  Client c;
  c.config = config;
  c.rest = kubefold::testing::ClientFor(config);
  return c;
}

// One emulated cluster over HTTPS, a client for it, and reflectors on demand.
struct Fixture {
  kubefold::kube::testing::TempDir dir;
  std::unique_ptr<emu::Emulator> emulator;
  Client client;

  explicit Fixture(emu::ClusterOptions cluster = {}) {
    emu::EmulatorOptions options;
    options.clusters = {"c1"};
    options.dir = dir.path();
    options.cluster = cluster;
    emulator = std::make_unique<emu::Emulator>(options);
    // The kubeconfig names the token file, which token rotation rewrites.
    client = MakeClient(kubefold::testing::EmulatorConfig(*emulator, "c1", emulator->Info("c1").token_path));
  }
  emu::Cluster& cluster() { return emulator->cluster("c1"); }

  void CreateDeployment(const std::string& name, int replicas = 1) {
    auto r = client.rest->Create("/apis/apps/v1/namespaces/default/deployments", DeploymentJson(name, replicas));
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }
  void ScaleDeployment(const std::string& name, int replicas) {
    auto r = client.rest->Patch("/apis/apps/v1/namespaces/default/deployments/" + name,
                                R"({"spec":{"replicas":)" + std::to_string(replicas) + "}}", PatchOptions{});
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }
  void DeleteDeployment(const std::string& name) {
    auto r = client.rest->Delete("/apis/apps/v1/namespaces/default/deployments/" + name);
    BOOST_REQUIRE_MESSAGE(r.ok(), r.status().ToString());
  }
};

// A reflector on its own thread, feeding a Cache.
class RunningReflector {
 public:
  RunningReflector(Client& client, ReflectorOptions options) {
    ReflectorHooks hooks;
    hooks.sink = [this](ReflectorEvent&& e) { cache_.Apply(std::move(e)); };
    hooks.authorize = [&client](HttpRequest& r) { return client.rest->Authorize(r); };
    hooks.on_unauthorized = [&client] { client.rest->OnUnauthorized(); };
    hooks.throttle = [&client] { client.rest->Throttle(); };
    hooks.log = [this](std::string_view line) {
      std::lock_guard lock(log_mu_);
      log_.emplace_back(line);
    };
    reflector_ = std::make_unique<Reflector>(client.rest->transport(), std::move(options), std::move(hooks));
    thread_ = std::thread([this] { reflector_->Run(); });
  }
  ~RunningReflector() {
    reflector_->Stop();
    thread_.join();
  }
  Cache& cache() { return cache_; }
  Reflector& reflector() { return *reflector_; }
  std::string Log() {
    std::lock_guard lock(log_mu_);
    std::string all;
    for (const auto& l : log_) all += l + "\n";
    return all;
  }

 private:
  Cache cache_;
  std::mutex log_mu_;
  std::vector<std::string> log_;
  std::unique_ptr<Reflector> reflector_;
  std::thread thread_;
};

ReflectorOptions DeploymentsIn(const std::string& ns) {
  ReflectorOptions o;
  o.type = kDeployments;
  o.resource = "deployments";
  o.namespace_name = ns;
  o.backoff.initial = 20ms;
  o.backoff.cap = 200ms;
  return o;
}

bool Converged(Fixture& f, RunningReflector& r) { return r.cache().objects() == ServerState(f.cluster(), "default"); }

}  // namespace

BOOST_AUTO_TEST_CASE(list_then_watch_delivers_every_change_when_chunks_are_split_anywhere) {
  Fixture f;
  for (int i = 0; i < 30; ++i) f.CreateDeployment("d" + std::to_string(i));
  f.cluster().SetSplitChunks(true);
  ReflectorOptions options = DeploymentsIn("default");
  options.page_size = 7;  // five pages
  RunningReflector r(f.client, options);
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1; }));
  for (int i = 0; i < 30; i += 3) f.ScaleDeployment("d" + std::to_string(i), 5);
  for (int i = 1; i < 30; i += 5) f.DeleteDeployment("d" + std::to_string(i));
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
  BOOST_CHECK_EQUAL(r.reflector().stats().lists, 1u);
  BOOST_CHECK_EQUAL(r.cache().objects().size(), 24u);
}

BOOST_AUTO_TEST_CASE(an_expired_continue_token_falls_back_to_one_full_list) {
  Fixture f;
  for (int i = 0; i < 10; ++i) f.CreateDeployment("p" + std::to_string(i));
  f.cluster().SetExpireContinueTokens(true);
  ReflectorOptions options = DeploymentsIn("default");
  options.page_size = 3;
  RunningReflector r(f.client, options);
  REQUIRE_WAITED(Eventually([&] { return r.cache().synced() >= 1; }), r.Log());
  // Page 1, page 2 refused with 410, then one unpaginated list: three LISTs.
  BOOST_CHECK_EQUAL(f.cluster().lists(), 3u);
  BOOST_CHECK_EQUAL(r.reflector().stats().lists, 1u);
  BOOST_CHECK_EQUAL(r.cache().objects().size(), 10u);
  BOOST_CHECK(Converged(f, r));
}

BOOST_AUTO_TEST_CASE(a_410_mid_stream_relists_and_replaces_the_cache) {
  Fixture f;
  f.CreateDeployment("keep");
  f.CreateDeployment("gone");
  RunningReflector r(f.client, DeploymentsIn("default"));
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1; }));
  // While the reflector is cut off, history is compacted and objects change:
  // the resume gets 410 and only a relist can catch up.
  f.cluster().SetStallWatches(true);
  f.DeleteDeployment("gone");
  f.CreateDeployment("new");
  f.cluster().Compact();
  f.cluster().SetStallWatches(false);
  f.cluster().DropWatches(/*reset=*/false);
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
  const auto stats = r.reflector().stats();
  BOOST_CHECK_GE(stats.expired, 1u);
  BOOST_CHECK_GE(stats.lists, 2u);
  BOOST_CHECK_GE(r.cache().replaces(), 2);
  BOOST_CHECK(r.cache().objects().count("gone") == 0);
}

BOOST_AUTO_TEST_CASE(a_clean_end_of_stream_rewatches_without_relisting) {
  Fixture f;
  f.CreateDeployment("a");
  RunningReflector r(f.client, DeploymentsIn("default"));
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1 && r.reflector().stats().watches >= 1; }));
  for (int round = 0; round < 3; ++round) {
    const auto watches = r.reflector().stats().watches;
    // The server must have the watch open before it can drop it.
    BOOST_REQUIRE(Eventually([&] { return f.cluster().open_watches() == 1; }));
    f.cluster().DropWatches(/*reset=*/false);
    BOOST_REQUIRE(Eventually([&] { return r.reflector().stats().watches > watches; }));
    f.ScaleDeployment("a", round + 2);
  }
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
  BOOST_CHECK_EQUAL(r.reflector().stats().lists, 1u);
  BOOST_CHECK_EQUAL(r.reflector().stats().expired, 0u);
}

BOOST_AUTO_TEST_CASE(a_reset_connection_is_recovered_from) {
  Fixture f;
  f.CreateDeployment("a");
  RunningReflector r(f.client, DeploymentsIn("default"));
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1; }));
  BOOST_REQUIRE(Eventually([&] { return f.cluster().open_watches() == 1; }));
  f.cluster().DropWatches(/*reset=*/true);
  f.CreateDeployment("b");
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
}

BOOST_AUTO_TEST_CASE(the_server_watch_timeout_ends_the_stream_and_the_client_resumes) {
  Fixture f;
  f.CreateDeployment("a");
  ReflectorOptions options = DeploymentsIn("default");
  options.min_watch_timeout = 1s;  // the server ends each watch after 1-2 s
  RunningReflector r(f.client, options);
  BOOST_REQUIRE(Eventually([&] { return r.reflector().stats().watches >= 3; }, 15s));
  f.ScaleDeployment("a", 3);
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
  BOOST_CHECK_EQUAL(r.reflector().stats().lists, 1u);
}

BOOST_AUTO_TEST_CASE(a_silently_dead_watch_is_noticed_by_the_inactivity_deadline) {
  Fixture f;
  f.CreateDeployment("a");
  ReflectorOptions options = DeploymentsIn("default");
  options.watch_inactivity = 1s;
  RunningReflector r(f.client, options);
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1 && f.cluster().open_watches() == 1; }));
  const auto watches = r.reflector().stats().watches;
  f.cluster().SetStallWatches(true);
  f.ScaleDeployment("a", 4);  // not delivered while stalled
  BOOST_REQUIRE(Eventually([&] { return r.reflector().stats().watches > watches; }, 10s));
  f.cluster().SetStallWatches(false);
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
}

BOOST_AUTO_TEST_CASE(a_429_storm_is_ridden_out_with_retry_after) {
  Fixture f;
  f.CreateDeployment("a");
  emu::FailSpec storm;
  storm.count = 6;
  storm.code = 429;
  storm.retry_after_s = 0;
  f.cluster().FailNext(storm);
  RunningReflector r(f.client, DeploymentsIn("default"));
  CHECK_WAITED(Eventually([&] { return r.cache().synced() >= 1 && Converged(f, r); }), r.Log());
  // The REST client retries a 429 with Retry-After itself, up to 3 times.
  storm.count = 2;
  f.cluster().FailNext(storm);
  auto got = f.client.rest->Get("/apis/apps/v1/namespaces/default/deployments/a");
  BOOST_CHECK_MESSAGE(got.ok(), got.status().ToString());
  storm.count = 10;
  f.cluster().FailNext(storm);
  got = f.client.rest->Get("/apis/apps/v1/namespaces/default/deployments/a");
  BOOST_CHECK(!got.ok());
  f.cluster().FailNext({});
}

BOOST_AUTO_TEST_CASE(streaming_lists_are_used_when_served_and_a_422_falls_back_to_list_and_watch) {
  {
    Fixture f;
    f.CreateDeployment("a");
    ReflectorOptions options = DeploymentsIn("default");
    options.streaming_list = true;
    RunningReflector r(f.client, options);
    BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1; }));
    f.CreateDeployment("b");
    CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
    BOOST_CHECK_EQUAL(f.cluster().lists(), 0u);  // the state came over the watch: no LIST request
    BOOST_CHECK_EQUAL(r.reflector().stats().lists, 1u);
  }
  {
    emu::ClusterOptions off;
    off.watch_list = false;
    Fixture f(off);
    f.CreateDeployment("a");
    ReflectorOptions options = DeploymentsIn("default");
    options.streaming_list = true;
    RunningReflector r(f.client, options);
    REQUIRE_WAITED(Eventually([&] { return r.cache().synced() >= 1; }), r.Log());
    BOOST_CHECK_EQUAL(f.cluster().lists(), 1u);  // the 422, then LIST + WATCH
    CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
  }
}

BOOST_AUTO_TEST_CASE(a_partition_is_survived_and_changes_made_meanwhile_arrive) {
  Fixture f;
  f.CreateDeployment("a");
  RunningReflector r(f.client, DeploymentsIn("default"));
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1; }));
  f.emulator->server("c1").Partition();
  f.cluster().store().Mutate("apps/deployments", "default", "a", [](const emu::ObjectPtr& cur) {
    emu::Json next = cur->json;
    next["spec"]["replicas"] = 9;
    return emu::Mutation::Put(next);
  });
  // The partition lasts until the client has failed against it (under a sanitizer the client can take
  // longer than any fixed pause to notice), then heals.
  CHECK_WAITED(Eventually([&] { return r.reflector().stats().errors >= 1u; }), r.Log());
  f.emulator->server("c1").Heal();
  CHECK_WAITED(Eventually([&] { return Converged(f, r); }), r.Log());
}

namespace {
sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  return a;
}
}  // namespace

// A partition once freed the port: a connection from any process of the
// machine could take it as its ephemeral port, and Heal then failed with
// "address in use" (seen in CI, a parallel test's client on the port).
BOOST_AUTO_TEST_CASE(a_partitioned_port_stays_ours_until_the_heal) {
  Fixture f;
  auto& server = f.emulator->server("c1");
  const int port = server.port();
  server.Partition();
  const sockaddr_in at = Loopback(port);
  {  // Connects are refused ...
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_CHECK_EQUAL(::connect(fd, reinterpret_cast<const sockaddr*>(&at), sizeof(at)), -1);
    BOOST_CHECK_EQUAL(errno, ECONNREFUSED);
    ::close(fd);
  }
  {  // ... yet nothing else can bind the port,
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    BOOST_CHECK_EQUAL(::bind(fd, reinterpret_cast<const sockaddr*>(&at), sizeof(at)), -1);
    BOOST_CHECK_EQUAL(errno, EADDRINUSE);
    ::close(fd);
  }
  {  // ... nor an outgoing connection whose ephemeral ports are only this one
     // (IP_LOCAL_PORT_RANGE, Linux 6.3 on: low port in the low 16 bits).
    const int target = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in any = Loopback(0);
    BOOST_REQUIRE_EQUAL(::bind(target, reinterpret_cast<const sockaddr*>(&any), sizeof(any)), 0);
    BOOST_REQUIRE_EQUAL(::listen(target, 4), 0);
    socklen_t len = sizeof(any);
    ::getsockname(target, reinterpret_cast<sockaddr*>(&any), &len);
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    const uint32_t range = static_cast<uint32_t>(port) | (static_cast<uint32_t>(port) << 16);
    constexpr int kIpLocalPortRange = 51;
    BOOST_REQUIRE_MESSAGE(::setsockopt(fd, IPPROTO_IP, kIpLocalPortRange, &range, sizeof(range)) == 0,
                          std::string("IP_LOCAL_PORT_RANGE: ") + std::strerror(errno));
    BOOST_CHECK_EQUAL(::connect(fd, reinterpret_cast<const sockaddr*>(&any), sizeof(any)), -1);
    BOOST_CHECK_EQUAL(errno, EADDRNOTAVAIL);
    ::close(fd);
    ::close(target);
  }
  server.Heal();
  BOOST_CHECK(!server.partitioned());
  auto got = f.client.rest->Get("/api/v1/namespaces");
  if (!got.ok()) got = f.client.rest->Get("/api/v1/namespaces");  // a pooled connection the partition cut
  BOOST_CHECK_MESSAGE(got.ok(), got.status().ToString());
}

BOOST_AUTO_TEST_CASE(a_certificate_for_another_name_is_refused) {
  Fixture f;
  RestConfig config = f.client.config;
  config.tls_server_name = "wrong.example.com";  // the certificate does not name it
  Client c = MakeClient(config);
  const int before = f.emulator->server("c1").handshake_failures();
  auto got = c.rest->Get("/api/v1/namespaces");
  BOOST_REQUIRE(!got.ok());
  BOOST_CHECK(got.status().code() == StatusCode::kUnavailable);
  BOOST_CHECK_MESSAGE(got.status().message().find("certificate") != std::string::npos, got.status().ToString());
  BOOST_CHECK(Eventually([&] { return f.emulator->server("c1").handshake_failures() > before; }, 5s));
  config.tls_server_name = "kubernetes.default.svc";  // one of its SANs: accepted
  Client ok = MakeClient(config);
  BOOST_CHECK(ok.rest->Get("/api/v1/namespaces").ok());
}

BOOST_AUTO_TEST_CASE(a_server_from_another_ca_is_refused) {
  Fixture f;
  RestConfig config = f.client.config;
  config.ca_pem = emu::CertificateAuthority("some-other-ca").cert_pem();
  Client c = MakeClient(config);
  auto got = c.rest->Get("/api/v1/namespaces");
  BOOST_REQUIRE(!got.ok());
  BOOST_CHECK_MESSAGE(got.status().message().find("certificate") != std::string::npos, got.status().ToString());
}

BOOST_AUTO_TEST_CASE(client_certificates_from_the_cluster_ca_authenticate) {
  Fixture f;
  RestConfig config = f.client.config;
  config.bearer_token.clear();
  config.bearer_token_file.clear();
  emu::CertSpec spec;
  spec.cn = "kubefold-operator";
  spec.server = false;
  const auto pair = f.emulator->ca().Issue(spec);
  config.client_certificate_pem = pair.cert_pem;
  config.client_key_pem = pair.key_pem;
  Client c = MakeClient(config);
  BOOST_CHECK(c.rest->Get("/api/v1/namespaces").ok());
  config.client_certificate_pem.clear();
  config.client_key_pem.clear();
  Client anonymous = MakeClient(config);
  auto got = anonymous.rest->Get("/api/v1/namespaces");
  BOOST_REQUIRE(!got.ok());
  BOOST_CHECK(got.status().code() == StatusCode::kUnauthenticated);
}

// An exec plugin that returns a client certificate (and no token): the
// transport presents the plugin's certificate, and presents a renewed one as
// soon as the plugin hands it out, on new connections (a kept-alive
// connection made with the old certificate would still be accepted, so a
// refused handshake below shows the new certificate was the one sent).
BOOST_AUTO_TEST_CASE(an_exec_plugins_client_certificate_authenticates_and_is_renewed) {
  Fixture f;
  const std::string plugin = f.dir.path() + "/credential-plugin";
  const std::string runs = f.dir.path() + "/plugin-runs";
  // Already expired, so every request runs the plugin again and sees what it now prints.
  auto write_plugin = [&](const emu::CertificateAuthority& ca, const std::string& cn) {
    emu::CertSpec spec;
    spec.cn = cn;
    spec.server = false;
    const auto pair = ca.Issue(spec);
    const nlohmann::json credential = {
        {"apiVersion", "client.authentication.k8s.io/v1"},
        {"kind", "ExecCredential"},
        {"status",
         {{"clientCertificateData", pair.cert_pem},
          {"clientKeyData", pair.key_pem},
          {"expirationTimestamp", "2000-01-01T00:00:00Z"}}}};
    kubefold::kube::testing::WriteExecutable(
        plugin, "#!/bin/sh\necho run >> '" + runs + "'\ncat <<'JSON'\n" + credential.dump() + "\nJSON\n");
  };
  RestConfig config = f.client.config;
  config.bearer_token.clear();
  config.bearer_token_file.clear();
  ExecConfig exec;
  exec.command = plugin;
  exec.api_version = "client.authentication.k8s.io/v1";
  exec.interactive_mode = ExecInteractiveMode::kNever;
  config.exec = exec;

  write_plugin(f.emulator->ca(), "exec-user-1");
  Client c = MakeClient(config);
  auto got = c.rest->Get("/api/v1/namespaces");
  BOOST_CHECK_MESSAGE(got.ok(), got.status().ToString());
  BOOST_CHECK(!kubefold::kube::testing::ReadFile(runs).empty());  // the plugin ran

  // The same plugin without the transport hook: no certificate, no token.
  auto tokens = std::shared_ptr<TokenSource>(NewTokenSource(config));
  auto bare = NewHttpTransport(config, {.warn = [](std::string_view) {}});
  BOOST_REQUIRE(bare.ok());
  RestClient unauthenticated(std::move(*bare), tokens, {.qps = 1000, .burst = 1000});
  auto refused = unauthenticated.Get("/api/v1/namespaces");
  BOOST_REQUIRE(!refused.ok());
  BOOST_CHECK(refused.status().code() == StatusCode::kUnauthenticated);

  // Renewed with a certificate the cluster does not trust: the next request
  // goes out on a new connection with it and its handshake is refused.
  const int before = f.emulator->server("c1").handshake_failures();
  write_plugin(emu::CertificateAuthority("another-ca"), "exec-user-2");
  got = c.rest->Get("/api/v1/namespaces");
  BOOST_REQUIRE(!got.ok());
  BOOST_CHECK(got.status().code() == StatusCode::kUnavailable);
  BOOST_CHECK(Eventually([&] { return f.emulator->server("c1").handshake_failures() > before; }, 5s));

  // Renewed again with a good one: accepted.
  write_plugin(f.emulator->ca(), "exec-user-3");
  got = c.rest->Get("/api/v1/namespaces");
  BOOST_CHECK_MESSAGE(got.ok(), got.status().ToString());
}

BOOST_AUTO_TEST_CASE(a_rotated_token_file_is_re_read_after_a_401) {
  Fixture f;
  Client& c = f.client;
  BOOST_REQUIRE(c.rest->Get("/api/v1/namespaces").ok());
  f.emulator->RotateToken("c1");  // the cached token now gets 401
  auto got = c.rest->Get("/api/v1/namespaces");
  BOOST_CHECK_MESSAGE(got.ok(), got.status().ToString());
  // A reflector on the same client keeps going across a rotation too.
  RunningReflector r(c, DeploymentsIn("default"));
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1 && f.cluster().open_watches() == 1; }));
  f.emulator->RotateToken("c1");
  f.cluster().DropWatches(/*reset=*/false);
  f.CreateDeployment("after-rotation");
  CHECK_WAITED(Eventually([&] { return r.cache().objects().count("after-rotation") == 1; }), r.Log());
}

BOOST_AUTO_TEST_CASE(reflectors_converge_under_random_faults_while_a_writer_runs) {
  Fixture f;
  std::vector<std::unique_ptr<RunningReflector>> reflectors;
  for (int i = 0; i < 3; ++i) {
    ReflectorOptions options = DeploymentsIn("default");
    options.page_size = 4;
    options.streaming_list = i == 2;
    options.watch_inactivity = 2s;
    reflectors.push_back(std::make_unique<RunningReflector>(f.client, options));
  }
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    std::mt19937 rng(42);
    for (int i = 0; !stop.load(); ++i) {
      const std::string name = "w" + std::to_string(rng() % 20);
      auto& store = f.cluster().store();
      // Straight into the store: the writer must not be slowed by faults.
      store.Mutate("apps/deployments", "default", name, [&](const emu::ObjectPtr& cur) {
        if (cur && rng() % 3 == 0) return emu::Mutation::Delete();
        emu::Json o = emu::Json::parse(DeploymentJson(name, static_cast<int>(rng() % 10)));
        o["metadata"]["namespace"] = "default";
        return emu::Mutation::Put(o);
      });
      std::this_thread::sleep_for(2ms);
    }
  });
  std::mt19937 rng(7);
  for (int round = 0; round < 12; ++round) {
    switch (rng() % 5) {
      case 0: f.cluster().DropWatches(rng() % 2 == 0); break;
      case 1: f.cluster().Compact(); f.cluster().DropWatches(false); break;
      case 2: f.cluster().SetSplitChunks(rng() % 2 == 0); break;
      case 3: {
        emu::FailSpec s;
        s.count = 3;
        s.code = rng() % 2 ? 429 : 500;
        s.retry_after_s = 0;
        f.cluster().FailNext(s);
        break;
      }
      case 4: f.emulator->server("c1").ResetConnections(); break;
    }
    std::this_thread::sleep_for(150ms);
  }
  stop = true;
  writer.join();
  f.cluster().FailNext({});
  f.cluster().SetSplitChunks(false);
  for (auto& r : reflectors) {
    CHECK_WAITED(Eventually([&] { return Converged(f, *r); }, 30s), r->Log());
  }
}

BOOST_AUTO_TEST_CASE(bookmarks_move_the_resume_point_without_events) {
  emu::ClusterOptions options;
  options.bookmark_interval = 200ms;
  Fixture f(options);
  f.CreateDeployment("a");
  RunningReflector r(f.client, DeploymentsIn("default"));
  BOOST_REQUIRE(Eventually([&] { return r.cache().synced() >= 1 && f.cluster().open_watches() == 1; }));
  const std::string before = r.reflector().resume_version();
  // Writes to another resource move the cluster's RV; only bookmarks can
  // tell the deployments watch about it.
  for (int i = 0; i < 3; ++i) {
    f.cluster().store().Mutate("/configmaps", "default", "cm" + std::to_string(i), [&](const emu::ObjectPtr&) {
      return emu::Mutation::Put(emu::Json{{"kind", "ConfigMap"}, {"apiVersion", "v1"},
                                          {"metadata", {{"name", "cm" + std::to_string(i)}, {"namespace", "default"}}}});
    });
  }
  const std::string now = std::to_string(f.cluster().store().CurrentRv());
  CHECK_WAITED(Eventually([&] { return r.reflector().resume_version() == now; }, 5s),
               "resume " << r.reflector().resume_version() << " want " << now << "\n" << r.Log());
  BOOST_CHECK_NE(before, now);
  BOOST_CHECK_GE(r.reflector().stats().bookmarks, 1u);
  BOOST_CHECK_EQUAL(r.reflector().stats().events, 0u);
}
