#include "network_logic.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>

#include "fixture.h"
#include "scripted_node.h"

namespace blockbuster::network {
namespace {

Json fixture(const std::string& name) { return bbtest::readFixture(NETWORK_FIXTURES_DIR, name); }

using node::scripted::notFound;
using node::scripted::ok;
using node::scripted::ScriptedNode;

Answer transportFailure() { return node::scripted::failed("connection refused"); }

void specNode(ScriptedNode& node) {
  node.answer("net.peers", fixture("spec/net_peers.json"));
  node.answer("net.stats", fixture("spec/net_stats.json"));
  node.answer("light.latest_header", fixture("spec/light_latest_header.json"));
}

// Serves net.peer_stats_all from `peers` (shared so a test can change it between cycles).
void peerStats(ScriptedNode& node, std::shared_ptr<Json::Array> peers) {
  node.on("net.peer_stats_all", [peers](const Json& p) {
    Json page = Json::array();
    int64_t off = p["offset"].asInt(), lim = p["limit"].asInt();
    for (int64_t i = off; i < off + lim && i < static_cast<int64_t>(peers->size()); ++i)
      page.push_back((*peers)[static_cast<size_t>(i)]);
    return ok(page);
  });
}

std::shared_ptr<Json::Array> fixturePeers() {
  return std::make_shared<Json::Array>(fixture("theblock/net_peer_stats_all.json").asArray());
}

Json statsPeer(const std::string& id, double bytes_sent) {
  return Json{
      {"peer_id", id},
      {"metrics",
       Json{{"bytes_sent", bytes_sent}, {"reputation", Json{{"score", 1.0}}}, {"requests", 1}}}};
}

std::shared_ptr<Json::Array> generatedPeers(int n) {
  auto peers = std::make_shared<Json::Array>();
  for (int i = 0; i < n; ++i) peers->push_back(statsPeer("p" + std::to_string(i), 100.0 * i));
  return peers;
}

void theblockNode(ScriptedNode& node, bool chain_empty = false,
                  std::shared_ptr<Json::Array> peers = fixturePeers()) {
  node.answer("net.overlay_status", fixture("theblock/net_overlay_status.json"));
  peerStats(node, std::move(peers));
  node.answer("light.headers", fixture(chain_empty ? "theblock/light_headers_empty.json"
                                                   : "theblock/light_headers.json"));
  node.answer("light.latest_header", fixture("theblock/light_latest_header.json"));
}

bool mentions(const Json& unavailable, const char* field, const char* text) {
  const Json& r = unavailable[field];
  return r.isString() && r.asString().find(text) != std::string::npos;
}

// ------------------------------------------------------------------------------------------
// Spec profile

TEST(NetworkSpec, EveryGuideFieldFromTheRecordedAnswers) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  Snapshot s = c.collect(node, 100);
  EXPECT_EQ(c.profile(), Profile::kSpec);

  Json m = metricsBody(s);
  EXPECT_EQ(m["block_height"], Json(123456));
  EXPECT_EQ(m["finality_time"], Json(6));
  EXPECT_EQ(m["peer_count"], Json(2));
  EXPECT_EQ(m["tps"], Json(145.7));
  EXPECT_EQ(m["bandwidth_in"], Json(1024000));
  EXPECT_EQ(m["bandwidth_out"], Json(512000));
  EXPECT_EQ(m["active_connections"], Json(23));
  // peers 2/50*30 = 1.2, tps 5.828, finality 29.4: 36.428 -> 36.
  EXPECT_EQ(m["network_strength"], Json(36));
  EXPECT_NEAR(m["strength_terms"]["peers"].asDouble(), 1.2, 1e-9);
  EXPECT_NEAR(m["strength_terms"]["tps"].asDouble(), 5.828, 1e-9);
  EXPECT_NEAR(m["strength_terms"]["finality"].asDouble(), 29.4, 1e-9);
  EXPECT_TRUE(m["block_rate"].isNull());
  EXPECT_EQ(m["profile"], Json("spec"));
  ASSERT_TRUE(m["unavailable"].isObject());
  EXPECT_EQ(m["unavailable"].size(), 2u) << m.dump();
  EXPECT_TRUE(mentions(m["unavailable"], "block_rate", "two samples"));
  EXPECT_TRUE(m["last_block_age_seconds"].isNull());
  EXPECT_TRUE(mentions(m["unavailable"], "last_block_age_seconds", "has not changed"));
  // The guide's order comes first.
  const char* order[] = {
      "network_strength", "block_height",  "finality_time",     "peer_count", "tps",
      "bandwidth_in",     "bandwidth_out", "active_connections"};
  for (size_t i = 0; i < 8; ++i) EXPECT_EQ(m.asObject()[i].first, order[i]);
}

TEST(NetworkSpec, PeersListCopiesEveryGuideField) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  const Json p = peersBody(c.collect(node, 1));
  Json want = fixture("spec/net_peers.json")["peers"];
  ASSERT_EQ(p["peers"].size(), 2u);
  EXPECT_EQ(p["peers"], want);
  EXPECT_EQ(p["total"], Json(2));
  EXPECT_EQ(p["truncated"], Json(false));
  EXPECT_EQ(p["unavailable"].size(), 0u);
}

