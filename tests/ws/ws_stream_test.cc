// The WebSocket streams of the real agent against the real simulated node, as processes on
// loopback: the dashboard stream on the WS port and on the main port, every message type of
// the protocol, subscriptions, the feature stream, a stalled client, Origin checks and the
// health stream following the node.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <ctime>
#include <set>

#include "integration/stack.h"
#include "ws/ws_client.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::TempDir;
using bbtest::WsClient;
using blockbuster::Json;
using namespace std::chrono_literals;

namespace {

const char* kAllStreams[] = {"network_metrics", "markets_health", "peers",
                             "receipts",        "operations",     "health"};

const char* kFastPlugins =
    "plugins:\n"
    "  network:\n    interval_ms: 250\n"
    "  receipts:\n    interval_ms: 400\n";

struct Ports {
  int ws = 0;
  int feature = 0;
};

Ports wsPorts(Agent& agent) {
  Ports p;
  std::string out = agent.process().output();
  auto at = out.find("blockbuster-agent ready");
  if (at == std::string::npos) return p;
  std::string line = out.substr(at, out.find('\n', at) - at);
  p.ws = bbtest::portFromLine(line, "ws").value_or(0);
  p.feature = bbtest::portFromLine(line, "feature").value_or(0);
  return p;
}

bool isData(const Json& m, const std::string& stream = "") {
  if (!m["type"].isString()) return false;
  const std::string& t = m["type"].asString();
  return (t == "snapshot" || t == "update") &&
         (stream.empty() || (m["stream"].isString() && m["stream"].asString() == stream));
}

bool isType(const Json& m, const std::string& type) {
  return m["type"].isString() && m["type"].asString() == type;
}

// Every message carries the five fields; data messages a seq and a millisecond timestamp.
void expectShape(const Json& m) {
  ASSERT_TRUE(m.isObject()) << m.dump();
  for (const char* k : {"type", "stream", "data", "seq", "timestamp"})
    EXPECT_TRUE(m.contains(k)) << "missing " << k << " in " << m.dump();
  ASSERT_TRUE(m["timestamp"].isInt()) << m.dump();
  int64_t now_ms = static_cast<int64_t>(std::time(nullptr)) * 1000;
  EXPECT_LT(std::llabs(m["timestamp"].asInt() - now_ms), 3600 * 1000)
      << "not unix ms: " << m.dump();
  if (isData(m)) {
    EXPECT_TRUE(m["seq"].isInt()) << m.dump();
    EXPECT_TRUE(m["stream"].isString()) << m.dump();
  }
}

// Welcome, then data of network_metrics, then a later update of it with a higher seq and a
// higher block: the stream follows the simulated chain.
void expectDashboardStream(int port, const std::string& where) {
  WsClient c(port, "/theblock/ws");
  auto welcome = c.receive(10s);
  ASSERT_TRUE(welcome) << where << ": no welcome";
  expectShape(*welcome);
  ASSERT_TRUE(isType(*welcome, "welcome")) << welcome->dump();
  std::set<std::string> streams;
  for (const auto& s : welcome->operator[]("data")["streams"].asArray())
    streams.insert(s.asString());
  for (const char* s : kAllStreams) EXPECT_TRUE(streams.count(s)) << where << ": " << s;

  std::map<std::string, int64_t> last_seq;
  bool shape_ok = true;
  auto track = [&](const Json& m) {
    if (!m.isObject() || !m.contains("seq")) shape_ok = false;
    if (!isData(m)) return;
    const std::string s = m["stream"].asString();
    if (last_seq.count(s) && m["seq"].asInt() <= last_seq[s]) shape_ok = false;
    last_seq[s] = m["seq"].asInt();
  };
  auto first = c.receiveUntil(
      [](const Json& m) {
        return isData(m, "network_metrics") && m["data"]["block_height"].isInt();
      },
      20s, track);
  ASSERT_TRUE(first) << where << ": no network_metrics data";
  expectShape(*first);
  int64_t height = (*first)["data"]["block_height"].asInt();
  int64_t seq = (*first)["seq"].asInt();
  auto later = c.receiveUntil(
      [&](const Json& m) {
        return isType(m, "update") && isData(m, "network_metrics") &&
               m["data"]["block_height"].isInt() && m["data"]["block_height"].asInt() > height;
      },
      20s, track);
  ASSERT_TRUE(later) << where << ": no update as the chain moved";
  EXPECT_GT((*later)["seq"].asInt(), seq);
  EXPECT_TRUE(shape_ok) << where << ": a seq went backwards or a message lacked seq";
  EXPECT_GT(last_seq.count("health"), 0u) << where << ": no health snapshot";
  EXPECT_GT(last_seq.count("markets_health"), 0u) << where << ": no markets_health snapshot";
}

class WsStream : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { stack_ = new bbtest::SuiteStack(kFastPlugins); }
  static void TearDownTestSuite() { delete stack_; }
  static bbtest::SuiteStack* stack_;
};
bbtest::SuiteStack* WsStream::stack_ = nullptr;

