// Reading one config value (config.cc, schema.cc): the value kinds a YAML node or an environment
// variable can hold, and the readers that check one against its type and range. Every problem
// throws ConfigError through Context::fail(), one line naming the source, the key and the fix.
// Internal to bb_config: only the config folder includes it (and yaml-cpp with it).
#pragma once

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <string>
#include <vector>

#include "config/config.h"

namespace bb::config_detail {

inline constexpr char kRedacted[] = "<redacted>";

/// Where errors are attributed, and the secrets no message may contain.
struct Context {
  std::string source;                ///< file path or "environment"
  std::vector<std::string> secrets;  ///< auth tokens seen so far

  /// Throws ConfigError "<source>: <path>: <what>; <fix>", secrets replaced, on one line.
  [[noreturn]] void fail(const std::string& path, const std::string& what,
                         const std::string& fix) const;
};

/// A value to validate, from YAML or from an environment variable (always a plain scalar).
struct Value {
  enum class Kind { kNull, kPlain, kQuoted, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string text;
};

Value fromYaml(const YAML::Node& node);
Value fromEnv(const std::string& text);

/// What the validators reject that is not a scalar: "<found>; expected <expected>".
[[noreturn]] void failKind(const Context& ctx, const std::string& path, const Value& v,
                           const std::string& expected);

/// An integer key's range and the words of its messages.
struct IntRule {
  int64_t min;
  int64_t max;
  const char* noun;      ///< "'abc' is not <noun>"
  std::string expected;  ///< "expected <expected>"
};

enum class IntParse { kOk, kNotInteger, kOverflow };
IntParse parseDecimal(const std::string& s, int64_t* out);
bool looksLikeFloat(const std::string& s);  ///< YAML 1.2 core schema float, finite forms only
bool isInfOrNan(const std::string& s);
/// The shortest text that reads back as the same double, always with a '.' or an exponent.
std::string formatDouble(double d);

int64_t readInt(const Context& ctx, const std::string& path, const Value& v, const IntRule& rule);
double readRate(const Context& ctx, const std::string& path, const Value& v);
bool readBool(const Context& ctx, const std::string& path, const Value& v);
/// Any scalar reads as its text; `allow_empty` says whether "" (or no value) is meaningful.
std::string readString(const Context& ctx, const std::string& path, const Value& v,
                       const std::string& expected, bool allow_empty);
std::string readUrl(const Context& ctx, const std::string& path, const Value& v, bool websocket);
std::string readHost(const Context& ctx, const std::string& path, const Value& v);
std::string readPath(const Context& ctx, const std::string& path, const Value& v);
std::string readLogFormat(const Context& ctx, const std::string& path, const Value& v);
std::string readLogLevel(const Context& ctx, const std::string& path, const Value& v);
std::string readOrigin(const Context& ctx, const std::string& path, const Value& v);
/// "sha256:<hex>", lowercased; the value is never echoed (it may be the token itself).
std::string readSha256(const Context& ctx, const std::string& path, const Value& v);
/// A bearer token goes into an HTTP header: no space or control character.
void checkToken(const Context& ctx, const std::string& path, const std::string& token);

/// A plugin's `options` mapping as JSON text, bounded (aliases, depth, size; docs/security.md).
std::string optionsJson(const Context& ctx, const YAML::Node& node, const std::string& path);
/// The auth_token values a YAML text sets, so that no message (even a syntax error) repeats one.
std::vector<std::string> secretsInText(const std::string& text);
/// "sha256:<64 lowercase hex digits>" of `text` (guide_env.cc).
std::string sha256Text(const std::string& text);

std::string lower(std::string s);
std::string oneLine(const std::string& s);   ///< control characters escaped, as the logger does
std::string echo(const std::string& value);  ///< quoted, a URL's user info hidden, long values cut
std::string childPath(const std::string& parent, const std::string& key);
/// Optimal-string-alignment distance: a swapped pair of letters ("prot") counts as one edit.
size_t editDistance(const std::string& a, const std::string& b);

}  // namespace bb::config_detail
