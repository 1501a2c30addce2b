// The durable history: what a Journal commits, a new Store restores exactly
// (seqs, times, vectors, record dots, clusters present, pins, dependencies,
// diffs); retention mirrors the store's; bad files and a full disk are clear
// errors; a process killed at random points loses nothing it committed.
#define BOOST_TEST_MODULE journal_test
#include <algorithm>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/test/unit_test.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "state/diff.h"
#include "state/journal.h"
#include "test_util.h"

namespace kubefold::state {
namespace {

using testing::Deployment;
using testing::ManualClock;
namespace fs = std::filesystem;

struct TempDir {
  fs::path path;
  TempDir() {
    char tmpl[] = "/tmp/kubefold-journal-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string File(const std::string& name = "history.db") const { return (path / name).string(); }
};

// Everything observable about a snapshot, as text.
std::string Dump(const Snapshot& s) {
  std::ostringstream out;
  out << "seq=" << s.seq() << " time=" << s.time().time_since_epoch().count() << " vector=" << s.vector().ToJson()
      << " workloads=" << s.workload_count() << "\n";
  s.ForEachCluster([&](const ClusterInfo& c) {
    out << "cluster " << c.name << " counter=" << c.counter << " ns=" << c.namespaces << " n=" << c.workloads << "\n";
    return true;
  });
  s.ForEachWorkload([&](const WorkloadRef& w) {
    const Record& r = *w.record;
    const WorkloadSummary m = r.summary();
    out << w.cluster << "/" << w.ns << "/" << r.group() << "/" << r.kind() << "/" << r.name() << " dot=" << r.counter()
        << " sum=" << m.generation << "," << m.observed_generation << "," << m.desired_replicas << ","
        << m.ready_replicas << "," << m.available_replicas << " hash=" << r.content_hash() << " " << r.object_json()
        << "\n";
    return true;
  });
  return out.str();
}

// The diff's changes, sorted: the order within a cluster is the change
// log's in the live store and the tries' in a restored one (diff.h).
std::string DumpDiff(const Snapshot& a, const Snapshot& b) {
  auto d = Diff(a, b);
  BOOST_REQUIRE(d.ok());
  std::vector<std::string> lines;
  for (const Change& c : d->changes()) {
    const Record* r = c.after ? c.after : c.before;
    lines.push_back(std::string(ChangeTypeName(c.type)) + " " + std::string(c.cluster) + "/" + std::string(c.ns) +
                    "/" + std::string(r->name()) + "\n");
  }
  std::sort(lines.begin(), lines.end());
  std::string out;
  for (const auto& l : lines) out += l;
  return out;
}

// A store wired to a journal, as the operator wires them.
struct Durable {
  std::unique_ptr<Journal> journal;
  std::unique_ptr<Store> store;
  Result<RestoreReport> restored = RestoreReport{};

  Durable(const std::string& file, HistoryOptions h, std::function<TimePoint()> clock, uint64_t max_bytes = 0,
          bool compress_restored = true) {
    JournalOptions jo;
    jo.path = file;
    jo.compress_restored = compress_restored;
    jo.max_bytes = max_bytes;
    jo.sync = false;  // the tests kill processes, not machines
    jo.retry = std::chrono::milliseconds(20);
    jo.idle_sync = std::chrono::milliseconds(20);
    auto j = Journal::Open(jo);
    BOOST_REQUIRE_MESSAGE(j.ok(), j.status().ToString());
    journal = std::move(*j);
    StoreOptions so;
    so.history = h;
    so.clock = std::move(clock);
    Journal* jp = journal.get();
    so.on_publish = [jp](const PublishEvent& e) { jp->OnPublish(e); };
    store = std::make_unique<Store>(so);
    restored = journal->Restore(*store);
    BOOST_REQUIRE_MESSAGE(restored.ok(), restored.status().ToString());
    journal->Start(*store);
  }
  ~Durable() {
    Close();
    store.reset();
  }
  // Stops committing and releases the file; the store stays readable.
  void Close() {
    if (journal) journal->Stop();
    journal.reset();
  }
  void Sync() {
    Status s = journal->WaitDurable(store->Current().seq(), std::chrono::seconds(20));
    BOOST_REQUIRE_MESSAGE(s.ok(), s.ToString());
  }
};

std::string Json(int i, int size = 0) {
  std::string pad(static_cast<size_t>(size), 'x');
  return R"({"metadata":{"name":"w)" + std::to_string(i) + R"("},"spec":{"v":)" + std::to_string(i) + R"(,"pad":")" +
         pad + R"("}})";
}

