#include "controllers/folder.h"

#include <unordered_set>
#include <utility>

#include "controllers/allocator.h"
#include "controllers/health.h"

namespace kubefold::controllers {

Folder::Folder(state::Store& store, FolderOptions options, std::function<void(std::string_view)> log)
    : store_(store), options_(options), log_(std::move(log)) {
  thread_ = std::thread([this] { Loop(); });
}

Folder::~Folder() { Stop(); }

void Folder::Push(Pending p) {
  std::lock_guard lock(mu_);
  if (stopping_) return;
  pending_.push_back(std::move(p));
  ++pushed_;
  cv_.notify_all();
}

std::function<void(kube::ReflectorEvent&&)> Folder::Sink(const std::string& cluster, const kube::ResourceType& kind,
                                                         const std::string& only_namespace) {
  return [this, cluster, group = kind.group, resource_kind = kind.kind, only_namespace,
          dict = static_cast<const state::ObjectDictionary*>(nullptr)](kube::ReflectorEvent&& event) mutable {
    if (options_.compress_objects) {
      // A reflector calls its sink from its own thread only.
      auto compress = [&](state::WorkloadObject& w) {
        if (dict == nullptr) dict = state::ObjectDictionary::ForKind(cluster, group, resource_kind, w.object_json);
        w.compress_with = dict;
      };
      if (event.type == kube::ReflectorEventType::kAdded || event.type == kube::ReflectorEventType::kModified) {
        compress(event.object.workload);
      } else if (event.type == kube::ReflectorEventType::kReplace) {
        for (auto& o : event.objects) compress(o.workload);
      }
    }
    Pending p;
    p.kind = Pending::Kind::kEvent;
    p.cluster = cluster;
    p.only_namespace = only_namespace;
    p.group = group;
    p.resource_kind = resource_kind;
    p.event = std::move(event);
    p.received = std::chrono::system_clock::now();
    Push(std::move(p));
  };
}

void Folder::AddCluster(const std::string& cluster) { PushCluster(Pending::Kind::kAddCluster, cluster); }

void Folder::RemoveCluster(const std::string& cluster) { PushCluster(Pending::Kind::kRemoveCluster, cluster); }

void Folder::SetHealth(const std::string& cluster, std::string record_json) {
  Pending p;
  p.kind = Pending::Kind::kHealth;
  p.cluster = cluster;
  p.health_json = std::move(record_json);
  p.received = std::chrono::system_clock::now();
  Push(std::move(p));
}

void Folder::PushCluster(Pending::Kind kind, const std::string& cluster) {
  Pending p;
  p.kind = kind;
  p.cluster = cluster;
  p.received = std::chrono::system_clock::now();
  Push(std::move(p));
}

bool Folder::AddTo(state::Batch& batch, Pending& p) {
  Status s;
  switch (p.kind) {
    case Pending::Kind::kAddCluster:
      s = batch.AddCluster(p.cluster, p.received);
      break;
    case Pending::Kind::kRemoveCluster:
      s = batch.RemoveCluster(p.cluster, p.received);
      break;
    case Pending::Kind::kHealth: {
      state::WorkloadObject o;
      o.key = {kHealthGroup, kHealthKind, kHealthName};
      o.object_json = std::move(p.health_json);
      s = batch.Upsert(p.cluster, kHealthNamespace, o, p.received);
      break;
    }
    case Pending::Kind::kEvent: {
      kube::ReflectorEvent& e = p.event;
      switch (e.type) {
        case kube::ReflectorEventType::kAdded:
        case kube::ReflectorEventType::kModified:
          s = batch.Upsert(p.cluster, e.object.ns, e.object.workload, p.received);
          break;
        case kube::ReflectorEventType::kDeleted:
          s = batch.Delete(p.cluster, e.object.ns,
                           state::WorkloadKeyView(e.object.workload.key.group, e.object.workload.key.kind,
                                                  e.object.workload.key.name),
                           p.received);
          break;
        case kube::ReflectorEventType::kReplace: {
          if (!p.only_namespace.empty()) {
            AddNamespaceReplace(batch, p);
            return true;
          }
          std::vector<state::NamespacedObject> objects;
          objects.reserve(e.objects.size());
          for (auto& o : e.objects) objects.push_back({std::move(o.ns), std::move(o.workload)});
          s = batch.ReplaceKind(p.cluster, p.group, p.resource_kind, objects, p.received);
          break;
        }
        case kube::ReflectorEventType::kSynced: {
          std::lock_guard lock(mu_);
          ++stats_.synced[p.cluster];
          return true;
        }
      }
      break;
    }
  }
  if (!s.ok()) {
    if (log_) log_("folder: cluster " + p.cluster + ": event refused: " + s.ToString());
    std::lock_guard lock(mu_);
    ++stats_.rejected;
    return false;
  }
  return true;
}

void Folder::Loop() {
  std::vector<Pending> taken;
  std::size_t relisted_since_release = 0;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !pending_.empty(); });
      if (pending_.empty() && stopping_) {
        exited_ = true;
        cv_.notify_all();
        return;
      }
      // Take up to max_batch items; the rest wait for the next batch.
      if (pending_.size() <= options_.max_batch) {
        taken.swap(pending_);
      } else {
        taken.assign(std::make_move_iterator(pending_.begin()),
                     std::make_move_iterator(pending_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch)));
        pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(options_.max_batch));
      }
      stats_.events += taken.size();
    }
    state::Batch batch;
    batch.Reserve(taken.size());
    for (auto& p : taken) {
      if (p.kind == Pending::Kind::kEvent && p.event.type == kube::ReflectorEventType::kReplace) {
        relisted_since_release += p.event.objects.size();
      }
      AddTo(batch, p);
    }
    ApplyBatch(batch);
    const std::size_t items = taken.size();
    taken.clear();  // frees what the reflectors decoded
    bool released = false;
    if (options_.release_after_relisted > 0 && relisted_since_release >= options_.release_after_relisted) {
      if (!ReleaseFreedMemory() && log_) log_("folder: the allocator refused to release freed memory after relists");
      relisted_since_release = 0;
      released = true;
    }
    std::lock_guard lock(mu_);
    applied_items_ += items;
    stats_.releases += released ? 1 : 0;
    cv_.notify_all();
  }
}

