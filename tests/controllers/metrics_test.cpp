// The Prometheus client: exact exposition text, registration errors,
// collectors, lock-free updates from many threads (also run under TSan), the
// process collector against fake /proc files, and promtool's linter.
#define BOOST_TEST_MODULE metrics_test
#include <boost/test/unit_test.hpp>

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "controllers/metrics.h"
#include "controllers/process_metrics.h"

namespace m = kubefold::metrics;
using kubefold::StatusCode;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// A fresh directory under the temp dir, removed at scope exit.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "metrics_test.XXXXXX").string();
    BOOST_REQUIRE(mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

void WriteFile(const std::filesystem::path& p, const std::string& content) {
  std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p, std::ios::binary);
  out << content;
  BOOST_REQUIRE(out.good());
}

// promtool on PATH, or "".
std::string FindOnPath(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + program;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

}  // namespace

// ---------------------------------------------------------------------------
// Exposition text

BOOST_AUTO_TEST_CASE(a_registry_with_each_type_exposes_exactly_this_text) {
  m::Registry r;
  auto requests = r.AddCounterFamily("http_requests_total", "Requests served.\nBy code \\ method.",
                                     {"code", "method"});
  BOOST_REQUIRE(requests.ok());
  (*(*requests)->WithLabels({"500", "a\"b\\c\nd"}))->Inc(0.5);
  (*(*requests)->WithLabels({"200", "GET"}))->Inc(3);
  (*(*requests)->WithLabels({"500", "a\"b\\c\nd"}))->Inc();  // same child again

  auto temperature = r.AddGauge("temperature_celsius", "Temperature.");
  BOOST_REQUIRE(temperature.ok());
  (*temperature)->Set(-1.5);

  auto special = r.AddGaugeFamily("special_values", "Floats Prometheus spells its own way.", {"kind"});
  BOOST_REQUIRE(special.ok());
  (*(*special)->WithLabels({"nan"}))->Set(std::nan(""));
  (*(*special)->WithLabels({"inf"}))->Set(kInf);
  (*(*special)->WithLabels({"minus_inf"}))->Set(-kInf);
  (*(*special)->WithLabels({"tiny"}))->Set(1e-7);
  (*(*special)->WithLabels({"big"}))->Set(123456789012.0);
  (*(*special)->WithLabels({"huge"}))->Set(1e20);
  (*(*special)->WithLabels({"tenth"}))->Set(0.1);

  auto latency = r.AddHistogramFamily("op_latency_seconds", "Latency of an operation.",
                                      {0.25, 0.5, 1}, {"op"});
  BOOST_REQUIRE(latency.ok());
  m::Histogram* read = *(*latency)->WithLabels({"read"});
  for (double v : {0.125, 0.25, 0.5, 2.0}) read->Observe(v);
  (*(*latency)->WithLabels({"write"}))->Observe(5);

  auto unused = r.AddGaugeFamily("unused_gauge", "No child yet: not exposed.", {"x"});
  BOOST_REQUIRE(unused.ok());
  auto started = r.AddCounter("started_total", "Unlabelled: exposed as 0 from the start.");
  BOOST_REQUIRE(started.ok());

  r.AddCollector([](m::Collector& c) {
    c.AddGauge("a_collected_gauge", "From a collector.", {{"z", "1"}, {"a", "x"}}, 2);
    c.AddGauge("a_collected_gauge", "From a collector.", {{"a", "w"}, {"z", "1"}}, 1);
    c.AddCounter("zz_collected_total", "Last by name.", {}, 7.25);
    static constexpr std::array<double, 2> kBounds = {0.5, 1};
    const std::array<std::uint64_t, 2> cumulative = {1, 3};
    c.AddHistogram("m_collected_seconds", "Collected histogram.", {{"store", "main"}}, kBounds,
                   cumulative, 4, 2.5);
  });

  const std::string expected = R"(# HELP a_collected_gauge From a collector.
# TYPE a_collected_gauge gauge
a_collected_gauge{a="w",z="1"} 1
a_collected_gauge{a="x",z="1"} 2
# HELP http_requests_total Requests served.\nBy code \\ method.
# TYPE http_requests_total counter
http_requests_total{code="200",method="GET"} 3
http_requests_total{code="500",method="a\"b\\c\nd"} 1.5
# HELP m_collected_seconds Collected histogram.
# TYPE m_collected_seconds histogram
m_collected_seconds_bucket{store="main",le="0.5"} 1
m_collected_seconds_bucket{store="main",le="1"} 3
m_collected_seconds_bucket{store="main",le="+Inf"} 4
m_collected_seconds_sum{store="main"} 2.5
m_collected_seconds_count{store="main"} 4
# HELP op_latency_seconds Latency of an operation.
# TYPE op_latency_seconds histogram
op_latency_seconds_bucket{op="read",le="0.25"} 2
op_latency_seconds_bucket{op="read",le="0.5"} 3
op_latency_seconds_bucket{op="read",le="1"} 3
op_latency_seconds_bucket{op="read",le="+Inf"} 4
op_latency_seconds_sum{op="read"} 2.875
op_latency_seconds_count{op="read"} 4
op_latency_seconds_bucket{op="write",le="0.25"} 0
op_latency_seconds_bucket{op="write",le="0.5"} 0
op_latency_seconds_bucket{op="write",le="1"} 0
op_latency_seconds_bucket{op="write",le="+Inf"} 1
op_latency_seconds_sum{op="write"} 5
op_latency_seconds_count{op="write"} 1
# HELP special_values Floats Prometheus spells its own way.
# TYPE special_values gauge
special_values{kind="big"} 123456789012
special_values{kind="huge"} 1e+20
special_values{kind="inf"} +Inf
special_values{kind="minus_inf"} -Inf
special_values{kind="nan"} NaN
special_values{kind="tenth"} 0.1
special_values{kind="tiny"} 1e-07
# HELP started_total Unlabelled: exposed as 0 from the start.
# TYPE started_total counter
started_total 0
# HELP temperature_celsius Temperature.
# TYPE temperature_celsius gauge
temperature_celsius -1.5
# HELP zz_collected_total Last by name.
# TYPE zz_collected_total counter
zz_collected_total 7.25
)";
  BOOST_CHECK_EQUAL(r.Expose(), expected);

  // The streaming variants write the same bytes, a family per call.
  std::string streamed;
  int pieces = 0;
  BOOST_CHECK(r.WriteTo([&](std::string_view piece) {
                 streamed += piece;
                 ++pieces;
               }).ok());
  BOOST_CHECK_EQUAL(streamed, expected);
  BOOST_CHECK_EQUAL(pieces, 8);
  std::ostringstream os;
  BOOST_CHECK(r.WriteTo(os).ok());
  BOOST_CHECK_EQUAL(os.str(), expected);
  BOOST_CHECK_EQUAL(m::kContentType, "text/plain; version=0.0.4; charset=utf-8");
}

