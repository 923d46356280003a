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

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
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

struct Client {
  int fd = -1;
  bool upgraded = false;
  bool closed = false;
  std::string http;     // handshake answer so far
  std::string partial;  // the start of a frame the next read completes
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
               "[--seconds 30] [--ramp 200] [--agent-pid PID]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, clients_n = 1000, seconds = 30, agent_pid = 0;
  int64_t ramp = 200;
  std::string path = "/theblock/ws";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
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
                                "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

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
  int64_t bad_frames = 0, window_messages = 0, window_bytes = 0;
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

  // Handles one complete frame of an upgraded client; false when the client is done.
  auto onFrame = [&](Client& c, uint8_t byte0, std::string_view payload, int64_t got_ms) {
    const auto op = static_cast<Opcode>(byte0 & 0x0f);
    if (!(byte0 & 0x80) || op == Opcode::kContinuation || op == Opcode::kBinary) {
      ++bad_frames;  // the agent sends whole text frames only
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
    ++messages;
    if (measuring) {
      ++window_messages;
      window_bytes += static_cast<int64_t>(payload.size());
    }
    std::string_view type = headField(payload, "\"type\":\"");
    if (type != "update" && type != "snapshot") return true;
    const size_t sid = streamId(headField(payload, "\"stream\":\""));
    int64_t seq = 0, ts = 0;
    if (sid >= kMaxStreams || !tailInt(payload, "\"seq\":", seq) ||
        !tailInt(payload, "\"timestamp\":", ts))
      return true;
    auto& last = c.last_seq[sid];
    if (last != 0 && seq > last + 1) c.gaps += seq - last - 1;
    last = seq;
    if (type == "snapshot") {
      ++snapshots;
      return true;
    }
    if (!measuring) return true;
    per_delivery.push_back(got_ms - ts);
    auto& u = updates[(uint64_t{sid} << 48) | static_cast<uint64_t>(seq)];
    u.timestamp = ts;
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
  // CPU per delivered message over the measured window: the figure the machine's load moves
  // least (the two processes share the cores).
  const double per = window_messages > 0 ? static_cast<double>(window_messages) : 1.0;
  std::printf(
      "window: %lld messages, %.1f MB in %d s; cpu_us_per_message: agent=%.2f bench=%.2f "
      "(cpu ms: agent=%lld bench=%lld)\n",
      static_cast<long long>(window_messages), static_cast<double>(window_bytes) / 1e6, seconds,
      agent_cpu >= 0 ? static_cast<double>(agent_cpu) / per : -1.0,
      static_cast<double>(self_cpu) / per, static_cast<long long>(agent_cpu / 1000),
      static_cast<long long>(self_cpu / 1000));
  for (auto& c : clients) close(c->fd);
  return closed_by_server == 0 && connected == clients_n ? 0 : 3;
}
