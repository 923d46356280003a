#include "ipc/channel.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace bb::ipc {
namespace {

void putU32(std::string& out, uint32_t v) { out.append(reinterpret_cast<const char*>(&v), 4); }

bool getU32(const char*& p, const char* end, uint32_t& v) {
  if (end - p < 4) return false;
  std::memcpy(&v, p, 4);
  p += 4;
  return true;
}

// Reads exactly `len` bytes; false on end of stream or error.
bool readFull(int fd, char* buf, size_t len) {
  while (len > 0) {
    ssize_t n = ::recv(fd, buf, len, 0);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    buf += n;
    len -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

const std::string& Message::field(size_t i) const {
  static const std::string kEmpty;
  return i < fields.size() ? fields[i] : kEmpty;
}

int64_t Message::integer(size_t i, int64_t fallback) const {
  const std::string& s = field(i);
  if (s.empty() || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9'))) return fallback;
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return fallback;
  return v;
}

std::string encode(const Message& m) {
  size_t size = 1 + 4 + 4;
  for (const auto& f : m.fields) size += 4 + f.size();
  std::string out;
  out.reserve(4 + size);
  putU32(out, static_cast<uint32_t>(size));
  out.push_back(static_cast<char>(m.kind));
  putU32(out, m.id);
  putU32(out, static_cast<uint32_t>(m.fields.size()));
  for (const auto& f : m.fields) {
    putU32(out, static_cast<uint32_t>(f.size()));
    out += f;
  }
  return out;
}

std::optional<Message> decode(const char* data, size_t len) {
  const char* p = data;
  const char* end = data + len;
  if (len < 9) return std::nullopt;
  Message m;
  m.kind = static_cast<uint8_t>(*p++);
  uint32_t count = 0;
  if (!getU32(p, end, m.id) || !getU32(p, end, count)) return std::nullopt;
  // Each field takes at least its 4-byte length: a count past that is a lie.
  if (count > static_cast<size_t>(end - p) / 4) return std::nullopt;
  m.fields.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t n = 0;
    if (!getU32(p, end, n) || static_cast<size_t>(end - p) < n) return std::nullopt;
    m.fields.emplace_back(p, n);
    p += n;
  }
  if (p != end) return std::nullopt;
  return m;
}

Channel::Channel(int fd, Handler on_request, std::function<void()> on_close)
    : fd_(fd), on_request_(std::move(on_request)), on_close_(std::move(on_close)) {}

Channel::~Channel() {
  close();
  if (reader_.joinable()) {
    if (reader_.get_id() == std::this_thread::get_id())
      reader_.detach();  // destroyed from its own handler: nothing left to wait for
    else
      reader_.join();
  }
  ::close(fd_);
}

void Channel::start() {
  reader_ = std::thread([this] { readLoop(); });
}

bool Channel::send(const Message& m) {
  const std::string frame = encode(m);
  std::lock_guard<std::mutex> lock(write_mutex_);
  const char* p = frame.data();
  size_t left = frame.size();
  while (left > 0) {
    ssize_t n = ::send(fd_, p, left, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
  return true;
}

std::optional<Message> Channel::call(uint8_t kind, std::vector<std::string> fields,
                                     std::chrono::milliseconds timeout) {
  Message m;
  m.kind = kind;
  m.fields = std::move(fields);
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return std::nullopt;
    m.id = next_id_++;
    if (next_id_ == 0) next_id_ = 1;
    pending_[m.id];
  }
  const uint32_t id = m.id;
  if (!send(m)) {
    close();
    std::lock_guard<std::mutex> lock(mutex_);
    pending_.erase(id);
    return std::nullopt;
  }
  std::unique_lock<std::mutex> lock(mutex_);
  cv_.wait_for(lock, timeout, [&] { return closed_ || pending_[id].has_value(); });
  std::optional<Message> out = std::move(pending_[id]);
  pending_.erase(id);
  return out;
}

bool Channel::reply(uint32_t id, std::vector<std::string> fields) {
  if (closed()) return false;
  Message m;
  m.kind = kReply;
  m.id = id;
  m.fields = std::move(fields);
  if (send(m)) return true;
  close();
  return false;
}

void Channel::close() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (closed_) return;
    closed_ = true;
  }
  ::shutdown(fd_, SHUT_RDWR);
  cv_.notify_all();
}

void Channel::join() {
  close();
  if (reader_.joinable() && reader_.get_id() != std::this_thread::get_id()) reader_.join();
}

bool Channel::closed() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return closed_;
}

void Channel::readLoop() {
  std::string body;
  for (;;) {
    uint32_t len = 0;
    if (!readFull(fd_, reinterpret_cast<char*>(&len), 4) || len > kMaxFrameBytes) break;
    body.resize(len);
    if (!readFull(fd_, body.data(), len)) break;
    std::optional<Message> m = decode(body.data(), body.size());
    if (!m) break;
    if (m->kind == kReply) {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = pending_.find(m->id);
      if (it != pending_.end()) it->second = std::move(*m);  // else: its caller gave up
      cv_.notify_all();
    } else if (on_request_) {
      on_request_(std::move(*m));
    }
  }
  finish();
}

void Channel::finish() {
  close();
  if (on_close_) on_close_();
}

}  // namespace bb::ipc
