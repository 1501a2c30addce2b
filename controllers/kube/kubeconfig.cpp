#include "controllers/kube/kubeconfig.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <exception>
#include <filesystem>
#include <new>
#include <set>
#include <utility>

#include "controllers/kube/internal/base64.h"
#include "controllers/kube/internal/file_util.h"

namespace kubefold::kube {
namespace {

constexpr size_t kMaxKubeconfigBytes = 16u << 20;
constexpr size_t kMaxReferencedFileBytes = 4u << 20;

// ---------------------------------------------------------------------------
// Parsing. yaml-cpp throws; so does this parser internally (FieldError), and
// ParseKubeconfig catches both at its edge: nothing escapes this file.
// ---------------------------------------------------------------------------

struct FieldError {
  std::string field;
  std::string message;
};

std::string Join(const std::string& parent, std::string_view key) {
  if (parent.empty()) return std::string(key);
  return parent + "." + std::string(key);
}

std::string Index(const std::string& parent, size_t i) { return parent + "[" + std::to_string(i) + "]"; }

class Parser {
 public:
  Parser(std::string_view origin, std::string_view base_dir) : origin_(origin), base_dir_(base_dir) {}

  Kubeconfig Parse(const YAML::Node& root) {
    Kubeconfig config;
    config.files.push_back(origin_);
    if (!root.IsDefined() || root.IsNull()) return config;  // an empty file is an empty config
    RequireMap(root, "top level");

    ParseNamedList(root, "clusters", "cluster", [&](const YAML::Node& n, const std::string& field, std::string name) {
      config.clusters.emplace(std::move(name), ParseCluster(n, field));
    }, [&](const std::string& name) { return config.clusters.count(name) > 0; });
    ParseNamedList(root, "users", "user", [&](const YAML::Node& n, const std::string& field, std::string name) {
      config.users.emplace(std::move(name), ParseUser(n, field));
    }, [&](const std::string& name) { return config.users.count(name) > 0; });
    ParseNamedList(root, "contexts", "context", [&](const YAML::Node& n, const std::string& field, std::string name) {
      config.contexts.emplace(std::move(name), ParseContext(n, field));
    }, [&](const std::string& name) { return config.contexts.count(name) > 0; });
    config.current_context = String(root, "current-context", "");
    if (!config.current_context.empty()) config.current_context_origin = origin_;
    // `preferences`, `extensions`, `apiVersion` and `kind` carry nothing a
    // client acts on; unknown fields are ignored, as kubectl ignores them.
    return config;
  }

 private:
  [[noreturn]] static void Fail(std::string field, std::string message) {
    throw FieldError{std::move(field), std::move(message)};
  }

  static void RequireMap(const YAML::Node& n, const std::string& field) {
    if (!n.IsMap()) Fail(field, "expected a mapping");
  }

  // The value under `key` of mapping `map`, or an undefined node.
  static YAML::Node Child(const YAML::Node& map, std::string_view key) {
    const YAML::Node& const_map = map;
    return const_map[std::string(key)];
  }

  static bool Absent(const YAML::Node& n) { return !n.IsDefined() || n.IsNull(); }

  static std::string String(const YAML::Node& map, std::string_view key, const std::string& parent) {
    const YAML::Node n = Child(map, key);
    if (Absent(n)) return {};
    if (!n.IsScalar()) Fail(Join(parent, key), "expected a string");
    return n.Scalar();
  }

  static bool Bool(const YAML::Node& map, std::string_view key, const std::string& parent) {
    const YAML::Node n = Child(map, key);
    if (Absent(n)) return false;
    bool value = false;
    if (!n.IsScalar() || !YAML::convert<bool>::decode(n, value)) Fail(Join(parent, key), "expected true or false");
    return value;
  }

  static std::vector<std::string> StringList(const YAML::Node& map, std::string_view key, const std::string& parent) {
    return StringListValue(Child(map, key), Join(parent, key));
  }

  static std::vector<std::string> StringListValue(const YAML::Node& n, const std::string& field) {
    std::vector<std::string> out;
    if (Absent(n)) return out;
    if (!n.IsSequence()) Fail(field, "expected a list of strings");
    out.reserve(n.size());
    for (size_t i = 0; i < n.size(); ++i) {
      const YAML::Node item = n[i];
      if (!item.IsScalar()) Fail(Index(field, i), "expected a string");
      out.push_back(item.Scalar());
    }
    return out;
  }

