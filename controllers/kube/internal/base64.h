// Base64 as kubeconfig's `*-data` fields use it: Go's base64.StdEncoding on
// a JSON []byte (standard alphabet, '=' padding required, '\r' and '\n'
// ignored anywhere, non-zero trailing bits tolerated).
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kubefold::kube::internal {

// Decoded bytes, or nullopt if `text` is not valid. O(n), allocates.
std::optional<std::string> Base64Decode(std::string_view text);

// Standard alphabet with padding. O(n), allocates.
std::string Base64Encode(std::string_view bytes);

}  // namespace kubefold::kube::internal
