#include "operator/query_api.h"

#include <algorithm>
#include <cassert>
#include <cctype>
#include <charconv>
#include <chrono>
#include <map>
#include <optional>
#include <set>
#include <string_view>

#include <nlohmann/json.hpp>

#include "controllers/health.h"
#include "controllers/kube/internal/rfc3339.h"
#include "operator/internal/json_text.h"
#include "state/diff.h"

namespace kubefold {

namespace {

using Json = nlohmann::json;
using controllers::kHealthNamespace;

constexpr char kJson[] = "application/json";

struct ApiError {
  int code = 400;
  std::string message;
  std::string parameter;  // "" when not about one parameter
};

const char* ReasonFor(int code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 410: return "Gone";
    case 503: return "ServiceUnavailable";
    default: return "InternalError";
  }
}

int HttpCode(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument: return 400;
    case StatusCode::kNotFound: return 404;
    case StatusCode::kGone: return 410;
    case StatusCode::kUnavailable: return 503;
    case StatusCode::kUnauthenticated: return 401;
    case StatusCode::kPermissionDenied: return 403;
    default: return 500;
  }
}

// Serialized; bytes that are not UTF-8 (a parameter echoed in a message)
// become U+FFFD instead of failing the answer.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

void SendError(ResponseWriter& w, const ApiError& e) {
  Json body = {{"kind", "Error"}, {"code", e.code}, {"reason", ReasonFor(e.code)}, {"message", e.message}};
  if (!e.parameter.empty()) body["parameter"] = e.parameter;
  std::vector<std::pair<std::string, std::string>> headers;
  if (e.code == 401) headers.emplace_back("WWW-Authenticate", "Bearer");
  if (e.code == 405) headers.emplace_back("Allow", "GET, HEAD");
  w.Send(e.code, kJson, Dump(body) + "\n", headers);
}

std::string Stamp(state::TimePoint t) { return kube::internal::FormatRfc3339Micro(t); }

// The query parameters of one request, checked against what the endpoint
// accepts: an unknown or repeated parameter is an error naming it.
class Params {
 public:
  static std::optional<ApiError> Parse(const IncomingRequest& req, std::initializer_list<std::string_view> allowed,
                                       Params& out) {
    for (const auto& [k, v] : req.query) {
      if (std::find(allowed.begin(), allowed.end(), k) == allowed.end()) {
        std::string list;
        for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
        return ApiError{400,
                        "unknown parameter \"" + k + "\"" + (list.empty() ? " (this endpoint takes none)" : " (this endpoint takes: " + list + ")"),
                        k};
      }
      if (!out.values_.emplace(k, v).second) return ApiError{400, "parameter \"" + k + "\" is given more than once", k};
    }
    return std::nullopt;
  }
  const std::string* Find(const std::string& name) const {
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
  }
  std::optional<std::string> Optional(const std::string& name) const {
    if (auto* v = Find(name)) return *v;
    return std::nullopt;
  }

 private:
  std::map<std::string, std::string> values_;
};

std::optional<uint64_t> ParseUint(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

// Go's strconv.ParseBool, as Kubernetes parses boolean query parameters.
std::optional<bool> ParseBool(std::string_view s) {
  if (s == "1" || s == "t" || s == "T" || s == "true" || s == "TRUE" || s == "True") return true;
  if (s == "0" || s == "f" || s == "F" || s == "false" || s == "FALSE" || s == "False") return false;
  return std::nullopt;
}

// An RFC 3339 time, taken as the end of its last stated digit: a time
// copied from an answer (microseconds) names the snapshot published in that
// microsecond, and "12:00:05Z" covers 12:00:05.999999999.
std::optional<state::TimePoint> ParseTime(const std::string& text) {
  auto t = kube::internal::ParseRfc3339(text);
  if (!t) return std::nullopt;
  int digits = 0;
  if (const size_t dot = text.find('.'); dot != std::string::npos) {
    for (size_t i = dot + 1; i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])); ++i) ++digits;
  }
  int64_t step = 1'000'000'000;
  for (int i = 0; i < std::min(digits, 9); ++i) step /= 10;
  const auto widen = std::chrono::duration_cast<state::TimePoint::duration>(std::chrono::nanoseconds(step - 1));
  if (*t > state::TimePoint::max() - widen) return state::TimePoint::max();  // the far future: no overflow
  return *t + widen;
}

