// Bad input from a member cluster's API server: objects over the size
// bounds, deeply nested JSON, invalid UTF-8, a huge label set, thousands of
// namespaces, and a server that answers garbage. The real HTTP transport
// (cpprestsdk), Reflector and Folder run against a local plain-HTTP server
// whose every byte the test writes (tls_test_server.h), and fold into a real
// state::Store. Each case asserts the reason the reflector logs (it must
// name the cause), what the store holds (nothing already folded is lost,
// nothing corrupt gets in) and, where the input is large, that the client
// stopped reading early and the process's memory stayed bounded.
#define BOOST_TEST_MODULE bad_input_test
#include <boost/test/unit_test.hpp>

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/folder.h"
#include "controllers/health.h"
#include "controllers/internal/json_scan.h"
#include "controllers/kube/http_transport.h"
#include "controllers/kube/reflector.h"
#include "state/store.h"
#include "tests/controllers/kube/tls_test_server.h"

namespace kubefold::kube {
namespace {

using namespace std::chrono_literals;
using controllers::Folder;
using testing::HeaderList;
using testing::ReceivedRequest;
using testing::ServerConnection;
using testing::ServerOptions;
using testing::TestServer;
using Clock = std::chrono::steady_clock;

const ResourceType kDeployments{"apps", "v1", "Deployment"};
constexpr char kCluster[] = "east";
constexpr size_t kMiB = size_t{1} << 20;
const HeaderList kJson = {{"Content-Type", "application/json"}};

// ---------------------------------------------------------------------------
// Memory: the kernel's peak resident set (VmHWM), reset before a case so the
// reading covers that case alone. Sanitizers inflate RSS (shadow memory,
// quarantine), so there only the functional assertions run.
// ---------------------------------------------------------------------------

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitized = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
constexpr bool kSanitized = true;
#else
constexpr bool kSanitized = false;
#endif
#else
constexpr bool kSanitized = false;
#endif

// RSS must track live memory. jemalloc builds get that for large buffers
// from kubefold's options (cmake/jemalloc_conf.cpp; mallopt does nothing
// there); on glibc's malloc, glibc otherwise keeps what is freed in
// per-thread arenas (the transport's threads and the server's, one per
// connection, each have one) and the peak would count tens of MB the
// process no longer uses. Set before any thread starts.
struct TrimFreedMemory {
  TrimFreedMemory() { mallopt(M_TRIM_THRESHOLD, 0); }
};

size_t ProcStatusBytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

class PeakRss {
 public:
  // Resets VmHWM to the current RSS ("5" to clear_refs, Linux >= 4.0).
  PeakRss() {
    std::ofstream clear("/proc/self/clear_refs");
    clear << "5";
    clear.flush();
    valid_ = !kSanitized && clear.good();
    baseline_ = ProcStatusBytes("VmRSS");
  }
  // False under a sanitizer or when the mark could not be reset.
  bool valid() const { return valid_; }
  // How far the peak rose above the RSS at construction.
  size_t Growth() const {
    const size_t peak = ProcStatusBytes("VmHWM");
    return peak > baseline_ ? peak - baseline_ : 0;
  }

 private:
  bool valid_ = false;
  size_t baseline_ = 0;
};

// ---------------------------------------------------------------------------
// JSON the server sends
// ---------------------------------------------------------------------------

// A Deployment as a list item (no kind or apiVersion); `extra_metadata` and
// `extra_spec` are JSON members appended inside metadata and spec.
std::string Deployment(const std::string& ns, const std::string& name, const std::string& rv, int replicas = 1,
                       const std::string& extra_metadata = "", const std::string& extra_spec = "") {
  return R"({"metadata":{"name":")" + name + R"(","namespace":")" + ns + R"(","resourceVersion":")" + rv +
         R"(","uid":")" + name + R"(-uid")" + (extra_metadata.empty() ? "" : "," + extra_metadata) +
         R"(},"spec":{"replicas":)" + std::to_string(replicas) + (extra_spec.empty() ? "" : "," + extra_spec) + "}}";
}

// A watch line carrying `object` (a Deployment() item, to which the type
// fields a watch object has are added).
std::string Event(const std::string& type, const std::string& object) {
  return R"({"type":")" + type + R"(","object":{"kind":"Deployment","apiVersion":"apps/v1",)" + object.substr(1) +
         "}\n";
}

const std::string kExpired =
    R"json({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: 5 (9)","reason":"Expired","code":410}})json"
    "\n";

std::string ListBody(const std::string& rv, const std::vector<std::string>& items, const std::string& cont = "") {
  std::string body = R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":")" + rv +
                     R"(")" + (cont.empty() ? "" : R"(,"continue":")" + cont + R"(")") + R"(},"items":[)";
  for (size_t i = 0; i < items.size(); ++i) body += (i ? "," : "") + items[i];
  return body + "]}";
}

// `depth` nested arrays (or objects {"a":...}) around 1.
std::string Nested(size_t depth, bool objects = false) {
  std::string out;
  out.reserve(depth * 6 + 1);
  for (size_t i = 0; i < depth; ++i) out += objects ? R"({"a":)" : "[";
  out += "1";
  for (size_t i = 0; i < depth; ++i) out += objects ? "}" : "]";
  return out;
}

// The value of query parameter `key` in a request target, percent-decoded.
std::string QueryParam(const std::string& target, const std::string& key) {
  const size_t q = target.find('?');
  if (q == std::string::npos) return "";
  const std::string query = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string::npos) amp = query.size();
    const std::string kv = query.substr(pos, amp - pos);
    const size_t eq = kv.find('=');
    if (kv.substr(0, eq) == key) {
      std::string v = eq == std::string::npos ? "" : kv.substr(eq + 1), out;
      for (size_t i = 0; i < v.size(); ++i) {
        if (v[i] == '%' && i + 2 < v.size()) {
          out += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
          i += 2;
        } else {
          out += v[i];
        }
      }
      return out;
    }
    pos = amp + 1;
  }
  return "";
}

