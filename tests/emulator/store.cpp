#include "tests/emulator/store.h"

#include <algorithm>

namespace kubefold::emulator {

ObjectStore::ObjectStore(std::size_t max_events) : max_events_(std::max<std::size_t>(max_events, 1)) {}

std::uint64_t ObjectStore::CurrentRv() const {
  std::lock_guard lock(mu_);
  return rv_;
}

ObjectPtr ObjectStore::Get(const std::string& resource, const std::string& ns, const std::string& name) const {
  std::lock_guard lock(mu_);
  auto r = objects_.find(resource);
  if (r == objects_.end()) return nullptr;
  auto it = r->second.find(MakeKey(ns, name));
  return it == r->second.end() ? nullptr : it->second;
}

void ObjectStore::AppendLocked(StoreEvent event) {
  log_.push_back(std::move(event));
  while (log_.size() > max_events_) {
    compacted_rv_ = log_.front().rv;
    log_.pop_front();
  }
}

namespace {

ObjectPtr Stamp(Json object, const std::string& ns, const std::string& name, std::uint64_t rv) {
  auto stored = std::make_shared<StoredObject>();
  object["metadata"]["resourceVersion"] = std::to_string(rv);
  stored->text = object.dump();
  if (stored->text.starts_with("{\"kind\":")) {
    const auto meta = stored->text.find(",\"metadata\":");
    if (meta != std::string::npos && stored->text.find("\"apiVersion\":") < meta) stored->body_start = meta + 1;
  }
  stored->json = std::move(object);
  stored->ns = ns;
  stored->name = name;
  stored->rv = rv;
  return stored;
}

}  // namespace

ObjectPtr ObjectStore::Mutate(const std::string& resource, const std::string& ns, const std::string& name,
                              const std::function<Mutation(const ObjectPtr& current)>& fn) {
  std::lock_guard lock(mu_);
  auto& objects = objects_[resource];
  const Key key = MakeKey(ns, name);
  auto it = objects.find(key);
  ObjectPtr current = it == objects.end() ? nullptr : it->second;
  Mutation m = fn(current);
  switch (m.kind) {
    case Mutation::Kind::kNone:
      return nullptr;
    case Mutation::Kind::kPut: {
      const std::uint64_t rv = ++rv_;
      ObjectPtr stored = Stamp(std::move(m.object), ns, name, rv);
      objects[key] = stored;
      AppendLocked({rv, resource, current ? EventType::kModified : EventType::kAdded, stored, current});
      changed_.notify_all();
      return stored;
    }
    case Mutation::Kind::kDelete: {
      if (!current) return nullptr;
      const std::uint64_t rv = ++rv_;
      ObjectPtr last = Stamp(current->json, ns, name, rv);
      objects.erase(it);
      AppendLocked({rv, resource, EventType::kDeleted, last, current});
      changed_.notify_all();
      return last;
    }
  }
  return nullptr;
}

std::size_t ObjectStore::DeleteAll(const std::string& resource, const std::string& ns) {
  std::lock_guard lock(mu_);
  auto r = objects_.find(resource);
  if (r == objects_.end()) return 0;
  std::size_t n = 0;
  for (auto it = r->second.begin(); it != r->second.end();) {
    if (!ns.empty() && it->second->ns != ns) {
      ++it;
      continue;
    }
    const std::uint64_t rv = ++rv_;
    ObjectPtr last = Stamp(it->second->json, it->second->ns, it->second->name, rv);
    AppendLocked({rv, resource, EventType::kDeleted, last, it->second});
    it = r->second.erase(it);
    ++n;
  }
  if (n > 0) changed_.notify_all();
  return n;
}

std::optional<ObjectStore::ListResult> ObjectStore::List(const std::string& resource,
                                                         std::optional<std::uint64_t> rv) const {
  std::map<Key, ObjectPtr> state;
  ListResult result;
  {
    std::lock_guard lock(mu_);
    if (rv && (*rv < compacted_rv_ || *rv > rv_)) return std::nullopt;
    auto r = objects_.find(resource);
    if (r != objects_.end()) state = r->second;
    result.rv = rv.value_or(rv_);
    if (rv && *rv < rv_) {
      // Roll back, newest first, every event of this resource after *rv.
      for (auto it = log_.rbegin(); it != log_.rend() && it->rv > *rv; ++it) {
        if (it->resource != resource) continue;
        const Key key = MakeKey(it->object->ns, it->object->name);
        if (it->previous) {
          state[key] = it->previous;
        } else {
          state.erase(key);
        }
      }
    }
  }
  result.objects.reserve(state.size());
  for (auto& [key, object] : state) result.objects.push_back(std::move(object));
  return result;
}

ObjectStore::WatchBatch ObjectStore::WaitEvents(const std::string& resource, std::uint64_t after_rv,
                                                std::chrono::steady_clock::time_point deadline,
                                                std::chrono::milliseconds poll,
                                                const std::function<bool()>& wake) const {
  WatchBatch batch;
  std::unique_lock lock(mu_);
  for (;;) {
    batch.compacted_rv = compacted_rv_;
    batch.current_rv = rv_;
    if (after_rv < compacted_rv_) {
      batch.expired = true;
      return batch;
    }
    if (rv_ > after_rv) {
      // The log is ascending in rv: find the first event after after_rv.
      auto first = std::upper_bound(log_.begin(), log_.end(), after_rv,
                                    [](std::uint64_t v, const StoreEvent& e) { return v < e.rv; });
      for (auto it = first; it != log_.end(); ++it) {
        if (it->resource == resource) batch.events.push_back(*it);
      }
      if (!batch.events.empty()) return batch;
      after_rv = rv_;  // nothing of ours yet: wait for later writes only
    }
    if (wake && wake()) return batch;
    const auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return batch;
    changed_.wait_until(lock, std::min(deadline, now + poll));
  }
}

bool ObjectStore::WaitForRv(std::uint64_t rv, std::chrono::steady_clock::time_point deadline) const {
  std::unique_lock lock(mu_);
  return changed_.wait_until(lock, deadline, [&] { return rv_ >= rv; });
}

void ObjectStore::Compact() {
  std::lock_guard lock(mu_);
  // The RV moves on (no object changes; RVs may skip) so that every RV handed
  // out before is now too old, including the newest one.
  compacted_rv_ = ++rv_;
  log_.clear();
  changed_.notify_all();
}

void ObjectStore::WakeAll() {
  std::lock_guard lock(mu_);
  changed_.notify_all();
}

}  // namespace kubefold::emulator
