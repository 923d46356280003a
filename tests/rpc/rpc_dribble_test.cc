// A node that dribbles its reply one byte at a time (each byte well within any per-read timeout)
// must not hold a call past its deadline, nor shutdown past a moment (issue 15, defect 1). The
// peer is a real socket server; it gives up by itself after 8 s, so the old behaviour shows as a
// call that ended when the peer stopped, not as a hung test.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>

#include "rpc/rpc_client.h"
#include "support/dribble_peer.h"

namespace {

using namespace std::chrono_literals;
using bb::RpcStatus;
using Clock = std::chrono::steady_clock;

bb::RpcConfig configFor(const bbtest::DribblePeer& peer, int timeout_ms) {
  bb::RpcConfig c;
  c.url = peer.url();
  c.timeout_ms = timeout_ms;
  c.connect_timeout_ms = 1000;
  c.retries = 0;
  c.share_ms = 0;
  return c;
}

TEST(RpcDribble, ADribbledHeadEndsAtTheDeadline) {
  // 2 KB of head at a byte every 20 ms: 40 s of reply, each byte 20 ms after the last.
  bbtest::DribblePeer peer(bbtest::DribblePeer::jsonReply("{}", 2000), 20ms, 8s);
  bb::RpcClient client(configFor(peer, 300));
  const auto outcome = client.call("net.stats", "{}");
  EXPECT_EQ(outcome.status, RpcStatus::Timeout) << outcome.json;
  EXPECT_EQ(outcome.attempts, 1);
  // The deadline is 0.3 s (one attempt): well before the peer's 8 s, however loaded the machine.
  EXPECT_LT(outcome.seconds, 5.0) << outcome.json;
}

TEST(RpcDribble, ADribbledBodyEndsAtTheDeadline) {
  const std::string big = "\"" + std::string(6000, 'x') + "\"";
  bbtest::DribblePeer peer(bbtest::DribblePeer::jsonReply(big), 20ms, 8s, /*head_at_once=*/true);
  bb::RpcClient client(configFor(peer, 300));
  const auto outcome = client.call("net.stats", "{}");
  EXPECT_EQ(outcome.status, RpcStatus::Timeout) << outcome.json;
  EXPECT_LT(outcome.seconds, 5.0) << outcome.json;
}

TEST(RpcDribble, TheDeadlineOfTheCallBoundsEveryRetry) {
  bbtest::DribblePeer peer(bbtest::DribblePeer::jsonReply("{}", 2000), 20ms, 8s);
  auto config = configFor(peer, 300);
  config.retries = 2;
  config.backoff_initial_ms = 10;
  config.backoff_max_ms = 10;
  bb::RpcClient client(config);
  const auto outcome = client.call("net.stats", "{}", Clock::now() + 500ms);
  EXPECT_EQ(outcome.status, RpcStatus::Timeout) << outcome.json;
  EXPECT_LT(outcome.seconds, 5.0) << outcome.json;
}

TEST(RpcDribble, ShutdownCutsAnExchangeInFlight) {
  // A generous timeout: only shutdown() can end this call before the peer gives up.
  bbtest::DribblePeer peer(bbtest::DribblePeer::jsonReply("{}", 2000), 20ms, 8s);
  bb::RpcClient client(configFor(peer, 60000));
  auto call = std::async(std::launch::async, [&] { return client.call("net.stats", "{}"); });
  ASSERT_TRUE(peer.waitForRequests(1, 5s));
  client.shutdown();
  ASSERT_EQ(call.wait_for(5s), std::future_status::ready) << "the call outlived shutdown()";
  const auto outcome = call.get();
  EXPECT_EQ(outcome.status, RpcStatus::Shutdown) << outcome.json;
}

}  // namespace
