// The storage plugin's glue: options, the RPC calls through the host, and the report out.
// The logic (profile detection, field mapping, status rule) is in storage_market.cc.
#include <blockbuster/plugin.h>

#include "market_glue.h"
#include "storage_market.h"

namespace {

using blockbuster::markets::StorageMarket;
using blockbuster::markets::StorageOptions;

StorageOptions optionsFrom(const blockbuster::Json& config) {
  StorageOptions o;
  if (config["governor"].isBool()) o.governor = config["governor"].asBool();
  if (config["provider_limit"].isInt()) o.provider_limit = config["provider_limit"].asInt();
  if (config["manifest_limit"].isInt()) o.manifest_limit = config["manifest_limit"].asInt();
  if (config["discovery_interval"].isInt())
    o.discovery_interval = config["discovery_interval"].asInt();
  return o;
}

class StoragePlugin final : public blockbuster::Plugin {
 public:
  explicit StoragePlugin(blockbuster::Host& host)
      : host_(host), market_(optionsFrom(host.config())) {}

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {{"governor", BB_CONFIG_BOOL, "true",
             "On the real node, read governor.status for capacity_used (the node has no other "
             "source of it)."},
            {"provider_limit", BB_CONFIG_INT, "1000",
             "limit passed to storage.discover_providers (1..100000); a full page makes the "
             "provider total unknown."},
            {"manifest_limit", BB_CONFIG_INT, "1000",
             "limit passed to storage.manifests (1..1000, the node's cap); a full page makes "
             "total_stored unknown."},
            {"discovery_interval", BB_CONFIG_INT, "21600",
             "Seconds between reads of storage.discover_providers and storage.manifests on the "
             "real node (600..604800). Each opens the node's storage pipeline, which leaks a "
             "node thread: the default leaks 8 a day."}};
  }

  void collect() override { blockbuster::markets::collectMarket(host_, market_); }

 private:
  blockbuster::Host& host_;
  StorageMarket market_;
};

}  // namespace

BLOCKBUSTER_PLUGIN(StoragePlugin, "storage", "1.0.0",
                   "Storage market health: bytes stored, providers, price, capacity used.")
