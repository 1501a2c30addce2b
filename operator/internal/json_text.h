// JSON text written by hand where nlohmann's DOM would cost more than the
// work itself (the query API's per-item framing, RFC 6902 patches).
//
// Thread-safety: the functions are pure; JsonPatch keeps per-thread parsers.
#pragma once

#include <string>
#include <string_view>

#include "controllers/kube/internal/json_string.h"
#include "state/status.h"

namespace kubefold::internal {

using kube::internal::AppendJsonString;  // controllers/kube/internal/json_string.h

// Appends to `out` an RFC 6902 JSON Patch (a JSON array) that turns the
// JSON document `before` into `after`: objects are compared member by
// member (remove, add, or recurse), arrays element by element over their
// common length (then removes from the highest index down, or adds at
// "/-"), anything else that differs is replaced. Paths are RFC 6901 JSON
// Pointers (`~` -> `~0`, `/` -> `~1`). Values are written minified.
// kInvalidArgument when either document is not JSON (nothing appended).
// Objects with duplicate member names (which RFC 8259 says should not occur
// and API servers never send) get a valid but unspecified patch.
// Parses with simdjson on the calling thread's own parsers; allocates only
// for the output and a key index of objects with many members.
Status AppendJsonPatch(std::string& out, std::string_view before, std::string_view after);

}  // namespace kubefold::internal
