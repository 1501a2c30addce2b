#include "tests/emulator/api.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <random>
#include <regex>
#include <set>
#include <thread>
#include <tuple>

#include "tests/emulator/patch.h"
#include "tests/emulator/protobuf.h"
#include "tests/emulator/proxy.h"
#include "tests/emulator/selectors.h"
#include "tests/emulator/table.h"

namespace kubefold::emulator {
namespace {

using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Small utilities
// ---------------------------------------------------------------------------

bool IEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string NowRfc3339() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

// base64.RawURLEncoding, as continue tokens use.
std::string Base64RawUrl(std::string_view in) {
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    const unsigned v = (static_cast<unsigned char>(in[i]) << 16) | (static_cast<unsigned char>(in[i + 1]) << 8) |
                       static_cast<unsigned char>(in[i + 2]);
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    out += kB64[(v >> 6) & 63];
    out += kB64[v & 63];
  }
  if (i < in.size()) {
    unsigned v = static_cast<unsigned char>(in[i]) << 16;
    if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
    out += kB64[(v >> 18) & 63];
    out += kB64[(v >> 12) & 63];
    if (i + 1 < in.size()) out += kB64[(v >> 6) & 63];
  }
  return out;
}

std::optional<std::string> DecodeBase64RawUrl(std::string_view in) {
  std::string out;
  unsigned acc = 0;
  int bits = 0;
  for (char c : in) {
    const char* p = std::strchr(kB64, c);
    if (c == '\0' || p == nullptr) return std::nullopt;
    acc = (acc << 6) | static_cast<unsigned>(p - kB64);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xff);
    }
  }
  return out;
}

std::optional<std::uint64_t> ParseRv(const std::string& text) {
  if (text.empty() || text.size() > 19) return std::nullopt;
  std::uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return v;
}

std::optional<std::int64_t> ParseInt(const std::string& text) {
  if (text.empty() || text.size() > 18) return std::nullopt;
  std::size_t i = text[0] == '-' ? 1 : 0;
  if (i == text.size()) return std::nullopt;
  std::int64_t v = 0;
  for (; i < text.size(); ++i) {
    if (text[i] < '0' || text[i] > '9') return std::nullopt;
    v = v * 10 + (text[i] - '0');
  }
  return text[0] == '-' ? -v : v;
}

