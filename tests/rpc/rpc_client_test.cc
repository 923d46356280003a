// Tests of the shared JSON-RPC client against an in-test HTTP server on 127.0.0.1:0 whose
// behaviour each test scripts, and of the token bucket with a fake clock.
#include "rpc/rpc_client.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/StreamCopier.h>
#include <Poco/ThreadPool.h>
#include <blockbuster/json.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "rpc/rate_limiter.h"
#include "support/process.h"
#include "support/tls_certs.h"
#include "util/log.h"

namespace {

using bb::RpcClient;
using bb::RpcConfig;
using bb::RpcFailure;
using bb::RpcOutcome;
using bb::RpcStatus;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;
using Poco::Net::HTTPServerRequest;
using Poco::Net::HTTPServerResponse;

// What the server saw of one request.
struct Seen {
  std::string uri;
  std::string host;
  bool has_authorization = false;
  std::string authorization;
  std::string content_type;
  std::string client;  // peer address: one per TCP connection
  std::string body;
  std::string id;      // the request id as JSON text
  std::string method;  // the JSON-RPC method
  std::string params;  // the params as JSON text
};

class TestNode;
using Script =
    std::function<void(TestNode&, const Seen&, int index, HTTPServerRequest&, HTTPServerResponse&)>;

// An HTTP server on 127.0.0.1:0 that records every request and answers as `script` says.
class TestNode {
 public:
  explicit TestNode(Script script)
      : TestNode(std::move(script),
                 Poco::Net::ServerSocket(Poco::Net::SocketAddress("127.0.0.1", 0)), "http") {}
  // On `socket` (a TLS one for "https").
  TestNode(Script script, Poco::Net::ServerSocket socket, std::string scheme)
      : script_(std::move(script)),
        threads_(2, 16),
        socket_(std::move(socket)),
        scheme_(std::move(scheme)) {
    auto* params = new Poco::Net::HTTPServerParams;
    params->setKeepAlive(true);
    params->setMaxThreads(16);
    server_ =
        std::make_unique<Poco::Net::HTTPServer>(new Factory(*this), threads_, socket_, params);
    server_->start();
  }
  ~TestNode() {
    release();
    server_->stopAll(true);
    threads_.joinAll();
  }

  int port() const { return socket_.address().port(); }
  std::string url(const std::string& path = "") const {
    return scheme_ + "://127.0.0.1:" + std::to_string(port()) + path;
  }
  std::vector<Seen> seen() {
    std::lock_guard<std::mutex> lock(mutex_);
    return seen_;
  }
  int requests() {
    std::lock_guard<std::mutex> lock(mutex_);
    return static_cast<int>(seen_.size());
  }
  int connections() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::set<std::string> clients;
    for (const auto& s : seen_) clients.insert(s.client);
    return static_cast<int>(clients.size());
  }
  int maxInFlight() const { return max_in_flight_.load(); }

  // Lets every handler blocked in waitForRelease() go.
  void release() {
    std::lock_guard<std::mutex> lock(mutex_);
    released_ = true;
    cv_.notify_all();
  }
  void waitForRelease(std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, limit, [&] { return released_; });
  }
  // Blocks until at least `n` requests are (or once were) handled at once, or `limit` passes.
  void waitForInFlight(int n, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait_for(lock, limit, [&] { return in_flight_ >= n || max_in_flight_.load() >= n; });
  }
  bool waitForRequests(int n, std::chrono::milliseconds limit) {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, limit, [&] { return static_cast<int>(seen_.size()) >= n; });
  }

 private:
  class Handler : public Poco::Net::HTTPRequestHandler {
   public:
    explicit Handler(TestNode& node) : node_(node) {}
    void handleRequest(HTTPServerRequest& request, HTTPServerResponse& response) override {
      node_.handle(request, response);
    }

   private:
    TestNode& node_;
  };
  class Factory : public Poco::Net::HTTPRequestHandlerFactory {
   public:
    explicit Factory(TestNode& node) : node_(node) {}
    Poco::Net::HTTPRequestHandler* createRequestHandler(const HTTPServerRequest&) override {
      return new Handler(node_);
    }

   private:
    TestNode& node_;
  };

  void handle(HTTPServerRequest& request, HTTPServerResponse& response) {
    Seen s;
    s.uri = request.getURI();
    s.host = request.getHost();
    s.has_authorization = request.has("Authorization");
    s.authorization = request.get("Authorization", "");
    s.content_type = request.getContentType();
    s.client = request.clientAddress().toString();
    Poco::StreamCopier::copyToString(request.stream(), s.body);
    try {
      const auto object = blockbuster::Json::parse(s.body);
      s.id = object["id"].dump();
      s.method = object["method"].asString();
      s.params = object["params"].dump();
    } catch (const blockbuster::JsonError&) {
    }
    int index;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      index = static_cast<int>(seen_.size());
      seen_.push_back(s);
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_.load(), in_flight_);
      cv_.notify_all();
    }
    script_(*this, s, index, request, response);
    std::lock_guard<std::mutex> lock(mutex_);
    --in_flight_;
  }

  Script script_;
  Poco::ThreadPool threads_;
  Poco::Net::ServerSocket socket_;
  std::string scheme_;
  std::unique_ptr<Poco::Net::HTTPServer> server_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<Seen> seen_;
  int in_flight_ = 0;
  std::atomic<int> max_in_flight_{0};
  bool released_ = false;
};

void reply(HTTPServerResponse& response, int status, const std::string& body) {
  response.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  response.setContentType("application/json");
  response.setContentLength64(static_cast<Poco::Int64>(body.size()));
  response.send() << body;
}

void replyResult(HTTPServerResponse& response, const Seen& seen, const std::string& result) {
  reply(response, 200, "{\"jsonrpc\":\"2.0\",\"id\":" + seen.id + ",\"result\":" + result + "}");
}

void replyError(HTTPServerResponse& response, const Seen& seen, const std::string& error,
                int status = 200) {
  reply(response, status, "{\"jsonrpc\":\"2.0\",\"error\":" + error + ",\"id\":" + seen.id + "}");
}

// Closes the connection without answering, as the real node does when a handler panics.
void hangUp(HTTPServerRequest& request) {
  static_cast<Poco::Net::HTTPServerRequestImpl&>(request).socket().shutdown();
}

// A node that answers every call with {"method": <the method called>}.
void echoMethod(TestNode&, const Seen& seen, int, HTTPServerRequest&,
                HTTPServerResponse& response) {
  replyResult(response, seen, "{\"method\":\"" + seen.method + "\"}");
}

RpcConfig configFor(const TestNode& node) {
  RpcConfig config;
  config.url = node.url();
  config.connect_timeout_ms = 2000;
  config.timeout_ms = 5000;
  config.retries = 2;
  config.backoff_initial_ms = 1;
  config.backoff_max_ms = 10;
  config.max_requests_per_second = 1000;
  config.burst = 1000;
  config.max_connections = 4;
  // Each call its own request: these tests count what reaches the node. The "Sharing" tests
  // below turn it on.
  config.share_ms = 0;
  return config;
}

