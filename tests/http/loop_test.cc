// net::Loop's own services, without a socket: the wake-up from another thread and the deadline
// a handler sets (what a WebSocket loop waits on to gather a block's publications).
#include "net/loop.h"

#include <gtest/gtest.h>

#include <atomic>

#include "support/await.h"

namespace {

struct Recorder : bb::net::Loop::Handler {
  explicit Recorder(bb::net::Loop& l) : loop(l) {}
  void onEvent(uint64_t, uint32_t) override {}
  void onSweep(bb::net::Clock::time_point) override {}
  void onWake() override {
    ++wakes;
    // Two deadlines set before the first comes: the later replaces the earlier.
    loop.wakeAt(bb::net::Clock::now() + std::chrono::milliseconds(5));
    loop.wakeAt(bb::net::Clock::now() + std::chrono::milliseconds(20));
    set_at = bb::net::Clock::now();
  }
  void onDeadline() override {
    ++deadlines;
    if (bb::net::Clock::now() < set_at + std::chrono::milliseconds(20)) ++early;
  }
  bb::net::Loop& loop;
  std::atomic<int> wakes{0}, deadlines{0}, early{0};
  bb::net::Clock::time_point set_at{};
};

TEST(NetLoop, ADeadlineComesOnceAndNotBeforeItsTime) {
  bb::net::Loop loop("test");
  Recorder r(loop);
  loop.start(r, "bb-test-loop");
  loop.wake();
  ASSERT_TRUE(bbtest::eventually([&] { return r.deadlines.load() >= 1; }));
  // Handled, the deadline is cleared: a loop that kept calling it would count many by the
  // time the second wake-up's deadline comes.
  loop.wake();
  ASSERT_TRUE(bbtest::eventually([&] { return r.deadlines.load() >= 2; }));
  loop.stop();
  EXPECT_GE(r.wakes.load(), 2);  // stop() wakes it once more
  EXPECT_EQ(r.deadlines.load(), 2);
  EXPECT_EQ(r.early.load(), 0);
}

}  // namespace
