#include "tests/bench/baselines.h"

#include <functional>

namespace kubefold::bench {

std::string FlatKey(std::string_view cluster, std::string_view ns, state::WorkloadKeyView key) {
  std::string k;
  k.reserve(cluster.size() + ns.size() + key.group.size() + key.kind.size() + key.name.size() + 4);
  k.append(cluster).append(1, '/').append(ns).append(1, '/');
  k.append(key.group).append(1, '/').append(key.kind).append(1, '/').append(key.name);
  return k;
}

std::string InnerKey(state::WorkloadKeyView key) {
  std::string k;
  k.reserve(key.group.size() + key.kind.size() + key.name.size() + 2);
  k.append(key.group).append(1, '/').append(key.kind).append(1, '/').append(key.name);
  return k;
}

// ---------------------------------------------------------------- deepcopy ---

std::unique_ptr<DeepCopyMap::Clusters> DeepCopyMap::Snapshot() const {
  std::lock_guard<std::mutex> lock(mu_);
  return std::make_unique<Clusters>(map_);
}

int64_t DeepCopyMap::Generation(const std::string& cluster, const std::string& ns, const std::string& inner) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto c = map_.find(cluster);
  if (c == map_.end()) return -2;
  auto n = c->second.find(ns);
  if (n == c->second.end()) return -2;
  auto w = n->second.find(inner);
  return w == n->second.end() ? -2 : w->second.summary.generation;
}

DeepCopyMap::DiffCounts DeepCopyMap::Diff(const Clusters& a, const Clusters& b,
                                          std::vector<const std::string*>& out) {
  DiffCounts d;
  static const Namespaces kNoNamespaces;
  static const Workloads kNoWorkloads;
  // Pass 1: everything in b is added or (maybe) modified.
  for (const auto& [cluster, bns] : b) {
    auto ac = a.find(cluster);
    const Namespaces& ans = ac == a.end() ? kNoNamespaces : ac->second;
    for (const auto& [ns, bw] : bns) {
      auto an = ans.find(ns);
      const Workloads& aw = an == ans.end() ? kNoWorkloads : an->second;
      for (const auto& [key, value] : bw) {
        auto it = aw.find(key);
        if (it == aw.end()) {
          ++d.added;
          out.push_back(&key);
        } else if (it->second.summary != value.summary || it->second.json != value.json) {
          ++d.modified;
          out.push_back(&key);
        }
      }
    }
  }
  // Pass 2: what a has and b lacks was removed.
  for (const auto& [cluster, ans] : a) {
    auto bc = b.find(cluster);
    const Namespaces& bns = bc == b.end() ? kNoNamespaces : bc->second;
    for (const auto& [ns, aw] : ans) {
      auto bn = bns.find(ns);
      const Workloads& bw = bn == bns.end() ? kNoWorkloads : bn->second;
      for (const auto& [key, value] : aw) {
        if (!bw.contains(key)) {
          ++d.removed;
          out.push_back(&key);
        }
      }
    }
  }
  return d;
}

// ----------------------------------------------------------------- sharded ---

size_t ShardedMap::ShardOf(const std::string& key) {
  // The unordered_map rehashes with std::hash; mix so shard and bucket bits
  // are not the same bits.
  size_t h = std::hash<std::string>{}(key);
  return (h * 0x9e3779b97f4a7c15ULL) >> 58;  // top 6 bits: 64 shards
}

void ShardedMap::Upsert(const std::string& key, Value value) {
  Locked& s = shards_[ShardOf(key)];
  std::unique_lock<std::shared_mutex> lock(s.mu);
  s.map.insert_or_assign(key, std::move(value));
}

void ShardedMap::Erase(const std::string& key) {
  Locked& s = shards_[ShardOf(key)];
  std::unique_lock<std::shared_mutex> lock(s.mu);
  s.map.erase(key);
}

int64_t ShardedMap::Generation(const std::string& key) const {
  const Locked& s = shards_[ShardOf(key)];
  std::shared_lock<std::shared_mutex> lock(s.mu);
  auto it = s.map.find(key);
  return it == s.map.end() ? -2 : it->second.summary.generation;
}

std::unique_ptr<std::array<ShardedMap::Shard, ShardedMap::kShards>> ShardedMap::Snapshot() const {
  std::array<std::shared_lock<std::shared_mutex>, kShards> locks;
  for (size_t i = 0; i < kShards; ++i) locks[i] = std::shared_lock<std::shared_mutex>(shards_[i].mu);
  auto out = std::make_unique<std::array<Shard, kShards>>();
  for (size_t i = 0; i < kShards; ++i) (*out)[i] = shards_[i].map;
  return out;
}

// --------------------------------------------------------------- cowatomic ---

int64_t CowAtomicMap::Generation(const std::string& key) const {
  std::shared_ptr<const Map> m = current_.load(std::memory_order_acquire);
  auto it = m->find(key);
  return it == m->end() ? -2 : it->second->summary.generation;
}

// --------------------------------------------------------------------- tbb ---

void TbbMap::Upsert(const std::string& key, Value value) {
  tbb::concurrent_hash_map<std::string, Value>::accessor a;
  map_.insert(a, key);
  a->second = std::move(value);
}

void TbbMap::Erase(const std::string& key) { map_.erase(key); }

int64_t TbbMap::Generation(const std::string& key) const {
  tbb::concurrent_hash_map<std::string, Value>::const_accessor a;
  if (!map_.find(a, key)) return -2;
  return a->second.summary.generation;
}

}  // namespace kubefold::bench
