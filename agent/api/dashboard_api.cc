#include "api/dashboard_api.h"

#include <blockbuster/json.h>

#include <cmath>
#include <ctime>
#include <map>
#include <set>

#include "rpc/json_text.h"
#include "util/log.h"

namespace bb {

using blockbuster::Json;
using Clock = std::chrono::steady_clock;

namespace {

// The guide's figures of each market of /theblock/markets/health, null while the market cannot
// be read, by the plugin of its section (the API table's markets row).
const std::vector<const char*>& marketFields(std::string_view market) {
  static const std::map<std::string_view, std::vector<const char*>> kFields{
      {"compute", {"active_jobs", "total_providers", "avg_utilization", "total_revenue"}},
      {"storage", {"total_stored", "total_providers", "avg_price", "capacity_used"}},
      {"energy", {"total_credits", "avg_price", "active_traders", "trading_volume"}},
      {"ads", {"active_campaigns", "total_impressions", "total_revenue", "avg_cpm"}},
  };
  static const std::vector<const char*> kNone;
  auto it = kFields.find(market);
  return it == kFields.end() ? kNone : it->second;
}

// The market sections: the API table's markets row.
const api::Endpoint& marketsRow() { return *api::byComposer(api::Composer::kMarketsHealth); }

Json round3(double v) { return Json(std::round(v * 1000) / 1000); }

std::string pluginOf(const std::string& section) { return std::string(api::pluginOf(section)); }

QueryParams queryOf(const char* raw) {
  QueryParams q;
  parseQuery(raw ? raw : "", q);
  return q;
}

}  // namespace

DashboardApi::DashboardApi(ApiContext context) : ctx_(std::move(context)) {}

std::string DashboardApi::overallStatus(const std::vector<std::string>& statuses) {
  // docs/markets.md, "Status rules": idle markets (answering, no activity) never degrade the
  // whole; a market that cannot be read does; a market whose data is too old to judge makes
  // the whole unknown.
  int healthy = 0, idle = 0, unknown = 0, unavailable = 0;
  for (const auto& s : statuses) {
    if (s == "healthy")
      ++healthy;
    else if (s == "idle")
      ++idle;
    else if (s == "unknown")
      ++unknown;
    else
      ++unavailable;
  }
  const int total = static_cast<int>(statuses.size());
  if (unknown > 0) return "unknown";
  if (total == 0 || unavailable == total) return "down";
  if (unavailable > 0) return "degraded";
  if (healthy > 0) return "healthy";
  return "idle";
}

std::vector<PluginFreshness> DashboardApi::freshness() const {
  const auto now = Clock::now();
  std::map<std::string, PluginFreshness> by_plugin;
  for (const SectionPtr& s : ctx_.store->all()) {
    if (!s->has_data) continue;
    auto [it, fresh] = by_plugin.try_emplace(s->plugin);
    PluginFreshness& f = it->second;
    const double age = s->ageSeconds(now);
    if (fresh) {
      f.plugin = s->plugin;
      f.expired = true;
    }
    if (!f.age_seconds || age < *f.age_seconds) f.age_seconds = age;
    if (!s->isExpired(now)) f.expired = false;
  }
  std::vector<PluginFreshness> out;
  for (auto& kv : by_plugin) out.push_back(std::move(kv.second));
  return out;
}

HttpResponse DashboardApi::section(const std::string& name) const {
  SectionPtr s = ctx_.store->get(name);
  if (!s || !s->has_data) {
    std::string plugin = pluginOf(name);
    std::string why;
    bool loaded = false;
    for (const auto& st : ctx_.plugins->statuses()) {
      if (st.name != plugin) continue;
      loaded = true;
      why = st.last_error.empty() ? "its first collection has not finished yet"
                                  : "its last collection failed: " + st.last_error;
    }
    if (!loaded) why = "the plugin is not loaded (disabled, missing, or refused at start)";
    if (s && !s->error.empty()) why = s->error;
    auto r =
        HttpResponse::error(503, "no_data", "no data yet from plugin '" + plugin + "': " + why);
    r.headers.emplace_back("Retry-After", "2");
    return r;
  }
  return HttpResponse::json(SnapshotStore::renderBody(*s, Clock::now()));
}

std::optional<std::string> DashboardApi::ComposedCache::get(uint64_t version,
                                                            Clock::time_point now) {
  std::shared_ptr<const std::string> body;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!body_ || version_ != version || now - built_ >= kComposedMaxAge) return std::nullopt;
    body = body_;
  }
  return *body;  // copied outside the lock: the other loop may be reading it too
}

