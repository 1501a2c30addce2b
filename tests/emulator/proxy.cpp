#include "tests/emulator/proxy.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>

namespace kubefold::emulator {
namespace {

bool IEq(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Go's syscall error text: strerror, lower case.
std::string Errno(int err) {
  std::string s = std::strerror(err);
  if (!s.empty()) s[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[0])));
  return s;
}

// Hop-by-hop headers (net/http/httputil's list) plus those the Connection
// header names.
bool HopByHop(std::string_view name, const std::vector<std::string>& connection_listed) {
  static const char* const kHop[] = {"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
                                     "Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"};
  for (const char* h : kHop) {
    if (IEq(name, h)) return true;
  }
  return std::any_of(connection_listed.begin(), connection_listed.end(),
                     [&](const std::string& c) { return IEq(name, c); });
}

std::vector<std::string> ConnectionListed(const Headers& headers) {
  std::vector<std::string> out;
  for (const auto& [k, v] : headers) {
    if (!IEq(k, "Connection")) continue;
    std::size_t start = 0;
    while (start <= v.size()) {
      const auto comma = v.find(',', start);
      std::string token = v.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      token.erase(0, token.find_first_not_of(" \t"));
      token.erase(token.find_last_not_of(" \t") + 1);
      if (!token.empty()) out.push_back(token);
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  return out;
}

SSL_CTX* ClientContext() {
  static SSL_CTX* const ctx = [] {
    SSL_CTX* c = SSL_CTX_new(TLS_client_method());
    if (c != nullptr) SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
    return c;
  }();
  return ctx;
}

// One connection to the backend.
class Backend {
 public:
  ~Backend() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }

  // "" or Go's dial / handshake error.
  std::string Connect(const ProxyTarget& t) {
    const std::string host_port =
        (t.ip.find(':') != std::string::npos ? "[" + t.ip + "]" : t.ip) + ":" + std::to_string(t.port);
    addrinfo hints{};
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (::getaddrinfo(t.ip.c_str(), std::to_string(t.port).c_str(), &hints, &res) != 0 || res == nullptr) {
      return "dial tcp: address " + host_port + ": no suitable address";
    }
    fd_ = ::socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int rc = fd_ < 0 ? -1 : ::connect(fd_, res->ai_addr, res->ai_addrlen);
    const int err = errno;
    ::freeaddrinfo(res);
    if (rc != 0) return "dial tcp " + host_port + ": connect: " + Errno(err);
    int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (!t.tls) return "";
    if (ClientContext() == nullptr) return "tls: no client context";
    ssl_ = SSL_new(ClientContext());
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      const unsigned long e = ERR_peek_error();
      ERR_clear_error();
      // A plain-HTTP backend answers the ClientHello with something that is
      // no TLS record.
      if (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER || ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG) {
        return "tls: first record does not look like a TLS handshake";
      }
      return e == 0 ? "EOF" : "remote error: tls: handshake failure";
    }
    return "";
  }

  bool Write(std::string_view bytes) {
    while (!bytes.empty()) {
      int n;
      if (ssl_ != nullptr) {
        n = SSL_write(ssl_, bytes.data(), static_cast<int>(std::min<std::size_t>(bytes.size(), 1 << 30)));
      } else {
        n = static_cast<int>(::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL));
        if (n < 0 && errno == EINTR) continue;
      }
      if (n <= 0) return false;
      bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // Appends what arrives to `into`: > 0 bytes read, 0 at EOF, < 0 on an
  // error or when the client went away. Waits as long as the client stays.
  long Read(std::string& into, ResponseWriter& client) {
    char buf[16384];
    for (;;) {
      if (ssl_ == nullptr || SSL_pending(ssl_) == 0) {
        pollfd p{fd_, POLLIN, 0};
        const int ready = ::poll(&p, 1, 200);
        if (ready < 0 && errno != EINTR) return -1;
        if (ready <= 0) {
          if (client.PeerGone()) return -1;
          continue;
        }
      }
      int n;
      if (ssl_ != nullptr) {
        n = SSL_read(ssl_, buf, sizeof(buf));
        if (n <= 0) {
          const int e = SSL_get_error(ssl_, n);
          ERR_clear_error();
          if (e == SSL_ERROR_WANT_READ) continue;
          return e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL ? 0 : -1;
        }
      } else {
        n = static_cast<int>(::recv(fd_, buf, sizeof(buf), 0));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return -1;
      }
      into.append(buf, static_cast<std::size_t>(n));
      return n;
    }
  }

 private:
  int fd_ = -1;
  SSL* ssl_ = nullptr;
};

struct ResponseHead {
  int status = 0;
  Headers headers;
  std::string Header(std::string_view name) const {
    for (const auto& [k, v] : headers) {
      if (IEq(k, name)) return v;
    }
    return "";
  }
};

// Parses "HTTP/1.1 200 OK\r\nName: value\r\n...". False if malformed.
bool ParseHead(std::string_view head, ResponseHead* out) {
  const auto eol = head.find("\r\n");
  const std::string_view status_line = head.substr(0, eol);
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12) return false;
  out->status = 0;
  for (std::size_t i = 9; i < 12; ++i) {
    if (!std::isdigit(static_cast<unsigned char>(status_line[i]))) return false;
    out->status = out->status * 10 + (status_line[i] - '0');
  }
  std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    auto end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    const std::string_view line = head.substr(pos, end - pos);
    pos = end + 2;
    if (line.empty()) continue;
    const auto colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    std::string value(line.substr(colon + 1));
    value.erase(0, value.find_first_not_of(" \t"));
    value.erase(value.find_last_not_of(" \t") + 1);
    out->headers.emplace_back(std::string(line.substr(0, colon)), std::move(value));
  }
  return true;
}

}  // namespace

