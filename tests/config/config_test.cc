// Tests for the configuration loader: sources and their precedence, the schema, every error
// message (one line, naming the file and the key), options as JSON, redaction of the token.
#include "config/config.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/process.h"

namespace bb {
// gtest shows a Config that differs as its description.
void PrintTo(const Config& c, std::ostream* os) { *os << "\n" << describeConfig(c); }
}  // namespace bb

namespace {

using bb::Config;
using bb::ConfigError;
using bb::LoadOptions;

// The message of the ConfigError `fn` throws; fails the test if it throws nothing.
template <typename Fn>
std::string errorOf(Fn fn) {
  try {
    fn();
  } catch (const ConfigError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no ConfigError thrown";
  return "";
}

std::string parseError(const std::string& yaml, const std::string& source = "/tmp/c.yaml") {
  return errorOf([&] { bb::parseConfig(yaml, source); });
}

std::string envError(const std::map<std::string, std::string>& env) {
  return errorOf([&] {
    Config c;
    bb::applyEnvironment(c, env);
  });
}

// describeConfig() without its first (source) line: the values alone. Tests compare configs both
// ways: with == (every key of the schema) and through what --check-config prints.
std::string values(const Config& c) {
  std::string d = bb::describeConfig(c);
  return d.substr(d.find('\n') + 1);
}

// A fake $HOME and system path inside one temporary directory.
struct Sources {
  bbtest::TempDir dir;
  std::string home = dir.file("home");
  std::string system = dir.file("etc-config.yaml");
  Sources() { std::filesystem::create_directories(home + "/.block-buster"); }
  std::string homeFile() const { return home + "/.block-buster/config.yaml"; }
  void writeHome(const std::string& text) const { std::ofstream(homeFile()) << text; }
  void writeSystem(const std::string& text) const { std::ofstream(system) << text; }
  LoadOptions options() const {
    LoadOptions o;
    o.home = home;
    o.system_path = system;
    return o;
  }
};

// ---- sources and precedence -------------------------------------------------------------------

TEST(ConfigLoad, NoFileGivesBuiltInDefaults) {
  Sources s;
  Config c = bb::loadConfig(s.options());
  EXPECT_EQ(c.source, "built-in defaults");
  EXPECT_EQ(values(c), values(Config{}));
  EXPECT_EQ(c, Config{});
  EXPECT_EQ(c.rpc.url, "http://localhost:9933");
  EXPECT_EQ(c.rpc.ws_url, "ws://localhost:9944");
  EXPECT_EQ(c.http.port, 5000);
  EXPECT_EQ(c.ws.port, 5001);
  EXPECT_EQ(c.feature_ws.port, 5002);
  EXPECT_EQ(c.web.port, 4173);
  EXPECT_TRUE(c.env_overrides.empty());
}

TEST(ConfigLoad, ExplicitBeatsHomeBeatsSystem) {
  Sources s;
  bbtest::TempDir other;
  other.write("explicit.yaml", "http:\n  port: 6001\n");
  s.writeHome("http:\n  port: 6002\n");
  s.writeSystem("http:\n  port: 6003\n");

  LoadOptions o = s.options();
  o.explicit_path = other.file("explicit.yaml");
  Config c = bb::loadConfig(o);
  EXPECT_EQ(c.http.port, 6001);
  EXPECT_EQ(c.source, other.file("explicit.yaml"));

  c = bb::loadConfig(s.options());
  EXPECT_EQ(c.http.port, 6002);
  EXPECT_EQ(c.source, s.homeFile());

  std::filesystem::remove(s.homeFile());
  c = bb::loadConfig(s.options());
  EXPECT_EQ(c.http.port, 6003);
  EXPECT_EQ(c.source, s.system);

  std::filesystem::remove(s.system);
  c = bb::loadConfig(s.options());
  EXPECT_EQ(c.http.port, 5000);
  EXPECT_EQ(c.source, "built-in defaults");
}

TEST(ConfigLoad, EmptyHomeMeansNoHomeLookup) {
  Sources s;
  s.writeHome("http:\n  port: 6002\n");
  s.writeSystem("http:\n  port: 6003\n");
  LoadOptions o = s.options();
  o.home = "";
  EXPECT_EQ(bb::loadConfig(o).http.port, 6003);
}

TEST(ConfigLoad, FilesAreNotMerged) {
  // The first file found is the whole configuration: keys it omits take built-in defaults,
  // not the system file's values.
  Sources s;
  s.writeHome("http:\n  port: 6002\n");
  s.writeSystem("ws:\n  port: 6004\n");
  Config c = bb::loadConfig(s.options());
  EXPECT_EQ(c.http.port, 6002);
  EXPECT_EQ(c.ws.port, 5001);
}

TEST(ConfigLoad, MissingExplicitFileIsAnError) {
  Sources s;
  LoadOptions o = s.options();
  o.explicit_path = s.dir.file("nope.yaml");
  s.writeHome("http:\n  port: 6002\n");  // must not be used as a fallback
  EXPECT_EQ(errorOf([&] { bb::loadConfig(o); }),
            s.dir.file("nope.yaml") +
                ": cannot read: No such file or directory; check the path and its permissions");
}

TEST(ConfigLoad, EmptyExplicitPathIsAnError) {
  Sources s;
  LoadOptions o = s.options();
  o.explicit_path = "";
  EXPECT_EQ(errorOf([&] { bb::loadConfig(o); }),
            "--config: empty path; give the configuration file's path, e.g. --config "
            "/etc/block-buster/config.yaml");
}

TEST(ConfigLoad, DirectoryAsExplicitFileIsAnError) {
  Sources s;
  LoadOptions o = s.options();
  o.explicit_path = s.home;
  EXPECT_EQ(errorOf([&] { bb::loadConfig(o); }),
            s.home + ": cannot read: Is a directory; check the path and its permissions");
}

TEST(ConfigLoad, UnreadableHomeFileIsAnErrorNotSkipped) {
  if (geteuid() == 0) {
    GTEST_SKIP() << "root reads any file; permissions cannot be tested";
  }
  Sources s;
  s.writeHome("http:\n  port: 6002\n");
  s.writeSystem("http:\n  port: 6003\n");
  ASSERT_EQ(chmod(s.homeFile().c_str(), 0), 0);
  EXPECT_EQ(errorOf([&] { bb::loadConfig(s.options()); }),
            s.homeFile() + ": cannot read: Permission denied; check the path and its permissions");
}

TEST(ConfigLoad, HomeConfigThatIsADirectoryIsAnErrorNotSkipped) {
  // It exists, so the operator meant it: falling through to the system file would hide that.
  Sources s;
  std::filesystem::create_directories(s.homeFile());
  s.writeSystem("http:\n  port: 6003\n");
  EXPECT_EQ(errorOf([&] { bb::loadConfig(s.options()); }),
            s.homeFile() + ": cannot read: Is a directory; check the path and its permissions");
}

TEST(ConfigLoad, ErrorsInTheFileNameTheFile) {
  Sources s;
  s.writeHome("http:\n  port: 70000\n");
  EXPECT_EQ(
      errorOf([&] { bb::loadConfig(s.options()); }),
      s.homeFile() + ": http.port: 70000 is out of range; expected an integer from 0 to 65535");
}

TEST(ConfigLoad, EnvironmentOverridesTheFile) {
  Sources s;
  s.writeHome(
      "rpc_url: http://file-node:9933\n"
      "http:\n  host: 10.0.0.1\n  port: 6002\n"
      "log_level: debug\n");
  LoadOptions o = s.options();
  o.env = {{"THEBLOCK_RPC_URL", "https://env-node:443"},
           {"BLOCK_BUSTER_HTTP_PORT", "7000"},
           {"BLOCK_BUSTER_LOG_LEVEL", "warn"},
           {"UNRELATED", "x"}};
  Config c = bb::loadConfig(o);
  EXPECT_EQ(c.rpc.url, "https://env-node:443");
  EXPECT_EQ(c.http.port, 7000);
  EXPECT_EQ(c.http.host, "10.0.0.1");  // not overridden: the file's value stays
  EXPECT_EQ(c.log_level, "warn");
  std::vector<std::pair<std::string, std::string>> expected{
      {"THEBLOCK_RPC_URL", "rpc_url"},
      {"BLOCK_BUSTER_HTTP_PORT", "http.port"},
      {"BLOCK_BUSTER_LOG_LEVEL", "log_level"}};
  EXPECT_EQ(c.env_overrides, expected);
}

TEST(ConfigLoad, EnvironmentOverridesDefaults) {
  Sources s;
  LoadOptions o = s.options();
  o.env = {{"THEBLOCK_RPC_URL", "http://node:9933"}, {"THEBLOCK_WS_URL", "wss://node:9944"},
           {"THEBLOCK_AUTH_TOKEN", "tok-123"},       {"BLOCK_BUSTER_HTTP_HOST", "127.0.0.1"},
           {"BLOCK_BUSTER_HTTP_PORT", "0"},          {"BLOCK_BUSTER_WS_HOST", "::1"},
           {"BLOCK_BUSTER_WS_PORT", "5101"},         {"BLOCK_BUSTER_FEATURE_WS_PORT", "5102"},
           {"BLOCK_BUSTER_WEB_HOST", "127.0.0.2"},   {"BLOCK_BUSTER_WEB_PORT", "-1"},
           {"BLOCK_BUSTER_LOG_LEVEL", "ERROR"}};
  Config c = bb::loadConfig(o);
  EXPECT_EQ(c.source, "built-in defaults");
  EXPECT_EQ(c.rpc.url, "http://node:9933");
  EXPECT_EQ(c.rpc.ws_url, "wss://node:9944");
  EXPECT_EQ(c.rpc.auth_token, "tok-123");
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 0);
  EXPECT_EQ(c.ws.host, "::1");
  EXPECT_EQ(c.ws.port, 5101);
  EXPECT_EQ(c.feature_ws.host, "::1");  // the feature socket listens where ws does
  EXPECT_EQ(c.feature_ws.port, 5102);
  EXPECT_EQ(c.web.host, "127.0.0.2");
  EXPECT_EQ(c.web.port, -1);
  EXPECT_EQ(c.log_level, "error");
  EXPECT_EQ(c.env_overrides.size(), 11u);
}

TEST(ConfigLoad, EmptyEnvironmentValueIsIgnored) {
  Config c;
  bb::applyEnvironment(c, {{"BLOCK_BUSTER_HTTP_PORT", ""}, {"THEBLOCK_RPC_URL", ""}});
  EXPECT_EQ(c.http.port, 5000);
  EXPECT_EQ(c.rpc.url, "http://localhost:9933");
  EXPECT_TRUE(c.env_overrides.empty());
}

// ---- the schema -------------------------------------------------------------------------------

TEST(ConfigParse, GuideExampleLoadsAsIs) {
  // Verbatim from the guide's "Configuration File" section.
  Config c = bb::parseConfig(
      "rpc_url: http://localhost:9933\n"
      "ws_url: ws://localhost:9944\n"
      "auth_token: optional-token\n",
      "guide.yaml");
  EXPECT_EQ(c.rpc.url, "http://localhost:9933");
  EXPECT_EQ(c.rpc.ws_url, "ws://localhost:9944");
  EXPECT_EQ(c.rpc.auth_token, "optional-token");
  EXPECT_EQ(c.source, "guide.yaml");
}

TEST(ConfigParse, EmptyFileAndEmptySectionsAreDefaults) {
  EXPECT_EQ(values(bb::parseConfig("", "f")), values(Config{}));
  EXPECT_EQ(values(bb::parseConfig("# only a comment\n", "f")), values(Config{}));
  EXPECT_EQ(values(bb::parseConfig("plugins:\nrpc:\nhttp:\nws:\nweb:\n", "f")), values(Config{}));
  EXPECT_EQ(bb::parseConfig("", "f"), Config{});
  EXPECT_EQ(bb::parseConfig("# only a comment\n", "f"), Config{});
  EXPECT_EQ(bb::parseConfig("plugins:\nrpc:\nhttp:\nws:\nweb:\nauth:\nhistory:\n", "f"), Config{});
}

TEST(ConfigParse, TheRpcCaFileComesFromTheEnvironmentToo) {
  Config c;
  bb::applyEnvironment(c, {{"BLOCK_BUSTER_RPC_TLS_CA_FILE", "/etc/ssl/node-ca.pem"}});
  EXPECT_EQ(c.rpc.tls_ca_file, "/etc/ssl/node-ca.pem");
  ASSERT_EQ(c.env_overrides.size(), 1u);
  EXPECT_EQ(c.env_overrides[0].second, "rpc.tls_ca_file");
}

TEST(ConfigParse, EveryKey) {
  Config c = bb::parseConfig(R"(
rpc_url: https://node.example:8443/rpc
ws_url: wss://node.example:9944
auth_token: "s3cret"
rpc:
  connect_timeout_ms: 1500
  timeout_ms: 4000
  retries: 0
  backoff_initial_ms: 50
  backoff_max_ms: 800
  max_requests_per_second: 12.5
  burst: 3
  max_connections: 2
  max_response_bytes: 1048576
  share_ms: 0
  tls_ca_file: /etc/ssl/node-ca.pem
http:
  host: 127.0.0.1
  port: 15000
  cors_origins: ["http://localhost:4173", "https://dash.example.com"]
ws:
  host: 127.0.0.1
  port: 15001
  feature_port: 15002
web:
  host: 127.0.0.3
  port: -1
  root: /srv/web
plugin_dir: /opt/bb/plugins
state_dir: /var/lib/block-buster
log_level: debug
plugins:
  network:
    enabled: false
    interval_ms: 100
    timeout_ms: 50
    isolation: process
  energy_v2:
)",
                             "f");
  EXPECT_EQ(c.rpc.url, "https://node.example:8443/rpc");
  EXPECT_EQ(c.rpc.ws_url, "wss://node.example:9944");
  EXPECT_EQ(c.rpc.auth_token, "s3cret");
  EXPECT_EQ(c.rpc.connect_timeout_ms, 1500);
  EXPECT_EQ(c.rpc.timeout_ms, 4000);
  EXPECT_EQ(c.rpc.retries, 0);
  EXPECT_EQ(c.rpc.backoff_initial_ms, 50);
  EXPECT_EQ(c.rpc.backoff_max_ms, 800);
  EXPECT_DOUBLE_EQ(c.rpc.max_requests_per_second, 12.5);
  EXPECT_EQ(c.rpc.burst, 3);
  EXPECT_EQ(c.rpc.max_connections, 2);
  EXPECT_EQ(c.rpc.max_response_bytes, 1048576);
  EXPECT_EQ(c.rpc.share_ms, 0);
  EXPECT_EQ(c.rpc.tls_ca_file, "/etc/ssl/node-ca.pem");
  EXPECT_EQ(c.http.host, "127.0.0.1");
  EXPECT_EQ(c.http.port, 15000);
  EXPECT_EQ(c.cors_origins,
            (std::vector<std::string>{"http://localhost:4173", "https://dash.example.com"}));
  EXPECT_EQ(c.ws.host, "127.0.0.1");
  EXPECT_EQ(c.ws.port, 15001);
  EXPECT_EQ(c.feature_ws.host, "127.0.0.1");
  EXPECT_EQ(c.feature_ws.port, 15002);
  EXPECT_EQ(c.web.host, "127.0.0.3");
  EXPECT_EQ(c.web.port, -1);
  EXPECT_EQ(c.web_root, "/srv/web");
  EXPECT_EQ(c.plugin_dir, "/opt/bb/plugins");
  EXPECT_EQ(c.state_dir, "/var/lib/block-buster");
  EXPECT_EQ(c.log_level, "debug");
  ASSERT_EQ(c.plugins.size(), 2u);
  const bb::PluginConfig& n = c.plugins.at("network");
  EXPECT_FALSE(n.enabled);
  EXPECT_EQ(n.interval_ms, 100);
  EXPECT_EQ(n.timeout_ms, 50);
  EXPECT_EQ(n.isolation, "process");
  EXPECT_EQ(n.options_json, "{}");
  const bb::PluginConfig& e = c.plugins.at("energy_v2");  // no value: all defaults
  EXPECT_TRUE(e.enabled);
  EXPECT_EQ(e.interval_ms, 2000);
  EXPECT_EQ(e.timeout_ms, 0);
  EXPECT_EQ(e.isolation, "inprocess");
}

