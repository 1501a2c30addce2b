#define BOOST_TEST_MODULE reflector_test
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/kube/reflector.h"

using namespace kubefold::kube;
using kubefold::Result;
using kubefold::Status;
using namespace std::chrono_literals;

namespace {

const ResourceType kDeployments{"apps", "v1", "Deployment"};

// A scripted stream: chunks in order, then a clean end. A chunk may be an
// error. With `block`, Read waits (after the chunks) until Cancel.
class FakeStream : public BodyStream {
 public:
  std::deque<Result<std::string>> chunks;
  bool block = false;
  std::function<void()> on_read;  // before each Read

  Result<std::string> Read() override {
    if (on_read) on_read();
    std::unique_lock<std::mutex> lock(mu_);
    if (cancelled_) return kubefold::Cancelled("cancelled");
    if (!chunks.empty()) {
      auto c = std::move(chunks.front());
      chunks.pop_front();
      return c;
    }
    if (!block) return std::string();
    reading_ = true;
    cv_.notify_all();
    cv_.wait(lock, [&] { return cancelled_; });
    return kubefold::Cancelled("cancelled");
  }
  void Cancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }
  void WaitUntilBlocked() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return reading_; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool cancelled_ = false;
  bool reading_ = false;
};

using SendFn = std::function<Result<HttpResponse>(const HttpRequest&)>;
using OpenFn = std::function<Result<HttpStream>(const HttpRequest&)>;

// Answers Send and Open from scripts, in order; when a script runs dry it
// stops the reflector (set `reflector`) and fails the request.
class FakeTransport : public Transport {
 public:
  std::vector<HttpRequest> sent, opened;
  std::deque<SendFn> sends;
  std::deque<OpenFn> opens;
  Reflector* reflector = nullptr;

  Result<HttpResponse> Send(const HttpRequest& r) override {
    sent.push_back(r);
    if (sends.empty()) return Exhausted();
    auto f = std::move(sends.front());
    sends.pop_front();
    return f(r);
  }
  Result<HttpStream> Open(const HttpRequest& r) override {
    opened.push_back(r);
    if (opens.empty()) return Exhausted();
    auto f = std::move(opens.front());
    opens.pop_front();
    return f(r);
  }

 private:
  Status Exhausted() {
    if (reflector != nullptr) reflector->Stop();
    return kubefold::Unavailable("script exhausted");
  }
};

std::map<std::string, std::string> QueryOf(const std::string& path_and_query) {
  std::map<std::string, std::string> out;
  auto q = path_and_query.find('?');
  if (q == std::string::npos) return out;
  std::string rest = path_and_query.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    size_t amp = rest.find('&', pos);
    std::string kv = rest.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    auto eq = kv.find('=');
    std::string v = kv.substr(eq + 1), decoded;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '%' && i + 2 < v.size() + 1) {
        decoded += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += v[i];
      }
    }
    out[kv.substr(0, eq)] = decoded;
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return out;
}

std::string Item(const std::string& name, const std::string& rv) {
  return R"({"metadata":{"name":")" + name + R"(","namespace":"shop","resourceVersion":")" + rv +
         R"("},"spec":{"replicas":1}})";
}

SendFn ListAnswer(const std::string& rv, const std::string& cont, const std::vector<std::string>& items) {
  return [=](const HttpRequest&) -> Result<HttpResponse> {
    std::string body = R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":")" + rv +
                       R"(")" + (cont.empty() ? "" : R"(,"continue":")" + cont + R"(")") + R"(},"items":[)";
    for (size_t i = 0; i < items.size(); ++i) body += (i ? "," : "") + items[i];
    body += "]}";
    return HttpResponse{200, {}, body};
  };
}

SendFn StatusAnswer(int code, const std::string& reason, const std::string& message) {
  return [=](const HttpRequest&) -> Result<HttpResponse> {
    return HttpResponse{code, {},
                        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":")" +
                            message + R"(","reason":")" + reason + R"(","code":)" + std::to_string(code) + "}"};
  };
}

