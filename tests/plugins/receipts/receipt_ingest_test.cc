// The ingest algorithm against scripted nodes of both profiles: exactly once, no gaps, even
// when receipts arrive while the agent pages, when the node lists them in another order, and
// when a call fails half-way.
#include "receipt_ingest.h"

#include <blockbuster/plugin_abi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <set>

#include "receipt_mapping.h"
#include "scripted_node.h"
#include "support/process.h"

namespace rx = blockbuster::receipts;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

using blockbuster::node::scripted::failed;
using blockbuster::node::scripted::notFound;
using blockbuster::node::scripted::ok;
using blockbuster::node::scripted::ScriptedNode;

// A node of the spec profile: receipts oldest first inside, receipt.audit as the reference
// describes it. `newest_first` picks the order it pages in; `on_call` runs before each answer
// (to add receipts while the agent pages); `fail_at_call` fails that call number;
// `cut_after` fails every call of a cycle past that many, as the agent's collect deadline does
// (reset `cycle_calls` before each cycle).
struct SpecNode : rx::NodePort {
  std::vector<Json> receipts;
  bool newest_first = true;
  std::function<void(int)> on_call;
  int calls = 0;
  int fail_at_call = -1;
  int cut_after = -1;
  int cycle_calls = 0;

  void add(int n, int64_t height) {
    static const char* kMarkets[] = {"compute", "storage", "energy", "ad"};
    for (int i = 0; i < n; ++i) {
      const size_t k = receipts.size();
      receipts.push_back(Json{{"id", "rcpt_" + std::to_string(k)},
                              {"market", kMarkets[k % 4]},
                              {"block_height", height},
                              {"timestamp", 1700000000 + height},
                              {"provider", "p"},
                              {"consumer", "c"},
                              {"amount", static_cast<int64_t>(k)},
                              {"status", "completed"},
                              {"details", Json{{"k", static_cast<int64_t>(k)}}}});
    }
  }
  std::vector<rx::Answer> callMany(const std::vector<rx::Call>& cs) override {
    std::vector<rx::Answer> out;
    for (const auto& [method, p] : cs) {
      const int n = calls++;
      if (on_call) on_call(n);
      if (n == fail_at_call) {
        out.push_back(failed("connection reset"));
        continue;
      }
      if (cut_after >= 0 && cycle_calls++ >= cut_after) {
        out.push_back(failed("the collect deadline has passed; call not sent"));
        continue;
      }
      if (method != "receipt.audit") {
        out.push_back(notFound());
        continue;
      }
      std::vector<Json> view;
      for (const auto& r : receipts)
        if (r["block_height"].asInt() >= p["start_height"].asInt()) view.push_back(r);
      if (newest_first) std::reverse(view.begin(), view.end());
      Json page = Json::array();
      const int64_t off = p["offset"].asInt(), lim = p["limit"].asInt();
      for (int64_t i = off; i < off + lim && i < static_cast<int64_t>(view.size()); ++i)
        page.push_back(view[static_cast<size_t>(i)]);
      out.push_back(ok(Json{{"receipts", page}, {"total", static_cast<int64_t>(view.size())}}));
    }
    return out;
  }
};

std::set<std::string> storedIds(const rx::ReceiptStore& store) {
  std::set<std::string> ids;
  for (const auto& r : store.query(rx::ReceiptQuery{1000000, 0, "", {}}).receipts) ids.insert(r.id);
  return ids;
}

std::set<std::string> nodeIds(const SpecNode& node) {
  std::set<std::string> ids;
  for (const auto& r : node.receipts) ids.insert(r["id"].asString());
  return ids;
}

rx::IngestOptions smallPages(int64_t page) { return rx::IngestOptions{page, 3, 200000, 1000}; }

}  // namespace

TEST(SpecIngest, ReadsEverythingOnceAndMovesTheCursor) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(7));
  SpecNode node;
  for (int h = 1; h <= 20; ++h) node.add(3, h);  // 60 receipts
  auto report = ingest.run(node, 1000);
  EXPECT_EQ(ingest.profile(), rx::Profile::kSpec);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.outcome.inserted_total, 60);
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("20"));
  EXPECT_EQ(storedIds(store), nodeIds(node));
  // Newest first in the store, whatever the page order was.
  auto page = store.query(rx::ReceiptQuery{1000, 0, "", {}});
  for (size_t i = 1; i < page.receipts.size(); ++i)
    EXPECT_GE(*page.receipts[i - 1].block_height, *page.receipts[i].block_height);

  // Next cycle: the cursor height is read again (3 duplicates), only new ones are added.
  node.add(2, 20);
  node.add(4, 21);
  node.calls = 0;
  report = ingest.run(node, 1001);
  EXPECT_EQ(report.outcome.inserted_total, 6);
  // The cursor height is read again, and the highest height of a backlog page too.
  EXPECT_GE(report.outcome.duplicates, 3);
  EXPECT_LE(report.outcome.duplicates, 3 + 4);
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("21"));
  EXPECT_EQ(storedIds(store), nodeIds(node));
  // 9 receipts from height 20 in pages of 7: the newest page, the oldest, then the rest.
  EXPECT_LE(node.calls, 3);

  // No backlog: one call a cycle.
  node.add(3, 22);
  node.calls = 0;
  report = ingest.run(node, 1002);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.outcome.inserted_total, 3);
  EXPECT_EQ(node.calls, 1);
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("22"));
}

