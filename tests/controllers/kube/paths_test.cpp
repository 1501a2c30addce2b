#define BOOST_TEST_MODULE paths_test
#include <boost/test/unit_test.hpp>

#include <random>

#include "controllers/kube/internal/json_string.h"
#include "controllers/kube/paths.h"

using kubefold::kube::PercentDecode;
using kubefold::kube::PercentEncode;

BOOST_AUTO_TEST_CASE(percent_decoding_inverts_encoding_and_refuses_malformed_escapes) {
  BOOST_CHECK_EQUAL(*PercentDecode("app%3Dweb%2Ctier%21%3Ddb", false), "app=web,tier!=db");
  BOOST_CHECK_EQUAL(*PercentDecode("a+b%2Bc", true), "a b+c");
  BOOST_CHECK_EQUAL(*PercentDecode("a+b", false), "a+b");
  BOOST_CHECK_EQUAL(*PercentDecode("%7b%7D", false), "{}");
  for (const char* bad : {"%", "%4", "%zz", "a%g1", "abc%"}) BOOST_CHECK_MESSAGE(!PercentDecode(bad, true), bad);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string s(rng() % 40, '\0');
    for (char& c : s) c = static_cast<char>(rng() % 256);
    BOOST_REQUIRE_EQUAL(*PercentDecode(PercentEncode(s), true), s);
  }
}

BOOST_AUTO_TEST_CASE(json_string_literals_escape_quotes_backslashes_and_control_characters) {
  std::string out;
  kubefold::kube::internal::AppendJsonString(out, std::string("a\"b\\c\n\r\t\b\f\x01z\xc3\xa9", 14));
  BOOST_CHECK_EQUAL(out, "\"a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001z\xc3\xa9\"");
  out.clear();
  kubefold::kube::internal::AppendJsonString(out, "");
  BOOST_CHECK_EQUAL(out, "\"\"");
}