// True when `s` can be written by nlohmann::json's dump() in its default
// (strict) mode, which throws type_error 316 on invalid UTF-8: what every
// log line and condition message must survive.
bool DumpsStrictly(const std::string& s) {
  try {
    (void)nlohmann::json(s).dump();
    return true;
  } catch (const nlohmann::json::type_error&) {
    return false;
  }
}

bool Eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = 10s) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return pred();
}

// ---------------------------------------------------------------------------
// The API server: lists and watches of apps/v1 deployments are answered from
// queues of scripted responders (each used once, in order), then by a
// fallback; any other path by `other`.
// ---------------------------------------------------------------------------

using Responder = std::function<void(const ReceivedRequest&, ServerConnection&)>;

class ScriptedServer {
 public:
  ScriptedServer() : server_(Plain(), [this](const ReceivedRequest& r, ServerConnection& c) { Dispatch(r, c); }) {}
  ~ScriptedServer() { closing_.store(true); }

  std::string Url() const { return server_.Url(); }

  void QueueList(Responder r) { Locked([&] { lists_queued_.push_back(std::move(r)); }); }
  void QueueWatch(Responder r) { Locked([&] { watches_queued_.push_back(std::move(r)); }); }
  void SetListFallback(Responder r) { Locked([&] { list_fallback_ = std::move(r); }); }
  void SetWatchFallback(Responder r) { Locked([&] { watch_fallback_ = std::move(r); }); }
  void SetOther(Responder r) { Locked([&] { other_ = std::move(r); }); }

  std::vector<ReceivedRequest> Lists() const {
    std::lock_guard<std::mutex> lock(mu_);
    return lists_;
  }
  std::vector<ReceivedRequest> Watches() const {
    std::lock_guard<std::mutex> lock(mu_);
    return watches_;
  }

  // Ends every held watch (Watch(..., hold=true)): it writes its closing
  // lines and the terminating chunk.
  void EndHeldWatches() { epoch_.fetch_add(1); }

  // 200, application/json, chunked: `lines`, then (with `hold`) nothing
  // until the client hangs up or EndHeldWatches, then `closing` and the
  // clean end of the body.
  Responder Watch(std::vector<std::string> lines, bool hold = true, std::vector<std::string> closing = {}) {
    return [this, lines, hold, closing](const ReceivedRequest&, ServerConnection& c) {
      const int epoch = epoch_.load();
      if (!c.StartChunked(200, kJson)) return;
      for (const auto& l : lines) {
        if (!c.Chunk(l)) return;
      }
      while (hold && epoch_.load() == epoch && !closing_.load()) {
        if (c.StallUntilPeerCloses(20ms)) return;
      }
      for (const auto& l : closing) {
        if (!c.Chunk(l)) return;
      }
      c.EndChunked();
    };
  }

 private:
  static ServerOptions Plain() {
    ServerOptions o;
    o.tls = false;
    return o;
  }
  template <class F>
  void Locked(F f) {
    std::lock_guard<std::mutex> lock(mu_);
    f();
  }
  void Dispatch(const ReceivedRequest& r, ServerConnection& c) {
    Responder f;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (r.target.rfind("/apis/apps/v1/", 0) != 0) {
        f = other_;
      } else {
        const bool watch = QueryParam(r.target, "watch") == "true";
        auto& queue = watch ? watches_queued_ : lists_queued_;
        (watch ? watches_ : lists_).push_back(r);
        if (!queue.empty()) {
          f = std::move(queue.front());
          queue.pop_front();
        } else {
          f = watch ? watch_fallback_ : list_fallback_;
        }
      }
    }
    if (f) {
      f(r, c);
    } else {
      c.Respond(404, kJson, R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","code":404})");
    }
  }

  mutable std::mutex mu_;
  std::deque<Responder> lists_queued_, watches_queued_;  // Guarded by mu_
  Responder list_fallback_, watch_fallback_, other_;     // Guarded by mu_
  std::vector<ReceivedRequest> lists_, watches_;         // Guarded by mu_
  std::atomic<int> epoch_{0};
  std::atomic<bool> closing_{false};
  TestServer server_;  // last: destroyed first, joining the handlers that use the members above
};

Responder Respond(int status, HeaderList headers, std::string body) {
  return [status, headers = std::move(headers), body = std::move(body)](const ReceivedRequest&, ServerConnection& c) {
    c.Respond(status, headers, body);
  };
}

Responder Json200(std::string body) { return Respond(200, kJson, std::move(body)); }

// ---------------------------------------------------------------------------
// One member cluster: the real transport and reflector against the scripted
// server, folding into a store through a Folder.
// ---------------------------------------------------------------------------

class Harness {
 public:
  explicit Harness(const std::function<void(ReflectorOptions&)>& tune = {}) {
    RestConfig config;
    config.server = server.Url();
    auto t = NewHttpTransport(config);
    BOOST_TEST_REQUIRE(t.ok(), t.status().ToString());
    transport = std::move(*t);
    controllers::FolderOptions fo;
    fo.on_published = [this](uint64_t) {
      const uint64_t n = store.Current().CountWorkloads(kCluster);
      std::lock_guard<std::mutex> lock(mu_);
      counts_.push_back(n);
    };
    folder = std::make_unique<Folder>(store, fo, [this](std::string_view m) { AddLog(m); });
    folder->AddCluster(kCluster);
    options.type = kDeployments;
    options.resource = "deployments";
    options.backoff.initial = 5ms;
    options.backoff.cap = 40ms;
    options.request_timeout = 10s;
    options.watch_inactivity = 10s;
    if (tune) tune(options);
  }
  ~Harness() {
    Stop();
    folder->Stop();
  }

