#include "http/server.h"

#include <Poco/Net/Context.h>
#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/NetSSL.h>
#include <Poco/Net/SecureServerSocket.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/ThreadPool.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <mutex>
#include <stdexcept>

#include "util/log.h"

namespace bb {
namespace {

bool containsToken(std::string value, const std::string& token) {
  for (auto& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value.find(token) != std::string::npos;
}

// The limits of `options` a request breaks, as the answer to send; nullopt if none.
std::optional<HttpResponse> checkLimits(const ServerOptions& options,
                                        const Poco::Net::HTTPServerRequest& request) {
  if (request.getURI().size() > options.max_uri_bytes)
    return HttpResponse::error(
        414, "uri_too_long",
        "the request target is longer than " + std::to_string(options.max_uri_bytes) + " bytes");
  size_t fields = 0, bytes = 0;
  for (const auto& h : request) {
    ++fields;
    bytes += h.first.size() + h.second.size();
  }
  if (fields > options.max_header_fields || bytes > options.max_header_bytes)
    return HttpResponse::error(
        431, "headers_too_large",
        "the request has more than " + std::to_string(options.max_header_fields) +
            " header fields or " + std::to_string(options.max_header_bytes) + " header bytes");
  if (request.getChunkedTransferEncoding() || request.getContentLength64() > options.max_body_bytes)
    return HttpResponse::error(
        413, "body_too_large",
        "this API takes no request body over " + std::to_string(options.max_body_bytes) + " bytes");
  return std::nullopt;
}

class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(const ServerOptions& options, const HttpServer::Handler& handler,
          const HttpServer::Observer& observer, UpgradeHandler* upgrade)
      : options_(options), handler_(handler), observer_(observer), upgrade_(upgrade) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    auto started = std::chrono::steady_clock::now();
    HttpRequest req;
    req.method = request.getMethod();
    const std::string& uri = request.getURI();
    size_t q = uri.find('?');
    std::string raw_path = uri.substr(0, q);
    if (q != std::string::npos) req.raw_query = uri.substr(q + 1);
    req.token_param = takeTokenParameter(req.raw_query);
    // A path that does not decode is answered 400 by the router as an unknown route.
    if (!percentDecode(raw_path, req.path, false)) req.path = raw_path;
    req.origin = request.get("Origin", "");
    req.if_none_match = request.get("If-None-Match", "");
    req.authorization = request.get("Authorization", "");
    req.ws_protocols = request.get("Sec-WebSocket-Protocol", "");
    HttpResponse resp;
    std::optional<HttpResponse> refusal = checkLimits(options_, request);
    if (refusal) {
      // The body (if any) is left unread: the connection cannot be reused.
      response.setKeepAlive(false);
    } else if (req.method != "OPTIONS" && !authenticator(req.path).check(req)) {
      refusal = authenticator(req.path).challenge();
    }
    if (refusal) {
      resp = std::move(*refusal);
      if (options_.decorate_refusal) options_.decorate_refusal(req, resp);
    } else if (upgrade_ && upgrade_->handlesPath(req.path) && !options_.tls_cert_file.empty()) {
      resp = HttpResponse::error(501, "websocket_over_tls_unsupported",
                                 "this listener serves HTTPS, and the agent's WebSocket streams "
                                 "do not speak TLS; connect to the WebSocket port, behind a "
                                 "TLS-terminating proxy if needed (docs/security.md)");
    } else if (upgrade_ && upgrade_->handlesPath(req.path)) {
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
  const Authenticator& authenticator(const std::string& path) const {
    for (const auto& pa : options_.path_auth)
      if (pa.first == path) return pa.second;
    return options_.auth;
  }

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
    // A browser that sent its token as a subprotocol needs one protocol chosen back, or it
    // drops the connection; never the token itself (docs/security.md).
    if (req.ws_protocols.find("blockbuster") != std::string::npos) {
      std::string protocols = "," + req.ws_protocols + ",";
      protocols.erase(std::remove(protocols.begin(), protocols.end(), ' '), protocols.end());
      if (protocols.find(",blockbuster,") != std::string::npos)
        response.set("Sec-WebSocket-Protocol", "blockbuster");
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

  const ServerOptions& options_;
  const HttpServer::Handler& handler_;
  const HttpServer::Observer& observer_;
  UpgradeHandler* upgrade_;
};

// Runs on the accept thread: over the connection cap, answer 503 and close at once, so that a
// flood cannot grow the queue without bound.
class ConnectionCap : public Poco::Net::TCPServerConnectionFilter {
 public:
  ConnectionCap(int max, std::string name, bool tls)
      : max_(max), name_(std::move(name)), tls_(tls) {}
  void setServer(const Poco::Net::TCPServer* server) { server_ = server; }
  bool accept(const Poco::Net::StreamSocket& socket) override {
    if (!server_ || server_->currentConnections() + server_->queuedConnections() < max_)
      return true;
    static const std::string kBusy =
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        "Connection: close\r\nRetry-After: 1\r\nContent-Length: 104\r\n\r\n"
        "{\"error\":{\"code\":\"busy\",\"message\":\"too many connections to this agent; "
        "retry later or raise its limit\"}}";
    // Over TLS the answer would need a handshake on this (the accept) thread: just close.
    try {
      if (tls_) throw Poco::Exception("tls");
      Poco::Net::StreamSocket s(socket);
      s.setSendTimeout(Poco::Timespan(1, 0));
      s.sendBytes(kBusy.data(), static_cast<int>(kBusy.size()));
      s.shutdownSend();
    } catch (const Poco::Exception&) {
      // The client is gone already.
    }
    if (++refused_ % 1000 == 1)
      logWarn("http", name_ + ": over " + std::to_string(max_) +
                          " connections, refusing new ones with 503");
    return false;
  }

 private:
  int max_;
  std::string name_;
  bool tls_;
  const Poco::Net::TCPServer* server_ = nullptr;
  std::atomic<unsigned long> refused_{0};
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(const ServerOptions& options, HttpServer::Handler handler, HttpServer::Observer observer,
          const std::atomic<UpgradeHandler*>* upgrade)
      : options_(options),
        handler_(std::move(handler)),
        observer_(std::move(observer)),
        upgrade_(upgrade) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(options_, handler_, observer_, upgrade_->load());
  }

 private:
  const ServerOptions& options_;
  HttpServer::Handler handler_;
  HttpServer::Observer observer_;
  const std::atomic<UpgradeHandler*>* upgrade_;
};

// An unbound TLS server socket for the options' certificate and key; TLS 1.2 or later only.
Poco::Net::SecureServerSocket secureSocket(const ServerOptions& options) {
  static std::once_flag ssl_once;
  std::call_once(ssl_once, [] { Poco::Net::initializeSSL(); });
  Poco::Net::Context::Ptr context;
  try {
    context = new Poco::Net::Context(Poco::Net::Context::TLS_SERVER_USE, options.tls_key_file,
                                     options.tls_cert_file, "", Poco::Net::Context::VERIFY_NONE);
    context->disableProtocols(Poco::Net::Context::PROTO_SSLV2 | Poco::Net::Context::PROTO_SSLV3 |
                              Poco::Net::Context::PROTO_TLSV1 | Poco::Net::Context::PROTO_TLSV1_1);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error(options.name + ": cannot load the TLS certificate " +
                             options.tls_cert_file + " and key " + options.tls_key_file + " (" +
                             e.displayText() +
                             "); give PEM files readable by the agent, the key unencrypted");
  }
  return Poco::Net::SecureServerSocket(context);
}

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
    if (!options_.tls_cert_file.empty()) impl_->socket = secureSocket(options_);
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
  params->setTimeout(Poco::Timespan(options_.read_timeout_seconds, 0));
  params->setServerName("blockbuster-agent");
  impl_->pool = std::make_unique<Poco::ThreadPool>(2, options_.max_threads, 60, 256 * 1024);
  impl_->server = std::make_unique<Poco::Net::HTTPServer>(
      new Factory(options_, std::move(handler), std::move(observer), &impl_->upgrade), *impl_->pool,
      impl_->socket, params);
  Poco::AutoPtr<ConnectionCap> cap(
      new ConnectionCap(options_.max_connections, options_.name, !options_.tls_cert_file.empty()));
  cap->setServer(impl_->server.get());
  impl_->server->setConnectionFilter(cap);
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
