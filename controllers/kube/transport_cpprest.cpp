// The Transport over cpprestsdk (http_transport.h). The only translation unit
// of kubefold that includes cpprestsdk, Boost.Asio or OpenSSL headers.
//
// How the pieces fit:
//   - One web::http::client::http_client per transport (its pool keeps
//     keep-alive connections). Its own timeout is an inactivity timer for
//     the whole client (NOTES.md), so it is set far out of the way and every
//     deadline of transport.h is kept here, with pplx cancellation tokens:
//     cancelling a request's token makes cpprestsdk close its socket.
//   - TLS. cpprestsdk (2.10.18, the Asio client) calls our context callback
//     for every new connection, then on the SSL stream sets SNI and, when
//     validate_certificates is on, SSL_VERIFY_PEER with its own callback,
//     boost::asio::ssl::rfc2818_verification(Host header or URL host). That
//     name cannot be changed without changing the Host header, so it cannot
//     honour tls_server_name, and it would send an IP address as SNI. Hence:
//     the context callback sets OpenSSL's own name check
//     (X509_VERIFY_PARAM_set1_host / set1_ip_asc) on the SSL_CTX, which every
//     SSL made from it inherits, and an info callback runs at the start of
//     each handshake (before the ClientHello is written) to set our SNI and
//     replace cpprestsdk's verify callback by ours, which accepts exactly
//     what OpenSSL verified (chain + name). Should that hook ever not run,
//     cpprestsdk's rfc2818 check stays in force on top of OpenSSL's name
//     check: the failure mode refuses connections, it never accepts more.
//   - Streamed bodies go into our own write-only stream buffer (BodySink),
//     set as the request's response stream: cpprestsdk appends each HTTP
//     chunk to it as it arrives, and Read() takes whatever is there. (Reading
//     cpprestsdk's default producer_consumer_buffer without waiting for a
//     fixed count would need in_avail(), an unsynchronized read of a counter
//     the network thread writes.)
#include <arpa/inet.h>
#include <cerrno>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include <boost/asio/ssl.hpp>
#include <cpprest/astreambuf.h>
#include <cpprest/http_client.h>
#include <cpprest/streams.h>

#include "controllers/kube/http_transport.h"
#include "controllers/kube/internal/base64.h"

namespace kubefold::kube {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxReadBytes = 64 * 1024;

long long Millis(std::chrono::milliseconds d) { return static_cast<long long>(d.count()); }

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 || ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

bool IsAuthorization(std::string_view name) {
  constexpr std::string_view kName = "authorization";
  if (name.size() != kName.size()) return false;
  for (std::size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kName[i]) return false;
  }
  return true;
}

bool HasCrOrLf(std::string_view s) { return s.find_first_of("\r\n") != std::string_view::npos; }

// ---------------------------------------------------------------------------
// Server URL
// ---------------------------------------------------------------------------

struct ServerUrl {
  bool https = false;
  std::string origin;       // "https://10.0.0.1:6443": base URI and name in messages
  std::string host;         // without brackets: "10.0.0.1", "::1", "api.example.com"
  std::string path_prefix;  // "" or "/k8s/clusters/c1" (no trailing '/')
};

Result<ServerUrl> ParseServerUrl(const std::string& server) {
  ServerUrl url;
  std::string_view rest = server;
  if (rest.rfind("https://", 0) == 0) {
    url.https = true;
    rest.remove_prefix(8);
  } else if (rest.rfind("http://", 0) == 0) {
    rest.remove_prefix(7);
  } else {
    return InvalidArgument("server: the URL must start with https:// or http://");
  }
  std::size_t end = rest.find_first_of("/?#");
  std::string_view authority = rest.substr(0, end);
  std::string_view path = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  if (authority.empty()) return InvalidArgument("server: the URL has no host");
  if (authority.find('@') != std::string_view::npos) {
    return InvalidArgument("server: user information in the URL is not supported");
  }
  if (!path.empty() && path.front() != '/') {
    return InvalidArgument("server: a query or fragment in the URL is not supported");
  }
  if (path.find_first_of("?#") != std::string_view::npos) {
    return InvalidArgument("server: a query or fragment in the URL is not supported");
  }
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return InvalidArgument("server: unterminated '[' in the host");
    url.host = std::string(authority.substr(1, close - 1));
  } else {
    url.host = std::string(authority.substr(0, authority.find(':')));
  }
  if (url.host.empty()) return InvalidArgument("server: the URL has no host");
  url.origin = std::string(url.https ? "https://" : "http://") + std::string(authority);
  while (!path.empty() && path.back() == '/') path.remove_suffix(1);
  url.path_prefix = std::string(path);
  return url;
}

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

