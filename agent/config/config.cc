#include "config/config.h"

#include <blockbuster/json.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "config/node_url.h"
#include "util/log.h"

extern char** environ;

namespace bb {
namespace {

constexpr char kRedacted[] = "<redacted>";
constexpr char kEnvironmentSource[] = "environment";
// Bounds on what a config file can make the loader do (docs/security.md, "Bounded input").
constexpr size_t kMaxConfigBytes = 1024 * 1024;  // the file
constexpr size_t kMaxOptionsBytes = 256 * 1024;  // one plugin's options as JSON, aliases expanded
constexpr size_t kMaxOptionsDepth = 32;          // nesting of one plugin's options

const char* const kTopKeys[] = {"rpc_url",   "ws_url",     "auth_token", "rpc",         "http",
                                "ws",        "web",        "plugin_dir", "plugin_dirs", "state_dir",
                                "log_level", "log_format", "plugins",    "auth",        "history"};
const char* const kRpcKeys[] = {"connect_timeout_ms",
                                "timeout_ms",
                                "retries",
                                "backoff_initial_ms",
                                "backoff_max_ms",
                                "max_requests_per_second",
                                "burst",
                                "max_connections",
                                "max_response_bytes",
                                "share_ms",
                                "tls_ca_file"};
const char* const kHttpKeys[] = {"host", "port", "cors_origins", "tls", "metrics_port"};
const char* const kWsKeys[] = {"host", "port", "feature_port", "tls"};
const char* const kWebKeys[] = {"host",
                                "port",
                                "root",
                                "tls",
                                "grafana_url",
                                "last_block_warn_seconds",
                                "last_block_critical_seconds"};
const char* const kHistoryKeys[] = {"window"};
const char* const kTlsKeys[] = {"cert_file", "key_file"};
const char* const kAuthKeys[] = {"api", "metrics", "ws"};
const char* const kAuthSurfaceKeys[] = {"bearer_sha256", "basic"};
const char* const kBasicUserKeys[] = {"user", "password_sha256"};
const char* const kPluginKeys[] = {"enabled", "interval_ms", "timeout_ms", "isolation", "options"};

// Keys people put in the wrong place; the generic "same name elsewhere" search misses these.
const std::pair<const char*, const char*> kKeyAliases[] = {
    {"rpc.url", "rpc_url"},
    {"ws.url", "ws_url"},
    {"token", "auth_token"},
    {"rpc.token", "auth_token"},
    {"http.cors", "http.cors_origins"},
    {"cors", "http.cors_origins"},
    {"plugins_dir", "plugin_dir"},
    {"web_root", "web.root"},
    {"loglevel", "log_level"},
};

std::vector<std::string> allKeyPaths() {
  std::vector<std::string> out;
  for (const char* k : kTopKeys) {
    out.emplace_back(k);
  }
  for (const char* k : kRpcKeys) {
    out.push_back(std::string("rpc.") + k);
  }
  for (const char* k : kHttpKeys) {
    out.push_back(std::string("http.") + k);
  }
  for (const char* k : kWsKeys) {
    out.push_back(std::string("ws.") + k);
  }
  for (const char* k : kWebKeys) {
    out.push_back(std::string("web.") + k);
  }
  for (const char* k : kHistoryKeys) {
    out.push_back(std::string("history.") + k);
  }
  return out;
}

// Optimal-string-alignment distance: a swapped pair of letters ("prot") counts as one edit.
size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) {
    d[i][0] = i;
  }
  for (size_t j = 0; j <= b.size(); ++j) {
    d[0][j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) {
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.size()][b.size()];
}

std::string lower(std::string s) {
  for (char& c : s) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return s;
}

bool startsWithNoCase(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

// Messages are one line: control characters (a block scalar's newlines, a stray tab) are
// escaped, as the logger does.
std::string oneLine(const std::string& s) {
  return logValue(s, std::numeric_limits<size_t>::max());
}

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) {
    return;
  }
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

// A value as it appears in a message: quoted, a URL's user info hidden, long values cut.
std::string echo(const std::string& value) { return echoUrl(value); }

// The secrets a message must never contain, and where errors are attributed.
struct Context {
  std::string source;                // file path or "environment"
  std::vector<std::string> secrets;  // auth tokens seen so far

  [[noreturn]] void fail(const std::string& path, const std::string& what,
                         const std::string& fix) const {
    std::string msg = source + ": " + path + ": " + what + "; " + fix;
    for (const std::string& secret : secrets) {
      replaceAll(msg, secret, kRedacted);
    }
    throw ConfigError(oneLine(msg));
  }
};

// A value to validate, from YAML or from an environment variable (always a plain scalar).
struct Value {
  enum class Kind { kNull, kPlain, kQuoted, kSequence, kMap };
  Kind kind = Kind::kNull;
  std::string text;
};

Value fromYaml(const YAML::Node& node) {
  Value v;
  switch (node.Type()) {
    case YAML::NodeType::Scalar:
      // "?" = untagged plain scalar; "!" = quoted or block scalar; anything else = explicit tag.
      v.kind = node.Tag() == "?" ? Value::Kind::kPlain : Value::Kind::kQuoted;
      v.text = node.Scalar();
      break;
    case YAML::NodeType::Sequence:
      v.kind = Value::Kind::kSequence;
      break;
    case YAML::NodeType::Map:
      v.kind = Value::Kind::kMap;
      break;
    default:
      v.kind = Value::Kind::kNull;
      break;
  }
  return v;
}

Value fromEnv(const std::string& text) { return Value{Value::Kind::kPlain, text}; }

// What the validators reject that is not a scalar: "<found>; expected <expected>".
[[noreturn]] void failKind(const Context& ctx, const std::string& path, const Value& v,
                           const std::string& expected) {
  switch (v.kind) {
    case Value::Kind::kNull:
      ctx.fail(path, "missing value", "expected " + expected);
    case Value::Kind::kSequence:
      ctx.fail(path, "found a list", "expected " + expected);
    case Value::Kind::kMap:
      ctx.fail(path, "found a mapping", "expected " + expected);
    default:
      ctx.fail(path, "unexpected value " + echo(v.text), "expected " + expected);
  }
}

enum class IntParse { kOk, kNotInteger, kOverflow };

IntParse parseDecimal(const std::string& s, int64_t* out) {
  size_t i = 0;
  bool negative = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    negative = s[i++] == '-';
  }
  if (i == s.size()) {
    return IntParse::kNotInteger;
  }
  uint64_t magnitude = 0;
  bool overflow = false;
  for (; i < s.size(); ++i) {
    if (s[i] < '0' || s[i] > '9') {
      return IntParse::kNotInteger;
    }
    auto digit = static_cast<uint64_t>(s[i] - '0');
    if (magnitude > (UINT64_MAX - digit) / 10) {
      overflow = true;
    } else {
      magnitude = magnitude * 10 + digit;
    }
  }
  const uint64_t limit = negative ? static_cast<uint64_t>(INT64_MAX) + 1 : INT64_MAX;
  if (overflow || magnitude > limit) {
    return IntParse::kOverflow;
  }
  *out = negative ? static_cast<int64_t>(0 - magnitude) : static_cast<int64_t>(magnitude);
  return IntParse::kOk;
}

