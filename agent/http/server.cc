#include "http/server.h"

#include <Poco/Base64Encoder.h>
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
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/WebSocket.h>
#include <Poco/SHA1Engine.h>
#include <Poco/ThreadPool.h>
#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <mutex>
#include <sstream>
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
        sendWhole(request, response, resp.body);
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
    if (!options_.tls_cert_file.empty())
      return upgradeOverTls(request, response, req, resp, pending);
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

  // Sends the status line, the headers and a large body in one call on a plain listener.
  // Poco's sendBuffer() goes through a 4 KiB stream buffer: a 29 KB receipts page took eight
  // send calls, and system calls are what a request costs here (docs/performance.md). Over TLS
  // (or when the socket is not Poco's plain one) Poco sends, as before.
  void sendWhole(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response,
                 const std::string& body) {
    // A body that fits Poco's buffer goes out in two calls (header, body) from Poco's path,
    // which measured faster than this one for such bodies (markets/health 37.9k vs 29.4k req/s
    // at 64 connections, same build and machine, 6 s each; the cause was not found).
    constexpr size_t kPocoBufferBytes = 4096;
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
    if (!options_.tls_cert_file.empty() || !impl || body.size() <= kPocoBufferBytes) {
      response.sendBuffer(body.data(), body.size());
      return;
    }
    std::ostringstream head;
    response.write(head);  // the status line, the headers and the blank line after them
    const std::string header = head.str();
    const int fd = impl->session().socket().impl()->sockfd();
    iovec iov[2] = {{const_cast<char*>(header.data()), header.size()},
                    {const_cast<char*>(body.data()), body.size()}};
    int first = 0;
    while (first < 2) {
      msghdr msg{};
      msg.msg_iov = iov + first;
      msg.msg_iovlen = static_cast<size_t>(2 - first);
      ssize_t n = ::sendmsg(fd, &msg, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw Poco::Net::NetException("the client went away mid-answer");
      size_t done = static_cast<size_t>(n);
      while (first < 2 && done >= iov[first].iov_len) done -= iov[first++].iov_len;
      if (first < 2) {
        iov[first].iov_base = static_cast<char*>(iov[first].iov_base) + done;
        iov[first].iov_len -= done;
      }
    }
  }

  // The upgrade on a TLS listener. The event loop cannot take this socket over (OpenSSL's state
  // lives in Poco's socket object), so this thread stays with the connection and relays bytes
  // between it and one end of a local socket pair; the loop adopts the other end as a plain
  // client, so the streams, their protocol and limits are those of every other client.
  bool upgradeOverTls(Poco::Net::HTTPServerRequest& request,
                      Poco::Net::HTTPServerResponse& response, const HttpRequest& req,
                      HttpResponse& resp, std::string& pending) {
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
    const std::string key = request.get("Sec-WebSocket-Key", "");
    if (!impl || key.empty() || request.get("Sec-WebSocket-Version", "") != "13") {
      resp = HttpResponse::error(400, "bad_handshake",
                                 "invalid WebSocket handshake; send Sec-WebSocket-Key and "
                                 "Sec-WebSocket-Version: 13");
      return false;
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      resp = HttpResponse::error(503, "busy", "the agent cannot take another WebSocket client now");
      return false;
    }
    Poco::SHA1Engine sha1;
    sha1.update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11");  // RFC 6455, 1.3
    const Poco::DigestEngine::Digest& digest = sha1.digest();
    std::ostringstream accept;
    {
      Poco::Base64Encoder b64(accept);
      b64.write(reinterpret_cast<const char*>(digest.data()),
                static_cast<std::streamsize>(digest.size()));
      b64.close();
    }
    Poco::Net::StreamSocket tls;
    try {
      response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_SWITCHING_PROTOCOLS);
      response.set("Upgrade", "websocket");
      response.set("Connection", "Upgrade");
      response.set("Sec-WebSocket-Accept", accept.str());
      response.setContentLength(Poco::Net::HTTPResponse::UNKNOWN_CONTENT_LENGTH);
      response.send().flush();
      tls = impl->detachSocket();
    } catch (const Poco::Exception& e) {
      ::close(pair[0]);
      ::close(pair[1]);
      logWarn("http", "WebSocket handshake over TLS failed: " + e.displayText());
      resp = HttpResponse::json("", 101);
      return true;  // the connection is unusable; nothing more to send
    }
    resp = HttpResponse::json("", 101);
    try {
      upgrade_->adopt(pair[0], req, std::move(pending));
    } catch (const std::exception& e) {
      logError("http", std::string("WebSocket hand-over failed: ") + e.what());
      ::close(pair[0]);
      ::close(pair[1]);
      return true;
    }
    relay(tls, pair[1]);
    return true;
  }

  // Copies bytes both ways until either side ends: the client's TLS connection and the loop's
  // end of the pair. A client that stops reading is dropped after read_timeout_seconds of
  // blocked sending; the loop applies its own stall and ping timeouts to the other end.
  void relay(Poco::Net::StreamSocket& tls, int local) {
    const Poco::Timespan timeout(options_.read_timeout_seconds, 0);
    char buf[16384];
    try {
      tls.setBlocking(true);
      tls.setSendTimeout(timeout);
      tls.setReceiveTimeout(timeout);
      const int tls_fd = tls.impl()->sockfd();
      for (;;) {
        // Bytes OpenSSL has decrypted already do not show on the descriptor.
        const bool buffered = tls.available() > 0;
        pollfd fds[2] = {{tls_fd, POLLIN, 0}, {local, POLLIN, 0}};
        if (!buffered && ::poll(fds, 2, 1000) < 0 && errno != EINTR) break;
        if (buffered || (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) {
          int n = tls.receiveBytes(buf, sizeof buf);
          if (n <= 0 || !sendAll(local, buf, static_cast<size_t>(n))) break;
        }
        if (fds[1].revents & (POLLIN | POLLHUP | POLLERR)) {
          ssize_t n = ::recv(local, buf, sizeof buf, 0);
          if (n <= 0) break;
          tls.sendBytes(buf, static_cast<int>(n));
        }
      }
    } catch (const Poco::Exception&) {
      // The client went away, timed out or broke the TLS stream: end both sides.
    }
    ::shutdown(local, SHUT_RDWR);
    ::close(local);
    try {
      tls.shutdown();
    } catch (const Poco::Exception&) {
    }
  }

  static bool sendAll(int fd, const char* data, size_t len) {
    while (len > 0) {
      ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      data += n;
      len -= static_cast<size_t>(n);
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
// Made by bb_tls.so (tls_module.cc), loaded on first use from beside the running program
// (<exe dir>/../lib/blockbuster/, in the build tree as installed; BLOCK_BUSTER_TLS_MODULE, a
// path, overrides it).
Poco::Net::ServerSocket secureSocket(const ServerOptions& options) {
  using Make =
      bool (*)(const std::string&, const std::string&, Poco::Net::ServerSocket&, std::string&);
  static std::mutex mutex;
  static Make make = nullptr;
  static std::string module_error;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!make && module_error.empty()) {
      char exe[PATH_MAX];
      ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
      std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string(".");
      dir = dir.substr(0, dir.rfind('/') + 1);
      const char* chosen = std::getenv("BLOCK_BUSTER_TLS_MODULE");  // e.g. for test programs
      const std::string path = chosen && *chosen ? chosen : dir + BB_TLS_MODULE_RELPATH;
      void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
      if (handle) make = reinterpret_cast<Make>(dlsym(handle, "bb_tls_server_socket"));
      if (!make) {
        const char* why = dlerror();
        module_error = "the TLS module " + path + " cannot be loaded (" +
                       (why ? why : "no bb_tls_server_socket") +
                       "); install it with the agent, or remove the tls settings";
      }
    }
  }
  if (!make) throw std::runtime_error(options.name + ": " + module_error);
  Poco::Net::ServerSocket socket;
  std::string error;
  if (!make(options.tls_cert_file, options.tls_key_file, socket, error))
    throw std::runtime_error(options.name + ": cannot load the TLS certificate " +
                             options.tls_cert_file + " and key " + options.tls_key_file + " (" +
                             error +
                             "); give PEM files readable by the agent, the key unencrypted");
  return socket;
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
