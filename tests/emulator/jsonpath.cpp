// A port of k8s.io/client-go/util/jsonpath (parser.go, jsonpath.go) and of
// the comparison functions it borrows from Go's text/template, keeping their
// quirks: a filter text is split with the same regular expression, a union's
// parts and a ['key'] are parsed as separate templates, a [i] whose start
// equals its end returns what was collected so far.
#include "tests/emulator/jsonpath.h"

#include <array>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <limits>

#include "tests/emulator/gojson.h"

namespace kubefold::emulator {

struct JsonPath::Node {
  enum class Kind { kList, kText, kField, kArray, kFilter, kInt, kFloat, kBool, kWildcard, kRecursive, kUnion, kIdentifier };
  struct Param {
    long long value = 0;
    bool known = false;
    bool derived = false;
  };
  Kind kind = Kind::kList;
  std::string text;  // text, field name, identifier, filter operator
  long long int_value = 0;
  double float_value = 0;
  bool bool_value = false;
  std::array<Param, 3> params{};  // array: start, end, step
  std::vector<Node> nodes;        // list: children; union: lists; filter: left list, right list
};

namespace {

using Node = JsonPath::Node;
using Kind = Node::Kind;

constexpr int kEof = -1;

Node Make(Kind kind, std::string text = {}) {
  Node n;
  n.kind = kind;
  n.text = std::move(text);
  return n;
}

bool IsSpace(int r) { return r == ' ' || r == '\t'; }
bool IsEndOfLine(int r) { return r == '\r' || r == '\n'; }
bool IsDigit(int r) { return r >= '0' && r <= '9'; }
// unicode.IsLetter/IsDigit for ASCII; every byte of a multi-byte character
// counts as a letter (client-go works on runes; names are rarely non-ASCII).
bool IsAlphaNumeric(int r) { return r == '_' || (r >= 0 && std::isalnum(r)) || r >= 0x80; }

bool IsTerminator(int r) {
  if (IsSpace(r) || IsEndOfLine(r)) return true;
  switch (r) {
    case kEof:
    case '.':
    case ',':
    case '[':
    case ']':
    case '$':
    case '@':
    case '{':
    case '}':
      return true;
    default:
      return false;
  }
}

// strconv.Atoi: optional sign, decimal digits, within int64.
bool Atoi(const std::string& s, long long* out) {
  std::size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if (i == s.size()) return false;
  unsigned long long v = 0;
  for (; i < s.size(); ++i) {
    if (!IsDigit(s[i])) return false;
    const unsigned d = static_cast<unsigned>(s[i] - '0');
    if (v > (static_cast<unsigned long long>(std::numeric_limits<long long>::max()) + 1 - d) / 10) return false;
    v = v * 10 + d;
  }
  if (!neg && v > static_cast<unsigned long long>(std::numeric_limits<long long>::max())) return false;
  *out = neg ? static_cast<long long>(0 - v) : static_cast<long long>(v);
  return true;
}

// strconv.UnquoteChar for one escape or character at s[i] inside a string
// quoted with `quote`; appends the UTF-8 bytes and advances i.
bool UnquoteChar(const std::string& s, std::size_t* i, char quote, std::string* out) {
  const char c = s[*i];
  if (c == quote && (quote == '\'' || quote == '"')) return false;
  if (c != '\\') {
    *out += c;
    ++*i;
    return true;
  }
  if (*i + 1 >= s.size()) return false;
  const char e = s[*i + 1];
  *i += 2;
  auto hex = [&](int n, std::uint32_t* v) {
    if (*i + static_cast<std::size_t>(n) > s.size()) return false;
    *v = 0;
    for (int k = 0; k < n; ++k) {
      const char h = s[*i + static_cast<std::size_t>(k)];
      int d;
      if (h >= '0' && h <= '9') {
        d = h - '0';
      } else if (h >= 'a' && h <= 'f') {
        d = h - 'a' + 10;
      } else if (h >= 'A' && h <= 'F') {
        d = h - 'A' + 10;
      } else {
        return false;
      }
      *v = *v * 16 + static_cast<std::uint32_t>(d);
    }
    *i += static_cast<std::size_t>(n);
    return true;
  };
  auto utf8 = [&](std::uint32_t r) {
    if (r < 0x80) {
      *out += static_cast<char>(r);
    } else if (r < 0x800) {
      *out += static_cast<char>(0xc0 | (r >> 6));
      *out += static_cast<char>(0x80 | (r & 0x3f));
    } else if (r < 0x10000) {
      *out += static_cast<char>(0xe0 | (r >> 12));
      *out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (r & 0x3f));
    } else {
      *out += static_cast<char>(0xf0 | (r >> 18));
      *out += static_cast<char>(0x80 | ((r >> 12) & 0x3f));
      *out += static_cast<char>(0x80 | ((r >> 6) & 0x3f));
      *out += static_cast<char>(0x80 | (r & 0x3f));
    }
  };
  std::uint32_t v = 0;
  switch (e) {
    case 'a': *out += '\a'; return true;
    case 'b': *out += '\b'; return true;
    case 'f': *out += '\f'; return true;
    case 'n': *out += '\n'; return true;
    case 'r': *out += '\r'; return true;
    case 't': *out += '\t'; return true;
    case 'v': *out += '\v'; return true;
    case '\\': *out += '\\'; return true;
    case '\'':
    case '"':
      if (e != quote) return false;
      *out += e;
      return true;
    case 'x':
      if (!hex(2, &v)) return false;
      *out += static_cast<char>(v);
      return true;
    case 'u':
    case 'U':
      if (!hex(e == 'u' ? 4 : 8, &v) || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) return false;
      utf8(v);
      return true;
    default:
      if (e >= '0' && e <= '7') {
        v = static_cast<std::uint32_t>(e - '0');
        for (int k = 0; k < 2; ++k) {
          if (*i >= s.size() || s[*i] < '0' || s[*i] > '7') return false;
          v = v * 8 + static_cast<std::uint32_t>(s[(*i)++] - '0');
        }
        if (v > 255) return false;
        *out += static_cast<char>(v);
        return true;
      }
      return false;
  }
}

// client-go's UnquoteExtend: strconv.Unquote that also takes single quotes
// around a string of any length.
bool UnquoteExtend(const std::string& s, std::string* out) {
  if (s.size() < 2 || s.front() != s.back() || (s.front() != '"' && s.front() != '\'')) return false;
  const char quote = s.front();
  const std::string inner = s.substr(1, s.size() - 2);
  out->clear();
  for (std::size_t i = 0; i < inner.size();) {
    if (!UnquoteChar(inner, &i, quote, out)) return false;
  }
  return true;
}

std::string QuoteRune(int r) {
  char buf[32];
  if (r >= 0x20 && r < 0x7f) {
    std::snprintf(buf, sizeof(buf), "U+%04X '%c'", static_cast<unsigned>(r), static_cast<char>(r));
  } else {
    std::snprintf(buf, sizeof(buf), "U+%04X", static_cast<unsigned>(r));
  }
  return buf;
}

// a + b with Go's wrap-around.
long long Wrap(long long a, long long b) {
  return static_cast<long long>(static_cast<unsigned long long>(a) + static_cast<unsigned long long>(b));
}

// The groups of ^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$ ("" when a group does
// not take part); false when `text` does not match.
bool SliceGroups(const std::string& text, std::array<std::string, 3>* groups) {
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  if (parts.size() > 3) return false;
  for (const std::string& part : parts) {
    const std::size_t digits = part.size() > 0 && part[0] == '-' ? 1 : 0;
    if (part.find_first_not_of("0123456789", digits) != std::string::npos) return false;
  }
  for (std::size_t i = 0; i < 3; ++i) {
    (*groups)[i] = i >= parts.size() ? "" : (i == 0 ? parts[i] : ":" + parts[i]);
  }
  return true;
}

// The groups of ^([^!<>=]+)([!<>=]+)(.+?)$ as RE2 matches it: everything up
// to the first operator character, the run of operator characters (giving
// its last one back when nothing follows), the rest.
bool ComparisonGroups(const std::string& text, std::array<std::string, 3>* groups) {
  const auto op = text.find_first_of("!<>=");
  if (op == std::string::npos || op == 0) return false;
  auto end = text.find_first_not_of("!<>=", op);
  if (end == std::string::npos) {
    if (text.size() - op < 2) return false;
    end = text.size() - 1;
  }
  (*groups)[0] = text.substr(0, op);
  (*groups)[1] = text.substr(op, end - op);
  (*groups)[2] = text.substr(end);
  return true;
}

class Parser {
 public:
  explicit Parser(std::string_view input) : input_(input) {}

