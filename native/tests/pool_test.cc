// Tests for native/pool (mirrors pool/pool.cc).
#include <gtest/gtest.h>

#include "pool/pool.h"

using namespace zio;

TEST(SlotPool, PartitionsRxAndFreeStack) {
  SlotPool p;
  std::string err;
  ASSERT_EQ(p.create(16, 2048, 8, HugePages::Auto, &err), 0) << err;
  EXPECT_EQ(p.free_count(), 8u);
  EXPECT_EQ(p.free_stack.capacity, 8u);
  for (int i = 0; i < 8; ++i) {
    int64_t s = p.acquire();
    ASSERT_GE(s, 8) << "RX slots must never come off the free stack";
    ASSERT_LT(s, 16);
  }
  EXPECT_EQ(p.acquire(), -1);
  EXPECT_EQ(p.exhausted_count, 1u);
  EXPECT_EQ(p.free_stack.peak, 8u);
}

TEST(SlotPool, RefcountReturnsSlotAtZero) {
  SlotPool p;
  std::string err;
  ASSERT_EQ(p.create(4, 1200, 0, HugePages::Off, &err), 0) << err;
  int64_t s = p.acquire();
  ASSERT_GE(s, 0);
  p.retain(static_cast<uint32_t>(s));
  p.release(static_cast<uint32_t>(s));
  EXPECT_EQ(p.free_count(), 3u);
  p.release(static_cast<uint32_t>(s));
  EXPECT_EQ(p.free_count(), 4u);
  p.release(static_cast<uint32_t>(s));  // double release is ignored, not a corruption
  EXPECT_EQ(p.free_count(), 4u);
}

TEST(SlotPool, SlotsDoNotOverlap) {
  SlotPool p;
  std::string err;
  ASSERT_EQ(p.create(8, 2048, 0, HugePages::Auto, &err), 0) << err;
  for (uint32_t i = 0; i < 8; ++i) memset(p.slot_ptr(i), static_cast<int>(i), 2048);
  for (uint32_t i = 0; i < 8; ++i)
    for (uint32_t b = 0; b < 2048; b += 511) ASSERT_EQ(p.slot_ptr(i)[b], i);
  EXPECT_EQ(p.slot_offset(3), 3u * 2048);
}

TEST(SlotPool, HugePagesOnFailsCleanlyWithoutReservation) {
  SlotPool p;
  std::string err;
  int r = p.create(8, 2048, 0, HugePages::On, &err);
  if (r == 0) {
    EXPECT_EQ(p.backing(), PoolBacking::HugeTlb);
  } else {
    EXPECT_NE(err.find("vm.nr_hugepages"), std::string::npos) << err;
  }
}

TEST(SlotPool, RejectsBadSizes) {
  SlotPool p;
  std::string err;
  EXPECT_LT(p.create(0, 2048, 0, HugePages::Auto, &err), 0);
  EXPECT_LT(p.create(4, 2048, 5, HugePages::Auto, &err), 0);
}
