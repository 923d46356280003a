#include "metrics/metrics.h"

#include <prometheus/check_names.h>
#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cmath>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <sstream>

namespace bb {
namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;

constexpr size_t kMaxRpcMethods = 64;

const prometheus::Histogram::BucketBoundaries kDurationBuckets{
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

// process_* metrics as the Prometheus client libraries name them, read from /proc.
class ProcessCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<prometheus::MetricFamily> out;
    long page = sysconf(_SC_PAGESIZE);
    long ticks = sysconf(_SC_CLK_TCK);
    std::ifstream stat("/proc/self/stat");
    std::string content((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    // Fields after the command name (which may contain spaces) start after the last ')'.
    auto close = content.rfind(')');
    if (close == std::string::npos) return out;
    std::istringstream fields(content.substr(close + 2));
    std::vector<std::string> f;
    for (std::string x; fields >> x;) f.push_back(x);
    // f[0] is field 3 (state); utime=14, stime=15, starttime=22, vsize=23, rss=24.
    auto field = [&](int n) -> double {
      size_t i = static_cast<size_t>(n - 3);
      return i < f.size() ? std::stod(f[i]) : NAN;
    };
    double cpu = (field(14) + field(15)) / static_cast<double>(ticks);
    double start = bootTime() + field(22) / static_cast<double>(ticks);
    out.push_back(single("process_cpu_seconds_total",
                         "Total user and system CPU time spent in seconds.",
                         prometheus::MetricType::Counter, cpu));
    out.push_back(single("process_resident_memory_bytes", "Resident memory size in bytes.",
                         prometheus::MetricType::Gauge, field(24) * static_cast<double>(page)));
    out.push_back(single("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                         prometheus::MetricType::Gauge, field(23)));
    out.push_back(single("process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.",
                         prometheus::MetricType::Gauge, start));
    std::error_code ec;
    double fds = 0;
    for (auto it = std::filesystem::directory_iterator("/proc/self/fd", ec);
         !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
      ++fds;
    out.push_back(single("process_open_fds", "Number of open file descriptors.",
                         prometheus::MetricType::Gauge, fds));
    out.push_back(single("process_max_fds", "Maximum number of open file descriptors.",
                         prometheus::MetricType::Gauge,
                         static_cast<double>(sysconf(_SC_OPEN_MAX))));
    return out;
  }

 private:
  static double bootTime() {
    std::ifstream s("/proc/stat");
    for (std::string key; s >> key;) {
      if (key == "btime") {
        double v = 0;
        s >> v;
        return v;
      }
      std::string rest;
      std::getline(s, rest);
    }
    return 0;
  }
  static prometheus::MetricFamily single(const std::string& name, const std::string& help,
                                         prometheus::MetricType type, double value) {
    prometheus::MetricFamily fam;
    fam.name = name;
    fam.help = help;
    fam.type = type;
    prometheus::ClientMetric m;
    if (type == prometheus::MetricType::Counter)
      m.counter.value = value;
    else
      m.gauge.value = value;
    fam.metric.push_back(m);
    return fam;
  }
};

// Text exposition format 0.0.4, written straight into one string. prometheus-cpp's
// TextSerializer formats every value through an ostream, which costs most of a scrape with
// thousands of series (bench/micro: /metrics with 5000 series).
void appendEscaped(std::string& out, const std::string& s, bool quote) {
  for (char c : s) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else if (c == '"' && quote)
      out += "\\\"";
    else
      out += c;
  }
}

void appendValue(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
  } else if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
  } else {
    char buf[32];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }
}

void appendSample(std::string& out, const std::string& name, const char* suffix,
                  const std::vector<prometheus::ClientMetric::Label>& labels,
                  const char* extra_name, double extra_value, double value) {
  out += name;
  out += suffix;
  if (!labels.empty() || extra_name) {
    out += '{';
    bool first = true;
    for (const auto& l : labels) {
      if (!first) out += ',';
      first = false;
      out += l.name;
      out += "=\"";
      appendEscaped(out, l.value, true);
      out += '"';
    }
    if (extra_name) {
      if (!first) out += ',';
      out += extra_name;
      out += "=\"";
      appendValue(out, extra_value);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  appendValue(out, value);
  out += '\n';
}

std::string textExposition(const std::vector<prometheus::MetricFamily>& families) {
  std::string out;
  size_t series = 0;
  for (const auto& f : families) series += f.metric.size();
  out.reserve(4096 + series * 96);
  for (const auto& f : families) {
    out += "# HELP ";
    out += f.name;
    out += ' ';
    appendEscaped(out, f.help, false);
    out += "\n# TYPE ";
    out += f.name;
    switch (f.type) {
      case prometheus::MetricType::Counter:
        out += " counter\n";
        break;
      case prometheus::MetricType::Gauge:
        out += " gauge\n";
        break;
      case prometheus::MetricType::Histogram:
        out += " histogram\n";
        break;
      case prometheus::MetricType::Summary:
        out += " summary\n";
        break;
      default:
        out += " untyped\n";
        break;
    }
    for (const auto& m : f.metric) {
      switch (f.type) {
        case prometheus::MetricType::Counter:
          appendSample(out, f.name, "", m.label, nullptr, 0, m.counter.value);
          break;
        case prometheus::MetricType::Gauge:
          appendSample(out, f.name, "", m.label, nullptr, 0, m.gauge.value);
          break;
        case prometheus::MetricType::Histogram: {
          for (const auto& b : m.histogram.bucket)
            appendSample(out, f.name, "_bucket", m.label, "le", b.upper_bound,
                         static_cast<double>(b.cumulative_count));
          appendSample(out, f.name, "_sum", m.label, nullptr, 0, m.histogram.sample_sum);
          appendSample(out, f.name, "_count", m.label, nullptr, 0,
                       static_cast<double>(m.histogram.sample_count));
          break;
        }
        case prometheus::MetricType::Summary: {
          for (const auto& q : m.summary.quantile)
            appendSample(out, f.name, "", m.label, "quantile", q.quantile, q.value);
          appendSample(out, f.name, "_sum", m.label, nullptr, 0, m.summary.sample_sum);
          appendSample(out, f.name, "_count", m.label, nullptr, 0,
                       static_cast<double>(m.summary.sample_count));
          break;
        }
        default:
          appendSample(out, f.name, "", m.label, nullptr, 0, m.untyped.value);
      }
    }
  }
  return out;
}

std::string seriesKey(const std::string& name,
                      const std::vector<std::pair<std::string, std::string>>& labels) {
  std::string key = name;
  for (const auto& kv : labels) {
    key += '\x1f';
    key += kv.first;
    key += '=';
    key += kv.second;
  }
  return key;
}

bool reservedName(const std::string& name) {
  return name.rfind("blockbuster_", 0) == 0 || name.rfind("process_", 0) == 0;
}

}  // namespace

struct Metrics::Impl {
  std::shared_ptr<prometheus::Registry> registry = std::make_shared<prometheus::Registry>();
  ProcessCollector process;
  size_t max_series;

  Family<Gauge>* build_info;
  Family<Gauge>* plugin_info;
  Family<Gauge>* plugin_up;
  Family<Histogram>* plugin_duration;
  Family<Counter>* plugin_errors;
  Family<Gauge>* plugin_last_success;
  Family<Gauge>* plugin_interval;
  Family<Counter>* plugin_skipped;
  Family<Counter>* plugin_quarantined;
  Family<Counter>* plugin_process_restarts;
  Family<Counter>* plugin_series_dropped;
  Family<Counter>* plugin_metric_errors;
  Family<Gauge>* plugin_series;
  Family<Counter>* rpc_requests;
  Family<Histogram>* rpc_duration;
  Family<Counter>* http_requests;
  Family<Histogram>* http_duration;
  Family<Gauge>* node_up;
  Family<Gauge>* plugin_data_age;
  Family<Gauge>* plugin_stale;
  Family<Gauge>* ws_clients;
  Family<Counter>* ws_sent;
  Family<Counter>* ws_dropped;
  Family<Counter>* ws_closed;

  // Plugin-defined families and series.
  struct PluginFamily {
    bool counter = false;
    std::vector<std::string> label_names;
    Family<Gauge>* gauges = nullptr;
    Family<Counter>* counters = nullptr;
  };
  struct Series {
    std::string plugin;
    std::string family;
    std::string sorted_key;  // family and labels in exposition order, to leave it out
    Gauge* gauge = nullptr;
    Counter* counter = nullptr;
    double last_total = 0;
  };
  mutable std::mutex mutex;  // guards the maps below (not the prometheus objects)
  std::map<std::string, PluginFamily> families;
  std::map<std::string, Series> series;
  std::map<std::string, size_t> series_count;
  std::set<std::string> rpc_methods;                        // distinct method labels so far
  std::function<std::vector<PluginFreshness>()> freshness;  // guarded by mutex

  explicit Impl(size_t max) : max_series(max) {
    auto& r = *registry;
    build_info = &prometheus::BuildGauge()
                      .Name("blockbuster_build_info")
                      .Help("Build of the running agent; the value is always 1.")
                      .Register(r);
    plugin_info = &prometheus::BuildGauge()
                       .Name("blockbuster_plugin_info")
                       .Help("Loaded plugins and their versions; the value is always 1.")
                       .Register(r);
    plugin_up = &prometheus::BuildGauge()
                     .Name("blockbuster_plugin_up")
                     .Help("1 when the plugin's last collection succeeded, else 0.")
                     .Register(r);
    plugin_duration = &prometheus::BuildHistogram()
                           .Name("blockbuster_plugin_collect_duration_seconds")
                           .Help("Time one collection of a plugin took.")
                           .Register(r);
    plugin_errors = &prometheus::BuildCounter()
                         .Name("blockbuster_plugin_collect_errors_total")
                         .Help("Collections of a plugin that failed.")
                         .Register(r);
    plugin_last_success = &prometheus::BuildGauge()
                               .Name("blockbuster_plugin_last_success_timestamp_seconds")
                               .Help("Unix time of the plugin's last successful collection.")
                               .Register(r);
    plugin_interval = &prometheus::BuildGauge()
                           .Name("blockbuster_plugin_interval_seconds")
                           .Help("The plugin's configured collection interval.")
                           .Register(r);
    plugin_skipped = &prometheus::BuildCounter()
                          .Name("blockbuster_plugin_skipped_runs_total")
                          .Help(
                              "Scheduled collections skipped because the previous one was "
                              "still running.")
                          .Register(r);
    plugin_quarantined = &prometheus::BuildCounter()
                              .Name("blockbuster_plugin_quarantines_total")
                              .Help(
                                  "Times a plugin was put in quarantine after repeated "
                                  "failures.")
                              .Register(r);
    plugin_process_restarts = &prometheus::BuildCounter()
                                   .Name("blockbuster_plugin_process_restarts_total")
                                   .Help(
                                       "Times the process of a plugin with isolation: process "
                                       "died (crash, kill, hang) and was started again.")
                                   .Register(r);
    plugin_series_dropped = &prometheus::BuildCounter()
                                 .Name("blockbuster_plugin_series_dropped_total")
                                 .Help(
                                     "Metric updates of a plugin dropped by the per-plugin "
                                     "series cap.")
                                 .Register(r);
    plugin_metric_errors = &prometheus::BuildCounter()
                                .Name("blockbuster_plugin_metric_errors_total")
                                .Help("Metric updates of a plugin refused as invalid.")
                                .Register(r);
    plugin_series = &prometheus::BuildGauge()
                         .Name("blockbuster_plugin_series")
                         .Help("Metric series a plugin currently exports.")
                         .Register(r);
    rpc_requests = &prometheus::BuildCounter()
                        .Name("blockbuster_rpc_requests_total")
                        .Help("JSON-RPC calls to the node, by method and outcome.")
                        .Register(r);
    rpc_duration = &prometheus::BuildHistogram()
                        .Name("blockbuster_rpc_request_duration_seconds")
                        .Help("Time a JSON-RPC call took, retries and waits included.")
                        .Register(r);
    http_requests = &prometheus::BuildCounter()
                         .Name("blockbuster_http_requests_total")
                         .Help("HTTP requests served, by route and status code.")
                         .Register(r);
    http_duration = &prometheus::BuildHistogram()
                         .Name("blockbuster_http_request_duration_seconds")
                         .Help("Time to serve an HTTP request, by route.")
                         .Register(r);
    node_up = &prometheus::BuildGauge()
                   .Name("blockbuster_node_up")
                   .Help("1 while the node is judged reachable (one judgement per cycle), else 0.")
                   .Register(r);
    plugin_data_age = &prometheus::BuildGauge()
                           .Name("blockbuster_plugin_data_age_seconds")
                           .Help(
                               "Age of the newest data a plugin published (absent before its "
                               "first).")
                           .Register(r);
    plugin_stale = &prometheus::BuildGauge()
                        .Name("blockbuster_plugin_stale")
                        .Help(
                            "1 when a plugin's data is older than 2 intervals plus its "
                            "timeout: its own series are then left out of /metrics.")
                        .Register(r);
    ws_clients = &prometheus::BuildGauge()
                      .Name("blockbuster_ws_clients")
                      .Help("Open WebSocket clients, by endpoint (dashboard, features).")
                      .Register(r);
    ws_sent = &prometheus::BuildCounter()
                   .Name("blockbuster_ws_messages_sent_total")
                   .Help("WebSocket messages written in full to clients.")
                   .Register(r);
    ws_dropped = &prometheus::BuildCounter()
                      .Name("blockbuster_ws_messages_dropped_total")
                      .Help(
                          "WebSocket messages a slow client never got: replaced by a newer "
                          "one of the same stream, or over its queue's cap.")
                      .Register(r);
    ws_closed = &prometheus::BuildCounter()
                     .Name("blockbuster_ws_clients_closed_total")
                     .Help("WebSocket clients closed, by reason.")
                     .Register(r);
  }
};

Metrics::Metrics(const std::string& version, size_t max_series_per_plugin)
    : impl_(std::make_unique<Impl>(max_series_per_plugin)) {
  impl_->build_info->Add({{"version", version}}).Set(1);
  impl_->node_up->Add({}).Set(0);
  impl_->ws_sent->Add({});
  impl_->ws_dropped->Add({});
}

Metrics::~Metrics() = default;

namespace {

std::string sortedKey(const std::string& name,
                      const std::vector<prometheus::ClientMetric::Label>& labels) {
  std::string key = name;
  for (const auto& l : labels) {
    key += '\x1f';
    key += l.name;
    key += '=';
    key += l.value;
  }
  return key;
}

}  // namespace

void Metrics::setFreshnessSource(std::function<std::vector<PluginFreshness>()> source) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  impl_->freshness = std::move(source);
}

std::string Metrics::serialize() const {
  std::function<std::vector<PluginFreshness>()> source;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    source = impl_->freshness;
  }
  std::set<std::string> hidden;  // sorted keys of the series of expired plugins
  if (source) {
    std::set<std::string> expired;
    for (const PluginFreshness& f : source()) {
      const prometheus::Labels by{{"plugin", f.plugin}};
      if (f.age_seconds) {
        impl_->plugin_data_age->Add(by).Set(*f.age_seconds);
      } else {
        impl_->plugin_data_age->Remove(&impl_->plugin_data_age->Add(by));
      }
      impl_->plugin_stale->Add(by).Set(f.expired ? 1 : 0);
      if (f.expired) expired.insert(f.plugin);
    }
    if (!expired.empty()) {
      std::lock_guard<std::mutex> lock(impl_->mutex);
      for (const auto& kv : impl_->series)
        if (expired.count(kv.second.plugin)) hidden.insert(kv.second.sorted_key);
    }
  }
  auto families = impl_->registry->Collect();
  if (!hidden.empty()) {
    for (auto it = families.begin(); it != families.end();) {
      auto& metrics = it->metric;
      const bool had = !metrics.empty();
      metrics.erase(std::remove_if(metrics.begin(), metrics.end(),
                                   [&](const prometheus::ClientMetric& m) {
                                     return hidden.count(sortedKey(it->name, m.label)) > 0;
                                   }),
                    metrics.end());
      it = had && metrics.empty() ? families.erase(it) : it + 1;
    }
  }
  auto process = impl_->process.Collect();
  families.insert(families.end(), process.begin(), process.end());
  return textExposition(families);
}

void Metrics::pluginLoaded(const std::string& plugin, const std::string& version,
                           double interval_seconds) {
  impl_->plugin_info->Add({{"plugin", plugin}, {"version", version}}).Set(1);
  impl_->plugin_interval->Add({{"plugin", plugin}}).Set(interval_seconds);
  impl_->plugin_up->Add({{"plugin", plugin}}).Set(0);
  impl_->plugin_errors->Add({{"plugin", plugin}});
  impl_->plugin_skipped->Add({{"plugin", plugin}});
  impl_->plugin_quarantined->Add({{"plugin", plugin}});
  impl_->plugin_duration->Add({{"plugin", plugin}}, kDurationBuckets);
}

void Metrics::removePlugin(const std::string& plugin, const std::string& version) {
  removePluginSeries(plugin);
  const prometheus::Labels by{{"plugin", plugin}};
  // Family::Add returns the existing series for these labels, which Remove then drops.
  auto drop = [&](auto* family) { family->Remove(&family->Add(by)); };
  drop(impl_->plugin_up);
  drop(impl_->plugin_interval);
  drop(impl_->plugin_last_success);
  drop(impl_->plugin_errors);
  drop(impl_->plugin_skipped);
  drop(impl_->plugin_quarantined);
  drop(impl_->plugin_process_restarts);
  drop(impl_->plugin_series_dropped);
  drop(impl_->plugin_metric_errors);
  drop(impl_->plugin_series);
  drop(impl_->plugin_data_age);
  drop(impl_->plugin_stale);
  impl_->plugin_duration->Remove(&impl_->plugin_duration->Add(by, kDurationBuckets));
  impl_->plugin_info->Remove(&impl_->plugin_info->Add({{"plugin", plugin}, {"version", version}}));
}

void Metrics::pluginCollect(const std::string& plugin, double seconds, bool ok) {
  impl_->plugin_duration->Add({{"plugin", plugin}}, kDurationBuckets).Observe(seconds);
  impl_->plugin_up->Add({{"plugin", plugin}}).Set(ok ? 1 : 0);
  if (ok) {
    impl_->plugin_last_success->Add({{"plugin", plugin}})
        .Set(static_cast<double>(std::time(nullptr)));
  } else {
    impl_->plugin_errors->Add({{"plugin", plugin}}).Increment();
  }
}

void Metrics::pluginUp(const std::string& plugin, bool up) {
  impl_->plugin_up->Add({{"plugin", plugin}}).Set(up ? 1 : 0);
}

void Metrics::pluginSkipped(const std::string& plugin) {
  impl_->plugin_skipped->Add({{"plugin", plugin}}).Increment();
}

void Metrics::pluginQuarantined(const std::string& plugin) {
  impl_->plugin_quarantined->Add({{"plugin", plugin}}).Increment();
}

void Metrics::pluginProcessRestarts(const std::string& plugin, double add) {
  impl_->plugin_process_restarts->Add({{"plugin", plugin}}).Increment(add);
}

void Metrics::rpcCall(const std::string& method, const std::string& outcome, double seconds) {
  // The method label comes from plugin code: a plugin calling made-up names must not create
  // series without bound. Well-formed names up to kMaxRpcMethods distinct ones; then "other".
  std::string label = method;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    bool well_formed = !method.empty() && method.size() <= 64 &&
                       method.find_first_not_of(
                           "abcdefghijklmnopqrstuvwxyz"
                           "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.") == std::string::npos;
    if (!well_formed) {
      label = "other";
    } else if (!impl_->rpc_methods.count(method)) {
      if (impl_->rpc_methods.size() >= kMaxRpcMethods)
        label = "other";
      else
        impl_->rpc_methods.insert(method);
    }
  }
  impl_->rpc_requests->Add({{"method", label}, {"outcome", outcome}}).Increment();
  impl_->rpc_duration->Add({{"method", label}}, kDurationBuckets).Observe(seconds);
}

