// The object store of one emulated cluster: what etcd plus the watch cache
// are to a kube-apiserver.
//
// One monotonic resourceVersion counter per cluster (spec §8.3); every write
// takes the next value and appends an event to a bounded log. The log lets a
// watch resume from any retained RV and lets a list be served "as of" a
// retained RV (continue tokens, resourceVersionMatch=Exact) by rolling the
// current state back. Compaction (automatic when the log is full, or on
// demand as a fault) forgets history: a watch or a paged list at a compacted
// RV gets 410.
//
// Objects are immutable once stored and shared by pointer; each carries its
// compact JSON serialization, made once at write time, so watches and lists
// copy bytes rather than re-serialize.
//
// Thread-safety: every member function may be called from any thread. One
// mutex guards the state; writers notify waiting watchers.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::emulator {

using Json = nlohmann::ordered_json;

struct StoredObject {
  Json json;          // with metadata.resourceVersion set to `rv`
  std::string text;   // json.dump(): compact, as the wire carries it
  std::string ns;     // "" for cluster-scoped objects
  std::string name;
  std::uint64_t rv = 0;
  // Where `text` continues after a leading {"kind":..,"apiVersion":.., (the
  // offset of "metadata"), so list items can leave the type fields out as
  // real servers do for built-in types; 0 when the object does not start so.
  std::size_t body_start = 0;
};
using ObjectPtr = std::shared_ptr<const StoredObject>;

enum class EventType { kAdded, kModified, kDeleted };

struct StoreEvent {
  std::uint64_t rv = 0;
  std::string resource;  // the resource key, e.g. "apps/deployments"
  EventType type = EventType::kAdded;
  ObjectPtr object;      // the new state; for kDeleted the last state stamped with the delete's RV
  ObjectPtr previous;    // the state before; null for kAdded
};

// The outcome of a mutation function run under the store's lock.
struct Mutation {
  enum class Kind { kNone, kPut, kDelete };
  Kind kind = Kind::kNone;
  Json object;  // for kPut: the object to store (its resourceVersion is set by the store)
  static Mutation None() { return {}; }
  static Mutation Put(Json o) { return {Kind::kPut, std::move(o)}; }
  static Mutation Delete() { return {Kind::kDelete, Json()}; }
};

class ObjectStore {
 public:
  // `max_events`: the log's length before the oldest events are compacted away.
  explicit ObjectStore(std::size_t max_events);

  std::uint64_t CurrentRv() const;

  // The object under (resource, ns, name), or null.
  ObjectPtr Get(const std::string& resource, const std::string& ns, const std::string& name) const;

  // Runs `fn(current)` under the lock (current may be null) and applies what
  // it returns: kPut stores the object with the next RV (ADDED or MODIFIED),
  // kDelete removes it (DELETED, carrying the last state with the delete's
  // RV), kNone changes nothing. Returns the stored object (for kDelete the
  // deleted one), or null for kNone. `fn` must not call back into the store.
  ObjectPtr Mutate(const std::string& resource, const std::string& ns, const std::string& name,
                   const std::function<Mutation(const ObjectPtr& current)>& fn);

  // Removes every object of `resource` (namespace `ns` only, unless empty),
  // one DELETED event each. Returns how many.
  std::size_t DeleteAll(const std::string& resource, const std::string& ns);

  struct ListResult {
    std::uint64_t rv = 0;            // the RV the list is consistent at
    std::vector<ObjectPtr> objects;  // ordered by (ns, name)
  };
  // The objects of `resource` at `rv` (nullopt: the current state). Returns
  // nullopt if `rv` is older than the compacted RV or newer than the current.
  // O(objects + events after rv).
  std::optional<ListResult> List(const std::string& resource, std::optional<std::uint64_t> rv) const;

  // Events of `resource` after `after_rv`, waiting until there is at least
  // one, `deadline` passes, or `wake()` returns true (polled each `poll`).
  // `expired` is set when events after `after_rv` have been compacted away.
  struct WatchBatch {
    bool expired = false;
    std::uint64_t compacted_rv = 0;
    std::uint64_t current_rv = 0;  // the store's RV when the batch was taken
    std::vector<StoreEvent> events;
  };
  WatchBatch WaitEvents(const std::string& resource, std::uint64_t after_rv,
                        std::chrono::steady_clock::time_point deadline, std::chrono::milliseconds poll,
                        const std::function<bool()>& wake) const;

  // Waits until the store's RV reaches `rv` or `deadline` passes. True if reached.
  bool WaitForRv(std::uint64_t rv, std::chrono::steady_clock::time_point deadline) const;

  // Forgets all history up to now and advances the RV by one: every RV handed
  // out before, the newest included, now gets 410.
  void Compact();
  // Wakes every waiting watcher (for fault injection and shutdown).
  void WakeAll();

 private:
  using Key = std::string;  // ns + '/' + name: sorts by namespace, then name
  static Key MakeKey(const std::string& ns, const std::string& name) { return ns + '/' + name; }
  void AppendLocked(StoreEvent event);  // REQUIRES: mu_ held

  const std::size_t max_events_;

  mutable std::mutex mu_;
  mutable std::condition_variable changed_;
  std::uint64_t rv_ = 1;            // Guarded by mu_
  std::uint64_t compacted_rv_ = 1;  // Guarded by mu_
  std::map<std::string, std::map<Key, ObjectPtr>> objects_;  // Guarded by mu_
  std::deque<StoreEvent> log_;      // Guarded by mu_; ascending rv, all > compacted_rv_
};

}  // namespace kubefold::emulator