std::string WatchLine(const std::string& type, const std::string& name, const std::string& rv) {
  return R"({"type":")" + type + R"(","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":")" +
         name + R"(","namespace":"shop","resourceVersion":")" + rv + R"("}}})" + "\n";
}

std::string Bookmark(const std::string& rv) {
  return R"({"type":"BOOKMARK","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"resourceVersion":")" +
         rv + R"("}}})" + "\n";
}

// A 200 watch whose body is `text` cut into chunks of `step` bytes.
OpenFn WatchBody(const std::string& text, size_t step, FakeStream** keep = nullptr) {
  return [=](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    for (size_t i = 0; i < text.size(); i += step) s->chunks.emplace_back(text.substr(i, step));
    if (keep != nullptr) *keep = s.get();
    return HttpStream{200, {}, std::move(s)};
  };
}

struct Harness {
  FakeTransport transport;
  std::vector<ReflectorEvent> events;
  std::vector<std::chrono::milliseconds> sleeps;
  std::vector<std::string> logs;
  int unauthorized = 0;
  Clock::time_point now{};
  std::unique_ptr<Reflector> reflector;

  explicit Harness(bool streaming = false) {
    ReflectorOptions o;
    o.streaming_list = streaming;
    o.type = kDeployments;
    o.resource = "deployments";
    o.label_selector = "app=web,tier!=db";
    ReflectorHooks h;
    h.sink = [this](ReflectorEvent&& e) { events.push_back(std::move(e)); };
    h.log = [this](std::string_view m) { logs.emplace_back(m); };
    h.on_unauthorized = [this] { ++unauthorized; };
    h.clock = [this] { return now; };
    h.sleep = [this](std::chrono::milliseconds d) {
      sleeps.push_back(d);
      now += d;
      return true;
    };
    h.seed = 11;
    reflector = std::make_unique<Reflector>(transport, o, std::move(h));
    transport.reflector = reflector.get();
  }
  std::vector<std::string> Kinds() const {
    std::vector<std::string> out;
    for (const auto& e : events) {
      std::string k(ReflectorEventTypeName(e.type));
      if (e.type == ReflectorEventType::kReplace) k += "(" + std::to_string(e.objects.size()) + ")";
      if (e.type == ReflectorEventType::kAdded || e.type == ReflectorEventType::kModified ||
          e.type == ReflectorEventType::kDeleted) {
        k += " " + e.object.workload.key.name;
      }
      out.push_back(k + "@" + e.resource_version);
    }
    return out;
  }
  bool LogsContain(std::string_view part) const {
    for (const auto& l : logs)
      if (l.find(part) != std::string::npos) return true;
    return false;
  }
};

using Strings = std::vector<std::string>;

}  // namespace