  // Parses the whole input into `root` (a list of actions and text).
  bool Parse(Node* root, std::string* error) {
    error_ = error;
    return ParseText(root);
  }

  // parseAction: the first action of "{text}".
  static bool ParseAction(const std::string& text, Node* out, std::string* error) {
    const std::string wrapped = "{" + text + "}";
    Node root = Make(Kind::kList);
    Parser p(wrapped);
    if (!p.Parse(&root, error)) return false;
    *out = std::move(root.nodes.at(0));
    return true;
  }

 private:
  bool Fail(std::string message) {
    if (error_ != nullptr) *error_ = std::move(message);
    return false;
  }

  int Next() {
    if (pos_ >= input_.size()) {
      width_ = 0;
      return kEof;
    }
    width_ = 1;
    return static_cast<unsigned char>(input_[pos_++]);
  }
  void Backup() { pos_ -= width_; }
  int Peek() {
    const int r = Next();
    Backup();
    return r;
  }
  std::string Consume() {
    std::string value(input_.substr(start_, pos_ - start_));
    start_ = pos_;
    return value;
  }
  bool HasPrefix(std::string_view prefix) const { return input_.substr(pos_).starts_with(prefix); }

  // Text and actions at the top level. (client-go recurses from the end of
  // an action back into parseText; a loop keeps long templates off the stack.)
  bool ParseText(Node* cur) {
    for (;;) {
      while (!HasPrefix("{")) {
        if (Next() == kEof) {
          if (pos_ > start_) cur->nodes.push_back(Make(Kind::kText, Consume()));
          return true;
        }
      }
      if (pos_ > start_) cur->nodes.push_back(Make(Kind::kText, Consume()));
      // parseLeftDelim
      pos_ += 1;
      Consume();
      cur->nodes.push_back(Make(Kind::kList));
      if (!ParseInsideAction(&cur->nodes.back())) return false;
    }
  }