// A snapshot reference: seq, "latest", or an RFC 3339 time.
Result<state::Snapshot> Resolve(state::Store& store, const std::string& ref, const std::string& param,
                                ApiError& error) {
  auto fail = [&](int code, std::string message) -> Result<state::Snapshot> {
    error = ApiError{code, (param.empty() ? std::string() : "parameter \"" + param + "\": ") + std::move(message), param};
    return InvalidArgument(error.message);
  };
  if (ref.empty()) return fail(400, "a snapshot is required: a seq, \"latest\", or an RFC 3339 time");
  if (ref == "latest") return store.Current();
  if (auto seq = ParseUint(ref)) {
    auto s = store.Get(*seq);
    if (s.ok()) return s;
    const uint64_t newest = store.Current().seq();
    if (s.status().code() == StatusCode::kGone) {
      const auto kept = store.ListRetained(0, 1);
      return fail(410, "snapshot " + ref + " was dropped by retention (the oldest retained is " +
                           (kept.empty() ? std::string("none") : std::to_string(kept.front().seq)) + ")");
    }
    return fail(404, "snapshot " + ref + " does not exist (the newest is " + std::to_string(newest) + ")");
  }
  if (auto t = ParseTime(ref)) {
    auto s = store.AtOrBefore(*t);
    if (s.ok()) return s;
    return fail(HttpCode(s.status()), "no retained snapshot at or before " + ref + ": " + s.status().message());
  }
  return fail(400, "\"" + ref + "\" is not a snapshot seq, \"latest\", or an RFC 3339 time");
}

// A version vector: JSON ({"east":3}) or "east=3,west=4".
Result<state::VersionVector> ParseVector(const std::string& text) {
  if (!text.empty() && text.front() == '{') return state::VersionVector::Parse(text);
  Json j = Json::object();
  std::string_view rest = text;
  while (!rest.empty()) {
    const size_t comma = rest.find(',');
    std::string_view part = rest.substr(0, comma);
    rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    const size_t eq = part.find('=');
    if (eq == std::string_view::npos || eq == 0) {
      return InvalidArgument("\"" + std::string(part) + "\" is not CLUSTER=COUNTER");
    }
    auto n = ParseUint(part.substr(eq + 1));
    if (!n) return InvalidArgument("\"" + std::string(part.substr(eq + 1)) + "\" is not a counter");
    j[std::string(part.substr(0, eq))] = *n;
  }
  if (j.empty()) return InvalidArgument("the vector is empty");
  return state::VersionVector::Parse(Dump(j));
}

bool IsHealth(std::string_view ns) { return ns == kHealthNamespace; }

// Workloads in a snapshot (cluster health records excluded).
uint64_t WorkloadCount(const state::Snapshot& s) {
  uint64_t n = s.workload_count();
  s.ForEachCluster([&](const state::ClusterInfo& c) {
    n -= s.CountWorkloads(c.name, kHealthNamespace);
    return true;
  });
  return n;
}

Json Meta(const state::Snapshot& s) {
  Json j = {{"seq", s.seq()},
            {"time", Stamp(s.time())},
            {"vector", Json::parse(s.vector().ToJson())},
            {"workloads", WorkloadCount(s)}};
  if (s.composed()) j["composed"] = true;
  return j;
}

// `{"cluster":..,"namespace":..,"group":..,"kind":..,"name":..` — an
// item's key, left open for more members. Written by hand: per item this
// is most of the work of a large answer.
void AppendKey(std::string& out, std::string_view cluster, std::string_view ns, const state::Record& r) {
  out += "{\"cluster\":";
  internal::AppendJsonString(out, cluster);
  out += ",\"namespace\":";
  internal::AppendJsonString(out, ns);
  out += ",\"group\":";
  internal::AppendJsonString(out, r.group());
  out += ",\"kind\":";
  internal::AppendJsonString(out, r.kind());
  out += ",\"name\":";
  internal::AppendJsonString(out, r.name());
}

