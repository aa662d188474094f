// native/shard/quic_conn.cc — QUIC connections of a shard (see quic_conn.h): accepting from
// Initial packets, the packet entry (DCID lookup), events out of quiche, packets out through
// the endpoint's UDP queue in GSO trains, quiche's timer in the wheel, and the close.
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <quiche.h>
#include <sys/socket.h>
#include <time.h>

#include <algorithm>
#include <cstring>

#include "shard/shard.h"

namespace zio {

ConnQuic::~ConnQuic() {
  if (q) quiche_conn_free(q);  // frees the SSL quiche was given too
}

namespace {
// quiche's send times are Instants (CLOCK_MONOTONIC).
uint64_t mono_ns() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000u + static_cast<uint64_t>(t.tv_nsec);
}
uint64_t ts_ns(const timespec& t) { return static_cast<uint64_t>(t.tv_sec) * 1000000000u + static_cast<uint64_t>(t.tv_nsec); }
// A packet due within this is sent now: the wheel ticks in milliseconds, so each tick releases
// what falls due before the next one. Sending a little early keeps the rate: quiche's pacer
// moves its next time on by each packet's transfer time, from its ideal time (not from the
// moment of the send) while that is ahead.
constexpr uint64_t kPaceSlackNs = 1000000;
int32_t clip_code(uint64_t code) { return code > 0x7fffffff ? 0x7fffffff : static_cast<int32_t>(code); }
// A stream we sent on needs nothing more from us once quiche has collected it (everything we
// sent, FIN included, acknowledged, and its receiving side done) or the peer stopped it.
bool stream_settled(quiche_conn* q, uint64_t stream) {
  ssize_t cap = quiche_conn_stream_capacity(q, stream);
  return cap == QUICHE_ERR_INVALID_STREAM_STATE || cap == QUICHE_ERR_STREAM_STOPPED;
}
bool has(const std::vector<uint64_t>& v, uint64_t x) { return std::find(v.begin(), v.end(), x) != v.end(); }
// A pulled stream still holds data, or an end (-1) or reset, the application has not been told.
bool pulled_unread(quiche_conn* q, const ConnQuic& cq) {
  for (uint64_t s : cq.pulled)
    if (quiche_conn_stream_readable(q, s) || (has(cq.pull_ended, s) && !has(cq.pull_done, s))) return true;
  return false;
}
void prune_settled(quiche_conn* q, std::vector<uint64_t>& streams) {
  streams.erase(std::remove_if(streams.begin(), streams.end(), [q](uint64_t s) { return stream_settled(q, s); }),
                streams.end());
}
}  // namespace

// Closed, draining after the peer's CONNECTION_CLOSE, or closing after ours (quiche's own
// decision included).
bool quic_conn_over(quiche_conn* q) {
  bool app = false;
  uint64_t code = 0;
  const uint8_t* why = nullptr;
  size_t why_len = 0;
  return quiche_conn_is_closed(q) || quiche_conn_is_draining(q) || quiche_conn_local_error(q, &app, &code, &why, &why_len);
}

ConnQuic* Shard::quic_conn(uint32_t index, uint32_t gen, int* err) {
  Conn* c = lookup(index, gen);
  if (!c) { *err = kErrStaleId; return nullptr; }
  // A host name being resolved, or its addresses raced: not yet.
  if (!c->quic) { *err = c->quic_race || c->proto == kProtoQuic ? kErrQuicNotReady : kErrNotQuic; return nullptr; }
  if (c->state != ConnState::Open) { *err = kErrClosing; return nullptr; }
  return c->quic.get();
}

bool Shard::quic_owes(const Conn& c) {
  return c.quic && c.state == ConnState::Open && c.quic->events_more && !c.pool_waiting;
}

int Shard::quic_listen(uint32_t ep, uint32_t gen, std::shared_ptr<QuicEndpoint> q) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open || e.closing) return kErrStaleId;
  if (e.kind != EpKind::Udp || e.quic) return kErrWrongKind;
  q->local_len = sizeof q->local;
  if (getsockname(e.fd, reinterpret_cast<sockaddr*>(&q->local), &q->local_len) < 0) return -errno;
  // What we advertise we can receive is what one receive buffer holds (a client's first
  // datagram is 1200 bytes: a pool slot smaller than that would refuse everyone).
  size_t rx = udp_max_receive(e);
  if (rx < 1200) return -EMSGSIZE;
  quiche_config_set_max_recv_udp_payload_size(q->cfg, std::min<size_t>(rx, 65527));
  if (q->pacing == QuicPacing::Txtime && !udp_enable_txtime(ep, &q->pacing_note)) q->pacing = QuicPacing::Wheel;
  e.quic = std::move(q);
  return 0;
}

const QuicCounters* Shard::endpoint_quic_stats(uint32_t ep, uint32_t gen) const {
  const QuicEndpoint* q = endpoint_quic(ep, gen);
  return q ? &q->stats : nullptr;
}

const QuicEndpoint* Shard::endpoint_quic(uint32_t ep, uint32_t gen) const {
  const Endpoint* e = endpoint(ep, gen);
  return e && e->quic ? e->quic.get() : nullptr;
}

// ------------------------------------------------------------------ client

// ------------------------------------------------------------------ service: events, packets, timer

