#include "controllers/internal/json_scan.h"

#include <nlohmann/json.hpp>

namespace kubefold::controllers::internal {
namespace {

class Scanner {
 public:
  explicit Scanner(std::string_view s) : s_(s) {}

  bool Eat(char c) {
    SkipSpace();
    if (p_ < s_.size() && s_[p_] == c) {
      ++p_;
      return true;
    }
    return false;
  }
  // A string without escapes into `out`; false on an escape (the caller
  // falls back to a full parse) or malformed input.
  bool String(std::string_view& out) {
    SkipSpace();
    if (p_ >= s_.size() || s_[p_] != '"') return false;
    const size_t start = ++p_;
    while (p_ < s_.size() && s_[p_] != '"') {
      if (s_[p_] == '\\') return false;
      ++p_;
    }
    if (p_ >= s_.size()) return false;
    out = s_.substr(start, p_ - start);
    ++p_;
    return true;
  }
  // Skips one value of any type.
  bool Skip() {
    SkipSpace();
    if (p_ >= s_.size()) return false;
    const char c = s_[p_];
    if (c == '"') {
      ++p_;
      while (p_ < s_.size() && s_[p_] != '"') p_ += s_[p_] == '\\' ? 2 : 1;
      if (p_ >= s_.size()) return false;
      ++p_;
      return true;
    }
    if (c == '{' || c == '[') {
      int depth = 0;
      while (p_ < s_.size()) {
        const char d = s_[p_];
        if (d == '"') {
          if (!Skip()) return false;
          continue;
        }
        if (d == '{' || d == '[') ++depth;
        if (d == '}' || d == ']') {
          if (--depth == 0) {
            ++p_;
            return true;
          }
        }
        ++p_;
      }
      return false;
    }
    while (p_ < s_.size() && s_[p_] != ',' && s_[p_] != '}' && s_[p_] != ']') ++p_;
    return true;
  }
  bool StringMap(std::map<std::string, std::string, std::less<>>& out) {
    if (!Eat('{')) return false;
    if (Eat('}')) return true;
    do {
      std::string_view k, v;
      if (!String(k) || !Eat(':') || !String(v)) return false;
      out.insert_or_assign(std::string(k), std::string(v));  // the last of duplicates wins, as in a full parse
    } while (Eat(','));
    return Eat('}');
  }

 private:
  void SkipSpace() {
    while (p_ < s_.size() && (s_[p_] == ' ' || s_[p_] == '\n' || s_[p_] == '\t' || s_[p_] == '\r')) ++p_;
  }
  std::string_view s_;
  size_t p_ = 0;
};

bool Fast(std::string_view json, Metadata& out, bool unique_top_level) {
  Scanner sc(json);
  if (!sc.Eat('{')) return false;
  if (sc.Eat('}')) return true;
  do {
    std::string_view key;
    if (!sc.String(key) || !sc.Eat(':')) return false;
    if (key != "metadata") {
      if (!sc.Skip()) return false;
      continue;
    }
    out = {};  // a repeated "metadata": the last one counts
    if (!sc.Eat('{')) return false;
    if (sc.Eat('}')) continue;
    do {
      std::string_view mk;
      if (!sc.String(mk) || !sc.Eat(':')) return false;
      if (mk == "labels") {
        out.labels.clear();
        if (!sc.StringMap(out.labels)) return false;
      } else if (mk == "annotations") {
        out.annotations.clear();
        if (!sc.StringMap(out.annotations)) return false;
      } else if (!sc.Skip()) {
        return false;
      }
    } while (sc.Eat(','));
    if (!sc.Eat('}')) return false;
    if (unique_top_level) return true;  // nothing after it can change the answer
  } while (sc.Eat(','));
  return sc.Eat('}');
}

}  // namespace

bool ScanMetadata(std::string_view json, Metadata& out, bool unique_top_level) {
  out = {};
  if (Fast(json, out, unique_top_level)) return true;
  out = {};
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  if (!j.contains("metadata") || !j["metadata"].is_object()) return true;
  const auto& m = j["metadata"];
  for (const char* field : {"labels", "annotations"}) {
    if (!m.contains(field) || !m[field].is_object()) continue;
    auto& dst = std::string_view(field) == "labels" ? out.labels : out.annotations;
    for (auto it = m[field].begin(); it != m[field].end(); ++it) {
      if (it.value().is_string()) dst.emplace(it.key(), it.value().get<std::string>());
    }
  }
  return true;
}

}  // namespace kubefold::controllers::internal
