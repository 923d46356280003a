// bb-ws-bench: N concurrent WebSocket clients on one epoll thread against a running agent's
// dashboard stream. Measures, for every "update" message, the delay from the agent's snapshot
// change (the message's "timestamp", agent wall clock in ms) until each client has it, and
// until every client has it. Same machine, same clock. Not a test: see bench/ws/run.sh.
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "ws/frame.h"

using bb::ws::FrameDecoder;
using bb::ws::Message;
using bb::ws::Opcode;

namespace {

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Client {
  int fd = -1;
  bool upgraded = false;
  bool closed = false;
  std::string http;  // handshake answer so far
  FrameDecoder decoder{false, 64 * 1024 * 1024};
  std::map<std::string, int64_t> last_seq;
  int64_t gaps = 0;
};

struct Update {
  int64_t timestamp = 0;
  int delivered = 0;
  int64_t last_ms = 0;  // when the last client got it
};

// The value after `"key":` searched from the end (our fields come last in every message).
bool tailInt(const std::string& s, const char* key, int64_t& out) {
  std::string k = std::string("\"") + key + "\":";
  auto at = s.rfind(k);
  if (at == std::string::npos) return false;
  out = std::strtoll(s.c_str() + at + k.size(), nullptr, 10);
  return true;
}

std::string headField(const std::string& s, const char* key) {
  std::string k = std::string("\"") + key + "\":\"";
  auto at = s.find(k);
  if (at == std::string::npos || at > 64) return "";
  auto end = s.find('"', at + k.size());
  return s.substr(at + k.size(), end - at - k.size());
}

double percentile(std::vector<int64_t> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size() - 1) + 0.5);
  return static_cast<double>(v[std::min(i, v.size() - 1)]);
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: bb-ws-bench --port PORT [--path /theblock/ws] [--clients 1000] "
               "[--seconds 30] [--ramp 200]\n");
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  int port = 0, clients_n = 1000, seconds = 30;
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
    else
      usage();
  }
  if (port <= 0 || clients_n <= 0) usage();

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
    ev.events = EPOLLIN;
    ev.data.u64 = clients.size();
    epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
    clients.push_back(std::move(c));
    ++pending;
    return true;
  };

  std::map<std::pair<std::string, int64_t>, Update> updates;
  std::vector<int64_t> per_delivery;
  int64_t messages = 0, snapshots = 0, upgraded = 0, closed_by_server = 0, pings = 0;
  bool measuring = false;
  double ramp_s = 0;
  const int64_t ramp_deadline_ms = nowMs() + 120 * 1000;
  int64_t end_ms = ramp_deadline_ms + int64_t{seconds} * 1000;
  std::vector<epoll_event> events(1024);
  char buf[64 * 1024];
  while (nowMs() < end_ms) {
    while (static_cast<int>(clients.size()) < clients_n && pending < ramp)
      if (!open_one()) return 1;
    if (!measuring && ((static_cast<int>(clients.size()) == clients_n && pending == 0) ||
                       nowMs() >= ramp_deadline_ms)) {
      measuring = true;
      ramp_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_connect).count();
      end_ms = nowMs() + int64_t{seconds} * 1000;
    }
    const int wait_ms = static_cast<int>(clients.size()) < clients_n ? 1 : 100;
    int n = epoll_wait(ep, events.data(), static_cast<int>(events.size()), wait_ms);
    for (int i = 0; i < n; ++i) {
      Client& c = *clients[events[static_cast<size_t>(i)].data.u64];
      for (;;) {
        ssize_t r = recv(c.fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
          if (!c.closed) ++closed_by_server;
          if (!c.upgraded && !c.closed) --pending;
          c.closed = true;
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          break;
        }
        if (r < 0) break;
        int64_t got_ms = nowMs();
        const char* data = buf;
        size_t size = static_cast<size_t>(r);
        if (!c.upgraded) {
          c.http.append(data, size);
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
          c.decoder.feed(rest.data(), rest.size());
        } else {
          c.decoder.feed(data, size);
        }
        Message m;
        for (;;) {
          auto st = c.decoder.next(m);
          if (st != FrameDecoder::Status::kMessage) break;
          if (m.op == Opcode::kPing) {
            ++pings;
            std::string pong = bb::ws::encodeFrame(Opcode::kPong, m.payload, 0x5A5A5A5A);
            send(c.fd, pong.data(), pong.size(), MSG_NOSIGNAL);
            continue;
          }
          if (m.op == Opcode::kClose) {
            ++closed_by_server;
            c.closed = true;
            break;
          }
          if (m.op != Opcode::kText) continue;
          ++messages;
          std::string type = headField(m.payload, "type");
          if (type != "update" && type != "snapshot") continue;
          std::string stream = headField(m.payload, "stream");
          int64_t seq = 0, ts = 0;
          if (!tailInt(m.payload, "seq", seq) || !tailInt(m.payload, "timestamp", ts)) continue;
          auto& last = c.last_seq[stream];
          if (last != 0 && seq > last + 1) c.gaps += seq - last - 1;
          last = seq;
          if (type == "snapshot") {
            ++snapshots;
            continue;
          }
          if (!measuring) continue;
          per_delivery.push_back(got_ms - ts);
          auto& u = updates[{stream, seq}];
          u.timestamp = ts;
          ++u.delivered;
          u.last_ms = std::max(u.last_ms, got_ms);
        }
        if (c.closed) {
          epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
          break;
        }
      }
    }
  }

  // "Every client has it": updates that every connected client received, measured at the last.
  int64_t connected = 0, gaps = 0;
  for (auto& c : clients) {
    connected += c->upgraded && !c->closed;
    gaps += c->gaps;
  }
  std::vector<int64_t> all_have;
  int64_t partial = 0;
  for (auto& kv : updates) {
    if (kv.second.delivered >= connected)
      all_have.push_back(kv.second.last_ms - kv.second.timestamp);
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
      "seq_gaps=%lld\n",
      connect_s, static_cast<long long>(messages), static_cast<long long>(snapshots),
      updates.size(), static_cast<long long>(pings), static_cast<long long>(gaps));
  std::printf("per_delivery_ms: n=%zu p50=%.0f p99=%.0f max=%.0f\n", per_delivery.size(),
              percentile(per_delivery, 50), percentile(per_delivery, 99),
              percentile(per_delivery, 100));
  std::printf(
      "all_clients_have_it_ms: updates=%zu p50=%.0f p99=%.0f max=%.0f "
      "(updates not seen by every client: %lld)\n",
      all_have.size(), percentile(all_have, 50), percentile(all_have, 99),
      percentile(all_have, 100), static_cast<long long>(partial));
  std::map<std::string, std::vector<int64_t>> per_stream;
  for (auto& kv : updates)
    per_stream[kv.first.first].push_back(kv.second.last_ms - kv.second.timestamp);
  std::printf("all_clients_have_it_ms by stream:");
  for (auto& kv : per_stream)
    std::printf(" %s(n=%zu p50=%.0f max=%.0f)", kv.first.c_str(), kv.second.size(),
                percentile(kv.second, 50), percentile(kv.second, 100));
  std::printf("\n");
  for (auto& c : clients) close(c->fd);
  return closed_by_server == 0 && connected == clients_n ? 0 : 3;
}