void Shard::quic_service(uint32_t index, bool allow_events) {
  Conn& c = conns_[index];
  if (c.state != ConnState::Open || !c.quic) return;
  ConnQuic& cq = *c.quic;
  quiche_conn* q = cq.q;
  if (allow_events) {
    cq.events_more = false;
    if (!cq.connected_sent &&
        (quiche_conn_is_established(q) || (!cq.client && quiche_conn_is_in_early_data(q)))) {
      if (!room(3)) {
        cq.events_more = true;
      } else {
        cq.connected_sent = true;
        c.opened = true;
        if (c.connect_timer != TimerWheel::kNone) {
          timers_.cancel(c.connect_timer);
          c.connect_timer = TimerWheel::kNone;
        }
        if (cq.handshaking) {
          cq.handshaking = false;
          if (cq.ep->handshaking) --cq.ep->handshaking;
        }
        emit(kEvConnected, index, c.gen, kProtoQuic, cq.client ? 0 : c.endpoint_gen, 0, kConnectedTls,
             cq.client ? -1 : c.endpoint);
      }
    }
    if (cq.connected_sent && !cq.events_more) {
      // Stream data: one pool slot per piece, lent to JS for this batch (flow control opens as
      // the application is handed the bytes).
      quiche_stream_iter* it = quiche_conn_readable(q);
      uint64_t sid;
      const uint32_t ss = pool_->slot_size();
      while (!cq.events_more && quiche_stream_iter_next(it, &sid)) {
        if (!cq.pulled.empty() && std::find(cq.pulled.begin(), cq.pulled.end(), sid) != cq.pulled.end()) {
          // Pull mode: the data stays in quiche; one Readable until the application reads it dry.
          if (std::find(cq.pull_told.begin(), cq.pull_told.end(), sid) != cq.pull_told.end()) continue;
          if (!room(3)) { cq.events_more = true; break; }
          cq.pull_told.push_back(sid);
          emit(kEvQuicReadable, index, c.gen, 0, 0, 0, 0, static_cast<int32_t>(sid));
          continue;
        }
        for (;;) {
          if (!room(3)) { cq.events_more = true; break; }
          int64_t s = pool_->acquire();
          if (s < 0) { cq.events_more = true; wait_for_slot(index); break; }
          bool fin = false;
          uint64_t ec = 0;
          ssize_t r = quiche_conn_stream_recv(q, sid, pool_->slot_ptr(static_cast<uint32_t>(s)), ss, &fin, &ec);
          if (r >= 0) {
            loaned_plain_.push_back(static_cast<uint32_t>(s));
            emit(kEvStreamFrame, index, c.gen, kKindBinary,
                 static_cast<uint32_t>(pool_->slot_offset(static_cast<uint32_t>(s))), static_cast<uint32_t>(r),
                 static_cast<int32_t>(sid), fin ? kQuicFin : 0);
            if (fin || static_cast<size_t>(r) < ss) break;
            continue;
          }
          pool_->release(static_cast<uint32_t>(s));
          if (r == QUICHE_ERR_STREAM_RESET)
            emit(kEvQuicStreamReset, index, c.gen, 0, 0, 0, clip_code(ec), static_cast<int32_t>(sid));
          break;
        }
      }
      quiche_stream_iter_free(it);
      // Datagrams (RFC 9221).
      while (!cq.events_more) {
        ssize_t front = quiche_conn_dgram_recv_front_len(q);
        if (front < 0) break;
        if (!room(3)) { cq.events_more = true; break; }
        if (static_cast<size_t>(front) > ss) {  // larger than a slot: cannot be lent, dropped
          uint8_t sink[65536];
          quiche_conn_dgram_recv(q, sink, sizeof sink);
          continue;
        }
        int64_t s = pool_->acquire();
        if (s < 0) { cq.events_more = true; wait_for_slot(index); break; }
        ssize_t r = quiche_conn_dgram_recv(q, pool_->slot_ptr(static_cast<uint32_t>(s)), ss);
        if (r < 0) { pool_->release(static_cast<uint32_t>(s)); break; }
        loaned_plain_.push_back(static_cast<uint32_t>(s));
        emit(kEvQuicDatagram, index, c.gen, 0, static_cast<uint32_t>(pool_->slot_offset(static_cast<uint32_t>(s))),
             static_cast<uint32_t>(r), 0, 0);
      }
      // A write met the peer's stream limit: Writable (stream -1) once it allows more streams.
      if (!cq.events_more && ((cq.want_bidi && quiche_conn_peer_streams_left_bidi(q) > 0) ||
                              (cq.want_uni && quiche_conn_peer_streams_left_uni(q) > 0))) {
        if (!room(3)) {
          cq.events_more = true;
        } else {
          if (quiche_conn_peer_streams_left_bidi(q) > 0) cq.want_bidi = false;
          if (quiche_conn_peer_streams_left_uni(q) > 0) cq.want_uni = false;
          emit(kEvWritable, index, c.gen, 0, 0, 0, -1, 0);
        }
      }
      // STOP_SENDING on streams nobody is writing to now: quiche counts them; the stopped ones
      // come first out of its writable iterator.
      if (!cq.events_more) {
        quiche_stats st;
        quiche_conn_stats(q, &st);
        if (st.stopped_stream_count_remote > cq.stops_seen) {
          quiche_stream_iter* wi = quiche_conn_writable(q);
          uint64_t ws;
          while (quiche_stream_iter_next(wi, &ws)) {
            if (!room(3)) { cq.events_more = true; break; }
            if (quiche_conn_stream_capacity(q, ws) == QUICHE_ERR_STREAM_STOPPED) quic_stop_told(index, ws);
          }
          quiche_stream_iter_free(wi);
          if (!cq.events_more) cq.stops_seen = st.stopped_stream_count_remote;
        }
      }
            // Streams that were told to wait: Writable once they have room again, StopSending when
      // the peer asked us to stop.
      for (size_t i = 0; i < cq.want_writable.size() && !cq.events_more;) {
        uint64_t w = cq.want_writable[i];
        if (!room(3)) { cq.events_more = true; break; }
        ssize_t cap = quiche_conn_stream_capacity(q, w);
        if (cap == QUICHE_ERR_STREAM_STOPPED) {
          quic_stop_told(index, w);
        } else if (cap == 0 || cap == QUICHE_ERR_DONE) {
          ++i;
          continue;
        } else {
          // Room again — or the stream is gone (reset and collected): the writer is told either
          // way, and its next write says which.
          emit(kEvWritable, index, c.gen, 0, 0, 0, static_cast<int32_t>(w), 0);
        }
        cq.want_writable[i] = cq.want_writable.back();
        cq.want_writable.pop_back();
      }
    }
  }
  if (cq.connected_sent) quic_paths(index);
  quic_send(index);
  if (c.graceful && quic_delivered(cq)) {
    // A graceful close: everything we sent is acknowledged — CONNECTION_CLOSE (code 0) now.
    quiche_conn_close(q, true, 0, nullptr, 0);
    quic_send(index, true);
  }
  // Closed — or closing by quiche's own decision (a failed handshake, a violation: its
  // CONNECTION_CLOSE just went out), or draining after the peer's: reported now rather than after
  // the 3-PTO closing/draining period (RFC 9000 section 10.2 lets an endpoint skip it). What
  // arrived before the close reaches the application first: events left for lack of event room
  // or pool slots, and what pulled streams hold until streamRead takes it (for at most
  // kQuicReadAfterCloseMs; writes are refused meanwhile).
  uint64_t wait_until = UINT64_MAX;
  if (cq.leader != UINT32_MAX && quic_conn_over(q)) {  // a racing attempt that nobody answered
    quic_race_lost(index);
    return;
  }
  if (quic_conn_over(q)) {
    if (cq.read_until == 0) cq.read_until = now_ms() + kQuicReadAfterCloseMs;
    if (c.graceful && c.timer != TimerWheel::kNone) {  // over: not a graceful timeout any more
      timers_.cancel(c.timer);
      c.timer = TimerWheel::kNone;
    }
    if (now_ms() >= cq.read_until || !(cq.events_more || pulled_unread(q, cq))) {
      begin_close(index, 0, kOriginPeer);  // quic_begin_close tells who and why
      return;
    }
    wait_until = cq.read_until;
  }
  uint64_t ns = quiche_conn_timeout_as_nanos(q);
  uint64_t d = ns == UINT64_MAX ? UINT64_MAX : now_ms() + (ns + 999999) / 1000000;
  d = std::min(d, wait_until);
  if (d != cq.deadline) {
    if (cq.timer != TimerWheel::kNone) timers_.cancel(cq.timer);
    cq.timer = d == UINT64_MAX ? TimerWheel::kNone : timers_.add(d, kTimerQuic, index, c.gen);
    cq.deadline = d;
  }
}

