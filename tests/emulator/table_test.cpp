// Tests for server-side printing: the exact Table JSON a kube-apiserver
// v1.32 sends for custom resources (printer columns), built-in printers and
// the default convertor, with a fixed clock so ages are exact.
#define BOOST_TEST_MODULE emulator_table
#include <boost/test/unit_test.hpp>

#include <string>
#include <string_view>
#include <vector>

#include "tests/emulator/table.h"

namespace kubefold::emulator {
namespace {

using namespace std::chrono_literals;

Json J(std::string_view text) { return Json::parse(text); }

const auto kNow = *ParseRfc3339("2024-05-01T12:00:00Z");

TableOptions Options(IncludeObject include = IncludeObject::kNone) {
  TableOptions o;
  o.include = include;
  o.now = kNow;
  return o;
}

ResourceType MemberClusters() {
  ResourceType t;
  t.group = "kubefold.io";
  t.version = "v1alpha1";
  t.resource = "memberclusters";
  t.kind = "MemberCluster";
  t.custom = true;
  t.namespaced = false;
  t.printer_columns = J(R"([
    {"name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"},
    {"name": "Workloads", "type": "integer", "jsonPath": ".status.workloadCount"},
    {"name": "Component", "type": "integer", "description": "The component.", "jsonPath": ".status.vectorComponent",
     "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}])");
  return t;
}

ResourceType Builtin(const std::string& group, const std::string& kind) {
  ResourceType t;
  t.group = group;
  t.version = "v1";
  t.kind = kind;
  return t;
}

Json Table(const ResourceType& t, const std::vector<Json>& objects, bool is_list = true,
           TableOptions options = Options(), TableListMeta meta = {"42", "", std::nullopt}) {
  std::vector<const Json*> ptrs;
  for (const auto& o : objects) ptrs.push_back(&o);
  return Json::parse(ConvertToTable(t, ptrs, is_list, meta, options));
}

Json Cells(const Json& table, std::size_t row = 0) { return table["rows"][row]["cells"]; }

std::vector<std::string> Names(const Json& table) {
  std::vector<std::string> names;
  for (const auto& c : table["columnDefinitions"]) names.push_back(c["name"]);
  return names;
}

BOOST_AUTO_TEST_CASE(a_custom_resource_gets_name_then_its_printer_columns) {
  const Json east = J(R"({"apiVersion": "kubefold.io/v1alpha1", "kind": "MemberCluster",
    "metadata": {"name": "east", "uid": "u1", "resourceVersion": "7", "generation": 1,
                 "creationTimestamp": "2024-05-01T11:55:00Z", "labels": {"z": "1", "a": "2"}},
    "status": {"conditions": [{"type": "Synced", "status": "False"}, {"type": "Ready", "status": "True"}],
               "workloadCount": 3, "vectorComponent": 2.9}})");
  const Json t = Table(MemberClusters(), {east}, /*is_list=*/false, Options(IncludeObject::kMetadata),
                       {"7", "", std::nullopt});
  const std::string text = t.dump();
  BOOST_TEST(t["kind"] == "Table");
  BOOST_TEST(t["apiVersion"] == "meta.k8s.io/v1");
  BOOST_TEST(t["metadata"].dump() == R"({"resourceVersion":"7"})");
  BOOST_TEST((Names(t) == std::vector<std::string>{"Name", "Ready", "Workloads", "Component", "Age"}));
  BOOST_TEST(t["columnDefinitions"][0].dump() ==
             R"({"name":"Name","type":"string","format":"name","description":"Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names","priority":0})");
  BOOST_TEST(t["columnDefinitions"][1].dump() ==
             R"({"name":"Ready","type":"string","format":"","description":"Custom resource definition column (in JSONPath format): .status.conditions[?(@.type==\"Ready\")].status","priority":0})");
  BOOST_TEST(t["columnDefinitions"][3]["description"] == "The component.");
  BOOST_TEST(t["columnDefinitions"][3]["priority"] == 1);
  // integer cells truncate floats; dates are ages.
  BOOST_TEST(Cells(t).dump() == R"(["east","True",3,2,"5m"])");
  BOOST_TEST(t["rows"][0]["object"].dump() ==
             R"({"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/v1","metadata":{"name":"east","uid":"u1","resourceVersion":"7","generation":1,"creationTimestamp":"2024-05-01T11:55:00Z","labels":{"a":"2","z":"1"}}})");
  BOOST_TEST(text.find("\"conditions\"") == std::string::npos);  // no conditions on rows
}

BOOST_AUTO_TEST_CASE(absent_values_are_null_cells_and_string_columns_print_json) {
  ResourceType t = MemberClusters();
  t.printer_columns = J(R"([
    {"name": "Missing", "type": "string", "jsonPath": ".status.nothing"},
    {"name": "Clusters", "type": "string", "jsonPath": ".spec.clusters"},
    {"name": "Map", "type": "string", "jsonPath": ".spec.map"},
    {"name": "Count", "type": "string", "jsonPath": ".spec.count"},
    {"name": "Null", "type": "string", "jsonPath": ".spec.nothing"},
    {"name": "NullInt", "type": "integer", "jsonPath": ".spec.nothing"},
    {"name": "Ratio", "type": "number", "jsonPath": ".spec.count"},
    {"name": "Flag", "type": "boolean", "jsonPath": ".spec.flag"},
    {"name": "NotBool", "type": "boolean", "jsonPath": ".spec.count"},
    {"name": "Bad", "type": "date", "jsonPath": ".spec.when"},
    {"name": "Empty", "type": "date", "jsonPath": ".spec.empty"},
    {"name": "Future", "type": "date", "jsonPath": ".spec.future"},
    {"name": "Names", "type": "string", "jsonPath": ".spec.items[*].name"},
    {"name": "Error", "type": "string", "jsonPath": ".spec.clusters[5]"}])");
  const Json o = J(R"({"metadata": {"name": "x", "creationTimestamp": "2024-05-01T12:00:00Z"},
    "spec": {"clusters": ["east", "west"], "map": {"b": "<1>", "a": 2}, "count": 5, "nothing": null, "flag": true,
             "when": "yesterday", "empty": "", "future": "2024-05-01T13:00:00Z",
             "items": [{"name": "one"}, {"name": "two"}]}})");
  const Json table = Table(t, {o});
  BOOST_TEST(Cells(table).dump() ==
             R"(["x",null,"[\"east\",\"west\"]","{\"a\":2,\"b\":\"\\u003c1\\u003e\"}","5","<no value>",null,5,true,null,"<invalid>","<unknown>","<invalid>","one",null])");
}

BOOST_AUTO_TEST_CASE(a_crd_without_columns_gets_an_age_column_and_unparsable_columns_end_the_list) {
  ResourceType t = MemberClusters();
  t.printer_columns = Json();
  const Json o = J(R"({"metadata": {"name": "x", "creationTimestamp": "2024-04-29T12:00:00Z"}})");
  Json table = Table(t, {o});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Age"}));
  BOOST_TEST(table["columnDefinitions"][1]["type"] == "date");
  BOOST_TEST(table["columnDefinitions"][1]["description"].get<std::string>().starts_with("CreationTimestamp is"));
  BOOST_TEST(Cells(table).dump() == R"(["x","2d"])");

  t.printer_columns = J(R"([{"name": "A", "type": "string", "jsonPath": ".a"},
                            {"name": "B", "type": "string", "jsonPath": ".b[x]"},
                            {"name": "C", "type": "string", "jsonPath": ".c"}])");
  table = Table(t, {o});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "A"}));
}

