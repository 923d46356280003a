// bb-plugin-runner: hosts one plugin in a process of its own, for a plugin configured with
// `isolation: process`. The agent starts it with its end of a socket pair on fd 3 and the
// plugin's file as the argument; the runner loads the plugin with the same checks as the agent,
// lends it a bb_host_api whose every function is a request to the agent over that socket
// (agent/ipc/protocol.h), and runs create / collect / destroy and route calls as the agent asks.
// If the plugin crashes, only this process dies; the agent restarts it with backoff.
//
// Not meant to be run by hand: `bb-plugin-runner --help` says so.
#include <blockbuster/plugin_abi.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "host/plugin_loader.h"
#include "ipc/channel.h"
#include "ipc/protocol.h"

namespace {

using bb::ipc::Channel;
using bb::ipc::Message;

// How long a host call may wait for the agent. The agent answers at once except for RPC calls,
// which its own collect deadline bounds; this only guards against an agent that stopped reading.
constexpr std::chrono::minutes kCallTimeout{5};
// Route calls served at once; more are answered 503 so that a flood cannot pile up threads.
constexpr int kMaxConcurrentRoutes = 32;

void appendTo(void* ctx, const char* data, size_t len) {
  static_cast<std::string*>(ctx)->append(data, len);
}

std::string number(double v) {
  if (std::isnan(v)) return "nan";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string text(const char* s) { return s ? s : ""; }

struct Route {
  bb_route_fn fn;
  void* ctx;
};

}  // namespace

// The opaque handle of plugin_abi.h, runner side: one per process.
struct bb_host {
  std::shared_ptr<bb::LoadedLibrary> library;
  std::unique_ptr<Channel> channel;
  std::string state_dir;
  void* instance = nullptr;

  std::mutex routes_mutex;
  std::map<std::string, Route> routes;
  std::atomic<int> routes_running{0};

  // Lifecycle requests run one at a time on the worker thread, in order: create() and
  // collect() call back into the agent, whose replies the reader thread must stay free to read.
  std::mutex queue_mutex;
  std::condition_variable queue_cv;
  std::deque<Message> queue;

