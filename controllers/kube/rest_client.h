// RestClient: the verbs an operator uses on one API server (get, create,
// update, delete, the three patch types, the /status subresource), over a
// Transport, with client-go's manners (k8s-wire-spec.md §3.3, §5):
//   * a bearer token from a TokenSource on every request; after a 401 the
//     source is invalidated (a rotated token file or an exec plugin is asked
//     again) and the request is retried once;
//   * a client-side token bucket per cluster (5 QPS, burst 10 by default);
//   * 429 and 5xx answers that carry a numeric Retry-After are retried after
//     that many seconds, at most max_retries times; without Retry-After they
//     are returned at once (as client-go's checkWait does);
//   * errors are decoded from Status bodies into codes the caller can act on
//     (404 kNotFound, 409 AlreadyExists kAlreadyExists, 409 Conflict
//     kConflict, 410 kGone, 401 kUnauthenticated, 403 kPermissionDenied,
//     400/415/422 kInvalidArgument, 429/5xx kUnavailable); the message is
//     "HTTP <code> <reason>: <server message>". Plain-text bodies are fine.
//
// Thread-safety: all methods may be called from any number of threads.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "controllers/kube/backoff.h"
#include "controllers/kube/paths.h"  // ResourcePath, for callers
#include "controllers/kube/token_source.h"
#include "controllers/kube/transport.h"
#include "controllers/kube/watch_decoder.h"

namespace kubefold::kube {

enum class PatchType { kMerge, kJsonPatch, kApply };

struct PatchOptions {
  PatchType type = PatchType::kMerge;
  std::string field_manager;  // required for kApply
  bool force = false;         // kApply: take over conflicting fields
};

struct RestClientOptions {
  double qps = 5.0;
  int burst = 10;
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  int max_retries = 3;  // of 429/5xx answers with Retry-After
  std::string user_agent = "kubefold";
};

struct RestClientHooks {
  ClockFn clock;  // default steady_clock::now
  // Waits `d`; default std::this_thread::sleep_for.
  std::function<void(std::chrono::nanoseconds d)> sleep;
};

// The Status error for a non-2xx answer (see the header comment).
Status StatusFromResponse(const HttpResponse& response);

class RestClient {
 public:
  // `tokens` may be null (no bearer token: client certificates, or none).
  RestClient(std::unique_ptr<Transport> transport, std::shared_ptr<TokenSource> tokens,
             RestClientOptions options = {}, RestClientHooks hooks = {});

  // The body of a 2xx answer; otherwise the decoded error.
  Result<std::string> Get(const std::string& path);
  Result<std::string> Create(const std::string& collection_path, const std::string& json);
  // PUT; a stale metadata.resourceVersion is kConflict: re-read and retry.
  Result<std::string> Update(const std::string& path, const std::string& json);
  Result<std::string> Delete(const std::string& path);
  // kApply sends application/apply-patch+yaml (JSON is YAML) with
  // fieldManager (and force); kInvalidArgument when field_manager is empty.
  Result<std::string> Patch(const std::string& path, const std::string& body, const PatchOptions& options);

  // One request with authentication, rate limiting and retries; any HTTP
  // status is a response. For callers with needs the verbs do not cover.
  Result<HttpResponse> Do(HttpRequest request);

  // For reflectors sharing this client's transport, credentials and rate
  // limit. Throttle waits for the client's token bucket (QPS/burst), as
  // every request of Do does.
  Status Authorize(HttpRequest& request);
  void Throttle();
  void OnUnauthorized();
  Transport& transport() { return *transport_; }

 private:
  // One verb: the body of a 2xx answer, else the decoded error.
  Result<std::string> Verb(const char* method, std::string path_and_query, const char* content_type,
                           const std::string& body);

  std::unique_ptr<Transport> transport_;
  std::shared_ptr<TokenSource> tokens_;
  const RestClientOptions options_;
  RestClientHooks hooks_;
  std::mutex bucket_mu_;
  TokenBucket bucket_;  // Guarded by bucket_mu_.
};

}  // namespace kubefold::kube