  void Start() {
    ReflectorHooks hooks;
    hooks.sink = folder->Sink(kCluster, kDeployments);
    hooks.log = [this](std::string_view m) { AddLog(m); };
    hooks.seed = 7;
    reflector = std::make_unique<Reflector>(*transport, options, std::move(hooks));
    thread = std::thread([r = reflector.get()] { r->Run(); });
  }
  void Stop() {
    if (reflector) reflector->Stop();
    if (thread.joinable()) thread.join();
  }

  state::Snapshot Folded() {
    folder->Flush();
    return store.Current();
  }
  // "ns/name" -> the stored (pruned) object.
  std::map<std::string, std::string> Objects() {
    std::map<std::string, std::string> out;
    Folded().ForEachWorkload(kCluster, [&](const state::WorkloadRef& w) {
      out[std::string(w.ns) + "/" + std::string(w.record->name())] = std::string(w.record->object_json());
      return true;
    });
    return out;
  }
  std::set<std::string> Names() {
    std::set<std::string> out;
    for (const auto& [k, v] : Objects()) out.insert(k);
    return out;
  }
  std::optional<int> Replicas(const std::string& ns, const std::string& name) {
    const state::Record* r = Folded().Get(kCluster, ns, state::WorkloadKeyView("apps", "Deployment", name));
    if (r == nullptr) return std::nullopt;
    return r->summary().desired_replicas;
  }

  std::vector<std::string> Logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }
  bool LogsContain(const std::string& needle) const {
    for (const auto& l : Logs()) {
      if (l.find(needle) != std::string::npos) return true;
    }
    return false;
  }
  // The first log line containing every needle, or "".
  std::string LogWith(const std::vector<std::string>& needles) const {
    for (const auto& l : Logs()) {
      bool all = true;
      for (const auto& n : needles) all = all && l.find(n) != std::string::npos;
      if (all) return l;
    }
    return "";
  }
  bool WaitForLog(const std::string& needle, std::chrono::milliseconds limit = 10s) const {
    return Eventually([&] { return LogsContain(needle); }, limit);
  }
  // The workload counts of every snapshot published since the first that
  // held at least `synced` workloads: nothing folded may be lost later.
  uint64_t MinCountOnceSynced(uint64_t synced) const {
    std::lock_guard<std::mutex> lock(mu_);
    uint64_t min = UINT64_MAX;
    bool seen = false;
    for (uint64_t n : counts_) {
      seen = seen || n >= synced;
      if (seen) min = std::min(min, n);
    }
    return seen ? min : 0;
  }

  ScriptedServer server;
  ReflectorOptions options;
  std::unique_ptr<Transport> transport;
  state::Store store;
  std::unique_ptr<Folder> folder;
  std::unique_ptr<Reflector> reflector;
  std::thread thread;

 private:
  void AddLog(std::string_view m) {
    std::lock_guard<std::mutex> lock(mu_);
    logs_.emplace_back(m);
  }

  mutable std::mutex mu_;
  std::vector<std::string> logs_;  // Guarded by mu_
  std::vector<uint64_t> counts_;   // Guarded by mu_
};

std::string Join(const std::vector<std::string>& lines) {
  std::string out;
  for (const auto& l : lines) out += "  " + l + "\n";
  return out;
}

}  // namespace

BOOST_TEST_GLOBAL_FIXTURE(TrimFreedMemory);

// ---------------------------------------------------------------------------
// 1. Objects over the bounds
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_watch_line_over_the_bound_is_refused_naming_it_and_the_rest_is_never_read) {
  std::atomic<size_t> offered{0};  // before the harness: its server's handlers write it
  // A backoff long enough that a client still reading during it would be seen.
  Harness h([](ReflectorOptions& o) {
    o.max_line_bytes = kMiB;
    o.backoff.initial = 300ms;
    o.backoff.cap = 300ms;
    o.backoff.jitter = 0;
  });
  constexpr size_t kHuge = 512 * kMiB;
  h.server.QueueList(Json200(ListBody("5", {Deployment("shop", "web", "5")})));
  h.server.QueueWatch([&](const ReceivedRequest&, ServerConnection& c) {
    if (!c.StartChunked(200, kJson) || !c.Chunk(Event("ADDED", Deployment("shop", "api", "6")))) return;
    const std::string pad(64 * 1024, 'x');
    if (!c.Chunk(R"({"type":"ADDED","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"name":"huge","namespace":"shop","resourceVersion":"7"},"spec":{"pad":")")) return;
    for (size_t sent = 0; sent < kHuge; sent += pad.size()) {
      if (!c.Chunk(pad)) return;
      offered += pad.size();
    }
    c.Chunk("\"}}}\n");
    c.EndChunked();
  });
  h.server.SetWatchFallback(h.server.Watch({Event("MODIFIED", Deployment("shop", "web", "8", 3))}));

  PeakRss peak;
  const auto start = Clock::now();
  h.Start();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Replicas("shop", "web") == 3; }), Join(h.Logs()));
  const auto elapsed = Clock::now() - start;

  BOOST_TEST(h.LogsContain("watch line longer than 1048576 bytes"), Join(h.Logs()));
  const auto watches = h.server.Watches();
  BOOST_TEST_REQUIRE(watches.size() >= 2u);
  // The watch restarted from the last event, without a relist.
  BOOST_TEST(QueryParam(watches[1].target, "resourceVersion") == "6");
  BOOST_TEST(h.server.Lists().size() == 1u);
  BOOST_TEST((h.Names() == std::set<std::string>{"shop/api", "shop/web"}));
  // The client hung up soon after the bound: the server got the 1 MiB the
  // line may have, the kernel's socket buffers on both ends (a few MiB on
  // loopback) and what the transport took before the reflector looked —
  // not the 512 MiB it offered, nor what it could push during the backoff.
  BOOST_TEST(offered.load() < 32 * kMiB, "the server wrote " << offered.load() << " bytes of the line");
  if (peak.valid()) BOOST_TEST(peak.Growth() < 32 * kMiB, "peak RSS grew by " << peak.Growth() << " bytes");
  BOOST_TEST_MESSAGE("overlong watch line: server wrote " << offered.load() / 1024 << " KiB of 512 MiB; peak RSS +"
                                                          << peak.Growth() / 1024 << " KiB; "
                                                          << std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                 elapsed)
                                                                 .count()
                                                          << " ms");
}