// YAML 1.2 core schema float, finite forms only.
bool looksLikeFloat(const std::string& s) {
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
    ++i;
  }
  size_t int_digits = 0, frac_digits = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    ++i, ++int_digits;
  }
  if (i < s.size() && s[i] == '.') {
    ++i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i, ++frac_digits;
    }
  }
  if (int_digits + frac_digits == 0) {
    return false;
  }
  if (i < s.size() && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) {
      ++i;
    }
    size_t exp_digits = 0;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      ++i, ++exp_digits;
    }
    if (exp_digits == 0) {
      return false;
    }
  }
  return i == s.size();
}

bool isInfOrNan(const std::string& s) {
  std::string t = s;
  if (!t.empty() && (t[0] == '+' || t[0] == '-')) {
    t = t.substr(1);
  }
  return t == ".inf" || t == ".Inf" || t == ".INF" || t == ".nan" || t == ".NaN" || t == ".NAN";
}

// The shortest text that reads back as the same double, always with a '.' or exponent so that
// JSON readers keep it a floating-point number.
std::string formatDouble(double d) {
  char buf[40];
  for (int precision = 1; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof buf, "%.*g", precision, d);
    if (std::strtod(buf, nullptr) == d) {
      break;
    }
  }
  std::string s = buf;
  // Whole numbers print in full ("1000.0", not "1e+03") while that stays exact.
  if (s.find_first_of("eE") != std::string::npos && std::floor(d) == d && std::fabs(d) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.1f", d);
    s = buf;
  }
  if (s.find_first_of(".eE") == std::string::npos) {
    s += ".0";
  }
  return s;
}

struct IntRule {
  int64_t min;
  int64_t max;
  const char* noun;      // "'abc' is not <noun>"
  std::string expected;  // "expected <expected>"
};

IntRule portRule() { return {0, 65535, "a port", "an integer from 0 to 65535"}; }
IntRule webPortRule() {
  return {-1, 65535, "a port", "an integer from 0 to 65535, or -1 to disable the web server"};
}
IntRule positiveMsRule() { return {1, INT_MAX, "an integer", "a positive integer (milliseconds)"}; }

int64_t readInt(const Context& ctx, const std::string& path, const Value& v, const IntRule& rule) {
  if (v.kind == Value::Kind::kQuoted) {
    ctx.fail(path, echo(v.text) + " is a quoted string",
             "expected " + rule.expected + ", written without quotes");
  }
  if (v.kind != Value::Kind::kPlain) {
    failKind(ctx, path, v, rule.expected);
  }
  int64_t n = 0;
  switch (parseDecimal(v.text, &n)) {
    case IntParse::kNotInteger:
      ctx.fail(path, echo(v.text) + " is not " + rule.noun, "expected " + rule.expected);
    case IntParse::kOverflow:
      ctx.fail(path, v.text + " is out of range", "expected " + rule.expected);
    case IntParse::kOk:
      break;
  }
  if (n < rule.min || n > rule.max) {
    ctx.fail(path, std::to_string(n) + " is out of range", "expected " + rule.expected);
  }
  return n;
}

int readIntField(const Context& ctx, const std::string& path, const Value& v, const IntRule& rule) {
  return static_cast<int>(readInt(ctx, path, v, rule));
}

double readRate(const Context& ctx, const std::string& path, const Value& v) {
  const std::string expected = "a number greater than 0 and at most 1000 (requests per second)";
  if (v.kind == Value::Kind::kQuoted) {
    ctx.fail(path, echo(v.text) + " is a quoted string",
             "expected " + expected + ", written without quotes");
  }
  if (v.kind != Value::Kind::kPlain) {
    failKind(ctx, path, v, expected);
  }
  if (!looksLikeFloat(v.text)) {
    ctx.fail(path, echo(v.text) + " is not a number", "expected " + expected);
  }
  double d = std::strtod(v.text.c_str(), nullptr);
  if (!(d > 0 && d <= 1000)) {
    ctx.fail(path, v.text + " is out of range", "expected " + expected);
  }
  return d;
}

bool readBool(const Context& ctx, const std::string& path, const Value& v) {
  const std::string expected = "true or false";
  if (v.kind == Value::Kind::kPlain) {
    if (v.text == "true" || v.text == "True" || v.text == "TRUE") {
      return true;
    }
    if (v.text == "false" || v.text == "False" || v.text == "FALSE") {
      return false;
    }
    ctx.fail(path, echo(v.text) + " is not a boolean", "expected " + expected);
  }
  if (v.kind == Value::Kind::kQuoted) {
    ctx.fail(path, echo(v.text) + " is a quoted string",
             "expected " + expected + ", written without quotes");
  }
  failKind(ctx, path, v, expected);
}

// Any scalar reads as its text; `allow_empty` says whether "" (or no value) is meaningful.
std::string readString(const Context& ctx, const std::string& path, const Value& v,
                       const std::string& expected, bool allow_empty) {
  if (v.kind == Value::Kind::kNull && allow_empty) {
    return "";
  }
  if (v.kind != Value::Kind::kPlain && v.kind != Value::Kind::kQuoted) {
    failKind(ctx, path, v, expected);
  }
  if (v.text.empty() && !allow_empty) {
    ctx.fail(path, "empty value", "expected " + expected);
  }
  return v.text;
}

std::string readUrl(const Context& ctx, const std::string& path, const Value& v, bool websocket) {
  const std::string expected = websocket ? "a ws:// or wss:// URL, e.g. ws://localhost:9944"
                                         : "an http:// or https:// URL, e.g. http://localhost:9933";
  std::string url = readString(ctx, path, v, expected, false);
  // The RPC client checks rpc_url the same way at start (config/node_url.h).
  NodeUrl parsed;
  NodeUrlProblem problem;
  if (!parseNodeUrl(url, websocket ? NodeUrlUse::kWebSocket : NodeUrlUse::kRpc, parsed, problem)) {
    ctx.fail(path, problem.what, problem.fix);
  }
  return url;
}

std::string readHost(const Context& ctx, const std::string& path, const Value& v) {
  const std::string expected = "an IP address or host name to listen on, e.g. 0.0.0.0 or 127.0.0.1";
  std::string host = readString(ctx, path, v, expected, false);
  if (host.find("://") != std::string::npos || host.find('/') != std::string::npos) {
    ctx.fail(path, echo(host) + " is a URL, not a host", "expected " + expected);
  }
  if (host.find_first_of(" \t\r\n") != std::string::npos) {
    ctx.fail(path, echo(host) + " contains whitespace", "expected " + expected);
  }
  // One colon is host:port (an IPv6 address has at least two).
  if (std::count(host.begin(), host.end(), ':') == 1) {
    ctx.fail(path, echo(host) + " includes a port",
             "expected " + expected + "; set the port with the port key");
  }
  if (host.front() == '[') {
    ctx.fail(path, echo(host) + " is bracketed", "write an IPv6 address without brackets, e.g. ::");
  }
  return host;
}

std::string readPath(const Context& ctx, const std::string& path, const Value& v) {
  std::string p =
      readString(ctx, path, v, "a directory path, or \"\" for the built-in location", true);
  if (!p.empty() && p[0] == '~') {
    ctx.fail(path, echo(p) + " starts with '~', which is not expanded",
             "write the absolute path, e.g. /home/USER/...");
  }
  return p;
}

