// Text that came from outside (an error body, a proxy's HTML page, a field
// cut for a message) made safe to quote in a log line, a condition or an
// Event. Everything downstream that writes JSON with nlohmann::json's
// dump() in its default mode throws type_error 316 on invalid UTF-8, so
// such text must be valid UTF-8 before it leaves controllers/kube.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace kubefold::kube::internal {

// `text` as valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
// nothing above U+10FFFF): each byte that does not begin a valid sequence
// becomes U+FFFD. With `max_bytes`, the result is at most that many bytes
// (replacements included), cut before a character, never inside one.
// Allocates; O(size).
std::string ValidUtf8(std::string_view text, std::size_t max_bytes = std::string_view::npos);

}  // namespace kubefold::kube::internal