TEST(NetworkSpec, DetectsOnceThenMakesTheThreeCallsInOneBatch) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  c.collect(node, 1);
  ASSERT_EQ(node.batches.size(), 2u);
  EXPECT_EQ(node.methods(0), (std::vector<std::string>{"net.peers", "net.overlay_status"}));
  EXPECT_EQ(node.methods(1),
            (std::vector<std::string>{"net.peers", "net.stats", "light.latest_header"}));
  c.collect(node, 2);
  ASSERT_EQ(node.batches.size(), 3u);
  EXPECT_EQ(node.methods(2), node.methods(1));
}

// A spec node whose height is `height` (the test moves it between cycles).
void movingSpecNode(ScriptedNode& node, const int64_t& height) {
  specNode(node);
  node.on("light.latest_header", [&height](const Json&) {
    return ok(Json{{"number", height}, {"finality_time", 6}});
  });
}

TEST(NetworkSpec, BlockRateFromHeightDeltasOverTheInjectedClock) {
  ScriptedNode node;
  int64_t height = 100;
  movingSpecNode(node, height);
  NetworkCollector c({});
  EXPECT_FALSE(c.collect(node, 1000).block_rate.value);
  height = 120;
  Snapshot s = c.collect(node, 1010);
  ASSERT_TRUE(s.block_rate.value);
  EXPECT_DOUBLE_EQ(*s.block_rate.value, 2.0);
  height = 50;  // a reset: no negative rate
  s = c.collect(node, 1020);
  EXPECT_FALSE(s.block_rate.value);
  EXPECT_NE(s.block_rate.reason.find("backwards"), std::string::npos);
  height = 53;
  s = c.collect(node, 1023);
  ASSERT_TRUE(s.block_rate.value);
  EXPECT_DOUBLE_EQ(*s.block_rate.value, 1.0);
}

TEST(NetworkSpec, LastBlockAgeFromWhenTheHeightLastChanged) {
  ScriptedNode node;
  int64_t height = 100;
  movingSpecNode(node, height);
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1000);
  EXPECT_FALSE(s.last_block_age_seconds.value) << "unknown until the height changes once";
  s = c.collect(node, 1030);
  EXPECT_FALSE(s.last_block_age_seconds.value);
  EXPECT_NE(s.last_block_age_seconds.reason.find("30 s ago"), std::string::npos)
      << s.last_block_age_seconds.reason;
  height = 101;
  s = c.collect(node, 1032);
  ASSERT_TRUE(s.last_block_age_seconds.value);
  EXPECT_DOUBLE_EQ(*s.last_block_age_seconds.value, 0.0);
  s = c.collect(node, 1050);  // the chain stalls: the age grows
  EXPECT_DOUBLE_EQ(*s.last_block_age_seconds.value, 18.0);
  height = 90;  // a reset is a change too
  s = c.collect(node, 1051);
  EXPECT_DOUBLE_EQ(*s.last_block_age_seconds.value, 0.0);
}

