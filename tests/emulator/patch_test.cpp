// Tests for the emulator's patching engine: each case feeds one small input
// and checks the exact object, status code, reason and message a real
// kube-apiserver v1.32 produces for it.
#define BOOST_TEST_MODULE emulator_patch
#include <boost/test/unit_test.hpp>

#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "tests/emulator/patch.h"

namespace kubefold::emulator {
namespace {

Json J(std::string_view text) { return Json::parse(text); }

// Key order of objects does not matter to a client; compare canonically.
std::string Canon(const Json& j) { return nlohmann::json::parse(j.dump()).dump(); }

Json Ok(const PatchResult& result) {
  if (IsError(result)) {
    const auto& e = std::get<PatchError>(result);
    BOOST_FAIL("unexpected error " << e.code << ": " << e.message << " (" << e.diagnostic << ")");
  }
  return std::get<Json>(result);
}

PatchError Err(const PatchResult& result) {
  if (!IsError(result)) BOOST_FAIL("expected an error, got " << std::get<Json>(result).dump());
  return std::get<PatchError>(result);
}

#define CHECK_JSON(actual, expected_text) BOOST_TEST(Canon(actual) == Canon(J(expected_text)))

// Checks what a client reads first in a Status.
void CheckStatus(const PatchError& e, int code, const std::string& reason, const std::string& message) {
  BOOST_TEST(e.code == code);
  BOOST_TEST(e.reason == reason);
  BOOST_TEST(e.message == message);
}

// Checks that the Status names exactly one cause, and that cause.
void CheckOnlyCause(const PatchError& e, const std::string& reason, const std::string& message,
                    const std::string& field) {
  BOOST_REQUIRE(e.causes.size() == 1u);
  BOOST_TEST(e.causes[0].reason == reason);
  BOOST_TEST(e.causes[0].message == message);
  BOOST_TEST(e.causes[0].field == field);
}

// --------------------------------------------------------------------------
// YAML
// --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(yaml_plain_scalars_resolve_as_go_yaml_v2_does) {
  const Json v = Ok(YamlToJson(
      "t: true\n"
      "yes_word: yes\n"
      "off_word: Off\n"
      "tilde: ~\n"
      "empty:\n"
      "int: 12\n"
      "neg: -7\n"
      "hex: 0x1F\n"
      "octal: 017\n"
      "float: 1.5\n"
      "integral_float: 3.0\n"
      "exp: 1e3\n"
      "date: 2001-12-14\n"
      "word: hello world\n"));
  CHECK_JSON(v, R"({"t":true,"yes_word":true,"off_word":false,"tilde":null,"empty":null,
                    "int":12,"neg":-7,"hex":31,"octal":15,"float":1.5,"integral_float":3,
                    "exp":1000,"date":"2001-12-14","word":"hello world"})");
  BOOST_TEST(v["int"].is_number_integer());
  BOOST_TEST(v["float"].is_number_float());
  BOOST_TEST(v["integral_float"].is_number_integer());
}

BOOST_AUTO_TEST_CASE(yaml_quoted_and_block_scalars_stay_strings) {
  const Json v = Ok(YamlToJson(
      "a: \"123\"\n"
      "b: 'true'\n"
      "c: \"null\"\n"
      "d: !!str 42\n"
      "e: |\n"
      "  line one\n"
      "  line two\n"
      "f: >\n"
      "  folded\n"
      "  text\n"));
  CHECK_JSON(v, R"({"a":"123","b":"true","c":"null","d":"42",
                    "e":"line one\nline two\n","f":"folded text\n"})");
}

BOOST_AUTO_TEST_CASE(yaml_keys_become_strings_the_go_way) {
  // go-yaml v2 reads the key `y` as the boolean true, and sigs.k8s.io/yaml
  // prints it back as "true": the well-known ConfigMap surprise.
  const Json v = Ok(YamlToJson("y: 1\n2: two\nplain: 3\n"));
  CHECK_JSON(v, R"({"true":1,"2":"two","plain":3})");
}

BOOST_AUTO_TEST_CASE(yaml_nested_maps_lists_and_merge_keys_convert) {
  const Json v = Ok(YamlToJson(
      "apiVersion: apps/v1\n"
      "kind: Deployment\n"
      "metadata:\n"
      "  name: web\n"
      "  labels: {app: web, tier: fe}\n"
      "spec:\n"
      "  template:\n"
      "    spec:\n"
      "      containers:\n"
      "      - name: nginx\n"
      "        ports:\n"
      "        - containerPort: 80\n"
      "        args: [\"-v\", 2]\n"
      "defaults: &d\n"
      "  a: 1\n"
      "  b: 2\n"
      "merged:\n"
      "  <<: *d\n"
      "  b: 3\n"));
  CHECK_JSON(v, R"({"apiVersion":"apps/v1","kind":"Deployment",
                    "metadata":{"name":"web","labels":{"app":"web","tier":"fe"}},
                    "spec":{"template":{"spec":{"containers":[
                      {"name":"nginx","ports":[{"containerPort":80}],"args":["-v",2]}]}}},
                    "defaults":{"a":1,"b":2},"merged":{"a":1,"b":3}})");
}

BOOST_AUTO_TEST_CASE(yaml_json_input_and_empty_document) {
  CHECK_JSON(Ok(YamlToJson(R"({"a": [1, {"b": null}], "c": "d"})")), R"({"a":[1,{"b":null}],"c":"d"})");
  BOOST_TEST(Ok(YamlToJson("")).is_null());
  // Only the first document counts.
  CHECK_JSON(Ok(YamlToJson("a: 1\n---\nb: 2\n")), R"({"a":1})");
}

BOOST_AUTO_TEST_CASE(yaml_syntax_errors_are_bad_requests_that_name_the_line) {
  CheckStatus(Err(YamlToJson("a: b: c\n")), 400, "BadRequest",
              "error converting YAML to JSON: yaml: line 1: mapping values are not allowed in this context");

  BOOST_TEST(Err(YamlToJson("a: [1, 2\n")).message ==
             "error converting YAML to JSON: yaml: line 2: did not find expected ',' or ']'");
  BOOST_TEST(Err(YamlToJson("a:\n\tb: 1\n")).message ==
             "error converting YAML to JSON: yaml: line 2: found character that cannot start any token");
}

