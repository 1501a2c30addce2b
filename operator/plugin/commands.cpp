#include "operator/plugin/commands.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <sstream>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "controllers/kube/paths.h"
#include "operator/plugin/format.h"
#include "operator/plugin/table.h"

namespace kubefold::plugin {

namespace {

// ordered_json: documents keep the API's key order.
using Json = nlohmann::ordered_json;

const Json& At(const Json& j, const char* key) {
  static const Json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}

// A member as table text: strings as they are, numbers and booleans as JSON
// writes them, "" when absent or null.
std::string Str(const Json& j, const char* key) {
  const Json& v = At(j, key);
  if (v.is_null()) return "";
  if (v.is_string()) return v.get<std::string>();
  return v.dump();
}

std::string Join(const Json& array, const char* sep) {
  std::string out;
  if (!array.is_array()) return out;
  for (const auto& v : array) {
    if (!out.empty()) out += sep;
    out += v.is_string() ? v.get<std::string>() : v.dump();
  }
  return out;
}

// {"east":3,"west":4} -> "east=3,west=4", the form --at-vector takes.
std::string VectorText(const Json& vector) {
  std::string out;
  if (!vector.is_object()) return out;
  for (const auto& [k, v] : vector.items()) out += (out.empty() ? "" : ",") + k + "=" + v.dump();
  return out;
}

class Query {
 public:
  Query& Add(const char* name, const std::string& value) {
    if (value.empty()) return *this;
    text_ += text_.empty() ? "?" : "&";
    text_ += name;
    text_ += '=';
    text_ += kube::PercentEncode(value);
    return *this;
  }
  const std::string& str() const { return text_; }

 private:
  std::string text_;
};

bool Formatted(const OutputOptions& o) { return o.format == Output::kJson || o.format == Output::kYaml; }
bool Wide(const OutputOptions& o) { return o.format == Output::kWide; }

// The answer reformatted as -o json / -o yaml asks, as it is read.
Status Emit(Response& r, const OutputOptions& o, std::ostream& out) {
  Status st = Reformat(r.body(), o.format == Output::kJson ? Format::kJson : Format::kYaml, out);
  if (Status e = r.error(); !e.ok()) return e;
  return st;
}

Status EmitText(const std::string& text, const OutputOptions& o, std::ostream& out) {
  std::istringstream in(text);
  return Reformat(in, o.format == Output::kJson ? Format::kJson : Format::kYaml, out);
}

Result<Json> ReadJson(Response& r) {
  Json j = Json::parse(r.body(), nullptr, false);
  if (Status e = r.error(); !e.ok()) return e;
  if (j.is_discarded() || !j.is_object()) return InternalError("the answer is not a JSON object");
  return j;
}

Result<Json> ParseJson(const std::string& text) {
  Json j = Json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return InternalError("the answer is not a JSON object");
  return j;
}

// Parses the answer, handing each element of the top-level array `key` to
// `each` as soon as it is complete and dropping it: what is returned is the
// rest of the document. Memory: one element at a time.
Result<Json> ParseStreamed(Response& r, const std::string& key, const std::function<void(const Json&)>& each) {
  std::string top_key;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth == 1 && event == Json::parse_event_t::key) top_key = parsed.get<std::string>();
    if (depth == 2 && event == Json::parse_event_t::object_end && top_key == key) {
      each(parsed);
      return false;
    }
    return true;
  };
  Json j = Json::parse(r.body(), callback, false);
  if (Status e = r.error(); !e.ok()) return e;
  if (j.is_discarded() || !j.is_object()) return InternalError("the answer is not a JSON object");
  return j;
}

void PrintOrSayNone(const Table& t, const OutputOptions& o, Streams s, const std::string& none) {
  if (t.empty()) {
    s.err << none << '\n';
    return;
  }
  t.Print(s.out, o.color);
}

Color ReadyColor(const std::string& status) {
  if (status == "True") return Color::kGreen;
  if (status == "False") return Color::kRed;
  return Color::kNone;
}

Color ChangeColor(const std::string& type) {
  if (type == "added") return Color::kGreen;
  if (type == "removed") return Color::kRed;
  if (type == "modified") return Color::kYellow;
  return Color::kNone;
}