TEST(SpecIngest, ReceiptsArrivingWhilePagingAreNeitherLostNorDoubled) {
  for (bool newest_first : {true, false}) {
    TempDir dir;
    rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
    rx::Ingestor ingest(store, smallPages(10));
    SpecNode node;
    node.newest_first = newest_first;
    int64_t height = 1;
    for (; height <= 10; ++height) node.add(4, height);
    // A new block of 4 receipts lands before every third call (paging is faster than blocks).
    node.on_call = [&](int n) {
      if (n % 3 == 0) node.add(4, height++);
    };
    for (int cycle = 0; cycle < 5; ++cycle) ingest.run(node, 1000 + cycle);
    node.on_call = nullptr;
    auto last = ingest.run(node, 2000);  // a quiet node: everything must now be there
    EXPECT_TRUE(last.complete);
    EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>(std::to_string(height - 1)));
    EXPECT_EQ(storedIds(store), nodeIds(node)) << "newest_first=" << newest_first;
    EXPECT_EQ(store.stats().receipts, static_cast<int64_t>(node.receipts.size()));
  }
}

TEST(SpecIngest, AFailureHalfWayKeepsWhatWasCommittedAndItsCursor) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(5));
  SpecNode node;
  for (int h = 1; h <= 6; ++h) node.add(5, h);
  node.fail_at_call = 2;  // the newest page, the oldest page, then this one fails
  auto report = ingest.run(node, 1000);
  EXPECT_FALSE(report.complete);
  EXPECT_EQ(report.outcome.inserted_total, 5);  // height 1, committed with its cursor
  EXPECT_EQ(report.unavailable.count("receipt.audit"), 1u);
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("1"));
  node.fail_at_call = -1;
  report = ingest.run(node, 1001);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.outcome.inserted_total, 25);
  EXPECT_EQ(storedIds(store), nodeIds(node));
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("6"));
}

// The store holds exactly the node's list, once each, newest first by height.
void expectSameAsNode(const rx::ReceiptStore& store, const SpecNode& node) {
  EXPECT_EQ(store.stats().receipts, static_cast<int64_t>(node.receipts.size()));
  EXPECT_EQ(storedIds(store), nodeIds(node));
  auto page = store.query(rx::ReceiptQuery{1000000, 0, "", {}});
  for (size_t i = 1; i < page.receipts.size(); ++i)
    ASSERT_GE(*page.receipts[i - 1].block_height, *page.receipts[i].block_height) << i;
}

TEST(SpecIngest, ABacklogLargerThanOneCycleCanReadConvergesOldestFirst) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(100));
  SpecNode node;
  for (int h = 1; h <= 1000; ++h) node.add(3, h);  // 3000 receipts
  node.cut_after = 6;  // the deadline passes after 6 calls: at most ~500 receipts a cycle
  int64_t last_cursor = -1, last_stored = 0;
  int cycles = 0;
  bool complete = false;
  for (; cycles < 40 && !complete; ++cycles) {
    node.cycle_calls = 0;
    const auto report = ingest.run(node, 1000 + cycles);
    complete = report.complete;
    // Every cycle commits progress, even when the deadline cuts it.
    const int64_t cursor = rx::cursorInt(store.cursor("spec.height")).value_or(-1);
    const int64_t stored = store.stats().receipts;
    EXPECT_GT(cursor, last_cursor) << "cycle " << cycles;
    EXPECT_GT(stored, last_stored) << "cycle " << cycles;
    // Oldest first: everything stored is at or below the cursor height.
    EXPECT_LE(store.stats().max_block_height.value_or(0), cursor);
    if (!complete) EXPECT_EQ(report.unavailable.count("receipt.audit"), 1u);
    last_cursor = cursor;
    last_stored = stored;
  }
  EXPECT_TRUE(complete);
  EXPECT_GE(cycles, 4) << "the backlog did not need several cycles: the test proves nothing";
  EXPECT_LE(cycles, 10);  // ~5 pages of 100 a cycle (one call finds the total)
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("1000"));
  expectSameAsNode(store, node);
}

