// state_bench: state::Store against the maps a team would write instead
// (tests/bench/baselines.h), on one data set per workload count N.
//
// Data set: N Deployments over 10 clusters ("c0".."c9") x 100 namespaces
// ("ns-000".."ns-099"), named "web-000123", each with a pruned object JSON of
// ~325 bytes generated deterministically from its index and version, and its
// summary. Workload i lives in cluster i % 10, namespace (i / 10) % 100.
//
// Benchmark names are BM_<operation>_<implementation>/<N>[/suffixes]:
//   Snapshot        take a consistent snapshot (and drop it)
//   Fold            apply 256 events (80% updates, 10% inserts, 10% deletes),
//                   building the batch / values inside the timed region
//   Diff, DiffVisit diff two snapshots that differ by exactly 1000 updates
//   Lookup          point lookup of a random existing workload, one thread
//   ReadIdle        fresh-read latency (p50_ns / p99_ns), no writer
//   ReadUnderWrite  the same while another thread folds at full speed
//   Memory          heap per workload and per retained change (allocator statistics, heap.h);
//                   kubefold_zstd: the same with records compressed (object_codec.h)
//
// Inputs (objects, and the baselines' flat keys) are prepared outside the
// timed region; inside it each implementation copies what it stores. Our
// store runs with a bounded history (see BenchStoreOptions).
//
// Each implementation's structure for a given N is built once and reused by
// every benchmark of that (implementation, N) in registration order:
// Snapshot, Lookup, ReadIdle, ReadUnderWrite (updates only), Diff (1000
// updates), Fold last (it inserts and deletes). Benchmarks are registered
// N by N so at most one built structure is alive at a time.
//
// Run through `make bench-state`; tests/bench/summarize.py turns the JSON into
// the goal table.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <vector>

#include "state/batch.h"
#include "state/diff.h"
#include "state/internal/diff_paths.h"
#include "state/object_codec.h"
#include "state/store.h"
#include "tests/bench/baselines.h"
#include "tests/bench/heap.h"

namespace kubefold::bench {
namespace {

using state::WorkloadObject;

constexpr uint32_t kClusters = 10;
constexpr uint32_t kNamespaces = 100;
constexpr size_t kLoadBatch = 4096;     // upserts per batch when loading our store
constexpr size_t kFoldBatch = 256;      // events per Fold iteration / writer batch
constexpr size_t kFoldChunk = 64 * kFoldBatch;  // events generated per (untimed) refill
constexpr size_t kDiffChanges = 1000;
constexpr size_t kProbes = size_t{1} << 16;  // lookup keys, cycled
constexpr size_t kReadBlock = 64;             // lookups timed together
// Memory: single-update snapshots held per block. A change-log segment
// (state/internal/change_log.h) covers this many single-change batches, so
// every block pays for one: its cost is in the figure, amortized.
constexpr size_t kRetainedChanges = state::internal::ChangeSegment::kMaxBatches;
constexpr uint64_t kFoldSeed = 0xf01d, kDiffSeed = 0xd1ff, kProbeSeed = 0x9e7, kRwSeed = 0x7733;

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "state_bench: %s\n", what.c_str());
  std::abort();
}

const std::string& ClusterName(uint32_t idx) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (uint32_t c = 0; c < kClusters; ++c) v.push_back("c" + std::to_string(c));
    return v;
  }();
  return names[idx % kClusters];
}

const std::string& NsName(uint32_t idx) {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    char buf[16];
    for (uint32_t n = 0; n < kNamespaces; ++n) {
      std::snprintf(buf, sizeof(buf), "ns-%03u", n);
      v.emplace_back(buf);
    }
    return v;
  }();
  return names[(idx / kClusters) % kNamespaces];
}

uint64_t SplitMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Workload `idx` at `version`: a pruned Deployment as a watcher would hand it
// over. Deterministic; a different version gives different JSON and summary.
WorkloadObject MakeObject(uint32_t idx, uint32_t version) {
  WorkloadObject o;
  o.key.group = "apps";
  o.key.kind = "Deployment";
  char name[24];
  std::snprintf(name, sizeof(name), "web-%06u", idx);
  o.key.name = name;
  const unsigned replicas = 1 + idx % 5;
  const unsigned generation = version + 1;
  const uint64_t u = SplitMix(idx), v = SplitMix(u);
  const unsigned long long resource_version = 1000000ULL + idx * 131ULL + version * 7919ULL;
  char buf[512];
  int len = std::snprintf(
      buf, sizeof(buf),
      "{\"metadata\":{\"name\":\"%s\",\"namespace\":\"%s\",\"uid\":\"%08x-%04x-4%03x-8%03x-%012llx\","
      "\"resourceVersion\":\"%llu\",\"generation\":%u,\"labels\":{\"app\":\"%s\"}},"
      "\"spec\":{\"replicas\":%u,\"template\":{\"containers\":[{\"image\":\"shop/web:1.%u.%u\"}]}},"
      "\"status\":{\"observedGeneration\":%u,\"readyReplicas\":%u,\"availableReplicas\":%u}}",
      name, NsName(idx).c_str(), static_cast<unsigned>(u >> 32), static_cast<unsigned>(u & 0xffff),
      static_cast<unsigned>((u >> 16) & 0xfff), static_cast<unsigned>(v & 0xfff),
      static_cast<unsigned long long>(v >> 16) & 0xffffffffffffULL, resource_version, generation, name, replicas, version % 20, idx % 50, generation, replicas, replicas);
  if (len <= 0 || static_cast<size_t>(len) >= sizeof(buf)) Die("object JSON does not fit its buffer");
  o.object_json.assign(buf, static_cast<size_t>(len));
  o.summary.generation = generation;
  o.summary.observed_generation = generation;
  o.summary.desired_replicas = static_cast<int32_t>(replicas);
  o.summary.ready_replicas = static_cast<int32_t>(replicas);
  o.summary.available_replicas = static_cast<int32_t>(replicas);
  return o;
}