Color PhaseColor(const std::string& phase) {
  if (phase == "Completed") return Color::kGreen;
  if (phase == "Failed") return Color::kRed;
  return Color::kNone;
}

// An RFC 6901 pointer as a field path: "/spec/template/spec/containers/0/image"
// -> "spec.template.spec.containers[0].image"; a key that is not a plain
// identifier is quoted: metadata.labels["kubefold.io/copy"].
std::string FieldPath(const std::string& pointer) {
  if (pointer.empty()) return "(the whole object)";
  std::string out;
  size_t at = 1;
  while (at <= pointer.size()) {
    size_t slash = pointer.find('/', at);
    if (slash == std::string::npos) slash = pointer.size();
    std::string seg;
    for (size_t i = at; i < slash; ++i) {
      if (pointer[i] == '~' && i + 1 < slash && (pointer[i + 1] == '0' || pointer[i + 1] == '1')) {
        seg += pointer[i + 1] == '0' ? '~' : '/';
        ++i;
      } else {
        seg += pointer[i];
      }
    }
    bool digits = !seg.empty(), plain = !seg.empty();
    for (char c : seg) {
      digits = digits && c >= '0' && c <= '9';
      plain = plain && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-');
    }
    if (digits) {
      out += "[" + seg + "]";
    } else if (plain) {
      out += (out.empty() ? "" : ".") + seg;
    } else {
      out += "[" + Json(seg).dump() + "]";
    }
    at = slash + 1;
  }
  return out;
}

// Bookkeeping fields every write changes: left out of CHANGES unless
// nothing else changed (-o wide shows every operation).
bool Bookkeeping(const std::string& path) {
  return path == "metadata.resourceVersion" || path.starts_with("metadata.managedFields");
}

std::string ChangesSummary(const Json& patch) {
  std::vector<std::string> paths, all;
  if (!patch.is_array()) return "";
  for (const auto& op : patch) {
    const std::string p = FieldPath(Str(op, "path"));
    if (std::find(all.begin(), all.end(), p) == all.end()) all.push_back(p);
  }
  for (const auto& p : all) {
    if (!Bookkeeping(p)) paths.push_back(p);
  }
  if (paths.empty()) paths = all;
  std::string out;
  for (const auto& p : paths) out += (out.empty() ? "" : ", ") + p;
  return out;
}

std::string Abbreviate(std::string s, size_t max) {
  if (s.size() > max) s = s.substr(0, max - 3) + "...";
  return s;
}

// The table of a Diff document (/api/v1/diff, an audit's diff), headed by
// one line saying what was compared.
Status DiffTable(Response& r, const OutputOptions& o, Streams s) {
  std::vector<std::string> headers = {"TYPE", "CLUSTER", "NAMESPACE", "KIND", "NAME"};
  if (Wide(o)) {
    headers.insert(headers.end(), {"OP", "PATH", "VALUE"});
  } else {
    headers.push_back("CHANGES");
  }
  Table t(headers);
  auto rest = ParseStreamed(r, "changes", [&](const Json& c) {
    const std::string type = Str(c, "type");
    std::vector<Cell> key = {Cell(type, ChangeColor(type)), Str(c, "cluster"), Str(c, "namespace"), Str(c, "kind"),
                             Str(c, "name")};
    const Json& patch = At(c, "patch");
    if (!Wide(o)) {
      key.push_back(ChangesSummary(patch));
      t.Add(std::move(key));
      return;
    }
    if (!patch.is_array() || patch.empty()) {
      key.insert(key.end(), {"", "", ""});
      t.Add(std::move(key));
      return;
    }
    for (const auto& op : patch) {
      std::vector<Cell> row = key;
      row.push_back(Str(op, "op"));
      row.push_back(FieldPath(Str(op, "path")));
      row.push_back(op.contains("value") ? Abbreviate(op["value"].dump(), 60) : std::string());
      t.Add(std::move(row));
    }
  });
  if (!rest.ok()) return rest.status();
  const Json& from = At(*rest, "from");
  const Json& to = At(*rest, "to");
  const Json& summary = At(*rest, "summary");
  s.out << "from seq " << Str(from, "seq") << " (" << Str(from, "time") << ") to seq " << Str(to, "seq") << " ("
        << Str(to, "time") << "): " << Str(summary, "added") << " added, " << Str(summary, "removed")
        << " removed, " << Str(summary, "modified") << " modified";
  const Json& audit = At(*rest, "audit");
  if (audit.is_object() && At(audit, "complete").is_boolean() && !At(audit, "complete").get<bool>()) {
    s.out << " (the audit is in progress: up to the latest snapshot)";
  }
  s.out << '\n';
  if (!t.empty()) t.Print(s.out, o.color);
  if (At(*rest, "error").is_string()) {
    return InternalError("the diff is incomplete: " + At(*rest, "error").get<std::string>());
  }
  return Status::Ok();
}

