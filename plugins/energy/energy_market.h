// Energy market logic: from recorded answers of energy.market_state (and governor.status) to the
// guide's energy object of GET /theblock/markets/health. energy.market_state exists on both
// profiles with different shapes, so the profile is told by the shape. No SDK wrapper include:
// unit-tested on recorded answers alone.
#ifndef BLOCKBUSTER_PLUGINS_ENERGY_ENERGY_MARKET_H_
#define BLOCKBUSTER_PLUGINS_ENERGY_ENERGY_MARKET_H_

#include <optional>
#include <vector>

#include "market_base.h"

namespace blockbuster::markets {

inline constexpr const char* kEnergyMarketState = "energy.market_state";
/// The real node's "energy reads need the bearer token" error code.
inline constexpr int64_t kEnergyUnauthorized = -33009;
/// The real node's "energy market in rehearsal" error code.
inline constexpr int64_t kEnergyRehearsal = -33020;

/// Options of the energy plugin.
struct EnergyOptions {
  bool governor = true;  ///< also read governor.status on the theblock profile
};

/// Remembers the previous sample (to see credits and receipts move); MarketBase the detected
/// profile and update(). Not thread-safe: one instance per plugin instance, called from its
/// collect() only.
class EnergyMarket final : public MarketBase {
 public:
  explicit EnergyMarket(EnergyOptions options = {});

  /// The calls to make this cycle, for the profile detected so far.
  std::vector<Call> plan() const;

 private:
  Profile shapeOf(const Json& state) const override;
  void spec(const Json& state, MarketReport& r) override;
  void theblock(const Json& state, const Answers& answers, MarketReport& r) override;
  void addFigureMetrics(MarketReport& r) const override;
  void forget() override;
  bool explainFailure(const Answer& state, MarketReport& r) override;

  EnergyOptions options_;
  std::optional<double> prev_credits_;
  std::optional<double> prev_receipts_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_ENERGY_ENERGY_MARKET_H_
