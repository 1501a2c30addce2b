// Users, RBAC, TokenReview, SubjectAccessReview and the services proxy of
// kube-emulator, in-process: requests go straight to Cluster::Handle with a
// recording writer; proxy backends are the emulator's own HttpServer on this
// host's first non-loopback address (Endpoints may not point at loopback, as
// on a real server).
#define BOOST_TEST_MODULE emulator_auth
#include <boost/test/unit_test.hpp>

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <thread>

#include "tests/emulator/emulator.h"

namespace kubefold::emulator {
namespace {

using namespace std::chrono_literals;

struct IgnoreSigpipe {
  IgnoreSigpipe() { ::signal(SIGPIPE, SIG_IGN); }
};
BOOST_TEST_GLOBAL_FIXTURE(IgnoreSigpipe);

// Records one response.
struct Recorder final : ResponseWriter {
  int status = 0;
  Headers headers;
  std::string body;
  bool chunked = false;
  bool ended = false;
  bool reset = false;
  std::function<void(const std::string&)> on_chunk;

  bool Send(int code, const Headers& h, std::string_view b) override {
    status = code;
    headers = h;
    body = b;
    return true;
  }
  bool StartChunked(int code, const Headers& h) override {
    status = code;
    headers = h;
    chunked = true;
    return true;
  }
  bool WriteChunk(std::string_view data) override {
    body += data;
    if (on_chunk) on_chunk(body);
    return true;
  }
  bool EndChunked() override {
    ended = true;
    return true;
  }
  void Reset() override { reset = true; }
  bool PeerGone() override { return false; }

  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (k == name) return v;
    }
    return "";
  }
  Json JsonBody() const { return Json::parse(body); }
};

// This host's first non-loopback IPv4 address, "" if it has none.
std::string HostAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string out;
  for (ifaddrs* i = list; i != nullptr && out.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text, sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0 && std::string(text).rfind("169.254.", 0) != 0) out = text;
  }
  ::freeifaddrs(list);
  return out;
}

struct Fixture {
  Emulator emu{[] {
    EmulatorOptions o;
    o.clusters = {"c"};
    o.tls = false;
    return o;
  }()};
  Cluster& cluster = emu.cluster("c");
  std::string admin = emu.Info("c").token;
  std::string alice = emu.AddUser("c", UserInfo{"alice", "uid-alice", {"devs"}});

  Recorder Do(const std::string& method, const std::string& target, const std::string& token,
              const std::string& body = "", Headers extra = {}) {
    Request r;
    r.method = method;
    const auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) {
      r.raw_query = target.substr(q + 1);
      std::string_view rest(r.raw_query);
      while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view part = rest.substr(0, amp);
        const auto eq = part.find('=');
        r.query.emplace_back(std::string(part.substr(0, eq)),
                             eq == std::string_view::npos ? "" : std::string(part.substr(eq + 1)));
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
      }
    }
    if (!token.empty()) r.headers.emplace_back("Authorization", "Bearer " + token);
    r.headers.emplace_back("Host", "127.0.0.1:6443");
    r.headers.emplace_back("User-Agent", "auth_test/1.0");
    r.headers.insert(r.headers.end(), extra.begin(), extra.end());
    if (!body.empty() && r.Header("Content-Type").empty()) r.headers.emplace_back("Content-Type", "application/json");
    r.body = body;
    r.remote_ip = "10.1.2.3";
    Recorder w;
    cluster.Handle(r, w);
    return w;
  }
  void Create(const std::string& collection, const std::string& body) {
    Recorder w = Do("POST", collection, admin, body);
    BOOST_REQUIRE_MESSAGE(w.status == 201, collection + ": " + w.body);
  }
  // A Role in `ns` with `rules`, bound to `user`.
  void Grant(const std::string& ns, const std::string& name, const std::string& rules, const std::string& user) {
    Create("/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/roles",
           R"({"metadata":{"name":")" + name + R"("},"rules":)" + rules + "}");
    Create("/apis/rbac.authorization.k8s.io/v1/namespaces/" + ns + "/rolebindings",
           R"({"metadata":{"name":")" + name + R"("},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"Role","name":")" +
               name + R"("},"subjects":[{"kind":"User","name":")" + user + R"("}]})");
  }
};

