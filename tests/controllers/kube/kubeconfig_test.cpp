#define BOOST_TEST_MODULE kubeconfig
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <filesystem>
#include <vector>

#include "controllers/kube/kubeconfig.h"
#include "tests/controllers/kube/test_util.h"

namespace kubefold::kube {
namespace {

using testing::Describe;
using testing::kCaPem;
using testing::kCertPem;
using testing::kKeyPem;
using testing::TempDir;
using testing::WriteFile;

const std::string kCaB64 =
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClEwRXRZMlZ5ZEE9PQotLS0tLUVORCBDRVJUSUZJQ0FURS0tLS0tCg==";
const std::string kCertB64 = "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tClkyeHBaVzUwCi0tLS0tRU5EIENFUlRJRklDQVRFLS0tLS0K";
const std::string kKeyB64 =
    "LS0tLS1CRUdJTiBQUklWQVRFIEtFWS0tLS0tClUwVkRVa1ZVTFV0RldTMU5RVlJGVWtsQlRBPT0KLS0tLS1FTkQgUFJJVkFURSBLRVktLS0tLQo=";

// Every field of spec §4.1.
const std::string kFullConfig = R"(apiVersion: v1
kind: Config
preferences: {colors: true}
current-context: prod
clusters:
- name: prod
  cluster:
    server: https://prod.example.com:6443
    tls-server-name: api.prod.internal
    insecure-skip-tls-verify: false
    certificate-authority: certs/ca.crt
    certificate-authority-data: )" + kCaB64 + R"(
    proxy-url: http://proxy.example.com:3128
    disable-compression: true
    extensions: [{name: x, extension: {a: b}}]
- name: dev
  cluster:
    server: http://[fd00::1]:8080
    insecure-skip-tls-verify: yes
users:
- name: alice
  user:
    client-certificate: /abs/alice.crt
    client-certificate-data: )" + kCertB64 + R"(
    client-key: alice.key
    client-key-data: )" + kKeyB64 + R"(
    token: alice-token-value
    tokenFile: tokens/alice
    as: bob
    as-uid: "1001"
    as-groups: [devs, "system:masters"]
    as-user-extra:
      scopes: [read, write]
      team: []
    username: alice-basic
    password: alice-password-value
- name: plugin
  user:
    exec:
      command: ./bin/get-token
      args: [--cluster, prod, -v]
      env:
      - {name: MODE, value: fast}
      - {name: EMPTY}
      apiVersion: client.authentication.k8s.io/v1
      installHint: "run: apt install get-token"
      provideClusterInfo: true
      interactiveMode: Never
- name: oidc
  user:
    auth-provider:
      name: oidc
      config: {client-id: kubectl, id-token: oidc-id-token-value, refresh-token: ~}
contexts:
- name: prod
  context: {cluster: prod, user: alice, namespace: shop}
- name: dev
  context:
    cluster: dev
    user: plugin
)";

BOOST_AUTO_TEST_CASE(parse_reads_every_cluster_field_exactly) {
  auto config = ParseKubeconfig(kFullConfig, "/home/me/.kube/config", "/home/me/.kube");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST(config->clusters.size() == 2u);
  const KubeconfigCluster& prod = config->clusters.at("prod");
  BOOST_TEST(prod.server == "https://prod.example.com:6443");
  BOOST_TEST(prod.tls_server_name == "api.prod.internal");
  BOOST_TEST(prod.insecure_skip_tls_verify == false);
  BOOST_TEST(prod.certificate_authority == "/home/me/.kube/certs/ca.crt");
  BOOST_TEST(prod.certificate_authority_data == kCaPem);
  BOOST_TEST(prod.proxy_url == "http://proxy.example.com:3128");
  BOOST_TEST(prod.disable_compression == true);
  BOOST_TEST(prod.origin == "/home/me/.kube/config");
  const KubeconfigCluster& dev = config->clusters.at("dev");
  BOOST_TEST(dev.server == "http://[fd00::1]:8080");
  BOOST_TEST(dev.insecure_skip_tls_verify == true);
  BOOST_TEST(dev.certificate_authority.empty());
  BOOST_TEST(dev.certificate_authority_data.empty());
  BOOST_TEST(dev.disable_compression == false);
}

BOOST_AUTO_TEST_CASE(parse_reads_every_user_field_exactly) {
  auto config = ParseKubeconfig(kFullConfig, "/home/me/.kube/config", "/home/me/.kube");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST(config->users.size() == 3u);
  const KubeconfigUser& alice = config->users.at("alice");
  BOOST_TEST(alice.client_certificate == "/abs/alice.crt");
  BOOST_TEST(alice.client_certificate_data == kCertPem);
  BOOST_TEST(alice.client_key == "/home/me/.kube/alice.key");
  BOOST_TEST(alice.client_key_data == kKeyPem);
  BOOST_TEST(alice.token == "alice-token-value");
  BOOST_TEST(alice.token_file == "/home/me/.kube/tokens/alice");
  BOOST_TEST(alice.impersonate.user_name == "bob");
  BOOST_TEST(alice.impersonate.uid == "1001");
  BOOST_TEST((alice.impersonate.groups == std::vector<std::string>{"devs", "system:masters"}));
  BOOST_TEST(alice.impersonate.extra.size() == 2u);
  BOOST_TEST((alice.impersonate.extra.at("scopes") == std::vector<std::string>{"read", "write"}));
  BOOST_TEST(alice.impersonate.extra.at("team").empty());
  BOOST_TEST(alice.username == "alice-basic");
  BOOST_TEST(alice.password == "alice-password-value");
  BOOST_TEST(!alice.auth_provider.has_value());
  BOOST_TEST(!alice.exec.has_value());

  const KubeconfigUser& plugin = config->users.at("plugin");
  BOOST_TEST_REQUIRE(plugin.exec.has_value());
  ExecConfig want;
  want.command = "/home/me/.kube/bin/get-token";
  want.args = {"--cluster", "prod", "-v"};
  want.env = {{"MODE", "fast"}, {"EMPTY", ""}};
  want.api_version = "client.authentication.k8s.io/v1";
  want.install_hint = "run: apt install get-token";
  want.provide_cluster_info = true;
  want.interactive_mode = ExecInteractiveMode::kNever;
  BOOST_TEST((*plugin.exec == want));

  const KubeconfigUser& oidc = config->users.at("oidc");
  BOOST_TEST_REQUIRE(oidc.auth_provider.has_value());
  BOOST_TEST(oidc.auth_provider->name == "oidc");
  BOOST_TEST(oidc.auth_provider->config.size() == 3u);
  BOOST_TEST(oidc.auth_provider->config.at("client-id") == "kubectl");
  BOOST_TEST(oidc.auth_provider->config.at("refresh-token") == "");
}

BOOST_AUTO_TEST_CASE(parse_reads_contexts_and_current_context) {
  auto config = ParseKubeconfig(kFullConfig, "/home/me/.kube/config", "/home/me/.kube");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST(config->current_context == "prod");
  BOOST_TEST(config->current_context_origin == "/home/me/.kube/config");
  BOOST_TEST(config->contexts.size() == 2u);
  BOOST_TEST(config->contexts.at("prod").cluster == "prod");
  BOOST_TEST(config->contexts.at("prod").user == "alice");
  BOOST_TEST(config->contexts.at("prod").namespace_name == "shop");
  BOOST_TEST(config->contexts.at("dev").namespace_name == "");
  BOOST_TEST((config->files == std::vector<std::string>{"/home/me/.kube/config"}));
}

BOOST_AUTO_TEST_CASE(an_empty_or_null_document_is_an_empty_config) {
  for (const char* text : {"", "   \n", "~\n", "---\n", "clusters:\nusers: ~\ncontexts: []\n"}) {
    auto config = ParseKubeconfig(text, "empty");
    BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
    BOOST_TEST(config->clusters.empty());
    BOOST_TEST(config->users.empty());
    BOOST_TEST(config->contexts.empty());
    BOOST_TEST(config->current_context.empty());
  }
}

BOOST_AUTO_TEST_CASE(exec_interactive_mode_defaults_to_if_available_only_for_old_api_versions) {
  auto config = ParseKubeconfig(R"(users:
- name: beta
  user: {exec: {command: a, apiVersion: client.authentication.k8s.io/v1beta1}}
- name: alpha
  user: {exec: {command: a, apiVersion: client.authentication.k8s.io/v1alpha1}}
- name: v1
  user: {exec: {command: a, apiVersion: client.authentication.k8s.io/v1}}
- name: always
  user: {exec: {command: a, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Always}}
)",
                                "k");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST((config->users.at("beta").exec->interactive_mode == ExecInteractiveMode::kIfAvailable));
  BOOST_TEST((config->users.at("alpha").exec->interactive_mode == ExecInteractiveMode::kIfAvailable));
  BOOST_TEST(!config->users.at("v1").exec->interactive_mode.has_value());
  BOOST_TEST((config->users.at("always").exec->interactive_mode == ExecInteractiveMode::kAlways));
  // A bare command name is looked up in PATH later, not resolved as a path.
  auto with_base = ParseKubeconfig("users: [{name: u, user: {exec: {command: kubelogin}}}]", "k", "/base");
  BOOST_TEST_REQUIRE(with_base.ok(), Describe(with_base.status()));
  BOOST_TEST(with_base->users.at("u").exec->command == "kubelogin");
}

