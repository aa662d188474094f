#include "driver/timer_wheel.h"

namespace zio {

void TimerWheel::init(uint32_t capacity, uint64_t now_ms) {
  nodes_.assign(capacity, Node{});
  heads_.assign(kSlots, kNone);
  free_head_ = kNone;
  for (uint32_t i = capacity; i > 0; --i) {
    nodes_[i - 1].next = free_head_;
    free_head_ = i - 1;
  }
  active_ = 0;
  cursor_ms_ = now_ms;
  min_ = UINT64_MAX;
  min_ok_ = true;
}

void TimerWheel::link(uint32_t id) {
  Node& n = nodes_[id];
  uint32_t b = static_cast<uint32_t>(n.deadline % kSlots);
  n.prev = kNone;
  n.next = heads_[b];
  if (n.next != kNone) nodes_[n.next].prev = id;
  heads_[b] = id;
}

void TimerWheel::unlink(uint32_t id) {
  Node& n = nodes_[id];
  uint32_t b = static_cast<uint32_t>(n.deadline % kSlots);
  if (n.prev != kNone) nodes_[n.prev].next = n.next; else heads_[b] = n.next;
  if (n.next != kNone) nodes_[n.next].prev = n.prev;
}

uint32_t TimerWheel::add(uint64_t deadline_ms, uint16_t kind, uint32_t target, uint32_t gen) {
  if (free_head_ == kNone) return kNone;
  uint32_t id = free_head_;
  free_head_ = nodes_[id].next;
  Node& n = nodes_[id];
  // A deadline already in the past fires on the next expire() call.
  n.deadline = deadline_ms < cursor_ms_ ? cursor_ms_ : deadline_ms;
  n.kind = kind;
  n.target = target;
  n.gen = gen;
  n.used = true;
  link(id);
  ++active_;
  if (min_ok_ && n.deadline < min_) min_ = n.deadline;
  return id;
}

void TimerWheel::cancel(uint32_t id) {
  if (id >= nodes_.size() || !nodes_[id].used) return;
  unlink(id);
  if (nodes_[id].deadline <= min_) min_ok_ = false;
  nodes_[id].used = false;
  nodes_[id].next = free_head_;
  free_head_ = id;
  --active_;
}

uint64_t TimerWheel::next_deadline() const {
  if (active_ == 0) return UINT64_MAX;
  if (!min_ok_) {  // the earliest timer left: find the next one
    min_ = UINT64_MAX;
    for (const Node& n : nodes_)
      if (n.used && n.deadline < min_) min_ = n.deadline;
    min_ok_ = true;
  }
  return min_ < cursor_ms_ ? cursor_ms_ : min_;
}

uint32_t TimerWheel::expire(uint64_t now_ms, Fired* out, uint32_t cap) {
  uint32_t n = 0;
  if (active_ == 0) {
    cursor_ms_ = now_ms + 1;
    return 0;
  }
  // Visit each bucket between the cursor and now (at most one revolution).
  uint64_t end = now_ms;
  if (cursor_ms_ > end) return 0;
  if (end - cursor_ms_ >= kSlots) cursor_ms_ = end - (kSlots - 1);
  for (; cursor_ms_ <= end; ++cursor_ms_) {
    uint32_t b = static_cast<uint32_t>(cursor_ms_ % kSlots);
    uint32_t id = heads_[b];
    while (id != kNone) {
      uint32_t next = nodes_[id].next;
      if (nodes_[id].deadline <= now_ms) {
        if (n == cap) return n;  // resume at this bucket next time
        out[n++] = Fired{nodes_[id].kind, nodes_[id].target, nodes_[id].gen};
        cancel(id);
      }
      id = next;
    }
  }
  return n;
}

}  // namespace zio
