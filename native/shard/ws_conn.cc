// native/shard/ws_conn.cc — the WebSocket server connection (see ws_conn.h): the upgrade check
// and the 101, frames in (messages as StreamFrame events), frames out (whole messages with a
// send budget), the close handshake, pings and the idle bound; the client side is ws_client.cc.
//
// A connection's life:
//   HTTP request with Upgrade: websocket --checked--> (manual: held, WsUpgrade) --101--> open
//   open --our close frame--> closing --peer's close frame / closeTimeoutMs--> TCP closed
//   open --peer's close frame--> our close frame echoed --> TCP closed (the server closes first)
//   open --violation--> close frame with its code --> TCP closed;  open --FIN / reset--> 1006
#include <algorithm>
#include <cstring>

#include "shard/shard.h"

namespace zio {

namespace {

// Whether a request path equals a configured one (the path without the query).
bool path_listed(const std::vector<std::string>& list, const uint8_t* p, size_t n) {
  if (list.empty()) return true;
  for (const auto& s : list)
    if (s.size() == n && memcmp(s.data(), p, n) == 0) return true;
  return false;
}

constexpr size_t kReasonMax = 123;  // a close frame's payload is at most 125 bytes

// A compressed message is inflated whole (also in pieces mode), so it is bounded by what can be
// delivered whole: maxMessageSize, and a quarter of the pool.
size_t inflate_limit(const WsConfig& cfg) {
  return static_cast<size_t>(std::min<uint64_t>(cfg.max_message, cfg.max_whole));
}

}  // namespace

int Shard::endpoint_set_ws(uint32_t ep, uint32_t gen, const WsConfig& cfg) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open || e.closing) return kErrStaleId;
  if (!e.http) return kErrNotHttp;
  auto w = std::make_shared<WsEndpoint>();
  w->cfg = cfg;
  w->shared.configure(cfg.dc.level, cfg.dc.server_max_window_bits, cfg.dc.mem_level);
  e.http->ws = std::move(w);
  return 0;
}

const WsCounters* Shard::endpoint_ws_stats(uint32_t ep, uint32_t gen) const {
  if (ep >= endpoints_.size()) return nullptr;
  const Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.http || !e.http->ws) return nullptr;
  return &e.http->ws->stats;
}

int Shard::ws_check(uint32_t index, const uint8_t* b, const http1::Head& head, int32_t* proto,
                    http1::Span* key) {
  ConnHttp& h = *conns_[index].http;
  WsEndpoint& we = *h.ep->ws;
  const WsConfig& cfg = we.cfg;
  bool asks = head.upgrade && ws::list_has(b + head.upgrade_to.off, head.upgrade_to.len, "websocket", 9, false);
  static const http1::Field kUpgradeField{"Upgrade", 7, "websocket", 9};
  static const http1::Field kVersionFields[2] = {{"Upgrade", 7, "websocket", 9}, {"Sec-WebSocket-Version", 21, "13", 2}};
  auto refuse = [&](uint16_t status, const char* why, const http1::Field* extra = nullptr, uint32_t nextra = 0) {
    ++we.stats.refused;
    http_fail(index, status, why, false, extra, nextra);
    return -1;
  };
  if (!asks) {
    if (cfg.only)
      return refuse(426, "this endpoint speaks WebSocket only: send a GET with Connection: Upgrade and Upgrade: websocket",
                    &kUpgradeField, 1);  // RFC 9110 15.5.22: a 426 names the protocol
    return 0;
  }
  if (!path_listed(cfg.paths, b + head.path.off, head.path.len)) {
    if (cfg.only) return refuse(404, "no WebSocket is served at this path");
    return 0;  // an upgrade the application may answer itself (plain HTTP)
  }
  if (head.method != http1::Method::Get) return refuse(400, "a WebSocket upgrade must be a GET (RFC 6455 section 4.1)");
  if (head.version_minor != 1) return refuse(400, "a WebSocket upgrade needs HTTP/1.1");
  if (head.chunked || head.content_length > 0) return refuse(400, "a WebSocket upgrade carries no body");
  if (h.next_req != h.next_resp) return refuse(400, "a WebSocket upgrade pipelined behind unanswered requests");
  const http1::Header* k = nullptr;
  const http1::Header* version = nullptr;
  const http1::Header* origin = nullptr;
  for (uint32_t i = 0; i < head.header_count; ++i) {
    const http1::Header& f = h.fields[i];
    if (http1::span_is(b, f.name, "sec-websocket-key")) {
      if (k) return refuse(400, "more than one Sec-WebSocket-Key");
      k = &f;
    }
    else if (http1::span_is(b, f.name, "sec-websocket-version")) version = &f;
    else if (http1::span_is(b, f.name, "origin")) origin = &f;
  }
  if (!version || version->value.len != 2 || memcmp(b + version->value.off, "13", 2) != 0)
    return refuse(426, "Sec-WebSocket-Version must be 13 (RFC 6455)", kVersionFields, 2);  // RFC 6455 4.4
  if (!k || !ws::key_valid(b + k->value.off, k->value.len))
    return refuse(400, "Sec-WebSocket-Key must be the base64 of 16 bytes (RFC 6455 section 4.1)");
  if (!cfg.origins.empty()) {
    bool ok = false;
    if (origin)
      for (const auto& o : cfg.origins)
        if (o.size() == origin->value.len && memcmp(o.data(), b + origin->value.off, o.size()) == 0) ok = true;
    if (!ok) return refuse(403, "this Origin is not allowed to open a WebSocket here");
  }
  *proto = -1;
  for (size_t p = 0; p < cfg.protocols.size() && *proto < 0; ++p)
    for (uint32_t i = 0; i < head.header_count; ++i) {
      const http1::Header& f = h.fields[i];
      if (http1::span_is(b, f.name, "sec-websocket-protocol") &&
          ws::list_has(b + f.value.off, f.value.len, cfg.protocols[p].data(), cfg.protocols[p].size(), true)) {
        *proto = static_cast<int32_t>(p);
        break;
      }
    }
  // permessage-deflate: the first offer we can accept, while the listener has room for it.
  ws_ext_ok_ = false;
  if (cfg.deflate && we.stats.deflate_open < cfg.deflate_max_conns)
    for (uint32_t i = 0; i < head.header_count && !ws_ext_ok_; ++i) {
      const http1::Header& f = h.fields[i];
      if (http1::span_is(b, f.name, "sec-websocket-extensions"))
        ws_ext_ok_ = ws::negotiate(b + f.value.off, f.value.len, cfg.dc, &ws_ext_params_, &ws_ext_answer_);
    }
  *key = k->value;
  return 1;
}