void Metrics::httpRequest(const std::string& route, int code, double seconds) {
  impl_->http_requests->Add({{"route", route}, {"code", std::to_string(code)}}).Increment();
  impl_->http_duration->Add({{"route", route}}, kDurationBuckets).Observe(seconds);
}

void Metrics::nodeUp(bool up) { impl_->node_up->Add({}).Set(up ? 1 : 0); }

void Metrics::wsClients(const std::string& endpoint, size_t clients) {
  impl_->ws_clients->Add({{"endpoint", endpoint}}).Set(static_cast<double>(clients));
}

void Metrics::wsMessagesSent(uint64_t messages) {
  impl_->ws_sent->Add({}).Increment(static_cast<double>(messages));
}

void Metrics::wsMessagesDropped(uint64_t messages) {
  impl_->ws_dropped->Add({}).Increment(static_cast<double>(messages));
}

void Metrics::wsClientClosed(const std::string& reason) {
  impl_->ws_closed->Add({{"reason", reason}}).Increment();
}

MetricResult Metrics::applyPluginMetric(const std::string& plugin, const MetricUpdate& u) {
  auto refuse = [&](const std::string& why) {
    impl_->plugin_metric_errors->Add({{"plugin", plugin}}).Increment();
    return MetricResult{MetricResult::Code::Invalid, why};
  };
  if (!prometheus::CheckMetricName(u.name))
    return refuse("invalid metric name '" + u.name + "'; use [a-zA-Z_:][a-zA-Z0-9_:]*");
  if (reservedName(u.name))
    return refuse("metric name '" + u.name + "' uses a prefix reserved for the agent");
  for (const auto& kv : u.labels) {
    if (!prometheus::CheckLabelName(kv.first) || kv.first.rfind("__", 0) == 0)
      return refuse("invalid label name '" + kv.first + "' on " + u.name);
  }
  if (!std::isfinite(u.value) && u.op != MetricUpdate::Op::Remove)
    return refuse("non-finite value for " + u.name + "; remove the series instead");

  std::vector<std::string> names;
  for (const auto& kv : u.labels) names.push_back(kv.first);
  std::string key = seriesKey(u.name, u.labels);

  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto sit = impl_->series.find(key);
  if (u.op == MetricUpdate::Op::Remove) {
    if (sit == impl_->series.end()) return {};
    auto& fam = impl_->families[sit->second.family];
    if (sit->second.gauge) fam.gauges->Remove(sit->second.gauge);
    if (sit->second.counter) fam.counters->Remove(sit->second.counter);
    auto& count = impl_->series_count[sit->second.plugin];
    if (count > 0) --count;
    impl_->plugin_series->Add({{"plugin", sit->second.plugin}}).Set(static_cast<double>(count));
    impl_->series.erase(sit);
    return {};
  }

  auto fit = impl_->families.find(u.name);
  if (fit == impl_->families.end()) {
    Impl::PluginFamily fam;
    fam.counter = u.counter;
    fam.label_names = names;
    std::string help = u.help.empty() ? u.name + " (set by plugin " + plugin + ")" : u.help;
    if (u.counter)
      fam.counters = &prometheus::BuildCounter().Name(u.name).Help(help).Register(*impl_->registry);
    else
      fam.gauges = &prometheus::BuildGauge().Name(u.name).Help(help).Register(*impl_->registry);
    fit = impl_->families.emplace(u.name, fam).first;
  } else {
    if (fit->second.counter != u.counter)
      return refuse(u.name + " is already a " + (fit->second.counter ? "counter" : "gauge"));
    if (fit->second.label_names != names)
      return refuse(u.name + " is already used with other label names");
  }
  auto& fam = fit->second;

  if (sit == impl_->series.end()) {
    size_t& count = impl_->series_count[plugin];
    if (count >= impl_->max_series) {
      impl_->plugin_series_dropped->Add({{"plugin", plugin}}).Increment();
      return {MetricResult::Code::SeriesCap, "series cap of " + std::to_string(impl_->max_series) +
                                                 " reached for plugin " + plugin + "; " + u.name +
                                                 " dropped"};
    }
    Impl::Series s;
    s.plugin = plugin;
    s.family = u.name;
    prometheus::Labels labels(u.labels.begin(), u.labels.end());
    std::vector<prometheus::ClientMetric::Label> ordered;
    for (const auto& [k, v] : labels) ordered.push_back({k, v});
    s.sorted_key = sortedKey(u.name, ordered);
    if (u.counter)
      s.counter = &fam.counters->Add(labels);
    else
      s.gauge = &fam.gauges->Add(labels);
    sit = impl_->series.emplace(key, s).first;
    ++count;
    impl_->plugin_series->Add({{"plugin", plugin}}).Set(static_cast<double>(count));
  }
  auto& s = sit->second;
  if (s.gauge) {
    if (u.op == MetricUpdate::Op::Add)
      s.gauge->Increment(u.value);
    else
      s.gauge->Set(u.value);
    return {};
  }
  if (u.op == MetricUpdate::Op::Add) {
    if (u.value < 0) return refuse("negative increment of counter " + u.name);
    s.counter->Increment(u.value);
    s.last_total += u.value;
    return {};
  }
  // Set an absolute total the node reports. A total that went down means the node restarted:
  // start the series again so that rate() sees a counter reset, not a negative rate.
  if (u.value < s.last_total) {
    prometheus::Labels labels(u.labels.begin(), u.labels.end());
    fam.counters->Remove(s.counter);
    s.counter = &fam.counters->Add(labels);
    s.last_total = 0;
  }
  s.counter->Increment(u.value - s.last_total);
  s.last_total = u.value;
  return {};
}

void Metrics::removePluginSeries(const std::string& plugin) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  for (auto it = impl_->series.begin(); it != impl_->series.end();) {
    if (it->second.plugin != plugin) {
      ++it;
      continue;
    }
    auto& fam = impl_->families[it->second.family];
    if (it->second.gauge) fam.gauges->Remove(it->second.gauge);
    if (it->second.counter) fam.counters->Remove(it->second.counter);
    it = impl_->series.erase(it);
  }
  impl_->series_count[plugin] = 0;
  impl_->plugin_series->Add({{"plugin", plugin}}).Set(0);
}

size_t Metrics::pluginSeries(const std::string& plugin) const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  auto it = impl_->series_count.find(plugin);
  return it == impl_->series_count.end() ? 0 : it->second;
}

}  // namespace bb
