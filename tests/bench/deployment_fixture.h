// A realistic Deployment as a watch event, ~4 KB: kubectl-applied (with the
// last-applied annotation), managedFields from kubectl and the controller
// manager, status with conditions. What watch_bench loads into kube-emulator.
#pragma once

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

namespace kubefold::bench {

// The object of deployment `i` ("checkout-%05d" in namespace "shop").
inline nlohmann::json DeploymentObject(int i) {
  char name[32];
  std::snprintf(name, sizeof(name), "checkout-%05d", i);
  nlohmann::json spec = {
      {"replicas", 3},
      {"revisionHistoryLimit", 10},
      {"progressDeadlineSeconds", 600},
      {"selector", {{"matchLabels", {{"app", name}}}}},
      {"strategy", {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", "25%"}, {"maxUnavailable", "25%"}}}}},
      {"template",
       {{"metadata", {{"labels", {{"app", name}, {"tier", "web"}}}}},
        {"spec",
         {{"containers",
           {{{"name", "app"},
             {"image", "registry.example.com/shop/checkout:1.42.7"},
             {"ports", {{{"containerPort", 8080}, {"protocol", "TCP"}}}},
             {"env", {{{"name", "LOG_LEVEL"}, {"value", "info"}}, {{"name", "REGION"}, {"value", "eu-west-1"}}}},
             {"resources", {{"requests", {{"cpu", "250m"}, {"memory", "256Mi"}}}, {"limits", {{"memory", "512Mi"}}}}},
             {"readinessProbe", {{"httpGet", {{"path", "/healthz"}, {"port", 8080}, {"scheme", "HTTP"}}}}},
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
                     {"time", "2026-11-20T09:12:44Z"},
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
                     {"time", "2026-11-21T17:03:09Z"},
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
        {"uid", "5f0c8a43-2d1e-4b7a-9d51-0c7f9f0e6a12"},
        {"resourceVersion", std::to_string(4811000 + i)},
        {"generation", 12},
        {"creationTimestamp", "2026-10-02T08:00:00Z"},
        {"labels", {{"app", name}, {"team", "payments"}}},
        {"annotations", {{"deployment.kubernetes.io/revision", "12"}, {"kubectl.kubernetes.io/last-applied-configuration", applied.dump() + "\n"}}},
        {"managedFields", managed}}},
      {"spec", spec},
      {"status",
       {{"observedGeneration", 12},
        {"replicas", 3},
        {"updatedReplicas", 3},
        {"readyReplicas", 3},
        {"availableReplicas", 3},
        {"conditions",
         {{{"type", "Available"}, {"status", "True"}, {"lastUpdateTime", "2026-11-21T17:03:09Z"}, {"lastTransitionTime", "2026-11-21T17:03:09Z"}, {"reason", "MinimumReplicasAvailable"}, {"message", "Deployment has minimum availability."}},
          {{"type", "Progressing"}, {"status", "True"}, {"lastUpdateTime", "2026-11-21T17:03:09Z"}, {"lastTransitionTime", "2026-10-02T08:00:00Z"}, {"reason", "NewReplicaSetAvailable"}, {"message", "ReplicaSet \"checkout-7d9f8c6b5\" has successfully progressed."}}}}}}};
  return obj;
}

// The watch line (with its "\n") of a MODIFIED event for deployment `i`.
inline std::string DeploymentEvent(int i) {
  return nlohmann::json{{"type", "MODIFIED"}, {"object", DeploymentObject(i)}}.dump() + "\n";
}

}  // namespace kubefold::bench