ConnWs& Shard::ws_make(uint32_t index, std::shared_ptr<WsEndpoint> ep, bool client) {
  ws::Limits lim;
  lim.max_message = ep->cfg.max_message;
  lim.max_frame = ep->cfg.max_frame;
  lim.server = !client;  // a server's frames are never masked, a client's always are
  conns_[index].ws = std::make_unique<ConnWs>(lim);
  ConnWs& w = *conns_[index].ws;
  w.shard = this;
  w.index = index;
  w.ep = std::move(ep);
  w.client = client;
  return w;
}

size_t Shard::ws_begin(uint32_t index, uint32_t slot, uint32_t rec_len, uint32_t flags, const uint8_t* key,
                       int32_t proto, uint8_t* rest, size_t rest_len) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  std::shared_ptr<WsEndpoint> we = h.ep->ws;
  ConnWs& w = ws_make(index, we, false);
  w.record = slot;
  w.record_len = rec_len;
  w.record_flags = flags;
  w.proto = proto;
  ws::accept_key(key, 24, w.accept);
  if (ws_ext_ok_) {
    w.deflate = true;
    w.dp = ws_ext_params_;
    w.ext_answer = ws_ext_answer_;
    w.rd.set_deflate(true);
    ++we->stats.deflate_open;
    ws_ext_ok_ = false;
  }
  w.last_in_ms = w.last_msg_ms = now_ms();
  ++we->stats.upgrades;
  ++h.ep->stats.requests;
  http_set_wait(index, HttpWait::None, 0);
  h.no_more = true;
  if (we->cfg.manual) {
    // The record stays held (its slot is not lent for the batch) until ws_accept / ws_reject.
    emit(kEvWsUpgrade, index, c.gen, proto, static_cast<uint32_t>(pool_->slot_offset(slot)), rec_len,
         static_cast<int32_t>(flags), 0);
  } else {
    ws_open(index, nullptr, 0);
    if (c.state != ConnState::Open) return rest_len;
    emit(kEvWsOpen, index, c.gen, proto, static_cast<uint32_t>(pool_->slot_offset(slot)), rec_len,
         static_cast<int32_t>(flags), 0);
    loaned_plain_.push_back(slot);  // lent for this batch, like an HttpRequest's record
    w.record = -1;
  }
  if (rest_len) ws_input(index, rest, rest_len);
  return rest_len;
}

void Shard::ws_open(uint32_t index, const http1::Field* fields, uint32_t nfields) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  std::string& r = http_scratch_;
  r.assign("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
  r.append(w.accept, 28);
  r.append("\r\n");
  if (w.deflate) {
    r.append("Sec-WebSocket-Extensions: ").append(w.ext_answer).append("\r\n");
    w.ext_answer.clear();
    w.ext_answer.shrink_to_fit();
  }
  if (w.proto >= 0) {
    r.append("Sec-WebSocket-Protocol: ");
    r.append(w.ep->cfg.protocols[static_cast<size_t>(w.proto)]);
    r.append("\r\n");
  }
  for (uint32_t i = 0; i < nfields; ++i) {
    r.append(fields[i].name, fields[i].name_len);
    r.append(": ");
    r.append(fields[i].value, fields[i].value_len);
    r.append("\r\n");
  }
  r.append("\r\n");
  w.upgraded = true;
  ++w.ep->stats.open;
  ws_raw(index, reinterpret_cast<const uint8_t*>(r.data()), r.size());
  ws_arm(index);
  mark_dirty(index);  // flush() lets HTTP's state go
}

