#include "http/event_server.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "util/log.h"

namespace bb::http_detail {
namespace {

// Poco's own parser limits (Poco::Net::HTTPRequest, MessageHeader), kept so that a request that
// breaks one gets the same 400 here as on a TLS listener; ServerOptions' limits are tighter.
constexpr size_t kMaxMethodBytes = 32;
constexpr size_t kMaxTargetBytes = 16384;
constexpr size_t kMaxVersionBytes = 8;
constexpr size_t kMaxNameBytes = 256;
constexpr size_t kMaxValueBytes = 8192;
constexpr size_t kMaxFields = 100;
// A request line longer than Poco's limits allow is refused before it ends.
constexpr size_t kMaxRequestLine = kMaxMethodBytes + kMaxTargetBytes + kMaxVersionBytes + 8;
// A head that has not ended after this many bytes is answered 431: Poco's limits would allow
// more, but a request within ServerOptions' limits (16 KiB of headers) never comes near it.
constexpr size_t kMaxHeadBytes = 64 * 1024;
constexpr size_t kReadBytes = 16 * 1024;
// Reads per readable event, so that one client that keeps sending cannot hold its loop.
constexpr int kReadsPerEvent = 4;
// Connections accepted per wake-up, so that a burst of connections spreads over the loops.
constexpr int kAcceptsPerEvent = 16;
// Pipelined answers gathered before they are written, in bytes and pieces (one sendmsg).
constexpr size_t kMaxGatheredBytes = 256 * 1024;
constexpr size_t kMaxIov = 64;
// How often a loop looks for connections past their timeouts.
constexpr auto kSweep = std::chrono::milliseconds(250);
// After an answer that ends a connection, what the client still sends is read and dropped for
// at most this long: closing with unread bytes would reset the connection, and a reset can
// destroy the answer before the client reads it.
constexpr auto kLinger = std::chrono::seconds(2);
// Offloaded requests waiting for a worker; more are answered 503.
constexpr size_t kMaxOffloadQueue = 256;
// Epoll keys: the loop's eventfd, the listening socket, then connections (ids never reused).
constexpr uint64_t kWakeKey = 0;
constexpr uint64_t kListenKey = 1;
constexpr uint64_t kFirstConnection = 2;

bool iequals(const std::string& a, const char* b) {
  const size_t n = std::strlen(b);
  if (a.size() != n) return false;
  for (size_t i = 0; i < n; ++i)
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  return true;
}

bool isBlank(char c) { return c == ' ' || c == '\t'; }
bool isLineSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// A request head, parsed by parseHead.
class Head : public RequestHead {
 public:
  const std::string& method() const override { return method_; }
  const std::string& uri() const override { return target_; }
  std::string get(const char* name) const override {
    for (const auto& f : fields_)
      if (iequals(f.first, name)) return f.second;
    return "";
  }
  void measure(size_t& fields, size_t& bytes) const override {
    fields += fields_.size();
    for (const auto& f : fields_) bytes += f.first.size() + f.second.size();
  }
  bool chunked() const override { return chunked_; }
  long long contentLength() const override { return content_length_; }

  const std::string& version() const override { return version_; }
  /// Whether the client lets the connection be kept: Poco's rule (HTTPMessage::getKeepAlive),
  /// so that clients see the same as before: any Connection value but "close" keeps it, and
  /// without one HTTP/1.1 keeps it, HTTP/1.0 does not.
  bool keepAlive() const {
    std::string connection = get("Connection");
    if (!connection.empty()) return !iequals(connection, "close");
    return version_ == "HTTP/1.1";
  }
  bool expectsContinue() const { return iequals(get("Expect"), "100-continue"); }

