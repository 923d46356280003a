#include "app/agent.h"

#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "api/dashboard_api.h"
#include "api/node_monitor.h"
#include "config/exposure.h"
#include "history/history_service.h"
#include "host/config_reload.h"
#include "host/plugin_manager.h"
#include "host/plugin_routes.h"
#include "http/router.h"
#include "metrics/metrics.h"
#include "rpc/rpc_client.h"
#include "serving.h"
#include "snapshot/feature_store.h"
#include "snapshot/history_marks.h"
#include "snapshot/snapshot_store.h"
#include "util/log.h"
#include "ws/stream_hub.h"
#include "ws/ws_server.h"

namespace bb {

Config loadAgentConfig(const CommandLine& args) {
  LoadOptions lo;
  lo.explicit_path = args.config;
  lo.env = processEnvironment();
  if (const char* home = std::getenv("HOME")) lo.home = home;
  Config config = loadConfig(lo);
  if (args.log_level) config.log_level = *args.log_level;
  return config;
}

void configureLogging(const Config& config) {
  LogLevel level = LogLevel::Info;
  parseLogLevel(config.log_level, level);
  setLogLevel(level);
  LogFormat format = LogFormat::Text;
  parseLogFormat(config.log_format, format);
  setLogFormat(format);
  addSecret(config.rpc.auth_token);
  if (const char* t = std::getenv("METRICS_AUTH_TOKEN")) addSecret(t);
}

std::string exeDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

std::string pluginRunnerPath() {
  return std::filesystem::weakly_canonical(exeDir() + "/../" BB_LIBEXECDIR
                                                      "/blockbuster/bb-plugin-runner")
      .string();
}

std::string pluginDirs(const CommandLine& args, const Config& config) {
  std::string dir = args.plugin_dir              ? *args.plugin_dir
                    : !config.plugin_dir.empty() ? config.plugin_dir
                                                 : exeDir() + "/../lib/blockbuster/plugins";
  dir = std::filesystem::weakly_canonical(dir).string();
  // One's own plugins beside the built-in ones: every folder is read, in this order.
  for (const auto& extra : config.plugin_dirs)
    dir += ":" + std::filesystem::weakly_canonical(extra).string();
  return dir;
}

namespace {

std::string stateDir(const Config& config) {
  if (!config.state_dir.empty()) return config.state_dir;
  if (const char* sd = std::getenv("STATE_DIRECTORY")) return sd;  // systemd
  if (const char* home = std::getenv("HOME")) return std::string(home) + "/.block-buster/state";
  return "/var/lib/block-buster";
}

// The CPU time the agent has used, all threads.
double processCpuSeconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto seconds = [](const timeval& tv) {
    return static_cast<double>(tv.tv_sec) + tv.tv_usec / 1e6;
  };
  return seconds(ru.ru_utime) + seconds(ru.ru_stime);
}

}  // namespace

// Declared in the order they are built: destroyed in the reverse order, each part before what
// it uses.
struct Agent::Parts {
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<RpcClient> rpc;
  std::unique_ptr<NodeMonitor> node;
  SnapshotStore store;
  FeatureStore features;
  PluginRoutes routes;
  HistoryMarks history_marks;  // plugin metrics marked for history
  std::unique_ptr<PluginManager> plugins;
  std::unique_ptr<Router> router;
  std::unique_ptr<DashboardApi> api;
  std::unique_ptr<HistoryService> history;
  std::unique_ptr<ws::WsServer> ws_server;
  std::unique_ptr<ws::StreamHub> hub;
  std::unique_ptr<Serving> serving;
};

Agent::Agent(CommandLine args, Config config)
    : args_(std::move(args)),
      config_(std::move(config)),
      plugin_dirs_(pluginDirs(args_, config_)) {}

Agent::~Agent() = default;  // after a failed start: each part's own destructor

