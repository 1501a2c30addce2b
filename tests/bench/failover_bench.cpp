// failover_bench: how fast kubefold fails over once a cluster has been
// unhealthy for the policy's threshold, with N member clusters × W
// Deployments each, and how much memory the operator needs to hold them.
//
// Set-up, per size (benchmark arguments: clusters, workloads per cluster):
//   * kube-emulator runs in a forked child process (as in watch_bench), so
//     its CPU and memory are not the operator's: clusters "host" and
//     c0..c(N-1), written into the child's object stores before anyone
//     connects. Each member holds W realistic Deployments
//     (deployment_fixture.h, ~4.4 KB with managedFields) in namespace
//     "shop": the same "checkout-NNNNN" apps on every cluster, plus, on
//     cluster k mod N, the kGoverned workloads trial k fails over
//     ("failover-tKKK-JJ", labelled kubefold-bench/trial=tKKK), which count
//     towards W.
//   * kubefold's CRDs are applied to the host with kubectl; the Secrets
//     (kubeconfigs) and MemberClusters (probes every 1 s, failureThreshold 1,
//     grace 1 s) are created over REST.
//   * kubefold::Operator runs in this process with leader election off and
//     the kubefold binary's default client limits (host 20 QPS / burst 30;
//     member 50 / 100). FailoverOptions.on_apply records, for every apply
//     request, now − the threshold-crossing time the reconciler passes in.
//   * This process also plays two parts a real cluster would: a Deployment
//     controller on every member (a reflector on kubefold's copies that
//     marks each one rolled out through /status as soon as it appears), and
//     an observer of FailoverAudits on the host (a reflector noting when
//     each audit's status.phase first reads Completed).
//
// Memory: VmRSS of this process once every cluster is synced (and the
// folder flushed, which includes the folder's release of the relists'
// freed pages, FolderOptions::release_after_relisted), minus VmRSS just
// before the operator started, per workload (N × W) — as measured, and
// again after the allocator hands its free pages back (ReleaseFreedMemory,
// tests/bench/heap.h: what is live rather than what the allocator keeps) —
// plus the allocator's bytes in use
// (HeapInUse: every thread and arena), the store's own accounting
// (Store::Stats) and the pruned JSON of the workloads (payload), which the
// store keeps compressed (state/object_codec.h) unless
// KUBEFOLD_COMPRESS_OBJECTS=0 (the kubefold binary's --compress-objects).
//
// KUBEFOLD_HEAP_PROFILE=<file> (with MALLOC_CONF=prof:true) writes jemalloc's
// heap profile at sync to <file>, for jeprof.
//
// Trials (the third argument, or KUBEFOLD_FAILOVER_TRIALS): trial k first
// waits until the emulator counts the target's watches open again (the
// operator's reflectors keep client-go's backoff, up to 60 s, after an
// earlier trial partitioned that cluster; recovery_wait_s), then creates a
// fresh FailoverPolicy over its kGoverned workloads (clusters listed from
// c(k mod N) round the ring, so the target is c(k+1 mod N);
// trigger.clusterUnhealthySeconds 1, maxInFlight = kGoverned), waits for
// the policy's status to name the home cluster, partitions the home cluster
// through the emulator's control endpoint, and waits for the applies and
// the audit's completion; then heals, deletes the policy, the copies and
// the audits, and waits until the store shows the home Ready again and the
// copies gone, so trials are independent.
//
// Reported as counters (one benchmark iteration = all trials):
//   apply_p50_ms / apply_p99_ms / apply_max_ms  threshold crossed → apply
//       request issued, every apply of every trial one sample (apply_samples)
//   first_apply_p50_ms      the same for the first apply of each trial only
//                           (wake-up and pass cost, without earlier applies),
//                           split into:
//     wake_p50_ms / wake_max_ms  threshold crossed → start of the pass that
//                           applied (FailoverOptions.clock is read once per
//                           pass, at its start; the bench's clock notes the
//                           time and returns system_clock::now unchanged)
//     decide_p50_ms         that pass's start → its first apply
//   apply_gap_p50_ms        mean time between successive applies of a pass
//   audit_p50_ms / audit_p99_ms / audit_max_ms  threshold crossed → the
//       audit's status.phase == Completed seen on the host (audit_samples:
//       one per audit). Includes this process's rollout of the copies.
//   detect_p50_ms           partition → the health record's change (the
//                           probe period's share, before the threshold)
//   scan_ms                 baseline: the pass's scan for governed workloads
//                           (every workload of the namespace on the policy's
//                           clusters: metadata scan + selector) timed alone
//                           on the synced snapshot, median of 5; walk_ms:
//                           the same records visited without the scan
//   passes_per_trial        reconciler passes during the trials / trials
//   recovery_wait_s         total time trials waited for the target's watches
//   rss_B_per_workload, rss_trimmed_B_per_workload (at sync),
//   rss_end_trimmed_B_per_workload (after the trials), heap_B_per_workload
//   and heap_end_B_per_workload (malloc in use), store_B_per_workload
//   (current tree: records + nodes), store_live_B_per_workload (with
//   history), payload_B_per_workload (pruned JSON), compressed_share (of
//   the workloads' records, those kept compressed), sync_s (operator start
//   → synced),
//   populate_s (the emulator child loading its stores), folder_releases
//   (the folder's own ReleaseFreedMemory calls after large relists: one per
//   member at sync, more if a trial's heal relists).
//
// KUBEFOLD_FAILOVER_TRACE=1 prints each trial to stderr: its first apply
// (wake-up and pass), the mean gap between its applies, and its last apply.
#include <benchmark/benchmark.h>

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/health.h"
#include "controllers/internal/json_scan.h"
#include "controllers/kube/http_transport.h"
#include "controllers/kube/internal/base64.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/reflector.h"
#include "controllers/kube/rest_client.h"
#include "controllers/label_selector.h"
#include "operator/operator.h"
#include "tests/bench/deployment_fixture.h"
#include "tests/bench/heap.h"
#include "tests/controllers/emulator_client.h"
#include "tests/emulator/emulator.h"