const Json& Field(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string StrField(const Json& j, const char* key) {
  const Json& v = Field(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// Real servers write kind, apiVersion, metadata (in ObjectMeta's field
// order), then the rest; lists rely on it to drop the type fields.
Json Canonical(const Json& in) {
  static const char* const kMetaOrder[] = {
      "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
      "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
      "managedFields"};
  Json out = Json::object();
  if (in.contains("kind")) out["kind"] = in["kind"];
  if (in.contains("apiVersion")) out["apiVersion"] = in["apiVersion"];
  if (in.contains("metadata") && in["metadata"].is_object()) {
    const Json& m = in["metadata"];
    Json meta = Json::object();
    for (const char* k : kMetaOrder) {
      if (m.contains(k)) {
        meta[k] = m[k];
      } else if (std::string_view(k) == "resourceVersion") {
        meta[k] = "";  // its place; the store writes the value
      }
    }
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!meta.contains(it.key())) meta[it.key()] = it.value();
    }
    out["metadata"] = std::move(meta);
  }
  for (auto it = in.begin(); it != in.end(); ++it) {
    if (!out.contains(it.key())) out[it.key()] = it.value();
  }
  return out;
}

// ---------------------------------------------------------------------------
// Status bodies (spec §5.1: kind, apiVersion, metadata, status, message,
// reason, details, code)
// ---------------------------------------------------------------------------

struct Cause {
  std::string reason;
  std::string message;
  std::string field;
};

Json StatusJson(int code, const std::string& reason, const std::string& message, Json details = Json()) {
  Json s = Json::object();
  s["kind"] = "Status";
  s["apiVersion"] = "v1";
  s["metadata"] = Json::object();
  s["status"] = "Failure";
  if (!message.empty()) s["message"] = message;
  if (!reason.empty()) s["reason"] = reason;
  if (!details.is_null()) s["details"] = std::move(details);
  s["code"] = code;
  return s;
}

// details{name, group, kind, uid, causes, retryAfterSeconds}, omitting empties.
Json Details(const std::string& name, const std::string& group, const std::string& kind,
             const std::vector<Cause>& causes = {}, int retry_after = 0) {
  Json d = Json::object();
  if (!name.empty()) d["name"] = name;
  if (!group.empty()) d["group"] = group;
  if (!kind.empty()) d["kind"] = kind;
  if (!causes.empty()) {
    Json cs = Json::array();
    for (const auto& c : causes) {
      Json cj = Json::object();
      if (!c.reason.empty()) cj["reason"] = c.reason;
      if (!c.message.empty()) cj["message"] = c.message;
      if (!c.field.empty()) cj["field"] = c.field;
      cs.push_back(std::move(cj));
    }
    d["causes"] = std::move(cs);
  }
  if (retry_after > 0) d["retryAfterSeconds"] = retry_after;
  return d;
}

// A request that failed with a Status; thrown inside the handlers only and
// caught in Handle, so every path ends in exactly one response.
struct StatusError {
  int code;
  Json body;
  Headers headers;
};

[[noreturn]] void Fail(int code, const std::string& reason, const std::string& message, Json details = Json()) {
  throw StatusError{code, StatusJson(code, reason, message, std::move(details)), {}};
}

[[noreturn]] void BadRequest(const std::string& message) { Fail(400, "BadRequest", message); }

[[noreturn]] void NotFoundPath() {
  Fail(404, "NotFound", "the server could not find the requested resource", Json::object());
}


[[noreturn]] void NamespaceNotFound(const std::string& ns) {
  Fail(404, "NotFound", "namespaces \"" + ns + "\" not found", Details(ns, "", "namespaces"));
}

// 409 Conflict on a stale resourceVersion; `why` replaces the standard
// "the object has been modified..." text (delete preconditions).
StatusError ConflictError(const ResourceType& t, const std::string& name, const std::string& why = "") {
  return StatusError{409,
                     StatusJson(409, "Conflict",
                                "Operation cannot be fulfilled on " + t.GroupResource() + " \"" + name + "\": " +
                                    (why.empty() ? "the object has been modified; please apply your changes to the "
                                                   "latest version and try again"
                                                 : why),
                                Details(name, t.group, t.resource)),
                     {}};
}

StatusError NotFoundError(const ResourceType& t, const std::string& name) {
  return StatusError{404, StatusJson(404, "NotFound", t.GroupResource() + " \"" + name + "\" not found",
                                     Details(name, t.group, t.resource)),
                     {}};
}

[[noreturn]] void NotFound(const ResourceType& t, const std::string& name) { throw NotFoundError(t, name); }

// responsewriters.Forbidden: NewForbidden of the request's group and
// resource (without the subresource), the request's name, and
// forbiddenMessage plus the authorizer's reason.
StatusError ForbiddenError(const Attributes& a, const std::string& reason) {
  std::string why = ForbiddenMessage(a);
  if (!reason.empty()) why += ": " + reason;
  const std::string gr = a.group.empty() ? a.resource : a.resource + "." + a.group;
  std::string message;
  if (gr.empty()) {
    message = "forbidden: " + why;
  } else if (a.name.empty()) {
    message = gr + " is forbidden: " + why;
  } else {
    message = gr + " " + Json(a.name).dump() + " is forbidden: " + why;
  }
  return StatusError{403, StatusJson(403, "Forbidden", message, Details(a.name, a.group, a.resource)),
                     {{"X-Content-Type-Options", "nosniff"}}};
}

std::string JoinCauses(const std::vector<Cause>& causes) {
  auto one = [](const Cause& c) { return c.field.empty() ? c.message : c.field + ": " + c.message; };
  if (causes.size() == 1) return one(causes[0]);
  std::string s = "[";
  for (std::size_t i = 0; i < causes.size(); ++i) s += (i ? ", " : "") + one(causes[i]);
  return s + "]";
}

StatusError InvalidError(const std::string& group, const std::string& kind, const std::string& name,
                         const std::vector<Cause>& causes) {
  const std::string gk = group.empty() ? kind : kind + "." + group;
  return StatusError{422,
                     StatusJson(422, "Invalid", gk + " \"" + name + "\" is invalid: " + JoinCauses(causes),
                                Details(name, group, kind, causes)),
                     {}};
}

[[noreturn]] void Invalid(const std::string& group, const std::string& kind, const std::string& name,
                          const std::vector<Cause>& causes) {
  throw InvalidError(group, kind, name, causes);
}

// The reason for a field error message prefix, as field.ErrorType names them.
std::string CauseReason(const std::string& message) {
  if (message.starts_with("Required value")) return "FieldValueRequired";
  if (message.starts_with("Forbidden")) return "FieldValueForbidden";
  if (message.starts_with("Unsupported value")) return "FieldValueNotSupported";
  if (message.starts_with("Duplicate value")) return "FieldValueDuplicate";
  if (message.starts_with("Too long")) return "FieldValueTooLong";
  return "FieldValueInvalid";
}

Cause FieldCause(const std::string& field, const std::string& message) {
  return {CauseReason(message), message, field};
}

// 422 on ListOptions / PatchOptions (query parameter validation).
[[noreturn]] void InvalidOptions(const std::string& kind, const std::string& field, const std::string& message) {
  Invalid("meta.k8s.io", kind, "", {FieldCause(field, message)});
}

// ---------------------------------------------------------------------------
// Validation of built-in objects: the checks a real server makes that a
// client can trip (not the whole of the Kubernetes validation).
// ---------------------------------------------------------------------------

const std::regex& Subdomain() {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  return re;
}

const std::regex& Label() {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return re;
}

// Names: RFC 1123 subdomains for most kinds, RFC 1123 labels for
// namespaces, RFC 1035 labels for services.
enum class NameRule { kSubdomain, kLabel, kDns1035Label };

std::string NameProblem(const std::string& name, NameRule rule) {
  if (rule == NameRule::kDns1035Label) {
    static const std::regex re("[a-z]([-a-z0-9]*[a-z0-9])?");
    if (name.size() > 63 || !std::regex_match(name, re)) {
      return "Invalid value: \"" + name +
             "\": a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
             "alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex "
             "used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
    }
    return "";
  }
  if (rule == NameRule::kLabel) {
    if (name.size() > 63 || !std::regex_match(name, Label())) {
      return "Invalid value: \"" + name +
             "\": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
             "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
             "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
    }
  } else if (name.size() > 253 || !std::regex_match(name, Subdomain())) {
    return "Invalid value: \"" + name +
           "\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
           "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  }
  return "";
}

std::string GoMap(const Json& labels) {
  std::string s = "map[string]string{";
  bool first = true;
  for (auto it = labels.begin(); it != labels.end(); ++it) {
    s += (first ? "" : ", ") + Json(it.key()).dump() + ":" + it.value().dump();
    first = false;
  }
  return s + "}";
}

bool IsMicroTime(const std::string& s) {
  static const std::regex re("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d{1,9})?(Z|[+-]\\d\\d:\\d\\d)");
  return std::regex_match(s, re);
}

// Decode errors (wrong JSON types for typed fields) are 400s on a real
// server: the object cannot be decoded at all.
void CheckDecodable(const ResourceType& t, const Json& o) {
  auto fail = [&](const std::string& detail) {
    BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind + ": " + detail);
  };
  if (!o.is_object()) fail("json: cannot unmarshal into Go value of type " + t.kind);
  const Json& meta = Field(o, "metadata");
  if (!meta.is_null() && !meta.is_object()) fail("json: cannot unmarshal into Go struct field .metadata of type v1.ObjectMeta");
  for (const char* k : {"labels", "annotations"}) {
    const Json& m = Field(meta, k);
    if (m.is_null()) continue;
    if (!m.is_object()) fail(std::string("json: cannot unmarshal into Go struct field ObjectMeta.metadata.") + k +
                             " of type map[string]string");
    for (auto it = m.begin(); it != m.end(); ++it) {
      if (!it.value().is_string()) {
        fail(std::string("json: cannot unmarshal ") + (it.value().is_number() ? "number" : "value") +
             " into Go struct field ObjectMeta.metadata." + k + " of type string");
      }
    }
  }
  if (t.custom) return;
  const Json& spec = Field(o, "spec");
  if ((t.kind == "Deployment" || t.kind == "StatefulSet") && !Field(spec, "replicas").is_null() &&
      !Field(spec, "replicas").is_number_integer()) {
    fail("json: cannot unmarshal " + std::string(Field(spec, "replicas").is_string() ? "string" : "value") +
         " into Go struct field " + t.kind + "Spec.spec.replicas of type int32");
  }
  if (t.kind == "ConfigMap") {
    const Json& data = Field(o, "data");
    if (data.is_object()) {
      for (auto it = data.begin(); it != data.end(); ++it) {
        if (!it.value().is_string()) fail("json: cannot unmarshal value into Go struct field ConfigMap.data of type string");
      }
    }
  }
  if (t.kind == "Lease") {
    for (const char* k : {"acquireTime", "renewTime"}) {
      const Json& v = Field(spec, k);
      if (v.is_null()) continue;
      if (!v.is_string() || !IsMicroTime(v.get<std::string>())) {
        fail("parsing time " + v.dump() + " as \"2006-01-02T15:04:05.000000Z07:00\": cannot parse");
      }
    }
  }
}

// The v1 defaults a client can see on the RBAC kinds: a binding's
// roleRef.apiGroup and its User and Group subjects' apiGroup.
void DefaultBuiltin(const ResourceType& t, Json& o) {
  if (t.kind != "RoleBinding" && t.kind != "ClusterRoleBinding") return;
  if (o.contains("roleRef") && o["roleRef"].is_object() && StrField(o["roleRef"], "apiGroup").empty()) {
    o["roleRef"]["apiGroup"] = "rbac.authorization.k8s.io";
  }
  if (o.contains("subjects") && o["subjects"].is_array()) {
    for (auto& s : o["subjects"]) {
      if (!s.is_object() || !StrField(s, "apiGroup").empty()) continue;
      const std::string kind = StrField(s, "kind");
      if (kind == "User" || kind == "Group") s["apiGroup"] = "rbac.authorization.k8s.io";
    }
  }
}

// Go's %#v of a []string.
std::string GoStrings(const Json& list) {
  std::string out = "[]string{";
  bool first = true;
  for (const auto& v : list) {
    out += (first ? "" : ", ") + (v.is_string() ? v.dump() : std::string("\"\""));
    first = false;
  }
  return out + "}";
}

// ValidateNonSpecialIP (with IsValidIP first), as Endpoints addresses get.
void CheckEndpointIp(const std::string& ip, const std::string& field, std::vector<Cause>& causes) {
  in6_addr v6{};
  in_addr v4{};
  const bool is4 = inet_pton(AF_INET, ip.c_str(), &v4) == 1;
  const bool is6 = !is4 && inet_pton(AF_INET6, ip.c_str(), &v6) == 1;
  const std::string value = Json(ip).dump();
  if (!is4 && !is6) {
    causes.push_back(FieldCause(field, "Invalid value: " + value +
                                           ": must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)"));
    causes.push_back(FieldCause(field, "Invalid value: " + value + ": must be a valid IP address"));
    return;
  }
  const unsigned char* b = is4 ? reinterpret_cast<const unsigned char*>(&v4.s_addr) : v6.s6_addr;
  bool unspecified = false, loopback = false, link_local = false, link_local_multicast = false;
  if (is4) {
    unspecified = b[0] == 0 && b[1] == 0 && b[2] == 0 && b[3] == 0;
    loopback = b[0] == 127;
    link_local = b[0] == 169 && b[1] == 254;
    link_local_multicast = b[0] == 224 && b[1] == 0 && b[2] == 0;
  } else {
    unspecified = IN6_IS_ADDR_UNSPECIFIED(&v6);
    loopback = IN6_IS_ADDR_LOOPBACK(&v6);
    link_local = IN6_IS_ADDR_LINKLOCAL(&v6);
    link_local_multicast = b[0] == 0xff && (b[1] & 0x0f) == 0x02;
  }
  if (unspecified) causes.push_back(FieldCause(field, "Invalid value: " + value + ": may not be unspecified (" + ip + ")"));
  if (loopback) {
    causes.push_back(FieldCause(field, "Invalid value: " + value + ": may not be in the loopback range (127.0.0.0/8, ::1/128)"));
  }
  if (link_local) {
    causes.push_back(
        FieldCause(field, "Invalid value: " + value + ": may not be in the link-local range (169.254.0.0/16, fe80::/10)"));
  }
  if (link_local_multicast) {
    causes.push_back(FieldCause(
        field, "Invalid value: " + value + ": may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)"));
  }
}

std::vector<Cause> ValidateBuiltin(const ResourceType& t, const Json& o) {
  std::vector<Cause> causes;
  if (t.kind == "Role" || t.kind == "ClusterRole") {
    // ValidatePolicyRule for each rule.
    const Json& rules = Field(o, "rules");
    for (std::size_t i = 0; rules.is_array() && i < rules.size(); ++i) {
      const Json& rule = rules[i];
      const std::string at = "rules[" + std::to_string(i) + "]";
      auto count = [&](const char* key) { return Field(rule, key).is_array() ? Field(rule, key).size() : 0; };
      if (count("verbs") == 0) {
        causes.push_back(FieldCause(at + ".verbs", "Required value: verbs must contain at least one value"));
      }
      if (count("nonResourceURLs") > 0) {
        const std::string urls = GoStrings(rule["nonResourceURLs"]);
        if (t.kind == "Role") {
          causes.push_back(FieldCause(at + ".nonResourceURLs",
                                      "Invalid value: " + urls + ": namespaced rules cannot apply to non-resource URLs"));
        }
        if (count("apiGroups") > 0 || count("resources") > 0 || count("resourceNames") > 0) {
          causes.push_back(FieldCause(at + ".nonResourceURLs",
                                      "Invalid value: " + urls +
                                          ": rules cannot apply to both regular resources and non-resource URLs"));
        }
        continue;
      }
      if (count("apiGroups") == 0) {
        causes.push_back(FieldCause(at + ".apiGroups", "Required value: resource rules must supply at least one api group"));
      }
      if (count("resources") == 0) {
        causes.push_back(FieldCause(at + ".resources", "Required value: resource rules must supply at least one resource"));
      }
    }
    return causes;
  }
  if (t.kind == "RoleBinding" || t.kind == "ClusterRoleBinding") {
    const Json& ref = Field(o, "roleRef");
    const std::string group = StrField(ref, "apiGroup");
    if (group != "rbac.authorization.k8s.io") {
      causes.push_back(FieldCause("roleRef.apiGroup", "Unsupported value: " + Json(group).dump() +
                                                          ": supported values: \"rbac.authorization.k8s.io\""));
    }
    const std::string kind = StrField(ref, "kind");
    if (t.kind == "RoleBinding" && kind != "Role" && kind != "ClusterRole") {
      causes.push_back(
          FieldCause("roleRef.kind", "Unsupported value: " + Json(kind).dump() + ": supported values: \"Role\", \"ClusterRole\""));
    } else if (t.kind == "ClusterRoleBinding" && kind != "ClusterRole") {
      causes.push_back(FieldCause("roleRef.kind", "Unsupported value: " + Json(kind).dump() +
                                                      ": supported values: \"ClusterRole\""));
    }
    if (StrField(ref, "name").empty()) causes.push_back(FieldCause("roleRef.name", "Required value"));
    const Json& subjects = Field(o, "subjects");
    for (std::size_t i = 0; subjects.is_array() && i < subjects.size(); ++i) {
      const Json& s = subjects[i];
      const std::string at = "subjects[" + std::to_string(i) + "]";
      if (StrField(s, "name").empty()) causes.push_back(FieldCause(at + ".name", "Required value"));
      const std::string skind = StrField(s, "kind");
      const std::string sgroup = StrField(s, "apiGroup");
      if (skind == "ServiceAccount") {
        if (!sgroup.empty()) {
          causes.push_back(FieldCause(at + ".apiGroup", "Unsupported value: " + Json(sgroup).dump() +
                                                            ": supported values: \"\""));
        }
        if (t.kind == "ClusterRoleBinding" && StrField(s, "namespace").empty()) {
          causes.push_back(FieldCause(at + ".namespace", "Required value"));
        }
      } else if (skind == "User" || skind == "Group") {
        if (sgroup != "rbac.authorization.k8s.io") {
          causes.push_back(FieldCause(at + ".apiGroup", "Unsupported value: " + Json(sgroup).dump() +
                                                            ": supported values: \"rbac.authorization.k8s.io\""));
        }
      } else {
        causes.push_back(FieldCause(at + ".kind", "Unsupported value: " + Json(skind).dump() +
                                                      ": supported values: \"ServiceAccount\", \"User\", \"Group\""));
      }
    }
    return causes;
  }
  if (t.kind == "Endpoints") {
    const Json& subsets = Field(o, "subsets");
    for (std::size_t i = 0; subsets.is_array() && i < subsets.size(); ++i) {
      const std::string at = "subsets[" + std::to_string(i) + "]";
      for (const char* list : {"addresses", "notReadyAddresses"}) {
        const Json& addresses = Field(subsets[i], list);
        for (std::size_t j = 0; addresses.is_array() && j < addresses.size(); ++j) {
          CheckEndpointIp(StrField(addresses[j], "ip"), at + "." + list + "[" + std::to_string(j) + "].ip", causes);
        }
      }
      const Json& ports = Field(subsets[i], "ports");
      for (std::size_t j = 0; ports.is_array() && j < ports.size(); ++j) {
        const Json& port = Field(ports[j], "port");
        const long long n = port.is_number_integer() ? port.get<long long>() : 0;
        if (n < 1 || n > 65535) {
          causes.push_back(FieldCause(at + ".ports[" + std::to_string(j) + "].port",
                                      "Invalid value: " + std::to_string(n) + ": must be between 1 and 65535, inclusive"));
        }
      }
    }
    return causes;
  }
  const Json& spec = Field(o, "spec");
  auto pod_spec = [&](const Json& ps, const std::string& at) {
    const Json& containers = Field(ps, "containers");
    if (!containers.is_array() || containers.empty()) {
      causes.push_back(FieldCause(at + ".containers", "Required value"));
      return;
    }
    for (std::size_t i = 0; i < containers.size(); ++i) {
      const std::string c = at + ".containers[" + std::to_string(i) + "]";
      const std::string name = StrField(containers[i], "name");
      if (name.empty()) {
        causes.push_back(FieldCause(c + ".name", "Required value"));
      } else if (auto p = NameProblem(name, NameRule::kLabel); !p.empty()) {
        causes.push_back(FieldCause(c + ".name", p));
      }
      if (StrField(containers[i], "image").empty()) causes.push_back(FieldCause(c + ".image", "Required value"));
    }
  };
  if (t.kind == "Deployment" || t.kind == "StatefulSet" || t.kind == "DaemonSet") {
    const Json& replicas = Field(spec, "replicas");
    if (replicas.is_number_integer() && replicas.get<long long>() < 0) {
      causes.push_back(FieldCause("spec.replicas", "Invalid value: " + replicas.dump() +
                                                       ": must be greater than or equal to 0"));
    }
    const Json& selector = Field(spec, "selector");
    const Json& labels = Field(Field(Field(spec, "template"), "metadata"), "labels");
    if (!selector.is_object()) {
      causes.push_back(FieldCause("spec.selector", "Required value"));
    } else {
      const Json& match = Field(selector, "matchLabels");
      if (match.is_object() && match.empty() && Field(selector, "matchExpressions").is_null()) {
        causes.push_back(FieldCause("spec.selector", "Invalid value: \"null\": empty selector is invalid for deployment"));
      }
      bool matches = labels.is_object();
      if (match.is_object()) {
        for (auto it = match.begin(); it != match.end() && matches; ++it) {
          matches = labels.contains(it.key()) && labels[it.key()] == it.value();
        }
      }
      if (!matches) {
        causes.push_back(FieldCause("spec.template.metadata.labels",
                                    "Invalid value: " + GoMap(labels.is_object() ? labels : Json::object()) +
                                        ": `selector` does not match template `labels`"));
      }
    }
    pod_spec(Field(Field(spec, "template"), "spec"), "spec.template.spec");
  } else if (t.kind == "Pod") {
    pod_spec(spec, "spec");
  } else if (t.kind == "Lease") {
    const Json& d = Field(spec, "leaseDurationSeconds");
    if (d.is_number_integer() && d.get<long long>() <= 0) {
      causes.push_back(FieldCause("spec.leaseDurationSeconds", "Invalid value: " + d.dump() + ": must be greater than 0"));
    }
    const Json& tr = Field(spec, "leaseTransitions");
    if (tr.is_number_integer() && tr.get<long long>() < 0) {
      causes.push_back(FieldCause("spec.leaseTransitions", "Invalid value: " + tr.dump() +
                                                              ": must be greater than or equal to 0"));
    }
  }
  return causes;
}

// ---------------------------------------------------------------------------
// Watch lines
// ---------------------------------------------------------------------------

void AppendEvent(std::string& out, const char* type, std::string_view object_text) {
  out += "{\"type\":\"";
  out += type;
  out += "\",\"object\":";
  out += object_text;
  out += "}\n";
}

// A bookmark as a typed server writes it: the type fields, the RV, and the
// zero values Go's encoder leaves in (spec §2.3), which clients must ignore.
Json BookmarkObject(const ResourceType& t, std::uint64_t rv, bool initial_events_end) {
  Json o = Json::object();
  o["kind"] = t.kind;
  o["apiVersion"] = t.ApiVersion();
  Json meta = Json::object();
  meta["resourceVersion"] = std::to_string(rv);
  if (!t.custom) meta["creationTimestamp"] = nullptr;
  if (initial_events_end) meta["annotations"] = Json{{"k8s.io/initial-events-end", "true"}};
  o["metadata"] = std::move(meta);
  if (t.kind == "Deployment" || t.kind == "StatefulSet" || t.kind == "DaemonSet") {
    o["spec"] = Json{{"selector", nullptr},
                     {"template", Json{{"metadata", Json{{"creationTimestamp", nullptr}}},
                                       {"spec", Json{{"containers", nullptr}}}}}};
    o["status"] = Json::object();
  } else if (t.kind == "Pod") {
    o["spec"] = Json{{"containers", nullptr}};
    o["status"] = Json::object();
  }
  return o;
}

// How much of a watch stream is gathered before it is written as a chunk.
constexpr std::size_t kWatchFlushBytes = 64 * 1024;

std::string ErrorLine(const Json& status) {
  std::string line;
  AppendEvent(line, "ERROR", status.dump());
  return line;
}

// The object with its RV replaced (a DELETED for a selector transition
// carries the previous state at the event's RV, spec §2.3).
Json WithRv(const StoredObject& o, std::uint64_t rv) {
  Json j = o.json;
  j["metadata"]["resourceVersion"] = std::to_string(rv);
  return j;
}

}  // namespace

// ---------------------------------------------------------------------------
// Request
// ---------------------------------------------------------------------------

std::string Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return "";
}

const std::string* Request::Query(std::string_view name) const {
  for (const auto& [k, v] : query) {
    if (k == name) return &v;
  }
  return nullptr;
}

std::optional<bool> ParseGoBool(std::string_view t) {
  if (t == "1" || t == "t" || t == "T" || t == "TRUE" || t == "true" || t == "True") return true;
  if (t == "0" || t == "f" || t == "F" || t == "FALSE" || t == "false" || t == "False") return false;
  return std::nullopt;
}

// ---------------------------------------------------------------------------
// Cluster
// ---------------------------------------------------------------------------

