#include "http/event_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "net/http_head.h"
#include "net/limits.h"
#include "net/loop.h"
#include "net/stream.h"
#include "net/tls.h"
#include "util/log.h"
#include "util/thread_priority.h"

namespace bb::http_detail {
namespace {

// Pipelined answers gathered before they are written, in bytes and pieces (one sendmsg).
constexpr size_t kMaxGatheredBytes = 256 * 1024;
constexpr size_t kMaxIov = 64;
// After an answer that ends a connection, what the client still sends is read and dropped for
// at most this long: closing with unread bytes would reset the connection, and a reset can
// destroy the answer before the client reads it.
constexpr auto kLinger = std::chrono::seconds(2);
// Offloaded requests waiting for a worker; more are answered 503.
constexpr size_t kMaxOffloadQueue = 256;
// Epoll keys: the loop's own (net::Loop::kWakeKey), the listening socket, then connections (ids
// never reused).
constexpr uint64_t kListenKey = 1;
constexpr uint64_t kFirstConnection = 2;

// Where a connection is; what its timeout counts from (Connection::since) depends on it.
enum class State {
  kNone,       // not settled yet
  kHandshake,  // the TLS handshake: read_timeout from the accept
  kIdle,       // no request started: keep_alive_timeout (read_timeout before the first request)
  kRequest,    // a request started and not complete: read_timeout from its first byte
  kWriting,    // answers wait for the socket: read_timeout from the last progress
  kBusy,       // a worker answers an offloaded request: no timeout (the handler has its own)
  kLinger,     // answered and closing: kLinger
};

struct Connection {
  Connection(uint64_t i, net::Stream s) : id(i), stream(std::move(s)) {}
  uint64_t id;
  net::Stream stream;
  bool closed = false;  // closed (or handed over); erased at the end of the loop iteration
  State state = State::kNone;
  Clock::time_point since{};
  uint32_t events = 0;  // registered with epoll
  int served = 0;       // requests answered, for max_keep_alive_requests
  // Input: bytes received and not consumed yet, from in_off; scan: where the search for the
  // end of the head goes on.
  std::string in;
  size_t in_off = 0;
  size_t scan = 0;
  size_t skip = 0;   // body bytes of an answered request still to drop
  bool eof = false;  // the client has sent all it will
  // Output: answers in order (a head, then its body, moved from the response), written from
  // out[out_first] + out_off; out_bytes of them are unwritten.
  std::vector<std::string> out;
  size_t out_first = 0;
  size_t out_off = 0;
  size_t out_bytes = 0;
  bool close_after = false;  // close once the output is written
  bool lingering = false;
  bool busy = false;  // an offloaded request is being answered
  // A WebSocket upgrade: handed over once the 101 is written.
  std::optional<HttpRequest> upgrade;

  bool writing() const { return out_first < out.size(); }
};

// An offloaded request, and its answer on the way back.
struct Job {
  uint64_t connection;
  std::string version, method, raw_path;
  bool keep = true;
  Clock::time_point started;
  HttpRequest request;
  HttpResponse response;
  bool deferred = false;  // a handler on the loop deferred it (ServerOptions::max_deferred_queued)
};

}  // namespace

// Two sets of workers, one per queue: a scrape never waits behind store queries, and store
// queries run at a lower priority (ServerOptions::deferred_nice) than everything else. The loops
// and those nice-19 workers share `mutex`, so nothing is allocated or freed under it: a worker
// preempted there, or waiting there for a malloc arena's lock, keeps the loops waiting as long
// as the scheduler keeps it off the CPU (docs/performance.md, "Session 8"). The queues hold
// pointers (a deque block per 64 of them), each job allocated and freed outside the lock.
struct EventServer::Pool {
  using Item = std::unique_ptr<std::pair<Loop*, Job>>;
  std::mutex mutex;
  std::condition_variable jobs_cv;
  std::condition_variable deferred_cv;
  std::deque<Item> jobs;      // offloaded up front (/metrics, history, IPC)
  std::deque<Item> deferred;  // deferred by a handler (store queries)
  bool stopping = false;
  std::vector<std::thread> threads;
};

struct EventServer::Loop : net::Loop::Handler {
  Loop(EventServer& s, int i)
      : server(s), flow(s.flow_), options(s.options_), index(i), loop(options.name) {
    watchListener();
  }
  ~Loop() override {
    loop.stop();
    for (auto& kv : connections) kv.second->stream.close();
    for (int fd : handed) ::close(fd);  // handed over while this loop was stopping
  }

