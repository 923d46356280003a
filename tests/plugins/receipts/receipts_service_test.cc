// The service: GET /theblock/receipts bodies and errors, the sections, staleness.
#include "receipts_service.h"

#include <blockbuster/plugin_abi.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/process.h"

namespace rx = blockbuster::receipts;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

struct FixedSpecNode : rx::NodePort {
  Json receipts = Json::array();
  bool fail = false;
  void add(const std::string& id, const std::string& market, int64_t height) {
    receipts.push_back(Json{{"id", id},
                            {"market", market},
                            {"block_height", height},
                            {"timestamp", 1700000000 + height},
                            {"provider", "p"},
                            {"consumer", "c"},
                            {"amount", 5},
                            {"status", "completed"},
                            {"details", Json{{"h", height}}}});
  }
  std::vector<rx::Answer> callMany(const std::vector<rx::Call>& cs) override {
    std::vector<rx::Answer> out;
    for (size_t i = 0; i < cs.size(); ++i) {
      if (fail)
        out.push_back(rx::Answer::failure(BB_ERR_TRANSPORT, "connection refused"));
      else
        out.push_back(rx::Answer::result(
            Json{{"receipts", receipts}, {"total", static_cast<int64_t>(receipts.size())}}));
    }
    return out;
  }
};

rx::ServiceOptions options(const TempDir& dir) {
  rx::ServiceOptions o;
  o.db_path = dir.file("state/receipts.db");
  o.page_size = 500;
  o.operations_limit = 2;
  o.retention = rx::RetentionPolicy{0, 0};
  return o;
}

}  // namespace

TEST(ReceiptsService, BadParametersAre400WithTheGuidesErrorShape) {
  TempDir dir;
  rx::ReceiptsService svc(options(dir));
  for (auto q : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"limit", "abc"}},
           {{"offset", "-3"}},
           {{"market", "gold"}},
           {{"before", "x"}},
           {{"limit", "5"}, {"limit", "6"}}}) {
    rx::HttpAnswer a = svc.handleReceipts(q, 1000);
    EXPECT_EQ(a.status, 400);
    Json body = Json::parse(a.body);
    EXPECT_EQ(body["error"]["code"], Json("bad_parameter"));
    EXPECT_NE(body["error"]["message"].asString().find(q[0].first), std::string::npos);
  }
}

TEST(ReceiptsService, UnknownParametersAreIgnored) {
  TempDir dir;
  rx::ReceiptsService svc(options(dir));
  rx::HttpAnswer a = svc.handleReceipts({{"_", "1700000000"}, {"limit", "5"}}, 1000);
  EXPECT_EQ(a.status, 200) << a.body;
  EXPECT_EQ(Json::parse(a.body)["limit"], Json(5));
}

TEST(ReceiptsService, ServesPagesFromTheStoreWithFreshness) {
  TempDir dir;
  rx::ReceiptsService svc(options(dir));
  // Before any ingest: empty, stale, no age.
  Json body = Json::parse(svc.handleReceipts({}, 1000).body);
  EXPECT_EQ(body["total"], Json(0));
  EXPECT_TRUE(body["age_seconds"].isNull());
  EXPECT_EQ(body["stale"], Json(true));

  FixedSpecNode node;
  node.add("a", "compute", 1);
  node.add("b", "energy", 2);
  node.add("c", "energy", 3);
  auto c = svc.collect(node, 1000, 10.0);
  ASSERT_TRUE(c.ok) << c.error;
  EXPECT_EQ(c.stats.receipts, 3);
  body = Json::parse(svc.handleReceipts({{"market", "energy"}, {"limit", "1"}}, 1004).body);
  EXPECT_EQ(body["total"], Json(2));
  EXPECT_EQ(body["limit"], Json(1));
  EXPECT_EQ(body["offset"], Json(0));
  EXPECT_EQ(body["timestamp"], Json(1004));
  EXPECT_EQ(body["age_seconds"], Json(4));
  EXPECT_EQ(body["stale"], Json(false));
  ASSERT_EQ(body["receipts"].size(), 1u);
  EXPECT_EQ(body["receipts"][size_t{0}]["id"], Json("c"));
  EXPECT_EQ(body["receipts"][size_t{0}]["details"], Json(Json{{"h", 3}}));

  // Past the end: empty list, true total.
  body = Json::parse(svc.handleReceipts({{"offset", "10"}}, 1004).body);
  EXPECT_EQ(body["receipts"].size(), 0u);
  EXPECT_EQ(body["total"], Json(3));

  // The cache follows the store: a new receipt shows at once.
  node.add("d", "energy", 4);
  ASSERT_TRUE(svc.collect(node, 1010, 20.0).ok);
  body = Json::parse(svc.handleReceipts({{"market", "energy"}, {"limit", "1"}}, 1010).body);
  EXPECT_EQ(body["total"], Json(3));
  EXPECT_EQ(body["receipts"][size_t{0}]["id"], Json("d"));

  // A failed ingest makes the answer stale but keeps serving the store.
  node.fail = true;
  auto failed = svc.collect(node, 1020, 30.0);
  EXPECT_FALSE(failed.ok);
  EXPECT_NE(failed.error.find("connection refused"), std::string::npos);
  body = Json::parse(svc.handleReceipts({}, 1021).body);
  EXPECT_EQ(body["stale"], Json(true));
  EXPECT_EQ(body["total"], Json(4));
  EXPECT_EQ(body["age_seconds"], Json(11));
}

