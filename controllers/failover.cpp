#include "controllers/failover.h"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include "controllers/health.h"
#include "controllers/internal/conditions.h"
#include "controllers/internal/spec_fields.h"
#include "controllers/internal/json_scan.h"
#include "controllers/kube/internal/rfc3339.h"
#include "controllers/label_selector.h"
#include "controllers/workload_kinds.h"
#include "state/diff.h"

namespace kubefold::controllers {

using internal::Json;
using SysTime = std::chrono::system_clock::time_point;

namespace {

// Per worker thread, for the reconcile metrics: failures during the pass
// running on this thread, and whether it asked to run again before resync.
thread_local int t_pass_errors = 0;
thread_local bool t_requeue_after = false;

constexpr char kGroup[] = "kubefold.io";
constexpr char kVersion[] = "v1alpha1";
constexpr auto kMemoLifetime = std::chrono::minutes(10);
// Apply requests of one failover in flight at once. The member client's rate
// limit (50 QPS, burst 100 by default) is what bounds the request rate; this
// only bounds threads, and must cover a round trip's worth of requests so
// that a failover's last apply is not issued one round trip per eight
// workloads after its first (at 8, the ninth waited for a whole apply).
constexpr size_t kApplyParallelism = 32;

std::string Stamp(SysTime t) { return kube::internal::FormatRfc3339(t); }

std::string Duration(std::chrono::milliseconds d) {
  const auto s = std::chrono::duration_cast<std::chrono::seconds>(d).count();
  return std::to_string(s) + "s";
}

// Available as `kubectl rollout status` means it: the controller has seen
// the newest generation and the desired replicas are available.
bool Available(const state::WorkloadSummary& s) {
  if (s.generation != state::WorkloadSummary::kUnset && s.observed_generation < s.generation) return false;
  const int32_t want = s.desired_replicas < 0 ? 1 : s.desired_replicas;
  return s.available_replicas >= want;
}

bool Unavailable(const state::WorkloadSummary& s) { return s.desired_replicas != 0 && s.available_replicas <= 0; }

struct Health {
  bool known = false;
  std::string status = "Unknown";
  SysTime since{};
};

// Audit names: the policy's name, the target, and a hash of the decision,
// within the 253 characters of a DNS subdomain.
std::string AuditName(const std::string& policy, const std::string& to, const std::string& seed) {
  char hex[11];
  std::snprintf(hex, sizeof hex, "%010llx",
                static_cast<unsigned long long>(std::hash<std::string>{}(seed) & 0xffffffffffULL));
  std::string base = policy + "-" + to;
  if (base.size() > 241) base.resize(241);
  while (!base.empty() && !std::isalnum(static_cast<unsigned char>(base.back()))) base.pop_back();
  return base + "-" + hex;
}

// One cluster's copy of a governed workload.
struct Copy {
  const state::Record* record;
  bool ours;  // labelled as kubefold's copy
};
using Copies = std::map<std::string, Copy>;  // cluster -> copy

// A workload's home: the first cluster in the policy's order holding a copy
// kubefold did not create; "" when it has none.
std::string HomeOf(const std::vector<std::string>& order, const Copies& copies) {
  for (const auto& c : order) {
    if (auto it = copies.find(c); it != copies.end() && !it->second.ours) return c;
  }
  return "";
}

// The active cluster when the policy's status names none: home, else the
// first cluster in order holding a copy. REQUIRES: !copies.empty().
std::string DefaultActive(const std::vector<std::string>& order, const Copies& copies, const std::string& home) {
  if (!home.empty()) return home;
  for (const auto& c : order) {
    if (copies.contains(c)) return c;
  }
  return copies.begin()->first;
}

// Where a workload failing on `active` goes: the next cluster in order that
// is Ready, and — when the trigger is the workload itself — where its copy
// is not unavailable as well. "" when there is none.
template <class ReadyFn>
std::string NextTarget(const std::vector<std::string>& order, const std::string& active, const Copies& copies,
                       bool workload_trigger, ReadyFn ready_now) {
  for (const auto& c : order) {
    if (c == active || !ready_now(c)) continue;
    if (workload_trigger) {
      if (auto it = copies.find(c); it != copies.end() && Unavailable(it->second.record->summary())) continue;
    }
    return c;
  }
  return "";
}

}  // namespace

struct FailoverReconciler::Policy {
  std::string key, ns, name, uid, created, resource_version;
  int64_t generation = 0;
  std::vector<std::string> kinds;
  LabelSelector selector;
  std::vector<std::string> clusters;
  std::chrono::milliseconds unhealthy{30000}, unavailable{0}, stable{300000};
  bool automatic = false;
  int max_in_flight = 10;
  bool failback_requested = false;
  std::string invalid_field;  // a spec error that stops the policy acting
  Json status = Json::object();
  std::map<std::string, Json> entries;  // "Kind/name" -> status.workloads[]

  static Policy Parse(const kube::DecodedObject& o) {
    Policy p;
    p.ns = o.ns;
    p.name = o.workload.key.name;
    p.key = ObjectKey(p.ns, p.name);
    p.uid = o.uid;
    p.resource_version = o.resource_version;
    auto j = Json::parse(o.workload.object_json, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      p.invalid_field = "the object is not JSON";
      return p;
    }
    // Typed reads that never throw: a field of the wrong type is the
    // policy's InvalidSpec, naming it.
    internal::SpecFields m("metadata");
    const Json& meta = m.Object(j, "metadata");
    p.generation = m.Int(meta, "generation", 0);
    p.created = m.String(meta, "creationTimestamp", "");
    const Json& ann = m.Object(meta, "annotations");
    p.failback_requested = ann.contains(kFailbackAnnotation);
    internal::SpecFields f("spec");
    const Json& spec = f.Object(j, "spec");
    const Json& sel = f.Object(spec, "selector");
    p.kinds = f.Strings(sel, "kinds", {"Deployment", "StatefulSet", "DaemonSet"}, "selector");
    const std::string label_selector = f.String(sel, "labelSelector", "", "selector");
    p.clusters = f.Strings(spec, "clusters", {});
    const Json& trig = f.Object(spec, "trigger");
    p.unhealthy = std::chrono::seconds(f.Int32(trig, "clusterUnhealthySeconds", 30, "trigger"));
    p.unavailable = std::chrono::seconds(f.Int32(trig, "workloadUnavailableSeconds", 0, "trigger"));
    const Json& fb = f.Object(spec, "failback");
    p.automatic = f.String(fb, "mode", "Manual", "failback") == "Automatic";
    p.stable = std::chrono::seconds(f.Int32(fb, "stableSeconds", 300, "failback"));
    p.max_in_flight = std::max(1, f.Int32(spec, "maxInFlight", 10));
    p.invalid_field = f.error();
    for (size_t i = 0; i < p.kinds.size() && p.invalid_field.empty(); ++i) {
      if (!WorkloadResource(p.kinds[i])) {
        p.invalid_field = "spec.selector.kinds[" + std::to_string(i) + "]: \"" + p.kinds[i] +
                          "\" is not Deployment, StatefulSet or DaemonSet";
      }
    }
    auto selector = LabelSelector::Parse(label_selector);
    if (!selector.ok()) {
      if (p.invalid_field.empty()) p.invalid_field = "spec.selector.labelSelector: " + selector.status().message();
    } else {
      p.selector = std::move(*selector);
    }
    if (p.clusters.empty() && p.invalid_field.empty()) p.invalid_field = "spec.clusters: at least one cluster is needed";
    if (j.contains("status") && j["status"].is_object()) {
      p.status = j["status"];
      internal::SpecFields st("status");
      const auto it = p.status.find("workloads");
      if (it != p.status.end() && it->is_array()) {
        for (const Json& w : *it) {
          if (w.is_object()) p.entries[st.String(w, "kind", "") + "/" + st.String(w, "name", "")] = w;
        }
      }
    }
    return p;
  }
  // Older first: creationTimestamp, then name.
  bool OlderThan(const Policy& o) const { return created != o.created ? created < o.created : name < o.name; }
};

struct FailoverReconciler::Audit {
  std::string key, ns, name, policy, from, to, reason, phase, created;
  struct Workload {
    std::string kind, ns, name, action;
  };
  std::vector<Workload> workloads;
  uint64_t before_seq = 0;
  std::string before_vector;  // canonical JSON
  bool has_after = false;
  uint64_t after_seq = 0;
  std::string after_vector;
  Json trigger;

