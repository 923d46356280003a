#include "history/history_service.h"

#include <blockbuster/json.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>

#include "api/api_table.h"
#include "api/dashboard_api.h"
#include "util/log.h"

namespace bb {

using blockbuster::Json;

namespace {

// The rows of the API table the history samples: the network figures, and each market.
const api::Endpoint& networkRow() { return *api::byPath("/theblock/network/metrics"); }
const api::Endpoint& historyRow() { return *api::byComposer(api::Composer::kHistory); }

// Recorded even before the node answered, so that a page asks for them from the first second.
const char* const kNetworkSeries[] = {
    "network_strength",       "block_height",         "block_rate",
    "finality_time",          "peer_count",           "tps",
    "bandwidth_in",           "bandwidth_out",        "active_connections",
    "last_block_age_seconds", "strength_terms.peers", "strength_terms.tps",
    "strength_terms.finality"};

// Members of a body that are not figures.
bool notFigure(const std::string& key) {
  return key == "timestamp" || key == "age_seconds" || key == "stale";
}

double statusValue(const Json& v) {
  if (!v.isString()) return NAN;
  const std::string& s = v.asString();
  if (s == "healthy") return 2;
  if (s == "idle") return 1;
  if (s == "unavailable") return 0;
  return NAN;  // "unknown" (stale) and anything new: not a level we can chart
}

int64_t nowMillis() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

void sampleObject(const std::string& prefix, const Json& body,
                  std::vector<std::pair<std::string, double>>& out) {
  const bool stale = body["stale"].isBool() && body["stale"].asBool();
  for (const auto& [key, v] : body.asObject()) {
    if (notFigure(key)) continue;
    if (key == "strength_terms" && v.isObject()) {
      for (const auto& [term, tv] : v.asObject())
        if (tv.isNumber() || tv.isNull())
          out.emplace_back(prefix + key + "." + term, stale || tv.isNull() ? NAN : tv.asDouble());
      continue;
    }
    if (key == "status") {
      out.emplace_back(prefix + key, stale ? NAN : statusValue(v));
      continue;
    }
    if (v.isNumber() || v.isNull())
      out.emplace_back(prefix + key, stale || v.isNull() ? NAN : v.asDouble());
  }
}

}  // namespace

void sampleBody(const std::string& prefix, const std::string& body,
                std::vector<std::pair<std::string, double>>& out) {
  try {
    Json j = Json::parse(body);
    if (j.isObject()) sampleObject(prefix, j, out);
  } catch (const blockbuster::JsonError&) {
  }
}

HistoryServiceOptions historyOptions(const Config& config, const std::string& state_dir) {
  HistoryServiceOptions o;
  o.store.window_seconds = config.history_window_seconds;
  // One row per collection of the plugin the network figures come from.
  auto it = config.plugins.find(std::string(api::pluginOf(networkRow())));
  int interval = it != config.plugins.end() ? it->second.interval_ms : PluginConfig{}.interval_ms;
  o.store.resolution_ms = std::clamp(interval, 1000, 60000);
  o.file = state_dir.empty() ? "" : state_dir + "/history.bin";
  // Each save writes the whole file (0.9 MB for the default hour, 22 MB for 24 h): every minute,
  // or every window/60 for long windows, so that at most about 1.3 GB a day is written whatever
  // the window. SIGTERM saves everything; a crash loses at most one interval.
  o.save_interval = std::chrono::milliseconds(
      std::max<int64_t>(60000, config.history_window_seconds * 1000 / 60));
  return o;
}

HistorySampler dashboardSampler(const DashboardApi& api, const HistoryMarks* marks) {
  return [&api, marks] {
    std::vector<std::pair<std::string, double>> out;
    for (const char* name : kNetworkSeries) out.emplace_back(name, NAN);
    if (std::optional<std::string> network = api.streamBody(networkRow())) {
      std::vector<std::pair<std::string, double>> got;
      sampleBody("", *network, got);
      for (auto& g : got) {
        bool known = false;
        for (auto& o : out)
          if (o.first == g.first) {
            o.second = g.second;
            known = true;
          }
        if (!known) out.push_back(std::move(g));
      }
    }
    try {
      Json markets = Json::parse(api.marketsHealth())["markets"];
      if (markets.isObject())
        for (const auto& [name, m] : markets.asObject())
          if (m.isObject()) sampleObject(name + ".", m, out);
    } catch (const blockbuster::JsonError&) {
    }
    if (marks)
      for (auto& m : marks->snapshot()) out.push_back(std::move(m));
    return out;
  };
}

HistoryService::HistoryService(HistoryServiceOptions options, HistorySampler sampler)
    : options_(std::move(options)), sampler_(std::move(sampler)), store_(options_.store) {}

HistoryService::~HistoryService() { stop(); }

void HistoryService::load() {
  if (options_.file.empty()) return;
  std::error_code created;
  std::filesystem::create_directories(std::filesystem::path(options_.file).parent_path(), created);
  std::string problem = store_.load(options_.file, nowMillis());
  if (problem.empty()) {
    if (store_.rows())
      logInfo("history", "read " + std::to_string(store_.rows()) + " rows from " + options_.file);
    return;
  }
  // Keep the file for inspection and start afresh: a damaged history must not stop the agent.
  std::error_code ec;
  std::filesystem::rename(options_.file, options_.file + ".bad", ec);
  logWarn("history", problem + "; set aside as " + options_.file + ".bad, history starts afresh");
}

void HistoryService::sampleOnce(int64_t unix_ms) {
  store_.append(unix_ms, sampler_());
  if (on_row_) on_row_();
}

void HistoryService::start() {
  if (thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = false;
  }
  thread_ = std::thread([this] { run(); });
}

void HistoryService::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  thread_.join();
  save();
}

