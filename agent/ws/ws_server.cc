#include "ws/ws_server.h"

#include <blockbuster/json.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
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
#include <utility>

#include "metrics/metrics.h"
#include "net/limits.h"
#include "net/loop.h"
#include "util/log.h"
#include "ws/deflate.h"
#include "ws/frame.h"
#include "ws/protocol.h"

namespace bb::ws {
namespace {

using Clock = std::chrono::steady_clock;

constexpr uint32_t kAllStreams = (1u << kStreamCount) - 1;
// What a client receives until it subscribes explicitly: history only on request.
constexpr uint32_t kDefaultStreams = kDefaultStreamMask;
// Publications waiting for the loop; more means the loop is far behind and the oldest go.
constexpr size_t kMaxInbox = 256;
// Epoll keys: 0 is the loop's own (net::Loop::kWakeKey), clients count up from 1.
constexpr uint64_t kFirstClient = 1;
// Updates of one stream a client that keeps up may have waiting for the same write.
constexpr size_t kMaxPerStream = 8;
// Publications wait at most half as long as a fan-out to all of the loop's clients takes, and
// never longer than this, for the others of the same block (onWake).
constexpr Clock::duration kMaxCoalesce = std::chrono::milliseconds(25);
// Frames handed to one writev; a client with more pending writes the rest in the next call.
constexpr size_t kMaxGather = 64;

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

struct Client {
  Client(uint64_t i, net::Stream s, Channel ch, size_t max_bytes, bool z)
      : id(i), stream(std::move(s)), channel(ch), decoder(true, max_bytes), deflate(z) {
    decoder.acceptCompressed(z);
  }
  uint64_t id;            // epoll key: fds are reused, ids never
  net::Stream stream;     // plain or TLS, handed over by the HTTP side after the 101
  bool closed = false;    // closed, erased at the end of the loop iteration
  bool epollout = false;  // EPOLLOUT registered
  Channel channel;
  FrameDecoder decoder;
  bool deflate;  // negotiated permessage-deflate: gets the compressed frames where there are
  ClientQueue queue;
  FramePtr current;  // the frame being written
  size_t offset = 0;
  uint32_t mask = kDefaultStreams;
  bool explicit_subscription = false;
  bool want_write = false;  // unsent data waits for the socket (its readiness will flush it)
  Clock::time_point last_read = Clock::now();
  std::optional<Clock::time_point> ping_sent;
  // Since when unsent data has waited without the socket taking a byte.
  std::optional<Clock::time_point> blocked_since;
};

}  // namespace

// One publish() call, for the debug log of the fan-out delay: the line is written once every
// loop has handed each of the batch's updates to its clients' sockets.
struct WsServer::Fanout {
  uint64_t id = 0;
  size_t updates = 0;
  int64_t changed_ms = 0;
  std::atomic<size_t> remaining{0};  // (loop, update) pairs not handed over yet
};

struct WsServer::Loop : net::Loop::Handler {
  explicit Loop(WsServer& o) : owner(o), loop("ws") {}
  ~Loop() override { loop.stop(); }

  struct Adopt {
    Channel channel;
    net::Stream stream;
    std::string pending;
    bool deflate;
  };
  struct Publication {
    StreamMessage message;
    std::shared_ptr<Fanout> fanout;  // null unless the debug log is on
  };

  WsServer& owner;
  // Clients adopted by this loop and not closed yet: where the next one goes.
  std::atomic<size_t> load{0};

  // Inbox, filled by other threads under `mutex`.
  std::mutex mutex;
  std::vector<Adopt> adopts;
  // In order, so that a healthy client gets every update; bounded (kMaxInbox) in case the
  // loop falls far behind, the oldest going first.
  std::deque<Publication> stream_inbox;
  FramePtr feature_inbox;
  bool settled = false;  // WsServer::settle: no more publications are coming for now

  // Loop-thread state.
  std::array<FramePtr, kStreamCount> snapshots{};  // the current state, for new subscribers
  std::array<FramePtr, kStreamCount> snapshots_deflated{};  // the same compressed, or null
  std::unique_ptr<Inflater> inflater;                       // clients' compressed messages
  FramePtr feature_latest;
  uint64_t next_id = kFirstClient;
  std::unordered_map<uint64_t, std::unique_ptr<Client>> clients;
  std::vector<uint64_t> graveyard;
  std::array<size_t, 2> per_channel{0, 0};         // this loop's clients
  std::array<size_t, kStreamCount> subscribers{};  // this loop's dashboard clients, per stream
  // The updates of the fan-out in progress, in order (fanOut).
  std::vector<const StreamMessage*> batch;
  std::vector<std::shared_ptr<Fanout>> handed;  // publications of this fan-out, for the debug log
  // What a fan-out costs per client written to (a running average), hence to all of them.
  Clock::duration per_client{};
  uint64_t sent = 0;
  net::Loop loop;  // last: stopped (in ~Loop) before the state above goes

