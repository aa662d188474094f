// native/shard/timers.cc — the shard's clock and its timer wheel: the io_uring timeout that
// wakes a driven shard for the earliest deadline, and what each timer kind does when it fires.
#include "shard/shard.h"

#include <time.h>

namespace zio {

uint64_t Shard::now_ms() const {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1000000;
}

void Shard::arm_timer_op() {
  uint64_t d = timers_.next_deadline();
  if (d == UINT64_MAX || d >= timer_op_deadline_) return;
  uint64_t now = now_ms();
  uint64_t rel = d > now ? d - now : 0;
  timer_ts_.tv_sec = rel / 1000;
  timer_ts_.tv_nsec = (rel % 1000) * 1000000 + 100000;
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_timeout(sqe, &timer_ts_, 0, 0);
  io_uring_sqe_set_data64(sqe, ud_encode(kOpTimeout, 0, 0));
  timer_op_deadline_ = d;
}

void Shard::fire_timers() {
  if (timers_.active() == 0) return;
  TimerWheel::Fired fired[64];
  uint32_t n = timers_.expire(now_ms(), fired, 64);
  for (uint32_t i = 0; i < n; ++i) {
    ++counters_.timers_fired;
    const auto& f = fired[i];
    if (f.kind == kTimerPressure) {
      pressure_timer_ = TimerWheel::kNone;
      update_pressure();
      continue;
    }
    if (f.kind == kTimerAcceptRetry) {
      Endpoint& e = endpoints_[f.target];
      if (e.gen == f.gen && e.open && !e.closing) {
        e.timer = TimerWheel::kNone;
        if (e.kind == EpKind::Udp) {
          if (!e.recv_armed) arm_udp_recv(f.target);
        } else {
          arm_accept(f.target);
        }
      }
      continue;
    }
    Conn* c = lookup(f.target, f.gen);
    if (!c) continue;
    if (f.kind == kTimerConnect) {
      c->connect_timer = TimerWheel::kNone;
      if (c->quic && c->state == ConnState::Open && !c->quic->connected_sent) {
        begin_close(f.target, kErrConnectTimeout, kOriginTimeout);  // a QUIC handshake that never finished
        continue;
      }
      if (c->state == ConnState::Resolving || c->state == ConnState::Connecting) {
        if (c->he_next > 0) keep_target(*c, c->he_next - 1u);  // the attempt that hung, for the reason
        begin_close(f.target, kErrConnectTimeout, kOriginTimeout);
      }
      continue;
    }
    if (f.kind == kTimerQuicPace) {  // a paced packet is due
      if (c->quic) {
        c->quic->pace_timer = TimerWheel::kNone;
        if (c->state == ConnState::Open) mark_dirty(f.target);
      }
      continue;
    }
    if (f.kind == kTimerQuic) {
      if (c->quic) {
        if (c->state == ConnState::Open) quic_timer(f.target);
        else c->quic->timer = TimerWheel::kNone;
      }
      continue;
    }
    if (f.kind == kTimerWs) {
      if (c->ws) {
        if (c->state == ConnState::Open) ws_timer(f.target);
        else c->ws->timer = TimerWheel::kNone;
      }
      continue;
    }
    if (f.kind == kTimerHttp) {
      if (c->http) {
        if (c->state == ConnState::Open) http_timer(f.target);
        else c->http->timer = TimerWheel::kNone;
      }
      continue;
    }
    c->timer = TimerWheel::kNone;
    if (f.kind == kTimerHeNext && c->state == ConnState::Connecting) {
      start_attempt(f.target);
    } else if (f.kind == kTimerTlsHandshake && c->state == ConnState::Open && c->tls &&
               c->tls->s.phase() == tls::Phase::Handshake) {
      ++counters_.tls_timeouts;
      begin_close(f.target, kErrTlsTimeout, kOriginTimeout);
    } else if (f.kind == kTimerGraceful && c->state == ConnState::Open) {
      release_tx(*c);  // the peer did not take our data in time: drop it
      // A close that drains after a failure (a TLS alert) reports the failure, not the timeout.
      if (c->drain_err) begin_close(f.target, c->drain_err, c->drain_origin);
      else begin_close(f.target, ETIMEDOUT, kOriginTimeout);
    }
  }
}

}  // namespace zio
