// Loading the config (config.h): the sources in order, the YAML walk and the environment, both
// driven by the key table of config/schema.h; the readers of single values are config_values.cc.
#include "config/config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <functional>
#include <set>
#include <stdexcept>

#include "config/config_values.h"
#include "config/schema.h"

extern char** environ;

namespace bb {
namespace {

using namespace config_detail;  // NOLINT(google-build-using-namespace): this file's own helpers

constexpr char kEnvironmentSource[] = "environment";
// Bounds on what a config file can make the loader do (docs/security.md, "Bounded input").
constexpr size_t kMaxConfigBytes = size_t{1024} * 1024;  // the file

// Keys people put in the wrong place; the generic "same name elsewhere" search misses these.
const std::pair<const char*, const char*> kKeyAliases[] = {
    {"rpc.url", "rpc_url"},
    {"ws.url", "ws_url"},
    {"token", "auth_token"},
    {"rpc.token", "auth_token"},
    {"http.cors", "http.cors_origins"},
    {"cors", "http.cors_origins"},
    {"plugins_dir", "plugin_dir"},
    {"web_root", "web.root"},
    {"loglevel", "log_level"},
};

const char* const kBasicUserKeys[] = {"user", "password_sha256"};

std::string join(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& name : names) out += (out.empty() ? "" : ", ") + name;
  return out;
}

// Every key and section of the schema, the top level first, then in table order.
const std::vector<std::string>& allKeyPaths() {
  static const std::vector<std::string> paths = [] {
    std::vector<std::string> out;
    for (const ConfigKey& key : configKeys()) {
      const std::string path = key.path;
      for (size_t dot = path.find('.'); dot != std::string::npos; dot = path.find('.', dot + 1))
        if (std::find(out.begin(), out.end(), path.substr(0, dot)) == out.end())
          out.push_back(path.substr(0, dot));
      out.push_back(path);
    }
    auto depth = [](const std::string& p) { return std::count(p.begin(), p.end(), '.'); };
    std::stable_sort(out.begin(), out.end(), [&](const std::string& a, const std::string& b) {
      return depth(a) < depth(b);
    });
    return out;
  }();
  return paths;
}

// A hint for an unknown key: the closest known key here, or the same name in another section.
std::string suggestKey(const std::string& section, const std::string& key,
                       const std::vector<std::string>& names) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (const std::string& name : names) {
    size_t d = editDistance(lower(key), name);
    if (d < best_distance) best_distance = d, best = name;
  }
  if (best_distance <= 2 && best_distance * 2 < key.size()) return best;
  const std::string full = childPath(section, key);
  for (const auto& alias : kKeyAliases)
    if (full == alias.first) return alias.second;
  for (const std::string& candidate : allKeyPaths()) {
    size_t dot = candidate.rfind('.');
    std::string last = dot == std::string::npos ? candidate : candidate.substr(dot + 1);
    if (last == lower(key) && candidate != full) return candidate;
  }
  return "";
}