BOOST_AUTO_TEST_CASE(lists_in_pages_then_watches_and_resumes_from_the_last_bookmark_after_a_clean_end) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("100", "c1", {Item("a", "90"), Item("b", "91")}));
  h.transport.sends.push_back(ListAnswer("100", "", {Item("c", "95")}));
  const std::string first = WatchLine("ADDED", "d", "101") + Bookmark("105");
  h.transport.opens.push_back(WatchBody(first, 3));  // events split across 3-byte chunks
  h.transport.opens.push_back(WatchBody(WatchLine("MODIFIED", "a", "106") + WatchLine("DELETED", "b", "107"), 7));
  h.reflector->Run();

  BOOST_TEST((h.Kinds() == Strings{"replace(3)@100", "synced@100", "added d@101", "modified a@106", "deleted b@107"}));
  BOOST_TEST_REQUIRE(h.transport.sent.size() == 2u);
  auto p1 = QueryOf(h.transport.sent[0].path_and_query);
  auto p2 = QueryOf(h.transport.sent[1].path_and_query);
  BOOST_TEST(h.transport.sent[0].path_and_query.rfind("/apis/apps/v1/deployments?", 0) == 0);
  BOOST_TEST(p1["limit"] == "500");
  BOOST_TEST(p1["labelSelector"] == "app=web,tier!=db");
  BOOST_TEST(!p1.count("continue"));
  BOOST_TEST(p2["continue"] == "c1");
  BOOST_TEST(!p2.count("resourceVersion"));

  BOOST_TEST_REQUIRE(h.transport.opened.size() == 3u);  // the third ran dry and stopped the run
  auto w1 = QueryOf(h.transport.opened[0].path_and_query);
  auto w2 = QueryOf(h.transport.opened[1].path_and_query);
  auto w3 = QueryOf(h.transport.opened[2].path_and_query);
  BOOST_TEST(w1["watch"] == "true");
  BOOST_TEST(w1["allowWatchBookmarks"] == "true");
  BOOST_TEST(w1["resourceVersion"] == "100");
  BOOST_TEST(w2["resourceVersion"] == "105");  // from the bookmark, without relisting
  BOOST_TEST(w3["resourceVersion"] == "107");
  for (const auto& w : {w1, w2, w3}) {
    int t = std::stoi(w.at("timeoutSeconds"));
    BOOST_TEST((t >= 300 && t < 600), "timeoutSeconds " << t);
  }
  BOOST_TEST(h.transport.opened[0].timeout.count() == 120000);  // the inactivity deadline
  BOOST_TEST(h.sleeps.empty());  // nothing failed (the exhausted script stops the run)
  ReflectorStats s = h.reflector->stats();
  BOOST_TEST(s.lists == 1u);
  BOOST_TEST(s.events == 3u);
  BOOST_TEST(s.bookmarks == 1u);
  BOOST_TEST(h.events[0].objects[2].workload.key.name == "c");
}

BOOST_AUTO_TEST_CASE(an_expired_watch_relists_and_hands_over_a_replace) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("10", "", {Item("a", "9")}));
  h.transport.opens.push_back(WatchBody(
      WatchLine("ADDED", "b", "11") +
          R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 10 (40)","reason":"Expired","code":410}})j"
          "\n",
      64));
  h.transport.sends.push_back(ListAnswer("50", "", {Item("a", "9"), Item("c", "45")}));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@10", "synced@10", "added b@11", "replace(2)@50", "synced@50"}));
  BOOST_TEST_REQUIRE(h.transport.opened.size() == 2u);
  BOOST_TEST(QueryOf(h.transport.opened[1].path_and_query)["resourceVersion"] == "50");
  BOOST_TEST_REQUIRE(h.sleeps.size() >= 1u);
  BOOST_TEST((h.sleeps[0] >= 800ms && h.sleeps[0] < 1600ms));
  BOOST_TEST(h.reflector->stats().expired == 1u);
  BOOST_TEST(h.LogsContain("HTTP 410 Expired: too old resource version: 10 (40); relisting"));
}

BOOST_AUTO_TEST_CASE(a_410_when_opening_the_watch_also_relists) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("10", "", {}));
  h.transport.opens.push_back([](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    s->chunks.emplace_back(R"({"kind":"Status","status":"Failure","message":"gone","reason":"Gone","code":410})");
    return HttpStream{410, {}, std::move(s)};
  });
  h.transport.sends.push_back(ListAnswer("20", "", {Item("a", "19")}));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(0)@10", "synced@10", "replace(1)@20", "synced@20"}));
  BOOST_TEST(h.reflector->stats().expired == 1u);
}