  // One action, up to and including its closing brace.
  bool ParseInsideAction(Node* cur) {
    for (;;) {
      if (HasPrefix("}")) {
        pos_ += 1;
        Consume();
        return true;
      }
      if (HasPrefix("[?(")) {
        if (!ParseFilter(cur)) return false;
        continue;
      }
      if (HasPrefix("..")) {
        if (!ParseRecursive(cur)) return false;
        continue;
      }
      const int r = Next();
      bool ok = true;
      if (r == kEof || IsEndOfLine(r)) {
        return Fail("unclosed action");
      } else if (r == ' ' || r == '@' || r == '$') {
        Consume();  // spaces, and the current object: just pass it
      } else if (r == '[') {
        ok = ParseArray(cur);
      } else if (r == '"' || r == '\'') {
        ok = ParseQuote(cur, static_cast<char>(r));
      } else if (r == '.') {
        ok = ParseField(cur);
      } else if (r == '+' || r == '-' || IsDigit(r)) {
        Backup();
        ok = ParseNumber(cur);
      } else if (IsAlphaNumeric(r)) {
        Backup();
        ok = ParseIdentifier(cur);
      } else {
        return Fail("unrecognized character in action: " + QuoteRune(r));
      }
      if (!ok) return false;
    }
  }

  bool ParseIdentifier(Node* cur) {
    for (;;) {
      if (IsTerminator(Next())) {
        Backup();
        break;
      }
    }
    const std::string value = Consume();
    if (value == "true" || value == "false") {
      Node n = Make(Kind::kBool);
      n.bool_value = value == "true";
      cur->nodes.push_back(std::move(n));
    } else {
      cur->nodes.push_back(Make(Kind::kIdentifier, value));
    }
    return true;
  }

  bool ParseRecursive(Node* cur) {
    if (!cur->nodes.empty() && cur->nodes.back().kind == Kind::kRecursive) {
      return Fail("invalid multiple recursive descent");
    }
    pos_ += 2;
    Consume();
    cur->nodes.push_back(Make(Kind::kRecursive));
    if (IsAlphaNumeric(Peek())) return ParseField(cur);
    return true;
  }