  void wake() { loop.wake(); }

  Metrics* metrics() const { return owner.metrics_; }

  // New clients start at once. Publications wait for a short window when fanning out is
  // expensive, so that the updates of one block (several sections, published within a few ms
  // of each other) reach each client in one write instead of one each. The window ends early
  // when the hub settles (WsServer::settle: no plugin collection in progress, so nothing more
  // of the block is coming). Publications none of this loop's clients receives (a snapshot
  // refreshed, a stream nobody subscribes to: the history's row every second, the health
  // snapshot's ages) open no window: they are applied at once, so that they cannot close a
  // window on a block that follows them.
  void onWake() override {
    std::vector<Adopt> new_clients;
    bool settle = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      new_clients.swap(adopts);
      settle = std::exchange(settled, false);
    }
    for (auto& a : new_clients) addClient(a);
    // An open window takes the publications at its end, or when the hub says nothing more of
    // the block is coming.
    if (loop.deadlineSet() && !settle) return;
    bool publications = false, delivered = false;
    {
      std::lock_guard<std::mutex> lock(mutex);
      publications = !stream_inbox.empty() || feature_inbox != nullptr;
      const uint32_t subscribed = subscribedStreams();
      delivered =
          feature_inbox != nullptr && per_channel[static_cast<size_t>(Channel::kFeatures)] > 0;
      for (const auto& p : stream_inbox)
        delivered = delivered || (p.message.update && (subscribed & (1u << p.message.stream)));
    }
    if (!publications) return;
    if (!delivered || settle) {
      loop.wakeAt(Clock::time_point{});  // closes the window, if open
      fanOut();
      return;
    }
    const auto window =
        std::min(kMaxCoalesce, per_client * static_cast<int64_t>(clients.size()) / 2);
    if (window >= std::chrono::milliseconds(1)) {
      loop.wakeAt(loop.now() + window);
      return;
    }
    fanOut();
  }

  void onDeadline() override { fanOut(); }

  void onEvent(uint64_t id, uint32_t what) override {
    auto it = clients.find(id);
    if (it == clients.end() || it->second->closed) return;
    Client& c = *it->second;
    // Read when there is something to read (or a TLS read waits for writability); write when
    // the socket takes bytes (or a TLS write waited for the peer's).
    if ((what & EPOLLIN) || c.stream.readWantsWrite()) {
      if (!onReadable(c)) return;  // closed
    } else if (what & (EPOLLERR | EPOLLHUP)) {
      closeClient(c, 0, "", "error");
      return;
    }
    if (!c.closed && ((what & EPOLLOUT) || c.stream.writeWantsRead())) flush(c);
  }

  void onTurnEnd() override { bury(); }

  void onSweep(Clock::time_point now) override { housekeeping(now); }

  // Stopping: say goodbye to everyone, best effort.
  void onStop() override {
    std::vector<Client*> all;
    for (auto& kv : clients) all.push_back(kv.second.get());
    for (Client* c : all)
      if (!c->closed) closeClient(*c, kCloseGoingAway, "agent stopping", "shutdown");
    bury();
    reportCounters();
  }

