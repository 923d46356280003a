#include "receipt_store.h"

#include <Poco/Data/SQLite/Connector.h>
#include <Poco/Data/SQLite/Utility.h>
#include <Poco/Data/Session.h>
#include <Poco/Data/Statement.h>
#include <Poco/Exception.h>
#include <Poco/Nullable.h>
#include <sqlite3.h>

#include <algorithm>
#include <filesystem>
#include <stdexcept>
#include <utility>

namespace blockbuster {
namespace receipts {

using Poco::Data::Session;
using Poco::Data::Statement;
using Poco::Data::Keywords::into;
using Poco::Data::Keywords::now;
using Poco::Data::Keywords::use;

namespace {

// Seconds a connection waits on a lock before failing. Only the single writer and SQLite's own
// checkpoints take write locks, so this is a bound on a stall, not an expected wait.
constexpr size_t kBusyTimeoutSeconds = 10;

// Each migration brings the schema from version (index) to version (index + 1).
const std::vector<std::vector<std::string>>& migrations() {
  static const std::vector<std::vector<std::string>> kMigrations{
      {
          // v1. `seq` gives a stable newest-first order (AUTOINCREMENT never reuses a number,
          // even after pruning); `id` is the dedupe key (SQLite allows one INTEGER PRIMARY KEY
          // AUTOINCREMENT per table, so the id is UNIQUE rather than the primary key).
          "CREATE TABLE receipts ("
          " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
          " id TEXT NOT NULL UNIQUE,"
          " market TEXT NOT NULL,"
          " block_height INTEGER,"
          " timestamp INTEGER,"
          " provider TEXT,"
          " consumer TEXT,"
          " amount NUMERIC,"
          " status TEXT,"
          " details TEXT NOT NULL,"
          " ingested_at INTEGER NOT NULL)",
          "CREATE INDEX receipts_market_height ON receipts(market, block_height)",
          "CREATE INDEX receipts_height ON receipts(block_height)",
          // Newest first within one market without sorting the market's rows.
          "CREATE INDEX receipts_market_seq ON receipts(market, seq)",
          "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
      },
  };
  return kMigrations;
}

void registerSqlite() {
  static std::once_flag once;
  std::call_once(once, [] { Poco::Data::SQLite::Connector::registerConnector(); });
}

std::unique_ptr<Session> openSession(const std::string& path) {
  auto s = std::make_unique<Session>("SQLite", path);
  s->setConnectionTimeout(kBusyTimeoutSeconds);
  return s;
}

std::string describe(const Poco::Exception& e) { return e.displayText(); }

// A write transaction on the writer connection: IMMEDIATE takes the write lock up front, so a
// transaction never fails half-way on a lock upgrade; the destructor rolls back unless committed.
class WriteTransaction {
 public:
  explicit WriteTransaction(Session& s) : s_(s) { s_ << "BEGIN IMMEDIATE", now; }
  ~WriteTransaction() {
    if (!done_) {
      try {
        s_ << "ROLLBACK", now;
      } catch (...) {
        // The connection is broken; SQLite rolls the transaction back when it is closed.
      }
    }
  }
  void commit() {
    s_ << "COMMIT", now;
    done_ = true;
  }

 private:
  Session& s_;
  bool done_ = false;
};

}  // namespace

/// A reader connection with its page statements, prepared on first use and kept: SQLite compiles
/// a statement's SQL at each prepare, which cost a page more than reading its 100 rows.
struct ReceiptStore::Reader {
  explicit Reader(std::unique_ptr<Session> s) : session(std::move(s)) {}
  ~Reader() {
    // Before the session closes its connection.
    sqlite3_finalize(page_all);
    sqlite3_finalize(page_market);
  }
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  std::unique_ptr<Session> session;
  sqlite3_stmt* page_all = nullptr;
  sqlite3_stmt* page_market = nullptr;
};

/// A reader connection borrowed from the pool, returned on destruction.
class ReceiptStore::ReaderLease {
 public:
  ReaderLease(const ReceiptStore& store, std::unique_ptr<Reader> r)
      : store_(&store), r_(std::move(r)) {}
  ReaderLease(ReaderLease&& o) noexcept : store_(o.store_), r_(std::move(o.r_)) {}
  ~ReaderLease() {
    if (!r_) return;
    std::lock_guard<std::mutex> lock(store_->pool_mutex_);
    store_->idle_readers_.push_back(std::move(r_));
    store_->pool_cv_.notify_one();
  }
  Session& operator*() const { return *r_->session; }
  Reader& reader() const { return *r_; }

