// Do no harm to the node we watch, and never overstate its health (issue 14).
//
// The agent runs at its default settings (no config file: six plugins every 2 s) against
// bb-devnode --profile theblock with the real node's hazards on: pipeline-opening storage reads
// take 1.5 s, leak a node thread each and panic when two run at once; RPC calls stall while
// mining; light.latest_header panics an empty chain. Mid-run one method turns slow, then the
// node is replaced by a fresh one (empty chain) on the same port, then it stops.
// bb-devnode's ground truth (GET /_devnode/state "hazards", /_devnode/stats) is the judge.
#include <gtest/gtest.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "integration/stack.h"

namespace {

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::TempDir;
using blockbuster::Json;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr double kIntervalSeconds = 2.0;  // the agent's default collect interval

Json getJson(int port, const std::string& path) {
  auto r = httpGet(port, path);
  if (r.status != 200) return Json();
  try {
    return r.json();
  } catch (...) {
    return Json();
  }
}

Json hazards(int node_port) { return getJson(node_port, "/_devnode/state")["hazards"]; }

// An integer member, or -1 when absent (the node may be between two processes).
int64_t intOf(const Json& v) { return v.isInt() ? v.asInt() : -1; }

uint64_t nodeRequests(int node_port) {
  const Json st = getJson(node_port, "/_devnode/stats");
  uint64_t n = 0;
  if (st["methods"].isObject())
    for (const auto& kv : st["methods"].asObject()) n += static_cast<uint64_t>(kv.second.asInt());
  return n;
}

bool mentionsUnreachable(const Json& health) {
  if (!health["reasons"].isArray()) return false;
  for (const auto& r : health["reasons"].asArray())
    if (r.isString() && r.asString().find("unreachable") != std::string::npos) return true;
  return false;
}

// Watches /health for a while: returns how many samples said the node is unreachable.
int unreachableSamples(int agent_port, std::chrono::milliseconds for_how_long,
                       std::string* example) {
  int bad = 0;
  const auto until = Clock::now() + for_how_long;
  while (Clock::now() < until) {
    const Json h = getJson(agent_port, "/health");
    if (h["node"]["reachable"].isBool() &&
        (!h["node"]["reachable"].asBool() || mentionsUnreachable(h))) {
      ++bad;
      if (example->empty()) *example = h.dump();
    }
    std::this_thread::sleep_for(200ms);  // sampling over a window: the window is the behaviour
  }
  return bad;
}

// Warnings in `log`: those of [node], and the plugins' "collect failed" ones once [node] has
// stated the outage. (A plugin whose call failed before the node was judged down, within the
// judgement window, may still have said so once: docs/reliability.md.)
std::pair<int, int> outageWarnings(const std::string& log) {
  int node_warnings = 0, plugin_warnings = 0;
  size_t begin = 0;
  while (begin < log.size()) {
    size_t end = log.find('\n', begin);
    if (end == std::string::npos) end = log.size();
    const std::string line = log.substr(begin, end - begin);
    begin = end + 1;
    if (line.find(" warn ") == std::string::npos) continue;
    node_warnings += line.find("[node]") != std::string::npos;
    plugin_warnings += node_warnings > 0 && line.find("[plugin:") != std::string::npos &&
                       line.find("collect failed") != std::string::npos;
  }
  return {node_warnings, plugin_warnings};
}

TEST(NodeSafety, TheAgentAtItsDefaultsDoesNoHarmAndNeverOverstatesHealth) {
  DevNode node("theblock", {"--block-ms", "1000", "--pipeline-ms", "1500", "--mining-stall-ms",
                            "300", "--start-height", "20"});
  const int np = node.port();
  TempDir home;
  const auto started = Clock::now();
  Agent agent(home, node.url());
  const int ap = agent.port();

  // 1. Steady state: every market and the network fresh, the pipeline reads done.
  ASSERT_TRUE(eventually(
      [&] {
        const Json m = getJson(ap, "/theblock/markets/health");
        return m["markets"]["storage"]["total_stored"].isNumber() &&
               m["markets"]["storage"]["total_providers"].isNumber() &&
               getJson(ap, "/theblock/network/metrics")["block_height"].isNumber();
      },
      30s))
      << getJson(ap, "/theblock/markets/health").dump();
  // Rate: steady requests per second over 10 s, after the start-up.
  const uint64_t before = nodeRequests(np);
  const auto t0 = Clock::now();
  std::this_thread::sleep_for(10s);  // a rate over a window: the window is the measurement
  const double rate = static_cast<double>(nodeRequests(np) - before) /
                      std::chrono::duration<double>(Clock::now() - t0).count();
  RecordProperty("steady_requests_per_second", std::to_string(rate));
  EXPECT_LE(rate, 10.0) << "requests per second to the node at the defaults";

  // 2. One method slow (4 s, over the 2 s collect deadline): a slow method, not a down node.
  ASSERT_EQ(bbtest::httpRequest(np, "POST", "/_devnode/faults", {},
                                R"({"latency_ms":{"compute_market.scheduler_stats":4000}})")
                .status,
            200);
  std::string example;
  const int bad = unreachableSamples(ap, 12s, &example);
  EXPECT_EQ(bad, 0) << "/health said the node is unreachable while only one method was slow: "
                    << example;
  const Json slow_health = getJson(ap, "/health");
  EXPECT_NE(slow_health.dump().find("compute"), std::string::npos)
      << "the slow method's plugin is named: " << slow_health.dump();
  ASSERT_EQ(bbtest::httpRequest(np, "DELETE", "/_devnode/faults").status, 200);

  // 3. Replaced by a fresh node (empty chain, not mining) on the same address.
  const Json pre = hazards(np);
  ASSERT_EQ(bbtest::httpRequest(np, "POST", "/_devnode/replace").status, 200);
  ASSERT_TRUE(eventually([&] { return intOf(hazards(np)["replacements"]) == 1; }, 10s));
  // Five cycles on the empty chain: light.latest_header must never reach it (something that must
  // not happen over a window: a sleep, not an await).
  std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(kIntervalSeconds * 5000)));
  Json h = hazards(np);
  EXPECT_EQ(intOf(h["panics"]), 0) << h.dump();
  EXPECT_EQ(h["light_poisoned"], Json(false)) << h.dump();
  const Json empty_metrics = getJson(ap, "/theblock/network/metrics");
  EXPECT_TRUE(empty_metrics["block_height"].isNull()) << empty_metrics.dump();
  // Blocks again: the height comes back.
  bbtest::httpRequest(np, "POST", "/_devnode/advance", {}, R"({"blocks":3})");
  EXPECT_TRUE(eventually(
      [&] { return getJson(ap, "/theblock/network/metrics")["block_height"].isNumber(); }, 15s));
  h = hazards(np);
  EXPECT_EQ(intOf(h["panics"]), 0) << h.dump();

  // Over the whole run: the pipeline reads as designed (each read once per discovery_interval,
  // 6 h: once each here), never two at once.
  EXPECT_GE(intOf(h["pipeline_reads"]), 1) << "the storage figures need one read: " << h.dump();
  EXPECT_LE(intOf(h["pipeline_reads"]), 2) << h.dump();
  EXPECT_EQ(intOf(h["pipeline_max_concurrent"]), 1) << h.dump();
  RecordProperty("pipeline_reads", std::to_string(intOf(h["pipeline_reads"])));
  RecordProperty("leaked_threads_total", std::to_string(intOf(h["leaked_threads_total"])));
  RecordProperty("panics", std::to_string(intOf(h["panics"])));
  (void)pre;

  // 4. The node stops: 3 intervals later nothing is shown healthy, and one cause is stated.
  const size_t log_before_stop = agent.process().output().size();
  node.process().signal(SIGKILL);
  node.process().wait(5s);
  const auto stopped = Clock::now();
  std::this_thread::sleep_until(
      stopped + std::chrono::milliseconds(static_cast<int>(kIntervalSeconds * 3000 + 500)));
  const Json markets = getJson(ap, "/theblock/markets/health");
  for (const char* m : {"compute", "storage", "energy", "ads"}) {
    const Json& sj = markets["markets"][m]["status"];
    const std::string st = sj.isString() ? sj.asString() : "";
    EXPECT_TRUE(st != "healthy" && st != "idle") << m << " is " << st << ": " << markets.dump();
  }
  const std::string overall =
      markets["overall_status"].isString() ? markets["overall_status"].asString() : "";
  EXPECT_TRUE(overall == "unknown" || overall == "down") << markets.dump();
  EXPECT_TRUE(markets["stale_reason"].isString()) << markets.dump();
  const std::string metrics = httpGet(ap, "/metrics").body;
  EXPECT_EQ(metrics.find("theblock_market_up{market=\"compute\"} 1"), std::string::npos);
  EXPECT_EQ(metrics.find("theblock_market_up{market=\"storage\"} 1"), std::string::npos);
  EXPECT_NE(metrics.find("blockbuster_plugin_stale{plugin=\"network\"} 1"), std::string::npos);
  const Json health = getJson(ap, "/health");
  EXPECT_EQ(health["status"], Json("degraded")) << health.dump();
  int node_reasons = 0;
  if (health["reasons"].isArray())
    for (const auto& r : health["reasons"].asArray())
      node_reasons += r.isString() && r.asString().find("node") != std::string::npos;
  EXPECT_EQ(node_reasons, 1) << "one outage, one cause: " << health.dump();
  EXPECT_EQ(health["reasons"].size(), 1u) << health.dump();
  // ...and in the log: one warning from [node], no plugin repeating it for want of the node.
  const std::string log_after = agent.process().output().substr(log_before_stop);
  const auto [node_warnings, plugin_warnings] = outageWarnings(log_after);
  EXPECT_EQ(node_warnings, 1) << log_after;
  EXPECT_EQ(plugin_warnings, 0) << "the outage's cause is stated once, by [node]:\n" << log_after;
  RecordProperty("run_seconds",
                 std::to_string(std::chrono::duration<double>(Clock::now() - started).count()));
}

// A node that is not there when the agent starts: one warning from [node] saying why, none from
// the plugins that fail for want of it, however many cycles go by.
TEST(NodeSafety, ANodeDownAtStartIsOneWarningInTheLog) {
  TempDir home;
  Agent agent(home, "http://127.0.0.1:" + std::to_string(bbtest::freeLoopbackPort()));
  const int ap = agent.port();
  ASSERT_TRUE(eventually([&] {
    const Json h = getJson(ap, "/health");
    return h["plugins"]["network"]["failures"].isInt() &&
           h["plugins"]["network"]["failures"].asInt() >= 3;
  })) << agent.process().output();
  const std::string log = agent.process().output();
  const auto [node_warnings, plugin_warnings] = outageWarnings(log);
  EXPECT_EQ(node_warnings, 1) << log;
  EXPECT_EQ(plugin_warnings, 0) << log;
  const Json h = getJson(ap, "/health");
  EXPECT_EQ(h["status"], Json("degraded")) << h.dump();
  EXPECT_EQ(h["reasons"].size(), 1u) << h.dump();
}

}  // namespace
