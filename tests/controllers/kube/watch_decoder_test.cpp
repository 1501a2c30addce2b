#define BOOST_TEST_MODULE watch_decoder_test
#include <boost/test/unit_test.hpp>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "controllers/kube/watch_decoder.h"

using namespace kubefold::kube;
using kubefold::Status;
using kubefold::StatusCode;
using nlohmann::json;

namespace {

const ResourceType kDeployments{"apps", "v1", "Deployment"};
const ResourceType kStatefulSets{"apps", "v1", "StatefulSet"};
const ResourceType kDaemonSets{"apps", "v1", "DaemonSet"};
const ResourceType kWidgets{"example.com", "v1", "Widget"};

json Fixture(const std::string& file) {
  std::ifstream in(std::string(KUBEFOLD_SHARED_FIXTURES_DIR) + "/kubernetes-api-testdata/" + file);
  BOOST_TEST_REQUIRE(in.good(), "fixture " << file << " not found");
  std::stringstream ss;
  ss << in.rdbuf();
  return json::parse(ss.str());
}

std::string Event(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump();
}

std::string ErrorOf(const kubefold::Result<WatchEvent>& r) { return r.ok() ? "" : r.status().message(); }

bool Contains(const std::string& s, std::string_view part) { return s.find(part) != std::string::npos; }

}  // namespace

