// wss:// on the WebSocket ports (ws.tls): the real agent and bb-devnode as processes on
// loopback, a self-signed certificate made by openssl at test time, and clients written with
// OpenSSL directly, so that a test can choose the TLS version, send any HTTP request and read
// the raw answer and frames. The reactor serves these ports (agent/net, agent/http, agent/ws):
// the tests cover the TLS handshake, the HTTP answers of the upgrade, the streams, the limits
// and what a bad or stalled client does to the others.
#include <arpa/inet.h>
#include <dirent.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "http/auth.h"
#include "integration/stack.h"
#include "support/tls_certs.h"

using bbtest::Agent;
using bbtest::DevNode;
using bbtest::TempDir;
using blockbuster::Json;
using namespace std::chrono_literals;

namespace {

// The RFC 6455 example key and the answer it must get.
const char* kKey = "dGhlIHNhbXBsZSBub25jZQ==";
const char* kAccept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

// Seconds a blocking read or write of a test client may wait: far above the agent's own
// 10-s handshake timeout, only so that a test cannot hang.
constexpr int kIoSeconds = 40;

struct Certs {
  std::string yaml() const {
    return "ws:\n  tls: {cert_file: \"" + cert.cert_file + "\", key_file: \"" + cert.key_file +
           "\"}\n";
  }
  TempDir dir;
  bbtest::TestCertificate cert{dir};
};

// The agent with ws.tls (and `extra` config), its WebSocket ports from the ready line.
struct WssAgent {
  explicit WssAgent(const std::string& extra = "")
      : node("spec"), agent(home, node.url(), certs.yaml() + extra) {
    std::string out = agent.process().output();
    auto at = out.find("blockbuster-agent ready");
    std::string line = out.substr(at, out.find('\n', at) - at);
    ws = bbtest::portFromLine(line, "ws").value_or(0);
    feature = bbtest::portFromLine(line, "feature").value_or(0);
  }
  Certs certs;
  TempDir home;
  DevNode node;
  Agent agent;
  int ws = 0;
  int feature = 0;
};

// A TCP connection to 127.0.0.1:port whose reads and writes give up after kIoSeconds; -1 if
// refused.
int connectLoopback(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  timeval tv{kIoSeconds, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  return fd;
}

// Whether the peer closes `fd` (EOF or reset) before kIoSeconds pass; what it sent is kept in
// `got` when given.
bool peerCloses(int fd, std::string* got = nullptr) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      if (got) got->append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n == 0) return true;
    if (errno == EINTR) continue;
    return errno != EAGAIN && errno != EWOULDBLOCK;  // a reset closes too; a timeout does not
  }
}

std::string sslErrors() {
  std::string out;
  char buf[256];
  while (unsigned long e = ERR_get_error()) {
    ERR_error_string_n(e, buf, sizeof buf);
    out += std::string(out.empty() ? "" : "; ") + buf;
  }
  return out.empty() ? "no OpenSSL error queued (errno " + std::to_string(errno) + ")" : out;
}

// A blocking TLS client on one connection: the handshake in the constructor (ok() tells), then
// raw bytes, HTTP heads and WebSocket frames.
class TlsConn {
 public:
  /// `version`: the only TLS version offered (e.g. TLS1_1_VERSION), 0 = the library's range.
  /// A forced version runs at security level 0, since OpenSSL's default level refuses TLS 1.1
  /// on its own (its handshake signs with SHA-1): the test must see the server's decision.
  explicit TlsConn(int port, int version = 0) : TlsConn(connectLoopback(port), version, true) {}
  TlsConn(int fd, int version, bool) : fd_(fd) {
    if (fd_ < 0) {
      error_ = "connection refused";
      return;
    }
    ctx_ = SSL_CTX_new(TLS_client_method());
    if (version) {
      SSL_CTX_set_security_level(ctx_, 0);
      SSL_CTX_set_cipher_list(ctx_, "DEFAULT:@SECLEVEL=0");
      SSL_CTX_set_min_proto_version(ctx_, version);
      SSL_CTX_set_max_proto_version(ctx_, version);
    }
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    ERR_clear_error();
    if (SSL_connect(ssl_) == 1)
      ok_ = true;
    else
      error_ = sslErrors();
  }
  ~TlsConn() {
    if (ssl_) SSL_free(ssl_);
    if (ctx_) SSL_CTX_free(ctx_);
    if (fd_ >= 0) ::close(fd_);
  }
  TlsConn(const TlsConn&) = delete;
  TlsConn& operator=(const TlsConn&) = delete;

