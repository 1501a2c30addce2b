// Label selectors as the API server parses and matches them.
#define BOOST_TEST_MODULE label_selector_test
#include <boost/test/unit_test.hpp>

#include "controllers/internal/json_scan.h"
#include "controllers/label_selector.h"

using kubefold::controllers::LabelSelector;
using kubefold::controllers::Labels;

namespace {

bool Match(const std::string& selector, const Labels& labels) {
  auto s = LabelSelector::Parse(selector);
  BOOST_REQUIRE_MESSAGE(s.ok(), selector + ": " + s.status().ToString());
  return s->Matches(labels);
}

std::string Error(const std::string& selector) {
  auto s = LabelSelector::Parse(selector);
  BOOST_REQUIRE_MESSAGE(!s.ok(), selector + " parsed");
  return s.status().message();
}

}  // namespace

BOOST_AUTO_TEST_CASE(every_operator_matches_as_kubernetes_does) {
  const Labels web{{"tier", "web"}, {"env", "prod"}, {"example.com/team", "a"}};
  BOOST_CHECK(Match("", web));
  BOOST_CHECK(Match("", {}));
  BOOST_CHECK(Match("tier=web", web));
  BOOST_CHECK(Match("tier==web", web));
  BOOST_CHECK(!Match("tier=api", web));
  BOOST_CHECK(Match("tier!=api", web));
  BOOST_CHECK(Match("missing!=x", web));  // a missing label satisfies !=
  BOOST_CHECK(!Match("tier!=web", web));
  BOOST_CHECK(Match("tier in (api, web)", web));
  BOOST_CHECK(!Match("tier in (api,db)", web));
  BOOST_CHECK(!Match("missing in (x)", web));
  BOOST_CHECK(Match("tier notin (api)", web));
  BOOST_CHECK(Match("missing notin (x)", web));
  BOOST_CHECK(!Match("tier notin (web)", web));
  BOOST_CHECK(Match("tier", web));
  BOOST_CHECK(!Match("missing", web));
  BOOST_CHECK(Match("!missing", web));
  BOOST_CHECK(!Match("!tier", web));
  BOOST_CHECK(Match("tier=web,env=prod", web));
  BOOST_CHECK(!Match("tier=web,env=dev", web));
  BOOST_CHECK(Match(" tier = web , example.com/team in (a) ", web));
  BOOST_CHECK(Match("empty=", {{"empty", ""}}));
}

BOOST_AUTO_TEST_CASE(errors_are_clear) {
  BOOST_CHECK_EQUAL(Error("tier in web"), "label selector \"tier in web\": expected '(' opening the value set at position 8");
  BOOST_CHECK_EQUAL(Error("tier in (a b)"), "label selector \"tier in (a b)\": expected ',' or ')' in the value set at position 11");
  BOOST_CHECK_EQUAL(Error("=web"), "label selector \"=web\": expected a label key at position 0");
  BOOST_CHECK_EQUAL(Error("tier=web,"), "label selector \"tier=web,\": expected a label key at position 9");
  BOOST_CHECK_EQUAL(Error("Bad_Prefix.com/x=y"),
                    "label selector \"Bad_Prefix.com/x=y\": expected a valid label key, not \"Bad_Prefix.com/x\" at position 0");
  BOOST_CHECK_EQUAL(Error("tier=-web"), "label selector \"tier=-web\": expected a valid label value, not \"-web\" at position 5");
  BOOST_CHECK_EQUAL(Error("tier >= 3"), "label selector \"tier >= 3\": expected =, ==, !=, in or notin at position 5");
  BOOST_CHECK_EQUAL(Error("tier=web env=prod"), "label selector \"tier=web env=prod\": expected ',' between requirements at position 9");
}

BOOST_AUTO_TEST_CASE(metadata_is_scanned_without_a_full_parse_and_escapes_fall_back_to_one) {
  kubefold::controllers::internal::Metadata m;
  BOOST_REQUIRE(kubefold::controllers::internal::ScanMetadata(
      R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","labels":{"tier":"web","a":"b"},)"
      R"("annotations":{"note":"x, {y}"},"ownerReferences":[{"a":[1,{"b":"}"}]}]},"spec":{"replicas":2}})",
      m));
  BOOST_CHECK_EQUAL(m.labels.size(), 2u);
  BOOST_CHECK_EQUAL(m.labels.at("tier"), "web");
  BOOST_CHECK_EQUAL(m.annotations.at("note"), "x, {y}");
  BOOST_REQUIRE(kubefold::controllers::internal::ScanMetadata(
      R"({"metadata":{"labels":{"q":"say \"hi\"","u":"\u00e9"}}})", m));
  BOOST_CHECK_EQUAL(m.labels.at("q"), "say \"hi\"");
  BOOST_CHECK_EQUAL(m.labels.at("u"), "\xc3\xa9");
  BOOST_CHECK(kubefold::controllers::internal::ScanMetadata(R"({"spec":{}})", m));
  BOOST_CHECK(m.labels.empty());
  BOOST_CHECK(!kubefold::controllers::internal::ScanMetadata("not json", m));
  BOOST_CHECK(!kubefold::controllers::internal::ScanMetadata(R"({"metadata":{"labels":)", m));
}
