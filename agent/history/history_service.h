// Keeps the history (HistoryStore) filled and on disk: a worker thread samples the figures the
// page charts once per collection interval, from the same bodies the REST API serves (a stale or
// missing body gives nulls, never a repeated old value), and writes the file every
// `save_interval` and at stop. Nothing here runs on an event loop: HTTP threads only render.
// Serves GET /theblock/history.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "config/config.h"
#include "history/history_store.h"
#include "http/router.h"
#include "snapshot/history_marks.h"

namespace bb {

class DashboardApi;

struct HistoryServiceOptions {
  HistoryOptions store;
  std::string file;  ///< "" = not persisted
  std::chrono::milliseconds save_interval{60000};
};

/// The options from the config: history.window, one row per collection interval of the plugin
/// the network figures come from (1 to 60 s), the file <state_dir>/history.bin.
HistoryServiceOptions historyOptions(const Config& config, const std::string& state_dir);

/// The series the agent records, named after the REST bodies' fields, and their values now.
using HistorySampler = std::function<std::vector<std::pair<std::string, double>>()>;

/// The sampler of the agent: /theblock/network/metrics and each market of
/// /theblock/markets/health (figures and status: healthy 2, idle 1, unavailable 0, any other
/// status null), and the plugin metrics marked for history (`marks`, may be null).
HistorySampler dashboardSampler(const DashboardApi& api, const HistoryMarks* marks = nullptr);

/// Parses `body` (a section body) into `out` as "<prefix><field>" for every number or null at
/// its top level and in `strength_terms`; every value null when the body is stale.
void sampleBody(const std::string& prefix, const std::string& body,
                std::vector<std::pair<std::string, double>>& out);

class HistoryService {
 public:
  HistoryService(HistoryServiceOptions options, HistorySampler sampler);
  ~HistoryService();
  HistoryService(const HistoryService&) = delete;
  HistoryService& operator=(const HistoryService&) = delete;

  /// Called on the worker thread after every new row (e.g. to wake the stream hub).
  void setOnRow(std::function<void()> on_row) { on_row_ = std::move(on_row); }
  /// Reads the file (a damaged one is set aside as <file>.bad and named in the log).
  void load();
  void start();
  /// Stops the worker and writes the file.
  void stop();
  /// One sample now (tests; the worker calls it every resolution).
  void sampleOnce(int64_t unix_ms);

  /// Serves the API table's history row: its route on `router`, its stream's data to `api`.
  void install(Router& router, DashboardApi& api);
  HistoryStore& store() { return store_; }

 private:
  void run();
  void save();

  HistoryServiceOptions options_;
  HistorySampler sampler_;
  HistoryStore store_;
  std::function<void()> on_row_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace bb
