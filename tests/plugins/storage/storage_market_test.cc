// The storage market's logic on recorded answers of both node profiles.
#include "storage_market.h"

#include <blockbuster/plugin_abi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "market_checks.h"

namespace blockbuster::markets {
namespace {

const checks::Fixtures fixtures(BB_STORAGE_FIXTURES);
using checks::feature;
using checks::metric;
Answers garbage(const std::string& key) {
  return answersFromRecording(fixtures.json("garbage.json")[key]);
}

void expectConsistent(const MarketReport& r) {
  static const checks::MarketShape shape{
      "storage",
      {"total_stored", "total_providers", "avg_price", "capacity_used"},
      {"capacity_used_source"},
      {{"theblock_storage_stored_bytes", "total_stored"},
       {kProvidersMetric, "total_providers"},
       {kAvgPriceMetric, "avg_price"},
       {kUtilizationMetric, "capacity_used"}},
      {{"stored_bytes", "total_stored"},
       {"providers", "total_providers"},
       {"capacity_used", "capacity_used"}}};
  checks::expectConsistent(r, shape);
}

TEST(StorageMarket, RejectsOutOfRangeLimits) {
  EXPECT_THROW(StorageMarket(StorageOptions{true, 0, 1000}), std::invalid_argument);
  EXPECT_THROW(StorageMarket(StorageOptions{true, 10, 1001}), std::invalid_argument);
}

TEST(StorageMarket, PlansNeverIncludeAudit) {
  StorageMarket m;
  // Detecting: the cheap reads of both profiles only, never a pipeline open.
  auto calls = m.plan();
  ASSERT_EQ(calls.size(), 2u);
  EXPECT_EQ(calls[0].method, kStorageStats);
  EXPECT_EQ(calls[1].method, kStorageIncentives);
  m.update(fixtures.answers("theblock_active.json"));
  ASSERT_EQ(m.profile(), Profile::kTheBlock);
  m.update(Answers{{kStorageIncentives, Answer::result(Json{{"replicas", Json::array()}})}});
  // The fixture answered both pipeline reads: nothing is due before discovery_interval.
  calls = m.plan();
  for (const auto& c : calls) {
    EXPECT_NE(c.method, "storage.audit");
    EXPECT_NE(c.method, kStorageDiscover);
    EXPECT_NE(c.method, kStorageManifests);
  }
}

TEST(StorageMarket, PipelineReadsArePlannedOncePerDiscoveryInterval) {
  StorageOptions o;
  o.discovery_interval = 3600;
  StorageMarket m(o);
  double now = 1000000;
  m.setClock([&] { return now; });
  m.update(Answers{{kStorageStats, Answer::rpcError(-32601, "Method not found")},
                   {kStorageIncentives, Answer::result(Json{{"replicas", Json::array()}})}});
  ASSERT_EQ(m.profile(), Profile::kTheBlock);
  auto has = [&](const char* method) {
    for (const auto& c : m.plan())
      if (c.method == method) return true;
    return false;
  };
  // Never read yet: both planned, with their parameters.
  EXPECT_TRUE(has(kStorageDiscover));
  EXPECT_TRUE(has(kStorageManifests));
  for (const auto& c : m.plan()) {
    if (c.method == kStorageDiscover) {
      EXPECT_EQ(c.params["object_size"], Json(1));
      EXPECT_EQ(c.params["limit"], Json(1000));
    }
    if (c.method == kStorageManifests) EXPECT_EQ(c.params["limit"], Json(1000));
  }
  Answers all = fixtures.answers("theblock_active.json");
  all[kStorageIncentives] = Answer::result(Json{{"replicas", Json::array()}});
  MarketReport r = m.update(all).report;
  const double read_at = now;
  EXPECT_EQ(r.body()["as_of"]["total_stored"], Json(static_cast<int64_t>(read_at)));
  now += 3599;
  EXPECT_FALSE(has(kStorageDiscover));
  EXPECT_FALSE(has(kStorageManifests));
  now += 2;
  EXPECT_TRUE(has(kStorageDiscover));
  EXPECT_TRUE(has(kStorageManifests));
}

TEST(StorageMarket, AnUnansweredPipelineReadKeepsItsLastFiguresWithTheirOwnAge) {
  StorageMarket m;
  double now = 5000;
  m.setClock([&] { return now; });
  Answers first = fixtures.answers("theblock_active.json");
  first[kStorageIncentives] = Answer::result(Json{{"replicas", Json::array()}});
  const Json before = m.update(first).report.body();
  ASSERT_FALSE(before["total_stored"].isNull());
  now += 30000;  // due again; this time the node has not answered yet
  Answers later{{kStorageIncentives, Answer::result(Json{{"replicas", Json::array()}})},
                {kStorageDiscover, Answer::failure(BB_ERR_TIMEOUT, "still waiting")},
                {kStorageManifests, Answer::failure(BB_ERR_TIMEOUT, "still waiting")}};
  EXPECT_TRUE(m.tolerates(kStorageDiscover));
  const Json after = m.update(later).report.body();
  EXPECT_EQ(after["total_stored"], before["total_stored"]);
  EXPECT_EQ(after["total_providers"], before["total_providers"]);
  EXPECT_EQ(after["as_of"]["total_stored"], Json(int64_t{5000}));
}

TEST(StorageMarket, ContractsFromIncentivesDecideWhilePipelineReadsArePending) {
  StorageOptions o;
  o.governor = false;
  StorageMarket m(o);
  Json replicas = Json::array();
  replicas.push_back(Json{{"object_id", "a"}, {"provider", "p1"}});
  replicas.push_back(Json{{"object_id", "a"}, {"provider", "p2"}});
  replicas.push_back(Json{{"object_id", "b"}, {"provider", "p1"}});
  Answers a{{kStorageStats, Answer::rpcError(-32601, "Method not found")},
            {kStorageIncentives, Answer::result(Json{{"replicas", replicas}})}};
  MarketReport r = m.update(a).report;
  const Json b = r.body();
  EXPECT_EQ(b["contracts"], Json(2));
  EXPECT_TRUE(b["total_stored"].isNull());
  EXPECT_NE(b["unavailable"]["total_stored"].asString().find("pipeline"), std::string::npos)
      << b.dump();
  EXPECT_NE(b["status"], Json("unavailable")) << b.dump();
}

TEST(StorageMarket, DiscoveryIntervalHasAFloor) {
  StorageOptions o;
  o.discovery_interval = 60;
  EXPECT_THROW(StorageMarket{o}, std::invalid_argument);
}

TEST(StorageMarket, SpecActive) {
  StorageMarket m;
  MarketReport r = m.update(fixtures.answers("spec_active.json")).report;
  Json b = r.body();
  EXPECT_EQ(m.profile(), Profile::kSpec);
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("spec"));
  EXPECT_EQ(b["total_stored"], Json(1024000000));
  EXPECT_EQ(b["total_providers"], Json(8));
  EXPECT_EQ(b["avg_price"], Json(0.001));
  EXPECT_EQ(b["capacity_used"], Json(0.65));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  EXPECT_FALSE(b.contains("manifests"));
  EXPECT_EQ(metric(r, "theblock_storage_stored_bytes")->value, 1024000000);
  expectConsistent(r);
  ASSERT_EQ(m.plan().size(), 1u);
  EXPECT_EQ(m.plan()[0].method, kStorageStats);
}

TEST(StorageMarket, SpecEmptyIsIdleAndStoredMovingIsHealthy) {
  StorageMarket m;
  MarketReport r = m.update(fixtures.answers("spec_empty.json")).report;
  EXPECT_EQ(r.status, Status::kIdle);
  EXPECT_EQ(r.body()["total_stored"], Json(0));
  expectConsistent(r);
  Json moved = fixtures.json("spec_empty.json");
  moved[kStorageStats]["result"]["total_stored"] = 4096;
  EXPECT_EQ(m.update(answersFromRecording(moved)).report.status, Status::kHealthy);
  // Bytes stored but no provider and nothing moved: quiet.
  EXPECT_EQ(m.update(answersFromRecording(moved)).report.status, Status::kIdle);
}

TEST(StorageMarket, TheblockDeduplicatesProviders) {
  StorageMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_active.json")).report;
  Json b = r.body();
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  EXPECT_EQ(b["status"], Json("healthy"));
  EXPECT_EQ(b["profile"], Json("theblock"));
  EXPECT_EQ(b["total_providers"], Json(2)) << "prov-1 is listed twice";
  EXPECT_EQ(b["avg_price"], Json(15)) << "mean of 10 and 20, the duplicate counted once";
  EXPECT_EQ(b["advertised_capacity_bytes"], Json(4000000));
  EXPECT_EQ(b["total_stored"], Json(1024));
  EXPECT_EQ(b["manifests"], Json(2));
  EXPECT_EQ(b["capacity_used"], Json(0.1));
  EXPECT_EQ(b["capacity_used_source"], Json("governor.status"));
  EXPECT_EQ(b["unavailable"].size(), 0u);
  expectConsistent(r);
  // storage.stats is no longer asked; the pipeline reads were answered, so only the cheap reads.
  const auto plan = m.plan();
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].method, kStorageIncentives);
  EXPECT_EQ(plan[1].method, kGovernorMethod);
  EXPECT_EQ(b["contracts"], Json(2));
}

