// Implementation notes. The file follows the structure of the Go code it
// reproduces, section by section:
//   1. Go formatting helpers (%v, %q, json.Marshal) for messages and keys.
//   2. Field paths and sets (structured-merge-diff fieldpath).
//   3. The schema of the built-in kinds (list types, merge keys, atomic
//      structs, the zero values of non-pointer structs).
//   4. Typed walks over JSON (structured-merge-diff typed): ToFieldSet,
//      Compare, Merge, RemoveItems, validation.
//   5. Managed fields (apiserver managedfields): decode, encode, order.
//   6. Server-side apply and update tracking (merge.Updater and the
//      apiserver's field-manager chain).
//   7. Merge patch and JSON patch (evanphx/json-patch v4).
//   8. Strategic merge patch (apimachinery strategicpatch).
//   9. YAML (sigs.k8s.io/yaml over go-yaml v2).
#include "tests/emulator/patch.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <utility>

#include <yaml-cpp/yaml.h>

namespace kubefold::emulator {
namespace {

// ===========================================================================
// 1. Go formatting helpers
// ===========================================================================

// Decodes one UTF-8 sequence at s[i]; returns the code point and advances i.
// Invalid bytes decode to U+FFFD one byte at a time, as Go's range loop does.
char32_t DecodeRune(std::string_view s, std::size_t& i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c < 0x80) {
    ++i;
    return c;
  }
  int len = 0;
  char32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    len = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    len = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    len = 4;
    cp = c & 0x07;
  } else {
    ++i;
    return 0xFFFD;
  }
  if (i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  for (int k = 1; k < len; ++k) {
    const unsigned char cc = byte(i + k);
    if ((cc & 0xC0) != 0x80) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (cc & 0x3F);
  }
  i += len;
  return cp;
}

// unicode.IsPrint, for ASCII exactly; beyond ASCII the control, format and
// separator ranges are unprintable and everything else is taken as printable
// (there is no Unicode database here).
bool IsPrintRune(char32_t r) {
  if (r < 0x80) return r >= 0x20 && r < 0x7F;
  if (r < 0xA0) return false;
  if (r == 0xA0 || r == 0xAD || r == 0x1680 || r == 0x180E) return false;
  if (r >= 0x2000 && r <= 0x200F) return false;
  if (r >= 0x2028 && r <= 0x202F) return false;
  if (r >= 0x205F && r <= 0x206F) return false;
  if (r == 0x3000 || r == 0xFEFF) return false;
  if (r >= 0xFFF9 && r <= 0xFFFB) return false;
  if (r >= 0xD800 && r <= 0xDFFF) return false;
  return true;
}

void AppendUtf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string Hex(unsigned value, int width) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(static_cast<std::size_t>(width), '0');
  for (int i = width - 1; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = kDigits[value & 0xF];
    value >>= 4;
  }
  return out;
}

// strconv.Quote (fmt's %q for strings).
std::string GoQuote(std::string_view s) {
  std::string out = "\"";
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t start = i;
    const char32_t r = DecodeRune(s, i);
    const bool invalid = r == 0xFFFD && !(i - start == 3 && s.substr(start, 3) == "\xEF\xBF\xBD");
    if (invalid) {
      out += "\\x" + Hex(static_cast<unsigned char>(s[start]), 2);
      continue;
    }
    switch (r) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\a': out += "\\a"; continue;
      case '\b': out += "\\b"; continue;
      case '\f': out += "\\f"; continue;
      case '\n': out += "\\n"; continue;
      case '\r': out += "\\r"; continue;
      case '\t': out += "\\t"; continue;
      case '\v': out += "\\v"; continue;
      default: break;
    }
    if (IsPrintRune(r)) {
      out.append(s.substr(start, i - start));
    } else if (r < 0x80) {
      out += "\\x" + Hex(static_cast<unsigned>(r), 2);
    } else if (r < 0x10000) {
      out += "\\u" + Hex(static_cast<unsigned>(r), 4);
    } else {
      out += "\\U" + Hex(static_cast<unsigned>(r), 8);
    }
  }
  out += '"';
  return out;
}

// The shortest decimal digits of v and its exponent: v = d.ddd x 10^exp.
struct Digits {
  std::string digits;
  int exp = 0;
};
Digits ShortestDigits(double v) {
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, std::fabs(v), std::chars_format::scientific);
  std::string text(buf, res.ptr);
  const auto e = text.find('e');
  Digits d;
  for (std::size_t i = 0; i < e; ++i) {
    if (text[i] != '.') d.digits += text[i];
  }
  d.exp = std::stoi(text.substr(e + 1));
  return d;
}

std::string FixedFromDigits(const Digits& d) {
  std::string out;
  const int n = static_cast<int>(d.digits.size());
  if (d.exp >= 0) {
    if (d.exp + 1 >= n) {
      out = d.digits + std::string(static_cast<std::size_t>(d.exp + 1 - n), '0');
    } else {
      out = d.digits.substr(0, static_cast<std::size_t>(d.exp + 1)) + "." +
            d.digits.substr(static_cast<std::size_t>(d.exp + 1));
    }
  } else {
    out = "0." + std::string(static_cast<std::size_t>(-d.exp - 1), '0') + d.digits;
  }
  return out;
}

std::string ScientificFromDigits(const Digits& d, bool pad_exponent) {
  std::string out(1, d.digits[0]);
  if (d.digits.size() > 1) out += "." + d.digits.substr(1);
  out += d.exp < 0 ? "e-" : "e+";
  const int a = std::abs(d.exp);
  if (pad_exponent && a < 10) out += '0';
  out += std::to_string(a);
  return out;
}

// fmt's %v for a float64.
std::string GoFloat(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == 0) return std::signbit(v) ? "-0" : "0";
  const Digits d = ShortestDigits(v);
  const std::string body =
      (d.exp < -4 || d.exp >= 21) ? ScientificFromDigits(d, true) : FixedFromDigits(d);
  return v < 0 ? "-" + body : body;
}

// encoding/json's float64 encoding.
std::string GoJsonFloat(double v) {
  if (v == 0) return "0";
  const double a = std::fabs(v);
  const Digits d = ShortestDigits(v);
  std::string body;
  if (a < 1e-6 || a >= 1e21) {
    body = ScientificFromDigits(d, true);
    // Go turns e-07 into e-7.
    const std::size_t n = body.size();
    if (n >= 4 && body[n - 4] == 'e' && body[n - 3] == '-' && body[n - 2] == '0') {
      body.erase(n - 2, 1);
    }
  } else {
    body = FixedFromDigits(d);
  }
  return v < 0 ? "-" + body : body;
}

std::string IntegerText(const Json& v) {
  if (v.is_number_unsigned()) return std::to_string(v.get<std::uint64_t>());
  return std::to_string(v.get<std::int64_t>());
}

// json.Marshal's string encoding (HTML-safe, as Go's default).
void AppendGoJsonString(std::string& out, std::string_view s) {
  out += '"';
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t start = i;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        case '<': case '>': case '&': out += "\\u00" + Hex(c, 2); break;
        default:
          if (c < 0x20) {
            out += "\\u00" + Hex(c, 2);
          } else {
            out += static_cast<char>(c);
          }
      }
      continue;
    }
    const char32_t r = DecodeRune(s, i);
    if (r == 0xFFFD && !(i - start == 3)) {
      out += "\\ufffd";
    } else if (r == 0x2028 || r == 0x2029) {
      out += "\\u" + Hex(static_cast<unsigned>(r), 4);
    } else {
      out.append(s.substr(start, i - start));
    }
  }
  out += '"';
}

// Calls append_item(item) for each of `items`, writing `separator` to `out`
// between two items.
template <typename Items, typename AppendItem>
void AppendJoined(std::string& out, const Items& items, std::string_view separator,
                  const AppendItem& append_item) {
  bool first = true;
  for (const auto& item : items) {
    if (!first) out += separator;
    first = false;
    append_item(item);
  }
}

// The keys of an object in byte order, the order Go prints and compares maps in.
std::vector<std::string> SortedKeys(const Json& object) {
  std::vector<std::string> keys;
  for (const auto& [k, _] : object.items()) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  return keys;
}

// -1, 0 or 1 as a is less than, equal to or greater than b.
template <typename T>
int ThreeWay(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// json.Marshal of a decoded value: objects with their keys sorted, as Go
// marshals a map[string]interface{}.
void AppendGoJson(std::string& out, const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: out += "null"; return;
    case Json::value_t::boolean: out += v.get<bool>() ? "true" : "false"; return;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: out += IntegerText(v); return;
    case Json::value_t::number_float: out += GoJsonFloat(v.get<double>()); return;
    case Json::value_t::string: AppendGoJsonString(out, v.get_ref<const std::string&>()); return;
    case Json::value_t::array:
      out += '[';
      AppendJoined(out, v, ",", [&](const Json& e) { AppendGoJson(out, e); });
      out += ']';
      return;
    case Json::value_t::object:
      out += '{';
      AppendJoined(out, SortedKeys(v), ",", [&](const std::string& k) {
        AppendGoJsonString(out, k);
        out += ':';
        AppendGoJson(out, v.at(k));
      });
      out += '}';
      return;
    default: out += "null"; return;
  }
}

std::string GoJson(const Json& v) {
  std::string out;
  AppendGoJson(out, v);
  return out;
}

// fmt's %v of a decoded JSON value (map[...] with sorted keys, <nil>, ...).
std::string GoFormat(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "<nil>";
    case Json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return IntegerText(v);
    case Json::value_t::number_float: return GoFloat(v.get<double>());
    case Json::value_t::string: return v.get<std::string>();
    case Json::value_t::array: {
      std::string out = "[";
      AppendJoined(out, v, " ", [&](const Json& e) { out += GoFormat(e); });
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "map[";
      AppendJoined(out, SortedKeys(v), " ", [&](const std::string& k) { out += k + ":" + GoFormat(v.at(k)); });
      return out + "]";
    }
    default: return "<nil>";
  }
}

// The Go type name of a decoded value, for "json: cannot unmarshal X into ..."
// messages.
std::string JsonTypeWord(const Json& v) {
  switch (v.type()) {
    case Json::value_t::object: return "object";
    case Json::value_t::array: return "array";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::null: return "null";
    default: return "number";
  }
}

constexpr const char* kGoMap = "map[string]interface {}";
constexpr const char* kGoSlice = "[]interface {}";

// encoding/json's error for a value that does not fit the Go type it is
// decoded into.
std::string CannotUnmarshal(const Json& v, std::string_view go_type) {
  return "json: cannot unmarshal " + JsonTypeWord(v) + " into Go value of type " + std::string(go_type);
}

// Deep equality with objects compared as unordered maps (ordered_json's own
// operator== is order-sensitive for objects); any other pair of values, scalars
// or values of different types, is equal when leaf_equal(a, b) says so.
template <typename LeafEqual>
bool DeepEqual(const Json& a, const Json& b, const LeafEqual& leaf_equal) {
  if (a.is_object() && b.is_object()) {
    if (a.size() != b.size()) return false;
    for (const auto& [k, v] : a.items()) {
      const auto it = b.find(k);
      if (it == b.end() || !DeepEqual(v, *it, leaf_equal)) return false;
    }
    return true;
  }
  if (a.is_array() && b.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!DeepEqual(a[i], b[i], leaf_equal)) return false;
    }
    return true;
  }
  return leaf_equal(a, b);
}

// Scalar equality with numbers compared by value, whatever their type.
bool NumericallyEqual(const Json& a, const Json& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_number_float() || b.is_number_float()) return a.get<double>() == b.get<double>();
    if (a.is_number_unsigned() && b.is_number_unsigned()) {
      return a.get<std::uint64_t>() == b.get<std::uint64_t>();
    }
    if (a.is_number_unsigned() && a.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return false;
    if (b.is_number_unsigned() && b.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) return false;
    return a.get<std::int64_t>() == b.get<std::int64_t>();
  }
  return a.type() == b.type() && a == b;
}

// Deep equality with objects compared as unordered maps and numbers by value.
bool JsonEqual(const Json& a, const Json& b) { return DeepEqual(a, b, NumericallyEqual); }

// Go interface{} equality of two decoded scalars: same dynamic type (int64,
// float64, string, bool, nil) and same value. Maps and slices never compare
// equal (Go would panic).
bool GoScalarEqual(const Json& a, const Json& b) {
  const bool ai = a.is_number_integer() || a.is_number_unsigned();
  const bool bi = b.is_number_integer() || b.is_number_unsigned();
  if (ai || bi) return ai && bi && JsonEqual(a, b);
  if (a.is_number_float() || b.is_number_float()) {
    return a.is_number_float() && b.is_number_float() && a.get<double>() == b.get<double>();
  }
  if (a.is_structured() || b.is_structured()) return false;
  return a.type() == b.type() && a == b;
}

// The Go dynamic type of a decoded value, as reflect.TypeOf distinguishes it.
int GoTypeTag(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return 0;
    case Json::value_t::boolean: return 1;
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return 2;
    case Json::value_t::number_float: return 3;
    case Json::value_t::string: return 4;
    case Json::value_t::array: return 5;
    case Json::value_t::object: return 6;
    default: return 7;
  }
}

// Removes the members that drop(key, value) selects from every object in
// `v`, recursively; list elements stay, whatever they hold.
template <typename Drop>
void DropMembers(Json& v, const Drop& drop) {
  if (v.is_object()) {
    for (auto it = v.begin(); it != v.end();) {
      if (drop(it.key(), *it)) {
        it = v.erase(it);
      } else {
        DropMembers(*it, drop);
        ++it;
      }
    }
  } else if (v.is_array()) {
    for (auto& e : v) DropMembers(e, drop);
  }
}

// Removes keys whose value is null from every object, recursively (lists keep
// their null elements): what decoding into a Go struct and encoding it again
// does to a built-in object, and also what evanphx's pruneNulls (merge patch)
// and strategicpatch's discardNullValuesFromPatch do to the values they add.
void DropNulls(Json& v) {
  DropMembers(v, [](const std::string&, const Json& value) { return value.is_null(); });
}

PatchError BadRequest(std::string message) {
  return PatchError{400, "BadRequest", std::move(message), {}, {}, {}, {}};
}

// The generic 422 of a patch the server could not apply; why goes to the
// diagnostic only, as the real server words it the same for every cause.
PatchError Unprocessable(std::string diagnostic) {
  return PatchError{422, "Invalid", "the server rejected our request due to an error in our request",
                    {}, {}, {}, std::move(diagnostic)};
}

PatchError InternalError(std::string message) {
  // A plain Go error that reached the handler: 500 with StatusReasonUnknown.
  return PatchError{500, "", std::move(message), {}, {}, {}, {}};
}

// RFC 3339 to Unix seconds (metav1.Time.Unix()); 0 when unparsable.
std::int64_t UnixSeconds(std::string_view t) {
  int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0;
  if (t.size() < 19) return 0;
  if (std::sscanf(std::string(t.substr(0, 19)).c_str(), "%4d-%2d-%2dT%2d:%2d:%2d", &y, &mo, &d, &h,
                  &mi, &s) != 6) {
    return 0;
  }
  std::size_t i = 19;
  if (i < t.size() && t[i] == '.') {
    ++i;
    while (i < t.size() && t[i] >= '0' && t[i] <= '9') ++i;
  }
  std::int64_t offset = 0;
  if (i < t.size() && (t[i] == '+' || t[i] == '-')) {
    int oh = 0, om = 0;
    if (std::sscanf(std::string(t.substr(i + 1)).c_str(), "%2d:%2d", &oh, &om) == 2) {
      offset = (t[i] == '+' ? 1 : -1) * (oh * 3600 + om * 60);
    }
  }
  // Days from civil (Howard Hinnant's algorithm).
  y -= mo <= 2;
  const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * static_cast<unsigned>(mo + (mo > 2 ? -3 : 9)) + 2) / 5 +
                       static_cast<unsigned>(d) - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const std::int64_t days = era * 146097 + static_cast<std::int64_t>(doe) - 719468;
  return days * 86400 + h * 3600 + mi * 60 + s - offset;
}

// ===========================================================================
// 2. Field paths and sets (sigs.k8s.io/structured-merge-diff/v4/fieldpath)
// ===========================================================================

// value.Compare: numbers < strings < bools < lists < maps < null.
int CompareValues(const Json& a, const Json& b);

int Rank(const Json& v) {
  if (v.is_number()) return 0;
  if (v.is_string()) return 1;
  if (v.is_boolean()) return 2;
  if (v.is_array()) return 3;
  if (v.is_object()) return 4;
  return 5;
}

