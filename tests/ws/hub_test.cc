// When the stream hub says a message's data changed (its "timestamp"): the first change signalled
// since the last pass, or the pass's own time when only the timer woke the hub.
#include <gtest/gtest.h>

#include "ws/stream_hub.h"

using bb::ws::ChangeTime;

TEST(HubChangeTime, APassCarriesTheFirstChangeSignalledSinceTheLast) {
  ChangeTime t;
  t.signal(100);
  t.signal(150);  // more of the same block: the change began at 100
  EXPECT_EQ(t.take(200), 100);
  t.signal(400);
  EXPECT_EQ(t.take(450), 400);
}

TEST(HubChangeTime, ATimerPassIsStampedWithItsOwnTimeNotAnEarlierChange) {
  // A pass of the timed streams (a market turning stale with no publish) used to carry the time
  // of the change the pass before it had already published: 500 ms old at a 500 ms interval,
  // as if the agent had taken that long to send it.
  ChangeTime t;
  t.signal(1000);
  EXPECT_EQ(t.take(1010), 1000);
  EXPECT_EQ(t.take(1500), 1500);
  EXPECT_EQ(t.take(2500), 2500);
}
