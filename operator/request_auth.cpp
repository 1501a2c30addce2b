#include "operator/request_auth.h"

#include <openssl/sha.h>

#include <cctype>

#include <nlohmann/json.hpp>

namespace kubefold {

namespace {

using Json = nlohmann::json;

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned char b : digest) {
    out += kHex[b >> 4];
    out += kHex[b & 15];
  }
  return out;
}

// The token of "Bearer <token>" (scheme case-insensitive), or "".
std::string BearerToken(const std::string& header) {
  if (header.size() < 7) return "";
  std::string scheme = header.substr(0, 7);
  for (char& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (scheme != "bearer ") return "";
  std::string token = header.substr(7);
  while (!token.empty() && token.front() == ' ') token.erase(0, 1);
  while (!token.empty() && token.back() == ' ') token.pop_back();
  return token;
}

std::string Describe(const AccessCheck& a) {
  if (a.resource.empty()) return a.verb + " path \"" + a.path + "\"";
  std::string r = a.resource + (a.subresource.empty() ? "" : "/" + a.subresource);
  std::string out = a.verb + " " + r;
  if (!a.name.empty()) out += " \"" + a.name + "\"";
  if (!a.group.empty()) out += " in API group \"" + a.group + "\"";
  if (!a.ns.empty()) out += " in the namespace \"" + a.ns + "\"";
  return out;
}

}  // namespace

RequestAuthenticator::RequestAuthenticator(kube::RestClient& host, RequestAuthOptions options)
    : host_(host), options_(std::move(options)) {}

std::chrono::steady_clock::time_point RequestAuthenticator::Now() const {
  return options_.clock ? options_.clock() : std::chrono::steady_clock::now();
}

int RequestAuthenticator::Review(const std::string& token, std::string& user_json, std::string& message) {
  const Json review = {{"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenReview"}, {"spec", {{"token", token}}}};
  // A token that is not UTF-8 cannot be valid; replaced bytes keep it so.
  auto r = host_.Create("/apis/authentication.k8s.io/v1/tokenreviews",
                        review.dump(-1, ' ', false, Json::error_handler_t::replace));
  if (!r.ok()) {
    message = "the token could not be checked with the host API server (TokenReview): " + r.status().message();
    return 503;
  }
  const Json j = Json::parse(*r, nullptr, false);
  const Json status = j.is_object() ? j.value("status", Json::object()) : Json::object();
  if (!status.is_object() || !status.value("authenticated", false)) {
    const std::string why = status.is_object() && status.contains("error") && status["error"].is_string()
                                ? ": " + status["error"].get<std::string>()
                                : "";
    message = "the bearer token was not accepted by the host API server" + why;
    return 401;
  }
  const Json user = status.value("user", Json::object());
  if (!user.is_object() || !user.contains("username")) {
    message = "the host API server authenticated the token but named no user";
    return 401;
  }
  user_json = user.dump();
  return 0;
}

int RequestAuthenticator::Check(const IncomingRequest& request, const AccessCheck& access, std::string& message) {
  std::string token = BearerToken(request.Header("authorization"));
  if (token.empty()) token = BearerToken(request.Header("x-kubefold-authorization"));
  if (token.empty()) {
    message =
        "a bearer token is required (Authorization: Bearer, or X-Kubefold-Authorization: Bearer through the API "
        "server's service proxy)";
    return 401;
  }
  const std::string key = Sha256Hex(token) + "|" + access.ns + "|" + access.group + "|" + access.resource + "|" +
                          access.subresource + "|" + access.name + "|" + access.verb + "|" + access.path;
  const auto now = Now();
  {
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end() && it->second.expires > now) {
      message = it->second.message;
      return it->second.code;
    }
  }
  std::string user_json;
  int code = Review(token, user_json, message);
  if (code == 503) return code;  // not cached: the next request asks again
  if (code == 0) {
    const Json user = Json::parse(user_json);
    Json spec = {{"user", user.value("username", "")}};
    if (user.contains("uid")) spec["uid"] = user["uid"];
    if (user.contains("groups")) spec["groups"] = user["groups"];
    if (user.contains("extra")) spec["extra"] = user["extra"];
    if (access.resource.empty()) {
      spec["nonResourceAttributes"] = {{"path", access.path}, {"verb", access.verb}};
    } else {
      Json attrs = {{"verb", access.verb}, {"group", access.group}, {"resource", access.resource}};
      if (!access.subresource.empty()) attrs["subresource"] = access.subresource;
      if (!access.name.empty()) attrs["name"] = access.name;
      if (!access.ns.empty()) attrs["namespace"] = access.ns;
      spec["resourceAttributes"] = attrs;
    }
    const Json sar = {{"apiVersion", "authorization.k8s.io/v1"}, {"kind", "SubjectAccessReview"}, {"spec", spec}};
    auto r = host_.Create("/apis/authorization.k8s.io/v1/subjectaccessreviews", sar.dump());
    if (!r.ok()) {
      message = "the permission could not be checked with the host API server (SubjectAccessReview): " +
                r.status().message();
      return 503;
    }
    const Json j = Json::parse(*r, nullptr, false);
    const Json status = j.is_object() ? j.value("status", Json::object()) : Json::object();
    if (!status.is_object() || !status.value("allowed", false)) {
      std::string reason = status.is_object() && status.contains("reason") && status["reason"].is_string()
                               ? status["reason"].get<std::string>()
                               : "";
      message = "user \"" + user.value("username", "") + "\" may not " + Describe(access) +
                (reason.empty() ? "" : " (" + reason + ")");
      code = 403;
    } else {
      message.clear();
    }
  }
  std::lock_guard lock(mu_);
  if (cache_.size() >= options_.max_entries) {
    std::erase_if(cache_, [&](const auto& e) { return e.second.expires <= now; });
    if (cache_.size() >= options_.max_entries) cache_.clear();
  }
  cache_[key] = Entry{code, message, now + options_.ttl};
  return code;
}

}  // namespace kubefold