struct Cluster::Context {
  const Request& req;
  ResponseWriter& w;
  std::shared_ptr<const Registry> registry;
  UserInfo user;
  const ResourceType* type = nullptr;
  std::string ns;
  std::string name;
  std::string sub;
  Headers warnings;
  // A GET answered with a meta.k8s.io Table (as=Table in Accept), and its
  // version ("meta.k8s.io/v1" or "meta.k8s.io/v1beta1").
  bool table = false;
  std::string table_version;

  bool QueryBool(const char* key) const {
    const std::string* v = req.Query(key);
    if (v == nullptr || v->empty()) return false;
    auto b = ParseGoBool(*v);
    if (!b) BadRequest("strconv.ParseBool: parsing \"" + *v + "\": invalid syntax");
    return *b;
  }
  std::string QueryStr(const char* key) const {
    const std::string* v = req.Query(key);
    return v == nullptr ? std::string() : *v;
  }
  bool HasQuery(const char* key) const { return req.Query(key) != nullptr; }
};

namespace {

Headers JsonHeaders(const Headers& extra = {}) {
  Headers h{{"Content-Type", "application/json"}, {"Cache-Control", "no-cache, private"}};
  h.insert(h.end(), extra.begin(), extra.end());
  return h;
}

void SendJson(ResponseWriter& w, int code, const Json& body, const Headers& extra = {}) {
  w.Send(code, JsonHeaders(extra), body.dump());
}

// ---------------------------------------------------------------------------
// Accept negotiation for resource reads, as the server's negotiation package
// does it (goautoneg's clause order, then the first serializer a clause
// matches whose parameters the endpoint allows).
// ---------------------------------------------------------------------------

struct AcceptClause {
  std::string type;
  std::string subtype;
  double q = 1.0;
  std::vector<std::pair<std::string, std::string>> params;

