// The guide taken literally (issue 16): what a user of the guide's Python server types, run
// against the real agent and bb-devnode as processes on loopback. Only the ports differ from the
// guide's (free ones), so that the test never collides with the machine's other services.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "integration/stack.h"
#include "ws/ws_client.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::httpRequest;
using bbtest::TempDir;
using bbtest::WsClient;
using blockbuster::Json;
using namespace std::chrono_literals;

namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// The environment of a user who follows the guide, every port moved to `port` unless given.
std::map<std::string, std::string> guideEnv(const TempDir& home, const std::string& rpc_url) {
  return {{"HOME", home.path()},
          {"THEBLOCK_RPC_URL", rpc_url},
          {"BLOCK_BUSTER_HTTP_HOST", "127.0.0.1"},
          {"BLOCK_BUSTER_WS_HOST", "127.0.0.1"},
          {"BLOCK_BUSTER_WEB_HOST", "127.0.0.1"},
          {"BLOCK_BUSTER_HTTP_PORT", "0"},
          {"BLOCK_BUSTER_WS_PORT", "0"},
          {"BLOCK_BUSTER_FEATURE_WS_PORT", "0"},
          {"BLOCK_BUSTER_WEB_PORT", "0"}};
}

// A listening socket that holds a loopback port for as long as it lives.
struct PortHolder {
  int fd = -1;
  int port = 0;
  PortHolder() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::listen(fd, 1);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~PortHolder() { ::close(fd); }
};

class Guide : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new bbtest::SuiteStack("plugins:\n  network:\n    interval_ms: 300\n");
  }
  static void TearDownTestSuite() { delete stack_; }
  static bbtest::SuiteStack* stack_;
};
bbtest::SuiteStack* Guide::stack_ = nullptr;

// Point 1: a cache-buster or an unknown flag is ignored on every route, as by the Python
// server; a bad value of a parameter a route knows stays a 400 that names it.
TEST_F(Guide, UnknownQueryParametersAreIgnoredBadValuesOfKnownOnesAreNamed) {
  ASSERT_TRUE(eventually(
      [&] { return httpGet(stack_->agent.port(), "/theblock/receipts?limit=10").status == 200; }));
  for (const char* target :
       {"/theblock/network/metrics?_=123", "/health?verbose=1", "/theblock/markets/health?_=1",
        "/theblock/peers/list?x=y&_=2", "/theblock/operations?page=3",
        "/theblock/receipts?limit=10&_=1700000000", "/metrics?_=1", "/plugins?foo"}) {
    bbtest::HttpResult r;
    // 503 until the plugin's first collection: what counts is that the parameter is no 400.
    EXPECT_TRUE(
        eventually([&] { return (r = httpGet(stack_->agent.port(), target)).status != 503; }));
    EXPECT_EQ(r.status, 200) << target << ": " << r.body;
  }
  auto page = httpGet(stack_->agent.port(), "/theblock/receipts?limit=3&cachebust=9").json();
  EXPECT_EQ(page["limit"].asInt(), 3) << page.dump();
  for (const auto& [target, name] : std::vector<std::pair<std::string, std::string>>{
           {"/theblock/receipts?_=1&limit=abc", "limit"},
           {"/theblock/receipts?offset=-1&verbose=1", "offset"},
           {"/theblock/receipts?market=gold", "market"}}) {
    auto r = httpGet(stack_->agent.port(), target);
    EXPECT_EQ(r.status, 400) << target;
    EXPECT_TRUE(contains(r.body, "'" + name + "'")) << target << ": " << r.body;
  }
}

// Point 2: the guide gives port 5001 and no path; the WebSocket port serves the dashboard stream
// on any path, the main port keeps it on /theblock/ws.
TEST_F(Guide, TheWebSocketPortServesTheStreamOnAnyPath) {
  ASSERT_GT(stack_->ws, 0) << stack_->agent.process().output();
  for (const char* path : {"/", "/ws", "/theblock/ws", "/anything/else?x=1"}) {
    WsClient c(stack_->ws, path);
    auto m = c.receiveUntil([](const Json& j) { return j["stream"].isString(); }, 10s);
    ASSERT_TRUE(m) << "ws port, path " << path;
    EXPECT_NE((*m)["stream"].asString(), "features") << path;
  }
  EXPECT_EQ(WsClient::tryUpgrade(stack_->agent.port(), "/theblock/ws"), 101);
  EXPECT_EQ(WsClient::tryUpgrade(stack_->agent.port(), "/"), 404);
}

