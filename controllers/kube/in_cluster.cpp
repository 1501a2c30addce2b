#include "controllers/kube/in_cluster.h"

#include <cstdlib>

#include "controllers/kube/internal/file_util.h"

namespace kubefold::kube {
namespace {

constexpr size_t kMaxFileBytes = 4u << 20;

std::optional<std::string> GetEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

Result<std::string> ReadServiceAccountFile(const std::string& path, std::string_view what) {
  Result<std::string> bytes = internal::ReadFileBounded(path, kMaxFileBytes, what);
  if (bytes.ok()) return bytes;
  return FailedPrecondition("in-cluster config: " + bytes.status().message());
}

}  // namespace

std::string JoinHostPort(std::string_view host, std::string_view port) {
  std::string out;
  if (host.find(':') != std::string_view::npos) {
    out = "[" + std::string(host) + "]";
  } else {
    out = std::string(host);
  }
  out += ":";
  out += port;
  return out;
}

Result<RestConfig> LoadInClusterConfig(const InClusterOptions& options) {
  std::function<std::optional<std::string>(const std::string&)> lookup = options.lookup_env;
  if (!lookup) lookup = GetEnv;
  const std::optional<std::string> host = lookup("KUBERNETES_SERVICE_HOST");
  const std::optional<std::string> port = lookup("KUBERNETES_SERVICE_PORT");
  if (!host || host->empty() || !port || port->empty()) {
    std::string missing;
    if (!host || host->empty()) missing = "KUBERNETES_SERVICE_HOST";
    if (!port || port->empty()) missing += missing.empty() ? "KUBERNETES_SERVICE_PORT" : " and KUBERNETES_SERVICE_PORT";
    return NotFound("not running in a Kubernetes cluster: " + missing +
                    " not set (in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT)");
  }
  bool port_ok = port->size() <= 5;
  int port_value = 0;
  for (char c : *port) {
    if (c < '0' || c > '9') port_ok = false;
    if (port_ok) port_value = port_value * 10 + (c - '0');
  }
  if (!port_ok || port_value < 1 || port_value > 65535) {
    return InvalidArgument("in-cluster config: KUBERNETES_SERVICE_PORT is not a port number: \"" + *port + "\"");
  }

  const std::string dir = options.service_account_dir;
  const std::string token_path = dir + "/token";
  Result<std::string> token = ReadServiceAccountFile(token_path, "service-account token");
  if (!token.ok()) return token.status();
  const std::string_view trimmed = internal::TrimWhitespace(*token);
  if (trimmed.empty()) return FailedPrecondition("in-cluster config: service-account token " + token_path + " is empty");

  const std::string ca_path = dir + "/ca.crt";
  Result<std::string> ca = ReadServiceAccountFile(ca_path, "service-account CA");
  if (!ca.ok()) return ca.status();
  if (!internal::LooksLikePem(*ca)) {
    return FailedPrecondition("in-cluster config: service-account CA " + ca_path + " holds no PEM block");
  }

  RestConfig rest;
  rest.server = "https://" + JoinHostPort(*host, *port);
  rest.ca_pem = std::move(*ca);
  rest.bearer_token = std::string(trimmed);
  rest.bearer_token_file = token_path;
  Result<std::string> ns = internal::ReadFileBounded(dir + "/namespace", kMaxFileBytes, "namespace");
  if (ns.ok()) {
    const std::string_view name = internal::TrimWhitespace(*ns);
    if (!name.empty()) rest.namespace_name = std::string(name);
  }
  return rest;
}

}  // namespace kubefold::kube
