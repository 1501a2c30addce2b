// Format: the plugin's -o json and -o yaml, written while the answer is
// read. A JSON document is parsed event by event (SAX) and re-emitted, so
// a streamed snapshot or diff of any size costs memory for one token, not
// for the document; key order is the API's.
//
//   json  4-space indentation, `"key": value`, `{}` / `[]` when empty —
//         what `kubectl get -o json` prints. Numbers keep the API's text.
//   yaml  block style through yaml-cpp's emitter (2-space indentation,
//         sequences indented under their key), `{}` / `[]` when empty,
//         `null` for null; a string that a YAML reader would take for
//         something else (true, no, 123, 1e3, a timestamp, "") is quoted.
//
// Thread-safety: reentrant.
#pragma once

#include <istream>
#include <ostream>
#include <string>

#include "state/status.h"

namespace kubefold::plugin {

enum class Format { kJson, kYaml };

// Reads one JSON document from `in` and writes it to `out` in `format`,
// followed by a newline. Errors: kInvalidArgument when `in` is not JSON or
// ends early (the caller looks for a transport error first); `out` then
// holds what was written up to that point. O(1) memory beyond the longest
// string.
Status Reformat(std::istream& in, Format format, std::ostream& out);

// Whether a YAML 1.1 or 1.2 reader would resolve the plain scalar `s` to
// something other than a string (so it must be quoted). Conservative:
// anything that starts like a number is quoted.
bool NeedsYamlQuotes(const std::string& s);

}  // namespace kubefold::plugin
