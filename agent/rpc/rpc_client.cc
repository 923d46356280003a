#include "rpc/rpc_client.h"

#include <Poco/Dynamic/Var.h>
#include <Poco/Exception.h>
#include <Poco/JSON/Object.h>
#include <Poco/JSON/Parser.h>
#include <Poco/JSON/Stringifier.h>
#include <Poco/Net/DNS.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/IPAddress.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/StreamSocketImpl.h>
#include <Poco/Timespan.h>
#include <blockbuster/json.h>

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

#include "config/node_url.h"
#include "rpc/method_policy.h"
#include "rpc/rate_limiter.h"
#include "rpc/tls_client.h"
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

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr std::string_view kComponent = "rpc";
// What the real node bans for after its bucket runs dry, used when 429 carries no Retry-After.
constexpr int kDefaultBanSeconds = 60;
// A Retry-After beyond this is treated as a misconfigured proxy, not a reason to go dark longer.
constexpr int kMaxBanSeconds = 3600;
constexpr std::size_t kReadChunk = 4096;
// Bounds the callMany worker threads whatever max_connections says.
constexpr int kMaxWorkers = 64;
// Set on a CostlyReads thread: its call is the read itself and takes the normal path.
thread_local bool t_costly_read = false;

std::string jsonString(std::string_view text) {
  std::string out;
  blockbuster::Json::appendString(out, text);
  return out;
}

std::string_view trim(std::string_view text) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  return text;
}

// --- Raw member slicing -------------------------------------------------------------------
// The `result` is handed to plugins as the node wrote it rather than re-serialized, so that
// 64-bit integers and decimal fractions reach them digit for digit. These helpers run only on
// text the Poco parser has already accepted, so they need not diagnose malformed JSON.

std::size_t skipSpace(std::string_view t, std::size_t i) {
  while (i < t.size() && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) ++i;
  return i;
}

// t[i] == '"'; returns the index just past the closing quote, or npos.
std::size_t skipString(std::string_view t, std::size_t i) {
  for (++i; i < t.size(); ++i) {
    if (t[i] == '\\') {
      ++i;
    } else if (t[i] == '"') {
      return i + 1;
    }
  }
  return std::string_view::npos;
}

std::size_t skipValue(std::string_view t, std::size_t i) {
  if (i >= t.size()) return std::string_view::npos;
  if (t[i] == '"') return skipString(t, i);
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < t.size()) {
      const char c = t[i];
      if (c == '"') {
        i = skipString(t, i);
        if (i == std::string_view::npos) return i;
        continue;
      }
      if (c == '{' || c == '[') ++depth;
      if (c == '}' || c == ']') {
        if (--depth == 0) return i + 1;
      }
      ++i;
    }
    return std::string_view::npos;
  }
  while (i < t.size() && t[i] != ',' && t[i] != '}' && t[i] != ']' && t[i] != ' ' && t[i] != '\t' &&
         t[i] != '\n' && t[i] != '\r') {
    ++i;
  }
  return i;
}

// The text of the top-level member `name` of the object `t` (the last one if repeated, as the
// parser keeps), or nullopt when absent or when a key uses escapes (the caller then falls back
// to re-serializing the parsed value).
std::optional<std::string_view> topLevelMember(std::string_view t, std::string_view name) {
  std::optional<std::string_view> found;
  std::size_t i = skipSpace(t, 0);
  if (i >= t.size() || t[i] != '{') return std::nullopt;
  i = skipSpace(t, i + 1);
  while (i < t.size() && t[i] != '}') {
    if (t[i] != '"') return std::nullopt;
    const std::size_t key_end = skipString(t, i);
    if (key_end == std::string_view::npos) return std::nullopt;
    const std::string_view key = t.substr(i + 1, key_end - i - 2);
    if (key.find('\\') != std::string_view::npos) return std::nullopt;
    i = skipSpace(t, key_end);
    if (i >= t.size() || t[i] != ':') return std::nullopt;
    i = skipSpace(t, i + 1);
    const std::size_t value_end = skipValue(t, i);
    if (value_end == std::string_view::npos) return std::nullopt;
    if (key == name) found = t.substr(i, value_end - i);
    i = skipSpace(t, value_end);
    if (i < t.size() && t[i] == ',') i = skipSpace(t, i + 1);
  }
  return found;
}