  // Parses [data, data + size), a head that ends with its blank line. "" on success, else what
  // is wrong with it (answered 400, as Poco answers a head it cannot parse).
  std::string parse(const char* data, size_t size) {
    const char* const end = data + size;
    const char* p = data;
    const char* eol = static_cast<const char*>(std::memchr(p, '\n', size));
    const char* le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    auto token = [&le](const char*& q, size_t max, std::string& out) {
      while (q < le && isBlank(*q)) ++q;
      const char* from = q;
      while (q < le && !isBlank(*q)) ++q;
      if (q == from || static_cast<size_t>(q - from) > max) return false;
      out.assign(from, q);
      return true;
    };
    // RFC 9112: a CR that does not end the line, or a NUL, is refused, here as in the fields.
    if (std::memchr(p, '\r', static_cast<size_t>(le - p)) ||
        std::memchr(p, '\0', static_cast<size_t>(le - p)))
      return "a bare CR or a NUL in the request line";
    const char* q = p;
    if (!token(q, kMaxMethodBytes, method_)) return "no method, or one over 32 bytes";
    if (!token(q, kMaxTargetBytes, target_)) return "no request target, or one over 16384 bytes";
    if (!token(q, kMaxVersionBytes, version_) || (version_ != "HTTP/1.1" && version_ != "HTTP/1.0"))
      return "the version must be HTTP/1.1 or HTTP/1.0";
    for (p = eol + 1; p < end; p = eol + 1) {
      eol = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
      le = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
      if (le == p) break;  // the blank line
      // RFC 9112: a CR that does not end the line, or a NUL, is refused (a recipient that
      // reads it as a line end would see other fields than we do).
      if (std::memchr(p, '\r', static_cast<size_t>(le - p)) ||
          std::memchr(p, '\0', static_cast<size_t>(le - p)))
        return "a bare CR or a NUL in a header line";
      if (isBlank(*p) && !fields_.empty()) {
        // A folded line continues the previous value.
        std::string& value = fields_.back().second;
        value.append(p, le);
        while (!value.empty() && isBlank(value.back())) value.pop_back();
        if (value.size() > kMaxValueBytes) return "a header value is over 8192 bytes";
        continue;
      }
      const char* colon =
          static_cast<const char*>(std::memchr(p, ':', static_cast<size_t>(le - p)));
      const size_t name_bytes = static_cast<size_t>((colon ? colon : le) - p);
      if (name_bytes > kMaxNameBytes) return "a header name is over 256 bytes";
      if (!colon) continue;  // a line that is no field: ignored, as Poco does
      if (colon == p) return "a header field without a name";
      // RFC 9112 5.1: no whitespace between the name and the colon (nor in the name).
      for (const char* n = p; n < colon; ++n)
        if (isBlank(*n)) return "whitespace in a header name or before its colon";
      if (fields_.size() == kMaxFields) return "more than 100 header fields";
      const char* v = colon + 1;
      while (v < le && isBlank(*v)) ++v;
      if (static_cast<size_t>(le - v) > kMaxValueBytes) return "a header value is over 8192 bytes";
      const char* ve = le;
      while (ve > v && isBlank(ve[-1])) --ve;
      fields_.emplace_back(std::string(p, colon), std::string(v, ve));
    }
    for (const auto& f : fields_) {
      if (iequals(f.first, "Content-Length")) {
        const std::string& v = f.second;
        if (v.empty() || v.size() > 18 || v.find_first_not_of("0123456789") != std::string::npos)
          return "bad Content-Length";
        // RFC 9112 6.3: Content-Length fields that disagree make the body's end unknown (the
        // rest could be read as another request): refused, not the first one believed.
        const long long length = std::stoll(v);
        if (content_length_ >= 0 && length != content_length_)
          return "Content-Length fields that disagree";
        content_length_ = length;
      } else if (iequals(f.first, "Transfer-Encoding") && !iequals(f.second, "identity")) {
        // Any coding makes the body's length unknown up front: refused (413) like chunked.
        chunked_ = true;
      }
    }
    return "";
  }

