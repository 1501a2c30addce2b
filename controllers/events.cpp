#include "controllers/events.h"

#include <cstdio>
#include <random>

#include <nlohmann/json.hpp>

#include "controllers/kube/internal/rfc3339.h"

namespace kubefold::controllers {
namespace {
constexpr auto kCorrelationWindow = std::chrono::minutes(10);
constexpr size_t kMaxRemembered = 4096;
}  // namespace

EventRecorder::EventRecorder(kube::RestClient& client, std::string instance, std::function<void(std::string_view)> log)
    : client_(client), instance_(std::move(instance)), log_(std::move(log)) {}

uint64_t EventRecorder::written() const {
  std::lock_guard lock(mu_);
  return written_;
}

void EventRecorder::Record(const ObjectRef& object, std::string_view type, std::string_view reason,
                           std::string_view message) {
  const auto steady = std::chrono::steady_clock::now();
  const std::string stamp = kube::internal::FormatRfc3339(std::chrono::system_clock::now());
  const std::string ns = object.ns.empty() ? "default" : object.ns;
  std::string key = object.kind + "\x1f" + object.ns + "\x1f" + object.name + "\x1f" + object.uid + "\x1f" +
                    std::string(type) + "\x1f" + std::string(reason) + "\x1f" + std::string(message);
  std::string patch_name;
  int count = 1;
  {
    std::lock_guard lock(mu_);
    if (seen_.size() > kMaxRemembered) {
      for (auto it = seen_.begin(); it != seen_.end();) {
        it = steady - it->second.last > kCorrelationWindow ? seen_.erase(it) : std::next(it);
      }
    }
    auto it = seen_.find(key);
    if (it != seen_.end() && steady - it->second.last <= kCorrelationWindow) {
      it->second.last = steady;
      count = ++it->second.count;
      patch_name = it->second.name;
    }
  }
  using nlohmann::json;
  if (!patch_name.empty()) {
    json patch = {{"count", count}, {"lastTimestamp", stamp}};
    auto r = client_.Patch(kube::ResourcePath("", "v1", "events", ns) + "/" + patch_name, patch.dump(),
                           kube::PatchOptions{});
    if (r.ok()) {
      std::lock_guard lock(mu_);
      ++written_;
      return;
    }
    if (log_) log_("event " + ns + "/" + patch_name + ": " + r.status().ToString());
    if (r.status().code() != StatusCode::kNotFound) return;
    // The Event expired on the server: write a new one.
  }
  // Names as client-go makes them: the object's name and a unique suffix.
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  char suffix[17];
  std::snprintf(suffix, sizeof suffix, "%016llx", static_cast<unsigned long long>(rng()));
  const std::string name = object.name + "." + suffix;
  json involved = {{"apiVersion", object.api_version}, {"kind", object.kind}, {"name", object.name}};
  if (!object.ns.empty()) involved["namespace"] = object.ns;
  if (!object.uid.empty()) involved["uid"] = object.uid;
  json event = {{"apiVersion", "v1"},
                {"kind", "Event"},
                {"metadata", {{"name", name}, {"namespace", ns}}},
                {"involvedObject", involved},
                {"reason", reason},
                {"message", message},
                {"type", type},
                {"count", 1},
                {"firstTimestamp", stamp},
                {"lastTimestamp", stamp},
                {"source", {{"component", "kubefold"}}},
                {"reportingComponent", "kubefold.io/kubefold"},
                {"reportingInstance", instance_}};
  auto r = client_.Create(kube::ResourcePath("", "v1", "events", ns), event.dump());
  if (!r.ok()) {
    if (log_) log_("event about " + object.kind + " " + object.name + ": " + r.status().ToString());
    return;
  }
  std::lock_guard lock(mu_);
  ++written_;
  seen_[key] = Seen{ns, name, 1, steady};
}

}  // namespace kubefold::controllers
