#include "state/journal.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <random>

#include "state/diff.h"

namespace kubefold::state {

namespace {

constexpr int kSchemaVersion = 2;

const char* const kSchema = R"sql(
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots(
  seq INTEGER PRIMARY KEY,
  time_ns INTEGER NOT NULL,
  vector TEXT NOT NULL,
  present TEXT NOT NULL,
  pins INTEGER NOT NULL DEFAULT 0,
  deps TEXT NOT NULL DEFAULT '[]');
CREATE TABLE IF NOT EXISTS records(
  id INTEGER PRIMARY KEY,
  cluster TEXT NOT NULL,
  counter INTEGER NOT NULL,
  born INTEGER NOT NULL,
  died INTEGER,
  ns TEXT NOT NULL,
  grp TEXT NOT NULL,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  generation INTEGER NOT NULL,
  observed_generation INTEGER NOT NULL,
  desired INTEGER NOT NULL,
  ready INTEGER NOT NULL,
  available INTEGER NOT NULL);
CREATE UNIQUE INDEX IF NOT EXISTS records_dot ON records(cluster, counter);
CREATE INDEX IF NOT EXISTS records_died ON records(died) WHERE died IS NOT NULL;
-- The objects apart from their rows: marking a version dead then rewrites a
-- short row, not the object with it.
CREATE TABLE IF NOT EXISTS objects(id INTEGER PRIMARY KEY, object BLOB NOT NULL);
CREATE TRIGGER IF NOT EXISTS records_gone AFTER DELETE ON records
  BEGIN DELETE FROM objects WHERE id=old.id; END;
)sql";

std::string_view Text(sqlite3_stmt* st, int col) {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_blob(st, col));
  return p ? std::string_view(p, static_cast<size_t>(sqlite3_column_bytes(st, col))) : std::string_view();
}

int64_t Ns(TimePoint t) { return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count(); }

}  // namespace

// The connection and its prepared statements; used by one thread at a time
// (Restore before Start, then the commit thread).
struct Journal::Db {
  sqlite3* db = nullptr;
  std::map<std::string, sqlite3_stmt*, std::less<>> statements;

  ~Db() {
    for (auto& [sql, st] : statements) sqlite3_finalize(st);
    if (db) sqlite3_close_v2(db);
  }
  std::string Error() const { return db ? sqlite3_errmsg(db) : "out of memory"; }
  // "" or the error.
  std::string Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) == SQLITE_OK) return "";
    std::string m = err ? err : Error();
    sqlite3_free(err);
    return m;
  }
  // A cached prepared statement, reset and unbound; nullptr on error.
  sqlite3_stmt* Prepare(std::string_view sql) {
    auto it = statements.find(sql);
    if (it != statements.end()) {
      sqlite3_reset(it->second);
      sqlite3_clear_bindings(it->second);
      return it->second;
    }
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &st, nullptr) !=
        SQLITE_OK) {
      return nullptr;
    }
    statements.emplace(std::string(sql), st);
    return st;
  }
  int64_t Int(const char* sql) {
    sqlite3_stmt* st = Prepare(sql);
    if (!st || sqlite3_step(st) != SQLITE_ROW) return -1;
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return v;
  }
};

Journal::Journal(JournalOptions options) : options_(std::move(options)), db_(std::make_unique<Db>()) {}

Journal::~Journal() { Stop(); }

void Journal::Log(std::string_view m) const {
  if (options_.log) options_.log(m);
}