BOOST_AUTO_TEST_CASE(yaml_values_json_cannot_hold_are_rejected) {
  BOOST_TEST(Err(YamlToJson("a: .nan\n")).message == "error converting YAML to JSON: json: unsupported value: NaN");
  BOOST_TEST(Err(YamlToJson("a: -.inf\n")).message == "error converting YAML to JSON: json: unsupported value: -Inf");
}

// --------------------------------------------------------------------------
// Merge patch: the examples of RFC 7386 appendix A, as the apiserver's
// evanphx/json-patch answers them.
// --------------------------------------------------------------------------

BOOST_AUTO_TEST_CASE(merge_patch_rfc7386_appendix_examples) {
  struct Case {
    const char* target;
    const char* patch;
    const char* result;
  };
  const Case cases[] = {
      {R"({"a":"b"})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"b"})", R"({"b":"c"})", R"({"a":"b","b":"c"})"},
      {R"({"a":"b"})", R"({"a":null})", R"({})"},
      {R"({"a":"b","b":"c"})", R"({"a":null})", R"({"b":"c"})"},
      {R"({"a":["b"]})", R"({"a":"c"})", R"({"a":"c"})"},
      {R"({"a":"c"})", R"({"a":["b"]})", R"({"a":["b"]})"},
      {R"({"a":{"b":"c"}})", R"({"a":{"b":"d","c":null}})", R"({"a":{"b":"d"}})"},
      {R"({"a":[{"b":"c"}]})", R"({"a":[1]})", R"({"a":[1]})"},
      {R"(["a","b"])", R"(["c","d"])", R"(["c","d"])"},
      {R"({"a":"b"})", R"(["c"])", R"(["c"])"},
      {R"({"e":null})", R"({"a":1})", R"({"e":null,"a":1})"},
      {R"([1,2])", R"({"a":"b","c":null})", R"({"a":"b"})"},
      {R"({})", R"({"a":{"bb":{"ccc":null}}})", R"({"a":{"bb":{}}})"},
  };
  for (const auto& c : cases) {
    BOOST_TEST_CONTEXT("target " << c.target << " patch " << c.patch) {
      CHECK_JSON(Ok(MergePatch(J(c.target), J(c.patch))), c.result);
    }
  }
}

BOOST_AUTO_TEST_CASE(merge_patch_null_or_scalar_patch_is_invalid_json_patch) {
  // RFC 7386 would return the patch itself; the apiserver answers 400.
  for (const char* patch : {"null", R"("bar")", "5"}) {
    CheckStatus(Err(MergePatch(J(R"({"a":"foo"})"), J(patch))), 400, "BadRequest", "Invalid JSON Patch");
  }
}

BOOST_AUTO_TEST_CASE(merge_patch_keeps_target_key_order_and_appends_new_keys) {
  const Json r = Ok(MergePatch(J(R"({"z":1,"a":{"y":1,"b":2}})"), J(R"({"a":{"c":3},"m":4})")));
  BOOST_TEST(r.dump() == R"({"z":1,"a":{"y":1,"b":2,"c":3},"m":4})");
}

// Random documents for the model-based cases below. Arrays hold scalars only:
// evanphx prunes nulls inside objects in arrays, RFC 7386 does not.
Json RandomValue(std::mt19937& rng, int depth, bool allow_null) {
  const int kind = std::uniform_int_distribution<int>(0, depth > 0 ? 5 : 3)(rng);
  switch (kind) {
    case 0: return allow_null && std::uniform_int_distribution<int>(0, 1)(rng) ? Json() : Json(true);
    case 1: return std::uniform_int_distribution<int>(-5, 5)(rng);
    case 2: return std::string(1, static_cast<char>('a' + std::uniform_int_distribution<int>(0, 3)(rng)));
    case 3: {
      Json a = Json::array();
      for (int i = std::uniform_int_distribution<int>(0, 3)(rng); i > 0; --i) a.push_back(RandomValue(rng, 0, false));
      return a;
    }
    default: {
      Json o = Json::object();
      for (int i = std::uniform_int_distribution<int>(0, 3)(rng); i > 0; --i) {
        o[std::string(1, static_cast<char>('k' + std::uniform_int_distribution<int>(0, 4)(rng)))] =
            RandomValue(rng, depth - 1, allow_null);
      }
      return o;
    }
  }
}

BOOST_AUTO_TEST_CASE(merge_patch_agrees_with_rfc7386_on_random_documents) {
  std::mt19937 rng(7386);
  for (int round = 0; round < 2000; ++round) {
    Json target = RandomValue(rng, 3, false);
    Json patch = RandomValue(rng, 3, true);
    if (!target.is_object()) target = Json{{"t", target}};
    if (!patch.is_object()) patch = Json{{"p", patch}};
    nlohmann::json model = nlohmann::json::parse(target.dump());
    model.merge_patch(nlohmann::json::parse(patch.dump()));
    BOOST_TEST_CONTEXT("round " << round << " target " << target.dump() << " patch " << patch.dump()) {
      BOOST_TEST(Canon(Ok(MergePatch(target, patch))) == model.dump());
    }
  }
}

BOOST_AUTO_TEST_CASE(json_patch_agrees_with_rfc6902_on_random_valid_operations) {
  std::mt19937 rng(6902);
  for (int round = 0; round < 2000; ++round) {
    Json doc = RandomValue(rng, 3, false);
    if (!doc.is_object()) doc = Json{{"d", doc}};
    // Pick an existing location and an operation that is valid there.
    std::vector<std::string> paths;
    const auto collect = [&](const Json& v, const std::string& at, const auto& self) -> void {
      if (!at.empty()) paths.push_back(at);
      if (v.is_object()) {
        for (const auto& [k, child] : v.items()) self(child, at + "/" + k, self);
      } else if (v.is_array()) {
        for (std::size_t i = 0; i < v.size(); ++i) self(v[i], at + "/" + std::to_string(i), self);
      }
    };
    collect(doc, "", collect);
    if (paths.empty()) continue;
    const std::string path = paths[std::uniform_int_distribution<std::size_t>(0, paths.size() - 1)(rng)];
    const Json value = RandomValue(rng, 1, false);
    Json op;
    switch (std::uniform_int_distribution<int>(0, 3)(rng)) {
      case 0: op = {{"op", "replace"}, {"path", path}, {"value", value}}; break;
      case 1: op = {{"op", "remove"}, {"path", path}}; break;
      case 2: op = {{"op", "add"}, {"path", path}, {"value", value}}; break;
      default: op = {{"op", "copy"}, {"from", path}, {"path", "/copied"}}; break;
    }
    const Json patch = Json::array({op});
    const nlohmann::json model =
        nlohmann::json::parse(doc.dump()).patch(nlohmann::json::parse(patch.dump()));
    BOOST_TEST_CONTEXT("round " << round << " doc " << doc.dump() << " patch " << patch.dump()) {
      BOOST_TEST(Canon(Ok(JsonPatch(doc, patch))) == model.dump());
    }
  }
}

