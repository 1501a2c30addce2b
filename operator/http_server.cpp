#include "operator/http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "controllers/kube/paths.h"

namespace kubefold {

namespace http = boost::beast::http;

namespace {

constexpr size_t kFlushBytes = 64 * 1024;

const char* ReasonPhrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 410: return "Gone";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    default: return "Unknown";
  }
}

std::string FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return std::to_string(st.st_mtim.tv_sec) + "." + std::to_string(st.st_mtim.tv_nsec) + ":" +
         std::to_string(st.st_size);
}

std::string OpenSslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "unknown error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

void SetTimeout(int fd, int option, std::chrono::milliseconds d) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(d.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((d.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof tv);
}

}  // namespace

Status ParseRequestTarget(std::string_view target, IncomingRequest& req) {
  const size_t q = target.find('?');
  req.raw_path = std::string(target.substr(0, q));
  auto p = kube::PercentDecode(req.raw_path, false);
  if (!p) return InvalidArgument("the request path has a malformed percent-escape");
  req.path = std::move(*p);
  req.query.clear();
  if (q == std::string_view::npos) return Status::Ok();
  std::string_view rest = target.substr(q + 1);
  while (!rest.empty()) {
    const size_t amp = rest.find('&');
    std::string_view part = rest.substr(0, amp);
    rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    auto k = kube::PercentDecode(part.substr(0, eq), true);
    auto v = kube::PercentDecode(eq == std::string_view::npos ? std::string_view() : part.substr(eq + 1), true);
    if (!k || !v) return InvalidArgument("the query string has a malformed percent-escape");
    req.query.emplace_back(std::move(*k), std::move(*v));
  }
  return Status::Ok();
}

std::string IncomingRequest::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

struct HttpServer::Connection {
  int fd = -1;
  SSL* ssl = nullptr;
  std::string peer;
  std::thread thread;
  std::atomic<bool> done{false};

  // Reads some bytes; 0 on end of stream, timeout or error.
  size_t Read(char* buf, size_t n) {
    if (ssl != nullptr) {
      const int r = SSL_read(ssl, buf, static_cast<int>(n));
      return r > 0 ? static_cast<size_t>(r) : 0;
    }
    for (;;) {
      const ssize_t r = ::recv(fd, buf, n, 0);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 ? static_cast<size_t>(r) : 0;
    }
  }
  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      if (ssl != nullptr) {
        const int r = SSL_write(ssl, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
        if (r <= 0) return false;
        data.remove_prefix(static_cast<size_t>(r));
      } else {
        const ssize_t r = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return false;
        data.remove_prefix(static_cast<size_t>(r));
      }
    }
    return true;
  }
};

namespace {

class ConnectionResponse : public ResponseWriter {
 public:
  ConnectionResponse(std::function<bool(std::string_view)> write, bool head, bool keep_alive)
      : write_(std::move(write)), head_(head), keep_alive_(keep_alive) {}

  void Send(int status, std::string_view content_type, std::string_view body,
            const std::vector<std::pair<std::string, std::string>>& headers) override {
    if (started_) return;
    started_ = true;
    status_ = status;
    std::string out = StatusLine(status, content_type, headers);
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    if (!head_) out.append(body);
    ok_ = write_(out);
  }
  void Begin(int status, std::string_view content_type,
             const std::vector<std::pair<std::string, std::string>>& headers) override {
    if (started_) return;
    started_ = true;
    status_ = status;
    chunked_ = true;
    buffer_ = StatusLine(status, content_type, headers);
    buffer_ += head_ ? "\r\n" : "Transfer-Encoding: chunked\r\n\r\n";
  }
  bool Write(std::string_view data) override {
    if (!chunked_ || !ok_) return false;
    if (head_) return true;
    pending_.append(data);
    if (pending_.size() >= kFlushBytes) Flush(false);
    return ok_;
  }
  bool started() const override { return started_; }
  int status() const override { return status_; }

  // Ends a chunked stream; true when the connection is still usable.
  bool Finish() {
    if (chunked_) Flush(true);
    return ok_;
  }
  bool keep_alive() const { return keep_alive_; }

 private:
  std::string StatusLine(int status, std::string_view content_type,
                         const std::vector<std::pair<std::string, std::string>>& headers) const {
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + ReasonPhrase(status) + "\r\n";
    char date[64];
    const std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    out += std::string("Date: ") + date + "\r\n";
    out += "Content-Type: " + std::string(content_type) + "\r\n";
    out += "X-Content-Type-Options: nosniff\r\n";
    out += "Cache-Control: no-store\r\n";
    for (const auto& [k, v] : headers) out += k + ": " + v + "\r\n";
    if (!keep_alive_) out += "Connection: close\r\n";
    return out;
  }
  void Flush(bool last) {
    if (!ok_) return;
    if (!head_) {
      if (!pending_.empty()) {
        char size[32];
        std::snprintf(size, sizeof size, "%zx\r\n", pending_.size());
        buffer_ += size;
        buffer_ += pending_;
        buffer_ += "\r\n";
        pending_.clear();
      }
      if (last) buffer_ += "0\r\n\r\n";
    }
    if (!buffer_.empty()) ok_ = write_(buffer_);
    buffer_.clear();
    if (buffer_.capacity() > 4 * kFlushBytes) buffer_.shrink_to_fit();
    if (pending_.capacity() > 4 * kFlushBytes) pending_.shrink_to_fit();
  }

