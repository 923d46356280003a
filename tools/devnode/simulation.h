// The simulated chain behind bb-devnode: blocks, peers, four markets and their receipts.
//
// Everything here is deterministic for a seed: the state after N blocks depends only on the
// seed and the scale options, never on wall-clock time or on which requests were served.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "options.h"
#include "rng.h"

namespace devnode {

enum class Market { kCompute = 0, kStorage = 1, kEnergy = 2, kAd = 3 };
constexpr int kMarketCount = 4;
const char* marketName(Market m);
/// Parses "compute" | "storage" | "energy" | "ad"; false when unknown.
bool parseMarket(const std::string& s, Market* out);

/// One settled piece of market activity. Canonical fields first, then what each market adds.
struct Receipt {
  uint64_t seq = 0;  ///< issue order over all markets, from 0
  std::string id;
  Market market = Market::kCompute;
  uint64_t height = 0;
  int64_t timestamp = 0;
  std::string provider;
  std::string consumer;
  int64_t amount = 0;
  std::string status;
  // compute
  std::string lane;
  std::string outcome_reason;
  int64_t burned = 0;
  int64_t refunded = 0;
  int64_t deadline = 0;
  int64_t units = 0;
  int64_t balance_after = 0;  ///< provider's ledger balance after this settlement
  uint64_t ledger_seq = 0;    ///< settlement.audit sequence
  // storage
  int64_t bytes = 0;
  int64_t chunks = 0;
  // energy
  int64_t kwh = 0;
  int64_t treasury_fee = 0;
  bool slashed = false;
  // ad
  std::string campaign_id;
  int64_t impressions = 0;
};

struct Peer {
  std::string spec_id;  ///< "peer_…" (spec profile)
  std::string peer_id;  ///< 64 hex (theblock profile)
  std::string address;
  std::string version;
  bool validator = false;
  int reputation = 0;
  bool connected = false;
  bool ever_connected = false;
  int64_t connected_at = 0;
  double latency_ms = 0;
  uint64_t bytes_sent = 0;
  uint64_t bytes_recv = 0;
  uint64_t requests = 0;
  uint64_t sends = 0;
  uint64_t handshake_success = 0;
  uint64_t tls_errors = 0;
  std::map<std::string, uint64_t> drops;
  std::map<std::string, uint64_t> handshake_fail;
  int64_t last_handshake_ms = 0;
  int64_t last_updated = 0;
  int64_t sec_start = 0;
  int64_t backoff_level = 0;
};

struct ComputeProvider {
  std::string account;
  double utilization = 0;
  int64_t balance = 0;
};

struct StorageProvider {
  std::string provider;
  std::string region;
  int64_t capacity_bytes = 0;
  int64_t used_bytes = 0;
  int64_t price_per_block = 0;
  int64_t escrow_deposit = 0;
  int64_t latency_ms = 0;
  int64_t success_rate_ppm = 0;
  int64_t proof_successes = 0;
  int64_t proof_failures = 0;
  uint64_t last_seen_block = 0;
  int64_t expires_at = 0;
  std::string tag;
  std::string version;
};

struct EnergyProvider {
  std::string provider_id;
  std::string owner;
  std::string jurisdiction;
  std::string meter_address;
  int64_t capacity_kwh = 0;
  int64_t available_kwh = 0;
  int64_t price_per_kwh = 0;
  double reputation_score = 0;
  int64_t total_delivered_kwh = 0;
  int64_t staked_balance = 0;
};

struct EnergyCredit {
  std::string provider;
  int64_t amount_kwh = 0;
  int64_t timestamp = 0;
  std::string meter_hash;
};

struct Campaign {
  std::string id;
  std::string advertiser;
  std::string publisher;
  int64_t total_budget = 0;
  int64_t remaining = 0;
  int64_t reserved = 0;
  int64_t epoch_impressions = 0;
  int64_t epoch_spend = 0;
  int64_t epoch_target = 0;
  int64_t total_impressions = 0;
};

/// The whole simulated world. Not thread-safe: Chain guards it.
struct ChainState {
  // configuration
  uint64_t seed = 0;
  int64_t genesis_ms = 0;
  int64_t block_nominal_ms = 1000;
  int receipts_per_block = 0;
  int64_t max_receipts = 0;
  bool governor = false;

  Rng rng{0};
  uint64_t height = 0;
  std::deque<int64_t> recent_txs;  ///< transactions in each of the last blocks
  double finality_time = 0;
  std::vector<std::string> accounts;

  std::vector<Peer> peers;
  uint64_t last_block_bytes_in = 0;
  uint64_t last_block_bytes_out = 0;

  std::vector<ComputeProvider> compute_providers;
  int64_t active_jobs = 0;
  int64_t queued[3] = {0, 0, 0};  ///< high, normal, low
  int64_t preemptions = 0, success = 0, priority_miss = 0, capability_mismatch = 0,
          reputation_failure = 0;
  int64_t industrial_units_total = 0;
  int64_t industrial_price_base = 0;
  int64_t industrial_price_per_unit = 0;
  int64_t lane_bids[2] = {0, 0}, lane_asks[2] = {0, 0};
  int64_t lane_bid_wait_ms[2] = {0, 0}, lane_ask_wait_ms[2] = {0, 0};
  int64_t compute_revenue_total = 0;
  uint64_t ledger_seq = 0;

  std::vector<StorageProvider> storage_providers;
  int64_t total_stored = 0;

  std::vector<EnergyProvider> energy_providers;
  std::deque<EnergyCredit> credits;  ///< the last kMaxCredits meter credits
  int64_t total_credits_kwh = 0;

  std::vector<Campaign> campaigns;
  uint64_t next_campaign = 0;
  int64_t ad_impressions_total = 0;
  int64_t ad_revenue_total = 0;
  int64_t unique_viewers = 0;
  int64_t oracle_price_usd_micros = 0;

  int64_t mempool_size[2] = {0, 0};
  int64_t mempool_fee_floor[2] = {0, 0};

  std::deque<Receipt> receipts;  ///< retained history, oldest first, at most max_receipts
  std::array<std::deque<uint64_t>, kMarketCount> by_market;  ///< seqs of retained receipts
  uint64_t issued = 0;
  std::array<uint64_t, kMarketCount> issued_by_market{};

  static constexpr size_t kMaxCredits = 50;
  static constexpr size_t kRecentBlocks = 10;

  /// Seeds accounts, peers and markets (height 0, no receipts).
  void init(const Options& o, int64_t genesis_ms);
  /// Produces one block and everything that happens in it.
  void produceBlock();

  int64_t timestampOf(uint64_t h) const {
    return (genesis_ms + int64_t(h) * block_nominal_ms) / 1000;
  }
  std::string hashOf(uint64_t h) const { return hexId(seed ^ 0xB10CB10CULL, h, 4); }
  int64_t difficultyOf(uint64_t h) const { return 1 + int64_t(mix64(seed, h / 500) % 3); }
  const Receipt& bySeq(uint64_t seq) const { return receipts[seq - receipts.front().seq]; }
  int connectedPeers() const;

 private:
  void stepPeers(int64_t now);
  void stepMarkets(int64_t now);
  void issueReceipt(Market m, int64_t now);
  void openCampaign();
  void trimHistory();
};

}  // namespace devnode