  bool ok() const { return ok_; }
  const std::string& error() const { return error_; }
  std::string version() const { return ok_ ? SSL_get_version(ssl_) : ""; }
  /// Whether the agent closed the connection (EOF, close_notify or reset) rather than a read
  /// timing out.
  bool closedByPeer() const { return closed_; }

  bool send(const std::string& bytes) {
    size_t put = 0;
    ERR_clear_error();
    return ok_ && SSL_write_ex(ssl_, bytes.data(), bytes.size(), &put) == 1 && put == bytes.size();
  }

  /// The head of the HTTP answer (through the blank line), "" when none came.
  std::string httpHead() {
    size_t end;
    while ((end = buf_.find("\r\n\r\n")) == std::string::npos)
      if (!fill()) return "";
    std::string head = buf_.substr(0, end + 4);
    buf_.erase(0, end + 4);
    return head;
  }
  /// An HTTP answer: head and body (up to the close, or Content-Length).
  std::string httpAnswer() {
    std::string head = httpHead();
    while (fill()) {
    }
    std::string all = head + buf_;
    buf_.clear();
    return all;
  }

  /// Sends an upgrade request for `path` with `headers` (each "Name: value\r\n") and returns
  /// the answer's head.
  std::string upgrade(const std::string& path, const std::string& headers = "") {
    send("GET " + path +
         " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
         "Sec-WebSocket-Key: " +
         kKey + "\r\nSec-WebSocket-Version: 13\r\n" + headers + "\r\n");
    return httpHead();
  }

  /// The next text message as JSON; answers pings; nullopt on close (closeCode()) or timeout.
  std::optional<Json> message() {
    for (;;) {
      auto f = frame();
      if (!f) return std::nullopt;
      if (f->first == 0x9) {
        sendFrame(0xA, f->second);
      } else if (f->first == 0x8) {
        close_code_ = f->second.size() >= 2 ? (static_cast<unsigned char>(f->second[0]) << 8) |
                                                  static_cast<unsigned char>(f->second[1])
                                            : 1005;
        return std::nullopt;
      } else if (f->first == 0x1) {
        return Json::parse(f->second);
      }
    }
  }
  /// Messages until one has type `type`, skipping at most 1000 others (a client that did not
  /// read for a while has every update since waiting); nullopt if none did.
  std::optional<Json> messageOfType(const std::string& type) {
    for (int i = 0; i < 1000; ++i) {
      auto m = message();
      if (!m) return std::nullopt;
      if ((*m)["type"].isString() && (*m)["type"].asString() == type) return m;
    }
    return std::nullopt;
  }
  void sendText(const std::string& text) { sendFrame(0x1, text); }
  int closeCode() const { return close_code_; }

