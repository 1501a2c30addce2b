// NewHttpTransport: the real Transport (transport.h), HTTP/1.1 over TCP or
// TLS, implemented with cpprestsdk in transport_cpprest.cpp — the one file
// of kubefold that includes cpprestsdk, Boost.Asio or OpenSSL headers.
//
// What it does with a RestConfig (rest_config.h):
//   server         http:// or https://; a path in the URL ("/k8s/clusters/c1")
//                  is prepended to every request's path.
//   TLS            peer verification is ON unless insecure_skip_tls_verify.
//                  Trust: ca_pem when set (and then only it, as client-go
//                  does), else the system trust store. The certificate must
//                  name tls_server_name when set, else the URL's host: a DNS
//                  name is matched against DNS SANs (wildcards only as a
//                  whole left-most label; the subject CN is never used, as in
//                  Go), an IP address against IP SANs. SNI carries the same
//                  name, except that none is sent for an IP address.
//                  client_certificate_pem + client_key_pem: mutual TLS.
//                  TLS 1.2 or later.
//   insecure_skip_tls_verify
//                  no verification at all; the transport logs a warning
//                  through TransportOptions::warn once, when it is created.
//   username/password
//                  `Authorization: Basic` on https only, and only when the
//                  config has no bearer token, token file or exec plugin and
//                  the request carries no Authorization header of its own.
//   disable_compression
//                  nothing to do: the transport never asks for compression
//                  (no Accept-Encoding). A body the server compresses anyway
//                  is returned as received, with its Content-Encoding header.
// Redirects are never followed (they would carry the Authorization header
// elsewhere): a 3xx is returned as a response.
//
// Delivery of streamed bodies: a chunked body (every watch) is handed to
// BodyStream::Read chunk by chunk as each HTTP chunk arrives complete; a body
// with Content-Length or delimited by close arrives in blocks of up to 64 KiB.
//
// Thread-safety: as transport.h — Send and Open from any threads at once;
// each BodyStream read by one thread, cancelled from any. A BodyStream may
// outlive its Transport.
#pragma once

#include <functional>
#include <memory>
#include <string_view>

#include "controllers/kube/rest_config.h"
#include "controllers/kube/transport.h"
#include "state/status.h"

namespace kubefold::kube {

struct TransportOptions {
  // Receives warnings (today one: TLS verification is disabled). Called on
  // the thread that creates the transport. Empty: warnings go to stderr.
  std::function<void(std::string_view)> warn;
};

// A Transport for config.server with config's TLS settings. Parses the CA,
// client certificate and key up front. Errors: kInvalidArgument naming the
// field (server, ca_pem, client_certificate_pem, client_key_pem) when one
// cannot be used — never quoting its value. Connects lazily: a server that is
// down is reported by the first request, not here. Allocates; the transport
// keeps a pool of idle keep-alive connections.
Result<std::unique_ptr<Transport>> NewHttpTransport(const RestConfig& config,
                                                    TransportOptions options = {});

}  // namespace kubefold::kube
