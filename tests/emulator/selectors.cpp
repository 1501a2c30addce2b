#include "tests/emulator/selectors.h"

#include <cctype>
#include <cstdlib>
#include <regex>

namespace kubefold::emulator {
namespace {

bool ValidLabelKey(const std::string& key) {
  static const std::regex name("([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]");
  static const std::regex prefix("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  const auto slash = key.find('/');
  const std::string n = slash == std::string::npos ? key : key.substr(slash + 1);
  if (n.empty() || n.size() > 63 || !std::regex_match(n, name)) return false;
  if (slash != std::string::npos) {
    const std::string p = key.substr(0, slash);
    if (p.empty() || p.size() > 253 || !std::regex_match(p, prefix)) return false;
  }
  return true;
}

bool ValidLabelValue(const std::string& v) {
  static const std::regex re("(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?");
  return v.size() <= 63 && std::regex_match(v, re);
}

std::string Trim(const std::string& s) {
  std::size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// Splits on commas outside parentheses.
std::vector<std::string> SplitTop(const std::string& text) {
  std::vector<std::string> parts;
  std::string cur;
  int depth = 0;
  for (char c : text) {
    if (c == '(') ++depth;
    if (c == ')') --depth;
    if (c == ',' && depth == 0) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

const std::string* LabelOf(const Json& object, const std::string& key) {
  auto m = object.find("metadata");
  if (m == object.end() || !m->is_object()) return nullptr;
  auto l = m->find("labels");
  if (l == m->end() || !l->is_object()) return nullptr;
  auto v = l->find(key);
  if (v == l->end() || !v->is_string()) return nullptr;
  return v->get_ptr<const std::string*>();
}

}  // namespace

std::optional<LabelSelector> LabelSelector::Parse(const std::string& text, std::string* error) {
  LabelSelector sel;
  if (Trim(text).empty()) return sel;
  auto fail = [&](const std::string& why) {
    *error = "unable to parse requirement: " + why;
    return std::nullopt;
  };
  for (const std::string& raw : SplitTop(text)) {
    const std::string part = Trim(raw);
    if (part.empty()) return fail("found '', expected: identifier");
    Requirement r;
    static const std::regex set_re("^(\\S+)\\s+(in|notin)\\s*\\(([^()]*)\\)$");
    std::smatch m;
    if (std::regex_match(part, m, set_re)) {
      r.key = m[1];
      r.op = m[2] == "in" ? Op::kIn : Op::kNotIn;
      for (const std::string& v : SplitTop(m[3])) {
        const std::string value = Trim(v);
        if (!ValidLabelValue(value)) return fail("values[0][" + r.key + "]: Invalid value: \"" + value + "\"");
        r.values.push_back(value);
      }
    } else if (part[0] == '!') {
      r.key = Trim(part.substr(1));
      r.op = Op::kNotExists;
    } else {
      std::size_t pos;
      if ((pos = part.find("!=")) != std::string::npos) {
        r.op = Op::kNotEquals;
        r.key = Trim(part.substr(0, pos));
        r.values.push_back(Trim(part.substr(pos + 2)));
      } else if ((pos = part.find("==")) != std::string::npos) {
        r.op = Op::kEquals;
        r.key = Trim(part.substr(0, pos));
        r.values.push_back(Trim(part.substr(pos + 2)));
      } else if ((pos = part.find('=')) != std::string::npos) {
        r.op = Op::kEquals;
        r.key = Trim(part.substr(0, pos));
        r.values.push_back(Trim(part.substr(pos + 1)));
      } else if ((pos = part.find_first_of("<>")) != std::string::npos) {
        r.op = part[pos] == '>' ? Op::kGreater : Op::kLess;
        r.key = Trim(part.substr(0, pos));
        const std::string v = Trim(part.substr(pos + 1));
        char* end = nullptr;
        std::strtoll(v.c_str(), &end, 10);
        if (v.empty() || *end != '\0') return fail("for 'gt', 'lt' operators, the value must be an integer");
        r.values.push_back(v);
      } else {
        r.key = part;
        r.op = Op::kExists;
      }
      for (const auto& v : r.values) {
        if ((r.op == Op::kEquals || r.op == Op::kNotEquals) && !ValidLabelValue(v)) {
          return fail("values[0][" + r.key + "]: Invalid value: \"" + v + "\"");
        }
      }
    }
    if (!ValidLabelKey(r.key)) return fail("key: Invalid value: \"" + r.key + "\": name part must consist of "
                                           "alphanumeric characters, '-', '_' or '.'");
    sel.requirements_.push_back(std::move(r));
  }
  return sel;
}

bool LabelSelector::Matches(const Json& object) const {
  for (const auto& r : requirements_) {
    const std::string* v = LabelOf(object, r.key);
    switch (r.op) {
      case Op::kExists:
        if (v == nullptr) return false;
        break;
      case Op::kNotExists:
        if (v != nullptr) return false;
        break;
      case Op::kEquals:
      case Op::kIn: {
        if (v == nullptr) return false;
        bool any = false;
        for (const auto& x : r.values) any = any || x == *v;
        if (!any) return false;
        break;
      }
      case Op::kNotEquals:
      case Op::kNotIn:
        if (v != nullptr) {
          for (const auto& x : r.values) {
            if (x == *v) return false;
          }
        }
        break;
      case Op::kGreater:
      case Op::kLess: {
        if (v == nullptr) return false;
        char* end = nullptr;
        const long long have = std::strtoll(v->c_str(), &end, 10);
        if (v->empty() || *end != '\0') return false;
        const long long want = std::strtoll(r.values[0].c_str(), nullptr, 10);
        if (r.op == Op::kGreater ? !(have > want) : !(have < want)) return false;
        break;
      }
    }
  }
  return true;
}

std::optional<FieldSelector> FieldSelector::Parse(const std::string& text, const std::vector<std::string>& supported,
                                                  std::string* error) {
  FieldSelector sel;
  if (Trim(text).empty()) return sel;
  for (const std::string& raw : SplitTop(text)) {
    const std::string part = Trim(raw);
    Term t;
    std::size_t pos;
    if ((pos = part.find("!=")) != std::string::npos) {
      t.equals = false;
      t.field = Trim(part.substr(0, pos));
      t.value = Trim(part.substr(pos + 2));
    } else if ((pos = part.find("==")) != std::string::npos) {
      t.equals = true;
      t.field = Trim(part.substr(0, pos));
      t.value = Trim(part.substr(pos + 2));
    } else if ((pos = part.find('=')) != std::string::npos) {
      t.equals = true;
      t.field = Trim(part.substr(0, pos));
      t.value = Trim(part.substr(pos + 1));
    } else {
      *error = "invalid selector: '" + text + "'; can't understand '" + part + "'";
      return std::nullopt;
    }
    bool known = t.field == "metadata.name" || t.field == "metadata.namespace";
    for (const auto& s : supported) known = known || s == t.field;
    if (!known) {
      *error = "field label not supported: " + t.field;
      return std::nullopt;
    }
    sel.terms_.push_back(std::move(t));
  }
  return sel;
}

bool FieldSelector::Matches(const Json& object) const {
  for (const auto& t : terms_) {
    // Walk the dotted path; a missing field reads as "".
    const Json* cur = &object;
    std::size_t start = 0;
    std::string value;
    bool found = true;
    while (found) {
      const auto dot = t.field.find('.', start);
      const std::string key = t.field.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
      if (!cur->is_object() || !cur->contains(key)) {
        found = false;
        break;
      }
      cur = &(*cur)[key];
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (!found && (t.field == "spec.unschedulable" || t.field == "spec.hostNetwork")) {
      value = "false";  // selectable fields format Go booleans, false when unset
    } else if (found) {
      if (cur->is_string()) {
        value = cur->get<std::string>();
      } else if (cur->is_boolean()) {
        value = cur->get<bool>() ? "true" : "false";
      } else if (!cur->is_null()) {
        value = cur->dump();
      }
    }
    if ((value == t.value) != t.equals) return false;
  }
  return true;
}

std::vector<std::string> SupportedFieldLabels(const std::string& kind) {
  if (kind == "Pod") {
    return {"spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
            "spec.hostNetwork", "status.phase", "status.podIP", "status.nominatedNodeName"};
  }
  if (kind == "Event") {
    return {"involvedObject.kind", "involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
            "involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath",
            "reason", "reportingComponent", "source", "type"};
  }
  if (kind == "Secret") return {"type"};
  if (kind == "Node") return {"spec.unschedulable"};
  if (kind == "Namespace") return {"status.phase"};
  // apps/v1 registers no field-label conversions: metadata.name and
  // metadata.namespace only.
  return {};
}

}  // namespace kubefold::emulator
