#include "operator/internal/json_text.h"

#include <simdjson.h>

#include <cstdio>
#include <unordered_map>
#include <vector>

namespace kubefold::internal {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;

// A document is parsed into its parser's buffers; two are alive at once.
simdjson::dom::parser& Parser(int which) {
  thread_local simdjson::dom::parser parsers[2];
  return parsers[which];
}

void AppendPointerToken(std::string& path, std::string_view key) {
  path += '/';
  bool plain = true;  // the usual case: nothing to escape
  for (char c : key) plain &= c != '~' && c != '/';
  if (plain) {
    path += key;
    return;
  }
  for (char c : key) {
    if (c == '~') {
      path += "~0";
    } else if (c == '/') {
      path += "~1";
    } else {
      path += c;
    }
  }
}

bool IsNumber(element_type t) {
  return t == element_type::INT64 || t == element_type::UINT64 || t == element_type::DOUBLE;
}

bool Equal(const element& a, const element& b) {
  const element_type ta = a.type(), tb = b.type();
  if (IsNumber(ta) && IsNumber(tb)) {
    if (ta == tb) {
      switch (ta) {
        case element_type::INT64: return int64_t(a) == int64_t(b);
        case element_type::UINT64: return uint64_t(a) == uint64_t(b);
        default: return double(a) == double(b);
      }
    }
    return simdjson::to_string(a) == simdjson::to_string(b);
  }
  if (ta != tb) return false;
  switch (ta) {
    case element_type::STRING: return std::string_view(a) == std::string_view(b);
    case element_type::BOOL: return bool(a) == bool(b);
    case element_type::NULL_VALUE: return true;
    case element_type::ARRAY: {
      simdjson::dom::array x = a, y = b;
      if (x.size() != y.size()) return false;
      auto i = x.begin(), j = y.begin();
      for (; i != x.end(); ++i, ++j) {
        if (!Equal(*i, *j)) return false;
      }
      return true;
    }
    case element_type::OBJECT: {
      simdjson::dom::object x = a, y = b;
      if (x.size() != y.size()) return false;
      for (auto [k, v] : x) {
        element other;
        if (y.at_key(k).get(other) != simdjson::SUCCESS || !Equal(v, other)) return false;
      }
      return true;
    }
    default: return false;
  }
}

class PatchWriter {
 public:
  explicit PatchWriter(std::string& out) : out_(out) {}

  void Diff(const element& a, const element& b, std::string& path) {
    const element_type ta = a.type(), tb = b.type();
    if (ta == element_type::OBJECT && tb == element_type::OBJECT) {
      DiffObjects(a, b, path);
    } else if (ta == element_type::ARRAY && tb == element_type::ARRAY) {
      DiffArrays(a, b, path);
    } else if (!Equal(a, b)) {
      Op("replace", path, &b);
    }
  }

 private:
  void Op(const char* op, const std::string& path, const element* value) {
    out_ += first_ ? "" : ",";
    first_ = false;
    out_ += "{\"op\":\"";
    out_ += op;
    out_ += "\",\"path\":";
    AppendJsonString(out_, path);
    if (value != nullptr) {
      out_ += ",\"value\":";
      out_ += simdjson::to_string(*value);
    }
    out_ += '}';
  }

  void DiffObjects(const element& a, const element& b, std::string& path) {
    simdjson::dom::object x = a, y = b;
    // Many members: index the target's once instead of a linear search per key.
    std::unordered_map<std::string_view, element> index;
    const bool indexed = y.size() > 32;
    if (indexed) {
      index.reserve(y.size());
      for (auto [k, v] : y) index.emplace(k, v);
    }
    // Objects of one kind usually list their members in the same order: try
    // the target's member at the same position before searching.
    auto next = y.begin();
    auto find = [&](std::string_view k, element& out) {
      if (next != y.end()) {
        const auto here = *next;
        ++next;
        if (here.key == k) {
          out = here.value;
          return true;
        }
      }
      if (indexed) {
        auto it = index.find(k);
        if (it == index.end()) return false;
        out = it->second;
        return true;
      }
      return y.at_key(k).get(out) == simdjson::SUCCESS;
    };
    const size_t base = path.size();
    size_t matched = 0;
    for (auto [k, v] : x) {
      AppendPointerToken(path, k);
      element other;
      if (find(k, other)) {
        ++matched;
        Diff(v, other, path);
      } else {
        Op("remove", path, nullptr);
      }
      path.resize(base);
    }
    if (matched == y.size()) return;  // every target member was met: none added
    for (auto [k, v] : y) {
      element mine;
      if (x.at_key(k).get(mine) == simdjson::SUCCESS) continue;
      AppendPointerToken(path, k);
      Op("add", path, &v);
      path.resize(base);
    }
  }

  void DiffArrays(const element& a, const element& b, std::string& path) {
    simdjson::dom::array x = a, y = b;
    const size_t base = path.size();
    auto i = x.begin(), j = y.begin();
    size_t n = 0;
    for (; i != x.end() && j != y.end(); ++i, ++j, ++n) {
      path += '/';
      path += std::to_string(n);
      Diff(*i, *j, path);
      path.resize(base);
    }
    // Removes from the highest index down, so each index is valid when applied.
    const size_t xs = x.size();
    for (size_t k = xs; k > n; --k) {
      path += '/';
      path += std::to_string(k - 1);
      Op("remove", path, nullptr);
      path.resize(base);
    }
    for (; j != y.end(); ++j) {
      path += "/-";
      const element v = *j;
      Op("add", path, &v);
      path.resize(base);
    }
  }

  std::string& out_;
  bool first_ = true;
};

}  // namespace

Status AppendJsonPatch(std::string& out, std::string_view before, std::string_view after) {
  element a, b;
  if (auto e = Parser(0).parse(before.data(), before.size()).get(a); e != simdjson::SUCCESS) {
    return InvalidArgument(std::string("the old object is not JSON: ") + simdjson::error_message(e));
  }
  if (auto e = Parser(1).parse(after.data(), after.size()).get(b); e != simdjson::SUCCESS) {
    return InvalidArgument(std::string("the new object is not JSON: ") + simdjson::error_message(e));
  }
  out += '[';
  PatchWriter w(out);
  std::string path;
  w.Diff(a, b, path);
  out += ']';
  return Status::Ok();
}

}  // namespace kubefold::internal
