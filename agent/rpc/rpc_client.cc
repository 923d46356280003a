#include "rpc/rpc_client.h"

#include <blockbuster/json.h>
#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

#include "rpc/envelope.h"
#include "rpc/method_policy.h"
#include "rpc/rate_limiter.h"
#include "rpc/transport.h"
#include "util/log.h"

namespace bb {

const char* toString(RpcStatus status) {
  switch (status) {
    case RpcStatus::Ok:
      return "ok";
    case RpcStatus::RpcError:
      return "rpc_error";
    case RpcStatus::Transport:
      return "transport";
    case RpcStatus::Timeout:
      return "timeout";
    case RpcStatus::BadResponse:
      return "bad_response";
    case RpcStatus::Invalid:
      return "invalid";
    case RpcStatus::Limit:
      return "limit";
    case RpcStatus::Shutdown:
      return "shutdown";
  }
  return "unknown";
}

const char* toString(RpcFailure failure) {
  switch (failure) {
    case RpcFailure::None:
      return "none";
    case RpcFailure::NodeError:
      return "node_error";
    case RpcFailure::Refused:
      return "refused";
    case RpcFailure::Dropped:
      return "dropped";
    case RpcFailure::Resolve:
      return "resolve";
    case RpcFailure::Tls:
      return "tls";
    case RpcFailure::Io:
      return "io";
    case RpcFailure::HttpStatus:
      return "http_status";
    case RpcFailure::Timeout:
      return "timeout";
    case RpcFailure::BadReply:
      return "bad_reply";
    case RpcFailure::RateLimited:
      return "rate_limited";
    case RpcFailure::TooLarge:
      return "too_large";
    case RpcFailure::Invalid:
      return "invalid";
    case RpcFailure::Shutdown:
      return "shutdown";
  }
  return "unknown";
}

RpcFailure failureOf(RpcStatus status) {
  switch (status) {
    case RpcStatus::Ok:
      return RpcFailure::None;
    case RpcStatus::RpcError:
      return RpcFailure::NodeError;
    case RpcStatus::Transport:
      return RpcFailure::Io;
    case RpcStatus::Timeout:
      return RpcFailure::Timeout;
    case RpcStatus::BadResponse:
      return RpcFailure::BadReply;
    case RpcStatus::Invalid:
      return RpcFailure::Invalid;
    case RpcStatus::Limit:
      return RpcFailure::RateLimited;
    case RpcStatus::Shutdown:
      return RpcFailure::Shutdown;
  }
  return RpcFailure::Io;
}

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kComponent = "rpc";
// Bounds the callMany worker threads whatever max_connections says.
constexpr int kMaxWorkers = 64;
// Set on a CostlyReads thread: its call is the read itself and takes the normal path.
thread_local bool t_costly_read = false;

// One callMany invocation, shared by the caller and the workers that help with it.
struct Batch {
  // Valid only while an item is unclaimed or running: the caller returns once all are done.
  const std::vector<std::pair<std::string, std::string>>* calls = nullptr;
  std::size_t size = 0;
  Clock::time_point deadline;
  std::vector<RpcOutcome> outcomes;
  std::atomic<std::size_t> next{0};
  std::mutex mutex;
  std::condition_variable done_cv;
  std::size_t done = 0;  // guarded by mutex
};

}  // namespace

struct RpcClient::Impl {
  Impl(RpcClient& owner, const RpcConfig& config);

  // Waits for a request slot of the rate cap: why not, or nullopt when one was taken.
  std::optional<Refusal> takeToken(Clock::time_point deadline);
  bool sleepUntil(Clock::time_point until);  // false when woken by shutdown

  void startBan(int seconds, const std::string& method);
  int banSecondsLeft();
  Clock::duration backoff(int retry);
  std::string scrub(std::string message) const;

  void ensureWorkers();
  void workerLoop();
  void runBatchItems(Batch& batch);

