#include "state/internal/change_log.h"

#include <cstdlib>
#include <cstring>
#include <new>
#include <unordered_map>

namespace kubefold::state::internal {

namespace {

constexpr size_t kEntriesBytes = ChangeSegment::kMaxEntries * sizeof(ChangeSegment::Entry);
constexpr size_t kEndsBytes = ChangeSegment::kMaxBatches * sizeof(uint32_t);

}  // namespace

size_t ChangeSegment::AllocationBytes() {
  return sizeof(ChangeSegment) + kEntriesBytes + kEndsBytes + kNameBytes;
}

ChangeSegment* ChangeSegment::Create(uint64_t base_epoch,
                                     std::shared_ptr<const std::vector<std::string>> cluster_names,
                                     std::atomic<int64_t>* bytes_counter) {
  static_assert(sizeof(ChangeSegment) % alignof(Entry) == 0);
  // One allocation; its pages are touched only as entries are written.
  void* mem = ::operator new(AllocationBytes());
  auto* s = new (mem) ChangeSegment();
  char* p = static_cast<char*>(mem) + sizeof(ChangeSegment);
  s->entries_ = reinterpret_cast<Entry*>(p);
  s->ends_ = reinterpret_cast<uint32_t*>(p + kEntriesBytes);
  s->names_ = p + kEntriesBytes + kEndsBytes;
  s->base_epoch = base_epoch;
  s->cluster_names = std::move(cluster_names);
  s->bytes_counter_ = bytes_counter;
  bytes_counter->fetch_add(static_cast<int64_t>(AllocationBytes()), std::memory_order_relaxed);
  return s;
}

void ChangeSegment::Unref(ChangeSegment* s) {
  if (s->refs_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  s->bytes_counter_->fetch_sub(static_cast<int64_t>(AllocationBytes()), std::memory_order_relaxed);
  s->~ChangeSegment();
  ::operator delete(s);
}

uint32_t ChangeSegment::AppendName(std::string_view name) {
  const uint32_t off = name_bytes_;
  names_[off] = static_cast<char>(name.size());
  std::memcpy(names_ + off + 1, name.data(), name.size());
  name_bytes_ += static_cast<uint32_t>(1 + name.size());
  return off;
}

uint32_t ChangeLogWriter::NameOffset(std::string_view ns, uint32_t& cache) {
  // The cache holds offset + 1 in some segment; it is this segment's entry
  // for `ns` if the bytes there say so (a stale offset from an older segment
  // that happens to read as the same name names it just as well).
  ChangeSegment& s = *cur_;
  if (cache != 0) {
    const uint32_t off = cache - 1;
    if (off < s.name_bytes_ && static_cast<unsigned char>(s.names_[off]) == ns.size() &&
        off + 1 + ns.size() <= s.name_bytes_ && std::memcmp(s.names_ + off + 1, ns.data(), ns.size()) == 0) {
      return off;
    }
  }
  const uint32_t off = s.AppendName(ns);
  cache = off + 1;
  return off;
}

bool ChangeLogWriter::Open() {
  if (!have_base_) {
    broken_ = true;
    return false;
  }
  cur_ = ChangeSegment::Create(base_epoch_, base_names_, bytes_counter_);
  cur_->serial = ++serial_;
  batch_start_ = 0;
  return true;
}

bool ChangeLogWriter::Rollover() {
  ChangeSegment* old = cur_;
  if (old->batches_ == 0) return false;  // the batch alone fills it
  ChangeSegment* next =
      ChangeSegment::Create(old->base_epoch + old->batches_, old->cluster_names, bytes_counter_);
  next->serial = ++serial_;
  next->continues = old->serial;
  // The running batch's entries, their namespace names written again in the
  // new segment (offsets cached in namespace objects are checked on use).
  std::unordered_map<uint32_t, uint32_t> moved;  // old offset -> new
  for (uint32_t i = batch_start_; i < old->used_; ++i) {
    ChangeSegment::Entry e = old->entries_[i];
    auto it = moved.find(e.ns);
    if (it == moved.end()) it = moved.emplace(e.ns, next->AppendName(old->Name(e.ns))).first;
    e.ns = it->second;
    next->entries_[next->used_++] = e;
  }
  ChangeSegment::Unref(old);
  cur_ = next;
  batch_start_ = 0;
  return true;
}

void ChangeLogWriter::Drop() {
  if (cur_ != nullptr) ChangeSegment::Unref(cur_);
  cur_ = nullptr;
}

ChangeSegment* ChangeLogWriter::Publish(uint64_t epoch,
                                        const std::shared_ptr<const std::vector<std::string>>& cluster_names,
                                        bool loggable) {
  const size_t clusters = cluster_names ? cluster_names->size() : 0;
  const bool same_names = have_base_ && base_names_ == cluster_names;
  ChangeSegment* out = nullptr;
  if (loggable && !broken_ && same_names && clusters <= ChangeSegment::kMaxClusters &&
      (cur_ == nullptr || epoch == cur_->base_epoch + cur_->batches_ + 1) &&
      (cur_ == nullptr || cur_->batches_ < ChangeSegment::kMaxBatches || Rollover())) {
    if (cur_ == nullptr) {
      // Nothing logged since the base (a batch that changed no record):
      // this snapshot is as good a base, and newer.
      base_epoch_ = epoch;
    } else {
      cur_->ends_[cur_->batches_++] = cur_->used_;
      batch_start_ = cur_->used_;
      ChangeSegment::Ref(cur_);
      out = cur_;
    }
  } else {
    Drop();
    have_base_ = loggable;
    base_epoch_ = epoch;
    base_names_ = loggable ? cluster_names : nullptr;
  }
  broken_ = false;
  return out;
}

}  // namespace kubefold::state::internal
