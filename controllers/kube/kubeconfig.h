// Kubeconfig: the model of a kubeconfig file (k8s-wire-spec.md §4.1, client-go
// clientcmd/api/v1/types.go), loading one file or a KUBECONFIG list merged as
// kubectl merges it, and resolving a context into a RestConfig.
//
// Parsing is lenient where kubectl is (unknown fields are ignored, an empty
// file is an empty config, `null` means "not set") and strict where a mistake
// would otherwise surface later as a confusing TLS or auth failure: every
// error is a Status whose message names the file and the field, e.g.
//   kubeconfig /home/me/.kube/config: users[1].user.client-key-data: not valid base64
// Messages never contain a token, password or key value.
//
// Thread-safety: the functions are reentrant; Kubeconfig is a plain value.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controllers/kube/rest_config.h"
#include "state/status.h"

namespace kubefold::kube {

// `clusters[].cluster`. Paths are absolute once a file has been loaded
// (relative ones resolve against the kubeconfig's directory, as kubectl does).
struct KubeconfigCluster {
  std::string server;
  std::string tls_server_name;
  bool insecure_skip_tls_verify = false;
  std::string certificate_authority;       // path
  std::string certificate_authority_data;  // decoded bytes (PEM)
  std::string proxy_url;                   // parsed; unsupported at resolution
  bool disable_compression = false;

  std::string origin;  // the file (or name) this entry was read from
};

// `users[].user.auth-provider`: parsed so that resolution can say it is
// unsupported (and that `exec` replaces it).
struct KubeconfigAuthProvider {
  std::string name;
  std::map<std::string, std::string> config;  // may hold SECRETS
};

// `users[].user`.
struct KubeconfigUser {
  std::string client_certificate;       // path
  std::string client_certificate_data;  // decoded bytes (PEM)
  std::string client_key;               // path
  std::string client_key_data;          // decoded bytes (PEM); SECRET
  std::string token;                    // SECRET
  std::string token_file;               // `tokenFile`; path
  Impersonation impersonate;            // as, as-uid, as-groups, as-user-extra
  std::string username;
  std::string password;  // SECRET
  std::optional<KubeconfigAuthProvider> auth_provider;
  std::optional<ExecConfig> exec;  // interactive_mode defaulted as kubectl does

  std::string origin;
};

// `contexts[].context`.
struct KubeconfigContext {
  std::string cluster;
  std::string user;
  std::string namespace_name;  // `namespace`

  std::string origin;
};

struct Kubeconfig {
  std::map<std::string, KubeconfigCluster> clusters;
  std::map<std::string, KubeconfigUser> users;
  std::map<std::string, KubeconfigContext> contexts;
  std::string current_context;
  std::string current_context_origin;  // the file that set current_context

  // The files merged into this config, in precedence order (existing ones).
  std::vector<std::string> files;
};

// Parses kubeconfig YAML `text`. `origin` names the source in messages and in
// each entry's `origin`; relative paths (certificate-authority,
// client-certificate, client-key, tokenFile, and an exec command containing
// '/') are joined to `base_dir` when it is non-empty and left as they are
// otherwise.
// Errors: kInvalidArgument (YAML syntax, wrong types, bad base64, missing or
// duplicate names, a malformed exec section), message naming origin and field.
// Allocates; O(size of text).
Result<Kubeconfig> ParseKubeconfig(std::string_view text, std::string_view origin,
                                   std::string_view base_dir = {});

// Reads and parses one file; relative paths resolve against the absolute form
// of the file's directory. Files over 16 MiB are refused.
// Errors: kNotFound (no such file), kFailedPrecondition (unreadable),
// kResourceExhausted (too large), and ParseKubeconfig's.
Result<Kubeconfig> LoadKubeconfigFile(const std::string& path);

// Merges the files as kubectl merges KUBECONFIG: the list is deduplicated;
// files that do not exist are skipped; for clusters, users and contexts the
// first file defining a name wins (the whole entry); current-context comes
// from the first file that sets it.
// Errors: kNotFound if `paths` has no existing file (the message lists them),
// kInvalidArgument if `paths` is empty, and any error of LoadKubeconfigFile
// for a file that exists (a broken file is never skipped silently).
Result<Kubeconfig> LoadKubeconfigFiles(const std::vector<std::string>& paths);

// Splits a KUBECONFIG value on ':' dropping empty entries.
std::vector<std::string> SplitKubeconfigPaths(std::string_view kubeconfig_env);

// The files kubectl would read: $KUBECONFIG split, or $HOME/.kube/config when
// KUBECONFIG is unset or empty. Errors: kFailedPrecondition when neither
// KUBECONFIG nor HOME is set.
Result<std::vector<std::string>> DefaultKubeconfigPaths();

// LoadKubeconfigFiles(DefaultKubeconfigPaths()).
Result<Kubeconfig> LoadDefaultKubeconfig();

// Resolves `context_name` (or, when empty, current-context) into a
// RestConfig: reads the CA, client certificate and key files and the token
// file, validates the server URL, defaults the namespace to "default".
// Errors:
//   kFailedPrecondition  no context given and current-context unset; a file
//                        named by the config cannot be read, or the token
//                        file is empty; an unsupported feature (proxy-url,
//                        auth-provider, exec interactiveMode Always, exec
//                        apiVersion v1alpha1).
//   kNotFound            `context_name` (or current-context) is not defined.
//   kInvalidArgument     the context names no or an unknown cluster or user;
//                        bad server URL; namespace not a DNS-1123 label; PEM
//                        data that is not PEM; cert without key; conflicting
//                        auth methods; impersonation without `as`; an exec
//                        section without command/apiVersion/interactiveMode.
//   kResourceExhausted   a file named by the config is larger than 4 MiB.
// Allocates; reads files; O(size of the config and those files).
Result<RestConfig> ResolveContext(const Kubeconfig& config, std::string_view context_name = {});

}  // namespace kubefold::kube
