#include "metrics/metrics.h"

#include <gtest/gtest.h>

#include <cmath>

namespace {

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
  EXPECT_EQ(m.applyPluginMetric("network", gauge("theblock_peers", 23)), "");
  std::string text = m.serialize();
  EXPECT_NE(text.find("# HELP theblock_peers help of theblock_peers"), std::string::npos);
  EXPECT_NE(text.find("theblock_peers 23"), std::string::npos) << text;
  EXPECT_NE(text.find("blockbuster_build_info{version=\"1.2.3\"} 1"), std::string::npos);
  EXPECT_NE(text.find("process_resident_memory_bytes"), std::string::npos);
  auto remove = gauge("theblock_peers", 0);
  remove.op = bb::MetricUpdate::Op::Remove;
  EXPECT_EQ(m.applyPluginMetric("network", remove), "");
  EXPECT_EQ(m.serialize().find("theblock_peers 23"), std::string::npos);
  EXPECT_EQ(m.serialize().find("theblock_peers 0"), std::string::npos);
}

TEST(Metrics, RefusesInvalidAndReservedNamesAndMismatches) {
  bb::Metrics m("x");
  EXPECT_NE(m.applyPluginMetric("p", gauge("bad-name", 1)), "");
  EXPECT_NE(m.applyPluginMetric("p", gauge("blockbuster_fake", 1)), "");
  EXPECT_NE(m.applyPluginMetric("p", gauge("ok_name", 1, {{"__reserved", "x"}})), "");
  EXPECT_EQ(m.applyPluginMetric("p", gauge("ok_name", 1, {{"market", "a"}})), "");
  EXPECT_NE(m.applyPluginMetric("p", gauge("ok_name", 1, {{"other", "a"}})), "");
  auto counter = gauge("ok_name", 1, {{"market", "a"}});
  counter.counter = true;
  EXPECT_NE(m.applyPluginMetric("p", counter), "");
  EXPECT_NE(m.applyPluginMetric("p", gauge("nan_value", std::nan(""))), "");
  EXPECT_NE(m.serialize().find("blockbuster_plugin_metric_errors_total{plugin=\"p\"} 6"),
            std::string::npos)
      << m.serialize();
}

TEST(Metrics, CapsTheSeriesOfAPluginAndCountsTheDrops) {
  bb::Metrics m("x", 3);
  for (int i = 0; i < 5; ++i)
    m.applyPluginMetric("p", gauge("theblock_x", i, {{"k", std::to_string(i)}}));
  EXPECT_EQ(m.pluginSeries("p"), 3u);
  EXPECT_NE(m.serialize().find("blockbuster_plugin_series_dropped_total{plugin=\"p\"} 2"),
            std::string::npos);
  // Another plugin has its own budget.
  EXPECT_EQ(m.applyPluginMetric("q", gauge("theblock_y", 1)), "");
  m.removePluginSeries("p");
  EXPECT_EQ(m.pluginSeries("p"), 0u);
  EXPECT_EQ(m.serialize().find("theblock_x{"), std::string::npos);
}

TEST(Metrics, CounterTotalsFollowTheNodeAndSurviveAReset) {
  bb::Metrics m("x");
  auto total = gauge("theblock_bytes_total", 100);
  total.counter = true;
  EXPECT_EQ(m.applyPluginMetric("p", total), "");
  total.value = 250;
  m.applyPluginMetric("p", total);
  EXPECT_NE(m.serialize().find("theblock_bytes_total 250"), std::string::npos) << m.serialize();
  total.value = 40;  // the node restarted
  m.applyPluginMetric("p", total);
  EXPECT_NE(m.serialize().find("theblock_bytes_total 40"), std::string::npos) << m.serialize();
}

}  // namespace
