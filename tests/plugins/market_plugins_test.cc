// The four market plugins as built (bb_<market>.so), loaded through the C ABI on the SDK's fake
// host (blockbuster/testing.h) serving their recorded answers: the glue shared by the markets
// (market_glue.h, host_port.h, market_base.h) from the calls made to what the agent is handed.
#include <blockbuster/json.h>
#include <blockbuster/plugin_abi.h>
#include <blockbuster/testing.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "market_checks.h"

namespace {

using blockbuster::Json;
using blockbuster::markets::checks::Fixtures;
using blockbuster::testing::FakeHost;
using blockbuster::testing::PluginLibrary;
using blockbuster::testing::PluginRunner;
using blockbuster::testing::Reply;

// Scripts `host` with a recording (method -> {"result"} | {"error"} | {"failure"}).
void script(FakeHost& host, const Json& recording) {
  for (const auto& [method, e] : recording.asObject()) {
    if (const Json* r = e.find("result"))
      host.answer(method, *r);
    else if (e["error"].isObject())
      host.reply(method,
                 Reply::rpcError(e["error"]["code"].asInt(), e["error"]["message"].asString()));
    else
      host.reply(method, Reply::failure(static_cast<int>(e["failure"]["status"].asInt()),
                                        e["failure"]["message"].asString()));
  }
}

struct Market {
  const char* plugin;    // bb_<plugin>.so
  const char* fixtures;  // its recorded answers
  const char* label;     // the market label of its metrics
  const char* activity;  // a guide field of the spec fixture, known
  const char* feature;   // a feature carrying it
};

class MarketPluginTest : public ::testing::TestWithParam<Market> {};

TEST_P(MarketPluginTest, PublishesTheSpecProfilesMarketSectionMetricsAndFeatures) {
  const Market& m = GetParam();
  PluginLibrary lib(std::string(BB_TEST_PLUGIN_DIR) + "/bb_" + m.plugin + ".so");
  FakeHost host;
  script(host, Fixtures(m.fixtures).json("spec_active.json"));
  PluginRunner plugin(lib.plugin(), host);
  EXPECT_STREQ(plugin.descriptor().name, m.plugin);
  EXPECT_EQ(plugin.defaults()["governor"], Json(true));
  ASSERT_TRUE(plugin.create()) << plugin.error();
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();

  // Detecting: both profiles' methods in one batch, no second round trip.
  EXPECT_EQ(host.batchCount(), 1u);
  const Json body = host.section("market");
  EXPECT_EQ(body["status"], Json("healthy"));
  EXPECT_EQ(body["profile"], Json("spec"));
  EXPECT_TRUE(body[m.activity].isNumber()) << body.dump();
  EXPECT_EQ(host.value("theblock_market_up", {{"market", m.label}}), 1.0);
  EXPECT_EQ(host.value("theblock_market_status", {{"market", m.label}, {"status", "healthy"}}),
            1.0);
  EXPECT_EQ(host.value("theblock_market_status", {{"market", m.label}, {"status", "idle"}}), 0.0);
  EXPECT_EQ(host.feature(m.feature), body[m.activity].asDouble());

  // Known now: the next cycle asks the guide's method only.
  host.clearRecords();
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  ASSERT_EQ(host.calls().size(), 1u);
  EXPECT_EQ(host.publishCount("market"), 1u);
}

TEST_P(MarketPluginTest, AnUnansweredCallFailsTheCycleWithoutReplacingTheLastReport) {
  const Market& m = GetParam();
  PluginLibrary lib(std::string(BB_TEST_PLUGIN_DIR) + "/bb_" + m.plugin + ".so");
  FakeHost host;
  script(host, Fixtures(m.fixtures).json("spec_active.json"));
  PluginRunner plugin(lib.plugin(), host);
  ASSERT_TRUE(plugin.create()) << plugin.error();
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  const std::string method = host.calls().at(0).method;

  host.clearRecords();
  host.reply(method, Reply::failure(BB_ERR_TIMEOUT, "no answer within 2000 ms"));
  EXPECT_NE(plugin.collect(), BB_OK);
  EXPECT_NE(plugin.error().find(method), std::string::npos) << plugin.error();
  EXPECT_NE(plugin.error().find("no answer within 2000 ms"), std::string::npos);
  EXPECT_FALSE(host.published("market"));
}

TEST_P(MarketPluginTest, ANodeWithoutTheMarketIsPublishedUnavailable) {
  const Market& m = GetParam();
  PluginLibrary lib(std::string(BB_TEST_PLUGIN_DIR) + "/bb_" + m.plugin + ".so");
  FakeHost host;  // nothing scripted: every method answers -32601
  PluginRunner plugin(lib.plugin(), host);
  ASSERT_TRUE(plugin.create(Json{{"governor", false}})) << plugin.error();
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  const Json body = host.section("market");
  EXPECT_EQ(body["status"], Json("unavailable"));
  EXPECT_NE(body["error"].asString().find("serves no"), std::string::npos) << body.dump();
  EXPECT_TRUE(body[m.activity].isNull());
  EXPECT_EQ(host.value("theblock_market_up", {{"market", m.label}}), 0.0);
  EXPECT_FALSE(host.feature(m.feature).has_value() && !std::isnan(*host.feature(m.feature)));
  for (const auto& c : host.calls()) EXPECT_NE(c.method, "governor.status");
}

TEST_P(MarketPluginTest, AnUndeclaredOptionIsRefused) {
  const Market& m = GetParam();
  PluginLibrary lib(std::string(BB_TEST_PLUGIN_DIR) + "/bb_" + m.plugin + ".so");
  FakeHost host;
  PluginRunner plugin(lib.plugin(), host);
  EXPECT_FALSE(plugin.create(Json{{"no_such_option", 1}}));
  EXPECT_NE(plugin.error().find("no_such_option"), std::string::npos) << plugin.error();
}

INSTANTIATE_TEST_SUITE_P(
    Markets, MarketPluginTest,
    ::testing::Values(
        Market{"compute", BB_COMPUTE_FIXTURES, "compute", "active_jobs", "active_jobs"},
        Market{"storage", BB_STORAGE_FIXTURES, "storage", "total_stored", "stored_bytes"},
        Market{"energy", BB_ENERGY_FIXTURES, "energy", "active_traders", "traders"},
        Market{"ads", BB_ADS_FIXTURES, "ad", "active_campaigns", "campaigns"}),
    [](const ::testing::TestParamInfo<Market>& info) { return std::string(info.param.plugin); });

}  // namespace
