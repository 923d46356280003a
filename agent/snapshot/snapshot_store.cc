#include "snapshot/snapshot_store.h"

#include <blockbuster/json.h>

#include <cmath>
#include <cstdio>
#include <ctime>

namespace bb {

double Section::ageSeconds(std::chrono::steady_clock::time_point now) const {
  if (!has_data) return 0;
  return std::chrono::duration<double>(now - published_at).count();
}

bool Section::isStale(std::chrono::steady_clock::time_point now) const {
  if (!has_data) return true;
  if (!error.empty()) return true;
  return stale_after.count() > 0 && now - published_at > stale_after;
}

bool Section::isExpired(std::chrono::steady_clock::time_point now) const {
  return has_data && stale_after.count() > 0 && now - published_at > stale_after;
}

std::string formatSeconds(double seconds) {
  if (!std::isfinite(seconds)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", seconds < 0 ? 0.0 : seconds);
  return buf;
}

namespace {

// Builds the stored prefix: the published object without its closing brace, with a
// "timestamp" member added when the plugin did not give one.
std::string makePrefix(const std::string& json, bool has_timestamp, int64_t unix_seconds) {
  size_t end = json.find_last_of('}');
  std::string prefix = json.substr(0, end == std::string::npos ? 0 : end);
  // Trim trailing whitespace so the separator logic below sees the last real character.
  while (!prefix.empty() && (prefix.back() == ' ' || prefix.back() == '\n' ||
                             prefix.back() == '\r' || prefix.back() == '\t'))
    prefix.pop_back();
  bool empty_object = !prefix.empty() && prefix.back() == '{';
  if (!has_timestamp) {
    if (!empty_object) prefix += ',';
    prefix += "\"timestamp\":" + std::to_string(unix_seconds);
    empty_object = false;
  }
  if (empty_object) prefix += ' ';  // renderBody always adds ",..."; keep "{ ," invalid out
  return prefix;
}

}  // namespace

std::string SnapshotStore::renderBody(const Section& section,
                                      std::chrono::steady_clock::time_point now) {
  std::string out;
  out.reserve(section.body_prefix.size() + 96);
  out += section.body_prefix;
  bool empty_object = !out.empty() && out.back() == ' ';
  if (empty_object)
    out.pop_back();
  else
    out += ',';
  out += "\"age_seconds\":";
  out += formatSeconds(section.ageSeconds(now));
  bool stale = section.isStale(now);
  out += stale ? ",\"stale\":true" : ",\"stale\":false";
  if (stale) {
    out += ",\"stale_reason\":";
    blockbuster::Json::appendString(
        out, !section.error.empty()
                 ? section.error
                 : "no refresh within " + std::to_string(section.stale_after.count()) + " ms");
  }
  out += '}';
  return out;
}

void SnapshotStore::publish(const std::string& name, const std::string& plugin,
                            const std::string& json, bool has_timestamp,
                            std::chrono::milliseconds stale_after) {
  auto s = std::make_shared<Section>();
  s->name = name;
  s->plugin = plugin;
  s->published_unix = static_cast<int64_t>(std::time(nullptr));
  s->published_at = std::chrono::steady_clock::now();
  s->body_prefix = makePrefix(json, has_timestamp, s->published_unix);
  s->has_data = true;
  s->stale_after = stale_after;
  store(std::move(s));
}

void SnapshotStore::markError(const std::string& name, const std::string& plugin,
                              const std::string& reason, std::chrono::milliseconds stale_after) {
  std::shared_ptr<Section> s;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = sections_.find(name);
    if (it != sections_.end()) {
      if (it->second->error == reason) return;  // nothing changed: no version bump, no push
      s = std::make_shared<Section>(*it->second);
    }
  }
  if (!s) {
    s = std::make_shared<Section>();
    s->name = name;
    s->plugin = plugin;
    s->stale_after = stale_after;
  }
  s->error = reason.empty() ? "refresh failed" : reason;
  store(std::move(s));
}

void SnapshotStore::markPluginError(const std::string& plugin, const std::string& reason) {
  std::vector<SectionPtr> owned;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& kv : sections_)
      if (kv.second->plugin == plugin) owned.push_back(kv.second);
  }
  for (const auto& s : owned) markError(s->name, plugin, reason, s->stale_after);
}

void SnapshotStore::removePlugin(const std::string& plugin) {
  std::lock_guard<std::mutex> lock(mutex_);
  for (auto it = sections_.begin(); it != sections_.end();) {
    if (it->second->plugin == plugin)
      it = sections_.erase(it);
    else
      ++it;
  }
  ++version_;
}

void SnapshotStore::store(std::shared_ptr<Section> section) {
  SectionPtr stored;
  std::vector<Listener> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    section->version = ++version_;
    stored = section;
    sections_[section->name] = stored;
    listeners = listeners_;
  }
  for (const auto& l : listeners) l(stored);
}

SectionPtr SnapshotStore::get(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = sections_.find(name);
  return it == sections_.end() ? nullptr : it->second;
}

std::vector<SectionPtr> SnapshotStore::all() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::vector<SectionPtr> out;
  out.reserve(sections_.size());
  for (const auto& kv : sections_) out.push_back(kv.second);
  return out;
}

uint64_t SnapshotStore::version() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return version_;
}

void SnapshotStore::addListener(Listener listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  listeners_.push_back(std::move(listener));
}

void SnapshotStore::collectStarted() { collecting_.fetch_add(1); }

void SnapshotStore::collectFinished() {
  if (collecting_.fetch_sub(1) != 1) return;
  std::vector<std::function<void()>> listeners;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    listeners = idle_listeners_;
  }
  for (const auto& l : listeners) l();
}

void SnapshotStore::addIdleListener(std::function<void()> listener) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_listeners_.push_back(std::move(listener));
}

}  // namespace bb