void Folder::ApplyBatch(state::Batch& batch) {
  state::ApplyResult result;
  if (!batch.empty()) {
    auto applied = store_.Apply(std::move(batch));
    batch = state::Batch();
    if (!applied.ok()) {
      if (log_) log_("folder: a batch was refused: " + applied.status().ToString());
    } else {
      result = *applied;
    }
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.batches;
    stats_.published += result.published ? 1 : 0;
    stats_.applied += result.applied;
    stats_.noops += result.noops;
  }
  if (result.published && options_.on_published) options_.on_published(result.seq);
}

void Folder::AddNamespaceReplace(state::Batch& batch, Pending& p) {
  ApplyBatch(batch);  // the store must hold everything before this relist
  kube::ReflectorEvent& e = p.event;
  std::unordered_set<std::string> listed;
  for (auto& o : e.objects) {
    if (o.ns != p.only_namespace) continue;  // cannot happen with a namespaced watch; never trusted
    listed.insert(o.workload.key.name);
    Status s = batch.Upsert(p.cluster, o.ns, o.workload, p.received);
    if (!s.ok()) {
      if (log_) log_("folder: cluster " + p.cluster + ": event refused: " + s.ToString());
      std::lock_guard lock(mu_);
      ++stats_.rejected;
    }
  }
  const state::Snapshot current = store_.Current();
  std::vector<std::string> gone;
  current.ForEachWorkload(p.cluster, p.only_namespace, [&](const state::WorkloadRef& w) {
    const state::Record& r = *w.record;
    if (r.group() == p.group && r.kind() == p.resource_kind && !listed.contains(std::string(r.name()))) {
      gone.emplace_back(r.name());
    }
    return true;
  });
  for (const std::string& name : gone) {
    (void)batch.Delete(p.cluster, p.only_namespace, state::WorkloadKeyView(p.group, p.resource_kind, name),
                       p.received);
  }
}

std::uint64_t Folder::Flush() {
  std::unique_lock lock(mu_);
  const std::uint64_t target = pushed_;
  cv_.wait(lock, [&] { return applied_items_ >= target || exited_; });
  lock.unlock();
  return store_.Current().seq();
}

void Folder::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

FolderStats Folder::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace kubefold::controllers
