// Tests for the emulator's client-go JSONPath: the cases of client-go's own
// jsonpath_test.go (expected outputs as Go prints them), the printer-column
// paths of kubefold's CRDs, and the missing-field and comparison rules.
#define BOOST_TEST_MODULE emulator_jsonpath
#include <boost/test/unit_test.hpp>

#include <algorithm>
#include <iterator>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "tests/emulator/gojson.h"
#include "tests/emulator/jsonpath.h"

namespace kubefold::emulator {
namespace {

Json J(std::string_view text) { return Json::parse(text); }

// Go's JSONPath.Execute: each part's results printed, parts concatenated.
// "ERROR: <message>" on a parse or evaluation error.
std::string Execute(std::string_view tmpl, const Json& data, bool allow_missing = false) {
  std::string error;
  auto path = JsonPath::Parse(tmpl, &error);
  if (!path) return "PARSE ERROR: " + error;
  path->AllowMissingKeys(allow_missing);
  auto results = path->FindResults(data, &error);
  if (!results) return "ERROR: " + error;
  std::string out;
  for (const auto& part : *results) out += JsonPath::PrintResults(part);
  return out;
}

const Json kTypes = J(R"({
  "bools": [true, false, true, false],
  "integers": [1, 2, 3, 4],
  "floats": [1.0, 2.2, 3.3, 4.0],
  "strings": ["one", "two", "three", "four"],
  "interfaces": [true, "one", 1, 1.1],
  "maps": [{"name": "one", "value": 1}, {"name": "two", "value": 2.02},
           {"name": "three", "value": 3.03}, {"name": "four", "value": 4.04}]
})");

BOOST_AUTO_TEST_CASE(slices_indexes_and_steps_print_as_client_go_prints_them) {
  BOOST_TEST(Execute("{ .bools }", kTypes) == "[true,false,true,false]");
  BOOST_TEST(Execute("{ .bools[0] }", kTypes) == "true");
  BOOST_TEST(Execute("{ .bools[-1] }", kTypes) == "false");
  BOOST_TEST(Execute("{ .bools[0:2] }", kTypes) == "true false");
  BOOST_TEST(Execute("{ .bools[:4:2] }", kTypes) == "true true");
  BOOST_TEST(Execute("{ .integers[-2] }", kTypes) == "3");
  BOOST_TEST(Execute("{ .integers[:4:2] }", kTypes) == "1 3");
  BOOST_TEST(Execute("{ .floats }", kTypes) == "[1,2.2,3.3,4]");
  BOOST_TEST(Execute("{ .floats[0] }", kTypes) == "1");
  BOOST_TEST(Execute("{ .floats[:4:2] }", kTypes) == "1 3.3");
  BOOST_TEST(Execute("{ .strings }", kTypes) == R"(["one","two","three","four"])");
  BOOST_TEST(Execute("{ .strings[-2] }", kTypes) == "three");
  BOOST_TEST(Execute("{ .interfaces }", kTypes) == R"([true,"one",1,1.1])");
  BOOST_TEST(Execute("{ .interfaces[:4:2] }", kTypes) == "true 1");
  BOOST_TEST(Execute("{ .maps[0] }", kTypes) == R"({"name":"one","value":1})");
  BOOST_TEST(Execute("{ .maps[::2] }", kTypes) == R"({"name":"one","value":1} {"name":"three","value":3.03})");
  BOOST_TEST(Execute("{ .maps[1::2] }", kTypes) == R"({"name":"two","value":2.02} {"name":"four","value":4.04})");
  BOOST_TEST(Execute("{ .maps[*].name }", kTypes) == "one two three four");
}

BOOST_AUTO_TEST_CASE(text_quotes_unions_filters_and_recursion) {
  BOOST_TEST(Execute("hello jsonpath", nullptr) == "hello jsonpath");
  BOOST_TEST(Execute("{..}", J("[1,2,3]")) == "[1,2,3]");
  BOOST_TEST(Execute("{[?(@<5)]}", J("[2,6,3,7]")) == "2 3");
  BOOST_TEST(Execute(R"({"{"})", nullptr) == "{");
  BOOST_TEST(Execute("{[1,3,4]}", J("[0,1,2,3,4]")) == "1 3 4");
  BOOST_TEST(Execute("{[0:2]}", J(R"(["Monday","Tudesday"])")) == "Monday Tudesday");
  const Json store = J(R"({"Name": "jsonpath",
    "Book": [{"Category": "reference", "Author": "Nigel Rees", "Price": 8.95},
             {"Category": "fiction", "Author": "Evelyn Waugh", "Price": 12.99},
             {"Category": "fiction", "Author": "Herman Melville", "Price": 8.99}],
    "Bicycle": [{"Color": "red", "Price": 19.95, "IsNew": true}, {"Color": "green", "Price": 20.01, "IsNew": false}],
    "Labels": {"engieer": 10, "web/html": 15, "k8s-app": 20}})");
  BOOST_TEST(Execute("hello {.Name}", store) == "hello jsonpath");
  BOOST_TEST(Execute("{$.Labels.web/html}", store) == "15");
  BOOST_TEST(Execute("{.Labels.k8s-app}", store) == "20");
  BOOST_TEST(Execute("{.Bicycle[*].Color}", store) == "red green");
  BOOST_TEST(Execute("{..Price}", store) == "8.95 12.99 8.99 19.95 20.01");
  BOOST_TEST(Execute("{...Price}", store) == "8.95 12.99 8.99 19.95 20.01");
  BOOST_TEST(Execute("{.Book[-1:].Author}", store) == "Herman Melville");
  BOOST_TEST(Execute("{..Book[2].Author}", store) == "Herman Melville");
  BOOST_TEST(Execute("{.Bicycle[?(@.IsNew==true)].Color}", store) == "red");
  BOOST_TEST(Execute("{.Book[?(@.Price<9.0)].Author}", store) == "Nigel Rees Herman Melville");
  BOOST_TEST(Execute("{.Book[?(@.Price>=8.99)].Price}", store) == "12.99 8.99");
  BOOST_TEST(Execute("{.Book[?(@.Category!=\"fiction\")].Author}", store) == "Nigel Rees");
  BOOST_TEST(Execute("{.Book[?(@.Category == 'fiction')].Price}", store) == "12.99 8.99");
}

BOOST_AUTO_TEST_CASE(kubernetes_shaped_documents) {
  const Json nodes = J(R"({"kind": "List",
    "items": [
      {"kind": "None", "metadata": {"name": "127.0.0.1", "labels": {"kubernetes.io/hostname": "127.0.0.1"}},
       "status": {"capacity": {"cpu": "4"}, "ready": true,
                  "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.1"}]}},
      {"kind": "None", "metadata": {"name": "127.0.0.2", "labels": {"kubernetes.io/hostname": "127.0.0.2"}},
       "status": {"capacity": {"cpu": "8"}, "ready": false,
                  "addresses": [{"type": "LegacyHostIP", "address": "127.0.0.2"},
                                {"type": "another", "address": "127.0.0.3"}]}}],
    "users": [{"name": "myself", "user": {}}, {"name": "e2e", "user": {"username": "admin", "password": "secret"}}]})");
  BOOST_TEST(Execute("{.items[*].status.addresses[*].address}", nodes) == "127.0.0.1 127.0.0.2 127.0.0.3");
  BOOST_TEST(Execute("{.items[*].metadata.name}", nodes) == "127.0.0.1 127.0.0.2");
  BOOST_TEST(Execute("{.items[*]['metadata.name', 'status.capacity']}", nodes) ==
             R"(127.0.0.1 127.0.0.2 {"cpu":"4"} {"cpu":"8"})");
  BOOST_TEST(Execute(R"({.users[?(@.name=="e2e")].user.password})", nodes) == "secret");
  BOOST_TEST(Execute(R"({.items[0].metadata.labels.kubernetes\.io/hostname})", nodes) == "127.0.0.1");
  BOOST_TEST(Execute(R"({.items[?(@.metadata.labels.kubernetes\.io/hostname=="127.0.0.1")].kind})", nodes) == "None");
  BOOST_TEST(Execute("{.items[?(@..ready==true)].metadata.name}", nodes) == "127.0.0.1");
  // Recursive descent over maps is unordered in Go; compare as a set.
  std::istringstream words(Execute("{..name}", nodes));
  std::vector<std::string> names{std::istream_iterator<std::string>(words), {}};
  std::sort(names.begin(), names.end());
  BOOST_TEST((names == std::vector<std::string>{"127.0.0.1", "127.0.0.2", "e2e", "myself"}));

  const Json points = J(R"([{"id": "i1", "x": 4, "y": -5}, {"id": "i2", "x": -2, "y": -5, "z": 1},
    {"id": "i3", "x": 8, "y": 3}, {"id": "i4", "x": -6, "y": -1}, {"id": "i5", "x": 0, "y": 2, "z": 1}])");
  BOOST_TEST(Execute("{[?(@.z)].id}", points) == "i2 i5");
  BOOST_TEST(Execute("{[0]['id']}", points) == "i1");
  BOOST_TEST(Execute("{[?(@.x<0)].id}", points) == "i2 i4");
}