// The most recent TLS failure seen by a transport's handshakes, so that an
// error message can say *why* ("hostname mismatch") where cpprestsdk only
// says "Error in SSL handshake". With concurrent failing handshakes on one
// transport a message may name another connection's reason; the code
// (kUnavailable) is right either way.
class TlsFailureLog {
 public:
  void Record(std::string detail) {
    std::lock_guard<std::mutex> lock(mu_);
    detail_ = std::move(detail);
    when_ = Clock::now();
  }
  // The detail recorded at or after `since`, or "".
  std::string TakeSince(Clock::time_point since) {
    std::lock_guard<std::mutex> lock(mu_);
    if (detail_.empty() || when_ < since) return {};
    return std::exchange(detail_, std::string());
  }

 private:
  std::mutex mu_;
  std::string detail_;  // Guarded by mu_
  Clock::time_point when_;  // Guarded by mu_
};

// What the handshake hooks need; attached to each SSL_CTX (ex_data) and
// freed with it, so a connection may outlive the transport.
struct TlsPeer {
  bool verify = true;
  std::string sni;  // empty: send none
  std::shared_ptr<TlsFailureLog> log;
};

void FreeTlsPeer(void* /*parent*/, void* ptr, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
                 void* /*argp*/) {
  delete static_cast<TlsPeer*>(ptr);
}

int TlsPeerIndex() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, &FreeTlsPeer);
  return index;
}

const TlsPeer* PeerOf(const SSL* ssl) {
  return static_cast<const TlsPeer*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), TlsPeerIndex()));
}

int OnVerify(int preverified, X509_STORE_CTX* store) {
  if (preverified) return 1;
  auto* ssl = static_cast<SSL*>(X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx()));
  const TlsPeer* peer = ssl != nullptr ? PeerOf(ssl) : nullptr;
  if (peer != nullptr && peer->log) {
    int err = X509_STORE_CTX_get_error(store);
    peer->log->Record("TLS verification failed: " + std::string(X509_verify_cert_error_string(err)) +
                      " (certificate at depth " + std::to_string(X509_STORE_CTX_get_error_depth(store)) +
                      ")");
  }
  return 0;
}

void OnTlsInfo(const SSL* const_ssl, int where, int value) {
  const TlsPeer* peer = PeerOf(const_ssl);
  if (peer == nullptr) return;
  SSL* ssl = const_cast<SSL*>(const_ssl);
  if ((where & SSL_CB_HANDSHAKE_START) != 0) {
    // cpprestsdk set its SNI (the URL host, even an IP) and verify callback
    // just before starting the handshake; replace both.
    // (SSL_set_tlsext_host_name is a macro over SSL_ctrl, which takes a
    // non-const pointer; OpenSSL copies the name.)
    SSL_ctrl(ssl, SSL_CTRL_SET_TLSEXT_HOSTNAME, TLSEXT_NAMETYPE_host_name,
             peer->sni.empty() ? nullptr : const_cast<char*>(peer->sni.c_str()));
    if (peer->verify) SSL_set_verify(ssl, SSL_VERIFY_PEER, &OnVerify);
  } else if ((where & SSL_CB_ALERT) != 0 && (where & SSL_CB_READ) != 0 && (value >> 8) == SSL3_AL_FATAL &&
             peer->log) {
    // OpenSSL 3.0 has no text for TLS 1.3's certificate_required (116),
    // which is what a server that wants a client certificate sends.
    const int alert = value & 0xff;
    std::string text = alert == 116 ? "certificate required" : SSL_alert_desc_string_long(value);
    peer->log->Record("the server sent TLS alert \"" + text + "\" (" + std::to_string(alert) + ")");
  }
}

struct TlsSettings {
  bool verify = true;
  std::string verify_name;  // tls_server_name or the URL host
  std::string sni;
  std::string ca_pem;
  std::string cert_pem;
  std::string key_pem;
  std::shared_ptr<TlsFailureLog> log;
};

