// libFuzzer target for what an exec credential plugin prints (a kubeconfig
// `exec` user's program): an ExecCredential JSON object, or anything else.
// Parsing must never crash; a rejection is an error with a message, and an
// accepted credential carries a token or a client certificate and key.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "controllers/kube/token_source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view out(reinterpret_cast<const char*>(data), size);
  for (const char* version : {kubefold::kube::kExecApiVersionV1, kubefold::kube::kExecApiVersionV1Beta1}) {
    auto r = kubefold::kube::ParseExecCredential(out, version);
    if (!r.ok()) {
      if (r.status().message().empty()) std::abort();
      continue;
    }
    const kubefold::kube::ExecCredential& c = *r;
    if (c.token.empty() && (c.client_certificate_pem.empty() || c.client_key_pem.empty())) std::abort();
  }
  return 0;
}
