#include "tests/emulator/table.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <ctime>
#include <functional>
#include <limits>
#include <map>
#include <set>

#include "tests/emulator/gojson.h"
#include "tests/emulator/jsonpath.h"

namespace kubefold::emulator {
namespace {

using SysClock = std::chrono::system_clock;

// ---------------------------------------------------------------------------
// Descriptions the real server puts in columnDefinitions (the API types'
// swagger docs as of v1.32).
// ---------------------------------------------------------------------------

const char kNameDescription[] =
    "Name must be unique within a namespace. Is required when creating resources, although some resources may "
    "allow a client to request the generation of an appropriate name automatically. Name is primarily intended for "
    "creation idempotence and configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names";
const char kCreationTimestampDescription[] =
    "CreationTimestamp is a timestamp representing the server time when this object was created. It is not "
    "guaranteed to be set in happens-before order across separate operations. Clients may not set this value. It "
    "is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. Read-only. Null for lists. More "
    "info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata";
const char kContainersDescription[] = "Names of each container in the template.";
const char kImagesDescription[] = "Images referenced by each container in the template.";
const char kReadyPodsDescription[] = "Number of the pod with ready state";

struct Column {
  std::string name;
  std::string type;
  std::string format;
  std::string description;
  long long priority = 0;
};

// ---------------------------------------------------------------------------
// Small readers of stored objects
// ---------------------------------------------------------------------------

const Json& At(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

std::string Str(const Json& j, const char* key) {
  const Json& v = At(j, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

// Go's int64(f) on amd64: truncation, and the "integer indefinite"
// 0x8000000000000000 when f is out of range.
long long GoInt64(double f) {
  if (!(f > -9223372036854775808.0 && f < 9223372036854775808.0)) return std::numeric_limits<long long>::min();
  return static_cast<long long>(f);
}

// An integer field as the typed object holds it (absent: `fallback`).
long long Int(const Json& j, const char* key, long long fallback = 0) {
  const Json& v = At(j, key);
  if (v.is_number_unsigned()) {
    const auto u = v.get<std::uint64_t>();
    // Beyond int64 a Go server decoded a float64.
    return u <= static_cast<std::uint64_t>(std::numeric_limits<long long>::max()) ? static_cast<long long>(u)
                                                                                  : GoInt64(static_cast<double>(u));
  }
  if (v.is_number_integer()) return v.get<long long>();
  if (v.is_number_float()) return GoInt64(v.get<double>());
  return fallback;
}

std::size_t Size(const Json& v) { return v.is_object() || v.is_array() ? v.size() : 0; }

// Cells are JSON texts: strings, integers, booleans or null.
std::string StrCell(std::string_view s) {
  std::string out;
  AppendGoString(out, s);
  return out;
}
std::string IntCell(long long i) { return std::to_string(i); }

std::optional<SysClock::time_point> TimeField(const Json& j, const char* key) {
  const Json& v = At(j, key);
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) return std::nullopt;
  return ParseRfc3339(v.get_ref<const std::string&>());
}

// translateTimestampSince: "<unknown>" for a zero time.
std::string Since(const std::optional<SysClock::time_point>& t, SysClock::time_point now) {
  if (!t) return "<unknown>";
  return HumanDuration(std::chrono::duration_cast<std::chrono::nanoseconds>(now - *t));
}

// A metav1.Time as its JSON shows it (RFC 3339, seconds, UTC); the zero
// time when absent.
std::string Rfc3339(const std::optional<SysClock::time_point>& t) {
  if (!t) return "0001-01-01T00:00:00Z";
  const std::time_t secs = SysClock::to_time_t(std::chrono::time_point_cast<std::chrono::seconds>(*t));
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string Age(const Json& o, SysClock::time_point now) { return Since(TimeField(At(o, "metadata"), "creationTimestamp"), now); }

std::string Name(const Json& o) { return Str(At(o, "metadata"), "name"); }

// layoutContainerCells: names and images joined with commas.
std::pair<std::string, std::string> ContainerCells(const Json& containers) {
  std::string names, images;
  if (!containers.is_array()) return {names, images};
  for (std::size_t i = 0; i < containers.size(); ++i) {
    if (i > 0) {
      names += ',';
      images += ',';
    }
    names += Str(containers[i], "name");
    images += Str(containers[i], "image");
  }
  return {names, images};
}

// metav1.LabelSelectorAsSelector(s).String(): requirements sorted by key,
// "k=v", "k in (a,b)", "k notin (a,b)", "k", "!k"; "<invalid>" for an
// unknown operator.
std::string SelectorString(const Json& selector) {
  if (!selector.is_object()) return "";
  std::vector<std::pair<std::string, std::string>> reqs;  // key, text
  const Json& labels = At(selector, "matchLabels");
  if (labels.is_object()) {
    for (auto it = labels.begin(); it != labels.end(); ++it) {
      reqs.emplace_back(it.key(), it.key() + "=" + (it.value().is_string() ? it.value().get<std::string>() : ""));
    }
  }
  const Json& exprs = At(selector, "matchExpressions");
  if (exprs.is_array()) {
    for (const Json& e : exprs) {
      const std::string key = Str(e, "key");
      const std::string op = Str(e, "operator");
      std::vector<std::string> values;
      if (At(e, "values").is_array()) {
        for (const Json& v : At(e, "values")) {
          if (v.is_string()) values.push_back(v);
        }
      }
      std::sort(values.begin(), values.end());
      std::string joined;
      for (std::size_t i = 0; i < values.size(); ++i) joined += (i ? "," : "") + values[i];
      if (op == "In") {
        reqs.emplace_back(key, key + " in (" + joined + ")");
      } else if (op == "NotIn") {
        reqs.emplace_back(key, key + " notin (" + joined + ")");
      } else if (op == "Exists") {
        reqs.emplace_back(key, key);
      } else if (op == "DoesNotExist") {
        reqs.emplace_back(key, "!" + key);
      } else {
        return "<invalid>";
      }
    }
  }
  std::stable_sort(reqs.begin(), reqs.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string out;
  for (std::size_t i = 0; i < reqs.size(); ++i) out += (i ? "," : "") + reqs[i].second;
  return out;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::string TrimSpace(const std::string& s) {
  const char* ws = " \t\n\v\f\r";
  const auto b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(ws) - b + 1);
}

// ---------------------------------------------------------------------------
// Printers (k8s.io/kubernetes/pkg/printers/internalversion), on the v1 JSON
// with the v1 defaults the internal object would carry.
// ---------------------------------------------------------------------------

using RowFn = std::function<std::vector<std::string>(const Json&, SysClock::time_point)>;

struct Printer {
  std::vector<Column> columns;
  RowFn row;
};

Column NameColumn() { return {"Name", "string", "name", kNameDescription, 0}; }
Column AgeColumn() { return {"Age", "string", "", kCreationTimestampDescription, 0}; }

const Printer* BuiltinPrinter(const ResourceType& t) {
  static const Printer kNamespace{
      {NameColumn(), {"Status", "string", "", "The status of the namespace", 0}, AgeColumn()},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        return {StrCell(Name(o)), StrCell(Str(At(o, "status"), "phase")), StrCell(Age(o, now))};
      }};
  static const Printer kConfigMap{
      {NameColumn(),
       {"Data", "string", "",
        "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' or '.'. "
        "Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data must not "
        "overlap with the keys in the BinaryData field, this is enforced during validation process.",
        0},
       AgeColumn()},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        const auto n = Size(At(o, "data")) + Size(At(o, "binaryData"));
        return {StrCell(Name(o)), IntCell(static_cast<long long>(n)), StrCell(Age(o, now))};
      }};
  static const Printer kSecret{
      {NameColumn(),
       {"Type", "string", "",
        "Used to facilitate programmatic handling of secret data. More info: "
        "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
        0},
       {"Data", "string", "",
        "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. The "
        "serialized form of the secret data is a base64 encoded string, representing the arbitrary (possibly "
        "non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4",
        0},
       AgeColumn()},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        // The internal object has stringData merged into data, and the
        // default type.
        std::set<std::string> keys;
        for (const char* field : {"data", "stringData"}) {
          const Json& m = At(o, field);
          if (!m.is_object()) continue;
          for (auto it = m.begin(); it != m.end(); ++it) keys.insert(it.key());
        }
        std::string type = Str(o, "type");
        if (type.empty()) type = "Opaque";
        return {StrCell(Name(o)), StrCell(type), IntCell(static_cast<long long>(keys.size())), StrCell(Age(o, now))};
      }};
  static const Printer kEvent{
      {{"Last Seen", "string", "", "The time at which the most recent occurrence of this event was recorded.", 0},
       {"Type", "string", "", "Type of this event (Normal, Warning), new types could be added in the future", 0},
       {"Reason", "string", "",
        "This should be a short, machine understandable string that gives the reason for the transition into the "
        "object's current status.",
        0},
       {"Object", "string", "", "The object that this event is about.", 0},
       {"Subobject", "string", "",
        "If referring to a piece of an object instead of an entire object, this string should contain a valid "
        "JSON/Go field access statement, such as desiredState.manifest.containers[2]. For example, if the object "
        "reference is to a container within a pod, this would take on a value like: \"spec.containers{name}\" "
        "(where \"name\" refers to the name of the container that triggered the event) or if no container name is "
        "specified \"spec.containers[2]\" (container with index 2 in this pod). This syntax is chosen only to have "
        "some well-defined way of referencing a part of an object.",
        1},
       {"Source", "string", "", "The component reporting this event. Should be a short machine understandable string.",
        1},
       {"Message", "string", "", "A human-readable description of the status of this operation.", 0},
       {"First Seen", "string", "", "The time at which the event was first recorded. (Time of server receipt is in TypeMeta.)",
        1},
       {"Count", "string", "", "The number of times this event has occurred.", 1},
       {"Name", "string", "name", kNameDescription, 1}},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        auto first_time = TimeField(o, "firstTimestamp");
        std::string first = first_time ? Since(first_time, now) : Since(TimeField(o, "eventTime"), now);
        auto last_time = TimeField(o, "lastTimestamp");
        std::string last = last_time ? Since(last_time, now) : first;
        long long count = Int(o, "count");
        const Json& series = At(o, "series");
        if (series.is_object()) {
          last = Since(TimeField(series, "lastObservedTime"), now);
          count = Int(series, "count");
        } else if (count == 0) {
          count = 1;  // singleton events have no count in the new API
        }
        const Json& involved = At(o, "involvedObject");
        const std::string kind = Lower(Str(involved, "kind"));
        const std::string involved_name = Str(involved, "name");
        const std::string target = involved_name.empty() ? kind : kind + "/" + involved_name;
        const Json& source = At(o, "source");
        std::string component = Str(source, "component");
        if (component.empty()) component = Str(o, "reportingComponent");
        std::string instance = Str(source, "host");
        if (instance.empty()) instance = Str(o, "reportingInstance");
        const std::string source_text = instance.empty() ? component : component + ", " + instance;
        return {StrCell(last),
                StrCell(Str(o, "type")),
                StrCell(Str(o, "reason")),
                StrCell(target),
                StrCell(Str(involved, "fieldPath")),
                StrCell(source_text),
                StrCell(TrimSpace(Str(o, "message"))),
                StrCell(first),
                IntCell(count),
                StrCell(Name(o))};
      }};
  static const Printer kLease{
      {NameColumn(),
       {"Holder", "string", "",
        "holderIdentity contains the identity of the holder of a current lease. If Coordinated Leader Election is "
        "used, the holder identity must be equal to the elected LeaseCandidate.metadata.name field.",
        0},
       AgeColumn()},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        return {StrCell(Name(o)), StrCell(Str(At(o, "spec"), "holderIdentity")), StrCell(Age(o, now))};
      }};
  static const Printer kDeployment{
      {NameColumn(),
       {"Ready", "string", "", kReadyPodsDescription, 0},
       {"Up-to-date", "string", "",
        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.", 0},
       {"Available", "string", "",
        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.", 0},
       AgeColumn(),
       {"Containers", "string", "", kContainersDescription, 1},
       {"Images", "string", "", kImagesDescription, 1},
       {"Selector", "string", "",
        "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by "
        "this deployment.",
        1}},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        const Json& spec = At(o, "spec");
        const Json& status = At(o, "status");
        const long long desired = Int(spec, "replicas", 1);  // v1 default
        auto [names, images] = ContainerCells(At(At(At(spec, "template"), "spec"), "containers"));
        return {StrCell(Name(o)),
                StrCell(std::to_string(Int(status, "readyReplicas")) + "/" + std::to_string(desired)),
                IntCell(Int(status, "updatedReplicas")),
                IntCell(Int(status, "availableReplicas")),
                StrCell(Age(o, now)),
                StrCell(names),
                StrCell(images),
                StrCell(SelectorString(At(spec, "selector")))};
      }};
  static const Printer kStatefulSet{
      {NameColumn(),
       {"Ready", "string", "", kReadyPodsDescription, 0},
       AgeColumn(),
       {"Containers", "string", "", kContainersDescription, 1},
       {"Images", "string", "", kImagesDescription, 1}},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        const Json& spec = At(o, "spec");
        const long long desired = Int(spec, "replicas", 1);  // v1 default
        auto [names, images] = ContainerCells(At(At(At(spec, "template"), "spec"), "containers"));
        return {StrCell(Name(o)),
                StrCell(std::to_string(Int(At(o, "status"), "readyReplicas")) + "/" + std::to_string(desired)),
                StrCell(Age(o, now)),
                StrCell(names),
                StrCell(images)};
      }};