namespace {

// Serves `objects` (list items) in pages honouring limit and continue (an
// offset). A request for 100 or more objects gets a body of 512 MiB that is
// streamed until the client hangs up: announced by Content-Length when the
// limit is 500 (the first page), chunked (one object per chunk, as a Go
// server flushes) for smaller limits. The most bytes of such a body the
// server got written go to `most_offered`.
Responder PagedOrHuge(std::vector<std::string> objects, std::atomic<size_t>* most_offered) {
  return [objects = std::move(objects), most_offered](const ReceivedRequest& r, ServerConnection& c) {
    const std::string limit_text = QueryParam(r.target, "limit");
    const size_t limit = limit_text.empty() ? objects.size() : std::stoul(limit_text);
    if (limit >= 100) {
      const size_t huge = 512 * kMiB;
      const bool chunked = limit != 500;
      const bool started = chunked ? c.StartChunked(200, kJson)
                                   : c.Write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                                             std::to_string(huge) + "\r\n\r\n");
      if (!started) return;
      std::string head = ListBody("9", {}, "");
      head.resize(head.size() - 2);  // up to "items":[
      size_t written = 0;
      for (size_t i = 0; written < huge; ++i) {
        const std::string piece = (i == 0 ? head : std::string(",")) + objects[i % objects.size()];
        if (!(chunked ? c.Chunk(piece) : c.Write(piece))) break;
        written += piece.size();
        size_t old = most_offered->load();
        while (written > old && !most_offered->compare_exchange_weak(old, written)) {
        }
      }
      c.Close();
      return;
    }
    const std::string cont = QueryParam(r.target, "continue");
    const size_t from = cont.empty() ? 0 : std::stoul(cont);
    const size_t n = std::min(limit, objects.size() - from);
    std::vector<std::string> page(objects.begin() + static_cast<std::ptrdiff_t>(from),
                                  objects.begin() + static_cast<std::ptrdiff_t>(from + n));
    c.Respond(200, kJson, ListBody("9", page, from + n < objects.size() ? std::to_string(from + n) : ""));
  };
}

std::vector<std::string> BigObjects(size_t count, size_t pad_bytes) {
  std::vector<std::string> out;
  for (size_t i = 0; i < count; ++i) {
    out.push_back(Deployment("shop", "big-" + std::to_string(i), "9", 1, "",
                             R"("pad":")" + std::string(pad_bytes, static_cast<char>('a' + i)) + R"(")"));
  }
  return out;
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_list_page_over_the_bound_is_cut_off_early_and_asked_for_in_smaller_pages) {
  std::atomic<size_t> most_offered{0};  // before the harness: its server's handlers write it
  Harness h([](ReflectorOptions& o) { o.max_list_bytes = 5 * kMiB / 2; });
  h.server.SetListFallback(PagedOrHuge(BigObjects(3, 900 * 1024), &most_offered));
  h.server.SetWatchFallback(h.server.Watch({}));

  PeakRss peak;
  const auto start = Clock::now();
  h.Start();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Names().size() == 3; }), Join(h.Logs()));
  const auto elapsed = Clock::now() - start;

  const std::string first = h.LogWith({"larger than 2621440 bytes", "max_list_bytes", "asking for pages of 250"});
  BOOST_TEST(!first.empty(), Join(h.Logs()));
  BOOST_TEST(h.LogsContain("asking for pages of 1 "), Join(h.Logs()));
  for (const auto& [key, json] : h.Objects()) BOOST_TEST(json.size() > 900 * 1024u, key);
  const auto lists = h.server.Lists();
  BOOST_TEST_REQUIRE(lists.size() >= 4u);
  BOOST_TEST(QueryParam(lists[0].target, "limit") == "500");
  // The last three pages: one object each, each continuing the one before.
  for (size_t i = 0; i < 3; ++i) {
    const auto& req = lists[lists.size() - 3 + i];
    BOOST_TEST(QueryParam(req.target, "limit") == "1");
    BOOST_TEST(QueryParam(req.target, "continue") == (i == 0 ? "" : std::to_string(i)));
  }
  // The Content-Length one was refused on its headers; each chunked one was
  // cut off one chunk past the bound (plus what the socket buffers held).
  BOOST_TEST(most_offered.load() < 32 * kMiB, "the server wrote up to " << most_offered.load() << " bytes");
  // Reading one of those bodies whole would take over 1 GiB (cpprestsdk's
  // buffer and the copy handed over). What is left is the 2.7 MB folded,
  // pages up to the bound and their copies, and the page being decoded.
  if (peak.valid()) BOOST_TEST(peak.Growth() < 48 * kMiB, "peak RSS grew by " << peak.Growth() << " bytes");
  BOOST_TEST_MESSAGE("oversized list: server wrote at most " << most_offered.load() / 1024
                                                             << " KiB of a 512 MiB body; peak RSS +"
                                                             << peak.Growth() / 1024 << " KiB; "
                                                             << std::chrono::duration_cast<std::chrono::milliseconds>(
                                                                    elapsed)
                                                                    .count()
                                                             << " ms");
}

