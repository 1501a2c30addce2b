// Helpers shared by the state/ tests.
#pragma once

#include <chrono>
#include <string>

#include "state/batch.h"
#include "state/store.h"

namespace kubefold::state::testing {

// A clock the test moves by hand.
struct ManualClock {
  TimePoint now = TimePoint{} + std::chrono::hours(24 * 365 * 50);
  std::function<TimePoint()> Fn() {
    return [this] { return now; };
  }
  void Advance(std::chrono::milliseconds d) { now += d; }
};

inline WorkloadObject Deployment(const std::string& name, const std::string& json, int32_t replicas = 1) {
  WorkloadObject o;
  o.key = {"apps", "Deployment", name};
  o.object_json = json;
  o.summary.desired_replicas = replicas;
  o.summary.ready_replicas = replicas;
  o.summary.available_replicas = replicas;
  o.summary.generation = 1;
  o.summary.observed_generation = 1;
  return o;
}

}  // namespace kubefold::state::testing
