#define BOOST_TEST_MODULE token_source
#include <boost/test/unit_test.hpp>

#include <atomic>
#include <filesystem>
#include <thread>
#include <vector>

#include "controllers/kube/token_source.h"
#include "tests/controllers/kube/test_util.h"

namespace kubefold::kube {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;
using testing::Describe;
using testing::FakeClock;
using testing::TempDir;
using testing::WriteFile;

BOOST_AUTO_TEST_CASE(a_static_token_source_always_returns_its_token) {
  StaticTokenSource source("static-token");
  BOOST_TEST(*source.Token() == "static-token");
  source.Invalidate();
  BOOST_TEST(*source.Token() == "static-token");
}

BOOST_AUTO_TEST_CASE(a_file_token_is_reread_only_after_the_period) {
  TempDir dir;
  WriteFile(dir / "token", "first\n");
  FakeClock clock;
  CachedFileTokenSourceOptions options;
  options.clock = clock.AsFunction();
  CachedFileTokenSource source(dir / "token", options);
  BOOST_TEST(options.period == std::chrono::system_clock::duration(minutes(1)));

  auto token = source.Token();
  BOOST_TEST_REQUIRE(token.ok(), Describe(token.status()));
  BOOST_TEST(*token == "first");
  WriteFile(dir / "token", "second");
  clock.Advance(seconds(59));
  BOOST_TEST(*source.Token() == "first");
  clock.Advance(seconds(1));
  BOOST_TEST(*source.Token() == "second");
  WriteFile(dir / "token", "third");
  clock.Advance(seconds(30));
  BOOST_TEST(*source.Token() == "second");
}

BOOST_AUTO_TEST_CASE(invalidate_forces_an_immediate_reread) {
  TempDir dir;
  WriteFile(dir / "token", "old");
  FakeClock clock;
  CachedFileTokenSourceOptions options;
  options.clock = clock.AsFunction();
  CachedFileTokenSource source(dir / "token", options);
  BOOST_TEST(*source.Token() == "old");
  WriteFile(dir / "token", "new");
  BOOST_TEST(*source.Token() == "old");
  source.Invalidate();
  BOOST_TEST(*source.Token() == "new");
  // And the period restarts from that read.
  WriteFile(dir / "token", "newer");
  clock.Advance(seconds(59));
  BOOST_TEST(*source.Token() == "new");
}

BOOST_AUTO_TEST_CASE(an_initial_token_is_served_without_reading_until_the_period_passes) {
  TempDir dir;
  FakeClock clock;
  CachedFileTokenSourceOptions options;
  options.clock = clock.AsFunction();
  options.initial_token = "seeded";
  options.period = seconds(10);
  CachedFileTokenSource source(dir / "token", options);  // the file does not exist yet
  BOOST_TEST(*source.Token() == "seeded");
  WriteFile(dir / "token", "from-file");
  clock.Advance(seconds(10));
  BOOST_TEST(*source.Token() == "from-file");
}

BOOST_AUTO_TEST_CASE(a_failed_periodic_reread_keeps_the_last_good_token) {
  TempDir dir;
  WriteFile(dir / "token", "good");
  FakeClock clock;
  CachedFileTokenSourceOptions options;
  options.clock = clock.AsFunction();
  CachedFileTokenSource source(dir / "token", options);
  BOOST_TEST(*source.Token() == "good");

  std::filesystem::remove(dir / "token");
  clock.Advance(minutes(2));
  auto token = source.Token();
  BOOST_TEST_REQUIRE(token.ok(), Describe(token.status()));
  BOOST_TEST(*token == "good");
  WriteFile(dir / "token", "   ");  // being rewritten: empty for a moment
  BOOST_TEST(*source.Token() == "good");
  // The next call tries the file again (the failed read did not restart the period).
  WriteFile(dir / "token", "rotated");
  BOOST_TEST(*source.Token() == "rotated");
}

BOOST_AUTO_TEST_CASE(after_invalidate_a_failed_reread_is_an_error_naming_the_file_only) {
  TempDir dir;
  WriteFile(dir / "token", "REJECTED-TOKEN-VALUE");
  FakeClock clock;
  CachedFileTokenSourceOptions options;
  options.clock = clock.AsFunction();
  CachedFileTokenSource source(dir / "token", options);
  BOOST_TEST(*source.Token() == "REJECTED-TOKEN-VALUE");
  std::filesystem::remove(dir / "token");
  source.Invalidate();
  auto token = source.Token();
  BOOST_TEST_REQUIRE(!token.ok());
  BOOST_TEST((token.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(token.status().message() == "token file " + (dir / "token") + ": No such file or directory");
  BOOST_TEST(token.status().message().find("REJECTED-TOKEN-VALUE") == std::string::npos);
  WriteFile(dir / "token", "fresh");
  BOOST_TEST(*source.Token() == "fresh");
}

BOOST_AUTO_TEST_CASE(a_missing_or_empty_file_with_nothing_cached_is_unavailable) {
  TempDir dir;
  CachedFileTokenSource missing(dir / "token");
  BOOST_TEST((missing.Token().status().code() == StatusCode::kUnavailable));
  WriteFile(dir / "empty", "\n\n");
  CachedFileTokenSource empty(dir / "empty");
  auto token = empty.Token();
  BOOST_TEST((token.status().code() == StatusCode::kUnavailable));
  BOOST_TEST(token.status().message() == "token file " + (dir / "empty") + ": is empty");
}

BOOST_AUTO_TEST_CASE(new_token_source_picks_the_source_the_config_calls_for) {
  TempDir dir;
  WriteFile(dir / "token", "from-file");
  RestConfig none;
  BOOST_TEST(NewTokenSource(none) == nullptr);

  RestConfig fixed;
  fixed.bearer_token = "fixed";
  auto fixed_source = NewTokenSource(fixed);
  BOOST_TEST_REQUIRE(dynamic_cast<StaticTokenSource*>(fixed_source.get()) != nullptr);
  BOOST_TEST(*fixed_source->Token() == "fixed");

  RestConfig file;
  file.bearer_token = "seed";
  file.bearer_token_file = dir / "token";
  FakeClock clock;
  auto file_source = NewTokenSource(file, clock.AsFunction());
  auto* cached = dynamic_cast<CachedFileTokenSource*>(file_source.get());
  BOOST_TEST_REQUIRE(cached != nullptr);
  BOOST_TEST(cached->path() == dir / "token");
  BOOST_TEST(*file_source->Token() == "seed");
  file_source->Invalidate();
  BOOST_TEST(*file_source->Token() == "from-file");

  RestConfig exec;
  exec.exec = ExecConfig{"true", {}, {}, kExecApiVersionV1, "", false, ExecInteractiveMode::kNever};
  BOOST_TEST(dynamic_cast<ExecCredentialSource*>(NewTokenSource(exec).get()) != nullptr);
}

BOOST_AUTO_TEST_CASE(file_token_source_is_safe_under_concurrent_token_and_invalidate) {
  // Run under ThreadSanitizer by `make test-tsan`; here it checks that every
  // answer is one of the tokens the file held.
  TempDir dir;
  WriteFile(dir / "token", "t0");
  FakeClock clock;
  CachedFileTokenSourceOptions options;
  options.clock = clock.AsFunction();
  CachedFileTokenSource source(dir / "token", options);
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        if (i % 50 == 0 && t == 0) source.Invalidate();
        if (i % 100 == 0 && t == 1) clock.Advance(minutes(1));
        auto token = source.Token();
        if (!token.ok() || (*token != "t0" && *token != "t1")) bad = true;
      }
    });
  }
  // Rotation by rename, as the kubelet swaps a symlink: readers never see a
  // half-written file.
  for (int i = 0; i < 20; ++i) {
    WriteFile(dir / "next", i % 2 ? "t0" : "t1");
    std::filesystem::rename(dir / "next", dir / "token");
  }
  for (auto& th : threads) th.join();
  BOOST_TEST(!bad.load());
}

}  // namespace
}  // namespace kubefold::kube