std::string EscapePath(std::string_view path) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : path) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isalnum(c) || std::strchr("-_.~$&+,/:;=@", ch) != nullptr) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ForwardToBackend(const ProxyTarget& target, const Request& req, const std::string& request_uri,
                             const std::string& forwarded_uri, ResponseWriter& w) {
  Backend backend;
  if (std::string error = backend.Connect(target); !error.empty()) return error;

  // The request: the client's headers less hop-by-hop ones and
  // Authorization, plus the forwarding headers.
  const auto listed = ConnectionListed(req.headers);
  std::string host = req.Header("Host");
  if (host.empty()) host = target.ip + ":" + std::to_string(target.port);
  std::string out = req.method + " " + request_uri + " HTTP/1.1\r\nHost: " + host + "\r\n";
  std::string forwarded_for;
  for (const auto& [k, v] : req.headers) {
    if (IEq(k, "Host") || IEq(k, "Authorization") || IEq(k, "Content-Length") || IEq(k, "X-Forwarded-Uri") ||
        HopByHop(k, listed)) {
      continue;
    }
    if (IEq(k, "X-Forwarded-For")) {
      forwarded_for += (forwarded_for.empty() ? "" : ", ") + v;
      continue;
    }
    out += k + ": " + v + "\r\n";
  }
  if (!req.remote_ip.empty()) forwarded_for += (forwarded_for.empty() ? "" : ", ") + req.remote_ip;
  if (!forwarded_for.empty()) out += "X-Forwarded-For: " + forwarded_for + "\r\n";
  out += "X-Forwarded-Uri: " + forwarded_uri + "\r\n";
  if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
    out += "Content-Length: " + std::to_string(req.body.size()) + "\r\n";
  }
  out += "\r\n";
  out += req.body;
  if (!backend.Write(out)) return "write: broken pipe";

  // The response head.
  std::string buf;
  std::size_t head_end;
  for (;;) {
    head_end = buf.find("\r\n\r\n");
    if (head_end != std::string::npos) break;
    if (buf.size() > (1 << 20)) return "net/http: server response headers exceeded 1048576 bytes; aborted";
    const long n = backend.Read(buf, w);
    if (n == 0) return buf.empty() ? "EOF" : "unexpected EOF";
    if (n < 0) return "read: connection reset by peer";
  }
  ResponseHead head;
  if (!ParseHead(std::string_view(buf).substr(0, head_end), &head)) {
    return "net/http: HTTP/1.x transport connection broken: malformed HTTP response";
  }
  buf.erase(0, head_end + 4);

  const auto backend_listed = ConnectionListed(head.headers);
  Headers headers;
  for (const auto& [k, v] : head.headers) {
    if (HopByHop(k, backend_listed) || IEq(k, "Content-Length") || IEq(k, "Date") ||
        IEq(k, "Access-Control-Allow-Origin") || IEq(k, "Access-Control-Allow-Credentials") ||
        IEq(k, "Access-Control-Allow-Methods") || IEq(k, "Access-Control-Allow-Headers")) {
      continue;
    }
    headers.emplace_back(k, v);
  }
  const bool no_body = req.method == "HEAD" || head.status == 204 || head.status == 304 || head.status < 200;
  const bool chunked = head.Header("Transfer-Encoding").find("chunked") != std::string::npos;
  const std::string length_text = head.Header("Content-Length");
  if (no_body || (!chunked && !length_text.empty())) {
    std::size_t length = 0;
    if (!no_body) {
      for (char c : length_text) {
        if (!std::isdigit(static_cast<unsigned char>(c))) return "net/http: bad Content-Length";
        length = length * 10 + static_cast<std::size_t>(c - '0');
      }
    }
    while (buf.size() < length) {
      const long n = backend.Read(buf, w);
      if (n <= 0) return n == 0 ? "unexpected EOF" : "read: connection reset by peer";
    }
    buf.resize(length);
    w.Send(head.status, headers, buf);
    return "";
  }

  // Streamed: relayed chunk by chunk as it comes.
  if (!w.StartChunked(head.status, headers)) return "";
  auto fail = [&] {
    w.Reset();  // a Go proxy aborts the response (http.ErrAbortHandler)
    return std::string();
  };
  if (!chunked) {
    for (;;) {
      if (!buf.empty() && !w.WriteChunk(buf)) return "";
      buf.clear();
      const long n = backend.Read(buf, w);
      if (n == 0) break;
      if (n < 0) return fail();
    }
    w.EndChunked();
    return "";
  }
  // Decode the backend's chunks; forward each piece of data at once.
  std::size_t remaining = 0;  // data bytes left in the current chunk
  bool in_data = false;
  for (;;) {
    if (in_data) {
      if (!buf.empty()) {
        const std::size_t n = std::min(remaining, buf.size());
        if (!w.WriteChunk(std::string_view(buf).substr(0, n))) return "";
        buf.erase(0, n);
        remaining -= n;
      }
      if (remaining == 0) {
        if (buf.size() >= 2) {
          buf.erase(0, 2);  // the CRLF after the data
          in_data = false;
          continue;
        }
      } else if (!buf.empty()) {
        continue;
      }
    } else {
      const auto eol = buf.find("\r\n");
      if (eol != std::string::npos) {
        std::size_t size = 0;
        std::size_t i = 0;
        for (; i < eol && std::isxdigit(static_cast<unsigned char>(buf[i])); ++i) {
          const char c = static_cast<char>(std::tolower(static_cast<unsigned char>(buf[i])));
          size = size * 16 + static_cast<std::size_t>(c <= '9' ? c - '0' : c - 'a' + 10);
        }
        if (i == 0) return fail();
        if (size == 0) {
          // The last chunk; the trailers (ignored) end with an empty line.
          while (buf.find("\r\n\r\n", eol) == std::string::npos) {
            if (backend.Read(buf, w) <= 0) break;
          }
          w.EndChunked();
          return "";
        }
        buf.erase(0, eol + 2);
        remaining = size;
        in_data = true;
        continue;
      }
    }
    const long n = backend.Read(buf, w);
    if (n <= 0) return fail();
  }
}

}  // namespace kubefold::emulator
