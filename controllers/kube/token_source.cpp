#include "controllers/kube/token_source.h"

#include "controllers/kube/http_transport.h"

#include <nlohmann/json.hpp>

#include <exception>
#include <new>
#include <utility>

#include "controllers/kube/internal/base64.h"
#include "controllers/kube/internal/file_util.h"
#include "controllers/kube/internal/rfc3339.h"
#include "controllers/kube/internal/subprocess.h"

extern char** environ;  // POSIX: this process's environment

namespace kubefold::kube {
namespace {

constexpr size_t kMaxTokenFileBytes = 1u << 20;
constexpr size_t kStderrLinesInErrors = 5;
constexpr size_t kStderrCharsInErrors = 1000;

WallClock OrSystemClock(WallClock clock) {
  if (clock) return clock;
  return [] { return std::chrono::system_clock::now(); };
}

std::string Quote(std::string_view s) { return "\"" + std::string(s) + "\""; }

// The first lines of a plugin's stderr, for an error message.
std::string StderrHead(std::string_view err) {
  err = internal::TrimWhitespace(err);
  if (err.empty()) return "(stderr empty)";
  std::string out;
  size_t lines = 0;
  size_t pos = 0;
  while (pos < err.size() && lines < kStderrLinesInErrors) {
    size_t end = err.find('\n', pos);
    if (end == std::string_view::npos) end = err.size();
    if (!out.empty()) out += " | ";
    out += err.substr(pos, end - pos);
    ++lines;
    pos = end + 1;
  }
  if (out.size() > kStderrCharsInErrors) {
    out.resize(kStderrCharsInErrors);
    out += "...";
  } else if (pos < err.size()) {
    out += " | ...";
  }
  for (char& c : out) {
    if (c == '\r' || c == '\t') c = ' ';
  }
  return "stderr: " + out;
}

// A short, printable rendering of a value the plugin sent that is not a
// secret (apiVersion, kind), for messages.
std::string Printable(std::string_view s) {
  std::string out;
  for (char c : s.substr(0, 64)) out.push_back(static_cast<unsigned char>(c) < 0x20 || c == 0x7f ? '?' : c);
  if (s.size() > 64) out += "...";
  return Quote(out);
}

}  // namespace

// ---------------------------------------------------------------------------
// CachedFileTokenSource
// ---------------------------------------------------------------------------

CachedFileTokenSource::CachedFileTokenSource(std::string path, CachedFileTokenSourceOptions options)
    : path_(std::move(path)), period_(options.period), clock_(OrSystemClock(std::move(options.clock))) {
  if (!options.initial_token.empty()) {
    token_ = std::move(options.initial_token);
    read_at_ = clock_();
  }
}

Result<std::string> CachedFileTokenSource::Token() {
  const auto now = clock_();
  bool invalidated = false;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!token_.empty() && !invalidated_ && now - read_at_ < period_) return token_;
    invalidated = invalidated_;
  }
  // Read without the lock; two threads may both read, which is harmless.
  Result<std::string> bytes = internal::ReadFileBounded(path_, kMaxTokenFileBytes, "token file");
  std::string_view token;
  Status error;
  if (!bytes.ok()) {
    error = Unavailable(bytes.status().message());
  } else {
    token = internal::TrimWhitespace(*bytes);
    if (token.empty()) error = Unavailable("token file " + path_ + ": is empty");
  }
  std::lock_guard<std::mutex> lock(mu_);
  if (!error.ok()) {
    // Keep the last good token unless it was just rejected; read_at_ stays,
    // so the next call tries the file again.
    if (!token_.empty() && !invalidated) return token_;
    return error;
  }
  token_ = std::string(token);
  read_at_ = now;
  invalidated_ = false;
  return token_;
}

void CachedFileTokenSource::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  invalidated_ = true;
}

// ---------------------------------------------------------------------------
// ExecCredential parsing. nlohmann throws; nothing escapes this function.
// ---------------------------------------------------------------------------

