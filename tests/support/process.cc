#include "support/process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "support/await.h"

extern char** environ;

namespace bbtest {

std::string binPath(const std::string& name) {
  // BB_TEST_BIN_DIR in the environment runs the tests against another build's programs (e.g.
  // to see a new test fail on the code before a fix).
  const char* other = std::getenv("BB_TEST_BIN_DIR");
  return std::string(other && *other ? other : BB_TEST_BIN_DIR) + "/" + name;
}

struct ChildProcess::Impl {
  int fd = -1;
  std::thread reader;
  mutable std::mutex mu;
  std::condition_variable cv;
  std::string out;
  bool eof = false;
  std::optional<int> status;
};

ChildProcess::ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env)
    : impl_(std::make_unique<Impl>()) {
  if (argv.empty()) throw std::invalid_argument("ChildProcess: empty argv");
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e; ++e) {
    std::string kv(*e);
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (auto& kv : env) merged[kv.first] = kv.second;
  std::vector<std::string> envStrings;
  for (auto& kv : merged) envStrings.push_back(kv.first + "=" + kv.second);
  std::vector<char*> cargv, cenv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envStrings) cenv.push_back(e.data());
  cenv.push_back(nullptr);

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    setpgid(0, 0);
    execve(cargv[0], cargv.data(), cenv.data());
    std::fprintf(stderr, "exec %s failed: %s\n", cargv[0], std::strerror(errno));
    _exit(127);
  }
  close(fds[1]);
  impl_->fd = fds[0];
  Impl* impl = impl_.get();
  impl_->reader = std::thread([impl] {
    char buf[4096];
    for (;;) {
      ssize_t n = read(impl->fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      std::lock_guard<std::mutex> lock(impl->mu);
      if (n <= 0) {
        impl->eof = true;
        impl->cv.notify_all();
        return;
      }
      impl->out.append(buf, static_cast<size_t>(n));
      impl->cv.notify_all();
    }
  });
}

ChildProcess::~ChildProcess() {
  if (running()) {
    kill(pid_, SIGKILL);
    wait(std::chrono::seconds(10));
  }
  if (impl_->reader.joinable()) impl_->reader.join();
  if (impl_->fd >= 0) close(impl_->fd);
}

std::optional<std::string> ChildProcess::waitForLine(const std::string& needle,
                                                     std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(impl_->mu);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t searched = 0;
  for (;;) {
    // Only complete lines count.
    for (;;) {
      auto nl = impl_->out.find('\n', searched);
      if (nl == std::string::npos) break;
      std::string line = impl_->out.substr(searched, nl - searched);
      searched = nl + 1;
      if (line.find(needle) != std::string::npos) return line;
    }
    if (impl_->eof) return std::nullopt;
    if (impl_->cv.wait_until(lock, deadline) == std::cv_status::timeout) {
      if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    }
  }
}

std::string ChildProcess::output() const {
  std::lock_guard<std::mutex> lock(impl_->mu);
  return impl_->out;
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && !impl_->status) kill(pid_, sig);
}

std::optional<int> ChildProcess::wait(std::chrono::milliseconds timeout) {
  if (impl_->status) return impl_->status;
  int st = 0;
  const bool exited = eventually([&] { return waitpid(pid_, &st, WNOHANG) == pid_; }, timeout,
                                 std::chrono::milliseconds(10));
  if (!exited) return std::nullopt;
  impl_->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  // What the child wrote just before it exited may still be in the pipe: let the reader drain
  // it, so that output() after wait() holds everything (bounded: a grandchild that inherited the
  // pipe may keep it open).
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->cv.wait_for(lock, std::chrono::seconds(2), [&] { return impl_->eof; });
  return impl_->status;
}

bool ChildProcess::running() { return !wait(std::chrono::milliseconds(0)).has_value(); }

std::pair<int, std::string> runProgram(std::vector<std::string> argv,
                                       std::map<std::string, std::string> env,
                                       std::chrono::milliseconds timeout) {
  ChildProcess p(std::move(argv), std::move(env));
  auto st = p.wait(timeout);
  if (!st) {
    p.signal(SIGKILL);
    st = p.wait(std::chrono::seconds(5));
  }
  // Let the reader drain what is left in the pipe.
  p.waitForLine("\x01never\x01", std::chrono::milliseconds(200));
  return {st.value_or(-1), p.output()};
}

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "bbtest-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
  path_ = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void TempDir::write(const std::string& name, const std::string& content) const {
  std::ofstream f(file(name), std::ios::binary);
  f << content;
}

int freeLoopbackPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  close(fd);
  return ntohs(a.sin_port);
}

std::optional<int> portFromLine(const std::string& line, const std::string& name) {
  std::string key = name + "=";
  size_t pos = 0;
  while ((pos = line.find(key, pos)) != std::string::npos) {
    if (pos == 0 || line[pos - 1] == ' ') {
      size_t end = line.find(' ', pos);
      std::string value = line.substr(
          pos + key.size(), end == std::string::npos ? std::string::npos : end - pos - key.size());
      auto colon = value.rfind(':');
      if (colon == std::string::npos) return std::nullopt;
      try {
        return std::stoi(value.substr(colon + 1));
      } catch (...) {
        return std::nullopt;
      }
    }
    pos += key.size();
  }
  return std::nullopt;
}

}  // namespace bbtest
