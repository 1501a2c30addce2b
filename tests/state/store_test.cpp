#define BOOST_TEST_MODULE store_test
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "state/diff.h"
#include "state/internal/diff_paths.h"
#include "state/internal/record_heap.h"
#include "state/store.h"
#include "tests/state/test_util.h"

using namespace kubefold::state;
using kubefold::StatusCode;
using kubefold::state::testing::Deployment;
using kubefold::state::testing::ManualClock;

namespace {

ApplyResult MustApply(Store& store, Batch b) {
  auto r = store.Apply(std::move(b));
  BOOST_TEST_REQUIRE(r.ok(), r.status().ToString());
  return *r;
}

ApplyResult Upsert(Store& store, const std::string& cluster, const std::string& ns, const std::string& name,
                   const std::string& json) {
  Batch b;
  BOOST_TEST_REQUIRE(b.Upsert(cluster, ns, Deployment(name, json)).ok());
  return MustApply(store, std::move(b));
}

std::set<std::string> Names(const Snapshot& s) {
  std::set<std::string> out;
  s.ForEachWorkload([&](const WorkloadRef& w) {
    out.insert(std::string(w.cluster) + "/" + std::string(w.ns) + "/" + std::string(w.record->name()));
    return true;
  });
  return out;
}

bool Contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

// History by count alone: the newest `n` snapshots.
StoreOptions KeepLast(size_t n) {
  StoreOptions o;
  o.history.keep_last = n;
  o.history.keep_for = std::chrono::milliseconds(0);
  return o;
}

}  // namespace

namespace kubefold::state {
struct StoreTestPeer {
  static std::unique_ptr<Store> StartingAt(StoreOptions options, uint64_t first_batch) {
    return std::unique_ptr<Store>(new Store(std::move(options), first_batch));
  }
};
}  // namespace kubefold::state

BOOST_AUTO_TEST_CASE(a_new_store_publishes_an_empty_snapshot_zero) {
  Store store;
  Snapshot s = store.Current();
  BOOST_TEST(s.valid());
  BOOST_TEST(s.seq() == 0u);
  BOOST_TEST(s.workload_count() == 0u);
  BOOST_TEST(s.vector().ToJson() == "{}");
  BOOST_TEST(s.cluster_count() == 0u);
}

BOOST_AUTO_TEST_CASE(upserts_advance_the_clusters_component_and_publish_one_snapshot_per_batch) {
  Store store;
  Batch b;
  BOOST_TEST(b.Upsert("eu-1", "shop", Deployment("web", R"({"v":1})")).ok());
  BOOST_TEST(b.Upsert("eu-1", "shop", Deployment("api", R"({"v":1})")).ok());
  BOOST_TEST(b.Upsert("us-2", "shop", Deployment("web", R"({"v":1})")).ok());
  ApplyResult r = MustApply(store, std::move(b));
  BOOST_TEST(r.published);
  BOOST_TEST(r.seq == 1u);
  BOOST_TEST(r.applied == 3u);
  BOOST_TEST(r.noops == 0u);
  Snapshot s = store.Current();
  BOOST_TEST(s.seq() == 1u);
  BOOST_TEST(s.vector().ToJson() == R"({"eu-1":2,"us-2":1})");
  BOOST_TEST(s.workload_count() == 3u);
  BOOST_TEST(s.CountWorkloads("eu-1") == 2u);
  BOOST_TEST(s.CountWorkloads("eu-1", "shop") == 2u);
  BOOST_TEST(s.CountWorkloads("eu-1", "nope") == 0u);
  const Record* web = s.Get("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web"));
  BOOST_TEST_REQUIRE(web != nullptr);
  BOOST_TEST(web->object_json() == R"({"v":1})");
  BOOST_TEST(web->counter() == 1u);
  BOOST_TEST(web->summary().desired_replicas == 1);
  BOOST_TEST(s.Get("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "db")) == nullptr);
  BOOST_TEST(s.Get("nowhere", "shop", WorkloadKeyView("apps", "Deployment", "web")) == nullptr);
  auto info = s.Cluster("eu-1");
  BOOST_TEST_REQUIRE(info.has_value());
  BOOST_TEST(info->counter == 2u);
  BOOST_TEST(info->namespaces == 1u);
  BOOST_TEST(info->workloads == 2u);
}

BOOST_AUTO_TEST_CASE(an_unchanged_write_is_a_noop_with_no_new_nodes_and_no_counter) {
  Store store;
  Upsert(store, "eu-1", "shop", "web", R"({"v":1})");
  StoreStats before = store.Stats();
  ApplyResult r = Upsert(store, "eu-1", "shop", "web", R"({"v":1})");
  BOOST_TEST(!r.published);
  BOOST_TEST(r.applied == 0u);
  BOOST_TEST(r.noops == 1u);
  BOOST_TEST(r.seq == 1u);
  StoreStats after = store.Stats();
  BOOST_TEST(after.nodes_live == before.nodes_live);
  BOOST_TEST(after.records_live == before.records_live);
  BOOST_TEST(store.Current().vector().ToJson() == R"({"eu-1":1})");
  // A change of the summary alone is a change.
  Batch b;
  auto d = Deployment("web", R"({"v":1})", 3);
  BOOST_TEST(b.Upsert("eu-1", "shop", d).ok());
  BOOST_TEST(MustApply(store, std::move(b)).applied == 1u);
  BOOST_TEST(store.Current().vector().ToJson() == R"({"eu-1":2})");
}

BOOST_AUTO_TEST_CASE(a_published_snapshot_never_changes) {
  Store store;
  Upsert(store, "eu-1", "shop", "web", R"({"v":1})");
  Snapshot s1 = store.Current();
  Upsert(store, "eu-1", "shop", "web", R"({"v":2})");
  Upsert(store, "eu-1", "shop", "api", R"({"v":1})");
  Batch b;
  BOOST_TEST(b.RemoveCluster("eu-1").ok());
  MustApply(store, std::move(b));
  BOOST_TEST(s1.workload_count() == 1u);
  BOOST_TEST(s1.Get("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web"))->object_json() == R"({"v":1})");
  BOOST_TEST(Names(s1) == (std::set<std::string>{"eu-1/shop/web"}));
  BOOST_TEST(store.Current().workload_count() == 0u);
}

