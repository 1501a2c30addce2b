// JSON string literals written by hand (watch events re-encoded after
// pruning, the query API's framing and patches).
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

namespace kubefold::kube::internal {

// Appends `s` as a JSON string literal (quotes included): `"`, `\` and
// control characters escaped (\n \r \t \b \f, else \u00XX); other bytes are
// copied as they are (the input is UTF-8). Runs of plain bytes are copied
// at once. O(size).
void AppendJsonString(std::string& out, std::string_view s);

}  // namespace kubefold::kube::internal