// A loopback URL where nothing listens: every connection is refused.
std::string deadNodeUrl() {
  int port;
  {
    Poco::Net::ServerSocket probe(Poco::Net::SocketAddress("127.0.0.1", 0));
    port = probe.address().port();
  }
  return "http://127.0.0.1:" + std::to_string(port);
}

// The message of a failed outcome.
std::string messageOf(const RpcOutcome& outcome) {
  const auto object = blockbuster::Json::parse(outcome.json);
  EXPECT_EQ(object["code"].asInt(), 0) << outcome.json;
  return object["message"].asString();
}

// --- Envelopes ------------------------------------------------------------------------------

TEST(RpcClient, ResultIsHandedOverAsTheNodeWroteIt) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        replyResult(response, seen, "{\"big\":18446744073709551615,\"f\":0.10,\"s\":\"a\\\"b\"}");
      });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("light.latest_header");
  ASSERT_EQ(outcome.status, RpcStatus::Ok) << outcome.json;
  EXPECT_EQ(outcome.failure, RpcFailure::None);
  EXPECT_EQ(outcome.json, "{\"big\":18446744073709551615,\"f\":0.10,\"s\":\"a\\\"b\"}");
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(outcome.http_status, 200);
  ASSERT_EQ(node.requests(), 1);
  EXPECT_EQ(node.seen()[0].method, "light.latest_header");
  EXPECT_EQ(node.seen()[0].content_type, "application/json");
  EXPECT_EQ(node.seen()[0].uri, "/");
}

TEST(RpcClient, ErrorEnvelopeIsRpcErrorWithTheNodesErrorObject) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        replyError(response, seen, "{\"code\":-32601,\"message\":\"method not found\"}");
      });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("net.peers");
  EXPECT_EQ(outcome.status, RpcStatus::RpcError);
  EXPECT_EQ(outcome.failure, RpcFailure::NodeError);
  EXPECT_EQ(outcome.json, "{\"code\":-32601,\"message\":\"method not found\"}");
  // An answer is never retried.
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(node.requests(), 1);
}

TEST(RpcClient, SuccessEnvelopeWhoseResultIsAnErrorStaysOk) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        replyResult(response, seen, "{\"error\":\"unavailable\"}");
      });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("ad_market.inventory");
  EXPECT_EQ(outcome.status, RpcStatus::Ok);
  EXPECT_EQ(outcome.json, "{\"error\":\"unavailable\"}");
}

TEST(RpcClient, GarbageIsBadResponseAndNotRetried) {
  TestNode node([](TestNode&, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
    reply(response, 200, "<html>hello</html>");
  });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("net.stats");
  EXPECT_EQ(outcome.status, RpcStatus::BadResponse);
  EXPECT_EQ(outcome.failure, RpcFailure::BadReply);
  EXPECT_NE(messageOf(outcome).find("net.stats"), std::string::npos) << outcome.json;
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(node.requests(), 1);
}

TEST(RpcClient, JsonThatIsNotAnEnvelopeIsBadResponse) {
  TestNode node([](TestNode&, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
    reply(response, 200, "{\"height\":3}");
  });
  RpcClient client(configFor(node));
  EXPECT_EQ(client.call("x").status, RpcStatus::BadResponse);
}

// The envelope as the client judges it, on replies a hostile or odd node may send.
TEST(RpcEnvelope, MembersAreFoundInTheTextAsAParserWouldSeeThem) {
  const auto judge = [](const std::string& body, int http = 200) {
    return RpcClient::classifyReply(http, body, 7);
  };
  // A repeated member: the last one, as parsers keep.
  auto o = judge(R"({"jsonrpc":"2.0","id":7,"result":1,"result":{"b":2}})");
  EXPECT_EQ(o.status, RpcStatus::Ok);
  EXPECT_EQ(o.json, R"({"b":2})");
  // A name written with escapes is the same name; the value is still the node's text.
  o = judge(R"({"jsonrpc":"2.0","id":7,"\u0072esult":[1.50, 18446744073709551616]})");
  EXPECT_EQ(o.status, RpcStatus::Ok);
  EXPECT_EQ(o.json, "[1.50, 18446744073709551616]");
  // A result that is null is a result; an error that is null is none.
  o = judge(R"({"id":7,"error":null,"result":null})");
  EXPECT_EQ(o.status, RpcStatus::Ok);
  EXPECT_EQ(o.json, "null");
  // Another id: the connection is out of step.
  o = judge(R"({"id":8,"result":1})");
  EXPECT_EQ(o.status, RpcStatus::BadResponse);
  EXPECT_EQ(o.failure, RpcFailure::BadReply);
  EXPECT_NE(o.json.find("reply id 8"), std::string::npos) << o.json;
  EXPECT_EQ(judge(R"({"id":"7","result":1})").status, RpcStatus::BadResponse);
  EXPECT_EQ(judge(R"({"id":7.0,"result":1})").status, RpcStatus::Ok);
  // The limiter's codes, as numbers or strings, are Limit; another error is the node's answer.
  EXPECT_EQ(judge(R"({"id":7,"error":{"code":"-32001","message":"slow down"}})").failure,
            RpcFailure::RateLimited);
  o = judge(R"({"id":7,"error":{"code":-32601,"message":{"x":1}}})");
  EXPECT_EQ(o.status, RpcStatus::RpcError);
  EXPECT_EQ(o.json, R"({"code":-32601,"message":{"x":1}})");
  EXPECT_EQ(judge(R"({"id":7,"error":"boom"})").status, RpcStatus::BadResponse);
  // Not an envelope, not an object, not JSON, nothing: BadResponse naming why.
  EXPECT_NE(judge(R"({"height":3})").json.find("no result or error"), std::string::npos);
  EXPECT_NE(judge("[1]").json.find("not an object"), std::string::npos);
  EXPECT_NE(judge(R"({"result":1,})").json.find("not JSON"), std::string::npos);
  EXPECT_NE(judge("  ").json.find("empty"), std::string::npos);
  // What the SDK's parser refuses is refused here too: the Ok text always parses.
  EXPECT_EQ(judge("{\"id\":7,\"result\":\"a\x01"
                  "b\"}")
                .status,
            RpcStatus::BadResponse);
  EXPECT_EQ(judge(R"({"id":7,"result":"\ud800"})").status, RpcStatus::BadResponse);
  EXPECT_EQ(judge(R"({"id":7,"result":01})").status, RpcStatus::BadResponse);
  // An HTTP error status without an envelope is the status.
  o = judge("oops", 502);
  EXPECT_EQ(o.status, RpcStatus::Transport);
  EXPECT_EQ(o.failure, RpcFailure::HttpStatus);
}