std::string readLogFormat(const Context& ctx, const std::string& path, const Value& v) {
  std::string format = lower(readString(ctx, path, v, "text or json", false));
  if (format != "text" && format != "json")
    ctx.fail(path, echo(format) + " is not a log format",
             "write text (one line per event) or json (one JSON object per line)");
  return format;
}

std::string readLogLevel(const Context& ctx, const std::string& path, const Value& v) {
  const std::string expected = "one of debug, info, warn, error";
  std::string level = lower(readString(ctx, path, v, expected, false));
  if (level == "debug" || level == "info" || level == "warn" || level == "error") {
    return level;
  }
  if (level == "warning") {
    ctx.fail(path, echo(v.text) + " is not a log level", "write warn");
  }
  ctx.fail(path, echo(v.text) + " is not a log level", "expected " + expected);
}

void checkToken(const Context& ctx, const std::string& path, const std::string& token) {
  // The token goes into an HTTP header: a space or control character would corrupt the request.
  for (char c : token) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) {
      ctx.fail(path, "the token contains a space or control character",
               "expected the bearer token alone, on one line, without surrounding spaces");
    }
  }
}

// ---- YAML structure --------------------------------------------------------------------------

std::string join(const char* const* begin, const char* const* end) {
  std::string out;
  for (auto it = begin; it != end; ++it) {
    if (!out.empty()) {
      out += ", ";
    }
    out += *it;
  }
  return out;
}

// A hint for an unknown key: the closest known key here, or the same name in another section.
std::string suggestKey(const std::string& section, const std::string& key, const char* const* begin,
                       const char* const* end) {
  std::string best;
  size_t best_distance = SIZE_MAX;
  for (auto it = begin; it != end; ++it) {
    size_t d = editDistance(lower(key), *it);
    if (d < best_distance) {
      best_distance = d, best = *it;
    }
  }
  if (best_distance <= 2 && best_distance * 2 < key.size()) {
    return best;
  }
  const std::string full = section.empty() ? key : section + "." + key;
  for (const auto& alias : kKeyAliases) {
    if (full == alias.first) {
      return alias.second;
    }
  }
  for (const std::string& candidate : allKeyPaths()) {
    size_t dot = candidate.rfind('.');
    std::string last = dot == std::string::npos ? candidate : candidate.substr(dot + 1);
    if (last == lower(key) && candidate != full) {
      return candidate;
    }
  }
  return "";
}

std::string childPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

// Visits a mapping's entries, rejecting non-scalar keys, duplicates and unknown keys.
void forEachKey(const Context& ctx, const YAML::Node& node, const std::string& path,
                const char* const* begin, const char* const* end,
                const std::function<void(const std::string&, const YAML::Node&)>& fn) {
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      ctx.fail(path.empty() ? "(top level)" : path, "a key is not a plain name",
               "write keys as plain words, e.g. port");
    }
    const std::string key = it->first.Scalar();
    const std::string where = childPath(path, key);
    if (std::find_if(begin, end, [&](const char* k) { return key == k; }) == end) {
      std::string hint = suggestKey(path, key, begin, end);
      ctx.fail(where, "unknown key",
               "known keys: " + join(begin, end) +
                   (hint.empty() ? "" : " (did you mean '" + hint + "'?)"));
    }
    if (!seen.insert(key).second) {
      ctx.fail(where, "duplicate key", "keep one of the two entries");
    }
    fn(key, it->second);
  }
}

// A section (`rpc:`, `http:`...): a mapping, or no value for "all defaults".
bool isSection(const Context& ctx, const YAML::Node& node, const std::string& path,
               const std::string& keys) {
  if (node.IsNull()) {
    return false;
  }
  if (!node.IsMap()) {
    Value v = fromYaml(node);
    if (v.kind == Value::Kind::kSequence) {
      ctx.fail(path, "found a list", "expected a mapping with keys " + keys);
    }
    ctx.fail(path, "found " + echo(v.text), "expected a mapping with keys " + keys);
  }
  return true;
}

// ---- options: YAML -> JSON -------------------------------------------------------------------

void appendJsonString(std::string& out, const std::string& s) {
  blockbuster::Json::appendString(out, s);
}

// A plain (untagged) scalar resolved by the YAML 1.2 core schema, appended as JSON.
void appendPlainScalar(const Context& ctx, const std::string& path, const std::string& s,
                       std::string& out) {
  if (s == "true" || s == "True" || s == "TRUE") {
    out += "true";
    return;
  }
  if (s == "false" || s == "False" || s == "FALSE") {
    out += "false";
    return;
  }
  int64_t n = 0;
  switch (parseDecimal(s, &n)) {
    case IntParse::kOk:
      out += std::to_string(n);
      return;
    case IntParse::kOverflow:
      // Valid JSON still: readers that cannot hold it exactly make it a double.
      out += formatDouble(std::strtod(s.c_str(), nullptr));
      return;
    case IntParse::kNotInteger:
      break;
  }
  if (s.size() > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'o')) {
    const int base = s[1] == 'x' ? 16 : 8;
    const std::string digits = s.substr(2);
    const char* valid = base == 16 ? "0123456789abcdefABCDEF" : "01234567";
    if (digits.find_first_not_of(valid) == std::string::npos) {
      errno = 0;
      unsigned long long v = std::strtoull(digits.c_str(), nullptr, base);
      if (errno == ERANGE || v > static_cast<unsigned long long>(INT64_MAX)) {
        ctx.fail(path, s + " is out of range", "expected an integer that fits in 64 bits");
      }
      out += std::to_string(v);
      return;
    }
  }
  if (looksLikeFloat(s)) {
    double d = std::strtod(s.c_str(), nullptr);
    if (!std::isfinite(d)) {
      ctx.fail(path, s + " is out of range", "expected a number JSON can hold");
    }
    out += formatDouble(d);
    return;
  }
  if (isInfOrNan(s)) {
    ctx.fail(path, s + " has no JSON equivalent",
             "write a finite number, or quote it for a string");
  }
  appendJsonString(out, s);
}

// Plugin options as JSON, bounded: YAML aliases (*name) repeat what their anchor (&name) holds,
// so a few hundred bytes of nested aliases expand to gigabytes, and an alias inside its own
// anchor is a cycle. `inside` holds the nodes from the options' root down to `node`.
struct JsonBudget {
  std::vector<YAML::Node> inside;
};