  // A base64 `*-data` field, decoded.
  static std::string Base64(const YAML::Node& map, std::string_view key, const std::string& parent) {
    const std::string text = String(map, key, parent);
    if (text.empty()) return {};
    std::optional<std::string> bytes = internal::Base64Decode(text);
    if (!bytes) Fail(Join(parent, key), "not valid base64");
    return std::move(*bytes);
  }

  // A path field, resolved against the kubeconfig's directory.
  std::string Path(const YAML::Node& map, std::string_view key, const std::string& parent) const {
    return ResolvePath(String(map, key, parent));
  }

  std::string ResolvePath(const std::string& path) const {
    if (path.empty() || base_dir_.empty() || path.front() == '/') return path;
    return (std::filesystem::path(base_dir_) / path).lexically_normal().string();
  }

  template <class Add, class Exists>
  void ParseNamedList(const YAML::Node& root, std::string_view list_key, std::string_view item_key, Add add,
                      Exists exists) {
    const YAML::Node list = Child(root, list_key);
    if (Absent(list)) return;
    const std::string list_field(list_key);
    if (!list.IsSequence()) Fail(list_field, "expected a list");
    std::map<std::string, size_t> seen;
    for (size_t i = 0; i < list.size(); ++i) {
      const YAML::Node entry = list[i];
      const std::string field = Index(list_field, i);
      RequireMap(entry, field);
      std::string name = String(entry, "name", field);
      if (name.empty()) Fail(Join(field, "name"), "missing or empty");
      if (exists(name)) {
        // kubectl refuses duplicate names within one file too.
        Fail(Join(field, "name"), "duplicate name \"" + name + "\" (also " + Index(list_field, seen[name]) + ")");
      }
      seen[name] = i;
      const YAML::Node body = Child(entry, item_key);
      const std::string body_field = Join(field, item_key);
      if (!Absent(body)) RequireMap(body, body_field);
      add(body, body_field, std::move(name));
    }
  }

  KubeconfigCluster ParseCluster(const YAML::Node& n, const std::string& f) const {
    KubeconfigCluster c;
    c.origin = origin_;
    if (Absent(n)) return c;
    c.server = String(n, "server", f);
    c.tls_server_name = String(n, "tls-server-name", f);
    c.insecure_skip_tls_verify = Bool(n, "insecure-skip-tls-verify", f);
    c.certificate_authority = Path(n, "certificate-authority", f);
    c.certificate_authority_data = Base64(n, "certificate-authority-data", f);
    c.proxy_url = String(n, "proxy-url", f);
    c.disable_compression = Bool(n, "disable-compression", f);
    return c;
  }

  KubeconfigUser ParseUser(const YAML::Node& n, const std::string& f) const {
    KubeconfigUser u;
    u.origin = origin_;
    if (Absent(n)) return u;
    u.client_certificate = Path(n, "client-certificate", f);
    u.client_certificate_data = Base64(n, "client-certificate-data", f);
    u.client_key = Path(n, "client-key", f);
    u.client_key_data = Base64(n, "client-key-data", f);
    u.token = String(n, "token", f);
    u.token_file = Path(n, "tokenFile", f);
    u.impersonate.user_name = String(n, "as", f);
    u.impersonate.uid = String(n, "as-uid", f);
    u.impersonate.groups = StringList(n, "as-groups", f);
    const YAML::Node extra = Child(n, "as-user-extra");
    if (!Absent(extra)) {
      const std::string field = Join(f, "as-user-extra");
      RequireMap(extra, field);
      for (auto it = extra.begin(); it != extra.end(); ++it) {
        if (!it->first.IsScalar()) Fail(field, "keys must be strings");
        const std::string key = it->first.Scalar();
        u.impersonate.extra[key] = StringListValue(it->second, Join(field, key));
      }
    }
    u.username = String(n, "username", f);
    u.password = String(n, "password", f);

    const YAML::Node provider = Child(n, "auth-provider");
    if (!Absent(provider)) {
      const std::string field = Join(f, "auth-provider");
      RequireMap(provider, field);
      KubeconfigAuthProvider p;
      p.name = String(provider, "name", field);
      const YAML::Node config = Child(provider, "config");
      if (!Absent(config)) {
        const std::string config_field = Join(field, "config");
        RequireMap(config, config_field);
        for (auto it = config.begin(); it != config.end(); ++it) {
          if (!it->first.IsScalar() || !(it->second.IsScalar() || it->second.IsNull())) {
            Fail(config_field, "expected a mapping of strings to strings");
          }
          p.config[it->first.Scalar()] = it->second.IsNull() ? std::string() : it->second.Scalar();
        }
      }
      u.auth_provider = std::move(p);
    }

    const YAML::Node exec = Child(n, "exec");
    if (!Absent(exec)) u.exec = ParseExec(exec, Join(f, "exec"));
    return u;
  }