BOOST_AUTO_TEST_CASE(one_object_over_the_list_bound_is_an_error_naming_it_and_the_list_is_retried) {
  std::atomic<size_t> most_offered{0};  // before the harness: its server's handlers write it
  Harness h([](ReflectorOptions& o) {
    o.max_list_bytes = kMiB;
    o.page_size = 2;
  });
  h.server.SetListFallback(PagedOrHuge(BigObjects(2, 2 * kMiB), &most_offered));
  h.Start();
  BOOST_TEST_REQUIRE(h.WaitForLog("a single object is larger than max_list_bytes"), Join(h.Logs()));
  BOOST_TEST_REQUIRE(Eventually([&] { return h.reflector->stats().errors >= 3; }), Join(h.Logs()));
  const std::string line = h.LogWith({"larger than 1048576 bytes", "a single object is larger than max_list_bytes"});
  BOOST_TEST(!line.empty(), Join(h.Logs()));
  BOOST_TEST(line.find("retrying in") != std::string::npos, line);
  h.Stop();
  BOOST_TEST(h.Folded().CountWorkloads(kCluster) == 0u);
  BOOST_TEST(h.reflector->stats().lists == 0u);
}

// ---------------------------------------------------------------------------
// 2. Deeply nested JSON
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(deep_nesting_is_refused_naming_the_depth_and_shallow_nesting_is_kept_intact) {
  Harness h;
  const std::string deep_arrays = R"("deep":)" + Nested(100'000);
  const std::string deep_objects = R"("deep":)" + Nested(100'000, /*objects=*/true);
  const std::string shallow = R"("deep":)" + Nested(100);
  h.server.QueueList(Json200(ListBody("5", {Deployment("shop", "web", "5"), Deployment("shop", "api", "5")})));
  h.server.QueueWatch(h.server.Watch({Event("ADDED", Deployment("shop", "deep", "6", 1, "", deep_arrays))}));
  h.server.QueueWatch(h.server.Watch({Event("ADDED", Deployment("shop", "shallow", "7", 1, "", shallow)), kExpired},
                                     /*hold=*/false));
  h.server.QueueList(Json200(ListBody(
      "8", {Deployment("shop", "web", "5"), Deployment("shop", "deep", "8", 1, "", deep_arrays)})));
  h.server.QueueList(Json200(ListBody("8", {Deployment("shop", "deep", "8", 1, "", deep_objects)})));
  // A Status body nested as deep: the error path must survive it too.
  h.server.QueueList(Respond(500, kJson, Nested(100'000, true)));
  h.server.SetListFallback(Json200(ListBody("9", {Deployment("shop", "web", "5"), Deployment("shop", "api", "5"),
                                                  Deployment("shop", "shallow", "7", 1, "", shallow)})));
  h.server.SetWatchFallback(h.server.Watch({}));
  h.Start();

  BOOST_TEST_REQUIRE(Eventually([&] { return h.reflector->stats().lists >= 2; }), Join(h.Logs()));
  BOOST_TEST(h.LogsContain("watch line nests deeper than 128 levels"), Join(h.Logs()));
  BOOST_TEST(h.LogsContain("DeploymentList body nests deeper than 128 levels"), Join(h.Logs()));
  BOOST_TEST(h.LogWith({"nests deeper than 128 levels"}).find("retrying in") != std::string::npos);
  BOOST_TEST(h.LogsContain("HTTP 500"), Join(h.Logs()));
  const auto watches = h.server.Watches();
  BOOST_TEST_REQUIRE(watches.size() >= 2u);
  BOOST_TEST(QueryParam(watches[1].target, "resourceVersion") == "5");  // resumed, not relisted
  BOOST_TEST((h.Names() == std::set<std::string>{"shop/api", "shop/shallow", "shop/web"}));
  BOOST_TEST(h.MinCountOnceSynced(2) >= 2u);
  // Within the limit the nesting is stored exactly as sent.
  BOOST_TEST(h.Objects()["shop/shallow"].find(shallow) != std::string::npos);
}

// ---------------------------------------------------------------------------
// 3. Invalid UTF-8
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(invalid_utf8_is_refused_before_the_store_and_never_reaches_a_log_line) {
  Harness h;
  h.server.QueueList(Json200(ListBody("5", {Deployment("shop", "web", "5"), Deployment("shop", "api", "5")})));
  // A stray byte in a label value, an overlong encoding of '/' in an
  // annotation, an escaped unpaired surrogate.
  h.server.QueueWatch(h.server.Watch({Event("ADDED", Deployment("shop", "bad1", "6", 1, "\"labels\":{\"team\":\"\xff\xfe\"}"))}));
  h.server.QueueWatch(
      h.server.Watch({Event("ADDED", Deployment("shop", "bad2", "6", 1, "\"annotations\":{\"a\":\"x\xc0\xafy\"}"))}));
  h.server.QueueWatch(
      h.server.Watch({Event("ADDED", Deployment("shop", "bad3", "6", 1, R"("annotations":{"a":"x\ud800y"})"))}));
  h.server.QueueWatch(h.server.Watch({Event("MODIFIED", Deployment("shop", "web", "6", 4)), kExpired}, false));
  // Latin-1 where UTF-8 belongs, in a list item's name.
  h.server.QueueList(Json200(ListBody("7", {Deployment("shop", "web", "6", 4), Deployment("shop", "b\xe9" "d", "7")})));
  // A plain-text 500 with bytes that are not UTF-8, and 'é's cut at the
  // Status message's 256-byte bound.
  std::string garbage_500 = "upstream failed: \xff\xfe\x80 ";
  while (garbage_500.size() < 400) garbage_500 += "\xc3\xa9";
  h.server.QueueList(Respond(500, {{"Content-Type", "text/plain"}}, garbage_500));
  h.server.SetListFallback(Json200(ListBody("8", {Deployment("shop", "web", "6", 4), Deployment("shop", "api", "5")})));
  h.server.SetWatchFallback(h.server.Watch({}));
  h.Start();

  BOOST_TEST_REQUIRE(Eventually([&] { return h.reflector->stats().lists >= 2; }), Join(h.Logs()));
  BOOST_TEST(h.LogsContain("watch line is not valid JSON: The input is not valid UTF-8"), Join(h.Logs()));
  BOOST_TEST(h.LogsContain("watch line is not valid JSON: Problem while parsing a string"), Join(h.Logs()));
  BOOST_TEST(h.LogsContain("DeploymentList body is not valid JSON: The input is not valid UTF-8"), Join(h.Logs()));
  const std::string line_500 = h.LogWith({"HTTP 500", "upstream failed"});
  BOOST_TEST_REQUIRE(!line_500.empty(), Join(h.Logs()));
  // Invalid bytes became U+FFFD; the cut fell between characters.
  BOOST_TEST(line_500.find("\xef\xbf\xbd") != std::string::npos, line_500);
  for (const auto& l : h.Logs()) BOOST_TEST(DumpsStrictly(l), "not UTF-8: " << l);
  BOOST_TEST((h.Names() == std::set<std::string>{"shop/api", "shop/web"}));
  BOOST_TEST(h.Replicas("shop", "web").value_or(-1) == 4);
  BOOST_TEST(h.folder->stats().rejected == 0u);
  BOOST_TEST(h.MinCountOnceSynced(2) == 2u);
  for (const auto& [key, json] : h.Objects()) BOOST_TEST(DumpsStrictly(json), key);
}

BOOST_AUTO_TEST_CASE(a_readyz_answering_invalid_utf8_becomes_a_valid_health_record) {
  Harness h;
  std::string body = "\xff\xfe not ready ";
  while (body.size() < 300) body += "\xc3\xa9";  // the probe keeps 200 bytes: the cut splits one
  h.server.SetOther(Respond(500, {{"Content-Type", "text/plain"}}, body));
  controllers::HealthOptions ho;
  ho.period = 20ms;
  ho.probe_timeout = 5s;
  ho.failure_threshold = 1;
  std::atomic<int> changes{0};
  controllers::HealthProber prober(*h.transport, ho, {}, [&](const controllers::ReadyCondition& c) {
    // What the registry does with every change (ClusterRegistry::OnHealthChange).
    h.folder->SetHealth(kCluster, controllers::HealthRecordJson(c, std::chrono::system_clock::now()));
    ++changes;
  });
  BOOST_TEST_REQUIRE(Eventually([&] { return prober.Current().status == "False"; }));
  prober.Stop();
  const state::Record* r =
      h.Folded().Get(kCluster, controllers::kHealthNamespace,
                     state::WorkloadKeyView(controllers::kHealthGroup, controllers::kHealthKind, controllers::kHealthName));
  BOOST_TEST_REQUIRE(r != nullptr);
  const auto record = controllers::ParseHealthRecord(r->object_json());
  BOOST_TEST_REQUIRE(record.has_value(), std::string(r->object_json()));
  BOOST_TEST(record->condition.status == "False");
  BOOST_TEST(record->condition.message.find("HTTP 500: ") != std::string::npos, record->condition.message);
  BOOST_TEST(DumpsStrictly(record->condition.message));
  BOOST_TEST(DumpsStrictly(prober.Current().message));
}

// ---------------------------------------------------------------------------
// 4. A huge label set, thousands of namespaces
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_workload_with_fifty_thousand_labels_is_folded_whole) {
  constexpr int kLabels = 50'000;
  auto labels = [&](char value_prefix) {
    std::string out = R"("labels":{)";
    char buf[64];
    for (int i = 0; i < kLabels; ++i) {
      std::snprintf(buf, sizeof(buf), "%s\"example.com/k%05d\":\"%c%05d\"", i ? "," : "", i, value_prefix, i);
      out += buf;
    }
    return out + "}";
  };
  Harness h;
  h.server.QueueList(Json200(ListBody("5", {Deployment("shop", "web", "5"), Deployment("shop", "labelled", "5", 1, labels('v'))})));
  h.server.SetWatchFallback(h.server.Watch({Event("MODIFIED", Deployment("shop", "labelled", "6", 2, labels('w')))}));
  const auto start = Clock::now();
  h.Start();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Replicas("shop", "labelled") == 2; }), Join(h.Logs()));
  const auto folded = Clock::now() - start;

  const std::string json = h.Objects()["shop/labelled"];
  controllers::internal::Metadata md;
  const auto scan_start = Clock::now();
  BOOST_TEST_REQUIRE(controllers::internal::ScanMetadata(json, md, /*unique_top_level=*/true));
  const auto scanned = Clock::now() - scan_start;
  BOOST_TEST(md.labels.size() == static_cast<size_t>(kLabels));
  BOOST_TEST(md.labels["example.com/k00000"] == "w00000");
  BOOST_TEST(md.labels["example.com/k49999"] == "w49999");
  BOOST_TEST(nlohmann::json::parse(json)["metadata"]["labels"].size() == static_cast<size_t>(kLabels));
  BOOST_TEST(h.Logs().empty(), Join(h.Logs()));
  BOOST_TEST(folded < 5s);
  BOOST_TEST_MESSAGE("50k labels (" << json.size() / 1024 << " KiB): listed, watched and folded in "
                                    << std::chrono::duration_cast<std::chrono::milliseconds>(folded).count()
                                    << " ms; labels scanned in "
                                    << std::chrono::duration_cast<std::chrono::microseconds>(scanned).count() << " us");
}

BOOST_AUTO_TEST_CASE(five_thousand_namespaces_listed_in_pages_are_all_folded_and_a_relist_changes_only_the_difference) {
  constexpr size_t kNamespaces = 5000;
  auto universe = std::make_shared<std::vector<std::string>>();
  auto rv = std::make_shared<std::string>("100");
  auto mu = std::make_shared<std::mutex>();
  char ns[32];
  for (size_t i = 0; i < kNamespaces; ++i) {
    std::snprintf(ns, sizeof(ns), "ns-%04zu", i);
    universe->push_back(Deployment(ns, "app", "100"));
  }
  Harness h;
  h.server.SetListFallback([=](const ReceivedRequest& r, ServerConnection& c) {
    std::lock_guard<std::mutex> lock(*mu);
    const size_t limit = std::stoul(QueryParam(r.target, "limit"));
    const std::string cont = QueryParam(r.target, "continue");
    const size_t from = cont.empty() ? 0 : std::stoul(cont.substr(2));
    const size_t n = std::min(limit, universe->size() - from);
    std::vector<std::string> page(universe->begin() + static_cast<std::ptrdiff_t>(from),
                                  universe->begin() + static_cast<std::ptrdiff_t>(from + n));
    c.Respond(200, kJson, ListBody(*rv, page, from + n < universe->size() ? "o=" + std::to_string(from + n) : ""));
  });
  h.server.QueueWatch(h.server.Watch({}, /*hold=*/true, {kExpired}));
  h.server.SetWatchFallback(h.server.Watch({}));

  const auto start = Clock::now();
  h.Start();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Folded().CountWorkloads(kCluster) == kNamespaces; }, 15s),
                     Join(h.Logs()));
  const auto synced = Clock::now() - start;
  const auto lists = h.server.Lists();
  BOOST_TEST_REQUIRE(lists.size() == 10u);
  for (size_t i = 0; i < lists.size(); ++i) {
    BOOST_TEST(QueryParam(lists[i].target, "limit") == "500");
    BOOST_TEST(QueryParam(lists[i].target, "continue") == (i == 0 ? "" : "o=" + std::to_string(500 * i)));
  }
  size_t namespaces = 0;
  h.Folded().ForEachNamespace(kCluster, [&](const state::NamespaceInfo&) {
    ++namespaces;
    return true;
  });
  BOOST_TEST(namespaces == kNamespaces);
  BOOST_TEST(synced < 10s);

  // One namespace's deployment goes away, the watch expires: the relist
  // deletes that one and rewrites nothing else.
  {
    std::lock_guard<std::mutex> lock(*mu);
    universe->erase(universe->begin() + 2500);
    *rv = "200";
  }
  const uint64_t seq_before = h.Folded().seq();
  const auto relist_start = Clock::now();
  h.server.EndHeldWatches();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Folded().CountWorkloads(kCluster) == kNamespaces - 1; }, 15s),
                     Join(h.Logs()));
  const auto relisted = Clock::now() - relist_start;
  BOOST_TEST(h.Folded().CountWorkloads(kCluster, "ns-2500") == 0u);
  BOOST_TEST(h.Folded().CountWorkloads(kCluster, "ns-2501") == 1u);
  BOOST_TEST(h.Folded().seq() == seq_before + 1);  // one snapshot: the one delete
  BOOST_TEST(h.LogsContain("too old resource version"), Join(h.Logs()));
  BOOST_TEST_MESSAGE("5000 namespaces: listed in 10 pages and folded in "
                     << std::chrono::duration_cast<std::chrono::milliseconds>(synced).count()
                     << " ms; relisted in " << std::chrono::duration_cast<std::chrono::milliseconds>(relisted).count()
                     << " ms");
}