void DashboardApi::ComposedCache::put(uint64_t version, Clock::time_point built, std::string body) {
  auto shared = std::make_shared<const std::string>(std::move(body));
  std::lock_guard<std::mutex> lock(mutex_);
  version_ = version;
  built_ = built;
  body_.swap(shared);  // the older body is freed outside the lock
}

std::string DashboardApi::marketsHealth() const {
  // Composing the four markets parses and re-serializes four bodies: under load, build it at
  // most once per store version and kComposedMaxAge.
  const auto now = Clock::now();
  const uint64_t version = ctx_.store->version();  // before reading: a publish meanwhile rebuilds
  if (auto cached = markets_cache_.get(version, now)) return std::move(*cached);
  std::string body = composeMarketsHealth(now);
  markets_cache_.put(version, now, body);
  return body;
}

std::string DashboardApi::composeMarketsHealth(std::chrono::steady_clock::time_point now) const {
  Json markets = Json::object();
  std::vector<std::string> statuses;
  double oldest = 0;
  bool any_stale = false;
  std::string stale_reason;  // the first market too old to judge, and why: one cause, once
  for (const char* section : marketsRow().sections) {
    if (!section) break;
    const std::string key = pluginOf(section);
    SectionPtr s = ctx_.store->get(section);
    Json market;
    if (s && s->has_data) {
      try {
        market = Json::parse(SnapshotStore::renderBody(*s, now));
      } catch (const blockbuster::JsonError&) {
        market = Json::object();
      }
      oldest = std::max(oldest, s->ageSeconds(now));
      if (s->isStale(now)) any_stale = true;
      const bool expired = s->isExpired(now);
      market = [&] {
        // The guide's per-market object has no timestamp of its own: the body's carries it.
        Json out = Json::object();
        for (const auto& kv : market.asObject())
          if (kv.first != "timestamp") out[kv.first] = kv.second;
        return out;
      }();
      if (!market["status"].isString()) market["status"] = "unavailable";
      if (expired) {
        // Too old to judge: whatever it said then is not a status now (docs/markets.md).
        market["status"] = "unknown";
        if (stale_reason.empty())
          // No figure of time in the text (age_seconds says it): the stream pushes a change
          // of cause, not a ticking clock.
          stale_reason = key + " market: no fresh data (" +
                         (market["stale_reason"].isString() ? market["stale_reason"].asString()
                                                            : std::string("no refresh")) +
                         ")";
      }
    } else {
      market = Json::object();
      market["status"] = "unavailable";
      for (const char* f : marketFields(key)) market[f] = nullptr;
      market["error"] = s && !s->error.empty() ? s->error : "no data from plugin '" + key + "' yet";
      any_stale = true;
    }
    statuses.push_back(market["status"].asString());
    markets[key] = market;
  }
  int healthy = 0;
  for (const auto& s : statuses) healthy += s == "healthy";
  Json body{{"overall_status", overallStatus(statuses)},
            {"markets", markets},
            {"healthy_markets", healthy},
            {"total_markets", static_cast<int>(statuses.size())},
            {"timestamp", static_cast<int64_t>(std::time(nullptr))},
            {"age_seconds", round3(oldest)},
            {"stale", any_stale}};
  if (!stale_reason.empty()) body["stale_reason"] = stale_reason;
  return body.dump();
}