namespace {

namespace emu = kubefold::emulator;
namespace kube = kubefold::kube;
namespace ctl = kubefold::controllers;
namespace state = kubefold::state;
using Json = nlohmann::json;
using SysClock = std::chrono::system_clock;
using SysTime = SysClock::time_point;
using namespace std::chrono_literals;
using kubefold::testing::Eventually;

constexpr int kGoverned = 10;  // workloads per trial (and the policy's maxInFlight)
constexpr char kNs[] = "shop";
constexpr char kTrialLabel[] = "kubefold-bench/trial";
constexpr auto kUnhealthy = 1s;  // trigger.clusterUnhealthySeconds

// The benchmark's third argument, unless KUBEFOLD_FAILOVER_TRIALS says otherwise.
int Trials(int64_t fallback) {
  const char* env = std::getenv("KUBEFOLD_FAILOVER_TRIALS");
  const int n = env != nullptr ? std::atoi(env) : 0;
  return n > 0 ? n : static_cast<int>(fallback);
}

std::string Printf(const char* format, int a, int b = 0) {
  char buf[64];
  std::snprintf(buf, sizeof buf, format, a, b);
  return buf;
}
std::string TrialTag(int trial) { return Printf("t%03d", trial); }
std::string TrialWorkload(int trial, int j) { return Printf("failover-t%03d-%02d", trial, j); }
std::string PolicyName(int trial) { return Printf("bench-t%03d", trial); }
std::string MemberName(int i) { return Printf("c%d", i); }

double Ms(std::chrono::nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

// Nearest-rank percentile of `v` (q in (0, 1]); 0 for no samples.
double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
  return v[std::clamp<size_t>(rank, 1, v.size()) - 1];
}

// VmRSS of this process in bytes.
double RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stod(line.substr(6)) * 1024.0;
  }
  return 0;
}

// Bytes the allocator has handed out and not had back (tests/bench/heap.h).
double HeapInUseBytes() { return static_cast<double>(kubefold::bench::HeapInUse()); }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

kube::RestConfig ConfigFrom(const std::string& kubeconfig, const std::string& origin) {
  auto parsed = kube::ParseKubeconfig(kubeconfig, origin);
  if (!parsed.ok()) throw std::runtime_error(parsed.status().ToString());
  auto resolved = kube::ResolveContext(*parsed);
  if (!resolved.ok()) throw std::runtime_error(resolved.status().ToString());
  return *resolved;
}

void Check(const kubefold::Result<std::string>& r, const std::string& what) {
  if (!r.ok()) throw std::runtime_error(what + ": " + r.status().ToString());
}

