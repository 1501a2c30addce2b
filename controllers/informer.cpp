#include "controllers/informer.h"

#include <utility>

namespace kubefold::controllers {

std::string ObjectKey(std::string_view ns, std::string_view name) {
  if (ns.empty()) return std::string(name);
  std::string key;
  key.reserve(ns.size() + 1 + name.size());
  key.append(ns).append("/").append(name);
  return key;
}

Informer::Informer(kube::RestClient& client, kube::ReflectorOptions options,
                   std::function<void(const std::string& key)> on_change, std::function<void(std::string_view)> log)
    : client_(client), on_change_(std::move(on_change)) {
  kube::ReflectorHooks hooks;
  hooks.sink = [this](kube::ReflectorEvent&& e) { OnEvent(std::move(e)); };
  hooks.authorize = [this](kube::HttpRequest& r) { return client_.Authorize(r); };
  hooks.throttle = [this] { client_.Throttle(); };
  hooks.on_unauthorized = [this] { client_.OnUnauthorized(); };
  hooks.log = std::move(log);
  reflector_ = std::make_unique<kube::Reflector>(client_.transport(), std::move(options), std::move(hooks));
}

Informer::~Informer() { Stop(); }

void Informer::Start() {
  if (thread_.joinable()) return;
  thread_ = std::thread([this] { reflector_->Run(); });
}

void Informer::Stop() {
  reflector_->Stop();
  if (thread_.joinable()) thread_.join();
}

ObjectPtr Informer::Get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = cache_.find(key);
  return it == cache_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::List() const {
  std::lock_guard lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(cache_.size());
  for (const auto& [key, o] : cache_) out.push_back(o);
  return out;
}

void Informer::OnEvent(kube::ReflectorEvent&& e) {
  std::vector<std::string> changed;
  {
    std::lock_guard lock(mu_);
    switch (e.type) {
      case kube::ReflectorEventType::kReplace: {
        std::map<std::string, ObjectPtr> next;
        for (auto& o : e.objects) {
          std::string key = ObjectKey(o.ns, o.workload.key.name);
          auto it = cache_.find(key);
          if (it == cache_.end() || it->second->resource_version != o.resource_version) changed.push_back(key);
          next.emplace(std::move(key), std::make_shared<const kube::DecodedObject>(std::move(o)));
        }
        for (const auto& [key, o] : cache_) {
          if (!next.contains(key)) changed.push_back(key);
        }
        cache_.swap(next);
        break;
      }
      case kube::ReflectorEventType::kSynced:
        break;
      case kube::ReflectorEventType::kAdded:
      case kube::ReflectorEventType::kModified: {
        std::string key = ObjectKey(e.object.ns, e.object.workload.key.name);
        changed.push_back(key);
        cache_[std::move(key)] = std::make_shared<const kube::DecodedObject>(std::move(e.object));
        break;
      }
      case kube::ReflectorEventType::kDeleted: {
        std::string key = ObjectKey(e.object.ns, e.object.workload.key.name);
        cache_.erase(key);
        changed.push_back(std::move(key));
        break;
      }
    }
  }
  if (e.type == kube::ReflectorEventType::kSynced) synced_ = true;
  if (on_change_) {
    for (const auto& key : changed) on_change_(key);
  }
}

}  // namespace kubefold::controllers
