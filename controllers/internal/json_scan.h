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

// False when `json` is not an object this scanner can read (it is then
// parsed in full by the caller, never guessed at).
bool ScanMetadata(std::string_view json, Metadata& out);

}  // namespace kubefold::controllers::internal
