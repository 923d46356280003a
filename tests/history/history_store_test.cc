// HistoryStore: rows, nulls, the window, the bounds, and the file (round trip, damage).
#include "history/history_store.h"

#include <blockbuster/json.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cmath>
#include <fstream>
#include <thread>

#include "history/history_service.h"
#include "snapshot/history_marks.h"
#include "support/process.h"

using bb::HistoryOptions;
using bb::HistoryStore;
using blockbuster::Json;

namespace {

HistoryOptions opts(int64_t window_s, int64_t res_ms, size_t max_series = 64) {
  HistoryOptions o;
  o.window_seconds = window_s;
  o.resolution_ms = res_ms;
  o.max_series = max_series;
  return o;
}

constexpr int64_t kT0 = 1700000000000;

off_t fileSize(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

}  // namespace

TEST(HistoryStore, ServesRowsOldestFirstWithNullsForUnknownValues) {
  HistoryStore h(opts(3600, 2000));
  h.append(kT0, {{"block_height", 10}, {"tps", NAN}});
  h.append(kT0 + 2000, {{"block_height", 11.5}, {"tps", 3}});
  h.append(kT0 + 4000, {{"block_height", 12}});  // tps not given: null
  Json body = Json::parse(h.render(3600, {}, kT0 + 5000));
  EXPECT_EQ(body["window"].asInt(), 3600);
  EXPECT_EQ(body["resolution_seconds"].asDouble(), 2.0);
  EXPECT_EQ(body["timestamp"].asInt(), (kT0 + 5000) / 1000);
  const Json& height = body["series"]["block_height"];
  ASSERT_EQ(height.size(), 3u);
  EXPECT_EQ(height[0][0].asInt(), kT0);
  EXPECT_EQ(height[0][1].asInt(), 10);
  EXPECT_EQ(height[1][1].asDouble(), 11.5);
  const Json& tps = body["series"]["tps"];
  EXPECT_TRUE(tps[0][1].isNull());
  EXPECT_EQ(tps[1][1].asInt(), 3);
  EXPECT_TRUE(tps[2][1].isNull());

  // A shorter window and a choice of series.
  Json recent = Json::parse(h.render(4, {"tps"}, kT0 + 5000));
  EXPECT_FALSE(recent["series"].contains("block_height"));
  ASSERT_EQ(recent["series"]["tps"].size(), 2u);
  EXPECT_EQ(recent["series"]["tps"][0][0].asInt(), kT0 + 2000);
}

TEST(HistoryStore, StaysWithinItsBoundsHoweverLongItRuns) {
  HistoryStore h(opts(60, 1000));  // 60 rows
  EXPECT_EQ(h.capacity(), 60u);
  for (int64_t i = 0; i < 100000; ++i)
    h.append(kT0 + i * 1000, {{"a", static_cast<double>(i)}, {"b", 1}, {"c", NAN}});
  EXPECT_EQ(h.rows(), 60u);
  EXPECT_LE(h.memoryBytes(), h.memoryBound());
  Json body = Json::parse(h.render(60, {"a"}, kT0 + 99999 * 1000));
  ASSERT_EQ(body["series"]["a"].size(), 60u);
  EXPECT_EQ(body["series"]["a"][59][1].asInt(), 99999);
  EXPECT_EQ(body["series"]["a"][0][1].asInt(), 99940);
}

TEST(HistoryStore, RecordsAtMostMaxSeries) {
  HistoryStore h(opts(60, 1000, 3));
  h.append(kT0, {{"a", 1}, {"b", 2}, {"c", 3}, {"d", 4}, {"bad name\"", 5}});
  EXPECT_EQ(h.seriesNames(), (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_FALSE(h.hasSeries("d"));
}

TEST(HistoryStore, AClockSteppingBackReplacesTheRowsAfterIt) {
  HistoryStore h(opts(3600, 1000));
  for (int i = 0; i < 5; ++i) h.append(kT0 + i * 1000, {{"a", static_cast<double>(i)}});
  h.append(kT0 + 2000, {{"a", 42}});
  Json body = Json::parse(h.render(3600, {"a"}, kT0 + 10000));
  ASSERT_EQ(body["series"]["a"].size(), 3u);
  EXPECT_EQ(body["series"]["a"][2][1].asInt(), 42);
}

TEST(HistoryStore, SurvivesARoundTripThroughItsFileWithinTheFileBound) {
  bbtest::TempDir dir;
  const std::string file = dir.file("history.bin");
  HistoryStore h(opts(120, 1000));
  for (int i = 0; i < 500; ++i)
    h.append(kT0 + i * 1000, {{"block_height", 1e9 + i}, {"compute.status", i % 3 ? 2 : NAN}});
  ASSERT_EQ(h.save(file), "");
  EXPECT_LE(fileSize(file), static_cast<off_t>(h.fileBound()));

  HistoryStore back(opts(120, 1000));
  ASSERT_EQ(back.load(file, kT0 + 499 * 1000), "");
  EXPECT_EQ(back.render(120, {}, kT0 + 499 * 1000), h.render(120, {}, kT0 + 499 * 1000));
  EXPECT_EQ(back.rows(), 120u);

  // A restart later: only what is still within the window comes back.
  HistoryStore later(opts(120, 1000));
  ASSERT_EQ(later.load(file, kT0 + 499 * 1000 + 60000), "");
  EXPECT_EQ(later.rows(), 60u);

  // A file of a much longer window (the window was shortened): its newest rows.
  HistoryStore day(opts(86400, 1000));
  for (int i = 0; i < 90000; ++i) day.append(kT0 + i * 1000, {{"a", static_cast<double>(i)}});
  ASSERT_EQ(day.save(dir.file("day.bin")), "");
  HistoryStore minute(opts(60, 1000));
  ASSERT_EQ(minute.load(dir.file("day.bin"), kT0 + 89999 * 1000), "");
  EXPECT_EQ(minute.rows(), 60u);

  // A smaller window than the file's rows: the newest rows, at most capacity().
  HistoryStore small(opts(60, 2000));
  ASSERT_EQ(small.load(file, kT0 + 499 * 1000), "");
  EXPECT_EQ(small.rows(), 30u);
  Json body = Json::parse(small.render(60, {"block_height"}, kT0 + 499 * 1000));
  EXPECT_EQ(body["series"]["block_height"][29][1].asInt(), 1000000499);
}

TEST(HistoryStore, RefusesADamagedFileAndKeepsWhatItHad) {
  bbtest::TempDir dir;
  const std::string file = dir.file("history.bin");
  HistoryStore h(opts(60, 1000));
  h.append(kT0, {{"a", 1}});
  ASSERT_EQ(h.save(file), "");
  {
    std::fstream f(file, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(40);
    f.put('\x7f');
  }
  HistoryStore back(opts(60, 1000));
  back.append(kT0 + 1000, {{"b", 2}});
  EXPECT_NE(back.load(file, kT0 + 2000).find("damaged"), std::string::npos);
  EXPECT_EQ(back.seriesNames(), std::vector<std::string>{"b"});
  EXPECT_EQ(back.load(dir.file("missing.bin"), kT0), "") << "no file yet is no error";
  dir.write("junk.bin", "not a history file at all");
  EXPECT_NE(back.load(dir.file("junk.bin"), kT0), "");
}

TEST(HistoryMarks, AValueNotRefreshedInTimeReadsUnknown) {
  bb::HistoryMarks marks;
  marks.set("hello.height", 7, std::chrono::hours(1));
  marks.set("hello.gone", NAN, std::chrono::hours(1));
  marks.set("hello.old", 3, std::chrono::milliseconds(0));
  // A mark's expiry is the behaviour under test: time must pass, there is nothing to await.
  std::this_thread::sleep_for(std::chrono::milliseconds(2));
  std::map<std::string, double> m;
  for (const auto& [k, v] : marks.snapshot()) m[k] = v;
  EXPECT_EQ(m.at("hello.height"), 7);
  EXPECT_TRUE(std::isnan(m.at("hello.gone")));
  EXPECT_TRUE(std::isnan(m.at("hello.old"))) << "stale: never its last value again";
  for (size_t i = 0; i < 2 * bb::HistoryMarks::kMaxSeries; ++i)
    marks.set("p.s" + std::to_string(i), 1, std::chrono::hours(1));
  EXPECT_EQ(marks.snapshot().size(), bb::HistoryMarks::kMaxSeries);
}

TEST(HistorySampler, AStaleBodyGivesNullsAndStatusesAreLevels) {
  std::vector<std::pair<std::string, double>> out;
  bb::sampleBody(
      "",
      R"({"block_height":5,"tps":null,"profile":"spec","strength_terms":{"peers":3},"stale":false,"age_seconds":1})",
      out);
  std::map<std::string, double> m(out.begin(), out.end());
  EXPECT_EQ(m.at("block_height"), 5);
  EXPECT_TRUE(std::isnan(m.at("tps")));
  EXPECT_EQ(m.at("strength_terms.peers"), 3);
  EXPECT_EQ(m.count("age_seconds"), 0u);
  EXPECT_EQ(m.count("profile"), 0u);

  out.clear();
  bb::sampleBody("compute.", R"({"active_jobs":4,"status":"healthy","stale":true})", out);
  for (const auto& [k, v] : out) EXPECT_TRUE(std::isnan(v)) << k << " must be null when stale";

  out.clear();
  bb::sampleBody("ads.", R"({"status":"idle"})", out);
  bb::sampleBody("energy.", R"({"status":"unavailable"})", out);
  bb::sampleBody("storage.", R"({"status":"unknown"})", out);
  m = std::map<std::string, double>(out.begin(), out.end());
  EXPECT_EQ(m.at("ads.status"), 1);
  EXPECT_EQ(m.at("energy.status"), 0);
  EXPECT_TRUE(std::isnan(m.at("storage.status")));
}
