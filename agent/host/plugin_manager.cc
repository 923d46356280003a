#include "host/plugin_manager.h"

#include <set>

#include "host/plugin_options.h"
#include "metrics/metrics.h"
#include "util/log.h"

namespace bb {

PluginManager::PluginManager(HostServices services) : services_(std::move(services)) {}

PluginManager::~PluginManager() { stopAll(); }

void PluginManager::load(const Config& config, const std::string& plugin_dir) {
  std::vector<std::string> errors;
  auto libs = loadPluginDir(plugin_dir, errors);
  for (const auto& e : errors) logError("loader", e);

  std::set<std::string> found;
  for (const auto& lib : libs) found.insert(lib->info().name);
  for (const auto& kv : config.plugins) {
    if (found.count(kv.first)) continue;
    std::string names;
    for (const auto& n : found) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError(config.source + ": plugins." + kv.first + ": no plugin named '" +
                      kv.first + "' in " + plugin_dir + "; available: " +
                      (names.empty() ? "(none)" : names));
  }

  // Check every plugin's options before creating any, so that a mistake stops start-up before
  // any plugin has started.
  std::vector<std::pair<PluginConfig, std::string>> settings;
  for (const auto& lib : libs) {
    PluginConfig pc;
    auto it = config.plugins.find(lib->info().name);
    if (it != config.plugins.end()) pc = it->second;
    try {
      settings.emplace_back(pc, effectiveOptions(lib->info(), pc.options_json));
    } catch (const std::exception& e) {
      throw ConfigError(config.source + ": " + e.what());
    }
  }

  std::vector<std::unique_ptr<PluginRuntime>> runtimes;
  std::vector<std::string> disabled;
  for (size_t i = 0; i < libs.size(); ++i) {
    const auto& lib = libs[i];
    const auto& info = lib->info();
    const PluginConfig& pc = settings[i].first;
    if (pc.isolation == "process")
      throw ConfigError(config.source + ": plugins." + info.name +
                        ".isolation: 'process' is not available in this build of the agent; "
                        "use 'inprocess'");
    if (!pc.enabled) {
      disabled.push_back(info.name);
      logInfo("loader", "plugin '" + info.name + "' is disabled by the config");
      continue;
    }
    auto rt = std::make_unique<PluginRuntime>(lib, pc, services_);
    try {
      rt->create(settings[i].second);
    } catch (const std::exception& e) {
      throw ConfigError(e.what());
    }
    services_.metrics->pluginLoaded(info.name, info.version, pc.interval_ms / 1000.0);
    logInfo("loader", "loaded plugin '" + info.name + "' " + info.version + " (ABI " +
                          std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor) +
                          ") from " + info.path + ", every " + std::to_string(pc.interval_ms) +
                          " ms");
    runtimes.push_back(std::move(rt));
  }
  std::lock_guard<std::mutex> lock(mutex_);
  libraries_ = std::move(libs);
  runtimes_ = std::move(runtimes);
  load_errors_ = std::move(errors);
  disabled_ = std::move(disabled);
}

void PluginManager::startAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& rt : runtimes_) rt->start();
}

void PluginManager::stopAll() {
  std::vector<std::unique_ptr<PluginRuntime>> runtimes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    runtimes.swap(runtimes_);
  }
  // Ask all to stop first, so they wind down in parallel, then destroy them.
  for (auto& rt : runtimes) rt->requestStop();
  runtimes.clear();
}

std::vector<PluginStatus> PluginManager::statuses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PluginStatus> out;
  for (const auto& rt : runtimes_) out.push_back(rt->status());
  return out;
}

std::vector<PluginInfo> PluginManager::available() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<PluginInfo> out;
  for (const auto& lib : libraries_) out.push_back(lib->info());
  return out;
}

std::vector<std::string> PluginManager::loadErrors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return load_errors_;
}

std::vector<std::string> PluginManager::disabled() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return disabled_;
}

}  // namespace bb
