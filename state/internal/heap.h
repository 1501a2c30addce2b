// Heap: the writer's exact accounting of tree objects.
//
// "live" counts every object allocated and not yet freed, wherever it is
// referenced from (the working tree, retained snapshots, readers' handles).
// "current" counts the objects reachable from the writer's working tree, i.e.
// the newest version. live - current is what history keeps alive.
//
// Writer thread only; the store publishes copies for readers.
#pragma once

#include <cstddef>
#include <cstdint>

namespace kubefold::state::internal {

struct HeapCounts {
  int64_t live = 0;
  int64_t live_bytes = 0;
  int64_t current = 0;
  int64_t current_bytes = 0;
};

struct Heap {
  HeapCounts nodes;    // trie nodes and namespace/cluster subtree objects
  HeapCounts records;  // workload records

  // A new object enters the working tree.
  static void Enter(HeapCounts& c, size_t bytes) {
    ++c.live;
    c.live_bytes += static_cast<int64_t>(bytes);
    ++c.current;
    c.current_bytes += static_cast<int64_t>(bytes);
  }
  // An object leaves the working tree (it may live on in history).
  static void Leave(HeapCounts& c, size_t bytes) {
    --c.current;
    c.current_bytes -= static_cast<int64_t>(bytes);
  }
  // An object is freed.
  static void Free(HeapCounts& c, size_t bytes) {
    --c.live;
    c.live_bytes -= static_cast<int64_t>(bytes);
  }
};

}  // namespace kubefold::state::internal