BOOST_AUTO_TEST_CASE(delete_removes_the_workload_and_empty_namespaces) {
  Store store;
  Upsert(store, "eu-1", "shop", "web", "{}");
  Upsert(store, "eu-1", "blog", "web", "{}");
  Batch b;
  BOOST_TEST(b.Delete("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web")).ok());
  BOOST_TEST(b.Delete("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web")).ok());  // already gone
  BOOST_TEST(b.Delete("zz-9", "shop", WorkloadKeyView("apps", "Deployment", "web")).ok());  // unknown cluster
  ApplyResult r = MustApply(store, std::move(b));
  BOOST_TEST(r.applied == 1u);
  BOOST_TEST(r.noops == 2u);
  Snapshot s = store.Current();
  BOOST_TEST(s.Cluster("eu-1")->namespaces == 1u);
  BOOST_TEST(s.vector().ToJson() == R"({"eu-1":3})");
  BOOST_TEST(s.vector().Get("zz-9") == 0u);
  std::vector<std::string> namespaces;
  s.ForEachNamespace("eu-1", [&](const NamespaceInfo& n) { namespaces.emplace_back(n.name); return true; });
  BOOST_TEST(namespaces == (std::vector<std::string>{"blog"}));
}

BOOST_AUTO_TEST_CASE(replace_kind_writes_only_the_differences) {
  Store store;
  Batch b;
  for (const char* n : {"a", "b", "c"}) BOOST_TEST(b.Upsert("eu-1", "shop", Deployment(n, R"({"v":1})")).ok());
  WorkloadObject sts;
  sts.key = {"apps", "StatefulSet", "db"};
  sts.object_json = "{}";
  BOOST_TEST(b.Upsert("eu-1", "shop", sts).ok());
  MustApply(store, std::move(b));
  Snapshot before = store.Current();
  BOOST_TEST(before.vector().Get("eu-1") == 4u);

  // Relist: a unchanged, b changed, c gone, d new; the StatefulSet is untouched.
  std::vector<NamespacedObject> list = {{"shop", Deployment("a", R"({"v":1})")},
                                        {"shop", Deployment("b", R"({"v":2})")},
                                        {"other", Deployment("d", R"({"v":1})")}};
  Batch relist;
  BOOST_TEST(relist.ReplaceKind("eu-1", "apps", "Deployment", list).ok());
  ApplyResult r = MustApply(store, std::move(relist));
  BOOST_TEST(r.applied == 3u);  // b modified, c removed, d added
  BOOST_TEST(r.noops == 1u);    // a
  Snapshot after = store.Current();
  BOOST_TEST(after.vector().Get("eu-1") == 7u);
  BOOST_TEST(Names(after) == (std::set<std::string>{"eu-1/shop/a", "eu-1/shop/b", "eu-1/other/d", "eu-1/shop/db"}));
  auto diff = Diff(before, after);
  BOOST_TEST_REQUIRE(diff.ok());
  BOOST_TEST(diff->added() == 1u);
  BOOST_TEST(diff->removed() == 1u);
  BOOST_TEST(diff->modified() == 1u);
  // The unchanged record is the very same object (no churn).
  WorkloadKeyView a("apps", "Deployment", "a");
  BOOST_TEST(before.Get("eu-1", "shop", a) == after.Get("eu-1", "shop", a));
}

BOOST_AUTO_TEST_CASE(replace_kind_rejects_objects_of_another_kind) {
  Batch b;
  std::vector<NamespacedObject> list = {{"shop", Deployment("a", "{}")}};
  kubefold::Status s = b.ReplaceKind("eu-1", "apps", "StatefulSet", list);
  BOOST_TEST((s.code() == StatusCode::kInvalidArgument));
  BOOST_TEST(Contains(s.message(), "object 0 (shop/a) is a apps/Deployment"), s.message());
  BOOST_TEST(b.empty());
}