TEST(NetworkSpec, MissingNetStatsDegradesItsFieldsOnly) {
  ScriptedNode node;
  specNode(node);
  node.remove("net.stats");  // -32601
  NetworkCollector c({});
  Json m = metricsBody(c.collect(node, 1));
  for (const char* f : {"tps", "bandwidth_in", "bandwidth_out", "active_connections"}) {
    EXPECT_TRUE(m[f].isNull()) << f;
    EXPECT_TRUE(mentions(m["unavailable"], f, "net.stats")) << f;
  }
  EXPECT_EQ(m["block_height"], Json(123456));
  EXPECT_EQ(m["peer_count"], Json(2));
  EXPECT_TRUE(m["strength_terms"]["tps"].isNull());
  EXPECT_TRUE(mentions(m["unavailable"], "strength_terms.tps", "net.stats"));
  // 1.2 + 29.4 = 30.6 of 60 -> 51.
  EXPECT_EQ(m["network_strength"], Json(51));
}

TEST(NetworkSpec, AFailedCallThrowsWithTheAgentsStatus) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  c.collect(node, 1);
  node.fail("net.stats", transportFailure());
  try {
    c.collect(node, 2);
    FAIL() << "expected CallFailed";
  } catch (const CallFailed& e) {
    EXPECT_EQ(e.status(), 2);
    EXPECT_NE(std::string(e.what()).find("net.stats"), std::string::npos);
  }
  // After a failure the profile is detected again.
  EXPECT_EQ(c.profile(), Profile::kUnknown);
}

TEST(NetworkSpec, WrongTypesBecomeNullWithAReason) {
  ScriptedNode node;
  specNode(node);
  node.answer("net.stats", Json{{"tps", "fast"},
                                {"bandwidth_in", -5},
                                {"bandwidth_out", 1.5},
                                {"active_connections", 2.5}});
  node.answer("light.latest_header", Json{{"number", "0x1e240"}, {"finality_time", nullptr}});
  Json peers = Json::array();
  peers.push_back(Json{{"id", "a"},
                       {"address", 7},
                       {"connected_at", "yesterday"},
                       {"latency_ms", 45},
                       {"version", "v1"},
                       {"is_validator", "yes"},
                       {"reputation", 95}});
  peers.push_back(Json("not a peer"));
  node.answer("net.peers", Json{{"peers", peers}});
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  Json m = metricsBody(s);
  EXPECT_TRUE(mentions(m["unavailable"], "tps", "string"));
  EXPECT_TRUE(mentions(m["unavailable"], "bandwidth_in", "negative"));
  EXPECT_EQ(m["bandwidth_out"], Json(1.5));
  EXPECT_TRUE(mentions(m["unavailable"], "active_connections", "fractional"));
  EXPECT_TRUE(mentions(m["unavailable"], "block_height", "string"));
  EXPECT_TRUE(mentions(m["unavailable"], "finality_time", "no finality_time"));
  EXPECT_EQ(m["peer_count"], Json(2));

  const Json p = peersBody(s);
  ASSERT_EQ(p["peers"].size(), 2u);
  const Json& first = p["peers"][0];
  EXPECT_EQ(first["id"], Json("a"));
  EXPECT_TRUE(first["address"].isNull());
  EXPECT_TRUE(first["connected_at"].isNull());
  EXPECT_TRUE(first["is_validator"].isNull());
  EXPECT_EQ(first["latency_ms"], Json(45));
  EXPECT_EQ(first["reputation"], Json(95));
  for (const char* f :
       {"id", "address", "connected_at", "latency_ms", "version", "is_validator", "reputation"})
    EXPECT_TRUE(p["peers"][1].contains(f) && p["peers"][1][f].isNull()) << f;
  EXPECT_TRUE(mentions(p["unavailable"], "address", "number"));
  EXPECT_TRUE(mentions(p["unavailable"], "is_validator", "expected a boolean"));
  EXPECT_TRUE(mentions(p["unavailable"], "version", "not an object"));
}

TEST(NetworkSpec, AnAnswerWithoutPeersIsAClearError) {
  ScriptedNode node;
  specNode(node);
  node.answer("net.peers", Json{{"count", 23}});
  NetworkCollector c({});
  try {
    c.collect(node, 1);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("net.peers"), std::string::npos) << what;
    EXPECT_NE(what.find("\"peers\""), std::string::npos) << what;
    EXPECT_NE(what.find("count"), std::string::npos) << what;
  }
  EXPECT_EQ(node.count("light.latest_header"), 0);
}

TEST(NetworkSpec, NeitherProfileNamesTheAuthToken) {
  ScriptedNode node;  // every method -32601
  NetworkCollector c({});
  try {
    c.collect(node, 1);
    FAIL() << "expected ShapeError";
  } catch (const ShapeError& e) {
    EXPECT_NE(std::string(e.what()).find("auth token"), std::string::npos) << e.what();
  }
}