Result<ExecCredential> ParseExecCredential(std::string_view output, std::string_view expected_api_version) {
  using nlohmann::json;
  json doc;
  try {
    doc = json::parse(output.begin(), output.end());
  } catch (const json::parse_error& e) {
    // e.what() quotes the input near the error; give only the position.
    return InvalidArgument("output is not valid JSON (error at byte " + std::to_string(e.byte) + ")");
  } catch (const std::bad_alloc&) {
    return ResourceExhausted("output too large to parse");
  } catch (const std::exception&) {
    return InvalidArgument("output is not valid JSON");
  }
  if (!doc.is_object()) return InvalidArgument("output is not a JSON object");

  auto string_field = [](const json& obj, const char* key, std::string_view field,
                         std::string& out) -> Status {
    const auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return Status::Ok();
    if (!it->is_string()) return InvalidArgument(std::string(field) + ": expected a string");
    out = it->get_ref<const std::string&>();
    return Status::Ok();
  };

  std::string api_version;
  std::string kind;
  if (Status s = string_field(doc, "apiVersion", "apiVersion", api_version); !s.ok()) return s;
  if (Status s = string_field(doc, "kind", "kind", kind); !s.ok()) return s;
  if (api_version != expected_api_version) {
    return InvalidArgument("apiVersion is " + Printable(api_version) + " but the kubeconfig's exec.apiVersion is " +
                           Quote(expected_api_version));
  }
  if (kind != "ExecCredential") return InvalidArgument("kind is " + Printable(kind) + ", not \"ExecCredential\"");

  const auto status_it = doc.find("status");
  if (status_it == doc.end() || status_it->is_null()) return InvalidArgument("status: missing");
  if (!status_it->is_object()) return InvalidArgument("status: expected an object");
  const json& status = *status_it;

  ExecCredential cred;
  std::string expiration;
  if (Status s = string_field(status, "token", "status.token", cred.token); !s.ok()) return s;
  if (Status s = string_field(status, "clientCertificateData", "status.clientCertificateData",
                              cred.client_certificate_pem);
      !s.ok()) {
    return s;
  }
  if (Status s = string_field(status, "clientKeyData", "status.clientKeyData", cred.client_key_pem); !s.ok()) {
    return s;
  }
  if (Status s = string_field(status, "expirationTimestamp", "status.expirationTimestamp", expiration); !s.ok()) {
    return s;
  }
  if (cred.token.empty() && cred.client_certificate_pem.empty() && cred.client_key_pem.empty()) {
    return InvalidArgument("status: neither a token nor a client certificate and key");
  }
  if (cred.client_certificate_pem.empty() != cred.client_key_pem.empty()) {
    return InvalidArgument(cred.client_certificate_pem.empty()
                               ? "status: clientKeyData without clientCertificateData"
                               : "status: clientCertificateData without clientKeyData");
  }
  if (!cred.client_certificate_pem.empty()) {
    if (!internal::LooksLikePem(cred.client_certificate_pem)) {
      return InvalidArgument("status.clientCertificateData: no PEM block (-----BEGIN ...) in it");
    }
    if (!internal::LooksLikePem(cred.client_key_pem)) {
      return InvalidArgument("status.clientKeyData: no PEM block (-----BEGIN ...) in it");
    }
  }
  if (!expiration.empty()) {
    cred.expiration = internal::ParseRfc3339(expiration);
    if (!cred.expiration) return InvalidArgument("status.expirationTimestamp: not an RFC 3339 time");
  }
  return cred;
}

// ---------------------------------------------------------------------------
// ExecCredentialSource
// ---------------------------------------------------------------------------

ExecCredentialSource::ExecCredentialSource(ExecConfig config, ExecCredentialSourceOptions options)
    : config_(std::move(config)), options_(std::move(options)), clock_(OrSystemClock(options_.clock)) {}

bool ExecCredentialSource::FreshLocked(std::chrono::system_clock::time_point now) const {
  if (!cached_) return false;
  if (!cached_->expiration) return true;
  // Ordered so that nothing overflows for a saturated expiration.
  const auto expiration = *cached_->expiration;
  return now < expiration && expiration - now > options_.expiry_leeway;
}

Result<std::string> ExecCredentialSource::Token() {
  Result<ExecCredential> cred = Credential();
  if (!cred.ok()) return cred.status();
  return std::move(cred->token);
}

void ExecCredentialSource::Invalidate() {
  std::lock_guard<std::mutex> lock(mu_);
  cached_.reset();
}

Result<ExecCredential> ExecCredentialSource::Credential() {
  std::unique_lock<std::mutex> lock(mu_);
  while (running_) {
    // Someone is running the plugin: wait for that run and share its result.
    const uint64_t before = runs_done_;
    refreshed_.wait(lock, [&] { return runs_done_ != before; });
    if (!last_run_status_.ok()) return last_run_status_;
  }
  if (FreshLocked(clock_())) return *cached_;
  running_ = true;
  lock.unlock();

  Result<ExecCredential> result = Run();

  lock.lock();
  running_ = false;
  ++runs_done_;
  if (result.ok()) {
    cached_ = *result;
    last_run_status_ = Status::Ok();
  } else {
    last_run_status_ = result.status();
  }
  refreshed_.notify_all();
  return result;
}