TEST(ConfigParse, HistoryWindowAndThePageKeys) {
  EXPECT_EQ(Config{}.history_window_seconds, 3600);
  EXPECT_EQ(bb::parseConfig("history:\n  window: 24h\n", "f").history_window_seconds, 86400);
  EXPECT_EQ(bb::parseConfig("history:\n  window: 90m\n", "f").history_window_seconds, 5400);
  EXPECT_EQ(bb::parseConfig("history:\n  window: 600\n", "f").history_window_seconds, 600);
  Config c = bb::parseConfig(
      "web:\n  grafana_url: https://grafana.example/d/bb\n  last_block_warn_seconds: 10\n"
      "  last_block_critical_seconds: 20\n",
      "f");
  EXPECT_EQ(c.web_page.grafana_url, "https://grafana.example/d/bb");
  EXPECT_EQ(c.web_page.last_block_warn_seconds, 10);
  EXPECT_EQ(c.web_page.last_block_critical_seconds, 20);
  EXPECT_EQ(values(bb::parseConfig(bb::describeConfig(c), "f")), values(c));
  EXPECT_EQ(bb::parseConfig(bb::describeConfig(c), "f"), c);
}

TEST(ConfigParse, EmptyCorsListIsAllowed) {
  EXPECT_TRUE(bb::parseConfig("http:\n  cors_origins: []\n", "f").cors_origins.empty());
}