std::string condensed(const Poco::Dynamic::Var& value) {
  std::ostringstream out;
  Poco::JSON::Stringifier::condense(value, out);
  return out.str();
}

// The member as JSON text: the raw slice when it can be found, else the parsed value condensed.
std::string memberText(std::string_view body, const Poco::JSON::Object& object,
                       const std::string& name) {
  if (auto raw = topLevelMember(body, name)) return std::string(*raw);
  return condensed(object.get(name));
}

Poco::Timespan toTimespan(Clock::duration d) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(d).count();
  return Poco::Timespan(std::max<int64_t>(us, 1000));
}

// The result of one HTTP exchange.
struct Attempt {
  RpcStatus status = RpcStatus::Transport;
  std::string json;     // Ok: result text; RpcError: error object text
  std::string cause;    // why it failed, without the method name
  int http_status = 0;  // 0 when no HTTP reply was read
  bool retryable = false;
  // Failed on a kept-alive connection before any reply: the node most likely closed it while
  // idle, so one immediate resend on a fresh connection is not a retry.
  bool stale = false;
  bool reusable = false;    // the connection may serve the next call
  bool never_sent = false;  // no connection was made: the request never reached the node
  int ban_seconds = 0;      // > 0: the node rate-limited us; pause every call this long
};

// How often a wait on the node's socket looks at the client's stop flag: the longest a call in
// flight takes to end after shutdown().
constexpr milliseconds kStopCheck{50};

// The socket of a session. Every connect, receive and send waits in slices of kStopCheck and
// throws Poco::TimeoutException at the exchange's deadline or as soon as the client stops.
// Poco's own receive timeout restarts with each byte, so a reply dribbled one byte at a time
// would hold a call (and shutdown) for as long as the node likes; this bounds the whole
// exchange, head and body, whatever the peer does.
class DeadlineSocketImpl : public Poco::Net::StreamSocketImpl {
 public:
  explicit DeadlineSocketImpl(const std::atomic<bool>& stop) : stop_(stop) {}
  void arm(Clock::time_point deadline) { deadline_ = deadline; }
  /// Waits for `mode` until the armed deadline (TLS sockets wait on this socket through it).
  void wait(int mode) { waitUntil(deadline_, mode); }

  void connect(const Poco::Net::SocketAddress& address, const Poco::Timespan& timeout) override {
    const auto until =
        std::min(deadline_, Clock::now() + std::chrono::microseconds(timeout.totalMicroseconds()));
    connectNB(address);  // leaves the socket non-blocking
    try {
      waitUntil(until, SELECT_READ | SELECT_WRITE | SELECT_ERROR);
      if (const int err = socketError(); err != 0) error(err, address.toString());
    } catch (...) {
      setBlocking(true);
      throw;
    }
    setBlocking(true);
  }
  int receiveBytes(void* buffer, int length, int flags) override {
    waitUntil(deadline_, SELECT_READ | SELECT_ERROR);
    return StreamSocketImpl::receiveBytes(buffer, length, flags);
  }
  int sendBytes(const void* buffer, int length, int flags) override {
    waitUntil(deadline_, SELECT_WRITE | SELECT_ERROR);
    return StreamSocketImpl::sendBytes(buffer, length, flags);
  }

 private:
  void waitUntil(Clock::time_point until, int mode) {
    for (;;) {
      if (stop_.load()) throw Poco::TimeoutException("the client is shutting down");
      const auto left = until - Clock::now();
      if (left <= Clock::duration::zero()) throw Poco::TimeoutException("deadline passed");
      if (poll(toTimespan(std::min<Clock::duration>(left, kStopCheck)), mode)) return;
    }
  }

  const std::atomic<bool>& stop_;
  Clock::time_point deadline_ = Clock::time_point::max();
};

