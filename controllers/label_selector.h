// Label selectors in their string form, as kubectl and the API server parse
// them (k8s.io/apimachinery/pkg/labels): comma-separated requirements, each
//
//   key=value  key==value  key!=value      equality
//   key in (v1,v2)  key notin (v1,v2)      sets
//   key  !key                              existence
//
// all of which must hold. "" selects everything. Keys are optionally
// prefixed qualified names (example.com/name), values at most 63 characters
// of [A-Za-z0-9._-] beginning and ending alphanumeric, as in Kubernetes.
//
// Thread-safety: a parsed selector is an immutable value.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "state/status.h"

namespace kubefold::controllers {

using Labels = std::map<std::string, std::string, std::less<>>;

class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kNotExists };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;
  };

  LabelSelector() = default;  // selects everything

  // kInvalidArgument naming the position and what is wrong.
  static Result<LabelSelector> Parse(std::string_view text);

  bool Matches(const Labels& labels) const;
  bool empty() const { return requirements_.empty(); }
  const std::vector<Requirement>& requirements() const { return requirements_; }

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace kubefold::controllers