BOOST_AUTO_TEST_CASE(values_are_formatted_as_go_formats_them_with_integers_in_plain_digits) {
  const std::vector<std::pair<double, std::string>> cases = {
      {0, "0"},
      {-0.0, "0"},
      {1, "1"},
      {-1, "-1"},
      {1000000, "1000000"},
      {9007199254740991.0, "9007199254740991"},   // 2^53 - 1: still plain digits
      {9007199254740992.0, "9.007199254740992e+15"},  // 2^53: Go's form
      {1e21, "1e+21"},
      {0.5, "0.5"},
      {0.1, "0.1"},
      {1.0 / 3, "0.3333333333333333"},
      {123456.75, "123456.75"},
      {1234567.5, "1.2345675e+06"},  // exponent >= 6: %e, as Go
      {0.0001, "0.0001"},
      {0.00001, "1e-05"},  // exponent < -4: %e, as Go
      {-2.5e-10, "-2.5e-10"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {5e-324, "5e-324"},
      {kInf, "+Inf"},
      {-kInf, "-Inf"},
      {std::nan(""), "NaN"},
  };
  for (const auto& [v, want] : cases) BOOST_CHECK_EQUAL(m::FormatValue(v), want);
}

BOOST_AUTO_TEST_CASE(counters_ignore_negative_and_nan_increments_and_add_fractions) {
  m::Counter c;
  c.Inc();
  c.Inc(2);
  c.Inc(0.25);
  c.Inc(-5);
  c.Inc(std::nan(""));
  BOOST_CHECK_EQUAL(c.Value(), 3.25);
  m::Gauge g;
  g.Set(10);
  g.Inc();
  g.Dec();
  g.Dec();
  g.Add(-0.5);
  BOOST_CHECK_EQUAL(g.Value(), 8.5);
}

BOOST_AUTO_TEST_CASE(histogram_buckets_are_inclusive_upper_bounds_and_nan_is_ignored) {
  const std::vector<double> bounds = {1, 2};
  m::Histogram h(bounds);
  for (double v : {-3.0, 1.0, 1.5, 2.0, 2.5, kInf}) h.Observe(v);
  h.Observe(std::nan(""));
  const m::Histogram::Snapshot s = h.Read();
  BOOST_CHECK(s.cumulative == (std::vector<std::uint64_t>{2, 4, 6}));
  BOOST_CHECK_EQUAL(s.count, 6u);
  BOOST_CHECK_EQUAL(s.sum, kInf);
}

BOOST_AUTO_TEST_CASE(bucket_helpers_lay_out_exponential_and_linear_bounds) {
  BOOST_CHECK(m::ExponentialBuckets(1, 2, 4) == (std::vector<double>{1, 2, 4, 8}));
  BOOST_CHECK(m::LinearBuckets(0.5, 0.25, 3) == (std::vector<double>{0.5, 0.75, 1}));
  BOOST_CHECK(m::ExponentialBuckets(0, 2, 3).empty());
  BOOST_CHECK(m::ExponentialBuckets(1, 1, 3).empty());
  BOOST_CHECK(m::LinearBuckets(0, 0, 3).empty());
  BOOST_CHECK(m::LinearBuckets(0, 1, 0).empty());
  BOOST_CHECK_EQUAL(m::DefaultBuckets().size(), 11u);

  // A trailing +Inf is dropped: that bucket is always there.
  m::Registry r;
  auto h = r.AddHistogram("h_seconds", "H.", {1, kInf});
  BOOST_REQUIRE(h.ok());
  BOOST_CHECK_EQUAL((*h)->bounds().size(), 1u);
  // No bounds at all: only +Inf.
  auto only_inf = r.AddHistogram("only_inf_seconds", "H.", {});
  BOOST_REQUIRE(only_inf.ok());
  (*only_inf)->Observe(3);
  BOOST_CHECK_NE(r.Expose().find("only_inf_seconds_bucket{le=\"+Inf\"} 1\n"), std::string::npos);
}

// ---------------------------------------------------------------------------
// Errors

BOOST_AUTO_TEST_CASE(registration_refuses_bad_names_labels_buckets_and_clashes) {
  m::Registry r;
  auto expect = [](const kubefold::Status& s, StatusCode code, const std::string& part) {
    BOOST_CHECK_MESSAGE(s.code() == code, s.ToString());
    BOOST_CHECK_MESSAGE(s.message().find(part) != std::string::npos,
                        "\"" << s.message() << "\" does not mention \"" << part << "\"");
  };
  const auto kInvalid = StatusCode::kInvalidArgument;
  expect(r.AddGauge("", "x").status(), kInvalid, "invalid metric name");
  expect(r.AddGauge("1abc", "x").status(), kInvalid, "gauge \"1abc\": invalid metric name");
  expect(r.AddGauge("a-b", "x").status(), kInvalid, "invalid metric name");
  expect(r.AddGauge("é", "x").status(), kInvalid, "invalid metric name");
  expect(r.AddCounter("requests", "x").status(), kInvalid,
         "counter \"requests\": a counter's name must end in _total");
  expect(r.AddGaugeFamily("g", "x", {"__reserved"}).status(), kInvalid,
         "invalid label name \"__reserved\"");
  expect(r.AddGaugeFamily("g", "x", {"a:b"}).status(), kInvalid, "invalid label name \"a:b\"");
  expect(r.AddGaugeFamily("g", "x", {"9"}).status(), kInvalid, "invalid label name \"9\"");
  expect(r.AddGaugeFamily("g", "x", {""}).status(), kInvalid, "invalid label name \"\"");
  expect(r.AddGaugeFamily("g", "x", {"a", "b", "a"}).status(), kInvalid,
         "label name \"a\" appears twice");
  expect(r.AddHistogramFamily("h", "x", {1}, {"le"}).status(), kInvalid,
         "\"le\" is reserved in histograms");
  expect(r.AddHistogram("h", "x", {2, 1}).status(), kInvalid, "strictly increasing (2 then 1)");
  expect(r.AddHistogram("h", "x", {1, 1}).status(), kInvalid, "strictly increasing");
  expect(r.AddHistogram("h", "x", {std::nan("")}).status(), kInvalid, "bound NaN is not finite");
  expect(r.AddHistogram("h", "x", {-kInf, 1}).status(), kInvalid, "not finite");
  // Nothing was registered by the failures: these names are all still free.
  BOOST_CHECK(r.AddGaugeFamily("g", "x", {"a_b", "_c", "D9"}).ok());
  BOOST_CHECK(r.AddHistogram("h", "x", {1}).ok());
  BOOST_CHECK(r.AddGauge("ns:sub_metric", "colons are allowed in metric names").ok());

  const auto kExists = StatusCode::kAlreadyExists;
  expect(r.AddGauge("g", "x").status(), kExists, "metric name \"g\" is already used by gauge \"g\"");
  BOOST_CHECK(r.AddCounter("h_total", "x").ok());  // not a series of histogram "h"
  expect(r.AddGauge("h_count", "x").status(), kExists,
         "gauge \"h_count\": metric name \"h_count\" is already used by histogram \"h\"");
  expect(r.AddGauge("h_bucket", "x").status(), kExists, "already used by histogram \"h\"");
  BOOST_CHECK(r.AddGauge("x_sum", "x").ok());
  expect(r.AddHistogram("x", "x", {1}).status(), kExists,
         "metric name \"x_sum\" is already used by gauge \"x_sum\"");
  // The refused histogram left none of its names behind.
  BOOST_CHECK(r.AddGauge("x", "x").ok());
}

BOOST_AUTO_TEST_CASE(with_labels_refuses_the_wrong_number_of_values) {
  m::Registry r;
  auto f = r.AddCounterFamily("applies_total", "x", {"cluster", "kind"});
  BOOST_REQUIRE(f.ok());
  const auto one = (*f)->WithLabels({"east"});
  BOOST_REQUIRE(!one.ok());
  BOOST_CHECK(one.status().code() == StatusCode::kInvalidArgument);
  BOOST_CHECK_EQUAL(one.status().message(),
                    "counter \"applies_total\": 1 label values given for 2 label names "
                    "(cluster,kind)");
  BOOST_CHECK(!(*f)->WithLabels({"a", "b", "c"}).ok());
  BOOST_CHECK(!(*f)->WithLabels({}).ok());
  // Both overloads find the same child.
  const std::vector<std::string> values = {"east", "Deployment"};
  auto a = (*f)->WithLabels(values);
  auto b = (*f)->WithLabels({"east", "Deployment"});
  BOOST_REQUIRE(a.ok() && b.ok());
  BOOST_CHECK_EQUAL(*a, *b);
  // Nothing was created by the failures.
  BOOST_CHECK_EQUAL(r.Expose(),
                    "# HELP applies_total x\n# TYPE applies_total counter\n"
                    "applies_total{cluster=\"east\",kind=\"Deployment\"} 0\n");
}

BOOST_AUTO_TEST_CASE(collector_problems_drop_what_is_wrong_and_are_reported_by_write_to) {
  m::Registry r;
  BOOST_REQUIRE(r.AddGauge("taken", "Registered.").ok());
  BOOST_REQUIRE(r.AddHistogram("lat_seconds", "Registered.", {1}).ok());
  r.AddCollector([](m::Collector& c) {
    c.AddGauge("taken", "Clashes with a registered family.", {}, 1);
    c.AddGauge("lat_seconds_count", "Clashes with a registered histogram's series.", {}, 1);
    c.AddCounter("no_suffix", "x", {}, 1);
    c.AddCounter("neg_total", "x", {}, -1);
    c.AddGauge("bad label", "x", {}, 1);
    c.AddGauge("ok", "Fine.", {{"__x", "1"}}, 1);
    c.AddGauge("ok", "Fine.", {{"k", "1"}, {"k", "2"}}, 1);
    c.AddGauge("ok", "Fine.", {{"k", "1"}}, 1);
    c.AddGauge("ok", "Fine.", {{"k", "1"}}, 2);   // same label set: dropped
    c.AddCounter("mixed_total", "Mixed.", {}, 1);
    c.AddGauge("mixed_total", "Mixed.", {}, 2);  // another type: dropped
    c.AddGauge("ok", "Other help.", {{"k", "4"}}, 1);
  });
  r.AddCollector([](m::Collector& c) {
    c.AddGauge("ok", "Fine.", {{"k", "0"}}, 0);  // merged with the first collector's
    throw std::runtime_error("store unavailable");
  });

  std::string out;
  const kubefold::Status s = r.WriteTo([&](std::string_view piece) { out += piece; });
  BOOST_CHECK_EQUAL(out,
                    "# HELP lat_seconds Registered.\n# TYPE lat_seconds histogram\n"
                    "lat_seconds_bucket{le=\"1\"} 0\nlat_seconds_bucket{le=\"+Inf\"} 0\n"
                    "lat_seconds_sum 0\nlat_seconds_count 0\n"
                    "# HELP mixed_total Mixed.\n# TYPE mixed_total counter\nmixed_total 1\n"
                    "# HELP ok Fine.\n# TYPE ok gauge\nok{k=\"0\"} 0\nok{k=\"1\"} 1\n"
                    "# HELP taken Registered.\n# TYPE taken gauge\ntaken 0\n");
  BOOST_CHECK(s.code() == StatusCode::kInvalidArgument);
  for (const char* part : {
           "11 problem(s)",
           "collector counter \"no_suffix\": a counter's name must end in _total",
           "collector counter \"neg_total\": value -1 is negative or NaN",
           "collector gauge \"bad label\": invalid metric name",
           "collector gauge \"ok\": invalid label name \"__x\"",
           "collector gauge \"ok\": label name \"k\" appears twice",
           "collector gauge \"mixed_total\": already emitted as a counter",
           "collector gauge \"ok\": already emitted as a gauge with another help text",
           "a collector threw: store unavailable",
           "collector gauge \"lat_seconds_count\": dropped, the name \"lat_seconds_count\" is "
           "used by registered histogram \"lat_seconds\"",
           "collector gauge \"taken\": dropped, the name \"taken\" is used by registered gauge "
           "\"taken\"",
       }) {
    BOOST_CHECK_MESSAGE(s.message().find(part) != std::string::npos,
                        "\"" << s.message() << "\" does not mention \"" << part << "\"");
  }
  // The eleventh problem (the duplicate label set) is counted, not listed.
  BOOST_CHECK_NE(s.message().find("; ..."), std::string::npos);
  // Expose gives the same text and swallows the report.
  BOOST_CHECK_EQUAL(r.Expose(), out);
}

BOOST_AUTO_TEST_CASE(a_collector_reports_a_duplicate_label_set) {
  m::Registry r;
  r.AddCollector([](m::Collector& c) {
    c.AddGauge("clusters_ready", "x", {{"cluster", "east"}, {"zone", "a"}}, 1);
    c.AddGauge("clusters_ready", "x", {{"zone", "a"}, {"cluster", "east"}}, 0);  // same set
  });
  std::string out;
  const kubefold::Status s = r.WriteTo([&](std::string_view piece) { out += piece; });
  BOOST_CHECK_EQUAL(out, "# HELP clusters_ready x\n# TYPE clusters_ready gauge\n"
                         "clusters_ready{cluster=\"east\",zone=\"a\"} 1\n");
  BOOST_CHECK_EQUAL(s.message(),
                    "metrics collectors: 1 problem(s): collector gauge \"clusters_ready\": label "
                    "set {cluster=\"east\",zone=\"a\"} emitted twice; the later sample is dropped");
}

BOOST_AUTO_TEST_CASE(a_collector_histogram_must_be_consistent_and_must_not_clash) {
  m::Registry r;
  BOOST_REQUIRE(r.AddGauge("reg_sum", "Registered.").ok());
  r.AddCollector([](m::Collector& c) {
    const std::vector<double> bounds = {1, 2};
    const std::vector<std::uint64_t> good = {1, 2};
    c.AddHistogram("a_seconds", "x", {{"le", "1"}}, bounds, good, 2, 1);
    c.AddHistogram("b_seconds", "x", {}, bounds, std::vector<std::uint64_t>{1}, 2, 1);
    c.AddHistogram("c_seconds", "x", {}, bounds, std::vector<std::uint64_t>{2, 1}, 2, 1);
    c.AddHistogram("d_seconds", "x", {}, bounds, good, 1, 1);
    c.AddHistogram("e_seconds", "x", {}, std::vector<double>{2, 1}, good, 2, 1);
    c.AddGauge("f_count", "x", {}, 1);
    c.AddHistogram("f", "x", {}, bounds, good, 2, 1);  // f_count is taken
    c.AddHistogram("g", "x", {}, bounds, good, 2, 1);
    c.AddGauge("g_bucket", "x", {}, 1);  // a series of histogram g
    c.AddHistogram("reg", "x", {}, bounds, good, 2, 1);  // reg_sum is registered
  });
  std::string out;
  const kubefold::Status s = r.WriteTo([&](std::string_view piece) { out += piece; });
  BOOST_CHECK_EQUAL(out,
                    "# HELP f_count x\n# TYPE f_count gauge\nf_count 1\n"
                    "# HELP g x\n# TYPE g histogram\n"
                    "g_bucket{le=\"1\"} 1\ng_bucket{le=\"2\"} 2\ng_bucket{le=\"+Inf\"} 2\n"
                    "g_sum 1\ng_count 2\n"
                    "# HELP reg_sum Registered.\n# TYPE reg_sum gauge\nreg_sum 0\n");
  BOOST_CHECK_EQUAL(
      s.message(),
      "metrics collectors: 8 problem(s): "
      "collector histogram \"a_seconds\": label name \"le\" is reserved in histograms; "
      "collector histogram \"b_seconds\": 1 cumulative counts for 2 bounds; "
      "collector histogram \"c_seconds\": cumulative counts must not decrease, and not exceed "
      "the count 2; "
      "collector histogram \"d_seconds\": cumulative counts must not decrease, and not exceed "
      "the count 1; "
      "collector histogram \"e_seconds\": bucket bounds must be strictly increasing (2 then 1); "
      "collector histogram \"f\": metric name \"f_count\" is already used by collector gauge "
      "\"f_count\"; "
      "collector gauge \"g_bucket\": metric name \"g_bucket\" is already used by collector "
      "histogram \"g\"; "
      "collector histogram \"reg\": dropped, the name \"reg_sum\" is used by registered gauge "
      "\"reg_sum\"");
}

// ---------------------------------------------------------------------------
// Concurrency (this file also runs under ThreadSanitizer: `make test-tsan`)

BOOST_AUTO_TEST_CASE(threads_updating_one_counter_and_histogram_lose_no_update) {
  constexpr int kThreads = 4;
  constexpr int kPerThread = 20000;
  m::Registry r;
  auto counters = r.AddCounterFamily("ops_total", "x", {"thread_group"});
  auto fractions = r.AddCounter("fractions_total", "x");
  auto level = r.AddGauge("level", "x");
  auto latency = r.AddHistogram("lat_seconds", "x", {0.5, 1, 2});
  BOOST_REQUIRE(counters.ok() && fractions.ok() && level.ok() && latency.ok());

  std::atomic<bool> done{false};
  std::atomic<int> scrapes{0};
  // A scraper runs all along: reads race with the updates by design.
  std::thread scraper([&] {
    while (!done.load()) {
      const std::string text = r.Expose();
      BOOST_TEST_REQUIRE(!text.empty());
      scrapes.fetch_add(1);
    }
  });
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread looks up the same child, and one of its own.
      m::Counter* shared = *(*counters)->WithLabels({"shared"});
      m::Counter* own = *(*counters)->WithLabels({std::to_string(t)});
      for (int i = 0; i < kPerThread; ++i) {
        shared->Inc();
        own->Inc(2);
        (*fractions)->Inc(0.5);
        (*level)->Inc();
        (*level)->Dec();
        (*latency)->Observe((i % 4) * 0.5);  // 0, 0.5, 1, 1.5
      }
    });
  }
  for (auto& t : threads) t.join();
  done.store(true);
  scraper.join();

  constexpr double kTotal = double{kThreads} * kPerThread;
  BOOST_CHECK_EQUAL((*(*counters)->WithLabels({"shared"}))->Value(), kTotal);
  for (int t = 0; t < kThreads; ++t) {
    BOOST_CHECK_EQUAL((*(*counters)->WithLabels({std::to_string(t)}))->Value(), 2.0 * kPerThread);
  }
  BOOST_CHECK_EQUAL((*fractions)->Value(), kTotal / 2);
  BOOST_CHECK_EQUAL((*level)->Value(), 0);
  const m::Histogram::Snapshot s = (*latency)->Read();
  const auto n = static_cast<std::uint64_t>(kTotal);
  BOOST_CHECK_EQUAL(s.count, n);
  BOOST_CHECK(s.cumulative == (std::vector<std::uint64_t>{n / 2, n * 3 / 4, n, n}));
  BOOST_CHECK_EQUAL(s.sum, kTotal / 4 * (0 + 0.5 + 1 + 1.5));
  BOOST_CHECK_GT(scrapes.load(), 0);
}

