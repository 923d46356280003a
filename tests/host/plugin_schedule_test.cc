// When a plugin's next collection is due (PluginRuntime::nextSlot): on the grid of its interval
// from the first one, whenever its thread woke up, with the slots passed while collecting
// skipped and counted.
#include <gtest/gtest.h>

#include "host/plugin_runtime.h"

namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

TEST(PluginSchedule, TheNextSlotIsOnTheGridWhateverTheWakeUpLatency) {
  const Clock::time_point t0{};
  const milliseconds interval(500);
  auto slot = t0;
  // A thread that wakes up 1 ms after each slot and collects for 3 ms: after 1 000 runs the
  // slots are still those of the grid (counted from the wake-up, they drifted by 1 s).
  for (int run = 0; run < 1000; ++run) {
    const auto woke = slot + milliseconds(1);
    int64_t skipped = -1;
    slot = bb::PluginRuntime::nextSlot(slot, woke + milliseconds(3), interval, skipped);
    EXPECT_EQ(skipped, 0);
  }
  EXPECT_EQ(slot, t0 + interval * 1000);
}

TEST(PluginSchedule, SlotsPassedWhileCollectingAreSkippedAndCounted) {
  const Clock::time_point t0{};
  const milliseconds interval(100);
  int64_t skipped = -1;
  // 250 ms of collecting: the slots at 100 and 200 ms passed, the next is at 300 ms.
  EXPECT_EQ(bb::PluginRuntime::nextSlot(t0, t0 + milliseconds(250), interval, skipped),
            t0 + milliseconds(300));
  EXPECT_EQ(skipped, 2);
  // Finishing exactly on a slot: that slot passed too.
  EXPECT_EQ(bb::PluginRuntime::nextSlot(t0, t0 + milliseconds(100), interval, skipped),
            t0 + milliseconds(200));
  EXPECT_EQ(skipped, 1);
  // Finishing before the next slot skips none.
  EXPECT_EQ(bb::PluginRuntime::nextSlot(t0, t0 + milliseconds(99), interval, skipped),
            t0 + milliseconds(100));
  EXPECT_EQ(skipped, 0);
}

}  // namespace