int Shard::ws_accept(uint32_t index, uint32_t gen, int32_t proto, const http1::Field* fields, uint32_t nfields) {
  Conn* c = lookup(index, gen);
  if (!c || c->state != ConnState::Open) return kErrStaleId;
  if (!c->ws || c->ws->upgraded || c->ws->record < 0) return kErrNotWs;
  if (c->graceful || c->peer_eof) return kErrClosing;
  ConnWs& w = *c->ws;
  if (proto >= static_cast<int32_t>(w.ep->cfg.protocols.size())) return kErrWrongKind;
  if (proto >= -1) w.proto = proto;
  ws_open(index, fields, nfields);
  w.open_owed = true;  // WsOpen (with the held record) goes out from flush()
  mark_dirty(index);
  return 0;
}

int Shard::ws_reject(uint32_t index, uint32_t gen, uint16_t status, const char* reason) {
  Conn* c = lookup(index, gen);
  if (!c || c->state != ConnState::Open) return kErrStaleId;
  if (!c->ws || c->ws->upgraded || !c->http) return kErrNotWs;
  ConnWs& w = *c->ws;
  // The record stays readable until the batch ends (the handler may read the request after this).
  if (w.record >= 0) loaned_plain_.push_back(static_cast<uint32_t>(w.record));
  w.record = -1;
  ++w.ep->stats.refused;
  if (w.deflate && w.ep->stats.deflate_open) --w.ep->stats.deflate_open;
  c->ws.reset();
  c->http->no_more = false;
  http_fail(index, status, reason, false);
  mark_dirty(index);
  return 0;
}

// ---- input ----

void Shard::ws_input(uint32_t index, uint8_t* p, size_t n) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  w.ep->stats.bytes_in += n;
  if (w.close_recv || w.failed) return;  // after the peer's close frame nothing more is read
  w.last_in_ms = now_ms();
  w.ping_out = false;  // any input shows the peer is alive
  if (!w.upgraded || w.open_owed || !w.in.empty() || w.pump_more || w.ready) {
    w.in.insert(w.in.end(), p, p + n);
    if (w.upgraded && !w.open_owed) ws_pump(index);
    else if (w.client && !w.upgraded) ws_client_input(index);
  } else {
    size_t used = ws_feed(index, p, n);
    if (used < n && c.ws && !w.failed && !w.close_recv) w.in.assign(p + used, p + n);
  }
  if (!c.ws) return;
  if (w.pump_more) mark_dirty(index);  // flush() reads on once there is room
  size_t cap = 2 * static_cast<size_t>(pool_->slot_size()) + 64 * 1024;
  if (c.state == ConnState::Open && w.in.size() > cap && !w.rx_paused) {
    w.rx_paused = true;  // the peer meets TCP flow control until the held input is read
    cancel_recv(index);
  }
}

void Shard::ws_pump(uint32_t index) {
  ConnWs& w = *conns_[index].ws;
  if (w.open_owed || w.failed) return;
  if (w.ready) {  // a whole message that waited for a pool run
    if (!room(2)) {
      w.pump_more = true;
      return;
    }
    if (!ws_deliver(index, w.ready_text)) return;  // still no slots for it
    w.pump_more = false;
  }
  if (w.in.empty()) return;
  size_t used = ws_feed(index, w.in.data(), w.in.size());
  if (w.failed || w.close_recv) w.in.clear();
  else w.in.erase(w.in.begin(), w.in.begin() + static_cast<ptrdiff_t>(used));
}

size_t Shard::ws_feed(uint32_t index, uint8_t* p, size_t n) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  w.pump_more = false;
  if (!room(2)) {
    w.pump_more = true;
    return 0;
  }
  w.feed_pooled = p >= pool_->base() && p < pool_->base() + pool_->extra_offset();
  size_t used = w.rd.feed(p, n);
  if (!c.ws || w.failed) return n;
  if (w.rd.failed() && !w.failed) {
    uint16_t code = w.rd.failed();
    if (code == ws::kTooBig) ++w.ep->stats.too_big;
    else ++w.ep->stats.protocol_errors;
    ws_fail(index, code, w.rd.why(), kOriginError);
    return n;
  }
  // Pieces mode: the piece held back goes out now (its message goes on in later input).
  if (w.held) ws_piece_out(index, false);
  // A message begun in place whose end is still to come: its piece is kept (the slot under
  // it goes back to the kernel when the batch ends).
  if (w.piece) {
    w.msg.assign(reinterpret_cast<const char*>(w.piece), w.piece_len);
    w.piece = nullptr;
    w.gathering = true;
  }
  return used;
}