TEST(ReceiptsService, OperationsAndStoreSections) {
  TempDir dir;
  rx::ReceiptsService svc(options(dir));
  FixedSpecNode node;
  node.add("a", "compute", 1);
  node.add("b", "energy", 2);
  node.add("c", "energy", 3);
  auto c = svc.collect(node, 1000, 10.0);
  ASSERT_TRUE(c.ok);
  Json ops = svc.operationsBody();
  EXPECT_EQ(ops["total"], Json(3));
  ASSERT_EQ(ops["operations"].size(), 2u);  // operations_limit
  EXPECT_EQ(ops["operations"][size_t{0}]["id"], Json("c"));
  EXPECT_EQ(ops["operations"][size_t{0}]["type"], Json("energy"));
  EXPECT_EQ(ops["by_market"]["energy"].size(), 2u);
  EXPECT_EQ(ops["by_market"]["compute"].size(), 1u);
  EXPECT_EQ(ops["by_market"]["storage"].size(), 0u);
  EXPECT_TRUE(ops["by_market"]["ad"].isArray());

  Json st = svc.storeBody(c.stats);
  EXPECT_EQ(st["backend"], Json("sqlite"));
  EXPECT_EQ(st["path"], Json(dir.file("state/receipts.db")));
  EXPECT_GT(st["size_bytes"].asInt(), 0);
  EXPECT_EQ(st["receipts"], Json(3));
  EXPECT_EQ(st["last_ingested_height"], Json(3));
  EXPECT_EQ(st["cursor"]["spec.height"], Json(3));
  EXPECT_EQ(st["schema_version"], Json(1));
  EXPECT_EQ(st["profile"], Json("spec"));
  EXPECT_TRUE(st["retention"].isObject());
  EXPECT_FALSE(st.contains("unavailable"));
}

// A service that has collected 300 receipts, every other one energy, the rest ad.
struct CollectedReceipts : ::testing::Test {
  TempDir dir;
  rx::ReceiptsService svc{options(dir)};
  FixedSpecNode node;
  void SetUp() override {
    for (int i = 0; i < 300; ++i) node.add("r" + std::to_string(i), i % 2 ? "energy" : "ad", i);
    ASSERT_TRUE(svc.collect(node, 1000, 10.0).ok);
  }
};

TEST_F(CollectedReceipts, OnAnEventLoopAPageNotInMemoryIsDeferredWithoutReadingTheFile) {
  const uint64_t read = svc.pagesRead();
  // What every dashboard asks was rendered by the collect: served from memory on a loop.
  using Query = std::vector<std::pair<std::string, std::string>>;
  for (const auto& [q, total] :
       std::vector<std::pair<Query, int64_t>>{{{{"limit", "20"}}, 300},
                                              {{}, 300},
                                              {{{"market", "energy"}}, 150},
                                              {{{"limit", "100"}, {"market", "ad"}}, 150}}) {
    rx::HttpAnswer a = svc.handleReceipts(q, 1001, false);
    EXPECT_EQ(a.status, 200);
    EXPECT_EQ(Json::parse(a.body)["total"], Json(total));
  }
  EXPECT_EQ(svc.pagesRead(), read);
  // A deep page is not in memory: on a loop it is deferred, the file untouched.
  const Query deep{{"offset", "120"}, {"market", "energy"}};
  rx::HttpAnswer a = svc.handleReceipts(deep, 1001, false);
  EXPECT_TRUE(a.deferred());
  EXPECT_TRUE(a.body.empty());
  EXPECT_EQ(svc.pagesRead(), read);
  // Where it may block it is read once, then served from memory even on a loop.
  a = svc.handleReceipts(deep, 1001, true);
  ASSERT_EQ(a.status, 200);
  EXPECT_EQ(svc.pagesRead(), read + 1);
  Json body = Json::parse(a.body);
  EXPECT_EQ(body["offset"], Json(120));
  EXPECT_EQ(body["total"], Json(150));
  ASSERT_EQ(body["receipts"].size(), 30u);
  EXPECT_EQ(body["receipts"][size_t{0}]["id"], Json("r59"));  // the 121st newest energy receipt
  EXPECT_TRUE(body["next"].isNull());
  a = svc.handleReceipts(deep, 1002, false);
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(Json::parse(a.body)["timestamp"], Json(1002));
  EXPECT_EQ(svc.pagesRead(), read + 1);
  // A bad query is answered on the loop too: a 400 naming the parameter.
  a = svc.handleReceipts({{"before", "abc"}}, 1001, false);
  EXPECT_EQ(a.status, 400);
  EXPECT_NE(Json::parse(a.body)["error"]["message"].asString().find("'before'"), std::string::npos);
}

