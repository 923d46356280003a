// The network strength score (0..100) of GET /theblock/network/metrics, as a pure function.
//
// Default formula, the reference implementation's:
//   peers term    = min(peers / 50 * 30, 30)
//   tps term      = min(tps / 1000 * 40, 40)
//   finality term = max(30 - finality_seconds / 10, 0)
//   strength      = trunc(sum of the terms)
// An unknown input leaves its term out (null), and the known terms are rescaled to 100 (times
// 100 / the sum of their maximum points), so that a node that cannot report TPS is not scored
// as if its TPS were 0. With no input known the strength is unknown.
#ifndef BLOCKBUSTER_PLUGINS_NETWORK_NETWORK_STRENGTH_H_
#define BLOCKBUSTER_PLUGINS_NETWORK_NETWORK_STRENGTH_H_

#include <cstdint>
#include <optional>
#include <string>

namespace blockbuster::network {

/// Weights (maximum points of each term) and thresholds of the strength formula. A value type.
struct StrengthParams {
  double peers_weight = 30;                ///< points when peers >= peers_target
  double peers_target = 50;                ///< peer count that earns the full peers term
  double tps_weight = 40;                  ///< points when tps >= tps_target
  double tps_target = 1000;                ///< TPS that earns the full tps term
  double finality_weight = 30;             ///< points at zero finality time
  double finality_seconds_per_point = 10;  ///< seconds of finality that cost one point

  /// Empty when usable, else a message naming the key to fix (config key names).
  std::string validate() const;
};

/// The inputs; std::nullopt = unknown.
struct StrengthInputs {
  std::optional<double> peers;
  std::optional<double> tps;
  std::optional<double> finality_seconds;
};

/// Each term's points before rescaling (nullopt when its input is unknown) and the score.
struct StrengthResult {
  std::optional<double> peers_term;
  std::optional<double> tps_term;
  std::optional<double> finality_term;
  std::optional<int64_t> strength;  ///< 0..100, nullopt when no term is known
};

/// Computes the strength. Pure, thread-safe. Negative or non-finite inputs count as unknown;
/// `params` must have passed validate().
StrengthResult computeStrength(const StrengthInputs& inputs, const StrengthParams& params);

}  // namespace blockbuster::network

#endif  // BLOCKBUSTER_PLUGINS_NETWORK_NETWORK_STRENGTH_H_
