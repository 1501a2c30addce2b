#include "operator/operator.h"

#include <charconv>
#include <chrono>
#include <cstdio>
#include <utility>

namespace kubefold {

bool BindAddress::local() const { return host == "127.0.0.1" || host == "::1" || host == "localhost"; }

Result<BindAddress> ParseBindAddress(const std::string& text, const std::string& flag) {
  BindAddress b;
  if (text.empty() || text == "0") return b;
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos) {
    return InvalidArgument(flag + ": \"" + text + "\" is not HOST:PORT, :PORT, or 0 (off)");
  }
  std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  int p = -1;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || end != port.data() + port.size() || p < 0 || p > 65535) {
    return InvalidArgument(flag + ": \"" + port + "\" is not a port number (0-65535)");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  b.host = host;
  b.port = p;
  return b;
}

Operator::Operator(std::unique_ptr<kube::RestClient> host, OperatorOptions options)
    : host_(std::move(host)), options_(std::move(options)) {}

Operator::~Operator() { Stop(); }

void Operator::Log(std::string_view m) const {
  if (options_.log) options_.log(m);
}

Status Operator::Start() {
  if (started_) return FailedPrecondition("the operator is already started");
  if (options_.identity.empty()) return InvalidArgument("identity: required (the pod name)");
  options_.leader.identity = options_.identity;
  if (options_.leader_elect) {
    if (Status s = controllers::ValidateLeaderElection(options_.leader); !s.ok()) return s;
  }
  started_ = true;
  if (!options_.telemetry) options_.telemetry = std::make_shared<Telemetry>(options_.serving.build, options_.leader.lease_name);
  Telemetry& tm = *options_.telemetry;

  if (Status st = OpenHistory(); !st.ok()) return st;
  controllers::FolderOptions fo;
  fo.compress_objects = options_.compress_objects;
  // A new snapshot matters to audits waiting for availability and to the
  // workload-unavailable trigger; bursts of snapshots are coalesced.
  fo.on_published = [this](uint64_t) {
    if (auto* f = poke_.load()) f->Poke(std::chrono::milliseconds(100));
  };
  folder_ = std::make_unique<controllers::Folder>(*store_, fo, options_.log);
  events_ = std::make_unique<controllers::EventRecorder>(*host_, options_.identity, options_.log);

  controllers::RegistryOptions ro = options_.registry;
  if (!ro.log) ro.log = options_.log;
  ro.metrics = tm.controllers();
  if (!ro.observe_transport) ro.observe_transport = [&tm](const std::string& server) { return tm.RestObserver(server); };
  ro.on_cluster_change = [this, user = ro.on_cluster_change](const std::string& cluster) {
    if (auto* f = poke_.load()) f->Poke();
    if (user) user(cluster);
  };
  registry_ = std::make_unique<controllers::ClusterRegistry>(*host_, *store_, *folder_, *events_, ro);
  controllers::FailoverOptions fo2 = options_.failover;
  if (!fo2.log) fo2.log = options_.log;
  fo2.metrics = tm.controllers();
  fo2.on_finished = [&tm, user = fo2.on_finished](const std::string& policy, const std::string& from,
                                                  const std::string& to, const char* result, double seconds) {
    tm.ObserveFailover(policy, from, to, result, seconds);
    if (user) user(policy, from, to, result, seconds);
  };
  if (journal_) {
    fo2.make_durable = [j = journal_.get()](uint64_t seq) { return j->WaitDurable(seq, std::chrono::seconds(5)); };
    fo2.restored = restored_vector_;
  }
  failover_ = std::make_unique<controllers::FailoverReconciler>(*host_, *store_, *registry_, *events_, fo2);

  tm.Watch(*store_, *registry_, *failover_);
  if (journal_) tm.WatchHistory(*journal_);

  registry_->Start();
  failover_->Start();
  poke_ = failover_.get();
  if (!restored_pins_.empty()) restored_pins_thread_ = std::thread([this] { ReleaseRestoredPins(); });
  if (Status st = StartServing(); !st.ok()) {
    Stop();
    return st;
  }

  if (!options_.leader_elect) {
    Log("leader election is off: this replica leads");
    SetLeading(true);
    return Status::Ok();
  }
  controllers::LeaderElectionHooks hooks;
  hooks.started_leading = [this] { SetLeading(true); };
  hooks.stopped_leading = [this] { SetLeading(false); };
  hooks.new_leader = [this](const std::string& id) { Log("leader is now " + id); };
  hooks.log = options_.log;
  elector_ = std::make_unique<controllers::LeaderElector>(*host_, options_.leader, hooks);
  elector_thread_ = std::thread([this] { elector_->Run(); });
  return Status::Ok();
}

