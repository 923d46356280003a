// The agent's configuration: YAML file + environment overrides + built-in defaults.
//
// The keys, their types, environment variables and reload policy are one table, config/schema.h;
// the structs below are what it fills. Only the config folder includes yaml-cpp. Loading throws
// ConfigError, whose what() is one line naming the file, the key and what is expected; main()
// prints it and exits non-zero.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace bb {

/// A configuration problem: one line, "<file>: <key>: <what is wrong>; <what to do>".
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct Listener {
  std::string host;
  int port = 0;  ///< 0 = any free port (tests); 1..65535 otherwise
  /// TLS (http, web, and ws for both WebSocket ports): PEM files; both "" = plain.
  std::string tls_cert_file{};
  std::string tls_key_file{};
};

struct RpcConfig {
  std::string url = "http://localhost:9933";   ///< rpc_url / THEBLOCK_RPC_URL
  std::string ws_url = "ws://localhost:9944";  ///< ws_url / THEBLOCK_WS_URL
  std::string auth_token;                      ///< auth_token / THEBLOCK_AUTH_TOKEN (secret)
  int connect_timeout_ms = 2000;
  int timeout_ms = 5000;         ///< per attempt, send + receive
  int retries = 2;               ///< extra attempts after a transport error (never after an answer)
  int backoff_initial_ms = 100;  ///< first retry delay; doubles, with jitter, up to backoff_max_ms
  int backoff_max_ms = 2000;
  double max_requests_per_second = 20;                    ///< token-bucket rate cap toward the node
  int burst = 10;                                         ///< token-bucket capacity
  int max_connections = 8;                                ///< keep-alive pool size
  int64_t max_response_bytes = int64_t{8} * 1024 * 1024;  ///< larger replies are refused unread
  /// Identical calls (same method and params) share one request: one in flight, and a success
  /// for this long after it arrived. 0 = every call sends its own.
  int share_ms = 50;
  /// rpc.tls_ca_file / BLOCK_BUSTER_RPC_TLS_CA_FILE: the PEM CA file that an https:// rpc_url's
  /// certificate is verified against; "" = the system's CA store. Verification is always on.
  std::string tls_ca_file;
};

/// Who may use one surface (the API, /metrics, the WebSocket listeners). Both lists empty = open
/// to anyone who can reach the port (the behaviour without an `auth:` section). Only hashes are
/// held: a stolen config file does not give a working credential.
struct AuthSurface {
  /// Accepted bearer tokens, each "sha256:<64 lowercase hex digits>" of the token.
  std::vector<std::string> bearer_sha256;
  struct BasicUser {
    std::string user;
    std::string password_sha256;  ///< "sha256:<64 lowercase hex digits>" of the password
    bool operator==(const BasicUser& o) const {
      return user == o.user && password_sha256 == o.password_sha256;
    }
  };
  std::vector<BasicUser> basic;
  bool open() const { return bearer_sha256.empty() && basic.empty(); }
};

struct AuthConfig {
  AuthSurface api;      ///< the REST API of the main port, including its WebSocket paths
  AuthSurface metrics;  ///< /metrics of the main port
  AuthSurface ws;       ///< the WebSocket listeners (ws.port and ws.feature_port)
};

struct PluginConfig {
  bool enabled = true;
  int interval_ms = 2000;               ///< the guide's refresh
  int timeout_ms = 0;                   ///< collect deadline; 0 = interval_ms
  std::string isolation = "inprocess";  ///< "inprocess" | "process"
  std::string options_json = "{}";      ///< plugins.<name>.options as a JSON object
};

/// Every key of pluginKeys() (config/schema.h) equal.
bool operator==(const PluginConfig& a, const PluginConfig& b);
inline bool operator!=(const PluginConfig& a, const PluginConfig& b) { return !(a == b); }

