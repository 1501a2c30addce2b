#include "controllers/kube/internal/utf8.h"

#include <algorithm>

namespace kubefold::kube::internal {

namespace {

constexpr std::string_view kReplacement = "\xef\xbf\xbd";  // U+FFFD

bool Continuation(unsigned char c) { return (c & 0xc0) == 0x80; }

// The length of the valid UTF-8 sequence at the start of `s`, or 0.
std::size_t SequenceLength(std::string_view s) {
  const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  std::size_t n;
  unsigned char lo = 0x80, hi = 0xbf;  // the bounds of the second byte
  if (c >= 0xc2 && c <= 0xdf) {
    n = 2;
  } else if (c >= 0xe0 && c <= 0xef) {
    n = 3;
    if (c == 0xe0) lo = 0xa0;  // overlong
    if (c == 0xed) hi = 0x9f;  // UTF-16 surrogates
  } else if (c >= 0xf0 && c <= 0xf4) {
    n = 4;
    if (c == 0xf0) lo = 0x90;  // overlong
    if (c == 0xf4) hi = 0x8f;  // above U+10FFFF
  } else {
    return 0;  // a continuation byte, C0/C1 (overlong) or F5..FF
  }
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (std::size_t i = 2; i < n; ++i) {
    if (!Continuation(b(i))) return 0;
  }
  return n;
}

}  // namespace

std::string ValidUtf8(std::string_view text, std::size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes));
  std::size_t start = 0;  // of the run of valid bytes not yet copied
  std::size_t i = 0;
  while (i < text.size()) {
    const std::size_t n = SequenceLength(text.substr(i));
    const std::size_t length = out.size() + (i - start);  // of the result so far
    if (n > 0) {
      if (length + n > max_bytes) break;  // a character the cut would split: left out
      i += n;
      continue;
    }
    if (length + kReplacement.size() > max_bytes) break;
    out.append(text.data() + start, i - start);
    out += kReplacement;
    start = ++i;
  }
  out.append(text.data() + start, i - start);
  return out;
}

}  // namespace kubefold::kube::internal