void ConnWs::on_data(const uint8_t* p, size_t n, bool text) {
  if (rd.compressed()) {  // deflate data: inflated as it comes, into the message being gathered
    gathering = true;
    if (!shard->ws_inflate(index, p, n)) rd.pause();
    return;
  }
  if (ep->cfg.pieces) {  // streamed: each piece goes out as it comes (one held back)
    if (!shard->ws_piece(index, p, n, text)) rd.pause();
    return;
  }
  if (!gathering && !piece && feed_pooled) {
    piece = p;
    piece_len = n;
    return;
  }
  if (piece) {
    msg.assign(reinterpret_cast<const char*>(piece), piece_len);
    piece = nullptr;
  }
  gathering = true;
  msg.append(reinterpret_cast<const char*>(p), n);
}

void ConnWs::on_message_end(bool text) {
  if (rd.compressed() && !shard->ws_inflate_end(index, text)) {
    rd.pause();
    return;
  }
  if (ep->cfg.pieces && !rd.compressed()) {  // the held piece is the message's last
    hold_text = text;
    shard->ws_piece_out(index, true);
    if (!shard->room(2)) {
      rd.pause();
      pump_more = true;
    }
    return;
  }
  if (!shard->ws_deliver(index, text)) {
    ready = true;  // delivered by ws_pump once a pool run is free
    ready_text = text;
    rd.pause();
    return;
  }
  if (!shard->room(2)) {
    rd.pause();
    pump_more = true;  // the rest is read from flush() once the ring has room
  }
}

bool Shard::ws_deliver(uint32_t index, bool text) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  int32_t kind = text ? kKindWsText : kKindWsBinary;
  uint32_t off = 0, len = 0;
  if (!w.gathering) {
    if (w.piece) {
      off = static_cast<uint32_t>(w.piece - pool_->base());
      len = static_cast<uint32_t>(w.piece_len);
    }
  } else {
    const uint32_t ss = pool_->slot_size();
    uint32_t run = static_cast<uint32_t>((w.msg.size() + ss - 1) / ss);
    int64_t s = run <= 1 ? pool_->acquire() : pool_->acquire_run(run);
    if (s < 0) {
      // Enough free slots but no run of them (fragmentation), or more than the free stack has at
      // all: waiting would not help.
      if (run > 1 && (pool_->free_count() >= run || run > pool_->slot_count() - pool_->rx_slots())) {
        w.msg.clear();
        w.gathering = false;
        ws_fail(index, ws::kInternalError, "no run of adjacent free pool slots for this message (raise poolSlotSize, or lower maxMessageSize)",
                kOriginError);
        return true;  // nothing to deliver: the connection is failing
      }
      w.pump_more = true;
      wait_for_slot(index);
      return false;
    }
    uint32_t slot = static_cast<uint32_t>(s);
    memcpy(pool_->slot_ptr(slot), w.msg.data(), w.msg.size());
    loaned_plain_.push_back(slot);
    off = static_cast<uint32_t>(pool_->slot_offset(slot));
    len = static_cast<uint32_t>(w.msg.size());
    w.msg.clear();
    if (w.msg.capacity() > 64 * 1024) w.msg.shrink_to_fit();  // a large message's buffer goes
  }
  if (!w.failed) emit(kEvStreamFrame, index, c.gen, kind, off, len, 0, 0);
  w.piece = nullptr;
  w.piece_len = 0;
  w.gathering = false;
  w.ready = false;
  ++w.ep->stats.messages_in;
  w.last_msg_ms = now_ms();
  return true;
}

void ConnWs::on_ping(const uint8_t* p, size_t n) {
  if (!close_sent) shard->ws_pong(index, p, n);
}

// A pong, unless the peer is not reading what we send: a ping flood from a peer that never
// reads must not grow our buffers (RFC 6455 section 5.5.3: only the latest ping needs an answer).
void Shard::ws_pong(uint32_t index, const uint8_t* p, size_t n) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (c.tx_bytes + w.out_left() > w.ep->cfg.send_max) return;
  ws_control(index, ws::kPong, p, n);
}

void ConnWs::on_pong(const uint8_t*, size_t) { ping_out = false; }

void ConnWs::on_close(uint16_t c, const uint8_t* r, size_t n) {
  close_recv = true;
  if (!close_sent) {  // the peer began the handshake: echo its code, then the TCP close
    code = c;
    reason.assign(reinterpret_cast<const char*>(r), n);
    origin = kOriginPeer;
    shard->ws_control(index, ws::kClose, nullptr, c == ws::kNoStatus ? SIZE_MAX : c);
    close_sent = true;
  }
  shard->ws_closed_both(index);
}

void Shard::ws_closed_both(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  w.clean = true;
  // The server closes the TCP connection first (RFC 6455 section 7.1.1), once the close frame
  // is out.
  ws_end(index, w.ep->cfg.close_timeout_ms ? w.ep->cfg.close_timeout_ms : 1000, false);
}

