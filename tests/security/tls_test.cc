// HTTPS on a bb::HttpServer with a self-signed certificate made at test time by openssl.
#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/HTTPSClientSession.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/StreamCopier.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <memory>
#include <optional>

#include "http/server.h"
#include "integration/stack.h"
#include "security/raw_client.h"
#include "support/process.h"

namespace {

struct TlsServer {
  TlsServer() {
    auto [status, out] = bbtest::runProgram(
        {BB_OPENSSL, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
         "/CN=127.0.0.1", "-keyout", dir.file("key.pem"), "-out", dir.file("cert.pem")});
    if (status != 0) throw std::runtime_error("openssl failed: " + out);
    bb::ServerOptions o;
    o.port = 0;
    o.tls_cert_file = dir.file("cert.pem");
    o.tls_key_file = dir.file("key.pem");
    server = std::make_unique<bb::HttpServer>(
        o, [](bb::HttpRequest&&) { return bb::HttpResponse::json("{\"tls\":true}"); });
    server->start();
  }
  bbtest::TempDir dir;
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

// Accepts every upgrade; on a TLS listener it must never be reached.
class AcceptAll : public bb::UpgradeHandler {
 public:
  bool handlesPath(const std::string& path) const override { return path == "/theblock/ws"; }
  std::optional<bb::HttpResponse> checkUpgrade(const bb::HttpRequest&) override {
    return std::nullopt;
  }
  void adopt(int fd, const bb::HttpRequest&, std::string) override {
    adopted = true;
    ::close(fd);
  }
  std::atomic<bool> adopted{false};
};

TEST(Tls, WebSocketUpgradeOnATlsListenerIs501) {
  TlsServer s;
  AcceptAll handler;
  s.server->setUpgradeHandler(&handler);
  auto [status, body] = httpsGet(s.server->port(), "/theblock/ws", false,
                                 {{"Upgrade", "websocket"},
                                  {"Connection", "Upgrade"},
                                  {"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
                                  {"Sec-WebSocket-Version", "13"}});
  EXPECT_EQ(status, 501) << body;
  EXPECT_NE(body.find("websocket_over_tls_unsupported"), std::string::npos) << body;
  EXPECT_FALSE(handler.adopted);
}

TEST(Tls, AgentServesTheApiAndThePageOverHttps) {
  TlsServer certs;  // only for its certificate files
  bbtest::DevNode node("spec");
  bbtest::TempDir home;
  const std::string tls = "{cert_file: \"" + certs.dir.file("cert.pem") + "\", key_file: \"" +
                          certs.dir.file("key.pem") + "\"}";
  bbtest::Agent agent(home, node.url(), "http:\n  tls: " + tls + "\nweb:\n  tls: " + tls + "\n");
  auto [status, body] = httpsGet(agent.port(), "/health");
  EXPECT_EQ(status, 200) << body;
  EXPECT_NE(body.find("\"status\""), std::string::npos) << body;
  auto [page_status, page] = httpsGet(agent.webPort(), "/bb-config.json");
  EXPECT_EQ(page_status, 200) << page;
  // No plain-HTTP answer on the TLS port.
  EXPECT_EQ(bbtest::httpGet(agent.port(), "/health").status, 0);
}

}  // namespace