// Length-prefixed blobs over a pipe (child → parent).
void SendBlob(int fd, const std::string& data) {
  const std::uint64_t n = data.size();
  if (::write(fd, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) std::_Exit(3);
  for (size_t done = 0; done < data.size();) {
    const ssize_t w = ::write(fd, data.data() + done, data.size() - done);
    if (w <= 0) std::_Exit(3);
    done += static_cast<size_t>(w);
  }
}

std::string ReceiveBlob(int fd) {
  std::uint64_t n = 0;
  if (::read(fd, &n, sizeof n) != static_cast<ssize_t>(sizeof n)) throw std::runtime_error("emulator process died");
  std::string data(n, '\0');
  for (size_t done = 0; done < n;) {
    const ssize_t r = ::read(fd, data.data() + done, n - done);
    if (r <= 0) throw std::runtime_error("emulator process died");
    done += static_cast<size_t>(r);
  }
  return data;
}

// What the emulator holds: `clusters` members × `per_cluster` Deployments,
// trial k's workloads on member k mod clusters.
struct Population {
  int clusters = 0;
  int per_cluster = 0;
  int trials = 0;
  int HomeOf(int trial) const { return trial % clusters; }
  int TrialWorkloadsOn(int member) const {
    int n = 0;
    for (int k = 0; k < trials; ++k) n += HomeOf(k) == member ? kGoverned : 0;
    return n;
  }
};

// kube-emulator in a child process, loaded before it is first contacted.
// The child serves until the keep-alive pipe closes (or this process dies).
class EmulatorProcess {
 public:
  explicit EmulatorProcess(const Population& pop) {
    char tmpl[] = "/tmp/kubefold-failover-bench-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp");
    dir_ = tmpl;
    int to_parent[2], keepalive[2];
    if (::pipe(to_parent) != 0 || ::pipe(keepalive) != 0) throw std::runtime_error("pipe");
    child_ = ::fork();
    if (child_ < 0) throw std::runtime_error("fork");
    if (child_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      ::close(to_parent[0]);
      ::close(keepalive[1]);
      Serve(pop, dir_, to_parent[1], keepalive[0]);
    }
    ::close(to_parent[1]);
    ::close(keepalive[0]);
    keepalive_fd_ = keepalive[1];
    control_url_ = ReceiveBlob(to_parent[0]);
    populate_seconds_ = std::stod(ReceiveBlob(to_parent[0]));
    ::close(to_parent[0]);
  }
  ~EmulatorProcess() {
    ::close(keepalive_fd_);
    int status = 0;
    ::waitpid(child_, &status, 0);
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  EmulatorProcess(const EmulatorProcess&) = delete;
  EmulatorProcess& operator=(const EmulatorProcess&) = delete;

  const std::string& dir() const { return dir_; }
  const std::string& control_url() const { return control_url_; }
  double populate_seconds() const { return populate_seconds_; }
  std::string Kubeconfig(const std::string& cluster) const { return ReadFile(dir_ + "/" + cluster + ".kubeconfig"); }

 private:
  [[noreturn]] static void Serve(const Population& pop, const std::string& dir, int out, int keepalive) {
    const auto t0 = std::chrono::steady_clock::now();
    emu::EmulatorOptions options;
    options.clusters = {"host"};
    for (int i = 0; i < pop.clusters; ++i) options.clusters.push_back(MemberName(i));
    options.dir = dir;
    options.control_port = 0;
    options.cluster.max_events = std::max<size_t>(100000, 2 * static_cast<size_t>(pop.per_cluster));
    emu::Emulator emulator(options);
    auto put = [&](int member, emu::Json object, int serial) {
      char uid[48];
      std::snprintf(uid, sizeof uid, "5f0c8a43-%04x-4b7a-9d51-%012x", member, serial);
      object["metadata"]["uid"] = uid;
      const std::string name = object["metadata"]["name"];
      emulator.cluster(MemberName(member)).store().Mutate("apps/deployments", kNs, name, [&](const emu::ObjectPtr&) {
        return emu::Mutation::Put(std::move(object));
      });
    };
    // The shared apps: one template each, stored on every member that has room.
    std::vector<int> bulk(static_cast<size_t>(pop.clusters));
    for (int m = 0; m < pop.clusters; ++m) bulk[static_cast<size_t>(m)] = pop.per_cluster - pop.TrialWorkloadsOn(m);
    const int most = *std::max_element(bulk.begin(), bulk.end());
    for (int i = 0; i < most; ++i) {
      const emu::Json object = emu::Json::parse(kubefold::bench::DeploymentObject(i).dump());
      for (int m = 0; m < pop.clusters; ++m) {
        if (i < bulk[static_cast<size_t>(m)]) put(m, object, i);
      }
    }
    // Each trial's workloads, on its home cluster only.
    for (int k = 0; k < pop.trials; ++k) {
      for (int j = 0; j < kGoverned; ++j) {
        std::string text = kubefold::bench::DeploymentObject(j).dump();
        const std::string from = Printf("checkout-%05d", j);
        const std::string to = TrialWorkload(k, j);
        for (size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) {
          text.replace(at, from.size(), to);
        }
        emu::Json object = emu::Json::parse(text);
        object["metadata"]["labels"][kTrialLabel] = TrialTag(k);
        put(pop.HomeOf(k), std::move(object), 1000000 + k * kGoverned + j);
      }
    }
    SendBlob(out, emulator.control_url());
    SendBlob(out, std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()));
    ::close(out);
    char byte;
    while (::read(keepalive, &byte, 1) > 0) {
    }
    std::_Exit(0);  // the OS reclaims the stores faster than their destructors
  }

  std::string dir_;
  pid_t child_ = -1;
  int keepalive_fd_ = -1;
  std::string control_url_;
  double populate_seconds_ = 0;
};

// A reflector on its own thread, stopped and joined on destruction. The
// bench's own watchers retry quickly after a partition heals (the
// operator's keep client-go's backoff), so they are never what a trial
// waits for.
class Watcher {
 public:
  Watcher(kube::RestClient& client, kube::ReflectorOptions options, std::function<void(kube::ReflectorEvent&&)> sink) {
    options.backoff = {.initial = 100ms, .cap = 1s, .reset_after = 5s, .factor = 2.0, .jitter = 0.2};
    kube::ReflectorHooks hooks;
    hooks.sink = std::move(sink);
    hooks.authorize = [&client](kube::HttpRequest& r) { return client.Authorize(r); };
    hooks.log = [](std::string_view) {};
    reflector_ = std::make_unique<kube::Reflector>(client.transport(), std::move(options), std::move(hooks));
    thread_ = std::thread([this] { reflector_->Run(); });
  }
  ~Watcher() {
    reflector_->Stop();
    thread_.join();
  }
  Watcher(const Watcher&) = delete;
  Watcher& operator=(const Watcher&) = delete;

 private:
  std::unique_ptr<kube::Reflector> reflector_;
  std::thread thread_;
};

// Plays the Deployment controller of one member cluster for kubefold's
// copies: each one is reported rolled out (observedGeneration = generation,
// every replica available) through /status as soon as it is seen.
class Rollouts {
 public:
  explicit Rollouts(std::shared_ptr<kube::RestClient> client) : client_(std::move(client)) {
    kube::ReflectorOptions o;
    o.type = {"apps", "v1", "Deployment"};
    o.resource = "deployments";
    o.namespace_name = kNs;
    o.label_selector = std::string(ctl::kCopyLabel) + "=true";
    watcher_ = std::make_unique<Watcher>(*client_, o, [this](kube::ReflectorEvent&& e) {
      if (e.type == kube::ReflectorEventType::kReplace) {
        for (const auto& obj : e.objects) Roll(obj);
      } else if (e.type == kube::ReflectorEventType::kAdded || e.type == kube::ReflectorEventType::kModified) {
        Roll(e.object);
      }
    });
  }