BOOST_AUTO_TEST_CASE(list_metadata_and_include_object_modes) {
  const ResourceType t = MemberClusters();
  const Json a = J(R"({"apiVersion": "kubefold.io/v1alpha1", "kind": "MemberCluster",
                      "metadata": {"name": "a", "creationTimestamp": "2024-05-01T12:00:00Z"}, "spec": {"z": 1, "b": 2}})");
  Json table = Table(t, {a}, true, Options(IncludeObject::kNone), {"9", "tok", 4});
  BOOST_TEST(table["metadata"].dump() == R"({"resourceVersion":"9","continue":"tok","remainingItemCount":4})");
  BOOST_TEST(table["rows"][0]["object"].is_null());
  BOOST_TEST(table["rows"][0].dump().find("\"object\":null") != std::string::npos);

  std::vector<const Json*> one{&a};
  const std::string object_text =
      ConvertToTable(t, one, true, {"9", "", std::nullopt}, Options(IncludeObject::kObject));
  // A custom resource is an unstructured map on the server: sorted keys.
  BOOST_TEST(object_text.find(R"("object":{"apiVersion":"kubefold.io/v1alpha1","kind":"MemberCluster","metadata":{"creationTimestamp":"2024-05-01T12:00:00Z","name":"a"},"spec":{"b":2,"z":1}})") !=
             std::string::npos);

  TableOptions beta = Options(IncludeObject::kMetadata);
  beta.api_version = "meta.k8s.io/v1beta1";
  beta.no_headers = true;
  table = Table(t, {a}, false, beta);
  BOOST_TEST(table["apiVersion"] == "meta.k8s.io/v1beta1");
  BOOST_TEST(table["columnDefinitions"].is_null());
  BOOST_TEST(table["rows"][0]["object"]["apiVersion"] == "meta.k8s.io/v1beta1");

  // Empty lists: [] rows from printers and the CRD convertor.
  table = Table(t, {});
  BOOST_TEST(table["rows"].dump() == "[]");
}

