// The bounded queue of one WebSocket client's messages not yet handed to its socket. Data
// messages keep only the latest of each stream (an update that arrives while an older one of the
// same stream still waits replaces it in place), so a slow client costs at most one message per
// stream and never grows without bound. Control messages (welcome, pong, error, ping, close) are
// kept in order up to a small cap.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>

namespace bb::ws {

/// An encoded frame, shared by every client it is sent to (encoded once per broadcast).
using FramePtr = std::shared_ptr<const std::string>;

/// Not thread-safe: owned and used by the event-loop thread.
class ClientQueue {
 public:
  /// `max_control`: control messages beyond this many pending are dropped (and counted).
  explicit ClientQueue(size_t max_control = 32) : max_control_(max_control) {}

  /// Queues the latest data of `stream` (>= 0). When a message of the same stream is pending,
  /// it is replaced where it stands and dropped() grows; when that pending one was a snapshot,
  /// `snapshot` (the same data as a "snapshot" message) replaces it instead, so that a client
  /// always gets a snapshot before any update of a stream. `snapshot` may be null.
  void pushLatest(int stream, FramePtr update, FramePtr snapshot = nullptr);
  /// Queues the snapshot of `stream` (first message of the stream for this client).
  void pushSnapshot(int stream, FramePtr snapshot);
  /// Queues a control message in order; false (and counted as dropped) beyond the cap.
  bool pushControl(FramePtr frame);
  /// Removes the pending message of `stream`, if any (unsubscribe).
  void removeStream(int stream);

  /// Whether a message of `stream` is pending.
  bool hasStream(int stream) const;
  bool empty() const { return items_.empty(); }
  size_t size() const { return items_.size(); }
  /// Takes the oldest message; null when empty.
  FramePtr pop();
  /// Messages replaced or refused since the last call (then reset to 0).
  uint64_t takeDropped();

 private:
  struct Item {
    int stream;  // -1 = control
    bool snapshot;
    FramePtr frame;
  };
  size_t max_control_;
  size_t control_count_ = 0;
  uint64_t dropped_ = 0;
  std::deque<Item> items_;
};

}  // namespace bb::ws
