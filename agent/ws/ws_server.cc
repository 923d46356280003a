#include "ws/ws_server.h"

#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/ServerSocket.h>
#include <Poco/Net/SocketAddress.h>
#include <blockbuster/json.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <deque>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "http/request_flow.h"
#include "metrics/metrics.h"
#include "util/log.h"
#include "ws/frame.h"
#include "ws/protocol.h"
#include "ws/tls_stream.h"

namespace bb::ws {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kAllStreams = (1u << kStreamCount) - 1;
// What a client receives until it subscribes explicitly: history only on request.
constexpr uint32_t kDefaultStreams = kDefaultStreamMask;
constexpr auto kHousekeeping = std::chrono::milliseconds(250);
// Publications waiting for the loop; more means the loop is far behind and the oldest go.
constexpr size_t kMaxInbox = 256;
// Reads per readable event before moving on, so that one chatty client cannot starve others.
constexpr int kReadsPerEvent = 4;
// Epoll keys: 0 wakes the loop, clients count up from 1, TLS listeners have this bit set.
constexpr uint64_t kListenerBit = uint64_t{1} << 63;
// Connections accepted per readable event of a TLS listener.
constexpr int kAcceptsPerEvent = 64;
// An HTTP upgrade request's head (request line and headers) on a TLS listener; the request's
// own limits are the HTTP listeners' (ServerOptions, through RequestFlow).
constexpr size_t kMaxHeadBytes = 32 * 1024;
// readSome/writeSome: nothing to do until the socket is ready; the connection is broken.
constexpr long kWouldBlock = -1;
constexpr long kBroken = -2;

const char* channelName(Channel c) { return c == Channel::kDashboard ? "dashboard" : "features"; }

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

FramePtr textFrame(const std::string& json) {
  return std::make_shared<const std::string>(encodeText(json));
}

std::string streamList(uint32_t mask) {
  std::string out = "[";
  for (int i = 0; i < kStreamCount; ++i) {
    if (!(mask & (1u << i))) continue;
    if (out.size() > 1) out += ',';
    out += '"';
    out += kStreams[static_cast<size_t>(i)];
    out += '"';
  }
  return out + "]";
}

struct TlsListener;

// Where a connection of a TLS listener is; adopted connections are kOpen from the start.
enum class Phase {
  kTlsHandshake,  // the TLS handshake
  kRequest,       // reading the HTTP upgrade request
  kRefusing,      // writing an HTTP error answer, then closing
  kOpen,          // a WebSocket client
};

struct Client {
  Client(uint64_t i, int f, Channel ch, size_t max_bytes)
      : id(i), fd(f), channel(ch), decoder(true, max_bytes) {}
  uint64_t id;  // epoll key: fds are reused, ids never
  int fd;
  bool closed = false;  // closed, erased at the end of the loop iteration
  Phase phase = Phase::kOpen;
  // TLS (a TLS listener's connection): its OpenSSL stream; null on a plain socket.
  void* tls = nullptr;
  const TlsListener* listener = nullptr;
  std::string request;       // the HTTP request head as it arrives (kRequest)
  bool http_answer = false;  // `current` is the 101 or an error answer, not a frame
  Clock::time_point accepted{};
  bool tls_wants_write = false;   // a TLS read or handshake waits for the socket to take bytes
  bool write_wants_read = false;  // a TLS write waits for bytes from the peer
  bool epollout = false;          // EPOLLOUT registered
  Channel channel;
  FrameDecoder decoder;
  ClientQueue queue;
  FramePtr current;  // the frame being written
  size_t offset = 0;
  uint32_t mask = kDefaultStreams;
  bool explicit_subscription = false;
  bool want_write = false;  // unsent data waits for the socket
  Clock::time_point last_read = Clock::now();
  std::optional<Clock::time_point> ping_sent;
  // Since when unsent data has waited without the socket taking a byte.
  std::optional<Clock::time_point> blocked_since;
};

struct TlsListener {
  TlsListenerOptions options;
  // The upgrade request is checked as an HTTP listener checks it: the same limits, credentials
  // and handshake answers (http/request_flow.cc), with this listener's paths.
  ServerOptions http;
  std::unique_ptr<http_detail::RequestFlow> flow;
  std::unique_ptr<WsEndpoint> endpoint;
  Poco::Net::ServerSocket socket;  // bound and listening; non-blocking
  int fd = -1;
  void* context = nullptr;  // the module's server context (SSL_CTX)
  uint64_t key = 0;         // epoll key
  bool paused = false;      // out of descriptors: not watched until the next housekeeping
};

// An HTTP answer as bytes, for a connection that is closed after it.
std::string httpBytes(const HttpResponse& r) {
  auto status = static_cast<Poco::Net::HTTPResponse::HTTPStatus>(r.status);
  std::string out = "HTTP/1.1 " + std::to_string(r.status) + " " +
                    Poco::Net::HTTPResponse::getReasonForStatus(status) + "\r\n";
  if (!r.content_type.empty()) out += "Content-Type: " + r.content_type + "\r\n";
  for (const auto& h : r.headers) out += h.first + ": " + h.second + "\r\n";
  out += "Content-Length: " + std::to_string(r.body.size()) + "\r\nConnection: close\r\n\r\n";
  return out + r.body;
}

}  // namespace

