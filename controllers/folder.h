// Folder: the one writer of the state store (DESIGN.md §3, §5). Reflectors
// of every member cluster hand their events to it from their own threads;
// its thread gathers whatever has arrived into one Batch (up to max_batch
// operations) and applies it, so each cluster's vector component advances
// by one per change and readers see consistent snapshots.
//
//   added / modified  -> Batch::Upsert
//   deleted           -> Batch::Delete
//   replace (relist)  -> Batch::ReplaceKind: only the differences are written
//   synced            -> counted (the cluster's kind is in the map)
//   health            -> Batch::Upsert of the cluster's health record
//                        (health.h), so snapshots know cluster health
//
// A sink for one namespace (a MemberCluster watching listed namespaces)
// replaces only that namespace on a relist: the batch gathered so far is
// applied first, then what the store holds of that kind in that namespace
// and the list did not return is deleted.
//
// Thread-safety: Sink() functions and every member function may be called
// from any thread. The store's Apply runs on the folder's thread only; no
// one else may call Store::Apply while a Folder runs on that store.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "controllers/kube/reflector.h"
#include "state/store.h"

namespace kubefold::controllers {

struct FolderOptions {
  std::size_t max_batch = 1024;  // operations per Apply, at most
  // After applying relists of at least this many objects in all, the
  // allocator's free pages go back to the kernel (ReleaseFreedMemory): a
  // relist decodes every object before the store copies what it keeps, and
  // the allocator would otherwise keep those pages resident. 0: never.
  std::size_t release_after_relisted = 1000;
  // Records keep watched objects compressed against a dictionary per
  // (cluster, kind): the first object of that kind the cluster sends
  // (state/object_codec.h). Health records stay plain.
  bool compress_objects = true;
  // Called on the folder's thread after each Apply that published a
  // snapshot, with its seq. Must not block.
  std::function<void(std::uint64_t seq)> on_published;
};

struct FolderStats {
  std::uint64_t events = 0;       // reflector events received
  std::uint64_t batches = 0;      // Apply calls
  std::uint64_t published = 0;    // of those, how many published a snapshot
  std::uint64_t applied = 0;      // operations that changed the map
  std::uint64_t noops = 0;        // operations dropped as unchanged
  std::uint64_t rejected = 0;     // events the store refused (logged; nothing else is lost)
  std::uint64_t releases = 0;     // ReleaseFreedMemory calls after large relists
  std::map<std::string, std::uint64_t> synced;  // cluster -> synced signals seen
};

class Folder {
 public:
  // Starts the writer thread. `log` receives refused events; may be empty.
  Folder(state::Store& store, FolderOptions options = {}, std::function<void(std::string_view)> log = {});
  ~Folder();  // Stop()
  Folder(const Folder&) = delete;
  Folder& operator=(const Folder&) = delete;

  // A reflector sink for `kind` objects of `cluster`. The sink copies
  // nothing it does not need and never blocks on the store.
  // `only_namespace`: the reflector watches that namespace alone, and its
  // relists replace that namespace only.
  std::function<void(kube::ReflectorEvent&&)> Sink(const std::string& cluster, const kube::ResourceType& kind,
                                                   const std::string& only_namespace = {});

  // Registers a cluster (an empty subtree) / removes its whole subtree — a
  // recorded change, visible in diffs.
  void AddCluster(const std::string& cluster);
  void RemoveCluster(const std::string& cluster);
  // Writes the cluster's health record (health.h: HealthRecordJson); an
  // unchanged record is a no-op in the store.
  void SetHealth(const std::string& cluster, std::string record_json);

  // Waits until everything handed over before the call has been applied;
  // returns the store's newest snapshot seq then.
  std::uint64_t Flush();
  // Applies what is pending and ends the writer thread. Idempotent.
  void Stop();

  FolderStats stats() const;

 private:
  struct Pending {
    enum class Kind { kEvent, kAddCluster, kRemoveCluster, kHealth };
    Kind kind = Kind::kEvent;
    std::string cluster;
    std::string only_namespace;  // kEvent: the sink's namespace, or ""
    std::string health_json;     // kHealth
    std::string group;
    std::string resource_kind;
    kube::ReflectorEvent event;
    state::TimePoint received{};
  };
  void Push(Pending p);
  void PushCluster(Pending::Kind kind, const std::string& cluster);
  void Loop();
  // Adds one pending item to `batch`; false if the store refused it.
  bool AddTo(state::Batch& batch, Pending& p);
  // Applies `batch` (if not empty) and counts the result.
  void ApplyBatch(state::Batch& batch);
  // A namespace-scoped relist: the store's current state of that kind in
  // that namespace, minus what the list holds, becomes deletes.
  void AddNamespaceReplace(state::Batch& batch, Pending& p);

  state::Store& store_;
  const FolderOptions options_;
  std::function<void(std::string_view)> log_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Pending> pending_;     // Guarded by mu_
  std::uint64_t pushed_ = 0;         // Guarded by mu_: items ever pushed
  std::uint64_t applied_items_ = 0;  // Guarded by mu_: items ever taken and applied
  bool stopping_ = false;            // Guarded by mu_
  bool exited_ = false;              // Guarded by mu_: the writer thread has returned
  FolderStats stats_;                // Guarded by mu_
  std::thread thread_;
};

}  // namespace kubefold::controllers
