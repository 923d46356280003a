// Finds, checks, configures and runs the plugins of a directory; applies a reloaded config to
// the running plugins.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"
#include "host/plugin_loader.h"
#include "host/plugin_runtime.h"

namespace bb {

/// What PluginManager::reload() did, by plugin name.
struct ReloadSummary {
  std::vector<std::string> restarted;  ///< running before and after, with a changed config
  std::vector<std::string> started;    ///< newly enabled
  std::vector<std::string> stopped;    ///< newly disabled
  /// Refused their new config at create(); each was put back on its previous config.
  std::vector<std::string> failed;
  std::vector<std::string> unchanged;  ///< untouched: thread, sections, series, routes kept
};

class PluginManager {
 public:
  explicit PluginManager(HostServices services);
  ~PluginManager();  ///< stops every plugin

  /// Loads every plugin of `plugin_dir` and creates those enabled in `config`.
  /// A file that cannot be loaded is skipped and reported by loadErrors(). Throws ConfigError
  /// (fatal at start) when the config names a plugin that is not there, or when a plugin's
  /// options do not match the keys it declares, or when a plugin fails to create.
  /// `checked`, when given, is called once every plugin's options passed, before any is created
  /// (the agent's start-up line: a bad config stays a one-line error).
  void load(const Config& config, const std::string& plugin_dir,
            const std::function<void()>& checked = nullptr);
  /// What --check-config checks, creating nothing: reads the descriptors of `plugin_dir` as
  /// load() does and checks `config` against them (the same check() load() and reload() run).
  /// Throws ConfigError naming the file and the key; returns the files refused, as loadErrors().
  std::vector<std::string> checkOnly(const Config& config, const std::string& plugin_dir) const;
  void startAll();
  /// Stops every plugin: all are asked at once, then each gets what is left of one shared
  /// grace period, so the whole stop takes at most about PluginRuntime's grace (1.5 s).
  void stopAll();

  /// Applies the plugin settings of `config` (enabled, interval_ms, timeout_ms, isolation,
  /// options) to the running agent. Everything is checked first: on any error nothing is
  /// touched and ConfigError is thrown, "<file>: <key>: <what>; <fix>". Then each plugin whose
  /// effective settings changed is stopped, its sections, features, metric series and routes
  /// removed, and (if still enabled) created with the new options and started; a plugin that
  /// refuses its new options at create() is put back on its previous ones. The other plugins
  /// are not touched. The plugin files are not rescanned (plugin_dir needs a restart).
  /// Call from one thread at a time (main), not concurrently with load()/startAll()/stopAll();
  /// statuses() and the other readers may run meanwhile.
  ReloadSummary reload(const Config& config);

  std::vector<PluginStatus> statuses() const;
  /// Plugins found (enabled or not).
  std::vector<PluginInfo> available() const;
  std::vector<std::string> loadErrors() const;
  /// Names of plugins present but disabled by the config.
  std::vector<std::string> disabled() const;

 private:
  /// One plugin's effective settings: what a reload compares.
  struct Settings {
    PluginConfig config;
    std::string options;  ///< effective options (defaults applied), JSON
    bool sameAs(const Settings& other) const;
  };

  /// Checks `config` against the loaded libraries; one Settings per library, in their order.
  /// Throws ConfigError naming the file and the key.
  std::vector<Settings> check(const Config& config,
                              const std::vector<std::shared_ptr<LoadedLibrary>>& libs,
                              const std::string& plugin_dir) const;
  /// The plugins of `plugin_dir`, described through bb-plugin-runner when it is installed;
  /// files refused are added to `errors`.
  std::vector<std::shared_ptr<LoadedLibrary>> describe(const std::string& plugin_dir,
                                                       std::vector<std::string>& errors) const;
  /// Creates (not starts) a runtime; throws std::runtime_error when the plugin refuses.
  std::unique_ptr<PluginRuntime> createRuntime(const std::shared_ptr<LoadedLibrary>& lib,
                                               const Settings& settings);
  /// Forgets everything a stopped plugin left in the shared services.
  void forget(const std::string& plugin);

  HostServices services_;
  std::string plugin_dir_;
  bool started_ = false;  // only the calling (main) thread reads and writes it
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<LoadedLibrary>> libraries_;
  std::map<std::string, Settings> settings_;  // by plugin name; main thread only
  std::vector<std::unique_ptr<PluginRuntime>> runtimes_;
  std::vector<std::string> load_errors_;
  std::vector<std::string> disabled_;
};

}  // namespace bb
