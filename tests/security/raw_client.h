// A raw TCP client for the security tests: sends exactly the bytes given (malformed, oversized,
// or half a request) and reads what comes back, so the tests see what a hostile client sees.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string>

namespace sectest {

/// One connection to 127.0.0.1:port. Not thread-safe; closed on destruction.
class RawClient {
 public:
  explicit RawClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      ::close(fd_);
      fd_ = -1;
    }
  }
  ~RawClient() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawClient(const RawClient&) = delete;
  RawClient& operator=(const RawClient&) = delete;

  bool connected() const { return fd_ >= 0; }
  /// Sends all of `bytes`; false if the peer closed.
  bool send(const std::string& bytes) {
    size_t off = 0;
    while (off < bytes.size()) {
      ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  /// Reads until the peer closes or `timeout` passes; `closed()` tells which.
  std::string readAll(std::chrono::milliseconds timeout) {
    std::string out;
    out.swap(rest_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    closed_ = false;
    char buf[8192];
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) return out;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
  }
  /// Reads one answer: up to the end of the headers plus Content-Length bytes. What came after
  /// it (pipelined answers) is kept for the next read.
  std::string readResponse(std::chrono::milliseconds timeout) {
    std::string out;
    out.swap(rest_);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    char buf[8192];
    while (std::chrono::steady_clock::now() < deadline) {
      size_t end = out.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t cl = lower(out.substr(0, end)).find("content-length:");
        size_t len = cl == std::string::npos ? 0 : std::stoul(out.substr(cl + 15));
        if (out.size() >= end + 4 + len) {
          rest_ = out.substr(end + 4 + len);
          out.resize(end + 4 + len);
          return out;
        }
      }
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        return out;
      }
      out.append(buf, static_cast<size_t>(n));
    }
    return out;
  }
  bool closed() const { return closed_; }

  static std::string lower(std::string s) {
    for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return s;
  }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string rest_;  // read past the last answer
};

/// The status code of a raw answer ("HTTP/1.1 404 ..."), 0 if none.
inline int statusOf(const std::string& answer) {
  if (answer.rfind("HTTP/1.", 0) != 0 || answer.size() < 12) return 0;
  return std::atoi(answer.substr(9, 3).c_str());
}

/// One request on a fresh connection; the whole answer (the server closes or answers once).
inline std::string exchange(int port, const std::string& request) {
  RawClient c(port);
  if (!c.connected() || !c.send(request)) return "";
  return c.readResponse(std::chrono::seconds(20));
}

}  // namespace sectest