TEST(NetworkSpec, ShapeChangeMidRunIsRedetectedInTheSameCycle) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  c.collect(node, 1);
  // net.peers now answers -32601: the node behind the URL is a real node (non-empty chain).
  ScriptedNode real;
  theblockNode(real);
  Snapshot s = c.collect(real, 2);
  EXPECT_EQ(s.profile, Profile::kTheBlock);
  EXPECT_EQ(c.profile(), Profile::kTheBlock);
  ASSERT_TRUE(s.block_height.value);
  EXPECT_EQ(*s.block_height.value, 236);
}

TEST(NetworkSpec, AfterAnOutageANewNodeIsDetectedBeforeLatestHeader) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  c.collect(node, 1);
  ScriptedNode down;
  down.fail("net.peers", transportFailure());
  down.fail("net.stats", transportFailure());
  down.fail("light.latest_header", transportFailure());
  EXPECT_THROW(c.collect(down, 2), CallFailed);
  // A real node with an empty chain comes up on the same address.
  ScriptedNode real;
  theblockNode(real, /*chain_empty=*/true);
  Snapshot s = c.collect(real, 3);
  EXPECT_EQ(s.profile, Profile::kTheBlock);
  EXPECT_EQ(real.count("light.latest_header"), 0);
  EXPECT_FALSE(s.block_height.value);
}

// ------------------------------------------------------------------------------------------
// Theblock profile

TEST(NetworkTheBlock, RecordedAnswersGiveWhatCanBeDerivedAndNullsForTheRest) {
  ScriptedNode node;
  theblockNode(node);
  NetworkCollector c({});
  Snapshot s = c.collect(node, 50);
  EXPECT_EQ(c.profile(), Profile::kTheBlock);
  Json m = metricsBody(s);
  EXPECT_EQ(m["profile"], Json("theblock"));
  EXPECT_EQ(m["block_height"], Json(236));
  EXPECT_EQ(m["peer_count"], Json(3));
  EXPECT_EQ(m["active_connections"], Json(3));
  for (const char* f : {"tps", "bandwidth_in", "finality_time", "bandwidth_out", "block_rate"})
    EXPECT_TRUE(m[f].isNull()) << f;
  EXPECT_TRUE(mentions(m["unavailable"], "tps", "no transaction rate"));
  EXPECT_TRUE(mentions(m["unavailable"], "bandwidth_in", "bytes_sent only"));
  EXPECT_TRUE(mentions(m["unavailable"], "finality_time", "no finality"));
  EXPECT_TRUE(mentions(m["unavailable"], "bandwidth_out", "two samples"));
  EXPECT_FALSE(m["unavailable"].contains("block_height"));
  // Only the peers term is known: 3/50*30 = 1.8, rescaled: 1.8 * 100 / 30 = 6.
  EXPECT_NEAR(m["strength_terms"]["peers"].asDouble(), 1.8, 1e-9);
  EXPECT_TRUE(m["strength_terms"]["tps"].isNull());
  EXPECT_TRUE(m["strength_terms"]["finality"].isNull());
  EXPECT_EQ(m["network_strength"], Json(6));
  ASSERT_TRUE(s.bytes_sent_total.value);
  EXPECT_DOUBLE_EQ(*s.bytes_sent_total.value, 0) << "nothing observed sent yet";
}

TEST(NetworkTheBlock, PeersFromPeerStatsAll) {
  ScriptedNode node;
  theblockNode(node);
  NetworkCollector c({});
  const Json p = peersBody(c.collect(node, 1));
  ASSERT_EQ(p["peers"].size(), 3u);
  EXPECT_EQ(p["total"], Json(3));
  EXPECT_EQ(p["peers"][0]["id"], Json("12D3KooWA1"));
  // The guide's 0..100 scale on both profiles (the node's score is 0..1).
  EXPECT_EQ(p["peers"][0]["reputation"], Json(97));
  EXPECT_EQ(p["peers"][1]["reputation"], Json(100));
  EXPECT_EQ(p["peers"][2]["id"], Json("12D3KooWC3"));
  for (const char* f : {"address", "connected_at", "latency_ms", "version", "is_validator"}) {
    EXPECT_TRUE(p["peers"][0].contains(f) && p["peers"][0][f].isNull()) << f;
    EXPECT_TRUE(mentions(p["unavailable"], f, "net.peer_stats_all")) << f;
  }
  EXPECT_FALSE(p["unavailable"].contains("id"));
  EXPECT_FALSE(p["unavailable"].contains("reputation"));
  EXPECT_EQ(p["peers"][0].asObject()[0].first, "id");
}

