// The engine of a plain (non-TLS) HttpServer: a few epoll event loops share the listening socket
// and serve every connection without a thread of its own. Private to bb_http (server.cc).
//
// Why: with a thread per connection (Poco), each request cost about eight system calls and a
// context switch, and on the agent's VMs system calls are what a request costs
// (docs/performance.md, "REST throughput"). Here a request costs a recv and a sendmsg, and a
// loop answers the requests of all its connections in turn.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "http/request_flow.h"

namespace bb::http_detail {

/// How the event loop frames the first request of `bytes`: for the fuzz target and tests.
struct HeadFraming {
  bool complete = false;  ///< the head's blank line has come
  size_t head_bytes = 0;  ///< through the blank line (line ends before the request included)
  std::string error;      ///< why the head is answered 400 and the connection closed; "" if not
  long long content_length = -1;
  bool chunked = false;  ///< a Transfer-Encoding other than identity (refused with 413)
};
HeadFraming frameRequestHead(std::string_view bytes);

class EventServer {
 public:
  /// Serves `listen_fd` (bound and listening; the caller owns it and keeps it open for as long
  /// as this lives) with the options, handler and observer of `flow`.
  EventServer(const RequestFlow& flow, const std::atomic<UpgradeHandler*>& upgrade, int listen_fd);
  ~EventServer();
  EventServer(const EventServer&) = delete;
  EventServer& operator=(const EventServer&) = delete;

  void start();
  /// Stops accepting, closes every connection, joins the loops and the offload workers.
  void stop();

 private:
  struct Loop;
  struct Pool;

  const RequestFlow& flow_;
  const ServerOptions& options_;
  const std::atomic<UpgradeHandler*>& upgrade_;
  const int listen_fd_;
  std::vector<std::unique_ptr<Loop>> loops_;
  std::unique_ptr<Pool> pool_;  // offloaded requests; threads only when options.offload is set
  std::atomic<int> open_{0};    // connections of every loop, for max_connections
  std::atomic<unsigned long> refused_{0};
  std::atomic<bool> stopping_{false};
  bool started_ = false;
  bool stopped_ = false;
};

}  // namespace bb::http_detail