BOOST_AUTO_TEST_CASE(threads_creating_the_same_child_get_one_pointer) {
  constexpr int kThreads = 4;
  m::Registry r;
  auto f = r.AddGaugeFamily("per_cluster", "x", {"cluster"});
  BOOST_REQUIRE(f.ok());
  std::vector<std::vector<m::Gauge*>> seen(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int c = 0; c < 100; ++c) seen[t].push_back(*(*f)->WithLabels({std::to_string(c)}));
      // Registration races with the lookups and the other threads.
      if (t == 0) BOOST_TEST_REQUIRE(r.AddGauge("late_gauge", "x").ok());
    });
  }
  for (auto& t : threads) t.join();
  for (int t = 1; t < kThreads; ++t) BOOST_CHECK(seen[t] == seen[0]);
}

// ---------------------------------------------------------------------------
// Process metrics

BOOST_AUTO_TEST_CASE(the_process_collector_reads_fake_proc_files) {
  TempDir dir;
  const auto& root = dir.path();
  // Fields 3..52 of proc(5)'s stat, after a command name with spaces and
  // parentheses in it.
  std::vector<std::string> fields(50, "0");
  fields[14 - 3] = "150";      // utime
  fields[15 - 3] = "50";       // stime
  fields[22 - 3] = "1000";     // starttime, ticks after boot
  fields[23 - 3] = "4096000";  // vsize
  fields[24 - 3] = "100";      // rss, pages
  std::string stat = "4242 (my (odd) cmd) S";
  for (std::size_t i = 1; i < fields.size(); ++i) stat += " " + fields[i];
  WriteFile(root / "self" / "stat", stat + "\n");
  WriteFile(root / "stat", "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n");
  WriteFile(root / "self" / "limits",
            "Limit                     Soft Limit           Hard Limit           Units     \n"
            "Max processes             96365                96365                processes \n"
            "Max open files            1024                 4096                 files     \n");
  for (const char* fd : {"0", "1", "2"}) WriteFile(root / "self" / "fd" / fd, "");

  m::Registry r;
  r.AddCollector(m::ProcessCollector(root.string()));
  BOOST_REQUIRE(m::AddBuildInfo(r, "1.2.3", "abc123", "g++ 12.2").ok());
  BOOST_CHECK(m::AddBuildInfo(r, "1.2.3", "abc123", "g++ 12.2").code() ==
              StatusCode::kAlreadyExists);

  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(sysconf(_SC_PAGESIZE));
  const std::string expected =
      "# HELP kubefold_build_info A metric with a constant '1' value labeled by the version, "
      "git commit and C++ compiler from which kubefold was built.\n"
      "# TYPE kubefold_build_info gauge\n"
      "kubefold_build_info{version=\"1.2.3\",git_commit=\"abc123\",cpp_compiler=\"g++ 12.2\"} 1\n"
      "# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.\n"
      "# TYPE process_cpu_seconds_total counter\n"
      "process_cpu_seconds_total " + m::FormatValue(200 / hz) + "\n"
      "# HELP process_max_fds Maximum number of open file descriptors.\n"
      "# TYPE process_max_fds gauge\n"
      "process_max_fds 1024\n"
      "# HELP process_open_fds Number of open file descriptors.\n"
      "# TYPE process_open_fds gauge\n"
      "process_open_fds 3\n"
      "# HELP process_resident_memory_bytes Resident memory size in bytes.\n"
      "# TYPE process_resident_memory_bytes gauge\n"
      "process_resident_memory_bytes " + m::FormatValue(100 * page) + "\n"
      "# HELP process_start_time_seconds Start time of the process since unix epoch in seconds.\n"
      "# TYPE process_start_time_seconds gauge\n"
      "process_start_time_seconds " + m::FormatValue(1700000000 + 1000 / hz) + "\n"
      "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
      "# TYPE process_virtual_memory_bytes gauge\n"
      "process_virtual_memory_bytes 4096000\n";
  std::string out;
  BOOST_CHECK(r.WriteTo([&](std::string_view piece) { out += piece; }).ok());
  BOOST_CHECK_EQUAL(out, expected);
}

