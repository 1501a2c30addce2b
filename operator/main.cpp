// kubefold: the operator binary. Talks to the host cluster (in-cluster
// config, or a kubeconfig), registers member clusters from MemberCluster
// objects, folds their workloads into the versioned store, fails workloads
// over by FailoverPolicy and records FailoverAudits.
//
// SIGTERM or SIGINT: stop writing, release the Lease, stop watching, exit 0
// — within --shutdown-timeout, after which the process exits 1 regardless.
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/in_cluster.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/token_source.h"
#include "operator/logger.h"
#include "operator/operator.h"

namespace {

// Set once in main before any thread starts.
kubefold::Logger* g_logger = nullptr;

void LogLine(std::string_view message) { g_logger->FromLoop(message); }

// "1h2m3s", "500ms", "15s", "10m": Go's time.ParseDuration for the units an
// operator needs. nullopt when malformed.
std::optional<std::chrono::milliseconds> ParseDuration(const std::string& text) {
  if (text.empty()) return std::nullopt;
  std::chrono::milliseconds total{0};
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && (std::isdigit(static_cast<unsigned char>(text[j])) || text[j] == '.')) ++j;
    if (j == i) return std::nullopt;
    const double value = std::strtod(text.substr(i, j - i).c_str(), nullptr);
    size_t k = j;
    while (k < text.size() && std::isalpha(static_cast<unsigned char>(text[k]))) ++k;
    const std::string unit = text.substr(j, k - j);
    double ms;
    if (unit == "ms") {
      ms = value;
    } else if (unit == "s") {
      ms = value * 1000;
    } else if (unit == "m") {
      ms = value * 60000;
    } else if (unit == "h") {
      ms = value * 3600000;
    } else {
      return std::nullopt;
    }
    total += std::chrono::milliseconds(static_cast<int64_t>(ms));
    i = k;
  }
  return total;
}

struct Flags {
  std::string kubeconfig, context, ns, identity;
  bool leader_elect = true;
  std::string lease_duration = "15s", renew_deadline = "10s", retry_period = "2s";
  std::string lease_name = "kubefold";
  std::string audit_deadline = "10m", resync = "5s", shutdown_timeout = "25s", status_period = "10s";
  double host_qps = 20, member_qps = 50;
  int host_burst = 30, member_burst = 100;
  size_t history_keep_last = 1024;
  std::string history_keep_for = "10m";
  std::string history_file, history_max_bytes = "0";
  bool history_sync = true;
  bool compress_objects = true;
  std::string api_bind = "127.0.0.1:8082", metrics_bind = ":8080", probe_bind = ":8081";
  std::string tls_cert_file, tls_key_file;
  std::string api_service = "kubefold", api_service_port = "api";
  std::string log_format = "text";
  int verbosity = 0;
};

}  // namespace