  const std::string* Param(std::string_view key) const {
    for (const auto& [k, v] : params) {
      if (k == key) return &v;
    }
    return nullptr;
  }
};

std::string TrimSpaces(std::string_view s) {
  const auto b = s.find_first_not_of(' ');
  if (b == std::string_view::npos) return "";
  return std::string(s.substr(b, s.find_last_not_of(' ') - b + 1));
}

// goautoneg.ParseAccept: "type/subtype;k=v;q=0.5" clauses, sorted by q and
// then by specificity (a stable order otherwise, as Go's insertion sort of
// short slices is).
std::vector<AcceptClause> ParseAccept(std::string_view header) {
  std::vector<AcceptClause> clauses;
  std::size_t start = 0;
  for (;;) {
    const auto comma = header.find(',', start);
    const std::string_view part = header.substr(start, comma == std::string_view::npos ? std::string_view::npos
                                                                                         : comma - start);
    std::vector<std::string_view> pieces;
    for (std::size_t p = 0;;) {
      const auto semi = part.find(';', p);
      pieces.push_back(part.substr(p, semi == std::string_view::npos ? std::string_view::npos : semi - p));
      if (semi == std::string_view::npos) break;
      p = semi + 1;
    }
    const std::string_view range = pieces[0];
    const auto slash = range.find('/');
    AcceptClause c;
    c.type = TrimSpaces(range.substr(0, slash));
    bool ok = true;
    if (slash == std::string_view::npos) {
      ok = c.type == "*";
      c.subtype = "*";
    } else if (range.find('/', slash + 1) != std::string_view::npos) {
      ok = false;
    } else {
      c.subtype = TrimSpaces(range.substr(slash + 1));
    }
    if (ok) {
      for (std::size_t i = 1; i < pieces.size(); ++i) {
        const auto eq = pieces[i].find('=');
        if (eq == std::string_view::npos) continue;
        const std::string key = TrimSpaces(pieces[i].substr(0, eq));
        if (key == "q") {
          c.q = std::strtod(std::string(pieces[i].substr(eq + 1)).c_str(), nullptr);
        } else {
          c.params.emplace_back(key, TrimSpaces(pieces[i].substr(eq + 1)));
        }
      }
      clauses.push_back(std::move(c));
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  std::stable_sort(clauses.begin(), clauses.end(), [](const AcceptClause& a, const AcceptClause& b) {
    const auto key = [](const AcceptClause& c) { return std::tuple(-c.q, c.type == "*", c.subtype == "*"); };
    return key(a) < key(b);
  });
  return clauses;
}

enum class Output { kJson, kTable, kNotAcceptable };

// The body a GET of `t` gets for `accept`. A Table is the meta.k8s.io
// conversion in JSON; YAML, protobuf, Tables of types without a printer here
// (table.h) and PartialObjectMetadata are answered with plain JSON, which
// the emulator speaks instead (README); a header no real serializer
// satisfies is a 406.
Output NegotiateOutput(const std::string& accept, const ResourceType& t, std::string* table_version) {
  if (accept.empty()) return Output::kJson;
  static const std::pair<const char*, const char*> kSerializers[] = {
      {"application", "json"}, {"application", "yaml"}, {"application", "vnd.kubernetes.protobuf"}};
  for (const AcceptClause& c : ParseAccept(accept)) {
    for (const auto& [type, subtype] : kSerializers) {
      const bool match = (c.type == type && (c.subtype == subtype || c.subtype == "*")) ||
                         (c.type == "*" && c.subtype == "*");
      if (!match) continue;
      const bool json = std::string_view(subtype) == "json";
      const bool protobuf = std::string_view(subtype) == "vnd.kubernetes.protobuf";
      // stream=watch is the only stream schema an endpoint allows.
      if (const std::string* stream = c.Param("stream"); stream != nullptr && !stream->empty() && *stream != "watch") {
        continue;
      }
      const std::string* as = c.Param("as");
      const std::string* g = c.Param("g");
      const std::string* v = c.Param("v");
      if (as == nullptr && g == nullptr && v == nullptr) {
        // Custom resources are served as JSON and YAML only.
        if (protobuf && t.custom) continue;
        return Output::kJson;
      }
      const std::string kind = as ? *as : "", group = g ? *g : "", version = v ? *v : "";
      if (group != "meta.k8s.io" || (version != "v1" && version != "v1beta1")) continue;
      if (kind == "Table") {
        if (protobuf) continue;
        if (json && SupportsTable(t)) {
          *table_version = "meta.k8s.io/" + version;
          return Output::kTable;
        }
        return Output::kJson;
      }
      if (kind == "PartialObjectMetadata" || kind == "PartialObjectMetadataList") return Output::kJson;
    }
  }
  return Output::kNotAcceptable;
}

// The Table options of a request: includeObject (400 when unknown), the
// negotiated version.
TableOptions TableOptionsFor(const Request& req, const std::string& table_version) {
  std::string error;
  auto include = ParseIncludeObject(req.Query("includeObject"), &error);
  if (!include) BadRequest(error);
  TableOptions options;
  options.include = *include;
  options.api_version = table_version;
  return options;
}

}  // namespace

Cluster::Cluster(ClusterOptions options)
    : options_(std::move(options)),
      store_(options_.max_events),
      registry_(Registry::BuiltIn()),
      watch_list_(options_.watch_list),
      expired_reason_(options_.expired_reason) {
  // The namespaces every cluster starts with.
  for (const char* ns : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    store_.Mutate("/namespaces", "", ns, [&](const ObjectPtr&) {
      Json o = Json::object();
      o["kind"] = "Namespace";
      o["apiVersion"] = "v1";
      o["metadata"] = Json{{"name", ns}, {"uid", NewUid()}, {"creationTimestamp", NowRfc3339()},
                           {"labels", Json{{"kubernetes.io/metadata.name", ns}}}};
      o["spec"] = Json{{"finalizers", Json::array({"kubernetes"})}};
      o["status"] = Json{{"phase", "Active"}};
      return Mutation::Put(Canonical(o));
    });
  }
  // The default RBAC policy every cluster starts with (auth.h).
  for (Json o : BootstrapPolicy()) {
    const std::string key = "rbac.authorization.k8s.io/" + std::string(o["kind"] == "ClusterRole" ? "clusterroles"
                                                                                                   : "clusterrolebindings");
    const std::string name = o["metadata"]["name"];
    o["metadata"]["uid"] = NewUid();
    o["metadata"]["creationTimestamp"] = NowRfc3339();
    store_.Mutate(key, "", name, [&](const ObjectPtr&) { return Mutation::Put(Canonical(o)); });
  }
}

Cluster::~Cluster() { Shutdown(); }

std::shared_ptr<const Registry> Cluster::registry() const {
  std::lock_guard lock(mu_);
  return registry_;
}

std::string Cluster::NewUid() {
  // A version-4 UUID; unique per process, random enough for a fixture.
  static thread_local std::mt19937_64 rng(std::random_device{}());
  std::uint64_t a = rng(), b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;
  char buf[40];
  std::snprintf(buf, sizeof(buf), "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xffff),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return buf;
}

void Cluster::SetToken(const std::string& token, UserInfo user) {
  std::lock_guard lock(mu_);
  tokens_[token] = std::move(user);
}

std::optional<UserInfo> Cluster::Authenticate(const std::string& token) const {
  std::lock_guard lock(mu_);
  auto it = tokens_.find(token);
  if (token.empty() || it == tokens_.end()) return std::nullopt;
  UserInfo user = it->second;
  if (!user.InGroup(kAuthenticatedGroup)) user.groups.push_back(kAuthenticatedGroup);
  return user;
}

void Cluster::RevokeToken(const std::string& token) {
  std::lock_guard lock(mu_);
  tokens_.erase(token);
}

void Cluster::FailNext(const FailSpec& spec) {
  std::lock_guard lock(mu_);
  fail_ = spec;
}

void Cluster::SetDelay(std::chrono::milliseconds delay) {
  std::lock_guard lock(mu_);
  delay_ = delay;
}

void Cluster::SetSplitChunks(bool on) { split_chunks_ = on; }

void Cluster::DropWatches(bool reset) {
  drop_reset_ = reset;
  ++drop_epoch_;
  store_.WakeAll();
}

void Cluster::SetStallWatches(bool on) {
  stall_ = on;
  store_.WakeAll();
}

void Cluster::SetWatchList(bool on) {
  std::lock_guard lock(mu_);
  watch_list_ = on;
}

void Cluster::SetExpiredReason(const std::string& reason) {
  std::lock_guard lock(mu_);
  expired_reason_ = reason;
}

void Cluster::Shutdown() {
  shutdown_ = true;
  store_.WakeAll();
}

void Cluster::Handle(const Request& request, ResponseWriter& writer) {
  ++requests_;
  Context ctx{request, writer, registry(), {}, nullptr, "", "", "", {}, false, ""};
  try {
    // Faults first: an overloaded or broken server answers before it
    // authenticates anything.
    FailSpec fail;
    std::chrono::milliseconds delay{0};
    {
      std::lock_guard lock(mu_);
      if (fail_.count > 0) {
        --fail_.count;
        fail = fail_;
        fail.count = 1;
      }
      delay = delay_;
    }
    if (delay.count() > 0) std::this_thread::sleep_for(delay);
    if (fail.count == 1) {
      Headers h;
      if (fail.retry_after_s >= 0) h.emplace_back("Retry-After", std::to_string(fail.retry_after_s));
      if (fail.code == 429 && !fail.json) {
        // The max-in-flight / priority-and-fairness filter's plain-text reply.
        h.emplace_back("Content-Type", "text/plain; charset=utf-8");
        h.emplace_back("X-Content-Type-Options", "nosniff");
        writer.Send(429, h, "Too many requests, please try again later.\n");
        return;
      }
      if (fail.code == 429) {
        SendJson(writer, 429,
                 StatusJson(429, "TooManyRequests", "Too many requests, please try again later.",
                            Details("", "", "", {}, std::max(fail.retry_after_s, 0))),
                 h);
        return;
      }
      SendJson(writer, fail.code,
               StatusJson(fail.code, fail.code == 503 ? "ServiceUnavailable" : "InternalError",
                          fail.code == 503 ? "the server is currently unable to handle the request"
                                           : "an error on the server (\"injected fault\") has prevented the request "
                                             "from succeeding",
                          Json::object()),
               h);
      return;
    }

    // Authentication: a bearer token we issued, or a client certificate
    // from our CA. Any token we do not know is a 401, wherever it is sent.
    const std::string auth = request.Header("Authorization");
    bool authenticated = false;
    if (!auth.empty()) {
      std::string token;
      if (auth.size() > 7 && IEquals(auth.substr(0, 7), "Bearer ")) token = auth.substr(7);
      if (auto user = Authenticate(token)) {
        ctx.user = std::move(*user);
        authenticated = true;
      }
    } else if (!request.client_cert_user.empty()) {
      // The CN is the user, each O= a group. A certificate without any O=
      // is taken as one of system:masters (README: certificates from before
      // RBAC, and tests that predate it, expect full access).
      ctx.user.name = request.client_cert_user;
      ctx.user.groups = request.client_cert_groups;
      if (ctx.user.groups.empty()) ctx.user.groups.push_back(kMastersGroup);
      ctx.user.groups.push_back(kAuthenticatedGroup);
      authenticated = true;
    }
    const bool public_path = request.path == "/healthz" || request.path == "/livez" || request.path == "/readyz" ||
                             request.path == "/version";
    if (!authenticated) {
      if (!auth.empty() || !public_path) Fail(401, "Unauthorized", "Unauthorized");
      ctx.user = UserInfo{kAnonymousUser, "", {kUnauthenticatedGroup}};
    }
    // Impersonation (Impersonate-User / -Group / -Uid), as the
    // impersonation filter does it: the requester must be allowed to
    // `impersonate` each, then the request runs as that user.
    std::string as_user, as_uid;
    std::vector<std::string> as_groups;
    bool impersonating = false;
    for (const auto& [k, v] : request.headers) {
      if (IEquals(k, "Impersonate-User")) {
        as_user = v;
      } else if (IEquals(k, "Impersonate-Group")) {
        as_groups.push_back(v);
      } else if (IEquals(k, "Impersonate-Uid")) {
        as_uid = v;
      } else {
        continue;
      }
      impersonating = true;
    }
    if (impersonating) {
      if (as_user.empty()) {
        Fail(500, "InternalError", "Internal error occurred: requested [" + std::string(as_groups.empty() ? "uid" : "groups") +
                                       "] without impersonating a user");
      }
      auto check = [&](const std::string& group, const std::string& resource, const std::string& name) {
        Attributes a;
        a.user = ctx.user;
        a.verb = "impersonate";
        a.resource_request = true;
        a.group = group;
        a.resource = resource;
        a.name = name;
        const Decision d = Authorize(store_, a);
        if (!d.allowed) throw ForbiddenError(a, d.reason);
      };
      check("", "users", as_user);
      for (const auto& g : as_groups) check("", "groups", g);
      if (!as_uid.empty()) check("authentication.k8s.io", "uids", as_uid);
      UserInfo as{as_user, as_uid, as_groups};
      if (as_user != kAnonymousUser && !as.InGroup(kAuthenticatedGroup)) as.groups.push_back(kAuthenticatedGroup);
      ctx.user = std::move(as);
    }
    // Authorization, before routing: a request RBAC refuses gets its 403
    // whether or not the path exists, as on a real server.
    if (!ctx.user.InGroup(kMastersGroup)) {
      Attributes attributes = ResolveRequest(request.method, request.path, request.query);
      attributes.user = ctx.user;
      const Decision decision = Authorize(store_, attributes);
      if (!options_.authorization_log.empty()) LogAuthorization(attributes, decision.allowed);
      if (!decision.allowed) throw ForbiddenError(attributes, decision.reason);
    }
    Route(ctx);
  } catch (const StatusError& e) {
    Headers h = e.headers;
    h.insert(h.end(), ctx.warnings.begin(), ctx.warnings.end());
    SendJson(writer, e.code, e.body, h);
  } catch (const std::exception& e) {
    SendJson(writer, 500,
             StatusJson(500, "InternalError",
                        std::string("an error on the server (\"") + e.what() +
                            "\") has prevented the request from succeeding",
                        Json::object()));
  }
}

void Cluster::Route(Context& ctx) {
  const Request& req = ctx.req;
  const std::string& path = req.path;
  std::vector<std::string> seg;
  for (std::size_t start = 1; start <= path.size();) {
    const auto slash = path.find('/', start);
    const auto end = slash == std::string::npos ? path.size() : slash;
    if (end > start) seg.push_back(path.substr(start, end - start));
    start = end + 1;
  }
  const bool get = req.method == "GET" || req.method == "HEAD";
  const std::string& m = req.method;
  if (path == "/healthz" || path == "/livez" || path == "/readyz") {
    if (!get) NotFoundPath();
    ctx.w.Send(200, {{"Content-Type", "text/plain; charset=utf-8"}, {"X-Content-Type-Options", "nosniff"}}, "ok");
    return;
  }
  if (path == "/version") {
    if (!get) NotFoundPath();
    SendJson(ctx.w, 200,
             Json{{"major", "1"}, {"minor", "32"}, {"gitVersion", "v1.32.0"},
                  {"gitCommit", "0000000000000000000000000000000000000000"}, {"gitTreeState", "clean"},
                  {"buildDate", "2024-12-11T00:00:00Z"}, {"goVersion", "go1.23.3"}, {"compiler", "gc"},
                  {"platform", "linux/amd64"}});
    return;
  }
  if (seg.empty()) NotFoundPath();

  std::string group, version;
  std::size_t rest = 0;
  if (seg[0] == "api") {
    if (seg.size() == 1) {
      if (!get) NotFoundPath();
      SendJson(ctx.w, 200, ctx.registry->ApiVersions());
      return;
    }
    version = seg[1];
    rest = 2;
  } else if (seg[0] == "apis") {
    if (seg.size() == 1) {
      if (!get) NotFoundPath();
      SendJson(ctx.w, 200, ctx.registry->ApiGroupList());
      return;
    }
    group = seg[1];
    if (seg.size() == 2) {
      auto g = ctx.registry->ApiGroup(group);
      if (!g || !get) NotFoundPath();
      SendJson(ctx.w, 200, *g);
      return;
    }
    version = seg[2];
    rest = 3;
  } else {
    NotFoundPath();
  }
  auto list = ctx.registry->ResourceList(group, version);
  if (!list) NotFoundPath();
  if (seg.size() == rest) {
    if (!get) NotFoundPath();
    SendJson(ctx.w, 200, *list);
    return;
  }

  // The request-info rules of the real server: namespaces/NS/RESOURCE...,
  // except namespaces/NS and its own subresources (status, finalize).
  std::vector<std::string> r(seg.begin() + static_cast<std::ptrdiff_t>(rest), seg.end());
  std::string resource;
  bool in_namespace = false;
  if (r[0] == "namespaces" && r.size() >= 3 && r[2] != "status" && r[2] != "finalize") {
    ctx.ns = r[1];
    in_namespace = true;
    r.erase(r.begin(), r.begin() + 2);
  }
  resource = r[0];
  if (group.empty() && resource == "services" && in_namespace && r.size() >= 3 && r[2] == "proxy" &&
      ctx.registry->Find(group, version, resource) != nullptr) {
    ctx.type = ctx.registry->Find(group, version, resource);
    ServeServiceProxy(ctx, r[1]);
    return;
  }
  if (r.size() >= 2) ctx.name = r[1];
  if (r.size() >= 3) ctx.sub = r[2];
  if (r.size() > 3) NotFoundPath();
  ctx.type = ctx.registry->Find(group, version, resource);
  if (ctx.type == nullptr) NotFoundPath();
  const ResourceType& t = *ctx.type;
  if (in_namespace && !t.namespaced) NotFoundPath();
  if (!t.namespaced) ctx.ns.clear();
  if (!ctx.sub.empty() && !(ctx.sub == "status" && t.status_subresource)) NotFoundPath();
  // A namespaced object is only reachable through its namespace.
  if (t.namespaced && !in_namespace && !ctx.name.empty()) NotFoundPath();

  if (t.CreateOnly()) {
    if (!ctx.name.empty()) NotFoundPath();
    if (m != "POST") {
      Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
           Json::object());
    }
    ServeReview(ctx);
    return;
  }
  if (get) {
    switch (NegotiateOutput(req.Header("Accept"), t, &ctx.table_version)) {
      case Output::kNotAcceptable:
        Fail(406, "NotAcceptable",
             "only the following media types are accepted: application/json, application/yaml, "
             "application/vnd.kubernetes.protobuf");
      case Output::kTable:
        ctx.table = true;
        break;
      case Output::kJson:
        break;
    }
  }

  if (ctx.name.empty()) {
    if (get) {
      if (ctx.QueryBool("watch")) {
        ServeWatch(ctx);
      } else {
        ServeList(ctx);
      }
    } else if (m == "POST") {
      if (t.namespaced && !in_namespace) NotFoundPath();
      ServeCreate(ctx);
    } else if (m == "DELETE" && (!t.namespaced || in_namespace)) {
      // The all-namespaces path serves list and watch only.
      ServeDeleteCollection(ctx);
    } else {
      Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource",
           Json::object());
    }
    return;
  }
  if (get) {
    // GET on an object is a get whatever the query says: its handler reads
    // GetOptions only, so ?watch=true returns the object (one plain JSON
    // body), as a real server does. Watching one object goes through the
    // collection with fieldSelector=metadata.name=NAME.
    ServeGet(ctx);
  } else if (m == "PUT") {
    ServeUpdate(ctx);
  } else if (m == "PATCH") {
    ServePatch(ctx);
  } else if (m == "DELETE" && ctx.sub.empty()) {
    ServeDelete(ctx);
  } else {
    Fail(405, "MethodNotAllowed", "the server does not allow this method on the requested resource", Json::object());
  }
}

// ---------------------------------------------------------------------------
// LIST (spec §1)
// ---------------------------------------------------------------------------

namespace {

struct Selectors {
  LabelSelector labels;
  FieldSelector fields;
  bool empty() const { return labels.Empty() && fields.Empty(); }
};

Selectors ParseSelectors(const Request& req, const ResourceType& t) {
  std::string error;
  const std::string* ls = req.Query("labelSelector");
  auto labels = LabelSelector::Parse(ls ? *ls : "", &error);
  if (!labels) BadRequest(error);
  const std::string* fs = req.Query("fieldSelector");
  auto fields = FieldSelector::Parse(fs ? *fs : "", SupportedFieldLabels(t.kind), &error);
  if (!fields) BadRequest(error);
  return {std::move(*labels), std::move(*fields)};
}

bool Selected(const Selectors& s, const StoredObject& o, const std::string& ns) {
  if (!ns.empty() && o.ns != ns) return false;
  return s.labels.Matches(o.json) && s.fields.Matches(o.json);
}

std::string ObjectKey(const StoredObject& o) { return o.ns + "/" + o.name; }

std::string ExpiredContinueMessage() {
  return "The provided continue parameter is too old to display a consistent list result. You can start a new "
         "list without the continue parameter.";
}

}  // namespace

void Cluster::ServeList(Context& ctx) {
  ++lists_;
  const ResourceType& t = *ctx.type;
  if (ctx.HasQuery("sendInitialEvents")) {
    InvalidOptions("ListOptions", "sendInitialEvents", "Forbidden: sendInitialEvents is forbidden for list");
  }
  const Selectors sel = ParseSelectors(ctx.req, t);
  const std::string rv_text = ctx.QueryStr("resourceVersion");
  const std::string match = ctx.QueryStr("resourceVersionMatch");
  const std::string cont = ctx.QueryStr("continue");
  std::int64_t limit = 0;
  if (ctx.HasQuery("limit")) {
    auto l = ParseInt(ctx.QueryStr("limit"));
    if (!l) BadRequest("limit: invalid value \"" + ctx.QueryStr("limit") + "\"");
    limit = std::max<std::int64_t>(*l, 0);
  }
  if (!match.empty()) {
    if (match != "Exact" && match != "NotOlderThan") {
      InvalidOptions("ListOptions", "resourceVersionMatch",
                     "Unsupported value: \"" + match + "\": supported values: \"Exact\", \"NotOlderThan\", \"\"");
    }
    if (rv_text.empty()) {
      InvalidOptions("ListOptions", "resourceVersionMatch",
                     "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided");
    }
    if (!cont.empty()) {
      InvalidOptions("ListOptions", "resourceVersionMatch",
                     "Forbidden: resourceVersionMatch is forbidden when continue is provided");
    }
    if (match == "Exact" && rv_text == "0") {
      InvalidOptions("ListOptions", "resourceVersionMatch",
                     "Forbidden: resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"");
    }
  }
  std::optional<std::uint64_t> rv;
  if (!rv_text.empty()) {
    rv = ParseRv(rv_text);
    if (!rv) BadRequest("invalid resource version: strconv.ParseUint: parsing \"" + rv_text + "\": invalid syntax");
  }

  std::string start;       // the first key to return
  std::optional<std::uint64_t> at;  // list at this RV (nullopt: current)
  bool paged = limit > 0;
  if (!cont.empty()) {
    if (rv && *rv != 0) BadRequest("specifying resource version is not allowed when using continue");
    if (expire_continue_.load()) Fail(410, "Expired", ExpiredContinueMessage());
    auto raw = DecodeBase64RawUrl(cont);
    Json token;
    if (raw) token = Json::parse(*raw, nullptr, /*allow_exceptions=*/false);
    if (!raw || !token.is_object() || StrField(token, "v") != "meta.k8s.io/v1" ||
        !Field(token, "rv").is_number_integer() || !Field(token, "start").is_string()) {
      BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    }
    const std::int64_t token_rv = token["rv"];
    if (token_rv <= 0) BadRequest("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)");
    at = static_cast<std::uint64_t>(token_rv);
    start = token["start"];
  } else if (rv && *rv == 0) {
    paged = false;  // "Any": served from the cache, which ignores limit (spec §1.4)
  } else if (rv) {
    const bool exact = match == "Exact" || (match.empty() && paged);
    if (*rv > store_.CurrentRv()) {
      // Not reached yet: wait a little for it, as the watch cache does.
      if (!store_.WaitForRv(*rv, Clock::now() + options_.too_large_rv_wait)) {
        Fail(504, "Timeout",
             "Timeout: Too large resource version: " + std::to_string(*rv) +
                 ", current: " + std::to_string(store_.CurrentRv()),
             Details("", "", "", {{"ResourceVersionTooLarge", "Too large resource version", ""}}, 1));
      }
    }
    if (exact) at = *rv;
  }

  auto result = store_.List(t.StoreKey(), at);
  if (!result) {
    if (!cont.empty()) {
      Fail(410, "Expired", ExpiredContinueMessage());
    }
    Fail(410, "Expired", "The resourceVersion for the provided list is too old.");
  }

  std::string items;
  std::vector<const Json*> page;  // the items, for a Table
  std::size_t count = 0;
  std::string last_key;
  std::int64_t remaining = 0;
  bool more = false;
  for (const ObjectPtr& o : result->objects) {
    if (!start.empty() && ObjectKey(*o) < start) continue;
    if (!Selected(sel, *o, ctx.ns)) continue;
    if (paged && static_cast<std::int64_t>(count) >= limit) {
      more = true;
      ++remaining;
      continue;
    }
    page.push_back(&o->json);
    if (count++ > 0) items += ',';
    if (!t.custom && o->body_start > 0) {
      items += '{';
      items.append(o->text, o->body_start, std::string::npos);
    } else {
      items += o->text;
    }
    last_key = ObjectKey(*o);
  }
  TableListMeta list_meta{std::to_string(result->rv), "", std::nullopt};
  std::string meta = "{\"resourceVersion\":\"" + std::to_string(result->rv) + "\"";
  if (more) {
    Json token{{"v", "meta.k8s.io/v1"}, {"rv", result->rv}, {"start", last_key + std::string(1, '\0')}};
    list_meta.continue_token = Base64RawUrl(token.dump());
    meta += ",\"continue\":\"" + list_meta.continue_token + "\"";
    if (sel.empty()) {
      meta += ",\"remainingItemCount\":" + std::to_string(remaining);
      list_meta.remaining_item_count = remaining;
    }
  }
  meta += "}";
  if (ctx.table) {
    // The list is made first: its errors come before includeObject's.
    const TableOptions options = TableOptionsFor(ctx.req, ctx.table_version);
    ctx.w.Send(200, JsonHeaders(ctx.warnings), ConvertToTable(t, page, /*is_list=*/true, list_meta, options));
    return;
  }
  std::string body = "{\"kind\":\"" + t.kind + "List\",\"apiVersion\":\"" + t.ApiVersion() +
                     "\",\"metadata\":" + meta + ",\"items\":[" + items + "]}";
  ctx.w.Send(200, JsonHeaders(ctx.warnings), body);
}

// ---------------------------------------------------------------------------
// WATCH (spec §2)
// ---------------------------------------------------------------------------

void Cluster::ServeWatch(Context& ctx) {
  const ResourceType& t = *ctx.type;
  const Selectors sel = ParseSelectors(ctx.req, t);
  const std::string rv_text = ctx.QueryStr("resourceVersion");
  const std::string match = ctx.QueryStr("resourceVersionMatch");
  const bool bookmarks = ctx.QueryBool("allowWatchBookmarks");
  const bool has_initial = ctx.HasQuery("sendInitialEvents");
  const bool initial = has_initial && ctx.QueryBool("sendInitialEvents");
  bool watch_list, expired_gone;
  {
    std::lock_guard lock(mu_);
    watch_list = watch_list_;
    expired_gone = expired_reason_ == "Gone";
  }
  // ListOptions validation for watches (spec §2.5 [VAL]).
  if (has_initial) {
    if (!watch_list) {
      InvalidOptions("ListOptions", "sendInitialEvents",
                     "Forbidden: sendInitialEvents is forbidden for watch unless the WatchList feature gate is "
                     "enabled");
    }
    if (match != "NotOlderThan") {
      InvalidOptions("ListOptions", "resourceVersionMatch",
                     "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan");
    }
    // Not refusing sendInitialEvents without allowWatchBookmarks is upstream's
    // choice (backward compatibility); such a watch gets no end bookmark.
  } else if (!match.empty()) {
    InvalidOptions("ListOptions", "resourceVersionMatch",
                   "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided");
  }
  std::optional<std::uint64_t> rv;
  if (!rv_text.empty()) {
    rv = ParseRv(rv_text);
    if (!rv) BadRequest("invalid resource version: strconv.ParseUint: parsing \"" + rv_text + "\": invalid syntax");
  }
  std::chrono::milliseconds timeout;
  if (ctx.HasQuery("timeoutSeconds") && ctx.QueryStr("timeoutSeconds") != "0") {
    auto s = ParseInt(ctx.QueryStr("timeoutSeconds"));
    if (!s || *s < 0) BadRequest("timeoutSeconds: invalid value \"" + ctx.QueryStr("timeoutSeconds") + "\"");
    timeout = std::chrono::seconds(*s);
  } else {
    static thread_local std::mt19937_64 rng(std::random_device{}());
    const auto min = std::chrono::duration_cast<std::chrono::milliseconds>(options_.min_request_timeout);
    timeout = min + std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(0, min.count())(rng));
  }
  // A watch-list of an RV the store has not reached: 504 after the wait.
  if (initial && rv && *rv > store_.CurrentRv() &&
      !store_.WaitForRv(*rv, Clock::now() + options_.too_large_rv_wait)) {
    Fail(504, "Timeout",
         "Timeout: Too large resource version: " + std::to_string(*rv) + ", current: " +
             std::to_string(store_.CurrentRv()),
         Details("", "", "", {{"ResourceVersionTooLarge", "Too large resource version", ""}}, 1));
  }

  // A Table watch: every event's object becomes a one-row Table, the first
  // with the column definitions and the rest without (the server's watch
  // encoder turns headers off after the first object). ERROR Statuses stay.
  std::optional<TableOptions> table;
  if (ctx.table) table = TableOptionsFor(ctx.req, ctx.table_version);
  auto table_text = [&](const Json& object) {
    table->now = std::chrono::system_clock::now();
    std::string text = ConvertToTable(
        t, {&object}, /*is_list=*/false,
        TableListMeta{StrField(Field(object, "metadata"), "resourceVersion"), "", std::nullopt}, *table);
    table->no_headers = true;
    return text;
  };
  auto event = [&](std::string& into, const char* type, const StoredObject& o) {
    if (table) {
      AppendEvent(into, type, table_text(o.json));
    } else {
      AppendEvent(into, type, o.text);
    }
  };
  auto event_json = [&](std::string& into, const char* type, const Json& object) {
    AppendEvent(into, type, table ? table_text(object) : object.dump());
  };

  const auto deadline = Clock::now() + timeout;
  const std::uint64_t epoch = drop_epoch_.load();
  ResponseWriter& w = ctx.w;
  ++open_watches_;
  struct Closer {
    std::atomic<int>& n;
    ~Closer() { --n; }
  } closer{open_watches_};

  if (!w.StartChunked(200, JsonHeaders(ctx.warnings))) return;

  std::uint64_t pos;
  std::string out;
  // Initial ADDEDs: with sendInitialEvents=true (then the annotated
  // bookmark), or, when the parameter is absent, for RV unset or "0" (spec
  // §2.1). sendInitialEvents=false starts at the current state without
  // replaying it.
  const bool synthetic = initial || (!has_initial && (!rv || *rv == 0));
  if (synthetic) {
    auto state = store_.List(t.StoreKey(), std::nullopt);
    pos = state->rv;
    for (const ObjectPtr& o : state->objects) {
      if (!Selected(sel, *o, ctx.ns)) continue;
      event(out, "ADDED", *o);
      // Written as it fills, the way the real server's encoder writes into
      // its buffered response: one chunk per ~64 KiB, not one per stream.
      if (out.size() >= kWatchFlushBytes) {
        if (!w.WriteChunk(out)) return;
        out.clear();
      }
    }
    if (initial && bookmarks) event_json(out, "BOOKMARK", BookmarkObject(t, pos, /*initial_events_end=*/true));
  } else if (!rv || *rv == 0) {
    pos = store_.CurrentRv();
  } else {
    pos = *rv;
  }
  if (!out.empty() && !w.WriteChunk(out)) return;

  auto next_bookmark = Clock::now() + options_.bookmark_interval;
  const auto final_bookmark = deadline - std::chrono::seconds(2);
  bool final_sent = false;
  auto dropped = [&] { return drop_epoch_.load() != epoch || shutdown_.load(); };
  auto end_dropped = [&] {
    if (shutdown_.load() || drop_reset_.load()) {
      w.Reset();
    } else {
      w.EndChunked();
    }
  };
  for (;;) {
    if (dropped()) return end_dropped();
    if (stall_.load()) {
      // A silently dead server: nothing more on this connection.
      while (stall_.load() && !dropped() && !w.PeerGone()) std::this_thread::sleep_for(std::chrono::milliseconds(20));
      if (w.PeerGone()) return;
      continue;
    }
    const auto now = Clock::now();
    if (now >= deadline) {
      w.EndChunked();  // the deadline: a clean end, no final event (spec §2.4)
      return;
    }
    auto wake_at = deadline;
    if (bookmarks) wake_at = std::min(wake_at, final_sent || final_bookmark <= now ? next_bookmark
                                                                                   : std::min(next_bookmark, final_bookmark));
    auto batch = store_.WaitEvents(t.StoreKey(), pos, wake_at, std::chrono::milliseconds(200),
                                   [&] { return dropped() || stall_.load() || w.PeerGone(); });
    if (w.PeerGone()) return;
    if (batch.expired) {
      const std::string reason = expired_gone ? "Gone" : "Expired";
      w.WriteChunk(ErrorLine(StatusJson(410, reason,
                                        "too old resource version: " + std::to_string(pos) + " (" +
                                            std::to_string(batch.compacted_rv) + ")")));
      w.EndChunked();
      return;
    }
    out.clear();
    for (const StoreEvent& e : batch.events) {
      pos = e.rv;
      const bool was = e.previous && Selected(sel, *e.previous, ctx.ns);
      const bool is = e.type != EventType::kDeleted && Selected(sel, *e.object, ctx.ns);
      if (e.type == EventType::kDeleted) {
        if (Selected(sel, *e.object, ctx.ns)) event(out, "DELETED", *e.object);
      } else if (is && was) {
        event(out, "MODIFIED", *e.object);
      } else if (is) {
        event(out, "ADDED", *e.object);
      } else if (was) {
        event_json(out, "DELETED", WithRv(*e.previous, e.rv));
      }
      if (out.size() >= kWatchFlushBytes) {
        if (!w.WriteChunk(out)) return;
        out.clear();
      }
    }
    if (!out.empty() && !w.WriteChunk(out)) return;
    // Every event of this resource up to current_rv was in the batch: the
    // watch is at current_rv, so trimming history behind it (other
    // resources' writes) never expires a watch that keeps up; only the
    // compact fault, which moves the compacted RV past it, does.
    pos = std::max(pos, batch.current_rv);
    if (bookmarks) {
      const auto t_now = Clock::now();
      const bool final_due = !final_sent && t_now >= final_bookmark;
      if (t_now >= next_bookmark || final_due) {
        std::string line;
        event_json(line, "BOOKMARK", BookmarkObject(t, pos, false));
        if (!w.WriteChunk(line)) return;
        next_bookmark = t_now + options_.bookmark_interval;
        if (final_due) final_sent = true;
      }
    }
  }
}

// ---------------------------------------------------------------------------
// GET, CREATE, UPDATE, PATCH, DELETE (spec §5)
// ---------------------------------------------------------------------------

namespace {

// The value of a patch-engine result, or the Status it failed with.
// Throws the Status for a patch-engine error.
[[noreturn]] void Raise(const PatchError& error) {
  std::vector<Cause> causes;
  for (const auto& c : error.causes) causes.push_back({c.reason, c.message, c.field});
  Json details = Details("", error.details_group, error.details_kind, causes);
  throw StatusError{error.code, StatusJson(error.code, error.reason, error.message, details.empty() ? Json() : details),
                    {}};
}

// The value of a patch-engine result, or the Status it failed with.
template <typename Result>
Json Take(Result&& result) {
  if (auto* error = std::get_if<PatchError>(&result)) Raise(*error);
  return std::get<Json>(std::forward<Result>(result));
}

const std::string& FieldManagerParam(const Request& req) {
  static const std::string kNone;
  const std::string* m = req.Query("fieldManager");
  return m != nullptr ? *m : kNone;
}

// The fieldManager and force parameters, checked as the server does (the
// patch engine's ValidatePatchOptions serves every write).
void CheckWriteOptions(const Request& req, bool apply, bool force_set) {
  if (auto error = ValidatePatchOptions(FieldManagerParam(req), apply, force_set)) Raise(*error);
}

bool DryRun(const Request& req) {
  bool dry = false;
  for (const auto& [k, v] : req.query) {
    if (k != "dryRun") continue;
    if (v != "All") {
      Fail(422, "Invalid", "dryRun: Unsupported value: " + Json(v).dump() + ": supported values: \"All\"");
    }
    dry = true;
  }
  return dry;
}

// fieldValidation: "", Ignore, Warn (the default), Strict.
std::string FieldValidation(const Request& req) {
  const std::string* v = req.Query("fieldValidation");
  if (v == nullptr || v->empty()) return "Warn";
  if (*v != "Ignore" && *v != "Warn" && *v != "Strict") {
    BadRequest("fieldValidation: Unsupported value: " + Json(*v).dump() +
               ": supported values: \"Ignore\", \"Warn\", \"Strict\"");
  }
  return *v;
}

Json ParseBody(const Request& req, const ResourceType& t) {
  std::string type = req.Header("Content-Type");
  if (auto semi = type.find(';'); semi != std::string::npos) type.resize(semi);
  while (!type.empty() && type.back() == ' ') type.pop_back();
  if (type.empty() || type == "application/json") {
    Json j = Json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded()) {
      BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind +
                 ": the request body is not valid JSON");
    }
    return j;
  }
  if (type == "application/yaml") {
    return Take(YamlToJson(req.body));
  }
  Fail(415, "UnsupportedMediaType",
       "the body of the request was in an unknown format - accepted media types include: application/json, "
       "application/yaml, application/vnd.kubernetes.protobuf",
       Json::object());
}

