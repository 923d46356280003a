// The hello plugin on the SDK's fake host: scripted node answers in, what it publishes out.
#include <blockbuster/testing.h>
#include <gtest/gtest.h>

using blockbuster::Json;
using blockbuster::testing::FakeHost;
using blockbuster::testing::PluginRunner;
using blockbuster::testing::Reply;

TEST(Hello, PublishesTheRealNodesHeight) {
  FakeHost host;
  Json headers = Json::array();
  headers.push_back(Json{{"height", 1}});
  host.answer("light.headers", headers);
  host.answer("light.latest_header", Json{{"height", 42}});
  PluginRunner plugin(bb_plugin_entry(), host);
  ASSERT_TRUE(plugin.create(Json{{"greeting", "hi there"}})) << plugin.error();
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  EXPECT_EQ(host.section("hello"), (Json{{"greeting", "hi there"}, {"height", 42}}));
  EXPECT_EQ(host.value("hello_chain_height"), 42.0);
  EXPECT_EQ(host.lastMetric("hello_chain_height")->flags, BB_METRIC_FLAG_HISTORY);
}

TEST(Hello, NeverAsksAnEmptyChainForItsLatestHeader) {
  FakeHost host;
  host.answer("light.headers", Json::array());
  PluginRunner plugin(bb_plugin_entry(), host);
  ASSERT_TRUE(plugin.create()) << plugin.error();  // the declared defaults
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  EXPECT_EQ(host.callCount("light.latest_header"), 0u);
  EXPECT_EQ(host.section("hello"), (Json{{"greeting", "hello"}, {"height", nullptr}}));
  EXPECT_FALSE(host.value("hello_chain_height"));
}

TEST(Hello, ReadsTheGuidesHeader) {
  FakeHost host;  // light.headers unscripted: -32601, as the guide's node answers
  host.answer("light.latest_header", Json{{"number", 7}});
  PluginRunner plugin(bb_plugin_entry(), host);
  ASSERT_TRUE(plugin.create()) << plugin.error();
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  EXPECT_EQ(host.section("hello")["height"], Json(7));
}

TEST(Hello, AFailedCallFailsTheCollect) {
  FakeHost host;
  host.reply("light.latest_header", Reply::failure(BB_ERR_TIMEOUT, "no answer in time"));
  PluginRunner plugin(bb_plugin_entry(), host);
  ASSERT_TRUE(plugin.create()) << plugin.error();
  EXPECT_EQ(plugin.collect(), BB_ERR_TIMEOUT);
  EXPECT_NE(plugin.error().find("no answer in time"), std::string::npos) << plugin.error();
  EXPECT_FALSE(host.published("hello"));
}
