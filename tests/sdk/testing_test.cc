// The SDK's fake host (blockbuster/testing.h) itself, through the SDK's Host wrapper as a plugin
// sees it: what it answers, what it records, and the agent's rules it keeps.
#include <blockbuster/plugin.h>
#include <blockbuster/testing.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace {

using blockbuster::Host;
using blockbuster::Json;
using blockbuster::LogLevel;
using blockbuster::Request;
using blockbuster::Response;
using blockbuster::RpcError;
using blockbuster::testing::FakeHost;
using blockbuster::testing::PluginRunner;
using blockbuster::testing::Reply;

TEST(FakeHost, AnswersScriptedMethodsAndMethodNotFoundForTheRest) {
  FakeHost fake;
  fake.answer("a", Json{{"x", 1}});
  fake.reply("b", Reply::rpcError(-33009, "unauthorized"));
  fake.reply("c", Reply::failure(BB_ERR_TIMEOUT, "too slow"));
  fake.on("d", [](const Json& params) { return Reply::result(params["n"].asInt() * 2); });
  Host& host = fake.host();

  EXPECT_EQ(host.rpc("a"), (Json{{"x", 1}}));
  std::vector<blockbuster::RpcResult> r = host.rpcMany({{"b", Json::object()},
                                                        {"c", Json::object()},
                                                        {"d", Json{{"n", 21}}},
                                                        {"e", Json::object()}});
  ASSERT_EQ(r.size(), 4u);
  EXPECT_EQ(r[0].status, BB_ERR_RPC);
  EXPECT_EQ(r[0].code, -33009);
  EXPECT_EQ(r[0].message, "unauthorized");
  EXPECT_EQ(r[1].status, BB_ERR_TIMEOUT);
  EXPECT_EQ(r[1].message, "too slow");
  ASSERT_TRUE(r[2].ok);
  EXPECT_EQ(r[2].value, Json(42));
  EXPECT_TRUE(r[3].methodNotFound());
  try {
    host.rpc("e");
    ADD_FAILURE() << "an unscripted method answered";
  } catch (const RpcError& e) {
    EXPECT_TRUE(e.methodNotFound());
  }

  fake.unscript("a");
  EXPECT_TRUE(host.tryRpc("a").methodNotFound());
}

TEST(FakeHost, RecordsEveryCallWithItsParamsAndBatch) {
  FakeHost fake;
  Host& host = fake.host();
  host.tryRpc("one", Json{{"k", "v"}});
  host.rpcMany({{"two", Json::object()}, {"three", Json::object()}});
  host.tryRpc("two");
  EXPECT_EQ(fake.batchCount(), 3u);
  EXPECT_EQ(fake.batch(1), (std::vector<std::string>{"two", "three"}));
  EXPECT_EQ(fake.callCount("two"), 2u);
  ASSERT_EQ(fake.calls().size(), 4u);
  EXPECT_EQ(fake.calls()[0].params, (Json{{"k", "v"}}));
  fake.clearRecords();
  EXPECT_TRUE(fake.calls().empty());
}

