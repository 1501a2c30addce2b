// RFC 3339 timestamps as Kubernetes writes them (metav1.Time:
// "2026-11-22T10:00:00Z", offsets and fractional seconds accepted on input).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace kubefold::kube::internal {

// The instant `text` names, or nullopt if it is not an RFC 3339 date-time
// (date, 'T' or 't' or ' ', time, optional fraction, 'Z'/'z' or ±hh:mm).
// Fractions below a microsecond are truncated. Instants outside what
// system_clock can hold (before 1678, after 2261) saturate to its min() or
// max(). O(n), no allocation.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view text);

// "YYYY-MM-DDThh:mm:ssZ" in UTC (whole seconds, truncated).
std::string FormatRfc3339(std::chrono::system_clock::time_point t);

// "YYYY-MM-DDThh:mm:ss.ffffffZ" (metav1.MicroTime), microseconds truncated.
std::string FormatRfc3339Micro(std::chrono::system_clock::time_point t);

}  // namespace kubefold::kube::internal