int CompareValues(const Json& a, const Json& b) {
  const int ra = Rank(a), rb = Rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
    case 0:
      if (a.is_number_float() || b.is_number_float()) return ThreeWay(a.get<double>(), b.get<double>());
      if (a.is_number_unsigned() && b.is_number_unsigned()) {
        return ThreeWay(a.get<std::uint64_t>(), b.get<std::uint64_t>());
      }
      return ThreeWay(a.get<std::int64_t>(), b.get<std::int64_t>());
    case 1: return ThreeWay(a.get_ref<const std::string&>(), b.get_ref<const std::string&>());
    case 2: return ThreeWay(a.get<bool>(), b.get<bool>());
    case 3: {
      for (std::size_t i = 0; i < a.size() && i < b.size(); ++i) {
        if (const int c = CompareValues(a[i], b[i]); c != 0) return c;
      }
      return ThreeWay(a.size(), b.size());
    }
    case 4: {
      const std::vector<std::string> ka = SortedKeys(a), kb = SortedKeys(b);
      for (std::size_t i = 0; i < ka.size() && i < kb.size(); ++i) {
        if (const int c = ThreeWay(ka[i], kb[i]); c != 0) return c;
        if (const int c = CompareValues(a.at(ka[i]), b.at(kb[i])); c != 0) return c;
      }
      return ThreeWay(ka.size(), kb.size());
    }
    default: return 0;
  }
}

// value.ToString, as path elements print their keys.
std::string ValueToString(const Json& v) {
  switch (v.type()) {
    case Json::value_t::null: return "null";
    case Json::value_t::boolean: return v.get<bool>() ? "true" : "false";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return IntegerText(v);
    case Json::value_t::number_float: return GoFloat(v.get<double>());
    case Json::value_t::string: return GoQuote(v.get_ref<const std::string&>());
    case Json::value_t::array: {
      std::string out = "[";
      AppendJoined(out, v, ",", [&](const Json& e) { out += ValueToString(e); });
      return out + "]";
    }
    case Json::value_t::object: {
      std::string out = "{";
      AppendJoined(out, v.items(), ",", [&](const auto& e) { out += e.key() + "=" + ValueToString(e.value()); });
      return out + "}";
    }
    default: return "{{undefined}}";
  }
}

struct PathElement {
  enum class Kind { kField, kKey, kValue, kIndex };
  Kind kind = Kind::kField;
  std::string field;                               // kField
  std::vector<std::pair<std::string, Json>> key;   // kKey, sorted by name
  Json value;                                      // kValue
  int index = 0;                                   // kIndex

  static PathElement Field(std::string name) {
    PathElement pe;
    pe.field = std::move(name);
    return pe;
  }
};

int ComparePe(const PathElement& a, const PathElement& b) {
  if (a.kind != b.kind) return ThreeWay(a.kind, b.kind);
  switch (a.kind) {
    case PathElement::Kind::kField: return ThreeWay(a.field, b.field);
    case PathElement::Kind::kKey: {
      for (std::size_t i = 0; i < a.key.size() && i < b.key.size(); ++i) {
        if (const int c = ThreeWay(a.key[i].first, b.key[i].first); c != 0) return c;
        if (const int c = CompareValues(a.key[i].second, b.key[i].second); c != 0) return c;
      }
      return ThreeWay(a.key.size(), b.key.size());
    }
    case PathElement::Kind::kValue: return CompareValues(a.value, b.value);
    case PathElement::Kind::kIndex: return ThreeWay(a.index, b.index);
  }
  return 0;
}

struct PeLess {
  bool operator()(const PathElement& a, const PathElement& b) const { return ComparePe(a, b) < 0; }
};

// PathElement.String: .name, [k=v,...], [=v], [i].
std::string PeString(const PathElement& pe) {
  switch (pe.kind) {
    case PathElement::Kind::kField: return "." + pe.field;
    case PathElement::Kind::kKey: {
      std::string out = "[";
      AppendJoined(out, pe.key, ",", [&](const auto& k) { out += k.first + "=" + ValueToString(k.second); });
      return out + "]";
    }
    case PathElement::Kind::kValue: return "[=" + ValueToString(pe.value) + "]";
    case PathElement::Kind::kIndex: return "[" + std::to_string(pe.index) + "]";
  }
  return "{{invalid path element}}";
}

using Path = std::vector<PathElement>;

std::string PathString(const Path& path) {
  std::string out;
  for (const auto& pe : path) out += PeString(pe);
  return out;
}

// The FieldsV1 key of a path element: f:name, k:{...}, v:..., i:N.
std::string SerializePe(const PathElement& pe) {
  switch (pe.kind) {
    case PathElement::Kind::kField: return "f:" + pe.field;
    case PathElement::Kind::kKey: {
      std::string out = "k:{";
      AppendJoined(out, pe.key, ",", [&](const auto& k) {
        AppendGoJsonString(out, k.first);
        out += ':';
        AppendGoJson(out, k.second);
      });
      return out + "}";
    }
    case PathElement::Kind::kValue: return "v:" + GoJson(pe.value);
    case PathElement::Kind::kIndex: return "i:" + std::to_string(pe.index);
  }
  return "";
}

// DeserializePathElement. Returns nullopt with `unknown` set for a prefix this
// version does not know (such keys are dropped, as the real decoder drops
// them), or with `error` set for a malformed key.
std::optional<PathElement> DeserializePe(const std::string& s, bool& unknown, std::string& error) {
  unknown = false;
  if (s.size() < 2) {
    error = "key must be 2 characters long:";
    return std::nullopt;
  }
  if (s[1] != ':') {
    error = "missing colon: " + s;
    return std::nullopt;
  }
  const std::string rest = s.substr(2);
  PathElement pe;
  switch (s[0]) {
    case 'f':
      pe.kind = PathElement::Kind::kField;
      pe.field = rest;
      return pe;
    case 'v': {
      Json v = Json::parse(rest, nullptr, false);
      if (v.is_discarded()) {
        error = "invalid value in path element: " + s;
        return std::nullopt;
      }
      pe.kind = PathElement::Kind::kValue;
      pe.value = std::move(v);
      return pe;
    }
    case 'k': {
      Json v = Json::parse(rest, nullptr, false);
      if (v.is_discarded() || !v.is_object()) {
        error = "invalid key in path element: " + s;
        return std::nullopt;
      }
      pe.kind = PathElement::Kind::kKey;
      for (auto& [k, val] : v.items()) pe.key.emplace_back(k, val);
      std::sort(pe.key.begin(), pe.key.end(),
                [](const auto& a, const auto& b) { return a.first < b.first; });
      return pe;
    }
    case 'i': {
      int idx = 0;
      const auto res = std::from_chars(rest.data(), rest.data() + rest.size(), idx);
      if (res.ec != std::errc() || res.ptr != rest.data() + rest.size()) {
        error = "invalid index in path element: " + s;
        return std::nullopt;
      }
      pe.kind = PathElement::Kind::kIndex;
      pe.index = idx;
      return pe;
    }
    default:
      unknown = true;
      return std::nullopt;
  }
}

// fieldpath.Set: a set of paths stored as a tree. `members` are the children
// that are themselves in the set; `children` hold the sets below a child.
// Both are sorted by ComparePe and children are never empty.
class FieldSet {
 public:
  struct Child;

  void Insert(const Path& path) { InsertFrom(path, 0); }

  bool Has(const Path& path) const {
    const FieldSet* s = this;
    for (std::size_t i = 0; i + 1 < path.size(); ++i) {
      s = s->ChildSet(path[i]);
      if (s == nullptr) return false;
    }
    return !path.empty() && s->HasMember(path.back());
  }

  bool HasMember(const PathElement& pe) const {
    const auto it = std::lower_bound(members_.begin(), members_.end(), pe, PeLess{});
    return it != members_.end() && ComparePe(*it, pe) == 0;
  }

  // WithPrefix(pe): the set below `pe`, or nullptr.
  const FieldSet* ChildSet(const PathElement& pe) const;

  bool Empty() const;

  // (Defined after Child: returning a FieldSet by value needs Child
  // complete, and clang instantiates that eagerly inside the class.)
  FieldSet Union(const FieldSet& other) const;
  FieldSet Intersection(const FieldSet& other) const;
  FieldSet Difference(const FieldSet& other) const;
  // Difference that also removes everything below a member of `other`.
  FieldSet RecursiveDifference(const FieldSet& other) const;
  // Adds every named child (a struct field) as a member too. Every field is
  // taken as declared: the distinction only matters for maps of maps, which
  // the built-in kinds handled here do not have.
  FieldSet EnsureNamedFieldsAreMembers() const;

  // Calls f(path) for every path in the set: members first, then children.
  void Iterate(const std::function<void(const Path&)>& f) const {
    Path prefix;
    IterateFrom(prefix, f);
  }

  Json ToFieldsV1() const { return Emit(false); }

  // Reads a FieldsV1 object; returns false with `error` set when malformed.
  static bool FromFieldsV1(const Json& v, FieldSet& out, std::string& error);

  const std::vector<PathElement>& members() const { return members_; }
  const std::vector<Child>& children() const { return children_; }

 private:
  enum class Op { kIntersection, kDifference, kRecursiveDifference };
  // The set operations other than Union, which walk the children alike.
  FieldSet Combine(const FieldSet& other, Op op) const;
  static bool ChildBefore(const Child& c, const PathElement& pe);
  // Adds `pe` as a member, keeping the members sorted and unique.
  void InsertMember(const PathElement& pe) {
    const auto it = std::lower_bound(members_.begin(), members_.end(), pe, PeLess{});
    if (it == members_.end() || ComparePe(*it, pe) != 0) members_.insert(it, pe);
  }
  void InsertFrom(const Path& path, std::size_t i);
  FieldSet* MutableChild(const PathElement& pe);
  void IterateFrom(Path& prefix, const std::function<void(const Path&)>& f) const;
  Json Emit(bool include_self) const;
  static bool Read(const Json& v, std::unique_ptr<FieldSet>& children, bool& is_member,
                   std::string& error);

  std::vector<PathElement> members_;
  std::vector<Child> children_;
};

struct FieldSet::Child {
  PathElement pe;
  FieldSet set;
};

FieldSet FieldSet::Intersection(const FieldSet& other) const { return Combine(other, Op::kIntersection); }
FieldSet FieldSet::Difference(const FieldSet& other) const { return Combine(other, Op::kDifference); }
FieldSet FieldSet::RecursiveDifference(const FieldSet& other) const {
  return Combine(other, Op::kRecursiveDifference);
}

bool FieldSet::ChildBefore(const Child& c, const PathElement& pe) { return ComparePe(c.pe, pe) < 0; }

const FieldSet* FieldSet::ChildSet(const PathElement& pe) const {
  const auto it = std::lower_bound(children_.begin(), children_.end(), pe, ChildBefore);
  if (it != children_.end() && ComparePe(it->pe, pe) == 0) return &it->set;
  return nullptr;
}

FieldSet* FieldSet::MutableChild(const PathElement& pe) {
  auto it = std::lower_bound(children_.begin(), children_.end(), pe, ChildBefore);
  if (it != children_.end() && ComparePe(it->pe, pe) == 0) return &it->set;
  it = children_.insert(it, Child{pe, FieldSet{}});
  return &it->set;
}

void FieldSet::InsertFrom(const Path& path, std::size_t i) {
  if (path.size() <= i) return;  // the whole object is never tracked
  if (i + 1 == path.size()) {
    InsertMember(path[i]);
    return;
  }
  MutableChild(path[i])->InsertFrom(path, i + 1);
}

bool FieldSet::Empty() const {
  if (!members_.empty()) return false;
  for (const auto& c : children_) {
    if (!c.set.Empty()) return false;
  }
  return true;
}

FieldSet FieldSet::Union(const FieldSet& other) const {
  FieldSet out;
  std::set_union(members_.begin(), members_.end(), other.members_.begin(), other.members_.end(),
                 std::back_inserter(out.members_), PeLess{});
  std::size_t i = 0, j = 0;
  while (i < children_.size() || j < other.children_.size()) {
    if (j == other.children_.size() ||
        (i < children_.size() && ComparePe(children_[i].pe, other.children_[j].pe) < 0)) {
      out.children_.push_back(children_[i++]);
    } else if (i == children_.size() || ComparePe(other.children_[j].pe, children_[i].pe) < 0) {
      out.children_.push_back(other.children_[j++]);
    } else {
      out.children_.push_back(Child{children_[i].pe, children_[i].set.Union(other.children_[j].set)});
      ++i;
      ++j;
    }
  }
  return out;
}

FieldSet FieldSet::Combine(const FieldSet& other, Op op) const {
  FieldSet out;
  const auto members_out = std::back_inserter(out.members_);
  if (op == Op::kIntersection) {
    std::set_intersection(members_.begin(), members_.end(), other.members_.begin(), other.members_.end(),
                          members_out, PeLess{});
  } else {
    std::set_difference(members_.begin(), members_.end(), other.members_.begin(), other.members_.end(),
                        members_out, PeLess{});
  }
  for (const auto& c : children_) {
    if (op == Op::kRecursiveDifference && other.HasMember(c.pe)) continue;
    if (const FieldSet* o = other.ChildSet(c.pe)) {
      FieldSet r = c.set.Combine(*o, op);
      if (!r.Empty()) out.children_.push_back(Child{c.pe, std::move(r)});
    } else if (op != Op::kIntersection) {
      out.children_.push_back(c);  // nothing of it is in `other`
    }
  }
  return out;
}

FieldSet FieldSet::EnsureNamedFieldsAreMembers() const {
  FieldSet out;
  out.members_ = members_;
  for (const auto& c : children_) {
    if (c.pe.kind == PathElement::Kind::kField) out.InsertMember(c.pe);
    out.children_.push_back(Child{c.pe, c.set.EnsureNamedFieldsAreMembers()});
  }
  return out;
}

void FieldSet::IterateFrom(Path& prefix, const std::function<void(const Path&)>& f) const {
  for (const auto& m : members_) {
    prefix.push_back(m);
    f(prefix);
    prefix.pop_back();
  }
  for (const auto& c : children_) {
    prefix.push_back(c.pe);
    c.set.IterateFrom(prefix, f);
    prefix.pop_back();
  }
}

// emitContentsV1: members and children merged in path-element order; a child
// that is also a member carries ".".
Json FieldSet::Emit(bool include_self) const {
  Json out = Json::object();
  if (include_self && !(members_.empty() && children_.empty())) out["."] = Json::object();
  std::size_t mi = 0, ci = 0;
  while (mi < members_.size() || ci < children_.size()) {
    if (ci == children_.size() ||
        (mi < members_.size() && ComparePe(members_[mi], children_[ci].pe) < 0)) {
      out[SerializePe(members_[mi++])] = Json::object();
    } else if (mi == members_.size() || ComparePe(children_[ci].pe, members_[mi]) < 0) {
      out[SerializePe(children_[ci].pe)] = children_[ci].set.Emit(false);
      ++ci;
    } else {
      out[SerializePe(children_[ci].pe)] = children_[ci].set.Emit(true);
      ++mi;
      ++ci;
    }
  }
  return out;
}

bool FieldSet::Read(const Json& v, std::unique_ptr<FieldSet>& children, bool& is_member,
                    std::string& error) {
  is_member = false;
  if (!v.is_object()) {
    error = "expected an object in fieldsV1";
    return false;
  }
  for (const auto& [key, value] : v.items()) {
    if (key == ".") {
      is_member = true;
      continue;
    }
    bool unknown = false;
    auto pe = DeserializePe(key, unknown, error);
    if (!pe) {
      if (unknown) continue;
      return false;
    }
    std::unique_ptr<FieldSet> grandchildren;
    bool child_is_member = false;
    if (!Read(value, grandchildren, child_is_member, error)) return false;
    if (child_is_member) {
      if (!children) children = std::make_unique<FieldSet>();
      children->members_.push_back(*pe);
    }
    if (grandchildren) {
      if (!children) children = std::make_unique<FieldSet>();
      children->children_.push_back(Child{*pe, std::move(*grandchildren)});
    }
  }
  if (!children) {
    is_member = true;
  } else {
    auto& m = children->members_;
    std::sort(m.begin(), m.end(), PeLess{});
    m.erase(std::unique(m.begin(), m.end(),
                        [](const PathElement& a, const PathElement& b) { return ComparePe(a, b) == 0; }),
            m.end());
    auto& c = children->children_;
    std::stable_sort(c.begin(), c.end(), [](const Child& a, const Child& b) { return ComparePe(a.pe, b.pe) < 0; });
    // Duplicates keep the last occurrence.
    std::vector<Child> compact;
    for (auto& child : c) {
      if (!compact.empty() && ComparePe(compact.back().pe, child.pe) == 0) {
        compact.back() = std::move(child);
      } else {
        compact.push_back(std::move(child));
      }
    }
    c = std::move(compact);
  }
  return true;
}