// --------------------------------------------------------------------------
// JSON patch
// --------------------------------------------------------------------------

const char* kDoc = R"({"metadata":{"labels":{"app":"web"}},"spec":{"replicas":1,"list":["a","b","c"]}})";

PatchResult PatchDoc(std::string_view patch) { return JsonPatch(J(kDoc), J(patch)); }

BOOST_AUTO_TEST_CASE(json_patch_add_sets_members_inserts_and_appends) {
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"add","path":"/metadata/labels/tier","value":"fe"}])"))["metadata"],
             R"({"labels":{"app":"web","tier":"fe"}})");
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"add","path":"/spec/list/1","value":"x"}])"))["spec"]["list"],
             R"(["a","x","b","c"])");
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"add","path":"/spec/list/-","value":"z"}])"))["spec"]["list"],
             R"(["a","b","c","z"])");
  // evanphx/json-patch counts negative indices from the end.
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"add","path":"/spec/list/-1","value":"z"}])"))["spec"]["list"],
             R"(["a","b","c","z"])");
}

BOOST_AUTO_TEST_CASE(json_patch_remove_replace_move_copy_test) {
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"remove","path":"/spec/list/0"}])"))["spec"]["list"], R"(["b","c"])");
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"replace","path":"/spec/replicas","value":3}])"))["spec"],
             R"({"replicas":3,"list":["a","b","c"]})");
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"move","from":"/spec/list","path":"/spec/items"}])"))["spec"],
             R"({"replicas":1,"items":["a","b","c"]})");
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"copy","from":"/metadata/labels/app","path":"/spec/app"}])"))["spec"],
             R"({"replicas":1,"list":["a","b","c"],"app":"web"})");
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"test","path":"/spec/replicas","value":1},
                             {"op":"replace","path":"/spec/replicas","value":2}])"))["spec"]["replicas"],
             "2");
}

BOOST_AUTO_TEST_CASE(json_patch_replace_of_a_missing_key_adds_it_as_evanphx_v4_does) {
  CHECK_JSON(Ok(PatchDoc(R"([{"op":"replace","path":"/spec/paused","value":true}])"))["spec"],
             R"({"replicas":1,"list":["a","b","c"],"paused":true})");
}

// Every failed step is the same generic 422 on the wire.
void CheckStepFails(const char* patch, const std::string& diagnostic) {
  BOOST_TEST_CONTEXT(patch) {
    const PatchError& e = Err(PatchDoc(patch));
    CheckStatus(e, 422, "Invalid", "the server rejected our request due to an error in our request");
    BOOST_TEST(e.causes.empty());
    BOOST_TEST(e.diagnostic == diagnostic);
  }
}

BOOST_AUTO_TEST_CASE(json_patch_failed_steps_are_422_invalid) {
  CheckStepFails(R"([{"op":"add","path":"/nope/x","value":1}])",
                 R"(add operation does not apply: doc is missing path: "/nope/x": missing value)");
  CheckStepFails(R"([{"op":"remove","path":"/metadata/labels/tier"}])",
                 "error in remove for path: '/metadata/labels/tier': Unable to remove nonexistent key: tier: missing value");
  CheckStepFails(R"([{"op":"remove","path":"/spec/list/7"}])",
                 "error in remove for path: '/spec/list/7': Unable to access invalid index: 7: invalid index referenced");
  CheckStepFails(R"([{"op":"add","path":"/spec/list/9","value":"x"}])",
                 "error in add for path: '/spec/list/9': Unable to access invalid index: 9: invalid index referenced");
  CheckStepFails(R"([{"op":"add","path":"/spec/list/x","value":"x"}])",
                 "error in add for path: '/spec/list/x': value was not a proper array index: 'x': "
                 "strconv.Atoi: parsing \"x\": invalid syntax");
  CheckStepFails(R"([{"op":"replace","path":"/spec/list/5","value":"x"}])",
                 "replace operation does not apply: doc is missing key: /spec/list/5: missing value");
  CheckStepFails(R"([{"op":"move","from":"/spec/nope","path":"/spec/x"}])",
                 "error in move for path: 'nope': Unable to remove nonexistent key: nope: missing value");
  CheckStepFails(R"([{"op":"copy","from":"/nope/a","path":"/spec/x"}])",
                 "copy operation does not apply: doc is missing from path: /nope/a: missing value");
  CheckStepFails(R"([{"op":"test","path":"/spec/replicas","value":2}])",
                 "testing value /spec/replicas failed: test failed");
  CheckStepFails(R"([{"op":"frobnicate","path":"/spec"}])", "Unexpected kind: frobnicate");
  CheckStepFails(R"([{"op":"add","value":1}])", "add operation failed to decode path: missing value");
  CheckStepFails(R"([{"op":"add","path":"nope","value":1}])",
                 R"(add operation does not apply: doc is missing path: "nope": missing value)");
}

