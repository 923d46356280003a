#include "host/config_reload.h"

#include <utility>

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
  std::vector<std::string> keys;
  auto listener = [&](const char* name, const Listener& x, const Listener& y,
                      const char* port_key = "port") {
    if (x.host != y.host) keys.push_back(std::string(name) + ".host");
    if (x.port != y.port) keys.push_back(std::string(name) + "." + port_key);
  };
  listener("http", a.http, b.http);
  listener("ws", a.ws, b.ws);
  if (a.feature_ws.port != b.feature_ws.port) keys.push_back("ws.feature_port");
  listener("web", a.web, b.web);
  const RpcConfig& x = a.rpc;
  const RpcConfig& y = b.rpc;
  if (x.url != y.url) keys.push_back("rpc_url");
  if (x.ws_url != y.ws_url) keys.push_back("ws_url");
  if (x.auth_token != y.auth_token) keys.push_back("auth_token");
  if (x.connect_timeout_ms != y.connect_timeout_ms) keys.push_back("rpc.connect_timeout_ms");
  if (x.timeout_ms != y.timeout_ms) keys.push_back("rpc.timeout_ms");
  if (x.retries != y.retries) keys.push_back("rpc.retries");
  if (x.backoff_initial_ms != y.backoff_initial_ms) keys.push_back("rpc.backoff_initial_ms");
  if (x.backoff_max_ms != y.backoff_max_ms) keys.push_back("rpc.backoff_max_ms");
  if (x.max_requests_per_second != y.max_requests_per_second)
    keys.push_back("rpc.max_requests_per_second");
  if (x.burst != y.burst) keys.push_back("rpc.burst");
  if (x.max_connections != y.max_connections) keys.push_back("rpc.max_connections");
  if (x.max_response_bytes != y.max_response_bytes) keys.push_back("rpc.max_response_bytes");
  if (x.share_ms != y.share_ms) keys.push_back("rpc.share_ms");
  if (x.tls_ca_file != y.tls_ca_file) keys.push_back("rpc.tls_ca_file");
  if (compare_plugin_dir && a.plugin_dir != b.plugin_dir) keys.push_back("plugin_dir");
  if (a.plugin_dirs != b.plugin_dirs) keys.push_back("plugin_dirs");
  if (a.state_dir != b.state_dir) keys.push_back("state_dir");
  if (a.web_root != b.web_root) keys.push_back("web.root");
  if (a.history_window_seconds != b.history_window_seconds) keys.push_back("history.window");
  if (a.web_page.grafana_url != b.web_page.grafana_url) keys.push_back("web.grafana_url");
  if (a.web_page.last_block_warn_seconds != b.web_page.last_block_warn_seconds ||
      a.web_page.last_block_critical_seconds != b.web_page.last_block_critical_seconds)
    keys.push_back("web.last_block_*_seconds");
  if (a.cors_origins != b.cors_origins) keys.push_back("http.cors_origins");
  if (a.metrics_port != b.metrics_port) keys.push_back("http.metrics_port");
  auto tls = [&](const char* name, const Listener& x, const Listener& y) {
    if (x.tls_cert_file != y.tls_cert_file || x.tls_key_file != y.tls_key_file)
      keys.push_back(std::string(name) + ".tls");
  };
  tls("http", a.http, b.http);
  tls("web", a.web, b.web);
  tls("ws", a.ws, b.ws);
  // Credentials are compared, never shown: only the key is named.
  auto auth = [&](const char* name, const AuthSurface& x, const AuthSurface& y) {
    bool same = x.bearer_sha256 == y.bearer_sha256 && x.basic.size() == y.basic.size();
    for (size_t i = 0; same && i < x.basic.size(); ++i)
      same = x.basic[i].user == y.basic[i].user &&
             x.basic[i].password_sha256 == y.basic[i].password_sha256;
    if (!same) keys.push_back(name);
  };
  auth("auth.api", a.auth.api, b.auth.api);
  auth("auth.metrics", a.auth.metrics, b.auth.metrics);
  auth("auth.ws", a.auth.ws, b.auth.ws);
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
  running.plugins = std::move(next.plugins);
  running.log_level = next.log_level;
  running.source = next.source;
  running.env_overrides = std::move(next.env_overrides);
  logInfo("agent", what);
  return true;
}

}  // namespace bb
