// The compute market's logic on recorded answers of both node profiles.
#include "compute_market.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "market_checks.h"

namespace blockbuster::markets {
namespace {

const checks::Fixtures fixtures(BB_COMPUTE_FIXTURES);
using checks::feature;
using checks::metric;

// Answers where compute_market.stats is entry `key` of garbage.json and the rest fail -32601.
Answers garbage(const std::string& key) {
  Json g = fixtures.json("garbage.json");
  Json rec = Json::object();
  rec[kComputeStats] = g[key];
  Answers a = answersFromRecording(rec);
  a[kComputeScheduler] = Answer::rpcError(-32601, "method not found");
  a[kComputeBalances] = Answer::rpcError(-32601, "method not found");
  return a;
}

void expectConsistent(const MarketReport& r) {
  static const checks::MarketShape shape{
      "compute",
      {"active_jobs", "total_providers", "avg_utilization", "total_revenue"},
      {"utilization_source"},
      {{"theblock_compute_active_jobs", "active_jobs"},
       {kProvidersMetric, "total_providers"},
       {kUtilizationMetric, "avg_utilization"},
       {kRevenueMetric, "total_revenue"}},
      {{"active_jobs", "active_jobs"},
       {"providers", "total_providers"},
       {"utilization", "avg_utilization"}}};
  checks::expectConsistent(r, shape);
}

TEST(ComputeMarket, UnknownProfilePlansBothProfilesCalls) {
  ComputeMarket m;
  auto calls = m.plan();
  ASSERT_EQ(calls.size(), 4u);
  EXPECT_EQ(calls[0].method, kComputeStats);
  EXPECT_EQ(calls[1].method, kComputeScheduler);
  EXPECT_EQ(calls[2].method, kComputeBalances);
  EXPECT_EQ(calls[3].method, kGovernorMethod);
  ComputeMarket noGov(ComputeOptions{false});
  EXPECT_EQ(noGov.plan().size(), 3u);
}

TEST(ComputeMarket, SpecActive) {
  ComputeMarket m;
  Outcome o = m.update(fixtures.answers("spec_active.json"));
  ASSERT_FALSE(o.redetect);
  const MarketReport& r = o.report;
  EXPECT_EQ(m.profile(), Profile::kSpec);
  Json b = r.body();
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("spec"));
  EXPECT_EQ(b["active_jobs"], Json(45));
  EXPECT_EQ(b["total_providers"], Json(12));
  EXPECT_EQ(b["avg_utilization"], Json(0.75));
  EXPECT_EQ(b["total_revenue"], Json(150000));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  EXPECT_FALSE(b.contains("industrial_backlog"));
  EXPECT_EQ(metric(r, "theblock_compute_active_jobs")->value, 45);
  EXPECT_EQ(metric(r, kUtilizationMetric)->value, 0.75);
  EXPECT_EQ(feature(r, "providers"), 12);
  expectConsistent(r);
  // Detected: only the guide's call from now on.
  ASSERT_EQ(m.plan().size(), 1u);
  EXPECT_EQ(m.plan()[0].method, kComputeStats);
}

TEST(ComputeMarket, SpecQuietIsIdleUntilRevenueMoves) {
  ComputeMarket m;
  Answers quiet = fixtures.answers("spec_quiet.json");
  MarketReport r1 = m.update(quiet).report;
  EXPECT_EQ(r1.status, Status::kIdle);
  EXPECT_EQ(r1.body()["active_jobs"], Json(0));
  EXPECT_EQ(r1.body()["avg_utilization"], Json(0));
  expectConsistent(r1);

  Json moved = fixtures.json("spec_quiet.json");
  moved[kComputeStats]["result"]["total_revenue"] = 150500;
  EXPECT_EQ(m.update(answersFromRecording(moved)).report.status, Status::kHealthy);
  // Same revenue again: nothing moved between these two samples.
  EXPECT_EQ(m.update(answersFromRecording(moved)).report.status, Status::kIdle);
}

TEST(ComputeMarket, TheblockActive) {
  ComputeMarket m;
  Outcome o = m.update(fixtures.answers("theblock_active.json"));
  const MarketReport& r = o.report;
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  Json b = r.body();
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("theblock"));
  EXPECT_EQ(b["active_jobs"], Json(3));
  EXPECT_EQ(b["total_providers"], Json(3)) << "prov-a is listed twice";
  EXPECT_EQ(b["avg_utilization"], Json(0.4));
  EXPECT_EQ(b["utilization_source"], Json("compute_market.stats.industrial_utilization"));
  // Detected this cycle: the ledger is read from the next one.
  EXPECT_TRUE(b["total_revenue"].isNull());
  EXPECT_NE(b["unavailable"]["total_revenue"].asString().find("settlement.audit"),
            std::string::npos);
  EXPECT_EQ(b["industrial_backlog"], Json(12));
  EXPECT_EQ(b["industrial_units_total"], Json(9000));
  EXPECT_EQ(b["pending_jobs"], Json(1));
  EXPECT_EQ(b["recent_matches"], Json(2));
  EXPECT_FALSE(b.contains("error"));
  EXPECT_TRUE(std::isnan(metric(r, kRevenueMetric)->value));
  EXPECT_EQ(metric(r, "theblock_compute_backlog")->value, 12);
  expectConsistent(r);
  const auto plan = m.plan();
  ASSERT_EQ(plan.size(), 5u);
  EXPECT_EQ(plan.back().method, kSettlementAudit);
}

