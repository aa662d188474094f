// native/shard/tls_conn.cc — wires the TLS machine (proto/tls) to connections.
//
// RX: ciphertext from the connection's RX slot is fed to the session; plaintext is read into
// free-stack slots lent to JS for the batch (StreamFrame events, like RX slots; detachable as
// OwnedSlots). TX: plaintext writes are admitted against the write-queue limit less the record
// overhead, encrypted, and the ciphertext is appended to the same write queue (ConnTls::put).
// The handshake's own messages and alerts ride the same queue, in order.
#include <cstring>

#include "shard/shard.h"

namespace zio {

size_t ConnTls::put(const uint8_t* data, size_t len) { return shard->tls_put(index, data, len); }

size_t Shard::tls_put(uint32_t index, const uint8_t* data, size_t len) {
  Conn& c = conns_[index];
  if (c.state == ConnState::Closing || c.state == ConnState::Closed) return len;  // dropped
  // Ciphertext of plaintext already admitted: no queue limit, no bulk budget (tls_write asked).
  size_t done = tx_append(index, data, len, SIZE_MAX, false);
  if (done < len && !c.pool_waiting) {  // out of slots: the session keeps the rest
    c.pool_waiting = true;
    pool_waiters_.push_back(index);
  }
  if (done) mark_dirty(index);
  return done;
}

int Shard::tls_start(uint32_t index, std::shared_ptr<tls::Context> ctx, bool announce,
                     uint32_t timeout_ms) {
  Conn& c = conns_[index];
  c.tls = std::make_unique<ConnTls>();
  c.tls->shard = this;
  c.tls->index = index;
  c.tls->announce = announce;
  std::string err;
  if (c.tls->s.start(std::move(ctx), c.tls.get(), &err) < 0) return -1;
  if (timeout_ms) {
    if (c.timer != TimerWheel::kNone) timers_.cancel(c.timer);
    c.timer = timers_.add(now_ms() + timeout_ms, kTimerTlsHandshake, index, c.gen);
  }
  mark_dirty(index);
  return 0;
}

int Shard::endpoint_set_tls(uint32_t ep, uint32_t gen, std::shared_ptr<tls::CertSlot> slot,
                            uint32_t handshake_timeout_ms) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open || e.closing) return kErrStaleId;
  if (e.kind != EpKind::Listener || e.proto != kProtoTcp) return kErrWrongKind;
  e.tls = std::move(slot);
  e.tls_timeout_ms = handshake_timeout_ms;
  return 0;
}

int Shard::conn_set_tls_client(uint32_t index, uint32_t gen, std::shared_ptr<tls::Context> ctx,
                               uint32_t handshake_timeout_ms) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state != ConnState::Resolving && c->state != ConnState::Connecting) return kErrTlsState;
  // The session starts now (its ClientHello waits in the write queue, ahead of any write made
  // before the connect completes); the handshake timer starts when TCP connects.
  c->tls_timeout_ms = handshake_timeout_ms;
  if (tls_start(index, std::move(ctx), true, 0) < 0) return kErrTlsHandshake;
  return 0;
}

int Shard::conn_tls_upgrade(uint32_t index, uint32_t gen, std::shared_ptr<tls::Context> ctx,
                            uint32_t handshake_timeout_ms) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state != ConnState::Open || c->graceful || c->peer_eof) return kErrClosing;
  if (c->tls || c->proto != kProtoTcp) return kErrTlsState;
  // STARTTLS (RFC 3207 section 4.2, RFC 4217 section 4): the TLS stream starts with the next byte
  // the kernel hands us. Plaintext already received was delivered before this call; anything
  // a peer pipelined behind the command is fed to the handshake and fails it, and is never
  // treated as protected data (the CVE-2011-0411 class).
  if (tls_start(index, std::move(ctx), false, handshake_timeout_ms) < 0) {
    begin_close(index, kErrTlsHandshake, kOriginError);
    return 0;
  }
  return 0;
}

const ConnTls* Shard::conn_tls(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  return c ? c->tls.get() : nullptr;
}

bool Shard::tls_owes(const Conn& c) {
  return c.tls && (c.tls->event_owed || (!c.tls->rx_dead && c.tls->pump_more));
}

bool Shard::tls_sending(const ConnTls& t) {
  return t.s.phase() == tls::Phase::Open || t.s.phase() == tls::Phase::Closed;
}

