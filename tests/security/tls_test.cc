// HTTPS on a bb::HttpServer with a self-signed certificate made at test time by openssl.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/SecureStreamSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <optional>

#include "http/server.h"
#include "integration/stack.h"
#include "security/raw_client.h"
#include "support/process.h"
#include "support/tls_certs.h"

namespace {

// Test programs live in tests/bin, not beside the agent: say where the TLS module is.
const bool kTlsModuleSet = [] {
  return setenv("BLOCK_BUSTER_TLS_MODULE", BB_TLS_MODULE, 1) == 0;
}();

struct TlsServer {
  TlsServer() {
    bb::ServerOptions o;
    o.port = 0;
    o.tls_cert_file = cert.cert_file;
    o.tls_key_file = cert.key_file;
    server = std::make_unique<bb::HttpServer>(o, [](bb::HttpRequest&& r) {
      // /big/<n>: n bytes, more than one TLS record and more than the socket takes at once.
      if (r.path.rfind("/big/", 0) == 0)
        return bb::HttpResponse::json(std::string(std::stoul(r.path.substr(5)), 'x'));
      return bb::HttpResponse::json("{\"tls\":true}");
    });
    server->start();
  }
  /// `{cert_file: ..., key_file: ...}` for a listener's `tls:` key.
  std::string yaml() const {
    return "{cert_file: \"" + cert.cert_file + "\", key_file: \"" + cert.key_file + "\"}";
  }
  bbtest::TempDir dir;
  bbtest::TestCertificate cert{dir};
  std::unique_ptr<bb::HttpServer> server;
};

// GET over TLS with a client that trusts any certificate and allows only `protocols`.
std::pair<int, std::string> httpsGet(int port, const std::string& path, bool only_tls12 = false,
                                     const std::map<std::string, std::string>& headers = {}) {
  Poco::Net::initializeSSL();
  Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "",
                                                       Poco::Net::Context::VERIFY_NONE);
  if (only_tls12) ctx->disableProtocols(Poco::Net::Context::PROTO_TLSV1_3);
  Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(port), ctx);
  session.setTimeout(Poco::Timespan(20, 0));
  Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                 Poco::Net::HTTPMessage::HTTP_1_1);
  for (const auto& h : headers) request.set(h.first, h.second);
  session.sendRequest(request);
  Poco::Net::HTTPResponse response;
  std::string body;
  Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
  return {static_cast<int>(response.getStatus()), body};
}

TEST(Tls, ServesHttpsWithTls12AndLater) {
  TlsServer s;
  auto [status, body] = httpsGet(s.server->port(), "/health");
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "{\"tls\":true}");
  auto [status12, body12] = httpsGet(s.server->port(), "/health", true);
  EXPECT_EQ(status12, 200);
}

// The reactor's TLS streams: answers larger than a record and than the socket buffers arrive
// whole, and one kept-alive connection serves request after request.
TEST(Tls, LargeAnswersAndKeptAliveConnections) {
  TlsServer s;
  Poco::Net::initializeSSL();
  Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "",
                                                       Poco::Net::Context::VERIFY_NONE);
  Poco::Net::HTTPSClientSession session("127.0.0.1", static_cast<Poco::UInt16>(s.server->port()),
                                        ctx);
  session.setTimeout(Poco::Timespan(20, 0));
  session.setKeepAlive(true);
  for (size_t size : {size_t{1}, size_t{70000}, size_t{4} << 20, size_t{3}}) {
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/big/" + std::to_string(size),
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::string body;
    Poco::StreamCopier::copyToString(session.receiveResponse(response), body);
    EXPECT_EQ(static_cast<int>(response.getStatus()), 200) << size;
    EXPECT_EQ(body, std::string(size, 'x')) << size;
    EXPECT_TRUE(response.getKeepAlive()) << size;
  }
}

