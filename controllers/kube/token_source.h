// TokenSource: where the transport gets the bearer token for each request,
// and what it tells after the API server answered 401.
//
//   StaticTokenSource      a fixed token (kubeconfig `token`).
//   CachedFileTokenSource  a token file re-read at most every `period`
//                          (kubeconfig `tokenFile`, the in-cluster
//                          service-account token, which the kubelet rotates).
//   ExecCredentialSource   a credential plugin (kubeconfig `exec`), run on
//                          demand and cached until its credential expires.
//
// Thread-safety: every TokenSource here may be called from any number of
// threads at once. Token() may block (a file read; running a plugin, up to
// its timeout); no lock is held while it does, and concurrent callers of an
// ExecCredentialSource wait for the one plugin run in progress instead of
// starting their own.
//
// Secrets: tokens and keys are returned to the caller and never appear in a
// Status message; plugin errors name the command (never its arguments, which
// may carry secrets) and quote the first lines of its stderr.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "controllers/kube/rest_config.h"
#include "state/status.h"

namespace kubefold::kube {

// The time source for expiry and caching; tests inject a fake one.
using WallClock = std::function<std::chrono::system_clock::time_point()>;

class TokenSource {
 public:
  virtual ~TokenSource() = default;

  // The bearer token to send now. May be empty for an ExecCredentialSource
  // whose plugin returned a client certificate instead (see Credential()).
  virtual Result<std::string> Token() = 0;

  // Forgets the cached token: the next Token() fetches a fresh one. Call it
  // after a 401 Unauthorized.
  virtual void Invalidate() = 0;
};

class StaticTokenSource final : public TokenSource {
 public:
  explicit StaticTokenSource(std::string token) : token_(std::move(token)) {}
  Result<std::string> Token() override { return token_; }
  void Invalidate() override {}  // nothing else to offer

 private:
  const std::string token_;
};

struct CachedFileTokenSourceOptions {
  // Re-read the file at most this often (client-go: one minute, spec §4.2).
  std::chrono::system_clock::duration period = std::chrono::minutes(1);
  WallClock clock;            // empty: std::chrono::system_clock::now
  std::string initial_token;  // already read (e.g. at resolution): no read until `period` passes
};

// A token file, trimmed of surrounding whitespace, re-read when `period` has
// passed since the last good read and right after Invalidate().
//
// When a periodic re-read fails (the file is briefly missing or empty while
// it is being replaced, a permission hiccup), Token() keeps returning the
// last good token, as client-go does, and tries the file again on the next
// call. After Invalidate() the last token has just been rejected, so a
// failed re-read is returned as an error instead.
// Errors (kUnavailable): the file cannot be read or is empty, and no usable
// token is cached. Messages name the file, never its content.
class CachedFileTokenSource final : public TokenSource {
 public:
  explicit CachedFileTokenSource(std::string path, CachedFileTokenSourceOptions options = {});

  Result<std::string> Token() override;
  void Invalidate() override;

  const std::string& path() const { return path_; }

 private:
  // Constant after construction
  const std::string path_;
  const std::chrono::system_clock::duration period_;
  const WallClock clock_;

