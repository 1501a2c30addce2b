// The query API at a million workloads (issue: 1,000-change diff in <= 20 ms
// at the HTTP client; fold throughput down by <= 10% while queries run).
//
// One store holds 10 clusters x 100 namespaces x 1,000 Deployments (pruned
// objects of ~1.3 KB, as the watch path stores them). Snapshot A is the
// loaded state; B differs from A by exactly 1,000 modified workloads spread
// over every cluster; both are pinned. The API is served by the real
// HttpServer + QueryApi on loopback and called with the project's own HTTP
// client (cpprestsdk behind controllers/kube/transport.h), so each figure is
// what a user's request costs end to end: request, diff walk, RFC 6902
// patches, streaming, and reading the whole body.
//
//   BM_Diff1000            GET /api/v1/diff?from=A&to=B (patches)
//   BM_Diff1000NoPatch     ... &patch=false (the walk and the framing alone)
//   BM_Diff1000WhileFolding  the same while a writer folds events nonstop
//   BM_SnapshotNamespace   GET /api/v1/snapshots/latest?cluster=..&namespace=..
//                          (1,000 workloads, summaries)
//   BM_SnapshotPage        GET /api/v1/snapshots/latest?limit=500 (the first
//                          page of the whole million)
//   BM_Fold/diffs_per_s:N  events folded per second by the store's writer
//                          (batches of 100 upserts) for 3 s, while a client
//                          asks for the 1,000-change diff N times a second
//                          (0: no queries, the baseline; 5: an on-call
//                          engineer's tool polling hard; 1000: back to back,
//                          as fast as the API answers). The ratio to the
//                          baseline is the throughput cost of queries.
#include <benchmark/benchmark.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "controllers/events.h"
#include "controllers/failover.h"
#include "controllers/folder.h"
#include "controllers/kube/http_transport.h"
#include "controllers/registry.h"
#include "operator/http_server.h"
#include "operator/internal/json_text.h"
#include "operator/query_api.h"
#include "state/store.h"

namespace {

using namespace kubefold;

constexpr int kClusters = 10;
constexpr int kNamespaces = 100;
constexpr int kPerNamespace = 1000;
constexpr int kChanges = 1000;

// A pruned Deployment (what the watch path stores): metadata that matters,
// spec and status; no managedFields, no last-applied annotation.
std::string Object(const std::string& ns, const std::string& name, int replicas, int generation) {
  char buf[2048];
  std::snprintf(
      buf, sizeof buf,
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"%s","namespace":"%s","uid":"6f1c2b7e-%s","resourceVersion":"%d","generation":%d,"creationTimestamp":"2026-11-20T09:12:44Z","labels":{"app":"%s","tier":"web"},"annotations":{"deployment.kubernetes.io/revision":"%d"}},"spec":{"replicas":%d,"revisionHistoryLimit":10,"progressDeadlineSeconds":600,"selector":{"matchLabels":{"app":"%s"}},"strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%%","maxUnavailable":"25%%"}},"template":{"metadata":{"labels":{"app":"%s","tier":"web"}},"spec":{"containers":[{"name":"app","image":"registry.example.com/shop/checkout:1.42.%d","ports":[{"containerPort":8080,"protocol":"TCP"}],"env":[{"name":"LOG_LEVEL","value":"info"},{"name":"REGION","value":"eu-west-1"}],"resources":{"requests":{"cpu":"250m","memory":"256Mi"},"limits":{"memory":"512Mi"}},"readinessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"}},"imagePullPolicy":"IfNotPresent"}],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst"}}},"status":{"observedGeneration":%d,"replicas":%d,"updatedReplicas":%d,"readyReplicas":%d,"availableReplicas":%d,"conditions":[{"type":"Available","status":"True","reason":"MinimumReplicasAvailable"},{"type":"Progressing","status":"True","reason":"NewReplicaSetAvailable"}]}})",
      name.c_str(), ns.c_str(), name.c_str(), generation * 7 + replicas, generation, name.c_str(), generation, replicas,
      name.c_str(), name.c_str(), generation, generation, replicas, replicas, replicas, replicas);
  return buf;
}

state::WorkloadObject Workload(const std::string& ns, const std::string& name, int replicas, int generation) {
  state::WorkloadObject o;
  o.key = {"apps", "Deployment", name};
  o.object_json = Object(ns, name, replicas, generation);
  o.summary.generation = generation;
  o.summary.observed_generation = generation;
  o.summary.desired_replicas = replicas;
  o.summary.ready_replicas = replicas;
  o.summary.available_replicas = replicas;
  return o;
}

std::string ClusterName(int c) { return "cluster-" + std::to_string(c); }
std::string NamespaceName(int n) { return "ns-" + std::to_string(n); }
std::string WorkloadName(int i) { return "checkout-" + std::to_string(i); }