TEST(RpcEnvelope, NestingIsBoundedAsTheSdkParserBoundsIt) {
  const int max = blockbuster::Json::kMaxDepth;
  const auto nested = [](int levels) {
    return std::string(levels, '[') + std::string(levels, ']');
  };
  // The result sits at depth 1 of the reply: it may nest kMaxDepth levels, not one more.
  const std::string fits = nested(max);
  auto o = RpcClient::classifyReply(200, R"({"id":1,"result":)" + fits + "}", 1);
  ASSERT_EQ(o.status, RpcStatus::Ok) << o.json;
  EXPECT_EQ(o.json, fits);
  EXPECT_NO_THROW(blockbuster::Json::parse(o.json));
  o = RpcClient::classifyReply(200, R"({"id":1,"result":)" + nested(max + 1) + "}", 1);
  EXPECT_EQ(o.status, RpcStatus::BadResponse);
  // Far deeper than any stack: refused, not a crash.
  o = RpcClient::classifyReply(200, R"({"id":1,"result":)" + nested(1 << 20) + "}", 1);
  EXPECT_EQ(o.status, RpcStatus::BadResponse);
}

// --- Request shape --------------------------------------------------------------------------

TEST(RpcClient, ParamsDefaultToAnEmptyObjectAndObjectsPassThrough) {
  TestNode node(echoMethod);
  RpcClient client(configFor(node));
  ASSERT_TRUE(client.call("a", "").ok());
  ASSERT_TRUE(client.call("b", "  {\"start\":0,\"limit\":1}  ").ok());
  const auto seen = node.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].params, "{}");
  EXPECT_EQ(seen[1].params, "{\"start\":0,\"limit\":1}");
  EXPECT_NE(seen[1].body.find("\"params\":{\"start\":0,\"limit\":1}"), std::string::npos)
      << seen[1].body;
  EXPECT_NE(seen[0].body.find("\"jsonrpc\":\"2.0\""), std::string::npos) << seen[0].body;
}

TEST(RpcClient, ParamsThatAreNotAnObjectAreRefusedUnsent) {
  TestNode node(echoMethod);
  RpcClient client(configFor(node));
  const RpcOutcome array = client.call("a", "[1,2]");
  EXPECT_EQ(array.status, RpcStatus::Invalid);
  EXPECT_EQ(array.failure, RpcFailure::Invalid);
  EXPECT_NE(messageOf(array).find("object"), std::string::npos);
  EXPECT_EQ(client.call("a", "{broken").status, RpcStatus::Invalid);
  EXPECT_EQ(client.call("", "{}").status, RpcStatus::Invalid);
  EXPECT_EQ(node.requests(), 0);
  EXPECT_EQ(client.requestsSent(), 0u);
}

TEST(RpcClient, BearerHeaderExactlyWhenATokenIsSet) {
  TestNode node(echoMethod);
  RpcConfig with_token = configFor(node);
  with_token.auth_token = "tok-123";
  RpcClient authed(with_token);
  RpcClient anonymous(configFor(node));
  ASSERT_TRUE(authed.call("a").ok());
  ASSERT_TRUE(anonymous.call("b").ok());
  const auto seen = node.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(seen[0].has_authorization);
  EXPECT_EQ(seen[0].authorization, "Bearer tok-123");
  EXPECT_FALSE(seen[1].has_authorization);
}

TEST(RpcClient, HostHeaderIsTheUrlHostWithoutPortAndThePathIsKept) {
  TestNode node(echoMethod);
  RpcConfig config = configFor(node);
  config.url = node.url("/rpc/v1");
  RpcClient client(config);
  ASSERT_TRUE(client.call("a").ok());
  ASSERT_EQ(node.requests(), 1);
  EXPECT_EQ(node.seen()[0].host, "127.0.0.1");
  EXPECT_EQ(node.seen()[0].uri, "/rpc/v1");
}

TEST(RpcClient, LocalhostIsSentAsLocalhost) {
  TestNode node(echoMethod);
  RpcConfig config = configFor(node);
  config.url = "http://localhost:" + std::to_string(node.port());
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a");
  ASSERT_TRUE(outcome.ok()) << outcome.json;
  EXPECT_EQ(node.seen()[0].host, "localhost");
}

TEST(RpcClient, UnusableUrlsAreConfigErrors) {
  RpcConfig config;
  // (https:// is accepted: the Https tests below.)
  config.url = "ftp://127.0.0.1:3030";
  EXPECT_THROW(RpcClient{config}, bb::ConfigError);
  config.url = "http://user:pw@127.0.0.1:3030";
  EXPECT_THROW(RpcClient{config}, bb::ConfigError);
  config.url = "http://127.0.0.1:3030";
  config.max_connections = 0;
  EXPECT_THROW(RpcClient{config}, bb::ConfigError);
}

TEST(RpcClient, KeepAliveReusesOneConnection) {
  TestNode node(echoMethod);
  RpcClient client(configFor(node));
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(client.call("a").ok());
  EXPECT_EQ(node.requests(), 5);
  EXPECT_EQ(node.connections(), 1);
  EXPECT_EQ(client.requestsSent(), 5u);
}

// --- Retries --------------------------------------------------------------------------------

TEST(RpcClient, Http500IsRetriedThenSucceeds) {
  TestNode node(
      [](TestNode&, const Seen& seen, int index, HTTPServerRequest&, HTTPServerResponse& response) {
        if (index < 2) {
          reply(response, 500, "oops");
        } else {
          replyResult(response, seen, "1");
        }
      });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("a");
  ASSERT_EQ(outcome.status, RpcStatus::Ok) << outcome.json;
  EXPECT_EQ(outcome.json, "1");
  EXPECT_EQ(outcome.attempts, 3);
  EXPECT_EQ(node.requests(), 3);
  EXPECT_EQ(client.requestsSent(), 3u);
}

TEST(RpcClient, Http500GivesUpAfterTheRetries) {
  TestNode node([](TestNode&, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
    reply(response, 503, "");
  });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("compute_market.stats");
  EXPECT_EQ(outcome.status, RpcStatus::Transport);
  EXPECT_EQ(outcome.failure, RpcFailure::HttpStatus);
  EXPECT_EQ(outcome.attempts, 3);
  EXPECT_EQ(outcome.http_status, 503);
  const std::string message = messageOf(outcome);
  EXPECT_NE(message.find("compute_market.stats"), std::string::npos) << message;
  EXPECT_NE(message.find("503"), std::string::npos) << message;
}

TEST(RpcClient, ClosedConnectionIsRetriedThenSucceeds) {
  TestNode node([](TestNode&, const Seen& seen, int index, HTTPServerRequest& request,
                   HTTPServerResponse& response) {
    if (index == 0) {
      hangUp(request);
    } else {
      replyResult(response, seen, "true");
    }
  });
  RpcClient client(configFor(node));
  // A cheap read (method_policy.h); light.latest_header is never retried (test below).
  const RpcOutcome outcome = client.call("net.overlay_status");
  ASSERT_EQ(outcome.status, RpcStatus::Ok) << outcome.json;
  EXPECT_EQ(outcome.attempts, 2);
  EXPECT_EQ(node.requests(), 2);
}

