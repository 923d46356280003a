#include "config/listeners.h"

#include <algorithm>

namespace bb {
namespace {

struct SurfaceText {
  const char* name;
  const char* title;
  const char* hint;
};

const SurfaceText& text(Surface s) {
  static const SurfaceText texts[] = {
      {"http", "the REST API and /metrics", "BLOCK_BUSTER_HTTP_PORT or http.port"},
      {"ws", "the WebSocket stream", "BLOCK_BUSTER_WS_PORT or ws.port"},
      {"feature-ws", "the feature stream", "BLOCK_BUSTER_FEATURE_WS_PORT or ws.feature_port"},
      {"web", "the web dashboard", "BLOCK_BUSTER_WEB_PORT or web.port"},
      {"metrics", "/metrics alone", "http.metrics_port"},
  };
  return texts[static_cast<int>(s)];
}

struct Wanted {
  Surface surface;
  const Listener* listener;  ///< host and TLS
  int port;
  const AuthSurface* auth;  ///< null: takes the listener's (the page holds no data; /metrics
                            ///< keeps its own credentials on every listener)
};

bool sameAuth(const AuthSurface& a, const AuthSurface& b) {
  if (a.bearer_sha256 != b.bearer_sha256 || a.basic.size() != b.basic.size()) return false;
  for (size_t i = 0; i < a.basic.size(); ++i)
    if (a.basic[i].user != b.basic[i].user ||
        a.basic[i].password_sha256 != b.basic[i].password_sha256)
      return false;
  return true;
}

std::string names(const std::vector<Surface>& surfaces) {
  std::string out;
  for (size_t i = 0; i < surfaces.size(); ++i) {
    if (i > 0) out += i + 1 == surfaces.size() ? " and " : ", ";
    out += surfaceTitle(surfaces[i]);
  }
  return out;
}

}  // namespace

const char* surfaceName(Surface s) { return text(s).name; }
const char* surfaceTitle(Surface s) { return text(s).title; }
const char* surfacePortHint(Surface s) { return text(s).hint; }

bool ListenerGroup::has(Surface s) const {
  return std::find(surfaces.begin(), surfaces.end(), s) != surfaces.end();
}

const ListenerGroup* ListenerPlan::groupOf(Surface s) const {
  for (const auto& g : groups)
    if (g.has(s)) return &g;
  return nullptr;
}

ListenerPlan planListeners(const Config& config) {
  Listener metrics{config.http.host, config.metrics_port};
  std::vector<Wanted> wanted{
      {Surface::kHttp, &config.http, config.http.port, &config.auth.api},
      {Surface::kWs, &config.ws, config.ws.port, &config.auth.ws},
      {Surface::kFeatureWs, &config.ws, config.feature_ws.port, &config.auth.ws},
      {Surface::kWeb, &config.web, config.web.port, nullptr},
      {Surface::kMetrics, &metrics, config.metrics_port, nullptr},
  };
  ListenerPlan plan;
  std::vector<std::vector<const Wanted*>> members;
  for (const auto& w : wanted) {
    if (w.port < 0) continue;  // off
    const std::string& host =
        w.surface == Surface::kFeatureWs ? config.feature_ws.host : w.listener->host;
    bool joined = false;
    for (size_t g = 0; w.port != 0 && g < plan.groups.size() && !joined; ++g) {
      if (plan.groups[g].port != w.port) continue;
      joined = true;
      plan.groups[g].surfaces.push_back(w.surface);
      members[g].push_back(&w);
      const Wanted& first = *members[g].front();
      const std::string move =
          std::string("; give one of them another port (") + surfacePortHint(w.surface) + ")";
      if (host != plan.groups[g].host)
        plan.conflicts.push_back(std::string(surfaceTitle(first.surface)) + " (" +
                                 plan.groups[g].host + ") and " + surfaceTitle(w.surface) + " (" +
                                 host + ") share port " + std::to_string(w.port) +
                                 " but not the host, so one listener cannot serve both" + move);
      // /metrics takes the TLS of the listener it is on; every other surface must agree.
      if (w.surface != Surface::kMetrics &&
          w.listener->tls_cert_file != first.listener->tls_cert_file)
        plan.conflicts.push_back(std::string(surfaceTitle(first.surface)) + " and " +
                                 surfaceTitle(w.surface) + " share port " + std::to_string(w.port) +
                                 " with different TLS settings (http.tls, ws.tls, web.tls)" + move);
      for (const Wanted* other : members[g])
        if (other != &w && w.auth && other->auth && !sameAuth(*w.auth, *other->auth)) {
          plan.conflicts.push_back(std::string(surfaceTitle(other->surface)) + " and " +
                                   surfaceTitle(w.surface) + " share port " +
                                   std::to_string(w.port) +
                                   " with different credentials (auth.api, auth.ws)" + move);
          break;
        }
    }
    if (!joined) {
      plan.groups.push_back(ListenerGroup{host, w.port, {w.surface}});
      members.push_back({&w});
    }
  }
  for (const auto& g : plan.groups) {
    if (g.surfaces.size() < 2) continue;
    std::string note =
        "port " + std::to_string(g.port) + " serves " + names(g.surfaces) + " from one listener";
    // A listener that also answers plain requests serves its streams on their paths only.
    const bool plain = g.has(Surface::kHttp) || g.has(Surface::kWeb) || g.has(Surface::kMetrics);
    if (g.has(Surface::kWs) && plain) note += "; the WebSocket stream is on /theblock/ws there";
    if (g.has(Surface::kFeatureWs) && (plain || g.has(Surface::kWs)))
      note += "; the feature stream is on /theblock/ws/features there";
    plan.notes.push_back(note);
  }
  return plan;
}

}  // namespace bb
