// Label and field selectors as kube-apiserver parses and applies them
// (k8s.io/apimachinery/pkg/labels and pkg/fields).
//
// Label selectors: comma-separated requirements `k`, `!k`, `k=v`, `k==v`,
// `k!=v`, `k in (a,b)`, `k notin (a,b)`, `k>n`, `k<n`. Field selectors:
// `f=v`, `f==v`, `f!=v` over the fields a resource supports.
//
// Thread-safety: selectors are immutable values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::emulator {

using Json = nlohmann::ordered_json;

class LabelSelector {
 public:
  // Parses `text` ("" selects everything). On error returns nullopt and sets
  // `error` to the message a real server puts in its 400.
  static std::optional<LabelSelector> Parse(const std::string& text, std::string* error);
  bool Matches(const Json& object) const;  // reads metadata.labels
  bool Empty() const { return requirements_.empty(); }

 private:
  enum class Op { kExists, kNotExists, kEquals, kNotEquals, kIn, kNotIn, kGreater, kLess };
  struct Requirement {
    std::string key;
    Op op;
    std::vector<std::string> values;
  };
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  // `supported`: the field labels this resource accepts besides
  // metadata.name and metadata.namespace. Unknown labels are an error
  // ("field label not supported: x").
  static std::optional<FieldSelector> Parse(const std::string& text, const std::vector<std::string>& supported,
                                            std::string* error);
  bool Matches(const Json& object) const;
  bool Empty() const { return terms_.empty(); }

 private:
  struct Term {
    std::string field;
    bool equals;
    std::string value;
  };
  std::vector<Term> terms_;
};

// The field labels each built-in kind supports (besides metadata.name and
// metadata.namespace), as the real registries declare them.
std::vector<std::string> SupportedFieldLabels(const std::string& kind);

}  // namespace kubefold::emulator
