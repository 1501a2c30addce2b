// A small scanner for the pruned object JSON kubefold stores (compact,
// valid, written by the watch decoder): reads metadata.labels and
// metadata.annotations without building a document, which costs about a
// microsecond where a full parse costs tens. Used on the failover
// reconciler's path, which reads the labels of every governed workload of
// a snapshot. Internal to controllers/.
#pragma once

#include <map>
#include <string>
#include <string_view>

namespace kubefold::controllers::internal {

struct Metadata {
  std::map<std::string, std::string, std::less<>> labels;
  std::map<std::string, std::string, std::less<>> annotations;
};

// False when `json` is not an object this scanner can read. A document the
// fast path cannot read (escapes, malformed) is parsed in full, never
// guessed at. With `unique_top_level` (objects stored by kubefold, whose
// decoder refuses duplicate top-level keys) the scan ends at "metadata".
bool ScanMetadata(std::string_view json, Metadata& out, bool unique_top_level = false);

}  // namespace kubefold::controllers::internal