TEST(NetworkTheBlock, LatestHeaderOnlyAfterHeadersReturnedAHeader) {
  ScriptedNode node;
  theblockNode(node);
  NetworkCollector c({});
  EXPECT_FALSE(c.chainKnownNonEmpty());
  c.collect(node, 1);
  // detect, then [overlay, page, headers], then [latest_header].
  ASSERT_EQ(node.batches.size(), 3u);
  EXPECT_EQ(node.methods(1), (std::vector<std::string>{"net.overlay_status", "net.peer_stats_all",
                                                       "light.headers"}));
  EXPECT_EQ(node.batches[1][2].params, (Json{{"start", 0}, {"limit", 1}}));
  EXPECT_EQ(node.methods(2), std::vector<std::string>{"light.latest_header"});
  EXPECT_TRUE(c.chainKnownNonEmpty());
  // Known non-empty: latest_header directly, in the first batch, no more light.headers.
  c.collect(node, 2);
  ASSERT_EQ(node.batches.size(), 4u);
  EXPECT_EQ(node.methods(3), (std::vector<std::string>{"net.overlay_status", "net.peer_stats_all",
                                                       "light.latest_header"}));
  EXPECT_EQ(node.count("light.headers"), 1);
}

TEST(NetworkTheBlock, EmptyChainNeverCallsLatestHeader) {
  ScriptedNode node;
  theblockNode(node, /*chain_empty=*/true);
  NetworkCollector c({});
  for (int i = 0; i < 3; ++i) {
    Snapshot s = c.collect(node, i);
    EXPECT_FALSE(s.block_height.value);
    EXPECT_NE(s.block_height.reason.find("empty"), std::string::npos);
    EXPECT_FALSE(c.chainKnownNonEmpty());
  }
  EXPECT_EQ(node.count("light.latest_header"), 0);
  EXPECT_EQ(node.count("light.headers"), 3);
  // The first block arrives: now latest_header is safe.
  node.answer("light.headers", fixture("theblock/light_headers.json"));
  Snapshot s = c.collect(node, 4);
  EXPECT_EQ(node.count("light.latest_header"), 1);
  ASSERT_TRUE(s.block_height.value);
  EXPECT_EQ(*s.block_height.value, 236);
}

TEST(NetworkTheBlock, GarbageFromLightHeadersDoesNotUnlockLatestHeader) {
  ScriptedNode node;
  theblockNode(node);
  node.answer("light.headers", Json{{"error", "busy"}});
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  EXPECT_FALSE(s.block_height.value);
  EXPECT_NE(s.block_height.reason.find("not an array"), std::string::npos);
  node.answer("light.headers", Json::parse("[42]"));
  s = c.collect(node, 2);
  EXPECT_FALSE(s.block_height.value);
  EXPECT_EQ(node.count("light.latest_header"), 0);
  EXPECT_FALSE(c.chainKnownNonEmpty());
}

TEST(NetworkTheBlock, ALatestHeaderHeldBackAfterAConnectionLossProbesLightHeadersInTheCycle) {
  ScriptedNode node;
  theblockNode(node);
  NetworkCollector c({});
  c.collect(node, 1);
  ASSERT_TRUE(c.chainKnownNonEmpty());
  // Another plugin's call saw the connection drop: the agent's policy holds latest_header back.
  Answer refused;
  refused.status = kStatusRefusedUnsent;
  refused.message = "not sent (method policy): probe light.headers first";
  bool refuse = true;
  const Json header = fixture("theblock/light_latest_header.json");
  node.on("light.latest_header", [&](const Json&) {
    if (refuse) {
      refuse = false;
      return refused;
    }
    return ok(header);
  });
  const int headers_before = node.count("light.headers");
  Snapshot s = c.collect(node, 2);
  EXPECT_EQ(node.count("light.headers"), headers_before + 1);
  ASSERT_TRUE(s.block_height.value) << s.block_height.reason;
  EXPECT_TRUE(c.chainKnownNonEmpty());
  // The new process has an empty chain: the probe says so and latest_header is not asked.
  refuse = true;
  theblockNode(node, /*chain_empty=*/true);
  node.on("light.latest_header", [&](const Json&) { return refused; });
  const int latest_before = node.count("light.latest_header");
  s = c.collect(node, 3);
  EXPECT_EQ(node.count("light.latest_header"), latest_before + 1);  // the refused one only
  EXPECT_FALSE(s.block_height.value);
  EXPECT_NE(s.block_height.reason.find("empty"), std::string::npos) << s.block_height.reason;
  EXPECT_FALSE(c.chainKnownNonEmpty());
}