  RpcClient& owner;
  const RpcConfig config;
  Connections connections;  // the node's address and the connection pool (transport.h)
  TokenBucket bucket;
  MethodGate gate;     // the method policy (method_policy.h)
  CostlyReads costly;  // pipeline-opening reads, detached from their callers

  std::atomic<uint64_t> requests_sent{0};
  std::atomic<int64_t> next_id{1};

  std::mutex mutex;            // guards everything below up to the workers
  std::condition_variable cv;  // token and backoff waiters; shutdown wakes them
  bool shutting_down = false;
  Clock::time_point ban_until{};
  std::shared_ptr<const RpcObserver> observer;
  std::mt19937_64 rng{std::random_device{}()};

  // Shared calls (config.share_ms), by method + "\n" + params: the latest call of each, in
  // flight or done. Waiters are woken when it is done, or by shutdown.
  struct SharedCall {
    int share_ms = 0;  // how long its success answers identical calls
    bool done = false;
    RpcOutcome outcome;
    Clock::time_point finished{};
  };
  std::mutex share_mutex;
  std::condition_variable share_cv;
  std::map<std::string, std::shared_ptr<SharedCall>> shared;  // guarded by share_mutex
  std::atomic<bool> share_stop{false};

  std::mutex workers_mutex;
  std::condition_variable workers_cv;
  std::deque<std::shared_ptr<Batch>> batches;  // guarded by workers_mutex
  std::vector<std::thread> workers;            // guarded by workers_mutex
  bool workers_stop = false;                   // guarded by workers_mutex
};

RpcClient::Impl::Impl(RpcClient& owner_, const RpcConfig& config_)
    : owner(owner_),
      config(config_),
      connections(config),  // first: rpc_url is checked before the other settings
      bucket(config_.max_requests_per_second, config_.burst) {
  const auto require = [](bool ok, const std::string& key, const std::string& what) {
    if (!ok) throw ConfigError("rpc." + key + ": " + what);
  };
  require(config.connect_timeout_ms >= 1, "connect_timeout_ms", "must be at least 1");
  require(config.timeout_ms >= 1, "timeout_ms", "must be at least 1");
  require(config.retries >= 0, "retries", "must be 0 or more");
  require(config.backoff_initial_ms >= 0, "backoff_initial_ms", "must be 0 or more");
  require(config.backoff_max_ms >= config.backoff_initial_ms, "backoff_max_ms",
          "must be at least backoff_initial_ms");
  require(config.max_connections >= 1, "max_connections", "must be at least 1");
  require(config.max_response_bytes >= 1, "max_response_bytes", "must be at least 1");
  require(!(config.max_requests_per_second > 0) || config.burst >= 1, "burst",
          "must be at least 1 when max_requests_per_second is set");
}

std::string RpcClient::Impl::scrub(std::string message) const {
  const std::string& token = config.auth_token;
  if (!token.empty()) {
    for (std::size_t at = message.find(token); at != std::string::npos;
         at = message.find(token, at)) {
      message.replace(at, token.size(), "<redacted>");
      at += 10;
    }
  }
  return redact(std::move(message));
}

bool RpcClient::Impl::sleepUntil(Clock::time_point until) {
  std::unique_lock<std::mutex> lock(mutex);
  return !cv.wait_until(lock, until, [&] { return shutting_down; });
}

std::optional<Refusal> RpcClient::Impl::takeToken(Clock::time_point deadline) {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (shutting_down)
        return Refusal{RpcStatus::Shutdown, RpcFailure::Shutdown, "the client is shutting down"};
    }
    const auto wait = bucket.tryTake();
    if (wait.count() == 0) return std::nullopt;
    const auto until = Clock::now() + wait;
    if (until > deadline) {
      char cause[160];
      std::snprintf(cause, sizeof cause,
                    "rate cap: no request slot before the deadline (max_requests_per_second=%g, "
                    "burst=%d)",
                    config.max_requests_per_second, config.burst);
      return Refusal{RpcStatus::Timeout, RpcFailure::Timeout, cause};
    }
    if (!sleepUntil(until))
      return Refusal{RpcStatus::Shutdown, RpcFailure::Shutdown, "the client is shutting down"};
  }
}