Result<std::unique_ptr<Journal>> Journal::Open(JournalOptions options) {
  if (options.path.empty()) return InvalidArgument("history journal: the database path is empty");
  if (options.max_pending == 0) options.max_pending = 1;
  std::unique_ptr<Journal> j(new Journal(std::move(options)));
  const std::string& path = j->options_.path;
  Db& d = *j->db_;
  auto fail = [&](StatusCode code, const std::string& what) {
    return Status(code, "history journal " + path + ": " + what);
  };
  auto classify = [&](const std::string& e) {
    if (e.find("locked") != std::string::npos || e.find("busy") != std::string::npos) {
      return fail(StatusCode::kUnavailable, "in use by another process (" + e + ")");
    }
    if (e.find("not a database") != std::string::npos || e.find("malformed") != std::string::npos) {
      return fail(StatusCode::kInvalidArgument, "not a usable SQLite database: " + e);
    }
    return fail(StatusCode::kUnavailable, e);
  };
  if (sqlite3_open_v2(path.c_str(), &d.db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return fail(StatusCode::kUnavailable, "cannot open: " + d.Error());
  }
  sqlite3_extended_result_codes(d.db, 1);
  // Exclusive locking: a second process on the same file is refused at the
  // first write below instead of interleaving histories. A crashed holder's
  // lock goes with its process.
  sqlite3_busy_timeout(d.db, 2000);
  std::string e = d.Exec("PRAGMA locking_mode=EXCLUSIVE;");
  if (e.empty()) e = d.Exec("PRAGMA journal_mode=WAL;");
  if (!e.empty()) return classify(e);
  e = d.Exec(j->options_.sync ? "PRAGMA synchronous=FULL;" : "PRAGMA synchronous=NORMAL;");
  // A 64 MiB page cache: a commit touches the pages of the versions it
  // retires, spread over the whole table (the default is 2 MiB).
  if (e.empty()) e = d.Exec("PRAGMA cache_size=-65536;");
  const uint64_t wal_limit = std::max<uint64_t>(4u << 20, j->options_.max_bytes / 8);
  if (e.empty()) e = d.Exec(("PRAGMA journal_size_limit=" + std::to_string(wal_limit) + ";").c_str());
  if (e.empty() && j->options_.max_bytes > 0) {
    const int64_t page = std::max<int64_t>(d.Int("PRAGMA page_size;"), 512);
    const int64_t pages = std::max<int64_t>(static_cast<int64_t>(j->options_.max_bytes) / page, 16);
    e = d.Exec(("PRAGMA max_page_count=" + std::to_string(pages) + ";").c_str());
  }
  if (e.empty()) e = d.Exec("BEGIN IMMEDIATE;");
  if (!e.empty()) return classify(e);
  e = d.Exec(kSchema);
  if (e.empty()) {
    sqlite3_stmt* st = d.Prepare("SELECT value FROM meta WHERE key='schema'");
    if (st && sqlite3_step(st) == SQLITE_ROW) {
      const std::string v(Text(st, 0));
      sqlite3_reset(st);
      if (v != std::to_string(kSchemaVersion)) {
        d.Exec("ROLLBACK;");
        return fail(StatusCode::kInvalidArgument, "schema version " + v + " is not the version this build reads (" +
                                                      std::to_string(kSchemaVersion) + ")");
      }
    } else {
      if (st) sqlite3_reset(st);
      std::random_device rd;
      char id[17];
      std::snprintf(id, sizeof id, "%08x%08x", rd(), rd());
      e = d.Exec(("INSERT INTO meta(key, value) VALUES('schema','" + std::to_string(kSchemaVersion) +
                  "'),('history_id','" + id + "');")
                     .c_str());
    }
  }
  if (e.empty()) e = d.Exec("COMMIT;");
  if (!e.empty()) {
    d.Exec("ROLLBACK;");
    return classify(e);
  }
  j->stats_.limit_bytes = j->options_.max_bytes;
  j->UpdateDiskBytes();
  return j;
}

void Journal::UpdateDiskBytes() {
  const int64_t pages = db_->Int("PRAGMA page_count;");
  const int64_t page = db_->Int("PRAGMA page_size;");
  uint64_t bytes = pages > 0 && page > 0 ? static_cast<uint64_t>(pages * page) : 0;
  struct stat sb {};
  if (::stat((options_.path + "-wal").c_str(), &sb) == 0) bytes += static_cast<uint64_t>(sb.st_size);
  const int64_t rows = db_->Int("SELECT count(*) FROM snapshots;");
  std::lock_guard lock(mu_);
  stats_.disk_bytes = bytes;
  if (rows >= 0) stats_.retained_rows = static_cast<uint64_t>(rows);
}

// ------------------------------------------------------------- restore ---

Result<RestoreReport> Journal::Restore(Store& store) {
  {
    std::lock_guard lock(mu_);
    if (started_) return FailedPrecondition("history journal: Restore after Start");
  }
  Db& d = *db_;
  const std::string where = "history journal " + options_.path + ": ";
  struct Row {
    uint64_t seq;
    int64_t time_ns;
    VersionVector vector;
    std::vector<std::string> present;
    uint32_t pins;
    std::vector<RecordedDependency> deps;
    std::vector<RestoredChange> erases, puts;
  };
  std::vector<Row> rows;
  sqlite3_stmt* st = d.Prepare("SELECT seq, time_ns, vector, present, pins, deps FROM snapshots ORDER BY seq");
  if (!st) return Unavailable(where + d.Error());
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    Row r;
    r.seq = static_cast<uint64_t>(sqlite3_column_int64(st, 0));
    const std::string at = where + "snapshot " + std::to_string(r.seq) + ": ";
    r.time_ns = sqlite3_column_int64(st, 1);
    auto v = VersionVector::Parse(Text(st, 2));
    if (!v.ok()) return InvalidArgument(at + "vector: " + v.status().message());
    r.vector = std::move(*v);
    r.pins = static_cast<uint32_t>(std::max<int64_t>(0, sqlite3_column_int64(st, 4)));
    try {
      for (const auto& c : nlohmann::json::parse(Text(st, 3))) r.present.push_back(c.get<std::string>());
      for (const auto& dep : nlohmann::json::parse(Text(st, 5))) {
        auto dv = VersionVector::Parse(dep.at("decided").dump());
        if (!dv.ok()) return InvalidArgument(at + "dependency vector: " + dv.status().message());
        r.deps.push_back(RecordedDependency{dep.at("cluster").get<std::string>(), dep.at("first").get<uint64_t>(),
                                            dep.at("decidedSeq").get<uint64_t>(), std::move(*dv)});
      }
    } catch (const std::exception& e) {
      return InvalidArgument(at + "clusters or dependencies: " + e.what());
    }
    std::sort(r.present.begin(), r.present.end());
    rows.push_back(std::move(r));
  }
  if (rc != SQLITE_DONE) return Unavailable(where + "reading snapshots: " + d.Error());
  RestoreReport report;
  if (rows.empty()) return report;

  // Each record version goes to the first row that sees it (a put) and the
  // first row after its death (an erase); versions no row sees are skipped.
  st = d.Prepare(
      "SELECT cluster, counter, born, died, ns, grp, kind, name, generation, observed_generation, desired, ready, "
      "available, o.object FROM records r JOIN objects o ON o.id=r.id ORDER BY r.id");
  if (!st) return Unavailable(where + d.Error());
  auto first_at_or_after = [&](uint64_t seq) {
    return static_cast<size_t>(
        std::lower_bound(rows.begin(), rows.end(), seq, [](const Row& r, uint64_t s) { return r.seq < s; }) -
        rows.begin());
  };
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    ++report.records;
    RestoredChange c;
    c.cluster = std::string(Text(st, 0));
    c.counter = static_cast<uint64_t>(sqlite3_column_int64(st, 1));
    const uint64_t born = static_cast<uint64_t>(sqlite3_column_int64(st, 2));
    const bool dead = sqlite3_column_type(st, 3) != SQLITE_NULL;
    const uint64_t died = dead ? static_cast<uint64_t>(sqlite3_column_int64(st, 3)) : UINT64_MAX;
    c.ns = std::string(Text(st, 4));
    c.object.key = WorkloadKey{std::string(Text(st, 5)), std::string(Text(st, 6)), std::string(Text(st, 7))};
    c.object.summary.generation = sqlite3_column_int64(st, 8);
    c.object.summary.observed_generation = sqlite3_column_int64(st, 9);
    c.object.summary.desired_replicas = static_cast<int32_t>(sqlite3_column_int64(st, 10));
    c.object.summary.ready_replicas = static_cast<int32_t>(sqlite3_column_int64(st, 11));
    c.object.summary.available_replicas = static_cast<int32_t>(sqlite3_column_int64(st, 12));
    const size_t from = first_at_or_after(born);
    const size_t until = first_at_or_after(died);  // first row that no longer sees it
    if (from >= until) continue;
    if (until < rows.size()) {
      RestoredChange e;
      e.type = RestoredChange::Type::kErase;
      e.cluster = c.cluster;
      e.ns = c.ns;
      e.object.key = c.object.key;
      rows[until].erases.push_back(std::move(e));
    }
    c.object.object_json = std::string(Text(st, 13));
    if (options_.compress_restored) {
      c.object.compress_with = ObjectDictionary::ForKind(c.cluster, c.object.key.group, c.object.key.kind,
                                                         c.object.object_json);
    }
    rows[from].puts.push_back(std::move(c));
  }
  if (rc != SQLITE_DONE) return Unavailable(where + "reading records: " + d.Error());

  std::vector<std::string> before;
  for (Row& r : rows) {
    RestoredSnapshot s;
    s.seq = r.seq;
    s.time = TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(r.time_ns)));
    s.vector = std::move(r.vector);
    s.pins = r.pins;
    s.dependencies = std::move(r.deps);
    for (const auto& name : before) {
      if (!std::binary_search(r.present.begin(), r.present.end(), name)) {
        RestoredChange c;
        c.type = RestoredChange::Type::kRemoveCluster;
        c.cluster = name;
        s.changes.push_back(std::move(c));
      }
    }
    for (auto& e : r.erases) s.changes.push_back(std::move(e));
    for (const auto& name : r.present) {
      if (!std::binary_search(before.begin(), before.end(), name)) {
        RestoredChange c;
        c.type = RestoredChange::Type::kAddCluster;
        c.cluster = name;
        s.changes.push_back(std::move(c));
      }
    }
    for (auto& p : r.puts) s.changes.push_back(std::move(p));
    r.erases.clear();
    r.puts.clear();
    if (Status rs = store.Restore(std::move(s)); !rs.ok()) return Status(rs.code(), where + rs.message());
    if (r.pins > 0) report.pins.emplace_back(r.seq, r.pins);
    ++report.snapshots;
    report.newest_seq = r.seq;
    before = std::move(r.present);
  }
  std::lock_guard lock(mu_);
  stats_.durable_seq = report.newest_seq;
  return report;
}

