// Reflector: keeps one resource of one cluster mirrored, the way client-go's
// Reflector does (k8s-wire-spec.md §3.1): list (pages of 500), then watch
// from the list's resourceVersion, resuming from the last event or bookmark
// whenever the stream ends, and relisting only when the server says the
// resume point is gone (410 Expired/Gone).
//
// Output is a stream of typed events handed to a sink on the reflector's
// thread: kReplace with every object of a (re)list — the state store applies
// it as Batch::ReplaceKind, which writes only the differences, so a relist
// after a 410 does not churn history — then kSynced, then kAdded /
// kModified / kDeleted as the watch reports them. Objects arrive pruned
// (watch_decoder.h).
//
// Failure handling:
//   * clean end of a watch: re-watch at once from the last resourceVersion,
//     no relist; a watch that ended within 1 s with no event is treated as
//     a failure (backoff), as client-go does;
//   * ERROR 410 in the stream, or 410 on opening a watch: backoff, relist;
//   * 504 TooLargeResourceVersion on opening a watch (the server has not
//     reached the resume point): backoff (at least Retry-After), relist;
//   * a continue token that expired (410 on page 2+): one full unpaginated
//     list instead. Lists are always most-recent reads (no resourceVersion),
//     which a server never answers with 410 or TooLargeResourceVersion; the
//     price is one quorum read per relist, which relists are rare enough for;
//   * 429 and 5xx: wait for Retry-After when given, else backoff; 401: the
//     credentials hook is told (a token source re-reads its token), backoff;
//   * a line that is not JSON, an unknown event, or a line over the bound:
//     the reason is logged, backoff, re-watch from the last resourceVersion;
//     the watch's connection is closed before the backoff, so nothing more
//     of it is read;
//   * a list page over max_list_bytes: read no further, asked for again in
//     pages half as large (logged), down to a page of one object;
//   * a 200 list or watch whose Content-Type is not application/json (a
//     proxy's HTML page, protobuf), a list body that is not a list (not
//     JSON, a Status, no items, items not an array, an item without a
//     name): the reason is logged, backoff, and the list or watch is tried
//     again; nothing is handed to the sink, so what an earlier list folded
//     stays as it was;
//   * transport failures (refused, reset, no byte within the inactivity
//     deadline): backoff, re-watch (or relist if nothing was listed yet).
// Backoff is 800 ms × 2 with up to 100% jitter, capped at 30 s, reset after
// 2 minutes without failure (backoff.h).
//
// Thread-safety: Run on one thread; Stop from any thread.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "controllers/kube/backoff.h"
#include "controllers/kube/transport.h"
#include "controllers/kube/watch_decoder.h"

