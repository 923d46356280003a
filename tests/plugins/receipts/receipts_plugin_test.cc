// The built bb_receipts.so on the SDK's fake host (blockbuster/testing.h): its store in the state
// directory the agent lends, a spec node's receipts ingested, the sections, metrics and features
// it hands the agent, and its route GET /theblock/receipts.
#include <blockbuster/json.h>
#include <blockbuster/plugin_abi.h>
#include <blockbuster/testing.h>
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "fixture.h"
#include "support/process.h"

namespace {

using bbtest::TempDir;
using blockbuster::Json;
using blockbuster::testing::FakeHost;
using blockbuster::testing::PluginLibrary;
using blockbuster::testing::PluginRunner;
using blockbuster::testing::Reply;

Json fixture(const std::string& name) { return bbtest::readFixture(BB_RECEIPTS_FIXTURES, name); }

class ReceiptsPluginTest : public ::testing::Test {
 protected:
  void SetUp() override { host_.setStateDir(dir_.path()); }

  TempDir dir_;
  PluginLibrary lib_{BB_TEST_PLUGIN_DIR "/bb_receipts.so"};
  FakeHost host_;
  PluginRunner plugin_{lib_.plugin(), host_};
};

TEST_F(ReceiptsPluginTest, IngestsASpecNodesReceiptsAndServesThem) {
  host_.answer("receipt.audit", fixture("spec_receipt_audit.json"));
  ASSERT_TRUE(plugin_.create()) << plugin_.error();
  EXPECT_TRUE(host_.serves("/theblock/receipts"));
  EXPECT_TRUE(host_.logged("receipts store at " + dir_.path() + "/receipts.db"));
  ASSERT_EQ(plugin_.collect(), BB_OK) << plugin_.error();

  EXPECT_GE(host_.callCount("receipt.audit"), 1u);
  EXPECT_EQ(host_.callCount("settlement.audit"), 0u);  // the spec profile's source only
  const Json store = host_.section("store");
  EXPECT_EQ(store["receipts"], Json(4));
  EXPECT_EQ(store["profile"], Json("spec"));
  EXPECT_TRUE(host_.published("operations"));
  for (const char* market : {"compute", "storage", "energy", "ad"}) {
    EXPECT_EQ(host_.value("theblock_receipts_stored", {{"market", market}}), 1.0) << market;
    EXPECT_EQ(host_.value("theblock_receipts_ingested_total", {{"market", market}}), 1.0) << market;
  }
  EXPECT_EQ(host_.feature("total"), 4.0);

  blockbuster::testing::RouteAnswer page = host_.get("/theblock/receipts", {{"limit", "2"}});
  ASSERT_EQ(page.status, 200) << page.body;
  const Json body = page.json();
  EXPECT_EQ(body["receipts"].size(), 2u);
  EXPECT_EQ(body["total"], Json(4));
  EXPECT_EQ(body["stale"], Json(false));
  EXPECT_EQ(host_.get("/theblock/receipts", {{"limit", "many"}}).status, 400);
}

TEST_F(ReceiptsPluginTest, ANodeThatFailsFailsTheCollectAndMarksOperationsStale) {
  host_.reply("receipt.audit", Reply::failure(BB_ERR_TRANSPORT, "connection refused"));
  ASSERT_TRUE(plugin_.create()) << plugin_.error();
  EXPECT_NE(plugin_.collect(), BB_OK);
  EXPECT_NE(plugin_.error().find("connection refused"), std::string::npos) << plugin_.error();
  ASSERT_TRUE(host_.staleReason("operations"));
  EXPECT_NE(host_.staleReason("operations")->find("connection refused"), std::string::npos);
  EXPECT_EQ(host_.section("store")["receipts"], Json(0));
}

TEST_F(ReceiptsPluginTest, OptionsOutOfRangeAreRefusedWithTheKey) {
  EXPECT_FALSE(plugin_.create(Json{{"page_size", 0}}));
  EXPECT_NE(plugin_.error().find("page_size"), std::string::npos) << plugin_.error();
}

}  // namespace
