// The one JSON-RPC client every plugin shares (through bb_host_api::rpc_call).
//
// - HTTP/1.1 keep-alive over a bounded pool of Poco::Net::HTTPClientSession;
// - connect and per-attempt timeouts, and an overall deadline per call;
// - retries with capped exponential backoff and full jitter on transport errors only (refused,
//   reset, empty reply, timeout, HTTP 5xx/502-504); never after the node answered with a
//   JSON-RPC error or a 4xx;
// - HTTP 429 (the real node's limiter): no retry; the client pauses *all* calls until the ban
//   would be over (Retry-After if given, else 60 s) and fails them fast with BB_ERR_LIMIT;
// - `Authorization: Bearer <token>` when a token is set; `Host: <host of rpc_url>` with the
//   port stripped (what the real node checks);
// - params always a JSON object (`{}` when none); one request object per POST (no batches);
// - a token-bucket cap on requests per second toward the node (waits for a token, up to the
//   call's deadline);
// - replies over max_response_bytes are refused without being read whole;
// - every attempt ends by its deadline whatever the node does (connect, send, and the reply's
//   head and body are all bounded as a whole: a reply dribbled one byte at a time is Timeout at
//   the deadline, not when the node stops sending);
// - identical calls (same method, same params text) share one request (share_ms): while one is
//   in flight the others wait for its outcome, and its success answers them for share_ms after
//   it arrived. The four market plugins each read governor.status in the same cycle: one
//   request instead of four (docs/performance.md, "Cost to the node").
//
// Outcome of an answer: a JSON-RPC error with code -32001/-32002 (the real node's limiter) is
// Limit and starts the pause like HTTP 429; any other {"error":...} is RpcError, whatever the
// HTTP status (a JSON-RPC server may send -32601 with 404 or -32603 with 500). A success
// envelope whose result is {"error":...} (the real node does that) stays Ok: plugins judge
// shapes. HTTP 403 (the real node's Host check) is Transport and not retried. The Ok text is
// the `result` member exactly as the node wrote it (64-bit integers and decimals intact).
// https:// URLs are verified against rpc.tls_ca_file or the system's CA store (never skipped),
// with TLS from the module bb_tls.so, loaded only then (tls_client.h). A host name is resolved
// with IPv4 first, since the real node binds 127.0.0.1 and "localhost" may list ::1 first. A
// kept-alive connection that the node closed while idle is resent once on a new connection
// without counting as a retry.
//
// Thread-safe: any number of threads may call() at once.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"

