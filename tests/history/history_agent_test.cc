// The agent's history as a whole: GET /theblock/history filled by the real agent from the real
// bb-devnode, its errors, last_block_age_seconds, and the history surviving a restart within
// its bounds (rows and file).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>

#include "history/history_store.h"
#include "integration/stack.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::eventually;
using bbtest::httpGet;
using bbtest::TempDir;
using blockbuster::Json;

namespace {

const char* kConfig = "history:\n  window: 60\nplugins:\n  network:\n    interval_ms: 1000\n";

Json history(int port, const std::string& query = "") {
  auto r = httpGet(port, "/theblock/history" + query);
  if (r.status != 200) return Json();
  return r.json();
}

size_t knownPoints(const Json& points) {
  size_t n = 0;
  for (size_t i = 0; i < points.size(); ++i) n += !points[i][1].isNull();
  return n;
}

}  // namespace

TEST(HistoryAgent, FillsServesAndSurvivesARestartWithinItsBounds) {
  DevNode node("spec", {"--block-ms", "200"});
  TempDir home;
  const std::string file = home.path() + "/.block-buster/state/history.bin";
  Json first;
  {
    Agent agent(home, node.url(), kConfig);
    ASSERT_TRUE(eventually([&] {
      first = history(agent.port(), "?series=block_height,last_block_age_seconds,compute.status");
      return first.isObject() && knownPoints(first["series"]["block_height"]) >= 4 &&
             knownPoints(first["series"]["last_block_age_seconds"]) >= 1;
    })) << agent.process().output();
    EXPECT_EQ(first["window"].asInt(), 60);
    EXPECT_EQ(first["resolution_seconds"].asDouble(), 1.0);
    EXPECT_TRUE(first["timestamp"].isInt());
    const Json& height = first["series"]["block_height"];
    for (size_t i = 1; i < height.size(); ++i) {
      EXPECT_GT(height[i][0].asInt(), height[i - 1][0].asInt()) << "oldest first, one per tick";
      EXPECT_EQ(height[i][0].asInt() % 1000, 0) << "on the resolution's multiples";
    }
    EXPECT_TRUE(first["series"]["compute.status"].isArray());

    // last_block_age_seconds: in the REST body and in /metrics.
    Json metrics = httpGet(agent.port(), "/theblock/network/metrics").json();
    ASSERT_TRUE(metrics["last_block_age_seconds"].isNumber()) << metrics.dump();
    EXPECT_LT(metrics["last_block_age_seconds"].asDouble(), 5.0);
    EXPECT_NE(httpGet(agent.port(), "/metrics").body.find("theblock_last_block_age_seconds "),
              std::string::npos);

    // Bad values of known parameters: 400 naming the parameter and what is allowed.
    for (const char* q : {"?window=0", "?window=61", "?window=abc", "?window=", "?series=nope",
                          "?series=", "?series=tps&series=tps"}) {
      auto r = httpGet(agent.port(), std::string("/theblock/history") + q);
      EXPECT_EQ(r.status, 400) << q;
      const std::string param =
          std::string(q).find("window") != std::string::npos ? "'window'" : "'series'";
      EXPECT_NE(r.body.find(param), std::string::npos) << q << ": " << r.body;
      EXPECT_NE(r.body.find("allowed"), std::string::npos) << q << ": " << r.body;
    }
    agent.process().signal(SIGTERM);
    ASSERT_TRUE(agent.process().wait(std::chrono::seconds(5)).has_value());
  }

  // Written at stop, within the stated bound.
  struct stat st {};
  ASSERT_EQ(::stat(file.c_str(), &st), 0) << file;
  bb::HistoryOptions o;
  o.window_seconds = 60;
  o.resolution_ms = 1000;
  EXPECT_LE(static_cast<size_t>(st.st_size), bb::HistoryStore(o).fileBound());

  // After a restart the old points are served at once.
  Agent again(home, node.url(), kConfig);
  Json after = history(again.port(), "?series=block_height");
  ASSERT_TRUE(after.isObject()) << again.process().output();
  const Json& before_pts = first["series"]["block_height"];
  const Json& after_pts = after["series"]["block_height"];
  ASSERT_GE(after_pts.size(), before_pts.size()) << after.dump();
  EXPECT_EQ(after_pts[0][0].asInt(), before_pts[0][0].asInt());
  EXPECT_EQ(after_pts[0][1].dump(), before_pts[0][1].dump());
  EXPECT_LE(after_pts.size(), 60u) << "at most window / resolution rows";
}

TEST(HistoryAgent, ADamagedFileIsSetAsideAndTheAgentStartsAfresh) {
  DevNode node("spec", {"--block-ms", "200"});
  TempDir home;
  const std::string dir = home.path() + "/.block-buster/state";
  ASSERT_EQ(std::system(("mkdir -p " + dir).c_str()), 0);
  home.write(".block-buster/state/history.bin", "BBHIST01 this is not what the agent wrote");
  Agent agent(home, node.url(), kConfig);
  Json h;
  ASSERT_TRUE(eventually([&] {
    h = history(agent.port(), "?series=block_height");
    return h.isObject() && knownPoints(h["series"]["block_height"]) >= 1;
  })) << agent.process().output();
  struct stat st {};
  EXPECT_EQ(::stat((dir + "/history.bin.bad").c_str(), &st), 0) << "kept for inspection";
  EXPECT_NE(agent.process().output().find("history.bin.bad"), std::string::npos)
      << "named in the log: " << agent.process().output();
}
