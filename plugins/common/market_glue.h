// Glue shared by the four market plugins: runs a market's calls through the host (as the node
// port, host_port.h), feeds the answers to its logic and emits the report (section, metrics,
// features). Included only by the plugins' *_plugin.cc files, never by logic (it needs the SDK
// wrapper, plugin.h).
#ifndef BLOCKBUSTER_PLUGINS_COMMON_MARKET_GLUE_H_
#define BLOCKBUSTER_PLUGINS_COMMON_MARKET_GLUE_H_

#include <blockbuster/plugin.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "host_port.h"
#include "market_common.h"

namespace blockbuster::markets {

/// Name of the one section each market plugin publishes ("<plugin>.market" on the dashboard).
inline constexpr const char* kMarketSection = "market";

/// Makes `calls` concurrently through the node port (one cycle costs the slowest call).
inline Answers callAll(node::NodePort& port, const std::vector<Call>& calls) {
  std::vector<Answer> results = port.callMany(calls);
  Answers answers;
  for (size_t i = 0; i < calls.size() && i < results.size(); ++i)
    answers[calls[i].method] = std::move(results[i]);
  return answers;
}

/// Publishes a report, sets its metrics (NaN removes a series) and features.
inline void emit(const Host& host, const MarketReport& report) {
  host.publish(kMarketSection, report.body());
  for (const MetricPoint& m : report.metrics) host.gauge(m.name, m.help, m.value, m.labels);
  for (const FeaturePoint& f : report.features) host.feature(f.name, f.value);
}

/// True when the node gave no usable answer at all (refused, reset, timed out, not JSON-RPC,
/// rate-limited, too large): a fault of the link or the node, which says nothing about the
/// market. A JSON-RPC error is an answer (the node said "not found", "unauthorized", ...).
inline bool unanswered(const Answer& a) {
  return !a.ok && (a.status == BB_ERR_TRANSPORT || a.status == BB_ERR_TIMEOUT ||
                   a.status == BB_ERR_BAD_RESPONSE || a.status == BB_ERR_LIMIT);
}

/// Whether `market` lets `method` go unanswered without failing the cycle (a market with a
/// `bool tolerates(const std::string&) const` member; none by default).
template <typename Market>
auto tolerated(const Market& market, const std::string& method, int)
    -> decltype(market.tolerates(method)) {
  return market.tolerates(method);
}
template <typename Market>
bool tolerated(const Market&, const std::string&, long) {
  return false;
}

/// One collect cycle of a market (a class with plan() and update(const Answers&)). A call the
/// node left unanswered is thrown before anything is published, so the agent keeps serving the
/// last report marked stale with the reason (and counts the failure) instead of replacing good
/// figures with nulls. A call the node answered with an error is published as status
/// "unavailable" and returns normally; an answer of a shape the market cannot recognise, or
/// with a figure of the wrong JSON type, is published the same way (the figure null with its
/// reason), then thrown so the agent counts it and /health names it.
/// Not thread-safe: the agent calls collect() of one instance from one thread at a time.
template <typename Market>
void collectMarket(const Host& host, Market& market) {
  node::HostPort port(host);
  Outcome outcome;
  // The second pass runs only when the remembered profile stopped matching (re-detection).
  for (int pass = 0; pass < 2; ++pass) {
    Answers answers = callAll(port, market.plan());
    for (const auto& [method, answer] : answers)
      if (unanswered(answer) && !tolerated(market, method, 0))
        throw std::runtime_error(answer.describe(method));
    const Profile remembered = market.profile();
    outcome = market.update(answers);
    if (!outcome.redetect) break;
    host.info("the node's answers no longer match the " + std::string(profileName(remembered)) +
              " profile; detecting it again");
  }
  if (outcome.redetect)
    throw std::runtime_error("the node's profile kept changing within one cycle");
  emit(host, outcome.report);
  if (outcome.report.unrecognised) throw std::runtime_error(outcome.report.error);
  if (!outcome.report.malformed.empty())
    throw std::runtime_error("the node answered an impossible value: " + outcome.report.malformed);
}

}  // namespace blockbuster::markets

#endif  // BLOCKBUSTER_PLUGINS_COMMON_MARKET_GLUE_H_
