// Glue of the network plugin: reads options, lends the host's RPC client to the logic (the
// plugins' one node port, host_port.h), and publishes what a cycle learnt. The domain logic is
// in network_logic.h.
#include <blockbuster/plugin.h>

#include <chrono>
#include <cmath>
#include <stdexcept>

#include "host_port.h"
#include "network_logic.h"

namespace {

namespace net = blockbuster::network;

// The agent applies the declared defaults; a key it did not pass keeps the built-in default.
double option(const blockbuster::Json& c, const char* key, double fallback) {
  const blockbuster::Json& v = c[key];
  if (v.isNull()) return fallback;
  if (!v.isNumber())
    throw std::invalid_argument(std::string("network option ") + key + " must be a number, got " +
                                v.dump());
  return v.asDouble();
}

net::CollectorOptions readOptions(const blockbuster::Json& c) {
  net::CollectorOptions o;
  double max_peers = option(c, "max_peers", static_cast<double>(o.max_peers));
  if (std::floor(max_peers) != max_peers || std::fabs(max_peers) > 1e9)
    throw std::invalid_argument("network option max_peers must be an integer");
  o.max_peers = static_cast<int64_t>(max_peers);
  net::StrengthParams& p = o.strength;
  p.peers_weight = option(c, "peers_weight", p.peers_weight);
  p.peers_target = option(c, "peers_target", p.peers_target);
  p.tps_weight = option(c, "tps_weight", p.tps_weight);
  p.tps_target = option(c, "tps_target", p.tps_target);
  p.finality_weight = option(c, "finality_weight", p.finality_weight);
  p.finality_seconds_per_point =
      option(c, "finality_seconds_per_point", p.finality_seconds_per_point);
  std::string problem = o.validate();
  if (!problem.empty()) throw std::invalid_argument(problem);
  return o;
}

class NetworkPlugin final : public blockbuster::Plugin {
 public:
  explicit NetworkPlugin(blockbuster::Host& host)
      : host_(host), collector_(readOptions(host.config())) {}

  static std::vector<blockbuster::ConfigKey> configKeys() {
    return {
        {"max_peers", BB_CONFIG_INT, "1000",
         "Most peers read from net.peer_stats_all per cycle (pages of 100)."},
        {"peers_weight", BB_CONFIG_DOUBLE, "30", "Strength points of the peers term."},
        {"peers_target", BB_CONFIG_DOUBLE, "50", "Peer count that earns the full peers term."},
        {"tps_weight", BB_CONFIG_DOUBLE, "40", "Strength points of the tps term."},
        {"tps_target", BB_CONFIG_DOUBLE, "1000", "TPS that earns the full tps term."},
        {"finality_weight", BB_CONFIG_DOUBLE, "30",
         "Strength points of the finality term at zero finality time."},
        {"finality_seconds_per_point", BB_CONFIG_DOUBLE, "10",
         "Seconds of finality time that cost one point of the finality term."},
    };
  }

  void collect() override {
    blockbuster::node::HostPort rpc(host_);
    const double now =
        std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
    net::Snapshot s;
    try {
      s = collector_.collect(rpc, now);
    } catch (const net::CallFailed& e) {
      // Keep the agent's status (transport, timeout, ...) rather than a generic internal error.
      throw blockbuster::RpcError(e.status(), e.code(), e.what());
    }
    // The collector forgets the profile after any failure; log only a real change.
    if (s.profile != logged_profile_) {
      host_.info(std::string("node profile: ") + net::profileName(s.profile));
      logged_profile_ = s.profile;
    }
    host_.publish("metrics", net::metricsBody(s));
    host_.publish("peers", net::peersBody(s));
    for (const auto& m : net::metricSamples(s)) {
      if (m.counter)
        host_.counterTotal(m.name, m.help, m.value, m.labels);
      else
        host_.gauge(m.name, m.help, m.value, m.labels);
    }
    for (const auto& [name, value] : net::featureValues(s)) host_.feature(name, value);
  }

 private:
  blockbuster::Host& host_;
  net::NetworkCollector collector_;
  net::Profile logged_profile_ = net::Profile::kUnknown;
};

}  // namespace

BLOCKBUSTER_PLUGIN(NetworkPlugin, "network", "1.0.0",
                   "Network metrics and the peer list (GET /theblock/network/metrics, "
                   "/theblock/peers/list).")
