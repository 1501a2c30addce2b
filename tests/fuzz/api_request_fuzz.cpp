// kubefold's query API on outside input: a request target (path and query,
// as a client sends it) parsed by the HTTP server's ParseRequestTarget and
// served by QueryApi over a small store. Every answer must be a complete
// JSON document with a status the API documents; nothing may crash.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "controllers/events.h"
#include "controllers/failover.h"
#include "controllers/folder.h"
#include "controllers/kube/http_transport.h"
#include "controllers/registry.h"
#include "operator/http_server.h"
#include "operator/query_api.h"
#include "state/store.h"

namespace {

using namespace kubefold;

class Capture : public ResponseWriter {
 public:
  void Send(int status, std::string_view content_type, std::string_view body,
            const std::vector<std::pair<std::string, std::string>>&) override {
    code = status;
    type = content_type;
    this->body = body;
    started_ = true;
  }
  void Begin(int status, std::string_view content_type, const std::vector<std::pair<std::string, std::string>>&) override {
    code = status;
    type = content_type;
    started_ = true;
  }
  bool Write(std::string_view data) override {
    body += data;
    return true;
  }
  bool started() const override { return started_; }
  int status() const override { return code; }
  int code = 0;
  std::string type, body;

 private:
  bool started_ = false;
};

struct World {
  std::unique_ptr<state::Store> store = std::make_unique<state::Store>();
  std::unique_ptr<kube::RestClient> host;
  std::unique_ptr<controllers::Folder> folder;
  std::unique_ptr<controllers::EventRecorder> events;
  std::unique_ptr<controllers::ClusterRegistry> registry;
  std::unique_ptr<controllers::FailoverReconciler> failover;
  std::unique_ptr<QueryApi> api;
  World() {
    for (int round = 0; round < 3; ++round) {
      state::Batch b;
      for (const char* c : {"east", "west"}) {
        for (int i = 0; i < 4; ++i) {
          state::WorkloadObject o;
          o.key = {"apps", "Deployment", "web-" + std::to_string(i)};
          o.object_json = R"({"metadata":{"name":"web-)" + std::to_string(i) + R"(","labels":{"a/b":"c~d"}},"spec":{"replicas":)" +
                          std::to_string(round + i) + R"(,"list":[1,2,)" + std::to_string(round) + "]}}";
          o.summary.desired_replicas = round + i;
          (void)b.Upsert(c, i % 2 ? "shop" : "kubefold.io", o);
        }
      }
      (void)store->Apply(std::move(b));
    }
    kube::RestConfig nowhere;
    nowhere.server = "http://127.0.0.1:9";
    auto t = kube::NewHttpTransport(nowhere, {.warn = [](std::string_view) {}});
    host = std::make_unique<kube::RestClient>(std::move(*t), nullptr);
    folder = std::make_unique<controllers::Folder>(*store);
    events = std::make_unique<controllers::EventRecorder>(*host, "fuzz");
    registry = std::make_unique<controllers::ClusterRegistry>(*host, *store, *folder, *events,
                                                              controllers::RegistryOptions{});
    failover = std::make_unique<controllers::FailoverReconciler>(*host, *store, *registry, *events,
                                                                 controllers::FailoverOptions{});
    api = std::make_unique<QueryApi>(*store, *registry, *failover, QueryApiOptions{});
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* world = new World();
  IncomingRequest req;
  req.method = "GET";
  std::string_view target(reinterpret_cast<const char*>(data), size);
  if (!target.empty() && target.front() == 'H') {  // "H..." exercises HEAD
    req.method = "HEAD";
    target.remove_prefix(1);
  }
  if (!ParseRequestTarget(target, req).ok()) return 0;
  Capture w;
  world->api->Handle(req, w);
  static const std::set<int> kCodes = {200, 400, 404, 405, 410, 503};
  if (!kCodes.count(w.code)) std::abort();
  if (req.method == "GET" && w.type == "application/json" && nlohmann::json::parse(w.body, nullptr, false).is_discarded()) {
    std::abort();  // an answer that is not one complete JSON document
  }
  return 0;
}
