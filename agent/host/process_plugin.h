// A plugin run in a process of its own (`isolation: process`): bb-plugin-runner loads the
// plugin there, and this class stands in for it inside the agent. PluginRuntime calls create /
// collect / destroy on it as it would on the plugin; every host call the plugin makes in its
// process comes back over the channel (agent/ipc) and is served by the very bb_host_api an
// in-process plugin gets, with the same checks, caps and collect deadline.
//
// When the process dies (a crash, a kill, or a collect that ran far past its deadline and was
// killed), only it is lost: collect() reports how it died, and a new process is started at a
// later collect, after a backoff that doubles with each death in a row (0.5 s up to 30 s) and
// resets once a collect gets an answer. Routes the plugin serves answer 503 meanwhile.
#pragma once

#include <blockbuster/plugin_abi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>

#include "ipc/channel.h"

namespace bb {

class Metrics;

class ProcessPlugin {
 public:
  struct Options {
    std::string name;         ///< the plugin's name, for logs and metrics
    std::string plugin_path;  ///< the plugin's .so
    std::string runner;       ///< bb-plugin-runner
    std::string state_dir;    ///< what the plugin's state_dir() returns ("" for none)
    /// How long a collect may run before its process is killed as hung.
    std::chrono::milliseconds collect_limit{10000};
    Metrics* metrics = nullptr;
  };

  struct State {
    int pid = 0;            ///< of the running process; 0 when none runs
    uint64_t restarts = 0;  ///< processes lost and replaced so far
    std::string last_exit;  ///< how the last lost process ended, e.g. "killed by signal 11 ..."
  };

  /// `host` and `api` serve the plugin's host calls; both must outlive this object.
  ProcessPlugin(Options options, bb_host* host, const bb_host_api* api);
  ~ProcessPlugin();  ///< asks the plugin to destroy itself, then ends its process
  ProcessPlugin(const ProcessPlugin&) = delete;
  ProcessPlugin& operator=(const ProcessPlugin&) = delete;

  /// Starts the process and creates the plugin in it. Throws std::runtime_error saying why not.
  void create(const std::string& options_json);
  /// One collect in the process (starting a new one first if the last died and its backoff is
  /// over). Returns a bb_status, with the reason in `error` when not BB_OK.
  int collect(std::string& error);
  /// Kills the process at once (the agent is stopping and the plugin does not return).
  void kill();
  State state() const;

 private:
  struct Child;
  std::shared_ptr<Child> spawn();
  void createIn(const std::shared_ptr<Child>& child);
  /// Reaps a dead (or killed) child once: counts it, logs it, sets the backoff.
  void buried(const std::shared_ptr<Child>& child, const std::string& during);
  /// Serves one host call of the plugin (on the channel's reader thread).
  void onRequest(const std::shared_ptr<Child>& child, ipc::Message request);
  static int routeTrampoline(void* ctx, const bb_request* req, bb_sink_fn sink, void* sink_ctx);

  Options options_;
  bb_host* host_;
  const bb_host_api* api_;
  std::string options_json_;

  mutable std::mutex mutex_;
  std::shared_ptr<Child> child_;  // the current process, if any
  uint64_t restarts_ = 0;
  int deaths_in_row_ = 0;
  std::string last_exit_;
  std::chrono::steady_clock::time_point next_start_{};

  // Host calls served on threads of their own (RPC): waited for before destruction.
  std::mutex calls_mutex_;
  std::condition_variable calls_cv_;
  int calls_running_ = 0;
};

}  // namespace bb
