// Hostile requests to the real agent (issue 15): HTTP framing RFC 9112 rejects (defect 7), lax
// WebSocket upgrades (12), text frames that are not UTF-8 and invalid close codes (11), unknown
// plugin paths (9), dotfiles and nosniff on the web port (13). One agent and one bb-devnode, as
// processes on loopback, serve every test of the file; each test speaks raw bytes to them.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "integration/stack.h"
#include "security/raw_client.h"
#include "util/utf8.h"
#include "ws/frame.h"

namespace {

using namespace std::chrono_literals;
using sectest::RawClient;
using sectest::statusOf;

const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";
constexpr uint32_t kMask = 0x37fa213d;

class HostileRequests : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    home_ = new bbtest::TempDir();
    std::filesystem::create_directories(home_->file("web/sub"));
    home_->write("web/index.html", "<!doctype html><title>t</title>");
    home_->write("web/.hidden", "secret=1");
    home_->write("web/sub/.env", "TOKEN=2");
    node_ = new bbtest::DevNode("spec");
    agent_ = new bbtest::Agent(*home_, node_->url(), "web:\n  root: " + home_->file("web") + "\n");
  }
  static void TearDownTestSuite() {
    delete agent_;
    delete node_;
    delete home_;
  }
  static int port() { return agent_->port(); }
  static int webPort() { return agent_->webPort(); }

  static bbtest::TempDir* home_;
  static bbtest::DevNode* node_;
  static bbtest::Agent* agent_;
};
bbtest::TempDir* HostileRequests::home_ = nullptr;
bbtest::DevNode* HostileRequests::node_ = nullptr;
bbtest::Agent* HostileRequests::agent_ = nullptr;

// ---- defect 7: framing ---------------------------------------------------------------------

// Sends `bytes`; the first answer must be 400 and the connection closed after it, with no
// second answer (what a smuggled request would get).
void expect400AndClose(int port, const std::string& bytes) {
  RawClient c(port);
  ASSERT_TRUE(c.connected());
  ASSERT_TRUE(c.send(bytes));
  const std::string all = c.readAll(10s);
  EXPECT_EQ(statusOf(all), 400) << bytes << "\n---\n" << all;
  EXPECT_TRUE(c.closed()) << "connection left open: " << all;
  EXPECT_EQ(all.find("HTTP/1.1", 5), std::string::npos) << "a second answer: " << all;
}

TEST_F(HostileRequests, ConflictingContentLengthsAre400) {
  const std::string smuggled = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
  expect400AndClose(port(),
                    "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
                    "Content-Length: " +
                        std::to_string(smuggled.size()) + "\r\n\r\n" + smuggled);
}

TEST_F(HostileRequests, WhitespaceBeforeTheColonIs400) {
  expect400AndClose(port(), "GET /health HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello");
  expect400AndClose(port(), "GET /health HTTP/1.1\r\nHost\t: x\r\n\r\n");
}

TEST_F(HostileRequests, ABareCrInAValueIs400) {
  expect400AndClose(port(), "GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\rContent-Length: 9\r\n\r\n");
}

TEST_F(HostileRequests, SameContentLengthTwiceIsStillServed) {
  RawClient c(port());
  ASSERT_TRUE(
      c.send("GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n"
             "Content-Length: 0\r\nConnection: close\r\n\r\n"));
  EXPECT_EQ(statusOf(c.readResponse(10s)), 200);
}

// ---- defect 12: upgrades -------------------------------------------------------------------

std::string upgrade(const std::string& method, const std::string& version,
                    const std::string& upgrade_value, const std::string& connection,
                    const std::string& key) {
  return method + " /theblock/ws " + version + "\r\nHost: 127.0.0.1\r\nUpgrade: " + upgrade_value +
         "\r\nConnection: " + connection + "\r\nSec-WebSocket-Key: " + key +
         "\r\nSec-WebSocket-Version: 13\r\n\r\n";
}

int upgradeStatus(int port, const std::string& request) {
  RawClient c(port);
  if (!c.connected() || !c.send(request)) return 0;
  return statusOf(c.readResponse(10s));
}