TEST(StorageMarket, TheblockFreshNodeIsIdleWithReasonedNulls) {
  StorageMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_fresh.json")).report;
  Json b = r.body();
  EXPECT_EQ(r.status, Status::kIdle);
  EXPECT_EQ(b["total_providers"], Json(0));
  EXPECT_EQ(b["total_stored"], Json(0));
  EXPECT_TRUE(b["avg_price"].isNull());
  EXPECT_NE(b["unavailable"]["avg_price"].asString().find("no storage provider"),
            std::string::npos);
  EXPECT_TRUE(b["capacity_used"].isNull());
  EXPECT_NE(b["unavailable"]["capacity_used"].asString().find("TB_GOVERNOR_ENABLED"),
            std::string::npos);
  expectConsistent(r);
}

TEST(StorageMarket, TheblockDegraded) {
  StorageMarket m;
  MarketReport r = m.update(fixtures.answers("theblock_degraded.json")).report;
  Json b = r.body();
  EXPECT_EQ(b["total_providers"], Json(2));
  EXPECT_EQ(b["advertised_capacity_bytes"], Json(3000));
  EXPECT_TRUE(b["avg_price"].isNull()) << "one provider's price is a string: no average";
  EXPECT_NE(b["unavailable"]["avg_price"].asString().find("price_per_block is a string"),
            std::string::npos);
  EXPECT_TRUE(b["total_stored"].isNull());
  EXPECT_NE(b["unavailable"]["total_stored"].asString().find("total_len is a string"),
            std::string::npos);
  EXPECT_TRUE(b["capacity_used"].isNull());
  EXPECT_NE(b["unavailable"]["capacity_used"].asString().find("connection reset"),
            std::string::npos);
  EXPECT_EQ(r.status, Status::kIdle) << "providers known, nothing known to be in use";
  expectConsistent(r);
}

