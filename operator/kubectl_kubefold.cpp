// kubectl-kubefold: the kubectl plugin users query kubefold with
// (`kubectl kubefold clusters`, kubectl finds the binary on PATH). It speaks
// to kubefold's query API through the host API server's service proxy, or
// directly with --server-url; FailoverAudits come straight from the host
// API server, under the user's RBAC. See operator/README.md
// "kubectl kubefold" and `kubectl kubefold --help`.
//
// Exit codes: 0 success; 1 the API answered an error (or the kubeconfig
// cannot be used); 2 usage; 3 kubefold cannot be reached; 4 unauthorized
// or forbidden.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <thread>

#include <CLI/CLI.hpp>

#include "operator/plugin/client.h"
#include "operator/plugin/commands.h"

namespace {

using kubefold::Status;
namespace plugin = kubefold::plugin;

constexpr int kExitUsage = 2;

constexpr char kFooter[] = R"(Exit codes:
  0  success
  1  the API answered an error (printed as "error: <message>"), e.g. an
     unknown snapshot, cluster or audit; or the kubeconfig cannot be used
  2  usage error: bad flags or arguments
  3  kubefold cannot be reached: connection refused or timed out, the
     service or its endpoints missing, kubefold not ready (HTTP 503)
  4  unauthorized or forbidden (401/403 from the API server or kubefold))";

// "30s", "500ms", "2m", "1h", or whole seconds ("30"); nullopt otherwise.
std::optional<std::chrono::milliseconds> ParseTimeout(const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9') ++digits;
  if (digits == 0 || digits > 9) return std::nullopt;
  const long long n = std::stoll(text.substr(0, digits));
  const std::string unit = text.substr(digits);
  if (unit.empty() || unit == "s") return std::chrono::seconds(n);
  if (unit == "ms") return std::chrono::milliseconds(n);
  if (unit == "m") return std::chrono::minutes(n);
  if (unit == "h") return std::chrono::hours(n);
  return std::nullopt;
}

bool ColorWanted(const std::string& mode) {
  if (mode == "always") return true;
  if (mode == "never") return false;
  const char* no_color = std::getenv("NO_COLOR");
  return ::isatty(STDOUT_FILENO) == 1 && (no_color == nullptr || *no_color == '\0');
}

