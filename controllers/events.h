// EventRecorder: core/v1 Events on the host about kubefold's objects, the
// way client-go's recorder writes them: one Event per (object, type, reason,
// message); a repeat within ten minutes raises its count and lastTimestamp
// instead of creating another. Events of cluster-scoped objects go to the
// "default" namespace, as Kubernetes puts them.
//
// Writing an Event is best effort: a failure is logged, never retried, and
// never blocks a control loop for longer than one request.
//
// Thread-safety: Record may be called from any thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <mutex>
#include <string>

#include "controllers/kube/rest_client.h"

namespace kubefold::controllers {

struct ObjectRef {
  std::string api_version;  // "kubefold.io/v1alpha1"
  std::string kind;
  std::string ns;  // "" for cluster-scoped
  std::string name;
  std::string uid;
};

class EventRecorder {
 public:
  // `client` talks to the host and must outlive the recorder; `instance`
  // names this replica (reportingInstance).
  EventRecorder(kube::RestClient& client, std::string instance, std::function<void(std::string_view)> log = {});

  // type: "Normal" or "Warning".
  void Record(const ObjectRef& object, std::string_view type, std::string_view reason, std::string_view message);

  uint64_t written() const;  // Events created or updated

 private:
  struct Seen {
    std::string ns, name;  // the Event's
    int count = 0;
    std::chrono::steady_clock::time_point last;
  };
  kube::RestClient& client_;
  const std::string instance_;
  std::function<void(std::string_view)> log_;
  mutable std::mutex mu_;
  std::map<std::string, Seen> seen_;  // Guarded by mu_
  uint64_t written_ = 0;              // Guarded by mu_
};

}  // namespace kubefold::controllers
