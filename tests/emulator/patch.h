// The object-patching engine of kube-emulator: how a Kubernetes API server
// turns a write into the stored object, as pure functions over JSON.
//
//   YamlToJson           a request body in YAML (application/apply-patch+yaml)
//   MergePatch           application/merge-patch+json (RFC 7386)
//   JsonPatch            application/json-patch+json (RFC 6902)
//   StrategicMergePatch  application/strategic-merge-patch+json (built-in kinds)
//   ServerSideApply      application/apply-patch+yaml, with field ownership
//   TrackUpdate          the managedFields bookkeeping of every other write
//
// Each reproduces what kube-apiserver v1.32 does, read from its sources:
// evanphx/json-patch v4 (merge and JSON patch), k8s.io/apimachinery
// strategicpatch (strategic merge), sigs.k8s.io/structured-merge-diff v4 and
// apiserver managedfields (apply, managedFields, conflicts), sigs.k8s.io/yaml
// over go-yaml v2 (YAML). Error codes, reasons and messages are the real
// server's; where the real message is generic (a failed JSON patch step is
// "the server rejected our request due to an error in our request") the
// specific cause is kept in PatchError::diagnostic for logs and tests.
//
// The field manager knows the list semantics (patchMergeKey / listType=map
// keys, sets, atomic lists and structs) of the built-in kinds Deployment,
// StatefulSet, DaemonSet, Pod, Node, Namespace, Secret, ConfigMap, Event,
// Lease and Service. Other kinds are custom resources: maps merge, lists are
// atomic unless KindHints names them.
//
// Nothing here does I/O, keeps state or reads a clock: times come in as
// arguments. Every function is reentrant and may be called from any thread;
// results are fresh values owned by the caller. No exception leaves the API.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