  EventServer& server;
  const RequestFlow& flow;
  const ServerOptions& options;
  const int index;
  net::Loop loop;
  bool listening = false;  // the listener is watched (not while out of descriptors)

  // Answers of offloaded requests, filled by the workers under `mutex`; connections another
  // loop accepted for this one, under the same mutex. `done` and `answers` trade places, so
  // that a worker's push_back finds room and allocates nothing under the lock (Pool).
  std::mutex mutex;
  std::vector<Job> done = reserved(kAnswersReserved);
  std::vector<Job> answers = reserved(kAnswersReserved);  // the loop's: being sent
  std::vector<int> handed;
  static constexpr size_t kAnswersReserved = 64;
  static std::vector<Job> reserved(size_t n) {
    std::vector<Job> v;
    v.reserve(n);
    return v;
  }
  // The connections this loop serves, and those handed to it not yet taken: read by the loop
  // that accepts, to give each new connection to the loop with the fewest.
  std::atomic<int> owned{0};

  // Loop-thread state.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections;
  std::vector<uint64_t> graveyard;
  uint64_t next_id = kFirstConnection;
  char buffer[net::kReadBytes];
  char date[64] = "";
  time_t date_second = 0;

  void wake() { loop.wake(); }
  Clock::time_point now() const { return loop.now(); }

  // Every loop watches the listener; EPOLLEXCLUSIVE wakes one of those waiting (not all), so
  // an idle loop takes a new connection and a busy one is left alone.
  void watchListener() {
    listening = loop.add(server.listen_fd_, kListenKey, EPOLLIN | EPOLLEXCLUSIVE);
  }

  void onEvent(uint64_t key, uint32_t events) override {
    if (key == kListenKey) {
      accept();
      return;
    }
    auto it = connections.find(key);
    if (it != connections.end() && !it->second->closed) onEvent(*it->second, events);
  }

  void onWake() override {
    takeHanded();
    takeAnswers();
  }

  void onTurnEnd() override {
    for (uint64_t id : graveyard) connections.erase(id);
    graveyard.clear();
  }

  // Stopping: no new connections; answers already made go out if the socket takes them.
  void onStop() override {
    loop.remove(server.listen_fd_);
    {
      std::lock_guard<std::mutex> lock(mutex);
      for (int fd : handed) {
        ::close(fd);
        server.open_.fetch_sub(1);
      }
      handed.clear();
    }
    for (auto& kv : connections) {
      Connection& c = *kv.second;
      if (c.closed) continue;
      if (c.writing() && !c.upgrade && !c.stream.handshaking()) write(c);
      if (!c.closed) close(c);
    }
  }

  // ---- connections ---------------------------------------------------------------------------

