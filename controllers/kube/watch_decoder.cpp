#include "controllers/kube/watch_decoder.h"

#include <algorithm>
#include <exception>
#include <nlohmann/json.hpp>
#include <utility>

namespace kubefold::kube {

namespace {

using nlohmann::json;

constexpr std::string_view kLastApplied = "kubectl.kubernetes.io/last-applied-configuration";
constexpr std::string_view kInitialEventsEnd = "k8s.io/initial-events-end";

// Parses `text`, dropping the noise listed in the header as it goes (the
// dropped values are scanned but never built) and refusing deep nesting.
// Only the workload's own metadata is pruned, not metadata nested in it (a
// pod template's is the user's content): its children sit at
// `metadata_child_depth` (2 for a bare object, 3 in a watch event, 4 for a
// list item). The path of keys is tracked because the callback sees one key
// at a time.
class PruningParser {
 public:
  explicit PruningParser(int metadata_child_depth) : metadata_child_depth_(metadata_child_depth) {}

  Result<json> Parse(std::string_view text, std::string_view what) {
    keys_.assign(8, std::string());
    too_deep_ = false;
    json out;
    try {
      out = json::parse(
          text.begin(), text.end(),
          [this](int depth, json::parse_event_t event, json& parsed) { return Keep(depth, event, parsed); },
          /*allow_exceptions=*/true, /*ignore_comments=*/false);
    } catch (const json::parse_error& e) {
      return InvalidArgument(std::string(what) + " is not valid JSON: " + Explain(e));
    } catch (const std::exception& e) {
      return InvalidArgument(std::string(what) + " could not be parsed: " + e.what());
    }
    if (too_deep_) {
      return InvalidArgument(std::string(what) + " nests deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    return out;
  }

 private:
  static std::string Explain(const json::parse_error& e) {
    // nlohmann's message starts "[json.exception.parse_error.101] parse error at line 1, column 5: ...".
    std::string m = e.what();
    if (auto p = m.find("] "); p != std::string::npos) m.erase(0, p + 2);
    return m;
  }

  const std::string& KeyAt(int depth) const {
    static const std::string kNone;
    return depth >= 0 && static_cast<size_t>(depth) < keys_.size() ? keys_[static_cast<size_t>(depth)] : kNone;
  }

  bool Keep(int depth, json::parse_event_t event, json& parsed) {
    if (depth > kMaxDepth) {
      too_deep_ = true;
      return false;
    }
    const auto d = static_cast<size_t>(depth);
    switch (event) {
      case json::parse_event_t::array_start:
        // Elements of an array have no key of their own.
        if (keys_.size() <= d + 1) keys_.resize(d + 2);
        keys_[d + 1].clear();
        return true;
      case json::parse_event_t::key: {
        if (keys_.size() <= d) keys_.resize(d + 1);
        keys_[d] = parsed.get_ref<const std::string&>();
        const std::string& key = keys_[d];
        const std::string& parent = KeyAt(depth - 1);
        if (depth == metadata_child_depth_ && parent == "metadata" &&
            (key == "managedFields" || key == "selfLink")) {
          return false;
        }
        if (depth == metadata_child_depth_ + 1 && parent == "annotations" && key == kLastApplied &&
            KeyAt(depth - 2) == "metadata") {
          return false;
        }
        return true;
      }
      default:
        return true;
    }
  }

  const int metadata_child_depth_;
  std::vector<std::string> keys_;
  bool too_deep_ = false;
};

std::string_view TypeName(const json& v) {
  switch (v.type()) {
    case json::value_t::null: return "null";
    case json::value_t::object: return "an object";
    case json::value_t::array: return "an array";
    case json::value_t::string: return "a string";
    case json::value_t::boolean: return "a boolean";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned: return "an integer";
    case json::value_t::number_float: return "a number with a fraction";
    default: return "a value of another type";
  }
}

const json* Member(const json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  return it == obj.end() ? nullptr : &*it;
}

// An optional string member; an error when present with another type.
Result<std::string> OptionalString(const json& obj, const char* key, std::string_view path) {
  const json* v = Member(obj, key);
  if (v == nullptr || v->is_null()) return std::string();
  if (!v->is_string()) {
    return InvalidArgument(std::string(path) + ": expected a string, got " + std::string(TypeName(*v)));
  }
  return v->get<std::string>();
}

// An optional integer member within [lo, hi]; nullopt when absent.
Result<std::optional<int64_t>> OptionalInt(const json& obj, const char* key, std::string_view path, int64_t lo,
                                           int64_t hi) {
  const json* v = Member(obj, key);
  if (v == nullptr || v->is_null()) return std::optional<int64_t>();
  if (v->is_number_unsigned()) {
    uint64_t u = v->get<uint64_t>();
    if (u > static_cast<uint64_t>(hi)) {
      return InvalidArgument(std::string(path) + ": " + std::to_string(u) + " is out of range");
    }
    return std::optional<int64_t>(static_cast<int64_t>(u));
  }
  if (!v->is_number_integer()) {
    return InvalidArgument(std::string(path) + ": expected an integer, got " + std::string(TypeName(*v)));
  }
  int64_t i = v->get<int64_t>();
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
Result<state::WorkloadSummary> Summarize(const json& obj, const ResourceType& t) {
  constexpr int64_t kI32Min = INT32_MIN, kI32Max = INT32_MAX;
  state::WorkloadSummary s;
  const json* meta = Member(obj, "metadata");
  const json* spec = Member(obj, "spec");
  const json* status = Member(obj, "status");
  const bool builtin = IsBuiltinWorkload(t);
  const bool daemonset = builtin && t.kind == "DaemonSet";
  const int64_t absent_count = builtin ? 0 : state::WorkloadSummary::kUnset;

  auto gen = OptionalInt(meta ? *meta : json(), "generation", "metadata.generation", 0, INT64_MAX);
  if (!gen.ok()) return gen.status();
  if (*gen) s.generation = **gen;

  auto observed = OptionalInt(status ? *status : json(), "observedGeneration", "status.observedGeneration", 0,
                              INT64_MAX);
  if (!observed.ok()) return observed.status();
  s.observed_generation = observed->value_or(absent_count);

  const char* desired_field = daemonset ? "desiredNumberScheduled" : "replicas";
  const json* desired_in = daemonset ? status : spec;
  std::string desired_path = std::string(daemonset ? "status." : "spec.") + desired_field;
  auto desired = OptionalInt(desired_in ? *desired_in : json(), desired_field, desired_path, 0, kI32Max);
  if (!desired.ok()) return desired.status();
  s.desired_replicas = static_cast<int32_t>(desired->value_or(daemonset ? absent_count : state::WorkloadSummary::kUnset));

  const char* ready_field = daemonset ? "numberReady" : "readyReplicas";
  auto ready = OptionalInt(status ? *status : json(), ready_field, std::string("status.") + ready_field, kI32Min,
                           kI32Max);
  if (!ready.ok()) return ready.status();
  s.ready_replicas = static_cast<int32_t>(ready->value_or(absent_count));

  const char* available_field = daemonset ? "numberAvailable" : "availableReplicas";
  auto available = OptionalInt(status ? *status : json(), available_field, std::string("status.") + available_field,
                               kI32Min, kI32Max);
  if (!available.ok()) return available.status();
  s.available_replicas = static_cast<int32_t>(available->value_or(absent_count));
  return s;
}

// Turns a parsed (already pruned) object into a DecodedObject. `what` names
// the object in errors ("watch event ADDED", "list item 3").
Result<DecodedObject> FromJson(json& obj, const ResourceType& type, std::string_view what) {
  const std::string where = std::string(what) + " (" + type.ApiVersion() + " " + type.kind + ")";
  if (!obj.is_object()) return InvalidArgument(where + ": expected an object, got " + std::string(TypeName(obj)));
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
  const json* meta = Member(obj, "metadata");
  if (meta == nullptr || !meta->is_object()) return InvalidArgument(where + ": metadata is missing");
  auto name = OptionalString(*meta, "name", "metadata.name");
  if (!name.ok()) return InvalidArgument(where + ": " + name.status().message());
  if (name->empty()) return InvalidArgument(where + ": metadata.name is missing");
  const std::string named = where + " \"" + *name + "\"";
  DecodedObject out;
  auto ns = OptionalString(*meta, "namespace", "metadata.namespace");
  if (!ns.ok()) return InvalidArgument(named + ": " + ns.status().message());
  auto rv = OptionalString(*meta, "resourceVersion", "metadata.resourceVersion");
  if (!rv.ok()) return InvalidArgument(named + ": " + rv.status().message());
  auto uid = OptionalString(*meta, "uid", "metadata.uid");
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
  // The stored form always says what it is, like a watch object does.
  if (api_version->empty()) obj["apiVersion"] = type.ApiVersion();
  if (kind->empty()) obj["kind"] = type.kind;
  try {
    out.workload.object_json = obj.dump();
  } catch (const std::exception& e) {
    return InvalidArgument(named + ": cannot be serialised: " + e.what());
  }
  if (out.workload.object_json.size() > state::kMaxObjectBytes) {
    return InvalidArgument(named + ": the pruned object is " + std::to_string(out.workload.object_json.size()) +
                           " bytes; at most 64 MiB are allowed");
  }
  return out;
}

ApiStatus StatusFromJson(const json& obj) {
  ApiStatus s;
  if (const json* code = Member(obj, "code"); code != nullptr && code->is_number_integer()) {
    int64_t c = code->get<int64_t>();
    if (c >= 0 && c <= 999) s.code = static_cast<int32_t>(c);
  }
  if (const json* r = Member(obj, "reason"); r != nullptr && r->is_string()) s.reason = r->get<std::string>();
  if (const json* m = Member(obj, "message"); m != nullptr && m->is_string()) s.message = m->get<std::string>();
  if (const json* details = Member(obj, "details")) {
    if (const json* ra = Member(*details, "retryAfterSeconds"); ra != nullptr && ra->is_number_integer()) {
      s.retry_after_seconds = ra->get<int64_t>();
    }
  }
  return s;
}

Result<EventType> ParseEventType(const json& ev) {
  const json* t = Member(ev, "type");
  if (t == nullptr) return InvalidArgument("watch event has no \"type\"");
  if (!t->is_string()) return InvalidArgument("watch event \"type\" is " + std::string(TypeName(*t)) + ", not a string");
  const auto& name = t->get_ref<const std::string&>();
  if (name == "ADDED") return EventType::kAdded;
  if (name == "MODIFIED") return EventType::kModified;
  if (name == "DELETED") return EventType::kDeleted;
  if (name == "BOOKMARK") return EventType::kBookmark;
  if (name == "ERROR") return EventType::kError;
  std::string shown = name.size() > 64 ? name.substr(0, 64) + "..." : name;
  return InvalidArgument("watch event has unknown type \"" + shown +
                         "\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)");
}

}  // namespace

bool IsResourceExpired(const ApiStatus& s) { return s.code == 410 && (s.reason == "Expired" || s.reason == "Gone"); }

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
  PruningParser parser(3);  // {"object":{"metadata":{...}}}
  auto parsed = parser.Parse(line, "watch line");
  if (!parsed.ok()) return parsed.status();
  json& ev = *parsed;
  if (!ev.is_object()) return InvalidArgument("watch line is " + std::string(TypeName(ev)) + ", not an event object");
  auto type_or = ParseEventType(ev);
  if (!type_or.ok()) return type_or.status();
  WatchEvent out;
  out.type = *type_or;
  const std::string what = "watch event " + std::string(EventTypeName(out.type));
  auto it = ev.find("object");
  if (it == ev.end() || !it->is_object()) {
    return InvalidArgument(what + ": \"object\" is " + (it == ev.end() ? "missing" : std::string(TypeName(*it))));
  }
  json& obj = *it;
  switch (out.type) {
    case EventType::kError:
      out.status = StatusFromJson(obj);
      return out;
    case EventType::kBookmark: {
      // Only the resume point and annotations count; the rest may be any
      // zero-value noise a typed server emits.
      const json* meta = Member(obj, "metadata");
      auto rv = meta ? OptionalString(*meta, "resourceVersion", "metadata.resourceVersion")
                     : Result<std::string>(std::string());
      if (!rv.ok()) return InvalidArgument(what + ": " + rv.status().message());
      if (rv->empty()) return InvalidArgument(what + ": metadata.resourceVersion is missing");
      out.resource_version = std::move(*rv);
      if (const json* ann = meta ? Member(*meta, "annotations") : nullptr) {
        const json* end = Member(*ann, std::string(kInitialEventsEnd).c_str());
        out.initial_events_end = end != nullptr && end->is_string() && end->get_ref<const std::string&>() == "true";
      }
      return out;
    }
    default: {
      auto decoded = FromJson(obj, type, what);
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
  PruningParser parser(2);  // {"metadata":{...}}
  auto parsed = parser.Parse(text, "object");
  if (!parsed.ok()) return parsed.status();
  return FromJson(*parsed, type, "object");
}

Result<ListPage> DecodeList(std::string_view body, const ResourceType& type) {
  PruningParser parser(4);  // {"items":[{"metadata":{...}}]}
  auto parsed = parser.Parse(body, type.kind + "List body");
  if (!parsed.ok()) return parsed.status();
  json& list = *parsed;
  const std::string what = type.kind + "List";
  if (!list.is_object()) return InvalidArgument(what + " body is " + std::string(TypeName(list)) + ", not an object");
  ListPage page;
  if (const json* meta = Member(list, "metadata")) {
    auto rv = OptionalString(*meta, "resourceVersion", "metadata.resourceVersion");
    if (!rv.ok()) return InvalidArgument(what + ": " + rv.status().message());
    auto cont = OptionalString(*meta, "continue", "metadata.continue");
    if (!cont.ok()) return InvalidArgument(what + ": " + cont.status().message());
    auto remaining = OptionalInt(*meta, "remainingItemCount", "metadata.remainingItemCount", 0, INT64_MAX);
    if (!remaining.ok()) return InvalidArgument(what + ": " + remaining.status().message());
    page.resource_version = std::move(*rv);
    page.continue_token = std::move(*cont);
    page.remaining_item_count = *remaining;
  }
  if (page.resource_version.empty()) return InvalidArgument(what + ": metadata.resourceVersion is missing");
  auto items = list.find("items");
  if (items == list.end() || items->is_null()) return page;
  if (!items->is_array()) return InvalidArgument(what + ": items is " + std::string(TypeName(*items)) + ", not an array");
  page.items.reserve(items->size());
  for (size_t i = 0; i < items->size(); ++i) {
    auto item = FromJson((*items)[i], type, what + " item " + std::to_string(i));
    if (!item.ok()) return item.status();
    page.items.push_back(std::move(*item));
  }
  return page;
}

ApiStatus DecodeStatus(std::string_view body, int32_t http_code) {
  ApiStatus s;
  try {
    json obj = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
    if (obj.is_object()) s = StatusFromJson(obj);
  } catch (const std::exception&) {
    // Not JSON (or not parseable): keep the text below.
  }
  if (s.code == 0) s.code = http_code;
  if (s.message.empty()) {
    std::string_view first = body.substr(0, body.find('\n'));
    if (!first.empty() && first.back() == '\r') first.remove_suffix(1);
    s.message = std::string(first.substr(0, 256));
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
