// A fake host for testing a plugin without the agent or a node. Header-only C++17, on top of the
// ABI (plugin_abi.h) and the wrapper (plugin.h): it changes neither. It implements every function
// of bb_host_api, so a plugin runs through the same C entry points the agent calls:
//
//   #include <blockbuster/testing.h>
//   blockbuster::testing::FakeHost host;
//   host.answer("light.latest_header", {{"height", 7}});          // scripted RPC answers
//   blockbuster::testing::PluginRunner plugin(bb_plugin_entry(), host);
//   plugin.create({{"greeting", "hi"}});                            // options over the defaults
//   plugin.collect();                                               // BB_OK, or see error()
//   host.section("hello")["height"];                                // what it published
//   host.value("hello_chain_height");                               // a metric series, if set
//
// Framework-agnostic (no test framework is included): use it from GoogleTest, Catch2 or main().
// Unscripted methods answer JSON-RPC -32601 (method not found), as the real node does for a
// method it lacks or an unauthorised call. The SDK lends no clock: a plugin that needs time
// reads it itself (make it replaceable to test it).
//
// Thread-safety: every host function may be called from any thread, as with the agent; the
// inspection functions return copies. RPC handlers run without the host's lock held.
#ifndef BLOCKBUSTER_TESTING_H_
#define BLOCKBUSTER_TESTING_H_

#include <blockbuster/json.h>
#include <blockbuster/plugin.h>
#include <blockbuster/plugin_abi.h>
#include <dlfcn.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

/// The entry of a plugin compiled into the test itself (BLOCKBUSTER_PLUGIN defines it).
extern "C" BB_PLUGIN_EXPORT const bb_plugin* bb_plugin_entry(void);

namespace blockbuster::testing {

/// A scripted answer to one RPC call, as the agent hands it to a plugin.
struct Reply {
  int status = BB_OK;  ///< a bb_status
  Json value;          ///< the result when BB_OK, else the error object {"code","message"}

  /// The node answered `result`.
  static Reply result(Json result) { return Reply{BB_OK, std::move(result)}; }
  /// The node answered a JSON-RPC error (BB_ERR_RPC).
  static Reply rpcError(int64_t code, const std::string& message) {
    return Reply{BB_ERR_RPC, Json{{"code", code}, {"message", message}}};
  }
  /// The node does not serve the method (JSON-RPC -32601).
  static Reply methodNotFound() { return rpcError(-32601, "Method not found"); }
  /// The call failed without an answer: BB_ERR_TRANSPORT, BB_ERR_TIMEOUT, BB_ERR_LIMIT, ...
  static Reply failure(int status, const std::string& message) {
    return Reply{status, Json{{"code", 0}, {"message", message}}};
  }
};

/// One call the plugin made.
struct RecordedCall {
  std::string method;
  Json params;
  size_t batch = 0;  ///< calls of one rpcMany share a batch number; a lone call has its own
};

/// One metric update the plugin made (bb_metric, copied).
struct MetricUpdate {
  std::string name;
  std::string help;
  uint32_t kind = BB_METRIC_GAUGE;
  uint32_t op = BB_METRIC_SET;
  double value = 0;
  Labels labels;
  uint32_t flags = 0;
};

/// One log line.
struct LogLine {
  LogLevel level;
  std::string message;
};

/// What a route answered.
struct RouteAnswer {
  int status = 0;
  std::string body;
  Json json() const { return Json::parse(body); }
};

/// The agent's side of bb_host_api, scripted and recorded. Not copyable: the plugin keeps a
/// pointer to it until destroy.
class FakeHost {
 public:
  using Handler = std::function<Reply(const Json& params)>;

  FakeHost() {
    api_.struct_size = sizeof(bb_host_api);
    api_.abi_major = BB_ABI_VERSION_MAJOR;
    api_.abi_minor = BB_ABI_VERSION_MINOR;
    api_.log = &FakeHost::logFn;
    api_.rpc_call = &FakeHost::rpcCallFn;
    api_.rpc_call_many = &FakeHost::rpcCallManyFn;
    api_.publish = &FakeHost::publishFn;
    api_.publish_error = &FakeHost::publishErrorFn;
    api_.metric = &FakeHost::metricFn;
    api_.feature = &FakeHost::featureFn;
    api_.serve = &FakeHost::serveFn;
    api_.state_dir = &FakeHost::stateDirFn;
  }
  FakeHost(const FakeHost&) = delete;
  FakeHost& operator=(const FakeHost&) = delete;