void appendJson(const Context& ctx, const YAML::Node& node, const std::string& path,
                std::string& out, JsonBudget& budget) {
  for (const YAML::Node& outer : budget.inside) {
    if (outer.is(node)) {
      ctx.fail(path, "an alias refers to the mapping or list that holds it (a cycle)",
               "replace the alias (*name) with the values it should repeat");
    }
  }
  if (budget.inside.size() >= kMaxOptionsDepth) {
    ctx.fail(path, "nested more than " + std::to_string(kMaxOptionsDepth) + " levels deep",
             "flatten the options");
  }
  if (out.size() > kMaxOptionsBytes) {
    ctx.fail(path,
             "the options grow past " + std::to_string(kMaxOptionsBytes / 1024) +
                 " KiB as JSON (aliases repeat what their anchor holds)",
             "write the options out without nested aliases");
  }
  budget.inside.push_back(node);
  struct Pop {
    JsonBudget& b;
    ~Pop() { b.inside.pop_back(); }
  } pop{budget};
  switch (node.Type()) {
    case YAML::NodeType::Map: {
      out += '{';
      std::set<std::string> seen;
      bool first = true;
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) {
          ctx.fail(path, "a key is not a plain name", "write option names as plain words");
        }
        const std::string key = it->first.Scalar();
        const std::string where = childPath(path, key);
        if (!seen.insert(key).second) {
          ctx.fail(where, "duplicate key", "keep one of the two entries");
        }
        if (!first) {
          out += ", ";
        }
        first = false;
        appendJsonString(out, key);
        out += ": ";
        appendJson(ctx, it->second, where, out, budget);
      }
      out += '}';
      return;
    }
    case YAML::NodeType::Sequence: {
      out += '[';
      for (size_t i = 0; i < node.size(); ++i) {
        if (i > 0) {
          out += ", ";
        }
        appendJson(ctx, node[i], path + "[" + std::to_string(i) + "]", out, budget);
      }
      out += ']';
      return;
    }
    case YAML::NodeType::Scalar: {
      const std::string& tag = node.Tag();
      const std::string& s = node.Scalar();
      if (tag == "?") {
        appendPlainScalar(ctx, path, s, out);
      } else if (tag == "tag:yaml.org,2002:int" || tag == "tag:yaml.org,2002:float" ||
                 tag == "tag:yaml.org,2002:bool" || tag == "tag:yaml.org,2002:null") {
        // An explicit !!int/!!float/!!bool/!!null resolves like the plain form.
        if (tag == "tag:yaml.org,2002:null") {
          out += "null";
        } else {
          appendPlainScalar(ctx, path, s, out);
        }
      } else {
        appendJsonString(out, s);
      }
      return;
    }
    default:
      out += "null";
      return;
  }
}

// ---- the schema ------------------------------------------------------------------------------

