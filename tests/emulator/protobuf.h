// The Kubernetes protobuf encoding of the review kinds, read into their JSON
// form. kubectl's typed clients send protobuf: `kubectl auth can-i` posts a
// SelfSubjectAccessReview and `kubectl auth whoami` a SelfSubjectReview
// that way, so the emulator reads these (and SubjectAccessReview and
// TokenReview) in protobuf; every other request body must be JSON or YAML
// (README). Responses are JSON, which those clients accept too.
//
// The wire format: the magic "k8s\0", then a runtime.Unknown message
// (typeMeta = 1 {apiVersion = 1, kind = 2}, raw = 2) whose raw bytes are the
// object's message (k8s.io/api/authorization/v1 and authentication/v1
// generated.proto).
//
// Thread-safety: a pure function.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "tests/emulator/store.h"

namespace kubefold::emulator {

// The object in `body` as JSON (kind, apiVersion, metadata, spec; fields at
// their zero values left out), or nullopt with `*error` saying what is
// wrong: not the envelope, truncated or malformed fields, or a kind other
// than SelfSubjectAccessReview, SubjectAccessReview, SelfSubjectReview and
// TokenReview. Never throws; allocates; O(body size).
std::optional<Json> ReviewFromProtobuf(std::string_view body, std::string* error);

}  // namespace kubefold::emulator
