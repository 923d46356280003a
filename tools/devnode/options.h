// Command line of bb-devnode.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "faults.h"

namespace devnode {

enum class Profile { kSpec, kTheBlock };

inline const char* profileName(Profile p) { return p == Profile::kSpec ? "spec" : "theblock"; }

/// Everything the command line sets. A plain value, read-only once the node runs.
struct Options {
  std::string host = "127.0.0.1";
  int port = -1;  ///< -1: the profile's default (spec 9933, theblock 3030); 0: any free port
  Profile profile = Profile::kSpec;
  uint64_t seed = 1;
  int64_t block_ms = 1000;  ///< 0: blocks only through /_devnode/advance
  uint64_t start_height = 100;
  int accounts = 200;
  int peers = 24;
  int receipts_per_block = 4;
  int64_t max_receipts = 100000;
  std::optional<int64_t> genesis_time;  ///< unix seconds of height 0
  std::vector<std::string> allowed_hosts;
  double rate_limit = 100;  ///< requests per second per client IP; 0 disables
  double rate_burst = 100;
  int64_t ban_seconds = 60;
  double energy_rate_limit = 0;  ///< extra bucket for energy.* reads; 0 disables
  std::string auth_token;
  bool governor = false;
  /// theblock hazards of the real node (tools/devnode/README.md, "Hazards"): how long a
  /// pipeline-opening storage read takes (each also counts a leaked node thread, and two at
  /// once panic); how long RPC calls stall per block while mining (a debug build's chain lock).
  int64_t pipeline_ms = 1500;
  int64_t mining_stall_ms = 0;
  int threads = 128;
  bool verbose = false;
  Faults faults;
  int64_t down_after_ms = 0;
  int64_t down_seconds = 0;
};

/// The full --help text.
std::string helpText();

/// Parses argv. On a bad flag returns nullopt and sets `error` to one line naming the flag and
/// what it accepts. Sets `help` when --help was asked for.
std::optional<Options> parseOptions(int argc, char** argv, bool* help, std::string* error);

}  // namespace devnode
