#include "host/plugin_runtime.h"

#include <blockbuster/json.h>
#include <pthread.h>

#include <cmath>
#include <filesystem>
#include <stdexcept>

#include "host/plugin_routes.h"
#include "host/process_plugin.h"
#include "metrics/metrics.h"
#include "rpc/json_text.h"
#include "rpc/rpc_client.h"
#include "snapshot/feature_store.h"
#include "snapshot/snapshot_store.h"
#include "util/log.h"
#include "util/thread_priority.h"

/// The opaque handle of plugin_abi.h: which runtime a host call comes from.
struct bb_host {
  bb::PluginRuntime* runtime;
};

namespace bb {
namespace {

using Clock = std::chrono::steady_clock;

// How much nicer than the agent a plugin's collect thread runs. A collect waits on the node at
// the scale of its interval (1 s and more) and the receipts one ingests in a burst (100-200 ms of
// CPU a second under the mix, issue 20); at a lower priority it yields the cores to the event
// loops, which answer at the scale of a millisecond, when both want them. Mild: it still gets a
// third of a loop's share (weight 335 against 1024), so ingest keeps up under load.
constexpr int kCollectNice = 5;
// A collection counts as in progress (SnapshotStore::collectStarted) from this long before its
// slot: a collect thread woken a little late is still awaited by the WebSocket hub.
constexpr std::chrono::milliseconds kAnnounce{10};

void appendTo(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
}

// A plugin may hand us anything: never trust a pointer to be non-null.
std::string text(const char* s) { return s ? s : ""; }

bool validSectionName(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return false;
  return true;
}

// Feature names may be dotted (e.g. "per_second.compute"): dot-separated section names.
bool validFeatureName(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = s.find('.', start);
    if (!validSectionName(
            s.substr(start, dot == std::string::npos ? std::string::npos : dot - start)))
      return false;
    if (dot == std::string::npos) return true;
    start = dot + 1;
  }
}

const bb_host_api kHostApi = {
    sizeof(bb_host_api),
    BB_ABI_VERSION_MAJOR,
    BB_ABI_VERSION_MINOR,
    [](bb_host* h, int level, const char* msg) { h->runtime->hostLog(level, msg); },
    [](bb_host* h, const char* method, const char* params, bb_sink_fn sink, void* ctx) {
      return h->runtime->hostRpc(method, params, sink, ctx);
    },
    [](bb_host* h, bb_rpc_request* reqs, size_t n) { return h->runtime->hostRpcMany(reqs, n); },
    [](bb_host* h, const char* section, const char* json, size_t len) {
      return h->runtime->hostPublish(section, json, len);
    },
    [](bb_host* h, const char* section, const char* reason) {
      return h->runtime->hostPublishError(section, reason);
    },
    [](bb_host* h, const bb_metric* m) { return h->runtime->hostMetric(m); },
    [](bb_host* h, const char* name, double value) { return h->runtime->hostFeature(name, value); },
    [](bb_host* h, const char* path, bb_route_fn fn, void* ctx) {
      return h->runtime->hostServe(path, fn, ctx);
    },
    [](bb_host* h) { return h->runtime->hostStateDir(); },
};

}  // namespace

PluginRuntime::PluginRuntime(std::shared_ptr<LoadedLibrary> library, PluginConfig config,
                             HostServices services)
    : library_(std::move(library)),
      config_(std::move(config)),
      services_(std::move(services)),
      host_(std::make_unique<bb_host>(bb_host{this})) {
  if (!services_.state_dir.empty()) state_dir_ = services_.state_dir + "/" + name();
}

PluginRuntime::~PluginRuntime() {
  bool clean = stop();
  if (!clean || abandoned_) {
    // The plugin is stuck inside collect(): destroying it or unloading its code now would crash
    // the agent. Leak both; the process is going away or replacing it.
    new std::shared_ptr<LoadedLibrary>(library_);
    return;
  }
  if (services_.routes) services_.routes->removePlugin(name());
  process_.reset();
  if (instance_) library_->plugin().destroy(instance_);
  instance_ = nullptr;
}