void Shard::ws_end(uint32_t index, uint32_t ms, bool linger) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (c.state != ConnState::Open || c.graceful) return;
  if (!w.ending) {
    w.ending = true;
    w.end_at = now_ms() + ms;
  }
  w.linger = w.linger || linger;
  if (!w.out_empty()) {  // the overflow (a close frame among it) first: ws_flush comes back here
    ws_arm(index);
    mark_dirty(index);
    return;
  }
  if (w.linger) {
    if (!c.end_pending && !c.write_closed) conn_end(index, c.gen);  // our FIN; the peer's closes it
    ws_arm(index);
  } else {
    uint64_t now = now_ms();
    conn_close_graceful(index, c.gen, static_cast<uint32_t>(w.end_at > now ? w.end_at - now : 1));
  }
}

// ---- output ----

void Shard::ws_raw(uint32_t index, const uint8_t* data, size_t len) {
  overflow_write(index, conns_[index].ws->out, data, len);
}

// Control frames: `n` is the payload length, or for kClose the code (SIZE_MAX: none) with
// `p`/reason handled by the caller through ws_close.
void Shard::ws_control(uint32_t index, uint8_t opcode, const uint8_t* p, size_t n) {
  if (opcode == ws::kClose) {
    uint8_t code[2] = {static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
    ws_frame(index, ws::kClose, code, n == SIZE_MAX ? 0 : 2);
  } else {
    ws_frame(index, opcode, p, n);
  }
  mark_dirty(index);
}

void Shard::ws_frame(uint32_t index, uint8_t opcode, const uint8_t* p, size_t n) {
  ConnWs& w = *conns_[index].ws;
  uint8_t hdr[ws::kHeaderMax];
  bool rsv1 = false;
  if (w.deflate && (opcode == ws::kText || opcode == ws::kBinary) && n >= w.ep->cfg.deflate_min) {
    // permessage-deflate. With our context kept (takeover) the compressed form must go out even
    // when larger: the peer's window has to see what ours saw. Without it, the smaller form.
    const ws::DeflateConfig& dc = w.ep->cfg.dc;
    bool own = w.own_ctx() || w.own_bits() != (w.client ? dc.client_max_window_bits : dc.server_max_window_bits);
    ws::Deflater* d = &w.ep->shared;
    if (own) {
      if (!w.def) {
        w.def = std::make_unique<ws::Deflater>();
        w.def->configure(dc.level, w.own_bits(), dc.mem_level);
      }
      d = w.def.get();
    }
    if (d->compress(p, n, &ws_z_, !w.own_ctx()) && (w.own_ctx() || ws_z_.size() < n)) {
      w.ep->stats.compress_saved += n > ws_z_.size() ? n - ws_z_.size() : 0;
      ++w.ep->stats.compressed_out;
      p = reinterpret_cast<const uint8_t*>(ws_z_.data());
      n = ws_z_.size();
      rsv1 = true;
    }
  }
  if (!w.client) {
    size_t hl = ws::write_header(hdr, opcode, true, n, nullptr);
    if (rsv1) hdr[0] |= 0x40;
    ws_raw(index, hdr, hl);
    if (n) ws_raw(index, p, n);
    w.ep->stats.bytes_out += hl + n;  // bytes on the wire: header and (compressed) payload
    return;
  }
  // A client masks every frame with a fresh key (RFC 6455 section 5.3): header + masked copy.
  uint8_t key[4];
  ws::mask_key(key);
  size_t hl = ws::write_header(hdr, opcode, true, n, key);
  if (rsv1) hdr[0] |= 0x40;
  ws_mask_.assign(reinterpret_cast<const char*>(hdr), hl);
  ws_mask_.append(reinterpret_cast<const char*>(p), n);
  ws::unmask(reinterpret_cast<uint8_t*>(ws_mask_.data()) + hl, n, key, 0);
  ws_raw(index, reinterpret_cast<const uint8_t*>(ws_mask_.data()), ws_mask_.size());
  w.ep->stats.bytes_out += ws_mask_.size();
}

int32_t Shard::ws_outcome(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (c.tx_bytes + w.out_left() > w.ep->cfg.send_mark) {
    c.want_writable = true;  // Writable once everything is out
    return kWsQueued;
  }
  return kWsSent;
}

bool Shard::ws_over_budget(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (c.tx_bytes + w.out_left() < w.ep->cfg.send_max) return false;  // taken whole while under the budget
  ++w.ep->stats.dropped;
  if (w.ep->cfg.slow == WsSlowPolicy::Close) {
    ++w.ep->stats.closed_slow;
    ws_fail(index, w.ep->cfg.slow_close_code, "the peer reads too slowly: its send budget (maxBufferedBytes) was exceeded",
            kOriginLocal);
  }
  return true;
}

int32_t Shard::ws_send(uint32_t index, uint32_t gen, bool text, const uint8_t* data, size_t len) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->ws || !c->ws->upgraded) return c->http ? kErrNotWs : (c->state == ConnState::Open ? kErrNotWs : kErrClosing);
  ConnWs& w = *c->ws;
  if (c->state != ConnState::Open || w.close_sent || c->graceful) return kErrClosing;
  if (ws_over_budget(index)) return kWsDropped;
  ws_frame(index, text ? ws::kText : ws::kBinary, data, len);  // (counts its wire bytes)
  ++w.ep->stats.messages_out;
  mark_dirty(index);
  return ws_outcome(index);
}

