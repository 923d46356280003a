// blockbuster-agent: parses the command line and runs the agent (app/agent.h) or one of its
// one-shot commands (app/commands.h).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>

#include "app/agent.h"
#include "app/allocator.h"
#include "app/commands.h"
#include "blockbuster/plugin_abi.h"
#include "util/log.h"

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
  bb::CommandLine run;
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
      a.run.config = value("--config");
    } else if (is("--plugin-dir")) {
      a.run.plugin_dir = value("--plugin-dir");
    } else if (is("--log-level")) {
      a.run.log_level = value("--log-level");
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

}  // namespace

int main(int argc, char** argv) {
  bb::tuneAllocator(argv);
  signal(SIGPIPE, SIG_IGN);

  const Args args = parseArgs(argc, argv);
  bb::Config config;
  try {
    config = bb::loadAgentConfig(args.run);
  } catch (const bb::ConfigError& e) {
    std::fprintf(stderr, "blockbuster-agent: %s\n", e.what());
    return 2;
  }
  bb::LogLevel level;
  if (args.run.log_level && !bb::parseLogLevel(*args.run.log_level, level))
    usageError("--log-level must be debug, info, warn or error, got '" + *args.run.log_level + "'");
  bb::configureLogging(config);

  const std::string plugin_dirs = bb::pluginDirs(args.run, config);
  if (args.list) return bb::listPlugins(plugin_dirs);
  if (args.print_default) return bb::printDefaultConfig(plugin_dirs);
  if (args.check) return bb::checkConfig(config, plugin_dirs);

  try {
    bb::Agent agent(args.run, std::move(config));
    agent.build();
    agent.start();
    agent.run();
    agent.stop();
    return 0;
  } catch (const std::exception& e) {  // ConfigError included: the message names file and key
    std::fprintf(stderr, "blockbuster-agent: %s\n", e.what());
    return dynamic_cast<const bb::ConfigError*>(&e) ? 2 : 1;
  }
}