void PluginRuntime::create(const std::string& effective_options_json) {
  if (!state_dir_.empty()) {
    std::error_code ec;
    std::filesystem::create_directories(state_dir_, ec);
    if (ec)
      throw std::runtime_error("plugin '" + name() + "': cannot create its state directory " +
                               state_dir_ + " (" + ec.message() + "); set state_dir");
  }
  if (config_.isolation == "process") {
    ProcessPlugin::Options o;
    o.name = name();
    o.plugin_path = info().path;
    o.runner = services_.plugin_runner;
    o.state_dir = state_dir_;
    // Killed as hung past this: RPC calls fail at the deadline (timeout), so a collect still
    // running long after it is stuck in the plugin's own code.
    o.collect_limit =
        std::max<std::chrono::milliseconds>(2 * timeout(), timeout() + std::chrono::seconds(5));
    o.metrics = services_.metrics;
    process_ = std::make_unique<ProcessPlugin>(std::move(o), host_.get(), &kHostApi);
    process_->create(effective_options_json);
    return;
  }
  std::string error;
  instance_ = library_->plugin().create(host_.get(), &kHostApi, effective_options_json.c_str(),
                                        &appendTo, &error);
  if (!instance_)
    throw std::runtime_error("plugin '" + name() + "' (" + info().path + ") failed to start: " +
                             (error.empty() ? "create returned NULL" : error));
}

void PluginRuntime::start() {
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), ("bb-" + name()).substr(0, 15).c_str());
    lowerThisThreadPriority(kCollectNice);
    run();
    std::lock_guard<std::mutex> lock(mutex_);
    thread_done_ = true;
    cv_.notify_all();
  });
}

void PluginRuntime::requestStop() {
  std::lock_guard<std::mutex> lock(mutex_);
  stopping_ = true;
  cv_.notify_all();
}

bool PluginRuntime::stop(std::chrono::milliseconds grace) {
  std::unique_lock<std::mutex> lock(mutex_);
  stopping_ = true;
  cv_.notify_all();
  if (!thread_.joinable()) return !abandoned_;
  // A plugin in its own process is killed at half the grace: its collect() then returns.
  if (process_ && !cv_.wait_for(lock, grace / 2, [this] { return thread_done_; })) process_->kill();
  if (!cv_.wait_for(lock, process_ ? grace / 2 : grace, [this] { return thread_done_; })) {
    logWarn("plugin:" + name(),
            "still inside collect() after " + std::to_string(grace.count()) + " ms; abandoning it");
    abandoned_ = true;
    thread_.detach();
    return false;
  }
  lock.unlock();
  thread_.join();
  return true;
}

std::chrono::milliseconds PluginRuntime::timeout() const {
  return std::chrono::milliseconds(config_.timeout_ms > 0 ? config_.timeout_ms
                                                          : config_.interval_ms);
}

std::chrono::milliseconds PluginRuntime::staleAfter() const {
  return std::chrono::milliseconds(2 * config_.interval_ms) + timeout();
}

Clock::time_point PluginRuntime::nextSlot(Clock::time_point slot, Clock::time_point finished,
                                          std::chrono::milliseconds interval, int64_t& skipped) {
  skipped = 0;
  auto next = slot + interval;
  if (next <= finished && interval.count() > 0) {
    skipped = (finished - next) / interval + 1;
    next += interval * skipped;
  }
  return next;
}

