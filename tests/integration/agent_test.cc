// The real agent against the real simulated node, both profiles, as processes on loopback.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iterator>

#include "integration/stack.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::httpRequest;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

Json getJson(int port, const std::string& path, int expect_status = 200) {
  auto r = httpGet(port, path);
  if (r.status != expect_status) return Json();
  try {
    return r.json();
  } catch (const blockbuster::JsonError&) {
    return Json();
  }
}

const char* kNetworkFields[] = {
    "network_strength", "block_height",  "finality_time",      "peer_count", "tps",
    "bandwidth_in",     "bandwidth_out", "active_connections", "timestamp"};
const char* kPeerFields[] = {"id",      "address",      "connected_at", "latency_ms",
                             "version", "is_validator", "reputation"};

class AgentProfiles : public ::testing::TestWithParam<std::string> {};

TEST_P(AgentProfiles, ServesHealthMetricsAndTheNetworkEndpointsAsTheChainMoves) {
  const std::string profile = GetParam();
  DevNode node(profile, {"--block-ms", "200"});
  TempDir home;
  Agent agent(home, node.url(), "plugins:\n  network:\n    interval_ms: 300\n");

  Json metrics;
  ASSERT_TRUE(eventually([&] {
    metrics = getJson(agent.port(), "/theblock/network/metrics");
    return metrics.isObject();
  })) << agent.process().output();
  for (const char* f : kNetworkFields)
    EXPECT_TRUE(metrics.contains(f)) << f << " in " << metrics.dump();
  EXPECT_TRUE(metrics["block_height"].isInt());
  EXPECT_TRUE(metrics["peer_count"].isInt());
  EXPECT_TRUE(metrics["network_strength"].isInt());
  EXPECT_GE(metrics["network_strength"].asInt(), 0);
  EXPECT_LE(metrics["network_strength"].asInt(), 100);
  EXPECT_TRUE(metrics["strength_terms"].isObject());
  EXPECT_FALSE(metrics["stale"].asBool());
  EXPECT_TRUE(metrics["age_seconds"].isNumber());
  EXPECT_EQ(metrics["profile"].asString(), profile);
  if (profile == "spec") {
    for (const char* f : kNetworkFields) EXPECT_FALSE(metrics[f].isNull()) << f;
  } else {
    // The real node has no TPS and no finality: unknown, with a reason, never a made-up 0.
    EXPECT_TRUE(metrics["tps"].isNull());
    EXPECT_TRUE(metrics["finality_time"].isNull());
    EXPECT_TRUE(metrics["unavailable"]["tps"].isString());
  }

  // The chain moves, and so does what the agent serves.
  int64_t first_height = metrics["block_height"].asInt();
  EXPECT_TRUE(eventually([&] {
    Json later = getJson(agent.port(), "/theblock/network/metrics");
    return later.isObject() && later["block_height"].asInt() > first_height;
  }));

  Json peers = getJson(agent.port(), "/theblock/peers/list");
  ASSERT_TRUE(peers["peers"].isArray()) << peers.dump();
  ASSERT_GT(peers["peers"].size(), 0u);
  EXPECT_EQ(peers["total"].asInt(), static_cast<int64_t>(peers["peers"].size()));
  for (const auto& p : peers["peers"].asArray())
    for (const char* f : kPeerFields) EXPECT_TRUE(p.contains(f)) << f;
  EXPECT_TRUE(peers["timestamp"].isInt());

  Json health;
  ASSERT_TRUE(eventually([&] {
    health = getJson(agent.port(), "/health");
    return health["status"].isString() && health["status"].asString() == "ok";
  })) << health.dump();
  EXPECT_TRUE(health["uptime_seconds"].isInt());
  EXPECT_TRUE(health["node"]["reachable"].asBool());
  EXPECT_EQ(health["plugins"]["network"]["state"].asString(), "ok");
  EXPECT_TRUE(health["plugins"]["network"]["last_success_age_seconds"].isNumber());
  EXPECT_TRUE(health["recent_errors"]["total"].isInt());
  EXPECT_TRUE(health.contains("simple_db"));
  EXPECT_TRUE(health.contains("feature_lag_seconds"));

  auto scrape = httpGet(agent.port(), "/metrics");
  EXPECT_EQ(scrape.status, 200);
  EXPECT_NE(scrape.headers["content-type"].find("text/plain; version=0.0.4"), std::string::npos);
  EXPECT_NE(scrape.body.find("\ntheblock_block_height "), std::string::npos);
  EXPECT_NE(scrape.body.find("blockbuster_plugin_up{plugin=\"network\"} 1"), std::string::npos);
  EXPECT_NE(scrape.body.find("blockbuster_rpc_requests_total{"), std::string::npos);
}