// A random history over three clusters: upserts, deletes, relists, cluster
// removal and re-registration, batches decided from an earlier snapshot.
void Churn(Store& store, ManualClock& clock, std::mt19937& rng, int batches) {
  const char* clusters[] = {"eu-1", "us-2", "ap-3"};
  for (int b = 0; b < batches; ++b) {
    clock.Advance(std::chrono::milliseconds(1 + rng() % 50));
    Batch batch;
    const int kind = static_cast<int>(rng() % 20);
    const std::string cluster = clusters[rng() % 3];
    if (kind == 0) {
      (void)batch.RemoveCluster(cluster);
    } else if (kind == 1) {
      std::vector<NamespacedObject> objs;
      for (int i = 0; i < 6; ++i) objs.push_back({"ns" + std::to_string(i % 2), Deployment("w" + std::to_string(i), Json(static_cast<int>(rng() % 3)))});
      (void)batch.ReplaceKind(cluster, "apps", "Deployment", objs);
    } else {
      for (int k = 0; k < 1 + static_cast<int>(rng() % 5); ++k) {
        const std::string ns = "ns" + std::to_string(rng() % 3);
        const int i = static_cast<int>(rng() % 12);
        if (rng() % 4 == 0) {
          (void)batch.Delete(cluster, ns, WorkloadKeyView("apps", "Deployment", "w" + std::to_string(i)));
        } else {
          (void)batch.Upsert(cluster, ns, Deployment("w" + std::to_string(i), Json(static_cast<int>(rng() % 5)),
                                                     static_cast<int32_t>(rng() % 3)));
        }
      }
      if (kind == 2) batch.DecidedFrom(store.Current());
    }
    auto r = store.Apply(std::move(batch));
    BOOST_REQUIRE(r.ok());
  }
}

BOOST_AUTO_TEST_CASE(restores_every_retained_snapshot_exactly) {
  TempDir dir;
  ManualClock clock;
  HistoryOptions h;
  h.keep_last = 40;
  h.keep_for = std::chrono::milliseconds(0);
  std::mt19937 rng(7);
  std::map<uint64_t, std::string> dumps;
  std::vector<uint64_t> seqs;
  std::map<std::string, std::string> diffs;
  std::string causal;
  VersionVector newest;
  {
    Durable d(dir.File(), h, clock.Fn());
    Churn(*d.store, clock, rng, 150);
    // Pin two old ones; more churn pushes them out of the window.
    const uint64_t p1 = d.store->Current().seq();
    BOOST_REQUIRE(d.store->Pin(p1).ok());
    BOOST_REQUIRE(d.store->Pin(p1).ok());
    Churn(*d.store, clock, rng, 30);
    const uint64_t p2 = d.store->Current().seq();
    BOOST_REQUIRE(d.store->Pin(p2).ok());
    Churn(*d.store, clock, rng, 200);
    d.Sync();
    for (const RetainedSnapshot& r : d.store->ListRetained()) {
      if (r.seq == 0) continue;  // the empty start is never journaled
      auto s = d.store->Get(r.seq);
      BOOST_REQUIRE(s.ok());
      dumps[r.seq] = Dump(*s);
      seqs.push_back(r.seq);
    }
    BOOST_REQUIRE(dumps.contains(p1));
    BOOST_REQUIRE(dumps.contains(p2));
    BOOST_TEST(dumps.size() == 42u);  // 40 in the window + 2 pinned
    for (size_t i = 0; i + 1 < seqs.size(); i += 7) {
      diffs[std::to_string(seqs[i]) + ">" + std::to_string(seqs.back())] =
          DumpDiff(*d.store->Get(seqs[i]), *d.store->Get(seqs.back()));
    }
    auto cc = d.store->CheckCausallyClosed(d.store->Current().vector());
    BOOST_REQUIRE(cc.ok());
    causal = std::to_string(cc->closed);
    newest = d.store->Current().vector();
    const JournalStats js = d.journal->Stats();
    BOOST_TEST(js.retained_rows == 42u, "failures " << js.failures << " coalesced " << js.coalesced << " reason \""
                                                    << js.degraded_reason << "\"");
  }
  Durable d(dir.File(), h, clock.Fn());
  BOOST_TEST(d.restored->snapshots == 42u);
  BOOST_TEST(d.restored->pins.size() == 2u);
  auto retained = d.store->ListRetained();
  std::vector<uint64_t> got;
  for (const auto& r : retained) {
    if (r.seq != 0) got.push_back(r.seq);
  }
  BOOST_TEST(got == seqs, boost::test_tools::per_element());
  for (const auto& [seq, text] : dumps) {
    auto s = d.store->Get(seq);
    BOOST_REQUIRE_MESSAGE(s.ok(), "seq " << seq);
    BOOST_TEST(Dump(*s) == text, "seq " << seq << "\nGOT\n" << Dump(*s) << "WANT\n" << text);
  }
  for (const auto& [pair, text] : diffs) {
    const auto gt = pair.find('>');
    auto a = d.store->Get(std::stoull(pair.substr(0, gt)));
    auto b = d.store->Get(std::stoull(pair.substr(gt + 1)));
    BOOST_TEST(DumpDiff(*a, *b) == text, "diff " << pair);
  }
  // The vector continues where it stopped: one more event on eu-1.
  BOOST_TEST(d.store->Current().vector().ToJson() == newest.ToJson());
  Batch b;
  BOOST_REQUIRE(b.Upsert("eu-1", "ns9", Deployment("new", Json(1000))).ok());
  auto r = d.store->Apply(std::move(b));
  BOOST_REQUIRE(r.ok());
  BOOST_TEST(d.store->Current().vector().Get("eu-1") == newest.Get("eu-1") + 1);
  BOOST_TEST(d.store->Current().seq() == seqs.back() + 1);
  // A seq retention dropped before the restart is gone, not found.
  BOOST_TEST(static_cast<int>(d.store->Get(seqs.front() - 1).status().code()) ==
             static_cast<int>(StatusCode::kGone));
}

