#include "ipc/protocol.h"

#include <blockbuster/json.h>

namespace bb::ipc {

std::string routeErrorBody(const std::string& code, const std::string& message) {
  return blockbuster::Json{{"error", {{"code", code}, {"message", message}}}}.dump();
}

std::string callFailureBody(const std::string& message) {
  return blockbuster::Json{{"code", 0}, {"message", message}}.dump();
}

}  // namespace bb::ipc