// A 504 Timeout with the cause ResourceVersionTooLarge (§1.6), or the older
// servers' message alone: the resume point is beyond what the server has
// reached, so the reflector relists (lists carry no resourceVersion) after
// at least Retry-After, instead of asking again for the same resume point.
BOOST_AUTO_TEST_CASE(a_too_large_resource_version_when_opening_the_watch_relists) {
  for (bool with_cause : {true, false}) {
    BOOST_TEST_CONTEXT("with the cause: " << with_cause) {
      Harness h;
      h.transport.sends.push_back(ListAnswer("10", "", {Item("a", "9")}));
      h.transport.opens.push_back([with_cause](const HttpRequest&) -> Result<HttpStream> {
        auto s = std::make_unique<FakeStream>();
        std::string body =
            R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Timeout: Too large resource version: 10, current: 8","reason":"Timeout","details":{)";
        body += with_cause
                    ? R"("causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1})"
                    : R"("retryAfterSeconds":1})";
        body += R"(,"code":504})";
        s->chunks.emplace_back(body);
        return HttpStream{504, {{"Retry-After", "3"}}, std::move(s)};
      });
      h.transport.sends.push_back(ListAnswer("12", "", {Item("a", "9"), Item("b", "11")}));
      h.reflector->Run();
      BOOST_TEST((h.Kinds() == Strings{"replace(1)@10", "synced@10", "replace(2)@12", "synced@12"}));
      BOOST_TEST_REQUIRE(h.transport.sent.size() == 2u);  // the relist
      BOOST_TEST(!QueryOf(h.transport.sent[1].path_and_query).count("resourceVersion"));
      BOOST_TEST_REQUIRE(h.transport.opened.size() == 2u);
      BOOST_TEST(QueryOf(h.transport.opened[1].path_and_query)["resourceVersion"] == "12");
      BOOST_TEST_REQUIRE(h.sleeps.size() >= 1u);
      BOOST_TEST(h.sleeps[0] >= 3000ms);  // Retry-After
      BOOST_TEST(h.LogsContain("Too large resource version: 10, current: 8; relisting from the newest state"));
    }
  }
}

// Any other 504 (a gateway timeout) is retried at the same resume point.
BOOST_AUTO_TEST_CASE(another_504_when_opening_the_watch_resumes_from_the_same_point) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("10", "", {Item("a", "9")}));
  h.transport.opens.push_back([](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    s->chunks.emplace_back("upstream request timeout");
    return HttpStream{504, {}, std::move(s)};
  });
  h.transport.opens.push_back(WatchBody(WatchLine("ADDED", "b", "11"), 64));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@10", "synced@10", "added b@11"}));
  BOOST_TEST(h.transport.sent.size() == 1u);  // no relist
  BOOST_TEST_REQUIRE(h.transport.opened.size() >= 2u);
  BOOST_TEST(QueryOf(h.transport.opened[1].path_and_query)["resourceVersion"] == "10");
}

BOOST_AUTO_TEST_CASE(an_expired_continue_token_falls_back_to_one_full_list) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("7", "c1", {Item("a", "5")}));
  h.transport.sends.push_back(StatusAnswer(410, "Expired", "The provided continue parameter is too old"));
  h.transport.sends.push_back(ListAnswer("9", "", {Item("a", "5"), Item("b", "8")}));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(2)@9", "synced@9"}));
  BOOST_TEST_REQUIRE(h.transport.sent.size() == 3u);
  auto full = QueryOf(h.transport.sent[2].path_and_query);
  BOOST_TEST(!full.count("limit"));
  BOOST_TEST(!full.count("continue"));
  BOOST_TEST(h.LogsContain("continue token expired"));
}

BOOST_AUTO_TEST_CASE(throttling_waits_for_retry_after_and_401_refreshes_credentials) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("1", "", {}));
  h.transport.opens.push_back([](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    s->chunks.emplace_back("Too many requests, please try again later.\n");
    return HttpStream{429, {{"retry-after", "7"}}, std::move(s)};
  });
  h.transport.opens.push_back([](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    s->chunks.emplace_back(R"({"kind":"Status","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401})");
    return HttpStream{401, {}, std::move(s)};
  });
  h.reflector->Run();
  BOOST_TEST_REQUIRE(h.sleeps.size() >= 2u);
  BOOST_TEST(h.sleeps[0].count() == 7000);  // Retry-After beats the 800 ms backoff
  BOOST_TEST(h.unauthorized == 1);
  BOOST_TEST(h.LogsContain("HTTP 429: Too many requests, please try again later."));
  BOOST_TEST_REQUIRE(h.transport.opened.size() == 3u);
  BOOST_TEST(QueryOf(h.transport.opened[2].path_and_query)["resourceVersion"] == "1");  // no relist
  BOOST_TEST(h.transport.sent.size() == 1u);
}

