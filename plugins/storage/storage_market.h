// Storage market logic: from recorded answers of storage.* (and governor.status) to the guide's
// storage object of GET /theblock/markets/health. No SDK wrapper include: unit-tested on
// recorded answers alone.
#ifndef BLOCKBUSTER_PLUGINS_STORAGE_STORAGE_MARKET_H_
#define BLOCKBUSTER_PLUGINS_STORAGE_STORAGE_MARKET_H_

#include <cstdint>
#include <optional>
#include <vector>

#include "market_common.h"

namespace blockbuster::markets {

inline constexpr const char* kStorageStats = "storage.stats";
inline constexpr const char* kStorageDiscover = "storage.discover_providers";
inline constexpr const char* kStorageManifests = "storage.manifests";

/// Options of the storage plugin.
struct StorageOptions {
  bool governor = true;           ///< also read governor.status (capacity_used on the real node)
  int64_t provider_limit = 1000;  ///< `limit` of storage.discover_providers
  int64_t manifest_limit = 1000;  ///< `limit` of storage.manifests (the node caps it at 1000)
};

/// Remembers the detected profile and the previous sample (to see stored bytes moving).
/// Not thread-safe: one instance per plugin instance, called from its collect() only.
class StorageMarket {
 public:
  /// Throws std::invalid_argument when a limit is out of range (the message names the option).
  explicit StorageMarket(StorageOptions options = {});

  /// The calls to make this cycle, for the profile detected so far. Never storage.audit: it
  /// files slashing reports on the real node.
  std::vector<Call> plan() const;
  /// Builds this cycle's report from the answers to plan() and updates what it remembers.
  Outcome update(const Answers& answers);
  Profile profile() const noexcept { return profile_; }

 private:
  void spec(const Json& stats, MarketReport& r);
  void theblock(const Answers& answers, MarketReport& r);
  void decide(MarketReport& r);

  StorageOptions options_;
  Profile profile_ = Profile::kUnknown;
  std::optional<double> prev_stored_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_STORAGE_STORAGE_MARKET_H_
