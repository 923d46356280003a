// The ads plugin's glue: options, the RPC calls through the host, and the report out.
// The logic (profile detection, field mapping, status rule) is in ads_market.cc.
#include <blockbuster/plugin.h>

#include "ads_market.h"
#include "market_glue.h"

namespace {

using blockbuster::markets::AdsMarket;
using blockbuster::markets::AdsOptions;

AdsOptions optionsFrom(const blockbuster::Json& config) {
  AdsOptions o;
  if (config["governor"].isBool()) o.governor = config["governor"].asBool();
  return o;
}

class AdsPlugin final : public blockbuster::Plugin {
 public:
  explicit AdsPlugin(blockbuster::Host& host) : host_(host), market_(optionsFrom(host.config())) {}

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {{"governor", BB_CONFIG_BOOL, "true",
             "On the real node, also read governor.status for the ad market's utilisation "
             "(published as utilization; the node has no other source of it)."}};
  }

  void collect() override { blockbuster::markets::collectMarket(host_, market_); }

 private:
  blockbuster::Host& host_;
  AdsMarket market_;
};

}  // namespace

BLOCKBUSTER_PLUGIN(AdsPlugin, "ads", "1.0.0",
                   "Ad market health: campaigns, impressions, revenue, CPM.")
