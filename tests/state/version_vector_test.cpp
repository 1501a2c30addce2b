#define BOOST_TEST_MODULE version_vector_test
#include <boost/test/unit_test.hpp>

#include "state/version_vector.h"

using kubefold::StatusCode;
using kubefold::state::Ordering;
using kubefold::state::VersionVector;

BOOST_AUTO_TEST_CASE(absent_components_count_as_zero) {
  VersionVector a{{"eu-1", 0}};
  VersionVector empty;
  BOOST_TEST(a.Get("eu-1") == 0u);
  BOOST_TEST(a.Get("nowhere") == 0u);
  BOOST_TEST((a == empty));
  BOOST_TEST((a.Compare(empty) == Ordering::kEqual));
}

BOOST_AUTO_TEST_CASE(comparison_is_component_wise) {
  VersionVector a{{"eu-1", 3}, {"us-2", 5}};
  VersionVector b{{"eu-1", 4}, {"us-2", 5}};
  VersionVector c{{"eu-1", 2}, {"us-2", 9}};
  VersionVector d{{"eu-1", 3}, {"us-2", 5}, {"ap-3", 1}};
  BOOST_TEST((a.Compare(b) == Ordering::kLess));
  BOOST_TEST((b.Compare(a) == Ordering::kGreater));
  BOOST_TEST((a.Compare(c) == Ordering::kConcurrent));
  BOOST_TEST(a.Concurrent(c));
  BOOST_TEST((a < d));  // d has one more component
  BOOST_TEST((a <= a));
  BOOST_TEST(!(a < a));
  BOOST_TEST(!(b <= a));
  BOOST_TEST(!(a <= c));
  BOOST_TEST(!(c <= a));
}

BOOST_AUTO_TEST_CASE(merge_takes_the_component_wise_maximum) {
  VersionVector a{{"eu-1", 3}, {"us-2", 9}};
  VersionVector b{{"ap-3", 1}, {"eu-1", 7}};
  a.Merge(b);
  BOOST_TEST(a.ToJson() == R"({"ap-3":1,"eu-1":7,"us-2":9})");
  BOOST_TEST((b <= a));
  // Merge with a vector sharing the name list keeps sharing it.
  VersionVector c = a;
  c.Set("eu-1", 8);
  BOOST_TEST(c.shared_names() == a.shared_names());
  a.Merge(c);
  BOOST_TEST(a.Get("eu-1") == 8u);
  BOOST_TEST(a.shared_names() == c.shared_names());
}

BOOST_AUTO_TEST_CASE(set_inserts_new_components_in_name_order) {
  VersionVector v;
  v.Set("us-2", 7);
  v.Set("eu-1", 12);
  v.Set("us-2", 8);
  BOOST_TEST(v.size() == 2u);
  BOOST_TEST(v.name(0) == "eu-1");
  BOOST_TEST(v.counter(1) == 8u);
  BOOST_TEST(v.ToJson() == R"({"eu-1":12,"us-2":8})");
}

BOOST_AUTO_TEST_CASE(json_form_is_stable_and_omits_zeros) {
  VersionVector v{{"us-2", 7}, {"eu-1", 12}, {"idle", 0}};
  BOOST_TEST(v.ToJson() == R"({"eu-1":12,"us-2":7})");
  BOOST_TEST(VersionVector().ToJson() == "{}");
}

BOOST_AUTO_TEST_CASE(parse_round_trips) {
  auto v = VersionVector::Parse(R"( {"us-2": 7, "eu-1": 12, "big": 18446744073709551615} )");
  BOOST_TEST_REQUIRE(v.ok(), v.status().ToString());
  BOOST_TEST(v->Get("eu-1") == 12u);
  BOOST_TEST(v->Get("big") == 18446744073709551615ull);
  BOOST_TEST(v->ToJson() == R"({"big":18446744073709551615,"eu-1":12,"us-2":7})");
  auto again = VersionVector::Parse(v->ToJson());
  BOOST_TEST_REQUIRE(again.ok());
  BOOST_TEST((*again == *v));
  auto empty = VersionVector::Parse("{}");
  BOOST_TEST_REQUIRE(empty.ok());
  BOOST_TEST(empty->empty());
}

namespace {
std::string ParseError(std::string_view text) {
  auto r = VersionVector::Parse(text);
  BOOST_TEST_REQUIRE(!r.ok());
  BOOST_TEST((r.status().code() == StatusCode::kInvalidArgument));
  return r.status().message();
}
bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}
}  // namespace

BOOST_AUTO_TEST_CASE(parse_names_what_is_wrong) {
  BOOST_TEST(Contains(ParseError(""), "not valid JSON"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":12)"), "not valid JSON"));
  BOOST_TEST(Contains(ParseError("[1,2]"), "must be a JSON object"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":-3})"), R"("eu-1" must be an unsigned 64-bit integer, got a negative number)"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":1.5})"), "got not an integer"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":"12"})"), "got a string"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":null})"), "got a null"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":18446744073709551616})"), R"("eu-1" must be an unsigned 64-bit integer)"));
  BOOST_TEST(Contains(ParseError(R"({"":1})"), "cluster name is empty"));
  BOOST_TEST(Contains(ParseError("{\"" + std::string(254, 'a') + "\":1}"), "254 bytes long"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":1,"eu-1":2})"), R"(names cluster "eu-1" twice)"));
}

// Found by version_vector_fuzz: a number too large for a double made the
// JSON library throw an exception Parse did not catch.
BOOST_AUTO_TEST_CASE(parse_reports_overflowing_numbers_instead_of_throwing) {
  BOOST_TEST(Contains(ParseError("2e333333"), "number overflow"));
  BOOST_TEST(Contains(ParseError(R"({"eu-1":1e400})"), "number overflow"));
}
