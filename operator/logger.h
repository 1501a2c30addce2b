// Logger: kubefold's log lines on stderr, as text or JSON.
//
//   text: 2026-11-22T20:01:02.345Z info  member cluster east: watching https://...
//   json: {"ts":"2026-11-22T20:01:02.345678Z","level":"info","msg":"...","cluster":"east"}
//
// The loops log plain messages whose subject comes first, by convention:
// "member cluster NAME: ...", "policy NS/NAME: ...", "audit NS/NAME: ...".
// Structured fields (cluster, namespace, name, controller) are derived from
// that prefix here, in one place, so JSON logs can be filtered by them.
//
// Verbosity (--v): 0 logs what an operator needs (starts, stops, changes,
// failures); 1 adds per-watch chatter (relists, reconnects); 2 adds every
// request the API serves. Messages are scrubbed of anything that looks like
// a credential (a bearer token, a "token" field) before they are written:
// no secret reaches the log even if a message quotes one by mistake.
//
// Thread-safety: every member function may be called from any thread; lines
// are written whole.
#pragma once

#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kubefold {

enum class LogFormat { kText, kJson };

class Logger {
 public:
  using Fields = std::vector<std::pair<std::string, std::string>>;

  Logger(LogFormat format, int verbosity) : format_(format), verbosity_(verbosity) {}

  // level: "info", "error", "debug". Lines at `v` > verbosity are dropped.
  void Log(std::string_view level, std::string_view message, const Fields& fields = {}, int v = 0);
  void Info(std::string_view message, const Fields& fields = {}) { Log("info", message, fields); }
  void Error(std::string_view message, const Fields& fields = {}) { Log("error", message, fields); }
  bool Enabled(int v) const { return v <= verbosity_; }

  // A line from a control loop: its level, verbosity and fields derived
  // from the message (see the header comment).
  void FromLoop(std::string_view message);

  // The line as it would be written (no newline): exposed for tests.
  std::string Format(std::string_view level, std::string_view message, const Fields& fields) const;
  // `message` with credentials replaced by "[REDACTED]".
  static std::string Scrub(std::string_view message);

 private:
  const LogFormat format_;
  const int verbosity_;
  std::mutex mu_;
};

}  // namespace kubefold
