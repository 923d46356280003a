// What each RPC method answers, rendered from the simulated state, for both profiles.
#pragma once

#include <optional>
#include <string>

#include "json_util.h"
#include "options.h"
#include "simulation.h"

namespace devnode {

struct RpcError {
  int code = 0;
  std::string message;
};

enum class CallStatus { kOk, kError, kUnknownMethod };

/// Renders `method` of the spec profile. `params` is an object, an array or null.
/// Pure: reads `s` only; the caller holds the state's read lock.
CallStatus renderSpec(const ChainState& s, const std::string& method, const Json& params,
                      Json* result, RpcError* error);

/// Renders `method` of the theblock profile. `params` is an object or null (absent); the
/// transport has already refused arrays. Admin and auth checks are the server's.
CallStatus renderTheBlock(const ChainState& s, const std::string& method, const Json& params,
                          Json* result, RpcError* error);

/// The light.* methods, which the latest_header panic poisons on the theblock profile.
bool isLightMethod(const std::string& method);

/// Every retained receipt, oldest first, in canonical form plus where each comes from.
/// `with_sources` false leaves out the per-receipt "source" member (smaller for big histories).
/// Returned as JSON text with sorted keys.
std::string renderGroundTruth(const ChainState& s, Profile profile, std::optional<Market> market,
                              uint64_t start_height, bool with_sources = true);

/// Height, counts and sizes, for GET /_devnode/state.
Json renderSummary(const ChainState& s);

}  // namespace devnode