TEST(ConfigParse, ShippedDefaultFileEqualsBuiltInDefaults) {
  // etc/config.yaml documents every key with its built-in default; this keeps the two in step.
  std::ifstream in(std::string(BB_TEST_SOURCE_DIR) + "/etc/config.yaml");
  ASSERT_TRUE(in) << "etc/config.yaml not found";
  std::stringstream text;
  text << in.rdbuf();
  EXPECT_EQ(values(bb::parseConfig(text.str(), "etc/config.yaml")), values(Config{}));
  EXPECT_EQ(bb::parseConfig(text.str(), "etc/config.yaml"), Config{});
}

// ---- options as JSON ---------------------------------------------------------------------------

std::string optionsOf(const std::string& options_yaml) {
  Config c = bb::parseConfig("plugins:\n  p:\n    options:\n" + options_yaml, "f");
  return c.plugins.at("p").options_json;
}

TEST(ConfigOptions, TypesArePreserved) {
  EXPECT_EQ(optionsOf("      int: 42\n"
                      "      negative: -7\n"
                      "      leading_zero: 007\n"
                      "      hex: 0x1F\n"
                      "      float: 2.5\n"
                      "      whole_float: 2.0\n"
                      "      exp: 1e3\n"
                      "      yes_bool: true\n"
                      "      no_bool: False\n"
                      "      quoted_int: \"42\"\n"
                      "      quoted_bool: 'true'\n"
                      "      tagged_str: !!str 5\n"
                      "      word: yes\n"
                      "      text: hello world\n"
                      "      null_value: null\n"
                      "      tilde: ~\n"
                      "      empty:\n"
                      "      list: [1, a, 1.5, false]\n"
                      "      nested: {a: {b: [x, {c: 1}]}}\n"
                      "      escapes: \"quote\\\" backslash\\\\ newline\\n tab\\t\"\n"),
            "{\"int\": 42, \"negative\": -7, \"leading_zero\": 7, \"hex\": 31, \"float\": 2.5, "
            "\"whole_float\": 2.0, \"exp\": 1000.0, \"yes_bool\": true, \"no_bool\": false, "
            "\"quoted_int\": \"42\", \"quoted_bool\": \"true\", \"tagged_str\": \"5\", "
            "\"word\": \"yes\", \"text\": \"hello world\", \"null_value\": null, \"tilde\": null, "
            "\"empty\": null, \"list\": [1, \"a\", 1.5, false], "
            "\"nested\": {\"a\": {\"b\": [\"x\", {\"c\": 1}]}}, "
            "\"escapes\": \"quote\\\" backslash\\\\ newline\\n tab\\t\"}");
}