 private:
  std::string method_, target_, version_;
  std::vector<std::pair<std::string, std::string>> fields_;
  bool chunked_ = false;
  long long content_length_ = -1;
};

// The end of the head that starts at `from` in `in` (just past its blank line), or 0 if it has not
// come yet; the search starts at `start` (where an earlier one stopped).
size_t findHeadEnd(std::string_view in, size_t from, size_t start) {
  size_t i = start;
  while ((i = in.find('\n', i)) != std::string_view::npos) {
    if (i > from && in[i - 1] == '\n') return i + 1;
    if (i > from + 1 && in[i - 1] == '\r' && in[i - 2] == '\n') return i + 1;
    ++i;
  }
  return 0;
}

// Where a connection is; what its timeout counts from (Connection::since) depends on it.
enum class State {
  kNone,     // not settled yet
  kIdle,     // no request started: keep_alive_timeout (read_timeout before the first request)
  kRequest,  // a request started and not complete: read_timeout from its first byte
  kWriting,  // answers wait for the socket: read_timeout from the last progress
  kBusy,     // a worker answers an offloaded request: no timeout (the handler has its own)
  kLinger,   // answered and closing: kLinger
};

struct Connection {
  Connection(uint64_t i, int f) : id(i), fd(f) {}
  uint64_t id;
  int fd;
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

struct EventServer::Pool {
  std::mutex mutex;
  std::condition_variable cv;
  std::deque<std::pair<Loop*, Job>> jobs;      // offloaded up front (/metrics): taken first
  std::deque<std::pair<Loop*, Job>> deferred;  // deferred by a handler (store queries)
  bool stopping = false;
  std::vector<std::thread> threads;
};

struct EventServer::Loop {
  Loop(EventServer& s, int i) : server(s), flow(s.flow_), options(s.options_), index(i) {
    epfd = epoll_create1(EPOLL_CLOEXEC);
    evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epfd < 0 || evfd < 0)
      throw std::runtime_error(options.name +
                               ": cannot create an HTTP event loop: " + std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kWakeKey;
    epoll_ctl(epfd, EPOLL_CTL_ADD, evfd, &ev);
    watchListener();
  }
  ~Loop() {
    for (auto& kv : connections)
      if (!kv.second->closed) ::close(kv.second->fd);
    ::close(epfd);
    ::close(evfd);
  }

  EventServer& server;
  const RequestFlow& flow;
  const ServerOptions& options;
  const int index;
  int epfd = -1;
  int evfd = -1;
  std::thread thread;
  bool listening = false;  // the listener is watched (not while out of descriptors)

  // Answers of offloaded requests, filled by the workers under `mutex`.
  std::mutex mutex;
  std::vector<Job> done;

  // Loop-thread state.
  std::unordered_map<uint64_t, std::unique_ptr<Connection>> connections;
  std::vector<uint64_t> graveyard;
  uint64_t next_id = kFirstConnection;
  Clock::time_point now = Clock::now();
  char buffer[kReadBytes];
  char date[64] = "";
  time_t date_second = 0;

  void wake() {
    uint64_t one = 1;
    ssize_t n = ::write(evfd, &one, sizeof one);
    (void)n;  // the counter only saturates when already signalled
  }

  // Every loop watches the listener; EPOLLEXCLUSIVE wakes one of those waiting (not all), so
  // an idle loop takes a new connection and a busy one is left alone.
  void watchListener() {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLEXCLUSIVE;
    ev.data.u64 = kListenKey;
    listening = epoll_ctl(epfd, EPOLL_CTL_ADD, server.listen_fd_, &ev) == 0;
  }

