// libFuzzer target for what a member cluster's API server sends: the bytes
// are a watch body fed to LineFramer in chunks whose sizes the input picks,
// each line decoded as a watch event; the whole input is also decoded as a
// list body, a single object and a Status body. Checks more than "no
// crash": every rejection is kInvalidArgument (or kResourceExhausted from
// the framer) with a message, and every accepted object is valid JSON of
// the requested kind with its own metadata pruned.
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "controllers/kube/watch_decoder.h"

namespace {

using kubefold::StatusCode;
using kubefold::kube::DecodedObject;
using kubefold::kube::ResourceType;

const ResourceType kType{"apps", "v1", "Deployment"};

void CheckError(const kubefold::Status& s) {
  if (s.ok() || s.message().empty()) std::abort();
  if (s.code() != StatusCode::kInvalidArgument && s.code() != StatusCode::kResourceExhausted) std::abort();
}

void CheckObject(const DecodedObject& o) {
  auto j = nlohmann::json::parse(o.workload.object_json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) std::abort();
  auto kind = j.find("kind");
  auto api_version = j.find("apiVersion");
  auto meta = j.find("metadata");
  if (kind == j.end() || *kind != "Deployment" || api_version == j.end() || *api_version != "apps/v1") std::abort();
  if (meta == j.end() || !meta->is_object() || meta->contains("managedFields") || meta->contains("selfLink")) {
    std::abort();
  }
  if (o.workload.key.name.empty() || o.workload.key.kind != "Deployment") std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);

  kubefold::kube::LineFramer framer(4096);
  size_t pos = 0, step = size == 0 ? 1 : 1 + data[0] % 61;
  while (pos < size) {
    std::string_view chunk = text.substr(pos, step);
    pos += chunk.size();
    kubefold::Status s = framer.Feed(chunk, [](std::string_view line) {
      if (line.empty() || line.find('\n') != std::string_view::npos) std::abort();
      auto ev = kubefold::kube::DecodeWatchEvent(line, kType);
      if (!ev.ok()) {
        CheckError(ev.status());
      } else if (ev->object) {
        CheckObject(*ev->object);
      }
      return kubefold::Status::Ok();
    });
    if (!s.ok()) {
      CheckError(s);
      break;
    }
    step = 1 + (step * 7) % 61;
  }

  auto list = kubefold::kube::DecodeList(text, kType);
  if (!list.ok()) {
    CheckError(list.status());
  } else {
    for (const DecodedObject& o : list->items) CheckObject(o);
  }
  auto obj = kubefold::kube::DecodeObject(text, kType);
  if (!obj.ok()) {
    CheckError(obj.status());
  } else {
    CheckObject(*obj);
  }
  // A message longer than 256 bytes can only come from a JSON Status.
  auto status = kubefold::kube::DecodeStatus(text, 500);
  auto parsed = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  auto message = parsed.is_object() ? parsed.find("message") : parsed.end();
  bool json_message = parsed.is_object() && message != parsed.end() && message->is_string();
  if (status.message.size() > 256 && !json_message) std::abort();
  if (status.code == 0) std::abort();
  return 0;
}