// The journal holds JSON; restored records are compressed again (against
// the dictionary of their cluster and kind) only when asked, and either way
// read back exactly what was written.
BOOST_AUTO_TEST_CASE(restored_records_are_compressed_as_the_options_say) {
  TempDir dir;
  ManualClock clock;
  HistoryOptions h;
  h.keep_last = 8;
  std::map<std::string, std::string> written;
  {
    Durable d(dir.File(), h, clock.Fn());
    Batch b;
    for (int i = 0; i < 12; ++i) {
      const std::string json = Json(i, 400);
      written["journal-compress/ns/w" + std::to_string(i)] = json;
      BOOST_REQUIRE(b.Upsert("journal-compress", "ns", Deployment("w" + std::to_string(i), json)).ok());
    }
    BOOST_REQUIRE(d.store->Apply(std::move(b)).ok());
    d.Sync();
  }
  for (const bool compress : {false, true}) {
    Durable d(dir.File(), h, clock.Fn(), 0, compress);
    BOOST_REQUIRE_EQUAL(d.restored->snapshots, 1u);
    std::map<std::string, std::string> read;
    int compressed = 0;
    d.store->Current().ForEachWorkload([&](const WorkloadRef& w) {
      read[std::string(w.cluster) + "/" + std::string(w.ns) + "/" + std::string(w.record->name())] =
          w.record->object_json();
      compressed += w.record->compressed() ? 1 : 0;
      return true;
    });
    BOOST_TEST(read == written, "compress_restored=" << compress);
    BOOST_TEST(compressed == (compress ? 12 : 0), "compress_restored=" << compress);
  }
}

BOOST_AUTO_TEST_CASE(unpinned_history_leaves_the_disk) {
  TempDir dir;
  ManualClock clock;
  HistoryOptions h;
  h.keep_last = 10;
  h.keep_for = std::chrono::milliseconds(0);
  std::mt19937 rng(11);
  uint64_t pinned;
  {
    Durable d(dir.File(), h, clock.Fn());
    Churn(*d.store, clock, rng, 50);
    pinned = d.store->Current().seq();
    BOOST_REQUIRE(d.store->Pin(pinned).ok());
    Churn(*d.store, clock, rng, 50);
    d.Sync();
    BOOST_TEST(d.journal->Stats().retained_rows == 11u);
  }
  uint64_t before_bytes;
  {
    Durable d(dir.File(), h, clock.Fn());
    BOOST_REQUIRE(d.store->Get(pinned).ok());
    BOOST_REQUIRE(d.store->Unpin(pinned).ok());
    Churn(*d.store, clock, rng, 5);
    d.Sync();
    BOOST_TEST(d.journal->Stats().retained_rows == 10u);
    before_bytes = d.journal->Stats().disk_bytes;
    BOOST_TEST(before_bytes > 0u);
  }
  Durable d(dir.File(), h, clock.Fn());
  BOOST_TEST(static_cast<int>(d.store->Get(pinned).status().code()) == static_cast<int>(StatusCode::kGone));
  BOOST_TEST(d.restored->snapshots == 10u);
}