bool FieldSet::FromFieldsV1(const Json& v, FieldSet& out, std::string& error) {
  std::unique_ptr<FieldSet> found;
  bool is_member = false;
  if (!Read(v, found, is_member, error)) return false;
  out = found ? std::move(*found) : FieldSet{};
  return true;
}

FieldSet SetOfPaths(std::initializer_list<std::vector<std::string>> paths) {
  FieldSet s;
  for (const auto& names : paths) {
    Path p;
    for (const auto& n : names) p.push_back(PathElement::Field(n));
    s.Insert(p);
  }
  return s;
}

// ===========================================================================
// 3. The schema of the built-in kinds
// ===========================================================================
//
// One node per field position. A node says how the value found there merges
// and is owned: as an object (fields, atomic or not, the zero value of its
// non-pointer struct children) and as an array (listType and keys for server-
// side apply, patchStrategy and patchMergeKey for strategic merge). Anything
// not described is a granular map or an atomic (replaced) list.

enum class ListType { kAtomic, kSet, kMap };
enum class SmpStrategy { kReplace, kMerge };
enum class DeclaredShape { kUnknown, kObject, kArray };

struct SchemaNode {
  DeclaredShape shape = DeclaredShape::kUnknown;
  // The value as an object.
  bool atomic_map = false;  // structType=atomic / mapType=atomic
  std::map<std::string, SchemaNode*, std::less<>> fields;
  // Go's zero value of this struct's non-pointer struct fields ({}) and of
  // its non-omitempty slices (null): present in every Go object, so
  // structured-merge-diff compares them as present. Null when none.
  Json zero;
  // The value as an array.
  ListType list = ListType::kAtomic;
  std::vector<std::string> keys;        // listType=map keys
  Json key_defaults = Json::object();   // OpenAPI defaults of key fields
  SmpStrategy smp = SmpStrategy::kReplace;
  std::string smp_key;                  // patchMergeKey; empty for primitives
  SchemaNode* element = nullptr;
};

class Schema {
 public:
  Schema() : root_(New()) {}
  Schema(const Schema&) = delete;
  Schema& operator=(const Schema&) = delete;

  SchemaNode* New() {
    nodes_.push_back(std::make_unique<SchemaNode>());
    return nodes_.back().get();
  }
  SchemaNode* root() { return root_; }
  const SchemaNode& Root() const { return *root_; }
  const SchemaNode& Child(const SchemaNode& n, std::string_view name) const {
    const auto it = n.fields.find(name);
    return it == n.fields.end() ? empty_ : *it->second;
  }
  const SchemaNode& Element(const SchemaNode& n) const { return n.element ? *n.element : empty_; }

 private:
  std::vector<std::unique_ptr<SchemaNode>> nodes_;
  SchemaNode* root_;
  SchemaNode empty_;
};

SchemaNode* FieldOf(Schema& s, SchemaNode* parent, const std::string& name) {
  parent->shape = DeclaredShape::kObject;
  const auto it = parent->fields.find(name);
  if (it != parent->fields.end()) return it->second;
  SchemaNode* n = s.New();
  parent->fields.emplace(name, n);
  return n;
}

SchemaNode* At(Schema& s, SchemaNode* from, std::string_view dotted) {
  SchemaNode* n = from;
  std::size_t start = 0;
  while (start <= dotted.size()) {
    const std::size_t dot = dotted.find('.', start);
    const std::size_t end = dot == std::string_view::npos ? dotted.size() : dot;
    n = FieldOf(s, n, std::string(dotted.substr(start, end - start)));
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return n;
}

// A list merged by keys: listType=map for apply, patchMergeKey for strategic
// merge (no patchMergeKey: the list is replaced by a strategic merge patch).
SchemaNode* MapList(Schema& s, SchemaNode* n, std::vector<std::string> keys, std::string smp_key,
                    Json key_defaults = Json::object(), SchemaNode* element = nullptr) {
  n->shape = DeclaredShape::kArray;
  n->list = ListType::kMap;
  n->keys = std::move(keys);
  n->key_defaults = std::move(key_defaults);
  n->smp = smp_key.empty() ? SmpStrategy::kReplace : SmpStrategy::kMerge;
  n->smp_key = std::move(smp_key);
  if (element != nullptr) {
    n->element = element;
  } else if (n->element == nullptr) {
    n->element = s.New();
  }
  n->element->shape = DeclaredShape::kObject;
  return n->element;
}

void SetList(SchemaNode* n) {
  n->shape = DeclaredShape::kArray;
  n->list = ListType::kSet;
  n->smp = SmpStrategy::kMerge;
  n->smp_key.clear();
}

void AtomicList(SchemaNode* n) {
  n->shape = DeclaredShape::kArray;
  n->list = ListType::kAtomic;
  n->smp = SmpStrategy::kReplace;
}

void AtomicMap(SchemaNode* n) {
  n->shape = DeclaredShape::kObject;
  n->atomic_map = true;
}

SchemaNode* BuildObjectMeta(Schema& s) {
  SchemaNode* m = s.New();
  m->shape = DeclaredShape::kObject;
  SetList(FieldOf(s, m, "finalizers"));
  MapList(s, FieldOf(s, m, "ownerReferences"), {"uid"}, "uid")->atomic_map = true;
  return m;
}

SchemaNode* BuildContainer(Schema& s) {
  SchemaNode* c = s.New();
  c->shape = DeclaredShape::kObject;
  c->zero = Json{{"resources", Json::object()}};
  MapList(s, FieldOf(s, c, "ports"), {"containerPort", "protocol"}, "containerPort",
          Json{{"protocol", "TCP"}});
  SchemaNode* env = MapList(s, FieldOf(s, c, "env"), {"name"}, "name");
  for (const char* ref : {"configMapKeyRef", "secretKeyRef", "fieldRef", "resourceFieldRef"}) {
    AtomicMap(At(s, env, std::string("valueFrom.") + ref));
  }
  AtomicList(FieldOf(s, c, "envFrom"));
  MapList(s, FieldOf(s, c, "volumeMounts"), {"mountPath"}, "mountPath");
  MapList(s, FieldOf(s, c, "volumeDevices"), {"devicePath"}, "devicePath");
  MapList(s, At(s, c, "resources.claims"), {"name"}, "");
  AtomicList(FieldOf(s, c, "resizePolicy"));
  return c;
}

SchemaNode* BuildPodSpec(Schema& s) {
  SchemaNode* p = s.New();
  p->shape = DeclaredShape::kObject;
  p->zero = Json{{"containers", nullptr}};
  SchemaNode* container = BuildContainer(s);
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    MapList(s, FieldOf(s, p, list), {"name"}, "name", Json::object(), container);
  }
  MapList(s, FieldOf(s, p, "volumes"), {"name"}, "name");
  MapList(s, FieldOf(s, p, "imagePullSecrets"), {"name"}, "name")->atomic_map = true;
  MapList(s, FieldOf(s, p, "hostAliases"), {"ip"}, "ip");
  SchemaNode* spread = MapList(s, FieldOf(s, p, "topologySpreadConstraints"),
                               {"topologyKey", "whenUnsatisfiable"}, "topologyKey");
  AtomicMap(FieldOf(s, spread, "labelSelector"));
  MapList(s, FieldOf(s, p, "schedulingGates"), {"name"}, "name");
  MapList(s, FieldOf(s, p, "resourceClaims"), {"name"}, "name");
  AtomicList(FieldOf(s, p, "tolerations"));
  AtomicList(FieldOf(s, p, "readinessGates"));
  AtomicMap(At(s, p, "affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution"));
  return p;
}

void AddConditions(Schema& s, SchemaNode* status) {
  MapList(s, FieldOf(s, status, "conditions"), {"type"}, "type");
}

constexpr std::string_view kBuiltinKinds[] = {
    "Deployment", "StatefulSet", "DaemonSet",      "Pod",  "Node",        "Namespace",          "Secret",
    "ConfigMap",  "Event",       "Lease",          "Service", "ServiceAccount", "PodDisruptionBudget", "Role",
    "ClusterRole", "RoleBinding", "ClusterRoleBinding"};

bool IsBuiltinKind(std::string_view kind) {
  return std::find(std::begin(kBuiltinKinds), std::end(kBuiltinKinds), kind) != std::end(kBuiltinKinds);
}

bool HasStatusSubresource(std::string_view kind, const KindHints& hints) {
  if (hints.status_subresource) return *hints.status_subresource;
  if (!IsBuiltinKind(kind)) return true;
  return kind != "Secret" && kind != "ConfigMap" && kind != "Event" && kind != "Lease" && kind != "ServiceAccount" &&
         kind != "Role" && kind != "ClusterRole" && kind != "RoleBinding" && kind != "ClusterRoleBinding";
}

void BuildKindSchema(Schema& s, std::string_view kind, std::string_view api_version,
                     const KindHints& hints) {
  SchemaNode* root = s.root();
  root->shape = DeclaredShape::kObject;
  root->fields["metadata"] = BuildObjectMeta(s);
  if (!IsBuiltinKind(kind)) {
    for (const auto& list : hints.lists) {
      SchemaNode* n = At(s, root, list.path);
      if (list.keys.empty()) {
        SetList(n);
      } else {
        MapList(s, n, list.keys, "");
      }
    }
    return;
  }
  root->zero = Json{{"metadata", Json::object()}};
  const auto with_status = [&] {
    root->zero["spec"] = Json::object();
    root->zero["status"] = Json::object();
    AddConditions(s, FieldOf(s, root, "status"));
  };
  if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet") {
    with_status();
    SchemaNode* spec = FieldOf(s, root, "spec");
    AtomicMap(FieldOf(s, spec, "selector"));
    SchemaNode* tmpl = FieldOf(s, spec, "template");
    tmpl->shape = DeclaredShape::kObject;
    tmpl->zero = Json{{"metadata", Json::object()}, {"spec", Json::object()}};
    tmpl->fields["metadata"] = BuildObjectMeta(s);
    tmpl->fields["spec"] = BuildPodSpec(s);
    spec->zero = Json{{"selector", nullptr}, {"template", Json::object()}};
    spec->zero[kind == "Deployment" ? "strategy" : "updateStrategy"] = Json::object();
    if (kind == "StatefulSet") AtomicList(FieldOf(s, spec, "volumeClaimTemplates"));
  } else if (kind == "Pod") {
    with_status();
    root->fields["spec"] = BuildPodSpec(s);
    SchemaNode* status = FieldOf(s, root, "status");
    MapList(s, FieldOf(s, status, "podIPs"), {"ip"}, "ip");
    // hostIPs: patchMergeKey=ip for strategic merge, listType=atomic for apply.
    SchemaNode* host_ips = FieldOf(s, status, "hostIPs");
    MapList(s, host_ips, {"ip"}, "ip");
    host_ips->list = ListType::kAtomic;
    MapList(s, FieldOf(s, status, "resourceClaimStatuses"), {"name"}, "name");
    for (const char* list : {"containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses"}) {
      AtomicList(FieldOf(s, status, list));
    }
  } else if (kind == "Node") {
    with_status();
    SchemaNode* spec = FieldOf(s, root, "spec");
    SetList(FieldOf(s, spec, "podCIDRs"));
    AtomicList(FieldOf(s, spec, "taints"));
    SchemaNode* status = FieldOf(s, root, "status");
    status->zero = Json{{"daemonEndpoints", Json::object()}, {"nodeInfo", Json::object()}};
    FieldOf(s, status, "daemonEndpoints")->zero = Json{{"kubeletEndpoint", Json::object()}};
    MapList(s, FieldOf(s, status, "addresses"), {"type"}, "type");
    for (const char* list : {"images", "volumesInUse", "volumesAttached"}) {
      AtomicList(FieldOf(s, status, list));
    }
  } else if (kind == "Namespace") {
    with_status();
    AtomicList(At(s, root, "spec.finalizers"));
  } else if (kind == "Service") {
    with_status();
    SchemaNode* spec = FieldOf(s, root, "spec");
    MapList(s, FieldOf(s, spec, "ports"), {"port", "protocol"}, "port", Json{{"protocol", "TCP"}});
    AtomicMap(FieldOf(s, spec, "selector"));
    for (const char* list : {"clusterIPs", "externalIPs", "ipFamilies", "loadBalancerSourceRanges"}) {
      AtomicList(FieldOf(s, spec, list));
    }
    SchemaNode* status = FieldOf(s, root, "status");
    status->zero = Json{{"loadBalancer", Json::object()}};
    AtomicList(At(s, status, "loadBalancer.ingress"));
  } else if (kind == "Event") {
    if (api_version.rfind("events.k8s.io/", 0) == 0) {
      root->zero["regarding"] = Json::object();
      root->zero["deprecatedSource"] = Json::object();
    } else {
      root->zero["involvedObject"] = Json::object();
      root->zero["source"] = Json::object();
    }
    for (const char* ref : {"involvedObject", "regarding", "related"}) AtomicMap(FieldOf(s, root, ref));
  } else if (kind == "Lease") {
    root->zero["spec"] = Json::object();
  } else if (kind == "ServiceAccount") {
    // secrets: patchStrategy=merge, patchMergeKey=name; imagePullSecrets has
    // no strategy (replaced whole).
    MapList(s, FieldOf(s, root, "secrets"), {"name"}, "name");
    AtomicList(FieldOf(s, root, "imagePullSecrets"));
  } else if (kind == "Role" || kind == "ClusterRole") {
    AtomicList(FieldOf(s, root, "rules"));
    AtomicList(At(s, root, "aggregationRule.clusterRoleSelectors"));
  } else if (kind == "RoleBinding" || kind == "ClusterRoleBinding") {
    AtomicList(FieldOf(s, root, "subjects"));
  } else if (kind == "PodDisruptionBudget") {
    with_status();
    // spec.selector: patchStrategy=replace.
    AtomicMap(At(s, root, "spec.selector"));
  }
}

// The fields the strategy resets, which the field manager ignores: status on
// the main resource of a kind with a status subresource, spec on /status.
FieldSet IgnoredFields(std::string_view kind, std::string_view subresource, const KindHints& hints) {
  if (subresource == "status") return SetOfPaths({{"spec"}});
  if (subresource.empty() && HasStatusSubresource(kind, hints)) return SetOfPaths({{"status"}});
  return FieldSet{};
}

// stripMetaManager's set: never owned by anyone.
FieldSet StripSet() {
  return SetOfPaths({{"apiVersion"},
                     {"kind"},
                     {"metadata"},
                     {"metadata", "name"},
                     {"metadata", "namespace"},
                     {"metadata", "creationTimestamp"},
                     {"metadata", "selfLink"},
                     {"metadata", "uid"},
                     {"metadata", "clusterName"},
                     {"metadata", "generation"},
                     {"metadata", "managedFields"},
                     {"metadata", "resourceVersion"}});
}

// ===========================================================================
// 4. Typed walks over JSON (structured-merge-diff typed)
// ===========================================================================

enum class Shape { kScalar, kObject, kArray };

// How a value is handled: objects as maps, arrays as lists, null as the
// declared type when known (a null struct is an absent map), else a scalar.
Shape ShapeOf(const Json& v, const SchemaNode& n) {
  if (v.is_object()) return Shape::kObject;
  if (v.is_array()) return Shape::kArray;
  if (v.is_null()) {
    if (n.shape == DeclaredShape::kObject || n.atomic_map) return Shape::kObject;
    if (n.shape == DeclaredShape::kArray) return Shape::kArray;
  }
  return Shape::kScalar;
}