BOOST_AUTO_TEST_CASE(errors_match_client_go) {
  const Json store = J(R"({"Labels": {"a": 1}, "Book": [{"Price": 8.95}]})");
  BOOST_TEST(Execute("{hello}", store) == "ERROR: unrecognized identifier hello");
  BOOST_TEST(Execute("{.hello}", store) == "ERROR: hello is not found");
  BOOST_TEST(Execute("{.Labels[0]}", store) == "ERROR: map[string]interface {} is not array or slice");
  BOOST_TEST(Execute("{.Book[?(@.Price<>10)]}", store) == "ERROR: unrecognized filter operator <>");
  BOOST_TEST(Execute("{.Book[3]}", store) == "ERROR: array index out of bounds: index 3, length 1");
  BOOST_TEST(Execute("{.Book[::0]}", store) == "ERROR: step must be > 0");
  BOOST_TEST(Execute("{.a", store) == "PARSE ERROR: unclosed action");
  BOOST_TEST(Execute("{.a[0}", store) == "PARSE ERROR: unterminated array");
  BOOST_TEST(Execute("{.a[x]}", store) == "PARSE ERROR: invalid array index x");
  BOOST_TEST(Execute("{.a[?(@.b==1]}", store) == "PARSE ERROR: unterminated filter");
  BOOST_TEST(Execute("{.a[?(@.b==1)}", store) == "PARSE ERROR: unclosed array expect ]");
  BOOST_TEST(Execute(R"({"abc})", store) == "PARSE ERROR: unterminated quoted string");
  BOOST_TEST(Execute("{....a}", store) == "PARSE ERROR: invalid multiple recursive descent");
  BOOST_TEST(Execute("{|}", store) == "PARSE ERROR: unrecognized character in action: U+007C '|'");
  BOOST_TEST(Execute("{.a[-]}", store) == "PARSE ERROR: array index - is not a number");
  BOOST_TEST(Execute("{.a[1:2:3:4]}", store) == "PARSE ERROR: invalid array index 1:2:3:4");
  // The filter's operator run gives its last character back to the right side.
  BOOST_TEST(Execute("{.a[?(@.b==)]}", store) == "PARSE ERROR: unrecognized character in action: U+003D '='");
}