  std::function<bool(std::string_view)> write_;
  const bool head_;
  const bool keep_alive_;
  bool started_ = false, chunked_ = false, ok_ = true;
  int status_ = 0;
  std::string buffer_, pending_;
};

}  // namespace

HttpServer::HttpServer(HttpServerOptions options, HttpHandler handler)
    : options_(std::move(options)), handler_(std::move(handler)) {}

Result<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options, HttpHandler handler) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return InvalidArgument("TLS needs both a certificate file and a key file");
  }
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(options), std::move(handler)));
  if (!s->options_.tls_cert_file.empty()) {
    std::lock_guard lock(s->tls_mu_);
    if (Status st = s->LoadCertificate(); !st.ok()) return st;
  }
  if (Status st = s->Listen(); !st.ok()) return st;
  s->accept_thread_ = std::thread([p = s.get()] { p->AcceptLoop(); });
  return s;
}

HttpServer::~HttpServer() {
  Stop();
  if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
}

Status HttpServer::LoadCertificate() {
  const std::string stamp = FileStamp(options_.tls_cert_file) + "|" + FileStamp(options_.tls_key_file);
  if (ctx_ != nullptr && stamp == cert_stamp_) return Status::Ok();
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return InternalError("TLS: " + OpenSslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, options_.tls_cert_file.c_str()) != 1) {
    const std::string e = OpenSslError();
    SSL_CTX_free(ctx);
    return InvalidArgument("TLS certificate file " + options_.tls_cert_file + ": " + e);
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, options_.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    const std::string e = OpenSslError();
    SSL_CTX_free(ctx);
    return InvalidArgument("TLS key file " + options_.tls_key_file + ": " + e);
  }
  // Connections hold their own reference (SSL_new takes one), so the old
  // context can be released here.
  if (ctx_ != nullptr) SSL_CTX_free(static_cast<SSL_CTX*>(ctx_));
  ctx_ = ctx;
  cert_stamp_ = stamp;
  return Status::Ok();
}

Status HttpServer::Listen() {
  const bool v6 = options_.bind.find(':') != std::string::npos;
  sockaddr_storage addr{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&addr);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(static_cast<uint16_t>(options_.port));
    if (inet_pton(AF_INET6, options_.bind.c_str(), &a->sin6_addr) != 1) {
      return InvalidArgument("bind address \"" + options_.bind + "\" is not an IP address");
    }
    len = sizeof(sockaddr_in6);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&addr);
    a->sin_family = AF_INET;
    a->sin_port = htons(static_cast<uint16_t>(options_.port));
    if (inet_pton(AF_INET, options_.bind.c_str(), &a->sin_addr) != 1) {
      return InvalidArgument("bind address \"" + options_.bind + "\" is not an IP address");
    }
    len = sizeof(sockaddr_in);
  }
  if (options_.port < 0 || options_.port > 65535) {
    return InvalidArgument("port " + std::to_string(options_.port) + " is out of range");
  }
  const int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Unavailable(std::string("socket: ") + std::strerror(errno));
  const int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd, 128) != 0) {
    const std::string e = std::strerror(errno);
    ::close(fd);
    return Unavailable("listen on " + options_.bind + ":" + std::to_string(options_.port) + ": " + e);
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof bound;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                   : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  listen_fd_ = fd;
  return Status::Ok();
}