  void run() {
    epoll_event events[128];
    auto next_sweep = Clock::now() + kSweep;
    while (!server.stopping_.load(std::memory_order_relaxed)) {
      int n = epoll_wait(epfd, events, 128, static_cast<int>(kSweep.count()));
      if (n < 0 && errno != EINTR) {
        logError("http", options.name + ": epoll_wait failed: " + std::strerror(errno));
        break;
      }
      now = Clock::now();
      for (int i = 0; i < n; ++i) {
        const uint64_t key = events[i].data.u64;
        if (key == kWakeKey) {
          uint64_t v;
          while (::read(evfd, &v, sizeof v) > 0) {
          }
          takeAnswers();
        } else if (key == kListenKey) {
          accept();
        } else {
          auto it = connections.find(key);
          if (it != connections.end() && !it->second->closed)
            onEvent(*it->second, events[i].events);
        }
      }
      for (uint64_t id : graveyard) connections.erase(id);
      graveyard.clear();
      if (now >= next_sweep) {
        sweep();
        next_sweep = now + kSweep;
      }
    }
    // Stopping: no new connections; answers already made go out if the socket takes them.
    epoll_ctl(epfd, EPOLL_CTL_DEL, server.listen_fd_, nullptr);
    for (auto& kv : connections) {
      Connection& c = *kv.second;
      if (c.closed) continue;
      if (c.writing() && !c.upgrade) write(c);
      if (!c.closed) close(c);
    }
    connections.clear();
  }

  // ---- connections ---------------------------------------------------------------------------

  void accept() {
    for (int i = 0; i < kAcceptsPerEvent; ++i) {
      int fd = ::accept4(server.listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          // The pending connection would wake the loop again at once: stop watching the
          // listener until the next sweep.
          logWarn("http", options.name + ": cannot accept a connection (" + std::strerror(errno) +
                              "); raise the open-file limit (ulimit -n)");
          epoll_ctl(epfd, EPOLL_CTL_DEL, server.listen_fd_, nullptr);
          listening = false;
        }
        return;  // EAGAIN: another loop took it, or none left
      }
      if (server.open_.fetch_add(1) >= options.max_connections) {
        // Over the cap: answer 503 and close at once, so that a flood cannot hold the server.
        server.open_.fetch_sub(1);
        const std::string& busy = busyAnswer();
        ssize_t sent = ::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL);
        (void)sent;  // best effort: a fresh socket takes these bytes, or the client is gone
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
        if (server.refused_.fetch_add(1) % 1000 == 0)
          logWarn("http", options.name + ": over " + std::to_string(options.max_connections) +
                              " connections, refusing new ones with 503");
        continue;
      }
      // Answers go out in one write each: nothing to gain from Nagle's delay, only latency.
      int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      const uint64_t id = next_id++;
      auto c = std::make_unique<Connection>(id, fd);
      epoll_event ev{};
      ev.events = EPOLLIN;
      ev.data.u64 = id;
      if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        ::close(fd);
        server.open_.fetch_sub(1);
        continue;
      }
      c->events = EPOLLIN;
      c->state = State::kIdle;
      c->since = now;
      connections.emplace(id, std::move(c));
    }
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
    if (what & EPOLLOUT) {
      if (!write(c)) return;
      if (!c.writing()) serve(c);  // requests that came meanwhile
    } else if (what & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
      if (!read(c)) return;
      serve(c);
    }
    settle(c);
  }

