#define BOOST_TEST_MODULE rest_client_test
#include <boost/test/unit_test.hpp>

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "controllers/kube/rest_client.h"

using namespace kubefold::kube;
using kubefold::Result;
using kubefold::Status;
using kubefold::StatusCode;
using namespace std::chrono_literals;

namespace {

using Answer = std::function<Result<HttpResponse>(const HttpRequest&)>;

class FakeTransport : public Transport {
 public:
  std::vector<HttpRequest> sent;
  std::deque<Answer> answers;
  Result<HttpResponse> Send(const HttpRequest& r) override {
    sent.push_back(r);
    if (answers.empty()) return kubefold::Unavailable("no scripted answer");
    auto a = std::move(answers.front());
    answers.pop_front();
    return a(r);
  }
  Result<HttpStream> Open(const HttpRequest&) override { return kubefold::Unavailable("not used"); }
};

Answer Reply(int code, std::string body, Headers headers = {}) {
  return [=](const HttpRequest&) -> Result<HttpResponse> { return HttpResponse{code, headers, body}; };
}

std::string StatusBody(int code, const std::string& reason, const std::string& message) {
  return R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" + message +
         R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}";
}

// "old" until invalidated, then "new".
class RotatingTokens : public TokenSource {
 public:
  int invalidations = 0;
  Result<std::string> Token() override { return invalidations == 0 ? std::string("old") : std::string("new"); }
  void Invalidate() override { ++invalidations; }
};

struct Harness {
  FakeTransport* transport = nullptr;
  std::vector<std::chrono::nanoseconds> sleeps;
  Clock::time_point now{};
  std::unique_ptr<RestClient> client;