// listItemToPathElement: the key of a list item, or an error message.
std::optional<PathElement> ListItemPe(const Json& item, const SchemaNode& list, int index,
                                      std::string& error) {
  PathElement pe;
  switch (list.list) {
    case ListType::kMap: {
      if (item.is_null()) {
        error = "associative list with keys may not have a null element";
        return std::nullopt;
      }
      if (!item.is_object()) {
        error = "associative list with keys may not have non-map elements";
        return std::nullopt;
      }
      pe.kind = PathElement::Kind::kKey;
      for (const auto& key : list.keys) {
        const auto it = item.find(key);
        if (it != item.end()) {
          pe.key.emplace_back(key, *it);
        } else if (list.key_defaults.contains(key)) {
          pe.key.emplace_back(key, list.key_defaults.at(key));
        } else {
          error = "associative list with keys has an element that omits key field " + GoQuote(key) +
                  " (and doesn't have default value)";
          return std::nullopt;
        }
      }
      std::sort(pe.key.begin(), pe.key.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      return pe;
    }
    case ListType::kSet:
      if (item.is_object()) {
        error = "associative list without keys has an element that's a map type";
        return std::nullopt;
      }
      if (item.is_array()) {
        error = "not supported: associative list with lists as elements";
        return std::nullopt;
      }
      if (item.is_null()) {
        error = "associative list without keys has an element that's an explicit null";
        return std::nullopt;
      }
      pe.kind = PathElement::Kind::kValue;
      pe.value = item;
      return pe;
    case ListType::kAtomic:
      pe.kind = PathElement::Kind::kIndex;
      pe.index = index;
      return pe;
  }
  return std::nullopt;
}

const Json* Find(const Json* object, const std::string& key) {
  if (object == nullptr || !object->is_object()) return nullptr;
  const auto it = object->find(key);
  return it == object->end() ? nullptr : &*it;
}

// Calls visit(key, lhs value, rhs value) for every key of either object:
// first lhs's keys in lhs order, then the keys only rhs has, in rhs order.
// A missing object, or a missing key, is nullptr.
template <typename Visit>
void ForEachKey(const Json* lhs, const Json* rhs, const Visit& visit) {
  if (lhs) {
    for (const auto& [k, v] : lhs->items()) visit(k, &v, Find(rhs, k));
  }
  if (rhs) {
    for (const auto& [k, v] : rhs->items()) {
      if (!Find(lhs, k)) visit(k, nullptr, &v);
    }
  }
}

// TypedValue.ToFieldSet.
void ToFieldSetWalk(const Json& v, const SchemaNode& n, const Schema& s, Path& path, FieldSet& out) {
  switch (ShapeOf(v, n)) {
    case Shape::kScalar:
      out.Insert(path);
      return;
    case Shape::kObject:
      if (n.atomic_map) {
        out.Insert(path);
        return;
      }
      if (!v.is_object()) return;
      for (const auto& [k, child] : v.items()) {
        path.push_back(PathElement::Field(k));
        ToFieldSetWalk(child, s.Child(n, k), s, path, out);
        path.pop_back();
      }
      return;
    case Shape::kArray: {
      if (n.list == ListType::kAtomic) {
        out.Insert(path);
        return;
      }
      if (!v.is_array()) return;
      for (std::size_t i = 0; i < v.size(); ++i) {
        std::string error;
        auto pe = ListItemPe(v[i], n, static_cast<int>(i), error);
        if (!pe) continue;
        path.push_back(*pe);
        ToFieldSetWalk(v[i], s.Element(n), s, path, out);
        out.Insert(path);
        path.pop_back();
      }
      return;
    }
  }
}

FieldSet ToFieldSet(const Json& v, const Schema& s) {
  Path path;
  FieldSet out;
  ToFieldSetWalk(v, s.Root(), s, path, out);
  return out;
}

// The list checks of ObjectToTyped: keys present, items of the right kind,
// no duplicates (unless allowed, as for live objects).
void ValidateWalk(const Json& v, const SchemaNode& n, const Schema& s, const std::string& path,
                  bool allow_duplicates, std::vector<std::string>& errors) {
  if (v.is_object() && !n.atomic_map) {
    for (const auto& [k, child] : v.items()) {
      ValidateWalk(child, s.Child(n, k), s, path + "." + k, allow_duplicates, errors);
    }
  } else if (v.is_array() && n.list != ListType::kAtomic) {
    std::set<PathElement, PeLess> observed;
    for (std::size_t i = 0; i < v.size(); ++i) {
      std::string error;
      auto pe = ListItemPe(v[i], n, static_cast<int>(i), error);
      if (!pe) {
        errors.push_back(path + ": element " + std::to_string(i) + ": " + error);
        return;
      }
      if (observed.count(*pe) && !allow_duplicates) {
        errors.push_back(path + ": duplicate entries for key " + PeString(*pe));
      }
      observed.insert(*pe);
      ValidateWalk(v[i], s.Element(n), s, path + PeString(*pe), allow_duplicates, errors);
    }
  }
}

// ValidationErrors.Error().
std::string JoinValidationErrors(const std::vector<std::string>& errors) {
  if (errors.size() == 1) return errors.front();
  std::string out = "errors:";
  for (const auto& e : errors) out += "\n  " + e;
  return out;
}

// Fills in Go's zero values (see SchemaNode::zero) so that comparisons see
// what structured-merge-diff sees in a Go object.
void OverlayZero(Json& v, const SchemaNode& n, const Schema& s) {
  if (v.is_object()) {
    if (n.zero.is_object()) {
      for (const auto& [k, z] : n.zero.items()) {
        if (!v.contains(k)) v[k] = z;
      }
    }
    for (auto& [k, child] : v.items()) OverlayZero(child, s.Child(n, k), s);
  } else if (v.is_array()) {
    for (auto& e : v) OverlayZero(e, s.Element(n), s);
  }
}

struct Comparison {
  FieldSet removed;
  FieldSet modified;
  FieldSet added;

  void Exclude(const FieldSet& ignored) {
    if (ignored.Empty()) return;
    removed = removed.RecursiveDifference(ignored);
    modified = modified.RecursiveDifference(ignored);
    added = added.RecursiveDifference(ignored);
  }
};

// TypedValue.Compare (compareWalker).
class Comparer {
 public:
  Comparer(const Schema& s, Comparison& out) : s_(s), out_(out) {}

  void Walk(const Json* lhs, const Json* rhs, const SchemaNode& n, Path& path) {
    bool in_leaf = false;
    const Shape ls = lhs ? ShapeOf(*lhs, n) : Shape::kScalar;
    const Shape rs = rhs ? ShapeOf(*rhs, n) : Shape::kScalar;
    if (lhs && rhs && ls != rs) {
      bool other_leaf = false;
      Handle(ls, lhs, rhs, n, path, other_leaf);
      Handle(rs, lhs, rhs, n, path, in_leaf);
    } else {
      Handle(lhs ? ls : rs, lhs, rhs, n, path, in_leaf);
    }
    if (!in_leaf) {
      if (lhs == nullptr) {
        out_.added.Insert(path);
      } else if (rhs == nullptr) {
        out_.removed.Insert(path);
      }
    }
  }

 private:
  void Leaf(const Json* lhs, const Json* rhs, const Path& path, bool& in_leaf) {
    if (in_leaf) return;
    in_leaf = true;
    if (lhs == nullptr) {
      out_.added.Insert(path);
    } else if (rhs == nullptr) {
      out_.removed.Insert(path);
    } else if (!JsonEqual(*lhs, *rhs)) {
      out_.modified.Insert(path);
    }
  }

  void Handle(Shape shape, const Json* lhs, const Json* rhs, const SchemaNode& n, Path& path,
              bool& in_leaf) {
    switch (shape) {
      case Shape::kScalar:
        Leaf(lhs, rhs, path, in_leaf);
        return;
      case Shape::kObject: {
        const Json* lm = lhs && lhs->is_object() ? lhs : nullptr;
        const Json* rm = rhs && rhs->is_object() ? rhs : nullptr;
        const bool empty = (!lm || lm->empty()) && (!rm || rm->empty());
        if (n.atomic_map || empty) {
          Leaf(lhs, rhs, path, in_leaf);
          return;
        }
        ForEachKey(lm, rm, [&](const std::string& k, const Json* l, const Json* r) {
          path.push_back(PathElement::Field(k));
          Walk(l, r, s_.Child(n, k), path);
          path.pop_back();
        });
        return;
      }
      case Shape::kArray: {
        const Json* ll = lhs && lhs->is_array() ? lhs : nullptr;
        const Json* rl = rhs && rhs->is_array() ? rhs : nullptr;
        const bool empty = (!ll || ll->empty()) && (!rl || rl->empty());
        if (n.list == ListType::kAtomic || empty) {
          Leaf(lhs, rhs, path, in_leaf);
          return;
        }
        std::map<PathElement, const Json*, PeLess> lvalues, rvalues;
        if (ll) {
          for (std::size_t i = 0; i < ll->size(); ++i) {
            std::string error;
            if (auto pe = ListItemPe((*ll)[i], n, static_cast<int>(i), error)) lvalues.emplace(*pe, &(*ll)[i]);
          }
        }
        if (rl) {
          for (std::size_t i = 0; i < rl->size(); ++i) {
            std::string error;
            auto pe = ListItemPe((*rl)[i], n, static_cast<int>(i), error);
            if (!pe || rvalues.count(*pe)) continue;
            rvalues.emplace(*pe, &(*rl)[i]);
            const auto l = lvalues.find(*pe);
            path.push_back(*pe);
            Walk(l == lvalues.end() ? nullptr : l->second, &(*rl)[i], s_.Element(n), path);
            path.pop_back();
          }
        }
        if (ll) {
          for (std::size_t i = 0; i < ll->size(); ++i) {
            std::string error;
            auto pe = ListItemPe((*ll)[i], n, static_cast<int>(i), error);
            if (!pe || rvalues.count(*pe)) continue;
            path.push_back(*pe);
            Walk(&(*ll)[i], nullptr, s_.Element(n), path);
            path.pop_back();
          }
        }
        return;
      }
    }
  }

  const Schema& s_;
  Comparison& out_;
};

// Compares two objects as Go objects of the kind: zero values filled in.
Comparison CompareObjects(const Json& lhs, const Json& rhs, const Schema& s) {
  Json l = lhs, r = rhs;
  OverlayZero(l, s.Root(), s);
  OverlayZero(r, s.Root(), s);
  Comparison out;
  Comparer comparer(s, out);
  Path path;
  comparer.Walk(&l, &r, s.Root(), path);
  return out;
}

// TypedValue.Merge (mergingWalker with ruleKeepRHS). nullopt: no output.
std::optional<Json> MergeWalk(const Json* lhs, const Json* rhs, const SchemaNode& n, const Schema& s) {
  const Shape ls = lhs ? ShapeOf(*lhs, n) : Shape::kScalar;
  const Shape rs = rhs ? ShapeOf(*rhs, n) : Shape::kScalar;
  const Shape shape = rhs ? rs : ls;
  const auto keep_rhs = [&]() -> std::optional<Json> { return rhs ? *rhs : *lhs; };
  switch (shape) {
    case Shape::kScalar:
      return keep_rhs();
    case Shape::kObject: {
      const Json* lm = lhs && lhs->is_object() ? lhs : nullptr;
      const Json* rm = rhs && rhs->is_object() ? rhs : nullptr;
      const bool empty = (!lm || lm->empty()) && (!rm || rm->empty());
      if (n.atomic_map || empty) return keep_rhs();
      Json out = Json::object();
      ForEachKey(lm, rm, [&](const std::string& k, const Json* l, const Json* r) {
        if (auto m = MergeWalk(l, r, s.Child(n, k), s)) out[k] = std::move(*m);
      });
      if (out.empty()) return std::nullopt;
      return out;
    }
    case Shape::kArray: {
      const Json* ll = lhs && lhs->is_array() ? lhs : nullptr;
      const Json* rl = rhs && rhs->is_array() ? rhs : nullptr;
      const bool empty = (!ll || ll->empty()) && (!rl || rl->empty());
      if (n.list == ListType::kAtomic || empty) return keep_rhs();
      // Index both sides (indexListPathElements); bad and duplicate items are skipped.
      const auto index = [&](const Json* list, std::vector<PathElement>& order,
                             std::map<PathElement, const Json*, PeLess>& observed) {
        if (!list) return;
        for (std::size_t i = 0; i < list->size(); ++i) {
          std::string error;
          auto pe = ListItemPe((*list)[i], n, static_cast<int>(i), error);
          if (!pe || observed.count(*pe)) continue;
          observed.emplace(*pe, &(*list)[i]);
          order.push_back(*pe);
        }
      };
      std::vector<PathElement> lhs_order, rhs_order;
      std::map<PathElement, const Json*, PeLess> observed_lhs, observed_rhs;
      index(rl, rhs_order, observed_rhs);
      index(ll, lhs_order, observed_lhs);
      std::vector<const PathElement*> shared;
      for (const auto& pe : rhs_order) {
        if (observed_lhs.count(pe)) shared.push_back(&pe);
      }
      std::size_t next_shared_index = 0;
      const PathElement* next_shared = nullptr;
      const auto advance_shared = [&] {
        next_shared = next_shared_index < shared.size() ? shared[next_shared_index++] : nullptr;
      };
      advance_shared();
      std::set<PathElement, PeLess> merged_rhs;
      Json out = Json::array();
      const auto merge_item = [&](const Json* l, const Json* r) {
        if (auto m = MergeWalk(l, r, s.Element(n), s)) out.push_back(std::move(*m));
      };
      const auto lookup = [](const std::map<PathElement, const Json*, PeLess>& m, const PathElement& pe) {
        const auto it = m.find(pe);
        return it == m.end() ? nullptr : it->second;
      };
      const std::size_t l_len = lhs_order.size(), r_len = rhs_order.size();
      for (std::size_t li = 0, ri = 0; li < l_len || ri < r_len;) {
        if (li < l_len && ri < r_len) {
          const PathElement& pe = lhs_order[li];
          if (ComparePe(pe, rhs_order[ri]) == 0) {
            merged_rhs.insert(pe);
            merge_item(lookup(observed_lhs, pe), lookup(observed_rhs, pe));
            ++li;
            ++ri;
            advance_shared();
            continue;
          }
          if (observed_rhs.count(pe) && next_shared && ComparePe(*next_shared, pe) != 0) {
            ++li;  // a shared item, but not the one wanted in this round
            continue;
          }
        }
        if (li < l_len) {
          const PathElement& pe = lhs_order[li];
          if (!observed_rhs.count(pe)) {
            merge_item(lookup(observed_lhs, pe), nullptr);
            ++li;
            continue;
          }
          if (merged_rhs.count(pe)) {
            ++li;
            continue;
          }
        }
        if (ri < r_len) {
          const PathElement& pe = rhs_order[ri];
          merged_rhs.insert(pe);
          merge_item(lookup(observed_lhs, pe), lookup(observed_rhs, pe));
          ++ri;
          if (next_shared && ComparePe(*next_shared, pe) == 0) advance_shared();
        }
      }
      if (out.empty()) return std::nullopt;
      return out;
    }
  }
  return std::nullopt;
}

Json MergeObjects(const Json& live, const Json& config, const Schema& s) {
  auto merged = MergeWalk(&live, &config, s.Root(), s);
  return merged ? std::move(*merged) : Json::object();
}

// TypedValue.RemoveItems (removingWalker): the value without the paths of
// `to_remove`. A map or list left empty becomes null, as in Go.
Json RemoveWalk(const Json& v, const FieldSet& to_remove, const SchemaNode& n, const Schema& s) {
  switch (ShapeOf(v, n)) {
    case Shape::kScalar:
      return v;
    case Shape::kObject: {
      if (!v.is_object() || v.empty() || n.atomic_map) return nullptr;
      Json out = Json::object();
      for (const auto& [k, child] : v.items()) {
        const PathElement pe = PathElement::Field(k);
        if (to_remove.HasMember(pe)) continue;
        const FieldSet* sub = to_remove.ChildSet(pe);
        out[k] = (sub && !sub->Empty()) ? RemoveWalk(child, *sub, s.Child(n, k), s) : child;
      }
      if (out.empty()) return nullptr;
      return out;
    }
    case Shape::kArray: {
      if (!v.is_array() || v.empty() || n.list == ListType::kAtomic) return nullptr;
      Json out = Json::array();
      for (std::size_t i = 0; i < v.size(); ++i) {
        std::string error;
        auto pe = ListItemPe(v[i], n, static_cast<int>(i), error);
        if (!pe) {
          out.push_back(v[i]);
          continue;
        }
        if (to_remove.HasMember(*pe)) continue;
        const FieldSet* sub = to_remove.ChildSet(*pe);
        out.push_back((sub && !sub->Empty()) ? RemoveWalk(v[i], *sub, s.Element(n), s) : v[i]);
      }
      if (out.empty()) return nullptr;
      return out;
    }
  }
  return v;
}

Json RemoveItems(const Json& v, const FieldSet& to_remove, const Schema& s) {
  return RemoveWalk(v, to_remove, s.Root(), s);
}

// ===========================================================================
// 5. Managed fields (apiserver managedfields)
// ===========================================================================

constexpr const char* kApply = "Apply";
constexpr const char* kUpdate = "Update";
constexpr std::size_t kMaxUpdateManagers = 10;     // DefaultMaxUpdateManagers
constexpr std::size_t kFieldManagerMaxLength = 128;

// One decoded metadata.managedFields entry.
struct ManagerEntry {
  std::string manager;
  std::string operation;  // "Apply" or "Update"
  std::string api_version;
  std::string subresource;
  std::optional<std::string> time;
  FieldSet set;

  bool applied() const { return operation == kApply; }
  // The time in Unix seconds, 0 when unset: the precision entries sort by.
  std::int64_t unix_time() const { return time ? UnixSeconds(*time) : 0; }
};

// Keyed by BuildManagerIdentifier's string.
using Managed = std::map<std::string, ManagerEntry>;

// BuildManagerIdentifier: the entry without time and fields, as Go's JSON;
// appliers do not include their apiVersion.
std::string ManagerIdentifier(const std::string& manager, const std::string& operation,
                              const std::string& api_version, const std::string& subresource) {
  std::string out = "{";
  bool first = true;
  const auto add = [&](const char* name, const std::string& value) {
    if (value.empty()) return;
    if (!first) out += ',';
    first = false;
    AppendGoJsonString(out, name);
    out += ':';
    AppendGoJsonString(out, value);
  };
  add("manager", manager);
  add("operation", operation);
  add("apiVersion", operation == kApply ? std::string() : api_version);
  add("subresource", subresource);
  return out + "}";
}

// printManager, as conflict messages name a manager.
std::string PrintManager(const ManagerEntry& e) {
  std::string out = GoQuote(e.manager);
  if (!e.subresource.empty()) out += " with subresource " + GoQuote(e.subresource);
  if (e.operation == kUpdate) out += " using " + e.api_version;
  return out;
}

const Json* ManagedFieldsOf(const Json& object) {
  const Json* meta = Find(&object, "metadata");
  const Json* mf = Find(meta, "managedFields");
  return mf && mf->is_array() ? mf : nullptr;
}

void RemoveManagedFields(Json& object) {
  if (object.is_object() && object.contains("metadata") && object["metadata"].is_object()) {
    object["metadata"].erase("managedFields");
  }
}

// object[name] when it is a string, else "" (also when `object` is nullptr).
std::string StringField(const Json* object, const char* name) {
  const Json* v = Find(object, name);
  return v && v->is_string() ? v->get<std::string>() : std::string();
}

std::string StringField(const Json& object, const char* name) { return StringField(&object, name); }

// DecodeManagedFields.
bool DecodeManaged(const Json& object, Managed& out, std::string& error) {
  out.clear();
  const Json* entries = ManagedFieldsOf(object);
  if (entries == nullptr) return true;
  for (std::size_t i = 0; i < entries->size(); ++i) {
    const Json& e = (*entries)[i];
    if (!e.is_object()) {
      error = "invalid managed fields entry " + std::to_string(i);
      return false;
    }
    ManagerEntry entry;
    entry.manager = StringField(e, "manager");
    entry.operation = StringField(e, "operation");
    entry.api_version = StringField(e, "apiVersion");
    entry.subresource = StringField(e, "subresource");
    if (const Json* t = Find(&e, "time"); t && t->is_string()) entry.time = t->get<std::string>();
    if (entry.operation != kApply && entry.operation != kUpdate) {
      error = "operation must be `Apply` or `Update`";
      return false;
    }
    if (entry.api_version.empty()) {
      error = "apiVersion must not be empty";
      return false;
    }
    const std::string fields_type = StringField(e, "fieldsType");
    if (fields_type.empty()) {
      error = "missing fieldsType in managed fields entry " + std::to_string(i);
      return false;
    }
    if (fields_type != "FieldsV1") {
      error = "invalid fieldsType " + GoQuote(fields_type) + " in managed fields entry " + std::to_string(i);
      return false;
    }
    if (const Json* f = Find(&e, "fieldsV1"); f && !f->is_null()) {
      std::string set_error;
      if (!FieldSet::FromFieldsV1(*f, entry.set, set_error)) {
        error = "error decoding versioned set: " + set_error;
        return false;
      }
    }
    out[ManagerIdentifier(entry.manager, entry.operation, entry.api_version, entry.subresource)] =
        std::move(entry);
  }
  return true;
}

// isResetManagedFields: `[]`, or one entry with nothing set.
bool IsResetManagedFields(const Json& object) {
  const Json* mf = ManagedFieldsOf(object);
  if (mf == nullptr) return false;
  if (mf->empty()) return true;
  if (mf->size() != 1) return false;
  const Json& e = (*mf)[0];
  if (!e.is_object()) return false;
  for (const auto& [k, v] : e.items()) {
    if (!v.is_null() && !(v.is_string() && v.get_ref<const std::string&>().empty())) return false;
  }
  return true;
}

// encodeManagedFields + sortEncodedManagedFields.
Json EncodeManaged(const Managed& managed) {
  std::vector<const ManagerEntry*> entries;
  for (const auto& [_, e] : managed) entries.push_back(&e);
  std::stable_sort(entries.begin(), entries.end(), [](const ManagerEntry* p, const ManagerEntry* q) {
    if (p->operation != q->operation) return p->operation < q->operation;
    if (p->unix_time() != q->unix_time()) return p->unix_time() < q->unix_time();
    if (p->manager != q->manager) return p->manager < q->manager;
    if (p->api_version != q->api_version) return p->api_version < q->api_version;
    return p->subresource < q->subresource;
  });
  Json out = Json::array();
  for (const ManagerEntry* e : entries) {
    Json entry = Json::object();
    if (!e->manager.empty()) entry["manager"] = e->manager;
    entry["operation"] = e->operation;
    entry["apiVersion"] = e->api_version;
    if (e->time) entry["time"] = *e->time;
    entry["fieldsType"] = "FieldsV1";
    entry["fieldsV1"] = e->set.ToFieldsV1();
    if (!e->subresource.empty()) entry["subresource"] = e->subresource;
    out.push_back(std::move(entry));
  }
  return out;
}

void SetManagedFields(Json& object, const Managed& managed) {
  if (managed.empty()) {
    RemoveManagedFields(object);
    return;
  }
  if (!object.contains("metadata") || !object["metadata"].is_object()) object["metadata"] = Json::object();
  object["metadata"]["managedFields"] = EncodeManaged(managed);
}

// capManagersManager: past 10 Update entries, the oldest fold into one
// "ancient-changes" entry per apiVersion.
void CapManagers(Managed& managed) {
  std::vector<std::string> updaters;
  for (const auto& [id, e] : managed) {
    if (!e.applied()) updaters.push_back(id);
  }
  if (updaters.size() <= kMaxUpdateManagers) return;
  std::stable_sort(updaters.begin(), updaters.end(), [&](const std::string& a, const std::string& b) {
    const std::int64_t sa = managed.at(a).unix_time();
    const std::int64_t sb = managed.at(b).unix_time();
    if (sa != sb) return sa < sb;
    return a < b;
  });
  std::map<std::string, std::string> version_to_first;
  std::size_t length = updaters.size();
  for (std::size_t i = 0; i < updaters.size() && length > kMaxUpdateManagers; ++i) {
    const std::string& id = updaters[i];
    const ManagerEntry entry = managed.at(id);
    const std::string bucket = ManagerIdentifier("ancient-changes", kUpdate, entry.api_version, "");
    const auto first = version_to_first.find(entry.api_version);
    if (first == version_to_first.end()) {
      version_to_first[entry.api_version] = id;
      continue;
    }
    if (!managed.count(bucket)) {
      ManagerEntry moved = managed.at(first->second);
      managed.erase(first->second);
      moved.manager = "ancient-changes";
      moved.operation = kUpdate;
      moved.subresource.clear();
      managed[bucket] = std::move(moved);
    }
    ManagerEntry& b = managed[bucket];
    b.set = entry.set.Union(b.set);
    b.api_version = entry.api_version;
    b.time = entry.time;
    managed.erase(id);
    --length;
  }
}

// IgnoreManagedFieldsTimestampsTransformer: when a write changes nothing but
// managedFields timestamps, the old timestamps are kept.
void KeepTimestampsIfUnchanged(const Json& old_object, Json& new_object) {
  const Json* old_mf = ManagedFieldsOf(old_object);
  const Json* new_mf = ManagedFieldsOf(new_object);
  if (!old_mf || !new_mf || old_mf->size() != new_mf->size() || new_mf->empty()) return;
  Json old_copy = old_object, new_copy = new_object;
  bool times_changed = false;
  for (std::size_t i = 0; i < new_mf->size(); ++i) {
    const Json* ot = Find(&(*old_mf)[i], "time");
    const Json* nt = Find(&(*new_mf)[i], "time");
    if ((ot == nullptr) != (nt == nullptr) || (ot && !JsonEqual(*ot, *nt))) times_changed = true;
    if (old_copy["metadata"]["managedFields"][i].is_object()) old_copy["metadata"]["managedFields"][i].erase("time");
    if (new_copy["metadata"]["managedFields"][i].is_object()) new_copy["metadata"]["managedFields"][i].erase("time");
  }
  if (!times_changed || !JsonEqual(old_copy, new_copy)) return;
  for (std::size_t i = 0; i < new_mf->size(); ++i) {
    Json& entry = new_object["metadata"]["managedFields"][i];
    if (const Json* ot = Find(&(*old_mf)[i], "time")) {
      entry["time"] = *ot;
    } else {
      entry.erase("time");
    }
  }
  // Keep the real server's key order: time before fieldsType.
  for (auto& entry : new_object["metadata"]["managedFields"]) {
    Json ordered = Json::object();
    for (const char* k : {"manager", "operation", "apiVersion", "time", "fieldsType", "fieldsV1", "subresource"}) {
      if (entry.contains(k)) ordered[k] = entry[k];
    }
    for (const auto& [k, v] : entry.items()) {
      if (!ordered.contains(k)) ordered[k] = v;
    }
    entry = std::move(ordered);
  }
}

// ===========================================================================
// 6. Server-side apply and update tracking
// ===========================================================================

using Conflicts = std::map<std::string, FieldSet>;

// merge.Updater.update: other managers lose what this write changed (or, for
// an apply without force, those changes are conflicts) and what it removed.
// Returns false with `conflicts` filled when an apply conflicts.
bool UpdateManagers(const Json& old_object, const Json& new_object, const Schema& s,
                    const FieldSet& ignored, Managed& managers, const std::string& workflow,
                    bool force, Conflicts& conflicts, Comparison* compare_out = nullptr) {
  Comparison compare = CompareObjects(old_object, new_object, s);
  compare.Exclude(ignored);
  const FieldSet changed = compare.modified.Union(compare.added);
  for (const auto& [id, e] : managers) {
    if (id == workflow) continue;
    FieldSet conflict = e.set.Intersection(changed);
    if (!conflict.Empty()) conflicts[id] = std::move(conflict);
  }
  if (!force && !conflicts.empty()) return false;
  for (const auto& [id, conflict] : conflicts) managers[id].set = managers[id].set.Difference(conflict);
  if (!compare.removed.Empty()) {
    for (auto& [id, e] : managers) {
      if (id != workflow) e.set = e.set.Difference(compare.removed);
    }
  }
  for (auto it = managers.begin(); it != managers.end();) {
    it = it->second.set.Empty() ? managers.erase(it) : std::next(it);
  }
  if (compare_out) *compare_out = std::move(compare);
  return true;
}

// Updater.prune: removes what the applier applied last time and no longer
// applies, unless some manager still owns it.
Json Prune(const Json& merged, const Managed& managers, const FieldSet* last_set, const Schema& s) {
  if (last_set == nullptr || last_set->Empty()) return merged;
  const FieldSet last = last_set->EnsureNamedFieldsAreMembers();
  Json pruned = RemoveItems(merged, last, s);
  // addBackOwnedItems.
  FieldSet managed;
  for (const auto& [_, e] : managers) managed = managed.Union(e.set);
  {
    const FieldSet merged_set = ToFieldSet(merged, s).EnsureNamedFieldsAreMembers();
    const FieldSet pruned_set = ToFieldSet(pruned, s).EnsureNamedFieldsAreMembers();
    pruned = RemoveItems(merged, merged_set.Difference(pruned_set.Union(managed.EnsureNamedFieldsAreMembers())), s);
  }
  // addBackDanglingItems.
  const FieldSet pruned_set = ToFieldSet(pruned, s).EnsureNamedFieldsAreMembers();
  const FieldSet merged_set = ToFieldSet(merged, s).EnsureNamedFieldsAreMembers();
  return RemoveItems(merged, merged_set.Difference(pruned_set).Intersection(last), s);
}

PatchError ConflictError(const Conflicts& conflicts, const Managed& managers) {
  std::vector<std::pair<std::string, Path>> list;
  for (const auto& entry : conflicts) {
    const std::string& id = entry.first;
    entry.second.Iterate([&](const Path& p) { list.emplace_back(id, p); });
  }
  PatchError error{409, "Conflict", "", {}, {}, {}, {}};
  for (const auto& [id, path] : list) {
    error.causes.push_back(
        PatchCause{"FieldManagerConflict", "conflict with " + PrintManager(managers.at(id)), PathString(path)});
  }
  if (list.size() == 1) {
    error.message = "Apply failed with 1 conflict: conflict with " + PrintManager(managers.at(list[0].first)) +
                    ": " + PathString(list[0].second);
    return error;
  }
  std::string body;
  std::string current;
  for (const auto& [id, path] : list) {
    if (id != current) {
      if (!body.empty()) body += '\n';
      body += "conflicts with " + PrintManager(managers.at(id)) + ":";
      current = id;
    }
    body += "\n- " + PathString(path);
  }
  error.message = "Apply failed with " + std::to_string(list.size()) + " conflicts: " + body;
  return error;
}

// GroupVersionKind.String.
std::string GvkString(const std::string& api_version, const std::string& kind) {
  std::string group, version = api_version;
  if (const auto slash = api_version.find('/'); slash != std::string::npos) {
    group = api_version.substr(0, slash);
    version = api_version.substr(slash + 1);
  }
  return group + "/" + version + ", Kind=" + kind;
}

// objectGVKNN: "namespace/name; group/version, Kind=kind".
std::string ObjectGvkNN(const Json& object) {
  const Json* meta = Find(&object, "metadata");
  return StringField(meta, "namespace") + "/" + StringField(meta, "name") + "; " +
         GvkString(StringField(object, "apiVersion"), StringField(object, "kind"));
}

constexpr const char* kLastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration";

// The object's last-applied-configuration annotation, or nullptr.
const Json* LastAppliedOf(const Json& object) {
  return Find(Find(Find(&object, "metadata"), "annotations"), kLastAppliedAnnotation);
}

// lastAppliedUpdater: kubectl's server-side apply keeps the client-side
// annotation in step when the object has one.
void SyncLastApplied(const Json& config, Json& result) {
  if (!LastAppliedOf(result)) return;
  Json applied = config;
  if (applied.contains("metadata") && applied["metadata"].is_object() &&
      applied["metadata"].contains("annotations") && applied["metadata"]["annotations"].is_object()) {
    applied["metadata"]["annotations"].erase(kLastAppliedAnnotation);
  }
  result["metadata"]["annotations"][kLastAppliedAnnotation] = GoJson(applied) + "\n";
}

// lastAppliedManager.allowedConflictsFromLastApplied: the fields of the
// client-side last-applied configuration that still hold their applied values
// in the live object. Returns true when every conflict is among them;
// otherwise narrows `conflicts` to the ones that are not and returns false.
bool AllowedByLastApplied(const Json& live, const Schema& s, Conflicts& conflicts) {
  const Json* text = LastAppliedOf(live);
  if (text == nullptr || !text->is_string() || text->get_ref<const std::string&>().empty()) return false;
  const Json last_applied = Json::parse(text->get<std::string>(), nullptr, false);
  if (last_applied.is_discarded() || !last_applied.is_object()) return false;
  const Comparison comparison = CompareObjects(last_applied, live, s);
  const FieldSet allowed = ToFieldSet(last_applied, s)
                               .Difference(comparison.modified)
                               .Difference(comparison.added)
                               .Difference(comparison.removed);
  Conflicts remaining;
  for (const auto& [id, set] : conflicts) {
    FieldSet rest;
    set.Iterate([&](const Path& p) {
      if (!allowed.Has(p)) rest.Insert(p);
    });
    if (!rest.Empty()) remaining[id] = std::move(rest);
  }
  if (remaining.empty()) return true;
  conflicts = std::move(remaining);
  return false;
}

PatchResult ApplyImpl(const ApplyRequest& r) {
  if (auto error = ValidatePatchOptions(r.manager, true, false)) return *error;
  Json config = r.config.is_null() ? Json::object() : r.config;
  if (!config.is_object()) {
    return BadRequest("error decoding YAML: error unmarshaling JSON: while decoding JSON: " +
                      CannotUnmarshal(config, kGoMap));
  }
  // versionCheckManager.
  const std::string config_api_version = StringField(config, "apiVersion");
  const std::string config_kind = StringField(config, "kind");
  if (config_api_version != r.api_version || config_kind != r.kind) {
    return BadRequest("invalid object type: " + GvkString(config_api_version, config_kind));
  }
  if (ManagedFieldsOf(config) != nullptr) return BadRequest("metadata.managedFields must be nil");

  Schema schema;
  BuildKindSchema(schema, r.kind, r.api_version, r.hints);
  std::vector<std::string> errors;
  ValidateWalk(config, schema.Root(), schema, "", false, errors);
  if (!errors.empty()) {
    return InternalError("failed to create typed patch object (" + ObjectGvkNN(config) +
                         "): " + JoinValidationErrors(errors));
  }
  Json live = r.live ? *r.live : Json::object();
  Managed managers;
  if (r.live) {
    std::string error;
    if (!DecodeManaged(*r.live, managers, error)) {
      return InternalError("failed to decode managed fields: " + error);
    }
    RemoveManagedFields(live);
    ValidateWalk(live, schema.Root(), schema, "", true, errors);
    if (!errors.empty()) {
      return InternalError("failed to create typed live object (" + ObjectGvkNN(live) +
                           "): " + JoinValidationErrors(errors));
    }
  }

  const FieldSet ignored = IgnoredFields(r.kind, r.subresource, r.hints);
  const std::string id = ManagerIdentifier(r.manager, kApply, "", r.subresource);
  Json merged = MergeObjects(live, config, schema);
  std::optional<FieldSet> last_set;
  std::optional<std::string> last_time;
  if (const auto it = managers.find(id); it != managers.end()) {
    last_set = it->second.set;
    last_time = it->second.time;
  }
  managers[id] = ManagerEntry{r.manager, kApply, r.api_version, r.subresource, last_time,
                              ToFieldSet(config, schema).RecursiveDifference(ignored)};
  merged = Prune(merged, managers, last_set ? &*last_set : nullptr, schema);

  Conflicts conflicts;
  const Managed before = managers;
  if (!UpdateManagers(live, merged, schema, ignored, managers, id, r.force, conflicts)) {
    // lastAppliedManager: kubectl's server-side apply may take over what its
    // client-side apply recorded in the last-applied annotation.
    if (r.manager != "kubectl" || !AllowedByLastApplied(live, schema, conflicts)) {
      return ConflictError(conflicts, before);
    }
    managers = before;
    conflicts.clear();
    UpdateManagers(live, merged, schema, ignored, managers, id, true, conflicts);
  }
  // stripMetaManager, then managedFieldsUpdater's timestamp.
  if (const auto it = managers.find(id); it != managers.end()) {
    it->second.set = it->second.set.Difference(StripSet());
    if (it->second.set.Empty()) {
      managers.erase(it);
    } else {
      it->second.time = r.time;
    }
  }
  CapManagers(managers);

  Json result = merged.is_object() ? std::move(merged) : Json::object();
  DropNulls(result);
  SetManagedFields(result, managers);
  if (r.manager == "kubectl") SyncLastApplied(config, result);
  if (r.live) KeepTimestampsIfUnchanged(*r.live, result);
  return result;
}

Json TrackUpdateImpl(const Json* old_object, const Json& new_object, const std::string& manager,
                     const std::string& api_version, const std::string& time,
                     const std::string& subresource, const KindHints& hints) {
  Json result = new_object;
  if (!result.is_object()) return result;
  // decodeLiveOrNew.
  Managed managed;
  std::string error;
  const auto decode_live = [&] {
    Managed m;
    if (old_object == nullptr || !DecodeManaged(*old_object, m, error)) return Managed{};
    return m;
  };
  if (!subresource.empty()) {
    managed = decode_live();
  } else if (!IsResetManagedFields(new_object)) {
    if (!DecodeManaged(new_object, managed, error) || managed.empty()) managed = decode_live();
  }
  RemoveManagedFields(result);
  // skipNonAppliedManager: an update of an untracked object stays untracked.
  if (managed.empty() && !StringField(Find(old_object, "metadata"), "uid").empty()) return result;

  const std::string kind = StringField(result, "kind");
  Schema schema;
  BuildKindSchema(schema, kind, api_version, hints);
  Json old_value = old_object ? *old_object : Json::object();
  RemoveManagedFields(old_value);
  std::vector<std::string> errors;
  ValidateWalk(result, schema.Root(), schema, "", true, errors);
  ValidateWalk(old_value, schema.Root(), schema, "", true, errors);
  if (!errors.empty()) return result;  // UpdateNoErrors: managedFields dropped

  const FieldSet ignored = IgnoredFields(kind, subresource, hints);
  Conflicts conflicts;
  Comparison compare;
  UpdateManagers(old_value, result, schema, ignored, managed, "", true, conflicts, &compare);
  FieldSet current = compare.modified.Union(compare.added)
                         .Difference(compare.removed)
                         .RecursiveDifference(ignored)
                         .Difference(StripSet());
  if (!current.Empty()) {
    const std::string name = manager.empty() ? "unknown" : manager;
    const std::string id = ManagerIdentifier(name, kUpdate, api_version, subresource);
    if (const auto it = managed.find(id); it != managed.end()) current = current.Union(it->second.set);
    managed[id] = ManagerEntry{name, kUpdate, api_version, subresource, time, std::move(current)};
  }
  CapManagers(managed);
  SetManagedFields(result, managed);
  if (old_object) KeepTimestampsIfUnchanged(*old_object, result);
  return result;
}

// ===========================================================================
// 7. Merge patch and JSON patch (evanphx/json-patch v4)
// ===========================================================================

void MergeDocs(Json& doc, const Json& patch);

// merge(cur, patch): an object merges into an object; anything else replaces
// (pruned of nulls unless it replaces an object).
Json MergeNode(Json cur, Json patch) {
  if (!cur.is_object()) {
    DropNulls(patch);
    return patch;
  }
  if (!patch.is_object()) return patch;
  MergeDocs(cur, patch);
  return cur;
}

void MergeDocs(Json& doc, const Json& patch) {
  for (const auto& [k, v] : patch.items()) {
    if (v.is_null()) {
      doc.erase(k);
      continue;
    }
    const auto it = doc.find(k);
    if (it == doc.end() || it->is_null()) {
      Json value = v;
      DropNulls(value);
      doc[k] = std::move(value);
    } else {
      *it = MergeNode(*it, v);
    }
  }
}

std::string DecodePatchKey(std::string_view k) {
  std::string out;
  for (std::size_t i = 0; i < k.size(); ++i) {
    if (k[i] == '~' && i + 1 < k.size() && (k[i + 1] == '0' || k[i + 1] == '1')) {
      out += k[i + 1] == '1' ? '/' : '~';
      ++i;
    } else {
      out += k[i];
    }
  }
  return out;
}

// strconv.Atoi; on failure returns nullopt and Go's error text.
std::optional<long long> GoAtoi(const std::string& s, std::string& error) {
  std::size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  if (i == s.size()) {
    error = "strconv.Atoi: parsing " + GoQuote(s) + ": invalid syntax";
    return std::nullopt;
  }
  unsigned long long value = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      error = "strconv.Atoi: parsing " + GoQuote(s) + ": invalid syntax";
      return std::nullopt;
    }
    if (value > (static_cast<unsigned long long>(INT64_MAX) + 1) / 10) overflow = true;
    value = value * 10 + static_cast<unsigned long long>(s[i] - '0');
  }
  if (overflow || value > static_cast<unsigned long long>(INT64_MAX) + (negative ? 1 : 0)) {
    error = "strconv.Atoi: parsing " + GoQuote(s) + ": value out of range";
    return std::nullopt;
  }
  return negative ? -static_cast<long long>(value) : static_cast<long long>(value);
}

