// watch_bench: events per second from kube-emulator into the reflector's
// output over loopback TLS, with realistic ~4 KB Deployment events (managed
// fields included), and where the time goes.
//
// The emulator runs in a child process (it shares the 2-core machine, not
// the client's CPU account); the namespace "shop" holds kObjects
// Deployments. Each iteration:
//
//   BM_WatchReflector_kubefold   a Reflector streaming-lists the namespace
//                                (watch with sendInitialEvents: kObjects
//                                ADDED events) until it hands out the
//                                replace: transport + framing + decode +
//                                prune, end to end.
//   BM_WatchTransport_kubefold   the same stream through the HTTPS transport
//                                only: chunks read, lines counted, no parsing.
//   BM_WatchTransportPlain_kubefold  the same over plain HTTP (TLS's share).
//   BM_Decode_kubefold           LineFramer + DecodeWatchEvent of one event
//                                line in memory (parse + prune + summary).
//   BM_Parse_simdjson            simdjson's DOM parse of the line alone (the
//                                decoder's parser): decode − this = pruning.
//   BM_Parse_nlohmann            nlohmann::json::parse of the line: the
//                                in-run baseline for the parse step.
//   BM_Dump_nlohmann             nlohmann::json::dump of the parsed object
//                                (what re-serialising the pruned object costs
//                                with a general JSON library).
//   BM_Compress_kubefold         what the folder does next by default: the
//                                decoded (pruned) object compressed against
//                                its cluster's dictionary (state/object_codec.h),
//                                the first of kCodecObjects fixture Deployments;
//                                one of the other objects per iteration.
//   BM_Decompress_kubefold       reading one of those frames back, as every
//                                Record::object_json() reader does.
//
// Items are events; rates are per wall-clock second, and the cpu_ns_per_event
// counter is the client's CPU time per event (all threads of this process:
// the reflector's and cpprestsdk's), so 1e9 / cpu_ns_per_event is the rate one
// core could sustain.
#include <benchmark/benchmark.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <simdjson.h>
#include <string>
#include <thread>
#include <vector>
#include <ctime>
#include <sys/wait.h>
#include <unistd.h>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/reflector.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "controllers/kube/watch_decoder.h"
#include "state/object_codec.h"
#include "tests/bench/deployment_fixture.h"
#include "tests/emulator/emulator.h"

namespace {

namespace emu = kubefold::emulator;
using namespace kubefold::kube;

constexpr int kObjects = 5000;
const ResourceType kDeployments{"apps", "v1", "Deployment"};

double ProcessCpuSeconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

// Writes all of `data` to `fd` with a length prefix; reads it back.
void SendBlob(int fd, const std::string& data) {
  const std::uint64_t n = data.size();
  if (::write(fd, &n, sizeof(n)) != static_cast<ssize_t>(sizeof(n))) std::_Exit(3);
  for (std::size_t done = 0; done < data.size();) {
    const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w <= 0) std::_Exit(3);
    done += static_cast<std::size_t>(w);
  }
}

std::string ReceiveBlob(int fd) {
  std::uint64_t n = 0;
  if (::read(fd, &n, sizeof(n)) != static_cast<ssize_t>(sizeof(n))) throw std::runtime_error("emulator process died");
  std::string data(n, '\0');
  for (std::size_t done = 0; done < n;) {
    const ssize_t r = ::read(fd, data.data() + done, n - done);
    if (r <= 0) throw std::runtime_error("emulator process died");
    done += static_cast<std::size_t>(r);
  }
  return data;
}

// One emulated cluster (TLS or plain) loaded with kObjects Deployments, in a
// child process: the benchmark process then runs the client alone, so its
// CPU time (cpu_ns_per_event) is the client's, and the server's work does
// not count against it.
struct Bench {
  pid_t child = -1;
  int keepalive_fd = -1;  // the child serves until this pipe closes
  RestConfig config;
  std::string line;       // the first event exactly as the emulator sends it
  std::size_t event_bytes = 0;

  explicit Bench(bool tls) {
    int to_parent[2], from_parent[2];
    if (::pipe(to_parent) != 0 || ::pipe(from_parent) != 0) throw std::runtime_error("pipe");
    child = ::fork();
    if (child < 0) throw std::runtime_error("fork");
    if (child == 0) {
      ::close(to_parent[0]);
      ::close(from_parent[1]);
      Serve(tls, to_parent[1], from_parent[0]);
      std::_Exit(0);
    }
    ::close(to_parent[1]);
    ::close(from_parent[0]);
    keepalive_fd = from_parent[1];
    const std::string kubeconfig = ReceiveBlob(to_parent[0]);
    line = ReceiveBlob(to_parent[0]);
    ::close(to_parent[0]);
    event_bytes = line.size();
    auto parsed = ParseKubeconfig(kubeconfig, "bench");
    auto resolved = ResolveContext(*parsed);
    if (!resolved.ok()) throw std::runtime_error(resolved.status().ToString());
    config = *resolved;
  }

