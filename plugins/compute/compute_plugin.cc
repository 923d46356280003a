// The compute plugin's glue: options, the RPC calls through the host, and the report out.
// The logic (profile detection, field mapping, status rule) is in compute_market.cc.
#include <blockbuster/plugin.h>

#include "compute_market.h"
#include "market_glue.h"

namespace {

using blockbuster::markets::ComputeMarket;
using blockbuster::markets::ComputeOptions;

ComputeOptions optionsFrom(const blockbuster::Json& config) {
  ComputeOptions o;
  if (config["governor"].isBool()) o.governor = config["governor"].asBool();
  return o;
}

class ComputePlugin final : public blockbuster::Plugin {
 public:
  explicit ComputePlugin(blockbuster::Host& host)
      : host_(host), market_(optionsFrom(host.config())) {}

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {{"governor", BB_CONFIG_BOOL, "true",
             "On the real node, also read governor.status for the compute market's utilisation "
             "(used instead of the backlog-based figure when the node's governor is enabled)."}};
  }

  void collect() override { blockbuster::markets::collectMarket(host_, market_); }

 private:
  blockbuster::Host& host_;
  ComputeMarket market_;
};

}  // namespace

BLOCKBUSTER_PLUGIN(ComputePlugin, "compute", "1.0.0",
                   "Compute market health: jobs, providers, utilisation, revenue.")
