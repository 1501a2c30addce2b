#include "controllers/kube/watch_decoder.h"
#include "controllers/kube/internal/json_string.h"
#include "controllers/kube/internal/utf8.h"

#include <simdjson.h>

#include <algorithm>
#include <unordered_set>
#include <utility>

namespace kubefold::kube {

namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";
constexpr std::string_view kInitialEventsEnd = "k8s.io/initial-events-end";

// One parser per thread, reused: simdjson parses into buffers it keeps and
// grows to the largest document seen (bounded by the framer's line limit).
// Depth is limited here, so deeply nested input fails fast.
simdjson::dom::parser NewParser() {
  simdjson::dom::parser p;
  // On failure (no memory) parse() reports it; the depth limit then stays
  // simdjson's default.
  simdjson::error_code ignored = p.allocate(64 * 1024, kMaxDepth);
  (void)ignored;
  return p;
}

simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser = NewParser();
  return parser;
}

// A list page of 500 objects needs buffers of several MB, which a watch line
// never does; after a document this large the thread's parser gives its
// buffers back (each reflector thread would otherwise keep ~30 MB for good).
constexpr size_t kReleaseAfterBytes = 1u << 20;
void ReleaseLargeParser(size_t parsed_bytes) {
  if (parsed_bytes > kReleaseAfterBytes) Parser() = NewParser();
}

Result<element> Parse(std::string_view text, std::string_view what) {
  element doc;
  simdjson::error_code err = Parser().parse(text.data(), text.size()).get(doc);
  if (err == simdjson::DEPTH_ERROR) {
    return InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(kMaxDepth) + " levels");
  }
  if (err == simdjson::STRING_ERROR) {
    return InvalidArgument(std::string(what) + " is not valid JSON: " + simdjson::error_message(err) +
                           " (an invalid escape, or an unpaired UTF-16 surrogate)");
  }
  if (err != simdjson::SUCCESS) {
    return InvalidArgument(std::string(what) + " is not valid JSON: " + simdjson::error_message(err));
  }
  return doc;
}

std::string_view TypeName(element v) {
  switch (v.type()) {
    case element_type::NULL_VALUE: return "null";
    case element_type::OBJECT: return "an object";
    case element_type::ARRAY: return "an array";
    case element_type::STRING: return "a string";
    case element_type::BOOL: return "a boolean";
    case element_type::INT64:
    case element_type::UINT64: return "an integer";
    case element_type::DOUBLE: return "a number with a fraction";
  }
  return "a value of another type";
}

// The member `key` of `obj` (an object, or not: then nothing), or nullopt.
std::optional<element> Member(element obj, std::string_view key) {
  if (obj.type() != element_type::OBJECT) return std::nullopt;
  element v;
  if (object(obj).at_key(key).get(v) != simdjson::SUCCESS) return std::nullopt;
  return v;
}

Result<std::string> OptionalString(std::optional<element> obj, std::string_view key, std::string_view path) {
  if (!obj) return std::string();
  auto v = Member(*obj, key);
  if (!v || v->is_null()) return std::string();
  std::string_view s;
  if (v->get_string().get(s) != simdjson::SUCCESS) {
    return InvalidArgument(std::string(path) + ": expected a string, got " + std::string(TypeName(*v)));
  }
  return std::string(s);
}

