// Fault injection for bb-devnode: what the node does wrong, set by flags or /_devnode/faults.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "json_util.h"

namespace devnode {

/// The faults in force. A value type: the server swaps a whole new copy in under its lock and
/// requests read an immutable shared copy, so a fault change never tears a request.
struct Faults {
  /// Added latency before answering, by method; the key "*" applies to every method.
  std::map<std::string, int64_t> latency_ms;
  /// Fraction [0,1] of matching calls answered with JSON-RPC error -32603.
  double error_rate = 0.0;
  /// Transport misbehaviour for matching calls: "" (none), http500, garbage, truncated,
  /// oversized, empty, hang.
  std::string mode;
  /// Fraction [0,1] of matching calls the mode hits.
  double mode_rate = 1.0;
  /// Methods error_rate and mode apply to; empty means every method.
  std::set<std::string> methods;
  /// Methods answering -32601 as if the node did not have them.
  std::set<std::string> remove_methods;
  /// Bearer token demanded at run time; overrides --auth-token when set. An empty string
  /// means "no token" even when --auth-token was given.
  std::optional<std::string> auth_token;
  /// Size of the body the oversized mode sends.
  int64_t oversized_bytes = 20 * 1024 * 1024;
  /// How long a hung call holds its connection at most (the client normally gives up first).
  int64_t hang_max_seconds = 300;

  static constexpr const char* kModes[] = {"http500",   "garbage", "truncated",
                                           "oversized", "empty",   "hang"};

  /// True when error_rate / mode apply to `method`.
  bool matches(const std::string& method) const {
    return methods.empty() || methods.count(method) > 0;
  }
  /// Added latency for `method` (its own entry, else "*", else 0).
  int64_t latencyFor(const std::string& method) const {
    auto it = latency_ms.find(method);
    if (it != latency_ms.end()) return it->second;
    it = latency_ms.find("*");
    return it == latency_ms.end() ? 0 : it->second;
  }
  static bool validMode(const std::string& m) {
    if (m.empty()) return true;
    for (const char* k : kModes)
      if (m == k) return true;
    return false;
  }

  Json toJson() const;
  /// Merges the members present in `patch` (the POST /_devnode/faults body) into this. Returns
  /// an empty string on success, else what is wrong with the patch (and changes nothing).
  /// `down_seconds` is not a lasting fault; it is returned through `down_seconds_out`.
  std::string apply(const Json& patch, int64_t* down_seconds_out);
};

}  // namespace devnode