  bool ParseNumber(Node* cur) {
    int r = Peek();
    if (r == '+' || r == '-') Next();
    for (;;) {
      r = Next();
      if (r != '.' && !IsDigit(r)) {
        Backup();
        break;
      }
    }
    const std::string value = Consume();
    long long i = 0;
    if (Atoi(value, &i)) {
      Node n = Make(Kind::kInt);
      n.int_value = i;
      cur->nodes.push_back(std::move(n));
      return true;
    }
    // strconv.ParseFloat of [+-]digits-and-dots: one dot and a digit at most.
    std::size_t dots = 0, digits = 0;
    for (char c : value) {
      dots += c == '.';
      digits += IsDigit(c);
    }
    if (dots <= 1 && digits > 0) {
      Node n = Make(Kind::kFloat);
      n.float_value = std::strtod(value.c_str(), nullptr);
      cur->nodes.push_back(std::move(n));
      return true;
    }
    return Fail("cannot parse number " + value);
  }

  bool ParseArray(Node* cur) {
    for (;;) {
      const int r = Next();
      if (r == kEof || r == '\n') return Fail("unterminated array");
      if (r == ']') break;
    }
    std::string text = Consume();
    text = text.substr(1, text.size() - 2);
    if (text == "*") text = ":";

    // union operator
    std::vector<std::string> parts;
    for (std::size_t start = 0;;) {
      const auto comma = text.find(',', start);
      parts.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    if (parts.size() > 1) {
      Node u = Make(Kind::kUnion);
      for (std::string part : parts) {
        const auto b = part.find_first_not_of(' ');
        part = b == std::string::npos ? "" : part.substr(b, part.find_last_not_of(' ') - b + 1);
        Node list;
        if (!ParseAction("[" + part + "]", &list, error_)) return false;
        u.nodes.push_back(std::move(list));
      }
      cur->nodes.push_back(std::move(u));
      return true;
    }

    // dict key ^'([^']*)'$: ['key'] is the template .key
    if (text.size() >= 2 && text.front() == '\'' && text.back() == '\'' &&
        text.find('\'', 1) == text.size() - 1) {
      Node list;
      if (!ParseAction("." + text.substr(1, text.size() - 2), &list, error_)) return false;
      for (auto& n : list.nodes) cur->nodes.push_back(std::move(n));
      return true;
    }

    // slice operator ^(-?[0-9]*)(:-?[0-9]*)?(:-?[0-9]*)?$ (matched by hand:
    // std::regex recurses per character)
    std::array<std::string, 3> groups;
    if (!SliceGroups(text, &groups)) return Fail("invalid array index " + text);
    Node a = Make(Kind::kArray);
    for (int i = 0; i < 3; ++i) {
      std::string value = groups[static_cast<std::size_t>(i)];
      auto& p = a.params[static_cast<std::size_t>(i)];
      if (!value.empty()) {
        if (i > 0) value = value.substr(1);
        if (i > 0 && value.empty()) {
          p.known = false;
        } else {
          p.known = true;
          if (!Atoi(value, &p.value)) return Fail("array index " + value + " is not a number");
        }
      } else if (i == 1) {
        p.known = true;
        p.value = Wrap(a.params[0].value, 1);  // Go's int arithmetic wraps
        p.derived = true;
      } else {
        p.known = false;
        p.value = 0;
      }
    }
    cur->nodes.push_back(std::move(a));
    return true;
  }

  bool ParseFilter(Node* cur) {
    pos_ += 3;
    Consume();
    bool begin = false, end = false;
    int pair = 0;
    for (;;) {
      const int r = Next();
      if (r == kEof || r == '\n') return Fail("unterminated filter");
      if (r == '"' || r == '\'') {
        if (!begin) {
          begin = true;
          pair = r;
          continue;
        }
        if (input_[pos_ - 2] != '\\' && r == pair) end = true;
      } else if (r == ')') {
        // quotes appear zero times or once, paired
        if (begin == end) break;
      }
    }
    if (Next() != ']') return Fail("unclosed array expect ]");
    std::string text = Consume();
    text = text.substr(0, text.size() - 2);
    std::array<std::string, 3> m;
    Node f = Make(Kind::kFilter);
    if (!ComparisonGroups(text, &m)) {
      Node left;
      if (!ParseAction(text, &left, error_)) return false;
      f.nodes.push_back(std::move(left));
      f.nodes.push_back(Make(Kind::kList));
      f.text = "exists";
    } else {
      Node left, right;
      if (!ParseAction(m[0], &left, error_) || !ParseAction(m[2], &right, error_)) return false;
      f.nodes.push_back(std::move(left));
      f.nodes.push_back(std::move(right));
      f.text = m[1];
    }
    cur->nodes.push_back(std::move(f));
    return true;
  }

  bool ParseQuote(Node* cur, char end) {
    for (;;) {
      const int r = Next();
      if (r == kEof || r == '\n') return Fail("unterminated quoted string");
      if (r == end && input_[pos_ - 2] != '\\') break;
    }
    const std::string value = Consume();
    std::string s;
    if (!UnquoteExtend(value, &s)) return Fail("unquote string " + value + " error invalid syntax");
    cur->nodes.push_back(Make(Kind::kText, std::move(s)));
    return true;
  }

  bool ParseField(Node* cur) {
    Consume();
    while (Advance()) {
    }
    const std::string value = Consume();
    if (value == "*") {
      cur->nodes.push_back(Make(Kind::kWildcard));
    } else {
      std::string name;
      for (char c : value) {
        if (c != '\\') name += c;
      }
      cur->nodes.push_back(Make(Kind::kField, std::move(name)));
    }
    return true;
  }

  // Scans to the next terminator that is not escaped.
  bool Advance() {
    const int r = Next();
    if (r == '\\') {
      Next();
    } else if (IsTerminator(r)) {
      Backup();
      return false;
    }
    return true;
  }

  std::string_view input_;
  std::size_t pos_ = 0;
  std::size_t start_ = 0;
  std::size_t width_ = 0;
  std::string* error_ = nullptr;
};

// ---------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------

using Values = std::vector<const Json*>;

// Go's text/template basicKind for the values a JSON document holds.
enum class BasicKind { kInvalid, kBool, kInt, kFloat, kString };

BasicKind KindOf(const Json& v) {
  switch (v.type()) {
    case Json::value_t::boolean:
      return BasicKind::kBool;
    case Json::value_t::number_integer:
      return BasicKind::kInt;
    case Json::value_t::number_unsigned:
      // A Go server decodes integers beyond int64 as float64.
      return v.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())
                 ? BasicKind::kFloat
                 : BasicKind::kInt;
    case Json::value_t::number_float:
      return BasicKind::kFloat;
    case Json::value_t::string:
      return BasicKind::kString;
    default:
      return BasicKind::kInvalid;
  }
}

// Go's type name of a decoded JSON value, for error messages.
std::string GoType(const Json& v) {
  switch (v.type()) {
    case Json::value_t::object: return "map[string]interface {}";
    case Json::value_t::array: return "[]interface {}";
    case Json::value_t::string: return "string";
    case Json::value_t::boolean: return "bool";
    case Json::value_t::number_float: return "float64";
    case Json::value_t::null: return "interface {}";
    default: return KindOf(v) == BasicKind::kFloat ? "float64" : "int64";
  }
}

class Evaluator {
 public:
  Evaluator(bool allow_missing, std::string* error) : allow_missing_(allow_missing), error_(error) {}