  void accept() {
    for (int i = 0; i < net::kAcceptsPerEvent; ++i) {
      int fd = ::accept4(server.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // The pending connection would wake the loop again at once: stop watching the
          // listener until the next sweep.
          logWarn("http", options.name + ": cannot accept a connection (" + std::strerror(errno) +
                              "); raise the open-file limit (ulimit -n)");
          loop.remove(server.listen_fd_);
          listening = false;
        }
        return;  // EAGAIN: another loop took it, or none left
      }
      if (server.open_.fetch_add(1) >= options.max_connections) {
        // Over the cap: answer 503 and close at once, so that a flood cannot hold the server.
        // Over TLS an answer would need a handshake first: closed without one.
        server.open_.fetch_sub(1);
        if (!server.tls_) {
          const std::string& busy = busyAnswer();
          ssize_t sent = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
          (void)sent;  // best effort: a fresh socket takes these bytes, or the client is gone
          ::shutdown(fd, SHUT_WR);
        }
        ::close(fd);
        if (server.refused_.fetch_add(1) % 1000 == 0)
          logWarn("http", options.name + ": over " + std::to_string(options.max_connections) +
                              " connections, refusing new ones" + (server.tls_ ? "" : " with 503"));
        continue;
      }
      // EPOLLEXCLUSIVE wakes the first loop waiting, so an idle moment sends a burst of new
      // connections (wrk's 64, a browser's 6) all to one loop while the other has none: each
      // goes to the loop serving the fewest instead (this one on a tie).
      Loop* to = this;
      for (auto& l : server.loops_)
        if (l->owned.load(std::memory_order_relaxed) < to->owned.load(std::memory_order_relaxed))
          to = l.get();
      to->owned.fetch_add(1);
      if (to == this) {
        adopt(fd);
      } else {
        {
          std::lock_guard<std::mutex> lock(to->mutex);
          to->handed.push_back(fd);
        }
        to->wake();
      }
    }
  }

  // Serves a connection accepted by this loop or handed to it (counted in open_ and owned).
  void adopt(int fd) {
    // Answers go out in one write each: nothing to gain from Nagle's delay, only latency.
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    const uint64_t id = next_id++;
    auto c = server.tls_ ? std::make_unique<Connection>(id, net::Stream(fd, *server.tls_))
                         : std::make_unique<Connection>(id, net::Stream(fd));
    if ((server.tls_ && !c->stream.tls()) || !loop.add(fd, id, EPOLLIN)) {
      server.open_.fetch_sub(1);
      owned.fetch_sub(1);
      return;  // the stream closes its socket
    }
    c->events = EPOLLIN;
    c->state = c->stream.handshaking() ? State::kHandshake : State::kIdle;
    c->since = now();
    Connection& added = *c;
    connections.emplace(id, std::move(c));
    if (added.stream.handshaking()) onEvent(added, EPOLLIN);  // the ClientHello may be here
  }

  void takeHanded() {
    std::vector<int> fds;
    {
      std::lock_guard<std::mutex> lock(mutex);
      fds.swap(handed);
    }
    for (int fd : fds) adopt(fd);
  }

  void onEvent(Connection& c, uint32_t what) {
    if (c.busy) {
      // Nothing is watched but errors until the worker answers.
      if (what & (EPOLLERR | EPOLLHUP)) close(c);
      return;
    }
    if (c.lingering) {
      drain(c);
      return;
    }
    if (c.stream.handshaking() && !handshake(c)) return;
    if (c.stream.handshaking()) {
      settle(c);
      return;
    }
    // What the connection waits for decides what to do: one direction is watched at a time.
    if (c.writing()) {
      if (!write(c)) return;
      if (!c.writing()) serve(c);  // requests that came meanwhile
    } else {
      if (!read(c)) return;
      serve(c);
    }
    settle(c);
  }

  // Drives the TLS handshake; false when it failed (the connection is closed).
  bool handshake(Connection& c) {
    const long r = c.stream.handshake();
    if (r != net::Stream::kBroken) return true;
    // Plain HTTP on this port, an old TLS version, a client that gave up: its problem only.
    if (logEnabled(LogLevel::Debug))
      logDebug("http", options.name + ": TLS handshake failed: " + c.stream.lastError());
    close(c);
    return false;
  }