BOOST_AUTO_TEST_CASE(json_patch_a_failed_step_leaves_nothing_applied) {
  // The caller keeps its object: the earlier replace does not leak out.
  const Json doc = J(kDoc);
  BOOST_TEST(IsError(JsonPatch(doc, J(R"([{"op":"replace","path":"/spec/replicas","value":9},
                                        {"op":"test","path":"/spec/replicas","value":1}])"))));
  BOOST_TEST(doc["spec"]["replicas"] == 1);
}

BOOST_AUTO_TEST_CASE(json_patch_that_is_not_a_list_of_operations_is_a_bad_request) {
  CheckStatus(Err(PatchDoc(R"({"op":"add"})")), 400, "BadRequest",
              "json: cannot unmarshal object into Go value of type jsonpatch.Patch");
  BOOST_TEST(Err(PatchDoc(R"(["add"])")).message ==
             "json: cannot unmarshal string into Go value of type jsonpatch.Operation");
  // A null patch decodes to no operations.
  CHECK_JSON(Ok(PatchDoc("null")), kDoc);
}

BOOST_AUTO_TEST_CASE(json_patch_with_more_than_10000_operations_is_too_large) {
  Json ops = Json::array();
  for (int i = 0; i < 10001; ++i) ops.push_back(J(R"({"op":"test","path":"/spec/replicas","value":1})"));
  CheckStatus(Err(JsonPatch(J(kDoc), ops)), 413, "RequestEntityTooLarge",
              "Request entity too large: The allowed maximum operations in a JSON patch is 10000, got 10001");
}

// --------------------------------------------------------------------------
// Strategic merge patch
// --------------------------------------------------------------------------

const char* kDeployment = R"({
  "apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"web","namespace":"default","labels":{"app":"web","tier":"fe"},
              "annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{}"}},
  "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
          "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":"25%","maxUnavailable":"25%"}},
          "template":{"metadata":{"labels":{"app":"web"}},
                      "spec":{"containers":[
                        {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}],
                         "env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
                        {"name":"sidecar","image":"envoy:1.30"}],
                        "tolerations":[{"key":"a","operator":"Exists"}]}}}})";

const Json& Containers(const Json& deployment) { return deployment["spec"]["template"]["spec"]["containers"]; }

PatchResult PatchDeployment(std::string_view patch) {
  return StrategicMergePatch(J(kDeployment), J(patch), "Deployment");
}

BOOST_AUTO_TEST_CASE(smp_merges_containers_by_name) {
  const Json r = Ok(PatchDeployment(R"({"spec":{"template":{"spec":{"containers":[
      {"name":"sidecar","image":"envoy:1.31"},{"name":"init","image":"busybox"}]}}}})"));
  CHECK_JSON(Containers(r), R"([
      {"name":"nginx","image":"nginx:1.25","ports":[{"containerPort":80}],
       "env":[{"name":"A","value":"1"},{"name":"B","value":"2"}]},
      {"name":"sidecar","image":"envoy:1.31"},
      {"name":"init","image":"busybox"}])");
}

BOOST_AUTO_TEST_CASE(smp_merges_env_by_name_and_null_deletes_a_field) {
  const Json r = Ok(PatchDeployment(R"({"metadata":{"labels":{"tier":null}},
      "spec":{"template":{"spec":{"containers":[{"name":"nginx","env":[{"name":"B","value":"3"},{"name":"C","value":"4"}]}]}}}})"));
  CHECK_JSON(r["metadata"]["labels"], R"({"app":"web"})");
  CHECK_JSON(Containers(r)[0]["env"], R"([{"name":"A","value":"1"},{"name":"B","value":"3"},{"name":"C","value":"4"}])");
}

BOOST_AUTO_TEST_CASE(smp_patch_delete_removes_a_container) {
  const Json r =
      Ok(PatchDeployment(R"({"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}})"));
  BOOST_TEST(Containers(r).size() == 1u);
  BOOST_TEST(Containers(r)[0]["name"] == "nginx");
}

BOOST_AUTO_TEST_CASE(smp_patch_replace_replaces_a_list_and_a_map) {
  const Json r = Ok(PatchDeployment(R"({"metadata":{"labels":{"$patch":"replace","only":"this"}},
      "spec":{"template":{"spec":{"containers":[{"$patch":"replace"},{"name":"solo","image":"x"}]}}}})"));
  CHECK_JSON(r["metadata"]["labels"], R"({"only":"this"})");
  CHECK_JSON(Containers(r), R"([{"name":"solo","image":"x"}])");
}

BOOST_AUTO_TEST_CASE(smp_set_element_order_reorders_the_merged_list) {
  const Json r = Ok(PatchDeployment(R"({"spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"sidecar"},{"name":"nginx"}],
      "containers":[{"name":"nginx","image":"nginx:1.26"}]}}}})"));
  BOOST_TEST(Containers(r)[0]["name"] == "sidecar");
  BOOST_TEST(Containers(r)[1]["name"] == "nginx");
  BOOST_TEST(Containers(r)[1]["image"] == "nginx:1.26");
}

BOOST_AUTO_TEST_CASE(smp_retain_keys_clears_fields_not_listed) {
  const Json r = Ok(PatchDeployment(R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate"}}})"));
  CHECK_JSON(r["spec"]["strategy"], R"({"type":"Recreate"})");

  CheckStatus(Err(PatchDeployment(R"({"spec":{"strategy":{"$retainKeys":["type"],"rollingUpdate":{"maxSurge":1}}}})")),
              400, "BadRequest", "invalid patch format of retainKeys");
}

BOOST_AUTO_TEST_CASE(smp_delete_from_primitive_list_and_set_merge) {
  const Json pod = J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","finalizers":["a","b","c"]}})");
  const Json r = Ok(StrategicMergePatch(
      pod, J(R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["b"],"finalizers":["d"]}})"), "Pod"));
  // New primitives go before the server's items (mergeSortedSlice places
  // items the live list does not know first), whichever key Go visits first.
  BOOST_TEST(r["metadata"]["finalizers"].dump() == R"(["d","a","c"])");
}

BOOST_AUTO_TEST_CASE(smp_lists_without_a_merge_key_are_replaced) {
  const Json r =
      Ok(PatchDeployment(R"({"spec":{"template":{"spec":{"tolerations":[{"key":"b","operator":"Exists"}]}}}})"));
  CHECK_JSON(r["spec"]["template"]["spec"]["tolerations"], R"([{"key":"b","operator":"Exists"}])");
}

BOOST_AUTO_TEST_CASE(smp_service_ports_merge_by_port) {
  const Json svc = J(R"({"apiVersion":"v1","kind":"Service","metadata":{"name":"s"},
                         "spec":{"selector":{"app":"web"},"ports":[{"name":"http","port":80,"targetPort":8080},
                                                                   {"name":"https","port":443}]}})");
  const Json r = Ok(StrategicMergePatch(svc, J(R"({"spec":{"ports":[{"port":80,"targetPort":9090}]}})"), "Service"));
  CHECK_JSON(r["spec"]["ports"], R"([{"name":"http","port":80,"targetPort":9090},{"name":"https","port":443}])");
}