// One FailoverAudit as a row of `audits` / `audit`.
std::vector<Cell> AuditRow(const Json& a, bool with_namespace, const OutputOptions& o) {
  const Json& meta = At(a, "metadata");
  const Json& spec = At(a, "spec");
  const std::string phase = Str(At(a, "status"), "phase");
  std::vector<Cell> row;
  if (with_namespace) row.push_back(Str(meta, "namespace"));
  row.insert(row.end(), {Str(meta, "name"), Str(spec, "policy"), Str(spec, "from"), Str(spec, "to"),
                         Str(At(spec, "trigger"), "reason"), Cell(phase, PhaseColor(phase)),
                         Str(At(spec, "before"), "seq"), Str(At(spec, "after"), "seq"),
                         Age(Str(meta, "creationTimestamp"), o.now)});
  return row;
}

std::vector<std::string> AuditHeaders(bool with_namespace) {
  std::vector<std::string> h;
  if (with_namespace) h.push_back("NAMESPACE");
  h.insert(h.end(), {"NAME", "POLICY", "FROM", "TO", "REASON", "PHASE", "BEFORE", "AFTER", "AGE"});
  return h;
}

std::string Plural(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

}  // namespace

Status Clusters(Client& client, const OutputOptions& o, Streams s) {
  auto r = client.Kubefold("/api/v1/clusters");
  if (!r.ok()) return r.status();
  if (Formatted(o)) return Emit(**r, o, s.out);
  auto doc = ReadJson(**r);
  if (!doc.ok()) return doc.status();
  std::vector<std::string> headers = {"NAME", "READY", "WATCHING", "SYNCED", "VECTOR", "WORKLOADS", "AGE"};
  if (Wide(o)) headers.insert(headers.end(), {"NAMESPACES", "WATCH-ERRORS", "REASON"});
  Table t(headers);
  for (const auto& c : At(*doc, "items")) {
    const std::string ready = Str(c, "ready");
    std::vector<Cell> row = {Str(c, "name"),      Cell(ready, ReadyColor(ready)), Str(c, "watching"),
                             Str(c, "synced"),    Str(c, "vectorComponent"),      Str(c, "workloads"),
                             Age(Str(c, "readySince"), o.now)};
    if (Wide(o)) {
      std::string reason = Str(c, "reason");
      if (reason.empty()) reason = Str(At(c, "problem"), "reason");
      row.insert(row.end(), {Str(c, "namespaces"), Str(c, "watchErrors"), reason});
    }
    t.Add(std::move(row));
  }
  PrintOrSayNone(t, o, s, "No clusters found.");
  return Status::Ok();
}

Status Snapshots(Client& client, const SnapshotsArgs& args, const OutputOptions& o, Streams s) {
  Query q;
  if (args.limit) q.Add("limit", std::to_string(*args.limit));
  q.Add("continue", args.continue_token);
  auto r = client.Kubefold("/api/v1/snapshots" + q.str());
  if (!r.ok()) return r.status();
  if (Formatted(o)) return Emit(**r, o, s.out);
  auto doc = ReadJson(**r);
  if (!doc.ok()) return doc.status();
  std::vector<std::string> headers = {"SEQ", "TIME", "WORKLOADS", "PINS", "PINNED-BY"};
  if (Wide(o)) headers.push_back("VECTOR");
  Table t(headers);
  for (const auto& item : At(*doc, "items")) {
    const std::string workloads = Str(item, "workloads");
    std::vector<Cell> row = {Str(item, "seq"), Str(item, "time"), workloads, Str(item, "pins"),
                             Join(At(item, "pinnedBy"), ",")};
    if (Wide(o)) row.push_back(VectorText(At(item, "vector")));
    t.Add(std::move(row));
  }
  PrintOrSayNone(t, o, s, "No snapshots found.");
  if (At(*doc, "continue").is_string()) {
    s.err << "More snapshots: --continue " << At(*doc, "continue").get<std::string>() << '\n';
  }
  return Status::Ok();
}