std::vector<std::string> ExecCredentialSource::Environment() const {
  std::vector<std::string> env;
  if (options_.base_environment) {
    env = *options_.base_environment;
  } else {
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) env.emplace_back(*e);
  }
  auto set = [&env](const std::string& name, const std::string& value) {
    const std::string prefix = name + "=";
    for (std::string& entry : env) {
      if (entry.compare(0, prefix.size(), prefix) == 0) {
        entry = prefix + value;
        return;
      }
    }
    env.push_back(prefix + value);
  };
  for (const ExecEnvVar& var : config_.env) set(var.name, var.value);

  nlohmann::json spec = {{"interactive", false}};
  if (config_.provide_cluster_info && options_.cluster) {
    const ExecClusterInfo& c = *options_.cluster;
    nlohmann::json cluster = {{"server", c.server}};
    if (!c.tls_server_name.empty()) cluster["tls-server-name"] = c.tls_server_name;
    if (c.insecure_skip_tls_verify) cluster["insecure-skip-tls-verify"] = true;
    if (!c.ca_pem.empty()) cluster["certificate-authority-data"] = internal::Base64Encode(c.ca_pem);
    if (c.disable_compression) cluster["disable-compression"] = true;
    spec["cluster"] = std::move(cluster);
  }
  const nlohmann::json info = {{"apiVersion", config_.api_version}, {"kind", "ExecCredential"}, {"spec", spec}};
  set("KUBERNETES_EXEC_INFO", info.dump());
  return env;
}

Result<ExecCredential> ExecCredentialSource::Run() const {
  const std::string name = "exec plugin " + Quote(config_.command);
  if (config_.interactive_mode == ExecInteractiveMode::kAlways) {
    return FailedPrecondition(name + ": interactiveMode Always needs a terminal, and kubefold has none");
  }
  internal::SubprocessOptions run;
  run.program = config_.command;
  run.args = config_.args;
  run.env = Environment();
  run.max_stdout_bytes = options_.max_output_bytes;
  run.timeout = options_.timeout;
  Result<internal::SubprocessResult> ran = internal::RunSubprocess(run);
  if (!ran.ok()) {
    const StatusCode code = ran.status().code();
    if (code == StatusCode::kNotFound) {
      std::string message = name + ": executable not found";
      if (config_.command.find('/') == std::string::npos) message += " in PATH";
      if (!config_.install_hint.empty()) message += ". " + config_.install_hint;
      return FailedPrecondition(std::move(message));
    }
    if (code == StatusCode::kPermissionDenied) return FailedPrecondition(name + ": not executable (permission denied)");
    return InternalError(name + ": cannot start: " + ran.status().message());
  }
  const internal::SubprocessResult& r = *ran;
  switch (r.end) {
    case internal::SubprocessEnd::kTimedOut:
      return Unavailable(name + ": no result within " + std::to_string(options_.timeout.count()) +
                         " ms; killed. " + StderrHead(r.stderr_bytes));
    case internal::SubprocessEnd::kStdoutTooLarge:
      return ResourceExhausted(name + ": output larger than " + std::to_string(options_.max_output_bytes) +
                               " bytes; killed");
    case internal::SubprocessEnd::kSignaled:
      return Unavailable(name + ": killed by signal " + std::to_string(r.signal) + ". " + StderrHead(r.stderr_bytes));
    case internal::SubprocessEnd::kExited:
      break;
  }
  if (r.exit_code != 0) {
    return Unavailable(name + ": exited with status " + std::to_string(r.exit_code) + ". " +
                       StderrHead(r.stderr_bytes));
  }
  Result<ExecCredential> cred = ParseExecCredential(r.stdout_bytes, config_.api_version);
  if (!cred.ok()) return Status(cred.status().code(), name + ": " + cred.status().message());
  return cred;
}

// ---------------------------------------------------------------------------

std::unique_ptr<TokenSource> NewTokenSource(const RestConfig& config, WallClock clock) {
  if (config.exec) {
    ExecCredentialSourceOptions options;
    options.clock = std::move(clock);
    if (config.exec->provide_cluster_info) {
      options.cluster = ExecClusterInfo{config.server, config.tls_server_name, config.insecure_skip_tls_verify,
                                        config.ca_pem, config.disable_compression};
    }
    return std::make_unique<ExecCredentialSource>(*config.exec, std::move(options));
  }
  if (!config.bearer_token_file.empty()) {
    CachedFileTokenSourceOptions options;
    options.clock = std::move(clock);
    options.initial_token = config.bearer_token;
    return std::make_unique<CachedFileTokenSource>(config.bearer_token_file, std::move(options));
  }
  if (!config.bearer_token.empty()) return std::make_unique<StaticTokenSource>(config.bearer_token);
  return nullptr;
}

std::function<Result<ClientCertificate>()> ClientCertificateOf(const std::shared_ptr<TokenSource>& tokens) {
  auto exec = std::dynamic_pointer_cast<ExecCredentialSource>(tokens);
  if (!exec) return {};
  return [exec]() -> Result<ClientCertificate> {
    auto credential = exec->Credential();
    if (!credential.ok()) return credential.status();
    return ClientCertificate{std::move(credential->client_certificate_pem), std::move(credential->client_key_pem)};
  };
}

}  // namespace kubefold::kube
