// Energy market logic: from recorded answers of energy.market_state (and governor.status) to the
// guide's energy object of GET /theblock/markets/health. energy.market_state exists on both
// profiles with different shapes, so the profile is told by the shape. No SDK wrapper include:
// unit-tested on recorded answers alone.
#ifndef BLOCKBUSTER_PLUGINS_ENERGY_ENERGY_MARKET_H_
#define BLOCKBUSTER_PLUGINS_ENERGY_ENERGY_MARKET_H_

#include <optional>
#include <vector>

#include "market_common.h"

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

/// Remembers the detected profile and the previous sample (to see credits and receipts move).
/// Not thread-safe: one instance per plugin instance, called from its collect() only.
class EnergyMarket {
 public:
  explicit EnergyMarket(EnergyOptions options = {}) : options_(options) {}

  /// The calls to make this cycle, for the profile detected so far.
  std::vector<Call> plan() const;
  /// Builds this cycle's report from the answers to plan() and updates what it remembers.
  Outcome update(const Answers& answers);
  Profile profile() const noexcept { return profile_; }

 private:
  void spec(const Json& state, MarketReport& r);
  void theblock(const Json& state, const Answers& answers, MarketReport& r);
  void forget();

  EnergyOptions options_;
  Profile profile_ = Profile::kUnknown;
  std::optional<double> prev_credits_;
  std::optional<double> prev_receipts_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_ENERGY_ENERGY_MARKET_H_
