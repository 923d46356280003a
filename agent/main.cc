// blockbuster-agent: loads the plugins, polls the node through them, serves the dashboard API,
// the Prometheus metrics and the web page.
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "api/dashboard_api.h"
#include "api/node_monitor.h"
#include "config/config.h"
#include "config/exposure.h"
#include "config/listeners.h"
#include "default_config.h"
#include "history/history_service.h"
#include "host/config_reload.h"
#include "host/plugin_manager.h"
#include "host/plugin_options.h"
#include "host/plugin_routes.h"
#include "http/router.h"
#include "http/server.h"
#include "metrics/metrics.h"
#include "rpc/rpc_client.h"
#include "serving.h"
#include "snapshot/feature_store.h"
#include "snapshot/snapshot_store.h"
#include "util/log.h"
#include "ws/stream_hub.h"
#include "ws/ws_server.h"

namespace {

constexpr const char* kUsage = R"(Usage: blockbuster-agent [options]

Observability agent for a node of The Block: polls the node's JSON-RPC API through its plugins
and serves the dashboard REST API, Prometheus metrics and the web dashboard.

Options:
  --config FILE        read this config file (default: ~/.block-buster/config.yaml, then
                       /etc/block-buster/config.yaml, then built-in defaults)
  --plugin-dir DIR     load plugins from DIR (overrides plugin_dir of the config; the folders
                       of plugin_dirs are still read too)
  --check-config       validate the config (and the plugins' options), print the effective
                       config with secrets redacted, and exit (non-zero on error)
  --list-plugins       list the plugins found, with their versions, ABI and config keys
  --print-default-config
                       print a commented config to start from, with every plugin found and
                       its options at their defaults
  --log-level LEVEL    debug, info, warn or error (overrides log_level)
  --version            print the version and exit
  --help               print this help and exit

Environment (overrides the config file):
  THEBLOCK_RPC_URL, THEBLOCK_WS_URL, THEBLOCK_AUTH_TOKEN,
  BLOCK_BUSTER_RPC_TLS_CA_FILE (the CA an https:// node's certificate is verified against),
  BLOCK_BUSTER_HTTP_HOST, BLOCK_BUSTER_HTTP_PORT (default 5000),
  BLOCK_BUSTER_WS_HOST, BLOCK_BUSTER_WS_PORT (default 5001), BLOCK_BUSTER_FEATURE_WS_PORT (5002),
  BLOCK_BUSTER_WEB_HOST, BLOCK_BUSTER_WEB_PORT (default 4173), BLOCK_BUSTER_LOG_LEVEL,
  BLOCK_BUSTER_LOG_FORMAT (text or json: one JSON object per log line),
  METRICS_AUTH_TOKEN (the bearer token /metrics then requires)
  BLOCK_BUSTER_ALLOCATOR_TUNING=off keeps glibc's malloc defaults (docs/configuration.md)

Endpoints (main port): /health /metrics /theblock/network/metrics /theblock/markets/health
  /theblock/receipts /theblock/operations /theblock/peers/list /theblock/dashboard /plugins
  /theblock/history (the figures' history, kept in the state directory; history.window)
WebSocket: the dashboard stream on any path of the WS port and on /theblock/ws of the main
  port; the feature stream on any path of the feature port and on /theblock/ws/features of the
  main port. Surfaces given the same port share one listener (said at start and by
  --check-config, which names the settings that cannot share one).
When ready it prints one line to stdout:
  "blockbuster-agent ready http=HOST:PORT web=HOST:PORT ws=HOST:PORT feature=HOST:PORT"
  (and metrics=HOST:PORT when http.metrics_port is set).
Docs: docs/ in the source tree; the config keys: docs/configuration.md.
)";

struct Args {
  std::optional<std::string> config;
  std::optional<std::string> plugin_dir;
  std::optional<std::string> log_level;
  bool check = false;
  bool list = false;
  bool print_default = false;
};

[[noreturn]] void usageError(const std::string& message) {
  std::fprintf(stderr, "blockbuster-agent: %s\nTry 'blockbuster-agent --help'.\n", message.c_str());
  std::exit(2);
}

Args parseArgs(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> std::string {
      std::string prefix = std::string(name) + "=";
      if (arg.rfind(prefix, 0) == 0) return arg.substr(prefix.size());
      if (i + 1 >= argc) usageError(std::string(name) + " needs a value");
      return argv[++i];
    };
    auto is = [&](const char* name) {
      return arg == name || arg.rfind(std::string(name) + "=", 0) == 0;
    };
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else if (arg == "--version") {
      std::printf("blockbuster-agent %s (plugin ABI %u.%u)\n", BB_VERSION, BB_ABI_VERSION_MAJOR,
                  BB_ABI_VERSION_MINOR);
      std::exit(0);
    } else if (is("--config")) {
      a.config = value("--config");
    } else if (is("--plugin-dir")) {
      a.plugin_dir = value("--plugin-dir");
    } else if (is("--log-level")) {
      a.log_level = value("--log-level");
    } else if (arg == "--check-config") {
      a.check = true;
    } else if (arg == "--list-plugins") {
      a.list = true;
    } else if (arg == "--print-default-config") {
      a.print_default = true;
    } else {
      usageError("unknown option '" + arg + "'");
    }
  }
  return a;
}

std::string exeDir() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return ".";
  buf[n] = '\0';
  return std::filesystem::path(buf).parent_path().string();
}

// bb-plugin-runner, for plugins with isolation: process: where the build tree and the package
// both put it, relative to the agent's own binary (bin/ -> libexec/blockbuster/).
std::string pluginRunnerPath(const std::string& exe_dir) {
  return std::filesystem::weakly_canonical(exe_dir + "/../" BB_LIBEXECDIR
                                                     "/blockbuster/bb-plugin-runner")
      .string();
}

// The commented default config, its plugins section written out from the plugins found: each
// with its declared options at their defaults, so the result loads as it is.
// bb-plugin-runner when installed: descriptors are read through it, never by loading a plugin
// into the agent (a plugin that crashes when loaded is then refused, not fatal).
std::string describer(const std::string& runner) {
  return access(runner.c_str(), X_OK) == 0 ? runner : "";
}

int printDefaultConfig(const std::string& dir, const std::string& runner) {
  std::string text = bb::kDefaultConfig;
  auto cut = text.find("# --- Plugins");
  std::fputs(text.substr(0, cut).c_str(), stdout);
  std::vector<std::string> errors;
  auto libs = bb::loadPluginDir(dir, errors, describer(runner));
  std::printf("# --- Plugins (found in %s) ---\n", dir.c_str());
  std::printf("# Each runs with these settings when its entry is left out.\n");
  std::printf("plugins:%s\n", libs.empty() ? " {}" : "");
  for (const auto& lib : libs) {
    const auto& i = lib->info();
    std::printf(
        "  %s:  # %s %s\n    enabled: true\n    interval_ms: 2000\n    timeout_ms: 0\n"
        "    isolation: inprocess\n    options:%s\n",
        i.name.c_str(), i.description.c_str(), i.version.c_str(),
        i.config_keys.empty() ? " {}" : "");
    for (const auto& k : i.config_keys) {
      if (k.default_json.empty())
        std::printf("      # %s:  # %s, no default. %s\n", k.name.c_str(),
                    bb::configTypeName(k.type), k.help.c_str());
      else
        std::printf("      %s: %s  # %s\n", k.name.c_str(), k.default_json.c_str(), k.help.c_str());
    }
  }
  for (const auto& e : errors) std::printf("# refused: %s\n", e.c_str());
  return 0;
}

int listPlugins(const std::string& dir, const std::string& runner) {
  std::vector<std::string> errors;
  auto libs = bb::loadPluginDir(dir, errors, describer(runner));
  std::printf("Plugins in %s:\n", dir.c_str());
  for (const auto& lib : libs) {
    const auto& i = lib->info();
    std::printf("\n%s %s (ABI %u.%u)\n  %s\n  %s\n", i.name.c_str(), i.version.c_str(), i.abi_major,
                i.abi_minor, i.description.c_str(), i.path.c_str());
    for (const auto& k : i.config_keys)
      std::printf("  options.%s: %s, default %s. %s\n", k.name.c_str(), bb::configTypeName(k.type),
                  k.default_json.empty() ? "none" : k.default_json.c_str(), k.help.c_str());
  }
  for (const auto& e : errors) std::printf("\nrefused: %s\n", e.c_str());
  return errors.empty() ? 0 : 1;
}

}  // namespace

