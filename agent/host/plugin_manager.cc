#include "host/plugin_manager.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <set>

#include "host/plugin_options.h"
#include "host/plugin_routes.h"
#include "metrics/metrics.h"
#include "snapshot/feature_store.h"
#include "snapshot/snapshot_store.h"
#include "util/log.h"

namespace bb {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kStopGrace{1500};

// Stops runtimes asked to stop beforehand, sharing one grace period. A plugin still stuck in
// collect() after it is leaked on purpose, runtime included: its detached thread still uses it,
// and unloading its code would crash the agent.
void stopTogether(std::vector<std::unique_ptr<PluginRuntime>>& runtimes) {
  for (auto& rt : runtimes) rt->requestStop();
  const auto deadline = Clock::now() + kStopGrace;
  for (auto& rt : runtimes) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (!rt->stop(std::max(left, std::chrono::milliseconds(0)))) rt.release();
  }
  runtimes.clear();
}

}  // namespace

PluginManager::PluginManager(HostServices services) : services_(std::move(services)) {}

PluginManager::~PluginManager() { stopAll(); }

bool PluginManager::Settings::sameAs(const Settings& other) const {
  return config.enabled == other.config.enabled && config.interval_ms == other.config.interval_ms &&
         config.timeout_ms == other.config.timeout_ms &&
         config.isolation == other.config.isolation && options == other.options;
}

std::vector<PluginManager::Settings> PluginManager::check(
    const Config& config, const std::vector<std::shared_ptr<LoadedLibrary>>& libs,
    const std::string& plugin_dir) const {
  std::set<std::string> found;
  for (const auto& lib : libs) found.insert(lib->info().name);
  for (const auto& kv : config.plugins) {
    if (found.count(kv.first)) continue;
    std::string names;
    for (const auto& n : found) names += (names.empty() ? "" : ", ") + n;
    throw ConfigError(config.source + ": plugins." + kv.first + ": no plugin named '" + kv.first +
                      "' in " + plugin_dir + "; available: " + (names.empty() ? "(none)" : names));
  }
  std::vector<Settings> out;
  for (const auto& lib : libs) {
    Settings s;
    auto it = config.plugins.find(lib->info().name);
    if (it != config.plugins.end()) s.config = it->second;
    try {
      s.options = effectiveOptions(lib->info(), s.config.options_json);
    } catch (const std::exception& e) {
      throw ConfigError(config.source + ": " + e.what());
    }
    if (s.config.isolation == "process" && access(services_.plugin_runner.c_str(), X_OK) != 0)
      throw ConfigError(
          config.source + ": plugins." + lib->info().name +
          ".isolation: 'process' needs bb-plugin-runner, which is not at " +
          (services_.plugin_runner.empty() ? std::string("(unset)") : services_.plugin_runner) +
          "; install it with the agent, or use 'inprocess'");
    out.push_back(std::move(s));
  }
  return out;
}

std::unique_ptr<PluginRuntime> PluginManager::createRuntime(
    const std::shared_ptr<LoadedLibrary>& described, const Settings& settings) {
  // A plugin described by bb-plugin-runner is loaded into the agent only when it runs here
  // (isolation: inprocess); with isolation: process its code runs in its runner alone.
  std::shared_ptr<LoadedLibrary> lib = described;
  if (settings.config.isolation != "process" && !lib->loaded()) {
    lib = loadPlugin(described->info().path);
    if (lib->info().name != described->info().name)
      throw LoadError(described->info().path +
                      ": the file changed since start (it is now plugin '" + lib->info().name +
                      "', not '" + described->info().name + "'); restart the agent");
  }
  const auto& info = lib->info();
  auto rt = std::make_unique<PluginRuntime>(lib, settings.config, services_);
  rt->create(settings.options);
  services_.metrics->pluginLoaded(info.name, info.version, settings.config.interval_ms / 1000.0);
  logInfo("loader", "loaded plugin '" + info.name + "' " + info.version + " (ABI " +
                        std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor) +
                        ") from " + info.path + ", every " +
                        std::to_string(settings.config.interval_ms) + " ms");
  return rt;
}

void PluginManager::forget(const std::string& plugin) {
  // Routes go with the runtime's destructor; the rest is shared state the runtime cannot see
  // the end of. A restarted plugin publishes afresh, so stale sections must not outlive it.
  if (services_.routes) services_.routes->removePlugin(plugin);
  if (services_.store) services_.store->removePlugin(plugin);
  if (services_.features) services_.features->removePrefix(plugin + ".");
  if (services_.metrics) services_.metrics->removePluginSeries(plugin);
}

std::vector<std::shared_ptr<LoadedLibrary>> PluginManager::describe(
    const std::string& plugin_dir, std::vector<std::string>& errors) const {
  // Descriptors come from bb-plugin-runner when it is installed: no plugin code runs in the
  // agent before its settings say it may (docs/security.md, "Bounded input").
  const bool runner =
      !services_.plugin_runner.empty() && access(services_.plugin_runner.c_str(), X_OK) == 0;
  return loadPluginDir(plugin_dir, errors, runner ? services_.plugin_runner : "");
}

std::vector<std::string> PluginManager::checkOnly(const Config& config,
                                                  const std::string& plugin_dir) const {
  std::vector<std::string> errors;
  check(config, describe(plugin_dir, errors), plugin_dir);
  return errors;
}

