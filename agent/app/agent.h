// The running agent: every part built from one config, started, reloaded and stopped in order.
// main.cc parses the command line and hands it here; the one-shot commands (--check-config,
// --list-plugins, --print-default-config) are in app/commands.h.
#pragma once

#include <csignal>
#include <memory>
#include <optional>
#include <string>

#include "config/config.h"

namespace bb {

/// What the command line says, beside the config file itself.
struct CommandLine {
  std::optional<std::string> config;      ///< --config FILE
  std::optional<std::string> plugin_dir;  ///< --plugin-dir DIR
  std::optional<std::string> log_level;   ///< --log-level LEVEL (already checked)
};

/// Reads the config as start does: --config or the default lookup, then the environment, then
/// --log-level. Throws ConfigError naming the file and the key.
Config loadAgentConfig(const CommandLine& args);

/// Applies the config's log level, log format and secrets to the process's log.
void configureLogging(const Config& config);

/// The folders plugins are read from, ':'-separated: --plugin-dir, else plugin_dir, else the
/// installed plugins beside the binary; then plugin_dirs.
std::string pluginDirs(const CommandLine& args, const Config& config);

/// bb-plugin-runner, for plugins with isolation: process: where the build tree and the package
/// both put it, relative to the agent's own binary (bin/ -> libexec/blockbuster/).
std::string pluginRunnerPath();

/// The folder of the running binary.
std::string exeDir();

class Agent {
 public:
  Agent(CommandLine args, Config config);
  ~Agent();
  Agent(const Agent&) = delete;
  Agent& operator=(const Agent&) = delete;

  /// Blocks SIGINT, SIGTERM and SIGHUP (taken by run()), then builds every part: loads and
  /// creates the plugins, binds every listener. Throws ConfigError for a bad config (plugins'
  /// options, a busy port) and std::exception for anything else.
  void build();
  /// Starts the streams, the history, the plugins and the listeners; prints the ready line.
  void start();
  /// SIGHUP: reads the config again from the same sources and applies what can change.
  void reload();
  /// Stops every part, plugins first (calls to the node in flight return at once).
  void stop();
  /// Waits for signals until SIGINT or SIGTERM (SIGHUP reloads); trims the heap when idle.
  void run();

 private:
  struct Parts;
  CommandLine args_;
  Config config_;
  std::string plugin_dirs_;
  sigset_t signals_{};
  std::unique_ptr<Parts> parts_;
};

}  // namespace bb
