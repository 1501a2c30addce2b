#define BOOST_TEST_MODULE rfc3339
#include <boost/test/unit_test.hpp>

#include "controllers/kube/internal/rfc3339.h"

namespace kubefold::kube::internal {
namespace {

using std::chrono::system_clock;

int64_t Micros(const char* text) {
  auto t = ParseRfc3339(text);
  BOOST_TEST_REQUIRE(t.has_value(), text);
  return std::chrono::duration_cast<std::chrono::microseconds>(t->time_since_epoch()).count();
}

BOOST_AUTO_TEST_CASE(parses_utc_offsets_and_fractions_to_exact_instants) {
  BOOST_TEST(Micros("1970-01-01T00:00:00Z") == 0);
  BOOST_TEST(Micros("2026-11-22T10:00:00Z") == 1'795'341'600'000'000);
  BOOST_TEST(Micros("2026-11-22T11:00:00+01:00") == 1'795'341'600'000'000);
  BOOST_TEST(Micros("2026-11-22T04:30:00-05:30") == 1'795'341'600'000'000);
  BOOST_TEST(Micros("2026-11-22t10:00:00.5z") == 1'795'341'600'500'000);
  BOOST_TEST(Micros("2026-11-22T10:00:00.123456789Z") == 1'795'341'600'123'456);
  BOOST_TEST(Micros("2024-02-29T23:59:59Z") == 1'709'251'199'000'000);
}

BOOST_AUTO_TEST_CASE(rejects_what_is_not_rfc_3339) {
  for (const char* bad : {"", "2026-11-22", "2026-11-22T10:00:00", "2026-11-22T10:00Z", "2026-13-01T00:00:00Z",
                          "2025-02-29T00:00:00Z", "2026-11-22T24:00:00Z", "2026-11-22T10:00:60Z",
                          "2026-11-22T10:00:00.Z", "2026-11-22T10:00:00+0100", "2026-11-22T10:00:00Z ",
                          "26-11-22T10:00:00Z", "2026-11-22X10:00:00Z", "1795341600"}) {
    BOOST_TEST(!ParseRfc3339(bad).has_value(), bad);
  }
}

BOOST_AUTO_TEST_CASE(instants_beyond_the_clock_range_saturate_instead_of_overflowing) {
  BOOST_TEST((*ParseRfc3339("9999-12-31T23:59:59Z") == system_clock::time_point::max()));
  BOOST_TEST((*ParseRfc3339("4052-01-01T00:00:00Z") == system_clock::time_point::max()));
  BOOST_TEST((*ParseRfc3339("0000-01-01T00:00:00Z") == system_clock::time_point::min()));
  BOOST_TEST(Micros("2261-12-31T23:59:59Z") == 9'214'646'399'000'000);
}

BOOST_AUTO_TEST_CASE(formats_whole_seconds_in_utc) {
  BOOST_TEST(FormatRfc3339(*ParseRfc3339("2026-11-22T11:00:00.9+01:00")) == "2026-11-22T10:00:00Z");
  BOOST_TEST(FormatRfc3339(system_clock::time_point{}) == "1970-01-01T00:00:00Z");
}

}  // namespace
}  // namespace kubefold::kube::internal