BOOST_AUTO_TEST_CASE(long_templates_parse_without_deep_recursion) {
  std::string tmpl;
  for (int i = 0; i < 100000; ++i) tmpl += "{.a}";
  BOOST_TEST(Execute(tmpl, J(R"({"a": "x"})")) == std::string(100000, 'x'));
}

BOOST_AUTO_TEST_CASE(missing_keys_give_nothing_when_allowed) {
  const Json o = J(R"({"spec": {"a": 1}, "status": null})");
  BOOST_TEST(Execute("{.hello}", o, true) == "");
  BOOST_TEST(Execute("before-{.hello}after", o, true) == "before-after");
  BOOST_TEST(Execute("{.status.phase}", o, true) == "");   // null ends the branch
  BOOST_TEST(Execute("{.status.phase}", o, false) == "ERROR: phase is not found");
  BOOST_TEST(Execute("{.spec.list[0]}", o, true) == "");
  BOOST_TEST(Execute("{.spec.list[*].x}", o, true) == "");
}

BOOST_AUTO_TEST_CASE(filters_skip_elements_without_the_field_and_refuse_mixed_kinds) {
  const Json conditions = J(R"({"status": {"conditions": [
      {"message": "no type"},
      {"type": "Synced", "status": "False"},
      {"type": "Ready", "status": "True", "observedGeneration": 3}]}})");
  BOOST_TEST(Execute(R"({.status.conditions[?(@.type=="Ready")].status})", conditions, true) == "True");
  // Without AllowMissingKeys the element without a type is an error, as in Go.
  BOOST_TEST(Execute(R"({.status.conditions[?(@.type=="Ready")].status})", conditions, false) ==
             "ERROR: type is not found");
  BOOST_TEST(Execute(R"({.status.conditions[?(@.type!="Ready")].status})", conditions, true) == "False");
  BOOST_TEST(Execute("{.status.conditions[?(@.observedGeneration>=3)].type}", conditions, true) == "Ready");
  BOOST_TEST(Execute("{.status.conditions[?(@.observedGeneration>2.5)].type}", conditions, true) ==
             "ERROR: incompatible types for comparison");
  BOOST_TEST(Execute("{.status.conditions[?(@.type==3)].type}", conditions, true) ==
             "ERROR: incompatible types for comparison");
  BOOST_TEST(Execute("{.status.conditions[?(@.type)].type}", conditions, true) == "Synced Ready");
  BOOST_TEST(Execute("{.status[?(@.type)]}", conditions, true).starts_with("ERROR: "));
  BOOST_TEST(Execute("{.status.conditions[?(@==\"x\")]}", J(R"({"status": {"conditions": ["x", "y"]}})")) == "x");
}