TEST_F(HostileRequests, OnlyAWellFormedUpgradeGets101) {
  EXPECT_EQ(upgradeStatus(port(), upgrade("GET", "HTTP/1.1", "websocket", "Upgrade", kKey)), 101);
  EXPECT_EQ(
      upgradeStatus(port(), upgrade("GET", "HTTP/1.1", "WebSocket", "keep-alive, Upgrade", kKey)),
      101);
  for (const std::string& bad : {
           upgrade("POST", "HTTP/1.1", "websocket", "Upgrade", kKey),
           upgrade("GET", "HTTP/1.0", "websocket", "Upgrade", kKey),
           upgrade("GET", "HTTP/1.1", "websocket", "Upgrade", "not-a-key"),
           upgrade("GET", "HTTP/1.1", "websocket", "Upgrade", "dGhlIHNhbXBsZSBub25jZR=="),
           upgrade("GET", "HTTP/1.1", "websocket", "Upgrade", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA"),
           upgrade("GET", "HTTP/1.1", "notwebsocketatall", "Upgrade", kKey),
           upgrade("GET", "HTTP/1.1", "websocket", "notupgrade", kKey),
       }) {
    const int status = upgradeStatus(port(), bad);
    EXPECT_NE(status, 101) << bad;
    EXPECT_GE(status, 400) << bad;
  }
}

// ---- defect 11: what the WebSocket sends -------------------------------------------------------

// An upgraded connection to /theblock/ws that sends masked frames and decodes the agent's.
class Ws {
 public:
  explicit Ws(int port) : c_(port), decoder_(false, 1 << 22) {
    EXPECT_TRUE(c_.send(upgrade("GET", "HTTP/1.1", "websocket", "Upgrade", kKey)));
    const std::string head = c_.readResponse(10s);
    EXPECT_EQ(statusOf(head), 101) << head;
  }
  void send(bb::ws::Opcode op, const std::string& payload) {
    EXPECT_TRUE(c_.send(bb::ws::encodeFrame(op, payload, kMask)));
  }
  void sendRaw(const std::string& frame) { EXPECT_TRUE(c_.send(frame)); }
  // The next message of type `op` (others skipped) within 10 s.
  std::optional<bb::ws::Message> next(bb::ws::Opcode op) {
    const auto until = std::chrono::steady_clock::now() + 10s;
    while (std::chrono::steady_clock::now() < until) {
      bb::ws::Message m;
      auto st = decoder_.next(m);
      if (st == bb::ws::FrameDecoder::Status::kMessage) {
        if (m.op == op) return m;
        continue;
      }
      if (st == bb::ws::FrameDecoder::Status::kError) return std::nullopt;
      const std::string more = c_.readAll(200ms);
      decoder_.feed(more.data(), more.size());
      if (more.empty() && c_.closed()) return std::nullopt;
    }
    return std::nullopt;
  }
  // Every text message within `for_at_most`.
  std::vector<std::string> texts(std::chrono::milliseconds for_at_most) {
    std::vector<std::string> out;
    const auto until = std::chrono::steady_clock::now() + for_at_most;
    while (std::chrono::steady_clock::now() < until) {
      const std::string more = c_.readAll(200ms);
      decoder_.feed(more.data(), more.size());
      bb::ws::Message m;
      while (decoder_.next(m) == bb::ws::FrameDecoder::Status::kMessage)
        if (m.op == bb::ws::Opcode::kText) out.push_back(m.payload);
      if (c_.closed()) break;
    }
    return out;
  }

 private:
  RawClient c_;
  bb::ws::FrameDecoder decoder_;
};

TEST_F(HostileRequests, ErrorRepliesAreUtf8WhateverTheClientSent) {
  Ws ws(port());
  // A lone surrogate, escaped: valid JSON and valid UTF-8 on the wire, invalid once decoded.
  ws.send(bb::ws::Opcode::kText, R"({"type":"\ud800x"})");
  ws.send(bb::ws::Opcode::kText, R"({"type":"subscribe","stream":"\udfff"})");
  ws.send(bb::ws::Opcode::kText, R"({"type":"ping"})");
  int errors = 0;
  for (const auto& text : ws.texts(3s)) {
    EXPECT_TRUE(bb::isUtf8(text)) << "a text frame that is not UTF-8: " << text;
    if (text.rfind("{\"type\":\"error\"", 0) == 0) ++errors;
  }
  EXPECT_EQ(errors, 2);
}

TEST_F(HostileRequests, AnInvalidUtf8TextFrameClosesWith1007) {
  Ws ws(port());
  ws.send(bb::ws::Opcode::kText, "{\"type\":\"\xff\xfe\"}");
  auto close = ws.next(bb::ws::Opcode::kClose);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code, 1007);
}

TEST_F(HostileRequests, InvalidCloseCodesAreAnsweredWith1002) {
  for (uint16_t code : {uint16_t{999}, uint16_t{0}, uint16_t{1005}, uint16_t{1006}, uint16_t{2000},
                        uint16_t{5000}}) {
    Ws ws(port());
    ws.sendRaw(bb::ws::encodeClose(code, "", kMask));
    auto close = ws.next(bb::ws::Opcode::kClose);
    ASSERT_TRUE(close) << code;
    EXPECT_EQ(close->close_code, 1002) << "close code " << code << " was echoed";
  }
  Ws ws(port());
  ws.sendRaw(bb::ws::encodeClose(4001, "bye", kMask));
  auto close = ws.next(bb::ws::Opcode::kClose);
  ASSERT_TRUE(close);
  EXPECT_EQ(close->close_code, 4001);
}

// ---- defect 9: unknown plugin paths ---------------------------------------------------------

TEST_F(HostileRequests, UnknownPluginPathsAre404) {
  for (const std::string path :
       {"/plugins/nope/x", "/plugins/../../etc/passwd", "/plugins/%2e%2e/%2e%2e/etc/passwd"}) {
    const auto r = sectest::exchange(
        port(), "GET " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    EXPECT_EQ(statusOf(r), 404) << path << "\n" << r;
  }
  // A loaded plugin's section that has no data yet is still 503: the path exists.
  const auto known = bbtest::httpGet(port(), "/plugins/network/metrics");
  EXPECT_TRUE(known.status == 200 || known.status == 503) << known.status;
}

// ---- defect 13: the web port ------------------------------------------------------------------

TEST_F(HostileRequests, DotfilesAreNotServedAnd404sCarryNosniff) {
  ASSERT_GT(webPort(), 0);
  EXPECT_EQ(bbtest::httpGet(webPort(), "/index.html").status, 200);
  for (const std::string path : {"/.hidden", "/sub/.env", "/sub/../.hidden", "/nope.txt"}) {
    const auto r = bbtest::httpGet(webPort(), path);
    EXPECT_EQ(r.status, 404) << path << ": " << r.body;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << path;
    const auto nosniff = r.headers.find("x-content-type-options");
    EXPECT_TRUE(nosniff != r.headers.end() && nosniff->second == "nosniff") << path;
  }
}

}  // namespace