TEST_F(WsStream, ReadyLineNamesBothWebSocketPorts) {
  EXPECT_GT(stack_->ws, 0) << stack_->agent.process().output();
  EXPECT_GT(stack_->feature, 0) << stack_->agent.process().output();
  EXPECT_NE(stack_->ws, stack_->agent.port());
}

TEST_F(WsStream, DashboardStreamOnTheWsPort) { expectDashboardStream(stack_->ws, "ws port"); }

TEST_F(WsStream, DashboardStreamOnTheMainPort) {
  expectDashboardStream(stack_->agent.port(), "main port");
}

TEST_F(WsStream, PlainRequestToTheStreamPathIsAskedToUpgrade) {
  auto r = bbtest::httpGet(stack_->agent.port(), "/theblock/ws");
  EXPECT_EQ(r.status, 426);
  EXPECT_EQ(r.headers["upgrade"], "websocket");
  // The WebSocket port serves its stream on every path: a plain request anywhere is asked too.
  EXPECT_EQ(bbtest::httpGet(stack_->ws, "/elsewhere").status, 426);
  EXPECT_EQ(bbtest::httpGet(stack_->agent.port(), "/elsewhere").status, 404);
}

TEST_F(WsStream, AnswersPingAndReportsErrorsWithoutClosing) {
  WsClient c(stack_->ws, "/theblock/ws");
  auto expectAnswer = [&](const std::string& send, const std::string& type,
                          const std::string& code) {
    c.sendText(send);
    auto m = c.receiveUntil([&](const Json& j) { return isType(j, type); }, 10s);
    ASSERT_TRUE(m) << "no " << type << " for " << send;
    expectShape(*m);
    if (!code.empty()) {
      EXPECT_EQ((*m)["data"]["code"].asString(), code) << m->dump();
      EXPECT_FALSE((*m)["data"]["message"].asString().empty());
    }
    EXPECT_FALSE(c.closed());
  };
  expectAnswer(R"({"type":"ping"})", "pong", "");
  expectAnswer("{not json", "error", "bad_json");
  expectAnswer(R"({"type":"subscribe","stream":"blocks"})", "error", "unknown_stream");
  expectAnswer(R"({"type":"dance"})", "error", "unknown_type");
  expectAnswer(R"([1,2])", "error", "bad_request");
  // Still open and served after all of that.
  expectAnswer(R"({"type":"ping"})", "pong", "");
}

TEST_F(WsStream, FrameOverTheSizeLimitIsClosedWith1009) {
  WsClient c(stack_->ws, "/theblock/ws");
  ASSERT_TRUE(c.receive(10s));  // welcome
  c.sendFrame(std::string(70 * 1024, 'x'), 0x81);
  c.receiveUntil([](const Json&) { return false; }, 10s);
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(c.closeCode(), 1009);
}