// Pipelined requests in one TLS record are answered in order, the last closing the connection.
TEST(Tls, PipelinedRequestsAreAnsweredInOrder) {
  TlsServer s;
  Poco::Net::initializeSSL();
  Poco::Net::Context::Ptr ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "",
                                                       Poco::Net::Context::VERIFY_NONE);
  Poco::Net::SecureStreamSocket socket(
      Poco::Net::SocketAddress("127.0.0.1", static_cast<Poco::UInt16>(s.server->port())), ctx);
  socket.setReceiveTimeout(Poco::Timespan(20, 0));
  const std::string requests =
      "GET /big/5 HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /big/7 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
  socket.sendBytes(requests.data(), static_cast<int>(requests.size()));
  std::string answers;
  char buf[4096];
  for (int n; (n = socket.receiveBytes(buf, sizeof buf)) > 0;) answers.append(buf, n);
  const size_t a = answers.find("\r\n\r\nxxxxx");
  const size_t b = answers.find("\r\n\r\n{\"tls\":true}");
  const size_t c = answers.find("\r\n\r\nxxxxxxx");
  ASSERT_NE(a, std::string::npos) << answers;
  ASSERT_NE(b, std::string::npos) << answers;
  ASSERT_NE(c, std::string::npos) << answers;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_NE(answers.find("Connection: Close\r\n"), std::string::npos) << answers;
}

TEST(Tls, PlainHttpOnTheTlsPortGetsNoAnswer) {
  TlsServer s;
  std::string answer = sectest::exchange(
      s.server->port(), "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  EXPECT_EQ(sectest::statusOf(answer), 0) << answer;
  EXPECT_EQ(answer.find("{\"tls\":true}"), std::string::npos);
}

TEST(Tls, BadCertificateFilesAreNamed) {
  bbtest::TempDir dir;
  dir.write("cert.pem", "not a certificate");
  dir.write("key.pem", "not a key");
  bb::ServerOptions o;
  o.port = 0;
  o.tls_cert_file = dir.file("cert.pem");
  o.tls_key_file = dir.file("key.pem");
  try {
    bb::HttpServer server(o, [](bb::HttpRequest&&) { return bb::HttpResponse::json("{}"); });
    FAIL() << "a bad certificate was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("cert.pem")), std::string::npos) << e.what();
  }
}

TEST(Tls, AgentServesTheApiAndThePageOverHttps) {
  TlsServer certs;  // only for its certificate files
  bbtest::DevNode node("spec");
  bbtest::TempDir home;
  const std::string tls = certs.yaml();
  bbtest::Agent agent(home, node.url(), "http:\n  tls: " + tls + "\nweb:\n  tls: " + tls + "\n");
  auto [status, body] = httpsGet(agent.port(), "/health");
  EXPECT_EQ(status, 200) << body;
  EXPECT_NE(body.find("\"status\""), std::string::npos) << body;
  auto [page_status, page] = httpsGet(agent.webPort(), "/bb-config.json");
  EXPECT_EQ(page_status, 200) << page;
  // No plain-HTTP answer on the TLS port.
  EXPECT_EQ(bbtest::httpGet(agent.port(), "/health").status, 0);
}

// A WebSocket client over TLS (Poco's client on an HTTPS session): the first text message.
struct TlsWebSocket {
  TlsWebSocket(int port, const std::string& path) {
    Poco::Net::initializeSSL();
    ctx = new Poco::Net::Context(Poco::Net::Context::TLS_CLIENT_USE, "",
                                 Poco::Net::Context::VERIFY_NONE);
    session = std::make_unique<Poco::Net::HTTPSClientSession>("127.0.0.1",
                                                              static_cast<Poco::UInt16>(port), ctx);
    session->setTimeout(Poco::Timespan(20, 0));
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, path,
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    Poco::Net::HTTPResponse response;
    ws = std::make_unique<Poco::Net::WebSocket>(*session, request, response);
    ws->setReceiveTimeout(Poco::Timespan(20, 0));
  }
  blockbuster::Json receive() {
    std::string buf(1 << 20, '\0');
    int flags = 0;
    int n = ws->receiveFrame(buf.data(), static_cast<int>(buf.size()), flags);
    return blockbuster::Json::parse(buf.substr(0, static_cast<size_t>(std::max(n, 0))));
  }
  void send(const std::string& text) {
    ws->sendFrame(text.data(), static_cast<int>(text.size()), Poco::Net::WebSocket::FRAME_TEXT);
  }
  Poco::Net::Context::Ptr ctx;
  std::unique_ptr<Poco::Net::HTTPSClientSession> session;
  std::unique_ptr<Poco::Net::WebSocket> ws;
};

TEST(Tls, AgentServesEveryWebSocketStreamOverTls) {
  TlsServer certs;  // only for its certificate files
  bbtest::DevNode node("spec");
  bbtest::TempDir home;
  const std::string tls = certs.yaml();
  bbtest::Agent agent(home, node.url(), "http:\n  tls: " + tls + "\nws:\n  tls: " + tls + "\n");
  const std::string ready =
      agent.process().waitForLine("blockbuster-agent ready", std::chrono::seconds(1)).value_or("");
  const int ws_port = bbtest::portFromLine(ready, "ws").value_or(0);
  const int feature_port = bbtest::portFromLine(ready, "feature").value_or(0);
  ASSERT_GT(ws_port, 0) << ready;
  ASSERT_GT(feature_port, 0) << ready;

  // The dashboard stream on its own port and on the main port: welcome, then a ping answered.
  for (int port : {ws_port, agent.port()}) {
    TlsWebSocket client(port, "/theblock/ws");
    blockbuster::Json welcome = client.receive();
    EXPECT_EQ(welcome["type"].asString(), "welcome") << welcome.dump();
    client.send(R"({"type":"ping"})");
    blockbuster::Json m;
    for (int i = 0; i < 20; ++i) {
      m = client.receive();
      if (m["type"].isString() && m["type"].asString() == "pong") break;
    }
    EXPECT_EQ(m["type"].asString(), "pong") << "port " << port << ": " << m.dump();
  }
  // The feature stream: a vector of names and values.
  TlsWebSocket features(feature_port, "/");
  blockbuster::Json f = features.receive();
  EXPECT_EQ(f["topic"].asString(), "features") << f.dump();
  EXPECT_TRUE(f["names"].isArray()) << f.dump();
  // Plain TCP on the TLS WebSocket port gets no upgrade.
  std::string answer = sectest::exchange(
      ws_port,
      "GET /theblock/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n");
  EXPECT_EQ(sectest::statusOf(answer), 0) << answer;
}

TEST(Tls, AMissingTlsModuleStopsStartUpNamingIt) {
  TlsServer certs;  // only for its certificate files
  bbtest::TempDir home;
  home.write("tls.yaml", "http:\n  port: 0\n  host: 127.0.0.1\n  tls: " + certs.yaml() + "\n");
  auto [status, out] =
      bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--config", home.file("tls.yaml")},
                         {{"HOME", home.path()},
                          {"BLOCK_BUSTER_TLS_MODULE", home.file("nowhere.so")},
                          {"BLOCK_BUSTER_WS_PORT", "0"},
                          {"BLOCK_BUSTER_FEATURE_WS_PORT", "0"},
                          {"BLOCK_BUSTER_WEB_PORT", "-1"},
                          {"THEBLOCK_RPC_URL", "http://127.0.0.1:9"}});
  EXPECT_NE(status, 0) << out;
  EXPECT_NE(out.find("TLS module"), std::string::npos) << out;
  EXPECT_NE(out.find("nowhere.so"), std::string::npos) << out;
}