BOOST_AUTO_TEST_CASE(a_fully_populated_deployment_is_pruned_and_summarised) {
  json d = Fixture("apps.v1.Deployment.json");
  d["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = d.dump();
  auto ev = DecodeWatchEvent(Event("ADDED", d), kDeployments);
  BOOST_TEST_REQUIRE(ev.ok(), ev.status().ToString());
  BOOST_TEST((ev->type == EventType::kAdded));
  BOOST_TEST_REQUIRE(ev->object.has_value());
  const DecodedObject& o = *ev->object;
  BOOST_TEST(o.ns == "namespaceValue");
  BOOST_TEST(o.resource_version == "resourceVersionValue");
  BOOST_TEST(ev->resource_version == "resourceVersionValue");
  BOOST_TEST(o.uid == "uidValue");
  BOOST_TEST(o.workload.key.group == "apps");
  BOOST_TEST(o.workload.key.kind == "Deployment");
  BOOST_TEST(o.workload.key.name == "nameValue");
  BOOST_TEST(o.workload.summary.generation == 7);
  BOOST_TEST(o.workload.summary.observed_generation == 1);
  BOOST_TEST(o.workload.summary.desired_replicas == 1);
  BOOST_TEST(o.workload.summary.ready_replicas == 7);
  BOOST_TEST(o.workload.summary.available_replicas == 4);

  // Exactly the noise is gone; everything else is kept as it was.
  json expected = Fixture("apps.v1.Deployment.json");
  expected["metadata"].erase("managedFields");
  expected["metadata"].erase("selfLink");
  BOOST_TEST(json::parse(o.workload.object_json) == expected);
  // Only the workload's own metadata is pruned: the pod template's (which
  // the fixture populates too) is the user's content and stays.
  BOOST_TEST(json::parse(o.workload.object_json)["spec"]["template"]["metadata"].contains("managedFields"));
  BOOST_TEST(!json::parse(o.workload.object_json)["metadata"].contains("managedFields"));
  BOOST_TEST(!Contains(o.workload.object_json, "last-applied-configuration"));
  BOOST_TEST(o.workload.object_json.size() < d.dump().size() / 2);  // the last-applied copy is gone
}

BOOST_AUTO_TEST_CASE(statefulset_and_daemonset_summaries_come_from_their_own_fields) {
  auto ss = DecodeObject(Fixture("apps.v1.StatefulSet.json").dump(), kStatefulSets);
  BOOST_TEST_REQUIRE(ss.ok(), ss.status().ToString());
  BOOST_TEST(ss->workload.summary.desired_replicas == 1);
  BOOST_TEST(ss->workload.summary.ready_replicas == 3);
  BOOST_TEST(ss->workload.summary.available_replicas == 11);
  BOOST_TEST(ss->workload.summary.observed_generation == 1);

  auto ds = DecodeObject(Fixture("apps.v1.DaemonSet.json").dump(), kDaemonSets);
  BOOST_TEST_REQUIRE(ds.ok(), ds.status().ToString());
  BOOST_TEST(ds->workload.summary.desired_replicas == 3);  // status.desiredNumberScheduled
  BOOST_TEST(ds->workload.summary.ready_replicas == 4);    // status.numberReady
  BOOST_TEST(ds->workload.summary.available_replicas == 7);  // status.numberAvailable
  BOOST_TEST(ds->workload.summary.observed_generation == 5);
  BOOST_TEST(!json::parse(ds->workload.object_json)["metadata"].contains("managedFields"));
}

BOOST_AUTO_TEST_CASE(absent_counts_are_zero_for_builtin_kinds_and_unset_for_others) {
  json fresh = {{"apiVersion", "apps/v1"},
                {"kind", "Deployment"},
                {"metadata", {{"name", "web"}, {"namespace", "shop"}, {"resourceVersion", "5"}, {"generation", 1}}},
                {"spec", {{"replicas", 3}}}};
  auto d = DecodeObject(fresh.dump(), kDeployments);
  BOOST_TEST_REQUIRE(d.ok(), d.status().ToString());
  BOOST_TEST(d->workload.summary.generation == 1);
  BOOST_TEST(d->workload.summary.observed_generation == 0);
  BOOST_TEST(d->workload.summary.desired_replicas == 3);
  BOOST_TEST(d->workload.summary.ready_replicas == 0);
  BOOST_TEST(d->workload.summary.available_replicas == 0);

  json widget = {{"apiVersion", "example.com/v1"}, {"kind", "Widget"}, {"metadata", {{"name", "w"}}}};
  auto w = DecodeObject(widget.dump(), kWidgets);
  BOOST_TEST_REQUIRE(w.ok(), w.status().ToString());
  BOOST_TEST((w->workload.summary == kubefold::state::WorkloadSummary{}));
  BOOST_TEST(w->ns == "");
}

BOOST_AUTO_TEST_CASE(deleted_carries_the_revision_of_the_delete) {
  json d = {{"apiVersion", "apps/v1"},
            {"kind", "Deployment"},
            {"metadata", {{"name", "web"}, {"namespace", "shop"}, {"resourceVersion", "918"}}}};
  auto ev = DecodeWatchEvent(Event("DELETED", d), kDeployments);
  BOOST_TEST_REQUIRE(ev.ok(), ev.status().ToString());
  BOOST_TEST((ev->type == EventType::kDeleted));
  BOOST_TEST(ev->resource_version == "918");
  BOOST_TEST(ev->object->workload.key.name == "web");
}

BOOST_AUTO_TEST_CASE(bookmarks_yield_only_the_resume_point_whatever_noise_they_carry) {
  // A real Job bookmark, with a typed server's zero-value fields.
  const std::string job =
      R"({"type":"BOOKMARK","object":{"kind":"Job","apiVersion":"batch/v1","metadata":{"resourceVersion":"1"},)"
      R"("spec":{"template":{"metadata":{},"spec":{"containers":null}}},"status":{}}})";
  auto ev = DecodeWatchEvent(job, ResourceType{"batch", "v1", "Job"});
  BOOST_TEST_REQUIRE(ev.ok(), ev.status().ToString());
  BOOST_TEST((ev->type == EventType::kBookmark));
  BOOST_TEST(ev->resource_version == "1");
  BOOST_TEST(!ev->initial_events_end);
  BOOST_TEST(!ev->object.has_value());

  const std::string end =
      R"({"type":"BOOKMARK","object":{"kind":"Deployment","apiVersion":"apps/v1","metadata":{"resourceVersion":"12746",)"
      R"("annotations":{"k8s.io/initial-events-end":"true"}}}})";
  auto e2 = DecodeWatchEvent(end, kDeployments);
  BOOST_TEST_REQUIRE(e2.ok(), e2.status().ToString());
  BOOST_TEST(e2->initial_events_end);
  BOOST_TEST(e2->resource_version == "12746");

  auto bad = DecodeWatchEvent(R"({"type":"BOOKMARK","object":{"metadata":{}}})", kDeployments);
  BOOST_TEST(ErrorOf(bad) == "watch event BOOKMARK: metadata.resourceVersion is missing");
}

BOOST_AUTO_TEST_CASE(error_events_carry_the_status_and_410_means_relist) {
  const std::string expired =
      R"j({"type":"ERROR","object":{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",)j"
      R"j("message":"too old resource version: 1 (3171407)","reason":"Expired","code":410}})j";
  auto ev = DecodeWatchEvent(expired, kDeployments);
  BOOST_TEST_REQUIRE(ev.ok(), ev.status().ToString());
  BOOST_TEST((ev->type == EventType::kError));
  BOOST_TEST(ev->status.code == 410);
  BOOST_TEST(ev->status.reason == "Expired");
  BOOST_TEST(ev->status.message == "too old resource version: 1 (3171407)");
  BOOST_TEST(IsResourceExpired(ev->status));

  auto gone = DecodeWatchEvent(
      R"({"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"gone","reason":"Gone","code":410}})",
      kDeployments);
  BOOST_TEST_REQUIRE(gone.ok());
  BOOST_TEST(IsResourceExpired(gone->status));

  auto internal = DecodeWatchEvent(
      R"({"type":"ERROR","object":{"kind":"Status","status":"Failure","message":"etcd","reason":"InternalError","code":500}})",
      kDeployments);
  BOOST_TEST_REQUIRE(internal.ok());
  BOOST_TEST(!IsResourceExpired(internal->status));
  BOOST_TEST(internal->status.code == 500);
}

