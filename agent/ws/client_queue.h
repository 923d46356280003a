// The bounded queue of one WebSocket client's messages not yet handed to its socket. Data
// messages keep only the latest of each stream (an update that arrives while an older one of the
// same stream still waits replaces it in place), so a slow client costs at most one message per
// stream and never grows without bound. Control messages (welcome, pong, error, ping, close) are
// kept in order up to a small cap. Frames are shared, never copied: a client's queue costs at
// most (streams + the control cap) pointers, whatever the messages weigh.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bb::ws {

/// An encoded frame, shared by every client it is sent to (encoded once per broadcast).
using FramePtr = std::shared_ptr<const std::string>;

/// Not thread-safe: owned and used by the event-loop thread.
class ClientQueue {
 public:
  /// `max_control`: control messages beyond this many pending are dropped (and counted).
  explicit ClientQueue(size_t max_control = 32) : max_control_(max_control) {}

  /// Queues the latest data of `stream` (>= 0). When messages of the same stream are pending,
  /// the oldest is replaced where it stands, the others go, and dropped() grows by as many; when
  /// that pending one was a snapshot, `snapshot` (the same data as a "snapshot" message)
  /// replaces it instead, so that a client always gets a snapshot before any update of a
  /// stream. `snapshot` may be null.
  void pushLatest(int stream, FramePtr update, FramePtr snapshot = nullptr);
  /// Queues an update of `stream` behind the pending ones, for a client whose socket takes what
  /// it is given: updates published together go out together, and none is lost. At most
  /// `max_per_stream` (>= 1) of a stream wait at once (beyond, the newest pending one is
  /// replaced and dropped() grows); with a snapshot of the stream pending, as pushLatest().
  void pushUpdate(int stream, FramePtr update, FramePtr snapshot, size_t max_per_stream);
  /// Queues the snapshot of `stream` (first message of the stream for this client).
  void pushSnapshot(int stream, FramePtr snapshot);
  /// Queues a control message in order; false (and counted as dropped) beyond the cap.
  bool pushControl(FramePtr frame);
  /// Removes the pending messages of `stream`, if any (unsubscribe).
  void removeStream(int stream);

  /// Whether a message of `stream` is pending.
  bool hasStream(int stream) const;
  bool empty() const { return head_ == items_.size(); }
  size_t size() const { return items_.size() - head_; }
  /// The `i`-th pending frame from the oldest (i < size()), left in the queue: what a gathered
  /// write hands to the socket before pop() takes what it took.
  const std::string& peek(size_t i) const { return *items_[head_ + i].frame; }
  /// Takes the oldest message; null when empty.
  FramePtr pop();
  /// Messages replaced or refused since the last call (then reset to 0).
  uint64_t takeDropped();

 private:
  void compact();

  struct Item {
    int stream;  // -1 = control
    bool snapshot;
    FramePtr frame;
  };
  size_t max_control_;
  size_t control_count_ = 0;
  uint64_t dropped_ = 0;
  // Pending items are items_[head_..]; pop() advances head_ and the vector empties (keeping its
  // capacity, bounded by the streams and the control cap) when the last one goes.
  std::vector<Item> items_;
  size_t head_ = 0;
};

}  // namespace bb::ws
