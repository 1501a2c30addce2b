// AppendJsonPatch (operator/internal/json_text.h): for any two JSON
// documents (the input split at the first NUL byte), the patch must be valid
// JSON and, applied to the first with nlohmann's RFC 6902 implementation,
// give the second. Non-JSON input must be refused without output.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <set>
#include <string>
#include <vector>
#include <string_view>

#include <nlohmann/json.hpp>

#include "operator/internal/json_text.h"

namespace {

// True when some object of `text` repeats a member name (the patch of such
// documents is unspecified: RFC 8259 says names should be unique).
bool HasDuplicateNames(std::string_view text) {
  std::vector<std::set<std::string>> open;
  bool duplicate = false;
  (void)nlohmann::json::parse(
      text,
      [&](int, nlohmann::json::parse_event_t event, nlohmann::json& parsed) {
        if (event == nlohmann::json::parse_event_t::object_start) open.emplace_back();
        if (event == nlohmann::json::parse_event_t::object_end && !open.empty()) open.pop_back();
        if (event == nlohmann::json::parse_event_t::key && !open.empty() &&
            !open.back().insert(parsed.get<std::string>()).second) {
          duplicate = true;
        }
        return true;
      },
      false);
  return duplicate;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  if (nul == std::string_view::npos) return 0;
  const std::string_view before = in.substr(0, nul), after = in.substr(nul + 1);
  const auto a = nlohmann::json::parse(before, nullptr, false);
  const auto b = nlohmann::json::parse(after, nullptr, false);
  std::string out;
  const kubefold::Status s = kubefold::internal::AppendJsonPatch(out, before, after);
  if (!s.ok()) {
    if (!out.empty()) std::abort();  // refused, yet wrote something
    return 0;
  }
  if (a.is_discarded() || b.is_discarded()) return 0;  // simdjson accepts what nlohmann refuses (e.g. deep nesting)
  if (HasDuplicateNames(before) || HasDuplicateNames(after)) return 0;
  const auto patch = nlohmann::json::parse(out, nullptr, false);
  if (patch.is_discarded() || !patch.is_array()) std::abort();
  nlohmann::json patched;
  try {
    patched = a.patch(patch);
  } catch (const nlohmann::json::exception&) {
    std::abort();  // a patch that does not apply
  }
  if (patched != b) std::abort();
  return 0;
}