  // Queues the publications waiting in the inbox and hands them over: one pass over the
  // clients, each getting its share of the batch queued and written at once (one write), so
  // that a client's state is touched once per fan-out rather than once per publication.
  void fanOut() {
    const auto started = Clock::now();
    std::deque<Publication> updates;
    FramePtr features;
    {
      std::lock_guard<std::mutex> lock(mutex);
      updates.swap(stream_inbox);
      features.swap(feature_inbox);
    }
    batch.clear();
    uint32_t streams = 0;
    for (auto& p : updates) {
      const int s = p.message.stream;
      snapshots[static_cast<size_t>(s)] = p.message.snapshot;
      snapshots_deflated[static_cast<size_t>(s)] = p.message.snapshot_deflated;
      if (!p.message.update) continue;  // the snapshot refreshed only (same data, newer ages)
      batch.push_back(&p.message);
      streams |= 1u << s;
      if (p.fanout) handed.push_back(std::move(p.fanout));
    }
    if (features) feature_latest = features;
    streams &= subscribedStreams();
    const bool to_features = features && per_channel[static_cast<size_t>(Channel::kFeatures)] > 0;
    int64_t written = 0;
    if (streams != 0 || to_features) {
      for (auto& kv : clients) {
        Client& c = *kv.second;
        if (c.closed) continue;
        if (c.channel == Channel::kDashboard ? queueBatch(c, streams) : queueFeatures(c, features))
          ++written;
      }
    }
    if (!handed.empty()) {
      const int64_t now = unixMillis();
      for (auto& f : handed) owner.fanoutDone(*f, now);
      handed.clear();
    }
    if (written > 0) {
      const auto cost = (Clock::now() - started) / written;
      per_client = per_client == Clock::duration{} ? cost : (per_client * 7 + cost) / 8;
    }
  }

  // Queues the fan-out's updates a dashboard client subscribes to (`streams`: the batch's), in
  // order, and writes them in one go; true when written. A client whose socket took everything
  // so far gets every update; one still waiting for its socket keeps only the latest of each
  // stream (ClientQueue) and is left to its readiness event (a write now would be refused).
  bool queueBatch(Client& c, uint32_t streams) {
    if (!(c.mask & streams)) return false;
    for (const StreamMessage* m : batch) {
      if (!(c.mask & (1u << m->stream))) continue;
      const FramePtr& update = pick(c, m->update, m->update_deflated);
      const FramePtr& snapshot = pick(c, m->snapshot, m->snapshot_deflated);
      if (c.want_write)
        c.queue.pushLatest(m->stream, update, snapshot);
      else
        c.queue.pushUpdate(m->stream, update, snapshot, kMaxPerStream);
    }
    if (c.want_write) return false;
    flush(c);
    return true;
  }

  // The frame `c` gets: the compressed one when it negotiated compression and there is one.
  static const FramePtr& pick(const Client& c, const FramePtr& plain, const FramePtr& deflated) {
    return c.deflate && deflated ? deflated : plain;
  }

  // The current snapshot of stream `s` for `c`, or null.
  const FramePtr& snapshotFor(const Client& c, int s) const {
    return pick(c, snapshots[static_cast<size_t>(s)], snapshots_deflated[static_cast<size_t>(s)]);
  }

  // The latest feature vector for a feature client (null: none in this fan-out).
  bool queueFeatures(Client& c, const FramePtr& features) {
    if (!features) return false;
    c.queue.pushLatest(0, features);
    if (c.want_write) return false;
    flush(c);
    return true;
  }

  // The streams at least one of this loop's dashboard clients receives.
  uint32_t subscribedStreams() const {
    uint32_t mask = 0;
    for (int s = 0; s < kStreamCount; ++s)
      if (subscribers[static_cast<size_t>(s)] > 0) mask |= 1u << s;
    return mask;
  }

  // A dashboard client's streams become `mask`; the loop's counts per stream follow.
  void setMask(Client& c, uint32_t mask) {
    for (int s = 0; s < kStreamCount; ++s) {
      const uint32_t b = 1u << s;
      if ((c.mask & b) != (mask & b)) {
        auto& n = subscribers[static_cast<size_t>(s)];
        n = (mask & b) ? n + 1 : n - 1;
      }
    }
    c.mask = mask;
  }

  void bury() {
    for (uint64_t id : graveyard) clients.erase(id);
    graveyard.clear();
  }

  void addClient(Adopt& a) {
    const int fd = a.stream.fd();
    int flags = fcntl(fd, F_GETFL, 0);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
      released(a.deflate);
      return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    // A client is mostly idle between updates, and 10 000 of them may be: its TLS buffers go
    // back after every record rather than stay (net/stream.h).
    a.stream.keepBuffers(false);
    uint64_t id = next_id++;
    auto client = std::make_unique<Client>(id, std::move(a.stream), a.channel,
                                           owner.limits_.max_message_bytes, a.deflate);
    Client& c = *client;
    if (!loop.add(fd, id, EPOLLIN | EPOLLRDHUP)) {
      logWarn("ws", std::string("cannot watch a new client: ") + std::strerror(errno));
      released(a.deflate);
      return;
    }
    clients.emplace(id, std::move(client));
    start(c, std::move(a.pending));
    // Bytes the HTTP side's TLS stream decrypted beyond the request raise no event here.
    if (!c.closed && c.stream.buffered()) loop.readyAgain(c.id);
  }

