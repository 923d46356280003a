#include "support/dribble_peer.h"

#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

#include "support/await.h"

namespace bbtest {

using Clock = std::chrono::steady_clock;

DribblePeer::DribblePeer(std::string reply, std::chrono::milliseconds gap,
                         std::chrono::milliseconds for_at_most, bool head_at_once)
    : reply_(std::move(reply)), gap_(gap), for_at_most_(for_at_most), head_at_once_(head_at_once) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("DribblePeer: cannot listen on 127.0.0.1");
  }
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { acceptLoop(); });
}

DribblePeer::~DribblePeer() {
  stop_ = true;
  acceptor_.join();
  for (auto& t : connections_) t.join();
  ::close(listen_fd_);
}

bool DribblePeer::waitForRequests(int n, std::chrono::milliseconds limit) const {
  return eventually([&] { return requests_.load() >= n; }, limit, std::chrono::milliseconds(10));
}

std::string DribblePeer::jsonReply(const std::string& result, size_t pad) {
  const std::string body = "{\"jsonrpc\":\"2.0\",\"result\":" + result + "}";
  std::string head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n";
  if (pad > 0) head += "X-Pad: " + std::string(pad, 'p') + "\r\n";
  return head + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

void DribblePeer::acceptLoop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd >= 0) connections_.emplace_back([this, fd] { serve(fd); });
  }
}

void DribblePeer::serve(int fd) {
  const auto until = Clock::now() + for_at_most_;
  // Read one request: its head, then as many body bytes as Content-Length says.
  std::string in;
  char buf[4096];
  size_t need = std::string::npos;
  while (!stop_ && Clock::now() < until) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 20) <= 0) continue;
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n <= 0) break;
    in.append(buf, static_cast<size_t>(n));
    const size_t blank = in.find("\r\n\r\n");
    if (blank != std::string::npos && need == std::string::npos) {
      size_t length = 0;
      const size_t cl = in.find("Content-Length: ");
      if (cl != std::string::npos && cl < blank) length = std::stoul(in.substr(cl + 16));
      need = blank + 4 + length;
    }
    if (need != std::string::npos && in.size() >= need) break;
  }
  if (need != std::string::npos && in.size() >= need) {
    ++requests_;
    size_t sent = 0;
    if (head_at_once_) {
      sent = reply_.find("\r\n\r\n") + 4;
      (void)::send(fd, reply_.data(), sent, MSG_NOSIGNAL);
    }
    while (!stop_ && sent < reply_.size() && Clock::now() < until) {
      if (::send(fd, reply_.data() + sent, 1, MSG_NOSIGNAL) != 1) break;
      ++sent;
      std::this_thread::sleep_for(gap_);  // dribbling is the behaviour under test: not awaited
    }
  }
  ::close(fd);
}

}  // namespace bbtest
