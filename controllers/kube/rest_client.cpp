#include "controllers/kube/rest_client.h"

#include <thread>
#include <utility>

namespace kubefold::kube {

namespace {

StatusCode CodeFor(int http, std::string_view reason) {
  switch (http) {
    case 400:
    case 415:
    case 422: return StatusCode::kInvalidArgument;
    case 401: return StatusCode::kUnauthenticated;
    case 403: return StatusCode::kPermissionDenied;
    case 404: return StatusCode::kNotFound;
    case 409: return reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kConflict;
    case 410: return StatusCode::kGone;
    case 429: return StatusCode::kUnavailable;
    default: break;
  }
  if (http >= 500) return StatusCode::kUnavailable;
  return StatusCode::kFailedPrecondition;
}

}  // namespace

Status StatusFromResponse(const HttpResponse& response) {
  ApiStatus s = DecodeStatus(response.body, response.status);
  std::string message = "HTTP " + std::to_string(response.status);
  if (!s.reason.empty()) message += " " + s.reason;
  if (!s.message.empty()) message += ": " + s.message;
  return Status(CodeFor(response.status, s.reason), std::move(message));
}

RestClient::RestClient(std::unique_ptr<Transport> transport, std::shared_ptr<TokenSource> tokens,
                       RestClientOptions options, RestClientHooks hooks)
    : transport_(std::move(transport)),
      tokens_(std::move(tokens)),
      options_(std::move(options)),
      hooks_(std::move(hooks)),
      bucket_(options_.qps, options_.burst, hooks_.clock ? hooks_.clock : ClockFn([] { return Clock::now(); })) {
  if (!hooks_.sleep) hooks_.sleep = [](std::chrono::nanoseconds d) { std::this_thread::sleep_for(d); };
}

Status RestClient::Authorize(HttpRequest& request) {
  if (!tokens_) return Status::Ok();
  auto token = tokens_->Token();
  if (!token.ok()) return token.status();
  if (token->empty()) return Status::Ok();
  for (auto& [k, v] : request.headers) {
    if (k == "Authorization") {
      v = "Bearer " + *token;
      return Status::Ok();
    }
  }
  request.headers.emplace_back("Authorization", "Bearer " + *token);
  return Status::Ok();
}

void RestClient::Throttle() {
  std::chrono::nanoseconds wait;
  {
    std::lock_guard<std::mutex> lock(bucket_mu_);
    wait = bucket_.Reserve();
  }
  if (wait.count() > 0) hooks_.sleep(wait);
}

void RestClient::OnUnauthorized() {
  if (tokens_) tokens_->Invalidate();
}

Result<HttpResponse> RestClient::Do(HttpRequest request) {
  if (FindHeader(request.headers, "User-Agent").empty()) request.headers.emplace_back("User-Agent", options_.user_agent);
  if (FindHeader(request.headers, "Accept").empty()) request.headers.emplace_back("Accept", "application/json");
  bool reauthorized = false;
  for (int attempt = 0;; ++attempt) {
    Throttle();
    if (Status s = Authorize(request); !s.ok()) return s;
    auto response = transport_->Send(request);
    if (!response.ok()) return response.status();
    if (response->status == 401 && tokens_ && !reauthorized) {
      OnUnauthorized();  // a rotated token: ask the source again, once
      reauthorized = true;
      continue;
    }
    if ((response->status == 429 || response->status >= 500) && attempt < options_.max_retries) {
      if (auto after = ParseRetryAfter(FindHeader(response->headers, "Retry-After"))) {
        hooks_.sleep(*after);
        continue;
      }
    }
    return response;
  }
}

Result<std::string> RestClient::Verb(const char* method, std::string path_and_query, const char* content_type,
                                     const std::string& body) {
  HttpRequest request;
  request.method = method;
  request.path_and_query = std::move(path_and_query);
  if (content_type != nullptr) request.headers.emplace_back("Content-Type", content_type);
  request.body = body;
  request.timeout = options_.timeout;
  auto response = Do(std::move(request));
  if (!response.ok()) return response.status();
  if (response->status < 200 || response->status > 299) return StatusFromResponse(*response);
  return std::move(response->body);
}

Result<std::string> RestClient::Get(const std::string& path) { return Verb("GET", path, nullptr, {}); }

Result<std::string> RestClient::Create(const std::string& collection_path, const std::string& json) {
  return Verb("POST", collection_path, "application/json", json);
}

Result<std::string> RestClient::Update(const std::string& path, const std::string& json) {
  return Verb("PUT", path, "application/json", json);
}

Result<std::string> RestClient::Delete(const std::string& path) { return Verb("DELETE", path, nullptr, {}); }

Result<std::string> RestClient::Patch(const std::string& path, const std::string& body, const PatchOptions& options) {
  const char* content_type = "application/merge-patch+json";
  if (options.type == PatchType::kJsonPatch) content_type = "application/json-patch+json";
  if (options.type == PatchType::kApply) {
    if (options.field_manager.empty()) {
      return InvalidArgument("server-side apply needs a field manager (PatchOptions.field_manager is empty)");
    }
    content_type = "application/apply-patch+yaml";
  }
  std::string target = path;
  if (!options.field_manager.empty()) {
    target += path.find('?') == std::string::npos ? "?" : "&";
    target += "fieldManager=" + PercentEncode(options.field_manager);
    if (options.type == PatchType::kApply && options.force) target += "&force=true";
  }
  return Verb("PATCH", std::move(target), content_type, body);
}

}  // namespace kubefold::kube