BOOST_AUTO_TEST_CASE(crds_use_the_default_name_and_created_at_table) {
  const ResourceType t = Builtin("apiextensions.k8s.io", "CustomResourceDefinition");
  BOOST_TEST(SupportsTable(t));
  const Json crd = J(R"({"metadata": {"name": "widgets.example.com", "creationTimestamp": "2024-04-01T10:00:00Z"}})");
  Json table = Table(t, {crd});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Created At"}));
  BOOST_TEST(table["columnDefinitions"][1]["type"] == "date");
  BOOST_TEST(Cells(table).dump() == R"(["widgets.example.com","2024-04-01T10:00:00Z"])");
  table = Table(t, {});
  BOOST_TEST(table["rows"].is_null());  // the default convertor leaves rows nil
}

BOOST_AUTO_TEST_CASE(deployments_print_ready_up_to_date_available_and_wide_columns) {
  const ResourceType t = Builtin("apps", "Deployment");
  const Json d = J(R"({"metadata": {"name": "web", "creationTimestamp": "2024-05-01T09:30:00Z"},
    "spec": {"selector": {"matchLabels": {"tier": "front", "app": "web"},
                          "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "dev"]}]},
             "template": {"spec": {"containers": [{"name": "nginx", "image": "nginx:1.27"},
                                                  {"name": "side", "image": "busybox"}]}}},
    "status": {"readyReplicas": 1, "updatedReplicas": 2, "availableReplicas": 1}})");
  const Json table = Table(t, {d});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Ready", "Up-to-date", "Available", "Age",
                                                      "Containers", "Images", "Selector"}));
  BOOST_TEST(table["columnDefinitions"][5]["priority"] == 1);
  // spec.replicas defaults to 1, as the v1 defaulting leaves it.
  BOOST_TEST(Cells(table).dump() ==
             R"(["web","1/1",2,1,"150m","nginx,side","nginx:1.27,busybox","app=web,env in (dev,prod),tier=front"])");
}

BOOST_AUTO_TEST_CASE(namespaces_configmaps_secrets_leases_and_statefulsets) {
  const Json ns = J(R"({"metadata": {"name": "default", "creationTimestamp": "2024-04-30T12:00:00Z"},
                       "status": {"phase": "Active"}})");
  Json table = Table(Builtin("", "Namespace"), {ns});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Status", "Age"}));
  BOOST_TEST(table["columnDefinitions"][2]["type"] == "string");
  BOOST_TEST(Cells(table).dump() == R"(["default","Active","24h"])");

  const Json cm = J(R"({"metadata": {"name": "c", "creationTimestamp": "2024-05-01T11:59:30Z"},
                       "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}})");
  BOOST_TEST(Cells(Table(Builtin("", "ConfigMap"), {cm})).dump() == R"(["c",3,"30s"])");

  const Json secret = J(R"({"metadata": {"name": "s", "creationTimestamp": "2024-05-01T11:00:00Z"},
                           "data": {"a": "MQ=="}, "stringData": {"a": "1", "b": "2"}})");
  table = Table(Builtin("", "Secret"), {secret});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Type", "Data", "Age"}));
  BOOST_TEST(Cells(table).dump() == R"(["s","Opaque",2,"60m"])");

  const Json lease = J(R"({"metadata": {"name": "l", "creationTimestamp": "2024-05-01T11:58:00Z"},
                          "spec": {"holderIdentity": "me"}})");
  table = Table(Builtin("coordination.k8s.io", "Lease"), {lease});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Holder", "Age"}));
  BOOST_TEST(Cells(table).dump() == R"(["l","me","2m"])");

  const Json sts = J(R"({"metadata": {"name": "db", "creationTimestamp": "2024-05-01T11:50:00Z"},
                        "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "pg", "image": "pg:16"}]}}},
                        "status": {"readyReplicas": 2}})");
  table = Table(Builtin("apps", "StatefulSet"), {sts});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Name", "Ready", "Age", "Containers", "Images"}));
  BOOST_TEST(Cells(table).dump() == R"(["db","2/3","10m","pg","pg:16"])");

  BOOST_TEST(!SupportsTable(Builtin("", "Pod")));
  BOOST_TEST(!SupportsTable(Builtin("", "Node")));
  BOOST_TEST(!SupportsTable(Builtin("", "Service")));
  BOOST_TEST(!SupportsTable(Builtin("apps", "DaemonSet")));
}

