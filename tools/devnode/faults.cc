#include "faults.h"

namespace devnode {

Json Faults::toJson() const {
  Json latency = Json::object();
  for (const auto& [method, ms] : latency_ms) latency[method] = ms;
  Json meths = Json::array();
  for (const auto& m : methods) meths.push_back(m);
  Json removed = Json::array();
  for (const auto& m : remove_methods) removed.push_back(m);
  Json out{{"latency_ms", latency},
           {"error_rate", error_rate},
           {"mode", mode.empty() ? Json() : Json(mode)},
           {"mode_rate", mode_rate},
           {"methods", meths},
           {"remove_methods", removed},
           {"auth_token", auth_token ? Json(*auth_token) : Json()},
           {"oversized_bytes", oversized_bytes},
           {"hang_max_seconds", hang_max_seconds}};
  return out;
}

namespace {

std::string readStringSet(const Json& v, const char* key, std::set<std::string>& out) {
  if (v.isNull()) {
    out.clear();
    return "";
  }
  if (v.isString()) {
    out = {v.asString()};
    return "";
  }
  if (!v.isArray()) return std::string(key) + " must be an array of method names";
  std::set<std::string> s;
  for (const auto& e : v.asArray()) {
    if (!e.isString()) return std::string(key) + " must be an array of method names";
    s.insert(e.asString());
  }
  out = std::move(s);
  return "";
}

std::string readFraction(const Json& v, const char* key, double& out) {
  if (!v.isNumber() || v.asDouble() < 0 || v.asDouble() > 1)
    return std::string(key) + " must be a number between 0 and 1";
  out = v.asDouble();
  return "";
}

}  // namespace

std::string Faults::apply(const Json& patch, int64_t* down_seconds_out) {
  if (!patch.isObject()) return "the body must be a JSON object of faults";
  Faults next = *this;
  for (const auto& [key, v] : patch.asObject()) {
    std::string err;
    if (key == "latency_ms") {
      if (v.isNull()) {
        next.latency_ms.clear();
      } else if (v.isNumber()) {
        if (v.asInt() < 0) return "latency_ms must be >= 0";
        next.latency_ms = {{"*", v.asInt()}};
      } else if (v.isObject()) {
        for (const auto& [m, ms] : v.asObject()) {
          if (!ms.isNumber() || ms.asInt() < 0)
            return "latency_ms." + m + " must be a number of milliseconds >= 0";
          if (ms.asInt() == 0)
            next.latency_ms.erase(m);
          else
            next.latency_ms[m] = ms.asInt();
        }
      } else {
        return "latency_ms must be a number (all methods) or an object {method: ms}";
      }
    } else if (key == "error_rate") {
      err = readFraction(v, "error_rate", next.error_rate);
    } else if (key == "mode_rate") {
      err = readFraction(v, "mode_rate", next.mode_rate);
    } else if (key == "mode") {
      std::string m = v.isNull() ? "" : (v.isString() ? v.asString() : "?");
      if (m == "none") m.clear();
      if (!validMode(m))
        return "mode must be one of http500, garbage, truncated, oversized, empty, hang, none";
      next.mode = m;
    } else if (key == "methods") {
      err = readStringSet(v, "methods", next.methods);
    } else if (key == "remove_methods") {
      err = readStringSet(v, "remove_methods", next.remove_methods);
    } else if (key == "auth_token") {
      if (v.isNull())
        next.auth_token.reset();
      else if (v.isString())
        next.auth_token = v.asString();
      else
        return "auth_token must be a string (\"\" for none) or null (back to --auth-token)";
    } else if (key == "oversized_bytes") {
      if (!v.isNumber() || v.asInt() < 1 || v.asInt() > (1LL << 30))
        return "oversized_bytes must be between 1 and 1073741824";
      next.oversized_bytes = v.asInt();
    } else if (key == "hang_max_seconds") {
      if (!v.isNumber() || v.asInt() < 1) return "hang_max_seconds must be >= 1";
      next.hang_max_seconds = v.asInt();
    } else if (key == "down_seconds") {
      if (!v.isNumber() || v.asInt() < 1 || v.asInt() > 3600)
        return "down_seconds must be between 1 and 3600";
      if (down_seconds_out) *down_seconds_out = v.asInt();
    } else {
      return "unknown fault '" + key +
             "'; known: latency_ms, error_rate, mode, mode_rate, methods, remove_methods, "
             "auth_token, oversized_bytes, hang_max_seconds, down_seconds";
    }
    if (!err.empty()) return err;
  }
  *this = std::move(next);
  return "";
}

}  // namespace devnode
