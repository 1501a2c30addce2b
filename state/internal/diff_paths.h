// The two ways VisitDiff (diff.h) answers, apart so that tests can check one
// against the other.
#pragma once

#include "state/diff.h"
#include "state/internal/snapshot_data.h"

namespace kubefold::state::internal {

// From the change log, when both snapshots end in one of its segments, or
// in a segment and the one continuing it, or one is the other's segment
// base: returns false, having visited nothing, otherwise. Within a cluster,
// changes come in the order they were first made.
bool VisitDiffByLog(const SnapshotData* a, const SnapshotData* b, const DiffFilter& filter,
                    FunctionRef<bool(const Change&)> f);

// By walking both tries: any two snapshots of a store, composed views
// included. Within a cluster, changes come in the tries' order.
void VisitDiffByWalk(const SnapshotData* a, const SnapshotData* b, const DiffFilter& filter,
                     FunctionRef<bool(const Change&)> f);

}  // namespace kubefold::state::internal