  ~Bench() {
    ::close(keepalive_fd);
    int status = 0;
    ::waitpid(child, &status, 0);
  }

  static void Serve(bool tls, int out, int keepalive) {
    emu::EmulatorOptions options;
    options.clusters = {"bench"};
    options.tls = tls;
    options.cluster.max_events = 4 * kObjects;
    emu::Emulator emulator(options);
    auto& store = emulator.cluster("bench").store();
    for (int i = 0; i < kObjects; ++i) {
      emu::Json object = emu::Json::parse(kubefold::bench::DeploymentObject(i).dump());
      const std::string name = object["metadata"]["name"];
      store.Mutate("apps/deployments", "shop", name, [&](const emu::ObjectPtr&) { return emu::Mutation::Put(object); });
    }
    auto list = store.List("apps/deployments", std::nullopt);
    SendBlob(out, emulator.Kubeconfig("bench"));
    SendBlob(out, "{\"type\":\"ADDED\",\"object\":" + list->objects.front()->text + "}\n");
    ::close(out);
    char byte;
    while (::read(keepalive, &byte, 1) > 0) {
    }
  }
};

Bench& Tls() {
  static Bench bench(true);
  return bench;
}

Bench& Plain() {
  static Bench bench(false);
  return bench;
}

void Report(benchmark::State& st, const Bench& bench, double cpu_seconds) {
  const auto events = static_cast<double>(st.iterations()) * kObjects;
  st.SetItemsProcessed(static_cast<int64_t>(events));
  st.SetBytesProcessed(static_cast<int64_t>(events * static_cast<double>(bench.event_bytes)));
  st.counters["event_bytes"] = static_cast<double>(bench.event_bytes);
  st.counters["cpu_ns_per_event"] = cpu_seconds * 1e9 / events;
}

void BM_WatchReflector_kubefold(benchmark::State& st) {
  Bench& bench = Tls();
  auto transport = NewHttpTransport(bench.config, {.warn = [](std::string_view) {}});
  RestClientOptions rest_options;
  rest_options.qps = 1e6;
  rest_options.burst = 1000000;
  RestClient rest(std::move(*transport), std::shared_ptr<TokenSource>(NewTokenSource(bench.config)), rest_options);
  double cpu = 0;
  for (auto _ : st) {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t replaced = 0;
    bool synced = false;
    ReflectorOptions options;
    options.type = kDeployments;
    options.resource = "deployments";
    options.namespace_name = "shop";
    options.streaming_list = true;
    ReflectorHooks hooks;
    hooks.sink = [&](ReflectorEvent&& e) {
      if (e.type == ReflectorEventType::kReplace) replaced = e.objects.size();
      if (e.type == ReflectorEventType::kSynced) {
        std::lock_guard lock(mu);
        synced = true;
        cv.notify_all();
      }
    };
    hooks.authorize = [&](HttpRequest& r) { return rest.Authorize(r); };
    hooks.log = [](std::string_view) {};
    const double cpu0 = ProcessCpuSeconds();
    Reflector reflector(rest.transport(), options, hooks);
    std::thread runner([&] { reflector.Run(); });
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return synced; });
    }
    cpu += ProcessCpuSeconds() - cpu0;
    st.PauseTiming();
    reflector.Stop();
    runner.join();
    st.ResumeTiming();
    if (replaced != static_cast<std::size_t>(kObjects)) {
      st.SkipWithError("the reflector did not hand out every object");
      return;
    }
  }
  Report(st, bench, cpu);
}

void TransportOnly(benchmark::State& st, Bench& bench) {
  auto transport = NewHttpTransport(bench.config, {.warn = [](std::string_view) {}});
  auto tokens = NewTokenSource(bench.config);
  double cpu = 0;
  for (auto _ : st) {
    const double cpu0 = ProcessCpuSeconds();
    HttpRequest req;
    req.path_and_query = "/apis/apps/v1/namespaces/shop/deployments?watch=1&resourceVersion=0&timeoutSeconds=600";
    req.timeout = std::chrono::seconds(60);
    auto token = tokens->Token();
    req.headers.emplace_back("Authorization", "Bearer " + *token);
    auto stream = (*transport)->Open(req);
    if (!stream.ok() || stream->status != 200) {
      st.SkipWithError("watch did not open");
      return;
    }
    int lines = 0;
    while (lines < kObjects) {
      auto chunk = stream->body->Read();
      if (!chunk.ok() || chunk->empty()) {
        st.SkipWithError("watch ended early");
        return;
      }
      for (char c : *chunk) lines += c == '\n';
    }
    stream->body->Cancel();
    cpu += ProcessCpuSeconds() - cpu0;
  }
  Report(st, bench, cpu);
}

