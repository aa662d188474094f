// native/shard/completions.cc — io_uring completions: dispatch by operation, and the TCP
// accept, receive and send completions (connects are in connect.cc, UDP in udp.cc).
#include "shard/shard.h"

#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace zio {

void Shard::handle_cqe(io_uring_cqe* cqe) {
  uint64_t ud = cqe->user_data;
  uint8_t op = ud_op(ud);
  uint32_t idx = ud_index(ud), gen = ud_gen(ud);
  if (op == kOpNone) return;  // a wake-up NOP (see binding Kick)
  if (op == kOpTimeout) {
    timer_op_deadline_ = UINT64_MAX;
    return;
  }
  if (op == kOpAccept) return on_accept(idx, gen, cqe->res, cqe->flags);
  if (op == kOpCancel && (idx & 0x80000000u)) {
    uint32_t ep = idx & 0x7fffffffu;
    Endpoint& e = endpoints_[ep];
    if (e.gen == gen && --e.inflight == 0 && e.closing) endpoint_finish(ep);
    return;
  }
  if (op == kOpHandleWake) {
    handle_q_->clear_awake();  // before draining: a later push signals again
    arm_handle_wake();
    drain_handle();
    return;
  }
  if (op == kOpUdpRecv || op == kOpUdpRecvGro)
    return on_udp_recv(idx, gen, cqe->res, cqe->flags, op == kOpUdpRecvGro);
  if (op == kOpUdpSend) return on_udp_send(idx & 0xfff, idx >> 12, gen, cqe->res);
  if (idx >= conns_.size() || conns_[idx].gen != gen || conns_[idx].state == ConnState::Free) {
    ++counters_.stale_cqes;
    // A stale completion may still carry an RX buffer: give it back, touch nothing else.
    if (op == kOpRecv && (cqe->flags & IORING_CQE_F_BUFFER)) {
      uint16_t bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
      drv_.buf_add(pool_->slot_ptr(bid), pool_->slot_size(), bid);
      drv_.buf_commit();
    }
    return;
  }
  Conn& c = conns_[idx];
  switch (op) {
    case kOpRecv: on_recv(idx, cqe->res, cqe->flags); break;
    case kOpSend: on_send(idx, cqe->res); break;
    case kOpCancel: --c.inflight; break;
    default:
      if (op >= kOpConnectBase && op < kOpConnectBase + kHeMax) on_connect(idx, op - kOpConnectBase, cqe->res);
      break;
  }
  if (c.state == ConnState::Closing) mark_dirty(idx);
}