std::string InvalidIndex(long long idx) {
  return "Unable to access invalid index: " + std::to_string(idx) + ": invalid index referenced";
}

// The container operations of partialDoc / partialArray. Each returns an
// error text, empty on success.
class JsonPatcher {
 public:
  explicit JsonPatcher(Json doc) : doc_(std::move(doc)) {}

  std::string Apply(const Json& op) {
    const std::string kind = op.is_object() && op.contains("op") && op["op"].is_string()
                                 ? op["op"].get<std::string>()
                                 : "unknown";
    if (kind == "add") return Add(op);
    if (kind == "remove") return Remove(op);
    if (kind == "replace") return Replace(op);
    if (kind == "move") return Move(op);
    if (kind == "test") return Test(op);
    if (kind == "copy") return Copy(op);
    return "Unexpected kind: " + kind;
  }

  Json& doc() { return doc_; }

 private:
  // Where an operation's path (or from) points.
  struct Location {
    std::string path;           // as the operation spells it
    Json* container = nullptr;  // the object or array holding the last token
    std::string key;            // the last token, decoded
  };

  // Which member of an operation names a location, and evanphx's words when
  // the operation cannot use it. Both failures wrap ErrMissing ("missing
  // value"); each operation words them its own way.
  struct LocationField {
    const char* field;        // "path" or "from"
    const char* undecodable;  // the operation has no such string
    const char* missing;      // the document lacks the container; "%s" is the path
  };
  static constexpr LocationField kAddPath{
      "path", "add operation failed to decode path",
      "add operation does not apply: doc is missing path: \"%s\""};
  static constexpr LocationField kRemovePath{
      "path", "remove operation failed to decode path",
      "remove operation does not apply: doc is missing path: \"%s\""};
  static constexpr LocationField kReplacePath{
      "path", "replace operation failed to decode path",
      "replace operation does not apply: doc is missing path: %s"};
  static constexpr LocationField kMoveFrom{
      "from", "move operation failed to decode from: operation, missing from field",
      "move operation does not apply: doc is missing from path: %s"};
  static constexpr LocationField kMovePath{
      "path", "move operation failed to decode path: operation missing path field",
      "move operation does not apply: doc is missing destination path: %s"};
  static constexpr LocationField kTestPath{
      "path", "test operation failed to decode path: operation missing path field",
      "test operation does not apply: is missing path: %s"};
  static constexpr LocationField kCopyFrom{
      "from", "copy operation failed to decode from: operation, missing from field",
      "copy operation does not apply: doc is missing from path: %s"};
  static constexpr LocationField kCopyPath{
      "path", "copy operation failed to decode path",
      "copy operation does not apply: doc is missing destination path: %s"};