namespace kubefold::kube {

struct ReflectorOptions {
  ResourceType type;      // group, version, kind
  std::string resource;   // plural path segment: "deployments"
  std::string namespace_name;  // "" = all namespaces
  std::string label_selector;
  std::string field_selector;
  int page_size = 500;
  // Each watch asks the server to end it after a random time in
  // [min_watch_timeout, 2 × min_watch_timeout) (client-go: 5 min).
  std::chrono::seconds min_watch_timeout{300};
  // A watch on which no byte arrives for this long is presumed dead. Servers
  // send bookmarks about once a minute when asked.
  std::chrono::milliseconds watch_inactivity{std::chrono::seconds(120)};
  std::chrono::milliseconds request_timeout{std::chrono::seconds(60)};
  // A watch line (one event) longer than this restarts the watch.
  size_t max_line_bytes = LineFramer::kDefaultMaxLineBytes;
  // A list response body longer than this is not read to its end: the
  // same page is asked for again in pages half as large, down to one
  // object, and past that the list fails (backoff, relist). Decoding a
  // page costs a few times its size, so this bounds a list's transient
  // memory; 500 typical workloads (5-20 KB each) take a few MB. The
  // default lets through any object a watch line may carry.
  size_t max_list_bytes = LineFramer::kDefaultMaxLineBytes;
  Backoff::Options backoff;
  // Streaming lists (KEP-3157, wire spec §2.5): the initial state arrives as
  // ADDED events on a watch, ended by a bookmark annotated
  // k8s.io/initial-events-end, instead of a LIST. A server that answers 422,
  // a stream that ends before that bookmark, or a bookmark that has not come
  // within initial_events_timeout makes the reflector fall back to
  // LIST + WATCH for the rest of its life (logged): it never waits forever.
  bool streaming_list = false;
  std::chrono::milliseconds initial_events_timeout{std::chrono::seconds(60)};
};

enum class ReflectorEventType { kReplace, kSynced, kAdded, kModified, kDeleted };
std::string_view ReflectorEventTypeName(ReflectorEventType t);

struct ReflectorEvent {
  ReflectorEventType type = ReflectorEventType::kAdded;
  std::string resource_version;        // the event's, or the list's for kReplace/kSynced
  DecodedObject object;                // kAdded, kModified, kDeleted
  std::vector<DecodedObject> objects;  // kReplace: everything the list returned
};

// What a reflector needs from its surroundings; every member has a default
// except the sink.
struct ReflectorHooks {
  // Receives every event, in order, on the reflector's thread.
  std::function<void(ReflectorEvent&&)> sink;
  // Adds credentials to a request (the REST layer's bearer token); an error
  // is treated as a transport failure.
  std::function<Status(HttpRequest&)> authorize;
  // Called before every list and watch request: the per-cluster client-side
  // rate limit (RestClient::Throttle). Empty: no limit.
  std::function<void()> throttle;
  // Told after a 401, so the token source drops its cached token.
  std::function<void()> on_unauthorized;
  // Warnings and the reasons for restarts.
  std::function<void(std::string_view)> log;
  ClockFn clock;  // default: steady_clock::now
  // Waits `d` or until Stop(); returns false if stopped. Default: a
  // condition variable wait on the reflector's own stop flag.
  std::function<bool(std::chrono::milliseconds d)> sleep;
  uint64_t seed = std::random_device{}();  // jitter and watch timeouts
};

struct ReflectorStats {
  uint64_t lists = 0;        // complete (re)lists
  uint64_t watches = 0;      // watch requests opened
  uint64_t events = 0;       // added/modified/deleted delivered
  uint64_t bookmarks = 0;
  uint64_t expired = 0;      // 410s that forced a relist
  uint64_t errors = 0;       // failures that led to a backoff
};

class Reflector {
 public:
  Reflector(Transport& transport, ReflectorOptions options, ReflectorHooks hooks);
  Reflector(const Reflector&) = delete;
  Reflector& operator=(const Reflector&) = delete;

  // Lists and watches until Stop(). Blocks the calling thread.
  void Run();
  // Any thread: ends Run soon (cancels an open watch, wakes a backoff).
  void Stop();
  // Any thread: ends the backoff wait in progress, or the next one, at once
  // (the cluster is known to be back). No effect on an open watch.
  void Wake();

  // The resourceVersion a watch would resume from ("" before the first list).
  std::string resume_version() const;
  ReflectorStats stats() const;

 private:
  // kListInstead: a streaming list failed; this relist is a plain list (the
  // next one tries streaming again, as client-go falls back per attempt).
  enum class Next { kWatch, kRelist, kListInstead, kStop };
  Next ListAndReplace();
  // A watch from the resume point; with `initial`, a streaming list first.
  Next Watch(bool initial);
  void EmitReplace(std::vector<DecodedObject> objects, const std::string& resource_version);
  // Logs `what`, counts an error and waits for the backoff (at least
  // `at_least`); false when stopped meanwhile.
  bool WaitAfterFailure(std::string_view what, std::chrono::milliseconds at_least = std::chrono::milliseconds(0));
  Result<HttpResponse> SendList(const std::string& resource_version, const std::string& continue_token, int limit);
  std::string CollectionPath() const;
  std::string Query(std::vector<std::pair<std::string, std::string>> params) const;
  void Log(std::string_view message) const;
  bool Sleep(std::chrono::milliseconds d);
  std::chrono::milliseconds RetryAfter(const Headers& headers) const;

  Transport& transport_;
  const ReflectorOptions options_;
  ReflectorHooks hooks_;
  Backoff backoff_;
  std::mt19937_64 rng_;

  bool streaming_unsupported_ = false;  // Run's thread only
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  // Guarded by mu_.
  std::string resume_version_;
  bool wake_ = false;  // Wake() was called; consumed by the next Sleep
  ReflectorStats stats_;
  BodyStream* open_stream_ = nullptr;  // the watch being read, for Stop
};

}  // namespace kubefold::kube
