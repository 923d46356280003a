#include "simulation.h"

#include <algorithm>
#include <cmath>

namespace devnode {

const char* marketName(Market m) {
  switch (m) {
    case Market::kCompute:
      return "compute";
    case Market::kStorage:
      return "storage";
    case Market::kEnergy:
      return "energy";
    case Market::kAd:
      return "ad";
  }
  return "?";
}

bool parseMarket(const std::string& s, Market* out) {
  for (int i = 0; i < kMarketCount; ++i) {
    if (s == marketName(static_cast<Market>(i))) {
      *out = static_cast<Market>(i);
      return true;
    }
  }
  return false;
}

namespace {

constexpr const char* kRegions[] = {"us-east", "us-west", "eu-central", "ap-south", "sa-east"};
constexpr const char* kJurisdictions[] = {"US_CA", "US_TX", "DE", "JP", "BR"};
constexpr const char* kVersions[] = {"v1.2.0", "v1.2.1", "v1.3.0"};

template <typename T>
T clampTo(T v, T lo, T hi) {
  return std::max(lo, std::min(hi, v));
}

}  // namespace

int ChainState::connectedPeers() const {
  int n = 0;
  for (const auto& p : peers) n += p.connected ? 1 : 0;
  return n;
}

void ChainState::init(const Options& o, int64_t genesis) {
  seed = o.seed;
  genesis_ms = genesis;
  block_nominal_ms = o.block_ms > 0 ? o.block_ms : 1000;
  receipts_per_block = o.receipts_per_block;
  max_receipts = o.max_receipts;
  governor = o.governor;
  rng = Rng(mix64(seed, 0x5EED));
  const int64_t now = timestampOf(0);

  accounts.reserve(static_cast<size_t>(o.accounts));
  for (int i = 0; i < o.accounts; ++i)
    accounts.push_back("0x" + hexId(seed, 1000000 + i, 3).substr(0, 40));

  peers.resize(static_cast<size_t>(o.peers));
  for (int i = 0; i < o.peers; ++i) {
    Peer& p = peers[static_cast<size_t>(i)];
    p.spec_id = "peer_" + hexId(seed, 2000000 + i, 1).substr(0, 12);
    p.peer_id = hexId(seed, 2000000 + i, 4);
    p.address = "10." + std::to_string(rng.below(250) + 1) + "." + std::to_string(rng.below(256)) +
                "." + std::to_string(rng.below(254) + 1) + ":" + std::to_string(7000 + i % 1000);
    p.version = kVersions[rng.below(3)];
    p.validator = i % 5 == 0;
    p.reputation = static_cast<int>(rng.range(60, 100));
    p.latency_ms = static_cast<double>(rng.range(8, 250));
    p.sec_start = now;
    if (rng.chance(0.85)) {
      p.connected = p.ever_connected = true;
      p.connected_at = now;
      p.handshake_success = 1;
      p.last_handshake_ms = rng.range(20, 250);
      p.last_updated = now;
    }
  }

  auto account = [&](uint64_t k) { return accounts[k % accounts.size()]; };
  const size_t n_compute = clampTo<size_t>(accounts.size() / 8, 3, 64);
  for (size_t i = 0; i < n_compute; ++i)
    compute_providers.push_back({account(i), 0.3 + 0.5 * rng.unit(), rng.range(1000, 50000)});
  active_jobs = rng.range(10, 60);
  queued[0] = rng.range(0, 5);
  queued[1] = rng.range(0, 20);
  queued[2] = rng.range(0, 10);
  industrial_price_base = 100;
  industrial_price_per_unit = rng.range(90, 130);

  const size_t n_storage = clampTo<size_t>(accounts.size() / 10, 3, 40);
  for (size_t i = 0; i < n_storage; ++i) {
    StorageProvider s;
    s.provider = account(n_compute + i);
    s.region = kRegions[i % 5];
    s.capacity_bytes = rng.range(1, 16) * (int64_t(1) << 40);
    s.used_bytes = static_cast<int64_t>(static_cast<double>(s.capacity_bytes) * 0.2 * rng.unit());
    s.price_per_block = rng.range(5, 50);
    s.escrow_deposit = rng.range(1000, 100000);
    s.latency_ms = rng.range(10, 200);
    s.success_rate_ppm = rng.range(950000, 1000000);
    s.tag = i % 2 == 0 ? "ssd" : "hdd";
    s.version = kVersions[rng.below(3)];
    total_stored += s.used_bytes;
    storage_providers.push_back(std::move(s));
  }

  const size_t n_energy = clampTo<size_t>(accounts.size() / 12, 2, 30);
  for (size_t i = 0; i < n_energy; ++i) {
    EnergyProvider e;
    char id[32];
    std::snprintf(id, sizeof id, "energy-%03zu", i);
    e.provider_id = id;
    e.owner = account(n_compute + n_storage + i);
    e.jurisdiction = kJurisdictions[i % 5];
    e.meter_address = "meter-" + hexId(seed, 3000000 + i, 1).substr(0, 12);
    e.capacity_kwh = rng.range(500, 5000);
    e.available_kwh = e.capacity_kwh / 2;
    e.price_per_kwh = rng.range(8, 30);
    e.reputation_score = 0.8 + 0.2 * rng.unit();
    e.staked_balance = rng.range(10000, 100000);
    energy_providers.push_back(std::move(e));
  }

  const int n_campaigns = static_cast<int>(rng.range(3, 6));
  for (int i = 0; i < n_campaigns; ++i) openCampaign();
  oracle_price_usd_micros = rng.range(900000, 1100000);
  mempool_size[0] = rng.range(10, 200);
  mempool_size[1] = rng.range(0, 50);
  mempool_fee_floor[0] = 1;
  mempool_fee_floor[1] = 5;
  finality_time = 2.0;
}

void ChainState::produceBlock() {
  ++height;
  const int64_t now = timestampOf(height);
  recent_txs.push_back(rng.range(20, 400));
  if (recent_txs.size() > kRecentBlocks) recent_txs.pop_front();
  finality_time = static_cast<double>(rng.range(20, 80)) / 10.0;
  stepPeers(now);
  stepMarkets(now);
  for (int i = 0; i < receipts_per_block; ++i) {
    // Rotate the starting market per block so that every market gets receipts even at one
    // receipt per block, with a random market for the rest.
    Market m = i == 0 ? static_cast<Market>(height % kMarketCount)
                      : static_cast<Market>(rng.below(kMarketCount));
    issueReceipt(m, now);
  }
  trimHistory();
}

void ChainState::stepPeers(int64_t now) {
  last_block_bytes_in = 0;
  last_block_bytes_out = 0;
  const int connected = connectedPeers();
  const int total = static_cast<int>(peers.size());
  for (auto& p : peers) {
    if (p.connected) {
      // Keep at least half the pool connected so the network never looks dead by accident.
      if (connected > total / 2 && rng.chance(0.005)) {
        p.connected = false;
        p.drops["disconnect"]++;
        continue;
      }
      p.latency_ms = clampTo(p.latency_ms + static_cast<double>(rng.range(-6, 6)), 3.0, 600.0);
      uint64_t out = 2000 + rng.below(60000), in = 2000 + rng.below(60000);
      p.bytes_sent += out;
      p.bytes_recv += in;
      last_block_bytes_out += out;
      last_block_bytes_in += in;
      p.requests += 1 + rng.below(20);
      p.sends += 1 + rng.below(10);
      if (rng.chance(0.01)) p.drops["rate_limit"]++;
      if (rng.chance(0.002)) p.tls_errors++;
      if (rng.chance(0.02)) p.reputation = clampTo(p.reputation + int(rng.range(-3, 3)), 0, 100);
      p.last_updated = now;
    } else if (rng.chance(0.03)) {
      if (rng.chance(0.1)) {
        p.handshake_fail["timeout"]++;
        p.backoff_level = std::min<int64_t>(p.backoff_level + 1, 6);
        continue;
      }
      p.connected = p.ever_connected = true;
      p.connected_at = now;
      p.handshake_success++;
      p.last_handshake_ms = rng.range(20, 250);
      p.backoff_level = 0;
      p.last_updated = now;
    }
  }
}

void ChainState::stepMarkets(int64_t now) {
  active_jobs = clampTo<int64_t>(active_jobs + rng.range(-3, 3), 0, 500);
  for (auto& q : queued) q = clampTo<int64_t>(q + rng.range(-2, 2), 0, 200);
  if (rng.chance(0.05)) preemptions++;
  if (rng.chance(0.02)) priority_miss++;
  if (rng.chance(0.01)) capability_mismatch++;
  if (rng.chance(0.005)) reputation_failure++;
  for (auto& c : compute_providers)
    c.utilization = clampTo(c.utilization + (rng.unit() - 0.5) * 0.05, 0.0, 1.0);
  industrial_units_total += rng.range(0, 50);
  industrial_price_per_unit =
      clampTo<int64_t>(industrial_price_per_unit + rng.range(-2, 2), 50, 300);
  for (int l = 0; l < 2; ++l) {
    lane_bids[l] = clampTo<int64_t>(lane_bids[l] + rng.range(-2, 2), 0, 100);
    lane_asks[l] = clampTo<int64_t>(lane_asks[l] + rng.range(-2, 2), 0, 100);
    lane_bid_wait_ms[l] = lane_bids[l] ? rng.range(0, 30000) : 0;
    lane_ask_wait_ms[l] = lane_asks[l] ? rng.range(0, 30000) : 0;
  }

  for (auto& s : storage_providers) {
    if (rng.chance(0.3)) s.proof_successes++;
    if (rng.chance(0.004)) s.proof_failures++;
    s.latency_ms = clampTo<int64_t>(s.latency_ms + rng.range(-3, 3), 5, 500);
    s.last_seen_block = height;
    s.expires_at = static_cast<int64_t>(height) + 10000;
  }

  for (auto& e : energy_providers) {
    e.available_kwh = clampTo<int64_t>(e.available_kwh + rng.range(-20, 20), 0, e.capacity_kwh);
    e.price_per_kwh = clampTo<int64_t>(e.price_per_kwh + rng.range(-1, 1), 5, 60);
  }
  if (!energy_providers.empty() && rng.chance(0.3)) {
    const auto& e = energy_providers[rng.below(energy_providers.size())];
    EnergyCredit c{e.provider_id, rng.range(1, 50), now, hexId(seed ^ 0xC4ED17ULL, height, 4)};
    total_credits_kwh += c.amount_kwh;
    credits.push_back(std::move(c));
    if (credits.size() > kMaxCredits) credits.pop_front();
  }

  // A new ad epoch every 100 blocks resets the per-epoch counters.
  if (height % 100 == 0)
    for (auto& c : campaigns) c.epoch_impressions = c.epoch_spend = 0;
  unique_viewers += rng.range(0, 5);
  oracle_price_usd_micros =
      clampTo<int64_t>(oracle_price_usd_micros + rng.range(-500, 500), 500000, 2000000);
  if (campaigns.size() < 3 || (campaigns.size() < 12 && rng.chance(0.01))) openCampaign();

  for (int l = 0; l < 2; ++l) {
    mempool_size[l] = clampTo<int64_t>(mempool_size[l] + rng.range(-10, 10), 0, 5000);
    mempool_fee_floor[l] = clampTo<int64_t>(mempool_fee_floor[l] + rng.range(-1, 1), 1, 50);
  }
}

void ChainState::openCampaign() {
  Campaign c;
  c.id = "cmp-" + std::to_string(next_campaign++);
  c.advertiser = accounts[rng.below(accounts.size())];
  c.publisher = accounts[rng.below(accounts.size())];
  c.total_budget = rng.range(50, 500) * 1000000;
  c.remaining = c.total_budget;
  c.epoch_target = c.total_budget / 20;
  campaigns.push_back(std::move(c));
}

void ChainState::issueReceipt(Market m, int64_t now) {
  Receipt r;
  r.seq = issued;
  r.market = m;
  r.height = height;
  r.timestamp = now;
  switch (m) {
    case Market::kCompute: {
      auto& prov = compute_providers[rng.below(compute_providers.size())];
      r.id = "job_" + hexId(seed ^ 0xC0FFEEULL, issued, 1);
      r.provider = prov.account;
      r.consumer = accounts[rng.below(accounts.size())];
      r.lane = rng.chance(0.7) ? "consumer" : "industrial";
      r.units = rng.range(1, 100);
      const int64_t price = r.units * industrial_price_per_unit;
      const uint64_t roll = rng.below(100);
      r.deadline = static_cast<int64_t>(height) + rng.range(5, 50);
      if (roll < 90) {
        r.status = "completed";
        r.amount = price;
        success++;
      } else if (roll < 96) {
        r.status = "cancelled";
        r.outcome_reason = "buyer_cancelled";
        r.refunded = price;
      } else {
        r.status = "violated";
        r.outcome_reason = "deadline_missed";
        r.burned = price / 10;
        r.refunded = price - r.burned;
      }
      prov.balance += r.amount;
      r.balance_after = prov.balance;
      r.ledger_seq = ++ledger_seq;
      compute_revenue_total += r.amount;
      break;
    }
    case Market::kStorage: {
      auto& prov = storage_providers[rng.below(storage_providers.size())];
      r.id = "sto_" + hexId(seed ^ 0x5707A6EULL, issued, 1);
      r.provider = prov.provider;
      r.consumer = accounts[rng.below(accounts.size())];
      r.bytes = rng.range(1, 4096) * 1024 * 64;
      r.chunks = (r.bytes + (1 << 20) - 1) >> 20;
      r.amount = prov.price_per_block * std::max<int64_t>(1, r.bytes >> 20);
      r.status = "completed";
      prov.used_bytes = std::min(prov.capacity_bytes, prov.used_bytes + r.bytes);
      total_stored += r.bytes;
      break;
    }
    case Market::kEnergy: {
      auto& prov = energy_providers[rng.below(energy_providers.size())];
      r.id = hexId(seed ^ 0xE7E26EULL, issued, 4);  // the meter hash
      r.provider = prov.provider_id;
      r.consumer = accounts[rng.below(accounts.size())];
      r.kwh = rng.range(1, 40);
      r.amount = r.kwh * prov.price_per_kwh;
      r.treasury_fee = r.amount / 100;
      r.slashed = rng.chance(0.02);
      r.status = r.slashed ? "slashed" : "settled";
      prov.total_delivered_kwh += r.kwh;
      break;
    }
    case Market::kAd: {
      if (campaigns.empty()) openCampaign();
      auto& c = campaigns[rng.below(campaigns.size())];
      r.id = "ad_" + hexId(seed ^ 0xADADULL, issued, 1);
      r.campaign_id = c.id;
      r.provider = c.publisher;
      r.consumer = c.advertiser;
      r.impressions = rng.range(100, 5000);
      // CPM in micro-USD: 0.5 to 4 USD per thousand impressions.
      r.amount = std::min(c.remaining, r.impressions * rng.range(500, 4000) / 1000);
      r.status = "completed";
      c.remaining -= r.amount;
      c.epoch_impressions += r.impressions;
      c.epoch_spend += r.amount;
      c.total_impressions += r.impressions;
      ad_impressions_total += r.impressions;
      ad_revenue_total += r.amount;
      if (c.remaining <= 0) {
        // A spent campaign leaves the market; stepMarkets opens new ones.
        std::string gone = c.id;
        campaigns.erase(std::remove_if(campaigns.begin(), campaigns.end(),
                                       [&](const Campaign& x) { return x.id == gone; }),
                        campaigns.end());
      }
      break;
    }
  }
  by_market[static_cast<int>(m)].push_back(r.seq);
  issued++;
  issued_by_market[static_cast<int>(m)]++;
  receipts.push_back(std::move(r));
}

void ChainState::trimHistory() {
  while (static_cast<int64_t>(receipts.size()) > max_receipts) {
    auto& q = by_market[static_cast<int>(receipts.front().market)];
    q.pop_front();
    receipts.pop_front();
  }
}

}  // namespace devnode