BOOST_AUTO_TEST_CASE(bad_files_are_clear_errors) {
  TempDir dir;
  {
    std::ofstream(dir.File("garbage.db")) << std::string(8192, 'g');
    JournalOptions jo;
    jo.path = dir.File("garbage.db");
    auto j = Journal::Open(jo);
    BOOST_REQUIRE(!j.ok());
    BOOST_TEST(j.status().message().find("garbage.db") != std::string::npos, j.status().message());
    BOOST_TEST(j.status().message().find("not a usable SQLite database") != std::string::npos, j.status().message());
    // The file is left as it was.
    BOOST_TEST(fs::file_size(dir.File("garbage.db")) == 8192u);
  }
  {
    JournalOptions jo;
    jo.path = dir.File();
    auto first = Journal::Open(jo);
    BOOST_REQUIRE(first.ok());
    auto second = Journal::Open(jo);
    BOOST_REQUIRE(!second.ok());
    BOOST_TEST(second.status().message().find("in use by another process") != std::string::npos,
               second.status().message());
  }
  {
    JournalOptions jo;
    jo.path = (dir.path / "missing-dir" / "h.db").string();
    auto j = Journal::Open(jo);
    BOOST_REQUIRE(!j.ok());
    BOOST_TEST(j.status().message().find("missing-dir/h.db") != std::string::npos, j.status().message());
  }
}

BOOST_AUTO_TEST_CASE(a_full_disk_degrades_to_memory_and_recovers) {
  TempDir dir;
  ManualClock clock;
  HistoryOptions h;
  h.keep_last = 2;
  h.keep_for = std::chrono::milliseconds(0);
  Durable d(dir.File(), h, clock.Fn(), 256 << 10);
  // 20 KB objects: the bound is reached after about a dozen.
  int i = 0;
  for (; i < 200 && !d.journal->Stats().degraded; ++i) {
    Batch b;
    BOOST_REQUIRE(b.Upsert("eu-1", "ns", Deployment("w" + std::to_string(i), Json(i, 20000))).ok());
    BOOST_REQUIRE(d.store->Apply(std::move(b)).ok());
    (void)d.journal->WaitDurable(d.store->Current().seq(), std::chrono::seconds(5));
  }
  const JournalStats full = d.journal->Stats();
  BOOST_REQUIRE_MESSAGE(full.degraded, "never reached the bound");
  BOOST_TEST(full.degraded_reason.find("full") != std::string::npos, full.degraded_reason);
  BOOST_TEST(full.disk_bytes <= (256u << 10) + (4u << 20));
  // The store keeps working in memory, and says why nothing is durable.
  Batch more;
  BOOST_REQUIRE(more.Upsert("eu-1", "ns", Deployment("extra", Json(1, 20000))).ok());
  BOOST_REQUIRE(d.store->Apply(std::move(more)).ok());
  BOOST_TEST(d.store->Current().workload_count() == static_cast<uint64_t>(i + 1));
  Status w = d.journal->WaitDurable(d.store->Current().seq(), std::chrono::seconds(1));
  BOOST_TEST(!w.ok());
  BOOST_TEST(w.message().find("degraded") != std::string::npos, w.message());
  // Space returns when the workloads go (their versions leave the disk with
  // the snapshots that saw them): the journal commits again by itself.
  Batch clear;
  BOOST_REQUIRE(clear.ReplaceKind("eu-1", "apps", "Deployment", {{"ns", Deployment("w0", Json(0))}}).ok());
  BOOST_REQUIRE(d.store->Apply(std::move(clear)).ok());
  const uint64_t target = d.store->Current().seq();
  bool recovered = false;
  for (int t = 0; t < 200 && !recovered; ++t) {
    recovered = d.journal->WaitDurable(target, std::chrono::milliseconds(100)).ok();
    if (!recovered) {
      // A degraded journal answers at once; its retries are paced.
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      Batch nudge;
      BOOST_REQUIRE(nudge.Upsert("us-2", "ns", Deployment("n", Json(t))).ok());
      BOOST_REQUIRE(d.store->Apply(std::move(nudge)).ok());
    }
  }
  BOOST_REQUIRE_MESSAGE(recovered, d.journal->Stats().degraded_reason);
  BOOST_TEST(!d.journal->Stats().degraded);
  BOOST_TEST(d.journal->Stats().coalesced > 0u);
  d.Sync();
  const std::string want = Dump(d.store->Current());
  d.Close();
  Durable again(dir.File(), h, clock.Fn(), 256 << 10);
  BOOST_TEST(Dump(again.store->Current()) == want);
}