int Fail(const Status& status) {
  std::cout.flush();
  std::cerr << "error: " << status.message() << std::endl;
  return plugin::ExitCodeFor(status);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Query kubefold: member clusters, snapshots of their workloads, diffs between them, failover "
               "audits and what-if answers.",
               "kubectl kubefold"};
  app.footer(kFooter);
  app.require_subcommand(1);
  app.fallthrough();

  plugin::ConnectionOptions conn;
  std::string ns, output, color = "auto", timeout = "30s";
  app.add_option("--kubeconfig", conn.kubeconfig, "Path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config, "
                                                  "then in-cluster)");
  app.add_option("--context", conn.context, "The kubeconfig context to use");
  app.add_option("-n,--namespace", ns, "Namespace of FailoverAudits (default: the context's namespace)");
  app.add_option("--kubefold-namespace", conn.kubefold_namespace, "Namespace of kubefold's Service")
      ->capture_default_str();
  app.add_option("--service", conn.service, "Name of kubefold's Service")->capture_default_str();
  app.add_option("--service-port", conn.service_port, "Port (name or number) of the Service serving the query API")
      ->capture_default_str();
  app.add_option("--service-scheme", conn.service_scheme, "Scheme the API server proxies with")
      ->check(CLI::IsMember({"http", "https"}))
      ->capture_default_str();
  app.add_option("--server-url", conn.server_url,
                 "Talk to kubefold's query API at this URL directly instead of through the service proxy");
  app.add_option("--token", conn.token, "Bearer token for --server-url (default: the kubeconfig's)");
  app.add_flag("--insecure-skip-tls-verify", conn.insecure_skip_tls_verify,
               "With --server-url: do not verify the server's certificate");
  app.add_option("--certificate-authority", conn.certificate_authority,
                 "With --server-url: PEM file of the CA that signed the server's certificate");
  app.add_option("--request-timeout", timeout, "Wait at most this long for an answer to start, and between two parts "
                                               "of it (30s, 2m, ...)")
      ->capture_default_str();
  app.add_option("-o,--output", output, "Output format: json, yaml or wide (default: a table)")
      ->check(CLI::IsMember({"json", "yaml", "wide"}));
  app.add_option("--color", color, "Colour tables: auto (a terminal, NO_COLOR unset), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();

  auto sub = [&](const char* name, const char* description) {
    CLI::App* s = app.add_subcommand(name, description);
    s->footer(kFooter);
    s->fallthrough();
    return s;
  };

  CLI::App* clusters = sub("clusters", "List member clusters: health, watch state, vector component, workloads");

  plugin::SnapshotsArgs snapshots_args;
  CLI::App* snapshots = sub("snapshots", "List the retained snapshots, oldest first");
  snapshots->add_option("--limit", snapshots_args.limit, "At most this many (the rest: --continue)")
      ->check(CLI::PositiveNumber);
  snapshots->add_option("--continue", snapshots_args.continue_token, "Token of the next page");

  plugin::GetArgs get_args;
  CLI::App* get = sub("get", "List a snapshot's workloads");
  CLI::Option* get_snapshot =
      get->add_option("SNAPSHOT", get_args.snapshot, "A seq or \"latest\"")->capture_default_str();
  CLI::Option* at_vector =
      get->add_option("--at-vector", get_args.at_vector, "As of a version vector instead: east=3,west=4");
  CLI::Option* at_time = get->add_option("--at-time", get_args.at_time,
                                         "As of a time instead (RFC 3339): the newest snapshot at or before it");
  at_vector->excludes(at_time);
  get->add_option("--cluster", get_args.cluster, "Only this member cluster");
  get->add_option("--namespace-filter", get_args.ns, "Only this namespace");
  get->add_option("--kind", get_args.kind, "Only this kind (Deployment, StatefulSet)");
  get->add_flag("--full", get_args.full, "Whole objects (with -o json or -o yaml)");

  plugin::DiffArgs diff_args;
  CLI::App* diff = sub("diff", "What changed between two snapshots: added, removed and modified workloads");
  diff->add_option("FROM", diff_args.from, "A seq, \"latest\", or an RFC 3339 time")->required();
  diff->add_option("TO", diff_args.to, "A seq, \"latest\", or an RFC 3339 time")->capture_default_str();
  diff->add_option("--cluster", diff_args.cluster, "Only this member cluster");
  diff->add_option("--namespace-filter", diff_args.ns, "Only this namespace");

  plugin::AuditArgs audit_args;
  CLI::App* audits = sub("audits", "List FailoverAudits (from the host API server)");
  audits->add_flag("-A,--all-namespaces", audit_args.all_namespaces, "In every namespace");
  CLI::App* audit = sub("audit", "Show a FailoverAudit (from the host API server)");
  audit->add_option("NAME", audit_args.name, "The audit's name")->required();
  audit->add_flag("--diff", audit_args.diff, "Also the diff between its before and after snapshots");

  std::string whatif_cluster;
  CLI::App* whatif = sub("whatif", "What failover would do if a cluster failed now (changes nothing)");
  whatif->add_option("CLUSTER", whatif_cluster, "A member cluster")->required();

  bool client_only = false;
  CLI::App* version = sub("version", "The plugin's version and kubefold's");
  version->add_flag("--client", client_only, "The plugin's only");
  std::string wait_text;
  version->add_option("--wait", wait_text,
                      "Until kubefold answers, retry every 2s for at most this long (30s, 2m): for scripts and "
                      "`helm test`, which start while kubefold may not be ready yet");

  try {
    app.parse(argc, argv);
    if (get_snapshot->count() > 0 && (at_vector->count() > 0 || at_time->count() > 0)) {
      throw CLI::ValidationError("SNAPSHOT", "give a SNAPSHOT or --at-vector/--at-time, not both");
    }
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : kExitUsage;
  }
  auto parsed_timeout = ParseTimeout(timeout);
  if (!parsed_timeout) {
    std::cerr << "error: --request-timeout: \"" << timeout << "\" is not a duration (30s, 500ms, 2m)\n";
    return kExitUsage;
  }
  conn.timeout = *parsed_timeout;
  conn.user_agent = std::string("kubectl-kubefold/") + KUBEFOLD_VERSION;

  plugin::OutputOptions out;
  if (output == "json") out.format = plugin::Output::kJson;
  if (output == "yaml") out.format = plugin::Output::kYaml;
  if (output == "wide") out.format = plugin::Output::kWide;
  out.color = ColorWanted(color);
  const plugin::Streams streams{std::cout, std::cerr};

  auto client = plugin::Client::New(conn);
  if (version->parsed() && !wait_text.empty() && !client_only) {
    const auto wait = ParseTimeout(wait_text);
    if (!wait) {
      std::cerr << "error: --wait: \"" << wait_text << "\" is not a duration (30s, 500ms, 2m)\n";
      return kExitUsage;
    }
    // Only "cannot reach kubefold" (exit 3: refused, no endpoints, 503 not
    // ready) is worth waiting out; any other answer is final.
    const auto deadline = std::chrono::steady_clock::now() + *wait;
    while (client.ok()) {
      auto r = (*client)->Kubefold("/version");
      if (r.ok() || plugin::ExitCodeFor(r.status()) != plugin::ExitCodeFor(kubefold::Unavailable("")) ||
          std::chrono::steady_clock::now() + std::chrono::seconds(2) > deadline) {
        break;
      }
      std::cerr << "waiting for kubefold: " << r.status().message() << "\n";
      std::this_thread::sleep_for(std::chrono::seconds(2));
    }
  }
  if (version->parsed()) {
    Status st = plugin::Version(client.ok() ? client->get() : nullptr, client.ok() ? Status() : client.status(),
                                client_only, out, streams);
    return st.ok() ? 0 : Fail(st);
  }
  if (!client.ok()) return Fail(client.status());
  plugin::Client& c = **client;
  audit_args.ns = ns.empty() ? c.ns() : ns;

  Status st;
  if (clusters->parsed()) st = plugin::Clusters(c, out, streams);
  if (snapshots->parsed()) st = plugin::Snapshots(c, snapshots_args, out, streams);
  if (get->parsed()) st = plugin::Get(c, get_args, out, streams);
  if (diff->parsed()) st = plugin::Diff(c, diff_args, out, streams);
  if (audits->parsed()) st = plugin::Audits(c, audit_args, out, streams);
  if (audit->parsed()) st = plugin::Audit(c, audit_args, out, streams);
  if (whatif->parsed()) st = plugin::WhatIf(c, whatif_cluster, out, streams);
  std::cout.flush();
  return st.ok() ? 0 : Fail(st);
}
