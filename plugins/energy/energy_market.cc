#include "energy_market.h"

#include <string>

namespace blockbuster::markets {
namespace {

void addFigures(MarketReport& r) {
  auto f = [&](const char* name) { return valueOrNaN(r, name); };
  r.metrics.push_back({"theblock_energy_credits",
                       "Energy credits outstanding in the market, in kWh on the real node.",
                       f("total_credits"),
                       {}});
  r.metrics.push_back({kAvgPriceMetric, kAvgPriceHelp, f("avg_price"), {{"market", "energy"}}});
  r.metrics.push_back({"theblock_energy_active_traders",
                       "Distinct buyers and sellers trading energy.",
                       f("active_traders"),
                       {}});
  r.metrics.push_back({"theblock_energy_trading_volume",
                       "Energy traded (spec: the node's volume_24h; real node: kWh delivered over "
                       "the receipts energy.market_state lists).",
                       f("trading_volume"),
                       {}});
  r.metrics.push_back(
      {kUtilizationMetric, kUtilizationHelp, f("utilization"), {{"market", "energy"}}});
  r.features.push_back({"credits", f("total_credits")});
  r.features.push_back({"avg_price", f("avg_price")});
  r.features.push_back({"traders", f("active_traders")});
  r.features.push_back({"volume", f("trading_volume")});
}

}  // namespace

EnergyMarket::EnergyMarket(EnergyOptions options)
    : MarketBase({"energy",
                  {"total_credits", "avg_price", "active_traders", "trading_volume"},
                  {"providers", "receipts", "utilization"},
                  kEnergyMarketState,
                  {},
                  ""}),
      options_(options) {}

// The real node answers lists (providers, credits, receipts), the guide's node aggregates.
Profile EnergyMarket::shapeOf(const Json& v) const {
  if (!v.isObject()) return Profile::kUnknown;
  for (const char* k : {"credits", "receipts", "providers"})
    if (v.contains(k)) return Profile::kTheBlock;
  for (const char* k : {"total_credits", "avg_price", "active_traders", "volume_24h"})
    if (v.contains(k)) return Profile::kSpec;
  return Profile::kUnknown;
}

void EnergyMarket::addFigureMetrics(MarketReport& r) const { addFigures(r); }

void EnergyMarket::forget() {
  prev_credits_.reset();
  prev_receipts_.reset();
}

std::vector<Call> EnergyMarket::plan() const {
  std::vector<Call> calls{{kEnergyMarketState, Json::object()}};
  if (profile_ != Profile::kSpec && options_.governor)
    calls.push_back({kGovernorMethod, Json::object()});
  return calls;
}

// These two codes exist only on the real node: they tell the profile even in failure.
bool EnergyMarket::explainFailure(const Answer& state, MarketReport& r) {
  if (state.code != kEnergyUnauthorized && state.code != kEnergyRehearsal) return false;
  adopt(Profile::kTheBlock);
  r.profile = profile_;
  if (state.code == kEnergyUnauthorized)
    r.markUnavailable("energy reads need the node's bearer token (" +
                      state.describe(kEnergyMarketState) +
                      "): set the agent's auth token (THEBLOCK_AUTH_TOKEN) to the node's token");
  else
    r.markUnavailable("the node's energy market is in rehearsal, not trading (" +
                      state.describe(kEnergyMarketState) + ")");
  return true;
}

void EnergyMarket::spec(const Json& state, MarketReport& r) {
  const char* src = kEnergyMarketState;
  r.set("total_credits", readCount(state, "total_credits", src));
  r.set("avg_price", readCount(state, "avg_price", src));
  r.set("active_traders", readCount(state, "active_traders", src));
  r.set("trading_volume", readCount(state, "volume_24h", src));
  r.extras.clear();  // the real node's extra figures do not exist on this profile
  const Figure& credits = *r.figure("total_credits");
  bool moved = changed(prev_credits_, credits);
  if (credits.known()) prev_credits_ = credits.value;
  r.status =
      decideStatus({r.figure("active_traders"), r.figure("trading_volume")}, moved, &r.error);
  if (r.status == Status::kUnavailable) r.clearFigures(r.error);
}

void EnergyMarket::theblock(const Json& state, const Answers& answers, MarketReport& r) {
  const Json& receipts = state["receipts"];
  r.set("total_credits", sumOf(state["credits"], "amount_kwh", "energy.market_state.credits"));
  Figure volume = sumOf(receipts, "kwh_delivered", "energy.market_state.receipts");
  Figure paid = sumOf(receipts, "price_paid", "energy.market_state.receipts");
  r.set("trading_volume", volume);
  if (!volume.known())
    r.set("avg_price", volume);
  else if (!paid.known())
    r.set("avg_price", paid);
  else if (*volume.value <= 0)
    r.set("avg_price", Figure::none("no energy delivered in the receipts the node lists yet: no "
                                    "traded price (provider asking prices are not trades)"));
  else
    r.set("avg_price", Figure::of(*paid.value / *volume.value));
  r.set("active_traders",
        countDistinct(receipts, {"buyer", "seller"}, "energy.market_state.receipts"));
  r.set("providers",
        countDistinct(state["providers"], {"provider_id"}, "energy.market_state.providers"));
  r.set("receipts", receipts.isArray()
                        ? Figure::of(static_cast<double>(receipts.size()))
                        : Figure::none("energy.market_state.receipts is not a list"));
  r.set("utilization", governorUtilization(answers, "energy"));

  const Figure& credits = *r.figure("total_credits");
  const Figure& count = *r.figure("receipts");
  bool moved = changed(prev_credits_, credits) || rose(prev_receipts_, count);
  if (credits.known()) prev_credits_ = credits.value;
  if (count.known()) prev_receipts_ = count.value;
  r.status =
      decideStatus({r.figure("active_traders"), r.figure("trading_volume")}, moved, &r.error);
  if (r.status == Status::kUnavailable) r.clearFigures(r.error);
}

}  // namespace blockbuster::markets
