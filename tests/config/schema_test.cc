// The config schema (config/schema.h) is the one list of keys: operator==, --check-config's
// description, the environment, the reload policy and the shipped docs all follow it. Each test
// walks every key, so a key added to the table is covered without a new test.
#include "config/schema.h"

#include <gtest/gtest.h>

#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "config/config.h"

namespace bb {
void PrintTo(const Config& c, std::ostream* os);  // config_test.cc
}  // namespace bb

namespace {

using bb::Config;
using bb::ConfigKey;
using bb::KeyType;

// A valid value for `key` other than its default; the cross-key rules still hold.
void setSample(const ConfigKey& key, Config& c) {
  bb::Field field = key.field(c);
  switch (key.type) {
    case KeyType::kInt: {
      auto bump = [&](int64_t v) { return v < key.max ? v + 1 : v - 1; };
      if (auto* p = std::get_if<int*>(&field))
        **p = static_cast<int>(bump(**p));
      else
        *std::get<int64_t*>(field) = bump(*std::get<int64_t*>(field));
      return;
    }
    case KeyType::kNumber:
      *std::get<double*>(field) = 12.5;
      return;
    case KeyType::kBool:
      *std::get<bool*>(field) = !*std::get<bool*>(field);
      return;
    case KeyType::kUrl:
    case KeyType::kOptionalUrl:
      *std::get<std::string*>(field) = "https://node.example:8443/rpc";
      return;
    case KeyType::kWsUrl:
      *std::get<std::string*>(field) = "wss://node.example:9944";
      return;
    case KeyType::kToken:
      *std::get<std::string*>(field) = "sample-token-1234";
      return;
    case KeyType::kHost:
      *std::get<std::string*>(field) = "127.0.0.9";
      return;
    case KeyType::kPath:
      *std::get<std::string*>(field) = "/srv/a path";
      return;
    case KeyType::kPathList:
      *std::get<std::vector<std::string>*>(field) = {"/opt/a", "/opt/b"};
      return;
    case KeyType::kOriginList:
      *std::get<std::vector<std::string>*>(field) = {"https://a.example", "*"};
      return;
    case KeyType::kLogLevel:
      *std::get<std::string*>(field) = "debug";
      return;
    case KeyType::kLogFormat:
      *std::get<std::string*>(field) = "json";
      return;
    case KeyType::kIsolation:
      *std::get<std::string*>(field) = "process";
      return;
    case KeyType::kDuration:
      *std::get<int64_t*>(field) = 7200;
      return;
    case KeyType::kHashList:
      *std::get<std::vector<std::string>*>(field) = {"sha256:" + std::string(64, 'a')};
      return;
    case KeyType::kBasicUsers:
      *std::get<std::vector<bb::AuthSurface::BasicUser>*>(field) = {
          {"ops", "sha256:" + std::string(64, 'b')}};
      return;
    case KeyType::kPlugins: {
      bb::PluginConfig p;
      p.enabled = false;
      p.interval_ms = 5000;
      p.isolation = "process";
      p.options_json = "{\"a\": [1, \"42\", 2.5, true, null], \"b\": {\"c\": \"x: y\"}}";
      (*std::get<std::map<std::string, bb::PluginConfig>*>(field))["p1"] = p;
      return;
    }
    case KeyType::kOptions:
      *std::get<std::string*>(field) = "{\"n\": 1}";
      return;
  }
}

// Environment text for `key` that differs from its default.
std::string envSample(const ConfigKey& key) {
  switch (key.type) {
    case KeyType::kInt:
      return std::to_string(key.max > 6000 ? 6001 : key.max);
    case KeyType::kUrl:
      return "https://node.example:8443/rpc";
    case KeyType::kWsUrl:
      return "wss://node.example:9944";
    case KeyType::kHost:
      return "127.0.0.9";
    case KeyType::kPath:
      return "/etc/x.pem";
    case KeyType::kLogLevel:
      return "debug";
    case KeyType::kLogFormat:
      return "json";
    default:
      return "a-token-value";
  }
}

TEST(ConfigSchema, PathsAreUniqueAndSectionsContiguous) {
  std::set<std::string> seen;
  std::string previous_section = "-";
  std::set<std::string> closed;
  for (const ConfigKey& key : bb::configKeys()) {
    EXPECT_TRUE(seen.insert(key.path).second) << key.path;
    const std::string path = key.path;
    const std::string top = path.substr(0, path.find('.'));
    // The description and the messages list a section's keys together.
    if (top != previous_section) {
      EXPECT_EQ(closed.count(top), 0u) << top << " is split in the table";
      closed.insert(previous_section);
      previous_section = top;
    }
  }
  EXPECT_EQ(bb::sectionChildren(""),
            (std::vector<std::string>{"rpc_url", "ws_url", "auth_token", "rpc", "http", "ws", "web",
                                      "plugin_dir", "plugin_dirs", "state_dir", "log_level",
                                      "log_format", "plugins", "auth", "history"}));
}

TEST(ConfigSchema, EqualityComparesEveryKeyAndOnlyTheValues) {
  for (const ConfigKey& key : bb::configKeys()) {
    Config c;
    setSample(key, c);
    EXPECT_NE(c, Config{}) << key.path;
    EXPECT_EQ(bb::changedKeys(Config{}, c), std::vector<std::string>{key.path});
    Config back;
    bb::copyValue(key, back, c);
    EXPECT_EQ(back, c) << key.path;
  }
  Config from_file = bb::parseConfig("", "/etc/block-buster/config.yaml");
  from_file.env_overrides.emplace_back("X", "y");
  EXPECT_EQ(from_file, Config{});  // where the values came from is not compared
}

TEST(ConfigSchema, EveryShownKeyIsDescribedAndReadsBack) {
  for (const ConfigKey& key : bb::configKeys()) {
    if (key.secret) continue;
    Config c;
    setSample(key, c);
    const std::string path = key.path;
    if (path.find(".tls.") != std::string::npos) {  // both files or neither
      const std::string section = path.substr(0, path.rfind('.') + 1);
      for (const char* file : {"cert_file", "key_file"})
        setSample(*bb::findConfigKey(section + file), c);
    }
    c.feature_ws.host = c.ws.host;  // as the loader sets it
    const std::string d = bb::describeConfig(c);
    Config back = bb::parseConfig(d, "described");
    EXPECT_EQ(back, c) << key.path << "\n" << d;
  }
}

TEST(ConfigSchema, SecretsAreNeverDescribed) {
  for (const ConfigKey& key : bb::configKeys()) {
    if (!key.secret) continue;
    Config c;
    setSample(key, c);
    const std::string d = bb::describeConfig(c);
    EXPECT_EQ(d.find("sample-token-1234"), std::string::npos) << d;
    EXPECT_EQ(d.find(std::string(64, 'a')), std::string::npos) << d;
    EXPECT_EQ(d.find(std::string(64, 'b')), std::string::npos) << d;
    EXPECT_NO_THROW(bb::parseConfig(d, "described")) << d;
  }
}

TEST(ConfigSchema, EveryVariableOverridesItsKeyAlone) {
  size_t variables = 0;
  for (const ConfigKey& key : bb::configKeys()) {
    if (key.env == nullptr) continue;
    ++variables;
    Config c;
    bb::applyEnvironment(c, {{key.env, envSample(key)}});
    EXPECT_EQ(bb::changedKeys(Config{}, c), std::vector<std::string>{key.path}) << key.env;
    ASSERT_EQ(c.env_overrides.size(), 1u) << key.env;
    EXPECT_EQ(c.env_overrides[0], std::make_pair(std::string(key.env), std::string(key.path)));
  }
  EXPECT_EQ(variables, 14u);  // docs/configuration.md lists the same fourteen
}

TEST(ConfigSchema, OnlyLogLevelAndPluginsApplyLive) {
  // host/config_reload.cc applies these on SIGHUP and names every other key that changed.
  std::vector<std::string> live;
  for (const ConfigKey& key : bb::configKeys())
    if (key.reload == bb::Reload::kLive) live.emplace_back(key.path);
  EXPECT_EQ(live, (std::vector<std::string>{"log_level", "plugins"}));
}

// ---- the shipped file and the docs
// ---------------------------------------------------------------

std::string readSource(const std::string& relative) {
  std::ifstream in(std::string(BB_TEST_SOURCE_DIR) + "/" + relative);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::vector<std::string> cells(const std::string& row) {
  std::vector<std::string> out;
  std::stringstream in(row.substr(1));
  std::string cell;
  while (std::getline(in, cell, '|')) {
    size_t b = cell.find_first_not_of(' '), e = cell.find_last_not_of(' ');
    out.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
  }
  return out;
}

// docs/configuration.md: every key has one row, `| `path` | type | `default` | `VARIABLE` | ...`,
// in a table headed "| key | type | default | environment |", and every such row is a key.
TEST(ConfigSchema, TheDocsListEveryKeyWithItsDefaultAndVariable) {
  const std::string docs = readSource("docs/configuration.md");
  ASSERT_FALSE(docs.empty()) << "docs/configuration.md not found";
  std::map<std::string, std::vector<std::string>> rows;
  std::stringstream lines(docs);
  std::string line;
  bool in_key_table = false;
  while (std::getline(lines, line)) {
    if (line.rfind("| key | type | default | environment |", 0) == 0) {
      in_key_table = true;
      continue;
    }
    if (line.rfind("|", 0) != 0) {
      in_key_table = false;
      continue;
    }
    if (!in_key_table || line.rfind("| ---", 0) == 0) continue;
    std::vector<std::string> c = cells(line);
    ASSERT_GE(c.size(), 5u) << line;
    ASSERT_TRUE(c[0].size() > 2 && c[0].front() == '`' && c[0].back() == '`') << line;
    const std::string path = c[0].substr(1, c[0].size() - 2);
    EXPECT_TRUE(rows.emplace(path, c).second) << "documented twice: " << path;
  }
  for (const ConfigKey& key : bb::configKeys()) {
    auto it = rows.find(key.path);
    if (it == rows.end()) {
      ADD_FAILURE() << "docs/configuration.md has no row for " << key.path;
      continue;
    }
    EXPECT_EQ(it->second[2], "`" + bb::defaultText(key) + "`") << key.path;
    EXPECT_EQ(it->second[3], key.env ? "`" + std::string(key.env) + "`" : "") << key.path;
    rows.erase(it);
  }
  for (const bb::PluginKey& key : bb::pluginKeys()) {
    const std::string path = std::string("plugins.NAME.") + key.path;
    auto it = rows.find(path);
    if (it == rows.end()) {
      ADD_FAILURE() << "docs/configuration.md has no row for " << path;
      continue;
    }
    EXPECT_EQ(it->second[2], "`" + bb::defaultText(key) + "`") << path;
    EXPECT_EQ(it->second[3], "") << path;
    rows.erase(it);
  }
  for (const auto& [path, row] : rows) ADD_FAILURE() << "not a key of the schema: " << path;
}

// The environment table of docs/configuration.md names each variable of the schema with its key.
TEST(ConfigSchema, TheDocsListEveryVariable) {
  const std::string docs = readSource("docs/configuration.md");
  std::map<std::string, std::string> documented;  // variable -> key cell
  std::regex row(R"(^\| `([A-Z_]+)` \| `([a-z0-9_.]+)`)");
  std::stringstream lines(docs);
  std::string line;
  std::smatch m;
  while (std::getline(lines, line))
    if (std::regex_search(line, m, row)) documented[m[1]] = m[2];
  for (const ConfigKey& key : bb::configKeys()) {
    if (key.env == nullptr) continue;
    EXPECT_EQ(documented[key.env], key.path) << key.env;
    documented.erase(key.env);
  }
  for (const auto& [variable, path] : documented) ADD_FAILURE() << "stale variable: " << variable;
}

// etc/config.yaml: every key is there (the commented examples of auth: and plugins: included),
// with its variable on its line. ConfigParse.ShippedDefaultFileEqualsBuiltInDefaults checks
// that its values are the defaults and that it holds no unknown key.
TEST(ConfigSchema, TheShippedFileShowsEveryKey) {
  const std::string etc = readSource("etc/config.yaml");
  ASSERT_FALSE(etc.empty()) << "etc/config.yaml not found";
  for (const ConfigKey& key : bb::configKeys()) {
    const std::string path = key.path;
    const std::string leaf = path.substr(path.rfind('.') + 1);
    std::stringstream lines(etc);
    std::string line;
    bool found = false;
    while (std::getline(lines, line)) {
      const size_t at = line.find(leaf + ":");
      if (at == std::string::npos ||
          (at > 0 && std::isalnum(static_cast<unsigned char>(line[at - 1]))) ||
          (at > 0 && line[at - 1] == '_'))
        continue;
      found = key.env == nullptr || line.find(std::string("(") + key.env) != std::string::npos;
      if (found) break;
    }
    EXPECT_TRUE(found) << "etc/config.yaml: no line for " << path
                       << (key.env ? std::string(" naming (") + key.env + ")" : "");
  }
  for (const bb::PluginKey& key : bb::pluginKeys())
    EXPECT_NE(etc.find(std::string(key.path) + ":"), std::string::npos) << key.path;
}

}  // namespace