void PluginRuntime::run() {
  const auto interval = std::chrono::milliseconds(config_.interval_ms);
  auto next = Clock::now();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (cv_.wait_until(lock, next - kAnnounce, [this] { return stopping_; })) return;
    }
    // From shortly before its slot until it ends, the collection counts as in progress in the
    // store: the WebSocket hub hands a block's updates to the clients once none is, rather than
    // after a fixed wait, and a thread that wakes a little late for its slot still counts.
    if (services_.store) services_.store->collectStarted();
    bool stop = false;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      stop = cv_.wait_until(lock, next, [this] { return stopping_; });
    }
    if (!stop) collectOnce();
    if (services_.store) services_.store->collectFinished();
    if (stop) return;
    auto finished = Clock::now();

    // Next slot on the original grid (counted from the slot, not from when the thread woke up,
    // which drifted by the wake-up latency, about 1 ms a run: plugins started together drifted
    // apart, and what a new block changes in their sections reached WebSocket clients in
    // separate writes); slots that passed while collecting are skipped.
    int64_t missed = 0;
    next = nextSlot(next, finished, interval, missed);
    if (missed > 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      skipped_ += static_cast<uint64_t>(missed);
      for (int i = 0; i < missed; ++i) services_.metrics->pluginSkipped(name());
    }
    std::lock_guard<std::mutex> lock(mutex_);
    if (own_failures_in_row_ >= kQuarantineAfter) {
      int exponent = std::min(own_failures_in_row_ - kQuarantineAfter, 16);
      auto backoff = std::min<std::chrono::milliseconds>(interval * (1LL << exponent), kMaxBackoff);
      next = std::max(next, finished + backoff);
      if (!quarantined_) {
        quarantined_ = true;
        services_.metrics->pluginQuarantined(name());
        logWarn("plugin:" + name(),
                "quarantined after " + std::to_string(own_failures_in_row_) +
                    " consecutive failures; retrying with backoff (last: " + last_error_ + ")");
      }
    }
  }
}

void PluginRuntime::collectOnce() {
  auto started = Clock::now();
  {
    std::lock_guard<std::mutex> lock(mutex_);
    collecting_ = true;
    collect_started_ = started;
  }
  deadline_ns_.store((started + timeout()).time_since_epoch().count());
  node_fault_.store(false);
  std::string error;
  int status = process_ ? process_->collect(error)
                        : library_->plugin().collect(instance_, &appendTo, &error);
  deadline_ns_.store(0);
  auto finished = Clock::now();
  double seconds = std::chrono::duration<double>(finished - started).count();
  bool ok = status == BB_OK;
  services_.metrics->pluginCollect(name(), seconds, ok);

  std::string reason;
  if (!ok) {
    reason = error.empty() ? "collect returned status " + std::to_string(status) : error;
    reason = redact(reason);
    services_.store->markPluginError(name(), reason);
  }
  bool was_quarantined = false;
  int failures_in_row = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    collecting_ = false;
    ++collections_;
    last_duration_ = seconds;
    if (ok) {
      last_success_ = finished;
      was_quarantined = quarantined_;
      quarantined_ = false;
      consecutive_failures_ = 0;
      own_failures_in_row_ = 0;
      last_error_.clear();
    } else {
      ++failures_;
      failures_in_row = ++consecutive_failures_;
      if (!node_fault_.load()) ++own_failures_in_row_;
      last_error_ = reason;
    }
  }
  if (!ok && failures_in_row <= kQuarantineAfter) {
    // One outage is one cause: while the node is down, [node] has said so once.
    if (node_fault_.load() && services_.node_unreachable && services_.node_unreachable())
      logDebug("plugin:" + name(), "collect failed (the node is unreachable): " + reason);
    else
      logWarn("plugin:" + name(), "collect failed: " + reason);
  }
  if (was_quarantined) logInfo("plugin:" + name(), "recovered; quarantine lifted");
}

std::chrono::steady_clock::time_point PluginRuntime::callDeadline() const {
  int64_t ns = deadline_ns_.load();
  if (ns != 0) return Clock::time_point(Clock::duration(ns));
  return Clock::now() + timeout();
}

