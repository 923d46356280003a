// The receipts criteria of issue 4, on the real agent and bb-devnode as processes: the store
// survives SIGKILL mid-ingest with nothing lost and nothing twice (against the node's ground
// truth), the pagination arithmetic and the 400s of /theblock/receipts, /theblock/operations'
// by_market, /health's simple_db, and CORS.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <map>
#include <set>
#include <thread>

#include "integration/stack.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::httpRequest;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

const char* const kMarkets[] = {"compute", "storage", "energy", "ad"};

Json getJson(int port, const std::string& target, int expect_status = 200) {
  auto r = httpGet(port, target);
  if (r.status != expect_status) return Json();
  try {
    return r.json();
  } catch (const blockbuster::JsonError&) {
    return Json();
  }
}

// Collects every 300 ms with the default deadline (= the interval): a backlog larger than one
// collect can read is caught up over several collects.
std::string receiptsConfig() {
  return "rpc:\n  max_requests_per_second: 400\n  burst: 100\n"
         "plugins:\n  receipts:\n    interval_ms: 300\n";
}

int64_t intOr(const Json& j, int64_t fallback) { return j.isInt() ? j.asInt() : fallback; }

// Every receipt id the agent serves, paged through /theblock/receipts (newest first), in the
// order served; `query` adds e.g. "&market=energy".
std::vector<std::string> agentIds(int port, const std::string& query = "") {
  std::vector<std::string> ids;
  for (int64_t offset = 0;; offset += 1000) {
    const Json page =
        getJson(port, "/theblock/receipts?limit=1000&offset=" + std::to_string(offset) + query);
    if (!page["receipts"].isArray() || page["receipts"].size() == 0) break;
    for (const auto& r : page["receipts"].asArray()) ids.push_back(r["id"].asString());
    if (offset + 1000 >= intOr(page["total"], 0)) break;
  }
  return ids;
}

// The node's own list of its retained receipts (GET /_devnode/receipts), ids only.
std::vector<std::string> truthIds(DevNode& node, const std::string& market = "") {
  const Json truth = getJson(
      node.port(), "/_devnode/receipts?sources=0" + (market.empty() ? "" : "&market=" + market));
  std::vector<std::string> ids;
  if (truth["receipts"].isArray())
    for (const auto& r : truth["receipts"].asArray()) ids.push_back(r["id"].asString());
  return ids;
}

int64_t agentTotal(int port, const std::string& query = "") {
  return intOr(getJson(port, "/theblock/receipts?limit=1" + query)["total"], -1);
}

// Waits until the store stops growing (the same total over several cycles), so that paging
// newest-first is not shifted by receipts arriving meanwhile.
bool settled(int port, const std::string& query = "") {
  int64_t last = -2;
  int same = 0;
  return eventually(
      [&] {
        const int64_t now = agentTotal(port, query);
        same = now == last ? same + 1 : 0;
        last = now;
        return same >= 3;
      },
      std::chrono::seconds(30), std::chrono::milliseconds(300));
}

void advance(DevNode& node, int blocks) {
  ASSERT_EQ(httpRequest(node.port(), "POST", "/_devnode/advance", {},
                        "{\"blocks\":" + std::to_string(blocks) + "}")
                .status,
            200);
}

// Kills the agent with SIGKILL while it ingests the receipts of `blocks` new blocks, several
// times at different moments of the cycle, then starts it once more on the same state.
std::unique_ptr<Agent> killWhileIngesting(DevNode& node, const TempDir& home,
                                          std::unique_ptr<Agent> agent, int rounds) {
  for (int round = 0; round < rounds; ++round) {
    advance(node, 40);
    // The moment of the kill is the behaviour under test (a different point of the ingest each
    // round), so it is a sleep, not an await.
    std::this_thread::sleep_for(std::chrono::milliseconds(150 + 200 * round));
    agent->process().signal(SIGKILL);
    agent->process().wait(std::chrono::seconds(5));
    agent = std::make_unique<Agent>(home, node.url(), receiptsConfig());
  }
  return agent;
}

// ---- crash safety ---------------------------------------------------------------------------

