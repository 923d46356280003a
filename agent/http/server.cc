// HttpServer: binds, then serves through one of two engines. A plain listener gets the epoll
// event loop (event_server.cc); a TLS one keeps Poco's HTTPServer, a thread per connection, with
// OpenSSL in bb_tls.so. What a request gets is decided in one place for both (request_flow.cc).
#include "http/server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServer.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/HTTPServerSession.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/ThreadPool.h>
#include <dlfcn.h>
#include <limits.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "http/event_server.h"
#include "http/request_flow.h"
#include "util/log.h"

namespace bb {
namespace {

using http_detail::Clock;
using http_detail::PocoHead;
using http_detail::RequestFlow;

// A request head as Poco parsed it, for the shared RequestFlow.

// Serves one request of a TLS listener (plain listeners have the event loop, event_server.cc).
class Handler : public Poco::Net::HTTPRequestHandler {
 public:
  Handler(const RequestFlow& flow, UpgradeHandler* upgrade) : flow_(flow), upgrade_(upgrade) {}

  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    auto started = Clock::now();
    PocoHead head(request);
    RequestFlow::Admission a = flow_.admit(head);
    HttpResponse resp;
    if (a.refusal) {
      // A broken limit: the body (if any) is left unread, the connection cannot be reused.
      if (a.close) response.setKeepAlive(false);
      resp = std::move(*a.refusal);
    } else if (upgrade_ && upgrade_->handlesPath(a.request.path)) {
      resp = flow_.handshake(*upgrade_, head, a.request);
      if (resp.status == 101 && upgradeOverTls(request, response, a.request, resp)) {
        flow_.observe(request.getMethod(), a.raw_path, resp, started);
        return;
      }
    } else {
      resp = flow_.run(std::move(a.request));
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
    flow_.observe(request.getMethod(), a.raw_path, resp, started);
  }

 private:
  // The upgrade on a TLS listener, `answer` being the 101 to send. The event loop cannot take
  // this socket over (OpenSSL's state lives in Poco's socket object), so this thread stays with
  // the connection and relays bytes between it and one end of a local socket pair; the loop
  // adopts the other end as a plain client, so the streams, their protocol and limits are those
  // of every other client. Returns true when the connection was upgraded (or is unusable);
  // false with `answer` replaced by the answer to send instead.
  bool upgradeOverTls(Poco::Net::HTTPServerRequest& request,
                      Poco::Net::HTTPServerResponse& response, const HttpRequest& req,
                      HttpResponse& answer) {
    auto* impl = dynamic_cast<Poco::Net::HTTPServerRequestImpl*>(&request);
    if (!impl) {
      answer = HttpResponse::error(400, "bad_handshake", "WebSocket handshake failed");
      return false;
    }
    // Bytes the client sent right after its request sit in the HTTP session's buffer.
    std::string pending;
    {
      Poco::Buffer<char> buffer(0);
      impl->session().drainBuffer(buffer);
      pending.assign(buffer.begin(), buffer.size());
    }
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      answer =
          HttpResponse::error(503, "busy", "the agent cannot take another WebSocket client now");
      return false;
    }
    Poco::Net::StreamSocket tls;
    try {
      response.setStatusAndReason(Poco::Net::HTTPResponse::HTTP_SWITCHING_PROTOCOLS);
      for (const auto& h : answer.headers) response.set(h.first, h.second);
      response.setContentLength(Poco::Net::HTTPResponse::UNKNOWN_CONTENT_LENGTH);
      response.send().flush();
      tls = impl->detachSocket();
    } catch (const Poco::Exception& e) {
      ::close(pair[0]);
      ::close(pair[1]);
      logWarn("http", "WebSocket handshake over TLS failed: " + e.displayText());
      return true;  // the connection is unusable; nothing more to send
    }
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
    const Poco::Timespan timeout(flow_.options().read_timeout_seconds, 0);
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

  const RequestFlow& flow_;
  UpgradeHandler* upgrade_;
};

// Runs on the accept thread: over the connection cap, close at once, so that a flood cannot
// grow the queue without bound. (An answer over TLS would need a handshake on this thread.)
class ConnectionCap : public Poco::Net::TCPServerConnectionFilter {
 public:
  ConnectionCap(int max, std::string name) : max_(max), name_(std::move(name)) {}
  void setServer(const Poco::Net::TCPServer* server) { server_ = server; }
  bool accept(const Poco::Net::StreamSocket&) override {
    if (!server_ || server_->currentConnections() + server_->queuedConnections() < max_)
      return true;
    if (++refused_ % 1000 == 1)
      logWarn("http",
              name_ + ": over " + std::to_string(max_) + " connections, closing new ones at once");
    return false;
  }