PluginStatus PluginRuntime::status() const {
  std::lock_guard<std::mutex> lock(mutex_);
  PluginStatus s;
  s.name = name();
  s.version = info().version;
  s.path = info().path;
  s.interval_ms = config_.interval_ms;
  auto now = Clock::now();
  if (last_success_)
    s.last_success_age_seconds = std::chrono::duration<double>(now - *last_success_).count();
  s.last_duration_seconds = last_duration_;
  s.last_error = last_error_;
  s.consecutive_failures = consecutive_failures_;
  s.collections = collections_;
  s.failures = failures_;
  s.skipped = skipped_;
  s.isolation = config_.isolation;
  if (process_) {
    ProcessPlugin::State p = process_->state();
    s.pid = p.pid;
    s.process_restarts = p.restarts;
    s.last_exit = p.last_exit;
  }
  if (stopping_)
    s.state = "stopped";
  else if (collecting_ && now - collect_started_ > timeout())
    s.state = "overdue";
  else if (quarantined_)
    s.state = "quarantined";
  else if (consecutive_failures_ > 0)
    s.state = "failing";
  else if (!last_success_)
    s.state = "starting";
  else
    s.state = "ok";
  return s;
}

// ---- host API -------------------------------------------------------------------------------

void PluginRuntime::hostLog(int level, const char* message) {
  LogLevel l = LogLevel::Info;
  if (level <= BB_LOG_DEBUG)
    l = LogLevel::Debug;
  else if (level == BB_LOG_WARN)
    l = LogLevel::Warn;
  else if (level >= BB_LOG_ERROR)
    l = LogLevel::Error;
  log(l, "plugin:" + name(), text(message));
}

int PluginRuntime::hostRpc(const char* method, const char* params, bb_sink_fn sink, void* ctx) {
  bb_rpc_request req{sizeof(bb_rpc_request), method, params, sink, ctx, BB_ERR_INTERNAL};
  hostRpcMany(&req, 1);
  return req.status;
}

int PluginRuntime::hostRpcMany(bb_rpc_request* requests, size_t count) {
  if (!requests && count) return BB_ERR_INVALID;
  auto deliver = [](bb_rpc_request& r, int status, const std::string& json) {
    r.status = status;
    if (r.sink) r.sink(r.sink_ctx, json.data(), json.size());
  };
  auto deadline = callDeadline();
  std::vector<std::pair<std::string, std::string>> calls;
  std::vector<size_t> index;
  for (size_t i = 0; i < count; ++i) {
    bb_rpc_request& r = requests[i];
    if (r.struct_size < offsetof(bb_rpc_request, status) + sizeof(int32_t) || !r.method ||
        !*r.method) {
      deliver(r, BB_ERR_INVALID, R"({"code":0,"message":"invalid rpc request: no method"})");
      continue;
    }
    calls.emplace_back(r.method, r.params_json ? r.params_json : "{}");
    index.push_back(i);
  }
  if (calls.empty()) return BB_OK;
  if (Clock::now() >= deadline) {
    for (size_t i : index)
      deliver(requests[i], BB_ERR_TIMEOUT,
              R"({"code":0,"message":"the collect deadline has passed; call not sent"})");
    return BB_ERR_TIMEOUT;
  }
  std::vector<RpcOutcome> outcomes;
  if (calls.size() == 1)
    outcomes.push_back(services_.rpc->call(calls[0].first, calls[0].second, deadline));
  else
    outcomes = services_.rpc->callMany(calls, deadline);
  int worst = BB_OK;
  for (size_t k = 0; k < index.size() && k < outcomes.size(); ++k) {
    const RpcStatus st = outcomes[k].status;
    if (st == RpcStatus::Transport || st == RpcStatus::Timeout || st == RpcStatus::BadResponse ||
        st == RpcStatus::Limit)
      node_fault_.store(true);
    int status = static_cast<int>(st);
    deliver(requests[index[k]], status, outcomes[k].json);
    if (status != BB_OK) worst = status;
  }
  return worst;
}

