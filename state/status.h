// Status and Result<T>: how every kubefold module reports failure.
//
// No exceptions cross a module boundary. A function that can fail returns a
// Status (or a Result<T> holding either a value or a non-OK Status). The code
// tells the caller what to do about it, after Abseil's canonical codes:
//   kInvalidArgument    the input is wrong; retrying the same call cannot help.
//   kNotFound           the named thing does not exist (yet).
//   kGone               it existed but was dropped (e.g. by snapshot retention).
//   kFailedPrecondition the system is not in a state for this call; fix it first.
//   kAlreadyExists      a create found the thing already there.
//   kConflict           an optimistic-concurrency check failed; re-read and retry.
//   kUnavailable        transient; retry the same call later (with backoff).
//   kResourceExhausted  a quota or size bound was hit.
//   kUnauthenticated / kPermissionDenied  credentials missing / insufficient.
//   kInternal           a bug or broken invariant.
//   kCancelled          the caller (or shutdown) cancelled the operation; do not retry.
//
// Thread-safety: Status and Result are values; distinct objects may be used
// from distinct threads without synchronization.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace kubefold {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,
  kNotFound,
  kGone,
  kFailedPrecondition,
  kAlreadyExists,
  kConflict,
  kUnavailable,
  kResourceExhausted,
  kUnauthenticated,
  kPermissionDenied,
  kInternal,
  kCancelled,
};

// Returns a stable lower-case name for `code`, e.g. "invalid_argument".
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK
  Status(StatusCode code, std::string message)
      : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "invalid_argument: cluster name is empty", or "ok".
  std::string ToString() const;

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgument(std::string m) { return {StatusCode::kInvalidArgument, std::move(m)}; }
inline Status NotFound(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status Gone(std::string m) { return {StatusCode::kGone, std::move(m)}; }
inline Status FailedPrecondition(std::string m) { return {StatusCode::kFailedPrecondition, std::move(m)}; }
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }
inline Status ResourceExhausted(std::string m) { return {StatusCode::kResourceExhausted, std::move(m)}; }
inline Status Unavailable(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status Cancelled(std::string m) { return {StatusCode::kCancelled, std::move(m)}; }

// Either a T or a non-OK Status.
template <class T>
class [[nodiscard]] Result {
 public:
  Result(T value) : value_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {  // NOLINT
    assert(!status_.ok() && "Result needs a value or a non-OK status");
    if (status_.ok()) status_ = InternalError("Result constructed from OK status without a value");
  }

  bool ok() const { return value_.has_value(); }
  const Status& status() const { return status_; }

  // REQUIRES: ok().
  T& value() & { assert(ok()); return *value_; }
  const T& value() const& { assert(ok()); return *value_; }
  T&& value() && { assert(ok()); return std::move(*value_); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }

 private:
  Status status_;
  std::optional<T> value_;
};

}  // namespace kubefold
