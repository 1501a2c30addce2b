// Diff of two snapshots of one store: which workloads were added, removed or
// modified between `from` and `to`.
//
// Cost: two snapshots close in time (in one segment of the store's change log
// or in two consecutive ones: up to 4,096 to 8,192 changed records apart, see
// state/internal/change_log.h) diff in O(log entries between them), whatever
// the size of the map. Others are
// diffed by walking both tries in O(changes x depth): sub-trees shared by the
// two versions are skipped by pointer. Equal snapshots diff in O(1). A pair
// with different records but identical content (e.g. a cluster removed and
// re-added unchanged) is not a change.
//
// Order: clusters by name; within a cluster, an order fixed for a pair of
// snapshots while the store lives (the order the changes were first made,
// or the tries' order), which a store restored from a journal may not
// repeat. Sort by key where a canonical order matters.
//
// Thread-safety: any thread; the snapshots are immutable.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "state/function_ref.h"
#include "state/snapshot.h"
#include "state/status.h"

namespace kubefold::state {

enum class ChangeType { kAdded, kRemoved, kModified };
std::string_view ChangeTypeName(ChangeType t);  // "added", "removed", "modified"

struct Change {
  ChangeType type;
  std::string_view cluster;
  std::string_view ns;
  const Record* before = nullptr;  // null when added
  const Record* after = nullptr;   // null when removed
};

struct DiffFilter {
  std::optional<std::string> cluster;  // only this cluster
  std::optional<std::string> ns;       // only namespaces with this name
  // Also report a pair of different records with identical content as
  // modified (a journal tracking record versions needs every new dot).
  bool same_content = false;
};

// Calls f for each change until it returns false. Errors (kInvalidArgument):
// an invalid snapshot, or snapshots of different stores. Allocates nothing
// per change: records and names point into the snapshots, valid while the
// caller holds them.
Status VisitDiff(const Snapshot& from, const Snapshot& to, const DiffFilter& filter,
                 FunctionRef<bool(const Change&)> f);

// The whole diff, holding both snapshots so its pointers stay valid.
class DiffResult {
 public:
  const Snapshot& from() const { return from_; }
  const Snapshot& to() const { return to_; }
  const std::vector<Change>& changes() const { return changes_; }
  size_t added() const { return added_; }
  size_t removed() const { return removed_; }
  size_t modified() const { return modified_; }

 private:
  friend Result<DiffResult> Diff(const Snapshot&, const Snapshot&, const DiffFilter&);
  Snapshot from_, to_;
  std::vector<Change> changes_;
  size_t added_ = 0, removed_ = 0, modified_ = 0;
};

Result<DiffResult> Diff(const Snapshot& from, const Snapshot& to, const DiffFilter& filter = {});

}  // namespace kubefold::state
