// A token bucket: the cap on requests per second the agent sends to the node.
//
// The real node bans a client IP for 60 s after its 100 req/s bucket runs dry, so every HTTP
// attempt of the shared RPC client takes a token here first. The clock is injectable so the
// arithmetic is unit-tested without sleeping.
#pragma once

#include <chrono>
#include <functional>
#include <mutex>

namespace bb {

/// A token bucket of `capacity` tokens refilled at `rate_per_second`; it starts full, so a
/// burst of `capacity` requests goes out at once, then `rate_per_second` on average.
/// Thread-safe: any number of threads may call tryTake() at once. It never blocks or sleeps;
/// waiting (and waking on shutdown) is the caller's business.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  /// Returns the current time; called under the bucket's lock, so it must not call back.
  using NowFn = std::function<Clock::time_point()>;

  /// `rate_per_second` <= 0 means no cap (tryTake() always succeeds). `capacity` below 1 is
  /// treated as 1, since a bucket that cannot hold one token could never hand one out.
  explicit TokenBucket(double rate_per_second, double capacity, NowFn now = &Clock::now);

  /// Takes one token if one is available now and returns zero. Otherwise takes nothing and
  /// returns how long until one token will have accumulated (always > 0); another thread may
  /// take it first, so callers loop.
  std::chrono::nanoseconds tryTake();

  /// Gives back a token taken for a request that never reached the node (connection refused):
  /// retries against a dead node must not use up the cap and then be blamed on it.
  void refund();

  /// Tokens available now (fractional), after refilling; for tests and self-metrics.
  double available();

  double ratePerSecond() const { return rate_; }
  double capacity() const { return capacity_; }

 private:
  void refillLocked(Clock::time_point now);

  const double rate_;
  const double capacity_;
  const NowFn now_;
  std::mutex mutex_;
  double tokens_;           // guarded by mutex_
  Clock::time_point last_;  // guarded by mutex_: when tokens_ was last brought up to date
};

}  // namespace bb