TEST(ReceiptsCrash, SpecKillDuringIngestLosesNothingAndStoresNothingTwice) {
  // No blocks but the ones the test makes, so the ground truth holds still at the end.
  DevNode node("spec", {"--block-ms", "0", "--start-height", "50", "--receipts-per-block", "200"});
  TempDir home;
  auto agent = std::make_unique<Agent>(home, node.url(), receiptsConfig());
  ASSERT_TRUE(eventually([&] { return agentTotal(agent->port()) > 0; }))
      << agent->process().output();
  agent = killWhileIngesting(node, home, std::move(agent), 3);

  const std::vector<std::string> truth = truthIds(node);
  ASSERT_EQ(truth.size(), 50u * 200 + 3 * 40 * 200) << "the node's list is the whole history";
  ASSERT_TRUE(
      eventually([&] { return agentTotal(agent->port()) == static_cast<int64_t>(truth.size()); },
                 std::chrono::seconds(30)))
      << agentTotal(agent->port()) << " of " << truth.size() << "\n"
      << agent->process().output();
  const std::vector<std::string> served = agentIds(agent->port());
  const std::set<std::string> unique(served.begin(), served.end());
  EXPECT_EQ(unique.size(), served.size()) << "a receipt is stored twice";
  EXPECT_EQ(unique, std::set<std::string>(truth.begin(), truth.end()))
      << "the store differs from the node's own list";
  // Newest first: the node's list is oldest first.
  ASSERT_FALSE(served.empty());
  EXPECT_EQ(served.front(), truth.back());
  EXPECT_EQ(served.back(), truth.front());
}

// An agent with the default receipts schedule (2 s interval, collect deadline = interval) and
// the default rate cap (20 requests/s, burst 10), started against a node that already holds
// 30 000 receipts, more than one collect can read: every collect commits the oldest pages it
// read with the cursor, so it catches up, also with blocks landing meanwhile.
TEST(ReceiptsBacklog, SpecBacklogConvergesWithTheDefaultDeadline) {
  DevNode node("spec", {"--block-ms", "0", "--start-height", "7500", "--receipts-per-block", "4"});
  TempDir home;
  Agent agent(home, node.url());
  ASSERT_TRUE(eventually([&] { return agentTotal(agent.port()) > 0; }, std::chrono::seconds(20)))
      << agent.process().output();
  // Blocks land while the agent pages through the backlog.
  for (int i = 0; i < 3; ++i) {
    advance(node, 25);
    // The node's block pace (what --block-ms would set), not a wait for the agent.
    std::this_thread::sleep_for(std::chrono::milliseconds(700));
  }
  const std::vector<std::string> truth = truthIds(node);
  ASSERT_EQ(truth.size(), (7500u + 75) * 4) << "the node's list is the whole history";
  ASSERT_TRUE(
      eventually([&] { return agentTotal(agent.port()) == static_cast<int64_t>(truth.size()); },
                 std::chrono::seconds(60)))
      << agentTotal(agent.port()) << " of " << truth.size() << "\n"
      << agent.process().output();
  const std::vector<std::string> served = agentIds(agent.port());
  const std::set<std::string> unique(served.begin(), served.end());
  EXPECT_EQ(unique.size(), served.size()) << "a receipt is stored twice";
  EXPECT_EQ(unique, std::set<std::string>(truth.begin(), truth.end()))
      << "the store differs from the node's own list";
  ASSERT_FALSE(served.empty());
  EXPECT_EQ(served.front(), truth.back());
  EXPECT_EQ(served.back(), truth.front());
  // The spec cursor reaches the node's last block.
  EXPECT_TRUE(eventually([&] {
    const Json c = getJson(agent.port(), "/health")["simple_db"]["cursor"]["spec.height"];
    return c.isInt() && c.asInt() == 7575;
  })) << getJson(agent.port(), "/health").dump();
}

