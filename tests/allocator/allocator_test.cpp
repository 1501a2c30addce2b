// Plain builds run on jemalloc with kubefold's options (CMakeLists.txt,
// "Allocator"; cmake/jemalloc_conf.cpp). This checks that a program of the
// build really allocates through jemalloc, that the embedded options are the
// ones in force, and that what they are there for holds: large buffers that
// are freed leave the resident set at once instead of after jemalloc's decay.
#define BOOST_TEST_MODULE allocator_test
#include <boost/test/unit_test.hpp>

#include <jemalloc/jemalloc.h>

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

namespace {

constexpr size_t kMiB = size_t{1} << 20;

template <typename T>
T Read(const char* name) {
  T value{};
  size_t len = sizeof(value);
  const int rc = mallctl(name, &value, &len, nullptr, 0);
  BOOST_TEST_REQUIRE(rc == 0, "mallctl(\"" << name << "\") failed: " << std::strerror(rc));
  return value;
}

size_t Allocated() {
  uint64_t epoch = 1;
  size_t len = sizeof(epoch);
  BOOST_TEST_REQUIRE(mallctl("epoch", &epoch, &len, &epoch, len) == 0);
  return Read<size_t>("stats.allocated");
}

size_t RssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoull(line.substr(6)) * 1024;
  }
  return 0;
}

}  // namespace

BOOST_AUTO_TEST_CASE(malloc_and_operator_new_are_jemalloc) {
  const std::string version = Read<const char*>("version");
  BOOST_TEST_MESSAGE("jemalloc " << version);
  BOOST_TEST(!version.empty());
  // Bytes obtained through the C library's names and through operator new
  // show up in jemalloc's own count: its malloc is the one called.
  const size_t before = Allocated();
  void* p = std::malloc(3 * kMiB);
  auto* q = new char[5 * kMiB];
  BOOST_TEST_REQUIRE(p != nullptr);
  std::memset(p, 1, 3 * kMiB);
  std::memset(q, 1, 5 * kMiB);
  const size_t during = Allocated();
  std::free(p);
  delete[] q;
  BOOST_TEST(during >= before + 8 * kMiB, "jemalloc counted " << during - before << " bytes of 8 MiB");
  BOOST_TEST(Allocated() < during - 7 * kMiB);
}

BOOST_AUTO_TEST_CASE(the_embedded_options_are_in_force) {
  // MALLOC_CONF would override the embedded string; the suite runs without it.
  if (const char* env = std::getenv("MALLOC_CONF")) BOOST_TEST_MESSAGE("MALLOC_CONF=" << env << " is set");
  BOOST_TEST(Read<size_t>("opt.oversize_threshold") == kMiB);
  BOOST_TEST(Read<unsigned>("opt.narenas") == 2u);
  // The two, and the arena jemalloc keeps for allocations past oversize_threshold.
  BOOST_TEST(Read<unsigned>("arenas.narenas") == 3u);
}

BOOST_AUTO_TEST_CASE(freed_large_buffers_leave_the_resident_set_at_once) {
  // 48 buffers of 1-2 MiB, written, then freed: with jemalloc's defaults
  // (oversize_threshold 8 MiB, dirty pages kept 10 s) all of it would stay
  // resident; with the embedded options it goes back to the kernel on free.
  constexpr size_t kBuffers = 48;
  std::vector<char*> buffers;
  const size_t rss_before = RssBytes();
  for (size_t i = 0; i < kBuffers; ++i) {
    const size_t size = kMiB + (i % 8) * (kMiB / 8);
    auto* b = static_cast<char*>(std::malloc(size));
    BOOST_TEST_REQUIRE(b != nullptr);
    std::memset(b, static_cast<int>(i), size);
    buffers.push_back(b);
  }
  const size_t rss_full = RssBytes();
  for (char* b : buffers) std::free(b);
  const size_t rss_after = RssBytes();
  BOOST_TEST_MESSAGE("RSS: before " << rss_before / kMiB << " MiB, buffers written " << rss_full / kMiB
                                    << " MiB, freed " << rss_after / kMiB << " MiB");
  BOOST_TEST_REQUIRE(rss_full >= rss_before + 60 * kMiB, "the buffers were not resident");
  BOOST_TEST(rss_after < rss_before + 8 * kMiB, "freed buffers still resident: " << (rss_after - rss_before) / kMiB
                                                                                << " MiB above the start");
}