// Answers each call with its index, keep-alive; drops the connection after the first answer, as
// a node with a short idle timeout does.
void answerThenDropTheFirstConnection(TestNode& n, const Seen& seen, int index,
                                      HTTPServerRequest& request, HTTPServerResponse& response) {
  const std::string body =
      "{\"jsonrpc\":\"2.0\",\"id\":" + seen.id + ",\"result\":" + std::to_string(index) + "}";
  response.setContentType("application/json");
  response.setContentLength64(static_cast<Poco::Int64>(body.size()));
  response.send() << body << std::flush;
  if (index == 0) {
    hangUp(request);
    n.release();
  }
}

// Two calls through `config`: the second finds its kept-alive connection closed by `node`.
void expectResentOnANewConnection(TestNode& node, RpcConfig config) {
  config.retries = 0;  // the resend must not depend on a retry being allowed
  RpcClient client(config);
  ASSERT_TRUE(client.call("a").ok());
  // The second call goes out once the node has dropped the connection (idle, as the case is):
  // sent earlier, it could reach the node before the drop and be read there as well.
  node.waitForRelease(5000ms);
  const RpcOutcome second = client.call("b");
  ASSERT_EQ(second.status, RpcStatus::Ok) << second.json;
  EXPECT_EQ(second.json, "1");
  EXPECT_EQ(second.attempts, 2);
  EXPECT_EQ(node.connections(), 2);
}

TEST(RpcClient, KeptAliveConnectionClosedByTheNodeIsResentOnANewOne) {
  TestNode node(answerThenDropTheFirstConnection);
  expectResentOnANewConnection(node, configFor(node));
}

TEST(RpcClient, Http400IsNotRetried) {
  TestNode node([](TestNode&, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
    reply(response, 400, "bad request");
  });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("a");
  EXPECT_EQ(outcome.status, RpcStatus::Transport);
  EXPECT_EQ(outcome.http_status, 400);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(node.requests(), 1);
}

TEST(RpcClient, Http403NamesTheHostCheck) {
  TestNode node([](TestNode&, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
    reply(response, 403, "");
  });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("a");
  EXPECT_EQ(outcome.status, RpcStatus::Transport);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_NE(messageOf(outcome).find("HTTP 403 from node (Host header refused or forbidden)"),
            std::string::npos)
      << outcome.json;
}

TEST(RpcClient, JsonRpcErrorWithHttp500IsAnAnswerNotRetried) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        replyError(response, seen, "{\"code\":-32603,\"message\":\"internal\"}", 500);
      });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("a");
  EXPECT_EQ(outcome.status, RpcStatus::RpcError);
  EXPECT_EQ(outcome.attempts, 1);
}

TEST(RpcClient, ConnectionRefusedIsTransportAfterRetries) {
  RpcConfig config;
  config.url = deadNodeUrl();
  config.retries = 1;
  config.backoff_initial_ms = 1;
  config.backoff_max_ms = 2;
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a");
  EXPECT_EQ(outcome.status, RpcStatus::Transport);
  EXPECT_EQ(outcome.failure, RpcFailure::Refused);
  EXPECT_EQ(outcome.http_status, 0);
  EXPECT_EQ(outcome.attempts, 2);
  EXPECT_NE(messageOf(outcome).find("refused"), std::string::npos) << outcome.json;
}

TEST(RpcClient, ServerThatNeverAnswersTimesOutWithinTheDeadline) {
  TestNode node(
      [](TestNode& self, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
        self.waitForRelease(20s);
        reply(response, 200, "{}");
      });
  RpcConfig config = configFor(node);
  config.timeout_ms = 200;
  config.retries = 1;
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a", "{}", Clock::now() + 1500ms);
  EXPECT_EQ(outcome.status, RpcStatus::Timeout) << outcome.json;
  EXPECT_EQ(outcome.failure, RpcFailure::Timeout);
  EXPECT_GE(outcome.attempts, 1);
  node.release();
}

// --- Limits ---------------------------------------------------------------------------------

TEST(RpcClient, Http429PausesEveryCallWithoutReachingTheNode) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        response.set("Retry-After", "30");
        replyError(response, seen, "{\"code\":-32001,\"message\":\"rate limited\"}", 429);
      });
  RpcClient client(configFor(node));
  EXPECT_FALSE(client.banned());
  const RpcOutcome first = client.call("a");
  EXPECT_EQ(first.status, RpcStatus::Limit);
  EXPECT_EQ(first.failure, RpcFailure::RateLimited);
  EXPECT_EQ(first.attempts, 1);
  EXPECT_EQ(first.http_status, 429);
  EXPECT_TRUE(client.banned());
  const RpcOutcome second = client.call("b");
  EXPECT_EQ(second.status, RpcStatus::Limit);
  EXPECT_EQ(second.failure, RpcFailure::RateLimited);
  EXPECT_EQ(second.attempts, 0);
  const auto many = client.callMany({{"c", ""}, {"d", ""}}, Clock::now() + 5s);
  for (const auto& outcome : many) EXPECT_EQ(outcome.status, RpcStatus::Limit);
  EXPECT_EQ(node.requests(), 1);
  EXPECT_EQ(client.requestsSent(), 1u);
}

TEST(RpcClient, BannedErrorCodeInA200AlsoPauses) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        replyError(response, seen, "{\"code\":-32002,\"message\":\"banned\"}");
      });
  RpcClient client(configFor(node));
  EXPECT_EQ(client.call("a").status, RpcStatus::Limit);
  EXPECT_TRUE(client.banned());
  EXPECT_EQ(client.call("b").status, RpcStatus::Limit);
  EXPECT_EQ(node.requests(), 1);
}

TEST(RpcClient, OversizedContentLengthIsRefusedUnread) {
  TestNode node([](TestNode&, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
    response.setContentLength64(int64_t{1} << 30);  // announces 1 GiB, sends a few bytes
    response.send() << "{\"jsonrpc\":\"2.0\"" << std::flush;
  });
  RpcConfig config = configFor(node);
  config.max_response_bytes = 1024;
  RpcClient client(config);
  const RpcOutcome outcome = client.call("compute_market.stats");
  EXPECT_EQ(outcome.status, RpcStatus::Limit);
  EXPECT_EQ(outcome.failure, RpcFailure::TooLarge);
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_NE(messageOf(outcome).find("max_response_bytes"), std::string::npos) << outcome.json;
}

TEST(RpcClient, OversizedChunkedReplyIsRefused) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        response.setChunkedTransferEncoding(true);
        std::ostream& out = response.send();
        out << "{\"jsonrpc\":\"2.0\",\"id\":" << seen.id << ",\"result\":\""
            << std::string(8192, 'x') << "\"}";
      });
  RpcConfig config = configFor(node);
  config.max_response_bytes = 1024;
  RpcClient client(config);
  EXPECT_EQ(client.call("a").status, RpcStatus::Limit);
  // The same chunked reply under the cap is read whole.
  config.max_response_bytes = 1 << 20;
  RpcClient roomy(config);
  const RpcOutcome outcome = roomy.call("a");
  ASSERT_EQ(outcome.status, RpcStatus::Ok) << outcome.json;
  EXPECT_EQ(outcome.json.size(), 8192u + 2);
}

