// What the HTTP handlers serve: the last body each plugin section published, never waiting on
// the node. Plugins write (publish / markError) from their collect threads; HTTP threads read.
//
// A reader takes a shared_ptr to an immutable Section under a short lock and renders from it
// with no lock held, so a slow client or a slow plugin never blocks anyone else.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace bb {

/// One published section, immutable once stored.
struct Section {
  std::string name;    ///< "<plugin>.<section>", e.g. "network.metrics"
  std::string plugin;  ///< the plugin that owns it
  /// The body as published, with "timestamp" added when the plugin did not give one, minus its
  /// closing brace: renderBody() appends the age fields and the brace. Empty until first data.
  std::string body_prefix;
  bool has_data = false;
  int64_t published_unix = 0;  ///< wall-clock seconds of the last successful publish
  std::chrono::steady_clock::time_point published_at{};
  std::chrono::milliseconds stale_after{0};  ///< older than this = stale
  std::string error;     ///< why the last refresh failed; empty when it succeeded
  uint64_t version = 0;  ///< store-wide version at which this section last changed

  double ageSeconds(std::chrono::steady_clock::time_point now) const;
  bool isStale(std::chrono::steady_clock::time_point now) const;
  /// Data older than stale_after (2 collect intervals plus the collect timeout: 3 intervals at
  /// the defaults): too old to judge anything by. Its market status is `unknown` and its
  /// plugin's metric series are hidden (docs/metrics.md, "Stale data").
  bool isExpired(std::chrono::steady_clock::time_point now) const;
};

using SectionPtr = std::shared_ptr<const Section>;

class SnapshotStore {
 public:
  /// Called after every change, on the writer's thread, with the changed section.
  using Listener = std::function<void(const SectionPtr&)>;

  /// Replaces a section's body. `json` must be a JSON object (checked by the caller);
  /// `has_timestamp` says whether it has a top-level "timestamp" (else the store adds one).
  void publish(const std::string& name, const std::string& plugin, const std::string& json,
               bool has_timestamp, std::chrono::milliseconds stale_after);
  /// Keeps the last body, records why it could not be refreshed.
  void markError(const std::string& name, const std::string& plugin, const std::string& reason,
                 std::chrono::milliseconds stale_after);
  /// markError() on every section of `plugin` (those it has published so far).
  void markPluginError(const std::string& plugin, const std::string& reason);
  /// Forgets every section of a plugin (unloaded).
  void removePlugin(const std::string& plugin);

  SectionPtr get(const std::string& name) const;
  std::vector<SectionPtr> all() const;
  uint64_t version() const;

  /// Registers a listener; call before writers start. Not removable (lives as long as the store).
  void addListener(Listener listener);

  /// Plugin collections in progress, bracketed by their runtimes: what publishes next. When the
  /// last one in progress ends, the idle listeners are called (on that collect's thread; they
  /// must be cheap): the WebSocket hub then hands a block's updates over at once instead of
  /// waiting for more of them (ws/stream_hub.h).
  void collectStarted();
  void collectFinished();
  int collectsInProgress() const { return collecting_.load(); }
  /// Registers an idle listener; call before writers start. Not removable.
  void addIdleListener(std::function<void()> listener);

  /// The section's body with `age_seconds`, `stale` (and `stale_reason` when stale) appended.
  static std::string renderBody(const Section& section, std::chrono::steady_clock::time_point now);

 private:
  void store(std::shared_ptr<Section> section);

  mutable std::mutex mutex_;
  std::map<std::string, SectionPtr> sections_;
  uint64_t version_ = 0;
  std::vector<Listener> listeners_;
  std::vector<std::function<void()>> idle_listeners_;
  std::atomic<int> collecting_{0};
};

/// Formats seconds with millisecond precision, as JSON.
std::string formatSeconds(double seconds);

}  // namespace bb