// -------------------------------------------------------------- commits ---

void Journal::OnPublish(const PublishEvent& event) {
  std::lock_guard lock(mu_);
  if (stopped_) return;
  pending_.push_back(event);
  if (pending_.size() > options_.max_pending + options_.max_pending / 4) {
    // Far behind: the oldest queued goes into the next one (whose diff from
    // the one before covers both), as retention drops the oldest first.
    // The commit thread does this with pins spared; here it is the hard cap
    // on the memory queued snapshots keep alive.
    PublishEvent oldest = std::move(pending_.front());
    pending_.pop_front();
    auto& deps = pending_.front().dependencies;
    deps.insert(deps.begin(), oldest.dependencies.begin(), oldest.dependencies.end());
    ++stats_.coalesced;
  }
  stats_.pending = pending_.size();
  work_cv_.notify_one();
}

void Journal::Start(Store& store) {
  std::lock_guard lock(mu_);
  if (started_) return;
  started_ = true;
  store_ = &store;
  base_ = store.Current();
  thread_ = std::thread([this] {
    ::pthread_setname_np(::pthread_self(), "kubefold-journ");  // `top -H`, perf: 15 characters at most
    Run();
  });
}

void Journal::Stop() {
  {
    std::lock_guard lock(mu_);
    if (!started_ || stopping_) {
      stopped_ = true;
      return;
    }
    stopping_ = true;
    work_cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mu_);
  stopped_ = true;
  done_cv_.notify_all();
}