TEST(ConfigOptions, EmptyOrNullOptionsAreAnEmptyObject) {
  EXPECT_EQ(optionsOf("      {}\n"), "{}");
  EXPECT_EQ(bb::parseConfig("plugins:\n  p:\n    options:\n", "f").plugins.at("p").options_json,
            "{}");
}

TEST(ConfigOptions, UnknownKeysInsideOptionsAreAllowed) {
  EXPECT_EQ(optionsOf("      anything_goes: 1\n      Even-This: 2\n"),
            "{\"anything_goes\": 1, \"Even-This\": 2}");
}

TEST(ConfigOptions, InfinityHasNoJsonForm) {
  EXPECT_EQ(parseError("plugins:\n  p:\n    options:\n      limit: .inf\n"),
            "/tmp/c.yaml: plugins.p.options.limit: .inf has no JSON equivalent; write a finite "
            "number, or quote it for a string");
}

TEST(ConfigOptions, OptionsMustBeAMapping) {
  EXPECT_EQ(parseError("plugins:\n  p:\n    options: [1, 2]\n"),
            "/tmp/c.yaml: plugins.p.options: found a list; expected a mapping of option names to "
            "values");
}

// ---- error messages ----------------------------------------------------------------------------

TEST(ConfigErrors, SyntaxErrorNamesLineAndColumn) {
  std::string msg = parseError("http:\n  port: 5000\n   host: x\n");
  EXPECT_EQ(msg.rfind("/tmp/c.yaml: line 3, column ", 0), 0u) << msg;
  EXPECT_NE(msg.find("; fix the YAML syntax"), std::string::npos) << msg;

  EXPECT_EQ(parseError("rpc_url: [http://x\nws_url: ws://y\n"),
            "/tmp/c.yaml: line 2, column 7: end of sequence flow not found; fix the YAML syntax "
            "there (indentation, ':' after keys, closing quotes and brackets)");
}

struct ErrorCase {
  const char* yaml;
  const char* expected;  // after "/tmp/c.yaml: "
};

