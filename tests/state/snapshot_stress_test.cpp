#define BOOST_TEST_MODULE snapshot_stress_test
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "state/diff.h"
#include "state/internal/diff_paths.h"
#include "state/store.h"
#include "tests/state/test_util.h"

// One writer folds at full speed while readers check invariants that hold
// only if a snapshot is never torn:
//  * every batch rewrites ALL workloads of one cluster with the same
//    generation, so inside one cluster of one snapshot every record carries
//    the same generation;
//  * each such batch advances that cluster's component by exactly
//    kPerCluster, so the vector and the content must agree:
//    vector[c] == kPerCluster * generation(c) (+ removal/re-add events);
//  * seqs seen by one reader never go backwards; retained and composed
//    snapshots obey the same invariants; diffs change whole clusters.

using namespace kubefold::state;
using kubefold::state::testing::Deployment;

namespace {

constexpr int kClusters = 4;
constexpr int kNamespaces = 4;
constexpr int kPerNamespace = 40;
constexpr int kPerCluster = kNamespaces * kPerNamespace;

std::string ClusterName(int c) { return "c" + std::to_string(c); }
std::string NsName(int n) { return "ns-" + std::to_string(n); }

std::string Json(uint64_t gen) { return "{\"gen\":" + std::to_string(gen) + "}"; }

uint64_t GenOf(std::string_view json) {
  auto p = json.find(':');
  return std::stoull(std::string(json.substr(p + 1, json.size() - p - 2)));
}

struct Failure {
  std::atomic<bool> failed{false};
  std::string what;  // written once, by the first failing thread
  void Set(std::string w) {
    bool expected = false;
    if (failed.compare_exchange_strong(expected, true)) what = std::move(w);
  }
};

// Checks one snapshot's invariants; records the first violation in `fail`.
void CheckSnapshot(const Snapshot& s, Failure& fail) {
  for (int c = 0; c < kClusters; ++c) {
    std::string name = ClusterName(c);
    uint64_t component = s.vector().Get(name);
    auto info = s.Cluster(name);
    if (!info) {
      // Only possible after a removal, which advances the component by one.
      if (component % kPerCluster != 1 && component != 0) {
        fail.Set("cluster " + name + " absent with component " + std::to_string(component));
      }
      continue;
    }
    uint64_t gen = UINT64_MAX;
    uint64_t seen = 0;
    s.ForEachWorkload(name, [&](const WorkloadRef& w) {
      uint64_t g = GenOf(w.record->object_json());
      if (gen == UINT64_MAX) gen = g;
      if (g != gen) {
        fail.Set("torn snapshot " + std::to_string(s.seq()) + ": cluster " + name + " holds generations " +
                 std::to_string(gen) + " and " + std::to_string(g));
        return false;
      }
      ++seen;
      return true;
    });
    if (seen != kPerCluster || info->workloads != kPerCluster) {
      fail.Set("cluster " + name + " has " + std::to_string(seen) + " workloads (count says " +
               std::to_string(info->workloads) + ")");
    }
    // After the cluster's one removal the component carries a +1: see the writer.
    if (component != gen * kPerCluster && component != gen * kPerCluster + 1) {
      fail.Set("snapshot " + std::to_string(s.seq()) + ": cluster " + name + " at component " +
               std::to_string(component) + " but generation " + std::to_string(gen));
    }
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(readers_never_see_a_torn_snapshot_while_the_writer_folds_at_full_speed) {
  StoreOptions opts;
  opts.history.keep_last = 64;
  opts.history.keep_for = std::chrono::milliseconds(50);
  Store store(opts);

  // Generation 1 everywhere.
  {
    Batch b;
    for (int c = 0; c < kClusters; ++c)
      for (int n = 0; n < kNamespaces; ++n)
        for (int w = 0; w < kPerNamespace; ++w)
          BOOST_TEST_REQUIRE(b.Upsert(ClusterName(c), NsName(n), Deployment("w" + std::to_string(w), Json(1))).ok());
    BOOST_TEST_REQUIRE(store.Apply(std::move(b)).ok());
  }

  Failure fail;
  std::atomic<uint64_t> log_diffs{0};  // diffs the change log answered
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> batches{0};
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);

  std::thread writer([&] {
    std::mt19937_64 rng(1);
    std::vector<uint64_t> gen(kClusters, 1);
    std::vector<bool> removed_once(kClusters, false);
    while (!stop.load(std::memory_order_relaxed)) {
      int c = static_cast<int>(rng() % kClusters);
      Batch b;
      ++gen[c];
      if (rng() % 50 == 0 && !removed_once[c]) {
        // Remove the cluster: one event, so its component becomes
        // gen*kPerCluster + 1; the next batch on it re-creates every workload
        // at generation gen+1, giving (gen+1)*kPerCluster + 1. Once per
        // cluster keeps that "+1" the only offset the readers must accept.
        removed_once[c] = true;
        --gen[c];
        BOOST_REQUIRE(b.RemoveCluster(ClusterName(c)).ok());
      } else {
        for (int n = 0; n < kNamespaces; ++n)
          for (int w = 0; w < kPerNamespace; ++w)
            BOOST_REQUIRE(b.Upsert(ClusterName(c), NsName(n), Deployment("w" + std::to_string(w), Json(gen[c]))).ok());
      }
      auto r = store.Apply(std::move(b));
      if (!r.ok()) {
        fail.Set("apply failed: " + r.status().ToString());
        return;
      }
      batches.fetch_add(1, std::memory_order_relaxed);
      if (std::chrono::steady_clock::now() > deadline) stop.store(true);
    }
  });

  auto reader = [&](int id) {
    std::mt19937_64 rng(100 + id);
    uint64_t last_seq = 0;
    std::vector<Snapshot> held;  // keep some alive across many writer batches
    while (!stop.load(std::memory_order_relaxed) && !fail.failed.load()) {
      Snapshot s = store.Current();
      if (s.seq() < last_seq) fail.Set("seq went backwards: " + std::to_string(s.seq()) + " after " + std::to_string(last_seq));
      last_seq = s.seq();
      CheckSnapshot(s, fail);
      switch (rng() % 4) {
        case 0: {  // a retained one
          auto list = store.ListRetained();
          if (list.empty()) break;
          auto r = store.Get(list[rng() % list.size()].seq);
          if (r.ok()) CheckSnapshot(*r, fail);  // may be dropped meanwhile: kGone is fine
          break;
        }
        case 1: {  // a composed view of some retained vector
          auto list = store.ListRetained();
          if (list.empty()) break;
          auto v = store.ComposeAt(list[rng() % list.size()].vector);
          if (v.ok()) CheckSnapshot(*v, fail);
          break;
        }
        case 2: {  // diff against an older held snapshot: whole clusters only
          if (held.empty()) break;
          std::vector<int> per_cluster(kClusters, 0);
          bool ok = VisitDiff(held.front(), s, {}, [&](const Change& ch) {
                      per_cluster[ch.cluster[1] - '0']++;
                      return true;
                    }).ok();
          if (!ok) fail.Set("diff failed");
          for (int c = 0; c < kClusters; ++c) {
            if (per_cluster[c] != 0 && per_cluster[c] != kPerCluster) {
              fail.Set("diff changed " + std::to_string(per_cluster[c]) + " workloads of c" + std::to_string(c));
            }
          }
          // The change log read while the writer appends to it: the same
          // answer as VisitDiff's, when it covers the pair.
          std::vector<int> logged(kClusters, 0);
          if (internal::VisitDiffByLog(SnapshotAccess::Data(held.front()), SnapshotAccess::Data(s), {},
                                       [&](const Change& ch) {
                                         logged[ch.cluster[1] - '0']++;
                                         return true;
                                       })) {
            log_diffs.fetch_add(1, std::memory_order_relaxed);
            if (logged != per_cluster) fail.Set("the change log's diff differs from VisitDiff's");
          }
          break;
        }
        default:
          break;
      }
      held.push_back(s);
      if (held.size() > 8) held.erase(held.begin());
    }
  };

  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) readers.emplace_back(reader, i);
  writer.join();
  stop.store(true);
  for (auto& t : readers) t.join();

  BOOST_TEST(!fail.failed.load(), fail.what);
  BOOST_TEST(log_diffs.load() > 0u, "no diff was answered from the change log");
  BOOST_TEST(batches.load() > 50u);  // the writer really ran
  store.Collect();
  StoreStats st = store.Stats();
  BOOST_TEST_MESSAGE("batches " << batches.load() << ", seq " << st.seq << ", reads " << st.reads_current
                                << "/" << st.reads_retained << "/" << st.reads_composed);
  BOOST_TEST(st.reads_current > 0u);
}

BOOST_AUTO_TEST_CASE(handles_released_on_many_threads_are_freed_by_the_writer_only) {
  // Readers copy and drop handles concurrently (atomic refcounts) while the
  // writer publishes and drains; ASan/TSan catch a double free or a race on
  // the writer-only node counts.
  StoreOptions opts;
  opts.history.keep_last = 2;
  opts.history.keep_for = std::chrono::milliseconds(0);
  Store store(opts);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int i = 0; i < 3; ++i) {
    readers.emplace_back([&] {
      while (!stop.load(std::memory_order_relaxed)) {
        Snapshot a = store.Current();
        Snapshot b = a;
        Snapshot c = std::move(b);
        (void)c.workload_count();
      }
    });
  }
  for (int i = 0; i < 3000; ++i) {
    Batch b;
    BOOST_REQUIRE(b.Upsert("c0", "ns", Deployment("w" + std::to_string(i % 50), Json(static_cast<uint64_t>(i)))).ok());
    BOOST_REQUIRE(store.Apply(std::move(b)).ok());
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  store.Collect();
  StoreStats st = store.Stats();
  BOOST_TEST(st.records_live == 50u + 1u);  // 50 current + the one the retained older snapshot holds
  BOOST_TEST(st.retained_snapshots == 2u);
}
