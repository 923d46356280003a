// Header-only C++17 wrapper over plugin_abi.h. A plugin author's whole file can be:
//
//   #include <blockbuster/plugin.h>
//   class Hello final : public blockbuster::Plugin {
//    public:
//     explicit Hello(blockbuster::Host& host) : host_(host) {}
//     void collect() override {
//       auto header = host_.rpc("light.latest_header");
//       host_.publish("hello", {{"height", header["height"]}});
//     }
//    private:
//     blockbuster::Host& host_;
//   };
//   BLOCKBUSTER_PLUGIN(Hello, "hello", "1.0.0", "Reports the chain height.")
//
// Everything here compiles into the plugin; only the C structs of plugin_abi.h cross into the
// agent. Every entry point the agent calls is wrapped in try/catch: an exception never escapes.
#ifndef BLOCKBUSTER_PLUGIN_H_
#define BLOCKBUSTER_PLUGIN_H_

#include <blockbuster/json.h>
#include <blockbuster/plugin_abi.h>

#include <cmath>
#include <exception>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace blockbuster {

enum class LogLevel {
  Debug = BB_LOG_DEBUG,
  Info = BB_LOG_INFO,
  Warn = BB_LOG_WARN,
  Error = BB_LOG_ERROR
};

/// A failed RPC call: `status` is a bb_status, `code` the JSON-RPC error code when the node
/// answered with one (e.g. -32601 method not found), else 0.
class RpcError : public std::runtime_error {
 public:
  RpcError(int status, int64_t code, const std::string& message)
      : std::runtime_error(message), status_(status), code_(code) {}
  int status() const noexcept { return status_; }
  int64_t code() const noexcept { return code_; }
  /// The node does not serve this method (or refused it as unauthorised, as the real node does).
  bool methodNotFound() const noexcept { return status_ == BB_ERR_RPC && code_ == -32601; }

 private:
  int status_;
  int64_t code_;
};

/// Outcome of one call of Host::rpcMany: either `value` (ok) or `error`.
struct RpcResult {
  bool ok = false;
  Json value;
  int status = BB_ERR_INTERNAL;
  int64_t code = 0;
  std::string message;
  bool methodNotFound() const noexcept { return status == BB_ERR_RPC && code == -32601; }
  /// Throws the RpcError this result holds (no-op when ok).
  void check() const {
    if (!ok) throw RpcError(status, code, message);
  }
};

/// One call for Host::rpcMany.
struct RpcCall {
  std::string method;
  Json params = Json::object();
};

/// Label set of a metric series, in order.
using Labels = std::vector<std::pair<std::string, std::string>>;

/// A request to a route registered with Host::serve.
struct Request {
  std::string path;
  std::vector<std::pair<std::string, std::string>> query;
  /// False on an HTTP event loop: answer from memory, or return Response::defer() to be called
  /// again on a worker with may_block true (bb_request::may_block). True from an older agent.
  bool may_block = true;
  /// The first value of `key`, or nullptr.
  const std::string* param(std::string_view key) const {
    for (const auto& kv : query)
      if (kv.first == key) return &kv.second;
    return nullptr;
  }
};

/// What a route returns: an HTTP status and a JSON body.
struct Response {
  int status = 200;
  std::string body;  // JSON text
  static Response json(const Json& j, int status = 200) { return Response{status, j.dump()}; }
  /// "Call me again where I may block" (only when Request::may_block is false).
  static Response defer() { return Response{BB_STATUS_DEFER, ""}; }
  static Response error(int status, std::string_view code, std::string_view message) {
    Json e{{"error", Json{{"code", std::string(code)}, {"message", std::string(message)}}}};
    return Response{status, e.dump()};
  }
};

/// A config key a plugin declares (see Plugin::configKeys()).
struct ConfigKey {
  std::string name;
  int type;                  // bb_config_type
  std::string default_json;  // JSON text of the default, "" for none
  std::string help;
};