Result<std::optional<int64_t>> OptionalInt(std::optional<element> obj, std::string_view key, std::string_view path,
                                           int64_t lo, int64_t hi) {
  if (!obj) return std::optional<int64_t>();
  auto v = Member(*obj, key);
  if (!v || v->is_null()) return std::optional<int64_t>();
  if (v->type() == element_type::UINT64) {
    uint64_t u = v->get_uint64().value_unsafe();
    if (u > static_cast<uint64_t>(hi)) {
      return InvalidArgument(std::string(path) + ": " + std::to_string(u) + " is out of range");
    }
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  if (v->type() != element_type::INT64) {
    return InvalidArgument(std::string(path) + ": expected an integer, got " + std::string(TypeName(*v)));
  }
  int64_t i = v->get_int64().value_unsafe();
  if (i < lo || i > hi) return InvalidArgument(std::string(path) + ": " + std::to_string(i) + " is out of range");
  return std::optional<int64_t>(i);
}

bool IsBuiltinWorkload(const ResourceType& t) {
  return t.group == "apps" &&
         (t.kind == "Deployment" || t.kind == "StatefulSet" || t.kind == "ReplicaSet" || t.kind == "DaemonSet");
}

// The summary the reconciler reads. Built-in workload kinds omit zero
// counts from status (omitempty), so an absent count there is 0; for other
// kinds an absent field stays unset. spec.replicas is a pointer defaulted
// by the server: absent means unset.
Result<state::WorkloadSummary> Summarize(element obj, const ResourceType& t) {
  constexpr int64_t kI32Min = INT32_MIN, kI32Max = INT32_MAX;
  state::WorkloadSummary s;
  const auto meta = Member(obj, "metadata");
  const auto spec = Member(obj, "spec");
  const auto status = Member(obj, "status");
  const bool builtin = IsBuiltinWorkload(t);
  const bool daemonset = builtin && t.kind == "DaemonSet";
  const int64_t absent_count = builtin ? 0 : state::WorkloadSummary::kUnset;

  auto gen = OptionalInt(meta, "generation", "metadata.generation", 0, INT64_MAX);
  if (!gen.ok()) return gen.status();
  if (*gen) s.generation = **gen;

  auto observed = OptionalInt(status, "observedGeneration", "status.observedGeneration", 0, INT64_MAX);
  if (!observed.ok()) return observed.status();
  s.observed_generation = observed->value_or(absent_count);

  const char* desired_field = daemonset ? "desiredNumberScheduled" : "replicas";
  const std::string desired_path = std::string(daemonset ? "status." : "spec.") + desired_field;
  auto desired = OptionalInt(daemonset ? status : spec, desired_field, desired_path, 0, kI32Max);
  if (!desired.ok()) return desired.status();
  s.desired_replicas =
      static_cast<int32_t>(desired->value_or(daemonset ? absent_count : state::WorkloadSummary::kUnset));

  const char* ready_field = daemonset ? "numberReady" : "readyReplicas";
  auto ready = OptionalInt(status, ready_field, std::string("status.") + ready_field, kI32Min, kI32Max);
  if (!ready.ok()) return ready.status();
  s.ready_replicas = static_cast<int32_t>(ready->value_or(absent_count));

  const char* available_field = daemonset ? "numberAvailable" : "availableReplicas";
  auto available = OptionalInt(status, available_field, std::string("status.") + available_field, kI32Min, kI32Max);
  if (!available.ok()) return available.status();
  s.available_replicas = static_cast<int32_t>(available->value_or(absent_count));
  return s;
}

// JSON string literals: simdjson hands out valid UTF-8.
using internal::AppendJsonString;

// Writes the separator and `"key":`; the value follows.
void AppendKey(std::string& out, bool& first, std::string_view key) {
  if (!first) out += ',';
  first = false;
  AppendJsonString(out, key);
  out += ':';
}

void AppendMember(std::string& out, bool& first, std::string_view key, element value) {
  AppendKey(out, first, key);
  out += simdjson::minify(value);
}

// The object, compact, without the noise in its own metadata (nested
// metadata, such as a pod template's, is the user's content and stays), and
// always with apiVersion and kind first, from `type` (checked against the
// object's own by the caller). One canonical form, whatever the source:
// list items carry no type fields, watch events carry them in Go's order
// (kind first), and the same object must give the same bytes either way or
// every relist would look like a change.
std::string SerializePruned(element obj, const ResourceType& type) {
  std::string out;
  out.reserve(4096);
  out += "{\"apiVersion\":";
  AppendJsonString(out, type.ApiVersion());
  out += ",\"kind\":";
  AppendJsonString(out, type.kind);
  bool first = false;
  for (auto field : object(obj)) {
    if (field.key == "apiVersion" || field.key == "kind") continue;
    if (field.key != "metadata" || field.value.type() != element_type::OBJECT) {
      AppendMember(out, first, field.key, field.value);
      continue;
    }
    AppendKey(out, first, "metadata");
    out += '{';
    bool mfirst = true;
    for (auto m : object(field.value)) {
      if (m.key == "managedFields" || m.key == "selfLink") continue;
      if (m.key != "annotations" || m.value.type() != element_type::OBJECT) {
        AppendMember(out, mfirst, m.key, m.value);
        continue;
      }
      AppendKey(out, mfirst, "annotations");
      out += '{';
      bool afirst = true;
      for (auto a : object(m.value)) {
        if (a.key != kLastApplied) AppendMember(out, afirst, a.key, a.value);
      }
      out += '}';
    }
    out += '}';
  }
  out += '}';
  return out;
}

// The first key that `obj` holds twice, or "". API servers never send
// duplicates; where kubefold interprets keys (the object itself, its
// metadata and annotations) a duplicate would make the stored JSON mean
// something else than what was checked, so it is refused.
std::string_view DuplicateKey(element obj) {
  if (obj.type() != element_type::OBJECT) return {};
  std::unordered_set<std::string_view> seen;
  for (auto field : object(obj)) {
    if (!seen.insert(field.key).second) return field.key;
  }
  return {};
}

// Turns a parsed object into a DecodedObject. `what` names the object in
// errors ("watch event ADDED", "list item 3").
Result<DecodedObject> FromElement(element obj, const ResourceType& type, std::string_view what) {
  const std::string where = std::string(what) + " (" + type.ApiVersion() + " " + type.kind + ")";
  if (obj.type() != element_type::OBJECT) {
    return InvalidArgument(where + ": expected an object, got " + std::string(TypeName(obj)));
  }
  auto api_version = OptionalString(obj, "apiVersion", "apiVersion");
  if (!api_version.ok()) return InvalidArgument(where + ": " + api_version.status().message());
  auto kind = OptionalString(obj, "kind", "kind");
  if (!kind.ok()) return InvalidArgument(where + ": " + kind.status().message());
  if (!api_version->empty() && *api_version != type.ApiVersion()) {
    return InvalidArgument(where + ": apiVersion is \"" + *api_version + "\", expected \"" + type.ApiVersion() + "\"");
  }
  if (!kind->empty() && *kind != type.kind) {
    return InvalidArgument(where + ": kind is \"" + *kind + "\", expected \"" + type.kind + "\"");
  }
  const auto meta = Member(obj, "metadata");
  if (!meta || meta->type() != element_type::OBJECT) return InvalidArgument(where + ": metadata is missing");
  const auto annotations = Member(*meta, "annotations");
  for (auto [level, prefix] : {std::pair{std::optional<element>(obj), ""}, std::pair{meta, "metadata."},
                               std::pair{annotations, "metadata.annotations."}}) {
    if (!level) continue;
    if (std::string_view dup = DuplicateKey(*level); !dup.empty()) {
      return InvalidArgument(where + ": duplicate field \"" + prefix + std::string(dup) + "\"");
    }
  }
  auto name = OptionalString(meta, "name", "metadata.name");
  if (!name.ok()) return InvalidArgument(where + ": " + name.status().message());
  if (name->empty()) return InvalidArgument(where + ": metadata.name is missing");
  const std::string named = where + " \"" + *name + "\"";
  DecodedObject out;
  auto ns = OptionalString(meta, "namespace", "metadata.namespace");
  if (!ns.ok()) return InvalidArgument(named + ": " + ns.status().message());
  auto rv = OptionalString(meta, "resourceVersion", "metadata.resourceVersion");
  if (!rv.ok()) return InvalidArgument(named + ": " + rv.status().message());
  auto uid = OptionalString(meta, "uid", "metadata.uid");
  if (!uid.ok()) return InvalidArgument(named + ": " + uid.status().message());
  auto summary = Summarize(obj, type);
  if (!summary.ok()) return InvalidArgument(named + ": " + summary.status().message());

  out.ns = std::move(*ns);
  out.resource_version = std::move(*rv);
  out.uid = std::move(*uid);
  out.workload.key = state::WorkloadKey{type.group, type.kind, std::move(*name)};
  out.workload.summary = *summary;
  if (Status s = state::ValidateWorkload(out.ns, out.workload); !s.ok()) {
    return InvalidArgument(named + ": " + s.message());
  }
  out.workload.object_json = SerializePruned(obj, type);
  if (out.workload.object_json.size() > state::kMaxObjectBytes) {
    return InvalidArgument(named + ": the pruned object is " + std::to_string(out.workload.object_json.size()) +
                           " bytes; at most 64 MiB are allowed");
  }
  return out;
}

ApiStatus StatusFromElement(element obj) {
  ApiStatus s;
  if (auto code = Member(obj, "code"); code && code->type() == element_type::INT64) {
    int64_t c = code->get_int64().value_unsafe();
    if (c >= 0 && c <= 999) s.code = static_cast<int32_t>(c);
  } else if (code && code->type() == element_type::UINT64) {
    uint64_t c = code->get_uint64().value_unsafe();
    if (c <= 999) s.code = static_cast<int32_t>(c);
  }
  std::string_view text;
  if (auto r = Member(obj, "reason"); r && r->get_string().get(text) == simdjson::SUCCESS) s.reason = text;
  if (auto m = Member(obj, "message"); m && m->get_string().get(text) == simdjson::SUCCESS) s.message = text;
  if (auto details = Member(obj, "details")) {
    if (auto ra = Member(*details, "retryAfterSeconds"); ra && ra->type() == element_type::INT64) {
      s.retry_after_seconds = ra->get_int64().value_unsafe();
    }
    simdjson::dom::array causes;
    if (auto c = Member(*details, "causes"); c && c->get_array().get(causes) == simdjson::SUCCESS) {
      for (element cause : causes) {
        if (s.cause_reasons.size() == 16) break;
        std::string_view reason;
        if (auto r = Member(cause, "reason"); r && r->get_string().get(reason) == simdjson::SUCCESS) {
          s.cause_reasons.push_back(internal::ValidUtf8(reason, 256));
        }
      }
    }
  }
  return s;
}

Result<EventType> ParseEventType(element ev) {
  auto t = Member(ev, "type");
  if (!t) return InvalidArgument("watch event has no \"type\"");
  std::string_view name;
  if (t->get_string().get(name) != simdjson::SUCCESS) {
    return InvalidArgument("watch event \"type\" is " + std::string(TypeName(*t)) + ", not a string");
  }
  if (name == "ADDED") return EventType::kAdded;
  if (name == "MODIFIED") return EventType::kModified;
  if (name == "DELETED") return EventType::kDeleted;
  if (name == "BOOKMARK") return EventType::kBookmark;
  if (name == "ERROR") return EventType::kError;
  // Cut at a character boundary: the message must stay valid UTF-8.
  std::string shown = name.size() > 64 ? internal::ValidUtf8(name, 64) + "..." : std::string(name);
  return InvalidArgument("watch event has unknown type \"" + shown +
                         "\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)");
}

}  // namespace

