// The durable history's cost to folding (`make bench-journal`).
//
// A store holding 10,000 Deployments of ~2 KB of pruned JSON (the
// realistic fixture without managedFields) folds batches of 256 events
// (80% updates, 10% inserts, 10% deletes), as the Folder hands them over:
//
//   BM_Fold/journal:0        the store alone (baseline)
//   BM_Fold/journal:1        with a Journal attached (fsync per commit): the
//                            writer's Apply time, the journal committing on
//                            its own thread meanwhile
//   BM_Fold/journal:2        the same without fsync
//   BM_Fold/journal:3        no journal, but another thread busy hashing
//                            memory meanwhile: what any work on the second
//                            core costs the writer on this machine
//   BM_FoldPaced/journal:J   the writer's Apply time per batch when events
//                            arrive at 20k/s (a batch every 12.8 ms), as in
//                            operation: the journal is idle between commits
//   BM_FoldDurable/sync:S    apply 16 batches, then wait until the journal
//                            has committed the last one: the sustained rate
//                            at which folded events become durable
//
// The goal: the writer is slowed by at most 20% (journal:1 against
// journal:0, medians of the repetitions), and the durable rate stays well
// above the watch path's 30k events/s per cluster.
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <thread>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "state/journal.h"
#include "tests/bench/deployment_fixture.h"

namespace {

using namespace kubefold::state;

constexpr int kWorkloads = 10000;
constexpr size_t kBatch = 256;

std::string PrunedJson(int i, int version) {
  nlohmann::json o = kubefold::bench::DeploymentObject(i);
  o["metadata"].erase("managedFields");
  o["metadata"]["resourceVersion"] = std::to_string(1000 + version);
  o["status"]["observedGeneration"] = version;
  return o.dump();
}

struct Fixture {
  std::string dir;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Store> store;
  std::mt19937 rng{42};
  std::vector<bool> present;
  std::vector<std::string> json;  // per workload: its pruned JSON with a version placeholder
  int version = 0;