 private:
  void Roll(const kube::DecodedObject& o) {
    const auto& s = o.workload.summary;
    const int64_t generation = s.generation == state::WorkloadSummary::kUnset ? 1 : s.generation;
    const int32_t replicas = s.desired_replicas < 0 ? 1 : s.desired_replicas;
    if (s.observed_generation >= generation && s.available_replicas >= replicas) return;
    const Json patch = {{"status",
                         {{"observedGeneration", generation},
                          {"replicas", replicas},
                          {"updatedReplicas", replicas},
                          {"readyReplicas", replicas},
                          {"availableReplicas", replicas}}}};
    const std::string path =
        kube::ResourcePath("apps", "v1", "deployments", o.ns) + "/" + std::string(o.workload.key.name) + "/status";
    (void)client_->Patch(path, patch.dump(), kube::PatchOptions{});
  }

  std::shared_ptr<kube::RestClient> client_;
  std::unique_ptr<Watcher> watcher_;
};

// When each FailoverAudit on the host was first seen finished.
class AuditObserver {
 public:
  struct Audit {
    std::string policy;
    std::string phase;
    size_t workloads = 0;
    SysTime finished{};  // when phase first read Completed or Failed
  };

  explicit AuditObserver(kube::RestClient& host) {
    kube::ReflectorOptions o;
    o.type = {"kubefold.io", "v1alpha1", "FailoverAudit"};
    o.resource = "failoveraudits";
    o.namespace_name = kNs;
    watcher_ = std::make_unique<Watcher>(host, o, [this](kube::ReflectorEvent&& e) {
      if (e.type == kube::ReflectorEventType::kReplace) {
        for (const auto& obj : e.objects) Note(obj);
      } else if (e.type == kube::ReflectorEventType::kAdded || e.type == kube::ReflectorEventType::kModified) {
        Note(e.object);
      }
    });
  }

  std::vector<Audit> OfPolicy(const std::string& policy) const {
    std::lock_guard lock(mu_);
    std::vector<Audit> out;
    for (const auto& [name, a] : audits_) {
      if (a.policy == policy) out.push_back(a);
    }
    return out;
  }

 private:
  void Note(const kube::DecodedObject& o) {
    const SysTime now = SysClock::now();
    const Json j = Json::parse(o.workload.object_json, nullptr, false);
    if (!j.is_object()) return;
    std::lock_guard lock(mu_);
    Audit& a = audits_[std::string(o.workload.key.name)];
    const Json labels = j["metadata"].value("labels", Json::object());
    a.policy = labels.value(ctl::kPolicyAnnotation, "");
    const Json spec = j.value("spec", Json::object());
    a.workloads = spec.value("workloads", Json::array()).size();
    const Json status = j.value("status", Json::object());
    a.phase = status.value("phase", "");
    if ((a.phase == "Completed" || a.phase == "Failed") && a.finished == SysTime{}) a.finished = now;
  }

  std::unique_ptr<Watcher> watcher_;
  mutable std::mutex mu_;
  std::map<std::string, Audit> audits_;  // Guarded by mu_
};

// Every apply the reconciler announces.
struct ApplyLog {
  struct Apply {
    std::string workload;  // "ns/Kind/name"
    std::string to;
    SysTime crossed;
    SysTime at;
  };
  mutable std::mutex mu;
  std::vector<Apply> applies;  // Guarded by mu

  void Record(const std::string& workload, const std::string& to, SysTime crossed) {
    const SysTime now = SysClock::now();
    std::lock_guard lock(mu);
    applies.push_back({workload, to, crossed, now});
  }
  size_t size() const {
    std::lock_guard lock(mu);
    return applies.size();
  }
  std::vector<Apply> Since(size_t first) const {
    std::lock_guard lock(mu);
    return {applies.begin() + static_cast<std::ptrdiff_t>(std::min(first, applies.size())), applies.end()};
  }
};

// When each reconciler pass started: the reconciler reads its clock once,
// at the start of a pass (FailoverOptions.clock), so a clock that notes the
// time and returns it unchanged marks every pass without altering one.
struct PassLog {
  mutable std::mutex mu;
  std::vector<SysTime> starts;  // Guarded by mu

  SysTime Now() {
    const SysTime now = SysClock::now();
    std::lock_guard lock(mu);
    starts.push_back(now);
    return now;
  }
  // The latest pass start at or before `t` (epoch when none).
  SysTime LastAtOrBefore(SysTime t) const {
    std::lock_guard lock(mu);
    auto it = std::upper_bound(starts.begin(), starts.end(), t);
    return it == starts.begin() ? SysTime{} : *std::prev(it);
  }
};

// The operator's log, last lines kept for error reports.
struct LogTail {
  std::mutex mu;
  std::deque<std::string> lines;  // Guarded by mu
  void Add(std::string_view line) {
    std::lock_guard lock(mu);
    lines.emplace_back(line);
    if (lines.size() > 60) lines.pop_front();
  }
  std::string Text() {
    std::lock_guard lock(mu);
    std::string out;
    for (const auto& l : lines) out += l + "\n";
    return out;
  }
};

std::string Shell(const std::string& command, int* code) {
  std::string out;
  FILE* p = ::popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) throw std::runtime_error("popen " + command);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(p);
  *code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return out;
}

struct TrialResult {
  std::vector<double> apply_ms;  // threshold crossed -> each apply
  double first_apply_ms = 0;
  double wake_ms = 0;            // threshold crossed -> start of the pass that applied
  double decide_ms = 0;          // that pass's start -> its first apply
  double apply_gap_ms = 0;       // mean time between successive applies of the pass
  std::vector<double> audit_ms;  // threshold crossed -> audit Completed seen
  double detect_ms = 0;          // partition -> the health record's change
  double recovery_wait_s = 0;    // waiting for the target's watches before the trial
};

