// permessage-deflate on the real agent's WebSocket port, against the real simulated node, as
// processes on loopback. Clients are raw sockets so that a test sees the handshake's headers and
// each frame's RSV1 bit, and inflates with zlib itself: what a browser (which offers the
// extension by default) receives must be the very messages a client without it receives.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>
#include <string>

#include "integration/stack.h"
#include "raw_deflate.h"
#include "ws/frame.h"

using bb::ws::Opcode;
using bbtest::Agent;
using bbtest::DevNode;
using bbtest::rawDeflate;
using bbtest::rawInflate;
using bbtest::TempDir;
using blockbuster::Json;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

namespace {

const char* kBrowserOffer = "permessage-deflate; client_max_window_bits";

struct Frame {
  uint8_t byte0 = 0;
  std::string payload;
  bool rsv1() const { return (byte0 & 0x40) != 0; }
  Opcode op() const { return static_cast<Opcode>(byte0 & 0x0f); }
};

// A blocking WebSocket client on a raw socket: the handshake (offering `extensions` unless
// empty), then frames, each read within a deadline.
class RawWs {
 public:
  RawWs(int port, const std::string& extensions) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return;
    std::string req =
        "GET /theblock/ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n";
    if (!extensions.empty()) req += "Sec-WebSocket-Extensions: " + extensions + "\r\n";
    req += "\r\n";
    sendAll(req);
    const auto deadline = Clock::now() + 10s;
    while (buf_.find("\r\n\r\n") == std::string::npos && fill(deadline)) {
    }
    const size_t end = buf_.find("\r\n\r\n");
    if (end == std::string::npos) return;
    head_ = buf_.substr(0, end);
    buf_.erase(0, end + 4);
  }
  ~RawWs() {
    if (fd_ >= 0) ::close(fd_);
  }

  const std::string& head() const { return head_; }
  bool upgraded() const { return head_.rfind("HTTP/1.1 101", 0) == 0; }

  /// The next frame, or nullopt at the deadline or when the peer closed.
  std::optional<Frame> next(Clock::time_point deadline) {
    for (;;) {
      if (buf_.size() >= 2) {
        const auto* p = reinterpret_cast<const unsigned char*>(buf_.data());
        uint64_t len = p[1] & 0x7f;
        size_t header = 2;
        if (len == 126 && buf_.size() >= 4) {
          len = (uint64_t{p[2]} << 8) | p[3];
          header = 4;
        } else if (len == 127 && buf_.size() >= 10) {
          len = 0;
          for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
          header = 10;
        } else if (len >= 126) {
          header = SIZE_MAX;
        }
        if (header != SIZE_MAX && buf_.size() >= header + len) {
          Frame f{p[0], buf_.substr(header, static_cast<size_t>(len))};
          buf_.erase(0, header + static_cast<size_t>(len));
          return f;
        }
      }
      if (!fill(deadline)) return std::nullopt;
    }
  }

  /// The code of the close frame the agent sends before `deadline`, skipping other frames; 0
  /// if none.
  int closeCode(Clock::time_point deadline) {
    while (auto f = next(deadline))
      if (f->op() == Opcode::kClose && f->payload.size() >= 2)
        return (static_cast<uint8_t>(f->payload[0]) << 8) | static_cast<uint8_t>(f->payload[1]);
    return 0;
  }

  /// A masked frame with the first byte `byte0` (FIN, RSV, opcode).
  void send(uint8_t byte0, const std::string& payload) {
    std::string f = bb::ws::encodeFrame(Opcode::kText, payload, 0x5a5a5a5a);
    f[0] = static_cast<char>(byte0);
    sendAll(f);
  }

 private:
  void sendAll(const std::string& s) {
    size_t off = 0;
    while (off < s.size()) {
      ssize_t n = ::send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return;
      off += static_cast<size_t>(n);
    }
  }
  bool fill(Clock::time_point deadline) {
    // A deadline that has passed still takes what is already there.
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(0, left.count()))) <= 0) return false;
    char tmp[65536];
    ssize_t n = ::recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(n));
    return true;
  }

  int fd_ = -1;
  std::string head_;
  std::string buf_;
};

// The text of a data frame: inflated when RSV1 is set.
std::string textOf(const Frame& f) { return f.rsv1() ? rawInflate(f.payload) : f.payload; }

std::string keyOf(const Json& m) {
  return m["type"].asString() + "/" + m["stream"].asString() + "#" +
         std::to_string(m["seq"].asInt());
}

bool isData(const Json& m) {
  return m["type"].isString() && m["stream"].isString() && m["seq"].isInt() &&
         (m["type"].asString() == "update" || m["type"].asString() == "snapshot");
}

class WsDeflate : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    stack_ = new bbtest::SuiteStack(
        "plugins:\n  network:\n    interval_ms: 250\n  receipts:\n    interval_ms: 400\n");
    port_ = stack_->ws;
  }
  static void TearDownTestSuite() { delete stack_; }
  static bbtest::SuiteStack* stack_;
  static int port_;
};
bbtest::SuiteStack* WsDeflate::stack_ = nullptr;
int WsDeflate::port_ = 0;

}  // namespace

