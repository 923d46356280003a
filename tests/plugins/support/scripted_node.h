// A scripted node behind the plugins' one node port (node_port.h), for the logic tests of every
// plugin: one handler per method, every call recorded by batch; a method without a handler
// answers -32601 (method not found), or what otherwise() says.
#ifndef BLOCKBUSTER_TESTS_PLUGINS_SUPPORT_SCRIPTED_NODE_H_
#define BLOCKBUSTER_TESTS_PLUGINS_SUPPORT_SCRIPTED_NODE_H_

#include <blockbuster/plugin_abi.h>

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "node_port.h"

namespace blockbuster::node::scripted {

/// The node answered `v`.
inline Answer ok(Json v) { return Answer::result(std::move(v)); }
/// The node does not serve the method (JSON-RPC -32601).
inline Answer notFound() { return Answer::rpcError(-32601, "method not found"); }
/// The call failed without an answer (BB_ERR_TRANSPORT unless `status` says otherwise).
inline Answer failed(std::string why, int status = BB_ERR_TRANSPORT) {
  return Answer::failure(status, std::move(why));
}

/// Not thread-safe: the logic calls its port from one thread.
class ScriptedNode : public NodePort {
 public:
  using Handler = std::function<Answer(const Json& params)>;

  void on(const std::string& method, Handler h) { handlers_[method] = std::move(h); }
  void answer(const std::string& method, const Json& v) {
    on(method, [v](const Json&) { return ok(v); });
  }
  void fail(const std::string& method, Answer a) {
    on(method, [a](const Json&) { return a; });
  }
  void remove(const std::string& method) { handlers_.erase(method); }
  /// What every method without a handler answers (default: -32601).
  void otherwise(Handler h) { otherwise_ = std::move(h); }

  std::vector<Answer> callMany(const std::vector<Call>& calls) override {
    batches.push_back(calls);
    std::vector<Answer> out;
    for (const auto& c : calls) {
      auto h = handlers_.find(c.method);
      out.push_back(h != handlers_.end() ? h->second(c.params)
                                         : (otherwise_ ? otherwise_(c.params) : notFound()));
    }
    return out;
  }
  /// How many times `method` was called.
  int count(const std::string& method) const {
    int n = 0;
    for (const auto& b : batches)
      for (const auto& c : b) n += c.method == method;
    return n;
  }
  /// The methods of batch `batch`, in order.
  std::vector<std::string> methods(size_t batch) const {
    std::vector<std::string> m;
    for (const auto& c : batches.at(batch)) m.push_back(c.method);
    return m;
  }

  /// Every batch of calls, in order.
  std::vector<std::vector<Call>> batches;

 private:
  std::map<std::string, Handler> handlers_;
  Handler otherwise_;
};

}  // namespace blockbuster::node::scripted

#endif  // BLOCKBUSTER_TESTS_PLUGINS_SUPPORT_SCRIPTED_NODE_H_
