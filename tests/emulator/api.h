// One emulated cluster's API: authentication, RBAC authorization (auth.h),
// discovery, TokenReview and (Self)SubjectAccessReview, the services proxy
// (proxy.h), and the REST
// semantics of list, watch, get, create, update, patch and delete over an
// ObjectStore, written to ../shared/k8s-wire-spec.md. Reads negotiate the
// response from Accept as a real server does: plain JSON, or a meta.k8s.io
// Table for `as=Table` (server-side printing, table.h). Also the fault
// switches the tests flip (spec §8 and tests/emulator/README.md).
//
// The HTTP server (server.h) parses requests and hands each one to
// Cluster::Handle with a ResponseWriter; Handle writes the whole response,
// streaming for watches, and returns when it is done.
//
// Thread-safety: every member function may be called from any thread;
// Handle runs concurrently on one thread per connection.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tests/emulator/auth.h"
#include "tests/emulator/resources.h"
#include "tests/emulator/store.h"

namespace kubefold::emulator {

using Headers = std::vector<std::pair<std::string, std::string>>;

struct Request {
  std::string method;                                      // "GET"
  std::string path;                                        // percent-decoded, without the query
  std::string raw_query;                                   // as sent, without the '?'
  std::vector<std::pair<std::string, std::string>> query;  // decoded, in order
  Headers headers;
  std::string body;
  std::string client_cert_user;  // CN of a verified client certificate, "" if none
  std::vector<std::string> client_cert_groups;  // its O= entries
  std::string remote_ip;         // the client's address, "" if unknown

  // Case-insensitive header lookup; "" if absent.
  std::string Header(std::string_view name) const;
  // The first value of a query parameter, if present.
  const std::string* Query(std::string_view name) const;
};

// Implemented by the HTTP server for one response on one connection.
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // A complete response with Content-Length. False if the peer is gone.
  virtual bool Send(int status, const Headers& headers, std::string_view body) = 0;
  // Status line and headers (Transfer-Encoding: chunked), flushed at once.
  virtual bool StartChunked(int status, const Headers& headers) = 0;
  // Body bytes as one or more chunks (more when chunk splitting is on).
  virtual bool WriteChunk(std::string_view data) = 0;
  // The terminating zero-length chunk: a clean end of the body.
  virtual bool EndChunked() = 0;
  // Closes the connection at once with a TCP reset, mid-response if need be.
  virtual void Reset() = 0;
  // True once the peer has closed or reset the connection (non-blocking).
  virtual bool PeerGone() = 0;
};

// What the HTTP server calls for each request.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // Handles one request completely (the whole response, streaming if need
  // be) and returns when done. Never throws.
  virtual void Handle(const Request& request, ResponseWriter& writer) = 0;
  // True when streamed bodies should be cut into chunks at random positions.
  virtual bool SplitChunks() const { return false; }
};

struct ClusterOptions {
  std::string name = "cluster";
  std::size_t max_events = 100000;  // watch history before automatic compaction
  // A watch without timeoutSeconds ends after a random time in [t, 2t).
  std::chrono::seconds min_request_timeout{1800};
  std::chrono::milliseconds bookmark_interval{60000};
  // How long a "not older than" read of a future RV waits before its 504.
  std::chrono::milliseconds too_large_rv_wait{3000};
  bool watch_list = true;  // serve sendInitialEvents (false: the exact 422 of spec §7(d))
  std::string expired_reason = "Expired";  // "Gone" emulates servers before 1.18
  // Non-empty: every authorization decision for a user outside
  // system:masters is appended here as one JSON line (user, verb, group,
  // resource, subresource, namespace, name or path, allowed), as an API
  // server's audit log would record them.
  std::string authorization_log;
};

// The per-cluster faults (README "Faults"). Each applies to requests that
// start after it is set, except DropWatches and stall, which reach running
// watches.
struct FailSpec {
  int count = 0;           // the next `count` requests fail
  int code = 429;          // 429 or 5xx
  int retry_after_s = 1;   // Retry-After header (seconds); < 0: none
  bool json = false;       // 429 as a JSON Status instead of plain text
};

class Cluster final : public RequestHandler {
 public:
  explicit Cluster(ClusterOptions options);
  ~Cluster();
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  const std::string& name() const { return options_.name; }
  ObjectStore& store() { return store_; }

  void Handle(const Request& request, ResponseWriter& writer) override;
  bool SplitChunks() const override { return split_chunks_.load(); }

