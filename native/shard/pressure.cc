// native/shard/pressure.cc — the backpressure cascade: TX admission (bulk budget, fair share),
// pool utilization, states with hysteresis in level and time (docs/architecture/0011).
#include "shard/shard.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>

namespace zio {

// ------------------------------------------------------------------ backpressure cascade

void Shard::tx_slot_add(Conn& c) {
  if (c.tx_slots++ == 0) ++tx_conns_;
  gauges_.tx_ring.add(1);
}

void Shard::tx_slot_sub(Conn& c) {
  if (--c.tx_slots == 0) --tx_conns_;
  gauges_.tx_ring.sub(1);
}

bool Shard::tx_admit(const Conn& c, uint32_t slots) const {
  // Each connection may hold its fair share of the bulk-TX budget (the budget over the
  // connections holding TX slots) while the budget lasts, and kTxMinShareSlots always: one
  // bulk flow cannot starve small writes to others, and TX slots stay within the budget plus
  // the minimum shares.
  if (c.tx_slots + slots <= kTxMinShareSlots) return true;
  uint32_t holders = tx_conns_ + (c.tx_slots == 0 ? 1 : 0);
  uint32_t share = std::max<uint32_t>(kTxMinShareSlots, pressure_.budget_tx_bulk / holders);
  return gauges_.tx_ring.current + slots <= pressure_.budget_tx_bulk && c.tx_slots + slots <= share;
}

static uint32_t pct_of(uint64_t cur, uint64_t cap) {
  return cap ? static_cast<uint32_t>(std::min<uint64_t>(100, cur * 100 / cap)) : 0;
}

bool Shard::pool_exhausted() const {
  // Fresh, not the last tick's state: a connection is refused only while the RX slots or the
  // free stack are really (at the Drain threshold) used up.
  const PressureInfo& p = pressure_;
  return pct_of(gauges_.fill_ring.current, p.budget_rx) >= p.enter[kDrain] ||
         pct_of(pool_->free_stack.current, pool_->free_stack.capacity) >= p.enter[kDrain];
}

bool Shard::bulk_fits(uint32_t slots) const {
  // Critical and Drain cap bulk TX at its budget. (Refusing all TX in Drain would stall servers
  // whose pressure comes from RX: their replies are what frees the RX slots.)
  return pressure_.state < kCritical || gauges_.tx_ring.current + slots <= pressure_.budget_tx_bulk;
}

bool Shard::bulk_allowed(uint32_t slots) {
  if (bulk_fits(slots)) return true;
  ++pressure_.writes_capped;
  return false;
}


void Shard::update_pressure() {
  PressureInfo& p = pressure_;
  p.pool_pct[kPpFillRing] = pct_of(gauges_.fill_ring.current, p.budget_rx);
  p.pool_pct[kPpTxRing] = pct_of(gauges_.tx_ring.current, p.budget_tx_bulk);
  p.pool_pct[kPpPerConn] = pct_of(gauges_.per_conn.current, gauges_.per_conn.capacity);
  p.pool_pct[kPpFreeStack] = pct_of(pool_->free_stack.current, pool_->free_stack.capacity);
  // The state follows the pools that can run out: RX slots lent out, the free stack, and the
  // TX budget — which can raise Critical at most (a full TX budget is what the fair-share cap
  // is for, not a reason to refuse connections). The table (perConn) is reported, not
  // followed: maxConnections is its own limit, enforced at accept.
  p.pct = 0;
  for (int32_t i : {kPpFillRing, kPpFreeStack, kPpTxRing}) {
    uint32_t v = i == kPpTxRing ? std::min(p.pool_pct[i], p.enter[kDrain] - 1) : p.pool_pct[i];
    if (v > p.pct) { p.pct = v; p.leader = i; }
  }
  int32_t s = p.state;
  while (s < kDrain && p.pct >= p.enter[s + 1]) ++s;  // climb at once
  if (s == p.state && s > kHealthy && p.pct + 10 < p.enter[s]) {
    // Step down with hysteresis in level (10 points) and in time (a minimum dwell), so a load
    // hovering at a threshold cannot flap the state (and the PoolPressure events). An idle
    // shard still steps down: a timer re-evaluates when the dwell is over.
    uint64_t now = now_ms();
    if (now - p.since_ms >= kPressureDwellMs) {
      while (s > kHealthy && p.pct + 10 < p.enter[s]) --s;
    } else if (pressure_timer_ == TimerWheel::kNone) {
      pressure_timer_ = timers_.add(p.since_ms + kPressureDwellMs, kTimerPressure, 0, 0);
    }
  }
  if (s == p.state || !room(1)) return;
  emit(kEvPoolPressure, 0, 0, p.leader, 0, p.pct, s, p.state);
  p.state = s;
  p.since_ms = now_ms();
  ++p.transitions;
  if (s < kCritical) wake_pool_waiters();  // writers refused by the policy may retry
}

}  // namespace zio
