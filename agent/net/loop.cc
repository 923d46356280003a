#include "net/loop.h"

#include <errno.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "net/limits.h"
#include "util/log.h"

namespace bb::net {

Loop::Loop(const std::string& name) : name_(name) {
  epfd_ = epoll_create1(EPOLL_CLOEXEC);
  evfd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (epfd_ < 0 || evfd_ < 0) {
    const std::string why = std::strerror(errno);
    if (epfd_ >= 0) ::close(epfd_);
    if (evfd_ >= 0) ::close(evfd_);
    throw std::runtime_error(name + ": cannot create an event loop: " + why);
  }
  add(evfd_, kWakeKey, EPOLLIN);
}

Loop::~Loop() {
  stop();
  ::close(epfd_);
  ::close(evfd_);
}

bool Loop::add(int fd, uint64_t key, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
}

bool Loop::modify(int fd, uint64_t key, uint32_t events) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = key;
  return epoll_ctl(epfd_, EPOLL_CTL_MOD, fd, &ev) == 0;
}

void Loop::remove(int fd) { epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

void Loop::wake() {
  uint64_t one = 1;
  ssize_t n = ::write(evfd_, &one, sizeof one);
  (void)n;  // the counter only saturates when already signalled
}

void Loop::start(Handler& handler, const std::string& thread_name) {
  if (thread_.joinable()) return;
  stopping_ = false;
  thread_ = std::thread([this, &handler] { run(handler); });
  pthread_setname_np(thread_.native_handle(), thread_name.substr(0, 15).c_str());
}

void Loop::requestStop() {
  stopping_ = true;
  wake();
}

void Loop::stop() {
  requestStop();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Loop::run(Handler& handler) {
  epoll_event events[256];
  auto next_sweep = Clock::now() + kSweep;
  std::vector<uint64_t> ready;
  while (!stopping()) {
    // Bytes waiting inside a TLS stream raise no event: do not sleep on them.
    int timeout = ready_.empty() ? static_cast<int>(kSweep.count()) : 0;
    if (deadlineSet() && timeout > 0) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline_ - Clock::now());
      timeout = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(timeout, left.count())));
    }
    const int n = epoll_wait(epfd_, events, 256, timeout);
    if (n < 0 && errno != EINTR) {
      logError("net", name_ + ": epoll_wait failed: " + std::strerror(errno));
      break;
    }
    now_ = Clock::now();
    ready.clear();
    ready.swap(ready_);
    for (uint64_t key : ready) handler.onEvent(key, EPOLLIN);
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u64 == kWakeKey) {
        uint64_t v;
        while (::read(evfd_, &v, sizeof v) > 0) {
        }
        handler.onWake();
      } else {
        handler.onEvent(events[i].data.u64, events[i].events);
      }
    }
    if (deadlineSet() && Clock::now() >= deadline_) {
      deadline_ = Clock::time_point{};
      handler.onDeadline();
    }
    handler.onTurnEnd();
    if (now_ >= next_sweep) {
      handler.onSweep(now_);
      handler.onTurnEnd();
      next_sweep = now_ + kSweep;
    }
  }
  now_ = Clock::now();
  handler.onStop();
  handler.onTurnEnd();
}

}  // namespace bb::net