class ConfigErrorCases : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigErrorCases, OneLineNamingFileAndKey) {
  std::string msg = parseError(GetParam().yaml);
  EXPECT_EQ(msg, std::string("/tmp/c.yaml: ") + GetParam().expected);
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(
    All, ConfigErrorCases,
    ::testing::Values(
        ErrorCase{"http:\n  port: 70000\n",
                  "http.port: 70000 is out of range; expected an integer from 0 to 65535"},
        ErrorCase{"http:\n  port: abc\n",
                  "http.port: 'abc' is not a port; expected an integer from 0 to 65535"},
        ErrorCase{"http:\n  port: \"5000\"\n",
                  "http.port: '5000' is a quoted string; expected an integer from 0 to 65535, "
                  "written without quotes"},
        ErrorCase{"http:\n  port: 99999999999999999999999\n",
                  "http.port: 99999999999999999999999 is out of range; expected an integer from 0 "
                  "to 65535"},
        ErrorCase{"http:\n  port:\n",
                  "http.port: missing value; expected an integer from 0 to 65535"},
        ErrorCase{"ws:\n  feature_port: -1\n",
                  "ws.feature_port: -1 is out of range; expected an integer from 0 to 65535"},
        ErrorCase{"web:\n  port: -2\n",
                  "web.port: -2 is out of range; expected an integer from 0 to 65535, or -1 to "
                  "disable the web server"},
        ErrorCase{"plugins:\n  network:\n    intervall_ms: 100\n",
                  "plugins.network.intervall_ms: unknown key; known keys: enabled, interval_ms, "
                  "timeout_ms, isolation, options (did you mean 'interval_ms'?)"},
        ErrorCase{"rpc_urll: http://x\n",
                  "rpc_urll: unknown key; known keys: rpc_url, ws_url, auth_token, rpc, http, ws, "
                  "web, plugin_dir, plugin_dirs, state_dir, log_level, log_format, plugins, auth, "
                  "history (did you mean "
                  "'rpc_url'?)"},
        ErrorCase{"port: 5000\n",
                  "port: unknown key; known keys: rpc_url, ws_url, auth_token, rpc, http, ws, "
                  "web, plugin_dir, plugin_dirs, state_dir, log_level, log_format, plugins, auth, "
                  "history (did you mean "
                  "'http.port'?)"},
        ErrorCase{"rpc:\n  url: http://x\n",
                  "rpc.url: unknown key; known keys: connect_timeout_ms, timeout_ms, retries, "
                  "backoff_initial_ms, backoff_max_ms, max_requests_per_second, burst, "
                  "max_connections, max_response_bytes, share_ms, tls_ca_file (did you mean "
                  "'rpc_url'?)"},
        ErrorCase{"http:\n  prot: 1\n",
                  "http.prot: unknown key; known keys: host, port, cors_origins, tls, metrics_port "
                  "(did you mean "
                  "'port'?)"},
        ErrorCase{"web:\n  zzz: 1\n",
                  "web.zzz: unknown key; known keys: host, port, root, tls, grafana_url, "
                  "last_block_warn_seconds, last_block_critical_seconds"},
        ErrorCase{"history:\n  window: 30\n",
                  "history.window: 30 s is out of range; expected seconds from 60 to 86400, or a "
                  "number with s, m or h (e.g. 1h, 24h)"},
        ErrorCase{"history:\n  window: 2d\n",
                  "history.window: '2d' is not a duration; expected seconds from 60 to 86400, or "
                  "a number with s, m or h (e.g. 1h, 24h)"},
        ErrorCase{"web:\n  last_block_warn_seconds: 60\n  last_block_critical_seconds: 60\n",
                  "web.last_block_critical_seconds: 60 is not above web.last_block_warn_seconds "
                  "(60); make the red threshold larger than the amber one"},
        ErrorCase{"web:\n  grafana_url: ftp://x\n",
                  "web.grafana_url: 'ftp://x' does not start with http:// or https://; expected "
                  "an http:// or https:// URL, e.g. http://localhost:9933"},
        ErrorCase{"http:\n  port: 1\n  port: 2\n",
                  "http.port: duplicate key; keep one of the two entries"},
        ErrorCase{"http: 5000\n",
                  "http: found '5000'; expected a mapping with keys host, port, cors_origins, tls, "
                  "metrics_port"},
        ErrorCase{"- a\n- b\n",
                  "(top level): found a list; expected a mapping of keys such as rpc_url: "
                  "http://localhost:9933"},
        ErrorCase{"rpc_url: localhost:9933\n",
                  "rpc_url: 'localhost:9933' does not start with http:// or https://; expected an "
                  "http:// or https:// URL, e.g. http://localhost:9933"},
        ErrorCase{"rpc_url: http://\n",
                  "rpc_url: 'http://' has no host; expected an http:// or https:// URL, e.g. "
                  "http://localhost:9933"},
        ErrorCase{"ws_url: http://localhost:9944\n",
                  "ws_url: 'http://localhost:9944' does not start with ws:// or wss://; expected "
                  "a ws:// or wss:// URL, e.g. ws://localhost:9944"},
        ErrorCase{"rpc_url: http://user:pw@host:1\nws_url: x\n",
                  "rpc_url: 'http://<redacted>@host:1' carries credentials (user@host); remove "
                  "them; the node's bearer token goes in auth_token (or THEBLOCK_AUTH_TOKEN)"},
        ErrorCase{"rpc_url: http://host:1\nws_url: x\n",
                  "ws_url: 'x' does not start with ws:// or wss://; expected a ws:// or wss:// "
                  "URL, e.g. ws://localhost:9944"},
        ErrorCase{"rpc_url: ftp://user:pw@host\n",
                  "rpc_url: 'ftp://<redacted>@host' does not start with http:// or https://; "
                  "expected an http:// or https:// URL, e.g. http://localhost:9933"},
        ErrorCase{"rpc:\n  timeout_ms: 0\n",
                  "rpc.timeout_ms: 0 is out of range; expected a positive integer (milliseconds)"},
        ErrorCase{"rpc:\n  connect_timeout_ms: -5\n",
                  "rpc.connect_timeout_ms: -5 is out of range; expected a positive integer "
                  "(milliseconds)"},
        ErrorCase{"rpc:\n  retries: 11\n",
                  "rpc.retries: 11 is out of range; expected an integer from 0 to 10"},
        ErrorCase{"rpc:\n  retries: 1.5\n",
                  "rpc.retries: '1.5' is not an integer; expected an integer from 0 to 10"},
        ErrorCase{"rpc:\n  max_requests_per_second: 0\n",
                  "rpc.max_requests_per_second: 0 is out of range; expected a number greater than "
                  "0 and at most 1000 (requests per second)"},
        ErrorCase{"rpc:\n  max_requests_per_second: 1000.5\n",
                  "rpc.max_requests_per_second: 1000.5 is out of range; expected a number greater "
                  "than 0 and at most 1000 (requests per second)"},
        ErrorCase{"rpc:\n  max_requests_per_second: fast\n",
                  "rpc.max_requests_per_second: 'fast' is not a number; expected a number greater "
                  "than 0 and at most 1000 (requests per second)"},
        ErrorCase{"rpc:\n  burst: 0\n",
                  "rpc.burst: 0 is out of range; expected an integer of at least 1"},
        ErrorCase{"rpc:\n  max_response_bytes: 1023\n",
                  "rpc.max_response_bytes: 1023 is out of range; expected an integer of at least "
                  "1024 (bytes)"},
        ErrorCase{"rpc:\n  backoff_initial_ms: 500\n  backoff_max_ms: 100\n",
                  "rpc.backoff_max_ms: 100 is less than rpc.backoff_initial_ms (500); expected "
                  "backoff_max_ms >= backoff_initial_ms"},
        ErrorCase{"log_level: verbose\n",
                  "log_level: 'verbose' is not a log level; expected one of debug, info, warn, "
                  "error"},
        ErrorCase{"log_level: warning\n", "log_level: 'warning' is not a log level; write warn"},
        ErrorCase{"http:\n  host: http://0.0.0.0\n",
                  "http.host: 'http://0.0.0.0' is a URL, not a host; expected an IP address or "
                  "host name to listen on, e.g. 0.0.0.0 or 127.0.0.1"},
        ErrorCase{"http:\n  host: 0.0.0.0:5000\n",
                  "http.host: '0.0.0.0:5000' includes a port; expected an IP address or host name "
                  "to listen on, e.g. 0.0.0.0 or 127.0.0.1; set the port with the port key"},
        ErrorCase{"http:\n  host: \"\"\n",
                  "http.host: empty value; expected an IP address or host name to listen on, e.g. "
                  "0.0.0.0 or 127.0.0.1"},
        ErrorCase{"http:\n  cors_origins: \"*\"\n",
                  "http.cors_origins: unexpected value '*'; expected a list of origins, e.g. "
                  "[\"*\"] or [\"https://x.com\"]"},
        ErrorCase{"http:\n  cors_origins: [\"*\", \"https://x.com/\"]\n",
                  "http.cors_origins[1]: 'https://x.com/' has a path; expected \"*\" or an origin "
                  "such as https://example.com:8080, with no trailing '/'"},
        ErrorCase{"http:\n  cors_origins: [example.com]\n",
                  "http.cors_origins[0]: 'example.com' is not an origin; expected \"*\" or an "
                  "origin such as https://example.com:8080"},
        ErrorCase{"plugin_dir: ~/plugins\n",
                  "plugin_dir: '~/plugins' starts with '~', which is not expanded; write the "
                  "absolute path, e.g. /home/USER/..."},
        ErrorCase{"state_dir: [a]\n",
                  "state_dir: found a list; expected a directory path, or \"\" for the built-in "
                  "location"},
        ErrorCase{"plugins: [network]\n",
                  "plugins: found a list; expected a mapping of plugin names to their settings"},
        ErrorCase{"plugins:\n  Network: {}\n",
                  "plugins.Network: invalid plugin name; expected lowercase letters, digits and "
                  "'_', starting with a letter"},
        ErrorCase{"plugins:\n  net-work: {}\n",
                  "plugins.net-work: invalid plugin name; expected lowercase letters, digits and "
                  "'_', starting with a letter"},
        ErrorCase{"plugins:\n  network:\n    enabled: yes\n",
                  "plugins.network.enabled: 'yes' is not a boolean; expected true or false"},
        ErrorCase{"plugins:\n  network:\n    enabled: \"true\"\n",
                  "plugins.network.enabled: 'true' is a quoted string; expected true or false, "
                  "written without quotes"},
        ErrorCase{"plugins:\n  network:\n    interval_ms: 99\n",
                  "plugins.network.interval_ms: 99 is out of range; expected an integer from 100 "
                  "to 3600000 (milliseconds between collections)"},
        ErrorCase{"plugins:\n  network:\n    interval_ms: 3600001\n",
                  "plugins.network.interval_ms: 3600001 is out of range; expected an integer from "
                  "100 to 3600000 (milliseconds between collections)"},
        ErrorCase{"plugins:\n  network:\n    timeout_ms: -1\n",
                  "plugins.network.timeout_ms: -1 is out of range; expected an integer of at "
                  "least 0 (milliseconds; 0 = the plugin's interval_ms)"},
        ErrorCase{"plugins:\n  network:\n    isolation: thread\n",
                  "plugins.network.isolation: 'thread' is not an isolation mode; expected "
                  "inprocess or process"},
        ErrorCase{"plugins:\n  network: 5\n",
                  "plugins.network: found '5'; expected a mapping with keys enabled, interval_ms, "
                  "timeout_ms, isolation, options"},
        ErrorCase{"log_level: |\n  info\n  debug\n",
                  "log_level: 'info\\ndebug\\n' is not a log level; expected one of debug, info, "
                  "warn, error"},
        ErrorCase{"a: 1\n---\nb: 2\n",
                  "(top level): the file holds 2 YAML documents; keep one document (remove the "
                  "'---' separators)"}));

// ---- the token never appears in an error -------------------------------------------------------

TEST(ConfigSecrets, TokenNeverInFileErrors) {
  const std::string token = "tok-SECRET-9f8e7d";
  std::vector<std::string> bad = {
      "auth_token: " + token + "\nlog_level: " + token + "\n",
      "log_level: " + token + "\nauth_token: '" + token + "'\n",  // token set after the bad key
      "auth_token: \"" + token + "\"\nhttp:\n  host: " + token + ":1\n",
      "auth_token: " + token + "\n" + token + ": 1\n",  // token as an unknown key
      "auth_token: " + token + "\nhttp:\n  port: [\n",  // syntax error
      "auth_token: [" + token + "]\n",                  // wrong type
      "auth_token: \"" + token + " x\"\n",              // a space in the token
      "rpc_url: https://" + token + "@node:1/\nauth_token: " + token + "\nws_url: bad\n",
      "log_level: " + token + "\nauth_token: " + token + "   # the node's token\n",
      "log_level: " + token + "\nauth_token: \"" + token + "\"  # quoted, then a comment\n",
      "log_level: \"tok-\\x53ECRET-9f8e7d\"\nauth_token: \"tok-\\x53ECRET-9f8e7d\"\n",  // escapes
  };
  for (const std::string& yaml : bad) {
    std::string msg = parseError(yaml);
    EXPECT_FALSE(msg.empty()) << yaml;
    EXPECT_EQ(msg.find(token), std::string::npos) << msg;
    EXPECT_EQ(msg.find("SECRET"), std::string::npos) << msg;
  }
}

TEST(ConfigSecrets, TokenNeverInEnvironmentErrors) {
  const std::string token = "envtok-SECRET-1234";
  EXPECT_EQ(envError({{"THEBLOCK_AUTH_TOKEN", token}, {"BLOCK_BUSTER_LOG_LEVEL", token}}),
            "environment: BLOCK_BUSTER_LOG_LEVEL: '<redacted>' is not a log level; expected one "
            "of debug, info, warn, error");
  EXPECT_EQ(envError({{"THEBLOCK_AUTH_TOKEN", token + "\n"}}),
            "environment: THEBLOCK_AUTH_TOKEN: the token contains a space or control character; "
            "expected the bearer token alone, on one line, without surrounding spaces");
  // A token from the file is also kept out of environment errors.
  Config c = bb::parseConfig("auth_token: " + token + "\n", "f");
  std::string msg = errorOf([&] { bb::applyEnvironment(c, {{"BLOCK_BUSTER_HTTP_PORT", token}}); });
  EXPECT_EQ(msg,
            "environment: BLOCK_BUSTER_HTTP_PORT: '<redacted>' is not a port; expected an integer "
            "from 0 to 65535");
}

// ---- environment validation --------------------------------------------------------------------

TEST(ConfigEnvironment, BadValuesNameTheVariable) {
  EXPECT_EQ(envError({{"BLOCK_BUSTER_HTTP_PORT", "abc"}}),
            "environment: BLOCK_BUSTER_HTTP_PORT: 'abc' is not a port; expected an integer from 0 "
            "to 65535");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_WS_PORT", "65536"}}),
            "environment: BLOCK_BUSTER_WS_PORT: 65536 is out of range; expected an integer from 0 "
            "to 65535");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_FEATURE_WS_PORT", "5002 "}}),
            "environment: BLOCK_BUSTER_FEATURE_WS_PORT: '5002 ' is not a port; expected an integer "
            "from 0 to 65535");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_WEB_PORT", "-5"}}),
            "environment: BLOCK_BUSTER_WEB_PORT: -5 is out of range; expected an integer from 0 to "
            "65535, or -1 to disable the web server");
  EXPECT_EQ(envError({{"THEBLOCK_RPC_URL", "localhost:9933"}}),
            "environment: THEBLOCK_RPC_URL: 'localhost:9933' does not start with http:// or "
            "https://; expected an http:// or https:// URL, e.g. http://localhost:9933");
  EXPECT_EQ(envError({{"THEBLOCK_WS_URL", "http://localhost:9944"}}),
            "environment: THEBLOCK_WS_URL: 'http://localhost:9944' does not start with ws:// or "
            "wss://; expected a ws:// or wss:// URL, e.g. ws://localhost:9944");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_HTTP_HOST", "http://0.0.0.0"}}),
            "environment: BLOCK_BUSTER_HTTP_HOST: 'http://0.0.0.0' is a URL, not a host; expected "
            "an IP address or host name to listen on, e.g. 0.0.0.0 or 127.0.0.1");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_WS_HOST", "a b"}}),
            "environment: BLOCK_BUSTER_WS_HOST: 'a b' contains whitespace; expected an IP address "
            "or host name to listen on, e.g. 0.0.0.0 or 127.0.0.1");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_WEB_HOST", "[::1]"}}),
            "environment: BLOCK_BUSTER_WEB_HOST: '[::1]' is bracketed; write an IPv6 address "
            "without brackets, e.g. ::");
  EXPECT_EQ(envError({{"BLOCK_BUSTER_LOG_LEVEL", "trace"}}),
            "environment: BLOCK_BUSTER_LOG_LEVEL: 'trace' is not a log level; expected one of "
            "debug, info, warn, error");
}

