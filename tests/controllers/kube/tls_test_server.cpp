#include "tests/controllers/kube/tls_test_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <memory>
#include <stdexcept>

namespace kubefold::kube::testing {
namespace {

[[noreturn]] void Fail(const std::string& what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
  throw std::runtime_error("tls_test_server: " + what + ": " + buf);
}

TestPki MakePki() {
  using emulator::CertificateAuthority;
  using emulator::CertSpec;
  auto server = [](std::string cn, std::string san) {
    CertSpec spec;
    spec.cn = std::move(cn);
    spec.san = std::move(san);
    return spec;
  };
  CertSpec client;
  client.cn = "kubefold-client";
  client.server = false;

  TestPki pki;
  CertificateAuthority ca("kubefold-test-ca");
  CertificateAuthority other("kubefold-other-ca");
  pki.ca_pem = ca.cert_pem();
  pki.other_ca_pem = other.cert_pem();
  pki.server_ip = ca.Issue(server("kubefold-test-server", "IP:127.0.0.1"));
  pki.server_dns = ca.Issue(server("kubernetes.default.svc", "DNS:kubernetes.default.svc"));
  pki.server_wrong = ca.Issue(server("wrong.example.com", "DNS:wrong.example.com"));
  pki.server_cn_only = ca.Issue(server("127.0.0.1", ""));
  pki.client = ca.Issue(client);
  pki.client_other_ca = other.Issue(client);
  return pki;
}

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

std::string Trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
  return s.substr(i);
}

std::string StatusLine(int status) {
  const char* reason = status == 200 ? "OK" : status == 404 ? "Not Found" : status == 503 ? "Service Unavailable"
                                                                                          : "Status";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason + "\r\n";
}

}  // namespace

const TestPki& TestPki::Get() {
  static const TestPki pki = MakePki();
  return pki;
}

std::string ReceivedRequest::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (IEquals(k, name)) return v;
  }
  return {};
}

// --- ServerConnection -------------------------------------------------------

