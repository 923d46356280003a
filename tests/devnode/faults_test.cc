// bb-devnode fault injection: each fault by flag and through POST /_devnode/faults.
#include <gtest/gtest.h>

#include "devnode_client.h"

namespace devnodetest {
namespace {

using std::chrono::milliseconds;

const std::vector<std::string> kBase = {"--profile", "spec", "--block-ms", "0"};

std::vector<std::string> with(std::vector<std::string> extra) {
  std::vector<std::string> args = kBase;
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// Checks what one call under `mode` looks like from the client's side.
void expectMode(const Devnode& node, const std::string& mode) {
  SCOPED_TRACE(mode);
  HttpResult r = node.rpc("net.stats", "{}", {}, milliseconds(mode == "hang" ? 700 : 10000));
  if (mode == "http500") {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 500);
  } else if (mode == "garbage") {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_EQ(r.status, 200);
    EXPECT_THROW(Json::parse(r.body), blockbuster::JsonError) << r.body;
  } else if (mode == "truncated") {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_GT(r.content_length, static_cast<long long>(r.body.size()));
  } else if (mode == "oversized") {
    ASSERT_TRUE(r.ok) << r.error;
    EXPECT_GE(r.body.size(), 2u * 1024 * 1024);
    Json j = r.json();  // still valid JSON, with the real result
    EXPECT_TRUE(j["result"].contains("tps"));
  } else if (mode == "empty") {
    EXPECT_FALSE(r.ok);
    EXPECT_FALSE(r.timed_out) << "empty closes at once";
  } else if (mode == "hang") {
    EXPECT_FALSE(r.ok);
    EXPECT_TRUE(r.timed_out) << r.error;
  }
}

class DevnodeModes : public ::testing::TestWithParam<std::string> {};

TEST_P(DevnodeModes, ByFlag) {
  Devnode node(with({"--fault-mode", GetParam(), "--oversized-bytes", "2097152", "--fault-methods",
                     "net.stats"}));
  expectMode(node, GetParam());
  // Other methods are untouched.
  EXPECT_TRUE(node.rpc("net.peers").json().contains("result"));
}

TEST_P(DevnodeModes, ByControlEndpoint) {
  Devnode node(kBase);
  EXPECT_TRUE(node.rpc("net.stats").json().contains("result"));
  node.control(
      "POST", "/_devnode/faults",
      "{\"mode\":\"" + GetParam() + "\",\"oversized_bytes\":2097152,\"methods\":[\"net.stats\"]}");
  expectMode(node, GetParam());
  node.control("DELETE", "/_devnode/faults");
  HttpResult r = node.rpc("net.stats");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_TRUE(r.json().contains("result"));
}

INSTANTIATE_TEST_SUITE_P(AllModes, DevnodeModes,
                         ::testing::Values("http500", "garbage", "truncated", "oversized", "empty",
                                           "hang"));

TEST(DevnodeFaults, ErrorRateByFlagAndControl) {
  Devnode node(with({"--error-rate", "1"}));
  EXPECT_EQ(node.rpc("net.peers").json()["error"]["code"].asInt(), -32603);
  node.control("POST", "/_devnode/faults", R"({"error_rate":0})");
  EXPECT_TRUE(node.rpc("net.peers").json().contains("result"));
  node.control("POST", "/_devnode/faults", R"({"error_rate":1,"methods":["net.stats"]})");
  EXPECT_EQ(node.rpc("net.stats").json()["error"]["code"].asInt(), -32603);
  EXPECT_TRUE(node.rpc("net.peers").json().contains("result"));
  // A fraction fails some calls and not others.
  node.control("POST", "/_devnode/faults", R"({"error_rate":0.5,"methods":[]})");
  int failed = 0;
  for (int i = 0; i < 60; ++i) failed += node.rpc("net.peers").json().contains("error") ? 1 : 0;
  EXPECT_GT(failed, 0);
  EXPECT_LT(failed, 60);
}

TEST(DevnodeFaults, LatencyByFlagAndControl) {
  Devnode node(with({"--latency-ms", "net.stats=5000"}));
  HttpResult slow = node.rpc("net.stats", "{}", {}, milliseconds(300));
  EXPECT_FALSE(slow.ok);
  EXPECT_TRUE(slow.timed_out);
  EXPECT_TRUE(node.rpc("net.peers", "{}", {}, milliseconds(5000)).ok);
  node.control("POST", "/_devnode/faults", R"({"latency_ms":{"net.stats":0,"net.peers":5000}})");
  EXPECT_TRUE(node.rpc("net.peers", "{}", {}, milliseconds(300)).timed_out);
  EXPECT_TRUE(node.rpc("net.stats", "{}", {}, milliseconds(5000)).ok);
}

TEST(DevnodeFaults, RemovedMethodByFlagAndControl) {
  Devnode node(with({"--remove-method", "net.stats"}));
  EXPECT_EQ(node.rpc("net.stats").json()["error"]["code"].asInt(), -32601);
  node.control("POST", "/_devnode/faults", R"({"remove_methods":["storage.stats"]})");
  EXPECT_TRUE(node.rpc("net.stats").json().contains("result"));
  EXPECT_EQ(node.rpc("storage.stats").json()["error"]["code"].asInt(), -32601);
}

TEST(DevnodeFaults, AuthRequiredByFlagAndControl) {
  Devnode spec(with({"--auth-token", "t0k"}));
  EXPECT_EQ(spec.rpc("net.peers").status, 401);
  EXPECT_EQ(spec.rpc("net.peers", "{}", {{"Authorization", "Bearer t0k"}}).status, 200);
  Devnode node(kBase);
  node.control("POST", "/_devnode/faults", R"({"auth_token":"abc"})");
  EXPECT_EQ(node.rpc("net.peers").status, 401);
  EXPECT_EQ(node.rpc("net.peers", "{}", {{"Authorization", "Bearer abc"}}).status, 200);
  node.control("DELETE", "/_devnode/faults");
  EXPECT_EQ(node.rpc("net.peers").status, 200);
}

TEST(DevnodeFaults, BadFaultBodyIsRefusedWithTheReason) {
  Devnode node(kBase);
  HttpResult r = node.http("POST", "/_devnode/faults", R"({"mode":"explode"})");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(r.body.find("mode must be one of"), std::string::npos) << r.body;
  HttpResult unknown = node.http("POST", "/_devnode/faults", R"({"volume":11})");
  EXPECT_EQ(unknown.status, 400);
}

bool refused(const Devnode& node) {
  return !node.http("GET", "/_devnode/state", "", {}, milliseconds(500)).ok;
}

TEST(DevnodeFaults, DownWindowByControlEndpointReopensSamePort) {
  Devnode node(kBase);
  node.control("POST", "/_devnode/faults", R"({"down_seconds":2})");
  EXPECT_TRUE(waitFor([&] { return refused(node); }, std::chrono::seconds(5)));
  EXPECT_TRUE(waitFor([&] { return !refused(node); }, std::chrono::seconds(15)));
  EXPECT_TRUE(node.rpc("net.peers").json().contains("result"));
}

TEST(DevnodeFaults, DownWindowByFlag) {
  Devnode node(with({"--down-after-ms", "200", "--down-seconds", "2"}));
  EXPECT_TRUE(waitFor([&] { return refused(node); }, std::chrono::seconds(5)));
  EXPECT_TRUE(waitFor([&] { return !refused(node); }, std::chrono::seconds(15)));
  EXPECT_TRUE(node.rpc("net.peers").json().contains("result"));
}

TEST(DevnodeFaults, ControlEndpointIsExemptFromFaults) {
  Devnode node(with({"--fault-mode", "empty"}));
  EXPECT_FALSE(node.rpc("net.peers").ok);
  Json state = node.control("GET", "/_devnode/state");
  EXPECT_EQ(state["faults"]["mode"], Json("empty"));
}

}  // namespace
}  // namespace devnodetest