TEST(FakeHost, KeepsSectionsSeriesFeaturesAndLogsAsTheAgentWould) {
  FakeHost fake;
  Host& host = fake.host();
  host.publish("s", Json{{"a", 1}});
  host.publish("s", Json{{"a", 2}});
  EXPECT_EQ(fake.section("s"), (Json{{"a", 2}}));
  EXPECT_EQ(fake.publishCount("s"), 2u);
  EXPECT_THROW(fake.section("never"), std::out_of_range);
  // A section is an object; the agent refuses anything else, and so does the wrapper's check.
  EXPECT_THROW(host.publish("t", Json(3)), std::runtime_error);
  host.publishError("s", "node away");
  EXPECT_EQ(fake.staleReason("s"), std::string("node away"));

  host.gauge("g", "help", 5, {{"l", "x"}});
  EXPECT_EQ(fake.value("g", {{"l", "x"}}), 5.0);
  EXPECT_FALSE(fake.value("g"));  // another label set is another series
  host.gauge("g", "help", std::nan(""), {{"l", "x"}});
  EXPECT_FALSE(fake.value("g", {{"l", "x"}}));  // NaN removes: unknown is absent, never 0
  EXPECT_EQ(fake.lastMetric("g", {{"l", "x"}})->op, static_cast<uint32_t>(BB_METRIC_REMOVE));
  host.counterAdd("c", "help", 2);
  host.counterAdd("c", "help", 3);
  EXPECT_EQ(fake.value("c"), 5.0);
  host.historyGauge("h", "help", 1);
  EXPECT_EQ(fake.lastMetric("h")->flags, static_cast<uint32_t>(BB_METRIC_FLAG_HISTORY));
  host.gauge("blockbuster_mine", "help", 1);  // a reserved name: refused, as by the agent
  host.gauge("9bad", "help", 1);
  EXPECT_FALSE(fake.value("blockbuster_mine"));
  EXPECT_FALSE(fake.value("9bad"));

  host.feature("f", 1.5);
  EXPECT_EQ(fake.feature("f"), 1.5);
  EXPECT_FALSE(fake.feature("none"));
  host.warn("the node is slow");
  EXPECT_TRUE(fake.logged("slow", LogLevel::Warn));
  EXPECT_FALSE(fake.logged("slow", LogLevel::Error));
}

TEST(FakeHost, ServesRoutesAndAsksADeferredOneAgainWhereItMayBlock) {
  FakeHost fake;
  fake.setStateDir("/nonexistent/state");
  Host& host = fake.host(Json{{"opt", 1}});
  EXPECT_EQ(host.config()["opt"], Json(1));
  EXPECT_EQ(host.stateDir(), "/nonexistent/state");
  int calls = 0;
  host.serve("/r", [&](const Request& req) {
    ++calls;
    if (!req.may_block) return Response::defer();
    const std::string* q = req.param("q");
    return Response::json(Json{{"q", q ? *q : ""}});
  });
  EXPECT_TRUE(fake.serves("/r"));
  blockbuster::testing::RouteAnswer a = fake.get("/r", {{"q", "x"}});
  EXPECT_EQ(a.status, 200);
  EXPECT_EQ(a.json(), (Json{{"q", "x"}}));
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(fake.request("/r", {}, false).status, BB_STATUS_DEFER);
  EXPECT_THROW(fake.get("/other"), std::out_of_range);
}

// A plugin compiled into this test: the runner drives it through its C entry points.
class Echo final : public blockbuster::Plugin {
 public:
  explicit Echo(Host& host) : host_(host) {
    if (host.config()["limit"].asInt() < 1) throw std::invalid_argument("limit must be >= 1");
  }
  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {{"limit", BB_CONFIG_INT, "5", "a limit"}, {"name", BB_CONFIG_STRING, "", "no default"}};
  }
  void collect() override {
    host_.publish("echo", Json{{"limit", host_.config()["limit"]}, {"x", host_.rpc("x")}});
  }

 private:
  Host& host_;
};

TEST(PluginRunner, CreatesWithTheDeclaredDefaultsAndCollectsThroughTheCEntryPoints) {
  const bb_plugin* echo = blockbuster::detail::Entry<Echo>::get("echo", "1.0.0", "echoes");
  FakeHost fake;
  PluginRunner plugin(echo, fake);
  EXPECT_EQ(plugin.defaults(), (Json{{"limit", 5}}));
  EXPECT_FALSE(plugin.create(Json{{"limmit", 2}}));
  EXPECT_NE(plugin.error().find("limmit"), std::string::npos) << plugin.error();
  EXPECT_FALSE(plugin.create(Json{{"limit", 0}}));
  EXPECT_NE(plugin.error().find("limit must be >= 1"), std::string::npos) << plugin.error();
  ASSERT_TRUE(plugin.create(Json{{"limit", 3}})) << plugin.error();

  EXPECT_EQ(plugin.collect(), BB_ERR_RPC);  // x is not scripted
  EXPECT_NE(plugin.error().find("not found"), std::string::npos) << plugin.error();
  fake.answer("x", Json("y"));
  ASSERT_EQ(plugin.collect(), BB_OK) << plugin.error();
  EXPECT_EQ(fake.section("echo"), (Json{{"limit", 3}, {"x", "y"}}));
}

}  // namespace