  // Reads what the socket holds; false when the connection was closed.
  bool read(Connection& c) {
    if (c.in_off > 0) {
      c.in.erase(0, c.in_off);
      c.scan = c.scan > c.in_off ? c.scan - c.in_off : 0;
      c.in_off = 0;
    }
    for (int i = 0; i < net::kReadsPerEvent; ++i) {
      const long n = c.stream.read(buffer, sizeof buffer);
      if (n > 0) {
        c.in.append(buffer, static_cast<size_t>(n));
        // The socket is drained (and TLS holds nothing ahead): no read to find it empty.
        if (!c.stream.moreToRead(static_cast<size_t>(n), sizeof buffer)) return true;
        continue;
      }
      if (n == 0) {
        // The client has said all: answer what it asked, then close.
        c.eof = true;
        return true;
      }
      if (n == net::Stream::kWouldBlock) return true;
      close(c);
      return false;
    }
    return true;
  }

  // Answers the requests buffered on `c`, in order, until one must wait (for more bytes, for a
  // worker, for the socket to take the answers) or the connection ends; then writes.
  void serve(Connection& c) {
    if (c.closed || c.lingering) return;
    while (!c.closed && !c.busy && !c.close_after && !c.upgrade) {
      if (c.skip > 0) {
        const size_t n = std::min(c.skip, c.in.size() - c.in_off);
        c.in_off += n;
        c.skip -= n;
        if (c.skip > 0) break;
      }
      if (c.out_bytes >= kMaxGatheredBytes || c.out.size() - c.out_first + 2 > kMaxIov) {
        if (!write(c)) return;
        if (c.writing()) break;  // backpressure: no more requests until the client reads
      }
      // Line ends between requests (after a body, say) belong to no request.
      while (c.in_off < c.in.size() && net::isLineSpace(c.in[c.in_off])) ++c.in_off;
      if (c.in_off == c.in.size()) break;
      const size_t end = headEnd(c);
      if (end == 0) {
        const size_t have = c.in.size() - c.in_off;
        if (have > net::kMaxHeadBytes)
          refuse(c, HttpResponse::error(431, "headers_too_large",
                                        "the request head is longer than " +
                                            std::to_string(net::kMaxHeadBytes) + " bytes"));
        else if (have > net::kMaxRequestLine &&
                 !std::memchr(c.in.data() + c.in_off, '\n', net::kMaxRequestLine))
          refuse(c, HttpResponse::error(400, "bad_request",
                                        "malformed HTTP request: the request line is over " +
                                            std::to_string(net::kMaxRequestLine) + " bytes"));
        break;
      }
      net::RequestHead head;
      std::string bad = head.parse(c.in.data() + c.in_off, end - c.in_off);
      c.in_off = end;
      c.scan = 0;
      c.state = State::kNone;  // a new request, a new timeout
      if (!bad.empty()) {
        refuse(c, HttpResponse::error(400, "bad_request", "malformed HTTP request: " + bad));
        break;
      }
      onRequest(c, head);
    }
    if (c.closed) return;
    if (c.eof && !c.busy && !c.upgrade) c.close_after = true;
    if (c.writing() || c.close_after || c.upgrade) write(c);
  }

  // The end of the head that starts at c.in_off (just past its blank line), or 0 if it has not
  // come yet. Resumes where the last search stopped, so a head that arrives a byte at a time
  // costs no more than one that arrives whole.
  static size_t headEnd(Connection& c) {
    const size_t end = net::findHeadEnd(c.in, c.in_off, std::max(c.scan, c.in_off));
    if (end == 0) c.scan = c.in.size();
    return end;
  }