BOOST_AUTO_TEST_CASE(the_process_collector_skips_what_it_cannot_read_or_parse) {
  TempDir dir;
  const auto& root = dir.path();
  m::Registry r;
  r.AddCollector(m::ProcessCollector((root / "missing").string()));
  std::string out;
  BOOST_CHECK(r.WriteTo([&](std::string_view piece) { out += piece; }).ok());
  BOOST_CHECK_EQUAL(out, "");

  // Garbage everywhere, and a stat cut short after utime: only what parses.
  WriteFile(root / "self" / "stat", "1 (x) S 1 1 1 1 1 1 1 1 1 1 70 30\n");
  WriteFile(root / "stat", "no btime here\n");
  WriteFile(root / "self" / "limits", "Max open files  lots  lots  files\n");
  std::filesystem::create_directories(root / "self" / "fd");
  m::Registry r2;
  r2.AddCollector(m::ProcessCollector(root.string()));
  out.clear();
  BOOST_CHECK(r2.WriteTo([&](std::string_view piece) { out += piece; }).ok());
  const double hz = static_cast<double>(sysconf(_SC_CLK_TCK));
  BOOST_CHECK_EQUAL(out,
                    "# HELP process_cpu_seconds_total Total user and system CPU time spent in "
                    "seconds.\n# TYPE process_cpu_seconds_total counter\n"
                    "process_cpu_seconds_total " + m::FormatValue(100 / hz) + "\n"
                    "# HELP process_open_fds Number of open file descriptors.\n"
                    "# TYPE process_open_fds gauge\nprocess_open_fds 0\n");
}

