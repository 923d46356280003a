#include "serving.h"

#include <blockbuster/json.h>

#include <optional>
#include <stdexcept>
#include <utility>

#include "api/dashboard_api.h"
#include "host/plugin_routes.h"
#include "http/router.h"
#include "http/server.h"
#include "http/static_files.h"
#include "metrics/metrics.h"
#include "util/log.h"
#include "ws/ws_server.h"

namespace bb {
namespace {

Authenticator authenticator(const AuthSurface& surface, const std::string& realm) {
  std::vector<Authenticator::BasicUser> basic;
  for (const auto& u : surface.basic) basic.push_back({u.user, u.password_sha256});
  return Authenticator(surface.bearer_sha256, std::move(basic), "blockbuster " + realm);
}

// The TLS settings of the listener a surface decides (metrics alone: plain).
const Listener* tlsOf(const Config& c, Surface s) {
  switch (s) {
    case Surface::kHttp:
      return &c.http;
    case Surface::kWs:
    case Surface::kFeatureWs:
      return &c.ws;
    case Surface::kWeb:
      return &c.web;
    case Surface::kMetrics:
      return nullptr;
  }
  return nullptr;
}

std::string portHints(const ListenerGroup& g) {
  std::string out;
  for (Surface s : g.surfaces) out += std::string(out.empty() ? "" : "; ") + surfacePortHint(s);
  return out;
}

}  // namespace

struct Serving::Bound {
  const ListenerGroup* group = nullptr;
  std::unique_ptr<ws::WsEndpoint> endpoint;
  std::unique_ptr<HttpServer> server;
  int port = 0;
};

Serving::Serving(const ServingContext& context)
    : ctx_(context), plan_(planListeners(*ctx_.config)) {
  const Config& config = *ctx_.config;
  if (!plan_.conflicts.empty()) throw ConfigError(config.source + ": " + plan_.conflicts.front());
  for (const auto& note : plan_.notes) logInfo("agent", note);

  for (const auto& g : plan_.groups) {
    auto b = std::make_unique<Bound>();
    b->group = &g;
    const Surface primary = g.primary();
    const bool has_http = g.has(Surface::kHttp), has_ws = g.has(Surface::kWs),
               has_feature = g.has(Surface::kFeatureWs), has_web = g.has(Surface::kWeb),
               has_metrics = g.has(Surface::kMetrics);
    // A listener that also answers plain requests serves its streams on their paths only; a
    // WebSocket port serves its stream on any path (the guide gives the port and no path).
    const bool plain = has_http || has_web || has_metrics;
    std::vector<std::pair<std::string, ws::Channel>> ws_routes;
    std::optional<ws::Channel> any_path;
    if (has_http || has_ws) ws_routes.push_back({"/theblock/ws", ws::Channel::kDashboard});
    if (has_http || has_ws || has_feature)
      ws_routes.push_back({"/theblock/ws/features", ws::Channel::kFeatures});
    if (!plain && has_ws)
      any_path = ws::Channel::kDashboard;
    else if (!plain && has_feature)
      any_path = ws::Channel::kFeatures;
    const Listener* tls = tlsOf(config, primary);
    const std::string cert = tls ? tls->tls_cert_file : "";
    const std::string key = tls ? tls->tls_key_file : "";
    const std::string not_found =
        std::string("this port serves ") + surfaceTitle(primary) +
        (has_ws        ? " on any path"
         : has_feature ? " on any path"
                       : "") +
        (has_feature && has_ws ? " (the feature stream on /theblock/ws/features)" : "") +
        "; the REST API is on the port of BLOCK_BUSTER_HTTP_PORT (http.port)";
    try {
      ServerOptions o{surfaceName(primary), g.host, g.port};
      o.tls_cert_file = cert;
      o.tls_key_file = key;
      // The WebSocket ports' certificate is ws.tls, named first when it cannot be loaded.
      if (tls == &config.ws) o.tls_config_key = "ws.tls";
      if (primary == Surface::kWs || primary == Surface::kFeatureWs) {
        // They only do handshakes, TLS included (and serve the page when it shares the
        // port): the WebSocket loop serves the clients (docs/websocket.md, "TLS").
        o.keep_alive_timeout_seconds = 5;
        o.event_threads = 1;
        o.auth = authenticator(config.auth.ws, "websocket");
      } else if (primary == Surface::kMetrics) {
        o.event_threads = 1;  // a scrape every few seconds
        o.auth = authenticator(config.auth.metrics, "metrics");
      } else if (primary == Surface::kHttp) {
        o.auth = authenticator(config.auth.api, "api");
      }
      if (has_metrics || has_http) {
        if (primary != Surface::kMetrics)
          o.path_auth.emplace_back("/metrics", authenticator(config.auth.metrics, "metrics"));
        o.decorate_refusal = [this](const HttpRequest& r, HttpResponse& resp) {
          ctx_.router->addCors(r, resp);
        };
      }
      if (has_http) {
        // Off the event loops: routes of plugins with isolation: process (they wait on IPC),
        // and the exposition, which takes milliseconds with thousands of series
        // (docs/performance.md), so that a scrape never holds up the dashboard's requests;
        // and the history, whose whole 24 h window is megabytes of JSON to render.
        o.offload = [this](const HttpRequest& r) {
          return r.path == "/metrics" || r.path == "/theblock/history" || ctx_.api->mayBlock(r);
        };
      } else if (has_metrics) {
        o.offload = [](const HttpRequest& r) { return r.path == "/metrics"; };
      }
      const ListenerGroup* group = &g;
      auto handler = [this, group, not_found](HttpRequest&& r) -> HttpResponse {
        if (group->has(Surface::kHttp)) {
          if (!group->has(Surface::kWeb) || !web_files_) return ctx_.router->handle(std::move(r));
          HttpRequest copy = r;
          HttpResponse resp = ctx_.router->handle(std::move(r));
          return resp.status == 404 ? web_files_->serve(copy) : resp;
        }
        if (group->has(Surface::kMetrics) && r.path == "/metrics")
          return ctx_.router->handle(std::move(r));
        if (group->has(Surface::kWeb) && web_files_) return web_files_->serve(r);
        if (group->primary() == Surface::kMetrics)
          return HttpResponse::error(404, "not_found",
                                     "this port serves /metrics only; the API is on port " +
                                         std::to_string(port(Surface::kHttp)));
        return HttpResponse::error(404, "not_found", not_found);
      };
      HttpServer::Observer observer;
      if (has_http)
        observer = [this](const HttpRequest& r, const HttpResponse& resp, double seconds) {
          // Plugin routes are labelled by their registered path; anything else unknown is
          // one label, so a scanner probing random paths cannot create series.
          std::string route = ctx_.router->routeLabel(r.path);
          if (route == "fallback")
            route = ctx_.routes->has(r.path)            ? r.path
                    : r.path.rfind("/plugins/", 0) == 0 ? "/plugins/*"
                                                        : "unmatched";
          ctx_.metrics->httpRequest(route, resp.status, seconds);
        };
      b->server = std::make_unique<HttpServer>(o, handler, observer);
      if (!ws_routes.empty() || any_path) {
        b->endpoint = std::make_unique<ws::WsEndpoint>(*ctx_.ws_server, ws_routes, any_path);
        b->server->setUpgradeHandler(b->endpoint.get());
      }
      b->port = b->server->port();
    } catch (const std::runtime_error& e) {
      if (dynamic_cast<const ConfigError*>(&e)) throw;
      std::string what = e.what();
      throw std::runtime_error(what + " (port for " +
                               [&] {
                                 std::string t;
                                 for (Surface s : g.surfaces)
                                   t += std::string(t.empty() ? "" : ", ") + surfaceTitle(s);
                                 return t;
                               }() +
                               "; move it with " + portHints(g) + ")");
    }
    bound_.push_back(std::move(b));
  }

  if (config.web.port >= 0) {
    std::string root = config.web_root.empty() ? ctx_.default_web_root : config.web_root;
    const bool ws_tls = !config.ws.tls_cert_file.empty();
    std::string runtime_config =
        "{\"api_port\":" + std::to_string(port(Surface::kHttp)) +
        ",\"ws_port\":" + std::to_string(port(Surface::kWs)) +
        ",\"feature_ws_port\":" + std::to_string(port(Surface::kFeatureWs)) +
        ",\"ws_enabled\":true,\"ws_tls\":" + (ws_tls ? "true" : "false") +
        ",\"refresh_ms\":2000,\"history_window\":" + std::to_string(config.history_window_seconds) +
        ",\"last_block_warn_seconds\":" + std::to_string(config.web_page.last_block_warn_seconds) +
        ",\"last_block_critical_seconds\":" +
        std::to_string(config.web_page.last_block_critical_seconds) +
        ",\"grafana_url\":" + blockbuster::Json(config.web_page.grafana_url).dump() +
        ",\"version\":\"" + ctx_.version + "\"}";
    try {
      web_files_ = std::make_unique<StaticFiles>(root, runtime_config);
    } catch (const std::exception& e) {
      if (!config.web_root.empty()) throw ConfigError(config.source + ": web.root: " + e.what());
      logWarn("web", std::string(e.what()) + "; the web dashboard is not served");
      // A listener of its own for the page: closed before it serves anything.
      for (auto it = bound_.begin(); it != bound_.end(); ++it)
        if ((*it)->group->surfaces.size() == 1 && (*it)->group->has(Surface::kWeb)) {
          bound_.erase(it);
          break;
        }
    }
  }
}

Serving::~Serving() = default;

void Serving::start() {
  for (auto& b : bound_) b->server->start();
}

void Serving::stop() {
  // The main port last, as before: the streams' and the page's listeners first.
  for (auto it = bound_.rbegin(); it != bound_.rend(); ++it) (*it)->server->stop();
}

int Serving::port(Surface s) const {
  if (s == Surface::kWeb && !web_files_) return -1;
  for (const auto& b : bound_)
    if (b->group->has(s)) return b->port;
  return -1;
}

std::string Serving::readyLine() const {
  const Config& c = *ctx_.config;
  std::string ready =
      "blockbuster-agent ready http=" + c.http.host + ":" + std::to_string(port(Surface::kHttp));
  if (port(Surface::kWeb) >= 0)
    ready += " web=" + c.web.host + ":" + std::to_string(port(Surface::kWeb));
  if (port(Surface::kMetrics) >= 0)
    ready += " metrics=" + c.http.host + ":" + std::to_string(port(Surface::kMetrics));
  ready += " ws=" + c.ws.host + ":" + std::to_string(port(Surface::kWs));
  ready += " feature=" + c.feature_ws.host + ":" + std::to_string(port(Surface::kFeatureWs));
  return ready;
}

}  // namespace bb