bool ServerConnection::Write(std::string_view bytes) {
  if (done_) return false;
  while (!bytes.empty()) {
    int n;
    if (ssl_ != nullptr) {
      n = SSL_write(ssl_, bytes.data(), static_cast<int>(bytes.size()));
    } else {
      n = static_cast<int>(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
    }
    if (n <= 0) {
      done_ = true;
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool ServerConnection::Respond(int status, const HeaderList& headers, std::string_view body) {
  std::string head = StatusLine(status);
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
  return Write(head + std::string(body));
}

bool ServerConnection::StartChunked(int status, const HeaderList& headers) {
  std::string head = StatusLine(status);
  for (const auto& [k, v] : headers) head += k + ": " + v + "\r\n";
  head += "Transfer-Encoding: chunked\r\n\r\n";
  return Write(head);
}

bool ServerConnection::Chunk(std::string_view data) {
  char size[32];
  std::snprintf(size, sizeof(size), "%zx\r\n", data.size());
  return Write(std::string(size) + std::string(data) + "\r\n");
}

bool ServerConnection::EndChunked() { return Write("0\r\n\r\n"); }

void ServerConnection::Reset() {
  struct linger lg = {1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
  ::shutdown(fd_, SHUT_RDWR);  // with linger 0 the close below sends RST
  done_ = true;
}

void ServerConnection::Close() {
  if (ssl_ != nullptr) SSL_shutdown(ssl_);
  ::shutdown(fd_, SHUT_WR);
  done_ = true;
}

bool ServerConnection::StallUntilPeerCloses(std::chrono::milliseconds limit) {
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline && !stopping_->load()) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 20);
    if (r > 0) {
      char c;
      // Any readable event while stalled: data we ignore, or the close.
      ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n <= 0) {
        done_ = true;
        return true;
      }
      // Data (e.g. a TLS alert or close_notify): drain it at the TLS level.
      if (ssl_ != nullptr) {
        char buf[256];
        if (SSL_read(ssl_, buf, sizeof(buf)) <= 0) {
          done_ = true;
          return true;
        }
      } else {
        char buf[256];
        if (::recv(fd_, buf, sizeof(buf), 0) <= 0) {
          done_ = true;
          return true;
        }
      }
    }
  }
  return false;
}

// --- TestServer ------------------------------------------------------------

TestServer::TestServer(ServerOptions options, Handler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {
  ::signal(SIGPIPE, SIG_IGN);
  if (options_.tls) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (ctx_ == nullptr) Fail("SSL_CTX_new");
    emulator::UseKeyPair(ctx_, options_.server);
    if (!options_.client_ca_pem.empty()) {
      emulator::TrustCertificates(ctx_, options_.client_ca_pem);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
  }
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  int one = 1;
  ::setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || ::listen(listen_fd_, 64) != 0) {
    throw std::runtime_error("tls_test_server: bind/listen failed");
  }
  socklen_t len = sizeof(addr);
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

TestServer::~TestServer() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  accept_thread_.join();
  ::close(listen_fd_);
  std::vector<std::thread> threads;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
    threads.swap(connections_);
  }
  for (auto& t : threads) t.join();
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

std::string TestServer::Url() const {
  return std::string(options_.tls ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_);
}

std::vector<ReceivedRequest> TestServer::Received() const {
  std::lock_guard<std::mutex> lock(mu_);
  return received_;
}

void TestServer::AcceptLoop() {
  while (!stopping_) {
    int fd = ::accept(listen_fd_, nullptr, nullptr);
    if (fd < 0) {
      if (stopping_) return;
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) {
      ::close(fd);
      return;
    }
    open_fds_.insert(fd);
    connections_.emplace_back([this, fd] { Serve(fd); });
  }
}

void TestServer::Serve(int fd) {
  ServerConnection conn;
  conn.fd_ = fd;
  conn.stopping_ = &stopping_;
  std::string sni;
  std::string client_cn;
  bool ok = true;
  if (ctx_ != nullptr) {
    conn.ssl_ = SSL_new(ctx_);
    SSL_set_fd(conn.ssl_, fd);
    if (SSL_accept(conn.ssl_) != 1) {
      ++handshake_failures_;
      ok = false;
      // The alert is out. With TLS 1.3 the client already believes the
      // handshake done and may be writing its request: closing now, with
      // that request unread, would send a reset that can overtake the
      // alert. Half-close and drain instead, so the client reads the alert.
      ::shutdown(fd, SHUT_WR);
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
      char sink[1024];
      while (!stopping_ && std::chrono::steady_clock::now() < deadline) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 20) > 0 && ::recv(fd, sink, sizeof(sink), 0) <= 0) break;
      }
    } else {
      if (const char* name = SSL_get_servername(conn.ssl_, TLSEXT_NAMETYPE_host_name)) sni = name;
      if (X509* peer = SSL_get1_peer_certificate(conn.ssl_)) {
        char cn[256] = {0};
        X509_NAME_get_text_by_NID(X509_get_subject_name(peer), NID_commonName, cn, sizeof(cn));
        client_cn = cn;
        X509_free(peer);
      }
    }
  }
  std::string buffer;
  auto read_more = [&]() -> bool {
    char chunk[4096];
    int n = conn.ssl_ != nullptr ? SSL_read(conn.ssl_, chunk, sizeof(chunk))
                                 : static_cast<int>(::recv(fd, chunk, sizeof(chunk), 0));
    if (n <= 0) return false;
    buffer.append(chunk, static_cast<std::size_t>(n));
    return true;
  };
  while (ok && !conn.done_ && !stopping_) {
    std::size_t end;
    while ((end = buffer.find("\r\n\r\n")) == std::string::npos) {
      if (!read_more()) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    ReceivedRequest request;
    request.sni = sni;
    request.client_cn = client_cn;
    std::string head = buffer.substr(0, end);
    buffer.erase(0, end + 4);
    std::size_t line_end = head.find("\r\n");
    std::string request_line = head.substr(0, line_end);
    std::size_t sp1 = request_line.find(' ');
    std::size_t sp2 = request_line.find(' ', sp1 + 1);
    request.method = request_line.substr(0, sp1);
    request.target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
    std::size_t pos = line_end == std::string::npos ? head.size() : line_end + 2;
    while (pos < head.size()) {
      std::size_t next = head.find("\r\n", pos);
      if (next == std::string::npos) next = head.size();
      std::string line = head.substr(pos, next - pos);
      std::size_t colon = line.find(':');
      if (colon != std::string::npos) {
        request.headers.emplace_back(Trim(line.substr(0, colon)), Trim(line.substr(colon + 1)));
      }
      pos = next + 2;
    }
    std::string length = request.Header("Content-Length");
    std::size_t body_size = length.empty() ? 0 : std::stoul(length);
    while (buffer.size() < body_size) {
      if (!read_more()) {
        ok = false;
        break;
      }
    }
    if (!ok) break;
    request.body = buffer.substr(0, body_size);
    buffer.erase(0, body_size);
    {
      std::lock_guard<std::mutex> lock(mu_);
      received_.push_back(request);
    }
    handler_(request, conn);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (conn.ssl_ != nullptr) SSL_free(conn.ssl_);
    open_fds_.erase(fd);
    ::close(fd);
  }
}


// --- Notification, UnusedPort ----------------------------------------------

void Notification::Notify() {
  std::lock_guard<std::mutex> lock(mu_);
  notified_ = true;
  cv_.notify_all();
}

bool Notification::WaitFor(std::chrono::milliseconds limit) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, limit, [&] { return notified_; });
}

int UnusedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

}  // namespace kubefold::kube::testing