BOOST_AUTO_TEST_CASE(a_garbage_line_restarts_the_watch_from_the_last_event_without_relisting) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("1", "", {}));
  h.transport.opens.push_back(WatchBody(WatchLine("ADDED", "a", "2") + "not json\n" + WatchLine("ADDED", "z", "3"), 5));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(0)@1", "synced@1", "added a@2"}));
  BOOST_TEST_REQUIRE(h.transport.opened.size() == 2u);
  BOOST_TEST(QueryOf(h.transport.opened[1].path_and_query)["resourceVersion"] == "2");
  BOOST_TEST(h.transport.sent.size() == 1u);
  BOOST_TEST(h.LogsContain("watch line is not valid JSON"));
}

BOOST_AUTO_TEST_CASE(a_watch_cut_inside_an_event_or_closed_at_once_backs_off) {
  Harness h;
  h.transport.sends.push_back(ListAnswer("1", "", {}));
  h.transport.opens.push_back(WatchBody("", 1));  // closed at once, no event, no time passed
  h.transport.opens.push_back(WatchBody(WatchLine("ADDED", "a", "2").substr(0, 20), 4));  // half an event
  h.reflector->Run();
  BOOST_TEST(h.LogsContain("very short watch"));
  BOOST_TEST(h.LogsContain("the stream ended inside an event (20 bytes)"));
  BOOST_TEST_REQUIRE(h.sleeps.size() == 2u);
  BOOST_TEST((h.sleeps[1] >= 1600ms && h.sleeps[1] < 3200ms));  // the backoff grows
}

BOOST_AUTO_TEST_CASE(transport_failures_before_the_first_list_retry_the_list) {
  Harness h;
  h.transport.sends.push_back([](const HttpRequest&) -> Result<HttpResponse> {
    return kubefold::Unavailable("connection refused");
  });
  h.transport.sends.push_back(ListAnswer("3", "", {Item("a", "2")}));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@3", "synced@3"}));
  BOOST_TEST(h.LogsContain("list /apis/apps/v1/deployments: connection refused; retrying in"));
}

