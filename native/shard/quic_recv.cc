// native/shard/quic_recv.cc — QUIC packets in (see quic_conn.h): datagrams of a QUIC endpoint
// (each GRO segment) to their connection by destination connection id, Version Negotiation,
// stateless retry, and new connections from clients' Initials.
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <quiche.h>
#include <sys/socket.h>

#include <cstring>
#include <string_view>

#include "shard/shard.h"

namespace zio {

// ------------------------------------------------------------------ packets in

void Shard::quic_recv(uint32_t ep, const sockaddr* from, socklen_t fromlen, uint8_t* p, size_t n,
                      uint32_t seg) {
  if (seg == 0 || seg >= n) return quic_packet(ep, from, fromlen, p, n);
  for (size_t off = 0; off < n; off += seg)
    quic_packet(ep, from, fromlen, p + off, std::min<size_t>(seg, n - off));
}

void Shard::quic_reply(uint32_t ep, const sockaddr* to, socklen_t tolen, const uint8_t* p, size_t n) {
  // Version negotiation and retry answers: one datagram each, dropped when the queue is full
  // (the client retransmits its Initial).
  udp_send(ep, endpoints_[ep].gen, to, tolen, p, n, 0);
}

// RFC 9000 section 10.3: the peer of a connection this listener no longer knows (it restarted,
// or dropped the connection) learns at once, instead of at its idle timeout. Only for ids with
// our length and slot — an id another shard or server issued is not ours to end (a datagram
// steered to the wrong shard must not kill a live connection) — and at most kResetsPerSecond.
void Shard::quic_stateless_reset(uint32_t ep, const quic::Header& h, const sockaddr* to, socklen_t tolen, size_t n) {
  QuicEndpoint& qe = *endpoints_[ep].quic;
  const size_t size = quic::reset_size(n);
  if (!qe.resets || size == 0 || h.dcid_len != quic::kCidLen || quic::cid_slot(h.dcid, h.dcid_len) != qe.slot) return;
  const uint64_t second = now_ms() / 1000;
  if (second != qe.reset_second) {
    qe.reset_second = second;
    qe.resets_this_second = 0;
  }
  if (qe.resets_this_second >= kResetsPerSecond) return;
  ++qe.resets_this_second;
  uint8_t token[quic::kResetTokenLen], out[64];
  quic::reset_token(reinterpret_cast<const uint8_t*>(qe.reset_key.data()), qe.reset_key.size(), h.dcid, h.dcid_len, token);
  quic::make_stateless_reset(token, size, out);
  ++qe.stats.stateless_resets;
  quic_reply(ep, to, tolen, out, size);
}

void Shard::quic_packet(uint32_t ep, const sockaddr* from, socklen_t fromlen, uint8_t* p, size_t n) {
  Endpoint& e = endpoints_[ep];
  QuicEndpoint& qe = *e.quic;
  ++qe.stats.packets_in;
  uint32_t idx;
  bool accepted_now = false;  // made by this very packet (a junk one leaves nothing behind)
  if (qe.client_conn != UINT32_MAX) {
    idx = qe.client_conn;  // a client's own socket carries one connection
  } else {
    quic::Header h;
    if (!quic::parse_header(p, n, &h)) {
      ++qe.stats.dropped;
      return;
    }
    auto it = qe.cids.find(std::string_view(reinterpret_cast<const char*>(h.dcid), h.dcid_len));
    if (it != qe.cids.end()) {
      idx = it->second;
    } else {
      uint8_t out[1500];
      // A long header of a version we do not speak, in a datagram large enough to be a client's
      // first (RFC 9000 section 6.1: smaller ones are not answered): Version Negotiation.
      if (h.long_header() && h.version != 0 && !quic::version_supported(h.version)) {
        long w = n >= 1200 ? quic::negotiate_version(h, out, sizeof out) : -1;
        if (w > 0) {
          ++qe.stats.version_negotiations;
          quic_reply(ep, from, fromlen, out, static_cast<size_t>(w));
        } else {
          ++qe.stats.dropped;
        }
        return;
      }
      // Only an Initial may open a connection; anything else for an unknown id is dropped — and
      // a short-header packet to an id of ours (our slot) is answered with a Stateless Reset.
      if (h.type != quic::PacketType::Initial) {
        ++qe.stats.unknown_cid;
        if (h.type == quic::PacketType::Short) quic_stateless_reset(ep, h, from, fromlen, n);
        return;
      }
      // RFC 9000 section 14.1: a client's Initial datagram is at least 1200 bytes; section 7.2:
      // its destination id at least 8.
      if (n < 1200 || h.dcid_len < 8) {
        ++qe.stats.dropped;
        return;
      }
      uint8_t odcid[20];
      size_t odcid_len = 0;
      if (qe.retry) {
        const auto* addr = reinterpret_cast<const uint8_t*>(from);
        if (h.token_len == 0) {  // no state before the client proves its address
          uint8_t tok[96], scid[quic::kCidLen];
          size_t tn = qe.tokens.mint(addr, fromlen, h.dcid, h.dcid_len, now_ms(), tok, sizeof tok);
          quic::make_cid(scid, qe.slot);
          long w = tn ? quic::make_retry(h, scid, sizeof scid, tok, tn, out, sizeof out) : -1;
          if (w > 0) {
            ++qe.stats.retries;
            quic_reply(ep, from, fromlen, out, static_cast<size_t>(w));
          }
          return;
        }
        odcid_len = qe.tokens.check(h.token, h.token_len, addr, fromlen, now_ms(), odcid);
        if (odcid_len == 0) {  // forged, expired, or for another address: dropped
          ++qe.stats.bad_tokens;
          return;
        }
      }
      if (qe.handshaking >= qe.max_handshakes || qe.refusing) {
        ++qe.stats.refused;
        return;
      }
      int64_t r = quic_accept(ep, h, from, fromlen, odcid_len ? odcid : nullptr, odcid_len);
      if (r < 0) return;
      idx = static_cast<uint32_t>(r);
      accepted_now = true;
    }
  }
  Conn& c = conns_[idx];
  if (c.state != ConnState::Open || !c.quic) return;  // closing: its CONNECTION_CLOSE went out
  quiche_recv_info ri{const_cast<sockaddr*>(from), fromlen, reinterpret_cast<sockaddr*>(&qe.local),
                      qe.local_len};
  ssize_t r = quiche_conn_recv(c.quic->q, p, n, &ri);
  // Closed by this very packet with no CONNECTION_CLOSE either way: it was a Stateless Reset
  // carrying the token the peer gave us (quiche says no more; RFC 9000 section 10.3.1).
  if (quiche_conn_is_closed(c.quic->q) && !c.quic->close.reset) {
    bool app = false;
    uint64_t code = 0;
    const uint8_t* why = nullptr;
    size_t wn = 0;
    if (!quiche_conn_peer_error(c.quic->q, &app, &code, &why, &wn) && !quiche_conn_local_error(c.quic->q, &app, &code, &why, &wn))
      c.quic->close.reset = true;
  }
  if (r < 0) {
    ++qe.stats.dropped;  // undecryptable, or a violation (quiche closes: seen in service)
    if (accepted_now) {
      // The Initial that made the connection was junk: no state stays behind for it (else any
      // 1200 bytes of noise would hold a handshake slot until the idle timeout).
      ConnQuic& cq = *c.quic;
      cq.handshaking = false;
      if (qe.handshaking) --qe.handshaking;
      if (qe.stats.accepted) --qe.stats.accepted;
      if (e.accepted) --e.accepted;
      if (counters_.conns_accepted) --counters_.conns_accepted;
      release_closed_now(idx);
      return;
    }
  }
  c.bytes_in += n;
  if (c.quic->leader != UINT32_MAX) {
    // A racing attempt its server answered (a packet quiche took, from the address it was sent
    // to: a stray datagram on the unconnected socket does not count) wins.
    if (r >= 0 && fromlen == c.addr_len && memcmp(from, &c.addr, fromlen) == 0 && !quic_conn_over(c.quic->q)) {
      quic_race_win(idx);
      return;
    }
    mark_dirty(idx);
    return;
  }
  mark_dirty(idx);
}

int64_t Shard::quic_accept(uint32_t ep, const quic::Header& h, const sockaddr* from,
                           socklen_t fromlen, const uint8_t* odcid, size_t odcid_len) {
  Endpoint& e = endpoints_[ep];
  QuicEndpoint& qe = *e.quic;
  int64_t idx = alloc_conn();
  if (idx >= 0 && pressure_.state == kDrain && pool_exhausted()) {
    ++pressure_.accepts_refused;
    release_closed_now(static_cast<uint32_t>(idx));
    idx = kErrTableFull;
  }
  if (idx < 0) {
    ++qe.stats.refused;
    ++e.rejected;
    ++counters_.conns_rejected;
    return idx;
  }
  std::shared_ptr<tls::Context> ctx = qe.certs->get();
  SSL* ssl = SSL_new(ctx->ctx());
  // After a retry the client already uses the id we gave it in the Retry packet.
  uint8_t scid[quic::kCidLen];
  if (odcid_len && h.dcid_len == quic::kCidLen) memcpy(scid, h.dcid, sizeof scid);
  else quic::make_cid(scid, qe.slot);
  if (qe.resets) {  // the token of this first id goes in our transport parameters
    uint8_t token[quic::kResetTokenLen];
    quic::reset_token(reinterpret_cast<const uint8_t*>(qe.reset_key.data()), qe.reset_key.size(), scid, sizeof scid, token);
    quiche_config_set_stateless_reset_token(qe.cfg, token);
  }
  quiche_conn* q = ssl ? quiche_conn_new_with_tls(scid, sizeof scid, odcid, odcid_len,
                                                  reinterpret_cast<sockaddr*>(&qe.local), qe.local_len,
                                                  from, fromlen, qe.cfg, ssl, true)
                       : nullptr;
  if (!q) {
    ++qe.stats.dropped;
    release_closed_now(static_cast<uint32_t>(idx));
    return -1;
  }
  Conn& c = conns_[idx];
  c.state = ConnState::Open;
  c.opened = true;  // accepted: a failed handshake is reported as the peer's, not a failed connect
  c.proto = kProtoQuic;
  c.endpoint = static_cast<int32_t>(ep);
  c.endpoint_gen = e.gen;
  memcpy(&c.addr, from, fromlen);
  c.addr_len = fromlen;
  c.quic = std::make_unique<ConnQuic>();
  ConnQuic& cq = *c.quic;
  cq.q = q;
  cq.ep = e.quic;
  cq.ep_index = ep;
  cq.ep_gen = e.gen;
  cq.tls = std::move(ctx);
  cq.ssl = ssl;
  cq.next_bidi = 1;  // server-initiated: bidirectional 1, 5, ...; unidirectional 3, 7, ...
  cq.next_uni = 3;
  cq.cids.emplace_back(reinterpret_cast<const char*>(scid), sizeof scid);
  if (!odcid_len) cq.cids.emplace_back(reinterpret_cast<const char*>(h.dcid), h.dcid_len);
  for (const std::string& id : cq.cids) qe.cids[id] = static_cast<uint32_t>(idx);
  ++qe.handshaking;
  ++qe.stats.accepted;
  ++qe.conns;
  ++e.accepted;
  ++counters_.conns_accepted;
  return idx;
}

}  // namespace zio