BOOST_AUTO_TEST_CASE(first_results_are_what_the_crd_printer_uses) {
  std::string error;
  auto path = JsonPath::Parse(R"({.status.conditions[?(@.type=="Ready")].status})", &error);
  BOOST_REQUIRE(path);
  path->AllowMissingKeys(true);
  auto none = path->FindResults(J(R"({"metadata": {"name": "east"}})"), &error);
  BOOST_REQUIRE(none);
  BOOST_TEST(none->size() == 1u);
  BOOST_TEST((*none)[0].empty());
  auto two = path->FindResults(J(R"({"status": {"conditions": [{"type": "Ready", "status": "True"},
                                                               {"type": "Ready", "status": "False"}]}})"),
                               &error);
  BOOST_REQUIRE(two);
  BOOST_TEST((*two)[0].size() == 2u);
  BOOST_TEST((*two)[0][0] == "True");
}

BOOST_AUTO_TEST_CASE(printed_values_follow_go_formatting) {
  BOOST_TEST(JsonPath::PrintResults({Json(1e6), Json(123456.0), Json(1e-5), Json(0.5)}) == "1e+06 123456 1e-05 0.5");
  BOOST_TEST(JsonPath::PrintResults({Json(nullptr)}) == "<no value>");
  BOOST_TEST(JsonPath::PrintResults({J(R"({"b": 1, "a": "<&>"})")}) == R"({"a":"\u003c\u0026\u003e","b":1})");
  BOOST_TEST(JsonPath::PrintResults({J("[1.0, 1e21, 1e-7]")}) == "[1,1e+21,1e-7]");
  BOOST_TEST(GoFloatJson(1e20) == "100000000000000000000");
  BOOST_TEST(GoFloatJson(0.000001) == "0.000001");
  BOOST_TEST(GoFloatJson(-2.5) == "-2.5");
  BOOST_TEST(GoJson(J(R"({"s": "a\u2028b\u0001"})"), KeyOrder::kAsStored) == R"({"s":"a\u2028b\u0001"})");
}

}  // namespace
}  // namespace kubefold::emulator