std::string DashboardApi::health() const {
  auto now = Clock::now();
  Json reasons = Json::array();
  NodeState node = ctx_.node->state();
  // One judgement of the node, one cause per outage: while the node is unreachable, plugins
  // failing for want of it are that same cause and are not listed again.
  if (!node.reachable) {
    reasons.push_back(node.ever_answered ? "node unreachable: " + node.last_error
                      : node.last_error.empty()
                          ? "node not contacted yet"
                          : "node unreachable since start: " + node.last_error);
  }
  if (node.banned) reasons.push_back("node rate-limited the agent; waiting out the ban");

  Json plugins = Json::object();
  std::set<std::string> ok_plugins;
  for (const auto& st : ctx_.plugins->statuses()) {
    if (st.state != "ok" && !(st.state == "failing" && (!node.reachable || node.banned)))
      reasons.push_back("plugin " + st.name + " is " + st.state +
                        (st.last_error.empty() ? "" : ": " + st.last_error));
    else if (st.state == "ok")
      ok_plugins.insert(st.name);
    plugins[st.name] =
        Json{{"state", st.state},
             {"version", st.version},
             {"interval_ms", st.interval_ms},
             {"last_success_age_seconds",
              st.last_success_age_seconds ? round3(*st.last_success_age_seconds) : Json()},
             {"last_duration_seconds",
              st.last_duration_seconds ? round3(*st.last_duration_seconds) : Json()},
             {"consecutive_failures", st.consecutive_failures},
             {"collections", st.collections},
             {"failures", st.failures},
             {"skipped_runs", st.skipped},
             {"last_error", st.last_error.empty() ? Json() : Json(st.last_error)},
             {"isolation", st.isolation}};
    if (st.isolation == "process") {
      Json& p = plugins[st.name];
      p["pid"] = st.pid ? Json(st.pid) : Json();
      p["process_restarts"] = st.process_restarts;
      p["last_exit"] = st.last_exit.empty() ? Json() : Json(st.last_exit);
    }
  }
  for (const auto& d : ctx_.plugins->disabled()) plugins[d] = Json{{"state", "disabled"}};
  // A market the node answered but that cannot be read (unavailable) is a reason, in its
  // plugin's own words, unless its plugin's failure already says so or the node is down.
  if (node.reachable && !node.banned) {
    try {
      const Json markets = Json::parse(marketsHealth());
      for (const char* section : marketsRow().sections) {
        if (!section) break;
        const std::string key = pluginOf(section);
        const Json& body = markets["markets"][key];
        if (!ok_plugins.count(key) || !body.isObject()) continue;
        if (body["status"].isString() && body["status"].asString() == "unavailable")
          reasons.push_back("market " + key + " is unavailable: " +
                            (body["error"].isString() ? body["error"].asString()
                                                      : std::string("no reason given")));
      }
    } catch (const blockbuster::JsonError&) {
    }
  }
  Json load_errors = Json::array();
  for (const auto& e : ctx_.plugins->loadErrors()) {
    load_errors.push_back(e);
    reasons.push_back("plugin file refused: " + e);
  }

  Json simple_db;
  if (SectionPtr store = ctx_.store->get(api::kStoreSection); store && store->has_data) {
    try {
      simple_db = Json::parse(SnapshotStore::renderBody(*store, now));
    } catch (const blockbuster::JsonError&) {
    }
  }
  if (simple_db.isNull())
    simple_db = Json{
        {"backend", nullptr},
        {"status", "unavailable"},
        {"reason", "the " + pluginOf(api::kStoreSection) + " plugin has not reported its store"}};

  auto features = ctx_.features->snapshot();
  Json feature_lag;
  if (features.version > 0)
    feature_lag = round3(std::chrono::duration<double>(now - features.updated).count());

  uint64_t error_total = 0;
  Json recent = Json::array();
  for (const auto& e : recentErrors(10, &error_total))
    recent.push_back(Json{{"timestamp", e.unix_seconds},
                          {"level", toString(e.level)},
                          {"component", e.component},
                          {"message", e.message}});

  Json body{
      {"status", reasons.size() == 0 ? "ok" : "degraded"},
      {"reasons", reasons},
      {"version", ctx_.version},
      {"uptime_seconds",
       static_cast<int64_t>(std::chrono::duration<double>(now - ctx_.started).count())},
      {"node", Json{{"rpc_url", redact(ctx_.rpc_url)},
                    {"reachable", node.reachable},
                    {"banned", node.banned},
                    {"last_answer_age_seconds",
                     node.last_answer_age_seconds ? round3(*node.last_answer_age_seconds) : Json()},
                    {"last_error", node.last_error.empty() ? Json() : Json(node.last_error)},
                    {"outage_seconds", node.outage_seconds ? round3(*node.outage_seconds) : Json()},
                    {"failed_calls_in_outage", node.failed_calls}}},
      {"plugins", plugins},
      {"plugin_load_errors", load_errors},
      {"simple_db", simple_db},
      {"feature_lag_seconds", feature_lag},
      {"recent_errors", Json{{"total", error_total}, {"recent", recent}}},
      {"timestamp", static_cast<int64_t>(std::time(nullptr))}};
  return body.dump();
}

