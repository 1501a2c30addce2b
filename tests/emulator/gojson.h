// JSON text and value formatting exactly as Go writes it, which is what a
// kube-apiserver sends: encoding/json escapes <, > and & (as \u003c, \u003e,
// \u0026) and U+2028/U+2029, writes floats in strconv's shortest form ('f'
// for 1e-6 <= |x| < 1e21, otherwise 'e' with "1e-7" rather than "1e-07"),
// and writes a Go map's keys sorted; fmt's %v (which client-go's JSONPath
// printer uses for scalars) writes floats as %g with the shortest precision.
//
// nlohmann's dump() differs in all of these; responses built from
// server-side types (Tables) go through these functions instead.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace kubefold::emulator {

using Json = nlohmann::ordered_json;

// How object keys are written: in the stored order (a Go struct's field
// order, which the store keeps for built-in objects) or sorted (a Go map,
// e.g. a custom resource, which the server holds as unstructured maps).
enum class KeyOrder { kAsStored, kSorted };

// Appends `value` as compact JSON (json.Marshal). Allocates; O(size).
void AppendGoJson(std::string& out, const Json& value, KeyOrder order);
std::string GoJson(const Json& value, KeyOrder order);

// Appends `s` as a quoted JSON string with Go's escaping (invalid UTF-8
// becomes \ufffd).
void AppendGoString(std::string& out, std::string_view s);

// A float64 as encoding/json writes it: 1e+06 -> "1000000", 1e-7 -> "1e-7".
std::string GoFloatJson(double value);

// A float64 as fmt.Sprint writes it (%v, i.e. %g shortest): 1e6 -> "1e+06",
// 123456 -> "123456", 1e-5 -> "1e-05".
std::string GoFloatText(double value);

}  // namespace kubefold::emulator