BOOST_AUTO_TEST_CASE(bad_watch_lines_get_errors_naming_what_is_wrong) {
  BOOST_TEST(Contains(ErrorOf(DecodeWatchEvent("not json", kDeployments)), "watch line is not valid JSON: "));
  BOOST_TEST(ErrorOf(DecodeWatchEvent("[1,2]", kDeployments)) == "watch line is an array, not an event object");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"object":{}})", kDeployments)) == "watch event has no \"type\"");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"type":"UPSERTED","object":{}})", kDeployments)) ==
             "watch event has unknown type \"UPSERTED\" (expected ADDED, MODIFIED, DELETED, BOOKMARK or ERROR)");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"type":"ADDED"})", kDeployments)) ==
             "watch event ADDED: \"object\" is missing");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"type":"ADDED","object":"x"})", kDeployments)) ==
             "watch event ADDED: \"object\" is a string");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"type":"ADDED","object":{"metadata":{"namespace":"shop"}}})",
                                      kDeployments)) ==
             "watch event ADDED (apps/v1 Deployment): metadata.name is missing");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(
                 R"({"type":"MODIFIED","object":{"metadata":{"name":"web","resourceVersion":"3"},"spec":{"replicas":"3"}}})",
                 kDeployments)) ==
             "watch event MODIFIED (apps/v1 Deployment) \"web\": spec.replicas: expected an integer, got a string");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(
                 R"({"type":"MODIFIED","object":{"metadata":{"name":"web","resourceVersion":"3"},"spec":{"replicas":4294967296}}})",
                 kDeployments)) ==
             "watch event MODIFIED (apps/v1 Deployment) \"web\": spec.replicas: 4294967296 is out of range");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"type":"ADDED","object":{"kind":"Pod","metadata":{"name":"p"}}})",
                                      kDeployments)) ==
             "watch event ADDED (apps/v1 Deployment): kind is \"Pod\", expected \"Deployment\"");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(R"({"type":"ADDED","object":{"metadata":{"name":"web"}}})", kDeployments)) ==
             "watch event ADDED \"web\": metadata.resourceVersion is missing");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(
                 R"({"type":"ADDED","object":{"metadata":{"name":")" + std::string(300, 'n') + R"(","resourceVersion":"1"}}})",
                 kDeployments)) ==
             "watch event ADDED (apps/v1 Deployment) \"" + std::string(300, 'n') +
                 "\": workload name is 300 bytes long; at most 253 are allowed");
}