bool validPluginName(const std::string& name) {
  if (name.empty() || name[0] < 'a' || name[0] > 'z') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void parseRpc(const Context& ctx, const YAML::Node& node, RpcConfig& rpc) {
  if (!isSection(ctx, node, "rpc", join(std::begin(kRpcKeys), std::end(kRpcKeys)))) {
    return;
  }
  forEachKey(
      ctx, node, "rpc", std::begin(kRpcKeys), std::end(kRpcKeys),
      [&](const std::string& key, const YAML::Node& child) {
        const std::string path = "rpc." + key;
        const Value v = fromYaml(child);
        if (key == "connect_timeout_ms") {
          rpc.connect_timeout_ms = readIntField(ctx, path, v, positiveMsRule());
        } else if (key == "timeout_ms") {
          rpc.timeout_ms = readIntField(ctx, path, v, positiveMsRule());
        } else if (key == "retries") {
          rpc.retries =
              readIntField(ctx, path, v, {0, 10, "an integer", "an integer from 0 to 10"});
        } else if (key == "backoff_initial_ms") {
          rpc.backoff_initial_ms = readIntField(ctx, path, v, positiveMsRule());
        } else if (key == "backoff_max_ms") {
          rpc.backoff_max_ms = readIntField(ctx, path, v, positiveMsRule());
        } else if (key == "max_requests_per_second") {
          rpc.max_requests_per_second = readRate(ctx, path, v);
        } else if (key == "burst") {
          rpc.burst =
              readIntField(ctx, path, v, {1, INT_MAX, "an integer", "an integer of at least 1"});
        } else if (key == "max_connections") {
          rpc.max_connections =
              readIntField(ctx, path, v, {1, 1024, "an integer", "an integer from 1 to 1024"});
        } else if (key == "max_response_bytes") {
          rpc.max_response_bytes = readInt(
              ctx, path, v, {1024, INT64_MAX, "an integer", "an integer of at least 1024 (bytes)"});
        } else if (key == "share_ms") {
          rpc.share_ms = readIntField(
              ctx, path, v, {0, 1000, "an integer", "an integer from 0 to 1000 (milliseconds)"});
        } else if (key == "tls_ca_file") {
          rpc.tls_ca_file = readPath(ctx, path, v);
        }
      });
  if (rpc.backoff_max_ms < rpc.backoff_initial_ms) {
    ctx.fail("rpc.backoff_max_ms",
             std::to_string(rpc.backoff_max_ms) + " is less than rpc.backoff_initial_ms (" +
                 std::to_string(rpc.backoff_initial_ms) + ")",
             "expected backoff_max_ms >= backoff_initial_ms");
  }
}

std::string readOrigin(const Context& ctx, const std::string& path, const Value& v) {
  const std::string expected = "\"*\" or an origin such as https://example.com:8080";
  std::string origin = readString(ctx, path, v, expected, false);
  if (origin == "*") {
    return origin;
  }
  size_t scheme = origin.find("://");
  if (!(startsWithNoCase(origin, "http://") || startsWithNoCase(origin, "https://")) ||
      origin.size() == scheme + 3) {
    ctx.fail(path, echo(origin) + " is not an origin", "expected " + expected);
  }
  // Browsers send Origin without a path, so "https://x.com/" would never match.
  if (origin.find('/', scheme + 3) != std::string::npos) {
    ctx.fail(path, echo(origin) + " has a path", "expected " + expected + ", with no trailing '/'");
  }
  return origin;
}

// `<section>.tls: {cert_file, key_file}`: both or neither.
void parseTls(const Context& ctx, const YAML::Node& node, const std::string& section,
              Listener& listener) {
  const std::string where = section + ".tls";
  if (!isSection(ctx, node, where, join(std::begin(kTlsKeys), std::end(kTlsKeys)))) {
    return;
  }
  forEachKey(ctx, node, where, std::begin(kTlsKeys), std::end(kTlsKeys),
             [&](const std::string& key, const YAML::Node& child) {
               std::string value = readPath(ctx, where + "." + key, fromYaml(child));
               (key == "cert_file" ? listener.tls_cert_file : listener.tls_key_file) = value;
             });
  if (listener.tls_cert_file.empty() != listener.tls_key_file.empty()) {
    // Name the key that is missing, e.g. "ws.tls.key_file: missing while ws.tls.cert_file is set".
    const bool no_key = listener.tls_key_file.empty();
    ctx.fail(
        where + (no_key ? ".key_file" : ".cert_file"),
        std::string("missing while ") + where + (no_key ? ".cert_file" : ".key_file") + " is set",
        "give both PEM files (certificate and private key) for TLS, or neither for no TLS");
  }
}

void parseHttp(const Context& ctx, const YAML::Node& node, Config& config) {
  if (!isSection(ctx, node, "http", join(std::begin(kHttpKeys), std::end(kHttpKeys)))) {
    return;
  }
  forEachKey(ctx, node, "http", std::begin(kHttpKeys), std::end(kHttpKeys),
             [&](const std::string& key, const YAML::Node& child) {
               const std::string path = "http." + key;
               const Value v = fromYaml(child);
               if (key == "host") {
                 config.http.host = readHost(ctx, path, v);
               } else if (key == "port") {
                 config.http.port = readIntField(ctx, path, v, portRule());
               } else if (key == "tls") {
                 parseTls(ctx, child, "http", config.http);
               } else if (key == "metrics_port") {
                 config.metrics_port = readIntField(ctx, path, v, webPortRule());
               } else if (key == "cors_origins") {
                 config.cors_origins.clear();
                 if (v.kind == Value::Kind::kNull) {
                   return;
                 }
                 if (v.kind != Value::Kind::kSequence) {
                   failKind(ctx, path, v, "a list of origins, e.g. [\"*\"] or [\"https://x.com\"]");
                 }
                 for (size_t i = 0; i < child.size(); ++i) {
                   config.cors_origins.push_back(
                       readOrigin(ctx, path + "[" + std::to_string(i) + "]", fromYaml(child[i])));
                 }
               }
             });
}

// "sha256:<hex>", normalised to lowercase. The value is never echoed: someone may have pasted
// the token itself here instead of its hash.
std::string readSha256(const Context& ctx, const std::string& path, const Value& v) {
  const std::string how =
      "expected \"sha256:<64 hex digits>\"; make one with: printf %s 'SECRET' | sha256sum";
  if (v.kind != Value::Kind::kPlain && v.kind != Value::Kind::kQuoted) {
    failKind(ctx, path, Value{v.kind, ""}, how);
  }
  std::string text = v.text;
  for (auto& c : text) {
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (text.rfind("sha256:", 0) != 0 || text.size() != 7 + 64 ||
      text.find_first_not_of("0123456789abcdef", 7) != std::string::npos) {
    ctx.fail(path, "is not a SHA-256 hash (value not shown)", how);
  }
  return text;
}

void parseAuthSurface(const Context& ctx, const YAML::Node& node, const std::string& where,
                      AuthSurface& surface) {
  if (!isSection(ctx, node, where,
                 join(std::begin(kAuthSurfaceKeys), std::end(kAuthSurfaceKeys)))) {
    return;
  }
  forEachKey(ctx, node, where, std::begin(kAuthSurfaceKeys), std::end(kAuthSurfaceKeys),
             [&](const std::string& key, const YAML::Node& child) {
               const std::string path = where + "." + key;
               const Value v = fromYaml(child);
               if (v.kind == Value::Kind::kNull) {
                 return;
               }
               if (v.kind != Value::Kind::kSequence) {
                 failKind(ctx, path, Value{v.kind, ""},
                          key == "bearer_sha256"
                              ? "a list of \"sha256:<hex>\" token hashes"
                              : "a list of {user: NAME, password_sha256: \"sha256:<hex>\"}");
               }
               for (size_t i = 0; i < child.size(); ++i) {
                 const std::string item = path + "[" + std::to_string(i) + "]";
                 if (key == "bearer_sha256") {
                   surface.bearer_sha256.push_back(readSha256(ctx, item, fromYaml(child[i])));
                   continue;
                 }
                 if (!child[i].IsMap()) {
                   failKind(ctx, item, Value{fromYaml(child[i]).kind, ""},
                            "a mapping {user: NAME, password_sha256: \"sha256:<hex>\"}");
                 }
                 AuthSurface::BasicUser user;
                 forEachKey(
                     ctx, child[i], item, std::begin(kBasicUserKeys), std::end(kBasicUserKeys),
                     [&](const std::string& k, const YAML::Node& n) {
                       const Value uv = fromYaml(n);
                       if (k == "user") {
                         if ((uv.kind != Value::Kind::kPlain && uv.kind != Value::Kind::kQuoted) ||
                             uv.text.empty() || uv.text.find(':') != std::string::npos) {
                           failKind(ctx, item + ".user", uv, "a user name without ':'");
                         }
                         user.user = uv.text;
                       } else {
                         user.password_sha256 = readSha256(ctx, item + "." + k, uv);
                       }
                     });
                 if (user.user.empty() || user.password_sha256.empty()) {
                   ctx.fail(item, "needs both user and password_sha256",
                            "give {user: NAME, password_sha256: \"sha256:<hex>\"}");
                 }
                 surface.basic.push_back(std::move(user));
               }
             });
}

void parseAuth(const Context& ctx, const YAML::Node& node, Config& config) {
  if (!isSection(ctx, node, "auth", join(std::begin(kAuthKeys), std::end(kAuthKeys)))) {
    return;
  }
  forEachKey(ctx, node, "auth", std::begin(kAuthKeys), std::end(kAuthKeys),
             [&](const std::string& key, const YAML::Node& child) {
               AuthSurface& s = key == "api"       ? config.auth.api
                                : key == "metrics" ? config.auth.metrics
                                                   : config.auth.ws;
               parseAuthSurface(ctx, child, "auth." + key, s);
             });
}

void parseWs(const Context& ctx, const YAML::Node& node, Config& config) {
  if (!isSection(ctx, node, "ws", join(std::begin(kWsKeys), std::end(kWsKeys)))) {
    return;
  }
  forEachKey(ctx, node, "ws", std::begin(kWsKeys), std::end(kWsKeys),
             [&](const std::string& key, const YAML::Node& child) {
               const std::string path = "ws." + key;
               const Value v = fromYaml(child);
               if (key == "host") {
                 config.ws.host = readHost(ctx, path, v);
               } else if (key == "port") {
                 config.ws.port = readIntField(ctx, path, v, portRule());
               } else if (key == "feature_port") {
                 config.feature_ws.port = readIntField(ctx, path, v, portRule());
               } else if (key == "tls") {
                 parseTls(ctx, child, "ws", config.ws);  // both WebSocket ports
               }
             });
}

void parseWeb(const Context& ctx, const YAML::Node& node, Config& config) {
  if (!isSection(ctx, node, "web", join(std::begin(kWebKeys), std::end(kWebKeys)))) {
    return;
  }
  forEachKey(
      ctx, node, "web", std::begin(kWebKeys), std::end(kWebKeys),
      [&](const std::string& key, const YAML::Node& child) {
        const std::string path = "web." + key;
        const Value v = fromYaml(child);
        if (key == "host") {
          config.web.host = readHost(ctx, path, v);
        } else if (key == "port") {
          config.web.port = readIntField(ctx, path, v, webPortRule());
        } else if (key == "root") {
          config.web_root = readPath(ctx, path, v);
        } else if (key == "tls") {
          parseTls(ctx, child, "web", config.web);
        } else if (key == "grafana_url") {
          config.web_page.grafana_url =
              v.kind == Value::Kind::kNull || v.text.empty() ? "" : readUrl(ctx, path, v, false);
        } else if (key == "last_block_warn_seconds") {
          config.web_page.last_block_warn_seconds = readIntField(
              ctx, path, v, {1, 86400, "an integer", "an integer from 1 to 86400 (seconds)"});
        } else if (key == "last_block_critical_seconds") {
          config.web_page.last_block_critical_seconds = readIntField(
              ctx, path, v, {1, 86400, "an integer", "an integer from 1 to 86400 (seconds)"});
        }
      });
  if (config.web_page.last_block_critical_seconds <= config.web_page.last_block_warn_seconds) {
    ctx.fail("web.last_block_critical_seconds",
             std::to_string(config.web_page.last_block_critical_seconds) +
                 " is not above web.last_block_warn_seconds (" +
                 std::to_string(config.web_page.last_block_warn_seconds) + ")",
             "make the red threshold larger than the amber one");
  }
}

// history.window: seconds (60 to 86400), or with a unit: "90m", "1h", "24h".
void parseHistory(const Context& ctx, const YAML::Node& node, Config& config) {
  if (!isSection(ctx, node, "history", join(std::begin(kHistoryKeys), std::end(kHistoryKeys)))) {
    return;
  }
  forEachKey(
      ctx, node, "history", std::begin(kHistoryKeys), std::end(kHistoryKeys),
      [&](const std::string&, const YAML::Node& child) {
        const std::string expected =
            "seconds from 60 to 86400, or a number with s, m or h (e.g. 1h, 24h)";
        Value v = fromYaml(child);
        int64_t unit = 1;
        if (v.kind == Value::Kind::kPlain && !v.text.empty()) {
          const char last = v.text.back();
          if (last == 's' || last == 'm' || last == 'h') {
            unit = last == 'h' ? 3600 : last == 'm' ? 60 : 1;
            v.text.pop_back();
          }
        }
        const int64_t n = readInt(ctx, "history.window", v, {1, 86400, "a duration", expected});
        if (n * unit < 60 || n * unit > 86400) {
          ctx.fail("history.window", std::to_string(n * unit) + " s is out of range",
                   "expected " + expected);
        }
        config.history_window_seconds = n * unit;
      });
}

PluginConfig parsePlugin(const Context& ctx, const YAML::Node& node, const std::string& path) {
  PluginConfig plugin;
  if (!isSection(ctx, node, path, join(std::begin(kPluginKeys), std::end(kPluginKeys)))) {
    return plugin;
  }
  forEachKey(
      ctx, node, path, std::begin(kPluginKeys), std::end(kPluginKeys),
      [&](const std::string& key, const YAML::Node& child) {
        const std::string where = path + "." + key;
        const Value v = fromYaml(child);
        if (key == "enabled") {
          plugin.enabled = readBool(ctx, where, v);
        } else if (key == "interval_ms") {
          plugin.interval_ms =
              readIntField(ctx, where, v,
                           {100, 3600000, "an integer",
                            "an integer from 100 to 3600000 (milliseconds between collections)"});
        } else if (key == "timeout_ms") {
          plugin.timeout_ms = readIntField(
              ctx, where, v,
              {0, INT_MAX, "an integer",
               "an integer of at least 0 (milliseconds; 0 = the plugin's interval_ms)"});
        } else if (key == "isolation") {
          const std::string expected = "inprocess or process";
          std::string mode = readString(ctx, where, v, expected, false);
          if (mode != "inprocess" && mode != "process") {
            ctx.fail(where, echo(mode) + " is not an isolation mode", "expected " + expected);
          }
          plugin.isolation = mode;
        } else if (key == "options") {
          if (v.kind == Value::Kind::kNull) {
            plugin.options_json = "{}";
            return;
          }
          if (v.kind != Value::Kind::kMap) {
            failKind(ctx, where, v, "a mapping of option names to values");
          }
          std::string json;
          JsonBudget budget;
          appendJson(ctx, child, where, json, budget);
          plugin.options_json = json;
        }
      });
  return plugin;
}

void parsePlugins(const Context& ctx, const YAML::Node& node, Config& config) {
  if (node.IsNull()) {
    return;
  }
  if (!node.IsMap()) {
    failKind(ctx, "plugins", fromYaml(node), "a mapping of plugin names to their settings");
  }
  std::set<std::string> seen;
  for (auto it = node.begin(); it != node.end(); ++it) {
    if (!it->first.IsScalar()) {
      ctx.fail("plugins", "a plugin name is not a plain word", "write names like network");
    }
    const std::string name = it->first.Scalar();
    const std::string path = "plugins." + name;
    if (!validPluginName(name)) {
      ctx.fail(path, "invalid plugin name",
               "expected lowercase letters, digits and '_', starting with a letter");
    }
    if (!seen.insert(name).second) {
      ctx.fail(path, "duplicate key", "keep one of the two entries");
    }
    config.plugins[name] = parsePlugin(ctx, it->second, path);
  }
}

// The token, if the text sets one, so that no error message (even a syntax error) repeats it.
std::vector<std::string> secretsInText(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    size_t key = line.find("auth_token");
    if (key == std::string::npos) {
      continue;
    }
    size_t colon = line.find(':', key);
    if (colon == std::string::npos) {
      continue;
    }
    std::string value = line.substr(colon + 1);
    size_t b = value.find_first_not_of(" \t");
    size_t e = value.find_last_not_of(" \t\r");
    if (b == std::string::npos) {
      continue;
    }
    value = value.substr(b, e - b + 1);
    if (value.front() == '"' || value.front() == '\'') {
      size_t close = value.find(value.front(), 1);
      value = value.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    } else {
      size_t comment = value.find(" #");
      if (comment != std::string::npos) {
        value = value.substr(0, value.find_last_not_of(" \t", comment) + 1);
      }
    }
    if (!value.empty()) {
      out.push_back(value);
    }
  }
  return out;
}

// ---- files -----------------------------------------------------------------------------------

enum class ReadResult { kOk, kMissing };

// Reads a whole file. Missing (ENOENT/ENOTDIR) is reported unless `must_exist`; any other failure
// (permissions, a directory) is an error because the operator meant this file to be read.
ReadResult readFile(const std::string& path, bool must_exist, std::string* out) {
  auto fail = [&](int err) -> ReadResult {
    if (!must_exist && (err == ENOENT || err == ENOTDIR)) {
      return ReadResult::kMissing;
    }
    throw ConfigError(oneLine(path + ": cannot read: " + std::strerror(err) +
                              "; check the path and its permissions"));
  };
  // O_NONBLOCK: opening a FIFO must not wait for a writer; only a regular file is read.
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    return fail(errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || S_ISDIR(st.st_mode)) {
    const int err = S_ISDIR(st.st_mode) ? EISDIR : errno;
    ::close(fd);
    return fail(err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw ConfigError(oneLine(path + ": not a regular file (a device or FIFO)" +
                              "; point --config at a YAML file"));
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  out->clear();
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      int err = errno;
      ::close(fd);
      return fail(err);
    }
    if (n == 0) {
      break;
    }
    out->append(buf, static_cast<size_t>(n));
    if (out->size() > kMaxConfigBytes) {
      ::close(fd);
      throw ConfigError(oneLine(path + ": larger than " + std::to_string(kMaxConfigBytes / 1024) +
                                " KiB, which no config needs; check the path"));
    }
  }
  ::close(fd);
  return ReadResult::kOk;
}

// ---- describe --------------------------------------------------------------------------------

std::string quoted(const std::string& s) {
  std::string out;
  appendJsonString(out, s);
  return out;
}

}  // namespace