int main(int argc, char** argv) {
  using namespace kubefold;
  // Only for builds on the C library's malloc (KUBEFOLD_ALLOCATOR=system;
  // jemalloc ignores mallopt and takes its options from
  // cmake/jemalloc_conf.cpp): glibc gives each thread group its own arena
  // (up to 8 per core); an operator with a thread per watch then keeps what
  // the initial lists freed in many arenas. Two arenas measured 8.4 -> 5.6
  // KB resident per workload at 10 clusters x 10k
  // (tests/bench/failover_bench.cpp). MALLOC_ARENA_MAX still overrides it.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 2);
  CLI::App app{"kubefold: multi-cluster workload map with consistent snapshots, failover and audits"};
  // A flag given twice takes the last value, as Kubernetes components do, so
  // a chart's extraArgs can override the flags it sets.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  Flags f;
  app.add_option("--kubeconfig", f.kubeconfig,
                 "Kubeconfig of the host cluster (default: in-cluster config, else $KUBECONFIG or ~/.kube/config)");
  app.add_option("--context", f.context, "Context of --kubeconfig to use (default: current-context)");
  app.add_option("--namespace", f.ns, "Namespace of the leader-election Lease (default: $POD_NAMESPACE or kubefold-system)");
  app.add_option("--identity", f.identity, "This replica's name in the Lease (default: $POD_NAME or the host name)");
  app.add_option("--leader-elect", f.leader_elect, "Elect a leader on a Lease (turn off only with one replica)")
      ->capture_default_str();
  app.add_option("--leader-elect-lease-name", f.lease_name, "Name of the Lease")->capture_default_str();
  app.add_option("--leader-elect-lease-duration", f.lease_duration, "How long a Lease holds without renewal")
      ->capture_default_str();
  app.add_option("--leader-elect-renew-deadline", f.renew_deadline, "How long the leader retries renewing")
      ->capture_default_str();
  app.add_option("--leader-elect-retry-period", f.retry_period, "Interval between attempts")->capture_default_str();
  app.add_option("--audit-deadline", f.audit_deadline, "A failover not available on its target within this is Failed")
      ->capture_default_str();
  app.add_option("--resync", f.resync, "Each policy is re-evaluated at least this often")->capture_default_str();
  app.add_option("--status-period", f.status_period, "MemberCluster status refresh interval")->capture_default_str();
  app.add_option("--shutdown-timeout", f.shutdown_timeout, "Exit after SIGTERM within this long")->capture_default_str();
  app.add_option("--kube-api-qps", f.host_qps, "Requests per second to the host cluster")->capture_default_str();
  app.add_option("--kube-api-burst", f.host_burst, "Burst to the host cluster")->capture_default_str();
  app.add_option("--member-qps", f.member_qps, "Requests per second to each member cluster")->capture_default_str();
  app.add_option("--member-burst", f.member_burst, "Burst to each member cluster")->capture_default_str();
  app.add_option("--history-keep-last", f.history_keep_last, "Snapshots kept by count")->capture_default_str();
  app.add_option("--history-keep-for", f.history_keep_for, "Snapshots kept by age")->capture_default_str();
  app.add_option("--history-file", f.history_file,
                 "Durable history: an SQLite file on the pod's volume, restored on restart (default: memory only)");
  app.add_option("--history-max-bytes", f.history_max_bytes,
                 "Bound on --history-file, in bytes or with a suffix (512Mi, 2Gi); 0: the disk's")
      ->capture_default_str();
  app.add_option("--history-sync", f.history_sync,
                 "fsync every history commit (off: a commit survives a crash of kubefold, not of the node)")
      ->capture_default_str();
  app.add_option("--compress-objects", f.compress_objects,
                 "Keep member objects in memory compressed (zstd), against a dictionary per cluster and kind")
      ->capture_default_str();
  app.add_option("--api-bind-address", f.api_bind,
                 "Address of the query API (HOST:PORT, :PORT for every interface, 0 for off); anything but localhost "
                 "requires a bearer token checked with TokenReview/SubjectAccessReview")
      ->capture_default_str();
  app.add_option("--metrics-bind-address", f.metrics_bind,
                 "Address of /metrics (Prometheus); anything but localhost requires a bearer token allowed to get "
                 "/metrics")
      ->capture_default_str();
  app.add_option("--health-probe-bind-address", f.probe_bind, "Address of /healthz and /readyz (0 for off)")
      ->capture_default_str();
  app.add_option("--tls-cert-file", f.tls_cert_file, "Certificate (PEM chain) for the API and /metrics: serve TLS");
  app.add_option("--tls-private-key-file", f.tls_key_file, "Private key (PEM) of --tls-cert-file");
  app.add_option("--api-service-port-name", f.api_service_port,
                 "The name of that Service's API port (callers need get services/proxy on SCHEME:SERVICE:PORT)")
      ->capture_default_str();
  app.add_option("--api-service-name", f.api_service,
                 "The Service in front of the API: callers need get services/proxy on it")
      ->capture_default_str();
  app.add_option("--log-format", f.log_format, "Log format: text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("-v,--v", f.verbosity, "Log verbosity: 0 changes and failures, 1 watch chatter, 2 every API request")
      ->capture_default_str();
  // Every flag has an environment form for the chart: --metrics-bind-address
  // is KUBEFOLD_METRICS_BIND_ADDRESS; a flag on the command line wins.
  for (CLI::Option* opt : app.get_options()) {
    std::string name = opt->get_single_name();
    if (name.empty() || name == "help") continue;
    std::string env = "KUBEFOLD_";
    for (char c : name) env += c == '-' ? '_' : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    opt->envname(env);
  }
  CLI11_PARSE(app, argc, argv);
  Logger logger(f.log_format == "json" ? LogFormat::kJson : LogFormat::kText, f.verbosity);
  g_logger = &logger;

  auto duration = [](const std::string& flag, const std::string& v) {
    auto d = ParseDuration(v);
    if (!d) {
      std::cerr << "kubefold: " << flag << ": \"" << v << "\" is not a duration (like 500ms, 15s, 10m, 1h)\n";
      std::exit(2);
    }
    return *d;
  };
  auto address = [](const std::string& flag, const std::string& v) {
    auto a = ParseBindAddress(v, flag);
    if (!a.ok()) {
      std::cerr << "kubefold: " << a.status().message() << "\n";
      std::exit(2);
    }
    return *a;
  };
  auto bytes = [](const std::string& flag, const std::string& v) -> uint64_t {
    static const std::pair<const char*, uint64_t> kSuffixes[] = {
        {"Ki", 1ull << 10}, {"Mi", 1ull << 20}, {"Gi", 1ull << 30}, {"Ti", 1ull << 40},
        {"k", 1000ull},     {"M", 1000000ull},  {"G", 1000000000ull}, {"T", 1000000000000ull}, {"", 1}};
    size_t digits = 0;
    while (digits < v.size() && v[digits] >= '0' && v[digits] <= '9') ++digits;
    const std::string unit = v.substr(digits);
    for (const auto& [suffix, scale] : kSuffixes) {
      if (digits == 0 || digits > 15 || unit != suffix) continue;
      return std::stoull(v.substr(0, digits)) * scale;
    }
    std::cerr << "kubefold: " << flag << ": \"" << v << "\" is not a size (bytes, or like 512Mi, 2Gi, 500M)\n";
    std::exit(2);
  };
  OperatorOptions o;
  o.log = LogLine;
  o.identity = !f.identity.empty() ? f.identity : (std::getenv("POD_NAME") ? std::getenv("POD_NAME") : "");
  if (o.identity.empty()) {
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    o.identity = host;
  }
  o.leader_elect = f.leader_elect;
  o.leader.lease_namespace =
      !f.ns.empty() ? f.ns : (std::getenv("POD_NAMESPACE") ? std::getenv("POD_NAMESPACE") : "kubefold-system");
  o.leader.lease_name = f.lease_name;
  o.leader.lease_duration = duration("--leader-elect-lease-duration", f.lease_duration);
  o.leader.renew_deadline = duration("--leader-elect-renew-deadline", f.renew_deadline);
  o.leader.retry_period = duration("--leader-elect-retry-period", f.retry_period);
  o.failover.audit_deadline = duration("--audit-deadline", f.audit_deadline);
  o.failover.resync = duration("--resync", f.resync);
  o.registry.status_period = duration("--status-period", f.status_period);
  o.registry.member_qps = f.member_qps;
  o.registry.member_burst = f.member_burst;
  o.history.keep_last = std::max<size_t>(1, f.history_keep_last);
  o.history.keep_for = duration("--history-keep-for", f.history_keep_for);
  o.history_file = f.history_file;
  o.history_max_bytes = bytes("--history-max-bytes", f.history_max_bytes);
  o.history_sync = f.history_sync;
  o.compress_objects = f.compress_objects;
  const auto shutdown_timeout = duration("--shutdown-timeout", f.shutdown_timeout);
  o.serving.api = address("--api-bind-address", f.api_bind);
  o.serving.metrics = address("--metrics-bind-address", f.metrics_bind);
  o.serving.probes = address("--health-probe-bind-address", f.probe_bind);
  if (f.tls_cert_file.empty() != f.tls_key_file.empty()) {
    std::cerr << "kubefold: --tls-cert-file and --tls-private-key-file go together\n";
    return 2;
  }
  o.serving.tls_cert_file = f.tls_cert_file;
  o.serving.tls_key_file = f.tls_key_file;
  o.serving.service_name = f.api_service;
  o.serving.service_port_name = f.api_service_port;
  o.serving.log_requests = f.verbosity >= 2;
  o.serving.build = BuildInfo{KUBEFOLD_VERSION, KUBEFOLD_GIT_COMMIT, std::string("g++ ") + __VERSION__};
  o.telemetry = std::make_shared<Telemetry>(o.serving.build, o.leader.lease_name);

  // The host: a kubeconfig when one is named or no in-cluster config exists.
  Result<kube::RestConfig> config = FailedPrecondition("unset");
  if (f.kubeconfig.empty()) {
    config = kube::LoadInClusterConfig();
    if (!config.ok() && kube::IsNotInCluster(config.status())) {
      auto kc = kube::LoadDefaultKubeconfig();
      config = kc.ok() ? kube::ResolveContext(*kc, f.context) : Result<kube::RestConfig>(kc.status());
    }
  } else {
    auto kc = kube::LoadKubeconfigFile(f.kubeconfig);
    config = kc.ok() ? kube::ResolveContext(*kc, f.context) : Result<kube::RestConfig>(kc.status());
  }
  if (!config.ok()) {
    std::cerr << "kubefold: host cluster configuration: " << config.status().ToString() << "\n";
    return 2;
  }
  auto host_tokens = std::shared_ptr<kube::TokenSource>(kube::NewTokenSource(*config));
  auto transport =
      kube::NewHttpTransport(*config, {.warn = LogLine, .client_certificate = kube::ClientCertificateOf(host_tokens)});
  if (!transport.ok()) {
    std::cerr << "kubefold: host cluster: " << transport.status().ToString() << "\n";
    return 2;
  }
  auto host = std::make_unique<kube::RestClient>(
      kube::ObserveTransport(std::move(*transport), o.telemetry->RestObserver(config->server)), std::move(host_tokens),
      kube::RestClientOptions{.qps = f.host_qps, .burst = f.host_burst});

  // Signals are taken by sigwait on this thread; every thread started below
  // inherits the blocked mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  Operator op(std::move(host), o);
  if (Status s = op.Start(); !s.ok()) {
    std::cerr << "kubefold: " << s.ToString() << "\n";
    return 2;
  }
  LogLine("kubefold " + o.identity + ": started against " + config->server);
  int sig = 0;
  while (sigwait(&signals, &sig) != 0) {
  }
  LogLine(std::string("received ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT") + "; shutting down");
  std::thread watchdog([shutdown_timeout] {
    std::this_thread::sleep_for(shutdown_timeout);
    LogLine("shutdown took longer than --shutdown-timeout; exiting");
    std::_Exit(1);
  });
  watchdog.detach();
  op.Stop();
  LogLine("stopped");
  return 0;
}