 private:
  const ReceiptStore* store_;
  std::unique_ptr<Reader> r_;
};

ReceiptStore::ReceiptStore(const std::string& path, RetentionPolicy retention, size_t readers)
    : path_(path), retention_(retention) {
  registerSqlite();
  try {
    const std::filesystem::path parent = std::filesystem::path(path).parent_path();
    if (!parent.empty()) std::filesystem::create_directories(parent);
  } catch (const std::filesystem::filesystem_error& e) {
    throw std::runtime_error("receipts store: cannot create the directory of db_path '" + path +
                             "': " + e.what() + "; set db_path to a writable location");
  }
  try {
    writer_ = openSession(path);
    std::string mode;
    *writer_ << "PRAGMA journal_mode=WAL", into(mode), now;
    if (mode != "wal")
      throw std::runtime_error("receipts store: SQLite refused WAL mode on '" + path + "' (got '" +
                               mode + "'); put db_path on a local filesystem");
    // NORMAL is durable against a killed process in WAL mode (only power loss can drop the
    // last commits, and a commit holds rows and cursor together, so it drops both).
    *writer_ << "PRAGMA synchronous=NORMAL", now;
    migrate();
    loadIndex();
    for (size_t i = 0; i < std::max<size_t>(1, readers); ++i)
      idle_readers_.push_back(std::make_unique<Reader>(openSession(path)));
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("receipts store: cannot open SQLite file '" + path +
                             "': " + describe(e) +
                             "; check that db_path is writable and is not another file");
  }
}

ReceiptStore::~ReceiptStore() = default;

void ReceiptStore::migrate() {
  Session& s = *writer_;
  s << "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)", now;
  int current = 0;
  s << "SELECT COALESCE(MAX(version), 0) FROM schema_version", into(current), now;
  if (current > kSchemaVersion)
    throw std::runtime_error("receipts store: '" + path_ + "' has schema version " +
                             std::to_string(current) + ", newer than this agent's " +
                             std::to_string(kSchemaVersion) +
                             "; upgrade the agent or point db_path at another file");
  const auto& steps = migrations();
  for (int v = current; v < kSchemaVersion; ++v) {
    WriteTransaction tx(s);
    for (const auto& sql : steps[static_cast<size_t>(v)]) s << sql, now;
    int next = v + 1;
    s << "DELETE FROM schema_version", now;
    s << "INSERT INTO schema_version (version) VALUES (?)", use(next), now;
    tx.commit();
  }
  schema_version_ = kSchemaVersion;
}

void ReceiptStore::loadIndex() {
  Session& s = *writer_;
  // The markets present, one index probe each (no scan), then each market's seqs in order from
  // the (market, seq) index: the rows themselves are not read.
  std::map<std::string, std::vector<int64_t>> by_market;
  std::string market;
  for (;;) {
    Poco::Nullable<std::string> next;
    s << "SELECT MIN(market) FROM receipts WHERE market > ?", use(market), into(next), now;
    if (next.isNull()) break;
    market = next.value();
    std::vector<Poco::Int64> seqs;
    s << "SELECT seq FROM receipts INDEXED BY receipts_market_seq WHERE market = ? ORDER BY seq",
        use(market), into(seqs), now;
    by_market[market].assign(seqs.begin(), seqs.end());
  }
  std::vector<int64_t> order;
  size_t n = 0;
  for (const auto& kv : by_market) n += kv.second.size();
  order.reserve(n);
  for (const auto& kv : by_market) {
    const size_t mid = order.size();
    order.insert(order.end(), kv.second.begin(), kv.second.end());
    std::inplace_merge(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(mid),
                       order.end());
  }
  std::unique_lock<std::shared_mutex> lock(index_mutex_);
  by_market_ = std::move(by_market);
  order_ = std::move(order);
  max_seq_ = order_.empty() ? 0 : order_.back();
}

const std::vector<int64_t>& ReceiptStore::orderOf(const std::string& market) const {
  static const std::vector<int64_t> kNone;
  if (market.empty()) return order_;
  auto it = by_market_.find(market);
  return it == by_market_.end() ? kNone : it->second;
}

int64_t ReceiptStore::count(const std::string& market) const {
  std::shared_lock<std::shared_mutex> lock(index_mutex_);
  return static_cast<int64_t>(orderOf(market).size());
}

ReceiptStore::ReaderLease ReceiptStore::lease() const {
  std::unique_lock<std::mutex> lock(pool_mutex_);
  pool_cv_.wait(lock, [this] { return !idle_readers_.empty(); });
  std::unique_ptr<Reader> r = std::move(idle_readers_.back());
  idle_readers_.pop_back();
  return ReaderLease(*this, std::move(r));
}

IngestOutcome ReceiptStore::ingest(const std::vector<StoredReceipt>& batch,
                                   const std::map<std::string, std::string>& cursors,
                                   int64_t now_s) {
  IngestOutcome out;
  std::lock_guard<std::mutex> lock(write_mutex_);
  Session& s = *writer_;
  std::vector<Poco::Int64> new_seqs;
  std::vector<std::string> new_markets;
  try {
    WriteTransaction tx(s);
    if (!batch.empty()) {
      std::string id, market, details;
      Poco::Nullable<Poco::Int64> height, ts;
      Poco::Nullable<std::string> provider, consumer, amount, status;
      Poco::Int64 ingested_at = now_s;
      Statement insert(s);
      insert << "INSERT OR IGNORE INTO receipts (id, market, block_height, timestamp, provider,"
                " consumer, amount, status, details, ingested_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
          use(id), use(market), use(height), use(ts), use(provider), use(consumer), use(amount),
          use(status), use(details), use(ingested_at);
      for (const StoredReceipt& r : batch) {
        id = r.id;
        market = r.market;
        height = r.block_height ? Poco::Nullable<Poco::Int64>(*r.block_height)
                                : Poco::Nullable<Poco::Int64>();
        ts =
            r.timestamp ? Poco::Nullable<Poco::Int64>(*r.timestamp) : Poco::Nullable<Poco::Int64>();
        provider =
            r.provider ? Poco::Nullable<std::string>(*r.provider) : Poco::Nullable<std::string>();
        consumer =
            r.consumer ? Poco::Nullable<std::string>(*r.consumer) : Poco::Nullable<std::string>();
        amount = r.amount ? Poco::Nullable<std::string>(*r.amount) : Poco::Nullable<std::string>();
        status = r.status ? Poco::Nullable<std::string>(*r.status) : Poco::Nullable<std::string>();
        details = r.details;
        const size_t changed = insert.execute();
        if (changed > 0) {
          out.inserted[r.market] += 1;
          out.inserted_total += 1;
        } else {
          out.duplicates += 1;
        }
      }
    }
    if (out.inserted_total > 0) {
      // The new rows' place in the order index: every seq above the highest indexed one.
      Poco::Int64 above = max_seq_;
      s << "SELECT seq, market FROM receipts WHERE seq > ? ORDER BY seq", use(above),
          into(new_seqs), into(new_markets), now;
    }
    for (const auto& kv : cursors) {
      std::string key = kv.first, value = kv.second;
      s << "INSERT INTO meta (key, value) VALUES (?, ?)"
           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
          use(key), use(value), now;
    }
    tx.commit();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("receipts store: writing " + std::to_string(batch.size()) +
                             " receipts to '" + path_ +
                             "' failed (nothing was kept): " + describe(e));
  }
  if (!new_seqs.empty()) {
    std::unique_lock<std::shared_mutex> index_lock(index_mutex_);
    for (size_t i = 0; i < new_seqs.size() && i < new_markets.size(); ++i) {
      order_.push_back(new_seqs[i]);
      by_market_[new_markets[i]].push_back(new_seqs[i]);
    }
    max_seq_ = order_.back();
  }
  if (out.inserted_total > 0 || !cursors.empty()) version_.fetch_add(1);
  return out;
}

int64_t ReceiptStore::prune(int64_t now_s) {
  if (retention_.max_receipts <= 0 && retention_.days <= 0) return 0;
  std::lock_guard<std::mutex> lock(write_mutex_);
  Session& s = *writer_;
  int64_t removed = 0;
  std::vector<Poco::Int64> aged;     // seqs removed for their age, in any order
  std::optional<int64_t> keep_from;  // every seq below it removed for the count
  try {
    WriteTransaction tx(s);
    if (retention_.days > 0) {
      Poco::Int64 cutoff = now_s - retention_.days * 86400;
      s << "SELECT seq FROM receipts WHERE COALESCE(timestamp, ingested_at) < ?", use(cutoff),
          into(aged), now;
      if (!aged.empty()) {
        Statement st(s);
        st << "DELETE FROM receipts WHERE COALESCE(timestamp, ingested_at) < ?", use(cutoff);
        removed += static_cast<int64_t>(st.execute());
      }
    }
    if (retention_.max_receipts > 0) {
      // Keep the newest max_receipts rows by sequence. The oldest kept row comes from the order
      // index; when rows were just removed for their age, from the file (rare: both limits on).
      Poco::Int64 from = 0;
      if (aged.empty()) {
        std::shared_lock<std::shared_mutex> index_lock(index_mutex_);
        if (static_cast<int64_t>(order_.size()) > retention_.max_receipts)
          from = order_[order_.size() - static_cast<size_t>(retention_.max_receipts)];
      } else {
        Poco::Nullable<Poco::Int64> oldest_kept;
        Poco::Int64 skip = retention_.max_receipts - 1;
        s << "SELECT seq FROM receipts ORDER BY seq DESC LIMIT 1 OFFSET ?", use(skip),
            into(oldest_kept), now;
        if (!oldest_kept.isNull()) from = oldest_kept.value();
      }
      if (from > 0) {
        Statement st(s);
        st << "DELETE FROM receipts WHERE seq < ?", use(from);
        removed += static_cast<int64_t>(st.execute());
        keep_from = from;
      }
    }
    tx.commit();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("receipts store: pruning '" + path_ + "' failed: " + describe(e));
  }
  if (!aged.empty() || keep_from) {
    std::sort(aged.begin(), aged.end());
    auto drop = [&](std::vector<int64_t>& v) {
      if (!aged.empty())
        v.erase(std::remove_if(
                    v.begin(), v.end(),
                    [&](int64_t x) { return std::binary_search(aged.begin(), aged.end(), x); }),
                v.end());
      if (keep_from) v.erase(v.begin(), std::lower_bound(v.begin(), v.end(), *keep_from));
    };
    std::unique_lock<std::shared_mutex> index_lock(index_mutex_);
    drop(order_);
    for (auto& kv : by_market_) drop(kv.second);
  }
  if (removed > 0) {
    pruned_total_.fetch_add(removed);
    version_.fetch_add(1);
  }
  return removed;
}

std::optional<std::string> ReceiptStore::cursor(const std::string& name) const {
  auto all = cursors();
  auto it = all.find(name);
  if (it == all.end()) return std::nullopt;
  return it->second;
}

std::map<std::string, std::string> ReceiptStore::cursors() const {
  ReaderLease r = lease();
  std::vector<std::string> keys, values;
  try {
    *r << "SELECT key, value FROM meta ORDER BY key", into(keys), into(values), now;
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("receipts store: reading cursors failed: " + describe(e));
  }
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < keys.size() && i < values.size(); ++i) out[keys[i]] = values[i];
  return out;
}

ReceiptPage ReceiptStore::query(const ReceiptQuery& q) const {
  ReceiptPage page;
  Poco::Int64 bound = 0, take = 0;
  {
    // The page's place from the order index: `end` rows of the filter are at or below the
    // page's first row, which is order[end - 1]; the page is the `take` rows from there down.
    std::shared_lock<std::shared_mutex> index_lock(index_mutex_);
    const std::vector<int64_t>& order = orderOf(q.market);
    const auto total = static_cast<int64_t>(order.size());
    page.total = total;
    int64_t end = 0;
    if (q.before) {
      end = std::lower_bound(order.begin(), order.end(), *q.before) - order.begin();
      page.offset = total - end;
    } else {
      page.offset = q.offset;
      end = q.offset >= total ? 0 : total - q.offset;
    }
    if (end == 0 || q.limit <= 0) return page;
    take = std::min<int64_t>(q.limit, end);
    bound = order[static_cast<size_t>(end - 1)];
    if (end > take) page.next = order[static_cast<size_t>(end - take)];
  }
  ReaderLease r = lease();
  Reader& reader = r.reader();
  const bool by_market = !q.market.empty();
  sqlite3_stmt*& st = by_market ? reader.page_market : reader.page_all;
  sqlite3* db = Poco::Data::SQLite::Utility::dbHandle(*reader.session);
  auto fail = [&](const char* what) {
    return std::runtime_error(std::string("receipts store: query failed: ") + what + ": " +
                              sqlite3_errmsg(db));
  };
  if (!st) {
    // One statement: `take` rows down an index from `bound`, whatever the offset.
    static const char* const kAll =
        "SELECT id, market, block_height, timestamp, provider, consumer, CAST(amount AS TEXT),"
        " status, details, ingested_at FROM receipts WHERE seq <= ?1 ORDER BY seq DESC LIMIT ?2";
    static const char* const kMarket =
        "SELECT id, market, block_height, timestamp, provider, consumer, CAST(amount AS TEXT),"
        " status, details, ingested_at FROM receipts INDEXED BY receipts_market_seq"
        " WHERE market = ?3 AND seq <= ?1 ORDER BY seq DESC LIMIT ?2";
    if (sqlite3_prepare_v3(db, by_market ? kMarket : kAll, -1, SQLITE_PREPARE_PERSISTENT, &st,
                           nullptr) != SQLITE_OK) {
      st = nullptr;
      throw fail("prepare");
    }
  }
  // Reset on every way out: a statement left mid-way holds its read snapshot, and with it the
  // WAL file's checkpoints.
  struct Reset {
    sqlite3_stmt* st;
    ~Reset() {
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    }
  } reset{st};
  auto text = [&](int col) -> std::optional<std::string> {
    const auto* p = sqlite3_column_text(st, col);
    if (!p) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<size_t>(sqlite3_column_bytes(st, col)));
  };
  auto integer = [&](int col) -> std::optional<int64_t> {
    if (sqlite3_column_type(st, col) == SQLITE_NULL) return std::nullopt;
    return static_cast<int64_t>(sqlite3_column_int64(st, col));
  };
  if (sqlite3_bind_int64(st, 1, bound) != SQLITE_OK ||
      sqlite3_bind_int64(st, 2, take) != SQLITE_OK ||
      (by_market && sqlite3_bind_text(st, 3, q.market.data(), static_cast<int>(q.market.size()),
                                      SQLITE_STATIC) != SQLITE_OK))
    throw fail("bind");
  page.receipts.reserve(static_cast<size_t>(take));
  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    StoredReceipt sr;
    sr.id = text(0).value_or("");
    sr.market = text(1).value_or("");
    sr.block_height = integer(2);
    sr.timestamp = integer(3);
    sr.provider = text(4);
    sr.consumer = text(5);
    sr.amount = text(6);  // CAST(amount AS TEXT): the number as SQLite holds it
    sr.status = text(7);
    sr.details = text(8).value_or("");
    sr.ingested_at = integer(9).value_or(0);
    page.receipts.push_back(std::move(sr));
  }
  if (rc != SQLITE_DONE) throw fail("step");
  return page;
}