  // ---- scripting the node ----------------------------------------------------------------

  /// `method` answers `result` (whatever the params).
  FakeHost& answer(const std::string& method, Json result) {
    return on(method, [r = Reply::result(std::move(result))](const Json&) { return r; });
  }
  /// `method` answers `reply` (an error or a failure).
  FakeHost& reply(const std::string& method, Reply scripted) {
    return on(method, [r = std::move(scripted)](const Json&) { return r; });
  }
  /// `method` answers what `handler` returns for the call's params (paging, changing answers).
  FakeHost& on(const std::string& method, Handler handler) {
    std::lock_guard<std::mutex> lock(mu_);
    handlers_[method] = std::make_shared<Handler>(std::move(handler));
    return *this;
  }
  /// `method` is no longer scripted: it answers -32601 again.
  FakeHost& unscript(const std::string& method) {
    std::lock_guard<std::mutex> lock(mu_);
    handlers_.erase(method);
    return *this;
  }

  // ---- what the plugin did -----------------------------------------------------------------

  /// Every call, in order.
  std::vector<RecordedCall> calls() const {
    std::lock_guard<std::mutex> lock(mu_);
    return calls_;
  }
  /// How many times `method` was called.
  size_t callCount(const std::string& method) const {
    std::lock_guard<std::mutex> lock(mu_);
    size_t n = 0;
    for (const auto& c : calls_) n += c.method == method;
    return n;
  }
  /// The methods of batch `index` (0 is the first), in order; empty when there is none.
  std::vector<std::string> batch(size_t index) const {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::string> out;
    for (const auto& c : calls_)
      if (c.batch == index) out.push_back(c.method);
    return out;
  }
  /// Batches so far (rpcMany calls and lone calls).
  size_t batchCount() const {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_;
  }

  /// Whether section `name` (without the "<plugin>." prefix) was published.
  bool published(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    return sections_.count(name) > 0;
  }
  /// The last body of section `name`; throws std::out_of_range naming it when never published.
  Json section(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = sections_.find(name);
    if (it == sections_.end()) throw std::out_of_range("section " + name + " was never published");
    return it->second;
  }
  /// How many times section `name` was published.
  size_t publishCount(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = publish_counts_.find(name);
    return it == publish_counts_.end() ? 0 : it->second;
  }
  /// The reason of the last publishError of `name`, if any.
  std::optional<std::string> staleReason(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = stale_.find(name);
    if (it == stale_.end()) return std::nullopt;
    return it->second;
  }

