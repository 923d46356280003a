// The method policy: every node method the agent may call, in one place, with what it costs the
// node (read from the node's handlers, Ian-Reitsma/the-block node/src/rpc/*.rs) and how often and
// how many at once it may go. The RPC client (rpc_client.cc) asks the MethodGate before every
// request it sends; plugins need not know. docs/reliability.md, "Cost to the node", is the
// table of this file.
//
// Classes:
// - cheap read: a lookup; retried on transport errors; no interval or concurrency limit beyond
//   the rate cap;
// - slow read: a whole list or a scan (seconds on a busy node); not retried, one at a time
//   per method;
// - costly read: opens the node's storage pipeline (StoragePipeline::open), which starts a
//   storage-repair-loop thread that never ends and races on the same files as any other open:
//   never retried, one at a time across the class, and at most once per kCostlyMinInterval
//   per method (the storage plugin schedules them by its discovery_interval);
// - never retried: light.latest_header, which panics an empty-chain node and poisons its
//   light-client lock: sent only while light.headers has shown a block since the last
//   connection loss (a loss may mean a new node process, possibly with an empty chain);
// - never called: methods with side effects (storage.audit files slashing reports; repair,
//   maintenance, mining) or costly reads the agent has no use for: refused unsent.
// A method not listed is treated as a cheap read (third-party plugins).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "rpc/rpc_client.h"

namespace bb {

enum class MethodClass { CheapRead, SlowRead, CostlyRead, NeverRetried, NeverCalled };

const char* toString(MethodClass c);

struct MethodPolicy {
  std::string method;
  MethodClass cls = MethodClass::CheapRead;
  std::string cost;  ///< what one call costs the node, for people (docs, refusals)
};

/// The floor between two calls of one costly (pipeline-opening) method: a safety net under the
/// storage plugin's discovery_interval (which may not be set below it).
inline constexpr std::chrono::minutes kCostlyMinInterval{10};
/// Identical slow reads (settlement.audit: compute and receipts both read the whole ledger each
/// cycle) share one answer for this long, whatever rpc.share_ms says: one interval at the
/// defaults, so the two plugins' reads cost the node one.
inline constexpr int kSlowReadShareMs = 2000;
/// A costly read runs on its own thread with this deadline, whatever its caller's: the node
/// spends the thread either way, so its answer is worth waiting for (seconds on a fresh node).
inline constexpr std::chrono::seconds kCostlyDeadline{30};

/// Every method the agent knows, in table order.
const std::vector<MethodPolicy>& methodPolicies();
/// The policy of `method` (a cheap read when unlisted).
MethodPolicy policyFor(const std::string& method);
/// Whether a failed request of this class may be sent again (retry or stale-connection resend).
bool retryAllowed(MethodClass c);

/// The policy's run-time state: intervals, concurrency, and what is known of the chain since the
/// last connection loss. Thread-safe.
class MethodGate {
 public:
  using Clock = std::chrono::steady_clock;
  using Refusal = std::pair<RpcStatus, std::string>;

  /// A slot taken by enter(); released when destroyed.
  class Ticket {
   public:
    Ticket() = default;
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;

   private:
    friend class MethodGate;
    MethodGate* gate_ = nullptr;
    std::string key_;
  };

  /// Before a request of `method` is sent. nullopt: it may go (ticket holds its slot until the
  /// call ends). Otherwise why not: Invalid when the policy refuses it unsent (never called,
  /// too soon, chain not known since a connection loss), Timeout when no slot freed before
  /// `deadline`.
  std::optional<Refusal> enter(const std::string& method, Clock::time_point deadline,
                               Ticket& ticket);
  /// After every HTTP attempt: a connection that failed without any HTTP reply (refused,
  /// reset, empty reply, closed while idle) is a connection loss; a light.headers answer with
  /// a header shows the chain has blocks.
  void afterAttempt(const std::string& method, RpcStatus status, int http_status,
                    const std::string& result_json);
  /// Connection losses seen so far.
  uint64_t connectionLosses() const;

 private:
  void release(const std::string& key);

  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, int> in_flight_;                // by slot key
  std::map<std::string, Clock::time_point> last_sent_;  // costly methods
  uint64_t losses_ = 0;
  bool headers_served_ = false;  // the node answered light.headers: it is the real node
  bool chain_known_ = false;     // light.headers showed a block since the last loss
};

/// Costly reads, detached from their callers: a read goes to the node at most once per
/// kCostlyMinInterval per (method, params), on a thread of its own with kCostlyDeadline; callers
/// within the interval get its outcome (shared, nothing sent). A caller whose deadline passes
/// first gets a Timeout marked shared (nothing was sent for it) and the outcome is kept for the
/// next caller. Thread-safe.
class CostlyReads {
 public:
  using Clock = std::chrono::steady_clock;
  /// Sends the request for real (the normal path of RpcClient::call, policy gate included).
  using Send = std::function<RpcOutcome(const std::string& method, const std::string& params,
                                        Clock::time_point deadline)>;
  ~CostlyReads();
  /// The outcome for this caller, or nullopt when the node has not answered by `deadline`.
  std::optional<RpcOutcome> read(const std::string& method, const std::string& params,
                                 Clock::time_point deadline, const Send& send);
  /// Waits for the reads in flight (they end within their per-attempt timeout once the client
  /// shuts down). Idempotent.
  void stop();

 private:
  struct Entry {
    bool in_flight = false;
    bool has_outcome = false;
    RpcOutcome outcome;
    Clock::time_point sent{};
  };
  std::mutex mutex_;
  std::condition_variable cv_;
  std::map<std::string, Entry> entries_;
  struct Worker {
    std::thread thread;
    std::shared_ptr<std::atomic<bool>> done;
  };
  std::vector<Worker> workers_;  // finished ones are joined when the next read starts
  bool stopped_ = false;
};

}  // namespace bb