Status Operator::OpenHistory() {
  auto make_store = [this](state::Journal* j) {
    state::StoreOptions so;
    so.history = options_.history;
    if (j) so.on_publish = [j](const state::PublishEvent& e) { j->OnPublish(e); };
    store_ = std::make_unique<state::Store>(so);
  };
  if (options_.history_file.empty()) {
    make_store(nullptr);
    return Status::Ok();
  }
  state::JournalOptions jo;
  jo.path = options_.history_file;
  jo.max_bytes = options_.history_max_bytes;
  jo.sync = options_.history_sync;
  jo.compress_restored = options_.compress_objects;
  jo.max_pending = std::max<size_t>(64, options_.history.keep_last);
  jo.log = options_.log;
  // A file that is not readable history is kept for inspection, and a new
  // history begins: the operator's work does not depend on its past.
  auto move_aside = [&](const std::string& why) {
    const std::string aside = jo.path + ".unreadable-" +
                              std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                                                 std::chrono::system_clock::now().time_since_epoch())
                                                 .count());
    Log("history: " + why + "; moved it to " + aside + " and starting a new history");
    if (std::rename(jo.path.c_str(), aside.c_str()) != 0) return false;
    std::remove((jo.path + "-wal").c_str());
    std::remove((jo.path + "-shm").c_str());
    return true;
  };
  auto j = state::Journal::Open(jo);
  if (!j.ok() && j.status().code() == StatusCode::kInvalidArgument && move_aside(j.status().message())) {
    j = state::Journal::Open(jo);
  }
  if (!j.ok()) return Status(j.status().code(), "--history-file: " + j.status().message());
  journal_ = std::move(*j);
  make_store(journal_.get());
  auto restored = journal_->Restore(*store_);
  if (!restored.ok()) {
    journal_.reset();
    store_.reset();
    if (!move_aside(restored.status().message())) {
      return Status(restored.status().code(), "--history-file: " + restored.status().message());
    }
    auto again = state::Journal::Open(jo);
    if (!again.ok()) return Status(again.status().code(), "--history-file: " + again.status().message());
    journal_ = std::move(*again);
    make_store(journal_.get());
    restored = journal_->Restore(*store_);
    if (!restored.ok()) return Status(restored.status().code(), "--history-file: " + restored.status().message());
  }
  if (restored->snapshots > 0) {
    const state::Snapshot cur = store_->Current();
    Log("history: restored " + std::to_string(restored->snapshots) + " snapshots (newest seq " +
        std::to_string(restored->newest_seq) + ", vector " + cur.vector().ToJson() + ", " +
        std::to_string(restored->pins.size()) + " pinned) from " + jo.path);
  } else {
    Log("history: new history in " + jo.path);
  }
  restored_pins_ = restored->pins;
  if (restored->snapshots > 0) restored_vector_ = store_->Current().vector();
  journal_->Start(*store_);
  return Status::Ok();
}

// The pins a restart restored are held until the audits that made them are
// in the cache and have pinned their snapshots again; then audits alone
// decide (an audit deleted meanwhile lets its snapshots go).
void Operator::ReleaseRestoredPins() {
  while (!stopped_ && !failover_->synced()) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  if (stopped_) return;
  (void)failover_->AdoptAuditPins();  // those whose events have not been handled yet
  size_t released = 0;
  for (const auto& [seq, pins] : restored_pins_) {
    for (uint32_t i = 0; i < pins; ++i) released += store_->Unpin(seq).ok() ? 1 : 0;
  }
  Log("history: released " + std::to_string(released) + " restored pins; audits pin " +
      std::to_string(failover_->PinnedBy().size()) + " snapshots");
}

bool Operator::Ready(std::string* why) const {
  std::string missing;
  if (!registry_ || !registry_->synced()) missing += "MemberCluster cache not synced; ";
  if (!failover_ || !failover_->synced()) missing += "FailoverPolicy/FailoverAudit caches not synced; ";
  if (stopped_) missing += "stopping; ";
  if (why) *why = missing;
  return missing.empty();
}