// A StopSending event for a stream (once), with the peer's code (quiche gives it to a write).
void Shard::quic_stop_told(uint32_t index, uint64_t stream) {
  Conn& c = conns_[index];
  ConnQuic& cq = *c.quic;
  if (std::find(cq.stop_told.begin(), cq.stop_told.end(), stream) != cq.stop_told.end()) return;
  uint64_t ec = 0;
  quiche_conn_stream_send(cq.q, stream, kQuicNoBytes, 0, false, &ec);
  cq.stop_told.push_back(stream);
  emit(kEvQuicStopSending, index, c.gen, 0, 0, 0, clip_code(ec), static_cast<int32_t>(stream));
}

void Shard::quic_timer(uint32_t index) {
  Conn& c = conns_[index];
  ConnQuic& cq = *c.quic;
  cq.timer = TimerWheel::kNone;
  cq.deadline = UINT64_MAX;
  quiche_conn_on_timeout(cq.q);
  mark_dirty(index);
}

// Packets out: quiche writes each into a pool slot; packets of one size to one destination
// form a GSO train (UDP_SEGMENT) of up to kIovMax, one sendmsg each.
void Shard::quic_send(uint32_t index, bool unpaced) {
  Conn& c = conns_[index];
  ConnQuic& cq = *c.quic;
  if (cq.ep_index >= endpoints_.size()) return;
  Endpoint& e = endpoints_[cq.ep_index];
  if (e.gen != cq.ep_gen || !e.open || e.closing) return;
  const uint32_t ss = pool_->slot_size();
  int64_t held = -1;  // a packet that could not join the last train
  size_t held_len = 0;
  quiche_send_info held_si{};
  // Closing: the CONNECTION_CLOSE (and what is held before it) goes now, unpaced.
  const QuicPacing pacing = unpaced ? QuicPacing::Off : cq.ep->pacing;
  const uint64_t now_ns = pacing == QuicPacing::Off ? 0 : mono_ns();
  uint64_t held_at = 0;
  if (cq.paced >= 0) {  // a packet waiting for its send time leads, once due
    if (pacing == QuicPacing::Wheel && cq.paced_at_ns > now_ns + kPaceSlackNs && cq.pace_timer != TimerWheel::kNone)
      return;  // its timer is armed
    held = cq.paced;
    held_len = cq.paced_len;
    held_at = cq.paced_at_ns;
    held_si.to = cq.paced_to;
    held_si.to_len = cq.paced_to_len;
    cq.paced = -1;
    if (cq.pace_timer != TimerWheel::kNone) timers_.cancel(cq.pace_timer);
    cq.pace_timer = TimerWheel::kNone;
  }
  for (;;) {
    uint32_t free = static_cast<uint32_t>(e.udp_tx.size()) - e.udp_queued;
    if (free == 0) {
      if (!cq.tx_blocked) {
        cq.tx_blocked = true;
        cq.ep->tx_waiters.push_back(index);
      }
      if (held >= 0) {  // it stays first in line (quiche counts it sent): the wake-up sends it
        cq.paced = held;
        cq.paced_len = held_len;
        cq.paced_at_ns = held_at;
        cq.paced_to = held_si.to;
        cq.paced_to_len = held_si.to_len;
      }
      return;
    }
    uint32_t entry = e.udp_free;
    UdpTx& t = e.udp_tx[entry];
    t.nslots = 0;
    t.shared = false;
    // A train needs a second free entry for the packet that may not fit it.
    uint32_t max_pkts = udp_probe_.gso && cq.ep->gso && free >= 2 ? kIovMax : 1;
    size_t seg = 0;
    quiche_send_info si{};
    sockaddr_storage to{};
    socklen_t tolen = 0;
    bool stop = false;
    uint64_t train_at = 0;  // Txtime: the first packet's send time
    if (held >= 0) {
      if (pacing == QuicPacing::Txtime && held_at > now_ns) train_at = held_at;
      t.slots[0] = static_cast<uint32_t>(held);
      t.iov[0].iov_base = pool_->slot_ptr(static_cast<uint32_t>(held));
      t.iov[0].iov_len = held_len;
      t.nslots = 1;
      seg = held_len;
      to = held_si.to;
      tolen = held_si.to_len;
      held = -1;
    }
    while (t.nslots < max_pkts) {
      // Packets are bulk TX: under pool pressure they keep to its budget (the connection is
      // woken when slots come back), so one fast sender cannot take the whole pool.
      if (!bulk_allowed(1)) { wait_for_slot(index); stop = true; break; }
      int64_t s = pool_->acquire();
      if (s < 0) { wait_for_slot(index); stop = true; break; }
      ssize_t w = quiche_conn_send(cq.q, pool_->slot_ptr(static_cast<uint32_t>(s)), ss, &si);
      if (w < 0) { pool_->release(static_cast<uint32_t>(s)); stop = true; break; }
      if (pacing == QuicPacing::Wheel) {
        uint64_t at = ts_ns(si.at);
        uint32_t tm = TimerWheel::kNone;
        if (at > now_ns + kPaceSlackNs)
          tm = timers_.add(now_ms() + (at - now_ns + 999999) / 1000000, kTimerQuicPace, index, c.gen);
        if (tm != TimerWheel::kNone) {  // (no timer to be had: it goes now)
          // Due later (quiche's pacer): it waits in the connection for the wheel, and leads the
          // next train then.
          cq.paced = s;
          cq.paced_len = static_cast<size_t>(w);
          cq.paced_at_ns = at;
          cq.paced_to = si.to;
          cq.paced_to_len = si.to_len;
          ++cq.ep->stats.paced_waits;
          cq.pace_timer = tm;
          stop = true;
          break;
        }
      } else if (pacing == QuicPacing::Txtime) {
        // One send time per train: a packet due more than the slack after the train's first
        // starts the next train (SO_TXTIME keeps one time per sendmsg).
        uint64_t at = ts_ns(si.at);
        if (t.nslots == 0) {
          train_at = at > now_ns ? at : 0;
        } else if (at > (train_at ? train_at : now_ns) + kPaceSlackNs) {
          held = s;
          held_len = static_cast<size_t>(w);
          held_at = at;
          held_si = si;
          break;
        }
      }
      if (t.nslots == 0) {
        seg = static_cast<size_t>(w);
        to = si.to;
        tolen = si.to_len;
      } else if (si.to_len != tolen || memcmp(&si.to, &to, tolen) != 0 || static_cast<size_t>(w) > seg) {
        held = s;
        held_len = static_cast<size_t>(w);
        held_at = pacing == QuicPacing::Txtime ? ts_ns(si.at) : 0;
        held_si = si;
        break;
      }
      t.slots[t.nslots] = static_cast<uint32_t>(s);
      t.iov[t.nslots].iov_base = pool_->slot_ptr(static_cast<uint32_t>(s));
      t.iov[t.nslots].iov_len = static_cast<size_t>(w);
      ++t.nslots;
      if (static_cast<size_t>(w) < seg) break;  // a shorter packet ends its train
    }
    if (t.nslots == 0) return;
    gauges_.tx_ring.add(t.nslots);
    cq.ep->stats.packets_out += t.nslots;
    if (t.nslots > 1) ++cq.ep->stats.gso_trains;
    for (uint32_t i = 0; i < t.nslots; ++i) c.bytes_out += t.iov[i].iov_len;
    udp_submit(cq.ep_index, entry, reinterpret_cast<sockaddr*>(&to), tolen,
               t.nslots > 1 ? static_cast<uint16_t>(seg) : 0, train_at);
    if (stop && held < 0) return;
  }
}

