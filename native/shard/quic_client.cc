// native/shard/quic_client.cc — QUIC client connections (see quic_conn.h): a connection on a
// UDP socket of its own, racing the addresses of a host name (RFC 8305), and 0-RTT with the
// session tickets a server issues.
#include <netinet/in.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <quiche.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include "shard/shard.h"

namespace zio {

namespace {
// A client's SessionSink: each ticket the server issues, in quiche's session format (the
// session's bytes, then the server's transport parameters 0-RTT is bound by; big-endian u64
// lengths before each), for quiche_conn_set_session on a later connection.
void keep_ticket(void* arg, SSL* ssl, SSL_SESSION* session) {
  auto* cq = static_cast<ConnQuic*>(arg);
  uint8_t* bytes = nullptr;
  size_t n = 0;
  if (!SSL_SESSION_to_bytes(session, &bytes, &n)) return;
  const uint8_t* tp = nullptr;
  size_t tpn = 0;
  SSL_get_peer_quic_transport_params(ssl, &tp, &tpn);
  std::string& t = cq->ticket;
  t.clear();
  auto put_len = [&t](uint64_t v) {
    for (int i = 7; i >= 0; --i) t.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  };
  put_len(n);
  t.append(reinterpret_cast<const char*>(bytes), n);
  put_len(tpn);
  if (tpn) t.append(reinterpret_cast<const char*>(tp), tpn);
  OPENSSL_free(bytes);
}

}  // namespace

int64_t Shard::quic_connect(const sockaddr* peer, socklen_t len, std::shared_ptr<QuicEndpoint> q,
                            std::string* err) {
  sockaddr_storage any{};
  socklen_t any_len;
  if (peer->sa_family == AF_INET6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&any);
    a->sin6_family = AF_INET6;
    a->sin6_addr = in6addr_any;
    any_len = sizeof(sockaddr_in6);
  } else if (peer->sa_family == AF_INET) {
    auto* a = reinterpret_cast<sockaddr_in*>(&any);
    a->sin_family = AF_INET;
    a->sin_addr.s_addr = htonl(INADDR_ANY);
    any_len = sizeof(sockaddr_in);
  } else {
    return -EAFNOSUPPORT;
  }
  UdpOptions o;
  o.gro = gro_available();
  o.send_queue = 256;
  const char* op = nullptr;
  int64_t ep = udp_bind(reinterpret_cast<sockaddr*>(&any), any_len, o, &op);
  if (ep < 0) return ep;
  uint32_t epi = static_cast<uint32_t>(ep);
  uint32_t epg = endpoints_[epi].gen;
  int64_t idx = alloc_conn();
  if (idx < 0) {
    endpoint_close(epi, epg);
    return idx;
  }
  SSL* ssl = SSL_new(q->client->ctx());
  if (!ssl || tls::client_ssl_setup(ssl, *q->client, err) < 0) {
    if (ssl) SSL_free(ssl);
    if (err->empty()) *err = "SSL_new failed";
    release_closed_now(static_cast<uint32_t>(idx));
    endpoint_close(epi, epg);
    return kErrQuicTls;
  }
  q->local_len = sizeof q->local;
  getsockname(endpoints_[epi].fd, reinterpret_cast<sockaddr*>(&q->local), &q->local_len);
  if (q->pacing == QuicPacing::Txtime && !udp_enable_txtime(epi, &q->pacing_note)) q->pacing = QuicPacing::Wheel;
  quiche_config_set_max_recv_udp_payload_size(q->cfg, std::min<size_t>(udp_max_receive(endpoints_[epi]), 65527));
  uint8_t scid[quic::kCidLen];
  quic::make_cid(scid, q->slot);
  quiche_conn* qc = quiche_conn_new_with_tls(scid, sizeof scid, nullptr, 0,
                                             reinterpret_cast<sockaddr*>(&q->local), q->local_len,
                                             peer, len, q->cfg, ssl, false);
  if (!qc) {
    *err = "quiche refused the connection settings";
    release_closed_now(static_cast<uint32_t>(idx));
    endpoint_close(epi, epg);
    return kErrQuicTls;
  }
  Conn& c = conns_[idx];
  c.state = ConnState::Open;
  c.proto = kProtoQuic;
  c.endpoint = -1;
  memcpy(&c.addr, peer, len);
  c.addr_len = len;
  c.quic = std::make_unique<ConnQuic>();
  ConnQuic& cq = *c.quic;
  cq.q = qc;
  cq.ep = q;
  cq.ep_index = epi;
  cq.ep_gen = epg;
  cq.tls = q->client;
  cq.ssl = ssl;
  cq.client = true;
  cq.sink = tls::SessionSink{keep_ticket, &cq};
  tls::set_session_sink(ssl, &cq.sink);
  cq.next_bidi = 0;  // client-initiated: bidirectional 0, 4, ...; unidirectional 2, 6, ...
  cq.next_uni = 2;
  q->client_conn = static_cast<uint32_t>(idx);
  if (q->connect_timeout_ms)
    c.connect_timer = timers_.add(now_ms() + q->connect_timeout_ms, kTimerConnect, static_cast<uint32_t>(idx), c.gen);
  endpoints_[epi].quic = std::move(q);
  ++counters_.conns_connected;
  mark_dirty(static_cast<uint32_t>(idx));  // the Initial goes out with the next flush
  return idx;
}

