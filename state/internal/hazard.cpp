#include "state/internal/hazard.h"

namespace kubefold::state::internal {

namespace {

std::atomic<HazardSlot*> g_head{nullptr};
std::atomic<uint32_t> g_count{0};

HazardSlot* AcquireSlot() {
  for (HazardSlot* s = g_head.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    bool expected = false;
    if (!s->in_use.load(std::memory_order_relaxed) &&
        s->in_use.compare_exchange_strong(expected, true, std::memory_order_acq_rel)) {
      return s;
    }
  }
  auto* s = new HazardSlot();  // never freed: slots outlive threads by design
  s->in_use.store(true, std::memory_order_relaxed);
  s->index = g_count.fetch_add(1, std::memory_order_relaxed);
  HazardSlot* head = g_head.load(std::memory_order_relaxed);
  do {
    s->next = head;
  } while (!g_head.compare_exchange_weak(head, s, std::memory_order_release, std::memory_order_relaxed));
  return s;
}

struct SlotOwner {
  HazardSlot* slot = AcquireSlot();
  ~SlotOwner() {
    slot->ptr.store(nullptr, std::memory_order_release);
    slot->in_use.store(false, std::memory_order_release);
  }
};

}  // namespace

HazardSlot& ThisThreadHazardSlot() {
  thread_local SlotOwner owner;
  return *owner.slot;
}

void CollectHazards(std::vector<const void*>& out) {
  for (HazardSlot* s = g_head.load(std::memory_order_acquire); s != nullptr; s = s->next) {
    const void* p = s->ptr.load(std::memory_order_seq_cst);
    if (p != nullptr) out.push_back(p);
  }
}

}  // namespace kubefold::state::internal
