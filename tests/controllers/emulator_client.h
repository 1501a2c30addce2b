// Helpers for tests that run against kube-emulator in-process: polling for
// a condition with a deadline (never a bare sleep), and a REST client for
// one of its clusters over HTTPS, from the kubeconfig the emulator writes.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/kubeconfig.h"
#include "controllers/kube/rest_client.h"
#include "controllers/kube/token_source.h"
#include "tests/emulator/emulator.h"

// BOOST_{REQUIRE,CHECK}_MESSAGE build their message before they evaluate
// their predicate (GCC evaluates the arguments in that order), so a message
// describing the world after a wait would describe it as it was before.
// These wait first, then describe: REQUIRE_WAITED(Eventually(...), message).
#define REQUIRE_WAITED(waited, message)               \
  do {                                                \
    const bool kubefold_waited_ = (waited);           \
    BOOST_REQUIRE_MESSAGE(kubefold_waited_, message); \
  } while (false)
#define CHECK_WAITED(waited, message)                 \
  do {                                                \
    const bool kubefold_waited_ = (waited);           \
    BOOST_CHECK_MESSAGE(kubefold_waited_, message);   \
  } while (false)

namespace kubefold::testing {

// Polls `pred` every 10 ms until it holds or `limit` passes; returns its last value.
inline bool Eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = std::chrono::seconds(20)) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return pred();
}

// The resolved RestConfig of `cluster` (bearer token, or the token file when given).
inline kube::RestConfig EmulatorConfig(emulator::Emulator& e, const std::string& cluster,
                                       const std::string& token_file = "") {
  auto parsed = kube::ParseKubeconfig(e.Kubeconfig(cluster, token_file), cluster);
  if (!parsed.ok()) throw std::runtime_error(parsed.status().ToString());
  auto resolved = kube::ResolveContext(*parsed);
  if (!resolved.ok()) throw std::runtime_error(resolved.status().ToString());
  return *resolved;
}

// A RestClient for `config`; tests raise the rate limit so it never paces them.
inline std::unique_ptr<kube::RestClient> ClientFor(const kube::RestConfig& config,
                                                   kube::RestClientOptions options = {.qps = 1000, .burst = 1000}) {
  auto tokens = std::shared_ptr<kube::TokenSource>(kube::NewTokenSource(config));
  auto transport = kube::NewHttpTransport(
      config, {.warn = [](std::string_view) {}, .client_certificate = kube::ClientCertificateOf(tokens)});
  if (!transport.ok()) throw std::runtime_error(transport.status().ToString());
  return std::make_unique<kube::RestClient>(std::move(*transport), std::move(tokens), options);
}

}  // namespace kubefold::testing
