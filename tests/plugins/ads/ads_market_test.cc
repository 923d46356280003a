// The ad market's logic on recorded answers of both node profiles.
#include "ads_market.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "market_checks.h"

namespace blockbuster::markets {
namespace {

const checks::Fixtures fixtures(BB_ADS_FIXTURES);
using checks::feature;
using checks::metric;
Answers garbage(const std::string& key) {
  return answersFromRecording(fixtures.json("garbage.json")[key]);
}

void expectConsistent(const MarketReport& r) {
  static const checks::MarketShape shape{
      "ad",
      {"active_campaigns", "total_impressions", "total_revenue", "avg_cpm"},
      {"impressions_window"},
      {{"theblock_ads_active_campaigns", "active_campaigns"},
       {"theblock_ads_impressions", "total_impressions"},
       {kRevenueMetric, "total_revenue"},
       {"theblock_ads_avg_cpm", "avg_cpm"},
       {kUtilizationMetric, "utilization"}},
      {{"campaigns", "active_campaigns"},
       {"impressions", "total_impressions"},
       {"avg_cpm", "avg_cpm"}}};
  checks::expectConsistent(r, shape);
}

TEST(AdsMarket, Plans) {
  AdsMarket m;
  ASSERT_EQ(m.plan().size(), 4u);
  EXPECT_EQ(AdsMarket(AdsOptions{false}).plan().size(), 3u);
}

TEST(AdsMarket, SpecActive) {
  AdsMarket m;
  MarketReport r = m.update(fixtures.answers("spec_active.json")).report;
  Json b = r.body();
  EXPECT_EQ(m.profile(), Profile::kSpec);
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("spec"));
  EXPECT_EQ(b["active_campaigns"], Json(3));
  EXPECT_EQ(b["total_impressions"], Json(150000));
  EXPECT_EQ(b["total_revenue"], Json(3500));
  EXPECT_EQ(b["avg_cpm"], Json(2.33));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  expectConsistent(r);
  ASSERT_EQ(m.plan().size(), 1u);
  EXPECT_EQ(m.plan()[0].method, kAdsStats);
}

TEST(AdsMarket, SpecNoCampaignsIsIdleUntilImpressionsRise) {
  AdsMarket m;
  EXPECT_EQ(m.update(fixtures.answers("spec_quiet.json")).report.status, Status::kIdle);
  Json more = fixtures.json("spec_quiet.json");
  more[kAdsStats]["result"]["total_impressions"] = 150100;
  EXPECT_EQ(m.update(answersFromRecording(more)).report.status, Status::kHealthy);
  EXPECT_EQ(m.update(answersFromRecording(more)).report.status, Status::kIdle);
}

TEST(AdsMarket, TheblockActive) {
  AdsMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_active.json")).report;
  Json b = r.body();
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("theblock"));
  EXPECT_EQ(b["active_campaigns"], Json(2)) << "c-2 has no budget left";
  EXPECT_EQ(b["campaigns"], Json(3));
  EXPECT_EQ(b["total_impressions"], Json(4000));
  EXPECT_EQ(b["total_revenue"], Json(990000));
  EXPECT_EQ(b["epoch_spend"], Json(8000));
  EXPECT_EQ(b["avg_cpm"], Json(2000)) << "8000 spent for 4000 impressions, per 1000";
  EXPECT_EQ(b["utilization"], Json(0.33));
  EXPECT_EQ(b["impressions_window"], Json("current epoch"));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  expectConsistent(r);
  EXPECT_EQ(m.plan().size(), 3u);
}

TEST(AdsMarket, TheblockFreshIsIdleWithNoCpm) {
  AdsMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_fresh.json")).report;
  Json b = r.body();
  EXPECT_EQ(r.status, Status::kIdle);
  EXPECT_EQ(b["active_campaigns"], Json(0));
  EXPECT_EQ(b["total_impressions"], Json(0));
  EXPECT_EQ(b["total_revenue"], Json(0));
  EXPECT_TRUE(b["avg_cpm"].isNull());
  EXPECT_NE(b["unavailable"]["avg_cpm"].asString().find("no impressions"), std::string::npos);
  expectConsistent(r);
}

