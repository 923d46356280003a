#include "rpc/method_policy.h"

#include <algorithm>

namespace bb {

const char* toString(MethodClass c) {
  switch (c) {
    case MethodClass::CheapRead:
      return "cheap read";
    case MethodClass::SlowRead:
      return "slow read";
    case MethodClass::CostlyRead:
      return "costly read";
    case MethodClass::NeverRetried:
      return "never retried";
    case MethodClass::NeverCalled:
      return "never called";
  }
  return "cheap read";
}

namespace {

constexpr const char* kPipelineCost =
    "opens the storage pipeline (node/src/rpc/storage.rs: StoragePipeline::open), which starts a "
    "storage-repair-loop thread that never ends (node/src/storage/repair.rs): one leaked node "
    "thread per call; two opens at once race on the same files (simple_db panics); 1.3-4.7 s "
    "on a fresh node";

}  // namespace

const std::vector<MethodPolicy>& methodPolicies() {
  using C = MethodClass;
  static const std::vector<MethodPolicy> kPolicies{
      // Network and chain head (network plugin).
      {"net.overlay_status", C::CheapRead, "reads the overlay's peer counters"},
      {"net.peer_stats_all", C::CheapRead,
       "copies the metrics of one page of peers (loopback clients only)"},
      {"net.peers", C::CheapRead, "spec profile: the peer list"},
      {"net.stats", C::CheapRead, "spec profile: aggregate counters"},
      {"light.headers", C::CheapRead,
       "reads up to `limit` headers from `start` under the chain lock; [] on an empty chain "
       "(the safe probe before light.latest_header)"},
      {"light.latest_header", C::NeverRetried,
       "reads the tip under the chain lock; on an empty chain it panics "
       "(node/src/rpc/light.rs: chain.last().expect) and poisons the lock, so every later "
       "light.* call fails until the node restarts"},
      // Compute market.
      {"compute_market.stats", C::CheapRead, "reads the market's counters and lane queues"},
      {"compute_market.scheduler_stats", C::CheapRead, "reads the scheduler's counters"},
      {"compute_market.provider_balances", C::CheapRead, "lists provider balances"},
      {"settlement.audit", C::SlowRead,
       "serialises the whole compute settlement ledger (no paging): grows with the chain"},
      {"compute_market.sla_history", C::CheapRead, "reads the last `limit` SLA records"},
      {"governor.status", C::CheapRead,
       "reads the governor's gates and last epoch's market metrics"},
      // Storage market.
      {"storage.stats", C::CheapRead, "spec profile: aggregate counters"},
      {"storage_incentives", C::CheapRead,
       "reads the market's contracts and replicas (MARKET lock) without opening the pipeline"},
      {"storage.discover_providers", C::CostlyRead, kPipelineCost},
      {"storage.manifests", C::CostlyRead, kPipelineCost},
      {"storage_provider_profiles", C::NeverCalled,
       std::string(kPipelineCost) + "; the agent has no use for it"},
      {"storage.repair_history", C::NeverCalled,
       std::string(kPipelineCost) + "; the agent has no use for it"},
      {"storage.audit", C::NeverCalled,
       "opens the pipeline and files missing-chunk slashing reports: it changes the chain"},
      {"storage.repair_run", C::NeverCalled, "opens the pipeline and runs a repair pass: writes"},
      {"storage.repair_chunk", C::NeverCalled, "opens the pipeline and repairs a chunk: writes"},
      {"storage.maintenance", C::NeverCalled, "opens the pipeline and writes a provider profile"},
      // Energy and ads.
      {"energy.market_state", C::CheapRead,
       "lists every provider, credit, receipt and dispute (its own rate bucket, about 16/s)"},
      {"energy.receipts", C::CheapRead, "one page (page_size <= 100) of energy receipts"},
      {"ad_market.stats", C::CheapRead, "spec profile: aggregate counters"},
      {"ad_market.inventory", C::CheapRead, "lists campaigns and cohort prices"},
      {"ad_market.budget", C::CheapRead, "lists campaign budgets and a summary"},
      // Receipts (spec profile).
      {"receipt.audit", C::CheapRead, "spec profile: one page of receipts"},
      // Admin: side effects on the chain.
      {"start_mining", C::NeverCalled, "admin: starts block production"},
      {"stop_mining", C::NeverCalled, "admin: stops block production"},
  };
  return kPolicies;
}

MethodPolicy policyFor(const std::string& method) {
  for (const MethodPolicy& p : methodPolicies())
    if (p.method == method) return p;
  return MethodPolicy{method, MethodClass::CheapRead, "not in the agent's table: a plugin's own"};
}

bool retryAllowed(MethodClass c) { return c == MethodClass::CheapRead; }

MethodGate::Ticket::~Ticket() {
  if (gate_) gate_->release(key_);
}

std::optional<MethodGate::Refusal> MethodGate::enter(const std::string& method,
                                                     Clock::time_point deadline, Ticket& ticket) {
  const MethodPolicy p = policyFor(method);
  const auto refuse = [&](const std::string& why) {
    return Refusal{RpcStatus::Invalid,
                   "not sent (method policy, " + std::string(toString(p.cls)) + "): " + why};
  };
  if (p.cls == MethodClass::NeverCalled) return refuse("the agent never calls it: " + p.cost);
  // One at a time: per method for slow reads, across the class for pipeline opens (two opens
  // race on the same files even when they are different methods).
  std::string key;
  if (p.cls == MethodClass::SlowRead) key = method;
  if (p.cls == MethodClass::CostlyRead) key = "storage pipeline";
  std::unique_lock<std::mutex> lock(mutex_);
  if (p.cls == MethodClass::NeverRetried && headers_served_ && !chain_known_) {
    return refuse(
        "the connection to the node was lost since light.headers last showed a block (the "
        "node may have been replaced by one with an empty chain, where light.latest_header "
        "panics): probe light.headers first");
  }
  if (p.cls == MethodClass::CostlyRead) {
    auto it = last_sent_.find(method);
    if (it != last_sent_.end() && Clock::now() - it->second < kCostlyMinInterval) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(
          kCostlyMinInterval - (Clock::now() - it->second));
      return refuse(
          "sent at most once per " +
          std::to_string(
              std::chrono::duration_cast<std::chrono::seconds>(kCostlyMinInterval).count()) +
          " s (" + p.cost + "); next allowed in " + std::to_string(left.count()) + " s");
    }
  }
  if (!key.empty()) {
    if (!cv_.wait_until(lock, deadline, [&] { return in_flight_[key] == 0; })) {
      return Refusal{RpcStatus::Timeout, "deadline passed waiting for the " + key +
                                             " slot (method policy: one " + toString(p.cls) +
                                             " at a time)"};
    }
    ++in_flight_[key];
    ticket.gate_ = this;
    ticket.key_ = key;
  }
  if (p.cls == MethodClass::CostlyRead) last_sent_[method] = Clock::now();
  return std::nullopt;
}

