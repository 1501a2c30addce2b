#include "controllers/health.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "controllers/kube/internal/rfc3339.h"
#include "controllers/kube/internal/utf8.h"

namespace kubefold::controllers {

std::string HealthRecordJson(const ReadyCondition& c, std::chrono::system_clock::time_point since) {
  nlohmann::json j = {{"status", c.status},
                      {"reason", c.reason},
                      {"message", c.message},
                      {"since", kube::internal::FormatRfc3339Micro(since)}};
  // The message quotes what a member cluster answered; never let a byte
  // that is not UTF-8 throw here (type_error 316, on the prober's thread).
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::optional<HealthRecord> ParseHealthRecord(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  HealthRecord r;
  if (!j.contains("status") || !j["status"].is_string() || !j.contains("since") || !j["since"].is_string()) {
    return std::nullopt;
  }
  r.condition.status = j["status"].get<std::string>();
  r.condition.reason = j.value("reason", "");
  r.condition.message = j.value("message", "");
  auto since = kube::internal::ParseRfc3339(j["since"].get<std::string>());
  if (!since) return std::nullopt;
  r.since = *since;
  return r;
}

void HealthTracker::ProbeSucceeded(HealthClock::time_point at) {
  last_contact_ = last_contact_ ? std::max(*last_contact_, at) : at;
  last_probe_ok_ = true;
  consecutive_failures_ = 0;
  last_failure_.clear();
}

void HealthTracker::ProbeFailed(HealthClock::time_point, std::string why) {
  last_probe_ok_ = false;
  ++consecutive_failures_;
  last_failure_ = std::move(why);
}

void HealthTracker::WatchActivity(HealthClock::time_point at) {
  last_contact_ = last_contact_ ? std::max(*last_contact_, at) : at;
}

ReadyCondition HealthTracker::Evaluate(HealthClock::time_point now) const {
  if (consecutive_failures_ >= options_.failure_threshold) {
    return {"False", "ProbeFailed",
            std::to_string(consecutive_failures_) + " probes of " + options_.probe_path + " failed in a row; last: " +
                last_failure_};
  }
  if (last_contact_ && now - *last_contact_ <= options_.grace_period) {
    if (last_probe_ok_) return {"True", "ProbeSucceeded", options_.probe_path + " answered ok"};
    return {"True", "RecentlySeen",
            "heard from within the grace period; " + std::to_string(consecutive_failures_) +
                " probe(s) failed since (last: " + last_failure_ + ")"};
  }
  if (!last_contact_) {
    return {"Unknown", consecutive_failures_ > 0 ? "ProbeFailing" : "NotProbedYet",
            consecutive_failures_ > 0 ? "never reached; last probe: " + last_failure_ : "no probe has finished yet"};
  }
  return {"Unknown", "NoRecentContact",
          "nothing heard for more than the grace period (" + std::to_string(options_.grace_period.count()) +
              " ms)" + (last_failure_.empty() ? "" : "; last probe: " + last_failure_)};
}

HealthProber::HealthProber(kube::Transport& transport, HealthOptions options,
                           std::function<Status(kube::HttpRequest&)> authorize,
                           std::function<void(const ReadyCondition&)> on_change)
    : transport_(transport),
      options_(options),
      authorize_(std::move(authorize)),
      on_change_(std::move(on_change)),
      tracker_(options) {
  thread_ = std::thread([this] { Loop(); });
}

HealthProber::~HealthProber() { Stop(); }

void HealthProber::Stop() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void HealthProber::WatchActivity() {
  std::lock_guard lock(mu_);
  tracker_.WatchActivity(HealthClock::now());
}

ReadyCondition HealthProber::Current() const {
  std::lock_guard lock(mu_);
  return current_;
}

std::chrono::system_clock::time_point HealthProber::last_probe() const {
  std::lock_guard lock(mu_);
  return last_probe_;
}

bool HealthProber::ProbeOnce(std::string* why) {
  kube::HttpRequest req;
  req.method = "GET";
  req.path_and_query = options_.probe_path;
  req.headers.emplace_back("Accept", "text/plain, application/json");
  // A probe slower than its timeout (by default a period) failed.
  req.timeout = options_.probe_timeout.count() > 0 ? options_.probe_timeout : options_.period;
  if (authorize_) {
    if (Status s = authorize_(req); !s.ok()) {
      *why = "credentials: " + s.message();
      return false;
    }
  }
  auto r = transport_.Send(req);
  if (!r.ok()) {
    *why = r.status().message();
    return false;
  }
  if (r->status != 200) {
    // Cut between characters, bytes that are not UTF-8 replaced: the
    // message goes into the store, a condition and Events, all JSON.
    std::string body = kube::internal::ValidUtf8(r->body, 200);
    std::replace(body.begin(), body.end(), '\n', ' ');
    *why = "HTTP " + std::to_string(r->status) + (body.empty() ? "" : ": " + body);
    return false;
  }
  return true;
}

void HealthProber::Loop() {
  bool first = true;
  for (;;) {
    std::string why;
    const bool ok = ProbeOnce(&why);
    ReadyCondition next;
    bool changed;
    {
      std::lock_guard lock(mu_);
      if (stop_) return;
      const auto now = HealthClock::now();
      ok ? tracker_.ProbeSucceeded(now) : tracker_.ProbeFailed(now, why);
      last_probe_ = std::chrono::system_clock::now();
      next = tracker_.Evaluate(now);
      // Counts in the message change every probe; the condition changes
      // only when its status or reason does.
      changed = first || next.status != current_.status || next.reason != current_.reason;
      current_ = next;
    }
    if (changed && on_change_) on_change_(next);
    first = false;
    std::unique_lock lock(mu_);
    if (cv_.wait_for(lock, options_.period, [&] { return stop_; })) return;
  }
}

}  // namespace kubefold::controllers
