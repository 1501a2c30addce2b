#include "tests/emulator/server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/read.hpp>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <random>
#include <stdexcept>

namespace kubefold::emulator {

namespace http = boost::beast::http;

namespace {

std::string HttpDate() {
  const std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof(buf), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

const char* Reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Status";
  }
}

int FromHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Go's url.PathUnescape / QueryUnescape (plus as space for queries).
std::optional<std::string> Unescape(std::string_view in, bool query) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%') {
      if (i + 2 >= in.size()) return std::nullopt;
      const int hi = FromHex(in[i + 1]), lo = FromHex(in[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (query && in[i] == '+') {
      out += ' ';
    } else {
      out += in[i];
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------
// One connection: its socket, TLS session, and the response writer.
// ---------------------------------------------------------------------------

struct HttpServer::Connection final : ResponseWriter {
  int fd = -1;
  SSL* ssl = nullptr;
  RequestHandler* handler = nullptr;
  std::thread thread;
  std::atomic<bool> done{false};
  bool broken = false;   // a write failed or the connection was reset
  bool head = false;     // the current request is HEAD: no body
  bool close_after = false;
  std::mt19937 rng{std::random_device{}()};
  std::string chunk_buffer;  // WriteChunk's framing buffer

  bool WriteRaw(std::string_view bytes) {
    if (broken) return false;
    while (!bytes.empty()) {
      int n;
      if (ssl != nullptr) {
        n = SSL_write(ssl, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
      } else {
        n = static_cast<int>(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL));
        if (n < 0 && errno == EINTR) continue;
      }
      if (n <= 0) {
        broken = true;
        return false;
      }
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  std::string Head(int status, const Headers& headers) {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + Reason(status) + "\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    out += "Date: " + HttpDate() + "\r\n";
    if (close_after) out += "Connection: close\r\n";
    return out;
  }

  bool Send(int status, const Headers& headers, std::string_view body) override {
    std::string out = Head(status, headers);
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    if (!head) out += body;
    return WriteRaw(out);
  }

  bool StartChunked(int status, const Headers& headers) override {
    return WriteRaw(Head(status, headers) + "Transfer-Encoding: chunked\r\n\r\n");
  }

  bool WriteChunk(std::string_view data) override {
    if (data.empty()) return !broken;
    auto chunk = [&](std::string_view piece) {
      // One buffer, reused: size line, data and CRLF go out in one write.
      char size[24];
      const int n = std::snprintf(size, sizeof(size), "%zx\r\n", piece.size());
      chunk_buffer.assign(size, static_cast<std::size_t>(n));
      chunk_buffer.append(piece);
      chunk_buffer.append("\r\n");
      return WriteRaw(chunk_buffer);
    };
    if (!handler->SplitChunks()) return chunk(data);
    // Pieces of 1..64 bytes, each its own chunk and its own TLS record or
    // TCP send: event boundaries land anywhere, lines arrive in bits.
    while (!data.empty()) {
      const std::size_t n = std::min<std::size_t>(data.size(), 1 + rng() % 64);
      if (!chunk(data.substr(0, n))) return false;
      data.remove_prefix(n);
    }
    return true;
  }

  bool EndChunked() override { return WriteRaw("0\r\n\r\n"); }

  void Reset() override {
    if (broken) return;
    broken = true;
    linger l{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::shutdown(fd, SHUT_RDWR);
  }

  bool PeerGone() override {
    if (broken) return true;
    pollfd p{fd, POLLIN | POLLRDHUP, 0};
    if (::poll(&p, 1, 0) <= 0) return false;
    return (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) != 0;
  }

  // Reads some bytes; 0 at EOF or error.
  std::size_t Read(char* buf, std::size_t len) {
    if (broken) return 0;
    for (;;) {
      int n;
      if (ssl != nullptr) {
        n = SSL_read(ssl, buf, static_cast<int>(len));
      } else {
        n = static_cast<int>(::recv(fd, buf, len, 0));
        if (n < 0 && errno == EINTR) continue;
      }
      return n > 0 ? static_cast<std::size_t>(n) : 0;
    }
  }
};

// ---------------------------------------------------------------------------
// HttpServer
// ---------------------------------------------------------------------------

HttpServer::HttpServer(ServerOptions options, RequestHandler* handler)
    : options_(std::move(options)), handler_(handler) {
  if (options_.tls) {
    ctx_ = SSL_CTX_new(TLS_server_method());
    if (ctx_ == nullptr) throw std::runtime_error("kube-emulator: SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx_, TLS1_2_VERSION);
    UseKeyPair(ctx_, options_.serving);
    if (!options_.client_ca_pem.empty()) {
      TrustCertificates(ctx_, options_.client_ca_pem);
      // Ask for a client certificate, accept connections without one (they
      // authenticate with a token instead), refuse ones that do not verify.
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER, nullptr);
    }
  }
  std::lock_guard lock(mu_);
  Listen();
}

HttpServer::~HttpServer() {
  stopping_ = true;
  StopListening();
  std::list<std::unique_ptr<Connection>> conns;
  {
    std::lock_guard lock(mu_);
    for (auto& c : connections_) {
      if (c->fd >= 0) ::shutdown(c->fd, SHUT_RDWR);
    }
    conns.swap(connections_);
  }
  for (auto& c : conns) {
    if (c->thread.joinable()) c->thread.join();
  }
  if (hold_fd_ >= 0) ::close(hold_fd_);
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

int HttpServer::Bind(bool listen) const {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw std::runtime_error(std::string("kube-emulator: socket: ") + std::strerror(errno));
  // SO_REUSEADDR on the listener and on the partition's holder lets each
  // bind beside the other (and beside connections not yet reset) as long as
  // only one of them listens.
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port_.load() != 0 ? port_.load() : options_.port));
  if (::inet_pton(AF_INET, options_.bind.c_str(), &addr.sin_addr) != 1) {
    ::close(fd);
    throw std::runtime_error("kube-emulator: bad bind address '" + options_.bind + "'");
  }
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || (listen && ::listen(fd, 128) != 0)) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    throw std::runtime_error(std::string("kube-emulator: cannot ") + (listen ? "listen on " : "hold ") +
                             options_.bind + ":" + std::to_string(ntohs(addr.sin_port)) + ": " + why);
  }
  return fd;
}

void HttpServer::Listen() {
  const int fd = Bind(/*listen=*/true);
  sockaddr_in addr{};
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (port_.load() == 0) port_ = ntohs(addr.sin_port);
  listen_fd_ = fd;
  accept_thread_ = std::thread([this] { AcceptLoop(); });
}

std::string HttpServer::Url() const {
  return std::string(options_.tls ? "https://" : "http://") + options_.bind + ":" + std::to_string(port_.load());
}

void HttpServer::StopListening() {
  std::thread accept;
  {
    std::lock_guard lock(mu_);
    // shutdown() wakes the accept loop's accept(); the socket closes only
    // after the loop has gone, so its descriptor is never reused under it.
    if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
    accept = std::move(accept_thread_);
  }
  if (accept.joinable()) accept.join();
  std::lock_guard lock(mu_);
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
}

void HttpServer::Partition() {
  partitioned_ = true;
  StopListening();
  {
    // The kernel gives a freed port to the next outgoing connection that
    // asks for an ephemeral one; binding it again at once keeps it ours.
    // (A bound socket cannot be placed before the listener closes: a port
    // with a listener refuses every other bind.)
    std::lock_guard lock(mu_);
    if (hold_fd_ < 0) hold_fd_ = Bind(/*listen=*/false);
  }
  ResetConnections();
}

void HttpServer::Heal() {
  std::lock_guard lock(mu_);
  if (listen_fd_ >= 0) return;
  partitioned_ = false;
  Listen();  // binds beside hold_fd_, which does not listen
  if (hold_fd_ >= 0) ::close(hold_fd_);
  hold_fd_ = -1;
}

void HttpServer::ResetConnections() {
  std::lock_guard lock(mu_);
  for (auto& c : connections_) {
    if (c->done.load() || c->fd < 0) continue;
    linger l{1, 0};
    ::setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
    ::shutdown(c->fd, SHUT_RDWR);
  }
}

void HttpServer::Reap() {
  for (auto it = connections_.begin(); it != connections_.end();) {
    if ((*it)->done.load()) {
      (*it)->thread.join();
      it = connections_.erase(it);
    } else {
      ++it;
    }
  }
}

void HttpServer::AcceptLoop() {
  int listen_fd;
  {
    std::lock_guard lock(mu_);
    listen_fd = listen_fd_;
  }
  for (;;) {
    const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      return;  // shut down (partition or stop)
    }
    if (stopping_.load() || partitioned_.load()) {
      ::close(fd);
      continue;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard lock(mu_);
    Reap();
    auto conn = std::make_unique<Connection>();
    conn->fd = fd;
    conn->handler = handler_;
    Connection* raw = conn.get();
    connections_.push_back(std::move(conn));
    raw->thread = std::thread([this, raw] { Serve(raw); });
  }
}

void HttpServer::Serve(Connection* conn) {
  // A peer that went away makes SSL_write's write() raise SIGPIPE; blocked
  // in this thread, it becomes an EPIPE error instead, without touching the
  // process's signal handling (the emulator may run inside a test).
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
  struct Done {
    HttpServer* server;
    Connection* c;
    ~Done() {
      if (c->ssl != nullptr) {
        if (!c->broken) SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = nullptr;
      }
      // Under the server's lock: ResetConnections and the destructor shut
      // down only descriptors still open, never a number reused since.
      std::lock_guard lock(server->mu_);
      ::close(c->fd);
      c->fd = -1;
      c->done = true;
    }
  } done{this, conn};

  std::string client_user;
  std::vector<std::string> client_groups;
  std::string remote_ip;
  {
    sockaddr_storage peer{};
    socklen_t len = sizeof(peer);
    char text[INET6_ADDRSTRLEN] = {0};
    if (::getpeername(conn->fd, reinterpret_cast<sockaddr*>(&peer), &len) == 0) {
      if (peer.ss_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&peer)->sin_addr, text, sizeof(text));
      } else if (peer.ss_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&peer)->sin6_addr, text, sizeof(text));
      }
      remote_ip = text;
    }
  }
  if (ctx_ != nullptr) {
    conn->ssl = SSL_new(ctx_);
    SSL_set_fd(conn->ssl, conn->fd);
    if (SSL_accept(conn->ssl) != 1) {
      ++handshake_failures_;
      ERR_clear_error();
      conn->broken = true;
      return;
    }
    if (X509* peer = SSL_get_peer_certificate(conn->ssl)) {
      if (SSL_get_verify_result(conn->ssl) == X509_V_OK) {
        char cn[256] = {0};
        X509_NAME* subject = X509_get_subject_name(peer);
        X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof(cn));
        client_user = cn;
        // Every O= is a group, as the x509 authenticator reads them.
        for (int i = -1; (i = X509_NAME_get_index_by_NID(subject, NID_organizationName, i)) >= 0;) {
          const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i));
          client_groups.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(data)),
                                     static_cast<std::size_t>(ASN1_STRING_length(data)));
        }
      }
      X509_free(peer);
    }
  }

  std::string buffered;
  char buf[16384];
  while (!stopping_.load() && !conn->broken) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(1 << 20);
    parser.body_limit(options_.max_body_bytes);
    parser.eager(true);
    boost::beast::error_code ec;
    bool too_large = false;
    while (!parser.is_done()) {
      if (!buffered.empty()) {
        const std::size_t used = parser.put(boost::asio::buffer(buffered.data(), buffered.size()), ec);
        buffered.erase(0, used);
        if (ec == http::error::need_more) {
          ec = {};
        } else if (ec == http::error::body_limit) {
          too_large = true;
          break;
        } else if (ec) {
          break;
        }
        if (parser.is_done()) break;
        if (used > 0 && !buffered.empty()) continue;
      }
      const std::size_t n = conn->Read(buf, sizeof(buf));
      if (n == 0) {
        if (parser.got_some() || !buffered.empty()) {
          parser.put_eof(ec);
          if (!ec && parser.is_done()) break;
        }
        return;  // the client closed the connection
      }
      buffered.append(buf, n);
    }
    if (too_large) {
      conn->close_after = true;
      conn->Send(413, {{"Content-Type", "application/json"}},
                 "{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{},\"status\":\"Failure\",\"message\":"
                 "\"Request entity too large: limit is " + std::to_string(options_.max_body_bytes) +
                     "\",\"reason\":\"RequestEntityTooLarge\",\"code\":413}");
      return;
    }
    if (ec) {
      conn->close_after = true;
      conn->Send(400, {{"Content-Type", "text/plain; charset=utf-8"}}, "400 Bad Request");
      return;
    }
    auto& msg = parser.get();
    Request req;
    req.method = std::string(msg.method_string());
    const std::string target(msg.target());
    const auto q = target.find('?');
    auto path = Unescape(std::string_view(target).substr(0, q), false);
    bool bad = !path.has_value();
    if (path) req.path = *path;
    if (q != std::string::npos) {
      req.raw_query = target.substr(q + 1);
      std::string_view rest = std::string_view(target).substr(q + 1);
      while (!rest.empty()) {
        const auto amp = rest.find('&');
        std::string_view part = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (part.empty()) continue;
        const auto eq = part.find('=');
        auto k = Unescape(part.substr(0, eq), true);
        auto v = Unescape(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
        if (!k || !v) {
          bad = true;
          break;
        }
        req.query.emplace_back(std::move(*k), std::move(*v));
      }
    }
    for (const auto& field : msg) req.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    req.body = std::move(msg.body());
    req.client_cert_user = client_user;
    req.client_cert_groups = client_groups;
    req.remote_ip = remote_ip;
    conn->head = req.method == "HEAD";
    conn->close_after = !msg.keep_alive();
    if (bad) {
      conn->close_after = true;
      conn->Send(400, {{"Content-Type", "text/plain; charset=utf-8"}}, "400 Bad Request: invalid URL escape");
      return;
    }
    handler_->Handle(req, *conn);
    if (conn->close_after) return;
  }
}

}  // namespace kubefold::emulator