  explicit Fixture(int mode) : present(static_cast<size_t>(kWorkloads) * 11 / 10, false) {
    for (size_t i = 0; i < present.size(); ++i) json.push_back(PrunedJson(static_cast<int>(i), 0));
    StoreOptions so;
    so.history.keep_last = 256;
    so.history.keep_for = std::chrono::milliseconds(0);  // by count only: bounded memory
    if (mode > 0) {
      char tmpl[] = "/tmp/kubefold-journal-bench-XXXXXX";
      dir = ::mkdtemp(tmpl);
      JournalOptions jo;
      jo.path = dir + "/history.db";
      jo.sync = mode == 1;
      jo.max_pending = so.history.keep_last;  // as the operator configures it
      auto j = Journal::Open(jo);
      if (!j.ok()) throw std::runtime_error(j.status().ToString());
      journal = std::move(*j);
      Journal* jp = journal.get();
      so.on_publish = [jp](const PublishEvent& e) { jp->OnPublish(e); };
    }
    store = std::make_unique<Store>(so);
    if (journal) journal->Start(*store);
    for (int i = 0; i < kWorkloads; i += static_cast<int>(kBatch)) {
      Batch b;
      for (int k = i; k < std::min(kWorkloads, i + static_cast<int>(kBatch)); ++k) Put(b, k);
      (void)store->Apply(std::move(b));
    }
    if (journal) (void)journal->WaitDurable(store->Current().seq(), std::chrono::minutes(5));
  }
  ~Fixture() {
    if (journal) journal->Stop();
    journal.reset();
    store.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
  }
  void Put(Batch& b, int i) {
    WorkloadObject o;
    o.key = {"apps", "Deployment", "checkout-" + std::to_string(i)};
    // The object differs from its last version (the store drops unchanged
    // writes): its resourceVersion field is rewritten in place.
    o.object_json = json[static_cast<size_t>(i)];
    const size_t at = o.object_json.find("\"resourceVersion\":\"");
    const std::string rv = std::to_string(1000000 + ++version);
    if (at != std::string::npos) o.object_json.replace(at + 19, 4, rv.substr(rv.size() - 4));
    o.summary.generation = version;
    o.summary.observed_generation = version;
    o.summary.desired_replicas = o.summary.ready_replicas = o.summary.available_replicas = 3;
    (void)b.Upsert("eu-1", "shop", o);
    present[static_cast<size_t>(i)] = true;
  }
  // One batch of events, built before the timed part.
  Batch Next() {
    Batch b;
    b.Reserve(kBatch);
    for (size_t k = 0; k < kBatch; ++k) {
      const int roll = static_cast<int>(rng() % 10);
      const int i = static_cast<int>(rng() % present.size());
      if (roll == 0 && present[static_cast<size_t>(i)]) {
        (void)b.Delete("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "checkout-" + std::to_string(i)));
        present[static_cast<size_t>(i)] = false;
      } else {
        Put(b, i);
      }
    }
    return b;
  }
};

void BM_Fold(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));
  Fixture fx(mode == 3 ? 0 : mode);
  std::atomic<bool> stop{false};
  std::thread busy;
  if (mode == 3) {
    busy = std::thread([&] {
      std::vector<uint64_t> buf(4 << 20);  // 32 MiB: beyond the caches, as the journal's pages are
      uint64_t h = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        for (size_t i = 0; i < buf.size(); i += 8) h = (h ^ buf[i]) * 0x9E3779B97F4A7C15ull, buf[i] = h;
      }
      benchmark::DoNotOptimize(h);
    });
  }
  std::vector<Batch> batches;
  for (auto _ : state) {
    state.PauseTiming();
    if (batches.empty()) {
      for (int i = 0; i < 64; ++i) batches.push_back(fx.Next());
    }
    Batch b = std::move(batches.back());
    batches.pop_back();
    state.ResumeTiming();
    auto r = fx.store->Apply(std::move(b));
    benchmark::DoNotOptimize(r);
  }
  stop = true;
  if (busy.joinable()) busy.join();
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  if (fx.journal) {
    const JournalStats st = fx.journal->Stats();
    state.counters["coalesced"] = static_cast<double>(st.coalesced);
    state.counters["commits"] = static_cast<double>(st.commits);
  }
}
BENCHMARK(BM_Fold)->ArgName("journal")->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMicrosecond)->UseRealTime()
    ->MinTime(2)->Repetitions(5)->ReportAggregatesOnly(true);

void BM_FoldPaced(benchmark::State& state) {
  Fixture fx(static_cast<int>(state.range(0)));
  for (auto _ : state) {
    Batch b = fx.Next();
    const auto t0 = std::chrono::steady_clock::now();
    auto r = fx.store->Apply(std::move(b));
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(r);
    state.SetIterationTime(std::chrono::duration<double>(t1 - t0).count());
    // The rest of the 12.8 ms a batch of 256 takes to arrive at 20k/s.
    std::this_thread::sleep_until(t0 + std::chrono::microseconds(12800));
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * kBatch));
  if (fx.journal) state.counters["coalesced"] = static_cast<double>(fx.journal->Stats().coalesced);
}
BENCHMARK(BM_FoldPaced)->ArgName("journal")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseManualTime()
    ->Iterations(400)->Repetitions(3)->ReportAggregatesOnly(true);

void BM_FoldDurable(benchmark::State& state) {
  Fixture fx(state.range(0) ? 1 : 2);
  for (auto _ : state) {
    state.PauseTiming();
    std::vector<Batch> batches;
    for (int i = 0; i < 16; ++i) batches.push_back(fx.Next());
    state.ResumeTiming();
    for (auto& b : batches) (void)fx.store->Apply(std::move(b));
    auto s = fx.journal->WaitDurable(fx.store->Current().seq(), std::chrono::minutes(1));
    if (!s.ok()) state.SkipWithError(s.ToString().c_str());
  }
  state.SetItemsProcessed(static_cast<int64_t>(state.iterations() * 16 * kBatch));
  const JournalStats st = fx.journal->Stats();
  state.counters["disk_MiB"] = static_cast<double>(st.disk_bytes) / (1 << 20);
  state.counters["coalesced"] = static_cast<double>(st.coalesced);
}
BENCHMARK(BM_FoldDurable)->ArgName("sync")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime()
    ->MinTime(2)->Repetitions(3)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