bool Shard::rx_held(const Conn& c) {
  return c.user_paused || (c.http && c.http->rx_paused) || (c.ws && c.ws->rx_paused) ||
         (c.tls && (c.tls->rx_paused || (c.tls->ktls == Ktls::Wanted && c.tls->recv_cancel)));
}

bool Shard::writable_owed(const Conn& c) {
  return c.want_writable && c.state == ConnState::Open && c.tx_count == 0 && !c.send_inflight &&
         !(c.ws && !c.ws->out_empty()) &&
         !(c.tls && c.tls->s.phase() == tls::Phase::Handshake);  // held writes go out after it
}

void Shard::tls_pause_rx(uint32_t index) {
  Conn& c = conns_[index];
  c.tls->rx_paused = true;
  ++counters_.tls_rx_paused;
  cancel_recv(index);
}

void Shard::cancel_recv(uint32_t index) {
  Conn& c = conns_[index];
  if (!c.recv_armed) return;
  // Cancel this connection's recv only (by user_data; the fd is a hint for the epoll backend).
  io_uring_sqe* sqe = drv_.get_sqe();
  io_uring_prep_cancel64(sqe, ud_encode(kOpRecv, index, c.gen), 0);
  sqe->fd = c.fd;
  io_uring_sqe_set_data64(sqe, ud_encode(kOpCancel, index, c.gen));
  ++c.inflight;
}

void Shard::tls_established(uint32_t index) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  // The handshake timer (a graceful close asked for during the handshake keeps its own).
  if (c.timer != TimerWheel::kNone && !c.graceful) {
    timers_.cancel(c.timer);
    c.timer = TimerWheel::kNone;
  }
  ++counters_.tls_handshakes;
  std::string why;
  const char* not_eligible = nullptr;
  if (!ktls_available(&why)) t.ktls_why = why;
  else if (!t.s.ktls_eligible(&not_eligible)) t.ktls_why = not_eligible;  // decided: no cancel
  else t.ktls = Ktls::Wanted;  // installed by ktls_try once the connection is quiet
  t.event_owed = true;
}

void Shard::tls_emit_ready(uint32_t index) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  t.event_owed = false;
  if (t.announce) {
    uint32_t egen = c.endpoint >= 0 ? endpoints_[c.endpoint].gen : 0;
    emit(kEvConnected, index, c.gen, c.proto, egen, 0, kConnectedTls, c.endpoint);
  } else {
    emit(kEvTlsReady, index, c.gen, 0, 0, 0, 0, 0);
  }
}

void Shard::tls_fail(uint32_t index, int32_t code) {
  Conn& c = conns_[index];
  ++counters_.tls_failed;
  if (c.graceful) {
    // Closing already (closeGraceful): the close reports this failure, not a clean end.
    if (!c.drain_err) {
      c.drain_err = code;
      c.drain_origin = kOriginError;
    }
    mark_dirty(index);
    return;
  }
  // Let the alert the session queued go out, then close (bounded: 1 s).
  c.graceful = true;
  c.drain_err = code;
  c.drain_origin = kOriginError;
  c.want_writable = false;
  if (c.timer != TimerWheel::kNone) timers_.cancel(c.timer);
  c.timer = timers_.add(now_ms() + 1000, kTimerGraceful, index, c.gen);
  mark_dirty(index);
}

