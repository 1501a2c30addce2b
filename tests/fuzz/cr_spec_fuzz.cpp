// libFuzzer target for kubefold's custom resources as the host serves them:
// the input is the JSON of a MemberCluster, a FailoverPolicy and a
// FailoverAudit at once (whatever the API server let through: a CRD
// installed without its schema, an older one, a hand edit). Reading them
// must never throw or crash, and a MemberCluster or FailoverPolicy kubefold
// cannot use must come with a message naming what is wrong.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "controllers/failover.h"
#include "controllers/registry.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  // "" or a message naming the field; a throw is a crash here.
  auto names_a_field = [](const std::string& m) {
    return m.empty() || m.rfind("spec", 0) == 0 || m == "the object is not JSON";
  };
  if (!names_a_field(kubefold::controllers::ClusterRegistry::SpecError(json))) std::abort();

  kubefold::kube::DecodedObject o;
  o.ns = "shop";
  o.uid = "u";
  o.workload.key.name = "p";
  o.workload.key.kind = "FailoverPolicy";
  o.workload.object_json = json;
  if (!names_a_field(kubefold::controllers::FailoverReconciler::PolicySpecError(o))) std::abort();
  o.workload.key.kind = "FailoverAudit";
  (void)kubefold::controllers::FailoverReconciler::AuditReadable(o);
  return 0;
}
