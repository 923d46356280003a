// The agent's WebSocket push: a few loops of the reactor (net/loop.h, one per core up to
// ServerLimits::loops) serve the clients of the dashboard stream (/theblock/ws) and of the
// feature stream, each client on one loop (the one with the fewest at its upgrade). The HTTP side
// of the reactor (HttpServer, on any port, plain or TLS) does the TLS handshake and the HTTP
// upgrade, then hands the connection's stream over (WsEndpoint, an UpgradeHandler): an open
// connection holds no thread. A message is encoded once and shared by every loop and client
// (FramePtr); each loop hands a client everything it has for it in one write (writev). Each
// client has a bounded queue that keeps only the latest message of each stream (ClientQueue), so
// a slow client never delays the others; a client that leaves data unsent past the stall timeout
// is closed, and a peer that answers no ping is closed.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
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
  /// Loops (threads) serving the clients; 0: one per core, at most 4 (as the HTTP loops).
  int loops = 0;
  /// Accept permessage-deflate (RFC 7692) from clients that offer it (every browser does):
  /// stream messages are then compressed once each and the same bytes go to all of them.
  bool compression = true;
};

/// One stream's new data, as the hub publishes it: `update` goes to subscribed clients,
/// `snapshot` (the same data as a "snapshot" message) to clients that connect or subscribe
/// later. A null `update` only replaces the snapshot (the same data with fields that age, e.g.
/// uptime_seconds).
struct StreamMessage {
  int stream = 0;  ///< index in kStreams
  FramePtr update;
  FramePtr snapshot;
  /// The same frames compressed (permessage-deflate), for the clients that negotiated it; null
  /// when no such client was connected or compression would not make them smaller (those
  /// clients then get the plain frame).
  FramePtr update_deflated;
  FramePtr snapshot_deflated;
};

class WsServer {
 public:
  /// `metrics` (not owned, may be null) must outlive the server.
  explicit WsServer(ServerLimits limits, Metrics* metrics = nullptr);
  /// Stops the loop if still running.
  ~WsServer();
  WsServer(const WsServer&) = delete;
  WsServer& operator=(const WsServer&) = delete;

  /// Starts the loops' threads.
  void start();
  /// Closes every client (1001 "agent stopping") and joins the loop threads. Idempotent.
  void stop();

  /// New data of dashboard streams, handed to the sockets together (one write per client for
  /// the whole batch). `changed_ms`: when the data changed (unix ms), for the debug log of the
  /// fan-out delay ("fan-out #N ... ms after the change", once every loop has handed the
  /// batch's updates to its clients' sockets). Thread-safe and cheap: the loops do the sending.
  void publish(std::vector<StreamMessage> batch, int64_t changed_ms);
  /// New feature vector message, sent to every feature client and to each new one. Thread-safe.
  void publishFeatures(FramePtr frame);
  /// Nothing more is coming for now (the hub: no plugin collection in progress): the loops hand
  /// over what they hold at once instead of waiting out their window for the rest of a block.
  /// Thread-safe.
  void settle();

  /// Admission of an upgrade request (HTTP loops): Origin and the client cap. Thread-safe.
  std::optional<HttpResponse> checkUpgrade(const HttpRequest& request);
  /// Takes a handshaken stream (HTTP loops); see UpgradeHandler::adopt. `deflate`: the client
  /// negotiated permessage-deflate. Thread-safe.
  void adopt(Channel channel, net::Stream stream, std::string pending, bool deflate = false);
  /// The Sec-WebSocket-Extensions answer to `request`'s offers, nullopt for none (compression off
  /// or nothing acceptable offered). Thread-safe.
  std::optional<std::string> negotiate(const HttpRequest& request) const;

  /// Open connections (both channels), including those being handed over. Thread-safe.
  size_t clients() const { return admitted_.load(); }
  /// Of those, the ones that negotiated permessage-deflate: while there are none, the hub
  /// compresses nothing. Thread-safe.
  size_t deflateClients() const { return deflate_clients_.load(); }
  const ServerLimits& limits() const { return limits_; }
  /// The loops serving the clients (ServerLimits::loops resolved).
  size_t loops() const { return loops_.size(); }

 private:
  struct Loop;
  struct Fanout;
  // A client joined (+1) or left (-1) `channel`: the gauge follows. Any loop.
  void countClient(Channel channel, int delta);
  // A loop handed one update of `fanout` to its clients' sockets at `now_ms`; the last one logs.
  void fanoutDone(Fanout& fanout, int64_t now_ms);

  ServerLimits limits_;
  Metrics* metrics_;
  std::atomic<size_t> admitted_{0};
  std::atomic<size_t> deflate_clients_{0};
  std::mutex count_mutex_;
  std::array<size_t, 2> per_channel_{0, 0};  // under count_mutex_
  std::atomic<uint64_t> fanouts_{0};
  std::vector<std::unique_ptr<Loop>> loops_;
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
  /// Answers a permessage-deflate offer (WsServer::negotiate).
  void acceptUpgrade(const HttpRequest& request, HttpResponse& answer) override;
  void adopt(net::Stream stream, const HttpRequest& request, std::string pending) override;

 private:
  std::optional<Channel> channelOf(const std::string& path) const;
  WsServer& server_;
  std::vector<std::pair<std::string, Channel>> routes_;
  std::optional<Channel> any_path_;
};

}  // namespace bb::ws