void RpcClient::Impl::startBan(int seconds, const std::string& method) {
  bool was_banned;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto now = Clock::now();
    was_banned = now < ban_until;
    ban_until = std::max(ban_until, now + std::chrono::seconds(seconds));
  }
  if (!was_banned) {
    logWarn(kComponent, "node rate-limited the agent on " + method +
                            "; pausing every RPC call for " + std::to_string(seconds) +
                            " s (lower rpc.max_requests_per_second or poll less often)");
  }
}

int RpcClient::Impl::banSecondsLeft() {
  std::lock_guard<std::mutex> lock(mutex);
  const auto left = ban_until - Clock::now();
  if (left <= Clock::duration::zero()) return 0;
  return static_cast<int>(std::chrono::ceil<std::chrono::seconds>(left).count());
}

Clock::duration RpcClient::Impl::backoff(int retry) {
  const double cap =
      std::min<double>(config.backoff_max_ms, config.backoff_initial_ms * std::pow(2.0, retry));
  std::lock_guard<std::mutex> lock(mutex);
  std::uniform_real_distribution<double> jitter(0.0, std::max(cap, 0.0));
  return std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double, std::milli>(jitter(rng)));
}

// --- callMany workers -------------------------------------------------------------------------

void RpcClient::Impl::ensureWorkers() {
  std::lock_guard<std::mutex> lock(workers_mutex);
  if (!workers.empty() || workers_stop) return;
  const int count = std::min(config.max_connections, kMaxWorkers);
  for (int i = 0; i < count; ++i) {
    workers.emplace_back([this] { workerLoop(); });
    // Named for what they do (they would inherit the name of the plugin that called first).
    pthread_setname_np(workers.back().native_handle(), ("bb-rpc-" + std::to_string(i)).c_str());
  }
}

void RpcClient::Impl::runBatchItems(Batch& batch) {
  const std::size_t n = batch.size;
  for (std::size_t i = batch.next++; i < n; i = batch.next++) {
    const auto& [method, params] = (*batch.calls)[i];
    RpcOutcome outcome = owner.call(method, params, batch.deadline);
    std::lock_guard<std::mutex> lock(batch.mutex);
    batch.outcomes[i] = std::move(outcome);
    if (++batch.done == n) batch.done_cv.notify_all();
  }
}

void RpcClient::Impl::workerLoop() {
  for (;;) {
    std::shared_ptr<Batch> batch;
    {
      std::unique_lock<std::mutex> lock(workers_mutex);
      workers_cv.wait(lock, [&] { return workers_stop || !batches.empty(); });
      if (batches.empty()) return;
      batch = batches.front();
      // A batch whose items are all claimed leaves the queue; its claimers finish it.
      if (batch->next.load() >= batch->size) {
        batches.pop_front();
        continue;
      }
    }
    runBatchItems(*batch);
  }
}

// --- RpcClient ----------------------------------------------------------------------------

RpcClient::RpcClient(RpcConfig config) : config_(std::move(config)) {
  impl_ = std::make_unique<Impl>(*this, config_);
  addSecret(config_.auth_token);
}

RpcClient::~RpcClient() {
  shutdown();
  impl_->costly.stop();  // its reads call back into this client
  std::vector<std::thread> workers;
  {
    std::lock_guard<std::mutex> lock(impl_->workers_mutex);
    impl_->workers_stop = true;
    workers.swap(impl_->workers);
  }
  impl_->workers_cv.notify_all();
  for (auto& worker : workers) worker.join();
}

RpcOutcome RpcClient::call(const std::string& method, const std::string& params_json) {
  // One attempt's worth of time per try plus the largest possible backoff between them.
  Clock::duration budget = milliseconds(config_.timeout_ms) * (config_.retries + 1);
  for (int retry = 0; retry < config_.retries; ++retry) {
    budget += milliseconds(static_cast<int64_t>(std::min<double>(
        config_.backoff_max_ms, config_.backoff_initial_ms * std::pow(2.0, retry))));
  }
  return call(method, params_json, Clock::now() + budget);
}