void Shard::quic_drop_paced(ConnQuic& cq) {
  if (cq.paced >= 0) pool_->release(static_cast<uint32_t>(cq.paced));
  cq.paced = -1;
  if (cq.pace_timer != TimerWheel::kNone) timers_.cancel(cq.pace_timer);
  cq.pace_timer = TimerWheel::kNone;
}

void Shard::quic_wake_tx(uint32_t ep) {
  QuicEndpoint& qe = *endpoints_[ep].quic;
  if (qe.tx_waiters.empty()) return;
  for (uint32_t idx : qe.tx_waiters) {
    Conn& c = conns_[idx];
    if (c.quic) {
      c.quic->tx_blocked = false;
      mark_dirty(idx);
    }
  }
  qe.tx_waiters.clear();
}

// Path events: a peer that moved (NAT rebinding, or migrating on purpose) is reported once
// quiche has validated the new path and made it the active one; connection ids the peer retired
// leave the lookup, and a server keeps the peer supplied with spare ones (a client that
// migrates on purpose needs one per path).
void Shard::quic_paths(uint32_t index) {
  Conn& c = conns_[index];
  ConnQuic& cq = *c.quic;
  quiche_conn* q = cq.q;
  while (room(3)) {
    quiche_path_event* pe = quiche_conn_path_event_next(q);
    if (!pe) break;
    if (quiche_path_event_type(pe) == QUICHE_PATH_EVENT_PEER_MIGRATED) {
      sockaddr_storage local{}, peer{};
      socklen_t ll = 0, pl = 0;
      quiche_path_event_peer_migrated(pe, &local, &ll, &peer, &pl);
      cq.old_peer = c.addr;
      cq.migrated = true;
      memcpy(&c.addr, &peer, std::min<size_t>(pl, sizeof c.addr));
      c.addr_len = pl;
      emit(kEvPathMigration, index, c.gen, kProtoQuic, 0, 0, 0, 0);
    }
    quiche_path_event_free(pe);
  }
  if (cq.client) return;
  if (quiche_conn_retired_scids(q) > 0) {
    quiche_connection_id_iter* it = quiche_conn_retired_scid_iter(q);
    const uint8_t* id;
    size_t n;
    while (quiche_connection_id_iter_next(it, &id, &n)) {
      std::string_view v(reinterpret_cast<const char*>(id), n);
      auto m = cq.ep->cids.find(v);
      if (m != cq.ep->cids.end() && m->second == index) cq.ep->cids.erase(m);
      cq.cids.erase(std::remove(cq.cids.begin(), cq.cids.end(), v), cq.cids.end());
    }
    quiche_connection_id_iter_free(it);
  }
  for (int guard = 0; guard < 8 && quiche_conn_scids_left(q) > 0; ++guard) {
    uint8_t id[quic::kCidLen], token[16];
    quic::make_cid(id, cq.ep->slot);
    if (cq.ep->resets) quic::reset_token(reinterpret_cast<const uint8_t*>(cq.ep->reset_key.data()), cq.ep->reset_key.size(), id, sizeof id, token);
    else RAND_bytes(token, sizeof token);
    uint64_t seq = 0;
    if (quiche_conn_new_scid(q, id, sizeof id, token, false, &seq) < 0) break;
    cq.cids.emplace_back(reinterpret_cast<const char*>(id), sizeof id);
    cq.ep->cids[cq.cids.back()] = index;
  }
}

