// Whether the node answers, as seen through the RPC client's outcomes (no extra calls): one
// judgement of the node for all plugins, not whichever call ended last.
//
// The node is unreachable only when calls fail at the transport level: a connection refused
// while no other call was answered since it started, or any transport failure (reset, empty
// reply, timeout, not an HTTP/JSON-RPC reply, rate-limit ban) after `window` (1.5 of
// the shortest collect interval: every plugin's cycle has failed) without an answer. A slow or
// failing method while others answer is that method's plugin's problem, reported against it.
// One outage is one cause: the first failure's, kept until the node answers again; later
// failures are counted, not logged, and the count is logged with the return.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "config/config.h"
#include "rpc/rpc_client.h"

namespace bb {

struct NodeState {
  bool ever_answered = false;
  bool reachable = false;  ///< see the file comment
  bool banned = false;     ///< the node rate-limited us (HTTP 429 / -32001 / -32002)
  std::optional<double> last_answer_age_seconds;
  std::string last_error;                ///< the cause of the current outage ("" while reachable)
  std::optional<double> outage_seconds;  ///< how long the current outage has lasted
  uint64_t failed_calls = 0;             ///< failed calls during the current outage
};

/// 1.5 times the shortest collect interval of the enabled plugins (2 s when none is set): by
/// then every plugin has had a cycle.
std::chrono::milliseconds judgementWindow(const Config& config);

class NodeMonitor {
 public:
  /// `rpc` (not owned) is asked whether a ban is being waited out.
  explicit NodeMonitor(const RpcClient* rpc,
                       std::chrono::milliseconds window = std::chrono::milliseconds(3000))
      : rpc_(rpc), window_(window) {}
  void record(const std::string& method, const RpcOutcome& outcome);
  NodeState state() const;

 private:
  const RpcClient* rpc_;
  const std::chrono::milliseconds window_;
  mutable std::mutex mutex_;
  bool ever_answered_ = false;
  bool contacted_ = false;
  bool reachable_ = false;
  std::chrono::steady_clock::time_point last_answer_{};
  std::chrono::steady_clock::time_point outage_start_{};
  std::string cause_;
  uint64_t failed_ = 0;
};

}  // namespace bb
