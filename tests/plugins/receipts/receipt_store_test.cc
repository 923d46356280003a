// ReceiptStore against real SQLite files in a temporary directory.
#include "receipt_store.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/Session.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "support/process.h"

namespace rx = blockbuster::receipts;
using bbtest::TempDir;

namespace {

rx::StoredReceipt make(int i, const std::string& market = "compute", int64_t height = -1) {
  rx::StoredReceipt r;
  r.id = "r" + std::to_string(i);
  r.market = market;
  r.block_height = height >= 0 ? height : i;
  r.timestamp = 1700000000 + i;
  r.provider = "p" + std::to_string(i % 3);
  r.consumer = "c" + std::to_string(i % 5);
  r.amount = std::to_string(i * 10);
  r.status = "completed";
  r.details = "{\"n\":" + std::to_string(i) + "}";
  return r;
}

std::vector<rx::StoredReceipt> range(int from, int to, const std::string& market = "compute") {
  std::vector<rx::StoredReceipt> out;
  for (int i = from; i < to; ++i) out.push_back(make(i, market));
  return out;
}

rx::RetentionPolicy keepAll() { return rx::RetentionPolicy{0, 0}; }

}  // namespace

TEST(ReceiptStore, CreatesTheSchemaOnAnEmptyFileAndReopensIt) {
  TempDir dir;
  const std::string path = dir.file("sub/receipts.db");  // parent directory created too
  {
    rx::ReceiptStore store(path, keepAll());
    auto st = store.stats();
    EXPECT_EQ(st.schema_version, rx::ReceiptStore::kSchemaVersion);
    EXPECT_EQ(st.receipts, 0);
    EXPECT_FALSE(st.max_block_height.has_value());
    EXPECT_GT(st.size_bytes, 0);
    store.ingest(range(0, 5), {{"spec.height", "4"}}, 1000);
  }
  rx::ReceiptStore reopened(path, keepAll());
  auto st = reopened.stats();
  EXPECT_EQ(st.schema_version, rx::ReceiptStore::kSchemaVersion);
  EXPECT_EQ(st.receipts, 5);
  EXPECT_EQ(st.by_market["compute"], 5);
  EXPECT_EQ(st.by_market["energy"], 0);
  EXPECT_EQ(st.max_block_height, 4);
}

TEST(ReceiptStore, RefusesAFileWithANewerSchema) {
  TempDir dir;
  const std::string path = dir.file("receipts.db");
  { rx::ReceiptStore store(path, keepAll()); }
  {
    Poco::Data::SQLite::Connector::registerConnector();
    Poco::Data::Session s("SQLite", path);
    s << "UPDATE schema_version SET version = 99", Poco::Data::Keywords::now;
  }
  try {
    rx::ReceiptStore store(path, keepAll());
    FAIL() << "a newer schema was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("schema version 99"), std::string::npos) << e.what();
  }
}

TEST(ReceiptStore, OverlappingBatchesKeepOneCopy) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), keepAll());
  auto first = store.ingest(range(0, 10), {}, 1000);
  EXPECT_EQ(first.inserted_total, 10);
  EXPECT_EQ(first.duplicates, 0);
  auto second = store.ingest(range(5, 15), {}, 1001);
  EXPECT_EQ(second.inserted_total, 5);
  EXPECT_EQ(second.duplicates, 5);
  EXPECT_EQ(second.inserted["compute"], 5);
  // The same batch twice in one call dedupes too.
  auto twice = range(20, 22);
  twice.push_back(make(20));
  EXPECT_EQ(store.ingest(twice, {}, 1002).inserted_total, 2);
  EXPECT_EQ(store.stats().receipts, 17);
  // A re-read row keeps its first content (the first ingest wins).
  auto page = store.query(rx::ReceiptQuery{1000, 0, "", {}});
  ASSERT_EQ(page.total, 17);
  for (const auto& r : page.receipts)
    if (r.id == "r5") {
      EXPECT_EQ(r.ingested_at, 1000);
    }
}

