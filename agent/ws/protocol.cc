#include "ws/protocol.h"

#include <blockbuster/json.h>

#include <chrono>
#include <cmath>

namespace bb::ws {

using blockbuster::Json;

namespace {

bool volatileKey(const std::string& key) {
  static const std::string kSuffix = "_age_seconds";
  return key == "age_seconds" || key == "uptime_seconds" ||
         (key.size() > kSuffix.size() &&
          key.compare(key.size() - kSuffix.size(), kSuffix.size(), kSuffix) == 0);
}

Json withoutVolatile(const Json& v, bool top) {
  if (v.isObject()) {
    Json out = Json::object();
    for (const auto& kv : v.asObject()) {
      if (volatileKey(kv.first) || (top && kv.first == "timestamp")) continue;
      out[kv.first] = withoutVolatile(kv.second, false);
    }
    return out;
  }
  if (v.isArray()) {
    Json out = Json::array();
    for (const auto& item : v.asArray()) out.push_back(withoutVolatile(item, false));
    return out;
  }
  return v;
}

void appendTail(std::string& out, int64_t timestamp_ms) {
  out += ",\"timestamp\":";
  out += std::to_string(timestamp_ms);
  out += '}';
}

}  // namespace

int streamIndex(std::string_view name) { return api::streamIndexOf(name); }

int64_t unixMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string contentFingerprint(const std::string& body) {
  try {
    return withoutVolatile(Json::parse(body), true).dump();
  } catch (const blockbuster::JsonError&) {
    return body;
  }
}

std::string healthFingerprint(const std::string& health_body) {
  Json h;
  try {
    h = Json::parse(health_body);
  } catch (const blockbuster::JsonError&) {
    return health_body;
  }
  Json plugins = Json::object();
  if (h["plugins"].isObject())
    for (const auto& kv : h["plugins"].asObject()) plugins[kv.first] = kv.second["state"];
  // A change of cause, not of wording: each reason by what it is about (the text before its
  // first ':'), so a failing call's changing message does not push the stream again.
  Json causes = Json::array();
  if (h["reasons"].isArray())
    for (const auto& r : h["reasons"].asArray())
      if (r.isString()) causes.push_back(r.asString().substr(0, r.asString().find(':')));
  Json key{{"status", h["status"]},
           {"reasons", causes},
           {"reachable", h["node"]["reachable"]},
           {"banned", h["node"]["banned"]},
           {"plugins", plugins}};
  return key.dump();
}

std::string dataMessage(std::string_view type, std::string_view stream,
                        const std::string& data_json, uint64_t seq, int64_t timestamp_ms) {
  std::string out;
  out.reserve(data_json.size() + 96);
  out += "{\"type\":";
  Json::appendString(out, type);
  out += ",\"stream\":";
  Json::appendString(out, stream);
  out += ",\"data\":";
  out += data_json;
  out += ",\"seq\":";
  out += std::to_string(seq);
  appendTail(out, timestamp_ms);
  return out;
}

std::string controlMessage(std::string_view type, std::string_view stream,
                           const std::string& data_json, int64_t timestamp_ms) {
  std::string out = "{\"type\":";
  Json::appendString(out, type);
  out += ",\"stream\":";
  if (stream.empty())
    out += "null";
  else
    Json::appendString(out, stream);
  out += ",\"data\":";
  out += data_json.empty() ? "null" : data_json;
  out += ",\"seq\":null";
  appendTail(out, timestamp_ms);
  return out;
}

std::string featureMessage(const std::vector<std::string>& names, const std::vector<double>& values,
                           std::optional<double> feature_lag_seconds, int64_t timestamp_ms) {
  Json n = Json::array();
  Json d = Json::array();
  for (const auto& name : names) n.push_back(name);
  for (double v : values) d.push_back(std::isfinite(v) ? Json(v) : Json());
  Json lag;
  if (feature_lag_seconds) lag = std::round(*feature_lag_seconds * 1000) / 1000;
  Json body{{"topic", "features"},
            {"names", n},
            {"data", d},
            {"feature_lag_seconds", lag},
            {"timestamp", timestamp_ms}};
  return body.dump();
}

ClientRequest parseClientRequest(std::string_view text, bool allow_streams) {
  ClientRequest r;
  Json msg;
  try {
    msg = Json::parse(text);
  } catch (const blockbuster::JsonError& e) {
    r.code = "bad_json";
    r.error = std::string("the message is not valid JSON (") + e.what() +
              "); send e.g. {\"type\":\"ping\"}";
    return r;
  }
  if (!msg.isObject() || !msg["type"].isString()) {
    r.code = "bad_request";
    r.error = "a message must be a JSON object with a string \"type\"";
    return r;
  }
  const std::string& type = msg["type"].asString();
  if (type == "ping") {
    r.kind = ClientRequest::Kind::kPing;
    return r;
  }
  std::string allowed = allow_streams ? "subscribe, unsubscribe or ping" : "ping";
  if (!allow_streams || (type != "subscribe" && type != "unsubscribe")) {
    r.code = "unknown_type";
    r.error = "unknown message type '" + type + "'; use " + allowed;
    return r;
  }
  std::string names;
  for (const char* s : kStreams) names += (names.empty() ? "" : ", ") + std::string(s);
  if (!msg["stream"].isString()) {
    r.code = "bad_request";
    r.error = type + " needs a string \"stream\": one of " + names;
    return r;
  }
  r.stream = streamIndex(msg["stream"].asString());
  if (r.stream < 0) {
    r.code = "unknown_stream";
    r.error = "unknown stream '" + msg["stream"].asString() + "'; streams: " + names;
    return r;
  }
  r.kind =
      type == "subscribe" ? ClientRequest::Kind::kSubscribe : ClientRequest::Kind::kUnsubscribe;
  return r;
}

}  // namespace bb::ws
