// Batch: the unit of work the store's writer applies and publishes at once.
//
// A batch is built on any thread (records are allocated and hashed here, off
// the writer's path) and handed to Store::Apply by move. Each operation
// validates its input and returns kInvalidArgument naming the bad field; a
// rejected operation is not added and the batch stays usable.
//
// Thread-safety: a Batch is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "state/record.h"
#include "state/snapshot.h"
#include "state/status.h"
#include "state/version_vector.h"

namespace kubefold::state {

struct NamespacedObject {
  std::string ns;
  WorkloadObject object;
};

class Batch {
 public:
  Batch() = default;
  Batch(Batch&&) noexcept = default;
  Batch& operator=(Batch&&) noexcept;
  Batch(const Batch&) = delete;
  Batch& operator=(const Batch&) = delete;
  ~Batch();

  // `received` is when the event reached kubefold (for the update-delay
  // metric); the default means "when Apply starts".

  // Creates or replaces a workload. Allocates its record now.
  Status Upsert(std::string_view cluster, std::string_view ns, const WorkloadObject& object,
                TimePoint received = {});
  // Removes a workload (a no-op if absent).
  Status Delete(std::string_view cluster, std::string_view ns, WorkloadKeyView key, TimePoint received = {});
  // The relist case: afterwards the cluster holds exactly `objects` of this
  // group/kind; only the differences are written. Every object's key must
  // name this group and kind.
  Status ReplaceKind(std::string_view cluster, std::string_view group, std::string_view kind,
                     const std::vector<NamespacedObject>& objects, TimePoint received = {});
  // Registers a cluster with an empty subtree (a no-op if present).
  Status AddCluster(std::string_view cluster, TimePoint received = {});
  // Removes a cluster's whole subtree; its vector component is kept, so a
  // later re-registration continues counting.
  Status RemoveCluster(std::string_view cluster, TimePoint received = {});

  // Declares that this batch records the effects of actions decided from
  // `decided_from` (a published snapshot of the same store), so that views
  // including this batch's events must include that snapshot too.
  void DecidedFrom(const Snapshot& decided_from) { decided_from_ = decided_from; }

  // Room for n operations without reallocating.
  void Reserve(size_t n) { ops_.reserve(n); }

  size_t size() const { return ops_.size(); }
  bool empty() const { return ops_.empty(); }

 private:
  friend class Store;
  enum class OpType : uint8_t { kUpsert, kDelete, kReplaceKind, kAddCluster, kRemoveCluster };
  struct Item {
    std::string ns;
    uint64_t ns_hash = 0;
    uint64_t key_hash = 0;
    Record* record = nullptr;  // owned until applied
  };
  struct Replace {
    std::string group;
    std::string kind;
    std::vector<Item> items;
  };
  // Kept small: a batch of hundreds of upserts moves these around.
  struct Op {
    OpType type;
    std::string cluster;
    std::string ns;        // kUpsert, kDelete
    uint64_t ns_hash = 0;  // kUpsert, kDelete
    uint64_t key_hash = 0;
    // kUpsert: the new record (owned until applied); kDelete: a record
    // holding only the key (owned by the batch).
    Record* record = nullptr;
    std::unique_ptr<Replace> replace;  // kReplaceKind
    TimePoint received{};
  };
  void Clear();
  std::vector<Op> ops_;
  Snapshot decided_from_;
};

}  // namespace kubefold::state