// Configures a new connection's context. Errors name the RestConfig field.
Status ConfigureTls(boost::asio::ssl::context& ctx, const TlsSettings& s) {
  SSL_CTX* native = ctx.native_handle();
  boost::system::error_code ec;
  ERR_clear_error();
  if (SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION) != 1) {
    return InternalError("TLS: cannot require TLS 1.2");
  }
  // Never prompt on a terminal for a key passphrase: an encrypted key fails.
  ctx.set_password_callback(
      [](std::size_t, boost::asio::ssl::context::password_purpose) { return std::string(); }, ec);
  ec.clear();
  if (s.verify) {
    if (!s.ca_pem.empty()) {
      // Only the configured CA, as client-go does with certificate-authority.
      X509_STORE* store = X509_STORE_new();
      if (store == nullptr) return InternalError("TLS: out of memory");
      SSL_CTX_set_cert_store(native, store);
      ctx.add_certificate_authority(boost::asio::buffer(s.ca_pem), ec);
      if (ec) return InvalidArgument("ca_pem: not usable as a PEM CA certificate bundle (" + ec.message() + ")");
    } else {
      ctx.set_default_verify_paths(ec);
      if (ec) return InternalError("TLS: cannot load the system trust store (" + ec.message() + ")");
    }
    X509_VERIFY_PARAM* param = SSL_CTX_get0_param(native);
    X509_VERIFY_PARAM_set_hostflags(param,
                                    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS | X509_CHECK_FLAG_NEVER_CHECK_SUBJECT);
    int ok = IsIpLiteral(s.verify_name)
                 ? X509_VERIFY_PARAM_set1_ip_asc(param, s.verify_name.c_str())
                 : X509_VERIFY_PARAM_set1_host(param, s.verify_name.c_str(), s.verify_name.size());
    if (ok != 1) return InvalidArgument("tls_server_name: not a usable host name");
    SSL_CTX_set_verify(native, SSL_VERIFY_PEER, &OnVerify);
  } else {
    SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
  }
  if (!s.cert_pem.empty() || !s.key_pem.empty()) {
    ctx.use_certificate_chain(boost::asio::buffer(s.cert_pem), ec);
    if (ec) return InvalidArgument("client_certificate_pem: not a usable PEM certificate (" + ec.message() + ")");
    ctx.use_private_key(boost::asio::buffer(s.key_pem), boost::asio::ssl::context::pem, ec);
    if (ec) {
      return InvalidArgument("client_key_pem: not a usable PEM private key for client_certificate_pem (" +
                             ec.message() + ")");
    }
  }
  auto* peer = new TlsPeer{s.verify, s.sni, s.log};
  if (SSL_CTX_set_ex_data(native, TlsPeerIndex(), peer) != 1) {
    delete peer;
    return InternalError("TLS: cannot attach connection settings");
  }
  SSL_CTX_set_info_callback(native, &OnTlsInfo);
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// cpprestsdk's own words for a failure: "Failed to read HTTP status line",
// with the errno when it is meaningful.
std::string FailureText(std::exception_ptr error, std::string* what_out = nullptr) {
  std::string what;
  std::string code;
  try {
    std::rethrow_exception(error);
  } catch (const web::http::http_exception& e) {
    what = e.what();
    // cpprestsdk keeps an Asio error's number but not its category, so only
    // numbers that are unambiguously socket errnos are worth naming.
    switch (e.error_code().value()) {
      case ECONNRESET:
      case ECONNABORTED:
      case EPIPE:
      case ETIMEDOUT:
      case ENETUNREACH:
      case ECANCELED:
        code = std::generic_category().message(e.error_code().value());
        break;
      default:
        break;
    }
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
    what = "unknown error";
  }
  if (what_out != nullptr) *what_out = what;
  return what + (code.empty() ? "" : ": " + code);
}

