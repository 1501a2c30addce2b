#include "controllers/leader_election.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <ctime>

#include "controllers/kube/internal/rfc3339.h"
#include "controllers/kube/paths.h"

namespace kubefold::controllers {
namespace {

using Json = nlohmann::json;
using SteadyClock = std::chrono::steady_clock;

// A MicroTime: RFC 3339 with exactly six fractional digits, UTC.
std::string MicroTimeNow() { return kube::internal::FormatRfc3339Micro(std::chrono::system_clock::now()); }

}  // namespace

Status ValidateLeaderElection(const LeaderElectionOptions& o) {
  if (o.identity.empty()) return InvalidArgument("leader election: identity must be set (the pod name)");
  if (o.lease_namespace.empty() || o.lease_name.empty()) {
    return InvalidArgument("leader election: the Lease's namespace and name must be set");
  }
  if (o.lease_duration <= o.renew_deadline) {
    return InvalidArgument("leader election: lease duration (" + std::to_string(o.lease_duration.count()) +
                           " ms) must be greater than the renew deadline (" +
                           std::to_string(o.renew_deadline.count()) + " ms)");
  }
  if (o.renew_deadline.count() <= 1.2 * static_cast<double>(o.retry_period.count())) {
    return InvalidArgument("leader election: renew deadline (" + std::to_string(o.renew_deadline.count()) +
                           " ms) must be greater than 1.2 × the retry period (" +
                           std::to_string(o.retry_period.count()) + " ms)");
  }
  return Status::Ok();
}

LeaderElector::LeaderElector(kube::RestClient& client, LeaderElectionOptions options, LeaderElectionHooks hooks)
    : client_(client), options_(std::move(options)), hooks_(std::move(hooks)) {}

std::string LeaderElector::LeasePath() const {
  return kube::ResourcePath("coordination.k8s.io", "v1", "leases", options_.lease_namespace, options_.lease_name);
}

void LeaderElector::Log(std::string_view message) const {
  if (hooks_.log) hooks_.log(message);
}

std::string LeaderElector::leader() const {
  std::lock_guard lock(mu_);
  return observed_holder_;
}

bool LeaderElector::Sleep(std::chrono::milliseconds d) {
  std::unique_lock lock(mu_);
  return !stop_cv_.wait_for(lock, d, [&] { return stop_.load(); });
}

void LeaderElector::Stop() {
  std::lock_guard lock(mu_);
  stop_ = true;
  stop_cv_.notify_all();
}

bool LeaderElector::TryAcquireOrRenew() {
  const auto now = SteadyClock::now();
  const std::string now_text = MicroTimeNow();
  const auto duration_s = std::chrono::duration_cast<std::chrono::seconds>(options_.lease_duration).count();
  auto got = client_.Get(LeasePath());
  if (!got.ok() && got.status().code() == StatusCode::kNotFound) {
    Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", options_.lease_name}, {"namespace", options_.lease_namespace}}},
                  {"spec",
                   {{"holderIdentity", options_.identity},
                    {"leaseDurationSeconds", duration_s},
                    {"acquireTime", now_text},
                    {"renewTime", now_text},
                    {"leaseTransitions", 0}}}};
    auto created = client_.Create(
        kube::ResourcePath("coordination.k8s.io", "v1", "leases", options_.lease_namespace, ""), lease.dump());
    if (!created.ok()) {
      // 409: another candidate created it first.
      Log("leader election: creating the Lease: " + created.status().ToString());
      return false;
    }
    Observe(options_.identity, now_text, now);
    return true;
  }
  if (!got.ok()) {
    Log("leader election: reading the Lease: " + got.status().ToString());
    return false;
  }
  Json lease = Json::parse(*got, nullptr, /*allow_exceptions=*/false);
  if (!lease.is_object() || !lease.contains("metadata")) {
    Log("leader election: the Lease is not a JSON object");
    return false;
  }
  Json& spec = lease["spec"];
  if (!spec.is_object()) spec = Json::object();
  const std::string holder = spec.value("holderIdentity", "");
  const std::string renew = spec.value("renewTime", "");
  const std::int64_t held_for_s = spec.value("leaseDurationSeconds", std::int64_t{0});
  // A changed record starts the holder's term on our clock: no trust in the
  // other machine's clock, only in the fact that it wrote something.
  if (holder != leader() || renew != observed_renew_time_) Observe(holder, renew, now);
  if (!holder.empty() && holder != options_.identity && now < observed_at_ + std::chrono::seconds(held_for_s)) {
    return false;  // someone else holds it and is alive
  }
  if (holder != options_.identity) {
    spec["acquireTime"] = now_text;
    spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  spec["holderIdentity"] = options_.identity;
  spec["leaseDurationSeconds"] = duration_s;
  spec["renewTime"] = now_text;
  // The update carries the resourceVersion read: a race is a 409.
  auto updated = client_.Update(LeasePath(), lease.dump());
  if (!updated.ok()) {
    Log("leader election: updating the Lease: " + updated.status().ToString());
    return false;
  }
  Observe(options_.identity, now_text, now);
  return true;
}

void LeaderElector::Observe(const std::string& holder, const std::string& renew_time,
                            std::chrono::steady_clock::time_point at) {
  observed_renew_time_ = renew_time;
  observed_at_ = at;
  std::lock_guard lock(mu_);
  observed_holder_ = holder;
}

void LeaderElector::Release() {
  auto got = client_.Get(LeasePath());
  if (!got.ok()) return;
  Json lease = Json::parse(*got, nullptr, /*allow_exceptions=*/false);
  if (!lease.is_object() || !lease["spec"].is_object() ||
      lease["spec"].value("holderIdentity", "") != options_.identity) {
    return;
  }
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = MicroTimeNow();
  auto updated = client_.Update(LeasePath(), lease.dump());
  if (!updated.ok()) Log("leader election: releasing the Lease: " + updated.status().ToString());
}

void LeaderElector::Run() {
  std::string last_announced;
  while (!stop_.load()) {
    // Campaign until we hold the Lease.
    while (!stop_.load()) {
      const bool acquired = TryAcquireOrRenew();
      const std::string holder = leader();
      if (holder != last_announced && !holder.empty()) {
        last_announced = holder;
        if (hooks_.new_leader) hooks_.new_leader(holder);
      }
      if (acquired) break;
      if (!Sleep(options_.retry_period)) break;
    }
    if (stop_.load()) break;
    leading_ = true;
    Log("leader election: " + options_.identity + " leads");
    if (hooks_.started_leading) hooks_.started_leading();
    // Lead: renew every retry period; give up when no renewal succeeded
    // within the renew deadline.
    auto last_renewed = SteadyClock::now();
    while (!stop_.load()) {
      if (!Sleep(options_.retry_period)) break;
      if (TryAcquireOrRenew()) {
        last_renewed = SteadyClock::now();
      } else if (SteadyClock::now() - last_renewed > options_.renew_deadline) {
        Log("leader election: " + options_.identity + " could not renew within the renew deadline");
        break;
      }
    }
    leading_ = false;
    if (hooks_.stopped_leading) hooks_.stopped_leading();
  }
  Release();
}

}  // namespace kubefold::controllers