TEST(SpecIngest, ReceiptsArrivingBetweenAndDuringCutCyclesAreReadOnce) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(50));
  SpecNode node;
  int64_t height = 1;
  for (; height <= 400; ++height) node.add(5, height);  // 2000 receipts
  node.cut_after = 5;
  // A block of 5 lands before every other call, so most pages see the total move.
  node.on_call = [&](int n) {
    if (n % 2 == 0) node.add(5, height++);
  };
  for (int cycle = 0; cycle < 30; ++cycle) {
    node.cycle_calls = 0;
    ingest.run(node, 1000 + cycle);
    node.add(5, height++);  // and one between cycles
  }
  // The node quiets down: a few more cut cycles finish the catch-up.
  node.on_call = nullptr;
  bool complete = false;
  for (int cycle = 0; cycle < 60 && !complete; ++cycle) {
    node.cycle_calls = 0;
    complete = ingest.run(node, 2000 + cycle).complete;
  }
  EXPECT_TRUE(complete);
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>(std::to_string(height - 1)));
  expectSameAsNode(store, node);
}

TEST(SpecIngest, ABlockLargerThanAPageIsReadWholeBeforeTheCursorPassesIt) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(10));
  SpecNode node;
  for (int h = 1; h <= 5; ++h) node.add(4, h);
  node.add(35, 6);  // 35 receipts in one block, pages of 10
  for (int h = 7; h <= 12; ++h) node.add(4, h);
  // The block's 4 pages and one above it fit in a cycle (a block needing more pages than one
  // cycle can read is a known limit: README).
  node.cut_after = 8;
  bool complete = false;
  int cycles = 0;
  for (; cycles < 30 && !complete; ++cycles) {
    node.cycle_calls = 0;
    complete = ingest.run(node, 1000 + cycles).complete;
    // The cursor never passes height 6 before all of it is stored.
    const int64_t cursor = rx::cursorInt(store.cursor("spec.height")).value_or(0);
    if (cursor > 6) EXPECT_EQ(store.countFromHeight(6) - store.countFromHeight(7), 35);
  }
  EXPECT_TRUE(complete);
  expectSameAsNode(store, node);
}

TEST(SpecIngest, AnOldestFirstNodeWithABacklogIsStillReadWhole) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(10));
  SpecNode node;
  node.newest_first = false;
  for (int h = 1; h <= 30; ++h) node.add(3, h);
  auto report = ingest.run(node, 1000);
  EXPECT_TRUE(report.complete);
  EXPECT_FALSE(report.warnings.empty());  // says the backlog is read whole
  EXPECT_EQ(store.cursor("spec.height"), std::optional<std::string>("30"));
  expectSameAsNode(store, node);
}

TEST(SpecIngest, AFirstCallFailureOrAStrangeShapeThrows) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(5));
  SpecNode node;
  node.fail_at_call = 0;
  EXPECT_THROW(ingest.run(node, 1000), std::runtime_error);
  ScriptedNode weird;
  weird.otherwise([](const Json&) { return ok(Json("surprise")); });
  try {
    ingest.run(weird, 1000);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("surprise"), std::string::npos) << e.what();
  }
  EXPECT_EQ(ingest.profile(), rx::Profile::kUnknown);
  EXPECT_EQ(store.stats().receipts, 0);
}

namespace {

// A node of the theblock profile: no receipt.audit; the ledger, energy pages (oldest first
// unless `energy_newest_first`) and the SLA window.
struct TheBlockNode : rx::NodePort {
  std::vector<Json> ledger, energy, sla;
  bool energy_newest_first = false;
  bool energy_fails = false;
  std::vector<std::string> methods;