void HistoryService::save() {
  if (options_.file.empty()) return;
  std::string problem = store_.save(options_.file);
  if (!problem.empty()) logWarn("history", problem);
}

void HistoryService::run() {
  const int64_t res = std::max<int64_t>(1, options_.store.resolution_ms);
  auto next_save = std::chrono::steady_clock::now() + options_.save_interval;
  for (;;) {
    // Rows on the wall clock's multiples of the resolution, so that restarts line up.
    int64_t now = nowMillis();
    int64_t tick = (now / res + 1) * res;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (cv_.wait_for(lock, std::chrono::milliseconds(tick - now), [&] { return stopping_; }))
        return;
    }
    try {
      sampleOnce(tick);
    } catch (const std::exception& e) {
      logWarn("history", std::string("sampling failed: ") + e.what());
    }
    if (std::chrono::steady_clock::now() >= next_save) {
      save();
      next_save = std::chrono::steady_clock::now() + options_.save_interval;
    }
  }
}

void HistoryService::install(Router& router, DashboardApi& api) {
  // The history stream sends the last row; nothing until there is one.
  api.setHistorySource([this]() -> std::optional<std::string> {
    std::string last = store_.renderLast();
    if (last.empty()) return std::nullopt;
    return last;
  });
  router.get(
      historyRow().path,
      [this](const HttpRequest& req) {
        const int64_t max_window = options_.store.window_seconds;
        long long window = 0;
        IntParamProblem kind;
        std::string problem =
            intParam(req.query, "window", max_window, 1, max_window, window, &kind);
        if (kind == IntParamProblem::Repeated || kind == IntParamProblem::NotAnInteger)
          problem += "; allowed: seconds of history, 1 to " + std::to_string(max_window);
        if (!problem.empty()) return HttpResponse::error(400, "bad_parameter", problem);
        std::vector<std::string> series;
        int given = 0;
        for (const auto& [key, value] : req.query) {
          if (key != "series") continue;
          if (++given > 1)
            return HttpResponse::error(400, "bad_parameter",
                                       "query parameter 'series' is given more than once; "
                                       "allowed: once, with names separated by commas");
          size_t start = 0;
          while (start <= value.size()) {
            size_t comma = value.find(',', start);
            std::string name =
                value.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            start = comma == std::string::npos ? value.size() + 1 : comma + 1;
            if (name.empty()) continue;
            if (!store_.hasSeries(name)) {
              std::string known;
              for (const auto& n : store_.seriesNames()) known += (known.empty() ? "" : ", ") + n;
              return HttpResponse::error(400, "bad_parameter",
                                         "query parameter 'series': no series named '" + name +
                                             "'; allowed: a comma-separated list of " +
                                             (known.empty() ? "none yet" : known));
            }
            series.push_back(name);
          }
          if (series.empty())
            return HttpResponse::error(400, "bad_parameter",
                                       "query parameter 'series' is empty; allowed: series names "
                                       "separated by commas, or no 'series' for every series");
        }
        return HttpResponse::json(store_.render(window, series, nowMillis()));
      },
      {"window", "series"});
}

}  // namespace bb