// Missing type fields default to the endpoint's, as the server's decoder
// does; present ones must agree with it (400).
void DefaultTypeMeta(const ResourceType& t, Json& object) {
  if (StrField(object, "apiVersion").empty()) object["apiVersion"] = t.ApiVersion();
  if (StrField(object, "kind").empty()) object["kind"] = t.kind;
  const std::string api_version = StrField(object, "apiVersion");
  const std::string kind = StrField(object, "kind");
  if (api_version != t.ApiVersion()) {
    BadRequest("the API version in the data (" + api_version + ") does not match the expected API version (" +
               t.ApiVersion() + ")");
  }
  if (kind != t.kind) {
    BadRequest("the kind in the data (" + kind + ") does not match the expected kind (" + t.kind + ")");
  }
}

std::string RandomSuffix() {
  static const char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  static thread_local std::mt19937 rng(std::random_device{}());
  std::string s;
  for (int i = 0; i < 5; ++i) s += kAlphabet[rng() % (sizeof(kAlphabet) - 1)];
  return s;
}

// Everything but metadata and status: what bumps metadata.generation.
Json SpecPart(const Json& o) {
  Json s = Json::object();
  for (auto it = o.begin(); it != o.end(); ++it) {
    if (it.key() != "metadata" && it.key() != "status" && it.key() != "kind" && it.key() != "apiVersion") {
      s[it.key()] = it.value();
    }
  }
  return s;
}