 private:
  bool fill() {
    if (!ok_) return false;
    char tmp[16384];
    size_t n = 0;
    ERR_clear_error();
    errno = 0;
    int r = SSL_read_ex(ssl_, tmp, sizeof tmp, &n);
    if (r == 1) {
      buf_.append(tmp, n);
      return true;
    }
    int e = SSL_get_error(ssl_, r);
    closed_ = e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SSL ||
              (e == SSL_ERROR_SYSCALL && errno != EAGAIN && errno != EWOULDBLOCK);
    return false;
  }
  // One frame from the server (unmasked): {opcode, payload}.
  std::optional<std::pair<int, std::string>> frame() {
    auto need = [&](size_t n) {
      while (buf_.size() < n)
        if (!fill()) return false;
      return true;
    };
    if (!need(2)) return std::nullopt;
    const auto* b = reinterpret_cast<const unsigned char*>(buf_.data());
    int opcode = b[0] & 0x0F;
    size_t len = b[1] & 0x7F, at = 2;
    if (len == 126) {
      if (!need(4)) return std::nullopt;
      b = reinterpret_cast<const unsigned char*>(buf_.data());
      len = (size_t{b[2]} << 8) | b[3];
      at = 4;
    } else if (len == 127) {
      if (!need(10)) return std::nullopt;
      b = reinterpret_cast<const unsigned char*>(buf_.data());
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
      at = 10;
    }
    if (!need(at + len)) return std::nullopt;
    std::pair<int, std::string> f{opcode, buf_.substr(at, len)};
    buf_.erase(0, at + len);
    return f;
  }
  void sendFrame(int opcode, const std::string& payload) {
    std::string f;
    f += static_cast<char>(0x80 | opcode);
    const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
    if (payload.size() < 126) {
      f += static_cast<char>(0x80 | payload.size());
    } else {
      f += static_cast<char>(0x80 | 126);
      f += static_cast<char>((payload.size() >> 8) & 0xFF);
      f += static_cast<char>(payload.size() & 0xFF);
    }
    f.append(reinterpret_cast<const char*>(mask), 4);
    for (size_t i = 0; i < payload.size(); ++i)
      f += static_cast<char>(payload[i] ^ static_cast<char>(mask[i % 4]));
    send(f);
  }

  int fd_ = -1;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  bool ok_ = false;
  bool closed_ = false;
  int close_code_ = 0;
  std::string error_;
  std::string buf_;
};

int statusOf(const std::string& head) {
  if (head.rfind("HTTP/1.1 ", 0) != 0 || head.size() < 12) return 0;
  return std::atoi(head.substr(9, 3).c_str());
}

bool isType(const std::optional<Json>& m, const std::string& type) {
  return m && (*m)["type"].isString() && (*m)["type"].asString() == type;
}

// Threads of process `pid` now.
int threadCount(int pid) {
  int n = 0;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str())) {
    while (dirent* e = ::readdir(d))
      if (e->d_name[0] != '.') ++n;
    ::closedir(d);
  }
  return n;
}

// Whether this machine's OpenSSL can speak TLS 1.1 at all: a handshake with a local server that
// allows it, over a socket pair. Without it, the agent's refusal of TLS 1.1 would prove nothing.
bool localOpenSslSpeaksTls11(const Certs& certs, std::string& why) {
  int pair[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) return false;
  timeval tv{kIoSeconds, 0};
  for (int fd : pair) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::thread server([&] {
    SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_cipher_list(ctx, "DEFAULT:@SECLEVEL=0");
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL* ssl = nullptr;
    if (SSL_CTX_use_certificate_chain_file(ctx, certs.cert.cert_file.c_str()) == 1 &&
        SSL_CTX_use_PrivateKey_file(ctx, certs.cert.key_file.c_str(), SSL_FILETYPE_PEM) == 1) {
      ssl = SSL_new(ctx);
      SSL_set_fd(ssl, pair[1]);
      if (SSL_accept(ssl) == 1) SSL_shutdown(ssl);
    }
    if (ssl) SSL_free(ssl);
    SSL_CTX_free(ctx);
    ::shutdown(pair[1], SHUT_RDWR);
  });
  std::string version;
  {
    TlsConn client(pair[0], TLS1_1_VERSION, true);
    version = client.version();
    why = client.error();
    // The client owns pair[0] now and closes it.
  }
  server.join();
  ::close(pair[1]);
  return version == "TLSv1.1";
}