  // Roles and ClusterRoles: the name and the creation time as RFC 3339.
  static const Printer kRole{{NameColumn(), {"Created At", "date", "", kCreationTimestampDescription, 0}},
                             [](const Json& o, SysClock::time_point) -> std::vector<std::string> {
                               return {StrCell(Name(o)), StrCell(Rfc3339(TimeField(At(o, "metadata"),
                                                                                   "creationTimestamp")))};
                             }};
  static const Printer kRoleBinding{
      {NameColumn(),
       {"Role", "string", "",
        "RoleRef can reference a Role in the current namespace or a ClusterRole in the global namespace. If the "
        "RoleRef cannot be resolved, the Authorizer must return an error.",
        0},
       AgeColumn(),
       {"Users", "string", "", "Users in the roleBinding", 1},
       {"Groups", "string", "", "Groups in the roleBinding", 1},
       {"ServiceAccounts", "string", "", "ServiceAccounts in the roleBinding", 1}},
      [](const Json& o, SysClock::time_point now) -> std::vector<std::string> {
        const Json& ref = At(o, "roleRef");
        std::string users, groups, sas;
        const Json& subjects = At(o, "subjects");
        for (std::size_t i = 0; subjects.is_array() && i < subjects.size(); ++i) {
          const Json& s = subjects[i];
          const std::string kind = Str(s, "kind");
          auto add = [](std::string& into, const std::string& v) { into += (into.empty() ? "" : ", ") + v; };
          if (kind == "User") add(users, Str(s, "name"));
          if (kind == "Group") add(groups, Str(s, "name"));
          if (kind == "ServiceAccount") add(sas, Str(s, "namespace") + "/" + Str(s, "name"));
        }
        return {StrCell(Name(o)), StrCell(Str(ref, "kind") + "/" + Str(ref, "name")), StrCell(Age(o, now)),
                StrCell(users), StrCell(groups), StrCell(sas)};
      }};