  // Reads what the socket holds; false when the connection was closed.
  bool read(Connection& c) {
    if (c.in_off > 0) {
      c.in.erase(0, c.in_off);
      c.scan = c.scan > c.in_off ? c.scan - c.in_off : 0;
      c.in_off = 0;
    }
    for (int i = 0; i < kReadsPerEvent; ++i) {
      ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n > 0) {
        c.in.append(buffer, static_cast<size_t>(n));
        if (static_cast<size_t>(n) < sizeof buffer) return true;  // nothing more for now
        continue;
      }
      if (n == 0) {
        // The client has said all: answer what it asked, then close.
        c.eof = true;
        return true;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
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
      while (c.in_off < c.in.size() && isLineSpace(c.in[c.in_off])) ++c.in_off;
      if (c.in_off == c.in.size()) break;
      const size_t end = headEnd(c);
      if (end == 0) {
        const size_t have = c.in.size() - c.in_off;
        if (have > kMaxHeadBytes)
          refuse(c, HttpResponse::error(431, "headers_too_large",
                                        "the request head is longer than " +
                                            std::to_string(kMaxHeadBytes) + " bytes"));
        else if (have > kMaxRequestLine &&
                 !std::memchr(c.in.data() + c.in_off, '\n', kMaxRequestLine))
          refuse(c, HttpResponse::error(400, "bad_request",
                                        "malformed HTTP request: the request line is over " +
                                            std::to_string(kMaxRequestLine) + " bytes"));
        break;
      }
      Head head;
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
    const size_t end = findHeadEnd(c.in, c.in_off, std::max(c.scan, c.in_off));
    if (end == 0) c.scan = c.in.size();
    return end;
  }

  // One complete request head (its bytes consumed): answered, handed to a worker, or upgraded.
  void onRequest(Connection& c, const Head& head) {
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
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = count;
      ssize_t n = ::sendmsg(c.fd, &msg, MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) return true;  // EPOLLOUT (settle)
        close(c);
        return false;
      }
      c.since = now;  // progress: a slow reader is not a stalled one
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
    epoll_ctl(epfd, EPOLL_CTL_DEL, c.fd, nullptr);
    forget(c);
    std::string pending = c.in.substr(c.in_off);
    try {
      if (!upgrade) throw std::runtime_error("no upgrade handler");
      upgrade->adopt(c.fd, *c.upgrade, std::move(pending));
    } catch (const std::exception& e) {
      logError("http", std::string("WebSocket hand-over failed: ") + e.what());
      ::close(c.fd);
    }
  }

  // The last answer is written: stop sending and drop what the client still sends until it
  // closes (or kLinger passes), so that no reset destroys the answer.
  void linger(Connection& c) {
    if (c.lingering) return;
    if (c.eof) {
      close(c);
      return;
    }
    ::shutdown(c.fd, SHUT_WR);
    c.lingering = true;
    drain(c);
  }

  void drain(Connection& c) {
    for (;;) {
      ssize_t n = ::recv(c.fd, buffer, sizeof buffer, 0);
      if (n > 0) continue;
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      close(c);  // the client closed too (or the connection broke)
      return;
    }
    settle(c);
  }

  // Records what the connection waits for (and since when, for its timeout), and watches the
  // matching event: writability while answers wait (and no reading meanwhile, so a client
  // that does not read cannot make the server buffer without bound), nothing while a worker
  // has its request, readability otherwise.
  void settle(Connection& c) {
    if (c.closed) return;
    const State s = c.busy                                 ? State::kBusy
                    : c.lingering                          ? State::kLinger
                    : c.writing()                          ? State::kWriting
                    : c.in_off < c.in.size() || c.skip > 0 ? State::kRequest
                                                           : State::kIdle;
    if (s != c.state) {
      c.state = s;
      c.since = now;
    }
    const uint32_t want = c.busy ? 0u : c.writing() ? uint32_t{EPOLLOUT} : uint32_t{EPOLLIN};
    if (want == c.events) return;
    epoll_event ev{};
    ev.events = want;
    ev.data.u64 = c.id;
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c.fd, &ev) == 0)
      c.events = want;
    else
      close(c);
  }

  // Leaves the connection's descriptor alone (it was handed over, or is being closed).
  void forget(Connection& c) {
    c.closed = true;
    graveyard.push_back(c.id);
    server.open_.fetch_sub(1);
  }

  void close(Connection& c) {
    if (c.closed) return;
    forget(c);
    ::close(c.fd);  // also takes it out of the epoll set
  }

  void sweep() {
    const auto read_limit = std::chrono::seconds(options.read_timeout_seconds);
    const auto idle_limit = std::chrono::seconds(options.keep_alive_timeout_seconds);
    for (auto& kv : connections) {
      Connection& c = *kv.second;
      if (c.closed) continue;
      const auto waited = now - c.since;
      bool expired = false;
      switch (c.state) {
        case State::kBusy:
        case State::kNone:
          break;
        case State::kLinger:
          expired = waited > kLinger;
          break;
        case State::kRequest:
        case State::kWriting:
          expired = waited > read_limit;
          break;
        case State::kIdle:
          // The first request must come within the read timeout, as with Poco.
          expired = waited > (c.served == 0 ? read_limit : idle_limit);
          break;
      }
      if (expired) close(c);
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
    {
      std::lock_guard<std::mutex> lock(pool.mutex);
      auto& queue = job.deferred ? pool.deferred : pool.jobs;
      if (!pool.threads.empty() &&
          queue.size() < (job.deferred ? options.max_deferred_queued : kMaxOffloadQueue)) {
        queue.emplace_back(this, std::move(job));
        c.busy = true;
      }
    }
    if (c.busy) {
      pool.cv.notify_one();
      return;
    }
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
    std::vector<Job> answers;
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
  }
};