BOOST_AUTO_TEST_CASE(data_fields_that_are_not_base64_are_rejected_naming_file_and_field) {
  const std::string prefix = "users:\n- name: a\n  user: {}\n- name: b\n  user:\n    client-key-data: ";
  for (const char* bad : {"\"not base64!\"", "QUJD=", "QUJ", "QU=D", "QUJD QUJD", "====", "QQ==QUJD"}) {
    auto config = ParseKubeconfig(prefix + bad + "\n", "/path/config");
    BOOST_TEST_REQUIRE(!config.ok(), bad);
    BOOST_TEST((config.status().code() == StatusCode::kInvalidArgument));
    BOOST_TEST(config.status().message() == "kubeconfig /path/config: users[1].user.client-key-data: not valid base64");
  }
  auto cluster = ParseKubeconfig("clusters: [{name: c, cluster: {certificate-authority-data: 'a'}}]", "k");
  BOOST_TEST(cluster.status().message() == "kubeconfig k: clusters[0].cluster.certificate-authority-data: not valid base64");
  auto cert = ParseKubeconfig("users: [{name: c, user: {client-certificate-data: '@@@@'}}]", "k");
  BOOST_TEST(cert.status().message() == "kubeconfig k: users[0].user.client-certificate-data: not valid base64");
}

BOOST_AUTO_TEST_CASE(base64_data_may_be_wrapped_over_lines_as_go_accepts) {
  // A YAML literal block keeps the newlines; Go's decoder skips \r and \n.
  const std::string text = "users:\n- name: u\n  user:\n    client-key-data: |\n      " + kKeyB64.substr(0, 40) +
                           "\n      " + kKeyB64.substr(40) + "\n";
  auto config = ParseKubeconfig(text, "k");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST(config->users.at("u").client_key_data == kKeyPem);
}

