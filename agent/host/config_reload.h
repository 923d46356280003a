// SIGHUP: reads the config again and applies what can change while the agent runs.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "host/plugin_manager.h"

namespace bb {

/// Where the running config came from, so that a reload reads the same sources.
struct ReloadSources {
  std::optional<std::string> explicit_path;  ///< --config FILE
  std::string home;                          ///< $HOME at start; "" = no home lookup
  std::optional<std::string> log_level;      ///< --log-level, which outranks the file
  bool plugin_dir_from_args = false;         ///< --plugin-dir given: plugin_dir is not compared
};

/// The keys whose value differs between `running` and `next` but that only take effect at
/// start (Reload::kRestart in config/schema.h: every key but log_level and plugins), as config
/// paths in the schema's order; plugin_dir only if `compare_plugin_dir`. Secrets are named, never
/// shown. Reentrant.
std::vector<std::string> restartOnlyChanges(const Config& running, const Config& next,
                                            bool compare_plugin_dir);

/// Reloads the config from `sources` and the process environment, and applies it: the plugins
/// (PluginManager::reload) and log_level, the keys the schema marks Reload::kLive. An invalid
/// config is refused with one warn line and changes nothing. A restart-only key that changed is
/// named in a warn line and keeps its running value. Logs one info line saying what was reloaded.
/// Updates `running` to the config now in effect; returns false when the new config was refused.
/// Call from the main thread (reads `environ`).
bool reloadConfig(const ReloadSources& sources, Config& running, PluginManager& plugins);

}  // namespace bb