Status Get(Client& client, const GetArgs& args, const OutputOptions& o, Streams s) {
  Query q;
  std::string path;
  if (!args.at_vector.empty() || !args.at_time.empty()) {
    path = "/api/v1/snapshots/at";
    q.Add("vector", args.at_vector).Add("time", args.at_time);
  } else {
    path = "/api/v1/snapshots/" + kube::PercentEncode(args.snapshot);
  }
  q.Add("cluster", args.cluster).Add("namespace", args.ns).Add("kind", args.kind);
  if (args.full && Formatted(o)) q.Add("full", "true");
  auto r = client.Kubefold(path + q.str());
  if (!r.ok()) return r.status();
  if (Formatted(o)) return Emit(**r, o, s.out);
  std::vector<std::string> headers = {"CLUSTER", "NAMESPACE", "KIND", "NAME", "DESIRED", "READY", "AVAILABLE"};
  if (Wide(o)) headers.insert(headers.end(), {"GENERATION", "OBSERVED", "COUNTER"});
  Table t(headers);
  auto rest = ParseStreamed(**r, "items", [&](const Json& w) {
    std::vector<Cell> row = {Str(w, "cluster"),         Str(w, "namespace"),     Str(w, "kind"),
                             Str(w, "name"),            Str(w, "desiredReplicas"), Str(w, "readyReplicas"),
                             Str(w, "availableReplicas")};
    if (Wide(o)) row.insert(row.end(), {Str(w, "generation"), Str(w, "observedGeneration"), Str(w, "counter")});
    t.Add(std::move(row));
  });
  if (!rest.ok()) return rest.status();
  PrintOrSayNone(t, o, s, "No workloads found in snapshot " + Str(At(*rest, "snapshot"), "seq") + ".");
  return Status::Ok();
}

Status Diff(Client& client, const DiffArgs& args, const OutputOptions& o, Streams s) {
  Query q;
  q.Add("from", args.from).Add("to", args.to).Add("cluster", args.cluster).Add("namespace", args.ns);
  auto r = client.Kubefold("/api/v1/diff" + q.str());
  if (!r.ok()) return r.status();
  if (Formatted(o)) return Emit(**r, o, s.out);
  return DiffTable(**r, o, s);
}

Status Audits(Client& client, const AuditArgs& args, const OutputOptions& o, Streams s) {
  const std::string base = args.all_namespaces
                               ? std::string("/apis/kubefold.io/v1alpha1/failoveraudits")
                               : "/apis/kubefold.io/v1alpha1/namespaces/" + kube::PercentEncode(args.ns) +
                                     "/failoveraudits";
  // Pages of 500, as kubectl reads a list (--chunk-size), merged into one.
  Json list;
  std::string token;
  do {
    Query q;
    q.Add("limit", "500").Add("continue", token);
    auto page_text = client.Host(base + q.str());
    if (!page_text.ok()) return page_text.status();
    auto page = ParseJson(*page_text);
    if (!page.ok()) return page.status();
    token = Str(At(*page, "metadata"), "continue");
    if (list.is_null()) {
      list = std::move(*page);
      if (!list["items"].is_array()) list["items"] = Json::array();
    } else if (At(*page, "items").is_array()) {
      for (auto& item : (*page)["items"]) list["items"].push_back(std::move(item));
    }
  } while (!token.empty());
  if (list["metadata"].is_object()) {
    list["metadata"].erase("continue");
    list["metadata"].erase("remainingItemCount");
  }
  if (Formatted(o)) return EmitText(list.dump(), o, s.out);
  Table t(AuditHeaders(args.all_namespaces));
  for (const auto& a : list["items"]) t.Add(AuditRow(a, args.all_namespaces, o));
  PrintOrSayNone(t, o, s,
                 args.all_namespaces ? std::string("No resources found")
                                     : "No resources found in " + args.ns + " namespace.");
  return Status::Ok();
}