TEST(RpcClient, RateCapFailsACallThatCannotGetATokenInTime) {
  TestNode node(echoMethod);
  RpcConfig config = configFor(node);
  config.max_requests_per_second = 0.01;  // one token per 100 s after the burst
  config.burst = 2;
  RpcClient client(config);
  const auto deadline = Clock::now() + 2s;
  EXPECT_TRUE(client.call("a", "{}", deadline).ok());
  EXPECT_TRUE(client.call("b", "{}", deadline).ok());
  const RpcOutcome third = client.call("c", "{}", deadline);
  EXPECT_EQ(third.status, RpcStatus::Timeout);
  EXPECT_NE(messageOf(third).find("rate cap"), std::string::npos) << third.json;
  EXPECT_EQ(node.requests(), 2);
}

// --- Concurrency ----------------------------------------------------------------------------

TEST(RpcClient, CallManyRunsConcurrentlyAndKeepsOrder) {
  TestNode node([](TestNode& self, const Seen& seen, int index, HTTPServerRequest& request,
                   HTTPServerResponse& response) {
    // Hold each request until a second one is in flight (bounded), so concurrency shows.
    self.waitForInFlight(2, 5s);
    echoMethod(self, seen, index, request, response);
  });
  RpcClient client(configFor(node));
  std::atomic<int> observed{0};
  client.setObserver([&](const std::string&, const RpcOutcome&) { ++observed; });
  std::vector<std::pair<std::string, std::string>> calls;
  for (int i = 0; i < 6; ++i) calls.emplace_back("m" + std::to_string(i), "");
  const auto outcomes = client.callMany(calls, Clock::now() + 20s);
  ASSERT_EQ(outcomes.size(), calls.size());
  for (std::size_t i = 0; i < calls.size(); ++i) {
    ASSERT_EQ(outcomes[i].status, RpcStatus::Ok) << outcomes[i].json;
    EXPECT_EQ(outcomes[i].json, "{\"method\":\"" + calls[i].first + "\"}");
  }
  EXPECT_GT(node.maxInFlight(), 1);
  EXPECT_LE(node.maxInFlight(), 4);  // max_connections
  EXPECT_EQ(observed.load(), 6);
}

TEST(RpcClient, ShutdownWakesACallWaitingForAConnection) {
  TestNode node(
      [](TestNode& self, const Seen&, int, HTTPServerRequest&, HTTPServerResponse& response) {
        self.waitForRelease(20s);
        reply(response, 200, "{}");
      });
  RpcConfig config = configFor(node);
  config.max_connections = 1;
  config.timeout_ms = 30000;
  RpcClient client(config);
  auto busy =
      std::async(std::launch::async, [&] { return client.call("busy", "{}", Clock::now() + 30s); });
  ASSERT_TRUE(node.waitForRequests(1, 10s));
  // This call can only wait for the one connection, which the first holds for up to 20 s.
  auto waiter = std::async(std::launch::async,
                           [&] { return client.call("waiter", "{}", Clock::now() + 30s); });
  std::this_thread::sleep_for(100ms);  // let it start waiting; correctness does not depend on it
  client.shutdown();
  const RpcOutcome woken = waiter.get();
  EXPECT_EQ(woken.status, RpcStatus::Shutdown) << woken.json;
  EXPECT_EQ(woken.attempts, 0);
  node.release();
  busy.get();
  EXPECT_EQ(client.call("after").status, RpcStatus::Shutdown);
  EXPECT_EQ(node.requests(), 1);
}

TEST(RpcClient, ShutdownWakesACallWaitingForARateToken) {
  TestNode node(echoMethod);
  RpcConfig config = configFor(node);
  config.max_requests_per_second = 0.05;  // next token in 20 s, inside the 60 s deadline
  config.burst = 1;
  RpcClient client(config);
  ASSERT_TRUE(client.call("a").ok());
  auto waiter =
      std::async(std::launch::async, [&] { return client.call("b", "{}", Clock::now() + 60s); });
  std::this_thread::sleep_for(100ms);  // let it start waiting; correctness does not depend on it
  client.shutdown();
  EXPECT_EQ(waiter.get().status, RpcStatus::Shutdown);
  EXPECT_EQ(node.requests(), 1);
}

// --- Secrets --------------------------------------------------------------------------------

TEST(RpcClient, TheTokenNeverAppearsInOutcomesOrLogs) {
  const std::string token = "s3cr3t-token-value";
  TestNode node([&](TestNode&, const Seen& seen, int index, HTTPServerRequest&,
                    HTTPServerResponse& response) {
    switch (index % 4) {
      case 0:
        reply(response, 500, seen.authorization);
        break;
      case 1:
        reply(response, 200, "not json " + seen.authorization);
        break;
      case 2:
        replyError(response, seen, "{\"code\":-32601,\"message\":\"nope\"}");
        break;
      default:
        reply(response, 429, "");
    }
  });
  RpcConfig config = configFor(node);
  config.auth_token = token;
  config.retries = 0;
  bb::setLogLevel(bb::LogLevel::Debug);
  testing::internal::CaptureStderr();
  std::vector<RpcOutcome> outcomes;
  {
    RpcClient client(config);
    for (int i = 0; i < 4; ++i) outcomes.push_back(client.call("m" + std::to_string(i)));
    outcomes.push_back(client.call("after-ban"));
  }
  const std::string logs = testing::internal::GetCapturedStderr();
  bb::setLogLevel(bb::LogLevel::Info);
  ASSERT_EQ(node.requests(), 4);
  EXPECT_EQ(node.seen()[0].authorization, "Bearer " + token);  // it was really sent
  EXPECT_EQ(outcomes[0].status, RpcStatus::Transport);
  EXPECT_EQ(outcomes[1].status, RpcStatus::BadResponse);
  EXPECT_EQ(outcomes[2].status, RpcStatus::RpcError);
  EXPECT_EQ(outcomes[3].status, RpcStatus::Limit);
  EXPECT_EQ(outcomes[4].status, RpcStatus::Limit);
  for (const auto& outcome : outcomes) {
    EXPECT_EQ(outcome.json.find(token), std::string::npos) << outcome.json;
  }
  EXPECT_NE(logs.find("rate-limited"), std::string::npos) << logs;  // something was logged
  EXPECT_EQ(logs.find(token), std::string::npos) << logs;
}

// --- Identical calls share one request (share_ms) -------------------------------------------