struct WsServer::Loop {
  explicit Loop(WsServer& o) : owner(o) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || evfd < 0)
      throw std::runtime_error(std::string("cannot create the WebSocket event loop: ") +
                               std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeId;
    epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev);
  }
  ~Loop() {
    for (auto& kv : clients) {
      if (kv.second->closed) continue;
      if (kv.second->tls) tls->close(kv.second->tls);
      ::close(kv.second->fd);
    }
    for (auto& l : listeners)
      if (l->context) tls->free_context(l->context);
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& a : adopts) ::close(a.fd);
    ::close(epfd);
    ::close(evfd);
  }

  struct Adopt {
    Channel channel;
    int fd;
    std::string pending;
  };

  WsServer& owner;
  int epfd = -1;
  int evfd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};

  // Inbox, filled by other threads under `mutex`.
  std::mutex mutex;
  std::vector<Adopt> adopts;
  struct Publication {
    int stream;
    FramePtr update;
    FramePtr snapshot;
    int64_t changed_ms;
  };
  // In order, so that a healthy client gets every update; bounded (kMaxInbox) in case the
  // loop falls far behind, the oldest going first.
  std::deque<Publication> stream_inbox;
  FramePtr feature_inbox;

  // Loop-thread state.
  std::array<FramePtr, kStreamCount> snapshots{};  // the current state, for new subscribers
  FramePtr feature_latest;
  static constexpr uint64_t kWakeId = 0;
  uint64_t next_id = 1;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients;
  std::vector<uint64_t> graveyard;
  std::array<size_t, 2> per_channel{0, 0};
  uint64_t sent = 0;

  // TLS listeners (set up before the loop starts, then loop-thread state).
  const TlsStreamApi* tls = nullptr;  // bb_tls.so, loaded by the first listenTls
  std::vector<std::unique_ptr<TlsListener>> listeners;
  size_t handshaking = 0;           // connections of TLS listeners before their 101
  std::vector<uint64_t> tls_ready;  // TLS clients with decrypted bytes epoll cannot see
  uint64_t refused_accepts = 0;

  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(evfd, &one, sizeof one);
    (void)n;  // the counter only saturates when already signalled
  }

  Metrics* metrics() const { return owner.metrics_; }

  void run() {
    std::vector<epoll_event> events(256);
    auto next_housekeeping = Clock::now() + kHousekeeping;
    while (!stopping.load()) {
      // Decrypted bytes waiting inside a TLS stream raise no event: do not sleep on them.
      int timeout = tls_ready.empty() ? static_cast<int>(kHousekeeping.count()) : 0;
      int n = epoll_wait(epfd, events.data(), static_cast<int>(events.size()), timeout);
      if (n < 0 && errno != EINTR) {
        logError("ws", std::string("epoll_wait failed: ") + std::strerror(errno));
        break;
      }
      if (!tls_ready.empty()) readBuffered();
      for (int i = 0; i < n; ++i) {
        uint64_t id = events[static_cast<size_t>(i)].data.u64;
        uint32_t what = events[static_cast<size_t>(i)].events;
        if (id == kWakeId) {
          uint64_t v;
          while (::read(evfd, &v, sizeof v) > 0) {
          }
          drainInbox();
          continue;
        }
        if (id & kListenerBit) {
          acceptTls(*listeners[static_cast<size_t>(id & ~kListenerBit)]);
          continue;
        }
        auto it = clients.find(id);
        if (it == clients.end() || it->second->closed) continue;
        Client& c = *it->second;
        if (c.tls) {
          onTlsEvent(c, what);
          continue;
        }
        if (what & EPOLLIN) {
          if (!onReadable(c)) continue;  // closed
        } else if (what & (EPOLLERR | EPOLLHUP)) {
          closeClient(c, 0, "", "error");
          continue;
        }
        if ((what & EPOLLOUT) && !c.closed) flush(c);
      }
      bury();
      auto now = Clock::now();
      if (now >= next_housekeeping) {
        housekeeping(now);
        next_housekeeping = now + kHousekeeping;
      }
    }
    // Stopping: no new connections; say goodbye to everyone, best effort.
    for (auto& l : listeners) {
      epoll_ctl(epfd, EPOLL_CTL_DEL, l->fd, nullptr);
      l->socket.close();
    }
    std::vector<Client*> all;
    for (auto& kv : clients) all.push_back(kv.second.get());
    for (Client* c : all)
      if (!c->closed) closeClient(*c, kCloseGoingAway, "agent stopping", "shutdown");
    bury();
    reportCounters();
  }

  void drainInbox() {
    std::vector<Adopt> new_clients;
    std::deque<Publication> updates;
    FramePtr features;
    {
      std::lock_guard<std::mutex> lock(mutex);
      new_clients.swap(adopts);
      updates.swap(stream_inbox);
      features.swap(feature_inbox);
    }
    for (auto& a : new_clients) addClient(a);
    for (auto& u : updates) {
      int s = u.stream;
      snapshots[static_cast<size_t>(s)] = u.snapshot;
      if (!u.update) continue;  // the snapshot refreshed only (same data, newer ages)
      for (auto& kv : clients) {
        Client& c = *kv.second;
        if (c.closed || c.channel != Channel::kDashboard || !(c.mask & (1u << s)) ||
            c.phase != Phase::kOpen)
          continue;
        // Hand the previous update of this stream to the socket first, so that a client that
        // keeps up gets every update, not only the latest of the batch.
        if (c.queue.hasStream(s)) flush(c);
        if (!c.closed) c.queue.pushLatest(s, u.update, u.snapshot);
      }
    }
    if (features) {
      feature_latest = features;
      for (auto& kv : clients)
        if (kv.second->channel == Channel::kFeatures && kv.second->phase == Phase::kOpen)
          kv.second->queue.pushLatest(0, features);
    }
    // Flush after queueing everything, so each client writes its batch in one pass.
    std::vector<Client*> all;
    all.reserve(clients.size());
    for (auto& kv : clients)
      if (!kv.second->queue.empty()) all.push_back(kv.second.get());
    for (Client* c : all)
      if (!c->closed) flush(*c);
    if (!updates.empty() && logEnabled(LogLevel::Debug)) {
      int64_t oldest = updates.front().changed_ms;
      for (const auto& u : updates) oldest = std::min(oldest, u.changed_ms);
      logDebug("ws", "fan-out of " + std::to_string(updates.size()) + " update(s) to " +
                         std::to_string(per_channel[0]) + " client(s) handed to the sockets " +
                         std::to_string(unixMillis() - oldest) + " ms after the change");
    }
  }

  void bury() {
    for (uint64_t id : graveyard) clients.erase(id);
    graveyard.clear();
  }

  void addClient(Adopt& a) {
    int flags = fcntl(a.fd, F_GETFL, 0);
    if (flags < 0 || fcntl(a.fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      ::close(a.fd);
      owner.admitted_.fetch_sub(1);
      return;
    }
    int one = 1;
    setsockopt(a.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    uint64_t id = next_id++;
    auto client = std::make_unique<Client>(id, a.fd, a.channel, owner.limits_.max_message_bytes);
    Client& c = *client;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.u64 = id;
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, a.fd, &ev) < 0) {
      logWarn("ws", std::string("cannot watch a new client: ") + std::strerror(errno));
      ::close(a.fd);
      owner.admitted_.fetch_sub(1);
      return;
    }
    clients.emplace(id, std::move(client));
    start(c, std::move(a.pending));
  }

  // A new WebSocket client (adopted, or upgraded on a TLS listener): counted, welcomed, given
  // the current state, then the bytes it sent after its request are handled.
  void start(Client& c, std::string pending) {
    ++per_channel[static_cast<size_t>(c.channel)];
    if (metrics())
      metrics()->wsClients(channelName(c.channel), per_channel[static_cast<size_t>(c.channel)]);
    int64_t now = unixMillis();
    if (c.channel == Channel::kDashboard) {
      c.queue.pushControl(textFrame(controlMessage(
          "welcome", "",
          "{\"streams\":" + streamList(kAllStreams) +
              ",\"subscribed\":" + streamList(kDefaultStreams) +
              ",\"max_message_bytes\":" + std::to_string(owner.limits_.max_message_bytes) + "}",
          now)));
      for (int s = 0; s < kStreamCount; ++s)
        if (snapshots[static_cast<size_t>(s)] && (c.mask & (1u << s)))
          c.queue.pushSnapshot(s, snapshots[static_cast<size_t>(s)]);
    } else if (feature_latest) {
      c.queue.pushLatest(0, feature_latest);
    }
    if (!pending.empty()) {
      c.decoder.feed(pending.data(), pending.size());
      if (!processMessages(c)) return;
    }
    flush(c);
  }

  // Reads what is available; false when the client was closed.
  bool onReadable(Client& c) {
    char buf[16 * 1024];
    for (int i = 0; i < kReadsPerEvent; ++i) {
      long n = readSome(c, buf, sizeof buf);
      if (n > 0) {
        c.last_read = Clock::now();
        c.ping_sent.reset();
        c.decoder.feed(buf, static_cast<size_t>(n));
        if (!processMessages(c) || c.closed) return false;
        if (static_cast<size_t>(n) < sizeof buf) break;
        continue;
      }
      if (n == 0) {
        closeClient(c, 0, "", "client");
        return false;
      }
      if (n == kWouldBlock) break;
      closeClient(c, 0, "", "error");
      return false;
    }
    // Bytes OpenSSL decrypted already do not show on the socket: come back for them.
    if (c.tls && tls->pending(c.tls) > 0) tls_ready.push_back(c.id);
    return true;
  }

  // The transport: recv/send on a plain socket, the OpenSSL stream on a TLS one. Bytes (> 0),
  // 0 when the peer closed (reads), kWouldBlock, or kBroken.
  long readSome(Client& c, char* buf, size_t len) {
    if (!c.tls) {
      for (;;) {
        ssize_t n = ::recv(c.fd, buf, len, 0);
        if (n >= 0) return static_cast<long>(n);
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? kWouldBlock : kBroken;
      }
    }
    long n = tls->read(c.tls, buf, len);
    setTlsWantsWrite(c, n == kTlsWantWrite);
    if (n >= 0) return n;  // bytes, or kTlsClosed (0)
    return n == kTlsWantRead || n == kTlsWantWrite ? kWouldBlock : kBroken;
  }

  long writeSome(Client& c, const char* data, size_t len) {
    if (!c.tls) {
      for (;;) {
        ssize_t n = ::send(c.fd, data, len, MSG_NOSIGNAL);
        if (n >= 0) return static_cast<long>(n);
        if (errno == EINTR) continue;
        return errno == EAGAIN || errno == EWOULDBLOCK ? kWouldBlock : kBroken;
      }
    }
    long n = tls->write(c.tls, data, len);
    // Waiting for the peer's bytes needs no EPOLLOUT (EPOLLIN is always watched).
    c.write_wants_read = n == kTlsWantRead;
    if (n > 0) return n;
    return n == kTlsWantRead || n == kTlsWantWrite ? kWouldBlock : kBroken;
  }

  // Handles the complete messages in the decoder; false when the client was closed.
  bool processMessages(Client& c) {
    Message m;
    while (!c.closed) {
      auto status = c.decoder.next(m);
      if (status == FrameDecoder::Status::kNeedMore) return flush(c);
      if (status == FrameDecoder::Status::kError) {
        closeClient(c, c.decoder.errorCode(), c.decoder.errorText(),
                    c.decoder.errorCode() == kCloseTooBig ? "too_big" : "protocol_error");
        return false;
      }
      switch (m.op) {
        case Opcode::kPing:
          c.queue.pushControl(
              std::make_shared<const std::string>(encodeFrame(Opcode::kPong, m.payload)));
          break;
        case Opcode::kPong:
          break;  // any byte received already counts as alive
        case Opcode::kClose: {
          uint16_t code = m.close_code == 1005 ? uint16_t{kCloseNormal} : m.close_code;
          closeClient(c, code, "", "client");
          return false;
        }
        case Opcode::kBinary:
          closeClient(c, kCloseUnsupportedData, "text messages only", "protocol_error");
          return false;
        default:
          onText(c, m.payload);
          break;
      }
    }
    return false;
  }

  void onText(Client& c, const std::string& text) {
    ClientRequest r = parseClientRequest(text, c.channel == Channel::kDashboard);
    int64_t now = unixMillis();
    switch (r.kind) {
      case ClientRequest::Kind::kPing:
        c.queue.pushControl(textFrame(controlMessage("pong", "", "", now)));
        break;
      case ClientRequest::Kind::kSubscribe: {
        // Rule: every stream by default; the first explicit subscribe narrows to that stream,
        // later ones add to it.
        if (!c.explicit_subscription) {
          c.explicit_subscription = true;
          for (int s = 0; s < kStreamCount; ++s)
            if (s != r.stream) c.queue.removeStream(s);
          c.mask = 0;
        }
        c.mask |= 1u << r.stream;
        // The snapshot follows the acknowledgement: drop what was pending of this stream.
        c.queue.removeStream(r.stream);
        c.queue.pushControl(
            textFrame(controlMessage("subscribed", kStreams[static_cast<size_t>(r.stream)],
                                     "{\"subscribed\":" + streamList(c.mask) + "}", now)));
        if (auto snap = snapshots[static_cast<size_t>(r.stream)])
          c.queue.pushSnapshot(r.stream, snap);
        break;
      }
      case ClientRequest::Kind::kUnsubscribe:
        c.explicit_subscription = true;
        c.mask &= ~(1u << r.stream);
        c.queue.removeStream(r.stream);
        c.queue.pushControl(
            textFrame(controlMessage("unsubscribed", kStreams[static_cast<size_t>(r.stream)],
                                     "{\"subscribed\":" + streamList(c.mask) + "}", now)));
        break;
      case ClientRequest::Kind::kInvalid: {
        std::string data = "{\"code\":";
        blockbuster::Json::appendString(data, r.code);
        data += ",\"message\":";
        blockbuster::Json::appendString(data, r.error);
        data += "}";
        c.queue.pushControl(textFrame(controlMessage("error", "", data, now)));
        break;
      }
    }
  }

  void setWantWrite(Client& c, bool want) {
    c.want_write = want;
    updateEvents(c);
  }

  void setTlsWantsWrite(Client& c, bool want) {
    if (c.tls_wants_write == want) return;
    c.tls_wants_write = want;
    updateEvents(c);
  }

  // EPOLLOUT while unsent data waits for the socket, or a TLS read or handshake does.
  void updateEvents(Client& c) {
    bool out = (c.want_write && !c.write_wants_read) || c.tls_wants_write;
    if (c.epollout == out) return;
    c.epollout = out;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u);
    ev.data.u64 = c.id;
    epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
  }

  // Writes as much as the socket takes without blocking; false when the client was closed.
  bool flush(Client& c) {
    if (c.closed) return false;
    for (;;) {
      if (!c.current) {
        c.current = c.queue.pop();
        c.offset = 0;
        if (!c.current) break;
      }
      const std::string& f = *c.current;
      long n = writeSome(c, f.data() + c.offset, f.size() - c.offset);
      if (n > 0) {
        // Progress: a slow reader is not a stalled one.
        c.blocked_since.reset();
        c.offset += static_cast<size_t>(n);
        if (c.offset == f.size()) {
          c.current.reset();
          if (!c.http_answer) {
            ++sent;
          } else if (c.phase != Phase::kOpen) {
            // An HTTP error answer is all this connection gets.
            closeClient(c, 0, "", "refused");
            return false;
          }
          c.http_answer = false;
        }
        continue;
      }
      if (n == kWouldBlock) {
        if (!c.blocked_since) c.blocked_since = Clock::now();
        setWantWrite(c, true);
        return true;
      }
      closeClient(c, 0, "", "error");
      return false;
    }
    c.blocked_since.reset();
    setWantWrite(c, false);
    return true;
  }

  // Closes the socket now; the Client object lives until bury(), so callers up the stack may
  // still look at it (c.closed).
  void closeClient(Client& c, uint16_t code, const std::string& reason, const char* why) {
    if (c.closed) return;
    c.closed = true;
    if (code != 0 && c.phase == Phase::kOpen) {
      // Best effort: finish the frame in flight (a frame cut in half would corrupt the close),
      // then the close frame, without ever blocking (every socket is non-blocking).
      std::string tail;
      if (c.current) tail.assign(*c.current, c.offset, std::string::npos);
      tail += encodeClose(code, reason);
      long n = writeSome(c, tail.data(), tail.size());
      (void)n;
    }
    epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    if (c.tls) {
      tls->close(c.tls);
      c.tls = nullptr;
    }
    ::close(c.fd);
    graveyard.push_back(c.id);
    if (c.phase != Phase::kOpen) {
      // Not a WebSocket client yet: nothing was counted for it but the handshake.
      --handshaking;
      if (logEnabled(LogLevel::Debug))
        logDebug("ws",
                 c.listener->options.name + ": connection closed before the upgrade (" + why + ")");
      return;
    }
    Channel ch = c.channel;
    uint64_t dropped = c.queue.takeDropped();
    if (metrics()) {
      if (dropped) metrics()->wsMessagesDropped(dropped);
      metrics()->wsClientClosed(why);
    }
    --per_channel[static_cast<size_t>(ch)];
    owner.admitted_.fetch_sub(1);
    if (metrics()) metrics()->wsClients(channelName(ch), per_channel[static_cast<size_t>(ch)]);
  }

  void housekeeping(Clock::time_point now) {
    const auto& lim = owner.limits_;
    std::vector<std::pair<Client*, const char*>> doomed;
    std::vector<Client*> to_ping;
    uint64_t dropped = 0;
    for (auto& kv : clients) {
      Client& c = *kv.second;
      if (c.closed) continue;
      if (c.phase != Phase::kOpen) {
        // A handshake that stalls, or an answer the client does not read, ends here.
        if (now - c.accepted > lim.handshake_timeout) doomed.emplace_back(&c, "handshake_timeout");
        continue;
      }
      dropped += c.queue.takeDropped();
      if (c.blocked_since && now - *c.blocked_since > lim.stall_timeout) {
        doomed.emplace_back(&c, "stalled");
      } else if (c.ping_sent && now - *c.ping_sent > lim.pong_timeout) {
        doomed.emplace_back(&c, "timeout");
      } else if (!c.ping_sent && now - c.last_read > lim.ping_interval) {
        to_ping.push_back(&c);
      }
    }
    for (auto& l : listeners) {
      if (!l->paused) continue;
      l->paused = false;
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = l->key;
      epoll_ctl(epfd, EPOLL_CTL_MOD, l->fd, &ev);
    }
    for (auto& d : doomed) {
      bool stalled = std::strcmp(d.second, "stalled") == 0;
      closeClient(*d.first, stalled ? 0 : kClosePolicy, stalled ? "" : "no answer to ping",
                  d.second);
    }
    static const FramePtr kPing =
        std::make_shared<const std::string>(encodeFrame(Opcode::kPing, "keepalive"));
    for (Client* c : to_ping) {
      if (c->closed) continue;
      c->ping_sent = now;
      c->queue.pushControl(kPing);
      flush(*c);
    }
    bury();
    if (metrics() && dropped) metrics()->wsMessagesDropped(dropped);
    reportCounters();
  }

  void reportCounters() {
    if (metrics() && sent) metrics()->wsMessagesSent(sent);
    sent = 0;
  }

  // ---- TLS listeners ---------------------------------------------------------------------------

  void acceptTls(TlsListener& l) {
    const auto now = Clock::now();
    for (int i = 0; i < kAcceptsPerEvent; ++i) {
      int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // Out of descriptors: the pending connection would wake the loop again at once, so
          // stop watching the listener until the next housekeeping.
          logWarn("ws", l.options.name + ": cannot accept a connection (" + std::strerror(errno) +
                            "); raise the open-file limit (ulimit -n)");
          l.paused = true;
          epoll_event ev{};
          ev.data.u64 = l.key;
          epoll_ctl(epfd, EPOLL_CTL_MOD, l.fd, &ev);
        }
        return;  // EAGAIN: none left
      }
      if (handshaking >= owner.limits_.max_handshakes) {
        // The cap of connections before their 101: an answer would need a handshake first.
        ::close(fd);
        if (refused_accepts++ % 1000 == 0)
          logWarn("ws", l.options.name + ": over " + std::to_string(owner.limits_.max_handshakes) +
                            " connections in their handshake, closing new ones");
        continue;
      }
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      void* stream = tls->open(l.context, fd);
      if (!stream) {
        ::close(fd);
        continue;
      }
      uint64_t id = next_id++;
      auto client =
          std::make_unique<Client>(id, fd, Channel::kDashboard, owner.limits_.max_message_bytes);
      Client& c = *client;
      c.tls = stream;
      c.listener = &l;
      c.phase = Phase::kTlsHandshake;
      c.accepted = now;
      epoll_event ev{};
      ev.events = EPOLLIN | EPOLLRDHUP;
      ev.data.u64 = id;
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        tls->close(stream);
        ::close(fd);
        continue;
      }
      clients.emplace(id, std::move(client));
      ++handshaking;
      advance(c);  // the ClientHello may be there already
    }
  }

  void onTlsEvent(Client& c, uint32_t what) {
    if (c.phase != Phase::kOpen) {
      advance(c);
      return;
    }
    // Read when there is something to read (or a read waits for writability), then write what
    // is queued: a write may have waited for bytes from the peer.
    if ((what & (EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP)) || c.tls_wants_write) {
      if (!onReadable(c)) return;
    }
    if (!c.closed) flush(c);
  }

  // Reads what TLS streams hold already decrypted (see onReadable).
  void readBuffered() {
    std::vector<uint64_t> ready;
    ready.swap(tls_ready);
    for (uint64_t id : ready) {
      auto it = clients.find(id);
      if (it == clients.end() || it->second->closed || it->second->phase != Phase::kOpen) continue;
      if (onReadable(*it->second)) flush(*it->second);
    }
  }

  // Moves a TLS listener's connection on: the TLS handshake, then the HTTP request; false when
  // it was closed.
  bool advance(Client& c) {
    if (c.phase == Phase::kTlsHandshake) {
      long r = tls->handshake(c.tls);
      if (r == kTlsWantRead || r == kTlsWantWrite) {
        setTlsWantsWrite(c, r == kTlsWantWrite);
        return true;
      }
      if (r != 1) {
        // Plain HTTP on this port, an old TLS version, a client that gave up: its problem only.
        if (logEnabled(LogLevel::Debug)) {
          char why[512];
          tls->last_error(why, sizeof why);
          logDebug("ws", c.listener->options.name + ": TLS handshake failed: " + why);
        }
        closeClient(c, 0, "", "handshake");
        return false;
      }
      setTlsWantsWrite(c, false);
      c.phase = Phase::kRequest;
    }
    if (c.phase == Phase::kRequest) {
      char buf[4096];
      for (;;) {
        long n = readSome(c, buf, sizeof buf);
        if (n == kWouldBlock) return true;
        if (n <= 0) {
          closeClient(c, 0, "", "handshake");
          return false;
        }
        size_t from = c.request.size() < 3 ? 0 : c.request.size() - 3;
        c.request.append(buf, static_cast<size_t>(n));
        size_t end = c.request.find("\r\n\r\n", from);
        if (end != std::string::npos) {
          std::string pending = c.request.substr(end + 4);
          c.request.resize(end + 4);
          return onRequest(c, std::move(pending));
        }
        if (c.request.size() > kMaxHeadBytes)
          return refuse(c, HttpResponse::error(431, "headers_too_large",
                                               "the request head is longer than " +
                                                   std::to_string(kMaxHeadBytes) + " bytes"));
      }
    }
    if (c.phase == Phase::kRefusing) {
      // Whatever the client still sends is not read: drain it so that it raises no event.
      char buf[4096];
      long n;
      while ((n = readSome(c, buf, sizeof buf)) > 0) {
      }
      if (n == kBroken) {
        closeClient(c, 0, "", "refused");
        return false;
      }
      if (n == 0) {
        // The client has said all (a half-close): still answer it, watching writability only.
        c.epollout = true;
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = c.id;
        epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev);
      }
      return flush(c);
    }
    return true;
  }

  // The HTTP request of a TLS listener's connection, checked as the HTTP listeners check an
  // upgrade (http/server.cc): limits, credentials, path, upgrade headers, Origin and the client
  // cap, the WebSocket key; then the 101 and the client starts. False when it was closed.
  bool onRequest(Client& c, std::string pending) {
    const TlsListenerOptions& o = c.listener->options;
    Poco::Net::HTTPRequest request;
    try {
      std::istringstream in(c.request);
      request.read(in);
    } catch (const Poco::Exception& e) {
      return refuse(
          c, HttpResponse::error(400, "bad_request", "malformed HTTP request: " + e.displayText()));
    }
    c.request.clear();
    c.request.shrink_to_fit();
    const http_detail::PocoHead head(request);
    http_detail::RequestFlow::Admission a = c.listener->flow->admit(head);
    if (a.refusal) return refuse(c, *a.refusal);
    std::optional<Channel> channel = o.any_path;
    for (const auto& r : o.routes)
      if (r.first == a.request.path) channel = r.second;
    if (!channel) return refuse(c, HttpResponse::error(404, "not_found", o.not_found));
    HttpResponse hs = c.listener->flow->handshake(*c.listener->endpoint, head, a.request);
    if (hs.status != 101) return refuse(c, hs);
    std::string answer = "HTTP/1.1 101 Switching Protocols\r\n";
    for (const auto& h : hs.headers) answer += h.first + ": " + h.second + "\r\n";
    answer += "\r\n";

    owner.admitted_.fetch_add(1);
    --handshaking;
    c.phase = Phase::kOpen;
    c.channel = *channel;
    c.last_read = Clock::now();
    c.current = std::make_shared<const std::string>(std::move(answer));  // before any frame
    c.offset = 0;
    c.http_answer = true;
    start(c, std::move(pending));
    return !c.closed;
  }

  // Answers `response` and closes the connection once it is written (or at the handshake
  // timeout); false when it was closed already.
  bool refuse(Client& c, const HttpResponse& response) {
    c.phase = Phase::kRefusing;
    c.request.clear();
    c.current = std::make_shared<const std::string>(httpBytes(response));
    c.offset = 0;
    c.http_answer = true;
    return flush(c);
  }
};

