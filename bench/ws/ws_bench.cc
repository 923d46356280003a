// bb-ws-bench: N concurrent WebSocket clients on one epoll thread against a running agent's
// dashboard stream. Measures, for every "update" message, the delay from the agent's snapshot
// change (the message's "timestamp", agent wall clock in ms) until each client has it, and
// until every client has it. Same machine, same clock. Not a test: see bench/ws/run.sh.
//
// The client shares the cores with the agent, so it is kept cheap: frames are parsed where
// recv() put them (a frame is copied only when it spans two reads), the JSON is not parsed (the
// fields it needs are at known places) and UTF-8 is not validated (the agent's tests do that).
// Each socket is read until it is empty when epoll reports it (edge-triggered, in the order the
// sockets became readable: level-triggered, epoll polled every socket it reported once more at
// the next wait, 7% of this client's CPU), and a message is timestamped by the read that
// completed it.
// With --agent-pid it also prints the CPU time of the agent and of itself per delivered
// message over the measured window.
//
// With --deflate the handshake offers permessage-deflate (RFC 7692) as browsers do. Where the
// server accepts it with server_no_context_takeover, every message is compressed on its own, so
// a server that compresses a message once sends the same bytes to every client: the client
// inflates each distinct compressed payload once (a cache keyed by its size and a hash of a few
// sampled bytes, entries dropped 5 s after their last use) and checks every later copy
// byte for byte (memcmp) against the cached bytes before reusing the fields it read from it; a
// copy that differs under the same key is inflated on its own. A server that keeps its context
// (no server_no_context_takeover) gets one inflater per client, fed every message.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "ws/frame.h"

using bb::ws::Opcode;

namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr size_t kMaxStreams = 16;

// Raw DEFLATE (RFC 7692 7.2.2): a compressed message is inflated with 00 00 ff ff appended.
class Inflater {
 public:
  static constexpr size_t kMaxOutput = 16 << 20;  // one inflated message at most

  Inflater() { ok_ = inflateInit2(&z_, -15) == Z_OK; }
  ~Inflater() { inflateEnd(&z_); }
  Inflater(const Inflater&) = delete;
  Inflater& operator=(const Inflater&) = delete;

  // The message `payload` inflates to (valid until the next call), or false on a DEFLATE error
  // or an output over kMaxOutput. `fresh`: from an empty window (server_no_context_takeover);
  // otherwise the window of the messages before it is kept.
  bool run(std::string_view payload, bool fresh, std::string_view& text) {
    if (!ok_) return false;
    if (fresh || ended_) inflateReset(&z_);
    ended_ = false;
    static const unsigned char kTail[4] = {0x00, 0x00, 0xff, 0xff};
    const std::string_view parts[2] = {payload,
                                       {reinterpret_cast<const char*>(kTail), sizeof kTail}};
    size_t used = 0;
    for (const auto& part : parts) {
      if (part.empty()) continue;
      z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(part.data()));
      z_.avail_in = static_cast<uInt>(part.size());
      for (;;) {
        if (used == out_.size()) {
          if (out_.size() >= kMaxOutput) return fail();
          out_.resize(std::min(kMaxOutput, std::max<size_t>(64 << 10, out_.size() * 2)));
        }
        z_.next_out = reinterpret_cast<Bytef*>(&out_[used]);
        z_.avail_out = static_cast<uInt>(out_.size() - used);
        const int rc = inflate(&z_, Z_SYNC_FLUSH);
        used = out_.size() - z_.avail_out;
        if (rc == Z_STREAM_END) {  // a final block: the rest (the tail) is ignored
          ended_ = true;
          text = std::string_view(out_.data(), used);
          return true;
        }
        if (rc != Z_OK && rc != Z_BUF_ERROR) return fail();
        // All of this part in and all out (Z_BUF_ERROR: nothing left to do, e.g. the part
        // ended exactly where the output buffer did); a full buffer grows.
        if (z_.avail_in == 0 && z_.avail_out > 0) break;
        if (rc == Z_BUF_ERROR && z_.avail_out > 0) return fail();  // stuck: not expected
      }
    }
    text = std::string_view(out_.data(), used);
    return true;
  }

 private:
  bool fail() {
    ended_ = true;  // the window is garbage: start afresh next time
    return false;
  }

  z_stream z_{};
  bool ok_ = false;
  bool ended_ = false;
  std::string out_;
};