// Visits a mapping's entries, rejecting non-scalar keys, duplicates and unknown keys.
void forEachKey(const Context& ctx, const YAML::Node& node, const std::string& path,
                const std::vector<std::string>& names,
                const std::function<void(const std::string&, const YAML::Node&)>& fn) {
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar())
      ctx.fail(path.empty() ? "(top level)" : path, "a key is not a plain name",
               "write keys as plain words, e.g. port");
    const std::string key = it->first.Scalar();
    const std::string where = childPath(path, key);
    if (std::find(names.begin(), names.end(), key) == names.end()) {
      std::string hint = suggestKey(path, key, names);
      ctx.fail(
          where, "unknown key",
          "known keys: " + join(names) + (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    if (!seen.insert(key).second) ctx.fail(where, "duplicate key", "keep one of the two entries");
    fn(key, it->second);
  }
}

// A section (`rpc:`, `http:`...): a mapping, or no value for "all defaults".
bool isSection(const Context& ctx, const YAML::Node& node, const std::string& path,
               const std::vector<std::string>& names) {
  if (node.IsNull()) return false;
  if (!node.IsMap()) {
    Value v = fromYaml(node);
    if (v.kind == Value::Kind::kSequence)
      ctx.fail(path, "found a list", "expected a mapping with keys " + join(names));
    ctx.fail(path, "found " + echo(v.text), "expected a mapping with keys " + join(names));
  }
  return true;
}

// ---- rules across keys, checked once their section is read -----------------------------------

void checkTls(const Context& ctx, const std::string& where, const Listener& listener) {
  if (listener.tls_cert_file.empty() == listener.tls_key_file.empty()) return;
  // Name the key that is missing, e.g. "ws.tls.key_file: missing while ws.tls.cert_file is set".
  const bool no_key = listener.tls_key_file.empty();
  ctx.fail(
      where + (no_key ? ".key_file" : ".cert_file"),
      std::string("missing while ") + where + (no_key ? ".cert_file" : ".key_file") + " is set",
      "give both PEM files (certificate and private key) for TLS, or neither for no TLS");
}

struct SectionRule {
  const char* section;
  void (*check)(const Context& ctx, const Config& config);
};

const SectionRule kSectionRules[] = {
    {"rpc",
     [](const Context& ctx, const Config& c) {
       if (c.rpc.backoff_max_ms < c.rpc.backoff_initial_ms)
         ctx.fail("rpc.backoff_max_ms",
                  std::to_string(c.rpc.backoff_max_ms) + " is less than rpc.backoff_initial_ms (" +
                      std::to_string(c.rpc.backoff_initial_ms) + ")",
                  "expected backoff_max_ms >= backoff_initial_ms");
     }},
    {"http.tls", [](const Context& ctx, const Config& c) { checkTls(ctx, "http.tls", c.http); }},
    {"ws.tls", [](const Context& ctx, const Config& c) { checkTls(ctx, "ws.tls", c.ws); }},
    {"web.tls", [](const Context& ctx, const Config& c) { checkTls(ctx, "web.tls", c.web); }},
    {"web",
     [](const Context& ctx, const Config& c) {
       const Config::WebPage& page = c.web_page;
       if (page.last_block_critical_seconds <= page.last_block_warn_seconds)
         ctx.fail("web.last_block_critical_seconds",
                  std::to_string(page.last_block_critical_seconds) +
                      " is not above web.last_block_warn_seconds (" +
                      std::to_string(page.last_block_warn_seconds) + ")",
                  "make the red threshold larger than the amber one");
     }},
};

// ---- one value, by its type --------------------------------------------------------------------

template <class Obj>
IntRule intRule(const KeySpec<Obj>& key) {
  return {key.min, key.max, key.noun, key.expected};
}

// A scalar type's value from `v` into `field`; false for the types that are not scalars.
template <class Obj>
bool readScalar(const Context& ctx, const KeySpec<Obj>& key, const std::string& path,
                const Value& v, Field field) {
  auto text = [&]() -> std::string& { return *std::get<std::string*>(field); };
  switch (key.type) {
    case KeyType::kInt: {
      const int64_t n = readInt(ctx, path, v, intRule(key));
      if (auto* p = std::get_if<int*>(&field))
        **p = static_cast<int>(n);
      else
        *std::get<int64_t*>(field) = n;
      return true;
    }
    case KeyType::kNumber:
      *std::get<double*>(field) = readRate(ctx, path, v);
      return true;
    case KeyType::kBool:
      *std::get<bool*>(field) = readBool(ctx, path, v);
      return true;
    case KeyType::kUrl:
    case KeyType::kWsUrl:
      text() = readUrl(ctx, path, v, key.type == KeyType::kWsUrl);
      return true;
    case KeyType::kOptionalUrl:
      text() = v.kind == Value::Kind::kNull || v.text.empty() ? "" : readUrl(ctx, path, v, false);
      return true;
    case KeyType::kToken:
      // Never echo the value: only its shape is described.
      if (v.kind != Value::Kind::kNull && v.kind != Value::Kind::kPlain &&
          v.kind != Value::Kind::kQuoted)
        failKind(ctx, path, Value{v.kind, ""}, "the bearer token as a string");
      checkToken(ctx, path, v.text);
      text() = v.text;
      return true;
    case KeyType::kHost:
      text() = readHost(ctx, path, v);
      return true;
    case KeyType::kPath:
      text() = readPath(ctx, path, v);
      return true;
    case KeyType::kLogLevel:
      text() = readLogLevel(ctx, path, v);
      return true;
    case KeyType::kLogFormat:
      text() = readLogFormat(ctx, path, v);
      return true;
    case KeyType::kIsolation: {
      const std::string expected = "inprocess or process";
      std::string mode = readString(ctx, path, v, expected, false);
      if (mode != "inprocess" && mode != "process")
        ctx.fail(path, echo(mode) + " is not an isolation mode", "expected " + expected);
      text() = mode;
      return true;
    }
    case KeyType::kDuration: {
      // Seconds (60 to 86400), or with a unit: "90m", "1h", "24h".
      const std::string expected =
          "seconds from 60 to 86400, or a number with s, m or h (e.g. 1h, 24h)";
      Value n_text = v;
      int64_t unit = 1;
      if (n_text.kind == Value::Kind::kPlain && !n_text.text.empty()) {
        const char last = n_text.text.back();
        if (last == 's' || last == 'm' || last == 'h') {
          unit = last == 'h' ? 3600 : last == 'm' ? 60 : 1;
          n_text.text.pop_back();
        }
      }
      const int64_t n = readInt(ctx, path, n_text, {1, 86400, "a duration", expected});
      if (n * unit < 60 || n * unit > 86400)
        ctx.fail(path, std::to_string(n * unit) + " s is out of range", "expected " + expected);
      *std::get<int64_t*>(field) = n * unit;
      return true;
    }
    default:
      return false;
  }
}

void parsePlugins(const Context& ctx, const YAML::Node& node,
                  std::map<std::string, PluginConfig>& plugins);

// The items of a list key, each read by `item` with its path ("http.cors_origins[1]").
// No value = no items.
template <class Fn>
void forEachItem(const Context& ctx, const std::string& path, const YAML::Node& node,
                 const Value& v, const std::string& expected, Fn item) {
  if (v.kind == Value::Kind::kNull) return;
  if (v.kind != Value::Kind::kSequence) failKind(ctx, path, v, expected);
  for (size_t i = 0; i < node.size(); ++i)
    item(path + "[" + std::to_string(i) + "]", node[i], fromYaml(node[i]));
}

template <class Obj>
void readValue(const Context& ctx, const KeySpec<Obj>& key, const std::string& path,
               const YAML::Node& node, Obj& object) {
  const Value v = fromYaml(node);
  Field field = key.field(object);
  if (readScalar(ctx, key, path, v, field)) return;
  switch (key.type) {
    case KeyType::kPathList: {
      auto& dirs = *std::get<std::vector<std::string>*>(field);
      dirs.clear();
      forEachItem(ctx, path, node, v, "a list of directories, e.g. [/opt/my-plugins]",
                  [&](const std::string& item, const YAML::Node&, const Value& iv) {
                    std::string dir = readPath(ctx, item, iv);
                    if (dir.empty() || dir.find(':') != std::string::npos)
                      ctx.fail(item, "an empty path or one with ':'",
                               "give each folder of plugins as a path without ':'");
                    dirs.push_back(std::move(dir));
                  });
      return;
    }
    case KeyType::kOriginList: {
      auto& origins = *std::get<std::vector<std::string>*>(field);
      origins.clear();
      forEachItem(ctx, path, node, v, "a list of origins, e.g. [\"*\"] or [\"https://x.com\"]",
                  [&](const std::string& item, const YAML::Node&, const Value& iv) {
                    origins.push_back(readOrigin(ctx, item, iv));
                  });
      return;
    }
    case KeyType::kHashList: {
      // The value is never echoed: it may be the token itself.
      auto& hashes = *std::get<std::vector<std::string>*>(field);
      forEachItem(ctx, path, node, Value{v.kind, ""}, "a list of \"sha256:<hex>\" token hashes",
                  [&](const std::string& item, const YAML::Node&, const Value& iv) {
                    hashes.push_back(readSha256(ctx, item, iv));
                  });
      return;
    }
    case KeyType::kBasicUsers: {
      auto& users = *std::get<std::vector<AuthSurface::BasicUser>*>(field);
      const std::string shape = "{user: NAME, password_sha256: \"sha256:<hex>\"}";
      const std::vector<std::string> names(std::begin(kBasicUserKeys), std::end(kBasicUserKeys));
      forEachItem(
          ctx, path, node, Value{v.kind, ""}, "a list of " + shape,
          [&](const std::string& item, const YAML::Node& n, const Value& iv) {
            if (!n.IsMap()) failKind(ctx, item, Value{iv.kind, ""}, "a mapping " + shape);
            AuthSurface::BasicUser user;
            forEachKey(ctx, n, item, names, [&](const std::string& k, const YAML::Node& un) {
              const Value uv = fromYaml(un);
              if (k == "password_sha256") {
                user.password_sha256 = readSha256(ctx, item + "." + k, uv);
              } else {
                if ((uv.kind != Value::Kind::kPlain && uv.kind != Value::Kind::kQuoted) ||
                    uv.text.empty() || uv.text.find(':') != std::string::npos)
                  failKind(ctx, item + ".user", uv, "a user name without ':'");
                user.user = uv.text;
              }
            });
            if (user.user.empty() || user.password_sha256.empty())
              ctx.fail(item, "needs both user and password_sha256", "give " + shape);
            users.push_back(std::move(user));
          });
      return;
    }
    case KeyType::kPlugins:
      parsePlugins(ctx, node, *std::get<std::map<std::string, PluginConfig>*>(field));
      return;
    case KeyType::kOptions:
      if (v.kind == Value::Kind::kNull) {
        *std::get<std::string*>(field) = "{}";
        return;
      }
      if (v.kind != Value::Kind::kMap)
        failKind(ctx, path, v, "a mapping of option names to values");
      *std::get<std::string*>(field) = optionsJson(ctx, node, path);
      return;
    default:
      throw std::logic_error(std::string("config key ") + key.path + ": type without a reader");
  }
}

// ---- sections
// ------------------------------------------------------------------------------------

bool validPluginName(const std::string& name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

PluginConfig parsePlugin(const Context& ctx, const YAML::Node& node, const std::string& path) {
  PluginConfig plugin;
  std::vector<std::string> names;
  for (const PluginKey& key : pluginKeys()) names.emplace_back(key.path);
  if (!isSection(ctx, node, path, names)) return plugin;
  forEachKey(ctx, node, path, names, [&](const std::string& key, const YAML::Node& child) {
    for (const PluginKey& spec : pluginKeys())
      if (key == spec.path) readValue(ctx, spec, childPath(path, key), child, plugin);
  });
  return plugin;
}

void parsePlugins(const Context& ctx, const YAML::Node& node,
                  std::map<std::string, PluginConfig>& plugins) {
  if (node.IsNull()) return;
  if (!node.IsMap())
    failKind(ctx, "plugins", fromYaml(node), "a mapping of plugin names to their settings");
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar())
      ctx.fail("plugins", "a plugin name is not a plain word", "write names like network");
    const std::string name = it->first.Scalar();
    const std::string path = "plugins." + name;
    if (!validPluginName(name))
      ctx.fail(path, "invalid plugin name",
               "expected lowercase letters, digits and '_', starting with a letter");
    if (!seen.insert(name).second) ctx.fail(path, "duplicate key", "keep one of the two entries");
    plugins[name] = parsePlugin(ctx, it->second, path);
  }
}