  bool Walk(const Values& in, const Node& node, Values* out) {
    switch (node.kind) {
      case Kind::kList:
        return List(in, node, out);
      case Kind::kText:
        out->assign(1, Keep(Json(node.text)));
        return true;
      case Kind::kField:
        return Field(in, node, out);
      case Kind::kArray:
        return Array(in, node, out);
      case Kind::kFilter:
        return Filter(in, node, out);
      case Kind::kInt:
        out->assign(in.size(), Keep(Json(static_cast<std::int64_t>(node.int_value))));
        return true;
      case Kind::kFloat:
        out->assign(in.size(), Keep(Json(node.float_value)));
        return true;
      case Kind::kBool:
        out->assign(in.size(), Keep(Json(node.bool_value)));
        return true;
      case Kind::kWildcard:
        return Wildcard(in, out);
      case Kind::kRecursive:
        Recursive(in, out);
        return true;
      case Kind::kUnion:
        return Union(in, node, out);
      case Kind::kIdentifier:
        // range/end need client-go's template loop; nothing a printer column uses.
        return Fail("unrecognized identifier " + node.text);
    }
    return Fail("unexpected Node");
  }

  bool List(const Values& in, const Node& node, Values* out) {
    Values cur = in;
    for (const Node& child : node.nodes) {
      Values next;
      if (!Walk(cur, child, &next)) return false;
      cur = std::move(next);
    }
    *out = std::move(cur);
    return true;
  }

 private:
  bool Fail(std::string message) {
    if (error_ != nullptr) *error_ = std::move(message);
    return false;
  }

