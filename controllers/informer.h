// Informer: a reflector on the host cluster plus an in-memory cache of what
// it mirrors, keyed "namespace/name" (or "name" for cluster-scoped objects),
// and a callback naming each key that changed — controller-runtime's cache
// and event handler in one. The control loops read the cache and queue the
// keys they are told about; they never list the API server themselves.
//
// Objects are kept as the reflector decoded them (pruned JSON plus the
// resourceVersion and uid); readers get shared immutable copies.
//
// Thread-safety: every member function may be called from any thread. The
// callback runs on the informer's thread, never under its lock.
#pragma once

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/kube/reflector.h"
#include "controllers/kube/rest_client.h"

namespace kubefold::controllers {

using ObjectPtr = std::shared_ptr<const kube::DecodedObject>;

// "ns/name", or "name" when ns is empty.
std::string ObjectKey(std::string_view ns, std::string_view name);

class Informer {
 public:
  // `client` must outlive the informer. `on_change` gets the key of every
  // object added, modified or deleted (after the cache holds the change),
  // and every key of a relist that differs.
  Informer(kube::RestClient& client, kube::ReflectorOptions options,
           std::function<void(const std::string& key)> on_change,
           std::function<void(std::string_view)> log = {});
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  void Start();  // runs the reflector on a thread of its own
  void Stop();   // idempotent

  // True once the first list has been folded into the cache.
  bool synced() const { return synced_.load(); }
  ObjectPtr Get(const std::string& key) const;  // null when absent
  std::vector<ObjectPtr> List() const;           // ordered by key

 private:
  void OnEvent(kube::ReflectorEvent&& e);

  kube::RestClient& client_;
  std::function<void(const std::string&)> on_change_;
  std::unique_ptr<kube::Reflector> reflector_;
  std::thread thread_;
  std::atomic<bool> synced_{false};
  mutable std::mutex mu_;
  std::map<std::string, ObjectPtr> cache_;  // Guarded by mu_
};

}  // namespace kubefold::controllers
