// The real agent with authentication on: each surface refuses without its credential, and no
// secret (the node's auth_token, the API tokens) ever reaches the logs, an error, /health,
// --check-config or the web page, even when calls to the node fail.
#include <gtest/gtest.h>

#include <string>

#include "http/auth.h"
#include "integration/stack.h"
#include "security/raw_client.h"

namespace {

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::httpRequest;
using bbtest::TempDir;

const std::string kNodeToken = "NODE-SECRET-7c1e55aa";
const std::string kWrongNodeToken = "WRONG-NODE-SECRET-31d0";
const std::string kApiToken = "API-SECRET-b9f2c4d8";
const std::string kMetricsToken = "METRICS-SECRET-e6a1";
const std::string kWsToken = "WS-SECRET-0a9d";
const std::string kPassword = "BASIC-PASSWORD-SECRET-55";

std::string authYaml() {
  return "auth:\n"
         "  api:\n"
         "    bearer_sha256: [\"" +
         bb::Authenticator::sha256(kApiToken) +
         "\"]\n"
         "    basic: [{user: ops, password_sha256: \"" +
         bb::Authenticator::sha256(kPassword) +
         "\"}]\n"
         "  metrics: {bearer_sha256: [\"" +
         bb::Authenticator::sha256(kMetricsToken) +
         "\"]}\n"
         "  ws: {bearer_sha256: [\"" +
         bb::Authenticator::sha256(kWsToken) + "\"]}\n";
}

void expectNoSecret(const std::string& text, const std::string& where) {
  for (const std::string& secret :
       {kNodeToken, kWrongNodeToken, kApiToken, kMetricsToken, kWsToken, kPassword}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << where << " shows a secret:\n" << text;
  }
  // The hashes are not credentials, but they are not shown either.
  EXPECT_EQ(text.find(bb::Authenticator::sha256(kApiToken).substr(7)), std::string::npos) << where;
}

std::map<std::string, std::string> bearer(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

int wsPort(Agent& agent) {
  auto line = agent.process().waitForLine("blockbuster-agent ready", std::chrono::seconds(1));
  return line ? bbtest::portFromLine(*line, "ws").value_or(0) : 0;
}

TEST(AgentSecurity, EachSurfaceNeedsItsOwnCredential) {
  DevNode node("spec", {"--auth-token", kNodeToken});
  TempDir home;
  Agent agent(home, node.url(), authYaml(), {{"THEBLOCK_AUTH_TOKEN", kNodeToken}});

  auto health = httpRequest(agent.port(), "GET", "/health");
  EXPECT_EQ(health.status, 401);
  EXPECT_NE(health.headers["www-authenticate"].find("realm=\"blockbuster api\""),
            std::string::npos);
  EXPECT_EQ(httpRequest(agent.port(), "GET", "/health", bearer(kMetricsToken)).status, 401);
  health = httpRequest(agent.port(), "GET", "/health", bearer(kApiToken));
  EXPECT_EQ(health.status, 200) << health.body;
  EXPECT_EQ(
      httpRequest(agent.port(), "GET", "/theblock/network/metrics?token=" + kApiToken).status ==
          401,
      false);
  EXPECT_EQ(httpRequest(agent.port(), "GET", "/health",
                        {{"Authorization", "Basic b3BzOkJBU0lDLVBBU1NXT1JELVNFQ1JFVC01NQ=="}})
                .status,
            200);  // ops:BASIC-PASSWORD-SECRET-55

  EXPECT_EQ(httpRequest(agent.port(), "GET", "/metrics", bearer(kApiToken)).status, 401);
  auto metrics = httpRequest(agent.port(), "GET", "/metrics", bearer(kMetricsToken));
  EXPECT_EQ(metrics.status, 200);
  EXPECT_NE(metrics.body.find("# TYPE"), std::string::npos);

  // The WebSocket listener, and /theblock/ws on the main port (which follows auth.api).
  int ws = wsPort(agent);
  ASSERT_GT(ws, 0);
  const std::string upgrade =
      "GET /theblock/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
  EXPECT_EQ(sectest::statusOf(sectest::exchange(ws, upgrade + "\r\n")), 401);
  EXPECT_EQ(
      sectest::statusOf(sectest::exchange(
          ws, upgrade + "Sec-WebSocket-Protocol: blockbuster, bearer." + kWsToken + "\r\n\r\n")),
      101);
  EXPECT_EQ(sectest::statusOf(sectest::exchange(agent.port(), upgrade + "\r\n")), 401);

  // The page stays open and its runtime config carries no secret.
  auto page = httpRequest(agent.webPort(), "GET", "/bb-config.json");
  EXPECT_EQ(page.status, 200);
  expectNoSecret(page.body, "/bb-config.json");
  expectNoSecret(health.body, "/health");
  expectNoSecret(agent.process().output(), "the agent's log");
}

TEST(AgentSecurity, FailingNodeCallsNeverShowTheToken) {
  // The node wants another token: every call fails with 401, and the agent reports it.
  DevNode node("spec", {"--auth-token", kNodeToken});
  TempDir home;
  Agent agent(home, node.url(), authYaml(),
              {{"THEBLOCK_AUTH_TOKEN", kWrongNodeToken}, {"BLOCK_BUSTER_LOG_LEVEL", "debug"}});
  bbtest::HttpResult health;
  ASSERT_TRUE(bbtest::eventually([&] {
    health = httpRequest(agent.port(), "GET", "/health", bearer(kApiToken));
    return health.status == 200 && health.body.find("unauthorized") != std::string::npos;
  })) << health.body;
  // Errors of the API itself: bad parameters, unknown paths, a query token in a bad request.
  for (const std::string& target : {std::string("/theblock/receipts?limit=abc&token=") + kApiToken,
                                    std::string("/nowhere?token=") + kApiToken,
                                    std::string("/health?x=%zz&token=") + kApiToken}) {
    auto r = httpRequest(agent.port(), "GET", target);
    EXPECT_NE(r.status, 0);
    expectNoSecret(r.body, target);
  }
  expectNoSecret(health.body, "/health");
  expectNoSecret(agent.process().output(), "the agent's log");
}

TEST(AgentSecurity, NodeErrorsNeverShowTheToken) {
  DevNode node("spec", {"--auth-token", kNodeToken, "--fault-mode", "http500"});
  TempDir home;
  Agent agent(home, node.url(), authYaml(),
              {{"THEBLOCK_AUTH_TOKEN", kNodeToken}, {"BLOCK_BUSTER_LOG_LEVEL", "debug"}});
  bbtest::HttpResult health;
  ASSERT_TRUE(bbtest::eventually([&] {
    health = httpRequest(agent.port(), "GET", "/health", bearer(kApiToken));
    return health.status != 0 && health.body.find("500") != std::string::npos;
  })) << health.body;
  expectNoSecret(health.body, "/health");
  expectNoSecret(agent.process().output(), "the agent's log");
}

TEST(AgentSecurity, CheckConfigAndConfigErrorsNeverShowSecrets) {
  TempDir home;
  home.write("ok.yaml", "auth_token: " + kNodeToken + "\n" + authYaml());
  auto [status, out] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", home.file("ok.yaml"), "--check-config"},
      {{"HOME", home.path()}});
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("# api: 1 bearer token hash(es)"), std::string::npos) << out;
  expectNoSecret(out, "--check-config");