// The allocator settings the agent runs with (docs/reliability.md, "Soak"): no
// per-thread cache of freed chunks (glibc's tcache). With up to 256 HTTP threads, each keeping
// its own cache, RSS follows the high-water mark of every thread and creeps up under steady
// load: the 10-minute soak went 42 -> 53 MiB while heaptrack saw at most 6.3 MiB of live heap.
// Without it: 32 -> 35 MiB over 3 minutes, same throughput and p99. And two arenas: with 256
// HTTP threads that raised p99 from 80 to 550-660 ms (every thread waited on the arena locks),
// but since the REST API is served by two event loops the agent has about 25 threads, and two
// arenas keep the 10-minute soak at +8.3 % instead of +11.7 %, with the REST targets still met
// (docs/reliability.md, "Soak"). glibc reads GLIBC_TUNABLES only when a program starts, so the
// agent sets it and executes itself once.
// BLOCK_BUSTER_ALLOCATOR_TUNING=off keeps glibc's defaults, as does a GLIBC_TUNABLES that
// already names a glibc.malloc setting (the operator's choice wins).
constexpr const char* kMallocTunables = "glibc.malloc.tcache_count=0:glibc.malloc.arena_max=2";

void tuneAllocator(char** argv) {
  const char* mode = std::getenv("BLOCK_BUSTER_ALLOCATOR_TUNING");
  if (mode && (std::strcmp(mode, "off") == 0 || std::strcmp(mode, "applied") == 0)) return;
  const char* current = std::getenv("GLIBC_TUNABLES");
  std::string tunables = current ? current : "";
  if (tunables.find("glibc.malloc.") != std::string::npos) return;
  tunables += (tunables.empty() ? "" : ":") + std::string(kMallocTunables);
  setenv("GLIBC_TUNABLES", tunables.c_str(), 1);
  setenv("BLOCK_BUSTER_ALLOCATOR_TUNING", "applied", 1);
  // Through its own path, not /proc/self/exe: the kernel names a process after the file it
  // executes, and ps, pgrep, ss -p and lsof would show the agent as "exe".
  char self[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
  if (n > 0) {
    self[n] = '\0';
    execv(self, argv);  // fails if the file was replaced or removed since (an upgrade)
  }
  execv("/proc/self/exe", argv);
  // Could not execute itself (no /proc?): run on with glibc's defaults.
  unsetenv("BLOCK_BUSTER_ALLOCATOR_TUNING");
}

int main(int argc, char** argv) {
  tuneAllocator(argv);
  signal(SIGPIPE, SIG_IGN);

  Args args = parseArgs(argc, argv);
  bb::Config config;
  try {
    bb::LoadOptions lo;
    lo.explicit_path = args.config;
    lo.env = bb::processEnvironment();
    if (const char* home = std::getenv("HOME")) lo.home = home;
    config = bb::loadConfig(lo);
  } catch (const bb::ConfigError& e) {
    std::fprintf(stderr, "blockbuster-agent: %s\n", e.what());
    return 2;
  }
  if (args.log_level) {
    bb::LogLevel level;
    if (!bb::parseLogLevel(*args.log_level, level))
      usageError("--log-level must be debug, info, warn or error, got '" + *args.log_level + "'");
    config.log_level = *args.log_level;
  }
  bb::LogLevel level = bb::LogLevel::Info;
  bb::parseLogLevel(config.log_level, level);
  bb::setLogLevel(level);
  bb::LogFormat format = bb::LogFormat::Text;
  bb::parseLogFormat(config.log_format, format);
  bb::setLogFormat(format);
  bb::addSecret(config.rpc.auth_token);
  if (const char* t = std::getenv("METRICS_AUTH_TOKEN")) bb::addSecret(t);

  const std::string base = exeDir();
  std::string plugin_dir = args.plugin_dir              ? *args.plugin_dir
                           : !config.plugin_dir.empty() ? config.plugin_dir
                                                        : base + "/../lib/blockbuster/plugins";
  plugin_dir = std::filesystem::weakly_canonical(plugin_dir).string();
  // One's own plugins beside the built-in ones: every folder is read, in this order.
  for (const auto& dir : config.plugin_dirs)
    plugin_dir += ":" + std::filesystem::weakly_canonical(dir).string();
  if (args.list) return listPlugins(plugin_dir, pluginRunnerPath(base));
  if (args.print_default) return printDefaultConfig(plugin_dir, pluginRunnerPath(base));

  if (args.check) {
    // Validate the plugins' options too: that is where most mistakes in a config are.
    std::vector<std::string> errors;
    try {
      bb::RpcClient probe(config.rpc);  // what start refuses: the URL, the TLS CA file
      auto libs = bb::loadPluginDir(plugin_dir, errors, describer(pluginRunnerPath(base)));
      for (const auto& kv : config.plugins) {
        bool found = false;
        for (const auto& lib : libs) {
          if (lib->info().name != kv.first) continue;
          found = true;
          bb::effectiveOptions(lib->info(), kv.second.options_json);
          const std::string runner = pluginRunnerPath(base);
          if (kv.second.isolation == "process" && access(runner.c_str(), X_OK) != 0)
            throw bb::ConfigError("plugins." + kv.first +
                                  ".isolation: 'process' needs bb-plugin-runner, which is not "
                                  "at " +
                                  runner + "; install it with the agent, or use 'inprocess'");
        }
        if (!found)
          throw bb::ConfigError("plugins." + kv.first + ": no plugin named '" + kv.first + "' in " +
                                plugin_dir);
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "blockbuster-agent: %s: %s\n", config.source.c_str(), e.what());
      return 2;
    }
    const bb::ListenerPlan listeners = bb::planListeners(config);
    if (!listeners.conflicts.empty()) {
      for (const auto& c : listeners.conflicts)
        std::fprintf(stderr, "blockbuster-agent: %s: %s\n", config.source.c_str(), c.c_str());
      return 2;
    }
    std::fputs(bb::describeConfig(config).c_str(), stdout);
    for (const auto& n : listeners.notes) std::printf("# %s\n", n.c_str());
    for (const auto& e : errors) std::fprintf(stderr, "warning: plugin refused: %s\n", e.c_str());
    for (const auto& w : bb::exposureWarnings(config))
      std::fprintf(stderr, "warning: %s\n", w.c_str());
    std::printf("# config OK (plugins from %s)\n", plugin_dir.c_str());
    return 0;
  }

  // The first line an operator reads: what runs, with which file and which overrides. Logged
  // once the plugins' options passed, so that a bad config stays a one-line error.
  auto logStart = [&config, &plugin_dir] {
    std::string overrides;
    for (const auto& [variable, key] : config.env_overrides)
      overrides += (overrides.empty() ? "" : ", ") + variable + " -> " + key;
    bb::logInfo(
        "agent",
        "blockbuster-agent " BB_VERSION " starting: config " +
            (config.source == "built-in defaults" ? config.source : "file " + config.source) +
            ", environment overrides: " + (overrides.empty() ? "none" : overrides) +
            ", plugins from " + plugin_dir + ", log level " + config.log_level);
  };
  std::string state_dir = config.state_dir;
  if (state_dir.empty()) {
    if (const char* sd = std::getenv("STATE_DIRECTORY"))
      state_dir = sd;  // systemd
    else if (const char* home = std::getenv("HOME"))
      state_dir = std::string(home) + "/.block-buster/state";
    else
      state_dir = "/var/lib/block-buster";
  }

  // Signals are taken synchronously by main (sigwait); block them before the first thread
  // starts, so that every thread inherits the mask, and not before: until then SIGINT and SIGTERM
  // end the process as usual (reading the config or loading plugins can be interrupted).
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  try {
    bb::Metrics metrics(BB_VERSION);
    bb::RpcClient rpc(config.rpc);
    bb::NodeMonitor node(&rpc, bb::judgementWindow(config));
    rpc.setObserver([&](const std::string& method, const bb::RpcOutcome& o) {
      // A call answered by an identical one's request (rpc.share_ms) sent nothing: "shared".
      metrics.rpcCall(method, o.shared ? "shared" : bb::toString(o.status), o.seconds);
      node.record(method, o);
      if (o.status != bb::RpcStatus::Shutdown) metrics.nodeUp(node.state().reachable);
    });
    bb::SnapshotStore store;
    bb::FeatureStore features;
    bb::PluginRoutes routes;
    bb::HistoryMarks history_marks;  // plugin metrics marked for history
    bb::HostServices services{&rpc,
                              &store,
                              &metrics,
                              &features,
                              &routes,
                              state_dir,
                              pluginRunnerPath(base),
                              &history_marks,
                              [&node] { return !node.state().reachable; }};
    bb::PluginManager plugins(services);
    plugins.load(config, plugin_dir, logStart);

    bb::Router router(config.cors_origins);
    bb::DashboardApi api(bb::ApiContext{BB_VERSION, config.rpc.url, &store, &features, &metrics,
                                        &plugins, &routes, &node});
    api.install(router);
    metrics.setFreshnessSource([&api] { return api.freshness(); });
    // History: read from the state directory now, sampled once per collection interval.
    bb::HistoryService history(bb::historyOptions(config, state_dir),
                               bb::dashboardSampler(api, &history_marks));
    history.load();
    history.install(router);

    // WebSocket push: one event loop for every client, fed by the stream hub.
    bb::ws::ServerLimits ws_limits;
    ws_limits.allowed_origins = config.cors_origins;
    bb::ws::WsServer ws_server(ws_limits, &metrics);
    bb::ws::HubOptions hub_options;
    auto sectionBody = [&api](const char* name) -> bb::ws::StreamSource {
      return [&api, name]() -> std::optional<std::string> {
        bb::HttpResponse r = api.section(name);
        if (r.status != 200) return std::nullopt;
        return std::move(r.body);
      };
    };
    hub_options.sources[bb::ws::streamIndex("network_metrics")] = sectionBody("network.metrics");
    hub_options.sources[bb::ws::streamIndex("peers")] = sectionBody("network.peers");
    hub_options.sources[bb::ws::streamIndex("operations")] = sectionBody("receipts.operations");
    hub_options.sources[bb::ws::streamIndex("markets_health")] =
        [&api]() -> std::optional<std::string> { return api.marketsHealth(); };
    hub_options.sources[bb::ws::streamIndex("health")] = [&api]() -> std::optional<std::string> {
      return api.health();
    };
    hub_options.sources[bb::ws::streamIndex("receipts")] =
        [&routes]() -> std::optional<std::string> {
      if (!routes.has("/theblock/receipts")) return std::nullopt;
      auto r = routes.call("/theblock/receipts", {{"limit", "20"}});
      if (!r || r->status != 200) return std::nullopt;
      return std::move(r->body);
    };
    hub_options.sources[bb::ws::kHistoryStream] = [&history]() -> std::optional<std::string> {
      std::string last = history.store().renderLast();
      if (last.empty()) return std::nullopt;
      return last;
    };
    bb::ws::StreamHub hub(ws_server, &features, std::move(hub_options));
    history.setOnRow([&hub] { hub.sectionChanged(bb::ws::StreamHub::kHistorySection); });
    hub.attach(store);
    bb::Serving serving(bb::ServingContext{&config, &router, &routes, &metrics, &api, &ws_server,
                                           base + "/../share/blockbuster/web", BB_VERSION});
    // The page holds no data, so only the surfaces that serve data need a warning.
    for (const auto& w : bb::exposureWarnings(config)) bb::logWarn("security", w);

    ws_server.start();
    hub.start();
    history.start();
    plugins.startAll();
    serving.start();
    std::printf("%s\n", serving.readyLine().c_str());
    std::fflush(stdout);
    bb::logInfo("agent", "serving the API on " + config.http.host + ":" +
                             std::to_string(serving.port(bb::Surface::kHttp)) + ", polling " +
                             bb::redact(config.rpc.url));

    for (;;) {
      // Every 10 s without a signal, hand back to the kernel what a burst of requests freed
      // (bodies of up to ~50 KB on up to 256 HTTP threads): with the tcache off (tuneAllocator)
      // freed chunks return to the arenas, where this can release their pages. It walks the
      // free lists, about a millisecond (docs/reliability.md, "Soak").
      const timespec housekeeping{10, 0};
      int sig = sigtimedwait(&signals, nullptr, &housekeeping);
      if (sig < 0) {
        malloc_trim(0);
        continue;
      }
      if (sig == SIGHUP) {
        // The same sources as at start: --config or the default lookup, then the environment.
        bb::ReloadSources sources;
        sources.explicit_path = args.config;
        if (const char* home = std::getenv("HOME")) sources.home = home;
        sources.log_level = args.log_level;
        sources.plugin_dir_from_args = args.plugin_dir.has_value();
        bb::reloadConfig(sources, config, plugins);
        continue;
      }
      bb::logInfo("agent", std::string("stopping on ") + (sig == SIGTERM ? "SIGTERM" : "SIGINT"));
      break;
    }
    rpc.shutdown();  // calls in flight return at once, so plugins finish their collect quickly
    plugins.stopAll();
    history.stop();  // writes the file
    hub.stop();
    serving.stop();
    ws_server.stop();
    bb::logInfo("agent", "stopped");
    return 0;
  } catch (const bb::ConfigError& e) {
    std::fprintf(stderr, "blockbuster-agent: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blockbuster-agent: %s\n", e.what());
    return 1;
  }
}