BOOST_AUTO_TEST_CASE(smp_as_kubectl_apply_sends_it_for_a_changed_image) {
  // What `kubectl apply` (client-side) computes after the image changed in
  // the file: the new last-applied annotation, the order of the containers
  // and the one changed field.
  const Json r = Ok(PatchDeployment(R"({
    "metadata":{"annotations":{"kubectl.kubernetes.io/last-applied-configuration":"{\"kind\":\"Deployment\"}\n"}},
    "spec":{"template":{"spec":{
      "$setElementOrder/containers":[{"name":"nginx"},{"name":"sidecar"}],
      "containers":[{"image":"nginx:1.27","name":"nginx"}]}}}})"));
  Json expected = J(kDeployment);
  expected["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
      "{\"kind\":\"Deployment\"}\n";
  expected["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.27";
  BOOST_TEST(Canon(r) == Canon(expected));
  BOOST_TEST(r.dump() == expected.dump());  // and nothing moved
}

BOOST_AUTO_TEST_CASE(smp_errors_are_reported_as_the_apiserver_reports_them) {
  CheckStatus(Err(PatchDeployment(R"({"spec":{"template":{"spec":{"containers":[{"image":"x"}]}}}})")), 500, "",
              "map: map[image:x] does not contain declared merge key: name");
  CheckStatus(Err(PatchDeployment(R"({"spec":{"template":{"spec":{"$setElementOrder":[]}}}})")), 400, "BadRequest",
              "invalid patch format of setElementOrder list");
  CheckStatus(
      Err(PatchDeployment(R"({"spec":{"template":{"spec":{"containers":[{"name":"nginx","$patch":"merge"}]}}}})")),
      500, "", "merging lists cannot yet be specified in the patch");
  CheckStatus(Err(PatchDeployment("[1]")), 400, "BadRequest",
              "json: cannot unmarshal array into Go value of type map[string]interface {}");
}

BOOST_AUTO_TEST_CASE(smp_is_known_for_built_in_kinds_only) {
  BOOST_TEST(SupportsStrategicMergePatch("Deployment"));
  BOOST_TEST(SupportsStrategicMergePatch("ConfigMap"));
  BOOST_TEST(!SupportsStrategicMergePatch("FailoverPolicy"));
}

// --------------------------------------------------------------------------
// Server-side apply and managed fields
// --------------------------------------------------------------------------

const char* kT0 = "2026-11-22T13:00:00Z";
const char* kT1 = "2026-11-22T13:05:00Z";
const char* kT2 = "2026-11-22T13:10:00Z";

const char* kApplied = R"({"apiVersion":"apps/v1","kind":"Deployment",
  "metadata":{"name":"web","namespace":"default","labels":{"app":"web","tier":"fe"}},
  "spec":{"replicas":2,"selector":{"matchLabels":{"app":"web"}},
          "template":{"metadata":{"labels":{"app":"web"}},
                      "spec":{"containers":[{"name":"nginx","image":"nginx:1.25"}]}}}})";

PatchResult Apply(const Json* live, const Json& config, const std::string& manager, const std::string& time,
                  bool force = false) {
  return ServerSideApply(ApplyRequest{live, config, manager, force, "apps/v1", "Deployment", time, ""});
}

const Json& Entries(const Json& object) { return object["metadata"]["managedFields"]; }

// An apply configuration that sets only the Deployment's replicas.
Json ReplicasConfig(int replicas) {
  Json config = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"}})");
  config["spec"]["replicas"] = replicas;
  return config;
}

// `object` as stored after `manager` created it at kT0: with its
// managedFields and the uid the server sets on create.
Json Created(const std::string& manager, const Json& object = J(kApplied)) {
  Json created = TrackUpdate(nullptr, object, manager, "apps/v1", kT0, "");
  created["metadata"]["uid"] = "u";
  return created;
}

// `live` after `manager` changed it with `edit` in an update at `time`.
Json Updated(const Json& live, const std::string& manager, const std::string& time,
             const std::function<void(Json&)>& edit) {
  Json next = live;
  edit(next);
  return TrackUpdate(&live, next, manager, "apps/v1", time, "");
}

BOOST_AUTO_TEST_CASE(apply_creates_the_object_with_one_apply_entry) {
  const Json r = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  Json expected = J(kApplied);
  expected["metadata"]["managedFields"] = J(R"([{
    "manager":"mgr","operation":"Apply","apiVersion":"apps/v1","time":"2026-11-22T13:00:00Z",
    "fieldsType":"FieldsV1",
    "fieldsV1":{"f:metadata":{"f:labels":{"f:app":{},"f:tier":{}}},
                "f:spec":{"f:replicas":{},"f:selector":{},
                          "f:template":{"f:metadata":{"f:labels":{"f:app":{}}},
                                        "f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":{".":{},"f:image":{},"f:name":{}}}}}}}}])");
  // Exactly the real server's shape, key order included.
  BOOST_TEST(Entries(r).dump() == expected["metadata"]["managedFields"].dump());
  BOOST_TEST(Canon(r) == Canon(expected));
}

BOOST_AUTO_TEST_CASE(apply_by_a_second_manager_changing_an_owned_field_conflicts) {
  const Json live = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  const PatchError& e = Err(Apply(&live, ReplicasConfig(3), "other", kT1));
  CheckStatus(e, 409, "Conflict", "Apply failed with 1 conflict: conflict with \"mgr\": .spec.replicas");
  CheckOnlyCause(e, "FieldManagerConflict", "conflict with \"mgr\"", ".spec.replicas");
}

BOOST_AUTO_TEST_CASE(apply_conflicts_on_several_fields_are_listed_per_manager) {
  const Json live = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  const Json change = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default"},
      "spec":{"replicas":3,"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.26"}]}}}})");
  const PatchError& e = Err(Apply(&live, change, "other", kT1));
  BOOST_TEST(e.message ==
             "Apply failed with 2 conflicts: conflicts with \"mgr\":\n"
             "- .spec.replicas\n"
             "- .spec.template.spec.containers[name=\"nginx\"].image");
  BOOST_REQUIRE(e.causes.size() == 2u);
  BOOST_TEST(e.causes[1].field == ".spec.template.spec.containers[name=\"nginx\"].image");
}

