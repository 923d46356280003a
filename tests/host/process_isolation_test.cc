// isolation: process (issue 8): a plugin in its own process (bb-plugin-runner) that crashes,
// hangs or is killed costs only that process; the agent, the other plugins and the plugin's
// own routes go on, and the process is started again with backoff. Real plugins work there
// unchanged. The agent runs as a process, as in production.
#include <gtest/gtest.h>
#include <signal.h>

#include <cerrno>
#include <cstdlib>
#include <thread>

#include "host/misbehave_support.h"
#include "integration/stack.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::kNoNode;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

std::string config(const std::string& options, int interval_ms = 100, int timeout_ms = 0) {
  return bbtest::misbehaveConfig(options, interval_ms, timeout_ms, "process");
}

using bbtest::metricValue;
using bbtest::pluginHealth;

bool processGone(int pid) { return pid > 0 && ::kill(pid, 0) != 0 && errno == ESRCH; }

TEST(ProcessIsolation, APluginRunsInItsOwnProcessAndServesItsRouteFromThere) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: ok}"));
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = pluginHealth(agent, "misbehave");
    return m["state"].asString() == "ok" && m["pid"].isInt();
  })) << m.dump();
  EXPECT_EQ(m["isolation"].asString(), "process");
  EXPECT_EQ(pluginHealth(agent, "steady")["isolation"].asString(), "inprocess");
  const int64_t pid = m["pid"].asInt();
  EXPECT_NE(pid, agent.process().pid());
  // Its route is answered by its process; the in-process plugin's by the agent.
  auto route = httpGet(agent.port(), "/fixture/misbehave");
  ASSERT_EQ(route.status, 200) << route.body;
  EXPECT_EQ(route.json()["pid"].asInt(), pid);
  EXPECT_EQ(httpGet(agent.port(), "/fixture/steady").json()["pid"].asInt(), agent.process().pid());
  // Its section and metrics come through the same host API as in process.
  auto section = httpGet(agent.port(), "/plugins/misbehave/state");
  ASSERT_EQ(section.status, 200) << section.body;
  EXPECT_GE(section.json()["runs"].asInt(), 1);
  EXPECT_GE(metricValue(agent, "fixture_runs{plugin=\"misbehave\"}"), 1);
  EXPECT_EQ(metricValue(agent, "blockbuster_plugin_process_restarts_total{plugin=\"misbehave\"}"),
            0);
}

TEST(ProcessIsolation, ASegfaultRestartsOnlyThePluginsProcess) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: crash_once}"));
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = pluginHealth(agent, "misbehave");
    return m["process_restarts"].asInt() == 1 && m["state"].asString() == "ok";
  })) << m.dump();
  EXPECT_NE(m["last_exit"].asString().find("killed by signal 11"), std::string::npos) << m.dump();
  EXPECT_TRUE(agent.process().running());
  EXPECT_TRUE(agent.process().waitForLine("was killed by signal 11", std::chrono::seconds(5)));
  EXPECT_EQ(metricValue(agent, "blockbuster_plugin_process_restarts_total{plugin=\"misbehave\"}"),
            1);
  // The new process works: its collects publish and its route answers.
  const int64_t runs = httpGet(agent.port(), "/plugins/misbehave/state").json()["runs"].asInt();
  ASSERT_TRUE(eventually([&] {
    return httpGet(agent.port(), "/plugins/misbehave/state").json()["runs"].asInt() > runs;
  }));
  EXPECT_EQ(httpGet(agent.port(), "/fixture/misbehave").status, 200);
  // The other plugin never noticed.
  Json steady = pluginHealth(agent, "steady");
  EXPECT_EQ(steady["state"].asString(), "ok");
  EXPECT_EQ(steady["failures"].asInt(), 0);
}

TEST(ProcessIsolation, RepeatedCrashesAreRestartedWithGrowingBackoff) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: crash, fail_runs: 0}"));
  // Each death in a row doubles the wait before the next process: 0.5 s, 1 s, 2 s.
  ASSERT_TRUE(agent.process().waitForLine("starting a new one in 0.5 s (death 1 in a row)",
                                          std::chrono::seconds(10)));
  ASSERT_TRUE(agent.process().waitForLine("starting a new one in 1.0 s (death 2 in a row)",
                                          std::chrono::seconds(10)));
  ASSERT_TRUE(agent.process().waitForLine("starting a new one in 2.0 s (death 3 in a row)",
                                          std::chrono::seconds(10)));
  Json m = pluginHealth(agent, "misbehave");
  EXPECT_NE(m["last_error"].asString().find("killed by signal 11"), std::string::npos) << m.dump();
  // While it waits, its route says why it cannot answer instead of hanging.
  auto route = httpGet(agent.port(), "/fixture/misbehave");
  if (route.status == 503) {
    EXPECT_NE(route.body.find("runs in its own process"), std::string::npos) << route.body;
  }
  EXPECT_TRUE(agent.process().running());
  EXPECT_EQ(pluginHealth(agent, "steady")["state"].asString(), "ok");
}

