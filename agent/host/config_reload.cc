#include "host/config_reload.h"

#include <utility>

#include "config/schema.h"
#include "util/log.h"

namespace bb {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

std::vector<std::string> restartOnlyChanges(const Config& a, const Config& b,
                                            bool compare_plugin_dir) {
  // Credentials are compared, never shown: only the key is named.
  std::vector<std::string> keys;
  for (const ConfigKey& key : configKeys()) {
    if (key.reload != Reload::kRestart || sameValue(key, a, b)) continue;
    if (!compare_plugin_dir && std::string(key.path) == "plugin_dir") continue;
    keys.emplace_back(key.path);
  }
  return keys;
}

bool reloadConfig(const ReloadSources& sources, Config& running, PluginManager& plugins) {
  Config next;
  ReloadSummary done;
  try {
    LoadOptions lo;
    lo.explicit_path = sources.explicit_path;
    lo.home = sources.home;
    lo.env = processEnvironment();
    next = loadConfig(lo);
    if (sources.log_level) next.log_level = *sources.log_level;
    LogLevel level;
    if (!parseLogLevel(next.log_level, level))
      throw ConfigError(next.source + ": log_level: '" + next.log_level +
                        "' is not a level; use debug, info, warn or error");
    done = plugins.reload(next);
    // A new token must be redacted from logs even though the client keeps the old one.
    addSecret(next.rpc.auth_token);
  } catch (const ConfigError& e) {
    logWarn("agent",
            std::string("SIGHUP: new config refused, still running the previous one: ") + e.what());
    return false;
  }

  auto frozen = restartOnlyChanges(running, next, !sources.plugin_dir_from_args);
  if (!frozen.empty())
    logWarn("agent", "SIGHUP: " + joined(frozen) + (frozen.size() == 1 ? " changes" : " change") +
                         " only on restart; keeping the running value" +
                         (frozen.size() == 1 ? "" : "s") + " until the agent is restarted");

  std::string what = "SIGHUP: reloaded " + next.source + ":";
  auto part = [&](const char* label, const std::vector<std::string>& names) {
    if (!names.empty()) what += std::string(" ") + label + " " + joined(names) + ";";
  };
  part("restarted", done.restarted);
  part("started", done.started);
  part("stopped", done.stopped);
  part("refused their new config (kept the previous one)", done.failed);
  what += " " + std::to_string(done.unchanged.size()) + " plugin" +
          (done.unchanged.size() == 1 ? "" : "s") + " unchanged";
  if (next.log_level != running.log_level) {
    LogLevel level = LogLevel::Info;
    parseLogLevel(next.log_level, level);
    setLogLevel(level);
    what += "; log_level " + running.log_level + " -> " + next.log_level;
  }
  // Only what was applied becomes the running config; restart-only keys keep their old value.
  for (const ConfigKey& key : configKeys())
    if (key.reload == Reload::kLive) copyValue(key, running, next);
  running.source = next.source;
  running.env_overrides = std::move(next.env_overrides);
  logInfo("agent", what);
  return true;
}

}  // namespace bb
