// The agent's Prometheus registry: self-metrics (blockbuster_*, process_*) and the metrics
// plugins set through the SDK (checked names, bounded series). Only metrics.cc includes
// prometheus-cpp.
//
// Thread-safe. Serialization (a scrape) takes no lock that a plugin's collect holds for long:
// prometheus-cpp locks each family only while copying its values.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace bb {

struct MetricUpdate {
  std::string name;
  std::string help;
  bool counter = false;  ///< else gauge
  enum class Op { Set, Add, Remove } op = Op::Set;
  std::vector<std::pair<std::string, std::string>> labels;
  double value = 0;
};

/// What became of one plugin metric update (Metrics::applyPluginMetric).
struct MetricResult {
  enum class Code {
    Ok,         ///< applied
    Invalid,    ///< refused: a bad name, label or value, or a clash with an existing family
    SeriesCap,  ///< dropped: it would create a series past the plugin's max_series cap
  };
  Code code = Code::Ok;
  std::string why;  ///< empty when Ok; otherwise for logs
  bool ok() const { return code == Code::Ok; }
};

/// How old a plugin's data is, asked at every scrape (docs/metrics.md, "Stale data").
struct PluginFreshness {
  std::string plugin;
  std::optional<double> age_seconds;  ///< age of its newest published data; none before any
  bool expired = false;               ///< too old to judge: its own series are hidden
};

class Metrics {
 public:
  /// `max_series_per_plugin`: a plugin's updates that would create more series are dropped
  /// and counted in blockbuster_plugin_series_dropped_total.
  explicit Metrics(const std::string& version, size_t max_series_per_plugin = 2000);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  /// Text exposition format 0.0.4.
  std::string serialize() const;

  // --- self-metrics ---------------------------------------------------------------------------
  void pluginLoaded(const std::string& plugin, const std::string& version, double interval_seconds);
  void pluginCollect(const std::string& plugin, double seconds, bool ok);
  void pluginUp(const std::string& plugin, bool up);
  void pluginSkipped(const std::string& plugin);  ///< a run skipped: the previous still running
  void pluginQuarantined(const std::string& plugin);
  /// Counts restarts of the process of a plugin with isolation: process (0 creates the series).
  void pluginProcessRestarts(const std::string& plugin, double add);
  void rpcCall(const std::string& method, const std::string& outcome, double seconds);
  void httpRequest(const std::string& route, int code, double seconds);
  void nodeUp(bool up);
  /// WebSocket push (agent/ws): open clients of an endpoint ("dashboard" or "features").
  void wsClients(const std::string& endpoint, size_t clients);
  void wsMessagesSent(uint64_t messages);
  /// Messages a slow client never got: replaced by a newer one of the same stream, or refused.
  void wsMessagesDropped(uint64_t messages);
  /// A client closed: "client", "stalled", "timeout", "too_big", "protocol_error", "error",
  /// "shutdown".
  void wsClientClosed(const std::string& reason);

  // --- plugin metrics -------------------------------------------------------------------------
  /// Applies one update from `plugin`. Refused as Invalid: an invalid name or label, a name
  /// already used with another type or other label names, a reserved prefix, a non-finite
  /// value, a negative increment; dropped as SeriesCap past the plugin's series cap.
  MetricResult applyPluginMetric(const std::string& plugin, const MetricUpdate& update);
  /// Removes every series the plugin created (it was unloaded or restarted).
  void removePluginSeries(const std::string& plugin);

  /// Removes the agent's own series about a plugin (blockbuster_plugin_*{plugin=...}): it was
  /// disabled, so it is neither up nor down any more.
  void removePlugin(const std::string& plugin, const std::string& version);

  /// Asked at every scrape: sets blockbuster_plugin_data_age_seconds and
  /// blockbuster_plugin_stale, and leaves out every series of an expired plugin (a frozen
  /// theblock_market_up 1 or block height must not look current).
  void setFreshnessSource(std::function<std::vector<PluginFreshness>()> source);

  /// Series a plugin currently owns.
  size_t pluginSeries(const std::string& plugin) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bb
