// The guide's REST API (and /health, /metrics), composed from what plugins published.
// Every handler reads the snapshot store and answers at once; none ever waits on the node.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "api/api_table.h"
#include "api/node_monitor.h"
#include "host/plugin_manager.h"
#include "host/plugin_routes.h"
#include "http/router.h"
#include "metrics/metrics.h"
#include "snapshot/feature_store.h"
#include "snapshot/snapshot_store.h"

namespace bb {

struct ApiContext {
  std::string version;
  std::string rpc_url;
  SnapshotStore* store = nullptr;
  FeatureStore* features = nullptr;
  Metrics* metrics = nullptr;
  PluginManager* plugins = nullptr;
  PluginRoutes* plugin_routes = nullptr;
  NodeMonitor* node = nullptr;
  std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
};

/// The composers of the API table (api/api_table.h): the REST bodies and the streams' data.
class DashboardApi : public api::StreamBodies {
 public:
  explicit DashboardApi(ApiContext context);

  /// Registers the route of every row of the API table it composes (not the plugin routes'
  /// rows, served by the fallback, nor the history's, which HistoryService::install registers).
  void install(Router& router);

  /// The data of a streamed row (api::StreamBodies), what its REST body is when it is 200.
  std::optional<std::string> streamBody(const api::Endpoint& e) const override;
  /// What builds the history stream's data (the last row); set by HistoryService::install.
  void setHistorySource(std::function<std::optional<std::string>()> source) {
    history_source_ = std::move(source);
  }

  // The bodies, also used by the WebSocket streams.
  std::string health() const;
  HttpResponse section(const std::string& name) const;
  std::string marketsHealth() const;
  /// Nullopt when `may_block` is false and an embedded plugin route's answer (the receipts page)
  /// is not in memory.
  std::optional<std::string> dashboard(bool may_block = true) const;

  /// Whether answering `req` may wait: on a plugin process (isolation: process answers its
  /// routes over IPC, with a deadline), or on rendering a large body (the table's `offload`
  /// rows: /metrics, /theblock/history). The HTTP server then answers it off its event loops
  /// (ServerOptions::offload). /theblock/dashboard embeds the plugin routes of the table.
  bool mayBlock(const HttpRequest& req) const;

  /// Per plugin, the age of its newest published data and whether all of it is expired
  /// (Section::isExpired): what /metrics says of it (Metrics::setFreshnessSource).
  std::vector<PluginFreshness> freshness() const;

  /// overall_status from the four market statuses (exposed for tests).
  static std::string overallStatus(const std::vector<std::string>& statuses);

 private:
  HttpResponse pluginSection(const HttpRequest& req) const;
  HttpResponse pluginList() const;
  /// A plugin route's row for a stream or the dashboard, with the row's stream_query; nullopt
  /// when it is not served (plugin not loaded), a deferred answer when it would block.
  std::optional<PluginRoutes::Result> callPluginRoute(const api::Endpoint& e, bool may_block) const;
  std::string composeMarketsHealth(std::chrono::steady_clock::time_point now) const;
  /// /theblock/dashboard's body, the rows' texts spliced under their stream names; nullopt as
  /// dashboard().
  std::optional<std::string> composeDashboard(bool may_block) const;

  /// A composed body, built at most once per store version and kComposedMaxAge (its ages and
  /// timestamps are then at most that old): N requests between two publications cost one
  /// composition. The loops share it; the body is copied out of it, never built under its lock.
  static constexpr std::chrono::milliseconds kComposedMaxAge{100};
  class ComposedCache {
   public:
    /// The body built for `version` less than kComposedMaxAge before `now`, or nullopt.
    std::optional<std::string> get(uint64_t version, std::chrono::steady_clock::time_point now);
    void put(uint64_t version, std::chrono::steady_clock::time_point built, std::string body);

   private:
    std::mutex mutex_;
    uint64_t version_ = 0;
    std::chrono::steady_clock::time_point built_{};
    std::shared_ptr<const std::string> body_;
  };
  ApiContext ctx_;
  mutable ComposedCache markets_cache_;
  mutable ComposedCache dashboard_cache_;
  std::function<std::optional<std::string>()> history_source_;
};

}  // namespace bb
