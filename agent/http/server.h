// An HTTP/1.1 listener that hands each request to a function and writes what it returns.
// Keep-alive, pipelining, limits, WebSocket upgrades. Plain or TLS, a listener is served by a few
// loops of the reactor (net/, event_server.cc): no thread per connection.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "http/auth.h"
#include "http/router.h"
#include "net/stream.h"
#include "net/tls.h"

namespace bb {

struct ServerOptions {
  std::string name = "http";  ///< for logs and thread names
  std::string host = "127.0.0.1";
  int port = 0;  ///< 0 = any free port; see HttpServer::port()
  /// A kept-alive connection is closed after this many seconds of silence, and after
  /// max_keep_alive_requests requests (its client connects again).
  int keep_alive_timeout_seconds = 15;
  int max_keep_alive_requests = 1000;

  // Limits (docs/security.md says which status each gets and why). The reactor's parser refuses
  // with 400 a request line over 16384 bytes, a header name over 256 or value over 8192 bytes,
  // and more than 100 header fields (Poco's limits, net/limits.h): the limits below are
  // tighter, so the right status wins.
  /// A stalled client is dropped: the TLS handshake and then a request, once its first byte
  /// came, must be complete within this (and a first request must come within it).
  int read_timeout_seconds = 10;
  size_t max_uri_bytes = 8192;      ///< longer request target: 414
  size_t max_header_fields = 64;    ///< more header fields: 431
  size_t max_header_bytes = 16384;  ///< more bytes in header names + values: 431
  long long max_body_bytes = 4096;  ///< larger (or chunked) body: 413, connection closed
  /// Open plus queued connections beyond this are answered 503 and closed at once.
  int max_connections = 1024;

  /// HTTPS: PEM certificate (chain) and private key; both "" = plain HTTP. TLS 1.2 minimum
  /// (net/tls.h; OpenSSL in bb_tls.so, loaded when a listener has TLS).
  std::string tls_cert_file{};
  std::string tls_key_file{};
  /// The config key of the two files, named before the files when they cannot be loaded
  /// ("ws.tls: cannot load ..."); "" names the listener.
  std::string tls_config_key{};

  /// Who may use this listener: `auth` for every path, except the exact paths of `path_auth`.
  /// OPTIONS (CORS preflight) is never authenticated.
  Authenticator auth{};
  std::vector<std::pair<std::string, Authenticator>> path_auth{};
  /// Called on a refusal sent before the Handler runs (401), e.g. to add CORS headers.
  std::function<void(const HttpRequest&, HttpResponse&)> decorate_refusal{};

  /// Event loop threads, each with its own epoll, sharing the connections. 0 = one per core, at
  /// most 4. Handlers run on these threads, so they must not block.
  int event_threads = 2;
  /// Requests for which this returns true may block (e.g. a plugin route
  /// answered over IPC by a child process): they run on a pool of offload_threads, not on an
  /// event loop, which keeps serving its other connections meanwhile. Called on loop threads.
  std::function<bool(const HttpRequest&)> offload{};
  /// Workers of the requests `offload` picks (at the loops' priority); more wait in a queue of
  /// 256, then 503. 4: with 2, a client hammering /metrics (not what a scraper does) got half
  /// the answers (bench/rest: 1 484 against 3 343 req/s at 64 connections).
  int offload_threads = 4;
  /// With `offload` set: requests a handler deferred (HttpResponse::deferred, e.g.
  /// a receipts page not in the plugin's cache) run again on workers of their own,
  /// deferred_threads of them; at most max_deferred_queued wait, more are answered 503 with
  /// Retry-After.
  int deferred_threads = 2;
  size_t max_deferred_queued = 32;
  /// How much nicer than the agent the deferred workers run (Linux: per thread, capped at 19; a
  /// thread may lower its priority, not raise it). Store queries are the one open-ended CPU cost a
  /// client can ask for; at a lower priority the event loops, which answer from memory, win the
  /// cores when both want them, and a client paging deep cannot slow the dashboard down (issue 20,
  /// docs/performance.md). 19, the lowest (scheduler weight 15 against the loops' 1024; it was 10,
  /// weight 110): alone, pages are served as fast, since they then have the cores to themselves.
  /// SCHED_IDLE was weighed and left: it halved the pages served even alone.
  /// Scrapes and history are not affected: they have their own workers at the loops' priority (an
  /// earlier design ran all workers at nice 10, and a busy pair of loops starved scrapes).
  int deferred_nice = 19;
};

/// Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455, 1.3): what HttpServer answers an
/// upgrade with.
std::string webSocketAccept(const std::string& key);

/// Takes WebSocket upgrade requests off an HttpServer: the server does the RFC 6455 handshake,
/// then hands the connection's stream (TLS state included) over and forgets it, so no HTTP
/// loop holds an open WebSocket. Implementations are called on the server's loop threads
/// concurrently and must be thread-safe.
class UpgradeHandler {
 public:
  virtual ~UpgradeHandler() = default;
  /// Whether `path` is a WebSocket endpoint. A plain request on such a path is answered 426.
  virtual bool handlesPath(const std::string& path) const = 0;
  /// Decides on an upgrade request to a handled path: nullopt accepts it; else the response to
  /// send instead (403 for a refused Origin, 503 when full).
  virtual std::optional<HttpResponse> checkUpgrade(const HttpRequest& request) = 0;
  /// Adds what the handler negotiates to the 101 answer of an accepted upgrade (e.g.
  /// Sec-WebSocket-Extensions); adopt() then gets the same request. By default nothing.
  virtual void acceptUpgrade(const HttpRequest& request, HttpResponse& answer) {
    (void)request;
    (void)answer;
  }
  /// Takes the connection's stream after the 101 answer was sent; `pending` holds bytes the
  /// client sent after its request that the HTTP layer had already read (decrypted).
  virtual void adopt(net::Stream stream, const HttpRequest& request, std::string pending) = 0;
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
  /// Stops accepting, closes the connections and waits for the requests in flight (bounded by
  /// the handlers: offloaded ones included).
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
