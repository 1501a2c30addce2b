// The HTTP/1.1 server in front of one emulated cluster: plain or TLS
// (OpenSSL), one thread per connection, keep-alive, chunked streaming.
//
// Requests are parsed with Boost.Beast's parser; responses are written by
// hand so faults can shape every byte: chunk splitting at random positions,
// TCP resets, and partitions that refuse new connections and cut open ones.
//
// Thread-safety: all member functions may be called from any thread. The
// destructor stops the server and joins every connection thread.
#pragma once

#include <atomic>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "tests/emulator/api.h"
#include "tests/emulator/pki.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace kubefold::emulator {

struct ServerOptions {
  bool tls = true;
  KeyPair serving;            // REQUIRES when tls: the serving certificate and key
  std::string client_ca_pem;  // non-empty: verify client certificates from this CA (optional for the client)
  std::string bind = "127.0.0.1";
  int port = 0;               // 0: an ephemeral port
  std::size_t max_body_bytes = 3 * 1024 * 1024;  // kube-apiserver's request body limit
};

class HttpServer {
 public:
  // Binds and starts accepting. Throws std::runtime_error naming the cause
  // (address in use, bad certificate).
  HttpServer(ServerOptions options, RequestHandler* handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_.load(); }
  // "https://127.0.0.1:<port>" or "http://...".
  std::string Url() const;

  // Partition: close the listening socket (connects are refused) and cut
  // every open connection. Heal: listen on the same port again. While
  // partitioned the port stays bound by a socket that does not listen, so
  // no outgoing connection of this machine can take it as its ephemeral
  // port and make Heal fail with "address in use".
  void Partition();
  void Heal();
  bool partitioned() const { return partitioned_.load(); }
  // Cuts every open connection (a TCP reset where the OS allows it).
  void ResetConnections();

  int handshake_failures() const { return handshake_failures_.load(); }

 private:
  struct Connection;
  void Listen();  // REQUIRES: mu_ held
  // A socket bound to the server's port (options_.port before the first
  // Listen), listening or not. Throws std::runtime_error naming the cause.
  int Bind(bool listen) const;
  // Closes the listening socket and joins the accept loop. REQUIRES: mu_ not held.
  void StopListening();
  void AcceptLoop();
  void Serve(Connection* conn);
  void Reap();  // REQUIRES: mu_ held

  const ServerOptions options_;
  RequestHandler* const handler_;
  SSL_CTX* ctx_ = nullptr;
  std::atomic<int> port_{0};  // set by the first Listen; Heal listens on it again

  std::atomic<bool> stopping_{false};
  std::atomic<bool> partitioned_{false};
  std::atomic<int> handshake_failures_{0};

  mutable std::mutex mu_;
  int listen_fd_ = -1;                                   // Guarded by mu_
  int hold_fd_ = -1;  // bound, not listening, while partitioned. Guarded by mu_
  std::thread accept_thread_;                            // Guarded by mu_
  std::list<std::unique_ptr<Connection>> connections_;   // Guarded by mu_
};

}  // namespace kubefold::emulator