void PluginManager::load(const Config& config, const std::string& plugin_dir,
                         const std::function<void()>& checked) {
  std::vector<std::string> errors;
  auto libs = describe(plugin_dir, errors);
  for (const auto& e : errors) logError("loader", e);

  // Check every plugin's options before creating any, so that a mistake stops start-up before
  // any plugin has started.
  std::vector<Settings> settings = check(config, libs, plugin_dir);
  if (checked) checked();

  std::vector<std::unique_ptr<PluginRuntime>> runtimes;
  std::vector<std::string> disabled;
  std::map<std::string, Settings> by_name;
  for (size_t i = 0; i < libs.size(); ++i) {
    const auto& info = libs[i]->info();
    by_name[info.name] = settings[i];
    if (!settings[i].config.enabled) {
      disabled.push_back(info.name);
      logInfo("loader", "plugin '" + info.name + "' is disabled by the config");
      continue;
    }
    try {
      runtimes.push_back(createRuntime(libs[i], settings[i]));
    } catch (const std::exception& e) {
      throw ConfigError(e.what());
    }
  }
  plugin_dir_ = plugin_dir;
  settings_ = std::move(by_name);
  std::lock_guard<std::mutex> lock(mutex_);
  libraries_ = std::move(libs);
  runtimes_ = std::move(runtimes);
  load_errors_ = std::move(errors);
  disabled_ = std::move(disabled);
}

void PluginManager::startAll() {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& rt : runtimes_) rt->start();
  started_ = true;
}

void PluginManager::stopAll() {
  std::vector<std::unique_ptr<PluginRuntime>> runtimes;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    runtimes.swap(runtimes_);
  }
  stopTogether(runtimes);
}

ReloadSummary PluginManager::reload(const Config& config) {
  std::vector<std::shared_ptr<LoadedLibrary>> libs;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    libs = libraries_;
  }
  // Everything is checked before anything is touched: a bad config changes nothing.
  std::vector<Settings> next = check(config, libs, plugin_dir_);

  ReloadSummary summary;
  std::vector<size_t> changed;
  for (size_t i = 0; i < libs.size(); ++i) {
    const std::string& name = libs[i]->info().name;
    const Settings& before = settings_[name];
    if (before.sameAs(next[i])) {
      if (next[i].config.enabled) summary.unchanged.push_back(name);
      continue;
    }
    changed.push_back(i);
  }
  if (changed.empty()) return summary;

  // Take the changed plugins out of the running set, then stop them together.
  std::vector<std::unique_ptr<PluginRuntime>> old;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (size_t i : changed) {
      const std::string& name = libs[i]->info().name;
      auto it = std::find_if(runtimes_.begin(), runtimes_.end(),
                             [&](const auto& rt) { return rt->name() == name; });
      if (it == runtimes_.end()) continue;
      old.push_back(std::move(*it));
      runtimes_.erase(it);
    }
  }
  stopTogether(old);

  std::vector<std::unique_ptr<PluginRuntime>> fresh;
  for (size_t i : changed) {
    const auto& lib = libs[i];
    const std::string& name = lib->info().name;
    const Settings previous = settings_[name];
    forget(name);
    if (!next[i].config.enabled) {
      // A disabled plugin is not "down": its own agent-level series go too.
      if (services_.metrics) services_.metrics->removePlugin(name, lib->info().version);
      settings_[name] = next[i];
      summary.stopped.push_back(name);
      logInfo("loader", "plugin '" + name + "' stopped: disabled by the config");
      continue;
    }
    try {
      fresh.push_back(createRuntime(lib, next[i]));
      settings_[name] = next[i];
      (previous.config.enabled ? summary.restarted : summary.started).push_back(name);
      continue;
    } catch (const std::exception& e) {
      summary.failed.push_back(name);
      logError("loader", std::string(e.what()) + "; keeping its previous config (fix " +
                             config.source + " and send SIGHUP again)");
    }
    if (!previous.config.enabled) continue;
    try {
      forget(name);  // whatever the refused instance registered
      fresh.push_back(createRuntime(lib, previous));
    } catch (const std::exception& e) {
      logError("loader", "plugin '" + name + "' also refused its previous config: " + e.what() +
                             "; it stays stopped until the next reload or restart");
      Settings off = previous;
      off.config.enabled = false;
      settings_[name] = off;
    }
  }

  std::lock_guard<std::mutex> lock(mutex_);
  for (auto& rt : fresh) {
    if (started_) rt->start();
    runtimes_.push_back(std::move(rt));
  }
  // Keep the order of the plugin files, as at start: /health lists them in that order.
  auto rank = [&](const std::unique_ptr<PluginRuntime>& rt) {
    return std::find_if(libs.begin(), libs.end(),
                        [&](const auto& lib) { return lib->info().name == rt->name(); }) -
           libs.begin();
  };
  std::sort(runtimes_.begin(), runtimes_.end(),
            [&](const auto& a, const auto& b) { return rank(a) < rank(b); });
  disabled_.clear();
  for (const auto& lib : libs)
    if (!settings_[lib->info().name].config.enabled) disabled_.push_back(lib->info().name);
  return summary;
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