BOOST_AUTO_TEST_CASE(duplicate_fields_where_kubefold_reads_keys_are_refused) {
  // Found by watch_decoder_fuzz: a second "kind" would have been stored.
  BOOST_TEST(ErrorOf(DecodeWatchEvent(
                 R"({"type":"DELETED","object":{"kind":"Deployment","metadata":{"name":"w","resourceVersion":"5"},"kind":{"replicas":3}}})",
                 kDeployments)) == "watch event DELETED (apps/v1 Deployment): duplicate field \"kind\"");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(
                 R"({"type":"ADDED","object":{"metadata":{"name":"w","resourceVersion":"5","name":"x"}}})",
                 kDeployments)) == "watch event ADDED (apps/v1 Deployment): duplicate field \"metadata.name\"");
  BOOST_TEST(ErrorOf(DecodeWatchEvent(
                 R"({"type":"ADDED","object":{"metadata":{"name":"w","resourceVersion":"5","annotations":{"a":"1","a":"2"}}}})",
                 kDeployments)) ==
             "watch event ADDED (apps/v1 Deployment): duplicate field \"metadata.annotations.a\"");
  // Elsewhere the content is opaque and kept as sent.
  BOOST_TEST(DecodeWatchEvent(
                 R"({"type":"ADDED","object":{"metadata":{"name":"w","resourceVersion":"5"},"spec":{"x":1,"x":2}}})",
                 kDeployments)
                 .ok());
}

BOOST_AUTO_TEST_CASE(deep_nesting_and_invalid_utf8_are_refused) {
  std::string deep = R"({"type":"ADDED","object":{"metadata":{"name":"w","resourceVersion":"1"},"spec":)";
  for (int i = 0; i < 1000; ++i) deep += "[";
  for (int i = 0; i < 1000; ++i) deep += "]";
  deep += "}}";
  BOOST_TEST(ErrorOf(DecodeWatchEvent(deep, kDeployments)) == "watch line nests deeper than 128 levels");

  std::string bad_utf8 = R"({"type":"ADDED","object":{"metadata":{"name":"w)";
  bad_utf8 += "\xff\xfe";
  bad_utf8 += R"(","resourceVersion":"1"}}})";
  BOOST_TEST(Contains(ErrorOf(DecodeWatchEvent(bad_utf8, kDeployments)), "watch line is not valid JSON: "));
}

BOOST_AUTO_TEST_CASE(list_items_get_their_kind_and_pages_their_continuation) {
  const std::string body =
      R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"77","continue":"tok",)"
      R"("remainingItemCount":12},"items":[)"
      R"({"metadata":{"name":"a","namespace":"shop","resourceVersion":"70","managedFields":[{"manager":"m"}]},"spec":{"replicas":2}},)"
      R"({"metadata":{"name":"b","namespace":"shop","resourceVersion":"71"}}]})";
  auto page = DecodeList(body, kDeployments);
  BOOST_TEST_REQUIRE(page.ok(), page.status().ToString());
  BOOST_TEST(page->resource_version == "77");
  BOOST_TEST(page->continue_token == "tok");
  BOOST_TEST(page->remaining_item_count.value_or(-1) == 12);
  BOOST_TEST_REQUIRE(page->items.size() == 2u);
  BOOST_TEST(page->items[0].workload.object_json ==
             R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"a","namespace":"shop","resourceVersion":"70"},"spec":{"replicas":2}})");
  BOOST_TEST(page->items[0].workload.summary.desired_replicas == 2);
  BOOST_TEST(page->items[1].workload.key.name == "b");

  auto empty = DecodeList(R"({"kind":"DeploymentList","metadata":{"resourceVersion":"5"},"items":null})", kDeployments);
  BOOST_TEST_REQUIRE(empty.ok());
  BOOST_TEST(empty->items.empty());
  BOOST_TEST(!empty->remaining_item_count.has_value());

  auto no_rv = DecodeList(R"({"kind":"DeploymentList","metadata":{},"items":[]})", kDeployments);
  BOOST_TEST(no_rv.status().message() == "DeploymentList: metadata.resourceVersion is missing");
  auto bad_item = DecodeList(R"({"metadata":{"resourceVersion":"5"},"items":[{"metadata":{"name":"a"}},{}]})",
                             kDeployments);
  BOOST_TEST(bad_item.status().message() == "DeploymentList item 1 (apps/v1 Deployment): metadata is missing");
  BOOST_TEST((bad_item.status().code() == StatusCode::kInvalidArgument));
}

