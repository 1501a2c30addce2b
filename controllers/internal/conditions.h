// Helpers the control loops share for writing to the host: metav1.Condition
// lists with Kubernetes' lastTransitionTime rule, and the cluster-local
// fields pruned from a manifest before it is applied elsewhere. Internal to
// controllers/: it exposes nlohmann::json.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::controllers::internal {

using Json = nlohmann::json;

struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;  // CamelCase
  std::string message;
  friend bool operator==(const Condition&, const Condition&) = default;
};

// `existing` (a status.conditions array, or null) with `updates` set: a
// condition whose status is unchanged keeps its lastTransitionTime (as
// apimachinery's meta.SetStatusCondition does); others get `now`.
// Conditions not named in `updates` are kept. Sorted by type.
Json SetConditions(const Json& existing, const std::vector<Condition>& updates, int64_t observed_generation,
                   std::chrono::system_clock::time_point now);

// The condition of `type` in a conditions array, or null.
const Json* FindCondition(const Json& conditions, std::string_view type);

// `manifest` without what only means something on the cluster it came from:
// metadata.uid, resourceVersion, generation, creationTimestamp,
// deletionTimestamp, deletionGracePeriodSeconds, managedFields, selfLink,
// ownerReferences, and the object's status.
Json PruneClusterLocal(Json manifest);

}  // namespace kubefold::controllers::internal