TEST(NetworkTheBlock, AFailureForgetsThatTheChainWasNonEmpty) {
  ScriptedNode node;
  theblockNode(node);
  NetworkCollector c({});
  c.collect(node, 1);
  ASSERT_TRUE(c.chainKnownNonEmpty());
  node.fail("net.overlay_status", transportFailure());
  EXPECT_THROW(c.collect(node, 2), CallFailed);
  EXPECT_FALSE(c.chainKnownNonEmpty());
  // Restarted with an empty chain: the next cycle asks light.headers first again.
  theblockNode(node, /*chain_empty=*/true);
  int latest_before = node.count("light.latest_header");
  Snapshot s = c.collect(node, 3);
  EXPECT_EQ(node.count("light.latest_header"), latest_before);
  EXPECT_FALSE(s.block_height.value);
}

TEST(NetworkTheBlock, BandwidthOutFromPerPeerDeltasOverTheInjectedClock) {
  ScriptedNode node;
  auto peers = std::make_shared<Json::Array>(
      Json::Array{statsPeer("a", 10000), statsPeer("b", 2048), statsPeer("c", 0)});
  theblockNode(node, false, peers);
  NetworkCollector c({});
  Snapshot s = c.collect(node, 100);
  EXPECT_FALSE(s.bandwidth_out.value);

  *peers = {statsPeer("a", 11000), statsPeer("b", 2048), statsPeer("c", 500)};
  s = c.collect(node, 110);
  ASSERT_TRUE(s.bandwidth_out.value) << s.bandwidth_out.reason;
  EXPECT_DOUBLE_EQ(*s.bandwidth_out.value, 150.0);  // 1500 bytes in 10 s
  EXPECT_DOUBLE_EQ(*s.bytes_sent_total.value, 1500) << "the increases observed";

  // A peer leaves and a new one arrives with an old total: neither disturbs the rate.
  *peers = {statsPeer("a", 13000), statsPeer("c", 500), statsPeer("d", 1e6)};
  s = c.collect(node, 120);
  ASSERT_TRUE(s.bandwidth_out.value) << s.bandwidth_out.reason;
  EXPECT_DOUBLE_EQ(*s.bandwidth_out.value, 200.0);
  // The counter never goes down when a peer leaves (b's 2048 stay counted).
  EXPECT_DOUBLE_EQ(*s.bytes_sent_total.value, 3500);

  // A counter going backwards is a reset: null, then the rate resumes.
  *peers = {statsPeer("a", 10), statsPeer("c", 500), statsPeer("d", 1e6)};
  s = c.collect(node, 130);
  EXPECT_FALSE(s.bandwidth_out.value);
  EXPECT_NE(s.bandwidth_out.reason.find("backwards"), std::string::npos);
  Json m = metricsBody(s);
  EXPECT_TRUE(m["bandwidth_out"].isNull());
  EXPECT_TRUE(mentions(m["unavailable"], "bandwidth_out", "reset"));
  // The counter keeps growing: a's 10 bytes since its restart are added.
  EXPECT_DOUBLE_EQ(*s.bytes_sent_total.value, 3510);

  *peers = {statsPeer("a", 410), statsPeer("c", 600), statsPeer("d", 1e6)};
  s = c.collect(node, 135);
  ASSERT_TRUE(s.bandwidth_out.value) << s.bandwidth_out.reason;
  EXPECT_DOUBLE_EQ(*s.bandwidth_out.value, 100.0);  // 500 bytes in 5 s
}

