// The subcommands of `kubectl kubefold`: each sends its requests through a
// Client and writes the answer to `out` as a table (the default, `-o wide`
// for more columns) or as the API's own document in JSON or YAML.
//
// Every function returns OK, or the Status to report (its message goes to
// stderr as "error: <message>", its code picks the exit code: client.h
// ExitCodeFor). Notes that are not the answer ("No clusters found.", the
// next page's token) go to `err`, so `out` holds only the table or
// document.
//
// Memory: snapshots and diffs are parsed as they arrive — JSON and YAML are
// written as they are read; a table holds its rows' text, not the
// documents.
//
// Thread-safety: one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <ostream>
#include <string>

#include "operator/plugin/client.h"
#include "state/status.h"

namespace kubefold::plugin {

enum class Output { kTable, kWide, kJson, kYaml };

struct OutputOptions {
  Output format = Output::kTable;
  bool color = false;  // ANSI colours in tables
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();  // for AGE
};

struct Streams {
  std::ostream& out;
  std::ostream& err;
};

struct SnapshotsArgs {
  std::optional<uint64_t> limit;
  std::string continue_token;
};

struct GetArgs {
  std::string snapshot = "latest";  // seq or "latest"; ignored with at_vector / at_time
  std::string at_vector;            // "east=3,west=4" or JSON
  std::string at_time;              // RFC 3339
  std::string cluster, ns, kind;
  bool full = false;  // whole objects (JSON and YAML output only)
};

struct DiffArgs {
  std::string from, to = "latest";
  std::string cluster, ns;
};

struct AuditArgs {
  std::string ns;    // "" with all_namespaces
  bool all_namespaces = false;
  std::string name;  // `audit NAME`
  bool diff = false;
};

Status Clusters(Client& client, const OutputOptions& o, Streams s);
Status Snapshots(Client& client, const SnapshotsArgs& args, const OutputOptions& o, Streams s);
Status Get(Client& client, const GetArgs& args, const OutputOptions& o, Streams s);
Status Diff(Client& client, const DiffArgs& args, const OutputOptions& o, Streams s);
Status Audits(Client& client, const AuditArgs& args, const OutputOptions& o, Streams s);
Status Audit(Client& client, const AuditArgs& args, const OutputOptions& o, Streams s);
Status WhatIf(Client& client, const std::string& cluster, const OutputOptions& o, Streams s);

// The plugin's build and, unless `client_only`, the server's /version.
// `client` is null when no connection could be made (`why` says why): the
// plugin's version is still printed and `why` returned.
Status Version(Client* client, const Status& why, bool client_only, const OutputOptions& o, Streams s);

}  // namespace kubefold::plugin
