// The transport half of the services proxy
// (`/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy/PATH`): one
// HTTP/1.1 exchange with the backend an Endpoints address names, over plain
// TCP or TLS without certificate verification (a kube-apiserver's proxy
// transport does not verify either), the response relayed to the client as
// it arrives. Resolving the service, its Endpoints and pods, and the
// authorization, are the API's (api.cpp).
//
// What is sent is what the apiserver's UpgradeAwareHandler and Go's
// ReverseProxy send: the client's method, headers and body, without the
// hop-by-hop headers and without Authorization (the bearer token
// authenticator strips it), with X-Forwarded-For (the client's address) and
// X-Forwarded-Uri (the path the client asked for). The backend's status and
// headers come back without hop-by-hop and CORS headers; a body with a
// Content-Length is relayed whole, a chunked or close-delimited one chunk by
// chunk as it arrives.
//
// Thread-safety: ForwardToBackend may run on any number of threads at once.
#pragma once

#include <string>
#include <string_view>

#include "tests/emulator/api.h"

namespace kubefold::emulator {

struct ProxyTarget {
  bool tls = false;
  std::string ip;  // an IPv4 or IPv6 literal
  int port = 0;
};

// Sends `request` to `target` as `request_uri` (escaped path and query) and
// relays the response through `writer`. Returns "" once a response was
// relayed (or the relay broke off mid-body: the client connection is then
// reset, as a Go proxy aborts it); otherwise nothing has been written and
// the result is the error in Go's words ("dial tcp 10.0.0.7:8443: connect:
// connection refused", "EOF"), for the caller's 503. Blocks until the
// exchange ends or the client goes away; allocates the response head and
// any Content-Length body.
std::string ForwardToBackend(const ProxyTarget& target, const Request& request, const std::string& request_uri,
                             const std::string& forwarded_uri, ResponseWriter& writer);

// url.URL.EscapedPath for a path without RawPath: escapes what Go's
// shouldEscape(encodePath) escapes.
std::string EscapePath(std::string_view path);

}  // namespace kubefold::emulator
