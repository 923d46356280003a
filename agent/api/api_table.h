// The guide's API in one table: each row an endpoint of the REST API, the dashboard stream that
// pushes the same body (if any), the sections it is built from and the composer that builds it.
// The REST routes (DashboardApi::install), the stream hub (which streams a published section
// changes, and their bodies: DashboardApi::streamBody), the stream names and indices of the
// WebSocket protocol (ws/protocol.h), /theblock/dashboard and the history's sampler all read
// it: no other file of the agent names a plugin or a section.
//
// Header-only and constexpr, so that the WebSocket protocol derives its stream indices at
// compile time.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace bb::api {

/// How a row's body is built. Each is a method of DashboardApi (api/dashboard_api.h) except
/// kHistory, the history service's (history/history_service.h).
enum class Composer {
  kSection,        ///< the row's one section as the plugin published it (503 until it has data)
  kMarketsHealth,  ///< the market sections composed as /theblock/markets/health
  kHealth,         ///< the agent, the node and every plugin
  kPluginRoute,    ///< the route the plugin serves at the row's path (with its own query)
  kHistory,        ///< the figures' history (its own route and query parameters)
  kDashboard,      ///< every other streamed row's REST body, but the history, in one
  kMetrics,        ///< Prometheus text
  kPluginList,     ///< the plugins found and the sections each published
};

struct Endpoint {
  const char* path;    ///< the REST path
  const char* stream;  ///< the dashboard stream with the same body; nullptr = none
  /// The sections whose publish may change the body: "plugin.section", "plugin.*" (any section
  /// of the plugin), "*" (any section a plugin publishes). "agent.*" sections are the agent's
  /// own (the history's new row) and match only where they are named.
  std::array<const char*, 4> sections;
  Composer composer;
  /// The query a stream's (and /theblock/dashboard's) body is built with, for plugin routes.
  const char* stream_query = "";
  /// Time alone changes the body (data expires): the hub rebuilds it every health interval.
  bool timed = false;
  /// A client receives the stream only once it subscribes to it (it is large).
  bool opt_in = false;
  /// Answered off the HTTP event loops (ServerOptions::offload): rendering it may take long
  /// (/metrics with thousands of series, a long window of history).
  bool offload = false;
};

/// The rows. Streams are numbered in this order (the welcome message lists them so).
inline constexpr Endpoint kEndpoints[] = {
    {"/theblock/network/metrics", "network_metrics", {"network.metrics"}, Composer::kSection},
    {"/theblock/markets/health",
     "markets_health",
     {"compute.market", "storage.market", "energy.market", "ads.market"},
     Composer::kMarketsHealth,
     "",
     true},
    {"/theblock/peers/list", "peers", {"network.peers"}, Composer::kSection},
    // The receipts page is served by the receipts plugin from its store, which changes when the
    // plugin publishes any of its sections.
    {"/theblock/receipts", "receipts", {"receipts.*"}, Composer::kPluginRoute, "limit=20"},
    {"/theblock/operations", "operations", {"receipts.operations"}, Composer::kSection},
    {"/health", "health", {"*"}, Composer::kHealth, "", true},
    {"/theblock/history", "history", {"agent.history"}, Composer::kHistory, "", false, true, true},
    {"/theblock/dashboard", nullptr, {}, Composer::kDashboard},
    {"/metrics", nullptr, {}, Composer::kMetrics, "", false, false, true},
    {"/plugins", nullptr, {}, Composer::kPluginList},
};

/// The section /health reads the receipts store's state from (its "simple_db").
inline constexpr const char* kStoreSection = "receipts.store";

constexpr std::string_view name(const char* s) { return s ? std::string_view(s) : ""; }

/// The number of streams.
constexpr size_t streamCount() {
  size_t n = 0;
  for (const auto& e : kEndpoints) n += e.stream != nullptr;
  return n;
}

/// The stream names, by index.
constexpr std::array<const char*, streamCount()> streamNames() {
  std::array<const char*, streamCount()> out{};
  size_t i = 0;
  for (const auto& e : kEndpoints)
    if (e.stream) out[i++] = e.stream;
  return out;
}

/// The row of a stream by index, or nullptr.
constexpr const Endpoint* streamRow(int stream) {
  int i = 0;
  for (const auto& e : kEndpoints)
    if (e.stream && i++ == stream) return &e;
  return nullptr;
}

/// The index of a stream by name, or -1.
constexpr int streamIndexOf(std::string_view stream) {
  int i = 0;
  for (const auto& e : kEndpoints) {
    if (!e.stream) continue;
    if (name(e.stream) == stream) return i;
    ++i;
  }
  return -1;
}

/// The row of a path, or nullptr.
constexpr const Endpoint* byPath(std::string_view path) {
  for (const auto& e : kEndpoints)
    if (name(e.path) == path) return &e;
  return nullptr;
}

/// The first row built by `c`, or nullptr.
constexpr const Endpoint* byComposer(Composer c) {
  for (const auto& e : kEndpoints)
    if (e.composer == c) return &e;
  return nullptr;
}

/// The plugin of a section name: what comes before the first '.'.
constexpr std::string_view pluginOf(std::string_view section) {
  return section.substr(0, section.find('.'));
}

/// The plugin a row's body comes from ("" when it is not one plugin's).
constexpr std::string_view pluginOf(const Endpoint& e) {
  if (!e.sections[0] || name(e.sections[0]) == "*") return "";
  return pluginOf(name(e.sections[0]));
}

/// Whether a publish of `section` may change row `e`'s body.
constexpr bool feeds(const Endpoint& e, std::string_view section) {
  const bool agents = pluginOf(section) == "agent";
  for (const char* s : e.sections) {
    if (!s) break;
    const std::string_view want = s;
    if (want == section) return true;
    if (agents) continue;
    if (want == "*") return true;
    if (want.size() > 2 && want.substr(want.size() - 2) == ".*" &&
        section.substr(0, want.size() - 1) == want.substr(0, want.size() - 1))
      return true;
  }
  return false;
}

/// Which streams a publish of `section` may change: bit i = stream i.
constexpr uint32_t streamsOf(std::string_view section) {
  uint32_t mask = 0;
  int i = 0;
  for (const auto& e : kEndpoints) {
    if (!e.stream) continue;
    if (feeds(e, section)) mask |= 1u << i;
    ++i;
  }
  return mask;
}

/// The streams a client receives until it subscribes explicitly: all but the opt-in ones.
constexpr uint32_t defaultStreams() {
  uint32_t mask = 0;
  int i = 0;
  for (const auto& e : kEndpoints) {
    if (!e.stream) continue;
    if (!e.opt_in) mask |= 1u << i;
    ++i;
  }
  return mask;
}

/// The section the history's new rows are announced as (sectionChanged): its stream only.
inline constexpr const char* kHistorySection = byComposer(Composer::kHistory)->sections[0];

/// What builds the streamed rows' bodies (DashboardApi): the stream hub reads it.
class StreamBodies {
 public:
  virtual ~StreamBodies() = default;
  /// The body of streamed row `e` as JSON text, or nullopt when there is none yet (no data, or
  /// an error body: a stream carries data only).
  virtual std::optional<std::string> streamBody(const Endpoint& e) const = 0;
};

static_assert(streamCount() <= 32, "stream masks are 32 bits");

}  // namespace bb::api
