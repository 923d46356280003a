#include "api/node_monitor.h"

#include <blockbuster/json.h>

#include <algorithm>
#include <cstdio>

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
      // The client's own messages hold node text capped already; an RpcError's is the node's.
      return text.rfind(method + ":", 0) == 0 ? text : method + ": " + logValue(text);
    }
  } catch (const std::exception&) {
    // Not JSON: shown as it is.
  }
  return method + ": " + logValue(outcome.json);  // the node's words: capped, escaped
}

}  // namespace

std::chrono::milliseconds judgementWindow(const Config& config) {
  int shortest = PluginConfig{}.interval_ms;
  for (const auto& [name, plugin] : config.plugins)
    if (plugin.enabled && plugin.interval_ms > 0) shortest = std::min(shortest, plugin.interval_ms);
  return std::chrono::milliseconds(shortest * 3 / 2);
}

void NodeMonitor::record(const std::string& method, const RpcOutcome& outcome) {
  // Nothing was sent for these: a copy of another call's outcome (shared), a call refused
  // unsent by the agent itself (invalid: the method policy or the caller), or shutting down.
  if (outcome.shared || outcome.status == RpcStatus::Shutdown ||
      outcome.status == RpcStatus::Invalid)
    return;
  const bool banned = outcome.status == RpcStatus::Limit && rpc_ && rpc_->banned();
  // A reply refused as too large still came from a node that answers.
  const bool answered = outcome.status == RpcStatus::Ok || outcome.status == RpcStatus::RpcError ||
                        (outcome.status == RpcStatus::Limit && !banned);
  // A call the agent never sent (its own rate cap had no slot before the deadline, as while the
  // receipts plugin pages through a backlog) says nothing about the node; a ban does.
  if (outcome.attempts == 0 && !answered && !banned) return;
  const auto now = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(mutex_);
  contacted_ = true;
  if (answered) {
    if (!reachable_ && failed_ > 0) {
      const double lasted = std::chrono::duration<double>(now - outage_start_).count();
      char note[160];
      std::snprintf(note, sizeof note,
                    "the node answers%s after %.0f s (%llu failed calls during the outage, "
                    "logged once)",
                    ever_answered_ ? " again" : "", lasted,
                    static_cast<unsigned long long>(failed_));
      logInfo("node", note);
    }
    ever_answered_ = true;
    reachable_ = true;
    last_answer_ = now;
    cause_.clear();
    failed_ = 0;
    return;
  }
  if (!reachable_) {
    if (!ever_answered_ && failed_ == 0) {
      // Not answered since start: said once, like an outage (the plugins' failures are not).
      outage_start_ = now;
      cause_ = describe(method, outcome);
      logWarn("node", cause_ + "; no data yet (repeats not logged until the node answers)");
    }
    ++failed_;  // the same outage: counted, not logged again
    if (cause_.empty()) cause_ = describe(method, outcome);
    return;
  }
  // Reachable so far. A connection the node refused while no call was answered since this one
  // started is an outage at once (the node is not there); any other failure (a reset, an empty
  // reply, a timeout, a bad reply) only after a whole window without an answer: one slow or
  // panicking method is not a down node.
  // A refused connection is a node that is not listening; a reset or an empty reply can be one
  // handler's panic, so it waits for the window like a timeout.
  const bool connection_failed = outcome.failure == RpcFailure::Refused;
  const auto call_started = now - std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                      std::chrono::duration<double>(outcome.seconds));
  const bool answered_meanwhile = ever_answered_ && last_answer_ >= call_started;
  if (ever_answered_ && (connection_failed ? answered_meanwhile : now - last_answer_ < window_))
    return;
  reachable_ = false;
  outage_start_ = ever_answered_ ? last_answer_ : now;
  cause_ = describe(method, outcome);
  failed_ = 1;
  logWarn("node", cause_ +
                      "; serving the last data, marked stale (repeats not logged until "
                      "the node answers again)");
}

NodeState NodeMonitor::state() const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto now = std::chrono::steady_clock::now();
  NodeState s;
  s.ever_answered = ever_answered_;
  s.reachable = reachable_;  // false before the first answer: never overstated
  s.banned = rpc_ && rpc_->banned();
  if (ever_answered_)
    s.last_answer_age_seconds = std::chrono::duration<double>(now - last_answer_).count();
  if (!s.reachable) {
    s.last_error = cause_;
    s.outage_seconds = std::chrono::duration<double>(now - outage_start_).count();
    s.failed_calls = failed_;
  }
  return s;
}

}  // namespace bb
