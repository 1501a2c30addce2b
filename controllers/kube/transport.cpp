#include "controllers/kube/transport.h"

#include <algorithm>
#include <cctype>

namespace kubefold::kube {

std::string_view FindHeader(const Headers& headers, std::string_view name) {
  auto same = [&](std::string_view a) {
    return a.size() == name.size() && std::equal(a.begin(), a.end(), name.begin(), [](char x, char y) {
             return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
  };
  for (const auto& [k, v] : headers) {
    if (same(k)) return v;
  }
  return {};
}

}  // namespace kubefold::kube