BOOST_AUTO_TEST_CASE(the_admin_is_in_system_masters_and_may_do_anything) {
  Fixture f;
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/nodes", f.admin).status, 200);
  BOOST_CHECK_EQUAL(f.Do("GET", "/metrics", f.admin).status, 404);  // allowed, then not found
  Recorder who = f.Do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", f.admin,
                      R"({"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"})");
  BOOST_REQUIRE_EQUAL(who.status, 201);
  BOOST_CHECK_EQUAL(who.JsonBody()["status"].dump(),
                    R"({"userInfo":{"username":"kube-emulator-admin","groups":["system:masters","system:authenticated"]}})");
}

BOOST_AUTO_TEST_CASE(a_user_without_bindings_gets_the_exact_403_of_a_real_server) {
  Fixture f;
  Recorder w = f.Do("GET", "/api/v1/namespaces/default/pods", f.alice);
  BOOST_CHECK_EQUAL(w.status, 403);
  BOOST_CHECK_EQUAL(w.body,
                    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods is forbidden: User \"alice\" cannot list resource \"pods\" in API group \"\" in the namespace \"default\"","reason":"Forbidden","details":{"kind":"pods"},"code":403})");
  BOOST_CHECK_EQUAL(w.Header("X-Content-Type-Options"), "nosniff");
  w = f.Do("GET", "/api/v1/namespaces/kubefold-system/services/kubefold/proxy/metrics", f.alice);
  BOOST_CHECK_EQUAL(w.body,
                    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"services \"kubefold\" is forbidden: User \"alice\" cannot get resource \"services/proxy\" in API group \"\" in the namespace \"kubefold-system\"","reason":"Forbidden","details":{"name":"kubefold","kind":"services"},"code":403})");
  w = f.Do("GET", "/apis/apps/v1/deployments?watch=true", f.alice);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "deployments.apps is forbidden: User \"alice\" cannot watch resource \"deployments\" in API group "
                    "\"apps\" at the cluster scope");
  BOOST_CHECK_EQUAL(w.JsonBody()["details"].dump(), R"({"group":"apps","kind":"deployments"})");
  w = f.Do("GET", "/metrics", f.alice);
  BOOST_CHECK_EQUAL(w.body,
                    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"forbidden: User \"alice\" cannot get path \"/metrics\"","reason":"Forbidden","details":{},"code":403})");
  // Authorization comes before routing: a path that does not exist is a 403 too.
  BOOST_CHECK_EQUAL(f.Do("DELETE", "/api/v1/namespaces/default/nosuchthings", f.alice).JsonBody()["message"],
                    "nosuchthings is forbidden: User \"alice\" cannot deletecollection resource \"nosuchthings\" in "
                    "API group \"\" in the namespace \"default\"");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces", "not-a-token").status, 401);
}

BOOST_AUTO_TEST_CASE(discovery_and_health_are_open_to_authenticated_users_and_health_to_anonymous_ones) {
  Fixture f;
  for (const char* path : {"/api", "/api/v1", "/apis", "/apis/rbac.authorization.k8s.io/v1", "/version", "/healthz"}) {
    BOOST_CHECK_MESSAGE(f.Do("GET", path, f.alice).status == 200, path);
  }
  BOOST_CHECK_EQUAL(f.Do("GET", "/readyz", "").status, 200);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api", "").status, 401);
  // Without the bootstrap binding anonymous users lose /healthz as well.
  BOOST_CHECK_EQUAL(
      f.Do("DELETE", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/system:public-info-viewer", f.admin).status,
      200);
  Recorder w = f.Do("GET", "/healthz", "");
  BOOST_CHECK_EQUAL(w.status, 403);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"], "forbidden: User \"system:anonymous\" cannot get path \"/healthz\"");
}

