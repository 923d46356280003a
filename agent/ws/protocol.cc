#include "ws/protocol.h"

#include <blockbuster/json.h>

#include <chrono>
#include <cmath>

namespace bb::ws {

using blockbuster::Json;

namespace {

bool volatileKey(std::string_view key) {
  constexpr std::string_view kSuffix = "_age_seconds";
  return key == "age_seconds" || key == "uptime_seconds" ||
         (key.size() > kSuffix.size() && key.substr(key.size() - kSuffix.size()) == kSuffix);
}

// Hashes a JSON text as it reads it, leaving out the volatile members, without building it: the
// hub fingerprints every stream on every pass, and a tree of the history or receipts stream was
// the largest allocation of an idle agent (issue 18: about 2 MiB at its peak). Whitespace outside
// strings is not hashed; members and elements are hashed with a separator, so leaving a member
// out cannot make two different bodies alike.
class Fingerprinter {
 public:
  explicit Fingerprinter(std::string_view text) : s_(text) {}

  bool run() {
    if (!value(0)) return false;
    space();
    return i_ == s_.size();
  }

  std::string digest() const {
    static const char* kHex = "0123456789abcdef";
    std::string out;
    for (uint64_t h : {a_, b_})
      for (int shift = 60; shift >= 0; shift -= 4) out += kHex[(h >> shift) & 0xf];
    return out;
  }

 private:
  static constexpr int kMaxDepth = 128;

  void add(char c) {
    auto u = static_cast<unsigned char>(c);
    a_ = (a_ ^ u) * 0x100000001b3ULL;  // FNV-1a
    b_ = (b_ + u + 1) * 0x9e3779b97f4a7c15ULL;
    b_ ^= b_ >> 29;
  }
  void add(std::string_view v) {
    for (char c : v) add(c);
  }
  void space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\n' || s_[i_] == '\r' || s_[i_] == '\t'))
      ++i_;
  }
  // The raw text of a string, quotes included; escapes are kept as written.
  bool string(std::string_view& out) {
    size_t start = i_++;
    while (i_ < s_.size() && s_[i_] != '"') i_ += s_[i_] == '\\' ? 2 : 1;
    if (i_ >= s_.size()) return false;
    out = s_.substr(start, ++i_ - start);
    return true;
  }
  bool scalar(bool hash) {
    size_t start = i_;
    while (i_ < s_.size() && std::string_view(",}] \n\r\t").find(s_[i_]) == std::string_view::npos)
      ++i_;
    if (i_ == start) return false;
    if (hash) add(s_.substr(start, i_ - start));
    return true;
  }
  // hash=false skips a value: a volatile member's.
  bool value(int depth, bool hash = true) {
    space();
    if (i_ >= s_.size() || depth > kMaxDepth) return false;
    char c = s_[i_];
    if (c == '"') {
      std::string_view v;
      if (!string(v)) return false;
      if (hash) add(v);
      return true;
    }
    if (c != '{' && c != '[') return scalar(hash);
    bool object = c == '{';
    char close = object ? '}' : ']';
    if (hash) add(c);
    ++i_;
    space();
    if (i_ < s_.size() && s_[i_] == close) {
      ++i_;
      if (hash) add(close);
      return true;
    }
    for (;;) {
      if (object) {
        space();
        std::string_view key;
        if (i_ >= s_.size() || s_[i_] != '"' || !string(key)) return false;
        space();
        if (i_ >= s_.size() || s_[i_] != ':') return false;
        ++i_;
        std::string_view bare = key.substr(1, key.size() - 2);
        bool keep = hash && !volatileKey(bare) && !(depth == 0 && bare == "timestamp");
        if (keep) {
          add(key);
          add(':');
        }
        if (!value(depth + 1, keep)) return false;
        if (keep) add(',');
      } else {
        if (!value(depth + 1, hash)) return false;
        if (hash) add(',');
      }
      space();
      if (i_ >= s_.size()) return false;
      if (s_[i_] == close) {
        ++i_;
        if (hash) add(close);
        return true;
      }
      if (s_[i_] != ',') return false;
      ++i_;
    }
  }

  std::string_view s_;
  size_t i_ = 0;
  uint64_t a_ = 0xcbf29ce484222325ULL;
  uint64_t b_ = 0x84222325cbf29ce4ULL;
};

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
  Fingerprinter f(body);
  return f.run() ? f.digest() : "raw:" + body;
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