size_t PayloadBytes(const WorkloadObject& o) {
  return o.key.group.size() + o.key.kind.size() + o.key.name.size() + o.object_json.size();
}

// Involuntary context switches of the calling thread so far (Linux).
long InvoluntarySwitches() {
  struct rusage ru;
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return 0;
  return ru.ru_nivcsw;
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  size_t k = static_cast<size_t>(q * static_cast<double>(v.size() - 1));
  std::nth_element(v.begin(), v.begin() + static_cast<ptrdiff_t>(k), v.end());
  return v[k];
}

// ------------------------------------------------------------- data set ---

struct Probe {
  uint32_t idx;
  state::WorkloadKey key;  // for Store::Get
  std::string flat;        // for the flat baselines
  std::string inner;       // for DeepCopyMap
};

struct DataSet {
  size_t n = 0;
  std::vector<WorkloadObject> objects;  // workload i at version 0
  uint64_t payload_bytes = 0;           // sum of key + JSON bytes
  std::vector<Probe> probes;            // kProbes random existing workloads
};

// Built once per N for the whole process.
const DataSet& GetDataSet(size_t n) {
  static std::map<size_t, std::unique_ptr<DataSet>> cache;
  auto& slot = cache[n];
  if (slot) return *slot;
  auto ds = std::make_unique<DataSet>();
  ds->n = n;
  ds->objects.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    ds->objects.push_back(MakeObject(i, 0));
    ds->payload_bytes += PayloadBytes(ds->objects.back());
  }
  std::mt19937_64 rng(kProbeSeed);
  ds->probes.reserve(kProbes);
  for (size_t i = 0; i < kProbes; ++i) {
    uint32_t idx = static_cast<uint32_t>(rng() % n);
    const auto& key = ds->objects[idx].key;
    ds->probes.push_back(
        Probe{idx, key, FlatKey(ClusterName(idx), NsName(idx), key), InnerKey(key)});
  }
  slot = std::move(ds);
  return *slot;
}

// ----------------------------------------------------------------- events ---

struct Event {
  enum class Type : uint8_t { kUpsert, kDelete };
  Type type = Type::kUpsert;
  uint32_t idx = 0;
  WorkloadObject object;  // key always; JSON and summary for upserts
  std::string flat;       // FlatKey, for the flat baselines
  std::string inner;      // InnerKey, for DeepCopyMap
};

Event MakeUpsert(uint32_t idx, uint32_t version) {
  Event e;
  e.type = Event::Type::kUpsert;
  e.idx = idx;
  e.object = MakeObject(idx, version);
  e.flat = FlatKey(ClusterName(idx), NsName(idx), e.object.key);
  e.inner = InnerKey(e.object.key);
  return e;
}

// A deterministic stream of events against a data set of N workloads
// (indices [0, N) present at the start; [N, 2N) is room for inserts). It
// tracks which workloads exist, so every update and delete names a present
// workload and every insert an absent one.
class EventGen {
 public:
  EventGen(size_t n, uint64_t seed, unsigned update_pct, unsigned insert_pct)
      : rng_(seed), update_pct_(update_pct), insert_pct_(insert_pct), version_(2 * n, 0) {
    present_.resize(n);
    for (uint32_t i = 0; i < n; ++i) present_[i] = i;
    absent_.resize(n);
    for (uint32_t i = 0; i < n; ++i) absent_[i] = static_cast<uint32_t>(n) + i;
  }

  void Next(size_t count, std::vector<Event>& out) {
    for (size_t k = 0; k < count; ++k) {
      const unsigned roll = static_cast<unsigned>(rng_() % 100);
      bool insert = roll >= update_pct_ && roll < update_pct_ + insert_pct_ && !absent_.empty();
      bool erase = roll >= update_pct_ + insert_pct_ && present_.size() > 1;
      if (!insert && !erase) {
        uint32_t idx = present_[rng_() % present_.size()];
        out.push_back(MakeUpsert(idx, ++version_[idx]));
      } else if (insert) {
        uint32_t idx = TakeRandom(absent_);
        present_.push_back(idx);
        out.push_back(MakeUpsert(idx, ++version_[idx]));
      } else {
        uint32_t idx = TakeRandom(present_);
        absent_.push_back(idx);
        Event e;
        e.type = Event::Type::kDelete;
        e.idx = idx;
        char name[24];
        std::snprintf(name, sizeof(name), "web-%06u", idx);
        e.object.key = state::WorkloadKey{"apps", "Deployment", name};
        e.flat = FlatKey(ClusterName(idx), NsName(idx), e.object.key);
        e.inner = InnerKey(e.object.key);
        out.push_back(std::move(e));
      }
    }
  }

 private:
  uint32_t TakeRandom(std::vector<uint32_t>& v) {
    size_t i = rng_() % v.size();
    uint32_t idx = v[i];
    v[i] = v.back();
    v.pop_back();
    return idx;
  }

  std::mt19937_64 rng_;
  unsigned update_pct_, insert_pct_;
  std::vector<uint32_t> present_, absent_, version_;
};

// `count` updates of distinct existing workloads, with versions no other
// event uses.
std::vector<Event> DistinctUpdates(size_t n, size_t count, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<uint32_t> idx(n);
  for (uint32_t i = 0; i < n; ++i) idx[i] = i;
  std::vector<Event> out;
  for (size_t k = 0; k < count; ++k) {
    std::swap(idx[k], idx[k + rng() % (n - k)]);
    out.push_back(MakeUpsert(idx[k], 1000000 + static_cast<uint32_t>(k)));
  }
  return out;
}

