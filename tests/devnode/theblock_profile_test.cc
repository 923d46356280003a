// bb-devnode, theblock profile: the real node's methods, shapes and transport rules.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>

#include "devnode_client.h"

namespace devnodetest {
namespace {

const std::vector<std::string> kQuiet = {"--profile", "theblock",       "--block-ms",
                                         "0",         "--start-height", "40"};

std::vector<std::string> with(std::vector<std::string> extra) {
  std::vector<std::string> args = kQuiet;
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

TEST(DevnodeTheBlock, MethodsHaveTheRealShapes) {
  Devnode node(kQuiet);
  EXPECT_TRUE(hasKeys(node.result("net.overlay_status"),
                      {"active_peers", "backend", "database_path", "persisted_peers"}));
  Json peers = node.result("net.peer_stats_all", "{\"offset\":0,\"limit\":5}");
  ASSERT_TRUE(peers.isArray());
  ASSERT_EQ(peers.size(), 5u);
  EXPECT_TRUE(hasKeys(peers[size_t{0}], {"peer_id", "metrics"}));
  EXPECT_TRUE(
      hasKeys(peers[size_t{0}]["metrics"],
              {"requests", "bytes_sent", "sends", "drops", "handshake_fail", "handshake_success",
               "last_handshake_ms", "tls_errors", "reputation", "last_updated", "req_avg",
               "byte_avg", "throttled_until", "throttle_reason", "backoff_level", "sec_start"}));
  Json headers = node.result("light.headers", "{\"start\":38,\"limit\":10}");
  ASSERT_EQ(headers.size(), 3u);
  EXPECT_EQ(headers[size_t{0}]["height"].asInt(), 38);
  Json tip = node.result("light.latest_header");
  EXPECT_TRUE(hasKeys(tip, {"height", "hash", "difficulty"}));
  EXPECT_EQ(tip.size(), 3u) << "the real header has no number, timestamp or finality";
  EXPECT_EQ(tip["height"].asInt(), 40);
  EXPECT_EQ(tip["hash"], headers[size_t{2}]["hash"]);
  EXPECT_TRUE(hasKeys(node.result("mempool.stats", "{\"lane\":\"consumer\"}"),
                      {"age_p50", "age_p95", "fee_floor", "fee_p50", "fee_p90", "size"}));
  EXPECT_TRUE(hasKeys(node.result("consensus.difficulty"), {"difficulty"}));
  Json stats = node.result("compute_market.stats");
  EXPECT_TRUE(hasKeys(
      stats,
      {"industrial_backlog", "industrial_utilization", "industrial_units_total",
       "industrial_price_per_unit", "industrial_price_base", "industrial_price_weighted", "lanes",
       "pending", "recent_matches", "lane_starvation", "settlement_engine", "blocktorch"}));
  EXPECT_FALSE(stats.contains("active_jobs")) << "spec field names must not leak in";
  EXPECT_TRUE(hasKeys(node.result("compute_market.scheduler_stats"),
                      {"active_jobs", "queued_high", "queued_normal", "queued_low", "preemptions",
                       "success", "priority_miss", "capability_mismatch", "reputation_failure",
                       "effective_price", "pending", "utilization"}));
  EXPECT_TRUE(hasKeys(node.result("compute_market.provider_balances"), {"providers"}));
  Json audit = node.result("settlement.audit");
  ASSERT_TRUE(audit.isArray());
  ASSERT_GT(audit.size(), 0u);
  EXPECT_TRUE(hasKeys(audit[size_t{0}],
                      {"sequence", "timestamp", "entity", "memo", "delta", "balance", "anchor"}));
  EXPECT_EQ(node.result("compute_market.audit"), audit);
  Json sla = node.result("compute_market.sla_history", "{\"limit\":3}");
  ASSERT_EQ(sla.size(), 3u);
  EXPECT_TRUE(hasKeys(sla[size_t{0}], {"job_id", "provider", "buyer", "outcome", "outcome_reason",
                                       "burned", "refunded", "deadline", "resolved_at", "proofs"}));
  Json manifests = node.result("storage.manifests", "{\"limit\":2}");
  ASSERT_TRUE(hasKeys(manifests, {"manifests", "policy", "status"}));
  EXPECT_EQ(manifests["manifests"].size(), 2u);
  Json energy = node.result("energy.market_state");
  EXPECT_TRUE(
      hasKeys(energy, {"providers", "credits", "receipts", "disputes", "governance", "status"}));
  EXPECT_TRUE(energy["providers"].isArray());
  Json er = node.result("energy.receipts", "{\"page\":0,\"page_size\":5}");
  ASSERT_TRUE(hasKeys(er, {"page", "page_size", "receipts", "total", "status"}));
  EXPECT_TRUE(hasKeys(er["receipts"][size_t{0}],
                      {"buyer", "seller", "kwh_delivered", "price_paid", "block_settled",
                       "treasury_fee", "slash_applied", "meter_hash"}));
  EXPECT_TRUE(hasKeys(node.result("ad_market.inventory"),
                      {"campaigns", "cohort_prices", "distribution", "oracle", "status"}));
  EXPECT_TRUE(hasKeys(node.result("ad_market.budget"), {"campaigns", "summary", "status"}));
  EXPECT_TRUE(hasKeys(
      node.result("ad_market.readiness"),
      {"ready", "blockers", "unique_viewers", "host_count", "provider_count", "utilization"}));
  EXPECT_EQ(node.result("governor.status"), Json({{"status", "disabled"}}));
}

TEST(DevnodeTheBlock, GovernorFlagEnablesGovernor) {
  Devnode node(with({"--governor"}));
  Json g = node.result("governor.status");
  EXPECT_TRUE(
      hasKeys(g, {"enabled", "epoch", "economics_prev_market_metrics", "gates", "receipt_health"}));
}

TEST(DevnodeTheBlock, DiscoverProvidersListsOneProviderTwice) {
  Devnode node(kQuiet);
  Json r =
      node.result("storage.discover_providers", "{\"object_size\":1024,\"shares\":1,\"limit\":50}");
  ASSERT_TRUE(r["providers"].isArray());
  std::multiset<std::string> ids;
  for (const auto& p : r["providers"].asArray()) ids.insert(p["provider"].asString());
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(ids.size(), unique.size() + 1);
}

TEST(DevnodeTheBlock, SpecOnlyMethodsAreMethodNotFound) {
  Devnode node(kQuiet);
  for (const char* m :
       {"net.peers", "net.stats", "storage.stats", "ad_market.stats", "receipt.audit"}) {
    HttpResult r = node.rpc(m);
    ASSERT_TRUE(r.ok) << m;
    EXPECT_EQ(r.json()["error"]["code"].asInt(), -32601) << m;
  }
}

TEST(DevnodeTheBlock, TransportRefusesBatchesArrayParamsAndMissingParams) {
  Devnode node(kQuiet);
  HttpResult batch =
      node.http("POST", "/", R"([{"jsonrpc":"2.0","id":1,"method":"consensus.difficulty"}])");
  ASSERT_TRUE(batch.ok);
  EXPECT_EQ(batch.json()["error"]["code"].asInt(), -32700);
  HttpResult array = node.rpc("consensus.difficulty", "[]");
  ASSERT_TRUE(array.ok);
  EXPECT_EQ(array.json()["error"]["code"].asInt(), -32602);
  EXPECT_EQ(array.json()["error"]["message"], Json("parameters must be an object"));
  HttpResult missing = node.rpc("light.headers", "");
  EXPECT_EQ(missing.json()["error"]["code"].asInt(), -32602);
  HttpResult get = node.http("GET", "/");
  EXPECT_NE(get.status, 200);
}

TEST(DevnodeTheBlock, HostHeaderCheckAnswers403WithEmptyBody) {
  Devnode node(with({"--allowed-host", "node.internal"}));
  const std::string body =
      R"({"jsonrpc":"2.0","id":1,"method":"consensus.difficulty","params":{}})";
  HttpResult evil = node.http("POST", "/", body, {{"Host", "evil.example:3030"}});
  ASSERT_TRUE(evil.ok) << evil.error;
  EXPECT_EQ(evil.status, 403);
  EXPECT_TRUE(evil.body.empty()) << evil.body;
  HttpResult local = node.http("POST", "/", body, {{"Host", "localhost:9999"}});
  EXPECT_EQ(local.status, 200);
  HttpResult extra = node.http("POST", "/", body, {{"Host", "node.internal"}});
  EXPECT_EQ(extra.status, 200);
  // The control API is exempt.
  HttpResult control = node.http("GET", "/_devnode/state", "", {{"Host", "evil.example"}});
  EXPECT_EQ(control.status, 200);
}

TEST(DevnodeTheBlock, RateLimitAnswers429ThenBans) {
  Devnode node(with({"--rate-limit", "2", "--rate-burst", "5", "--ban-seconds", "60"}));
  std::vector<int> codes;
  for (int i = 0; i < 12; ++i) {
    HttpResult r = node.rpc("consensus.difficulty");
    ASSERT_TRUE(r.ok) << r.error;
    if (r.status == 200) {
      codes.push_back(0);
      continue;
    }
    EXPECT_EQ(r.status, 429);
    codes.push_back(static_cast<int>(r.json()["error"]["code"].asInt()));
  }
  auto first_refusal = std::find_if(codes.begin(), codes.end(), [](int c) { return c != 0; });
  ASSERT_NE(first_refusal, codes.end()) << "12 quick calls must exceed a burst of 5";
  EXPECT_EQ(*first_refusal, -32001);
  ASSERT_NE(first_refusal + 1, codes.end());
  for (auto it = first_refusal + 1; it != codes.end(); ++it) EXPECT_EQ(*it, -32002);
  EXPECT_EQ(node.http("GET", "/_devnode/state").status, 200) << "control API is exempt";
}

TEST(DevnodeTheBlock, AuthTokenGuardsEnergyAndAdminMethods) {
  Devnode node(with({"--auth-token", "s3cret"}));
  HttpResult no = node.rpc("energy.market_state");
  EXPECT_EQ(no.json()["error"]["code"].asInt(), -33009);
  HttpResult wrong = node.rpc("energy.market_state", "{}", {{"Authorization", "Bearer nope"}});
  EXPECT_EQ(wrong.json()["error"]["code"].asInt(), -33009);
  HttpResult yes = node.rpc("energy.market_state", "{}", {{"Authorization", "Bearer s3cret"}});
  EXPECT_TRUE(yes.json().contains("result")) << yes.body;
  EXPECT_TRUE(node.rpc("net.overlay_status").json().contains("result"));
  HttpResult admin = node.rpc("stop_mining");
  EXPECT_EQ(admin.json()["error"]["code"].asInt(), -32601);
  HttpResult admin_ok = node.rpc("start_mining", "{}", {{"Authorization", "Bearer s3cret"}});
  EXPECT_TRUE(admin_ok.json().contains("result")) << admin_ok.body;
}

TEST(DevnodeTheBlock, LatestHeaderOnEmptyChainPoisonsLightUntilRestart) {
  Devnode node({"--profile", "theblock", "--start-height", "0", "--block-ms", "0"});
  Json headers = node.result("light.headers", "{\"start\":0,\"limit\":1}");
  EXPECT_TRUE(headers.isArray());
  EXPECT_EQ(headers.size(), 0u);
  HttpResult panic = node.rpc("light.latest_header");
  EXPECT_FALSE(panic.ok) << "expected the connection to close without a reply, got " << panic.status
                         << " " << panic.body;
  EXPECT_FALSE(panic.timed_out);
  node.control("POST", "/_devnode/advance", "{\"blocks\":2}");
  HttpResult after = node.rpc("light.headers", "{\"start\":0,\"limit\":1}");
  EXPECT_FALSE(after.ok) << "light.* must stay broken after the panic";
  EXPECT_TRUE(node.rpc("consensus.difficulty").json().contains("result"));
  EXPECT_TRUE(node.control("GET", "/_devnode/state")["light_poisoned"].asBool());
}

TEST(DevnodeTheBlock, GroundTruthNamesSourcesThatMatchTheMethods) {
  Devnode node(with({"--receipts-per-block", "6"}));
  Json truth = node.control("GET", "/_devnode/receipts");
  ASSERT_EQ(truth["receipts"].size(), 240u);
  // Energy receipts: every one is in energy.receipts, paged oldest first.
  std::map<std::string, Json> by_hash;
  int64_t page = 0;
  for (;; ++page) {
    Json r =
        node.result("energy.receipts", "{\"page\":" + std::to_string(page) + ",\"page_size\":100}");
    for (const auto& e : r["receipts"].asArray()) by_hash[e["meter_hash"].asString()] = e;
    if (r["receipts"].size() < 100) break;
  }
  Json ledger = node.result("settlement.audit");
  std::map<std::string, Json> by_memo;
  for (const auto& e : ledger.asArray()) by_memo[e["memo"].asString()] = e;
  size_t energy = 0, compute = 0;
  for (const auto& t : truth["receipts"].asArray()) {
    const Json& sources = t["source"]["sources"];
    if (t["market"] == Json("energy")) {
      ++energy;
      ASSERT_EQ(sources[size_t{0}]["method"], Json("energy.receipts"));
      auto it = by_hash.find(t["id"].asString());
      ASSERT_NE(it, by_hash.end()) << t.dump();
      for (const auto& [canonical, field] : sources[size_t{0}]["fields"].asObject())
        EXPECT_EQ(t[canonical], it->second[field.asString()]) << canonical;
    } else if (t["market"] == Json("compute")) {
      ++compute;
      ASSERT_EQ(sources[size_t{1}]["method"], Json("settlement.audit"));
      auto it = by_memo.find(sources[size_t{1}]["match"]["memo"].asString());
      ASSERT_NE(it, by_memo.end()) << t.dump();
      for (const auto& [canonical, field] : sources[size_t{1}]["fields"].asObject())
        EXPECT_EQ(t[canonical], it->second[field.asString()]) << canonical;
    } else {
      EXPECT_EQ(sources.size(), 0u) << "storage and ad receipts have no per-receipt source";
    }
  }
  EXPECT_EQ(energy, by_hash.size());
  EXPECT_EQ(compute, by_memo.size());
  EXPECT_GT(energy, 0u);
  EXPECT_GT(compute, 0u);
}

}  // namespace
}  // namespace devnodetest