std::optional<PluginRoutes::Result> DashboardApi::callPluginRoute(const api::Endpoint& e,
                                                                  bool may_block) const {
  if (!ctx_.plugin_routes->has(e.path)) return std::nullopt;
  return ctx_.plugin_routes->call(e.path, queryOf(e.stream_query), may_block);
}

std::optional<std::string> DashboardApi::streamBody(const api::Endpoint& e) const {
  switch (e.composer) {
    case api::Composer::kSection: {
      HttpResponse r = section(e.sections[0]);
      if (r.status != 200) return std::nullopt;
      return std::move(r.body);
    }
    case api::Composer::kMarketsHealth:
      return marketsHealth();
    case api::Composer::kHealth:
      return health();
    case api::Composer::kPluginRoute: {
      auto r = callPluginRoute(e, true);
      if (!r || r->status != 200) return std::nullopt;
      return std::move(r->body);
    }
    case api::Composer::kHistory:
      return history_source_ ? history_source_() : std::nullopt;
    default:
      return std::nullopt;  // not streamed
  }
}

std::optional<std::string> DashboardApi::dashboard(bool may_block) const {
  const auto now = Clock::now();
  const uint64_t version = ctx_.store->version();  // before reading: a publish meanwhile rebuilds
  if (auto cached = dashboard_cache_.get(version, now)) return cached;
  std::optional<std::string> body = composeDashboard(may_block);
  if (body) dashboard_cache_.put(version, now, *body);
  return body;
}

std::optional<std::string> DashboardApi::composeDashboard(bool may_block) const {
  // Every streamed row's REST body under its stream's name, but the history (its own request),
  // spliced as text: each is one JSON value already (the sections were checked when published,
  // the composed bodies are dumped here); a plugin route's answer is checked, null if it is not.
  std::string out = "{";
  auto add = [&out](const char* key, std::string_view body) {
    if (out.size() > 1) out += ',';
    Json::appendString(out, key);
    out += ':';
    out += body;
  };
  for (const auto& e : api::kEndpoints) {
    if (!e.stream) continue;
    switch (e.composer) {
      case api::Composer::kSection:
        add(e.stream, section(e.sections[0]).body);
        break;
      case api::Composer::kMarketsHealth:
        add(e.stream, marketsHealth());
        break;
      case api::Composer::kHealth:
        add(e.stream, health());
        break;
      case api::Composer::kPluginRoute:
        if (auto r = callPluginRoute(e, may_block)) {
          if (r->deferred()) return std::nullopt;
          const std::string_view body = jsontext::trim(r->body);
          add(e.stream, jsontext::valid(body) ? body : std::string_view("null"));
        } else {
          add(e.stream, Json{{"error", Json{{"code", "no_data"},
                                            {"message", "the " + std::string(api::pluginOf(e)) +
                                                            " plugin is not loaded"}}}}
                            .dump());
        }
        break;
      default:
        break;
    }
  }
  add("timestamp", std::to_string(static_cast<int64_t>(std::time(nullptr))));
  out += '}';
  return out;
}

