// SIGHUP's diff (host/config_reload.h): the keys that changed and take effect only at restart,
// named from the schema's reload policy; the keys applied live are not named.
#include "host/config_reload.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "config/schema.h"

namespace {

TEST(ConfigReload, NamesEveryRestartOnlyKeyThatChangedAndNoLiveKey) {
  const bb::Config running = bb::parseConfig("", "f");
  const bb::Config next = bb::parseConfig(
      "rpc:\n  timeout_ms: 1234\nhttp:\n  port: 6000\n  tls: {cert_file: /c, key_file: /k}\n"
      "web:\n  last_block_warn_seconds: 10\n"
      "auth:\n  metrics: {bearer_sha256: [\"sha256:" +
          std::string(64, 'a') +
          "\"]}\n"
          "plugin_dir: /opt/p\nlog_format: json\nlog_level: debug\n"
          "plugins:\n  network: {interval_ms: 5000}\n",
      "f");
  EXPECT_EQ(bb::restartOnlyChanges(running, next, true),
            (std::vector<std::string>{"rpc.timeout_ms", "http.port", "http.tls.cert_file",
                                      "http.tls.key_file", "web.last_block_warn_seconds",
                                      "plugin_dir", "log_format", "auth.metrics.bearer_sha256"}));
  // --plugin-dir given: plugin_dir is the command line's, not compared.
  auto without = bb::restartOnlyChanges(running, next, false);
  EXPECT_EQ(std::count(without.begin(), without.end(), "plugin_dir"), 0);
  EXPECT_EQ(without.size(), 7u);
  // Everything that changed is either named or applied live.
  for (const std::string& key : bb::changedKeys(running, next)) {
    const bb::ConfigKey* spec = bb::findConfigKey(key);
    ASSERT_NE(spec, nullptr) << key;
    const bool named = std::count(without.begin(), without.end(), key) > 0;
    EXPECT_TRUE(named != (spec->reload == bb::Reload::kLive) || key == "plugin_dir") << key;
  }
  EXPECT_TRUE(bb::restartOnlyChanges(running, running, true).empty());
}

}  // namespace
