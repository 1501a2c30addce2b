#include "controllers/kube/paths.h"

namespace kubefold::kube {

std::string PercentEncode(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (unsigned char c : s) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
        c == '_' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string ResourcePath(std::string_view group, std::string_view version, std::string_view resource,
                         std::string_view ns, std::string_view name, std::string_view subresource) {
  std::string path = group.empty() ? "/api/" + std::string(version)
                                   : "/apis/" + std::string(group) + "/" + std::string(version);
  if (!ns.empty()) path += "/namespaces/" + PercentEncode(ns);
  path += "/" + std::string(resource);
  if (!name.empty()) path += "/" + PercentEncode(name);
  if (!subresource.empty()) path += "/" + std::string(subresource);
  return path;
}

}  // namespace kubefold::kube