void Agent::build() {
  // Signals are taken synchronously by run() (sigwait); block them before the first thread
  // starts, so that every thread inherits the mask, and not before: until then SIGINT and
  // SIGTERM end the process as usual (reading the config or loading plugins can be interrupted).
  sigemptyset(&signals_);
  sigaddset(&signals_, SIGINT);
  sigaddset(&signals_, SIGTERM);
  sigaddset(&signals_, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals_, nullptr);

  auto p = std::make_unique<Parts>();
  const std::string state_dir = stateDir(config_);
  p->metrics = std::make_unique<Metrics>(BB_VERSION);
  p->rpc = std::make_unique<RpcClient>(config_.rpc);
  p->node = std::make_unique<NodeMonitor>(p->rpc.get(), judgementWindow(config_));
  Metrics& metrics = *p->metrics;
  NodeMonitor& node = *p->node;
  p->rpc->setObserver([&metrics, &node](const std::string& method, const RpcOutcome& o) {
    // A call answered by an identical one's request (rpc.share_ms) sent nothing: "shared".
    metrics.rpcCall(method, o.shared ? "shared" : toString(o.status), o.seconds);
    node.record(method, o);
    if (o.status != RpcStatus::Shutdown) metrics.nodeUp(node.state().reachable);
  });
  HostServices services{
      p->rpc.get(),       &p->store,         p->metrics.get(),
      &p->features,       &p->routes,        state_dir,
      pluginRunnerPath(), &p->history_marks, [&node] { return !node.state().reachable; }};
  p->plugins = std::make_unique<PluginManager>(services);
  // The first line an operator reads: what runs, with which file and which overrides. Logged
  // once the plugins' options passed, so that a bad config stays a one-line error.
  p->plugins->load(config_, plugin_dirs_, [this] {
    std::string overrides;
    for (const auto& [variable, key] : config_.env_overrides)
      overrides += (overrides.empty() ? "" : ", ") + variable + " -> " + key;
    logInfo("agent", "blockbuster-agent " BB_VERSION " starting: config " +
                         (config_.source == "built-in defaults" ? config_.source
                                                                : "file " + config_.source) +
                         ", environment overrides: " + (overrides.empty() ? "none" : overrides) +
                         ", plugins from " + plugin_dirs_ + ", log level " + config_.log_level);
  });

  p->router = std::make_unique<Router>(config_.cors_origins);
  p->api = std::make_unique<DashboardApi>(ApiContext{BB_VERSION, config_.rpc.url, &p->store,
                                                     &p->features, p->metrics.get(),
                                                     p->plugins.get(), &p->routes, p->node.get()});
  p->api->install(*p->router);
  DashboardApi& api = *p->api;
  metrics.setFreshnessSource([&api] { return api.freshness(); });
  // History: read from the state directory now, sampled once per collection interval.
  p->history = std::make_unique<HistoryService>(historyOptions(config_, state_dir),
                                                dashboardSampler(api, &p->history_marks));
  p->history->load();
  p->history->install(*p->router, api);

  // WebSocket push: one event loop for every client, fed by the stream hub.
  ws::ServerLimits ws_limits;
  ws_limits.allowed_origins = config_.cors_origins;
  ws_limits.compression = config_.ws_compression;
  p->ws_server = std::make_unique<ws::WsServer>(ws_limits, p->metrics.get());
  // Which streams a publish changes and how each is built: the API table, through the api.
  p->hub = std::make_unique<ws::StreamHub>(*p->ws_server, api, &p->features);
  ws::StreamHub& hub = *p->hub;
  p->history->setOnRow([&hub] { hub.sectionChanged(ws::StreamHub::kHistorySection); });
  hub.attach(p->store);
  p->serving = std::make_unique<Serving>(
      ServingContext{&config_, p->router.get(), &p->routes, p->metrics.get(), p->api.get(),
                     p->ws_server.get(), exeDir() + "/../share/blockbuster/web", BB_VERSION});
  // The page holds no data, so only the surfaces that serve data need a warning.
  for (const auto& w : exposureWarnings(config_)) logWarn("security", w);
  parts_ = std::move(p);
}

void Agent::start() {
  Parts& p = *parts_;
  // What building freed (the config's YAML tree, the plugins' descriptions, the history file's
  // buffer) goes back to the kernel before the threads start and add their own.
  malloc_trim(0);
  p.ws_server->start();
  p.hub->start();
  p.history->start();
  p.plugins->startAll();
  p.serving->start();
  std::printf("%s\n", p.serving->readyLine().c_str());
  std::fflush(stdout);
  logInfo("agent", "serving the API on " + config_.http.host + ":" +
                       std::to_string(p.serving->port(Surface::kHttp)) + ", polling " +
                       redact(config_.rpc.url));
}

void Agent::reload() {
  // The same sources as at start: --config or the default lookup, then the environment.
  ReloadSources sources;
  sources.explicit_path = args_.config;
  if (const char* home = std::getenv("HOME")) sources.home = home;
  sources.log_level = args_.log_level;
  sources.plugin_dir_from_args = args_.plugin_dir.has_value();
  reloadConfig(sources, config_, *parts_->plugins);
}

void Agent::run() {
  // Under load, at most every 30 s: the trim holds each arena's lock while it walks its free
  // lists and returns their pages, and the HTTP loops allocate under the same locks: in the
  // mix (bench/mixed) a loop waited 36 ms for one trim (docs/performance.md, "Session 8").
  // Busy: more than a tenth of a core over the last tick (the idle agent uses about 1 %).
  constexpr double kBusyCpuShare = 0.1;
  constexpr auto kBusyTrimInterval = std::chrono::seconds(30);
  double cpu_before = processCpuSeconds();
  auto tick = std::chrono::steady_clock::now();
  auto trimmed = tick;
  for (;;) {
    // Every 2 s without a signal, hand back to the kernel what a burst of requests or a round
    // of collections freed: with the tcache off (app/allocator.h) freed chunks return to the
    // arenas, where this can release their pages. It walks the free lists, about a millisecond
    // when idle, on this thread, which only waits for signals (docs/reliability.md, "Soak").
    // Every 10 s, the idle agent held 1.2 MiB more for 8 s of each 10 (docs/performance.md,
    // "Idle memory").
    const timespec housekeeping{2, 0};
    int sig = sigtimedwait(&signals_, nullptr, &housekeeping);
    if (sig < 0) {
      const auto now = std::chrono::steady_clock::now();
      const double cpu = processCpuSeconds();
      const bool busy =
          cpu - cpu_before > kBusyCpuShare * std::chrono::duration<double>(now - tick).count();
      cpu_before = cpu;
      tick = now;
      if (!busy || now - trimmed >= kBusyTrimInterval) {
        malloc_trim(0);
        trimmed = now;
      }
      continue;
    }
    if (sig == SIGHUP) {
      reload();
      continue;
    }
    logInfo("agent", std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
    return;
  }
}

void Agent::stop() {
  if (!parts_) return;
  Parts& p = *parts_;
  p.rpc->shutdown();  // calls in flight return at once, so plugins finish their collect quickly
  p.plugins->stopAll();
  p.history->stop();  // writes the file
  p.hub->stop();
  p.serving->stop();
  p.ws_server->stop();
  parts_.reset();
  logInfo("agent", "stopped");
}

}  // namespace bb