  /// Every metric update, in order.
  std::vector<MetricUpdate> metricUpdates() const {
    std::lock_guard<std::mutex> lock(mu_);
    return metric_updates_;
  }
  /// The last update of series `name` with label values `labels` (in order); nullopt if none.
  std::optional<MetricUpdate> lastMetric(const std::string& name, const Labels& labels = {}) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = metric_updates_.rbegin(); it != metric_updates_.rend(); ++it)
      if (it->name == name && it->labels == labels) return *it;
    return std::nullopt;
  }
  /// The value series `name{labels}` holds now, as the agent would export it: nullopt when it
  /// was never set or was removed (a NaN value removes it: unknown is absent, never 0).
  std::optional<double> value(const std::string& name, const Labels& labels = {}) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = series_.find({name, labels});
    if (it == series_.end()) return std::nullopt;
    return it->second;
  }

  /// Features set so far (name without the "<plugin>." prefix -> last value, NaN = unknown).
  std::map<std::string, double> features() const {
    std::lock_guard<std::mutex> lock(mu_);
    return features_;
  }
  /// The last value of feature `name`; nullopt when never set.
  std::optional<double> feature(const std::string& name) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = features_.find(name);
    if (it == features_.end()) return std::nullopt;
    return it->second;
  }

  /// Every log line, in order.
  std::vector<LogLine> logs() const {
    std::lock_guard<std::mutex> lock(mu_);
    return logs_;
  }
  /// Whether a line containing `text` was logged (at `level`, when given).
  bool logged(const std::string& text, std::optional<LogLevel> level = std::nullopt) const {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& l : logs_)
      if ((!level || l.level == *level) && l.message.find(text) != std::string::npos) return true;
    return false;
  }

  /// Forgets what was recorded (calls, sections, metrics, features, logs); keeps the scripts,
  /// the routes and the series' current values.
  void clearRecords() {
    std::lock_guard<std::mutex> lock(mu_);
    calls_.clear();
    sections_.clear();
    publish_counts_.clear();
    stale_.clear();
    metric_updates_.clear();
    features_.clear();
    logs_.clear();
  }

  // ---- routes ------------------------------------------------------------------------------

  /// Whether the plugin registered route `path`.
  bool serves(const std::string& path) const {
    std::lock_guard<std::mutex> lock(mu_);
    return routes_.count(path) > 0;
  }
  /// Calls route `path` once as the agent's event loop or worker would (`may_block`).
  RouteAnswer request(const std::string& path,
                      const std::vector<std::pair<std::string, std::string>>& query = {},
                      bool may_block = true) const {
    Route route;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = routes_.find(path);
      if (it == routes_.end()) throw std::out_of_range("no route " + path);
      route = it->second;
    }
    std::vector<const char*> keys, values;
    for (const auto& kv : query) {
      keys.push_back(kv.first.c_str());
      values.push_back(kv.second.c_str());
    }
    bb_request req{sizeof(bb_request), path.c_str(), keys.data(),
                   values.data(),      query.size(), may_block ? 1u : 0u};
    RouteAnswer out;
    out.status = route.fn(route.ctx, &req, &FakeHost::appendSink, &out.body);
    return out;
  }
  /// GET `path` as the agent serves it: on an event loop first, then, when the handler defers,
  /// again where it may block.
  RouteAnswer get(const std::string& path,
                  const std::vector<std::pair<std::string, std::string>>& query = {}) const {
    RouteAnswer a = request(path, query, false);
    if (a.status == BB_STATUS_DEFER) a = request(path, query, true);
    return a;
  }

  // ---- what the host lends -----------------------------------------------------------------

  /// The directory stateDir() returns ("" until set: set it to a scratch folder of the test).
  void setStateDir(std::string dir) {
    std::lock_guard<std::mutex> lock(mu_);
    state_dir_ = std::move(dir);
  }

  /// The C handles a plugin's create() takes.
  bb_host* handle() noexcept { return reinterpret_cast<bb_host*>(this); }
  const bb_host_api* api() const noexcept { return &api_; }

  /// A blockbuster::Host over this fake with `config` as its options, for code that takes a
  /// Host& directly (a plugin class, glue functions). Valid as long as this FakeHost.
  Host& host(Json config = Json::object()) {
    hosts_.push_back(std::make_unique<Host>(handle(), api(), std::move(config)));
    return *hosts_.back();
  }

 private:
  struct Route {
    bb_route_fn fn = nullptr;
    void* ctx = nullptr;
  };

  static FakeHost& self(bb_host* h) { return *reinterpret_cast<FakeHost*>(h); }
  static void appendSink(void* ctx, const char* data, size_t len) {
    static_cast<std::string*>(ctx)->append(data, len);
  }
  static bool validMetricName(const char* name) {
    if (!name || !*name) return false;
    const std::string n(name);
    if (n.rfind("blockbuster_", 0) == 0 || n.rfind("process_", 0) == 0) return false;
    for (size_t i = 0; i < n.size(); ++i) {
      const char c = n[i];
      const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
      if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
    }
    return true;
  }

  // Answers one call; records it in `batch`. The handler runs without the lock.
  int answerCall(const char* method, const char* params_json, size_t batch, bb_sink_fn sink,
                 void* sink_ctx) {
    Json params = Json::object();
    std::shared_ptr<Handler> handler;
    const std::string name = method ? method : "";
    try {
      if (params_json && *params_json) params = Json::parse(params_json);
    } catch (const JsonError& e) {
      Reply bad = Reply::failure(BB_ERR_INVALID, std::string("params are not JSON: ") + e.what());
      const std::string text = bad.value.dump();
      if (sink) sink(sink_ctx, text.data(), text.size());
      return bad.status;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      calls_.push_back(RecordedCall{name, params, batch});
      auto it = handlers_.find(name);
      if (it != handlers_.end()) handler = it->second;
    }
    Reply r = Reply::methodNotFound();
    if (handler) {
      try {
        r = (*handler)(params);
      } catch (const std::exception& e) {
        r = Reply::failure(BB_ERR_INTERNAL, std::string("the test's handler threw: ") + e.what());
      }
    }
    const std::string text = r.value.dump();
    if (sink) sink(sink_ctx, text.data(), text.size());
    return r.status;
  }
  size_t nextBatch() {
    std::lock_guard<std::mutex> lock(mu_);
    return batches_++;
  }

  static void logFn(bb_host* h, int level, const char* message) {
    FakeHost& f = self(h);
    std::lock_guard<std::mutex> lock(f.mu_);
    f.logs_.push_back(LogLine{static_cast<LogLevel>(level), message ? message : ""});
  }
  static int rpcCallFn(bb_host* h, const char* method, const char* params, bb_sink_fn sink,
                       void* sink_ctx) {
    FakeHost& f = self(h);
    return f.answerCall(method, params, f.nextBatch(), sink, sink_ctx);
  }
  static int rpcCallManyFn(bb_host* h, bb_rpc_request* requests, size_t count) {
    FakeHost& f = self(h);
    const size_t batch = f.nextBatch();
    for (size_t i = 0; i < count; ++i)
      requests[i].status = f.answerCall(requests[i].method, requests[i].params_json, batch,
                                        requests[i].sink, requests[i].sink_ctx);
    return BB_OK;
  }
  static int publishFn(bb_host* h, const char* section, const char* json, size_t len) {
    FakeHost& f = self(h);
    Json body;
    try {
      body = Json::parse(std::string(json, len));
    } catch (const JsonError&) {
      return BB_ERR_INVALID;
    }
    if (!section || !*section || !body.isObject()) return BB_ERR_INVALID;
    std::lock_guard<std::mutex> lock(f.mu_);
    f.sections_[section] = std::move(body);
    f.publish_counts_[section]++;
    f.stale_.erase(section);
    return BB_OK;
  }
  static int publishErrorFn(bb_host* h, const char* section, const char* reason) {
    FakeHost& f = self(h);
    if (!section || !*section) return BB_ERR_INVALID;
    std::lock_guard<std::mutex> lock(f.mu_);
    f.stale_[section] = reason ? reason : "";
    return BB_OK;
  }
  static int metricFn(bb_host* h, const bb_metric* m) {
    FakeHost& f = self(h);
    if (!m || !validMetricName(m->name)) return BB_ERR_INVALID;
    MetricUpdate u;
    u.name = m->name;
    u.help = m->help ? m->help : "";
    u.kind = m->kind;
    u.op = m->op;
    u.value = m->value;
    for (size_t i = 0; i < m->label_count; ++i)
      u.labels.emplace_back(m->label_names[i], m->label_values[i]);
    // A 1.0 plugin's struct ends before `flags`.
    if (m->struct_size >= offsetof(bb_metric, flags) + sizeof(m->flags)) u.flags = m->flags;
    std::lock_guard<std::mutex> lock(f.mu_);
    const std::pair<std::string, Labels> key{u.name, u.labels};
    if (u.op == BB_METRIC_REMOVE || std::isnan(u.value))
      f.series_.erase(key);
    else if (u.op == BB_METRIC_ADD)
      f.series_[key] += u.value;
    else
      f.series_[key] = u.value;
    f.metric_updates_.push_back(std::move(u));
    return BB_OK;
  }
  static int featureFn(bb_host* h, const char* name, double value) {
    FakeHost& f = self(h);
    if (!name || !*name) return BB_ERR_INVALID;
    std::lock_guard<std::mutex> lock(f.mu_);
    f.features_[name] = value;
    return BB_OK;
  }
  static int serveFn(bb_host* h, const char* path, bb_route_fn handler, void* ctx) {
    FakeHost& f = self(h);
    if (!path || path[0] != '/' || !handler) return BB_ERR_INVALID;
    std::lock_guard<std::mutex> lock(f.mu_);
    if (f.routes_.count(path)) return BB_ERR_INVALID;
    f.routes_[path] = Route{handler, ctx};
    return BB_OK;
  }
  static const char* stateDirFn(bb_host* h) {
    FakeHost& f = self(h);
    std::lock_guard<std::mutex> lock(f.mu_);
    return f.state_dir_.c_str();
  }

  bb_host_api api_{};
  mutable std::mutex mu_;
  std::map<std::string, std::shared_ptr<Handler>> handlers_;
  std::vector<RecordedCall> calls_;
  size_t batches_ = 0;
  std::map<std::string, Json> sections_;
  std::map<std::string, size_t> publish_counts_;
  std::map<std::string, std::string> stale_;
  std::vector<MetricUpdate> metric_updates_;
  std::map<std::pair<std::string, Labels>, double> series_;
  std::map<std::string, double> features_;
  std::vector<LogLine> logs_;
  std::map<std::string, Route> routes_;
  std::string state_dir_;
  std::vector<std::unique_ptr<Host>> hosts_;
};

