#include "http/server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/ThreadPool.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <chrono>
#include <stdexcept>

#include "util/log.h"

namespace bb {
namespace {

bool containsToken(std::string value, const std::string& token) {
  for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value.find(token) != std::string::npos;
}

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(const HttpServer::Handler& handler, const HttpServer::Observer& observer,
          UpgradeHandler* upgrade)
      : handler_(handler), observer_(observer), upgrade_(upgrade) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    auto started = std::chrono::steady_clock::now();
    HttpRequest req;
    req.method = request.getMethod();
    const std::string& uri = request.getURI();
    size_t q = uri.find('?');
    std::string raw_path = uri.substr(0, q);
    if (q != std::string::npos) req.raw_query = uri.substr(q + 1);
    // A path that does not decode is answered 400 by the router as an unknown route.
    if (!percentDecode(raw_path, req.path, false)) req.path = raw_path;
    req.origin = request.get("Origin", "");
    req.if_none_match = request.get("If-None-Match", "");
    HttpResponse resp;
    if (upgrade_ && upgrade_->handlesPath(req.path)) {
      if (upgradeWebSocket(request, response, req, resp)) {
        observe(request, raw_path, resp, started);
        return;
      }
    } else {
      try {
        resp = handler_(std::move(req));
      } catch (const std::exception& e) {
        // A handler bug must not take the connection down with a half-written answer.
        logError("http", std::string("handler failed: ") + e.what());
        resp = HttpResponse::error(500, "internal_error", "the agent failed to build this answer");
      }
    }
    response.setStatusAndReason(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(resp.status));
    if (!resp.content_type.empty()) response.setContentType(resp.content_type);
    for (const auto& h : resp.headers) response.add(h.first, h.second);
    response.setContentLength(static_cast<std::streamsize>(resp.body.size()));
    try {
      if (resp.head || resp.status == 204 || resp.status == 304)
        response.send();
      else
        response.sendBuffer(resp.body.data(), resp.body.size());
    } catch (const Poco::Exception&) {
      // The client went away mid-answer: nothing to do.
    }
    observe(request, raw_path, resp, started);
  }

 private:
  void observe(const Poco::Net::HTTPServerRequest& request, const std::string& raw_path,
               const HttpResponse& resp, std::chrono::steady_clock::time_point started) {
    if (!observer_) return;
    HttpRequest seen;
    seen.method = request.getMethod();
    seen.path = raw_path;
    observer_(seen, resp,
              std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count());
  }

  // A request to a WebSocket path. Returns true when the connection was upgraded and handed
  // over (the 101 is sent); false with `resp` set to the answer to send instead.
  bool upgradeWebSocket(Poco::Net::HTTPServerRequest& request,
                        Poco::Net::HTTPServerResponse& response, const HttpRequest& req,
                        HttpResponse& resp) {
    if (!containsToken(request.get("Upgrade", ""), "websocket") ||
        !containsToken(request.get("Connection", ""), "upgrade")) {
      resp = HttpResponse::error(426, "upgrade_required",
                                 "this path serves a WebSocket stream only; connect with a "
                                 "WebSocket client (Upgrade: websocket)");
      resp.headers.emplace_back("Upgrade", "websocket");
      return false;
    }
    std::optional<HttpResponse> refusal;
    try {
      refusal = upgrade_->checkUpgrade(req);
    } catch (const std::exception& e) {
      logError("http", std::string("WebSocket admission failed: ") + e.what());
      refusal = HttpResponse::error(500, "internal_error", "the agent failed to admit the client");
    }
    if (refusal) {
      resp = std::move(*refusal);
      return false;
    }
    // Bytes the client sent right after its request sit in the HTTP session's buffer; take
    // them before the handshake (Poco's WebSocket would keep them in its own private buffer).
    std::string pending;
    if (auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request)) {
      Poco::Buffer<char> buffer(0);
      impl->session().drainBuffer(buffer);
      pending.assign(buffer.begin(), buffer.size());
    }
    int fd = -1;
    try {
      // The server-side constructor checks the handshake, sends the 101 and detaches the socket
      // from the HTTP session, so this thread is free once we return.
      Poco::Net::WebSocket ws(request, response);
      // Our own descriptor of the same connection: Poco closes its own when `ws` and the
      // session go away (close, not shutdown), which leaves ours open.
      fd = ::dup(ws.impl()->sockfd());
    } catch (const Poco::Net::WebSocketException& e) {
      resp = HttpResponse::error(400, "bad_handshake",
                                 "invalid WebSocket handshake: " + e.message() +
                                     "; send Sec-WebSocket-Key and Sec-WebSocket-Version: 13");
      return false;
    } catch (const Poco::Exception& e) {
      logWarn("http", "WebSocket handshake failed: " + e.displayText());
      resp = HttpResponse::error(400, "bad_handshake", "WebSocket handshake failed");
      return true;  // the connection is unusable; nothing more to send
    }
    resp = HttpResponse::json("", 101);
    if (fd < 0) {
      logError("http", "dup() of an upgraded WebSocket failed; the client is dropped");
      return true;
    }
    try {
      upgrade_->adopt(fd, req, std::move(pending));
    } catch (const std::exception& e) {
      logError("http", std::string("WebSocket hand-over failed: ") + e.what());
      ::close(fd);
    }
    return true;
  }

  const HttpServer::Handler& handler_;
  const HttpServer::Observer& observer_;
  UpgradeHandler* upgrade_;
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(HttpServer::Handler handler, HttpServer::Observer observer,
          const std::atomic<UpgradeHandler*>* upgrade)
      : handler_(std::move(handler)), observer_(std::move(observer)), upgrade_(upgrade) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(handler_, observer_, upgrade_->load());
  }

 private:
  HttpServer::Handler handler_;
  HttpServer::Observer observer_;
  const std::atomic<UpgradeHandler*>* upgrade_;
};

}  // namespace

struct HttpServer::Impl {
  std::atomic<UpgradeHandler*> upgrade{nullptr};
  Poco::Net::ServerSocket socket;
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
  int port = 0;
};

HttpServer::HttpServer(ServerOptions options, Handler handler, Observer observer)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  try {
    Poco::Net::SocketAddress address(options_.host, static_cast<Poco::UInt16>(options_.port));
    // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT: a second agent on the same port
    // must fail here, not silently share the port.
    impl_->socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    impl_->socket.listen(1024);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + " for " + options_.name + " (" +
                             e.displayText() +
                             "); is another process using the port? Choose another port");
  }
  impl_->port = impl_->socket.address().port();
  auto* params = new Poco::Net::HTTPServerParams;
  params->setMaxThreads(options_.max_threads);
  params->setMaxQueued(options_.max_queued);
  params->setKeepAlive(true);
  params->setMaxKeepAliveRequests(options_.max_keep_alive_requests);
  params->setKeepAliveTimeout(Poco::Timespan(options_.keep_alive_timeout_seconds, 0));
  params->setTimeout(Poco::Timespan(10, 0));
  params->setServerName("blockbuster-agent");
  impl_->pool = std::make_unique<Poco::ThreadPool>(2, options_.max_threads, 60, 256 * 1024);
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(
      new Factory(std::move(handler), std::move(observer), &impl_->upgrade), *impl_->pool,
      impl_->socket, params);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::setUpgradeHandler(UpgradeHandler* handler) { impl_->upgrade = handler; }

void HttpServer::start() { impl_->server->start(); }

void HttpServer::stop() {
  if (!impl_->server) return;
  impl_->server->stopAll(true);
  impl_->pool->joinAll();
  impl_->server.reset();
}

int HttpServer::port() const { return impl_->port; }

}  // namespace bb
