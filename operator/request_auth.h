// RequestAuthenticator: who may call kubefold's HTTP endpoints when they
// are bound to anything but localhost — the way controller-runtime guards
// its metrics endpoint: the caller's bearer token is checked with a
// TokenReview and the user's permission with a SubjectAccessReview, both
// against the host cluster, and both answers are cached briefly.
//
// What is checked:
//   * the query API: `get` on `services/proxy` named "SCHEME:SERVICE:PORT"
//     (e.g. https:kubefold:api) in the operator's namespace — exactly what
//     the host API server authorizes for the service-proxy path the kubectl
//     plugin uses (it names the resource by that path segment), so one RBAC
//     rule grants both ways in;
//   * /metrics: `get` on the non-resource URL /metrics, as Prometheus'
//     usual ClusterRole grants.
//
// The token comes from `Authorization: Bearer ...`. A request that went
// through the host API server's service proxy has lost that header (the API
// server removes credentials it has authenticated), so the plugin repeats
// the user's token in `X-Kubefold-Authorization: Bearer ...`.
//
// Tokens are never logged and never kept: the cache is keyed by their
// SHA-256.
//
// Thread-safety: Check may be called from many threads at once.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "controllers/kube/rest_client.h"
#include "operator/http_server.h"

namespace kubefold {

struct AccessCheck {
  // Resource attributes (when resource is set) ...
  std::string ns, group, resource, subresource, name, verb = "get";
  // ... or a non-resource path.
  std::string path;
};

struct RequestAuthOptions {
  std::chrono::milliseconds ttl{std::chrono::seconds(10)};  // how long an answer is reused
  size_t max_entries = 4096;
  std::function<std::chrono::steady_clock::time_point()> clock;
};

class RequestAuthenticator {
 public:
  // `host` must outlive the authenticator.
  RequestAuthenticator(kube::RestClient& host, RequestAuthOptions options = {});

  // 0 when `request` may proceed under `access`; otherwise 401 (no or a bad
  // token), 403 (not allowed) or 503 (the host could not answer), with
  // `message` saying why (never the token).
  int Check(const IncomingRequest& request, const AccessCheck& access, std::string& message);

 private:
  struct Entry {
    int code = 0;
    std::string message;
    std::chrono::steady_clock::time_point expires;
  };
  std::chrono::steady_clock::time_point Now() const;
  // TokenReview: 0 and the user JSON, or an error code and message.
  int Review(const std::string& token, std::string& user_json, std::string& message);

  kube::RestClient& host_;
  const RequestAuthOptions options_;
  std::mutex mu_;
  std::map<std::string, Entry> cache_;  // Guarded by mu_: sha256(token) + access -> answer
};

}  // namespace kubefold