TEST(ReceiptStore, CursorIsDurableAndMovesWithItsRows) {
  TempDir dir;
  const std::string path = dir.file("r.db");
  {
    rx::ReceiptStore store(path, keepAll());
    EXPECT_FALSE(store.cursor("spec.height").has_value());
    const uint64_t v0 = store.version();
    store.ingest(range(0, 3), {{"spec.height", "2"}, {"energy.index", "7"}}, 1000);
    EXPECT_GT(store.version(), v0);
    store.ingest({}, {{"spec.height", "9"}}, 1001);  // a cursor alone may move
  }
  rx::ReceiptStore store(path, keepAll());
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("9"));
  EXPECT_EQ(store.cursor("energy.index"), std::optional<std::string>("7"));
  EXPECT_EQ(store.cursors().size(), 2u);
  EXPECT_EQ(store.stats().receipts, 3);
}

TEST(ReceiptStore, PaginationGivesTheTrueTotal) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), keepAll());
  store.ingest(range(0, 25), {}, 1000);
  auto p = store.query(rx::ReceiptQuery{10, 0, "", {}});
  EXPECT_EQ(p.total, 25);
  ASSERT_EQ(p.receipts.size(), 10u);
  EXPECT_EQ(p.receipts.front().id, "r24");
  p = store.query(rx::ReceiptQuery{10, 20, "", {}});
  EXPECT_EQ(p.total, 25);
  ASSERT_EQ(p.receipts.size(), 5u);
  EXPECT_EQ(p.receipts.back().id, "r0");
  p = store.query(rx::ReceiptQuery{10, 30, "", {}});
  EXPECT_EQ(p.total, 25);
  EXPECT_TRUE(p.receipts.empty());
}

TEST(ReceiptStore, NewestFirstAndMarketFilter) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), keepAll());
  std::vector<rx::StoredReceipt> batch;
  const std::vector<std::string> markets{"compute", "storage", "energy", "ad"};
  for (int i = 0; i < 20; ++i) batch.push_back(make(i, markets[static_cast<size_t>(i % 4)]));
  store.ingest(batch, {}, 1000);
  auto energy = store.query(rx::ReceiptQuery{100, 0, "energy", {}});
  EXPECT_EQ(energy.total, 5);
  ASSERT_EQ(energy.receipts.size(), 5u);
  int64_t prev = INT64_MAX;
  for (const auto& r : energy.receipts) {
    EXPECT_EQ(r.market, "energy");
    EXPECT_LT(*r.block_height, prev);  // inserted in height order: newest first
    prev = *r.block_height;
  }
  EXPECT_EQ(energy.receipts.front().id, "r18");
  auto none = store.query(rx::ReceiptQuery{100, 0, "nosuch", {}});
  EXPECT_EQ(none.total, 0);
  EXPECT_EQ(store.countFromHeight(10), 10);
  EXPECT_EQ(store.countFromHeight(10, "ad"), 3);  // 11, 15, 19
  EXPECT_EQ(store.countIds({"r1", "r2", "zzz"}), 2);
}

TEST(ReceiptStore, NullsAndNumbersRoundTrip) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), keepAll());
  rx::StoredReceipt bare;
  bare.id = "bare";
  bare.market = "storage";
  rx::StoredReceipt big = make(1);
  big.amount = "123456789012345678";
  rx::StoredReceipt frac = make(2);
  frac.amount = "2.5";
  store.ingest({bare, big, frac}, {}, 1000);
  auto p = store.query(rx::ReceiptQuery{10, 0, "", {}});
  ASSERT_EQ(p.receipts.size(), 3u);
  EXPECT_EQ(p.receipts[0].amount, std::optional<std::string>("2.5"));
  EXPECT_EQ(p.receipts[1].amount, std::optional<std::string>("123456789012345678"));
  const auto& b = p.receipts[2];
  EXPECT_EQ(b.id, "bare");
  EXPECT_FALSE(b.block_height);
  EXPECT_FALSE(b.timestamp);
  EXPECT_FALSE(b.provider);
  EXPECT_FALSE(b.consumer);
  EXPECT_FALSE(b.amount);
  EXPECT_FALSE(b.status);
  EXPECT_EQ(b.details, "null");
}