bool IsResourceExpired(const ApiStatus& s) { return s.code == 410 && (s.reason == "Expired" || s.reason == "Gone"); }

bool IsTooLargeResourceVersion(const ApiStatus& s) {
  if (s.code != 504) return false;
  if (std::find(s.cause_reasons.begin(), s.cause_reasons.end(), "ResourceVersionTooLarge") != s.cause_reasons.end()) {
    return true;
  }
  return s.reason == "Timeout" && s.message.find("Too large resource version") != std::string::npos;
}

std::string_view EventTypeName(EventType t) {
  switch (t) {
    case EventType::kAdded: return "ADDED";
    case EventType::kModified: return "MODIFIED";
    case EventType::kDeleted: return "DELETED";
    case EventType::kBookmark: return "BOOKMARK";
    case EventType::kError: return "ERROR";
  }
  return "UNKNOWN";
}

Result<WatchEvent> DecodeWatchEvent(std::string_view line, const ResourceType& type) {
  auto parsed = Parse(line, "watch line");
  if (!parsed.ok()) return parsed.status();
  element ev = *parsed;
  if (ev.type() != element_type::OBJECT) {
    return InvalidArgument("watch line is " + std::string(TypeName(ev)) + ", not an event object");
  }
  auto type_or = ParseEventType(ev);
  if (!type_or.ok()) return type_or.status();
  WatchEvent out;
  out.type = *type_or;
  const std::string what = "watch event " + std::string(EventTypeName(out.type));
  auto obj = Member(ev, "object");
  if (!obj || obj->type() != element_type::OBJECT) {
    return InvalidArgument(what + ": \"object\" is " + (!obj ? "missing" : std::string(TypeName(*obj))));
  }
  switch (out.type) {
    case EventType::kError:
      out.status = StatusFromElement(*obj);
      return out;
    case EventType::kBookmark: {
      // Only the resume point and annotations count; the rest may be any
      // zero-value noise a typed server emits.
      const auto meta = Member(*obj, "metadata");
      auto rv = OptionalString(meta, "resourceVersion", "metadata.resourceVersion");
      if (!rv.ok()) return InvalidArgument(what + ": " + rv.status().message());
      if (rv->empty()) return InvalidArgument(what + ": metadata.resourceVersion is missing");
      out.resource_version = std::move(*rv);
      if (auto ann = meta ? Member(*meta, "annotations") : std::nullopt) {
        std::string_view end;
        auto v = Member(*ann, kInitialEventsEnd);
        out.initial_events_end = v && v->get_string().get(end) == simdjson::SUCCESS && end == "true";
      }
      return out;
    }
    default: {
      auto decoded = FromElement(*obj, type, what);
      if (!decoded.ok()) return decoded.status();
      if (decoded->resource_version.empty()) {
        return InvalidArgument(what + " \"" + decoded->workload.key.name + "\": metadata.resourceVersion is missing");
      }
      out.resource_version = decoded->resource_version;
      out.object = std::move(*decoded);
      return out;
    }
  }
}

