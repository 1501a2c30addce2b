#include "tests/emulator/gojson.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <vector>

namespace kubefold::emulator {
namespace {

// The shortest decimal digits that round-trip `value` (without sign) and the
// exponent of the first digit: 1234.5 -> ("12345", 3).
struct Decimal {
  bool negative = false;
  std::string digits;
  int exp = 0;
};

Decimal Shortest(double value) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof(buf), value, std::chars_format::scientific);
  std::string_view text(buf, static_cast<std::size_t>(res.ptr - buf));
  Decimal d;
  if (!text.empty() && text.front() == '-') {
    d.negative = true;
    text.remove_prefix(1);
  }
  const auto e = text.find('e');
  for (char c : text.substr(0, e)) {
    if (c != '.') d.digits += c;
  }
  d.exp = std::atoi(std::string(text.substr(e + 1)).c_str());
  // "0e+00" has the single digit 0; strip trailing zeros of others.
  while (d.digits.size() > 1 && d.digits.back() == '0') d.digits.pop_back();
  return d;
}

std::string FormatE(const Decimal& d) {
  std::string s = d.negative ? "-" : "";
  s += d.digits[0];
  if (d.digits.size() > 1) s += "." + d.digits.substr(1);
  s += 'e';
  s += d.exp < 0 ? '-' : '+';
  const int a = std::abs(d.exp);
  if (a < 10) s += '0';
  s += std::to_string(a);
  return s;
}

std::string FormatF(const Decimal& d) {
  std::string s = d.negative ? "-" : "";
  const int nd = static_cast<int>(d.digits.size());
  const int dp = d.exp + 1;  // digits before the decimal point
  if (dp <= 0) {
    s += "0." + std::string(static_cast<std::size_t>(-dp), '0') + d.digits;
  } else if (dp >= nd) {
    s += d.digits + std::string(static_cast<std::size_t>(dp - nd), '0');
  } else {
    s += d.digits.substr(0, static_cast<std::size_t>(dp)) + "." + d.digits.substr(static_cast<std::size_t>(dp));
  }
  return s;
}

const char kHex[] = "0123456789abcdef";

// Decodes one UTF-8 sequence at s[i]; returns its length, or 0 if invalid.
std::size_t Utf8Length(std::string_view s, std::size_t i, std::uint32_t* rune) {
  const auto c = static_cast<unsigned char>(s[i]);
  std::size_t n;
  std::uint32_t r;
  if (c < 0x80) {
    *rune = c;
    return 1;
  } else if ((c & 0xe0) == 0xc0) {
    n = 2;
    r = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    n = 3;
    r = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    n = 4;
    r = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    r = (r << 6) | (b & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  if ((n == 2 && r < 0x80) || (n == 3 && r < 0x800) || (n == 4 && r < 0x10000) || r > 0x10ffff ||
      (r >= 0xd800 && r <= 0xdfff)) {
    return 0;
  }
  *rune = r;
  return n;
}

void AppendValue(std::string& out, const Json& v, KeyOrder order) {
  switch (v.type()) {
    case Json::value_t::null:
      out += "null";
      break;
    case Json::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case Json::value_t::number_integer:
      out += std::to_string(v.get<std::int64_t>());
      break;
    case Json::value_t::number_unsigned: {
      const auto u = v.get<std::uint64_t>();
      // A Go server decodes integers beyond int64 as float64.
      if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
        out += GoFloatJson(static_cast<double>(u));
      } else {
        out += std::to_string(u);
      }
      break;
    }
    case Json::value_t::number_float:
      out += GoFloatJson(v.get<double>());
      break;
    case Json::value_t::string:
      AppendGoString(out, v.get_ref<const std::string&>());
      break;
    case Json::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ',';
        first = false;
        AppendValue(out, e, order);
      }
      out += ']';
      break;
    }
    case Json::value_t::object: {
      std::vector<Json::const_iterator> items;
      for (auto it = v.begin(); it != v.end(); ++it) items.push_back(it);
      if (order == KeyOrder::kSorted) {
        std::sort(items.begin(), items.end(), [](const auto& a, const auto& b) { return a.key() < b.key(); });
      }
      out += '{';
      bool first = true;
      for (const auto& it : items) {
        if (!first) out += ',';
        first = false;
        AppendGoString(out, it.key());
        out += ':';
        AppendValue(out, it.value(), order);
      }
      out += '}';
      break;
    }
    default:
      out += "null";  // binary and discarded values do not occur in stored objects
      break;
  }
}

}  // namespace

void AppendGoString(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      switch (c) {
        case '"':
          out += "\\\"";
          break;
        case '\\':
          out += "\\\\";
          break;
        case '\b':
          out += "\\b";
          break;
        case '\f':
          out += "\\f";
          break;
        case '\n':
          out += "\\n";
          break;
        case '\r':
          out += "\\r";
          break;
        case '\t':
          out += "\\t";
          break;
        case '<':
        case '>':
        case '&':
          out += "\\u00";
          out += kHex[c >> 4];
          out += kHex[c & 0xf];
          break;
        default:
          if (c < 0x20) {
            out += "\\u00";
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
          } else {
            out += static_cast<char>(c);
          }
      }
      ++i;
      continue;
    }
    std::uint32_t rune = 0;
    const std::size_t n = Utf8Length(s, i, &rune);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else if (rune == 0x2028 || rune == 0x2029) {
      out += rune == 0x2028 ? "\\u2028" : "\\u2029";
      i += n;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  out += '"';
}

void AppendGoJson(std::string& out, const Json& value, KeyOrder order) { AppendValue(out, value, order); }

std::string GoJson(const Json& value, KeyOrder order) {
  std::string out;
  AppendValue(out, value, order);
  return out;
}

std::string GoFloatJson(double value) {
  if (!std::isfinite(value)) return "null";
  const Decimal d = Shortest(value);
  const double a = std::fabs(value);
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    std::string s = FormatE(d);
    // encoding/json cleans up e-09 to e-9.
    const std::size_t n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') s.erase(n - 2, 1);
    return s;
  }
  return FormatF(d);
}

std::string GoFloatText(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  const Decimal d = Shortest(value);
  // strconv's %g with the shortest precision: %e when the exponent is below
  // -4 or at least 6 (verified against Go: 123456 -> "123456", 1e6 -> "1e+06").
  if (d.exp < -4 || d.exp >= 6) return FormatE(d);
  return FormatF(d);
}

}  // namespace kubefold::emulator
