#define BOOST_TEST_MODULE in_cluster
#include <boost/test/unit_test.hpp>

#include <filesystem>
#include <map>

#include "controllers/kube/in_cluster.h"
#include "controllers/kube/token_source.h"
#include "tests/controllers/kube/test_util.h"

namespace kubefold::kube {
namespace {

using testing::Describe;
using testing::kCaPem;
using testing::TempDir;
using testing::WriteFile;

InClusterOptions Options(const std::string& dir, std::map<std::string, std::string> env) {
  InClusterOptions options;
  options.service_account_dir = dir;
  options.lookup_env = [env = std::move(env)](const std::string& name) -> std::optional<std::string> {
    auto it = env.find(name);
    if (it == env.end()) return std::nullopt;
    return it->second;
  };
  return options;
}

void WriteServiceAccount(const TempDir& dir) {
  WriteFile(dir / "token", "sa-token-value\n");
  WriteFile(dir / "ca.crt", kCaPem);
  WriteFile(dir / "namespace", "kubefold-system");
}

BOOST_AUTO_TEST_CASE(in_cluster_config_reads_environment_token_ca_and_namespace) {
  TempDir dir;
  WriteServiceAccount(dir);
  auto rest = LoadInClusterConfig(
      Options(dir.path(), {{"KUBERNETES_SERVICE_HOST", "10.96.0.1"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->server == "https://10.96.0.1:443");
  BOOST_TEST(rest->ca_pem == kCaPem);
  BOOST_TEST(rest->bearer_token == "sa-token-value");
  BOOST_TEST(rest->bearer_token_file == dir / "token");
  BOOST_TEST(rest->namespace_name == "kubefold-system");
  BOOST_TEST(rest->insecure_skip_tls_verify == false);
  BOOST_TEST(rest->tls_server_name == "");
  BOOST_TEST(rest->client_certificate_pem == "");
  BOOST_TEST(!rest->exec.has_value());
  BOOST_TEST(rest->impersonate.empty());
}

BOOST_AUTO_TEST_CASE(ipv6_service_hosts_are_bracketed_like_go_join_host_port) {
  TempDir dir;
  WriteServiceAccount(dir);
  auto rest = LoadInClusterConfig(
      Options(dir.path(), {{"KUBERNETES_SERVICE_HOST", "fd00:10:96::1"}, {"KUBERNETES_SERVICE_PORT", "6443"}}));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->server == "https://[fd00:10:96::1]:6443");
  BOOST_TEST(JoinHostPort("example.com", "80") == "example.com:80");
  BOOST_TEST(JoinHostPort("::1", "443") == "[::1]:443");
  BOOST_TEST(JoinHostPort("", "443") == ":443");
}

BOOST_AUTO_TEST_CASE(missing_or_empty_service_variables_mean_not_in_cluster) {
  TempDir dir;
  WriteServiceAccount(dir);
  struct Case {
    std::map<std::string, std::string> env;
    std::string missing;
  };
  for (const Case& c : std::vector<Case>{
           {{}, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"},
           {{{"KUBERNETES_SERVICE_PORT", "443"}}, "KUBERNETES_SERVICE_HOST"},
           {{{"KUBERNETES_SERVICE_HOST", "10.0.0.1"}}, "KUBERNETES_SERVICE_PORT"},
           {{{"KUBERNETES_SERVICE_HOST", ""}, {"KUBERNETES_SERVICE_PORT", "443"}}, "KUBERNETES_SERVICE_HOST"},
       }) {
    auto rest = LoadInClusterConfig(Options(dir.path(), c.env));
    BOOST_TEST_REQUIRE(!rest.ok());
    BOOST_TEST(IsNotInCluster(rest.status()));
    BOOST_TEST((rest.status().code() == StatusCode::kNotFound));
    BOOST_TEST(rest.status().message() ==
               "not running in a Kubernetes cluster: " + c.missing +
                   " not set (in-cluster config needs KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT)");
  }
}

BOOST_AUTO_TEST_CASE(a_bad_port_is_invalid_argument) {
  TempDir dir;
  WriteServiceAccount(dir);
  for (const char* port : {"https", "0", "70000", "443 ", "-1"}) {
    auto rest =
        LoadInClusterConfig(Options(dir.path(), {{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", port}}));
    BOOST_TEST((rest.status().code() == StatusCode::kInvalidArgument), port);
    BOOST_TEST(!IsNotInCluster(rest.status()));
  }
}

BOOST_AUTO_TEST_CASE(missing_token_or_ca_is_failed_precondition_naming_the_file) {
  const std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  {
    TempDir dir;
    WriteFile(dir / "ca.crt", kCaPem);
    auto rest = LoadInClusterConfig(Options(dir.path(), env));
    BOOST_TEST((rest.status().code() == StatusCode::kFailedPrecondition));
    BOOST_TEST(rest.status().message() ==
               "in-cluster config: service-account token " + (dir / "token") + ": No such file or directory");
  }
  {
    TempDir dir;
    WriteFile(dir / "token", "t");
    auto rest = LoadInClusterConfig(Options(dir.path(), env));
    BOOST_TEST((rest.status().code() == StatusCode::kFailedPrecondition));
    BOOST_TEST(rest.status().message() ==
               "in-cluster config: service-account CA " + (dir / "ca.crt") + ": No such file or directory");
  }
  {
    TempDir dir;
    WriteFile(dir / "token", " \n");
    WriteFile(dir / "ca.crt", kCaPem);
    auto rest = LoadInClusterConfig(Options(dir.path(), env));
    BOOST_TEST((rest.status().code() == StatusCode::kFailedPrecondition));
    BOOST_TEST(rest.status().message() == "in-cluster config: service-account token " + (dir / "token") + " is empty");
  }
  {
    TempDir dir;
    WriteFile(dir / "token", "SA-SECRET-TOKEN");
    WriteFile(dir / "ca.crt", "garbage");
    auto rest = LoadInClusterConfig(Options(dir.path(), env));
    BOOST_TEST((rest.status().code() == StatusCode::kFailedPrecondition));
    BOOST_TEST(rest.status().message() == "in-cluster config: service-account CA " + (dir / "ca.crt") + " holds no PEM block");
    BOOST_TEST(rest.status().message().find("SA-SECRET-TOKEN") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(a_missing_or_empty_namespace_file_means_default) {
  const std::map<std::string, std::string> env = {{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}};
  TempDir dir;
  WriteFile(dir / "token", "t");
  WriteFile(dir / "ca.crt", kCaPem);
  auto rest = LoadInClusterConfig(Options(dir.path(), env));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->namespace_name == "default");
  WriteFile(dir / "namespace", "\n");
  rest = LoadInClusterConfig(Options(dir.path(), env));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->namespace_name == "default");
}

BOOST_AUTO_TEST_CASE(the_default_options_read_the_real_environment) {
  // This test never runs in a pod with a service account at the default
  // directory; with the variables unset it must say "not in cluster".
  if (std::getenv("KUBERNETES_SERVICE_HOST") != nullptr) return;
  auto rest = LoadInClusterConfig();
  BOOST_TEST(IsNotInCluster(rest.status()));
  BOOST_TEST(std::string(kServiceAccountDir) == "/var/run/secrets/kubernetes.io/serviceaccount");
}

BOOST_AUTO_TEST_CASE(the_in_cluster_token_source_rereads_the_rotated_token) {
  TempDir dir;
  WriteServiceAccount(dir);
  auto rest = LoadInClusterConfig(
      Options(dir.path(), {{"KUBERNETES_SERVICE_HOST", "h"}, {"KUBERNETES_SERVICE_PORT", "443"}}));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  testing::FakeClock clock;
  std::unique_ptr<TokenSource> source = NewTokenSource(*rest, clock.AsFunction());
  BOOST_TEST_REQUIRE(source != nullptr);
  BOOST_TEST(*source->Token() == "sa-token-value");
  WriteFile(dir / "token", "rotated\n");
  BOOST_TEST(*source->Token() == "sa-token-value");  // within the minute
  clock.Advance(std::chrono::minutes(1));
  BOOST_TEST(*source->Token() == "rotated");
}

}  // namespace
}  // namespace kubefold::kube
