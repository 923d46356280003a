#include "network_logic.h"

#include <algorithm>
#include <cmath>
#include <set>

namespace blockbuster::network {
namespace {

// What the real node never reports (reference: "Not available from any method").
constexpr const char* kNoTps =
    "the node reports no transaction rate (the real node has no TPS in any RPC method)";
constexpr const char* kNoBandwidthIn =
    "the node reports no bytes received (net.peer_stats_all has bytes_sent only)";
constexpr const char* kNoFinality =
    "the node reports no finality time (light.latest_header has height, hash, difficulty only)";
constexpr const char* kSpecNoBytesSent = "per-peer bytes_sent exists on the theblock profile only";
constexpr const char* kTwoSamples = "needs two samples: the first one only sets the baseline";
constexpr const char* kHeadersFirst =
    "light.latest_header was not called: it panics a real node whose chain is empty, and "
    "light.headers {\"start\":0,\"limit\":1} has not returned a header";

// The guide's peer fields, in the guide's order.
const char* const kPeerFields[] = {"id",      "address",      "connected_at", "latency_ms",
                                   "version", "is_validator", "reputation"};

// Peer fields the real node's net.peer_stats_all has no counterpart for.
const std::pair<const char*, const char*> kTheBlockMissingPeerFields[] = {
    {"address", "net.peer_stats_all gives no peer address"},
    {"connected_at", "net.peer_stats_all gives no connection time"},
    {"latency_ms", "net.peer_stats_all gives no latency"},
    {"version", "net.peer_stats_all gives no peer version"},
    {"is_validator", "net.peer_stats_all does not say whether a peer is a validator"},
};

std::string numberText(double d) { return Json(d).dump(); }

// A short, bounded description of a value for error messages and reasons.
std::string describe(const Json& v) {
  std::string text = v.dump();
  if (text.size() > 80) text = text.substr(0, 77) + "...";
  return v.typeName() + " " + text;
}

// "a string", "an object", ...
std::string article(const Json& v) {
  std::string t = v.typeName();
  bool vowel = !t.empty() && std::string("aeiou").find(t[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + t;
}

// Reads obj[key] as a finite number >= 0, optionally an integer.
Value readNumber(const Json& obj, const std::string& key, const std::string& source,
                 bool integer = false) {
  const Json* j = obj.find(key);
  if (!j || j->isNull()) return Value::unknown(source + " gave no " + key);
  if (!j->isNumber())
    return Value::unknown(source + " gave " + article(*j) + " for " + key + ", expected a number");
  double d = j->asDouble();
  if (!std::isfinite(d)) return Value::unknown(source + " gave a non-finite " + key);
  if (integer && std::floor(d) != d)
    return Value::unknown(source + " gave a fractional " + key + " (" + numberText(d) +
                          "), expected an integer");
  if (d < 0) return Value::unknown(source + " gave a negative " + key + " (" + numberText(d) + ")");
  return Value::known(d);
}

// Per peer field: the first reason seen and how many peers it concerned.
class FieldReasons {
 public:
  void note(const std::string& field, const std::string& reason) {
    Entry& e = entries_[field];
    if (e.count++ == 0) e.first = reason;
  }
  std::map<std::string, std::string> texts(size_t peers) const {
    std::map<std::string, std::string> out;
    for (const auto& [field, e] : entries_) {
      out[field] = e.first;
      if (e.count > 1 || peers > 1)
        out[field] += " (" + std::to_string(e.count) + " of " + std::to_string(peers) + " peers)";
    }
    return out;
  }

 private:
  struct Entry {
    std::string first;
    size_t count = 0;
  };
  std::map<std::string, Entry> entries_;
};

// Copies obj[key] when it has the expected type; else null and a reason.
Json typedField(const Json& obj, const char* key, Json::Type want, const char* want_name,
                const std::string& source, const std::string& peer_label, FieldReasons& reasons) {
  const Json* j = obj.find(key);
  if (!j || j->isNull()) {
    reasons.note(key, source + " gave no " + key + " for " + peer_label);
    return nullptr;
  }
  bool match = want == Json::Type::Double ? j->isNumber() : j->type() == want;
  if (!match) {
    reasons.note(key, source + " gave " + article(*j) + " for " + key + " of " + peer_label +
                          ", expected " + want_name);
    return nullptr;
  }
  return *j;
}

std::string peerLabel(const Json& peer, const char* id_key, size_t index) {
  const Json& id = peer[id_key];
  if (id.isString()) return "peer " + id.asString();
  return "peer #" + std::to_string(index);
}

// A peer of net.peers (spec profile): every guide field, type-checked.
Json specPeer(const Json& p, size_t index, FieldReasons& reasons) {
  const std::string src = "net.peers";
  if (!p.isObject()) {
    Json peer = Json::object();
    for (const char* f : kPeerFields) {
      reasons.note(
          f, src + " entry #" + std::to_string(index) + " is " + article(p) + ", not an object");
      peer[f] = nullptr;
    }
    return peer;
  }
  std::string label = peerLabel(p, "id", index);
  using T = Json::Type;
  return Json{
      {"id", typedField(p, "id", T::String, "a string", src, label, reasons)},
      {"address", typedField(p, "address", T::String, "a string", src, label, reasons)},
      {"connected_at", typedField(p, "connected_at", T::Double, "a number", src, label, reasons)},
      {"latency_ms", typedField(p, "latency_ms", T::Double, "a number", src, label, reasons)},
      {"version", typedField(p, "version", T::String, "a string", src, label, reasons)},
      {"is_validator", typedField(p, "is_validator", T::Bool, "a boolean", src, label, reasons)},
      {"reputation", typedField(p, "reputation", T::Double, "a number", src, label, reasons)},
  };
}

bool isSpecPeers(const Json& v) { return v.isObject() && v["peers"].isArray(); }
bool isOverlayStatus(const Json& v) { return v.isObject() && v.contains("active_peers"); }

// The per-cycle state of reading net.peer_stats_all pages.
struct PeerPages {
  std::vector<Json> peers;
  std::set<std::string> ids;
  std::map<std::string, double> bytes_sent;  // by peer id
  size_t bytes_missing = 0;                  // listed peers whose bytes_sent is unusable
  std::string first_bytes_problem;
  FieldReasons reasons;
  std::string failed;  // why the list is unusable; empty when usable
  bool truncated = false;
};

}  // namespace

CallFailed::CallFailed(const std::string& method, const Answer& reply)
    : std::runtime_error(method + " failed: " +
                         (reply.message.empty() ? std::string("no reason given") : reply.message) +
                         (reply.code != 0 ? " (code " + std::to_string(reply.code) + ")" : "")),
      status_(reply.status),
      code_(reply.code) {}

Json Value::json() const {
  if (!value) return nullptr;
  double v = *value;
  if (std::floor(v) == v && std::fabs(v) < 9e15) return Json(static_cast<int64_t>(v));
  return Json(v);
}

double Value::orNaN() const { return value ? *value : std::nan(""); }

std::string CollectorOptions::validate() const {
  if (max_peers < 1)
    return "network option max_peers must be >= 1 (got " + std::to_string(max_peers) + ")";
  return strength.validate();
}

// ---------------------------------------------------------------------------------------------
// Bodies, metrics, features

namespace {

Json term(const std::optional<double>& t) { return t ? Json(*t) : Json(); }

std::string termReason(const Value& input, const char* input_name) {
  return std::string(input_name) + " unknown: " + input.reason;
}

}  // namespace

Json metricsBody(const Snapshot& s) {
  Json unavailable = Json::object();
  auto put = [&](const char* name, const Value& v) {
    if (!v.value) unavailable[name] = v.reason;
    return v.json();
  };
  Json body = Json::object();
  body["network_strength"] = s.strength.strength ? Json(*s.strength.strength) : Json();
  if (!s.strength.strength)
    unavailable["network_strength"] =
        "no input of the strength formula is known (peer_count, "
        "tps, finality_time)";
  body["block_height"] = put("block_height", s.block_height);
  body["finality_time"] = put("finality_time", s.finality_time);
  body["peer_count"] = put("peer_count", s.peer_count);
  body["tps"] = put("tps", s.tps);
  body["bandwidth_in"] = put("bandwidth_in", s.bandwidth_in);
  body["bandwidth_out"] = put("bandwidth_out", s.bandwidth_out);
  body["active_connections"] = put("active_connections", s.active_connections);
  body["strength_terms"] = Json{{"peers", term(s.strength.peers_term)},
                                {"tps", term(s.strength.tps_term)},
                                {"finality", term(s.strength.finality_term)}};
  if (!s.strength.peers_term)
    unavailable["strength_terms.peers"] = termReason(s.peer_count, "peer_count");
  if (!s.strength.tps_term) unavailable["strength_terms.tps"] = termReason(s.tps, "tps");
  if (!s.strength.finality_term)
    unavailable["strength_terms.finality"] = termReason(s.finality_time, "finality_time");
  body["block_rate"] = put("block_rate", s.block_rate);
  body["last_block_age_seconds"] = put("last_block_age_seconds", s.last_block_age_seconds);
  body["profile"] = profileName(s.profile);
  body["unavailable"] = std::move(unavailable);
  return body;
}

Json peersBody(const Snapshot& s) {
  Json body = Json::object();
  Json unavailable = Json::object();
  if (s.peers) {
    Json list = Json::array();
    for (const Json& p : *s.peers) list.push_back(p);
    body["peers"] = std::move(list);
    body["total"] = static_cast<int64_t>(s.peers->size());
    for (const auto& [field, reason] : s.peer_field_reasons) unavailable[field] = reason;
  } else {
    body["peers"] = nullptr;
    body["total"] = nullptr;
    unavailable["peers"] = s.peers_reason;
    unavailable["total"] = s.peers_reason;
  }
  body["truncated"] = s.peers_truncated;
  body["unavailable"] = std::move(unavailable);
  return body;
}

std::vector<MetricSample> metricSamples(const Snapshot& s) {
  using Labels = std::vector<std::pair<std::string, std::string>>;
  auto opt = [](const std::optional<double>& v) { return v ? *v : std::nan(""); };
  auto gauge = [](const char* name, const char* help, double v, Labels labels = {}) {
    return MetricSample{name, help, v, std::move(labels), false};
  };
  const char* kBandwidth = "theblock_network_bandwidth_bytes_per_second";
  const char* kBandwidthHelp = "Network bandwidth of the node in bytes per second, by direction.";
  const char* kTerm = "theblock_network_strength_term";
  const char* kTermHelp =
      "Points of one term of the network strength formula, before rescaling to 100.";
  const double strength =
      s.strength.strength ? static_cast<double>(*s.strength.strength) : std::nan("");
  return {
      gauge("theblock_block_height", "Height of the node's latest block.", s.block_height.orNaN()),
      gauge("theblock_block_rate", "Blocks per second, from height deltas over wall-clock time.",
            s.block_rate.orNaN()),
      gauge("theblock_last_block_age_seconds",
            "Seconds since the node's height last changed, as the agent saw it (absent until it "
            "changed once).",
            s.last_block_age_seconds.orNaN()),
      gauge("theblock_finality_seconds", "Finality time reported by the node, in seconds.",
            s.finality_time.orNaN()),
      gauge("theblock_tps", "Transactions per second reported by the node.", s.tps.orNaN()),
      gauge("theblock_peers", "Number of peers of the node.", s.peer_count.orNaN()),
      gauge("theblock_active_connections", "Number of active peer connections of the node.",
            s.active_connections.orNaN()),
      gauge(kBandwidth, kBandwidthHelp, s.bandwidth_in.orNaN(), {{"direction", "in"}}),
      gauge(kBandwidth, kBandwidthHelp, s.bandwidth_out.orNaN(), {{"direction", "out"}}),
      gauge("theblock_network_strength", "Network strength score, 0 to 100.", strength),
      gauge(kTerm, kTermHelp, opt(s.strength.peers_term), {{"term", "peers"}}),
      gauge(kTerm, kTermHelp, opt(s.strength.tps_term), {{"term", "tps"}}),
      gauge(kTerm, kTermHelp, opt(s.strength.finality_term), {{"term", "finality"}}),
      MetricSample{"theblock_peer_bytes_sent_total",
                   "Bytes the node sent to its listed peers while the agent watched (per-peer "
                   "increases of net.peer_stats_all bytes_sent).",
                   s.bytes_sent_total.orNaN(),
                   {},
                   true},
  };
}

std::vector<std::pair<std::string, double>> featureValues(const Snapshot& s) {
  return {
      {"block_height", s.block_height.orNaN()},
      {"block_rate", s.block_rate.orNaN()},
      {"tps", s.tps.orNaN()},
      {"peers", s.peer_count.orNaN()},
      {"finality_seconds", s.finality_time.orNaN()},
      {"bandwidth_in", s.bandwidth_in.orNaN()},
      {"bandwidth_out", s.bandwidth_out.orNaN()},
      {"strength", s.strength.strength ? static_cast<double>(*s.strength.strength) : std::nan("")},
  };
}

// ---------------------------------------------------------------------------------------------
// The collector

NetworkCollector::NetworkCollector(CollectorOptions options) : options_(std::move(options)) {}

Snapshot NetworkCollector::collect(NodePort& rpc, double now_seconds) {
  try {
    // Two attempts: a node whose answers stop matching the remembered profile is re-detected
    // once within the same cycle; a second mismatch is an error.
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (profile_ == Profile::kUnknown) {
        profile_ = detect(rpc);
        chain_non_empty_ = false;
      }
      Snapshot s;
      s.profile = profile_;
      Outcome outcome =
          profile_ == Profile::kSpec ? collectSpec(rpc, s) : collectTheBlock(rpc, now_seconds, s);
      if (outcome == Outcome::kDone) {
        deriveBlockRate(now_seconds, s);
        finish(s);
        return s;
      }
      profile_ = Profile::kUnknown;
    }
    throw ShapeError(
        "the node's answers changed between the profile detection and the collection: it "
        "matches neither the spec nor the theblock profile consistently");
  } catch (...) {
    // After any failure, forget what was learnt about the node: it may have been restarted or
    // replaced, possibly by a node with an empty chain, where light.latest_header panics.
    profile_ = Profile::kUnknown;
    chain_non_empty_ = false;
    throw;
  }
}

Profile NetworkCollector::detect(NodePort& rpc) {
  // Neither probe is light.latest_header: that one is unsafe until the profile is known.
  std::vector<Answer> r = rpc.callMany({{"net.peers"}, {"net.overlay_status"}});
  const Answer& peers = r.at(0);
  const Answer& overlay = r.at(1);
  if (peers.ok && isSpecPeers(peers.value)) return Profile::kSpec;
  if (overlay.ok && isOverlayStatus(overlay.value)) return Profile::kTheBlock;
  if (!peers.ok && !peers.methodNotFound()) throw CallFailed("net.peers", peers);
  if (!overlay.ok && !overlay.methodNotFound()) throw CallFailed("net.overlay_status", overlay);
  std::string msg = "the node matches neither the spec profile nor the theblock profile: ";
  msg += peers.ok ? "net.peers answered " + describe(peers.value) + " without a \"peers\" array"
                  : std::string("net.peers is not served (-32601)");
  msg += overlay.ok ? "; net.overlay_status answered " + describe(overlay.value) +
                          " without \"active_peers\""
                    : std::string("; net.overlay_status is not served (-32601)");
  if (peers.methodNotFound() && overlay.methodNotFound())
    msg +=
        ". Check rpc_url, and the auth token: the real node answers -32601 to an unauthorised "
        "call";
  throw ShapeError(msg);
}

NetworkCollector::Outcome NetworkCollector::collectSpec(NodePort& rpc, Snapshot& s) {
  std::vector<Answer> r = rpc.callMany({{"net.peers"}, {"net.stats"}, {"light.latest_header"}});

  const Answer& peers = r.at(0);
  if (!peers.ok) {
    if (peers.methodNotFound()) return Outcome::kRedetect;
    throw CallFailed("net.peers", peers);
  }
  if (!isSpecPeers(peers.value)) return Outcome::kRedetect;
  const Json::Array& list = peers.value["peers"].asArray();
  FieldReasons reasons;
  std::vector<Json> out;
  out.reserve(list.size());
  for (size_t i = 0; i < list.size(); ++i) out.push_back(specPeer(list[i], i, reasons));
  s.peer_field_reasons = reasons.texts(out.size());
  s.peer_count = Value::known(static_cast<double>(out.size()));
  s.peers = std::move(out);

  const Answer& stats = r.at(1);
  if (!stats.ok && !stats.methodNotFound()) throw CallFailed("net.stats", stats);
  // An answer that is no possible net.stats (an array, a number) fails the collect, as a wrong
  // type does: its figures are not "unknown", the node is talking nonsense.
  if (stats.ok && !stats.value.isObject())
    throw ShapeError("net.stats answered " + describe(stats.value) + ", not an object");
  if (!stats.ok) {
    s.tps = s.bandwidth_in = s.bandwidth_out = s.active_connections =
        Value::unknown("net.stats is not served by this node (-32601)");
  } else {
    s.tps = readNumber(stats.value, "tps", "net.stats");
    s.bandwidth_in = readNumber(stats.value, "bandwidth_in", "net.stats");
    s.bandwidth_out = readNumber(stats.value, "bandwidth_out", "net.stats");
    s.active_connections = readNumber(stats.value, "active_connections", "net.stats", true);
  }

  const Answer& header = r.at(2);
  if (!header.ok && !header.methodNotFound()) throw CallFailed("light.latest_header", header);
  if (header.ok && !header.value.isObject())
    throw ShapeError("light.latest_header answered " + describe(header.value) + ", not an object");
  if (!header.ok) {
    s.block_height = s.finality_time =
        Value::unknown("light.latest_header is not served by this node (-32601)");
  } else {
    // The spec names the height `number`; accept the real node's `height` as well.
    const char* key = header.value.contains("number") ? "number" : "height";
    s.block_height = readNumber(header.value, key, "light.latest_header", true);
    if (!s.block_height.value && !header.value.contains("number") &&
        !header.value.contains("height"))
      s.block_height = Value::unknown("light.latest_header gave no number (block height)");
    s.finality_time = readNumber(header.value, "finality_time", "light.latest_header");
  }
  s.bytes_sent_total = Value::unknown(kSpecNoBytesSent);
  return Outcome::kDone;
}

NetworkCollector::Outcome NetworkCollector::collectTheBlock(NodePort& rpc, double now,
                                                            Snapshot& s) {
  // The limit counts node list positions, so max_peers bounds the calls even when a page
  // repeats peers.
  auto pageCall = [&](int64_t offset) {
    int64_t limit = std::min<int64_t>(kPeerPageSize, options_.max_peers - offset);
    return Call{"net.peer_stats_all", Json{{"offset", offset}, {"limit", limit}}};
  };
  const bool latest_safe = chain_non_empty_;
  std::vector<Call> calls = {{"net.overlay_status"}, pageCall(0)};
  calls.push_back(latest_safe ? Call{"light.latest_header"}
                              : Call{"light.headers", Json{{"start", 0}, {"limit", 1}}});
  std::vector<Answer> r = rpc.callMany(calls);

  const Answer& overlay = r.at(0);
  if (!overlay.ok) {
    if (overlay.methodNotFound()) return Outcome::kRedetect;
    throw CallFailed("net.overlay_status", overlay);
  }
  if (!isOverlayStatus(overlay.value)) return Outcome::kRedetect;
  Value active = readNumber(overlay.value, "active_peers", "net.overlay_status", true);

  PeerPages pages;
  // Takes one page; returns the next page's offset, or nullopt when the list is complete.
  auto takePage = [&](const Call& call, const Answer& reply) -> std::optional<int64_t> {
    if (!reply.ok) {
      if (!reply.methodNotFound()) throw CallFailed("net.peer_stats_all", reply);
      pages.failed =
          "net.peer_stats_all is refused (-32601): the real node serves it to loopback clients "
          "only, or the auth token is wrong";
      return std::nullopt;
    }
    if (!reply.value.isArray()) {
      pages.failed = "net.peer_stats_all answered " + describe(reply.value) + ", not an array";
      return std::nullopt;
    }
    const Json::Array& page = reply.value.asArray();
    const int64_t offset = call.params["offset"].asInt();
    for (size_t i = 0; i < page.size(); ++i) {
      const Json& e = page[i];
      const size_t index = static_cast<size_t>(offset) + i;
      std::string label =
          e.isObject() ? peerLabel(e, "peer_id", index) : "entry #" + std::to_string(index);
      Json peer = Json::object();
      const Json& id = e["peer_id"];
      if (id.isString()) {
        // Offsets into a list that changes between pages can repeat a peer.
        if (!pages.ids.insert(id.asString()).second) continue;
        peer["id"] = id;
      } else {
        peer["id"] = nullptr;
        pages.reasons.note(
            "id", e.isObject()
                      ? "net.peer_stats_all gave " + article(id) + " for peer_id of " + label
                      : "net.peer_stats_all " + label + " is " + article(e) + ", not an object");
      }
      for (const auto& [field, why] : kTheBlockMissingPeerFields) {
        peer[field] = nullptr;
        pages.reasons.note(field, why);
      }
      const Json& score = e["metrics"]["reputation"]["score"];
      if (score.isNumber()) {
        // One scale on both profiles: the guide's 0..100 (the real node's score is 0..1).
        peer["reputation"] = std::round(score.asDouble() * 100 * 1000) / 1000;
      } else {
        peer["reputation"] = nullptr;
        pages.reasons.note("reputation", score.isNull()
                                             ? "net.peer_stats_all gave no metrics.reputation.score"
                                               " for " +
                                                   label
                                             : "net.peer_stats_all gave " + article(score) +
                                                   " for metrics.reputation.score of " + label);
      }
      Value bytes = readNumber(e["metrics"], "bytes_sent", "net.peer_stats_all metrics", true);
      if (bytes.value && id.isString()) {
        pages.bytes_sent[id.asString()] = *bytes.value;
      } else {
        if (pages.bytes_missing++ == 0)
          pages.first_bytes_problem =
              bytes.value ? label + " has no usable peer_id" : bytes.reason + " for " + label;
      }
      // Reorder into the guide's field order.
      Json ordered = Json::object();
      for (const char* f : kPeerFields) ordered[f] = peer[f];
      pages.peers.push_back(std::move(ordered));
    }
    const int64_t asked = call.params["limit"].asInt();
    if (static_cast<int64_t>(page.size()) < asked) return std::nullopt;
    if (offset + asked >= options_.max_peers) {
      pages.truncated = true;
      return std::nullopt;
    }
    return offset + asked;
  };

  // Reads a light.latest_header answer into block_height. Returns false when the agent's method
  // policy refused to send it (a connection loss since light.headers last showed a block: the
  // node may be a new process with an empty chain), so the chain must be probed again.
  auto takeLatest = [&](const Answer& reply) {
    if (!reply.ok && reply.status == kStatusRefusedUnsent) {
      chain_non_empty_ = false;
      s.block_height = Value::unknown(
          "the connection to the node was lost since light.headers last showed a block; "
          "light.latest_header waits for the next probe");
      return false;
    }
    if (!reply.ok) {
      if (!reply.methodNotFound()) throw CallFailed("light.latest_header", reply);
      s.block_height = Value::unknown("light.latest_header is not served by this node (-32601)");
    } else if (!reply.value.isObject()) {
      throw ShapeError("light.latest_header answered " + describe(reply.value) + ", not an object");
    } else {
      s.block_height = readNumber(reply.value, "height", "light.latest_header", true);
    }
    return true;
  };

  // Reads a light.headers {"start":0,"limit":1} answer; true when it showed a block.
  auto takeHeaders = [&](const Answer& headers) {
    if (!headers.ok) {
      if (!headers.methodNotFound()) throw CallFailed("light.headers", headers);
      s.block_height =
          Value::unknown(std::string("light.headers is not served (-32601); ") + kHeadersFirst);
    } else if (!headers.value.isArray()) {
      s.block_height = Value::unknown("light.headers answered " + describe(headers.value) +
                                      ", not an array; " + kHeadersFirst);
    } else if (headers.value.size() == 0) {
      s.block_height = Value::unknown(
          "the chain is empty: light.headers {\"start\":0,\"limit\":1} returned no "
          "header");
    } else if (!headers.value[0].isObject()) {
      s.block_height = Value::unknown("light.headers returned " + describe(headers.value[0]) +
                                      " instead of a header; " + kHeadersFirst);
    } else {
      chain_non_empty_ = true;
      return true;
    }
    return false;
  };

  std::optional<int64_t> next_page = takePage(calls[1], r.at(1));
  bool need_latest = false;
  if (!latest_safe) {
    need_latest = takeHeaders(r.at(2));
  } else if (!takeLatest(r.at(2))) {
    // Probe again within this cycle: one light.headers, then light.latest_header if safe.
    need_latest =
        takeHeaders(rpc.callMany({{"light.headers", Json{{"start", 0}, {"limit", 1}}}}).at(0));
  }

  // Later pages depend on the previous one; light.latest_header rides along with the first.
  while (next_page || need_latest) {
    std::vector<Call> more;
    if (next_page) more.push_back(pageCall(*next_page));
    if (need_latest) more.push_back({"light.latest_header"});
    std::vector<Answer> mr = rpc.callMany(more);
    size_t i = 0;
    if (next_page) {
      next_page = takePage(more[0], mr.at(0));
      ++i;
    }
    if (need_latest) {
      takeLatest(mr.at(i));  // refused again (another loss meanwhile): the next cycle probes
      need_latest = false;
    }
  }

  s.tps = Value::unknown(kNoTps);
  s.bandwidth_in = Value::unknown(kNoBandwidthIn);
  s.finality_time = Value::unknown(kNoFinality);

  if (!pages.failed.empty()) {
    s.peers_reason = pages.failed;
  } else {
    s.peer_field_reasons = pages.reasons.texts(pages.peers.size());
    s.peers = std::move(pages.peers);
    s.peers_truncated = pages.truncated;
  }

  // peer_count is what the peers table lists: every peer the node keeps statistics for
  // (net.peer_stats_all), when the list is complete, so the tile and the table agree.
  // active_connections is the overlay's open connections (net.overlay_status.active_peers).
  // Each stands in for the other when it is unknown.
  const bool complete = s.peers && !s.peers_truncated;
  if (active.value || complete) {
    s.peer_count = complete ? Value::known(static_cast<double>(s.peers->size())) : active;
    s.active_connections = active.value ? active : s.peer_count;
  } else {
    std::string why = active.reason + ", and the peer list is " +
                      (s.peers ? "truncated at max_peers" : "unavailable too");
    s.peer_count = s.active_connections = Value::unknown(why);
  }

  // bandwidth_out: per-peer deltas of bytes_sent over the time between samples.
  std::string bytes_problem;
  if (!s.peers) {
    bytes_problem = "no peer list: " + s.peers_reason;
  } else if (s.peers_truncated) {
    bytes_problem = "the peer list stopped at max_peers=" + std::to_string(options_.max_peers) +
                    ", so a sum over it would miss peers: raise max_peers";
  } else if (pages.bytes_missing > 0) {
    bytes_problem = pages.first_bytes_problem + " (" + std::to_string(pages.bytes_missing) +
                    " peers without a usable bytes_sent)";
  }
  if (!bytes_problem.empty()) {
    s.bytes_sent_total = s.bandwidth_out = Value::unknown(bytes_problem);
    last_bytes_time_.reset();
    last_bytes_.clear();
    return Outcome::kDone;
  }
  // Per-peer increases since the previous sample. A peer seen for the first time contributes
  // nothing (its bytes before now were not observed); a peer whose counter went backwards
  // restarted, and everything it reports now was sent since then.
  double delta = 0;
  double restarted = 0;
  std::string reset;
  if (last_bytes_time_) {
    for (const auto& [id, b] : pages.bytes_sent) {
      auto prev = last_bytes_.find(id);
      if (prev == last_bytes_.end()) continue;
      if (b < prev->second) {
        if (reset.empty()) reset = id;
        restarted += b;
        continue;
      }
      delta += b - prev->second;
    }
  }
  // The counter only ever grows: summing the listed peers' totals instead would drop whenever a
  // peer leaves, and Prometheus would read that as a reset and a spike.
  sent_observed_ += delta + restarted;
  s.bytes_sent_total = Value::known(sent_observed_);
  if (!last_bytes_time_) {
    s.bandwidth_out = Value::unknown(kTwoSamples);
  } else if (now - *last_bytes_time_ <= 0) {
    s.bandwidth_out = Value::unknown("no time elapsed since the previous sample");
  } else if (!reset.empty()) {
    s.bandwidth_out = Value::unknown("bytes_sent of peer " + reset +
                                     " went backwards (a counter reset, e.g. a node restart); "
                                     "the rate resumes with the next sample");
  } else {
    s.bandwidth_out = Value::known(delta / (now - *last_bytes_time_));
  }
  last_bytes_time_ = now;
  last_bytes_ = std::move(pages.bytes_sent);
  return Outcome::kDone;
}

void NetworkCollector::deriveBlockRate(double now, Snapshot& s) {
  if (!s.block_height.value) {
    s.block_rate = Value::unknown("block_height unknown: " + s.block_height.reason);
    s.last_block_age_seconds = Value::unknown("block_height unknown: " + s.block_height.reason);
    return;
  }
  const double h = *s.block_height.value;
  // The age of the last block, from when the agent saw the height change: within one collection
  // interval of the truth. Before the first change the agent cannot know it (the node's header
  // times are not read), and says for how long the height has not moved.
  if (!first_seen_) first_seen_ = now;
  if (last_height_ && h != last_height_->second) height_changed_at_ = now;
  if (height_changed_at_)
    s.last_block_age_seconds = Value::known(std::max(0.0, now - *height_changed_at_));
  else
    s.last_block_age_seconds = Value::unknown(
        "the height has not changed since the agent first read it " +
        numberText(std::round(now - *first_seen_)) + " s ago; known from the next block");
  if (!last_height_) {
    s.block_rate = Value::unknown(kTwoSamples);
  } else if (now - last_height_->first <= 0) {
    s.block_rate = Value::unknown("no time elapsed since the previous sample");
  } else if (h < last_height_->second) {
    s.block_rate = Value::unknown("block height went backwards (" +
                                  numberText(last_height_->second) + " -> " + numberText(h) +
                                  "): a reorganisation or a node reset; the rate resumes with "
                                  "the next sample");
  } else {
    s.block_rate = Value::known((h - last_height_->second) / (now - last_height_->first));
  }
  last_height_ = std::make_pair(now, h);
}

void NetworkCollector::finish(Snapshot& s) const {
  s.strength =
      computeStrength({s.peer_count.value, s.tps.value, s.finality_time.value}, options_.strength);
}

}  // namespace blockbuster::network
