#include "node_port.h"

#include <blockbuster/plugin_abi.h>

#include <utility>

namespace blockbuster::node {

const char* profileName(Profile p) {
  switch (p) {
    case Profile::kSpec:
      return "spec";
    case Profile::kTheBlock:
      return "theblock";
    case Profile::kUnknown:
      break;
  }
  return "unknown";
}

Answer Answer::result(Json value) {
  Answer a;
  a.ok = true;
  a.status = BB_OK;
  a.value = std::move(value);
  return a;
}

Answer Answer::rpcError(int64_t code, std::string message) {
  Answer a;
  a.status = BB_ERR_RPC;
  a.code = code;
  a.message = std::move(message);
  return a;
}

Answer Answer::failure(int status, std::string message) {
  Answer a;
  a.status = status;
  a.message = std::move(message);
  return a;
}

bool Answer::methodNotFound() const noexcept {
  return !ok && status == BB_ERR_RPC && code == -32601;
}

std::string Answer::describe(std::string_view method) const {
  std::string out(method);
  out += " failed: ";
  out += message.empty() ? "no reason given" : message;
  if (status == BB_ERR_RPC && code != 0) out += " (JSON-RPC " + std::to_string(code) + ")";
  return out;
}

}  // namespace blockbuster::node
