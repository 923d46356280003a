#include "network_strength.h"

#include <algorithm>
#include <cmath>

namespace blockbuster::network {
namespace {

bool usable(const std::optional<double>& v) { return v && std::isfinite(*v) && *v >= 0; }

// Points are published; rounding to 1e-9 shows 1.8 rather than the binary 1.7999999999999998.
double points(double x) { return std::round(x * 1e9) / 1e9; }

std::string checkPositive(const char* key, double v) {
  if (std::isfinite(v) && v > 0) return "";
  return std::string("network option ") + key + " must be a number > 0";
}

std::string checkNonNegative(const char* key, double v) {
  if (std::isfinite(v) && v >= 0) return "";
  return std::string("network option ") + key + " must be a number >= 0";
}

}  // namespace

std::string StrengthParams::validate() const {
  for (const std::string& e :
       {checkNonNegative("peers_weight", peers_weight), checkPositive("peers_target", peers_target),
        checkNonNegative("tps_weight", tps_weight), checkPositive("tps_target", tps_target),
        checkNonNegative("finality_weight", finality_weight),
        checkPositive("finality_seconds_per_point", finality_seconds_per_point)})
    if (!e.empty()) return e;
  if (peers_weight + tps_weight + finality_weight <= 0)
    return "network options peers_weight, tps_weight and finality_weight are all 0: give at least "
           "one a positive weight";
  return "";
}

StrengthResult computeStrength(const StrengthInputs& in, const StrengthParams& p) {
  StrengthResult r;
  double sum = 0;
  double max_sum = 0;
  if (usable(in.peers)) {
    r.peers_term = points(std::min(*in.peers * p.peers_weight / p.peers_target, p.peers_weight));
    sum += *r.peers_term;
    max_sum += p.peers_weight;
  }
  if (usable(in.tps)) {
    r.tps_term = points(std::min(*in.tps * p.tps_weight / p.tps_target, p.tps_weight));
    sum += *r.tps_term;
    max_sum += p.tps_weight;
  }
  if (usable(in.finality_seconds)) {
    r.finality_term = points(
        std::max(p.finality_weight - *in.finality_seconds / p.finality_seconds_per_point, 0.0));
    sum += *r.finality_term;
    max_sum += p.finality_weight;
  }
  if (max_sum <= 0) return r;
  double scaled = sum * 100.0 / max_sum;
  // The epsilon keeps binary rounding (13.8 * 100 / 30 = 45.99999...) from costing a point that
  // the decimal arithmetic of the formula gives.
  double truncated = std::floor(scaled + 1e-9);
  r.strength = static_cast<int64_t>(std::clamp(truncated, 0.0, 100.0));
  return r;
}

}  // namespace blockbuster::network