// ---------------------------------------------------------------------------
// 5. A cluster that returns garbage
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_cluster_that_returns_garbage_gets_errors_naming_the_cause_and_keeps_what_was_folded) {
  Harness h;
  const std::vector<std::string> synced = {Deployment("shop", "web", "5"), Deployment("shop", "api", "5"),
                                           Deployment("shop", "db", "5")};
  h.server.QueueList(Json200(ListBody("5", synced)));
  // The first watch adds one more, then (once told) expires: a relist, into garbage.
  h.server.QueueWatch(h.server.Watch({Event("ADDED", Deployment("shop", "cache", "6"))}, true, {kExpired}));

  // The start of a protobuf-encoded list (magic "k8s\0", then a TypeMeta).
  static const char kProtobuf[] = "k8s\0\n\x0f\n\x07" "apps/v1\x12\x0e" "DeploymentList";
  // Lists, in order, and the cause each error must name.
  std::vector<std::pair<Responder, std::string>> lists = {
      {Json200("this is not JSON at all"), "DeploymentList body is not valid JSON"},
      {Respond(200, {{"Content-Type", "text/html; charset=utf-8"}},
               "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>"),
       "Content-Type \"text/html; charset=utf-8\""},
      {[](const ReceivedRequest&, ServerConnection& c) {
         // A chunked body cut in the middle of a chunk.
         const std::string body = ListBody("7", {Deployment("shop", "web", "7")});
         if (!c.StartChunked(200, kJson)) return;
         c.Write("1000\r\n" + body.substr(0, body.size() / 2));
         c.Close();
       },
       "the connection broke"},
      {[](const ReceivedRequest&, ServerConnection& c) {
         // Content-Length promises more than comes.
         const std::string body = ListBody("7", {Deployment("shop", "web", "7")});
         c.Write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size() + 100) + "\r\n\r\n" + body);
         c.Close();
       },
       "the connection broke"},
      {Respond(200, {{"Content-Type", "application/vnd.kubernetes.protobuf"}},
               std::string(kProtobuf, sizeof(kProtobuf) - 1)),
       "Content-Type \"application/vnd.kubernetes.protobuf\""},
      {Json200(R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"7"},"items":{"web":{}}})"),
       "DeploymentList: items is an object, not an array"},
      {Json200(ListBody("7", {Deployment("shop", "web", "7"), R"({"metadata":{"namespace":"shop","resourceVersion":"7"}})"})),
       "DeploymentList item 1 (apps/v1 Deployment): metadata.name is missing"},
      {Json200(R"({"kind":"Status","apiVersion":"v1","metadata":{"resourceVersion":"7"},"status":"Success","code":200})"),
       "DeploymentList: kind is \"Status\", not a list"},
      {Json200(R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"7"}})"),
       "DeploymentList: items is missing"},
      // A good first page, then garbage: the first page alone must not replace the store.
      {Json200(ListBody("7", {Deployment("shop", "web", "7")}, "page-2")), ""},
      {Json200("{\"kind\":\"DeploymentList\",\"items\":["), "DeploymentList body is not valid JSON"},
  };
  for (const auto& served : lists) h.server.QueueList(served.first);
  h.server.SetListFallback(Json200(ListBody("8", {Deployment("shop", "web", "8"), Deployment("shop", "api", "5"),
                                                  Deployment("shop", "db", "5"), Deployment("shop", "cache", "6")})));

  // Then the watch from the relist answers garbage too, in order.
  std::mt19937 rng(42);
  std::string random_bytes(64 * 1024, '\0');
  for (char& b : random_bytes) b = static_cast<char>(rng());
  std::vector<std::pair<Responder, std::string>> watches = {
      {h.server.Watch({random_bytes}), "watch line is not valid JSON"},
      {Respond(200, {{"Content-Type", "text/html"}}, "<html><body>Service Unavailable</body></html>"),
       "Content-Type \"text/html\""},
      {h.server.Watch({R"({"type":"ADDED","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"namespace":"shop","resourceVersion":"9"}}})"
                       "\n"}),
       "watch event ADDED (apps/v1 Deployment): metadata.name is missing"},
      {[](const ReceivedRequest&, ServerConnection& c) {
         // An event cut off, and the connection with it.
         const std::string line = Event("ADDED", Deployment("shop", "cut", "9"));
         if (!c.StartChunked(200, kJson)) return;
         c.Write("400\r\n" + line.substr(0, 40));
         c.Close();
       },
       "the connection broke"},
      {h.server.Watch({"{\"type\":\"ADDED\",\"object\":{\"metadata\":"}, /*hold=*/false),
       "the stream ended inside an event"},
  };
  for (const auto& served : watches) h.server.QueueWatch(served.first);
  h.server.SetWatchFallback(h.server.Watch({Event("ADDED", Deployment("shop", "late", "10"))}));

  h.Start();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Names().size() == 4; }), Join(h.Logs()));
  const std::set<std::string> folded = {"shop/api", "shop/cache", "shop/db", "shop/web"};
  BOOST_TEST((h.Names() == folded));
  h.server.EndHeldWatches();
  BOOST_TEST_REQUIRE(Eventually([&] { return h.Names().count("shop/late") == 1; }), Join(h.Logs()));

  const auto logs = h.Logs();
  // Every cause named, with what failed and the backoff, in the order served.
  size_t at = 0;
  auto expect_next = [&](const std::string& cause, const std::string& prefix) {
    auto it = std::find_if(logs.begin() + static_cast<std::ptrdiff_t>(at), logs.end(),
                           [&](const std::string& l) { return l.find(cause) != std::string::npos; });
    BOOST_TEST_REQUIRE((it != logs.end()), "no log line names \"" << cause << "\" after line " << at << ":\n"
                                                                   << Join(logs));
    BOOST_TEST(it->find(prefix) == 0u, *it);
    BOOST_TEST(it->find("; retrying in ") != std::string::npos, *it);
    at = static_cast<size_t>(it - logs.begin()) + 1;
  };
  for (const auto& served : lists) {
    if (!served.second.empty()) expect_next(served.second, "list /apis/apps/v1/deployments: ");
  }
  for (const auto& served : watches) {
    expect_next(served.second, "watch /apis/apps/v1/deployments from resourceVersion 8: ");
  }
  for (const auto& l : logs) BOOST_TEST(DumpsStrictly(l), "not UTF-8: " << l);

  // The garbage watches all resumed from the relist's version: no relist.
  const auto all_watches = h.server.Watches();
  BOOST_TEST_REQUIRE(all_watches.size() == 2 + watches.size());
  for (size_t i = 1; i < all_watches.size(); ++i) {
    BOOST_TEST(QueryParam(all_watches[i].target, "resourceVersion") == "8");
  }
  BOOST_TEST(h.server.Lists().size() == 2 + lists.size());
  // Nothing folded before the garbage was ever lost from a snapshot.
  BOOST_TEST(h.MinCountOnceSynced(4) == 4u);
  BOOST_TEST((h.Names() == std::set<std::string>{"shop/api", "shop/cache", "shop/db", "shop/late", "shop/web"}));
  const auto stats = h.reflector->stats();
  BOOST_TEST(stats.lists == 2u);
  BOOST_TEST(stats.errors >= lists.size() - 1 + watches.size());
}

}  // namespace kubefold::kube
