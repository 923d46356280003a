#include "ads_market.h"

#include <string>

namespace blockbuster::markets {
namespace {

// The real node's "ad market not running" answer to `method`, if that is what it gave.
bool notRunning(const Answers& a, const char* method) {
  auto it = a.find(method);
  if (it == a.end()) return false;
  Answer n = normalise(it->second);
  return n.ok && saysUnavailable(n.value);
}

void addFigures(MarketReport& r) {
  auto f = [&](const char* name) { return valueOrNaN(r, name); };
  r.metrics.push_back({"theblock_ads_active_campaigns",
                       "Ad campaigns with budget left to spend.",
                       f("active_campaigns"),
                       {}});
  r.metrics.push_back({"theblock_ads_impressions",
                       "Ad impressions (spec: the node's total; real node: the current epoch's).",
                       f("total_impressions"),
                       {}});
  r.metrics.push_back({kRevenueMetric, kRevenueHelp, f("total_revenue"), {{"market", "ad"}}});
  r.metrics.push_back({"theblock_ads_avg_cpm",
                       "Average spend per 1000 ad impressions, in the node's currency unit.",
                       f("avg_cpm"),
                       {}});
  r.metrics.push_back({kUtilizationMetric, kUtilizationHelp, f("utilization"), {{"market", "ad"}}});
  r.features.push_back({"campaigns", f("active_campaigns")});
  r.features.push_back({"impressions", f("total_impressions")});
  r.features.push_back({"avg_cpm", f("avg_cpm")});
}

}  // namespace

AdsMarket::AdsMarket(AdsOptions options)
    : MarketBase({"ad",
                  {"active_campaigns", "total_impressions", "total_revenue", "avg_cpm"},
                  {"campaigns", "epoch_spend", "utilization"},
                  kAdsStats,
                  {kAdsInventory, kAdsBudget},
                  "the node serves no ad market: neither ad_market.stats nor ad_market.inventory "
                  "and ad_market.budget (all answered method not found)"}),
      options_(options) {}

Profile AdsMarket::shapeOf(const Json& v) const {
  if (!v.isObject()) return Profile::kUnknown;
  for (const char* k : {"active_campaigns", "total_impressions", "total_revenue", "avg_cpm"})
    if (v.contains(k)) return Profile::kSpec;
  return Profile::kUnknown;
}

void AdsMarket::addFigureMetrics(MarketReport& r) const { addFigures(r); }

void AdsMarket::forget() {
  prev_impressions_.reset();
  prev_revenue_.reset();
}

std::vector<Call> AdsMarket::plan() const {
  std::vector<Call> calls;
  if (profile_ != Profile::kTheBlock) calls.push_back({kAdsStats, Json::object()});
  if (profile_ != Profile::kSpec) {
    calls.push_back({kAdsInventory, Json::object()});
    calls.push_back({kAdsBudget, Json::object()});
    if (options_.governor) calls.push_back({kGovernorMethod, Json::object()});
  }
  return calls;
}

void AdsMarket::spec(const Json& stats, MarketReport& r) {
  r.set("active_campaigns", readCount(stats, "active_campaigns", kAdsStats));
  r.set("total_impressions", readCount(stats, "total_impressions", kAdsStats));
  r.set("total_revenue", readCount(stats, "total_revenue", kAdsStats));
  r.set("avg_cpm", readCount(stats, "avg_cpm", kAdsStats));
  r.extras.clear();  // the real node's extra figures do not exist on this profile
  decide(r, false);
}

void AdsMarket::theblock(const Json&, const Answers& answers, MarketReport& r) {
  if (notRunning(answers, kAdsInventory) || notRunning(answers, kAdsBudget)) {
    r.markUnavailable(std::string("the node's ad market is not running (") +
                      (notRunning(answers, kAdsInventory) ? kAdsInventory : kAdsBudget) +
                      " answered {\"status\":\"unavailable\"})");
    return;
  }
  std::string why;
  if (auto inv = objectAnswer(answers, kAdsInventory, &why)) {
    const Json& list = (*inv)["campaigns"];
    const char* src = "ad_market.inventory.campaigns";
    if (!list.isArray()) {
      r.set("active_campaigns", Figure::none(std::string(src) + " is not a list"));
      r.set("campaigns", Figure::none(std::string(src) + " is not a list"));
    } else {
      // Active: budget left to spend. A campaign whose budget cannot be read makes the count
      // unknown rather than guessed.
      Figure active = Figure::of(0);
      size_t i = 0;
      for (const Json& c : list.asArray()) {
        Figure left = readCount(c, "remaining_budget_usd_micros",
                                std::string(src) + "[" + std::to_string(i++) + "]");
        if (!left.known()) {
          active = left;
          break;
        }
        if (*left.value > 0) *active.value += 1;
      }
      r.set("active_campaigns", active);
      r.set("campaigns", Figure::of(static_cast<double>(list.size())));
    }
  } else {
    r.set("active_campaigns", Figure::none(why));
    r.set("campaigns", Figure::none(why));
  }

  if (auto bud = objectAnswer(answers, kAdsBudget, &why)) {
    Figure impressions =
        sumOf((*bud)["campaigns"], "epoch_impressions", "ad_market.budget.campaigns");
    const Json& summary = (*bud)["summary"];
    const char* src = "ad_market.budget.summary";
    Figure spend = readCount(summary, "epoch_spend_total", src);
    r.set("total_impressions", impressions);
    r.set("total_revenue", readCount(summary, "realized_spend_total", src));
    r.set("epoch_spend", spend);
    if (!impressions.known())
      r.set("avg_cpm", impressions);
    else if (!spend.known())
      r.set("avg_cpm", spend);
    else if (*impressions.value <= 0)
      r.set("avg_cpm", Figure::none("no impressions this epoch: no cost per mille"));
    else
      r.set("avg_cpm", Figure::of(*spend.value / *impressions.value * 1000.0));
  } else {
    for (const char* f : {"total_impressions", "total_revenue", "epoch_spend", "avg_cpm"})
      r.set(f, Figure::none(why));
  }
  r.set("utilization", governorUtilization(answers, "ad"));
  r.info["impressions_window"] = "current epoch";
  decide(r, true);
}

// Healthy: a campaign has budget to spend, or impressions or revenue rose since the previous
// sample; on the real node impressions are the current epoch's, so any is activity now.
void AdsMarket::decide(MarketReport& r, bool impressionsAreCurrent) {
  const Figure& impressions = *r.figure("total_impressions");
  const Figure& revenue = *r.figure("total_revenue");
  bool moved = rose(prev_impressions_, impressions) || rose(prev_revenue_, revenue);
  if (impressions.known()) prev_impressions_ = impressions.value;
  if (revenue.known()) prev_revenue_ = revenue.value;
  std::vector<const Figure*> activity{r.figure("active_campaigns")};
  if (impressionsAreCurrent) activity.push_back(&impressions);
  r.status = decideStatus(activity, moved, &r.error);
  if (r.status == Status::kUnavailable) r.clearFigures(r.error);
}

}  // namespace blockbuster::markets