TEST(WssStream, WelcomeSnapshotsAndSubscribeOverTls) {
  WssAgent a;
  ASSERT_GT(a.ws, 0) << a.agent.process().output();
  // Data first, so that the client's first messages are a welcome and snapshots.
  ASSERT_TRUE(bbtest::eventually([&] {
    return bbtest::httpGet(a.agent.port(), "/theblock/network/metrics").status == 200;
  })) << a.agent.process().output();

  TlsConn c(a.ws);
  ASSERT_TRUE(c.ok()) << c.error();
  std::string head = c.upgrade("/theblock/ws");
  EXPECT_EQ(statusOf(head), 101) << head;
  EXPECT_NE(head.find(std::string("Sec-WebSocket-Accept: ") + kAccept), std::string::npos) << head;
  auto welcome = c.message();
  ASSERT_TRUE(isType(welcome, "welcome")) << (welcome ? welcome->dump() : "no message");
  EXPECT_TRUE((*welcome)["data"]["streams"].isArray()) << welcome->dump();
  auto snapshot = c.message();
  ASSERT_TRUE(isType(snapshot, "snapshot")) << (snapshot ? snapshot->dump() : "no message");
  EXPECT_TRUE((*snapshot)["data"].isObject()) << snapshot->dump();

  // A subscription is answered with the stream's snapshot, over the same connection.
  c.sendText(R"({"type":"subscribe","stream":"network_metrics"})");
  auto subscribed = c.messageOfType("subscribed");
  ASSERT_TRUE(subscribed) << "no subscribed message";
  auto m = c.messageOfType("snapshot");
  ASSERT_TRUE(m) << "no snapshot after subscribe";
  EXPECT_EQ((*m)["stream"].asString(), "network_metrics") << m->dump();
  EXPECT_TRUE((*m)["data"]["block_height"].isNumber()) << m->dump();
  c.sendText(R"({"type":"ping"})");
  EXPECT_TRUE(c.messageOfType("pong")) << "no pong";

  // The page is told that the stream is wss://, though it is itself served over plain HTTP.
  bbtest::HttpResult page = bbtest::httpGet(a.agent.webPort(), "/bb-config.json");
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_TRUE(page.json()["ws_tls"].isBool() && page.json()["ws_tls"].asBool()) << page.body;
  EXPECT_EQ(page.json()["ws_port"].asInt(), a.ws) << page.body;
  // ws.tls leaves the main port plain.
  EXPECT_EQ(bbtest::httpGet(a.agent.port(), "/health").status, 200);
}

TEST(WssStream, FeatureStreamOverTlsOnAnyPath) {
  WssAgent a;
  ASSERT_GT(a.feature, 0) << a.agent.process().output();
  TlsConn c(a.feature);
  ASSERT_TRUE(c.ok()) << c.error();
  std::string head = c.upgrade("/anything");
  ASSERT_EQ(statusOf(head), 101) << head;
  auto m = c.message();
  ASSERT_TRUE(m) << "no feature message";
  EXPECT_EQ((*m)["topic"].asString(), "features") << m->dump();
  EXPECT_TRUE((*m)["names"].isArray()) << m->dump();
}

// Both ports: TLS 1.2 and 1.3 complete, TLS 1.1 is refused, a refused handshake harms nobody.
// TLS 1.1 is checked where the local OpenSSL can speak it (Debian 12's can, at security level
// 0); elsewhere the test says so in its output and checks the rest.
TEST(WssPorts, Tls12And13AcceptedTls11Refused) {
  WssAgent a;
  std::string why;
  const bool can_tls11 = localOpenSslSpeaksTls11(a.certs, why);
  for (int port : {a.ws, a.feature}) {
    ASSERT_GT(port, 0) << a.agent.process().output();
    TlsConn v12(port, TLS1_2_VERSION);
    EXPECT_EQ(v12.version(), "TLSv1.2") << "port " << port << ": " << v12.error();
    TlsConn v13(port, TLS1_3_VERSION);
    EXPECT_EQ(v13.version(), "TLSv1.3") << "port " << port << ": " << v13.error();
    if (!can_tls11) {
      std::printf("note: the local OpenSSL cannot speak TLS 1.1 (%s); TLS 1.1 not checked\n",
                  why.c_str());
      continue;
    }
    TlsConn v11(port, TLS1_1_VERSION);
    EXPECT_FALSE(v11.ok()) << "port " << port << " accepted " << v11.version();
    EXPECT_NE(v11.error().find("protocol version"), std::string::npos)
        << "port " << port << ": " << v11.error();
  }
  TlsConn c(a.ws);
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(statusOf(c.upgrade("/theblock/ws")), 101);
  EXPECT_TRUE(isType(c.message(), "welcome"));
}