BOOST_AUTO_TEST_CASE(apply_with_force_takes_ownership) {
  const Json live = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  const Json r = Ok(Apply(&live, ReplicasConfig(3), "other", kT1, /*force=*/true));
  BOOST_TEST(r["spec"]["replicas"] == 3);
  BOOST_REQUIRE(Entries(r).size() == 2u);
  BOOST_TEST(Entries(r)[0]["manager"] == "mgr");
  BOOST_TEST(!Entries(r)[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  BOOST_TEST(Entries(r)[1]["manager"] == "other");
  CHECK_JSON(Entries(r)[1]["fieldsV1"], R"({"f:spec":{"f:replicas":{}}})");
  BOOST_TEST(Entries(r)[1]["time"] == kT1);
}

BOOST_AUTO_TEST_CASE(apply_without_a_field_it_applied_before_removes_it) {
  const Json live = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  Json config = J(kApplied);
  config["metadata"]["labels"].erase("tier");
  config["spec"].erase("replicas");
  const Json r = Ok(Apply(&live, config, "mgr", kT1));
  CHECK_JSON(r["metadata"]["labels"], R"({"app":"web"})");
  BOOST_TEST(!r["spec"].contains("replicas"));
  BOOST_TEST(!Entries(r)[0]["fieldsV1"]["f:metadata"]["f:labels"].contains("f:tier"));
  BOOST_TEST(Entries(r)[0]["time"] == kT1);
}

BOOST_AUTO_TEST_CASE(apply_keeps_a_dropped_field_that_another_applier_shares) {
  const Json live = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  // Same value: no conflict, both own .spec.replicas.
  const Json shared = Ok(Apply(&live, ReplicasConfig(2), "other", kT1));
  BOOST_REQUIRE(Entries(shared).size() == 2u);
  BOOST_TEST(Entries(shared)[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  CHECK_JSON(Entries(shared)[1]["fieldsV1"], R"({"f:spec":{"f:replicas":{}}})");

  Json config = J(kApplied);
  config["spec"].erase("replicas");
  const Json r = Ok(Apply(&shared, config, "mgr", kT2));
  BOOST_TEST(r["spec"]["replicas"] == 2);
  // Entries sort by time: "other" (13:05) now comes before "mgr" (13:10).
  BOOST_TEST(Entries(r)[0]["manager"] == "other");
  BOOST_TEST(Entries(r)[1]["manager"] == "mgr");
  BOOST_TEST(!Entries(r)[1]["fieldsV1"]["f:spec"].contains("f:replicas"));
}

BOOST_AUTO_TEST_CASE(apply_removes_a_container_it_no_longer_applies) {
  Json two = J(kApplied);
  two["spec"]["template"]["spec"]["containers"].push_back(J(R"({"name":"sidecar","image":"envoy"})"));
  const Json live = Ok(Apply(nullptr, two, "mgr", kT0));
  const Json r = Ok(Apply(&live, J(kApplied), "mgr", kT1));
  CHECK_JSON(Containers(r), R"([{"name":"nginx","image":"nginx:1.25"}])");
}

BOOST_AUTO_TEST_CASE(track_update_on_create_owns_every_field_as_a_real_server_does) {
  const Json r = TrackUpdate(nullptr, J(kApplied), "kubectl-create", "apps/v1", kT0, "");
  // Maps that did not exist get ".", the container's resources struct is
  // there in every Go object, and spec is never new.
  BOOST_TEST(Entries(r).dump() == J(R"([{
    "manager":"kubectl-create","operation":"Update","apiVersion":"apps/v1","time":"2026-11-22T13:00:00Z",
    "fieldsType":"FieldsV1",
    "fieldsV1":{"f:metadata":{"f:labels":{".":{},"f:app":{},"f:tier":{}}},
                "f:spec":{"f:replicas":{},"f:selector":{},
                          "f:template":{"f:metadata":{"f:labels":{".":{},"f:app":{}}},
                                        "f:spec":{"f:containers":{"k:{\"name\":\"nginx\"}":
                                          {".":{},"f:image":{},"f:name":{},"f:resources":{}}}}}}}}])").dump());
}

BOOST_AUTO_TEST_CASE(apply_conflicts_with_the_update_manager_of_a_client_side_apply) {
  const Json live = Created("kubectl-client-side-apply");
  const PatchError& e = Err(Apply(&live, ReplicasConfig(3), "mgr", kT1));
  CheckStatus(e, 409, "Conflict",
              "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: "
              ".spec.replicas");
  CheckOnlyCause(e, "FieldManagerConflict", "conflict with \"kubectl-client-side-apply\" using apps/v1",
                 ".spec.replicas");
}

BOOST_AUTO_TEST_CASE(track_update_moves_changed_fields_to_the_updater) {
  const Json live = Created("kubectl-client-side-apply");
  const Json r = Updated(live, "kubectl-scale", kT1, [](Json& o) { o["spec"]["replicas"] = 5; });
  BOOST_REQUIRE(Entries(r).size() == 2u);
  BOOST_TEST(Entries(r)[0]["manager"] == "kubectl-client-side-apply");
  BOOST_TEST(!Entries(r)[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  BOOST_TEST(Entries(r)[0]["time"] == kT0);
  BOOST_TEST(Entries(r)[1].dump() ==
             J(R"({"manager":"kubectl-scale","operation":"Update","apiVersion":"apps/v1","time":"2026-11-22T13:05:00Z",
                   "fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:replicas":{}}}})").dump());
}

BOOST_AUTO_TEST_CASE(track_update_drops_removed_fields_and_empty_entries) {
  const Json live =
      Updated(Created("creator"), "labeller", kT1, [](Json& o) { o["metadata"]["labels"]["extra"] = "x"; });
  const Json r = Updated(live, "creator", kT2, [](Json& o) { o["metadata"]["labels"].erase("extra"); });
  // The labeller owned only the removed label: its entry is gone. Removing a
  // field does not make the remover its owner, so "creator" keeps its time.
  BOOST_REQUIRE(Entries(r).size() == 1u);
  BOOST_TEST(Entries(r)[0]["manager"] == "creator");
  BOOST_TEST(Entries(r)[0]["time"] == kT0);
}

BOOST_AUTO_TEST_CASE(track_update_without_changes_keeps_the_object_identical) {
  const Json live = Created("creator");
  const Json r = TrackUpdate(&live, live, "someone", "apps/v1", kT2, "");
  BOOST_TEST(Canon(r) == Canon(live));
  // managedFields is written last in metadata, where Go's ObjectMeta has it.
  BOOST_TEST(std::prev(r["metadata"].end()).key() == "managedFields");
}

BOOST_AUTO_TEST_CASE(track_update_of_an_untracked_object_stays_untracked) {
  Json live = J(kApplied);
  live["metadata"]["uid"] = "u";
  const Json r = Updated(live, "kubectl-edit", kT1, [](Json& o) { o["spec"]["replicas"] = 4; });
  BOOST_TEST(!r["metadata"].contains("managedFields"));
}

BOOST_AUTO_TEST_CASE(track_update_ignores_server_owned_fields_and_status_of_the_main_resource) {
  Json created = J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"default",
      "uid":"u","resourceVersion":"7","creationTimestamp":"2026-11-22T13:00:00Z","generation":1},
      "spec":{"containers":[{"name":"c","image":"i"}]},"status":{"phase":"Pending"}})");
  const Json r = TrackUpdate(nullptr, created, "", "v1", kT0, "");
  BOOST_TEST(Entries(r).dump() ==
             J(R"([{"manager":"unknown","operation":"Update","apiVersion":"v1","time":"2026-11-22T13:00:00Z",
                    "fieldsType":"FieldsV1","fieldsV1":{"f:spec":{"f:containers":{"k:{\"name\":\"c\"}":
                    {".":{},"f:image":{},"f:name":{},"f:resources":{}}}}}}])").dump());

  // On /status only status counts, and the entry names the subresource.
  Json running = r;
  running["status"]["phase"] = "Running";
  const Json s = TrackUpdate(&r, running, "kubelet", "v1", kT1, "status");
  BOOST_REQUIRE(Entries(s).size() == 2u);
  BOOST_TEST(Entries(s)[1].dump() ==
             J(R"({"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-11-22T13:05:00Z",
                   "fieldsType":"FieldsV1","fieldsV1":{"f:status":{"f:phase":{}}},"subresource":"status"})").dump());
}