  // One complete request head (its bytes consumed): answered, handed to a worker, or upgraded.
  void onRequest(Connection& c, const net::RequestHead& head) {
    const Clock::time_point started = Clock::now();
    RequestFlow::Admission a = flow.admit(head);
    ++c.served;
    const int most = options.max_keep_alive_requests;
    bool keep = head.keepAlive() && (most <= 0 || c.served < most) &&
                !server.stopping_.load(std::memory_order_relaxed);
    if (a.refusal) {
      // A broken limit leaves the body unread: the connection cannot be reused.
      answer(c, head.version(), head.method(), a.raw_path, *a.refusal, keep && !a.close, started);
      return;
    }
    const long long length = head.contentLength();
    if (length > 0) {
      // The API takes no body: it is dropped as it arrives. A client that waits for
      // "100 Continue" before sending it gets the answer instead, and the connection ends.
      if (c.in.size() - c.in_off < static_cast<size_t>(length) && head.expectsContinue())
        keep = false;
      else
        c.skip = static_cast<size_t>(length);
    }
    if (UpgradeHandler* upgrade = server.upgrade_.load();
        upgrade && upgrade->handlesPath(a.request.path)) {
      HttpResponse r = flow.handshake(*upgrade, head, a.request);
      if (r.status == 101) {
        flow.observe(head.method(), a.raw_path, r, started);
        queue(c, head.version(), r, true);
        c.upgrade = std::move(a.request);
        return;
      }
      answer(c, head.version(), head.method(), a.raw_path, r, keep, started);
      return;
    }
    // To a worker: the request, and whether a handler deferred it (capped apart).
    auto toWorker = [&](HttpRequest request, bool deferred) {
      Job job;
      job.connection = c.id;
      job.version = head.version();
      job.method = head.method();
      job.raw_path = std::move(a.raw_path);
      job.keep = keep;
      job.started = started;
      job.request = std::move(request);
      job.deferred = deferred;
      offload(c, std::move(job));
    };
    if (options.offload && options.offload(a.request)) {
      toWorker(std::move(a.request), false);
      return;
    }
    a.request.may_block = false;  // from memory here; a handler that would block defers
    HttpResponse r = flow.run(std::move(a.request));
    if (r.retry) {
      toWorker(*r.retry, true);
      return;
    }
    answer(c, head.version(), head.method(), a.raw_path, r, keep, started);
  }

  void answer(Connection& c, const std::string& version, const std::string& method,
              const std::string& raw_path, HttpResponse& r, bool keep, Clock::time_point started) {
    if (method == "HEAD") r.head = true;  // never a body to HEAD, as with Poco
    flow.observe(method, raw_path, r, started);
    queue(c, version, r, keep);
  }

  // An answer the parser decides (the request is not understood): sent, then the connection
  // ends. No handler, no observer, as with Poco's own 400.
  void refuse(Connection& c, HttpResponse r) { queue(c, "HTTP/1.1", r, false); }

  // Appends the answer to the output: the status line and headers Poco wrote (Date, then
  // Connection, Content-Type, the response's headers, Content-Length), then the body, moved.
  void queue(Connection& c, const std::string& version, HttpResponse& r, bool keep) {
    std::string head;
    head.reserve(192 + r.content_type.size());
    head += version;
    head += ' ';
    head += std::to_string(r.status);
    head += ' ';
    head += reasonPhrase(r.status);
    head += "\r\nDate: ";
    head += httpDate();
    if (r.status != 101) {
      head += keep ? "\r\nConnection: Keep-Alive" : "\r\nConnection: Close";
      if (!r.content_type.empty()) {
        head += "\r\nContent-Type: ";
        head += r.content_type;
      }
    }
    for (const auto& h : r.headers) {
      head += "\r\n";
      head += h.first;
      head += ": ";
      head += h.second;
    }
    if (r.status != 101) {
      head += "\r\nContent-Length: ";
      head += std::to_string(r.body.size());
    }
    head += "\r\n\r\n";
    c.out_bytes += head.size();
    c.out.push_back(std::move(head));
    if (!r.head && r.status != 204 && r.status != 304 && r.status != 101 && !r.body.empty()) {
      c.out_bytes += r.body.size();
      c.out.push_back(std::move(r.body));
    }
    if (!keep) c.close_after = true;
  }