Status Audit(Client& client, const AuditArgs& args, const OutputOptions& o, Streams s) {
  auto text = client.Host("/apis/kubefold.io/v1alpha1/namespaces/" + kube::PercentEncode(args.ns) +
                          "/failoveraudits/" + kube::PercentEncode(args.name));
  if (!text.ok()) return text.status();
  const std::string diff_path =
      "/api/v1/audits/" + kube::PercentEncode(args.ns) + "/" + kube::PercentEncode(args.name) + "/diff";
  if (Formatted(o)) {
    if (!args.diff) return EmitText(*text, o, s.out);
    // {"audit": <the FailoverAudit>, "diff": <its Diff>}
    auto r = client.Kubefold(diff_path);
    if (!r.ok()) return r.status();
    std::ostringstream diff;
    diff << (*r)->body().rdbuf();
    if (Status e = (*r)->error(); !e.ok()) return e;
    return EmitText("{\"audit\":" + *text + ",\"diff\":" + diff.str() + "}", o, s.out);
  }
  auto audit = ParseJson(*text);
  if (!audit.ok()) return audit.status();
  Table t(AuditHeaders(false));
  t.Add(AuditRow(*audit, false, o));
  t.Print(s.out, o.color);
  if (!args.diff) return Status::Ok();
  auto r = client.Kubefold(diff_path);
  if (!r.ok()) return r.status();
  s.out << '\n';
  return DiffTable(**r, o, s);
}

Status WhatIf(Client& client, const std::string& cluster, const OutputOptions& o, Streams s) {
  auto r = client.Kubefold("/api/v1/whatif" + Query().Add("cluster", cluster).str());
  if (!r.ok()) return r.status();
  if (Formatted(o)) return Emit(**r, o, s.out);
  auto doc = ReadJson(**r);
  if (!doc.ok()) return doc.status();
  std::vector<std::string> headers = {"POLICY", "NAMESPACE", "KIND", "NAME", "FROM", "TO", "ACTION"};
  if (Wide(o)) headers.push_back("REASON");
  Table t(headers);
  size_t applies = 0;
  for (const auto& m : At(*doc, "moves")) {
    const std::string action = Str(m, "action");
    applies += action == "Apply";
    std::vector<Cell> row = {Str(m, "policy"), Str(m, "namespace"), Str(m, "kind"), Str(m, "name"),
                             Str(m, "from"),   Str(m, "to"),        Cell(action, action == "None" ? Color::kRed : Color::kNone)};
    if (Wide(o)) row.push_back(Str(m, "reason"));
    t.Add(std::move(row));
  }
  const Json& snap = At(*doc, "snapshot");
  const size_t policies = At(*doc, "policies").is_number_unsigned() ? At(*doc, "policies").get<size_t>() : 0;
  s.out << "if " << cluster << " failed at seq " << Str(snap, "seq") << " (" << Str(snap, "time")
        << "): " << Plural(policies, "policy lists", "policies list") << " it, "
        << Plural(applies, "workload", "workloads") << " would move\n";
  if (!t.empty()) t.Print(s.out, o.color);
  return Status::Ok();
}

Status Version(Client* client, const Status& why, bool client_only, const OutputOptions& o, Streams s) {
  const Json mine = {{"version", KUBEFOLD_VERSION}, {"gitCommit", KUBEFOLD_GIT_COMMIT},
                     {"compiler", std::string("g++ ") + __VERSION__}};
  Json server;
  Status status = why;
  if (!client_only && client) {
    auto r = client->Kubefold("/version");
    if (r.ok()) {
      auto doc = ReadJson(**r);
      if (doc.ok()) {
        server = std::move(*doc);
      } else {
        status = doc.status();
      }
    } else {
      status = r.status();
    }
  }
  if (client_only) status = Status::Ok();
  if (Formatted(o)) {
    Json out = {{"clientVersion", mine}};
    if (!server.is_null()) out["serverVersion"] = server;
    Status st = EmitText(out.dump(), o, s.out);
    return status.ok() ? st : status;
  }
  s.out << "Client Version: " << Str(mine, "version") << " (commit " << Str(mine, "gitCommit") << ")\n";
  if (!server.is_null()) {
    s.out << "Server Version: " << Str(server, "version") << " (commit " << Str(server, "gitCommit") << ", "
          << Str(server, "compiler") << ")\n";
  }
  return status;
}

}  // namespace kubefold::plugin