  static std::optional<Audit> Parse(const kube::DecodedObject& o) {
    auto j = Json::parse(o.workload.object_json, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("spec") || !j["spec"].is_object()) return std::nullopt;
    Audit a;
    a.ns = o.ns;
    a.name = o.workload.key.name;
    a.key = ObjectKey(a.ns, a.name);
    // Typed reads that never throw; an audit kubefold cannot read (edited
    // by hand into other types) is ignored.
    internal::SpecFields f("spec");
    const Json& s = j["spec"];
    a.policy = f.String(s, "policy", "");
    a.from = f.String(s, "from", "");
    a.to = f.String(s, "to", "");
    a.trigger = f.Object(s, "trigger");
    a.reason = f.String(a.trigger, "reason", "", "trigger");
    internal::SpecFields m("metadata");
    a.created = m.String(m.Object(j, "metadata"), "creationTimestamp", "");
    if (const auto ws = s.find("workloads"); ws != s.end() && ws->is_array()) {
      for (const Json& w : *ws) {
        if (!w.is_object()) continue;
        a.workloads.push_back({f.String(w, "kind", "", "workloads[]"), f.String(w, "namespace", a.ns, "workloads[]"),
                               f.String(w, "name", "", "workloads[]"), f.String(w, "action", "", "workloads[]")});
      }
    }
    auto snapshot_ref = [&](const Json& ref, const char* which, uint64_t& seq, std::string& vector) {
      const int64_t n = f.Int(ref, "seq", 0, which);
      seq = n > 0 ? static_cast<uint64_t>(n) : 0;
      if (const auto v = ref.find("vector"); v != ref.end()) {
        auto parsed = state::VersionVector::Parse(v->dump());
        if (parsed.ok()) vector = parsed->ToJson();
      }
    };
    snapshot_ref(f.Object(s, "before"), "before", a.before_seq, a.before_vector);
    a.has_after = s.contains("after");
    if (a.has_after && s["after"].is_object()) snapshot_ref(s["after"], "after", a.after_seq, a.after_vector);
    internal::SpecFields st("status");
    a.phase = st.String(st.Object(j, "status"), "phase", "");
    if (!f.error().empty()) return std::nullopt;
    return a;
  }
  bool InProgress() const { return phase.empty() || phase == "InProgress"; }
};

struct FailoverReconciler::Decision {
  std::string wkey, kind, name;
  std::string from, to, reason, trigger_cluster;
  SysTime crossed{};
  const state::Record* source = nullptr;
  const state::Record* existing_on_target = nullptr;
};

// What a stored record's labels say about one policy. Records never change
// and each cluster's counters only grow, so (record, counter, content hash)
// names one version of a workload: its labels are read once, not per pass.
struct FailoverReconciler::ScanCache {
  struct Verdict {
    uint64_t counter = 0, hash = 0;
    uint32_t seen = 0;  // the pass that last met it
    bool known = false;
    bool governed = false;
    bool ours = false;      // labelled as kubefold's copy
    std::string conflict;   // the older policy that governs it instead, or ""
  };
  std::string policies;  // the namespace's policies (names and versions) the verdicts assume
  uint32_t pass = 0;
  std::unordered_map<const state::Record*, Verdict> verdicts;
};

FailoverReconciler::FailoverReconciler(kube::RestClient& host, state::Store& store, ClusterRegistry& registry,
                                       EventRecorder& events, FailoverOptions options)
    : host_(host),
      store_(store),
      registry_(registry),
      events_(events),
      options_(std::move(options)),
      queue_(WorkQueueOptions{.base_delay = std::chrono::milliseconds(100),
                              .max_delay = std::chrono::seconds(60),
                              .qps = 100,
                              .burst = 200,
                              .metrics = options_.metrics ? options_.metrics->Queue("failover") : WorkQueueMetrics{}}),
      reconcile_metrics_(options_.metrics ? options_.metrics->Reconcile("failover") : ReconcileMetrics{}) {}

FailoverReconciler::~FailoverReconciler() { Stop(); }

void FailoverReconciler::Log(std::string_view message) const {
  if (options_.log) options_.log(message);
}

void FailoverReconciler::LogError(std::string_view message) const {
  ++t_pass_errors;
  Log(message);
}

SysTime FailoverReconciler::Now() const { return options_.clock ? options_.clock() : std::chrono::system_clock::now(); }

void FailoverReconciler::Start() {
  kube::ReflectorOptions p;
  p.type = {kGroup, kVersion, "FailoverPolicy"};
  p.resource = "failoverpolicies";
  policies_ = std::make_unique<Informer>(
      host_, p, [this](const std::string& key) { queue_.Add(key); },
      [this](std::string_view m) { Log("policy informer: " + std::string(m)); });
  kube::ReflectorOptions a;
  a.type = {kGroup, kVersion, "FailoverAudit"};
  a.resource = "failoveraudits";
  audits_ = std::make_unique<Informer>(
      host_, a, [this](const std::string& key) { OnAuditChange(key); },
      [this](std::string_view m) { Log("audit informer: " + std::string(m)); });
  policies_->Start();
  audits_->Start();
  for (int i = 0; i < std::max(1, options_.workers); ++i) workers_.emplace_back([this] { Worker(); });
}

void FailoverReconciler::Stop() {
  if (stopped_.exchange(true)) return;
  queue_.ShutDown();
  for (auto& t : workers_) t.join();
  workers_.clear();
  if (policies_) policies_->Stop();
  if (audits_) audits_->Stop();
}

void FailoverReconciler::set_leader(bool leading) {
  const bool was = leader_.exchange(leading);
  if (leading && !was) {
    {
      std::lock_guard lock(mu_);
      last_status_.clear();
    }
    Poke();
  }
}

void FailoverReconciler::Poke(std::chrono::milliseconds delay) {
  if (!policies_) return;
  for (const auto& o : policies_->List()) queue_.AddAfter(ObjectKey(o->ns, o->workload.key.name), delay);
}

std::shared_ptr<const FailoverReconciler::Policy> FailoverReconciler::ParsedPolicy(const kube::DecodedObject& o) {
  const std::string key = ObjectKey(o.ns, o.workload.key.name);
  {
    std::lock_guard lock(mu_);
    auto it = policy_cache_.find(key);
    if (it != policy_cache_.end() && it->second.first == o.resource_version) return it->second.second;
  }
  auto parsed = std::make_shared<const Policy>(Policy::Parse(o));
  std::lock_guard lock(mu_);
  policy_cache_[key] = {o.resource_version, parsed};
  return parsed;
}

std::string FailoverReconciler::PolicySpecError(const kube::DecodedObject& policy) {
  return Policy::Parse(policy).invalid_field;
}

bool FailoverReconciler::AuditReadable(const kube::DecodedObject& audit) { return Audit::Parse(audit).has_value(); }

std::shared_ptr<const FailoverReconciler::Audit> FailoverReconciler::ParsedAudit(const kube::DecodedObject& o) {
  const std::string key = ObjectKey(o.ns, o.workload.key.name);
  {
    std::lock_guard lock(mu_);
    auto it = audit_cache_.find(key);
    if (it != audit_cache_.end() && it->second.first == o.resource_version) return it->second.second;
  }
  auto a = Audit::Parse(o);
  std::shared_ptr<const Audit> parsed = a ? std::make_shared<const Audit>(std::move(*a)) : nullptr;
  std::lock_guard lock(mu_);
  audit_cache_[key] = {o.resource_version, parsed};
  return parsed;
}

bool FailoverReconciler::synced() const { return policies_ && audits_ && policies_->synced() && audits_->synced(); }

FailoverStats FailoverReconciler::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void FailoverReconciler::Worker() {
  while (auto key = queue_.Get()) {
    t_pass_errors = 0;
    t_requeue_after = false;
    const auto start = std::chrono::steady_clock::now();
    // A pass that throws (a bug: parsing never does) is logged and retried
    // with backoff; it does not take the operator down.
    try {
      Pass(*key);
      queue_.Forget(*key);
    } catch (const std::exception& e) {
      LogError("policy " + *key + ": internal: pass failed: " + e.what() + " (tried again with backoff)");
      queue_.AddRateLimited(*key);
    }
    reconcile_metrics_.Observe(t_pass_errors > 0 ? "error" : t_requeue_after ? "requeue_after" : "success",
                               std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    queue_.Done(*key);
  }
}

void FailoverReconciler::OnAuditChange(const std::string& key) {
  ObjectPtr o = audits_->Get(key);
  if (!o) {
    std::vector<uint64_t> pins;
    {
      std::lock_guard lock(mu_);
      if (auto it = pins_.find(key); it != pins_.end()) {
        pins = std::move(it->second);
        pins_.erase(it);
      }
      cursor_.erase(key);
      audit_cache_.erase(key);
      finished_.erase(key);
    }
    for (uint64_t seq : pins) (void)store_.Unpin(seq);
    return;
  }
  auto a = ParsedAudit(*o);
  if (!a) return;
  if (!a->InProgress()) {
    std::lock_guard lock(mu_);
    finished_.erase(key);
  }
  AdoptPins(*a);
  if (!a->policy.empty()) queue_.Add(ObjectKey(a->ns, a->policy));
}

size_t FailoverReconciler::AdoptPins(const Audit& a) {
  size_t taken = 0;
  std::lock_guard lock(mu_);
  std::vector<uint64_t>& mine = pins_[a.key];
  const std::pair<uint64_t, const std::string*> refs[] = {{a.before_seq, &a.before_vector},
                                                          {a.after_seq, &a.after_vector}};
  for (const auto& [seq, vector] : refs) {
    if (seq == 0 || std::find(mine.begin(), mine.end(), seq) != mine.end()) continue;
    // Only this store's snapshot: another replica's history numbers its
    // own, and the vector tells them apart.
    auto pinned = store_.Pin(seq);
    if (!pinned.ok()) continue;
    if (pinned->vector().ToJson() != *vector) {
      (void)store_.Unpin(seq);
      continue;
    }
    mine.push_back(seq);
    ++taken;
  }
  if (mine.empty()) pins_.erase(a.key);
  return taken;
}

size_t FailoverReconciler::AdoptAuditPins() {
  if (!audits_) return 0;
  size_t taken = 0;
  for (const auto& o : audits_->List()) {
    if (auto a = ParsedAudit(*o)) taken += AdoptPins(*a);
  }
  return taken;
}

void FailoverReconciler::KeepPin(const std::string& audit_key, uint64_t seq) {
  // The audit's own event may have adopted it already: one pin per
  // (audit, snapshot).
  bool extra = false;
  {
    std::lock_guard lock(mu_);
    std::vector<uint64_t>& mine = pins_[audit_key];
    if (std::find(mine.begin(), mine.end(), seq) != mine.end()) {
      extra = true;
    } else {
      mine.push_back(seq);
    }
  }
  if (extra) (void)store_.Unpin(seq);
}

void FailoverReconciler::MakeDurable(const std::string& what, uint64_t seq) {
  if (!options_.make_durable) return;
  Status s = options_.make_durable(seq);
  if (!s.ok()) Log(what + ": snapshot " + std::to_string(seq) + " is not durable: " + s.message());
}

Status FailoverReconciler::EnsureNamespace(const std::string& cluster, kube::RestClient& client, const std::string& ns) {
  const std::string memo = cluster + "/" + ns;
  {
    std::lock_guard lock(mu_);
    if (namespaces_.contains(memo)) return Status::Ok();
  }
  auto got = client.Get(kube::ResourcePath("", "v1", "namespaces", "") + "/" + ns);
  if (!got.ok()) {
    if (got.status().code() != StatusCode::kNotFound) return got.status();
    Json body = {{"apiVersion", "v1"},
                 {"kind", "Namespace"},
                 {"metadata", {{"name", ns}, {"labels", {{"kubefold.io/created-by", "kubefold"}}}}}};
    auto created = client.Create(kube::ResourcePath("", "v1", "namespaces", ""), body.dump());
    if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) return created.status();
  }
  std::lock_guard lock(mu_);
  namespaces_.insert(memo);
  return Status::Ok();
}

bool FailoverReconciler::Progress(const Audit& audit, const state::Snapshot& s, SysTime now,
                                  const std::string& target_failed, bool* completed) {
  if (!audit.InProgress()) return false;
  {
    std::lock_guard lock(mu_);
    if (auto it = finished_.find(audit.key); it != finished_.end()) {
      if (it->second && completed) *completed = true;
      return false;
    }
  }
  const std::string status_path =
      kube::ResourcePath(kGroup, kVersion, "failoveraudits", audit.ns) + "/" + audit.name + "/status";
  const std::string spec_path = kube::ResourcePath(kGroup, kVersion, "failoveraudits", audit.ns) + "/" + audit.name;
  const ObjectRef ref{std::string(kGroup) + "/" + kVersion, "FailoverAudit", audit.ns, audit.name, ""};
  auto finish = [&](bool ok, const std::string& reason, const std::string& message) {
    Json status = {{"status",
                    {{"phase", ok ? "Completed" : "Failed"},
                     {"conditions", internal::SetConditions(Json::array(),
                                                            {{"Completed", ok ? "True" : "False", reason, message}},
                                                            0, now)}}}};
    auto r = host_.Patch(status_path, status.dump(), kube::PatchOptions{});
    if (!r.ok()) {
      LogError("audit " + audit.key + ": status: " + r.status().ToString());
      return;
    }
    if (ok && completed) *completed = true;
    {
      std::lock_guard lock(mu_);
      ++(ok ? stats_.audits_completed : stats_.audits_failed);
      finished_[audit.key] = ok;
    }
    // The informer may have shown the new phase already (OnAuditChange
    // erases the entry when it does).
    if (auto cached = audits_->Get(audit.key)) {
      if (auto a = ParsedAudit(*cached); a && !a->InProgress()) {
        std::lock_guard lock(mu_);
        finished_.erase(audit.key);
      }
    }
    events_.Record(ref, ok ? "Normal" : "Warning", ok ? "FailoverCompleted" : "FailoverFailed", message);
    if (options_.on_finished) {
      // From the trigger's threshold (or the audit's creation) to now.
      auto since = kube::internal::ParseRfc3339(audit.trigger.is_object() ? audit.trigger.value("observedTime", "") : "");
      if (!since) since = kube::internal::ParseRfc3339(audit.created);
      const double seconds = since ? std::chrono::duration<double>(now - *since).count() : 0;
      options_.on_finished(ObjectKey(audit.ns, audit.policy), audit.from, audit.to, ok ? "completed" : "failed",
                           std::max(0.0, seconds));
    }
  };

  std::vector<const Audit::Workload*> pending;
  for (const auto& w : audit.workloads) {
    if (w.action != "Failed") pending.push_back(&w);
  }
  if (pending.empty()) {
    finish(false, "NothingApplied", "no workload could be applied to " + audit.to);
    return false;
  }
  if (audit.has_after) {  // written by a leader that stopped before the status
    finish(true, "WorkloadsAvailable", "every workload is available on " + audit.to);
    return false;
  }

  // The before snapshot is this store's when the seq and the vector agree.
  state::Snapshot before;
  if (auto b = store_.Get(audit.before_seq); b.ok() && b->vector().ToJson() == audit.before_vector) before = *b;

  auto all_available = [&](const state::Snapshot& snap, const Audit::Workload** missing) {
    for (const auto* w : pending) {
      const state::Record* r = snap.Get(audit.to, w->ns, state::WorkloadKeyView("apps", w->kind, w->name));
      if (r == nullptr || !Available(r->summary())) {
        *missing = w;
        return false;
      }
    }
    return true;
  };

  uint64_t cursor;
  {
    std::lock_guard lock(mu_);
    auto it = cursor_.find(audit.key);
    cursor = it != cursor_.end() ? it->second : (before.valid() ? audit.before_seq : 0);
  }
  const Audit::Workload* missing = pending.front();
  std::optional<state::Snapshot> after;
  uint64_t last_to = UINT64_MAX;
  // Only snapshots up to S: those published since this pass began are
  // looked at by the next pass (the cursor stays before them).
  bool past_s = false;
  while (!after && !past_s && cursor <= s.seq()) {
    auto page = store_.ListRetained(cursor, 256);
    if (page.empty()) break;
    for (const auto& rs : page) {
      if (rs.seq > s.seq()) {
        past_s = true;
        break;
      }
      cursor = rs.seq + 1;
      // The target's subtree changes only when its component does.
      const uint64_t to_counter = rs.vector.Get(audit.to);
      if (to_counter == last_to) continue;
      last_to = to_counter;
      auto snap = store_.Get(rs.seq);
      if (!snap.ok()) continue;
      if (all_available(*snap, &missing)) {
        after = *snap;
        break;
      }
    }
  }
  {
    std::lock_guard lock(mu_);
    cursor_[audit.key] = after ? after->seq() : cursor;
  }
  if (!after && !target_failed.empty()) {
    // The target failed before the workloads were available there: this
    // failover is over, and the next pass decides afresh.
    finish(false, "TargetUnhealthy", target_failed);
    return false;
  }
  if (!after) {
    const auto created = kube::internal::ParseRfc3339(audit.created);
    if (created && now - *created > options_.audit_deadline) {
      finish(false, "Timeout",
             missing->kind + " " + missing->ns + "/" + missing->name + " was not available on " + audit.to +
                 " within " + Duration(options_.audit_deadline));
      return false;
    }
    return true;
  }

  auto pinned = store_.Pin(after->seq());
  if (pinned.ok()) KeepPin(audit.key, after->seq());
  MakeDurable("audit " + audit.key + ": after", after->seq());
  Json spec = {{"after",
                {{"seq", after->seq()},
                 {"vector", Json::parse(after->vector().ToJson())},
                 {"time", Stamp(after->time())}}}};
  std::string note;
  if (before.valid()) {
    auto d = state::Diff(before, *after);
    if (d.ok()) spec["changeSummary"] = {{"added", d->added()}, {"removed", d->removed()}, {"modified", d->modified()}};
  } else {
    note = " (the before snapshot was taken by another replica; no change summary)";
  }
  auto r = host_.Patch(spec_path, Json{{"spec", spec}}.dump(), kube::PatchOptions{});
  if (!r.ok()) {
    LogError("audit " + audit.key + ": after: " + r.status().ToString());
    return true;
  }
  finish(true, "WorkloadsAvailable",
         "every workload is available on " + audit.to + " in snapshot " + std::to_string(after->seq()) + note);
  return false;
}

// The next try of a failover that could not be written or applied: 1 s,
// doubling to 60 s.
std::chrono::milliseconds FailoverReconciler::BackOff(AuditRetry& retry, std::chrono::steady_clock::time_point now) {
  retry.delay = retry.delay.count() == 0 ? std::chrono::milliseconds(1000)
                                         : std::min(retry.delay * 2, std::chrono::milliseconds(60000));
  retry.not_before = now + retry.delay;
  ++retry.attempts;
  return retry.delay;
}

// `c`'s ClusterHealth record in `s`, unless a previous process wrote it
// (no newer than the restored vector): see FailoverOptions::restored.
const state::Record* FailoverReconciler::FreshHealth(const state::Snapshot& s, const std::string& c) const {
  const state::Record* r = s.Get(c, kHealthNamespace, {kHealthGroup, kHealthKind, kHealthName});
  return r != nullptr && r->counter() > options_.restored.Get(c) ? r : nullptr;
}

void FailoverReconciler::Pass(const std::string& key) {
  if (!leader_.load() || stopped_.load()) return;
  if (!registry_.synced() || !synced()) {
    queue_.AddAfter(key, std::chrono::milliseconds(100));
    return;
  }
  const ObjectPtr obj = policies_->Get(key);
  if (!obj) {
    std::lock_guard lock(mu_);
    last_status_.erase(key);
    policy_cache_.erase(key);
    scan_caches_.erase(key);
    for (auto it = audit_retry_.lower_bound(key + "|"); it != audit_retry_.end() && it->first.starts_with(key + "|");) {
      it = audit_retry_.erase(it);
    }
    return;
  }
  {
    std::lock_guard lock(mu_);
    ++stats_.passes;
  }
  const std::shared_ptr<const Policy> parsed = ParsedPolicy(*obj);
  const Policy& p = *parsed;
  const state::Snapshot s = store_.Current();  // the ONE snapshot this pass decides from
  const SysTime now = Now();  // read right after S is taken: operator tests hold a pass here through it
  const auto steady_now = std::chrono::steady_clock::now();
  SysTime next_wake = now + options_.resync;
  auto wake_at = [&](SysTime t) {
    if (t > now && t < next_wake) next_wake = t;
  };
  const ObjectRef ref{std::string(kGroup) + "/" + kVersion, "FailoverPolicy", p.ns, p.name, p.uid};

  std::vector<internal::Condition> conds;
  // Unknown clusters: reported, treated as never healthy; the rest still act.
  std::string unknown;
  for (size_t i = 0; i < p.clusters.size(); ++i) {
    if (!registry_.Exists(p.clusters[i]) && unknown.empty()) {
      unknown = "spec.clusters[" + std::to_string(i) + "]: no MemberCluster named \"" + p.clusters[i] + "\"";
    }
  }

  // Audits of this policy: complete those in progress; their workloads are in flight.
  std::map<std::string, const Audit*> in_flight;  // "Kind/name" -> audit
  // "Kind/name" -> the newest Completed audit that moved it: after a crash
  // the policy's status may predate it (the status write did not happen).
  std::map<std::string, const Audit*> completed;
  auto Newer = [](const Audit& x, const Audit& y) {
    return x.created != y.created ? x.created > y.created : x.name > y.name;  // RFC 3339 UTC sorts as text
  };
  std::vector<std::shared_ptr<const Audit>> audits;
  for (const auto& o : audits_->List()) {
    if (o->ns != p.ns) continue;
    if (auto a = ParsedAudit(*o); a && a->policy == p.name) audits.push_back(std::move(a));
  }
  // Health of each cluster as S records it.
  std::map<std::string, Health> health;
  for (const auto& c : p.clusters) {
    Health h;
    if (const state::Record* r = FreshHealth(s, c)) {
      if (auto rec = ParseHealthRecord(r->object_json())) {
        h.known = true;
        h.status = rec->condition.status;
        h.since = rec->since;
      }
    }
    health[c] = h;
  }

  for (const auto& ap : audits) {
    const Audit& a = *ap;
    std::string target_failed;
    if (auto h = health.find(a.to); h != health.end() && h->second.known && h->second.status != "True" &&
        now >= h->second.since + p.unhealthy) {
      target_failed = a.to + " has not been Ready for " + Duration(p.unhealthy) +
                      " (trigger.clusterUnhealthySeconds) before the workloads were available there";
    }
    bool completed_now = false;
    if (Progress(a, s, now, target_failed, &completed_now)) {
      for (const auto& w : a.workloads) in_flight[w.kind + "/" + w.name] = &a;
    }
    if (completed_now || a.phase == "Completed") {
      for (const auto& w : a.workloads) {
        if (w.action == "Failed") continue;
        const Audit*& newest = completed[w.kind + "/" + w.name];
        if (!newest || Newer(a, *newest)) newest = &a;
      }
    }
  }

  // Other policies of the namespace, for conflicts.
  std::vector<std::shared_ptr<const Policy>> others;
  for (const auto& o : policies_->List()) {
    if (o->ns == p.ns && o->workload.key.name != p.name) {
      auto q = ParsedPolicy(*o);
      if (q->invalid_field.empty()) others.push_back(std::move(q));
    }
  }

  // Governed workloads: "Kind/name" -> cluster -> record.
  std::map<std::string, Copies> governed;
  std::vector<std::string> conflicts;
  if (p.invalid_field.empty()) {
    ScanCache* cache;
    {
      std::lock_guard lock(mu_);
      auto& slot = scan_caches_[key];
      if (!slot) slot = std::make_unique<ScanCache>();
      cache = slot.get();
    }
    // The verdicts depend on the policies' specs alone: key them by uid and
    // generation, which a status write (every pass that changes a policy's
    // status) does not advance, unlike resourceVersion. Rescanning every
    // record after each status write cost ~160 ms per pass at 100k workloads
    // once objects were kept compressed.
    std::string fingerprint = p.uid + "#" + std::to_string(p.generation);
    for (const auto& q : others) fingerprint += "|" + q->name + "@" + q->uid + "#" + std::to_string(q->generation);
    if (cache->policies != fingerprint) {
      cache->verdicts.clear();
      cache->policies = std::move(fingerprint);
    }
    const uint32_t pass_no = ++cache->pass;
    size_t met = 0;
    for (const auto& c : p.clusters) {
      s.ForEachWorkload(c, p.ns, [&](const state::WorkloadRef& w) {
        const state::Record& r = *w.record;
        if (r.group() != "apps" || std::find(p.kinds.begin(), p.kinds.end(), r.kind()) == p.kinds.end()) return true;
        ScanCache::Verdict& v = cache->verdicts[&r];
        ++met;
        if (!v.known || v.counter != r.counter() || v.hash != r.content_hash()) {
          v = ScanCache::Verdict{};
          v.known = true;
          v.counter = r.counter();
          v.hash = r.content_hash();
          internal::Metadata md;
          if (internal::ScanMetadata(r.object_json(), md, /*unique_top_level=*/true) && p.selector.Matches(md.labels)) {
            v.governed = true;
            const auto ours = md.labels.find(kCopyLabel);
            v.ours = ours != md.labels.end() && ours->second == "true";
            for (const auto& qp : others) {
              const Policy& q = *qp;
              if (std::find(q.kinds.begin(), q.kinds.end(), r.kind()) != q.kinds.end() &&
                  q.selector.Matches(md.labels) && q.OlderThan(p)) {
                v.conflict = q.name;
                break;
              }
            }
          }
        }
        v.seen = pass_no;
        if (!v.governed) return true;
        const std::string wkey = std::string(r.kind()) + "/" + std::string(r.name());
        if (!v.conflict.empty()) {
          conflicts.push_back(wkey + " is also governed by the older policy " + v.conflict + ", which decides for it");
          return true;
        }
        governed[wkey][c] = Copy{&r, v.ours};
        return true;
      });
    }
    if (cache->verdicts.size() > 2 * met + 1024) {  // forget records no longer in the map
      std::erase_if(cache->verdicts, [&](const auto& e) { return e.second.seen != pass_no; });
    }
  }

  // Decide.
  std::vector<Decision> decisions;
  std::vector<std::string> degraded;
  std::map<std::string, Json> entries;
  size_t in_flight_count = in_flight.size();
  std::vector<std::pair<std::string, std::string>> cleanups;  // (cluster, "Kind/name")
  size_t away_from_home = 0;
  for (auto& [wkey, copies] : governed) {
    const std::string kind = wkey.substr(0, wkey.find('/'));
    const std::string name = wkey.substr(wkey.find('/') + 1);
    const std::string home = HomeOf(p.clusters, copies);
    std::string active, since, last_audit;
    if (auto e = p.entries.find(wkey); e != p.entries.end()) {
      active = e->second.value("activeCluster", "");
      since = e->second.value("since", "");
      last_audit = e->second.value("lastAudit", "");
    }
    if (auto c = completed.find(wkey); c != completed.end() && c->second->name != last_audit) {
      // A completed move the status does not show yet: unless the status
      // names a newer audit, the workload is where that move left it.
      const Audit* shown = nullptr;
      for (const auto& ap : audits) {
        if (ap->name == last_audit) shown = ap.get();
      }
      if (!shown || Newer(*c->second, *shown)) {
        active = c->second->to;
        last_audit = c->second->name;
      }
    }
    {
      std::lock_guard lock(mu_);
      const std::string mkey = p.key + "|" + wkey;
      if (auto m = memo_.find(mkey); m != memo_.end()) {
        if ((m->second.to == active && m->second.audit == last_audit) || steady_now - m->second.at > kMemoLifetime) {
          memo_.erase(m);  // the host shows it now
        } else {
          active = m->second.to;
          last_audit = m->second.audit;
          since = Stamp(m->second.since);
        }
      }
    }
    if (auto f = in_flight.find(wkey); f != in_flight.end() && f->second->to != active) {
      active = f->second->to;  // adopted from an audit a previous leader wrote
      last_audit = f->second->name;
    }
    if (active.empty() || std::find(p.clusters.begin(), p.clusters.end(), active) == p.clusters.end()) {
      active = DefaultActive(p.clusters, copies, home);
    }
    Json entry = {{"kind", kind}, {"name", name}, {"activeCluster", active}};
    if (!since.empty()) entry["since"] = since;
    if (!last_audit.empty()) entry["lastAudit"] = last_audit;
    entries[wkey] = entry;

    if (in_flight.contains(wkey)) continue;

    const Health& ha = health[active];
    auto ready_now = [&](const std::string& c) { return registry_.Exists(c) && health[c].status == "True"; };
    Decision d;
    d.wkey = wkey;
    d.kind = kind;
    d.name = name;
    d.from = active;
    // Trigger 1: the active cluster unhealthy for long enough.
    if (ha.known && ha.status != "True") {
      const SysTime crossed = ha.since + p.unhealthy;
      if (now >= crossed) {
        d.reason = "ClusterUnhealthy";
        d.trigger_cluster = active;
        d.crossed = crossed;
      } else {
        wake_at(crossed);
      }
    }
    // Trigger 2: no available replica there for long enough.
    const auto active_copy = copies.find(active);
    if (d.reason.empty() && p.unavailable.count() > 0 && active_copy != copies.end()) {
      const std::string ukey = p.key + "|" + wkey + "@" + active;
      std::lock_guard lock(mu_);
      if (Unavailable(active_copy->second.record->summary())) {
        auto [it, fresh] = unavailable_since_.try_emplace(ukey, s.time());
        const SysTime crossed = it->second + p.unavailable;
        if (now >= crossed) {
          d.reason = "WorkloadUnavailable";
          d.trigger_cluster = active;
          d.crossed = crossed;
        } else {
          wake_at(crossed);
        }
      } else {
        unavailable_since_.erase(ukey);
      }
    }
    if (!d.reason.empty()) {
      d.to = NextTarget(p.clusters, active, copies, d.reason == "WorkloadUnavailable", ready_now);
      if (d.to.empty()) {
        std::string states;
        for (const auto& c : p.clusters) {
          if (c == active) continue;
          states += (states.empty() ? "" : ", ") + c + ": " +
                    (registry_.Exists(c) ? health[c].status : std::string("not registered"));
        }
        degraded.push_back(wkey + ": " + active + " is failing (" + d.reason + ") and no other cluster in spec.clusters is Ready (" +
                           (states.empty() ? "none listed" : states) + ")");
        continue;
      }
    } else if (!home.empty() && home != active) {
      ++away_from_home;
      // Failback home: Automatic once home has been stable, or on request.
      const Health& hh = health[home];
      if (ready_now(home)) {
        const SysTime stable_at = hh.since + p.stable;
        if (p.failback_requested || (p.automatic && now >= stable_at)) {
          d.reason = "Failback";
          d.trigger_cluster = home;
          d.crossed = p.failback_requested ? now : stable_at;
          d.to = home;
        } else if (p.automatic) {
          wake_at(stable_at);
        }
      }
    }
    if (!d.reason.empty()) {
      // The manifest: the active copy, else the first copy in the policy's order.
      if (auto a = copies.find(active); a != copies.end()) d.source = a->second.record;
      for (const auto& c : p.clusters) {
        if (d.source != nullptr) break;
        if (auto it = copies.find(c); it != copies.end()) d.source = it->second.record;
      }
      if (auto t = copies.find(d.to); t != copies.end() && !t->second.ours) d.existing_on_target = t->second.record;
      decisions.push_back(std::move(d));
      continue;
    }
    // Make before break: remove copies kubefold made elsewhere once the active one is available.
    if (active_copy != copies.end() && Available(active_copy->second.record->summary())) {
      for (const auto& [c, copy] : copies) {
        if (c == active || !copy.ours || !ready_now(c)) continue;
        internal::Metadata md;
        (void)internal::ScanMetadata(copy.record->object_json(), md);
        const auto pol = md.annotations.find(kPolicyAnnotation);
        if (pol != md.annotations.end() && pol->second == p.key) cleanups.emplace_back(c, wkey);
      }
    }
  }

  // Act, within the in-flight cap.
  const size_t room = in_flight_count >= static_cast<size_t>(p.max_in_flight)
                          ? 0
                          : static_cast<size_t>(p.max_in_flight) - in_flight_count;
  size_t deferred = 0;
  if (decisions.size() > room) {
    deferred = decisions.size() - room;
    decisions.resize(room);
    wake_at(now + std::chrono::seconds(1));
  }
  std::map<std::tuple<std::string, std::string, std::string>, std::vector<Decision*>> groups;
  for (auto& d : decisions) groups[{d.from, d.to, d.reason}].push_back(&d);
  for (auto& group_entry : groups) {
    // Named variables, not structured bindings: lambdas below capture them
    // (clang 14, which builds the fuzz targets, refuses captured bindings).
    const std::string& from = std::get<0>(group_entry.first);
    const std::string& to = std::get<1>(group_entry.first);
    const std::string& reason = std::get<2>(group_entry.first);
    std::vector<Decision*>& members = group_entry.second;
    // A failover whose audit could not be written (refused, host down) is
    // retried with backoff, not on every event: each try re-applies the
    // workloads on the target.
    const std::string retry_key = p.key + "|" + from + "|" + to;
    unsigned attempt = 0;
    {
      std::lock_guard lock(mu_);
      auto held = audit_retry_.find(retry_key);
      if (held != audit_retry_.end()) {
        if (steady_now < held->second.not_before) {
          wake_at(now + std::chrono::duration_cast<SysTime::duration>(held->second.not_before - steady_now));
          continue;
        }
        attempt = held->second.attempts;
      }
    }
    // Retried from the same snapshot, a failover gets a new audit name per
    // attempt (the first attempt's name depends on the snapshot only, so a
    // pass repeated before the informer shows the audit finds it existing).
    std::string seed = p.key + "|" + from + "|" + to + "|" + reason + "|" + std::to_string(s.seq()) + "|" +
                       std::to_string(s.store_id()) + (attempt > 0 ? "|attempt " + std::to_string(attempt) : "");
    for (const Decision* d : members) seed += "|" + d->wkey;
    const std::string audit_name = AuditName(p.name, to, seed);
    auto client = registry_.Client(to);
    std::vector<Json> results(members.size());
    std::vector<size_t> to_apply;  // indexes into members
    const Status ns_ready = client ? EnsureNamespace(to, *client, p.ns) : Status::Ok();
    for (size_t i = 0; i < members.size(); ++i) {
      const Decision* d = members[i];
      Json& w = results[i];
      w = {{"kind", d->kind}, {"namespace", p.ns}, {"name", d->name}};
      if (d->existing_on_target != nullptr) {  // there, and not ours
        w["action"] = "Unchanged";
        w["message"] = "already on " + to + ", not created by kubefold; left as it is";
      } else if (!client) {
        w["action"] = "Failed";
        w["message"] = "cluster " + to + " is not connected";
      } else if (!ns_ready.ok()) {
        w["action"] = "Failed";
        w["message"] = "namespace " + p.ns + ": " + ns_ready.message();
      } else {
        to_apply.push_back(i);
      }
    }
    // The applies go out concurrently (each is one request of a few ms; in
    // sequence the tenth would wait for nine), within the cluster's rate limit.
    auto apply_one = [&](size_t i) {
      const Decision* d = members[i];
      Json& w = results[i];
      Json manifest = Json::parse(d->source->object_json(), nullptr, false);
      if (manifest.is_discarded() || !manifest.is_object()) {
        w["action"] = "Failed";
        w["message"] = "the stored manifest is not a JSON object";
        return;
      }
      manifest = internal::PruneClusterLocal(std::move(manifest));
      Json& meta = manifest["metadata"];
      meta["namespace"] = p.ns;
      meta["labels"][kCopyLabel] = "true";
      meta["annotations"][kPolicyAnnotation] = p.key;
      meta["annotations"][kAuditAnnotation] = audit_name;
      meta["annotations"][kSourceAnnotation] = from;
      const std::string path = kube::ResourcePath("apps", "v1", WorkloadResource(d->kind), p.ns) + "/" + d->name;
      if (options_.on_apply) options_.on_apply(p.ns + "/" + d->wkey, to, d->crossed);
      auto r = client->Patch(path, manifest.dump(),
                             {.type = kube::PatchType::kApply, .field_manager = kFieldManager, .force = false});
      std::lock_guard lock(mu_);
      if (r.ok()) {
        w["action"] = "Applied";
        ++stats_.applied;
      } else {
        w["action"] = "Failed";
        w["message"] = r.status().message();
        ++stats_.apply_failures;
      }
    };
    const size_t parallel = std::min<size_t>(kApplyParallelism, to_apply.size());
    if (parallel <= 1) {
      for (size_t i : to_apply) apply_one(i);
    } else {
      std::atomic<size_t> next{0};
      std::vector<std::thread> appliers;
      for (size_t t = 0; t < parallel; ++t) {
        appliers.emplace_back([&] {
          for (size_t k = next++; k < to_apply.size(); k = next++) apply_one(to_apply[k]);
        });
      }
      for (auto& t : appliers) t.join();
    }
    Json workloads = Json::array();
    size_t applied = 0;
    for (auto& w : results) {
      if (w["action"] != "Failed") {
        ++applied;
      } else {
        ++t_pass_errors;
      }
      workloads.push_back(std::move(w));
    }
    // The audit: before = S, pinned and durable.
    auto pinned = store_.Pin(s.seq());
    MakeDurable("policy " + p.key + ": audit " + audit_name, s.seq());
    Json audit = {
        {"apiVersion", std::string(kGroup) + "/" + kVersion},
        {"kind", "FailoverAudit"},
        {"metadata", {{"name", audit_name}, {"namespace", p.ns}, {"labels", {{kPolicyAnnotation, p.name}}}}},
        {"spec",
         {{"policy", p.name},
          {"trigger", {{"cluster", members.front()->trigger_cluster}, {"reason", reason},
                       {"observedTime", Stamp(members.front()->crossed)}}},
          {"from", from},
          {"to", to},
          {"workloads", workloads},
          {"before", {{"seq", s.seq()}, {"vector", Json::parse(s.vector().ToJson())}, {"time", Stamp(s.time())}}}}}};
    auto created = host_.Create(kube::ResourcePath(kGroup, kVersion, "failoveraudits", p.ns), audit.dump());
    const std::string audit_key = ObjectKey(p.ns, audit_name);
    if (!created.ok() && created.status().code() != StatusCode::kAlreadyExists) {
      std::chrono::milliseconds delay;
      {
        std::lock_guard lock(mu_);
        delay = BackOff(audit_retry_[retry_key], steady_now);
      }
      LogError("policy " + p.key + ": audit " + audit_name + ": " + created.status().ToString() + " (next try in " +
               std::to_string(delay.count() / 1000) + "s)");
      if (pinned.ok()) (void)store_.Unpin(s.seq());
      wake_at(now + delay);
      continue;  // the next pass decides again; the applies were idempotent
    }

    if (pinned.ok()) KeepPin(audit_key, s.seq());
    {
      std::lock_guard lock(mu_);
      ++stats_.audits_created;
    }
    const bool any = applied > 0;
    Json st = {{"status",
                {{"phase", any ? "InProgress" : "Failed"},
                 {"conditions",
                  internal::SetConditions(
                      Json::array(),
                      {any ? internal::Condition{"Completed", "False", "WaitingForAvailability",
                                                 "waiting for the workloads to be available on " + to}
                           : internal::Condition{"Completed", "False", "NothingApplied",
                                                 "no workload could be applied to " + to}},
                      0, now)}}}};
    auto stw = host_.Patch(kube::ResourcePath(kGroup, kVersion, "failoveraudits", p.ns) + "/" + audit_name + "/status",
                           st.dump(), kube::PatchOptions{});
    if (!stw.ok()) LogError("audit " + audit_key + ": status: " + stw.status().ToString());
    events_.Record(ref, any ? "Normal" : "Warning", any ? "FailoverStarted" : "FailoverFailed",
                   reason + ": " + std::to_string(members.size()) + " workload(s) from " + from + " to " + to +
                       " (audit " + audit_name + ")");
    Log("policy " + p.key + ": " + reason + " " + from + " -> " + to + ", " + std::to_string(members.size()) +
        " workload(s), audit " + audit_name);
    if (!any) {
      // Created Failed: it finishes now, and counts as a failed failover.
      std::lock_guard lock(mu_);
      ++stats_.audits_failed;
    }
    if (!any && options_.on_finished) {
      options_.on_finished(p.key, from, to, "failed",
                           std::max(0.0, std::chrono::duration<double>(now - members.front()->crossed).count()));
    }
    std::lock_guard lock(mu_);
    size_t failed = 0;
    for (size_t i = 0; i < members.size(); ++i) {
      const Decision* d = members[i];
      // A workload whose apply failed has not moved: it keeps its active
      // cluster, and the next try (with backoff, below) decides again.
      if (workloads[i].value("action", "") == "Failed") {
        ++failed;
        entries[d->wkey]["lastAudit"] = audit_name;
        continue;
      }
      memo_[p.key + "|" + d->wkey] = Memo{to, audit_name, now, steady_now};
      entries[d->wkey]["activeCluster"] = to;
      entries[d->wkey]["since"] = Stamp(now);
      entries[d->wkey]["lastAudit"] = audit_name;
    }
    if (failed > 0) {
      wake_at(now + BackOff(audit_retry_[retry_key], steady_now));
    } else {
      audit_retry_.erase(retry_key);
    }
  }

  for (const auto& [c, wkey] : cleanups) {
    auto client = registry_.Client(c);
    if (!client) continue;
    const std::string kind = wkey.substr(0, wkey.find('/'));
    const std::string name = wkey.substr(wkey.find('/') + 1);
    auto r = client->Delete(kube::ResourcePath("apps", "v1", WorkloadResource(kind), p.ns) + "/" + name);
    if (r.ok() || r.status().code() == StatusCode::kNotFound) {
      std::lock_guard lock(mu_);
      ++stats_.deleted_copies;
      Log("policy " + p.key + ": removed kubefold's copy of " + wkey + " on " + c + " (the active copy is available)");
    } else {
      LogError("policy " + p.key + ": removing the copy of " + wkey + " on " + c + ": " + r.status().ToString());
    }
  }

  // Conditions and status.
  if (!p.invalid_field.empty()) {
    conds.push_back({"Ready", "False", "InvalidSpec", p.invalid_field});
  } else if (!unknown.empty()) {
    conds.push_back({"Ready", "False", "UnknownCluster", unknown});
  } else {
    conds.push_back({"Ready", "True", "Reconciled",
                     std::to_string(governed.size()) + " workload(s) governed"});
  }
  std::sort(conflicts.begin(), conflicts.end());
  conflicts.erase(std::unique(conflicts.begin(), conflicts.end()), conflicts.end());
  conds.push_back(conflicts.empty() ? internal::Condition{"Conflict", "False", "NoConflict", "no overlap with other policies"}
                                    : internal::Condition{"Conflict", "True", "OverlappingPolicies", conflicts.front() +
                                          (conflicts.size() > 1 ? " (and " + std::to_string(conflicts.size() - 1) + " more)" : "")});
  conds.push_back(degraded.empty()
                      ? internal::Condition{"Degraded", "False", deferred > 0 ? "Throttled" : "Healthy",
                                            deferred > 0 ? std::to_string(deferred) + " failover(s) wait for spec.maxInFlight"
                                                         : "every governed workload has a healthy place"}
                      : internal::Condition{"Degraded", "True", "NoHealthyCluster", degraded.front() +
                                            (degraded.size() > 1 ? " (and " + std::to_string(degraded.size() - 1) + " more)" : "")});
  for (const auto& c : conds) {
    if (c.status == "True" && (c.type == "Conflict" || c.type == "Degraded")) {
      events_.Record(ref, "Warning", c.reason, c.message);
    } else if (c.type == "Ready" && c.status == "False") {
      events_.Record(ref, "Warning", c.reason, c.message);
    }
  }
  Json workloads = Json::array();
  for (auto& [wkey, e] : entries) workloads.push_back(std::move(e));
  Json status = {{"observedGeneration", p.generation},
                 {"conditions", internal::SetConditions(p.status.value("conditions", Json::array()), conds,
                                                        p.generation, now)},
                 {"workloads", workloads}};
  const std::string body = Json{{"status", status}}.dump();
  bool write;
  {
    std::lock_guard lock(mu_);
    // Compare without the timestamps SetConditions keeps stable anyway.
    write = last_status_[key] != body;
    if (write) last_status_[key] = body;
  }
  if (write) {
    auto r = host_.Patch(kube::ResourcePath(kGroup, kVersion, "failoverpolicies", p.ns) + "/" + p.name + "/status",
                         body, kube::PatchOptions{});
    if (!r.ok()) {
      std::lock_guard lock(mu_);
      last_status_.erase(key);
      LogError("policy " + p.key + ": status: " + r.status().ToString());
      wake_at(now + std::chrono::seconds(1));
    }
  }
  if (p.failback_requested) {
    bool failed_back = false;
    for (const auto& d : decisions) failed_back = failed_back || d.reason == "Failback";
    if (failed_back || away_from_home == 0) {
      // Honoured (or nothing is away from home): the request is cleared.
      Json patch = {{"metadata", {{"annotations", {{kFailbackAnnotation, nullptr}}}}}};
      auto r = host_.Patch(kube::ResourcePath(kGroup, kVersion, "failoverpolicies", p.ns) + "/" + p.name,
                           patch.dump(), kube::PatchOptions{});
      if (!r.ok()) LogError("policy " + p.key + ": clearing " + kFailbackAnnotation + ": " + r.status().ToString());
    } else {
      wake_at(now + std::chrono::seconds(1));  // home is not Ready yet: the request waits
    }
  }
  if (!in_flight.empty() || !decisions.empty()) wake_at(now + std::chrono::milliseconds(500));
  // Scheduled from now, not from the pass's start: a long pass must not
  // delay the next deadline by its own duration.
  const auto spent = std::chrono::steady_clock::now() - steady_now;
  t_requeue_after = next_wake < now + options_.resync;
  queue_.AddAfter(key, std::chrono::duration_cast<std::chrono::nanoseconds>(next_wake - now) - spent);
}

std::optional<AuditView> FailoverReconciler::FindAudit(const std::string& ns, const std::string& name) {
  if (!audits_) return std::nullopt;
  const ObjectPtr o = audits_->Get(ObjectKey(ns, name));
  if (!o) return std::nullopt;
  const auto a = ParsedAudit(*o);
  if (!a) return std::nullopt;
  AuditView v;
  v.ns = a->ns;
  v.name = a->name;
  v.policy = a->policy;
  v.from = a->from;
  v.to = a->to;
  v.reason = a->reason;
  v.phase = a->phase.empty() ? "InProgress" : a->phase;
  v.before_seq = a->before_seq;
  v.before_vector = a->before_vector;
  if (a->has_after) {
    v.after_seq = a->after_seq;
    v.after_vector = a->after_vector;
  }
  return v;
}

std::map<std::string, size_t> FailoverReconciler::CountAudits() {
  std::map<std::string, size_t> out = {{"InProgress", 0}, {"Completed", 0}, {"Failed", 0}};
  if (!audits_) return out;
  for (const auto& o : audits_->List()) {
    if (auto a = ParsedAudit(*o)) ++out[a->phase.empty() ? "InProgress" : a->phase];
  }
  return out;
}

std::map<uint64_t, std::vector<std::string>> FailoverReconciler::PinnedBy() const {
  std::map<uint64_t, std::vector<std::string>> out;
  std::lock_guard lock(mu_);
  for (const auto& [audit, seqs] : pins_) {
    for (uint64_t seq : seqs) out[seq].push_back(audit);
  }
  return out;
}

Result<WhatIfResult> FailoverReconciler::WhatIf(const std::string& cluster) {
  if (!registry_.Exists(cluster)) return NotFound("no MemberCluster named \"" + cluster + "\"");
  if (!registry_.synced() || !synced()) return kubefold::Unavailable("the operator's caches have not synced yet");
  WhatIfResult out;
  out.snapshot = store_.Current();
  const state::Snapshot& s = out.snapshot;
  std::vector<std::shared_ptr<const Policy>> policies;
  for (const auto& o : policies_->List()) {
    auto p = ParsedPolicy(*o);
    if (p->invalid_field.empty()) policies.push_back(std::move(p));
  }
  std::sort(policies.begin(), policies.end(), [](const auto& a, const auto& b) { return a->key < b->key; });
  for (const auto& pp : policies) {
    const Policy& p = *pp;
    if (std::find(p.clusters.begin(), p.clusters.end(), cluster) == p.clusters.end()) continue;
    ++out.policies;
    // Health as S records it, with `cluster` failed.
    std::map<std::string, bool> ready;
    for (const auto& c : p.clusters) {
      bool r = false;
      if (const state::Record* h = FreshHealth(s, c)) {
        if (auto rec = ParseHealthRecord(h->object_json())) r = rec->condition.status == "True";
      }
      ready[c] = r && c != cluster && registry_.Exists(c);
    }
    // Audits in progress name the active cluster of their workloads.
    std::map<std::string, std::string> in_flight;  // "Kind/name" -> to
    for (const auto& o : audits_->List()) {
      if (o->ns != p.ns) continue;
      if (auto a = ParsedAudit(*o); a && a->policy == p.name && a->InProgress()) {
        for (const auto& w : a->workloads) in_flight[w.kind + "/" + w.name] = a->to;
      }
    }
    std::vector<std::shared_ptr<const Policy>> older;  // conflicts: the older policy decides
    for (const auto& q : policies) {
      if (q->ns == p.ns && q->name != p.name && q->OlderThan(p)) older.push_back(q);
    }
    std::map<std::string, Copies> governed;
    for (const auto& c : p.clusters) {
      s.ForEachWorkload(c, p.ns, [&](const state::WorkloadRef& w) {
        const state::Record& r = *w.record;
        if (r.group() != "apps" || std::find(p.kinds.begin(), p.kinds.end(), r.kind()) == p.kinds.end()) return true;
        internal::Metadata md;
        if (!internal::ScanMetadata(r.object_json(), md, /*unique_top_level=*/true) || !p.selector.Matches(md.labels)) {
          return true;
        }
        for (const auto& q : older) {
          if (std::find(q->kinds.begin(), q->kinds.end(), r.kind()) != q->kinds.end() && q->selector.Matches(md.labels)) {
            return true;
          }
        }
        const auto ours = md.labels.find(kCopyLabel);
        governed[std::string(r.kind()) + "/" + std::string(r.name())][c] =
            Copy{&r, ours != md.labels.end() && ours->second == "true"};
        return true;
      });
    }
    for (const auto& [wkey, copies] : governed) {
      std::string active;
      if (auto f = in_flight.find(wkey); f != in_flight.end()) {
        active = f->second;
      } else if (auto e = p.entries.find(wkey); e != p.entries.end()) {
        active = e->second.value("activeCluster", "");
      }
      if (active.empty() || std::find(p.clusters.begin(), p.clusters.end(), active) == p.clusters.end()) {
        active = DefaultActive(p.clusters, copies, HomeOf(p.clusters, copies));
      }
      if (active != cluster) continue;
      WhatIfMove m;
      m.policy = p.key;
      m.ns = p.ns;
      m.kind = wkey.substr(0, wkey.find('/'));
      m.name = wkey.substr(wkey.find('/') + 1);
      m.from = active;
      m.to = NextTarget(p.clusters, active, copies, false, [&](const std::string& c) { return ready[c]; });
      if (m.to.empty()) {
        m.action = "None";
        m.reason = "no other cluster in spec.clusters is Ready; the policy would report Degraded";
      } else if (auto t = copies.find(m.to); t != copies.end() && !t->second.ours) {
        m.action = "Unchanged";
        m.reason = m.to + " already holds " + m.kind + " " + m.ns + "/" + m.name +
                   ", which kubefold did not create and leaves alone; it becomes the active copy";
      } else {
        m.action = "Apply";
        m.reason = "server-side apply of the last known manifest to " + m.to + ", the next Ready cluster in order";
      }
      out.moves.push_back(std::move(m));
    }
  }
  return out;
}

}  // namespace kubefold::controllers
