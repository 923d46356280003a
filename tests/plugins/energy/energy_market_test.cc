// The energy market's logic on recorded answers of both node profiles.
#include "energy_market.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "market_checks.h"

namespace blockbuster::markets {
namespace {

const checks::Fixtures fixtures(BB_ENERGY_FIXTURES);
using checks::feature;
using checks::metric;
Answers garbage(const std::string& key) {
  return answersFromRecording(fixtures.json("garbage.json")[key]);
}

void expectConsistent(const MarketReport& r) {
  static const checks::MarketShape shape{
      "energy",
      {"total_credits", "avg_price", "active_traders", "trading_volume"},
      {},
      {{"theblock_energy_credits", "total_credits"},
       {kAvgPriceMetric, "avg_price"},
       {"theblock_energy_active_traders", "active_traders"},
       {"theblock_energy_trading_volume", "trading_volume"},
       {kUtilizationMetric, "utilization"}},
      {{"credits", "total_credits"},
       {"avg_price", "avg_price"},
       {"traders", "active_traders"},
       {"volume", "trading_volume"}}};
  checks::expectConsistent(r, shape);
}

TEST(EnergyMarket, Plans) {
  EnergyMarket m;
  ASSERT_EQ(m.plan().size(), 2u);
  EXPECT_EQ(m.plan()[0].method, kEnergyMarketState);
  EXPECT_EQ(EnergyMarket(EnergyOptions{false}).plan().size(), 1u);
}

TEST(EnergyMarket, SpecActive) {
  EnergyMarket m;
  MarketReport r = m.update(fixtures.answers("spec_active.json")).report;
  Json b = r.body();
  EXPECT_EQ(m.profile(), Profile::kSpec);
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("spec"));
  EXPECT_EQ(b["total_credits"], Json(500000));
  EXPECT_EQ(b["avg_price"], Json(0.05));
  EXPECT_EQ(b["active_traders"], Json(15));
  EXPECT_EQ(b["trading_volume"], Json(25000));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  EXPECT_FALSE(b.contains("receipts"));
  expectConsistent(r);
  EXPECT_EQ(m.plan().size(), 1u);
}

TEST(EnergyMarket, SpecQuietIsIdleUntilCreditsMove) {
  EnergyMarket m;
  EXPECT_EQ(m.update(fixtures.answers("spec_quiet.json")).report.status, Status::kIdle);
  Json moved = fixtures.json("spec_quiet.json");
  moved[kEnergyMarketState]["result"]["total_credits"] = 499000;
  EXPECT_EQ(m.update(answersFromRecording(moved)).report.status, Status::kHealthy);
  EXPECT_EQ(m.update(answersFromRecording(moved)).report.status, Status::kIdle);
}

TEST(EnergyMarket, TheblockDerivesFiguresFromLists) {
  EnergyMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_active.json")).report;
  Json b = r.body();
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("theblock"));
  EXPECT_EQ(b["total_credits"], Json(500));
  EXPECT_EQ(b["trading_volume"], Json(200));
  EXPECT_EQ(b["avg_price"], Json(12)) << "2400 paid for 200 kWh";
  EXPECT_EQ(b["active_traders"], Json(3)) << "buyer-1, buyer-2, ep-1";
  EXPECT_EQ(b["providers"], Json(2));
  EXPECT_EQ(b["receipts"], Json(3));
  EXPECT_EQ(b["utilization"], Json(0.25));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  EXPECT_EQ(metric(r, kUtilizationMetric)->value, 0.25);
  expectConsistent(r);
}

TEST(EnergyMarket, TheblockFreshNodeIsIdle) {
  EnergyMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_fresh.json")).report;
  Json b = r.body();
  EXPECT_EQ(r.status, Status::kIdle);
  EXPECT_EQ(b["total_credits"], Json(0));
  EXPECT_EQ(b["trading_volume"], Json(0));
  EXPECT_EQ(b["active_traders"], Json(0));
  EXPECT_TRUE(b["avg_price"].isNull()) << "no trade, no price: never 0";
  EXPECT_NE(b["unavailable"]["avg_price"].asString().find("no energy delivered"),
            std::string::npos);
  EXPECT_TRUE(b["utilization"].isNull());
  expectConsistent(r);
  // A new receipt between samples is activity even if it was a zero-kWh one.
  Json more = fixtures.json("theblock_fresh.json");
  more[kEnergyMarketState]["result"]["receipts"].push_back(
      Json{{"buyer", "b"}, {"seller", "s"}, {"kwh_delivered", 0}, {"price_paid", 0}});
  MarketReport r2 = m.update(answersFromRecording(more)).report;
  EXPECT_EQ(r2.status, Status::kHealthy);
}

