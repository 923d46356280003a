// bb-devnode, spec profile: the guide's methods and shapes, the chain, determinism, ground truth.
#include <gtest/gtest.h>

#include <csignal>
#include <set>

#include "devnode_client.h"

namespace devnodetest {
namespace {

TEST(DevnodeSpec, EveryGuideMethodHasItsShape) {
  Devnode node({"--profile", "spec", "--block-ms", "0", "--start-height", "30"});
  Json peers = node.result("net.peers", "[]");
  ASSERT_TRUE(peers["peers"].isArray());
  ASSERT_GT(peers["peers"].size(), 0u);
  EXPECT_TRUE(hasKeys(peers["peers"][size_t{0}], {"id", "address", "connected_at", "latency_ms",
                                                  "version", "is_validator", "reputation"}));
  EXPECT_TRUE(hasKeys(node.result("net.stats", "[]"), {"tps", "bandwidth_in", "bandwidth_out",
                                                       "active_connections", "avg_latency_ms"}));
  Json head = node.result("light.latest_header", "[]");
  EXPECT_TRUE(hasKeys(head, {"number", "hash", "finality_time"}));
  EXPECT_EQ(head["number"].asInt(), 30);
  EXPECT_TRUE(hasKeys(node.result("compute_market.stats"),
                      {"active_jobs", "providers", "avg_utilization", "total_revenue"}));
  EXPECT_TRUE(hasKeys(node.result("storage.stats"),
                      {"total_stored", "providers", "avg_price", "capacity_used"}));
  Json energy = node.result("energy.market_state");
  EXPECT_TRUE(hasKeys(energy, {"total_credits", "avg_price", "active_traders", "volume_24h"}));
  EXPECT_FALSE(energy.contains("providers")) << "spec energy.market_state is the aggregate shape";
  EXPECT_TRUE(hasKeys(node.result("ad_market.stats"),
                      {"active_campaigns", "total_impressions", "total_revenue", "avg_cpm"}));
  Json audit = node.result("receipt.audit", "{\"limit\":5}");
  ASSERT_TRUE(hasKeys(audit, {"receipts", "total"}));
  ASSERT_EQ(audit["receipts"].size(), 5u);
  EXPECT_TRUE(hasKeys(audit["receipts"][size_t{0}],
                      {"id", "market", "block_height", "timestamp", "provider", "consumer",
                       "amount", "status", "details"}));
}

TEST(DevnodeSpec, ResponsesAreSortedJsonRpcWithIdEchoedAndContentLength) {
  Devnode node({"--profile", "spec", "--block-ms", "0"});
  HttpResult r =
      node.http("POST", "/", R"({"jsonrpc":"2.0","id":"abc","method":"net.stats","params":{}})");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(r.content_length, static_cast<long long>(r.body.size()));
  EXPECT_EQ(r.body.rfind("{\"id\":\"abc\",\"jsonrpc\":\"2.0\",\"result\":{", 0), 0u) << r.body;
  HttpResult unknown = node.rpc("no.such_method");
  ASSERT_TRUE(unknown.ok);
  EXPECT_EQ(unknown.json()["error"]["code"].asInt(), -32601);
  HttpResult bad = node.http("POST", "/", "{not json");
  ASSERT_TRUE(bad.ok);
  EXPECT_EQ(bad.json()["error"]["code"].asInt(), -32700);
}

TEST(DevnodeSpec, ReceiptAuditFiltersPagesNewestFirst) {
  Devnode node({"--profile", "spec", "--block-ms", "0", "--start-height", "40",
                "--receipts-per-block", "6"});
  Json all = node.result("receipt.audit", "{\"limit\":1000}");
  ASSERT_EQ(all["total"].asInt(), 240);
  const auto& list = all["receipts"];
  ASSERT_EQ(list.size(), 240u);
  for (size_t i = 1; i < list.size(); ++i)
    ASSERT_GE(list[i - 1]["block_height"].asInt(), list[i]["block_height"].asInt());
  Json energy = node.result("receipt.audit", "{\"limit\":1000,\"market\":\"energy\"}");
  int64_t energy_count = 0;
  for (const auto& r : list.asArray()) energy_count += r["market"] == Json("energy") ? 1 : 0;
  EXPECT_EQ(energy["total"].asInt(), energy_count);
  for (const auto& r : energy["receipts"].asArray()) EXPECT_EQ(r["market"], Json("energy"));
  Json page = node.result("receipt.audit", "{\"limit\":10,\"offset\":10}");
  ASSERT_EQ(page["receipts"].size(), 10u);
  EXPECT_EQ(page["receipts"][size_t{0}]["id"], list[10]["id"]);
  Json recent = node.result("receipt.audit", "{\"limit\":1000,\"start_height\":31}");
  EXPECT_EQ(recent["total"].asInt(), 60);
  for (const auto& r : recent["receipts"].asArray()) EXPECT_GE(r["block_height"].asInt(), 31);
  // Positional array params: [limit, offset, market, start_height].
  Json positional = node.result("receipt.audit", "[3, 0, \"ad\"]");
  ASSERT_EQ(positional["receipts"].size(), 3u);
  EXPECT_EQ(positional["receipts"][size_t{0}]["market"], Json("ad"));
  HttpResult bad = node.rpc("receipt.audit", "{\"market\":\"gold\"}");
  EXPECT_EQ(bad.json()["error"]["code"].asInt(), -32602);
}

TEST(DevnodeSpec, GroundTruthMatchesReceiptAudit) {
  Devnode node({"--profile", "spec", "--block-ms", "0", "--start-height", "25",
                "--receipts-per-block", "8"});
  Json truth = node.control("GET", "/_devnode/receipts");
  ASSERT_EQ(truth["receipts"].size(), 200u);
  EXPECT_EQ(truth["issued_total"].asInt(), 200);
  EXPECT_EQ(truth["dropped"].asInt(), 0);
  Json audit = node.result("receipt.audit", "{\"limit\":1000}");
  ASSERT_EQ(audit["receipts"].size(), 200u);
  std::set<std::string> ids;
  const auto& t = truth["receipts"].asArray();
  for (size_t i = 0; i < t.size(); ++i) {
    // The ground truth is oldest first, the audit newest first.
    const Json& a = audit["receipts"][t.size() - 1 - i];
    for (const char* k :
         {"id", "market", "block_height", "timestamp", "provider", "consumer", "amount", "status"})
      EXPECT_EQ(t[i][k], a[k]) << k << " of " << t[i]["id"].dump();
    ids.insert(t[i]["id"].asString());
  }
  EXPECT_EQ(ids.size(), 200u) << "receipt ids must be unique";
  std::set<std::string> markets;
  for (const auto& r : t) markets.insert(r["market"].asString());
  EXPECT_EQ(markets, (std::set<std::string>{"compute", "storage", "energy", "ad"}));
}

TEST(DevnodeSpec, HistoryIsCappedAndGroundTruthSaysSo) {
  Devnode node({"--profile", "spec", "--block-ms", "0", "--start-height", "50",
                "--receipts-per-block", "10", "--max-receipts", "120"});
  Json truth = node.control("GET", "/_devnode/receipts");
  EXPECT_EQ(truth["retained"].asInt(), 120);
  EXPECT_EQ(truth["issued_total"].asInt(), 500);
  EXPECT_EQ(truth["dropped"].asInt(), 380);
  EXPECT_EQ(node.result("receipt.audit", "{\"limit\":1000}")["total"].asInt(), 120);
}

TEST(DevnodeSpec, SameSeedSameChainDifferentSeedDifferentChain) {
  std::vector<std::string> common = {"--profile",      "spec", "--block-ms",     "0",
                                     "--start-height", "60",   "--genesis-time", "1700000000",
                                     "--peers",        "40"};
  auto with_seed = [&](const char* seed) {
    auto args = common;
    args.push_back("--seed");
    args.push_back(seed);
    return args;
  };
  Devnode a(with_seed("7")), b(with_seed("7")), c(with_seed("8"));
  for (const Devnode* n : {&a, &b, &c}) n->control("POST", "/_devnode/advance", "{\"blocks\":5}");
  EXPECT_EQ(a.control("GET", "/_devnode/receipts")["receipts"],
            b.control("GET", "/_devnode/receipts")["receipts"]);
  for (const char* m : {"net.peers", "net.stats", "light.latest_header", "compute_market.stats",
                        "storage.stats", "energy.market_state", "ad_market.stats"})
    EXPECT_EQ(a.result(m), b.result(m)) << m;
  EXPECT_NE(a.result("net.peers"), c.result("net.peers"));
  EXPECT_NE(a.control("GET", "/_devnode/receipts")["receipts"],
            c.control("GET", "/_devnode/receipts")["receipts"]);
}

TEST(DevnodeSpec, ChainMovesWithBlockMs) {
  Devnode node({"--profile", "spec", "--block-ms", "50", "--start-height", "10"});
  const uint64_t first = node.height();
  const int64_t issued = node.control("GET", "/_devnode/state")["receipts"]["issued"].asInt();
  ASSERT_TRUE(waitFor([&] { return node.height() >= first + 5; }, std::chrono::seconds(20)));
  EXPECT_GT(node.control("GET", "/_devnode/state")["receipts"]["issued"].asInt(), issued);
  EXPECT_GE(node.result("light.latest_header")["number"].asInt(), static_cast<int64_t>(first + 5));
}

TEST(DevnodeSpec, AdvanceProducesBlocksOnDemand) {
  Devnode node({"--profile", "spec", "--block-ms", "0", "--start-height", "3"});
  EXPECT_EQ(node.height(), 3u);
  Json r = node.control("POST", "/_devnode/advance", "{\"blocks\":7}");
  EXPECT_EQ(r["height"].asInt(), 10);
  EXPECT_EQ(node.result("light.latest_header")["number"].asInt(), 10);
  HttpResult bad = node.http("POST", "/_devnode/advance", "{\"blocks\":\"many\"}");
  EXPECT_EQ(bad.status, 400);
}

TEST(DevnodeSpec, StatsCountRequestsPerMethod) {
  Devnode node({"--profile", "spec", "--block-ms", "0"});
  for (int i = 0; i < 3; ++i) node.result("net.peers");
  node.result("net.stats");
  Json stats = node.control("GET", "/_devnode/stats");
  EXPECT_EQ(stats["methods"]["net.peers"].asInt(), 3);
  EXPECT_EQ(stats["methods"]["net.stats"].asInt(), 1);
  node.control("DELETE", "/_devnode/stats");
  EXPECT_FALSE(node.control("GET", "/_devnode/stats")["methods"].contains("net.peers"));
}

TEST(DevnodeSpec, BadFlagsExitTwoNamingTheFlag) {
  auto [status, out] = bbtest::runProgram({bbtest::binPath("bb-devnode"), "--block-ms", "soon"});
  EXPECT_EQ(status, 2);
  EXPECT_NE(out.find("--block-ms"), std::string::npos) << out;
  auto [status2, out2] = bbtest::runProgram({bbtest::binPath("bb-devnode"), "--frobnicate"});
  EXPECT_EQ(status2, 2);
  EXPECT_NE(out2.find("--frobnicate"), std::string::npos) << out2;
  auto [status3, help] = bbtest::runProgram({bbtest::binPath("bb-devnode"), "--help"});
  EXPECT_EQ(status3, 0);
  for (const char* word : {"theblock", "--receipts-per-block", "--fault-mode", "truncated", "hang",
                           "/_devnode/faults", "down_seconds", "--rate-limit"})
    EXPECT_NE(help.find(word), std::string::npos) << word;
}

TEST(DevnodeSpec, SigtermStopsCleanly) {
  Devnode node({"--profile", "spec", "--block-ms", "20"});
  node.result("net.peers");
  node.process().signal(SIGTERM);
  auto status = node.process().wait(std::chrono::seconds(10));
  ASSERT_TRUE(status.has_value());
  EXPECT_EQ(*status, 0);
}

}  // namespace
}  // namespace devnodetest