TEST(ReceiptsCrash, TheblockKillDuringIngestKeepsEveryEnergyReceiptOnce) {
  // On the real node's surface the agent's ids are its own (settlement:<sequence>,
  // sla:<job_id>, energy:<meter_hash>): a settlement and an SLA record are separate receipts of
  // one compute job. The energy receipts map one to one onto the node's ground truth; the
  // compute jobs are compared by job id. Storage and ad receipts have no per-receipt source.
  DevNode node("theblock", {"--block-ms", "0", "--start-height", "30", "--receipts-per-block",
                            "100", "--rate-limit", "0"});
  TempDir home;
  auto agent = std::make_unique<Agent>(home, node.url(), receiptsConfig());
  ASSERT_TRUE(eventually([&] { return agentTotal(agent->port(), "&market=energy") > 0; }))
      << agent->process().output();
  agent = killWhileIngesting(node, home, std::move(agent), 2);

  std::set<std::string> truth_energy;
  for (const auto& id : truthIds(node, "energy")) truth_energy.insert("energy:" + id);
  ASSERT_FALSE(truth_energy.empty());
  ASSERT_TRUE(eventually(
      [&] {
        return agentTotal(agent->port(), "&market=energy") ==
               static_cast<int64_t>(truth_energy.size());
      },
      std::chrono::seconds(30)))
      << agentTotal(agent->port(), "&market=energy") << " of " << truth_energy.size();
  ASSERT_TRUE(settled(agent->port(), "&market=energy"));
  const std::vector<std::string> energy = agentIds(agent->port(), "&market=energy");
  const std::set<std::string> energy_set(energy.begin(), energy.end());
  EXPECT_EQ(energy_set.size(), energy.size()) << "an energy receipt is stored twice";
  EXPECT_EQ(energy_set, truth_energy);

  // Every SLA record the agent holds is a compute job of the node's, once.
  ASSERT_TRUE(settled(agent->port(), "&market=compute"));
  const std::vector<std::string> compute = agentIds(agent->port(), "&market=compute");
  const std::set<std::string> compute_set(compute.begin(), compute.end());
  EXPECT_EQ(compute_set.size(), compute.size()) << "a compute receipt is stored twice";
  const std::vector<std::string> truth_compute = truthIds(node, "compute");
  const std::set<std::string> jobs(truth_compute.begin(), truth_compute.end());
  int sla = 0;
  for (const auto& id : compute_set) {
    if (id.rfind("sla:", 0) != 0) continue;
    ++sla;
    EXPECT_TRUE(jobs.count(id.substr(4))) << id << " is no job of the node";
  }
  EXPECT_GT(sla, 0);
}

// ---- the API over the store -----------------------------------------------------------------

class ReceiptsApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    node_ = new DevNode("spec",
                        {"--block-ms", "0", "--start-height", "40", "--receipts-per-block", "25"});
    home_ = new TempDir;
    agent_ = new Agent(*home_, node_->url(), receiptsConfig());
    const size_t expected = truthIds(*node_).size();
    eventually([&] { return agentTotal(agent_->port()) == static_cast<int64_t>(expected); },
               std::chrono::seconds(30));
  }
  static void TearDownTestSuite() {
    delete agent_;
    delete home_;
    delete node_;
  }
  static int port() { return agent_->port(); }
  static DevNode* node_;
  static TempDir* home_;
  static Agent* agent_;
};
DevNode* ReceiptsApi::node_ = nullptr;
TempDir* ReceiptsApi::home_ = nullptr;
Agent* ReceiptsApi::agent_ = nullptr;

TEST_F(ReceiptsApi, PaginationArithmetic) {
  const int64_t total = agentTotal(port());
  ASSERT_EQ(total, static_cast<int64_t>(truthIds(*node_).size()));
  ASSERT_EQ(total, 40 * 25);

  const Json first = getJson(port(), "/theblock/receipts");
  EXPECT_EQ(first["limit"].asInt(), 100) << "default limit";
  EXPECT_EQ(first["offset"].asInt(), 0) << "default offset";
  EXPECT_EQ(first["receipts"].size(), 100u);
  EXPECT_EQ(first["total"].asInt(), total);
  EXPECT_TRUE(first["timestamp"].isInt());
  EXPECT_TRUE(first["age_seconds"].isNumber());
  EXPECT_TRUE(first["stale"].isBool());

  // Pages of 7 tile the first 21 without overlap, in the order of one page of 21.
  const Json page21 = getJson(port(), "/theblock/receipts?limit=21");
  std::vector<std::string> tiled;
  for (int offset = 0; offset < 21; offset += 7) {
    const Json p = getJson(port(), "/theblock/receipts?limit=7&offset=" + std::to_string(offset));
    EXPECT_EQ(p["receipts"].size(), 7u);
    EXPECT_EQ(p["total"].asInt(), total);
    for (const auto& r : p["receipts"].asArray()) tiled.push_back(r["id"].asString());
  }
  ASSERT_EQ(page21["receipts"].size(), 21u);
  for (size_t i = 0; i < 21; ++i) EXPECT_EQ(tiled[i], page21["receipts"][i]["id"].asString()) << i;

  // The last page is short; past the end is empty, with the same total.
  const Json last =
      getJson(port(), "/theblock/receipts?limit=30&offset=" + std::to_string(total - 10));
  EXPECT_EQ(last["receipts"].size(), 10u);
  const Json past =
      getJson(port(), "/theblock/receipts?limit=10&offset=" + std::to_string(total + 5));
  ASSERT_TRUE(past["receipts"].isArray()) << past.dump();
  EXPECT_EQ(past["receipts"].size(), 0u);
  EXPECT_EQ(past["total"].asInt(), total);
  EXPECT_EQ(past["offset"].asInt(), total + 5);

  // The market filter: totals sum to the whole, each page holds only its market, and each
  // total matches the node's own count.
  int64_t sum = 0;
  for (const char* m : kMarkets) {
    const Json p = getJson(port(), std::string("/theblock/receipts?limit=1000&market=") + m);
    ASSERT_TRUE(p["total"].isInt()) << m << ": " << p.dump();
    sum += p["total"].asInt();
    EXPECT_EQ(p["total"].asInt(), static_cast<int64_t>(truthIds(*node_, m).size())) << m;
    for (const auto& r : p["receipts"].asArray()) EXPECT_EQ(r["market"].asString(), m);
  }
  EXPECT_EQ(sum, total);
}