Config parseConfig(const std::string& yaml_text, const std::string& source_name) {
  Context ctx{source_name, secretsInText(yaml_text)};
  // yaml-cpp 0.7 (Debian 12) can loop forever, allocating, in LoadAll() on some malformed input
  // (found by tests/fuzz; fixed upstream in yaml-cpp PR 1319). So parse the first document
  // only, and count the documents by their "---" markers at column 0.
  std::vector<YAML::Node> documents;
  size_t markers_after_content = 0;
  {
    bool content = false;
    size_t start = 0;
    while (start < yaml_text.size()) {
      size_t end = yaml_text.find('\n', start);
      if (end == std::string::npos) end = yaml_text.size();
      std::string_view line(yaml_text.data() + start, end - start);
      bool marker = line.substr(0, 3) == "---" &&
                    (line.size() == 3 || line[3] == ' ' || line[3] == '\t' || line[3] == '\r');
      if (marker && content) ++markers_after_content;
      size_t first = line.find_first_not_of(" \t\r");
      if (!marker && first != std::string_view::npos && line[first] != '#') content = true;
      start = end + 1;
    }
  }
  try {
    documents.push_back(YAML::Load(yaml_text));
    if (documents[0].IsNull() && markers_after_content == 0) documents.clear();
  } catch (const YAML::ParserException& e) {
    ctx.fail(
        "line " + std::to_string(e.mark.line + 1) + ", column " + std::to_string(e.mark.column + 1),
        e.msg,
        "fix the YAML syntax there (indentation, ':' after keys, closing quotes and brackets)");
  } catch (const YAML::Exception& e) {
    ctx.fail("(top level)", e.msg, "fix the YAML syntax");
  }
  Config config;
  config.source = source_name;
  if (markers_after_content > 0) {
    ctx.fail("(top level)",
             "the file holds " + std::to_string(markers_after_content + 1) + " YAML documents",
             "keep one document (remove the '---' separators)");
  }
  if (documents.empty() || documents[0].IsNull()) {
    return config;
  }
  const YAML::Node& root = documents[0];
  if (!root.IsMap()) {
    ctx.fail("(top level)", root.IsSequence() ? "found a list" : "found a single value",
             "expected a mapping of keys such as rpc_url: http://localhost:9933");
  }
  // The parsed token too (the text scan misses block scalars and escapes), before any key is
  // validated, since auth_token may come after the key that is wrong.
  for (auto it = root.begin(); it != root.end(); ++it) {
    if (it->first.IsScalar() && it->first.Scalar() == "auth_token" && it->second.IsScalar() &&
        !it->second.Scalar().empty()) {
      ctx.secrets.push_back(it->second.Scalar());
    }
  }
  forEachKey(ctx, root, "", std::begin(kTopKeys), std::end(kTopKeys),
             [&](const std::string& key, const YAML::Node& child) {
               const Value v = fromYaml(child);
               if (key == "rpc_url") {
                 config.rpc.url = readUrl(ctx, key, v, false);
               } else if (key == "ws_url") {
                 config.rpc.ws_url = readUrl(ctx, key, v, true);
               } else if (key == "auth_token") {
                 // Never echo the value: only its shape is described.
                 if (v.kind != Value::Kind::kNull && v.kind != Value::Kind::kPlain &&
                     v.kind != Value::Kind::kQuoted) {
                   failKind(ctx, key, Value{v.kind, ""}, "the bearer token as a string");
                 }
                 config.rpc.auth_token = v.text;
                 checkToken(ctx, key, v.text);
               } else if (key == "rpc") {
                 parseRpc(ctx, child, config.rpc);
               } else if (key == "http") {
                 parseHttp(ctx, child, config);
               } else if (key == "ws") {
                 parseWs(ctx, child, config);
               } else if (key == "web") {
                 parseWeb(ctx, child, config);
               } else if (key == "plugin_dir") {
                 config.plugin_dir = readPath(ctx, key, v);
               } else if (key == "plugin_dirs") {
                 config.plugin_dirs.clear();
                 if (v.kind == Value::Kind::kNull) return;
                 if (v.kind != Value::Kind::kSequence)
                   failKind(ctx, key, v, "a list of directories, e.g. [/opt/my-plugins]");
                 for (size_t i = 0; i < child.size(); ++i) {
                   const std::string item = key + "[" + std::to_string(i) + "]";
                   std::string dir = readPath(ctx, item, fromYaml(child[i]));
                   if (dir.empty() || dir.find(':') != std::string::npos)
                     ctx.fail(item, "an empty path or one with ':'",
                              "give each folder of plugins as a path without ':'");
                   config.plugin_dirs.push_back(std::move(dir));
                 }
               } else if (key == "state_dir") {
                 config.state_dir = readPath(ctx, key, v);
               } else if (key == "log_level") {
                 config.log_level = readLogLevel(ctx, key, v);
               } else if (key == "log_format") {
                 config.log_format = readLogFormat(ctx, key, v);
               } else if (key == "plugins") {
                 parsePlugins(ctx, child, config);
               } else if (key == "auth") {
                 parseAuth(ctx, child, config);
               } else if (key == "history") {
                 parseHistory(ctx, child, config);
               }
             });
  config.feature_ws.host = config.ws.host;
  return config;
}

