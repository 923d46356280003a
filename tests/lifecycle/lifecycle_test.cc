// SIGHUP reloads the config without disturbing what did not change; SIGTERM drains and exits.
// The agent runs as a process with two fixture plugins ("misbehave" and "steady", which publish
// a "state" section and a fixture_runs gauge); no node is needed.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <vector>

#include "integration/stack.h"
#include "ws/ws_client.h"

using bbtest::Agent;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::TempDir;
using bbtest::WsClient;
using blockbuster::Json;
using namespace std::chrono_literals;

namespace {

const std::string kNoNode = "http://127.0.0.1:9";

std::string config(int misbehave_interval_ms, bool misbehave_enabled = true,
                   const std::string& extra = "", const std::string& misbehave_mode = "ok") {
  return "plugin_dir: " BB_LIFECYCLE_PLUGIN_DIR "\n" + extra +
         "plugins:\n  misbehave:\n    enabled: " + (misbehave_enabled ? "true" : "false") +
         "\n    interval_ms: " + std::to_string(misbehave_interval_ms) +
         "\n    options: {mode: " + misbehave_mode +
         ", hang_ms: 60000}\n"
         "  steady:\n    interval_ms: 100\n";
}

Json plugin(const Agent& agent, const std::string& name) {
  auto r = httpGet(agent.port(), "/health");
  if (r.status != 200) return Json();
  return r.json()["plugins"][name];
}

int64_t collections(const Agent& agent, const std::string& name) {
  Json p = plugin(agent, name);
  return p["collections"].isInt() ? p["collections"].asInt() : -1;
}

bool hasState(const Agent& agent, const std::string& name, const std::string& state) {
  Json p = plugin(agent, name);
  return p["state"].isString() && p["state"].asString() == state;
}

// The value of one series of /metrics, or -1 when it is absent.
double metric(const Agent& agent, const std::string& series) {
  std::string text = httpGet(agent.port(), "/metrics").body;
  auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

// The lines of `text` that contain `needle`, in order.
std::vector<std::string> linesWith(const std::string& text, const std::string& needle) {
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    std::string line = text.substr(start, nl - start);
    if (line.find(needle) != std::string::npos) out.push_back(line);
  }
  return out;
}

// Rewrites the config file and sends SIGHUP; returns the first line containing `expect` that
// the agent printed after the signal ("" if none came).
std::string reload(Agent& agent, const TempDir& home, const std::string& yaml,
                   const std::string& expect = "SIGHUP: ") {
  const size_t before = linesWith(agent.process().output(), expect).size();
  home.write("agent.yaml", yaml);
  agent.process().signal(SIGHUP);
  std::string line;
  eventually([&] {
    auto lines = linesWith(agent.process().output(), expect);
    if (lines.size() <= before) return false;
    line = lines[before];
    return true;
  });
  return line;
}

class Lifecycle : public ::testing::Test {
 protected:
  void start(const std::string& yaml) {
    agent_ = std::make_unique<Agent>(home_, kNoNode, yaml);
    ASSERT_TRUE(eventually([&] {
      return collections(*agent_, "misbehave") >= 3 && collections(*agent_, "steady") >= 3;
    }));
  }
  TempDir home_;
  std::unique_ptr<Agent> agent_;
};

TEST_F(Lifecycle, ANewIntervalRestartsOnlyThatPluginAndKeepsWebSocketClients) {
  start(config(100));
  Agent& agent = *agent_;
  WsClient ws(agent.port(), "/theblock/ws");
  auto welcome = ws.receive(10s);
  ASSERT_TRUE(welcome);
  ASSERT_EQ((*welcome)["type"].asString(), "welcome") << welcome->dump();

  ASSERT_TRUE(eventually([&] { return collections(agent, "misbehave") >= 20; }));
  const int64_t steady_before = collections(agent, "steady");
  EXPECT_DOUBLE_EQ(metric(agent, "blockbuster_plugin_interval_seconds{plugin=\"misbehave\"}"), 0.1);

  std::string line = reload(agent, home_, config(5000), "SIGHUP: reloaded");
  ASSERT_NE(line.find("restarted misbehave"), std::string::npos) << agent.process().output();
  EXPECT_NE(line.find("1 plugin unchanged"), std::string::npos) << line;

  // The restarted plugin starts counting again at its new interval (5 s: a handful at most).
  EXPECT_LT(collections(agent, "misbehave"), 10);
  EXPECT_DOUBLE_EQ(metric(agent, "blockbuster_plugin_interval_seconds{plugin=\"misbehave\"}"), 5.0);
  EXPECT_DOUBLE_EQ(metric(agent, "blockbuster_plugin_interval_seconds{plugin=\"steady\"}"), 0.1);
  // The other one was not touched: its count goes on from where it was, and it stays ok.
  EXPECT_GE(collections(agent, "steady"), steady_before);
  EXPECT_TRUE(eventually([&] { return collections(agent, "steady") >= steady_before + 5; }));
  EXPECT_TRUE(hasState(agent, "steady", "ok"));
  EXPECT_EQ(httpGet(agent.port(), "/plugins/steady/state").status, 200);
  EXPECT_TRUE(eventually([&] { return hasState(agent, "misbehave", "ok"); }));
  EXPECT_EQ(httpGet(agent.port(), "/plugins/misbehave/state").status, 200);

  // The WebSocket client connected before the reload still gets the health stream after it.
  auto update = ws.receiveUntil(
      [](const Json& m) {
        return m["type"].isString() && m["stream"].isString() && m["stream"].asString() == "health";
      },
      15s);
  EXPECT_TRUE(update);
  EXPECT_FALSE(ws.closed()) << "close code " << ws.closeCode();
}

TEST_F(Lifecycle, SwitchingIsolationMovesOnlyThatPluginIntoItsOwnProcessAndBack) {
  start(config(100));
  Agent& agent = *agent_;
  EXPECT_EQ(plugin(agent, "misbehave")["isolation"].asString(), "inprocess");
  const int64_t steady_before = collections(agent, "steady");
  std::string isolated = config(100);
  const std::string key = "    interval_ms: 100\n    options:";
  ASSERT_NE(isolated.find(key), std::string::npos);
  isolated.replace(isolated.find(key), key.size(),
                   "    interval_ms: 100\n    isolation: process\n    options:");
  std::string line = reload(agent, home_, isolated, "SIGHUP: reloaded");
  ASSERT_NE(line.find("restarted misbehave"), std::string::npos) << agent.process().output();
  Json m;
  ASSERT_TRUE(eventually([&] {
    m = plugin(agent, "misbehave");
    return m["isolation"].asString() == "process" && m["pid"].isInt() &&
           m["state"].asString() == "ok";
  })) << m.dump();
  const int64_t pid = m["pid"].asInt();
  EXPECT_NE(pid, agent.process().pid());
  EXPECT_EQ(httpGet(agent.port(), "/fixture/misbehave").json()["pid"].asInt(), pid);
  EXPECT_GE(collections(agent, "steady"), steady_before) << "steady was restarted";

  line = reload(agent, home_, config(100), "SIGHUP: reloaded");
  ASSERT_NE(line.find("restarted misbehave"), std::string::npos) << agent.process().output();
  ASSERT_TRUE(eventually([&] {
    return plugin(agent, "misbehave")["isolation"].asString() == "inprocess" &&
           hasState(agent, "misbehave", "ok");
  }));
  EXPECT_EQ(httpGet(agent.port(), "/fixture/misbehave").json()["pid"].asInt(),
            agent.process().pid());
  EXPECT_TRUE(eventually([&] { return ::kill(static_cast<pid_t>(pid), 0) != 0; }))
      << "the plugin's process outlived its switch back";
}

TEST_F(Lifecycle, AnInvalidConfigIsRefusedAndTheOldOneKeepsServing) {
  start(config(100));
  Agent& agent = *agent_;
  std::string bad = config(100);
  bad.replace(bad.find("mode: ok"), 8, "mood: ok");
  std::string line = reload(agent, home_, bad);
  EXPECT_NE(line.find("new config refused"), std::string::npos) << agent.process().output();
  EXPECT_NE(line.find(home_.file("agent.yaml")), std::string::npos) << line;
  EXPECT_NE(line.find("plugins.misbehave.options.mood"), std::string::npos) << line;

  // Nothing was restarted: both keep counting from where they were.
  const int64_t misbehave = collections(agent, "misbehave");
  ASSERT_GE(misbehave, 3);
  EXPECT_TRUE(eventually([&] { return collections(agent, "misbehave") >= misbehave + 3; }));
  EXPECT_TRUE(hasState(agent, "misbehave", "ok"));
  EXPECT_EQ(httpGet(agent.port(), "/plugins/misbehave/state").status, 200);

  // A YAML syntax error is refused the same way.
  line = reload(agent, home_, "plugins: [unclosed\n");
  EXPECT_NE(line.find("new config refused"), std::string::npos) << line;
  EXPECT_TRUE(eventually([&] { return collections(agent, "misbehave") >= misbehave + 6; }));
}

TEST_F(Lifecycle, DisablingRemovesThePluginsSectionsAndSeriesAndEnablingBringsThemBack) {
  start(config(100));
  Agent& agent = *agent_;
  const std::string runs = "fixture_runs{plugin=\"misbehave\"}";
  ASSERT_TRUE(eventually([&] { return metric(agent, runs) >= 1; }));
  ASSERT_EQ(httpGet(agent.port(), "/plugins/misbehave/state").status, 200);

  std::string line = reload(agent, home_, config(100, false), "SIGHUP: reloaded");
  EXPECT_NE(line.find("stopped misbehave"), std::string::npos) << agent.process().output();
  int status = httpGet(agent.port(), "/plugins/misbehave/state").status;
  EXPECT_TRUE(status == 404 || status == 503) << status;
  EXPECT_EQ(metric(agent, runs), -1);
  // Disabled is neither up nor down: the agent's own series about it go too.
  EXPECT_EQ(metric(agent, "blockbuster_plugin_up{plugin=\"misbehave\"}"), -1);
  EXPECT_EQ(metric(agent, "blockbuster_plugin_up{plugin=\"steady\"}"), 1);
  EXPECT_EQ(plugin(agent, "misbehave")["state"].asString(), "disabled");
  EXPECT_EQ(httpGet(agent.port(), "/plugins/steady/state").status, 200);

  line = reload(agent, home_, config(100, true), "SIGHUP: reloaded");
  EXPECT_NE(line.find("started misbehave"), std::string::npos) << line;
  EXPECT_TRUE(
      eventually([&] { return httpGet(agent.port(), "/plugins/misbehave/state").status == 200; }));
  EXPECT_TRUE(eventually([&] { return metric(agent, runs) >= 1; }));
  EXPECT_TRUE(eventually(
      [&] { return metric(agent, "blockbuster_plugin_up{plugin=\"misbehave\"}") == 1; }));
}

TEST_F(Lifecycle, ARestartOnlyKeyIsNamedAndKeepsItsRunningValue) {
  start(config(100));
  Agent& agent = *agent_;
  std::string line =
      reload(agent, home_, config(100, true, "rpc:\n  timeout_ms: 1234\n"), "only on restart");
  EXPECT_NE(line.find("rpc.timeout_ms"), std::string::npos) << agent.process().output();
  ASSERT_TRUE(
      eventually([&] { return !linesWith(agent.process().output(), "SIGHUP: reloaded").empty(); }));
  EXPECT_TRUE(eventually([&] { return hasState(agent, "steady", "ok"); }));
}

// One HTTP/1.1 keep-alive connection left open after its answer. -1 on failure.
int openKeepAlive(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    close(fd);
    return -1;
  }
  std::string req = "GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n";
  if (send(fd, req.data(), req.size(), 0) != static_cast<ssize_t>(req.size())) {
    close(fd);
    return -1;
  }
  char buf[512];
  if (recv(fd, buf, sizeof buf, 0) <= 0) {
    close(fd);
    return -1;
  }
  return fd;
}