TEST_F(WsStream, SubscribeAndUnsubscribeChangeWhatArrives) {
  WsClient c(stack_->ws, "/theblock/ws");
  // Once the stream has data, a subscription starts with its snapshot.
  ASSERT_TRUE(c.receiveUntil([](const Json& m) { return isData(m, "network_metrics"); }, 20s));
  c.sendText(R"({"type":"subscribe","stream":"network_metrics"})");
  auto ack = c.receiveUntil([](const Json& m) { return isType(m, "subscribed"); }, 10s);
  ASSERT_TRUE(ack);
  EXPECT_EQ((*ack)["stream"].asString(), "network_metrics");
  ASSERT_EQ((*ack)["data"]["subscribed"].size(), 1u) << ack->dump();

  // After the ack: only network_metrics, starting with its snapshot.
  std::set<std::string> seen_streams;
  int updates = 0;
  auto note = [&](const Json& m) {
    if (isData(m)) seen_streams.insert(m["stream"].asString());
    if (isType(m, "update")) ++updates;
  };
  auto snap = c.receiveUntil([](const Json& m) { return isData(m); }, 10s, note);
  ASSERT_TRUE(snap);
  EXPECT_EQ((*snap)["type"].asString(), "snapshot");
  ASSERT_TRUE(c.receiveUntil([&](const Json&) { return updates >= 3; }, 20s, note));
  EXPECT_EQ(seen_streams, std::set<std::string>{"network_metrics"});

  // Unsubscribed: no more network_metrics while the chain moves on.
  c.sendText(R"({"type":"unsubscribe","stream":"network_metrics"})");
  ASSERT_TRUE(c.receiveUntil([](const Json& m) { return isType(m, "unsubscribed"); }, 10s));
  auto h0 =
      bbtest::httpGet(stack_->agent.port(), "/theblock/network/metrics").json()["block_height"];
  int after = 0;
  bbtest::eventually(
      [&] {
        c.receiveUntil([](const Json&) { return false; }, 200ms,
                       [&](const Json& m) { after += isData(m, "network_metrics"); });
        auto h = bbtest::httpGet(stack_->agent.port(), "/theblock/network/metrics").json();
        return h["block_height"].isInt() && h["block_height"].asInt() >= h0.asInt() + 3;
      },
      20s);
  EXPECT_EQ(after, 0);

  // Subscribing again sends the current state at once.
  c.sendText(R"({"type":"subscribe","stream":"network_metrics"})");
  auto again = c.receiveUntil([](const Json& m) { return isData(m, "network_metrics"); }, 10s);
  ASSERT_TRUE(again);
  EXPECT_EQ((*again)["type"].asString(), "snapshot");
}

TEST_F(WsStream, HealthSnapshotCarriesTheUptimeOfNow) {
  // A client connecting seconds after the last health change gets the uptime of now (issue
  // 18: the page said "Uptime 0 s", the snapshot of the agent's first second).
  int64_t up = 0;
  ASSERT_TRUE(bbtest::eventually([&] {
    up = bbtest::httpGet(stack_->agent.port(), "/health").json()["uptime_seconds"].asInt();
    return up >= 3;
  }));
  WsClient c(stack_->ws, "/theblock/ws");
  auto health = c.receiveUntil([](const Json& m) { return isData(m, "health"); }, 10s);
  ASSERT_TRUE(health);
  EXPECT_EQ((*health)["type"].asString(), "snapshot");
  EXPECT_GE((*health)["data"]["uptime_seconds"].asInt(), up - 1) << health->dump();
}