  static std::optional<std::string> StringOf(const Json& op, const char* name) {
    if (!op.is_object()) return std::nullopt;
    const auto it = op.find(name);
    if (it == op.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  }

  static Json ValueOf(const Json& op) {
    const auto it = op.find("value");
    return it == op.end() ? Json() : *it;
  }

  // findObject: the container holding the last path token, or nullptr.
  Json* FindObject(const std::string& path, std::string& key) {
    std::vector<std::string> split;
    std::size_t start = 0;
    while (true) {
      const std::size_t slash = path.find('/', start);
      split.push_back(path.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
      if (slash == std::string::npos) break;
      start = slash + 1;
    }
    if (split.size() < 2) return nullptr;
    Json* doc = &doc_;
    for (std::size_t i = 1; i + 1 < split.size(); ++i) {
      Json* next = nullptr;
      if (!Get(*doc, DecodePatchKey(split[i]), next).empty() || next == nullptr) return nullptr;
      if (!next->is_structured()) return nullptr;
      doc = next;
    }
    key = DecodePatchKey(split.back());
    return doc;
  }

  // Resolves op[of.field] into `out`. Returns the error text, empty on
  // success.
  std::string Locate(const Json& op, const LocationField& of, Location& out) {
    const auto path = StringOf(op, of.field);
    if (!path) return std::string(of.undecodable) + ": missing value";
    out.path = *path;
    out.container = FindObject(out.path, out.key);
    if (out.container) return "";
    const std::string_view missing = of.missing;
    const std::size_t at = missing.find("%s");
    return std::string(missing.substr(0, at)) + out.path + std::string(missing.substr(at + 2)) + ": missing value";
  }

  // The position `i` names in an array of `size` elements, negative values
  // counting from the end. Returns the error text, empty on success.
  static std::string ResolveIndex(long long i, long long size, std::size_t& index) {
    if (i >= size) return InvalidIndex(i);
    if (i < 0) {
      if (i < -size) return InvalidIndex(i);
      i += size;
    }
    index = static_cast<std::size_t>(i);
    return "";
  }

  // ResolveIndex of the array index `key` spells; strconv.Atoi's text when
  // it spells none.
  static std::string ParseIndex(const Json& array, const std::string& key, std::size_t& index) {
    std::string error;
    const auto i = GoAtoi(key, error);
    if (!i) return error;
    return ResolveIndex(*i, static_cast<long long>(array.size()), index);
  }

  // get: a missing object key (or a null value) is no error, just nothing.
  static std::string Get(Json& c, const std::string& key, Json*& out) {
    out = nullptr;
    if (c.is_object()) {
      const auto it = c.find(key);
      if (it != c.end() && !it->is_null()) out = &*it;
      return "";
    }
    std::size_t i = 0;
    if (auto e = ParseIndex(c, key, i); !e.empty()) return e;
    if (!c[i].is_null()) out = &c[i];
    return "";
  }

  static std::string AddTo(Json& c, const std::string& key, Json value) {
    if (c.is_object()) {
      c[key] = std::move(value);
      return "";
    }
    if (key == "-") {
      c.push_back(std::move(value));
      return "";
    }
    std::string error;
    const auto idx = GoAtoi(key, error);
    if (!idx) return "value was not a proper array index: '" + key + "': " + error;
    // One past the end is a place to insert at.
    std::size_t i = 0;
    if (auto e = ResolveIndex(*idx, static_cast<long long>(c.size()) + 1, i); !e.empty()) return e;
    c.insert(c.begin() + static_cast<std::ptrdiff_t>(i), std::move(value));
    return "";
  }

  // Replace has checked with Get that the index is in range.
  static std::string SetIn(Json& c, const std::string& key, Json value) {
    if (c.is_object()) {
      c[key] = std::move(value);
      return "";
    }
    std::size_t i = 0;
    if (auto e = ParseIndex(c, key, i); !e.empty()) return e;
    c[i] = std::move(value);
    return "";
  }

  static std::string RemoveFrom(Json& c, const std::string& key) {
    if (c.is_object()) {
      if (!c.contains(key)) return "Unable to remove nonexistent key: " + key + ": missing value";
      c.erase(key);
      return "";
    }
    std::size_t i = 0;
    if (auto e = ParseIndex(c, key, i); !e.empty()) return e;
    c.erase(c.begin() + static_cast<std::ptrdiff_t>(i));
    return "";
  }

  std::string Add(const Json& op) {
    Location to;
    if (auto e = Locate(op, kAddPath, to); !e.empty()) return e;
    if (auto e = AddTo(*to.container, to.key, ValueOf(op)); !e.empty()) {
      return "error in add for path: '" + to.path + "': " + e;
    }
    return "";
  }

  std::string Remove(const Json& op) {
    Location at;
    if (auto e = Locate(op, kRemovePath, at); !e.empty()) return e;
    if (auto e = RemoveFrom(*at.container, at.key); !e.empty()) {
      return "error in remove for path: '" + at.path + "': " + e;
    }
    return "";
  }

  std::string Replace(const Json& op) {
    Location at;
    if (auto e = Locate(op, kReplacePath, at); !e.empty()) return e;
    Json* existing = nullptr;
    if (!Get(*at.container, at.key, existing).empty()) {
      return "replace operation does not apply: doc is missing key: " + at.path + ": missing value";
    }
    if (auto e = SetIn(*at.container, at.key, ValueOf(op)); !e.empty()) {
      return "error in remove for path: '" + at.path + "': " + e;
    }
    return "";
  }

  std::string Move(const Json& op) {
    Location from;
    if (auto e = Locate(op, kMoveFrom, from); !e.empty()) return e;
    Json* found = nullptr;
    if (auto e = Get(*from.container, from.key, found); !e.empty()) {
      return "error in move for path: '" + from.key + "': " + e;
    }
    Json value = found ? *found : Json();
    if (auto e = RemoveFrom(*from.container, from.key); !e.empty()) {
      return "error in move for path: '" + from.key + "': " + e;
    }
    Location to;
    if (auto e = Locate(op, kMovePath, to); !e.empty()) return e;
    if (auto e = AddTo(*to.container, to.key, std::move(value)); !e.empty()) {
      return "error in move for path: '" + to.path + "': " + e;
    }
    return "";
  }

  std::string Test(const Json& op) {
    Location at;
    if (auto e = Locate(op, kTestPath, at); !e.empty()) return e;
    Json* found = nullptr;
    if (auto e = Get(*at.container, at.key, found); !e.empty()) {
      return "error in test for path: '" + at.path + "': " + e;
    }
    const auto it = op.find("value");
    const bool has_value = it != op.end() && !it->is_null();
    const std::string failed = "testing value " + at.path + " failed: test failed";
    if (found == nullptr) return has_value ? failed : "";
    if (!has_value) return failed;
    // lazyNode.equal compares scalars by their compact JSON text: 1 is not 1.0.
    const auto same_text = [](const Json& a, const Json& b) {
      if (a.is_number() && b.is_number() && a.is_number_float() != b.is_number_float()) return false;
      return NumericallyEqual(a, b);
    };
    return DeepEqual(*found, *it, same_text) ? "" : failed;
  }

  std::string Copy(const Json& op) {
    Location from;
    if (auto e = Locate(op, kCopyFrom, from); !e.empty()) return e;
    Json* found = nullptr;
    if (auto e = Get(*from.container, from.key, found); !e.empty()) {
      return "error in copy for from: '" + from.path + "': " + e;
    }
    Json value = found ? *found : Json();
    Location to;
    if (auto e = Locate(op, kCopyPath, to); !e.empty()) return e;
    if (auto e = AddTo(*to.container, to.key, std::move(value)); !e.empty()) {
      return "error while adding value during copy: " + e;
    }
    return "";
  }

  Json doc_;
};

constexpr std::size_t kMaxJsonPatchOperations = 10000;

// ===========================================================================
// 8. Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch)
// ===========================================================================
//
// Errors are thrown as SmpFailure inside this section and caught at the
// StrategicMergePatch boundary. The classification is the apiserver's
// interpretStrategicMergePatchError.

struct SmpFailure {
  PatchError error;
};

[[noreturn]] void SmpBadRequest(const std::string& message) { throw SmpFailure{BadRequest(message)}; }

[[noreturn]] void SmpUnprocessable(const std::string& message) { throw SmpFailure{Unprocessable(message)}; }

[[noreturn]] void SmpInternal(const std::string& message) { throw SmpFailure{InternalError(message)}; }

constexpr std::string_view kDirectiveMarker = "$patch";
constexpr std::string_view kRetainKeysDirective = "$retainKeys";
constexpr std::string_view kDeleteFromPrimitiveListPrefix = "$deleteFromPrimitiveList";
constexpr std::string_view kSetElementOrderPrefix = "$setElementOrder";

bool StartsWith(std::string_view s, std::string_view prefix) { return s.rfind(prefix, 0) == 0; }

// reflect.TypeOf(v).String() for a decoded value.
std::string GoTypeName(const Json& v) {
  switch (v.type()) {
    case Json::value_t::object: return "map[string]interface {}";
    case Json::value_t::array: return "[]interface {}";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::number_float: return "float64";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned: return "int64";
    default: return "%!s(<nil>)";
  }
}

[[noreturn]] void ErrBadArgType(const char* expected, const Json& actual) {
  SmpInternal(std::string("expected a ") + expected + ", but received a " + GoTypeName(actual));
}

[[noreturn]] void ErrNoMergeKey(const Json& m, const std::string& key) {
  SmpInternal("map: " + GoFormat(m) + " does not contain declared merge key: " + key);
}

[[noreturn]] void ErrBadPatchType(const Json& t, const Json& m) {
  SmpInternal("unknown patch type: " + (t.is_string() ? t.get<std::string>() : "%!s(" + GoTypeName(t) + "=" + GoFormat(t) + ")") +
              " in map: " + GoFormat(m));
}

// extractKey: "$prefix/key" -> "key".
std::string ExtractKey(const std::string& s, std::string_view prefix) {
  const auto slash = s.find('/');
  if (slash == std::string::npos || std::string_view(s).substr(0, slash) != prefix) {
    if (prefix == kDeleteFromPrimitiveListPrefix) SmpBadRequest("invalid patch format of primitive list");
    SmpBadRequest("invalid patch format of setElementOrder list");
  }
  return s.substr(slash + 1);
}

// sliceElementType: the common Go type of the elements of all lists.
int SliceElementType(std::initializer_list<const Json*> lists) {
  int prev = -1;
  for (const Json* list : lists) {
    if (!list) continue;
    for (const auto& v : *list) {
      const int t = GoTypeTag(v);
      if (prev == -1) {
        prev = t;
        if (v.is_array()) SmpUnprocessable("lists of lists are not supported");
      } else if (prev != t) {
        std::string all = "[";
        AppendJoined(all, lists, " ", [&](const Json* l) { all += l ? GoFormat(*l) : "[]"; });
        SmpInternal("list element types are not identical: " + all + "]");
      }
    }
  }
  if (prev == -1) SmpInternal("no elements in any of the given slices");
  return prev;
}

constexpr int kMapType = 6;

// The value `index` compares: the merge key of a map item, the item itself
// otherwise.
Json OrderValue(const Json& item, const std::string& merge_key, int kind) {
  if (kind == kMapType) {
    if (!item.is_object()) return nullptr;
    const auto it = item.find(merge_key);
    return it == item.end() ? Json() : *it;
  }
  return item;
}

bool GoEqualOrBothNil(const Json& a, const Json& b) {
  if (a.is_null() && b.is_null()) return true;
  return GoScalarEqual(a, b);
}

int IndexOf(const Json& list, const Json& value, const std::string& merge_key, int kind) {
  const Json v = OrderValue(value, merge_key, kind);
  for (std::size_t i = 0; i < list.size(); ++i) {
    if (GoEqualOrBothNil(v, OrderValue(list[i], merge_key, kind))) return static_cast<int>(i);
  }
  return -1;
}

void ValidateMergeKeyInLists(const std::string& merge_key, std::initializer_list<const Json*> lists) {
  for (const Json* list : lists) {
    for (const auto& item : *list) {
      if (!item.is_object()) ErrBadArgType(kGoMap, item);
      if (!item.contains(merge_key)) ErrNoMergeKey(item, merge_key);
    }
  }
}

// extractToDeleteItems.
std::pair<Json, Json> ExtractToDeleteItems(const Json& list) {
  Json keep = Json::array(), remove = Json::array();
  for (const auto& v : list) {
    if (!v.is_object()) ErrBadArgType(kGoMap, v);
    const auto it = v.find(kDirectiveMarker);
    if (it != v.end() && it->is_string() && *it == "delete") {
      remove.push_back(v);
    } else {
      keep.push_back(v);
    }
  }
  return {keep, remove};
}

// normalizeSliceOrder: stable insertion sort by position in `order` (items
// missing from `order` sort as Go's sort.SliceStable leaves them).
Json NormalizeSliceOrder(Json to_sort, const Json& order, const std::string& merge_key, int kind) {
  Json to_delete = Json::array();
  if (kind == kMapType) {
    ValidateMergeKeyInLists(merge_key, {&to_sort, &order});
    auto split = ExtractToDeleteItems(to_sort);
    to_sort = std::move(split.first);
    to_delete = std::move(split.second);
  }
  const auto less = [&](const Json& a, const Json& b) {
    if (const int ia = IndexOf(order, a, merge_key, kind); ia >= 0) {
      if (const int ib = IndexOf(order, b, merge_key, kind); ib >= 0) return ia < ib;
    }
    return true;
  };
  for (std::size_t i = 1; i < to_sort.size(); ++i) {
    for (std::size_t j = i; j > 0 && less(to_sort[j], to_sort[j - 1]); --j) std::swap(to_sort[j], to_sort[j - 1]);
  }
  for (auto& d : to_delete) to_sort.push_back(std::move(d));
  return to_sort;
}

// mergeSortedSlice: inserts the server-only items (left) among the patch
// items (right), keeping both relative orders.
Json MergeSortedSlice(const Json& left, const Json& right, const Json& server_order, const std::string& merge_key,
                      int kind) {
  Json out = Json::array();
  std::size_t i = 0, j = 0;
  const std::size_t size = left.size() + right.size();
  for (std::size_t k = 0; k < size; ++k) {
    if (i >= left.size() && j < right.size()) {
      out.push_back(right[j++]);
    } else if (j >= right.size() && i < left.size()) {
      out.push_back(left[i++]);
    } else {
      const int li = IndexOf(server_order, left[i], merge_key, kind);
      const int ri = IndexOf(server_order, right[j], merge_key, kind);
      if (li >= 0 && ri >= 0 && li < ri) {
        out.push_back(left[i++]);
      } else {
        out.push_back(right[j++]);
      }
    }
  }
  return out;
}

Json NormalizeElementOrder(const Json& patch, const Json& server_only, const Json& patch_order,
                           const Json& server_order, const std::string& merge_key, int kind) {
  const Json p = NormalizeSliceOrder(patch, patch_order, merge_key, kind);
  const Json s = NormalizeSliceOrder(server_only, server_order, merge_key, kind);
  return MergeSortedSlice(s, p, server_order, merge_key, kind);
}

// findMapInSliceBasedOnKeyValue.
int FindMapInSlice(const Json& list, const std::string& key, const Json& value) {
  for (std::size_t k = 0; k < list.size(); ++k) {
    if (!list[k].is_object()) SmpInternal("value for key " + std::to_string(k) + " is not a map");
    const auto it = list[k].find(key);
    if (it != list[k].end() && GoScalarEqual(*it, value)) return static_cast<int>(k);
  }
  return -1;
}

std::pair<Json, Json> PartitionPrimitives(const Json& original, const Json& partition_by) {
  Json patch = Json::array(), server_only = Json::array();
  for (const auto& v : original) {
    bool in_patch = false;
    for (const auto& p : partition_by) in_patch = in_patch || GoScalarEqual(v, p);
    (in_patch ? patch : server_only).push_back(v);
  }
  return {patch, server_only};
}

std::pair<Json, Json> PartitionMaps(const Json& original, const Json& partition_by, const std::string& merge_key) {
  Json patch = Json::array(), server_only = Json::array();
  for (const auto& v : original) {
    if (!v.is_object()) ErrBadArgType(kGoMap, v);
    const auto it = v.find(merge_key);
    if (it == v.end()) ErrNoMergeKey(v, merge_key);
    (FindMapInSlice(partition_by, merge_key, *it) >= 0 ? patch : server_only).push_back(v);
  }
  return {patch, server_only};
}

// deduplicateScalars, with its order-changing swap.
Json DeduplicateScalars(Json s) {
  auto length = static_cast<long long>(s.size()) - 1;
  for (long long i = 0; i < length; ++i) {
    for (long long j = i + 1; j <= length; ++j) {
      if (GoScalarEqual(s[static_cast<std::size_t>(i)], s[static_cast<std::size_t>(j)])) {
        s[static_cast<std::size_t>(j)] = s[static_cast<std::size_t>(length)];
        s.erase(static_cast<std::size_t>(length));
        --length;
        --j;
      }
    }
  }
  return s;
}

Json MergeMapSmp(Json original, Json patch, const SchemaNode& n, const Schema& s);

Json MergeSliceSmp(Json original, Json patch, const SchemaNode& list, const Schema& s, bool is_delete_list) {
  if (original.empty() && patch.empty()) return original;
  const int kind = SliceElementType({&original, &patch});
  const std::string& merge_key = list.smp_key;
  Json merged;
  if (kind != kMapType) {
    if (is_delete_list) {
      Json kept = Json::array();
      for (const auto& v : original) {
        bool remove = false;
        for (const auto& d : patch) remove = remove || GoScalarEqual(v, d);
        if (!remove) kept.push_back(v);
      }
      return kept;
    }
    Json both = original;
    for (const auto& v : patch) both.push_back(v);
    merged = DeduplicateScalars(std::move(both));
  } else {
    if (merge_key.empty()) SmpInternal("cannot merge lists without merge key");
    // mergeSliceWithSpecialElements.
    Json without_special = Json::array();
    bool replace = false;
    for (const auto& v : patch) {
      const auto directive = v.find(kDirectiveMarker);
      if (directive == v.end()) {
        without_special.push_back(v);
        continue;
      }
      if (directive->is_string() && *directive == "delete") {
        const auto value = v.find(merge_key);
        if (value == v.end()) ErrNoMergeKey(v, merge_key);
        for (int at; (at = FindMapInSlice(original, merge_key, *value)) >= 0;) {
          original.erase(static_cast<std::size_t>(at));
        }
      } else if (directive->is_string() && *directive == "replace") {
        replace = true;
      } else if (directive->is_string() && *directive == "merge") {
        SmpInternal("merging lists cannot yet be specified in the patch");
      } else {
        ErrBadPatchType(*directive, v);
      }
    }
    if (replace) {
      original = std::move(without_special);
      patch = Json::array();
    } else {
      patch = std::move(without_special);
    }
    // mergeSliceWithoutSpecialElements.
    merged = original;
    for (const auto& v : patch) {
      const auto value = v.find(merge_key);
      if (value == v.end()) ErrNoMergeKey(v, merge_key);
      const int at = FindMapInSlice(merged, merge_key, *value);
      if (at >= 0) {
        merged[static_cast<std::size_t>(at)] =
            MergeMapSmp(merged[static_cast<std::size_t>(at)], v, s.Element(list), s);
      } else {
        merged.push_back(v);
      }
    }
  }
  auto [patch_items, server_only] =
      merge_key.empty() ? PartitionPrimitives(merged, patch) : PartitionMaps(merged, patch, merge_key);
  return NormalizeElementOrder(patch_items, server_only, patch, original, merge_key, kind);
}

Json MergeSliceHandler(const Json& original, const Json& patch, const SchemaNode& list, const Schema& s,
                       bool is_delete_list) {
  if (!original.is_array()) ErrBadArgType(kGoSlice, original);
  if (!patch.is_array()) ErrBadArgType(kGoSlice, patch);
  if (list.smp == SmpStrategy::kMerge) return MergeSliceSmp(original, patch, list, s, is_delete_list);
  return patch;
}

// applyRetainKeysDirective.
void ApplyRetainKeys(Json& original, Json& patch) {
  const auto it = patch.find(kRetainKeysDirective);
  if (it == patch.end()) return;
  const Json retain = *it;
  patch.erase(std::string(kRetainKeysDirective));
  if (!retain.is_array()) SmpBadRequest("invalid patch format of retainKeys");
  const auto retained = [&](const std::string& k) {
    return std::any_of(retain.begin(), retain.end(), [&](const Json& r) { return r.is_string() && r == k; });
  };
  for (const auto& [k, v] : patch.items()) {
    if (v.is_null() || StartsWith(k, kDeleteFromPrimitiveListPrefix) || StartsWith(k, kSetElementOrderPrefix)) continue;
    if (!retained(k)) SmpBadRequest("invalid patch format of retainKeys");
  }
  for (auto o = original.begin(); o != original.end();) {
    o = retained(o.key()) ? std::next(o) : original.erase(o);
  }
}

// validatePatchWithSetOrderList.
void ValidatePatchWithSetOrderList(const Json& patch_list, const Json& order, const std::string& merge_key) {
  if (order.empty() || patch_list.empty()) return;
  const Json non_delete = merge_key.empty() ? patch_list : ExtractToDeleteItems(patch_list).first;
  std::size_t pi = 0, si = 0;
  while (pi < non_delete.size() && si < order.size()) {
    if (non_delete[pi].is_object() && non_delete[pi].contains(kDirectiveMarker)) {
      ++pi;
      continue;
    }
    bool equal = false;
    if (merge_key.empty()) {
      equal = GoScalarEqual(non_delete[pi], order[si]);
    } else {
      if (!non_delete[pi].is_object()) ErrBadArgType(kGoMap, non_delete[pi]);
      if (!order[si].is_object()) ErrBadArgType(kGoMap, order[si]);
      const auto l = non_delete[pi].find(merge_key);
      if (l == non_delete[pi].end()) ErrNoMergeKey(non_delete[pi], merge_key);
      const auto r = order[si].find(merge_key);
      if (r == order[si].end()) ErrNoMergeKey(order[si], merge_key);
      equal = GoScalarEqual(*l, *r);
    }
    if (equal) ++pi;
    ++si;
  }
  if (pi < non_delete.size() && si >= order.size()) {
    SmpInternal("The order in patch list:\n" + GoFormat(patch_list) + "\n doesn't match $setElementOrder list:\n" +
                GoFormat(order) + "\n");
  }
}

// mergePatchIntoOriginal: the $setElementOrder lists and their lists.
void MergePatchIntoOriginal(Json& original, Json& patch, const SchemaNode& n, const Schema& s) {
  std::vector<std::string> keys;
  for (const auto& [k, _] : patch.items()) {
    if (StartsWith(k, kSetElementOrderPrefix)) keys.push_back(k);
  }
  for (const auto& key : keys) {
    const Json order = patch[key];
    patch.erase(key);
    if (!order.is_array()) ErrBadArgType(kGoSlice, order);
    const std::string original_key = ExtractKey(key, kSetElementOrderPrefix);
    const auto oit = original.find(original_key);
    const auto pit = patch.find(original_key);
    const bool found_original = oit != original.end();
    const bool found_patch = pit != patch.end();
    Json original_list = Json::array(), patch_list = Json::array();
    if (found_original) {
      if (!oit->is_array()) ErrBadArgType(kGoSlice, *oit);
      original_list = *oit;
    }
    if (found_patch) {
      if (!pit->is_array()) ErrBadArgType(kGoSlice, *pit);
      patch_list = *pit;
    }
    const SchemaNode& list = s.Child(n, original_key);
    ValidatePatchWithSetOrderList(patch_list, order, list.smp_key);
    Json merged;
    if (found_original && !found_patch) {
      merged = original_list;
    } else if (!found_original && found_patch) {
      merged = patch_list;
    } else if (found_original && found_patch) {
      merged = MergeSliceHandler(original_list, patch_list, list, s, false);
    } else {
      continue;
    }
    auto [patch_items, server_only] = list.smp_key.empty() ? PartitionPrimitives(merged, order)
                                                           : PartitionMaps(merged, order, list.smp_key);
    const int kind = SliceElementType({&original_list, &patch_list});
    original[original_key] =
        NormalizeElementOrder(patch_items, server_only, order, original_list, list.smp_key, kind);
    patch.erase(original_key);
  }
}

// mergeMap with MergeParallelList and IgnoreUnmatchedNulls, as the server runs it.
Json MergeMapSmp(Json original, Json patch, const SchemaNode& n, const Schema& s) {
  if (const auto it = patch.find(kDirectiveMarker); it != patch.end()) {
    if (it->is_string() && *it == "replace") {
      patch.erase(std::string(kDirectiveMarker));
      return patch;
    }
    if (it->is_string() && *it == "delete") return Json::object();
    ErrBadPatchType(*it, patch);
  }
  if (original.is_null()) original = Json::object();
  ApplyRetainKeys(original, patch);
  MergePatchIntoOriginal(original, patch, n, s);
  for (const auto& [patch_key, patch_value] : patch.items()) {
    std::string k = patch_key;
    bool is_delete_list = false;
    if (StartsWith(k, kDeleteFromPrimitiveListPrefix)) {
      k = ExtractKey(k, kDeleteFromPrimitiveListPrefix);
      is_delete_list = true;
    }
    if (patch_value.is_null()) {
      original.erase(k);
      continue;
    }
    const auto oit = original.find(k);
    if (oit == original.end() || GoTypeTag(*oit) != GoTypeTag(patch_value)) {
      if (!is_delete_list) {
        Json value = patch_value;
        DropNulls(value);  // discardNullValuesFromPatch
        original[k] = std::move(value);
      }
      continue;
    }
    const SchemaNode& child = s.Child(n, k);
    if (oit->is_object()) {
      *oit = MergeMapSmp(*oit, patch_value, child, s);
    } else if (oit->is_array()) {
      *oit = MergeSliceHandler(*oit, patch_value, child, s, is_delete_list);
    } else {
      *oit = patch_value;
    }
  }
  return original;
}

// What decoding the result into the Go type drops: nulls and "$" directives.
void DropDirectivesAndNulls(Json& v) {
  DropMembers(v, [](const std::string& key, const Json& value) { return value.is_null() || StartsWith(key, "$"); });
}

// ===========================================================================
// 9. YAML (sigs.k8s.io/yaml over go-yaml v2)
// ===========================================================================

// A conversion error after parsing; `message` follows "error converting YAML
// to JSON: " as sigs.k8s.io/yaml words it (these carry no line in Go either).
struct YamlFailure {
  std::string message;
};

bool OneOf(std::string_view s, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), s) != set.end();
}