TEST(ConfigEnvironment, LoadConfigReportsEnvironmentErrors) {
  Sources s;
  s.writeHome("http:\n  port: 6002\n");
  LoadOptions o = s.options();
  o.env = {{"BLOCK_BUSTER_HTTP_PORT", "abc"}};
  EXPECT_EQ(errorOf([&] { bb::loadConfig(o); }),
            "environment: BLOCK_BUSTER_HTTP_PORT: 'abc' is not a port; expected an integer from 0 "
            "to 65535");
}

TEST(ConfigEnvironment, ProcessEnvironmentReadsEnviron) {
  ASSERT_EQ(setenv("BB_CONFIG_TEST_VAR", "a=b c", 1), 0);
  auto env = bb::processEnvironment();
  unsetenv("BB_CONFIG_TEST_VAR");
  ASSERT_EQ(env.count("BB_CONFIG_TEST_VAR"), 1u);
  EXPECT_EQ(env.at("BB_CONFIG_TEST_VAR"), "a=b c");  // split at the first '=' only
}

// ---- describeConfig ----------------------------------------------------------------------------

TEST(ConfigDescribe, RedactsTheToken) {
  Config c = bb::parseConfig("auth_token: very-secret-token\n", "/etc/bb.yaml");
  std::string d = bb::describeConfig(c);
  EXPECT_EQ(d.find("very-secret-token"), std::string::npos) << d;
  EXPECT_NE(d.find("auth_token: \"<redacted>\"\n"), std::string::npos) << d;

  std::string none = bb::describeConfig(Config{});
  EXPECT_NE(none.find("auth_token: \"\"\n"), std::string::npos) << none;
}