TEST(ReceiptStore, RetentionPrunesOldestFirst) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{10, 0});
  store.ingest(range(0, 25), {{"spec.height", "24"}}, 1000);
  EXPECT_EQ(store.prune(1000), 15);
  auto p = store.query(rx::ReceiptQuery{100, 0, "", {}});
  EXPECT_EQ(p.total, 10);
  EXPECT_EQ(p.receipts.back().id, "r15");
  EXPECT_EQ(p.receipts.front().id, "r24");
  EXPECT_EQ(store.prune(1000), 0);
  EXPECT_EQ(store.stats().pruned_total, 15);
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("24"));
}

TEST(ReceiptStore, RetentionByAge) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 1});
  auto batch = range(0, 4);
  const int64_t now = 1700000000 + 10 * 86400;
  batch[0].timestamp = now - 3 * 86400;
  batch[1].timestamp = now - 2 * 86400;
  batch[2].timestamp = now - 3600;
  batch[3].timestamp.reset();  // no timestamp: its ingest time counts
  store.ingest(batch, {}, now);
  EXPECT_EQ(store.prune(now), 2);
  auto p = store.query(rx::ReceiptQuery{10, 0, "", {}});
  ASSERT_EQ(p.total, 2);
  EXPECT_EQ(p.receipts[0].id, "r3");
  EXPECT_EQ(p.receipts[1].id, "r2");
}

TEST(ReceiptStore, ReadersRunWhileTheWriterInserts) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), keepAll());
  constexpr int kBatches = 40, kPerBatch = 25;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::vector<std::string> errors;
  std::mutex errors_mutex;
  auto reader = [&] {
    int64_t last_total = 0;
    while (!done.load()) {
      try {
        auto p = store.query(rx::ReceiptQuery{50, 0, "", {}});
        if (p.total < last_total) throw std::runtime_error("total went backwards");
        if (p.total > 0 && p.receipts.empty()) throw std::runtime_error("empty page");
        last_total = p.total;
        store.stats();
        reads++;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> lock(errors_mutex);
        errors.push_back(e.what());
        return;
      }
    }
  };
  std::thread r1(reader), r2(reader);
  for (int b = 0; b < kBatches; ++b)
    store.ingest(range(b * kPerBatch, (b + 1) * kPerBatch),
                 {{"spec.height", std::to_string((b + 1) * kPerBatch - 1)}}, 1000 + b);
  // Let the readers see the final state at least once before stopping them.
  const int before = reads.load();
  while (reads.load() < before + 2 && errors.empty()) std::this_thread::yield();
  done = true;
  r1.join();
  r2.join();
  EXPECT_TRUE(errors.empty()) << errors.front();
  EXPECT_EQ(store.stats().receipts, kBatches * kPerBatch);
  EXPECT_GT(reads.load(), 0);
}