// strconv.ParseInt(s, 0, 64) / ParseUint(s, 0, 64).
std::optional<Json> ParseGoInteger(std::string_view s) {
  bool negative = false;
  std::size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i] == '-';
    ++i;
  }
  int base = 10;
  if (s.size() - i > 1 && s[i] == '0') {
    const char p = s[i + 1];
    if (p == 'x' || p == 'X') {
      base = 16;
      i += 2;
    } else if (p == 'b' || p == 'B') {
      base = 2;
      i += 2;
    } else if (p == 'o' || p == 'O') {
      base = 8;
      i += 2;
    } else {
      base = 8;
      i += 1;
    }
  }
  if (i >= s.size()) return std::nullopt;
  unsigned long long value = 0;
  const auto res = std::from_chars(s.data() + i, s.data() + s.size(), value, base);
  if (res.ec != std::errc() || res.ptr != s.data() + s.size()) return std::nullopt;
  if (negative) {
    if (value > static_cast<unsigned long long>(INT64_MAX) + 1) return std::nullopt;
    return Json(static_cast<std::int64_t>(-static_cast<long long>(value - 1) - 1));
  }
  if (value <= static_cast<unsigned long long>(INT64_MAX)) return Json(static_cast<std::int64_t>(value));
  return Json(static_cast<std::uint64_t>(value));
}