  explicit Harness(std::shared_ptr<TokenSource> tokens = std::make_shared<StaticTokenSource>("s3cr3t-token"),
                   RestClientOptions o = {}) {
    auto t = std::make_unique<FakeTransport>();
    transport = t.get();
    RestClientHooks hooks;
    hooks.clock = [this] { return now; };
    hooks.sleep = [this](std::chrono::nanoseconds d) {
      sleeps.push_back(d);
      now += d;
    };
    client = std::make_unique<RestClient>(std::move(t), std::move(tokens), o, hooks);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(resource_paths_follow_the_api_layout) {
  BOOST_TEST(ResourcePath("", "v1", "secrets", "kube-system", "kc") == "/api/v1/namespaces/kube-system/secrets/kc");
  BOOST_TEST(ResourcePath("apps", "v1", "deployments") == "/apis/apps/v1/deployments");
  BOOST_TEST(ResourcePath("kubefold.io", "v1alpha1", "memberclusters", "", "eu-1", "status") ==
             "/apis/kubefold.io/v1alpha1/memberclusters/eu-1/status");
  BOOST_TEST(ResourcePath("", "v1", "configmaps", "a b", "x/y") == "/api/v1/namespaces/a%20b/configmaps/x%2Fy");
}

BOOST_AUTO_TEST_CASE(a_get_carries_the_bearer_token_and_returns_the_body) {
  Harness h;
  h.transport->answers.push_back(Reply(200, R"({"kind":"Deployment"})"));
  auto r = h.client->Get("/apis/apps/v1/namespaces/shop/deployments/web");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(*r == R"({"kind":"Deployment"})");
  const HttpRequest& req = h.transport->sent.at(0);
  BOOST_TEST(req.method == "GET");
  BOOST_TEST(FindHeader(req.headers, "authorization") == "Bearer s3cr3t-token");
  BOOST_TEST(FindHeader(req.headers, "User-Agent") == "kubefold");
  BOOST_TEST(FindHeader(req.headers, "Accept") == "application/json");
  BOOST_TEST(req.timeout.count() == 30000);
}

BOOST_AUTO_TEST_CASE(error_answers_become_codes_the_caller_can_act_on) {
  Harness h;
  h.transport->answers.push_back(Reply(404, StatusBody(404, "NotFound", R"(deployments.apps \"web\" not found)")));
  h.transport->answers.push_back(Reply(409, StatusBody(409, "AlreadyExists", "exists")));
  h.transport->answers.push_back(Reply(409, StatusBody(409, "Conflict", "the object has been modified")));
  h.transport->answers.push_back(Reply(422, StatusBody(422, "Invalid", "spec.replicas: Invalid value: -1")));
  h.transport->answers.push_back(Reply(403, StatusBody(403, "Forbidden", "no")));
  h.transport->answers.push_back(Reply(410, StatusBody(410, "Gone", "gone")));
  h.transport->answers.push_back(Reply(500, "boom\n"));
  auto code = [&](auto r) { return r.status().code(); };
  auto nf = h.client->Get("/x");
  BOOST_TEST((nf.status().code() == StatusCode::kNotFound));
  BOOST_TEST(nf.status().message() == R"(HTTP 404 NotFound: deployments.apps "web" not found)");
  BOOST_TEST((code(h.client->Create("/x", "{}")) == StatusCode::kAlreadyExists));
  auto conflict = h.client->Update("/x", "{}");
  BOOST_TEST((conflict.status().code() == StatusCode::kConflict));
  BOOST_TEST(conflict.status().message() == "HTTP 409 Conflict: the object has been modified");
  BOOST_TEST((code(h.client->Patch("/x", "{}", {})) == StatusCode::kInvalidArgument));
  BOOST_TEST((code(h.client->Delete("/x")) == StatusCode::kPermissionDenied));
  BOOST_TEST((code(h.client->Get("/x")) == StatusCode::kGone));
  auto plain = h.client->Get("/x");
  BOOST_TEST((plain.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(plain.status().message() == "HTTP 500: boom");
  for (const HttpRequest& r : h.transport->sent) BOOST_TEST(r.body.find("s3cr3t") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_401_asks_the_token_source_again_and_retries_once) {
  auto tokens = std::make_shared<RotatingTokens>();
  Harness h(tokens);
  h.transport->answers.push_back([](const HttpRequest& r) -> Result<HttpResponse> {
    return HttpResponse{FindHeader(r.headers, "Authorization") == "Bearer new" ? 200 : 401, {}, "{}"};
  });
  h.transport->answers.push_back([](const HttpRequest& r) -> Result<HttpResponse> {
    return HttpResponse{FindHeader(r.headers, "Authorization") == "Bearer new" ? 200 : 401, {}, "{}"};
  });
  BOOST_TEST(h.client->Get("/x").ok());
  BOOST_TEST(tokens->invalidations == 1);
  BOOST_TEST(h.transport->sent.size() == 2u);

  // A second 401 in a row is returned, not retried forever.
  h.transport->answers.push_back(Reply(401, StatusBody(401, "Unauthorized", "Unauthorized")));
  h.transport->answers.push_back(Reply(401, StatusBody(401, "Unauthorized", "Unauthorized")));
  auto r = h.client->Get("/x");
  BOOST_TEST((r.status().code() == StatusCode::kUnauthenticated));
  BOOST_TEST(tokens->invalidations == 2);
  BOOST_TEST(h.transport->sent.size() == 4u);
}

BOOST_AUTO_TEST_CASE(retry_after_is_honoured_on_429_and_5xx_a_bounded_number_of_times) {
  Harness h;
  h.transport->answers.push_back(Reply(429, "Too many requests, please try again later.\n", {{"Retry-After", "2"}}));
  h.transport->answers.push_back(Reply(503, "unavailable", {{"retry-after", "1"}}));
  h.transport->answers.push_back(Reply(200, "ok"));
  auto r = h.client->Get("/x");
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  BOOST_TEST(h.sleeps.size() == 2u);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(h.sleeps.at(0)).count() == 2);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::seconds>(h.sleeps.at(1)).count() == 1);

  // Without Retry-After the answer comes back at once.
  h.transport->answers.push_back(Reply(429, "Too many requests, please try again later.\n"));
  auto throttled = h.client->Get("/x");
  BOOST_TEST((throttled.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(throttled.status().message() == "HTTP 429: Too many requests, please try again later.");

  // At most max_retries (3) retries.
  Harness g;
  for (int i = 0; i < 5; ++i) g.transport->answers.push_back(Reply(503, "down", {{"Retry-After", "1"}}));
  BOOST_TEST((g.client->Get("/x").status().code() == StatusCode::kUnavailable));
  BOOST_TEST(g.transport->sent.size() == 4u);
}

BOOST_AUTO_TEST_CASE(requests_are_paced_by_the_clusters_token_bucket) {
  RestClientOptions o;
  o.qps = 5;
  o.burst = 2;
  Harness h(nullptr, o);
  for (int i = 0; i < 4; ++i) h.transport->answers.push_back(Reply(200, "{}"));
  for (int i = 0; i < 4; ++i) BOOST_TEST(h.client->Get("/x").ok());
  BOOST_TEST_REQUIRE(h.sleeps.size() == 2u);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(h.sleeps[0]).count() == 200);
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(h.sleeps[1]).count() == 200);
  BOOST_TEST(FindHeader(h.transport->sent[0].headers, "Authorization").empty());  // no token source
}

BOOST_AUTO_TEST_CASE(patches_say_their_type_and_apply_needs_a_field_manager) {
  Harness h;
  for (int i = 0; i < 3; ++i) h.transport->answers.push_back(Reply(200, "{}"));
  BOOST_TEST(h.client->Patch("/p", R"({"spec":{}})", {PatchType::kMerge, "", false}).ok());
  BOOST_TEST(h.client->Patch("/p", R"([{"op":"add","path":"/a","value":1}])", {PatchType::kJsonPatch, "", false}).ok());
  BOOST_TEST(h.client->Patch("/p", R"({"apiVersion":"v1"})", {PatchType::kApply, "kubefold", true}).ok());
  BOOST_TEST(FindHeader(h.transport->sent[0].headers, "Content-Type") == "application/merge-patch+json");
  BOOST_TEST(FindHeader(h.transport->sent[1].headers, "Content-Type") == "application/json-patch+json");
  BOOST_TEST(FindHeader(h.transport->sent[2].headers, "Content-Type") == "application/apply-patch+yaml");
  BOOST_TEST(h.transport->sent[2].path_and_query == "/p?fieldManager=kubefold&force=true");
  BOOST_TEST(h.transport->sent[2].method == "PATCH");

  auto no_manager = h.client->Patch("/p", "{}", {PatchType::kApply, "", false});
  BOOST_TEST((no_manager.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(no_manager.status().message() ==
             "server-side apply needs a field manager (PatchOptions.field_manager is empty)");
  BOOST_TEST(h.transport->sent.size() == 3u);  // nothing sent
}
