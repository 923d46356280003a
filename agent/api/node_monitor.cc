#include "api/node_monitor.h"

#include <blockbuster/json.h>

#include "util/log.h"

namespace bb {
namespace {

// What went wrong, for a person: the message of the client's {"code":0,"message":"..."} (it
// names the method already), else the method and whatever the outcome holds.
std::string describe(const std::string& method, const RpcOutcome& outcome) {
  try {
    blockbuster::Json error = blockbuster::Json::parse(outcome.json);
    if (const blockbuster::Json* message = error.find("message"); message && message->isString()) {
      const std::string& text = message->asString();
      return text.rfind(method + ":", 0) == 0 ? text : method + ": " + text;
    }
  } catch (const std::exception&) {
    // Not JSON: shown as it is.
  }
  return method + ": " + outcome.json;
}

}  // namespace

void NodeMonitor::record(const std::string& method, const RpcOutcome& outcome) {
  bool answered = outcome.status == RpcStatus::Ok || outcome.status == RpcStatus::RpcError;
  if (outcome.status == RpcStatus::Shutdown) return;
  // A call the agent never sent (its own rate cap had no slot before the deadline, as while the
  // receipts plugin pages through a backlog) says nothing about the node; a ban does.
  if (outcome.attempts == 0 && !answered && !outcome.shared &&
      !(outcome.status == RpcStatus::Limit && rpc_ && rpc_->banned()))
    return;
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
  const std::string why = describe(method, outcome);
  if (reachable_ || last_error_.empty())
    logWarn("node", why + "; serving the last data, marked stale");
  reachable_ = false;
  last_error_ = why;
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
