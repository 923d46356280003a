// Test helpers: run bb-devnode as a child process and talk HTTP to it with Poco directly
// (not through the agent's RPC client, so these tests judge the simulator alone).
#pragma once

#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/process.h"

namespace devnodetest {

using blockbuster::Json;

/// What came back from one HTTP exchange. `ok` is false when no response arrived at all
/// (closed, reset, refused, timed out); `error` then names the exception.
struct HttpResult {
  bool ok = false;
  int status = 0;
  std::string body;
  long long content_length = -1;
  std::string error;
  bool timed_out = false;
  Json json() const { return Json::parse(body); }
};

/// One bb-devnode process on 127.0.0.1, port 0. Killed on destruction.
class Devnode {
 public:
  explicit Devnode(std::vector<std::string> args);
  int port() const { return port_; }
  bbtest::ChildProcess& process() { return *proc_; }

  /// Raw HTTP; `headers` are added to the request.
  HttpResult http(const std::string& verb, const std::string& path, const std::string& body = "",
                  const std::map<std::string, std::string>& headers = {},
                  std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  /// A JSON-RPC call; `params_json` is the params member's text ("" leaves it out).
  HttpResult rpc(const std::string& method, const std::string& params_json = "{}",
                 const std::map<std::string, std::string>& headers = {},
                 std::chrono::milliseconds timeout = std::chrono::seconds(10)) const;
  /// The result member of a successful call; fails the test otherwise.
  Json result(const std::string& method, const std::string& params_json = "{}") const;
  /// GET/POST/DELETE on the control API, parsed.
  Json control(const std::string& verb, const std::string& path,
               const std::string& body = "") const;
  uint64_t height() const;

 private:
  std::unique_ptr<bbtest::ChildProcess> proc_;
  int port_ = 0;
};

/// True when `obj` is an object holding every key of `keys`.
::testing::AssertionResult hasKeys(const Json& obj, const std::vector<std::string>& keys);

/// Waits up to `timeout` for `pred()`; returns its last value.
bool waitFor(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

}  // namespace devnodetest