EventServer::EventServer(const RequestFlow& flow, const std::atomic<UpgradeHandler*>& upgrade,
                         int listen_fd)
    : flow_(flow),
      options_(flow.options()),
      upgrade_(upgrade),
      listen_fd_(listen_fd),
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
void nameThread(std::thread& t, const std::string& server, const std::string& suffix) {
  std::string name = "bb-" + server.substr(0, 15 - 4 - suffix.size()) + "-" + suffix;
  pthread_setname_np(t.native_handle(), name.c_str());
}
}  // namespace

void EventServer::start() {
  if (started_) return;
  started_ = true;
  if (options_.offload) {
    const int workers = std::max(1, options_.offload_threads);
    for (int i = 0; i < workers; ++i) {
      pool_->threads.emplace_back([this] {
        Pool& pool = *pool_;
        if (options_.offload_nice > 0)
          setpriority(PRIO_PROCESS, static_cast<id_t>(::syscall(SYS_gettid)),
                      options_.offload_nice);
        for (;;) {
          std::pair<Loop*, Job> item;
          {
            std::unique_lock<std::mutex> lock(pool.mutex);
            pool.cv.wait(lock, [&pool] {
              return pool.stopping || !pool.jobs.empty() || !pool.deferred.empty();
            });
            if (pool.stopping) return;  // what is still queued goes with its connection
            // A scrape does not wait behind a queue of store queries.
            auto& queue = pool.jobs.empty() ? pool.deferred : pool.jobs;
            item = std::move(queue.front());
            queue.pop_front();
          }
          Job& job = item.second;
          job.request.may_block = true;
          job.response = flow_.run(std::move(job.request));
          if (job.response.retry) {
            // A handler must not defer where it may block: a bug, answered as one.
            job.response = HttpResponse::error(500, "internal_error",
                                               "the handler deferred a request on a worker");
          }
          item.first->post(std::move(job));
        }
      });
      nameThread(pool_->threads.back(), options_.name, "w" + std::to_string(i));
    }
  }
  for (auto& loop : loops_) {
    Loop* l = loop.get();
    l->thread = std::thread([l] { l->run(); });
    nameThread(l->thread, options_.name, std::to_string(l->index));
  }
}

void EventServer::stop() {
  if (stopped_) return;
  stopped_ = true;
  stopping_ = true;
  for (auto& loop : loops_) {
    loop->wake();
    if (loop->thread.joinable()) loop->thread.join();
  }
  {
    std::lock_guard<std::mutex> lock(pool_->mutex);
    pool_->stopping = true;
    pool_->jobs.clear();
    pool_->deferred.clear();
  }
  pool_->cv.notify_all();
  // A worker finishes the request it is answering (a blocking handler has its own deadline).
  for (auto& t : pool_->threads) t.join();
  pool_->threads.clear();
}

HeadFraming frameRequestHead(std::string_view bytes) {
  HeadFraming f;
  size_t from = 0;
  while (from < bytes.size() && isLineSpace(bytes[from])) ++from;
  const size_t end = findHeadEnd(bytes, from, from);
  if (end == 0) return f;
  f.complete = true;
  f.head_bytes = end;
  Head head;
  f.error = head.parse(bytes.data() + from, end - from);
  if (f.error.empty()) {
    f.content_length = head.contentLength();
    f.chunked = head.chunked();
  }
  return f;
}

}  // namespace bb::http_detail
