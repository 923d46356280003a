// Loads the built bb_network.so through the C ABI on the SDK's fake host (blockbuster/testing.h)
// serving recorded answers of the theblock profile, and checks what the glue hands to the agent.
#include <blockbuster/json.h>
#include <blockbuster/plugin_abi.h>
#include <blockbuster/testing.h>
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include "fixture.h"

namespace {

using blockbuster::Json;
using blockbuster::testing::FakeHost;
using blockbuster::testing::PluginLibrary;
using blockbuster::testing::PluginRunner;
using blockbuster::testing::Reply;

Json fixture(const std::string& name) { return bbtest::readFixture(NETWORK_FIXTURES_DIR, name); }

class NetworkPluginTest : public ::testing::Test {
 protected:
  void SetUp() override {
    host_.answer("net.overlay_status", fixture("theblock/net_overlay_status.json"));
    host_.answer("net.peer_stats_all", fixture("theblock/net_peer_stats_all.json"));
    host_.answer("light.headers", fixture("theblock/light_headers.json"));
    host_.answer("light.latest_header", fixture("theblock/light_latest_header.json"));
  }

  PluginLibrary lib_{BB_TEST_PLUGIN_DIR "/bb_network.so"};
  const bb_plugin* plugin_ = lib_.plugin();
  FakeHost host_;
  PluginRunner runner_{plugin_, host_};
};

TEST_F(NetworkPluginTest, DeclaresItsNameAndConfigKeys) {
  EXPECT_STREQ(plugin_->name, "network");
  std::map<std::string, std::string> keys;
  for (uint32_t i = 0; i < plugin_->config_key_count; ++i)
    keys[plugin_->config_keys[i].name] = plugin_->config_keys[i].default_json;
  EXPECT_EQ(keys, (std::map<std::string, std::string>{{"finality_seconds_per_point", "10"},
                                                      {"finality_weight", "30"},
                                                      {"max_peers", "1000"},
                                                      {"peers_target", "50"},
                                                      {"peers_weight", "30"},
                                                      {"tps_target", "1000"},
                                                      {"tps_weight", "40"}}));
}

TEST_F(NetworkPluginTest, PublishesBothSectionsMetricsAndFeatures) {
  ASSERT_TRUE(runner_.create()) << runner_.error();
  ASSERT_EQ(runner_.collect(), BB_OK) << runner_.error();
  ASSERT_TRUE(host_.published("metrics"));
  ASSERT_TRUE(host_.published("peers"));
  const Json m = host_.section("metrics");
  EXPECT_EQ(m["block_height"], Json(236));
  EXPECT_EQ(m["peer_count"], Json(3));
  EXPECT_EQ(m["network_strength"], Json(6));
  EXPECT_EQ(m["profile"], Json("theblock"));
  EXPECT_TRUE(m["tps"].isNull());
  EXPECT_EQ(host_.section("peers")["total"], Json(3));

  auto height = host_.lastMetric("theblock_block_height");
  ASSERT_TRUE(height);
  EXPECT_EQ(height->op, BB_METRIC_SET);
  EXPECT_EQ(height->value, 236);
  auto tps = host_.lastMetric("theblock_tps");
  ASSERT_TRUE(tps);
  EXPECT_EQ(tps->op, BB_METRIC_REMOVE);
  auto bytes = host_.lastMetric("theblock_peer_bytes_sent_total");
  ASSERT_TRUE(bytes);
  EXPECT_EQ(bytes->kind, BB_METRIC_COUNTER);
  EXPECT_EQ(bytes->value, 0);  // first sample: nothing observed sent yet
  auto out =
      host_.lastMetric("theblock_network_bandwidth_bytes_per_second", {{"direction", "out"}});
  ASSERT_TRUE(out);
  EXPECT_EQ(out->op, BB_METRIC_REMOVE);  // first sample

  EXPECT_EQ(host_.features().size(), 8u);
  EXPECT_EQ(host_.feature("block_height"), 236);
  ASSERT_TRUE(host_.feature("tps"));
  EXPECT_TRUE(std::isnan(*host_.feature("tps")));
  EXPECT_EQ(host_.feature("strength"), 6);
  EXPECT_TRUE(host_.logged("theblock"));
}

TEST_F(NetworkPluginTest, AFailedCallFailsTheCollectWithTheTransportStatus) {
  ASSERT_TRUE(runner_.create()) << runner_.error();
  host_.reply("net.overlay_status", Reply::failure(BB_ERR_TRANSPORT, "connection refused"));
  host_.reply("net.peers", Reply::failure(BB_ERR_TRANSPORT, "connection refused"));
  int status = runner_.collect();
  EXPECT_EQ(status, BB_ERR_TRANSPORT);
  EXPECT_NE(runner_.error().find("connection refused"), std::string::npos) << runner_.error();
  EXPECT_FALSE(host_.published("metrics"));
}

TEST_F(NetworkPluginTest, InvalidOptionsAreRefusedWithTheKeyToFix) {
  EXPECT_FALSE(runner_.create(Json{{"max_peers", 0}}));
  EXPECT_NE(runner_.error().find("max_peers"), std::string::npos) << runner_.error();
  EXPECT_FALSE(runner_.create(Json{{"tps_target", 0}}));
  EXPECT_NE(runner_.error().find("tps_target"), std::string::npos) << runner_.error();
  EXPECT_FALSE(runner_.create(Json{{"peers_weight", "thirty"}}));
  EXPECT_NE(runner_.error().find("peers_weight"), std::string::npos) << runner_.error();
}

}  // namespace