  if (t.custom) return nullptr;
  if (t.group == "rbac.authorization.k8s.io") {
    if (t.kind == "Role" || t.kind == "ClusterRole") return &kRole;
    if (t.kind == "RoleBinding" || t.kind == "ClusterRoleBinding") return &kRoleBinding;
  }
  if (t.group.empty()) {
    if (t.kind == "Namespace") return &kNamespace;
    if (t.kind == "ConfigMap") return &kConfigMap;
    if (t.kind == "Secret") return &kSecret;
    if (t.kind == "Event") return &kEvent;
  } else if (t.group == "coordination.k8s.io" && t.kind == "Lease") {
    return &kLease;
  } else if (t.group == "apps") {
    if (t.kind == "Deployment") return &kDeployment;
    if (t.kind == "StatefulSet") return &kStatefulSet;
  }
  return nullptr;
}

// Types a real server prints with rest's default convertor (no printer).
bool UsesDefaultTable(const ResourceType& t) {
  return !t.custom && t.group == "apiextensions.k8s.io" && t.kind == "CustomResourceDefinition";
}

// ---------------------------------------------------------------------------
// Custom resources: apiextensions' tableconvertor
// ---------------------------------------------------------------------------

struct CrdColumn {
  Column column;
  JsonPath path;
};

// tableconvertor.New: the Name column, then each printer column until one
// whose jsonPath does not parse (the server logs it and serves the columns
// before it); no columns at all means an Age column.
std::vector<CrdColumn> CrdColumns(const ResourceType& t) {
  Json columns = t.printer_columns;
  if (!columns.is_array() || columns.empty()) {
    columns = Json::array({Json{{"name", "Age"},
                                {"type", "date"},
                                {"description", kCreationTimestampDescription},
                                {"jsonPath", ".metadata.creationTimestamp"}}});
  }
  std::vector<CrdColumn> out;
  for (const Json& c : columns) {
    const std::string json_path = Str(c, "jsonPath");
    auto path = JsonPath::Parse("{" + json_path + "}", nullptr);
    if (!path) break;
    path->AllowMissingKeys(true);
    std::string description = Str(c, "description");
    if (description.empty()) description = "Custom resource definition column (in JSONPath format): " + json_path;
    out.push_back(CrdColumn{Column{Str(c, "name"), Str(c, "type"), Str(c, "format"), description, Int(c, "priority")},
                            std::move(*path)});
  }
  return out;
}

// cellForJSONValue, and the string column's PrintResults.
std::string CrdCell(const CrdColumn& c, const Json& object, SysClock::time_point now) {
  auto results = c.path.FindResults(object, nullptr);
  if (!results || results->empty() || (*results)[0].empty()) return "null";
  const Json& value = (*results)[0][0];  // the convertor takes the first match only
  const std::string& type = c.column.type;
  if (type == "string") return StrCell(JsonPath::PrintResults({value}));
  if (value.is_null()) return "null";
  const bool big = value.is_number_unsigned() &&
                   value.get<std::uint64_t>() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
  if (type == "integer") {
    if (value.is_number_float() || big) return IntCell(GoInt64(value.get<double>()));
    if (value.is_number_integer()) return IntCell(value.get<long long>());
  } else if (type == "number") {
    if (value.is_number()) return GoFloatJson(value.get<double>());
  } else if (type == "boolean") {
    if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  } else if (type == "date") {
    if (value.is_string()) {
      const std::string& s = value.get_ref<const std::string&>();
      if (s.empty() || s == "null") return StrCell("<unknown>");
      auto t = ParseRfc3339(s);
      if (!t) return StrCell("<invalid>");
      return StrCell(Since(t, now));
    }
  }
  return "null";
}

// ---------------------------------------------------------------------------
// Rows' objects
// ---------------------------------------------------------------------------

// The object's metadata as a typed ObjectMeta encodes it: struct field order,
// omitempty fields left out when empty, creationTimestamp always (null when
// unset), label and annotation maps with sorted keys.
std::string PartialObjectMetadata(const Json& object, const std::string& api_version) {
  const Json& m = At(object, "metadata");
  std::string out = "{\"kind\":\"PartialObjectMetadata\",\"apiVersion\":";
  AppendGoString(out, api_version);
  out += ",\"metadata\":{";
  bool first = true;
  auto field = [&](const char* key, const Json& value, KeyOrder order) {
    if (!first) out += ',';
    first = false;
    AppendGoString(out, key);
    out += ':';
    AppendGoJson(out, value, order);
  };
  for (const char* key : {"name", "generateName", "namespace", "selfLink", "uid", "resourceVersion"}) {
    const Json& v = At(m, key);
    if (v.is_string() && !v.get_ref<const std::string&>().empty()) field(key, v, KeyOrder::kAsStored);
  }
  if (const Json& g = At(m, "generation"); g.is_number() && g != 0) field("generation", g, KeyOrder::kAsStored);
  field("creationTimestamp", At(m, "creationTimestamp"), KeyOrder::kAsStored);
  for (const char* key : {"deletionTimestamp", "deletionGracePeriodSeconds"}) {
    if (const Json& v = At(m, key); !v.is_null()) field(key, v, KeyOrder::kAsStored);
  }
  for (const char* key : {"labels", "annotations"}) {
    if (const Json& v = At(m, key); Size(v) > 0) field(key, v, KeyOrder::kSorted);
  }
  for (const char* key : {"ownerReferences", "finalizers", "managedFields"}) {
    if (const Json& v = At(m, key); Size(v) > 0) field(key, v, KeyOrder::kAsStored);
  }
  out += "}}";
  return out;
}

void AppendColumns(std::string& out, const std::vector<Column>& columns) {
  out += '[';
  for (std::size_t i = 0; i < columns.size(); ++i) {
    const Column& c = columns[i];
    if (i > 0) out += ',';
    out += "{\"name\":";
    AppendGoString(out, c.name);
    out += ",\"type\":";
    AppendGoString(out, c.type);
    out += ",\"format\":";
    AppendGoString(out, c.format);
    out += ",\"description\":";
    AppendGoString(out, c.description);
    out += ",\"priority\":" + std::to_string(c.priority) + "}";
  }
  out += ']';
}

}  // namespace