  // Writes what the socket takes, answers gathered in one sendmsg; then, with nothing left,
  // hands an upgraded connection over or closes one that ends. False when it was closed (or
  // handed over).
  bool write(Connection& c) {
    while (c.writing()) {
      iovec iov[kMaxIov];
      size_t count = 0;
      for (size_t i = c.out_first; i < c.out.size() && count < kMaxIov; ++i, ++count) {
        const size_t off = i == c.out_first ? c.out_off : 0;
        iov[count].iov_base = c.out[i].data() + off;
        iov[count].iov_len = c.out[i].size() - off;
      }
      const long n = c.stream.writev(iov, count);
      if (n == net::Stream::kWouldBlock) return true;  // EPOLLOUT (settle)
      if (n < 0) {
        close(c);
        return false;
      }
      c.since = now();  // progress: a slow reader is not a stalled one
      size_t done = static_cast<size_t>(n);
      c.out_bytes -= done;
      while (done > 0) {
        const size_t left = c.out[c.out_first].size() - c.out_off;
        if (done < left) {
          c.out_off += done;
          break;
        }
        done -= left;
        c.out_off = 0;
        ++c.out_first;
      }
    }
    c.out.clear();
    c.out_first = c.out_off = c.out_bytes = 0;
    if (c.upgrade) {
      handOver(c);
      return false;
    }
    if (c.close_after) {
      linger(c);
      return !c.closed;
    }
    return true;
  }

  // The 101 is written: the connection leaves this loop for the UpgradeHandler, with the bytes
  // the client sent after its request.
  void handOver(Connection& c) {
    UpgradeHandler* upgrade = server.upgrade_.load();
    loop.remove(c.stream.fd());
    forget(c);
    std::string pending = c.in.substr(c.in_off);
    try {
      if (!upgrade) throw std::runtime_error("no upgrade handler");
      upgrade->adopt(std::move(c.stream), *c.upgrade, std::move(pending));
    } catch (const std::exception& e) {
      logError("http", std::string("WebSocket hand-over failed: ") + e.what());
    }
    c.stream.close();  // if the handler did not take it
  }

  // The last answer is written: stop sending and drop what the client still sends until it
  // closes (or kLinger passes), so that no reset destroys the answer.
  void linger(Connection& c) {
    if (c.lingering) return;
    if (c.eof) {
      close(c);
      return;
    }
    c.stream.shutdownWrite();
    c.lingering = true;
    drain(c);
  }

  void drain(Connection& c) {
    for (;;) {
      const long n = c.stream.read(buffer, sizeof buffer);
      if (n > 0) continue;
      if (n == net::Stream::kWouldBlock) break;
      close(c);  // the client closed too (or the connection broke)
      return;
    }
    settle(c);
  }

  // Records what the connection waits for (and since when, for its timeout), and watches the
  // matching event: writability while answers wait (and no reading meanwhile, so a client
  // that does not read cannot make the server buffer without bound), nothing while a worker
  // has its request, readability otherwise. TLS may turn a read into a wait for writability
  // (and the reverse), and may hold decrypted bytes that epoll cannot see.
  void settle(Connection& c) {
    if (c.closed) return;
    const State s = c.stream.handshaking()                 ? State::kHandshake
                    : c.busy                               ? State::kBusy
                    : c.lingering                          ? State::kLinger
                    : c.writing()                          ? State::kWriting
                    : c.in_off < c.in.size() || c.skip > 0 ? State::kRequest
                                                           : State::kIdle;
    if (s != c.state) {
      c.state = s;
      c.since = now();
    }
    const bool out =
        c.writing() && !c.lingering ? !c.stream.writeWantsRead() : c.stream.readWantsWrite();
    const uint32_t want = c.busy ? 0u : out ? uint32_t{EPOLLOUT} : uint32_t{EPOLLIN};
    if (want == EPOLLIN && c.stream.buffered()) loop.readyAgain(c.id);
    if (want == c.events) return;
    if (loop.modify(c.stream.fd(), c.id, want))
      c.events = want;
    else
      close(c);
  }

