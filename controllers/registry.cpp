#include "controllers/registry.h"

#include <algorithm>
#include <functional>
#include <utility>

#include <nlohmann/json.hpp>

#include "controllers/internal/conditions.h"
#include "controllers/internal/spec_fields.h"
#include "controllers/kube/http_transport.h"
#include "controllers/kube/internal/base64.h"
#include "controllers/kube/internal/rfc3339.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/token_source.h"
#include "controllers/workload_kinds.h"

namespace kubefold::controllers {

using internal::Json;

namespace {

// Failed writes during the reconcile running on this worker thread.
thread_local int t_reconcile_errors = 0;

constexpr char kGroup[] = "kubefold.io";
constexpr char kVersion[] = "v1alpha1";

// A kubeconfig from a Secret may not make the operator read its own files
// or run programs. Returns the offending field, or "".
std::string ForbiddenReference(const kube::Kubeconfig& kc) {
  for (const auto& [name, c] : kc.clusters) {
    if (!c.certificate_authority.empty()) return "clusters[" + name + "].certificate-authority (a file)";
  }
  for (const auto& [name, u] : kc.users) {
    if (!u.client_certificate.empty()) return "users[" + name + "].client-certificate (a file)";
    if (!u.client_key.empty()) return "users[" + name + "].client-key (a file)";
    if (!u.token_file.empty()) return "users[" + name + "].tokenFile (a file)";
    if (u.exec) return "users[" + name + "].exec (a credential plugin)";
  }
  return {};
}

}  // namespace

// What a MemberCluster asks for, decoded from its JSON.
struct ClusterRegistry::Spec {
  std::string secret_ns, secret_name, secret_key = "kubeconfig", context;
  std::vector<std::string> kinds;
  std::vector<std::string> namespaces;
  std::string label_selector;
  HealthOptions health;
  int64_t generation = 0;
  std::string uid;
  std::string watch_and_health;  // canonical JSON of both, for the fingerprint
};

struct ClusterRegistry::Runtime {
  std::string name;
  size_t fingerprint = 0;
  std::shared_ptr<kube::RestClient> client;
  std::vector<std::unique_ptr<kube::Reflector>> reflectors;
  std::vector<std::string> reflector_kinds;  // parallel to reflectors
  std::vector<std::thread> threads;
  std::unique_ptr<HealthProber> prober;
  std::atomic<size_t> synced_reflectors{0};
  std::vector<std::unique_ptr<std::atomic<bool>>> reflector_synced;
  // The kubeconfig sets insecure-skip-tls-verify: reported in status.
  bool insecure_skip_tls_verify = false;
  std::string server;
  // The health record written: its status and since when.
  std::mutex health_mu;
  std::string health_status;                     // Guarded by health_mu
  std::chrono::system_clock::time_point since;  // Guarded by health_mu
};

ClusterRegistry::ClusterRegistry(kube::RestClient& host, state::Store& store, Folder& folder, EventRecorder& events,
                                 RegistryOptions options)
    : host_(host),
      store_(store),
      folder_(folder),
      events_(events),
      options_(std::move(options)),
      queue_(WorkQueueOptions{.base_delay = std::chrono::milliseconds(50),
                              .max_delay = std::chrono::seconds(60),
                              .metrics = options_.metrics ? options_.metrics->Queue("membercluster") : WorkQueueMetrics{}}),
      reconcile_metrics_(options_.metrics ? options_.metrics->Reconcile("membercluster") : ReconcileMetrics{}) {}

ClusterRegistry::~ClusterRegistry() { Stop(); }

void ClusterRegistry::Log(std::string_view message) const {
  if (options_.log) options_.log(message);
}

void ClusterRegistry::Start() {
  kube::ReflectorOptions o;
  o.type = {kGroup, kVersion, "MemberCluster"};
  o.resource = "memberclusters";
  members_ = std::make_unique<Informer>(
      host_, o, [this](const std::string& key) { queue_.Add(key); },
      [this](std::string_view m) { Log("membercluster informer: " + std::string(m)); });
  members_->Start();
  worker_ = std::thread([this] { Worker(); });
}

void ClusterRegistry::Stop() {
  if (stopped_.exchange(true)) return;
  queue_.ShutDown();
  if (worker_.joinable()) worker_.join();
  if (members_) members_->Stop();
  std::map<std::string, std::unique_ptr<Runtime>> running;
  std::map<std::string, std::unique_ptr<Informer>> secrets;
  {
    std::lock_guard lock(mu_);
    running.swap(running_);
    secrets.swap(secrets_);
  }
  for (auto& [name, rt] : running) StopRuntime(std::move(rt));
  for (auto& [ns, inf] : secrets) inf->Stop();
}

void ClusterRegistry::set_leader(bool leading) {
  const bool was = leader_.exchange(leading);
  if (leading && !was) {
    // A new leader writes every status it owns afresh.
    {
      std::lock_guard lock(mu_);
      last_status_.clear();
      announced_.clear();
    }
    for (const auto& name : Names()) queue_.Add(name);
  }
}

bool ClusterRegistry::synced() const { return members_ && members_->synced(); }

std::vector<std::string> ClusterRegistry::Names() const {
  std::vector<std::string> out;
  if (!members_) return out;
  for (const auto& o : members_->List()) out.push_back(o->workload.key.name);
  return out;
}

bool ClusterRegistry::Exists(const std::string& name) const { return members_ && members_->Get(name) != nullptr; }

std::shared_ptr<kube::RestClient> ClusterRegistry::Client(const std::string& name) const {
  std::lock_guard lock(mu_);
  auto it = running_.find(name);
  return it == running_.end() ? nullptr : it->second->client;
}

std::vector<MemberInfo> ClusterRegistry::Members() const {
  std::vector<MemberInfo> out;
  for (const auto& name : Names()) {
    MemberInfo m;
    m.name = name;
    std::lock_guard lock(mu_);
    if (auto it = running_.find(name); it != running_.end()) {
      Runtime& rt = *it->second;
      m.running = true;
      m.ready = rt.prober->Current();
      m.synced = rt.synced_reflectors.load() == rt.reflectors.size();
      for (size_t i = 0; i < rt.reflectors.size(); ++i) {
        const kube::ReflectorStats st = rt.reflectors[i]->stats();
        m.reflector_errors += st.errors;
        kube::ReflectorStats& sum = m.watch_stats[rt.reflector_kinds[i]];
        sum.lists += st.lists;
        sum.watches += st.watches;
        sum.events += st.events;
        sum.bookmarks += st.bookmarks;
        sum.expired += st.expired;
        sum.errors += st.errors;
      }
    }
    if (auto it = problems_.find(name); it != problems_.end()) {
      m.problem_reason = it->second.first;
      m.problem_message = it->second.second;
    }
    out.push_back(std::move(m));
  }
  return out;
}

void ClusterRegistry::Worker() {
  while (auto key = queue_.Get()) {
    t_reconcile_errors = 0;
    const auto start = std::chrono::steady_clock::now();
    // A reconcile that throws (a bug: parsing never does) is logged and
    // retried with backoff; it does not take the operator down.
    try {
      Reconcile(*key);
      queue_.Forget(*key);
    } catch (const std::exception& e) {
      ++t_reconcile_errors;
      Log("member cluster " + *key + ": internal: reconcile failed: " + e.what() + " (tried again with backoff)");
      queue_.AddRateLimited(*key);
    }
    reconcile_metrics_.Observe(t_reconcile_errors > 0 ? "error" : "success",
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    queue_.Done(*key);
  }
}

bool ClusterRegistry::SecretsSynced(const std::string& ns) {
  Informer* inf;
  {
    std::lock_guard lock(mu_);
    auto& slot = secrets_[ns];
    if (!slot) {
      kube::ReflectorOptions o;
      o.type = {"", "v1", "Secret"};
      o.resource = "secrets";
      o.namespace_name = ns;
      slot = std::make_unique<Informer>(
          host_, o, [this](const std::string& key) { OnSecretChange(key); },
          [this, ns](std::string_view m) { Log("secret informer " + ns + ": " + std::string(m)); });
      slot->Start();
    }
    inf = slot.get();
  }
  return inf->synced();
}

void ClusterRegistry::OnSecretChange(const std::string& key) {
  // Requeue every MemberCluster naming this Secret.
  if (!members_) return;
  for (const auto& mc : members_->List()) {
    auto j = Json::parse(mc->workload.object_json, nullptr, false);
    if (j.is_discarded()) continue;
    const Json ref = j["spec"].value("kubeconfigSecretRef", Json::object());
    if (ObjectKey(ref.value("namespace", ""), ref.value("name", "")) == key) queue_.Add(mc->workload.key.name);
  }
}

void ClusterRegistry::StopRuntime(std::unique_ptr<Runtime> rt) {
  if (!rt) return;
  for (auto& r : rt->reflectors) r->Stop();
  for (auto& t : rt->threads) t.join();
  if (rt->prober) rt->prober->Stop();
}

void ClusterRegistry::OnHealthChange(const std::string& name, Runtime* rt, const ReadyCondition& c) {
  std::string record;
  {
    std::lock_guard lock(rt->health_mu);
    // `since` is when the cluster last became Ready or stopped being Ready:
    // Unknown -> False is not a new outage, and must not restart the
    // failover trigger's clock.
    const bool was_ready = rt->health_status == "True";
    const bool ready = c.status == "True";
    if (rt->health_status.empty() || was_ready != ready) rt->since = std::chrono::system_clock::now();
    rt->health_status = c.status;
    record = HealthRecordJson(c, rt->since);
  }
  Log("member cluster " + name + ": Ready=" + c.status + (c.reason.empty() ? "" : " (" + c.reason + ")") +
      (c.message.empty() ? "" : ": " + c.message));
  folder_.SetHealth(name, std::move(record));
  if (c.status == "True") {
    // Back: watches waiting out a backoff (up to 30 s) retry now, so the
    // cluster is watched again as soon as it is a failover target again.
    for (auto& r : rt->reflectors) r->Wake();
  }
  queue_.Add(name);
  if (options_.on_cluster_change) options_.on_cluster_change(name);
}

std::string ClusterRegistry::ParseSpec(std::string_view object_json, Spec& spec) {
  const Json j = Json::parse(object_json, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return "the object is not JSON";
  internal::SpecFields f("spec");
  const Json& s = f.Object(j, "spec");
  if (f.error().empty() && !j.contains("spec")) return "spec: missing";
  const Json& ref = f.Object(s, "kubeconfigSecretRef");
  spec.secret_ns = f.String(ref, "namespace", "", "kubeconfigSecretRef");
  spec.secret_name = f.String(ref, "name", "", "kubeconfigSecretRef");
  spec.secret_key = f.String(ref, "key", "kubeconfig", "kubeconfigSecretRef");
  spec.context = f.String(ref, "context", "", "kubeconfigSecretRef");
  const Json& watch = f.Object(s, "watch");
  spec.kinds = f.Strings(watch, "kinds", {"Deployment", "StatefulSet", "DaemonSet"}, "watch");
  spec.namespaces = f.Strings(watch, "namespaces", {}, "watch");
  spec.label_selector = f.String(watch, "labelSelector", "", "watch");
  const Json& health = f.Object(s, "health");
  spec.health.probe_path = f.String(health, "probePath", "/readyz", "health");
  spec.health.period = std::chrono::seconds(f.Int32(health, "periodSeconds", 10, "health"));
  spec.health.probe_timeout = std::chrono::seconds(f.Int32(health, "timeoutSeconds", 5, "health"));
  spec.health.failure_threshold = f.Int32(health, "failureThreshold", 3, "health");
  spec.health.grace_period = std::chrono::seconds(f.Int32(health, "gracePeriodSeconds", 30, "health"));
  internal::SpecFields meta("metadata");
  spec.generation = meta.Int(meta.Object(j, "metadata"), "generation", 0);
  spec.watch_and_health = watch.dump() + health.dump();
  if (!f.error().empty()) return f.error();
  if (spec.secret_ns.empty() || spec.secret_name.empty()) {
    return "spec.kubeconfigSecretRef: namespace and name are required";
  }
  for (size_t i = 0; i < spec.kinds.size(); ++i) {
    if (!WorkloadResource(spec.kinds[i])) {
      return "spec.watch.kinds[" + std::to_string(i) + "]: \"" + spec.kinds[i] +
             "\" is not one of Deployment, StatefulSet, DaemonSet";
    }
  }
  if (spec.health.period.count() <= 0 || spec.health.failure_threshold <= 0) {
    return "spec.health: periodSeconds and failureThreshold must be positive";
  }
  return "";
}

std::string ClusterRegistry::SpecError(std::string_view object_json) {
  Spec spec;
  return ParseSpec(object_json, spec);
}

void ClusterRegistry::Reconcile(const std::string& name) {
  const ObjectPtr mc = members_->Get(name);
  if (!mc) {
    std::unique_ptr<Runtime> rt;
    {
      std::lock_guard lock(mu_);
      if (auto it = running_.find(name); it != running_.end()) {
        rt = std::move(it->second);
        running_.erase(it);
      }
      problems_.erase(name);
      last_status_.erase(name);
      announced_.erase(name);
    }
    if (rt) {
      StopRuntime(std::move(rt));
      Log("member cluster " + name + ": deleted; its subtree is removed");
    }
    // Removing an absent cluster is a no-op in the store.
    folder_.RemoveCluster(name);
    if (options_.on_cluster_change) options_.on_cluster_change(name);
    return;
  }

  Spec spec;
  std::string reason, message;
  auto fail = [&](std::string r, std::string m) {
    reason = std::move(r);
    message = std::move(m);
  };
  if (std::string problem = ParseSpec(mc->workload.object_json, spec); !problem.empty()) fail("InvalidSpec", problem);
  spec.uid = mc->uid;

  std::optional<kube::RestConfig> config;
  size_t fingerprint = 0;
  if (reason.empty()) {
    if (!SecretsSynced(spec.secret_ns)) {
      queue_.AddAfter(name, std::chrono::milliseconds(100));
      return;
    }
    const std::string where = "Secret " + spec.secret_ns + "/" + spec.secret_name;
    ObjectPtr secret;
    {
      std::lock_guard lock(mu_);
      secret = secrets_[spec.secret_ns]->Get(ObjectKey(spec.secret_ns, spec.secret_name));
    }
    if (!secret) {
      fail("SecretNotFound", "spec.kubeconfigSecretRef: " + where + " does not exist");
    } else {
      auto sj = Json::parse(secret->workload.object_json, nullptr, false);
      const Json data = sj.is_object() ? sj.value("data", Json::object()) : Json::object();
      if (!data.is_object() || !data.contains(spec.secret_key) || !data[spec.secret_key].is_string()) {
        std::string keys;
        if (data.is_object()) {
          for (auto it = data.begin(); it != data.end(); ++it) keys += (keys.empty() ? "" : ", ") + it.key();
        }
        fail("SecretKeyMissing", "spec.kubeconfigSecretRef.key: " + where + " has no key \"" + spec.secret_key +
                                     "\" (it has: " + (keys.empty() ? "none" : keys) + ")");
      } else {
        auto text = kube::internal::Base64Decode(data[spec.secret_key].get<std::string>());
        const std::string origin = where + " key " + spec.secret_key;
        if (!text) {
          fail("KubeconfigInvalid", origin + ": not base64");
        } else {
          auto kc = kube::ParseKubeconfig(*text, origin);
          if (!kc.ok()) {
            fail("KubeconfigInvalid", kc.status().message());
          } else if (std::string bad = ForbiddenReference(*kc); !bad.empty()) {
            fail("KubeconfigInvalid", origin + ": " + bad +
                                          " is not allowed in a Secret; carry credentials inline "
                                          "(certificate-authority-data, client-certificate-data, "
                                          "client-key-data, token)");
          } else {
            auto resolved = kube::ResolveContext(*kc, spec.context);
            if (!resolved.ok()) {
              fail("KubeconfigInvalid", resolved.status().message());
            } else {
              config = std::move(*resolved);
              fingerprint = std::hash<std::string>{}(*text + '\x1f' + spec.context + '\x1f' + spec.watch_and_health);
            }
          }
        }
      }
    }
  }

  std::unique_ptr<Runtime> old;
  Runtime* current = nullptr;
  bool started = false;
  if (!reason.empty()) {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(name); it != running_.end()) {
      old = std::move(it->second);
      running_.erase(it);
    }
  } else {
    std::lock_guard lock(mu_);
    if (auto it = running_.find(name); it != running_.end()) {
      if (it->second->fingerprint == fingerprint) {
        current = it->second.get();
      } else {
        old = std::move(it->second);
        running_.erase(it);
      }
    }
  }
  if (old) {
    Log("member cluster " + name + (reason.empty() ? ": settings changed; restarting" : ": stopped: " + message));
    StopRuntime(std::move(old));
  }
  if (reason.empty() && current == nullptr) {
    auto transport = kube::NewHttpTransport(*config, {.warn = [this, name](std::string_view w) {
                                              Log("member cluster " + name + ": " + std::string(w));
                                            }});
    if (!transport.ok()) {
      fail("KubeconfigInvalid", transport.status().message());
    } else {
      auto rt = std::make_unique<Runtime>();
      rt->name = name;
      rt->fingerprint = fingerprint;
      rt->insecure_skip_tls_verify = config->insecure_skip_tls_verify;
      rt->server = config->server;
      std::unique_ptr<kube::Transport> t = std::move(*transport);
      if (options_.observe_transport) t = kube::ObserveTransport(std::move(t), options_.observe_transport(config->server));
      rt->client = std::make_shared<kube::RestClient>(
          std::move(t), std::shared_ptr<kube::TokenSource>(kube::NewTokenSource(*config)),
          kube::RestClientOptions{.qps = options_.member_qps, .burst = options_.member_burst});
      Runtime* raw = rt.get();
      folder_.AddCluster(name);
      rt->prober = std::make_unique<HealthProber>(
          raw->client->transport(), spec.health,
          [raw](kube::HttpRequest& r) { return raw->client->Authorize(r); },
          [this, name, raw](const ReadyCondition& c) { OnHealthChange(name, raw, c); });
      std::vector<std::string> namespaces = spec.namespaces;
      if (namespaces.empty()) namespaces.push_back("");
      for (const auto& kind : spec.kinds) {
        for (const auto& ns : namespaces) {
          kube::ReflectorOptions o;
          o.type = {"apps", "v1", kind};
          o.resource = WorkloadResource(kind);
          o.namespace_name = ns;
          o.label_selector = spec.label_selector;
          o.watch_inactivity = options_.watch_inactivity;
          o.min_watch_timeout = options_.min_watch_timeout;
          auto sink = folder_.Sink(name, o.type, ns);
          raw->reflector_synced.push_back(std::make_unique<std::atomic<bool>>(false));
          std::atomic<bool>* synced_flag = raw->reflector_synced.back().get();
          kube::ReflectorHooks hooks;
          hooks.sink = [this, raw, name, sink = std::move(sink), synced_flag](kube::ReflectorEvent&& e) {
            raw->prober->WatchActivity();
            const bool synced_now = e.type == kube::ReflectorEventType::kSynced;
            sink(std::move(e));
            if (synced_now && !synced_flag->exchange(true)) {
              raw->synced_reflectors.fetch_add(1);
              queue_.Add(name);
            }
          };
          hooks.authorize = [raw](kube::HttpRequest& r) { return raw->client->Authorize(r); };
          hooks.throttle = [raw] { raw->client->Throttle(); };
          hooks.on_unauthorized = [raw] { raw->client->OnUnauthorized(); };
          hooks.log = [this, name, kind, ns](std::string_view m) {
            Log("member cluster " + name + " " + kind + (ns.empty() ? "" : " in " + ns) + ": " + std::string(m));
          };
          raw->reflectors.push_back(std::make_unique<kube::Reflector>(raw->client->transport(), o, std::move(hooks)));
          raw->reflector_kinds.push_back(kind);
        }
      }
      for (auto& r : raw->reflectors) raw->threads.emplace_back([r = r.get()] { r->Run(); });
      std::lock_guard lock(mu_);
      current = raw;
      running_[name] = std::move(rt);
      started = true;
    }
  }
  if (started) {
    Log("member cluster " + name + ": watching " + config->server);
    if (options_.on_cluster_change) options_.on_cluster_change(name);
  }
  bool new_problem = false;
  {
    std::lock_guard lock(mu_);
    if (reason.empty()) {
      problems_.erase(name);
    } else {
      auto& slot = problems_[name];
      new_problem = slot != std::make_pair(reason, message);
      slot = {reason, message};
    }
  }
  if (new_problem) {
    // Not connected: the store says so, so snapshots never show a stale True.
    folder_.SetHealth(name, HealthRecordJson({"Unknown", "NotConnected", message}, std::chrono::system_clock::now()));
    if (options_.on_cluster_change) options_.on_cluster_change(name);
  }
  WriteStatus(name, *mc, current, reason, message);
  queue_.AddAfter(name, options_.status_period);
}

void ClusterRegistry::WriteStatus(const std::string& name, const kube::DecodedObject& mc, const Runtime* rt,
                                  const std::string& problem_reason, const std::string& problem_message) {
  if (!leader_.load()) return;
  auto j = Json::parse(mc.workload.object_json, nullptr, false);
  if (j.is_discarded()) return;
  const int64_t generation = j["metadata"].value("generation", int64_t{0});
  const Json existing = j.contains("status") && j["status"].is_object() ? j["status"] : Json::object();

  std::vector<internal::Condition> conds;
  ReadyCondition ready{"Unknown", "NotConnected", problem_message};
  if (rt != nullptr) {
    ready = rt->prober->Current();
    uint64_t errors = 0;
    for (const auto& r : rt->reflectors) errors += r->stats().errors;
    conds.push_back({"Watching", "True", "Watching",
                     std::to_string(rt->reflectors.size()) + " watch(es) running; " + std::to_string(errors) +
                         " failure(s) retried so far"});
    // Only the member's kubeconfig can turn verification off; whoever reads
    // the MemberCluster sees that it did.
    if (rt->server.starts_with("http://")) {
      conds.push_back({"TLSVerified", "False", "PlainHTTP",
                       "the kubeconfig's server " + rt->server + " is plain HTTP: no TLS, credentials travel in clear"});
    } else if (rt->insecure_skip_tls_verify) {
      conds.push_back({"TLSVerified", "False", "InsecureSkipTLSVerify",
                       "the kubeconfig sets insecure-skip-tls-verify: the identity of " + rt->server +
                           " is not checked"});
    } else {
      conds.push_back({"TLSVerified", "True", "Verified",
                       "the server's certificate is verified (the kubeconfig's CA, else the system's)"});
    }
    const size_t synced = rt->synced_reflectors.load();
    conds.push_back(synced == rt->reflectors.size()
                        ? internal::Condition{"Synced", "True", "Synced", "every watched kind has been listed"}
                        : internal::Condition{"Synced", "False", "WaitingForInitialList",
                                              std::to_string(synced) + " of " +
                                                  std::to_string(rt->reflectors.size()) + " watches have listed"});
  } else {
    conds.push_back({"Watching", "False", problem_reason, problem_message});
    conds.push_back({"Synced", "False", "NotWatching", "not connected: " + problem_reason});
  }
  if (ready.reason.empty()) ready.reason = "Unknown";
  conds.push_back({"Ready", ready.status, ready.reason, ready.message});

  const auto now = std::chrono::system_clock::now();
  Json status = Json::object();
  status["observedGeneration"] = generation;
  status["conditions"] = internal::SetConditions(existing.value("conditions", Json::array()), conds, generation, now);
  const state::Snapshot snap = store_.Current();
  if (auto info = snap.Cluster(name)) {
    status["vectorComponent"] = info->counter;
    status["workloadCount"] = snap.CountWorkloads(name) - snap.CountWorkloads(name, kHealthNamespace);
  }
  if (rt != nullptr && rt->prober->last_probe().time_since_epoch().count() > 0) {
    status["lastProbeTime"] = kube::internal::FormatRfc3339(rt->prober->last_probe());
  }

  // Events: a bad Secret once per distinct message, Ready transitions once each.
  const bool unverified = rt != nullptr && (rt->insecure_skip_tls_verify || rt->server.starts_with("http://"));
  const std::string announce =
      rt != nullptr ? "ready:" + ready.status + (unverified ? ":unverified" : "") : "problem:" + problem_message;
  bool announce_now = false;
  const std::string body = Json{{"status", status}}.dump();
  bool write = false;
  {
    std::lock_guard lock(mu_);
    if (announced_[name] != announce) {
      announced_[name] = announce;
      announce_now = true;
    }
    // Skip a write that would change nothing but a timestamp of the same second.
    if (last_status_[name] != body) {
      last_status_[name] = body;
      write = true;
    }
  }
  if (announce_now) {
    const ObjectRef ref{std::string(kGroup) + "/" + kVersion, "MemberCluster", "", name, mc.uid};
    if (unverified) {
      events_.Record(ref, "Warning", rt->insecure_skip_tls_verify ? "InsecureSkipTLSVerify" : "PlainHTTP",
                     "TLS does not verify " + rt->server + " (" +
                         (rt->insecure_skip_tls_verify ? "insecure-skip-tls-verify" : "plain HTTP") + ")");
    }
    if (rt == nullptr) {
      events_.Record(ref, "Warning", problem_reason, problem_message);
    } else if (ready.status == "True") {
      events_.Record(ref, "Normal", "ClusterReady", ready.message);
    } else if (ready.status == "False") {
      events_.Record(ref, "Warning", "ClusterNotReady", ready.message);
    }
  }
  if (!write) return;
  auto r = host_.Patch(kube::ResourcePath(kGroup, kVersion, "memberclusters", "") + "/" + name + "/status", body,
                       kube::PatchOptions{});
  if (!r.ok()) {
    std::lock_guard lock(mu_);
    last_status_.erase(name);  // write again next time
    if (r.status().code() != StatusCode::kNotFound) {
      ++t_reconcile_errors;
      Log("member cluster " + name + ": status: " + r.status().ToString());
    }
  }
}

}  // namespace kubefold::controllers
