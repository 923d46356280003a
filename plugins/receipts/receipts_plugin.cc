// The receipts plugin's glue: options, the node through the host, the route, sections, metrics
// and features. The behaviour is in receipts_service.cc (store, ingest, rendering).
#include <blockbuster/plugin.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "host_port.h"
#include "receipts_service.h"

namespace {

namespace rx = blockbuster::receipts;
using blockbuster::Json;

int64_t intOption(const Json& config, const char* key, int64_t lo, int64_t hi) {
  const Json& v = config[key];
  if (!v.isNumber() || v.asDouble() < static_cast<double>(lo) ||
      v.asDouble() > static_cast<double>(hi) || std::floor(v.asDouble()) != v.asDouble())
    throw std::runtime_error("receipts: option " + std::string(key) + " must be an integer from " +
                             std::to_string(lo) + " to " + std::to_string(hi) + ", got " +
                             v.dump());
  return v.asInt();
}

rx::ServiceOptions optionsFrom(const blockbuster::Host& host) {
  const Json& c = host.config();
  rx::ServiceOptions o;
  o.db_path = c["db_path"].isString() ? c["db_path"].asString() : "";
  if (o.db_path.empty()) {
    const std::string dir = host.stateDir();
    if (dir.empty())
      throw std::runtime_error("receipts: the agent gave no state directory; set db_path");
    o.db_path = dir + "/receipts.db";
  }
  o.page_size = intOption(c, "page_size", 1, 1000);
  o.operations_limit = intOption(c, "operations_limit", 1, 1000);
  o.retention.max_receipts = intOption(c, "retention_max_receipts", 0, INT64_C(1000000000000));
  o.retention.days = intOption(c, "retention_days", 0, 100000);
  return o;
}

int64_t unixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

double monotonicNow() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

class ReceiptsPlugin final : public blockbuster::Plugin {
 public:
  explicit ReceiptsPlugin(blockbuster::Host& host) : host_(host), service_(optionsFrom(host)) {
    host_.serve("/theblock/receipts", [this](const blockbuster::Request& req) {
      rx::HttpAnswer a = service_.handleReceipts(req.query, unixNow(), req.may_block);
      if (a.deferred()) return blockbuster::Response::defer();
      return blockbuster::Response{a.status, std::move(a.body)};
    });
    host_.info("receipts store at " + service_.store().path());
  }

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {
        {"db_path", BB_CONFIG_STRING, "\"\"",
         "SQLite file of the receipts store; empty = receipts.db in the directory the agent keeps "
         "for this plugin."},
        {"page_size", BB_CONFIG_INT, "500",
         "Receipts asked per RPC page (receipt.audit up to 1000, energy.receipts up to 100)."},
        {"operations_limit", BB_CONFIG_INT, "50",
         "Recent operations published in /theblock/operations, overall and per market."},
        {"retention_max_receipts", BB_CONFIG_INT, "1000000",
         "Receipts kept in the store, oldest pruned first; 0 = no limit."},
        {"retention_days", BB_CONFIG_INT, "0",
         "Prune receipts older than this many days; 0 = keep them."},
    };
  }

  void collect() override {
    blockbuster::node::HostPort node(host_);
    rx::CycleResult c = service_.collect(node, unixNow(), monotonicNow());
    for (const auto& w : c.report.warnings) host_.warn(w);
    for (const auto& p : c.report.progress) host_.debug(p);
    if (c.ok) logCatchUp(c);
    if (c.pruned > 0) host_.info("retention pruned " + std::to_string(c.pruned) + " receipts");
    for (const auto& m : rx::marketNames()) {
      const blockbuster::Labels labels{{"market", m}};
      const auto it = c.report.outcome.inserted.find(m);
      const int64_t added = (c.ok && it != c.report.outcome.inserted.end()) ? it->second : 0;
      host_.counterAdd("theblock_receipts_ingested_total",
                       "Receipts newly stored by the receipts plugin, per market.",
                       static_cast<double>(added), labels);
      const auto stored = c.stats.by_market.find(m);
      host_.gauge(
          "theblock_receipts_stored", "Receipts held in the receipts store, per market.",
          stored == c.stats.by_market.end() ? std::nan("") : static_cast<double>(stored->second),
          labels);
      // A rate needs the time since the previous cycle; the first cycle has none.
      host_.feature("per_second." + m, c.ok && c.interval_seconds && *c.interval_seconds > 0
                                           ? static_cast<double>(added) / *c.interval_seconds
                                           : std::nan(""));
    }
    host_.gauge(
        "theblock_receipts_last_height", "Highest block height among the stored receipts.",
        c.stats.max_block_height ? static_cast<double>(*c.stats.max_block_height) : std::nan(""));
    host_.feature("total", static_cast<double>(c.stats.receipts));
    try {
      host_.publish("operations", service_.operationsBody());
    } catch (const std::exception& e) {
      host_.publishError("operations", e.what());
    }
    host_.publish("store", service_.storeBody(c.stats));
    if (!c.ok) {
      host_.publishError("operations", c.error);
      throw std::runtime_error(c.error);
    }
  }

 private:
  // A backlog (a first start, a node that was away) takes many cycles: progress at info, at
  // most every 10 s, and one line when it is read, instead of a warning per cycle.
  void logCatchUp(const rx::CycleResult& c) {
    const std::string stored =
        c.stats.max_block_height ? "height " + std::to_string(*c.stats.max_block_height) : "none";
    const std::string of =
        c.report.newest_height ? " of " + std::to_string(*c.report.newest_height) : "";
    if (!c.report.complete) {
      const double now = monotonicNow();
      if (!catching_up_ || now - last_progress_ >= 10) {
        host_.info("catching up on the node's receipts: stored up to " + stored + of + " (" +
                   std::to_string(c.stats.receipts) + " receipts)");
        last_progress_ = now;
      }
      catching_up_ = true;
    } else if (catching_up_) {
      host_.info("caught up: receipts stored up to " + stored + " (" +
                 std::to_string(c.stats.receipts) + " receipts)");
      catching_up_ = false;
    }
  }

  blockbuster::Host& host_;
  rx::ReceiptsService service_;
  bool catching_up_ = false;
  double last_progress_ = 0;
};

}  // namespace

BLOCKBUSTER_PLUGIN(ReceiptsPlugin, "receipts", "1.0.0",
                   "Ingests the node's receipts into SQLite; serves /theblock/receipts and "
                   "/theblock/operations.")
