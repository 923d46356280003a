// Plugins that throw, publish junk, hang or fail for a while: the agent logs and counts it, the
// other plugins go on, and nothing stacks up. The agent runs as a process, as in production.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/resource.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <string>

#include "host/misbehave_support.h"
#include "integration/stack.h"

using bbtest::Agent;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::kNoNode;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

std::string config(const std::string& options, int interval_ms = 100, int timeout_ms = 0) {
  return bbtest::misbehaveConfig(options, interval_ms, timeout_ms);
}

Json plugin(const Agent& agent, const std::string& name) {
  return bbtest::pluginHealth(agent, name);
}
double metric(const Agent& agent, const std::string& series) {
  return bbtest::metricValue(agent, series);
}

TEST(PluginFaults, AThrowingPluginIsCountedThenQuarantinedWhileTheOthersGoOn) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: throw}"));
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = plugin(agent, "misbehave");
    return m["state"].isString() && m["state"].asString() == "quarantined";
  })) << m.dump();
  EXPECT_GE(m["consecutive_failures"].asInt(), 5);
  EXPECT_NE(m["last_error"].asString().find("fixture failure number"), std::string::npos);
  EXPECT_GE(metric(agent, "blockbuster_plugin_collect_errors_total{plugin=\"misbehave\"}"), 5);
  EXPECT_EQ(metric(agent, "blockbuster_plugin_quarantines_total{plugin=\"misbehave\"}"), 1);
  EXPECT_EQ(metric(agent, "blockbuster_plugin_up{plugin=\"misbehave\"}"), 0);
  EXPECT_TRUE(agent.process().waitForLine("quarantined after 5 consecutive failures",
                                          std::chrono::seconds(5)));
  // Quarantine spaces the runs out: the failure count grows much more slowly than 10/s now.
  int64_t failures = plugin(agent, "misbehave")["failures"].asInt();
  Json steady = plugin(agent, "steady");
  int64_t steady_runs = steady["collections"].asInt();
  EXPECT_EQ(steady["state"].asString(), "ok");
  ASSERT_TRUE(eventually(
      [&] { return plugin(agent, "steady")["collections"].asInt() >= steady_runs + 10; }));
  EXPECT_LT(plugin(agent, "misbehave")["failures"].asInt(), failures + 10);
  EXPECT_TRUE(agent.process().running());
}

TEST(PluginFaults, AHangingPluginHasItsRunsSkippedNotStackedAndDelaysNoOne) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: hang, hang_ms: 1500}", 100, 200));
  ASSERT_TRUE(eventually([&] {
    return plugin(agent, "misbehave")["state"].asString() == "overdue";
  })) << plugin(agent, "misbehave").dump();
  // While it hangs, the other plugin keeps its 100 ms pace.
  int64_t steady_runs = plugin(agent, "steady")["collections"].asInt();
  ASSERT_TRUE(
      eventually([&] { return plugin(agent, "steady")["collections"].asInt() >= steady_runs + 5; },
                 std::chrono::seconds(5)));
  EXPECT_EQ(plugin(agent, "misbehave")["collections"].asInt(), 0) << "still inside its first run";
  // When it returns, the runs it missed were skipped, not run back to back.
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = plugin(agent, "misbehave");
    return m["collections"].asInt() >= 1;
  }));
  EXPECT_GE(m["skipped_runs"].asInt(), 5) << m.dump();
  EXPECT_GE(metric(agent, "blockbuster_plugin_skipped_runs_total{plugin=\"misbehave\"}"), 5);
}

TEST(PluginFaults, InvalidJsonIsRefusedAndTheSectionSaysWhy) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: bad_json}"));
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = plugin(agent, "misbehave");
    return m["failures"].isInt() && m["failures"].asInt() > 0;
  })) << m.dump();
  EXPECT_NE(m["last_error"].asString().find("refused invalid JSON"), std::string::npos) << m.dump();
  auto section = httpGet(agent.port(), "/plugins/misbehave/state");
  EXPECT_EQ(section.status, 503);
  EXPECT_NE(section.body.find("invalid JSON"), std::string::npos) << section.body;
}

TEST(PluginFaults, AFlakyPluginRecoversAndItsDataIsFreshAgain) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: flaky, fail_runs: 3}"));
  ASSERT_TRUE(eventually([&] {
    Json m = plugin(agent, "misbehave");
    return m["state"].asString() == "ok" && m["failures"].asInt() == 3;
  })) << plugin(agent, "misbehave").dump();
  Json section = httpGet(agent.port(), "/plugins/misbehave/state").json();
  EXPECT_GT(section["runs"].asInt(), 3);
  EXPECT_FALSE(section["stale"].asBool());
  EXPECT_EQ(metric(agent, "blockbuster_plugin_up{plugin=\"misbehave\"}"), 1);
}

TEST(PluginFaults, SigtermStopsTheAgentEvenWithAPluginStuckInCollect) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: hang, hang_ms: 30000}", 100, 200));
  ASSERT_TRUE(
      eventually([&] { return plugin(agent, "misbehave")["state"].asString() == "overdue"; }));
  agent.process().signal(SIGTERM);
  auto status = agent.process().wait(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value()) << "the agent did not exit";
  EXPECT_EQ(*status, 0) << agent.process().output();
  EXPECT_NE(agent.process().output().find("abandoning it"), std::string::npos);
}

// The nice value of each thread of process `pid`, by thread name (the last of a name wins).
std::map<std::string, int> niceByThread(int pid) {
  std::map<std::string, int> nice;
  for (const auto& task :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/task")) {
    std::string comm, stat;
    std::getline(std::ifstream(task.path() / "comm"), comm);
    std::getline(std::ifstream(task.path() / "stat"), stat);
    // After "pid (comm) ": state is field 3, nice field 19 (proc(5)).
    std::istringstream fields(stat.substr(stat.rfind(')') + 2));
    std::string field;
    for (int i = 3; i <= 19 && fields >> field; ++i) {
    }
    if (!field.empty()) nice[comm] = std::stoi(field);
  }
  return nice;
}

TEST(PluginThreads, CollectRunsNicerThanTheEventLoops) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: ok}"));
  ASSERT_TRUE(eventually([&] { return plugin(agent, "steady")["collections"].asInt() >= 1; }));
  auto nice = niceByThread(agent.process().pid());
  ASSERT_TRUE(nice.count("bb-misbehave") && nice.count("bb-steady") && nice.count("bb-http-0"));
  const int base = getpriority(PRIO_PROCESS, 0);  // the agent's: this test's (`nice ctest`: 10)
  EXPECT_EQ(nice["bb-misbehave"], std::min(19, base + 5));
  EXPECT_EQ(nice["bb-steady"], std::min(19, base + 5));
  EXPECT_EQ(nice["bb-http-0"], base);  // the loops, and what answers WebSocket clients, are not
  EXPECT_EQ(nice["bb-http-1"], base);
  EXPECT_EQ(nice["bb-ws-push-0"], base);
}

}  // namespace
