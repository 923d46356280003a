// Finds, checks, configures and runs the plugins of a directory.
#pragma once

#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "config/config.h"
#include "host/plugin_loader.h"
#include "host/plugin_runtime.h"

namespace bb {

class PluginManager {
 public:
  explicit PluginManager(HostServices services);
  ~PluginManager();  ///< stops every plugin

  /// Loads every plugin of `plugin_dir` and creates those enabled in `config`.
  /// A file that cannot be loaded is skipped and reported by loadErrors(). Throws ConfigError
  /// (fatal at start) when the config names a plugin that is not there, or when a plugin's
  /// options do not match the keys it declares, or when a plugin fails to create.
  void load(const Config& config, const std::string& plugin_dir);
  void startAll();
  void stopAll();

  std::vector<PluginStatus> statuses() const;
  /// Plugins found (enabled or not).
  std::vector<PluginInfo> available() const;
  std::vector<std::string> loadErrors() const;
  /// Names of plugins present but disabled by the config.
  std::vector<std::string> disabled() const;

 private:
  HostServices services_;
  mutable std::mutex mutex_;
  std::vector<std::shared_ptr<LoadedLibrary>> libraries_;
  std::vector<std::unique_ptr<PluginRuntime>> runtimes_;
  std::vector<std::string> load_errors_;
  std::vector<std::string> disabled_;
};

}  // namespace bb