RpcOutcome RpcClient::call(const std::string& method, const std::string& params_json,
                           Clock::time_point deadline) {
  Impl& impl = *impl_;
  const auto start = Clock::now();
  RpcOutcome outcome;
  // `verbatim`: json_or_cause is an outcome's JSON already (a shared call's).
  const auto finish = [&](RpcStatus status, RpcFailure failure, std::string json_or_cause,
                          bool verbatim = false) {
    outcome.status = status;
    outcome.failure = failure;
    if (status == RpcStatus::Ok || status == RpcStatus::RpcError || verbatim) {
      outcome.json = std::move(json_or_cause);
    } else {
      outcome.json = failureJson(impl.scrub(method + ": " + json_or_cause));
    }
    outcome.seconds = std::chrono::duration<double>(Clock::now() - start).count();
    std::shared_ptr<const RpcObserver> observer;
    {
      std::lock_guard<std::mutex> lock(impl.mutex);
      observer = impl.observer;
    }
    if (observer && *observer) {
      try {
        (*observer)(method, outcome);
      } catch (const std::exception& e) {
        logDebug(kComponent, std::string("RPC observer threw: ") + e.what());
      } catch (...) {
        logDebug(kComponent, "RPC observer threw a non-standard exception");
      }
    }
    return outcome;
  };

  bool shutting_down;
  {
    std::lock_guard<std::mutex> lock(impl.mutex);
    shutting_down = impl.shutting_down;
  }
  if (shutting_down) {
    return finish(RpcStatus::Shutdown, RpcFailure::Shutdown, "the client is shutting down");
  }
  if (method.empty()) {
    return finish(RpcStatus::Invalid, RpcFailure::Invalid, "the method name is empty");
  }
  std::string problem;
  const std::optional<std::string> checked = requestParams(params_json, problem);
  if (!checked) return finish(RpcStatus::Invalid, RpcFailure::Invalid, problem);
  const std::string& params = *checked;
  if (!t_costly_read && policyFor(method).cls == MethodClass::CostlyRead) {
    auto read = impl.costly.read(method, params, deadline, [this](auto& m, auto& p, auto d) {
      t_costly_read = true;
      return call(m, p, d);
    });
    if (!read) {
      outcome.shared = true;  // nothing sent for this caller: not a judgement of the node
      return finish(RpcStatus::Timeout, RpcFailure::Timeout,
                    "still waiting for the node's answer (a read that opens "
                    "its storage pipeline, sent once and kept)");
    }
    outcome.shared = true;
    outcome.http_status = read->http_status;
    return finish(read->status, read->failure, std::move(read->json), /*verbatim=*/true);
  }
  // An identical call in flight, or one that succeeded within share_ms, answers this one.
  // Otherwise this call goes to the node and offers its outcome to identical ones (`lead`).
  std::shared_ptr<Impl::SharedCall> lead;
  // Slow reads (a whole ledger) share a longer window: two plugins reading it in one cycle.
  const int share_ms = policyFor(method).cls == MethodClass::SlowRead
                           ? std::max(config_.share_ms, kSlowReadShareMs)
                           : config_.share_ms;
  if (share_ms > 0) {
    const std::string share_key = method + "\n" + params;
    std::unique_lock<std::mutex> lock(impl.share_mutex);
    // Forget what can no longer be shared (paged calls give each page its own key).
    const auto now = Clock::now();
    for (auto it = impl.shared.begin(); it != impl.shared.end();) {
      if (it->second->done && now - it->second->finished > milliseconds(it->second->share_ms))
        it = impl.shared.erase(it);
      else
        ++it;
    }
    for (;;) {
      auto it = impl.shared.find(share_key);
      if (it == impl.shared.end() || impl.share_stop) {
        lead = std::make_shared<Impl::SharedCall>();
        lead->share_ms = share_ms;
        if (!impl.share_stop) impl.shared[share_key] = lead;
        break;
      }
      std::shared_ptr<Impl::SharedCall> other = it->second;
      if (!other->done) {
        // Its outcome, success or failure, is this call's: the node would answer the same.
        if (!impl.share_cv.wait_until(lock, deadline,
                                      [&] { return other->done || impl.share_stop.load(); })) {
          lock.unlock();
          return finish(RpcStatus::Timeout, RpcFailure::Timeout,
                        "deadline passed while an identical call was in flight");
        }
        if (!other->done) continue;  // shutting down: the next pass sends (and fails) alone
        RpcOutcome answer = other->outcome;
        lock.unlock();
        outcome.shared = true;
        outcome.http_status = answer.http_status;
        return finish(answer.status, answer.failure, std::move(answer.json), /*verbatim=*/true);
      }
      if (other->outcome.status == RpcStatus::Ok &&
          Clock::now() - other->finished <= milliseconds(share_ms)) {
        std::string json = other->outcome.json;
        const int http_status = other->outcome.http_status;
        lock.unlock();
        outcome.shared = true;
        outcome.http_status = http_status;
        return finish(RpcStatus::Ok, RpcFailure::None, std::move(json));
      }
      // Failed or too old to share: this call asks the node.
      lead = std::make_shared<Impl::SharedCall>();
      lead->share_ms = share_ms;
      it->second = lead;
      break;
    }
  }
  // Whatever way this call ends, identical calls waiting for it get its outcome.
  struct Publish {
    Impl& impl;
    const std::shared_ptr<Impl::SharedCall>& lead;
    const RpcOutcome& outcome;
    ~Publish() {
      if (!lead) return;
      {
        std::lock_guard<std::mutex> lock(impl.share_mutex);
        lead->outcome = outcome;
        lead->finished = Clock::now();
        lead->done = true;
      }
      impl.share_cv.notify_all();
    }
  } publish{impl, lead, outcome};

  if (const int left = impl.banSecondsLeft(); left > 0) {
    return finish(RpcStatus::Limit, RpcFailure::RateLimited,
                  "not sent: the node rate-limited the agent; calls paused for " +
                      std::to_string(left) + " more s");
  }

  MethodGate::Ticket ticket;
  if (auto refused = impl.gate.enter(method, deadline, ticket))
    return finish(refused->first, failureOf(refused->first), refused->second);
  const MethodClass cls = policyFor(method).cls;

  const int64_t id = impl.next_id++;
  const std::string body = requestBody(id, method, params);
  int retry = 0;
  bool stale_resend_used = false;
  for (;;) {
    if (Clock::now() >= deadline) {
      return finish(RpcStatus::Timeout, RpcFailure::Timeout,
                    outcome.attempts == 0 ? "deadline passed before the call could be sent"
                                          : "deadline passed before a retry could be sent");
    }
    if (auto failed = impl.takeToken(deadline)) {
      return finish(failed->status, failed->failure, failed->cause);
    }
    std::unique_ptr<PooledSession> pooled;
    if (auto failed = impl.connections.take(deadline, pooled)) {
      return finish(failed->status, failed->failure, failed->cause);
    }
    ++outcome.attempts;
    ++impl.requests_sent;
    Attempt result = impl.connections.exchange(*pooled, body, id, deadline);
    impl.connections.giveBack(std::move(pooled), result.reusable);
    if (result.http_status != 0) outcome.http_status = result.http_status;
    if (result.ban_seconds > 0) impl.startBan(result.ban_seconds, method);
    impl.gate.afterAttempt(method, result.status, result.http_status, result.json);
    if (result.never_sent) impl.bucket.refund();  // it never reached the node
    if (result.status == RpcStatus::Ok || result.status == RpcStatus::RpcError) {
      return finish(result.status, result.failure, std::move(result.json));
    }
    if (!result.retryable) return finish(result.status, result.failure, result.cause);
    // light.latest_header is never sent twice: the node behind a closed connection may be a
    // new process with an empty chain (method_policy.h).
    if (result.stale && !stale_resend_used && cls != MethodClass::NeverRetried) {
      stale_resend_used = true;
      logDebug(kComponent, method + ": kept-alive connection was closed by the node (" +
                               result.cause + "); resending on a new connection");
      continue;
    }
    if (!retryAllowed(cls)) return finish(result.status, result.failure, result.cause);
    const std::string tried = " (after " + std::to_string(outcome.attempts) +
                              (outcome.attempts == 1 ? " attempt)" : " attempts)");
    if (retry >= config_.retries)
      return finish(result.status, result.failure, result.cause + tried);
    const auto delay = impl.backoff(retry);
    ++retry;
    if (Clock::now() + delay >= deadline) {
      return finish(result.status, result.failure,
                    result.cause + tried + "; no time left to retry");
    }
    logDebug(kComponent,
             impl.scrub(method + ": " + result.cause + "; retry " + std::to_string(retry) + "/" +
                        std::to_string(config_.retries) + " in " +
                        std::to_string(std::chrono::duration_cast<milliseconds>(delay).count()) +
                        " ms"));
    if (!impl.sleepUntil(Clock::now() + delay)) {
      return finish(RpcStatus::Shutdown, RpcFailure::Shutdown, "the client is shutting down");
    }
    if (const int left = impl.banSecondsLeft(); left > 0) {
      return finish(RpcStatus::Limit, RpcFailure::RateLimited,
                    result.cause + tried +
                        "; not retried: the node rate-limited the agent "
                        "(calls paused for " +
                        std::to_string(left) + " more s)");
    }
  }
}

