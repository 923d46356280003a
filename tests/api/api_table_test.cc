// The API table: the stream order the protocol promises, which streams a publish changes, the
// routes and stream bodies the DashboardApi builds from it, and that it is the only place of the
// agent that names a plugin's section.
#include "api/api_table.h"

#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>

#include "api/dashboard_api.h"
#include "host/plugin_manager.h"
#include "rpc/rpc_client.h"
#include "ws/protocol.h"

namespace {

using blockbuster::Json;
namespace api = bb::api;

uint32_t bits(std::initializer_list<const char*> streams) {
  uint32_t m = 0;
  for (const char* s : streams) m |= 1u << bb::ws::streamIndex(s);
  return m;
}

TEST(ApiTable, StreamsKeepTheProtocolsOrder) {
  const std::vector<std::string> expected{"network_metrics", "markets_health", "peers",  "receipts",
                                          "operations",      "health",         "history"};
  ASSERT_EQ(bb::ws::kStreamCount, static_cast<int>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) EXPECT_EQ(bb::ws::kStreams[i], expected[i]) << i;
  EXPECT_EQ(bb::ws::kHealthStream, 5);
  EXPECT_EQ(bb::ws::kHistoryStream, 6);
  EXPECT_EQ(bb::ws::kDefaultStreamMask, (1u << 7) - 1 - (1u << 6)) << "history is opt-in";
}

TEST(ApiTable, APublishChangesTheStreamsBuiltFromItAndHealth) {
  EXPECT_EQ(api::streamsOf("network.metrics"), bits({"network_metrics", "health"}));
  EXPECT_EQ(api::streamsOf("network.peers"), bits({"peers", "health"}));
  EXPECT_EQ(api::streamsOf("receipts.operations"), bits({"operations", "receipts", "health"}));
  EXPECT_EQ(api::streamsOf("receipts.store"), bits({"receipts", "health"}));
  for (const char* m : {"compute.market", "storage.market", "energy.market", "ads.market"})
    EXPECT_EQ(api::streamsOf(m), bits({"markets_health", "health"})) << m;
  EXPECT_EQ(api::streamsOf("thirdparty.anything"), bits({"health"}));
  EXPECT_EQ(api::streamsOf(""), bits({"health"}));
  // The history's new row is the history stream's alone.
  EXPECT_EQ(api::streamsOf(api::kHistorySection), bits({"history"}));
}

TEST(ApiTable, EveryRowIsWellFormed) {
  std::set<std::string> paths;
  for (const auto& e : api::kEndpoints) {
    ASSERT_NE(e.path, nullptr);
    EXPECT_TRUE(paths.insert(e.path).second) << "path twice: " << e.path;
    EXPECT_EQ(api::byPath(e.path), &e);
    if (e.composer == api::Composer::kSection) {
      ASSERT_NE(e.sections[0], nullptr) << e.path;
      EXPECT_EQ(e.sections[1], nullptr) << e.path << ": a section row serves one section";
    }
    if (e.composer == api::Composer::kPluginRoute) {
      EXPECT_FALSE(api::pluginOf(e).empty()) << e.path;
    }
  }
}

struct Fixture {
  bb::SnapshotStore store;
  bb::FeatureStore features;
  bb::Metrics metrics{"test"};
  bb::PluginRoutes routes;
  bb::RpcClient rpc{[] {
    bb::RpcConfig c;
    c.url = "http://127.0.0.1:9";
    return c;
  }()};
  bb::NodeMonitor node{&rpc};
  bb::PluginManager plugins{bb::HostServices{}};
  bb::DashboardApi api{bb::ApiContext{"test", "http://127.0.0.1:9", &store, &features, &metrics,
                                      &plugins, &routes, &node}};
};

TEST(ApiTable, TheRoutesAreTheRowsTheApiComposes) {
  Fixture f;
  bb::Router router;
  f.api.install(router);
  std::set<std::string> want;
  for (const auto& e : api::kEndpoints)
    if (e.composer != api::Composer::kPluginRoute && e.composer != api::Composer::kHistory)
      want.insert(e.path);
  const auto got = router.paths();
  EXPECT_EQ(std::set<std::string>(got.begin(), got.end()), want);
}

TEST(ApiTable, LargeBodiesAreAnsweredOffTheEventLoops) {
  Fixture f;
  auto request = [](const char* path) {
    bb::HttpRequest r;
    r.path = path;
    return r;
  };
  EXPECT_TRUE(f.api.mayBlock(request("/metrics")));
  EXPECT_TRUE(f.api.mayBlock(request("/theblock/history")));
  EXPECT_FALSE(f.api.mayBlock(request("/health")));
  EXPECT_FALSE(f.api.mayBlock(request("/theblock/dashboard"))) << "no plugin route blocks";
}

TEST(ApiTable, AStreamCarriesTheRestBodyOnceThereIsData) {
  Fixture f;
  const api::Endpoint& row = *api::byPath("/theblock/network/metrics");
  EXPECT_FALSE(f.api.streamBody(row).has_value()) << "a 503 is no stream data";
  f.store.publish(row.sections[0], std::string(api::pluginOf(row)), R"({"block_height":7})", false,
                  std::chrono::milliseconds(6000));
  auto body = f.api.streamBody(row);
  ASSERT_TRUE(body.has_value());
  EXPECT_EQ(Json::parse(*body)["block_height"], Json(7));
  // The history's data comes from the history service, nothing until it says.
  EXPECT_FALSE(f.api.streamBody(*api::byComposer(api::Composer::kHistory)).has_value());
  f.api.setHistorySource([] { return std::optional<std::string>("{\"t\":1}"); });
  EXPECT_EQ(f.api.streamBody(*api::byComposer(api::Composer::kHistory)), "{\"t\":1}");
}

TEST(ApiTable, TheDashboardHoldsEveryStreamedRowButTheHistory) {
  Fixture f;
  Json d = Json::parse(*f.api.dashboard());
  std::set<std::string> keys;
  for (const auto& kv : d.asObject()) keys.insert(kv.first);
  std::set<std::string> want{"timestamp"};
  for (const auto& e : api::kEndpoints)
    if (e.stream && e.composer != api::Composer::kHistory) want.insert(e.stream);
  EXPECT_EQ(keys, want);
  // A plugin route whose plugin is not loaded says so.
  EXPECT_EQ(d["receipts"]["error"]["message"], Json("the receipts plugin is not loaded"));
}

// The dashboard carries each row's text as it was composed (not parsed and dumped again: a
// section's "1.50" stays "1.50"), follows every publish at once, and says null for a plugin
// route's answer that is not JSON.
std::string g_route_body;
int dashboardRoute(void*, const bb_request*, bb_sink_fn sink, void* sink_ctx) {
  sink(sink_ctx, g_route_body.data(), g_route_body.size());
  return 200;
}

TEST(ApiTable, TheDashboardSplicesEachRowsTextAndFollowsEveryPublish) {
  Fixture f;
  const api::Endpoint& metrics = *api::byPath("/theblock/network/metrics");
  const api::Endpoint& route = *api::byComposer(api::Composer::kPluginRoute);
  ASSERT_EQ(f.routes.add(route.path, std::string(api::pluginOf(route)), &dashboardRoute, nullptr),
            "");
  auto publish = [&](const std::string& body) {
    f.store.publish(metrics.sections[0], std::string(api::pluginOf(metrics)), body, false,
                    std::chrono::milliseconds(6000));
  };
  g_route_body = R"({"total":1})";
  publish(R"({"block_height":7,"tps":1.50})");
  const std::string first = *f.api.dashboard();
  EXPECT_NE(first.find(R"("tps":1.50)"), std::string::npos) << first;
  Json d = Json::parse(first);
  EXPECT_EQ(d[metrics.stream]["block_height"], Json(7));
  EXPECT_EQ(d[route.stream]["total"], Json(1));

  g_route_body = R"({"total":)";
  publish(R"({"block_height":8,"tps":1.50})");
  d = Json::parse(*f.api.dashboard());
  EXPECT_EQ(d[metrics.stream]["block_height"], Json(8)) << "a publish is seen by the next request";
  EXPECT_TRUE(d[route.stream].isNull()) << "a plugin route's answer that is not JSON is null";
}

// The table is the one place of the agent that names the plugins' sections: a section name as a
// string literal ("network.metrics", "receipts.*") or a plugin name alone ("compute") anywhere
// else under agent/ is a second copy that nothing checks.
TEST(ApiTable, NoOtherFileOfTheAgentNamesAPluginOrASection) {
  const std::regex literal(R"re("(network|receipts|compute|storage|energy|ads)(\.[a-z_*]*)?")re");
  const std::filesystem::path agent = std::filesystem::path(BB_SOURCE_DIR) / "agent";
  std::vector<std::string> found;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(agent)) {
    const auto ext = entry.path().extension();
    if (ext != ".cc" && ext != ".h") continue;
    const auto rel = std::filesystem::relative(entry.path(), agent).string();
    if (rel.rfind("api/", 0) == 0) continue;  // the table and its composers
    // The node's JSON-RPC methods ("storage.stats") are the node's names, not sections.
    if (rel == "rpc/method_policy.cc") continue;
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n)
      if (std::regex_search(line.substr(0, line.find("//")), literal))
        found.push_back(rel + ":" + std::to_string(n) + ": " + line);
  }
  std::ostringstream all;
  for (const auto& f : found) all << f << "\n";
  EXPECT_TRUE(found.empty()) << all.str();
}

}  // namespace