// -------------------------------------------------------- implementations ---

// Bounded history for the benchmarks: the default (1024 snapshots, plus all
// of the last 10 minutes) would keep every version a benchmark creates, and
// freeing old versions belongs in the measured steady state.
state::StoreOptions BenchStoreOptions(size_t keep_last) {
  state::StoreOptions o;
  o.history.keep_last = keep_last;
  o.history.keep_for = std::chrono::milliseconds(0);
  return o;
}

// Batch::Reserve, where the state/ library has it (it is newer than the
// first Batch API), as a caller that knows its batch size would use it.
template <class B>
void ReserveBatch(B& b, size_t n) {
  if constexpr (requires { b.Reserve(n); }) b.Reserve(n);
}

void LoadStore(state::Store& store, const DataSet& ds) {
  state::Batch b;
  ReserveBatch(b, kLoadBatch);
  for (uint32_t i = 0; i < ds.n; ++i) {
    if (Status s = b.Upsert(ClusterName(i), NsName(i), ds.objects[i]); !s.ok()) Die(s.ToString());
    if (b.size() == kLoadBatch || i + 1 == ds.n) {
      auto r = store.Apply(std::move(b));
      if (!r.ok()) Die(r.status().ToString());
      b = state::Batch();
      ReserveBatch(b, kLoadBatch);
    }
  }
}

struct KubefoldImpl {
  state::Store store{BenchStoreOptions(16)};
  state::Snapshot diff_from, diff_to;

  void Load(const DataSet& ds) { LoadStore(store, ds); }

  void Apply(const Event* ev, size_t count) {
    state::Batch b;
    ReserveBatch(b, count);
    for (size_t i = 0; i < count; ++i) {
      const Event& e = ev[i];
      Status s = e.type == Event::Type::kUpsert
                     ? b.Upsert(ClusterName(e.idx), NsName(e.idx), e.object)
                     : b.Delete(ClusterName(e.idx), NsName(e.idx), e.object.key);
      if (!s.ok()) Die(s.ToString());
    }
    auto r = store.Apply(std::move(b));
    if (!r.ok()) Die(r.status().ToString());
  }

  static int64_t Read(const state::Snapshot& s, const Probe& p) {
    const state::Record* r = s.Get(ClusterName(p.idx), NsName(p.idx), p.key);
    return r == nullptr ? -2 : r->summary().generation;
  }
  // Lookup: on one snapshot held for the whole run.
  auto Reader() const {
    return [s = store.Current()](const Probe& p) { return Read(s, p); };
  }
  // ReadIdle / ReadUnderWrite: every lookup on the newest snapshot.
  int64_t ReadFresh(const Probe& p) const { return Read(store.Current(), p); }
};

struct DeepCopyImpl {
  DeepCopyMap map;
  std::unique_ptr<DeepCopyMap::Clusters> diff_from, diff_to;

  void Load(const DataSet& ds) {
    map.Write([&](DeepCopyMap::Clusters& m) {
      for (uint32_t i = 0; i < ds.n; ++i) {
        const WorkloadObject& o = ds.objects[i];
        m[ClusterName(i)][NsName(i)].insert_or_assign(InnerKey(o.key), Value{o.object_json, o.summary});
      }
    });
  }

  void Apply(const Event* ev, size_t count) {
    map.Write([&](DeepCopyMap::Clusters& m) {
      for (size_t i = 0; i < count; ++i) {
        const Event& e = ev[i];
        if (e.type == Event::Type::kUpsert) {
          m[ClusterName(e.idx)][NsName(e.idx)].insert_or_assign(e.inner,
                                                                Value{e.object.object_json, e.object.summary});
        } else if (auto c = m.find(ClusterName(e.idx)); c != m.end()) {
          if (auto n = c->second.find(NsName(e.idx)); n != c->second.end()) n->second.erase(e.inner);
        }
      }
    });
  }

  auto Reader() const {
    return [this](const Probe& p) { return map.Generation(ClusterName(p.idx), NsName(p.idx), p.inner); };
  }
};

// The sharded and tbb baselines share one interface over flat keys.
template <class Map>
struct FlatImpl {
  Map map;

  void Load(const DataSet& ds) {
    for (uint32_t i = 0; i < ds.n; ++i) {
      const WorkloadObject& o = ds.objects[i];
      map.Upsert(FlatKey(ClusterName(i), NsName(i), o.key), Value{o.object_json, o.summary});
    }
  }

  void Apply(const Event* ev, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      const Event& e = ev[i];
      if (e.type == Event::Type::kUpsert) {
        map.Upsert(e.flat, Value{e.object.object_json, e.object.summary});
      } else {
        map.Erase(e.flat);
      }
    }
  }

  auto Reader() const {
    return [this](const Probe& p) { return map.Generation(p.flat); };
  }
  int64_t ReadFresh(const Probe& p) const { return map.Generation(p.flat); }
};
using ShardedImpl = FlatImpl<ShardedMap>;

struct CowAtomicImpl {
  CowAtomicMap map;

  void Load(const DataSet& ds) {
    CowAtomicMap::Map m;
    m.reserve(ds.n);
    for (uint32_t i = 0; i < ds.n; ++i) {
      const WorkloadObject& o = ds.objects[i];
      m.emplace(FlatKey(ClusterName(i), NsName(i), o.key),
                std::make_shared<const Value>(Value{o.object_json, o.summary}));
    }
    map.Reset(std::move(m));
  }

  void Apply(const Event* ev, size_t count) {
    map.WriteBatch([&](CowAtomicMap::Map& m) {
      for (size_t i = 0; i < count; ++i) {
        const Event& e = ev[i];
        if (e.type == Event::Type::kUpsert) {
          m.insert_or_assign(e.flat, std::make_shared<const Value>(Value{e.object.object_json, e.object.summary}));
        } else {
          m.erase(e.flat);
        }
      }
    });
  }

