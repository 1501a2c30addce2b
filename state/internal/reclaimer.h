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
  Reclaimer() = default;
  Reclaimer(const Reclaimer&) = delete;
  Reclaimer& operator=(const Reclaimer&) = delete;
  ~Reclaimer();

  // The seq the running batch will publish; objects born now carry it.
  uint64_t building() const { return building_; }

  // `o` (of `bytes` accounted bytes) left the working tree in the running
  // batch. Freed at once if it was born in this batch (never visible), else
  // filed under this batch's death. The caller has already accounted it as
  // leaving the current tree. The size is taken now, while `o` is in cache:
  // freeing it later must not have to read it.
  void Retire(Versioned* o, ObjKind kind, size_t bytes);

  // The running batch is published as seq building(): its retirements form
  // the bucket of that death, the seq is live, and the next batch begins.
  void Publish();

  // The last handle of snapshot `seq` is gone.
  void Died(uint64_t seq);

  // At store shutdown: the working tree's clusters, freed by the destructor.
  void AdoptWorkingTree(std::vector<ClusterTree*> roots) { final_roots_ = std::move(roots); }

  // Birth, size and kind are copied here while the object is in cache, so
  // that deciding its fate and freeing it later never read it. Packed into
  // 16 bytes: a change retires about seven objects and a retained snapshot
  // keeps their entries as long as it lives.
  class Dead {
   public:
    static constexpr unsigned kKindBits = 2, kBytesBits = 28, kAgeBits = 64 - kKindBits - kBytesBits;
    static constexpr uint64_t kMaxBytes = (uint64_t{1} << kBytesBits) - 1;
    static constexpr uint64_t kMaxAge = (uint64_t{1} << kAgeBits) - 1;
    Dead(Versioned* obj, ObjKind kind, size_t bytes, uint64_t birth, uint64_t death);
    Versioned* obj() const { return obj_; }
    ObjKind kind() const { return static_cast<ObjKind>(packed_ & ((1u << kKindBits) - 1)); }
    size_t bytes() const { return static_cast<size_t>((packed_ >> kKindBits) & kMaxBytes); }
    // The seq of the batch that created the object, given the batch that
    // displaced it. An age too large to store reads as birth 0, which only
    // keeps the object longer (it is then deemed visible to every older
    // snapshot), never frees it early.
    uint64_t birth(uint64_t death) const {
      const uint64_t age = packed_ >> (kKindBits + kBytesBits);
      return age == kMaxAge ? 0 : death - age;
    }

   private:
    Versioned* obj_;
    uint64_t packed_;  // kind | bytes << 2 | (death - birth) << 30
  };
  static_assert(sizeof(Dead) == 16);

  Heap heap;
  NodePool pool;  // declared after heap, destroyed before: nothing uses it then

 private:
  struct Survivor {
    Dead dead;
    uint64_t death;
  };
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
  // Decides the fate of `objs`, which died with batch `death` and whose
  // newest viewer is gone; `newer` is the first live seq after that viewer.
  void Settle(const std::vector<Dead>& objs, uint64_t death, LiveList::iterator newer);

  uint64_t building_ = 0;  // the store publishes the empty snapshot 0 first
  std::vector<Dead> running_;
  // Every live seq, ascending. Seqs are born at the back and mostly die at
  // the front (retention drops the oldest), so a deque costs 32 bytes per
  // retained snapshot where a map node cost 64; a pinned snapshot dying out
  // of order moves the shorter side.
  LiveList live_;
  std::map<uint64_t, std::vector<Survivor>> survivors_;  // protecting seq -> objects
  std::vector<ClusterTree*> final_roots_;
};

}  // namespace kubefold::state::internal