  const Json* Keep(Json value) {
    arena_.push_back(std::move(value));
    return &arena_.back();
  }

  bool Field(const Values& in, const Node& node, Values* out) {
    out->clear();
    if (in.empty()) return true;
    for (const Json* v : in) {
      if (v->is_null()) continue;
      if (v->is_object()) {
        auto it = v->find(node.text);
        if (it != v->end()) out->push_back(&*it);
      }
    }
    if (out->empty() && !allow_missing_) return Fail(node.text + " is not found");
    return true;
  }

  bool Array(const Values& in, const Node& node, Values* out) {
    out->clear();
    for (const Json* v : in) {
      if (v->is_null()) continue;
      if (!v->is_array()) return Fail(GoType(*v) + " is not array or slice");
      auto params = node.params;
      const long long len = static_cast<long long>(v->size());
      if (!params[0].known) params[0].value = 0;
      if (params[0].value < 0) params[0].value += len;
      if (!params[1].known) params[1].value = len;
      if (params[1].value < 0 || (params[1].value == 0 && params[1].derived)) params[1].value += len;
      if (params[1].value != params[0].value) {  // requesting zero elements is allowed
        if (params[0].value >= len || params[0].value < 0) {
          return Fail("array index out of bounds: index " + std::to_string(params[0].value) + ", length " +
                      std::to_string(len));
        }
        if (params[1].value > len || params[1].value < 0) {
          return Fail("array index out of bounds: index " + std::to_string(Wrap(params[1].value, -1)) + ", length " +
                      std::to_string(len));
        }
        if (params[0].value > params[1].value) {
          return Fail("starting index " + std::to_string(params[0].value) + " is greater than ending index " +
                      std::to_string(params[1].value));
        }
      } else {
        return true;  // client-go returns what it has so far
      }
      long long step = 1;
      if (params[2].known) {
        if (params[2].value <= 0) return Fail("step must be > 0");
        step = params[2].value;
      }
      for (long long i = params[0].value; i < params[1].value; i += step) {
        out->push_back(&(*v)[static_cast<std::size_t>(i)]);
        if (params[1].value - i <= step) break;
      }
    }
    return true;
  }

  bool Union(const Values& in, const Node& node, Values* out) {
    out->clear();
    for (const Node& list : node.nodes) {
      Values part;
      if (!List(in, list, &part)) return false;
      out->insert(out->end(), part.begin(), part.end());
    }
    return true;
  }

  // The children Go's reflection walks: object values, array elements, and
  // the bytes of a string (as numbers).
  void Children(const Json& v, Values* out) {
    if (v.is_object() || v.is_array()) {
      for (const auto& e : v) out->push_back(&e);
    } else if (v.is_string()) {
      for (unsigned char c : v.get_ref<const std::string&>()) out->push_back(Keep(Json(static_cast<std::int64_t>(c))));
    }
  }

  bool Wildcard(const Values& in, Values* out) {
    out->clear();
    for (const Json* v : in) {
      if (!v->is_null()) Children(*v, out);
    }
    return true;
  }

  void Recursive(const Values& in, Values* out) {
    out->clear();
    for (const Json* v : in) {
      if (v->is_null()) continue;
      Values children;
      Children(*v, &children);
      if (children.empty()) continue;
      out->push_back(v);
      Values nested;
      Recursive(children, &nested);
      out->insert(out->end(), nested.begin(), nested.end());
    }
  }

  // text/template's eq, lt and friends.
  bool Equal(const Json& a, const Json& b, bool* truth) {
    const BasicKind ka = KindOf(a), kb = KindOf(b);
    if (ka == BasicKind::kInvalid || kb == BasicKind::kInvalid) return Fail("invalid type for comparison");
    if (ka != kb) return Fail("incompatible types for comparison");
    switch (ka) {
      case BasicKind::kBool:
        *truth = a.get<bool>() == b.get<bool>();
        break;
      case BasicKind::kInt:
        *truth = a.get<std::int64_t>() == b.get<std::int64_t>();
        break;
      case BasicKind::kFloat:
        *truth = a.get<double>() == b.get<double>();
        break;
      default:
        *truth = a.get_ref<const std::string&>() == b.get_ref<const std::string&>();
    }
    return true;
  }