namespace detail {
inline void appendSink(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
}
inline RpcResult toResult(int status, const std::string& text) {
  RpcResult r;
  r.status = status;
  if (status == BB_OK) {
    r.ok = true;
    r.value = Json::parse(text);  // the agent has already checked it is JSON
    return r;
  }
  try {
    Json e = Json::parse(text);
    if (e["code"].isNumber()) r.code = e["code"].asInt();
    if (e["message"].isString()) r.message = e["message"].asString();
  } catch (const JsonError&) {
    r.message = text;
  }
  if (r.message.empty()) r.message = "rpc call failed (status " + std::to_string(status) + ")";
  return r;
}
}  // namespace detail

/// The agent's services, as lent to one plugin instance. Thread-safe. Valid until destroy.
class Host {
 public:
  Host(bb_host* host, const bb_host_api* api, Json config)
      : host_(host), api_(api), config_(std::move(config)) {}
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  /// The plugin's options (validated against its declared keys, defaults applied).
  const Json& config() const noexcept { return config_; }

  void log(LogLevel level, const std::string& message) const {
    api_->log(host_, static_cast<int>(level), message.c_str());
  }
  void debug(const std::string& m) const { log(LogLevel::Debug, m); }
  void info(const std::string& m) const { log(LogLevel::Info, m); }
  void warn(const std::string& m) const { log(LogLevel::Warn, m); }
  void error(const std::string& m) const { log(LogLevel::Error, m); }

  /// Calls a method and returns its result; throws RpcError on any failure.
  Json rpc(const std::string& method, const Json& params = Json::object()) const {
    RpcResult r = tryRpc(method, params);
    r.check();
    return std::move(r.value);
  }
  /// Calls a method; never throws for a failed call.
  RpcResult tryRpc(const std::string& method, const Json& params = Json::object()) const {
    std::string out;
    std::string p = params.dump();
    int status = api_->rpc_call(host_, method.c_str(), p.c_str(), &detail::appendSink, &out);
    return detail::toResult(status, out);
  }
  /// Calls several methods concurrently; results in the order of `calls`.
  std::vector<RpcResult> rpcMany(const std::vector<RpcCall>& calls) const {
    std::vector<std::string> params(calls.size()), outs(calls.size());
    std::vector<bb_rpc_request> reqs(calls.size());
    for (size_t i = 0; i < calls.size(); ++i) {
      params[i] = calls[i].params.dump();
      reqs[i] = bb_rpc_request{sizeof(bb_rpc_request),
                               calls[i].method.c_str(),
                               params[i].c_str(),
                               &detail::appendSink,
                               &outs[i],
                               BB_ERR_INTERNAL};
    }
    api_->rpc_call_many(host_, reqs.data(), reqs.size());
    std::vector<RpcResult> results;
    results.reserve(calls.size());
    for (size_t i = 0; i < calls.size(); ++i)
      results.push_back(detail::toResult(reqs[i].status, outs[i]));
    return results;
  }

  /// Publishes (replaces) section "<plugin>.<section>" of the dashboard.
  void publish(const std::string& section, const Json& body) const {
    std::string text = body.dump();
    check(api_->publish(host_, section.c_str(), text.data(), text.size()), "publish " + section);
  }
  /// Keeps the last data of a section but marks it stale, with a reason.
  void publishError(const std::string& section, const std::string& reason) const {
    api_->publish_error(host_, section.c_str(), reason.c_str());
  }