  // A new WebSocket client (adopted after its 101, plain or TLS): counted, welcomed, given
  // the current state, then the bytes it sent after its request are handled.
  void start(Client& c, std::string pending) {
    ++per_channel[static_cast<size_t>(c.channel)];
    owner.countClient(c.channel, +1);
    int64_t now = unixMillis();
    if (c.channel == Channel::kDashboard) {
      const uint32_t streams = c.mask;
      c.mask = 0;
      setMask(c, streams);
      c.queue.pushControl(textFrame(controlMessage(
          "welcome", "",
          "{\"streams\":" + streamList(kAllStreams) +
              ",\"subscribed\":" + streamList(kDefaultStreams) +
              ",\"max_message_bytes\":" + std::to_string(owner.limits_.max_message_bytes) + "}",
          now)));
      for (int s = 0; s < kStreamCount; ++s)
        if (snapshots[static_cast<size_t>(s)] && (c.mask & (1u << s)))
          c.queue.pushSnapshot(s, snapshotFor(c, s));
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
    for (int i = 0; i < net::kReadsPerEvent; ++i) {
      long n = readSome(c, buf, sizeof buf);
      if (n > 0) {
        c.last_read = Clock::now();
        c.ping_sent.reset();
        c.decoder.feed(buf, static_cast<size_t>(n));
        if (!processMessages(c) || c.closed) return false;
        if (!c.stream.moreToRead(static_cast<size_t>(n), sizeof buf)) break;
        continue;
      }
      if (n == 0) {
        closeClient(c, 0, "", "client");
        return false;
      }
      if (n == net::Stream::kWouldBlock) break;
      closeClient(c, 0, "", "error");
      return false;
    }
    // Bytes OpenSSL decrypted already do not show on the socket: come back for them.
    if (c.stream.buffered()) loop.readyAgain(c.id);
    updateEvents(c);  // a TLS read may wait for writability
    return true;
  }

  // The transport, plain or TLS: bytes (> 0), 0 when the peer closed (reads), kWouldBlock, or
  // kBroken.
  long readSome(Client& c, char* buf, size_t len) { return c.stream.read(buf, len); }
  long writeSome(Client& c, const char* data, size_t len) { return c.stream.write(data, len); }

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
      if (m.compressed && !inflate(c, m)) return false;
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

  // Completes a compressed message of `c` (the loop's one inflater, reset for each); false when
  // the client was closed for it.
  bool inflate(Client& c, Message& m) {
    uint16_t code = 0;
    std::string reason;
    try {
      if (!inflater) inflater = std::make_unique<Inflater>();
      if (inflateMessage(*inflater, m, owner.limits_.max_message_bytes, code, reason)) return true;
    } catch (const std::exception&) {  // zlib out of memory
      inflater.reset();
      code = kCloseInternalError;
      reason = "the agent could not inflate the message";
    }
    closeClient(c, code, reason, code == kCloseTooBig ? "too_big" : "protocol_error");
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
          setMask(c, 0);
        }
        setMask(c, c.mask | (1u << r.stream));
        // The snapshot follows the acknowledgement: drop what was pending of this stream.
        c.queue.removeStream(r.stream);
        c.queue.pushControl(
            textFrame(controlMessage("subscribed", kStreams[static_cast<size_t>(r.stream)],
                                     "{\"subscribed\":" + streamList(c.mask) + "}", now)));
        if (auto snap = snapshotFor(c, r.stream)) c.queue.pushSnapshot(r.stream, snap);
        break;
      }
      case ClientRequest::Kind::kUnsubscribe:
        c.explicit_subscription = true;
        setMask(c, c.mask & ~(1u << r.stream));
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