BOOST_AUTO_TEST_CASE(wrong_shapes_are_rejected_naming_the_field) {
  struct Case {
    std::string text;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"- a\n- b\n", "kubeconfig k: top level: expected a mapping"},
      {"clusters: {a: b}\n", "kubeconfig k: clusters: expected a list"},
      {"clusters: [x]\n", "kubeconfig k: clusters[0]: expected a mapping"},
      {"clusters: [{cluster: {server: https://a}}]\n", "kubeconfig k: clusters[0].name: missing or empty"},
      {"clusters: [{name: a}, {name: a}]\n", "kubeconfig k: clusters[1].name: duplicate name \"a\" (also clusters[0])"},
      {"clusters: [{name: a, cluster: [1]}]\n", "kubeconfig k: clusters[0].cluster: expected a mapping"},
      {"clusters: [{name: a, cluster: {server: {x: 1}}}]\n", "kubeconfig k: clusters[0].cluster.server: expected a string"},
      {"clusters: [{name: a, cluster: {insecure-skip-tls-verify: maybe}}]\n",
       "kubeconfig k: clusters[0].cluster.insecure-skip-tls-verify: expected true or false"},
      {"clusters: [{name: a, cluster: {disable-compression: [true]}}]\n",
       "kubeconfig k: clusters[0].cluster.disable-compression: expected true or false"},
      {"users: [{name: u, user: {as-groups: devs}}]\n", "kubeconfig k: users[0].user.as-groups: expected a list of strings"},
      {"users: [{name: u, user: {as-groups: [[a]]}}]\n", "kubeconfig k: users[0].user.as-groups[0]: expected a string"},
      {"users: [{name: u, user: {as-user-extra: {k: v}}}]\n",
       "kubeconfig k: users[0].user.as-user-extra.k: expected a list of strings"},
      {"users: [{name: u, user: {exec: [a]}}]\n", "kubeconfig k: users[0].user.exec: expected a mapping"},
      {"users: [{name: u, user: {exec: {env: {A: b}}}}]\n",
       "kubeconfig k: users[0].user.exec.env: expected a list of {name, value}"},
      {"users: [{name: u, user: {exec: {env: [{name: [x]}]}}}]\n",
       "kubeconfig k: users[0].user.exec.env[0].name: expected a string"},
      {"users: [{name: u, user: {exec: {interactiveMode: Sometimes}}}]\n",
       "kubeconfig k: users[0].user.exec.interactiveMode: must be Never, IfAvailable or Always, not \"Sometimes\""},
      {"users: [{name: u, user: {exec: {provideClusterInfo: 3}}}]\n",
       "kubeconfig k: users[0].user.exec.provideClusterInfo: expected true or false"},
      {"users: [{name: u, user: {auth-provider: {name: x, config: {a: [1]}}}}]\n",
       "kubeconfig k: users[0].user.auth-provider.config: expected a mapping of strings to strings"},
      {"contexts: [{name: c, context: {namespace: [a]}}]\n", "kubeconfig k: contexts[0].context.namespace: expected a string"},
      {"current-context: [a]\n", "kubeconfig k: current-context: expected a string"},
  };
  for (const Case& c : cases) {
    auto config = ParseKubeconfig(c.text, "k");
    BOOST_TEST_REQUIRE(!config.ok(), c.text);
    BOOST_TEST((config.status().code() == StatusCode::kInvalidArgument), c.text);
    BOOST_TEST(config.status().message() == c.message);
  }
}

