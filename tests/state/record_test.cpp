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
  // 24-byte header, the name's length, the object's length (46 < 128: one
  // byte), five one-byte varints, then the payload.
  BOOST_TEST(r->ByteSize() == 24u + 1u + 1u + 5u + r->PayloadBytes());
}

BOOST_AUTO_TEST_CASE(the_header_shares_one_word_between_the_birth_and_two_key_lengths) {
  const std::string group(kMaxKeyPartBytes, 'g');
  const std::string kind(kMaxKeyPartBytes - 1, 'k');
  // 64 bytes of JSON: the length varint (64 << 1) takes two bytes.
  const std::string json = R"({"spec":{"replicas":3},"pad":")" + std::string(32, 'p') + R"("})";
  BOOST_TEST_REQUIRE(json.size() == 64u);
  RecordPtr r(Object(group, kind, "web", json, {}));
  BOOST_TEST(r->ByteSize() == 24u + 1u + 2u + 5u + r->PayloadBytes());
  for (uint64_t birth : {internal::Versioned::kMaxBirth, uint64_t{0}, uint64_t{1} << 47}) {
    r->set_birth(birth);
    BOOST_TEST(r->birth() == birth);
    BOOST_TEST(r->group() == group);
    BOOST_TEST(r->kind() == kind);
    BOOST_TEST(r->name() == "web");
    BOOST_TEST(r->object_json() == json);
    BOOST_TEST(!r->compressed());
  }
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
  BOOST_TEST(wide->ByteSize() == 24u + 1u + 1u + 35u + 4u);
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

namespace {

// Two Deployments of one cluster: same shape, different names, images and
// resource values.
std::string DeploymentJson(const std::string& name, const std::string& image, int replicas) {
  return R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":")" + name +
         R"(","namespace":"shop","labels":{"app":")" + name +
         R"(","team":"payments"}},"spec":{"replicas":)" + std::to_string(replicas) +
         R"(,"selector":{"matchLabels":{"app":")" + name +
         R"("}},"template":{"metadata":{"labels":{"app":")" + name +
         R"("}},"spec":{"containers":[{"name":"app","image":")" + image +
         R"(","imagePullPolicy":"IfNotPresent","terminationMessagePath":"/dev/termination-log",)"
         R"("terminationMessagePolicy":"File","resources":{"requests":{"cpu":"250m","memory":"256Mi"}}}],)"
         R"("restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst",)"
         R"("schedulerName":"default-scheduler"}}},"status":{"observedGeneration":4,"replicas":)" +
         std::to_string(replicas) + R"(,"conditions":[{"type":"Available","status":"True",)"
         R"("reason":"MinimumReplicasAvailable","message":"Deployment has minimum availability."}]}})";
}

}  // namespace

BOOST_AUTO_TEST_CASE(a_compressed_record_gives_back_exactly_the_object_it_was_given) {
  const std::string first = DeploymentJson("checkout", "registry.example.com/shop/checkout:1.4.2", 3);
  const std::string second = DeploymentJson("cart-api", "registry.example.com/shop/cart:2.0.9", 5);
  const ObjectDictionary* dict = ObjectDictionary::ForKind("record-test-eu-1", "apps", "Deployment", first);
  BOOST_TEST_REQUIRE(dict != nullptr);
  // The key decides: a later sample does not replace the dictionary.
  BOOST_TEST(ObjectDictionary::ForKind("record-test-eu-1", "apps", "Deployment", second) == dict);
  BOOST_TEST(ObjectDictionary::ForKind("record-test-us-2", "apps", "Deployment", second) != dict);

  const WorkloadSummary s{4, 4, 5, 5, 5};
  WorkloadObject o = Object("apps", "Deployment", "cart-api", second, s);
  RecordPtr plain(o);
  o.compress_with = dict;
  RecordPtr packed(o);
  BOOST_TEST(!plain->compressed());
  BOOST_TEST_REQUIRE(packed->compressed());
  BOOST_TEST(packed->object_json() == second);
  std::string appended = "[";
  packed->AppendObjectJson(appended);
  BOOST_TEST(appended == "[" + second);
  BOOST_TEST((packed->summary() == s));
  BOOST_TEST(packed->name() == "cart-api");
  // Against a sibling as dictionary the object shrinks to a fraction; the
  // hash is the plain record's, so either form compares equal.
  BOOST_TEST_MESSAGE("object " << second.size() << " B; payload " << plain->PayloadBytes() << " B plain, "
                                << packed->PayloadBytes() << " B compressed");
  BOOST_TEST(packed->PayloadBytes() * 3 < plain->PayloadBytes());
  // The record names its dictionary by number, in one byte here, after the
  // frame's length (one byte below 64 bytes, two below 8 KiB).
  std::string frame;
  dict->Compress(second, frame);
  BOOST_TEST_REQUIRE(frame.size() < 8192u);
  const size_t length_bytes = frame.size() < 64u ? 1u : 2u;
  BOOST_TEST_REQUIRE(dict->id() < 128u);
  BOOST_TEST(ObjectDictionary::ById(dict->id()) == dict);
  BOOST_TEST(ObjectDictionary::ById(static_cast<uint32_t>(ObjectDictionary::Count())) == nullptr);
  BOOST_TEST(ObjectDictionary::ById(ObjectDictionary::kMaxDictionaries) == nullptr);
  BOOST_TEST(packed->PayloadBytes() == 4u + 10u + 8u + frame.size());
  BOOST_TEST(packed->ByteSize() == 24u + 1u + length_bytes + 1u + 5u + packed->PayloadBytes());
  BOOST_TEST(packed->content_hash() == plain->content_hash());
  BOOST_TEST(packed->SameContent(*plain.r));
  BOOST_TEST(plain->SameContent(*packed.r));

  RecordPtr again(o);  // same dictionary, same object: the same bytes
  BOOST_TEST(again->SameContent(*packed.r));
  WorkloadObject changed = o;
  changed.object_json = DeploymentJson("cart-api", "registry.example.com/shop/cart:2.1.0", 5);
  RecordPtr newer(changed);
  BOOST_TEST(newer->compressed());
  BOOST_TEST(!newer->SameContent(*packed.r));
  BOOST_TEST(!newer->SameContent(*plain.r));
  BOOST_TEST(newer->object_json() == changed.object_json);
}

BOOST_AUTO_TEST_CASE(an_object_compression_would_not_shrink_is_kept_plain) {
  const ObjectDictionary* dict = ObjectDictionary::ForKind("record-test-eu-1", "", "ConfigMap", R"({"data":{}})");
  BOOST_TEST_REQUIRE(dict != nullptr);
  // A frame header and the dictionary's number outweigh a tiny object.
  WorkloadObject o = Object("", "ConfigMap", "c", R"({"a":1})", {});
  o.compress_with = dict;
  RecordPtr r(o);
  BOOST_TEST(!r->compressed());
  BOOST_TEST(r->object_json() == R"({"a":1})");
  BOOST_TEST(r->PayloadBytes() == 9u + 1u + 7u);
  // An empty object: nothing to compress, nothing to sample.
  o.object_json.clear();
  RecordPtr empty(o);
  BOOST_TEST(empty->object_json() == "");
  BOOST_TEST(ObjectDictionary::ForKind("record-test-eu-1", "", "Empty", "") == nullptr);
}

BOOST_AUTO_TEST_CASE(a_dictionary_refuses_a_frame_it_did_not_make) {
  const std::string first = DeploymentJson("checkout", "registry.example.com/shop/checkout:1.4.2", 3);
  const ObjectDictionary* a = ObjectDictionary::For("record-test/a", first);
  const ObjectDictionary* b = ObjectDictionary::For("record-test/b", "something else entirely");
  const std::string json = DeploymentJson("cart-api", "registry.example.com/shop/cart:2.0.9", 5);
  std::string frame = "overwritten";
  a->Compress(json, frame);
  std::string out = "kept";
  BOOST_TEST(a->Decompress(frame, out));
  BOOST_TEST(out == "kept" + json);
  out = "kept";
  BOOST_TEST(!a->Decompress("not a frame", out));
  BOOST_TEST(!a->Decompress(frame.substr(0, frame.size() / 2), out));
  BOOST_TEST(out == "kept");  // nothing appended on failure
  // Another dictionary reads the frame wrongly or not at all, never as json.
  std::string other;
  if (b->Decompress(frame, other)) BOOST_TEST(other != json);
  BOOST_TEST(ObjectDictionary::Count() >= 2u);
  BOOST_TEST(ObjectDictionary::TotalBytes() > first.size());
}