  // EPOLLOUT while unsent data waits for the socket, or a TLS read waits for writability.
  void updateEvents(Client& c) {
    const bool out = (c.want_write && !c.stream.writeWantsRead()) || c.stream.readWantsWrite();
    if (c.epollout == out) return;
    c.epollout = out;
    loop.modify(c.stream.fd(), c.id, EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u));
  }

  // Writes as much as the socket takes without blocking, every pending frame in one writev;
  // false when the client was closed.
  bool flush(Client& c) {
    if (c.closed) return false;
    for (;;) {
      iovec iov[kMaxGather];
      size_t n = 0, total = 0;
      if (c.current)
        iov[n++] =
            iovec{const_cast<char*>(c.current->data()) + c.offset, c.current->size() - c.offset};
      for (size_t i = 0; i < c.queue.size() && n < kMaxGather; ++i) {
        const std::string& f = c.queue.peek(i);
        iov[n++] = iovec{const_cast<char*>(f.data()), f.size()};
      }
      if (n == 0) break;
      for (size_t i = 0; i < n; ++i) total += iov[i].iov_len;
      long w = c.stream.writev(iov, n);
      if (w > 0) {
        // Progress: a slow reader is not a stalled one.
        c.blocked_since.reset();
        consume(c, static_cast<size_t>(w));
        // A plain socket that took less is full: wait for it rather than be refused. The data
        // left waits from now.
        if (static_cast<size_t>(w) < total && !c.stream.tls()) {
          c.blocked_since = Clock::now();
          setWantWrite(c, true);
          return true;
        }
        continue;
      }
      if (w == net::Stream::kWouldBlock) {
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

  // `n` bytes of the frame in flight and then of the queue went to the socket: what is complete
  // leaves, a frame cut short becomes the one in flight.
  void consume(Client& c, size_t n) {
    if (c.current) {
      const size_t left = c.current->size() - c.offset;
      if (n < left) {
        c.offset += n;
        return;
      }
      n -= left;
      c.current.reset();
      ++sent;
    }
    while (n > 0) {
      FramePtr f = c.queue.pop();
      if (n < f->size()) {
        c.current = std::move(f);
        c.offset = n;
        return;
      }
      n -= f->size();
      ++sent;
    }
  }

  // Closes the socket now; the Client object lives until bury(), so callers up the stack may
  // still look at it (c.closed).
  void closeClient(Client& c, uint16_t code, const std::string& reason, const char* why) {
    if (c.closed) return;
    c.closed = true;
    if (code != 0) {
      // Best effort: finish the frame in flight (a frame cut in half would corrupt the close),
      // then the close frame, without ever blocking (every socket is non-blocking).
      std::string tail;
      if (c.current) tail.assign(*c.current, c.offset, std::string::npos);
      tail += encodeClose(code, reason);
      long n = writeSome(c, tail.data(), tail.size());
      (void)n;
    }
    loop.remove(c.stream.fd());
    c.stream.close();
    graveyard.push_back(c.id);
    Channel ch = c.channel;
    if (ch == Channel::kDashboard) setMask(c, 0);
    uint64_t dropped = c.queue.takeDropped();
    if (metrics()) {
      if (dropped) metrics()->wsMessagesDropped(dropped);
      metrics()->wsClientClosed(why);
    }
    --per_channel[static_cast<size_t>(ch)];
    owner.countClient(ch, -1);
    released(c.deflate);
  }

  // A client adopted by this loop is gone (closed, or never added).
  void released(bool deflate) {
    owner.admitted_.fetch_sub(1);
    if (deflate) owner.deflate_clients_.fetch_sub(1);
    load.fetch_sub(1);
  }

  void housekeeping(Clock::time_point now) {
    const auto& lim = owner.limits_;
    std::vector<std::pair<Client*, const char*>> doomed;
    std::vector<Client*> to_ping;
    uint64_t dropped = 0;
    for (auto& kv : clients) {
      Client& c = *kv.second;
      if (c.closed) continue;
      dropped += c.queue.takeDropped();
      if (c.blocked_since && now - *c.blocked_since > lim.stall_timeout) {
        doomed.emplace_back(&c, "stalled");
      } else if (c.ping_sent && now - *c.ping_sent > lim.pong_timeout) {
        doomed.emplace_back(&c, "timeout");
      } else if (!c.ping_sent && now - c.last_read > lim.ping_interval) {
        to_ping.push_back(&c);
      }
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
};

WsServer::WsServer(ServerLimits limits, Metrics* metrics)
    : limits_(std::move(limits)), metrics_(metrics) {
  int n = limits_.loops;
  if (n <= 0) n = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  for (int i = 0; i < n; ++i) loops_.push_back(std::make_unique<Loop>(*this));
  if (metrics_) {
    metrics_->wsClients("dashboard", 0);
    metrics_->wsClients("features", 0);
  }
}

WsServer::~WsServer() { stop(); }

void WsServer::start() {
  for (size_t i = 0; i < loops_.size(); ++i)
    loops_[i]->loop.start(*loops_[i], "bb-ws-push-" + std::to_string(i));
}

void WsServer::stop() {
  for (auto& l : loops_) l->loop.requestStop();
  for (auto& l : loops_)
    if (l->loop.running()) l->loop.stop();
}

void WsServer::countClient(Channel channel, int delta) {
  std::lock_guard<std::mutex> lock(count_mutex_);
  size_t& n = per_channel_[static_cast<size_t>(channel)];
  n = delta > 0 ? n + 1 : n - 1;
  if (metrics_) metrics_->wsClients(channelName(channel), n);
}

void WsServer::fanoutDone(Fanout& f, int64_t now_ms) {
  if (f.remaining.fetch_sub(1) != 1) return;
  size_t dashboard;
  {
    std::lock_guard<std::mutex> lock(count_mutex_);
    dashboard = per_channel_[static_cast<size_t>(Channel::kDashboard)];
  }
  logDebug("ws", "fan-out #" + std::to_string(f.id) + " of " + std::to_string(f.updates) +
                     " update(s) to " + std::to_string(dashboard) +
                     " client(s) handed to the sockets " + std::to_string(now_ms - f.changed_ms) +
                     " ms after the change");
}

void WsServer::publish(std::vector<StreamMessage> batch, int64_t changed_ms) {
  batch.erase(std::remove_if(
                  batch.begin(), batch.end(),
                  [](const StreamMessage& m) { return m.stream < 0 || m.stream >= kStreamCount; }),
              batch.end());
  if (batch.empty()) return;
  std::shared_ptr<Fanout> fanout;
  const size_t updates = static_cast<size_t>(std::count_if(
      batch.begin(), batch.end(), [](const StreamMessage& m) { return m.update != nullptr; }));
  if (updates > 0 && logEnabled(LogLevel::Debug)) {
    fanout = std::make_shared<Fanout>();
    fanout->id = ++fanouts_;
    fanout->updates = updates;
    fanout->changed_ms = changed_ms;
    fanout->remaining = updates * loops_.size();
  }
  for (auto& l : loops_) {
    {
      std::lock_guard<std::mutex> lock(l->mutex);
      auto& inbox = l->stream_inbox;
      for (const auto& m : batch) {
        if (inbox.size() >= kMaxInbox) {
          inbox.pop_front();
          if (metrics_) metrics_->wsMessagesDropped(l->load.load());
        }
        inbox.push_back(Loop::Publication{m, m.update ? fanout : nullptr});
      }
    }
    l->wake();
  }
}

void WsServer::settle() {
  for (auto& l : loops_) {
    {
      std::lock_guard<std::mutex> lock(l->mutex);
      l->settled = true;
    }
    l->wake();
  }
}

void WsServer::publishFeatures(FramePtr frame) {
  for (auto& l : loops_) {
    {
      std::lock_guard<std::mutex> lock(l->mutex);
      l->feature_inbox = frame;
    }
    l->wake();
  }
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

std::optional<std::string> WsServer::negotiate(const HttpRequest& request) const {
  if (!limits_.compression || request.ws_extensions.empty()) return std::nullopt;
  return negotiateDeflate(request.ws_extensions);
}

void WsServer::adopt(Channel channel, net::Stream stream, std::string pending, bool deflate) {
  admitted_.fetch_add(1);
  if (deflate) deflate_clients_.fetch_add(1);
  // The loop with the fewest clients; a race between two upgrades costs one client of balance.
  Loop* target = loops_.front().get();
  for (auto& l : loops_)
    if (l->load.load() < target->load.load()) target = l.get();
  target->load.fetch_add(1);
  {
    std::lock_guard<std::mutex> lock(target->mutex);
    target->adopts.push_back(Loop::Adopt{channel, std::move(stream), std::move(pending), deflate});
  }
  target->wake();
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

void WsEndpoint::acceptUpgrade(const HttpRequest& request, HttpResponse& answer) {
  if (auto extension = server_.negotiate(request))
    answer.headers.emplace_back("Sec-WebSocket-Extensions", std::move(*extension));
}

void WsEndpoint::adopt(net::Stream stream, const HttpRequest& request, std::string pending) {
  auto channel = channelOf(request.path);
  if (!channel) return;  // the stream closes
  // The same request the 101 answered (acceptUpgrade): the same answer.
  const bool deflate = server_.negotiate(request).has_value();
  server_.adopt(*channel, std::move(stream), std::move(pending), deflate);
}

}  // namespace bb::ws