  // Guarded by mu_
  std::mutex mu_;
  std::string token_;  // empty: none yet
  std::chrono::system_clock::time_point read_at_{};
  bool invalidated_ = false;
};

// What an exec plugin returned (ExecCredential `status`).
struct ExecCredential {
  std::string token;                   // SECRET; may be empty when a cert is given
  std::string client_certificate_pem;  // set together with client_key_pem
  std::string client_key_pem;          // SECRET
  std::optional<std::chrono::system_clock::time_point> expiration;  // none: until Invalidate()
};

// Parses an exec plugin's standard output: an ExecCredential object of
// `expected_api_version` (client.authentication.k8s.io/v1 or v1beta1, the
// kubeconfig's exec.apiVersion) with kind ExecCredential and a `status`
// holding a token and/or a PEM client certificate and key, optionally
// `expirationTimestamp` (RFC 3339). Unknown fields are ignored.
// Errors: kInvalidArgument naming the field (never a token or key value).
// Allocates; O(size of output).
Result<ExecCredential> ParseExecCredential(std::string_view output, std::string_view expected_api_version);

// The cluster a plugin is told about (KUBERNETES_EXEC_INFO spec.cluster)
// when exec.provideClusterInfo is set.
struct ExecClusterInfo {
  std::string server;
  std::string tls_server_name;
  bool insecure_skip_tls_verify = false;
  std::string ca_pem;  // sent base64-encoded as certificate-authority-data
  bool disable_compression = false;
};

struct ExecCredentialSourceOptions {
  WallClock clock;  // empty: std::chrono::system_clock::now
  // A credential counts as expired this long before its expirationTimestamp,
  // so that a request never leaves with a token about to lapse.
  std::chrono::system_clock::duration expiry_leeway = std::chrono::seconds(10);
  // kubectl waits for a plugin forever; an operator cannot.
  std::chrono::milliseconds timeout = std::chrono::minutes(1);
  size_t max_output_bytes = 1u << 20;  // stdout beyond this: killed, error
  // The environment the plugin starts from; empty: this process's. exec.env
  // entries override it, then KUBERNETES_EXEC_INFO is set.
  std::optional<std::vector<std::string>> base_environment;
  std::optional<ExecClusterInfo> cluster;  // sent only with provide_cluster_info
};

// Runs the credential plugin `config` describes and caches what it returns.
//
// The plugin runs with stdin closed (/dev/null) — never a terminal, so
// interactiveMode Never and IfAvailable both mean "not interactive", as in
// kubectl without a TTY, and KUBERNETES_EXEC_INFO carries
// spec.interactive=false. KUBERNETES_EXEC_INFO is always set (as kubectl
// does) and includes spec.cluster when provide_cluster_info is set. stdout is
// read up to max_output_bytes, stderr's first 64 KiB are kept for errors.
// A credential is reused until expiration - expiry_leeway (per the injected
// clock) or Invalidate(); one without expiration until Invalidate().
//
// Errors of Token()/Credential():
//   kFailedPrecondition  the command is not found (message: the command and
//                        the kubeconfig's installHint) or not executable;
//                        interactiveMode Always.
//   kUnavailable         the plugin exited non-zero or was killed by a
//                        signal (message: command, exit status, first lines
//                        of stderr), or it ran past `timeout` (killed).
//   kResourceExhausted   stdout exceeded max_output_bytes (killed).
//   kInvalidArgument     its output is not a valid ExecCredential (see
//                        ParseExecCredential).
//   kInternal            it could not be started for another reason (pipes,
//                        fork/exec resources).
class ExecCredentialSource final : public TokenSource {
 public:
  explicit ExecCredentialSource(ExecConfig config, ExecCredentialSourceOptions options = {});

  // The credential's token (empty if the plugin returned only a cert).
  Result<std::string> Token() override;
  void Invalidate() override;

  // The whole credential, cached like Token(); ClientCertificateOf
  // (http_transport.h) hands the transport the client certificate a plugin
  // may return.
  Result<ExecCredential> Credential();

 private:
  bool FreshLocked(std::chrono::system_clock::time_point now) const;  // REQUIRES: mu_ is held.
  Result<ExecCredential> Run() const;
  std::vector<std::string> Environment() const;

  // Constant after construction
  const ExecConfig config_;
  const ExecCredentialSourceOptions options_;
  const WallClock clock_;

  // Guarded by mu_
  std::mutex mu_;
  std::condition_variable refreshed_;
  std::optional<ExecCredential> cached_;
  bool running_ = false;      // a plugin run is in progress (outside mu_)
  uint64_t runs_done_ = 0;    // completed runs, so waiters see theirs
  Status last_run_status_;    // of the latest completed run
};

// The token source `config` calls for: an ExecCredentialSource for `exec`
// (told about the cluster when provide_cluster_info is set), a
// CachedFileTokenSource for bearer_token_file (seeded with bearer_token), a
// StaticTokenSource for bearer_token, and nullptr when the config carries no
// token-based auth (client certificate only, or anonymous). `clock` is passed
// on; empty means the system clock. The caller owns the result.
std::unique_ptr<TokenSource> NewTokenSource(const RestConfig& config, WallClock clock = {});

}  // namespace kubefold::kube
