// libFuzzer target for VersionVector::Parse, which reads outside input (the
// HTTP API's ?vector= parameter). Checks more than "no crash": whatever
// parses must print to a JSON form that parses back to an equal vector, and
// every rejection must carry kInvalidArgument with a message.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "state/version_vector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto parsed = kubefold::state::VersionVector::Parse(text);
  if (!parsed.ok()) {
    if (parsed.status().code() != kubefold::StatusCode::kInvalidArgument || parsed.status().message().empty()) {
      std::abort();
    }
    return 0;
  }
  auto again = kubefold::state::VersionVector::Parse(parsed->ToJson());
  if (!again.ok() || !(*again == *parsed) || again->ToJson() != parsed->ToJson()) std::abort();
  // Comparison and merge with itself are identities.
  if (parsed->Compare(*parsed) != kubefold::state::Ordering::kEqual) std::abort();
  kubefold::state::VersionVector merged = *parsed;
  merged.Merge(*again);
  if (!(merged == *parsed)) std::abort();
  return 0;
}
