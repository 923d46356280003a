// The status rules of docs/markets.md ("Status rules") and the staleness rule of docs/metrics.md.
#include <gtest/gtest.h>

#include "api/dashboard_api.h"
#include "snapshot/snapshot_store.h"

namespace {

std::string overall(std::vector<std::string> statuses) {
  return bb::DashboardApi::overallStatus(statuses);
}

TEST(StatusRules, IdleMarketsDoNotDegradeTheWhole) {
  EXPECT_EQ(overall({"healthy", "idle", "idle", "idle"}), "healthy");
  EXPECT_EQ(overall({"idle", "idle", "idle", "idle"}), "idle");
  EXPECT_EQ(overall({"healthy", "healthy", "healthy", "healthy"}), "healthy");
}

TEST(StatusRules, AMarketThatCannotBeReadDegradesAndAllUnreadableIsDown) {
  EXPECT_EQ(overall({"healthy", "healthy", "healthy", "unavailable"}), "degraded");
  EXPECT_EQ(overall({"idle", "unavailable", "idle", "idle"}), "degraded");
  EXPECT_EQ(overall({"unavailable", "unavailable", "unavailable", "unavailable"}), "down");
  EXPECT_EQ(overall({}), "down");
}

TEST(StatusRules, AnyMarketTooOldToJudgeMakesTheWholeUnknown) {
  EXPECT_EQ(overall({"healthy", "healthy", "healthy", "unknown"}), "unknown");
  EXPECT_EQ(overall({"unknown", "unavailable", "unavailable", "unavailable"}), "unknown");
}

TEST(StatusRules, DataExpiresAfterTwoIntervalsPlusTheTimeout) {
  bb::SnapshotStore store;
  // interval 2 s, timeout 2 s: stale_after 6 s = 3 intervals.
  store.publish("compute.market", "compute", R"({"status":"healthy"})", false,
                std::chrono::milliseconds(6000));
  bb::SectionPtr s = store.get("compute.market");
  const auto at = s->published_at;
  EXPECT_FALSE(s->isExpired(at + std::chrono::milliseconds(5999)));
  EXPECT_TRUE(s->isExpired(at + std::chrono::milliseconds(6001)));
  // A failed refresh marks it stale at once, but it expires only with age.
  store.markError("compute.market", "compute", "node unreachable", std::chrono::milliseconds(6000));
  s = store.get("compute.market");
  EXPECT_TRUE(s->isStale(at + std::chrono::milliseconds(10)));
  EXPECT_FALSE(s->isExpired(at + std::chrono::milliseconds(10)));
}

}  // namespace
