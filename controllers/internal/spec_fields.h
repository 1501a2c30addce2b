// SpecFields: typed reads of a custom resource's fields that never throw.
//
// The API server validates kubefold's CRs against their structural schemas,
// but kubefold does not rely on it (a CRD installed without validation, an
// older schema, a hand-edited object): a field of the wrong type is an error
// naming the field and the type wanted, reported on the object, never an
// exception in a controller thread. The first error is kept; later reads
// return their defaults.
//
//   SpecFields f("spec");
//   const Json& health = f.Object(spec, "health");
//   int period = f.Int(health, "periodSeconds", 10);  // "spec.health.periodSeconds: ..."
//   if (!f.error().empty()) ...
//
// Thread-safety: one object per parse.
#pragma once

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::controllers::internal {

class SpecFields {
 public:
  using Json = nlohmann::json;

  // `root` names the object read first (e.g. "spec"); Object() extends the
  // path for reads inside the returned object.
  explicit SpecFields(std::string root) : root_(std::move(root)) {}

  const std::string& error() const { return error_; }

  // obj[key] when it is an object; an empty object when absent or null; an
  // error otherwise. `path` is where obj is ("" for the root).
  const Json& Object(const Json& obj, const char* key, const std::string& path = "") {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Empty();
    if (!v->is_object()) return Wrong(path, key, "an object", *v, Empty());
    return *v;
  }
  std::string String(const Json& obj, const char* key, const std::string& def, const std::string& path = "") {
    const Json* v = Find(obj, key);
    if (v == nullptr) return def;
    if (!v->is_string()) return Wrong(path, key, "a string", *v, def);
    return v->get<std::string>();
  }
  int64_t Int(const Json& obj, const char* key, int64_t def, const std::string& path = "") {
    const Json* v = Find(obj, key);
    if (v == nullptr) return def;
    if (!v->is_number_integer()) return Wrong(path, key, "an integer", *v, def);
    return v->get<int64_t>();
  }
  // An integer that fits an int; larger or smaller ones are an error.
  int Int32(const Json& obj, const char* key, int def, const std::string& path = "") {
    const int64_t v = Int(obj, key, def, path);
    if (v < std::numeric_limits<int>::min() || v > std::numeric_limits<int>::max()) {
      return Wrong(path, key, "an integer within 32 bits", obj.at(key), def);
    }
    return static_cast<int>(v);
  }
  std::vector<std::string> Strings(const Json& obj, const char* key, std::vector<std::string> def,
                                   const std::string& path = "") {
    const Json* v = Find(obj, key);
    if (v == nullptr) return def;
    if (!v->is_array()) return Wrong(path, key, "a list of strings", *v, std::move(def));
    std::vector<std::string> out;
    out.reserve(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        return Wrong(path, std::string(key) + "[" + std::to_string(i) + "]", "a string", (*v)[i], std::move(def));
      }
      out.push_back((*v)[i].get<std::string>());
    }
    return out;
  }

 private:
  static const Json& Empty() {
    static const Json empty = Json::object();
    return empty;
  }
  static const Json* Find(const Json& obj, const char* key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    return it == obj.end() || it->is_null() ? nullptr : &*it;
  }
  static const char* TypeName(const Json& v) {
    switch (v.type()) {
      case Json::value_t::object: return "an object";
      case Json::value_t::array: return "a list";
      case Json::value_t::string: return "a string";
      case Json::value_t::boolean: return "a boolean";
      case Json::value_t::number_float: return "a number with a fraction";
      case Json::value_t::number_integer:
      case Json::value_t::number_unsigned: return "an integer";
      default: return "null";
    }
  }
  template <class T>
  T Wrong(const std::string& path, const std::string& key, const char* want, const Json& got, T def) {
    if (error_.empty()) {
      error_ = root_ + (path.empty() ? "" : "." + path) + "." + key + ": want " + want + ", got " + TypeName(got);
    }
    return def;
  }
  const Json& Wrong(const std::string& path, const std::string& key, const char* want, const Json& got,
                    const Json& def) {
    return Wrong<const Json&>(path, key, want, got, def);
  }

  std::string root_;
  std::string error_;
};

}  // namespace kubefold::controllers::internal
