#include "tests/emulator/auth.h"

#include <algorithm>
#include <cctype>

namespace kubefold::emulator {
namespace {

constexpr char kRbacGroup[] = "rbac.authorization.k8s.io";

// Go's %q for the names and paths these messages quote (ASCII).
std::string Quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::vector<std::string> SplitPath(const std::string& path) {
  // strings.Split(strings.Trim(path, "/"), "/"): empty segments survive.
  const auto b = path.find_first_not_of('/');
  if (b == std::string::npos) return {};
  const std::string trimmed = path.substr(b, path.find_last_not_of('/') - b + 1);
  std::vector<std::string> parts;
  std::size_t start = 0;
  for (;;) {
    const auto slash = trimmed.find('/', start);
    parts.push_back(trimmed.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return parts;
}

std::vector<std::string> Strings(const Json& object, const char* key) {
  std::vector<std::string> out;
  auto it = object.find(key);
  if (it == object.end() || !it->is_array()) return out;
  for (const auto& v : *it) {
    if (v.is_string()) out.push_back(v.get<std::string>());
  }
  return out;
}

std::string Str(const Json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

bool Contains(const std::vector<std::string>& values, std::string_view want) {
  return std::find(values.begin(), values.end(), want) != values.end();
}

// rbac/v1 helpers: VerbMatches, APIGroupMatches, ResourceMatches,
// ResourceNameMatches, NonResourceURLMatches.
bool RuleAllows(const Attributes& a, const Json& rule) {
  const auto verbs = Strings(rule, "verbs");
  if (!Contains(verbs, "*") && !Contains(verbs, a.verb)) return false;
  if (!a.resource_request) {
    for (const auto& url : Strings(rule, "nonResourceURLs")) {
      if (url == "*" || url == a.path) return true;
      if (!url.empty() && url.back() == '*') {
        const std::string prefix = url.substr(0, url.find_last_not_of('*') + 1);
        if (a.path.starts_with(prefix)) return true;
      }
    }
    return false;
  }
  const auto groups = Strings(rule, "apiGroups");
  if (!Contains(groups, "*") && !Contains(groups, a.group)) return false;
  const std::string combined = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  bool resource = false;
  for (const auto& r : Strings(rule, "resources")) {
    if (r == "*" || r == combined ||
        (!a.subresource.empty() && r.size() == a.subresource.size() + 2 && r.starts_with("*/") &&
         r.ends_with(a.subresource))) {
      resource = true;
      break;
    }
  }
  if (!resource) return false;
  const auto names = Strings(rule, "resourceNames");
  return names.empty() || Contains(names, a.name);
}

bool AppliesTo(const UserInfo& user, const Json& subject, const std::string& binding_ns) {
  const std::string kind = Str(subject, "kind");
  const std::string name = Str(subject, "name");
  if (kind == "User") return user.name == name;
  if (kind == "Group") return user.InGroup(name);
  if (kind == "ServiceAccount") {
    std::string ns = Str(subject, "namespace");
    if (ns.empty()) ns = binding_ns;
    return !ns.empty() && user.name == "system:serviceaccount:" + ns + ":" + name;
  }
  return false;
}

std::string DescribeSubject(const Json& subject, const std::string& binding_ns) {
  const std::string kind = Str(subject, "kind");
  std::string name = Str(subject, "name");
  if (kind == "ServiceAccount") {
    const std::string ns = Str(subject, "namespace");
    name += "/" + (ns.empty() ? binding_ns : ns);
  }
  return kind + " " + Quote(name);
}

struct Visitor {
  const ObjectStore& store;
  const Attributes& a;
  std::vector<std::string> errors;
  std::string allowed_by;  // non-empty once allowed

  // GetRoleReferenceRules, then each rule until one allows.
  void VisitBinding(const Json& binding, const std::string& ns) {
    const Json& subjects = binding.contains("subjects") ? binding["subjects"] : Json();
    if (!subjects.is_array()) return;
    const Json* subject = nullptr;
    for (const auto& s : subjects) {
      if (AppliesTo(a.user, s, ns)) {
        subject = &s;
        break;
      }
    }
    if (subject == nullptr) return;
    const Json& ref = binding.contains("roleRef") ? binding["roleRef"] : Json::object();
    const std::string kind = Str(ref, "kind");
    const std::string name = Str(ref, "name");
    ObjectPtr role;
    if (kind == "Role") {
      role = store.Get(std::string(kRbacGroup) + "/roles", ns, name);
      if (!role) errors.push_back("role.rbac.authorization.k8s.io " + Quote(name) + " not found");
    } else if (kind == "ClusterRole") {
      role = store.Get(std::string(kRbacGroup) + "/clusterroles", "", name);
      if (!role) errors.push_back("clusterrole.rbac.authorization.k8s.io " + Quote(name) + " not found");
    } else {
      errors.push_back("unsupported role reference kind: " + Quote(kind));
    }
    if (!role || !role->json.contains("rules") || !role->json["rules"].is_array()) return;
    for (const auto& rule : role->json["rules"]) {
      if (!rule.is_object() || !RuleAllows(a, rule)) continue;
      const std::string binding_name = Str(binding["metadata"], "name");
      allowed_by = ns.empty() ? "ClusterRoleBinding " + Quote(binding_name)
                              : "RoleBinding " + Quote(binding_name + "/" + ns);
      allowed_by += " of " + kind + " " + Quote(name) + " to " + DescribeSubject(*subject, ns);
      return;
    }
  }
};

// utilerrors.NewAggregate(errs).Error(): one message as is, several
// de-duplicated in brackets.
std::string Aggregate(const std::vector<std::string>& errors) {
  if (errors.size() == 1) return errors[0];
  std::vector<std::string> seen;
  for (const auto& e : errors) {
    if (!Contains(seen, e)) seen.push_back(e);
  }
  std::string out;
  for (std::size_t i = 0; i < seen.size(); ++i) out += (i ? ", " : "") + seen[i];
  return seen.size() == 1 ? out : "[" + out + "]";
}

Json Metadata(const std::string& name) {
  return Json{{"name", name},
              {"labels", Json{{"kubernetes.io/bootstrapping", "rbac-defaults"}}},
              {"annotations", Json{{"rbac.authorization.kubernetes.io/autoupdate", "true"}}}};
}

Json ClusterRole(const std::string& name, Json rules) {
  return Json{{"kind", "ClusterRole"}, {"apiVersion", "rbac.authorization.k8s.io/v1"}, {"metadata", Metadata(name)},
              {"rules", std::move(rules)}};
}

Json GroupBinding(const std::string& name, const std::vector<std::string>& groups) {
  Json subjects = Json::array();
  for (const auto& g : groups) subjects.push_back(Json{{"apiGroup", kRbacGroup}, {"kind", "Group"}, {"name", g}});
  return Json{{"kind", "ClusterRoleBinding"},
              {"apiVersion", "rbac.authorization.k8s.io/v1"},
              {"metadata", Metadata(name)},
              {"subjects", subjects},
              {"roleRef", Json{{"apiGroup", kRbacGroup}, {"kind", "ClusterRole"}, {"name", name}}}};
}

}  // namespace

bool UserInfo::InGroup(std::string_view group) const { return Contains(groups, group); }

Attributes ResolveRequest(std::string_view method, const std::string& path,
                          const std::vector<std::pair<std::string, std::string>>& query) {
  Attributes a;
  a.path = path;
  for (char c : method) a.verb += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::vector<std::string> parts = SplitPath(path);
  if (parts.size() < 3 || (parts[0] != "api" && parts[0] != "apis")) return a;
  const bool groupless = parts[0] == "api";
  parts.erase(parts.begin());
  std::string group;
  if (!groupless) {
    if (parts.size() < 3) return a;
    group = parts[0];
    parts.erase(parts.begin());
  }
  Attributes r = a;
  r.resource_request = true;
  r.group = group;
  r.version = parts[0];
  parts.erase(parts.begin());
  if (parts[0] == "proxy" || parts[0] == "watch") {
    // A real server fails such a request with a 500; a non-resource
    // request is the closest this emulator gets.
    if (parts.size() < 2) return a;
    r.verb = parts[0];
    parts.erase(parts.begin());
  } else if (method == "POST") {
    r.verb = "create";
  } else if (method == "GET" || method == "HEAD") {
    r.verb = "get";
  } else if (method == "PUT") {
    r.verb = "update";
  } else if (method == "PATCH") {
    r.verb = "patch";
  } else if (method == "DELETE") {
    r.verb = "delete";
  } else {
    r.verb = "";
  }
  if (parts[0] == "namespaces") {
    if (parts.size() > 1) {
      r.ns = parts[1];
      if (parts.size() > 2 && parts[2] != "status" && parts[2] != "finalize") parts.erase(parts.begin(), parts.begin() + 2);
    }
  }
  if (parts.size() >= 3 && r.verb != "proxy") r.subresource = parts[2];
  if (parts.size() >= 2) r.name = parts[1];
  r.resource = parts[0];
  if (r.name.empty() && r.verb == "get") {
    // ListOptions from the query: watch is any value but "0"/"false", and
    // a fieldSelector metadata.name=X names the object.
    bool watch = false;
    bool seen_watch = false;
    std::string name;
    for (const auto& [k, v] : query) {
      if (k == "watch" && !seen_watch) {
        seen_watch = true;
        std::string lower;
        for (char c : v) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        watch = v != "0" && lower != "false";
      } else if (k == "fieldSelector" && name.empty()) {
        std::size_t start = 0;
        while (start <= v.size()) {
          const auto comma = v.find(',', start);
          const std::string term = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
          for (const char* prefix : {"metadata.name==", "metadata.name="}) {
            if (term.starts_with(prefix)) {
              name = term.substr(std::string_view(prefix).size());
              break;
            }
          }
          if (comma == std::string::npos) break;
          start = comma + 1;
        }
      }
    }
    r.verb = watch ? "watch" : "list";
    // path.IsValidPathSegmentName
    if (!name.empty() && name != "." && name != ".." && name.find_first_of("/%") == std::string::npos) r.name = name;
  }
  if (r.name.empty() && r.verb == "delete") r.verb = "deletecollection";
  return r;
}

Decision Authorize(const ObjectStore& store, const Attributes& a) {
  if (a.user.InGroup(kMastersGroup)) return {true, ""};
  Visitor visitor{store, a, {}, {}};
  if (auto crbs = store.List(std::string(kRbacGroup) + "/clusterrolebindings", std::nullopt)) {
    for (const ObjectPtr& b : crbs->objects) {
      visitor.VisitBinding(b->json, "");
      if (!visitor.allowed_by.empty()) return {true, "RBAC: allowed by " + visitor.allowed_by};
    }
  }
  if (!a.ns.empty()) {
    if (auto rbs = store.List(std::string(kRbacGroup) + "/rolebindings", std::nullopt)) {
      for (const ObjectPtr& b : rbs->objects) {
        if (b->ns != a.ns) continue;
        visitor.VisitBinding(b->json, a.ns);
        if (!visitor.allowed_by.empty()) return {true, "RBAC: allowed by " + visitor.allowed_by};
      }
    }
  }
  return {false, visitor.errors.empty() ? "" : "RBAC: " + Aggregate(visitor.errors)};
}

std::string ForbiddenMessage(const Attributes& a) {
  const std::string user = "User " + Quote(a.user.name);
  if (!a.resource_request) return user + " cannot " + a.verb + " path " + Quote(a.path);
  const std::string resource = a.subresource.empty() ? a.resource : a.resource + "/" + a.subresource;
  std::string msg = user + " cannot " + a.verb + " resource " + Quote(resource) + " in API group " + Quote(a.group);
  return a.ns.empty() ? msg + " at the cluster scope" : msg + " in the namespace " + Quote(a.ns);
}

std::vector<Json> BootstrapPolicy() {
  std::vector<Json> out;
  out.push_back(ClusterRole("cluster-admin",
                            Json::array({Json{{"apiGroups", {"*"}}, {"resources", {"*"}}, {"verbs", {"*"}}},
                                         Json{{"nonResourceURLs", {"*"}}, {"verbs", {"*"}}}})));
  out.push_back(ClusterRole(
      "system:basic-user",
      Json::array({Json{{"apiGroups", {"authorization.k8s.io"}},
                        {"resources", {"selfsubjectaccessreviews", "selfsubjectrulesreviews"}},
                        {"verbs", {"create"}}},
                   Json{{"apiGroups", {"authentication.k8s.io"}}, {"resources", {"selfsubjectreviews"}},
                        {"verbs", {"create"}}}})));
  out.push_back(ClusterRole("system:discovery",
                            Json::array({Json{{"nonResourceURLs",
                                               {"/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                                                "/openapi/*", "/readyz", "/version", "/version/"}},
                                              {"verbs", {"get"}}}})));
  out.push_back(ClusterRole(
      "system:public-info-viewer",
      Json::array({Json{{"nonResourceURLs", {"/healthz", "/livez", "/readyz", "/version", "/version/"}},
                        {"verbs", {"get"}}}})));
  out.push_back(GroupBinding("cluster-admin", {kMastersGroup}));
  out.push_back(GroupBinding("system:basic-user", {kAuthenticatedGroup}));
  out.push_back(GroupBinding("system:discovery", {kAuthenticatedGroup}));
  out.push_back(GroupBinding("system:public-info-viewer", {kAuthenticatedGroup, kUnauthenticatedGroup}));
  return out;
}

}  // namespace kubefold::emulator