BOOST_AUTO_TEST_CASE(status_bodies_decode_whether_json_or_plain_text) {
  auto s = DecodeStatus(Fixture("core.v1.Status.json").dump(), 500);
  BOOST_TEST(s.reason == "reasonValue");
  BOOST_TEST(s.message == "messageValue");
  BOOST_TEST(s.code == 6);  // the fixture's code field wins over the HTTP code
  BOOST_TEST(s.retry_after_seconds.value_or(-1) == 5);

  BOOST_TEST((s.cause_reasons == std::vector<std::string>{"reasonValue"}));  // details.causes[].reason

  auto plain = DecodeStatus("Too many requests, please try again later.\r\nmore\n", 429);
  BOOST_TEST(plain.code == 429);
  BOOST_TEST(plain.message == "Too many requests, please try again later.");
  BOOST_TEST(plain.reason == "");
  BOOST_TEST(plain.cause_reasons.empty());
}

BOOST_AUTO_TEST_CASE(too_large_resource_version_is_told_by_its_cause_or_an_older_servers_message) {
  const std::string with_cause =
      R"({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Timeout: Too large resource version: 105, current: 100","reason":"Timeout","details":{"causes":[{"reason":"ResourceVersionTooLarge","message":"Too large resource version"}],"retryAfterSeconds":1},"code":504})";
  BOOST_TEST(IsTooLargeResourceVersion(DecodeStatus(with_cause, 504)));
  ApiStatus cause_only{504, "Timeout", "some other words", std::nullopt, {"ResourceVersionTooLarge"}};
  BOOST_TEST(IsTooLargeResourceVersion(cause_only));
  ApiStatus message_only{504, "Timeout", "Timeout: Too large resource version: 105, current: 100", std::nullopt, {}};
  BOOST_TEST(IsTooLargeResourceVersion(message_only));
  ApiStatus gateway{504, "", "upstream request timeout", std::nullopt, {}};
  BOOST_TEST(!IsTooLargeResourceVersion(gateway));
  ApiStatus not_504{500, "Timeout", "Too large resource version", std::nullopt, {"ResourceVersionTooLarge"}};
  BOOST_TEST(!IsTooLargeResourceVersion(not_504));

  std::string many = R"({"code":504,"details":{"causes":[)";
  for (int i = 0; i < 40; ++i) many += std::string(i ? "," : "") + R"({"reason":"r)" + std::to_string(i) + R"("})";
  many += "]}}";
  BOOST_TEST(DecodeStatus(many, 504).cause_reasons.size() == 16u);  // bounded
}

