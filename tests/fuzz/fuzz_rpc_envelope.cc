// Fuzz target: the JSON-RPC envelope of the node's replies, as the shared RPC client judges them
// (rpc/rpc_client.h, classifyReply), on any body and HTTP status. Never throws; an Ok result is
// the `result` member's text as the node wrote it (it parses as JSON); the outcome is one of the
// statuses a reply can have.
#include <blockbuster/json.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "rpc/rpc_client.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  static const int kStatuses[] = {200, 200, 200, 200, 201, 204, 400, 403, 404, 429, 500, 502, 503};
  const int http = kStatuses[data[0] % (sizeof kStatuses / sizeof kStatuses[0])];
  const int64_t id = data[1] % 4;  // the reply's id matches sometimes
  const std::string body(reinterpret_cast<const char*>(data + 2), size - 2);
  const bb::RpcOutcome o = bb::RpcClient::classifyReply(http, body, id);
  switch (o.status) {
    case bb::RpcStatus::Ok:
    case bb::RpcStatus::RpcError: {
      try {
        // The member's text, exactly as written: valid JSON (a scalar too, which Poco's own
        // parser cannot take at the top level).
        blockbuster::Json::parse(o.json);
      } catch (const std::exception&) {
        __builtin_trap();
      }
      if (o.status == bb::RpcStatus::Ok && (http < 200 || http >= 300)) __builtin_trap();
      break;
    }
    case bb::RpcStatus::Transport:
    case bb::RpcStatus::BadResponse:
    case bb::RpcStatus::Limit:
      break;
    default:
      __builtin_trap();  // Timeout, Invalid, Shutdown are not a reply's
  }
  return 0;
}
