#include "api/node_monitor.h"

#include "util/log.h"

namespace bb {

void NodeMonitor::record(const std::string& method, const RpcOutcome& outcome) {
  bool answered = outcome.status == RpcStatus::Ok || outcome.status == RpcStatus::RpcError;
  if (outcome.status == RpcStatus::Shutdown) return;
  std::lock_guard<std::mutex> lock(mutex_);
  if (answered) {
    if (!reachable_ && ever_answered_) logInfo("node", "the node answers again");
    ever_answered_ = true;
    reachable_ = true;
    last_answer_ = std::chrono::steady_clock::now();
    last_error_.clear();
    return;
  }
  if (outcome.status == RpcStatus::Limit && !rpc_->banned()) return;  // reply too large: node up
  if (reachable_ || last_error_.empty())
    logWarn("node", method + " failed: " + outcome.json + "; serving the last data, marked stale");
  reachable_ = false;
  last_error_ = method + ": " + outcome.json;
}

NodeState NodeMonitor::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  NodeState s;
  s.ever_answered = ever_answered_;
  s.reachable = reachable_;
  s.banned = rpc_ && rpc_->banned();
  if (ever_answered_)
    s.last_answer_age_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - last_answer_).count();
  s.last_error = last_error_;
  return s;
}

}  // namespace bb
