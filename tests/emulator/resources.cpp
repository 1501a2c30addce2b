#include "tests/emulator/resources.h"

#include <algorithm>
#include <regex>
#include <set>
#include <tuple>

namespace kubefold::emulator {
namespace {

ResourceType Builtin(std::string group, std::string resource, std::string singular, std::string kind,
                     bool namespaced, bool status, std::vector<std::string> short_names,
                     std::vector<std::string> categories = {}) {
  ResourceType t;
  t.group = std::move(group);
  t.version = "v1";
  t.resource = std::move(resource);
  t.singular = std::move(singular);
  t.kind = std::move(kind);
  t.namespaced = namespaced;
  t.status_subresource = status;
  t.short_names = std::move(short_names);
  t.categories = std::move(categories);
  return t;
}

const Json kVerbs = Json::array({"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"});

// Group order as a real server lists it: core first, then the groups in
// registration order (apps before coordination before apiextensions), then
// CRD groups by name.
std::vector<std::string> Groups(const std::vector<ResourceType>& types) {
  std::vector<std::string> groups;
  for (const auto& t : types) {
    if (!t.group.empty() && std::find(groups.begin(), groups.end(), t.group) == groups.end()) {
      groups.push_back(t.group);
    }
  }
  return groups;
}

Json GroupVersion(const std::string& group, const std::string& version) {
  return Json{{"groupVersion", group + "/" + version}, {"version", version}};
}

bool IsDns1123Label(const std::string& s) {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?");
  return !s.empty() && s.size() <= 63 && std::regex_match(s, re);
}

bool IsDns1123Subdomain(const std::string& s) {
  static const std::regex re("[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*");
  return !s.empty() && s.size() <= 253 && std::regex_match(s, re);
}

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::shared_ptr<const Registry> Registry::BuiltIn() {
  static const std::shared_ptr<const Registry> registry = [] {
    auto r = std::make_shared<Registry>();
    auto& t = r->types_;
    t.push_back(Builtin("", "namespaces", "namespace", "Namespace", false, true, {"ns"}));
    t.push_back(Builtin("", "pods", "pod", "Pod", true, true, {"po"}, {"all"}));
    t.push_back(Builtin("", "nodes", "node", "Node", false, true, {"no"}));
    t.push_back(Builtin("", "secrets", "secret", "Secret", true, false, {}));
    t.push_back(Builtin("", "configmaps", "configmap", "ConfigMap", true, false, {"cm"}));
    t.push_back(Builtin("", "events", "event", "Event", true, false, {"ev"}));
    t.push_back(Builtin("", "services", "service", "Service", true, true, {"svc"}, {"all"}));
    t.push_back(Builtin("", "endpoints", "endpoints", "Endpoints", true, false, {"ep"}));
    t.push_back(Builtin("", "serviceaccounts", "serviceaccount", "ServiceAccount", true, false, {"sa"}));
    t.push_back(Builtin("apps", "deployments", "deployment", "Deployment", true, true, {"deploy"}, {"all"}));
    t.push_back(Builtin("apps", "statefulsets", "statefulset", "StatefulSet", true, true, {"sts"}, {"all"}));
    t.push_back(Builtin("apps", "daemonsets", "daemonset", "DaemonSet", true, true, {"ds"}, {"all"}));
    // Create-only reviews: authentication, then authorization, as a real
    // server registers them after apps.
    for (auto [group, resource, singular, kind, namespaced] :
         {std::tuple{"authentication.k8s.io", "selfsubjectreviews", "selfsubjectreview", "SelfSubjectReview", false},
          std::tuple{"authentication.k8s.io", "tokenreviews", "tokenreview", "TokenReview", false},
          std::tuple{"authorization.k8s.io", "selfsubjectaccessreviews", "selfsubjectaccessreview",
                     "SelfSubjectAccessReview", false},
          std::tuple{"authorization.k8s.io", "subjectaccessreviews", "subjectaccessreview", "SubjectAccessReview",
                     false}}) {
      t.push_back(Builtin(group, resource, singular, kind, namespaced, false, {}));
      t.back().verbs = {"create"};
    }
    t.push_back(Builtin("policy", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true, true,
                        {"pdb"}));
    t.push_back(Builtin("rbac.authorization.k8s.io", "clusterrolebindings", "clusterrolebinding",
                        "ClusterRoleBinding", false, false, {}));
    t.push_back(Builtin("rbac.authorization.k8s.io", "clusterroles", "clusterrole", "ClusterRole", false, false, {}));
    t.push_back(Builtin("rbac.authorization.k8s.io", "rolebindings", "rolebinding", "RoleBinding", true, false, {}));
    t.push_back(Builtin("rbac.authorization.k8s.io", "roles", "role", "Role", true, false, {}));
    t.push_back(Builtin("coordination.k8s.io", "leases", "lease", "Lease", true, false, {}));
    t.push_back(Builtin("apiextensions.k8s.io", "customresourcedefinitions", "customresourcedefinition",
                        "CustomResourceDefinition", false, true, {"crd", "crds"}, {"api-extensions"}));
    return std::shared_ptr<const Registry>(std::move(r));
  }();
  return registry;
}

const ResourceType* Registry::Find(const std::string& group, const std::string& version,
                                   const std::string& resource) const {
  for (const auto& t : types_) {
    if (t.group == group && t.version == version && t.resource == resource) return &t;
  }
  return nullptr;
}

Json Registry::ApiVersions() const {
  return Json{{"kind", "APIVersions"},
              {"versions", Json::array({"v1"})},
              {"serverAddressByClientCIDRs", Json::array({Json{{"clientCIDR", "0.0.0.0/0"},
                                                               {"serverAddress", "127.0.0.1:6443"}}})}};
}

std::optional<Json> Registry::ApiGroup(const std::string& group) const {
  std::vector<std::string> versions;
  for (const auto& t : types_) {
    if (t.group == group && std::find(versions.begin(), versions.end(), t.version) == versions.end()) {
      versions.push_back(t.version);
    }
  }
  if (group.empty() || versions.empty()) return std::nullopt;
  Json vs = Json::array();
  for (const auto& v : versions) vs.push_back(GroupVersion(group, v));
  // The preferred version is the first listed (a CRD's storage version is put first).
  return Json{{"kind", "APIGroup"},
              {"apiVersion", "v1"},
              {"name", group},
              {"versions", vs},
              {"preferredVersion", GroupVersion(group, versions.front())}};
}

Json Registry::ApiGroupList() const {
  Json groups = Json::array();
  for (const auto& g : Groups(types_)) {
    Json group = *ApiGroup(g);
    group.erase("kind");
    group.erase("apiVersion");
    groups.push_back(std::move(group));
  }
  return Json{{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", groups}};
}

std::optional<Json> Registry::ResourceList(const std::string& group, const std::string& version) const {
  Json resources = Json::array();
  for (const auto& t : types_) {
    if (t.group != group || t.version != version) continue;
    Json r{{"name", t.resource}, {"singularName", t.singular}, {"namespaced", t.namespaced}, {"kind", t.kind},
           {"verbs", t.verbs.empty() ? kVerbs : Json(t.verbs)}};
    if (!t.short_names.empty()) r["shortNames"] = t.short_names;
    if (!t.categories.empty()) r["categories"] = t.categories;
    resources.push_back(std::move(r));
    if (t.status_subresource) {
      resources.push_back(Json{{"name", t.resource + "/status"},
                               {"singularName", ""},
                               {"namespaced", t.namespaced},
                               {"kind", t.kind},
                               {"verbs", Json::array({"get", "patch", "update"})}});
    }
    if (!t.custom && t.kind == "Service") {
      // The proxy subresource: a connect endpoint (verbs from the method).
      resources.push_back(Json{{"name", "services/proxy"},
                               {"singularName", ""},
                               {"namespaced", true},
                               {"kind", "ServiceProxyOptions"},
                               {"verbs", Json::array({"create", "delete", "get", "patch", "update"})}});
    }
  }
  if (resources.empty()) return std::nullopt;
  const std::string gv = group.empty() ? version : group + "/" + version;
  return Json{{"kind", "APIResourceList"}, {"apiVersion", "v1"}, {"groupVersion", gv}, {"resources", resources}};
}

std::string ValidateCrd(const Json& crd) {
  const Json& spec = crd.contains("spec") ? crd["spec"] : Json();
  if (!spec.is_object()) return "spec: Required value";
  const std::string group = Str(spec, "group");
  if (group.empty()) return "spec.group: Required value";
  if (!IsDns1123Subdomain(group) || group.find('.') == std::string::npos) {
    return "spec.group: Invalid value: \"" + group + "\": should be a domain with at least one dot";
  }
  const Json& names = spec.contains("names") ? spec["names"] : Json();
  if (!names.is_object()) return "spec.names: Required value";
  const std::string plural = Str(names, "plural");
  const std::string kind = Str(names, "kind");
  if (plural.empty()) return "spec.names.plural: Required value";
  if (!IsDns1123Label(plural)) return "spec.names.plural: Invalid value: \"" + plural + "\": a lowercase RFC 1123 label";
  if (kind.empty()) return "spec.names.kind: Required value";
  const std::string name = crd.contains("metadata") ? Str(crd["metadata"], "name") : "";
  if (name != plural + "." + group) {
    return "metadata.name: Invalid value: \"" + name + "\": must be spec.names.plural+\".\"+spec.group";
  }
  const std::string scope = Str(spec, "scope");
  if (scope != "Namespaced" && scope != "Cluster") {
    return "spec.scope: Unsupported value: \"" + scope + "\": supported values: \"Cluster\", \"Namespaced\"";
  }
  if (!spec.contains("versions") || !spec["versions"].is_array() || spec["versions"].empty()) {
    return "spec.versions: Invalid value: null: must have exactly one version marked as storage version";
  }
  int storage = 0;
  std::set<std::string> seen;
  for (std::size_t i = 0; i < spec["versions"].size(); ++i) {
    const Json& v = spec["versions"][i];
    const std::string field = "spec.versions[" + std::to_string(i) + "]";
    const std::string vname = v.is_object() ? Str(v, "name") : "";
    if (vname.empty()) return field + ".name: Required value";
    if (!seen.insert(vname).second) return field + ".name: Duplicate value: \"" + vname + "\"";
    if (v.value("storage", false)) ++storage;
    const Json* schema = nullptr;
    if (v.contains("schema") && v["schema"].is_object() && v["schema"].contains("openAPIV3Schema")) {
      schema = &v["schema"]["openAPIV3Schema"];
    }
    if (schema == nullptr || !schema->is_object()) {
      return field + ".schema.openAPIV3Schema: Required value: schemas are required";
    }
    if (Str(*schema, "type") != "object") {
      return field + ".schema.openAPIV3Schema.type: Required value: must not be empty at the root";
    }
    // ValidateCustomResourceColumnDefinition (the server's internal field
    // name JSONPath appears in the path).
    if (v.contains("additionalPrinterColumns") && v["additionalPrinterColumns"].is_array()) {
      static const std::set<std::string> kTypes = {"boolean", "date", "integer", "number", "string"};
      static const std::set<std::string> kFormats = {"byte",  "date",  "date-time", "double",
                                                     "float", "int32", "int64",     "password"};
      const Json& columns = v["additionalPrinterColumns"];
      for (std::size_t j = 0; j < columns.size(); ++j) {
        const std::string at = field + ".additionalPrinterColumns[" + std::to_string(j) + "]";
        const Json& col = columns[j];
        const std::string type = col.is_object() ? Str(col, "type") : "";
        const std::string format = col.is_object() ? Str(col, "format") : "";
        const std::string path = col.is_object() ? Str(col, "jsonPath") : "";
        if ((col.is_object() ? Str(col, "name") : "").empty()) return at + ".name: Required value";
        if (type.empty()) return at + ".type: Required value: must be one of boolean,date,integer,number,string";
        if (!kTypes.contains(type)) {
          return at + ".type: Invalid value: " + Json(type).dump() + ": must be one of boolean,date,integer,number,string";
        }
        if (!format.empty() && !kFormats.contains(format)) {
          return at + ".format: Invalid value: " + Json(format).dump() +
                 ": must be one of byte,date,date-time,double,float,int32,int64,password";
        }
        if (path.empty()) return at + ".JSONPath: Required value";
        if (path[0] != '.') {
          return at + ".JSONPath: Invalid value: " + Json(path).dump() + ": must be a simple json path starting with .";
        }
      }
    }
  }
  if (storage != 1) {
    return "spec.versions: Invalid value: " + std::to_string(storage) +
           ": must have exactly one version marked as storage version";
  }
  return "";
}

std::shared_ptr<const Registry> Registry::WithCrd(const Json& crd, std::string* error) const {
  const std::string problem = ValidateCrd(crd);
  if (!problem.empty()) {
    if (error != nullptr) *error = problem;
    return nullptr;
  }
  const Json& spec = crd["spec"];
  const std::string group = spec["group"];
  const Json& names = spec["names"];
  const std::string plural = names["plural"];
  auto next = std::make_shared<Registry>(*WithoutCrd(group, plural));
  std::vector<ResourceType> added;
  for (const Json& v : spec["versions"]) {
    if (!v.value("served", true)) continue;
    ResourceType t;
    t.group = group;
    t.version = v["name"];
    t.resource = plural;
    t.singular = names.value("singular", "");
    if (t.singular.empty()) {
      t.singular = names["kind"].get<std::string>();
      std::transform(t.singular.begin(), t.singular.end(), t.singular.begin(), ::tolower);
    }
    t.kind = names["kind"];
    t.namespaced = spec["scope"] == "Namespaced";
    t.status_subresource = v.contains("subresources") && v["subresources"].is_object() &&
                           v["subresources"].contains("status");
    if (names.contains("shortNames") && names["shortNames"].is_array()) {
      for (const auto& s : names["shortNames"]) {
        if (s.is_string()) t.short_names.push_back(s);
      }
    }
    if (names.contains("categories") && names["categories"].is_array()) {
      for (const auto& s : names["categories"]) {
        if (s.is_string()) t.categories.push_back(s);
      }
    }
    t.custom = true;
    t.schema = v["schema"]["openAPIV3Schema"];
    if (v.contains("additionalPrinterColumns")) t.printer_columns = v["additionalPrinterColumns"];
    // The storage version first: it is the group's preferred version.
    if (v.value("storage", false)) {
      added.insert(added.begin(), std::move(t));
    } else {
      added.push_back(std::move(t));
    }
  }
  next->types_.insert(next->types_.end(), added.begin(), added.end());
  return next;
}

std::shared_ptr<const Registry> Registry::WithoutCrd(const std::string& group, const std::string& plural) const {
  auto next = std::make_shared<Registry>(*this);
  std::erase_if(next->types_, [&](const ResourceType& t) { return t.custom && t.group == group && t.resource == plural; });
  return next;
}

namespace {

bool PreservesUnknown(const Json& schema) {
  auto it = schema.find("x-kubernetes-preserve-unknown-fields");
  return it != schema.end() && it->is_boolean() && it->get<bool>();
}

void Prune(Json& value, const Json& schema, const std::string& path, bool root, std::vector<std::string>* unknown) {
  if (!schema.is_object()) return;
  if (value.is_object()) {
    if (schema.contains("x-kubernetes-embedded-resource") && schema["x-kubernetes-embedded-resource"] == true) {
      root = true;  // apiVersion, kind and metadata are allowed there too
    }
    const Json* props = schema.contains("properties") && schema["properties"].is_object() ? &schema["properties"]
                                                                                         : nullptr;
    const Json* additional = schema.contains("additionalProperties") && schema["additionalProperties"].is_object()
                                 ? &schema["additionalProperties"]
                                 : nullptr;
    const bool preserve = PreservesUnknown(schema);
    for (auto it = value.begin(); it != value.end();) {
      const std::string& key = it.key();
      const std::string child = path + "." + key;
      if (root && (key == "apiVersion" || key == "kind" || key == "metadata")) {
        ++it;
        continue;
      }
      const Json* field_schema = props != nullptr && props->contains(key) ? &(*props)[key] : additional;
      if (field_schema != nullptr && it.value().is_null() && !field_schema->value("nullable", false)) {
        // A null where the schema does not allow one is dropped before
        // defaulting (which may then fill the field in), not refused.
        it = value.erase(it);
      } else if (field_schema != nullptr) {
        Prune(it.value(), *field_schema, child, false, unknown);
        ++it;
      } else if (preserve) {
        ++it;
      } else {
        if (unknown != nullptr) unknown->push_back(child);
        it = value.erase(it);
      }
    }
  } else if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      Prune(value[i], schema["items"], path + "[" + std::to_string(i) + "]", false, unknown);
    }
  }
}

std::string TypeOf(const Json& v) {
  if (v.is_object()) return "object";
  if (v.is_array()) return "array";
  if (v.is_string()) return "string";
  if (v.is_boolean()) return "boolean";
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number()) return "number";
  return "null";
}

void Check(const Json& value, const Json& schema, const std::string& path,
           std::vector<std::pair<std::string, std::string>>* out) {
  if (!schema.is_object()) return;
  const std::string field = path.empty() ? "<root>" : path.substr(1);
  if (value.is_null()) {
    if (!schema.value("nullable", false)) {
      // A null in a typed field: the real server reports the expected type.
      const std::string type = schema.value("type", "");
      if (!type.empty()) out->push_back({field, "Invalid value: \"null\": " + field + " in body must be of type " + type + ": \"null\""});
    }
    return;
  }
  const std::string type = schema.value("type", "");
  const std::string actual = TypeOf(value);
  if (!type.empty() && !(type == actual || (type == "number" && actual == "integer")) &&
      !(schema.value("x-kubernetes-int-or-string", false) && (actual == "integer" || actual == "string"))) {
    out->push_back({field, "Invalid value: \"" + actual + "\": " + field + " in body must be of type " + type +
                               ": \"" + actual + "\""});
    return;
  }
  if (schema.contains("enum") && schema["enum"].is_array()) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == value;
    if (!found) {
      std::string allowed;
      for (const auto& e : schema["enum"]) allowed += (allowed.empty() ? "" : ", ") + e.dump();
      out->push_back({field, "Unsupported value: " + value.dump() + ": supported values: " + allowed});
    }
  }
  if (value.is_number() && schema.contains("minimum") && value.get<double>() < schema["minimum"].get<double>()) {
    out->push_back({field, "Invalid value: " + value.dump() + ": " + field + " in body should be greater than or equal to " +
                               schema["minimum"].dump()});
  }
  if (value.is_number() && schema.contains("maximum") && value.get<double>() > schema["maximum"].get<double>()) {
    out->push_back({field, "Invalid value: " + value.dump() + ": " + field + " in body should be less than or equal to " +
                               schema["maximum"].dump()});
  }
  if (value.is_string()) {
    const std::string& text = value.get_ref<const std::string&>();
    if (schema.contains("minLength") && text.size() < schema["minLength"].get<std::size_t>()) {
      out->push_back({field, "Invalid value: " + value.dump() + ": " + field + " in body should be at least " +
                                 schema["minLength"].dump() + " chars long"});
    }
    if (schema.contains("maxLength") && text.size() > schema["maxLength"].get<std::size_t>()) {
      out->push_back({field, "Too long: may not be more than " + schema["maxLength"].dump() + " bytes"});
    }
    if (schema.contains("pattern") && schema["pattern"].is_string()) {
      try {
        if (!std::regex_search(text, std::regex(schema["pattern"].get<std::string>()))) {
          out->push_back({field, "Invalid value: " + value.dump() + ": " + field + " in body should match '" +
                                     schema["pattern"].get<std::string>() + "'"});
        }
      } catch (const std::regex_error&) {
        // An RE2 pattern std::regex cannot read is not checked.
      }
    }
    if (schema.value("format", "") == "date-time") {
      static const std::regex kDateTime("\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d(\\.\\d+)?(Z|[+-]\\d\\d:\\d\\d)");
      if (!std::regex_match(text, kDateTime)) {
        out->push_back({field, "Invalid value: " + value.dump() + ": " + field + " in body must be of type date-time: " +
                                   value.dump()});
      }
    }
  }
  if (value.is_array()) {
    if (schema.contains("minItems") && value.size() < schema["minItems"].get<std::size_t>()) {
      out->push_back({field, "Invalid value: " + std::to_string(value.size()) + ": " + field +
                                 " in body should have at least " + schema["minItems"].dump() + " items"});
    }
    if (schema.contains("maxItems") && value.size() > schema["maxItems"].get<std::size_t>()) {
      out->push_back({field, "Too many: " + std::to_string(value.size()) + ": must have at most " +
                                 schema["maxItems"].dump() + " items"});
    }
  }
  if (value.is_object()) {
    if (schema.contains("required") && schema["required"].is_array()) {
      for (const auto& r : schema["required"]) {
        if (r.is_string() && !value.contains(r.get<std::string>())) {
          const std::string f = (path + "." + r.get<std::string>()).substr(1);
          out->push_back({f, "Required value"});
        }
      }
    }
    const Json* props = schema.contains("properties") ? &schema["properties"] : nullptr;
    for (auto it = value.begin(); it != value.end(); ++it) {
      if (path.empty() && (it.key() == "apiVersion" || it.key() == "kind" || it.key() == "metadata")) continue;
      if (props != nullptr && props->contains(it.key())) {
        Check(it.value(), (*props)[it.key()], path + "." + it.key(), out);
      } else if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
        Check(it.value(), schema["additionalProperties"], path + "." + it.key(), out);
      }
    }
  } else if (value.is_array() && schema.contains("items")) {
    for (std::size_t i = 0; i < value.size(); ++i) {
      Check(value[i], schema["items"], path + "[" + std::to_string(i) + "]", out);
    }
  }
}