struct Config {
  std::string source = "built-in defaults";  ///< the file read, or "built-in defaults"
  RpcConfig rpc;
  Listener http{"0.0.0.0", 5000};        ///< BLOCK_BUSTER_HTTP_HOST / _PORT
  Listener ws{"0.0.0.0", 5001};          ///< BLOCK_BUSTER_WS_HOST / _PORT
  Listener feature_ws{"0.0.0.0", 5002};  ///< host = ws.host; BLOCK_BUSTER_FEATURE_WS_PORT
  /// ws.compression: accept permessage-deflate from WebSocket clients that offer it.
  bool ws_compression = true;
  Listener web{"0.0.0.0", 4173};  ///< BLOCK_BUSTER_WEB_HOST / _PORT; port -1 = off
  int metrics_port = -1;          ///< http.metrics_port: /metrics alone on its own port; -1 = off
  std::string web_root;           ///< "" = <exe>/../share/blockbuster/web
  std::string plugin_dir;         ///< "" = <exe>/../lib/blockbuster/plugins
  /// More folders of plugins, loaded beside plugin_dir's (e.g. one's own next to the built-in).
  std::vector<std::string> plugin_dirs;
  std::string state_dir;  ///< "" = $HOME/.block-buster/state
  std::vector<std::string> cors_origins{"*"};
  /// web.grafana_url and the last-block tile's thresholds, passed to the page.
  struct WebPage {
    std::string grafana_url;  ///< "" = no "Open in Grafana" link
    int last_block_warn_seconds = 30;
    int last_block_critical_seconds = 120;
  } web_page;
  int64_t history_window_seconds = 3600;  ///< history.window
  AuthConfig auth;                        ///< auth.api / auth.metrics / auth.ws; absent = open
  std::string log_level = "info";         ///< debug | info | warn | error
  std::string log_format = "text";        ///< text | json (BLOCK_BUSTER_LOG_FORMAT)
  std::map<std::string, PluginConfig> plugins;  ///< by plugin name; absent = defaults
  /// Environment variables that overrode a value, in the order applied: {variable, key path},
  /// e.g. {"BLOCK_BUSTER_HTTP_PORT", "http.port"}. Shown by describeConfig().
  std::vector<std::pair<std::string, std::string>> env_overrides;
};

/// The same effective values: every key of configKeys() (config/schema.h) equal. Where the
/// values came from (`source`, `env_overrides`) is not compared, so that a file that repeats the
/// defaults equals Config{}.
bool operator==(const Config& a, const Config& b);
inline bool operator!=(const Config& a, const Config& b) { return !(a == b); }

struct LoadOptions {
  std::optional<std::string> explicit_path;  ///< --config FILE
  std::map<std::string, std::string> env;    ///< environment (tests pass their own)
  std::string home;                          ///< $HOME; "" = no home lookup
  std::string system_path = "/etc/block-buster/config.yaml";
};

/// Loads the config: --config FILE, else ~/.block-buster/config.yaml, else the system path,
/// else built-in defaults; then the environment overrides. Files are not merged: the first one
/// found is the whole file configuration. A home or system file that exists but cannot be read
/// is an error, not skipped. Throws ConfigError. Reentrant (reads only the files and `options`).
Config loadConfig(const LoadOptions& options);

/// Parses YAML text as if read from `source_name` (no environment applied). Throws ConfigError.
/// Reentrant.
Config parseConfig(const std::string& yaml_text, const std::string& source_name);

/// Applies the environment variables of the schema's keys (the guide's, and METRICS_AUTH_TOKEN of
/// the Python server, whose hash goes in auth.metrics.bearer_sha256), in the table's order; an
/// empty value counts as unset. Records each in `config.env_overrides`. Throws ConfigError naming
/// the variable; `config` may then be partly updated and should be discarded. Reentrant.
void applyEnvironment(Config& config, const std::map<std::string, std::string>& env);

/// The effective config as YAML (yaml-cpp's emitter, every key of the schema in its order), for
/// --check-config: auth_token and URL credentials "<redacted>", auth: described by its shape
/// only. The first line is a comment naming the source and the environment overrides; the rest
/// parses back with parseConfig() into an equal Config. Reentrant.
std::string describeConfig(const Config& config);

/// The process environment as a map. Reads `environ`: do not call while another thread may call
/// setenv()/putenv().
std::map<std::string, std::string> processEnvironment();

}  // namespace bb