// ------------------------------------------------------------------ close

void Shard::quic_begin_close(uint32_t index, int32_t* err, int32_t* origin) {
  Conn& c = conns_[index];
  ConnQuic& cq = *c.quic;
  quiche_conn* q = cq.q;
  if (!quiche_conn_is_closed(q) && !quiche_conn_is_draining(q)) {
    // Our close (close(), shutdown, the endpoint closing): CONNECTION_CLOSE now.
    if (!cq.close.known) {
      // A graceful close that timed out says so to the peer (its streams end without a FIN).
      static constexpr char kTimedOut[] = "graceful close timed out";
      const bool gto = *origin == kOriginTimeout && *err == ETIMEDOUT;
      quiche_conn_close(q, true, 0, gto ? reinterpret_cast<const uint8_t*>(kTimedOut) : nullptr, gto ? sizeof kTimedOut - 1 : 0);
    }
    quic_send(index, true);  // unpaced: a held packet, then the CONNECTION_CLOSE
    // The send queue full (a transfer in flight) or the pool's bulk budget spent: the
    // CONNECTION_CLOSE goes straight to the socket, or the peer would learn of the close only
    // from its idle timeout.
    Endpoint& e = endpoints_[cq.ep_index];
    if (e.gen == cq.ep_gen && e.open) {
      uint8_t pkt[1500];
      quiche_send_info si{};
      for (int i = 0; i < 4; ++i) {
        ssize_t w = quiche_conn_send(q, pkt, sizeof pkt, &si);
        if (w <= 0) break;
        ::sendto(e.fd, pkt, static_cast<size_t>(w), MSG_DONTWAIT, reinterpret_cast<const sockaddr*>(&si.to), si.to_len);
        c.bytes_out += static_cast<uint64_t>(w);
      }
    }
  }
  QuicCloseInfo& ci = cq.close;
  const int32_t given_origin = *origin;
  bool app = false;
  uint64_t code = 0;
  const uint8_t* reason = nullptr;
  size_t rlen = 0;
  // Our own cause (ConnectTimeout, a graceful close that timed out): kept as it is.
  const bool engine_code = *err < 0 || (given_origin == kOriginTimeout && *err == ETIMEDOUT);
  if (quiche_conn_peer_error(q, &app, &code, &reason, &rlen)) {
    ci.peer = true;
    *origin = kOriginPeer;
  } else if (quiche_conn_local_error(q, &app, &code, &reason, &rlen)) {
    ci.peer = false;
    *origin = app || code == 0 ? kOriginLocal : kOriginError;
  } else if (quiche_conn_is_timed_out(q)) {
    ci.timed_out = true;
    *origin = kOriginTimeout;
  } else if (ci.reset) {
    *origin = kOriginPeer;
  }
  // A handshake that failed on a certificate: the verifier's reason (quiche's code says only
  // which alert went out).
  if (!app && code >= 0x100 && code <= 0x1ff && cq.ssl) {
    long v = SSL_get_verify_result(static_cast<SSL*>(cq.ssl));
    if (v != X509_V_OK) ci.tls_reason = std::string("certificate verification failed: ") + X509_verify_cert_error_string(v);
  }
  quic_drop_paced(cq);  // whatever is still held (the queue was full) is given up with the connection
  ci.known = true;
  ci.app = app;
  ci.code = code;
  if (reason && rlen) ci.reason.assign(reinterpret_cast<const char*>(reason), rlen);
  if (!engine_code) *err = ci.reset ? ECONNRESET : clip_code(code);
  else *origin = given_origin;
  if (cq.handshaking) {
    cq.handshaking = false;
    if (cq.ep->handshaking) --cq.ep->handshaking;
    ++cq.ep->stats.handshakes_failed;
  }
  if (cq.timer != TimerWheel::kNone) {
    timers_.cancel(cq.timer);
    cq.timer = TimerWheel::kNone;
  }
}