  auto Reader() const {
    return [this](const Probe& p) { return map.Generation(p.flat); };
  }
};

using TbbImpl = FlatImpl<TbbMap>;

// ---------------------------------------------------------------- fixture ---

// One implementation loaded with a data set, plus what the benchmarks of
// that (implementation, N) keep between Google Benchmark's repeated calls.
template <class Impl>
struct Fixture {
  explicit Fixture(const DataSet& d) : ds(d) { impl.Load(ds); }
  const DataSet& ds;
  Impl impl;
  // Fold: the event stream and the position in the current chunk.
  std::unique_ptr<EventGen> gen;
  std::vector<Event> events;
  size_t next = 0;
  // ReadUnderWrite: the writer's update pool.
  std::vector<Event> rw_pool;
  int64_t rw_generation = int64_t{1} << 32;
  // Diff: prepared once.
  bool diff_ready = false;
};

// The one built structure alive at a time; a request for another type or N
// frees it first, so the 1M structures never pile up.
class FixtureSlot {
 public:
  template <class Impl>
  Fixture<Impl>& Get(size_t n) {
    if (type_ == &typeid(Impl) && n_ == n) return *static_cast<Fixture<Impl>*>(ptr_.get());
    Clear();
    const DataSet& ds = GetDataSet(n);
    auto f = std::make_shared<Fixture<Impl>>(ds);
    Fixture<Impl>& ref = *f;
    ptr_ = std::move(f);
    type_ = &typeid(Impl);
    n_ = n;
    return ref;
  }
  void Clear() {
    ptr_.reset();
    type_ = nullptr;
    n_ = 0;
  }

 private:
  std::shared_ptr<void> ptr_;
  const std::type_info* type_ = nullptr;
  size_t n_ = 0;
};

FixtureSlot& Slot() {
  static FixtureSlot slot;
  return slot;
}

size_t N(const benchmark::State& st) { return static_cast<size_t>(st.range(0)); }

// ------------------------------------------------------------ benchmarks ---

void BM_Snapshot_kubefold(benchmark::State& st) {
  auto& fx = Slot().Get<KubefoldImpl>(N(st));
  for (auto _ : st) {
    state::Snapshot s = fx.impl.store.Current();
    benchmark::DoNotOptimize(s);
  }
  st.counters["workloads"] = static_cast<double>(fx.impl.store.Current().workload_count());
}

void BM_Snapshot_deepcopy(benchmark::State& st) {
  auto& fx = Slot().Get<DeepCopyImpl>(N(st));
  for (auto _ : st) {
    auto copy = fx.impl.map.Snapshot();  // copied under the mutex, freed at the end of the iteration
    benchmark::DoNotOptimize(copy.get());
  }
}

void BM_Snapshot_sharded(benchmark::State& st) {
  auto& fx = Slot().Get<ShardedImpl>(N(st));
  for (auto _ : st) {
    auto copy = fx.impl.map.Snapshot();
    benchmark::DoNotOptimize(copy.get());
  }
}

void BM_Snapshot_cowatomic(benchmark::State& st) {
  auto& fx = Slot().Get<CowAtomicImpl>(N(st));
  for (auto _ : st) {
    auto s = fx.impl.map.Snapshot();
    benchmark::DoNotOptimize(s);
  }
}

template <class Impl>
void BM_Lookup(benchmark::State& st) {
  auto& fx = Slot().Get<Impl>(N(st));
  const auto& probes = fx.ds.probes;
  auto read = fx.impl.Reader();
  size_t i = 0, misses = 0;
  for (auto _ : st) {
    int64_t g = read(probes[i++ & (kProbes - 1)]);
    misses += g < 0;
    benchmark::DoNotOptimize(g);
  }
  if (misses != 0) st.SkipWithError("a lookup of an existing workload found nothing");
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

template <class Impl>
void BM_Fold(benchmark::State& st) {
  const size_t n = N(st);
  auto& fx = Slot().Get<Impl>(n);
  if (!fx.gen) fx.gen = std::make_unique<EventGen>(n, kFoldSeed, 80, 10);
  uint64_t noops_before = 0;
  if constexpr (std::is_same_v<Impl, KubefoldImpl>) {
    // The Diff benchmarks leave two old snapshots held. While a snapshot is
    // held, every first rewrite of a path keeps the old version alive, so
    // the store allocates fresh memory instead of reusing freed nodes: that
    // is the cost of pinning (measured separately), not of folding. Fold is
    // measured with the store's configured history only.
    fx.impl.diff_from = {};
    fx.impl.diff_to = {};
    fx.impl.store.Collect();
    noops_before = fx.impl.store.Stats().events_noop;
  }
  for (auto _ : st) {
    if (fx.next + kFoldBatch > fx.events.size()) {
      st.PauseTiming();
      fx.events.clear();
      fx.gen->Next(kFoldChunk, fx.events);
      fx.next = 0;
      st.ResumeTiming();
    }
    fx.impl.Apply(fx.events.data() + fx.next, kFoldBatch);
    fx.next += kFoldBatch;
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * kFoldBatch));
  if constexpr (std::is_same_v<Impl, KubefoldImpl>) {
    // Every event changes something; a no-op would flatter the store.
    const uint64_t noops = fx.impl.store.Stats().events_noop - noops_before;
    if (noops != 0) st.SkipWithError("the store dropped events of the fold stream as unchanged");
    st.counters["workloads"] = static_cast<double>(fx.impl.store.Current().workload_count());
  }
}

