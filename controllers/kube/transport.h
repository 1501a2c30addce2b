// Transport: the one small interface through which kubefold speaks HTTP to an
// API server. Everything above it (REST verbs, the reflector) is written
// against this header; the implementation over cpprestsdk lives in a single
// translation unit (transport_cpprest.cpp), so no other file includes
// cpprestsdk or Boost.Asio, and tests substitute a fake.
//
// A Transport is bound to one API server (a RestConfig's server URL and TLS
// settings). It knows nothing of tokens: the REST layer sets the
// Authorization header on each request, so a rotated token is used at once.
//
// Thread-safety: Send and Open may be called from several threads at once.
// A BodyStream is read by one thread; Cancel may come from any thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <functional>
#include <vector>

#include "state/status.h"

namespace kubefold::kube {

using Headers = std::vector<std::pair<std::string, std::string>>;

// The value of header `name` (case-insensitive), or "" when absent.
std::string_view FindHeader(const Headers& headers, std::string_view name);

struct HttpRequest {
  std::string method = "GET";  // GET, POST, PUT, PATCH, DELETE
  // Absolute path and query, already escaped: "/apis/apps/v1/deployments?watch=true".
  std::string path_and_query;
  Headers headers;   // Accept, Content-Type, Authorization, ...
  std::string body;  // sent as is
  // Send: the whole exchange must finish within this. Open: the headers must
  // arrive within it, and then each read of the body waits at most this long
  // for data (an inactivity deadline that notices a silently dead peer).
  std::chrono::milliseconds timeout{std::chrono::seconds(30)};
  // Send only: the most body bytes the caller will take (0: no bound). A
  // body announced or found to be longer is not read to its end: Send fails
  // with kResourceExhausted and the connection is closed, so memory stays
  // within about the bound plus one network read.
  size_t max_response_bytes = 0;
};

struct HttpResponse {
  int status = 0;
  Headers headers;
  std::string body;
};

// The body of a streamed response (a watch), delivered as the bytes arrive:
// chunk boundaries are the network's, not the events'.
class BodyStream {
 public:
  virtual ~BodyStream() = default;
  // The next bytes of the body. An empty string is the clean end of the
  // body (the server closed the stream: re-watch). Errors: kUnavailable when
  // the connection broke or no byte arrived within the request's timeout
  // (the message says which), kCancelled after Cancel().
  virtual Result<std::string> Read() = 0;
  // Makes a Read in progress (and every later one) return kCancelled.
  virtual void Cancel() = 0;
};

struct HttpStream {
  int status = 0;
  Headers headers;
  std::unique_ptr<BodyStream> body;  // read it even for errors: a Status body
};

class Transport {
 public:
  virtual ~Transport() = default;
  // One request, its whole response body buffered. Errors are transport
  // failures (kUnavailable: refused, reset, TLS handshake or verification
  // failure, a body cut short, timeout — the message names which) and a
  // body over request.max_response_bytes (kResourceExhausted, naming the
  // bound); any HTTP status, 4xx and 5xx included, is a response.
  virtual Result<HttpResponse> Send(const HttpRequest& request) = 0;
  // One request whose body is read as a stream. Returns once the status and
  // headers have arrived. Errors as Send.
  virtual Result<HttpStream> Open(const HttpRequest& request) = 0;
};

// Told after each request a transport sends: the method, the HTTP status (0
// for a transport failure) and how long it took (for Open, until the
// headers arrived). Called on the requesting thread; must be cheap.
using TransportObserver = std::function<void(std::string_view method, int status, std::chrono::nanoseconds latency)>;

// `inner`, with `observer` told about every request. O(1) per request.
std::unique_ptr<Transport> ObserveTransport(std::unique_ptr<Transport> inner, TransportObserver observer);

}  // namespace kubefold::kube
