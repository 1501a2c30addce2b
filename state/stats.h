// StoreStats: a store's accounting, as a plain value the operator turns into
// Prometheus metrics.
#pragma once

#include <array>
#include <cstdint>

namespace kubefold::state {

// Cumulative histogram in the Prometheus sense: counts[i] = observations
// <= kBoundsSeconds[i]; count includes the +Inf bucket.
struct DelayHistogram {
  static constexpr std::array<double, 16> kBoundsSeconds = {
      0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
      0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   1.0,   5.0};
  std::array<uint64_t, kBoundsSeconds.size()> cumulative{};
  uint64_t count = 0;
  double sum_seconds = 0;
};

struct StoreStats {
  uint64_t seq = 0;            // newest published snapshot
  uint64_t workloads = 0;      // live workloads in the newest snapshot
  uint64_t clusters = 0;       // clusters present in the newest snapshot
  uint64_t batches = 0;        // batches applied (published or not)
  uint64_t events_applied = 0; // operations that changed the map
  uint64_t events_noop = 0;    // operations dropped as unchanged

  uint64_t retained_snapshots = 0;
  uint64_t pinned_snapshots = 0;

  // Tree objects (trie nodes, namespace and cluster subtrees).
  uint64_t nodes_live = 0, nodes_current = 0;
  uint64_t node_bytes_live = 0, node_bytes_current = 0;
  // Workload records.
  uint64_t records_live = 0, record_bytes_live = 0, record_bytes_current = 0;
  // Snapshot headers (tables and vectors) alive.
  uint64_t snapshot_bytes_live = 0;
  // Bytes the writer's node pool holds unused: freed tree objects kept for
  // reuse and chunk bytes not carved (allocated as far as the allocator is
  // concerned, holding nothing).
  uint64_t pool_free_bytes = 0;
  // The change log's segments alive (state/internal/change_log.h): what the
  // last batches changed, for diffs between recent snapshots.
  uint64_t change_log_bytes = 0;
  // Bytes of the slabs records of 129 to 1,024 bytes are carved from
  // (state/internal/record_heap.h) that hold no record: freed blocks, the
  // never used rest of a slab, slab headers. Process-wide: the records of
  // every store in the process share the slabs. 0 under AddressSanitizer.
  uint64_t record_slab_free_bytes = 0;

  // Bytes alive only because history (or a reader) still holds old versions.
  uint64_t retained_bytes = 0;
  // Nodes kept alive only by history / nodes in the current tree.
  double version_fragmentation = 0;

  // Reads by source: Current() and Get(seq of the newest); a retained older
  // snapshot; a composed as-of view.
  uint64_t reads_current = 0, reads_retained = 0, reads_composed = 0;

  // Time from an event being handed to the writer to its publication.
  DelayHistogram update_delay;
};

}  // namespace kubefold::state
