// Server-side printing: the meta.k8s.io Table a kube-apiserver answers with
// when a client's Accept asks for `as=Table` (kubectl get does), for GET of
// one object, LIST and each WATCH event.
//
// Which convertor a real server uses, and so which columns:
//  - custom resources: the CRD's additionalPrinterColumns after a Name column
//    (apiextensions' tableconvertor; a CRD without columns gets an Age date
//    column), cells computed with client-go JSONPath (jsonpath.h);
//  - built-in types with a printer in k8s.io/kubernetes/pkg/printers
//    (Namespace, ConfigMap, Secret, Event, Lease, Deployment, StatefulSet,
//    Role, ClusterRole, RoleBinding, ClusterRoleBinding here): that
//    printer's columns, all of them (priority-1 ones included;
//    the server always prints wide and kubectl hides them without -o wide);
//  - types the real server has no printer for (CustomResourceDefinition):
//    the default Name / Created At table.
// Pods, Nodes, Services and DaemonSets have printers on a real server that
// this emulator does not implement: SupportsTable is false for them and the
// caller answers with plain JSON, which kubectl prints itself.
//
// Thread-safety: pure functions of their arguments.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/emulator/resources.h"

namespace kubefold::emulator {

// The includeObject query parameter: what each row's `object` holds.
enum class IncludeObject {
  kNone,      // null
  kMetadata,  // a PartialObjectMetadata (the default)
  kObject,    // the whole object
};

// includeObject as the server validates it ("" and absent mean Metadata).
// On an unknown value returns nullopt and the 400 message a real server
// sends ("Unable to convert to Table as requested: includeObject: ...").
std::optional<IncludeObject> ParseIncludeObject(const std::string* value, std::string* error);

struct TableOptions {
  IncludeObject include = IncludeObject::kMetadata;
  // No columnDefinitions (null): every watch event after the first.
  bool no_headers = false;
  // The negotiated version of the Table: "meta.k8s.io/v1" or "meta.k8s.io/v1beta1".
  std::string api_version = "meta.k8s.io/v1";
  // Ages are measured against this.
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
};

// The Table's metadata (a list's ListMeta, or just the RV of one object).
struct TableListMeta {
  std::string resource_version;
  std::string continue_token;
  std::optional<std::int64_t> remaining_item_count;
};

// True when Tables of `type` are implemented (see above).
bool SupportsTable(const ResourceType& type);

// The Table JSON (Go's encoding) for `objects`: a list's items when
// `is_list`, else exactly one object. REQUIRES: SupportsTable(type).
// Allocates; O(total size of the objects).
std::string ConvertToTable(const ResourceType& type, const std::vector<const Json*>& objects, bool is_list,
                           const TableListMeta& meta, const TableOptions& options);

// k8s.io/apimachinery/pkg/util/duration.HumanDuration: "45s", "5m3s", "3h",
// "2d4h", "<invalid>" for more than a second in the future.
std::string HumanDuration(std::chrono::nanoseconds d);

// time.Parse(time.RFC3339, s) as metav1.Time uses it; fractional seconds
// allowed. nullopt if `s` is not such a time.
std::optional<std::chrono::system_clock::time_point> ParseRfc3339(std::string_view s);

}  // namespace kubefold::emulator
