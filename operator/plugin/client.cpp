#include "operator/plugin/client.h"

#include <fstream>
#include <sstream>
#include <streambuf>
#include <utility>

#include <nlohmann/json.hpp>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/in_cluster.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/paths.h"

namespace kubefold::plugin {

namespace {

constexpr size_t kMaxErrorBody = 1 << 20;

// The host's RestConfig as kubectl finds it (see client.h).
Result<kube::RestConfig> LoadHostConfig(const ConnectionOptions& o) {
  if (!o.kubeconfig.empty()) {
    auto config = kube::LoadKubeconfigFile(o.kubeconfig);
    if (!config.ok()) return config.status();
    return kube::ResolveContext(*config, o.context);
  }
  Status kubeconfig_error;
  auto paths = kube::DefaultKubeconfigPaths();
  if (paths.ok()) {
    auto config = kube::LoadKubeconfigFiles(*paths);
    if (config.ok()) return kube::ResolveContext(*config, o.context);
    // Only "no such file" falls back to the in-cluster config, as client-go's
    // deferred loader does; a broken file is an error.
    if (config.status().code() != StatusCode::kNotFound) return config.status();
    kubeconfig_error = config.status();
  } else {
    kubeconfig_error = paths.status();
  }
  auto in_cluster = kube::LoadInClusterConfig();
  if (in_cluster.ok()) {
    if (!o.context.empty()) {
      return NotFound("context \"" + o.context + "\": there is no kubeconfig (" + kubeconfig_error.message() +
                      "), only the in-cluster configuration");
    }
    return in_cluster;
  }
  if (kube::IsNotInCluster(in_cluster.status())) {
    return Status(kubeconfig_error.code(), kubeconfig_error.message() +
                                               "; not running in a cluster either (use --kubeconfig, or --server-url)");
  }
  return in_cluster.status();
}

void AddImpersonation(const kube::Impersonation& as, kube::Headers& headers) {
  if (as.user_name.empty()) return;
  headers.emplace_back("Impersonate-User", as.user_name);
  if (!as.uid.empty()) headers.emplace_back("Impersonate-Uid", as.uid);
  for (const auto& g : as.groups) headers.emplace_back("Impersonate-Group", g);
  for (const auto& [k, values] : as.extra) {
    for (const auto& v : values) headers.emplace_back("Impersonate-Extra-" + kube::PercentEncode(k), v);
  }
}

std::string Trim(std::string s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

// A non-2xx answer as a Status (client.h). `proxied`: it came through the
// host's service proxy, so a Status-kind 404/503 is the API server saying
// kubefold cannot be reached.
Status ErrorFrom(int code, const std::string& body, bool proxied) {
  std::string kind, message;
  const auto j = nlohmann::json::parse(body, nullptr, false);
  if (j.is_object()) {
    if (j.contains("kind") && j["kind"].is_string()) kind = j["kind"].get<std::string>();
    if (j.contains("message") && j["message"].is_string()) message = j["message"].get<std::string>();
  }
  if (message.empty()) message = Trim(body.substr(0, 512));
  if (message.empty()) message = "the server answered HTTP " + std::to_string(code);
  const bool from_api_server = proxied && kind != "Error";
  switch (code) {
    case 401: return {StatusCode::kUnauthenticated, message};
    case 403: return {StatusCode::kPermissionDenied, message};
    case 502:
    case 503:
    case 504:
      return Unavailable(from_api_server ? "cannot reach kubefold through the API server's service proxy: " + message
                                         : message);
    case 404:
      if (from_api_server) {
        return Unavailable("cannot reach kubefold through the API server's service proxy: " + message +
                           " (see --kubefold-namespace, --service, --service-port)");
      }
      return NotFound(message);
    case 400: return InvalidArgument(message);
    case 409: return Status(StatusCode::kConflict, message);
    case 410: return Gone(message);
    default: return InternalError(message);
  }
}

// A BodyStream as a std::streambuf, so that a parser reads the body as it
// arrives.
class StreamedResponse final : public Response, private std::streambuf {
 public:
  explicit StreamedResponse(std::unique_ptr<kube::BodyStream> body) : body_(std::move(body)), in_(this) {}

  std::istream& body() override { return in_; }
  Status error() const override { return error_; }

 private:
  int_type underflow() override {
    if (gptr() < egptr()) return traits_type::to_int_type(*gptr());
    if (done_) return traits_type::eof();
    for (;;) {
      auto chunk = body_->Read();
      if (!chunk.ok()) {
        error_ = Unavailable("the answer broke off: " + chunk.status().message());
        done_ = true;
        return traits_type::eof();
      }
      if (chunk->empty()) {
        done_ = true;
        return traits_type::eof();
      }
      buffer_ = std::move(*chunk);
      setg(buffer_.data(), buffer_.data(), buffer_.data() + buffer_.size());
      return traits_type::to_int_type(buffer_[0]);
    }
  }

  std::unique_ptr<kube::BodyStream> body_;
  std::string buffer_;
  bool done_ = false;
  Status error_;
  std::istream in_;
};

Result<std::string> ReadAll(kube::BodyStream& body, size_t limit) {
  std::string out;
  while (out.size() < limit) {
    auto chunk = body.Read();
    if (!chunk.ok()) return chunk.status();
    if (chunk->empty()) break;
    out += *chunk;
  }
  return out;
}

Result<std::string> ReadFile(const std::string& path, const char* flag) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return FailedPrecondition(std::string(flag) + ": cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

Result<std::unique_ptr<kube::RestClient>> MakeClient(const kube::RestConfig& config,
                                                      std::shared_ptr<kube::TokenSource> tokens,
                                                      const ConnectionOptions& o) {
  auto transport = kube::NewHttpTransport(config, {.client_certificate = kube::ClientCertificateOf(tokens)});
  if (!transport.ok()) return transport.status();
  kube::RestClientOptions ro;
  ro.qps = 100;
  ro.burst = 100;
  ro.timeout = o.timeout;
  ro.user_agent = o.user_agent;
  return std::make_unique<kube::RestClient>(std::move(*transport), std::move(tokens), ro);
}

}  // namespace

Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::New(const ConnectionOptions& options) {
  std::unique_ptr<Client> c(new Client());
  c->options_ = options;
  const bool direct = !options.server_url.empty();
  auto host = LoadHostConfig(options);
  if (host.ok()) {
    c->host_config_ = *host;
    c->ns_ = host->namespace_name.empty() ? "default" : host->namespace_name;
    c->host_tokens_ = std::shared_ptr<kube::TokenSource>(kube::NewTokenSource(*host));
    auto client = MakeClient(*host, c->host_tokens_, options);
    if (!client.ok()) return client.status();
    c->host_ = std::move(*client);
  } else if (!direct || !options.kubeconfig.empty() || !options.context.empty()) {
    return host.status();
  } else {
    c->host_error_ = host.status();
  }
  if (direct) {
    kube::RestConfig config;
    config.server = options.server_url;
    config.insecure_skip_tls_verify = options.insecure_skip_tls_verify;
    if (!options.certificate_authority.empty()) {
      auto pem = ReadFile(options.certificate_authority, "--certificate-authority");
      if (!pem.ok()) return pem.status();
      config.ca_pem = *pem;
    }
    if (!options.token.empty()) {
      c->direct_tokens_ = std::make_shared<kube::StaticTokenSource>(options.token);
    } else {
      c->direct_tokens_ = c->host_tokens_;  // the kubeconfig's credentials, if any
    }
    auto client = MakeClient(config, c->direct_tokens_, options);
    if (!client.ok()) return Status(client.status().code(), "--server-url: " + client.status().message());
    c->direct_ = std::move(*client);
  }
  return c;
}

std::string Client::Describe() const {
  if (direct_) return options_.server_url;
  return "service " + options_.kubefold_namespace + "/" + options_.service + " through " +
         (host_config_ ? host_config_->server : std::string("the API server"));
}

Result<std::unique_ptr<Response>> Client::Kubefold(const std::string& path_and_query) {
  if (direct_) return Open(*direct_, direct_tokens_, path_and_query, false, false);
  const std::string proxy = "/api/v1/namespaces/" + kube::PercentEncode(options_.kubefold_namespace) + "/services/" +
                            kube::PercentEncode(options_.service_scheme) + ":" +
                            kube::PercentEncode(options_.service) + ":" +
                            kube::PercentEncode(options_.service_port) + "/proxy";
  return Open(*host_, host_tokens_, proxy + path_and_query, true, true);
}

Result<std::unique_ptr<Response>> Client::Open(kube::RestClient& client,
                                               const std::shared_ptr<kube::TokenSource>& tokens,
                                               const std::string& path_and_query, bool proxied, bool host) {
  kube::HttpRequest request;
  request.path_and_query = path_and_query;
  request.timeout = options_.timeout;
  request.headers = {{"User-Agent", options_.user_agent}, {"Accept", "application/json"}};
  if (host && host_config_) AddImpersonation(host_config_->impersonate, request.headers);
  for (int attempt = 0;; ++attempt) {
    kube::HttpRequest r = request;
    if (Status s = client.Authorize(r); !s.ok()) return s;
    if (proxied && tokens) {
      // The API server strips Authorization before proxying (request_auth.h).
      auto token = tokens->Token();
      if (token.ok() && !token->empty()) r.headers.emplace_back("X-Kubefold-Authorization", "Bearer " + *token);
    }
    auto stream = client.transport().Open(r);
    if (!stream.ok()) {
      return Unavailable("cannot reach " + (host ? "the API server at " + host_config_->server
                                                 : "kubefold at " + options_.server_url) +
                         ": " + stream.status().message());
    }
    if (stream->status == 401 && tokens && attempt == 0) {
      stream->body->Cancel();
      client.OnUnauthorized();  // a rotated token: ask the source again, once
      continue;
    }
    if (stream->status >= 200 && stream->status <= 299) {
      return std::unique_ptr<Response>(std::make_unique<StreamedResponse>(std::move(stream->body)));
    }
    auto body = ReadAll(*stream->body, kMaxErrorBody);
    return ErrorFrom(stream->status, body.ok() ? *body : "", proxied);
  }
}

Result<std::string> Client::Host(const std::string& path_and_query) {
  if (!host_) return host_error_;
  auto response = Open(*host_, host_tokens_, path_and_query, false, true);
  if (!response.ok()) return response.status();
  std::ostringstream s;
  s << (*response)->body().rdbuf();
  if (Status e = (*response)->error(); !e.ok()) return e;
  return s.str();
}

int ExitCodeFor(const Status& status) {
  switch (status.code()) {
    case StatusCode::kOk: return 0;
    case StatusCode::kUnavailable: return 3;
    case StatusCode::kUnauthenticated:
    case StatusCode::kPermissionDenied: return 4;
    default: return 1;
  }
}

}  // namespace kubefold::plugin
