#include "receipt_ingest.h"

#include <algorithm>
#include <stdexcept>
#include <unordered_set>

#include "receipt_mapping.h"

namespace blockbuster {
namespace receipts {

namespace {

constexpr int64_t kSpecMaxLimit = 1000;   // receipt.audit's largest page
constexpr int64_t kEnergyMaxPage = 100;   // energy.receipts' largest page_size
constexpr size_t kMaxRejectWarnings = 3;  // per source and cycle: enough to diagnose, no flood

std::string reasonOf(const Answer& a, const std::string& method) {
  if (a.methodNotFound()) return "the node does not serve " + method;
  return method + " failed: " + a.message;
}

std::string shapeOf(const Json& v) {
  std::string text = v.dump();
  if (text.size() > 120) text = text.substr(0, 120) + "...";
  return v.typeName() + " " + text;
}

// Sort key of a receipt within one batch: older first, so that the store's sequence (newest
// last) follows the chain. Missing values sort first; `order` breaks ties.
struct Keyed {
  StoredReceipt r;
  int64_t order;
};
bool olderFirst(const Keyed& a, const Keyed& b) {
  const int64_t ha = a.r.block_height.value_or(-1), hb = b.r.block_height.value_or(-1);
  if (ha != hb) return ha < hb;
  const int64_t ta = a.r.timestamp.value_or(-1), tb = b.r.timestamp.value_or(-1);
  if (ta != tb) return ta < tb;
  return a.order < b.order;
}

void addOutcome(IngestOutcome& into, const IngestOutcome& o) {
  for (const auto& [market, n] : o.inserted) into.inserted[market] += n;
  into.inserted_total += o.inserted_total;
  into.duplicates += o.duplicates;
}

// An entry's block_height as the node wrote it (also for entries that cannot be mapped, which
// still count in the node's total).
std::optional<int64_t> rawHeight(const Json& e) {
  if (!e.isObject() || !e["block_height"].isNumber()) return std::nullopt;
  try {
    return e["block_height"].asInt();
  } catch (const JsonError&) {
    return std::nullopt;
  }
}

void noteReject(IngestReport& report, const std::string& source, const std::string& error,
                size_t& count) {
  report.rejected++;
  if (count++ < kMaxRejectWarnings)
    report.warnings.push_back(source + ": skipped an entry: " + error);
}

}  // namespace

Ingestor::Ingestor(ReceiptStore& store, IngestOptions options) : store_(store), options_(options) {}

IngestReport Ingestor::run(NodePort& node, int64_t now) {
  if (profile_ != Profile::kTheBlock) {
    const int64_t start = cursorInt(store_.cursor("spec.height")).value_or(0);
    const int64_t limit = std::clamp<int64_t>(options_.page_size, 1, kSpecMaxLimit);
    Answer first =
        node.call("receipt.audit", Json{{"start_height", start}, {"limit", limit}, {"offset", 0}});
    if (first.ok && isSpecAuditShape(first.value)) {
      profile_ = Profile::kSpec;
      return runSpec(node, std::move(first), start, now);
    }
    if (first.ok) {
      profile_ = Profile::kUnknown;
      throw std::runtime_error("receipt.audit answered " + shapeOf(first.value) +
                               ", not {\"receipts\":[...],\"total\":n}; check that "
                               "THEBLOCK_RPC_URL points at a node of The Block");
    }
    if (!first.methodNotFound())
      throw std::runtime_error("receipt.audit failed: " + first.message +
                               " (nothing ingested; retried next cycle)");
    profile_ = Profile::kTheBlock;
  }
  return runTheBlock(node, now);
}

IngestReport Ingestor::runSpec(NodePort& node, Answer first, int64_t start, int64_t now) {
  IngestReport report;
  report.profile = Profile::kSpec;
  const int64_t limit = std::clamp<int64_t>(options_.page_size, 1, kSpecMaxLimit);
  size_t reject_warnings = 0;
  bool committed = false;  // a transaction of this cycle reached the store
  int64_t cursor = start;  // the committed spec.height

  // receipt.audit lists newest first, so a backlog's oldest receipts are its last pages and a
  // page at offset `total - limit` holds the oldest ones left. Each step reads that tail page
  // (with start_height = cursor) and commits it with the cursor moved to its highest height in
  // one transaction: every receipt below that height is then stored. A cycle cut short at any
  // call keeps every step before it, and the next cycle continues from the committed cursor.
  // The tail is proven by the answer itself (offset + receipts == its own total), so receipts
  // arriving (at the newest end) or dropped (at the oldest) while paging make a step read its
  // page again instead of skipping any. With no backlog, the first page is the whole list: one
  // call per cycle, as before.
  std::vector<Keyed> run;             // contiguous positions, from the tail toward the newest
  std::vector<int64_t> run_heights;   // every raw entry's height in `run`'s pages, when known
  int64_t run_total = -1;             // the node's total while `run` was read
  std::optional<int64_t> newest_low;  // lowest height on a page at offset 0 (the newest end)
  int64_t offset = 0, ask = limit;
  int misses = 0;
  bool first_page = true, complete = false;
  std::string failure;
  Answer page = std::move(first);

  auto commit = [&](std::optional<int64_t> new_cursor) {
    std::stable_sort(run.begin(), run.end(), olderFirst);
    std::vector<StoredReceipt> batch;
    batch.reserve(run.size());
    for (auto& k : run) batch.push_back(std::move(k.r));
    std::map<std::string, std::string> cursors;
    if (new_cursor) cursors["spec.height"] = std::to_string(*new_cursor);
    if (!batch.empty() || !cursors.empty()) {
      addOutcome(report.outcome, store_.ingest(batch, cursors, now));
      committed = true;
    }
    if (new_cursor) cursor = *new_cursor;
    run.clear();
    run_heights.clear();
  };
  auto request = [&](int64_t at, int64_t n) {
    offset = at;
    ask = n;
    page = node.call("receipt.audit",
                     Json{{"start_height", cursor}, {"limit", ask}, {"offset", offset}});
  };
  auto toTail = [&](int64_t total) { request(std::max<int64_t>(0, total - limit), limit); };

  for (;;) {
    if (!page.ok) {
      failure = reasonOf(page, "receipt.audit");
      break;
    }
    if (!isSpecAuditShape(page.value)) {
      failure =
          "receipt.audit answered " + shapeOf(page.value) + " at offset " + std::to_string(offset);
      break;
    }
    const auto& list = page.value["receipts"].asArray();
    const int64_t total = page.value["total"].asInt();
    const int64_t len = static_cast<int64_t>(list.size());
    const bool was_first = first_page;
    first_page = false;
    const bool whole = offset == 0 && len >= total;
    // Map the page; check that it is newest first by height (ties in any order).
    std::vector<Keyed> got;
    std::vector<int64_t> heights;
    bool ordered = true;
    int64_t prev = INT64_MAX, low = INT64_MAX, high = INT64_MIN;
    for (int64_t i = 0; i < len; ++i) {
      const Json& e = list[static_cast<size_t>(i)];
      if (auto h = rawHeight(e)) heights.push_back(*h);
      Mapped m = fromSpec(e);
      if (!m.receipt) {
        noteReject(report, "receipt.audit", m.error, reject_warnings);
        continue;
      }
      if (!m.receipt->block_height) {
        ordered = false;
      } else {
        const int64_t h = *m.receipt->block_height;
        if (h > prev) ordered = false;
        prev = h;
        low = std::min(low, h);
        high = std::max(high, h);
      }
      // A larger position is older: ties at one height and timestamp keep the node's order.
      got.push_back(Keyed{std::move(*m.receipt), -(offset + i)});
    }
    if (offset == 0 && low != INT64_MAX) newest_low = newest_low ? std::min(*newest_low, low) : low;
    if (offset == 0 && high != INT64_MIN)  // the newest end: how far a catch-up has to go
      report.newest_height = std::max(report.newest_height.value_or(high), high);
    if (whole && run.empty()) {
      // The whole list in one page: no order needed.
      run = std::move(got);
      int64_t max_height = cursor;
      for (const auto& k : run)
        if (k.r.block_height) max_height = std::max(max_height, *k.r.block_height);
      commit(max_height);
      complete = true;
      break;
    }
    // A page of one height cannot show its order by itself: in a node listing oldest first,
    // the tail would be the newest block. It is the oldest only if no receipt at offset 0 is
    // lower.
    const bool one_height = high != INT64_MIN && high == low;
    if (!ordered || (one_height && !(newest_low && high <= *newest_low))) {
      // The pages do not go from newest to oldest: the tail is not the oldest receipts.
      report.warnings.push_back(
          "receipt.audit does not list receipts newest first by block_height; reading the "
          "backlog whole each cycle (a backlog larger than one cycle can read is finished only "
          "when the node is quiet long enough)");
      if (!run.empty()) commit(std::nullopt);
      Answer again = page;
      if (!was_first)
        again = node.call("receipt.audit",
                          Json{{"start_height", cursor}, {"limit", limit}, {"offset", 0}});
      try {
        IngestReport rest = runSpecUnordered(node, again, cursor, now);
        addOutcome(report.outcome, rest.outcome);
        report.complete = rest.complete;
        report.rejected += rest.rejected;
        for (auto& w : rest.warnings) report.warnings.push_back(std::move(w));
        for (auto& [k, v] : rest.unavailable) report.unavailable[k] = v;
      } catch (const std::runtime_error& e) {
        if (!committed) throw;
        report.unavailable["receipt.audit"] = e.what();
        report.warnings.push_back(e.what());
      }
      return report;
    }
    if (run.empty()) {
      if (offset + len != total) {
        // Not the tail: the first page of a backlog, or receipts arrived or were dropped since
        // `total` was read.
        if (!was_first && ++misses > options_.max_passes) {
          report.warnings.push_back(
              "receipt.audit: the node's total kept changing while paging (now " +
              std::to_string(total) + " from height " + std::to_string(cursor) +
              "); the rest is read next cycle, nothing is lost");
          break;
        }
        toTail(total);
        continue;
      }
      run_total = total;
    } else if (total != run_total) {
      // The positions of the run moved: read the tail again (what was read stays read).
      commit(std::nullopt);
      if (++misses > options_.max_passes) {
        report.warnings.push_back(
            "receipt.audit: the node's total kept changing while paging; "
            "the rest is read next cycle, nothing is lost");
        break;
      }
      toTail(total);
      continue;
    }
    misses = 0;
    for (auto& k : got) run.push_back(std::move(k));
    run_heights.insert(run_heights.end(), heights.begin(), heights.end());
    int64_t run_high = cursor;
    for (const auto& k : run) run_high = std::max(run_high, *k.r.block_height);
    if (offset == 0) {  // read from the tail up to the newest: the whole list
      commit(run_high);
      complete = true;
      break;
    }
    if (run_high > cursor) {
      // Receipts at run_high may continue on the next page: start_height = run_high reads
      // them again (they dedupe on id); every lower one is stored with this commit.
      const int64_t below = std::count_if(run_heights.begin(), run_heights.end(),
                                          [&](int64_t h) { return h < run_high; });
      commit(run_high);
      toTail(run_total - below);
      continue;
    }
    // Every receipt read so far is at the cursor height (one block holds more receipts than a
    // page): read the newer pages until a higher height shows.
    if (static_cast<int64_t>(run.size()) >= options_.max_buffer) {
      report.warnings.push_back("receipt.audit: more than " + std::to_string(options_.max_buffer) +
                                " receipts at height " + std::to_string(cursor) +
                                "; stored without moving the cursor, the rest is read next cycle");
      commit(std::nullopt);
      break;
    }
    const int64_t next = std::max<int64_t>(0, offset - limit);
    request(next, offset - next);
  }
  if (!run.empty()) commit(std::nullopt);  // read before a failure: stored, cursor unchanged
  report.complete = complete;
  if (!failure.empty()) {
    if (!committed) throw std::runtime_error(failure + " (nothing ingested; retried next cycle)");
    report.unavailable["receipt.audit"] = failure;
    // Progress was made (a backlog read over several cycles, cut by the collect deadline or
    // the agent's rate cap): the plugin logs the catch-up at info, this detail at debug.
    report.progress.push_back(failure + "; " + std::to_string(report.outcome.inserted_total) +
                              " new receipts stored this cycle, cursor at height " +
                              std::to_string(cursor) + "; the rest is read next cycle");
  }
  return report;
}

IngestReport Ingestor::runSpecUnordered(NodePort& node, const Answer& first, int64_t start,
                                        int64_t now) {
  IngestReport report;
  report.profile = Profile::kSpec;
  const int64_t limit = std::clamp<int64_t>(options_.page_size, 1, kSpecMaxLimit);
  std::vector<Keyed> buffer;
  std::unordered_set<std::string> seen;
  size_t reject_warnings = 0;
  int64_t order = 0, offset = 0, rejected_in_pass = 0;
  int pass = 1;
  bool complete = false;
  std::string failure;
  Answer page = first;
  // Paging by offset while the node adds receipts can show one twice or (with some orders) skip
  // one. Nothing here assumes an order: the pages are read until the number of distinct ids
  // reaches the node's own total for start_height; as the node only adds receipts, that many
  // distinct ids read from it are all of them. Short of that, the pass restarts at offset 0.
  for (;;) {
    if (!page.ok) {
      failure = reasonOf(page, "receipt.audit");
      break;
    }
    if (!isSpecAuditShape(page.value)) {
      failure =
          "receipt.audit answered " + shapeOf(page.value) + " at offset " + std::to_string(offset);
      break;
    }
    const auto& list = page.value["receipts"].asArray();
    const int64_t total = page.value["total"].asInt();
    for (const Json& e : list) {
      Mapped m = fromSpec(e);
      if (!m.receipt) {
        rejected_in_pass++;
        noteReject(report, "receipt.audit", m.error, reject_warnings);
        continue;
      }
      if (seen.insert(m.receipt->id).second) buffer.push_back(Keyed{std::move(*m.receipt), order});
      // Newest-first pages would otherwise sort later pages (older) after earlier ones.
      --order;
    }
    if (static_cast<int64_t>(buffer.size()) + rejected_in_pass >= total) {
      complete = true;
      break;
    }
    if (static_cast<int64_t>(buffer.size()) >= options_.max_buffer) {
      report.warnings.push_back("receipt.audit: more than " + std::to_string(options_.max_buffer) +
                                " receipts to read; the rest is read next cycle");
      break;
    }
    if (static_cast<int64_t>(list.size()) < limit) {
      if (++pass > options_.max_passes) {
        report.warnings.push_back("receipt.audit: receipts kept arriving while paging (" +
                                  std::to_string(buffer.size()) + " read, node total " +
                                  std::to_string(total) +
                                  "); the cursor stays until a full read, nothing is lost");
        break;
      }
      offset = 0;
      rejected_in_pass = 0;
    } else {
      offset += static_cast<int64_t>(list.size());
    }
    page = node.call("receipt.audit",
                     Json{{"start_height", start}, {"limit", limit}, {"offset", offset}});
  }
  // Reverse the fetch order as a tie-break only (the key is height then timestamp).
  std::stable_sort(buffer.begin(), buffer.end(), olderFirst);
  std::vector<StoredReceipt> batch;
  batch.reserve(buffer.size());
  int64_t max_height = start;
  for (auto& k : buffer) {
    if (k.r.block_height) max_height = std::max(max_height, *k.r.block_height);
    batch.push_back(std::move(k.r));
  }
  std::map<std::string, std::string> cursors;
  // Receipts at the cursor height are read again next time (a block may not have been
  // complete); rows dedupe on id, so that costs nothing but a few rows.
  if (complete) cursors["spec.height"] = std::to_string(max_height);
  if (!batch.empty() || !cursors.empty()) report.outcome = store_.ingest(batch, cursors, now);
  report.complete = complete;
  if (!failure.empty()) {
    if (batch.empty())
      throw std::runtime_error(failure + " (nothing ingested; retried next cycle)");
    report.unavailable["receipt.audit"] = failure;
    report.warnings.push_back(failure + "; kept the " + std::to_string(batch.size()) +
                              " receipts read before it, the cursor did not move");
  }
  return report;
}

IngestReport Ingestor::runTheBlock(NodePort& node, int64_t now) {
  IngestReport report;
  report.profile = Profile::kTheBlock;
  const auto cursors_now = store_.cursors();
  auto cursorOf = [&](const std::string& k) -> std::optional<int64_t> {
    auto it = cursors_now.find(k);
    return it == cursors_now.end() ? std::nullopt : cursorInt(it->second);
  };
  const int64_t settled_seq = cursorOf("settlement.sequence").value_or(-1);
  int64_t energy_index = cursorOf("energy.index").value_or(0);
  const int64_t ps = std::clamp<int64_t>(options_.page_size, 1, kEnergyMaxPage);
  // One page of overlap with what was read before, to check that pages did not shift.
  int64_t page_no = energy_index / ps;
  if (energy_index % ps == 0 && page_no > 0) --page_no;

  // Page 0 too, when it is not the page read anyway: its first entry anchors the order.
  const bool need_page0 = energy_index > 0 && page_no > 0;
  std::vector<Call> calls{{"settlement.audit", Json::object()},
                          {"energy.receipts", Json{{"page", page_no}, {"page_size", ps}}},
                          {"compute_market.sla_history", Json{{"limit", options_.sla_limit}}}};
  if (need_page0) calls.push_back({"energy.receipts", Json{{"page", 0}, {"page_size", ps}}});
  std::vector<Answer> a = node.callMany(calls);
  if (a.size() != calls.size())
    throw std::runtime_error("internal: callMany returned a wrong count");
  if (a[0].methodNotFound() && a[1].methodNotFound() && a[2].methodNotFound()) {
    profile_ = Profile::kUnknown;
    throw std::runtime_error(
        "the node serves neither receipt.audit nor settlement.audit, energy.receipts, "
        "compute_market.sla_history (or refuses them as unauthorised: set THEBLOCK_AUTH_TOKEN)");
  }

  std::vector<StoredReceipt> batch;
  std::map<std::string, std::string> cursors;
  size_t warn_count = 0;

  // settlement.audit: the whole ledger each time; entries up to the cursor's sequence are in
  // the store already.
  if (a[0].ok && a[0].value.isArray()) {
    std::vector<std::pair<int64_t, StoredReceipt>> fresh;
    int64_t max_seq = -1;
    for (const Json& e : a[0].value.asArray()) {
      Mapped m = fromSettlement(e);
      if (!m.receipt) {
        noteReject(report, "settlement.audit", m.error, warn_count);
        continue;
      }
      const int64_t seq = e["sequence"].asInt();
      max_seq = std::max(max_seq, seq);
      fresh.emplace_back(seq, std::move(*m.receipt));
    }
    int64_t floor_seq = settled_seq;
    if (max_seq >= 0 && max_seq < settled_seq) {
      report.warnings.push_back("settlement.audit: the ledger's last sequence went back from " +
                                std::to_string(settled_seq) + " to " + std::to_string(max_seq) +
                                " (node reset?); reading the whole ledger again");
      floor_seq = -1;
    }
    std::sort(fresh.begin(), fresh.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& f : fresh)
      if (f.first > floor_seq) batch.push_back(std::move(f.second));
    if (max_seq >= 0) cursors["settlement.sequence"] = std::to_string(max_seq);
  } else {
    report.unavailable["settlement.audit"] =
        a[0].ok ? "settlement.audit answered " + shapeOf(a[0].value) + ", not a list"
                : reasonOf(a[0], "settlement.audit");
  }

  // compute_market.sla_history: a window of the latest records; ids dedupe.
  if (a[2].ok && a[2].value.isArray()) {
    std::vector<Keyed> sla;
    std::vector<std::string> ids;
    int64_t order = 0;
    for (const Json& e : a[2].value.asArray()) {
      Mapped m = fromSla(e);
      if (!m.receipt) {
        noteReject(report, "compute_market.sla_history", m.error, warn_count);
        continue;
      }
      ids.push_back(m.receipt->id);
      sla.push_back(Keyed{std::move(*m.receipt), --order});
    }
    if (static_cast<int64_t>(ids.size()) >= options_.sla_limit && store_.countIds(ids) == 0 &&
        store_.stats().by_market["compute"] > 0)
      report.warnings.push_back(
          "compute_market.sla_history: all " + std::to_string(ids.size()) +
          " records are new; older ones resolved since the last cycle are beyond its window");
    std::stable_sort(sla.begin(), sla.end(), olderFirst);
    for (auto& k : sla) batch.push_back(std::move(k.r));
  } else {
    report.unavailable["compute_market.sla_history"] =
        a[2].ok ? "compute_market.sla_history answered " + shapeOf(a[2].value) + ", not a list"
                : reasonOf(a[2], "compute_market.sla_history");
  }

  // energy.receipts: paged; the cursor counts entries read in the node's order, anchored by
  // the ids of the first entry and of the last one read. If either anchor moved, the node does
  // not list them oldest first (or trimmed its history): every page is read again (ids dedupe).
  bool energy_ok = true;
  {
    auto idAt = [](const Json& page, size_t i) -> std::string {
      const Json& e = page["receipts"][i];
      return e["meter_hash"].isString() ? e["meter_hash"].asString() : "";
    };
    auto anchor = [&](const char* k) -> std::string {
      auto it = cursors_now.find(k);
      if (it == cursors_now.end()) return "";
      try {
        Json v = Json::parse(it->second);
        return v.isString() ? v.asString() : "";
      } catch (const JsonError&) {
        return "";
      }
    };
    const std::string first_anchor = anchor("energy.first"), last_anchor = anchor("energy.last");
    Answer ans = a[1];
    bool rescanned = false;
    int64_t next_index = energy_index;
    std::string first_id = first_anchor, last_id = last_anchor;
    std::vector<StoredReceipt> energy;
    auto shaped = [](const Answer& x) {
      return x.ok && x.value.isObject() && x.value["receipts"].isArray();
    };
    auto restartWith = [&](const std::string& why) {
      report.warnings.push_back("energy.receipts: " + why + "; reading every page again");
      rescanned = true;
      energy_index = 0;
      next_index = 0;
      page_no = 0;
      energy.clear();
      ans = node.call("energy.receipts", Json{{"page", 0}, {"page_size", ps}});
    };
    if (energy_index > 0 && shaped(ans)) {
      const Answer& p0 = need_page0 ? a[3] : ans;
      if (shaped(p0) && p0.value["receipts"].size() > 0 && !first_anchor.empty() &&
          idAt(p0.value, 0) != first_anchor)
        restartWith("the first receipt changed (history trimmed, or not listed oldest first)");
    }
    for (;;) {
      if (!shaped(ans)) {
        report.unavailable["energy.receipts"] =
            ans.ok ? "energy.receipts answered " + shapeOf(ans.value) + ", not {\"receipts\":[...]}"
                   : reasonOf(ans, "energy.receipts");
        energy_ok = false;
        break;
      }
      const Json page = ans.value;
      const auto& list = page["receipts"].asArray();
      const Json& total = page["total"];
      if (!rescanned && total.isNumber() && total.asDouble() < static_cast<double>(energy_index)) {
        restartWith("the node's total fell below the " + std::to_string(energy_index) +
                    " receipts already read (history trimmed or node reset)");
        continue;
      }
      const int64_t base = page_no * ps;
      if (!rescanned && !last_anchor.empty() && energy_index > base &&
          energy_index - base <= static_cast<int64_t>(list.size()) &&
          idAt(page, static_cast<size_t>(energy_index - base - 1)) != last_anchor) {
        restartWith("the receipts already read moved to other pages");
        continue;
      }
      if (page_no == 0 && !list.empty()) first_id = idAt(page, 0);
      for (size_t i = 0; i < list.size(); ++i) {
        Mapped m = fromEnergy(list[i]);
        if (!m.receipt) {
          noteReject(report, "energy.receipts", m.error, warn_count);
          continue;
        }
        if (base + static_cast<int64_t>(i) >= energy_index) energy.push_back(std::move(*m.receipt));
      }
      if (base + static_cast<int64_t>(list.size()) > next_index) {
        next_index = base + static_cast<int64_t>(list.size());
        last_id = idAt(page, list.size() - 1);
      }
      if (static_cast<int64_t>(list.size()) < ps) break;
      if (static_cast<int64_t>(energy.size()) >= options_.max_buffer) {
        report.warnings.push_back("energy.receipts: backlog larger than " +
                                  std::to_string(options_.max_buffer) +
                                  "; the rest is read next cycle");
        break;
      }
      ++page_no;
      ans = node.call("energy.receipts", Json{{"page", page_no}, {"page_size", ps}});
    }
    for (auto& r : energy) batch.push_back(std::move(r));
    // Everything before next_index is in this batch or already stored: safe to move even
    // when a later page failed.
    if (next_index != cursorOf("energy.index").value_or(0) || rescanned) {
      cursors["energy.index"] = std::to_string(next_index);
      cursors["energy.first"] = Json(first_id).dump();
      cursors["energy.last"] = Json(last_id).dump();
    }
  }

  if (report.unavailable.size() == 3) {  // every source failed
    std::string why;
    for (const auto& [k, v] : report.unavailable) why += (why.empty() ? "" : "; ") + v;
    throw std::runtime_error("no receipt source answered: " + why +
                             " (nothing ingested; retried next cycle)");
  }
  if (!batch.empty() || !cursors.empty()) report.outcome = store_.ingest(batch, cursors, now);
  report.complete = report.unavailable.empty() && energy_ok;
  return report;
}

}  // namespace receipts
}  // namespace blockbuster