Result<DecodedObject> DecodeObject(std::string_view text, const ResourceType& type) {
  auto parsed = Parse(text, "object");
  if (!parsed.ok()) return parsed.status();
  return FromElement(*parsed, type, "object");
}

static Result<ListPage> DecodeListImpl(std::string_view body, const ResourceType& type);

Result<ListPage> DecodeList(std::string_view body, const ResourceType& type) {
  auto page = DecodeListImpl(body, type);  // copies everything out of the parser
  ReleaseLargeParser(body.size());
  return page;
}

static Result<ListPage> DecodeListImpl(std::string_view body, const ResourceType& type) {
  const std::string what = type.kind + "List";
  auto parsed = Parse(body, what + " body");
  if (!parsed.ok()) return parsed.status();
  element list = *parsed;
  if (list.type() != element_type::OBJECT) {
    return InvalidArgument(what + " body is " + std::string(TypeName(list)) + ", not an object");
  }
  ListPage page;
  if (const auto meta = Member(list, "metadata")) {
    auto rv = OptionalString(meta, "resourceVersion", "metadata.resourceVersion");
    if (!rv.ok()) return InvalidArgument(what + ": " + rv.status().message());
    auto cont = OptionalString(meta, "continue", "metadata.continue");
    if (!cont.ok()) return InvalidArgument(what + ": " + cont.status().message());
    auto remaining = OptionalInt(meta, "remainingItemCount", "metadata.remainingItemCount", 0, INT64_MAX);
    if (!remaining.ok()) return InvalidArgument(what + ": " + remaining.status().message());
    page.resource_version = std::move(*rv);
    page.continue_token = std::move(*cont);
    page.remaining_item_count = *remaining;
  }
  // What is not a list must not pass for an empty one: the caller would
  // replace everything it holds with nothing (a Status answered with 200,
  // another object a proxy or a broken server sent).
  auto kind = OptionalString(list, "kind", "kind");
  if (!kind.ok()) return InvalidArgument(what + ": " + kind.status().message());
  if (!kind->empty() && !kind->ends_with("List")) {
    return InvalidArgument(what + ": kind is \"" + internal::ValidUtf8(*kind, 64) + "\", not a list");
  }
  if (page.resource_version.empty()) return InvalidArgument(what + ": metadata.resourceVersion is missing");
  auto items = Member(list, "items");
  if (!items) return InvalidArgument(what + ": items is missing");
  if (items->is_null()) return page;
  if (items->type() != element_type::ARRAY) {
    return InvalidArgument(what + ": items is " + std::string(TypeName(*items)) + ", not an array");
  }
  size_t i = 0;
  for (element item : simdjson::dom::array(*items)) {
    auto decoded = FromElement(item, type, what + " item " + std::to_string(i++));
    if (!decoded.ok()) return decoded.status();
    page.items.push_back(std::move(*decoded));
  }
  return page;
}