/// A plugin built as a .so, loaded as the agent loads it (dlopen, then bb_plugin_entry).
class PluginLibrary {
 public:
  /// Throws std::runtime_error naming the file and what failed.
  explicit PluginLibrary(const std::string& path) {
    lib_ = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!lib_) throw std::runtime_error("cannot load " + path + ": " + dlerror());
    auto entry = reinterpret_cast<bb_plugin_entry_fn>(dlsym(lib_, BB_PLUGIN_ENTRY_SYMBOL));
    plugin_ = entry ? entry() : nullptr;
    if (!plugin_) {
      dlclose(lib_);
      throw std::runtime_error(path + " has no " BB_PLUGIN_ENTRY_SYMBOL
                                      " or its entry returned NULL");
    }
  }
  PluginLibrary(const PluginLibrary&) = delete;
  PluginLibrary& operator=(const PluginLibrary&) = delete;
  ~PluginLibrary() { dlclose(lib_); }

  const bb_plugin* plugin() const noexcept { return plugin_; }

 private:
  void* lib_ = nullptr;
  const bb_plugin* plugin_ = nullptr;
};

/// One instance of a plugin on a FakeHost, driven through its C entry points (create, collect,
/// destroy) as the agent drives it. Destroys the instance when it goes.
class PluginRunner {
 public:
  /// `plugin` from bb_plugin_entry() (compiled into the test) or PluginLibrary::plugin().
  PluginRunner(const bb_plugin* plugin, FakeHost& host) : plugin_(plugin), host_(host) {
    if (!plugin_) throw std::invalid_argument("PluginRunner: no plugin descriptor");
  }
  PluginRunner(const PluginRunner&) = delete;
  PluginRunner& operator=(const PluginRunner&) = delete;
  ~PluginRunner() { destroy(); }