bool DashboardApi::mayBlock(const HttpRequest& req) const {
  const api::Endpoint* e = api::byPath(req.path);
  if (e && e->offload) return true;
  // The dashboard embeds every plugin route of the table.
  if (e && e->composer == api::Composer::kDashboard) {
    for (const auto& row : api::kEndpoints)
      if (row.composer == api::Composer::kPluginRoute && ctx_.plugin_routes->blocking(row.path))
        return true;
    return false;
  }
  return ctx_.plugin_routes->blocking(req.path);
}

HttpResponse DashboardApi::pluginSection(const HttpRequest& req) const {
  // /plugins/<plugin>/<section>: any published section, for third-party plugins.
  const std::string prefix = "/plugins/";
  std::string rest = req.path.substr(prefix.size());
  auto slash = rest.find('/');
  if (slash == std::string::npos || slash == 0 || slash + 1 >= rest.size())
    return HttpResponse::error(404, "not_found",
                               "use /plugins/<plugin>/<section>; see /plugins for the list");
  // 503 says "this exists, its data is not there yet": only for a plugin that is loaded. An
  // unknown plugin (a typo, a scanner's "../../etc/passwd") is 404, as any unknown path is.
  const std::string plugin = rest.substr(0, slash);
  bool known = false;
  for (const auto& info : ctx_.plugins->available()) known = known || info.name == plugin;
  for (const auto& name : ctx_.plugins->disabled()) known = known || name == plugin;
  if (!known)
    return HttpResponse::error(
        404, "not_found",
        "no plugin named '" + logValue(plugin, 64) + "' is loaded; see /plugins for the list");
  return section(plugin + "." + rest.substr(slash + 1));
}

HttpResponse DashboardApi::pluginList() const {
  Json list = Json::array();
  for (const auto& info : ctx_.plugins->available()) {
    Json sections = Json::array();
    for (const auto& s : ctx_.store->all())
      if (s->plugin == info.name)
        sections.push_back("/plugins/" + info.name + "/" + s->name.substr(info.name.size() + 1));
    list.push_back(
        Json{{"name", info.name},
             {"version", info.version},
             {"description", info.description},
             {"abi", std::to_string(info.abi_major) + "." + std::to_string(info.abi_minor)},
             {"sections", sections}});
  }
  return HttpResponse::json(Json{{"plugins", list}}.dump());
}

void DashboardApi::install(Router& router) {
  for (const auto& e : api::kEndpoints) {
    switch (e.composer) {
      case api::Composer::kSection: {
        std::string name = e.sections[0];
        router.get(e.path, [this, name](const HttpRequest&) { return section(name); });
        break;
      }
      case api::Composer::kMarketsHealth:
        router.get(e.path,
                   [this](const HttpRequest&) { return HttpResponse::json(marketsHealth()); });
        break;
      case api::Composer::kHealth:
        router.get(e.path, [this](const HttpRequest&) { return HttpResponse::json(health()); });
        break;
      case api::Composer::kDashboard:
        router.get(e.path, [this](const HttpRequest& req) {
          std::optional<std::string> body = dashboard(req.may_block);
          return body ? HttpResponse::json(std::move(*body)) : HttpResponse::deferred(req);
        });
        break;
      case api::Composer::kMetrics:
        router.get(e.path, [this](const HttpRequest&) {
          HttpResponse r = HttpResponse::json(ctx_.metrics->serialize());
          r.content_type = "text/plain; version=0.0.4; charset=utf-8";
          return r;
        });
        break;
      case api::Composer::kPluginList:
        router.get(e.path, [this](const HttpRequest&) { return pluginList(); });
        break;
      case api::Composer::kPluginRoute:  // the fallback: the plugin serves it, with its query
      case api::Composer::kHistory:      // HistoryService::install
        break;
    }
  }
  router.setFallback([this](const HttpRequest& req) -> std::optional<HttpResponse> {
    if (req.path.rfind("/plugins/", 0) == 0) return pluginSection(req);
    auto r = ctx_.plugin_routes->call(req.path, req.query, req.may_block);
    if (!r) return std::nullopt;
    if (r->deferred()) return HttpResponse::deferred(req);
    return HttpResponse::json(std::move(r->body), r->status);
  });
}

}  // namespace bb