// One size: the emulator child, the host set up, the bench's own watchers,
// and the operator.
class World {
 public:
  explicit World(const Population& pop) : pop_(pop) {
    for (int i = 0; i < pop.clusters; ++i) names_.push_back(MemberName(i));
    emulator_ = std::make_unique<EmulatorProcess>(pop);
    host_config_ = ConfigFrom(emulator_->Kubeconfig("host"), "host");
    host_ = kubefold::testing::ClientFor(host_config_);
    for (const auto& m : names_) {
      members_[m] = std::shared_ptr<kube::RestClient>(
          kubefold::testing::ClientFor(ConfigFrom(emulator_->Kubeconfig(m), m)));
    }
    kube::RestConfig control;
    control.server = emulator_->control_url();
    auto transport = kube::NewHttpTransport(control, {.warn = [](std::string_view) {}});
    if (!transport.ok()) throw std::runtime_error(transport.status().ToString());
    control_ = std::move(*transport);

    Kubectl("apply --validate=false -f " KUBEFOLD_SOURCE_DIR "/crds/");
    Kubectl("wait --for condition=established --timeout=30s crd/memberclusters.kubefold.io "
            "crd/failoverpolicies.kubefold.io crd/failoveraudits.kubefold.io");
    auto namespace_json = [](const std::string& name) {
      return Json{{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}}.dump();
    };
    for (const char* ns : {"kubefold-system", kNs}) {
      Check(host_->Create("/api/v1/namespaces", namespace_json(ns)), std::string("namespace ") + ns);
    }
    for (const auto& m : names_) {
      Check(members_[m]->Create("/api/v1/namespaces", namespace_json(kNs)), "namespace on " + m);
      Json secret = {{"apiVersion", "v1"},
                     {"kind", "Secret"},
                     {"metadata", {{"name", m + "-kubeconfig"}, {"namespace", "kubefold-system"}}},
                     {"data", {{"kubeconfig", kube::internal::Base64Encode(emulator_->Kubeconfig(m))}}}};
      Check(host_->Create("/api/v1/namespaces/kubefold-system/secrets", secret.dump()), "secret " + m);
      Json mc = {{"apiVersion", "kubefold.io/v1alpha1"},
                 {"kind", "MemberCluster"},
                 {"metadata", {{"name", m}}},
                 {"spec",
                  {{"kubeconfigSecretRef", {{"namespace", "kubefold-system"}, {"name", m + "-kubeconfig"}}},
                   {"health", {{"periodSeconds", 1}, {"failureThreshold", 1}, {"gracePeriodSeconds", 1}}}}}};
      Check(host_->Create("/apis/kubefold.io/v1alpha1/memberclusters", mc.dump()), "membercluster " + m);
    }
    for (const auto& m : names_) rollouts_.push_back(std::make_unique<Rollouts>(members_[m]));
    audits_ = std::make_unique<AuditObserver>(*host_);
  }

  ~World() {
    op_.reset();  // first: it calls back into applies_ and talks to the emulator
    audits_.reset();
    rollouts_.clear();
  }

  // Starts the operator; returns false with `error` set if it does not sync.
  bool StartOperator(std::chrono::seconds limit, std::string* error) {
    kubefold::OperatorOptions o;
    o.identity = "failover-bench";
    o.leader_elect = false;
    if (const char* z = std::getenv("KUBEFOLD_COMPRESS_OBJECTS")) o.compress_objects = std::string_view(z) != "0";
    o.log = [this](std::string_view m) { log_.Add(m); };
    o.failover.on_apply = [this](const std::string& w, const std::string& to, SysTime crossed) {
      applies_.Record(w, to, crossed);
    };
    o.failover.clock = [this] { return passes_.Now(); };
    // The kubefold binary's defaults (operator/main.cpp) for the host client.
    auto transport = kube::NewHttpTransport(host_config_, {.warn = [](std::string_view) {}});
    if (!transport.ok()) throw std::runtime_error(transport.status().ToString());
    auto host = std::make_unique<kube::RestClient>(
        std::move(*transport), std::shared_ptr<kube::TokenSource>(kube::NewTokenSource(host_config_)),
        kube::RestClientOptions{.qps = 20, .burst = 30});
    op_ = std::make_unique<kubefold::Operator>(std::move(host), std::move(o));
    if (auto s = op_->Start(); !s.ok()) throw std::runtime_error(s.ToString());
    const bool ok = Eventually([&] { return Synced(); }, limit);
    if (!ok) *error = "the operator did not sync within " + std::to_string(limit.count()) + " s\n" + log_.Text();
    return ok;
  }

  bool Synced() {
    if (!op_->failover().synced()) return false;
    const auto members = op_->registry().Members();
    if (members.size() != names_.size()) return false;
    for (const auto& m : members) {
      if (!m.running || !m.synced || m.ready.status != "True") return false;
    }
    const state::Snapshot s = op_->store().Current();
    for (const auto& m : names_) {
      if (s.CountWorkloads(m, kNs) != static_cast<uint64_t>(pop_.per_cluster)) return false;
    }
    return true;
  }

