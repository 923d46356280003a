// Ad market logic: from recorded answers of ad_market.* (and governor.status) to the guide's ads
// object of GET /theblock/markets/health. No SDK wrapper include: unit-tested on recorded
// answers alone.
#ifndef BLOCKBUSTER_PLUGINS_ADS_ADS_MARKET_H_
#define BLOCKBUSTER_PLUGINS_ADS_ADS_MARKET_H_

#include <optional>
#include <vector>

#include "market_base.h"

namespace blockbuster::markets {

inline constexpr const char* kAdsStats = "ad_market.stats";
inline constexpr const char* kAdsInventory = "ad_market.inventory";
inline constexpr const char* kAdsBudget = "ad_market.budget";

/// Options of the ads plugin.
struct AdsOptions {
  bool governor = true;  ///< also read governor.status on the theblock profile
};

/// Remembers the previous sample (to see impressions and revenue move); MarketBase the detected
/// profile and update(). Not thread-safe: one instance per plugin instance, called from its
/// collect() only.
class AdsMarket final : public MarketBase {
 public:
  explicit AdsMarket(AdsOptions options = {});

  /// The calls to make this cycle, for the profile detected so far.
  std::vector<Call> plan() const;

 private:
  Profile shapeOf(const Json& stats) const override;
  void spec(const Json& stats, MarketReport& r) override;
  void theblock(const Json& none, const Answers& answers, MarketReport& r) override;
  void addFigureMetrics(MarketReport& r) const override;
  void forget() override;
  void decide(MarketReport& r, bool impressionsAreCurrent);

  AdsOptions options_;
  std::optional<double> prev_impressions_;
  std::optional<double> prev_revenue_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_ADS_ADS_MARKET_H_
