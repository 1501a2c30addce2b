// Baselines for state_bench: the maps a team would write instead of
// state::Store, each holding the same payload (object JSON + summary).
//
//   DeepCopyMap    one mutex around nested unordered_maps
//                  (cluster -> namespace -> "group/kind/name"); a snapshot is
//                  a deep copy taken under the mutex.
//   ShardedMap     64 shards, each a shared_mutex around an unordered_map on
//                  the flat key; a snapshot locks every shard (shared) and
//                  copies them all.
//   CowAtomicMap   one flat unordered_map of shared_ptr<const Value>, copied
//                  whole by every write batch and published through
//                  std::atomic<std::shared_ptr>; a snapshot is an atomic load.
//   TbbMap         tbb::concurrent_hash_map on the flat key; no snapshots.
//
// Thread-safety: DeepCopyMap, ShardedMap and TbbMap may be read and written
// from any thread. CowAtomicMap has one writer (WriteBatch) and any number of
// readers. None of them is meant for production: they exist to be measured.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <tbb/concurrent_hash_map.h>

#include "state/record.h"

namespace kubefold::bench {

// What every baseline stores per workload: the same payload as a Record.
struct Value {
  std::string json;
  state::WorkloadSummary summary;
};

// "cluster/ns/group/kind/name": the key of the flat baselines.
std::string FlatKey(std::string_view cluster, std::string_view ns, state::WorkloadKeyView key);
// "group/kind/name": the innermost key of DeepCopyMap.
std::string InnerKey(state::WorkloadKeyView key);

// ---------------------------------------------------------------- deepcopy ---

class DeepCopyMap {
 public:
  using Workloads = std::unordered_map<std::string, Value>;  // by InnerKey
  using Namespaces = std::unordered_map<std::string, Workloads>;
  using Clusters = std::unordered_map<std::string, Namespaces>;

  // Runs f(Clusters&) under the mutex: one write batch.
  template <class F>
  void Write(F&& f) {
    std::lock_guard<std::mutex> lock(mu_);
    f(map_);
  }

  // A deep copy of the whole map, taken under the mutex. O(N), allocates
  // about three times per workload.
  std::unique_ptr<Clusters> Snapshot() const;

  // The generation of one workload, or -2 when absent. O(1) under the mutex.
  int64_t Generation(const std::string& cluster, const std::string& ns, const std::string& inner) const;

  // Changes between two snapshots by full scan: O(N). Appends the modified,
  // added and removed entries' inner keys to `out` and returns their count.
  struct DiffCounts {
    size_t added = 0, removed = 0, modified = 0;
  };
  static DiffCounts Diff(const Clusters& a, const Clusters& b, std::vector<const std::string*>& out);

 private:
  mutable std::mutex mu_;
  Clusters map_;  // Guarded by mu_.
};

// ----------------------------------------------------------------- sharded ---

class ShardedMap {
 public:
  static constexpr size_t kShards = 64;
  using Shard = std::unordered_map<std::string, Value>;

  void Upsert(const std::string& key, Value value);
  void Erase(const std::string& key);
  // The generation of one workload, or -2 when absent. Takes one shared lock.
  int64_t Generation(const std::string& key) const;

  // Every shard locked (shared) at once for a consistent cut, then copied.
  std::unique_ptr<std::array<Shard, kShards>> Snapshot() const;

 private:
  struct alignas(64) Locked {
    mutable std::shared_mutex mu;
    Shard map;  // Guarded by mu.
  };
  static size_t ShardOf(const std::string& key);
  std::array<Locked, kShards> shards_;
};

// --------------------------------------------------------------- cowatomic ---

class CowAtomicMap {
 public:
  using Map = std::unordered_map<std::string, std::shared_ptr<const Value>>;

  CowAtomicMap() : current_(std::make_shared<const Map>()) {}

  // Writer only: copies the whole current map, lets f(Map&) change the copy
  // and publishes it. O(N) per batch, whatever its size.
  template <class F>
  void WriteBatch(F&& f) {
    auto next = std::make_shared<Map>(*current_.load(std::memory_order_acquire));
    f(*next);
    current_.store(std::shared_ptr<const Map>(std::move(next)), std::memory_order_release);
  }
  // Writer only: publishes `map` as is (initial load).
  void Reset(Map map) { current_.store(std::make_shared<const Map>(std::move(map))); }

  // O(1): one atomic load.
  std::shared_ptr<const Map> Snapshot() const { return current_.load(std::memory_order_acquire); }

  // The generation of one workload, or -2 when absent.
  int64_t Generation(const std::string& key) const;

 private:
  std::atomic<std::shared_ptr<const Map>> current_;
};

// --------------------------------------------------------------------- tbb ---

class TbbMap {
 public:
  void Upsert(const std::string& key, Value value);
  void Erase(const std::string& key);
  int64_t Generation(const std::string& key) const;
  size_t size() const { return map_.size(); }

 private:
  tbb::concurrent_hash_map<std::string, Value> map_;
};

}  // namespace kubefold::bench
