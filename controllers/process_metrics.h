// The standard process metrics, with client_golang's names and meanings, and
// the build-info gauge, for a Registry (controllers/metrics.h):
//
//   process_cpu_seconds_total       counter  user + system CPU time, seconds
//   process_open_fds                gauge    open file descriptors
//   process_max_fds                 gauge    RLIMIT_NOFILE soft limit (+Inf if unlimited)
//   process_virtual_memory_bytes    gauge    virtual memory size
//   process_resident_memory_bytes   gauge    resident set size
//   process_start_time_seconds      gauge    start time, seconds since the Unix epoch
//   kubefold_build_info{version,git_commit,cpp_compiler} gauge, always 1
//
// Read at each scrape from <proc>/self/stat, <proc>/self/fd,
// <proc>/self/limits and <proc>/stat (btime). A file that cannot be read or
// parsed skips the metrics that come from it, silently: a scrape never fails
// or crashes because of /proc.
//
// Thread-safety: the collector function keeps no state and may run on any
// thread, concurrently with itself.
#pragma once

#include <functional>
#include <string>
#include <string_view>

#include "controllers/metrics.h"
#include "state/status.h"

namespace kubefold::metrics {

// Returns a collector for Registry::AddCollector reading the files above
// under `proc_root` (tests pass a directory of fakes). Each scrape opens and
// reads four small files and lists one directory; it allocates.
std::function<void(Collector&)> ProcessCollector(std::string proc_root = "/proc");

// Registers kubefold_build_info{version,git_commit,cpp_compiler} = 1 with
// these values. Errors: those of Registry::AddGaugeFamily (kAlreadyExists
// if called twice on one registry).
Status AddBuildInfo(Registry& registry, std::string_view version, std::string_view git_commit,
                    std::string_view cpp_compiler);

}  // namespace kubefold::metrics
