// Member clusters folded into the store: reflectors on two emulated
// clusters (HTTPS, faults injected) feed one Folder; the snapshot must equal
// what the emulator serves, cluster by cluster.
#define BOOST_TEST_MODULE folder_test
#include <boost/test/unit_test.hpp>

#include <chrono>
#include <functional>
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "controllers/folder.h"
#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "state/diff.h"
#include "state/store.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"

using namespace kubefold::controllers;
using namespace kubefold::kube;
using namespace std::chrono_literals;
using kubefold::testing::Eventually;
namespace emu = kubefold::emulator;
namespace state = kubefold::state;

namespace {

const ResourceType kDeployments{"apps", "v1", "Deployment"};


// (cluster, namespace, name) -> desired replicas
using View = std::map<std::tuple<std::string, std::string, std::string>, int>;

void Write(emu::Cluster& c, const std::string& ns, const std::string& name, int replicas) {
  c.store().Mutate("apps/deployments", ns, name, [&](const emu::ObjectPtr&) {
    return emu::Mutation::Put(emu::Json{
        {"kind", "Deployment"}, {"apiVersion", "apps/v1"},
        {"metadata", {{"name", name}, {"namespace", ns}, {"uid", name + "-uid"}}},
        {"spec", {{"replicas", replicas}, {"selector", {{"matchLabels", {{"app", name}}}}}}}});
  });
}

void Remove(emu::Cluster& c, const std::string& ns, const std::string& name) {
  c.store().Mutate("apps/deployments", ns, name, [](const emu::ObjectPtr& cur) {
    return cur ? emu::Mutation::Delete() : emu::Mutation::None();
  });
}

View ServerView(emu::Emulator& e, const std::vector<std::string>& clusters) {
  View v;
  for (const auto& name : clusters) {
    const auto list = e.cluster(name).store().List("apps/deployments", std::nullopt);
    for (const auto& o : list->objects) {
      v[{name, o->ns, o->name}] = o->json["spec"]["replicas"].get<int>();
    }
  }
  return v;
}

View StoreView(const state::Snapshot& s) {
  View v;
  s.ForEachWorkload([&](const state::WorkloadRef& w) {
    v[{std::string(w.cluster), std::string(w.ns), std::string(w.record->name())}] = w.record->summary().desired_replicas;
    return true;
  });
  return v;
}

struct Member {
  std::unique_ptr<RestClient> client;
  std::unique_ptr<Reflector> reflector;
  std::thread thread;
  ~Member() {
    if (reflector) reflector->Stop();
    if (thread.joinable()) thread.join();
  }
};

std::unique_ptr<Member> Watch(emu::Emulator& e, const std::string& name, Folder& folder) {
  auto m = std::make_unique<Member>();
  m->client = kubefold::testing::ClientFor(kubefold::testing::EmulatorConfig(e, name));
  ReflectorOptions options;
  options.type = kDeployments;
  options.resource = "deployments";
  options.page_size = 7;
  options.backoff.initial = 20ms;
  options.backoff.cap = 200ms;
  ReflectorHooks hooks;
  hooks.sink = folder.Sink(name, kDeployments);
  RestClient* client = m->client.get();
  hooks.authorize = [client](HttpRequest& r) { return client->Authorize(r); };
  hooks.throttle = [client] { client->Throttle(); };
  hooks.log = [](std::string_view) {};
  m->reflector = std::make_unique<Reflector>(client->transport(), options, hooks);
  Reflector* r = m->reflector.get();
  m->thread = std::thread([r] { r->Run(); });
  return m;
}

}  // namespace

