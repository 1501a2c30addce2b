// A realistic Deployment as a watch event, ~4 KB: kubectl-applied (with the
// last-applied annotation), managedFields from kubectl and the controller
// manager, status with conditions. What watch_bench loads into kube-emulator.
//
// Deployments differ the way a cluster's do: their own uid, resourceVersion,
// timestamps, generation and ReplicaSet hash, and an image, team, tier,
// replica count, container port, environment and resources drawn from a
// few choices each. The store compresses objects against another of their
// kind (state/object_codec.h), so copies differing only in name would
// flatter it.
#pragma once

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace kubefold::bench {

// splitmix64: the fixture's choices, the same for `i` in every run.
inline uint64_t FixtureMix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// The object of deployment `i` ("checkout-%05d" in namespace "shop").
inline nlohmann::json DeploymentObject(int i) {
  char name[32];
  std::snprintf(name, sizeof(name), "checkout-%05d", i);
  uint64_t seed = static_cast<uint64_t>(i) * 7919;
  auto pick = [&](uint64_t n) { return FixtureMix(++seed) % n; };
  static const char* const kApps[] = {"checkout", "cart", "search", "payments", "catalog", "users",
                                      "orders", "shipping", "ads", "reviews", "inventory", "gateway"};
  static const char* const kTeams[] = {"payments", "storefront", "platform", "growth", "data", "identity"};
  static const char* const kTiers[] = {"web", "backend", "batch"};
  static const char* const kCpu[] = {"100m", "250m", "500m", "1"};
  static const char* const kMemory[] = {"128Mi", "256Mi", "512Mi", "1Gi"};
  static const char* const kLimit[] = {"512Mi", "1Gi", "2Gi"};
  static const char* const kLevels[] = {"info", "debug", "warn"};
  static const char* const kRegions[] = {"eu-west-1", "us-east-2", "ap-south-1"};
  static const int kPorts[] = {8080, 8443, 9090, 3000};
  const char* app = kApps[pick(12)];
  const char* team = kTeams[pick(6)];
  const int replicas = 1 + static_cast<int>(pick(6));
  const int generation = 1 + static_cast<int>(pick(80));
  const int port = kPorts[pick(4)];
  char image[96];
  std::snprintf(image, sizeof(image), "registry.example.com/%s/%s:%d.%d.%d", team, app, 1 + static_cast<int>(pick(3)),
                static_cast<int>(pick(60)), static_cast<int>(pick(20)));
  char uid[40];
  std::snprintf(uid, sizeof(uid), "%08llx-%04llx-4%03llx-%04llx-%012llx", static_cast<unsigned long long>(pick(1ull << 32)),
                static_cast<unsigned long long>(pick(1 << 16)), static_cast<unsigned long long>(pick(1 << 12)),
                static_cast<unsigned long long>(0x8000 | pick(1 << 14)), static_cast<unsigned long long>(pick(1ull << 48)));
  auto stamp = [&](int month_from, int month_to) {
    char t[32];
    std::snprintf(t, sizeof(t), "2026-%02d-%02dT%02d:%02d:%02dZ", month_from + static_cast<int>(pick(month_to - month_from + 1)),
                  1 + static_cast<int>(pick(28)), static_cast<int>(pick(24)), static_cast<int>(pick(60)),
                  static_cast<int>(pick(60)));
    return std::string(t);
  };
  const std::string created = stamp(1, 10);
  const std::string applied_at = stamp(11, 11);
  const std::string available_at = stamp(11, 11);
  char rs_hash[16];
  std::snprintf(rs_hash, sizeof(rs_hash), "%09llx", static_cast<unsigned long long>(pick(1ull << 36)));
  nlohmann::json env = {{{"name", "LOG_LEVEL"}, {"value", kLevels[pick(3)]}}, {{"name", "REGION"}, {"value", kRegions[pick(3)]}}};
  if (pick(2) == 0) env.push_back({{"name", "DB_HOST"}, {"value", std::string(app) + "-db." + team + ".svc"}});
  nlohmann::json spec = {
      {"replicas", replicas},
      {"revisionHistoryLimit", 10},
      {"progressDeadlineSeconds", 600},
      {"selector", {{"matchLabels", {{"app", name}}}}},
      {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}}},
      {"template",
       {{"metadata", {{"labels", {{"app", name}, {"tier", kTiers[pick(3)]}}}}},
        {"spec",
         {{"containers",
           {{{"name", "app"},
             {"image", image},
             {"ports", {{{"containerPort", port}, {"protocol", "TCP"}}}},
             {"env", env},
             {"resources", {{"requests", {{"cpu", kCpu[pick(4)]}, {"memory", kMemory[pick(4)]}}}, {"limits", {{"memory", kLimit[pick(3)]}}}}},
             {"readinessProbe", {{"httpGet", {{"path", "/healthz"}, {"port", port}, {"scheme", "HTTP"}}}}},
             {"terminationMessagePath", "/dev/termination-log"},
             {"terminationMessagePolicy", "File"},
             {"imagePullPolicy", "IfNotPresent"}}}},
          {"restartPolicy", "Always"},
          {"terminationGracePeriodSeconds", 30},
          {"dnsPolicy", "ClusterFirst"},
          {"securityContext", nlohmann::json::object()},
          {"schedulerName", "default-scheduler"}}}}}};
  nlohmann::json managed = nlohmann::json::array();
  managed.push_back({{"manager", "kubectl-client-side-apply"},
                     {"operation", "Update"},
                     {"apiVersion", "apps/v1"},
                     {"time", applied_at},
                     {"fieldsType", "FieldsV1"},
                     {"fieldsV1",
                      {{"f:metadata", {{"f:annotations", {{".", nlohmann::json::object()}, {"f:kubectl.kubernetes.io/last-applied-configuration", nlohmann::json::object()}}}}},
                       {"f:spec",
                        {{"f:progressDeadlineSeconds", nlohmann::json::object()},
                         {"f:replicas", nlohmann::json::object()},
                         {"f:revisionHistoryLimit", nlohmann::json::object()},
                         {"f:selector", nlohmann::json::object()},
                         {"f:strategy", {{"f:rollingUpdate", {{".", nlohmann::json::object()}, {"f:maxSurge", nlohmann::json::object()}, {"f:maxUnavailable", nlohmann::json::object()}}}, {"f:type", nlohmann::json::object()}}},
                         {"f:template",
                          {{"f:metadata", {{"f:labels", {{".", nlohmann::json::object()}, {"f:app", nlohmann::json::object()}, {"f:tier", nlohmann::json::object()}}}}},
                           {"f:spec", {{"f:containers", {{"k:{\"name\":\"app\"}", {{".", nlohmann::json::object()}, {"f:env", nlohmann::json::object()}, {"f:image", nlohmann::json::object()}, {"f:imagePullPolicy", nlohmann::json::object()}, {"f:name", nlohmann::json::object()}, {"f:ports", nlohmann::json::object()}, {"f:readinessProbe", nlohmann::json::object()}, {"f:resources", nlohmann::json::object()}}}}}, {"f:dnsPolicy", nlohmann::json::object()}, {"f:restartPolicy", nlohmann::json::object()}}}}}}}}}});
  managed.push_back({{"manager", "kube-controller-manager"},
                     {"operation", "Update"},
                     {"apiVersion", "apps/v1"},
                     {"time", available_at},
                     {"fieldsType", "FieldsV1"},
                     {"subresource", "status"},
                     {"fieldsV1",
                      {{"f:metadata", {{"f:annotations", {{"f:deployment.kubernetes.io/revision", nlohmann::json::object()}}}}},
                       {"f:status", {{"f:availableReplicas", nlohmann::json::object()}, {"f:conditions", {{".", nlohmann::json::object()}, {"k:{\"type\":\"Available\"}", {{".", nlohmann::json::object()}, {"f:lastTransitionTime", nlohmann::json::object()}, {"f:lastUpdateTime", nlohmann::json::object()}, {"f:message", nlohmann::json::object()}, {"f:reason", nlohmann::json::object()}, {"f:status", nlohmann::json::object()}, {"f:type", nlohmann::json::object()}}}}}, {"f:observedGeneration", nlohmann::json::object()}, {"f:readyReplicas", nlohmann::json::object()}, {"f:replicas", nlohmann::json::object()}, {"f:updatedReplicas", nlohmann::json::object()}}}}}});
  nlohmann::json applied = {{"apiVersion", "apps/v1"}, {"kind", "Deployment"}, {"metadata", {{"name", name}, {"namespace", "shop"}}}, {"spec", spec}};
  nlohmann::json obj = {
      {"apiVersion", "apps/v1"},
      {"kind", "Deployment"},
      {"metadata",
       {{"name", name},
        {"namespace", "shop"},
        {"uid", uid},
        {"resourceVersion", std::to_string(4811000 + i)},
        {"generation", generation},
        {"creationTimestamp", created},
        {"labels", {{"app", name}, {"team", team}}},
        {"annotations", {{"deployment.kubernetes.io/revision", std::to_string(1 + generation / 3)}, {"kubectl.kubernetes.io/last-applied-configuration", applied.dump() + "\n"}}},
        {"managedFields", managed}}},
      {"spec", spec},
      {"status",
       {{"observedGeneration", generation},
        {"replicas", replicas},
        {"updatedReplicas", replicas},
        {"readyReplicas", replicas},
        {"availableReplicas", replicas},
        {"conditions",
         {{{"type", "Available"}, {"status", "True"}, {"lastUpdateTime", available_at}, {"lastTransitionTime", available_at}, {"reason", "MinimumReplicasAvailable"}, {"message", "Deployment has minimum availability."}},
          {{"type", "Progressing"}, {"status", "True"}, {"lastUpdateTime", available_at}, {"lastTransitionTime", created}, {"reason", "NewReplicaSetAvailable"}, {"message", "ReplicaSet \"" + std::string(name) + "-" + rs_hash + "\" has successfully progressed."}}}}}}};
  return obj;
}

// The watch line (with its "\n") of a MODIFIED event for deployment `i`.
inline std::string DeploymentEvent(int i) {
  return nlohmann::json{{"type", "MODIFIED"}, {"object", DeploymentObject(i)}}.dump() + "\n";
}

}  // namespace kubefold::bench