struct PooledSession {
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  DeadlineSocketImpl* socket = nullptr;  // owned by the session's socket
  int uses = 0;                          // completed exchanges; > 0 means a kept-alive connection
};

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

  Attempt attempt(PooledSession& pooled, const std::string& body, int64_t id,
                  Clock::time_point deadline);
  void exchange(Poco::Net::HTTPClientSession& session, const std::string& body, int64_t id,
                Clock::time_point attempt_deadline, Attempt& out);
  static void classify(const Poco::Net::HTTPResponse& response, const std::string& body, int64_t id,
                       Attempt& out);
  std::vector<Poco::Net::IPAddress> resolve();
  static std::shared_ptr<void> tlsContext(const std::string& ca_file);  // throws ConfigError

  // Waits; these return a failure cause, or nullopt on success.
  std::optional<std::pair<RpcStatus, std::string>> takeToken(Clock::time_point deadline);
  std::optional<std::pair<RpcStatus, std::string>> takeSession(Clock::time_point deadline,
                                                               std::unique_ptr<PooledSession>& out);
  void giveBack(std::unique_ptr<PooledSession> pooled, bool reusable);
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
  std::string host;         // as written in the URL (no brackets), for DNS
  std::string host_header;  // the URL's host without the port, what the real node checks
  Poco::UInt16 port = 80;
  std::string target;         // path and query, "/" when none
  std::string where;          // the URL for messages (holds no credentials: user info is refused)
  std::shared_ptr<void> tls;  // https: the TLS module's client context (tls_client.h)
  TokenBucket bucket;
  MethodGate gate;     // the method policy (method_policy.h)
  CostlyReads costly;  // pipeline-opening reads, detached from their callers

  std::atomic<uint64_t> requests_sent{0};
  std::atomic<int64_t> next_id{1};

  std::mutex mutex;            // guards everything below up to the workers
  std::condition_variable cv;  // token, connection and backoff waiters; shutdown wakes them
  bool shutting_down = false;
  std::atomic<bool> stop_io{false};  // set with shutting_down: sockets in use give up at once
  Clock::time_point ban_until{};
  std::vector<std::unique_ptr<PooledSession>> idle;  // LIFO: the warmest connection first
  int live = 0;                                      // sessions idle or in use
  std::optional<Poco::Net::IPAddress> good_address;  // the last address that accepted us
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
    : owner(owner_), config(config_), bucket(config_.max_requests_per_second, config_.burst) {
  // The same check as the config loader's (--check-config refuses what this refuses); its
  // messages never show credentials.
  NodeUrl url;
  NodeUrlProblem problem;
  if (!parseNodeUrl(config.url, NodeUrlUse::kRpc, url, problem)) {
    throw ConfigError("rpc_url: " + problem.what + "; " + problem.fix);
  }
  host = url.host;
  port = url.port;
  host_header = url.host_header;
  target = url.target;
  where = url.scheme + "://" + host_header + ":" + std::to_string(port) + target;
  if (url.scheme == "https") tls = tlsContext(config.tls_ca_file);

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

std::shared_ptr<void> RpcClient::Impl::tlsContext(const std::string& ca_file) {
  if (!ca_file.empty() && !std::ifstream(ca_file).good()) {
    throw ConfigError("rpc.tls_ca_file: cannot read " + ca_file + " (" + std::strerror(errno) +
                      "); give the PEM file of the CA that signed the node's (or its TLS "
                      "proxy's) certificate, readable by the agent");
  }
  const TlsClientApi* api = nullptr;
  try {
    api = &tlsClientApi();
  } catch (const std::exception& e) {
    throw ConfigError(std::string("rpc_url: an https:// node URL needs TLS, but ") + e.what());
  }
  std::string error;
  auto context = api->context(ca_file, error);
  if (!context) {
    if (ca_file.empty()) {
      throw ConfigError("rpc_url: cannot load the system's CA certificates (" + error +
                        "); set rpc.tls_ca_file to the CA that signed the node's certificate");
    }
    throw ConfigError("rpc.tls_ca_file: " + ca_file + " holds no usable CA certificate (" + error +
                      "); give a PEM file (-----BEGIN CERTIFICATE-----)");
  }
  return context;
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

std::optional<std::pair<RpcStatus, std::string>> RpcClient::Impl::takeToken(
    Clock::time_point deadline) {
  for (;;) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (shutting_down) return std::make_pair(RpcStatus::Shutdown, "the client is shutting down");
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
      return std::make_pair(RpcStatus::Timeout, std::string(cause));
    }
    if (!sleepUntil(until)) {
      return std::make_pair(RpcStatus::Shutdown, "the client is shutting down");
    }
  }
}