// A cpprestsdk failure as a kUnavailable message naming the cause.
std::string DescribeFailure(std::exception_ptr error, bool https, const std::string& tls_detail) {
  std::string what;
  std::string detail = FailureText(error, &what);
  // cpprestsdk's words for a body that ended early (a Content-Length not
  // reached, a chunk cut off) or a chunk header that is not one.
  if (what.find("Failed to read response body") != std::string::npos ||
      what.find("chunked response part") != std::string::npos ||
      what.find("message chunk header") != std::string::npos) {
    return "the connection broke inside the response body (" + detail + ")";
  }
  if (what.find("Invalid chunked response header") != std::string::npos) {
    return "the response body is not valid chunked encoding (" + detail + ")";
  }
  if (what.find("Failed to connect") != std::string::npos) {
    // cpprestsdk reports ECONNREFUSED as EHOSTUNREACH; say both.
    return "connection refused or host unreachable (" + what + ")";
  }
  if (what.find("resolv") != std::string::npos) return "cannot resolve the host (" + detail + ")";
  if (!tls_detail.empty()) return tls_detail + " (" + detail + ")";
  if (https && what.find("SSL") != std::string::npos) return "TLS handshake failed (" + detail + ")";
  return "connection failed (" + detail + ")";
}

// Thrown on cpprestsdk's network thread (from the progress handler, or the
// continuation that sees the headers) when a response body passes
// HttpRequest::max_response_bytes. cpprestsdk catches it, closes the
// connection and fails the request with it; Send turns it into
// kResourceExhausted.
class BodyTooLarge : public std::exception {
 public:
  const char* what() const noexcept override { return "response body too large"; }
};

bool IsBodyTooLarge(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const BodyTooLarge&) {
    return true;
  } catch (...) {
    return false;
  }
}

// ---------------------------------------------------------------------------
// Waiting on pplx tasks with a deadline
// ---------------------------------------------------------------------------

// Observes a task's outcome (so pplx never sees an unobserved exception, even
// when we stop waiting) and lets one thread wait for it with a deadline.
template <class T>
class Outcome {
 public:
  explicit Outcome(pplx::task<T> task) : state_(std::make_shared<State>()) {
    task.then([state = state_](pplx::task<T> t) {
      std::optional<T> value;
      std::exception_ptr error;
      try {
        value.emplace(t.get());
      } catch (...) {
        error = std::current_exception();
      }
      std::lock_guard<std::mutex> lock(state->mu);
      state->value = std::move(value);
      state->error = error;
      state->done = true;
      state->cv.notify_all();
    });
  }
  // True once the task finished; false at the deadline.
  bool WaitUntil(Clock::time_point deadline) {
    std::unique_lock<std::mutex> lock(state_->mu);
    return state_->cv.wait_until(lock, deadline, [&] { return state_->done; });
  }
  // REQUIRES: WaitUntil returned true.
  std::exception_ptr error() const { return state_->error; }
  T& value() { return *state_->value; }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;               // Guarded by mu
    std::optional<T> value;          // Guarded by mu until done
    std::exception_ptr error;        // Guarded by mu until done
  };
  std::shared_ptr<State> state_;
};

Headers ToHeaders(const web::http::http_headers& in) {
  Headers out;
  out.reserve(in.size());
  for (const auto& [name, value] : in) out.emplace_back(name, value);
  return out;
}

// ---------------------------------------------------------------------------
// Streamed bodies
// ---------------------------------------------------------------------------

struct StreamState {
  std::mutex mu;
  std::condition_variable cv;
  // Guarded by mu: received bytes; those before `offset` have been read.
  // Reads advance the offset and appends compact the string only once half
  // of it is read, so a reader behind a fast producer costs linear time, not
  // a shift of everything buffered per read.
  std::string data;
  std::size_t offset = 0;
  bool ended = false;        // Guarded by mu: the response is complete (or failed)
  std::exception_ptr error;  // Guarded by mu: why it failed, when it did
  bool cancelled = false;    // Guarded by mu
};

// A write-only cpprestsdk stream buffer that appends to StreamState::data.
// cpprestsdk writes each received HTTP chunk with putn_nocopy on its network
// thread; the read side is never used.
class BodySink final : public concurrency::streams::details::streambuf_state_manager<uint8_t> {
  using Base = concurrency::streams::details::streambuf_state_manager<uint8_t>;

 public:
  explicit BodySink(std::shared_ptr<StreamState> state) : Base(std::ios_base::out), state_(std::move(state)) {}

