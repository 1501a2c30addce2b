// VersionVector: one counter per member cluster, identifying a cut of the
// clusters' event streams ("for each cluster c, the state after its first
// V[c] events").
//
// A component that is absent counts as 0, so {"a":0} == {}. Comparison is
// component-wise; Merge takes the component-wise maximum.
//
// Representation: the sorted cluster names live in an immutable list shared
// between vectors (all snapshots of one store share it until a cluster is
// added), and each vector owns only its counters: 8 bytes per cluster.
//
// Thread-safety: a VersionVector is a value. Const methods may be called from
// any number of threads at once; mutation needs exclusive access to that
// object (the shared name list itself is never mutated).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "state/status.h"

namespace kubefold::state {

enum class Ordering { kEqual, kLess, kGreater, kConcurrent };

class VersionVector {
 public:
  using Names = std::vector<std::string>;

  VersionVector() = default;
  // Builds from (name, counter) pairs in any order. REQUIRES: names unique.
  VersionVector(std::initializer_list<std::pair<std::string, uint64_t>> init);

  // Shares `names` (sorted, unique). REQUIRES: counters.size() == names->size().
  VersionVector(std::shared_ptr<const Names> names, std::vector<uint64_t> counters);

  // The counter of `cluster`; 0 when absent. O(log n), no allocation.
  uint64_t Get(std::string_view cluster) const;

  // Sets one component. O(log n) when `cluster` is present; O(n) when it is
  // new (the shared name list is immutable, so a new one is made).
  void Set(std::string_view cluster, uint64_t counter);

  // Component-wise comparison; absent components count as 0. O(n + m).
  Ordering Compare(const VersionVector& other) const;
  bool LessOrEqual(const VersionVector& other) const {
    Ordering o = Compare(other);
    return o == Ordering::kEqual || o == Ordering::kLess;
  }
  bool Concurrent(const VersionVector& other) const { return Compare(other) == Ordering::kConcurrent; }
  friend bool operator==(const VersionVector& a, const VersionVector& b) {
    return a.Compare(b) == Ordering::kEqual;
  }
  friend bool operator<=(const VersionVector& a, const VersionVector& b) { return a.LessOrEqual(b); }
  friend bool operator<(const VersionVector& a, const VersionVector& b) {
    return a.Compare(b) == Ordering::kLess;
  }

  // Component-wise maximum of *this and other, into *this. O(n + m).
  void Merge(const VersionVector& other);

  // Number of stored components (including any stored zeros).
  size_t size() const { return counters_.size(); }
  bool empty() const { return counters_.empty(); }
  std::string_view name(size_t i) const { return (*names_)[i]; }
  uint64_t counter(size_t i) const { return counters_[i]; }
  const std::shared_ptr<const Names>& shared_names() const { return names_; }

  // Stable JSON form, keys sorted, zero components omitted: {"eu-1":12,"us-2":7}.
  std::string ToJson() const;

  // Parses the JSON form. Errors (kInvalidArgument) name what is wrong: not
  // JSON, not an object, a key that is empty or longer than 253 bytes, a
  // duplicate key, a value that is not an unsigned 64-bit integer.
  static Result<VersionVector> Parse(std::string_view json);

 private:
  std::shared_ptr<const Names> names_;  // null when empty
  std::vector<uint64_t> counters_;      // parallel to *names_
};

// Checks a cluster name for use as a vector component and store key.
// Returns kInvalidArgument naming the problem: empty, or longer than 253 bytes.
Status ValidateClusterName(std::string_view name);

}  // namespace kubefold::state