BOOST_AUTO_TEST_CASE(two_clusters_fold_into_snapshots_equal_to_what_they_serve) {
  emu::EmulatorOptions eo;
  eo.clusters = {"east", "west"};
  emu::Emulator e(eo);
  for (int i = 0; i < 20; ++i) {
    Write(e.cluster("east"), "shop", "web-" + std::to_string(i), i % 4);
    Write(e.cluster("west"), i % 2 ? "shop" : "default", "api-" + std::to_string(i), 2);
  }
  state::Store store;
  Folder folder(store);
  folder.AddCluster("east");
  folder.AddCluster("west");
  auto east = Watch(e, "east", folder);
  auto west = Watch(e, "west", folder);
  const std::vector<std::string> names{"east", "west"};
  auto converged = [&] {
    folder.Flush();
    return StoreView(store.Current()) == ServerView(e, names);
  };
  BOOST_REQUIRE(Eventually(converged));
  const auto first = store.Current();
  BOOST_CHECK_EQUAL(StoreView(first).size(), 40u);

  // Live changes, then a 410 on east: the relist hands the store a replace
  // of which only the differences are written.
  Write(e.cluster("east"), "shop", "web-1", 9);
  Remove(e.cluster("west"), "shop", "api-3");
  BOOST_REQUIRE(Eventually(converged));
  const auto before_relist = store.Current();
  // Cut off (connections reset at once, so no watch can deliver the changes
  // made meanwhile), changes, history compacted: on healing, the resume
  // point is gone and only the relist the 410 forces can bring them.
  e.server("east").Partition();
  Write(e.cluster("east"), "shop", "web-2", 7);
  Remove(e.cluster("east"), "shop", "web-3");
  e.cluster("east").Compact();
  e.server("east").Heal();
  BOOST_REQUIRE(Eventually(converged));
  BOOST_CHECK_GE(east->reflector->stats().expired, 1u);

  // The diff over the relist is exactly the two changes, not 20 rewrites.
  std::vector<std::string> changed;
  auto diffed = state::VisitDiff(before_relist, store.Current(), {}, [&](const state::Change& c) {
    changed.push_back(std::string(c.cluster) + "/" + std::string(c.ns) + "/" +
                      std::string(c.after ? c.after->name() : c.before->name()));
    return true;
  });
  BOOST_REQUIRE(diffed.ok());
  std::sort(changed.begin(), changed.end());
  BOOST_CHECK_EQUAL(changed.size(), 2u);
  BOOST_CHECK_EQUAL(changed.at(0), "east/shop/web-2");
  BOOST_CHECK_EQUAL(changed.at(1), "east/shop/web-3");
  // Each cluster's component only moved with its own changes.
  const auto& v1 = before_relist.vector();
  const auto& v2 = store.Current().vector();
  BOOST_CHECK_EQUAL(v2.Get("west"), v1.Get("west"));
  BOOST_CHECK_EQUAL(v2.Get("east"), v1.Get("east") + 2);

  // Removing a cluster removes its subtree: a recorded change.
  east.reset();
  folder.RemoveCluster("east");
  folder.Flush();
  std::size_t east_left = 0;
  store.Current().ForEachWorkload("east", [&](const state::WorkloadRef&) {
    ++east_left;
    return true;
  });
  BOOST_CHECK_EQUAL(east_left, 0u);
  BOOST_CHECK_EQUAL(folder.stats().rejected, 0u);
  BOOST_CHECK_GE(folder.stats().synced.at("east"), 2u);
}

// A relist decodes every object before the store copies what it keeps: once
// relists of release_after_relisted objects in all have been applied, the
// allocator's free pages go back to the kernel, and not before.
BOOST_AUTO_TEST_CASE(large_relists_release_the_freed_memory_after_they_are_applied) {
  state::Store store;
  FolderOptions options;
  options.release_after_relisted = 5;
  Folder folder(store, options);
  folder.AddCluster("east");
  auto sink = folder.Sink("east", kDeployments);
  auto relist = [&](int n) {
    ReflectorEvent e;
    e.type = ReflectorEventType::kReplace;
    for (int i = 0; i < n; ++i) {
      DecodedObject o;
      o.ns = "shop";
      o.workload.key = {"apps", "Deployment", "web-" + std::to_string(i)};
      o.workload.object_json = R"({"kind":"Deployment","metadata":{"name":"web-)" + std::to_string(i) + R"("}})";
      e.objects.push_back(std::move(o));
    }
    sink(std::move(e));
    folder.Flush();
  };
  relist(3);
  BOOST_CHECK_EQUAL(folder.stats().releases, 0u);
  relist(2);  // 5 relisted in all
  BOOST_CHECK_EQUAL(folder.stats().releases, 1u);
  relist(4);
  BOOST_CHECK_EQUAL(folder.stats().releases, 1u);
  relist(4);
  BOOST_CHECK_EQUAL(folder.stats().releases, 2u);
  size_t count = 0;
  store.Current().ForEachWorkload("east", [&](const state::WorkloadRef&) {
    ++count;
    return true;
  });
  BOOST_CHECK_EQUAL(count, 4u);
  BOOST_CHECK_EQUAL(folder.stats().rejected, 0u);

  FolderOptions off;
  off.release_after_relisted = 0;
  Folder never(store, off);
  auto never_sink = never.Sink("east", kDeployments);
  ReflectorEvent e;
  e.type = ReflectorEventType::kReplace;
  never_sink(std::move(e));
  never.Flush();
  BOOST_CHECK_EQUAL(never.stats().releases, 0u);
}

