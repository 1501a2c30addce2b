// QueryApi: kubefold's HTTP query API over the versioned store (DESIGN.md
// §6). Read-only; JSON.
//
//   GET /api/v1/clusters                      member clusters: health, vector
//                                             component, counts, watch state
//   GET /api/v1/snapshots                     retained snapshots, oldest first,
//                                             paginated (limit, continue)
//   GET /api/v1/snapshots/{seq|latest}        one snapshot's workloads
//   GET /api/v1/snapshots/at?vector=|time=    an as-of view
//       filters: cluster, namespace, kind; full=true for whole objects;
//       limit/continue pages through a fixed snapshot
//   GET /api/v1/diff?from=&to=                added/removed/modified workloads,
//       filters cluster, namespace; modified ones carry an RFC 6902 patch
//   GET /api/v1/audits/{ns}/{name}/diff       the diff between an audit's
//                                             pinned snapshots
//   GET /api/v1/whatif?cluster=NAME           what failover would do if that
//                                             cluster failed now
//   GET /version                              build information
//
// A snapshot reference (`from`, `to`) is a seq, `latest`, or an RFC 3339
// time (the newest retained snapshot at or before it).
//
// Errors are JSON {"kind":"Error","code","reason","message","parameter"}:
// 400 for bad input (an unknown, repeated or malformed parameter — named),
// 404 for a snapshot not published yet or an unknown cluster or audit, 410
// for a snapshot retention has dropped, 401/403 from the authorizer, 503
// before the caches have synced.
//
// Large answers (snapshots, diffs) are streamed as they are produced, from
// a snapshot held for the request: memory per request is bounded by the
// response buffer, not by the size of the answer.
//
// Thread-safety: Handle may be called from many threads at once.
#pragma once

#include <functional>
#include <string>

#include "controllers/failover.h"
#include "controllers/registry.h"
#include "operator/http_server.h"
#include "state/journal.h"
#include "state/store.h"

namespace kubefold {

struct BuildInfo {
  std::string version;
  std::string git_commit;
  std::string compiler;
};

// Decides whether a request may be served. Returns 0 to serve it, or an
// HTTP status (401, 403, 503) with the error message to send.
using RequestGate = std::function<int(const IncomingRequest&, std::string& message)>;

struct QueryApiOptions {
  BuildInfo build;
  RequestGate gate;  // null: every request is served
  // Default and maximum page sizes of the paginated lists.
  size_t default_limit = 500;
  size_t max_limit = 10000;
  // Told after each request: path template ("/api/v1/diff"), status, seconds.
  std::function<void(const std::string& route, int code, double seconds)> observe;
  // The durable history's state, shown with the snapshot list; null: history
  // is in memory only.
  std::function<state::JournalStats()> history;
};

class QueryApi {
 public:
  // Everything passed must outlive the QueryApi.
  QueryApi(state::Store& store, controllers::ClusterRegistry& registry, controllers::FailoverReconciler& failover,
           QueryApiOptions options);

  void Handle(const IncomingRequest& request, ResponseWriter& response);

 private:
  state::Store& store_;
  controllers::ClusterRegistry& registry_;
  controllers::FailoverReconciler& failover_;
  const QueryApiOptions options_;
};

}  // namespace kubefold