// Point 3: the guide's troubleshooting, "use a different port: BLOCK_BUSTER_HTTP_PORT=5001",
// with the WebSocket port at its default 5001: one listener serves both, and says so.
TEST(GuidePorts, TheApiMovedOntoTheWebSocketPortSharesOneListener) {
  DevNode node("spec", {"--block-ms", "200"});
  TempDir home;
  const int shared = bbtest::freeLoopbackPort();
  auto env = guideEnv(home, node.url());
  env["BLOCK_BUSTER_HTTP_PORT"] = std::to_string(shared);
  env["BLOCK_BUSTER_WS_PORT"] = std::to_string(shared);  // the default 5001, moved

  auto [check_status, check_out] =
      bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--check-config"}, env);
  EXPECT_EQ(check_status, 0) << check_out;
  EXPECT_TRUE(contains(check_out, "port " + std::to_string(shared) +
                                      " serves the REST API and /metrics and the WebSocket "
                                      "stream from one listener"))
      << check_out;

  bbtest::ChildProcess agent({bbtest::binPath("blockbuster-agent")}, env);
  auto ready = agent.waitForLine("blockbuster-agent ready", 20s);
  ASSERT_TRUE(ready) << agent.output();
  EXPECT_EQ(bbtest::portFromLine(*ready, "http"), shared);
  EXPECT_EQ(bbtest::portFromLine(*ready, "ws"), shared);
  EXPECT_TRUE(contains(agent.output(), "from one listener")) << agent.output();
  EXPECT_EQ(httpGet(shared, "/health").status, 200);
  WsClient c(shared, "/theblock/ws");
  EXPECT_TRUE(c.receiveUntil([](const Json& j) { return j["stream"].isString(); }, 10s));
  // The page finds the stream where the agent serves it.
  auto web = bbtest::portFromLine(*ready, "web");
  ASSERT_TRUE(web);
  Json runtime = httpGet(*web, "/bb-config.json").json();
  EXPECT_EQ(runtime["ws_port"].asInt(), shared) << runtime.dump();
}

TEST(GuidePorts, CheckConfigNamesWhatCannotShareAPort) {
  TempDir home;
  const int shared = bbtest::freeLoopbackPort();
  auto env = guideEnv(home, "http://127.0.0.1:9");
  env["BLOCK_BUSTER_HTTP_PORT"] = std::to_string(shared);
  env["BLOCK_BUSTER_WS_PORT"] = std::to_string(shared);
  env["BLOCK_BUSTER_WS_HOST"] = "127.0.0.2";  // two hosts: one listener cannot serve both
  auto [status, out] =
      bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--check-config"}, env);
  EXPECT_EQ(status, 2) << out;
  EXPECT_TRUE(contains(out, "share port " + std::to_string(shared))) << out;
  EXPECT_TRUE(contains(out, "BLOCK_BUSTER_WS_PORT or ws.port")) << out;
  // The agent refuses it the same way instead of failing on the second bind.
  auto [run_status, run_out] = bbtest::runProgram({bbtest::binPath("blockbuster-agent")}, env, 20s);
  EXPECT_EQ(run_status, 2) << run_out;
  EXPECT_TRUE(contains(run_out, "share port")) << run_out;

  // Different credentials for the API and the streams cannot share one listener either.
  home.write("auth.yaml",
             "auth:\n  ws:\n    bearer_sha256:\n      - \"sha256:" + std::string(64, 'a') + "\"\n");
  env["BLOCK_BUSTER_WS_HOST"] = "127.0.0.1";
  auto [auth_status, auth_out] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--check-config", "--config", home.file("auth.yaml")},
      env);
  EXPECT_EQ(auth_status, 2) << auth_out;
  EXPECT_TRUE(contains(auth_out, "different credentials")) << auth_out;
}