BOOST_AUTO_TEST_CASE(managed_fields_entries_are_ordered_apply_first_then_by_time) {
  const Json live = Updated(Created("creator"), "scaler", kT1, [](Json& o) { o["spec"]["replicas"] = 4; });
  const Json label = J(R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"default",
                           "labels":{"owner":"team"}}})");
  const Json r = Ok(Apply(&live, label, "labeller", kT2));
  BOOST_REQUIRE(Entries(r).size() == 3u);
  BOOST_TEST(Entries(r)[0]["manager"] == "labeller");
  BOOST_TEST(Entries(r)[0]["operation"] == "Apply");
  BOOST_TEST(Entries(r)[1]["manager"] == "creator");
  BOOST_TEST(Entries(r)[2]["manager"] == "scaler");
}

BOOST_AUTO_TEST_CASE(more_than_ten_update_managers_fold_into_ancient_changes) {
  Json live = Created("m00");  // at kT0, 13:00
  for (int i = 1; i <= 10; ++i) {
    const std::string n = (i < 10 ? "0" : "") + std::to_string(i);
    live = Updated(live, "m" + n, "2026-11-22T13:" + n + ":00Z",
                   [&](Json& o) { o["metadata"]["labels"]["l" + n] = "x"; });
  }
  // Eleven updaters: the two oldest (m00, m01) merge into one entry, which
  // takes the time of the newer of the two.
  BOOST_REQUIRE(Entries(live).size() == 10u);
  BOOST_TEST(Entries(live)[0]["manager"] == "ancient-changes");
  BOOST_TEST(Entries(live)[0]["time"] == "2026-11-22T13:01:00Z");
  BOOST_TEST(Entries(live)[0]["fieldsV1"]["f:metadata"]["f:labels"].contains("f:l01"));
  BOOST_TEST(Entries(live)[0]["fieldsV1"]["f:spec"].contains("f:replicas"));
  BOOST_TEST(Entries(live)[1]["manager"] == "m02");
}

BOOST_AUTO_TEST_CASE(apply_that_changes_nothing_keeps_the_timestamps) {
  const Json live = Ok(Apply(nullptr, J(kApplied), "mgr", kT0));
  const Json r = Ok(Apply(&live, J(kApplied), "mgr", kT2));
  BOOST_TEST(r.dump() == live.dump());
}

BOOST_AUTO_TEST_CASE(apply_requires_a_valid_field_manager) {
  const PatchError& e = Err(Apply(nullptr, J(kApplied), "", kT0));
  CheckStatus(e, 422, "Invalid",
              "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch");
  BOOST_TEST(e.details_group == "meta.k8s.io");
  BOOST_TEST(e.details_kind == "PatchOptions");
  CheckOnlyCause(e, "FieldValueRequired", "Required value: is required for apply patch", "fieldManager");

  BOOST_TEST(Err(Apply(nullptr, J(kApplied), std::string(129, 'm'), kT0)).message ==
             "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Too long: may not be more than 128 bytes");
  BOOST_TEST(Err(Apply(nullptr, J(kApplied), "bad\x01name", kT0)).message ==
             "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Invalid value: \"bad\\x01name\": "
             "invalid character U+0001 (at position 3)");
}

BOOST_AUTO_TEST_CASE(force_is_forbidden_on_other_patches) {
  const auto e = ValidatePatchOptions("kubectl-patch", /*apply=*/false, /*force_set=*/true);
  BOOST_REQUIRE(e.has_value());
  BOOST_TEST(e->message ==
             "PatchOptions.meta.k8s.io \"\" is invalid: force: Forbidden: may not be specified for non-apply patch");
  BOOST_TEST(!ValidatePatchOptions("kubectl-patch", false, false).has_value());
}

