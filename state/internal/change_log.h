// ChangeLog: what each published batch changed, so that a diff between two
// snapshots close in time reads the changes instead of walking the tries.
//
// Why: a diff that walks both tries (diff.cpp) costs O(changes x depth), and
// each level down is a cache miss on a large map: 1,000 changes among 1M
// workloads took 3-4x as long as among 10k. The writer already knows every
// change it makes; it appends one 24-byte entry per changed record (the record
// before and after, the cluster, the namespace) to the current segment. A
// segment covers consecutive batches: base_epoch, the snapshot its entries
// start from, then every batch published after it while the segment lasts,
// each with its end index. Two snapshots of one segment differ by exactly the
// entries between their ends, whatever the size of the map.
//
// When a segment fills up, the running batch moves to a new one whose base is
// the last snapshot of the full one: the new segment continues it, and a diff
// may span the two. A segment also ends, without a successor (the batch's
// snapshot is the base of the next one), when a batch removes a cluster (the
// writer drops the whole subtree without visiting its records), when the set
// of cluster names changes (the entries' cluster indices would shift), when a
// batch alone does not fit, and while restoring from a journal. Other diffs
// (further apart, with composed views) walk the tries as before.
//
// Memory: entries are 24 bytes, a batch's end index 4; namespace names are
// kept once per segment. A segment is freed with the last snapshot that uses
// it (or when the writer moves on, if none does).
//
// Thread-safety: the writer appends past the ends it has published; readers
// read only below the end of a snapshot they hold, published with it (the
// snapshot's publication orders those writes before the reader's loads).
// References are atomic: the last may be dropped on any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace kubefold::state {
class Record;
}

namespace kubefold::state::internal {

struct ChangeSegment {
  struct Entry {
    const Record* before;  // null: added
    const Record* after;   // null: removed
    uint32_t ns;           // offset of the namespace name in names()
    uint16_t cluster;      // index in cluster_names
  };
  static_assert(sizeof(Entry) == 24);

  static constexpr uint32_t kMaxEntries = 4096;      // per segment; a diff spans at most two
  static constexpr uint32_t kMaxBatches = 4096;      // batches after the base
  static constexpr uint32_t kNameBytes = 16 * 1024;  // namespace names, one byte of length each
  static constexpr size_t kMaxClusters = UINT16_MAX;

  // A new segment whose base is the snapshot of epoch `base_epoch`, with one
  // reference (the caller's). Adds its size to `bytes_counter`, which must
  // outlive it.
  static ChangeSegment* Create(uint64_t base_epoch, std::shared_ptr<const std::vector<std::string>> cluster_names,
                               std::atomic<int64_t>* bytes_counter);
  static void Ref(ChangeSegment* s) { s->refs_.fetch_add(1, std::memory_order_relaxed); }
  static void Unref(ChangeSegment* s);

  // Constant after creation.
  uint64_t base_epoch = 0;
  std::shared_ptr<const std::vector<std::string>> cluster_names;  // sorted; entries index it
  uint64_t serial = 0;       // the writer's count of segments, from 1
  uint64_t continues = 0;    // the serial of the segment whose last snapshot is the base, or 0

  // The end index of the snapshot of `epoch`, published in this segment.
  // REQUIRES: base_epoch <= epoch, and that snapshot is held by the caller.
  uint32_t End(uint64_t epoch) const { return epoch == base_epoch ? 0 : ends_[epoch - base_epoch - 1]; }
  const Entry* entries() const { return entries_; }
  std::string_view Name(uint32_t offset) const {
    return {names_ + offset + 1, static_cast<unsigned char>(names_[offset])};
  }
  static size_t AllocationBytes();

 private:
  friend class ChangeLogWriter;
  ChangeSegment() = default;
  // Writer only: appends `name` (at most 255 bytes, with room left) to the
  // names and returns its offset.
  uint32_t AppendName(std::string_view name);

  std::atomic<uint32_t> refs_{1};
  uint32_t used_ = 0;          // entries written (writer only)
  uint32_t batches_ = 0;       // ends published (writer only)
  uint32_t name_bytes_ = 0;    // names written (writer only)
  std::atomic<int64_t>* bytes_counter_ = nullptr;
  Entry* entries_ = nullptr;   // kMaxEntries, in the same allocation
  uint32_t* ends_ = nullptr;   // kMaxBatches
  char* names_ = nullptr;      // kNameBytes
};

// The writer's side: appends a batch's changes, then publishes the batch.
// A segment is allocated when the first change after its base is logged, so
// a base whose batch broke the log costs nothing until something follows.
class ChangeLogWriter {
 public:
  explicit ChangeLogWriter(std::atomic<int64_t>* bytes_counter) : bytes_counter_(bytes_counter) {}
  ~ChangeLogWriter() { Drop(); }
  ChangeLogWriter(const ChangeLogWriter&) = delete;
  ChangeLogWriter& operator=(const ChangeLogWriter&) = delete;

  // One record of cluster `cluster` (an index in the cluster names the batch
  // will be published with) changed in namespace `ns`; `ns_cache` is a field
  // of that namespace's working object where the writer keeps the name's
  // offset in the current segment.
  void Log(size_t cluster, std::string_view ns, uint32_t& ns_cache, const Record* before, const Record* after) {
    if (broken_) return;
    if (cluster > ChangeSegment::kMaxClusters || ns.size() > UINT8_MAX) {
      broken_ = true;
      return;
    }
    if (cur_ == nullptr && !Open()) return;
    // Room for the entry and, should it not be there yet, the name.
    if ((cur_->used_ == ChangeSegment::kMaxEntries || cur_->name_bytes_ + 1 + ns.size() > ChangeSegment::kNameBytes) &&
        !Rollover()) {
      broken_ = true;
      return;
    }
    cur_->entries_[cur_->used_++] =
        ChangeSegment::Entry{before, after, NameOffset(ns, ns_cache), static_cast<uint16_t>(cluster)};
  }
  // The running batch changed what entries cannot describe.
  void Break() { broken_ = true; }

  // The batch is published as the snapshot of `epoch`, with the cluster
  // table `cluster_names`. Returns the segment that snapshot ends in, with a
  // reference for it, or null: then the snapshot is the base of the next
  // segment (or of none, after a restored snapshot: `loggable` false).
  ChangeSegment* Publish(uint64_t epoch, const std::shared_ptr<const std::vector<std::string>>& cluster_names,
                         bool loggable = true);

 private:
  bool Open();
  // Moves the running batch to a new segment that continues the current
  // one; false (nothing moved) when the batch is all the current one holds.
  bool Rollover();
  void Drop();
  // The offset of `ns` in the current segment's names, written there unless
  // `cache` already points at it. REQUIRES: room for it (Log checks).
  uint32_t NameOffset(std::string_view ns, uint32_t& cache);

  std::atomic<int64_t>* bytes_counter_;
  ChangeSegment* cur_ = nullptr;  // the writer's reference
  uint32_t batch_start_ = 0;      // where the running batch's entries begin in cur_
  uint64_t serial_ = 0;
  // The snapshot the next segment starts from, if there is one.
  bool have_base_ = false;
  uint64_t base_epoch_ = 0;
  std::shared_ptr<const std::vector<std::string>> base_names_;
  bool broken_ = false;
};

}  // namespace kubefold::state::internal