 private:
  int max_;
  std::string name_;
  const Poco::Net::TCPServer* server_ = nullptr;
  std::atomic<unsigned long> refused_{0};
};

class Factory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  Factory(const RequestFlow& flow, const std::atomic<UpgradeHandler*>* upgrade)
      : flow_(flow), upgrade_(upgrade) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new Handler(flow_, upgrade_->load());
  }

 private:
  const RequestFlow& flow_;
  const std::atomic<UpgradeHandler*>* upgrade_;
};

// An unbound TLS server socket for the options' certificate and key; TLS 1.2 or later only,
// made by bb_tls.so (tls_module.cc).
Poco::Net::ServerSocket secureSocket(const ServerOptions& options) {
  using Make =
      bool (*)(const std::string&, const std::string&, Poco::Net::ServerSocket&, std::string&);
  static std::mutex mutex;
  static Make make = nullptr;
  static std::string module_error;
  {
    std::lock_guard<std::mutex> lock(mutex);
    if (!make && module_error.empty())
      make = reinterpret_cast<Make>(tlsModuleSymbol("bb_tls_server_socket", module_error));
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

void* tlsModuleSymbol(const char* symbol, std::string& error) {
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string dir = n > 0 ? std::string(exe, static_cast<size_t>(n)) : std::string(".");
  dir = dir.substr(0, dir.rfind('/') + 1);
  const char* chosen = std::getenv("BLOCK_BUSTER_TLS_MODULE");  // e.g. for test programs
  const std::string path = chosen && *chosen ? chosen : dir + BB_TLS_MODULE_RELPATH;
  // dlopen of a module already loaded returns the same handle: each caller may ask once.
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  void* found = handle ? dlsym(handle, symbol) : nullptr;
  if (!found) {
    const char* why = dlerror();
    error = "the TLS module " + path + " cannot be loaded (" +
            (why ? why : std::string("no ") + symbol) +
            "); install it with the agent, or remove the tls settings";
  }
  return found;
}

struct HttpServer::Impl {
  std::atomic<UpgradeHandler*> upgrade{nullptr};
  std::unique_ptr<RequestFlow> flow;
  Poco::Net::ServerSocket socket;
  int port = 0;
  // Plain listeners: the event loop.
  std::unique_ptr<http_detail::EventServer> events;
  // TLS listeners: Poco's HTTPServer, a thread per connection.
  std::unique_ptr<Poco::ThreadPool> pool;
  std::unique_ptr<Poco::Net::HTTPServer> server;
};

HttpServer::HttpServer(ServerOptions options, Handler handler, Observer observer)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  const bool tls = !options_.tls_cert_file.empty();
  try {
    Poco::Net::SocketAddress address(options_.host, static_cast<Poco::UInt16>(options_.port));
    // SO_REUSEADDR for quick restarts, but not SO_REUSEPORT: a second agent on the same port
    // must fail here, not silently share the port.
    if (tls) impl_->socket = secureSocket(options_);
    impl_->socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    impl_->socket.listen(1024);
  } catch (const Poco::Exception& e) {
    throw std::runtime_error("cannot listen on " + options_.host + ":" +
                             std::to_string(options_.port) + " for " + options_.name + " (" +
                             e.displayText() +
                             "); is another process using the port? Choose another port");
  }
  impl_->port = impl_->socket.address().port();
  impl_->flow = std::make_unique<RequestFlow>(options_, std::move(handler), std::move(observer));
  if (!tls) {
    impl_->events = std::make_unique<http_detail::EventServer>(*impl_->flow, impl_->upgrade,
                                                               impl_->socket.impl()->sockfd());
    return;
  }
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
      new Factory(*impl_->flow, &impl_->upgrade), *impl_->pool, impl_->socket, params);
  Poco::AutoPtr<ConnectionCap> cap(new ConnectionCap(options_.max_connections, options_.name));
  cap->setServer(impl_->server.get());
  impl_->server->setConnectionFilter(cap);
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::setUpgradeHandler(UpgradeHandler* handler) { impl_->upgrade = handler; }

void HttpServer::start() {
  if (impl_->events)
    impl_->events->start();
  else if (impl_->server)
    impl_->server->start();
}

void HttpServer::stop() {
  if (impl_->events) {
    impl_->events->stop();
    return;
  }
  if (!impl_->server) return;
  impl_->server->stopAll(true);
  impl_->pool->joinAll();
  impl_->server.reset();
}

int HttpServer::port() const { return impl_->port; }

}  // namespace bb