BOOST_AUTO_TEST_CASE(yaml_syntax_errors_name_the_file_and_the_line) {
  auto config = ParseKubeconfig("clusters:\n- name: a\n  cluster: {server: [}\n", "/etc/kube/config");
  BOOST_TEST_REQUIRE(!config.ok());
  BOOST_TEST((config.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(config.status().message().rfind("kubeconfig /etc/kube/config: not valid YAML at line 3", 0) == 0,
             config.status().message());
}

BOOST_AUTO_TEST_CASE(relative_paths_resolve_against_the_kubeconfig_directory) {
  TempDir dir;
  WriteFile(dir / "sub/config", R"(clusters: [{name: c, cluster: {server: "https://a", certificate-authority: ca.crt}}]
users:
- name: u
  user:
    client-certificate: ../certs/u.crt
    client-key: ./keys/u.key
    tokenFile: /var/token
    exec: {command: bin/plugin}
)");
  auto config = LoadKubeconfigFile(dir / "sub/config");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST(config->clusters.at("c").certificate_authority == dir / "sub/ca.crt");
  const KubeconfigUser& u = config->users.at("u");
  BOOST_TEST(u.client_certificate == dir / "certs/u.crt");
  BOOST_TEST(u.client_key == dir / "sub/keys/u.key");
  BOOST_TEST(u.token_file == "/var/token");
  BOOST_TEST(u.exec->command == dir / "sub/bin/plugin");
  BOOST_TEST(u.origin == dir / "sub/config");
}

BOOST_AUTO_TEST_CASE(a_relative_kubeconfig_path_resolves_against_the_working_directory) {
  TempDir dir;
  WriteFile(dir / "k/config", "clusters: [{name: c, cluster: {certificate-authority: ca.crt}}]\n");
  const auto old = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  auto config = LoadKubeconfigFile("k/config");
  std::filesystem::current_path(old);
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  BOOST_TEST(config->clusters.at("c").certificate_authority == dir / "k/ca.crt");
  BOOST_TEST(config->clusters.at("c").origin == "k/config");
}

BOOST_AUTO_TEST_CASE(merge_lets_the_first_file_win_for_each_name_and_for_current_context) {
  TempDir dir;
  WriteFile(dir / "a", R"(clusters: [{name: shared, cluster: {server: "https://from-a"}}]
users: [{name: shared, user: {token: from-a}}]
contexts: [{name: ctx-a, context: {cluster: shared, user: shared}}]
)");
  WriteFile(dir / "b", R"(current-context: ctx-b
clusters:
- {name: shared, cluster: {server: "https://from-b", tls-server-name: only-in-b}}
- {name: only-b, cluster: {server: "https://b-only"}}
users: [{name: shared, user: {token: from-b, username: x}}]
contexts:
- {name: ctx-b, context: {cluster: shared, user: shared, namespace: bee}}
- {name: ctx-a, context: {cluster: only-b, user: shared}}
)");
  WriteFile(dir / "c", "current-context: ctx-a\n");
  auto merged = LoadKubeconfigFiles({dir / "a", dir / "b", dir / "c"});
  BOOST_TEST_REQUIRE(merged.ok(), Describe(merged.status()));
  BOOST_TEST(merged->clusters.size() == 2u);
  // The whole entry comes from the first file: no field of b's "shared" leaks in.
  BOOST_TEST(merged->clusters.at("shared").server == "https://from-a");
  BOOST_TEST(merged->clusters.at("shared").tls_server_name == "");
  BOOST_TEST(merged->clusters.at("shared").origin == dir / "a");
  BOOST_TEST(merged->clusters.at("only-b").server == "https://b-only");
  BOOST_TEST(merged->users.at("shared").token == "from-a");
  BOOST_TEST(merged->users.at("shared").username == "");
  BOOST_TEST(merged->contexts.at("ctx-a").cluster == "shared");
  BOOST_TEST(merged->contexts.at("ctx-b").namespace_name == "bee");
  // a sets no current-context; b is the first that does.
  BOOST_TEST(merged->current_context == "ctx-b");
  BOOST_TEST(merged->current_context_origin == dir / "b");
  BOOST_TEST((merged->files == std::vector<std::string>{dir / "a", dir / "b", dir / "c"}));

  auto rest = ResolveContext(*merged);
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->server == "https://from-a");
  BOOST_TEST(rest->bearer_token == "from-a");
  BOOST_TEST(rest->namespace_name == "bee");
}

BOOST_AUTO_TEST_CASE(merge_skips_missing_files_and_duplicates_but_fails_when_none_exists) {
  TempDir dir;
  WriteFile(dir / "real", "current-context: x\n");
  auto merged = LoadKubeconfigFiles({dir / "missing1", dir / "real", dir / "real", dir / "missing2"});
  BOOST_TEST_REQUIRE(merged.ok(), Describe(merged.status()));
  BOOST_TEST(merged->current_context == "x");
  BOOST_TEST((merged->files == std::vector<std::string>{dir / "real"}));

  auto none = LoadKubeconfigFiles({dir / "missing1", dir / "missing2"});
  BOOST_TEST_REQUIRE(!none.ok());
  BOOST_TEST((none.status().code() == StatusCode::kNotFound));
  BOOST_TEST(none.status().message() ==
             "kubeconfig: none of the files exist: " + (dir / "missing1") + ", " + (dir / "missing2"));

  auto empty = LoadKubeconfigFiles({});
  BOOST_TEST((empty.status().code() == StatusCode::kInvalidArgument));
}

BOOST_AUTO_TEST_CASE(merge_fails_on_a_broken_file_rather_than_skipping_it) {
  TempDir dir;
  WriteFile(dir / "good", "current-context: x\n");
  WriteFile(dir / "bad", "users: [{name: u, user: {token-data: 1, client-key-data: '!'}}]\n");
  auto merged = LoadKubeconfigFiles({dir / "good", dir / "bad"});
  BOOST_TEST_REQUIRE(!merged.ok());
  BOOST_TEST(merged.status().message() ==
             "kubeconfig " + (dir / "bad") + ": users[0].user.client-key-data: not valid base64");
  // A directory where a file should be is an error too, not a skip.
  std::filesystem::create_directories(dir / "adir");
  auto directory = LoadKubeconfigFiles({dir / "adir"});
  BOOST_TEST((directory.status().code() == StatusCode::kFailedPrecondition), Describe(directory.status()));
}

BOOST_AUTO_TEST_CASE(split_kubeconfig_paths_splits_on_colons_and_drops_empty_entries) {
  BOOST_TEST((SplitKubeconfigPaths("/a:/b::c:") == std::vector<std::string>{"/a", "/b", "c"}));
  BOOST_TEST(SplitKubeconfigPaths("").empty());
  BOOST_TEST(SplitKubeconfigPaths(":::").empty());
  BOOST_TEST((SplitKubeconfigPaths("/only") == std::vector<std::string>{"/only"}));
}

BOOST_AUTO_TEST_CASE(default_paths_come_from_kubeconfig_or_home) {
  const char* old_kc = std::getenv("KUBECONFIG");
  const std::string saved_kc = old_kc ? old_kc : "";
  const char* old_home = std::getenv("HOME");
  const std::string saved_home = old_home ? old_home : "";

  ::setenv("KUBECONFIG", "/x/one:/x/two", 1);
  auto paths = DefaultKubeconfigPaths();
  BOOST_TEST_REQUIRE(paths.ok());
  BOOST_TEST((*paths == std::vector<std::string>{"/x/one", "/x/two"}));
  ::setenv("KUBECONFIG", "", 1);
  ::setenv("HOME", "/home/tester", 1);
  paths = DefaultKubeconfigPaths();
  BOOST_TEST_REQUIRE(paths.ok());
  BOOST_TEST((*paths == std::vector<std::string>{"/home/tester/.kube/config"}));
  ::unsetenv("HOME");
  paths = DefaultKubeconfigPaths();
  BOOST_TEST((paths.status().code() == StatusCode::kFailedPrecondition));

  if (old_kc) ::setenv("KUBECONFIG", saved_kc.c_str(), 1); else ::unsetenv("KUBECONFIG");
  if (old_home) ::setenv("HOME", saved_home.c_str(), 1);
}

// ---------------------------------------------------------------------------
// ResolveContext
// ---------------------------------------------------------------------------

std::string Config(const std::string& cluster_body, const std::string& user_body,
                   const std::string& context_extra = "") {
  return "current-context: ctx\nclusters:\n- name: c\n  cluster:\n" + cluster_body + "users:\n- name: u\n  user:\n" +
         user_body + "contexts:\n- name: ctx\n  context:\n    cluster: c\n    user: u\n" + context_extra;
}

const std::string kServer = "    server: https://k.example.com:6443\n";

Result<RestConfig> ResolveText(const std::string& text, std::string_view context = {},
                               std::string_view base_dir = {}) {
  auto config = ParseKubeconfig(text, "kc", base_dir);
  if (!config.ok()) return config.status();
  return ResolveContext(*config, context);
}

BOOST_AUTO_TEST_CASE(resolve_builds_a_rest_config_from_data_fields) {
  auto rest = ResolveText(Config(kServer + "    tls-server-name: api.internal\n    certificate-authority-data: " + kCaB64 +
                                     "\n    disable-compression: true\n",
                                 "    client-certificate-data: " + kCertB64 + "\n    client-key-data: " + kKeyB64 +
                                     "\n    token: tok\n    as: bob\n    as-uid: '7'\n    as-groups: [g1]\n"
                                     "    as-user-extra: {k: [v]}\n",
                                 "    namespace: shop\n"));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->server == "https://k.example.com:6443");
  BOOST_TEST(rest->tls_server_name == "api.internal");
  BOOST_TEST(rest->insecure_skip_tls_verify == false);
  BOOST_TEST(rest->ca_pem == kCaPem);
  BOOST_TEST(rest->client_certificate_pem == kCertPem);
  BOOST_TEST(rest->client_key_pem == kKeyPem);
  BOOST_TEST(rest->bearer_token == "tok");
  BOOST_TEST(rest->bearer_token_file == "");
  BOOST_TEST(rest->username == "");
  BOOST_TEST(rest->password == "");
  BOOST_TEST(!rest->exec.has_value());
  BOOST_TEST(rest->disable_compression == true);
  BOOST_TEST(rest->namespace_name == "shop");
  Impersonation want{"bob", "7", {"g1"}, {{"k", {"v"}}}};
  BOOST_TEST((rest->impersonate == want));
  BOOST_TEST(rest->context_name == "ctx");
  BOOST_TEST(rest->cluster_name == "c");
  BOOST_TEST(rest->user_name == "u");
}

