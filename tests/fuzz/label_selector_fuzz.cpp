// Label selectors come from FailoverPolicy specs (outside input), and the
// metadata scanner reads stored objects on the reconciler's path. Input:
// "<selector>\n<object JSON>". Checks: parsing never crashes; a parsed
// selector is deterministic (parsing it twice matches alike); and wherever a
// full JSON parse accepts the object, the scanner's labels and annotations
// are exactly the full parse's string-valued ones.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controllers/internal/json_scan.h"
#include "controllers/label_selector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace kubefold::controllers;
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nl = in.find('\n');
  const std::string_view selector = in.substr(0, nl);
  const std::string_view object = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);

  internal::Metadata md;
  const bool scanned = internal::ScanMetadata(object, md);
  auto a = LabelSelector::Parse(selector);
  auto b = LabelSelector::Parse(selector);
  if (a.ok() != b.ok()) std::abort();
  if (a.ok() && a->Matches(md.labels) != b->Matches(md.labels)) std::abort();

  const auto j = nlohmann::json::parse(object, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  if (!scanned) std::abort();  // a valid object must be readable
  Labels labels, annotations;
  if (j.contains("metadata") && j["metadata"].is_object()) {
    const auto& m = j["metadata"];
    for (const char* f : {"labels", "annotations"}) {
      if (!m.contains(f) || !m[f].is_object()) continue;
      auto& dst = std::string_view(f) == "labels" ? labels : annotations;
      for (auto it = m[f].begin(); it != m[f].end(); ++it) {
        if (it.value().is_string()) dst.emplace(it.key(), it.value().get<std::string>());
      }
    }
  }
  if (labels != md.labels || annotations != md.annotations) std::abort();
  return 0;
}