BOOST_AUTO_TEST_CASE(wake_ends_a_backoff_at_once) {
  FakeTransport transport;
  std::atomic<int> attempts{0};
  auto list = ListAnswer("3", "", {Item("a", "2")});
  transport.sends.push_back([&](const HttpRequest&) -> Result<HttpResponse> {
    ++attempts;
    return kubefold::Unavailable("connection refused");
  });
  transport.sends.push_back([&](const HttpRequest& r) -> Result<HttpResponse> {
    ++attempts;
    return list(r);
  });
  ReflectorOptions o;
  o.type = kDeployments;
  o.resource = "deployments";
  o.backoff.initial = 60s;  // without Wake the retry would be a minute away
  o.backoff.cap = 60s;
  o.backoff.jitter = 0;
  std::atomic<int> synced{0};
  ReflectorHooks hooks;
  hooks.sink = [&](ReflectorEvent&& e) {
    if (e.type == ReflectorEventType::kSynced) ++synced;
  };
  Reflector reflector(transport, o, std::move(hooks));
  transport.reflector = &reflector;
  std::thread runner([&] { reflector.Run(); });
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (attempts.load() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  BOOST_TEST_REQUIRE(attempts.load() == 1);
  std::this_thread::sleep_for(50ms);  // in its backoff now
  const auto woken = std::chrono::steady_clock::now();
  reflector.Wake();
  while (synced.load() < 1 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  BOOST_TEST(synced.load() == 1);
  BOOST_TEST((std::chrono::steady_clock::now() - woken < 10s));  // not the 60 s backoff
  reflector.Stop();
  runner.join();
  BOOST_TEST(attempts.load() == 2);
}

BOOST_AUTO_TEST_CASE(stop_from_another_thread_cancels_an_open_watch) {
  FakeTransport transport;
  std::atomic<FakeStream*> stream{nullptr};
  transport.sends.push_back(ListAnswer("1", "", {}));
  transport.opens.push_back([&](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    s->block = true;
    stream.store(s.get());
    return HttpStream{200, {}, std::move(s)};
  });
  ReflectorOptions o;
  o.type = kDeployments;
  o.resource = "deployments";
  o.namespace_name = "shop";
  std::atomic<int> events{0};
  ReflectorHooks hooks;
  hooks.sink = [&](ReflectorEvent&&) { ++events; };
  Reflector reflector(transport, o, std::move(hooks));
  std::thread runner([&] { reflector.Run(); });
  // Wait (with a deadline) until the watch is open and blocked in Read.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (events.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  BOOST_TEST_REQUIRE(events.load() == 2);
  while (stream.load() == nullptr && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
  BOOST_TEST_REQUIRE(stream.load() != nullptr);
  stream.load()->WaitUntilBlocked();
  reflector.Stop();
  runner.join();
  BOOST_TEST(transport.opened.size() == 1u);
  BOOST_TEST(transport.opened[0].path_and_query.rfind("/apis/apps/v1/namespaces/shop/deployments?", 0) == 0);
}

namespace {
std::string EndBookmark(const std::string& rv) {
  return R"({"type":"BOOKMARK","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"resourceVersion":")" +
         rv + R"(","annotations":{"k8s.io/initial-events-end":"true"}}}})" + "\n";
}
}  // namespace

BOOST_AUTO_TEST_CASE(a_streaming_list_replaces_at_its_bookmark_and_goes_on_as_a_watch) {
  Harness h(/*streaming=*/true);
  h.transport.opens.push_back(WatchBody(WatchLine("ADDED", "a", "20") + WatchLine("ADDED", "b", "25") +
                                            EndBookmark("30") + WatchLine("MODIFIED", "a", "31"),
                                        9));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(2)@30", "synced@30", "modified a@31"}));
  BOOST_TEST(h.transport.sent.empty());  // no LIST at all
  BOOST_TEST_REQUIRE(h.transport.opened.size() == 2u);
  auto first = QueryOf(h.transport.opened[0].path_and_query);
  BOOST_TEST(first["sendInitialEvents"] == "true");
  BOOST_TEST(first["resourceVersionMatch"] == "NotOlderThan");
  BOOST_TEST(first["allowWatchBookmarks"] == "true");
  BOOST_TEST(!first.count("resourceVersion"));
  auto second = QueryOf(h.transport.opened[1].path_and_query);
  BOOST_TEST(!second.count("sendInitialEvents"));
  BOOST_TEST(second["resourceVersion"] == "31");
}

BOOST_AUTO_TEST_CASE(a_server_that_refuses_streaming_lists_gets_list_and_watch) {
  Harness h(/*streaming=*/true);
  h.transport.opens.push_back([](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    s->chunks.emplace_back(
        R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"ListOptions.meta.k8s.io \"\" is invalid: sendInitialEvents: Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is enabled","reason":"Invalid","code":422})");
    return HttpStream{422, {}, std::move(s)};
  });
  h.transport.sends.push_back(ListAnswer("8", "", {Item("a", "7")}));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@8", "synced@8"}));
  BOOST_TEST(h.sleeps.empty());  // a fallback, not a failure
  BOOST_TEST_REQUIRE(h.transport.opened.size() == 2u);
  BOOST_TEST(!QueryOf(h.transport.opened[1].path_and_query).count("sendInitialEvents"));
  BOOST_TEST(h.LogsContain("falling back to list and watch"));
}