BOOST_AUTO_TEST_CASE(resolve_reads_ca_certificate_key_and_token_files_relative_to_the_kubeconfig) {
  TempDir dir;
  WriteFile(dir / "pki/ca.crt", kCaPem);
  WriteFile(dir / "pki/u.crt", kCertPem);
  WriteFile(dir / "pki/u.key", kKeyPem);
  WriteFile(dir / "token", "  file-token\n");
  WriteFile(dir / "config", Config(kServer + "    certificate-authority: pki/ca.crt\n",
                                   "    client-certificate: pki/u.crt\n    client-key: pki/u.key\n"
                                   "    tokenFile: token\n"));
  auto config = LoadKubeconfigFile(dir / "config");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));
  auto rest = ResolveContext(*config, "ctx");
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->ca_pem == kCaPem);
  BOOST_TEST(rest->client_certificate_pem == kCertPem);
  BOOST_TEST(rest->client_key_pem == kKeyPem);
  BOOST_TEST(rest->bearer_token == "file-token");
  BOOST_TEST(rest->bearer_token_file == dir / "token");
  BOOST_TEST(rest->namespace_name == "default");
}

BOOST_AUTO_TEST_CASE(resolve_prefers_data_over_paths_and_token_over_token_file) {
  // The paths do not exist: they must not even be read.
  auto rest = ResolveText(Config(kServer + "    certificate-authority: /nonexistent/ca\n    certificate-authority-data: " +
                                     kCaB64 + "\n",
                                 "    client-certificate: /nonexistent/crt\n    client-certificate-data: " + kCertB64 +
                                     "\n    client-key: /nonexistent/key\n    client-key-data: " + kKeyB64 +
                                     "\n    token: inline\n    tokenFile: /nonexistent/token\n"));
  BOOST_TEST_REQUIRE(rest.ok(), Describe(rest.status()));
  BOOST_TEST(rest->ca_pem == kCaPem);
  BOOST_TEST(rest->client_certificate_pem == kCertPem);
  BOOST_TEST(rest->client_key_pem == kKeyPem);
  BOOST_TEST(rest->bearer_token == "inline");
  BOOST_TEST(rest->bearer_token_file == "");
}