  ExecConfig ParseExec(const YAML::Node& n, const std::string& f) const {
    RequireMap(n, f);
    ExecConfig e;
    e.command = String(n, "command", f);
    // kubectl resolves the command only when it is a path, not a PATH name.
    if (e.command.find('/') != std::string::npos) e.command = ResolvePath(e.command);
    e.args = StringList(n, "args", f);
    const YAML::Node env = Child(n, "env");
    if (!Absent(env)) {
      const std::string field = Join(f, "env");
      if (!env.IsSequence()) Fail(field, "expected a list of {name, value}");
      for (size_t i = 0; i < env.size(); ++i) {
        const YAML::Node item = env[i];
        const std::string item_field = Index(field, i);
        RequireMap(item, item_field);
        e.env.push_back(ExecEnvVar{String(item, "name", item_field), String(item, "value", item_field)});
      }
    }
    e.api_version = String(n, "apiVersion", f);
    e.install_hint = String(n, "installHint", f);
    e.provide_cluster_info = Bool(n, "provideClusterInfo", f);
    const std::string mode = String(n, "interactiveMode", f);
    if (mode == "Never") {
      e.interactive_mode = ExecInteractiveMode::kNever;
    } else if (mode == "IfAvailable") {
      e.interactive_mode = ExecInteractiveMode::kIfAvailable;
    } else if (mode == "Always") {
      e.interactive_mode = ExecInteractiveMode::kAlways;
    } else if (!mode.empty()) {
      Fail(Join(f, "interactiveMode"), "must be Never, IfAvailable or Always, not \"" + mode + "\"");
    } else if (e.api_version == kExecApiVersionV1Beta1 || e.api_version == kExecApiVersionV1Alpha1) {
      // clientcmd's SetDefaults_ExecConfig, for backwards compatibility.
      e.interactive_mode = ExecInteractiveMode::kIfAvailable;
    }
    return e;
  }

  KubeconfigContext ParseContext(const YAML::Node& n, const std::string& f) const {
    KubeconfigContext c;
    c.origin = origin_;
    if (Absent(n)) return c;
    c.cluster = String(n, "cluster", f);
    c.user = String(n, "user", f);
    c.namespace_name = String(n, "namespace", f);
    return c;
  }

  std::string origin_;
  std::string base_dir_;
};

// ---------------------------------------------------------------------------
// Resolution.
// ---------------------------------------------------------------------------

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

std::string Prefix(std::string_view origin) { return "kubeconfig " + std::string(origin) + ": "; }

std::string JoinList(const std::vector<std::string>& items, std::string_view sep) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += sep;
    out += item;
  }
  return out;
}

// Why `server` is not a usable URL, or empty when it is.
std::string ServerUrlProblem(std::string_view url) {
  for (char c : url) {
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return "must not contain spaces or control characters";
  }
  auto starts_with_ci = [&](std::string_view prefix) {
    if (url.size() < prefix.size()) return false;
    for (size_t i = 0; i < prefix.size(); ++i) {
      char c = url[i];
      if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
      if (c != prefix[i]) return false;
    }
    return true;
  };
  std::string_view rest;
  if (starts_with_ci("https://")) {
    rest = url.substr(8);
  } else if (starts_with_ci("http://")) {
    rest = url.substr(7);
  } else {
    return "must start with https:// or http://";
  }
  const size_t authority_end = rest.find_first_of("/?#");
  const std::string_view authority = rest.substr(0, authority_end);
  if (authority_end != std::string_view::npos && rest.find_first_of("?#") != std::string_view::npos) {
    return "must not have a query or fragment";
  }
  if (authority.find('@') != std::string_view::npos) {
    return "must not contain user information (credentials belong in users[])";
  }
  std::string_view host;
  std::string_view port;
  bool has_port = false;
  if (!authority.empty() && authority.front() == '[') {
    const size_t close = authority.find(']');
    if (close == std::string_view::npos) return "has an unterminated IPv6 address";
    host = authority.substr(1, close - 1);
    const std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return "has characters after the IPv6 address";
      has_port = true;
      port = after.substr(1);
    }
  } else {
    const size_t colon = authority.find(':');
    host = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port = authority.substr(colon + 1);
      if (port.find(':') != std::string_view::npos) return "has an IPv6 address without [brackets]";
    }
  }
  if (host.empty()) return "has no host";
  if (has_port) {
    if (port.empty() || port.size() > 5) return "has an invalid port";
    int value = 0;
    for (char c : port) {
      if (c < '0' || c > '9') return "has an invalid port";
      value = value * 10 + (c - '0');
    }
    if (value < 1 || value > 65535) return "has an invalid port";
  }
  return {};
}

