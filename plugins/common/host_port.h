// The SDK host as the plugins' node port: calls go through the agent's shared client, several
// at once when there are several. Included only by the plugins' glue files (it needs the SDK
// wrapper, plugin.h); the logic sees NodePort alone.
#ifndef BLOCKBUSTER_PLUGINS_COMMON_HOST_PORT_H_
#define BLOCKBUSTER_PLUGINS_COMMON_HOST_PORT_H_

#include <blockbuster/plugin.h>

#include <utility>
#include <vector>

#include "node_port.h"

namespace blockbuster::node {

/// Lends a Host's rpcMany to the logic. Borrows the host, which must outlive it.
class HostPort final : public NodePort {
 public:
  explicit HostPort(const Host& host) : host_(host) {}

  std::vector<Answer> callMany(const std::vector<Call>& calls) override {
    std::vector<RpcCall> rpc;
    rpc.reserve(calls.size());
    for (const Call& c : calls) rpc.push_back(RpcCall{c.method, c.params});
    std::vector<Answer> out;
    out.reserve(calls.size());
    for (RpcResult& r : host_.rpcMany(rpc)) {
      Answer a;
      a.ok = r.ok;
      a.value = std::move(r.value);
      a.status = r.status;
      a.code = r.code;
      a.message = std::move(r.message);
      out.push_back(std::move(a));
    }
    return out;
  }

 private:
  const Host& host_;
};

}  // namespace blockbuster::node

#endif  // BLOCKBUSTER_PLUGINS_COMMON_HOST_PORT_H_
