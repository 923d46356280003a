// The JSON-RPC 2.0 envelope of the shared client (rpc_client.h): the request it sends, how it
// judges one HTTP reply of the node, and the text of a failed outcome. Pure functions over text,
// built with the SDK's JSON (blockbuster/json.h) and checked with rpc/json_text.h: no I/O, no
// state, so the fuzz target of the envelope (tests/fuzz/fuzz_rpc_envelope.cc) runs them as the
// client does.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "rpc/rpc_client.h"

namespace bb {

/// The result of one HTTP exchange with the node.
struct Attempt {
  RpcStatus status = RpcStatus::Transport;
  RpcFailure failure = RpcFailure::Io;
  std::string json;     // Ok: result text; RpcError: error object text
  std::string cause;    // why it failed, without the method name
  int http_status = 0;  // 0 when no HTTP reply was read
  bool retryable = false;
  // Failed on a kept-alive connection before any reply: the node most likely closed it while
  // idle, so one immediate resend on a fresh connection is not a retry.
  bool stale = false;
  bool reusable = false;    // the connection may serve the next call
  bool never_sent = false;  // no connection was made: the request never reached the node
  int ban_seconds = 0;      // > 0: the node rate-limited us; pause every call this long

  void fail(RpcStatus s, RpcFailure f, std::string why) {
    status = s;
    failure = f;
    cause = std::move(why);
  }
};

/// What the real node bans for after its bucket runs dry, used when 429 carries no Retry-After.
inline constexpr int kDefaultBanSeconds = 60;
/// A Retry-After beyond this is treated as a misconfigured proxy, not a reason to go dark longer.
inline constexpr int kMaxBanSeconds = 3600;

/// The params of a call as sent: `params_json` trimmed, "" meaning {}. nullopt, with `problem`
/// set, when they are not one JSON object (the node refuses positional arrays and scalars).
std::optional<std::string> requestParams(std::string_view params_json, std::string& problem);

/// The request object: {"jsonrpc":"2.0","id":id,"method":method,"params":params}. `params` is
/// what requestParams returned and goes as the caller wrote it (64-bit integers intact).
std::string requestBody(int64_t id, const std::string& method, std::string_view params);

/// Judges the node's reply to request `id`: `http_status`, its Retry-After header ("" if none)
/// and body. Sets status, failure, json or cause, ban_seconds, retryable, and clears reusable
/// when the connection is out of step (a reply to another id). Never throws.
void judgeReply(int http_status, std::string_view retry_after, std::string_view body, int64_t id,
                Attempt& out);

/// A failed outcome's text: {"code":0,"message":message}.
std::string failureJson(const std::string& message);

}  // namespace bb
