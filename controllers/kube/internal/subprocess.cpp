#include "controllers/kube/internal/subprocess.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>

namespace kubefold::kube::internal {
namespace {

using Clock = std::chrono::steady_clock;

// Owns a file descriptor.
class Fd {
 public:
  Fd() = default;
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  bool open() const { return fd_ >= 0; }
  void Reset() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  void Assign(int fd) {
    Reset();
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  bool actions_ok = false;
  bool attr_ok = false;
  ~SpawnSetup() {
    if (actions_ok) posix_spawn_file_actions_destroy(&actions);
    if (attr_ok) posix_spawnattr_destroy(&attr);
  }
};

void KillGroup(pid_t pid) {
  ::kill(-pid, SIGKILL);  // the plugin and anything it started
  ::kill(pid, SIGKILL);   // in case it left its process group
}

int WaitBlocking(pid_t pid) {
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return 0;
  }
  return status;
}

}  // namespace

Result<SubprocessResult> RunSubprocess(const SubprocessOptions& options) {
  const std::string& program = options.program;
  int out_fds[2];
  int err_fds[2];
  if (::pipe2(out_fds, O_CLOEXEC) != 0) {
    return InternalError("run " + program + ": pipe: " + std::strerror(errno));
  }
  Fd out_read(out_fds[0]), out_write(out_fds[1]);
  if (::pipe2(err_fds, O_CLOEXEC) != 0) {
    return InternalError("run " + program + ": pipe: " + std::strerror(errno));
  }
  Fd err_read(err_fds[0]), err_write(err_fds[1]);

  SpawnSetup setup;
  if (posix_spawn_file_actions_init(&setup.actions) != 0) return InternalError("run " + program + ": spawn setup");
  setup.actions_ok = true;
  if (posix_spawnattr_init(&setup.attr) != 0) return InternalError("run " + program + ": spawn setup");
  setup.attr_ok = true;
  // dup2 clears close-on-exec on the child's 1 and 2; the pipe ends
  // themselves stay close-on-exec, so no other child inherits them.
  if (posix_spawn_file_actions_addopen(&setup.actions, 0, "/dev/null", O_RDONLY, 0) != 0 ||
      posix_spawn_file_actions_adddup2(&setup.actions, out_write.get(), 1) != 0 ||
      posix_spawn_file_actions_adddup2(&setup.actions, err_write.get(), 2) != 0) {
    return InternalError("run " + program + ": spawn setup");
  }
  // Its own process group (so a timeout kills what it started too), no
  // blocked signals, and SIGPIPE back to default even if we ignore it.
  sigset_t empty_mask;
  sigemptyset(&empty_mask);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  if (posix_spawnattr_setflags(&setup.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                POSIX_SPAWN_SETSIGDEF) != 0 ||
      posix_spawnattr_setpgroup(&setup.attr, 0) != 0 || posix_spawnattr_setsigmask(&setup.attr, &empty_mask) != 0 ||
      posix_spawnattr_setsigdefault(&setup.attr, &defaults) != 0) {
    return InternalError("run " + program + ": spawn setup");
  }

  std::vector<char*> argv;
  argv.reserve(options.args.size() + 2);
  argv.push_back(const_cast<char*>(program.c_str()));
  for (const std::string& a : options.args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(options.env.size() + 1);
  for (const std::string& e : options.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  const int spawn_error = posix_spawnp(&pid, program.c_str(), &setup.actions, &setup.attr, argv.data(), envp.data());
  out_write.Reset();
  err_write.Reset();
  if (spawn_error != 0) {
    std::string message = "run " + program + ": " + std::strerror(spawn_error);
    if (spawn_error == ENOENT) return NotFound(std::move(message));
    if (spawn_error == EACCES || spawn_error == EPERM) {
      return Status(StatusCode::kPermissionDenied, std::move(message));
    }
    return InternalError(std::move(message));
  }

  SubprocessResult result;
  const auto deadline = Clock::now() + options.timeout;
  bool killed = false;
  char buf[16384];
  while (out_read.open() || err_read.open()) {
    const auto now = Clock::now();
    if (now >= deadline) {
      KillGroup(pid);
      killed = true;
      result.end = SubprocessEnd::kTimedOut;
      break;
    }
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1;
    pollfd fds[2];
    nfds_t n = 0;
    if (out_read.open()) fds[n++] = pollfd{out_read.get(), POLLIN, 0};
    if (err_read.open()) fds[n++] = pollfd{err_read.get(), POLLIN, 0};
    const int ready = ::poll(fds, n, static_cast<int>(std::min<long long>(wait, 60'000)));
    if (ready < 0) {
      if (errno == EINTR) continue;
      KillGroup(pid);
      WaitBlocking(pid);
      return InternalError("run " + program + ": poll: " + std::strerror(errno));
    }
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      const bool is_out = fds[i].fd == out_read.get();
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        (is_out ? out_read : err_read).Reset();
        continue;
      }
      if (got == 0) {
        (is_out ? out_read : err_read).Reset();
        continue;
      }
      const size_t size = static_cast<size_t>(got);
      if (is_out) {
        if (result.stdout_bytes.size() + size > options.max_stdout_bytes) {
          result.stdout_bytes.append(buf, options.max_stdout_bytes - result.stdout_bytes.size());
          KillGroup(pid);
          killed = true;
          result.end = SubprocessEnd::kStdoutTooLarge;
          break;
        }
        result.stdout_bytes.append(buf, size);
      } else if (result.stderr_bytes.size() < options.max_stderr_bytes) {
        result.stderr_bytes.append(buf, std::min(size, options.max_stderr_bytes - result.stderr_bytes.size()));
      }
    }
    if (killed) break;
  }
  out_read.Reset();
  err_read.Reset();

  int status = 0;
  if (killed) {
    status = WaitBlocking(pid);
  } else {
    // Both pipes are closed; the program may still be running (it can close
    // its output early), so keep to the deadline while reaping it.
    for (;;) {
      const pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      if (r < 0 && errno != EINTR) break;
      if (Clock::now() >= deadline) {
        KillGroup(pid);
        status = WaitBlocking(pid);
        result.end = SubprocessEnd::kTimedOut;
        return result;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
  }
  if (result.end == SubprocessEnd::kExited) {
    if (WIFEXITED(status)) {
      result.exit_code = WEXITSTATUS(status);
    } else if (WIFSIGNALED(status)) {
      result.end = SubprocessEnd::kSignaled;
      result.signal = WTERMSIG(status);
    }
  }
  return result;
}

}  // namespace kubefold::kube::internal
