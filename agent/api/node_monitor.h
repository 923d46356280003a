// Whether the node answers, as seen through the RPC client's outcomes (no extra calls).
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>

#include "rpc/rpc_client.h"

namespace bb {

struct NodeState {
  bool ever_answered = false;
  bool reachable = false;  ///< the last call got a JSON-RPC answer (result or error)
  bool banned = false;     ///< the node rate-limited us (HTTP 429 / -32001 / -32002)
  std::optional<double> last_answer_age_seconds;
  std::string last_error;  ///< why the last failed call failed ("" after an answer)
};

class NodeMonitor {
 public:
  /// `rpc` (not owned) is asked whether a ban is being waited out.
  explicit NodeMonitor(const RpcClient* rpc) : rpc_(rpc) {}
  void record(const std::string& method, const RpcOutcome& outcome);
  NodeState state() const;

 private:
  const RpcClient* rpc_;
  mutable std::mutex mutex_;
  bool ever_answered_ = false;
  bool reachable_ = false;
  std::chrono::steady_clock::time_point last_answer_{};
  std::string last_error_;
};

}  // namespace bb