  bool Less(const Json& a, const Json& b, bool* truth) {
    const BasicKind ka = KindOf(a), kb = KindOf(b);
    if (ka == BasicKind::kInvalid || kb == BasicKind::kInvalid) return Fail("invalid type for comparison");
    if (ka != kb) return Fail("incompatible types for comparison");
    switch (ka) {
      case BasicKind::kBool:
        return Fail("invalid type for comparison");
      case BasicKind::kInt:
        *truth = a.get<std::int64_t>() < b.get<std::int64_t>();
        break;
      case BasicKind::kFloat:
        *truth = a.get<double>() < b.get<double>();
        break;
      default:
        *truth = a.get_ref<const std::string&>() < b.get_ref<const std::string&>();
    }
    return true;
  }

  bool Compare(const std::string& op, const Json& left, const Json& right, bool* pass) {
    bool t = false;
    if (op == "==") {
      if (!Equal(left, right, &t)) return false;
      *pass = t;
    } else if (op == "!=") {
      if (!Equal(left, right, &t)) return false;
      *pass = !t;
    } else if (op == "<") {
      if (!Less(left, right, &t)) return false;
      *pass = t;
    } else if (op == ">=") {
      if (!Less(left, right, &t)) return false;
      *pass = !t;
    } else if (op == "<=" || op == ">") {
      if (!Less(left, right, &t)) return false;
      if (!t && !Equal(left, right, &t)) return false;
      *pass = op == "<=" ? t : !t;
    } else {
      return Fail("unrecognized filter operator " + op);
    }
    return true;
  }

  bool Filter(const Values& in, const Node& node, Values* out) {
    out->clear();
    for (const Json* v : in) {
      if (!v->is_array()) return Fail(GoType(*v) + " is not array or slice and cannot be filtered");
      for (const Json& element : *v) {
        const Values item{&element};
        Values lefts;
        std::string ignored;
        std::string* saved = error_;
        error_ = &ignored;
        const bool left_ok = List(item, node.nodes[0], &lefts);
        error_ = saved;
        if (node.text == "exists") {
          if (left_ok && !lefts.empty()) out->push_back(&element);
          continue;
        }
        if (!left_ok) return Fail(ignored);
        if (lefts.empty()) continue;
        if (lefts.size() > 1) return Fail("can only compare one element at a time");
        Values rights;
        if (!List(item, node.nodes[1], &rights)) return false;
        if (rights.empty()) continue;
        if (rights.size() > 1) return Fail("can only compare one element at a time");
        bool pass = false;
        if (!Compare(node.text, *lefts[0], *rights[0], &pass)) return false;
        if (pass) out->push_back(&element);
      }
    }
    return true;
  }

  bool allow_missing_;
  std::string* error_;
  std::deque<Json> arena_;  // constants and string bytes; stable addresses
};

}  // namespace

std::optional<JsonPath> JsonPath::Parse(std::string_view text, std::string* error) {
  auto root = std::make_shared<Node>(Make(Kind::kList));
  Parser parser(text);
  if (!parser.Parse(root.get(), error)) return std::nullopt;
  return JsonPath(std::move(root));
}

std::optional<std::vector<std::vector<Json>>> JsonPath::FindResults(const Json& data, std::string* error) const {
  Evaluator eval(allow_missing_, error);
  std::vector<std::vector<Json>> results;
  const Values cur{&data};
  for (const Node& node : root_->nodes) {
    Values values;
    if (!eval.Walk(cur, node, &values)) return std::nullopt;
    std::vector<Json> copies;
    copies.reserve(values.size());
    for (const Json* v : values) copies.push_back(*v);
    results.push_back(std::move(copies));
  }
  return results;
}

std::string JsonPath::PrintResults(const std::vector<Json>& values) {
  std::string out;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const Json& v = values[i];
    if (v.is_object() || v.is_array()) {
      AppendGoJson(out, v, KeyOrder::kSorted);
    } else if (v.is_string()) {
      out += v.get_ref<const std::string&>();
    } else if (v.is_boolean()) {
      out += v.get<bool>() ? "true" : "false";
    } else if (v.is_null()) {
      out += "<no value>";
    } else if (KindOf(v) == BasicKind::kFloat) {
      out += GoFloatText(v.get<double>());
    } else {
      out += v.is_number_unsigned() ? std::to_string(v.get<std::uint64_t>()) : std::to_string(v.get<std::int64_t>());
    }
    if (i + 1 != values.size()) out += ' ';
  }
  return out;
}

}  // namespace kubefold::emulator