  bool can_seek() const override { return false; }
  bool has_size() const override { return false; }
  size_t buffer_size(std::ios_base::openmode) const override { return 0; }
  void set_buffer_size(size_t, std::ios_base::openmode) override {}
  size_t in_avail() const override { return 0; }
  pos_type getpos(std::ios_base::openmode) const override { return static_cast<pos_type>(traits::eof()); }
  pos_type seekpos(pos_type, std::ios_base::openmode) override { return static_cast<pos_type>(traits::eof()); }
  pos_type seekoff(off_type, std::ios_base::seekdir, std::ios_base::openmode) override {
    return static_cast<pos_type>(traits::eof());
  }
  bool acquire(uint8_t*& ptr, size_t& count) override {
    ptr = nullptr;
    count = 0;
    return false;
  }
  void release(uint8_t*, size_t) override {}

 protected:
  using Base::_putn;
  pplx::task<int_type> _putc(uint8_t ch) override {
    Append(&ch, 1);
    return pplx::task_from_result<int_type>(ch);
  }
  pplx::task<size_t> _putn(const uint8_t* ptr, size_t count) override {
    Append(ptr, count);
    return pplx::task_from_result<size_t>(count);
  }
  pplx::task<int_type> _bumpc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  int_type _sbumpc() override { return traits::eof(); }
  pplx::task<int_type> _getc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  int_type _sgetc() override { return traits::eof(); }
  pplx::task<int_type> _nextc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  pplx::task<int_type> _ungetc() override { return pplx::task_from_result<int_type>(traits::eof()); }
  pplx::task<size_t> _getn(uint8_t*, size_t) override { return pplx::task_from_result<size_t>(0); }
  size_t _scopy(uint8_t*, size_t) override { return 0; }
  pplx::task<bool> _sync() override { return pplx::task_from_result(true); }
  uint8_t* _alloc(size_t) override { return nullptr; }
  void _commit(size_t) override {}

 private:
  void Append(const uint8_t* ptr, size_t count) {
    std::lock_guard<std::mutex> lock(state_->mu);
    if (state_->offset > 0 && state_->offset >= state_->data.size() / 2) {
      state_->data.erase(0, state_->offset);
      state_->offset = 0;
    }
    state_->data.append(reinterpret_cast<const char*>(ptr), count);
    state_->cv.notify_all();
  }

  const std::shared_ptr<StreamState> state_;
};

class CpprestBodyStream final : public BodyStream {
 public:
  CpprestBodyStream(std::shared_ptr<StreamState> state, pplx::cancellation_token_source cts,
                    std::chrono::milliseconds timeout, std::string what)
      : state_(std::move(state)), cts_(std::move(cts)), timeout_(timeout), what_(std::move(what)) {}

  ~CpprestBodyStream() override {
    // Close a connection still receiving. After a clean end leave it alone:
    // it may be on its way back to the keep-alive pool.
    bool clean_end;
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      clean_end = state_->ended && !state_->error;
    }
    if (clean_end) return;
    cts_.cancel();
    // Wait (bounded) for cpprestsdk to finish the response: its completion
    // then no longer holds tasks of this stream, which a process that exits
    // right after its streams close would otherwise leave behind.
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait_for(lock, std::chrono::milliseconds(500), [&] { return state_->ended; });
  }

  Result<std::string> Read() override {
    if (failure_) return *failure_;
    const Clock::time_point deadline = Clock::now() + timeout_;
    std::unique_lock<std::mutex> lock(state_->mu);
    state_->cv.wait_until(lock, deadline,
                          [&] { return state_->cancelled || state_->data.size() > state_->offset || state_->ended; });
    if (state_->cancelled) return Cancelled("reading " + what_ + ": cancelled");
    if (state_->data.size() > state_->offset) {
      const std::size_t available = state_->data.size() - state_->offset;
      if (state_->offset == 0 && available <= kMaxReadBytes) return std::exchange(state_->data, std::string());
      const std::size_t n = std::min(available, kMaxReadBytes);
      std::string out = state_->data.substr(state_->offset, n);
      state_->offset += n;
      if (state_->offset == state_->data.size()) {
        state_->data.clear();
        state_->offset = 0;
      }
      return out;
    }
    if (state_->ended) {
      if (!state_->error) return std::string();
      std::exception_ptr error = state_->error;
      lock.unlock();
      failure_ = Unavailable("reading " + what_ + ": the connection broke (" + FailureText(error) + ")");
      return *failure_;
    }
    lock.unlock();
    failure_ = Unavailable("reading " + what_ + ": no data for " + std::to_string(Millis(timeout_)) +
                           " ms (inactivity timeout); connection closed");
    cts_.cancel();
    return *failure_;
  }

  void Cancel() override {
    {
      std::lock_guard<std::mutex> lock(state_->mu);
      state_->cancelled = true;
      state_->cv.notify_all();
    }
    cts_.cancel();
  }

 private:
  // Constant after construction
  const std::shared_ptr<StreamState> state_;
  pplx::cancellation_token_source cts_;  // cancel() is thread-safe
  const std::chrono::milliseconds timeout_;
  const std::string what_;  // "GET /api/v1/pods on https://host:6443"
  // Touched by the reading thread only
  std::optional<Status> failure_;
};