  // Leaves the connection's descriptor alone (it was handed over, or is being closed).
  void forget(Connection& c) {
    c.closed = true;
    graveyard.push_back(c.id);
    server.open_.fetch_sub(1);
    owned.fetch_sub(1);
  }

  void close(Connection& c) {
    if (c.closed) return;
    forget(c);
    c.stream.close();  // also takes it out of the epoll set
  }

  void onSweep(Clock::time_point) override {
    const auto read_limit = std::chrono::seconds(options.read_timeout_seconds);
    const auto idle_limit = std::chrono::seconds(options.keep_alive_timeout_seconds);
    for (auto& kv : connections) {
      Connection& c = *kv.second;
      if (c.closed) continue;
      const auto waited = now() - c.since;
      bool expired = false;
      switch (c.state) {
        case State::kBusy:
        case State::kNone:
          break;
        case State::kLinger:
          expired = waited > kLinger;
          break;
        case State::kHandshake:
        case State::kRequest:
        case State::kWriting:
          expired = waited > read_limit;
          break;
        case State::kIdle:
          // The first request must come within the read timeout, as with Poco.
          expired = waited > (c.served == 0 ? read_limit : idle_limit);
          break;
      }
      if (expired)
        close(c);
      else if (waited >= net::kSweep)
        c.stream.releaseBuffers();  // TLS: idle for a sweep or more, its 32.5 KiB go back
    }
    for (uint64_t id : graveyard) connections.erase(id);
    graveyard.clear();
    if (!listening) watchListener();
  }

  // The Date header, formatted once a second.
  const char* httpDate() {
    const time_t t = std::time(nullptr);
    if (t != date_second) {
      struct tm utc;
      gmtime_r(&t, &utc);
      std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc);
      date_second = t;
    }
    return date;
  }

  // ---- offloaded requests --------------------------------------------------------------------

  void offload(Connection& c, Job job) {
    Pool& pool = *server.pool_;
    const bool deferred = job.deferred;
    auto item = std::make_unique<std::pair<Loop*, Job>>(this, std::move(job));
    {
      std::lock_guard<std::mutex> lock(pool.mutex);
      auto& queue = deferred ? pool.deferred : pool.jobs;
      if (!pool.threads.empty() &&
          queue.size() < (deferred ? options.max_deferred_queued : kMaxOffloadQueue)) {
        queue.push_back(std::move(item));
        c.busy = true;
      }
    }
    if (c.busy) {
      (deferred ? pool.deferred_cv : pool.jobs_cv).notify_one();
      return;
    }
    job = std::move(item->second);
    HttpResponse r = job.deferred
                         ? HttpResponse::error(503, "busy",
                                               "too many queries are waiting for the store (" +
                                                   std::to_string(options.max_deferred_queued) +
                                                   "); retry after the Retry-After seconds")
                         : HttpResponse::error(503, "busy",
                                               "the agent has too many slow requests in progress; "
                                               "retry later");
    r.headers.emplace_back("Retry-After", "1");
    answer(c, job.version, job.method, job.raw_path, r, job.keep, job.started);
  }

  // From a worker: an offloaded request's answer, for the loop to send.
  void post(Job job) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      done.push_back(std::move(job));
    }
    wake();
  }

  void takeAnswers() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      answers.swap(done);
    }
    for (Job& job : answers) {
      auto it = connections.find(job.connection);
      if (it == connections.end() || it->second->closed) {
        // The client left meanwhile: the request was served all the same.
        flow.observe(job.method, job.raw_path, job.response, job.started);
        continue;
      }
      Connection& c = *it->second;
      c.busy = false;
      answer(c, job.version, job.method, job.raw_path, job.response, job.keep, job.started);
      serve(c);  // the requests that came after it, then the writing
      settle(c);
    }
    answers.clear();  // keeps its room for the workers, once it is `done` again
    if (answers.capacity() > 4 * kAnswersReserved) answers = reserved(kAnswersReserved);
  }
};