// Four identical calls at once (as four market plugins read governor.status in one cycle): one
// request; every caller gets its result, three of them marked shared.
TEST(RpcSharing, IdenticalCallsInFlightShareOneRequest) {
  TestNode node(
      [](TestNode& n, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        n.waitForRelease(5000ms);  // held until every caller has started
        replyResult(response, seen, "{\"epoch\":7}");
      });
  RpcConfig config = configFor(node);
  config.share_ms = 50;
  RpcClient client(config);
  std::vector<std::future<RpcOutcome>> calls;
  for (int i = 0; i < 4; ++i)
    calls.push_back(
        std::async(std::launch::async, [&] { return client.call("governor.status", "{}"); }));
  ASSERT_TRUE(node.waitForRequests(1, 5000ms));
  std::this_thread::sleep_for(100ms);  // the other three are waiting by now (not a timing claim:
                                       // a latecomer would be answered from the result instead)
  node.release();
  int shared = 0;
  for (auto& f : calls) {
    RpcOutcome o = f.get();
    EXPECT_EQ(o.status, RpcStatus::Ok) << o.json;
    EXPECT_EQ(o.json, "{\"epoch\":7}");
    shared += o.shared ? 1 : 0;
  }
  EXPECT_EQ(node.requests(), 1);
  EXPECT_EQ(shared, 3);
  EXPECT_EQ(client.requestsSent(), 1u);
}

// A success is reused within share_ms of its arrival, not after; other params, another method
// or share_ms 0 always ask the node.
TEST(RpcSharing, ASuccessIsReusedOnlyWithinTheWindowAndOnlyForTheSameCall) {
  TestNode node(echoMethod);
  RpcConfig config = configFor(node);
  config.share_ms = 1000;
  {
    RpcClient client(config);
    EXPECT_FALSE(client.call("a.b", "{\"x\":1}").shared);
    RpcOutcome again = client.call("a.b", "{\"x\":1}");
    EXPECT_TRUE(again.shared);
    EXPECT_EQ(again.json, "{\"method\":\"a.b\"}");
    EXPECT_FALSE(client.call("a.b", "{\"x\":2}").shared);
    EXPECT_FALSE(client.call("a.c", "{\"x\":1}").shared);
    EXPECT_EQ(node.requests(), 3);
  }
  config.share_ms = 1;
  {
    RpcClient client(config);
    client.call("a.b");
    std::this_thread::sleep_for(20ms);  // the share window passing is the behaviour under test
    EXPECT_FALSE(client.call("a.b").shared);  // older than 1 ms: asked again
    EXPECT_EQ(node.requests(), 5);
  }
  config.share_ms = 0;
  {
    RpcClient client(config);
    client.call("a.b");
    EXPECT_FALSE(client.call("a.b").shared);
    EXPECT_EQ(node.requests(), 7);
  }
}

// A failure is handed to the calls that waited for it (the node would have failed them too),
// but never reused by a later call: that one asks the node again.
TEST(RpcSharing, AFailureReachesTheWaitersButIsNotReused) {
  TestNode node(
      [](TestNode& n, const Seen&, int index, HTTPServerRequest&, HTTPServerResponse& response) {
        if (index == 0) n.waitForRelease(5000ms);
        reply(response, 404, "no such thing");
      });
  RpcConfig config = configFor(node);
  config.share_ms = 1000;
  config.retries = 0;
  RpcClient client(config);
  auto first = std::async(std::launch::async, [&] { return client.call("m.x"); });
  ASSERT_TRUE(node.waitForRequests(1, 5000ms));
  auto second = std::async(std::launch::async, [&] { return client.call("m.x"); });
  // Lets the second call join the first (the client has no hook that says it has).
  std::this_thread::sleep_for(100ms);
  node.release();
  RpcOutcome a = first.get();
  RpcOutcome b = second.get();
  EXPECT_EQ(a.status, RpcStatus::Transport) << a.json;
  EXPECT_EQ(b.status, RpcStatus::Transport) << b.json;
  EXPECT_EQ(b.json, a.json);  // the same message, not wrapped twice
  EXPECT_EQ(node.requests(), 1);
  EXPECT_FALSE(client.call("m.x").shared);
  EXPECT_EQ(node.requests(), 2);
}

// --- Token bucket ---------------------------------------------------------------------------

struct FakeClock {
  Clock::time_point now = Clock::time_point() + std::chrono::hours(1);
  bb::TokenBucket::NowFn fn() {
    return [this] { return now; };
  }
};

TEST(TokenBucket, BurstThenRate) {
  FakeClock clock;
  bb::TokenBucket bucket(2.0, 3, clock.fn());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(bucket.tryTake().count(), 0) << "burst token " << i;
  const auto wait = bucket.tryTake();
  EXPECT_EQ(wait, std::chrono::milliseconds(500));
  clock.now += std::chrono::milliseconds(499);
  EXPECT_GT(bucket.tryTake().count(), 0);
  clock.now += std::chrono::milliseconds(1);
  EXPECT_EQ(bucket.tryTake().count(), 0);
  EXPECT_GT(bucket.tryTake().count(), 0);
  clock.now += std::chrono::milliseconds(1000);  // two more tokens at 2/s
  EXPECT_EQ(bucket.tryTake().count(), 0);
  EXPECT_EQ(bucket.tryTake().count(), 0);
  EXPECT_GT(bucket.tryTake().count(), 0);
}

TEST(TokenBucket, RefillIsCappedAtCapacity) {
  FakeClock clock;
  bb::TokenBucket bucket(10.0, 4, clock.fn());
  for (int i = 0; i < 4; ++i) ASSERT_EQ(bucket.tryTake().count(), 0);
  clock.now += std::chrono::hours(1);
  EXPECT_DOUBLE_EQ(bucket.available(), 4.0);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(bucket.tryTake().count(), 0);
  EXPECT_GT(bucket.tryTake().count(), 0);
}

TEST(TokenBucket, ZeroRateMeansNoCap) {
  FakeClock clock;
  bb::TokenBucket bucket(0.0, 1, clock.fn());
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(bucket.tryTake().count(), 0);
}

TEST(TokenBucket, ClockGoingBackwardsDoesNotDrain) {
  FakeClock clock;
  bb::TokenBucket bucket(1.0, 2, clock.fn());
  clock.now -= std::chrono::seconds(10);
  EXPECT_DOUBLE_EQ(bucket.available(), 2.0);
}

// --- Method policy (agent/rpc/method_policy.h) --------------------------------------------

TEST(MethodPolicy, AMethodWithSideEffectsIsNeverSent) {
  TestNode node(echoMethod);
  RpcClient client(configFor(node));
  for (const char* method : {"storage.audit", "storage.repair_run", "start_mining"}) {
    const RpcOutcome outcome = client.call(method);
    EXPECT_EQ(outcome.status, RpcStatus::Invalid) << method;
    EXPECT_NE(messageOf(outcome).find("never calls"), std::string::npos) << outcome.json;
  }
  EXPECT_EQ(node.requests(), 0);
}

