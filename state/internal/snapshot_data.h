// SnapshotData: what a Snapshot handle points at, and the domain that frees it.
#pragma once

#include <atomic>
#include <memory>
#include <span>
#include <vector>

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
  bool composed = false;
  // Constant after publication.
  uint64_t seq = 0;
  // The reclaimer's epoch: consecutive across publications. Equal to seq
  // unless the store was restored from a journal with gaps between seqs.
  uint64_t epoch = 0;
  TimePoint time{};
  VersionVector vector;
  // Parallel to vector's names; nullptr = absent. Not owned: the objects stay
  // alive while this seq is live (see reclaimer.h); composed views borrow
  // them from their sources. Points into this object's own allocation.
  std::span<ClusterTree*> clusters;
  uint64_t workloads = 0;
  // Composed views borrow `clusters` from these (each holds a reference).
  std::unique_ptr<std::vector<SnapshotData*>> sources;
  std::shared_ptr<StoreDomain> domain;
  SnapshotData* next_pending = nullptr;  // reclamation stack link

  size_t ByteSize() const {
    return sizeof(SnapshotData) + clusters.size() * sizeof(ClusterTree*) + vector.size() * sizeof(uint64_t);
  }
  // Index of `cluster` in the table, or -1.
  ptrdiff_t Find(std::string_view cluster) const;

 private:
  SnapshotData() = default;
  ~SnapshotData() = default;
};

// Shared by a store and all its snapshots, so handles may outlive the store:
// the tree memory goes with the domain, when the last of them is gone.
struct StoreDomain {
  uint64_t id = 0;        // Constant after construction.
  Reclaimer reclaimer;    // Writer thread only; the destructor frees the rest.
  HeapCounts snapshots;   // Writer thread only.
  std::atomic<SnapshotData*> pending{nullptr};
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
