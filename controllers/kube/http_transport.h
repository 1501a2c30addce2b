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
//                  client_certificate_pem + client_key_pem: mutual TLS;
//                  TransportOptions::client_certificate, when set and
//                  returning a certificate, takes their place (an exec
//                  plugin's certificate, which it renews).
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
#include <string>
#include <string_view>

#include "controllers/kube/rest_config.h"
#include "controllers/kube/token_source.h"
#include "controllers/kube/transport.h"
#include "state/status.h"

namespace kubefold::kube {

// A client certificate and its private key, both PEM.
struct ClientCertificate {
  std::string cert_pem;
  std::string key_pem;  // SECRET
};

struct TransportOptions {
  // Receives warnings (today one: TLS verification is disabled). Called on
  // the thread that creates the transport. Empty: warnings go to stderr.
  std::function<void(std::string_view)> warn = {};
  // A client certificate that may change over time (an exec plugin's; see
  // ClientCertificateOf). Called on the requesting thread before every
  // request of an https transport. An empty result means the RestConfig's
  // own certificate, if any. When the result differs from the certificate
  // the transport's connections were made with, the transport starts a new
  // connection pool with it: later requests present the new certificate,
  // requests already in flight finish on their connections, and the old
  // pool's idle connections are closed once those end. A result that is not
  // a usable certificate and key, or an error, fails the request
  // (kUnavailable / the error's code) naming the client certificate.
  // Empty function: the RestConfig's certificate only.
  std::function<Result<ClientCertificate>()> client_certificate = {};
};

// The TransportOptions::client_certificate for requests authenticated by
// `tokens`: when it is an ExecCredentialSource, the certificate its plugin
// returned (empty when the plugin returned only a token), cached and renewed
// with the token — so a 401 that invalidates the token source makes the
// next request run the plugin again and present the renewed certificate.
// Any other source: an empty function. Never null-dereferences: a null
// `tokens` gives an empty function.
std::function<Result<ClientCertificate>()> ClientCertificateOf(const std::shared_ptr<TokenSource>& tokens);

// A Transport for config.server with config's TLS settings. Parses the CA,
// client certificate and key up front. Errors: kInvalidArgument naming the
// field (server, ca_pem, client_certificate_pem, client_key_pem) when one
// cannot be used — never quoting its value. Connects lazily: a server that is
// down is reported by the first request, not here. Allocates; the transport
// keeps a pool of idle keep-alive connections.
Result<std::unique_ptr<Transport>> NewHttpTransport(const RestConfig& config,
                                                    TransportOptions options = {});

}  // namespace kubefold::kube
