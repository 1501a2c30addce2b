// Versioned: the header shared by every object in a store's trees (trie
// nodes, namespace and cluster subtrees, records).
//
// Why no reference count? Copying a node of a persistent trie would have to
// touch every child's count, one cache miss each on a large map, and freeing
// would touch them again. Instead each object records the snapshot seq whose
// batch created it; when a later batch displaces it from the newest version,
// the writer records that seq as its death. The object is then visible in
// exactly the snapshots [birth, death), and the writer frees it once no live
// snapshot falls in that interval (see reclaimer.h). A node born in the batch
// being built is not visible to anyone yet and is changed in place: that is
// the batch (transient) mode.
//
// The birth is the writer's batch number (Reclaimer::building), which starts
// at 0 in every process and counts published batches: 48 bits last 8.9 years
// at a million batches a second, and the store refuses to fold past them
// (kMaxBirth). The word's other 16 bits belong to the object: a record keeps
// two of its key lengths there, which makes its header 24 bytes instead of 32.
#pragma once

#include <cstdint>

namespace kubefold::state::internal {

class Versioned {
 public:
  static constexpr unsigned kBirthBits = 48;
  static constexpr uint64_t kMaxBirth = (uint64_t{1} << kBirthBits) - 1;

  // Writer thread only, before publication.
  uint64_t birth() const { return word_ & kMaxBirth; }
  // REQUIRES: b <= kMaxBirth.
  void set_birth(uint64_t b) { word_ = (word_ & ~kMaxBirth) | b; }

 protected:
  // The 16 bits above the birth, for the object's own fields.
  unsigned tag() const { return static_cast<unsigned>(word_ >> kBirthBits); }
  void set_tag(unsigned t) { word_ = (word_ & kMaxBirth) | (uint64_t{t & 0xffff} << kBirthBits); }

 private:
  uint64_t word_ = 0;
};

}  // namespace kubefold::state::internal