// A section of the schema ("" = the whole file): its keys by their type, its subsections in turn,
// then the rules across its keys.
void parseSection(const Context& ctx, const YAML::Node& node, const std::string& section,
                  Config& config) {
  const std::vector<std::string> names = sectionChildren(section);
  if (!section.empty() && !isSection(ctx, node, section, names)) return;
  forEachKey(ctx, node, section, names, [&](const std::string& key, const YAML::Node& child) {
    const std::string path = childPath(section, key);
    if (const ConfigKey* spec = findConfigKey(path))
      readValue(ctx, *spec, path, child, config);
    else
      parseSection(ctx, child, path, config);
  });
  for (const SectionRule& rule : kSectionRules)
    if (section == rule.section) rule.check(ctx, config);
}

// ---- files -----------------------------------------------------------------------------------

enum class ReadResult { kOk, kMissing };

// Reads a whole file. Missing (ENOENT/ENOTDIR) is reported unless `must_exist`; any other failure
// (permissions, a directory) is an error because the operator meant this file to be read.
ReadResult readFile(const std::string& path, bool must_exist, std::string* out) {
  auto fail = [&](int err) -> ReadResult {
    if (!must_exist && (err == ENOENT || err == ENOTDIR)) {
      return ReadResult::kMissing;
    }
    throw ConfigError(oneLine(path + ": cannot read: " + std::strerror(err) +
                              "; check the path and its permissions"));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; only a regular file is read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return fail(errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    return fail(err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ConfigError(oneLine(path + ": not a regular file (a device or FIFO)" +
                              "; point --config at a YAML file"));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::close(fd);
      return fail(err);
    }
    if (n == 0) {
      break;
    }
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > kMaxConfigBytes) {
      ::close(fd);
      throw ConfigError(oneLine(path + ": larger than " + std::to_string(kMaxConfigBytes / 1024) +
                                " KiB, which no config needs; check the path"));
    }
  }
  ::close(fd);
  return ReadResult::kOk;
}

}  // namespace