TEST(EnergyMarket, UnauthorizedAndRehearsalAreUnavailableOnTheRealNode) {
  {
    EnergyMarket m;
    MarketReport r = m.update(fixtures.answers("theblock_unauthorized.json")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_EQ(m.profile(), Profile::kTheBlock);
    EXPECT_NE(r.error.find("bearer token"), std::string::npos) << r.error;
    EXPECT_NE(r.error.find("-33009"), std::string::npos) << r.error;
    for (const char* f : {"total_credits", "avg_price", "active_traders", "trading_volume"})
      EXPECT_TRUE(r.body()[f].isNull()) << f;
    expectConsistent(r);
  }
  {
    EnergyMarket m;
    MarketReport r = m.update(fixtures.answers("theblock_rehearsal.json")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("rehearsal"), std::string::npos) << r.error;
    expectConsistent(r);
  }
  {
    EnergyMarket m;
    MarketReport r = m.update(garbage("unauthorized_in_success")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("bearer token"), std::string::npos) << r.error;
    expectConsistent(r);
  }
}

TEST(EnergyMarket, GarbageNeverBecomesZero) {
  for (const char* key : {"string_result", "unknown_object"}) {
    EnergyMarket m;
    MarketReport r = m.update(garbage(key)).report;
    EXPECT_TRUE(r.unrecognised) << key;
    EXPECT_EQ(r.status, Status::kUnavailable);
    expectConsistent(r);
  }
  {
    EnergyMarket m;
    MarketReport r = m.update(garbage("spec_wrong_types")).report;
    EXPECT_FALSE(r.unrecognised);
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.body()["unavailable"]["total_credits"].asString().find("is a string"),
              std::string::npos);
    expectConsistent(r);
  }
  {
    EnergyMarket m;
    MarketReport r = m.update(garbage("theblock_wrong_types")).report;
    Json b = r.body();
    EXPECT_TRUE(b["total_credits"].isNull());
    EXPECT_TRUE(b["avg_price"].isNull());
    EXPECT_NE(b["unavailable"]["avg_price"].asString().find("price_paid is a string"),
              std::string::npos);
    EXPECT_EQ(b["trading_volume"], Json(10));
    EXPECT_EQ(b["active_traders"], Json(2));
    EXPECT_TRUE(b["providers"].isNull());
    EXPECT_EQ(r.status, Status::kHealthy);
    expectConsistent(r);
  }
  {
    EnergyMarket m;
    MarketReport r = m.update(garbage("theblock_receipts_not_list")).report;
    EXPECT_EQ(r.status, Status::kUnavailable) << "traders and volume unknown";
    EXPECT_NE(r.body()["unavailable"]["trading_volume"].asString().find("not a list"),
              std::string::npos);
    expectConsistent(r);
  }
  struct Case {
    const char* key;
    const char* text;
  } cases[] = {{"unavailable", "unavailable"},
               {"not_found", "serves no energy market"},
               {"banned", "banned"}};
  for (const auto& c : cases) {
    EnergyMarket m;
    MarketReport r = m.update(garbage(c.key)).report;
    EXPECT_EQ(r.status, Status::kUnavailable) << c.key;
    EXPECT_NE(r.error.find(c.text), std::string::npos) << c.key << ": " << r.error;
    expectConsistent(r);
  }
}

TEST(EnergyMarket, RedetectsWhenTheShapeChanges) {
  EnergyMarket m;
  m.update(fixtures.answers("spec_active.json"));
  Answers real;
  real[kEnergyMarketState] = fixtures.answers("theblock_active.json")[kEnergyMarketState];
  Outcome o = m.update(real);
  EXPECT_TRUE(o.redetect);
  EXPECT_EQ(m.plan().size(), 2u);
  Outcome o2 = m.update(fixtures.answers("theblock_active.json"));
  EXPECT_FALSE(o2.redetect);
  EXPECT_EQ(o2.report.body()["total_credits"], Json(500));
}

}  // namespace
}  // namespace blockbuster::markets