TEST(GuidePorts, ABusyPortNamesTheSurfaceAndWhatMovesIt) {
  TempDir home;
  PortHolder taken;
  auto env = guideEnv(home, "http://127.0.0.1:9");
  env["BLOCK_BUSTER_WS_PORT"] = std::to_string(taken.port);
  auto [status, out] = bbtest::runProgram({bbtest::binPath("blockbuster-agent")}, env, 20s);
  EXPECT_NE(status, 0) << out;
  EXPECT_TRUE(contains(out, "the WebSocket stream")) << out;
  EXPECT_TRUE(contains(out, "BLOCK_BUSTER_WS_PORT or ws.port")) << out;
}

// Point 5: the Python server's METRICS_AUTH_TOKEN protects /metrics; the rest stays as it was,
// and the token is never logged.
TEST(GuideMetricsToken, MetricsAuthTokenIsTheBearerTokenOfMetrics) {
  DevNode node("spec");
  TempDir home;
  const std::string token = "metrics-Tok3n-from-the-guide";
  Agent agent(home, node.url(), "", {{"METRICS_AUTH_TOKEN", token}});
  EXPECT_EQ(httpGet(agent.port(), "/metrics").status, 401);
  EXPECT_EQ(
      httpRequest(agent.port(), "GET", "/metrics", {{"Authorization", "Bearer wrong"}}).status,
      401);
  auto ok = httpRequest(agent.port(), "GET", "/metrics", {{"Authorization", "Bearer " + token}});
  EXPECT_EQ(ok.status, 200);
  EXPECT_TRUE(contains(ok.body, "# TYPE")) << ok.body.substr(0, 200);
  EXPECT_EQ(httpGet(agent.port(), "/health").status, 200);  // only /metrics is protected

  auto [status, out] = bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--check-config"},
                                          {{"HOME", home.path()}, {"METRICS_AUTH_TOKEN", token}});
  EXPECT_EQ(status, 0) << out;
  EXPECT_TRUE(contains(out, "METRICS_AUTH_TOKEN -> auth.metrics.bearer_sha256")) << out;
  EXPECT_FALSE(contains(out, token)) << out;
  EXPECT_FALSE(contains(agent.process().output(), token));
}

// Point 7: ps, pgrep, ss -p and lsof show the process by the kernel's name of it (comm), which the
// allocator re-execution used to turn into "exe".
TEST_F(Guide, TheProcessKeepsItsNameAfterReExecutingItself) {
  const int pid = stack_->agent.process().pid();
  std::string comm = readFile("/proc/" + std::to_string(pid) + "/comm");
  // The kernel keeps 15 characters of a name.
  EXPECT_EQ(comm, std::string("blockbuster-agent").substr(0, 15) + "\n");
  std::string environ = readFile("/proc/" + std::to_string(pid) + "/environ");
  EXPECT_TRUE(contains(environ, std::string("BLOCK_BUSTER_ALLOCATOR_TUNING=applied") + '\0'))
      << "the agent did not re-execute itself: the test proves nothing";
  auto [ps_status, ps_out] =
      bbtest::runProgram({"/usr/bin/ps", "-C", "blockbuster-agent", "-o", "pid="});
  EXPECT_TRUE(contains(ps_out, std::to_string(pid))) << ps_out;
  auto [pg_status, pg_out] = bbtest::runProgram({"/usr/bin/pgrep", "-f", "blockbuster-agent"});
  EXPECT_TRUE(contains(pg_out, std::to_string(pid))) << pg_out;
}

// Point 11: a second simulated node on a taken port fails instead of sharing it (the demo's
// node on 9933 beside another).
TEST(GuideDemo, BbDevnodeRefusesAPortAlreadyTaken) {
  DevNode first("spec");
  auto [status, out] =
      bbtest::runProgram({bbtest::binPath("bb-devnode"), "--listen",
                          "127.0.0.1:" + std::to_string(first.port()), "--profile", "spec"},
                         {}, 20s);
  EXPECT_EQ(status, 1) << out;
  EXPECT_TRUE(contains(out, "cannot listen on 127.0.0.1:" + std::to_string(first.port()))) << out;
  EXPECT_TRUE(first.process().running());
}

