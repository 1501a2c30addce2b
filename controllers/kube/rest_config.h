// RestConfig: everything a Kubernetes client needs to reach one API server and
// prove who it is, resolved from a kubeconfig context (kubeconfig.h) or from a
// pod's service account (in_cluster.h). It is what client-go calls rest.Config,
// minus the transport knobs (QPS, timeouts) that belong to the REST client.
//
// A RestConfig holds secrets (client_key_pem, bearer_token, password). Never
// log it; kubefold's own error messages name fields, never their values.
//
// Thread-safety: plain values; distinct objects may be used from distinct
// threads without synchronization, one object may be read concurrently.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace kubefold::kube {

// Who the client asks the API server to act as (kubeconfig `as`, `as-uid`,
// `as-groups`, `as-user-extra`; HTTP Impersonate-* headers). The API server
// refuses groups, uid or extra without a user name, and so does kubeconfig
// resolution.
struct Impersonation {
  std::string user_name;                                  // `as`
  std::string uid;                                        // `as-uid`
  std::vector<std::string> groups;                        // `as-groups`
  std::map<std::string, std::vector<std::string>> extra;  // `as-user-extra`

  bool empty() const { return user_name.empty() && uid.empty() && groups.empty() && extra.empty(); }
  friend bool operator==(const Impersonation&, const Impersonation&) = default;
};

// kubeconfig `exec.interactiveMode`. An operator has no terminal, so the exec
// token source runs every plugin with standard input closed (/dev/null), as
// kubectl does when stdin is not a terminal: kNever and kIfAvailable both run
// the plugin non-interactively; kAlways cannot be honoured and resolution
// rejects it.
enum class ExecInteractiveMode { kNever, kIfAvailable, kAlways };

struct ExecEnvVar {
  std::string name;
  std::string value;
  friend bool operator==(const ExecEnvVar&, const ExecEnvVar&) = default;
};

// A credential plugin (kubeconfig `users[].user.exec`), run by
// ExecCredentialSource (token_source.h).
struct ExecConfig {
  // Program to run. A relative path containing '/' has been resolved against
  // the kubeconfig file's directory (as kubectl does); a bare name is looked
  // up in PATH when the plugin runs.
  std::string command;
  std::vector<std::string> args;
  std::vector<ExecEnvVar> env;  // added to (and overriding) the environment
  // "client.authentication.k8s.io/v1" or ".../v1beta1" once resolved.
  std::string api_version;
  std::string install_hint;  // shown when `command` cannot be found
  bool provide_cluster_info = false;
  // Empty only before resolution: kubeconfig requires it unless api_version
  // is v1alpha1/v1beta1, where it defaults to kIfAvailable.
  std::optional<ExecInteractiveMode> interactive_mode;

  friend bool operator==(const ExecConfig&, const ExecConfig&) = default;
};

// Constants of the ExecCredential API.
inline constexpr char kExecApiVersionV1[] = "client.authentication.k8s.io/v1";
inline constexpr char kExecApiVersionV1Beta1[] = "client.authentication.k8s.io/v1beta1";
inline constexpr char kExecApiVersionV1Alpha1[] = "client.authentication.k8s.io/v1alpha1";

struct RestConfig {
  // Base URL of the API server, as written in the kubeconfig (validated:
  // http:// or https://, a host, an optional numeric port, an optional path).
  std::string server;

  // TLS. An empty ca_pem means "the system's trust store". ca_pem and
  // insecure_skip_tls_verify are never both set (resolution rejects it, as
  // client-go does).
  std::string tls_server_name;  // SNI and the name verified; empty: server's host
  bool insecure_skip_tls_verify = false;
  std::string ca_pem;                  // PEM bytes, read from data or file
  std::string client_certificate_pem;  // PEM; set together with client_key_pem
  std::string client_key_pem;          // PEM; SECRET

  // Bearer token. bearer_token is the token as of resolution; when
  // bearer_token_file is set the file is the source of truth and is re-read
  // (CachedFileTokenSource, token_source.h). Use NewTokenSource() rather than
  // reading these directly.
  std::string bearer_token;  // SECRET
  std::string bearer_token_file;

  // HTTP basic auth, carried as the kubeconfig gives it. What the transport
  // does with it: it sends `Authorization: Basic` only over https (never in
  // clear over http://) and only when no bearer token or exec plugin is
  // configured — resolution already rejects a user that sets both a token and
  // a user name/password, as kubectl does. Most clusters disable basic auth
  // (removed from kube-apiserver in 1.19); it is kept for proxies that use it.
  std::string username;
  std::string password;  // SECRET

  std::optional<ExecConfig> exec;  // credential plugin; see ExecCredentialSource

  bool disable_compression = false;  // do not ask for gzip responses
  std::string namespace_name = "default";  // the context's namespace
  Impersonation impersonate;

  // Where this came from, for messages: the context, cluster and user names
  // (empty for in-cluster config).
  std::string context_name;
  std::string cluster_name;
  std::string user_name;
};

}  // namespace kubefold::kube