int Shard::ws_close(uint32_t index, uint32_t gen, uint16_t code, const uint8_t* reason, size_t n) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->ws || !c->ws->upgraded) return kErrNotWs;
  ConnWs& w = *c->ws;
  if (c->state != ConnState::Open || w.close_sent || w.ending || c->graceful || c->end_pending) return kErrClosing;
  if (n > kReasonMax) n = kReasonMax;
  uint8_t f[125];
  f[0] = static_cast<uint8_t>(code >> 8);
  f[1] = static_cast<uint8_t>(code);
  memcpy(f + 2, reason, n);
  ws_frame(index, ws::kClose, f, 2 + n);
  w.close_sent = true;
  w.code = code;
  w.reason.assign(reinterpret_cast<const char*>(reason), n);
  w.origin = kOriginLocal;
  w.close_at = now_ms() + w.ep->cfg.close_timeout_ms;
  ws_arm(index);
  mark_dirty(index);
  return 0;
}

void Shard::ws_fail(uint32_t index, uint16_t code, const char* why, int32_t origin) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (w.failed) return;
  w.failed = true;
  w.in.clear();
  if (!w.close_sent && c.state == ConnState::Open && !c.graceful) {
    size_t n = strnlen(why, kReasonMax);
    ws_close(index, c.gen, code, reinterpret_cast<const uint8_t*>(why), n);
  }
  w.code = code;
  w.reason = why;
  w.origin = origin;
  // _Fail the WebSocket Connection_ (RFC 6455 section 7.1.7): the close frame, then the TCP
  // close without waiting for the peer's answer — lingering (our FIN, its input read and
  // dropped) so that unread input does not turn the close into a reset that loses our frame.
  ws_end(index, kLingerMs, true);
}

void Shard::ws_peer_ended(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (w.client && !w.upgraded) {
    if (!w.failed) ws_client_fail(index, "the server closed the connection without answering the opening handshake");
    return;
  }
  if (!w.close_recv && !w.failed && w.code == 0) {
    w.code = ws::kAbnormal;
    w.reason = "the peer ended the TCP connection without a close frame";
    w.origin = kOriginPeer;
  }
  ws_end(index, 1000, false);
}

// ---- flush, timers, close ----

bool Shard::ws_owes(const Conn& c) {
  if (!c.ws || c.state != ConnState::Open) return false;
  const ConnWs& w = *c.ws;
  return (w.pump_more && !c.pool_waiting) || w.open_owed;
}

bool Shard::ws_holds(const Conn& c) {
  if (!c.ws || !c.ws->upgraded) return false;
  const ConnWs& w = *c.ws;
  // (A cut frame header in `in` is not held: no more input can come to complete it.)
  return !w.failed && !w.close_recv && (w.ready || w.pump_more || w.open_owed);
}

void Shard::ws_flush(uint32_t index, bool allow_events) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (w.upgraded && c.http) {  // HTTP is done with this connection
    --c.http->ep->stats.active;
    if (c.http->timer != TimerWheel::kNone) timers_.cancel(c.http->timer);
    c.http.reset();
  }
  if (w.open_owed && allow_events && room(1)) {
    w.open_owed = false;
    if (w.record >= 0) {
      emit(kEvWsOpen, index, c.gen, w.proto, static_cast<uint32_t>(pool_->slot_offset(static_cast<uint32_t>(w.record))),
           w.record_len, static_cast<int32_t>(w.record_flags), 0);
      loaned_plain_.push_back(static_cast<uint32_t>(w.record));  // its hold ends with the batch
      w.record = -1;
    } else if (w.client) {
      emit(kEvWsOpen, index, c.gen, w.proto, 0, 0, 0, 0);  // no request record on this side
    }
  }
  if (allow_events && w.upgraded && !w.open_owed && (w.pump_more || w.ready || (!w.in.empty() && !w.failed)))
    ws_pump(index);
  if (c.state != ConnState::Open || !c.ws) return;
  overflow_drain(index, w.out, 256 * 1024);  // what the write queue could not take, as it drains
  if (w.ending && w.out_empty() && !c.graceful && !c.end_pending && !c.write_closed) {
    uint64_t now = now_ms();
    ws_end(index, static_cast<uint32_t>(w.end_at > now ? w.end_at - now : 1), w.linger);
  }
  if (w.rx_paused && !c.recv_armed && w.in.size() <= 2 * static_cast<size_t>(pool_->slot_size())) {
    w.rx_paused = false;
    c.need_rearm = !c.peer_eof;
  }
}