BOOST_AUTO_TEST_CASE(a_rolebinding_grants_its_roles_rules_in_its_namespace_only) {
  Fixture f;
  f.Grant("default", "pod-reader", R"([{"apiGroups":[""],"resources":["pods"],"verbs":["get","list","watch"]}])",
          "alice");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/pods", f.alice).status, 200);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1", f.alice).status, 200);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/kube-system/pods", f.alice).status, 403);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/pods", f.alice).status, 403);  // all namespaces: cluster scope
  BOOST_CHECK_EQUAL(f.Do("DELETE", "/api/v1/namespaces/default/pods/x", f.alice).status, 403);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/pods/x/status", f.alice).status, 403);
  // A group subject, a ClusterRole through a RoleBinding, */subresource and resourceNames.
  f.Create("/apis/rbac.authorization.k8s.io/v1/clusterroles",
           R"({"metadata":{"name":"proxy-kubefold"},"rules":[{"apiGroups":[""],"resources":["*/proxy"],"resourceNames":["kubefold","https:kubefold:8443"],"verbs":["*"]}]})");
  f.Create("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
           R"({"metadata":{"name":"devs-proxy"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"proxy-kubefold"},"subjects":[{"kind":"Group","name":"devs"}]})");
  // Allowed, then 404: no such service.
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/https:kubefold:8443/proxy/x", f.alice).status, 404);
  BOOST_CHECK_EQUAL(f.Do("POST", "/api/v1/namespaces/default/services/kubefold/proxy/x", f.alice).status, 404);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/other/proxy/x", f.alice).status, 403);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/kubefold", f.alice).status, 403);
  // Non-resource URLs with a trailing '*'.
  f.Create("/apis/rbac.authorization.k8s.io/v1/clusterroles",
           R"({"metadata":{"name":"metrics"},"rules":[{"nonResourceURLs":["/metrics","/debug/*"],"verbs":["get"]}]})");
  f.Create("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
           R"({"metadata":{"name":"alice-metrics"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"metrics"},"subjects":[{"kind":"User","name":"alice"}]})");
  BOOST_CHECK_EQUAL(f.Do("GET", "/metrics", f.alice).status, 404);
  BOOST_CHECK_EQUAL(f.Do("GET", "/debug/pprof", f.alice).status, 404);
  BOOST_CHECK_EQUAL(f.Do("GET", "/metricsx", f.alice).status, 403);
}

BOOST_AUTO_TEST_CASE(a_binding_to_a_missing_role_adds_the_rbac_error_to_the_denial) {
  Fixture f;
  f.Create("/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
           R"({"metadata":{"name":"dangling"},"roleRef":{"kind":"Role","name":"gone"},"subjects":[{"kind":"User","name":"alice"}]})");
  Recorder w = f.Do("GET", "/api/v1/namespaces/default/configmaps", f.alice);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "configmaps is forbidden: User \"alice\" cannot list resource \"configmaps\" in API group \"\" in "
                    "the namespace \"default\": RBAC: role.rbac.authorization.k8s.io \"gone\" not found");
  // The v1 defaults were stored: roleRef and subject apiGroup.
  Recorder rb = f.Do("GET", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/dangling", f.admin);
  BOOST_CHECK_EQUAL(rb.JsonBody()["subjects"][0]["apiGroup"], "rbac.authorization.k8s.io");
  BOOST_CHECK_EQUAL(rb.JsonBody()["roleRef"]["apiGroup"], "rbac.authorization.k8s.io");
}

BOOST_AUTO_TEST_CASE(rbac_objects_are_validated_as_a_real_server_does) {
  Fixture f;
  Recorder w = f.Do("POST", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/roles", f.admin,
                    R"({"metadata":{"name":"bad"},"rules":[{"nonResourceURLs":["/x"],"verbs":[]}]})");
  BOOST_CHECK_EQUAL(w.status, 422);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "Role.rbac.authorization.k8s.io \"bad\" is invalid: [rules[0].verbs: Required value: verbs must "
                    "contain at least one value, rules[0].nonResourceURLs: Invalid value: []string{\"/x\"}: namespaced "
                    "rules cannot apply to non-resource URLs]");
  w = f.Do("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", f.admin,
           R"({"metadata":{"name":"bad"},"roleRef":{"kind":"Role","name":"x"},"subjects":[{"kind":"Robot","name":"r"}]})");
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "ClusterRoleBinding.rbac.authorization.k8s.io \"bad\" is invalid: [roleRef.kind: Unsupported value: "
                    "\"Role\": supported values: \"ClusterRole\", subjects[0].kind: Unsupported value: \"Robot\": "
                    "supported values: \"ServiceAccount\", \"User\", \"Group\"]");
  f.Grant("default", "r1", R"([{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}])", "alice");
  w = f.Do("PATCH", "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings/r1", f.admin,
           R"({"roleRef":{"name":"other"}})", {{"Content-Type", "application/merge-patch+json"}});
  BOOST_CHECK_EQUAL(w.status, 422);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "RoleBinding.rbac.authorization.k8s.io \"r1\" is invalid: roleRef: Invalid value: "
                    "rbac.RoleRef{APIGroup:\"rbac.authorization.k8s.io\", Kind:\"Role\", Name:\"other\"}: cannot change "
                    "roleRef");
}

BOOST_AUTO_TEST_CASE(request_attributes_follow_the_apiservers_request_info_resolver) {
  auto r = ResolveRequest("GET", "/api/v1/namespaces/ns/pods", {{"watch", "true"}});
  BOOST_CHECK(r.resource_request);
  BOOST_CHECK_EQUAL(r.verb, "watch");
  r = ResolveRequest("GET", "/api/v1/watch/namespaces/ns/pods", {});
  BOOST_CHECK_EQUAL(r.verb, "watch");
  BOOST_CHECK_EQUAL(r.ns, "ns");
  r = ResolveRequest("GET", "/apis/apps/v1/namespaces/ns/deployments", {{"fieldSelector", "metadata.name=web"}});
  BOOST_CHECK_EQUAL(r.verb, "list");
  BOOST_CHECK_EQUAL(r.name, "web");
  r = ResolveRequest("DELETE", "/api/v1/namespaces/ns/configmaps", {});
  BOOST_CHECK_EQUAL(r.verb, "deletecollection");
  r = ResolveRequest("PUT", "/api/v1/namespaces/ns/finalize", {});
  BOOST_CHECK_EQUAL(r.resource, "namespaces");
  BOOST_CHECK_EQUAL(r.name, "ns");
  BOOST_CHECK_EQUAL(r.subresource, "finalize");
  r = ResolveRequest("PATCH", "/api/v1/namespaces/ns/services/https:web:443/proxy/a/b", {});
  BOOST_CHECK_EQUAL(r.verb, "patch");
  BOOST_CHECK_EQUAL(r.name, "https:web:443");
  BOOST_CHECK_EQUAL(r.subresource, "proxy");
  r = ResolveRequest("GET", "/apis/apps/v1", {});
  BOOST_CHECK(!r.resource_request);
  BOOST_CHECK_EQUAL(r.path, "/apis/apps/v1");
}

BOOST_AUTO_TEST_CASE(tokenreview_authenticates_our_tokens_and_refuses_others_as_a_real_server_does) {
  Fixture f;
  const std::string url = "/apis/authentication.k8s.io/v1/tokenreviews";
  Recorder w = f.Do("POST", url, f.admin, R"({"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview","spec":{"token":")" + f.alice + R"("}})");
  BOOST_REQUIRE_EQUAL(w.status, 201);
  Json got = w.JsonBody();
  BOOST_CHECK_EQUAL(got["status"].dump(),
                    R"({"authenticated":true,"user":{"username":"alice","uid":"uid-alice","groups":["devs","system:authenticated"]},"audiences":["https://kubernetes.default.svc.cluster.local"]})");
  BOOST_CHECK_EQUAL(got["spec"]["token"], f.alice);
  BOOST_CHECK(got["metadata"]["creationTimestamp"].is_null());
  BOOST_CHECK_EQUAL(got["metadata"]["managedFields"][0]["manager"], "auth_test");
  w = f.Do("POST", url, f.admin, R"({"spec":{"token":"nope"}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["status"].dump(), R"({"user":{},"error":"invalid bearer token"})");
  w = f.Do("POST", url, f.admin, R"({"spec":{"token":")" + f.alice + R"(","audiences":["other"]}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["status"].dump(), R"({"user":{},"error":"invalid bearer token"})");
  w = f.Do("POST", url, f.admin, R"({"spec":{}})");
  BOOST_CHECK_EQUAL(w.status, 400);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"], "token is required for TokenReview in authentication");
  BOOST_CHECK_EQUAL(f.Do("GET", url, f.admin).status, 405);
  // Creating one is a permission of its own.
  w = f.Do("POST", url, f.alice, R"({"spec":{"token":"x"}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "tokenreviews.authentication.k8s.io is forbidden: User \"alice\" cannot create resource "
                    "\"tokenreviews\" in API group \"authentication.k8s.io\" at the cluster scope");
}

BOOST_AUTO_TEST_CASE(subjectaccessreview_evaluates_the_spec_user_with_the_same_rbac) {
  Fixture f;
  f.Grant("default", "pod-reader", R"([{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}])", "alice");
  const std::string url = "/apis/authorization.k8s.io/v1/subjectaccessreviews";
  Recorder w = f.Do("POST", url, f.admin,
                    R"({"spec":{"user":"alice","resourceAttributes":{"namespace":"default","verb":"get","resource":"pods","name":"p"}}})");
  BOOST_REQUIRE_EQUAL(w.status, 201);
  BOOST_CHECK_EQUAL(w.JsonBody()["status"].dump(),
                    R"({"allowed":true,"reason":"RBAC: allowed by RoleBinding \"pod-reader/default\" of Role \"pod-reader\" to User \"alice\""})");
  BOOST_CHECK_EQUAL(w.JsonBody()["spec"].dump(),
                    R"({"resourceAttributes":{"namespace":"default","verb":"get","resource":"pods","name":"p"},"user":"alice"})");
  // The spec's groups are all the user has: no system:authenticated.
  w = f.Do("POST", url, f.admin, R"({"spec":{"user":"alice","nonResourceAttributes":{"path":"/api","verb":"get"}}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["status"].dump(), R"({"allowed":false})");
  w = f.Do("POST", url, f.admin,
           R"({"spec":{"user":"alice","groups":["system:authenticated"],"nonResourceAttributes":{"path":"/api","verb":"get"}}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["status"]["allowed"], true);
  w = f.Do("POST", url, f.admin, R"({"spec":{"groups":["system:masters"],"resourceAttributes":{"verb":"delete","resource":"nodes"}}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["status"].dump(), R"({"allowed":true})");
  // Validation: 422 with the internal (kind-less) group kind.
  w = f.Do("POST", url, f.admin, R"({"spec":{}})");
  BOOST_CHECK_EQUAL(w.status, 422);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    ".authorization.k8s.io \"\" is invalid: [spec.resourceAttributes: Invalid value: \"null\": exactly "
                    "one of nonResourceAttributes or resourceAttributes must be specified, spec.user: Invalid value: "
                    "\"\": at least one of user or group must be specified]");
  w = f.Do("POST", url, f.admin,
           R"({"spec":{"user":"a","resourceAttributes":{},"nonResourceAttributes":{"path":"/x","verb":"get"}}})");
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    ".authorization.k8s.io \"\" is invalid: spec.nonResourceAttributes: Invalid value: "
                    "authorization.NonResourceAttributes{Path:\"/x\", Verb:\"get\"}: cannot be specified in combination "
                    "with resourceAttributes");
  BOOST_CHECK_EQUAL(f.Do("POST", url, f.alice, R"({"spec":{"user":"a"}})").status, 403);
}

BOOST_AUTO_TEST_CASE(selfsubjectaccessreview_asks_for_the_requesting_user) {
  Fixture f;
  const std::string url = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
  const std::string get_pods = R"({"spec":{"resourceAttributes":{"namespace":"default","verb":"get","resource":"pods"}}})";
  BOOST_CHECK_EQUAL(f.Do("POST", url, f.alice, get_pods).JsonBody()["status"].dump(), R"({"allowed":false})");
  f.Grant("default", "pod-reader", R"([{"apiGroups":[""],"resources":["pods"],"verbs":["get"]}])", "alice");
  BOOST_CHECK_EQUAL(f.Do("POST", url, f.alice, get_pods).JsonBody()["status"]["allowed"], true);
  BOOST_CHECK_EQUAL(f.Do("POST", url, f.admin, get_pods).JsonBody()["status"].dump(), R"({"allowed":true})");
  Recorder w = f.Do("POST", url, f.alice, R"({"metadata":{"name":"x"},"spec":{"nonResourceAttributes":{}}})");
  BOOST_CHECK_EQUAL(w.status, 422);
  BOOST_CHECK(w.JsonBody()["message"].get<std::string>().starts_with(
      ".authorization.k8s.io \"\" is invalid: metadata: Invalid value: v1.ObjectMeta{Name:\"x\", "));
  // Impersonation needs the impersonate verb; the admin has it.
  Headers as_alice{{"Impersonate-User", "alice"}};
  BOOST_CHECK_EQUAL(f.Do("POST", url, f.admin, get_pods, as_alice).JsonBody()["status"]["allowed"], true);
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/nodes", f.admin, "", as_alice).status, 403);
  w = f.Do("GET", "/api/v1/nodes", f.alice, "", {{"Impersonate-User", "bob"}});
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "users \"bob\" is forbidden: User \"alice\" cannot impersonate resource \"users\" in API group \"\" "
                    "at the cluster scope");
}

// A backend for the proxy: echoes what it got, or streams.
struct Backend final : RequestHandler {
  std::mutex mu;
  std::condition_variable cv;
  bool first_seen = false;  // the proxy's client saw the first chunk
  Request last;

  void Handle(const Request& r, ResponseWriter& w) override {
    {
      std::lock_guard lock(mu);
      last = r;
    }
    if (r.path == "/stream") {
      w.StartChunked(200, {{"Content-Type", "text/plain"}});
      w.WriteChunk("one\n");
      std::unique_lock lock(mu);
      cv.wait_for(lock, 5s, [&] { return first_seen; });
      lock.unlock();
      w.WriteChunk("two\n");
      w.EndChunked();
      return;
    }
    Json echo{{"method", r.method}, {"path", r.path}, {"query", r.raw_query}, {"body", r.body}};
    w.Send(r.path == "/teapot" ? 418 : 200,
           {{"Content-Type", "application/json"}, {"X-Backend", "yes"}, {"Access-Control-Allow-Origin", "*"}},
           echo.dump());
  }
  std::string LastHeader(std::string_view name) {
    std::lock_guard lock(mu);
    return last.Header(name);
  }
};

struct ProxyFixture : Fixture {
  std::string ip = HostAddress();
  Backend backend;
  std::unique_ptr<HttpServer> plain, tls;
  CertificateAuthority ca{"backend-ca"};

  ProxyFixture() {
    if (ip.empty()) return;
    ServerOptions o;
    o.tls = false;
    o.bind = ip;
    plain = std::make_unique<HttpServer>(o, &backend);
    CertSpec spec;
    spec.cn = "backend";
    spec.san = "IP:" + ip;
    o.tls = true;
    o.serving = ca.Issue(spec);
    tls = std::make_unique<HttpServer>(o, &backend);
    Create("/api/v1/namespaces/default/pods", R"({"metadata":{"name":"web-0"},"spec":{"containers":[{"name":"web","image":"web"}]}})");
    Recorder w = Do("PATCH", "/api/v1/namespaces/default/pods/web-0/status", admin,
                    R"({"status":{"podIPs":[{"ip":")" + ip + R"("}]}})", {{"Content-Type", "application/merge-patch+json"}});
    BOOST_REQUIRE_EQUAL(w.status, 200);
    Create("/api/v1/namespaces/default/services",
           R"({"metadata":{"name":"web"},"spec":{"ports":[{"name":"http","port":80},{"name":"https","port":443}]}})");
    Create("/api/v1/namespaces/default/endpoints",
           R"({"metadata":{"name":"web"},"subsets":[{"addresses":[{"ip":")" + ip +
               R"(","targetRef":{"kind":"Pod","name":"web-0","namespace":"default"}}],"ports":[{"name":"http","port":)" +
               std::to_string(plain->port()) + R"(},{"name":"https","port":)" + std::to_string(tls->port()) + "}]}]}");
  }
};

BOOST_AUTO_TEST_CASE(the_proxy_forwards_to_a_plain_http_backend_as_a_real_apiserver_does) {
  ProxyFixture f;
  if (f.ip.empty()) {
    BOOST_TEST_MESSAGE("no non-loopback address on this host: proxy not tested");
    return;
  }
  Recorder w = f.Do("POST", "/api/v1/namespaces/default/services/web:80/proxy/some//path/../x?a=1&b=%2F", f.admin,
                    R"({"hello":1})", {{"X-Custom", "kept"}, {"Connection", "X-Drop"}, {"X-Drop", "gone"}});
  BOOST_REQUIRE_MESSAGE(w.status == 200, w.body);
  BOOST_CHECK_EQUAL(w.body, R"({"method":"POST","path":"/some/x","query":"a=1&b=%2F","body":"{\"hello\":1}"})");
  BOOST_CHECK_EQUAL(w.Header("X-Backend"), "yes");
  BOOST_CHECK_EQUAL(w.Header("Access-Control-Allow-Origin"), "");  // CORS headers are removed
  BOOST_CHECK_EQUAL(f.backend.LastHeader("Authorization"), "");     // the token stays with the apiserver
  BOOST_CHECK_EQUAL(f.backend.LastHeader("X-Custom"), "kept");
  BOOST_CHECK_EQUAL(f.backend.LastHeader("X-Drop"), "");
  BOOST_CHECK_EQUAL(f.backend.LastHeader("X-Forwarded-For"), "10.1.2.3");
  // Go: path.Join(TrimSuffix(request path, location), location); the
  // uncleaned request path does not end with the cleaned location.
  BOOST_CHECK_EQUAL(f.backend.LastHeader("X-Forwarded-Uri"),
                    "/api/v1/namespaces/default/services/web:80/proxy/some/x/some/x");
  f.Do("GET", "/api/v1/namespaces/default/services/web:80/proxy/a/b/", f.admin);
  BOOST_CHECK_EQUAL(f.backend.LastHeader("X-Forwarded-Uri"), "/api/v1/namespaces/default/services/web:80/proxy/a/b/");
  BOOST_CHECK_EQUAL(f.backend.LastHeader("Host"), "127.0.0.1:6443");
  // By port name, and the backend's status passes through.
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/web:http/proxy/teapot", f.admin).status, 418);
  // An empty path redirects to the trailing slash.
  w = f.Do("GET", "/api/v1/namespaces/default/services/web:80/proxy", f.admin);
  BOOST_CHECK_EQUAL(w.status, 301);
  BOOST_CHECK_EQUAL(w.Header("Location"), "/api/v1/namespaces/default/services/web:80/proxy/");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/web:80/proxy/", f.admin).JsonBody()["path"], "/");
}

BOOST_AUTO_TEST_CASE(the_proxy_streams_chunked_responses_and_speaks_https_without_verifying) {
  ProxyFixture f;
  if (f.ip.empty()) return;
  bool first_before_second = false;
  Request r;
  Recorder w;
  w.on_chunk = [&](const std::string& body) {
    if (body == "one\n") first_before_second = true;
    std::lock_guard lock(f.backend.mu);
    f.backend.first_seen = true;
    f.backend.cv.notify_all();
  };
  r.method = "GET";
  r.path = "/api/v1/namespaces/default/services/http:web:http/proxy/stream";
  r.headers = {{"Authorization", "Bearer " + f.admin}};
  const auto start = std::chrono::steady_clock::now();
  f.cluster.Handle(r, w);
  BOOST_CHECK(w.chunked);
  BOOST_CHECK(w.ended);
  BOOST_CHECK_EQUAL(w.body, "one\ntwo\n");
  BOOST_CHECK(first_before_second);
  BOOST_CHECK(std::chrono::steady_clock::now() - start < 4s);  // not held back until the end
  Recorder s = f.Do("GET", "/api/v1/namespaces/default/services/https:web:443/proxy/secure?x=1", f.admin);
  BOOST_CHECK_EQUAL(s.status, 200);
  BOOST_CHECK_EQUAL(s.JsonBody()["path"], "/secure");
  // https to the plain port: the TLS handshake fails.
  s = f.Do("GET", "/api/v1/namespaces/default/services/https:web:http/proxy/", f.admin);
  BOOST_CHECK_EQUAL(s.status, 503);
  BOOST_CHECK_EQUAL(s.JsonBody()["message"],
                    "error trying to reach service: tls: first record does not look like a TLS handshake");
}

BOOST_AUTO_TEST_CASE(the_proxy_fails_as_a_real_apiserver_does) {
  ProxyFixture f;
  if (f.ip.empty()) return;
  Recorder w = f.Do("GET", "/api/v1/namespaces/default/services/web:8080/proxy/", f.admin);
  BOOST_CHECK_EQUAL(w.body,
                    R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"no service port 8080 found for service \"web\"","reason":"ServiceUnavailable","code":503})");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/nope/proxy/", f.admin).JsonBody()["message"],
                    "endpoints \"nope\" not found");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/a:b:c:d/proxy/", f.admin).JsonBody()["message"],
                    "invalid service request \"a:b:c:d\"");
  f.Create("/api/v1/namespaces/default/endpoints", R"({"metadata":{"name":"empty"}})");
  w = f.Do("GET", "/api/v1/namespaces/default/services/empty/proxy/", f.admin);
  BOOST_CHECK_EQUAL(w.status, 503);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"], "no endpoints available for service \"empty\"");
  // An address without a pod that has its IP is skipped.
  f.Create("/api/v1/namespaces/default/endpoints",
           R"({"metadata":{"name":"orphan"},"subsets":[{"addresses":[{"ip":")" + f.ip + R"("}],"ports":[{"port":80}]}]})");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/http:orphan:/proxy/", f.admin).JsonBody()["message"],
                    "no endpoints available for service \"http:orphan:\"");
  // Nothing listens: connection refused.
  f.Create("/api/v1/namespaces/default/endpoints",
           R"({"metadata":{"name":"down"},"subsets":[{"addresses":[{"ip":")" + f.ip +
               R"(","targetRef":{"kind":"Pod","name":"web-0","namespace":"default"}}],"ports":[{"port":1}]}]})");
  w = f.Do("GET", "/api/v1/namespaces/default/services/down/proxy/", f.admin);
  BOOST_CHECK_EQUAL(w.status, 503);
  BOOST_CHECK_EQUAL(w.JsonBody()["message"], "error trying to reach service: dial tcp " + f.ip + ":1: connect: connection refused");
  // Endpoints may not point at loopback.
  w = f.Do("POST", "/api/v1/namespaces/default/endpoints", f.admin,
           R"({"metadata":{"name":"lo"},"subsets":[{"addresses":[{"ip":"127.0.0.1"}],"ports":[{"port":80}]}]})");
  BOOST_CHECK_EQUAL(w.JsonBody()["message"],
                    "Endpoints \"lo\" is invalid: subsets[0].addresses[0].ip: Invalid value: \"127.0.0.1\": may not be "
                    "in the loopback range (127.0.0.0/8, ::1/128)");
  // A user may proxy only with services/proxy.
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/web:80/proxy/", f.alice).status, 403);
  f.Grant("default", "proxier", R"([{"apiGroups":[""],"resources":["services/proxy"],"resourceNames":["web:80"],"verbs":["get"]}])",
          "alice");
  BOOST_CHECK_EQUAL(f.Do("GET", "/api/v1/namespaces/default/services/web:80/proxy/", f.alice).status, 200);
  BOOST_CHECK_EQUAL(f.Do("POST", "/api/v1/namespaces/default/services/web:80/proxy/", f.alice).status, 403);
}

}  // namespace
}  // namespace kubefold::emulator