void ApplyDefaults(Json& value, const Json& schema) {
  if (!schema.is_object()) return;
  if (value.is_object()) {
    if (schema.contains("properties") && schema["properties"].is_object()) {
      for (auto it = schema["properties"].begin(); it != schema["properties"].end(); ++it) {
        if (!value.contains(it.key()) && it.value().is_object() && it.value().contains("default")) {
          value[it.key()] = it.value()["default"];
        }
        if (value.contains(it.key())) ApplyDefaults(value[it.key()], it.value());
      }
    }
    if (schema.contains("additionalProperties") && schema["additionalProperties"].is_object()) {
      for (auto it = value.begin(); it != value.end(); ++it) {
        if (!schema.contains("properties") || !schema["properties"].contains(it.key())) {
          ApplyDefaults(it.value(), schema["additionalProperties"]);
        }
      }
    }
  } else if (value.is_array() && schema.contains("items")) {
    for (auto& item : value) ApplyDefaults(item, schema["items"]);
  }
}

}  // namespace

void DefaultBySchema(Json& object, const Json& schema) { ApplyDefaults(object, schema); }

void PruneBySchema(Json& object, const Json& schema, std::vector<std::string>* unknown) {
  Prune(object, schema, "", true, unknown);
}

std::vector<std::pair<std::string, std::string>> ValidateBySchema(const Json& object, const Json& schema) {
  std::vector<std::pair<std::string, std::string>> out;
  Check(object, schema, "", &out);
  return out;
}

}  // namespace kubefold::emulator