// The object without what the server stamps on every write, to spot no-op updates.
Json Comparable(Json o) {
  if (o.contains("metadata") && o["metadata"].is_object()) {
    o["metadata"].erase("resourceVersion");
    o["metadata"].erase("managedFields");
  }
  return o;
}

Json SuccessStatus(const ResourceType& t, const std::string& name, const std::string& uid) {
  Json d = Json::object();
  d["name"] = name;
  if (!t.group.empty()) d["group"] = t.group;
  d["kind"] = t.resource;
  if (!uid.empty()) d["uid"] = uid;
  Json s = Json::object();
  s["kind"] = "Status";
  s["apiVersion"] = "v1";
  s["metadata"] = Json::object();
  s["status"] = "Success";
  s["details"] = std::move(d);
  return s;
}

}  // namespace

void Cluster::ServeGet(Context& ctx) {
  const ResourceType& t = *ctx.type;
  ObjectPtr o = store_.Get(t.StoreKey(), ctx.ns, ctx.name);
  if (!o) NotFound(t, ctx.name);
  if (ctx.table) {
    const TableOptions options = TableOptionsFor(ctx.req, ctx.table_version);
    ctx.w.Send(200, JsonHeaders(ctx.warnings),
               ConvertToTable(t, {&o->json}, /*is_list=*/false, TableListMeta{std::to_string(o->rv), "", std::nullopt},
                              options));
    return;
  }
  ctx.w.Send(200, JsonHeaders(ctx.warnings), o->text);
}

void Cluster::ServeCreate(Context& ctx) {
  const ResourceType& t = *ctx.type;
  Json body = ParseBody(ctx.req, t);
  CheckWriteOptions(ctx.req, /*apply=*/false, /*force_set=*/false);
  if (!body.is_object()) BadRequest("the body of the request is not a JSON object");
  Json& meta = body["metadata"];
  if (meta.is_null()) meta = Json::object();
  std::string name = StrField(meta, "name");
  if (name.empty()) {
    const std::string gen = StrField(meta, "generateName");
    if (gen.empty()) {
      Invalid(t.group, t.kind, "", {FieldCause("metadata.name", "Required value: name or generateName is required")});
    }
    name = gen + RandomSuffix();
    meta["name"] = name;
  }
  ctx.name = name;
  Write(ctx, std::move(body), WriteMode::kCreate, 201);
}

void Cluster::ServeUpdate(Context& ctx) {
  const ResourceType& t = *ctx.type;
  Json body = ParseBody(ctx.req, t);
  CheckWriteOptions(ctx.req, /*apply=*/false, /*force_set=*/false);
  if (!body.is_object()) BadRequest("the body of the request is not a JSON object");
  Write(ctx, std::move(body), WriteMode::kUpdate, 200);
}

void Cluster::LogAuthorization(const Attributes& a, bool allowed) {
  Json line = {{"user", a.user.name}, {"verb", a.verb}, {"allowed", allowed}};
  if (a.resource_request) {
    line["group"] = a.group;
    line["resource"] = a.resource;
    if (!a.subresource.empty()) line["subresource"] = a.subresource;
    if (!a.ns.empty()) line["namespace"] = a.ns;
    if (!a.name.empty()) line["name"] = a.name;
  } else {
    line["path"] = a.path;
  }
  const std::string text = line.dump() + "\n";
  std::lock_guard lock(authorization_log_mu_);
  if (FILE* f = std::fopen(options_.authorization_log.c_str(), "a")) {
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
  }
}

void Cluster::ServePatch(Context& ctx) {
  const ResourceType& t = *ctx.type;
  std::string type = ctx.req.Header("Content-Type");
  if (auto semi = type.find(';'); semi != std::string::npos) type.resize(semi);
  const bool apply = type == "application/apply-patch+yaml";
  const bool strategic = type == "application/strategic-merge-patch+json";
  if (!apply && type != "application/merge-patch+json" && type != "application/json-patch+json" &&
      !(strategic && !t.custom && SupportsStrategicMergePatch(t.kind))) {
    std::string accepted = "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml";
    if (!t.custom) accepted += ", application/strategic-merge-patch+json";
    Fail(415, "UnsupportedMediaType",
         "the body of the request was in an unknown format - accepted media types include: " + accepted,
         Json::object());
  }
  CheckWriteOptions(ctx.req, apply, ctx.HasQuery("force"));
  const bool force = ctx.HasQuery("force") && ctx.QueryBool("force");
  ObjectPtr current = store_.Get(t.StoreKey(), ctx.ns, ctx.name);
  if (apply) {
    const std::string& manager = FieldManagerParam(ctx.req);
    Json config = Take(YamlToJson(ctx.req.body));
    if (!config.is_object()) BadRequest("error decoding YAML: the applied configuration is not an object");
    if (StrField(config, "apiVersion") != t.ApiVersion() || StrField(config, "kind") != t.kind) {
      BadRequest("the API version in the data (" + StrField(config, "apiVersion") +
                 ") does not match the expected API version (" + t.ApiVersion() + ")");
    }
    const std::string cname = StrField(Field(config, "metadata"), "name");
    if (cname != ctx.name) {
      BadRequest("the name of the object (" + cname + ") does not match the name on the URL (" + ctx.name + ")");
    }
    if (!current && !ctx.sub.empty()) NotFound(t, ctx.name);
    ApplyRequest request{current ? &current->json : nullptr, config, manager, force, t.ApiVersion(), t.kind,
                         NowRfc3339(), ctx.sub};
    Json result = Take(ServerSideApply(request));
    // Apply's optimistic lock: the RV the result was computed from.
    if (current) result["metadata"]["resourceVersion"] = std::to_string(current->rv);
    Write(ctx, std::move(result), current ? WriteMode::kApplyUpdate : WriteMode::kApplyCreate,
          current ? 200 : 201, current ? current->rv : 0);
    return;
  }
  if (!current) NotFound(t, ctx.name);
  Json patch = Json::parse(ctx.req.body, nullptr, /*allow_exceptions=*/false);
  if (patch.is_discarded()) BadRequest("error decoding patch: invalid JSON");
  Json result;
  if (type == "application/json-patch+json") {
    result = Take(JsonPatch(current->json, patch));
  } else if (strategic) {
    result = Take(StrategicMergePatch(current->json, patch, t.kind));
  } else {
    result = Take(MergePatch(current->json, patch));
  }
  Write(ctx, std::move(result), WriteMode::kPatch, 200, current->rv);
}

void Cluster::Write(Context& ctx, Json object, WriteMode mode, int success_code, std::uint64_t based_on) {
  const ResourceType& t = *ctx.type;
  const bool create = mode == WriteMode::kCreate || mode == WriteMode::kApplyCreate;
  const bool apply = mode == WriteMode::kApplyCreate || mode == WriteMode::kApplyUpdate;
  const bool dry = DryRun(ctx.req);
  const std::string validation = FieldValidation(ctx.req);
  CheckDecodable(t, object);
  if (!object.contains("metadata") || !object["metadata"].is_object()) object["metadata"] = Json::object();

  // Type and identity must agree with the URL.
  DefaultTypeMeta(t, object);
  Json& meta = object["metadata"];
  const std::string name = StrField(meta, "name");
  if (!create && name != ctx.name) {
    BadRequest("the name of the object (" + name + ") does not match the name on the URL (" + ctx.name + ")");
  }
  if (t.namespaced) {
    const std::string body_ns = StrField(meta, "namespace");
    if (!body_ns.empty() && body_ns != ctx.ns) {
      BadRequest("the namespace of the provided object does not match the namespace sent on the request");
    }
    meta["namespace"] = ctx.ns;
  } else {
    meta.erase("namespace");
  }
  if (mode == WriteMode::kCreate && meta.contains("resourceVersion") && StrField(meta, "resourceVersion") != "") {
    BadRequest("resourceVersion should not be set on objects to be created");
  }
  const NameRule rule = t.kind == "Namespace" ? NameRule::kLabel
                        : t.kind == "Service" ? NameRule::kDns1035Label
                                              : NameRule::kSubdomain;
  if (auto p = NameProblem(name, rule); !p.empty()) {
    Invalid(t.group, t.kind, name, {FieldCause("metadata.name", p)});
  }

  // Custom resources: structural pruning, strict field validation, schema.
  if (t.custom && t.schema.is_object()) {
    std::vector<std::string> unknown;
    PruneBySchema(object, t.schema, &unknown);
    DefaultBySchema(object, t.schema);
    if (!unknown.empty() && validation == "Strict") {
      std::string msg = "strict decoding error: ";
      for (std::size_t i = 0; i < unknown.size(); ++i) {
        msg += (i ? ", " : "") + std::string("unknown field \"") + unknown[i].substr(1) + "\"";
      }
      BadRequest(msg);
    }
    if (validation == "Warn") {
      for (const auto& u : unknown) ctx.warnings.emplace_back("Warning", "299 - \"unknown field \\\"" + u.substr(1) + "\\\"\"");
    }
    std::vector<Cause> causes;
    for (auto& [field, message] : ValidateBySchema(object, t.schema)) causes.push_back(FieldCause(field, message));
    if (!causes.empty()) Invalid(t.group, t.kind, name, causes);
  }
  if (t.kind == "CustomResourceDefinition") {
    if (auto problem = ValidateCrd(object); !problem.empty()) {
      const auto colon = problem.find(": ");
      Invalid(t.group, t.kind, name, {FieldCause(problem.substr(0, colon), problem.substr(colon + 2))});
    }
  }
  if (!t.custom) {
    DefaultBuiltin(t, object);
    auto causes = ValidateBuiltin(t, object);
    if (!causes.empty()) Invalid(t.group, t.kind, name, causes);
  }

  // The namespace must exist (and not be terminating) for namespaced objects.
  if (t.namespaced && create && !store_.Get("/namespaces", "", ctx.ns)) NamespaceNotFound(ctx.ns);

  const std::string manager = ResolveFieldManager(FieldManagerParam(ctx.req), ctx.req.Header("User-Agent"));
  const std::string now = NowRfc3339();
  // Registries that refuse unconditional updates (AllowUnconditionalUpdate
  // false): Leases, custom resources, CRDs. Leases also create on update.
  const bool requires_rv = t.kind == "Lease" || t.custom || t.kind == "CustomResourceDefinition";
  const bool create_on_update = mode == WriteMode::kUpdate && t.kind == "Lease";
  std::optional<StatusError> error;
  ObjectPtr unchanged;
  bool deleted = false;
  bool created = create;
  auto mutate = [&](const ObjectPtr& current) -> Mutation {
    if (create && current && mode == WriteMode::kCreate) {
      error = StatusError{409,
                          StatusJson(409, "AlreadyExists", t.GroupResource() + " \"" + name + "\" already exists",
                                     Details(name, t.group, t.resource)),
                          {}};
      return Mutation::None();
    }
    if (!create && !current && !create_on_update) {
      error = NotFoundError(t, name);
      return Mutation::None();
    }
    if (!current) created = true;
    if (current && based_on != 0 && current->rv != based_on) {
      // The object changed between the read the patch was computed from and now.
      error = ConflictError(t, name);
      return Mutation::None();
    }
    Json next = object;
    // Looked up each time: inserting top-level keys into `next` moves its members.
    auto m = [&]() -> Json& { return next["metadata"]; };
    if (current) {
      const std::string want = StrField(m(), "resourceVersion");
      const std::string uid = StrField(m(), "uid");
      if (!uid.empty() && uid != StrField(current->json["metadata"], "uid")) {
        // A uid in the body is a precondition: this very object, not one
        // deleted and re-created under the same name.
        error = ConflictError(t, name,
                              "Precondition failed: UID in precondition: " + uid + ", UID in object meta: " +
                                  StrField(current->json["metadata"], "uid"));
        return Mutation::None();
      }
      if (want.empty() && mode == WriteMode::kUpdate && requires_rv) {
        error = InvalidError(t.group, t.kind, name,
                             {FieldCause("metadata.resourceVersion",
                                         "Invalid value: 0x0: must be specified for an update")});
        return Mutation::None();
      }
      if (!want.empty() && want != std::to_string(current->rv)) {
        error = ConflictError(t, name);
        return Mutation::None();
      }
      const Json& old = current->json;
      const Json& old_meta = old["metadata"];
      if ((t.kind == "RoleBinding" || t.kind == "ClusterRoleBinding") && Field(next, "roleRef") != Field(old, "roleRef")) {
        // ValidateRoleBindingUpdate; the value is the internal RoleRef.
        const Json& ref = Field(next, "roleRef");
        error = InvalidError(t.group, t.kind, name,
                             {FieldCause("roleRef", "Invalid value: rbac.RoleRef{APIGroup:" +
                                                        Json(StrField(ref, "apiGroup")).dump() + ", Kind:" +
                                                        Json(StrField(ref, "kind")).dump() + ", Name:" +
                                                        Json(StrField(ref, "name")).dump() + "}: cannot change roleRef")});
        return Mutation::None();
      }
      // Fields only the server sets survive every write.
      for (const char* k : {"uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds",
                            "generation"}) {
        if (old_meta.contains(k)) {
          m()[k] = old_meta[k];
        } else {
          m().erase(k);
        }
      }
      if (ctx.sub == "status") {
        // /status changes status only (and nothing else the client sent).
        Json status = next.contains("status") ? next["status"] : Json();
        Json managed = m().contains("managedFields") ? m()["managedFields"] : Json();
        next = old;
        if (status.is_null()) {
          next.erase("status");
        } else {
          next["status"] = status;
        }
        if (apply && !managed.is_null()) next["metadata"]["managedFields"] = managed;
      } else if (t.status_subresource) {
        if (old.contains("status")) {
          next["status"] = old["status"];
        } else {
          next.erase("status");
        }
      }
      if (SpecPart(next) != SpecPart(old) && old_meta.contains("generation")) {
        next["metadata"]["generation"] = old_meta["generation"].get<std::int64_t>() + 1;
      }
    } else {
      m().erase("resourceVersion");
      m()["uid"] = NewUid();
      m()["creationTimestamp"] = now;
      m().erase("deletionTimestamp");
      m().erase("deletionGracePeriodSeconds");
      m().erase("generation");
      // Only registries that track generation set it.
      static const std::set<std::string> kNoGeneration = {
          "Namespace", "ConfigMap", "Secret", "Event", "Lease", "Node", "Pod", "Service", "Endpoints",
          "ServiceAccount", "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"};
      if (t.custom || !kNoGeneration.contains(t.kind)) m()["generation"] = 1;
      if (t.status_subresource) next.erase("status");
      if (t.kind == "Namespace") {
        if (!next.contains("spec")) next["spec"] = Json{{"finalizers", Json::array({"kubernetes"})}};
        next["status"] = Json{{"phase", "Active"}};
        if (!m().contains("labels")) m()["labels"] = Json::object();
        m()["labels"]["kubernetes.io/metadata.name"] = name;
      }
    }
    if (t.kind == "CustomResourceDefinition") {
      // The apiextensions controller accepts the names and establishes the
      // CRD at once here.
      const Json& spec = next["spec"];
      std::string storage;
      for (const auto& v : spec["versions"]) {
        if (v.value("storage", false)) storage = v["name"];
      }
      Json accepted = spec["names"];
      if (!accepted.contains("singular")) {
        std::string s = accepted["kind"];
        std::transform(s.begin(), s.end(), s.begin(), ::tolower);
        accepted["singular"] = s;
      }
      if (!accepted.contains("listKind")) accepted["listKind"] = accepted["kind"].get<std::string>() + "List";
      auto cond = [&](const char* type, const char* reason, const char* message) {
        return Json{{"type", type}, {"status", "True"}, {"lastTransitionTime", now}, {"reason", reason},
                    {"message", message}};
      };
      next["status"] = Json{{"conditions", Json::array({cond("NamesAccepted", "NoConflicts", "no conflicts found"),
                                                        cond("Established", "InitialNamesAccepted",
                                                             "the initial names have been accepted")})},
                            {"acceptedNames", accepted},
                            {"storedVersions", Json::array({storage})}};
    }
    if (!apply) {
      // TrackUpdate returns the whole object with metadata.managedFields set
      // (or removed when the object is not tracked).
      next = TrackUpdate(current ? &current->json : nullptr, next, manager, t.ApiVersion(), now, ctx.sub);
    }
    next = Canonical(next);
    if (current && Comparable(next) == Comparable(current->json)) {
      unchanged = current;  // a no-op write keeps the RV (no event)
      return Mutation::None();
    }
    // Finalizers: a terminating object goes once the last one is removed.
    if (current && next["metadata"].contains("deletionTimestamp")) {
      const Json& f = next["metadata"].contains("finalizers") ? next["metadata"]["finalizers"] : Json();
      if (!f.is_array() || f.empty()) {
        deleted = true;
        return dry ? Mutation::None() : Mutation::Delete();
      }
    }
    if (dry) {
      next["metadata"]["resourceVersion"] = current ? std::to_string(current->rv) : "";
      unchanged = std::make_shared<StoredObject>(StoredObject{next, next.dump(), ctx.ns, name, 0, 0});
      return Mutation::None();
    }
    return Mutation::Put(std::move(next));
  };
  ObjectPtr stored = store_.Mutate(t.StoreKey(), ctx.ns, name, mutate);
  if (error) {
    error->headers = ctx.warnings;
    throw *error;
  }
  if (unchanged) {
    ctx.w.Send(create ? success_code : 200, JsonHeaders(ctx.warnings), unchanged->text);
    return;
  }
  if (stored) AfterWrite(t, stored, deleted);
  const int code = deleted ? 200 : (created && !create ? 201 : success_code);
  ctx.w.Send(code, JsonHeaders(ctx.warnings), stored ? stored->text : "{}");
}

