// native/shard/conn_calls.cc — the per-connection calls of the shard's API: close (at once or
// gracefully), end (our FIN), half-open, pause/resume receiving, close_all, and what a
// connection is (its listener, peer address, TCP_INFO, protocol). The close sequence itself
// (begin_close and the CQEs after it) stays in shard.cc.
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "shard/shard.h"

namespace zio {

int Shard::conn_close(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed) return kErrClosing;
  begin_close(index, 0, kOriginLocal);
  return 0;
}

int Shard::conn_close_graceful(uint32_t index, uint32_t gen, uint32_t timeout_ms) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed || c->graceful)
    return kErrClosing;
  if (c->quic && c->state == ConnState::Open) return quic_close_graceful(index, timeout_ms);
  if (c->state != ConnState::Open) {
    begin_close(index, 0, kOriginLocal);
    return 0;
  }
  if (c->tls && c->tls->s.phase() == tls::Phase::Handshake && c->tls->s.held() == 0) {
    // Nothing to deliver and no session to close: as before a TCP connect completes (and
    // shutdown does not wait for strangers' handshakes).
    begin_close(index, 0, kOriginLocal);
    return 0;
  }
  c->graceful = true;
  // RFC 8446 section 6.1, queued after pending data; mid-handshake, after it (held writes first).
  if (c->tls) c->tls->s.close_notify();
  if (c->timer != TimerWheel::kNone) timers_.cancel(c->timer);
  c->timer = timers_.add(now_ms() + timeout_ms, kTimerGraceful, index, c->gen);
  mark_dirty(index);
  return 0;
}

int Shard::endpoint_set_half_open(uint32_t ep, uint32_t gen, bool on) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open || e.closing) return kErrStaleId;
  if (e.kind != EpKind::Listener) return kErrWrongKind;
  e.half_open = on;
  return 0;
}

int Shard::conn_set_half_open(uint32_t index, uint32_t gen, bool on) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed) return kErrClosing;
  c->half_open = on;
  if (!on && c->peer_eof) mark_dirty(index);  // the FIN came already: the default rule applies now
  return 0;
}

int Shard::conn_pause_recv(uint32_t index, uint32_t gen, bool pause) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed) return kErrClosing;
  if (c->quic) return kErrWrongKind;  // QUIC streams have flow control of their own
  if (c->user_paused == pause) return 0;
  c->user_paused = pause;
  if (pause) {
    if (c->state == ConnState::Open) cancel_recv(index);
  } else {
    c->need_rearm = !c->peer_eof;
    mark_dirty(index);
  }
  return 0;
}

int Shard::conn_end(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state == ConnState::Closing || c->state == ConnState::Closed || c->graceful) return kErrClosing;
  if (c->quic) return kErrWrongKind;  // QUIC ends streams (quic_stream_write with fin)
  if (c->end_pending || c->write_closed) return 0;
  // Still connecting: what was written meanwhile goes out once connected, then the FIN (as
  // node:net's end() on a connecting socket).
  c->end_pending = true;
  if (c->tls && c->tls->ktls != Ktls::Active) c->tls->s.close_notify();  // RFC 8446 section 6.1
  mark_dirty(index);
  return 0;
}

int64_t Shard::conn_endpoint(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->endpoint < 0) return -1;
  return (static_cast<int64_t>(c->endpoint_gen) << 20) | static_cast<uint32_t>(c->endpoint);
}

void Shard::close_all(uint32_t timeout_ms) {
  for (uint32_t i = 0; i < endpoints_.size(); ++i) {
    Endpoint& e = endpoints_[i];
    if (!e.open || e.closing) continue;
    if (e.quic && e.quic->certs && e.quic->conns > 0) {
      // A QUIC listener carries its connections' packets: it refuses new ones now and closes
      // after its last connection (quic_release).
      e.quic->refusing = true;
      continue;
    }
    if (e.quic && !e.quic->certs && e.quic->client_conn != UINT32_MAX) continue;  // a client's socket: closes with its connection
    endpoint_close(i, e.gen);
  }
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (c.quic && c.quic->leader != UINT32_MAX) continue;  // a racing attempt: goes with its entry
    if (c.state == ConnState::Open) {
      if (c.ws && c.ws->upgraded) {  // WebSocket: a close frame (1001 going away) first
        const char* bye = c.ws->client ? "shutting down" : "server shutting down";
        if (ws_close(i, c.gen, ws::kGoingAway, reinterpret_cast<const uint8_t*>(bye), strlen(bye)) == 0) {
          c.ws->close_at = now_ms() + std::min<uint32_t>(timeout_ms, c.ws->ep->cfg.close_timeout_ms ? c.ws->ep->cfg.close_timeout_ms : timeout_ms);
          ws_arm(i);
          continue;
        }
      }
      if (c.http && !c.ws && http_shutdown(i, timeout_ms)) continue;  // requests in flight finish first
      conn_close_graceful(i, c.gen, timeout_ms);
    } else if (c.state == ConnState::Resolving || c.state == ConnState::Connecting)
      begin_close(i, ECANCELED, kOriginLocal);
  }
}

int Shard::conn_peer(uint32_t index, uint32_t gen, sockaddr_storage* out, socklen_t* len) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  // Kept at accept / connect, so it still answers in the Disconnected handler (a failed
  // connect answers with the last target it tried).
  if (c->addr_len > 0 && (c->state == ConnState::Open || c->state == ConnState::Closing ||
                          c->state == ConnState::Closed)) {
    *out = c->addr;
    *len = c->addr_len;
    return 0;
  }
  if (c->fd < 0) return kErrNotConnected;
  *len = sizeof *out;
  return getpeername(c->fd, reinterpret_cast<sockaddr*>(out), len) < 0 ? -errno : 0;
}

int Shard::conn_tcp_info(uint32_t index, uint32_t gen, TcpStats* out) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->fd < 0) return kErrNotConnected;
  if (c->proto != kProtoTcp) return kErrWrongKind;
  out->bytes_in = c->bytes_in;
  out->bytes_out = c->bytes_out;
  return read_tcp_info(c->fd, out);
}

int Shard::conn_proto(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  return c ? c->proto : kErrStaleId;
}

}  // namespace zio