TEST(ComputeMarket, TheblockRevenueIsTheSumOfTheLedgersPayments) {
  ComputeMarket m;
  m.update(fixtures.answers("theblock_active.json"));
  Answers a = fixtures.answers("theblock_active.json");
  Json ledger = Json::array();
  for (int d : {100, -20, 50})
    ledger.push_back(Json{{"sequence", 1}, {"entity", "prov-a"}, {"delta", d}, {"balance", 0}});
  a[kSettlementAudit] = Answer::result(ledger);
  MarketReport r = m.update(a).report;
  EXPECT_EQ(r.body()["total_revenue"], Json(150)) << "payments only, debits left out";
  EXPECT_EQ(metric(r, kRevenueMetric)->value, 150);
  expectConsistent(r);
  // A malformed entry: unknown, never a partial sum.
  ledger.push_back(Json{{"delta", "lots"}});
  a[kSettlementAudit] = Answer::result(ledger);
  r = m.update(a).report;
  EXPECT_TRUE(r.body()["total_revenue"].isNull());
  EXPECT_NE(r.body()["unavailable"]["total_revenue"].asString().find("delta"), std::string::npos);
  // Slow and unanswered: only the revenue is lost, the cycle is not failed.
  EXPECT_TRUE(m.tolerates(kSettlementAudit));
  a[kSettlementAudit] = Answer::failure(3, "timeout");
  r = m.update(a).report;
  EXPECT_TRUE(r.body()["total_revenue"].isNull());
  EXPECT_EQ(r.body()["status"], Json("healthy"));
}

TEST(ComputeMarket, TheblockPrefersGovernorUtilization) {
  ComputeMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_governor.json")).report;
  Json b = r.body();
  EXPECT_EQ(b["avg_utilization"], Json(0.62));
  EXPECT_EQ(b["utilization_source"], Json("governor.status"));
  EXPECT_EQ(b["active_jobs"], Json(0));
  EXPECT_EQ(b["total_providers"], Json(0));
  // Nothing runs, but the governor saw the capacity used in the last epoch.
  EXPECT_EQ(r.status, Status::kHealthy);
  expectConsistent(r);
}

TEST(ComputeMarket, TheblockFreshNodeIsIdleAndCapsBacklogPercent) {
  ComputeMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_fresh.json")).report;
  EXPECT_EQ(r.status, Status::kIdle);
  Json b = r.body();
  EXPECT_EQ(b["active_jobs"], Json(0));
  EXPECT_EQ(b["avg_utilization"], Json(0));
  EXPECT_EQ(b["recent_matches"], Json(0));
  expectConsistent(r);

  Json over = fixtures.json("theblock_fresh.json");
  over[kComputeStats]["result"]["industrial_utilization"] = 250;
  MarketReport r2 = m.update(answersFromRecording(over)).report;
  EXPECT_EQ(r2.body()["avg_utilization"], Json(1)) << "a backlog over capacity reads as full";
  EXPECT_EQ(r2.status, Status::kHealthy);

  Json units = fixtures.json("theblock_fresh.json");
  units[kComputeStats]["result"]["industrial_units_total"] = 5;
  EXPECT_EQ(m.update(answersFromRecording(units)).report.status, Status::kHealthy)
      << "units processed moved between samples";
}

TEST(ComputeMarket, TheblockDegradedAnswersBecomeNullsWithReasons) {
  ComputeMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_degraded.json")).report;
  Json b = r.body();
  EXPECT_TRUE(b["active_jobs"].isNull());
  EXPECT_NE(b["unavailable"]["active_jobs"].asString().find("connection reset"), std::string::npos);
  EXPECT_TRUE(b["total_providers"].isNull());
  EXPECT_NE(b["unavailable"]["total_providers"].asString().find("not a non-empty string"),
            std::string::npos);
  EXPECT_TRUE(b["industrial_backlog"].isNull());
  EXPECT_NE(b["unavailable"]["industrial_backlog"].asString().find("is a string"),
            std::string::npos);
  EXPECT_TRUE(b["industrial_units_total"].isNull());
  EXPECT_NE(b["unavailable"]["industrial_units_total"].asString().find("negative"),
            std::string::npos);
  EXPECT_TRUE(b["pending_jobs"].isNull());
  EXPECT_TRUE(b["recent_matches"].isNull());
  EXPECT_EQ(b["avg_utilization"], Json(0.4)) << "governor error falls back to the backlog figure";
  EXPECT_EQ(r.status, Status::kHealthy);
  expectConsistent(r);
}

