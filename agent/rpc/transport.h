// The transport of the shared RPC client (rpc_client.h): the node's address, a bounded pool of
// kept-alive HTTP/1.1 connections (Poco::Net::HTTPClientSession, TLS from bb_tls.so for https),
// and one HTTP exchange bounded as a whole by its deadline. It sends what it is given and
// returns what happened (rpc/envelope.h judges the reply); retries, sharing, the rate cap and
// the ban are the client's.
//
// Thread-safe.
#pragma once

#include <Poco/Net/IPAddress.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/config.h"
#include "rpc/envelope.h"

namespace Poco::Net {
class HTTPClientSession;
}  // namespace Poco::Net

namespace bb {

class DeadlineSocketImpl;  // transport.cc

/// A connection of the pool.
struct PooledSession {
  PooledSession();
  ~PooledSession();
  std::unique_ptr<Poco::Net::HTTPClientSession> session;
  DeadlineSocketImpl* socket = nullptr;  // owned by the session's socket
  int uses = 0;                          // completed exchanges; > 0 means a kept-alive connection
};

/// Why a wait for the transport failed.
struct Refusal {
  RpcStatus status;
  RpcFailure failure;
  std::string cause;
};

class Connections {
 public:
  using Clock = std::chrono::steady_clock;

  /// Throws ConfigError for an unusable rpc_url, an unreadable rpc.tls_ca_file (https), or an
  /// https URL when the TLS module cannot be loaded.
  explicit Connections(const RpcConfig& config);
  ~Connections();
  Connections(const Connections&) = delete;
  Connections& operator=(const Connections&) = delete;

  /// An idle connection (the warmest first), or a new one while fewer than max_connections
  /// exist; waits for one to be given back until `deadline` (Timeout) or shutdown (Shutdown).
  std::optional<Refusal> take(Clock::time_point deadline, std::unique_ptr<PooledSession>& out);
  /// Returns a taken connection: kept for the next call when `reusable`, else closed.
  void giveBack(std::unique_ptr<PooledSession> pooled, bool reusable);

  /// One POST of `body` (request `id`) on `pooled`, connecting it first if it is new. Ends by
  /// min(deadline, now + connect_timeout_ms + timeout_ms) whatever the node does.
  Attempt exchange(PooledSession& pooled, const std::string& body, int64_t id,
                   Clock::time_point deadline);

  /// Closes the idle connections, fails waiting and future take()s with Shutdown, and cuts the
  /// exchanges in flight within 50 ms. Idempotent.
  void shutdown();

 private:
  std::vector<Poco::Net::IPAddress> resolve();
  void send(Poco::Net::HTTPClientSession& session, const std::string& body, int64_t id,
            Clock::time_point attempt_deadline, Attempt& out);

  const RpcConfig& config_;
  std::string host_;         // as written in the URL (no brackets), for DNS
  std::string host_header_;  // the URL's host without the port, what the real node checks
  uint16_t port_ = 80;
  std::string target_;         // path and query, "/" when none
  std::string where_;          // the URL for messages (holds no credentials: user info is refused)
  std::shared_ptr<void> tls_;  // https: the TLS module's client context (tls_client.h)

  std::mutex mutex_;  // guards everything below
  std::condition_variable cv_;
  bool shutting_down_ = false;
  std::atomic<bool> stop_io_{false};  // set with shutting_down_: sockets in use give up at once
  std::vector<std::unique_ptr<PooledSession>> idle_;  // LIFO: the warmest connection first
  int live_ = 0;                                      // sessions idle or in use
  std::optional<Poco::Net::IPAddress> good_address_;  // the last address that accepted us
};

}  // namespace bb
