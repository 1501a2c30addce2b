// Journal: the store's snapshot history made durable in an SQLite database.
//
// The journal follows the store's publications (StoreOptions::on_publish)
// and commits them from its own thread in group commits: every snapshot
// queued while the previous transaction ran goes into the next one. On disk:
//
//   snapshots(seq, time, vector, clusters present, pins, dependencies)
//   records(cluster, counter, born, died, namespace, key, summary)
//   objects(the pruned object of each record row)
//
// A record row is one version of one workload, identified by its dot
// (cluster, counter) and visible in the snapshots with born <= seq < died.
// The state at any journaled seq is therefore a range query, the table is
// its own checkpoint, and only what changed is written. Snapshot rows
// mirror the store's retention (pins included); record rows no retained
// snapshot can see are deleted in the same transaction.
//
// Restart: Restore() rebuilds every journaled snapshot with its own seq,
// time, vector, record dots, pins and dependencies, so each cluster's
// component continues where it stopped and a diff between two restored
// snapshots equals the diff between the originals.
//
// Failure: a commit that fails (disk or database full, I/O error) is rolled
// back, the journal reports itself degraded with the reason, and retries
// later with everything published meanwhile coalesced into one snapshot.
// After a full disk the retry first drops every unpinned snapshot row, so
// the disk then holds the pinned snapshots and the newest one. The store
// keeps working in memory throughout.
//
// Thread-safety: OnPublish is called by the store's writer; everything else
// from any thread. Start before the store's first Apply; Stop (or destroy)
// before the store.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "state/snapshot.h"
#include "state/status.h"
#include "state/store.h"

namespace kubefold::state {

struct JournalOptions {
  std::string path;  // the database file; created with its directory's permissions
  // Bound on the database file (0: none but the disk's). The write-ahead
  // log is truncated to at most max(4 MiB, max_bytes / 8) after checkpoints.
  uint64_t max_bytes = 0;
  // fsync every commit (SQLite synchronous=FULL). Off: a commit survives a
  // crash of the process but maybe not of the machine.
  bool sync = true;
  // A commit that finds more than this many snapshots queued merges the
  // oldest unpinned ones into their successors (their changes are kept,
  // their own seqs are not journaled), as retention drops the oldest
  // first; set it to the store's keep_last to mirror retention. Beyond
  // 5/4 of this, publication itself merges the oldest (pins not spared):
  // the bound on what queued snapshots keep alive.
  size_t max_pending = 1024;
  // How often retention, pins and disk use are mirrored when nothing is
  // published.
  std::chrono::milliseconds idle_sync = std::chrono::seconds(1);
  // First retry delay after a failed commit; doubles up to 30 s.
  std::chrono::milliseconds retry = std::chrono::seconds(1);
  std::function<void(std::string_view)> log;
  // Restore() keeps restored records compressed against the dictionary of
  // their cluster and kind (ObjectDictionary::ForKind), which the watchers
  // then share; set it as the watchers' own compression is set.
  bool compress_restored = true;
};

struct JournalStats {
  uint64_t durable_seq = 0;        // newest snapshot committed
  uint64_t commits = 0;            // transactions committed
  uint64_t snapshots_written = 0;  // snapshot rows inserted
  uint64_t records_written = 0;    // record rows inserted
  uint64_t coalesced = 0;          // snapshots merged into a later one, not journaled themselves
  uint64_t failures = 0;           // commits that failed
  uint64_t pending = 0;            // published, not yet committed
  uint64_t disk_bytes = 0;         // database file + write-ahead log
  uint64_t limit_bytes = 0;        // max_bytes, 0 = none
  uint64_t retained_rows = 0;      // snapshot rows on disk
  double last_commit_seconds = 0;
  bool degraded = false;  // the last commit failed: history is in memory only
  std::string degraded_reason;
};

struct RestoreReport {
  size_t snapshots = 0;  // restored into the store
  size_t records = 0;    // record versions read
  uint64_t newest_seq = 0;
  std::vector<std::pair<uint64_t, uint32_t>> pins;  // (seq, pins) restored
};

class Journal {
 public:
  // Opens or creates the database, checks its schema and takes an exclusive
  // lock on it. Errors (kInvalidArgument / kUnavailable) name the file and
  // the cause: not a database, a newer schema, in use by another process.
  static Result<std::unique_ptr<Journal>> Open(JournalOptions options);
  ~Journal();  // Stop()
  Journal(const Journal&) = delete;
  Journal& operator=(const Journal&) = delete;

  // Rebuilds the journaled history into `store`, which must be new (no
  // Apply yet). An unreadable row is an error naming its seq and what is
  // wrong; the store then holds what was restored before it.
  Result<RestoreReport> Restore(Store& store);

  // The store's on_publish hook: queues the snapshot for the next commit.
  void OnPublish(const PublishEvent& event);

  // Starts committing. `store` is the one whose publications are queued;
  // its current snapshot is taken as already journaled (a restored one, or
  // the empty seq 0). REQUIRES: before the store's first Apply.
  void Start(Store& store);

  // Commits what is queued and stops the thread. Idempotent.
  void Stop();

  // Blocks until snapshot `seq` and every pin made before this call are
  // committed. kUnavailable naming the reason when the journal is degraded
  // or the time runs out; kFailedPrecondition when not started.
  Status WaitDurable(uint64_t seq, std::chrono::milliseconds timeout);

  JournalStats Stats() const;
  const std::string& path() const { return options_.path; }

 private:
  struct Db;
  explicit Journal(JournalOptions options);
  void Run();
  // One transaction: `events` in order, then retention and pins. Returns
  // the error message, or "" on success.
  // `rebase` (after a full disk): first drop every unpinned row, so that
  // only the pinned snapshots and the newest stay on disk.
  std::string Commit(std::vector<PublishEvent>& events, bool rebase);
  void UpdateDiskBytes();
  void Log(std::string_view m) const;

  const JournalOptions options_;
  std::unique_ptr<Db> db_;
  Store* store_ = nullptr;
  Snapshot base_;  // the newest committed snapshot: the next diff's origin
  std::thread thread_;

  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<PublishEvent> pending_;
  bool started_ = false, stopping_ = false, stopped_ = false;
  uint64_t requested_ = 0, done_ticket_ = 0;
  bool full_ = false;  // the last failure was a full database or disk
  JournalStats stats_;
};

}  // namespace kubefold::state
