// Decides what the WebSocket clients receive: builds each dashboard stream's data when its
// source may have changed, compares it with the last sent content (without the fields that age
// every second), and publishes a new message (seq + 1) only on a real change. Also the feature
// vector. One thread; woken by SnapshotStore listeners, and on a timer for the timed streams of
// the API table (health, markets: 1 s; the node going down or data expiring is a change nobody
// publishes) and features (250 ms). Which streams a section feeds, and how each stream's data is
// built, is the API table's (api/api_table.h).
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "api/api_table.h"
#include "snapshot/feature_store.h"
#include "snapshot/snapshot_store.h"
#include "ws/protocol.h"
#include "ws/ws_server.h"

namespace bb::ws {

class Deflater;

/// When the data of a hub pass changed, the `timestamp` of its messages: the first change
/// signalled since the last pass; for a pass nothing signalled (the timer's, for data that time
/// alone changes, e.g. a market turning stale), the pass's own time, never the time of a change
/// an earlier pass already published. Not thread-safe (the hub holds its mutex).
class ChangeTime {
 public:
  /// A change at `now_ms`; the first since the last take() is the one kept.
  void signal(int64_t now_ms) {
    if (pending_) return;
    pending_ = true;
    since_ = now_ms;
  }
  /// The time of the pass that starts at `now_ms`; the next pass starts afresh.
  int64_t take(int64_t now_ms) {
    const int64_t t = pending_ ? since_ : now_ms;
    pending_ = false;
    return t;
  }

 private:
  bool pending_ = false;
  int64_t since_ = 0;
};

struct HubOptions {
  std::chrono::milliseconds health_interval{1000};  ///< rebuilds the timed streams
  std::chrono::milliseconds feature_interval{250};
};

class StreamHub {
 public:
  /// `server`, `bodies` (what builds each stream's data: the API table's composers) and
  /// `features` (may be null) must outlive the hub. Call attach() before plugins start
  /// publishing.
  StreamHub(WsServer& server, const api::StreamBodies& bodies, FeatureStore* features,
            HubOptions options = {});
  ~StreamHub();
  StreamHub(const StreamHub&) = delete;
  StreamHub& operator=(const StreamHub&) = delete;

  /// Registers the hub's listeners on `store` (which must outlive the hub): its changes, and the
  /// end of its plugins' collections (then the loops hand what they hold over at once).
  void attach(SnapshotStore& store);
  /// Starts the hub thread; the first pass publishes every stream that has data.
  void start();
  void stop();

  /// Marks the streams fed by `section` as possibly changed and wakes the hub. Cheap and
  /// thread-safe: this is what the store listener calls on plugin threads.
  void sectionChanged(const std::string& section);

  /// What the history calls sectionChanged() with after each new row: the history stream only.
  static constexpr const char* kHistorySection = api::kHistorySection;

 private:
  void run();
  void pass(uint32_t dirty, int64_t changed_ms);
  void checkFeatures();
  // Nothing more to publish now (no collection in progress, no change pending): the loops need
  // not wait for the rest of a block (WsServer::settle).
  void settleIfQuiet();
  // `json` as a compressed text frame (permessage-deflate), null when that is not smaller.
  FramePtr deflatedFrame(const std::string& json);

  WsServer& server_;
  const api::StreamBodies& bodies_;
  FeatureStore* features_;
  HubOptions options_;

  std::mutex mutex_;
  std::condition_variable cv_;
  uint32_t dirty_ = 0;
  bool collects_ended_ = false;  // the store's last collection in progress ended
  SnapshotStore* store_ = nullptr;
  ChangeTime changed_;  // when the first unhandled change was signalled
  bool stopping_ = false;
  std::thread thread_;

  // Hub-thread state.
  std::array<std::string, kStreamCount> last_fingerprint_{};
  std::array<uint64_t, kStreamCount> seq_{};
  uint64_t feature_version_ = UINT64_MAX;
  std::string feature_fingerprint_;
  bool feature_sent_ = false;
  std::unique_ptr<Deflater> deflater_;  // made when a client first negotiates compression
};

}  // namespace bb::ws