TEST_F(Lifecycle, SigtermExitsPromptlyWithACollectInFlightAndOpenConnections) {
  // misbehave hangs 60 s inside collect(); steady collects every 100 ms.
  agent_ = std::make_unique<Agent>(home_, kNoNode, config(100, true, "", "hang"));
  Agent& agent = *agent_;
  ASSERT_TRUE(eventually([&] { return collections(agent, "steady") >= 3; }));
  ASSERT_TRUE(eventually([&] {
    Json p = plugin(agent, "misbehave");
    return p["state"].isString() && p["state"].asString() == "overdue";
  }));
  int keep_alive = openKeepAlive(agent.port());
  ASSERT_GE(keep_alive, 0);
  WsClient ws(agent.port(), "/theblock/ws");
  ASSERT_TRUE(ws.receive(10s));

  const auto sent = std::chrono::steady_clock::now();
  agent.process().signal(SIGTERM);
  // A generous bound for a shared machine; the design target is 2 s.
  auto status = agent.process().wait(5s);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - sent).count();
  close(keep_alive);
  ASSERT_TRUE(status.has_value()) << "still running 5 s after SIGTERM:\n"
                                  << agent.process().output();
  EXPECT_EQ(*status, 0) << agent.process().output();
  EXPECT_LT(seconds, 5.0);
  EXPECT_TRUE(agent.process().waitForLine("stopped", 1s));
}

}  // namespace
