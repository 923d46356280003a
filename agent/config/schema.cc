// The table of the agent's config keys (schema.h). Each row names the key's path, its type, the
// environment variable that overrides it, when a change takes effect, whether it is a secret,
// and the member it fills; config.cc, describe.cc and host/config_reload.cc read nothing else.
#include "config/schema.h"

#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <type_traits>

namespace bb {
namespace {

// The member a row fills, as a function of the struct (a captureless lambda).
// NOLINTNEXTLINE(bugprone-macro-parentheses): Obj is a type, member a member path
#define BB_MEMBER(Obj, member) [](Obj& o) -> Field { return &o.member; }
#define BB_CONFIG(member) BB_MEMBER(Config, member)
#define BB_PLUGIN(member) BB_MEMBER(PluginConfig, member)

constexpr Reload kLive = Reload::kLive;
constexpr Reload kRestart = Reload::kRestart;
constexpr bool kSecret = true;
constexpr bool kShown = false;

constexpr char kPortExpected[] = "an integer from 0 to 65535";
constexpr char kMsExpected[] = "a positive integer (milliseconds)";
constexpr char kSecondsExpected[] = "an integer from 1 to 86400 (seconds)";

}  // namespace

const std::vector<ConfigKey>& configKeys() {
  using T = KeyType;
  static const std::vector<ConfigKey> keys = {
      // --- the node
      {"rpc_url", T::kUrl, "THEBLOCK_RPC_URL", kRestart, kShown, BB_CONFIG(rpc.url)},
      {"ws_url", T::kWsUrl, "THEBLOCK_WS_URL", kRestart, kShown, BB_CONFIG(rpc.ws_url)},
      {"auth_token", T::kToken, "THEBLOCK_AUTH_TOKEN", kRestart, kSecret,
       BB_CONFIG(rpc.auth_token)},
      {"rpc.connect_timeout_ms", T::kInt, nullptr, kRestart, kShown,
       BB_CONFIG(rpc.connect_timeout_ms), 1, INT_MAX, "an integer", kMsExpected},
      {"rpc.timeout_ms", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(rpc.timeout_ms), 1, INT_MAX,
       "an integer", kMsExpected},
      {"rpc.retries", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(rpc.retries), 0, 10,
       "an integer", "an integer from 0 to 10"},
      {"rpc.backoff_initial_ms", T::kInt, nullptr, kRestart, kShown,
       BB_CONFIG(rpc.backoff_initial_ms), 1, INT_MAX, "an integer", kMsExpected},
      {"rpc.backoff_max_ms", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(rpc.backoff_max_ms), 1,
       INT_MAX, "an integer", kMsExpected},
      {"rpc.max_requests_per_second", T::kNumber, nullptr, kRestart, kShown,
       BB_CONFIG(rpc.max_requests_per_second)},
      {"rpc.burst", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(rpc.burst), 1, INT_MAX,
       "an integer", "an integer of at least 1"},
      {"rpc.max_connections", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(rpc.max_connections), 1,
       1024, "an integer", "an integer from 1 to 1024"},
      {"rpc.max_response_bytes", T::kInt, nullptr, kRestart, kShown,
       BB_CONFIG(rpc.max_response_bytes), 1024, INT64_MAX, "an integer",
       "an integer of at least 1024 (bytes)"},
      {"rpc.share_ms", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(rpc.share_ms), 0, 1000,
       "an integer", "an integer from 0 to 1000 (milliseconds)"},
      {"rpc.tls_ca_file", T::kPath, "BLOCK_BUSTER_RPC_TLS_CA_FILE", kRestart, kShown,
       BB_CONFIG(rpc.tls_ca_file)},
      // --- what the agent serves
      {"http.host", T::kHost, "BLOCK_BUSTER_HTTP_HOST", kRestart, kShown, BB_CONFIG(http.host)},
      {"http.port", T::kInt, "BLOCK_BUSTER_HTTP_PORT", kRestart, kShown, BB_CONFIG(http.port), 0,
       65535, "a port", kPortExpected},
      {"http.cors_origins", T::kOriginList, nullptr, kRestart, kShown, BB_CONFIG(cors_origins)},
      {"http.tls.cert_file", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(http.tls_cert_file)},
      {"http.tls.key_file", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(http.tls_key_file)},
      {"http.metrics_port", T::kInt, nullptr, kRestart, kShown, BB_CONFIG(metrics_port), -1, 65535,
       "a port", "an integer from 0 to 65535, or -1 for no port of its own"},
      {"ws.host", T::kHost, "BLOCK_BUSTER_WS_HOST", kRestart, kShown, BB_CONFIG(ws.host)},
      {"ws.port", T::kInt, "BLOCK_BUSTER_WS_PORT", kRestart, kShown, BB_CONFIG(ws.port), 0, 65535,
       "a port", kPortExpected},
      {"ws.feature_port", T::kInt, "BLOCK_BUSTER_FEATURE_WS_PORT", kRestart, kShown,
       BB_CONFIG(feature_ws.port), 0, 65535, "a port", kPortExpected},
      {"ws.tls.cert_file", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(ws.tls_cert_file)},
      {"ws.tls.key_file", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(ws.tls_key_file)},
      {"ws.compression", T::kBool, nullptr, kRestart, kShown, BB_CONFIG(ws_compression)},
      {"web.host", T::kHost, "BLOCK_BUSTER_WEB_HOST", kRestart, kShown, BB_CONFIG(web.host)},
      {"web.port", T::kInt, "BLOCK_BUSTER_WEB_PORT", kRestart, kShown, BB_CONFIG(web.port), -1,
       65535, "a port", "an integer from 0 to 65535, or -1 to disable the web server"},
      {"web.root", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(web_root)},
      {"web.tls.cert_file", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(web.tls_cert_file)},
      {"web.tls.key_file", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(web.tls_key_file)},
      {"web.grafana_url", T::kOptionalUrl, nullptr, kRestart, kShown,
       BB_CONFIG(web_page.grafana_url)},
      {"web.last_block_warn_seconds", T::kInt, nullptr, kRestart, kShown,
       BB_CONFIG(web_page.last_block_warn_seconds), 1, 86400, "an integer", kSecondsExpected},
      {"web.last_block_critical_seconds", T::kInt, nullptr, kRestart, kShown,
       BB_CONFIG(web_page.last_block_critical_seconds), 1, 86400, "an integer", kSecondsExpected},
      // --- files and logging
      {"plugin_dir", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(plugin_dir)},
      {"plugin_dirs", T::kPathList, nullptr, kRestart, kShown, BB_CONFIG(plugin_dirs)},
      {"state_dir", T::kPath, nullptr, kRestart, kShown, BB_CONFIG(state_dir)},
      {"log_level", T::kLogLevel, "BLOCK_BUSTER_LOG_LEVEL", kLive, kShown, BB_CONFIG(log_level)},
      {"log_format", T::kLogFormat, "BLOCK_BUSTER_LOG_FORMAT", kRestart, kShown,
       BB_CONFIG(log_format)},
      // --- plugins
      {"plugins", T::kPlugins, nullptr, kLive, kShown, BB_CONFIG(plugins)},
      // --- who may use what the agent serves: hashes only, never shown
      {"auth.api.bearer_sha256", T::kHashList, nullptr, kRestart, kSecret,
       BB_CONFIG(auth.api.bearer_sha256)},
      {"auth.api.basic", T::kBasicUsers, nullptr, kRestart, kSecret, BB_CONFIG(auth.api.basic)},
      {"auth.metrics.bearer_sha256", T::kHashList, "METRICS_AUTH_TOKEN", kRestart, kSecret,
       BB_CONFIG(auth.metrics.bearer_sha256)},
      {"auth.metrics.basic", T::kBasicUsers, nullptr, kRestart, kSecret,
       BB_CONFIG(auth.metrics.basic)},
      {"auth.ws.bearer_sha256", T::kHashList, nullptr, kRestart, kSecret,
       BB_CONFIG(auth.ws.bearer_sha256)},
      {"auth.ws.basic", T::kBasicUsers, nullptr, kRestart, kSecret, BB_CONFIG(auth.ws.basic)},
      // --- history the agent keeps for the page
      {"history.window", T::kDuration, nullptr, kRestart, kShown,
       BB_CONFIG(history_window_seconds)},
  };
  return keys;
}

const std::vector<PluginKey>& pluginKeys() {
  using T = KeyType;
  static const std::vector<PluginKey> keys = {
      {"enabled", T::kBool, nullptr, kLive, kShown, BB_PLUGIN(enabled)},
      {"interval_ms", T::kInt, nullptr, kLive, kShown, BB_PLUGIN(interval_ms), 100, 3600000,
       "an integer", "an integer from 100 to 3600000 (milliseconds between collections)"},
      {"timeout_ms", T::kInt, nullptr, kLive, kShown, BB_PLUGIN(timeout_ms), 0, INT_MAX,
       "an integer", "an integer of at least 0 (milliseconds; 0 = the plugin's interval_ms)"},
      {"isolation", T::kIsolation, nullptr, kLive, kShown, BB_PLUGIN(isolation)},
      {"options", T::kOptions, nullptr, kLive, kShown, BB_PLUGIN(options_json)},
  };
  return keys;
}

#undef BB_PLUGIN
#undef BB_CONFIG
#undef BB_MEMBER

const ConfigKey* findConfigKey(const std::string& path) {
  for (const ConfigKey& key : configKeys())
    if (path == key.path) return &key;
  return nullptr;
}

std::vector<std::string> sectionChildren(const std::string& section) {
  const std::string prefix = section.empty() ? "" : section + ".";
  std::vector<std::string> out;
  for (const ConfigKey& key : configKeys()) {
    const std::string path = key.path;
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    std::string name = path.substr(prefix.size(), path.find('.', prefix.size()) - prefix.size());
    if (out.empty() || out.back() != name) out.push_back(name);
  }
  return out;
}

namespace {

std::string shortestDouble(double d) {
  char buf[40];
  if (d == static_cast<double>(static_cast<int64_t>(d)) && d > -1e15 && d < 1e15)
    return std::to_string(static_cast<int64_t>(d));  // 20, not 2e+01
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) break;
  }
  return buf;
}