BOOST_AUTO_TEST_CASE(events_print_the_wide_columns_with_the_fallbacks_of_the_printer) {
  const ResourceType t = Builtin("", "Event");
  const Json e = J(R"({"metadata": {"name": "web.17", "creationTimestamp": "2024-05-01T11:00:00Z"},
    "involvedObject": {"kind": "Deployment", "name": "web", "fieldPath": "spec"},
    "reason": "Failover", "message": "  moved to west \n", "type": "Normal",
    "source": {"component": "kubefold"}, "reportingInstance": "kubefold-0",
    "firstTimestamp": "2024-05-01T11:00:00Z", "count": 0})");
  const Json table = Table(t, {e});
  BOOST_TEST((Names(table) == std::vector<std::string>{"Last Seen", "Type", "Reason", "Object", "Subobject", "Source",
                                                      "Message", "First Seen", "Count", "Name"}));
  BOOST_TEST(Cells(table).dump() ==
             R"(["60m","Normal","Failover","deployment/web","spec","kubefold, kubefold-0","moved to west","60m",1,"web.17"])");
  const Json series = J(R"({"metadata": {"name": "n"}, "involvedObject": {"kind": "Node"},
    "eventTime": "2024-05-01T11:59:00.123456Z", "series": {"count": 4, "lastObservedTime": "2024-05-01T11:59:50.000000Z"}})");
  BOOST_TEST(Cells(Table(t, {series})).dump() == R"(["10s","","","node","","","","59s",4,"n"])");
}

BOOST_AUTO_TEST_CASE(include_object_values_are_checked_as_the_server_checks_them) {
  std::string error;
  const std::string none = "None", object = "Object", empty, bogus = "Everything";
  BOOST_TEST((ParseIncludeObject(nullptr, &error) == IncludeObject::kMetadata));
  BOOST_TEST((ParseIncludeObject(&empty, &error) == IncludeObject::kMetadata));
  BOOST_TEST((ParseIncludeObject(&none, &error) == IncludeObject::kNone));
  BOOST_TEST((ParseIncludeObject(&object, &error) == IncludeObject::kObject));
  BOOST_TEST(!ParseIncludeObject(&bogus, &error).has_value());
  BOOST_TEST(error ==
             R"(Unable to convert to Table as requested: includeObject: Unsupported value: "Everything": supported values: "Metadata", "None", "Object")");
}

BOOST_AUTO_TEST_CASE(human_durations_match_apimachinery) {
  BOOST_TEST(HumanDuration(-3s) == "<invalid>");
  BOOST_TEST(HumanDuration(-1500ms) == "0s");
  BOOST_TEST(HumanDuration(0s) == "0s");
  BOOST_TEST(HumanDuration(119s) == "119s");
  BOOST_TEST(HumanDuration(2min) == "2m");
  BOOST_TEST(HumanDuration(5min + 3s) == "5m3s");
  BOOST_TEST(HumanDuration(10min + 59s) == "10m");
  BOOST_TEST(HumanDuration(179min) == "179m");
  BOOST_TEST(HumanDuration(3h) == "3h");
  BOOST_TEST(HumanDuration(7h + 59min) == "7h59m");
  BOOST_TEST(HumanDuration(12h + 30min) == "12h");
  BOOST_TEST(HumanDuration(48h) == "2d");
  BOOST_TEST(HumanDuration(24h * 7 + 23h) == "7d23h");
  BOOST_TEST(HumanDuration(24h * 300) == "300d");
  BOOST_TEST(HumanDuration(24h * (365 * 3 + 5)) == "3y5d");
  BOOST_TEST(HumanDuration(24h * 365 * 9) == "9y");
}

BOOST_AUTO_TEST_CASE(rfc3339_parsing_accepts_what_go_accepts) {
  BOOST_TEST(ParseRfc3339("2024-01-01T00:00:00Z").has_value());
  BOOST_TEST(ParseRfc3339("2024-01-01T00:00:00.5Z").has_value());
  BOOST_TEST(ParseRfc3339("2024-01-01T00:00:00,5Z").has_value());
  BOOST_TEST(ParseRfc3339("2024-02-29T00:00:00Z").has_value());
  BOOST_TEST((*ParseRfc3339("2024-01-01T01:00:00+01:00") == *ParseRfc3339("2024-01-01T00:00:00Z")));
  BOOST_TEST(std::chrono::duration_cast<std::chrono::milliseconds>(*ParseRfc3339("2024-01-01T00:00:00.25Z") -
                                                                  *ParseRfc3339("2024-01-01T00:00:00Z"))
                 .count() == 250);
  for (const char* bad : {"2024-01-01t00:00:00Z", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01T00:00:00", "2024-01-01 00:00:00Z",
                          "2024-1-01T00:00:00Z", "2024-01-01T00:00:60Z", "2024-01-01T00:00:00.Z",
                          "2024-01-01T00:00:00z", "yesterday", ""}) {
    BOOST_TEST(!ParseRfc3339(bad).has_value(), bad);
  }
}

}  // namespace
}  // namespace kubefold::emulator
