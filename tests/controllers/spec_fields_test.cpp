// Reading kubefold's custom resources never throws: a field of the wrong
// type is an error naming the field and the type wanted (what the API server
// would have refused had the CRD's schema been installed).
#define BOOST_TEST_MODULE spec_fields_test
#include <boost/test/unit_test.hpp>

#include <string>

#include "controllers/failover.h"
#include "controllers/internal/spec_fields.h"
#include "controllers/registry.h"

namespace ctl = kubefold::controllers;
using Json = nlohmann::json;

namespace {

kubefold::kube::DecodedObject Object(const std::string& json) {
  kubefold::kube::DecodedObject o;
  o.ns = "shop";
  o.workload.key.name = "p";
  o.workload.object_json = json;
  return o;
}

}  // namespace

BOOST_AUTO_TEST_CASE(typed_reads_keep_the_first_error_and_return_defaults) {
  ctl::internal::SpecFields f("spec");
  const Json spec = Json::parse(R"({"health":{"periodSeconds":"10","failureThreshold":3},"kinds":["A",2],"n":null})");
  const Json& health = f.Object(spec, "health");
  BOOST_CHECK_EQUAL(f.Int32(health, "periodSeconds", 7, "health"), 7);
  BOOST_CHECK_EQUAL(f.error(), "spec.health.periodSeconds: want an integer, got a string");
  BOOST_CHECK_EQUAL(f.Int32(health, "failureThreshold", 1, "health"), 3);
  BOOST_CHECK((f.Strings(spec, "kinds", {"x"}) == std::vector<std::string>{"x"}));
  BOOST_CHECK_EQUAL(f.error(), "spec.health.periodSeconds: want an integer, got a string");  // the first one
  ctl::internal::SpecFields g("spec");
  (void)g.Strings(spec, "kinds", {});
  BOOST_CHECK_EQUAL(g.error(), "spec.kinds[1]: want a string, got an integer");
  ctl::internal::SpecFields h("spec");
  BOOST_CHECK_EQUAL(h.String(spec, "n", "default"), "default");  // null is absent
  BOOST_CHECK_EQUAL(h.Int32(Json::parse(R"({"big":9999999999})"), "big", 5), 5);
  BOOST_CHECK_EQUAL(h.error(), "spec.big: want an integer within 32 bits, got an integer");
  ctl::internal::SpecFields k("spec");
  BOOST_CHECK(k.Object(Json::parse(R"({"watch":[1]})"), "watch").empty());
  BOOST_CHECK_EQUAL(k.error(), "spec.watch: want an object, got a list");
}

BOOST_AUTO_TEST_CASE(member_clusters_with_fields_of_the_wrong_type_name_the_field) {
  BOOST_CHECK_EQUAL(ctl::ClusterRegistry::SpecError(
                        R"({"spec":{"kubeconfigSecretRef":{"namespace":"kubefold-system","name":"east"}}})"),
                    "");
  BOOST_CHECK_EQUAL(ctl::ClusterRegistry::SpecError(
                        R"({"spec":{"kubeconfigSecretRef":{"namespace":7,"name":"east"}}})"),
                    "spec.kubeconfigSecretRef.namespace: want a string, got an integer");
  BOOST_CHECK_EQUAL(ctl::ClusterRegistry::SpecError(
                        R"({"spec":{"kubeconfigSecretRef":{"namespace":"a","name":"b"},"health":{"periodSeconds":1.5}}})"),
                    "spec.health.periodSeconds: want an integer, got a number with a fraction");
  BOOST_CHECK_EQUAL(ctl::ClusterRegistry::SpecError(
                        R"({"spec":{"kubeconfigSecretRef":{"namespace":"a","name":"b"},"watch":{"kinds":"Deployment"}}})"),
                    "spec.watch.kinds: want a list of strings, got a string");
  BOOST_CHECK_EQUAL(ctl::ClusterRegistry::SpecError(R"({"metadata":{}})"), "spec: missing");
  BOOST_CHECK_EQUAL(ctl::ClusterRegistry::SpecError("[1,2"), "the object is not JSON");
}

BOOST_AUTO_TEST_CASE(policies_and_audits_of_the_wrong_types_are_reported_or_ignored_never_thrown) {
  BOOST_CHECK_EQUAL(ctl::FailoverReconciler::PolicySpecError(Object(R"({"spec":{"clusters":["east","west"]}})")), "");
  BOOST_CHECK_EQUAL(ctl::FailoverReconciler::PolicySpecError(
                        Object(R"({"spec":{"clusters":["east"],"trigger":{"clusterUnhealthySeconds":"30"}}})")),
                    "spec.trigger.clusterUnhealthySeconds: want an integer, got a string");
  BOOST_CHECK_EQUAL(ctl::FailoverReconciler::PolicySpecError(Object(R"({"spec":{"clusters":"east"}})")),
                    "spec.clusters: want a list of strings, got a string");
  BOOST_CHECK_EQUAL(ctl::FailoverReconciler::PolicySpecError(
                        Object(R"({"metadata":{"annotations":[]},"spec":{"clusters":["e"]},"status":{"workloads":[{"kind":1}]}})")),
                    "");
  BOOST_CHECK(ctl::FailoverReconciler::AuditReadable(
      Object(R"({"spec":{"policy":"web","before":{"seq":3,"vector":{"east":1}}},"status":{"phase":"Completed"}})")));
  BOOST_CHECK(!ctl::FailoverReconciler::AuditReadable(Object(R"({"spec":{"policy":7}})")));
  BOOST_CHECK(!ctl::FailoverReconciler::AuditReadable(Object(R"({"spec":{"before":{"seq":"3"}}})")));
}