WsServer::WsServer(ServerLimits limits, Metrics* metrics)
    : limits_(std::move(limits)), metrics_(metrics), loop_(std::make_unique<Loop>(*this)) {
  if (metrics_) {
    metrics_->wsClients("dashboard", 0);
    metrics_->wsClients("features", 0);
  }
}

WsServer::~WsServer() { stop(); }

void WsServer::start() {
  if (loop_->thread.joinable()) return;
  loop_->thread = std::thread([this] { loop_->run(); });
}

void WsServer::stop() {
  if (!loop_->thread.joinable()) return;
  loop_->stopping = true;
  loop_->wake();
  loop_->thread.join();
}

void WsServer::publish(int stream, FramePtr update, FramePtr snapshot, int64_t changed_ms) {
  if (stream < 0 || stream >= kStreamCount) return;
  {
    std::lock_guard<std::mutex> lock(loop_->mutex);
    auto& inbox = loop_->stream_inbox;
    if (inbox.size() >= kMaxInbox) {
      inbox.pop_front();
      if (metrics_) metrics_->wsMessagesDropped(admitted_.load());
    }
    inbox.push_back(Loop::Publication{stream, std::move(update), std::move(snapshot), changed_ms});
  }
  loop_->wake();
}

void WsServer::publishFeatures(FramePtr frame) {
  {
    std::lock_guard<std::mutex> lock(loop_->mutex);
    loop_->feature_inbox = std::move(frame);
  }
  loop_->wake();
}

