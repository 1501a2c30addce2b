// CRD printer-column jsonPath values are outside input to kube-emulator.
// Input: "<template>\n<JSON document>". Parsing and evaluating must never
// crash, hang or exhaust the stack; evaluation is deterministic.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tests/emulator/jsonpath.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using kubefold::emulator::Json;
  using kubefold::emulator::JsonPath;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view tmpl = in.substr(0, nl);
  std::string error;
  auto path = JsonPath::Parse(tmpl, &error);
  if (!path) {
    if (error.empty()) std::abort();  // a refusal always says why
    return 0;
  }
  path->AllowMissingKeys(size % 2 == 0);
  const Json doc = nl == std::string_view::npos ? Json::object() : Json::parse(in.substr(nl + 1), nullptr, false);
  if (doc.is_discarded()) return 0;
  std::string e1, e2;
  auto a = path->FindResults(doc, &e1);
  auto b = path->FindResults(doc, &e2);
  if (a.has_value() != b.has_value() || e1 != e2) std::abort();
  if (a) {
    for (size_t i = 0; i < a->size(); ++i) {
      if (JsonPath::PrintResults((*a)[i]) != JsonPath::PrintResults((*b)[i])) std::abort();
    }
  }
  return 0;
}