TEST_F(WsStream, HistoryStreamOnRequestOnly) {
  WsClient c(stack_->ws, "/theblock/ws");
  auto welcome = c.receive(10s);
  ASSERT_TRUE(welcome && isType(*welcome, "welcome"));
  std::set<std::string> streams, subscribed;
  for (const auto& s : (*welcome)["data"]["streams"].asArray()) streams.insert(s.asString());
  for (const auto& s : (*welcome)["data"]["subscribed"].asArray()) subscribed.insert(s.asString());
  EXPECT_TRUE(streams.count("history"));
  EXPECT_FALSE(subscribed.count("history")) << "sent only to who asks";
  int history = 0;
  c.receiveUntil([](const Json&) { return false; }, 1500ms,
                 [&](const Json& m) { history += isData(m, "history"); });
  EXPECT_EQ(history, 0);

  c.sendText(R"({"type":"subscribe","stream":"history"})");
  int64_t last_t = 0;
  int points = 0;
  auto enough = c.receiveUntil(
      [&](const Json& m) {
        if (!isData(m, "history")) return false;
        const Json& h = m["data"]["series"]["block_height"];
        if (!h.isArray() || h.size() != 1) return false;
        EXPECT_GT(h[0][0].asInt(), last_t) << "a new row each time";
        last_t = h[0][0].asInt();
        return ++points >= 3;
      },
      20s);
  ASSERT_TRUE(enough) << "three history rows";
  auto rest =
      bbtest::httpGet(stack_->agent.port(), "/theblock/history?series=block_height&window=60");
  ASSERT_EQ(rest.status, 200);
  EXPECT_NE(rest.body.find("[" + std::to_string(last_t) + ","), std::string::npos)
      << "the pushed row is in the REST history: " << rest.body;
}

TEST_F(WsStream, FeatureStreamSendsSortedNamesAndAlignedData) {
  for (auto [port, path] :
       {std::pair<int, std::string>{stack_->feature, "/"},
        std::pair<int, std::string>{stack_->agent.port(), "/theblock/ws/features"}}) {
    WsClient c(port, path);
    std::vector<std::string> names;
    // Each plugin adds its features on its first collection: wait until every plugin has.
    std::string last;
    auto m = c.receiveUntil(
        [&](const Json& j) {
          last = j.dump();
          if (!j["topic"].isString()) return false;
          std::set<std::string> plugins;
          for (const auto& n : j["names"].asArray())
            plugins.insert(n.asString().substr(0, n.asString().find('.')));
          return plugins == std::set<std::string>{"ads",     "compute",  "energy",
                                                  "network", "receipts", "storage"};
        },
        30s);
    ASSERT_TRUE(m) << "no feature vector with every plugin's features on " << path
                   << "; last: " << last;
    EXPECT_EQ((*m)["topic"].asString(), "features");
    ASSERT_EQ((*m)["names"].size(), (*m)["data"].size());
    for (const auto& n : (*m)["names"].asArray()) names.push_back(n.asString());
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    EXPECT_EQ(std::set<std::string>(names.begin(), names.end()).size(), names.size());
    for (const auto& n : names) EXPECT_NE(n.find('.'), std::string::npos) << n;
    for (const auto& v : (*m)["data"].asArray()) EXPECT_TRUE(v.isNumber() || v.isNull());
    EXPECT_TRUE((*m)["timestamp"].isInt());
    EXPECT_TRUE((*m)["feature_lag_seconds"].isNumber());
    // The next vector has the same names in the same order (the set is stable).
    auto next = c.receiveUntil([](const Json& j) { return j["topic"].isString(); }, 20s);
    ASSERT_TRUE(next);
    std::vector<std::string> names2;
    for (const auto& n : (*next)["names"].asArray()) names2.push_back(n.asString());
    EXPECT_EQ(names, names2);
    EXPECT_EQ((*next)["data"].size(), names2.size());
  }
}

TEST(WsFeatures, UnknownValuesAreNull) {
  // An empty chain that does not move: no ad impression yet, so the average CPM is unknown
  // (NaN in the plugin), which the stream sends as null.
  DevNode node("spec", {"--start-height", "0", "--block-ms", "0"});
  TempDir home;
  Agent agent(home, node.url());
  WsClient c(wsPorts(agent).feature, "/");
  size_t at = 0;
  auto m = c.receiveUntil(
      [&](const Json& j) {
        const auto& names = j["names"];
        for (size_t i = 0; i < names.size(); ++i)
          if (names[i].asString() == "ads.avg_cpm") {
            at = i;
            return true;
          }
        return false;
      },
      20s);
  ASSERT_TRUE(m) << agent.process().output();
  ASSERT_EQ((*m)["names"].size(), (*m)["data"].size());
  EXPECT_TRUE((*m)["data"][at].isNull()) << m->dump();
}

