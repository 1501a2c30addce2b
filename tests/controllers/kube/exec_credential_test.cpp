#define BOOST_TEST_MODULE exec_credential
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <thread>
#include <vector>

#include "controllers/kube/internal/rfc3339.h"
#include "controllers/kube/token_source.h"
#include "tests/controllers/kube/test_util.h"

namespace kubefold::kube {
namespace {

using std::chrono::seconds;
using testing::Describe;
using testing::FakeClock;
using testing::ReadFile;
using testing::TempDir;
using testing::WriteExecutable;

constexpr char kV1[] = "client.authentication.k8s.io/v1";
constexpr char kV1Beta1[] = "client.authentication.k8s.io/v1beta1";

std::chrono::system_clock::time_point At(const char* rfc3339) { return *internal::ParseRfc3339(rfc3339); }

size_t Lines(const std::string& path) {
  const std::string text = ReadFile(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

// A plugin script that appends a line to `counter` each run and prints `json`.
std::string Plugin(const TempDir& dir, const std::string& name, const std::string& json,
                   const std::string& counter = "runs") {
  const std::string path = dir / name;
  WriteExecutable(path, "#!/bin/sh\necho run >> '" + (dir / counter) + "'\ncat <<'JSON'\n" + json + "\nJSON\n");
  return path;
}

std::string TokenJson(const std::string& token, const std::string& expiry = "", const char* version = kV1) {
  std::string status = "\"token\":\"" + token + "\"";
  if (!expiry.empty()) status += ",\"expirationTimestamp\":\"" + expiry + "\"";
  return std::string("{\"apiVersion\":\"") + version + "\",\"kind\":\"ExecCredential\",\"status\":{" + status + "}}";
}

ExecConfig Exec(const std::string& command, const char* version = kV1) {
  ExecConfig config;
  config.command = command;
  config.api_version = version;
  config.interactive_mode = ExecInteractiveMode::kIfAvailable;
  return config;
}

ExecCredentialSourceOptions Options(const FakeClock& clock) {
  ExecCredentialSourceOptions options;
  options.clock = clock.AsFunction();
  return options;
}

// ---------------------------------------------------------------------------
// ParseExecCredential
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(parse_reads_token_and_expiry_of_a_v1_credential) {
  auto cred = ParseExecCredential(
      R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false},
          "status":{"token":"tok-1","expirationTimestamp":"2026-11-22T10:00:00Z","unknown":1}})",
      kV1);
  BOOST_TEST_REQUIRE(cred.ok(), Describe(cred.status()));
  BOOST_TEST(cred->token == "tok-1");
  BOOST_TEST_REQUIRE(cred->expiration.has_value());
  BOOST_TEST((*cred->expiration == At("2026-11-22T10:00:00Z")));
  BOOST_TEST(cred->client_certificate_pem.empty());
  BOOST_TEST(cred->client_key_pem.empty());
}

BOOST_AUTO_TEST_CASE(parse_reads_a_v1beta1_client_certificate_without_expiry) {
  auto cred = ParseExecCredential(
      std::string(R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{)") +
          R"("clientCertificateData":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n",)" +
          R"("clientKeyData":"-----BEGIN EC PRIVATE KEY-----\nBB==\n-----END EC PRIVATE KEY-----\n",)" +
          R"("expirationTimestamp":null}})",
      kV1Beta1);
  BOOST_TEST_REQUIRE(cred.ok(), Describe(cred.status()));
  BOOST_TEST(cred->token.empty());
  BOOST_TEST(cred->client_certificate_pem == "-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n");
  BOOST_TEST(cred->client_key_pem == "-----BEGIN EC PRIVATE KEY-----\nBB==\n-----END EC PRIVATE KEY-----\n");
  BOOST_TEST(!cred->expiration.has_value());
}

BOOST_AUTO_TEST_CASE(parse_rejects_malformed_credentials_with_exact_messages) {
  const std::string head = R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)";
  const std::string pem_cert = R"("-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----")";
  struct Case {
    std::string json;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"", "output is not valid JSON (error at byte 1)"},
      {"{\"token\": SECRET-IN-BAD-JSON}", "output is not valid JSON (error at byte 11)"},
      {"[1]", "output is not a JSON object"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"t"}})",
       "apiVersion is \"client.authentication.k8s.io/v1beta1\" but the kubeconfig's exec.apiVersion is "
       "\"client.authentication.k8s.io/v1\""},
      {R"({"kind":"ExecCredential","status":{"token":"t"}})",
       "apiVersion is \"\" but the kubeconfig's exec.apiVersion is \"client.authentication.k8s.io/v1\""},
      {R"({"apiVersion":1})", "apiVersion: expected a string"},
      {R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"Secret","status":{"token":"t"}})",
       "kind is \"Secret\", not \"ExecCredential\""},
      {head + "\"status\":null}", "status: missing"},
      {head + "\"spec\":{}}", "status: missing"},
      {head + "\"status\":\"SECRET-STATUS\"}", "status: expected an object"},
      {head + "\"status\":{\"token\":42}}", "status.token: expected a string"},
      {head + "\"status\":{}}", "status: neither a token nor a client certificate and key"},
      {head + "\"status\":{\"token\":\"\"}}", "status: neither a token nor a client certificate and key"},
      {head + "\"status\":{\"clientCertificateData\":" + pem_cert + "}}",
       "status: clientCertificateData without clientKeyData"},
      {head + "\"status\":{\"clientKeyData\":\"SECRET-KEY\"}}", "status: clientKeyData without clientCertificateData"},
      {head + "\"status\":{\"clientCertificateData\":\"x\",\"clientKeyData\":\"SECRET-KEY\"}}",
       "status.clientCertificateData: no PEM block (-----BEGIN ...) in it"},
      {head + "\"status\":{\"clientCertificateData\":" + pem_cert + ",\"clientKeyData\":\"SECRET-KEY\"}}",
       "status.clientKeyData: no PEM block (-----BEGIN ...) in it"},
      {head + "\"status\":{\"token\":\"SECRET-TOK\",\"expirationTimestamp\":\"tomorrow\"}}",
       "status.expirationTimestamp: not an RFC 3339 time"},
      {head + "\"status\":{\"token\":\"SECRET-TOK\",\"expirationTimestamp\":1700000000}}",
       "status.expirationTimestamp: expected a string"},
  };
  for (const Case& c : cases) {
    auto cred = ParseExecCredential(c.json, kV1);
    BOOST_TEST_REQUIRE(!cred.ok(), c.json);
    BOOST_TEST((cred.status().code() == StatusCode::kInvalidArgument), c.json);
    BOOST_TEST(cred.status().message() == c.message);
    BOOST_TEST(cred.status().message().find("SECRET") == std::string::npos);
  }
}

