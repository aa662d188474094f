// native/driver/timer_wheel.h — a hashed timer wheel with 1 ms ticks.
//
// Sans-IO: the caller supplies `now_ms`. Timers are preallocated (capacity fixed at init), so
// adding one never allocates. A timer whose deadline lies more than one revolution ahead waits
// in its bucket until the wheel comes round to it; next_deadline() is the earliest deadline of
// all (kept, not searched for at each call), so the caller never sleeps past one.
#pragma once
#include <cstdint>
#include <vector>

namespace zio {

class TimerWheel {
 public:
  static constexpr uint32_t kSlots = 1024;     // one revolution = 1024 ms
  static constexpr uint32_t kNone = 0xffffffffu;

  struct Fired { uint16_t kind; uint32_t target; uint32_t gen; };

  void init(uint32_t capacity, uint64_t now_ms);
  // Returns a timer id, or kNone when every timer is in use.
  uint32_t add(uint64_t deadline_ms, uint16_t kind, uint32_t target, uint32_t gen);
  void cancel(uint32_t id);
  // The earliest deadline, or UINT64_MAX when there is no timer.
  uint64_t next_deadline() const;
  // Collects expired timers into `out` (up to cap) and frees them; returns the count.
  uint32_t expire(uint64_t now_ms, Fired* out, uint32_t cap);
  uint32_t active() const { return active_; }

 private:
  struct Node {
    uint64_t deadline;
    uint32_t prev, next, target, gen;
    uint16_t kind;
    bool used;
  };
  void link(uint32_t id);
  void unlink(uint32_t id);
  std::vector<Node> nodes_;
  std::vector<uint32_t> heads_;
  uint32_t free_head_ = kNone;
  uint32_t active_ = 0;
  uint64_t cursor_ms_ = 0;  // every bucket before this time has been expired
  // The earliest deadline, kept across calls: next_deadline() runs at every tick and flush, and a
  // scan of the wheel per call cost ~3% of an HTTP server's CPU (keep-alive timers seconds away
  // leave every bucket to be looked at). Invalidated when the earliest timer leaves.
  mutable uint64_t min_ = UINT64_MAX;
  mutable bool min_ok_ = true;
};

}  // namespace zio
