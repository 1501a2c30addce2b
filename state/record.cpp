#include "state/record.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

static_assert(sizeof(kubefold::state::Record) == kubefold::state::Record::kHeaderBytes, "record header grew");
static_assert(kubefold::state::kMaxKeyPartBytes <= 255, "key part lengths are stored in one byte");

#include <xxhash.h>

#include "state/internal/record_heap.h"

namespace kubefold::state {

namespace {
Status CheckPart(std::string_view what, std::string_view value, bool may_be_empty) {
  if (!may_be_empty && value.empty()) return InvalidArgument(std::string(what) + " is empty");
  if (value.size() > kMaxKeyPartBytes) {
    return InvalidArgument(std::string(what) + " is " + std::to_string(value.size()) +
                           " bytes long; at most 253 are allowed");
  }
  return Status::Ok();
}
}  // namespace

Status ValidateKey(std::string_view ns, WorkloadKeyView key) {
  if (Status s = CheckPart("namespace", ns, true); !s.ok()) return s;
  if (Status s = CheckPart("workload group", key.group, true); !s.ok()) return s;
  if (Status s = CheckPart("workload kind", key.kind, false); !s.ok()) return s;
  return CheckPart("workload name", key.name, false);
}

Status ValidateWorkload(std::string_view ns, const WorkloadObject& object) {
  if (Status s = ValidateKey(ns, object.key); !s.ok()) return s;
  if (object.object_json.size() > kMaxObjectBytes) {
    return InvalidArgument("workload object is " + std::to_string(object.object_json.size()) +
                           " bytes; at most 64 MiB are allowed");
  }
  return Status::Ok();
}

static uint64_t HashContent(std::string_view json, const WorkloadSummary& s) {
  uint64_t fields[5] = {static_cast<uint64_t>(s.generation), static_cast<uint64_t>(s.observed_generation),
                        static_cast<uint64_t>(static_cast<uint32_t>(s.desired_replicas)),
                        static_cast<uint64_t>(static_cast<uint32_t>(s.ready_replicas)),
                        static_cast<uint64_t>(static_cast<uint32_t>(s.available_replicas))};
  uint64_t seed = XXH3_64bits(fields, sizeof(fields));
  return XXH3_64bits_withSeed(json.data(), json.size(), seed);
}

namespace {
constexpr size_t kMaxSummaryBytes = 5 * 10;  // five varints of at most 10 bytes

// Zigzag varint: small magnitudes of either sign take one byte.
size_t PutVarint(int64_t v, char* out) {
  uint64_t z = (static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63);
  size_t n = 0;
  while (z >= 0x80) {
    out[n++] = static_cast<char>(z | 0x80);
    z >>= 7;
  }
  out[n++] = static_cast<char>(z);
  return n;
}

int64_t GetVarint(const char*& p) {
  uint64_t z = 0;
  for (unsigned shift = 0;; shift += 7) {
    uint64_t byte = static_cast<unsigned char>(*p++);
    z |= (byte & 0x7f) << shift;
    if (byte < 0x80) break;
  }
  return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
}

size_t EncodeSummary(const WorkloadSummary& s, char* out) {
  size_t n = PutVarint(s.generation, out);
  n += PutVarint(s.observed_generation, out + n);
  n += PutVarint(s.desired_replicas, out + n);
  n += PutVarint(s.ready_replicas, out + n);
  n += PutVarint(s.available_replicas, out + n);
  return n;
}
}  // namespace

Record* Record::Create(const WorkloadObject& o) {
  char summary[kMaxSummaryBytes];
  const size_t summary_len = EncodeSummary(o.summary, summary);
  const size_t key_len = o.key.group.size() + o.key.kind.size() + o.key.name.size();
  thread_local std::string frame;  // the frame is copied into the record: one buffer per thread
  frame.clear();
  if (o.compress_with != nullptr) {
    o.compress_with->Compress(o.object_json, frame);
    if (sizeof(const ObjectDictionary*) + frame.size() >= o.object_json.size()) frame.clear();  // no gain
  }
  const bool compressed = !frame.empty();
  const size_t stored = compressed ? sizeof(const ObjectDictionary*) + frame.size() : o.object_json.size();
  Record* r = new (internal::RecordHeap::Alloc(kHeaderBytes + summary_len + key_len + stored)) Record();
  r->group_len_ = static_cast<uint8_t>(o.key.group.size());
  r->kind_len_ = static_cast<uint8_t>(o.key.kind.size());
  r->name_len_ = static_cast<uint8_t>(o.key.name.size());
  r->summary_len_ = static_cast<uint8_t>(summary_len);
  r->json_len_ = static_cast<uint32_t>(stored) | (compressed ? kCompressedBit : 0);
  char* p = reinterpret_cast<char*>(r) + kHeaderBytes;
  std::memcpy(p, o.key.group.data(), o.key.group.size());
  p += o.key.group.size();
  std::memcpy(p, o.key.kind.data(), o.key.kind.size());
  p += o.key.kind.size();
  std::memcpy(p, o.key.name.data(), o.key.name.size());
  p += o.key.name.size();
  std::memcpy(p, summary, summary_len);
  p += summary_len;
  if (compressed) {
    std::memcpy(p, &o.compress_with, sizeof(const ObjectDictionary*));
    std::memcpy(p + sizeof(const ObjectDictionary*), frame.data(), frame.size());
  } else {
    std::memcpy(p, o.object_json.data(), o.object_json.size());
  }
  r->content_hash_ = HashContent(o.object_json, o.summary);
  return r;
}

void Record::Destroy(Record* r) {
  const size_t bytes = r->ByteSize();
  r->~Record();
  internal::RecordHeap::Free(r, bytes);
}

WorkloadSummary Record::summary() const {
  const char* p = data() + KeyBytes();
  WorkloadSummary s;
  s.generation = GetVarint(p);
  s.observed_generation = GetVarint(p);
  s.desired_replicas = static_cast<int32_t>(GetVarint(p));
  s.ready_replicas = static_cast<int32_t>(GetVarint(p));
  s.available_replicas = static_cast<int32_t>(GetVarint(p));
  return s;
}

const ObjectDictionary* Record::dictionary() const {
  if (!compressed()) return nullptr;
  const ObjectDictionary* d;
  std::memcpy(&d, stored().data(), sizeof(d));
  return d;
}

void Record::AppendObjectJson(std::string& out) const {
  const std::string_view s = stored();
  if (!compressed()) {
    out.append(s);
    return;
  }
  // The frame was made by Create from this dictionary: failing to read it
  // back means the record's memory was overwritten.
  if (!dictionary()->Decompress(s.substr(sizeof(const ObjectDictionary*)), out)) {
    std::fprintf(stderr, "kubefold: record %.*s: its compressed object does not decompress\n",
                 static_cast<int>(name_len_), name().data());
    std::abort();
  }
}

std::string Record::object_json() const {
  std::string out;
  AppendObjectJson(out);
  return out;
}

bool Record::SameContent(const Record& other) const {
  // The varint encoding is canonical: equal summaries have equal bytes.
  if (content_hash_ != other.content_hash_ || summary_bytes() != other.summary_bytes()) return false;
  // One dictionary compresses equal objects to equal frames.
  if (compressed() == other.compressed() && dictionary() == other.dictionary()) return stored() == other.stored();
  return object_json() == other.object_json();
}

uint64_t HashKey(WorkloadKeyView key) {
  uint64_t h = XXH3_64bits(key.group.data(), key.group.size());
  h = XXH3_64bits_withSeed(key.kind.data(), key.kind.size(), h);
  return XXH3_64bits_withSeed(key.name.data(), key.name.size(), h ^ 0x9e3779b97f4a7c15ULL);
}

uint64_t HashName(std::string_view name) { return XXH3_64bits(name.data(), name.size()); }

}  // namespace kubefold::state
