// Small file helpers shared by the kubeconfig, in-cluster and token code.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "state/status.h"

namespace kubefold::kube::internal {

// Reads the whole of `path`, refusing more than `max_bytes`.
// Errors: kNotFound (ENOENT/ENOTDIR), kResourceExhausted (too large),
// kFailedPrecondition (anything else: permissions, a directory, I/O), each
// message "<what> <path>: <reason>". Never includes the content.
Result<std::string> ReadFileBounded(const std::string& path, size_t max_bytes, std::string_view what);

// `s` without leading and trailing ASCII whitespace.
std::string_view TrimWhitespace(std::string_view s);

// Whether `bytes` holds at least one PEM block header ("-----BEGIN ").
bool LooksLikePem(std::string_view bytes);

}  // namespace kubefold::kube::internal