std::optional<std::pair<RpcStatus, std::string>> RpcClient::Impl::takeSession(
    Clock::time_point deadline, std::unique_ptr<PooledSession>& out) {
  std::unique_lock<std::mutex> lock(mutex);
  for (;;) {
    if (shutting_down) return std::make_pair(RpcStatus::Shutdown, "the client is shutting down");
    if (!idle.empty()) {
      out = std::move(idle.back());
      idle.pop_back();
      return std::nullopt;
    }
    if (live < config.max_connections) {
      ++live;
      out = std::make_unique<PooledSession>();
      return std::nullopt;
    }
    const bool woke = cv.wait_until(lock, deadline, [&] {
      return shutting_down || !idle.empty() || live < config.max_connections;
    });
    if (!woke) {
      return std::make_pair(RpcStatus::Timeout,
                            "no free connection before the deadline (all max_connections=" +
                                std::to_string(config.max_connections) + " busy)");
    }
  }
}

void RpcClient::Impl::giveBack(std::unique_ptr<PooledSession> pooled, bool reusable) {
  std::unique_ptr<PooledSession> discard;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (reusable && !shutting_down && pooled->session) {
      idle.push_back(std::move(pooled));
    } else {
      discard = std::move(pooled);
      --live;
    }
  }
  cv.notify_all();
  // `discard` closes its socket here, outside the lock.
}

