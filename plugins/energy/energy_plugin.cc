// The energy plugin's glue: options, the RPC calls through the host, and the report out.
// The logic (profile detection, field mapping, status rule) is in energy_market.cc.
#include <blockbuster/plugin.h>

#include "energy_market.h"
#include "market_glue.h"

namespace {

using blockbuster::markets::EnergyMarket;
using blockbuster::markets::EnergyOptions;

EnergyOptions optionsFrom(const blockbuster::Json& config) {
  EnergyOptions o;
  if (config["governor"].isBool()) o.governor = config["governor"].asBool();
  return o;
}

class EnergyPlugin final : public blockbuster::Plugin {
 public:
  explicit EnergyPlugin(blockbuster::Host& host)
      : host_(host), market_(optionsFrom(host.config())) {}

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {{"governor", BB_CONFIG_BOOL, "true",
             "On the real node, also read governor.status for the energy market's utilisation "
             "(published as utilization; the node has no other source of it)."}};
  }

  void collect() override { blockbuster::markets::collectMarket(host_, market_); }

 private:
  blockbuster::Host& host_;
  EnergyMarket market_;
};

}  // namespace

BLOCKBUSTER_PLUGIN(EnergyPlugin, "energy", "1.0.0",
                   "Energy market health: credits, price, traders, volume.")