int PluginRuntime::hostPublish(const char* section, const char* json, size_t len) {
  std::string s = text(section);
  if (!validSectionName(s)) {
    logWarn("plugin:" + name(),
            "publish refused: section name '" + s + "' is invalid; use [a-z0-9_]{1,64}");
    return BB_ERR_INVALID;
  }
  if (!json) return BB_ERR_INVALID;
  std::string body(json, len);
  // Checked in place, not parsed into values: a section of a few hundred receipts built as a
  // tree was the largest allocation of an idle agent (issue 18).
  bool has_timestamp = false;
  bool object = jsontext::forEachMember(body, [&](const std::string& member, std::string_view) {
    if (member == "timestamp") has_timestamp = true;
  });
  if (!object) {
    // Only now the parser, for the message that says where the text goes wrong.
    std::string problem = "a section must be a JSON object";
    try {
      (void)blockbuster::Json::parse(body);
    } catch (const blockbuster::JsonError& e) {
      problem = e.what();
    }
    std::string why = "section '" + s + "' refused: " + problem;
    logWarn("plugin:" + name(), why);
    services_.store->markError(name() + "." + s, name(), why, staleAfter());
    return BB_ERR_INVALID;
  }
  services_.store->publish(name() + "." + s, name(), body, has_timestamp, staleAfter());
  return BB_OK;
}

int PluginRuntime::hostPublishError(const char* section, const char* reason) {
  std::string s = text(section);
  if (!validSectionName(s)) return BB_ERR_INVALID;
  services_.store->markError(name() + "." + s, name(), redact(text(reason)), staleAfter());
  return BB_OK;
}

int PluginRuntime::hostMetric(const bb_metric* m) {
  if (!m || m->struct_size < offsetof(bb_metric, value) + sizeof(double) || !m->name)
    return BB_ERR_INVALID;
  MetricUpdate u;
  u.name = m->name;
  u.help = text(m->help);
  u.counter = m->kind == BB_METRIC_COUNTER;
  u.op = m->op == BB_METRIC_ADD      ? MetricUpdate::Op::Add
         : m->op == BB_METRIC_REMOVE ? MetricUpdate::Op::Remove
                                     : MetricUpdate::Op::Set;
  u.value = m->value;
  if (m->label_count > 32) return BB_ERR_LIMIT;
  for (size_t i = 0; i < m->label_count; ++i) {
    if (!m->label_names || !m->label_values || !m->label_names[i] || !m->label_values[i])
      return BB_ERR_INVALID;
    u.labels.emplace_back(m->label_names[i], m->label_values[i]);
  }
  const MetricResult result = services_.metrics->applyPluginMetric(name(), u);
  // Marked for history (ABI 1.1): the history records the gauge's value, null once removed.
  const bool history = m->struct_size >= offsetof(bb_metric, flags) + sizeof(uint32_t) &&
                       (m->flags & BB_METRIC_FLAG_HISTORY) && !u.counter;
  if (result.ok() && history && services_.history_marks && u.op != MetricUpdate::Op::Add) {
    std::string series = name() + "." + u.name;
    for (const auto& l : u.labels) series += ":" + l.second;
    services_.history_marks->set(series, u.op == MetricUpdate::Op::Remove ? NAN : u.value,
                                 staleAfter());
  }
  if (result.ok()) return BB_OK;
  logDebug("plugin:" + name(), "metric refused: " + result.why);
  return result.code == MetricResult::Code::SeriesCap ? BB_ERR_LIMIT : BB_ERR_INVALID;
}

int PluginRuntime::hostFeature(const char* feature, double value) {
  std::string f = text(feature);
  if (!validFeatureName(f)) {
    logWarn("plugin:" + name(), "feature '" + f +
                                    "' refused: a feature name is [a-z0-9_] words "
                                    "joined by dots, e.g. per_second.compute");
    return BB_ERR_INVALID;
  }
  services_.features->set(name() + "." + f, value);
  return BB_OK;
}

int PluginRuntime::hostServe(const char* path, bb_route_fn fn, void* ctx) {
  if (!fn || !path) return BB_ERR_INVALID;
  // A plugin in its own process answers over IPC: the HTTP server must not wait for it on an
  // event loop (ServerOptions::offload, DashboardApi::mayBlock).
  std::string why = services_.routes->add(path, name(), fn, ctx, config_.isolation == "process");
  if (why.empty()) return BB_OK;
  logWarn("plugin:" + name(), "serve refused: " + why);
  return BB_ERR_INVALID;
}

const char* PluginRuntime::hostStateDir() {
  return state_dir_.empty() ? nullptr : state_dir_.c_str();
}

}  // namespace bb