// ---------------------------------------------------------------------------
// ExecCredentialSource with real plugin scripts
// ---------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(a_credential_without_expiry_is_cached_until_invalidate) {
  TempDir dir;
  FakeClock clock;
  ExecCredentialSource source(Exec(Plugin(dir, "plugin", TokenJson("tok-a"))), Options(clock));
  auto token = source.Token();
  BOOST_TEST_REQUIRE(token.ok(), Describe(token.status()));
  BOOST_TEST(*token == "tok-a");
  clock.Advance(std::chrono::hours(24 * 365));
  BOOST_TEST(*source.Token() == "tok-a");
  BOOST_TEST(Lines(dir / "runs") == 1u);

  Plugin(dir, "plugin", TokenJson("tok-b"));
  source.Invalidate();
  BOOST_TEST(*source.Token() == "tok-b");
  BOOST_TEST(Lines(dir / "runs") == 2u);
}

BOOST_AUTO_TEST_CASE(a_credential_is_refreshed_at_its_expiry_minus_the_leeway) {
  TempDir dir;
  FakeClock clock(At("2026-11-22T10:00:00Z"));
  const std::string plugin = Plugin(dir, "plugin", TokenJson("tok-1", "2026-11-22T10:05:00Z"));
  ExecCredentialSource source(Exec(plugin), Options(clock));
  BOOST_TEST(*source.Token() == "tok-1");

  Plugin(dir, "plugin", TokenJson("tok-2", "2026-11-22T11:00:00+01:00"));  // 10:00Z: already expired
  clock.Advance(std::chrono::minutes(4) + seconds(49));                    // 10:04:49, 11 s before expiry
  BOOST_TEST(*source.Token() == "tok-1");
  BOOST_TEST(Lines(dir / "runs") == 1u);
  clock.Advance(seconds(1));  // 10:04:50, inside the 10 s leeway
  BOOST_TEST(*source.Token() == "tok-2");
  BOOST_TEST(Lines(dir / "runs") == 2u);
  // tok-2 expired before it arrived: every call runs the plugin again.
  BOOST_TEST(*source.Token() == "tok-2");
  BOOST_TEST(Lines(dir / "runs") == 3u);

  auto cred = source.Credential();
  BOOST_TEST_REQUIRE(cred.ok(), Describe(cred.status()));
  BOOST_TEST((*cred->expiration == At("2026-11-22T10:00:00Z")));
}