TEST(StorageMarket, FullPagesMakeTotalsUnknown) {
  StorageMarket m(StorageOptions{true, 3, 2});
  MarketReport r = m.update(fixtures.answers("theblock_active.json")).report;
  Json b = r.body();
  EXPECT_TRUE(b["total_providers"].isNull());
  EXPECT_NE(b["unavailable"]["total_providers"].asString().find("provider_limit"),
            std::string::npos);
  EXPECT_EQ(b["avg_price"], Json(15));
  EXPECT_TRUE(b["total_stored"].isNull());
  EXPECT_NE(b["unavailable"]["total_stored"].asString().find("limit of 2"), std::string::npos);
  expectConsistent(r);
}

TEST(StorageMarket, GarbageAndFailures) {
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("stats_string")).report;
    EXPECT_TRUE(r.unrecognised);
    EXPECT_EQ(r.status, Status::kUnavailable);
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("stats_unknown_object")).report;
    EXPECT_TRUE(r.unrecognised);
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("stats_wrong_types")).report;
    EXPECT_FALSE(r.unrecognised);
    EXPECT_EQ(r.status, Status::kUnavailable);
    for (const char* f : {"total_stored", "total_providers", "avg_price", "capacity_used"})
      EXPECT_TRUE(r.body()[f].isNull()) << f;
    EXPECT_NE(r.error.find("is a string"), std::string::npos) << r.error;
    EXPECT_NE(r.body()["unavailable"]["avg_price"].asString().find("negative"), std::string::npos);
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("stats_unavailable")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("unavailable"), std::string::npos);
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("nothing_served")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("serves no storage market"), std::string::npos);
    EXPECT_TRUE(r.body()["profile"].isNull());
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("all_down")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("connection refused"), std::string::npos) << r.error;
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("theblock_wrong_lists")).report;
    EXPECT_EQ(r.profile, Profile::kTheBlock);
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.body()["unavailable"]["total_stored"].asString().find("manifest store offline"),
              std::string::npos);
    expectConsistent(r);
  }
  {
    StorageMarket m;
    MarketReport r = m.update(garbage("theblock_unavailable")).report;
    EXPECT_EQ(r.status, Status::kUnavailable);
    EXPECT_NE(r.error.find("says the market is unavailable"), std::string::npos) << r.error;
    expectConsistent(r);
  }
}

TEST(StorageMarket, RedetectsWhenTheSpecMethodDisappears) {
  StorageMarket m;
  m.update(fixtures.answers("spec_active.json"));
  ASSERT_EQ(m.profile(), Profile::kSpec);
  Answers gone;
  gone[kStorageStats] = Answer::rpcError(-32601, "method not found");
  Outcome o = m.update(gone);
  EXPECT_TRUE(o.redetect);
  EXPECT_EQ(m.plan().size(), 2u);  // the cheap reads of both profiles
  Outcome o2 = m.update(fixtures.answers("theblock_active.json"));
  EXPECT_FALSE(o2.redetect);
  EXPECT_EQ(m.profile(), Profile::kTheBlock);
  EXPECT_EQ(o2.report.body()["total_providers"], Json(2));
}

}  // namespace
}  // namespace blockbuster::markets