TEST(ComputeMarket, UnrecognisedShapesAreUnavailableAndFlagged) {
  for (const char* key : {"string_result", "array_result", "unknown_object"}) {
    ComputeMarket m;
    MarketReport r = m.update(garbage(key)).report;
    EXPECT_TRUE(r.unrecognised) << key;
    EXPECT_EQ(r.status, Status::kUnavailable) << key;
    EXPECT_NE(r.error.find("shape"), std::string::npos) << key;
    EXPECT_TRUE(r.body()["active_jobs"].isNull()) << key;
    EXPECT_TRUE(r.body()["profile"].isNull()) << key;
    expectConsistent(r);
  }
}

TEST(ComputeMarket, WrongTypesNeverBecomeZero) {
  ComputeMarket m;
  MarketReport r = m.update(garbage("spec_wrong_types")).report;
  EXPECT_FALSE(r.unrecognised);
  EXPECT_EQ(r.profile, Profile::kSpec);
  EXPECT_EQ(r.status, Status::kUnavailable);
  EXPECT_NE(r.error.find("none of the figures"), std::string::npos);
  Json b = r.body();
  for (const char* f : {"active_jobs", "total_providers", "avg_utilization", "total_revenue"})
    EXPECT_TRUE(b[f].isNull()) << f;
  EXPECT_NE(b["unavailable"]["active_jobs"].asString().find("is a string"), std::string::npos);
  expectConsistent(r);

  // One bad field alone: the rest is published, the bad one is null with its reason.
  Json rec = fixtures.json("spec_active.json");
  rec[kComputeStats]["result"]["avg_utilization"] = 7;
  MarketReport r2 = m.update(answersFromRecording(rec)).report;
  EXPECT_TRUE(r2.body()["avg_utilization"].isNull());
  EXPECT_NE(r2.body()["unavailable"]["avg_utilization"].asString().find("outside the ratio"),
            std::string::npos);
  EXPECT_EQ(r2.body()["active_jobs"], Json(45));
  EXPECT_EQ(r2.status, Status::kHealthy);
  expectConsistent(r2);
}

TEST(ComputeMarket, FailedCallsPublishUnavailableWithTheError) {
  struct Case {
    const char* key;
    const char* text;
  } cases[] = {{"error_in_success", "internal error"},
               {"unavailable", "unavailable"},
               {"not_found", "serves no compute market"},
               {"timeout", "no answer within"}};
  for (const auto& c : cases) {
    ComputeMarket m;
    MarketReport r = m.update(garbage(c.key)).report;
    EXPECT_FALSE(r.unrecognised) << c.key;
    EXPECT_EQ(r.status, Status::kUnavailable) << c.key;
    EXPECT_NE(r.body()["error"].asString().find(c.text), std::string::npos)
        << c.key << ": " << r.error;
    EXPECT_TRUE(r.body()["total_providers"].isNull());
    expectConsistent(r);
  }
}

TEST(ComputeMarket, RedetectsWhenTheShapeChanges) {
  ComputeMarket m;
  m.update(fixtures.answers("spec_active.json"));
  ASSERT_EQ(m.profile(), Profile::kSpec);
  // The node behind the agent was replaced by a real node: stats has the other shape.
  Answers onlyStats;
  onlyStats[kComputeStats] = fixtures.answers("theblock_active.json")[kComputeStats];
  Outcome o = m.update(onlyStats);
  EXPECT_TRUE(o.redetect);
  EXPECT_EQ(m.profile(), Profile::kUnknown);
  EXPECT_EQ(m.plan().size(), 4u) << "the next pass asks the real node's methods too";
  Outcome o2 = m.update(fixtures.answers("theblock_active.json"));
  EXPECT_FALSE(o2.redetect);
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  EXPECT_EQ(o2.report.body()["active_jobs"], Json(3));
}

TEST(ComputeMarket, TransportFailureKeepsTheDetectedProfile) {
  ComputeMarket m;
  m.update(fixtures.answers("theblock_active.json"));
  Answers down = fixtures.answers("theblock_active.json");
  down[kComputeStats] = Answer::failure(2, "connection refused");
  Outcome o = m.update(down);
  EXPECT_FALSE(o.redetect);
  EXPECT_EQ(o.report.status, Status::kUnavailable);
  EXPECT_EQ(o.report.body()["profile"], Json("theblock"));
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
}

}  // namespace
}  // namespace blockbuster::markets