// Applies the kDiffChanges distinct updates in batches of kFoldBatch.
template <class Impl>
void ApplyDiffUpdates(Fixture<Impl>& fx) {
  std::vector<Event> updates = DistinctUpdates(fx.ds.n, kDiffChanges, kDiffSeed);
  for (size_t i = 0; i < updates.size(); i += kFoldBatch) {
    fx.impl.Apply(updates.data() + i, std::min(kFoldBatch, updates.size() - i));
  }
}

// Returns an error message when the two snapshots do not differ by exactly
// kDiffChanges modified workloads.
std::string PrepareDiff(Fixture<KubefoldImpl>& fx) {
  if (!fx.diff_ready) {
    fx.impl.diff_from = fx.impl.store.Current();
    ApplyDiffUpdates(fx);
    fx.impl.diff_to = fx.impl.store.Current();
    fx.diff_ready = true;
  }
  auto r = state::Diff(fx.impl.diff_from, fx.impl.diff_to);
  if (!r.ok()) return "Diff failed: " + r.status().ToString();
  if (r->modified() != kDiffChanges || r->added() != 0 || r->removed() != 0) {
    return "diff has " + std::to_string(r->modified()) + " modified, " + std::to_string(r->added()) +
           " added, " + std::to_string(r->removed()) + " removed; want 1000 modified only";
  }
  // The pair is four batches apart: the change log must answer it.
  if (!state::internal::VisitDiffByLog(state::SnapshotAccess::Data(fx.impl.diff_from),
                                       state::SnapshotAccess::Data(fx.impl.diff_to), {},
                                       [](const state::Change&) { return true; })) {
    return "the change log does not cover the prepared pair";
  }
  return "";
}

// Streams through a buffer several times the size of the last-level cache.
void EvictCaches() {
  constexpr size_t kEvictBytes = size_t{256} << 20;
  static std::vector<uint64_t> buffer(kEvictBytes / sizeof(uint64_t), 1);
  uint64_t sum = 0;
  for (size_t i = 0; i < buffer.size(); i += 8) {
    buffer[i] += sum & 1;
    sum += buffer[i];
  }
  benchmark::DoNotOptimize(sum);
}

// Diff of the two prepared snapshots. DiffCold (kCold) is the same diff from
// a cold cache, as a query after a failover meets it: the snapshots were
// published minutes or hours earlier and their nodes are no longer in any
// cache. Before each (untimed) iteration the caches are evicted, at every N
// alike, so the figure compares the work a diff does (nodes visited, each a
// memory access) rather than how much of the map happens to fit in cache
// from the previous iteration.
template <bool kCold>
void BM_Diff_kubefold(benchmark::State& st) {
  auto& fx = Slot().Get<KubefoldImpl>(N(st));
  if (std::string err = PrepareDiff(fx); !err.empty()) {
    st.SkipWithError(err.c_str());
    return;
  }
  size_t changes = 0;
  for (auto _ : st) {
    if constexpr (kCold) {
      st.PauseTiming();
      EvictCaches();
      st.ResumeTiming();
    }
    auto r = state::Diff(fx.impl.diff_from, fx.impl.diff_to);
    changes = r->changes().size();
    benchmark::DoNotOptimize(r);
  }
  st.counters["changes"] = static_cast<double>(changes);
}

// The same diff answered by walking both tries, as a diff is answered when
// the change log does not cover the pair (older snapshots, composed views):
// the method Diff used before the change log, measured in the same run.
template <bool kCold>
void BM_DiffWalk_kubefold(benchmark::State& st) {
  auto& fx = Slot().Get<KubefoldImpl>(N(st));
  if (std::string err = PrepareDiff(fx); !err.empty()) {
    st.SkipWithError(err.c_str());
    return;
  }
  const auto* a = state::SnapshotAccess::Data(fx.impl.diff_from);
  const auto* b = state::SnapshotAccess::Data(fx.impl.diff_to);
  std::vector<state::Change> out;
  for (auto _ : st) {
    if constexpr (kCold) {
      st.PauseTiming();
      EvictCaches();
      st.ResumeTiming();
    }
    out.clear();
    state::internal::VisitDiffByWalk(a, b, {}, [&](const state::Change& c) {
      out.push_back(c);
      return true;
    });
    benchmark::DoNotOptimize(out.data());
  }
  st.counters["changes"] = static_cast<double>(out.size());
}

void BM_DiffVisit_kubefold(benchmark::State& st) {
  auto& fx = Slot().Get<KubefoldImpl>(N(st));
  if (std::string err = PrepareDiff(fx); !err.empty()) {
    st.SkipWithError(err.c_str());
    return;
  }
  size_t changes = 0;
  for (auto _ : st) {
    changes = 0;
    Status s = state::VisitDiff(fx.impl.diff_from, fx.impl.diff_to, {}, [&](const state::Change&) {
      ++changes;
      return true;
    });
    benchmark::DoNotOptimize(s);
  }
  st.counters["changes"] = static_cast<double>(changes);
}

void BM_Diff_deepcopy(benchmark::State& st) {
  auto& fx = Slot().Get<DeepCopyImpl>(N(st));
  if (!fx.diff_ready) {
    fx.impl.diff_from = fx.impl.map.Snapshot();
    ApplyDiffUpdates(fx);
    fx.impl.diff_to = fx.impl.map.Snapshot();
    fx.diff_ready = true;
  }
  std::vector<const std::string*> out;
  DeepCopyMap::DiffCounts check = DeepCopyMap::Diff(*fx.impl.diff_from, *fx.impl.diff_to, out);
  if (check.modified != kDiffChanges || check.added != 0 || check.removed != 0) {
    st.SkipWithError("deepcopy diff does not have exactly 1000 modified workloads");
    return;
  }
  for (auto _ : st) {
    out.clear();
    DeepCopyMap::DiffCounts d = DeepCopyMap::Diff(*fx.impl.diff_from, *fx.impl.diff_to, out);
    benchmark::DoNotOptimize(d);
  }
  st.counters["changes"] = static_cast<double>(out.size());
}

