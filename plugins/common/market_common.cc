#include "market_common.h"

#include <blockbuster/plugin_abi.h>

#include <cmath>
#include <limits>
#include <set>
#include <stdexcept>

namespace blockbuster::markets {

const char* statusName(Status s) {
  switch (s) {
    case Status::kHealthy:
      return "healthy";
    case Status::kIdle:
      return "idle";
    case Status::kUnavailable:
      break;
  }
  return "unavailable";
}

Answers answersFromRecording(const Json& recording) {
  if (!recording.isObject())
    throw std::invalid_argument("a recording is an object of method -> answer, got " +
                                recording.typeName());
  Answers out;
  for (const auto& m : recording.asObject()) {
    const Json& e = m.second;
    if (const Json* r = e.find("result")) {
      out[m.first] = Answer::result(*r);
    } else if (e["error"].isObject() && e["error"]["code"].isInt()) {
      out[m.first] = Answer::rpcError(
          e["error"]["code"].asInt(),
          e["error"]["message"].isString() ? e["error"]["message"].asString() : "");
    } else if (e["failure"].isObject() && e["failure"]["status"].isInt()) {
      out[m.first] = Answer::failure(
          static_cast<int>(e["failure"]["status"].asInt()),
          e["failure"]["message"].isString() ? e["failure"]["message"].asString() : "");
    } else {
      throw std::invalid_argument("recorded answer of " + m.first +
                                  " has none of result, error{code}, failure{status}");
    }
  }
  return out;
}

Answer normalise(Answer a) {
  if (!a.ok || !a.value.isObject()) return a;
  const Json* err = a.value.find("error");
  if (!err || err->isNull()) return a;
  int64_t code = 0;
  std::string message;
  if (err->isString()) {
    message = err->asString();
  } else if (err->isObject()) {
    if ((*err)["code"].isInt()) code = (*err)["code"].asInt();
    message = (*err)["message"].isString() ? (*err)["message"].asString() : err->dump();
  } else {
    message = err->dump();
  }
  // A code makes it an RPC error so that -33009 and friends are told apart like real ones.
  return code != 0 ? Answer::rpcError(code, message)
                   : Answer::failure(BB_ERR_RPC, "the node answered an error: " + message);
}

bool saysUnavailable(const Json& value) {
  if (!value.isObject()) return false;
  const Json& s = value["status"];
  if (!s.isString()) return false;
  return s.asString() == "unavailable" || s.asString() == "disabled";
}

std::optional<Json> objectAnswer(const Answers& answers, std::string_view method,
                                 std::string* reason) {
  auto it = answers.find(std::string(method));
  if (it == answers.end()) {
    *reason = std::string(method) + " was not called";
    return std::nullopt;
  }
  Answer a = normalise(it->second);
  if (!a.ok) {
    *reason = a.describe(method);
    return std::nullopt;
  }
  if (saysUnavailable(a.value)) {
    *reason = std::string(method) + " says the market is unavailable";
    return std::nullopt;
  }
  if (!a.value.isObject()) {
    *reason = std::string(method) + " answered a " + a.value.typeName() + ", not an object";
    return std::nullopt;
  }
  return a.value;
}

double Figure::orNaN() const noexcept {
  return value ? *value : std::numeric_limits<double>::quiet_NaN();
}

namespace {

constexpr const char* kNotCollected = "not collected";

std::string where(std::string_view source, std::string_view key) {
  std::string s(source);
  s += '.';
  s += key;
  return s;
}

// Why `v` is not a usable count, or "" when it is.
std::string countProblem(const Json& v) {
  if (v.isNull()) return "is null";
  if (!v.isNumber()) return "is a " + v.typeName() + ", not a number";
  double d = v.asDouble();
  if (!std::isfinite(d)) return "is not finite";
  if (d < 0) return "is negative (" + v.dump() + ")";
  return "";
}

}  // namespace

Figure readCount(const Json& obj, std::string_view key, std::string_view source) {
  const Json* v = obj.find(key);
  if (!v) return Figure::none(where(source, key) + " is missing from the answer");
  std::string problem = countProblem(*v);
  if (!problem.empty()) {
    Figure f = Figure::none(where(source, key) + " " + problem);
    // Null is "not known"; anything else that is no possible count (a string, a negative or
    // non-finite number) is a malformed answer: the collect fails with this reason.
    f.malformed = !v->isNull();
    return f;
  }
  return Figure::of(v->asDouble());
}

Figure readRatio(const Json& obj, std::string_view key, std::string_view source) {
  Figure f = readCount(obj, key, source);
  if (f.known() && *f.value > 1.0) {
    f = Figure::none(where(source, key) + " is " + excerpt(obj[key], 40) +
                     ", outside the ratio range 0..1");
    f.malformed = true;
  }
  return f;
}

Figure sumOf(const Json& arr, std::string_view key, std::string_view source) {
  if (!arr.isArray()) return Figure::none(std::string(source) + " is not a list");
  double sum = 0;
  size_t i = 0;
  for (const Json& e : arr.asArray()) {
    const Json* v = e.find(key);
    std::string problem = v ? countProblem(*v) : "is missing";
    if (!problem.empty()) {
      Figure f = Figure::none(std::string(source) + "[" + std::to_string(i) + "]." +
                              std::string(key) + " " + problem);
      f.malformed = v && !v->isNull();
      return f;
    }
    sum += v->asDouble();
    ++i;
  }
  return Figure::of(sum);
}

Figure countDistinct(const Json& arr, const std::vector<std::string_view>& keys,
                     std::string_view source) {
  if (!arr.isArray()) return Figure::none(std::string(source) + " is not a list");
  std::set<std::string> seen;
  size_t i = 0;
  for (const Json& e : arr.asArray()) {
    for (std::string_view key : keys) {
      const Json& v = e[key];
      if (!v.isString() || v.asString().empty())
        return Figure::none(std::string(source) + "[" + std::to_string(i) + "]." +
                            std::string(key) + " is not a non-empty string");
      seen.insert(v.asString());
    }
    ++i;
  }
  return Figure::of(static_cast<double>(seen.size()));
}

Figure governorUtilization(const Answers& answers, std::string_view market) {
  auto it = answers.find(kGovernorMethod);
  if (it == answers.end())
    return Figure::none("governor.status is not polled (plugin option governor is false)");
  Answer a = normalise(it->second);
  if (!a.ok) return Figure::none(a.describe(kGovernorMethod));
  const Json& v = a.value;
  if (saysUnavailable(v) || (v["enabled"].isBool() && !v["enabled"].asBool()))
    return Figure::none(
        "the node's governor is disabled (start the node with TB_GOVERNOR_ENABLED=1)");
  const Json& list = v["economics_prev_market_metrics"];
  if (!list.isArray())
    return Figure::none("governor.status has no economics_prev_market_metrics list");
  for (const Json& m : list.asArray()) {
    if (!m["market"].isString() || m["market"].asString() != market) continue;
    Figure ppm = readCount(m, "utilization_ppm", "governor.status.economics_prev_market_metrics");
    if (!ppm.known()) return ppm;
    // ppm of capacity: a figure above 1e6 would be more than full, which the governor never
    // reports; read it as garbage rather than clamp it into a plausible number.
    if (*ppm.value > 1e6) {
      Figure f =
          Figure::none("governor utilization_ppm for " + std::string(market) + " is above 1000000");
      f.malformed = true;
      return f;
    }
    return Figure::of(*ppm.value / 1e6);
  }
  return Figure::none("governor.status lists no economics metrics for market " +
                      std::string(market) + " yet");
}

const Figure* MarketReport::figure(std::string_view name) const {
  for (const auto& f : fields)
    if (f.first == name) return &f.second;
  for (const auto& f : extras)
    if (f.first == name) return &f.second;
  return nullptr;
}

Json MarketReport::body() const {
  Json b = Json::object();
  b["status"] = statusName(status);
  Json unavailable = Json::object();
  auto put = [&](const std::pair<std::string, Figure>& f) {
    if (f.second.known()) {
      b[f.first] = *f.second.value;
    } else {
      b[f.first] = nullptr;
      unavailable[f.first] = f.second.reason.empty() ? "unknown" : f.second.reason;
    }
  };
  for (const auto& f : fields) put(f);
  for (const auto& f : extras) put(f);
  for (const auto& m : info.isObject() ? info.asObject() : Json::Object{}) b[m.first] = m.second;
  b["profile"] = profile == Profile::kUnknown ? Json() : Json(profileName(profile));
  b["unavailable"] = unavailable;
  if (status == Status::kUnavailable) b["error"] = error.empty() ? "unavailable" : error;
  return b;
}

void MarketReport::clearFigures(const std::string& reason) {
  // A figure already unknown for a reason of its own keeps it: that reason is more precise.
  for (auto* list : {&fields, &extras})
    for (auto& f : *list)
      if (f.second.known() || f.second.reason.empty() || f.second.reason == kNotCollected)
        f.second = Figure::none(reason);
}

void MarketReport::markUnavailable(const std::string& why) {
  status = Status::kUnavailable;
  error = why;
  clearFigures(why);
}

void MarketReport::set(std::string_view name, Figure f) {
  if (f.malformed && malformed.empty()) malformed = f.reason;
  for (auto* list : {&fields, &extras})
    for (auto& entry : *list)
      if (entry.first == name) {
        entry.second = std::move(f);
        return;
      }
  throw std::logic_error("market report has no figure named " + std::string(name));
}

double valueOrNaN(const MarketReport& r, std::string_view name) {
  const Figure* f = r.figure(name);
  return f ? f->orNaN() : std::numeric_limits<double>::quiet_NaN();
}

MarketReport makeReport(std::string market, const std::vector<std::string>& fields,
                        const std::vector<std::string>& extras) {
  MarketReport r;
  r.market = std::move(market);
  for (const auto& f : fields) r.fields.emplace_back(f, Figure::none(kNotCollected));
  for (const auto& f : extras) r.extras.emplace_back(f, Figure::none(kNotCollected));
  return r;
}

std::string excerpt(const Json& v, size_t max) {
  std::string text = v.dump();
  if (text.size() > max) text = text.substr(0, max) + "...";
  return text;
}

Status decideStatus(const std::vector<const Figure*>& activity, bool moved, std::string* error) {
  bool anyKnown = false;
  for (const Figure* f : activity) {
    if (!f || !f->known()) continue;
    anyKnown = true;
    if (*f->value > 0) return Status::kHealthy;
  }
  if (moved) return Status::kHealthy;
  if (anyKnown) return Status::kIdle;
  if (error) {
    std::string why;
    for (const Figure* f : activity)
      if (f && !f->reason.empty()) why += (why.empty() ? "" : "; ") + f->reason;
    *error = "the node answered, but none of the figures that decide the status could be read" +
             (why.empty() ? std::string() : ": " + why);
  }
  return Status::kUnavailable;
}

bool changed(const std::optional<double>& before, const Figure& now) {
  return before && now.known() && *before != *now.value;
}

bool rose(const std::optional<double>& before, const Figure& now) {
  return before && now.known() && *now.value > *before;
}

void addStatusMetrics(MarketReport& r) {
  const std::string& m = r.market;
  r.metrics.push_back(
      {"theblock_market_up",
       "1 when the node reports the market (healthy or idle), 0 when it is unavailable.",
       r.status == Status::kUnavailable ? 0.0 : 1.0,
       {{"market", m}}});
  for (Status s : {Status::kHealthy, Status::kIdle, Status::kUnavailable})
    r.metrics.push_back({"theblock_market_status",
                         "1 for the market's current status (healthy, idle, unavailable), 0 "
                         "for the others.",
                         r.status == s ? 1.0 : 0.0,
                         {{"market", m}, {"status", statusName(s)}}});
}

}  // namespace blockbuster::markets
