// Reliability test support: what the fault matrix needs beyond tests/integration/stack.h — the
// agent's thread, fd and RSS counts from /proc, timed reads, bb-devnode's fault control, and a
// small JSON-RPC proxy for the faults bb-devnode cannot inject itself (wrong types, a 429 that
// carries Retry-After, a 403 that lifts).
#pragma once

#include <blockbuster/json.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "integration/stack.h"

namespace bbrel {

/// What /proc says about a process. -1 when it could not be read.
struct ProcStats {
  int threads = -1;
  int fds = -1;
  long rss_kb = -1;
};
ProcStats procStats(int pid);

/// A GET and how long it took.
struct Timed {
  bbtest::HttpResult result;
  double seconds = 0;
};
Timed timedGet(int port, const std::string& target);

/// The body of a GET as JSON when the status is `expect_status`; a null Json otherwise.
blockbuster::Json getJson(int port, const std::string& target, int expect_status = 200);

/// POST /_devnode/faults with `json`; true when bb-devnode accepted it.
bool setFaults(bbtest::DevNode& node, const std::string& json);
/// DELETE /_devnode/faults; true when bb-devnode accepted it.
bool clearFaults(bbtest::DevNode& node);
/// GET /_devnode/stats "http_requests" (every HTTP request the node saw), -1 when unreadable.
long nodeHttpRequests(bbtest::DevNode& node);

/// The agent config every matrix row uses: each plugin collects every `interval_ms` with a 1 s
/// collect deadline (room for a loaded 2-core machine; a 3 s node still misses it), the rate
/// cap is high enough for six plugins at that pace, and `extra` is appended verbatim (YAML).
std::string agentConfig(int interval_ms = 300, const std::string& extra = "");

/// A JSON-RPC proxy on 127.0.0.1 (port 0) in front of an upstream node. Passes every POST
/// through unless told to misbehave. Thread-safe: the setters may be called while the agent
/// talks through it.
class NodeProxy {
 public:
  /// Rewrites the `result` of one method's answers; returns the new result.
  using Mutator = std::function<blockbuster::Json(const blockbuster::Json& result)>;

  explicit NodeProxy(int upstream_port);
  ~NodeProxy();
  NodeProxy(const NodeProxy&) = delete;
  NodeProxy& operator=(const NodeProxy&) = delete;

  int port() const;
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

  /// Answers of `method` pass through `mutate` (empty method = stop mutating).
  void mutate(const std::string& method, Mutator mutate);
  /// For `seconds` from now every request answers HTTP 429 with `Retry-After: <seconds left>`
  /// (the first -32001 rate limited, then -32002 banned), as a node or proxy that states its ban.
  void ban(int seconds);
  /// Every request answers HTTP 403 with an empty body while `on`.
  void forbid(bool on);
  /// Requests received so far (every POST, whatever it was answered).
  long requests() const;

  struct Impl;  ///< the server and its state; public only for its request handler

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace bbrel
