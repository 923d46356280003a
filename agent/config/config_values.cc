// The readers of config values (config_values.h): scalars and their checks, one message each.
#include "config/config_values.h"

#include <algorithm>
#include <cctype>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "config/node_url.h"
#include "util/log.h"

namespace bb::config_detail {
namespace {

void replaceAll(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) {
    return;
  }
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
}

bool startsWithNoCase(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == prefix;
}

}  // namespace

void Context::fail(const std::string& path, const std::string& what, const std::string& fix) const {
  std::string msg = source + ": " + path + ": " + what + "; " + fix;
  for (const std::string& secret : secrets) {
    replaceAll(msg, secret, kRedacted);
  }
  throw ConfigError(oneLine(msg));
}

std::string childPath(const std::string& parent, const std::string& key) {
  return parent.empty() ? key : parent + "." + key;
}

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

// Messages are one line: control characters (a block scalar's newlines, a stray tab) are
// escaped, as the logger does.
std::string oneLine(const std::string& s) {
  return logValue(s, std::numeric_limits<size_t>::max());
}

// A value as it appears in a message: quoted, a URL's user info hidden, long values cut.
std::string echo(const std::string& value) { return echoUrl(value); }

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

}  // namespace bb::config_detail