TEST(MethodPolicy, LatestHeaderIsNeverRetried) {
  TestNode node([](TestNode&, const Seen& seen, int index, HTTPServerRequest& request,
                   HTTPServerResponse& response) {
    if (index == 0) {
      hangUp(request);  // the old process, or a panic: a retry could reach a fresh node
    } else {
      replyResult(response, seen, "{\"height\":1}");
    }
  });
  RpcClient client(configFor(node));
  const RpcOutcome outcome = client.call("light.latest_header");
  EXPECT_EQ(outcome.status, RpcStatus::Transport) << outcome.json;
  EXPECT_EQ(outcome.attempts, 1);
  EXPECT_EQ(node.requests(), 1);
}

TEST(MethodPolicy, AfterAConnectionLossLatestHeaderWaitsForLightHeadersToShowABlock) {
  std::atomic<bool> drop{false};
  std::atomic<bool> empty_chain{false};
  TestNode node([&](TestNode&, const Seen& seen, int, HTTPServerRequest& request,
                    HTTPServerResponse& response) {
    if (drop) return hangUp(request);
    if (seen.method == "light.headers")
      return replyResult(response, seen, empty_chain ? "[]" : "[{\"height\":0}]");
    replyResult(response, seen, "{\"height\":7}");
  });
  RpcConfig config = configFor(node);
  config.retries = 0;
  RpcClient client(config);
  ASSERT_TRUE(client.call("light.headers", R"({"start":0,"limit":1})").ok());
  ASSERT_TRUE(client.call("light.latest_header").ok());
  // The node goes away (a reset, an empty reply): it may come back as a fresh process.
  drop = true;
  EXPECT_EQ(client.call("net.overlay_status").status, RpcStatus::Transport);
  drop = false;
  const int before = node.requests();
  const RpcOutcome refused = client.call("light.latest_header");
  EXPECT_EQ(refused.status, RpcStatus::Invalid) << refused.json;
  EXPECT_NE(messageOf(refused).find("light.headers"), std::string::npos) << refused.json;
  EXPECT_EQ(node.requests(), before) << "light.latest_header reached the node";
  // The new process has an empty chain: still not safe.
  empty_chain = true;
  ASSERT_TRUE(client.call("light.headers", R"({"start":0,"limit":1})").ok());
  EXPECT_EQ(client.call("light.latest_header").status, RpcStatus::Invalid);
  // It has a block now: safe again.
  empty_chain = false;
  ASSERT_TRUE(client.call("light.headers", R"({"start":0,"limit":1})").ok());
  EXPECT_TRUE(client.call("light.latest_header").ok());
}

TEST(MethodPolicy, ANodeWithoutLightHeadersKeepsLatestHeaderAfterALoss) {
  // The spec profile has no light.headers: the guard needs it, so it stays out of the way.
  std::atomic<bool> drop{false};
  TestNode node([&](TestNode&, const Seen& seen, int, HTTPServerRequest& request,
                    HTTPServerResponse& response) {
    if (drop) return hangUp(request);
    replyResult(response, seen, "{\"number\":7}");
  });
  RpcConfig config = configFor(node);
  config.retries = 0;
  RpcClient client(config);
  drop = true;
  EXPECT_FALSE(client.call("net.peers").ok());
  drop = false;
  EXPECT_TRUE(client.call("light.latest_header").ok());
}

TEST(MethodPolicy, PipelineReadsGoOneAtATimeAndOncePerInterval) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        std::this_thread::sleep_for(300ms);  // the real node takes seconds
        replyResult(response, seen, "{\"status\":\"ok\"}");
      });
  RpcClient client(configFor(node));
  const auto deadline = Clock::now() + 10s;
  const auto outcomes = client.callMany(
      {{"storage.discover_providers", "{\"limit\":5}"}, {"storage.manifests", "{\"limit\":5}"}},
      deadline);
  for (const auto& o : outcomes) EXPECT_EQ(o.status, RpcStatus::Ok) << o.json;
  EXPECT_EQ(node.requests(), 2);
  EXPECT_EQ(node.maxInFlight(), 1) << "two pipeline opens at once race on the node's files";
  // Within the interval: the kept answer, nothing sent.
  const RpcOutcome again = client.call("storage.manifests", "{\"limit\":5}");
  EXPECT_EQ(again.status, RpcStatus::Ok);
  EXPECT_TRUE(again.shared);
  EXPECT_EQ(node.requests(), 2);
}

TEST(MethodPolicy, APipelineReadOutlivesItsCallersDeadlineAndIsKept) {
  TestNode node(
      [](TestNode&, const Seen& seen, int, HTTPServerRequest&, HTTPServerResponse& response) {
        std::this_thread::sleep_for(600ms);  // a node slow on purpose: the fixture's behaviour
        replyResult(response, seen, "{\"manifests\":[]}");
      });
  RpcClient client(configFor(node));
  const RpcOutcome first = client.call("storage.manifests", "{}", Clock::now() + 100ms);
  EXPECT_EQ(first.status, RpcStatus::Timeout);
  EXPECT_TRUE(first.shared) << "a caller that sent nothing is not a judgement of the node";
  const RpcOutcome second = client.call("storage.manifests", "{}", Clock::now() + 5s);
  EXPECT_EQ(second.status, RpcStatus::Ok) << second.json;
  EXPECT_EQ(second.json, "{\"manifests\":[]}");
  EXPECT_EQ(node.requests(), 1);
}

TEST(MethodPolicy, RetriesAgainstADeadNodeDoNotUseUpTheRateCap) {
  RpcConfig config;
  config.url = deadNodeUrl();
  config.retries = 3;
  config.backoff_initial_ms = 1;
  config.backoff_max_ms = 2;
  config.max_requests_per_second = 0.5;  // one token every 2 s
  config.burst = 1;
  RpcClient client(config);
  for (int i = 0; i < 3; ++i) {
    const RpcOutcome outcome = client.call("a", "{}", Clock::now() + 1s);
    const std::string message = messageOf(outcome);
    EXPECT_NE(message.find("refused"), std::string::npos) << message;
    EXPECT_EQ(message.find("rate cap"), std::string::npos) << message;
  }
}

// --- https:// node URLs (a node behind a TLS proxy) ---------------------------------------------

// Test programs live in tests/bin, not beside the agent: say where the TLS module is. OpenSSL
// writes with write(2): a node that hung up must be EPIPE, not SIGPIPE, as in the agent.
const bool kTlsModuleSet =
    setenv("BLOCK_BUSTER_TLS_MODULE", BB_TLS_MODULE, 1) == 0 && signal(SIGPIPE, SIG_IGN) != SIG_ERR;