std::vector<RpcOutcome> RpcClient::callMany(
    const std::vector<std::pair<std::string, std::string>>& calls,
    std::chrono::steady_clock::time_point deadline) {
  if (calls.empty()) return {};
  if (calls.size() == 1) return {call(calls[0].first, calls[0].second, deadline)};
  auto batch = std::make_shared<Batch>();
  batch->calls = &calls;
  batch->size = calls.size();
  batch->deadline = deadline;
  batch->outcomes.resize(calls.size());
  impl_->ensureWorkers();
  {
    std::lock_guard<std::mutex> lock(impl_->workers_mutex);
    impl_->batches.push_back(batch);
  }
  impl_->workers_cv.notify_all();
  // The caller works too, so a batch progresses even while every worker serves another one.
  impl_->runBatchItems(*batch);
  std::unique_lock<std::mutex> lock(batch->mutex);
  batch->done_cv.wait(lock, [&] { return batch->done == calls.size(); });
  return std::move(batch->outcomes);
}

void RpcClient::setObserver(RpcObserver observer) {
  auto shared = std::make_shared<const RpcObserver>(std::move(observer));
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->observer = std::move(shared);
}

void RpcClient::shutdown() {
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->shutting_down = true;
  }
  impl_->cv.notify_all();
  impl_->connections.shutdown();
  {
    std::lock_guard<std::mutex> lock(impl_->share_mutex);
    impl_->share_stop = true;
    impl_->shared.clear();
  }
  impl_->share_cv.notify_all();
}

RpcOutcome RpcClient::classifyReply(int http_status, const std::string& body, int64_t id) {
  Attempt attempt;
  judgeReply(http_status, "", body, id, attempt);
  RpcOutcome outcome;
  outcome.status = attempt.status;
  outcome.failure = attempt.failure;
  outcome.http_status = http_status;
  outcome.json = attempt.status == RpcStatus::Ok || attempt.status == RpcStatus::RpcError
                     ? attempt.json
                     : attempt.cause;
  return outcome;
}

uint64_t RpcClient::requestsSent() const { return impl_->requests_sent.load(); }

bool RpcClient::banned() const { return impl_->banSecondsLeft() > 0; }

}  // namespace bb
