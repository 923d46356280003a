#include "metrics/metrics.h"

#include <blockbuster/plugin_abi.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "host/plugin_loader.h"
#include "host/plugin_runtime.h"

namespace {

constexpr auto Invalid = bb::MetricResult::Code::Invalid;

bb::MetricUpdate gauge(const std::string& name, double v,
                       std::vector<std::pair<std::string, std::string>> labels = {}) {
  bb::MetricUpdate u;
  u.name = name;
  u.help = "help of " + name;
  u.value = v;
  u.labels = std::move(labels);
  return u;
}

TEST(Metrics, ExposesPluginGaugesAndRemovesUnknownValues) {
  bb::Metrics m("1.2.3");
  EXPECT_TRUE(m.applyPluginMetric("network", gauge("theblock_peers", 23)).ok());
  std::string text = m.serialize();
  EXPECT_NE(text.find("# HELP theblock_peers help of theblock_peers"), std::string::npos);
  EXPECT_NE(text.find("theblock_peers 23"), std::string::npos) << text;
  EXPECT_NE(text.find("blockbuster_build_info{version=\"1.2.3\"} 1"), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes"), std::string::npos);
  auto remove = gauge("theblock_peers", 0);
  remove.op = bb::MetricUpdate::Op::Remove;
  EXPECT_TRUE(m.applyPluginMetric("network", remove).ok());
  EXPECT_EQ(m.serialize().find("theblock_peers 23"), std::string::npos);
  EXPECT_EQ(m.serialize().find("theblock_peers 0"), std::string::npos);
}

TEST(Metrics, RefusesInvalidAndReservedNamesAndMismatches) {
  bb::Metrics m("x");
  EXPECT_EQ(m.applyPluginMetric("p", gauge("bad-name", 1)).code, Invalid);
  EXPECT_EQ(m.applyPluginMetric("p", gauge("blockbuster_fake", 1)).code, Invalid);
  EXPECT_EQ(m.applyPluginMetric("p", gauge("ok_name", 1, {{"__reserved", "x"}})).code, Invalid);
  EXPECT_TRUE(m.applyPluginMetric("p", gauge("ok_name", 1, {{"market", "a"}})).ok());
  EXPECT_EQ(m.applyPluginMetric("p", gauge("ok_name", 1, {{"other", "a"}})).code, Invalid);
  auto counter = gauge("ok_name", 1, {{"market", "a"}});
  counter.counter = true;
  EXPECT_EQ(m.applyPluginMetric("p", counter).code, Invalid);
  EXPECT_EQ(m.applyPluginMetric("p", gauge("nan_value", std::nan(""))).code, Invalid);
  EXPECT_NE(m.serialize().find("blockbuster_plugin_metric_errors_total{plugin=\"p\"} 6"),
            std::string::npos)
      << m.serialize();
}

TEST(Metrics, CapsTheSeriesOfAPluginAndCountsTheDrops) {
  bb::Metrics m("x", 3);
  for (int i = 0; i < 5; ++i) {
    const auto result =
        m.applyPluginMetric("p", gauge("theblock_x", i, {{"k", std::to_string(i)}}));
    // Past the cap a new series is dropped as SeriesCap (the host's BB_ERR_LIMIT), not Invalid.
    EXPECT_EQ(result.code, i < 3 ? bb::MetricResult::Code::Ok : bb::MetricResult::Code::SeriesCap)
        << i << ": " << result.why;
  }
  // An update of a series it already has is not capped.
  EXPECT_TRUE(m.applyPluginMetric("p", gauge("theblock_x", 9, {{"k", "0"}})).ok());
  EXPECT_EQ(m.pluginSeries("p"), 3u);
  EXPECT_NE(m.serialize().find("blockbuster_plugin_series_dropped_total{plugin=\"p\"} 2"),
            std::string::npos);
  // Another plugin has its own budget.
  EXPECT_TRUE(m.applyPluginMetric("q", gauge("theblock_y", 1)).ok());
  m.removePluginSeries("p");
  EXPECT_EQ(m.pluginSeries("p"), 0u);
  EXPECT_EQ(m.serialize().find("theblock_x{"), std::string::npos);
}

TEST(Metrics, CounterTotalsFollowTheNodeAndSurviveAReset) {
  bb::Metrics m("x");
  auto total = gauge("theblock_bytes_total", 100);
  total.counter = true;
  EXPECT_TRUE(m.applyPluginMetric("p", total).ok());
  total.value = 250;
  m.applyPluginMetric("p", total);
  EXPECT_NE(m.serialize().find("theblock_bytes_total 250"), std::string::npos) << m.serialize();
  total.value = 40;  // the node restarted
  m.applyPluginMetric("p", total);
  EXPECT_NE(m.serialize().find("theblock_bytes_total 40"), std::string::npos) << m.serialize();
}

}  // namespace

namespace {

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST(Metrics, AnExpiredPluginsSeriesAreLeftOutAndItsDataAgeIsShown) {
  bb::Metrics m("x");
  // Two plugins share theblock_market_up, as the market plugins do.
  ASSERT_TRUE(
      m.applyPluginMetric("compute", gauge("theblock_market_up", 1, {{"market", "compute"}})).ok());
  ASSERT_TRUE(
      m.applyPluginMetric("storage", gauge("theblock_market_up", 1, {{"market", "storage"}})).ok());
  ASSERT_TRUE(m.applyPluginMetric("network", gauge("theblock_block_height", 42)).ok());
  std::vector<bb::PluginFreshness> fresh{
      {"compute", 1.5, false}, {"network", 0.5, false}, {"storage", std::nullopt, false}};
  m.setFreshnessSource([&] { return fresh; });
  std::string text = m.serialize();
  EXPECT_NE(text.find("theblock_market_up{market=\"compute\"} 1"), std::string::npos) << text;
  EXPECT_NE(text.find("theblock_block_height 42"), std::string::npos) << text;
  EXPECT_NE(text.find("blockbuster_plugin_data_age_seconds{plugin=\"compute\"} 1.5"),
            std::string::npos)
      << text;
  // No data yet: no age at all (never a made-up 0).
  EXPECT_EQ(text.find("blockbuster_plugin_data_age_seconds{plugin=\"storage\"}"),
            std::string::npos);
  EXPECT_NE(text.find("blockbuster_plugin_stale{plugin=\"compute\"} 0"), std::string::npos);

  // The node stops: compute and network expire. Their frozen "up" and height must go.
  fresh = {{"compute", 9.0, true}, {"network", 9.0, true}, {"storage", 1.0, false}};
  text = m.serialize();
  EXPECT_EQ(text.find("theblock_market_up{market=\"compute\"}"), std::string::npos) << text;
  EXPECT_EQ(text.find("theblock_block_height"), std::string::npos) << text;
  EXPECT_NE(text.find("theblock_market_up{market=\"storage\"} 1"), std::string::npos) << text;
  EXPECT_EQ(occurrences(text, "# TYPE theblock_market_up gauge"), 1u);
  EXPECT_NE(text.find("blockbuster_plugin_stale{plugin=\"compute\"} 1"), std::string::npos);
  EXPECT_NE(text.find("blockbuster_plugin_data_age_seconds{plugin=\"network\"} 9"),
            std::string::npos);

  // Fresh again: the series are back with their current values.
  ASSERT_TRUE(m.applyPluginMetric("network", gauge("theblock_block_height", 50)).ok());
  fresh = {{"compute", 0.1, false}, {"network", 0.1, false}, {"storage", 0.1, false}};
  text = m.serialize();
  EXPECT_NE(text.find("theblock_block_height 50"), std::string::npos) << text;
  EXPECT_NE(text.find("theblock_market_up{market=\"compute\"} 1"), std::string::npos) << text;
}

// The host maps the registry's typed result to the SDK's codes: a series past the plugin's cap
// is BB_ERR_LIMIT (try later, or use fewer series), a bad metric BB_ERR_INVALID.
TEST(Metrics, TheHostAnswersLimitForTheSeriesCapAndInvalidForABadMetric) {
  bb::Metrics metrics("x", 1);
  bb::HostServices services;
  services.metrics = &metrics;
  bb::PluginRuntime runtime(bb::loadPlugin(std::string(BB_FIXTURE_DIR) + "/good.so"),
                            bb::PluginConfig{}, services);
  const auto send = [&](const char* name, const char* label_value, double value) {
    const char* label_names[] = {"k"};
    const char* label_values[] = {label_value};
    bb_metric m{};
    m.struct_size = sizeof m;
    m.name = name;
    m.help = "help";
    m.kind = BB_METRIC_GAUGE;
    m.op = BB_METRIC_SET;
    m.label_names = label_names;
    m.label_values = label_values;
    m.label_count = 1;
    m.value = value;
    return runtime.hostMetric(&m);
  };
  EXPECT_EQ(send("theblock_x", "a", 1), BB_OK);
  EXPECT_EQ(send("theblock_x", "a", 2), BB_OK);  // the same series: not capped
  EXPECT_EQ(send("theblock_x", "b", 1), BB_ERR_LIMIT);
  EXPECT_EQ(send("bad-name", "a", 1), BB_ERR_INVALID);
  EXPECT_EQ(send("theblock_y", "a", std::nan("")), BB_ERR_INVALID);
  EXPECT_EQ(metrics.pluginSeries("good"), 1u);
}