void Shard::tls_pump(uint32_t index) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  const uint32_t ss = pool_->slot_size();
  t.pump_more = false;
  while (c.state == ConnState::Open && !(c.graceful && c.drain_err)) {
    if (t.event_owed) {
      if (!room(3)) break;
      tls_emit_ready(index);
    }
    if (t.rx_dead || (t.s.phase() == tls::Phase::Open && !t.s.readable())) break;
    if (!room(3)) {  // one for the data, one for a close, one for the event above
      t.pump_more = true;
      break;
    }
    int64_t s = pool_->acquire();
    if (s < 0) {
      t.pump_more = true;
      wait_for_slot(index);  // plaintext needs a slot: retried when one is released
      break;
    }
    uint32_t slot = static_cast<uint32_t>(s);
    int n = t.s.read(pool_->slot_ptr(slot), ss);
    if (t.s.handshake_just_done()) {
      tls_established(index);
      tls_emit_ready(index);  // before any data of the same read (room(3) covers both)
    }
    if (n > 0) {
      loaned_plain_.push_back(slot);
      if (c.ws) {  // WSS: the plaintext goes to the WebSocket reader (slot lent for the batch)
        ws_input(index, pool_->slot_ptr(slot), static_cast<size_t>(n));
        continue;
      }
      if (c.http) {  // HTTPS: the plaintext goes to the HTTP machine (slot lent for the batch)
        http_input(index, pool_->slot_ptr(slot), static_cast<size_t>(n));
        continue;
      }
      emit(kEvStreamFrame, index, c.gen, kKindBinary, static_cast<uint32_t>(pool_->slot_offset(slot)),
           static_cast<uint32_t>(n), 0, 0);
      continue;
    }
    pool_->release(slot);
    if (n == tls::kTlsNeedInput) {
      if (c.peer_eof) {  // FIN in the middle of a record: it can never complete
        t.rx_dead = true;
        t.s.discard_input();
      }
      break;
    }
    if (n == tls::kTlsPeerClosed) {
      // close_notify: the peer ended its side, as a FIN does (PeerEnded; the close follows the
      // app's answer, or its own close with allowHalfOpen). Our side can still send.
      if (!c.peer_eof) {
        c.peer_eof = true;
        c.eof_owed = true;
      }
      break;
    }
    tls_fail(index, n == tls::kTlsHandshakeFailed ? int32_t{kErrTlsHandshake} : int32_t{kErrTlsProtocol});
    break;
  }
  // Handshake output goes out with this batch, and input left for lack of event room or pool
  // slots is pumped again by flush() (called from on_recv, the connection may not be dirty yet).
  mark_dirty(index);
}

size_t Shard::tls_admit(uint32_t index, size_t len, int* short_why, bool count_capped) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  size_t limit = cfg_.max_write_queue_bytes;
  *short_why = kErrQueueFull;
  if (!tls_sending(t)) {  // held by the session until the handshake is done
    size_t held = t.s.held();
    return std::min(len, limit > held ? limit - held : 0);
  }
  // What fits under the queue limit with its record overhead, and what the pool (and the bulk
  // budget) can hold once encrypted.
  size_t queued = c.tx_bytes + t.s.pending_out();
  size_t room_b = limit > queued ? limit - queued : 0;
  const uint32_t ss = pool_->slot_size();
  // The same admission as plaintext writes: this connection's fair share of the bulk budget
  // (ciphertext slots count as its TX slots).
  size_t slots = pool_->free_count();
  while (slots && !tx_admit(c, static_cast<uint32_t>(slots))) slots /= 2;
  if (count_capped && slots < pool_->free_count()) ++pressure_.writes_capped;
  if (slots * ss < room_b) {
    room_b = slots * ss;
    *short_why = kErrPoolExhausted;
  }
  size_t ovh = tls::Session::overhead(len);
  return std::min(len, room_b > ovh ? room_b - ovh : 0);
}

int64_t Shard::tls_write(uint32_t index, const uint8_t* data, size_t len, bool whole) {
  Conn& c = conns_[index];
  ConnTls& t = *c.tls;
  if (t.s.phase() == tls::Phase::Failed) return kErrClosing;
  int why;
  size_t n = tls_admit(index, len, &why);
  if (whole && n < len) n = 0;
  if (!tls_sending(t)) {
    int64_t r = t.s.write(data, n, cfg_.max_write_queue_bytes);
    if (r >= 0 && static_cast<size_t>(r) < len) {
      c.want_writable = true;  // emitted once the handshake is done and the queue drained
      ++counters_.tx_partial_accepts;
    }
    return r < 0 ? int64_t{kErrClosing} : r;
  }
  if (n == 0 && len) {
    c.want_writable = true;
    ++counters_.tx_partial_accepts;
    if (c.tx_count == 0 && !c.pool_waiting) {
      c.pool_waiting = true;
      pool_waiters_.push_back(index);
    }
    return 0;
  }
  int64_t r = t.s.write(data, n, 0);
  if (r < 0) {
    tls_fail(index, kErrTlsProtocol);
    return kErrClosing;
  }
  if (static_cast<size_t>(r) < len) {
    c.want_writable = true;
    ++counters_.tx_partial_accepts;
  }
  mark_dirty(index);
  return r;
}

}  // namespace zio