int64_t ReceiptStore::countFromHeight(int64_t height, const std::string& market) const {
  ReaderLease r = lease();
  Poco::Int64 h = height, n = 0;
  std::string m = market;
  try {
    Statement st(*r);
    st << std::string("SELECT COUNT(*) FROM receipts WHERE block_height >= ?") +
              (m.empty() ? "" : " AND market = ?"),
        use(h), into(n);
    if (!m.empty()) st, use(m);
    st.execute();
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("receipts store: count failed: " + describe(e));
  }
  return n;
}

int64_t ReceiptStore::countIds(const std::vector<std::string>& ids) const {
  if (ids.empty()) return 0;
  ReaderLease r = lease();
  int64_t found = 0;
  try {
    std::string id;
    Poco::Int64 n = 0;
    Statement st(*r);
    st << "SELECT COUNT(*) FROM receipts WHERE id = ?", use(id), into(n);
    for (const auto& each : ids) {
      id = each;
      n = 0;
      st.execute();
      found += n;
    }
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("receipts store: id lookup failed: " + describe(e));
  }
  return found;
}

StoreStats ReceiptStore::stats() const {
  StoreStats st;
  st.path = path_;
  st.schema_version = schema_version_;
  st.pruned_total = pruned_total_.load();
  for (const auto& m : marketNames()) st.by_market[m] = 0;
  {
    // Counts from the order index (a COUNT(*) would read every row of a million).
    std::shared_lock<std::shared_mutex> index_lock(index_mutex_);
    for (const auto& [market, seqs] : by_market_)
      if (!seqs.empty()) st.by_market[market] = static_cast<int64_t>(seqs.size());
    st.receipts = static_cast<int64_t>(order_.size());
  }
  {
    ReaderLease r = lease();
    Poco::Nullable<Poco::Int64> max_height;
    try {
      *r << "SELECT MAX(block_height) FROM receipts", into(max_height), now;
    } catch (const Poco::Exception& e) {
      throw std::runtime_error("receipts store: reading statistics failed: " + describe(e));
    }
    if (!max_height.isNull()) st.max_block_height = max_height.value();
  }
  std::error_code ec;
  for (const char* suffix : {"", "-wal"}) {
    const auto size = std::filesystem::file_size(path_ + suffix, ec);
    if (!ec) st.size_bytes += static_cast<int64_t>(size);
  }
  return st;
}

}  // namespace receipts
}  // namespace blockbuster