void Shard::quic_release(Conn& c) {
  ConnQuic& cq = *c.quic;
  uint32_t index = static_cast<uint32_t>(&c - conns_.data());
  if (cq.timer != TimerWheel::kNone) timers_.cancel(cq.timer);
  quic_drop_paced(cq);
  for (const std::string& id : cq.cids) {
    auto it = cq.ep->cids.find(id);
    if (it != cq.ep->cids.end() && it->second == index) cq.ep->cids.erase(it);
  }
  if (cq.tx_blocked) {
    auto& w = cq.ep->tx_waiters;
    w.erase(std::remove(w.begin(), w.end(), index), w.end());
  }
  if (!cq.client && cq.ep->conns && --cq.ep->conns == 0 && cq.ep->refusing &&
      cq.ep_index < endpoints_.size() && endpoints_[cq.ep_index].gen == cq.ep_gen &&
      endpoints_[cq.ep_index].open && !endpoints_[cq.ep_index].closing)
    endpoint_close(cq.ep_index, cq.ep_gen);  // shutdown: the listener's last connection is done
  if (cq.client) {
    cq.ep->client_conn = UINT32_MAX;
    if (cq.ep_index < endpoints_.size() && endpoints_[cq.ep_index].gen == cq.ep_gen &&
        endpoints_[cq.ep_index].open && !endpoints_[cq.ep_index].closing)
      endpoint_close(cq.ep_index, cq.ep_gen);
  }
  c.quic.reset();
}

void Shard::quic_endpoint_closing(uint32_t ep) {
  QuicEndpoint& qe = *endpoints_[ep].quic;
  if (!qe.certs) {  // a client's socket: its one connection
    if (qe.client_conn != UINT32_MAX && conns_[qe.client_conn].state == ConnState::Open)
      begin_close(qe.client_conn, 0, kOriginLocal);
    return;
  }
  for (uint32_t i = 0; i < conns_.size(); ++i) {
    Conn& c = conns_[i];
    if (c.quic && c.quic->ep_index == ep && c.quic->ep_gen == endpoints_[ep].gen &&
        c.state == ConnState::Open)
      begin_close(i, 0, kOriginLocal);
  }
}

// ------------------------------------------------------------------ calls

int64_t Shard::quic_stream_write(uint32_t index, uint32_t gen, uint64_t stream, const uint8_t* data,
                                 size_t len, bool fin) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  if (cq->read_until) return kErrClosing;  // the connection is over
  // closeGraceful: the streams already sent on may still be written and ended, no new ones.
  if (conns_[index].graceful && std::find(cq->sending.begin(), cq->sending.end(), stream) == cq->sending.end())
    return kErrClosing;
  if (!quiche_conn_is_established(cq->q) && !quiche_conn_is_in_early_data(cq->q)) return kErrQuicNotReady;
  uint64_t ec = 0;
  ssize_t r = quiche_conn_stream_send(cq->q, stream, data ? data : kQuicNoBytes, data ? len : 0, fin, &ec);
  if (r == QUICHE_ERR_DONE) {
    // No room now — or a stream quiche has finished with (reset by the peer and collected).
    ssize_t cap = quiche_conn_stream_capacity(cq->q, stream);
    if (cap == QUICHE_ERR_STREAM_STOPPED) return kErrQuicStreamStopped;
    if (cap < 0 && cap != QUICHE_ERR_DONE) return kErrQuicStreamState;
    r = 0;
  }
  if (r < 0) {
    if (r == QUICHE_ERR_STREAM_LIMIT) {
      (stream & 2 ? cq->want_uni : cq->want_bidi) = true;  // Writable -1 when the peer raises it
      return kErrQuicStreamLimit;
    }
    if (r == QUICHE_ERR_STREAM_STOPPED) return kErrQuicStreamStopped;
    return kErrQuicStreamState;
  }
  if ((r > 0 || fin) && (cq->sending.empty() || cq->sending.back() != stream) &&
      std::find(cq->sending.begin(), cq->sending.end(), stream) == cq->sending.end()) {
    // Kept for a graceful close (which waits until these are delivered); pruned of finished
    // streams as it grows, so it holds about the streams in flight.
    if (cq->sending.size() >= cq->sending_prune && !cq->events_more) {
      prune_settled(cq->q, cq->sending);
      cq->sending_prune = std::max<size_t>(64, 2 * cq->sending.size());
    }
    cq->sending.push_back(stream);
  }
  if ((stream & 1) == (cq->client ? 0u : 1u)) {  // one of ours: it (and every id below) is open now
    uint64_t& opened = stream & 2 ? cq->opened_uni : cq->opened_bidi;
    opened = std::max(opened, (stream >> 2) + 1);
    uint64_t& next = stream & 2 ? cq->next_uni : cq->next_bidi;
    if (stream >= next) next = stream + 4;  // openStream never hands out an id already written to
  }
  if (static_cast<size_t>(r) < len &&
      std::find(cq->want_writable.begin(), cq->want_writable.end(), stream) == cq->want_writable.end())
    cq->want_writable.push_back(stream);
  mark_dirty(index);
  return r;
}