TEST(ConfigDescribe, HidesCredentialsInUrls) {
  // The loader refuses credentials in a URL (config/node_url.h); a Config built in code may
  // still hold some, and they are never shown.
  Config c;
  c.rpc.url = "https://user:pass@node:443/x";
  std::string d = bb::describeConfig(c);
  EXPECT_EQ(d.find("pass"), std::string::npos) << d;
  EXPECT_NE(d.find("rpc_url: \"https://<redacted>@node:443/x\""), std::string::npos) << d;
}

TEST(ConfigDescribe, FirstLineNamesSourceAndEnvironment) {
  Config c = bb::parseConfig("", "/etc/block-buster/config.yaml");
  EXPECT_EQ(bb::describeConfig(c).substr(0, bb::describeConfig(c).find('\n')),
            "# source: /etc/block-buster/config.yaml; no environment overrides");
  bb::applyEnvironment(c, {{"BLOCK_BUSTER_HTTP_PORT", "7000"}, {"THEBLOCK_AUTH_TOKEN", "t0k3n"}});
  std::string d = bb::describeConfig(c);
  EXPECT_EQ(d.substr(0, d.find('\n')),
            "# source: /etc/block-buster/config.yaml; overridden by environment: "
            "THEBLOCK_AUTH_TOKEN -> auth_token, BLOCK_BUSTER_HTTP_PORT -> http.port");
  EXPECT_EQ(d.find("t0k3n"), std::string::npos);
  EXPECT_NE(d.find("  port: 7000\n"), std::string::npos);
}

TEST(ConfigDescribe, ListsEveryKeyAndReadsBack) {
  const std::string yaml = R"(
rpc_url: https://node:1
rpc:
  retries: 4
  max_requests_per_second: 7.25
http:
  cors_origins: ["https://a.example", "*"]
web:
  port: -1
  root: "/srv/web with space"
plugins:
  storage:
    enabled: false
    options:
      paths: ["/a", "/b"]
      ratio: 0.1
      n: 3
      label: "x: \"y\""
)";
  Config c = bb::parseConfig(yaml, "f");
  std::string d = bb::describeConfig(c);
  for (const char* key : {"rpc_url:",
                          "ws_url:",
                          "auth_token:",
                          "rpc:",
                          "connect_timeout_ms:",
                          "timeout_ms:",
                          "retries:",
                          "backoff_initial_ms:",
                          "backoff_max_ms:",
                          "max_requests_per_second:",
                          "burst:",
                          "max_connections:",
                          "max_response_bytes:",
                          "share_ms:",
                          "http:",
                          "host:",
                          "port:",
                          "cors_origins:",
                          "ws:",
                          "feature_port:",
                          "web:",
                          "root:",
                          "plugin_dir:",
                          "state_dir:",
                          "log_level:",
                          "plugins:",
                          "enabled:",
                          "interval_ms:",
                          "isolation:",
                          "options:"}) {
    EXPECT_NE(d.find(key), std::string::npos) << key << "\n" << d;
  }
  Config back = bb::parseConfig(d, "described");
  EXPECT_EQ(values(back), values(c));
  EXPECT_EQ(back, c);
  EXPECT_EQ(back.plugins.at("storage").options_json, c.plugins.at("storage").options_json);
  EXPECT_EQ(c.plugins.at("storage").options_json,
            "{\"paths\": [\"/a\", \"/b\"], \"ratio\": 0.1, \"n\": 3, \"label\": \"x: \\\"y\\\"\"}");
  EXPECT_DOUBLE_EQ(back.rpc.max_requests_per_second, 7.25);
}

// ---- auth ---------------------------------------------------------------------------------------

const std::string kHashA = "sha256:" + std::string(64, 'a');
const std::string kHashB = "sha256:" + std::string(63, 'b') + "c";

TEST(ConfigAuth, AbsentMeansOpen) {
  Config c = bb::parseConfig("auth:\n", "f");
  EXPECT_TRUE(c.auth.api.open());
  EXPECT_TRUE(c.auth.metrics.open());
  EXPECT_TRUE(c.auth.ws.open());
}