TEST(NetworkTheBlock, BlockRateFromLatestHeaderHeights) {
  ScriptedNode node;
  theblockNode(node);
  int64_t h = 236;
  node.on("light.latest_header", [&](const Json&) {
    return ok(Json{{"difficulty", 1}, {"hash", "ab"}, {"height", h}});
  });
  NetworkCollector c({});
  EXPECT_FALSE(c.collect(node, 0).block_rate.value);
  h = 240;
  Snapshot s = c.collect(node, 8);
  ASSERT_TRUE(s.block_rate.value);
  EXPECT_DOUBLE_EQ(*s.block_rate.value, 0.5);
}

TEST(NetworkTheBlock, PagesPeerStatsAllByHundreds) {
  ScriptedNode node;
  theblockNode(node, false, generatedPeers(250));
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  ASSERT_TRUE(s.peers);
  EXPECT_EQ(s.peers->size(), 250u);
  EXPECT_FALSE(s.peers_truncated);
  std::vector<std::pair<int64_t, int64_t>> pages;
  for (const auto& b : node.batches)
    for (const auto& call : b)
      if (call.method == "net.peer_stats_all")
        pages.emplace_back(call.params["offset"].asInt(), call.params["limit"].asInt());
  EXPECT_EQ(pages, (std::vector<std::pair<int64_t, int64_t>>{{0, 100}, {100, 100}, {200, 100}}));
  // The second page rides with latest_header in one batch.
  EXPECT_EQ(node.methods(2),
            (std::vector<std::string>{"net.peer_stats_all", "light.latest_header"}));
  EXPECT_EQ(peersBody(s)["total"], Json(250));
  // peer_count is the table's length; the overlay's open connections are active_connections.
  EXPECT_EQ(*s.peer_count.value, 250);
  EXPECT_EQ(*s.active_connections.value, 3);
}

TEST(NetworkTheBlock, ExactMultipleOfThePageSizeEndsOnAnEmptyPage) {
  ScriptedNode node;
  theblockNode(node, false, generatedPeers(200));
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  EXPECT_EQ(s.peers->size(), 200u);
  EXPECT_FALSE(s.peers_truncated);
  EXPECT_EQ(node.count("net.peer_stats_all"), 3);
}

TEST(NetworkTheBlock, MaxPeersCapsThePagesAndMarksTheListTruncated) {
  ScriptedNode node;
  theblockNode(node, false, generatedPeers(1000));
  CollectorOptions o;
  o.max_peers = 250;
  NetworkCollector c(o);
  Snapshot s = c.collect(node, 1);
  EXPECT_EQ(s.peers->size(), 250u);
  EXPECT_TRUE(s.peers_truncated);
  std::vector<int64_t> limits;
  for (const auto& b : node.batches)
    for (const auto& call : b)
      if (call.method == "net.peer_stats_all") limits.push_back(call.params["limit"].asInt());
  EXPECT_EQ(limits, (std::vector<int64_t>{100, 100, 50}));
  EXPECT_FALSE(s.bandwidth_out.value);
  EXPECT_NE(s.bandwidth_out.reason.find("max_peers"), std::string::npos);
  EXPECT_FALSE(s.bytes_sent_total.value);
  EXPECT_EQ(peersBody(s)["truncated"], Json(true));
}

TEST(NetworkTheBlock, RefusedPeerStatsDegradesThePeerListOnly) {
  ScriptedNode node;
  theblockNode(node);
  node.remove("net.peer_stats_all");  // -32601: not a loopback client
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  const Json p = peersBody(s);
  EXPECT_TRUE(p["peers"].isNull());
  EXPECT_TRUE(p["total"].isNull());
  EXPECT_TRUE(mentions(p["unavailable"], "peers", "loopback"));
  EXPECT_EQ(*s.peer_count.value, 3);
  EXPECT_EQ(*s.block_height.value, 236);
  EXPECT_FALSE(s.bandwidth_out.value);
  EXPECT_FALSE(s.bytes_sent_total.value);
}

