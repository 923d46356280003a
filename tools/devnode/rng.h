// Deterministic pseudo-random numbers for the simulated chain.
//
// Why not <random>: the standard distributions are not specified bit for bit, so the same seed
// could give a different chain with another standard library. SplitMix64 is fully specified.
#pragma once

#include <cstdint>
#include <string>

namespace devnode {

/// SplitMix64. A value type; not thread-safe (each owner keeps its own).
class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}

  uint64_t next() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  /// Uniform in [0, n); n == 0 gives 0.
  uint64_t below(uint64_t n) { return n == 0 ? 0 : next() % n; }
  /// Uniform in [lo, hi] (inclusive).
  int64_t range(int64_t lo, int64_t hi) {
    return lo + static_cast<int64_t>(below(static_cast<uint64_t>(hi - lo) + 1));
  }
  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
  bool chance(double p) { return unit() < p; }

 private:
  uint64_t state_;
};

/// A stateless 64-bit mix of two words (for values derived from a seed and an index).
inline uint64_t mix64(uint64_t a, uint64_t b) {
  Rng r(a * 0xD1B54A32D192ED03ULL ^ b);
  r.next();
  return r.next();
}

/// `words` 64-bit words of hex derived from (a, b): 16 hex characters per word.
inline std::string hexId(uint64_t a, uint64_t b, int words) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(static_cast<size_t>(words) * 16);
  Rng r(mix64(a, b));
  for (int w = 0; w < words; ++w) {
    uint64_t v = r.next();
    for (int i = 15; i >= 0; --i) out += kHex[(v >> (i * 4)) & 0xF];
  }
  return out;
}

}  // namespace devnode