std::optional<HttpResponse> WsServer::checkUpgrade(const HttpRequest& request) {
  if (!request.origin.empty()) {
    const auto& allowed = limits_.allowed_origins;
    std::string origin = lower(request.origin);
    bool ok = std::any_of(allowed.begin(), allowed.end(),
                          [&](const std::string& a) { return a == "*" || lower(a) == origin; });
    if (!ok)
      return HttpResponse::error(403, "origin_not_allowed",
                                 "Origin '" + request.origin +
                                     "' is not in http.cors_origins; add it there to let pages "
                                     "from it connect");
  }
  if (admitted_.load() >= limits_.max_clients) {
    auto r = HttpResponse::error(503, "too_many_clients",
                                 "the agent already serves " + std::to_string(limits_.max_clients) +
                                     " WebSocket clients; retry later");
    r.headers.emplace_back("Retry-After", "5");
    return r;
  }
  return std::nullopt;
}

void WsServer::adopt(Channel channel, int fd, std::string pending) {
  admitted_.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(loop_->mutex);
    loop_->adopts.push_back(Loop::Adopt{channel, fd, std::move(pending)});
  }
  loop_->wake();
}

int WsServer::listenTls(TlsListenerOptions options) {
  if (loop_->thread.joinable())
    throw std::logic_error("WsServer::listenTls must be called before start()");
  const std::string name = options.name;
  const TlsStreamApi* api = nullptr;
  try {
    api = &tlsStreamApi();
  } catch (const std::exception& e) {
    throw std::runtime_error(name + ": " + e.what());
  }
  auto l = std::make_unique<TlsListener>();
  char error[1024] = "";
  l->context =
      api->server_context(options.cert_file.c_str(), options.key_file.c_str(), error, sizeof error);
  if (!l->context)
    throw std::runtime_error(options.config_key + ": cannot load the TLS certificate " +
                             options.cert_file + " and key " + options.key_file + " for " + name +
                             " (" + error +
                             "); give PEM files readable by the agent, the key unencrypted");
  try {
    // As the HTTP listeners: SO_REUSEADDR for quick restarts, not SO_REUSEPORT, so that a
    // second agent on the same port fails here.
    Poco::Net::SocketAddress address(options.host, static_cast<Poco::UInt16>(options.port));
    l->socket.bind(address, /*reuseAddress=*/true, /*reusePort=*/false);
    l->socket.listen(1024);
    l->socket.setBlocking(false);
  } catch (const Poco::Exception& e) {
    api->free_context(l->context);
    throw std::runtime_error(
        "cannot listen on " + options.host + ":" + std::to_string(options.port) + " for " + name +
        " (" + e.displayText() + "); is another process using the port? Choose another port");
  }
  l->fd = l->socket.impl()->sockfd();
  l->key = kListenerBit | loop_->listeners.size();
  l->options = std::move(options);
  l->http.name = l->options.name;
  l->http.auth = l->options.auth;
  l->flow = std::make_unique<http_detail::RequestFlow>(
      l->http, [](HttpRequest&&) { return HttpResponse::error(404, "not_found", ""); }, nullptr);
  l->endpoint = std::make_unique<WsEndpoint>(*this, l->options.routes, l->options.any_path);
  const int port = l->socket.address().port();
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = l->key;
  if (epoll_ctl(loop_->epfd, EPOLL_CTL_ADD, l->fd, &ev) < 0) {
    api->free_context(l->context);
    throw std::runtime_error(name + ": cannot watch the listening socket: " + std::strerror(errno));
  }
  loop_->tls = api;
  loop_->listeners.push_back(std::move(l));
  return port;
}

WsEndpoint::WsEndpoint(WsServer& server, std::vector<std::pair<std::string, Channel>> routes,
                       std::optional<Channel> any_path)
    : server_(server), routes_(std::move(routes)), any_path_(any_path) {}

std::optional<Channel> WsEndpoint::channelOf(const std::string& path) const {
  for (const auto& r : routes_)
    if (r.first == path) return r.second;
  return any_path_;
}

bool WsEndpoint::handlesPath(const std::string& path) const { return channelOf(path).has_value(); }

std::optional<HttpResponse> WsEndpoint::checkUpgrade(const HttpRequest& request) {
  return server_.checkUpgrade(request);
}

void WsEndpoint::adopt(int fd, const HttpRequest& request, std::string pending) {
  auto channel = channelOf(request.path);
  if (!channel) {
    ::close(fd);
    return;
  }
  server_.adopt(*channel, fd, std::move(pending));
}

}  // namespace bb::ws