// Plain HTTP and garbage on a TLS port: no answer, the connection closed at once (long before
// the handshake timeout), and the port keeps serving TLS clients.
TEST(WssPorts, PlainTcpGetsNoUpgradeAndOthersAreUnaffected) {
  WssAgent a;
  TlsConn before(a.ws);
  ASSERT_TRUE(before.ok()) << before.error();
  ASSERT_EQ(statusOf(before.upgrade("/theblock/ws")), 101);
  ASSERT_TRUE(isType(before.message(), "welcome"));
  for (const std::string& bytes :
       {std::string("GET /theblock/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Key: ") +
            kKey + "\r\nSec-WebSocket-Version: 13\r\n\r\n",
        std::string("\x16\x03\x01\x00\x05hello", 10), std::string(64, '\0')}) {
    int fd = connectLoopback(a.ws);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL),
              static_cast<ssize_t>(bytes.size()));
    std::string got;
    EXPECT_TRUE(peerCloses(fd, &got));
    EXPECT_EQ(got.find("HTTP/1.1 101"), std::string::npos) << got;
    ::close(fd);
  }
  // The client connected before is still served, and so is a new one.
  before.sendText(R"({"type":"ping"})");
  EXPECT_TRUE(before.messageOfType("pong")) << "the earlier client lost its stream";
  TlsConn after(a.ws);
  ASSERT_TRUE(after.ok()) << after.error();
  EXPECT_EQ(statusOf(after.upgrade("/theblock/ws")), 101);
}

