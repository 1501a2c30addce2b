// Fuzzes what kube-emulator parses from its clients: label and field
// selectors, YAML bodies, protobuf review bodies, and the merge / JSON /
// strategic-merge patch and server-side apply engines, on arbitrary bytes. They must return an error
// or a value, never crash, hang or throw.
//
// Input layout: one selector byte, then the text, split at the first NUL
// into a target document and a patch/selector document.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "tests/emulator/patch.h"
#include "tests/emulator/protobuf.h"
#include "tests/emulator/selectors.h"

namespace emu = kubefold::emulator;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1 || size > 64 * 1024) return 0;
  const uint8_t mode = data[0];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto nul = text.find('\0');
  const std::string first(text.substr(0, nul));
  const std::string second(nul == std::string_view::npos ? std::string_view() : text.substr(nul + 1));
  std::string error;
  if (mode % 7 == 6) {  // the whole text as a protobuf body
    (void)emu::ReviewFromProtobuf(text, &error);
    return 0;
  }
  switch (mode % 6) {
    case 0: {
      auto sel = emu::LabelSelector::Parse(first, &error);
      if (sel) sel->Matches(emu::Json::parse(second, nullptr, false));
      break;
    }
    case 1: {
      auto sel = emu::FieldSelector::Parse(first, emu::SupportedFieldLabels("Pod"), &error);
      if (sel) sel->Matches(emu::Json::parse(second, nullptr, false));
      break;
    }
    case 2:
      (void)emu::YamlToJson(text);
      break;
    default: {
      const emu::Json target = emu::Json::parse(first, nullptr, false);
      const emu::Json patch = emu::Json::parse(second, nullptr, false);
      if (target.is_discarded() || patch.is_discarded()) break;
      if (mode % 6 == 3) {
        (void)emu::MergePatch(target, patch);
        (void)emu::JsonPatch(target, patch);
      } else if (mode % 6 == 4) {
        (void)emu::StrategicMergePatch(target, patch, "Deployment");
      } else {
        emu::ApplyRequest request{target.is_object() ? &target : nullptr, patch, "fuzz", (mode & 0x80) != 0,
                                  "apps/v1", "Deployment", "2026-11-22T00:00:00Z", ""};
        (void)emu::ServerSideApply(request);
      }
      break;
    }
  }
  return 0;
}