Status Operator::StartServing() {
  const ServingOptions& so = options_.serving;
  const std::string operator_ns = options_.leader.lease_namespace;
  auto server_options = [&](const BindAddress& b, bool tls) {
    HttpServerOptions o;
    o.bind = b.host;
    o.port = b.port;
    if (tls) {
      o.tls_cert_file = so.tls_cert_file;
      o.tls_key_file = so.tls_key_file;
    }
    o.log = options_.log;
    return o;
  };
  if ((!so.api.off() && !so.api.local()) || (!so.metrics.off() && !so.metrics.local())) {
    auth_ = std::make_unique<RequestAuthenticator>(*host_);
  }
  auto describe = [&](const char* what, const BindAddress& b, const HttpServer& srv, std::string auth) {
    Log(std::string("serving ") + what + " on " + (b.host.find(':') != std::string::npos ? "[" + b.host + "]" : b.host) +
        ":" + std::to_string(srv.port()) + (srv.tls() ? " (TLS" : " (plain HTTP") + ", " + auth + ")");
  };
  if (!so.probes.off()) {
    auto srv = HttpServer::Start(server_options(so.probes, false), [this](const IncomingRequest& r, ResponseWriter& w) {
      if (r.path == "/healthz" || r.path == "/livez") return w.Send(200, "text/plain; charset=utf-8", "ok\n");
      if (r.path == "/readyz") {
        std::string why;
        if (Ready(&why)) return w.Send(200, "text/plain; charset=utf-8", "ok\n");
        return w.Send(503, "text/plain; charset=utf-8", "not ready: " + why + "\n");
      }
      w.Send(404, "text/plain; charset=utf-8", "404 page not found\n");
    });
    if (!srv.ok()) return InvalidArgument("--health-probe-bind-address: " + srv.status().message());
    probe_server_ = std::move(*srv);
    describe("health probes", so.probes, *probe_server_, "no authentication");
  }
  if (!so.metrics.off()) {
    const bool guard = !so.metrics.local();
    auto srv = HttpServer::Start(server_options(so.metrics, true), [this, guard](const IncomingRequest& r,
                                                                             ResponseWriter& w) {
      if (r.path != "/metrics") return w.Send(404, "text/plain; charset=utf-8", "404 page not found\n");
      if (guard) {
        std::string message;
        AccessCheck access;
        access.path = "/metrics";
        if (int code = auth_->Check(r, access, message); code != 0) {
          return w.Send(code, "text/plain; charset=utf-8", message + "\n");
        }
      }
      w.Begin(200, metrics::kContentType);
      Status st = options_.telemetry->registry().WriteTo([&w](std::string_view chunk) { w.Write(chunk); });
      if (!st.ok()) Log("metrics: " + st.message());
    });
    if (!srv.ok()) return InvalidArgument("--metrics-bind-address: " + srv.status().message());
    metrics_server_ = std::move(*srv);
    describe("metrics", so.metrics, *metrics_server_,
             guard ? "callers authenticated by TokenReview and authorized by SubjectAccessReview" : "localhost, no authentication");
  }
  if (!so.api.off()) {
    QueryApiOptions qo;
    qo.build = so.build;
    qo.observe = [this](const std::string& route, int code, double seconds) {
      options_.telemetry->ObserveApi(route, code, seconds);
    };
    const std::string proxy_name = std::string(so.tls_cert_file.empty() ? "http" : "https") + ":" + so.service_name +
                                   ":" + so.service_port_name;
    if (!so.api.local()) {
      qo.gate = [this, operator_ns, service = proxy_name](const IncomingRequest& r, std::string& message) {
        AccessCheck access;
        access.ns = operator_ns;
        access.resource = "services";
        access.subresource = "proxy";
        access.name = service;
        return auth_->Check(r, access, message);
      };
    }
    if (journal_) qo.history = [j = journal_.get()] { return j->Stats(); };
    api_ = std::make_unique<QueryApi>(*store_, *registry_, *failover_, std::move(qo));
    auto srv = HttpServer::Start(server_options(so.api, true), [this](const IncomingRequest& r, ResponseWriter& w) {
      const auto start = std::chrono::steady_clock::now();
      api_->Handle(r, w);
      if (options_.serving.log_requests) {
        // The path only: queries name snapshots and filters, never credentials,
        // but they are the caller's to log.
        char ms[32];
        std::snprintf(ms, sizeof ms, "%.1f",
                      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
        Log("api " + r.method + " " + r.raw_path + " " + std::to_string(w.status()) + " " + ms + " ms from " + r.peer);
      }
    });
    if (!srv.ok()) return InvalidArgument("--api-bind-address: " + srv.status().message());
    api_server_ = std::move(*srv);
    describe("the query API", so.api, *api_server_,
             so.api.local() ? "localhost, no authentication"
                            : "callers authenticated by TokenReview and authorized by SubjectAccessReview (get services/proxy " +
                                  proxy_name + " in " + operator_ns + ")");
  }
  return Status::Ok();
}

void Operator::SetLeading(bool leading) {
  leading_ = leading;
  if (options_.telemetry) options_.telemetry->SetLeader(leading);
  Log(leading ? "leading: reconciling and writing" : "not leading: watching only");
  registry_->set_leader(leading);
  failover_->set_leader(leading);
}

void Operator::Stop() {
  if (!started_ || stopped_) return;
  stopped_ = true;
  // Endpoints first: nothing may read the loops while they stop.
  if (api_server_) api_server_->Stop();
  if (metrics_server_) metrics_server_->Stop();
  if (probe_server_) probe_server_->Stop();
  // Stop writing first (a pass in progress finishes), then give the Lease
  // back, then stop watching.
  if (failover_) failover_->set_leader(false);
  if (registry_) registry_->set_leader(false);
  poke_ = nullptr;
  if (failover_) failover_->Stop();
  if (elector_) {
    elector_->Stop();
    if (elector_thread_.joinable()) elector_thread_.join();
  }
  if (registry_) registry_->Stop();
  if (folder_) folder_->Stop();
  if (restored_pins_thread_.joinable()) restored_pins_thread_.join();
  // The writer has stopped: commit what it published.
  if (journal_) journal_->Stop();
}

}  // namespace kubefold