int Shard::quic_set_ticket(uint32_t index, uint32_t gen, const uint8_t* data, size_t len) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq) return err;
  if (!cq->client) return kErrWrongKind;
  quiche_stats st;
  quiche_conn_stats(cq->q, &st);
  if (st.sent > 0 || cq->connected_sent) return kErrQuicTicket;  // the ClientHello went already
  if (quiche_conn_set_session(cq->q, data && len ? data : kQuicNoBytes, len) < 0) {
    cq->ticket_refused = true;
    return kErrQuicTicket;
  }
  cq->ticket_set = true;
  // Early data only with the server's transport parameters from the ticket (the context's own
  // newest session, offered for plain resumption, does not carry them).
  SSL_set_early_data_enabled(static_cast<SSL*>(cq->ssl), 1);
  quic_send(index);  // the ClientHello (and the 0-RTT keys) now: early writes may follow
  mark_dirty(index);
  return 0;
}

int Shard::quic_ticket(uint32_t index, uint32_t gen, std::string* out) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->quic) return kErrNotQuic;
  *out = c->quic->ticket;  // kept until the Disconnected batch ends, like the close info
  return 0;
}

int Shard::quic_early_data(uint32_t index, uint32_t gen, std::string* reason) {
  int err;
  ConnQuic* cq = quic_conn(index, gen, &err);
  if (!cq && err == kErrQuicNotReady) {
    // A host name: there is no connection to an address yet to carry early data (each address
    // raced would be a handshake of its own).
    *reason = "no 0-RTT: the host name's addresses are still being resolved and raced — to send early "
              "data, resolve the name first and connect to an address (with tls.servername)";
    return 0;
  }
  if (!cq) return err;
  SSL* ssl = static_cast<SSL*>(cq->ssl);
  if (quiche_conn_is_in_early_data(cq->q)) {
    *reason = "in early data";
    return 1;
  }
  if (!quiche_conn_is_established(cq->q)) {
    *reason = cq->ticket_refused ? "no 0-RTT: the session ticket was refused (malformed)"
              : cq->ticket_set   ? "no 0-RTT: the session ticket allows no early data (the server did not offer it: its listener has no earlyData)"
                                 : "no 0-RTT: no session ticket was set before the first packet";
    return 0;
  }
  const char* why = SSL_early_data_reason_string(SSL_get_early_data_reason(ssl));
  *reason = why ? why : "unknown";
  return SSL_early_data_accepted(ssl) ? 1 : 0;
}

// ------------------------------------------------------------------ racing a host name's addresses

int Shard::quic_connect_race(uint32_t index, uint32_t gen, const sockaddr_storage* addrs, uint32_t n,
                             uint32_t delay_ms, std::shared_ptr<QuicEndpoint> model, std::string ticket) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (c->state != ConnState::Resolving || c->proto != kProtoQuic) return kErrClosing;
  if (n == 0) return -EINVAL;
  auto race = std::make_unique<QuicRace>();
  race->model = std::move(model);
  race->addrs.assign(addrs, addrs + n);
  race->delay_ms = delay_ms;
  race->ticket = std::move(ticket);
  c->quic_race = std::move(race);
  c->state = ConnState::Connecting;
  quic_race_next(index);
  return 0;
}

