// Reclaimer: the writer's memory manager for tree objects.
//
// Every tree object is, at any time, in exactly one of three places: the
// working (newest) tree, a death bucket (displaced by the batch that published
// seq `death`, so visible in [birth, death)), or a survivor list (still
// visible in some older snapshot that is alive). The writer tells the
// reclaimer when a snapshot seq is published (Born) and when its last handle
// is gone (Died); a death is what can free things, so reclamation work is
// proportional to what is freed or re-filed, never a scan of history.
//
// Thread-safety: writer thread only; the destructor frees everything left
// (it runs when the store and every snapshot handle are gone).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "state/internal/heap.h"
#include "state/internal/node_pool.h"
#include "state/internal/versioned.h"

namespace kubefold::state::internal {

struct ClusterTree;

enum class ObjKind : uint8_t { kNode, kRecord, kNamespace, kCluster };

class Reclaimer {
 public:
  // `first_batch` is the number of the first batch published (the store's
  // empty snapshot); tests start near Versioned::kMaxBirth.
  explicit Reclaimer(uint64_t first_batch = 0) : building_(first_batch) {}
  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;
  ~Reclaimer();

  // The seq the running batch will publish; objects born now carry it.
  uint64_t building() const { return building_; }

  // `o` left the working tree in the running batch. Freed at once if it was
  // born in this batch (never visible), else filed under this batch's death.
  // The caller has already accounted it as leaving the current tree.
  void Retire(Versioned* o, ObjKind kind);

  // The running batch is published as seq building(): its retirements form
  // the bucket of that death, the seq is live, and the next batch begins.
  void Publish();

  // The last handle of snapshot `seq` is gone.
  void Died(uint64_t seq);

  // At store shutdown: the working tree's clusters, freed by the destructor.
  void AdoptWorkingTree(std::vector<ClusterTree*> roots) { final_roots_ = std::move(roots); }

  // A retired object: its address, with its kind in the low bits. A change
  // retires about seven objects and a retained snapshot keeps their entries
  // as long as it lives, so an entry is one word: the object's birth and
  // size are read from the object itself when its fate is decided and when
  // it is freed (it is immutable until then), a few entries ahead.
  class Dead {
   public:
    static constexpr unsigned kKindBits = 2;
    Dead(Versioned* obj, ObjKind kind) : packed_(reinterpret_cast<uintptr_t>(obj) | static_cast<uintptr_t>(kind)) {
      static_assert(alignof(Versioned) >= (1u << kKindBits), "the kind lives in the address's low bits");
    }
    Versioned* obj() const { return reinterpret_cast<Versioned*>(packed_ & ~kKindMask); }
    ObjKind kind() const { return static_cast<ObjKind>(packed_ & kKindMask); }
    uint64_t birth() const { return obj()->birth(); }

   private:
    static constexpr uintptr_t kKindMask = (uintptr_t{1} << kKindBits) - 1;
    uintptr_t packed_;
  };
  static_assert(sizeof(Dead) == 8);

  Heap heap;
  NodePool pool;  // declared after heap, destroyed before: nothing uses it then

 private:
  // A live seq, with the objects displaced by the batch after it (death
  // seq + 1): the newest snapshot that sees them is that seq, so its death
  // is what decides their fate.
  struct Live {
    uint64_t seq;
    std::vector<Dead> objs;
  };
  using LiveList = std::deque<Live>;
  struct Protector;
  void Free(const Dead& d);
  void FreeAll(const std::vector<Dead>& objs);
  // Decides the fate of `objs`, whose newest viewer is gone; `newer` is the
  // first live seq after that viewer.
  void Settle(const std::vector<Dead>& objs, LiveList::iterator newer);
  // Deciding an object's fate reads its birth and freeing it its size (a
  // record's from the lengths after its header), long out of cache: both
  // loops start fetching the object kPrefetchAhead entries ahead (and a
  // record's slab header, which its free writes), so that those misses
  // overlap.
  static constexpr size_t kPrefetchAhead = 8;
  static void PrefetchAhead(const std::vector<Dead>& objs, size_t i);

  uint64_t building_ = 0;  // the store publishes the empty snapshot 0 first
  std::vector<Dead> running_;
  // Every live seq, ascending. Seqs are born at the back and mostly die at
  // the front (retention drops the oldest), so a deque costs 32 bytes per
  // retained snapshot where a map node cost 64; a pinned snapshot dying out
  // of order moves the shorter side.
  LiveList live_;
  std::map<uint64_t, std::vector<Dead>> survivors_;  // protecting seq -> objects
  std::vector<ClusterTree*> final_roots_;
};

}  // namespace kubefold::state::internal
