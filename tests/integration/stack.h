// Integration test support: bb-devnode and blockbuster-agent started as real processes on free
// loopback ports, and a small HTTP client to read the agent.
#pragma once

#include <blockbuster/json.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/await.h"
#include "support/process.h"

namespace bbtest {

struct HttpResult {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  ///< lower-case names
  blockbuster::Json json() const { return blockbuster::Json::parse(body); }
};

/// One HTTP/1.1 request to 127.0.0.1:port. status 0 = no answer.
HttpResult httpRequest(int port, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers = {},
                       const std::string& body = "");
inline HttpResult httpGet(int port, const std::string& target) {
  return httpRequest(port, "GET", target);
}

class DevNode {
 public:
  /// Starts bb-devnode on a free port (or `port` when non-zero) with extra flags.
  explicit DevNode(const std::string& profile, std::vector<std::string> flags = {}, int port = 0);
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
};

class Agent {
 public:
  /// Starts blockbuster-agent against `rpc_url` with its state in `home`; `config_yaml` is
  /// written to a file passed with --config when not empty. Waits for its ready line.
  Agent(const TempDir& home, const std::string& rpc_url, const std::string& config_yaml = "",
        std::map<std::string, std::string> env = {});
  int port() const { return port_; }
  int webPort() const { return web_port_; }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  int port_ = 0;
  int web_port_ = 0;
};

/// A simulated node (spec profile, a block every `block_ms`) and an agent on it with
/// `config_yaml`, shared by the tests of a suite (made in SetUpTestSuite, deleted in
/// TearDownTestSuite). `ws` and `feature`: the agent's WebSocket ports from its ready line, 0 if
/// it named none.
struct SuiteStack {
  explicit SuiteStack(const std::string& config_yaml, int block_ms = 200);
  DevNode node;
  TempDir home;
  Agent agent;
  int ws = 0;
  int feature = 0;
};

}  // namespace bbtest
