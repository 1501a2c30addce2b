#include "controllers/internal/conditions.h"

#include <algorithm>
#include <map>

#include "controllers/kube/internal/rfc3339.h"

namespace kubefold::controllers::internal {

const Json* FindCondition(const Json& conditions, std::string_view type) {
  if (!conditions.is_array()) return nullptr;
  for (const Json& c : conditions) {
    if (c.is_object() && c.value("type", "") == type) return &c;
  }
  return nullptr;
}

Json SetConditions(const Json& existing, const std::vector<Condition>& updates, int64_t observed_generation,
                   std::chrono::system_clock::time_point now) {
  std::map<std::string, Json> by_type;
  if (existing.is_array()) {
    for (const Json& c : existing) {
      if (c.is_object() && c.contains("type") && c["type"].is_string()) by_type[c["type"].get<std::string>()] = c;
    }
  }
  const std::string stamp = kube::internal::FormatRfc3339(now);
  for (const Condition& u : updates) {
    Json next = {{"type", u.type},
                 {"status", u.status},
                 {"reason", u.reason.empty() ? std::string("Unknown") : u.reason},
                 {"message", u.message},
                 {"lastTransitionTime", stamp}};
    if (observed_generation > 0) next["observedGeneration"] = observed_generation;
    auto it = by_type.find(u.type);
    if (it != by_type.end() && it->second.value("status", "") == u.status &&
        it->second.contains("lastTransitionTime")) {
      next["lastTransitionTime"] = it->second["lastTransitionTime"];
    }
    by_type[u.type] = std::move(next);
  }
  Json out = Json::array();
  for (auto& [type, c] : by_type) out.push_back(std::move(c));
  return out;
}

Json PruneClusterLocal(Json manifest) {
  if (manifest.contains("metadata") && manifest["metadata"].is_object()) {
    Json& m = manifest["metadata"];
    for (const char* f : {"uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                          "deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences"}) {
      m.erase(f);
    }
  }
  manifest.erase("status");
  return manifest;
}

}  // namespace kubefold::controllers::internal
