// One loop of the reactor: an epoll set, an eventfd to wake it from other threads, and the sweep
// that times connections out. Every connection of the agent lives on one: HTTP and HTTPS
// requests, WebSocket upgrades (http/connection.cc) and WebSocket clients (ws/ws_server.cc). A
// loop runs on a thread of its own and never blocks; what may block goes to an offload pool.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

namespace bb::net {

using Clock = std::chrono::steady_clock;

class Loop {
 public:
  /// What a loop drives: its owner's connections, by the keys they were added with.
  class Handler {
   public:
    virtual ~Handler() = default;
    /// Readiness of what was added with `key` (EPOLLIN for a stream with buffered bytes, see
    /// readyAgain).
    virtual void onEvent(uint64_t key, uint32_t events) = 0;
    /// The loop was woken (wake(), from any thread): take what other threads left for it.
    virtual void onWake() = 0;
    /// Every kSweep (net/limits.h): connections past their timeouts.
    virtual void onSweep(Clock::time_point now) = 0;
    /// After each turn's events: erase what was closed during it.
    virtual void onTurnEnd() {}
    /// The time set with wakeAt() has come (loop thread).
    virtual void onDeadline() {}
    /// Once stop() was asked, on the loop thread: close what is left.
    virtual void onStop() {}
  };

  /// Key 0 is the loop's own (the wake-up); handlers use keys from 1.
  static constexpr uint64_t kWakeKey = 0;

  /// Throws std::runtime_error naming `name` when the kernel refuses an epoll set or eventfd.
  explicit Loop(const std::string& name);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  bool add(int fd, uint64_t key, uint32_t events);
  bool modify(int fd, uint64_t key, uint32_t events);
  void remove(int fd);
  /// Delivers EPOLLIN to `key` next turn without sleeping: a TLS stream holds decrypted bytes
  /// that epoll cannot see. Loop thread only.
  void readyAgain(uint64_t key) { ready_.push_back(key); }
  /// Calls Handler::onDeadline() once, at `when` or at the first turn after it (replaces an
  /// earlier one not yet come). Loop thread only.
  void wakeAt(Clock::time_point when) { deadline_ = when; }
  bool deadlineSet() const { return deadline_ != Clock::time_point{}; }

  /// Thread-safe.
  void wake();
  /// Runs `handler` on a new thread named `thread_name` (15 characters at most).
  void start(Handler& handler, const std::string& thread_name);
  /// Asks the loop to end after its turn (thread-safe), without waiting for it.
  void requestStop();
  /// requestStop(), then joins the loop's thread. Idempotent.
  void stop();
  bool stopping() const { return stopping_.load(std::memory_order_relaxed); }
  bool running() const { return thread_.joinable(); }
  /// The time at the start of this turn (loop thread).
  Clock::time_point now() const { return now_; }
  const std::string& name() const { return name_; }

 private:
  void run(Handler& handler);

  std::string name_;
  int epfd_ = -1;
  int evfd_ = -1;
  std::thread thread_;
  std::atomic<bool> stopping_{false};
  std::vector<uint64_t> ready_;
  Clock::time_point deadline_{};  // none when zero
  Clock::time_point now_ = Clock::now();
};

}  // namespace bb::net