BOOST_AUTO_TEST_CASE(expiries_beyond_the_clock_range_neither_overflow_nor_stick) {
  TempDir dir;
  FakeClock clock(At("2026-11-22T10:00:00Z"));
  ExecCredentialSource far(Exec(Plugin(dir, "far", TokenJson("far", "9999-12-31T23:59:59Z"), "far-runs")),
                           Options(clock));
  BOOST_TEST(*far.Token() == "far");
  clock.Advance(std::chrono::hours(24 * 365 * 100));
  BOOST_TEST(*far.Token() == "far");
  BOOST_TEST(Lines(dir / "far-runs") == 1u);

  ExecCredentialSource past(Exec(Plugin(dir, "past", TokenJson("past", "0001-01-01T00:00:00Z"), "past-runs")),
                            Options(clock));
  BOOST_TEST(*past.Token() == "past");
  BOOST_TEST(*past.Token() == "past");
  BOOST_TEST(Lines(dir / "past-runs") == 2u);
}

BOOST_AUTO_TEST_CASE(the_plugin_gets_args_env_exec_info_and_no_terminal) {
  TempDir dir;
  const std::string script = dir / "plugin";
  WriteExecutable(script, "#!/bin/sh\n"
                          "printf '%s\\n' \"$@\" > '" + (dir / "args") + "'\n"
                          "printf '%s|%s|%s' \"$MODE\" \"$KEEP\" \"$OVERRIDE\" > '" + (dir / "env") + "'\n"
                          "printf '%s' \"$KUBERNETES_EXEC_INFO\" > '" + (dir / "info") + "'\n"
                          "if [ -t 0 ]; then echo tty; else echo notty; fi > '" + (dir / "tty") + "'\n"
                          "cat > '" + (dir / "stdin") + "'\n"
                          "echo '" + TokenJson("t") + "'\n");
  ExecConfig config = Exec(script);
  config.args = {"--cluster", "prod", "two words"};
  config.env = {{"MODE", "fast"}, {"OVERRIDE", "from-kubeconfig"}};
  config.provide_cluster_info = true;
  ExecCredentialSourceOptions options;
  options.base_environment = std::vector<std::string>{"PATH=/usr/bin:/bin", "KEEP=kept", "OVERRIDE=from-process"};
  options.cluster = ExecClusterInfo{"https://k:6443", "api.internal", false, "PEM", true};
  ExecCredentialSource source(config, options);
  auto token = source.Token();
  BOOST_TEST_REQUIRE(token.ok(), Describe(token.status()));
  BOOST_TEST(ReadFile(dir / "args") == "--cluster\nprod\ntwo words\n");
  BOOST_TEST(ReadFile(dir / "env") == "fast|kept|from-kubeconfig");
  BOOST_TEST(ReadFile(dir / "info") ==
             R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"cluster":)"
             R"({"certificate-authority-data":"UEVN","disable-compression":true,"server":"https://k:6443",)"
             R"("tls-server-name":"api.internal"},"interactive":false}})");
  BOOST_TEST(ReadFile(dir / "tty") == "notty\n");
  BOOST_TEST(ReadFile(dir / "stdin") == "");

  // Without provideClusterInfo the plugin is told only that it is not interactive.
  config.provide_cluster_info = false;
  ExecCredentialSource quiet(config, options);
  BOOST_TEST_REQUIRE(quiet.Token().ok());
  BOOST_TEST(ReadFile(dir / "info") ==
             R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","spec":{"interactive":false}})");
}