BOOST_AUTO_TEST_CASE(resolve_carries_basic_auth_insecure_and_exec) {
  auto basic = ResolveText(Config("    server: http://localhost:8080\n    insecure-skip-tls-verify: true\n",
                                  "    username: admin\n    password: pw\n"));
  BOOST_TEST_REQUIRE(basic.ok(), Describe(basic.status()));
  BOOST_TEST(basic->insecure_skip_tls_verify == true);
  BOOST_TEST(basic->username == "admin");
  BOOST_TEST(basic->password == "pw");

  auto exec = ResolveText(Config(kServer, "    exec:\n      command: get-token\n      apiVersion: "
                                          "client.authentication.k8s.io/v1beta1\n      args: [a]\n"));
  BOOST_TEST_REQUIRE(exec.ok(), Describe(exec.status()));
  BOOST_TEST_REQUIRE(exec->exec.has_value());
  BOOST_TEST(exec->exec->command == "get-token");
  BOOST_TEST((exec->exec->interactive_mode == ExecInteractiveMode::kIfAvailable));
  BOOST_TEST(exec->bearer_token.empty());
}

BOOST_AUTO_TEST_CASE(resolve_accepts_the_server_url_forms_kubectl_uses) {
  for (const char* url : {"https://1.2.3.4", "https://k:443", "HTTPS://Host.Example:6443/", "http://[::1]:8080",
                          "https://[fd00::1]", "https://rancher.example.com/k8s/clusters/c-abc"}) {
    auto rest = ResolveText(Config(std::string("    server: \"") + url + "\"\n", "    token: t\n"));
    BOOST_TEST(rest.ok(), url << ": " << Describe(rest.status()));
  }
}

BOOST_AUTO_TEST_CASE(resolve_rejects_bad_server_urls_naming_the_cluster) {
  struct Case {
    const char* url;
    const char* problem;
  };
  for (const Case& c : std::vector<Case>{
           {"k.example.com:6443", "must start with https:// or http://"},
           {"ftp://k", "must start with https:// or http://"},
           {"https://", "has no host"},
           {"https://:443", "has no host"},
           {"https:///path", "has no host"},
           {"https://k:port", "has an invalid port"},
           {"https://k:", "has an invalid port"},
           {"https://k:65536", "has an invalid port"},
           {"https://k:0", "has an invalid port"},
           {"https://fd00::1", "has an IPv6 address without [brackets]"},
           {"https://[fd00::1", "has an unterminated IPv6 address"},
           {"https://[fd00::1]x", "has characters after the IPv6 address"},
           {"https://user:secret@k", "must not contain user information (credentials belong in users[])"},
           {"https://k/a?b=c", "must not have a query or fragment"},
           {"https://k a", "must not contain spaces or control characters"},
       }) {
    auto rest = ResolveText(Config(std::string("    server: \"") + c.url + "\"\n", "    token: t\n"));
    BOOST_TEST_REQUIRE(!rest.ok(), c.url);
    BOOST_TEST((rest.status().code() == StatusCode::kInvalidArgument));
    BOOST_TEST(rest.status().message() == std::string("kubeconfig kc: cluster \"c\": server ") + c.problem);
    BOOST_TEST(rest.status().message().find("secret") == std::string::npos);
  }
}