// A TLS-terminating proxy on 127.0.0.1:0 in front of a plain-HTTP node, as nodes are deployed:
// each POST is passed on with its Host and Authorization headers, and the answer sent back.
class TlsProxy {
 public:
  TlsProxy(const bbtest::TestCertificate& cert, int upstream_port)
      : upstream_port_(upstream_port),
        socket_(Poco::Net::SocketAddress("127.0.0.1", 0), 64,
                new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, cert.key_file,
                                       cert.cert_file, "", Poco::Net::Context::VERIFY_NONE)),
        server_(new Factory(*this), socket_, new Poco::Net::HTTPServerParams) {
    server_.start();
  }
  ~TlsProxy() { server_.stopAll(true); }
  int port() const { return socket_.address().port(); }
  int requests() const { return requests_.load(); }

 private:
  struct Handler : Poco::Net::HTTPRequestHandler {
    explicit Handler(TlsProxy& proxy) : proxy(proxy) {}
    void handleRequest(Poco::Net::HTTPServerRequest& in,
                       Poco::Net::HTTPServerResponse& out) override {
      ++proxy.requests_;
      std::string body;
      Poco::StreamCopier::copyToString(in.stream(), body);
      Poco::Net::HTTPClientSession upstream("127.0.0.1",
                                            static_cast<Poco::UInt16>(proxy.upstream_port_));
      Poco::Net::HTTPRequest forward(in.getMethod(), in.getURI(), Poco::Net::HTTPMessage::HTTP_1_1);
      forward.setHost(in.getHost());
      if (in.has("Authorization")) forward.set("Authorization", in.get("Authorization"));
      forward.setContentType(in.getContentType());
      forward.setContentLength(static_cast<std::streamsize>(body.size()));
      upstream.sendRequest(forward) << body;
      Poco::Net::HTTPResponse answer;
      std::string reply;
      Poco::StreamCopier::copyToString(upstream.receiveResponse(answer), reply);
      out.setStatus(answer.getStatus());
      out.setContentType(answer.getContentType());
      out.setContentLength(static_cast<std::streamsize>(reply.size()));
      out.send() << reply;
    }
    TlsProxy& proxy;
  };
  struct Factory : Poco::Net::HTTPRequestHandlerFactory {
    explicit Factory(TlsProxy& proxy) : proxy(proxy) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(
        const Poco::Net::HTTPServerRequest&) override {
      return new Handler(proxy);
    }
    TlsProxy& proxy;
  };

  int upstream_port_;
  std::atomic<int> requests_{0};
  Poco::Net::SecureServerSocket socket_;
  Poco::Net::HTTPServer server_;
};