struct DefaultText {
  std::string operator()(const int* v) const { return std::to_string(*v); }
  std::string operator()(const int64_t* v) const { return std::to_string(*v); }
  std::string operator()(const double* v) const { return shortestDouble(*v); }
  std::string operator()(const bool* v) const { return *v ? "true" : "false"; }
  std::string operator()(const std::string* v) const { return v->empty() ? "\"\"" : *v; }
  std::string operator()(const std::vector<std::string>* v) const {
    std::string out = "[";
    for (const std::string& item : *v) out += (out.size() > 1 ? ", \"" : "\"") + item + "\"";
    return out + "]";
  }
  std::string operator()(const std::vector<AuthSurface::BasicUser>* v) const {
    return v->empty() ? "[]" : "[...]";
  }
  std::string operator()(const std::map<std::string, PluginConfig>* v) const {
    return v->empty() ? "{}" : "{...}";
  }
};

}  // namespace

std::string defaultText(const ConfigKey& key) {
  Config defaults;
  return std::visit(DefaultText{}, key.field(defaults));
}

std::string defaultText(const PluginKey& key) {
  PluginConfig defaults;
  return std::visit(DefaultText{}, key.field(defaults));
}

bool sameValue(const ConfigKey& key, const Config& a, const Config& b) {
  // Only read through the fields: the const_casts never write.
  Field x = key.field(const_cast<Config&>(a));
  Field y = key.field(const_cast<Config&>(b));
  return std::visit(
      [&](auto* p) {
        using P = decltype(p);
        return *p == *std::get<P>(y);
      },
      x);
}

