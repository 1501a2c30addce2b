#include "operator/logger.h"

#include <chrono>
#include <cstdio>
#include <ctime>
#include <iostream>
#include <regex>

#include <nlohmann/json.hpp>

namespace kubefold {

namespace {

std::string Now() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char stamp[64];
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(us));
  return stamp;
}

bool Contains(std::string_view s, std::string_view what) { return s.find(what) != std::string_view::npos; }

}  // namespace

std::string Logger::Scrub(std::string_view message) {
  // Cheap test first: most lines mention no credential at all.
  std::string lower(message);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!Contains(lower, "bearer") && !Contains(lower, "token") && !Contains(lower, "password") &&
      !Contains(lower, "key-data") && !Contains(lower, "certificate-data")) {
    return std::string(message);
  }
  static const std::regex kBearer(R"((bearer\s+)[A-Za-z0-9._~+/=-]+)", std::regex::icase);
  static const std::regex kField(
      R"re(("?(?:token|password|client-key-data|client-certificate-data|id-token|refresh-token)"?\s*[:=]\s*"?)[^"\s,&}]+)re",
      std::regex::icase);
  std::string out = std::regex_replace(std::string(message), kBearer, "$1[REDACTED]");
  return std::regex_replace(out, kField, "$1[REDACTED]");
}

std::string Logger::Format(std::string_view level, std::string_view message, const Fields& fields) const {
  const std::string msg = Scrub(message);
  if (format_ == LogFormat::kJson) {
    nlohmann::ordered_json j;
    j["ts"] = Now();
    j["level"] = level;
    j["msg"] = msg;
    for (const auto& [k, v] : fields) j[k] = Scrub(v);
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  }
  std::string out = Now().substr(0, 23) + "Z " + std::string(level);
  out.resize(out.size() + (level.size() < 5 ? 5 - level.size() : 0), ' ');
  out += ' ';
  out += msg;
  return out;
}

void Logger::Log(std::string_view level, std::string_view message, const Fields& fields, int v) {
  if (v > verbosity_) return;
  const std::string line = Format(level, message, fields);
  std::lock_guard lock(mu_);
  std::cerr << line << '\n';
}

void Logger::FromLoop(std::string_view message) {
  Fields fields;
  int v = 0;
  std::string level = "info";
  auto subject = [&](std::string_view prefix) -> std::string_view {
    if (!message.starts_with(prefix)) return {};
    std::string_view rest = message.substr(prefix.size());
    const size_t end = rest.find_first_of(": ");
    return rest.substr(0, end);
  };
  auto namespaced = [&](std::string_view key) {
    const size_t slash = key.find('/');
    if (slash == std::string_view::npos) return;
    fields.emplace_back("namespace", std::string(key.substr(0, slash)));
    fields.emplace_back("name", std::string(key.substr(slash + 1)));
  };
  if (auto c = subject("member cluster "); !c.empty()) {
    fields.emplace_back("controller", "registry");
    fields.emplace_back("cluster", std::string(c));
  } else if (auto p = subject("policy "); !p.empty() && p != "informer") {
    fields.emplace_back("controller", "failover");
    fields.emplace_back("kind", "FailoverPolicy");
    namespaced(p);
  } else if (auto a = subject("audit "); !a.empty() && a != "informer") {
    fields.emplace_back("controller", "failover");
    fields.emplace_back("kind", "FailoverAudit");
    namespaced(a);
  } else if (message.starts_with("leader election") || message.starts_with("leader is") ||
             message.starts_with("leading") || message.starts_with("not leading")) {
    fields.emplace_back("controller", "leader-election");
  }
  // Watch chatter: reconnects and relists are routine (verbosity 1); API
  // requests are logged only when asked for (verbosity 2); failures to
  // write are errors.
  if (message.starts_with("api ")) {
    fields.emplace_back("controller", "api");
    v = 2;
  }
  if (Contains(message, "retrying in ") || Contains(message, "falling back to list and watch") ||
      Contains(message, "listing again")) {
    v = 1;
  }
  if (Contains(message, ": internal: ") || Contains(message, ": unavailable: ") ||
      Contains(message, ": permission_denied: ") || Contains(message, ": unauthenticated: ") ||
      Contains(message, ": invalid_argument: ") || Contains(message, ": conflict: ") ||
      Contains(message, ": failed_precondition: ")) {
    level = v == 0 ? "error" : "info";
  }
  Log(level, message, fields, v);
}

}  // namespace kubefold
