// JSONPath templates as k8s.io/client-go/util/jsonpath parses and evaluates
// them: what CustomResourceDefinition printer columns (additionalPrinterColumns
// jsonPath, wrapped in {} by the server) and `kubectl -o jsonpath` use.
//
// Supported, with client-go's semantics: fields (.a.b, escaped dots .a\.b),
// ['key'], array index and slices ([0], [-1], [1:3], [::2]), [*] and .*,
// unions ([0,2]), recursive descent (..name), filters [?(@.f=="x")] with
// == != < > <= >= on strings, integers, floats and booleans (mixing kinds is
// an error, as in Go) and [?(@.f)] (exists), quoted text, and several
// actions plus literal text in one template. `range`/`end` are not
// supported (an evaluation error). Where Go iterates a map in random order
// (wildcards, recursive descent), object order is used.
//
// Missing fields: with AllowMissingKeys(true) (the CRD printer's setting) a
// field that is absent gives no value; without it, an error. A filter skips
// elements whose left side is missing either way; a null in the path ends
// that branch without a value.
//
// Thread-safety: a JsonPath is immutable after Parse and may be evaluated
// from any thread.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::emulator {

using Json = nlohmann::ordered_json;

class JsonPath {
 public:
  // Parses a template such as "{.status.conditions[?(@.type==\"Ready\")].status}".
  // On a syntax error returns nullopt and, if `error` is set, client-go's
  // message ("unclosed action", "invalid array index x", ...).
  static std::optional<JsonPath> Parse(std::string_view text, std::string* error);

  // Absent fields give no value instead of an error (default: false).
  JsonPath& AllowMissingKeys(bool allow) {
    allow_missing_ = allow;
    return *this;
  }

  // What each top-level part of the template (an action or literal text)
  // selects in `data`, in order (Go's FindResults). On an evaluation error
  // (an index out of range, comparing a string with a number, a missing
  // field when missing keys are not allowed, ...) returns nullopt and sets
  // `error`. Copies the selected values; O(size of data) per wildcard.
  std::optional<std::vector<std::vector<Json>>> FindResults(const Json& data, std::string* error) const;

  // The text of `values` as the CRD table convertor prints a string column
  // (Go's PrintResults): separated by single spaces; objects and arrays as
  // compact JSON with sorted keys; strings as they are; numbers and booleans
  // as fmt.Sprint writes them; null as "<no value>".
  static std::string PrintResults(const std::vector<Json>& values);

  struct Node;

 private:
  explicit JsonPath(std::shared_ptr<const Node> root) : root_(std::move(root)) {}

  std::shared_ptr<const Node> root_;
  bool allow_missing_ = false;
};

}  // namespace kubefold::emulator
