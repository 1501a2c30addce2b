// Runs a program to completion with bounded output and a deadline: what the
// exec credential plugin needs (token_source.cpp). Standard input is
// /dev/null; the child gets its own process group, which is killed (SIGKILL)
// on timeout or when stdout exceeds its bound.
//
// Thread-safety: reentrant; any thread may run programs concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "state/status.h"

namespace kubefold::kube::internal {

struct SubprocessOptions {
  std::string program;             // looked up in PATH when it has no '/'
  std::vector<std::string> args;   // argv[1..]
  std::vector<std::string> env;    // the complete environment, "NAME=value"
  size_t max_stdout_bytes = 1 << 20;
  size_t max_stderr_bytes = 64 << 10;  // the rest of stderr is read and dropped
  std::chrono::milliseconds timeout{std::chrono::seconds(60)};
};

enum class SubprocessEnd {
  kExited,          // exit_code is valid
  kSignaled,        // signal is valid
  kTimedOut,        // killed at the deadline
  kStdoutTooLarge,  // killed when stdout passed max_stdout_bytes
};

struct SubprocessResult {
  SubprocessEnd end = SubprocessEnd::kExited;
  int exit_code = 0;
  int signal = 0;
  std::string stdout_bytes;  // at most max_stdout_bytes
  std::string stderr_bytes;  // at most max_stderr_bytes
};

// Runs the program. Errors only when it could not be started: kNotFound
// (no such program: ENOENT), kPermissionDenied (EACCES), kInternal (pipes,
// other spawn failures), the message naming the program and errno's text.
// Blocks the calling thread until the child ends or is killed and reaped.
Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options);

}  // namespace kubefold::kube::internal
