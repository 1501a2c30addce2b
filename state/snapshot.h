// Snapshot: one immutable, consistent version of a Store's
// cluster -> namespace -> workload map.
//
// A Snapshot is a handle (like a shared pointer): copying it is O(1) and
// takes a reference; the version it names never changes while any handle to
// it lives, so iterating it is consistent by construction. Pointers and
// string_views it hands out (records, names) stay valid while a handle to the
// same version lives.
//
// Every published snapshot contains, for each cluster c, exactly the first
// vector()[c] events folded from c. A composed view (Store::ComposeAt) joins
// cluster subtrees of several retained snapshots; composed() is then true and
// seq() is 0.
//
// Iteration order is stable: clusters by name; namespaces and workloads in
// the trie's canonical order, which depends on the content alone.
//
// Thread-safety: a Snapshot's const methods may be called from any number of
// threads at once. Dropping the last handle never frees tree memory on the
// calling thread: the store's writer frees it later.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "state/function_ref.h"
#include "state/record.h"
#include "state/version_vector.h"

namespace kubefold::state {

using TimePoint = std::chrono::system_clock::time_point;

namespace internal {
struct SnapshotData;
}

struct ClusterInfo {
  std::string_view name;
  uint64_t counter = 0;  // this cluster's vector component
  uint64_t namespaces = 0;
  uint64_t workloads = 0;
};

struct NamespaceInfo {
  std::string_view cluster;
  std::string_view name;
  uint64_t workloads = 0;
};

struct WorkloadRef {
  std::string_view cluster;
  std::string_view ns;
  const Record* record = nullptr;  // never null in a visit
};

class Snapshot {
 public:
  Snapshot() = default;  // invalid: valid() is false
  Snapshot(const Snapshot& other);
  Snapshot(Snapshot&& other) noexcept : d_(other.d_) { other.d_ = nullptr; }
  Snapshot& operator=(const Snapshot& other);
  Snapshot& operator=(Snapshot&& other) noexcept;
  ~Snapshot();

  bool valid() const { return d_ != nullptr; }

  // REQUIRES for everything below: valid().
  uint64_t seq() const;  // 0 for a composed view
  bool composed() const;
  TimePoint time() const;
  const VersionVector& vector() const;
  uint64_t store_id() const;
  uint64_t workload_count() const;
  size_t cluster_count() const;  // clusters present (removed ones are absent)

  // The record, or nullptr. O(log #clusters + depth); no allocation.
  const Record* Get(std::string_view cluster, std::string_view ns, WorkloadKeyView key) const;

  // Counts; absent cluster or namespace counts as empty. O(log #clusters) /
  // O(depth).
  std::optional<ClusterInfo> Cluster(std::string_view cluster) const;
  uint64_t CountWorkloads(std::string_view cluster) const;
  uint64_t CountWorkloads(std::string_view cluster, std::string_view ns) const;

  // Visitors: call f for each item in stable order until f returns false.
  // Return false if stopped early. No allocation.
  bool ForEachCluster(FunctionRef<bool(const ClusterInfo&)> f) const;
  bool ForEachNamespace(std::string_view cluster, FunctionRef<bool(const NamespaceInfo&)> f) const;
  bool ForEachWorkload(FunctionRef<bool(const WorkloadRef&)> f) const;
  bool ForEachWorkload(std::string_view cluster, FunctionRef<bool(const WorkloadRef&)> f) const;
  bool ForEachWorkload(std::string_view cluster, std::string_view ns,
                       FunctionRef<bool(const WorkloadRef&)> f) const;

  // Same version (same data), O(1).
  friend bool operator==(const Snapshot& a, const Snapshot& b) { return a.d_ == b.d_; }

 private:
  friend class Store;
  friend struct SnapshotAccess;
  explicit Snapshot(internal::SnapshotData* adopt) : d_(adopt) {}
  internal::SnapshotData* d_ = nullptr;
};

}  // namespace kubefold::state