// The HTTP answers of the upgrade are those of a plain port: credentials (the browser's
// subprotocol way included), the path, the Upgrade header, Origin, the WebSocket version.
TEST(WssPorts, UpgradeAnswersMatchAPlainPort) {
  const std::string token = "wss-test-token-4b1d";
  WssAgent a("auth:\n  ws:\n    bearer_sha256: [\"" + bb::Authenticator::sha256(token) +
             "\"]\nhttp:\n  cors_origins: [\"https://dashboard.example\"]\n");
  auto answer = [&](int port, const std::string& request) {
    TlsConn c(port);
    EXPECT_TRUE(c.ok()) << c.error();
    c.send(request);
    return c.httpAnswer();
  };
  auto upgradeRequest = [&](const std::string& path, const std::string& headers) {
    return "GET " + path +
           " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: " +
           kKey + "\r\nSec-WebSocket-Version: 13\r\n" + headers + "\r\n";
  };
  const std::string bearer = "Authorization: Bearer " + token + "\r\n";

  std::string r = answer(a.ws, upgradeRequest("/theblock/ws", ""));
  EXPECT_EQ(statusOf(r), 401) << r;
  EXPECT_NE(r.find("WWW-Authenticate: Bearer"), std::string::npos) << r;
  EXPECT_EQ(r.find(token), std::string::npos) << r;
  r = answer(a.feature, upgradeRequest("/", ""));
  EXPECT_EQ(statusOf(r), 401) << "feature port: " << r;

  // The WebSocket port serves the stream on any path (the guide gives a port and no path).
  r = answer(a.ws, upgradeRequest("/elsewhere", bearer));
  EXPECT_EQ(statusOf(r), 101) << r;
  r = answer(a.ws, "GET /theblock/ws HTTP/1.1\r\nHost: x\r\n" + bearer + "\r\n");
  EXPECT_EQ(statusOf(r), 426) << r;
  EXPECT_NE(r.find("Upgrade: websocket"), std::string::npos) << r;
  r = answer(a.ws, upgradeRequest("/theblock/ws", bearer + "Origin: https://evil.example\r\n"));
  EXPECT_EQ(statusOf(r), 403) << r;
  EXPECT_NE(r.find("evil.example"), std::string::npos) << r;
  std::string v8 = upgradeRequest("/theblock/ws", bearer);
  v8.replace(v8.find("Version: 13"), 11, "Version: 8");
  r = answer(a.ws, v8);
  EXPECT_EQ(statusOf(r), 400) << r;
  r = answer(a.ws, "GET /theblock/ws HTTP/1.1\r\n" + std::string(300, 'n') + ": v\r\n\r\n");
  EXPECT_EQ(statusOf(r), 400) << r;  // Poco's 256-byte field name limit, as on a plain port

  // Accepted: the header, or the browser's way (the token as a subprotocol), which must get
  // "blockbuster" chosen back and never the token.
  TlsConn header(a.ws);
  std::string head = header.upgrade("/theblock/ws", bearer);
  EXPECT_EQ(statusOf(head), 101) << head;
  EXPECT_TRUE(isType(header.message(), "welcome"));
  TlsConn browser(a.ws);
  head = browser.upgrade("/theblock/ws",
                         "Origin: https://dashboard.example\r\nSec-WebSocket-Protocol: "
                         "blockbuster, bearer." +
                             token + "\r\n");
  EXPECT_EQ(statusOf(head), 101) << head;
  EXPECT_NE(head.find("Sec-WebSocket-Protocol: blockbuster\r\n"), std::string::npos) << head;
  EXPECT_EQ(head.find(token), std::string::npos) << head;
  EXPECT_TRUE(isType(browser.message(), "welcome"));
  TlsConn feature(a.feature);
  EXPECT_EQ(statusOf(feature.upgrade("/", bearer)), 101);
}

// More TLS clients than the 256 threads the HTTP listeners have, each served, without a thread
// per client: the event loop does the TLS.
TEST(WssPorts, ManyClientsNeedNoThreadEach) {
  WssAgent a;
  ASSERT_GT(a.ws, 0);
  const int before = threadCount(a.agent.process().pid());
  ASSERT_GT(before, 0);
  constexpr int kClients = 300;
  std::vector<std::unique_ptr<TlsConn>> clients;
  int welcomed = 0;
  for (int i = 0; i < kClients; ++i) {
    auto c = std::make_unique<TlsConn>(a.ws);
    ASSERT_TRUE(c->ok()) << "client " << i << ": " << c->error();
    if (statusOf(c->upgrade("/theblock/ws")) == 101 && isType(c->message(), "welcome")) ++welcomed;
    clients.push_back(std::move(c));
  }
  EXPECT_EQ(welcomed, kClients);
  const int during = threadCount(a.agent.process().pid());
  // A thread per client would add 300; a few may come and go on their own (HTTP pools).
  EXPECT_LT(during - before, 20) << before << " threads before, " << during << " with " << kClients
                                 << " TLS clients";
  // Every one of them still gets answers.
  for (auto& c : clients) c->sendText(R"({"type":"ping"})");
  int answered = 0;
  for (auto& c : clients)
    if (c->messageOfType("pong")) ++answered;
  EXPECT_EQ(answered, kClients);
}