TEST_F(WsStream, AStalledClientDoesNotDelayAHealthyOne) {
  // The stalled client: a tiny receive buffer, a handshake, and then it never reads.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  int small = 1024;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(stack_->ws));
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  std::string hs =
      "GET /theblock/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
      "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
      "Sec-WebSocket-Version: 13\r\n\r\n";
  ASSERT_EQ(send(fd, hs.data(), hs.size(), 0), static_cast<ssize_t>(hs.size()));

  WsClient healthy(stack_->ws, "/theblock/ws");
  int64_t last_seq = -1;
  int updates = 0;
  auto ok = healthy.receiveUntil(
      [&](const Json& m) {
        if (!isData(m, "network_metrics")) return false;
        EXPECT_GT(m["seq"].asInt(), last_seq);
        last_seq = m["seq"].asInt();
        return ++updates >= 8;
      },
      30s);
  EXPECT_TRUE(ok) << "the healthy client got only " << updates << " network_metrics messages";
  // The stalled one is closed once its unsent data has waited past the stall timeout (10 s),
  // and the healthy one is still served.
  EXPECT_TRUE(bbtest::eventually(
      [&] {
        auto m = bbtest::httpGet(stack_->agent.port(), "/metrics").body;
        return m.find("blockbuster_ws_clients_closed_total{reason=\"stalled\"} 1") !=
               std::string::npos;
      },
      30s))
      << "the stalled client was not closed";
  EXPECT_TRUE(
      healthy.receiveUntil([](const Json& m) { return isData(m, "network_metrics"); }, 10s));
  EXPECT_FALSE(healthy.closed());
  close(fd);
}

TEST(WsOrigin, RefusesOriginsOutsideTheCorsList) {
  DevNode node("spec", {"--block-ms", "500"});
  TempDir home;
  Agent agent(home, node.url(), "http:\n  cors_origins: [\"http://allowed.example\"]\n");
  Ports p = wsPorts(agent);
  EXPECT_EQ(WsClient::tryUpgrade(p.ws, "/theblock/ws", "http://evil.example"), 403);
  EXPECT_EQ(WsClient::tryUpgrade(agent.port(), "/theblock/ws", "http://evil.example"), 403);
  EXPECT_EQ(WsClient::tryUpgrade(p.feature, "/", "http://evil.example"), 403);
  EXPECT_EQ(WsClient::tryUpgrade(p.ws, "/theblock/ws", "http://allowed.example"), 101);
  EXPECT_EQ(WsClient::tryUpgrade(p.ws, "/theblock/ws"), 101);  // no Origin: not a browser
}

TEST(WsHealth, TheNodeGoingDownIsPushedOnTheHealthStream) {
  auto node = std::make_unique<DevNode>("spec", std::vector<std::string>{"--block-ms", "300"});
  TempDir home;
  Agent agent(home, node->url(), kFastPlugins);
  WsClient c(wsPorts(agent).ws, "/theblock/ws");
  c.sendText(R"({"type":"subscribe","stream":"health"})");
  auto up = c.receiveUntil(
      [](const Json& m) {
        return isData(m, "health") && m["data"]["node"]["reachable"].isBool() &&
               m["data"]["node"]["reachable"].asBool();
      },
      20s);
  ASSERT_TRUE(up) << "the node never showed as reachable";
  node.reset();  // SIGKILL: the node is gone
  auto down = c.receiveUntil(
      [](const Json& m) {
        return isType(m, "update") && isData(m, "health") &&
               m["data"]["node"]["reachable"].isBool() && !m["data"]["node"]["reachable"].asBool();
      },
      20s);
  ASSERT_TRUE(down) << "the node going down was not pushed";
  EXPECT_GT((*down)["seq"].asInt(), (*up)["seq"].asInt());
  EXPECT_NE((*down)["data"]["status"].asString(), "ok");
}

}  // namespace
