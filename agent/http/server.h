// An HTTP/1.1 listener (Poco::Net::HTTPServer, included only in server.cc) that hands each
// request to a function and writes what it returns. Keep-alive, bounded thread pool and queue.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "http/router.h"

namespace bb {

struct ServerOptions {
  std::string name = "http";  ///< for logs and thread names
  std::string host = "127.0.0.1";
  int port = 0;  ///< 0 = any free port; see HttpServer::port()
  int max_threads = 64;
  int max_queued = 4096;
  int keep_alive_timeout_seconds = 15;
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
