// The plugin a newcomer copies: reads the chain height, publishes it, exports it as a metric.
#include <blockbuster/plugin.h>

namespace {

class HelloPlugin final : public blockbuster::Plugin {
 public:
  explicit HelloPlugin(blockbuster::Host& host)
      : host_(host), greeting_(host.config()["greeting"].asString()) {}

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {{"greeting", BB_CONFIG_STRING, "\"hello\"", "Text published beside the height."}};
  }

  void collect() override {
    // light.latest_header crashes a real node whose chain is empty: ask light.headers first
    // (a node of the guide's profile does not have it, and answers "method not found").
    blockbuster::RpcResult first = host_.tryRpc("light.headers", {{"start", 0}, {"limit", 1}});
    if (first.ok && first.value.size() == 0) {
      host_.publish("hello", {{"greeting", greeting_}, {"height", nullptr}});
      host_.removeMetric("hello_chain_height");
      return;
    }
    // Works on both node profiles: the real node answers {"height",...}, the guide's {"number"}.
    blockbuster::Json header = host_.rpc("light.latest_header");
    const blockbuster::Json& height =
        header.contains("height") ? header["height"] : header["number"];
    host_.publish("hello", {{"greeting", greeting_}, {"height", height}});
    // Also kept in the agent's history (series "hello.hello_chain_height"): GET /theblock/history.
    host_.historyGauge("hello_chain_height", "Chain height seen by the hello plugin.",
                       height.isNumber() ? height.asDouble() : std::nan(""));
  }

 private:
  blockbuster::Host& host_;
  std::string greeting_;
};

}  // namespace

BLOCKBUSTER_PLUGIN(HelloPlugin, "hello", "1.0.0", "Reports the chain height.")