TEST_F(ReceiptsApi, TheCursorWalksTheTrailAsTheOffsetsDo) {
  for (const std::string market : {"", "energy"}) {
    const std::string filter = market.empty() ? "" : "&market=" + market;
    const std::vector<std::string> by_offset = agentIds(port(), filter);
    ASSERT_EQ(by_offset.size(), truthIds(*node_, market).size()) << market;
    std::vector<std::string> by_cursor;
    std::string target = "/theblock/receipts?limit=37" + filter;
    for (int pages = 0; pages < 100; ++pages) {
      const Json page = getJson(port(), target);
      ASSERT_TRUE(page["receipts"].isArray()) << target << ": " << page.dump();
      EXPECT_EQ(page["offset"].asInt(), static_cast<int64_t>(by_cursor.size())) << target;
      EXPECT_EQ(page["total"].asInt(), static_cast<int64_t>(by_offset.size())) << target;
      for (const auto& r : page["receipts"].asArray()) by_cursor.push_back(r["id"].asString());
      if (page["next"].isNull()) break;
      ASSERT_TRUE(page["next"].isString()) << page.dump();
      target = "/theblock/receipts?limit=37&before=" + page["next"].asString() + filter;
    }
    EXPECT_EQ(by_cursor, by_offset) << market;
    // The deepest page by offset is the cursor's last page.
    const Json last = getJson(port(), "/theblock/receipts?limit=1&offset=" +
                                          std::to_string(by_offset.size() - 1) + filter);
    ASSERT_EQ(last["receipts"].size(), 1u);
    EXPECT_EQ(last["receipts"][size_t{0}]["id"].asString(), by_offset.back());
    EXPECT_TRUE(last["next"].isNull());
  }
}

TEST_F(ReceiptsApi, EachBadParameterIsA400NamingIt) {
  const std::pair<const char*, const char*> cases[] = {
      {"limit=0", "limit"},         {"limit=1001", "limit"},        {"limit=abc", "limit"},
      {"limit=", "limit"},          {"offset=-1", "offset"},        {"offset=x", "offset"},
      {"market=bitcoin", "market"}, {"_=123&limit=abc", "limit"},   {"limit=5&limit=6", "limit"},
      {"before=abc", "before"},     {"before=5&offset=3", "before"}};
  for (const auto& [query, param] : cases) {
    auto r = httpGet(port(), std::string("/theblock/receipts?") + query);
    EXPECT_EQ(r.status, 400) << query << ": " << r.body;
    Json body;
    try {
      body = r.json();
    } catch (const blockbuster::JsonError&) {
    }
    ASSERT_TRUE(body["error"]["message"].isString()) << query << ": " << r.body;
    EXPECT_TRUE(body["error"]["code"].isString()) << query;
    EXPECT_NE(body["error"]["message"].asString().find(param), std::string::npos)
        << query << " should name '" << param << "': " << r.body;
  }
}

