// decode_bench: the parsing and pruning share of the watch path, on one
// core: a realistic ~4 KB Deployment watch event (kubectl-applied, with the
// last-applied annotation and managedFields from kubectl and the controller
// manager, status with conditions), framed and decoded into a pruned
// state::WorkloadObject, against nlohmann::json's plain parse of the same
// line as the in-run baseline. The transport's share is measured with the
// emulator (issue 3's watch_bench), not here.
//
//   BM_Decode_kubefold   LineFramer + DecodeWatchEvent (parse with pruning,
//                        summary, compact re-serialisation)
//   BM_Parse_nlohmann    json::parse of the line, nothing else
//   BM_Dump_nlohmann     json::dump of the parsed event (the re-serialising
//                        part of the decode, for the split)
#include <benchmark/benchmark.h>

#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>

#include "controllers/kube/watch_decoder.h"
#include "tests/bench/deployment_fixture.h"

namespace {

using kubefold::kube::ResourceType;

const ResourceType kDeployments{"apps", "v1", "Deployment"};

const std::string& Line() {
  static const std::string line = kubefold::bench::DeploymentEvent(1);
  return line;
}

void BM_Decode_kubefold(benchmark::State& st) {
  const std::string& line = Line();
  kubefold::kube::LineFramer framer;
  size_t pruned = 0;
  for (auto _ : st) {
    kubefold::Status s = framer.Feed(line, [&](std::string_view l) {
      auto ev = kubefold::kube::DecodeWatchEvent(l, kDeployments);
      if (!ev.ok()) return ev.status();
      pruned = ev->object->workload.object_json.size();
      benchmark::DoNotOptimize(ev);
      return kubefold::Status::Ok();
    });
    if (!s.ok()) {
      st.SkipWithError(s.ToString().c_str());
      return;
    }
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * line.size()));
  st.counters["event_bytes"] = static_cast<double>(line.size());
  st.counters["pruned_object_bytes"] = static_cast<double>(pruned);
}

void BM_Parse_nlohmann(benchmark::State& st) {
  const std::string& line = Line();
  for (auto _ : st) {
    auto j = nlohmann::json::parse(line);
    benchmark::DoNotOptimize(j);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
  st.SetBytesProcessed(static_cast<int64_t>(st.iterations() * line.size()));
}

void BM_Dump_nlohmann(benchmark::State& st) {
  const auto j = nlohmann::json::parse(Line());
  for (auto _ : st) {
    std::string s = j["object"].dump();
    benchmark::DoNotOptimize(s);
  }
  st.SetItemsProcessed(static_cast<int64_t>(st.iterations()));
}

BENCHMARK(BM_Decode_kubefold)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Parse_nlohmann)->Repetitions(5)->ReportAggregatesOnly(true);
BENCHMARK(BM_Dump_nlohmann)->Repetitions(5)->ReportAggregatesOnly(true);

}  // namespace

BENCHMARK_MAIN();
