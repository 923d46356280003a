// An HTTP/1.1 listener (Poco::Net::HTTPServer, included only in server.cc) that hands each
// request to a function and writes what it returns. Keep-alive, bounded thread pool and queue.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "http/router.h"

namespace bb {

struct ServerOptions {
  std::string name = "http";  ///< for logs and thread names
  std::string host = "127.0.0.1";
  int port = 0;  ///< 0 = any free port; see HttpServer::port()
  /// Poco serves one connection per thread for as long as it is kept alive: connections beyond
  /// max_threads wait in the queue. So allow as many threads as the clients one agent is
  /// expected to have (a dashboard, Prometheus, a proxy: 256 covers a load test too), and make
  /// a connection give its thread back after max_keep_alive_requests, so that waiting
  /// connections get their turn even when every client keeps its connection open.
  int max_threads = 256;
  int max_queued = 4096;
  int keep_alive_timeout_seconds = 15;
  int max_keep_alive_requests = 1000;
};

/// Takes WebSocket upgrade requests off an HttpServer: the server does the RFC 6455 handshake
/// (Poco::Net::WebSocket) on its HTTP thread, then hands the connected socket over and forgets
/// it, so no HTTP thread is held by an open WebSocket. Implementations are called on HTTP threads
/// concurrently and must be thread-safe.
class UpgradeHandler {
 public:
  virtual ~UpgradeHandler() = default;
  /// Whether `path` is a WebSocket endpoint. A plain request on such a path is answered 426.
  virtual bool handlesPath(const std::string& path) const = 0;
  /// Decides on an upgrade request to a handled path: nullopt accepts it; else the response to
  /// send instead (403 for a refused Origin, 503 when full).
  virtual std::optional<HttpResponse> checkUpgrade(const HttpRequest& request) = 0;
  /// Takes ownership of the connected socket `fd` after the 101 answer was sent; `pending` holds
  /// bytes the client sent after its request that the HTTP layer had already read.
  virtual void adopt(int fd, const HttpRequest& request, std::string pending) = 0;
};

class HttpServer {
 public:
  using Handler = std::function<HttpResponse(HttpRequest&&)>;
  /// Observer of every served request: route label, status, seconds.
  using Observer = std::function<void(const HttpRequest&, const HttpResponse&, double)>;

  /// Binds at once (so a busy port fails here, with the address in the message).
  HttpServer(ServerOptions options, Handler handler, Observer observer = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Routes WebSocket upgrades to `handler` (not owned; must outlive the server). Call before
  /// start(); null (the default) leaves every request to the Handler.
  void setUpgradeHandler(UpgradeHandler* handler);

  void start();
  /// Stops accepting and waits for the requests in flight (bounded).
  void stop();
  /// The port actually bound.
  int port() const;
  const ServerOptions& options() const { return options_; }

 private:
  struct Impl;
  ServerOptions options_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace bb
