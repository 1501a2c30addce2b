// URL paths and query escaping for the Kubernetes API.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace kubefold::kube {

// Percent-encodes everything but RFC 3986's unreserved characters, for a
// path segment or a query value ("app=web,tier!=db" → "app%3Dweb%2Ctier%21%3Ddb").
std::string PercentEncode(std::string_view s);

// The inverse, for what a server receives: %XX escapes decoded, and `+` as
// a space when `plus_is_space` (query components). nullopt for a malformed
// escape ("%", "%4", "%zz").
std::optional<std::string> PercentDecode(std::string_view s, bool plus_is_space);

// "/apis/apps/v1/namespaces/shop/deployments/web/status"; group "" is the
// core group (/api/v1). Empty namespace, name and subresource are left out;
// the namespace and name are escaped.
std::string ResourcePath(std::string_view group, std::string_view version, std::string_view resource,
                         std::string_view ns = {}, std::string_view name = {}, std::string_view subresource = {});

}  // namespace kubefold::kube
