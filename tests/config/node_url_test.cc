// The node URL check (config/node_url.h) is one for the config loader and the RPC client: every
// URL --check-config accepts, the agent accepts at start, and a password in a URL never reaches
// a message (issue 15, defect 6).
#include "config/node_url.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config/config.h"
#include "rpc/rpc_client.h"

namespace {

// What constructing the RPC client says about `url`: "" when it accepts it.
std::string clientError(const std::string& url) {
  bb::RpcConfig rpc;
  rpc.url = url;
  try {
    bb::RpcClient client(rpc);
  } catch (const bb::ConfigError& e) {
    return e.what();
  }
  return "";
}

// What the config loader says about rpc_url: `url`: "" when it accepts it.
std::string configError(const std::string& url) {
  try {
    bb::parseConfig("rpc_url: \"" + url + "\"\n", "c.yaml");
  } catch (const bb::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(NodeUrl, ConfigAndClientRefuseTheSameUrls) {
  const std::vector<std::string> bad = {
      "http://node:abc", "http://node:99999", "http://node:-5",  "http://[::1",
      "http://node:0",   "http://node:",      "http://a:b:c",    "http://[nothex]:1",
      "http://[::1]x",   "http://no de:1",    "http://node:1#f", "http://user:pw@node:1",
      "http://n%6fde:1", "http://:9933",      "ftp://node:1",    "http://[::1]:65536",
  };
  for (const auto& url : bad) {
    const std::string config = configError(url);
    const std::string client = clientError(url);
    EXPECT_NE(config, "") << url << " was accepted by the config loader";
    EXPECT_NE(client, "") << url << " was accepted by the RPC client";
    // The same words from both: the client's message is the config's without the file name.
    EXPECT_EQ("c.yaml: " + client, config) << url;
  }
  for (const std::string url :
       {"http://localhost:9933", "http://127.0.0.1:1/rpc?x=1", "http://[::1]:9933",
        "HTTP://Node.Example", "http://node_1:65535"}) {
    EXPECT_EQ(configError(url), "") << url;
    EXPECT_EQ(clientError(url), "") << url;
  }
}

TEST(NodeUrl, PasswordNeverInAnyMessage) {
  for (const std::string url :
       {"http://admin:hunter2@node:abc", "http://admin:hunter2@[::1", "http://admin:hunter2@node:1",
        "https://admin:hunter2@node:1/x", "ftp://admin:hunter2@node"}) {
    for (const std::string& msg : {configError(url), clientError(url)}) {
      EXPECT_NE(msg, "") << url;
      EXPECT_EQ(msg.find("hunter2"), std::string::npos) << msg;
      EXPECT_EQ(msg.find("admin"), std::string::npos) << msg;
    }
  }
  // The environment variable too.
  try {
    bb::Config c;
    bb::applyEnvironment(c, {{"THEBLOCK_RPC_URL", "http://admin:hunter2@node:99999"}});
    ADD_FAILURE() << "accepted";
  } catch (const bb::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).find("hunter2"), std::string::npos) << e.what();
  }
}

TEST(NodeUrl, PartsAreWhatTheClientSends) {
  bb::NodeUrl u;
  bb::NodeUrlProblem p;
  ASSERT_TRUE(bb::parseNodeUrl("http://[::1]:9933/rpc?a=b", bb::NodeUrlUse::kRpc, u, p));
  EXPECT_EQ(u.host, "::1");
  EXPECT_EQ(u.host_header, "[::1]");
  EXPECT_EQ(u.port, 9933);
  EXPECT_EQ(u.target, "/rpc?a=b");
  ASSERT_TRUE(bb::parseNodeUrl("wss://node", bb::NodeUrlUse::kWebSocket, u, p));
  EXPECT_EQ(u.port, 443);
  EXPECT_EQ(u.target, "/");
  ASSERT_FALSE(bb::parseNodeUrl("http://node:1", bb::NodeUrlUse::kWebSocket, u, p));
  EXPECT_EQ(p.what, "'http://node:1' does not start with ws:// or wss://");
  ASSERT_FALSE(bb::parseNodeUrl("http://u:p@node:abc", bb::NodeUrlUse::kRpc, u, p));
  EXPECT_EQ(p.what, "'http://<redacted>@node:abc' carries credentials (user@host)");
}

}  // namespace