BOOST_AUTO_TEST_CASE(watched_objects_are_kept_compressed_and_an_unchanged_relist_changes_nothing) {
  // A Deployment with enough text for compression to pay.
  auto deployment = [](int i, const std::string& image) {
    const std::string name = "web-" + std::to_string(i);
    return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
           R"(","namespace":"shop","labels":{"app":")" + name + R"("}},"spec":{"replicas":2,"template":{"spec":)"
           R"({"containers":[{"name":"app","image":")" + image +
           R"(","imagePullPolicy":"IfNotPresent","terminationMessagePath":"/dev/termination-log",)"
           R"("terminationMessagePolicy":"File"}],"restartPolicy":"Always","dnsPolicy":"ClusterFirst",)"
           R"("schedulerName":"default-scheduler"}}}})";
  };
  auto relist = [&](std::function<void(ReflectorEvent&&)>& sink, Folder& folder, const std::string& image) {
    ReflectorEvent e;
    e.type = ReflectorEventType::kReplace;
    for (int i = 0; i < 20; ++i) {
      DecodedObject o;
      o.ns = "shop";
      o.workload.key = {"apps", "Deployment", "web-" + std::to_string(i)};
      o.workload.object_json = deployment(i, image);
      e.objects.push_back(std::move(o));
    }
    sink(std::move(e));
    folder.Flush();
  };
  auto kept = [&](state::Store& store, const std::string& cluster, bool compressed, const std::string& image) {
    size_t n = 0;
    store.Current().ForEachWorkload(cluster, [&](const state::WorkloadRef& w) {
      BOOST_TEST(w.record->compressed() == compressed);
      const int i = std::stoi(std::string(w.record->name().substr(4)));
      BOOST_TEST(w.record->object_json() == deployment(i, image));
      ++n;
      return true;
    });
    return n;
  };

  state::Store store;
  Folder folder(store);  // compress_objects by default
  folder.AddCluster("folder-test-east");
  auto sink = folder.Sink("folder-test-east", kDeployments);
  relist(sink, folder, "registry.example.com/web:1.0");
  BOOST_TEST(kept(store, "folder-test-east", true, "registry.example.com/web:1.0") == 20u);
  const uint64_t seq = store.Current().seq();
  relist(sink, folder, "registry.example.com/web:1.0");  // the same objects again
  BOOST_TEST(store.Current().seq() == seq);
  BOOST_TEST(folder.stats().noops == 20u);
  relist(sink, folder, "registry.example.com/web:1.1");
  BOOST_TEST(store.Current().seq() > seq);
  BOOST_TEST(kept(store, "folder-test-east", true, "registry.example.com/web:1.1") == 20u);

  state::Store other;
  FolderOptions plain;
  plain.compress_objects = false;
  Folder uncompressed(other, plain);
  uncompressed.AddCluster("folder-test-west");
  auto west = uncompressed.Sink("folder-test-west", kDeployments);
  relist(west, uncompressed, "registry.example.com/web:1.0");
  BOOST_TEST(kept(other, "folder-test-west", false, "registry.example.com/web:1.0") == 20u);
}