// A connection that stalls in its TLS handshake or in its HTTP request is closed by the
// handshake timeout (10 s), and meanwhile the port serves others.
TEST(WssPorts, StalledHandshakesAreClosedWithoutDelayingOthers) {
  WssAgent a;
  int silent = connectLoopback(a.ws);  // TCP only, no ClientHello
  ASSERT_GE(silent, 0);
  TlsConn half(a.ws);  // TLS done, half a request
  ASSERT_TRUE(half.ok()) << half.error();
  ASSERT_TRUE(half.send("GET /theblock/ws HTTP/1.1\r\nHost: x\r\n"));

  TlsConn healthy(a.ws);
  ASSERT_TRUE(healthy.ok()) << healthy.error();
  ASSERT_EQ(statusOf(healthy.upgrade("/theblock/ws")), 101);
  EXPECT_TRUE(isType(healthy.message(), "welcome"));

  EXPECT_TRUE(peerCloses(silent)) << "a silent TCP connection was kept past " << kIoSeconds << " s";
  ::close(silent);
  EXPECT_EQ(half.httpHead(), "");
  EXPECT_TRUE(half.closedByPeer()) << "a half request was kept past " << kIoSeconds << " s";
  healthy.sendText(R"({"type":"ping"})");
  EXPECT_TRUE(healthy.messageOfType("pong"));
}

// SIGTERM: every TLS client gets the close frame 1001, and the agent exits.
TEST(WssPorts, StoppingSendsGoingAwayOverTls) {
  WssAgent a;
  TlsConn c(a.ws);
  ASSERT_TRUE(c.ok()) << c.error();
  ASSERT_EQ(statusOf(c.upgrade("/theblock/ws")), 101);
  ASSERT_TRUE(isType(c.message(), "welcome"));
  a.agent.process().signal(SIGTERM);
  while (c.message()) {
  }
  EXPECT_EQ(c.closeCode(), 1001);
  EXPECT_EQ(a.agent.process().wait(30s), 0) << a.agent.process().output();
}

// The environment of an agent that is expected to stop at start-up: every port free or off, a
// node nobody answers on; `extra` added.
std::map<std::string, std::string> startUpEnvironment(
    const TempDir& home, std::map<std::string, std::string> extra = {}) {
  extra.insert({{"HOME", home.path()},
                {"BLOCK_BUSTER_HTTP_HOST", "127.0.0.1"},
                {"BLOCK_BUSTER_HTTP_PORT", "0"},
                {"BLOCK_BUSTER_WS_HOST", "127.0.0.1"},
                {"BLOCK_BUSTER_WS_PORT", "0"},
                {"BLOCK_BUSTER_FEATURE_WS_PORT", "0"},
                {"BLOCK_BUSTER_WEB_PORT", "-1"},
                {"THEBLOCK_RPC_URL", "http://127.0.0.1:9"}});
  return extra;
}

TEST(WssConfig, ABadCertificateStopsStartUpNamingTheFilesAndTheKey) {
  TempDir home;
  home.write("cert.pem", "not a certificate");
  home.write("key.pem", "not a key");
  home.write("tls.yaml", "ws:\n  tls: {cert_file: \"" + home.file("cert.pem") + "\", key_file: \"" +
                             home.file("key.pem") + "\"}\n");
  auto [status, out] =
      bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--config", home.file("tls.yaml")},
                         startUpEnvironment(home));
  EXPECT_NE(status, 0) << out;
  EXPECT_EQ(out.find("blockbuster-agent ready"), std::string::npos) << out;
  EXPECT_NE(out.find("ws.tls: cannot load the TLS certificate " + home.file("cert.pem") +
                     " and key " + home.file("key.pem")),
            std::string::npos)
      << out;
}

TEST(WssConfig, AMissingTlsModuleStopsStartUpNamingIt) {
  Certs certs;
  TempDir home;
  home.write("tls.yaml", certs.yaml());
  auto [status, out] = bbtest::runProgram(
      {bbtest::binPath("blockbuster-agent"), "--config", home.file("tls.yaml")},
      startUpEnvironment(home, {{"BLOCK_BUSTER_TLS_MODULE", home.file("nowhere.so")}}));
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("ws: the TLS module " + home.file("nowhere.so") + " cannot be loaded"),
            std::string::npos)
      << out;
}

}  // namespace