  /// Sets a gauge. A NaN value removes the series (unknown is absent, never 0).
  void gauge(const std::string& name, const std::string& help, double value,
             const Labels& labels = {}) const {
    metric(name, help, BB_METRIC_GAUGE, std::isnan(value) ? BB_METRIC_REMOVE : BB_METRIC_SET, value,
           labels);
  }
  /// Sets a gauge the agent also keeps in its history (GET /theblock/history, the page's
  /// charts), as series "<plugin>.<name>". A NaN value removes the series (recorded as null).
  /// An agent older than ABI 1.1 exports it as a plain gauge.
  void historyGauge(const std::string& name, const std::string& help, double value,
                    const Labels& labels = {}) const {
    metric(name, help, BB_METRIC_GAUGE, std::isnan(value) ? BB_METRIC_REMOVE : BB_METRIC_SET, value,
           labels, BB_METRIC_FLAG_HISTORY);
  }
  /// Sets a counter to an absolute total the node reports (e.g. bytes sent since start).
  void counterTotal(const std::string& name, const std::string& help, double total,
                    const Labels& labels = {}) const {
    metric(name, help, BB_METRIC_COUNTER, std::isnan(total) ? BB_METRIC_REMOVE : BB_METRIC_SET,
           total, labels);
  }
  /// Adds to a counter.
  void counterAdd(const std::string& name, const std::string& help, double delta,
                  const Labels& labels = {}) const {
    metric(name, help, BB_METRIC_COUNTER, BB_METRIC_ADD, delta, labels);
  }
  /// Removes a series (the value became unknown).
  void removeMetric(const std::string& name, const Labels& labels = {}) const {
    metric(name, "", BB_METRIC_GAUGE, BB_METRIC_REMOVE, 0, labels);
  }

  /// Sets feature "<plugin>.<name>" of the feature stream; NaN = unknown.
  void feature(const std::string& name, double value) const {
    api_->feature(host_, name.c_str(), value);
  }

  /// Registers a GET route. The handler runs on the agent's HTTP event loops, concurrently: it
  /// must be thread-safe, must not call the node, and must answer from memory without blocking
  /// (a blocked handler holds up the other requests of its loop). A handler that sometimes needs
  /// a file or a database answers Response::defer() when Request::may_block is false: the agent
  /// calls it again on a bounded worker pool (ABI 1.1). Call from the constructor.
  void serve(const std::string& path, std::function<Response(const Request&)> handler) {
    routes_.push_back(std::make_unique<Route>(Route{std::move(handler)}));
    check(api_->serve(host_, path.c_str(), &Host::routeTrampoline, routes_.back().get()),
          "serve " + path);
  }

  /// The C handles behind this wrapper, for a host function it does not cover yet (a member
  /// appended in a later minor version: check api()->struct_size before using it).
  bb_host* handle() const noexcept { return host_; }
  const bb_host_api* api() const noexcept { return api_; }

  /// A directory for state kept across restarts.
  std::string stateDir() const {
    const char* d = api_->state_dir(host_);
    return d ? d : "";
  }

 private:
  struct Route {
    std::function<Response(const Request&)> handler;
  };
  static int routeTrampoline(void* ctx, const bb_request* req, bb_sink_fn sink, void* sink_ctx) {
    Response resp;
    try {
      Request r;
      r.path = req->path ? req->path : "";
      if (req->struct_size >= offsetof(bb_request, may_block) + sizeof(req->may_block))
        r.may_block = req->may_block != 0;
      for (size_t i = 0; i < req->query_count; ++i)
        r.query.emplace_back(req->query_keys[i], req->query_values[i]);
      resp = static_cast<Route*>(ctx)->handler(r);
    } catch (const std::exception& e) {
      resp = Response::error(500, "plugin_error", e.what());
    } catch (...) {
      resp = Response::error(500, "plugin_error", "unknown exception");
    }
    sink(sink_ctx, resp.body.data(), resp.body.size());
    return resp.status;
  }
  void metric(const std::string& name, const std::string& help, int kind, int op, double value,
              const Labels& labels, uint32_t flags = 0) const {
    std::vector<const char*> names, values;
    for (const auto& kv : labels) {
      names.push_back(kv.first.c_str());
      values.push_back(kv.second.c_str());
    }
    bb_metric m{sizeof(bb_metric),
                name.c_str(),
                help.c_str(),
                static_cast<uint32_t>(kind),
                static_cast<uint32_t>(op),
                names.data(),
                values.data(),
                labels.size(),
                value,
                flags};
    api_->metric(host_, &m);
  }
  static void check(int status, const std::string& what) {
    if (status != BB_OK)
      throw std::runtime_error(what + " refused by the agent (status " + std::to_string(status) +
                               ")");
  }

  bb_host* host_;
  const bb_host_api* api_;
  Json config_;
  std::vector<std::unique_ptr<Route>> routes_;
};