  // A config error after the token, and a plain token where a hash belongs.
  home.write("bad.yaml", "auth_token: " + kNodeToken + "\nhttp: {port: " + kNodeToken + "}\n");
  std::tie(status, out) = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", home.file("bad.yaml"), "--check-config"},
      {{"HOME", home.path()}});
  EXPECT_NE(status, 0);
  expectNoSecret(out, "a config error");
  home.write("plain.yaml", "auth: {api: {bearer_sha256: [" + kApiToken + "]}}\n");
  std::tie(status, out) = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", home.file("plain.yaml")},
      {{"HOME", home.path()}});
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("sha256sum"), std::string::npos) << out;
  expectNoSecret(out, "a plain token in bearer_sha256");
}

}  // namespace

namespace {

// The non-loopback warning, through the real binary: --check-config computes it from the same
// function the agent logs it with at start (config/exposure.cc), without binding anything, so
// the test never listens on a non-loopback address.
TEST(AgentSecurity, CheckConfigWarnsAboutEachOpenSurfaceOnANonLoopbackAddress) {
  TempDir home;
  home.write("open.yaml", "http: {host: 0.0.0.0, port: 5000}\nws: {host: 127.0.0.1}\n");
  auto [status, out] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", home.file("open.yaml"), "--check-config"},
      {{"HOME", home.path()}});
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("warning: listening on 0.0.0.0:5000 without authentication for the REST API"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find("without authentication for /metrics"), std::string::npos) << out;
  EXPECT_EQ(out.find("for the WebSocket ports"), std::string::npos) << "ws is on loopback: " << out;

  home.write("closed.yaml", "http: {host: 127.0.0.1}\nws: {host: 127.0.0.1}\n");
  std::tie(status, out) = bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--config",
                                              home.file("closed.yaml"), "--check-config"},
                                             {{"HOME", home.path()}});
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out.find("without authentication"), std::string::npos) << out;
}

}  // namespace
