// Tests for native/pool (mirrors pool/pool.cc).
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

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

// Runs of adjacent slots (large HTTP request records): taken from the middle of the free stack,
// given back whole by one release, and never handed out twice (stale stack entries are skipped;
// a stack filled by them is rebuilt).
TEST(SlotPool, RunsOfAdjacentSlots) {
  SlotPool p;
  std::string err;
  ASSERT_EQ(p.create(72, 1200, 8, HugePages::Off, &err), 0) << err;  // 64 free-stack slots
  int64_t r = p.acquire_run(5);
  ASSERT_GE(r, 8);
  EXPECT_EQ(p.run_length(static_cast<uint32_t>(r)), 5u);
  EXPECT_EQ(p.free_count(), 59u);
  std::vector<int> owner(72, -1);
  for (int64_t j = r; j < r + 5; ++j) owner[j] = 0;
  for (int i = 0; i < 59; ++i) {  // every single slot left, none inside the run
    int64_t s = p.acquire();
    ASSERT_GE(s, 8);
    ASSERT_EQ(owner[s], -1) << "slot " << s << " handed out twice";
    owner[s] = 1;
  }
  EXPECT_EQ(p.acquire(), -1);
  EXPECT_EQ(p.acquire_run(2), -1);
  p.release(static_cast<uint32_t>(r));  // the whole run comes back
  EXPECT_EQ(p.free_count(), 5u);
  EXPECT_EQ(p.acquire_run(5), r);
  p.release(static_cast<uint32_t>(r));
  // Fragmentation: every other single slot freed; a run of 2 can only be where the 5 were.
  for (int64_t s = 8; s < 72; ++s)
    if (owner[s] == 1 && s % 2 == 0) p.release(static_cast<uint32_t>(s)), owner[s] = -1;
  int64_t two = p.acquire_run(2);
  EXPECT_GE(two, r - 1);
  EXPECT_LE(two + 2, r + 6);
  EXPECT_EQ(p.acquire_run(8), -1);  // 8 adjacent: nowhere
  // Churn: runs and singles, many times (stale entries pile up, the stack is rebuilt), the count
  // always matches and no slot is handed out twice.
  SlotPool q;
  ASSERT_EQ(q.create(40, 1200, 0, HugePages::Off, &err), 0) << err;
  std::vector<std::pair<int64_t, uint32_t>> held;
  std::vector<int> used(40, 0);
  uint32_t x = 7;
  for (int i = 0; i < 20000; ++i) {
    x ^= x << 13; x ^= x >> 17; x ^= x << 5;
    if (held.size() > 6 || (x & 3) == 0) {
      if (held.empty()) continue;
      auto [s, k] = held[x % held.size()];
      held.erase(std::find(held.begin(), held.end(), std::make_pair(s, k)));
      for (uint32_t j = 0; j < k; ++j) used[s + j] = 0;
      q.release(static_cast<uint32_t>(s));
    } else {
      uint32_t k = 1 + (x >> 8) % 6;
      int64_t s = q.acquire_run(k);
      if (s < 0) continue;
      for (uint32_t j = 0; j < k; ++j) {
        ASSERT_EQ(used[s + j], 0) << "slot " << s + j << " handed out twice";
        used[s + j] = 1;
      }
      held.emplace_back(s, k);
    }
    uint32_t in_use = 0;
    for (int u : used) in_use += u;
    ASSERT_EQ(q.free_count(), 40 - in_use);
  }
}