// A node on 127.0.0.1:0 that speaks TLS with a self-signed certificate made by openssl for
// `alt_names`; the certificate is its own CA (cert.cert_file).
struct HttpsNode {
  explicit HttpsNode(Script script, const std::string& alt_names = "IP:127.0.0.1,DNS:localhost")
      : cert(dir, "node", alt_names), node(std::move(script), tlsSocket(cert), "https") {}
  static Poco::Net::ServerSocket tlsSocket(const bbtest::TestCertificate& cert) {
    Poco::Net::initializeSSL();
    Poco::Net::Context::Ptr context =
        new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, cert.key_file, cert.cert_file,
                               "", Poco::Net::Context::VERIFY_NONE);
    return Poco::Net::SecureServerSocket(Poco::Net::SocketAddress("127.0.0.1", 0), 64, context);
  }
  bbtest::TempDir dir;
  bbtest::TestCertificate cert;
  TestNode node;
};

TEST(Https, WithTheCaFileCallsGoOverOneKeptAliveTlsConnection) {
  ASSERT_TRUE(kTlsModuleSet);
  HttpsNode https(echoMethod);
  RpcConfig config = configFor(https.node);
  config.url = https.node.url("/rpc");
  config.tls_ca_file = https.cert.cert_file;
  config.auth_token = "tls-token-1";
  RpcClient client(config);
  for (int i = 0; i < 5; ++i) {
    const RpcOutcome outcome = client.call("a");
    ASSERT_TRUE(outcome.ok()) << outcome.json;
    EXPECT_EQ(outcome.json, "{\"method\":\"a\"}");
  }
  const auto seen = https.node.seen();
  ASSERT_EQ(seen.size(), 5u);
  EXPECT_EQ(https.node.connections(), 1);  // keep-alive holds over TLS
  EXPECT_EQ(seen[0].uri, "/rpc");
  EXPECT_EQ(seen[0].host, "127.0.0.1");
  EXPECT_EQ(seen[0].authorization, "Bearer tls-token-1");
}

TEST(Https, AHostNameInTheUrlIsSentAndChecked) {
  HttpsNode https(echoMethod);
  RpcConfig config = configFor(https.node);
  config.url = "https://localhost:" + std::to_string(https.node.port());
  config.tls_ca_file = https.cert.cert_file;
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a");
  ASSERT_TRUE(outcome.ok()) << outcome.json;
  EXPECT_EQ(https.node.seen()[0].host, "localhost");
}

TEST(Https, VerificationIsOnWithoutACaFile) {
  // No tls_ca_file: the system's CA store, which does not trust the test's certificate.
  HttpsNode https(echoMethod);
  RpcConfig config = configFor(https.node);
  config.url = https.node.url("/rpc");
  config.auth_token = "tls-token-2";
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a");
  EXPECT_EQ(outcome.status, RpcStatus::Transport);
  EXPECT_EQ(outcome.attempts, 1);  // a setting to fix: not retried
  const std::string message = messageOf(outcome);
  EXPECT_NE(message.find(https.node.url("/rpc")), std::string::npos) << message;
  EXPECT_NE(message.find("not trusted"), std::string::npos) << message;
  EXPECT_NE(message.find("rpc.tls_ca_file"), std::string::npos) << message;
  EXPECT_EQ(message.find("tls-token-2"), std::string::npos) << message;
  EXPECT_EQ(https.node.requests(), 0);  // nothing was sent to an untrusted peer
}

TEST(Https, ACertificateForAnotherHostIsRefused) {
  HttpsNode https(echoMethod, "DNS:node.example");  // trusted CA, wrong name
  RpcConfig config = configFor(https.node);
  config.tls_ca_file = https.cert.cert_file;
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a");
  EXPECT_EQ(outcome.status, RpcStatus::Transport);
  const std::string message = messageOf(outcome);
  EXPECT_NE(message.find("does not name"), std::string::npos) << message;
  EXPECT_NE(message.find(https.node.url()), std::string::npos) << message;
  EXPECT_EQ(https.node.requests(), 0);
}

TEST(Https, AnUnusableCaFileIsAConfigErrorNamingTheKey) {
  bbtest::TempDir dir;
  RpcConfig config;
  config.url = "https://127.0.0.1:3030";
  config.tls_ca_file = dir.file("missing.pem");
  try {
    RpcClient client(config);
    FAIL() << "a missing CA file was accepted";
  } catch (const bb::ConfigError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("rpc.tls_ca_file: ", 0), 0u) << what;
    EXPECT_NE(what.find(dir.file("missing.pem")), std::string::npos) << what;
  }
  dir.write("junk.pem", "not a certificate\n");
  config.tls_ca_file = dir.file("junk.pem");
  try {
    RpcClient client(config);
    FAIL() << "a CA file without a certificate was accepted";
  } catch (const bb::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()).rfind("rpc.tls_ca_file: ", 0), 0u) << e.what();
  }
  // A plain-HTTP URL never reads it.
  config.url = "http://127.0.0.1:3030";
  config.tls_ca_file = dir.file("missing.pem");
  EXPECT_NO_THROW(RpcClient{config});
}

TEST(Https, AnEmptyReplyIsRetriedOnANewTlsConnection) {
  HttpsNode https([](TestNode&, const Seen& seen, int index, HTTPServerRequest& request,
                     HTTPServerResponse& response) {
    if (index == 0) return hangUp(request);
    replyResult(response, seen, "1");
  });
  RpcConfig config = configFor(https.node);
  config.tls_ca_file = https.cert.cert_file;
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a");
  ASSERT_TRUE(outcome.ok()) << outcome.json;
  EXPECT_EQ(outcome.attempts, 2);
  EXPECT_EQ(https.node.connections(), 2);
}

TEST(Https, AKeptAliveConnectionClosedByTheNodeIsResentOnANewOne) {
  HttpsNode https(answerThenDropTheFirstConnection);
  RpcConfig config = configFor(https.node);
  config.tls_ca_file = https.cert.cert_file;
  expectResentOnANewConnection(https.node, config);
}

TEST(Https, ASilentPeerCannotHoldTheHandshakePastTheDeadline) {
  // Accepts TCP (the backlog) but never says a word of TLS.
  Poco::Net::ServerSocket silent(Poco::Net::SocketAddress("127.0.0.1", 0));
  bbtest::TempDir dir;
  bbtest::TestCertificate cert(dir);
  RpcConfig config;
  config.url = "https://127.0.0.1:" + std::to_string(silent.address().port());
  config.tls_ca_file = cert.cert_file;
  config.retries = 0;
  config.timeout_ms = 60000;  // only the call's deadline can end it
  RpcClient client(config);
  const RpcOutcome outcome = client.call("a", "{}", Clock::now() + 300ms);
  EXPECT_EQ(outcome.status, RpcStatus::Timeout) << outcome.json;
  EXPECT_LT(outcome.seconds, 5.0);
  // And shutdown() cuts a handshake in flight.
  auto pending =
      std::async(std::launch::async, [&] { return client.call("b", "{}", Clock::now() + 60s); });
  std::this_thread::sleep_for(100ms);  // let the handshake start; correctness does not depend on it
  client.shutdown();
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready);
  EXPECT_EQ(pending.get().status, RpcStatus::Shutdown);
}

}  // namespace