EventServer::EventServer(const RequestFlow& flow, const std::atomic<UpgradeHandler*>& upgrade,
                         int listen_fd, const net::TlsContext* tls)
    : flow_(flow),
      options_(flow.options()),
      upgrade_(upgrade),
      listen_fd_(listen_fd),
      tls_(tls),
      pool_(std::make_unique<Pool>()) {
  // Every loop accepts: the listener must never block one of them.
  int flags = fcntl(listen_fd_, F_GETFL, 0);
  if (flags < 0 || fcntl(listen_fd_, F_SETFL, flags | O_NONBLOCK) < 0)
    throw std::runtime_error(
        options_.name + ": cannot make the listening socket non-blocking: " + std::strerror(errno));
  int threads = options_.event_threads;
  if (threads <= 0)
    threads = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
  for (int i = 0; i < threads; ++i) loops_.push_back(std::make_unique<Loop>(*this, i));
}

EventServer::~EventServer() { stop(); }

namespace {
// "bb-<server>-<suffix>", within the 15 characters Linux keeps of a thread name.
std::string threadName(const std::string& server, const std::string& suffix) {
  return "bb-" + server.substr(0, 15 - 4 - suffix.size()) + "-" + suffix;
}
}  // namespace

void EventServer::startWorker(bool deferred, const std::string& suffix) {
  pool_->threads.emplace_back([this, deferred] {
    // Relative to the agent's own (a unit with Nice=5 gets workers at 15 or more); 19 at most.
    if (deferred) lowerThisThreadPriority(options_.deferred_nice);
    Pool& pool = *pool_;
    auto& queue = deferred ? pool.deferred : pool.jobs;
    auto& cv = deferred ? pool.deferred_cv : pool.jobs_cv;
    for (;;) {
      Pool::Item item;
      {
        std::unique_lock<std::mutex> lock(pool.mutex);
        cv.wait(lock, [&] { return pool.stopping || !queue.empty(); });
        if (pool.stopping) return;  // what is still queued goes with its connection
        item = std::move(queue.front());
        queue.pop_front();
      }
      Job& job = item->second;
      job.request.may_block = true;
      job.response = flow_.run(std::move(job.request));
      if (job.response.retry) {
        // A handler must not defer where it may block: a bug, answered as one.
        job.response = HttpResponse::error(500, "internal_error",
                                           "the handler deferred a request on a worker");
      }
      item->first->post(std::move(job));
    }
  });
  pthread_setname_np(pool_->threads.back().native_handle(),
                     threadName(options_.name, suffix).c_str());
}

void EventServer::start() {
  if (started_) return;
  started_ = true;
  if (options_.offload) {
    const int workers = std::max(1, options_.offload_threads);
    for (int i = 0; i < workers; ++i) startWorker(false, "w" + std::to_string(i));
    const int store_workers = std::max(1, options_.deferred_threads);
    for (int i = 0; i < store_workers; ++i) startWorker(true, "d" + std::to_string(i));
  }
  for (auto& l : loops_) l->loop.start(*l, threadName(options_.name, std::to_string(l->index)));
}

void EventServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  for (auto& l : loops_) l->loop.requestStop();
  for (auto& l : loops_) l->loop.stop();
  {
    std::lock_guard<std::mutex> lock(pool_->mutex);
    pool_->stopping = true;
    pool_->jobs.clear();
    pool_->deferred.clear();
  }
  pool_->jobs_cv.notify_all();
  pool_->deferred_cv.notify_all();
  // A worker finishes the request it is answering (a blocking handler has its own deadline).
  for (auto& t : pool_->threads) t.join();
  pool_->threads.clear();
}

}  // namespace bb::http_detail