Status Journal::WaitDurable(uint64_t seq, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  if (!started_) return FailedPrecondition("history journal: not started");
  const uint64_t ticket = ++requested_;
  work_cv_.notify_one();
  const bool done = done_cv_.wait_for(lock, timeout, [&] {
    return stopped_ || stats_.degraded || (done_ticket_ >= ticket && stats_.durable_seq >= seq);
  });
  if (stats_.degraded) return Unavailable("history journal is degraded: " + stats_.degraded_reason);
  if (stopped_ && !(done_ticket_ >= ticket && stats_.durable_seq >= seq)) {
    return Unavailable("history journal stopped before snapshot " + std::to_string(seq) + " was committed");
  }
  if (!done) {
    return Unavailable("snapshot " + std::to_string(seq) + " was not committed to the history journal within " +
                       std::to_string(timeout.count()) + " ms");
  }
  return Status::Ok();
}

void Journal::Run() {
  auto retry = options_.retry;
  auto next_idle = std::chrono::steady_clock::now();
  for (;;) {
    std::vector<PublishEvent> events;
    uint64_t ticket;
    bool stopping, was_degraded;
    {
      std::unique_lock lock(mu_);
      const bool degraded = stats_.degraded;
      const auto wake = degraded ? std::chrono::steady_clock::now() + retry : next_idle;
      work_cv_.wait_until(lock, wake, [&] {
        return stopping_ || (!degraded && (!pending_.empty() || requested_ > done_ticket_));
      });
      stopping = stopping_;
      if (degraded && !stopping && std::chrono::steady_clock::now() < wake) continue;
      while (!pending_.empty()) {
        events.push_back(std::move(pending_.front()));
        pending_.pop_front();
      }
      ticket = requested_;
      stats_.pending = 0;
      was_degraded = stats_.degraded;
    }
    if (!was_degraded && events.size() > 1 && store_ != nullptr) {
      // Snapshots retention has already dropped (unpinned, older than the
      // oldest retained) would be written only to be trimmed at the end of
      // the same commit: each is merged into its successor instead. And
      // when still behind by more than max_pending, the oldest unpinned ones
      // are merged too, as retention drops the oldest first.
      const RetentionState r = store_->Retention();
      size_t merged = 0;
      for (size_t i = 0; i + 1 < events.size(); ++i) {
        const uint64_t seq = events[i].snapshot.seq();
        if (seq >= r.oldest_unpinned && events.size() - merged <= options_.max_pending) break;
        if (std::binary_search(r.pinned.begin(), r.pinned.end(), std::make_pair(seq, uint32_t{0}),
                               [](const auto& a, const auto& b) { return a.first < b.first; })) {
          continue;
        }
        auto& next = events[i + 1].dependencies;
        next.insert(next.begin(), events[i].dependencies.begin(), events[i].dependencies.end());
        events[i].snapshot = Snapshot();
        ++merged;
      }
      std::erase_if(events, [](const PublishEvent& e) { return !e.snapshot.valid(); });
      std::lock_guard lock(mu_);
      stats_.coalesced += merged;
    }
    if (was_degraded && events.size() > 1) {
      // Retrying after a failure: one snapshot, the newest, carries it all.
      std::vector<RecordedDependency> deps;
      for (auto& e : events) deps.insert(deps.end(), e.dependencies.begin(), e.dependencies.end());
      PublishEvent last = std::move(events.back());
      last.dependencies = std::move(deps);
      {
        std::lock_guard lock(mu_);
        stats_.coalesced += events.size() - 1;
      }
      events.clear();
      events.push_back(std::move(last));
    }
    const auto start = std::chrono::steady_clock::now();
    std::string error = Commit(events, was_degraded && full_);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    UpdateDiskBytes();
    {
      std::lock_guard lock(mu_);
      stats_.last_commit_seconds = secs;
      if (error.empty()) {
        if (stats_.degraded) Log("history journal " + options_.path + ": committing again");
        stats_.degraded = false;
        stats_.degraded_reason.clear();
        full_ = false;
        ++stats_.commits;
        stats_.durable_seq = base_.seq();
        done_ticket_ = std::max(done_ticket_, ticket);
        retry = options_.retry;
      } else {
        ++stats_.failures;
        if (!stats_.degraded) {
          Log("history journal " + options_.path + ": commit failed, history is kept in memory only until it " +
              "succeeds: " + error);
        }
        stats_.degraded = true;
        stats_.degraded_reason = error;
        full_ = error.find("full") != std::string::npos;
        // Keep the newest failed snapshot, with every dependency, for the
        // retry (its diff from the last committed one covers the others);
        // later ones queue behind it.
        if (!events.empty()) {
          PublishEvent last = std::move(events.back());
          events.pop_back();
          for (auto& e : events) {
            last.dependencies.insert(last.dependencies.end(), e.dependencies.begin(), e.dependencies.end());
          }
          stats_.coalesced += events.size();
          pending_.push_front(std::move(last));
        }
        stats_.pending = pending_.size();
        retry = std::min<std::chrono::milliseconds>(retry * 2, std::chrono::seconds(30));
      }
      done_cv_.notify_all();
    }
    next_idle = std::chrono::steady_clock::now() + options_.idle_sync;
    if (stopping) {
      std::lock_guard lock(mu_);
      if (pending_.empty() || !error.empty()) return;
    }
  }
}