BOOST_AUTO_TEST_CASE(resolve_reports_context_errors_with_exact_codes_and_messages) {
  const std::string two = R"(clusters: [{name: c, cluster: {server: "https://k"}}]
users: [{name: u, user: {token: t}}]
contexts:
- {name: no-cluster, context: {user: u}}
- {name: no-user, context: {cluster: c}}
- {name: bad-cluster, context: {cluster: gone, user: u}}
- {name: bad-user, context: {cluster: c, user: gone}}
- {name: bad-ns, context: {cluster: c, user: u, namespace: Not_A_Label}}
)";
  auto config = ParseKubeconfig(two, "kc");
  BOOST_TEST_REQUIRE(config.ok(), Describe(config.status()));

  auto none = ResolveContext(*config);
  BOOST_TEST((none.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(none.status().message() == "kubeconfig kc: no context given and current-context is not set");

  auto unknown = ResolveContext(*config, "prod");
  BOOST_TEST((unknown.status().code() == StatusCode::kNotFound));
  BOOST_TEST(unknown.status().message() == "kubeconfig kc: context \"prod\" not found");

  struct Case {
    const char* context;
    const char* message;
  };
  for (const Case& c : std::vector<Case>{
           {"no-cluster", "kubeconfig kc: context \"no-cluster\": cluster not set"},
           {"no-user", "kubeconfig kc: context \"no-user\": user not set"},
           {"bad-cluster", "kubeconfig kc: context \"bad-cluster\": cluster \"gone\" not found"},
           {"bad-user", "kubeconfig kc: context \"bad-user\": user \"gone\" not found"},
           {"bad-ns",
            "kubeconfig kc: context \"bad-ns\": namespace \"Not_A_Label\" is not a DNS-1123 label (lower-case "
            "letters, digits and '-', at most 63)"},
       }) {
    auto rest = ResolveContext(*config, c.context);
    BOOST_TEST_REQUIRE(!rest.ok(), c.context);
    BOOST_TEST((rest.status().code() == StatusCode::kInvalidArgument), c.context);
    BOOST_TEST(rest.status().message() == c.message);
  }

  auto dangling = ParseKubeconfig("current-context: gone\n", "kc");
  BOOST_TEST_REQUIRE(dangling.ok());
  auto rest = ResolveContext(*dangling);
  BOOST_TEST((rest.status().code() == StatusCode::kNotFound));
  BOOST_TEST(rest.status().message() == "kubeconfig kc: context \"gone\" not found (named by current-context in kc)");
}

BOOST_AUTO_TEST_CASE(resolve_rejects_unsupported_features_with_failed_precondition) {
  struct Case {
    std::string cluster;
    std::string user;
    std::string message;
  };
  const std::vector<Case> cases = {
      {kServer + "    proxy-url: http://proxy:3128\n", "    token: t\n",
       "kubeconfig kc: cluster \"c\": proxy-url is not supported by kubefold; reach the API server directly or remove "
       "it"},
      {kServer, "    auth-provider: {name: gcp, config: {access-token: x}}\n",
       "kubeconfig kc: user \"u\": auth-provider \"gcp\" is not supported; use an exec credential plugin "
       "(users[].user.exec) instead"},
      {kServer,
       "    exec: {command: p, apiVersion: client.authentication.k8s.io/v1, interactiveMode: Always}\n",
       "kubeconfig kc: user \"u\": exec.interactiveMode Always needs a terminal, and kubefold runs credential plugins "
       "without one; use Never or IfAvailable"},
      {kServer, "    exec: {command: p, apiVersion: client.authentication.k8s.io/v1alpha1}\n",
       "kubeconfig kc: user \"u\": exec.apiVersion client.authentication.k8s.io/v1alpha1 is not supported (client-go "
       "dropped it too); use client.authentication.k8s.io/v1"},
      {kServer + "    certificate-authority: /nonexistent/ca.crt\n", "    token: t\n",
       "kubeconfig kc: cluster \"c\": certificate-authority /nonexistent/ca.crt: No such file or directory"},
      {kServer, "    tokenFile: /nonexistent/token\n",
       "kubeconfig kc: user \"u\": tokenFile /nonexistent/token: No such file or directory"},
  };
  for (const Case& c : cases) {
    auto rest = ResolveText(Config(c.cluster, c.user));
    BOOST_TEST_REQUIRE(!rest.ok(), c.message);
    BOOST_TEST((rest.status().code() == StatusCode::kFailedPrecondition), Describe(rest.status()));
    BOOST_TEST(rest.status().message() == c.message);
  }
}

BOOST_AUTO_TEST_CASE(resolve_rejects_invalid_user_and_cluster_settings) {
  const std::string v1 = "apiVersion: client.authentication.k8s.io/v1";
  struct Case {
    std::string cluster;
    std::string user;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"    tls-server-name: x\n", "    token: t\n", "kubeconfig kc: cluster \"c\": server not set"},
      {kServer + "    insecure-skip-tls-verify: true\n    certificate-authority-data: " + kCaB64 + "\n",
       "    token: t\n",
       "kubeconfig kc: cluster \"c\": insecure-skip-tls-verify and a certificate authority are both set; choose one"},
      {kServer + "    certificate-authority-data: bm90IHBlbQ==\n", "    token: t\n",
       "kubeconfig kc: cluster \"c\": certificate-authority-data: no PEM block (-----BEGIN ...) in it"},
      {kServer, "    client-certificate-data: " + kCertB64 + "\n",
       "kubeconfig kc: user \"u\": client-certificate is set without client-key"},
      {kServer, "    client-key-data: " + kKeyB64 + "\n",
       "kubeconfig kc: user \"u\": client-key is set without client-certificate"},
      {kServer, "    token: t\n    username: a\n    password: b\n",
       "kubeconfig kc: user \"u\": more than one authentication method (token and username/password)"},
      {kServer, "    token: t\n    exec: {command: p, " + v1 + ", interactiveMode: Never}\n",
       "kubeconfig kc: user \"u\": more than one authentication method (exec and token, tokenFile or "
       "username/password)"},
      {kServer, "    as-groups: [g]\n", "kubeconfig kc: user \"u\": as-uid, as-groups and as-user-extra need `as` (the user to impersonate)"},
      {kServer, "    exec: {" + v1 + ", interactiveMode: Never}\n", "kubeconfig kc: user \"u\": exec.command: not set"},
      {kServer, "    exec: {command: p}\n",
       "kubeconfig kc: user \"u\": exec.apiVersion: not set (use client.authentication.k8s.io/v1)"},
      {kServer, "    exec: {command: p, apiVersion: v2}\n",
       "kubeconfig kc: user \"u\": exec.apiVersion: \"v2\" is not client.authentication.k8s.io/v1 or "
       "client.authentication.k8s.io/v1beta1"},
      {kServer, "    exec: {command: p, " + v1 + "}\n",
       "kubeconfig kc: user \"u\": exec.interactiveMode: must be set for apiVersion client.authentication.k8s.io/v1 "
       "(Never or IfAvailable)"},
      {kServer, "    exec: {command: p, " + v1 + ", interactiveMode: Never, env: [{value: x}]}\n",
       "kubeconfig kc: user \"u\": exec.env[0].name: not set"},
  };
  for (const Case& c : cases) {
    auto rest = ResolveText(Config(c.cluster, c.user));
    BOOST_TEST_REQUIRE(!rest.ok(), c.message);
    BOOST_TEST((rest.status().code() == StatusCode::kInvalidArgument), Describe(rest.status()));
    BOOST_TEST(rest.status().message() == c.message);
  }
}