void HttpServer::Stop() {
  if (stopping_.exchange(true)) return;
  if (listen_fd_ >= 0) ::shutdown(listen_fd_, SHUT_RDWR);
  if (accept_thread_.joinable()) accept_thread_.join();
  if (listen_fd_ >= 0) ::close(listen_fd_);
  listen_fd_ = -1;
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
  while (!stopping_.load()) {
    sockaddr_storage peer{};
    socklen_t plen = sizeof peer;
    const int fd = ::accept4(listen_fd_, reinterpret_cast<sockaddr*>(&peer), &plen, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (stopping_.load()) return;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        continue;
      }
      return;
    }
    char host[INET6_ADDRSTRLEN] = {};
    int pport = 0;
    if (peer.ss_family == AF_INET6) {
      auto* a = reinterpret_cast<sockaddr_in6*>(&peer);
      inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
      pport = ntohs(a->sin6_port);
    } else {
      auto* a = reinterpret_cast<sockaddr_in*>(&peer);
      inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
      pport = ntohs(a->sin_port);
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    SetTimeout(fd, SO_RCVTIMEO, options_.read_timeout);
    SetTimeout(fd, SO_SNDTIMEO, options_.write_timeout);
    std::lock_guard lock(mu_);
    Reap();
    if (connections_.size() >= options_.max_connections) {
      static constexpr std::string_view kBusy =
          "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nConnection: close\r\n"
          "Retry-After: 1\r\nContent-Length: 84\r\n\r\n"
          "{\"code\":503,\"reason\":\"ServiceUnavailable\",\"message\":\"too many open connections\"}\n";
      (void)!::send(fd, kBusy.data(), kBusy.size(), MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    auto c = std::make_unique<Connection>();
    c->fd = fd;
    c->peer = std::string(peer.ss_family == AF_INET6 ? "[" : "") + host + (peer.ss_family == AF_INET6 ? "]" : "") +
              ":" + std::to_string(pport);
    Connection* raw = c.get();
    connections_.push_back(std::move(c));
    raw->thread = std::thread([this, raw] {
      Serve(raw);
      raw->done.store(true);
    });
  }
}

void HttpServer::Serve(Connection* c) {
  if (!options_.tls_cert_file.empty()) {
    {
      std::lock_guard lock(tls_mu_);
      if (Status s = LoadCertificate(); !s.ok() && options_.log) {
        options_.log("TLS certificate not reloaded (the previous one stays in use): " + s.message());
      }
      c->ssl = SSL_new(static_cast<SSL_CTX*>(ctx_));
    }
    SSL_set_fd(c->ssl, c->fd);
    if (SSL_accept(c->ssl) != 1) {
      ERR_clear_error();
      SSL_free(c->ssl);
      c->ssl = nullptr;
      std::lock_guard lock(mu_);
      ::close(c->fd);
      c->fd = -1;
      return;
    }
  }
  std::string buffered;
  bool keep_going = true;
  char buf[16 * 1024];
  while (keep_going && !stopping_.load()) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<uint32_t>(options_.max_header_bytes));
    parser.body_limit(options_.max_body_bytes);
    parser.eager(true);
    boost::beast::error_code ec;
    bool closed = false;
    while (!parser.is_done()) {
      if (!buffered.empty()) {
        const size_t used = parser.put(boost::asio::buffer(buffered.data(), buffered.size()), ec);
        if (ec == http::error::need_more) {
          ec = {};
        } else if (ec) {
          break;
        }
        buffered.erase(0, used);
        if (parser.is_done()) break;
        if (used > 0 && !buffered.empty()) continue;
      }
      const size_t n = c->Read(buf, sizeof buf);
      if (n == 0) {
        closed = true;
        break;
      }
      buffered.append(buf, n);
    }
    if (closed) break;
    if (ec) {
      int status = 400;
      std::string message = "malformed HTTP request: " + ec.message();
      if (ec == http::error::header_limit) {
        status = 431;
        message = "request headers exceed " + std::to_string(options_.max_header_bytes) + " bytes";
      } else if (ec == http::error::body_limit) {
        status = 413;
        message = "request body exceeds " + std::to_string(options_.max_body_bytes) + " bytes";
      }
      ConnectionResponse r([c](std::string_view d) { return c->WriteAll(d); }, false, false);
      std::string body = "{\"code\":" + std::to_string(status) + ",\"reason\":\"BadRequest\",\"message\":\"" +
                         message + "\"}\n";
      r.Send(status, "application/json", body, {});
      break;
    }
    auto& msg = parser.get();
    IncomingRequest req;
    req.method = std::string(msg.method_string());
    req.peer = c->peer;
    for (const auto& f : msg) {
      std::string name(f.name_string());
      std::transform(name.begin(), name.end(), name.begin(), [](unsigned char ch) { return std::tolower(ch); });
      auto [it, fresh] = req.headers.emplace(name, std::string(f.value()));
      if (!fresh) it->second += ", " + std::string(f.value());
    }
    req.body = std::move(msg.body());
    const Status parsed = ParseRequestTarget(std::string_view(msg.target().data(), msg.target().size()), req);
    const bool bad = !parsed.ok();
    const std::string bad_message = parsed.message();
    const bool keep_alive = msg.keep_alive() && !stopping_.load();
    ConnectionResponse r([c](std::string_view d) { return c->WriteAll(d); }, req.method == "HEAD", keep_alive);
    if (bad) {
      r.Send(400, "application/json",
             "{\"code\":400,\"reason\":\"BadRequest\",\"message\":\"" + bad_message + "\"}\n", {});
    } else {
      try {
        handler_(req, r);
      } catch (const std::exception& e) {
        if (options_.log) options_.log(std::string("HTTP handler failed: ") + e.what());
        if (!r.started()) {
          r.Send(500, "application/json",
                 "{\"code\":500,\"reason\":\"InternalError\",\"message\":\"internal error\"}\n", {});
        } else {
          keep_going = false;  // a stream cut short: the client sees the connection end without the last chunk
        }
      }
      if (!r.started()) {
        r.Send(500, "application/json",
               "{\"code\":500,\"reason\":\"InternalError\",\"message\":\"no response\"}\n", {});
      }
    }
    if (!r.Finish() || !r.keep_alive()) keep_going = false;
  }
  if (c->ssl != nullptr) {
    SSL_shutdown(c->ssl);
    SSL_free(c->ssl);
    c->ssl = nullptr;
  }
  // Under mu_: Stop shuts connections down by descriptor, and a number
  // closed here could already name another socket.
  std::lock_guard lock(mu_);
  ::close(c->fd);
  c->fd = -1;
}

}  // namespace kubefold