  // Runs trial k; false with `error` set on a timeout.
  bool Trial(int k, TrialResult* out, std::string* error) {
    const std::string home = names_[static_cast<size_t>(pop_.HomeOf(k))];
    const std::string selector = std::string(kTrialLabel) + "=" + TrialTag(k);
    const std::string policy = PolicyName(k);
    Json clusters = Json::array();
    const auto home_index = static_cast<size_t>(pop_.HomeOf(k));
    for (size_t i = 0; i < names_.size(); ++i) clusters.push_back(names_[(home_index + i) % names_.size()]);
    const Json p = {{"apiVersion", "kubefold.io/v1alpha1"},
                    {"kind", "FailoverPolicy"},
                    {"metadata", {{"name", policy}, {"namespace", kNs}}},
                    {"spec",
                     {{"selector", {{"kinds", {"Deployment"}}, {"labelSelector", selector}}},
                      {"clusters", clusters},
                      {"trigger", {{"clusterUnhealthySeconds", kUnhealthy.count()}}},
                      {"failback", {{"mode", "Manual"}}},
                      {"maxInFlight", kGoverned}}}};
    const std::string policies = kube::ResourcePath("kubefold.io", "v1alpha1", "failoverpolicies", kNs);
    const std::string policy_path = policies + "/" + policy;
    auto fail = [&](const std::string& what) {
      *error = "trial " + std::to_string(k) + ": " + what + "\n" + log_.Text();
      return false;
    };
    // The target must be watched again (an earlier trial partitioned it and
    // the operator's reflectors may still be backing off): the operator's
    // three reflectors and this process's rollout watcher.
    const std::string target = clusters[1];
    const auto wait_start = std::chrono::steady_clock::now();
    if (!Eventually([&] { return OpenWatches(target) >= 4; }, 180s)) {
      return fail("the operator's watches of " + target + " did not come back");
    }
    out->recovery_wait_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - wait_start).count();
    Check(host_->Create(policies, p.dump()), "policy");
    if (!Eventually([&] {
          auto r = host_->Get(policy_path);
          if (!r.ok()) return false;
          const Json j = Json::parse(*r, nullptr, false);
          if (!j.is_object() || !j.contains("status")) return false;
          const Json workloads = j["status"].value("workloads", Json::array());
          if (workloads.size() != static_cast<size_t>(kGoverned)) return false;
          for (const auto& w : workloads) {
            if (w.value("activeCluster", "") != home) return false;
          }
          return true;
        }, 60s)) {
      return fail("the policy's status never listed its workloads on " + home);
    }

    const size_t first = applies_.size();
    const SysTime partitioned = SysClock::now();
    Control(home, "partition");
    if (!Eventually([&] { return applies_.size() >= first + kGoverned; }, 60s)) {
      return fail("not every workload was applied");
    }
    if (!Eventually([&] {
          const auto audits = audits_->OfPolicy(policy);
          size_t done = 0;
          for (const auto& a : audits) {
            if (a.finished == SysTime{}) return false;
            done += a.workloads;
          }
          return done >= static_cast<size_t>(kGoverned);
        }, 60s)) {
      return fail("the audit did not finish");
    }
    const auto applies = applies_.Since(first);
    SysTime crossed = applies.front().crossed;
    for (const auto& a : applies) {
      out->apply_ms.push_back(Ms(a.at - a.crossed));
      crossed = std::min(crossed, a.crossed);
    }
    const SysTime pass = passes_.LastAtOrBefore(applies.front().at);
    out->first_apply_ms = Ms(applies.front().at - applies.front().crossed);
    out->wake_ms = Ms(pass - applies.front().crossed);
    out->decide_ms = Ms(applies.front().at - pass);
    out->apply_gap_ms =
        applies.size() > 1 ? Ms(applies.back().at - applies.front().at) / static_cast<double>(applies.size() - 1) : 0;
    out->detect_ms = Ms(crossed - kUnhealthy - partitioned);
    for (const auto& a : audits_->OfPolicy(policy)) {
      if (a.phase != "Completed") return fail("an audit ended " + a.phase);
      out->audit_ms.push_back(Ms(a.finished - crossed));
    }