void Cluster::AfterWrite(const ResourceType& t, const ObjectPtr& stored, bool deleted) {
  if (t.kind != "CustomResourceDefinition") return;
  const Json& spec = stored->json["spec"];
  std::lock_guard lock(mu_);
  if (deleted) {
    registry_ = registry_->WithoutCrd(spec["group"], spec["names"]["plural"]);
    return;
  }
  std::string error;
  if (auto next = registry_->WithCrd(stored->json, &error)) registry_ = std::move(next);
}

void Cluster::ServeDelete(Context& ctx) {
  const ResourceType& t = *ctx.type;
  Json options = Json::object();
  if (!ctx.req.body.empty()) {
    options = Json::parse(ctx.req.body, nullptr, /*allow_exceptions=*/false);
    if (options.is_discarded() || !options.is_object()) BadRequest("error decoding DeleteOptions: invalid JSON");
  }
  const std::string policy = options.value("propagationPolicy", std::string());
  if (!policy.empty() && policy != "Orphan" && policy != "Background" && policy != "Foreground") {
    Invalid("meta.k8s.io", "DeleteOptions", "",
            {FieldCause("propagationPolicy", "Unsupported value: " + Json(policy).dump() +
                                                 ": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"")});
  }
  if (ctx.QueryStr("propagationPolicy") != "" && ctx.QueryStr("propagationPolicy") != "Orphan" &&
      ctx.QueryStr("propagationPolicy") != "Background" && ctx.QueryStr("propagationPolicy") != "Foreground") {
    Invalid("meta.k8s.io", "DeleteOptions", "",
            {FieldCause("propagationPolicy", "Unsupported value: " + Json(ctx.QueryStr("propagationPolicy")).dump() +
                                                 ": supported values: \"Foreground\", \"Background\", \"Orphan\", \"nil\"")});
  }
  const Json& pre = Field(options, "preconditions");
  const bool dry = DryRun(ctx.req) || options.contains("dryRun");
  std::optional<StatusError> error;
  bool terminating = false;
  ObjectPtr result = store_.Mutate(t.StoreKey(), ctx.ns, ctx.name, [&](const ObjectPtr& current) -> Mutation {
    if (!current) {
      error = NotFoundError(t, ctx.name);
      return Mutation::None();
    }
    const Json& meta = current->json["metadata"];
    if (StrField(pre, "uid") != "" && StrField(pre, "uid") != StrField(meta, "uid")) {
      error = ConflictError(t, ctx.name,
                            "Precondition failed: UID in precondition: " + StrField(pre, "uid") +
                                ", UID in object meta: " + StrField(meta, "uid"));
      return Mutation::None();
    }
    if (StrField(pre, "resourceVersion") != "" && StrField(pre, "resourceVersion") != std::to_string(current->rv)) {
      error = ConflictError(t, ctx.name,
                            "Precondition failed: ResourceVersion in precondition: " +
                                StrField(pre, "resourceVersion") + ", ResourceVersion in object meta: " +
                                std::to_string(current->rv));
      return Mutation::None();
    }
    const Json& finalizers = Field(meta, "finalizers");
    if (finalizers.is_array() && !finalizers.empty()) {
      // Finalizers keep it: it only becomes terminating.
      terminating = true;
      if (meta.contains("deletionTimestamp") || dry) return Mutation::None();
      Json next = current->json;
      next["metadata"]["deletionTimestamp"] = NowRfc3339();
      next["metadata"]["deletionGracePeriodSeconds"] = 0;
      return Mutation::Put(Canonical(next));
    }
    return dry ? Mutation::None() : Mutation::Delete();
  });
  if (error) throw *error;
  if (terminating) {
    ObjectPtr now = result ? result : store_.Get(t.StoreKey(), ctx.ns, ctx.name);
    ctx.w.Send(200, JsonHeaders(), now ? now->text : "{}");
    return;
  }
  if (!dry && result) Cascade(*ctx.registry, t, result);
  // Registries with ReturnDeletedObject answer with the object itself
  // (pods, namespaces); the others with a Status.
  if (result && (t.kind == "Pod" || t.kind == "Namespace")) {
    ctx.w.Send(200, JsonHeaders(), result->text);
    return;
  }
  const std::string uid = result ? StrField(result->json["metadata"], "uid") : "";
  SendJson(ctx.w, 200, SuccessStatus(t, ctx.name, uid));
}

void Cluster::Cascade(const Registry& registry, const ResourceType& t, const ObjectPtr& deleted) {
  // Emulated controllers: a namespace takes its contents with it; a CRD
  // takes its custom resources and its endpoints.
  if (t.kind == "Namespace") {
    for (const auto& other : registry.types()) {
      if (other.namespaced) store_.DeleteAll(other.StoreKey(), deleted->name);
    }
  } else if (t.kind == "CustomResourceDefinition") {
    const Json& spec = deleted->json["spec"];
    store_.DeleteAll(spec["group"].get<std::string>() + "/" + spec["names"]["plural"].get<std::string>(), "");
  }
  AfterWrite(t, deleted, /*deleted=*/true);
}

void Cluster::ServeDeleteCollection(Context& ctx) {
  const ResourceType& t = *ctx.type;
  const Selectors sel = ParseSelectors(ctx.req, t);
  auto state = store_.List(t.StoreKey(), std::nullopt);
  std::string items;
  std::size_t n = 0;
  const bool dry = DryRun(ctx.req);
  for (const ObjectPtr& o : state->objects) {
    if (!Selected(sel, *o, ctx.ns)) continue;
    ObjectPtr out = o;
    if (!dry) {
      bool terminating = false;
      out = store_.Mutate(t.StoreKey(), o->ns, o->name, [&](const ObjectPtr& current) -> Mutation {
        if (!current || current->rv != o->rv) return Mutation::None();
        const Json& finalizers = Field(current->json["metadata"], "finalizers");
        if (finalizers.is_array() && !finalizers.empty()) {
          // As for a single delete: finalizers keep it, terminating.
          terminating = true;
          if (current->json["metadata"].contains("deletionTimestamp")) return Mutation::None();
          Json next = current->json;
          next["metadata"]["deletionTimestamp"] = NowRfc3339();
          next["metadata"]["deletionGracePeriodSeconds"] = 0;
          return Mutation::Put(Canonical(next));
        }
        return Mutation::Delete();
      });
      if (!out) continue;
      if (!terminating) Cascade(*ctx.registry, t, out);
    }
    if (n++ > 0) items += ',';
    items += out->text;
  }
  ctx.w.Send(200, JsonHeaders(),
             "{\"kind\":\"" + t.kind + "List\",\"apiVersion\":\"" + t.ApiVersion() +
                 "\",\"metadata\":{\"resourceVersion\":\"" + std::to_string(store_.CurrentRv()) + "\"},\"items\":[" +
                 items + "]}");
}

// ---------------------------------------------------------------------------
// Reviews: TokenReview, SelfSubjectReview, SubjectAccessReview,
// SelfSubjectAccessReview (create-only, nothing stored)
// ---------------------------------------------------------------------------

namespace {

// The audience of the emulated API server: kubeadm's default
// --api-audiences (the service account issuer). The emulator's tokens are
// static tokens, valid for this audience only.
constexpr char kApiAudience[] = "https://kubernetes.default.svc.cluster.local";

// A field of the review's spec that must decode as a Go string (or be
// absent); else the decoder's 400.
std::string DecodeString(const ResourceType& t, const Json& object, const char* key, const char* go_field) {
  const Json& v = Field(object, key);
  if (v.is_null()) return "";
  if (!v.is_string()) {
    BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind +
               ": json: cannot unmarshal " + (v.is_number() ? "number" : v.is_boolean() ? "bool" : v.is_array() ? "array" : "object") +
               " into Go struct field " + go_field + " of type string");
  }
  return v.get<std::string>();
}

std::vector<std::string> DecodeStrings(const ResourceType& t, const Json& object, const char* key,
                                       const char* go_field) {
  const Json& v = Field(object, key);
  std::vector<std::string> out;
  if (v.is_null()) return out;
  bool ok = v.is_array();
  if (ok) {
    for (const auto& e : v) {
      ok = ok && e.is_string();
      if (ok) out.push_back(e.get<std::string>());
    }
  }
  if (!ok) {
    BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind +
               ": json: cannot unmarshal " + (v.is_array() ? "value" : v.is_string() ? "string" : "object") +
               " into Go struct field " + go_field + " of type []string");
  }
  return out;
}

Json UserInfoJson(const UserInfo& user) {
  Json u = Json::object();
  if (!user.name.empty()) u["username"] = user.name;
  if (!user.uid.empty()) u["uid"] = user.uid;
  if (!user.groups.empty()) u["groups"] = user.groups;
  return u;
}

// Go's %#v of a string map, keys sorted: map[string]string{"a":"b"}.
std::string GoMapLiteral(const Json& m) {
  if (!m.is_object() || m.empty()) return "map[string]string(nil)";
  std::map<std::string, std::string> sorted;
  for (auto it = m.begin(); it != m.end(); ++it) sorted[it.key()] = it.value().is_string() ? it.value().get<std::string>() : "";
  std::string out = "map[string]string{";
  bool first = true;
  for (const auto& [k, v] : sorted) {
    out += (first ? "" : ", ") + Json(k).dump() + ":" + Json(v).dump();
    first = false;
  }
  return out + "}";
}

// Go's %#v of the ObjectMeta a review was sent with (the fields a client
// may set; the rest at their zero values).
std::string GoObjectMeta(const Json& meta) {
  auto str = [&](const char* k) { return Json(StrField(meta, k)).dump(); };
  return "v1.ObjectMeta{Name:" + str("name") + ", GenerateName:" + str("generateName") + ", Namespace:" +
         str("namespace") + ", SelfLink:\"\", UID:" + str("uid") + ", ResourceVersion:" + str("resourceVersion") +
         ", Generation:0, CreationTimestamp:time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC), "
         "DeletionTimestamp:<nil>, DeletionGracePeriodSeconds:(*int64)(nil), Labels:" +
         GoMapLiteral(Field(meta, "labels")) + ", Annotations:" + GoMapLiteral(Field(meta, "annotations")) +
         ", OwnerReferences:[]v1.OwnerReference(nil), Finalizers:[]string(nil), "
         "ManagedFields:[]v1.ManagedFieldsEntry(nil)}";
}

}  // namespace

void Cluster::ServeReview(Context& ctx) {
  const ResourceType& t = *ctx.type;
  std::string content_type = ctx.req.Header("Content-Type");
  content_type = content_type.substr(0, content_type.find(';'));
  Json body;
  if (TrimSpaces(content_type) == "application/vnd.kubernetes.protobuf") {
    // kubectl's typed clients (auth can-i, auth whoami) send protobuf.
    std::string error;
    auto decoded = ReviewFromProtobuf(ctx.req.body, &error);
    if (!decoded) BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind + ": " + error);
    body = std::move(*decoded);
  } else {
    body = ParseBody(ctx.req, t);
  }
  CheckWriteOptions(ctx.req, /*apply=*/false, /*force_set=*/false);
  CheckDecodable(t, body);
  DefaultTypeMeta(t, body);
  (void)DryRun(ctx.req);  // validated; a review has no side effect to skip
  const Json& meta = Field(body, "metadata");
  const Json& spec = Field(body, "spec");
  if (!spec.is_null() && !spec.is_object()) {
    BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind +
               ": json: cannot unmarshal into Go struct field " + t.kind + ".spec of type v1." + t.kind + "Spec");
  }
  Json out_spec = Json::object();
  Json status = Json::object();
  if (t.kind == "TokenReview") {
    const std::string token = DecodeString(t, spec, "token", "TokenReviewSpec.spec.token");
    const auto audiences = DecodeStrings(t, spec, "audiences", "TokenReviewSpec.spec.audiences");
    if (!token.empty()) out_spec["token"] = token;
    if (!audiences.empty()) out_spec["audiences"] = audiences;
    if (token.empty()) BadRequest("token is required for TokenReview in authentication");
    // Static tokens are audience-agnostic: they authenticate for the API
    // server's own audience, which must be among those asked for.
    const bool audience_ok =
        audiences.empty() || std::find(audiences.begin(), audiences.end(), kApiAudience) != audiences.end();
    auto user = Authenticate(token);
    if (user && audience_ok) {
      status["authenticated"] = true;
      status["user"] = UserInfoJson(*user);
      status["audiences"] = Json::array({kApiAudience});
    } else {
      status["user"] = Json::object();
      status["error"] = "invalid bearer token";
    }
  } else if (t.kind == "SelfSubjectReview") {
    status["userInfo"] = UserInfoJson(ctx.user);
  } else {
    // SubjectAccessReview / SelfSubjectAccessReview.
    const bool self = t.kind == "SelfSubjectAccessReview";
    const std::string spec_type = t.kind + "Spec";
    const Json& ra = Field(spec, "resourceAttributes");
    const Json& nra = Field(spec, "nonResourceAttributes");
    for (const auto* a : {&ra, &nra}) {
      if (!a->is_null() && !a->is_object()) {
        BadRequest(t.kind + " in version \"" + t.version + "\" cannot be handled as a " + t.kind +
                   ": json: cannot unmarshal into Go struct field " + spec_type + ".spec." +
                   (a == &ra ? "resourceAttributes of type v1.ResourceAttributes"
                             : "nonResourceAttributes of type v1.NonResourceAttributes"));
      }
    }
    Attributes attributes;
    if (ra.is_object()) {
      Json echo = Json::object();
      const std::pair<const char*, std::string*> fields[] = {
          {"namespace", &attributes.ns},       {"verb", &attributes.verb},
          {"group", &attributes.group},        {"version", &attributes.version},
          {"resource", &attributes.resource},  {"subresource", &attributes.subresource},
          {"name", &attributes.name}};
      for (const auto& [key, into] : fields) {
        *into = DecodeString(t, ra, key, "ResourceAttributes.spec.resourceAttributes");
        if (!into->empty()) echo[key] = *into;
      }
      for (const char* key : {"fieldSelector", "labelSelector"}) {
        if (ra.contains(key) && !ra[key].is_null()) echo[key] = ra[key];
      }
      attributes.resource_request = true;
      out_spec["resourceAttributes"] = std::move(echo);
    }
    std::string nra_go;
    if (nra.is_object()) {
      attributes.path = DecodeString(t, nra, "path", "NonResourceAttributes.spec.nonResourceAttributes.path");
      const std::string verb = DecodeString(t, nra, "verb", "NonResourceAttributes.spec.nonResourceAttributes.verb");
      if (!ra.is_object()) attributes.verb = verb;
      Json echo = Json::object();
      if (!attributes.path.empty()) echo["path"] = attributes.path;
      if (!verb.empty()) echo["verb"] = verb;
      out_spec["nonResourceAttributes"] = std::move(echo);
      nra_go = "authorization.NonResourceAttributes{Path:" + Json(attributes.path).dump() +
               ", Verb:" + Json(verb).dump() + "}";
    }
    if (self) {
      attributes.user = ctx.user;
    } else {
      attributes.user.name = DecodeString(t, spec, "user", "SubjectAccessReviewSpec.spec.user");
      attributes.user.groups = DecodeStrings(t, spec, "groups", "SubjectAccessReviewSpec.spec.groups");
      attributes.user.uid = DecodeString(t, spec, "uid", "SubjectAccessReviewSpec.spec.uid");
      if (!attributes.user.name.empty()) out_spec["user"] = attributes.user.name;
      if (!attributes.user.groups.empty()) out_spec["groups"] = attributes.user.groups;
      const Json& extra = Field(spec, "extra");
      if (extra.is_object() && !extra.empty()) out_spec["extra"] = extra;
      if (!attributes.user.uid.empty()) out_spec["uid"] = attributes.user.uid;
    }
    // ValidateSubjectAccessReview / ValidateSelfSubjectAccessReview; the
    // internal object has no kind, hence ".authorization.k8s.io".
    std::vector<Cause> causes;
    if (ra.is_object() && nra.is_object()) {
      causes.push_back(FieldCause("spec.nonResourceAttributes",
                                  "Invalid value: " + nra_go + ": cannot be specified in combination with "
                                                               "resourceAttributes"));
    }
    if (!ra.is_object() && !nra.is_object()) {
      causes.push_back(FieldCause("spec.resourceAttributes",
                                  "Invalid value: \"null\": exactly one of nonResourceAttributes or "
                                  "resourceAttributes must be specified"));
    }
    if (!self && attributes.user.name.empty() && attributes.user.groups.empty()) {
      causes.push_back(FieldCause("spec.user", "Invalid value: \"\": at least one of user or group must be specified"));
    }
    bool meta_empty = true;
    if (meta.is_object()) {
      for (auto it = meta.begin(); it != meta.end(); ++it) {
        if (it.key() != "managedFields" && !it.value().is_null() &&
            !(it.value().is_string() && it.value().get<std::string>().empty()) &&
            !((it.value().is_object() || it.value().is_array()) && it.value().empty())) {
          meta_empty = false;
        }
      }
    }
    if (!meta_empty) {
      causes.push_back(FieldCause("metadata", "Invalid value: " + GoObjectMeta(meta) + ": must be empty"));
    }
    if (!causes.empty()) Invalid(t.group, "", "", causes);
    const Decision decision = Authorize(store_, attributes);
    status["allowed"] = decision.allowed;
    if (!decision.reason.empty()) status["reason"] = decision.reason;
  }

  // The object back: the type, metadata as the create handler leaves it
  // (creationTimestamp null, the field manager's entry), spec, status.
  Json object = Json::object();
  object["kind"] = t.kind;
  object["apiVersion"] = t.ApiVersion();
  Json out_meta = Json::object();
  if (meta.is_object()) {
    for (const char* k : {"name", "generateName", "namespace", "labels", "annotations"}) {
      if (meta.contains(k) && !meta[k].is_null()) out_meta[k] = meta[k];
    }
  }
  out_meta["creationTimestamp"] = nullptr;
  object["metadata"] = std::move(out_meta);
  if (t.kind != "SelfSubjectReview") object["spec"] = std::move(out_spec);
  const std::string manager = ResolveFieldManager(FieldManagerParam(ctx.req), ctx.req.Header("User-Agent"));
  object = TrackUpdate(nullptr, object, manager, t.ApiVersion(), NowRfc3339(), "");
  object["status"] = std::move(status);
  SendJson(ctx.w, 201, object, ctx.warnings);
}