int Shard::quic_stream_shutdown(uint32_t index, uint32_t gen, uint64_t stream, bool read, uint64_t code) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  int r = quiche_conn_stream_shutdown(cq->q, stream, read ? QUICHE_SHUTDOWN_READ : QUICHE_SHUTDOWN_WRITE, code);
  if (r < 0 && r != QUICHE_ERR_DONE) return kErrQuicStreamState;
  mark_dirty(index);
  return 0;
}

int Shard::quic_stream_pull(uint32_t index, uint32_t gen, uint64_t stream, bool on) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  auto at = std::find(cq->pulled.begin(), cq->pulled.end(), stream);
  if (on && at == cq->pulled.end()) cq->pulled.push_back(stream);
  if (!on && at != cq->pulled.end()) {
    cq->pulled.erase(at);
    cq->pull_ended.erase(std::remove(cq->pull_ended.begin(), cq->pull_ended.end(), stream), cq->pull_ended.end());
    cq->pull_told.erase(std::remove(cq->pull_told.begin(), cq->pull_told.end(), stream), cq->pull_told.end());
  }
  mark_dirty(index);  // data already there: a Readable (or StreamFrames) at the next service
  return 0;
}

int64_t Shard::quic_stream_read(uint32_t index, uint32_t gen, uint64_t stream, uint8_t* buf, size_t cap,
                                bool* fin, uint64_t* code) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  *fin = false;
  if (std::find(cq->pulled.begin(), cq->pulled.end(), stream) == cq->pulled.end()) return kErrQuicNotPulled;
  if (std::find(cq->pull_ended.begin(), cq->pull_ended.end(), stream) != cq->pull_ended.end()) {
    *fin = true;  // its end was read already
    if (!has(cq->pull_done, stream)) {
      cq->pull_done.push_back(stream);
      mark_dirty(index);  // a connection over waits for this (quic_service)
    }
    return 0;
  }
  uint8_t none[1];
  uint64_t ec = 0;
  ssize_t r = quiche_conn_stream_recv(cq->q, stream, cap ? buf : none, cap, fin, &ec);
  if (r >= 0) {
    mark_dirty(index);  // flow control: MAX_STREAM_DATA may be due
    if (*fin) {
      cq->pull_told.erase(std::remove(cq->pull_told.begin(), cq->pull_told.end(), stream), cq->pull_told.end());
      cq->pull_ended.push_back(stream);
      if (r == 0) cq->pull_done.push_back(stream);  // told now: the binding answers -1
    }
    return r;
  }
  // Read dry (or gone): the next arrival is told again.
  cq->pull_told.erase(std::remove(cq->pull_told.begin(), cq->pull_told.end(), stream), cq->pull_told.end());
  if (r == QUICHE_ERR_DONE && cq->read_until) {
    // The connection is over: nothing more will come, FIN or not (Disconnected says how it ended).
    *fin = true;
    if (!has(cq->pull_ended, stream)) cq->pull_ended.push_back(stream);
    if (!has(cq->pull_done, stream)) cq->pull_done.push_back(stream);
    mark_dirty(index);
    return 0;
  }
  if (r == QUICHE_ERR_DONE) return 0;
  if (r == QUICHE_ERR_STREAM_RESET) {
    *code = ec;
    cq->pull_ended.push_back(stream);  // told once; later reads see the end (-1)
    cq->pull_done.push_back(stream);
    return kErrQuicStreamReset;
  }
  return kErrQuicStreamState;
}

int Shard::quic_migration(uint32_t index, uint32_t gen, sockaddr_storage* old_peer, sockaddr_storage* new_peer) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->quic || !c->quic->migrated) return kErrNotQuic;
  *old_peer = c->quic->old_peer;
  *new_peer = c->addr;
  return 0;
}

int64_t Shard::quic_open_stream(uint32_t index, uint32_t gen, bool uni) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  if (conns_[index].graceful || cq->read_until) return kErrClosing;  // closing: nothing new
  if (!quiche_conn_is_established(cq->q) && !quiche_conn_is_in_early_data(cq->q)) return kErrQuicNotReady;
  uint64_t& next = uni ? cq->next_uni : cq->next_bidi;
  if (next > 0x7ffffff0) return kErrQuicStreamLimit;  // ids travel in 31 bits of an event
  // An id past the peer's limit would open every id below it too: refuse it (Writable with
  // stream -1 follows when the peer raises MAX_STREAMS) rather than hand it out.
  uint64_t left = uni ? quiche_conn_peer_streams_left_uni(cq->q) : quiche_conn_peer_streams_left_bidi(cq->q);
  if ((next >> 2) >= (uni ? cq->opened_uni : cq->opened_bidi) + left) {
    (uni ? cq->want_uni : cq->want_bidi) = true;
    return kErrQuicStreamLimit;
  }
  int64_t id = static_cast<int64_t>(next);
  next += 4;
  return id;
}

int Shard::quic_datagram(uint32_t index, uint32_t gen, const uint8_t* data, size_t len) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  if (conns_[index].graceful || cq->read_until) return kErrClosing;  // closing: nothing new
  if (!quiche_conn_is_established(cq->q) && !quiche_conn_is_in_early_data(cq->q)) return kErrQuicNotReady;
  ssize_t r = quiche_conn_dgram_send(cq->q, data && len ? data : kQuicNoBytes, len);
  if (r == QUICHE_ERR_DONE) return kErrQueueFull;
  if (r < 0) return kErrQuicDatagram;
  mark_dirty(index);
  return 0;
}

