#include "host/plugin_routes.h"

#include <mutex>

namespace bb {

std::string PluginRoutes::add(const std::string& path, const std::string& plugin, bb_route_fn fn,
                              void* ctx, bool blocking) {
  if (path.empty() || path[0] != '/' || path.find("..") != std::string::npos)
    return "route '" + path + "' is not an absolute path";
  if (path == "/health" || path == "/metrics" || path.rfind("/plugins/", 0) == 0)
    return "route '" + path + "' is reserved by the agent";
  std::unique_lock<std::shared_mutex> lock(mutex_);
  auto it = routes_.find(path);
  if (it != routes_.end() && it->second.plugin != plugin)
    return "route '" + path + "' is already served by plugin '" + it->second.plugin + "'";
  if (it != routes_.end() && it->second.blocking) --blocking_routes_;
  routes_[path] = Route{plugin, fn, ctx, blocking};
  if (blocking) ++blocking_routes_;
  return "";
}

void PluginRoutes::removePlugin(const std::string& plugin) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  for (auto it = routes_.begin(); it != routes_.end();) {
    if (it->second.plugin == plugin) {
      if (it->second.blocking) --blocking_routes_;
      it = routes_.erase(it);
    } else {
      ++it;
    }
  }
}

bool PluginRoutes::has(const std::string& path) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  return routes_.count(path) > 0;
}

bool PluginRoutes::blocking(const std::string& path) const {
  if (blocking_routes_.load(std::memory_order_relaxed) == 0) return false;
  std::shared_lock<std::shared_mutex> lock(mutex_);
  auto it = routes_.find(path);
  return it != routes_.end() && it->second.blocking;
}

std::vector<std::string> PluginRoutes::paths() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  std::vector<std::string> out;
  for (const auto& kv : routes_) out.push_back(kv.first);
  return out;
}

std::optional<PluginRoutes::Result> PluginRoutes::call(
    const std::string& path, const std::vector<std::pair<std::string, std::string>>& query,
    bool may_block) const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  auto it = routes_.find(path);
  if (it == routes_.end()) return std::nullopt;
  std::vector<const char*> keys, values;
  keys.reserve(query.size());
  values.reserve(query.size());
  for (const auto& kv : query) {
    keys.push_back(kv.first.c_str());
    values.push_back(kv.second.c_str());
  }
  bb_request req{sizeof(bb_request), path.c_str(), keys.data(),
                 values.data(),      query.size(), may_block ? 1u : 0u};
  Result r;
  r.status = it->second.fn(
      it->second.ctx, &req,
      [](void* ctx, const char* data, size_t len) {
        static_cast<std::string*>(ctx)->append(data, len);
      },
      &r.body);
  if (r.deferred() && !may_block) return r;
  if (r.status < 100 || r.status > 599) r.status = 500;
  return r;
}

}  // namespace bb
