// HttpServer: the small HTTP/1.1 server behind kubefold's query API,
// /metrics and the health probes. Plain HTTP or TLS (OpenSSL, certificate
// and key from files, re-read when they change so a rotated certificate is
// picked up without a restart).
//
// One thread per connection, at most `max_connections` at once (the next
// one gets 503 and is closed); keep-alive; every read and write has a
// timeout, so a slow or silent client cannot pin a thread for long.
// Requests are parsed with Boost.Beast's parser (headers and body bounded);
// responses are written either whole (Content-Length) or streamed in chunks
// from a bounded buffer, so a handler producing a large answer never holds
// it all in memory.
//
// Thread-safety: Start/Stop from one thread; the handler is called on
// connection threads, concurrently. The destructor stops the server and
// joins every connection thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "state/status.h"

namespace kubefold {

struct IncomingRequest {
  std::string method;  // "GET"
  std::string path;    // decoded path, without the query
  std::string raw_path;  // as sent, percent-encoded
  // Decoded query parameters in order; a name may repeat.
  std::vector<std::pair<std::string, std::string>> query;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string peer;  // "ip:port"

  // The header's value, or "".
  std::string Header(const std::string& lower_name) const;
};

// Fills request.path, raw_path and query from a request target
// ("/api/v1/diff?from=1&to=latest"): percent-decoding, `+` as a space in
// the query. kInvalidArgument naming the part with a malformed escape.
Status ParseRequestTarget(std::string_view target, IncomingRequest& request);

// Writes one response. Either Send (a whole body) or Begin followed by any
// number of Write calls (a chunked stream, flushed every 64 KiB and at the
// end). Write returns false once the client is gone: stop producing.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  virtual void Send(int status, std::string_view content_type, std::string_view body,
                    const std::vector<std::pair<std::string, std::string>>& headers = {}) = 0;
  virtual void Begin(int status, std::string_view content_type,
                     const std::vector<std::pair<std::string, std::string>>& headers = {}) = 0;
  virtual bool Write(std::string_view data) = 0;
  virtual bool started() const = 0;
  // The status sent, 0 before Send or Begin.
  virtual int status() const = 0;
};

using HttpHandler = std::function<void(const IncomingRequest&, ResponseWriter&)>;

struct HttpServerOptions {
  std::string bind = "127.0.0.1";  // an IPv4 or IPv6 address; "0.0.0.0" / "::" for all
  int port = 0;                    // 0: an ephemeral port
  std::string tls_cert_file;       // both set: TLS
  std::string tls_key_file;
  size_t max_connections = 64;
  std::chrono::milliseconds read_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds write_timeout{std::chrono::seconds(60)};
  size_t max_header_bytes = 16 * 1024;
  size_t max_body_bytes = 1 << 20;
  std::function<void(std::string_view)> log;
};

class HttpServer {
 public:
  // Binds and starts accepting. kInvalidArgument for a bad address or
  // unreadable certificate; kUnavailable when the port cannot be bound.
  static Result<std::unique_ptr<HttpServer>> Start(HttpServerOptions options, HttpHandler handler);
  ~HttpServer();  // Stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  bool tls() const { return ctx_ != nullptr; }
  // Stops accepting, cuts open connections, joins their threads. Idempotent.
  void Stop();

 private:
  struct Connection;
  HttpServer(HttpServerOptions options, HttpHandler handler);
  Status Listen();
  Status LoadCertificate();  // REQUIRES: tls_mu_ held
  void AcceptLoop();
  void Serve(Connection* c);
  void Reap();  // REQUIRES: mu_ held

  // Constant after Start.
  const HttpServerOptions options_;
  const HttpHandler handler_;
  int listen_fd_ = -1;
  int port_ = 0;

  std::mutex tls_mu_;
  void* ctx_ = nullptr;  // SSL_CTX*, Guarded by tls_mu_ (swapped on certificate change)
  std::string cert_stamp_;  // Guarded by tls_mu_: the files' mtimes and sizes when loaded

  std::atomic<bool> stopping_{false};
  std::thread accept_thread_;
  std::mutex mu_;
  std::list<std::unique_ptr<Connection>> connections_;  // Guarded by mu_
};

}  // namespace kubefold