BOOST_AUTO_TEST_CASE(the_process_collector_reads_this_process) {
  m::Registry r;
  r.AddCollector(m::ProcessCollector());
  const std::string out = r.Expose();
  for (const char* name :
       {"\nprocess_cpu_seconds_total ", "\nprocess_open_fds ", "\nprocess_max_fds ",
        "\nprocess_virtual_memory_bytes ", "\nprocess_resident_memory_bytes ",
        "\nprocess_start_time_seconds "}) {
    BOOST_CHECK_MESSAGE(out.find(name) != std::string::npos, name << " missing from\n" << out);
  }
}

// ---------------------------------------------------------------------------
// promtool

BOOST_AUTO_TEST_CASE(promtool_check_metrics_finds_nothing_to_complain_about) {
  const std::string promtool = FindOnPath("promtool");
  BOOST_REQUIRE_MESSAGE(!promtool.empty(),
                        "promtool not found on PATH: install the Debian package `prometheus` "
                        "(apt-get install prometheus; scripts/install-deps.sh installs it)");

  m::Registry r;
  auto requests = r.AddCounterFamily("kubefold_requests_total", "Requests.\nSecond \\ line.",
                                     {"code", "path"});
  BOOST_REQUIRE(requests.ok());
  (*(*requests)->WithLabels({"200", "/a\"b\\c\nd"}))->Inc(3);
  auto special = r.AddGaugeFamily("kubefold_special", "Special floats.", {"kind"});
  BOOST_REQUIRE(special.ok());
  (*(*special)->WithLabels({"nan"}))->Set(std::nan(""));
  (*(*special)->WithLabels({"inf"}))->Set(kInf);
  (*(*special)->WithLabels({"minus_inf"}))->Set(-kInf);
  (*(*special)->WithLabels({"tiny"}))->Set(-2.5e-10);
  auto latency = r.AddHistogramFamily("kubefold_pass_duration_seconds", "Pass duration.",
                                      m::ExponentialBuckets(0.001, 2, 12), {"loop"});
  BOOST_REQUIRE(latency.ok());
  for (double v : {0.0005, 0.003, 0.1, 7.0}) (*(*latency)->WithLabels({"failover"}))->Observe(v);
  BOOST_REQUIRE(r.AddHistogram("kubefold_empty_seconds", "No observations.", m::DefaultBuckets()).ok());
  BOOST_REQUIRE(m::AddBuildInfo(r, "0.1.0", "deadbeef", "g++ (Debian 12.2.0-14) 12.2.0").ok());
  r.AddCollector(m::ProcessCollector());
  r.AddCollector([](m::Collector& c) {
    c.AddGauge("kubefold_cluster_ready", "Whether a member cluster is Ready.",
               {{"cluster", "east"}}, 1);
    c.AddGauge("kubefold_cluster_ready", "Whether a member cluster is Ready.",
               {{"cluster", "west"}}, 0);
    static constexpr std::array<double, 3> kBounds = {0.001, 0.01, 0.1};
    const std::array<std::uint64_t, 3> cumulative = {5, 9, 9};
    c.AddHistogram("kubefold_update_delay_seconds", "Store update delay.", {}, kBounds, cumulative,
                   10, 0.75);
  });

  TempDir dir;
  const std::filesystem::path input = dir.path() / "metrics.txt";
  std::string text;
  BOOST_REQUIRE(r.WriteTo([&](std::string_view piece) { text += piece; }).ok());
  WriteFile(input, text);

  const std::string command = "'" + promtool + "' check metrics < '" + input.string() + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  BOOST_REQUIRE_MESSAGE(pipe != nullptr, "cannot run " << command);
  std::string output;
  std::array<char, 4096> buf;
  for (std::size_t n; (n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0;) output.append(buf.data(), n);
  const int status = pclose(pipe);
  BOOST_REQUIRE_MESSAGE(WIFEXITED(status), command << " did not exit normally");
  BOOST_CHECK_MESSAGE(WEXITSTATUS(status) == 0 && output.empty(),
                      "promtool check metrics exited " << WEXITSTATUS(status) << " saying:\n"
                                                       << output << "\non this input:\n" << text);
}