TEST(ConfigAuth, ReadsEachSurfaceOnItsOwn) {
  Config c = bb::parseConfig("auth:\n  api:\n    bearer_sha256: [\"" + kHashA +
                                 "\"]\n    basic: [{user: ops, password_sha256: \"" +
                                 "SHA256:" + std::string(63, 'B') +
                                 "C\"}]\n  metrics: "
                                 "{bearer_sha256: [\"" +
                                 kHashB + "\"]}\n",
                             "f");
  ASSERT_EQ(c.auth.api.bearer_sha256.size(), 1u);
  EXPECT_EQ(c.auth.api.bearer_sha256[0], kHashA);
  ASSERT_EQ(c.auth.api.basic.size(), 1u);
  EXPECT_EQ(c.auth.api.basic[0].user, "ops");
  EXPECT_EQ(c.auth.api.basic[0].password_sha256, kHashB);  // normalised to lowercase
  ASSERT_EQ(c.auth.metrics.bearer_sha256.size(), 1u);
  EXPECT_TRUE(c.auth.ws.open());
}

TEST(ConfigAuth, RefusesAPlainTokenWithoutEchoingIt) {
  try {
    bb::parseConfig("auth:\n  api:\n    bearer_sha256: [my-plain-secret-token]\n", "/c.yaml");
    FAIL() << "a plain token was accepted as a hash";
  } catch (const bb::ConfigError& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.find("my-plain-secret-token"), std::string::npos) << msg;
    EXPECT_NE(msg.find("auth.api.bearer_sha256[0]"), std::string::npos) << msg;
    EXPECT_NE(msg.find("sha256sum"), std::string::npos) << msg;
  }
}

TEST(ConfigAuth, RefusesBadShapes) {
  EXPECT_THROW(bb::parseConfig("auth:\n  apy: {}\n", "f"), bb::ConfigError);
  EXPECT_THROW(bb::parseConfig("auth:\n  api: {bearer_sha256: \"" + kHashA + "\"}\n", "f"),
               bb::ConfigError);
  EXPECT_THROW(bb::parseConfig("auth:\n  ws: {basic: [{user: a}]}\n", "f"), bb::ConfigError);
  EXPECT_THROW(
      bb::parseConfig(
          "auth:\n  ws: {basic: [{user: \"a:b\", password_sha256: \"" + kHashA + "\"}]}\n", "f"),
      bb::ConfigError);
  EXPECT_THROW(bb::parseConfig("auth:\n  ws: {bearer_sha256: [\"sha256:abc\"]}\n", "f"),
               bb::ConfigError);
}

TEST(ConfigAuth, DescribeShowsTheShapeNeverTheHashes) {
  Config c =
      bb::parseConfig("auth:\n  api:\n    bearer_sha256: [\"" + kHashA +
                          "\"]\n    basic: [{user: ops, password_sha256: \"" + kHashB + "\"}]\n",
                      "f");
  std::string d = bb::describeConfig(c);
  EXPECT_EQ(d.find(std::string(64, 'a')), std::string::npos) << d;
  EXPECT_EQ(d.find(std::string(63, 'b')), std::string::npos) << d;
  EXPECT_NE(d.find("# api: 1 bearer token hash(es); basic users: [\"ops\"]"), std::string::npos)
      << d;
  EXPECT_NE(d.find("# metrics: open"), std::string::npos) << d;
  // Still parses: the description is a config file.
  EXPECT_NO_THROW(bb::parseConfig(d, "described"));
}

// ---- tls ----------------------------------------------------------------------------------------

TEST(ConfigTls, ReadsBothFilesPerListener) {
  Config c = bb::parseConfig(
      "http:\n  tls: {cert_file: /etc/bb/c.pem, key_file: /etc/bb/k.pem}\nweb:\n  tls:\n", "f");
  EXPECT_EQ(c.http.tls_cert_file, "/etc/bb/c.pem");
  EXPECT_EQ(c.http.tls_key_file, "/etc/bb/k.pem");
  EXPECT_EQ(c.web.tls_cert_file, "");
  Config back = bb::parseConfig(bb::describeConfig(c), "described");
  EXPECT_EQ(back.http.tls_key_file, "/etc/bb/k.pem");
  EXPECT_EQ(back, c);
}

TEST(ConfigTls, NeedsBothOrNeither) {
  try {
    bb::parseConfig("web:\n  tls: {cert_file: /c.pem}\n", "/c.yaml");
    FAIL() << "a certificate without a key was accepted";
  } catch (const bb::ConfigError& e) {
    EXPECT_NE(
        std::string(e.what()).find("web.tls.key_file: missing while web.tls.cert_file is set"),
        std::string::npos)
        << e.what();
  }
  // The WebSocket ports take TLS too (both at once), with the same rule.
  bb::Config c = bb::parseConfig("ws:\n  tls: {cert_file: /c, key_file: /k}\n", "f");
  EXPECT_EQ(c.ws.tls_cert_file, "/c");
  EXPECT_EQ(c.ws.tls_key_file, "/k");
  try {
    bb::parseConfig("ws:\n  tls: {key_file: /k}\n", "/c.yaml");
    FAIL() << "a key without a certificate was accepted";
  } catch (const bb::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("ws.tls.cert_file: missing while ws.tls.key_file is set"),
              std::string::npos)
        << e.what();
  }
}

// The error names the key to add, with the file it came from and how to fix it.
TEST(ConfigTls, WsCertificateWithoutKeyNamesWsTlsKeyFile) {
  try {
    bb::parseConfig("ws:\n  port: 5001\n  tls:\n    cert_file: /etc/bb/cert.pem\n", "/c.yaml");
    FAIL() << "ws.tls with a certificate and no key was accepted";
  } catch (const bb::ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("/c.yaml: ws.tls.key_file: missing while ws.tls.cert_file is set; ", 0),
              0u)
        << what;
    EXPECT_NE(what.find("give both PEM files"), std::string::npos) << what;
  }
  // Both keys: kept, for both WebSocket ports.
  bb::Config c = bb::parseConfig(
      "ws:\n  tls:\n    cert_file: /etc/bb/cert.pem\n    key_file: /etc/bb/key.pem\n", "f");
  EXPECT_EQ(c.ws.tls_cert_file, "/etc/bb/cert.pem");
  EXPECT_EQ(c.ws.tls_key_file, "/etc/bb/key.pem");
  // The http and web listeners are left plain by ws.tls.
  EXPECT_EQ(c.http.tls_cert_file, "");
  EXPECT_EQ(c.web.tls_cert_file, "");
}

}  // namespace