Config parseConfig(const std::string& yaml_text, const std::string& source_name) {
  Context ctx{source_name, secretsInText(yaml_text)};
  // yaml-cpp 0.7 (Debian 12) can loop forever, allocating, in LoadAll() on some malformed input
  // (found by tests/fuzz; fixed upstream in yaml-cpp PR 1319). So parse the first document
  // only, and count the documents by their "---" markers at column 0.
  std::vector<YAML::Node> documents;
  size_t markers_after_content = 0;
  {
    bool content = false;
    size_t start = 0;
    while (start < yaml_text.size()) {
      size_t end = yaml_text.find('\n', start);
      if (end == std::string::npos) end = yaml_text.size();
      std::string_view line(yaml_text.data() + start, end - start);
      bool marker = line.substr(0, 3) == "---" &&
                    (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
      if (marker && content) ++markers_after_content;
      size_t first = line.find_first_not_of(" \t\r");
      if (!marker && first != std::string_view::npos && line[first] != '#') content = true;
      start = end + 1;
    }
  }
  try {
    documents.push_back(YAML::Load(yaml_text));
    if (documents[0].IsNull() && markers_after_content == 0) documents.clear();
  } catch (const YAML::ParserException& e) {
    ctx.fail(
        "line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1),
        e.msg,
        "fix the YAML syntax there (indentation, ':' after keys, closing quotes and brackets)");
  } catch (const YAML::Exception& e) {
    ctx.fail("(top level)", e.msg, "fix the YAML syntax");
  }
  Config config;
  config.source = source_name;
  if (markers_after_content > 0) {
    ctx.fail("(top level)",
             "the file holds " + std::to_string(markers_after_content + 1) + " YAML documents",
             "keep one document (remove the '---' separators)");
  }
  if (documents.empty() || documents[0].IsNull()) {
    return config;
  }
  const YAML::Node& root = documents[0];
  if (!root.IsMap()) {
    ctx.fail("(top level)", root.IsSequence() ? "found a list" : "found a single value",
             "expected a mapping of keys such as rpc_url: http://localhost:9933");
  }
  // The parsed token too (the text scan misses block scalars and escapes), before any key is
  // validated, since auth_token may come after the key that is wrong.
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "auth_token" && it->second.IsScalar() &&
        !it->second.Scalar().empty()) {
      ctx.secrets.push_back(it->second.Scalar());
    }
  }
  parseSection(ctx, root, "", config);
  config.feature_ws.host = config.ws.host;
  return config;
}