TEST(Tls, AgentPollsAnHttpsNodeBehindATlsProxy) {
  bbtest::TempDir certs;
  bbtest::TestCertificate cert(certs, "proxy");
  bbtest::DevNode node("spec");
  TlsProxy proxy(cert, node.port());
  bbtest::TempDir home;
  const std::string url = "https://127.0.0.1:" + std::to_string(proxy.port());
  bbtest::Agent agent(home, url, "rpc:\n  tls_ca_file: \"" + cert.cert_file + "\"\n");
  EXPECT_TRUE(bbtest::eventually([&] {
    return bbtest::httpGet(agent.port(), "/health").json()["status"].asString() == "ok";
  })) << bbtest::httpGet(agent.port(), "/health").body;
  EXPECT_GT(proxy.requests(), 0);
}

TEST(Tls, AnUnreadableRpcCaFileStopsStartUpAndCheckConfigNamingTheKey) {
  bbtest::TempDir home;
  home.write("c.yaml", "rpc:\n  tls_ca_file: \"" + home.file("missing-ca.pem") + "\"\n");
  const std::map<std::string, std::string> env = {
      {"HOME", home.path()},           {"BLOCK_BUSTER_HTTP_PORT", "0"},
      {"BLOCK_BUSTER_WS_PORT", "0"},   {"BLOCK_BUSTER_FEATURE_WS_PORT", "0"},
      {"BLOCK_BUSTER_WEB_PORT", "-1"}, {"THEBLOCK_RPC_URL", "https://127.0.0.1:9"}};
  for (const bool check : {true, false}) {
    std::vector<std::string> argv = {bbtest::binPath("blockbuster-agent"), "--config",
                                     home.file("c.yaml")};
    if (check) argv.push_back("--check-config");
    auto [status, out] = bbtest::runProgram(argv, env);
    EXPECT_EQ(status, 2) << out;
    EXPECT_NE(out.find("rpc.tls_ca_file"), std::string::npos) << out;
    EXPECT_NE(out.find(home.file("missing-ca.pem")), std::string::npos) << out;
  }
  // The environment variable sets it too, and a plain-HTTP node never reads it.
  auto [status, out] =
      bbtest::runProgram({bbtest::binPath("blockbuster-agent"), "--check-config"},
                         {{"HOME", home.path()},
                          {"THEBLOCK_RPC_URL", "http://127.0.0.1:9"},
                          {"BLOCK_BUSTER_RPC_TLS_CA_FILE", home.file("missing-ca.pem")}});
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("tls_ca_file: \"" + home.file("missing-ca.pem")), std::string::npos) << out;
}

}  // namespace
