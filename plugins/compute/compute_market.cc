#include "compute_market.h"

#include <algorithm>
#include <string>

namespace blockbuster::markets {
namespace {

void addFigures(MarketReport& r) {
  auto f = [&](const char* name) { return valueOrNaN(r, name); };
  r.metrics.push_back(
      {"theblock_compute_active_jobs", "Compute jobs running now.", f("active_jobs"), {}});
  r.metrics.push_back(
      {kProvidersMetric, kProvidersHelp, f("total_providers"), {{"market", "compute"}}});
  r.metrics.push_back(
      {kUtilizationMetric, kUtilizationHelp, f("avg_utilization"), {{"market", "compute"}}});
  r.metrics.push_back({kRevenueMetric, kRevenueHelp, f("total_revenue"), {{"market", "compute"}}});
  r.metrics.push_back({"theblock_compute_backlog",
                       "Industrial compute backlog the real node reports, in compute units.",
                       f("industrial_backlog"),
                       {}});
  r.features.push_back({"active_jobs", f("active_jobs")});
  r.features.push_back({"providers", f("total_providers")});
  r.features.push_back({"utilization", f("avg_utilization")});
}

// Compute revenue on the real node: the sum of the payments (positive `delta`) in the compute
// settlement ledger. Unknown when any entry's delta is not a number (a partial sum would be
// made up).
Figure ledgerRevenue(const Answers& answers) {
  auto it = answers.find(kSettlementAudit);
  if (it == answers.end())
    return Figure::none(
        "settlement.audit is read from the second cycle on (after the profile "
        "is known)");
  const Answer a = normalise(it->second);
  if (!a.ok) return Figure::none(a.describe(kSettlementAudit));
  if (!a.value.isArray())
    return Figure::none("settlement.audit is not a list: " + excerpt(a.value));
  double sum = 0;
  size_t i = 0;
  for (const Json& e : a.value.asArray()) {
    const Json& delta = e["delta"];
    if (!delta.isNumber())
      return Figure::none("settlement.audit[" + std::to_string(i) + "].delta is not a number");
    if (delta.asDouble() > 0) sum += delta.asDouble();
    ++i;
  }
  return Figure::of(sum);
}

}  // namespace

ComputeMarket::ComputeMarket(ComputeOptions options)
    : MarketBase(
          {"compute",
           {"active_jobs", "total_providers", "avg_utilization", "total_revenue"},
           {"industrial_backlog", "industrial_units_total", "pending_jobs", "recent_matches"},
           kComputeStats,
           {},
           ""}),
      options_(options) {}

// Which profile's compute_market.stats this is. Both profiles serve the method, so the members
// decide: the real node's are industrial_* and lanes, the guide's are the four aggregates.
Profile ComputeMarket::shapeOf(const Json& v) const {
  if (!v.isObject()) return Profile::kUnknown;
  for (const char* k : {"industrial_utilization", "industrial_backlog", "lanes", "recent_matches"})
    if (v.contains(k)) return Profile::kTheBlock;
  for (const char* k : {"active_jobs", "providers", "avg_utilization", "total_revenue"})
    if (v.contains(k)) return Profile::kSpec;
  return Profile::kUnknown;
}

void ComputeMarket::addFigureMetrics(MarketReport& r) const { addFigures(r); }

void ComputeMarket::forget() {
  prev_revenue_.reset();
  prev_units_.reset();
}

std::vector<Call> ComputeMarket::plan() const {
  std::vector<Call> calls{{kComputeStats, Json::object()}};
  // Unknown: ask the real node's extra methods in the same cycle, so that detection costs no
  // extra round trip (a spec node answers them -32601, which is harmless).
  if (profile_ != Profile::kSpec) {
    calls.push_back({kComputeScheduler, Json::object()});
    calls.push_back({kComputeBalances, Json::object()});
    if (options_.governor) calls.push_back({kGovernorMethod, Json::object()});
    if (profile_ == Profile::kTheBlock) calls.push_back({kSettlementAudit, Json::object()});
  }
  return calls;
}

void ComputeMarket::spec(const Json& stats, MarketReport& r) {
  const char* src = kComputeStats;
  r.set("active_jobs", readCount(stats, "active_jobs", src));
  r.set("total_providers", readCount(stats, "providers", src));
  r.set("avg_utilization", readRatio(stats, "avg_utilization", src));
  r.set("total_revenue", readCount(stats, "total_revenue", src));
  // The real node's extra figures do not exist on this profile: leave them out of the body.
  r.extras.clear();
  const Figure& revenue = *r.figure("total_revenue");
  bool moved = rose(prev_revenue_, revenue);
  if (revenue.known()) prev_revenue_ = revenue.value;
  r.status = decideStatus({r.figure("active_jobs"), r.figure("avg_utilization")}, moved, &r.error);
  if (r.status == Status::kUnavailable) r.clearFigures(r.error);
}

void ComputeMarket::theblock(const Json& stats, const Answers& answers, MarketReport& r) {
  const char* src = kComputeStats;
  std::string why;

  if (auto sched = objectAnswer(answers, kComputeScheduler, &why))
    r.set("active_jobs", readCount(*sched, "active_jobs", kComputeScheduler));
  else
    r.set("active_jobs", Figure::none(why));

  if (auto bal = objectAnswer(answers, kComputeBalances, &why))
    r.set("total_providers", countDistinct((*bal)["providers"], {"provider"},
                                           "compute_market.provider_balances.providers"));
  else
    r.set("total_providers", Figure::none(why));

  // The governor's figure is the node's own market utilisation; industrial_utilization is the
  // backlog as a percentage of capacity, a proxy that exceeds 100 when work queues up.
  Figure gov = governorUtilization(answers, "compute");
  Figure pct = readCount(stats, "industrial_utilization", src);
  if (gov.known()) {
    r.set("avg_utilization", gov);
    r.info["utilization_source"] = "governor.status";
  } else if (pct.known()) {
    r.set("avg_utilization", Figure::of(std::min(*pct.value, 100.0) / 100.0));
    r.info["utilization_source"] = "compute_market.stats.industrial_utilization";
  } else {
    r.set("avg_utilization", Figure::none(gov.reason + "; " + pct.reason));
    r.info["utilization_source"] = nullptr;
  }
  r.set("total_revenue", ledgerRevenue(answers));
  r.info["total_revenue_source"] = "settlement.audit: sum of positive delta";

  r.set("industrial_backlog", readCount(stats, "industrial_backlog", src));
  r.set("industrial_units_total", readCount(stats, "industrial_units_total", src));
  const Json& pending = stats["pending"];
  r.set("pending_jobs", pending.isArray()
                            ? Figure::of(static_cast<double>(pending.size()))
                            : Figure::none("compute_market.stats.pending is not a list"));
  const Json& recent = stats["recent_matches"];
  if (recent.isObject()) {
    double n = 0;
    bool ok = true;
    for (const auto& lane : recent.asObject()) {
      if (!lane.second.isArray()) ok = false;
      n += static_cast<double>(lane.second.size());
    }
    r.set("recent_matches", ok ? Figure::of(n)
                               : Figure::none("compute_market.stats.recent_matches has a lane "
                                              "that is not a list"));
  } else {
    r.set("recent_matches", Figure::none("compute_market.stats.recent_matches is not an object"));
  }

  const Figure& units = *r.figure("industrial_units_total");
  bool moved = rose(prev_units_, units);
  if (units.known()) prev_units_ = units.value;
  r.status = decideStatus(
      {r.figure("active_jobs"), r.figure("avg_utilization"), r.figure("recent_matches")}, moved,
      &r.error);
  if (r.status == Status::kUnavailable) r.clearFigures(r.error);
}

}  // namespace blockbuster::markets
