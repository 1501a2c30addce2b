#include "controllers/label_selector.h"

#include <algorithm>
#include <cctype>

namespace kubefold::controllers {
namespace {

bool IsAlnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// A label value: empty, or ≤ 63 of [A-Za-z0-9._-], alphanumeric at both ends.
bool ValidValue(std::string_view v) {
  if (v.empty()) return true;
  if (v.size() > 63 || !IsAlnum(v.front()) || !IsAlnum(v.back())) return false;
  return std::all_of(v.begin(), v.end(), [](char c) { return IsAlnum(c) || c == '-' || c == '_' || c == '.'; });
}

// A DNS-1123 subdomain (the key's prefix).
bool ValidPrefix(std::string_view p) {
  if (p.empty() || p.size() > 253) return false;
  size_t start = 0;
  for (;;) {
    const size_t dot = p.find('.', start);
    const std::string_view label = p.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!(std::islower(static_cast<unsigned char>(c)) || std::isdigit(static_cast<unsigned char>(c)) || c == '-')) {
        return false;
      }
    }
    if (label.front() == '-' || label.back() == '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool ValidKey(std::string_view k) {
  const size_t slash = k.find('/');
  std::string_view name = k;
  if (slash != std::string_view::npos) {
    if (!ValidPrefix(k.substr(0, slash))) return false;
    name = k.substr(slash + 1);
  }
  return !name.empty() && ValidValue(name);
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<LabelSelector::Requirement> Requirement() {
    SkipSpace();
    LabelSelector::Requirement r;
    bool negated = false;
    if (Peek() == '!') {
      negated = true;
      ++pos_;
      SkipSpace();
    }
    const size_t key_at = pos_;
    r.key = Word();
    if (r.key.empty()) return Error(key_at, "a label key");
    if (!ValidKey(r.key)) return Error(key_at, "a valid label key, not \"" + r.key + "\"");
    SkipSpace();
    if (negated) {
      r.op = LabelSelector::Op::kNotExists;
      return r;
    }
    if (AtEnd() || Peek() == ',') {
      r.op = LabelSelector::Op::kExists;
      return r;
    }
    const size_t op_at = pos_;
    if (Consume("==") || Consume("=")) {
      r.op = LabelSelector::Op::kEquals;
    } else if (Consume("!=")) {
      r.op = LabelSelector::Op::kNotEquals;
    } else {
      const std::string word = Word();
      if (word == "in") {
        r.op = LabelSelector::Op::kIn;
      } else if (word == "notin") {
        r.op = LabelSelector::Op::kNotIn;
      } else {
        return Error(op_at, "=, ==, !=, in or notin");
      }
      SkipSpace();
      if (!Consume("(")) return Error(pos_, "'(' opening the value set");
      for (;;) {
        SkipSpace();
        const size_t v_at = pos_;
        std::string v = Word();
        if (!ValidValue(v)) return Error(v_at, "a valid label value, not \"" + v + "\"");
        r.values.push_back(std::move(v));
        SkipSpace();
        if (Consume(")")) break;
        if (!Consume(",")) return Error(pos_, "',' or ')' in the value set");
      }
      std::sort(r.values.begin(), r.values.end());
      return r;
    }
    SkipSpace();
    const size_t v_at = pos_;
    std::string v = Word();
    if (!ValidValue(v)) return Error(v_at, "a valid label value, not \"" + v + "\"");
    r.values.push_back(std::move(v));
    return r;
  }

  bool AtEnd() const { return pos_ >= s_.size(); }
  bool Consume(std::string_view what) {
    if (s_.substr(pos_, what.size()) != what) return false;
    pos_ += what.size();
    return true;
  }
  void SkipSpace() {
    while (pos_ < s_.size() && s_[pos_] == ' ') ++pos_;
  }
  size_t pos() const { return pos_; }
  Status Error(size_t at, const std::string& expected) const {
    return InvalidArgument("label selector \"" + std::string(s_) + "\": expected " + expected + " at position " +
                           std::to_string(at));
  }

 private:
  char Peek() const { return AtEnd() ? '\0' : s_[pos_]; }
  // Characters up to a delimiter: space , = ! ( ).
  std::string Word() {
    const size_t start = pos_;
    while (pos_ < s_.size() && std::string_view(" ,=!()").find(s_[pos_]) == std::string_view::npos) ++pos_;
    return std::string(s_.substr(start, pos_ - start));
  }

  std::string_view s_;
  size_t pos_ = 0;
};

}  // namespace

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector out;
  Parser p(text);
  p.SkipSpace();
  if (p.AtEnd()) return out;
  for (;;) {
    auto r = p.Requirement();
    if (!r.ok()) return r.status();
    out.requirements_.push_back(std::move(*r));
    p.SkipSpace();
    if (p.AtEnd()) break;
    if (!p.Consume(",")) return p.Error(p.pos(), "',' between requirements");
  }
  return out;
}

bool LabelSelector::Matches(const Labels& labels) const {
  for (const Requirement& r : requirements_) {
    const auto it = labels.find(r.key);
    const bool has = it != labels.end();
    switch (r.op) {
      case Op::kExists:
        if (!has) return false;
        break;
      case Op::kNotExists:
        if (has) return false;
        break;
      case Op::kEquals:
        if (!has || it->second != r.values.front()) return false;
        break;
      case Op::kNotEquals:  // as in Kubernetes: a missing label satisfies !=
        if (has && it->second == r.values.front()) return false;
        break;
      case Op::kIn:
        if (!has || !std::binary_search(r.values.begin(), r.values.end(), it->second)) return false;
        break;
      case Op::kNotIn:
        if (has && std::binary_search(r.values.begin(), r.values.end(), it->second)) return false;
        break;
    }
  }
  return true;
}

}  // namespace kubefold::controllers