std::optional<IncludeObject> ParseIncludeObject(const std::string* value, std::string* error) {
  if (value == nullptr || value->empty() || *value == "Metadata") return IncludeObject::kMetadata;
  if (*value == "None") return IncludeObject::kNone;
  if (*value == "Object") return IncludeObject::kObject;
  if (error != nullptr) {
    std::string quoted;
    AppendGoString(quoted, *value);
    *error = "Unable to convert to Table as requested: includeObject: Unsupported value: " + quoted +
             ": supported values: \"Metadata\", \"None\", \"Object\"";
  }
  return std::nullopt;
}

bool SupportsTable(const ResourceType& type) {
  return type.custom || UsesDefaultTable(type) || BuiltinPrinter(type) != nullptr;
}

std::string ConvertToTable(const ResourceType& type, const std::vector<const Json*>& objects, bool is_list,
                           const TableListMeta& meta, const TableOptions& options) {
  std::vector<Column> columns;
  std::function<std::vector<std::string>(const Json&)> cells;
  std::vector<CrdColumn> crd_columns;
  bool null_rows_when_empty = false;
  if (type.custom) {
    crd_columns = CrdColumns(type);
    columns.push_back(NameColumn());
    for (const auto& c : crd_columns) columns.push_back(c.column);
    cells = [&](const Json& o) {
      std::vector<std::string> row{StrCell(Name(o))};
      for (const auto& c : crd_columns) row.push_back(CrdCell(c, o, options.now));
      return row;
    };
  } else if (const Printer* p = BuiltinPrinter(type)) {
    columns = p->columns;
    cells = [p, &options](const Json& o) { return p->row(o, options.now); };
  } else {
    // rest's default convertor: Name and the creation time as RFC 3339; its
    // rows stay nil (null) for an empty list.
    columns = {NameColumn(), {"Created At", "date", "", kCreationTimestampDescription, 0}};
    null_rows_when_empty = true;
    cells = [&](const Json& o) {
      return std::vector<std::string>{StrCell(Name(o)), StrCell(Rfc3339(TimeField(At(o, "metadata"), "creationTimestamp")))};
    };
  }

  std::string out = "{\"kind\":\"Table\",\"apiVersion\":";
  AppendGoString(out, options.api_version);
  out += ",\"metadata\":{";
  bool first = true;
  if (!meta.resource_version.empty()) {
    out += "\"resourceVersion\":";
    AppendGoString(out, meta.resource_version);
    first = false;
  }
  if (!meta.continue_token.empty()) {
    out += first ? "" : ",";
    out += "\"continue\":";
    AppendGoString(out, meta.continue_token);
    first = false;
  }
  if (meta.remaining_item_count) {
    out += first ? "" : ",";
    out += "\"remainingItemCount\":" + std::to_string(*meta.remaining_item_count);
  }
  out += "},\"columnDefinitions\":";
  if (options.no_headers) {
    out += "null";
  } else {
    AppendColumns(out, columns);
  }
  out += ",\"rows\":";
  if (is_list && objects.empty() && null_rows_when_empty) {
    out += "null}";
    return out;
  }
  out += '[';
  for (std::size_t i = 0; i < objects.size(); ++i) {
    const Json& o = *objects[i];
    if (i > 0) out += ',';
    out += "{\"cells\":[";
    const auto row = cells(o);
    for (std::size_t c = 0; c < row.size(); ++c) {
      if (c > 0) out += ',';
      out += row[c];
    }
    out += "],\"object\":";
    switch (options.include) {
      case IncludeObject::kNone:
        out += "null";
        break;
      case IncludeObject::kMetadata:
        out += PartialObjectMetadata(o, options.api_version);
        break;
      case IncludeObject::kObject:
        // Custom resources are unstructured maps on the server: sorted keys.
        AppendGoJson(out, o, type.custom ? KeyOrder::kSorted : KeyOrder::kAsStored);
        break;
    }
    out += '}';
  }
  out += "]}";
  return out;
}

