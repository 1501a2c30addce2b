#include "controllers/process_metrics.h"

#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>
#include <system_error>
#include <utility>
#include <vector>

namespace kubefold::metrics {
namespace {

// Files under /proc are small; anything bigger is not what we expect.
constexpr std::size_t kMaxFileBytes = 64 * 1024;

// The whole file, or nullopt if it cannot be read or is too big. (Files in
// /proc report size 0, so read until EOF rather than trust the size.)
std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::string data;
  char buf[4096];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    data.append(buf, static_cast<std::size_t>(in.gcount()));
    if (data.size() > kMaxFileBytes) return std::nullopt;
  }
  if (in.bad()) return std::nullopt;
  return data;
}

template <class T>
std::optional<T> ParseNumber(std::string_view s) {
  T value{};
  const auto r = std::from_chars(s.data(), s.data() + s.size(), value);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return value;
}

// Whitespace-separated fields of s.
std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> fields;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) ++i;
    const std::size_t start = i;
    while (i < s.size() && !(s[i] == ' ' || s[i] == '\t' || s[i] == '\n')) ++i;
    if (i > start) fields.push_back(s.substr(start, i - start));
  }
  return fields;
}

// The boot time (btime in <proc>/stat), seconds since the epoch.
std::optional<std::uint64_t> BootTime(const std::string& proc_root) {
  const auto stat = ReadSmallFile(proc_root + "/stat");
  if (!stat) return std::nullopt;
  std::string_view rest = *stat;
  while (!rest.empty()) {
    const std::size_t eol = rest.find('\n');
    const std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    if (line.starts_with("btime ")) {
      const auto f = Fields(line);
      if (f.size() == 2) return ParseNumber<std::uint64_t>(f[1]);
    }
  }
  return std::nullopt;
}

// From <proc>/self/stat (proc(5)): CPU time, memory, start time.
void CollectStat(const std::string& proc_root, Collector& c) {
  const auto stat = ReadSmallFile(proc_root + "/self/stat");
  if (!stat) return;
  // The command name (field 2) is in parentheses and may hold spaces and
  // parentheses itself: the fields we want follow its last ')'.
  const std::size_t paren = stat->rfind(')');
  if (paren == std::string::npos) return;
  const auto f = Fields(std::string_view(*stat).substr(paren + 1));
  // f[0] is field 3 (state); field n is f[n - 3].
  auto field = [&f](std::size_t n) -> std::optional<std::uint64_t> {
    if (n - 3 >= f.size()) return std::nullopt;
    return ParseNumber<std::uint64_t>(f[n - 3]);
  };
  const long ticks_per_second = sysconf(_SC_CLK_TCK);
  const long page_size = sysconf(_SC_PAGESIZE);
  const auto utime = field(14), stime = field(15), starttime = field(22);
  const auto vsize = field(23), rss = field(24);
  if (utime && stime && ticks_per_second > 0) {
    c.AddCounter("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 {}, static_cast<double>(*utime + *stime) / static_cast<double>(ticks_per_second));
  }
  if (vsize) {
    c.AddGauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", {},
               static_cast<double>(*vsize));
  }
  if (rss && page_size > 0) {
    c.AddGauge("process_resident_memory_bytes", "Resident memory size in bytes.", {},
               static_cast<double>(*rss) * static_cast<double>(page_size));
  }
  if (starttime && ticks_per_second > 0) {
    if (const auto boot = BootTime(proc_root)) {
      c.AddGauge("process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.", {},
                 static_cast<double>(*boot) +
                     static_cast<double>(*starttime) / static_cast<double>(ticks_per_second));
    }
  }
}

// Entries of <proc>/self/fd (as client_golang, the directory's own
// descriptor, open while it is listed, is counted too).
void CollectOpenFds(const std::string& proc_root, Collector& c) {
  std::error_code ec;
  std::filesystem::directory_iterator it(proc_root + "/self/fd", ec);
  if (ec) return;
  std::uint64_t count = 0;
  for (const std::filesystem::directory_iterator end; it != end; it.increment(ec)) {
    if (ec) return;
    ++count;
  }
  if (ec) return;
  c.AddGauge("process_open_fds", "Number of open file descriptors.", {},
             static_cast<double>(count));
}

// The soft limit on "Max open files" in <proc>/self/limits.
void CollectMaxFds(const std::string& proc_root, Collector& c) {
  const auto limits = ReadSmallFile(proc_root + "/self/limits");
  if (!limits) return;
  constexpr std::string_view kPrefix = "Max open files";
  const std::size_t at = limits->find(kPrefix);
  if (at == std::string::npos) return;
  const std::size_t eol = limits->find('\n', at);
  const auto f = Fields(std::string_view(*limits).substr(
      at + kPrefix.size(), eol == std::string::npos ? std::string::npos : eol - at - kPrefix.size()));
  if (f.empty()) return;
  double value;
  if (f[0] == "unlimited") {
    value = std::numeric_limits<double>::infinity();
  } else if (const auto n = ParseNumber<std::uint64_t>(f[0])) {
    value = static_cast<double>(*n);
  } else {
    return;
  }
  c.AddGauge("process_max_fds", "Maximum number of open file descriptors.", {}, value);
}

}  // namespace

std::function<void(Collector&)> ProcessCollector(std::string proc_root) {
  return [proc_root = std::move(proc_root)](Collector& c) {
    CollectStat(proc_root, c);
    CollectOpenFds(proc_root, c);
    CollectMaxFds(proc_root, c);
  };
}

Status AddBuildInfo(Registry& registry, std::string_view version, std::string_view git_commit,
                    std::string_view cpp_compiler) {
  Result<GaugeFamily*> family = registry.AddGaugeFamily(
      "kubefold_build_info",
      "A metric with a constant '1' value labeled by the version, git commit and C++ compiler "
      "from which kubefold was built.",
      {"version", "git_commit", "cpp_compiler"});
  if (!family.ok()) return family.status();
  Result<Gauge*> gauge = (*family)->WithLabels({version, git_commit, cpp_compiler});
  if (!gauge.ok()) return gauge.status();
  (*gauge)->Set(1);
  return Status::Ok();
}

}  // namespace kubefold::metrics
