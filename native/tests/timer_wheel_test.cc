// Tests for native/driver/timer_wheel.
#include <gtest/gtest.h>

#include "driver/timer_wheel.h"

using namespace zio;

TEST(TimerWheel, FiresInDeadlineOrderWindow) {
  TimerWheel w;
  w.init(16, 1000);
  w.add(1010, 1, 7, 1);
  w.add(1005, 2, 8, 1);
  EXPECT_EQ(w.next_deadline(), 1005u);
  TimerWheel::Fired f[4];
  EXPECT_EQ(w.expire(1004, f, 4), 0u);
  ASSERT_EQ(w.expire(1006, f, 4), 1u);
  EXPECT_EQ(f[0].target, 8u);
  EXPECT_EQ(w.next_deadline(), 1010u);
  ASSERT_EQ(w.expire(1010, f, 4), 1u);
  EXPECT_EQ(f[0].kind, 1);
  EXPECT_EQ(w.active(), 0u);
  EXPECT_EQ(w.next_deadline(), UINT64_MAX);
}

TEST(TimerWheel, CancelAndCapacity) {
  TimerWheel w;
  w.init(2, 0);
  uint32_t a = w.add(5, 1, 1, 1);
  uint32_t b = w.add(6, 1, 2, 1);
  EXPECT_EQ(w.add(7, 1, 3, 1), TimerWheel::kNone) << "capacity is fixed";
  w.cancel(a);
  w.cancel(a);  // double cancel is harmless
  TimerWheel::Fired f[4];
  ASSERT_EQ(w.expire(100, f, 4), 1u);
  EXPECT_EQ(f[0].target, 2u);
  (void)b;
}

TEST(TimerWheel, FarDeadlinesSurviveRevolutions) {
  TimerWheel w;
  w.init(4, 0);
  w.add(5000, 1, 1, 1);  // ~5 revolutions ahead
  TimerWheel::Fired f[4];
  for (uint64_t t = 0; t < 5000; t += 300) EXPECT_EQ(w.expire(t, f, 4), 0u) << t;
  EXPECT_LE(w.next_deadline(), 5000u);
  EXPECT_EQ(w.expire(5000, f, 4), 1u);
}

TEST(TimerWheel, LargeJumpFiresEverythingDue) {
  TimerWheel w;
  w.init(8, 0);
  for (int i = 0; i < 8; ++i) w.add(10 + i * 200, 1, i, 1);
  TimerWheel::Fired f[8];
  EXPECT_EQ(w.expire(100000, f, 8), 8u);
}
