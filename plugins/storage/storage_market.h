// Storage market logic: from recorded answers of storage.* (and governor.status) to the guide's
// storage object of GET /theblock/markets/health. No SDK wrapper include: unit-tested on
// recorded answers alone.
#ifndef BLOCKBUSTER_PLUGINS_STORAGE_STORAGE_MARKET_H_
#define BLOCKBUSTER_PLUGINS_STORAGE_STORAGE_MARKET_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "market_base.h"

namespace blockbuster::markets {

inline constexpr const char* kStorageStats = "storage.stats";
inline constexpr const char* kStorageDiscover = "storage.discover_providers";
inline constexpr const char* kStorageManifests = "storage.manifests";
inline constexpr const char* kStorageIncentives = "storage_incentives";

/// Options of the storage plugin.
struct StorageOptions {
  bool governor = true;           ///< also read governor.status (capacity_used on the real node)
  int64_t provider_limit = 1000;  ///< `limit` of storage.discover_providers
  int64_t manifest_limit = 1000;  ///< `limit` of storage.manifests (the node caps it at 1000)
  /// Seconds between two reads of storage.discover_providers and storage.manifests. Each opens
  /// the real node's storage pipeline and leaks one node thread (a storage-repair-loop that
  /// never ends): 6 h leaks 2 x 4 = 8 threads a day. Floor 600 s, the agent's method policy.
  int64_t discovery_interval = 21600;
};

/// Remembers the previous sample (to see stored bytes moving) and the pipeline reads' answers;
/// MarketBase the detected profile and update(). Not thread-safe: one instance per plugin
/// instance, called from its collect() only.
class StorageMarket final : public MarketBase {
 public:
  /// Throws std::invalid_argument when a limit is out of range (the message names the option).
  explicit StorageMarket(StorageOptions options = {});

  /// The calls to make this cycle, for the profile detected so far. Never storage.audit: it
  /// files slashing reports on the real node.
  std::vector<Call> plan() const;
  /// A pipeline-opening read the node has not answered (yet) does not fail the cycle: its
  /// figures keep their last value and their own age (`as_of`).
  bool tolerates(const std::string& method) const {
    return method == kStorageDiscover || method == kStorageManifests;
  }
  /// Unix seconds now; replaceable for tests.
  void setClock(std::function<double()> clock) { clock_ = std::move(clock); }

 private:
  // The last answer of one pipeline-opening read, kept between its reads.
  struct Kept {
    std::optional<Json> value;
    double as_of = 0;  ///< unix seconds of the answer
    std::string why;   ///< why there is no value, or why the last read failed
  };
  bool due(const Kept& k) const;
  void keep(const Answers& answers, const char* method, Kept& k);
  Profile shapeOf(const Json& stats) const override;
  void spec(const Json& stats, MarketReport& r) override;
  void theblock(const Json& none, const Answers& answers, MarketReport& r) override;
  void addFigureMetrics(MarketReport& r) const override;
  void forget() override { prev_stored_.reset(); }
  void lost(Profile was) override;
  void decide(MarketReport& r);

  StorageOptions options_;
  std::optional<double> prev_stored_;
  std::function<double()> clock_;
  Kept discover_, manifests_;
};

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_STORAGE_STORAGE_MARKET_H_