  const bb_plugin& descriptor() const noexcept { return *plugin_; }

  /// The declared config keys with their defaults (a key without a default is absent).
  Json defaults() const {
    Json c = Json::object();
    for (uint32_t i = 0; i < plugin_->config_key_count; ++i) {
      const bb_config_key& k = plugin_->config_keys[i];
      if (k.default_json) c[k.name] = Json::parse(k.default_json);
    }
    return c;
  }

  /// Creates the instance with the declared defaults, `options` over them, as the agent does.
  /// False (the reason in error()) when an option is not declared or create() refused.
  bool create(const Json& options = Json::object()) {
    destroy();
    error_.clear();
    Json config = defaults();
    if (!options.isObject()) {
      error_ = "options must be an object";
      return false;
    }
    for (const auto& [key, value] : options.asObject()) {
      if (!declared(key)) {
        error_ = "unknown option " + key + " (the agent refuses an undeclared key)";
        return false;
      }
      config[key] = value;
    }
    const std::string text = config.dump();
    instance_ = plugin_->create(host_.handle(), host_.api(), text.c_str(),
                                &PluginRunner::appendSink, &error_);
    return instance_ != nullptr;
  }

  /// One collect; BB_OK or the failure's status, with its reason in error().
  int collect() {
    if (!instance_) throw std::logic_error("PluginRunner::collect before a successful create");
    error_.clear();
    return plugin_->collect(instance_, &PluginRunner::appendSink, &error_);
  }

  /// Destroys the instance (no-op when there is none).
  void destroy() {
    if (instance_) plugin_->destroy(instance_);
    instance_ = nullptr;
  }

  /// The reason of the last failed create() or collect().
  const std::string& error() const noexcept { return error_; }

 private:
  static void appendSink(void* ctx, const char* data, size_t len) {
    static_cast<std::string*>(ctx)->append(data, len);
  }
  bool declared(const std::string& key) const {
    for (uint32_t i = 0; i < plugin_->config_key_count; ++i)
      if (key == plugin_->config_keys[i].name) return true;
    return false;
  }

  const bb_plugin* plugin_;
  FakeHost& host_;
  void* instance_ = nullptr;
  std::string error_;
};

}  // namespace blockbuster::testing

#endif  // BLOCKBUSTER_TESTING_H_
