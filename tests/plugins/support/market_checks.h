// What the four market plugins' tests share: recorded answers from a fixture folder, a report's
// metrics and features by name, and the checks every report must pass whatever the node said.
#ifndef BLOCKBUSTER_TESTS_PLUGINS_SUPPORT_MARKET_CHECKS_H_
#define BLOCKBUSTER_TESTS_PLUGINS_SUPPORT_MARKET_CHECKS_H_

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "fixture.h"
#include "market_common.h"

namespace blockbuster::markets::checks {

/// One fixture folder of recorded answers (an object of method -> answer, as
/// answersFromRecording reads it).
class Fixtures {
 public:
  explicit Fixtures(std::string dir) : dir_(std::move(dir)) {}
  /// The JSON of `name`; a missing file fails the test.
  Json json(const std::string& name) const { return bbtest::readFixture(dir_, name); }
  /// The answers recorded in `name`.
  Answers answers(const std::string& name) const { return answersFromRecording(json(name)); }

 private:
  std::string dir_;
};

/// The metric `name` of a report (with `status` as its second label's value when given).
inline const MetricPoint* metric(const MarketReport& r, const std::string& name,
                                 const std::string& status = "") {
  for (const auto& m : r.metrics) {
    if (m.name != name) continue;
    if (!status.empty() && (m.labels.size() < 2 || m.labels[1].second != status)) continue;
    return &m;
  }
  return nullptr;
}

/// The feature `name` of a report; its absence fails the test.
inline double feature(const MarketReport& r, const std::string& name) {
  for (const auto& f : r.features)
    if (f.name == name) return f.value;
  ADD_FAILURE() << "no feature " << name;
  return 0;
}

/// What a market publishes: the body members every report has, the descriptive members that
/// may be anything, and which metric and feature carry which body member.
struct MarketShape {
  std::string label;  ///< the market label of its labelled metrics
  std::vector<std::string> fields;
  std::set<std::string> info;
  std::vector<std::pair<std::string, std::string>> metrics;   ///< metric -> body member
  std::vector<std::pair<std::string, std::string>> features;  ///< feature -> body member
};

/// Every null in the body has a reason and every known figure none, every guide field is
/// present, "error" is there exactly when unavailable, every metric or feature of an unknown
/// figure is NaN (removed), never 0, the status series say the status, and every metric has a
/// help text and, when labelled, the market's label.
inline void expectConsistent(const MarketReport& r, const MarketShape& shape) {
  const Json b = r.body();
  for (const std::string& f : shape.fields)
    EXPECT_TRUE(b.contains(f)) << "body lacks " << f << ": " << b.dump();
  for (const char* f : {"status", "profile", "unavailable"})
    EXPECT_TRUE(b.contains(f)) << "body lacks " << f << ": " << b.dump();
  for (const auto& m : b.asObject()) {
    if (m.first == "profile" || m.first == "error" || shape.info.count(m.first)) continue;
    if (m.second.isNull())
      EXPECT_TRUE(b["unavailable"][m.first].isString()) << m.first << " null without reason";
    else
      EXPECT_FALSE(b["unavailable"].contains(m.first)) << m.first << " known but listed";
  }
  EXPECT_EQ(b.contains("error"), r.status == Status::kUnavailable);
  for (const auto& [name, member] : shape.metrics) {
    const MetricPoint* m = metric(r, name);
    ASSERT_NE(m, nullptr) << "no metric " << name;
    EXPECT_EQ(std::isnan(m->value), b[member].isNull()) << name << " / " << member;
  }
  for (const auto& [name, member] : shape.features)
    EXPECT_EQ(std::isnan(feature(r, name)), b[member].isNull()) << name << " / " << member;
  ASSERT_NE(metric(r, "theblock_market_up"), nullptr);
  EXPECT_EQ(metric(r, "theblock_market_up")->value, r.status == Status::kUnavailable ? 0 : 1);
  int statusSeries = 0;
  for (Status s : {Status::kHealthy, Status::kIdle, Status::kUnavailable}) {
    const MetricPoint* m = metric(r, "theblock_market_status", statusName(s));
    ASSERT_NE(m, nullptr) << "no status series " << statusName(s);
    EXPECT_EQ(m->value, r.status == s ? 1 : 0);
  }
  for (const auto& m : r.metrics) {
    EXPECT_EQ(m.name.rfind("theblock_", 0), 0u) << m.name;
    EXPECT_FALSE(m.help.empty()) << m.name;
    if (m.name == "theblock_market_status") ++statusSeries;
    if (!m.labels.empty()) {
      EXPECT_EQ(m.labels[0].first, "market") << m.name;
      EXPECT_EQ(m.labels[0].second, shape.label) << m.name;
    }
  }
  EXPECT_EQ(statusSeries, 3);
}

}  // namespace blockbuster::markets::checks

#endif  // BLOCKBUSTER_TESTS_PLUGINS_SUPPORT_MARKET_CHECKS_H_