std::vector<Poco::Net::IPAddress> RpcClient::Impl::resolve() {
  Poco::Net::IPAddress literal;
  if (Poco::Net::IPAddress::tryParse(host, literal)) return {literal};
  auto addresses = Poco::Net::DNS::hostByName(host).addresses();
  // IPv4 first: the real node binds 127.0.0.1, and "localhost" often lists ::1 first.
  std::stable_sort(addresses.begin(), addresses.end(),
                   [](const Poco::Net::IPAddress& a, const Poco::Net::IPAddress& b) {
                     return a.family() == Poco::Net::IPAddress::IPv4 &&
                            b.family() != Poco::Net::IPAddress::IPv4;
                   });
  std::lock_guard<std::mutex> lock(mutex);
  if (good_address) {
    auto it = std::find(addresses.begin(), addresses.end(), *good_address);
    if (it != addresses.end()) std::rotate(addresses.begin(), it, it + 1);
  }
  return addresses;
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

Attempt RpcClient::Impl::attempt(PooledSession& pooled, const std::string& body, int64_t id,
                                 Clock::time_point deadline) {
  Attempt out;
  const auto attempt_deadline =
      std::min(deadline, Clock::now() + milliseconds(config.connect_timeout_ms) +
                             milliseconds(config.timeout_ms));
  const bool reused = pooled.uses > 0;
  try {
    if (pooled.session) {
      pooled.socket->arm(attempt_deadline);
      exchange(*pooled.session, body, id, attempt_deadline, out);
    } else {
      // A fresh connection: try each address of the host until one accepts.
      const auto addresses = resolve();
      if (addresses.empty()) throw Poco::Net::NoAddressFoundException(host);
      for (std::size_t i = 0; i < addresses.size(); ++i) {
        auto* plain = new DeadlineSocketImpl(stop_io);
        pooled.socket = plain;
        Poco::Net::StreamSocketImpl* socket = plain;
        // https: TLS over the same deadline socket; the handshake is part of connecting.
        if (tls)
          socket = tlsClientApi().socket(tls, plain, host, [plain](int m) { plain->wait(m); });
        pooled.session =
            std::make_unique<Poco::Net::HTTPClientSession>(Poco::Net::StreamSocket(socket));
        pooled.session->setHost(addresses[i].toString());
        pooled.session->setPort(port);
        pooled.session->setKeepAlive(true);
        try {
          pooled.socket->arm(attempt_deadline);
          exchange(*pooled.session, body, id, attempt_deadline, out);
          std::lock_guard<std::mutex> lock(mutex);
          good_address = addresses[i];
          break;
        } catch (const Poco::Net::ConnectionRefusedException&) {
          if (i + 1 == addresses.size()) throw;
        }
      }
    }
    ++pooled.uses;
    return out;
  } catch (const Poco::TimeoutException&) {
    if (stop_io.load()) {
      out.status = RpcStatus::Shutdown;
      out.cause = "the client is shutting down (the exchange in flight was cut)";
    } else {
      out.status = RpcStatus::Timeout;
      out.cause = "no complete reply from " + where + " within the timeout";
      out.retryable = true;
    }
  } catch (const Poco::Net::ConnectionRefusedException&) {
    out.cause = "connection refused by " + where + " (is the node running with its RPC on?)";
    out.retryable = true;
    out.never_sent = true;
  } catch (const Poco::Net::NoMessageException&) {
    out.cause = "empty reply from " + where +
                " (the node closed the connection without answering, e.g. a handler panic)";
    out.retryable = true;
    out.stale = reused;
  } catch (const Poco::Net::ConnectionResetException&) {
    out.cause = "connection reset by " + where;
    out.retryable = true;
    out.stale = reused;
  } catch (const Poco::Net::DNSException& e) {
    out.cause = "cannot resolve " + host + " (" + e.displayText() + ")";
    out.retryable = true;
  } catch (const Poco::Net::MessageException& e) {
    out.status = RpcStatus::BadResponse;
    out.cause = "not an HTTP reply from " + where + " (" + e.displayText() + ")";
  } catch (const Poco::Exception& e) {
    if (e.code() == kTlsUntrustedCode) {
      // A setting to fix, not a passing fault: not retried, and the request was never sent.
      out.cause = "TLS with " + where + " refused: " + e.message() +
                  "; set rpc.tls_ca_file (BLOCK_BUSTER_RPC_TLS_CA_FILE) to the CA that signed "
                  "its certificate";
      out.never_sent = true;
    } else {
      out.cause = "I/O error with " + where + " (" + e.displayText() + ")";
      out.retryable = true;
    }
  } catch (const std::exception& e) {
    out.cause = std::string("I/O error with ") + where + " (" + e.what() + ")";
    out.retryable = true;
  }
  out.reusable = false;
  return out;
}

void RpcClient::Impl::exchange(Poco::Net::HTTPClientSession& session, const std::string& body,
                               int64_t id, Clock::time_point attempt_deadline, Attempt& out) {
  const auto left = attempt_deadline - Clock::now();
  if (left <= Clock::duration::zero()) throw Poco::TimeoutException("deadline passed");
  const auto io = toTimespan(std::min<Clock::duration>(left, milliseconds(config.timeout_ms)));
  session.setTimeout(
      toTimespan(std::min<Clock::duration>(left, milliseconds(config.connect_timeout_ms))), io, io);
  // setTimeout only reaches the socket on (re)connect; a kept-alive one needs it directly.
  if (session.connected()) {
    session.socket().setReceiveTimeout(io);
    session.socket().setSendTimeout(io);
  }

  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_POST, target,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  request.setHost(host_header);
  request.setContentType("application/json");
  request.setContentLength(static_cast<std::streamsize>(body.size()));
  request.setKeepAlive(true);
  request.set("Accept", "application/json");
  if (!config.auth_token.empty()) request.set("Authorization", "Bearer " + config.auth_token);

  std::ostream& request_stream = session.sendRequest(request);
  request_stream.exceptions(std::ios::badbit);
  request_stream.write(body.data(), static_cast<std::streamsize>(body.size()));
  request_stream.flush();

  Poco::Net::HTTPResponse response;
  std::istream& reply_stream = session.receiveResponse(response);
  out.http_status = static_cast<int>(response.getStatus());
  const int64_t cap = config.max_response_bytes;
  if (response.hasContentLength() && response.getContentLength64() > cap) {
    out.status = RpcStatus::Limit;
    out.cause = "reply of " + std::to_string(response.getContentLength64()) +
                " bytes exceeds max_response_bytes=" + std::to_string(cap) +
                "; refused unread (raise rpc.max_response_bytes if the node is right)";
    out.reusable = false;
    session.reset();
    return;
  }

  // Read in chunks so the deadline and the size cap are checked as the body arrives.
  reply_stream.exceptions(std::ios::badbit);
  std::string reply;
  char chunk[kReadChunk];
  for (;;) {
    const auto remaining = attempt_deadline - Clock::now();
    if (remaining <= Clock::duration::zero()) {
      throw Poco::TimeoutException("reply body not complete");
    }
    session.socket().setReceiveTimeout(toTimespan(remaining));
    reply_stream.read(chunk, sizeof chunk);
    const auto got = reply_stream.gcount();
    reply.append(chunk, static_cast<std::size_t>(got));
    if (static_cast<int64_t>(reply.size()) > cap) {
      out.status = RpcStatus::Limit;
      out.cause = "reply exceeds max_response_bytes=" + std::to_string(cap) +
                  " bytes; refused (raise rpc.max_response_bytes if the node is right)";
      out.reusable = false;
      session.reset();
      return;
    }
    if (got < static_cast<std::streamsize>(sizeof chunk)) break;
  }
  if (response.hasContentLength() &&
      static_cast<int64_t>(reply.size()) < response.getContentLength64()) {
    out.cause = "truncated reply from " + where + " (" + std::to_string(reply.size()) + " of " +
                std::to_string(response.getContentLength64()) + " bytes)";
    out.retryable = true;
    out.reusable = false;
    session.reset();
    return;
  }
  out.reusable = response.getKeepAlive();
  classify(response, reply, id, out);
}

void RpcClient::Impl::classify(const Poco::Net::HTTPResponse& response, const std::string& body,
                               int64_t id, Attempt& out) {
  const int http = out.http_status;
  if (http == 429) {
    int seconds = kDefaultBanSeconds;
    const std::string retry_after(trim(response.get("Retry-After", "")));
    if (!retry_after.empty() && retry_after.size() <= 6 &&
        std::all_of(retry_after.begin(), retry_after.end(),
                    [](unsigned char c) { return std::isdigit(c) != 0; })) {
      seconds = std::clamp(std::stoi(retry_after), 1, kMaxBanSeconds);
    }
    out.status = RpcStatus::Limit;
    out.ban_seconds = seconds;
    out.cause = "HTTP 429 from node (rate-limited); every call paused for " +
                std::to_string(seconds) + " s";
    return;
  }
  if (http == 403) {
    out.status = RpcStatus::Transport;
    out.cause = "HTTP 403 from node (Host header refused or forbidden)";
    return;
  }

  // Any status may carry a JSON-RPC envelope; an error in it is the node's answer.
  Poco::JSON::Object::Ptr envelope;
  std::string parse_error;
  if (!trim(body).empty()) {
    try {
      Poco::JSON::Parser parser;
      const Poco::Dynamic::Var parsed = parser.parse(body);
      if (parsed.type() == typeid(Poco::JSON::Object::Ptr)) {
        envelope = parsed.extract<Poco::JSON::Object::Ptr>();
      } else {
        parse_error = "reply is JSON but not an object";
      }
    } catch (const Poco::Exception& e) {
      parse_error = "reply is not JSON (" + logValue(e.displayText()) + ")";
    }
  } else {
    parse_error = "reply body is empty";
  }
  const bool has_error = envelope && envelope->has("error") && !envelope->isNull("error");
  const bool has_result = envelope && envelope->has("result");
  if (envelope && !has_error && !has_result) {
    envelope = nullptr;
    parse_error = "reply is not a JSON-RPC response (no result or error member)";
  }

  if (envelope) {
    if (envelope->has("id") && !envelope->isNull("id")) {
      const Poco::Dynamic::Var reply_id = envelope->get("id");
      bool same = false;
      try {
        same = reply_id.isNumeric() && reply_id.convert<int64_t>() == id;
      } catch (const Poco::Exception&) {
      }
      if (!same) {
        out.status = RpcStatus::BadResponse;
        out.cause = "reply id " + logValue(condensed(reply_id)) + " does not match request id " +
                    std::to_string(id);
        out.reusable = false;  // the connection is out of step with us
        return;
      }
    }
    if (has_error) {
      Poco::JSON::Object::Ptr error = envelope->getObject("error");
      if (!error) {
        out.status = RpcStatus::BadResponse;
        out.cause =
            "reply's error member is not an object: " + logValue(condensed(envelope->get("error")));
        return;
      }
      // A code or message of another type (a string code, an object message) is the node's
      // error all the same: read what can be read, never throw.
      int64_t code = 0;
      std::string message = "rate limited";
      try {
        code = error->optValue<int64_t>("code", 0);
        message = error->optValue<std::string>("message", message);
      } catch (const Poco::Exception&) {
      }
      if (code == -32001 || code == -32002) {
        out.status = RpcStatus::Limit;
        out.ban_seconds = kDefaultBanSeconds;
        out.cause = "node answered " + std::to_string(code) + " (" + logValue(message) +
                    "); every call paused for " + std::to_string(kDefaultBanSeconds) + " s";
        return;
      }
      out.status = RpcStatus::RpcError;
      out.json = memberText(body, *envelope, "error");
      return;
    }
    if (http >= 200 && http < 300) {
      out.status = RpcStatus::Ok;
      out.json = memberText(body, *envelope, "result");
      return;
    }
  }
  if (http >= 500) {
    out.status = RpcStatus::Transport;
    out.cause = "HTTP " + std::to_string(http) + " from node";
    out.retryable = true;
    return;
  }
  if (http < 200 || http >= 300) {
    out.status = RpcStatus::Transport;
    out.cause = "HTTP " + std::to_string(http) + " from node";
    return;
  }
  out.status = RpcStatus::BadResponse;
  out.cause = parse_error;
}

// --- callMany workers -------------------------------------------------------------------------

void RpcClient::Impl::ensureWorkers() {
  std::lock_guard<std::mutex> lock(workers_mutex);
  if (!workers.empty() || workers_stop) return;
  const int count = std::min(config.max_connections, kMaxWorkers);
  for (int i = 0; i < count; ++i) workers.emplace_back([this] { workerLoop(); });
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
  const auto finish = [&](RpcStatus status, std::string json_or_cause, bool verbatim = false) {
    outcome.status = status;
    if (status == RpcStatus::Ok || status == RpcStatus::RpcError || verbatim) {
      outcome.json = std::move(json_or_cause);
    } else {
      outcome.json =
          "{\"code\":0,\"message\":" + jsonString(impl.scrub(method + ": " + json_or_cause)) + "}";
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
  if (shutting_down) return finish(RpcStatus::Shutdown, "the client is shutting down");
  if (method.empty()) return finish(RpcStatus::Invalid, "the method name is empty");
  std::string params(trim(params_json));
  if (params.empty()) {
    params = "{}";
  } else {
    try {
      Poco::JSON::Parser parser;
      if (parser.parse(params).type() != typeid(Poco::JSON::Object::Ptr)) {
        return finish(RpcStatus::Invalid,
                      "params must be a JSON object such as {} (the node refuses positional "
                      "arrays and scalars)");
      }
    } catch (const Poco::Exception& e) {
      return finish(RpcStatus::Invalid, "params are not valid JSON (" + e.displayText() + ")");
    }
  }
  if (!t_costly_read && policyFor(method).cls == MethodClass::CostlyRead) {
    auto read = impl.costly.read(method, params, deadline, [this](auto& m, auto& p, auto d) {
      t_costly_read = true;
      return call(m, p, d);
    });
    if (!read) {
      outcome.shared = true;  // nothing sent for this caller: not a judgement of the node
      return finish(RpcStatus::Timeout,
                    "still waiting for the node's answer (a read that opens "
                    "its storage pipeline, sent once and kept)");
    }
    outcome.shared = true;
    outcome.http_status = read->http_status;
    return finish(read->status, std::move(read->json), /*verbatim=*/true);
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
          return finish(RpcStatus::Timeout,
                        "deadline passed while an identical call was in flight");
        }
        if (!other->done) continue;  // shutting down: the next pass sends (and fails) alone
        RpcOutcome answer = other->outcome;
        lock.unlock();
        outcome.shared = true;
        outcome.http_status = answer.http_status;
        return finish(answer.status, std::move(answer.json), /*verbatim=*/true);
      }
      if (other->outcome.status == RpcStatus::Ok &&
          Clock::now() - other->finished <= milliseconds(share_ms)) {
        std::string json = other->outcome.json;
        const int http_status = other->outcome.http_status;
        lock.unlock();
        outcome.shared = true;
        outcome.http_status = http_status;
        return finish(RpcStatus::Ok, std::move(json));
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
    return finish(RpcStatus::Limit, "not sent: the node rate-limited the agent; calls paused for " +
                                        std::to_string(left) + " more s");
  }

  MethodGate::Ticket ticket;
  if (auto refused = impl.gate.enter(method, deadline, ticket))
    return finish(refused->first, refused->second);
  const MethodClass cls = policyFor(method).cls;

  const int64_t id = impl.next_id++;
  const std::string body = "{\"jsonrpc\":\"2.0\",\"id\":" + std::to_string(id) +
                           ",\"method\":" + jsonString(method) + ",\"params\":" + params + "}";
  int retry = 0;
  bool stale_resend_used = false;
  for (;;) {
    if (Clock::now() >= deadline) {
      return finish(RpcStatus::Timeout, outcome.attempts == 0
                                            ? "deadline passed before the call could be sent"
                                            : "deadline passed before a retry could be sent");
    }
    if (auto failed = impl.takeToken(deadline)) return finish(failed->first, failed->second);
    std::unique_ptr<PooledSession> pooled;
    if (auto failed = impl.takeSession(deadline, pooled)) {
      return finish(failed->first, failed->second);
    }
    ++outcome.attempts;
    ++impl.requests_sent;
    Attempt result = impl.attempt(*pooled, body, id, deadline);
    impl.giveBack(std::move(pooled), result.reusable);
    if (result.http_status != 0) outcome.http_status = result.http_status;
    if (result.ban_seconds > 0) impl.startBan(result.ban_seconds, method);
    impl.gate.afterAttempt(method, result.status, result.http_status, result.json);
    if (result.never_sent) impl.bucket.refund();  // it never reached the node
    if (result.status == RpcStatus::Ok || result.status == RpcStatus::RpcError) {
      return finish(result.status, std::move(result.json));
    }
    if (!result.retryable) return finish(result.status, result.cause);
    // light.latest_header is never sent twice: the node behind a closed connection may be a
    // new process with an empty chain (method_policy.h).
    if (result.stale && !stale_resend_used && cls != MethodClass::NeverRetried) {
      stale_resend_used = true;
      logDebug(kComponent, method + ": kept-alive connection was closed by the node (" +
                               result.cause + "); resending on a new connection");
      continue;
    }
    if (!retryAllowed(cls)) return finish(result.status, result.cause);
    const std::string tried = " (after " + std::to_string(outcome.attempts) +
                              (outcome.attempts == 1 ? " attempt)" : " attempts)");
    if (retry >= config_.retries) return finish(result.status, result.cause + tried);
    const auto delay = impl.backoff(retry);
    ++retry;
    if (Clock::now() + delay >= deadline) {
      return finish(result.status, result.cause + tried + "; no time left to retry");
    }
    logDebug(kComponent,
             impl.scrub(method + ": " + result.cause + "; retry " + std::to_string(retry) + "/" +
                        std::to_string(config_.retries) + " in " +
                        std::to_string(std::chrono::duration_cast<milliseconds>(delay).count()) +
                        " ms"));
    if (!impl.sleepUntil(Clock::now() + delay)) {
      return finish(RpcStatus::Shutdown, "the client is shutting down");
    }
    if (const int left = impl.banSecondsLeft(); left > 0) {
      return finish(RpcStatus::Limit, result.cause + tried +
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
  std::vector<std::unique_ptr<PooledSession>> idle;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    impl_->shutting_down = true;
    impl_->stop_io = true;
    idle.swap(impl_->idle);
    impl_->live -= static_cast<int>(idle.size());
  }
  impl_->cv.notify_all();
  {
    std::lock_guard<std::mutex> lock(impl_->share_mutex);
    impl_->share_stop = true;
    impl_->shared.clear();
  }
  impl_->share_cv.notify_all();
}

RpcOutcome RpcClient::classifyReply(int http_status, const std::string& body, int64_t id) {
  Poco::Net::HTTPResponse response(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(http_status));
  Attempt attempt;
  attempt.http_status = http_status;
  Impl::classify(response, body, id, attempt);
  RpcOutcome outcome;
  outcome.status = attempt.status;
  outcome.http_status = http_status;
  outcome.json = attempt.status == RpcStatus::Ok || attempt.status == RpcStatus::RpcError
                     ? attempt.json
                     : attempt.cause;
  return outcome;
}

uint64_t RpcClient::requestsSent() const { return impl_->requests_sent.load(); }

bool RpcClient::banned() const { return impl_->banSecondsLeft() > 0; }

}  // namespace bb