// ---------------------------------------------------------------------------
// The services proxy
// ---------------------------------------------------------------------------

namespace {

// Go's path.Clean for a rooted path.
std::string CleanPath(const std::string& path) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= path.size()) {
    const auto slash = path.find('/', start);
    const std::string part = path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (part == "..") {
      if (!out.empty()) out.pop_back();
    } else if (!part.empty() && part != ".") {
      out.push_back(part);
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  std::string clean;
  for (const auto& p : out) clean += "/" + p;
  return clean.empty() ? "/" : clean;
}

}  // namespace

void Cluster::ServeServiceProxy(Context& ctx, const std::string& id) {
  const Request& req = ctx.req;
  // utilnet.SplitSchemeNamePort: name, name:port or scheme:name:port.
  std::vector<std::string> parts;
  for (std::size_t start = 0;;) {
    const auto colon = id.find(':', start);
    parts.push_back(id.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  std::string scheme, name, port;
  if (parts.size() == 1) {
    name = parts[0];
  } else if (parts.size() == 2) {
    name = parts[0];
    port = parts[1];
  } else if (parts.size() == 3) {
    scheme = parts[0];
    name = parts[1];
    port = parts[2];
  }
  if (parts.size() > 3 || name.empty() || (scheme != "" && scheme != "http" && scheme != "https")) {
    BadRequest("invalid service request \"" + id + "\"");
  }
  const ResourceType& services = *ctx.type;
  // A port number is looked up in the Service and replaced by its name.
  if (auto number = ParseInt(port)) {
    ObjectPtr svc = store_.Get(services.StoreKey(), ctx.ns, name);
    if (!svc) NotFound(services, name);
    bool found = false;
    const Json& ports = Field(Field(svc->json, "spec"), "ports");
    if (ports.is_array()) {
      for (const auto& p : ports) {
        if (Field(p, "port").is_number_integer() && Field(p, "port").get<std::int64_t>() == *number) {
          port = StrField(p, "name");
          found = true;
          break;
        }
      }
    }
    if (!found) {
      Fail(503, "ServiceUnavailable", "no service port " + std::to_string(*number) + " found for service \"" + name +
                                          "\"");
    }
  }
  const ResourceType* endpoints_type = ctx.registry->Find("", "v1", "endpoints");
  ObjectPtr endpoints = store_.Get(endpoints_type->StoreKey(), ctx.ns, name);
  if (!endpoints) NotFound(*endpoints_type, name);
  const Json& subsets = Field(endpoints->json, "subsets");
  if (!subsets.is_array() || subsets.empty()) {
    Fail(503, "ServiceUnavailable", "no endpoints available for service \"" + name + "\"");
  }
  // The first subset with the port and an address whose target pod is in
  // this namespace and has that IP (isValidAddress); the search starts at
  // a random subset and address, as the registry's does.
  static thread_local std::mt19937 rng(std::random_device{}());
  std::optional<ProxyTarget> target;
  for (std::size_t si = 0, s0 = rng() % subsets.size(); si < subsets.size() && !target; ++si) {
    const Json& ss = subsets[(s0 + si) % subsets.size()];
    const Json& addresses = Field(ss, "addresses");
    const Json& ports = Field(ss, "ports");
    if (!addresses.is_array() || addresses.empty() || !ports.is_array()) continue;
    for (const auto& p : ports) {
      if (StrField(p, "name") != port || target) continue;
      for (std::size_t ai = 0, a0 = rng() % addresses.size(); ai < addresses.size(); ++ai) {
        const Json& addr = addresses[(a0 + ai) % addresses.size()];
        const Json& ref = Field(addr, "targetRef");
        if (!ref.is_object() || StrField(ref, "namespace") != ctx.ns) continue;
        ObjectPtr pod = store_.Get("/pods", ctx.ns, StrField(ref, "name"));
        if (!pod) continue;
        const Json& ips = Field(Field(pod->json, "status"), "podIPs");
        bool match = false;
        if (ips.is_array()) {
          for (const auto& ip : ips) match = match || StrField(ip, "ip") == StrField(addr, "ip");
        }
        if (!match || !Field(p, "port").is_number_integer()) continue;
        target = ProxyTarget{scheme == "https", StrField(addr, "ip"), Field(p, "port").get<int>()};
        break;
      }
    }
  }
  if (!target) Fail(503, "ServiceUnavailable", "no endpoints available for service \"" + id + "\"");

  // The path after /proxy (getRequestOptions' subpath, then
  // JoinPreservingTrailingSlash); an empty one redirects to ".../proxy/".
  const std::string marker = "/services/" + id + "/proxy";
  const auto at = req.path.find(marker, req.path.find("/namespaces/" + ctx.ns + "/"));
  std::string sub = at == std::string::npos ? "" : req.path.substr(at + marker.size());
  const bool trailing = !req.path.empty() && req.path.back() == '/';
  std::string location = sub.find_first_not_of('/') == std::string::npos ? "" : CleanPath(sub);
  if (trailing && (location.empty() || location.back() != '/')) location += "/";
  if (location.empty()) {
    ctx.w.Send(301, {{"Location", req.path + "/" + (req.raw_query.empty() ? "" : "?" + req.raw_query)}}, "");
    return;
  }
  // X-Forwarded-Uri: the path before the location, then the location.
  std::string prepend = req.path;
  if (prepend.ends_with(location)) prepend.resize(prepend.size() - location.size());
  std::string forwarded_uri = CleanPath(prepend + "/" + EscapePath(location));
  if (location.back() == '/' && forwarded_uri.back() != '/') forwarded_uri += "/";
  const std::string uri = EscapePath(location) + (req.raw_query.empty() ? "" : "?" + req.raw_query);
  const std::string error = ForwardToBackend(*target, req, uri, forwarded_uri, ctx.w);
  if (!error.empty()) Fail(503, "ServiceUnavailable", "error trying to reach service: " + error);
}

}  // namespace kubefold::emulator