  // Bearer tokens: token -> user. A request with an unknown token gets 401.
  // Authenticated users are also in system:authenticated (added when
  // authenticating, as a real server's group adder does); members of
  // system:masters may do anything, everyone else what RBAC grants.
  void SetToken(const std::string& token, UserInfo user);
  void RevokeToken(const std::string& token);
  // The user a token authenticates as, with system:authenticated added;
  // nullopt for an unknown token.
  std::optional<UserInfo> Authenticate(const std::string& token) const;

  // Faults.
  void FailNext(const FailSpec& spec);
  void SetDelay(std::chrono::milliseconds delay);
  void SetSplitChunks(bool on);
  // Ends every running watch: with the terminating chunk (clean EOF) or,
  // with `reset`, a TCP reset.
  void DropWatches(bool reset);
  // Running and new watches stop sending anything (a silently dead peer)
  // until turned off; they end when the client gives up.
  void SetStallWatches(bool on);
  void Compact() { store_.Compact(); }
  void SetWatchList(bool on);
  void SetExpiredReason(const std::string& reason);
  // Every continue token presented gets 410 Expired, as tokens older than
  // about five minutes do on a real server.
  void SetExpireContinueTokens(bool on) { expire_continue_ = on; }
  // Stops all watches for shutdown: they end at once, without a final chunk.
  void Shutdown();

  // Counters for tests: requests served, LIST requests, watches open now.
  std::uint64_t requests() const { return requests_.load(); }
  std::uint64_t lists() const { return lists_.load(); }
  int open_watches() const { return open_watches_.load(); }

 private:
  struct Context;
  void Route(Context& ctx);
  void ServeWatch(Context& ctx);
  void ServeList(Context& ctx);
  void ServeGet(Context& ctx);
  void ServeCreate(Context& ctx);
  void ServeUpdate(Context& ctx);
  void ServePatch(Context& ctx);
  void ServeDelete(Context& ctx);
  void ServeDeleteCollection(Context& ctx);
  // POST of a create-only review (TokenReview, SelfSubjectReview,
  // SubjectAccessReview, SelfSubjectAccessReview): the object back with
  // its status, nothing stored.
  void ServeReview(Context& ctx);
  // services/ID/proxy/...: resolves ID ([scheme:]name[:port]) through the
  // Service, Endpoints and Pods as the service registry's ResourceLocation
  // does, then forwards (proxy.h).
  void ServeServiceProxy(Context& ctx, const std::string& id);
  enum class WriteMode { kCreate, kUpdate, kPatch, kApplyCreate, kApplyUpdate };
  // Validates `object` and stores it as the new state of ctx's target with
  // `mode`'s semantics (create: 409 if present; others: 404 if absent), then
  // writes the response. `based_on`: the RV a patch was computed from (0:
  // none); a different current RV is a 409.
  void Write(Context& ctx, Json object, WriteMode mode, int success_code, std::uint64_t based_on = 0);
  void AfterWrite(const ResourceType& type, const ObjectPtr& stored, bool deleted);
  // What the emulated controllers do after `deleted` is gone: a namespace's
  // contents and a CRD's resources go with it; the registry follows.
  void Cascade(const Registry& registry, const ResourceType& type, const ObjectPtr& deleted);
  std::shared_ptr<const Registry> registry() const;
  std::string NewUid();

  const ClusterOptions options_;
  ObjectStore store_;
  std::mutex authorization_log_mu_;
  void LogAuthorization(const Attributes& a, bool allowed);

  mutable std::mutex mu_;
  std::shared_ptr<const Registry> registry_;     // Guarded by mu_
  std::map<std::string, UserInfo> tokens_;       // Guarded by mu_
  FailSpec fail_;                                // Guarded by mu_
  std::chrono::milliseconds delay_{0};           // Guarded by mu_
  bool watch_list_;                              // Guarded by mu_
  std::string expired_reason_;                   // Guarded by mu_

  std::atomic<bool> split_chunks_{false};
  std::atomic<std::uint64_t> drop_epoch_{0};
  std::atomic<bool> drop_reset_{false};
  std::atomic<bool> stall_{false};
  std::atomic<bool> shutdown_{false};
  std::atomic<bool> expire_continue_{false};
  std::atomic<std::uint64_t> requests_{0};
  std::atomic<std::uint64_t> lists_{0};
  std::atomic<int> open_watches_{0};
};

// Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False.
std::optional<bool> ParseGoBool(std::string_view text);

}  // namespace kubefold::emulator
