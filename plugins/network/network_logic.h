// Domain logic of the network plugin: which calls to make on each node profile, how to read
// their answers, and the bodies of sections "metrics" (GET /theblock/network/metrics) and
// "peers" (GET /theblock/peers/list). No SDK wrapper here: the node is reached through NodePort,
// so the whole cycle (profile detection, paging, the empty-chain rule) runs on recorded answers
// in the unit tests.
#ifndef BLOCKBUSTER_PLUGINS_NETWORK_NETWORK_LOGIC_H_
#define BLOCKBUSTER_PLUGINS_NETWORK_NETWORK_LOGIC_H_

#include <blockbuster/json.h>

#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "network_strength.h"
#include "node_port.h"

namespace blockbuster::network {

using node::Answer;
using node::Call;
using node::NodePort;
using node::Profile;
using node::profileName;

/// Answer::status when the agent refused to send the call (BB_ERR_INVALID): its method policy
/// holds light.latest_header back after a connection loss until light.headers shows a block
/// again (agent/rpc/method_policy.h).
inline constexpr int kStatusRefusedUnsent = 5;

/// Thrown by NetworkCollector::collect when a call the cycle needs failed.
class CallFailed : public std::runtime_error {
 public:
  CallFailed(const std::string& method, const Answer& reply);
  int status() const noexcept { return status_; }
  int64_t code() const noexcept { return code_; }

 private:
  int status_;
  int64_t code_;
};

/// Thrown when the node's answers match neither profile; the message says what came back.
class ShapeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A number that may be unknown, with the reason when it is.
struct Value {
  std::optional<double> value;
  std::string reason;  ///< why value is unknown; empty when known

  static Value known(double v) { return Value{v, ""}; }
  static Value unknown(std::string why) { return Value{std::nullopt, std::move(why)}; }
  /// Json number, or null.
  Json json() const;
  /// The value, or NaN (which the host turns into "remove the series").
  double orNaN() const;
};

/// Everything one successful cycle learned. A value type.
struct Snapshot {
  Profile profile = Profile::kUnknown;
  Value block_height;
  Value block_rate;  ///< blocks per second between this sample and the previous one
  /// Seconds since the height last changed (as the agent saw it); unknown until it changes once.
  Value last_block_age_seconds;
  Value finality_time;
  Value peer_count;
  Value tps;
  Value bandwidth_in;   ///< bytes per second
  Value bandwidth_out;  ///< bytes per second
  Value active_connections;
  Value bytes_sent_total;  ///< bytes sent to listed peers while observed (theblock profile only)
  StrengthResult strength;

  /// Peer objects with every guide field; nullopt when the node gave no usable list.
  std::optional<std::vector<Json>> peers;
  std::string peers_reason;      ///< why `peers` is nullopt
  bool peers_truncated = false;  ///< the list stopped at max_peers; the node may have more
  /// Guide peer field -> why it is null (for some or all peers).
  std::map<std::string, std::string> peer_field_reasons;
};

/// Body of section "metrics": the guide's fields in its order, then strength_terms, block_rate,
/// profile and unavailable (present, listing each null field).
Json metricsBody(const Snapshot& s);

/// Body of section "peers": {"peers":[...],"total","truncated","unavailable"}.
Json peersBody(const Snapshot& s);

/// One Prometheus series to set (or remove, when value is NaN).
struct MetricSample {
  std::string name;
  std::string help;
  double value;
  std::vector<std::pair<std::string, std::string>> labels;
  bool counter = false;  ///< an absolute total the node reports (counterTotal), else a gauge
};

/// Every series the plugin owns, each cycle, so that an unknown value removes its series.
std::vector<MetricSample> metricSamples(const Snapshot& s);

/// Feature name (without the "network." prefix the agent adds) -> value, NaN when unknown.
std::vector<std::pair<std::string, double>> featureValues(const Snapshot& s);

/// Options of the collector (the plugin's config keys).
struct CollectorOptions {
  int64_t max_peers = 1000;  ///< cap on peers read from net.peer_stats_all per cycle
  StrengthParams strength;
  /// Empty when usable, else a message naming the key to fix.
  std::string validate() const;
};

/// Page size of net.peer_stats_all.
inline constexpr int64_t kPeerPageSize = 100;

/// Runs collection cycles and keeps what must survive between them: the detected profile, whether
/// the chain is known non-empty, and the previous samples that rates are derived from.
/// Not thread-safe: one cycle at a time (the agent never runs two collects of one instance).
class NetworkCollector {
 public:
  explicit NetworkCollector(CollectorOptions options);

  /// One cycle. `now_seconds` is a monotonic clock reading (rates are deltas over it).
  /// Throws CallFailed when a needed call fails, ShapeError when the node matches no profile.
  Snapshot collect(NodePort& rpc, double now_seconds);

  Profile profile() const noexcept { return profile_; }
  /// True once light.headers returned a header: only then is light.latest_header safe to call.
  bool chainKnownNonEmpty() const noexcept { return chain_non_empty_; }

 private:
  enum class Outcome { kDone, kRedetect };
  Profile detect(NodePort& rpc);
  Outcome collectSpec(NodePort& rpc, Snapshot& s);
  Outcome collectTheBlock(NodePort& rpc, double now, Snapshot& s);
  void deriveBlockRate(double now, Snapshot& s);
  void finish(Snapshot& s) const;

  CollectorOptions options_;
  Profile profile_ = Profile::kUnknown;
  bool chain_non_empty_ = false;
  std::optional<std::pair<double, double>> last_height_;  // (time, height)
  std::optional<double> first_seen_;                      // when the agent first read a height
  std::optional<double> height_changed_at_;               // when it saw the height change last
  // Per-peer bytes_sent of the previous sample, keyed by peer id: a rate summed over peers seen
  // twice is not disturbed by peers joining or leaving between samples.
  std::optional<double> last_bytes_time_;
  std::map<std::string, double> last_bytes_;
  double sent_observed_ = 0;  // theblock_peer_bytes_sent_total: grows by per-peer increases only
};

}  // namespace blockbuster::network

#endif  // BLOCKBUSTER_PLUGINS_NETWORK_NETWORK_LOGIC_H_