// What the client reads of a message: its kind and the fields it measures with.
struct Fields {
  enum Kind : uint8_t { kOther, kUpdate, kSnapshot } kind = kOther;
  bool ok = false;  // stream, seq and timestamp read
  size_t sid = kMaxStreams;
  int64_t seq = 0, ts = 0;
};

// One distinct compressed payload, inflated once.
struct Cached {
  std::string wire;  // the compressed bytes every later copy is compared with
  Fields fields;
  size_t inflated = 0;
  int64_t used_ms = 0;
};

// The cache key of a compressed payload: its size and a hash of up to 192 sampled bytes (the
// head holds the block's Huffman tables, the tail the message's last fields). Collisions only
// cost an inflation: every hit is compared byte for byte.
uint64_t sampleKey(std::string_view p) {
  uint64_t h = 0xcbf29ce484222325ULL ^ p.size();
  auto mix = [&h](std::string_view part) {
    for (unsigned char ch : part) h = (h ^ ch) * 0x100000001b3ULL;
  };
  if (p.size() <= 192) {
    mix(p);
  } else {
    mix(p.substr(0, 64));
    mix(p.substr(p.size() / 2 - 32, 64));
    mix(p.substr(p.size() - 64));
  }
  return h;
}

// The permessage-deflate answer of a 101 (the values of every Sec-WebSocket-Extensions line,
// header name matched case-insensitively).
struct DeflateAnswer {
  bool accepted = false;
  bool server_no_context_takeover = false;
  std::string error;  // an answer a browser fails the connection on
};

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

DeflateAnswer parseExtensions(std::string_view head, bool offered) {
  std::string value;
  for (size_t at = head.find("\r\n"); at != std::string_view::npos;) {
    const size_t start = at + 2;
    const size_t end = std::min(head.size(), head.find("\r\n", start));
    const std::string_view line = head.substr(start, end - start);
    const size_t colon = line.find(':');
    if (colon != std::string_view::npos &&
        lower(trim(line.substr(0, colon))) == "sec-websocket-extensions")
      value += (value.empty() ? "" : ",") + lower(line.substr(colon + 1));
    at = end < head.size() ? end : std::string_view::npos;
  }
  DeflateAnswer a;
  if (trim(value).empty()) return a;
  if (!offered) {
    a.error = "an extension not offered: " + value;
    return a;
  }
  if (value.find(',') != std::string::npos) {
    a.error = "more than the one extension offered: " + value;
    return a;
  }
  std::string_view rest = value;
  for (bool first = true; !rest.empty() || first; first = false) {
    const size_t semi = std::min(rest.size(), rest.find(';'));
    const std::string_view param = trim(rest.substr(0, semi));
    rest = semi < rest.size() ? rest.substr(semi + 1) : std::string_view();
    if (first) {
      if (param != "permessage-deflate") a.error = "an extension not offered: " + value;
    } else if (param == "server_no_context_takeover") {
      a.server_no_context_takeover = true;
    } else if (param != "client_no_context_takeover" &&
               param.substr(0, 22) != "server_max_window_bits" &&
               param.substr(0, 22) != "client_max_window_bits") {
      a.error = "an unknown permessage-deflate parameter: " + value;
    }
    if (!a.error.empty()) return a;
  }
  a.accepted = true;
  return a;
}

struct Client {
  int fd = -1;
  bool upgraded = false;
  bool closed = false;
  bool deflate = false;                // permessage-deflate negotiated
  std::unique_ptr<Inflater> inflater;  // only where the server keeps its context
  std::string http;                    // handshake answer so far
  std::string partial;                 // the start of a frame the next read completes
  int64_t last_seq[kMaxStreams] = {};
  int64_t gaps = 0;
};

struct Update {
  int64_t timestamp = 0;
  int delivered = 0;
  int64_t last_ms = 0;  // when the last client got it
};

// One server frame at the start of `in` (unmasked, as a server sends): its size in bytes, or 0
// when `in` does not hold all of it yet.
size_t parseFrame(std::string_view in, uint8_t& byte0, std::string_view& payload) {
  if (in.size() < 2) return 0;
  const auto* p = reinterpret_cast<const unsigned char*>(in.data());
  uint64_t len = p[1] & 0x7f;
  size_t head = 2;
  if (len == 126) {
    if (in.size() < 4) return 0;
    len = (uint64_t{p[2]} << 8) | p[3];
    head = 4;
  } else if (len == 127) {
    if (in.size() < 10) return 0;
    len = 0;
    for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
    head = 10;
  }
  if (p[1] & 0x80) head += 4;  // a masked server frame is an error the caller reports
  if (in.size() < head || in.size() - head < len) return 0;
  byte0 = p[0];
  payload = in.substr(head, static_cast<size_t>(len));
  return head + static_cast<size_t>(len);
}

