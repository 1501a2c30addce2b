// Test-only: an HTTP/1.1 server on 127.0.0.1 (an ephemeral port), plain or
// TLS with OpenSSL, that runs a scripted handler per request, and a PKI made
// in memory with the OpenSSL C API (nothing on disk, no network).
//
// The handler writes the response itself through ServerConnection, so a test
// controls every byte and every pause: canned responses, chunked bodies split
// anywhere with waits between chunks, stalls (send nothing), resets (TCP RST).
//
// Thread-safety: one thread per connection runs the handler; handlers may
// run concurrently. TestServer's accessors may be called from any thread.
// The destructor stops the server: it unblocks every connection (shutdown of
// its socket) and joins all threads.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "tests/emulator/pki.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace kubefold::kube::testing {

using KeyPair = emulator::KeyPair;

// Certificates for the transport tests, generated once per process (EC P-256).
struct TestPki {
  std::string ca_pem;        // the CA the tests trust
  std::string other_ca_pem;  // a CA that signed none of the servers
  KeyPair server_ip;         // SAN IP:127.0.0.1
  KeyPair server_dns;        // SAN DNS:kubernetes.default.svc only
  KeyPair server_wrong;      // SAN DNS:wrong.example.com only
  KeyPair server_cn_only;    // CN=127.0.0.1, no SAN at all
  KeyPair client;            // clientAuth, CN=kubefold-client, signed by ca
  KeyPair client_other_ca;   // clientAuth, signed by other_ca

  static const TestPki& Get();
};

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ReceivedRequest {
  std::string method;
  std::string target;  // "/api/v1/pods?watch=true"
  HeaderList headers;
  std::string body;
  std::string sni;          // TLS server name the client sent ("" if none)
  std::string client_cn;    // CN of the verified client certificate, if any

  std::string Header(std::string_view name) const;  // case-insensitive, "" if absent
};

class ServerConnection {
 public:
  // Raw bytes. False once the peer is gone.
  bool Write(std::string_view bytes);
  // A complete response with Content-Length.
  bool Respond(int status, const HeaderList& headers, std::string_view body);
  // Status line and headers with Transfer-Encoding: chunked, then chunks.
  bool StartChunked(int status, const HeaderList& headers);
  bool Chunk(std::string_view data);
  bool EndChunked();
  // Closes at once with a TCP reset (SO_LINGER 0). The connection is done.
  void Reset();
  // Closes cleanly (FIN) after what was written, as a server that dies or a
  // proxy that gives up does: a body cut short. The connection is done.
  void Close();
  // Sends nothing until the client closes the connection, the server stops,
  // or `limit` passes. True if the client closed it.
  bool StallUntilPeerCloses(std::chrono::milliseconds limit);

 private:
  friend class TestServer;
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  const std::atomic<bool>* stopping_ = nullptr;
  bool done_ = false;
};

using Handler = std::function<void(const ReceivedRequest&, ServerConnection&)>;

struct ServerOptions {
  bool tls = true;
  KeyPair server;             // REQUIRES when tls: a certificate and its key
  std::string client_ca_pem;  // non-empty: require a client certificate from it
};

class TestServer {
 public:
  TestServer(ServerOptions options, Handler handler);
  ~TestServer();
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  // "https://127.0.0.1:<port>" or "http://..."
  std::string Url() const;
  int handshake_failures() const { return handshake_failures_.load(); }
  std::vector<ReceivedRequest> Received() const;

 private:
  void AcceptLoop();
  void Serve(int fd);

  const ServerOptions options_;
  const Handler handler_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::atomic<int> handshake_failures_{0};
  std::thread accept_thread_;

  mutable std::mutex mu_;
  std::set<int> open_fds_;                  // Guarded by mu_
  std::vector<std::thread> connections_;    // Guarded by mu_
  std::vector<ReceivedRequest> received_;   // Guarded by mu_
};

// A one-shot event for handing a "go on" between threads in tests.
class Notification {
 public:
  void Notify();
  // True if notified within `limit`.
  bool WaitFor(std::chrono::milliseconds limit);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool notified_ = false;
};

// A port on 127.0.0.1 with nothing listening (bound, then closed).
int UnusedPort();

}  // namespace kubefold::kube::testing