BOOST_AUTO_TEST_CASE(resolve_rejects_files_that_hold_no_pem) {
  TempDir dir;
  WriteFile(dir / "ca.crt", "not a certificate");
  WriteFile(dir / "empty-token", " \n");
  auto ca = ResolveText(Config(kServer + "    certificate-authority: ca.crt\n", "    token: t\n"), {}, dir.path());
  BOOST_TEST((ca.status().code() == StatusCode::kInvalidArgument));
  BOOST_TEST(ca.status().message() ==
             "kubeconfig kc: cluster \"c\": certificate-authority " + (dir / "ca.crt") + ": no PEM block (-----BEGIN ...) in it");
  auto token = ResolveText(Config(kServer, "    tokenFile: empty-token\n"), {}, dir.path());
  BOOST_TEST((token.status().code() == StatusCode::kFailedPrecondition));
  BOOST_TEST(token.status().message() == "kubeconfig kc: user \"u\": tokenFile " + (dir / "empty-token") + ": is empty");
}

BOOST_AUTO_TEST_CASE(no_planted_secret_appears_in_any_error_message) {
  const std::vector<std::string> secrets = {"PLANTED-TOKEN-1b7f", "PLANTED-PASSWORD-9c2e", "PLANTED-OIDC-44aa",
                                            "SECRET-KEY-MATERIAL"};
  // kKeyPem's body decodes to SECRET-KEY-MATERIAL.
  std::vector<std::string> texts = {
      // Parse errors next to secrets.
      "users: [{name: u, user: {token: PLANTED-TOKEN-1b7f, password: PLANTED-PASSWORD-9c2e, client-key-data: "
      "'PLANTED-TOKEN-1b7f'}}]\n",
      "users: [{name: u, user: {token: PLANTED-TOKEN-1b7f, as-groups: PLANTED-PASSWORD-9c2e}}]\n",
      "users: [{name: u, user: {token: [PLANTED-TOKEN-1b7f]}}]\n",
      "users: [{name: u, user: {password: {PLANTED-PASSWORD-9c2e: 1}}}]\n",
      "users: [{name: u, user: {token: \"PLANTED-TOKEN-1b7f\n",
      "users: [{name: u, user: {token: PLANTED-TOKEN-1b7f}}]\n  - : : PLANTED-PASSWORD-9c2e [\n",
      "users: [{name: u, user: {exec: {interactiveMode: [PLANTED-TOKEN-1b7f]}}}]\n",
      // Resolution errors with secrets in the user.
      Config(kServer, "    token: PLANTED-TOKEN-1b7f\n    username: x\n    password: PLANTED-PASSWORD-9c2e\n"),
      Config(kServer, "    auth-provider: {name: oidc, config: {id-token: PLANTED-OIDC-44aa}}\n"),
      Config(kServer + "    proxy-url: http://u:PLANTED-PASSWORD-9c2e@proxy\n", "    token: PLANTED-TOKEN-1b7f\n"),
      Config("    server: https://u:PLANTED-PASSWORD-9c2e@k\n", "    token: PLANTED-TOKEN-1b7f\n"),
      Config(kServer, "    client-key-data: " + kKeyB64 + "\n    token: PLANTED-TOKEN-1b7f\n"),
      Config(kServer, "    token: PLANTED-TOKEN-1b7f\n    as-groups: [g]\n"),
      Config(kServer, "    token: PLANTED-TOKEN-1b7f\n    exec: {command: p}\n"),
  };
  size_t errors = 0;
  for (const std::string& text : texts) {
    auto rest = ResolveText(text, "ctx");
    if (rest.ok()) continue;
    ++errors;
    for (const std::string& secret : secrets) {
      BOOST_TEST(rest.status().message().find(secret) == std::string::npos,
                 "secret " << secret << " in: " << rest.status().message());
    }
  }
  BOOST_TEST(errors == texts.size());
}

BOOST_AUTO_TEST_CASE(kubeconfig_like_shared_fixtures_parse_if_there_are_any) {
  const std::filesystem::path root = KUBEFOLD_SHARED_FIXTURES_DIR;
  std::error_code ec;
  if (!std::filesystem::is_directory(root, ec)) {
    BOOST_TEST_MESSAGE("no shared fixtures at " << root << "; nothing to check");
    return;
  }
  size_t checked = 0;
  for (auto it = std::filesystem::recursive_directory_iterator(root, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string text = testing::ReadFile(it->path().string());
    const std::string name = it->path().filename().string();
    const bool looks_like_kubeconfig = name.find("kubeconfig") != std::string::npos ||
                                       text.find("kind: Config") != std::string::npos ||
                                       text.find("\"kind\": \"Config\"") != std::string::npos ||
                                       text.find("current-context") != std::string::npos;
    if (!looks_like_kubeconfig) {
      // Real API objects are YAML too (JSON is YAML): they must load as an
      // empty kubeconfig with every unknown field ignored, or be refused
      // with a message — never crash.
      auto other = ParseKubeconfig(text, name);
      BOOST_TEST((other.ok() || other.status().code() == StatusCode::kInvalidArgument), name);
      if (other.ok()) BOOST_TEST((other->clusters.empty() && other->users.empty() && other->contexts.empty()), name);
      continue;
    }
    auto config = LoadKubeconfigFile(it->path().string());
    BOOST_TEST(config.ok(), it->path() << ": " << Describe(config.status()));
    ++checked;
  }
  BOOST_TEST_MESSAGE("kubeconfig-like shared fixtures parsed: " << checked);
}

}  // namespace
}  // namespace kubefold::kube