BOOST_AUTO_TEST_CASE(a_streaming_list_never_waits_forever_for_its_bookmark) {
  // Events keep coming but the bookmark never does: after the deadline the
  // reflector lists instead. The clock advances 20 s per read.
  Harness h(/*streaming=*/true);
  FakeStream* endless = nullptr;
  h.transport.opens.push_back([&](const HttpRequest&) -> Result<HttpStream> {
    auto s = std::make_unique<FakeStream>();
    for (int i = 0; i < 100; ++i) s->chunks.emplace_back(WatchLine("ADDED", "w" + std::to_string(i), "5"));
    s->on_read = [&] { h.now += 20s; };
    endless = s.get();
    return HttpStream{200, {}, std::move(s)};
  });
  h.transport.sends.push_back(ListAnswer("9", "", {Item("a", "7")}));
  h.reflector->Run();
  BOOST_TEST(endless != nullptr);
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@9", "synced@9"}));
  BOOST_TEST(h.LogsContain("no initial-events-end bookmark within 60000 ms; falling back to list and watch"));

  // A stream that ends before the bookmark falls back too.
  Harness cut(/*streaming=*/true);
  cut.transport.opens.push_back(WatchBody(WatchLine("ADDED", "a", "3"), 11));
  cut.transport.sends.push_back(ListAnswer("4", "", {Item("a", "3")}));
  cut.reflector->Run();
  BOOST_TEST((cut.Kinds() == Strings{"replace(1)@4", "synced@4"}));
  BOOST_TEST(cut.LogsContain("the stream ended before the initial-events-end bookmark"));
}

// A failed streaming list falls back for that attempt only (client-go's
// reflector does the same): once a 410 calls for the next relist, it
// streams again. Only a 422 means the server does not stream at all.
BOOST_AUTO_TEST_CASE(a_failed_streaming_list_falls_back_for_that_attempt_only) {
  Harness h(/*streaming=*/true);
  h.transport.opens.push_back(WatchBody(WatchLine("ADDED", "a", "3"), 11));  // ends before its bookmark
  h.transport.sends.push_back(ListAnswer("4", "", {Item("a", "3")}));
  h.transport.opens.push_back(WatchBody(
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 4 (9)","reason":"Expired","code":410}})j"
      "\n",
      64));
  h.transport.opens.push_back(WatchBody(WatchLine("ADDED", "a", "10") + EndBookmark("12"), 64));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@4", "synced@4", "replace(1)@12", "synced@12"}));
  BOOST_TEST(h.transport.sent.size() == 1u);  // one plain list, for the failed attempt
  BOOST_TEST_REQUIRE(h.transport.opened.size() >= 3u);
  BOOST_TEST(QueryOf(h.transport.opened[0].path_and_query)["sendInitialEvents"] == "true");
  BOOST_TEST(QueryOf(h.transport.opened[1].path_and_query)["resourceVersion"] == "4");
  BOOST_TEST(QueryOf(h.transport.opened[2].path_and_query)["sendInitialEvents"] == "true");
}

// After its initial-events-end bookmark a streaming list is a plain watch: a
// bad line resumes from the last event, without listing again.
BOOST_AUTO_TEST_CASE(a_bad_line_after_the_initial_events_resumes_the_watch_without_relisting) {
  Harness h(/*streaming=*/true);
  h.transport.opens.push_back(
      WatchBody(WatchLine("ADDED", "a", "20") + EndBookmark("30") + WatchLine("MODIFIED", "a", "31") + "not json\n", 9));
  h.transport.opens.push_back(WatchBody(WatchLine("MODIFIED", "a", "32"), 64));
  h.reflector->Run();
  BOOST_TEST((h.Kinds() == Strings{"replace(1)@30", "synced@30", "modified a@31", "modified a@32"}));
  BOOST_TEST(h.transport.sent.empty());
  BOOST_TEST_REQUIRE(h.transport.opened.size() >= 2u);
  auto second = QueryOf(h.transport.opened[1].path_and_query);
  BOOST_TEST(!second.count("sendInitialEvents"));
  BOOST_TEST(second["resourceVersion"] == "31");
}