// Fresh-read latency: each iteration times kReadBlock lookups with one pair
// of clock reads; p50_ns / p99_ns are percentiles of the per-lookup average
// over those blocks; p99_unpreempted_ns leaves out the blocks during which
// the scheduler took the CPU away (preempted_blocks_pct says how many). With
// `with_writer`, a second thread applies batches of kFoldBatch updates as
// fast as it can for the whole run (writer_events_per_s).
template <class Impl>
void RunReads(benchmark::State& st, bool with_writer) {
  const size_t n = N(st);
  auto& fx = Slot().Get<Impl>(n);
  const auto& probes = fx.ds.probes;
  if (with_writer && fx.rw_pool.empty()) EventGen(n, kRwSeed, 100, 0).Next(kFoldChunk, fx.rw_pool);

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> written{0};
  std::thread writer;
  const auto writer_start = std::chrono::steady_clock::now();
  if (with_writer) {
    writer = std::thread([&] {
      size_t pos = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        if (pos + kFoldBatch > fx.rw_pool.size()) pos = 0;
        // A fresh generation each time, so no write is ever a no-op.
        for (size_t i = 0; i < kFoldBatch; ++i) fx.rw_pool[pos + i].object.summary.generation = ++fx.rw_generation;
        fx.impl.Apply(fx.rw_pool.data() + pos, kFoldBatch);
        pos += kFoldBatch;
        written.fetch_add(kFoldBatch, std::memory_order_relaxed);
      }
    });
  }

  // Per-lookup averages of every block, and of the blocks during which the
  // reader was not preempted (no involuntary context switch): on a 2-core
  // machine running a writer, the scheduler's time slices otherwise decide
  // the tail. Blocking on a lock is a voluntary switch and stays counted.
  std::vector<double> per_lookup_ns, unpreempted_ns;
  per_lookup_ns.reserve(size_t{1} << 18);
  unpreempted_ns.reserve(size_t{1} << 18);
  size_t i = 0, misses = 0;
  for (auto _ : st) {
    const long switches_before = InvoluntarySwitches();
    const auto t0 = std::chrono::steady_clock::now();
    for (size_t k = 0; k < kReadBlock; ++k) {
      int64_t g = fx.impl.ReadFresh(probes[i++ & (kProbes - 1)]);
      misses += g < 0;
      benchmark::DoNotOptimize(g);
    }
    const auto t1 = std::chrono::steady_clock::now();
    const double ns =
        static_cast<double>(std::chrono::duration_cast<std::chrono::nanoseconds>(t1 - t0).count()) / kReadBlock;
    per_lookup_ns.push_back(ns);
    if (InvoluntarySwitches() == switches_before) unpreempted_ns.push_back(ns);
  }

  if (with_writer) {
    stop.store(true, std::memory_order_relaxed);
    writer.join();
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - writer_start).count();
    st.counters["writer_events_per_s"] = static_cast<double>(written.load()) / secs;
  }
  if (misses != 0) st.SkipWithError("a lookup of an existing workload found nothing");
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations() * kReadBlock));
  st.counters["p50_ns"] = Percentile(per_lookup_ns, 0.50);
  st.counters["p99_ns"] = Percentile(per_lookup_ns, 0.99);
  st.counters["p99_unpreempted_ns"] = Percentile(unpreempted_ns, 0.99);
  st.counters["preempted_blocks_pct"] =
      per_lookup_ns.empty() ? 0.0
                            : 100.0 * static_cast<double>(per_lookup_ns.size() - unpreempted_ns.size()) /
                                  static_cast<double>(per_lookup_ns.size());
}

template <class Impl>
void BM_ReadIdle(benchmark::State& st) {
  RunReads<Impl>(st, false);
}
template <class Impl>
void BM_ReadUnderWrite(benchmark::State& st) {
  RunReads<Impl>(st, true);
}

// Heap in use less the store's free lists (freed tree objects kept for reuse).
double LiveHeap(const state::Store& store) {
  return static_cast<double>(HeapInUse()) - static_cast<double>(store.Stats().pool_free_bytes);
}

