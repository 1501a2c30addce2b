// The workload kinds kubefold watches and fails over (group apps, version
// v1), and their resources (plural path segments).
#pragma once

#include <string_view>

namespace kubefold::controllers {

// "deployments" for "Deployment", ...; nullptr for a kind kubefold does not handle.
inline const char* WorkloadResource(std::string_view kind) {
  if (kind == "Deployment") return "deployments";
  if (kind == "StatefulSet") return "statefulsets";
  if (kind == "DaemonSet") return "daemonsets";
  return nullptr;
}

}  // namespace kubefold::controllers
