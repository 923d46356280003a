// The HTTP side of the reactor: a few loops (net/loop.h) share a listening socket and serve
// every connection, plain or TLS, without a thread of its own: the TLS handshake, the requests
// (keep-alive, pipelining, limits), the WebSocket upgrades, whose streams are then handed to
// the UpgradeHandler. Slow requests go to an offload pool. Private to bb_http (server.cc).
//
// Why: with a thread per connection (Poco), each request cost about eight system calls and a
// context switch, and on the agent's VMs system calls are what a request costs
// (docs/performance.md, "REST throughput"). Here a request costs a recv and a sendmsg, and a
// loop answers the requests of all its connections in turn.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "http/request_flow.h"

namespace bb::net {
class TlsContext;
}

namespace bb::http_detail {

class EventServer {
 public:
  /// Serves `listen_fd` (bound and listening; the caller owns it and keeps it open for as long
  /// as this lives) with the options, handler and observer of `flow`; over TLS with `tls` (not
  /// owned, outlives this) when not null.
  EventServer(const RequestFlow& flow, const std::atomic<UpgradeHandler*>& upgrade, int listen_fd,
              const net::TlsContext* tls = nullptr);
  ~EventServer();
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  void start();
  /// Stops accepting, closes every connection, joins the loops and the offload workers.
  void stop();

 private:
  struct Loop;
  struct Pool;
  /// A worker of the pool: of the deferred queue (store queries, at options.deferred_nice) or of
  /// the offloaded one. `suffix` ends its thread name.
  void startWorker(bool deferred, const std::string& suffix);

  const RequestFlow& flow_;
  const ServerOptions& options_;
  const std::atomic<UpgradeHandler*>& upgrade_;
  const int listen_fd_;
  const net::TlsContext* tls_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::unique_ptr<Pool> pool_;  // offloaded requests; threads only when options.offload is set
  std::atomic<int> open_{0};    // connections of every loop, for max_connections
  std::atomic<unsigned long> refused_{0};
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace bb::http_detail