int64_t Shard::quic_datagram_max(uint32_t index, uint32_t gen) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  ssize_t r = quiche_conn_dgram_max_writable_len(cq->q);
  return r < 0 ? 0 : r;
}

// closeGraceful on QUIC: no new streams or datagrams; the streams already open finish — the
// application may still write to them and end them — and CONNECTION_CLOSE (code 0) goes once
// every stream we sent on is over in quiche (our bytes and FIN acknowledged, the peer's side
// ended and read, or the peer stopped it; quic_service), or when the timeout passes
// (Disconnected with ETIMEDOUT). Before Connected there is nothing to deliver: it closes at once.
int Shard::quic_close_graceful(uint32_t index, uint32_t timeout_ms) {
  Conn& c = conns_[index];
  ConnQuic& cq = *c.quic;
  if (!cq.connected_sent) {
    begin_close(index, 0, kOriginLocal);
    return 0;
  }
  c.graceful = true;
  if (c.timer != TimerWheel::kNone) timers_.cancel(c.timer);
  c.timer = timers_.add(now_ms() + timeout_ms, kTimerGraceful, index, c.gen);
  mark_dirty(index);
  return 0;
}

bool Shard::quic_delivered(ConnQuic& cq) {
  // Not while events wait for room: a stream quiche collects here could take its StopSending
  // event with it.
  if (cq.events_more) return false;
  prune_settled(cq.q, cq.sending);
  return cq.sending.empty() && quiche_conn_dgram_send_queue_len(cq.q) <= 0;
}

int Shard::quic_close(uint32_t index, uint32_t gen, uint64_t code, const std::string& reason) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  // A reason must fit one packet with the frame: at most 1000 bytes are sent.
  quiche_conn_close(cq->q, true, code, reinterpret_cast<const uint8_t*>(reason.data()), std::min<size_t>(reason.size(), 1000));
  cq->close.known = false;  // filled from quiche's local error by quic_begin_close
  quic_send(index, true);
  begin_close(index, 0, kOriginLocal);
  return 0;
}

bool Shard::quic_alpn(uint32_t index, uint32_t gen, std::string* out) {
  Conn* c = lookup(index, gen);
  if (!c || !c->quic) return false;
  const uint8_t* p = nullptr;
  size_t n = 0;
  quiche_conn_application_proto(c->quic->q, &p, &n);
  out->assign(reinterpret_cast<const char*>(p), p ? n : 0);
  return true;
}

bool Shard::quic_close_info(uint32_t index, uint32_t gen, QuicCloseInfo* out) {
  Conn* c = lookup(index, gen);
  if (!c || !c->quic || !c->quic->close.known) return false;
  *out = c->quic->close;
  return true;
}

bool Shard::quic_tls(uint32_t index, uint32_t gen, QuicTlsView* out) {
  Conn* c = lookup(index, gen);
  if (!c || !c->quic || !c->quic->ssl) return false;
  const ConnQuic& cq = *c->quic;
  const QuicCloseInfo& ci = cq.close;
  out->ssl = cq.ssl;
  out->server = !cq.client;
  // A CRYPTO_ERROR (0x100 + the TLS alert, RFC 9001 section 4.8) fails the session; any other
  // end of the connection closes it.
  const bool crypto = ci.known && !ci.app && ci.code >= 0x100 && ci.code <= 0x1ff;
  const bool established = quiche_conn_is_established(cq.q);
  tls::Phase ph = crypto ? tls::Phase::Failed
                : c->state != ConnState::Open || quic_conn_over(cq.q) ? (established ? tls::Phase::Closed : tls::Phase::Failed)
                : established ? tls::Phase::Open : tls::Phase::Handshake;
  out->phase = static_cast<uint8_t>(ph);
  out->alert = crypto ? static_cast<int>(ci.code - 0x100) : -1;
  out->alert_received = crypto && ci.peer;
  if (crypto) out->reason = !ci.tls_reason.empty() ? ci.tls_reason : ci.reason;
  else if (ph == tls::Phase::Failed) out->reason = ci.timed_out ? "the handshake did not finish (idle timeout)" : "the connection ended before the handshake finished";
  return true;
}

int Shard::quic_conn_stats(uint32_t index, uint32_t gen, TcpStats* out) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->quic) return kErrNotQuic;
  quiche_stats st;
  quiche_conn_stats(c->quic->q, &st);
  quiche_path_stats ps{};
  if (quiche_conn_path_stats(c->quic->q, 0, &ps) == 0) {
    out->rtt_us = static_cast<uint32_t>(ps.rtt / 1000);
    out->rttvar_us = static_cast<uint32_t>(ps.rttvar / 1000);
    out->min_rtt_us = static_cast<uint32_t>(ps.min_rtt / 1000);
    out->cwnd = static_cast<uint32_t>(ps.cwnd);
    out->mss = static_cast<uint32_t>(ps.pmtu);
    out->delivery_rate = ps.delivery_rate;
  }
  out->retransmits = static_cast<uint32_t>(st.retrans);
  out->lost = static_cast<uint32_t>(st.lost);
  out->bytes_sent = st.sent_bytes;
  out->bytes_received = st.recv_bytes;
  out->bytes_acked = st.acked_bytes;
  out->bytes_retrans = st.stream_retrans_bytes;
  out->bytes_in = c->bytes_in;
  out->bytes_out = c->bytes_out;
  return 0;
}

}  // namespace zio
