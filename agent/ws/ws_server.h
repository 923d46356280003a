// The agent's WebSocket push: one event-loop thread (epoll, non-blocking sockets) serves every
// client of the dashboard stream (/theblock/ws) and of the feature stream. On plain ports HTTP
// threads only do the handshake (HttpServer + UpgradeHandler) and hand the socket over; on TLS
// ports (ws.tls, listenTls) the loop accepts, does the TLS handshake and the HTTP upgrade itself,
// with non-blocking OpenSSL streams. Either way an open connection holds no thread. Each client
// has a bounded queue that keeps only the latest message of each stream (ClientQueue), so a slow
// client never delays the others; a client that leaves data unsent past the stall timeout is
// closed, and a peer that answers no ping is closed.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "http/server.h"
#include "ws/client_queue.h"

namespace bb {
class Metrics;
}

namespace bb::ws {

/// Which stream a connection receives.
enum class Channel { kDashboard, kFeatures };

struct ServerLimits {
  size_t max_clients = 10000;            ///< over it, upgrades are answered 503
  size_t max_message_bytes = 64 * 1024;  ///< a bigger client frame or message: close 1009
  /// Data waiting while the socket takes no byte for this long: the client is closed.
  std::chrono::milliseconds stall_timeout{10000};
  std::chrono::milliseconds ping_interval{20000};  ///< a silent client is pinged after this
  std::chrono::milliseconds pong_timeout{10000};   ///< no answer to a ping within this: closed
  /// Origins a browser may connect from: the CORS allow-list (http.cors_origins); "*" = any.
  /// A request without Origin (not a browser) is always allowed.
  std::vector<std::string> allowed_origins{"*"};

  // TLS listeners (listenTls) only: connections between accept and the 101.
  /// The TLS handshake and the HTTP upgrade request must be done within this from the accept
  /// (the HTTP listeners' read timeout): a stalled or silent connection is closed.
  std::chrono::milliseconds handshake_timeout{10000};
  /// At most this many such connections at once (all TLS listeners); over it, a new connection
  /// is closed at once (an answer would need a handshake).
  size_t max_handshakes = 1024;
};

/// A port that the event loop serves itself over TLS (ws.tls).
struct TlsListenerOptions {
  std::string name = "ws";  ///< for messages and logs
  std::string host = "127.0.0.1";
  int port = 0;           ///< 0 = any free port; see the return value of listenTls
  std::string cert_file;  ///< PEM certificate (chain, leaf first)
  std::string key_file;   ///< PEM private key, unencrypted
  /// The config key of the two files, named in errors.
  std::string config_key = "ws.tls";
  /// Who may connect: checked on the upgrade request, as ServerOptions::auth on plain ports.
  Authenticator auth{};
  /// The WebSocket paths (exact) and their channel; `any_path`: the channel of every other
  /// path, or nullopt to answer them 404 with `not_found`.
  std::vector<std::pair<std::string, Channel>> routes;
  std::optional<Channel> any_path;
  std::string not_found = "no WebSocket stream on this path";
};

class WsServer {
 public:
  /// `metrics` (not owned, may be null) must outlive the server.
  explicit WsServer(ServerLimits limits, Metrics* metrics = nullptr);
  /// Stops the loop if still running.
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  /// Starts the event-loop thread.
  void start();
  /// Closes every client (1001 "agent stopping") and joins the loop thread. Idempotent.
  void stop();

  /// New data of dashboard stream `stream` (index in kStreams): `update` goes to subscribed
  /// clients, `snapshot` (the same data as a "snapshot" message) to clients that connect or
  /// subscribe later. `changed_ms`: when the data changed (unix ms), for the debug log of the
  /// fan-out delay. Thread-safe and cheap: the loop thread does the sending. A null `update`
  /// only replaces the snapshot (the same data with fields that age, e.g. uptime_seconds).
  void publish(int stream, FramePtr update, FramePtr snapshot, int64_t changed_ms = 0);
  /// New feature vector message, sent to every feature client and to each new one. Thread-safe.
  void publishFeatures(FramePtr frame);

  /// Admission of an upgrade request (HTTP threads): Origin and the client cap. Thread-safe.
  std::optional<HttpResponse> checkUpgrade(const HttpRequest& request);
  /// Takes a handshaken socket (HTTP threads); see UpgradeHandler::adopt. Thread-safe.
  void adopt(Channel channel, int fd, std::string pending);

  /// Binds a TLS listener now and serves it from the loop once started: TLS 1.2 or later
  /// (bb_tls.so, loaded here), then the HTTP upgrade (limits, `auth`, Origin, the client cap:
  /// the answers of a plain port), then the streams as for any client. Call before start().
  /// Returns the bound port. Throws std::runtime_error naming the files and the config key for
  /// a bad certificate or key, the module for a missing module, the address for a busy port.
  int listenTls(TlsListenerOptions options);

  /// Open connections (both channels), including those being handed over. Thread-safe.
  size_t clients() const { return admitted_.load(); }
  const ServerLimits& limits() const { return limits_; }

 private:
  struct Loop;
  ServerLimits limits_;
  Metrics* metrics_;
  std::atomic<size_t> admitted_{0};
  std::unique_ptr<Loop> loop_;
};

/// The UpgradeHandler of one listener: the WebSocket paths it serves and their channel.
/// Thread-safe; the server must outlive it.
class WsEndpoint : public UpgradeHandler {
 public:
  /// `routes`: exact paths; `any_path`: the channel of every other path (a listener that serves
  /// only WebSockets), or nullopt.
  WsEndpoint(WsServer& server, std::vector<std::pair<std::string, Channel>> routes,
             std::optional<Channel> any_path = std::nullopt);

  bool handlesPath(const std::string& path) const override;
  std::optional<HttpResponse> checkUpgrade(const HttpRequest& request) override;
  void adopt(int fd, const HttpRequest& request, std::string pending) override;

 private:
  std::optional<Channel> channelOf(const std::string& path) const;
  WsServer& server_;
  std::vector<std::pair<std::string, Channel>> routes_;
  std::optional<Channel> any_path_;
};

}  // namespace bb::ws