TEST(NetworkTheBlock, WrongTypesInTheRealShapesBecomeNull) {
  ScriptedNode node;
  theblockNode(node);
  node.answer("net.overlay_status", Json{{"active_peers", "three"}});
  Json peers = Json::array();
  peers.push_back(
      Json{{"peer_id", "a"},
           {"metrics", Json{{"bytes_sent", "lots"}, {"reputation", Json{{"score", "high"}}}}}});
  peers.push_back(Json{{"peer_id", 5}, {"metrics", Json{{"bytes_sent", 1}}}});
  peers.push_back(Json(true));
  node.answer("net.peer_stats_all", peers);
  node.answer("light.latest_header", Json{{"height", -1}});
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  // active_peers unusable: the complete peer list's length stands in.
  EXPECT_EQ(*s.peer_count.value, 3);
  EXPECT_EQ(*s.active_connections.value, 3);
  EXPECT_FALSE(s.block_height.value);
  EXPECT_NE(s.block_height.reason.find("negative"), std::string::npos);
  EXPECT_FALSE(s.bandwidth_out.value);
  EXPECT_NE(s.bandwidth_out.reason.find("bytes_sent"), std::string::npos);
  const Json p = peersBody(s);
  ASSERT_EQ(p["peers"].size(), 3u);
  EXPECT_TRUE(p["peers"][0]["reputation"].isNull());
  EXPECT_TRUE(p["peers"][1]["id"].isNull());
  EXPECT_TRUE(p["peers"][2]["id"].isNull());
  EXPECT_TRUE(mentions(p["unavailable"], "reputation", "string"));
  EXPECT_TRUE(mentions(p["unavailable"], "id", "peer_id"));

  node.answer("net.peer_stats_all", Json{{"peers", Json::array()}});
  s = c.collect(node, 2);
  EXPECT_FALSE(s.peers);
  EXPECT_NE(s.peers_reason.find("not an array"), std::string::npos);
  EXPECT_FALSE(s.peer_count.value);
  EXPECT_TRUE(mentions(metricsBody(s)["unavailable"], "peer_count", "active_peers"));
}

// ------------------------------------------------------------------------------------------
// Metrics and features

TEST(NetworkMetrics, UnknownValuesRemoveTheirSeries) {
  ScriptedNode node;
  theblockNode(node);
  NetworkCollector c({});
  Snapshot s = c.collect(node, 1);
  std::map<std::string, double> by_key;
  int counters = 0;
  for (const auto& m : metricSamples(s)) {
    std::string key = m.name;
    for (const auto& [k, v] : m.labels) key += "{" + k + "=" + v + "}";
    EXPECT_FALSE(m.help.empty()) << key;
    EXPECT_EQ(m.name.rfind("theblock_", 0), 0u) << key;
    EXPECT_EQ(m.counter, m.name == "theblock_peer_bytes_sent_total") << key;
    counters += m.counter;
    by_key[key] = m.value;
  }
  EXPECT_EQ(counters, 1);
  EXPECT_EQ(by_key.size(), 14u);
  EXPECT_TRUE(std::isnan(by_key["theblock_last_block_age_seconds"])) << "one sample: unknown";
  EXPECT_EQ(by_key["theblock_block_height"], 236);
  EXPECT_EQ(by_key["theblock_peers"], 3);
  EXPECT_EQ(by_key["theblock_network_strength"], 6);
  EXPECT_TRUE(std::isnan(by_key["theblock_tps"]));
  EXPECT_TRUE(std::isnan(by_key["theblock_finality_seconds"]));
  EXPECT_TRUE(std::isnan(by_key["theblock_network_bandwidth_bytes_per_second{direction=in}"]));
  EXPECT_TRUE(std::isnan(by_key["theblock_network_strength_term{term=tps}"]));
  EXPECT_NEAR(by_key["theblock_network_strength_term{term=peers}"], 1.8, 1e-9);
  EXPECT_EQ(by_key["theblock_peer_bytes_sent_total"], 0);
}

TEST(NetworkMetrics, FeaturesHaveStableNames) {
  ScriptedNode node;
  specNode(node);
  NetworkCollector c({});
  auto f = featureValues(c.collect(node, 1));
  std::vector<std::string> names;
  for (const auto& [n, v] : f) names.push_back(n);
  EXPECT_EQ(names, (std::vector<std::string>{"block_height", "block_rate", "tps", "peers",
                                             "finality_seconds", "bandwidth_in", "bandwidth_out",
                                             "strength"}));
  EXPECT_EQ(f[0].second, 123456);
  EXPECT_TRUE(std::isnan(f[1].second));
  EXPECT_EQ(f[7].second, 36);
}

TEST(NetworkOptions, ValidateNamesTheKey) {
  CollectorOptions o;
  EXPECT_EQ(o.validate(), "");
  o.max_peers = 0;
  EXPECT_NE(o.validate().find("max_peers"), std::string::npos);
}

}  // namespace
}  // namespace blockbuster::network