struct World {
  std::unique_ptr<state::Store> store;
  std::unique_ptr<kube::RestClient> host;  // never called: nothing here is started
  std::unique_ptr<controllers::Folder> folder;
  std::unique_ptr<controllers::EventRecorder> events;
  std::unique_ptr<controllers::ClusterRegistry> registry;
  std::unique_ptr<controllers::FailoverReconciler> failover;
  std::unique_ptr<QueryApi> api;
  std::unique_ptr<HttpServer> server;
  uint64_t a = 0, b = 0;
  std::atomic<int> generation{2};

  World() {
    state::StoreOptions so;
    // Retention by count only: at the writer's pace (100k+ events/s) a time
    // window would keep every snapshot, and memory growth would slow each
    // repetition more than the one before, confounding the comparison.
    so.history.keep_last = 64;
    so.history.keep_for = std::chrono::milliseconds(0);
    store = std::make_unique<state::Store>(so);
    for (int c = 0; c < kClusters; ++c) {
      for (int n = 0; n < kNamespaces; ++n) {
        state::Batch batch;
        batch.Reserve(kPerNamespace);
        for (int i = 0; i < kPerNamespace; ++i) {
          (void)batch.Upsert(ClusterName(c), NamespaceName(n), Workload(NamespaceName(n), WorkloadName(i), 3, 1));
        }
        if (!store->Apply(std::move(batch)).ok()) std::abort();
      }
    }
    a = store->Current().seq();
    state::Batch change;
    for (int k = 0; k < kChanges; ++k) {
      const int c = k % kClusters, n = (k * 7) % kNamespaces, i = k;
      (void)change.Upsert(ClusterName(c), NamespaceName(n), Workload(NamespaceName(n), WorkloadName(i), 5, 2));
    }
    b = store->Apply(std::move(change))->seq;
    (void)store->Pin(a);
    (void)store->Pin(b);

    kube::RestConfig nowhere;
    nowhere.server = "http://127.0.0.1:9";
    auto transport = kube::NewHttpTransport(nowhere, {.warn = [](std::string_view) {}});
    if (!transport.ok()) std::abort();
    host = std::make_unique<kube::RestClient>(std::move(*transport), nullptr);
    folder = std::make_unique<controllers::Folder>(*store);
    events = std::make_unique<controllers::EventRecorder>(*host, "bench");
    registry = std::make_unique<controllers::ClusterRegistry>(*host, *store, *folder, *events,
                                                              controllers::RegistryOptions{});
    failover = std::make_unique<controllers::FailoverReconciler>(*host, *store, *registry, *events,
                                                                 controllers::FailoverOptions{});
    api = std::make_unique<QueryApi>(*store, *registry, *failover, QueryApiOptions{});
    auto s = HttpServer::Start(HttpServerOptions{}, [this](const IncomingRequest& r, ResponseWriter& w) {
      api->Handle(r, w);
    });
    if (!s.ok()) std::abort();
    server = std::move(*s);
  }
  ~World() {
    server->Stop();
    folder->Stop();
  }
};

World& TheWorld() {
  static World* w = new World();  // built once, for every benchmark; never freed
  return *w;
}

std::unique_ptr<kube::Transport> Client(int port) {
  kube::RestConfig c;
  c.server = "http://127.0.0.1:" + std::to_string(port);
  auto t = kube::NewHttpTransport(c, {.warn = [](std::string_view) {}});
  if (!t.ok()) std::abort();
  return std::move(*t);
}

// One GET, the whole body read; aborts the benchmark on a non-200 answer.
size_t Get(kube::Transport& t, const std::string& path, benchmark::State* state) {
  kube::HttpRequest r;
  r.path_and_query = path;
  r.timeout = std::chrono::seconds(120);
  auto resp = t.Send(r);
  if (!resp.ok() || resp->status != 200) {
    if (state) state->SkipWithError(("GET " + path + " failed").c_str());
    return 0;
  }
  return resp->body.size();
}

// A writer folding events nonstop: batches of 100 upserts (a replica count
// changes), like watch events; counts the operations applied.
class Writer {
 public:
  explicit Writer(World& w) : w_(w), thread_([this] { Run(); }) {}
  ~Writer() {
    stop_ = true;
    thread_.join();
  }
  uint64_t applied() const { return applied_.load(); }

 private:
  void Run() {
    std::mt19937 rng(42);
    std::vector<state::WorkloadObject> objects;
    while (!stop_.load()) {
      state::Batch batch;
      batch.Reserve(100);
      const int gen = w_.generation.fetch_add(1) + 1;
      for (int k = 0; k < 100; ++k) {
        const int c = static_cast<int>(rng() % kClusters), n = static_cast<int>(rng() % kNamespaces),
                  i = static_cast<int>(rng() % kPerNamespace);
        (void)batch.Upsert(ClusterName(c), NamespaceName(n),
                           Workload(NamespaceName(n), WorkloadName(i), 1 + gen % 9, gen));
      }
      auto r = w_.store->Apply(std::move(batch));
      if (r.ok()) applied_ += r->applied;
    }
  }
  World& w_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> applied_{0};
  std::thread thread_;
};