// ---------------------------------------------------------------------------
// The transport
// ---------------------------------------------------------------------------

using HttpClientPtr = std::shared_ptr<web::http::client::http_client>;

// An HTTP client (one pool of keep-alive connections) for `url`; for https,
// every connection's TLS context is configured from `tls`, which must have
// passed ConfigureTls once already.
HttpClientPtr NewClient(const ServerUrl& url, const std::optional<TlsSettings>& tls) {
  web::http::client::http_client_config client_config;
  // Every deadline is ours (see the top of this file); cpprestsdk's
  // inactivity timer only has to stay out of the way.
  client_config.set_timeout(std::chrono::hours(24));
  client_config.set_max_redirects(0);
  client_config.set_request_compressed_response(false);
  if (tls) {
    client_config.set_validate_certificates(tls->verify);
    client_config.set_ssl_context_callback([tls = *tls](boost::asio::ssl::context& ctx) {
      Status s = ConfigureTls(ctx, tls);
      // It succeeded on the probe; should it fail now, no connection
      // may be made with a half-configured context.
      if (!s.ok()) throw std::runtime_error(s.message());
    });
  }
  return std::make_shared<web::http::client::http_client>(web::uri(url.origin), client_config);
}

// ConfigureTls on a throwaway context: a bad PEM is an error here, not on
// every connection.
Status ProbeTls(const TlsSettings& tls) {
  boost::asio::ssl::context probe(boost::asio::ssl::context::tls_client);
  return ConfigureTls(probe, tls);
}

class CpprestTransport final : public Transport {
 public:
  // `tls` is set for https. `client` was made from `tls` with the
  // RestConfig's own client certificate.
  CpprestTransport(ServerUrl url, std::optional<TlsSettings> tls, HttpClientPtr client,
                   std::function<Result<ClientCertificate>()> client_certificate, std::string basic_auth)
      : url_(std::move(url)),
        tls_(std::move(tls)),
        tls_log_(tls_ ? tls_->log : std::make_shared<TlsFailureLog>()),
        client_certificate_(std::move(client_certificate)),
        basic_auth_(std::move(basic_auth)),
        client_(std::move(client)) {
    if (tls_) {
      cert_pem_ = tls_->cert_pem;
      key_pem_ = tls_->key_pem;
    }
  }

  Result<HttpResponse> Send(const HttpRequest& request) override {
    const std::string what = Describe(request);
    const Clock::time_point start = Clock::now();
    try {
      auto built = Build(request);
      if (!built.ok()) return built.status();
      auto client = Client(what);
      if (!client.ok()) return client.status();
      const std::size_t limit = request.max_response_bytes;
      if (limit > 0) {
        // Called after each network read of the body (at most 64 KiB for a
        // Content-Length body, one HTTP chunk for a chunked one).
        built->set_progress_handler([limit](web::http::message_direction::direction direction, utility::size64_t so_far) {
          if (direction == web::http::message_direction::download && so_far > limit) throw BodyTooLarge();
        });
      }
      pplx::cancellation_token_source cts;
      pplx::task<HttpResponse> task =
          (*client)->request(std::move(*built), cts.get_token()).then([limit](web::http::http_response response) {
            // A body announced too long is refused before it is read.
            if (limit > 0 && response.headers().has(web::http::header_names::content_length) &&
                response.headers().content_length() > limit) {
              throw BodyTooLarge();
            }
            return response.extract_vector().then([response](std::vector<unsigned char> body) {
              HttpResponse out;
              out.status = response.status_code();
              out.headers = ToHeaders(response.headers());
              out.body.assign(body.begin(), body.end());
              return out;
            });
          });
      Outcome<HttpResponse> outcome(std::move(task));
      if (!outcome.WaitUntil(start + request.timeout)) {
        cts.cancel();
        return Unavailable(what + ": timed out after " + std::to_string(Millis(request.timeout)) + " ms");
      }
      if (outcome.error()) {
        if (IsBodyTooLarge(outcome.error())) {
          cts.cancel();  // the rest of the body is never read
          return ResourceExhausted(what + ": the response body is larger than " +
                                   std::to_string(request.max_response_bytes) +
                                   " bytes, the most this request takes; stopped reading it");
        }
        return Failure(what, outcome.error(), start);
      }
      return std::move(outcome.value());
    } catch (...) {
      return Failure(what, std::current_exception(), start);
    }
  }