namespace bb {

enum class RpcStatus {
  Ok = 0,           // == BB_OK
  RpcError = 1,     // == BB_ERR_RPC: node answered {"error":...}
  Transport = 2,    // == BB_ERR_TRANSPORT
  Timeout = 3,      // == BB_ERR_TIMEOUT
  BadResponse = 4,  // == BB_ERR_BAD_RESPONSE: not JSON / not JSON-RPC
  Invalid = 5,      // == BB_ERR_INVALID: the caller's method or params_json is unusable
  Limit = 6,        // == BB_ERR_LIMIT: rate-limited by the node (429/banned) or reply too big
  Shutdown = 8,     // == BB_ERR_SHUTDOWN
};

const char* toString(RpcStatus status);

/// Why a call failed, finer than RpcStatus, for code that must tell failures apart (the node
/// monitor takes a refused connection as an outage at once, other failures only after a
/// window). The message in RpcOutcome::json is for people: never search it.
enum class RpcFailure {
  None,         ///< Ok
  NodeError,    ///< RpcError: the node answered {"error":...}
  Refused,      ///< Transport: connection refused (nothing listens at the node's address)
  Dropped,      ///< Transport: connection reset, closed without a reply, or reply truncated
  Resolve,      ///< Transport: the node's host name did not resolve
  Tls,          ///< Transport: the node's certificate was refused (a setting to fix)
  Io,           ///< Transport: another I/O error
  HttpStatus,   ///< Transport: an HTTP status (http_status) with no JSON-RPC answer: 403, 5xx
  Timeout,      ///< Timeout: no reply, request slot or connection before the deadline
  BadReply,     ///< BadResponse: not HTTP, not JSON, not a JSON-RPC response, or another id
  RateLimited,  ///< Limit: the node rate-limited the agent (HTTP 429, -32001/-32002), or the
                ///< calls are paused after it did
  TooLarge,     ///< Limit: the reply exceeds max_response_bytes
  Invalid,      ///< Invalid: the caller's method or params, or the method policy, refused it
  Shutdown,     ///< Shutdown
};

const char* toString(RpcFailure failure);
/// The failure a status has when nothing finer is known (Transport: Io, Limit: RateLimited).
RpcFailure failureOf(RpcStatus status);

struct RpcOutcome {
  RpcStatus status = RpcStatus::Transport;
  RpcFailure failure = RpcFailure::Io;  ///< None exactly when Ok
  /// Ok: the `result` member as compact JSON text. RpcError: the node's `error` object as JSON
  /// text. Otherwise: {"code":<int>,"message":"..."} with code 0 and a human message that never
  /// contains the auth token.
  std::string json;
  int attempts = 0;     ///< HTTP requests made (1 + retries)
  int http_status = 0;  ///< last HTTP status seen, 0 if none
  double seconds = 0;   ///< wall time of the whole call, waits included
  /// Answered by an identical call's request (share_ms): nothing was sent for this call.
  bool shared = false;
  bool ok() const { return status == RpcStatus::Ok; }
};

/// Observer for self-metrics; called once per call() (callMany included), on the thread that ran
/// the call (a callMany worker or the caller), possibly from several threads at once: it must be
/// thread-safe and must not call back into the client.
using RpcObserver = std::function<void(const std::string& method, const RpcOutcome&)>;

class RpcClient {
 public:
  /// Throws ConfigError for an unusable rpc_url, an unreadable rpc.tls_ca_file (https), or an
  /// https URL when the TLS module cannot be loaded.
  explicit RpcClient(RpcConfig config);
  ~RpcClient();
  RpcClient(const RpcClient&) = delete;
  RpcClient& operator=(const RpcClient&) = delete;

  /// Calls `method` with `params_json` (must be a JSON object text; "" means {}; anything else
  /// is refused unsent with Invalid). Blocks until an outcome or `deadline`, whichever comes
  /// first (a call past its deadline is Timeout).
  RpcOutcome call(const std::string& method, const std::string& params_json,
                  std::chrono::steady_clock::time_point deadline);

  /// Convenience: deadline = now + config timeout_ms * (retries + 1) + backoff.
  RpcOutcome call(const std::string& method, const std::string& params_json = "{}");

  /// Runs the calls concurrently (bounded by max_connections) and returns outcomes in order.
  std::vector<RpcOutcome> callMany(const std::vector<std::pair<std::string, std::string>>& calls,
                                   std::chrono::steady_clock::time_point deadline);

  void setObserver(RpcObserver observer);

  /// Fails all waiting (rate cap, free connection, backoff) and future calls with Shutdown, at
  /// once. An HTTP exchange already on the wire is cut too (within 50 ms) and ends with
  /// Shutdown. Idempotent; the destructor calls it.
  void shutdown();

  /// Requests sent to the node since start (every HTTP attempt).
  uint64_t requestsSent() const;
  /// True while a 429 ban is being waited out.
  bool banned() const;

  const RpcConfig& config() const { return config_; }

  /// How call() judges one HTTP reply of the node to request `id` (status, and the result or
  /// error text; for other outcomes `json` holds the cause): for the fuzz target of the
  /// JSON-RPC envelope and tests. Never throws.
  static RpcOutcome classifyReply(int http_status, const std::string& body, int64_t id);

 private:
  struct Impl;
  RpcConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bb
