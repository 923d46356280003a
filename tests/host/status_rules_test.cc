// The status rules of docs/markets.md ("Status rules") and the staleness rule of docs/metrics.md.
#include <gtest/gtest.h>

#include <optional>

#include "api/dashboard_api.h"
#include "api/node_monitor.h"
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

namespace {

bb::RpcOutcome outcome(bb::RpcStatus status, double seconds = 0, int http = 0,
                       const std::string& message = "x",
                       std::optional<bb::RpcFailure> failure = {}) {
  bb::RpcOutcome o;
  o.status = status;
  o.failure = failure.value_or(bb::failureOf(status));
  o.seconds = seconds;
  o.http_status = http;
  o.attempts = status == bb::RpcStatus::Invalid ? 0 : 1;  // sent, unless refused unsent
  o.json = "{\"code\":0,\"message\":\"" + message + "\"}";
  return o;
}

TEST(NodeJudgement, ASlowMethodIsNotADownNodeAndOneOutageKeepsOneCause) {
  bb::NodeMonitor m(nullptr, std::chrono::milliseconds(60000));
  EXPECT_FALSE(m.state().reachable) << "never overstated before the first answer";
  m.record("net.overlay_status", outcome(bb::RpcStatus::Ok, 0.01, 200));
  EXPECT_TRUE(m.state().reachable);
  // One method over its deadline while the others answer: reported against it, not the node.
  m.record("storage.manifests", outcome(bb::RpcStatus::Timeout, 5));
  EXPECT_TRUE(m.state().reachable);
  // A refusal that began before another call was answered: not the node's absence.
  m.record("net.peer_stats_all",
           outcome(bb::RpcStatus::Transport, 10, 0, "net.peer_stats_all: connection refused",
                   bb::RpcFailure::Refused));
  EXPECT_TRUE(m.state().reachable);
  // An empty reply (one handler's panic) with no answer since it began: within the window, still
  // one method's failure.
  m.record("light.latest_header",
           outcome(bb::RpcStatus::Transport, 0, 0, "empty reply", bb::RpcFailure::Dropped));
  EXPECT_TRUE(m.state().reachable);
  // Refused with no answer since the call began: the node is gone, at once.
  m.record("compute_market.stats",
           outcome(bb::RpcStatus::Transport, 0, 0, "compute_market.stats: connection refused",
                   bb::RpcFailure::Refused));
  bb::NodeState s = m.state();
  EXPECT_FALSE(s.reachable);
  EXPECT_NE(s.last_error.find("connection refused"), std::string::npos) << s.last_error;
  // Later failures with other wording: the same outage, the same cause, counted.
  m.record("energy.market_state", outcome(bb::RpcStatus::Timeout, 2, 0, "energy: timeout"));
  m.record("energy.market_state", outcome(bb::RpcStatus::Timeout, 0, 0, "shared copy"));
  bb::RpcOutcome shared = outcome(bb::RpcStatus::Timeout);
  shared.shared = true;  // a copy of another call's outcome: not counted twice
  m.record("governor.status", shared);
  s = m.state();
  EXPECT_NE(s.last_error.find("connection refused"), std::string::npos) << s.last_error;
  EXPECT_EQ(s.failed_calls, 3u);
  // Refused unsent by the agent's own policy: nothing reached the node, nothing judged.
  m.record("storage.audit", outcome(bb::RpcStatus::Invalid));
  EXPECT_EQ(m.state().failed_calls, 3u);
  m.record("net.overlay_status", outcome(bb::RpcStatus::Ok, 0.01, 200));
  s = m.state();
  EXPECT_TRUE(s.reachable);
  EXPECT_TRUE(s.last_error.empty());
}

}  // namespace