void copyValue(const ConfigKey& key, Config& to, const Config& from) {
  Field x = key.field(to);
  Field y = key.field(const_cast<Config&>(from));
  std::visit(
      [&](auto* p) {
        using P = decltype(p);
        *p = *std::get<P>(y);
      },
      x);
}

std::vector<std::string> changedKeys(const Config& a, const Config& b) {
  std::vector<std::string> out;
  for (const ConfigKey& key : configKeys())
    if (!sameValue(key, a, b)) out.emplace_back(key.path);
  return out;
}

bool operator==(const PluginConfig& a, const PluginConfig& b) {
  for (const PluginKey& key : pluginKeys()) {
    Field x = key.field(const_cast<PluginConfig&>(a));
    Field y = key.field(const_cast<PluginConfig&>(b));
    bool same = std::visit(
        [&](auto* p) {
          using P = decltype(p);
          if constexpr (std::is_same_v<P, std::map<std::string, PluginConfig>*>) {
            return false;  // no plugin key holds plugins
          } else {
            return *p == *std::get<P>(y);
          }
        },
        x);
    if (!same) return false;
  }
  return true;
}

bool operator==(const Config& a, const Config& b) {
  return changedKeys(a, b).empty() && a.feature_ws.host == b.feature_ws.host;
}

}  // namespace bb
