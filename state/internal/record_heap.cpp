#include "state/internal/record_heap.h"

#include <cstdlib>
#include <mutex>
#include <new>

namespace kubefold::state::internal {

namespace {

// A slab's header, at the start of its kSlabBytes-aligned block; the blocks
// follow it. Guarded by its class's lock.
struct Slab {
  Slab* prev = nullptr;  // on its class's partial list
  Slab* next = nullptr;
  void* free = nullptr;  // freed blocks, linked through their first word
  char* bump = nullptr;  // the first block never handed out
  char* end = nullptr;   // no block starts at or after this
  uint32_t live = 0;     // blocks handed out and not freed
  bool listed = false;   // on the partial list
};
static_assert(sizeof(Slab) <= RecordHeap::kSlabHeaderBytes);

// Classes 8 bytes apart: index = size / 8, rounded up.
constexpr size_t kClasses = RecordHeap::kMaxCarved / RecordHeap::kGrain + 1;

struct ClassInfo {
  size_t index;
  size_t block;  // the class's block size
};
// REQUIRES: Carves(bytes).
ClassInfo ClassOf(size_t bytes) {
  const size_t index = (bytes + RecordHeap::kGrain - 1) / RecordHeap::kGrain;
  return {index, index * RecordHeap::kGrain};
}

// Every slab of a class is exactly one of: the one it carves from
// (`current`), on the partial list (some blocks free), or full and on no
// list (listed again when one of its blocks is freed).
struct Class {
  std::mutex mu;
  Slab* current = nullptr;
  Slab* partial = nullptr;
  uint64_t slabs = 0;
  uint64_t blocks = 0;
};

// Constant-initialized (std::mutex has a constexpr constructor), so records
// may be created and freed during static initialization and destruction.
Class g_classes[kClasses];

Slab* SlabOf(void* p) {
  return reinterpret_cast<Slab*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{RecordHeap::kSlabBytes - 1});
}

Slab* NewSlab(size_t block) {
  constexpr size_t bytes = RecordHeap::kSlabBytes;
  void* mem = std::aligned_alloc(bytes, bytes);
  if (mem == nullptr) throw std::bad_alloc();
  auto* s = new (mem) Slab();
  char* base = static_cast<char*>(mem);
  s->bump = base + RecordHeap::kSlabHeaderBytes;
  s->end = base + bytes - block + 1;
  return s;
}

void Unlist(Class& c, Slab* s) {
  if (s->prev != nullptr) s->prev->next = s->next;
  else c.partial = s->next;
  if (s->next != nullptr) s->next->prev = s->prev;
  s->prev = s->next = nullptr;
  s->listed = false;
}

void List(Class& c, Slab* s) {
  s->prev = nullptr;
  s->next = c.partial;
  if (c.partial != nullptr) c.partial->prev = s;
  c.partial = s;
  s->listed = true;
}

}  // namespace

bool RecordHeap::Carves(size_t bytes) {
#if defined(__SANITIZE_ADDRESS__)
  (void)bytes;
  return false;
#else
  return bytes >= kMinCarved && bytes <= kMaxCarved;
#endif
}

void* RecordHeap::Alloc(size_t bytes) {
  if (!Carves(bytes)) {
    void* p = std::malloc(bytes);
    if (p == nullptr) throw std::bad_alloc();
    return p;
  }
  const ClassInfo cls = ClassOf(bytes);
  const size_t block = cls.block;
  Class& c = g_classes[cls.index];
  std::lock_guard lock(c.mu);
  Slab* s = c.current;
  if (s == nullptr || (s->free == nullptr && s->bump >= s->end)) {
    // The current slab is full: it goes on no list until a block in it is
    // freed. Carve from a partly used slab before taking a new one.
    if (c.partial != nullptr) {
      s = c.partial;
      Unlist(c, s);
    } else {
      s = NewSlab(block);
      ++c.slabs;
    }
    c.current = s;
  }
  void* p;
  if (s->free != nullptr) {
    p = s->free;
    s->free = *static_cast<void**>(p);
  } else {
    p = s->bump;
    s->bump += block;
  }
  ++s->live;
  ++c.blocks;
  return p;
}

void RecordHeap::Free(void* p, size_t bytes) {
  if (!Carves(bytes)) {
    std::free(p);
    return;
  }
  const ClassInfo cls = ClassOf(bytes);
  Class& c = g_classes[cls.index];
  Slab* s = SlabOf(p);
  Slab* empty = nullptr;
  {
    std::lock_guard lock(c.mu);
    *static_cast<void**>(p) = s->free;
    s->free = p;
    --s->live;
    --c.blocks;
    if (s != c.current) {
      if (s->live == 0) {
        if (s->listed) Unlist(c, s);
        --c.slabs;
        empty = s;
      } else if (!s->listed) {
        List(c, s);
      }
    }
  }
  if (empty != nullptr) std::free(empty);  // outside the lock
}

RecordHeap::Counts RecordHeap::Count() {
  Counts out;
  for (size_t cls = 0; cls < kClasses; ++cls) {
    Class& c = g_classes[cls];
    std::lock_guard lock(c.mu);
    out.slabs += c.slabs;
    out.blocks += c.blocks;
    out.block_bytes += c.blocks * cls * kGrain;
  }
  return out;
}

}  // namespace kubefold::state::internal