TEST_P(AgentProfiles, ServesEveryMarketFieldOfTheGuide) {
  DevNode node(GetParam(), {"--block-ms", "200"});
  TempDir home;
  Agent agent(home, node.url());
  const std::map<std::string, std::vector<std::string>> fields{
      {"compute", {"status", "active_jobs", "total_providers", "avg_utilization", "total_revenue"}},
      {"storage", {"status", "total_stored", "total_providers", "avg_price", "capacity_used"}},
      {"energy", {"status", "total_credits", "avg_price", "active_traders", "trading_volume"}},
      {"ads", {"status", "active_campaigns", "total_impressions", "total_revenue", "avg_cpm"}}};
  Json body;
  ASSERT_TRUE(eventually([&] {
    body = getJson(agent.port(), "/theblock/markets/health");
    return body["markets"]["ads"]["status"].isString() &&
           body["markets"]["ads"]["status"].asString() != "unavailable";
  })) << body.dump();
  for (const auto& m : fields)
    for (const auto& f : m.second)
      EXPECT_TRUE(body["markets"][m.first].contains(f)) << m.first << "." << f;
  EXPECT_EQ(body["total_markets"].asInt(), 4);
  EXPECT_TRUE(body["healthy_markets"].isInt());
  EXPECT_TRUE(body["timestamp"].isInt());
  std::string overall = body["overall_status"].asString();
  EXPECT_TRUE(overall == "healthy" || overall == "degraded" || overall == "idle") << overall;
}

INSTANTIATE_TEST_SUITE_P(BothProfiles, AgentProfiles, ::testing::Values("spec", "theblock"));

TEST(AgentNodeDown, StartsWithoutTheNodeSaysDegradedAndRecoversWhenItAppears) {
  int port = bbtest::freeLoopbackPort();
  TempDir home;
  Agent agent(home, "http://127.0.0.1:" + std::to_string(port),
              "plugins:\n  network:\n    interval_ms: 300\n");
  Json health;
  ASSERT_TRUE(eventually([&] {
    health = getJson(agent.port(), "/health");
    return health["plugins"]["network"]["consecutive_failures"].isInt() &&
           health["plugins"]["network"]["consecutive_failures"].asInt() > 0;
  })) << health.dump();
  EXPECT_EQ(health["status"].asString(), "degraded");
  EXPECT_FALSE(health["node"]["reachable"].asBool());
  ASSERT_GT(health["reasons"].size(), 0u);
  EXPECT_NE(health["reasons"][0].asString().find("node unreachable"), std::string::npos)
      << health.dump();
  auto metrics = httpGet(agent.port(), "/theblock/network/metrics");
  EXPECT_EQ(metrics.status, 503);
  EXPECT_NE(metrics.body.find("\"no_data\""), std::string::npos) << metrics.body;

  DevNode node("spec", {}, port);
  EXPECT_TRUE(eventually([&] {
    return getJson(agent.port(), "/theblock/network/metrics")["block_height"].isInt();
  })) << agent.process().output();
  EXPECT_TRUE(
      eventually([&] { return getJson(agent.port(), "/health")["status"].asString() == "ok"; }));
}

TEST(AgentNodeDown, KeepsServingTheLastDataMarkedStaleWhenTheNodeDies) {
  TempDir home;
  auto node = std::make_unique<DevNode>("spec");
  Agent agent(home, node->url(), "plugins:\n  network:\n    interval_ms: 300\n");
  ASSERT_TRUE(eventually(
      [&] { return getJson(agent.port(), "/theblock/network/metrics")["block_height"].isInt(); }));
  node->process().signal(SIGKILL);
  node->process().wait(std::chrono::seconds(5));
  Json body;
  ASSERT_TRUE(eventually([&] {
    body = getJson(agent.port(), "/theblock/network/metrics");
    return body["stale"].isBool() && body["stale"].asBool();
  })) << body.dump();
  EXPECT_TRUE(body["block_height"].isInt()) << "the last data is still served";
  EXPECT_TRUE(body["stale_reason"].isString());
  // A section can turn stale by age before any call has failed: /health follows the failure.
  EXPECT_TRUE(eventually(
      [&] { return getJson(agent.port(), "/health")["status"].asString() == "degraded"; }));
  EXPECT_TRUE(agent.process().running());
}

