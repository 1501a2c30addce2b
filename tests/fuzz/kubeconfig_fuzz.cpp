// libFuzzer target for the two parsers of outside input in controllers/kube:
// ParseKubeconfig (a user's or a Secret's kubeconfig, YAML) and
// ParseExecCredential (a credential plugin's stdout, JSON). Each input is fed
// to both. Checks more than "no crash": every rejection is kInvalidArgument
// (or kResourceExhausted) with a message that names the source, and whatever
// parses can be resolved without crashing (file references are dropped first
// so that the fuzzer never reads files).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/token_source.h"

namespace {

using kubefold::StatusCode;

bool ExpectedParseError(const kubefold::Status& s) {
  return (s.code() == StatusCode::kInvalidArgument || s.code() == StatusCode::kResourceExhausted) &&
         !s.message().empty();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  auto config = kubefold::kube::ParseKubeconfig(text, "fuzz", "/nonexistent-base");
  if (!config.ok()) {
    if (!ExpectedParseError(config.status()) || config.status().message().rfind("kubeconfig fuzz: ", 0) != 0) {
      std::abort();
    }
  } else {
    kubefold::kube::Kubeconfig copy = *config;
    for (auto& [name, cluster] : copy.clusters) cluster.certificate_authority.clear();
    for (auto& [name, user] : copy.users) {
      user.client_certificate.clear();
      user.client_key.clear();
      user.token_file.clear();
    }
    for (const auto& [name, context] : copy.contexts) {
      auto rest = kubefold::kube::ResolveContext(copy, name);
      if (!rest.ok() && rest.status().message().empty()) std::abort();
      if (rest.ok() && rest->server.empty()) std::abort();
    }
    auto current = kubefold::kube::ResolveContext(copy);
    if (!current.ok() && current.status().message().empty()) std::abort();
  }

  for (std::string_view version : {kubefold::kube::kExecApiVersionV1, kubefold::kube::kExecApiVersionV1Beta1}) {
    auto cred = kubefold::kube::ParseExecCredential(text, version);
    if (!cred.ok()) {
      if (!ExpectedParseError(cred.status())) std::abort();
    } else if (cred->token.empty() && cred->client_certificate_pem.empty()) {
      std::abort();  // a credential always carries something
    }
  }
  return 0;
}