// A browser's offer is accepted; the big messages then arrive compressed, and each inflates to
// exactly the text a client that offered nothing receives for the same stream and seq.
TEST_F(WsDeflate, ABrowsersOfferGetsTheSameMessagesCompressed) {
  RawWs z(port_, kBrowserOffer);
  RawWs plain(port_, "");
  ASSERT_TRUE(z.upgraded()) << z.head();
  ASSERT_TRUE(plain.upgraded()) << plain.head();
  EXPECT_NE(z.head().find("\r\nSec-WebSocket-Extensions: permessage-deflate; "
                          "server_no_context_takeover; client_no_context_takeover"),
            std::string::npos)
      << z.head();
  EXPECT_EQ(plain.head().find("Sec-WebSocket-Extensions"), std::string::npos) << plain.head();

  std::map<std::string, std::string> z_texts, plain_texts;
  int compressed = 0, plain_rsv1 = 0;
  size_t wire = 0, inflated = 0;
  const auto deadline = Clock::now() + 30s;
  // Until the compressed client got several compressed updates that the plain one got too.
  auto common = [&] {
    int n = 0;
    for (const auto& kv : z_texts)
      n += kv.first.rfind("update/", 0) == 0 && plain_texts.count(kv.first);
    return n;
  };
  while (Clock::now() < deadline && (compressed < 5 || common() < 5)) {
    if (auto f = z.next(Clock::now() + 200ms)) {
      if (f->op() != Opcode::kText) continue;
      const std::string text = textOf(*f);
      if (f->rsv1()) {
        ++compressed;
        wire += f->payload.size();
        inflated += text.size();
      }
      auto m = Json::parse(text);
      ASSERT_TRUE(m.isObject()) << "not JSON once inflated: " << text.substr(0, 200);
      if (isData(m) && f->rsv1()) z_texts[keyOf(m)] = text;
    }
    while (auto f = plain.next(Clock::now() + 1ms)) {
      plain_rsv1 += f->rsv1();
      if (f->op() != Opcode::kText) continue;
      auto m = Json::parse(f->payload);
      if (isData(m)) plain_texts[keyOf(m)] = f->payload;
    }
  }
  EXPECT_GE(compressed, 5) << "compressed frames received";
  EXPECT_EQ(plain_rsv1, 0) << "a client that offered nothing got compressed frames";
  EXPECT_LT(wire * 2, inflated) << "the streams' JSON should compress at least 2x";
  int compared = 0;
  for (const auto& kv : z_texts) {
    auto it = plain_texts.find(kv.first);
    if (it == plain_texts.end()) continue;
    EXPECT_EQ(kv.second, it->second) << kv.first;
    ++compared;
  }
  EXPECT_GE(compared, 5) << "messages both clients received: compressed " << z_texts.size()
                         << " (first " << (z_texts.empty() ? "" : z_texts.begin()->first)
                         << "), plain " << plain_texts.size() << " (first "
                         << (plain_texts.empty() ? "" : plain_texts.begin()->first) << ")";
}

// Browsers compress what they send too: a compressed subscribe is answered, and a message that
// inflates past ws max_message_bytes is closed with 1009 before it is inflated whole.
TEST_F(WsDeflate, CompressedRequestsAreReadAndBombsClosedWith1009) {
  RawWs z(port_, kBrowserOffer);
  ASSERT_TRUE(z.upgraded()) << z.head();
  z.send(0xC1, rawDeflate("{\"type\":\"subscribe\",\"stream\":\"peers\"}"));
  bool subscribed = false;
  const auto deadline = Clock::now() + 10s;
  while (!subscribed && Clock::now() < deadline) {
    auto f = z.next(deadline);
    if (!f) break;
    if (f->op() != Opcode::kText) continue;
    auto m = Json::parse(textOf(*f));
    subscribed = m["type"].isString() && m["type"].asString() == "subscribed" &&
                 m["stream"].isString() && m["stream"].asString() == "peers";
  }
  EXPECT_TRUE(subscribed) << "no answer to a compressed subscribe";

  // 1 MiB of spaces is about a kilobyte compressed; the agent's limit is 64 KiB.
  const std::string bomb =
      rawDeflate("{\"type\":\"ping\",\"pad\":\"" + std::string(1 << 20, ' ') + "\"}");
  ASSERT_LT(bomb.size(), 8192u);
  z.send(0xC1, bomb);
  EXPECT_EQ(z.closeCode(Clock::now() + 10s), 1009);
}

// An offer the agent cannot honour (a server window under 2^15: it compresses once for every
// client) is declined: no extension in the answer, no compressed frame, and RSV1 from the client
// is then a protocol error.
TEST_F(WsDeflate, AnOfferItCannotHonourIsDeclined) {
  RawWs z(port_, "permessage-deflate; server_max_window_bits=10");
  ASSERT_TRUE(z.upgraded()) << z.head();
  EXPECT_EQ(z.head().find("Sec-WebSocket-Extensions"), std::string::npos) << z.head();
  int frames = 0, rsv1 = 0;
  const auto deadline = Clock::now() + 3s;
  while (auto f = z.next(deadline)) {
    ++frames;
    rsv1 += f->rsv1();
  }
  EXPECT_GT(frames, 0);
  EXPECT_EQ(rsv1, 0);
  z.send(0xC1, rawDeflate("{\"type\":\"ping\"}"));
  EXPECT_EQ(z.closeCode(Clock::now() + 10s), 1002);
}