TEST(AgentHttp, AnswersErrorsAsJsonWithTheRightStatus) {
  DevNode node("spec");
  TempDir home;
  Agent agent(home, node.url());
  auto missing = httpGet(agent.port(), "/nope");
  EXPECT_EQ(missing.status, 404);
  EXPECT_EQ(missing.json()["error"]["code"].asString(), "not_found");
  auto post = httpRequest(agent.port(), "POST", "/theblock/network/metrics");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.headers["allow"], "GET, HEAD, OPTIONS");
  // An unknown parameter is ignored (guide_test.cc); a query that does not decode is a 400.
  auto bad = httpGet(agent.port(), "/theblock/network/metrics?x=%zz");
  EXPECT_EQ(bad.status, 400);
  EXPECT_NE(bad.json()["error"]["message"].asString().find("'x'"), std::string::npos);
  auto head = httpRequest(agent.port(), "HEAD", "/health");
  EXPECT_EQ(head.status, 200);
  EXPECT_TRUE(head.body.empty());
  EXPECT_NE(head.headers["content-length"], "0");
  auto options = httpRequest(agent.port(), "OPTIONS", "/theblock/markets/health",
                             {{"Origin", "http://localhost:4173"}});
  EXPECT_EQ(options.status, 204);
  EXPECT_EQ(options.headers["access-control-allow-origin"], "*");
  EXPECT_EQ(httpGet(agent.port(), "/health").headers["content-type"], "application/json");
}

TEST(AgentHttp, MetricsAloneOnTheirOwnPortWhenConfigured) {
  DevNode node("spec");
  TempDir home;
  Agent agent(home, node.url(), "http:\n  metrics_port: 0\n");
  auto line = agent.process().waitForLine("blockbuster-agent ready", std::chrono::seconds(5));
  ASSERT_TRUE(line);
  auto port = bbtest::portFromLine(*line, "metrics");
  ASSERT_TRUE(port) << *line;
  auto scrape = httpGet(*port, "/metrics");
  EXPECT_EQ(scrape.status, 200);
  EXPECT_NE(scrape.body.find("blockbuster_build_info"), std::string::npos);
  EXPECT_NE(scrape.headers["content-type"].find("version=0.0.4"), std::string::npos);
  auto other = httpGet(*port, "/theblock/network/metrics");
  EXPECT_EQ(other.status, 404) << "the metrics port serves /metrics only";
  EXPECT_EQ(httpGet(agent.port(), "/metrics").status, 200) << "and the main port still does";
}

struct BadConfigCase {
  const char* name;
  const char* yaml;
  const char* key;  // must appear in the one-line message
};

void PrintTo(const BadConfigCase& c, std::ostream* os) { *os << c.name; }

class AgentBadConfig : public ::testing::TestWithParam<BadConfigCase> {};

TEST_P(AgentBadConfig, StopsStartupWithOneLineNamingTheFileAndTheKey) {
  TempDir dir;
  dir.write("c.yaml", GetParam().yaml);
  auto [status, out] =
      bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--config", dir.file("c.yaml")},
                         {{"HOME", dir.path()}}, std::chrono::seconds(20));
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find(dir.file("c.yaml")), std::string::npos) << out;
  EXPECT_NE(out.find(GetParam().key), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << "one line: " << out;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, AgentBadConfig,
    ::testing::Values(BadConfigCase{"unknown_key", "rpc_urll: http://x\n", "rpc_urll"},
                      BadConfigCase{"wrong_type", "http:\n  port: [1]\n", "http.port"},
                      BadConfigCase{"port_range", "http:\n  port: 70000\n", "http.port"},
                      BadConfigCase{"plugin_option",
                                    "plugins:\n  network:\n    options:\n      peers_targt: 3\n",
                                    "peers_targt"},
                      BadConfigCase{"unknown_plugin", "plugins:\n  nosuch: {}\n", "nosuch"}),
    [](const auto& info) { return std::string(info.param.name); });

TEST(AgentConfig, AnUnreadableConfigFileStopsStartup) {
  TempDir dir;
  auto [status, out] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", dir.file("missing.yaml")},
      {{"HOME", dir.path()}});
  EXPECT_EQ(status, 2) << out;
  EXPECT_NE(out.find(dir.file("missing.yaml")), std::string::npos) << out;
}

