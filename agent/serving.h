// The agent's listeners: one per distinct port of the plan (config/listeners.h), each serving
// the surfaces given that port (the REST API, the streams, the page, /metrics alone).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "config/listeners.h"

namespace bb {

class Router;
class PluginRoutes;
class Metrics;
class DashboardApi;
class HttpServer;
class StaticFiles;
namespace ws {
class WsServer;
class WsEndpoint;
}  // namespace ws

struct ServingContext {
  const Config* config = nullptr;
  Router* router = nullptr;
  PluginRoutes* routes = nullptr;
  Metrics* metrics = nullptr;
  DashboardApi* api = nullptr;
  ws::WsServer* ws_server = nullptr;
  std::string default_web_root;  ///< used when web.root is empty
  std::string version;
};

class Serving {
 public:
  /// Binds every listener now (a busy port fails here, naming the surface and the variable or
  /// key that moves it); refuses a plan with conflicts (ConfigError). Serves after start().
  explicit Serving(const ServingContext& context);
  ~Serving();
  Serving(const Serving&) = delete;
  Serving& operator=(const Serving&) = delete;

  void start();
  void stop();
  /// The bound port of `s`, or -1 when it is off (or the page could not be loaded).
  int port(Surface s) const;
  /// "blockbuster-agent ready http=HOST:PORT web=... ws=... feature=..." (see --help).
  std::string readyLine() const;
  const ListenerPlan& plan() const { return plan_; }

 private:
  struct Bound;
  ServingContext ctx_;
  ListenerPlan plan_;
  std::vector<std::unique_ptr<Bound>> bound_;
  std::unique_ptr<StaticFiles> web_files_;
};

}  // namespace bb
