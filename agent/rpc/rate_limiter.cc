#include "rpc/rate_limiter.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace bb {

TokenBucket::TokenBucket(double rate_per_second, double capacity, NowFn now)
    : rate_(rate_per_second),
      capacity_(std::max(1.0, capacity)),
      now_(now ? std::move(now) : NowFn(&Clock::now)),
      tokens_(capacity_),
      last_(now_()) {}

void TokenBucket::refillLocked(Clock::time_point now) {
  // A clock that went backwards (only possible with an injected one) must not drain tokens.
  if (now <= last_) return;
  const double elapsed = std::chrono::duration<double>(now - last_).count();
  tokens_ = std::min(capacity_, tokens_ + elapsed * rate_);
  last_ = now;
}

std::chrono::nanoseconds TokenBucket::tryTake() {
  if (!(rate_ > 0)) return std::chrono::nanoseconds(0);
  std::lock_guard<std::mutex> lock(mutex_);
  refillLocked(now_());
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return std::chrono::nanoseconds(0);
  }
  const double seconds = (1.0 - tokens_) / rate_;
  // Rounded up so a caller that sleeps exactly this long finds a whole token.
  const auto wait = std::chrono::nanoseconds(static_cast<int64_t>(std::ceil(seconds * 1e9)));
  return std::max(wait, std::chrono::nanoseconds(1));
}

double TokenBucket::available() {
  if (!(rate_ > 0)) return capacity_;
  std::lock_guard<std::mutex> lock(mutex_);
  refillLocked(now_());
  return tokens_;
}

void TokenBucket::refund() {
  if (rate_ <= 0) return;
  std::lock_guard<std::mutex> lock(mutex_);
  refillLocked(now_());
  tokens_ = std::min(capacity_, tokens_ + 1.0);
}

}  // namespace bb
