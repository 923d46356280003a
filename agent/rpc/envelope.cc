#include "rpc/envelope.h"

#include <blockbuster/json.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "rpc/json_text.h"
#include "util/log.h"

namespace bb {

namespace {

using blockbuster::Json;

// Members read from a scalar: anything longer is not a code or an id worth parsing.
constexpr std::size_t kMaxScalarText = 64;

bool startsNumber(std::string_view text) {
  return !text.empty() &&
         (text.front() == '-' || std::isdigit(static_cast<unsigned char>(text[0])));
}

// An integer member (a number, or a string holding one, as the node's error codes may be);
// nullopt for anything else.
std::optional<int64_t> integerOf(std::string_view text) {
  if (text.size() > kMaxScalarText) return std::nullopt;
  try {
    const Json value = Json::parse(text);
    if (value.isString()) {
      const std::string& s = value.asString();
      if (s.empty() || s.size() > 20) return std::nullopt;
      char* end = nullptr;
      const long long v = std::strtoll(s.c_str(), &end, 10);
      if (*end != '\0') return std::nullopt;
      return v;
    }
    if (value.isInt()) return value.asInt();
    if (value.isNumber()) {
      const double d = value.asDouble();
      if (std::isfinite(d) && std::fabs(d) < 9.2e18) return static_cast<int64_t>(d);
    }
  } catch (const blockbuster::JsonError&) {
  }
  return std::nullopt;
}

// The reply's id matches the request's: a number whose integer part is `id`.
bool sameId(std::string_view text, int64_t id) {
  if (!startsNumber(text)) return false;
  const auto value = integerOf(text);
  return value && *value == id;
}

}  // namespace

std::optional<std::string> requestParams(std::string_view params_json, std::string& problem) {
  const std::string_view params = jsontext::trim(params_json);
  if (params.empty()) return std::string("{}");
  if (!jsontext::valid(params)) {
    problem = "params are not valid JSON (" + logValue(std::string(params)) + ")";
    return std::nullopt;
  }
  if (params.front() != '{') {
    problem =
        "params must be a JSON object such as {} (the node refuses positional arrays and "
        "scalars)";
    return std::nullopt;
  }
  return std::string(params);
}

std::string requestBody(int64_t id, const std::string& method, std::string_view params) {
  // Built without params, which follow as the caller wrote them (already checked to be one
  // JSON object): re-serializing would round a plugin's 64-bit integers and decimals.
  std::string body = Json{{"jsonrpc", "2.0"}, {"id", id}, {"method", method}}.dump();
  body.pop_back();  // '}'
  body += ",\"params\":";
  body += params;
  body += '}';
  return body;
}

std::string failureJson(const std::string& message) {
  return Json{{"code", 0}, {"message", message}}.dump();
}

void judgeReply(int http, std::string_view retry_after, std::string_view body, int64_t id,
                Attempt& out) {
  out.http_status = http;
  if (http == 429) {
    int seconds = kDefaultBanSeconds;
    const std::string_view after = jsontext::trim(retry_after);
    if (!after.empty() && after.size() <= 6 &&
        std::all_of(after.begin(), after.end(),
                    [](unsigned char c) { return std::isdigit(c) != 0; })) {
      seconds = std::clamp(std::atoi(std::string(after).c_str()), 1, kMaxBanSeconds);
    }
    out.ban_seconds = seconds;
    out.fail(RpcStatus::Limit, RpcFailure::RateLimited,
             "HTTP 429 from node (rate-limited); every call paused for " + std::to_string(seconds) +
                 " s");
    return;
  }
  if (http == 403) {
    out.fail(RpcStatus::Transport, RpcFailure::HttpStatus,
             "HTTP 403 from node (Host header refused or forbidden)");
    return;
  }

  // Any status may carry a JSON-RPC envelope; an error in it is the node's answer. The members
  // are found in the text (a repeated one: the last, as parsers keep), never built as values.
  std::optional<std::string_view> error, result, reply_id;
  std::string parse_error;
  const std::string_view text = jsontext::trim(body);
  const bool envelope = !text.empty() && jsontext::forEachMember(text, [&](const std::string& name,
                                                                           std::string_view value) {
    if (name == "error") error = value;
    if (name == "result") result = value;
    if (name == "id") reply_id = value;
  });
  if (text.empty()) {
    parse_error = "reply body is empty";
  } else if (!envelope) {
    parse_error = jsontext::valid(text) ? "reply is JSON but not an object"
                                        : "reply is not JSON (" + logValue(std::string(text)) + ")";
  }
  const bool has_error = error && *error != "null";
  const bool has_result = result.has_value();
  if (envelope && !has_error && !has_result) {
    parse_error = "reply is not a JSON-RPC response (no result or error member)";
  }

  if (envelope && (has_error || has_result)) {
    if (reply_id && *reply_id != "null" && !sameId(*reply_id, id)) {
      out.fail(RpcStatus::BadResponse, RpcFailure::BadReply,
               "reply id " + logValue(std::string(*reply_id)) + " does not match request id " +
                   std::to_string(id));
      out.reusable = false;  // the connection is out of step with us
      return;
    }
    if (has_error) {
      // A code or message of another type (a string code, an object message) is the node's
      // error all the same: read what can be read.
      std::optional<std::string_view> code_text, message_text;
      if (!jsontext::forEachMember(*error, [&](const std::string& name, std::string_view value) {
            if (name == "code") code_text = value;
            if (name == "message") message_text = value;
          })) {
        out.fail(RpcStatus::BadResponse, RpcFailure::BadReply,
                 "reply's error member is not an object: " + logValue(std::string(*error)));
        return;
      }
      const int64_t code = code_text ? integerOf(*code_text).value_or(0) : 0;
      if (code == -32001 || code == -32002) {
        std::string message = "rate limited";
        if (message_text && message_text->front() == '"') {
          message = Json::parse(*message_text).asString();
        } else if (message_text) {
          message = std::string(*message_text);
        }
        out.ban_seconds = kDefaultBanSeconds;
        out.fail(RpcStatus::Limit, RpcFailure::RateLimited,
                 "node answered " + std::to_string(code) + " (" + logValue(message) +
                     "); every call paused for " + std::to_string(kDefaultBanSeconds) + " s");
        return;
      }
      out.status = RpcStatus::RpcError;
      out.failure = RpcFailure::NodeError;
      out.json = std::string(*error);
      return;
    }
    if (http >= 200 && http < 300) {
      out.status = RpcStatus::Ok;
      out.failure = RpcFailure::None;
      out.json = std::string(*result);
      return;
    }
  }
  if (http >= 500) {
    out.fail(RpcStatus::Transport, RpcFailure::HttpStatus,
             "HTTP " + std::to_string(http) + " from node");
    out.retryable = true;
    return;
  }
  if (http < 200 || http >= 300) {
    out.fail(RpcStatus::Transport, RpcFailure::HttpStatus,
             "HTTP " + std::to_string(http) + " from node");
    return;
  }
  out.fail(RpcStatus::BadResponse, RpcFailure::BadReply, parse_error);
}

}  // namespace bb