std::string HumanDuration(std::chrono::nanoseconds d) {
  const long long seconds = d.count() / 1000000000LL;  // int(d.Seconds()) truncates toward zero
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 60 * 2) return std::to_string(seconds) + "s";
  const long long minutes = d.count() / 60000000000LL;
  if (minutes < 10) {
    const long long s = seconds % 60;
    if (s == 0) return std::to_string(minutes) + "m";
    return std::to_string(minutes) + "m" + std::to_string(s) + "s";
  }
  if (minutes < 60 * 3) return std::to_string(minutes) + "m";
  const long long hours = d.count() / 3600000000000LL;
  if (hours < 8) {
    const long long m = minutes % 60;
    if (m == 0) return std::to_string(hours) + "h";
    return std::to_string(hours) + "h" + std::to_string(m) + "m";
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    const long long h = hours % 24;
    if (h == 0) return std::to_string(hours / 24) + "d";
    return std::to_string(hours / 24) + "d" + std::to_string(h) + "h";
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    const long long dy = (hours / 24) % 365;
    if (dy == 0) return std::to_string(hours / 24 / 365) + "y";
    return std::to_string(hours / 24 / 365) + "y" + std::to_string(dy) + "d";
  }
  return std::to_string(hours / 24 / 365) + "y";
}