// A child process folds, pins and reports every snapshot the journal said
// was durable; it is killed with SIGKILL at a random point; the parent
// restores and finds each reported snapshot exactly as reported. The next
// child continues from the restored history.
BOOST_AUTO_TEST_CASE(killed_at_random_points_loses_nothing_committed) {
  TempDir dir;
  HistoryOptions h;
  h.keep_last = 8;
  h.keep_for = std::chrono::milliseconds(0);
  std::map<uint64_t, size_t> reported;  // seq -> hash of Dump
  std::mt19937 rng(2026);
  uint64_t last_newest = 0;
  for (int iter = 0; iter < 20; ++iter) {
    int fds[2];
    BOOST_REQUIRE(pipe(fds) == 0);
    const pid_t pid = fork();
    BOOST_REQUIRE(pid >= 0);
    if (pid == 0) {
      close(fds[0]);
      JournalOptions jo;
      jo.path = dir.File();
      jo.sync = false;
      auto j = Journal::Open(jo);
      if (!j.ok()) _exit(3);
      StoreOptions so;
      so.history = h;
      Journal* jp = j->get();
      so.on_publish = [jp](const PublishEvent& e) { jp->OnPublish(e); };
      Store store(so);
      if (!(*j)->Restore(store).ok()) _exit(4);
      (*j)->Start(store);
      ManualClock unused;
      std::mt19937 crng(static_cast<unsigned>(iter));
      for (int n = 0;; ++n) {
        Churn(store, unused, crng, 1);
        if (n % 5 == 0) {
          const uint64_t seq = store.Current().seq();
          if (!store.Pin(seq).ok()) _exit(5);
          if ((*j)->WaitDurable(seq, std::chrono::seconds(10)).ok()) {
            const std::string line =
                std::to_string(seq) + " " + std::to_string(std::hash<std::string>{}(Dump(*store.Get(seq)))) + "\n";
            if (write(fds[1], line.data(), line.size()) != static_cast<ssize_t>(line.size())) _exit(6);
          }
        }
      }
    }
    close(fds[1]);
    // The kill comes at a random point after the child has reported its
    // first durable snapshot: a child that is slow to start (a sanitizer
    // build on a loaded machine) is not killed before it folds anything.
    std::string text;
    char buf[4096];
    const auto started = std::chrono::steady_clock::now();
    while (text.find('\n') == std::string::npos &&
           std::chrono::steady_clock::now() - started < std::chrono::seconds(60)) {
      pollfd pfd{fds[0], POLLIN, 0};
      if (poll(&pfd, 1, 100) <= 0) continue;
      const ssize_t n = read(fds[0], buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<size_t>(n));
    }
    usleep(static_cast<useconds_t>(rng() % 150000));
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    BOOST_REQUIRE_MESSAGE(WIFSIGNALED(status), "the child exited by itself with " << WEXITSTATUS(status));
    BOOST_REQUIRE_MESSAGE(text.find('\n') != std::string::npos,
                          "iteration " << iter << ": the child reported no durable snapshot within 60 s");
    for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) text.append(buf, static_cast<size_t>(n));
    close(fds[0]);
    std::istringstream lines(text);
    uint64_t seq;
    size_t hash;
    while (lines >> seq >> hash) reported[seq] = hash;

    Durable d(dir.File(), h, [] { return std::chrono::system_clock::now(); });
    BOOST_TEST(d.restored->newest_seq >= last_newest, "history went backwards at iteration " << iter);
    last_newest = d.restored->newest_seq;
    for (const auto& [s, want] : reported) {
      auto got = d.store->Get(s);
      BOOST_REQUIRE_MESSAGE(got.ok(), "iteration " << iter << ": reported durable seq " << s << ": "
                                                   << got.status().ToString());
      BOOST_TEST(std::hash<std::string>{}(Dump(*got)) == want, "iteration " << iter << ": seq " << s);
    }
  }
  BOOST_TEST_MESSAGE("crash iterations: 20, durable snapshots checked: " << reported.size());
  BOOST_TEST(reported.size() > 20u);
}

}  // namespace
}  // namespace kubefold::state