// Heap per workload: growth of the allocator's bytes in use while building the store (batches of
// kLoadBatch), minus the records' own payload (key + JSON), per workload. It
// includes whatever the store's writer keeps cached for reuse (free blocks
// are still the store's memory); stats_* give the store's exact object bytes.
//
// Then the unbatched history cost: blocks of kRetainedChanges single-upsert
// batches, a snapshot held after each, live heap growth per change (heap in
// use less the writer's free lists, which serve new nodes from blocks malloc
// already counts). Blocks are repeated (all snapshots still held) until the
// growth per change is steady, so the allocator's own caches do not flatter
// it either: bytes_retained_per_change is that steady figure; the first
// block's figure is reported as bytes_retained_per_change_first_block.
//
// With kZstd the records keep their objects compressed, as the operator's
// watchers hand them over by default (--compress-objects, object_codec.h):
// one dictionary per cluster, the first object of that cluster. "Payload"
// is then what a record stores of the object: key + frame (or the JSON
// when the frame would not be smaller).
template <bool kZstd>
void BM_Memory_kubefold(benchmark::State& st) {
  constexpr size_t kMaxBlocks = 64;
  const size_t n = N(st);
  Slot().Clear();
  const DataSet& plain = GetDataSet(n);
  std::unique_ptr<DataSet> zstd_ds;
  std::string frame;
  auto dictionary = [&](uint32_t idx) {
    // The first call per cluster registers its sample: object idx % kClusters.
    return state::ObjectDictionary::ForKind(ClusterName(idx), "apps", "Deployment",
                                            plain.objects[idx % kClusters].object_json);
  };
  auto stored_bytes = [&](const WorkloadObject& o) -> uint64_t {
    if (o.compress_with == nullptr) return PayloadBytes(o);
    o.compress_with->Compress(o.object_json, frame);
    return PayloadBytes(o) - o.object_json.size() + std::min(frame.size(), o.object_json.size());
  };
  if constexpr (kZstd) {
    zstd_ds = std::make_unique<DataSet>();
    zstd_ds->n = n;
    zstd_ds->objects = plain.objects;
    for (uint32_t i = 0; i < n; ++i) {
      zstd_ds->objects[i].compress_with = dictionary(i);
      zstd_ds->payload_bytes += stored_bytes(zstd_ds->objects[i]);
    }
  }
  const DataSet& ds = kZstd ? *zstd_ds : plain;

  for (auto _ : st) {
    const size_t before = HeapInUse();
    auto store = std::make_unique<state::Store>(BenchStoreOptions(1));
    LoadStore(*store, ds);
    store->Collect();
    const size_t loaded = HeapInUse();
    const state::StoreStats s0 = store->Stats();

    const double nd = static_cast<double>(n);
    const double heap = static_cast<double>(loaded - before);
    const double payload = static_cast<double>(ds.payload_bytes);
    const double stats_bytes =
        static_cast<double>(s0.node_bytes_current + s0.record_bytes_current + s0.snapshot_bytes_live);
    st.counters["heap_bytes_per_workload"] = heap / nd;
    st.counters["payload_bytes_per_workload"] = payload / nd;
    st.counters["bytes_per_workload_overhead"] = (heap - payload) / nd;
    st.counters["stats_node_bytes_per_workload"] = static_cast<double>(s0.node_bytes_current) / nd;
    st.counters["stats_record_header_bytes"] = (static_cast<double>(s0.record_bytes_current) - payload) / nd;
    st.counters["stats_overhead_per_workload"] = (stats_bytes - payload) / nd;
    st.counters["malloc_and_cache_bytes_per_workload"] = (heap - stats_bytes) / nd;
    st.counters["pool_free_bytes_per_workload"] = static_cast<double>(s0.pool_free_bytes) / nd;

    // Unbatched changes, every snapshot held.
    std::vector<state::Snapshot> held;
    held.reserve(kMaxBlocks * kRetainedChanges);
    std::vector<uint64_t> stored_payload(n);
    for (size_t i = 0; i < n; ++i) stored_payload[i] = stored_bytes(ds.objects[i]);
    std::mt19937_64 rng(kDiffSeed + 1);
    uint32_t version = 2000000;
    const state::StoreStats s_start = store->Stats();
    double first = 0, growth = 0, old_payload = 0, prev = 0;
    size_t blocks = 0;
    while (blocks < kMaxBlocks) {
      std::vector<Event> updates;
      updates.reserve(kRetainedChanges);
      double block_old_payload = 0;
      for (size_t k = 0; k < kRetainedChanges; ++k) {
        uint32_t idx = static_cast<uint32_t>(rng() % n);
        updates.push_back(MakeUpsert(idx, ++version));
        if constexpr (kZstd) updates.back().object.compress_with = dictionary(idx);
        block_old_payload += static_cast<double>(stored_payload[idx]);
        stored_payload[idx] = stored_bytes(updates.back().object);
      }
      // The writer's free lists hand out blocks freed while loading, which
      // malloc already counts: without taking them out, the first blocks
      // look cheaper than what a change really costs.
      const double b0 = LiveHeap(*store);
      for (const Event& e : updates) {
        state::Batch b;
        if (Status s = b.Upsert(ClusterName(e.idx), NsName(e.idx), e.object); !s.ok()) Die(s.ToString());
        auto r = store->Apply(std::move(b));
        if (!r.ok() || !r->published) Die("a single update was not published");
        held.push_back(store->Current());
      }
      const double b1 = LiveHeap(*store);
      ++blocks;
      growth = (b1 - b0) / kRetainedChanges;
      old_payload = block_old_payload / kRetainedChanges;
      if (blocks == 1) first = growth;
      if (blocks >= 3 && std::abs(growth - prev) <= 0.03 * growth) break;  // steady
      prev = growth;
    }
    const state::StoreStats s_end = store->Stats();
    const double changes = static_cast<double>(held.size());
    st.counters["bytes_retained_per_change"] = growth;
    st.counters["bytes_retained_per_change_excl_old_payload"] = growth - old_payload;
    st.counters["bytes_retained_per_change_first_block"] = first;
    st.counters["retained_blocks_until_steady"] = static_cast<double>(blocks);
    st.counters["stats_retained_bytes_per_change"] =
        static_cast<double>(s_end.retained_bytes - s_start.retained_bytes) / changes;
    st.counters["stats_snapshot_header_bytes_per_change"] =
        static_cast<double>(s_end.snapshot_bytes_live - s_start.snapshot_bytes_live) / changes;

    held.clear();
    store.reset();
  }
}

template <class Impl>
void BM_Memory_baseline(benchmark::State& st) {
  const size_t n = N(st);
  Slot().Clear();
  const DataSet& ds = GetDataSet(n);
  for (auto _ : st) {
    const size_t before = HeapInUse();
    auto impl = std::make_unique<Impl>();
    impl->Load(ds);
    const size_t loaded = HeapInUse();
    const double nd = static_cast<double>(n);
    const double heap = static_cast<double>(loaded - before);
    st.counters["heap_bytes_per_workload"] = heap / nd;
    st.counters["payload_bytes_per_workload"] = static_cast<double>(ds.payload_bytes) / nd;
    st.counters["bytes_per_workload_overhead"] = (heap - static_cast<double>(ds.payload_bytes)) / nd;
    impl.reset();
  }
}