BOOST_AUTO_TEST_CASE(the_framer_yields_the_same_lines_for_every_chunk_split) {
  const std::string stream =
      "{\"type\":\"ADDED\",\"n\":1}\n{\"type\":\"MODIFIED\",\"n\":2}\r\n\n{\"type\":\"DELETED\",\"n\":3}\n";
  const std::vector<std::string> want = {"{\"type\":\"ADDED\",\"n\":1}", "{\"type\":\"MODIFIED\",\"n\":2}",
                                         "{\"type\":\"DELETED\",\"n\":3}"};
  for (size_t a = 0; a <= stream.size(); ++a) {
    for (size_t b = a; b <= stream.size(); ++b) {
      LineFramer framer;
      std::vector<std::string> got;
      auto collect = [&](std::string_view line) {
        got.emplace_back(line);
        return Status::Ok();
      };
      BOOST_TEST_REQUIRE(framer.Feed(stream.substr(0, a), collect).ok());
      BOOST_TEST_REQUIRE(framer.Feed(stream.substr(a, b - a), collect).ok());
      BOOST_TEST_REQUIRE(framer.Feed(stream.substr(b), collect).ok());
      BOOST_TEST_REQUIRE((got == want), "split at " << a << " and " << b);
      BOOST_TEST(framer.pending_bytes() == 0u);
    }
  }
}

BOOST_AUTO_TEST_CASE(the_framer_refuses_overlong_lines_and_reports_a_cut_event) {
  LineFramer framer(16);
  auto ignore = [](std::string_view) { return Status::Ok(); };
  BOOST_TEST(framer.Feed("0123456789\n", ignore).ok());
  BOOST_TEST(framer.Feed("01234567", ignore).ok());
  BOOST_TEST(framer.pending_bytes() == 8u);  // a half-written event
  Status s = framer.Feed("89abcdefgh\n", ignore);
  BOOST_TEST((s.code() == StatusCode::kResourceExhausted));
  BOOST_TEST(s.message() == "watch line longer than 16 bytes; the watch must be restarted");
  BOOST_TEST((framer.Feed("ok\n", ignore).code() == StatusCode::kResourceExhausted));  // stays broken
  framer.Reset();
  std::vector<std::string> got;
  BOOST_TEST(framer.Feed("ok\n", [&](std::string_view l) {
                     got.emplace_back(l);
                     return Status::Ok();
                   }).ok());
  BOOST_TEST((got == std::vector<std::string>{"ok"}));

  // A callback's error stops the feed and is returned as is.
  LineFramer f2;
  int calls = 0;
  Status stop = f2.Feed("a\nb\nc\n", [&](std::string_view) {
    ++calls;
    return kubefold::InvalidArgument("stop");
  });
  BOOST_TEST(stop.message() == "stop");
  BOOST_TEST(calls == 1);
}

BOOST_AUTO_TEST_CASE(the_same_object_from_a_list_and_from_a_watch_gives_the_same_bytes) {
  // A list item carries no type fields; a watch event carries them in Go's
  // order (kind first). Either way the stored form is identical, so a relist
  // of unchanged objects changes nothing in the store.
  const ResourceType deployments{"apps", "v1", "Deployment"};
  const std::string body = R"("metadata":{"name":"web","namespace":"shop","resourceVersion":"7"},"spec":{"replicas":2})";
  auto list = DecodeList(R"({"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":"9"},"items":[{)" +
                             body + "}]}",
                         deployments);
  BOOST_REQUIRE(list.ok());
  auto event = DecodeWatchEvent(R"({"type":"ADDED","object":{"kind":"Deployment","apiVersion":"apps/v1",)" + body + "}}",
                                deployments);
  BOOST_REQUIRE(event.ok());
  auto reordered = DecodeWatchEvent(
      R"({"type":"ADDED","object":{"apiVersion":"apps/v1","kind":"Deployment",)" + body + "}}", deployments);
  BOOST_REQUIRE(reordered.ok());
  const std::string& from_list = list->items.at(0).workload.object_json;
  BOOST_CHECK_EQUAL(from_list,
                    R"({"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"web","namespace":"shop","resourceVersion":"7"},"spec":{"replicas":2}})");
  BOOST_CHECK_EQUAL(event->object->workload.object_json, from_list);
  BOOST_CHECK_EQUAL(reordered->object->workload.object_json, from_list);
}
