// A framed, bidirectional request/reply channel over one connected stream socket: how the agent
// and bb-plugin-runner talk when a plugin runs with `isolation: process`.
//
// Frame: u32 length of the rest | u8 kind | u32 id | u32 field count | per field: u32 length,
// bytes. Host byte order (both ends are on one machine). kind 0 is a reply to the request with
// the same id; any other kind is a request, handed to the handler given at construction.
//
// Threading: one reader thread per channel reads frames, completes the waiting call() of a reply
// and runs the request handler for a request. A handler that may block (it calls back through
// call(), or waits on the node) must hand the work to another thread, or the reader stalls.
// call() and reply() may be used from any thread; a frame is written whole under a mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace bb::ipc {

constexpr uint8_t kReply = 0;
/// Largest frame accepted: a bigger one is a protocol error and closes the channel.
constexpr uint32_t kMaxFrameBytes = 64u << 20;

struct Message {
  uint8_t kind = 0;
  uint32_t id = 0;
  std::vector<std::string> fields;
  /// fields[i], or "" when the peer sent fewer.
  const std::string& field(size_t i) const;
  /// fields[i] as an integer, or `fallback` when absent or not a number.
  int64_t integer(size_t i, int64_t fallback = 0) const;
};

/// Encodes one frame (exposed for tests and the fuzz target).
std::string encode(const Message& m);
/// Decodes the frame body (everything after the length); nullopt when malformed.
std::optional<Message> decode(const char* data, size_t len);

class Channel {
 public:
  using Handler = std::function<void(Message request)>;
  /// Takes ownership of `fd`. `on_request` runs on the reader thread for every request;
  /// `on_close` runs once on the reader thread when the peer goes away or a frame is malformed.
  Channel(int fd, Handler on_request, std::function<void()> on_close = {});
  ~Channel();  ///< close()s and joins the reader thread
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  /// Starts the reader thread. Call once, after everything the handlers use is ready.
  void start();

  /// Sends a request and waits for its reply: nullopt when the channel closed first or when
  /// `timeout` passed (the reply, if it comes later, is dropped).
  std::optional<Message> call(uint8_t kind, std::vector<std::string> fields,
                              std::chrono::milliseconds timeout);
  /// Answers request `id`. Returns false when the channel is closed.
  bool reply(uint32_t id, std::vector<std::string> fields);

  /// Shuts the socket down: the reader sees the end, every waiting call() returns nullopt.
  void close();
  bool closed() const;
  /// close()s and waits until the reader thread has left (its handlers included). Not from a
  /// handler.
  void join();

 private:
  bool send(const Message& m);
  void readLoop();
  void finish();

  int fd_;
  Handler on_request_;
  std::function<void()> on_close_;
  std::thread reader_;
  std::mutex write_mutex_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool closed_ = false;
  uint32_t next_id_ = 1;
  std::map<uint32_t, std::optional<Message>> pending_;  // by id; set when the reply came
};

}  // namespace bb::ipc
