// TrieCursor: a lookup in progress, for staged prefetching (champ.h Step).
#pragma once

#include <cstdint>

namespace kubefold::state::internal {

struct Node;

struct TrieCursor {
  const Node* node;
  uint64_t hash;
  unsigned shift;
};

}  // namespace kubefold::state::internal