    // Clean up: heal, remove the policy, its copies and audits; wait until
    // the store shows home Ready and the copies gone.
    Control(home, "heal");
    (void)host_->Delete(policy_path);
    for (const auto& a : applies) {
      const std::string name = a.workload.substr(a.workload.rfind('/') + 1);
      (void)members_[a.to]->Delete(kube::ResourcePath("apps", "v1", "deployments", kNs) + "/" + name);
    }
    auto list = host_->Get(kube::ResourcePath("kubefold.io", "v1alpha1", "failoveraudits", kNs) + "?labelSelector=" +
                           ctl::kPolicyAnnotation + "%3D" + policy);
    if (list.ok()) {
      const Json items = Json::parse(*list, nullptr, false).value("items", Json::array());
      for (const auto& item : items) {
        (void)host_->Delete(kube::ResourcePath("kubefold.io", "v1alpha1", "failoveraudits", kNs) + "/" +
                            item["metadata"].value("name", ""));
      }
    }
    if (!Eventually([&] {
          const state::Snapshot s = op_->store().Current();
          const state::Record* h =
              s.Get(home, ctl::kHealthNamespace, {ctl::kHealthGroup, ctl::kHealthKind, ctl::kHealthName});
          if (h == nullptr) return false;
          const auto rec = ctl::ParseHealthRecord(h->object_json());
          if (!rec || rec->condition.status != "True") return false;
          for (const auto& a : applies) {
            const std::string name = a.workload.substr(a.workload.rfind('/') + 1);
            if (s.Get(a.to, kNs, {"apps", "Deployment", name}) != nullptr) return false;
          }
          return true;
        }, 60s)) {
      return fail(home + " did not come back Ready, or the copies stayed");
    }
    return true;
  }

  // The governed-workload scan of one pass (failover.cpp, step 3) alone:
  // every Deployment of the namespace on every cluster of the policy,
  // metadata scanned, selector matched; with `scan` false, the walk over
  // the same records only. Median of 5, in ms.
  double ScanMs(bool scan) {
    auto selector = ctl::LabelSelector::Parse(std::string(kTrialLabel) + "=" + TrialTag(0));
    if (!selector.ok()) throw std::runtime_error(selector.status().ToString());
    const state::Snapshot s = op_->store().Current();
    std::vector<double> times;
    size_t matched = 0;
    for (int rep = 0; rep < 5; ++rep) {
      const auto t0 = std::chrono::steady_clock::now();
      for (const auto& c : names_) {
        s.ForEachWorkload(c, kNs, [&](const state::WorkloadRef& w) {
          const state::Record& r = *w.record;
          if (r.group() != "apps" || r.kind() != "Deployment") return true;
          if (!scan) {
            matched += r.object_json().size();
            return true;
          }
          ctl::internal::Metadata md;
          if (!ctl::internal::ScanMetadata(r.object_json(), md)) return true;
          matched += selector->Matches(md.labels) ? 1 : 0;
          return true;
        });
      }
      times.push_back(Ms(std::chrono::steady_clock::now() - t0));
    }
    benchmark::DoNotOptimize(matched);
    return Percentile(times, 0.5);
  }

  // Bytes of pruned JSON of the workloads the store holds (no health
  // records), and how many of those records keep it compressed.
  double PayloadBytes(double* compressed_records = nullptr) {
    const state::Snapshot s = op_->store().Current();
    double bytes = 0, compressed = 0;
    s.ForEachWorkload([&](const state::WorkloadRef& w) {
      if (w.ns == ctl::kHealthNamespace) return true;
      bytes += static_cast<double>(w.record->object_json().size());
      compressed += w.record->compressed() ? 1 : 0;
      return true;
    });
    if (compressed_records != nullptr) *compressed_records = compressed;
    return bytes;
  }

  kubefold::Operator& op() { return *op_; }
  double populate_seconds() const { return emulator_->populate_seconds(); }

 private:
  void Kubectl(const std::string& args) {
    int code = 0;
    const std::string out = Shell("kubectl --kubeconfig " + emulator_->dir() + "/host.kubeconfig " + args, &code);
    if (code != 0) throw std::runtime_error("kubectl " + args + ": " + out);
  }
  // Watches open on `cluster`, as the emulator counts them (-1 if unknown).
  int OpenWatches(const std::string& cluster) {
    kube::HttpRequest req;
    req.path_and_query = "/clusters";
    req.timeout = 10s;
    auto r = control_->Send(req);
    if (!r.ok() || r->status != 200) return -1;
    const Json j = Json::parse(r->body, nullptr, false);
    if (!j.is_array()) return -1;
    for (const auto& c : j) {
      if (c.value("name", "") == cluster) return c.value("openWatches", -1);
    }
    return -1;
  }
  void Control(const std::string& cluster, const std::string& fault) {
    kube::HttpRequest req;
    req.method = "POST";
    req.path_and_query = "/clusters/" + cluster + "/faults/" + fault;
    req.timeout = 10s;
    auto r = control_->Send(req);
    if (!r.ok() || r->status != 200) {
      throw std::runtime_error("control " + req.path_and_query + ": " + (r.ok() ? r->body : r.status().ToString()));
    }
  }

  const Population pop_;
  std::vector<std::string> names_;
  std::unique_ptr<EmulatorProcess> emulator_;
  kube::RestConfig host_config_;
  std::unique_ptr<kube::RestClient> host_;
  std::map<std::string, std::shared_ptr<kube::RestClient>> members_;
  std::unique_ptr<kube::Transport> control_;
  std::vector<std::unique_ptr<Rollouts>> rollouts_;
  std::unique_ptr<AuditObserver> audits_;
  ApplyLog applies_;
  PassLog passes_;
  LogTail log_;
  std::unique_ptr<kubefold::Operator> op_;  // last: destroyed first
};

