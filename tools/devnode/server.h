// The bb-devnode HTTP server: JSON-RPC on POST /, the control API under /_devnode/, faults,
// and the theblock transport rules (Host check, rate limit, auth).
#pragma once

#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/ThreadPool.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "faults.h"
#include "options.h"
#include "simulation.h"

namespace devnode {

/// The chain state behind a reader/writer lock. Writers (block production) hold the lock for
/// one block; readers render under a shared lock and write their reply after releasing it.
class Chain {
 public:
  /// Seeds the state and produces `o.start_height` blocks.
  explicit Chain(const Options& o);
  /// Produces `blocks` blocks. Thread-safe.
  void advance(uint64_t blocks);
  /// Starts over with an empty chain (a fresh node on the same address). Thread-safe.
  void reset(const Options& o);
  /// The tip height (lock-free; may trail a block being produced).
  uint64_t height() const { return height_.load(); }
  /// Calls f(const ChainState&) under the shared lock and returns its result.
  template <typename F>
  auto read(F&& f) const {
    std::shared_lock<std::shared_mutex> lock(mu_);
    return f(state_);
  }

 private:
  mutable std::shared_mutex mu_;
  ChainState state_;
  std::atomic<uint64_t> height_{0};
};

/// Per-client-IP token buckets with a ban after the first refusal. Thread-safe.
class RateLimiter {
 public:
  enum class Verdict { kAllowed, kLimited, kBanned };
  RateLimiter(double per_second, double burst, int64_t ban_seconds)
      : rate_(per_second), burst_(burst), ban_seconds_(ban_seconds) {}
  Verdict check(const std::string& ip);

 private:
  struct Bucket {
    double tokens = 0;
    std::chrono::steady_clock::time_point last;
    std::chrono::steady_clock::time_point banned_until;
  };
  std::mutex mu_;
  std::unordered_map<std::string, Bucket> buckets_;
  double rate_, burst_;
  int64_t ban_seconds_;
};

class RequestHandler;

/// The node: chain, listener, faults, statistics. Created once by main; start() then run
/// until stop(). Public members are thread-safe unless noted.
class Node {
 public:
  explicit Node(Options o);
  ~Node();

  /// Binds and starts serving; throws Poco::Exception with the reason when it cannot bind.
  void start();
  /// The bound port (after start()).
  int port() const { return port_; }
  /// Stops serving and block production; waits for request threads. Call once, from main.
  void stop();
  /// Main-thread duty: if a down window was requested, closes the listener and every
  /// connection, waits (interruptibly by `interrupted`), and listens again on the same port.
  void serviceDownRequests(const std::function<bool()>& interrupted);
  /// Asks the main thread to take the node down for `seconds`.
  void requestDown(int64_t seconds);
  /// Asks the main thread to replace the node: every connection dropped, then a fresh node
  /// (empty chain, not mining, light.* healthy, no leaked threads) on the same port.
  void requestReplace();

 private:
  friend class RequestHandler;
  friend class HandlerFactory;

  void listen();
  void closeListener();
  void produceBlocks();
  std::shared_ptr<const Faults> faults() const;
  std::string effectiveToken(const Faults& f) const;
  void countMethod(const std::string& method);
  void countEvent(const std::string& event);
  /// Sleeps up to `ms`, returning early when the node stops or goes down.
  void sleepInterruptible(int64_t ms, uint64_t generation) const;
  /// The cached result text for (method, params) at the current height, or renders it.
  bool renderCached(const std::string& method, const Json& params, std::string* result_text,
                    int* error_code, std::string* error_message, bool* unknown);
  uint64_t faultRoll();

  Options opts_;
  Chain chain_;
  RateLimiter limiter_;
  RateLimiter energy_limiter_;
  Poco::ThreadPool pool_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  int port_ = 0;

  std::atomic<bool> stopping_{false};
  std::atomic<uint64_t> generation_{0};  ///< bumped whenever the listener closes
  std::atomic<bool> light_poisoned_{false};
  // The real node's hazards, counted for GET /_devnode/state "hazards" (the ground truth).
  std::atomic<int> pipeline_in_flight_{0};
  std::atomic<int> pipeline_max_concurrent_{0};
  std::atomic<uint64_t> pipeline_reads_{0};
  std::atomic<uint64_t> leaked_threads_{0};        ///< this node process
  std::atomic<uint64_t> leaked_threads_total_{0};  ///< every process since start
  std::atomic<uint64_t> panics_{0};
  std::atomic<uint64_t> replacements_{0};
  std::atomic<int64_t> stall_until_ns_{0};  ///< mining: calls wait until then (steady clock)
  bool replace_requested_ = false;          ///< guarded by down_mu_
  Json hazards() const;
  std::atomic<bool> mining_;
  std::atomic<bool> down_{false};
  std::chrono::steady_clock::time_point started_;

  mutable std::mutex faults_mu_;
  std::shared_ptr<const Faults> faults_;
  uint64_t fault_rng_state_;

  std::mutex stats_mu_;
  std::map<std::string, uint64_t> method_counts_;
  std::map<std::string, uint64_t> event_counts_;
  uint64_t rpc_requests_ = 0;

  std::mutex cache_mu_;
  uint64_t cache_height_ = UINT64_MAX;
  std::unordered_map<std::string, std::shared_ptr<const std::string>> cache_;

  std::mutex down_mu_;
  std::condition_variable down_cv_;
  int64_t down_requested_ = 0;

  std::mutex blocks_mu_;
  std::condition_variable blocks_cv_;
  std::thread producer_;
  std::thread down_timer_;
};

}  // namespace devnode