void MethodGate::release(const std::string& key) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = in_flight_.find(key);
    if (it != in_flight_.end() && it->second > 0) --it->second;
  }
  cv_.notify_all();
}

void MethodGate::afterAttempt(const std::string& method, RpcStatus status, int http_status,
                              const std::string& result_json) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (status == RpcStatus::Transport && http_status == 0) {
    ++losses_;
    chain_known_ = false;
    return;
  }
  if (method != "light.headers") return;
  if (status == RpcStatus::Ok) {
    headers_served_ = true;
    // A header is an object inside the array: "[{...}]"; "[]" is an empty chain.
    const auto first = result_json.find_first_not_of(" \t\r\n[");
    chain_known_ = !result_json.empty() && result_json[0] == '[' && first != std::string::npos &&
                   result_json[first] == '{';
  }
}

uint64_t MethodGate::connectionLosses() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return losses_;
}

CostlyReads::~CostlyReads() { stop(); }

void CostlyReads::stop() {
  std::vector<Worker> workers;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopped_ = true;
    workers.swap(workers_);
  }
  cv_.notify_all();
  for (auto& w : workers) w.thread.join();
}

std::optional<RpcOutcome> CostlyReads::read(const std::string& method, const std::string& params,
                                            Clock::time_point deadline, const Send& send) {
  const std::string key = method + "\n" + params;
  std::unique_lock<std::mutex> lock(mutex_);
  Entry& e = entries_[key];
  const bool due = !e.in_flight && (!e.has_outcome || Clock::now() - e.sent >= kCostlyMinInterval);
  if (due && !stopped_) {
    e.in_flight = true;
    e.sent = Clock::now();
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->done->load()) {
        it->thread.join();  // already returned: joins at once
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    auto done = std::make_shared<std::atomic<bool>>(false);
    std::thread t([this, key, method, params, send, done] {
      RpcOutcome o = send(method, params, Clock::now() + kCostlyDeadline);
      {
        std::lock_guard<std::mutex> guard(mutex_);
        Entry& entry = entries_[key];
        entry.outcome = std::move(o);
        entry.has_outcome = true;
        entry.in_flight = false;
      }
      cv_.notify_all();
      done->store(true);
    });
    workers_.push_back(Worker{std::move(t), done});
  }
  if (e.in_flight)
    cv_.wait_until(lock, deadline, [&] { return !entries_[key].in_flight || stopped_; });
  const Entry& now = entries_[key];
  if (now.in_flight || !now.has_outcome) return std::nullopt;
  RpcOutcome out = now.outcome;
  out.shared = true;  // this caller sent nothing: the read's own outcome was observed once
  out.attempts = 0;
  return out;
}

}  // namespace bb