void Shard::ws_arm(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  const WsConfig& cfg = w.ep->cfg;
  uint64_t at = UINT64_MAX;
  if (!w.upgraded) at = w.client && w.hs_deadline ? w.hs_deadline : UINT64_MAX;
  else if (w.close_sent && !w.close_recv) at = std::min(at, w.close_at);
  if (w.ending) at = std::min(at, w.end_at);
  if (!w.close_sent && cfg.ping_interval_ms)
    at = std::min(at, (w.ping_out ? w.ping_at : w.last_in_ms) + cfg.ping_interval_ms);
  if (!w.close_sent && cfg.idle_timeout_ms) at = std::min(at, w.last_msg_ms + cfg.idle_timeout_ms);
  if (at == UINT64_MAX) return;
  if (w.timer != TimerWheel::kNone && w.timer_at <= at) return;  // fires earlier: re-armed then
  if (w.timer != TimerWheel::kNone) timers_.cancel(w.timer);
  w.timer = timers_.add(at, kTimerWs, index, c.gen);
  w.timer_at = at;
}

void Shard::ws_timer(uint32_t index) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  w.timer = TimerWheel::kNone;
  uint64_t now = now_ms();
  if (!w.upgraded) {
    if (w.client && w.hs_deadline) {
      if (now < w.hs_deadline) ws_arm(index);
      else ws_client_fail(index, "no answer to the opening handshake within handshakeTimeoutMs");
    }
    return;
  }
  const WsConfig& cfg = w.ep->cfg;
  if (w.ending && now >= w.end_at) {
    begin_close(index, ETIMEDOUT, kOriginTimeout);  // the peer took neither our bytes nor its leave
    return;
  }
  if (w.close_sent) {
    if (!w.close_recv && now >= w.close_at && !w.ending) {
      ws_end(index, 1000, false);  // the peer never answered our close frame
      return;
    }
  } else {
    if (cfg.ping_interval_ms) {
      // Input we hold unread (no event room, no pool run) may hold its pong: not the peer's fault.
      if (w.ping_out && (!w.in.empty() || w.ready || w.pump_more || w.rx_paused)) w.ping_at = now;
      if (w.ping_out && now >= w.ping_at + cfg.ping_interval_ms) {
        ++w.ep->stats.ping_timeouts;
        w.code = ws::kAbnormal;
        w.reason = "no pong (nor any other frame) within pingIntervalMs of our ping: the peer is gone";
        w.origin = kOriginTimeout;
        begin_close(index, 0, kOriginTimeout);
        return;
      }
      if (!w.ping_out && now >= w.last_in_ms + cfg.ping_interval_ms) {
        ws_control(index, ws::kPing, nullptr, 0);
        w.ping_out = true;
        w.ping_at = now;
      }
    }
    if (cfg.idle_timeout_ms && now >= w.last_msg_ms + cfg.idle_timeout_ms) {
      static const char kIdle[] = "idle timeout";
      ws_close(index, c.gen, ws::kGoingAway, reinterpret_cast<const uint8_t*>(kIdle), sizeof kIdle - 1);
      w.origin = kOriginTimeout;
    }
  }
  ws_arm(index);
}

int64_t Shard::ws_buffered(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->ws) return kErrNotWs;
  return static_cast<int64_t>(c->tx_bytes + c->ws->out_left());
}

bool Shard::ws_close_info(uint32_t index, uint32_t gen, WsCloseInfo* out) {
  Conn* c = lookup(index, gen);
  if (!c || !c->ws || !(c->ws->upgraded || c->ws->client)) return false;
  const ConnWs& w = *c->ws;
  out->code = w.code ? w.code : static_cast<uint16_t>(ws::kAbnormal);
  out->reason = &w.reason;
  out->sys_err = w.sys_err;
  out->clean = w.clean;
  out->origin = w.origin;
  return true;
}

// Called from begin_close: what Disconnected reports for a WebSocket connection.
void Shard::ws_final(Conn& c, int32_t* err, int32_t* origin) {
  ConnWs& w = *c.ws;
  if (!w.upgraded) return;
  if (w.code == 0) {  // no close frame either way, no failure of ours: the connection was lost
    w.code = ws::kAbnormal;
    w.sys_err = *err > 0 ? *err : 0;
    w.origin = *origin;
    if (w.reason.empty())
      w.reason = *err > 0 ? "the TCP connection failed without a close frame"
                          : *origin == kOriginPeer ? "the peer closed the TCP connection without a close frame"
                                                   : "closed without a close handshake";
  }
  *err = w.code;
  *origin = w.origin;
}