BOOST_AUTO_TEST_CASE(a_plugin_returning_a_certificate_gives_an_empty_token) {
  TempDir dir;
  const std::string json = std::string(R"({"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",)") +
                           R"("status":{"clientCertificateData":"-----BEGIN CERTIFICATE-----\nA\n-----END CERTIFICATE-----\n",)" +
                           R"("clientKeyData":"-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n"}})";
  FakeClock clock;
  ExecCredentialSource source(Exec(Plugin(dir, "plugin", json)), Options(clock));
  auto token = source.Token();
  BOOST_TEST_REQUIRE(token.ok(), Describe(token.status()));
  BOOST_TEST(token->empty());
  auto cred = source.Credential();
  BOOST_TEST_REQUIRE(cred.ok());
  BOOST_TEST(cred->client_key_pem == "-----BEGIN PRIVATE KEY-----\nB\n-----END PRIVATE KEY-----\n");
  BOOST_TEST(Lines(dir / "runs") == 1u);
}

BOOST_AUTO_TEST_CASE(bad_json_and_wrong_api_version_are_invalid_argument_naming_the_command) {
  TempDir dir;
  FakeClock clock;
  const std::string bad = Plugin(dir, "bad-json", "{\"status\": {\"token\": \"PLANTED-EXEC-TOKEN\"");
  auto token = ExecCredentialSource(Exec(bad), Options(clock)).Token();
  BOOST_TEST((token.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(token.status().message() == "exec plugin \"" + bad + "\": output is not valid JSON (error at byte 43)");

  const std::string beta = Plugin(dir, "beta", TokenJson("PLANTED-EXEC-TOKEN", "", kV1Beta1));
  token = ExecCredentialSource(Exec(beta), Options(clock)).Token();
  BOOST_TEST((token.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(token.status().message() == "exec plugin \"" + beta +
                                             "\": apiVersion is \"client.authentication.k8s.io/v1beta1\" but the "
                                             "kubeconfig's exec.apiVersion is \"client.authentication.k8s.io/v1\"");
  BOOST_TEST(token.status().message().find("PLANTED-EXEC-TOKEN") == std::string::npos);
}

BOOST_AUTO_TEST_CASE(a_non_zero_exit_reports_status_and_first_stderr_lines_but_not_stdout_or_args) {
  TempDir dir;
  const std::string script = dir / "failing";
  WriteExecutable(script, "#!/bin/sh\necho run >> '" + (dir / "runs") +
                              "'\necho '{\"status\":{\"token\":\"PLANTED-STDOUT-TOKEN\"}}'\n"
                              "for i in 1 2 3 4 5 6 7; do echo \"error line $i\" >&2; done\nexit 3\n");
  ExecConfig config = Exec(script);
  config.args = {"--secret=PLANTED-ARG-SECRET"};
  FakeClock clock;
  ExecCredentialSource source(config, Options(clock));
  auto token = source.Token();
  BOOST_TEST_REQUIRE(!token.ok());
  BOOST_TEST((token.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(token.status().message() ==
             "exec plugin \"" + script +
                 "\": exited with status 3. stderr: error line 1 | error line 2 | error line 3 | error line 4 | "
                 "error line 5 | ...");
  BOOST_TEST(token.status().message().find("PLANTED") == std::string::npos);
  // Failures are not cached: the next call runs the plugin again.
  BOOST_TEST(!source.Token().ok());
  BOOST_TEST(Lines(dir / "runs") == 2u);
}

BOOST_AUTO_TEST_CASE(a_missing_command_says_so_with_the_install_hint) {
  FakeClock clock;
  ExecConfig config = Exec("kubefold-no-such-plugin-4c1d");
  config.install_hint = "Install it with: apt install kubefold-plugin";
  auto token = ExecCredentialSource(config, Options(clock)).Token();
  BOOST_TEST((token.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(token.status().message() ==
             "exec plugin \"kubefold-no-such-plugin-4c1d\": executable not found in PATH. Install it with: apt "
             "install kubefold-plugin");

  TempDir dir;
  auto by_path = ExecCredentialSource(Exec(dir / "missing"), Options(clock)).Token();
  BOOST_TEST((by_path.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(by_path.status().message() == "exec plugin \"" + (dir / "missing") + "\": executable not found");

  testing::WriteFile(dir / "not-executable", "#!/bin/sh\n");
  auto denied = ExecCredentialSource(Exec(dir / "not-executable"), Options(clock)).Token();
  BOOST_TEST((denied.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(denied.status().message() ==
             "exec plugin \"" + (dir / "not-executable") + "\": not executable (permission denied)");
}

BOOST_AUTO_TEST_CASE(oversized_output_is_cut_off_and_reported) {
  TempDir dir;
  const std::string script = dir / "chatty";
  WriteExecutable(script, "#!/bin/sh\nwhile :; do echo aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa; done\n");
  FakeClock clock;
  ExecCredentialSourceOptions options = Options(clock);
  options.max_output_bytes = 64 * 1024;
  auto token = ExecCredentialSource(Exec(script), options).Token();
  BOOST_TEST((token.status().code() == StatusCode::kResourceExhausted));
  BOOST_TEST(token.status().message() == "exec plugin \"" + script + "\": output larger than 65536 bytes; killed");
  BOOST_TEST(ExecCredentialSourceOptions().max_output_bytes == 1024u * 1024u);
}

BOOST_AUTO_TEST_CASE(a_plugin_that_hangs_is_killed_at_the_timeout) {
  TempDir dir;
  const std::string script = dir / "slow";
  WriteExecutable(script, "#!/bin/sh\necho starting >&2\nsleep 30\n");
  FakeClock clock;
  ExecCredentialSourceOptions options = Options(clock);
  options.timeout = std::chrono::milliseconds(1000);  // generous: sh must start and write first
  const auto start = std::chrono::steady_clock::now();
  auto token = ExecCredentialSource(Exec(script), options).Token();
  const auto took = std::chrono::steady_clock::now() - start;
  BOOST_TEST((token.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(token.status().message() == "exec plugin \"" + script + "\": no result within 1000 ms; killed. stderr: starting");
  BOOST_TEST((took < seconds(10)));  // the sleeping child was killed with the plugin
}

BOOST_AUTO_TEST_CASE(interactive_mode_always_is_refused_without_running_anything) {
  TempDir dir;
  FakeClock clock;
  ExecConfig config = Exec(Plugin(dir, "plugin", TokenJson("t")));
  config.interactive_mode = ExecInteractiveMode::kAlways;
  auto token = ExecCredentialSource(config, Options(clock)).Token();
  BOOST_TEST((token.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(!std::filesystem::exists(dir / "runs"));
}

BOOST_AUTO_TEST_CASE(concurrent_callers_share_one_plugin_run) {
  TempDir dir;
  const std::string script = dir / "plugin";
  WriteExecutable(script, "#!/bin/sh\necho run >> '" + (dir / "runs") + "'\nsleep 0.3\necho '" + TokenJson("shared") + "'\n");
  FakeClock clock;
  ExecCredentialSource source(Exec(script), Options(clock));
  std::vector<std::thread> threads;
  std::vector<std::string> got(6);
  for (size_t i = 0; i < got.size(); ++i) {
    threads.emplace_back([&, i] {
      auto token = source.Token();
      got[i] = token.ok() ? *token : Describe(token.status());
    });
  }
  for (auto& t : threads) t.join();
  for (const std::string& g : got) BOOST_TEST(g == "shared");
  BOOST_TEST(Lines(dir / "runs") == 1u);
}

}  // namespace
}  // namespace kubefold::kube
