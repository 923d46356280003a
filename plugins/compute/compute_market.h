// Compute market logic: from recorded answers of compute_market.* (and governor.status) to the
// guide's compute object of GET /theblock/markets/health. No SDK wrapper include: unit-tested on
// recorded answers alone.
#ifndef BLOCKBUSTER_PLUGINS_COMPUTE_COMPUTE_MARKET_H_
#define BLOCKBUSTER_PLUGINS_COMPUTE_COMPUTE_MARKET_H_

#include <optional>
#include <string>
#include <vector>

#include "market_base.h"

namespace blockbuster::markets {

inline constexpr const char* kComputeStats = "compute_market.stats";
inline constexpr const char* kComputeScheduler = "compute_market.scheduler_stats";
inline constexpr const char* kComputeBalances = "compute_market.provider_balances";
/// The compute settlement ledger (the receipts plugin reads it too: identical calls share one
/// request). A slow read (the whole ledger, unpaged) in the agent's method policy.
inline constexpr const char* kSettlementAudit = "settlement.audit";

/// Options of the compute plugin.
struct ComputeOptions {
  bool governor = true;  ///< also read governor.status on the theblock profile
};

/// Remembers the previous sample (to see activity moving); MarketBase the detected profile and
/// update(). Not thread-safe: one instance per plugin instance, called from its collect() only.
class ComputeMarket final : public MarketBase {
 public:
  explicit ComputeMarket(ComputeOptions options = {});

  /// The calls to make this cycle, for the profile detected so far.
  std::vector<Call> plan() const;
  /// settlement.audit left unanswered (slow on a long ledger) costs total_revenue only.
  bool tolerates(const std::string& method) const { return method == kSettlementAudit; }

 private:
  Profile shapeOf(const Json& stats) const override;
  void spec(const Json& stats, MarketReport& r) override;
  void theblock(const Json& stats, const Answers& answers, MarketReport& r) override;
  void addFigureMetrics(MarketReport& r) const override;
  void forget() override;

  ComputeOptions options_;
  std::optional<double> prev_revenue_;
  std::optional<double> prev_units_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_COMPUTE_COMPUTE_MARKET_H_
