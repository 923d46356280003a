#include "snapshot/snapshot_store.h"

#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>
#include <string>

#include "host/plugin_loader.h"
#include "host/plugin_runtime.h"
#include "metrics/metrics.h"

using blockbuster::Json;
using namespace std::chrono_literals;

namespace {

Json render(const bb::SnapshotStore& store, const std::string& name,
            std::chrono::steady_clock::time_point now) {
  return Json::parse(bb::SnapshotStore::renderBody(*store.get(name), now));
}

TEST(SnapshotStore, StampsTimestampAgeAndStaleness) {
  bb::SnapshotStore store;
  store.publish("network.metrics", "network", R"({"peer_count":3})", false, 5000ms);
  auto s = store.get("network.metrics");
  ASSERT_TRUE(s);
  auto now = s->published_at + 1500ms;
  Json body = render(store, "network.metrics", now);
  EXPECT_EQ(body["peer_count"].asInt(), 3);
  EXPECT_GT(body["timestamp"].asInt(), 1700000000);
  EXPECT_DOUBLE_EQ(body["age_seconds"].asDouble(), 1.5);
  EXPECT_FALSE(body["stale"].asBool());
  EXPECT_FALSE(body.contains("stale_reason"));

  Json later = render(store, "network.metrics", s->published_at + 6s);
  EXPECT_TRUE(later["stale"].asBool());
  EXPECT_NE(later["stale_reason"].asString().find("no refresh within 5000 ms"), std::string::npos);
}

TEST(SnapshotStore, KeepsAPluginsOwnTimestamp) {
  bb::SnapshotStore store;
  store.publish("a.b", "a", R"({"timestamp":42,"x":[{"timestamp":1}]})", true, 1000ms);
  Json body = render(store, "a.b", std::chrono::steady_clock::now());
  EXPECT_EQ(body["timestamp"].asInt(), 42);
}

TEST(SnapshotStore, AnEmptyObjectRendersValidJson) {
  bb::SnapshotStore store;
  store.publish("a.empty", "a", "{}", true, 1000ms);
  Json body = render(store, "a.empty", std::chrono::steady_clock::now());
  EXPECT_TRUE(body.contains("age_seconds"));
  store.publish("a.empty2", "a", " { } ", false, 1000ms);
  EXPECT_TRUE(render(store, "a.empty2", std::chrono::steady_clock::now()).contains("timestamp"));
}

TEST(SnapshotStore, AnErrorKeepsTheLastDataMarkedStaleWithTheReason) {
  bb::SnapshotStore store;
  store.publish("network.metrics", "network", R"({"peer_count":3})", false, 60000ms);
  store.publish("network.peers", "network", R"({"peers":[]})", false, 60000ms);
  uint64_t before = store.version();
  store.markPluginError("network", "node unreachable");
  EXPECT_GT(store.version(), before);
  for (const char* name : {"network.metrics", "network.peers"}) {
    Json body = render(store, name, std::chrono::steady_clock::now());
    EXPECT_TRUE(body["stale"].asBool()) << name;
    EXPECT_EQ(body["stale_reason"].asString(), "node unreachable") << name;
  }
  EXPECT_EQ(
      render(store, "network.metrics", std::chrono::steady_clock::now())["peer_count"].asInt(), 3);
  // The same error again changes nothing (no version bump, so no push to clients).
  uint64_t v = store.version();
  store.markPluginError("network", "node unreachable");
  EXPECT_EQ(store.version(), v);
  // A successful publish clears it.
  store.publish("network.metrics", "network", R"({"peer_count":4})", false, 60000ms);
  EXPECT_FALSE(
      render(store, "network.metrics", std::chrono::steady_clock::now())["stale"].asBool());
}

TEST(SnapshotStore, NotifiesListenersOfEveryChange) {
  bb::SnapshotStore store;
  std::vector<std::string> seen;
  store.addListener([&](const bb::SectionPtr& s) { seen.push_back(s->name); });
  store.publish("a.x", "a", "{}", false, 1000ms);
  store.markError("a.y", "a", "boom", 1000ms);
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0], "a.x");
  EXPECT_EQ(seen[1], "a.y");
  EXPECT_FALSE(store.get("a.y")->has_data);
}

// The WebSocket hub waits for a block's other updates only while a collection runs: the store
// counts them and says when the last one in progress ends, once.
TEST(SnapshotStore, SaysWhenTheLastCollectionInProgressEnds) {
  bb::SnapshotStore store;
  int idle = 0;
  store.addIdleListener([&] { ++idle; });
  EXPECT_EQ(store.collectsInProgress(), 0);
  store.collectStarted();
  store.collectStarted();
  EXPECT_EQ(store.collectsInProgress(), 2);
  store.collectFinished();
  EXPECT_EQ(idle, 0);  // one still runs
  store.collectFinished();
  EXPECT_EQ(idle, 1);
  EXPECT_EQ(store.collectsInProgress(), 0);
  store.collectStarted();
  store.collectFinished();
  EXPECT_EQ(idle, 2);
}

// A plugin's collection counts as in progress while it runs (and a little before its slot); its
// end is announced once it is over.
TEST(SnapshotStore, APluginsCollectionIsCountedUntilItEnds) {
  bb::SnapshotStore store;
  bb::Metrics metrics("x", 100);
  bb::HostServices services;
  services.metrics = &metrics;
  services.store = &store;
  std::mutex mutex;
  std::condition_variable cv;
  int idle = 0;
  store.addIdleListener([&] {
    std::lock_guard<std::mutex> lock(mutex);
    ++idle;
    cv.notify_all();
  });
  bb::PluginConfig config;
  config.interval_ms = 60000;  // one collection: the first runs at once
  bb::PluginRuntime runtime(bb::loadPlugin(std::string(BB_FIXTURE_DIR) + "/good.so"), config,
                            services);
  runtime.create("{}");
  runtime.start();
  {
    std::unique_lock<std::mutex> lock(mutex);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return idle > 0; }));
    EXPECT_EQ(idle, 1);
  }
  EXPECT_EQ(runtime.status().collections, 1u);
  EXPECT_EQ(store.collectsInProgress(), 0);
  runtime.stop();
  EXPECT_EQ(store.collectsInProgress(), 0);
}

}  // namespace