std::string DiffPath(const World& w, bool patch) {
  return "/api/v1/diff?from=" + std::to_string(w.a) + "&to=" + std::to_string(w.b) + (patch ? "" : "&patch=false");
}

void BM_Diff1000(benchmark::State& state) {
  World& w = TheWorld();
  auto t = Client(w.server->port());
  size_t bytes = 0;
  for (auto _ : state) bytes = Get(*t, DiffPath(w, true), &state);
  state.counters["body_bytes"] = static_cast<double>(bytes);
  state.counters["changes"] = kChanges;
}
BENCHMARK(BM_Diff1000)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

// The share of BM_Diff1000 spent writing patches: 1,000 RFC 6902 patches
// between the same object pairs, in-process, no HTTP.
void BM_Patch1000InProcess(benchmark::State& state) {
  std::vector<std::pair<std::string, std::string>> pairs;
  for (int k = 0; k < kChanges; ++k) {
    const std::string ns = NamespaceName((k * 7) % kNamespaces), name = WorkloadName(k);
    pairs.emplace_back(Object(ns, name, 3, 1), Object(ns, name, 5, 2));
  }
  std::string out;
  for (auto _ : state) {
    out.clear();
    for (const auto& [a, b] : pairs) (void)internal::AppendJsonPatch(out, a, b);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["bytes"] = static_cast<double>(out.size());
}
BENCHMARK(BM_Patch1000InProcess)->Unit(benchmark::kMillisecond);

// The same request from a minimal HTTP/1.1 client (a socket, one GET, the
// chunked body read to its end): the server's share without cpprestsdk's
// client-side costs.
size_t RawGet(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) std::abort();
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
  if (::send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) std::abort();
  static thread_local std::vector<char> buf(1 << 20);
  size_t total = 0;
  for (;;) {
    const ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
    if (n <= 0) break;
    total += static_cast<size_t>(n);
  }
  ::close(fd);
  return total;
}

void BM_Diff1000RawClient(benchmark::State& state) {
  World& w = TheWorld();
  size_t bytes = 0;
  for (auto _ : state) bytes = RawGet(w.server->port(), DiffPath(w, true));
  state.counters["wire_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Diff1000RawClient)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

void BM_Diff1000NoPatch(benchmark::State& state) {
  World& w = TheWorld();
  auto t = Client(w.server->port());
  size_t bytes = 0;
  for (auto _ : state) bytes = Get(*t, DiffPath(w, false), &state);
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_Diff1000NoPatch)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

void BM_Diff1000WhileFolding(benchmark::State& state) {
  World& w = TheWorld();
  auto t = Client(w.server->port());
  Writer writer(w);
  for (auto _ : state) Get(*t, DiffPath(w, true), &state);
}
BENCHMARK(BM_Diff1000WhileFolding)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

void BM_SnapshotNamespace(benchmark::State& state) {
  World& w = TheWorld();
  auto t = Client(w.server->port());
  size_t bytes = 0;
  for (auto _ : state) bytes = Get(*t, "/api/v1/snapshots/latest?cluster=cluster-3&namespace=ns-42", &state);
  state.counters["body_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_SnapshotNamespace)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

void BM_SnapshotPage(benchmark::State& state) {
  World& w = TheWorld();
  auto t = Client(w.server->port());
  for (auto _ : state) Get(*t, "/api/v1/snapshots/latest?limit=500", &state);
}
BENCHMARK(BM_SnapshotPage)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(2);

void BM_Fold(benchmark::State& state) {
  World& w = TheWorld();
  // Queries per second the client aims at; 0: none; 1000: back to back.
  const int64_t rate = state.range(0);
  const bool queries = rate != 0;
  for (auto _ : state) {
    std::atomic<bool> stop{false};
    std::atomic<uint64_t> diffs{0};
    std::thread client;
    if (queries) {
      client = std::thread([&] {
        auto t = Client(w.server->port());
        const auto period = std::chrono::microseconds(1000000 / rate);
        auto next = std::chrono::steady_clock::now();
        while (!stop.load()) {
          Get(*t, DiffPath(w, true), nullptr);
          ++diffs;
          next += period;
          std::this_thread::sleep_until(next);
        }
      });
    }
    const auto start = std::chrono::steady_clock::now();
    uint64_t applied;
    {
      Writer writer(w);
      std::this_thread::sleep_for(std::chrono::seconds(3));
      applied = writer.applied();
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    stop = true;
    if (client.joinable()) client.join();
    state.counters["events_per_s"] = static_cast<double>(applied) / seconds;
    state.counters["diffs_per_s"] = static_cast<double>(diffs.load()) / seconds;
  }
}
BENCHMARK(BM_Fold)  // run with --benchmark_enable_random_interleaving=true (make bench-api does)
    ->ArgName("diffs_per_s")
    ->Arg(0)
    ->Arg(5)
    ->Arg(1000)
    ->Iterations(1)
    ->Repetitions(5)
    ->Unit(benchmark::kSecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