// go-yaml's yamlStyleFloat: ^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$
bool YamlStyleFloat(std::string_view s) {
  std::size_t i = 0;
  const auto digits = [&] {
    const std::size_t start = i;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') ++i;
    return i - start;
  };
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  if (i < s.size() && s[i] == '.') {
    ++i;
    if (digits() == 0) return false;
  } else {
    if (digits() == 0) return false;
    if (i < s.size() && s[i] == '.') {
      ++i;
      digits();
    }
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
    if (digits() == 0) return false;
  }
  return i == s.size();
}

std::optional<double> ParseGoFloat(const std::string& s) {
  if (s.empty()) return std::nullopt;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || errno == ERANGE) return std::nullopt;
  return v;
}

// A float the way it comes back out of YAML -> JSON (json.Marshal) -> object
// decoding: integral values become integers.
Json FloatValue(double v) {
  if (std::isnan(v)) throw YamlFailure{"json: unsupported value: NaN"};
  if (std::isinf(v)) throw YamlFailure{std::string("json: unsupported value: ") + (v > 0 ? "+Inf" : "-Inf")};
  if (std::trunc(v) == v && std::fabs(v) < 9.2e18) return Json(static_cast<std::int64_t>(v));
  return Json(v);
}

// go-yaml v2's resolve for a plain scalar.
Json ResolvePlain(const std::string& in) {
  if (OneOf(in, {"y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "ON"})) return true;
  if (OneOf(in, {"n", "N", "no", "No", "NO", "false", "False", "FALSE", "off", "Off", "OFF"})) return false;
  if (OneOf(in, {"", "~", "null", "Null", "NULL"})) return nullptr;
  if (OneOf(in, {".nan", ".NaN", ".NAN"})) return FloatValue(std::nan(""));
  if (OneOf(in, {".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"})) {
    return FloatValue(std::numeric_limits<double>::infinity());
  }
  if (OneOf(in, {"-.inf", "-.Inf", "-.INF"})) return FloatValue(-std::numeric_limits<double>::infinity());
  const char c = in[0];
  if (c == '.') {
    if (auto f = ParseGoFloat(in)) return FloatValue(*f);
    return in;
  }
  if (c == '+' || c == '-' || (c >= '0' && c <= '9')) {
    std::string plain;
    for (char ch : in) {
      if (ch != '_') plain += ch;
    }
    if (auto i = ParseGoInteger(plain)) return *i;
    if (YamlStyleFloat(plain)) {
      if (auto f = ParseGoFloat(plain)) return FloatValue(*f);
    }
  }
  return in;
}

Json ConvertYaml(const YAML::Node& n);

Json ScalarValue(const YAML::Node& n) {
  const std::string& tag = n.Tag();
  const std::string& value = n.Scalar();
  if (tag == "!" || tag == "tag:yaml.org,2002:str") return value;
  if (tag == "?" || tag.empty() || tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
      tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null") {
    return ResolvePlain(value);
  }
  return value;  // an unknown tag keeps the text
}

// A map key as sigs.k8s.io/yaml turns it into a JSON key.
std::string KeyString(const YAML::Node& k) {
  if (!k.IsScalar()) {
    if (k.IsNull()) throw YamlFailure{"unsupported map key of type: %!s(<nil>)"};
    throw YamlFailure{"unsupported map key of type: " +
                      std::string(k.IsMap() ? "map[interface {}]interface {}" : "[]interface {}")};
  }
  const Json v = ScalarValue(k);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer() || v.is_number_unsigned()) return IntegerText(v);
  if (v.is_number_float()) return GoFloat(static_cast<double>(static_cast<float>(v.get<double>())));
  throw YamlFailure{"unsupported map key of type: %!s(<nil>)"};
}

void MergeInto(Json& out, const YAML::Node& source) {
  if (source.IsMap()) {
    const Json m = ConvertYaml(source);
    for (const auto& [k, v] : m.items()) out[k] = v;
  } else if (source.IsSequence()) {
    // Earlier maps take precedence: apply them last.
    for (std::size_t i = source.size(); i-- > 0;) MergeInto(out, source[i]);
  } else {
    throw YamlFailure{"yaml: map merge requires map or sequence of maps as the value"};
  }
}

Json ConvertYaml(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return ScalarValue(n);
    case YAML::NodeType::Sequence: {
      Json out = Json::array();
      for (const auto& item : n) out.push_back(ConvertYaml(item));
      return out;
    }
    case YAML::NodeType::Map: {
      Json out = Json::object();
      for (const auto& entry : n) {
        if (entry.first.IsScalar() && entry.first.Tag() == "?" && entry.first.Scalar() == "<<") {
          MergeInto(out, entry.second);
          continue;
        }
        out[KeyString(entry.first)] = ConvertYaml(entry.second);
      }
      return out;
    }
  }
  return nullptr;
}

// yaml-cpp's wording where go-yaml says it differently.
std::string GoYamlMessage(const std::string& message) {
  static constexpr std::pair<std::string_view, std::string_view> kMessages[] = {
      {"illegal map value", "mapping values are not allowed in this context"},
      {"end of map not found", "did not find expected key"},
      {"end of sequence not found", "did not find expected '-' indicator"},
      {"end of map flow not found", "did not find expected ',' or '}'"},
      {"end of sequence flow not found", "did not find expected ',' or ']'"},
      {"illegal tab when looking for indentation", "found character that cannot start any token"},
      {"unknown escape character", "found unknown escape character"},
      {"the referenced anchor is not defined", "unknown anchor referenced"},
  };
  for (const auto& [cpp, go] : kMessages) {
    if (StartsWith(message, cpp)) return std::string(go);
  }
  return message;
}

// Whether line `line` (0-based) is indented with a tab, which go-yaml reports
// as "found character that cannot start any token" whatever yaml-cpp says.
bool TabIndented(std::string_view text, int line) {
  if (line < 0) return false;
  std::size_t start = 0;
  for (int i = 0; i < line; ++i) {
    start = text.find('\n', start);
    if (start == std::string_view::npos) return false;
    ++start;
  }
  for (std::size_t i = start; i < text.size() && (text[i] == ' ' || text[i] == '\t'); ++i) {
    if (text[i] == '\t') return true;
  }
  return false;
}

PatchError Unexpected(const std::exception& e) {
  return InternalError(std::string("internal error while patching: ") + e.what());
}

}  // namespace

// ===========================================================================
// Public API
// ===========================================================================

PatchResult YamlToJson(std::string_view text) {
  try {
    const YAML::Node document = YAML::Load(std::string(text));
    return ConvertYaml(document);
  } catch (const YamlFailure& f) {
    return BadRequest("error converting YAML to JSON: " + f.message);
  } catch (const YAML::Exception& e) {
    std::string message = "error converting YAML to JSON: yaml: ";
    if (e.mark.line >= 0) message += "line " + std::to_string(e.mark.line + 1) + ": ";
    return BadRequest(message + (TabIndented(text, e.mark.line) ? "found character that cannot start any token"
                                                                 : GoYamlMessage(e.msg)));
  } catch (const std::exception& e) {
    return Unexpected(e);
  }
}

PatchResult MergePatch(const Json& target, const Json& patch) {
  try {
    if (patch.is_object()) {
      if (!target.is_object()) {
        Json result = patch;
        DropNulls(result);
        return result;
      }
      Json result = target;
      MergeDocs(result, patch);
      return result;
    }
    if (patch.is_array()) {
      Json result = patch;
      DropNulls(result);
      return result;
    }
    return BadRequest("Invalid JSON Patch");
  } catch (const std::exception& e) {
    return Unexpected(e);
  }
}

PatchResult JsonPatch(const Json& target, const Json& patch) {
  try {
    if (patch.is_null()) return target;
    if (!patch.is_array()) {
      return BadRequest(CannotUnmarshal(patch, "jsonpatch.Patch"));
    }
    for (const auto& op : patch) {
      if (!op.is_object() && !op.is_null()) {
        return BadRequest(CannotUnmarshal(op, "jsonpatch.Operation"));
      }
    }
    if (patch.size() > kMaxJsonPatchOperations) {
      return PatchError{413, "RequestEntityTooLarge",
                        "Request entity too large: The allowed maximum operations in a JSON patch is " +
                            std::to_string(kMaxJsonPatchOperations) + ", got " + std::to_string(patch.size()),
                        {}, {}, {}, {}};
    }
    JsonPatcher patcher(target);
    for (const auto& op : patch) {
      if (std::string error = patcher.Apply(op); !error.empty()) return Unprocessable(std::move(error));
    }
    return std::move(patcher.doc());
  } catch (const std::exception& e) {
    return Unexpected(e);
  }
}

bool SupportsStrategicMergePatch(std::string_view kind) { return IsBuiltinKind(kind); }

PatchResult StrategicMergePatch(const Json& target, const Json& patch, std::string_view kind) {
  try {
    if (patch.is_null()) return target;
    if (!patch.is_object()) {
      return BadRequest(CannotUnmarshal(patch, kGoMap));
    }
    Schema schema;
    BuildKindSchema(schema, kind, "", KindHints{});
    Json result = MergeMapSmp(target.is_object() ? target : Json::object(), patch, schema.Root(), schema);
    DropDirectivesAndNulls(result);
    return result;
  } catch (const SmpFailure& f) {
    return f.error;
  } catch (const std::exception& e) {
    return Unexpected(e);
  }
}

PatchResult ServerSideApply(const ApplyRequest& request) {
  try {
    return ApplyImpl(request);
  } catch (const std::exception& e) {
    return Unexpected(e);
  }
}

Json TrackUpdate(const Json* old_object, const Json& new_object, const std::string& manager,
                 const std::string& api_version, const std::string& time, const std::string& subresource,
                 const KindHints& hints) {
  try {
    return TrackUpdateImpl(old_object, new_object, manager, api_version, time, subresource, hints);
  } catch (const std::exception&) {
    Json result = new_object;
    RemoveManagedFields(result);
    return result;
  }
}

std::optional<PatchError> ValidatePatchOptions(std::string_view field_manager, bool apply, bool force_set) {
  struct FieldError {
    std::string type;    // the cause reason
    std::string field;
    std::string body;    // ErrorBody()
  };
  std::vector<FieldError> errors;
  if (!apply && force_set) {
    errors.push_back({"FieldValueForbidden", "force", "Forbidden: may not be specified for non-apply patch"});
  }
  if (apply && field_manager.empty()) {
    errors.push_back({"FieldValueRequired", "fieldManager", "Required value: is required for apply patch"});
  }
  if (field_manager.size() > kFieldManagerMaxLength) {
    errors.push_back({"FieldValueTooLong", "fieldManager",
                      "Too long: may not be more than " + std::to_string(kFieldManagerMaxLength) + " bytes"});
  }
  for (std::size_t i = 0; i < field_manager.size();) {
    const std::size_t at = i;
    const char32_t r = DecodeRune(field_manager, i);
    if (!IsPrintRune(r)) {
      errors.push_back({"FieldValueInvalid", "fieldManager",
                        "Invalid value: " + GoQuote(field_manager) + ": invalid character U+" +
                            [&] {
                              std::string h = Hex(static_cast<unsigned>(r), 4);
                              for (auto& c : h) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
                              return h;
                            }() +
                            " (at position " + std::to_string(at) + ")"});
    }
  }
  if (errors.empty()) return std::nullopt;
  PatchError error{422, "Invalid", "", {}, "meta.k8s.io", "PatchOptions", {}};
  std::string aggregate;
  for (std::size_t i = 0; i < errors.size(); ++i) {
    error.causes.push_back({errors[i].type, errors[i].body, errors[i].field});
    if (i) aggregate += ", ";
    aggregate += errors[i].field + ": " + errors[i].body;
  }
  if (errors.size() > 1) aggregate = "[" + aggregate + "]";
  error.message = "PatchOptions.meta.k8s.io \"\" is invalid: " + aggregate;
  return error;
}

std::string ResolveFieldManager(std::string_view field_manager, std::string_view user_agent) {
  if (!field_manager.empty()) return std::string(field_manager);
  const std::string_view product = user_agent.substr(0, user_agent.find('/'));
  std::string out;
  for (std::size_t i = 0; i < product.size();) {
    const std::size_t start = i;
    const char32_t r = DecodeRune(product, i);
    if (!IsPrintRune(r)) continue;
    std::string encoded;
    if (r == 0xFFFD && i - start != 3) {
      AppendUtf8(encoded, r);
    } else {
      encoded = std::string(product.substr(start, i - start));
    }
    if (out.size() + encoded.size() > kFieldManagerMaxLength) break;
    out += encoded;
  }
  return out;
}

}  // namespace kubefold::emulator
