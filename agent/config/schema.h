// The agent's config schema: one table of keys that drives parsing (config.cc), environment
// overrides, the description --check-config prints (describe.cc), reload diffs
// (host/config_reload.cc), Config's operator== and the test that etc/config.yaml and
// docs/configuration.md match it. Adding a key = one Config member + one row in schema.cc.
#pragma once

#include <map>
#include <string>
#include <variant>
#include <vector>

#include "config/config.h"

namespace bb {

/// How a key's value is written and checked (config_values.h holds the readers).
enum class KeyType {
  kInt,          ///< an integer within `range`
  kNumber,       ///< a number > 0 and <= 1000 (requests per second)
  kBool,         ///< true or false
  kUrl,          ///< an http:// or https:// URL
  kWsUrl,        ///< a ws:// or wss:// URL
  kOptionalUrl,  ///< an http:// or https:// URL, or "" for none
  kToken,        ///< the node's bearer token: a secret, never echoed
  kHost,         ///< an address or host name to listen on
  kPath,         ///< a path, "" = the built-in location
  kPathList,     ///< a list of folders (no ':')
  kOriginList,   ///< a list of CORS origins
  kLogLevel,     ///< debug | info | warn | error
  kLogFormat,    ///< text | json
  kIsolation,    ///< inprocess | process
  kDuration,     ///< seconds 60..86400, or with s, m or h
  kHashList,     ///< a list of "sha256:<hex>" (the environment gives the token: its hash is kept)
  kBasicUsers,   ///< a list of {user, password_sha256}
  kPlugins,      ///< plugin name -> PluginConfig (pluginKeys())
  kOptions,      ///< a plugin's options: any mapping, kept as JSON
};

/// When a changed value takes effect.
enum class Reload {
  kLive,     ///< SIGHUP applies it
  kRestart,  ///< only a restart does; SIGHUP names the key and keeps the running value
};

/// Where a key's value lives in its struct.
using Field =
    std::variant<int*, int64_t*, double*, bool*, std::string*, std::vector<std::string>*,
                 std::vector<AuthSurface::BasicUser>*, std::map<std::string, PluginConfig>*>;

/// One key of a struct `Obj` (Config, or PluginConfig under plugins.<name>).
template <class Obj>
struct KeySpec {
  const char* path;  ///< "http.port"; sections are the dotted prefixes
  KeyType type;
  const char* env;  ///< the environment variable that overrides it, or nullptr
  Reload reload;
  bool secret;                  ///< never shown: redacted (auth_token) or described by shape (auth)
  Field (*field)(Obj& object);  ///< the member it fills
  /// kInt: bounds and the words of "'x' is not <noun>; expected <expected>".
  int64_t min = 0;
  int64_t max = 0;
  const char* noun = "";
  const char* expected = "";
};
using ConfigKey = KeySpec<Config>;
using PluginKey = KeySpec<PluginConfig>;

/// Every key of Config, in the order the file's sections and messages list them.
const std::vector<ConfigKey>& configKeys();
/// The keys of one plugins.<name> entry.
const std::vector<PluginKey>& pluginKeys();
/// The key with this path, or nullptr.
const ConfigKey* findConfigKey(const std::string& path);

/// The names directly under `section` ("" = the top level), in table order: keys and sections.
std::vector<std::string> sectionChildren(const std::string& section);

/// A key's built-in value as docs/configuration.md writes it: 5000, http://localhost:9933, "",
/// ["*"], [], {}, true.
std::string defaultText(const ConfigKey& key);
std::string defaultText(const PluginKey& key);

/// Whether `a` and `b` hold the same value for `key`.
bool sameValue(const ConfigKey& key, const Config& a, const Config& b);
/// Copies `key`'s value from `from` into `to`.
void copyValue(const ConfigKey& key, Config& to, const Config& from);

/// The paths of the keys whose value differs between `a` and `b`, in table order.
std::vector<std::string> changedKeys(const Config& a, const Config& b);

}  // namespace bb
