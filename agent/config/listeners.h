// Which listener serves which surface. The guide's own troubleshooting moves the API to 5001,
// the WebSocket port's default: surfaces given the same port are served by one listener
// (the main port already serves the streams), and only what cannot share a listener (two hosts,
// two certificates, two sets of credentials for data) is a conflict, named by --check-config and
// refused at start.
#pragma once

#include <string>
#include <vector>

#include "config/config.h"

namespace bb {

enum class Surface { kHttp, kWs, kFeatureWs, kWeb, kMetrics };

/// "http", "ws", "feature-ws", "web", "metrics": the names of the ready line and the logs.
const char* surfaceName(Surface s);
/// What serves it, for people: "the REST API", "the WebSocket stream", ...
const char* surfaceTitle(Surface s);
/// How to move it: "BLOCK_BUSTER_HTTP_PORT or http.port".
const char* surfacePortHint(Surface s);

/// One listening socket and the surfaces it serves; `surfaces[0]` decides its host, TLS and
/// credentials (order: http, ws, feature-ws, web, metrics).
struct ListenerGroup {
  std::string host;
  int port = 0;
  std::vector<Surface> surfaces;
  bool has(Surface s) const;
  Surface primary() const { return surfaces.front(); }
};

struct ListenerPlan {
  std::vector<ListenerGroup> groups;
  /// One line per shared port, for the start-up log and --check-config.
  std::vector<std::string> notes;
  /// Surfaces that share a port but cannot share a listener, each naming the keys to change.
  std::vector<std::string> conflicts;
  /// The group serving `s`, or nullptr when `s` is off (web.port -1, no http.metrics_port).
  const ListenerGroup* groupOf(Surface s) const;
};

/// Port 0 (any free port) never shares. Reentrant.
ListenerPlan planListeners(const Config& config);

}  // namespace bb
