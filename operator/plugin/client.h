// Client: how `kubectl kubefold` reaches kubefold's query API and the host
// API server.
//
// The host connection is the user's kubeconfig resolved as kubectl resolves
// it: --kubeconfig, else $KUBECONFIG (several files merged), else
// ~/.kube/config, else — when none of those exists — the pod's in-cluster
// config; --context picks a context. Its namespace is the context's
// ("default" when it names none).
//
// kubefold is reached
//   * through the host API server's service proxy (the default):
//       GET /api/v1/namespaces/NS/services/SCHEME:SERVICE:PORT/proxy/PATH
//     The API server authenticates the user and checks `get services/proxy`
//     and then strips the Authorization header, so a bearer token the
//     kubeconfig yields is repeated in X-Kubefold-Authorization, which
//     kubefold checks itself (operator/request_auth.h). Users who
//     authenticate with client certificates only have no token to repeat:
//     a kubefold that is not bound to localhost answers them 401.
//   * or directly (--server-url), with `Authorization: Bearer` from --token
//     or from the kubeconfig's credentials when it can be loaded, and TLS
//     verified against --certificate-authority or the system's roots unless
//     --insecure-skip-tls-verify.
//
// Errors are Status values whose code says which exit code applies
// (ExitCodeFor): kUnavailable cannot reach kubefold (or the API server);
// kUnauthenticated / kPermissionDenied 401 / 403 from either; other codes
// an error the API answered (the message is its message) or a broken
// kubeconfig.
//
// Thread-safety: one thread.
#pragma once

#include <chrono>
#include <istream>
#include <memory>
#include <optional>
#include <string>

#include "controllers/kube/rest_client.h"
#include "controllers/kube/rest_config.h"
#include "controllers/kube/token_source.h"
#include "state/status.h"

namespace kubefold::plugin {

struct ConnectionOptions {
  std::string kubeconfig;  // --kubeconfig: this file only
  std::string context;     // --context: "" for current-context
  std::string kubefold_namespace = "kubefold-system";
  std::string service = "kubefold";
  std::string service_port = "api";  // a port name or number
  std::string service_scheme = "https";
  // Direct access.
  std::string server_url;
  std::string token;
  bool insecure_skip_tls_verify = false;
  std::string certificate_authority;  // a PEM file
  // Each request: the headers within it, then at most this long between
  // two reads of a streamed body.
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  std::string user_agent = "kubectl-kubefold";
};

// The answer's body, read from the network as the caller reads `body()`.
class Response {
 public:
  virtual ~Response() = default;
  virtual std::istream& body() = 0;
  // The transport failure that ended the body early (kUnavailable); OK when
  // the body ended cleanly or has not ended yet.
  virtual Status error() const = 0;
};

class Client {
 public:
  ~Client();

  // Resolves the connection. Nothing is sent yet. Errors: the kubeconfig's
  // (kNotFound, kInvalidArgument, kFailedPrecondition naming the file and
  // field) when a host connection is needed — always, except with
  // --server-url where the kubeconfig only lends its token and a kubeconfig
  // that cannot be loaded is ignored unless --kubeconfig or --context was
  // given; a --certificate-authority that cannot be read.
  static Result<std::unique_ptr<Client>> New(const ConnectionOptions& options);

  // The context's namespace ("default" when it names none or there is no
  // kubeconfig).
  const std::string& ns() const { return ns_; }

  // GET `path_and_query` (escaped; "/api/v1/clusters?...") on kubefold's
  // query API. A 2xx answer is returned with its body still to be read;
  // anything else is read (up to 1 MiB) and returned as an error carrying
  // the API's message. Blocks until the headers arrive.
  Result<std::unique_ptr<Response>> Kubefold(const std::string& path_and_query);

  // GET on the host API server, the whole body. Errors as Kubefold's, the
  // message being the API server's.
  Result<std::string> Host(const std::string& path_and_query);

  // Where kubefold is reached, for messages: "http://127.0.0.1:8443" or
  // "service kubefold-system/kubefold through https://host:6443".
  std::string Describe() const;

 private:
  Client() = default;
  Result<std::unique_ptr<Response>> Open(kube::RestClient& client, const std::shared_ptr<kube::TokenSource>& tokens,
                                         const std::string& path_and_query, bool proxied, bool host);

  ConnectionOptions options_;
  std::string ns_ = "default";
  // The host; null with --server-url when the kubeconfig could not be
  // loaded (host_error_ says why).
  std::optional<kube::RestConfig> host_config_;
  Status host_error_;
  std::shared_ptr<kube::TokenSource> host_tokens_;
  std::unique_ptr<kube::RestClient> host_;
  // kubefold directly (--server-url).
  std::shared_ptr<kube::TokenSource> direct_tokens_;
  std::unique_ptr<kube::RestClient> direct_;
};

// The exit code for `status`: 0 OK, 3 kUnavailable, 4 kUnauthenticated or
// kPermissionDenied, 1 anything else.
int ExitCodeFor(const Status& status);

}  // namespace kubefold::plugin