TEST(AdsMarket, TheRealNodesUnavailableAdMarket) {
  AdsMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_unavailable.json")).report;
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  EXPECT_EQ(r.status, Status::kUnavailable);
  EXPECT_FALSE(r.unrecognised);
  EXPECT_NE(r.error.find("not running"), std::string::npos) << r.error;
  Json b = r.body();
  EXPECT_EQ(b["status"], Json("unavailable"));
  EXPECT_EQ(b["profile"], Json("theblock"));
  for (const char* f : {"active_campaigns", "total_impressions", "total_revenue", "avg_cpm"})
    EXPECT_TRUE(b[f].isNull()) << f;
  expectConsistent(r);
}

TEST(AdsMarket, GarbageAndFailures) {
  for (const char* key : {"stats_string", "stats_unknown_object"}) {
    AdsMarket m;
    MarketReport r = m.update(garbage(key)).report;
    EXPECT_TRUE(r.unrecognised) << key;
    EXPECT_EQ(r.status, Status::kUnavailable);
    expectConsistent(r);
  }
  {
    AdsMarket m;
    MarketReport r = m.update(garbage("stats_wrong_types")).report;
    EXPECT_FALSE(r.unrecognised);
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.body()["unavailable"]["total_revenue"].asString().find("negative"),
              std::string::npos);
    expectConsistent(r);
  }
  {
    AdsMarket m;
    MarketReport r = m.update(garbage("theblock_wrong_types")).report;
    Json b = r.body();
    EXPECT_TRUE(b["active_campaigns"].isNull());
    EXPECT_NE(b["unavailable"]["active_campaigns"].asString().find("is a string"),
              std::string::npos);
    EXPECT_EQ(b["total_impressions"], Json(100));
    EXPECT_TRUE(b["avg_cpm"].isNull());
    EXPECT_EQ(b["total_revenue"], Json(10));
    EXPECT_EQ(r.status, Status::kHealthy) << "impressions this epoch";
    expectConsistent(r);
  }
  {
    AdsMarket m;
    MarketReport r = m.update(garbage("theblock_budget_down")).report;
    Json b = r.body();
    EXPECT_EQ(b["active_campaigns"], Json(1));
    EXPECT_TRUE(b["total_impressions"].isNull());
    EXPECT_NE(b["unavailable"]["total_impressions"].asString().find("no answer within"),
              std::string::npos);
    EXPECT_EQ(r.status, Status::kHealthy);
    expectConsistent(r);
  }
  {
    AdsMarket m;
    MarketReport r = m.update(garbage("nothing_served")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("serves no ad market"), std::string::npos);
    expectConsistent(r);
  }
  {
    AdsMarket m;
    MarketReport r = m.update(garbage("stats_down")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("connection refused"), std::string::npos) << r.error;
    expectConsistent(r);
  }
}

TEST(AdsMarket, RedetectsWhenTheRealMethodsDisappear) {
  AdsMarket m;
  m.update(fixtures.answers("theblock_active.json"));
  ASSERT_EQ(m.profile(), Profile::kTheBlock);
  Answers gone;
  gone[kAdsInventory] = Answer::rpcError(-32601, "method not found");
  gone[kAdsBudget] = Answer::rpcError(-32601, "method not found");
  Outcome o = m.update(gone);
  EXPECT_TRUE(o.redetect);
  EXPECT_EQ(m.plan().size(), 4u);
  Outcome o2 = m.update(fixtures.answers("spec_active.json"));
  EXPECT_FALSE(o2.redetect);
  EXPECT_EQ(m.profile(), Profile::kSpec);
}

}  // namespace
}  // namespace blockbuster::markets
