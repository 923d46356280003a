// The receipts plugin's whole behaviour behind the SDK glue: it owns the store and the
// ingestor, answers GET /theblock/receipts from the store (with a small cache of rendered
// bodies) and builds the "operations" and "store" sections. No plugin.h: unit-tested alone.
#pragma once

#include <blockbuster/json.h>

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "receipt_ingest.h"
#include "receipt_store.h"

namespace blockbuster {
namespace receipts {

struct ServiceOptions {
  std::string db_path;
  int64_t page_size = 500;
  int64_t operations_limit = 50;
  RetentionPolicy retention;
};

/// An HTTP answer: status and JSON text.
struct HttpAnswer {
  int status = 200;
  std::string body;
  /// Not in memory, and the caller may not block: call again where it may (status 0, no body).
  bool deferred() const { return status == 0; }
};

/// What one collect cycle did, for the glue's log lines, metrics and features.
struct CycleResult {
  bool ok = false;
  std::string error;                       ///< why the cycle failed (ok == false)
  IngestReport report;                     ///< meaningful when ok
  int64_t pruned = 0;                      ///< rows removed by retention this cycle
  std::optional<double> interval_seconds;  ///< since the previous cycle started
  StoreStats stats;                        ///< after the cycle
};

/// Thread-safety: collect() and the section builders are called from the agent's collect
/// thread, one at a time; handleReceipts() may run concurrently on any number of HTTP threads.
class ReceiptsService {
 public:
  /// Opens the store (throws std::runtime_error saying what to fix).
  explicit ReceiptsService(ServiceOptions options);

  /// One ingest cycle plus retention. Never throws: a failure is in the result.
  CycleResult collect(NodePort& node, int64_t now_s, double monotonic_s);

  /// GET /theblock/receipts. Thread-safe; reads only the store. With `may_block` false (an
  /// HTTP event loop) it answers only from memory (a bad query, or a page in the cache) and
  /// otherwise returns a deferred answer, never touching the file.
  HttpAnswer handleReceipts(const std::vector<std::pair<std::string, std::string>>& query,
                            int64_t now_s, bool may_block = true) const;
  /// Pages queried read from the file (cache misses), since start; for tests and metrics.
  uint64_t pagesRead() const noexcept { return pages_read_.load(); }

  /// The "operations" section body (without the agent's timestamp/age/stale stamp).
  Json operationsBody() const;
  /// The "store" section body; `stats` from the last cycle.
  Json storeBody(const StoreStats& stats) const;

  ReceiptStore& store() noexcept { return *store_; }
  Profile profile() const noexcept { return ingestor_->profile(); }

 private:
  struct Health {
    std::optional<int64_t> last_success;
    bool last_failed = false;
    std::optional<double> interval;
    std::map<std::string, std::string> unavailable;
  };
  /// The last collect's outcome. Replaced whole by each collect and read with std::atomic_load,
  /// like hot_: every receipts request reads it, on the loops and on the nice-19 store workers,
  /// and a lock held by a preempted worker kept a loop waiting up to 69 ms (docs/performance.md,
  /// "Session 8").
  std::shared_ptr<const Health> health() const { return std::atomic_load(&health_); }
  std::string renderPage(const ReceiptQuery& q) const;
  /// Renders the pages every dashboard asks (the newest 20 and 100, overall and per market)
  /// into the pinned cache after each ingest: served from memory, never deferred, until the
  /// next collect replaces them.
  void warmHotPages();

  ServiceOptions options_;
  std::unique_ptr<ReceiptStore> store_;
  std::unique_ptr<Ingestor> ingestor_;
  std::optional<double> last_cycle_start_;

  std::shared_ptr<const Health> health_ = std::make_shared<const Health>();

  /// The answer to one query but its last fields (timestamp, age and stale, added per
  /// request): it depends only on the query and the store's version, so it is rendered once.
  struct CacheEntry {
    std::string key;  ///< limit|offset or b<cursor>|market
    uint64_t version;
    std::shared_ptr<const std::string> page;
  };
  static constexpr size_t kCacheEntries = 32;
  mutable std::mutex cache_mutex_;
  mutable std::list<CacheEntry> cache_;  ///< most recently used first
  /// warmHotPages()' pages, never evicted: replaced whole (std::atomic_load / atomic_store), so
  /// that an event loop reads them without cache_mutex_. That lock is also taken by the store
  /// workers, which run at nice 19: a loop waiting for one that was preempted holding it waited
  /// as long as the scheduler kept that worker off the CPU (docs/performance.md, "Session 7").
  std::shared_ptr<const std::vector<CacheEntry>> hot_;
  mutable std::atomic<uint64_t> pages_read_{0};
};

}  // namespace receipts
}  // namespace blockbuster
