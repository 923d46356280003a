#include "app/commands.h"

#include <unistd.h>

#include <cstdio>
#include <vector>

#include "app/agent.h"
#include "config/exposure.h"
#include "config/listeners.h"
#include "default_config.h"
#include "host/plugin_loader.h"
#include "host/plugin_manager.h"
#include "host/plugin_options.h"
#include "rpc/rpc_client.h"

namespace bb {
namespace {

// Descriptors are read through bb-plugin-runner when it is installed, never by loading a plugin
// into the agent (a plugin that crashes when loaded is then refused, not fatal).
std::vector<std::shared_ptr<LoadedLibrary>> describePlugins(const std::string& dirs,
                                                            std::vector<std::string>& errors) {
  const std::string runner = pluginRunnerPath();
  return loadPluginDir(dirs, errors, access(runner.c_str(), X_OK) == 0 ? runner : "");
}

}  // namespace

int checkConfig(const Config& config, const std::string& plugin_dirs) {
  std::vector<std::string> refused;
  try {
    RpcClient probe(config.rpc);  // what start refuses: the URL, the TLS CA file
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blockbuster-agent: %s: %s\n", config.source.c_str(), e.what());
    return 2;
  }
  try {
    // The plugins' options too: that is where most mistakes in a config are.
    HostServices services;
    services.plugin_runner = pluginRunnerPath();
    refused = PluginManager(services).checkOnly(config, plugin_dirs);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "blockbuster-agent: %s\n", e.what());  // names the file
    return 2;
  }
  const ListenerPlan listeners = planListeners(config);
  if (!listeners.conflicts.empty()) {
    for (const auto& c : listeners.conflicts)
      std::fprintf(stderr, "blockbuster-agent: %s: %s\n", config.source.c_str(), c.c_str());
    return 2;
  }
  std::fputs(describeConfig(config).c_str(), stdout);
  for (const auto& n : listeners.notes) std::printf("# %s\n", n.c_str());
  for (const auto& e : refused) std::fprintf(stderr, "warning: plugin refused: %s\n", e.c_str());
  for (const auto& w : exposureWarnings(config)) std::fprintf(stderr, "warning: %s\n", w.c_str());
  std::printf("# config OK (plugins from %s)\n", plugin_dirs.c_str());
  return 0;
}

int printDefaultConfig(const std::string& plugin_dirs) {
  std::string text = kDefaultConfig;
  auto cut = text.find("# --- Plugins");
  std::fputs(text.substr(0, cut).c_str(), stdout);
  std::vector<std::string> errors;
  auto libs = describePlugins(plugin_dirs, errors);
  std::printf("# --- Plugins (found in %s) ---\n", plugin_dirs.c_str());
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
        std::printf("      # %s:  # %s, no default. %s\n", k.name.c_str(), configTypeName(k.type),
                    k.help.c_str());
      else
        std::printf("      %s: %s  # %s\n", k.name.c_str(), k.default_json.c_str(), k.help.c_str());
    }
  }
  for (const auto& e : errors) std::printf("# refused: %s\n", e.c_str());
  return 0;
}

int listPlugins(const std::string& plugin_dirs) {
  std::vector<std::string> errors;
  auto libs = describePlugins(plugin_dirs, errors);
  std::printf("Plugins in %s:\n", plugin_dirs.c_str());
  for (const auto& lib : libs) {
    const auto& i = lib->info();
    std::printf("\n%s %s (ABI %u.%u)\n  %s\n  %s\n", i.name.c_str(), i.version.c_str(), i.abi_major,
                i.abi_minor, i.description.c_str(), i.path.c_str());
    for (const auto& k : i.config_keys)
      std::printf("  options.%s: %s, default %s. %s\n", k.name.c_str(), configTypeName(k.type),
                  k.default_json.empty() ? "none" : k.default_json.c_str(), k.help.c_str());
  }
  for (const auto& e : errors) std::printf("\nrefused: %s\n", e.c_str());
  return errors.empty() ? 0 : 1;
}

}  // namespace bb