void applyEnvironment(Config& config, const std::map<std::string, std::string>& env) {
  Context ctx{kEnvironmentSource, {}};
  if (!config.rpc.auth_token.empty()) ctx.secrets.push_back(config.rpc.auth_token);
  auto token = env.find("THEBLOCK_AUTH_TOKEN");
  if (token != env.end() && !token->second.empty()) ctx.secrets.push_back(token->second);

  for (const ConfigKey& key : configKeys()) {
    if (key.env == nullptr) continue;
    // An empty variable counts as unset: `VAR=` in a compose file or unit means "no override".
    auto it = env.find(key.env);
    if (it == env.end() || it->second.empty()) continue;
    const std::string& s = it->second;
    if (key.type == KeyType::kHashList) {
      // METRICS_AUTH_TOKEN gives the token, as the Python server takes it: its hash replaces the
      // bearer tokens of the surface (basic users stay).
      checkToken(ctx, key.env, s);
      *std::get<std::vector<std::string>*>(key.field(config)) = {sha256Text(s)};
    } else if (!readScalar(ctx, key, key.env, fromEnv(s), key.field(config))) {
      throw std::logic_error(std::string("config key ") + key.path + ": no environment reader");
    }
    config.env_overrides.emplace_back(key.env, key.path);
  }
  config.feature_ws.host = config.ws.host;
}

Config loadConfig(const LoadOptions& options) {
  std::string text;
  Config config;
  if (options.explicit_path) {
    if (options.explicit_path->empty()) {
      throw ConfigError(
          "--config: empty path; give the configuration file's path, e.g. "
          "--config /etc/block-buster/config.yaml");
    }
    readFile(*options.explicit_path, true, &text);
    config = parseConfig(text, *options.explicit_path);
  } else {
    std::vector<std::string> candidates;
    if (!options.home.empty()) {
      candidates.push_back(options.home + "/.block-buster/config.yaml");
    }
    if (!options.system_path.empty()) {
      candidates.push_back(options.system_path);
    }
    bool found = false;
    for (const std::string& path : candidates) {
      if (readFile(path, false, &text) == ReadResult::kOk) {
        config = parseConfig(text, path);
        found = true;
        break;
      }
    }
    if (!found) {
      config = Config{};
    }
  }
  applyEnvironment(config, options.env);
  return config;
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* eq = std::strchr(*entry, '=');
    if (eq == nullptr) {
      continue;
    }
    env.emplace(std::string(*entry, static_cast<size_t>(eq - *entry)), std::string(eq + 1));
  }
  return env;
}

}  // namespace bb
