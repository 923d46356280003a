// The node as every plugin's logic sees it: one port (NodePort) that makes JSON-RPC calls and
// returns one Answer per call, and the one Profile enum (which RPC surface the node serves).
// Shared by all six plugins, so that the logic of each is tested on a scripted node alone.
//
// No SDK wrapper here (plugin.h): only json.h and the C constants of plugin_abi.h. host_port.h
// adapts the SDK's Host to the port, for the plugins' glue files only.
#ifndef BLOCKBUSTER_PLUGINS_COMMON_NODE_PORT_H_
#define BLOCKBUSTER_PLUGINS_COMMON_NODE_PORT_H_

#include <blockbuster/json.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace blockbuster::node {

/// Which RPC surface the node serves: the guide's ("spec") or the real node's ("theblock").
enum class Profile { kUnknown, kSpec, kTheBlock };
/// "spec", "theblock", or "unknown".
const char* profileName(Profile p);

/// One JSON-RPC call. `params` is always an object (the real node refuses arrays).
struct Call {
  std::string method;
  Json params = Json::object();
};

/// The recorded outcome of one call: `value` when ok, else the failure as the agent reported it.
/// A value type; no thread-safety concerns.
struct Answer {
  bool ok = false;  ///< true: `value` is the call's `result`
  Json value;
  int status = 0;    ///< bb_status of a failed call
  int64_t code = 0;  ///< JSON-RPC error code of a failed call, 0 when there was none
  std::string message;

  static Answer result(Json value);
  /// The node answered with a JSON-RPC error object.
  static Answer rpcError(int64_t code, std::string message);
  /// The call failed without a JSON-RPC error (transport, timeout, bad reply, refused unsent).
  static Answer failure(int status, std::string message);

  /// The node does not serve the method (or refused it as unauthorised, as the real node does).
  bool methodNotFound() const noexcept;
  /// "compute_market.stats failed: <message> (JSON-RPC -32601)".
  std::string describe(std::string_view method) const;
};

/// The node's RPC as the logic sees it. Implementations decide thread-safety; every plugin calls
/// its port from its collect thread only, one cycle at a time.
class NodePort {
 public:
  virtual ~NodePort() = default;
  /// Runs `calls` (concurrently where the implementation can); one answer per call, in order.
  virtual std::vector<Answer> callMany(const std::vector<Call>& calls) = 0;
  /// One call.
  Answer call(const std::string& method, const Json& params = Json::object()) {
    return callMany({Call{method, params}}).at(0);
  }
};

}  // namespace blockbuster::node

#endif  // BLOCKBUSTER_PLUGINS_COMMON_NODE_PORT_H_
