// The guide's REST API (and /health, /metrics), composed from what plugins published.
// Every handler reads the snapshot store and answers at once; none ever waits on the node.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

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

class DashboardApi {
 public:
  explicit DashboardApi(ApiContext context);

  /// Registers every route on `router`.
  void install(Router& router);

  // The bodies, also used by the WebSocket streams.
  std::string health() const;
  HttpResponse section(const std::string& name) const;
  std::string marketsHealth() const;
  /// Nullopt when `may_block` is false and the embedded receipts page is not in memory.
  std::optional<std::string> dashboard(bool may_block = true) const;

  /// Whether answering `req` may wait on a plugin process (isolation: process answers its routes
  /// over IPC, with a deadline): the HTTP server then answers it off its event loops
  /// (ServerOptions::offload). /theblock/dashboard embeds /theblock/receipts.
  bool mayBlock(const HttpRequest& req) const;

  /// Per plugin, the age of its newest published data and whether all of it is expired
  /// (Section::isExpired): what /metrics says of it (Metrics::setFreshnessSource).
  std::vector<PluginFreshness> freshness() const;

  /// overall_status from the four market statuses (exposed for tests).
  static std::string overallStatus(const std::vector<std::string>& statuses);

 private:
  HttpResponse pluginSection(const HttpRequest& req) const;
  std::string composeMarketsHealth(std::chrono::steady_clock::time_point now) const;

  static constexpr std::chrono::milliseconds kComposedMaxAge{100};
  ApiContext ctx_;
  struct ComposedCache {
    std::mutex mutex;
    uint64_t version = 0;
    std::chrono::steady_clock::time_point built{};
    std::string body;
  };
  mutable ComposedCache markets_cache_;
};

}  // namespace bb
