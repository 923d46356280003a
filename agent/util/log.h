// Logging: one line per event to stderr, "<time> <level> [<component>] <message>".
// Thread-safe. Registered secrets are replaced by "<redacted>" in every line, whoever logs it.
// Every message is made safe whoever logs it (text from the node, a plugin or a client may be
// in it): control characters, C1 controls and bytes that are not UTF-8 are escaped (\n, \x1b,
// \u009b), so a message can neither forge a line nor drive the terminal, and a message longer
// than kMaxLogMessage bytes is cut. Code that puts a value from outside into a message caps it
// with logValue() first (kMaxLoggedValue), so one long value cannot crowd out the rest.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace bb {

enum class LogLevel { Debug = 0, Info = 1, Warn = 2, Error = 3 };

/// Parses "debug" | "info" | "warn" | "error"; returns false for anything else.
bool parseLogLevel(std::string_view text, LogLevel& out);
const char* toString(LogLevel level);

/// Text: "<time> <level> [<component>] <message>"; Json: one object per line,
/// {"time","level","component","message"} (log_format: json). Identical lines repeated more than
/// 3 times within 60 s are suppressed in both, with a note when it starts and the count after.
enum class LogFormat { Text = 0, Json = 1 };
/// Parses "text" | "json"; returns false for anything else.
bool parseLogFormat(std::string_view text, LogFormat& out);
void setLogFormat(LogFormat format);

void setLogLevel(LogLevel level);
LogLevel logLevel();
bool logEnabled(LogLevel level);

/// A string that must never be printed (e.g. the node's auth token). Empty strings are ignored.
void addSecret(const std::string& secret);
/// `text` with every registered secret replaced by "<redacted>".
std::string redact(std::string text);

/// Longest message written (and remembered for /health), in bytes, before "...(+N bytes)".
constexpr size_t kMaxLogMessage = 2048;
/// Longest value from outside (a node's error message, a receipt id) put into a message.
constexpr size_t kMaxLoggedValue = 200;

/// `value` safe to log: escaped as described above and cut after `max` bytes (at a character
/// boundary) with "...(+N bytes)" naming what was left out.
std::string logValue(std::string_view value, size_t max = kMaxLoggedValue);

void log(LogLevel level, std::string_view component, std::string_view message);

/// A warn or error line, as remembered for /health's recent_errors.
struct LoggedError {
  int64_t unix_seconds = 0;
  LogLevel level = LogLevel::Warn;
  std::string component;
  std::string message;  ///< already redacted
};
/// The last `max` warn/error lines (oldest first) and how many there were since start. Lines
/// are remembered whatever the log level is set to.
std::vector<LoggedError> recentErrors(size_t max, uint64_t* total);
inline void logDebug(std::string_view c, std::string_view m) { log(LogLevel::Debug, c, m); }
inline void logInfo(std::string_view c, std::string_view m) { log(LogLevel::Info, c, m); }
inline void logWarn(std::string_view c, std::string_view m) { log(LogLevel::Warn, c, m); }
inline void logError(std::string_view c, std::string_view m) { log(LogLevel::Error, c, m); }

}  // namespace bb