bool IsDns1123Label(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : s) {
    if (!alnum(c) && c != '-') return false;
  }
  return alnum(s.front()) && alnum(s.back());
}

// Reads a file the config names. A missing file is a broken config, not a
// missing context: every failure but "too large" becomes kFailedPrecondition.
Result<std::string> ReadReferencedFile(const std::string& prefix, const std::string& path, std::string_view what) {
  Result<std::string> bytes = internal::ReadFileBounded(path, kMaxReferencedFileBytes, what);
  if (bytes.ok()) return bytes;
  const StatusCode code = bytes.status().code() == StatusCode::kResourceExhausted ? StatusCode::kResourceExhausted
                                                                                 : StatusCode::kFailedPrecondition;
  return Status(code, prefix + bytes.status().message());
}

// PEM bytes from a `*-data` field or else its path field. `field` names the
// path variant, e.g. "client-key".
Result<std::string> PemFromDataOrFile(const std::string& prefix, const std::string& data, const std::string& path,
                                      std::string_view field) {
  std::string bytes;
  if (!data.empty()) {
    bytes = data;
    if (!internal::LooksLikePem(bytes)) {
      return InvalidArgument(prefix + std::string(field) + "-data: no PEM block (-----BEGIN ...) in it");
    }
    return bytes;
  }
  if (path.empty()) return std::string();
  Result<std::string> read = ReadReferencedFile(prefix, path, field);
  if (!read.ok()) return read.status();
  if (!internal::LooksLikePem(*read)) {
    return InvalidArgument(prefix + std::string(field) + " " + path + ": no PEM block (-----BEGIN ...) in it");
  }
  return read;
}

Status ResolveExec(const std::string& prefix, const ExecConfig& exec) {
  if (exec.command.empty()) return InvalidArgument(prefix + "exec.command: not set");
  if (exec.api_version.empty()) {
    return InvalidArgument(prefix + "exec.apiVersion: not set (use " + kExecApiVersionV1 + ")");
  }
  if (exec.api_version == kExecApiVersionV1Alpha1) {
    return FailedPrecondition(prefix + "exec.apiVersion " + kExecApiVersionV1Alpha1 +
                              " is not supported (client-go dropped it too); use " + kExecApiVersionV1);
  }
  if (exec.api_version != kExecApiVersionV1 && exec.api_version != kExecApiVersionV1Beta1) {
    return InvalidArgument(prefix + "exec.apiVersion: " + Quote(exec.api_version) + " is not " + kExecApiVersionV1 +
                           " or " + kExecApiVersionV1Beta1);
  }
  if (!exec.interactive_mode) {
    return InvalidArgument(prefix + "exec.interactiveMode: must be set for apiVersion " + exec.api_version +
                           " (Never or IfAvailable)");
  }
  if (*exec.interactive_mode == ExecInteractiveMode::kAlways) {
    return FailedPrecondition(prefix +
                              "exec.interactiveMode Always needs a terminal, and kubefold runs credential plugins "
                              "without one; use Never or IfAvailable");
  }
  for (size_t i = 0; i < exec.env.size(); ++i) {
    if (exec.env[i].name.empty()) {
      return InvalidArgument(prefix + "exec.env[" + std::to_string(i) + "].name: not set");
    }
  }
  return Status::Ok();
}

}  // namespace

Result<Kubeconfig> ParseKubeconfig(std::string_view text, std::string_view origin, std::string_view base_dir) {
  const std::string prefix = Prefix(origin);
  try {
    const YAML::Node root = YAML::Load(std::string(text));
    return Parser(origin, base_dir).Parse(root);
  } catch (const FieldError& e) {
    return InvalidArgument(prefix + e.field + ": " + e.message);
  } catch (const YAML::Exception& e) {
    // e.msg is yaml-cpp's fixed description; it never quotes the document.
    std::string where;
    if (!e.mark.is_null()) {
      where = " at line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1);
    }
    return InvalidArgument(prefix + "not valid YAML" + where + ": " + e.msg);
  } catch (const std::bad_alloc&) {
    return ResourceExhausted(prefix + "out of memory while parsing");
  } catch (const std::exception&) {
    return InvalidArgument(prefix + "cannot be parsed as YAML");
  }
}

