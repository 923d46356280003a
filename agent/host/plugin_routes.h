// GET routes that plugins register through bb_host_api::serve (e.g. /theblock/receipts).
// Handlers run on HTTP threads under a shared lock; removing a plugin's routes takes the
// exclusive lock, so it waits for calls in flight and no call starts into an unloaded plugin.
#pragma once

#include <blockbuster/plugin_abi.h>

#include <atomic>
#include <map>
#include <optional>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

namespace bb {

class PluginRoutes {
 public:
  struct Result {
    int status = 500;
    std::string body;
    /// The handler cannot answer from memory: call again with may_block (see call()).
    bool deferred() const { return status == BB_STATUS_DEFER; }
  };

  /// Returns "" on success, else why not (path taken, invalid path). `blocking`: the handler may
  /// wait (a plugin with isolation: process answers over IPC, with a deadline).
  std::string add(const std::string& path, const std::string& plugin, bb_route_fn fn, void* ctx,
                  bool blocking = false);
  void removePlugin(const std::string& plugin);
  bool has(const std::string& path) const;
  /// Whether the handler of `path` may block (see add); false when no plugin serves it. Cheap
  /// when no route blocks, which is the usual case: the HTTP event loops ask on every request.
  bool blocking(const std::string& path) const;
  /// Calls the handler of `path`; nullopt when no plugin serves it. `may_block` false (on an HTTP
  /// event loop): the handler may answer Result::deferred() instead of reading a file.
  std::optional<Result> call(const std::string& path,
                             const std::vector<std::pair<std::string, std::string>>& query,
                             bool may_block = true) const;
  std::vector<std::string> paths() const;

 private:
  struct Route {
    std::string plugin;
    bb_route_fn fn;
    void* ctx;
    bool blocking;
  };
  mutable std::shared_mutex mutex_;
  std::map<std::string, Route> routes_;
  std::atomic<size_t> blocking_routes_{0};  // how many of routes_ block
};

}  // namespace bb
