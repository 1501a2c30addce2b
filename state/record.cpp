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
constexpr size_t kMaxVarintBytes = 10;

size_t PutUvarint(uint64_t z, char* out) {
  size_t n = 0;
  while (z >= 0x80) {
    out[n++] = static_cast<char>(z | 0x80);
    z >>= 7;
  }
  out[n++] = static_cast<char>(z);
  return n;
}

uint64_t GetUvarint(const char*& p) {
  uint64_t z = 0;
  for (unsigned shift = 0;; shift += 7) {
    uint64_t byte = static_cast<unsigned char>(*p++);
    z |= (byte & 0x7f) << shift;
    if (byte < 0x80) break;
  }
  return z;
}

// Zigzag varint: small magnitudes of either sign take one byte.
size_t PutVarint(int64_t v, char* out) {
  return PutUvarint((static_cast<uint64_t>(v) << 1) ^ static_cast<uint64_t>(v >> 63), out);
}

int64_t GetVarint(const char*& p) {
  const uint64_t z = GetUvarint(p);
  return static_cast<int64_t>(z >> 1) ^ -static_cast<int64_t>(z & 1);
}

const char* SkipVarints(const char* p, int n) {
  while (n > 0) n -= static_cast<unsigned char>(*p++) < 0x80;
  return p;
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
  char id[kMaxVarintBytes];
  size_t id_len = 0;
  if (o.compress_with != nullptr) {
    id_len = PutUvarint(o.compress_with->id(), id);
    o.compress_with->Compress(o.object_json, frame);
    if (id_len + frame.size() >= o.object_json.size()) frame.clear();  // no gain
  }
  const bool compressed = !frame.empty();
  if (!compressed) id_len = 0;
  const std::string_view stored = compressed ? std::string_view(frame) : std::string_view(o.object_json);
  char length[kMaxVarintBytes];
  const size_t length_len = PutUvarint(uint64_t{stored.size()} << 1 | (compressed ? 1 : 0), length);
  const size_t bytes = kHeaderBytes + 1 + key_len + length_len + id_len + summary_len + stored.size();
  Record* r = new (internal::RecordHeap::Alloc(bytes)) Record();
  r->set_tag(static_cast<unsigned>(o.key.group.size() | o.key.kind.size() << 8));
  char* p = reinterpret_cast<char*>(r) + kHeaderBytes;
  *p++ = static_cast<char>(static_cast<unsigned char>(o.key.name.size()));
  for (std::string_view part : {std::string_view(o.key.group), std::string_view(o.key.kind),
                                std::string_view(o.key.name), std::string_view(summary, summary_len),
                                std::string_view(length, length_len), std::string_view(id, id_len), stored}) {
    if (!part.empty()) std::memcpy(p, part.data(), part.size());
    p += part.size();
  }
  r->content_hash_ = HashContent(o.object_json, o.summary);
  return r;
}

void Record::Destroy(Record* r) {
  const size_t bytes = r->ByteSize();
  r->~Record();
  internal::RecordHeap::Free(r, bytes);
}

Record::Layout Record::Parts() const {
  Layout l;
  const char* p = SkipVarints(tail(), 5);
  l.summary = {tail(), static_cast<size_t>(p - tail())};
  const uint64_t length = GetUvarint(p);
  l.compressed = (length & 1) != 0;
  if (l.compressed) l.dictionary_id = static_cast<uint32_t>(GetUvarint(p));
  l.stored = {p, static_cast<size_t>(length >> 1)};
  return l;
}

size_t Record::ByteSize() const {
  const std::string_view stored = Parts().stored;
  return static_cast<size_t>(stored.data() + stored.size() - reinterpret_cast<const char*>(this));
}

WorkloadSummary Record::summary() const {
  const char* p = tail();
  WorkloadSummary s;
  s.generation = GetVarint(p);
  s.observed_generation = GetVarint(p);
  s.desired_replicas = static_cast<int32_t>(GetVarint(p));
  s.ready_replicas = static_cast<int32_t>(GetVarint(p));
  s.available_replicas = static_cast<int32_t>(GetVarint(p));
  return s;
}

const ObjectDictionary* Record::dictionary(const Layout& parts) const {
  return parts.compressed ? ObjectDictionary::ById(parts.dictionary_id) : nullptr;
}

void Record::AppendObjectJson(std::string& out) const {
  const Layout parts = Parts();
  if (!parts.compressed) {
    out.append(parts.stored);
    return;
  }
  // The frame was made by Create from this dictionary: failing to find it or
  // to read the frame back means the record's memory was overwritten.
  const ObjectDictionary* d = dictionary(parts);
  if (d == nullptr || !d->Decompress(parts.stored, out)) {
    std::fprintf(stderr, "kubefold: record %.*s: its compressed object does not decompress\n",
                 static_cast<int>(name_len()), name().data());
    std::abort();
  }
}

std::string Record::object_json() const {
  std::string out;
  AppendObjectJson(out);
  return out;
}

bool Record::SameContent(const Record& other) const {
  if (content_hash_ != other.content_hash_) return false;
  const Layout a = Parts();
  const Layout b = other.Parts();
  // The varint encoding is canonical: equal summaries have equal bytes.
  if (a.summary != b.summary) return false;
  // One dictionary compresses equal objects to equal frames.
  if (a.compressed == b.compressed && a.dictionary_id == b.dictionary_id) return a.stored == b.stored;
  return object_json() == other.object_json();
}

uint64_t HashKey(WorkloadKeyView key) {
  uint64_t h = XXH3_64bits(key.group.data(), key.group.size());
  h = XXH3_64bits_withSeed(key.kind.data(), key.kind.size(), h);
  return XXH3_64bits_withSeed(key.name.data(), key.name.size(), h ^ 0x9e3779b97f4a7c15ULL);
}

uint64_t HashName(std::string_view name) { return XXH3_64bits(name.data(), name.size()); }

}  // namespace kubefold::state