void Shard::on_accept(uint32_t ep, uint32_t gen, int res, uint32_t flags) {
  Endpoint& e = endpoints_[ep];
  bool more = flags & IORING_CQE_F_MORE;
  if (e.gen != gen) {
    if (res >= 0) ::close(res);
    return;
  }
  if (!more) {
    e.accept_armed = false;
    --e.inflight;
  }
  if (res >= 0) {
    int64_t idx = e.closing ? static_cast<int64_t>(kErrTableFull) : alloc_conn();
    if (idx >= 0 && pressure_.state == kDrain && pool_exhausted()) {  // Drain: no new connections
      ++pressure_.accepts_refused;
      release_closed_now(static_cast<uint32_t>(idx));
      idx = kErrTableFull;
    }
    if (idx < 0) {
      // Policy: over maxConnections, a new connection is closed at once (counted).
      ::close(res);
      ++e.rejected;
      ++counters_.conns_rejected;
    } else {
      Conn& c = conns_[idx];
      c.fd = res;
      c.state = ConnState::Open;
      c.opened = true;
      c.proto = e.proto;
      c.endpoint = static_cast<int32_t>(ep);
      c.endpoint_gen = e.gen;
      c.half_open = e.half_open;
      if (e.http) http_accept(static_cast<uint32_t>(idx), e.http);
      socklen_t alen = sizeof c.addr;  // the peer, kept for the Disconnected handler
      if (getpeername(res, reinterpret_cast<sockaddr*>(&c.addr), &alen) == 0) c.addr_len = alen;
      if (c.proto == kProtoTcp && cfg_.no_delay) {
        int one = 1;
        setsockopt(res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      }
      arm_recv(static_cast<uint32_t>(idx));
      ++e.accepted;
      ++counters_.conns_accepted;
      if (e.tls) {
        // Connected follows the handshake (tls_established); a failure is reported by Disconnected.
        if (tls_start(static_cast<uint32_t>(idx), e.tls->get(), true, e.tls_timeout_ms) < 0)
          begin_close(static_cast<uint32_t>(idx), kErrTlsHandshake, kOriginError);
      } else {
        emit(kEvConnected, static_cast<uint32_t>(idx), c.gen, c.proto, e.gen, 0, 0,
             static_cast<int32_t>(ep));
      }
    }
  } else if (res != -ECANCELED && !e.closing) {
    ++e.accept_errors;
  }
  if (e.closing) {
    if (e.inflight == 0) endpoint_finish(ep);
    return;
  }
  if (!more && !e.accept_armed) {
    if (res == -EMFILE || res == -ENFILE || res == -ENOBUFS || res == -ENOMEM) {
      // Out of descriptors: retry in 100 ms rather than spin.
      e.timer = timers_.add(now_ms() + 100, kTimerAcceptRetry, ep, e.gen);
    } else {
      arm_accept(ep);
    }
  }
}

void Shard::on_recv(uint32_t idx, int res, uint32_t flags) {
  Conn& c = conns_[idx];
  bool more = flags & IORING_CQE_F_MORE;
  if (!more) {
    c.recv_armed = false;
    --c.inflight;
    // A recv that TLS paused or kTLS set-up cancelled has ended: flush() decides what next
    // (re-arm once the buffered input drained, or install kTLS). Nothing else may mark it.
    if (c.tls && (c.tls->rx_paused || c.tls->recv_cancel)) mark_dirty(idx);
  }
  if (flags & IORING_CQE_F_BUFFER) {
    uint16_t bid = flags >> IORING_CQE_BUFFER_SHIFT;
    --rx_in_ring_;
    gauges_.fill_ring.add(1);
    loaned_.push_back(bid);  // back to the ring at the next tick, or at once if not delivered
    if (res > 0 && c.state == ConnState::Open && c.tls && c.tls->ktls != Ktls::Active) {
      c.bytes_in += res;
      counters_.rx_bytes += res;
      if (!c.graceful || !c.drain_err) {  // input after a TLS failure is dropped
        c.tls->s.feed(pool_->slot_ptr(bid), static_cast<size_t>(res));
        tls_pump(idx);
        c.tls->s.keep_input();  // the RX slot goes back to the ring at the next tick
        size_t kept = c.tls->s.input_left();
        if (kept > counters_.tls_rx_peak) counters_.tls_rx_peak = kept;
        if (kept > kTlsRxCap && !c.tls->rx_paused) tls_pause_rx(idx);
      }
    } else if (res > 0 && c.state == ConnState::Open) {
      c.bytes_in += res;
      counters_.rx_bytes += res;
      if (c.ws) ws_input(idx, pool_->slot_ptr(bid), static_cast<size_t>(res));
      else if (c.http) http_input(idx, pool_->slot_ptr(bid), static_cast<size_t>(res));
      else emit(kEvStreamFrame, idx, c.gen, kKindBinary, static_cast<uint32_t>(pool_->slot_offset(bid)),
           static_cast<uint32_t>(res), 0, 0);
    }
  }
  if (c.state != ConnState::Open) return;
  if (res == 0) {
    // FIN: every byte before it was delivered (or sits in the TLS machine: PeerEnded waits for
    // it in flush()). Without half-open the connection closes once the app's answer is out.
    if (!c.peer_eof) {  // (TLS: a close_notify may have ended the peer's side already)
      c.peer_eof = true;
      c.eof_owed = true;
      if (!tls_owes(c) && !ws_holds(c) && room(1)) emit_peer_ended(idx);
    }
    mark_dirty(idx);
    return;
  }
  if (res == -ENOBUFS) {
    ++counters_.rx_enobufs;
    if (!c.parked) {
      c.parked = true;
      parked_.push_back(idx);
    }
    return;
  }
  if (res == -EIO && c.tls && c.tls->ktls == Ktls::Active) {
    ktls_control_record(idx);  // an alert or handshake record the kernel will not decrypt for us
    return;
  }
  if (res < 0) {
    if (res != -ECANCELED) begin_close(idx, -res, kOriginError);
    else if (!more) {  // a cancelled recv (pauseRecv, TLS bound): flush() re-arms once released
      c.need_rearm = !c.peer_eof;
      mark_dirty(idx);
    }
    return;
  }
  if (!more && !c.peer_eof) {
    ++counters_.rx_rearm;
    c.need_rearm = true;
    mark_dirty(idx);
  }
}

void Shard::on_send(uint32_t idx, int res) {
  Conn& c = conns_[idx];
  c.send_inflight = false;
  --c.inflight;
  if (res < 0) {
    c.tx_inflight_chunks = 0;
    if (res != -ECANCELED && c.state == ConnState::Open) {
      release_tx(c);
      begin_close(idx, -res, kOriginError);
    }
    return;
  }
  c.bytes_out += res;
  counters_.tx_bytes += res;
  size_t left = static_cast<size_t>(res);
  TxChunk* q = &txq_[static_cast<size_t>(idx) * txq_cap_];
  bool short_send = false;
  uint32_t n = c.tx_inflight_chunks;
  for (uint32_t i = 0; i < n && c.tx_count; ++i) {
    TxChunk& ch = q[c.tx_head];
    if (left >= ch.len) {
      left -= ch.len;
      c.tx_bytes -= ch.len;
      pool_->release(ch.slot);
      if (!ch.shared) tx_slot_sub(c);
      c.tx_head = (c.tx_head + 1) % txq_cap_;
      --c.tx_count;
    } else {
      // Short send: keep the unsent tail and resubmit it (DESIGN.md section 3).
      ch.off += left;
      ch.len -= left;
      c.tx_bytes -= left;
      left = 0;
      short_send = true;
      break;
    }
  }
  if (short_send) ++counters_.tx_short;
  c.tx_inflight_chunks = 0;
  mark_dirty(idx);
  wake_pool_waiters();
}

}  // namespace zio