BOOST_AUTO_TEST_CASE(apply_rejects_a_config_of_another_type_or_with_managed_fields) {
  Json pod = J(R"({"apiVersion":"v1","kind":"Pod","metadata":{"name":"web"}})");
  CheckStatus(Err(Apply(nullptr, pod, "mgr", kT0)), 400, "BadRequest", "invalid object type: /v1, Kind=Pod");

  Json with_fields = J(kApplied);
  with_fields["metadata"]["managedFields"] = Json::array();
  BOOST_TEST(Err(Apply(nullptr, with_fields, "mgr", kT0)).message == "metadata.managedFields must be nil");

  BOOST_TEST(Err(Apply(nullptr, J("[1]"), "mgr", kT0)).message ==
             "error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into "
             "Go value of type map[string]interface {}");
}

BOOST_AUTO_TEST_CASE(apply_of_duplicate_list_keys_fails_as_the_typed_conversion_does) {
  Json config = J(kApplied);
  config["spec"]["template"]["spec"]["containers"].push_back(J(R"({"name":"nginx","image":"other"})"));
  CheckStatus(Err(Apply(nullptr, config, "mgr", kT0)), 500, "",
              "failed to create typed patch object (default/web; apps/v1, Kind=Deployment): "
              ".spec.template.spec.containers: duplicate entries for key [name=\"nginx\"]");
}

BOOST_AUTO_TEST_CASE(apply_list_keys_use_their_defaults) {
  // Container ports are keyed by containerPort and protocol, TCP by default.
  Json config = J(kApplied);
  config["spec"]["template"]["spec"]["containers"][0]["ports"] = J(R"([{"containerPort":80}])");
  const Json r = Ok(Apply(nullptr, config, "mgr", kT0));
  const Json& nginx = Entries(r)[0]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"];
  CHECK_JSON(nginx["f:ports"], R"({"k:{\"containerPort\":80,\"protocol\":\"TCP\"}":{".":{},"f:containerPort":{}}})");
}

BOOST_AUTO_TEST_CASE(kubectl_server_side_apply_keeps_the_last_applied_annotation_in_step) {
  Json annotated = J(kApplied);
  annotated["metadata"]["annotations"] = J(R"({"kubectl.kubernetes.io/last-applied-configuration":"{}"})");
  const Json live = Created("kubectl-client-side-apply", annotated);
  const Json r = Ok(Apply(&live, ReplicasConfig(2), "kubectl", kT1));
  BOOST_TEST(r["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] ==
             "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"metadata\":{\"name\":\"web\",\"namespace\":"
             "\"default\"},\"spec\":{\"replicas\":2}}\n");
}

BOOST_AUTO_TEST_CASE(kubectl_server_side_apply_takes_over_what_client_side_apply_recorded) {
  // `kubectl apply` then `kubectl apply --server-side` with a new image: the
  // client-side entry owns the image, but its last-applied annotation still
  // matches the live object, so kubectl may take it over without --force.
  Json file = J(kApplied);
  Json annotated = file;
  annotated["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = file.dump();
  Json live = Created("kubectl-client-side-apply", annotated);
  Json next = file;
  next["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.26";

  const PatchError& other = Err(Apply(&live, next, "someone-else", kT1));
  BOOST_TEST(other.message ==
             "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: "
             ".spec.template.spec.containers[name=\"nginx\"].image");

  const Json upgraded = Ok(Apply(&live, next, "kubectl", kT1));
  BOOST_TEST(Containers(upgraded)[0]["image"] == "nginx:1.26");
  BOOST_REQUIRE(Entries(upgraded).size() == 2u);
  BOOST_TEST(Entries(upgraded)[0]["manager"] == "kubectl");
  const Json& csa = Entries(upgraded)[1];
  BOOST_TEST(csa["manager"] == "kubectl-client-side-apply");
  BOOST_TEST(!csa["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"]["k:{\"name\":\"nginx\"}"].contains(
      "f:image"));

  // A field someone else changed since is not covered by the annotation.
  live = Updated(live, "kubectl-scale", kT1, [](Json& o) { o["spec"]["replicas"] = 5; });
  const PatchError& e = Err(Apply(&live, next, "kubectl", kT2));
  BOOST_TEST(e.message == "Apply failed with 1 conflict: conflict with \"kubectl-scale\" using apps/v1: .spec.replicas");
}

BOOST_AUTO_TEST_CASE(custom_kinds_have_atomic_lists_unless_told_otherwise) {
  const Json cr = J(R"({"apiVersion":"kubefold.io/v1","kind":"FailoverPolicy","metadata":{"name":"p"},
                        "spec":{"targets":[{"name":"a"},{"name":"b"}]}})");
  const Json atomic = Ok(ServerSideApply(ApplyRequest{nullptr, cr, "op", false, "kubefold.io/v1", "FailoverPolicy",
                                                      kT0, ""}));
  CHECK_JSON(Entries(atomic)[0]["fieldsV1"], R"({"f:spec":{"f:targets":{}}})");

  const Json keyed = Ok(ServerSideApply(ApplyRequest{nullptr, cr, "op", false, "kubefold.io/v1", "FailoverPolicy",
                                                     kT0, "", KindHints{std::nullopt, {{"spec.targets", {"name"}}}}}));
  CHECK_JSON(Entries(keyed)[0]["fieldsV1"],
             R"({"f:spec":{"f:targets":{"k:{\"name\":\"a\"}":{".":{},"f:name":{}},"k:{\"name\":\"b\"}":{".":{},"f:name":{}}}}})");
}

BOOST_AUTO_TEST_CASE(field_manager_defaults_to_the_user_agent_product) {
  BOOST_TEST(ResolveFieldManager("", "kubectl/v1.32.4 (linux/amd64) kubernetes/59526cd") == "kubectl");
  BOOST_TEST(ResolveFieldManager("", "Go-http-client/1.1") == "Go-http-client");
  BOOST_TEST(ResolveFieldManager("", "OpenAPI-Generator/31.0.0/python") == "OpenAPI-Generator");
  BOOST_TEST(ResolveFieldManager("kubectl-edit", "kubectl/v1.32.4") == "kubectl-edit");
  BOOST_TEST(ResolveFieldManager("", std::string(200, 'a')) == std::string(128, 'a'));
  BOOST_TEST(ResolveFieldManager("", "we\tird/1") == "weird");
}

}  // namespace
}  // namespace kubefold::emulator