  int status(uint8_t kind, std::vector<std::string> fields,
             std::vector<std::string>* out = nullptr) {
    auto reply = channel->call(kind, std::move(fields), kCallTimeout);
    if (!reply) return BB_ERR_SHUTDOWN;
    if (out) *out = std::move(reply->fields);
    return static_cast<int>(reply->integer(0, BB_ERR_INTERNAL));
  }
};

namespace {

int hostRpcMany(bb_host* h, bb_rpc_request* reqs, size_t n) {
  if (!reqs && n) return BB_ERR_INVALID;
  std::vector<std::string> fields;
  fields.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    fields.push_back(text(reqs[i].method));
    fields.push_back(reqs[i].params_json ? reqs[i].params_json : "{}");
  }
  std::vector<std::string> out;
  int overall = h->status(bb::ipc::kRpcMany, std::move(fields), &out);
  for (size_t i = 0; i < n; ++i) {
    bb_rpc_request& r = reqs[i];
    const size_t at = 1 + 2 * i;
    if (at + 1 < out.size()) {
      r.status = static_cast<int32_t>(std::strtol(out[at].c_str(), nullptr, 10));
      if (r.sink) r.sink(r.sink_ctx, out[at + 1].data(), out[at + 1].size());
    } else {
      r.status = overall == BB_OK ? BB_ERR_INTERNAL : overall;
      static const std::string kLost = bb::ipc::callFailureBody(
          "the agent did not answer this call (plugin process shutting down)");
      if (r.sink) r.sink(r.sink_ctx, kLost.data(), kLost.size());
    }
  }
  return overall;
}

const bb_host_api kHostApi = {
    sizeof(bb_host_api),
    BB_ABI_VERSION_MAJOR,
    BB_ABI_VERSION_MINOR,
    [](bb_host* h, int level, const char* msg) {
      h->status(bb::ipc::kLog, {std::to_string(level), text(msg)});
    },
    [](bb_host* h, const char* method, const char* params, bb_sink_fn sink, void* ctx) {
      bb_rpc_request r{sizeof(bb_rpc_request), method, params, sink, ctx, BB_ERR_INTERNAL};
      hostRpcMany(h, &r, 1);
      return static_cast<int>(r.status);
    },
    &hostRpcMany,
    [](bb_host* h, const char* section, const char* json, size_t len) {
      return h->status(bb::ipc::kPublish, {text(section), json ? std::string(json, len) : ""});
    },
    [](bb_host* h, const char* section, const char* reason) {
      return h->status(bb::ipc::kPublishError, {text(section), text(reason)});
    },
    [](bb_host* h, const bb_metric* m) {
      if (!m || m->struct_size < offsetof(bb_metric, value) + sizeof(double))
        return int{BB_ERR_INVALID};
      if (m->label_count && (!m->label_names || !m->label_values)) return int{BB_ERR_INVALID};
      const uint32_t flags =
          m->struct_size >= offsetof(bb_metric, flags) + sizeof(uint32_t) ? m->flags : 0;
      std::vector<std::string> f{text(m->name),         text(m->help),    std::to_string(m->kind),
                                 std::to_string(m->op), number(m->value), std::to_string(flags)};
      for (size_t i = 0; i < m->label_count; ++i) {
        f.push_back(text(m->label_names[i]));
        f.push_back(text(m->label_values[i]));
      }
      return h->status(bb::ipc::kMetric, std::move(f));
    },
    [](bb_host* h, const char* name, double value) {
      return h->status(bb::ipc::kFeature, {text(name), number(value)});
    },
    [](bb_host* h, const char* path, bb_route_fn fn, void* ctx) {
      if (!path || !fn) return int{BB_ERR_INVALID};
      int status = h->status(bb::ipc::kServe, {path});
      if (status == BB_OK) {
        std::lock_guard<std::mutex> lock(h->routes_mutex);
        h->routes[path] = Route{fn, ctx};
      }
      return status;
    },
    [](bb_host* h) { return h->state_dir.c_str(); },
};

void serveRoute(bb_host* h, const Message& m) {
  Route route{nullptr, nullptr};
  {
    std::lock_guard<std::mutex> lock(h->routes_mutex);
    auto it = h->routes.find(m.field(0));
    if (it != h->routes.end()) route = it->second;
  }
  if (!route.fn) {
    h->channel->reply(
        m.id, {"404", bb::ipc::routeErrorBody("not_found", "no such route in the plugin process")});
    return;
  }
  std::vector<const char*> keys, values;
  for (size_t i = 1; i + 1 < m.fields.size(); i += 2) {
    keys.push_back(m.fields[i].c_str());
    values.push_back(m.fields[i + 1].c_str());
  }
  // The agent answers a process-isolated plugin's routes off its event loops: it may block.
  bb_request req{sizeof(bb_request), m.fields[0].c_str(), keys.data(),
                 values.data(),      keys.size(),         1u};
  std::string body;
  int status = route.fn(route.ctx, &req, &appendTo, &body);
  h->channel->reply(m.id, {std::to_string(status), std::move(body)});
}

// Runs create / collect / destroy in order, on one thread.
void lifecycle(bb_host* h) {
  const bb_plugin& plugin = h->library->plugin();
  for (;;) {
    Message m;
    {
      std::unique_lock<std::mutex> lock(h->queue_mutex);
      h->queue_cv.wait(lock, [&] { return !h->queue.empty(); });
      m = std::move(h->queue.front());
      h->queue.pop_front();
    }
    std::string error;
    switch (m.kind) {
      case bb::ipc::kCreate: {
        h->state_dir = m.field(1);
        if (h->instance) {
          h->channel->reply(m.id, {std::to_string(BB_ERR_INVALID), "already created"});
          break;
        }
        h->instance = plugin.create(h, &kHostApi, m.field(0).c_str(), &appendTo, &error);
        h->channel->reply(m.id,
                          {std::to_string(h->instance ? BB_OK : BB_ERR_INTERNAL),
                           h->instance ? "" : (error.empty() ? "create returned NULL" : error)});
        break;
      }
      case bb::ipc::kCollect: {
        int status = h->instance ? plugin.collect(h->instance, &appendTo, &error) : BB_ERR_INVALID;
        if (!h->instance) error = "collect before create";
        h->channel->reply(m.id, {std::to_string(status), error});
        break;
      }
      case bb::ipc::kDestroy: {
        {
          std::lock_guard<std::mutex> lock(h->routes_mutex);
          h->routes.clear();
        }
        while (h->routes_running.load() > 0)
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        if (h->instance) plugin.destroy(h->instance);
        h->instance = nullptr;
        h->channel->reply(m.id, {std::to_string(BB_OK)});
        break;
      }
      default:
        h->channel->reply(m.id, {std::to_string(BB_ERR_INVALID), "unknown request"});
    }
  }
}

int usage(FILE* out, int code) {
  std::fprintf(out,
               "usage: bb-plugin-runner PLUGIN.so\n"
               "Runs one Block Buster plugin in a process of its own, for a plugin configured\n"
               "with `isolation: process`. blockbuster-agent starts it with its channel on fd %d;\n"
               "it is not meant to be run by hand.\n",
               bb::ipc::kRunnerFd);
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0))
    return usage(stdout, 0);
  if (argc == 3 && std::strcmp(argv[1], "--describe") == 0) {
    // The agent reads each plugin's descriptor through this, so that no plugin code (static
    // constructors, bb_plugin_entry) runs in the agent, and a plugin that crashes when loaded
    // takes only this process down.
    try {
      auto library = bb::loadPlugin(argv[2]);
      std::printf("%s\n", bb::describeJson(library->info()).c_str());
      std::fflush(stdout);
      _exit(0);  // no unloading: the plugin's destructors are none of the agent's business
    } catch (const std::exception& e) {
      std::fprintf(stderr, "bb-plugin-runner: %s\n", e.what());
      return 3;
    }
  }
  if (argc != 2) return usage(stderr, 2);
  if (fcntl(bb::ipc::kRunnerFd, F_GETFD) == -1) {
    std::fprintf(stderr,
                 "bb-plugin-runner: no channel on fd %d: blockbuster-agent starts this program "
                 "for plugins with `isolation: process`; it is not meant to be run by hand\n",
                 bb::ipc::kRunnerFd);
    return 2;
  }
  // No PR_SET_PDEATHSIG: it fires when the *thread* that started us ends, and the agent starts
  // a replacement process from the plugin's own thread. The channel tells instead: when the
  // agent goes away, however it dies, the kernel closes its end and the reader below exits.
  signal(SIGPIPE, SIG_IGN);
  prctl(PR_SET_NAME, "bb-plugin-runner");

  bb_host host;
  try {
    host.library = bb::loadPlugin(argv[1]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bb-plugin-runner: %s\n", e.what());
    return 3;
  }
  bb_host* h = &host;
  host.channel = std::make_unique<Channel>(
      bb::ipc::kRunnerFd,
      [h](Message m) {
        if (m.kind == bb::ipc::kRoute) {
          if (h->routes_running.fetch_add(1) >= kMaxConcurrentRoutes) {
            h->routes_running.fetch_sub(1);
            h->channel->reply(
                m.id, {"503", bb::ipc::routeErrorBody("busy",
                                                      "the plugin process is serving too many "
                                                      "requests at once; retry")});
            return;
          }
          std::thread([h, m = std::move(m)] {
            serveRoute(h, m);
            h->routes_running.fetch_sub(1);
          }).detach();
          return;
        }
        std::lock_guard<std::mutex> lock(h->queue_mutex);
        h->queue.push_back(std::move(m));
        h->queue_cv.notify_one();
      },
      [] {
        // The agent is gone, or done with us (after kDestroy): leave at once, even if the
        // plugin is stuck in collect() or a route on another thread.
        std::fflush(nullptr);
        _exit(0);
      });
  host.channel->start();
  lifecycle(h);  // returns only if the channel closes, which exits first
  _exit(0);
}
