// Counted: the header shared by every object in a store's trees (trie nodes,
// namespace and cluster subtrees, records).
//
// Why a plain (non-atomic) count? Only the store's writer thread ever changes
// it: readers reach tree objects only through a SnapshotData they hold (whose
// own count is atomic), and dropping the last SnapshotData hands the tree back
// to the writer for freeing. So node copies on the write path cost a plain
// increment per child instead of a locked one.
#pragma once

#include <cstdint>

namespace kubefold::state::internal {

struct Counted {
  uint32_t refs = 1;  // Writer thread only.
};

}  // namespace kubefold::state::internal
