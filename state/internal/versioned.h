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
#pragma once

#include <cstdint>

namespace kubefold::state::internal {

struct Versioned {
  uint64_t birth = 0;  // Writer thread only, before publication.
};

}  // namespace kubefold::state::internal