// ---------------------------------------------------------- registration ---

using Fn = void (*)(benchmark::State&);

benchmark::internal::Benchmark* Register(const std::string& op, const char* impl, Fn fn, size_t n) {
  std::string name = "BM_" + op + "_" + impl;
  return benchmark::RegisterBenchmark(name.c_str(), fn)->Arg(static_cast<int64_t>(n));
}

// Cheap, noisy operations: medians of 5 (the JSON then carries *_median).
void Fast(benchmark::internal::Benchmark* b) { b->Repetitions(5)->ReportAggregatesOnly(true); }
// Costly ones: medians of 3.
void Medium(benchmark::internal::Benchmark* b) { b->Repetitions(3)->ReportAggregatesOnly(true); }

// Per N, per implementation, in the order that lets one fixture serve all
// its benchmarks (Fold last: it inserts and deletes).
void RegisterAll() {
  for (size_t n : {size_t{10000}, size_t{100000}, size_t{1000000}}) {
    const bool big = n >= 1000000;

    Fast(Register("Snapshot", "kubefold", BM_Snapshot_kubefold, n));
    Fast(Register("Lookup", "kubefold", BM_Lookup<KubefoldImpl>, n));
    Medium(Register("ReadIdle", "kubefold", BM_ReadIdle<KubefoldImpl>, n)->UseRealTime());
    Medium(Register("ReadUnderWrite", "kubefold", BM_ReadUnderWrite<KubefoldImpl>, n)->UseRealTime());
    Fast(Register("Diff", "kubefold", BM_Diff_kubefold<false>, n)->Unit(benchmark::kMicrosecond));
    Fast(Register("DiffVisit", "kubefold", BM_DiffVisit_kubefold, n)->Unit(benchmark::kMicrosecond));
    Fast(Register("DiffCold", "kubefold", BM_Diff_kubefold<true>, n)->Unit(benchmark::kMicrosecond)->Iterations(50));
    Fast(Register("DiffWalk", "kubefold", BM_DiffWalk_kubefold<false>, n)->Unit(benchmark::kMicrosecond));
    Fast(Register("DiffWalkCold", "kubefold", BM_DiffWalk_kubefold<true>, n)->Unit(benchmark::kMicrosecond)->Iterations(50));
    Medium(Register("Fold", "kubefold", BM_Fold<KubefoldImpl>, n)->Unit(benchmark::kMicrosecond));
    Register("Memory", "kubefold", BM_Memory_kubefold<false>, n)->Iterations(1);
    Register("Memory", "kubefold_zstd", BM_Memory_kubefold<true>, n)->Iterations(1);

    auto* snap_deep = Register("Snapshot", "deepcopy", BM_Snapshot_deepcopy, n)->Unit(benchmark::kMillisecond);
    if (big) snap_deep->Iterations(2);
    Medium(snap_deep);
    Fast(Register("Lookup", "deepcopy", BM_Lookup<DeepCopyImpl>, n));
    auto* diff_deep = Register("Diff", "deepcopy", BM_Diff_deepcopy, n)->Unit(benchmark::kMicrosecond);
    if (big) diff_deep->Iterations(3);
    Medium(diff_deep);
    Medium(Register("Fold", "deepcopy", BM_Fold<DeepCopyImpl>, n)->Unit(benchmark::kMicrosecond));
    Register("Memory", "deepcopy", BM_Memory_baseline<DeepCopyImpl>, n)->Iterations(1);

    auto* snap_sharded = Register("Snapshot", "sharded", BM_Snapshot_sharded, n)->Unit(benchmark::kMillisecond);
    if (big) snap_sharded->Iterations(2);
    Medium(snap_sharded);
    Fast(Register("Lookup", "sharded", BM_Lookup<ShardedImpl>, n));
    Medium(Register("ReadIdle", "sharded", BM_ReadIdle<ShardedImpl>, n)->UseRealTime());
    Medium(Register("ReadUnderWrite", "sharded", BM_ReadUnderWrite<ShardedImpl>, n)->UseRealTime());
    Medium(Register("Fold", "sharded", BM_Fold<ShardedImpl>, n)->Unit(benchmark::kMicrosecond));
    Register("Memory", "sharded", BM_Memory_baseline<ShardedImpl>, n)->Iterations(1);

    Fast(Register("Snapshot", "cowatomic", BM_Snapshot_cowatomic, n));
    Fast(Register("Lookup", "cowatomic", BM_Lookup<CowAtomicImpl>, n));
    auto* fold_cow = Register("Fold", "cowatomic", BM_Fold<CowAtomicImpl>, n)->Unit(benchmark::kMicrosecond);
    if (big) {
      fold_cow->Iterations(3);
    } else {
      Medium(fold_cow);
    }

    Fast(Register("Lookup", "tbb", BM_Lookup<TbbImpl>, n));
    Medium(Register("Fold", "tbb", BM_Fold<TbbImpl>, n)->Unit(benchmark::kMicrosecond));
  }
}

}  // namespace
}  // namespace kubefold::bench

int main(int argc, char** argv) {
  using namespace kubefold::bench;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  {
    size_t json = 0;
    for (uint32_t i = 0; i < 1000; ++i) json += MakeObject(i * 997, i % 7).object_json.size();
    benchmark::AddCustomContext("object_json_bytes_avg", std::to_string(json / 1000));
    benchmark::AddCustomContext("clusters_x_namespaces", std::to_string(kClusters) + "x" + std::to_string(kNamespaces));
    benchmark::AddCustomContext("fold_batch", std::to_string(kFoldBatch));
    benchmark::AddCustomContext("store_history", "keep_last=16, keep_for=0 (Memory: keep_last=1)");
  }
  RegisterAll();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  Slot().Clear();
  return 0;
}
