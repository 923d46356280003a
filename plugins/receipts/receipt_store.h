// The receipts plugin's durable store: one SQLite file (WAL mode) holding every ingested receipt
// and the ingest cursors. Plain C++ and Poco::Data only (no SDK include), so that it is tested
// alone against real files.
//
// Exactly-once ingest: a batch of receipts and the cursors that it moves are written in ONE
// transaction, and rows dedupe on their id (INSERT OR IGNORE). Re-reading the last height after a
// crash therefore adds nothing twice, and a cursor never gets ahead of the rows it covers.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

namespace Poco {
namespace Data {
class Session;
}
}  // namespace Poco

namespace blockbuster {
namespace receipts {

/// The four markets a receipt can belong to, in the order the API lists them.
inline const std::vector<std::string>& marketNames() {
  static const std::vector<std::string> kMarkets{"compute", "storage", "energy", "ad"};
  return kMarkets;
}

/// One receipt in canonical form. An absent optional is a value the node did not give (JSON
/// null in the API), never a made-up 0.
struct StoredReceipt {
  std::string id;      ///< unique across markets and sources
  std::string market;  ///< one of marketNames()
  std::optional<int64_t> block_height;
  std::optional<int64_t> timestamp;  ///< unix seconds
  std::optional<std::string> provider;
  std::optional<std::string> consumer;
  std::optional<std::string> amount;  ///< JSON number text, exactly as the node wrote it
  std::optional<std::string> status;
  std::string details = "null";  ///< JSON text: the raw entry the receipt was made from
  int64_t ingested_at = 0;       ///< unix seconds (set by the store on insert)
};

/// How many receipts to keep. 0 disables a limit.
struct RetentionPolicy {
  int64_t max_receipts = 1000000;
  int64_t days = 0;  ///< drop receipts whose timestamp (or ingest time) is older
};

/// A page request. `market` empty = every market. `before` (a cursor: a page's `next`) asks
/// for the receipts stored before that one, newest first, instead of `offset`.
struct ReceiptQuery {
  int64_t limit = 100;
  int64_t offset = 0;
  std::string market;
  std::optional<int64_t> before;
};

/// A page and the true number of receipts matching the filter.
struct ReceiptPage {
  std::vector<StoredReceipt> receipts;  ///< newest first
  int64_t total = 0;
  int64_t offset = 0;           ///< of the first receipt (the one asked, or the cursor's)
  std::optional<int64_t> next;  ///< cursor of the next page; none on the last page
};

/// What one committed batch changed.
struct IngestOutcome {
  std::map<std::string, int64_t> inserted;  ///< per market, only markets with new rows
  int64_t inserted_total = 0;
  int64_t duplicates = 0;  ///< rows already present (re-read), ignored
};

/// Figures for the "store" section.
struct StoreStats {
  std::string path;
  int64_t size_bytes = 0;  ///< database file plus its WAL
  int64_t receipts = 0;
  std::map<std::string, int64_t> by_market;  ///< every market, 0 when none
  std::optional<int64_t> max_block_height;
  int schema_version = 0;
  int64_t pruned_total = 0;  ///< rows removed by retention since this process opened the file
};

/// The store. Thread-safe: one writer at a time (ingest, prune, setCursor serialise on a mutex),
/// any number of concurrent readers, each on its own SQLite connection from a small pool, so a
/// reader never waits for the writer (WAL). Owns its connections; the file outlives it.
///
/// Order index: the store keeps every receipt's `seq` in memory, oldest first, overall and per
/// market (8 bytes each, twice: 16 MB at a million receipts), built from the (market, seq) index
/// when the file is opened and kept up to date by every write. The receipt at offset k is then
/// found at once (the k-th newest seq), and a page is one range read of `limit` rows on an index
/// (`seq <= that`), whatever the offset; totals are the lists' sizes, exact, without COUNT(*).
class ReceiptStore {
 public:
  /// The current schema version; opening an older file migrates it, a newer one is refused.
  static constexpr int kSchemaVersion = 1;

  /// Opens (creating if needed, with its parent directory) the file at `path`. Throws
  /// std::runtime_error saying what to fix when it cannot be opened or migrated.
  ReceiptStore(const std::string& path, RetentionPolicy retention, size_t readers = 4);
  ~ReceiptStore();
  ReceiptStore(const ReceiptStore&) = delete;
  ReceiptStore& operator=(const ReceiptStore&) = delete;

  /// Inserts `batch` (rows whose id exists are ignored) and sets `cursors` in one transaction;
  /// either all of it is durable or none. Rows are inserted in the order given: give them
  /// oldest first, so that the store's sequence is newest-last. `now` stamps ingested_at.
  IngestOutcome ingest(const std::vector<StoredReceipt>& batch,
                       const std::map<std::string, std::string>& cursors, int64_t now);

  /// Removes the oldest receipts beyond the retention policy, in its own transaction. Returns
  /// how many were removed.
  int64_t prune(int64_t now);

  /// A durable cursor, or nullopt when never set.
  std::optional<std::string> cursor(const std::string& name) const;
  /// Every cursor.
  std::map<std::string, std::string> cursors() const;

  /// A page of receipts, newest first, with the true total for the filter (offset past the end
  /// gives an empty page and the true total). Reads `limit` rows whatever the offset.
  ReceiptPage query(const ReceiptQuery& q) const;
  /// Receipts stored (of `market`, or all when empty), from the order index.
  int64_t count(const std::string& market = "") const;

  /// Number of receipts with block_height >= `height` (of `market`, or all when empty).
  int64_t countFromHeight(int64_t height, const std::string& market = "") const;
  /// How many of `ids` are stored.
  int64_t countIds(const std::vector<std::string>& ids) const;

  StoreStats stats() const;
  const std::string& path() const noexcept { return path_; }
  const RetentionPolicy& retention() const noexcept { return retention_; }
  /// Bumped by every write that changed something; a reader may cache what it rendered from
  /// the store under this number.
  uint64_t version() const noexcept { return version_.load(); }

 private:
  struct Reader;
  class ReaderLease;
  void migrate();
  ReaderLease lease() const;
  /// Reads the order index from the file (under the write lock, or before any reader exists).
  void loadIndex();
  /// The seqs of `market` (or all), oldest first. Under index_mutex_.
  const std::vector<int64_t>& orderOf(const std::string& market) const;

  std::string path_;
  RetentionPolicy retention_;
  mutable std::mutex write_mutex_;
  std::unique_ptr<Poco::Data::Session> writer_;
  mutable std::mutex pool_mutex_;
  mutable std::condition_variable pool_cv_;
  mutable std::vector<std::unique_ptr<Reader>> idle_readers_;
  mutable std::shared_mutex index_mutex_;
  std::vector<int64_t> order_;                             ///< every seq, oldest first
  std::map<std::string, std::vector<int64_t>> by_market_;  ///< the same, per market
  int64_t max_seq_ = 0;  ///< highest seq indexed (new rows have higher ones); writer only
  std::atomic<uint64_t> version_{1};
  std::atomic<int64_t> pruned_total_{0};
  int schema_version_ = 0;
};

}  // namespace receipts
}  // namespace blockbuster
