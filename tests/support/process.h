// Test support: start a real program as a child process, read its output, stop it.
// Used by every test that runs bb-devnode or blockbuster-agent as processes on loopback.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace bbtest {

/// Path of a built program, e.g. binPath("bb-devnode"); $BB_TEST_BIN_DIR, when set, is where.
std::string binPath(const std::string& name);

class ChildProcess {
 public:
  /// Starts `argv[0]` with `argv`; `env` entries are added to (or replace) the environment.
  ChildProcess(std::vector<std::string> argv, std::map<std::string, std::string> env = {});
  ~ChildProcess();  ///< kills (SIGKILL) and reaps if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  int pid() const { return pid_; }
  /// Waits until a line of stdout or stderr contains `needle`; returns that line.
  std::optional<std::string> waitForLine(const std::string& needle,
                                         std::chrono::milliseconds timeout);
  /// Everything the child printed so far (stdout and stderr interleaved by line).
  std::string output() const;
  /// Sends a signal.
  void signal(int sig);
  /// Waits for exit up to `timeout`; returns the exit status (or 128+signal), nullopt if still
  /// running.
  std::optional<int> wait(std::chrono::milliseconds timeout);
  bool running();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int pid_ = -1;
};

/// Runs a program to completion (with a timeout) and returns {exit status, output}.
std::pair<int, std::string> runProgram(
    std::vector<std::string> argv, std::map<std::string, std::string> env = {},
    std::chrono::milliseconds timeout = std::chrono::seconds(60));

/// A fresh temporary directory, removed with its contents on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }
  void write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

/// A TCP port free on 127.0.0.1 right now (bound and released): for a process that must be
/// started later on a known port. Another process may take it in between; tests that can, bind 0.
int freeLoopbackPort();

/// Parses "name=host:port" tokens out of a ready line, e.g. "... http=127.0.0.1:4321 ...".
std::optional<int> portFromLine(const std::string& line, const std::string& name);

}  // namespace bbtest
