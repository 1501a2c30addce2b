#define BOOST_TEST_MODULE record_test
#include <boost/test/unit_test.hpp>

#include <cstdint>
#include <limits>
#include <string>

#include "state/record.h"

using namespace kubefold::state;

namespace {

WorkloadObject Object(std::string group, std::string kind, std::string name, std::string json,
                      WorkloadSummary summary) {
  WorkloadObject o;
  o.key = WorkloadKey{std::move(group), std::move(kind), std::move(name)};
  o.object_json = std::move(json);
  o.summary = summary;
  return o;
}

struct RecordPtr {
  Record* r;
  explicit RecordPtr(const WorkloadObject& o) : r(Record::Create(o)) {}
  ~RecordPtr() { Record::Destroy(r); }
  RecordPtr(const RecordPtr&) = delete;
  RecordPtr& operator=(const RecordPtr&) = delete;
  Record* operator->() const { return r; }
};

}  // namespace

BOOST_AUTO_TEST_CASE(a_record_keeps_its_key_json_and_summary_exactly) {
  WorkloadSummary s{7, 6, 3, 2, 1};
  RecordPtr r(Object("apps", "Deployment", "web", R"({"spec":{"replicas":3}})", s));
  BOOST_TEST(r->group() == "apps");
  BOOST_TEST(r->kind() == "Deployment");
  BOOST_TEST(r->name() == "web");
  BOOST_TEST(r->object_json() == R"({"spec":{"replicas":3}})");
  BOOST_TEST((r->summary() == s));
  BOOST_TEST(r->counter() == 0u);
  BOOST_TEST(r->PayloadBytes() == 4u + 10u + 3u + 23u);
  // 32-byte header, five one-byte varints, then the payload.
  BOOST_TEST(r->ByteSize() == 32u + 5u + r->PayloadBytes());
}

BOOST_AUTO_TEST_CASE(summary_fields_round_trip_at_their_extremes) {
  constexpr int64_t kMin64 = std::numeric_limits<int64_t>::min();
  constexpr int64_t kMax64 = std::numeric_limits<int64_t>::max();
  constexpr int32_t kMin32 = std::numeric_limits<int32_t>::min();
  constexpr int32_t kMax32 = std::numeric_limits<int32_t>::max();
  const WorkloadSummary cases[] = {
      {},  // every field unset (-1)
      {0, 0, 0, 0, 0},
      {kMax64, kMin64, kMax32, kMin32, -1},
      {kMin64, kMax64, kMin32, kMax32, 0},
      {63, 64, -64, -65, 8191},  // varint byte boundaries
  };
  for (const WorkloadSummary& s : cases) {
    RecordPtr r(Object("", "DaemonSet", "agent", "{}", s));
    BOOST_TEST((r->summary() == s));
    BOOST_TEST(r->group() == "");
    BOOST_TEST(r->object_json() == "{}");
  }
  // The widest summary: two 10-byte and three 5-byte varints.
  RecordPtr wide(Object("", "Job", "x", "", {kMin64, kMax64, kMin32, kMax32, kMin32}));
  BOOST_TEST(wide->ByteSize() == 32u + 35u + 4u);
}

BOOST_AUTO_TEST_CASE(key_parts_of_the_maximum_length_are_kept_whole) {
  const std::string part(kMaxKeyPartBytes, 'k');
  WorkloadObject o = Object(part, part, part, R"({"a":1})", {});
  BOOST_TEST_REQUIRE(ValidateWorkload(std::string(kMaxKeyPartBytes, 'n'), o).ok());
  RecordPtr r(o);
  BOOST_TEST(r->group() == part);
  BOOST_TEST(r->kind() == part);
  BOOST_TEST(r->name() == part);
  BOOST_TEST(r->object_json() == R"({"a":1})");
}

BOOST_AUTO_TEST_CASE(same_content_compares_json_and_summary_but_not_the_counter) {
  const WorkloadSummary s{2, 2, 1, 1, 1};
  RecordPtr a(Object("apps", "Deployment", "web", R"({"v":1})", s));
  RecordPtr b(Object("apps", "Deployment", "web", R"({"v":1})", s));
  b->set_counter(9);
  BOOST_TEST(a->SameContent(*b.r));
  BOOST_TEST(a->content_hash() == b->content_hash());

  WorkloadSummary ready = s;
  ready.ready_replicas = 0;
  RecordPtr c(Object("apps", "Deployment", "web", R"({"v":1})", ready));
  BOOST_TEST(!a->SameContent(*c.r));

  RecordPtr d(Object("apps", "Deployment", "web", R"({"v":2})", s));
  BOOST_TEST(!a->SameContent(*d.r));
}
