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

struct PkeyFree { void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); } };
struct X509Free { void operator()(X509* p) const { X509_free(p); } };
struct BioFree { void operator()(BIO* p) const { BIO_free(p); } };
using Pkey = std::unique_ptr<EVP_PKEY, PkeyFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Bio = std::unique_ptr<BIO, BioFree>;

std::string BioString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

std::string CertPem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_X509(bio.get(), cert) != 1) Fail("PEM_write_bio_X509");
  return BioString(bio.get());
}

std::string KeyPem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  if (!bio || PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    Fail("PEM_write_bio_PrivateKey");
  }
  return BioString(bio.get());
}

Pkey NewKey() {
  Pkey key(EVP_EC_gen("P-256"));
  if (!key) Fail("EVP_EC_gen");
  return key;
}

void AddExt(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (ext == nullptr) Fail(std::string("extension ") + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

struct CertSpec {
  std::string cn;
  bool ca = false;
  std::string san;  // "IP:127.0.0.1", "DNS:x"; empty: none
  const char* eku = nullptr;  // "serverAuth" / "clientAuth"
};

// A certificate for `key`, signed by (issuer, issuer_key) or self-signed.
Cert MakeCert(EVP_PKEY* key, const CertSpec& spec, X509* issuer, EVP_PKEY* issuer_key) {
  static std::atomic<long> serial{1};
  Cert cert(X509_new());
  if (!cert) Fail("X509_new");
  X509_set_version(cert.get(), 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert.get()), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), 24 * 3600);
  X509_set_pubkey(cert.get(), key);
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(spec.cn.c_str()),
                             -1, -1, 0);
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  if (spec.ca) {
    AddExt(cert.get(), &ctx, NID_basic_constraints, "critical,CA:TRUE");
    AddExt(cert.get(), &ctx, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    AddExt(cert.get(), &ctx, NID_basic_constraints, "CA:FALSE");
    AddExt(cert.get(), &ctx, NID_key_usage, "critical,digitalSignature");
  }
  AddExt(cert.get(), &ctx, NID_subject_key_identifier, "hash");
  if (!spec.san.empty()) AddExt(cert.get(), &ctx, NID_subject_alt_name, spec.san.c_str());
  if (spec.eku != nullptr) AddExt(cert.get(), &ctx, NID_ext_key_usage, spec.eku);
  if (X509_sign(cert.get(), issuer_key != nullptr ? issuer_key : key, EVP_sha256()) == 0) Fail("X509_sign");
  return cert;
}

KeyPair Leaf(const CertSpec& spec, X509* ca, EVP_PKEY* ca_key) {
  Pkey key = NewKey();
  Cert cert = MakeCert(key.get(), spec, ca, ca_key);
  return {CertPem(cert.get()), KeyPem(key.get())};
}

TestPki MakePki() {
  TestPki pki;
  Pkey ca_key = NewKey();
  Cert ca = MakeCert(ca_key.get(), {"kubefold-test-ca", true, "", nullptr}, nullptr, nullptr);
  Pkey other_key = NewKey();
  Cert other = MakeCert(other_key.get(), {"kubefold-other-ca", true, "", nullptr}, nullptr, nullptr);
  pki.ca_pem = CertPem(ca.get());
  pki.other_ca_pem = CertPem(other.get());
  pki.server_ip = Leaf({"kubefold-test-server", false, "IP:127.0.0.1", "serverAuth"}, ca.get(), ca_key.get());
  pki.server_dns =
      Leaf({"kubernetes.default.svc", false, "DNS:kubernetes.default.svc", "serverAuth"}, ca.get(), ca_key.get());
  pki.server_wrong = Leaf({"wrong.example.com", false, "DNS:wrong.example.com", "serverAuth"}, ca.get(), ca_key.get());
  pki.server_cn_only = Leaf({"127.0.0.1", false, "", "serverAuth"}, ca.get(), ca_key.get());
  pki.client = Leaf({"kubefold-client", false, "", "clientAuth"}, ca.get(), ca_key.get());
  pki.client_other_ca = Leaf({"kubefold-client", false, "", "clientAuth"}, other.get(), other_key.get());
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

void LoadPem(SSL_CTX* ctx, const KeyPair& pair) {
  Bio cert_bio(BIO_new_mem_buf(pair.cert_pem.data(), static_cast<int>(pair.cert_pem.size())));
  Cert cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
  Bio key_bio(BIO_new_mem_buf(pair.key_pem.data(), static_cast<int>(pair.key_pem.size())));
  Pkey key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
  if (!cert || !key || SSL_CTX_use_certificate(ctx, cert.get()) != 1 || SSL_CTX_use_PrivateKey(ctx, key.get()) != 1) {
    Fail("server certificate");
  }
}

void TrustPem(SSL_CTX* ctx, const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  Cert cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (!cert || X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert.get()) != 1) Fail("client CA");
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
    LoadPem(ctx_, options_.server);
    if (!options_.client_ca_pem.empty()) {
      TrustPem(ctx_, options_.client_ca_pem);
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

// --- ThreadSanitizer -------------------------------------------------------

// Debian's libcpprest.so is not built with ThreadSanitizer, so TSan does not
// see the atomic reference-count decrements that run inside it. When the
// last reference to one of its objects is dropped inside the library on one
// thread while our (instrumented) code dropped another reference on a
// different thread, TSan reports the free as racing with our earlier,
// properly ordered, access. (The same holds for std::exception_ptr, whose
// reference count lives in the uninstrumented libstdc++.) Seen in five places:
//   - the free of the cancellation-token callback cpprestsdk registers per
//     request (it holds a weak_ptr to the request context) and
//   - the free of that request context, both when a request is cancelled
//     while its completion runs on the network thread (timeouts, Cancel);
//   - the free of a response's body-complete task when the library completes
//     its task_completion_event while our content_ready() continuation runs;
//   - the free of an http_exception (its what() string) by the library, and
//   - the free of the exception object by libstdc++'s exception_ptr release,
//     after our thread, holding an exception_ptr to it, read its message.
// All are reference-counted correctly. The suppressions name those library
// functions only: a race whose stacks do not pass through them (say, in the
// body buffer BodySink shares with the network thread) is still reported.
// Every binary that runs the real transport under TSan needs them; today
// that is transport_test, which links this file.
extern "C" __attribute__((used, visibility("default"))) const char* __tsan_default_suppressions() {
  return "race:pplx::details::_CancellationTokenCallback\n"
         "race:web::http::client::details::asio_context::~asio_context\n"
         "race:pplx::task_completion_event\n"
         "race:web::http::http_exception::~http_exception\n"
         "race:std::__exception_ptr::exception_ptr::_M_release\n";
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