  Result<HttpStream> Open(const HttpRequest& request) override {
    const std::string what = Describe(request);
    const Clock::time_point start = Clock::now();
    try {
      auto built = Build(request);
      if (!built.ok()) return built.status();
      auto client = Client(what);
      if (!client.ok()) return client.status();
      auto state = std::make_shared<StreamState>();
      auto sink = std::make_shared<BodySink>(state);
      built->set_response_stream(concurrency::streams::streambuf<uint8_t>(sink).create_ostream());
      pplx::cancellation_token_source cts;
      Outcome<web::http::http_response> outcome((*client)->request(std::move(*built), cts.get_token()));
      if (!outcome.WaitUntil(start + request.timeout)) {
        cts.cancel();
        return Unavailable(what + ": no response headers within " + std::to_string(Millis(request.timeout)) +
                           " ms");
      }
      if (outcome.error()) return Failure(what, outcome.error(), start);
      web::http::http_response& response = outcome.value();
      response.content_ready().then([state](pplx::task<web::http::http_response> t) {
        std::exception_ptr error;
        try {
          t.get();
        } catch (...) {
          error = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(state->mu);
        state->ended = true;
        state->error = error;
        state->cv.notify_all();
      });
      HttpStream out;
      out.status = response.status_code();
      out.headers = ToHeaders(response.headers());
      out.body = std::make_unique<CpprestBodyStream>(state, cts, request.timeout, what);
      return out;
    } catch (...) {
      return Failure(what, std::current_exception(), start);
    }
  }

 private:
  // The client to send with: the current one, or, when the certificate
  // provider hands out a certificate other than the one in use, a new one
  // (new connections) made with it. Requests in flight keep their client
  // alive through the returned pointer.
  Result<HttpClientPtr> Client(const std::string& what) {
    if (!tls_ || !client_certificate_) {
      std::lock_guard<std::mutex> lock(mu_);
      return client_;
    }
    auto cert = client_certificate_();
    if (!cert.ok()) {
      return Status(cert.status().code(), what + ": client certificate: " + cert.status().message());
    }
    if (cert->cert_pem.empty() && cert->key_pem.empty()) {  // none given: the RestConfig's own
      cert->cert_pem = tls_->cert_pem;
      cert->key_pem = tls_->key_pem;
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (cert->cert_pem == cert_pem_ && cert->key_pem == key_pem_) return client_;
    TlsSettings tls = *tls_;
    tls.cert_pem = cert->cert_pem;
    tls.key_pem = cert->key_pem;
    if (tls.cert_pem.empty() != tls.key_pem.empty()) {
      return Unavailable(what + ": client certificate: " +
                         (tls.key_pem.empty() ? "a certificate without its key" : "a key without its certificate"));
    }
    if (Status s = ProbeTls(tls); !s.ok()) return Unavailable(what + ": client certificate: " + s.message());
    client_ = NewClient(url_, tls);
    cert_pem_ = std::move(tls.cert_pem);
    key_pem_ = std::move(tls.key_pem);
    return client_;
  }

  // "GET /api/v1/pods on https://10.0.0.1:6443" (no query: it may be long).
  std::string Describe(const HttpRequest& request) const {
    std::string path = request.path_and_query.substr(0, request.path_and_query.find('?'));
    return request.method + " " + url_.path_prefix + path + " on " + url_.origin;
  }

  Status Failure(const std::string& what, std::exception_ptr error, Clock::time_point start) const {
    return Unavailable(what + ": " + DescribeFailure(error, url_.https, tls_log_->TakeSince(start)));
  }

  Result<web::http::http_request> Build(const HttpRequest& request) const {
    if (request.path_and_query.empty() || request.path_and_query.front() != '/') {
      return InvalidArgument("request path must start with '/'");
    }
    if (request.method.empty() || HasCrOrLf(request.method) ||
        request.method.find(' ') != std::string::npos) {
      return InvalidArgument("request method is not a valid HTTP method");
    }
    if (request.timeout.count() <= 0) return InvalidArgument("request timeout must be positive");
    web::http::http_request out{web::http::method(request.method)};
    try {
      out.set_request_uri(web::uri(url_.path_prefix + request.path_and_query));
    } catch (const std::exception&) {
      return InvalidArgument("request path is not a valid escaped URI path and query");
    }
    bool has_authorization = false;
    for (const auto& [name, value] : request.headers) {
      // Values are never quoted: they may be credentials.
      if (name.empty() || HasCrOrLf(name) || name.find(':') != std::string::npos) {
        return InvalidArgument("request header name is not valid");
      }
      if (HasCrOrLf(value)) return InvalidArgument("request header " + name + " has a line break in its value");
      if (IsAuthorization(name)) has_authorization = true;
      out.headers().add(name, value);
    }
    if (!has_authorization && !basic_auth_.empty()) out.headers().add("Authorization", basic_auth_);
    if (!request.body.empty()) {
      // After the headers: set_body adds Content-Type only when absent.
      out.set_body(std::vector<unsigned char>(request.body.begin(), request.body.end()));
    }
    return out;
  }

  // Constant after construction
  const ServerUrl url_;
  const std::optional<TlsSettings> tls_;  // https only; the RestConfig's certificate
  const std::shared_ptr<TlsFailureLog> tls_log_;
  const std::function<Result<ClientCertificate>()> client_certificate_;
  const std::string basic_auth_;  // "Basic ..." or empty; SECRET

  std::mutex mu_;
  HttpClientPtr client_;  // Guarded by mu_ (the client itself is thread-safe)
  std::string cert_pem_;  // Guarded by mu_: what client_'s connections present
  std::string key_pem_;   // Guarded by mu_; SECRET
};

}  // namespace

Result<std::unique_ptr<Transport>> NewHttpTransport(const RestConfig& config, TransportOptions options) {
  auto url = ParseServerUrl(config.server);
  if (!url.ok()) return url.status();
  if (config.client_certificate_pem.empty() != config.client_key_pem.empty()) {
    return InvalidArgument(config.client_key_pem.empty() ? "client_key_pem: missing for client_certificate_pem"
                                                         : "client_certificate_pem: missing for client_key_pem");
  }
  try {
    std::optional<TlsSettings> tls_settings;
    std::string basic_auth;
    if (url->https) {
      TlsSettings tls;
      tls.verify = !config.insecure_skip_tls_verify;
      tls.verify_name = config.tls_server_name.empty() ? url->host : config.tls_server_name;
      tls.sni = IsIpLiteral(tls.verify_name) ? std::string() : tls.verify_name;
      tls.ca_pem = config.ca_pem;
      tls.cert_pem = config.client_certificate_pem;
      tls.key_pem = config.client_key_pem;
      tls.log = std::make_shared<TlsFailureLog>();
      // Parse everything once now, so that a bad PEM is an error here and
      // not on every connection.
      if (Status s = ProbeTls(tls); !s.ok()) return s;
      tls_settings = std::move(tls);
      if (config.insecure_skip_tls_verify) {
        std::string warning = "TLS verification is disabled for " + url->origin +
                              " (insecure-skip-tls-verify): the server's identity is not checked";
        if (options.warn) {
          options.warn(warning);
        } else {
          std::fprintf(stderr, "kubefold: warning: %s\n", warning.c_str());
        }
      }
      if (!config.username.empty() && config.bearer_token.empty() && config.bearer_token_file.empty() &&
          !config.exec.has_value()) {
        basic_auth = "Basic " + internal::Base64Encode(config.username + ":" + config.password);
      }
    }
    HttpClientPtr client = NewClient(*url, tls_settings);
    return std::unique_ptr<Transport>(std::make_unique<CpprestTransport>(
        *std::move(url), std::move(tls_settings), std::move(client), std::move(options.client_certificate),
        std::move(basic_auth)));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("server: cannot create an HTTP client for it (") + e.what() + ")");
  } catch (...) {
    return InvalidArgument("server: cannot create an HTTP client for it");
  }
}

}  // namespace kubefold::kube