void BM_Failover_kubefold(benchmark::State& st) {
  Population pop;
  pop.clusters = static_cast<int>(st.range(0));
  pop.per_cluster = static_cast<int>(st.range(1));
  pop.trials = Trials(st.range(2));
  if (pop.clusters < 2) {
    st.SkipWithError("a failover needs at least two member clusters");
    return;
  }
  if (pop.TrialWorkloadsOn(0) > pop.per_cluster) {
    st.SkipWithError("too few workloads per cluster for the trials' workloads");
    return;
  }
  const double total = static_cast<double>(pop.clusters) * pop.per_cluster;
  std::unique_ptr<World> world;
  try {
    world = std::make_unique<World>(pop);
  } catch (const std::exception& e) {
    st.SkipWithError(e.what());
    return;
  }
  // Memory before the operator: everything else of this process is up.
  kubefold::bench::ReleaseFreedMemory();
  const double rss_before = RssBytes();
  const double heap_before = HeapInUseBytes();
  const auto started = std::chrono::steady_clock::now();
  std::string error;
  if (!world->StartOperator(300s, &error)) {
    std::fprintf(stderr, "%s\n", error.c_str());
    st.SkipWithError("the operator did not sync");
    return;
  }
  const double sync_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  world->op().folder().Flush();
  const double rss_synced = RssBytes();
  const double heap_synced = HeapInUseBytes();
#ifdef KUBEFOLD_USES_JEMALLOC
  // Where the heap at sync goes: run with MALLOC_CONF=prof:true and read the
  // dump with jeprof.
  if (const char* dump = std::getenv("KUBEFOLD_HEAP_PROFILE")) {
    const char* path = dump;
    kubefold::bench::Mallctl("prof.dump", nullptr, nullptr, &path, sizeof(path));
    std::fprintf(stderr, "heap profile at sync: %s\n", dump);
  }
#endif
  kubefold::bench::ReleaseFreedMemory();
  const double rss_trimmed = RssBytes();
  const state::StoreStats stats = world->op().store().Stats();
  double compressed_records = 0;
  const double payload = world->PayloadBytes(&compressed_records);
  const double scan_ms = world->ScanMs(true);
  const double walk_ms = world->ScanMs(false);

  std::vector<double> apply_ms, first_ms, wake_ms, decide_ms, gap_ms, audit_ms, detect_ms;
  double recovery_wait_s = 0;
  const uint64_t passes_before = world->op().failover().stats().passes;
  for (auto _ : st) {
    for (int k = 0; k < pop.trials; ++k) {
      TrialResult r;
      bool ok = false;
      try {
        ok = world->Trial(k, &r, &error);
      } catch (const std::exception& e) {
        error = e.what();
      }
      if (!ok) {
        std::fprintf(stderr, "%s\n", error.c_str());
        st.SkipWithError("a trial failed (see stderr)");
        break;
      }
      if (std::getenv("KUBEFOLD_FAILOVER_TRACE") != nullptr) {
        double max_apply = r.apply_ms.empty() ? 0 : *std::max_element(r.apply_ms.begin(), r.apply_ms.end());
        std::fprintf(stderr, "trial %d: first apply %.1f ms (wake %.1f, decide %.1f), gap %.1f, max apply %.1f ms\n", k,
                     r.first_apply_ms, r.wake_ms, r.decide_ms, r.apply_gap_ms, max_apply);
      }
      apply_ms.insert(apply_ms.end(), r.apply_ms.begin(), r.apply_ms.end());
      audit_ms.insert(audit_ms.end(), r.audit_ms.begin(), r.audit_ms.end());
      first_ms.push_back(r.first_apply_ms);
      wake_ms.push_back(r.wake_ms);
      decide_ms.push_back(r.decide_ms);
      gap_ms.push_back(r.apply_gap_ms);
      detect_ms.push_back(r.detect_ms);
      recovery_wait_s += r.recovery_wait_s;
    }
  }
  const uint64_t passes = world->op().failover().stats().passes - passes_before;
  kubefold::bench::ReleaseFreedMemory();
  const double rss_end = RssBytes();
  const double heap_end = HeapInUseBytes();

  auto& c = st.counters;
  c["apply_p50_ms"] = Percentile(apply_ms, 0.50);
  c["apply_p99_ms"] = Percentile(apply_ms, 0.99);
  c["apply_max_ms"] = Percentile(apply_ms, 1.0);
  c["apply_samples"] = static_cast<double>(apply_ms.size());
  c["first_apply_p50_ms"] = Percentile(first_ms, 0.50);
  c["wake_p50_ms"] = Percentile(wake_ms, 0.50);
  c["wake_max_ms"] = Percentile(wake_ms, 1.0);
  c["decide_p50_ms"] = Percentile(decide_ms, 0.50);
  c["apply_gap_p50_ms"] = Percentile(gap_ms, 0.50);
  c["audit_p50_ms"] = Percentile(audit_ms, 0.50);
  c["audit_p99_ms"] = Percentile(audit_ms, 0.99);
  c["audit_max_ms"] = Percentile(audit_ms, 1.0);
  c["audit_samples"] = static_cast<double>(audit_ms.size());
  c["detect_p50_ms"] = Percentile(detect_ms, 0.50);
  c["scan_ms"] = scan_ms;
  c["walk_ms"] = walk_ms;
  c["recovery_wait_s"] = recovery_wait_s;
  c["trials"] = static_cast<double>(pop.trials);
  c["passes_per_trial"] = pop.trials > 0 ? static_cast<double>(passes) / pop.trials : 0;
  c["workloads"] = total;
  c["rss_B_per_workload"] = (rss_synced - rss_before) / total;
  c["rss_trimmed_B_per_workload"] = (rss_trimmed - rss_before) / total;
  c["rss_end_trimmed_B_per_workload"] = (rss_end - rss_before) / total;
  c["heap_B_per_workload"] = (heap_synced - heap_before) / total;
  c["heap_end_B_per_workload"] = (heap_end - heap_before) / total;
  c["store_B_per_workload"] = static_cast<double>(stats.node_bytes_current + stats.record_bytes_current) / total;
  c["store_live_B_per_workload"] =
      static_cast<double>(stats.node_bytes_live + stats.record_bytes_live + stats.snapshot_bytes_live) / total;
  c["store_retained_snapshots"] = static_cast<double>(stats.retained_snapshots);
  c["payload_B_per_workload"] = payload / total;
  c["compressed_share"] = compressed_records / total;
  c["sync_s"] = sync_s;
  c["folder_releases"] = static_cast<double>(world->op().folder().stats().releases);
  c["populate_s"] = world->populate_seconds();
}

BENCHMARK(BM_Failover_kubefold)
    ->ArgNames({"clusters", "workloads", "trials"})
    ->Args({3, 1000, 10})
    ->Args({10, 1000, 30})
    ->Args({10, 10000, 30})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kSecond);

}  // namespace

BENCHMARK_MAIN();