void applyEnvironment(Config& config, const std::map<std::string, std::string>& env) {
  Context ctx{kEnvironmentSource, {}};
  if (!config.rpc.auth_token.empty()) {
    ctx.secrets.push_back(config.rpc.auth_token);
  }
  auto token = env.find("THEBLOCK_AUTH_TOKEN");
  if (token != env.end() && !token->second.empty()) {
    ctx.secrets.push_back(token->second);
  }

  // An empty variable counts as unset: `VAR=` in a compose file or unit means "no override".
  auto apply = [&](const char* name, const char* key_path,
                   const std::function<void(const std::string&)>& set) {
    auto it = env.find(name);
    if (it == env.end() || it->second.empty()) {
      return;
    }
    set(it->second);
    config.env_overrides.emplace_back(name, key_path);
  };
  apply("THEBLOCK_RPC_URL", "rpc_url", [&](const std::string& s) {
    config.rpc.url = readUrl(ctx, "THEBLOCK_RPC_URL", fromEnv(s), false);
  });
  apply("THEBLOCK_WS_URL", "ws_url", [&](const std::string& s) {
    config.rpc.ws_url = readUrl(ctx, "THEBLOCK_WS_URL", fromEnv(s), true);
  });
  apply("THEBLOCK_AUTH_TOKEN", "auth_token", [&](const std::string& s) {
    checkToken(ctx, "THEBLOCK_AUTH_TOKEN", s);
    config.rpc.auth_token = s;
  });
  apply("BLOCK_BUSTER_RPC_TLS_CA_FILE", "rpc.tls_ca_file", [&](const std::string& s) {
    config.rpc.tls_ca_file = readPath(ctx, "BLOCK_BUSTER_RPC_TLS_CA_FILE", fromEnv(s));
  });
  apply("BLOCK_BUSTER_HTTP_HOST", "http.host", [&](const std::string& s) {
    config.http.host = readHost(ctx, "BLOCK_BUSTER_HTTP_HOST", fromEnv(s));
  });
  apply("BLOCK_BUSTER_HTTP_PORT", "http.port", [&](const std::string& s) {
    config.http.port = readIntField(ctx, "BLOCK_BUSTER_HTTP_PORT", fromEnv(s), portRule());
  });
  apply("BLOCK_BUSTER_WS_HOST", "ws.host", [&](const std::string& s) {
    config.ws.host = readHost(ctx, "BLOCK_BUSTER_WS_HOST", fromEnv(s));
  });
  apply("BLOCK_BUSTER_WS_PORT", "ws.port", [&](const std::string& s) {
    config.ws.port = readIntField(ctx, "BLOCK_BUSTER_WS_PORT", fromEnv(s), portRule());
  });
  apply("BLOCK_BUSTER_FEATURE_WS_PORT", "ws.feature_port", [&](const std::string& s) {
    config.feature_ws.port =
        readIntField(ctx, "BLOCK_BUSTER_FEATURE_WS_PORT", fromEnv(s), portRule());
  });
  apply("BLOCK_BUSTER_WEB_HOST", "web.host", [&](const std::string& s) {
    config.web.host = readHost(ctx, "BLOCK_BUSTER_WEB_HOST", fromEnv(s));
  });
  apply("BLOCK_BUSTER_WEB_PORT", "web.port", [&](const std::string& s) {
    config.web.port = readIntField(ctx, "BLOCK_BUSTER_WEB_PORT", fromEnv(s), webPortRule());
  });
  apply("BLOCK_BUSTER_LOG_LEVEL", "log_level", [&](const std::string& s) {
    config.log_level = readLogLevel(ctx, "BLOCK_BUSTER_LOG_LEVEL", fromEnv(s));
  });
  apply("BLOCK_BUSTER_LOG_FORMAT", "log_format", [&](const std::string& s) {
    config.log_format = readLogFormat(ctx, "BLOCK_BUSTER_LOG_FORMAT", fromEnv(s));
  });
  applyGuideEnvironment(config, env);
  config.feature_ws.host = config.ws.host;
}