void BM_WatchTransport_kubefold(benchmark::State& st) { TransportOnly(st, Tls()); }
void BM_WatchTransportPlain_kubefold(benchmark::State& st) { TransportOnly(st, Plain()); }

const std::string& Line() { return Tls().line; }

void BM_Decode_kubefold(benchmark::State& st) {
  const std::string& line = Line();
  LineFramer framer;
  for (auto _ : st) {
    kubefold::Status s = framer.Feed(line, [&](std::string_view l) {
      auto ev = DecodeWatchEvent(l, kDeployments);
      if (!ev.ok()) return ev.status();
      benchmark::DoNotOptimize(ev);
      return kubefold::Status::Ok();
    });
    if (!s.ok()) {
      st.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * line.size()));
}

void BM_Parse_simdjson(benchmark::State& st) {
  const simdjson::padded_string line(Line());
  simdjson::dom::parser parser;
  for (auto _ : st) {
    auto doc = parser.parse(line);
    benchmark::DoNotOptimize(doc);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * line.size()));
}

void BM_Parse_nlohmann(benchmark::State& st) {
  const std::string& line = Line();
  for (auto _ : st) {
    auto j = nlohmann::json::parse(line);
    benchmark::DoNotOptimize(j);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * line.size()));
}

void BM_Dump_nlohmann(benchmark::State& st) {
  const auto j = nlohmann::json::parse(Line());
  for (auto _ : st) {
    std::string s = j["object"].dump();
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

// The pruned JSON of kCodecObjects fixture Deployments, as the decoder hands
// them to the folder; the first is the dictionary.
constexpr int kCodecObjects = 2000;
const std::vector<std::string>& CodecObjects() {
  static const std::vector<std::string> objects = [] {
    std::vector<std::string> v;
    for (int i = 0; i < kCodecObjects; ++i) {
      std::string line = kubefold::bench::DeploymentEvent(i);
      line.pop_back();  // the "\n"
      auto ev = DecodeWatchEvent(line, kDeployments);
      if (!ev.ok() || !ev->object) {
        std::fprintf(stderr, "watch_bench: fixture event %d does not decode\n", i);
        std::exit(1);
      }
      v.push_back(std::move(ev->object->workload.object_json));
    }
    return v;
  }();
  return objects;
}
const kubefold::state::ObjectDictionary& CodecDictionary() {
  static const auto* d = kubefold::state::ObjectDictionary::ForKind("watch-bench", "apps", "Deployment", CodecObjects()[0]);
  return *d;
}

void BM_Compress_kubefold(benchmark::State& st) {
  const auto& objects = CodecObjects();
  const auto& dict = CodecDictionary();
  std::string frame;
  size_t i = 1, json_bytes = 0, frame_bytes = 0;
  for (auto _ : st) {
    dict.Compress(objects[i], frame);
    benchmark::DoNotOptimize(frame.data());
    json_bytes += objects[i].size();
    frame_bytes += frame.size();
    if (++i == objects.size()) i = 1;
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.counters["json_bytes"] = static_cast<double>(json_bytes) / static_cast<double>(st.iterations());
  st.counters["frame_bytes"] = static_cast<double>(frame_bytes) / static_cast<double>(st.iterations());
}

void BM_Decompress_kubefold(benchmark::State& st) {
  const auto& objects = CodecObjects();
  const auto& dict = CodecDictionary();
  std::vector<std::string> frames(objects.size());
  for (size_t k = 1; k < objects.size(); ++k) dict.Compress(objects[k], frames[k]);
  std::string out;
  size_t i = 1;
  for (auto _ : st) {
    out.clear();
    if (!dict.Decompress(frames[i], out) || out.size() != objects[i].size()) {
      st.SkipWithError("a frame did not decompress to its object");
      return;
    }
    benchmark::DoNotOptimize(out.data());
    if (++i == objects.size()) i = 1;
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

BENCHMARK(BM_WatchReflector_kubefold)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(3)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_WatchTransport_kubefold)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(3)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_WatchTransportPlain_kubefold)->UseRealTime()->Unit(benchmark::kMillisecond)->MinTime(3)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Decode_kubefold)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Parse_simdjson)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Parse_nlohmann)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Dump_nlohmann)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Compress_kubefold)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Decompress_kubefold)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
