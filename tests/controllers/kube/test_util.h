// Helpers for the controllers/kube tests: a temporary directory that removes
// itself, file writing, a settable clock, and status printing that needs
// nothing but status.h.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>

#include "state/status.h"

namespace kubefold::kube::testing {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "kubefold-kube-XXXXXX").string();
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void WriteFile(const std::string& path, const std::string& content) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << content;
  if (!out) throw std::runtime_error("cannot write " + path);
}

inline void WriteExecutable(const std::string& path, const std::string& content) {
  WriteFile(path, content);
  ::chmod(path.c_str(), 0755);
}

inline std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// "code 1: message", for failure output.
inline std::string Describe(const Status& s) {
  return "code " + std::to_string(static_cast<int>(s.code())) + ": " + s.message();
}

// A clock the test moves by hand; safe to read from several threads.
class FakeClock {
 public:
  using time_point = std::chrono::system_clock::time_point;
  explicit FakeClock(time_point start = time_point(std::chrono::seconds(1'800'000'000)))
      : state_(std::make_shared<State>(start)) {}
  time_point Now() const {
    std::lock_guard<std::mutex> lock(state_->mu);
    return state_->now;
  }
  void Advance(std::chrono::system_clock::duration d) {
    std::lock_guard<std::mutex> lock(state_->mu);
    state_->now += d;
  }
  // A WallClock (std::function) sharing this clock's state.
  auto AsFunction() const {
    auto state = state_;
    return [state] {
      std::lock_guard<std::mutex> lock(state->mu);
      return state->now;
    };
  }

 private:
  struct State {
    explicit State(time_point t) : now(t) {}
    std::mutex mu;
    time_point now;
  };
  std::shared_ptr<State> state_;
};

// PEM-shaped bytes (the loader checks for a PEM header, not the DER inside).
inline const std::string kCaPem = "-----BEGIN CERTIFICATE-----\nQ0EtY2VydA==\n-----END CERTIFICATE-----\n";
inline const std::string kCertPem = "-----BEGIN CERTIFICATE-----\nY2xpZW50\n-----END CERTIFICATE-----\n";
inline const std::string kKeyPem = "-----BEGIN PRIVATE KEY-----\nU0VDUkVULUtFWS1NQVRFUklBTA==\n-----END PRIVATE KEY-----\n";

}  // namespace kubefold::kube::testing
