#include "util/log.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <vector>

namespace bb {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_mutex;  // guards g_secrets and serializes writes so lines never interleave
std::vector<std::string> g_secrets;
constexpr size_t kRemembered = 64;
std::vector<LoggedError> g_errors;  // ring of the last kRemembered warn/error lines
size_t g_errors_next = 0;
uint64_t g_errors_total = 0;

}  // namespace

bool parseLogLevel(std::string_view text, LogLevel& out) {
  if (text == "debug")
    out = LogLevel::Debug;
  else if (text == "info")
    out = LogLevel::Info;
  else if (text == "warn")
    out = LogLevel::Warn;
  else if (text == "error")
    out = LogLevel::Error;
  else
    return false;
  return true;
}

const char* toString(LogLevel level) {
  switch (level) {
    case LogLevel::Debug:
      return "debug";
    case LogLevel::Info:
      return "info";
    case LogLevel::Warn:
      return "warn";
    case LogLevel::Error:
      return "error";
  }
  return "info";
}

void setLogLevel(LogLevel level) { g_level.store(static_cast<int>(level)); }
LogLevel logLevel() { return static_cast<LogLevel>(g_level.load()); }
bool logEnabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void addSecret(const std::string& secret) {
  if (secret.empty()) return;
  std::lock_guard<std::mutex> lock(g_mutex);
  for (const auto& s : g_secrets)
    if (s == secret) return;
  g_secrets.push_back(secret);
}

static std::string redactLocked(std::string text) {
  for (const auto& s : g_secrets) {
    for (size_t pos = text.find(s); pos != std::string::npos; pos = text.find(s, pos)) {
      text.replace(pos, s.size(), "<redacted>");
      pos += 10;
    }
  }
  return text;
}

std::string redact(std::string text) {
  std::lock_guard<std::mutex> lock(g_mutex);
  return redactLocked(std::move(text));
}

std::vector<LoggedError> recentErrors(size_t max, uint64_t* total) {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (total) *total = g_errors_total;
  std::vector<LoggedError> out;
  size_t n = std::min(max, g_errors.size());
  for (size_t i = g_errors.size() - n; i < g_errors.size(); ++i)
    out.push_back(g_errors[(g_errors_next + i) % g_errors.size()]);
  return out;
}

void log(LogLevel level, std::string_view component, std::string_view message) {
  if (level >= LogLevel::Warn) {
    std::lock_guard<std::mutex> lock(g_mutex);
    LoggedError e{static_cast<int64_t>(std::time(nullptr)), level, std::string(component),
                  redactLocked(std::string(message))};
    if (g_errors.size() < kRemembered) {
      g_errors.push_back(std::move(e));
    } else {
      g_errors[g_errors_next] = std::move(e);
      g_errors_next = (g_errors_next + 1) % kRemembered;
    }
    ++g_errors_total;
  }
  if (!logEnabled(level)) return;
  auto now = std::chrono::system_clock::now();
  std::time_t secs = std::chrono::system_clock::to_time_t(now);
  int ms = static_cast<int>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count() % 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string line = redactLocked(std::string(message));
  // One fprintf per line: stderr is unbuffered, so a line is written whole.
  std::fprintf(stderr, "%s.%03dZ %-5s [%.*s] %s\n", stamp, ms, toString(level),
               static_cast<int>(component.size()), component.data(), line.c_str());
}

}  // namespace bb