Result<Kubeconfig> LoadKubeconfigFile(const std::string& path) {
  Result<std::string> text = internal::ReadFileBounded(path, kMaxKubeconfigBytes, "kubeconfig");
  if (!text.ok()) return text.status();
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) absolute = path;
  return ParseKubeconfig(*text, path, absolute.parent_path().string());
}

Result<Kubeconfig> LoadKubeconfigFiles(const std::vector<std::string>& paths) {
  if (paths.empty()) return InvalidArgument("kubeconfig: no files given");
  Kubeconfig merged;
  std::set<std::string> seen;
  std::vector<std::string> missing;
  for (const std::string& path : paths) {
    if (path.empty() || !seen.insert(path).second) continue;
    Result<Kubeconfig> one = LoadKubeconfigFile(path);
    if (!one.ok()) {
      if (one.status().code() == StatusCode::kNotFound) {
        missing.push_back(path);
        continue;
      }
      return one.status();
    }
    // First file to define a name wins, for each kind of entry.
    for (auto& [name, entry] : one->clusters) merged.clusters.try_emplace(name, std::move(entry));
    for (auto& [name, entry] : one->users) merged.users.try_emplace(name, std::move(entry));
    for (auto& [name, entry] : one->contexts) merged.contexts.try_emplace(name, std::move(entry));
    if (merged.current_context.empty() && !one->current_context.empty()) {
      merged.current_context = one->current_context;
      merged.current_context_origin = path;
    }
    merged.files.push_back(path);
  }
  if (merged.files.empty()) {
    return NotFound("kubeconfig: none of the files exist: " + JoinList(missing, ", "));
  }
  return merged;
}

