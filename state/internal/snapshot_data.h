// SnapshotData: what a Snapshot handle points at, and the domain that frees it.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <vector>

#include "state/internal/change_log.h"
#include "state/internal/trees.h"
#include "state/snapshot.h"
#include "state/version_vector.h"

namespace kubefold::state::internal {

struct StoreDomain;

struct SnapshotData {
  // One allocation holds the header and the cluster table (every entry
  // nullptr). A retained snapshot costs this, plus its vector's counters.
  static SnapshotData* Create(size_t clusters);
  static void Destroy(SnapshotData* d);

  std::atomic<uint32_t> refs{1};

 private:
  uint32_t num_clusters_ = 0;  // the table's length

 public:
  // Constant after publication.
  uint64_t seq = 0;
  // The reclaimer's epoch: consecutive across publications. Equal to seq
  // unless the store was restored from a journal with gaps between seqs.
  uint64_t epoch = 0;
  TimePoint time{};
  VersionVector vector;
  uint64_t workloads = 0;
  // Composed views borrow their clusters from these (each holds a
  // reference); null for a published snapshot.
  std::unique_ptr<std::vector<SnapshotData*>> sources;
  std::shared_ptr<StoreDomain> domain;
  union {
    // The change-log segment this snapshot ends in (change_log.h): set at
    // publication, with a reference; null for a segment's base, composed
    // views and restored snapshots. Released when the last handle goes.
    ChangeSegment* log = nullptr;
    // Then: the reclamation stack's link.
    SnapshotData* next_pending;
  };

  // The cluster table, parallel to vector's names; nullptr = absent. It
  // follows the header in the same allocation (112 + 8 per cluster bytes: a
  // 192-byte block for 10 clusters). Not owned: the objects stay alive while
  // this seq is live (see reclaimer.h); composed views borrow them from
  // their sources.
  std::span<ClusterTree*> clusters() { return {reinterpret_cast<ClusterTree**>(this + 1), num_clusters_}; }
  std::span<ClusterTree* const> clusters() const {
    return {reinterpret_cast<ClusterTree* const*>(this + 1), num_clusters_};
  }
  bool composed() const { return sources != nullptr; }

  size_t ByteSize() const {
    return sizeof(SnapshotData) + num_clusters_ * sizeof(ClusterTree*) + vector.size() * sizeof(uint64_t);
  }
  // Index of `cluster` in the table, or -1.
  ptrdiff_t Find(std::string_view cluster) const;

 private:
  SnapshotData() = default;
  ~SnapshotData() = default;
};
static_assert(sizeof(SnapshotData) == 112, "the header and a 10-cluster table fill a 192-byte block");

// Shared by a store and all its snapshots, so handles may outlive the store:
// the tree memory goes with the domain, when the last of them is gone.
struct StoreDomain {
  explicit StoreDomain(uint64_t first_batch = 0) : reclaimer(first_batch) {}
  uint64_t id = 0;        // Constant after construction.
  Reclaimer reclaimer;    // Writer thread only; the destructor frees the rest.
  HeapCounts snapshots;   // Writer thread only.
  std::atomic<SnapshotData*> pending{nullptr};
  std::atomic<int64_t> change_log_bytes{0};  // segments alive (change_log.h)
  std::atomic<bool> writer_alive{true};

  // Deletes everything on the pending stack (and what that releases). With
  // `writer` it also tells the reclaimer which seqs died.
  // REQUIRES: writer == true only on the writer thread while the store lives.
  void Drain(bool writer);
};

// Drops one reference; the last one hands `d` to its domain for freeing.
void Unref(SnapshotData* d);

}  // namespace kubefold::state::internal

namespace kubefold::state {

// The library's own access to a handle's data (Snapshot befriends it).
struct SnapshotAccess {
  static internal::SnapshotData* Data(const Snapshot& s) { return s.d_; }
};

}  // namespace kubefold::state
