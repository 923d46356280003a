// The real agent against a hostile node (issue 15).
// Defect 1: a node that dribbles every reply one byte at a time: SIGTERM with calls in flight
// ends the process promptly (systemd would SIGKILL it after its stop timeout), and a call ends
// by its deadline (the plugin is not left "overdue"). The peer gives up by itself after 40 s, so
// the old behaviour fails the test, it does not hang it.
// Defect 8: answers of the right JSON types whose values are impossible (negative counts, a
// ratio over 1, an array for net.stats) fail the collect with the reason, as a wrong type does:
// never a market of nulls served as fresh with /health ok.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <string>

#include "integration/stack.h"
#include "reliability/reliability_support.h"
#include "support/dribble_peer.h"

namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::string config(int rpc_timeout_ms, int plugin_timeout_ms) {
  std::string yaml =
      "rpc:\n  timeout_ms: " + std::to_string(rpc_timeout_ms) +
      "\n  connect_timeout_ms: 500\n  retries: 0\nplugins:\n  network:\n    interval_ms: 500\n"
      "    timeout_ms: " +
      std::to_string(plugin_timeout_ms) + "\n";
  for (const char* other : {"compute", "storage", "energy", "ads", "receipts"})
    yaml += std::string("  ") + other + ":\n    enabled: false\n";
  return yaml;
}

TEST(HostileNode, SigtermWithACallInFlightExitsPromptly) {
  // Each byte of the reply comes 20 ms after the last: 2 KB of head take 40 s.
  bbtest::DribblePeer peer(bbtest::DribblePeer::jsonReply("{}", 2000), 20ms, 40s);
  bbtest::TempDir home;
  // Timeouts far beyond the test: only the stop can end the call in flight.
  bbtest::Agent agent(home, peer.url(), config(600000, 600000));
  ASSERT_TRUE(peer.waitForRequests(1, 20s)) << agent.process().output();
  const auto start = Clock::now();
  agent.process().signal(SIGTERM);
  // Generous for a shared machine, and far below both the peer's 40 s and systemd's 90 s.
  const auto status = agent.process().wait(15s);
  ASSERT_TRUE(status.has_value()) << "still running 15 s after SIGTERM";
  EXPECT_EQ(*status, 0) << agent.process().output();
  EXPECT_NE(agent.process().output().find("stopped"), std::string::npos);
  std::printf("exited %.2f s after SIGTERM\n",
              std::chrono::duration<double>(Clock::now() - start).count());
}

TEST(HostileNode, ADribbledReplyFailsTheCollectAtItsDeadline) {
  bbtest::DribblePeer peer(bbtest::DribblePeer::jsonReply("{}", 2000), 20ms, 40s);
  bbtest::TempDir home;
  // Each attempt ends within connect 0.5 s + 0.5 s, far inside the 4 s collect deadline: the
  // collect fails with the call's timeout (/health names it), the plugin is never overdue.
  bbtest::Agent agent(home, peer.url(), config(500, 4000));
  std::string seen;
  const bool failed = bbtest::eventually(
      [&] {
        auto r = bbtest::httpGet(agent.port(), "/health");
        seen = r.body;
        return r.body.find("within the timeout") != std::string::npos;
      },
      20s);
  EXPECT_TRUE(failed) << seen << "\n" << agent.process().output();
  EXPECT_EQ(seen.find("overdue"), std::string::npos) << seen;
}

using blockbuster::Json;

std::string healthOf(int port) {
  const Json h = bbrel::getJson(port, "/health");
  std::string out = h["status"].isString() ? h["status"].asString() : "?";
  if (h["reasons"].isArray())
    for (const auto& r : h["reasons"].asArray())
      if (r.isString()) out += "\n" + r.asString();
  return out;
}

TEST(HostileNode, ImpossibleMarketFiguresFailTheCollect) {
  bbtest::DevNode node("spec", {"--block-ms", "300"});
  bbrel::NodeProxy proxy(node.port());
  bbtest::TempDir home;
  bbtest::Agent agent(home, proxy.url(), bbrel::agentConfig());
  // Right types, impossible values: what a buggy or hostile node can send.
  proxy.mutate("storage.stats", [](const Json&) {
    return Json{
        {"total_stored", -5}, {"providers", -1}, {"avg_price", -0.5}, {"capacity_used", 7.5}};
  });
  std::string health;
  const bool failing = bbtest::eventually([&] {
    health = healthOf(agent.port());
    return health.find("plugin storage is failing") != std::string::npos;
  });
  EXPECT_TRUE(failing) << health;
  EXPECT_EQ(health.rfind("degraded", 0), 0u) << health;
  EXPECT_NE(health.find("impossible value"), std::string::npos) << health;
  EXPECT_NE(health.find("negative"), std::string::npos) << health;
  const Json storage =
      bbrel::getJson(agent.port(), "/theblock/markets/health")["markets"]["storage"];
  EXPECT_FALSE(storage["stale"].isBool() && !storage["stale"].asBool())
      << "served as fresh: " << storage.dump();
}

TEST(HostileNode, NetStatsThatIsNoObjectFailsTheCollect) {
  bbtest::DevNode node("spec", {"--block-ms", "300"});
  bbrel::NodeProxy proxy(node.port());
  bbtest::TempDir home;
  bbtest::Agent agent(home, proxy.url(), bbrel::agentConfig());
  proxy.mutate("net.stats", [](const Json&) {
    return Json(Json::Array{Json(1), Json(2), Json(3)});
  });
  std::string health;
  const bool failing = bbtest::eventually([&] {
    health = healthOf(agent.port());
    return health.find("plugin network is failing") != std::string::npos;
  });
  EXPECT_TRUE(failing) << health;
  EXPECT_NE(health.find("net.stats answered"), std::string::npos) << health;
}

}  // namespace