ApiStatus DecodeStatus(std::string_view body, int32_t http_code) {
  ApiStatus s;
  element doc;
  if (Parser().parse(body.data(), body.size()).get(doc) == simdjson::SUCCESS &&
      doc.type() == element_type::OBJECT) {
    s = StatusFromElement(doc);
  }
  if (s.code == 0) s.code = http_code;
  if (s.message.empty()) {
    std::string_view first = body.substr(0, body.find('\n'));
    if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
    // Whatever the bytes, the message is valid UTF-8: it ends up in logs,
    // conditions and Events, all JSON.
    s.message = internal::ValidUtf8(first, 256);
  }
  return s;
}

Status LineFramer::Feed(std::string_view chunk, FunctionRef<Status(std::string_view line)> on_line) {
  auto too_long = [&] {
    broken_ = true;
    return ResourceExhausted("watch line longer than " + std::to_string(max_line_bytes_) +
                             " bytes; the watch must be restarted");
  };
  if (broken_) return too_long();
  while (!chunk.empty()) {
    const size_t nl = chunk.find('\n');
    if (nl == std::string_view::npos) {
      if (partial_.size() + chunk.size() > max_line_bytes_) return too_long();
      partial_.append(chunk);
      return Status::Ok();
    }
    std::string_view piece = chunk.substr(0, nl);
    chunk.remove_prefix(nl + 1);
    if (partial_.size() + piece.size() > max_line_bytes_) return too_long();
    std::string_view line = piece;
    if (!partial_.empty()) {
      partial_.append(piece);
      line = partial_;
    }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    Status s = line.empty() ? Status::Ok() : on_line(line);
    partial_.clear();
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

}  // namespace kubefold::kube