void Shard::ws_release(Conn& c) {
  ConnWs& w = *c.ws;
  if (w.timer != TimerWheel::kNone) timers_.cancel(w.timer);
  if (w.record >= 0) pool_->release(static_cast<uint32_t>(w.record));
  if (w.upgraded && w.ep->stats.open) --w.ep->stats.open;
  if (w.deflate && !w.client && w.ep->stats.deflate_open) --w.ep->stats.deflate_open;
  ws_unsubscribe_all(c);
  c.ws.reset();
}

// ---- pieces mode ----

bool Shard::ws_piece(uint32_t index, const uint8_t* p, size_t n, bool text) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  if (w.held) ws_piece_out(index, false);
  if (!w.feed_pooled) {  // held input (heap): the piece is copied into pool slots lent for the batch
    const uint32_t ss = pool_->slot_size();
    uint32_t run = static_cast<uint32_t>((n + ss - 1) / ss);
    int64_t s = run <= 1 ? pool_->acquire() : pool_->acquire_run(run);
    if (s < 0) {
      ws_fail(index, ws::kInternalError, "no free pool slots for a piece of a message (raise poolSlotCount)", kOriginError);
      return false;
    }
    memcpy(pool_->slot_ptr(static_cast<uint32_t>(s)), p, n);
    loaned_plain_.push_back(static_cast<uint32_t>(s));
    p = pool_->slot_ptr(static_cast<uint32_t>(s));
  }
  w.hold_p = p;
  w.hold_n = n;
  w.hold_text = text;
  w.held = true;
  if (!room(4)) {  // room for the held piece, the message's end and a close: stop at this frame's end
    w.rd.pause();
    w.pump_more = true;
  }
  return true;
}

void Shard::ws_piece_out(uint32_t index, bool final) {
  Conn& c = conns_[index];
  ConnWs& w = *c.ws;
  uint32_t off = w.held ? static_cast<uint32_t>(w.hold_p - pool_->base()) : 0;
  uint32_t len = w.held ? static_cast<uint32_t>(w.hold_n) : 0;
  if (!w.held && !final) return;
  emit(kEvStreamFrame, index, c.gen, w.hold_text ? kKindWsText : kKindWsBinary, off, len, 0, final ? 0 : 1);
  w.held = false;
  w.hold_p = nullptr;
  w.hold_n = 0;
  if (final) {
    ++w.ep->stats.messages_in;
    w.last_msg_ms = now_ms();
  }
}

// ---- permessage-deflate input ----

bool Shard::ws_inflate(uint32_t index, const uint8_t* p, size_t n) {
  ConnWs& w = *conns_[index].ws;
  if (w.failed) return false;
  if (!w.inf) {
    w.inf = std::make_unique<ws::Inflater>();
    w.inf->set_window_bits(w.peer_bits());
  }
  const char* why = "";
  int r = w.inf->feed(p, n, &w.msg, inflate_limit(w.ep->cfg), &why);
  if (r == ws::Inflater::kInflateOk) return true;
  if (r == ws::Inflater::kInflateTooBig) ++w.ep->stats.too_big;
  else ++w.ep->stats.protocol_errors;
  w.msg.clear();
  ws_fail(index, r == ws::Inflater::kInflateTooBig ? ws::kTooBig : ws::kInvalidPayload, why, kOriginError);
  return false;
}

bool Shard::ws_inflate_end(uint32_t index, bool text) {
  ConnWs& w = *conns_[index].ws;
  if (w.failed) return false;
  if (!w.inf) {  // a compressed message with no payload at all
    w.inf = std::make_unique<ws::Inflater>();
    w.inf->set_window_bits(w.peer_bits());
  }
  const char* why = "";
  int r = w.inf->finish(&w.msg, inflate_limit(w.ep->cfg), w.peer_reset(), &why);
  if (r == ws::Inflater::kInflateOk && text) {
    ws::Utf8 u;
    if (!u.feed(reinterpret_cast<const uint8_t*>(w.msg.data()), w.msg.size()) || !u.complete()) {
      r = ws::Inflater::kInflateBad;
      why = "a compressed text message that is not UTF-8";
    }
  }
  if (r == ws::Inflater::kInflateOk) {
    w.gathering = true;  // delivered from the gathered bytes (maybe none)
    ++w.ep->stats.compressed_in;
    return true;
  }
  if (r == ws::Inflater::kInflateTooBig) ++w.ep->stats.too_big;
  else ++w.ep->stats.protocol_errors;
  w.msg.clear();
  ws_fail(index, r == ws::Inflater::kInflateTooBig ? ws::kTooBig : ws::kInvalidPayload, why, kOriginError);
  return false;
}

const std::string* Shard::ws_subprotocol(uint32_t index, uint32_t gen) {
  Conn* c = lookup(index, gen);
  if (!c || !c->ws) return nullptr;
  ConnWs& w = *c->ws;
  if (w.client) return &w.chosen;
  static const std::string kNone;
  return w.proto >= 0 ? &w.ep->cfg.protocols[static_cast<size_t>(w.proto)] : &kNone;
}

}  // namespace zio

