#include "state/record.h"

#include <cstdlib>
#include <cstring>
#include <new>

static_assert(sizeof(kubefold::state::Record) == 64, "record header grew");

#include <xxhash.h>

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

Record* Record::Create(const WorkloadObject& o) {
  size_t payload = o.key.group.size() + o.key.kind.size() + o.key.name.size() + o.object_json.size();
  size_t bytes = sizeof(Record) + payload;  // data_[2] wastes two bytes; offsetof is not allowed here
  void* mem = std::malloc(bytes);
  if (mem == nullptr) throw std::bad_alloc();
  Record* r = new (mem) Record();
  r->group_len_ = static_cast<uint16_t>(o.key.group.size());
  r->kind_len_ = static_cast<uint16_t>(o.key.kind.size());
  r->name_len_ = static_cast<uint16_t>(o.key.name.size());
  r->json_len_ = static_cast<uint32_t>(o.object_json.size());
  r->generation_ = o.summary.generation;
  r->observed_generation_ = o.summary.observed_generation;
  r->desired_ = o.summary.desired_replicas;
  r->ready_ = o.summary.ready_replicas;
  r->available_ = o.summary.available_replicas;
  char* p = r->data_;
  std::memcpy(p, o.key.group.data(), o.key.group.size());
  p += o.key.group.size();
  std::memcpy(p, o.key.kind.data(), o.key.kind.size());
  p += o.key.kind.size();
  std::memcpy(p, o.key.name.data(), o.key.name.size());
  p += o.key.name.size();
  std::memcpy(p, o.object_json.data(), o.object_json.size());
  r->content_hash_ = HashContent(o.object_json, o.summary);
  return r;
}

void Record::Destroy(Record* r) {
  r->~Record();
  std::free(r);
}

bool Record::SameContent(const Record& other) const {
  return content_hash_ == other.content_hash_ && summary() == other.summary() &&
         object_json() == other.object_json();
}

uint64_t HashKey(WorkloadKeyView key) {
  uint64_t h = XXH3_64bits(key.group.data(), key.group.size());
  h = XXH3_64bits_withSeed(key.kind.data(), key.kind.size(), h);
  return XXH3_64bits_withSeed(key.name.data(), key.name.size(), h ^ 0x9e3779b97f4a7c15ULL);
}

uint64_t HashName(std::string_view name) { return XXH3_64bits(name.data(), name.size()); }

}  // namespace kubefold::state
