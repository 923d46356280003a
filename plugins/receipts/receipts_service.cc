#include "receipts_service.h"

#include <cmath>
#include <exception>
#include <iterator>
#include <map>

#include "receipt_mapping.h"

namespace blockbuster {
namespace receipts {

ReceiptsService::ReceiptsService(ServiceOptions options)
    : options_(std::move(options)),
      store_(std::make_unique<ReceiptStore>(options_.db_path, options_.retention)),
      ingestor_(std::make_unique<Ingestor>(*store_,
                                           IngestOptions{options_.page_size, 3, 200000, 1000})) {}

CycleResult ReceiptsService::collect(NodePort& node, int64_t now_s, double monotonic_s) {
  CycleResult out;
  if (last_cycle_start_) out.interval_seconds = monotonic_s - *last_cycle_start_;
  last_cycle_start_ = monotonic_s;
  try {
    out.report = ingestor_->run(node, now_s);
    out.ok = true;
  } catch (const std::exception& e) {
    out.error = e.what();
  }
  try {
    out.pruned = store_->prune(now_s);
  } catch (const std::exception& e) {
    // Retention failing does not lose receipts; the next cycle retries it.
    out.report.warnings.push_back(e.what());
  }
  try {
    warmHotPages();
  } catch (const std::exception& e) {
    out.report.warnings.push_back(e.what());
    std::atomic_store(&hot_, {});  // read from the file again rather than served old
  }
  try {
    out.stats = store_->stats();
  } catch (const std::exception& e) {
    out.report.warnings.push_back(e.what());
    out.stats.path = store_->path();
  }
  // Only this thread (the collect) replaces it.
  auto next = std::make_shared<Health>(*health());
  if (out.ok) next->last_success = now_s;
  next->last_failed = !out.ok;
  if (out.interval_seconds) next->interval = out.interval_seconds;
  next->unavailable = out.ok ? out.report.unavailable : std::map<std::string, std::string>{};
  std::atomic_store(&health_, std::shared_ptr<const Health>(std::move(next)));
  return out;
}

namespace {

std::string cacheKey(const ReceiptQuery& q) {
  std::string key = std::to_string(q.limit);
  key += '|';
  key += q.before ? "b" + std::to_string(*q.before) : std::to_string(q.offset);
  key += '|';
  key += q.market;
  return key;
}

}  // namespace

std::string ReceiptsService::renderPage(const ReceiptQuery& q) const {
  pages_read_.fetch_add(1);
  ReceiptPage page = store_->query(q);
  std::string text = "{\"receipts\":[";
  for (size_t i = 0; i < page.receipts.size(); ++i) {
    if (i) text += ',';
    appendReceiptText(text, page.receipts[i]);
  }
  text += "],\"total\":" + std::to_string(page.total);
  text += ",\"limit\":" + std::to_string(q.limit) + ",\"offset\":" + std::to_string(page.offset);
  // The cursor is opaque to clients: the receipt's place in the store, passed back as `before`.
  text += ",\"next\":" + (page.next ? "\"" + std::to_string(*page.next) + "\"" : "null");
  return text;
}

void ReceiptsService::warmHotPages() {
  const uint64_t version = store_->version();
  const auto current = std::atomic_load(&hot_);
  if (current && !current->empty() && current->front().version == version) return;
  auto hot = std::make_shared<std::vector<CacheEntry>>();
  for (const int64_t limit : {int64_t{20}, kDefaultLimit}) {
    std::vector<std::string> markets{""};
    if (limit == kDefaultLimit)
      markets.insert(markets.end(), marketNames().begin(), marketNames().end());
    for (const auto& m : markets) {
      ReceiptQuery q;
      q.limit = limit;
      q.market = m;
      hot->push_back(
          CacheEntry{cacheKey(q), version, std::make_shared<const std::string>(renderPage(q))});
    }
  }
  std::atomic_store(&hot_, std::shared_ptr<const std::vector<CacheEntry>>(std::move(hot)));
}

HttpAnswer ReceiptsService::handleReceipts(
    const std::vector<std::pair<std::string, std::string>>& query, int64_t now_s,
    bool may_block) const {
  ParsedQuery parsed = parseReceiptQuery(query);
  if (!parsed.query) {
    Json e{{"error", Json{{"code", "bad_parameter"}, {"message", parsed.error_message}}}};
    return HttpAnswer{400, e.dump()};
  }
  const ReceiptQuery& q = *parsed.query;
  const auto health_now = health();
  const Health& h = *health_now;
  // Stale: never ingested, the last ingest failed, or none succeeded for two intervals.
  bool stale = !h.last_success || h.last_failed;
  if (!stale && h.interval && *h.interval > 0)
    stale = static_cast<double>(now_s - *h.last_success) > 2.0 * *h.interval + 1.0;
  std::string stamp = ",\"timestamp\":" + std::to_string(now_s) + ",\"age_seconds\":";
  if (h.last_success)
    stamp += std::to_string(std::max<int64_t>(0, now_s - *h.last_success));
  else
    stamp += "null";
  stamp += std::string(",\"stale\":") + (stale ? "true" : "false") + "}";

  const std::string key = cacheKey(q);
  // The version before reading: a page rendered while a write lands is kept under the older
  // version, so it is never served as the newer one.
  const uint64_t version = store_->version();
  auto answer = [&](const std::string& page) {
    HttpAnswer a{200, std::string()};
    a.body.reserve(page.size() + stamp.size());
    a.body += page;
    a.body += stamp;
    return a;
  };
  // The pinned pages are those of the last collect, served as they are until the next one has
  // rendered its own (a few milliseconds after its ingest), like every published section.
  if (const auto hot = std::atomic_load(&hot_))
    for (const CacheEntry& e : *hot)
      if (e.key == key) return answer(*e.page);
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    for (auto it = cache_.begin(); it != cache_.end(); ++it) {
      if (it->key == key && it->version == version) {
        cache_.splice(cache_.begin(), cache_, it);
        return answer(*cache_.front().page);
      }
    }
  }
  if (!may_block) return HttpAnswer{0, std::string()};
  // Rendered outside the lock: two threads may render the same answer once each, which is
  // cheaper than making every reader wait for one.
  auto page = std::make_shared<const std::string>(renderPage(q));
  HttpAnswer a = answer(*page);
  // Allocated before the lock and freed after it: the loops take it on every request that is
  // not a pinned page, and the thread here may be a store worker at nice 19.
  std::list<CacheEntry> entry, dropped;
  entry.push_back(CacheEntry{key, version, std::move(page)});
  {
    std::lock_guard<std::mutex> lock(cache_mutex_);
    for (auto it = cache_.begin(); it != cache_.end();) {
      auto next = std::next(it);
      if (it->key == key) dropped.splice(dropped.end(), cache_, it);
      it = next;
    }
    cache_.splice(cache_.begin(), entry);
    while (cache_.size() > kCacheEntries)
      dropped.splice(dropped.end(), cache_, std::prev(cache_.end()));
  }
  return a;
}

Json ReceiptsService::operationsBody() const {
  ReceiptQuery all;
  all.limit = options_.operations_limit;
  ReceiptPage recent = store_->query(all);
  Json operations = Json::array();
  for (const auto& r : recent.receipts) operations.push_back(operationJson(r));
  Json by_market = Json::object();
  for (const auto& m : marketNames()) {
    ReceiptQuery q;
    q.limit = options_.operations_limit;
    q.market = m;
    Json list = Json::array();
    for (const auto& r : store_->query(q).receipts) list.push_back(operationJson(r));
    by_market[m] = list;
  }
  return Json{{"operations", operations}, {"total", recent.total}, {"by_market", by_market}};
}

Json ReceiptsService::storeBody(const StoreStats& stats) const {
  Json cursor = Json::object();
  Json unavailable = Json::object();
  try {
    for (const auto& [k, v] : store_->cursors()) {
      try {
        cursor[k] = Json::parse(v);
      } catch (const JsonError&) {
        cursor[k] = v;
      }
    }
  } catch (const std::exception& e) {
    unavailable["cursor"] = e.what();
  }
  Json by_market = Json::object();
  for (const auto& [m, n] : stats.by_market) by_market[m] = n;
  Json last_height;
  if (stats.max_block_height)
    last_height = *stats.max_block_height;
  else
    unavailable["last_ingested_height"] =
        stats.receipts == 0 ? "no receipt ingested yet"
                            : "no stored receipt carries a block height (the node's sources "
                              "give none)";
  const auto health_now = health();
  const Health& h = *health_now;
  Json sources = Json::object();
  for (const auto& [k, v] : h.unavailable) sources[k] = v;
  Json body{{"backend", "sqlite"},
            {"path", stats.path},
            {"size_bytes", stats.size_bytes},
            {"receipts", stats.receipts},
            {"by_market", by_market},
            {"last_ingested_height", last_height},
            {"cursor", cursor},
            {"schema_version", stats.schema_version},
            {"profile", profileName(ingestor_->profile())},
            // 0 is the configured "no limit", not an unknown value.
            {"retention", Json{{"max_receipts", options_.retention.max_receipts},
                               {"days", options_.retention.days},
                               {"pruned_total", stats.pruned_total}}},
            {"sources_unavailable", sources}};
  if (unavailable.size() > 0) body["unavailable"] = unavailable;
  return body;
}

}  // namespace receipts
}  // namespace blockbuster