namespace {

// The page as SQLite's OFFSET walk gives it: the oracle the order index must agree with.
std::vector<std::string> walkedPage(const std::string& path, const std::string& market,
                                    int64_t limit, int64_t offset) {
  using namespace Poco::Data::Keywords;
  Poco::Data::Session s("SQLite", path);
  std::vector<std::string> ids;
  std::string m = market;
  Poco::Int64 l = limit, o = offset;
  if (market.empty())
    s << "SELECT id FROM receipts ORDER BY seq DESC LIMIT ? OFFSET ?", use(l), use(o), into(ids),
        now;
  else
    s << "SELECT id FROM receipts WHERE market = ? ORDER BY seq DESC LIMIT ? OFFSET ?", use(m),
        use(l), use(o), into(ids), now;
  return ids;
}

std::vector<std::string> idsOf(const rx::ReceiptPage& p) {
  std::vector<std::string> ids;
  for (const auto& r : p.receipts) ids.push_back(r.id);
  return ids;
}

void expectPagesMatchTheWalk(rx::ReceiptStore& store, const std::string& path) {
  for (const std::string market : {"", "compute", "storage", "energy", "ad"}) {
    const auto all = walkedPage(path, market, 1000000, 0);
    EXPECT_EQ(store.count(market), static_cast<int64_t>(all.size())) << market;
    for (int64_t offset : {0, 1, 7, 50, 99, 100, 101, 250, 399, 10000}) {
      for (int64_t limit : {1, 10, 100}) {
        rx::ReceiptQuery q{limit, offset, market, {}};
        auto page = store.query(q);
        EXPECT_EQ(page.total, static_cast<int64_t>(all.size())) << market;
        EXPECT_EQ(page.offset, offset);
        EXPECT_EQ(idsOf(page), walkedPage(path, market, limit, offset))
            << "market '" << market << "' limit " << limit << " offset " << offset;
        EXPECT_EQ(page.next.has_value(), offset + limit < static_cast<int64_t>(all.size()));
      }
    }
    // The cursor walks the whole trail once, in order, each page saying where it is.
    std::vector<std::string> walked;
    rx::ReceiptQuery q{37, 0, market, {}};
    for (int pages = 0; pages < 100; ++pages) {
      auto page = store.query(q);
      EXPECT_EQ(page.offset, static_cast<int64_t>(walked.size()));
      EXPECT_EQ(page.total, static_cast<int64_t>(all.size()));
      for (const auto& r : page.receipts) walked.push_back(r.id);
      if (!page.next) break;
      q.before = page.next;
    }
    EXPECT_EQ(walked, all) << "market '" << market << "'";
  }
}

}  // namespace

TEST(ReceiptStore, DeepPagesAndCursorsMatchAWalkOfEveryRow) {
  TempDir dir;
  const std::string path = dir.file("r.db");
  const std::vector<std::string> markets{"compute", "storage", "energy", "ad", "compute"};
  const int64_t now = 1700000000 + 10 * 86400;
  {
    rx::ReceiptStore store(path, rx::RetentionPolicy{380, 1});
    for (int b = 0; b < 6; ++b) {
      std::vector<rx::StoredReceipt> batch;
      for (int i = b * 80; i < (b + 1) * 80 + 10; ++i) {  // 10 overlap the next batch
        auto r = make(i, markets[static_cast<size_t>(i * 7 % 5)]);
        // Every 13th is too old for retention_days: removed from the middle of the trail.
        r.timestamp = i % 13 == 0 ? now - 3 * 86400 : now - 60;
        batch.push_back(r);
      }
      store.ingest(batch, {}, now);
    }
    expectPagesMatchTheWalk(store, path);
    EXPECT_GT(store.prune(now), 0);  // by age (the middle) and by count (the oldest)
    EXPECT_EQ(store.count(), 380);
    expectPagesMatchTheWalk(store, path);
    store.ingest(range(1000, 1050, "ad"), {}, now);
    expectPagesMatchTheWalk(store, path);
  }
  rx::ReceiptStore reopened(path, keepAll());  // the index is read back from the file
  expectPagesMatchTheWalk(reopened, path);
  auto st = reopened.stats();
  EXPECT_EQ(st.receipts, 430);
  int64_t sum = 0;
  for (const auto& [m, n] : st.by_market) sum += n;
  EXPECT_EQ(sum, 430);
}

TEST(ReceiptStore, ACursorOfAPrunedReceiptStillPagesOn) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{10, 0});
  store.ingest(range(0, 30), {}, 1000);
  auto first = store.query(rx::ReceiptQuery{25, 0, "", {}});
  ASSERT_TRUE(first.next);
  store.prune(1000);  // the cursor's receipt and every one after it are gone
  rx::ReceiptQuery q{25, 0, "", {}};
  q.before = first.next;
  auto page = store.query(q);
  EXPECT_TRUE(page.receipts.empty());
  EXPECT_EQ(page.total, 10);
  EXPECT_EQ(page.offset, 10);
  EXPECT_FALSE(page.next);
}