TEST(ProcessIsolation, AProcessKilledFromOutsideIsReplaced) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: ok}"));
  int64_t pid = 0;
  ASSERT_TRUE(eventually([&] {
    Json m = pluginHealth(agent, "misbehave");
    pid = m["pid"].isInt() ? m["pid"].asInt() : 0;
    return pid > 0;
  }));
  ASSERT_EQ(::kill(static_cast<pid_t>(pid), SIGKILL), 0);
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = pluginHealth(agent, "misbehave");
    return m["pid"].isInt() && m["pid"].asInt() != pid && m["state"].asString() == "ok";
  })) << m.dump();
  EXPECT_NE(m["last_exit"].asString().find("killed by signal 9"), std::string::npos) << m.dump();
  EXPECT_TRUE(eventually([&] { return processGone(static_cast<int>(pid)); }))
      << "the dead process was not reaped";
}

TEST(ProcessIsolation, ACollectHungPastItsLimitIsKilledAndRestarted) {
  TempDir home;
  // timeout 200 ms: the agent kills a collect still running after max(2 x 200 ms, 200 ms + 5 s).
  Agent agent(home, kNoNode, config("{mode: hang, hang_ms: 60000}", 100, 200));
  ASSERT_TRUE(
      agent.process().waitForLine("collect still running after 5.2 s", std::chrono::seconds(20)));
  Json m = pluginHealth(agent, "misbehave");
  EXPECT_NE(m["last_exit"].asString().find("killed by signal 9"), std::string::npos) << m.dump();
  EXPECT_GE(m["process_restarts"].asInt(), 1);
  EXPECT_EQ(pluginHealth(agent, "steady")["state"].asString(), "ok");
}

TEST(ProcessIsolation, SigtermEndsThePluginProcessesToo) {
  TempDir home;
  Agent agent(home, kNoNode, config("{mode: hang, hang_ms: 30000}", 100, 200));
  int64_t pid = 0;
  ASSERT_TRUE(eventually([&] {
    Json m = pluginHealth(agent, "misbehave");
    pid = m["pid"].isInt() ? m["pid"].asInt() : 0;
    return pid > 0 && m["state"].asString() == "overdue";
  }));
  agent.process().signal(SIGTERM);
  auto status = agent.process().wait(std::chrono::seconds(5));
  ASSERT_TRUE(status.has_value()) << "the agent did not exit";
  EXPECT_EQ(*status, 0) << agent.process().output();
  EXPECT_TRUE(
      eventually([&] { return processGone(static_cast<int>(pid)); }, std::chrono::seconds(5)))
      << "the plugin's process outlived the agent";
}

TEST(ProcessIsolation, AMissingRunnerIsAClearStartUpError) {
  TempDir home;
  // A copy of the agent without bb-plugin-runner beside it cannot run isolated plugins: found
  // at start, with the key and the fix. (--check-config reads the same path.)
  home.write("c.yaml", config("{mode: ok}"));
  const std::string yaml = home.file("c.yaml");
  const std::string copy = home.path() + "/bin/blockbuster-agent";
  ASSERT_EQ(std::system(("mkdir -p '" + home.path() + "/bin' && cp '" +
                         bbtest::binPath("blockbuster-agent") + "' '" + copy + "'")
                            .c_str()),
            0);
  bbtest::ChildProcess check({copy, "--check-config", "--config", yaml});
  auto status = check.wait(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 2) << check.output();
  EXPECT_NE(check.output().find("plugins.misbehave.isolation: 'process' needs bb-plugin-runner"),
            std::string::npos)
      << check.output();
}

TEST(ProcessIsolation, RealPluginsServeTheSameApiFromTheirOwnProcesses) {
  DevNode node("spec", {"--block-ms", "300"});
  TempDir home;
  Agent agent(home, node.url(),
              "plugins:\n"
              "  network: {interval_ms: 300, isolation: process}\n"
              "  receipts: {interval_ms: 300, isolation: process}\n");
  Json metrics;
  ASSERT_TRUE(eventually([&] {
    auto r = httpGet(agent.port(), "/theblock/network/metrics");
    if (r.status != 200) return false;
    metrics = r.json();
    return metrics["block_height"].isInt() && metrics["block_height"].asInt() > 0;
  })) << metrics.dump();
  Json receipts;
  ASSERT_TRUE(eventually([&] {
    auto r = httpGet(agent.port(), "/theblock/receipts?limit=5&market=compute");
    if (r.status != 200) return false;
    receipts = r.json();
    return receipts["receipts"].isArray() && !receipts["receipts"].asArray().empty();
  })) << receipts.dump();
  for (const auto& r : receipts["receipts"].asArray()) EXPECT_EQ(r["market"].asString(), "compute");
  // A bad parameter is still a 400 naming it, now answered by the plugin's process.
  auto bad = httpGet(agent.port(), "/theblock/receipts?limit=0");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.body.find("limit"), std::string::npos) << bad.body;
  Json health = httpGet(agent.port(), "/health").json();
  for (const char* name : {"network", "receipts"}) {
    EXPECT_EQ(health["plugins"][name]["isolation"].asString(), "process") << name;
    EXPECT_TRUE(health["plugins"][name]["pid"].isInt()) << name;
  }
  EXPECT_EQ(health["plugins"]["compute"]["isolation"].asString(), "inprocess");
  // Metrics set from the plugin's process reach /metrics with their labels.
  std::string text = httpGet(agent.port(), "/metrics").body;
  EXPECT_NE(text.find("\ntheblock_block_height "), std::string::npos);
}

}  // namespace
