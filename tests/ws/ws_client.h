// A tiny blocking WebSocket client for the tests (Poco::Net::WebSocket): connect, send text,
// receive JSON messages with a deadline. Answers the server's pings by itself.
#pragma once

#include <blockbuster/json.h>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace bbtest {

class WsClient {
 public:
  /// Connects to ws://127.0.0.1:port/path. Throws std::runtime_error on failure, with the HTTP
  /// status in the message.
  WsClient(int port, const std::string& path, const std::string& origin = "");
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;

  /// The HTTP status an upgrade attempt got (101 on success); 0 = no answer.
  static int tryUpgrade(int port, const std::string& path, const std::string& origin = "");

  void sendText(const std::string& text);
  /// The next text message, parsed; nullopt on timeout, on close (see closeCode()) or on a
  /// message that is not JSON (counted in badMessages()).
  std::optional<blockbuster::Json> receive(std::chrono::milliseconds timeout);
  /// Receives until `match` accepts a message (returned) or `timeout` passes; every message seen
  /// is also passed to `seen` when given.
  std::optional<blockbuster::Json> receiveUntil(
      const std::function<bool(const blockbuster::Json&)>& match, std::chrono::milliseconds timeout,
      const std::function<void(const blockbuster::Json&)>& seen = nullptr);

  /// The close code the server sent, 0 if none yet.
  int closeCode() const { return close_code_; }
  bool closed() const { return closed_; }
  int badMessages() const { return bad_; }
  /// Sends a raw frame with `flags` (e.g. a huge text frame).
  void sendFrame(const std::string& payload, int flags);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int close_code_ = 0;
  bool closed_ = false;
  int bad_ = 0;
};

}  // namespace bbtest