BOOST_AUTO_TEST_CASE(removing_a_cluster_keeps_its_component_and_readding_continues_it) {
  Store store;
  Upsert(store, "eu-1", "shop", "web", "{}");
  Batch rm;
  BOOST_TEST(rm.RemoveCluster("eu-1").ok());
  BOOST_TEST(rm.RemoveCluster("eu-1").ok());  // second is a no-op
  ApplyResult r = MustApply(store, std::move(rm));
  BOOST_TEST(r.applied == 1u);
  BOOST_TEST(r.noops == 1u);
  Snapshot s = store.Current();
  BOOST_TEST(s.cluster_count() == 0u);
  BOOST_TEST(!s.Cluster("eu-1").has_value());
  BOOST_TEST(s.vector().ToJson() == R"({"eu-1":2})");
  Batch add;
  BOOST_TEST(add.AddCluster("eu-1").ok());
  BOOST_TEST(add.AddCluster("eu-1").ok());
  r = MustApply(store, std::move(add));
  BOOST_TEST(r.applied == 1u);
  s = store.Current();
  BOOST_TEST(s.vector().ToJson() == R"({"eu-1":3})");
  BOOST_TEST(s.Cluster("eu-1")->workloads == 0u);
  Upsert(store, "eu-1", "shop", "web", "{}");
  BOOST_TEST(store.Current().Get("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web"))->counter() == 4u);
}

BOOST_AUTO_TEST_CASE(bad_operations_are_rejected_with_the_field_named_and_nothing_added) {
  Batch b;
  auto check = [&](kubefold::Status s, std::string_view part) {
    BOOST_TEST((s.code() == StatusCode::kInvalidArgument));
    BOOST_TEST(Contains(s.message(), part), s.message());
  };
  check(b.Upsert("", "shop", Deployment("web", "{}")), "cluster name is empty");
  check(b.Upsert("eu-1", "shop", Deployment("", "{}")), "workload name is empty");
  WorkloadObject no_kind = Deployment("web", "{}");
  no_kind.key.kind = "";
  check(b.Upsert("eu-1", "shop", no_kind), "workload kind is empty");
  check(b.Upsert("eu-1", std::string(300, 'n'), Deployment("web", "{}")), "namespace is 300 bytes long");
  check(b.Delete("eu-1", "shop", WorkloadKeyView("apps", "Deployment", std::string(254, 'x'))),
        "workload name is 254 bytes long");
  check(b.AddCluster(std::string(254, 'c')), "cluster name is 254 bytes long");
  check(b.RemoveCluster(""), "cluster name is empty");
  BOOST_TEST(b.empty());
}

BOOST_AUTO_TEST_CASE(apply_rejects_dependencies_on_foreign_or_composed_snapshots) {
  Store store, other;
  Upsert(other, "eu-1", "shop", "web", "{}");
  Batch b;
  BOOST_TEST(b.Upsert("eu-1", "shop", Deployment("web", "{}")).ok());
  b.DecidedFrom(other.Current());
  auto r = store.Apply(std::move(b));
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(Contains(r.status().message(), "snapshot of store"));
  BOOST_TEST(store.Current().seq() == 0u);  // nothing applied

  Upsert(store, "eu-1", "shop", "web", "{}");
  auto composed = store.ComposeAt(store.Current().vector());
  BOOST_TEST_REQUIRE(composed.ok());
  Batch c;
  BOOST_TEST(c.Upsert("eu-1", "shop", Deployment("api", "{}")).ok());
  c.DecidedFrom(*composed);
  auto r2 = store.Apply(std::move(c));
  BOOST_TEST(!r2.ok());
  BOOST_TEST(Contains(r2.status().message(), "composed view"));
}

