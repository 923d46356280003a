#include "integration/stack.h"

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/StreamCopier.h>

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <thread>

namespace bbtest {

HttpResult httpRequest(int port, const std::string& method, const std::string& target,
                       const std::map<std::string, std::string>& headers, const std::string& body) {
  HttpResult r;
  try {
    Poco::Net::HTTPClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port));
    session.setTimeout(Poco::Timespan(10, 0));
    Poco::Net::HTTPRequest req(method, target, Poco::Net::HTTPMessage::HTTP_1_1);
    for (const auto& h : headers) req.set(h.first, h.second);
    if (!body.empty()) req.setContentLength(static_cast<std::streamsize>(body.size()));
    session.sendRequest(req) << body;
    Poco::Net::HTTPResponse resp;
    std::istream& in = session.receiveResponse(resp);
    r.status = resp.getStatus();
    for (const auto& h : resp) {
      std::string name = h.first;
      std::transform(name.begin(), name.end(), name.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      r.headers[name] = h.second;
    }
    if (method != "HEAD") Poco::StreamCopier::copyToString(in, r.body);
  } catch (const Poco::Exception&) {
    r.status = 0;
  }
  return r;
}

DevNode::DevNode(const std::string& profile, std::vector<std::string> flags, int port) {
  std::vector<std::string> argv{binPath("bb-devnode"), "--listen",
                                "127.0.0.1:" + std::to_string(port), "--profile", profile};
  argv.insert(argv.end(), flags.begin(), flags.end());
  process_ = std::make_unique<ChildProcess>(argv);
  auto line = process_->waitForLine("bb-devnode ready", std::chrono::seconds(20));
  if (!line) throw std::runtime_error("bb-devnode did not start: " + process_->output());
  port_ = portFromLine(*line, "rpc").value_or(0);
}

Agent::Agent(const TempDir& home, const std::string& rpc_url, const std::string& config_yaml,
             std::map<std::string, std::string> env) {
  std::vector<std::string> argv{binPath("blockbuster-agent")};
  if (!config_yaml.empty()) {
    home.write("agent.yaml", config_yaml);
    argv.push_back("--config");
    argv.push_back(home.file("agent.yaml"));
  }
  std::map<std::string, std::string> e{{"HOME", home.path()},
                                       {"THEBLOCK_RPC_URL", rpc_url},
                                       {"BLOCK_BUSTER_HTTP_HOST", "127.0.0.1"},
                                       {"BLOCK_BUSTER_HTTP_PORT", "0"},
                                       {"BLOCK_BUSTER_WEB_HOST", "127.0.0.1"},
                                       {"BLOCK_BUSTER_WEB_PORT", "0"},
                                       {"BLOCK_BUSTER_WS_HOST", "127.0.0.1"},
                                       {"BLOCK_BUSTER_WS_PORT", "0"},
                                       {"BLOCK_BUSTER_FEATURE_WS_PORT", "0"}};
  for (auto& kv : env) e[kv.first] = kv.second;
  process_ = std::make_unique<ChildProcess>(argv, e);
  auto line = process_->waitForLine("blockbuster-agent ready", std::chrono::seconds(20));
  if (!line) throw std::runtime_error("blockbuster-agent did not start: " + process_->output());
  port_ = portFromLine(*line, "http").value_or(0);
  web_port_ = portFromLine(*line, "web").value_or(0);
}

SuiteStack::SuiteStack(const std::string& config_yaml, int block_ms)
    : node("spec", {"--block-ms", std::to_string(block_ms)}), agent(home, node.url(), config_yaml) {
  const std::string out = agent.process().output();
  const auto at = out.find("blockbuster-agent ready");
  if (at == std::string::npos) return;
  const std::string line = out.substr(at, out.find('\n', at) - at);
  ws = portFromLine(line, "ws").value_or(0);
  feature = portFromLine(line, "feature").value_or(0);
}

}  // namespace bbtest