// Point 10: logs an operator can use. log_format: json gives one JSON object per line, the first
// naming the version, the config file and the overrides; a line repeated (a plugin whose
// methods the node answers with an error, every 100 ms) is shown 3 times with a note, then
// suppressed. (A node that is down is one [node] line, not a repeated one: NodeSafety.)
TEST(GuideLogs, JsonLinesStartUpLineAndSuppressedRepeats) {
  DevNode node("spec",
               {"--error-rate", "1", "--fault-methods", "net.peers,net.stats,light.latest_header"});
  TempDir home;
  Agent agent(home, node.url(), "log_format: json\nplugins:\n  network:\n    interval_ms: 100\n");
  ASSERT_TRUE(eventually([&] {
    return contains(agent.process().output(), "further identical lines are suppressed");
  })) << agent.process().output();
  std::istringstream lines(agent.process().output());
  std::string line;
  int parsed = 0;
  std::map<std::string, int> repeats;
  while (std::getline(lines, line)) {
    if (line.rfind("blockbuster-agent ready", 0) == 0) continue;  // stdout's ready line
    Json j;
    try {
      j = Json::parse(line);
    } catch (const blockbuster::JsonError&) {
      ADD_FAILURE() << "not JSON: " << line;
      continue;
    }
    for (const char* key : {"time", "level", "component", "message"})
      EXPECT_TRUE(j[key].isString()) << key << " in " << line;
    if (parsed++ == 0) {
      EXPECT_EQ(j["component"].asString(), "agent") << line;
      EXPECT_TRUE(contains(j["message"].asString(),
                           "starting: config file " + home.file("agent.yaml") +
                               ", environment overrides: THEBLOCK_RPC_URL -> rpc_url"))
          << line;
    }
    const std::string message = j["message"].asString();
    ++repeats[j["level"].asString() + j["component"].asString() +
              message.substr(0, message.find(" (repeated"))];
  }
  EXPECT_GT(parsed, 3);
  for (const auto& [text, count] : repeats) EXPECT_LE(count, 3) << text;
}

// Point 10: the agent's own rate cap (a plugin paging through a backlog) is not the node going
// down: no "marked stale" / "answers again" flapping, and the node stays reachable.
TEST(GuideLogs, TheAgentsOwnRateCapIsNotTheNodeGoingDown) {
  DevNode node("spec", {"--block-ms", "200"});
  TempDir home;
  Agent agent(home, node.url(),
              "rpc:\n  max_requests_per_second: 1\n  burst: 1\n"
              "plugins:\n  network:\n    interval_ms: 200\n    timeout_ms: 150\n");
  auto reachable = [&] { return httpGet(agent.port(), "/health").json()["node"]["reachable"]; };
  ASSERT_TRUE(eventually([&] { return reachable() == Json(true); })) << agent.process().output();
  const size_t before = agent.process().output().size();
  ASSERT_TRUE(eventually([&] {
    return agent.process().output().find("rate cap", before) != std::string::npos;
  })) << agent.process().output();
  Json health = httpGet(agent.port(), "/health").json();
  EXPECT_TRUE(health["node"]["reachable"].asBool()) << health.dump();
  EXPECT_FALSE(contains(agent.process().output(), "[node]")) << agent.process().output();
}

// Point 10: the receipts catch-up (a backlog read over many cycles) is progress at info with
// "height N of M", then one line when it has caught up: no warning per cycle, no flapping.
TEST(GuideLogs, TheReceiptsCatchUpIsProgressAtInfoThenCaughtUp) {
  DevNode node("spec", {"--start-height", "3000", "--receipts-per-block", "4", "--block-ms", "0"});
  TempDir home;
  Agent agent(home, node.url(), "plugins:\n  receipts:\n    options: {page_size: 100}\n");
  ASSERT_TRUE(
      eventually([&] { return contains(agent.process().output(), "caught up: receipts"); }, 60s))
      << agent.process().output();
  const std::string out = agent.process().output();
  EXPECT_TRUE(contains(out,
                       "info  [plugin:receipts] catching up on the node's receipts: stored up "
                       "to height "))
      << out;
  EXPECT_TRUE(contains(out, " of 3000 (")) << out;
  EXPECT_TRUE(contains(out, "caught up: receipts stored up to height 3000 (12000 receipts)"))
      << out;
  EXPECT_FALSE(contains(out, "warn  [plugin:receipts]")) << out;
  EXPECT_FALSE(contains(out, "[node]")) << out;
}

}  // namespace