TEST_F(ReceiptsApi, OperationsByMarketAndHealthSimpleDb) {
  Json ops;
  ASSERT_TRUE(eventually([&] {
    ops = getJson(port(), "/theblock/operations");
    return ops["total"].isInt() && ops["total"].asInt() == 40 * 25;
  })) << ops.dump();
  ASSERT_TRUE(ops["operations"].isArray());
  EXPECT_GT(ops["operations"].size(), 0u);
  ASSERT_TRUE(ops["by_market"].isObject()) << ops.dump();
  for (const char* m : kMarkets) {
    ASSERT_TRUE(ops["by_market"][m].isArray()) << m << ": " << ops.dump();
    for (const auto& op : ops["by_market"][m].asArray())
      EXPECT_EQ(op["type"].asString(), m) << op.dump();
  }
  // The newest operation is the newest receipt.
  const Json newest = getJson(port(), "/theblock/receipts?limit=1");
  EXPECT_EQ(ops["operations"][0]["id"].asString(), newest["receipts"][0]["id"].asString());

  const Json db = getJson(port(), "/health")["simple_db"];
  EXPECT_EQ(db["backend"].asString(), "sqlite") << db.dump();
  ASSERT_TRUE(db["path"].isString()) << db.dump();
  struct stat st {};
  EXPECT_EQ(stat(db["path"].asString().c_str(), &st), 0) << db["path"].asString();
  EXPECT_EQ(db["receipts"].asInt(), 40 * 25) << db.dump();
  const Json truth = getJson(node_->port(), "/_devnode/receipts?sources=0");
  int64_t max_height = 0;
  for (const auto& r : truth["receipts"].asArray())
    max_height = std::max(max_height, r["block_height"].asInt());
  EXPECT_EQ(db["last_ingested_height"].asInt(), max_height) << db.dump();
  int64_t by_market = 0;
  for (const auto& kv : db["by_market"].asObject()) by_market += kv.second.asInt();
  EXPECT_EQ(by_market, 40 * 25) << db.dump();
}

// ---- CORS -----------------------------------------------------------------------------------

TEST(ReceiptsCors, DefaultIsAnyOriginWithoutCredentials) {
  DevNode node("spec", {"--block-ms", "0"});
  TempDir home;
  Agent agent(home, node.url(), receiptsConfig());
  for (const char* path : {"/health", "/theblock/receipts", "/theblock/markets/health"}) {
    auto r = httpRequest(agent.port(), "GET", path, {{"Origin", "http://anything.example"}});
    EXPECT_EQ(r.headers["access-control-allow-origin"], "*") << path;
    EXPECT_EQ(r.headers.count("access-control-allow-credentials"), 0u) << path;
  }
}

TEST(ReceiptsCors, AConfiguredOriginIsEchoedWithVaryAndOthersGetNone) {
  DevNode node("spec", {"--block-ms", "0"});
  TempDir home;
  Agent agent(home, node.url(),
              receiptsConfig() + "http:\n  cors_origins: [\"http://allowed.example\"]\n");
  for (const char* path : {"/health", "/theblock/receipts", "/theblock/markets/health"}) {
    auto ok = httpRequest(agent.port(), "GET", path, {{"Origin", "http://allowed.example"}});
    EXPECT_EQ(ok.headers["access-control-allow-origin"], "http://allowed.example") << path;
    EXPECT_NE(ok.headers["vary"].find("Origin"), std::string::npos) << path;
    auto other = httpRequest(agent.port(), "GET", path, {{"Origin", "http://evil.example"}});
    EXPECT_EQ(other.headers.count("access-control-allow-origin"), 0u)
        << path << ": " << other.headers["access-control-allow-origin"];
    EXPECT_NE(other.headers["vary"].find("Origin"), std::string::npos) << path;
    for (const auto* r : {&ok, &other}) {
      auto creds = r->headers.find("access-control-allow-credentials");
      auto origin = r->headers.find("access-control-allow-origin");
      if (creds != r->headers.end() && origin != r->headers.end()) {
        EXPECT_NE(origin->second, "*") << path;
      }
    }
  }
  // The preflight follows the same rule.
  auto pre =
      httpRequest(agent.port(), "OPTIONS", "/theblock/receipts",
                  {{"Origin", "http://allowed.example"}, {"Access-Control-Request-Method", "GET"}});
  EXPECT_EQ(pre.status, 204);
  EXPECT_EQ(pre.headers["access-control-allow-origin"], "http://allowed.example");
  auto pre_other = httpRequest(agent.port(), "OPTIONS", "/theblock/receipts",
                               {{"Origin", "http://evil.example"}});
  EXPECT_EQ(pre_other.headers.count("access-control-allow-origin"), 0u);
}

}  // namespace