  void addJob(int k) {
    ledger.push_back(Json{{"sequence", static_cast<int64_t>(ledger.size() + 1)},
                          {"timestamp", 1700000000 + k},
                          {"entity", "prov"},
                          {"memo", "m"},
                          {"delta", k},
                          {"balance", k},
                          {"anchor", "a"}});
    sla.push_back(Json{{"job_id", "job_" + std::to_string(k)},
                       {"provider", "prov"},
                       {"buyer", "b"},
                       {"outcome", "completed"},
                       {"resolved_at", 1700000000 + k}});
  }
  void addEnergy(int k) {
    energy.push_back(Json{{"buyer", "b"},
                          {"seller", "s"},
                          {"kwh_delivered", 1},
                          {"price_paid", k},
                          {"block_settled", 100 + k},
                          {"treasury_fee", 0},
                          {"slash_applied", false},
                          {"meter_hash", "mh" + std::to_string(k)}});
  }
  std::vector<rx::Answer> callMany(const std::vector<rx::Call>& cs) override {
    std::vector<rx::Answer> out;
    for (const auto& [method, p] : cs) {
      methods.push_back(method);
      if (method == "settlement.audit") {
        out.push_back(ok(Json(Json::Array(ledger.begin(), ledger.end()))));
      } else if (method == "compute_market.sla_history") {
        Json list = Json::array();
        for (auto it = sla.rbegin(); it != sla.rend() && list.size() < size_t(p["limit"].asInt());
             ++it)
          list.push_back(*it);
        out.push_back(ok(list));
      } else if (method == "energy.receipts") {
        if (energy_fails) {
          out.push_back(rx::Answer::rpcError(-33009, "unauthorized"));
          continue;
        }
        std::vector<Json> view = energy;
        if (energy_newest_first) std::reverse(view.begin(), view.end());
        const int64_t page = p["page"].asInt(), size = p["page_size"].asInt();
        Json list = Json::array();
        for (int64_t i = page * size; i < (page + 1) * size && i < int64_t(view.size()); ++i)
          list.push_back(view[size_t(i)]);
        out.push_back(ok(Json{{"page", page},
                              {"page_size", size},
                              {"receipts", list},
                              {"total", static_cast<int64_t>(view.size())},
                              {"status", "ok"}}));
      } else {
        out.push_back(notFound());
      }
    }
    return out;
  }
};

}  // namespace

TEST(TheBlockIngest, DetectsTheProfileAndReadsAllThreeSources) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(4));
  TheBlockNode node;
  for (int k = 0; k < 5; ++k) node.addJob(k);
  for (int k = 0; k < 10; ++k) node.addEnergy(k);
  auto report = ingest.run(node, 1000);
  EXPECT_EQ(ingest.profile(), rx::Profile::kTheBlock);
  EXPECT_TRUE(report.complete);
  EXPECT_EQ(report.outcome.inserted_total, 20);
  EXPECT_EQ(report.outcome.inserted["compute"], 10);
  EXPECT_EQ(report.outcome.inserted["energy"], 10);
  EXPECT_EQ(store.cursor("settlement.sequence"), std::optional<std::string>("5"));
  EXPECT_EQ(store.cursor("energy.index"), std::optional<std::string>("10"));
  auto ids = storedIds(store);
  EXPECT_TRUE(ids.count("settlement:1"));
  EXPECT_TRUE(ids.count("sla:job_4"));
  EXPECT_TRUE(ids.count("energy:mh9"));

  // Second cycle: only what is new; no receipt.audit asked again.
  node.methods.clear();
  node.addJob(5);
  node.addEnergy(10);
  report = ingest.run(node, 1001);
  EXPECT_EQ(std::count(node.methods.begin(), node.methods.end(), "receipt.audit"), 0);
  EXPECT_EQ(report.outcome.inserted_total, 3);
  EXPECT_EQ(store.stats().receipts, 23);
  EXPECT_EQ(store.cursor("energy.index"), std::optional<std::string>("11"));
}

TEST(TheBlockIngest, EnergyPagesInAnotherOrderAreReadAgainWithoutGaps) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(4));
  TheBlockNode node;
  node.energy_newest_first = true;
  for (int k = 0; k < 6; ++k) node.addEnergy(k);
  ingest.run(node, 1000);
  for (int k = 6; k < 9; ++k) node.addEnergy(k);
  auto report = ingest.run(node, 1001);
  EXPECT_EQ(store.stats().by_market["energy"], 9);
  EXPECT_FALSE(report.warnings.empty());  // the shift was noticed
}

TEST(TheBlockIngest, OneFailingSourceDoesNotStopTheOthers) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(4));
  TheBlockNode node;
  node.energy_fails = true;
  node.addJob(1);
  node.addEnergy(1);
  auto report = ingest.run(node, 1000);
  EXPECT_FALSE(report.complete);
  ASSERT_EQ(report.unavailable.count("energy.receipts"), 1u);
  EXPECT_NE(report.unavailable["energy.receipts"].find("unauthorized"), std::string::npos);
  EXPECT_EQ(report.outcome.inserted_total, 2);
  EXPECT_FALSE(store.cursor("energy.index").has_value());
}

TEST(TheBlockIngest, ANodeWithNoSourceAtAllIsAnError) {
  TempDir dir;
  rx::ReceiptStore store(dir.file("r.db"), rx::RetentionPolicy{0, 0});
  rx::Ingestor ingest(store, smallPages(4));
  ScriptedNode node;  // every method answers -32601
  EXPECT_THROW(ingest.run(node, 1000), std::runtime_error);
  EXPECT_EQ(ingest.profile(), rx::Profile::kUnknown);
}
