#include "views.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace devnode {

namespace {

// Reads an integer parameter; false (with error set) when present but not an integer in range.
bool intParam(const Json& params, const char* key, int64_t fallback, int64_t lo, int64_t hi,
              int64_t* out, RpcError* error) {
  const Json* v = params.isObject() ? params.find(key) : nullptr;
  if (!v || v->isNull()) {
    *out = fallback;
    return true;
  }
  if (!v->isNumber() || v->asDouble() != std::floor(v->asDouble()) || v->asDouble() < lo ||
      v->asDouble() > hi) {
    *error = {-32602, std::string("invalid params: ") + key + " must be an integer from " +
                          std::to_string(lo) + " to " + std::to_string(hi)};
    return false;
  }
  *out = v->asInt();
  return true;
}

double round3(double v) { return std::round(v * 1000.0) / 1000.0; }

// Receipt seqs of one market (or all), oldest first, as a random-access view.
struct SeqView {
  const ChainState& s;
  const std::deque<uint64_t>* list;  // null: every receipt
  size_t size() const { return list ? list->size() : s.receipts.size(); }
  const Receipt& at(size_t i) const { return list ? s.bySeq((*list)[i]) : s.receipts[i]; }
  // First index whose block height is >= h (heights never decrease along the history).
  size_t lowerBoundHeight(uint64_t h) const {
    size_t lo = 0, hi = size();
    while (lo < hi) {
      size_t mid = (lo + hi) / 2;
      if (at(mid).height < h)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }
};

SeqView viewOf(const ChainState& s, std::optional<Market> m) {
  return SeqView{s, m ? &s.by_market[static_cast<int>(*m)] : nullptr};
}

Json specReceipt(const Receipt& r) {
  Json details = Json::object();
  switch (r.market) {
    case Market::kCompute:
      details = Json{
          {"lane", r.lane}, {"units", r.units}, {"refunded", r.refunded}, {"burned", r.burned}};
      break;
    case Market::kStorage:
      details = Json{{"bytes", r.bytes}, {"chunks", r.chunks}};
      break;
    case Market::kEnergy:
      details = Json{{"kwh", r.kwh}, {"treasury_fee", r.treasury_fee}, {"slashed", r.slashed}};
      break;
    case Market::kAd:
      details = Json{{"campaign_id", r.campaign_id}, {"impressions", r.impressions}};
      break;
  }
  return Json{{"id", r.id},
              {"market", marketName(r.market)},
              {"block_height", r.height},
              {"timestamp", r.timestamp},
              {"provider", r.provider},
              {"consumer", r.consumer},
              {"amount", r.amount},
              {"status", r.status},
              {"details", details}};
}

// ---- spec profile ----------------------------------------------------------------------------

Json specPeers(const ChainState& s) {
  Json peers = Json::array();
  for (const auto& p : s.peers) {
    if (!p.connected) continue;
    peers.push_back(Json{{"id", p.spec_id},
                         {"address", p.address},
                         {"connected_at", p.connected_at},
                         {"latency_ms", std::round(p.latency_ms)},
                         {"version", p.version},
                         {"is_validator", p.validator},
                         {"reputation", p.reputation}});
  }
  return Json{{"peers", peers}};
}

Json specNetStats(const ChainState& s) {
  const double block_s = static_cast<double>(s.block_nominal_ms) / 1000.0;
  int64_t txs = 0;
  for (int64_t t : s.recent_txs) txs += t;
  Json tps;  // no block yet: no rate to report
  if (!s.recent_txs.empty())
    tps = round3(static_cast<double>(txs) / (static_cast<double>(s.recent_txs.size()) * block_s));
  double latency = 0;
  int n = 0;
  for (const auto& p : s.peers)
    if (p.connected) {
      latency += p.latency_ms;
      ++n;
    }
  return Json{{"tps", tps},
              {"bandwidth_in", std::round(static_cast<double>(s.last_block_bytes_in) / block_s)},
              {"bandwidth_out", std::round(static_cast<double>(s.last_block_bytes_out) / block_s)},
              {"active_connections", n},
              {"avg_latency_ms", n ? Json(round3(latency / n)) : Json()}};
}

Json specLatestHeader(const ChainState& s) {
  return Json{{"number", s.height},
              {"hash", s.hashOf(s.height)},
              {"parent_hash", s.height ? Json(s.hashOf(s.height - 1)) : Json()},
              {"timestamp", s.timestampOf(s.height)},
              {"difficulty", s.difficultyOf(s.height)},
              {"finality_time", s.height ? Json(s.finality_time) : Json()}};
}

Json specCompute(const ChainState& s) {
  double util = 0;
  for (const auto& c : s.compute_providers) util += c.utilization;
  return Json{{"active_jobs", s.active_jobs},
              {"providers", s.compute_providers.size()},
              {"avg_utilization", round3(util / static_cast<double>(s.compute_providers.size()))},
              {"total_revenue", s.compute_revenue_total}};
}

Json specStorage(const ChainState& s) {
  double price = 0, cap = 0, used = 0;
  for (const auto& p : s.storage_providers) {
    price += static_cast<double>(p.price_per_block);
    cap += static_cast<double>(p.capacity_bytes);
    used += static_cast<double>(p.used_bytes);
  }
  return Json{{"total_stored", s.total_stored},
              {"providers", s.storage_providers.size()},
              {"avg_price", round3(price / static_cast<double>(s.storage_providers.size()))},
              {"capacity_used", cap > 0 ? round3(used / cap) : 0.0}};
}

Json specEnergy(const ChainState& s) {
  double price = 0;
  for (const auto& e : s.energy_providers) price += static_cast<double>(e.price_per_kwh);
  // Traders and volume over the last 24 h of chain time, within the retained history.
  const int64_t since = s.timestampOf(s.height) - 86400;
  std::set<std::string> traders;
  int64_t volume = 0;
  const auto& list = s.by_market[static_cast<int>(Market::kEnergy)];
  for (auto it = list.rbegin(); it != list.rend(); ++it) {
    const Receipt& r = s.bySeq(*it);
    if (r.timestamp < since) break;
    traders.insert(r.provider);
    traders.insert(r.consumer);
    volume += r.kwh;
  }
  return Json{{"total_credits", s.total_credits_kwh},
              {"avg_price", round3(price / static_cast<double>(s.energy_providers.size()))},
              {"active_traders", traders.size()},
              {"volume_24h", volume}};
}

Json specAds(const ChainState& s) {
  Json cpm;  // no impressions yet: no CPM
  if (s.ad_impressions_total > 0)
    cpm = round3(static_cast<double>(s.ad_revenue_total) * 1000.0 /
                 static_cast<double>(s.ad_impressions_total));
  return Json{{"active_campaigns", s.campaigns.size()},
              {"total_impressions", s.ad_impressions_total},
              {"total_revenue", s.ad_revenue_total},
              {"avg_cpm", cpm}};
}

bool specReceiptAudit(const ChainState& s, const Json& params, Json* result, RpcError* error) {
  Json p = params;
  if (params.isArray()) {
    // Positional form: [limit, offset, market, start_height], or [{...}].
    if (params.size() == 1 && params[size_t{0}].isObject()) {
      p = params[size_t{0}];
    } else {
      static const char* kNames[] = {"limit", "offset", "market", "start_height"};
      p = Json::object();
      for (size_t i = 0; i < params.size() && i < 4; ++i) p[kNames[i]] = params[i];
    }
  }
  int64_t limit, offset, start;
  if (!intParam(p, "limit", 100, 0, 1000, &limit, error) ||
      !intParam(p, "offset", 0, 0, INT64_MAX, &offset, error) ||
      !intParam(p, "start_height", 0, 0, INT64_MAX, &start, error))
    return false;
  std::optional<Market> market;
  const Json& m = p["market"];
  if (!m.isNull()) {
    Market mk;
    if (!m.isString() || !parseMarket(m.asString(), &mk)) {
      *error = {-32602, "invalid params: market must be one of compute, storage, energy, ad"};
      return false;
    }
    market = mk;
  }
  SeqView v = viewOf(s, market);
  const size_t first = v.lowerBoundHeight(static_cast<uint64_t>(start));
  const size_t total = v.size() - first;
  Json receipts = Json::array();
  // Newest first: offset 0 is the latest receipt.
  for (int64_t k = 0; k < limit; ++k) {
    const uint64_t skip = static_cast<uint64_t>(offset) + static_cast<uint64_t>(k);
    if (skip >= total) break;
    receipts.push_back(specReceipt(v.at(v.size() - 1 - skip)));
  }
  *result = Json{{"receipts", receipts}, {"total", total}};
  return true;
}

// ---- theblock profile ------------------------------------------------------------------------

Json header(const ChainState& s, uint64_t h) {
  return Json{{"height", h}, {"hash", s.hashOf(h)}, {"difficulty", s.difficultyOf(h)}};
}

Json peerStats(const Peer& p) {
  Json drops = Json::object();
  for (const auto& [k, v] : p.drops) drops[k] = v;
  Json fails = Json::object();
  for (const auto& [k, v] : p.handshake_fail) fails[k] = v;
  const double span = std::max<double>(1.0, static_cast<double>(p.last_updated - p.sec_start));
  Json metrics{{"requests", p.requests},
               {"bytes_sent", p.bytes_sent},
               {"sends", p.sends},
               {"drops", drops},
               {"handshake_fail", fails},
               {"handshake_success", p.handshake_success},
               {"last_handshake_ms", p.last_handshake_ms},
               {"tls_errors", p.tls_errors},
               {"reputation", Json{{"score", p.reputation / 100.0}}},
               {"last_updated", p.last_updated},
               {"req_avg", round3(static_cast<double>(p.requests) / span)},
               {"byte_avg", round3(static_cast<double>(p.bytes_sent) / span)},
               {"throttled_until", 0},
               {"throttle_reason", Json()},
               {"backoff_level", p.backoff_level},
               {"sec_start", p.sec_start}};
  return Json{{"peer_id", p.peer_id}, {"metrics", metrics}};
}

Json computeStats(const ChainState& s) {
  static const char* kLanes[] = {"consumer", "industrial"};
  Json lanes = Json::array();
  for (int l = 0; l < 2; ++l)
    lanes.push_back(Json{{"lane", kLanes[l]},
                         {"bids", s.lane_bids[l]},
                         {"asks", s.lane_asks[l]},
                         {"oldest_bid_wait_ms", s.lane_bid_wait_ms[l]},
                         {"oldest_ask_wait_ms", s.lane_ask_wait_ms[l]}});
  Json pending = Json::array();
  const int64_t n_pending = std::min<int64_t>(s.queued[0] + s.queued[1] + s.queued[2], 10);
  for (int64_t i = 0; i < n_pending; ++i) {
    const int64_t prio = i < s.queued[0] ? 2 : (i < s.queued[0] + s.queued[1] ? 1 : 0);
    pending.push_back(Json{{"job_id", "job_" + hexId(s.seed ^ 0x9E9D, s.height * 16 + i, 1)},
                           {"priority", prio},
                           {"effective_priority", static_cast<double>(prio) + 0.1 * (i % 3)}});
  }
  Json matches{{"consumer", Json::array()}, {"industrial", Json::array()}};
  const auto& list = s.by_market[static_cast<int>(Market::kCompute)];
  int taken[2] = {0, 0};
  for (auto it = list.rbegin(); it != list.rend() && taken[0] + taken[1] < 20; ++it) {
    const Receipt& r = s.bySeq(*it);
    const int l = r.lane == "consumer" ? 0 : 1;
    if (taken[l] >= 10) continue;
    taken[l]++;
    matches[kLanes[l]].push_back(Json{{"job_id", r.id},
                                      {"provider", r.provider},
                                      {"buyer", r.consumer},
                                      {"price", r.amount + r.refunded + r.burned},
                                      {"issued_at", r.timestamp},
                                      {"lane", r.lane}});
  }
  double util = 0;
  for (const auto& c : s.compute_providers) util += c.utilization;
  util /= static_cast<double>(s.compute_providers.size());
  return Json{
      {"industrial_backlog", s.queued[0] + s.queued[1] + s.queued[2]},
      {"industrial_utilization", round3(util)},
      {"industrial_units_total", s.industrial_units_total},
      {"industrial_price_per_unit", s.industrial_price_per_unit},
      {"industrial_price_base", s.industrial_price_base},
      {"industrial_price_weighted",
       round3(0.5 * static_cast<double>(s.industrial_price_base + s.industrial_price_per_unit))},
      {"lanes", lanes},
      {"pending", pending},
      {"recent_matches", matches},
      {"lane_starvation", Json::array()},
      {"settlement_engine", Json{{"engine", "inhouse"}, {"legacy_mode", false}}},
      {"blocktorch", Json()}};
}

Json schedulerStats(const ChainState& s) {
  Json util = Json::object();
  for (const auto& c : s.compute_providers) util[c.account] = round3(c.utilization);
  return Json{{"active_jobs", s.active_jobs},
              {"queued_high", s.queued[0]},
              {"queued_normal", s.queued[1]},
              {"queued_low", s.queued[2]},
              {"preemptions", s.preemptions},
              {"success", s.success},
              {"priority_miss", s.priority_miss},
              {"capability_mismatch", s.capability_mismatch},
              {"reputation_failure", s.reputation_failure},
              {"effective_price", s.industrial_price_per_unit},
              {"pending", Json::array()},
              {"utilization", util}};
}

Json ledgerEntry(const ChainState& s, const Receipt& r) {
  return Json{{"sequence", r.ledger_seq},
              {"timestamp", r.timestamp},
              {"entity", r.provider},
              {"memo", "settle " + r.id},
              {"delta", r.amount},
              {"balance", r.balance_after},
              {"anchor", hexId(s.seed ^ 0xA4C4, r.ledger_seq, 4)}};
}

Json slaEntry(const Receipt& r) {
  return Json{{"job_id", r.id},
              {"provider", r.provider},
              {"buyer", r.consumer},
              {"outcome", r.status},
              {"outcome_reason", r.outcome_reason.empty() ? Json() : Json(r.outcome_reason)},
              {"burned", r.burned},
              {"refunded", r.refunded},
              {"deadline", r.deadline},
              {"resolved_at", r.timestamp},
              {"proofs", Json::array()}};
}

Json energyReceipt(const Receipt& r) {
  return Json{{"buyer", r.consumer},        {"seller", r.provider},
              {"kwh_delivered", r.kwh},     {"price_paid", r.amount},
              {"block_settled", r.height},  {"treasury_fee", r.treasury_fee},
              {"slash_applied", r.slashed}, {"meter_hash", r.id}};
}

Json storageManifests(const ChainState& s, int64_t limit) {
  Json manifests = Json::array();
  const auto& list = s.by_market[static_cast<int>(Market::kStorage)];
  int64_t n = 0;
  for (auto it = list.rbegin(); it != list.rend() && n < limit; ++it, ++n) {
    const Receipt& r = s.bySeq(*it);
    manifests.push_back(Json{{"manifest", hexId(s.seed ^ 0x3A41, r.seq, 4)},
                             {"total_len", r.bytes},
                             {"chunk_count", r.chunks},
                             {"erasure", "reed-solomon(16,8)"},
                             {"compression", "lz77-rle"},
                             {"encryption", "chacha20-poly1305"}});
  }
  Json policy{{"rent_rate_per_byte", 1}, {"erasure_required", true}, {"replication", 3}};
  return Json{{"manifests", manifests}, {"policy", policy}, {"status", "ok"}};
}

// storage_incentives (node/src/rpc/storage.rs incentives_snapshot): one replica per stored
// object's contract, read from the market's contracts without opening the pipeline.
Json storageIncentives(const ChainState& s) {
  Json replicas = Json::array();
  const auto& list = s.by_market[static_cast<int>(Market::kStorage)];
  for (auto it = list.rbegin(); it != list.rend() && replicas.size() < 1000; ++it) {
    const Receipt& r = s.bySeq(*it);
    replicas.push_back(Json{{"object_id", hexId(s.seed ^ 0x3A41, r.seq, 4)},
                            {"provider", r.provider},
                            {"shares", 1},
                            {"price_per_block", r.amount},
                            {"deposit", r.amount * 10},
                            {"proof_successes", 1},
                            {"proof_failures", 0},
                            {"contract_accrued", r.amount},
                            {"contract_total_deposit", r.amount * 10},
                            {"last_payment_block", r.height},
                            {"last_proof_block", r.height},
                            {"last_outcome", "success"}});
  }
  return Json{{"replicas", replicas}, {"status", "ok"}};
}

Json discoverProviders(const ChainState& s, int64_t limit) {
  Json providers = Json::array();
  int64_t n = 0;
  for (const auto& p : s.storage_providers) {
    if (n++ >= limit) break;
    providers.push_back(Json{{"provider", p.provider},
                             {"region", p.region},
                             {"capacity_bytes", p.capacity_bytes},
                             {"price_per_block", p.price_per_block},
                             {"escrow_deposit", p.escrow_deposit},
                             {"latency_ms", p.latency_ms},
                             {"success_rate_ppm", p.success_rate_ppm},
                             {"proof_successes", p.proof_successes},
                             {"proof_failures", p.proof_failures},
                             {"last_seen_block", p.last_seen_block},
                             {"expires_at", p.expires_at},
                             {"tags", Json::Array{Json(p.tag)}},
                             {"version", p.version}});
  }
  // The real node lists a provider twice when it is both in the registry and in the
  // discovery cache; clients must deduplicate.
  if (providers.size() > 0) providers.push_back(Json(providers.asArray().front()));
  return Json{{"providers", providers}, {"status", "ok"}};
}

Json energyMarketState(const ChainState& s) {
  Json providers = Json::array();
  for (const auto& e : s.energy_providers)
    providers.push_back(Json{{"provider_id", e.provider_id},
                             {"owner", e.owner},
                             {"jurisdiction", e.jurisdiction},
                             {"capacity_kwh", e.capacity_kwh},
                             {"available_kwh", e.available_kwh},
                             {"price_per_kwh", e.price_per_kwh},
                             {"reputation_score", round3(e.reputation_score)},
                             {"meter_address", e.meter_address},
                             {"total_delivered_kwh", e.total_delivered_kwh},
                             {"staked_balance", e.staked_balance}});
  Json credits = Json::array();
  for (const auto& c : s.credits)
    credits.push_back(Json{{"provider", c.provider},
                           {"amount_kwh", c.amount_kwh},
                           {"timestamp", c.timestamp},
                           {"meter_hash", c.meter_hash}});
  Json receipts = Json::array();
  const auto& list = s.by_market[static_cast<int>(Market::kEnergy)];
  const size_t from = list.size() > 25 ? list.size() - 25 : 0;
  for (size_t i = from; i < list.size(); ++i) receipts.push_back(energyReceipt(s.bySeq(list[i])));
  Json governance{{"min_stake", 10000}, {"treasury_fee_bps", 100}, {"rehearsal", false}};
  return Json{{"providers", providers},    {"credits", credits},       {"receipts", receipts},
              {"disputes", Json::array()}, {"governance", governance}, {"status", "ok"}};
}

bool energyReceipts(const ChainState& s, const Json& params, Json* result, RpcError* error) {
  int64_t page, page_size;
  if (!intParam(params, "page", 0, 0, INT64_MAX / 1000, &page, error) ||
      !intParam(params, "page_size", 25, 1, 100, &page_size, error))
    return false;
  const Json& pid = params["provider_id"];
  if (!pid.isNull() && !pid.isString()) {
    *error = {-32602, "invalid params: provider_id must be a string"};
    return false;
  }
  const auto& list = s.by_market[static_cast<int>(Market::kEnergy)];
  Json receipts = Json::array();
  int64_t total = 0;
  const int64_t first = page * page_size;
  // Oldest first: a page keeps its content as new receipts arrive (until history is trimmed).
  for (uint64_t seq : list) {
    const Receipt& r = s.bySeq(seq);
    if (pid.isString() && r.provider != pid.asString()) continue;
    if (total >= first && total < first + page_size) receipts.push_back(energyReceipt(r));
    ++total;
  }
  *result = Json{{"page", page},
                 {"page_size", page_size},
                 {"receipts", receipts},
                 {"total", total},
                 {"status", "ok"}};
  return true;
}

Json adInventory(const ChainState& s) {
  Json campaigns = Json::array();
  for (const auto& c : s.campaigns)
    campaigns.push_back(Json{{"id", c.id},
                             {"advertiser_account", c.advertiser},
                             {"creatives", Json::Array{Json(c.id + "-creative-1")}},
                             {"remaining_budget_usd_micros", c.remaining},
                             {"reserved_budget_usd_micros", c.reserved}});
  static const char* kDomains[] = {"news.example", "video.example", "games.example"};
  Json cohorts = Json::array();
  for (int i = 0; i < 3; ++i)
    cohorts.push_back(Json{
        {"domain", kDomains[i]},
        {"price_per_mib_usd_micros", 80 + 10 * i + int(s.height % 7)},
        {"target_utilization_ppm", 700000},
        {"observed_utilization_ppm", 500000 + int64_t(mix64(s.seed, s.height * 3 + i) % 400000)}});
  Json distribution{{"viewer_percent", 50},
                    {"host_percent", 30},
                    {"hardware_percent", 10},
                    {"verifier_percent", 5},
                    {"liquidity_percent", 5}};
  return Json{{"campaigns", campaigns},
              {"cohort_prices", cohorts},
              {"distribution", distribution},
              {"oracle", Json{{"price_usd_micros", s.oracle_price_usd_micros}}},
              {"status", "ok"}};
}

Json adBudget(const ChainState& s) {
  Json campaigns = Json::array();
  int64_t spend = 0, target = 0;
  for (const auto& c : s.campaigns) {
    campaigns.push_back(Json{{"campaign_id", c.id},
                             {"epoch_impressions", c.epoch_impressions},
                             {"epoch_spend", c.epoch_spend},
                             {"epoch_target", c.epoch_target},
                             {"remaining_budget", c.remaining},
                             {"total_budget", c.total_budget}});
    spend += c.epoch_spend;
    target += c.epoch_target;
  }
  Json summary{{"campaign_count", s.campaigns.size()},
               {"cohort_count", 3},
               {"epoch_spend_total", spend},
               {"epoch_target_total", target},
               {"realized_spend_total", s.ad_revenue_total}};
  return Json{{"campaigns", campaigns}, {"summary", summary}, {"status", "ok"}};
}

Json adReadiness(const ChainState& s) {
  const int64_t hosts = static_cast<int64_t>(std::min<size_t>(s.accounts.size() / 4, 64));
  const int64_t providers = static_cast<int64_t>(s.storage_providers.size());
  Json blockers = Json::array();
  if (s.unique_viewers < 500) blockers.push_back("insufficient_unique_viewers");
  Json util{{"mean_ppm", 550000 + int64_t(s.height % 100) * 1000},
            {"min_ppm", 200000},
            {"max_ppm", 900000}};
  return Json{{"ready", blockers.size() == 0},      {"blockers", blockers},
              {"unique_viewers", s.unique_viewers}, {"host_count", hosts},
              {"provider_count", providers},        {"utilization", util}};
}

Json governorStatus(const ChainState& s) {
  if (!s.governor) return Json{{"status", "disabled"}};
  static const char* kMarkets[] = {"storage", "compute", "energy", "ad"};
  Json metrics = Json::array();
  for (int i = 0; i < 4; ++i)
    metrics.push_back(
        Json{{"market", kMarkets[i]},
             {"utilization_ppm", 400000 + int64_t(mix64(s.seed, s.height / 100 * 4 + i) % 500000)},
             {"provider_margin_ppm",
              50000 + int64_t(mix64(s.seed ^ 7, s.height / 100 * 4 + i) % 100000)}});
  Json gates = Json::array();
  for (const char* g : {"operational", "naming"}) {
    gates.push_back(Json{{"name", g},
                         {"state", s.height >= 200 ? "active" : "rehearsal"},
                         {"enter_streak", std::min<uint64_t>(s.height / 100, 10)},
                         {"exit_streak", 0},
                         {"streak_required", 3},
                         {"last_reason", "metrics within bounds"},
                         {"last_metrics", Json::object()}});
  }
  Json health{{"pending_compute", s.queued[0] + s.queued[1] + s.queued[2]},
              {"pending_energy", 0},
              {"pending_storage", 0}};
  return Json{{"enabled", true},
              {"epoch", s.height / 100},
              {"economics_prev_market_metrics", metrics},
              {"gates", gates},
              {"receipt_health", health}};
}

}  // namespace

bool isLightMethod(const std::string& method) { return method.rfind("light.", 0) == 0; }

CallStatus renderSpec(const ChainState& s, const std::string& method, const Json& params,
                      Json* result, RpcError* error) {
  if (method == "net.peers")
    *result = specPeers(s);
  else if (method == "net.stats")
    *result = specNetStats(s);
  else if (method == "light.latest_header")
    *result = specLatestHeader(s);
  else if (method == "compute_market.stats")
    *result = specCompute(s);
  else if (method == "storage.stats")
    *result = specStorage(s);
  else if (method == "energy.market_state")
    *result = specEnergy(s);
  else if (method == "ad_market.stats")
    *result = specAds(s);
  else if (method == "receipt.audit")
    return specReceiptAudit(s, params, result, error) ? CallStatus::kOk : CallStatus::kError;
  else
    return CallStatus::kUnknownMethod;
  return CallStatus::kOk;
}

CallStatus renderTheBlock(const ChainState& s, const std::string& method, const Json& params,
                          Json* result, RpcError* error) {
  const Json empty = Json::object();
  const Json& p = params.isObject() ? params : empty;
  int64_t a = 0, b = 0;
  auto fail = [&] { return CallStatus::kError; };
  if (method == "net.overlay_status") {
    int64_t persisted = 0;
    for (const auto& peer : s.peers) persisted += peer.ever_connected ? 1 : 0;
    *result = Json{{"active_peers", s.connectedPeers()},
                   {"backend", "inhouse"},
                   {"database_path", "/var/lib/the-block/net/peers"},
                   {"persisted_peers", persisted}};
  } else if (method == "net.peer_stats_all") {
    if (!intParam(p, "offset", 0, 0, INT64_MAX, &a, error) ||
        !intParam(p, "limit", 100, 0, 10000, &b, error))
      return fail();
    Json out = Json::array();
    int64_t index = 0;
    for (const auto& peer : s.peers) {
      if (!peer.ever_connected) continue;
      if (index >= a && index < a + b) out.push_back(peerStats(peer));
      ++index;
    }
    *result = out;
  } else if (method == "light.headers") {
    if (!intParam(p, "start", 0, 0, INT64_MAX, &a, error) ||
        !intParam(p, "limit", 100, 0, 1000, &b, error))
      return fail();
    Json out = Json::array();
    // Block 0 is genesis, not a produced block: an empty chain answers [].
    for (uint64_t h = std::max<uint64_t>(1, uint64_t(a)); h <= s.height && int64_t(out.size()) < b;
         ++h)
      out.push_back(header(s, h));
    *result = out;
  } else if (method == "light.latest_header") {
    *result = header(s, s.height);
  } else if (method == "mempool.stats") {
    const Json& lane = p["lane"];
    int l = 0;
    if (lane.isString() && lane.asString() == "industrial") {
      l = 1;
    } else if (!lane.isNull() && !(lane.isString() && lane.asString() == "consumer")) {
      *error = {-32602, "invalid params: lane must be \"consumer\" or \"industrial\""};
      return fail();
    }
    const int64_t size = s.mempool_size[l];
    *result = Json{{"size", size},
                   {"fee_floor", s.mempool_fee_floor[l]},
                   {"fee_p50", s.mempool_fee_floor[l] + 2},
                   {"fee_p90", s.mempool_fee_floor[l] + 9},
                   {"age_p50", size ? Json(1200 + size * 3) : Json(0)},
                   {"age_p95", size ? Json(5000 + size * 11) : Json(0)}};
  } else if (method == "consensus.difficulty") {
    *result = Json{{"difficulty", s.difficultyOf(s.height)}};
  } else if (method == "compute_market.stats") {
    *result = computeStats(s);
  } else if (method == "compute_market.scheduler_stats") {
    *result = schedulerStats(s);
  } else if (method == "compute_market.provider_balances") {
    Json out = Json::array();
    for (const auto& c : s.compute_providers)
      out.push_back(Json{{"provider", c.account}, {"balance", c.balance}});
    *result = Json{{"providers", out}};
  } else if (method == "settlement.audit" || method == "compute_market.audit") {
    Json out = Json::array();
    for (uint64_t seq : s.by_market[static_cast<int>(Market::kCompute)])
      out.push_back(ledgerEntry(s, s.bySeq(seq)));
    *result = out;
  } else if (method == "compute_market.sla_history") {
    if (!intParam(p, "limit", 100, 0, 1000, &b, error)) return fail();
    Json out = Json::array();
    const auto& list = s.by_market[static_cast<int>(Market::kCompute)];
    for (auto it = list.rbegin(); it != list.rend() && int64_t(out.size()) < b; ++it)
      out.push_back(slaEntry(s.bySeq(*it)));
    *result = out;
  } else if (method == "storage.manifests") {
    if (!intParam(p, "limit", 100, 0, INT64_MAX, &b, error)) return fail();
    *result = storageManifests(s, std::min<int64_t>(b, 1000));
  } else if (method == "storage.discover_providers") {
    if (!intParam(p, "object_size", 0, 0, INT64_MAX, &a, error) ||
        !intParam(p, "limit", 100, 0, 1000, &b, error))
      return fail();
    *result = discoverProviders(s, b);
  } else if (method == "storage_incentives") {
    *result = storageIncentives(s);
  } else if (method == "energy.market_state") {
    *result = energyMarketState(s);
  } else if (method == "energy.receipts") {
    if (!energyReceipts(s, p, result, error)) return fail();
  } else if (method == "ad_market.inventory") {
    *result = adInventory(s);
  } else if (method == "ad_market.budget") {
    *result = adBudget(s);
  } else if (method == "ad_market.readiness") {
    *result = adReadiness(s);
  } else if (method == "governor.status") {
    *result = governorStatus(s);
  } else {
    return CallStatus::kUnknownMethod;
  }
  return CallStatus::kOk;
}

namespace {

Json fieldMap(std::initializer_list<std::pair<const char*, const char*>> pairs) {
  Json out = Json::object();
  for (const auto& [canonical, source] : pairs) out[canonical] = source;
  return out;
}

Json sourceOf(const Receipt& r, Profile profile) {
  if (profile == Profile::kSpec) {
    return Json{{"sources", Json::Array{Json{{"method", "receipt.audit"},
                                             {"match", Json{{"id", r.id}}},
                                             {"fields", fieldMap({{"id", "id"},
                                                                  {"market", "market"},
                                                                  {"block_height", "block_height"},
                                                                  {"timestamp", "timestamp"},
                                                                  {"provider", "provider"},
                                                                  {"consumer", "consumer"},
                                                                  {"amount", "amount"},
                                                                  {"status", "status"}})}}}},
                {"unavailable", Json::array()}};
  }
  switch (r.market) {
    case Market::kCompute:
      return Json{
          {"sources", Json::Array{Json{{"method", "compute_market.sla_history"},
                                       {"match", Json{{"job_id", r.id}}},
                                       {"fields", fieldMap({{"id", "job_id"},
                                                            {"provider", "provider"},
                                                            {"consumer", "buyer"},
                                                            {"status", "outcome"},
                                                            {"timestamp", "resolved_at"}})}},
                                  Json{{"method", "settlement.audit"},
                                       {"match", Json{{"memo", "settle " + r.id}}},
                                       {"fields", fieldMap({{"amount", "delta"},
                                                            {"provider", "entity"},
                                                            {"timestamp", "timestamp"}})}}}},
          {"unavailable", Json::Array{Json("block_height")}}};
    case Market::kEnergy:
      return Json{
          {"sources", Json::Array{Json{{"method", "energy.receipts"},
                                       {"match", Json{{"meter_hash", r.id}}},
                                       {"fields", fieldMap({{"id", "meter_hash"},
                                                            {"provider", "seller"},
                                                            {"consumer", "buyer"},
                                                            {"amount", "price_paid"},
                                                            {"block_height", "block_settled"}})}}}},
          {"unavailable", Json::Array{Json("timestamp"), Json("status")}}};
    case Market::kStorage:
    case Market::kAd:
      break;
  }
  return Json{{"sources", Json::array()},
              {"unavailable",
               Json::Array{Json("id"), Json("block_height"), Json("timestamp"), Json("provider"),
                           Json("consumer"), Json("amount"), Json("status")}},
              {"note", "the real node serves no per-receipt read for this market"}};
}

}  // namespace

std::string renderGroundTruth(const ChainState& s, Profile profile, std::optional<Market> market,
                              uint64_t start_height, bool with_sources) {
  SeqView v = viewOf(s, market);
  const uint64_t issued = market ? s.issued_by_market[static_cast<int>(*market)] : s.issued;
  // Written entry by entry: a history of 100000 receipts never exists as one JSON tree.
  std::string out =
      "{\"dropped\":" + std::to_string(issued - v.size()) +
      ",\"height\":" + std::to_string(s.height) + ",\"issued_total\":" + std::to_string(issued) +
      ",\"order\":\"oldest_first\",\"profile\":\"" + profileName(profile) + "\",\"receipts\":[";
  bool first = true;
  for (size_t i = v.lowerBoundHeight(start_height); i < v.size(); ++i) {
    const Receipt& r = v.at(i);
    Json entry{{"id", r.id},
               {"market", marketName(r.market)},
               {"block_height", r.height},
               {"timestamp", r.timestamp},
               {"provider", r.provider},
               {"consumer", r.consumer},
               {"amount", r.amount},
               {"status", r.status}};
    if (with_sources) entry["source"] = sourceOf(r, profile);
    if (!first) out += ',';
    first = false;
    dumpSortedTo(entry, out);
  }
  out += "],\"retained\":" + std::to_string(v.size()) + "}";
  return out;
}

Json renderSummary(const ChainState& s) {
  Json by_market = Json::object();
  for (int i = 0; i < kMarketCount; ++i)
    by_market[marketName(static_cast<Market>(i))] =
        Json{{"issued", s.issued_by_market[i]}, {"retained", s.by_market[i].size()}};
  return Json{{"height", s.height},
              {"tip_hash", s.hashOf(s.height)},
              {"tip_timestamp", s.timestampOf(s.height)},
              {"peers_total", s.peers.size()},
              {"peers_connected", s.connectedPeers()},
              {"accounts", s.accounts.size()},
              {"receipts", Json{{"issued", s.issued},
                                {"retained", s.receipts.size()},
                                {"max", s.max_receipts},
                                {"by_market", by_market}}}};
}

}  // namespace devnode
