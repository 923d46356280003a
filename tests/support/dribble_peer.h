// Test support: a hostile HTTP peer on 127.0.0.1:0 that reads each request and answers it one
// byte at a time, a byte every `gap`, for at most `for_at_most` per connection (then closes).
// Stands in for a node whose reply never quite finishes: every byte comes well within any
// per-read timeout, so only a deadline on the whole exchange ends the call.
#pragma once

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

namespace bbtest {

class DribblePeer {
 public:
  /// `reply` is sent whole, byte by byte; `head_at_once` sends its head (up to the blank line)
  /// in one write and dribbles only the body.
  DribblePeer(std::string reply, std::chrono::milliseconds gap,
              std::chrono::milliseconds for_at_most, bool head_at_once = false);
  ~DribblePeer();
  DribblePeer(const DribblePeer&) = delete;
  DribblePeer& operator=(const DribblePeer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  /// Requests whose head was read so far.
  int requests() const { return requests_.load(); }
  /// Waits until `n` requests were read, up to `limit`.
  bool waitForRequests(int n, std::chrono::milliseconds limit) const;
  /// A JSON-RPC success reply with `result`, padded by an X-Pad header of `pad` bytes.
  static std::string jsonReply(const std::string& result, size_t pad = 0);

 private:
  void acceptLoop();
  void serve(int fd);

  std::string reply_;
  std::chrono::milliseconds gap_;
  std::chrono::milliseconds for_at_most_;
  bool head_at_once_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread acceptor_;
  std::vector<std::thread> connections_;  // touched by the acceptor only, joined after it
};

}  // namespace bbtest