/// Base class of a C++ plugin. The subclass has a constructor taking `Host&`.
/// A subclass may declare `static std::vector<blockbuster::ConfigKey> configKeys();`.
class Plugin {
 public:
  virtual ~Plugin() = default;
  /// Collects once; throw to report a failure (the agent logs, counts and marks sections stale).
  virtual void collect() = 0;
};

namespace detail {

template <typename T, typename = void>
struct HasConfigKeys : std::false_type {};
template <typename T>
struct HasConfigKeys<T, std::void_t<decltype(T::configKeys())>> : std::true_type {};

struct Instance {
  std::unique_ptr<Host> host;
  std::unique_ptr<Plugin> plugin;
};

inline void sinkText(bb_sink_fn sink, void* ctx, const std::string& text) {
  if (sink) sink(ctx, text.data(), text.size());
}

/// Backs the C bb_plugin struct of one plugin class (one per .so).
template <typename T>
struct Entry {
  static const bb_plugin* get(const char* name, const char* version, const char* description) {
    static Entry entry(name, version, description);
    return &entry.plugin;
  }

 private:
  Entry(const char* name, const char* version, const char* description) {
    if constexpr (HasConfigKeys<T>::value) keys = T::configKeys();
    for (const auto& k : keys)
      cKeys.push_back(
          bb_config_key{sizeof(bb_config_key), k.name.c_str(), static_cast<uint32_t>(k.type),
                        k.default_json.empty() ? nullptr : k.default_json.c_str(), k.help.c_str()});
    plugin = bb_plugin{sizeof(bb_plugin),
                       BB_ABI_VERSION_MAJOR,
                       BB_ABI_VERSION_MINOR,
                       name,
                       version,
                       description,
                       cKeys.empty() ? nullptr : cKeys.data(),
                       static_cast<uint32_t>(cKeys.size()),
                       &create,
                       &collect,
                       &destroy};
  }
  static void* create(bb_host* host, const bb_host_api* api, const char* config_json,
                      bb_sink_fn error_sink, void* error_ctx) {
    try {
      auto inst = std::make_unique<Instance>();
      Json config = (config_json && *config_json) ? Json::parse(config_json) : Json::object();
      inst->host = std::make_unique<Host>(host, api, std::move(config));
      inst->plugin = std::make_unique<T>(*inst->host);
      return inst.release();
    } catch (const std::exception& e) {
      sinkText(error_sink, error_ctx, e.what());
    } catch (...) {
      sinkText(error_sink, error_ctx, "unknown exception in create");
    }
    return nullptr;
  }
  static int collect(void* instance, bb_sink_fn error_sink, void* error_ctx) {
    try {
      static_cast<Instance*>(instance)->plugin->collect();
      return BB_OK;
    } catch (const RpcError& e) {
      sinkText(error_sink, error_ctx, e.what());
      return e.status() == BB_OK ? BB_ERR_INTERNAL : e.status();
    } catch (const std::exception& e) {
      sinkText(error_sink, error_ctx, e.what());
    } catch (...) {
      sinkText(error_sink, error_ctx, "unknown exception in collect");
    }
    return BB_ERR_INTERNAL;
  }
  static void destroy(void* instance) noexcept {
    try {
      delete static_cast<Instance*>(instance);
    } catch (...) {
      // A destructor that throws cannot be reported anywhere; the instance is gone either way.
    }
  }

  std::vector<ConfigKey> keys;
  std::vector<bb_config_key> cKeys;
  bb_plugin plugin{};
};

}  // namespace detail
}  // namespace blockbuster

/// Declares the plugin class of this .so and exports its entry symbol.
#define BLOCKBUSTER_PLUGIN(Class, name, version, description)                      \
  extern "C" BB_PLUGIN_EXPORT const bb_plugin* bb_plugin_entry(void) {             \
    try {                                                                          \
      return ::blockbuster::detail::Entry<Class>::get(name, version, description); \
    } catch (...) {                                                                \
      return nullptr; /* the agent refuses a plugin whose entry returns NULL */    \
    }                                                                              \
  }

#endif  // BLOCKBUSTER_PLUGIN_H_
