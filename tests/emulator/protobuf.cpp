#include "tests/emulator/protobuf.h"

#include <cstdint>
#include <vector>

namespace kubefold::emulator {
namespace {

// One field of a message: its number and, for length-delimited fields, the
// bytes (other wire types are skipped: no field read here uses them).
struct FieldValue {
  std::uint32_t number = 0;
  int wire_type = 0;
  std::string_view bytes;
};

bool ReadVarint(std::string_view& in, std::uint64_t* out) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (in.empty()) return false;
    const auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if ((b & 0x80) == 0) {
      *out = v;
      return true;
    }
  }
  return false;
}

// Splits a message into its fields; false if it is malformed.
bool Fields(std::string_view in, std::vector<FieldValue>* out) {
  while (!in.empty()) {
    std::uint64_t key = 0;
    if (!ReadVarint(in, &key) || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return false;
    FieldValue f;
    f.number = static_cast<std::uint32_t>(key >> 3);
    f.wire_type = static_cast<int>(key & 7);
    std::uint64_t n = 0;
    switch (f.wire_type) {
      case 0:
        if (!ReadVarint(in, &n)) return false;
        break;
      case 1:
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        break;
      case 2:
        if (!ReadVarint(in, &n) || n > in.size()) return false;
        f.bytes = in.substr(0, n);
        in.remove_prefix(n);
        break;
      case 5:
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        break;
      default:
        return false;
    }
    out->push_back(f);
  }
  return true;
}

// Reads a message; the last value of a singular field wins, as in proto2.
class Message {
 public:
  bool Parse(std::string_view in) { return Fields(in, &fields_); }
  std::string String(std::uint32_t n) const {
    std::string v;
    for (const auto& f : fields_) {
      if (f.number == n && f.wire_type == 2) v = std::string(f.bytes);
    }
    return v;
  }
  std::vector<std::string_view> Repeated(std::uint32_t n) const {
    std::vector<std::string_view> v;
    for (const auto& f : fields_) {
      if (f.number == n && f.wire_type == 2) v.push_back(f.bytes);
    }
    return v;
  }
  const FieldValue* Find(std::uint32_t n) const {
    const FieldValue* found = nullptr;
    for (const auto& f : fields_) {
      if (f.number == n && f.wire_type == 2) found = &f;
    }
    return found;
  }

 private:
  std::vector<FieldValue> fields_;
};

void SetString(Json& into, const char* key, const std::string& value) {
  if (!value.empty()) into[key] = value;
}

bool StringMap(const Message& m, std::uint32_t n, Json* out) {
  for (std::string_view entry : m.Repeated(n)) {
    Message e;
    if (!e.Parse(entry)) return false;
    (*out)[e.String(1)] = e.String(2);
  }
  return true;
}

bool ObjectMeta(std::string_view in, Json* out) {
  Message m;
  if (!m.Parse(in)) return false;
  *out = Json::object();
  SetString(*out, "name", m.String(1));
  SetString(*out, "generateName", m.String(2));
  SetString(*out, "namespace", m.String(3));
  SetString(*out, "uid", m.String(5));
  SetString(*out, "resourceVersion", m.String(6));
  Json labels = Json::object(), annotations = Json::object();
  if (!StringMap(m, 11, &labels) || !StringMap(m, 12, &annotations)) return false;
  if (!labels.empty()) (*out)["labels"] = labels;
  if (!annotations.empty()) (*out)["annotations"] = annotations;
  return true;
}

// SubjectAccessReviewSpec (SelfSubjectAccessReviewSpec is its first two
// fields).
bool AccessReviewSpec(std::string_view in, bool self, Json* out) {
  Message m;
  if (!m.Parse(in)) return false;
  *out = Json::object();
  if (const FieldValue* f = m.Find(1)) {
    Message ra;
    if (!ra.Parse(f->bytes)) return false;
    Json j = Json::object();
    const char* const keys[] = {"namespace", "verb", "group", "version", "resource", "subresource", "name"};
    for (std::uint32_t i = 0; i < 7; ++i) SetString(j, keys[i], ra.String(i + 1));
    (*out)["resourceAttributes"] = j;
  }
  if (const FieldValue* f = m.Find(2)) {
    Message nra;
    if (!nra.Parse(f->bytes)) return false;
    Json j = Json::object();
    SetString(j, "path", nra.String(1));
    SetString(j, "verb", nra.String(2));
    (*out)["nonResourceAttributes"] = j;
  }
  if (self) return true;
  SetString(*out, "user", m.String(3));
  Json groups = Json::array();
  for (std::string_view g : m.Repeated(4)) groups.push_back(std::string(g));
  if (!groups.empty()) (*out)["groups"] = groups;
  Json extra = Json::object();
  for (std::string_view entry : m.Repeated(5)) {
    Message e, items;
    if (!e.Parse(entry)) return false;
    const FieldValue* value = e.Find(2);
    if (value != nullptr && !items.Parse(value->bytes)) return false;
    Json list = Json::array();
    for (std::string_view item : items.Repeated(1)) list.push_back(std::string(item));
    extra[e.String(1)] = list;
  }
  if (!extra.empty()) (*out)["extra"] = extra;
  SetString(*out, "uid", m.String(6));
  return true;
}

}  // namespace

std::optional<Json> ReviewFromProtobuf(std::string_view body, std::string* error) {
  static constexpr std::string_view kMagic("k8s\0", 4);
  if (!body.starts_with(kMagic)) {
    *error = "provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]";
    return std::nullopt;
  }
  Message unknown, type_meta, object;
  const FieldValue* tm = nullptr;
  const FieldValue* raw = nullptr;
  if (!unknown.Parse(body.substr(kMagic.size())) || (tm = unknown.Find(1)) == nullptr ||
      !type_meta.Parse(tm->bytes) || ((raw = unknown.Find(2)) != nullptr && !object.Parse(raw->bytes))) {
    *error = "proto: illegal wireType or truncated message";
    return std::nullopt;
  }
  const std::string kind = type_meta.String(2);
  Json out = Json::object();
  out["kind"] = kind;
  out["apiVersion"] = type_meta.String(1);
  if (const FieldValue* f = object.Find(1)) {
    Json meta;
    if (!ObjectMeta(f->bytes, &meta)) {
      *error = "proto: illegal wireType or truncated message";
      return std::nullopt;
    }
    out["metadata"] = meta;
  }
  const FieldValue* spec = object.Find(2);
  Json spec_json = Json::object();
  bool ok = true;
  if (kind == "SelfSubjectAccessReview" || kind == "SubjectAccessReview") {
    if (spec != nullptr) ok = AccessReviewSpec(spec->bytes, kind == "SelfSubjectAccessReview", &spec_json);
    out["spec"] = spec_json;
  } else if (kind == "TokenReview") {
    Message m;
    if (spec != nullptr) ok = m.Parse(spec->bytes);
    SetString(spec_json, "token", m.String(1));
    Json audiences = Json::array();
    for (std::string_view a : m.Repeated(2)) audiences.push_back(std::string(a));
    if (!audiences.empty()) spec_json["audiences"] = audiences;
    out["spec"] = spec_json;
  } else if (kind != "SelfSubjectReview") {
    *error = "no kind \"" + kind + "\" is registered for the protobuf reader of this emulator";
    return std::nullopt;
  }
  if (!ok) {
    *error = "proto: illegal wireType or truncated message";
    return std::nullopt;
  }
  return out;
}

}  // namespace kubefold::emulator
