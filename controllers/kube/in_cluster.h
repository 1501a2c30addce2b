// In-cluster configuration: how a pod reaches its own API server
// (k8s-wire-spec.md §4.2, client-go rest.InClusterConfig). The server is
// "https://" + JoinHostPort($KUBERNETES_SERVICE_HOST, $KUBERNETES_SERVICE_PORT);
// the token, CA and namespace come from the service-account directory that
// the kubelet mounts into the pod.
//
// Thread-safety: reentrant. The default environment lookup calls getenv(),
// which is unsafe only against a concurrent setenv().
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "controllers/kube/rest_config.h"
#include "state/status.h"

namespace kubefold::kube {

inline constexpr char kServiceAccountDir[] = "/var/run/secrets/kubernetes.io/serviceaccount";

struct InClusterOptions {
  // Where token, ca.crt and namespace live.
  std::string service_account_dir = kServiceAccountDir;
  // Environment lookup; empty means getenv(). An unset or empty variable is
  // "missing", as in client-go.
  std::function<std::optional<std::string>(const std::string& name)> lookup_env;
};

// Go's net.JoinHostPort: "host:port", with the host in brackets when it
// contains a ':' (an IPv6 address), e.g. "[fd00::1]:443".
std::string JoinHostPort(std::string_view host, std::string_view port);

// Builds the in-cluster RestConfig: server, ca_pem (from ca.crt),
// bearer_token (the token file's content, trimmed) with bearer_token_file set
// so that NewTokenSource() re-reads it as the kubelet rotates it, and
// namespace_name from the `namespace` file ("default" when that file is
// missing or empty).
// Errors:
//   kNotFound            not in a cluster: KUBERNETES_SERVICE_HOST or
//                        KUBERNETES_SERVICE_PORT is unset or empty. Only this
//                        case returns kNotFound (see IsNotInCluster), so a
//                        caller can fall back to a kubeconfig.
//   kFailedPrecondition  the token or ca.crt cannot be read, the token is
//                        empty, or ca.crt holds no PEM block. (client-go
//                        only logs a bad CA and falls back to the system
//                        roots, which cannot verify a cluster's own CA; an
//                        error says more.)
//   kInvalidArgument     KUBERNETES_SERVICE_PORT is not a port number.
// Reads three small files; allocates.
Result<RestConfig> LoadInClusterConfig(const InClusterOptions& options = {});

// Whether `status` is LoadInClusterConfig's "not running in a cluster".
inline bool IsNotInCluster(const Status& status) { return status.code() == StatusCode::kNotFound; }

}  // namespace kubefold::kube
