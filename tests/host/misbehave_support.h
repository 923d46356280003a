// Shared by the tests that run the real agent with the misbehaving fixture plugins
// (tests/host/fixtures/misbehave_plugin.cc): the config that loads them, and readers of the
// agent's /health and /metrics.
#pragma once

#include <string>

#include "integration/stack.h"

namespace bbtest {

/// No node is needed: the fixtures never call it.
inline const std::string kNoNode = "http://127.0.0.1:9";

/// "misbehave" with `options` (a YAML map) and "steady" (every 100 ms), from BB_MISBEHAVE_DIR.
inline std::string misbehaveConfig(const std::string& options, int interval_ms = 100,
                                   int timeout_ms = 0, const std::string& isolation = "") {
  std::string yaml = "plugin_dir: " BB_MISBEHAVE_DIR "\nplugins:\n  misbehave:\n    interval_ms: " +
                     std::to_string(interval_ms) + "\n";
  if (!isolation.empty()) yaml += "    isolation: " + isolation + "\n";
  if (timeout_ms) yaml += "    timeout_ms: " + std::to_string(timeout_ms) + "\n";
  yaml += "    options: " + options + "\n  steady:\n    interval_ms: 100\n";
  return yaml;
}

/// plugins.<name> of /health, or null when /health does not answer.
inline blockbuster::Json pluginHealth(const Agent& agent, const std::string& name) {
  auto r = httpGet(agent.port(), "/health");
  if (r.status != 200) return blockbuster::Json();
  return r.json()["plugins"][name];
}

/// The value of one series of /metrics (e.g. `x_total{plugin="a"}`), or -1 when absent.
inline double metricValue(const Agent& agent, const std::string& series) {
  std::string text = httpGet(agent.port(), "/metrics").body;
  auto pos = text.find("\n" + series + " ");
  if (pos == std::string::npos) return -1;
  return std::stod(text.substr(pos + series.size() + 2));
}

}  // namespace bbtest