std::string Journal::Commit(std::vector<PublishEvent>& events, bool rebase) {
  Db& d = *db_;
  std::string error = d.Exec("BEGIN IMMEDIATE;");
  if (!error.empty()) return error;
  Snapshot base = base_;
  uint64_t records = 0, snapshots = 0;
  auto step_done = [&](sqlite3_stmt* st) {
    if (!st) return d.Error();
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? std::string() : d.Error();
  };
  // Retention and pins first, as the store has them now: deleting what
  // retention dropped frees room for what follows when the disk is full.
  const RetentionState r = store_ != nullptr ? store_->Retention() : RetentionState{};
  auto pins_of = [&](uint64_t seq) -> int64_t {
    auto it = std::lower_bound(r.pinned.begin(), r.pinned.end(), std::make_pair(seq, uint32_t{0}));
    return it != r.pinned.end() && it->first == seq ? it->second : 0;
  };
  if (error.empty() && store_ != nullptr) {
    error = d.Exec("UPDATE snapshots SET pins=0 WHERE pins<>0;");
    for (const auto& [seq, pins] : r.pinned) {
      if (!error.empty()) break;
      sqlite3_stmt* st = d.Prepare("UPDATE snapshots SET pins=?1 WHERE seq=?2");
      if (st) {
        sqlite3_bind_int64(st, 1, pins);
        sqlite3_bind_int64(st, 2, static_cast<int64_t>(seq));
      }
      error = step_done(st);
    }
  }
  auto trim = [&](uint64_t newest_committed) {
    if (error.empty()) {
      // Never the newest committed row: it is the next diff's origin.
      sqlite3_stmt* st = d.Prepare("DELETE FROM snapshots WHERE seq<?1 AND seq<?2 AND pins=0");
      if (st) {
        sqlite3_bind_int64(st, 1, static_cast<int64_t>(r.oldest_unpinned));
        sqlite3_bind_int64(st, 2, static_cast<int64_t>(newest_committed));
      }
      error = step_done(st);
      if (error.empty() && sqlite3_changes(d.db) > 0) {
        // Versions no remaining snapshot row sees.
        st = d.Prepare(
            "DELETE FROM records WHERE died IS NOT NULL AND died<=?1 AND NOT EXISTS "
            "(SELECT 1 FROM snapshots s WHERE s.seq>=records.born AND s.seq<records.died)");
        if (st) sqlite3_bind_int64(st, 1, static_cast<int64_t>(std::min(r.oldest_unpinned, newest_committed)));
        error = step_done(st);
      }
    }
  };
  if (error.empty() && store_ != nullptr) {
    if (!rebase) {
      trim(base_.seq());
    } else {
      // After a full disk: keep only the pinned rows, and the versions they
      // see, so the newest snapshot fits. Versions the diff below retires
      // are deleted outright when no remaining row sees them.
      error = d.Exec(
          "DELETE FROM snapshots WHERE pins=0;"
          "DELETE FROM records WHERE died IS NOT NULL AND NOT EXISTS "
          "(SELECT 1 FROM snapshots s WHERE s.seq>=records.born AND s.seq<records.died);");
    }
  }
  for (const PublishEvent& e : events) {
    if (!error.empty()) break;
    const Snapshot& s = e.snapshot;
    const int64_t seq = static_cast<int64_t>(s.seq());
    DiffFilter all;
    all.same_content = true;
    Status vs = VisitDiff(base, s, all, [&](const Change& c) {
      if (c.before && rebase) {
        sqlite3_stmt* st = d.Prepare(
            "DELETE FROM records WHERE cluster=?1 AND counter=?2 AND NOT EXISTS "
            "(SELECT 1 FROM snapshots s WHERE s.seq>=records.born)");
        if (st) {
          sqlite3_bind_text(st, 1, c.cluster.data(), static_cast<int>(c.cluster.size()), SQLITE_STATIC);
          sqlite3_bind_int64(st, 2, static_cast<int64_t>(c.before->counter()));
        }
        error = step_done(st);
        if (!error.empty()) return false;
      }
      if (c.before) {
        sqlite3_stmt* st = d.Prepare("UPDATE records SET died=?1 WHERE cluster=?2 AND counter=?3 AND died IS NULL");
        if (st) {
          sqlite3_bind_int64(st, 1, seq);
          sqlite3_bind_text(st, 2, c.cluster.data(), static_cast<int>(c.cluster.size()), SQLITE_STATIC);
          sqlite3_bind_int64(st, 3, static_cast<int64_t>(c.before->counter()));
        }
        error = step_done(st);
        if (!error.empty()) return false;
      }
      if (c.after) {
        const Record& r = *c.after;
        const WorkloadSummary sum = r.summary();
        sqlite3_stmt* st = d.Prepare("INSERT INTO objects(object) VALUES(?1)");
        // The journal keeps the JSON itself, never a record's compressed form:
        // dictionaries last one process. `obj` outlives the step below.
        const std::string obj = r.object_json();
        if (st) sqlite3_bind_blob64(st, 1, obj.data(), obj.size(), SQLITE_STATIC);
        error = step_done(st);
        if (!error.empty()) return false;
        const int64_t id = sqlite3_last_insert_rowid(d.db);
        st = d.Prepare(
            "INSERT INTO records(cluster, counter, born, ns, grp, kind, name, generation, observed_generation, "
            "desired, ready, available, id) VALUES(?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13)");
        if (st) {
          auto text = [&](int i, std::string_view v) {
            sqlite3_bind_text(st, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
          };
          text(1, c.cluster);
          sqlite3_bind_int64(st, 2, static_cast<int64_t>(r.counter()));
          sqlite3_bind_int64(st, 3, seq);
          text(4, c.ns);
          text(5, r.group());
          text(6, r.kind());
          text(7, r.name());
          sqlite3_bind_int64(st, 8, sum.generation);
          sqlite3_bind_int64(st, 9, sum.observed_generation);
          sqlite3_bind_int64(st, 10, sum.desired_replicas);
          sqlite3_bind_int64(st, 11, sum.ready_replicas);
          sqlite3_bind_int64(st, 12, sum.available_replicas);
          sqlite3_bind_int64(st, 13, id);
        }
        error = step_done(st);
        if (!error.empty()) return false;
        ++records;
      }
      return true;
    });
    if (!vs.ok()) error = vs.message();
    if (!error.empty()) break;
    nlohmann::json present = nlohmann::json::array();
    s.ForEachCluster([&](const ClusterInfo& c) {
      present.push_back(std::string(c.name));
      return true;
    });
    nlohmann::json deps = nlohmann::json::array();
    for (const RecordedDependency& dep : e.dependencies) {
      deps.push_back({{"cluster", dep.cluster},
                      {"first", dep.first_counter},
                      {"decidedSeq", dep.decided_seq},
                      {"decided", nlohmann::json::parse(dep.decided.ToJson())}});
    }
    const std::string vector = s.vector().ToJson(), present_text = present.dump(), deps_text = deps.dump();
    sqlite3_stmt* st =
        d.Prepare("INSERT OR REPLACE INTO snapshots(seq, time_ns, vector, present, deps, pins) VALUES(?1,?2,?3,?4,?5,?6)");
    if (st) {
      sqlite3_bind_int64(st, 1, seq);
      sqlite3_bind_int64(st, 2, Ns(s.time()));
      sqlite3_bind_text(st, 3, vector.data(), static_cast<int>(vector.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 4, present_text.data(), static_cast<int>(present_text.size()), SQLITE_STATIC);
      sqlite3_bind_text(st, 5, deps_text.data(), static_cast<int>(deps_text.size()), SQLITE_STATIC);
      sqlite3_bind_int64(st, 6, pins_of(s.seq()));
    }
    error = step_done(st);
    if (!error.empty()) break;
    ++snapshots;
    base = s;
  }
  if (error.empty() && store_ != nullptr) trim(base.seq());
  if (error.empty()) error = d.Exec("COMMIT;");
  if (!error.empty()) {
    d.Exec("ROLLBACK;");
    return error;
  }
  base_ = std::move(base);
  std::lock_guard lock(mu_);
  stats_.snapshots_written += snapshots;
  stats_.records_written += records;
  return "";
}

JournalStats Journal::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

}  // namespace kubefold::state