TEST(ReceiptsService, PagesCarryACursorThatWalksTheTrail) {
  TempDir dir;
  rx::ReceiptsService svc(options(dir));
  FixedSpecNode node;
  for (int i = 0; i < 45; ++i) node.add("r" + std::to_string(i), "compute", i);
  ASSERT_TRUE(svc.collect(node, 1000, 10.0).ok);
  std::vector<std::pair<std::string, std::string>> q{{"limit", "20"}};
  std::vector<std::string> ids;
  for (int pages = 0; pages < 10; ++pages) {
    Json body = Json::parse(svc.handleReceipts(q, 1001).body);
    EXPECT_EQ(body["total"], Json(45));
    EXPECT_EQ(body["offset"], Json(static_cast<int64_t>(ids.size())));
    for (size_t i = 0; i < body["receipts"].size(); ++i)
      ids.push_back(body["receipts"][i]["id"].asString());
    if (body["next"].isNull()) break;
    q = {{"limit", "20"}, {"before", body["next"].asString()}};
  }
  ASSERT_EQ(ids.size(), 45u);
  EXPECT_EQ(ids.front(), "r44");
  EXPECT_EQ(ids.back(), "r0");
  // A cursor with an offset, a repeated one, or garbage: 400 naming 'before'.
  for (auto bad : std::vector<std::vector<std::pair<std::string, std::string>>>{
           {{"before", "12"}, {"offset", "3"}},
           {{"before", "12"}, {"before", "13"}},
           {{"before", "-1"}},
           {{"before", ""}}}) {
    rx::HttpAnswer a = svc.handleReceipts(bad, 1001);
    EXPECT_EQ(a.status, 400);
    EXPECT_NE(Json::parse(a.body)["error"]["message"].asString().find("'before'"),
              std::string::npos)
        << a.body;
  }
}

// The pages every dashboard asks are read on the loops without the lock the store workers take
// (they run at nice 19: a loop must never wait for one the scheduler keeps off the CPU). While
// collects replace them and workers fill and evict the cache of deep pages, a loop is always
// answered at once, with a whole page.
TEST_F(CollectedReceipts, PinnedPagesAreServedOnALoopWhileCollectsAndWorkersReplaceThem) {
  std::atomic<bool> stop{false};
  std::thread collector([&] {
    for (int round = 0; round < 20 && !stop; ++round) {
      node.add("n" + std::to_string(round), "energy", 300 + round);
      EXPECT_TRUE(svc.collect(node, 1001 + round, 11.0 + round).ok);
    }
  });
  std::thread worker([&] {
    for (int i = 0; !stop; ++i) {
      const std::string offset = std::to_string(100 + i % 40);  // 40 pages: some evicted
      EXPECT_EQ(svc.handleReceipts({{"offset", offset}}, 1001, true).status, 200);
    }
  });
  for (int i = 0; i < 2000; ++i) {
    rx::HttpAnswer a = svc.handleReceipts({{"limit", "100"}}, 1001, false);
    ASSERT_EQ(a.status, 200) << "request " << i << " was deferred or failed";
    Json body = Json::parse(a.body);
    EXPECT_EQ(body["receipts"].size(), 100u);
    EXPECT_GE(body["total"].asInt(), 300);
    EXPECT_LE(body["total"].asInt(), 320);
  }
  stop = true;
  collector.join();
  worker.join();
}