BOOST_AUTO_TEST_CASE(history_keeps_the_newest_by_count_and_window_and_pins) {
  ManualClock clock;
  StoreOptions opts;
  opts.clock = clock.Fn();
  opts.history.keep_last = 2;
  opts.history.keep_for = std::chrono::seconds(10);
  Store store(opts);
  for (int i = 1; i <= 5; ++i) {
    clock.Advance(std::chrono::seconds(1));
    Upsert(store, "eu-1", "shop", "web", "{\"v\":" + std::to_string(i) + "}");
  }
  // All within 10 s: seqs 0..5 retained.
  BOOST_TEST(store.ListRetained().size() == 6u);
  auto pinned = store.Pin(2);
  BOOST_TEST_REQUIRE(pinned.ok());
  BOOST_TEST(pinned->seq() == 2u);
  clock.Advance(std::chrono::seconds(60));
  store.Collect();
  // Window passed: the newest 2 plus the pinned one stay.
  std::vector<uint64_t> seqs;
  for (const auto& r : store.ListRetained()) seqs.push_back(r.seq);
  BOOST_TEST(seqs == (std::vector<uint64_t>{2, 4, 5}));
  BOOST_TEST(store.ListRetained(3, 1).front().seq == 4u);
  BOOST_TEST(store.ListRetained(2, 1).front().seq == 2u);
  BOOST_TEST(store.Stats().pinned_snapshots == 1u);

  auto gone = store.Get(1);
  BOOST_TEST((gone.status().code() == StatusCode::kGone));
  BOOST_TEST(gone.status().message() == "snapshot 1 was dropped by retention; the oldest retained is 2");
  auto future = store.Get(9);
  BOOST_TEST((future.status().code() == StatusCode::kNotFound));
  BOOST_TEST(future.status().message() == "snapshot 9 has not been published; the newest is 5");
  auto pin_gone = store.Pin(3);
  BOOST_TEST((pin_gone.status().code() == StatusCode::kGone));
  BOOST_TEST(store.Get(2)->Get("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web"))->object_json() ==
             R"({"v":2})");

  BOOST_TEST((store.Unpin(4).code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(store.Unpin(2).ok());
  BOOST_TEST((store.Unpin(2).code() == StatusCode::kFailedPrecondition));
  store.Collect();
  BOOST_TEST(store.ListRetained().front().seq == 4u);
}

BOOST_AUTO_TEST_CASE(at_or_before_finds_by_time) {
  ManualClock clock;
  StoreOptions opts;
  opts.clock = clock.Fn();
  Store store(opts);
  TimePoint t0 = clock.now;
  clock.Advance(std::chrono::seconds(10));
  Upsert(store, "eu-1", "shop", "web", "{}");  // seq 1 at t0+10
  clock.Advance(std::chrono::seconds(10));
  Upsert(store, "eu-1", "shop", "api", "{}");  // seq 2 at t0+20
  BOOST_TEST(store.AtOrBefore(t0 + std::chrono::seconds(15))->seq() == 1u);
  BOOST_TEST(store.AtOrBefore(t0 + std::chrono::seconds(20))->seq() == 2u);
  BOOST_TEST(store.AtOrBefore(t0 + std::chrono::hours(1))->seq() == 2u);
  BOOST_TEST(store.AtOrBefore(t0)->seq() == 0u);
  auto early = store.AtOrBefore(t0 - std::chrono::seconds(1));
  BOOST_TEST((early.status().code() == StatusCode::kGone));
  BOOST_TEST(Contains(early.status().message(), "no retained snapshot was published at or before"));
}

BOOST_AUTO_TEST_CASE(snapshot_times_never_go_backwards_when_the_clock_does) {
  ManualClock clock;
  StoreOptions opts;
  opts.clock = clock.Fn();
  Store store(opts);
  clock.Advance(std::chrono::seconds(10));
  Upsert(store, "eu-1", "shop", "web", "{}");
  TimePoint t1 = store.Current().time();
  clock.Advance(std::chrono::seconds(-5));
  Upsert(store, "eu-1", "shop", "api", "{}");
  BOOST_TEST((store.Current().time() == t1));
}

BOOST_AUTO_TEST_CASE(compose_at_joins_per_cluster_subtrees_from_history) {
  Store store;
  Upsert(store, "eu-1", "shop", "web", R"({"v":1})");  // seq1 eu-1:1
  Upsert(store, "us-2", "shop", "web", R"({"v":1})");  // seq2 us-2:1
  Upsert(store, "eu-1", "shop", "web", R"({"v":2})");  // seq3 eu-1:2
  Upsert(store, "us-2", "shop", "web", R"({"v":2})");  // seq4 us-2:2
  // A cut no single snapshot has: eu-1 at 2 (seq3) and us-2 at 1 (seq2) — that
  // one exists as seq3; ask for eu-1 at 1 and us-2 at 2 instead, a cut no
  // published snapshot holds.
  auto v = VersionVector::Parse(R"({"eu-1":1,"us-2":2})");
  BOOST_TEST_REQUIRE(v.ok());
  auto view = store.ComposeAt(*v);
  BOOST_TEST_REQUIRE(view.ok(), view.status().ToString());
  BOOST_TEST(view->composed());
  BOOST_TEST(view->seq() == 0u);
  BOOST_TEST((view->vector() == *v));
  WorkloadKeyView web("apps", "Deployment", "web");
  BOOST_TEST(view->Get("eu-1", "shop", web)->object_json() == R"({"v":1})");
  BOOST_TEST(view->Get("us-2", "shop", web)->object_json() == R"({"v":2})");
  BOOST_TEST(view->workload_count() == 2u);
  // Asking beyond what was folded gives the newest state and says so.
  auto ahead = store.ComposeAt(VersionVector{{"eu-1", 99}});
  BOOST_TEST_REQUIRE(ahead.ok());
  BOOST_TEST(ahead->vector().ToJson() == R"({"eu-1":2})");
  BOOST_TEST(store.Stats().reads_composed == 2u);
  // Diff works on composed views.
  auto d = Diff(*view, store.Current());
  BOOST_TEST_REQUIRE(d.ok());
  BOOST_TEST(d->modified() == 1u);
  BOOST_TEST(d->changes()[0].cluster == "eu-1");
}

BOOST_AUTO_TEST_CASE(compose_at_rejects_unknown_clusters_and_cuts_history_lost) {
  StoreOptions opts;
  opts.history.keep_last = 1;
  opts.history.keep_for = std::chrono::milliseconds(0);
  Store store(opts);
  Upsert(store, "eu-1", "shop", "web", R"({"v":1})");
  Upsert(store, "eu-1", "shop", "web", R"({"v":2})");
  auto unknown = store.ComposeAt(VersionVector{{"mars", 1}});
  BOOST_TEST((unknown.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(unknown.status().message() == "vector names cluster \"mars\", which this store has never seen");
  auto lost = store.ComposeAt(VersionVector{{"eu-1", 1}});
  BOOST_TEST((lost.status().code() == StatusCode::kGone));
  BOOST_TEST(Contains(lost.status().message(), "history no longer reaches cluster \"eu-1\" at counter 1"),
             lost.status().message());
}

BOOST_AUTO_TEST_CASE(causal_closure_follows_decided_from_dependencies) {
  Store store;
  Upsert(store, "eu-1", "shop", "web", "{}");          // seq1 {eu-1:1}
  Upsert(store, "eu-1", "shop", "web", R"({"x":1})");  // seq2 {eu-1:2}
  Snapshot decided = store.Current();
  // kubefold acted on us-2 from seq2; the watch on us-2 then observes it.
  Batch b;
  BOOST_TEST(b.Upsert("us-2", "shop", Deployment("web", "{}")).ok());
  b.DecidedFrom(decided);
  MustApply(store, std::move(b));  // seq3 {eu-1:2, us-2:1}
  auto closed = store.CheckCausallyClosed(store.Current().vector());
  BOOST_TEST_REQUIRE(closed.ok());
  BOOST_TEST(closed->closed);
  // {eu-1:1, us-2:1} includes the observation but not what it was decided from.
  auto open = store.CheckCausallyClosed(VersionVector{{"eu-1", 1}, {"us-2", 1}});
  BOOST_TEST_REQUIRE(open.ok());
  BOOST_TEST(!open->closed);
  BOOST_TEST(open->reason ==
             R"(includes event 1 of cluster "us-2", which was decided from snapshot 2 at {"eu-1":2}, but does not include that snapshot)");
  auto before = store.CheckCausallyClosed(VersionVector{{"eu-1", 1}});
  BOOST_TEST_REQUIRE(before.ok());
  BOOST_TEST(before->closed);
}

BOOST_AUTO_TEST_CASE(causal_check_below_history_is_gone) {
  Store store(KeepLast(1));
  Upsert(store, "eu-1", "shop", "web", "{}");
  Upsert(store, "eu-1", "shop", "api", "{}");
  auto r = store.CheckCausallyClosed(VersionVector{{"eu-1", 1}});
  BOOST_TEST((r.status().code() == StatusCode::kGone));
}

BOOST_AUTO_TEST_CASE(accounting_separates_current_from_history) {
  StoreOptions opts;
  opts.history.keep_last = 1;
  opts.history.keep_for = std::chrono::milliseconds(0);
  Store store(opts);
  Batch b;
  for (int i = 0; i < 100; ++i) BOOST_TEST(b.Upsert("eu-1", "shop", Deployment("w" + std::to_string(i), "{}")).ok());
  MustApply(store, std::move(b));
  StoreStats s = store.Stats();
  BOOST_TEST(s.workloads == 100u);
  BOOST_TEST(s.clusters == 1u);
  BOOST_TEST(s.records_live == 100u);
  BOOST_TEST(s.nodes_live == s.nodes_current);  // nothing but the current tree
  BOOST_TEST(s.retained_bytes == 0u);
  BOOST_TEST(s.version_fragmentation == 0.0);
  {
    Snapshot held = store.Current();  // a reader keeps the old version alive
    Upsert(store, "eu-1", "shop", "w0", R"({"v":2})");
    s = store.Stats();
    BOOST_TEST(s.records_live == 101u);  // the old w0 too
    BOOST_TEST(s.nodes_live > s.nodes_current);
    BOOST_TEST(s.retained_bytes > 0u);
    BOOST_TEST(s.version_fragmentation > 0.0);
  }
  const uint64_t pooled_before = s.pool_free_bytes;
  const uint64_t retained_node_bytes = s.node_bytes_live - s.node_bytes_current;
  store.Collect();  // the reader let go: the writer frees the old path
  s = store.Stats();
  BOOST_TEST(s.records_live == 100u);
  BOOST_TEST(s.nodes_live == s.nodes_current);
  BOOST_TEST(s.retained_bytes == 0u);
#if defined(__SANITIZE_ADDRESS__)
  BOOST_TEST(s.pool_free_bytes == 0u);  // the free lists are bypassed under ASan
#else
  // The old path's nodes went to the writer's free lists (in 8-byte classes,
  // so at least their accounted bytes).
  BOOST_TEST(s.pool_free_bytes >= pooled_before + retained_node_bytes);
#endif
  BOOST_TEST(s.events_applied == 101u);
  BOOST_TEST(s.batches == 2u);
}

// Objects record the batch that made them in 48 bits. The last batch
// numbers are folded and reclaimed like any other; past them the store
// refuses to fold, and keeps what it has.
BOOST_AUTO_TEST_CASE(the_store_folds_up_to_the_last_batch_number_and_then_refuses) {
  constexpr uint64_t kMax = internal::Versioned::kMaxBirth;
  auto store = StoreTestPeer::StartingAt(KeepLast(1), kMax - 2);  // the empty snapshot is batch kMax - 2
  Upsert(*store, "eu-1", "shop", "web", R"({"v":1})");             // kMax - 1
  const Snapshot first = store->Current();
  Upsert(*store, "eu-1", "shop", "web", R"({"v":2})");             // kMax
  const Snapshot second = store->Current();
  BOOST_TEST(second.seq() == 2u);
  // The old record lives exactly as long as a snapshot that sees it.
  BOOST_TEST(store->Stats().records_live == 2u);
  auto diff = Diff(first, second);
  BOOST_TEST_REQUIRE(diff.ok());
  BOOST_TEST(diff->modified() == 1u);
  BOOST_TEST(diff->changes().size() == 1u);

  Batch b;
  BOOST_TEST_REQUIRE(b.Upsert("eu-1", "shop", Deployment("api", "{}")).ok());
  auto refused = store->Apply(std::move(b));
  BOOST_TEST_REQUIRE(!refused.ok());
  BOOST_TEST((refused.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(Contains(refused.status().message(), "2^48"), refused.status().message());
  BOOST_TEST(store->Current().seq() == 2u);
  BOOST_TEST((Names(store->Current()) == std::set<std::string>{"eu-1/shop/web"}));
  BOOST_TEST(store->Current().Get("eu-1", "shop", {"apps", "Deployment", "web"})->object_json() == R"({"v":2})");
}

// Records of 129 to 1,024 bytes live in the record heap's slabs; the store
// reports the slabs' bytes that hold no record (process-wide).
BOOST_AUTO_TEST_CASE(stats_report_the_record_slabs_unused_bytes) {
  namespace in = kubefold::state::internal;
  Store store;
  // 889 bytes of JSON: a record of about 940 bytes, a size no other case
  // here stores.
  const std::string json = R"({"x":")" + std::string(880, 'x') + R"("})";
  Upsert(store, "eu-1", "shop", "big1", json);
  const Snapshot now = store.Current();
  const Record* probe = now.Get("eu-1", "shop", {"apps", "Deployment", "big1"});
  BOOST_TEST_REQUIRE(probe != nullptr);
  const uint64_t after_one = store.Stats().record_slab_free_bytes;
  BOOST_TEST(after_one == in::RecordHeap::Count().free_bytes());
#if defined(__SANITIZE_ADDRESS__)
  BOOST_TEST(after_one == 0u);  // every record is malloc's under ASan
#else
  BOOST_TEST(in::RecordHeap::Carves(probe->ByteSize()));
  // A second record of the same size comes from the same slab: its block
  // is no longer free.
  Upsert(store, "eu-1", "shop", "big2", json);
  const size_t block = (probe->ByteSize() + 7) / 8 * 8;
  BOOST_TEST(store.Stats().record_slab_free_bytes == after_one - block);
#endif
}

BOOST_AUTO_TEST_CASE(reads_are_counted_by_source_and_delays_recorded) {
  ManualClock clock;
  StoreOptions opts;
  opts.clock = clock.Fn();
  Store store(opts);
  Batch b;
  BOOST_TEST(b.Upsert("eu-1", "shop", Deployment("web", "{}"), clock.now - std::chrono::milliseconds(3)).ok());
  MustApply(store, std::move(b));
  (void)store.Current();
  (void)store.Current();
  (void)store.Get(1);  // the newest: counts as current
  (void)store.Get(0);  // an older one: retained
  StoreStats s = store.Stats();
  BOOST_TEST(s.reads_current == 3u);
  BOOST_TEST(s.reads_retained == 1u);
  BOOST_TEST(s.update_delay.count == 1u);
  BOOST_TEST(s.update_delay.sum_seconds == 0.003, boost::test_tools::tolerance(1e-9));
  // 3 ms falls in the (2.5 ms, 5 ms] bucket.
  BOOST_TEST(s.update_delay.cumulative[7] == 0u);
  BOOST_TEST(s.update_delay.cumulative[8] == 1u);
}

BOOST_AUTO_TEST_CASE(snapshots_outlive_their_store) {
  Snapshot kept;
  {
    Store store;
    Upsert(store, "eu-1", "shop", "web", R"({"v":1})");
    kept = store.Current();
  }
  BOOST_TEST(kept.Get("eu-1", "shop", WorkloadKeyView("apps", "Deployment", "web"))->object_json() == R"({"v":1})");
  Snapshot copy = kept;
  kept = Snapshot();
  BOOST_TEST(copy.workload_count() == 1u);
}

BOOST_AUTO_TEST_CASE(diff_filters_and_errors) {
  Store store, other;
  Upsert(store, "eu-1", "shop", "web", "{}");
  Upsert(store, "us-2", "shop", "web", "{}");
  Snapshot a = store.Current();
  Upsert(store, "eu-1", "shop", "web", R"({"v":2})");
  Upsert(store, "eu-1", "blog", "web", "{}");
  Upsert(store, "us-2", "shop", "api", "{}");
  Snapshot b = store.Current();
  BOOST_TEST(Diff(a, b)->changes().size() == 3u);
  DiffFilter only_eu;
  only_eu.cluster = "eu-1";
  BOOST_TEST(Diff(a, b, only_eu)->changes().size() == 2u);
  DiffFilter only_shop;
  only_shop.ns = "shop";
  auto shop = Diff(a, b, only_shop);
  BOOST_TEST(shop->changes().size() == 2u);
  for (const Change& c : shop->changes()) BOOST_TEST(c.ns == "shop");
  DiffFilter eu_blog;
  eu_blog.cluster = "eu-1";
  eu_blog.ns = "blog";
  auto blog = Diff(a, b, eu_blog);
  BOOST_TEST_REQUIRE(blog->changes().size() == 1u);
  BOOST_TEST((blog->changes()[0].type == ChangeType::kAdded));
  BOOST_TEST(blog->changes()[0].before == nullptr);
  BOOST_TEST(blog->changes()[0].after->name() == "web");
  // Reverse direction swaps added and removed.
  auto back = Diff(b, a);
  BOOST_TEST(back->removed() == 2u);
  BOOST_TEST(back->modified() == 1u);
  // Equal snapshots: nothing.
  BOOST_TEST(Diff(b, store.Current())->changes().empty());

  Upsert(other, "eu-1", "shop", "web", "{}");
  auto cross = Diff(a, other.Current());
  BOOST_TEST((cross.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(Contains(cross.status().message(), "diff across stores"));
  auto invalid = Diff(Snapshot(), a);
  BOOST_TEST((invalid.status().code() == StatusCode::kInvalidArgument));
}

// The change log (state/internal/change_log.h): diffs between recent
// snapshots read what the writer logged; both ways must agree.
namespace {

using kubefold::state::internal::ChangeSegment;

struct BothWays {
  bool logged = false;
  std::vector<std::string> log, walk;  // "type cluster/ns/name", sorted
};

// Both ways of diffing `a` and `b`; where the log answers, its changes must
// be the walk's, records included (checked here).
BothWays DiffBothWays(const Snapshot& a, const Snapshot& b, const DiffFilter& filter = {}) {
  auto collect = [](std::vector<std::string>& out, std::vector<std::string>& full) {
    return [&out, &full](const Change& c) {
      const Record* r = c.after != nullptr ? c.after : c.before;
      out.push_back(std::string(ChangeTypeName(c.type)) + " " + std::string(c.cluster) + "/" + std::string(c.ns) +
                    "/" + std::string(r->name()));
      std::ostringstream with_records;
      with_records << out.back() << " " << c.before << "->" << c.after;
      full.push_back(with_records.str());
      return true;
    };
  };
  BothWays w;
  std::vector<std::string> log_full, walk_full;
  const auto* da = SnapshotAccess::Data(a);
  const auto* db = SnapshotAccess::Data(b);
  w.logged = internal::VisitDiffByLog(da, db, filter, collect(w.log, log_full));
  internal::VisitDiffByWalk(da, db, filter, collect(w.walk, walk_full));
  for (auto* v : {&w.log, &w.walk, &log_full, &walk_full}) std::sort(v->begin(), v->end());
  if (w.logged) BOOST_TEST(log_full == walk_full, "the change log's records differ from the walk's");
  return w;
}

ApplyResult Delete(Store& store, const std::string& cluster, const std::string& ns, const std::string& name) {
  Batch b;
  const WorkloadObject o = Deployment(name, "{}");
  BOOST_TEST_REQUIRE(b.Delete(cluster, ns, o.key).ok());
  return MustApply(store, std::move(b));
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_diff_of_recent_snapshots_reads_the_change_log_and_folds_each_workloads_entries) {
  Store store;
  Upsert(store, "eu", "shop", "keep", R"({"v":1})");
  Upsert(store, "eu", "shop", "flip", R"({"v":1})");
  Upsert(store, "eu", "shop", "gone", R"({"v":1})");
  Upsert(store, "eu", "shop", "again", R"({"v":1})");
  Upsert(store, "eu", "shop", "back", R"({"v":1})");
  Upsert(store, "us", "blog", "other", R"({"v":1})");
  const Snapshot from = store.Current();
  Upsert(store, "eu", "shop", "flip", R"({"v":2})");   // modified, then modified back: no change
  Upsert(store, "eu", "shop", "flip", R"({"v":1})");
  Delete(store, "eu", "shop", "gone");                 // removed
  Delete(store, "eu", "shop", "again");                // removed and added again, new content: modified
  Upsert(store, "eu", "shop", "again", R"({"v":3})");
  Delete(store, "eu", "shop", "back");                 // removed and added again, same content: no change
  Upsert(store, "eu", "shop", "back", R"({"v":1})");
  Upsert(store, "eu", "shop", "brief", R"({"v":1})");  // added and removed: no change
  Delete(store, "eu", "shop", "brief");
  Upsert(store, "us", "blog", "new", R"({"v":1})");    // added
  Upsert(store, "us", "blog", "other", R"({"v":2})");  // modified
  const Snapshot to = store.Current();

  const std::vector<std::string> want = {"added us/blog/new", "modified eu/shop/again", "modified us/blog/other",
                                         "removed eu/shop/gone"};
  BothWays w = DiffBothWays(from, to);
  BOOST_TEST(w.logged);
  BOOST_TEST(w.log == want, boost::test_tools::per_element());
  BOOST_TEST(w.walk == want, boost::test_tools::per_element());
  // Backwards: the same changes, turned around.
  const std::vector<std::string> back = {"added eu/shop/gone", "modified eu/shop/again", "modified us/blog/other",
                                         "removed us/blog/new"};
  w = DiffBothWays(to, from);
  BOOST_TEST(w.logged);
  BOOST_TEST(w.log == back, boost::test_tools::per_element());
  BOOST_TEST(w.walk == back, boost::test_tools::per_element());
  // Filters.
  DiffFilter blog;
  blog.ns = "blog";
  w = DiffBothWays(from, to, blog);
  BOOST_TEST(w.logged);
  BOOST_TEST(w.log == std::vector<std::string>({"added us/blog/new", "modified us/blog/other"}),
             boost::test_tools::per_element());
  DiffFilter eu;
  eu.cluster = "eu";
  w = DiffBothWays(from, to, eu);
  BOOST_TEST(w.log == std::vector<std::string>({"modified eu/shop/again", "removed eu/shop/gone"}),
             boost::test_tools::per_element());
  // Records as the snapshots hold them; clusters in name order.
  auto d = Diff(from, to);
  BOOST_REQUIRE(d.ok());
  std::string last;
  for (const Change& c : d->changes()) {
    const Record* r = c.after != nullptr ? c.after : c.before;
    BOOST_TEST(c.before == from.Get(c.cluster, c.ns, r->key()));
    BOOST_TEST(c.after == to.Get(c.cluster, c.ns, r->key()));
    BOOST_TEST(std::string(c.cluster) >= last);
    last = std::string(c.cluster);
  }
}

BOOST_AUTO_TEST_CASE(the_change_log_starts_again_when_a_segment_is_full_or_a_cluster_is_removed) {
  Store store(KeepLast(2));  // only what the test holds keeps old segments
  Upsert(store, "eu", "shop", "w", R"({"v":0})");
  Upsert(store, "us", "shop", "w", R"({"v":0})");
  const Snapshot start = store.Current();
  // Each new cluster name made its snapshot a base; a segment is allocated
  // when a change follows one.
  BOOST_TEST(store.Stats().change_log_bytes == 0u);
  std::vector<Snapshot> held;
  for (uint32_t i = 1; i <= ChangeSegment::kMaxBatches + 10; ++i) {
    Upsert(store, "eu", "shop", "w", "{\"v\":" + std::to_string(i) + "}");
    if (i == 1) BOOST_TEST(store.Stats().change_log_bytes == ChangeSegment::AllocationBytes());
    if (i == 5 || i == ChangeSegment::kMaxBatches + 5) held.push_back(store.Current());
  }
  const Snapshot full = store.Current();
  // Two segments alive: the first (held by `start` and held[0]) and the next.
  BOOST_TEST(store.Stats().change_log_bytes == 2 * ChangeSegment::AllocationBytes());
  BothWays within = DiffBothWays(start, held[0]);
  BOOST_TEST(within.logged);
  BOOST_TEST(within.log == std::vector<std::string>({"modified eu/shop/w"}), boost::test_tools::per_element());
  // The second segment continues the first (its base is the first's last
  // snapshot): a diff may span both.
  BothWays across = DiffBothWays(held[0], full);
  BOOST_TEST(across.logged);
  BOOST_TEST(across.log == std::vector<std::string>({"modified eu/shop/w"}), boost::test_tools::per_element());
  BOOST_TEST(DiffBothWays(full, held[0]).logged);
  BOOST_TEST(DiffBothWays(held[1], full).logged);
  // `start` is the first segment's base, which ends in none: out of reach
  // from the second.
  BothWays from_start = DiffBothWays(start, full);
  BOOST_TEST(!from_start.logged);
  BOOST_TEST(from_start.log.empty());
  BOOST_TEST(from_start.walk == std::vector<std::string>({"modified eu/shop/w"}), boost::test_tools::per_element());

  // A removed cluster's records are not logged one by one: the next segment
  // starts from the snapshot that removed it.
  Batch rm;
  BOOST_REQUIRE(rm.RemoveCluster("us").ok());
  MustApply(store, std::move(rm));
  const Snapshot removed = store.Current();
  Upsert(store, "eu", "shop", "w", R"({"v":"after"})");
  BothWays over = DiffBothWays(full, store.Current());
  BOOST_TEST(!over.logged);
  BOOST_TEST(over.walk == std::vector<std::string>({"modified eu/shop/w", "removed us/shop/w"}),
             boost::test_tools::per_element());
  BothWays from_base = DiffBothWays(removed, store.Current());
  BOOST_TEST(from_base.logged);
  BOOST_TEST(from_base.log == std::vector<std::string>({"modified eu/shop/w"}), boost::test_tools::per_element());

  // A segment goes with the last snapshot that ends in it: held[0] was the
  // last of the first (`start` is its base, which ends in none).
  BOOST_TEST(store.Stats().change_log_bytes == 3 * ChangeSegment::AllocationBytes());
  held.erase(held.begin());
  BOOST_TEST(store.Stats().change_log_bytes == 2 * ChangeSegment::AllocationBytes());
}

BOOST_AUTO_TEST_CASE(a_batch_that_overflows_a_segment_moves_to_the_next_and_diffs_span_both) {
  Store store(KeepLast(64));
  Upsert(store, "eu", "a", "seed", "{}");
  Upsert(store, "eu", "a", "seed", "{\"v\":1}");  // the first segment opens
  auto batch = [&](int round, int count) {
    Batch b;
    for (int i = 0; i < count; ++i) {
      const std::string ns = "ns-" + std::to_string(i % 7);
      BOOST_REQUIRE(b.Upsert("eu", ns, Deployment("w" + std::to_string(i), "{\"r\":" + std::to_string(round) + "}")).ok());
    }
    MustApply(store, std::move(b));
    return store.Current();
  };
  std::vector<Snapshot> s;
  for (int round = 0; round < 6; ++round) s.push_back(batch(round, 1000));  // 4,096 entries run out in round 4
  // Every pair of these: the log answers pairs at most one segment boundary
  // apart, and always agrees with the walk.
  size_t logged = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    for (size_t j = 0; j < s.size(); ++j) {
      if (i == j) continue;
      BothWays w = DiffBothWays(s[i], s[j]);
      BOOST_TEST(w.walk.size() == 1000u);
      if (w.logged) {
        ++logged;
        BOOST_TEST(w.log == w.walk, "pair " << i << "," << j);
      }
    }
  }
  BOOST_TEST(logged == s.size() * (s.size() - 1));  // two segments cover them all
  BOOST_TEST(store.Stats().change_log_bytes == 2 * ChangeSegment::AllocationBytes());
}