std::vector<std::string> SplitKubeconfigPaths(std::string_view value) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= value.size()) {
    size_t end = value.find(':', start);
    if (end == std::string_view::npos) end = value.size();
    if (end > start) out.emplace_back(value.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

Result<std::vector<std::string>> DefaultKubeconfigPaths() {
  const char* env = std::getenv("KUBECONFIG");
  if (env != nullptr) {
    std::vector<std::string> paths = SplitKubeconfigPaths(env);
    if (!paths.empty()) return paths;
  }
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') {
    return FailedPrecondition("kubeconfig: neither KUBECONFIG nor HOME is set");
  }
  return std::vector<std::string>{std::string(home) + "/.kube/config"};
}

Result<Kubeconfig> LoadDefaultKubeconfig() {
  Result<std::vector<std::string>> paths = DefaultKubeconfigPaths();
  if (!paths.ok()) return paths.status();
  return LoadKubeconfigFiles(*paths);
}

Result<RestConfig> ResolveContext(const Kubeconfig& config, std::string_view context_name) {
  const std::string files = config.files.empty() ? std::string("(no file)") : JoinList(config.files, ":");
  std::string name(context_name);
  if (name.empty()) name = config.current_context;
  if (name.empty()) {
    return FailedPrecondition(Prefix(files) + "no context given and current-context is not set");
  }
  const auto context_it = config.contexts.find(name);
  if (context_it == config.contexts.end()) {
    std::string message = Prefix(files) + "context " + Quote(name) + " not found";
    if (context_name.empty()) message += " (named by current-context in " + config.current_context_origin + ")";
    return NotFound(std::move(message));
  }
  const KubeconfigContext& context = context_it->second;
  const std::string context_prefix = Prefix(context.origin) + "context " + Quote(name) + ": ";

  if (context.cluster.empty()) return InvalidArgument(context_prefix + "cluster not set");
  const auto cluster_it = config.clusters.find(context.cluster);
  if (cluster_it == config.clusters.end()) {
    return InvalidArgument(context_prefix + "cluster " + Quote(context.cluster) + " not found");
  }
  if (context.user.empty()) return InvalidArgument(context_prefix + "user not set");
  const auto user_it = config.users.find(context.user);
  if (user_it == config.users.end()) {
    return InvalidArgument(context_prefix + "user " + Quote(context.user) + " not found");
  }
  if (!context.namespace_name.empty() && !IsDns1123Label(context.namespace_name)) {
    return InvalidArgument(context_prefix + "namespace " + Quote(context.namespace_name) +
                           " is not a DNS-1123 label (lower-case letters, digits and '-', at most 63)");
  }

  RestConfig rest;
  rest.context_name = name;
  rest.cluster_name = context.cluster;
  rest.user_name = context.user;
  if (!context.namespace_name.empty()) rest.namespace_name = context.namespace_name;

  // The cluster.
  const KubeconfigCluster& cluster = cluster_it->second;
  const std::string cluster_prefix = Prefix(cluster.origin) + "cluster " + Quote(context.cluster) + ": ";
  if (cluster.server.empty()) return InvalidArgument(cluster_prefix + "server not set");
  if (std::string problem = ServerUrlProblem(cluster.server); !problem.empty()) {
    return InvalidArgument(cluster_prefix + "server " + problem);
  }
  if (!cluster.proxy_url.empty()) {
    return FailedPrecondition(cluster_prefix +
                              "proxy-url is not supported by kubefold; reach the API server directly or remove it");
  }
  rest.server = cluster.server;
  rest.tls_server_name = cluster.tls_server_name;
  rest.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
  rest.disable_compression = cluster.disable_compression;
  {
    Result<std::string> ca = PemFromDataOrFile(cluster_prefix, cluster.certificate_authority_data,
                                               cluster.certificate_authority, "certificate-authority");
    if (!ca.ok()) return ca.status();
    rest.ca_pem = std::move(*ca);
  }
  if (rest.insecure_skip_tls_verify && !rest.ca_pem.empty()) {
    return InvalidArgument(cluster_prefix +
                           "insecure-skip-tls-verify and a certificate authority are both set; choose one");
  }

  // The user.
  const KubeconfigUser& user = user_it->second;
  const std::string user_prefix = Prefix(user.origin) + "user " + Quote(context.user) + ": ";
  if (user.auth_provider) {
    return FailedPrecondition(user_prefix + "auth-provider " + Quote(user.auth_provider->name) +
                              " is not supported; use an exec credential plugin (users[].user.exec) instead");
  }
  {
    Result<std::string> cert = PemFromDataOrFile(user_prefix, user.client_certificate_data, user.client_certificate,
                                                 "client-certificate");
    if (!cert.ok()) return cert.status();
    Result<std::string> key = PemFromDataOrFile(user_prefix, user.client_key_data, user.client_key, "client-key");
    if (!key.ok()) return key.status();
    if (cert->empty() != key->empty()) {
      return InvalidArgument(user_prefix + (cert->empty() ? "client-key is set without client-certificate"
                                                          : "client-certificate is set without client-key"));
    }
    rest.client_certificate_pem = std::move(*cert);
    rest.client_key_pem = std::move(*key);
  }
  const bool basic = !user.username.empty() || !user.password.empty();
  if (!user.token.empty() && basic) {
    return InvalidArgument(user_prefix + "more than one authentication method (token and username/password)");
  }
  if (user.exec && (!user.token.empty() || !user.token_file.empty() || basic)) {
    return InvalidArgument(user_prefix +
                           "more than one authentication method (exec and token, tokenFile or username/password)");
  }
  if (!user.token.empty()) {
    rest.bearer_token = user.token;  // `token` wins over `tokenFile` [KCFG]
  } else if (!user.token_file.empty()) {
    Result<std::string> token = ReadReferencedFile(user_prefix, user.token_file, "tokenFile");
    if (!token.ok()) return token.status();
    const std::string_view trimmed = internal::TrimWhitespace(*token);
    if (trimmed.empty()) return FailedPrecondition(user_prefix + "tokenFile " + user.token_file + ": is empty");
    rest.bearer_token = std::string(trimmed);
    rest.bearer_token_file = user.token_file;
  }
  rest.username = user.username;
  rest.password = user.password;
  if (user.exec) {
    if (Status s = ResolveExec(user_prefix, *user.exec); !s.ok()) return s;
    rest.exec = *user.exec;
  }
  const Impersonation& as = user.impersonate;
  if (as.user_name.empty() && (!as.uid.empty() || !as.groups.empty() || !as.extra.empty())) {
    return InvalidArgument(user_prefix + "as-uid, as-groups and as-user-extra need `as` (the user to impersonate)");
  }
  rest.impersonate = as;
  return rest;
}

}  // namespace kubefold::kube