std::optional<SysClock::time_point> ParseRfc3339(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.fraction](Z|+hh:mm|-hh:mm); Go also takes a comma
  // before the fraction.
  auto digits = [&](std::size_t pos, std::size_t n, int* out) {
    if (pos + n > s.size()) return false;
    int v = 0;
    for (std::size_t i = pos; i < pos + n; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int year, month, day, hour, minute, second;
  if (!digits(0, 4, &year) || s.size() < 20 || s[4] != '-' || !digits(5, 2, &month) || s[7] != '-' ||
      !digits(8, 2, &day) || s[10] != 'T' || !digits(11, 2, &hour) || s[13] != ':' || !digits(14, 2, &minute) ||
      s[16] != ':' || !digits(17, 2, &second)) {
    return std::nullopt;
  }
  std::size_t pos = 19;
  long long nanos = 0;
  if (s[pos] == '.' || s[pos] == ',') {
    std::size_t start = ++pos;
    long long scale = 100000000;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      nanos += (s[pos] - '0') * scale;
      scale /= 10;
      ++pos;
    }
    if (pos == start) return std::nullopt;
  }
  long long offset = 0;
  if (pos < s.size() && s[pos] == 'Z') {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!digits(pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' || !digits(pos + 4, 2, &om) ||
        oh > 23 || om > 59) {
      return std::nullopt;
    }
    offset = (oh * 3600LL + om * 60LL) * (s[pos] == '-' ? -1 : 1);
    pos += 6;
  } else {
    return std::nullopt;
  }
  if (pos != s.size()) return std::nullopt;
  static const int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
  if (month < 1 || month > 12 || day < 1 || day > kDays[month - 1] + (month == 2 && leap ? 1 : 0) || hour > 23 ||
      minute > 59 || second > 59) {
    return std::nullopt;
  }
  // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
  const int y = year - (month <= 2 ? 1 : 0);
  const int era = (y >= 0 ? y : y - 399) / 400;
  const int yoe = y - era * 400;
  const int mp = (month + 9) % 12;
  const int doy = (153 * mp + 2) / 5 + day - 1;
  const int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  const long long days = static_cast<long long>(era) * 146097 + doe - 719468;
  const long long secs = days * 86400 + hour * 3600LL + minute * 60LL + second - offset;
  return SysClock::time_point(std::chrono::duration_cast<SysClock::duration>(std::chrono::seconds(secs) +
                                                                             std::chrono::nanoseconds(nanos)));
}

}  // namespace kubefold::emulator