void Shard::quic_race_next(uint32_t leader) {
  Conn& c = conns_[leader];
  QuicRace& r = *c.quic_race;
  if (c.timer != TimerWheel::kNone) {
    timers_.cancel(c.timer);
    c.timer = TimerWheel::kNone;
  }
  while (r.next < r.addrs.size()) {
    const sockaddr_storage& a = r.addrs[r.next++];
    auto q = std::make_shared<QuicEndpoint>();
    q->cfg_hold = r.model->cfg_hold;
    q->cfg = r.model->cfg;
    q->settings = r.model->settings;
    q->client = r.model->client;
    q->connect_timeout_ms = 0;  // the entry's connectTimeoutMs bounds the whole race
    q->pacing = r.model->pacing;
    std::string err;
    socklen_t len = a.ss_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in);
    int64_t i = quic_connect(reinterpret_cast<const sockaddr*>(&a), len, std::move(q), &err);
    if (i < 0) {
      r.err = i > -1000 ? static_cast<int32_t>(-i) : static_cast<int32_t>(i);  // errno, or our code
      continue;
    }
    if (!r.ticket.empty())
      quic_set_ticket(static_cast<uint32_t>(i), conns_[i].gen, reinterpret_cast<const uint8_t*>(r.ticket.data()), r.ticket.size());
    ConnQuic& cq = *conns_[i].quic;
    cq.leader = leader;
    cq.leader_gen = c.gen;
    r.attempts.emplace_back(static_cast<uint32_t>(i), conns_[i].gen);
    memcpy(&c.addr, &a, len);  // peerAddress and failures name the latest attempt
    c.addr_len = len;
    if (r.next < r.addrs.size()) c.timer = timers_.add(now_ms() + r.delay_ms, kTimerHeNext, leader, c.gen);
    return;
  }
  if (r.attempts.empty()) begin_close(leader, r.err ? r.err : EHOSTUNREACH, kOriginError);
}

void Shard::quic_race_win(uint32_t attempt) {
  Conn& a = conns_[attempt];
  uint32_t li = a.quic->leader;
  Conn& c = conns_[li];
  if (c.gen != a.quic->leader_gen || c.state != ConnState::Connecting || !c.quic_race) {
    quic_race_drop(attempt, a.gen);  // the entry is gone
    return;
  }
  for (auto [i, g] : c.quic_race->attempts)
    if (i != attempt) quic_race_drop(i, g);
  c.quic_race.reset();
  if (c.timer != TimerWheel::kNone) {
    timers_.cancel(c.timer);
    c.timer = TimerWheel::kNone;
  }
  // The attempt's machine moves into the entry; its timer and send-queue place follow it.
  c.quic = std::move(a.quic);
  ConnQuic& cq = *c.quic;
  cq.leader = UINT32_MAX;
  if (cq.timer != TimerWheel::kNone) timers_.cancel(cq.timer);
  cq.timer = TimerWheel::kNone;
  cq.deadline = UINT64_MAX;
  if (cq.tx_blocked) std::replace(cq.ep->tx_waiters.begin(), cq.ep->tx_waiters.end(), attempt, li);
  cq.ep->client_conn = li;
  if (cq.pace_timer != TimerWheel::kNone) {  // a paced packet's timer: keyed to the entry now
    timers_.cancel(cq.pace_timer);
    cq.pace_timer = cq.paced >= 0 ? timers_.add(now_ms() + 1, kTimerQuicPace, li, c.gen) : TimerWheel::kNone;
  }
  if (a.pool_waiting) wait_for_slot(li);  // woken when pool slots come back, as the attempt was
  c.addr = a.addr;
  c.addr_len = a.addr_len;
  c.bytes_in += a.bytes_in;
  c.state = ConnState::Open;
  a.state = ConnState::Open;  // an empty entry now: released without an event
  release_closed_now(attempt);
  mark_dirty(li);
}

void Shard::quic_race_drop(uint32_t attempt, uint32_t gen) {
  Conn* a = lookup(attempt, gen);
  if (!a || !a->quic || a->state != ConnState::Open) return;
  quiche_conn_close(a->quic->q, false, 0, nullptr, 0);  // a server that did answer forgets it
  quic_send(attempt);
  release_closed_now(attempt);
}

void Shard::quic_race_lost(uint32_t attempt) {
  Conn& a = conns_[attempt];
  const uint32_t li = a.quic->leader, lg = a.quic->leader_gen;
  const bool timed_out = quiche_conn_is_timed_out(a.quic->q);
  release_closed_now(attempt);  // no event: the application never saw this attempt
  Conn& c = conns_[li];
  if (c.gen != lg || !c.quic_race) return;
  QuicRace& r = *c.quic_race;
  r.attempts.erase(std::remove_if(r.attempts.begin(), r.attempts.end(),
                                  [attempt](const auto& p) { return p.first == attempt; }),
                   r.attempts.end());
  r.err = timed_out ? ETIMEDOUT : ECONNREFUSED;
  if (r.attempts.empty()) quic_race_next(li);  // the next address at once (RFC 8305 section 5)
}

void Shard::quic_race_end(uint32_t leader) {
  Conn& c = conns_[leader];
  if (!c.quic_race) return;
  for (auto [i, g] : c.quic_race->attempts) quic_race_drop(i, g);
  c.quic_race.reset();
}

}  // namespace zio
