// Workload records: the immutable values stored in a Store.
//
// A Record holds one workload as last observed: its key (group, kind, name),
// the object pruned by the caller (JSON text), a few decoded summary fields,
// a content hash, and the counter of its dot. The dot's cluster is the cluster
// whose subtree holds the record, so the full dot is (cluster, counter()).
//
// Thread-safety: a Record never changes after it is published and may be read
// from any thread while the Snapshot it was obtained from is alive.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "state/internal/versioned.h"
#include "state/object_codec.h"
#include "state/status.h"

namespace kubefold::state {

// Identifies a workload inside a namespace. group is "" for the core group.
struct WorkloadKey {
  std::string group;
  std::string kind;
  std::string name;
  friend bool operator==(const WorkloadKey&, const WorkloadKey&) = default;
  friend auto operator<=>(const WorkloadKey&, const WorkloadKey&) = default;
};

struct WorkloadKeyView {
  std::string_view group;
  std::string_view kind;
  std::string_view name;
  WorkloadKeyView() = default;
  WorkloadKeyView(std::string_view g, std::string_view k, std::string_view n) : group(g), kind(k), name(n) {}
  WorkloadKeyView(const WorkloadKey& k) : group(k.group), kind(k.kind), name(k.name) {}  // NOLINT
  friend bool operator==(const WorkloadKeyView&, const WorkloadKeyView&) = default;
  friend auto operator<=>(const WorkloadKeyView&, const WorkloadKeyView&) = default;
};

// Decoded fields the reconciler needs without parsing JSON. kUnset marks a
// field the object does not carry (e.g. a DaemonSet has no spec.replicas).
struct WorkloadSummary {
  static constexpr int64_t kUnset = -1;
  int64_t generation = kUnset;
  int64_t observed_generation = kUnset;
  int32_t desired_replicas = -1;
  int32_t ready_replicas = -1;
  int32_t available_replicas = -1;
  friend bool operator==(const WorkloadSummary&, const WorkloadSummary&) = default;
};

// A workload as handed to the store by a watcher.
struct WorkloadObject {
  WorkloadKey key;
  std::string object_json;  // pruned object; opaque to the store
  WorkloadSummary summary;
  // When set, the record keeps object_json compressed against this
  // dictionary (object_codec.h), unless that would not make it smaller.
  const ObjectDictionary* compress_with = nullptr;
};

// Limits enforced by ValidateWorkload (kInvalidArgument names the field).
inline constexpr size_t kMaxKeyPartBytes = 253;
inline constexpr size_t kMaxObjectBytes = 64u << 20;  // 64 MiB

// Returns kInvalidArgument naming the field when `ns` or `object` cannot be
// stored: empty kind or name, a key part or namespace over 253 bytes, an
// object over 64 MiB.
Status ValidateWorkload(std::string_view ns, const WorkloadObject& object);
Status ValidateKey(std::string_view ns, WorkloadKeyView key);

class Record : public internal::Versioned {
 public:
  // Allocates a record holding copies of the object's parts, with counter 0.
  // REQUIRES: ValidateWorkload(..., object).ok(). Writer-owned until published.
  static Record* Create(const WorkloadObject& object);
  static void Destroy(Record* r);

  std::string_view group() const { return {key_data(), group_len()}; }
  std::string_view kind() const { return {key_data() + group_len(), kind_len()}; }
  std::string_view name() const { return {key_data() + group_len() + kind_len(), name_len()}; }
  WorkloadKeyView key() const { return {group(), kind(), name()}; }
  // The object JSON as handed over, decompressed when the record keeps it
  // compressed (a few microseconds for a typical Deployment).
  std::string object_json() const;
  // Appends the object JSON to `out`, without a temporary.
  void AppendObjectJson(std::string& out) const;
  // True when the record keeps its object compressed (see compress_with).
  bool compressed() const { return Parts().compressed; }
  // Decodes the summary fields. O(1), no allocation.
  WorkloadSummary summary() const;
  // xxh3-64 of the object JSON (as handed over, whatever the record keeps)
  // and the summary fields.
  uint64_t content_hash() const { return content_hash_; }
  // The writer's counter for this record's cluster when it was written.
  uint64_t counter() const { return counter_; }
  // Bytes this record occupies (header, lengths, summary, key and object as
  // kept), excluding allocator slack.
  size_t ByteSize() const;
  // Bytes of the key and the object as kept (the compressed frame, or the
  // JSON): the record's own payload.
  size_t PayloadBytes() const { return KeyBytes() + Parts().stored.size(); }

  // True when both records hold the same object JSON and summary, whether
  // or not each keeps it compressed.
  bool SameContent(const Record& other) const;

  void set_counter(uint64_t c) { counter_ = c; }  // writer, before publication

  // The fixed part of every record; its lengths, key, summary and object
  // follow it.
  static constexpr size_t kHeaderBytes = 24;

 private:
  Record() = default;

  // The record's layout, 24 bytes of header and then one run of bytes:
  //
  //   Versioned word   birth (48 bits), group length, kind length (8 each)
  //   counter_         8 bytes
  //   content_hash_    8 bytes
  //   name length      1 byte (key parts are at most kMaxKeyPartBytes, 253)
  //   group, kind, name
  //   summary          five zigzag varints (one or two bytes each for typical
  //                    values, at most 50 in all)
  //   varint           object bytes kept << 1 | 1 when they are compressed
  //   varint           the dictionary's id (ObjectDictionary::id), when compressed
  //   object           the JSON, or one zstd frame made with that dictionary
  //
  // So a typical record costs 24 bytes plus about 8 beyond its payload.
  struct Layout {
    std::string_view summary;
    std::string_view stored;  // the object as kept
    uint32_t dictionary_id = 0;
    bool compressed = false;
  };
  Layout Parts() const;
  const char* data() const { return reinterpret_cast<const char*>(this) + kHeaderBytes; }
  const char* key_data() const { return data() + 1; }
  size_t group_len() const { return tag() & 0xff; }
  size_t kind_len() const { return tag() >> 8; }
  size_t name_len() const { return static_cast<unsigned char>(data()[0]); }
  size_t KeyBytes() const { return group_len() + kind_len() + name_len(); }
  // The bytes after the key: the summary first.
  const char* tail() const { return key_data() + KeyBytes(); }
  const ObjectDictionary* dictionary(const Layout& parts) const;

  uint64_t counter_ = 0;
  uint64_t content_hash_ = 0;
};

// Hash of a workload key, as the trie indexes it.
uint64_t HashKey(WorkloadKeyView key);
// Hash of a namespace or cluster name.
uint64_t HashName(std::string_view name);

}  // namespace kubefold::state