void AppendNumber(std::string& out, const char* member, int64_t v) {
  out += ",\"";
  out += member;
  out += "\":";
  out += std::to_string(v);
}

// The summary members of a snapshot item (counter and the decoded fields
// the object carries).
void AppendSummary(std::string& out, const state::Record& r) {
  const state::WorkloadSummary s = r.summary();
  AppendNumber(out, "counter", static_cast<int64_t>(r.counter()));
  if (s.generation != state::WorkloadSummary::kUnset) AppendNumber(out, "generation", s.generation);
  if (s.observed_generation != state::WorkloadSummary::kUnset) AppendNumber(out, "observedGeneration", s.observed_generation);
  if (s.desired_replicas >= 0) AppendNumber(out, "desiredReplicas", s.desired_replicas);
  if (s.ready_replicas >= 0) AppendNumber(out, "readyReplicas", s.ready_replicas);
  if (s.available_replicas >= 0) AppendNumber(out, "availableReplicas", s.available_replicas);
}

}  // namespace

QueryApi::QueryApi(state::Store& store, controllers::ClusterRegistry& registry,
                   controllers::FailoverReconciler& failover, QueryApiOptions options)
    : store_(store), registry_(registry), failover_(failover), options_(std::move(options)) {}

void QueryApi::Handle(const IncomingRequest& req, ResponseWriter& w) {
  const auto started = std::chrono::steady_clock::now();
  std::string route = "other";
  int code = 200;
  auto error = [&](ApiError e) {
    code = e.code;
    SendError(w, e);
  };
  // The body of the dispatch, as a lambda so every path reports metrics.
  [&] {
    const std::string& path = req.path;
    if (req.method != "GET" && req.method != "HEAD") {
      route = "method";
      return error({405, "method " + req.method + " is not allowed; the query API is read-only (GET)", ""});
    }
    if (options_.gate) {
      std::string message;
      if (int c = options_.gate(req, message); c != 0) {
        route = "auth";
        return error({c, message, ""});
      }
    }
    if (path == "/version") {
      route = "/version";
      Params p;
      if (auto e = Params::Parse(req, {}, p)) return error(*e);
      Json j = {{"version", options_.build.version},
                {"gitCommit", options_.build.git_commit},
                {"compiler", options_.build.compiler}};
      return w.Send(200, kJson, Dump(j) + "\n");
    }
    if (path == "/api/v1/clusters") {
      route = path;
      Params p;
      if (auto e = Params::Parse(req, {}, p)) return error(*e);
      const state::Snapshot s = store_.Current();
      std::map<std::string, controllers::MemberInfo> members;
      for (auto& m : registry_.Members()) members.emplace(m.name, std::move(m));
      std::set<std::string> names;
      for (const auto& n : registry_.Names()) names.insert(n);
      s.ForEachCluster([&](const state::ClusterInfo& c) {
        names.emplace(c.name);
        return true;
      });
      Json items = Json::array();
      for (const auto& name : names) {
        Json c = {{"name", name}, {"registered", registry_.Exists(name)}};
        if (auto m = members.find(name); m != members.end()) {
          c["ready"] = m->second.ready.status;
          if (!m->second.ready.reason.empty()) c["reason"] = m->second.ready.reason;
          if (!m->second.ready.message.empty()) c["message"] = m->second.ready.message;
          c["watching"] = m->second.running;
          c["synced"] = m->second.synced;
          c["watchErrors"] = m->second.reflector_errors;
          if (!m->second.problem_reason.empty()) {
            c["problem"] = {{"reason", m->second.problem_reason}, {"message", m->second.problem_message}};
          }
        } else {
          c["ready"] = "Unknown";
          c["watching"] = false;
          c["synced"] = false;
        }
        if (const state::Record* h = s.Get(name, kHealthNamespace,
                                           {controllers::kHealthGroup, controllers::kHealthKind,
                                            controllers::kHealthName})) {
          if (auto rec = controllers::ParseHealthRecord(h->object_json())) c["readySince"] = Stamp(rec->since);
        }
        const auto info = s.Cluster(name);
        const uint64_t health = s.CountWorkloads(name, kHealthNamespace);
        c["vectorComponent"] = info ? info->counter : 0;
        c["namespaces"] = info ? info->namespaces - (health > 0 ? 1 : 0) : 0;
        c["workloads"] = info ? info->workloads - health : 0;
        items.push_back(std::move(c));
      }
      Json out = {{"kind", "ClusterList"}, {"snapshot", Meta(s)}, {"items", std::move(items)}};
      return w.Send(200, kJson, Dump(out) + "\n");
    }
    if (path == "/api/v1/snapshots") {
      route = path;
      Params p;
      if (auto e = Params::Parse(req, {"limit", "continue"}, p)) return error(*e);
      size_t limit = options_.default_limit;
      if (auto l = p.Optional("limit")) {
        auto n = ParseUint(*l);
        if (!n || *n == 0) return error({400, "parameter \"limit\": \"" + *l + "\" is not a positive integer", "limit"});
        limit = std::min<size_t>(*n, options_.max_limit);
      }
      uint64_t from = 0;
      if (auto c = p.Optional("continue")) {
        auto n = ParseUint(*c);
        if (!n) return error({400, "parameter \"continue\": \"" + *c + "\" is not a token this API issued", "continue"});
        from = *n;
      }
      const auto page = store_.ListRetained(from, limit + 1);
      const auto pinned_by = failover_.PinnedBy();
      Json items = Json::array();
      for (size_t i = 0; i < std::min(limit, page.size()); ++i) {
        const auto& r = page[i];
        Json j = {{"seq", r.seq}, {"time", Stamp(r.time)}, {"vector", Json::parse(r.vector.ToJson())}, {"pins", r.pins}};
        if (auto snap = store_.Get(r.seq); snap.ok()) j["workloads"] = WorkloadCount(*snap);
        if (auto b = pinned_by.find(r.seq); b != pinned_by.end()) j["pinnedBy"] = b->second;
        items.push_back(std::move(j));
      }
      Json out = {{"kind", "SnapshotList"}, {"latest", store_.Current().seq()}, {"items", std::move(items)}};
      if (options_.history) {
        const state::JournalStats h = options_.history();
        out["durable"] = {{"durableSeq", h.durable_seq}, {"diskBytes", h.disk_bytes}, {"diskSnapshots", h.retained_rows},
                          {"degraded", h.degraded}};
        if (h.degraded) out["durable"]["reason"] = h.degraded_reason;
      } else {
        out["durable"] = nullptr;
      }
      if (page.size() > limit) out["continue"] = std::to_string(page[limit].seq);
      return w.Send(200, kJson, Dump(out) + "\n");
    }
    if (path.starts_with("/api/v1/snapshots/")) {
      route = "/api/v1/snapshots/{ref}";
      const std::string ref = path.substr(std::string_view("/api/v1/snapshots/").size());
      Params p;
      if (auto e = Params::Parse(req, {"cluster", "namespace", "kind", "full", "limit", "continue", "vector", "time"}, p)) {
        return error(*e);
      }
      bool full = false;
      if (auto f = p.Optional("full")) {
        auto b = ParseBool(*f);
        if (!b) return error({400, "parameter \"full\": \"" + *f + "\" is not a boolean", "full"});
        full = *b;
      }
      size_t limit = SIZE_MAX;
      if (auto l = p.Optional("limit")) {
        auto n = ParseUint(*l);
        if (!n || *n == 0) return error({400, "parameter \"limit\": \"" + *l + "\" is not a positive integer", "limit"});
        limit = *n;
      }
      // continue: "<seq>:<offset>" for a published snapshot (also when
      // /snapshots/at resolves to one), "at:<offset>" for a composed view.
      std::optional<uint64_t> token_seq;
      bool token_at = false;
      uint64_t offset = 0;
      if (auto c = p.Optional("continue")) {
        const size_t colon = c->find(':');
        auto off = colon == std::string::npos ? std::nullopt : ParseUint(std::string_view(*c).substr(colon + 1));
        const std::string head = colon == std::string::npos ? "" : c->substr(0, colon);
        auto seq = ParseUint(head);
        if (!off || (head != "at" && !seq) || (head == "at" && ref != "at")) {
          return error({400, "parameter \"continue\": \"" + *c + "\" is not a token this API issued for this path",
                        "continue"});
        }
        offset = *off;
        if (seq) token_seq = *seq;
        token_at = head == "at";
      }
      state::Snapshot s;
      if (ref == "at") {
        const auto vector = p.Optional("vector");
        const auto time = p.Optional("time");
        if (vector.has_value() == time.has_value()) {
          return error({400, "exactly one of the parameters \"vector\" and \"time\" is required", vector ? "time" : "vector"});
        }
        if (vector) {
          auto v = ParseVector(*vector);
          if (!v.ok()) return error({400, "parameter \"vector\": " + v.status().message(), "vector"});
          auto c = store_.ComposeAt(*v);
          if (!c.ok()) return error({HttpCode(c.status()), "parameter \"vector\": " + c.status().message(), "vector"});
          s = *c;
        } else {
          auto t = ParseTime(*time);
          if (!t) return error({400, "parameter \"time\": \"" + *time + "\" is not an RFC 3339 time", "time"});
          auto c = store_.AtOrBefore(*t);
          if (!c.ok()) return error({HttpCode(c.status()), "parameter \"time\": " + c.status().message(), "time"});
          s = *c;
        }
        // The token must be for what the same vector/time resolves to now.
        if (token_seq && (s.composed() || s.seq() != *token_seq)) {
          return error({400, "parameter \"continue\": the token belongs to snapshot " + std::to_string(*token_seq) +
                                 ", not to what these parameters select",
                        "continue"});
        }
        if (token_at && !s.composed()) {
          return error({400, "parameter \"continue\": the token belongs to a composed view, not to snapshot " +
                                 std::to_string(s.seq()),
                        "continue"});
        }
      } else {
        for (const char* only_at : {"vector", "time"}) {
          if (p.Find(only_at)) {
            return error({400, std::string("parameter \"") + only_at + "\" applies to /api/v1/snapshots/at only", only_at});
          }
        }
        ApiError e;
        auto r = Resolve(store_, token_seq ? std::to_string(*token_seq) : ref, token_seq ? "continue" : "", e);
        if (!r.ok()) return error(e);
        if (token_seq && ref != "latest" && ParseUint(ref) != token_seq) {
          return error({400, "parameter \"continue\": the token belongs to snapshot " + std::to_string(*token_seq),
                        "continue"});
        }
        s = *r;
      }
      const auto cluster = p.Optional("cluster");
      const auto ns = p.Optional("namespace");
      const auto kind = p.Optional("kind");
      w.Begin(200, kJson);
      Json head = {{"kind", "Snapshot"}, {"snapshot", Meta(s)}};
      std::string out = Dump(head);
      out.pop_back();
      out += ",\"items\":[";
      bool alive = w.Write(out);
      uint64_t index = 0, written = 0;
      bool more = false;
      std::string line;
      auto visit = [&](const state::WorkloadRef& ref_) {
        if (IsHealth(ref_.ns) && !(ns && *ns == kHealthNamespace)) return true;
        if (ns && ref_.ns != *ns) return true;
        const state::Record& r = *ref_.record;
        if (kind && r.kind() != *kind) return true;
        if (index++ < offset) return true;
        if (written == limit) {
          more = true;
          return false;
        }
        line.clear();
        if (written++) line += ',';
        AppendKey(line, ref_.cluster, ref_.ns, r);
        AppendSummary(line, r);
        if (full) {
          line += ",\"object\":";
          r.AppendObjectJson(line);
        }
        line += '}';
        alive = w.Write(line);
        return alive;
      };
      if (cluster) {
        if (ns) {
          s.ForEachWorkload(*cluster, *ns, visit);
        } else {
          s.ForEachWorkload(*cluster, visit);
        }
      } else {
        s.ForEachWorkload(visit);
      }
      if (!alive) return;
      std::string tail = "]";
      if (more) {
        tail += ",\"continue\":" + Json(s.composed() ? "at:" + std::to_string(offset + written)
                                                     : std::to_string(s.seq()) + ":" + std::to_string(offset + written))
                                       .dump();
      }
      tail += "}\n";
      w.Write(tail);
      return;
    }
    if (path == "/api/v1/diff" || (path.starts_with("/api/v1/audits/") && path.ends_with("/diff"))) {
      const bool audit_diff = path != "/api/v1/diff";
      route = audit_diff ? "/api/v1/audits/{namespace}/{name}/diff" : "/api/v1/diff";
      Params p;
      std::optional<ApiError> pe = audit_diff ? Params::Parse(req, {"cluster", "namespace", "patch"}, p)
                                              : Params::Parse(req, {"from", "to", "cluster", "namespace", "patch"}, p);
      if (pe) return error(*pe);
      bool with_patch = true;
      if (auto f = p.Optional("patch")) {
        auto b = ParseBool(*f);
        if (!b) return error({400, "parameter \"patch\": \"" + *f + "\" is not a boolean", "patch"});
        with_patch = *b;
      }
      state::Snapshot from, to;
      Json audit_json;
      if (audit_diff) {
        // /api/v1/audits/{ns}/{name}/diff
        const std::string mid = path.substr(15, path.size() - 15 - 5);
        const size_t slash = mid.find('/');
        if (slash == std::string::npos || slash == 0 || slash + 1 == mid.size() ||
            mid.find('/', slash + 1) != std::string::npos) {
          return error({404, "no such path; an audit's diff is /api/v1/audits/{namespace}/{name}/diff", ""});
        }
        const std::string ans = mid.substr(0, slash), aname = mid.substr(slash + 1);
        if (!failover_.synced()) return error({503, "the FailoverAudit cache has not synced yet", ""});
        auto a = failover_.FindAudit(ans, aname);
        if (!a) return error({404, "no FailoverAudit " + ans + "/" + aname, ""});
        audit_json = {{"namespace", a->ns}, {"name", a->name}, {"policy", a->policy}, {"from", a->from},
                      {"to", a->to},        {"reason", a->reason}, {"phase", a->phase}};
        auto check = [&](uint64_t seq, const std::string& vector, const char* which) -> std::optional<ApiError> {
          auto s = store_.Get(seq);
          if (!s.ok()) {
            return ApiError{s.status().code() == StatusCode::kGone ? 410 : 404,
                            std::string("the audit's ") + which + " snapshot " + std::to_string(seq) +
                                " is not retained by this kubefold process (" + s.status().message() + ")",
                            ""};
          }
          if (!vector.empty() && s->vector().ToJson() != vector) {
            return ApiError{410,
                            std::string("the audit's ") + which + " snapshot " + std::to_string(seq) +
                                " was recorded by another kubefold process (its vector " + vector +
                                " is not this process's snapshot " + std::to_string(seq) + ")",
                            ""};
          }
          (which[0] == 'b' ? from : to) = *s;
          return std::nullopt;
        };
        if (auto e = check(a->before_seq, a->before_vector, "before")) return error(*e);
        if (a->after_seq) {
          if (auto e = check(*a->after_seq, a->after_vector, "after")) return error(*e);
          audit_json["complete"] = true;
        } else {
          to = store_.Current();  // in progress: up to now
          audit_json["complete"] = false;
        }
      } else {
        ApiError e;
        auto f = Resolve(store_, p.Optional("from").value_or(""), "from", e);
        if (!f.ok()) return error(e);
        auto t = Resolve(store_, p.Optional("to").value_or("latest"), "to", e);
        if (!t.ok()) return error(e);
        from = *f;
        to = *t;
      }
      state::DiffFilter filter;
      filter.cluster = p.Optional("cluster");
      filter.ns = p.Optional("namespace");
      w.Begin(200, kJson);
      Json head = {{"kind", "Diff"}, {"from", Meta(from)}, {"to", Meta(to)}};
      if (audit_diff) head["audit"] = audit_json;
      std::string out = Dump(head);
      out.pop_back();
      out += ",\"changes\":[";
      bool alive = w.Write(out);
      if (!alive) return;  // the client is gone
      size_t n = 0, added = 0, removed = 0, modified = 0;
      std::string line;
      // Changes by cluster, namespace and key: the store's own order within
      // a cluster depends on how it answered (state/diff.h) and need not
      // survive a restart; an answer must. The store gives the clusters in
      // name order, so only one cluster's changes are held and sorted at a
      // time, and each is written before the next cluster is visited.
      std::vector<state::Change> changes;
      auto key_of = [](const state::Change& c) { return (c.after ? c.after : c.before)->key(); };
      auto flush = [&]() -> bool {
        std::sort(changes.begin(), changes.end(), [&](const state::Change& a, const state::Change& b) {
          if (a.ns != b.ns) return a.ns < b.ns;
          return key_of(a) < key_of(b);
        });
        for (const state::Change& c : changes) {
          const state::Record& key = c.after ? *c.after : *c.before;
          line.clear();
          if (n++) line += ',';
          AppendKey(line, c.cluster, c.ns, key);
          line += ",\"type\":\"";
          line += state::ChangeTypeName(c.type);
          line += '"';
          if (c.before) AppendNumber(line, "fromCounter", static_cast<int64_t>(c.before->counter()));
          if (c.after) AppendNumber(line, "toCounter", static_cast<int64_t>(c.after->counter()));
          switch (c.type) {
            case state::ChangeType::kAdded:
              ++added;
              line += ",\"object\":";
              c.after->AppendObjectJson(line);
              break;
            case state::ChangeType::kRemoved:
              ++removed;
              line += ",\"object\":";
              c.before->AppendObjectJson(line);
              break;
            case state::ChangeType::kModified: {
              ++modified;
              if (with_patch) {
                line += ",\"patch\":";
                const size_t mark = line.size();
                if (!internal::AppendJsonPatch(line, c.before->object_json(), c.after->object_json()).ok()) {
                  line.resize(mark);
                  line += "[]";
                }
              }
              break;
            }
          }
          line += '}';
          if (!w.Write(line)) return false;
        }
        changes.clear();
        return true;
      };
      Status st = state::VisitDiff(from, to, filter, [&](const state::Change& c) {
        if (!changes.empty() && c.cluster != changes.front().cluster) {
          assert(changes.front().cluster < c.cluster);  // clusters by name (state/diff.h)
          alive = flush();
          if (!alive) return false;  // the client is gone: stop visiting
        }
        changes.push_back(c);
        return true;
      });
      if (!alive || !flush()) return;
      std::string tail = "]";
      if (!st.ok()) tail += ",\"error\":" + Dump(Json(st.message()));
      tail += ",\"summary\":" + Dump(Json{{"added", added}, {"removed", removed}, {"modified", modified}}) + "}\n";
      w.Write(tail);
      return;
    }
    if (path == "/api/v1/whatif") {
      route = path;
      Params p;
      if (auto e = Params::Parse(req, {"cluster"}, p)) return error(*e);
      const auto cluster = p.Optional("cluster");
      if (!cluster || cluster->empty()) return error({400, "parameter \"cluster\" is required", "cluster"});
      auto r = failover_.WhatIf(*cluster);
      if (!r.ok()) {
        return error({HttpCode(r.status()), r.status().message(),
                      r.status().code() == StatusCode::kNotFound ? "cluster" : ""});
      }
      Json moves = Json::array();
      for (const auto& m : r->moves) {
        Json j = {{"policy", m.policy}, {"namespace", m.ns}, {"kind", m.kind}, {"name", m.name},
                  {"from", m.from},     {"action", m.action}, {"reason", m.reason}};
        if (!m.to.empty()) j["to"] = m.to;
        moves.push_back(std::move(j));
      }
      Json out = {{"kind", "WhatIf"},
                  {"cluster", *cluster},
                  {"snapshot", Meta(r->snapshot)},
                  {"policies", r->policies},
                  {"moves", std::move(moves)}};
      return w.Send(200, kJson, Dump(out) + "\n");
    }
    route = "unknown";
    return error({404, "no such path: " + path, ""});
  }();
  if (options_.observe) {
    options_.observe(route, code,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }
}

}  // namespace kubefold