Config loadConfig(const LoadOptions& options) {
  std::string text;
  Config config;
  if (options.explicit_path) {
    if (options.explicit_path->empty()) {
      throw ConfigError(
          "--config: empty path; give the configuration file's path, e.g. "
          "--config /etc/block-buster/config.yaml");
    }
    readFile(*options.explicit_path, true, &text);
    config = parseConfig(text, *options.explicit_path);
  } else {
    std::vector<std::string> candidates;
    if (!options.home.empty()) {
      candidates.push_back(options.home + "/.block-buster/config.yaml");
    }
    if (!options.system_path.empty()) {
      candidates.push_back(options.system_path);
    }
    bool found = false;
    for (const std::string& path : candidates) {
      if (readFile(path, false, &text) == ReadResult::kOk) {
        config = parseConfig(text, path);
        found = true;
        break;
      }
    }
    if (!found) {
      config = Config{};
    }
  }
  applyEnvironment(config, options.env);
  return config;
}

std::string describeConfig(const Config& config) {
  std::ostringstream out;
  out << "# source: " << oneLine(config.source);
  if (config.env_overrides.empty()) {
    out << "; no environment overrides\n";
  } else {
    out << "; overridden by environment:";
    for (size_t i = 0; i < config.env_overrides.size(); ++i) {
      out << (i == 0 ? " " : ", ") << config.env_overrides[i].first << " -> "
          << config.env_overrides[i].second;
    }
    out << "\n";
  }
  const RpcConfig& rpc = config.rpc;
  out << "rpc_url: " << quoted(redactUrlCredentials(rpc.url)) << "\n";
  out << "ws_url: " << quoted(redactUrlCredentials(rpc.ws_url)) << "\n";
  out << "auth_token: " << quoted(rpc.auth_token.empty() ? "" : kRedacted) << "\n";
  out << "rpc:\n";
  out << "  connect_timeout_ms: " << rpc.connect_timeout_ms << "\n";
  out << "  timeout_ms: " << rpc.timeout_ms << "\n";
  out << "  retries: " << rpc.retries << "\n";
  out << "  backoff_initial_ms: " << rpc.backoff_initial_ms << "\n";
  out << "  backoff_max_ms: " << rpc.backoff_max_ms << "\n";
  out << "  max_requests_per_second: " << formatDouble(rpc.max_requests_per_second) << "\n";
  out << "  burst: " << rpc.burst << "\n";
  out << "  max_connections: " << rpc.max_connections << "\n";
  out << "  max_response_bytes: " << rpc.max_response_bytes << "\n";
  out << "  share_ms: " << rpc.share_ms << "\n";
  out << "  tls_ca_file: " << quoted(rpc.tls_ca_file) << "\n";
  out << "http:\n";
  out << "  host: " << quoted(config.http.host) << "\n";
  out << "  port: " << config.http.port << "\n";
  out << "  cors_origins: [";
  for (size_t i = 0; i < config.cors_origins.size(); ++i) {
    out << (i == 0 ? "" : ", ") << quoted(config.cors_origins[i]);
  }
  out << "]\n";
  out << "  metrics_port: " << config.metrics_port << "\n";
  out << "  tls: {cert_file: " << quoted(config.http.tls_cert_file)
      << ", key_file: " << quoted(config.http.tls_key_file) << "}\n";
  out << "ws:\n";
  out << "  host: " << quoted(config.ws.host) << "\n";
  out << "  port: " << config.ws.port << "\n";
  out << "  feature_port: " << config.feature_ws.port << "\n";
  out << "  tls: {cert_file: " << quoted(config.ws.tls_cert_file)
      << ", key_file: " << quoted(config.ws.tls_key_file) << "}\n";
  out << "web:\n";
  out << "  host: " << quoted(config.web.host) << "\n";
  out << "  port: " << config.web.port << "\n";
  out << "  root: " << quoted(config.web_root) << "\n";
  out << "  tls: {cert_file: " << quoted(config.web.tls_cert_file)
      << ", key_file: " << quoted(config.web.tls_key_file) << "}\n";
  out << "  grafana_url: " << quoted(config.web_page.grafana_url) << "\n";
  out << "  last_block_warn_seconds: " << config.web_page.last_block_warn_seconds << "\n";
  out << "  last_block_critical_seconds: " << config.web_page.last_block_critical_seconds << "\n";
  out << "history:\n  window: " << config.history_window_seconds << "\n";
  // Only the shape of the credentials: hashes of weak passwords can be brute-forced, so they
  // stay in the file. The comments keep the output parseable (auth: alone = open).
  out << "auth:  # hashes not shown\n";
  const std::pair<const char*, const AuthSurface*> surfaces[] = {
      {"api", &config.auth.api}, {"metrics", &config.auth.metrics}, {"ws", &config.auth.ws}};
  for (const auto& [name, surface] : surfaces) {
    out << "  # " << name << ": ";
    if (surface->open()) {
      out << "open (no authentication)\n";
      continue;
    }
    out << surface->bearer_sha256.size() << " bearer token hash(es); basic users: [";
    for (size_t i = 0; i < surface->basic.size(); ++i) {
      out << (i == 0 ? "" : ", ") << quoted(surface->basic[i].user);
    }
    out << "]\n";
  }
  out << "plugin_dir: " << quoted(config.plugin_dir) << "\n";
  out << "plugin_dirs: [";
  for (size_t i = 0; i < config.plugin_dirs.size(); ++i)
    out << (i == 0 ? "" : ", ") << quoted(config.plugin_dirs[i]);
  out << "]\n";
  out << "state_dir: " << quoted(config.state_dir) << "\n";
  out << "log_level: " << quoted(config.log_level) << "\n";
  out << "log_format: " << quoted(config.log_format) << "\n";
  if (config.plugins.empty()) {
    out << "plugins: {}\n";
  } else {
    out << "plugins:\n";
    for (const auto& [name, plugin] : config.plugins) {
      out << "  " << name << ":\n";
      out << "    enabled: " << (plugin.enabled ? "true" : "false") << "\n";
      out << "    interval_ms: " << plugin.interval_ms << "\n";
      out << "    timeout_ms: " << plugin.timeout_ms << "\n";
      out << "    isolation: " << quoted(plugin.isolation) << "\n";
      // JSON is YAML flow syntax, so the options read back as the same values.
      out << "    options: " << plugin.options_json << "\n";
    }
  }
  return out.str();
}

std::map<std::string, std::string> processEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const char* eq = std::strchr(*entry, '=');
    if (eq == nullptr) {
      continue;
    }
    env.emplace(std::string(*entry, static_cast<size_t>(eq - *entry)), std::string(eq + 1));
  }
  return env;
}

}  // namespace bb
