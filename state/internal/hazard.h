// Hazard pointers for Store::Current().
//
// A reader announces the snapshot it is about to take a reference on in its
// thread's slot, re-checks that it is still current, takes the reference and
// clears the slot. The writer, after replacing the current snapshot, keeps its
// reference to the old one until no slot names it. The writer never waits:
// it re-checks retired snapshots at its next publication.
//
// Slots are process-wide (all stores share them), one per thread that has
// ever read, reused after the thread exits, never freed.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

namespace kubefold::state::internal {

struct alignas(64) HazardSlot {
  std::atomic<const void*> ptr{nullptr};
  std::atomic<bool> in_use{false};
  HazardSlot* next = nullptr;  // Constant after the slot is linked.
  uint32_t index = 0;          // Constant after the slot is linked.
};

// The calling thread's slot (acquired on first use). Never null.
HazardSlot& ThisThreadHazardSlot();

// Appends every non-null announced pointer to `out` (sequentially consistent
// loads). Safe from any thread.
void CollectHazards(std::vector<const void*>& out);

}  // namespace kubefold::state::internal