namespace kubefold::emulator {

using Json = nlohmann::ordered_json;

// One entry of a Status's details.causes.
struct PatchCause {
  std::string reason;   // e.g. "FieldManagerConflict", "FieldValueRequired"
  std::string message;  // e.g. `conflict with "mgr"`
  std::string field;    // e.g. ".spec.replicas", "fieldManager"
};

// An error the server turns into a Status body. `reason` is empty where the
// real server sends none (its StatusReasonUnknown, e.g. the 500s of
// structured-merge-diff), and kubectl then prints "Error from server: ...".
struct PatchError {
  int code = 500;           // 400, 409, 413, 415, 422 or 500
  std::string reason;       // "BadRequest", "Conflict", "Invalid", ...
  std::string message;      // Status.message, exactly as the real server words it
  std::vector<PatchCause> causes;
  std::string details_group;  // Status.details.group when the server sets it
  std::string details_kind;   // Status.details.kind when the server sets it
  // Why the operation failed when `message` is the server's generic text.
  // Not part of the wire format: for logs and tests only.
  std::string diagnostic;
};

// The result of a patch: the new object (or value) or the error to answer.
using PatchResult = std::variant<Json, PatchError>;

inline bool IsError(const PatchResult& result) {
  return std::holds_alternative<PatchError>(result);
}

// What the field manager needs to know about a kind beyond its name. The
// defaults suit the built-in kinds; custom resources describe their
// x-kubernetes-list-type lists here.
struct CustomListType {
  std::string path;               // dotted field path from the object root, e.g. "spec.members"
  std::vector<std::string> keys;  // x-kubernetes-list-map-keys; empty for listType=set
};
struct KindHints {
  // Whether the kind has a /status subresource (then the main resource does
  // not track status fields, and /status tracks nothing under spec).
  // nullopt: the built-in table; custom kinds default to true.
  std::optional<bool> status_subresource;
  std::vector<CustomListType> lists;  // custom kinds only; ignored for built-ins
};

// Parses one YAML document (JSON is YAML) as sigs.k8s.io/yaml does for a
// request body: plain scalars resolve as go-yaml v2 resolves them (true/false
// and also yes/no/on/off/y/n in any of their spellings, null/~/empty, decimal,
// 0x, 0o, 0b and leading-zero octal integers, floats, .inf/.nan), quoted and
// block scalars stay strings, integral floats become integers (as the YAML ->
// JSON -> object round trip makes them), map keys become strings, "<<" merges,
// a second document is ignored and an empty one is null.
// Errors: 400 BadRequest, message "error converting YAML to JSON: yaml: line
// N: <what>" (go-yaml's wording where it differs from yaml-cpp's); the apply
// handler of a real server prefixes it with "error decoding YAML: ".
// Allocates; O(size of the document).
[[nodiscard]] PatchResult YamlToJson(std::string_view text);

// Applies an RFC 7386 merge patch as evanphx/json-patch's MergePatch does
// (nulls delete keys and are pruned from added values, including objects
// inside added arrays). Errors: a null or scalar patch is 400 BadRequest
// "Invalid JSON Patch". An array patch returns the array, which the caller
// then fails to decode as an object, as the real server does.
// Allocates a copy of `target`; O(size of target + patch).
[[nodiscard]] PatchResult MergePatch(const Json& target, const Json& patch);

// Applies an RFC 6902 JSON patch as evanphx/json-patch v4 does, including its
// leniencies (replace of a missing object key adds it, negative array indices
// count from the end, a path need not start with "/").
// Errors: a patch that is not an array of objects is 400 BadRequest with Go's
// decoding message ("json: cannot unmarshal object into Go value of type
// jsonpatch.Patch"); more than 10000 operations is 413; a step that fails
// (missing path, bad index, failed test, unknown op) is 422 Invalid "the
// server rejected our request due to an error in our request", with the
// library's own message in `diagnostic`.
// Allocates a copy of `target`; O(operations x depth).
[[nodiscard]] PatchResult JsonPatch(const Json& target, const Json& patch);

// True for the kinds whose strategic merge metadata is known here. The server
// answers 415 UnsupportedMediaType to a strategic merge patch of any other
// kind, as a real server does for custom resources.
bool SupportsStrategicMergePatch(std::string_view kind);

// Applies a strategic merge patch as k8s.io/apimachinery's strategicpatch
// does on the server: lists merge by their patchMergeKey (containers by name,
// container ports by containerPort, Service ports by port, conditions by
// type, ...), lists without one are replaced, `$patch: replace|delete` on maps
// and list items, `$retainKeys`, `$setElementOrder/<list>`,
// `$deleteFromPrimitiveList/<list>`, null deletes (`$patch: merge` is refused,
// as the real server refuses it). `kind` selects the table;
// unknown fields merge as maps and replace as lists. The result has the nulls
// and "$" keys dropped that decoding into the Go type would drop.
// Errors: a patch that is not an object is 400 BadRequest; a malformed
// directive is 400 ("invalid patch format of setElementOrder list", ...);
// a merge-key violation is 500 with no reason, as the real server sends it
// ("map: map[image:x] does not contain declared merge key: name").
// Allocates; O(size of target x size of patch) in the worst case.
[[nodiscard]] PatchResult StrategicMergePatch(const Json& target, const Json& patch,
                                              std::string_view kind);

// A server-side apply request (PATCH with application/apply-patch+yaml).
struct ApplyRequest {
  const Json* live;          // the stored object; nullptr when apply creates it
  const Json& config;        // the applied configuration, already parsed
  std::string manager;       // ?fieldManager=, required
  bool force = false;        // ?force=true: take over conflicting fields
  std::string api_version;   // of the endpoint, e.g. "apps/v1"
  std::string kind;          // e.g. "Deployment"
  std::string time;          // RFC 3339, e.g. "2026-11-22T13:00:00Z", for the entry
  std::string subresource;   // "" or "status"
  KindHints hints = {};
};

// Server-side apply, as kube-apiserver's field manager and
// structured-merge-diff do it. Returns the new object with
// metadata.managedFields rewritten: the manager's Apply entry owns exactly the
// fields of `config`; fields it applied before and no longer applies are
// removed unless another manager owns them; fields that another manager owns
// and this apply changes are conflicts, unless `force` moves them to this
// manager. Entries are ordered as the real server orders them (Apply before
// Update, then by time, manager, apiVersion, subresource); more than 10 Update
// entries fold the oldest into "ancient-changes". When the manager is
// "kubectl" and the object carries kubectl's last-applied-configuration
// annotation, conflicts on fields that annotation still describes are taken
// over (lastAppliedManager: the upgrade from client-side apply) and the
// annotation is rewritten to `config` (lastAppliedUpdater).
// When nothing but managedFields timestamps would change, the live
// timestamps are kept. The result is not defaulted or validated: that, the
// status reset of the main resource and resourceVersion are the server's.
// Errors (the real server's codes and texts):
//   422 Invalid  PatchOptions.meta.k8s.io "" is invalid: fieldManager: ...
//   400 BadRequest  invalid object type: apps/v1, Kind=Deployment
//                   metadata.managedFields must be nil
//                   error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array ...
//   409 Conflict  Apply failed with 1 conflict: conflict with "mgr" using apps/v1: .spec.replicas
//                 (causes: FieldManagerConflict, `conflict with "mgr" using apps/v1`, ".spec.replicas")
//   500 (no reason)  failed to create typed patch object (ns/name; apps/v1, Kind=Deployment): ...duplicate entries for key [name="a"]
// Allocates; roughly O(n log n) in the size of the object and its field sets.
[[nodiscard]] PatchResult ServerSideApply(const ApplyRequest& request);

// managedFields bookkeeping for a create, update or non-apply patch, as
// FieldManager.UpdateNoErrors does: `manager` (see ResolveFieldManager) gets an
// Update entry owning the fields this write added or changed (all of them on
// a create, `old_object` == nullptr); those fields leave other managers'
// sets, fields the write removed leave every set, and empty entries go away.
// managedFields sent in `new_object` are honoured when valid and non-empty
// (an empty list, or one empty entry, resets them); on a subresource write
// the live ones always count. An update of an object that has no
// managedFields is not tracked. Server-owned fields (apiVersion, kind,
// metadata.name/namespace/uid/resourceVersion/generation/creationTimestamp/
// selfLink/managedFields) are never owned, nor is status on the main resource
// of a kind with a status subresource, nor spec on /status.
// When nothing but managedFields timestamps would change, the old timestamps
// are kept, so call it before setting resourceVersion and the like.
// Returns `new_object` with metadata.managedFields set (or removed) as the
// last key of metadata, where Go's ObjectMeta puts it; never fails: a
// malformed object comes back with managedFields removed, as the real server
// does. Allocates; O(n log n) in the size of the objects.
Json TrackUpdate(const Json* old_object, const Json& new_object, const std::string& manager,
                 const std::string& api_version, const std::string& time,
                 const std::string& subresource, const KindHints& hints = {});

// Validates the fieldManager and force query parameters as
// ValidatePatchOptions does: for apply the manager is required; it may not
// exceed 128 bytes or contain unprintable characters; force is forbidden on
// other patches. Returns the 422 Invalid error (details kind PatchOptions,
// group meta.k8s.io, one cause per problem), or nullopt when valid.
std::optional<PatchError> ValidatePatchOptions(std::string_view field_manager, bool apply,
                                               bool force_set);

// The manager recorded for a write without ?fieldManager=: the User-Agent up
// to its first '/', unprintable characters dropped, cut to 128 bytes
// ("kubectl/v1.32.4 (linux/amd64) ..." -> "kubectl",
// "Go-http-client/1.1" -> "Go-http-client"). `field_manager` wins when set.
std::string ResolveFieldManager(std::string_view field_manager, std::string_view user_agent);

}  // namespace kubefold::emulator
