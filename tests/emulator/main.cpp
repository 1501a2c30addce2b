// kube-emulator: serves emulated Kubernetes API servers until SIGINT/SIGTERM.
// See tests/emulator/README.md for what it implements and its control API.
#include <signal.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <iostream>

#include "tests/emulator/emulator.h"

int main(int argc, char** argv) {
  using kubefold::emulator::Emulator;
  using kubefold::emulator::EmulatorOptions;

  CLI::App app{"kube-emulator: emulated Kubernetes API servers (a test fixture)"};
  std::vector<std::string> clusters{"cluster-a"};
  std::string dir = "kube-emulator";
  bool plain_http = false;
  int port = 0;
  int control_port = 0;
  int min_request_timeout_s = 1800;
  int bookmark_interval_ms = 60000;
  std::size_t max_events = 100000;
  bool no_watch_list = false;
  app.add_option("--clusters", clusters, "cluster names, comma-separated")->delimiter(',');
  app.add_option("--dir", dir, "where to write ca.crt, <cluster>.kubeconfig, <cluster>.token, kubeconfig, "
                               "emulator.json");
  app.add_flag("--plain-http", plain_http, "serve plain HTTP instead of HTTPS (debugging only)");
  app.add_option("--port", port, "port of the first cluster (others follow); 0: ephemeral")->check(CLI::Range(0, 65535));
  app.add_option("--control-port", control_port, "port of the control endpoint; 0: ephemeral")
      ->check(CLI::Range(0, 65535));
  app.add_option("--min-request-timeout", min_request_timeout_s,
                 "seconds; a watch without timeoutSeconds ends after [t, 2t)")
      ->check(CLI::PositiveNumber);
  app.add_option("--bookmark-interval-ms", bookmark_interval_ms, "milliseconds between watch bookmarks")
      ->check(CLI::PositiveNumber);
  app.add_option("--max-events", max_events, "watch history per cluster before compaction")
      ->check(CLI::PositiveNumber);
  app.add_flag("--no-watch-list", no_watch_list, "reject sendInitialEvents with the WatchList-disabled 422");
  bool authorization_log = false;
  app.add_flag("--authorization-log", authorization_log,
               "write each cluster's authorization decisions (users outside system:masters) to "
               "<dir>/<cluster>.authorization.log, one JSON line each");
  CLI11_PARSE(app, argc, argv);

  // Block the signals before any thread starts so only sigwait sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  signal(SIGPIPE, SIG_IGN);

  EmulatorOptions options;
  options.clusters = clusters;
  options.tls = !plain_http;
  options.dir = dir;
  options.first_port = port;
  options.control_port = control_port;
  options.cluster.min_request_timeout = std::chrono::seconds(min_request_timeout_s);
  options.cluster.bookmark_interval = std::chrono::milliseconds(bookmark_interval_ms);
  options.cluster.max_events = max_events;
  options.cluster.watch_list = !no_watch_list;
  options.authorization_log = authorization_log;
  try {
    Emulator emulator(options);
    for (const auto& c : emulator.Clusters()) {
      std::cout << "kube-emulator: cluster " << c.name << " at " << c.url << " (kubeconfig " << c.kubeconfig_path
                << ")\n";
    }
    std::cout << "kube-emulator: control endpoint at " << emulator.control_url() << "\n"
              << "kube-emulator: ready; state in " << dir << "/emulator.json" << std::endl;
    int sig = 0;
    sigwait(&signals, &sig);
    std::cout << "kube-emulator: stopping on signal " << sig << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "kube-emulator: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
