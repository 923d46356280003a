#include "net/stream.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <utility>

#include "net/tls.h"

namespace bb::net {
namespace {

// Pieces gathered into one TLS record rather than one record each (a head and its body).
constexpr size_t kTlsGather = 16 * 1024;

long fromTls(long n) {
  if (n > 0) return n;
  if (n == kTlsClosed) return 0;
  return n == kTlsWantRead || n == kTlsWantWrite ? Stream::kWouldBlock : Stream::kBroken;
}

}  // namespace

Stream::Stream(int fd, const TlsContext& context) : fd_(fd), api_(&context.api()) {
  tls_ = context.open(fd);
}

Stream& Stream::operator=(Stream&& o) noexcept {
  if (this == &o) return *this;
  close();
  fd_ = std::exchange(o.fd_, -1);
  api_ = std::exchange(o.api_, nullptr);
  tls_ = std::exchange(o.tls_, nullptr);
  handshaken_ = o.handshaken_;
  starved_ = o.starved_;
  read_wants_write_ = o.read_wants_write_;
  write_wants_read_ = o.write_wants_read_;
  return *this;
}

long Stream::handshake() {
  if (!tls_ || handshaken_) return 1;
  const long r = api_->handshake(tls_);
  read_wants_write_ = r == kTlsWantWrite;
  starved_ = r == kTlsWantRead;
  if (r == 1) handshaken_ = true;
  return r == 1 ? 1 : fromTls(r == kTlsClosed ? kTlsError : r);
}

long Stream::read(char* buf, size_t len) {
  if (!tls_) {
    for (;;) {
      ssize_t n = ::recv(fd_, buf, len, 0);
      if (n >= 0) return static_cast<long>(n);
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? kWouldBlock : kBroken;
    }
  }
  const long n = api_->read(tls_, buf, len);
  read_wants_write_ = n == kTlsWantWrite;
  starved_ = n == kTlsWantRead;
  return fromTls(n);
}

long Stream::write(const char* data, size_t len) {
  if (!tls_) {
    for (;;) {
      ssize_t n = ::send(fd_, data, len, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<long>(n);
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? kWouldBlock : kBroken;
    }
  }
  const long n = api_->write(tls_, data, len);
  write_wants_read_ = n == kTlsWantRead;
  return n == kTlsClosed ? kBroken : fromTls(n);
}

long Stream::writev(const iovec* iov, size_t count) {
  if (count == 0) return 0;
  if (!tls_) {
    msghdr msg{};
    msg.msg_iov = const_cast<iovec*>(iov);
    msg.msg_iovlen = count;
    for (;;) {
      ssize_t n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
      if (n >= 0) return static_cast<long>(n);
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? kWouldBlock : kBroken;
    }
  }
  if (count == 1 || iov[0].iov_len >= kTlsGather)
    return write(static_cast<const char*>(iov[0].iov_base), iov[0].iov_len);
  // Small pieces in one record. A retry after kWouldBlock gathers the same bytes first (more
  // may follow them), as OpenSSL asks. The buffer is on the stack of the loop that writes, not
  // thread_local: a module's static TLS is zeroed on every thread the process starts (about 30
  // in the agent), whether or not it ever writes over TLS.
  char gather[kTlsGather];
  size_t used = 0;
  for (size_t i = 0; i < count && used < kTlsGather; ++i) {
    const size_t n = std::min(iov[i].iov_len, kTlsGather - used);
    std::memcpy(gather + used, iov[i].iov_base, n);
    used += n;
  }
  return write(gather, used);
}

// What OpenSSL holds after a read that wanted more bytes is at most part of a record: only the
// socket can complete it, and epoll says when.
bool Stream::buffered() const { return tls_ && !starved_ && api_->pending(tls_) > 0; }

bool Stream::moreToRead(size_t got, size_t asked) const { return tls_ ? buffered() : got == asked; }

bool Stream::releaseBuffers() { return tls_ && api_->release_buffers(tls_) == 1; }

void Stream::keepBuffers(bool keep) {
  if (!tls_) return;
  api_->keep_buffers(tls_, keep ? 1 : 0);
  if (!keep) releaseBuffers();  // what it holds now goes at once, unless bytes are in it
}

std::string Stream::lastError() const {
  if (!api_) return std::strerror(errno);
  char why[512];
  api_->last_error(why, sizeof why);
  return why;
}

void Stream::shutdownWrite() {
  if (fd_ < 0) return;
  if (tls_) {
    api_->close(tls_);  // close_notify, then what comes is dropped unread
    tls_ = nullptr;
    starved_ = read_wants_write_ = write_wants_read_ = false;
  }
  ::shutdown(fd_, SHUT_WR);
}

void Stream::close() {
  if (tls_) api_->close(tls_);
  tls_ = nullptr;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

}  // namespace bb::net