// The value after `"key":` searched from the end (our fields come last in every message).
bool tailInt(std::string_view s, std::string_view key, int64_t& out) {
  auto at = s.rfind(key);
  if (at == std::string_view::npos) return false;
  out = 0;
  for (size_t i = at + key.size(); i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i)
    out = out * 10 + (s[i] - '0');
  return true;
}

// A string field near the start of the message (the envelope: type, then stream).
std::string_view headField(std::string_view s, std::string_view key) {
  auto at = s.substr(0, 64 + key.size()).find(key);
  if (at == std::string_view::npos) return {};
  auto start = at + key.size();
  auto end = s.find('"', start);
  if (end == std::string_view::npos) return {};
  return s.substr(start, end - start);
}

double percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]);
}

// CPU time (user + system) of process `pid` in microseconds, -1 when unreadable.
int64_t processCpuUs(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  // Fields 3.. after the name; utime and stime are fields 14 and 15.
  for (int i = 3; i <= 15 && rest >> field; ++i) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return (utime + stime) * 1000000 / sysconf(_SC_CLK_TCK);
}

int64_t selfCpuUs() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (int64_t{u.ru_utime.tv_sec} + u.ru_stime.tv_sec) * 1000000 + u.ru_utime.tv_usec +
         u.ru_stime.tv_usec;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bb-ws-bench --port PORT [--path /theblock/ws] [--clients 1000] "
               "[--seconds 30] [--ramp 200] [--agent-pid PID] [--deflate]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, clients_n = 1000, seconds = 30, agent_pid = 0;
  int64_t ramp = 200;
  std::string path = "/theblock/ws";
  bool offer_deflate = false;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--deflate") {
      offer_deflate = true;
      continue;
    }
    if (i + 1 >= argc) usage();
    if (a == "--port")
      port = std::atoi(argv[++i]);
    else if (a == "--clients")
      clients_n = std::atoi(argv[++i]);
    else if (a == "--seconds")
      seconds = std::atoi(argv[++i]);
    else if (a == "--ramp")
      ramp = std::max(1, std::atoi(argv[++i]));
    else if (a == "--path")
      path = argv[++i];
    else if (a == "--agent-pid")
      agent_pid = std::atoi(argv[++i]);
    else
      usage();
  }
  if (port <= 0 || clients_n <= 0) usage();
  // Frames cut across two reads are copied aside, tens of KB each, thousands at once: without
  // this, glibc gives the top of the heap back after each and takes it again (brk, page faults
  // and TLB shootdowns were a quarter of this client's time while clients connected).
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  mallopt(M_MMAP_THRESHOLD, 64 << 20);

  int ep = epoll_create1(0);
  std::vector<std::unique_ptr<Client>> clients;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const std::string handshake = "GET " + path +
                                " HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                                "Connection: Upgrade\r\nSec-WebSocket-Key: "
                                "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
                                (offer_deflate ? "Sec-WebSocket-Extensions: permessage-deflate; "
                                                 "client_max_window_bits\r\n"
                                               : "") +
                                "\r\n";

  // Clients connect while the loop runs, at most --ramp handshakes in flight at once (browsers
  // arrive over time; 10 000 handshakes sent at once without reading would measure the listen
  // backlog, not the fan-out). Latency is recorded only once every client is upgraded: the run
  // lasts --seconds from then (or from the ramp's deadline, 120 s, if some never are).
  auto t_connect = std::chrono::steady_clock::now();
  int64_t pending = 0, refused = 0;
  auto open_one = [&]() -> bool {
    auto c = std::make_unique<Client>();
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      std::fprintf(stderr, "connect %zu failed: %s (raise ulimit -n?)\n", clients.size(),
                   std::strerror(errno));
      return false;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (send(c->fd, handshake.data(), handshake.size(), MSG_NOSIGNAL) !=
        static_cast<ssize_t>(handshake.size())) {
      std::fprintf(stderr, "handshake %zu not sent\n", clients.size());
      return false;
    }
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLET;  // each event is read until the socket is empty
    ev.data.u64 = clients.size();
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    clients.push_back(std::move(c));
    ++pending;
    return true;
  };

  std::vector<std::string> stream_names;  // index = the stream's id in this process
  auto streamId = [&](std::string_view name) -> size_t {
    for (size_t i = 0; i < stream_names.size(); ++i)
      if (stream_names[i] == name) return i;
    if (stream_names.size() == kMaxStreams) return kMaxStreams;
    stream_names.emplace_back(name);
    return stream_names.size() - 1;
  };
  std::unordered_map<uint64_t, Update> updates;  // key: stream id << 48 | seq
  std::vector<int64_t> per_delivery;
  int64_t messages = 0, snapshots = 0, upgraded = 0, closed_by_server = 0, pings = 0;
  int64_t bad_frames = 0, window_messages = 0, window_bytes = 0, window_wire_bytes = 0;
  // permessage-deflate: clients that negotiated it (of which kept their context), compressed
  // messages (in the window, and their sizes there), inflations, cache hits and mismatches.
  int64_t deflate_clients = 0, context_clients = 0, compressed = 0, window_compressed = 0;
  int64_t window_compressed_wire = 0, window_inflated = 0, inflations = 0, cache_hits = 0;
  int64_t cache_mismatches = 0;
  std::unordered_map<uint64_t, Cached> cache;
  constexpr size_t kCacheMax = 4096;
  constexpr int64_t kCacheKeepMs = 5000;
  int64_t next_sweep_ms = 0;
  Inflater shared_inflater;
  bool measuring = false;
  double ramp_s = 0;
  const int64_t ramp_deadline_ms = nowMs() + 120 * 1000;
  int64_t end_ms = ramp_deadline_ms + int64_t{seconds} * 1000;
  int64_t window_start_ms = 0;
  std::vector<int64_t> pings_by_second;  // pings received in each second of the window
  int64_t agent_cpu0 = 0, self_cpu0 = 0;
  std::vector<epoll_event> events(1024);
  std::vector<char> buffer(256 * 1024);
  char* buf = buffer.data();

  // The fields of a message's text: the envelope's type and stream, then its seq and timestamp.
  auto readFields = [&](std::string_view text) {
    Fields f;
    std::string_view type = headField(text, "\"type\":\"");
    if (type == "update")
      f.kind = Fields::kUpdate;
    else if (type == "snapshot")
      f.kind = Fields::kSnapshot;
    else
      return f;
    f.sid = streamId(headField(text, "\"stream\":\""));
    f.ok = f.sid < kMaxStreams && tailInt(text, "\"seq\":", f.seq) &&
           tailInt(text, "\"timestamp\":", f.ts);
    return f;
  };

  // The fields of a compressed message and its inflated size; false when it does not inflate.
  auto readCompressed = [&](Client& c, std::string_view wire, int64_t got_ms, Fields& f,
                            size_t& inflated) {
    std::string_view text;
    if (c.inflater) {  // the server keeps its context: this client's own inflater, every time
      ++inflations;
      if (!c.inflater->run(wire, false, text)) return false;
      f = readFields(text);
      inflated = text.size();
      return true;
    }
    const uint64_t key = sampleKey(wire);
    auto it = cache.find(key);
    if (it != cache.end() && it->second.wire.size() == wire.size() &&
        std::memcmp(it->second.wire.data(), wire.data(), wire.size()) == 0) {
      ++cache_hits;
      it->second.used_ms = got_ms;
      f = it->second.fields;
      inflated = it->second.inflated;
      return true;
    }
    ++inflations;
    if (!shared_inflater.run(wire, true, text)) return false;
    f = readFields(text);
    inflated = text.size();
    if (it != cache.end()) {
      ++cache_mismatches;  // other bytes under the same key: inflated on their own
      return true;
    }
    if (cache.size() >= kCacheMax) cache.clear();  // not expected: a few distinct a second
    cache.emplace(key, Cached{std::string(wire), f, inflated, got_ms});
    return true;
  };

  // Handles one complete frame of an upgraded client; false when the client is done.
  auto onFrame = [&](Client& c, uint8_t byte0, std::string_view payload, int64_t got_ms) {
    const auto op = static_cast<Opcode>(byte0 & 0x0f);
    const bool rsv1 = (byte0 & 0x40) != 0;
    // The agent sends whole text frames only; RSV1 (compressed) only on a data frame of a
    // connection that negotiated permessage-deflate; RSV2 and RSV3 never.
    if (!(byte0 & 0x80) || (byte0 & 0x30) || op == Opcode::kContinuation || op == Opcode::kBinary ||
        (rsv1 && (!c.deflate || op != Opcode::kText))) {
      ++bad_frames;
      return true;
    }
    if (op == Opcode::kPing) {
      ++pings;
      if (measuring) {
        const auto sec = static_cast<size_t>(std::max<int64_t>(0, got_ms - window_start_ms) / 1000);
        if (pings_by_second.size() <= sec) pings_by_second.resize(sec + 1);
        ++pings_by_second[sec];
      }
      std::string pong = bb::ws::encodeFrame(Opcode::kPong, payload, 0x5A5A5A5A);
      send(c.fd, pong.data(), pong.size(), MSG_NOSIGNAL);
      return true;
    }
    if (op == Opcode::kClose) {
      ++closed_by_server;
      c.closed = true;
      return false;
    }
    if (op != Opcode::kText) return true;
    Fields f;
    size_t size = payload.size();
    if (rsv1) {
      if (!readCompressed(c, payload, got_ms, f, size)) {
        ++bad_frames;
        return true;
      }
      ++compressed;
    } else {
      f = readFields(payload);
    }
    ++messages;
    if (measuring) {
      ++window_messages;
      window_bytes += static_cast<int64_t>(size);
      window_wire_bytes += static_cast<int64_t>(payload.size());
      if (rsv1) {
        ++window_compressed;
        window_compressed_wire += static_cast<int64_t>(payload.size());
        window_inflated += static_cast<int64_t>(size);
      }
    }
    if (f.kind == Fields::kOther || !f.ok) return true;
    auto& last = c.last_seq[f.sid];
    if (last != 0 && f.seq > last + 1) c.gaps += f.seq - last - 1;
    last = f.seq;
    if (f.kind == Fields::kSnapshot) {
      ++snapshots;
      return true;
    }
    if (!measuring) return true;
    per_delivery.push_back(got_ms - f.ts);
    auto& u = updates[(uint64_t{f.sid} << 48) | static_cast<uint64_t>(f.seq)];
    u.timestamp = f.ts;
    ++u.delivered;
    u.last_ms = std::max(u.last_ms, got_ms);
    return true;
  };

  // Consumes the frames in `in` (complete ones); keeps the rest in c.partial.
  auto onBytes = [&](Client& c, const char* data, size_t size, int64_t got_ms) {
    std::string_view in(data, size);
    const bool carried = !c.partial.empty();
    if (carried) {
      c.partial.append(data, size);
      in = c.partial;
    }
    size_t used = 0;
    uint8_t byte0 = 0;
    std::string_view payload;
    while (!c.closed) {
      size_t n = parseFrame(in.substr(used), byte0, payload);
      if (n == 0) break;
      used += n;
      if (!onFrame(c, byte0, payload, got_ms)) break;
    }
    if (carried && used == c.partial.size())
      std::string().swap(c.partial);  // a client between frames holds no buffer
    else if (carried)
      c.partial.erase(0, used);
    else if (used < in.size())
      c.partial.assign(in.data() + used, in.size() - used);
  };

  while (nowMs() < end_ms) {
    while (static_cast<int>(clients.size()) < clients_n && pending < ramp)
      if (!open_one()) return 1;
    if (!measuring && ((static_cast<int>(clients.size()) == clients_n && pending == 0) ||
                       nowMs() >= ramp_deadline_ms)) {
      measuring = true;
      ramp_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_connect).count();
      window_start_ms = nowMs();
      end_ms = window_start_ms + int64_t{seconds} * 1000;
      if (agent_pid > 0) agent_cpu0 = processCpuUs(agent_pid);
      self_cpu0 = selfCpuUs();
    }
    if (!cache.empty() && nowMs() >= next_sweep_ms) {  // compressed payloads seen lately only
      const int64_t now = nowMs();
      next_sweep_ms = now + 1000;
      for (auto it = cache.begin(); it != cache.end();)
        it = now - it->second.used_ms > kCacheKeepMs ? cache.erase(it) : std::next(it);
    }
    const int wait_ms = static_cast<int>(clients.size()) < clients_n ? 1 : 100;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
    for (int i = 0; i < n; ++i) {
      Client& c = *clients[events[static_cast<size_t>(i)].data.u64];
      for (;;) {
        ssize_t r = recv(c.fd, buf, buffer.size(), 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          if (!c.closed) ++closed_by_server;
          if (!c.upgraded && !c.closed) --pending;
          c.closed = true;
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          break;
        }
        if (r < 0) break;
        const int64_t got_ms = nowMs();
        if (c.upgraded) {
          onBytes(c, buf, static_cast<size_t>(r), got_ms);
        } else {
          c.http.append(buf, static_cast<size_t>(r));
          auto end = c.http.find("\r\n\r\n");
          if (end == std::string::npos) continue;
          --pending;
          if (c.http.compare(0, 12, "HTTP/1.1 101") != 0) {
            if (refused++ == 0)
              std::fprintf(stderr, "upgrade refused: %s\n", c.http.substr(0, end).c_str());
            c.closed = true;
            epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
            break;
          }
          const DeflateAnswer ext =
              parseExtensions(std::string_view(c.http).substr(0, end), offer_deflate);
          if (!ext.error.empty()) {  // a browser fails the connection
            if (refused++ == 0) std::fprintf(stderr, "upgrade refused: %s\n", ext.error.c_str());
            c.closed = true;
            epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
            break;
          }
          c.deflate = ext.accepted;
          deflate_clients += ext.accepted;
          if (ext.accepted && !ext.server_no_context_takeover) {
            c.inflater = std::make_unique<Inflater>();
            ++context_clients;
          }
          c.upgraded = true;
          ++upgraded;
          std::string rest = c.http.substr(end + 4);
          c.http.clear();
          c.http.shrink_to_fit();
          onBytes(c, rest.data(), rest.size(), got_ms);
        }
        if (c.closed) {
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          break;
        }
        if (static_cast<size_t>(r) < buffer.size()) break;  // the socket is empty
      }
    }
  }
  const int64_t self_cpu = selfCpuUs() - self_cpu0;
  const int64_t agent_cpu = agent_pid > 0 ? processCpuUs(agent_pid) - agent_cpu0 : -1;

  // "Every client has it": updates that every connected client received, measured at the last.
  int64_t connected = 0, gaps = 0;
  for (auto& c : clients) {
    connected += c->upgraded && !c->closed;
    gaps += c->gaps;
  }
  std::vector<int64_t> all_have;
  std::vector<std::vector<int64_t>> per_stream(stream_names.size());
  int64_t partial = 0;
  for (auto& kv : updates) {
    const int64_t took = kv.second.last_ms - kv.second.timestamp;
    per_stream[kv.first >> 48].push_back(took);
    if (kv.second.delivered >= connected)
      all_have.push_back(took);
    else
      ++partial;
  }
  double connect_s =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t_connect).count();
  std::printf(
      "clients=%d upgraded=%lld refused=%lld connected_at_end=%lld closed_by_server=%lld "
      "ramp_seconds=%.1f (at most %lld handshakes at once)\n",
      clients_n, static_cast<long long>(upgraded), static_cast<long long>(refused),
      static_cast<long long>(connected), static_cast<long long>(closed_by_server), ramp_s,
      static_cast<long long>(ramp));
  std::printf(
      "elapsed_seconds=%.1f messages=%lld snapshots=%lld updates_distinct=%zu pings=%lld "
      "seq_gaps=%lld bad_frames=%lld\n",
      connect_s, static_cast<long long>(messages), static_cast<long long>(snapshots),
      updates.size(), static_cast<long long>(pings), static_cast<long long>(gaps),
      static_cast<long long>(bad_frames));
  std::printf("per_delivery_ms: n=%zu p50=%.0f p99=%.0f max=%.0f\n", per_delivery.size(),
              percentile(per_delivery, 50), percentile(per_delivery, 99),
              percentile(per_delivery, 100));
  std::printf(
      "all_clients_have_it_ms: updates=%zu p50=%.0f p99=%.0f max=%.0f "
      "(updates not seen by every client: %lld)\n",
      all_have.size(), percentile(all_have, 50), percentile(all_have, 99),
      percentile(all_have, 100), static_cast<long long>(partial));
  // The slowest updates, to tell a slow fan-out from one stream published apart from the others.
  std::vector<std::pair<int64_t, uint64_t>> slowest;
  for (auto& kv : updates)
    if (kv.second.delivered >= connected)
      slowest.emplace_back(kv.second.last_ms - kv.second.timestamp, kv.first);
  std::sort(slowest.rbegin(), slowest.rend());
  std::printf(
      "slowest updates (until every client has it; stream#seq ms @ms into the second "
      "+s into the window):");
  for (size_t i = 0; i < slowest.size() && i < 6; ++i) {
    const auto& u = updates[slowest[i].second];
    std::printf(" %s#%llu %lld @%lld +%llds", stream_names[slowest[i].second >> 48].c_str(),
                static_cast<unsigned long long>(slowest[i].second & ((uint64_t{1} << 48) - 1)),
                static_cast<long long>(slowest[i].first),
                static_cast<long long>(u.timestamp % 1000),
                static_cast<long long>((u.timestamp - window_start_ms) / 1000));
  }
  std::printf("\n");
  // Keep-alive pings land in the seconds 20 s after the clients connected (the agent pings a
  // client that sent nothing for ws ping interval): the seconds they share with a block.
  std::printf("pings by second of the window:");
  for (size_t s = 0; s < pings_by_second.size(); ++s)
    if (pings_by_second[s])
      std::printf(" +%zus:%lld", s, static_cast<long long>(pings_by_second[s]));
  std::printf("\n");
  // The worst update of each second of the window: one bad second from a steady slow tail.
  std::vector<int64_t> worst_by_second;
  for (auto& kv : updates) {
    if (kv.second.delivered < connected) continue;
    const int64_t sec = (kv.second.timestamp - window_start_ms) / 1000;
    if (sec < 0) continue;
    if (worst_by_second.size() <= static_cast<size_t>(sec))
      worst_by_second.resize(static_cast<size_t>(sec) + 1, -1);
    worst_by_second[static_cast<size_t>(sec)] = std::max(worst_by_second[static_cast<size_t>(sec)],
                                                         kv.second.last_ms - kv.second.timestamp);
  }
  std::printf("until every client has it, the worst update of each second (+s:ms):");
  for (size_t s = 0; s < worst_by_second.size(); ++s)
    if (worst_by_second[s] >= 0)
      std::printf(" +%zu:%lld", s, static_cast<long long>(worst_by_second[s]));
  std::printf("\n");
  std::printf("all_clients_have_it_ms by stream:");
  for (size_t s = 0; s < stream_names.size(); ++s)
    if (!per_stream[s].empty())
      std::printf(" %s(n=%zu p50=%.0f max=%.0f)", stream_names[s].c_str(), per_stream[s].size(),
                  percentile(per_stream[s], 50), percentile(per_stream[s], 100));
  std::printf("\n");
  if (offer_deflate)
    std::printf(
        "deflate: offered; negotiated by %lld of %lld upgraded clients (%lld of them without "
        "server_no_context_takeover, one inflater each); compressed messages=%lld "
        "inflations=%lld cache_hits=%lld cache_mismatches=%lld\n",
        static_cast<long long>(deflate_clients), static_cast<long long>(upgraded),
        static_cast<long long>(context_clients), static_cast<long long>(compressed),
        static_cast<long long>(inflations), static_cast<long long>(cache_hits),
        static_cast<long long>(cache_mismatches));
  else
    std::printf("deflate: not offered\n");
  // CPU per delivered message over the measured window: the figure the machine's load moves
  // least (the two processes share the cores). MB: the messages' text (inflated where they were
  // compressed); wire: the payloads as received, then the compressed ones alone.
  const double per = window_messages > 0 ? static_cast<double>(window_messages) : 1.0;
  std::printf(
      "window: %lld messages, %.1f MB in %d s, wire %.1f MB (compressed: %lld messages, "
      "%.1f MB on the wire, %.1f MB inflated); cpu_us_per_message: agent=%.2f bench=%.2f "
      "(cpu ms: agent=%lld bench=%lld)\n",
      static_cast<long long>(window_messages), static_cast<double>(window_bytes) / 1e6, seconds,
      static_cast<double>(window_wire_bytes) / 1e6, static_cast<long long>(window_compressed),
      static_cast<double>(window_compressed_wire) / 1e6, static_cast<double>(window_inflated) / 1e6,
      agent_cpu >= 0 ? static_cast<double>(agent_cpu) / per : -1.0,
      static_cast<double>(self_cpu) / per, static_cast<long long>(agent_cpu / 1000),
      static_cast<long long>(self_cpu / 1000));
  for (auto& c : clients) close(c->fd);
  return closed_by_server == 0 && connected == clients_n ? 0 : 3;
}