TEST(AgentConfig, CheckConfigPrintsTheEffectiveConfigWithTheTokenRedacted) {
  TempDir dir;
  dir.write("c.yaml", "rpc_url: http://127.0.0.1:9\nauth_token: s3cr3t-t0ken\n");
  auto [status, out] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", dir.file("c.yaml"), "--check-config"},
      {{"HOME", dir.path()}});
  EXPECT_EQ(status, 0) << out;
  EXPECT_EQ(out.find("s3cr3t-t0ken"), std::string::npos) << out;
  EXPECT_NE(out.find("<redacted>"), std::string::npos) << out;
  EXPECT_NE(out.find("config OK"), std::string::npos) << out;
}

TEST(AgentCli, PrintDefaultConfigListsEveryPluginAndLoadsAsItIs) {
  TempDir dir;
  auto [status, text] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--print-default-config"}, {{"HOME", dir.path()}});
  ASSERT_EQ(status, 0) << text;
  for (const char* p : {"network:", "compute:", "storage:", "energy:", "ads:", "receipts:"})
    EXPECT_NE(text.find(std::string("\n  ") + p), std::string::npos) << p;
  EXPECT_NE(text.find("peers_target:"), std::string::npos) << "plugin options are listed";
  dir.write("default.yaml", text);
  auto [check, out] = bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--config",
                                          dir.file("default.yaml"), "--check-config"},
                                         {{"HOME", dir.path()}});
  EXPECT_EQ(check, 0) << out;
}

TEST(AgentCli, HelpAndVersion) {
  auto [hs, help] = bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--help"});
  EXPECT_EQ(hs, 0);
  EXPECT_NE(help.find("--check-config"), std::string::npos);
  EXPECT_NE(help.find("BLOCK_BUSTER_HTTP_PORT"), std::string::npos);
  auto [vs, version] = bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--version"});
  EXPECT_EQ(vs, 0);
  EXPECT_NE(version.find("plugin ABI 1."), std::string::npos);
  auto [bs, bad] = bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--frobnicate"});
  EXPECT_EQ(bs, 2);
  EXPECT_NE(bad.find("unknown option '--frobnicate'"), std::string::npos);
}

// The agent runs with glibc's per-thread cache off (agent/main.cc, tuneAllocator): it sets
// GLIBC_TUNABLES and executes itself once, keeping its pid; an operator's own malloc tunables
// or BLOCK_BUSTER_ALLOCATOR_TUNING=off keep glibc's defaults.
std::string environOf(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/environ", std::ios::binary);
  std::string env((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::replace(env.begin(), env.end(), '\0', '\n');
  return "\n" + env;
}

TEST(AgentAllocator, RunsWithTheTcacheOffUnlessTheOperatorSaysOtherwise) {
  DevNode node("spec");
  {
    TempDir home;
    Agent agent(home, node.url());
    const std::string env = environOf(agent.process().pid());
    EXPECT_NE(env.find("\nBLOCK_BUSTER_ALLOCATOR_TUNING=applied"), std::string::npos) << env;
    // glibc 2.36 splits the value in place while reading it (':' becomes NUL), so the second
    // setting shows as a line of its own in /proc/<pid>/environ.
    EXPECT_NE(env.find("\nGLIBC_TUNABLES=glibc.malloc.tcache_count=0"), std::string::npos) << env;
    EXPECT_NE(env.find("glibc.malloc.arena_max=2\n"), std::string::npos) << env;
    EXPECT_EQ(httpGet(agent.port(), "/health").status, 200);
  }
  {
    TempDir home;
    Agent agent(home, node.url(), "", {{"BLOCK_BUSTER_ALLOCATOR_TUNING", "off"}});
    const std::string env = environOf(agent.process().pid());
    EXPECT_EQ(env.find("GLIBC_TUNABLES"), std::string::npos) << env;
  }
  {
    TempDir home;
    Agent agent(home, node.url(), "", {{"GLIBC_TUNABLES", "glibc.malloc.arena_max=3"}});
    const std::string env = environOf(agent.process().pid());
    EXPECT_NE(env.find("\nGLIBC_TUNABLES=glibc.malloc.arena_max=3"), std::string::npos) << env;
    EXPECT_EQ(env.find("tcache_count"), std::string::npos) << env;
  }
}

}  // namespace
