// One plugin instance and its schedule: the bb_host the plugin talks to, and the thread that
// calls its collect() every interval_ms.
//
// - Each plugin has its own thread, so one slow plugin never delays another.
// - collect() of one instance never runs twice at once: a run that overruns its interval makes
//   the next runs be skipped (counted), never stacked.
// - Each collect has a deadline (timeout_ms, default interval_ms): RPC calls the plugin makes
//   past it fail at once with BB_ERR_TIMEOUT, so a plugin stuck on the node returns in time.
// - After kQuarantineAfter consecutive failures the plugin is quarantined: runs are spaced out
//   with exponential backoff (capped), logged at warn and counted, until one succeeds. Failures
//   during which the node left one of the plugin's calls unanswered (transport, timeout, bad
//   response, rate limit) do not count toward it: they are the node's, not the plugin's, and a
//   backoff would delay recovery far past one interval after the node comes back.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "config/config.h"
#include "host/plugin_loader.h"
#include "snapshot/history_marks.h"

struct bb_host;

namespace bb {

class RpcClient;
class SnapshotStore;
class Metrics;
class FeatureStore;
class PluginRoutes;
class ProcessPlugin;

/// The agent services a plugin may use. Not owned; must outlive every PluginRuntime.
struct HostServices {
  RpcClient* rpc = nullptr;
  SnapshotStore* store = nullptr;
  Metrics* metrics = nullptr;
  FeatureStore* features = nullptr;
  PluginRoutes* routes = nullptr;
  std::string state_dir;                  ///< each plugin gets <state_dir>/<plugin>
  std::string plugin_runner;              ///< bb-plugin-runner, for plugins with isolation: process
  HistoryMarks* history_marks = nullptr;  ///< metrics marked for history; null = ignored
  /// True while the node is judged unreachable (NodeMonitor). A collect that fails for want of
  /// the node is then logged at debug: the [node] line states the outage's cause once.
  std::function<bool()> node_unreachable;
};

struct PluginStatus {
  std::string name;
  std::string version;
  std::string path;
  std::string state;  ///< starting | ok | failing | quarantined | overdue | stopped
  int interval_ms = 0;
  std::optional<double> last_success_age_seconds;
  std::optional<double> last_duration_seconds;
  std::string last_error;
  int consecutive_failures = 0;
  uint64_t collections = 0;
  uint64_t failures = 0;
  uint64_t skipped = 0;
  std::string isolation = "inprocess";  ///< inprocess | process
  int pid = 0;                          ///< process: pid of the plugin's process, 0 if none
  uint64_t process_restarts = 0;        ///< process: processes lost and replaced
  std::string last_exit;                ///< process: how the last lost one ended
};

class PluginRuntime {
 public:
  static constexpr int kQuarantineAfter = 5;
  static constexpr std::chrono::minutes kMaxBackoff{5};

  /// The slot of the collection after the one of `slot` (on the grid of `interval` from the
  /// first), given that this one finished at `finished`: the next slot of the grid not passed
  /// by then, whenever the thread woke up for `slot`, so that plugins started together keep
  /// collecting together. `skipped`: the slots passed while collecting (not run).
  static std::chrono::steady_clock::time_point nextSlot(
      std::chrono::steady_clock::time_point slot, std::chrono::steady_clock::time_point finished,
      std::chrono::milliseconds interval, int64_t& skipped);

  PluginRuntime(std::shared_ptr<LoadedLibrary> library, PluginConfig config, HostServices services);
  ~PluginRuntime();  ///< stop()s, destroys the instance, releases the library
  PluginRuntime(const PluginRuntime&) = delete;
  PluginRuntime& operator=(const PluginRuntime&) = delete;

  /// Creates the plugin instance with its effective options. Throws std::runtime_error.
  void create(const std::string& effective_options_json);
  /// Starts the collect thread (the first collect runs at once).
  void start();
  /// Asks the thread to stop after the collect in progress; returns at once.
  void requestStop();
  /// Stops the thread: waits up to `grace` for a collect in progress. A plugin still stuck
  /// after that is abandoned (its thread detached, instance and library leaked) so that the
  /// agent can exit; returns false in that case.
  bool stop(std::chrono::milliseconds grace = std::chrono::milliseconds(1500));

  PluginStatus status() const;
  const std::string& name() const { return library_->info().name; }
  const PluginInfo& info() const { return library_->info(); }
  const PluginConfig& config() const { return config_; }

  // Host API implementation (called from plugin code through bb_host_api).
  void hostLog(int level, const char* message);
  int hostRpc(const char* method, const char* params, bb_sink_fn sink, void* ctx);
  int hostRpcMany(bb_rpc_request* requests, size_t count);
  int hostPublish(const char* section, const char* json, size_t len);
  int hostPublishError(const char* section, const char* reason);
  int hostMetric(const bb_metric* metric);
  int hostFeature(const char* name, double value);
  int hostServe(const char* path, bb_route_fn fn, void* ctx);
  const char* hostStateDir();

 private:
  void run();
  void collectOnce();
  std::chrono::steady_clock::time_point callDeadline() const;
  std::chrono::milliseconds staleAfter() const;
  std::chrono::milliseconds timeout() const;

  std::shared_ptr<LoadedLibrary> library_;  // first: released last
  PluginConfig config_;
  HostServices services_;
  std::unique_ptr<bb_host> host_;
  void* instance_ = nullptr;
  std::unique_ptr<ProcessPlugin> process_;  // isolation: process: stands in for instance_
  std::string state_dir_;

  std::thread thread_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool thread_done_ = false;
  bool abandoned_ = false;

  // Status, guarded by mutex_.
  bool collecting_ = false;
  std::chrono::steady_clock::time_point collect_started_{};
  std::optional<std::chrono::steady_clock::time_point> last_success_;
  std::optional<double> last_duration_;
  std::string last_error_;
  int consecutive_failures_ = 0;
  int own_failures_in_row_ = 0;  // consecutive failures not explained by the node: quarantine
  uint64_t collections_ = 0;
  uint64_t failures_ = 0;
  uint64_t skipped_ = 0;
  bool quarantined_ = false;

  std::atomic<int64_t> deadline_ns_{0};  // steady-clock deadline of the collect in progress
  std::atomic<bool> node_fault_{false};  // a call of the collect in progress went unanswered
};

}  // namespace bb
