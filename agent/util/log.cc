#include "util/log.h"

#include <blockbuster/json.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "util/utf8.h"

namespace bb {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::Info)};
std::mutex g_mutex;  // guards g_secrets and serializes writes so lines never interleave
std::vector<std::string> g_secrets;
constexpr size_t kRemembered = 64;
std::vector<LoggedError> g_errors;  // ring of the last kRemembered warn/error lines
size_t g_errors_next = 0;
uint64_t g_errors_total = 0;

std::atomic<int> g_format{static_cast<int>(LogFormat::Text)};

// Identical lines (same level, component and message) beyond kRepeatsShown within
// kRepeatWindowSeconds are suppressed, with a note when it starts and a count when it ends.
struct Repeat {
  int64_t window_start = 0;
  int count = 0;
  int64_t suppressed = 0;
};
constexpr int kRepeatsShown = 3;
constexpr int64_t kRepeatWindowSeconds = 60;
constexpr size_t kMaxRepeatKeys = 1024;
std::unordered_map<std::string, Repeat> g_repeats;  // guarded by g_mutex

// Under g_mutex: the note to append to this line ("" for none), or nullopt to suppress it.
std::optional<std::string> repeatNote(LogLevel level, std::string_view component,
                                      const std::string& line, int64_t now) {
  std::string key = std::string(toString(level)) + '\x1f' + std::string(component) + '\x1f' + line;
  if (g_repeats.size() >= kMaxRepeatKeys && g_repeats.find(key) == g_repeats.end()) {
    for (auto it = g_repeats.begin(); it != g_repeats.end();)
      it = now - it->second.window_start >= kRepeatWindowSeconds ? g_repeats.erase(it)
                                                                 : std::next(it);
    if (g_repeats.size() >= kMaxRepeatKeys) g_repeats.clear();
  }
  Repeat& r = g_repeats[key];
  if (r.count == 0 || now - r.window_start >= kRepeatWindowSeconds) {
    std::string note;
    if (r.suppressed > 0)
      note = " (" + std::to_string(r.suppressed) + " identical lines were suppressed in the last " +
             std::to_string(now - r.window_start) + " s)";
    r = Repeat{now, 1, 0};
    return note;
  }
  ++r.count;
  if (r.count < kRepeatsShown) return std::string();
  if (r.count == kRepeatsShown)
    return " (repeated " + std::to_string(kRepeatsShown) + " times within " +
           std::to_string(kRepeatWindowSeconds) +
           " s: further identical lines are suppressed, and counted when it shows again after " +
           std::to_string(kRepeatWindowSeconds) + " s)";
  ++r.suppressed;
  return std::nullopt;
}

}  // namespace

void setLogFormat(LogFormat format) { g_format.store(static_cast<int>(format)); }

bool parseLogFormat(std::string_view text, LogFormat& out) {
  if (text == "text")
    out = LogFormat::Text;
  else if (text == "json")
    out = LogFormat::Json;
  else
    return false;
  return true;
}

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

std::string logValue(std::string_view value, size_t max) {
  std::string out;
  out.reserve(std::min(value.size(), max) + 16);
  size_t i = 0;
  const auto escape = [&](unsigned code, bool unicode) {
    char buf[8];
    std::snprintf(buf, sizeof buf, unicode ? "\\u%04x" : "\\x%02x", code);
    out += buf;
  };
  while (i < value.size()) {
    if (out.size() >= max) break;
    const auto c = static_cast<unsigned char>(value[i]);
    if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c == 0x7f) {
      escape(c, false);
    } else if (c < 0x80) {
      out += static_cast<char>(c);
    } else {
      uint32_t cp = 0;
      const size_t len = utf8Sequence(value, i, cp);
      if (len == 0) {
        escape(c, false);
      } else if (cp <= 0x9f) {
        escape(cp, true);  // C1 controls: 0x9b is CSI to a terminal
        i += len;
        continue;
      } else {
        out.append(value.substr(i, len));
        i += len;
        continue;
      }
    }
    ++i;
  }
  if (i < value.size()) out += "...(+" + std::to_string(value.size() - i) + " bytes)";
  return out;
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
    LoggedError e{static_cast<int64_t>(std::time(nullptr)), level,
                  logValue(component, kMaxLoggedValue),
                  logValue(redactLocked(std::string(message)), kMaxLogMessage)};
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
  // Made safe whatever the format: escaped and capped (a JSON line escapes it once more).
  std::string line = logValue(redactLocked(std::string(message)), kMaxLogMessage);
  const std::string from = logValue(component, kMaxLoggedValue);
  const auto note = repeatNote(level, from, line, static_cast<int64_t>(secs));
  if (!note) return;
  line += *note;
  if (static_cast<LogFormat>(g_format.load()) == LogFormat::Json) {
    // One object per line, for journald's fields and log shippers.
    char time[40];
    std::snprintf(time, sizeof time, "%s.%03dZ", stamp, ms);
    std::string out = "{\"time\":\"";
    out += time;
    out += "\",\"level\":\"";
    out += toString(level);
    out += "\",\"component\":";
    blockbuster::Json::appendString(out, from);
    out += ",\"message\":";
    blockbuster::Json::appendString(out, line);
    out += "}\n";
    std::fputs(out.c_str(), stderr);
    return;
  }
  // One fprintf per line: stderr is unbuffered, so a line is written whole.
  std::fprintf(stderr, "%s.%03dZ %-5s [%s] %s\n", stamp, ms, toString(level), from.c_str(),
               line.c_str());
}

}  // namespace bb
