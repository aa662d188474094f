// native/shard/http2_conn.cc — an HTTP/2 server connection: the HTTP/2 machine (proto/http2)
// wired to the shard. A connection becomes HTTP/2 when its first bytes are the client preface
// (cleartext with prior knowledge, or TLS after ALPN "h2": the client speaks first either way).
// Requests become the same records and events as HTTP/1.1 (http1_conn.h), with the stream id
// as the request id and version 2; answers go through the machine (any order: streams are
// independent); a stream the client resets is reported (kEvHttpReset).
//
// The machine runs its callbacks inside recv() and cannot stop in the middle of most of them,
// so it is fed only as many bytes as the events they can produce have room for: every event
// comes from at least four bytes of frames (a 9-byte frame header yields at most two events),
// and every request needs a pool slot. What does not fit waits in the connection's input.
#include <cstring>
#include <ctime>

#include "shard/shard.h"

namespace zio {

namespace {

void put32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }
void put16(uint8_t* p, uint16_t v) { memcpy(p, &v, 2); }

http1::Method method_of(std::string_view m) {
  using M = http1::Method;
  if (m == "GET") return M::Get;
  if (m == "HEAD") return M::Head;
  if (m == "POST") return M::Post;
  if (m == "PUT") return M::Put;
  if (m == "DELETE") return M::Delete;
  if (m == "CONNECT") return M::Connect;
  if (m == "OPTIONS") return M::Options;
  if (m == "TRACE") return M::Trace;
  if (m == "PATCH") return M::Patch;
  return M::Other;
}

constexpr uint32_t kVersion2 = 20;  // the event's version byte: 20 for HTTP/2 (HTTP/1.x: 0 or 1)
constexpr size_t kBytesPerEvent = 4;
constexpr uint32_t kSlotsKept = 8;  // free slots left for everything else

}  // namespace

bool Shard::h2_start(uint32_t index) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (!h.ep->cfg.http2) return false;
  auto m = std::make_unique<ConnH2>();
  m->shard = this;
  m->index = index;
  std::string err;
  if (m->sv.init(h.ep->cfg.h2, m.get(), &err) != http2::kOk) return false;
  h.h2 = std::move(m);
  http_set_wait(index, HttpWait::None, 0);
  return true;
}

namespace {
// base64url (RFC 4648 section 5, no padding) as HTTP2-Settings carries it; false when malformed.
bool b64url(const uint8_t* s, size_t n, std::string* out) {
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; ++i) {
    uint8_t c = s[i];
    int v = c >= 'A' && c <= 'Z' ? c - 'A' : c >= 'a' && c <= 'z' ? c - 'a' + 26 : c >= '0' && c <= '9' ? c - '0' + 52
          : c == '-' ? 62 : c == '_' ? 63 : c == '=' ? -2 : -1;
    if (v == -2) break;
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out->size() % 6 == 0;  // SETTINGS entries are 6 bytes
}
}  // namespace

bool Shard::h2_upgrade(uint32_t index, const uint8_t* settings_b64, size_t len, bool head_request) {
  std::string settings;
  if (!b64url(settings_b64, len, &settings) || !h2_start(index)) return false;
  ConnHttp& h = *conns_[index].http;
  if (h.h2->sv.upgrade(reinterpret_cast<const uint8_t*>(settings.data()), settings.size(), head_request) != http2::kOk) {
    h.h2.reset();
    return false;
  }
  static const char k101[] = "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n";
  http_send(index, reinterpret_cast<const uint8_t*>(k101), sizeof k101 - 1);
  h2_flush_out(index);  // our SETTINGS
  return true;
}

size_t Shard::h2_feed(uint32_t index, const uint8_t* p, size_t n, bool pooled) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  ConnH2& m = *h.h2;
  size_t done = 0;
  h.pump_more = false;
  while (done < n && c.state == ConnState::Open && !h.dead) {
    uint32_t ev_room = cfg_.max_events_per_poll - n_events_;
    uint32_t slots = pool_->free_count();
    uint32_t k = std::min(ev_room > 4 ? ev_room - 4 : 0u, slots > kSlotsKept ? slots - kSlotsKept : 0u);
    if (k == 0) {  // fed again when events were read or slots came back
      h.pump_more = true;
      if (slots <= kSlotsKept) wait_for_slot(index);
      break;
    }
    size_t take = std::min(n - done, static_cast<size_t>(k) * kBytesPerEvent);
    m.feed = p + done;
    m.pooled = pooled;
    int r = m.sv.recv(p + done, take, now_ms());
    done += take;
    if (r != http2::kOk) {  // the machine queued its GOAWAY: it goes out, then the close
      h.dead = true;
      h.error = m.sv.error();
      h.error_code = kErrHttpProtocol;
      ++h.ep->stats.parse_errors;
      break;
    }
  }
  h2_flush_out(index);
  mark_dirty(index);
  return done;
}

void ConnH2::on_request(const http2::Head& hd) {
  Shard& s = *shard;
  Conn& c = s.conns_[index];
  ConnHttp& h = *c.http;
  const uint32_t ss = s.pool_->slot_size();
  // RFC 9113 8.3.1: :authority stands for Host; it is given as a "host" field when the request
  // has none, so header('host') reads the same on both versions.
  bool add_host = !hd.authority.empty();
  for (uint32_t i = 0; i < hd.field_count && add_host; ++i)
    if (hd.fields[i].first == "host") add_host = false;
  // RFC 9113 8.2.3: cookie crumbs (several cookie fields) are given as one, joined by "; ".
  uint32_t cookies = 0;
  size_t cookie_len = 0;
  for (uint32_t i = 0; i < hd.field_count; ++i)
    if (hd.fields[i].first == "cookie") cookie_len += hd.fields[i].second.size() + (cookies++ ? 2 : 0);
  uint32_t nfields = hd.field_count - (cookies > 1 ? cookies - 1 : 0) + (add_host ? 1 : 0);
  uint32_t table = kHttpRecordHeader + kHttpFieldBytes * nfields;
  size_t need = table + hd.method.size() + hd.path.size() + (add_host ? 4 + hd.authority.size() : 0) + 2 * cookies;
  for (uint32_t i = 0; i < hd.field_count; ++i) need += hd.fields[i].first.size() + hd.fields[i].second.size();
  uint32_t run = static_cast<uint32_t>((need + ss - 1) / ss);  // adjacent slots for a large head
  int64_t slot = !hd.too_large && cookie_len <= UINT16_MAX ? s.pool_->acquire_run(run) : -1;
  if (slot < 0) {  // too large (431: over the limits), or no slots (h2_feed keeps some)
    uint16_t st = hd.too_large || cookie_len > UINT16_MAX ? 431 : 503;
    sv.respond(hd.stream, st, nullptr, 0, nullptr, 0, time(nullptr));
    if (st == 431) ++h.ep->stats.limit_hits;
    h.ep->stats.count_refusal(st);
    ++h.ep->stats.responses;
    ++h.ep->stats.status[4 + (st == 503)];
    return;
  }
  uint8_t* rec = s.pool_->slot_ptr(static_cast<uint32_t>(slot));
  uint32_t at = table;
  auto put = [&](std::string_view v) {
    uint32_t o = at;
    memcpy(rec + at, v.data(), v.size());
    at += static_cast<uint32_t>(v.size());
    return o;
  };
  uint32_t mo = put(hd.method);
  uint32_t to = put(hd.path);
  size_t q = hd.path.find('?');
  uint32_t plen = static_cast<uint32_t>(q == std::string_view::npos ? hd.path.size() : q);
  uint32_t qlen = q == std::string_view::npos ? 0 : static_cast<uint32_t>(hd.path.size() - q - 1);
  bool head_req = hd.method == "HEAD";
  uint32_t flags = kReqKeepAlive | (hd.end_stream ? 0 : kReqStreamed) | (head_req ? kReqHead : 0);
  put32(rec + 0, mo);
  put32(rec + 4, static_cast<uint32_t>(hd.method.size()));
  put32(rec + 8, to);
  put32(rec + 12, static_cast<uint32_t>(hd.path.size()));
  put32(rec + 16, to);
  put32(rec + 20, plen);
  put32(rec + 24, to + plen + (qlen ? 1 : 0));
  put32(rec + 28, qlen);
  uint8_t* t = rec + kHttpRecordHeader;
  bool cookie_done = false;
  for (uint32_t i = 0; i <= hd.field_count; ++i) {
    if (i == hd.field_count && !add_host) break;
    std::string_view n = i < hd.field_count ? hd.fields[i].first : std::string_view("host");
    std::string_view v = i < hd.field_count ? hd.fields[i].second : hd.authority;
    bool cookie = cookies > 1 && i < hd.field_count && n == "cookie";
    if (cookie && cookie_done) continue;  // joined into the first cookie field
    uint32_t no = put(n);
    uint32_t vo = at;
    size_t vl = v.size();
    if (cookie) {
      cookie_done = true;
      bool first = true;
      for (uint32_t k = i; k < hd.field_count; ++k) {
        if (hd.fields[k].first != "cookie") continue;
        if (!first) put("; ");
        put(hd.fields[k].second);
        first = false;
      }
      vl = cookie_len;
    } else {
      put(v);
    }
    put32(t, no);
    put32(t + 4, vo);
    put16(t + 8, static_cast<uint16_t>(n.size()));
    put16(t + 10, static_cast<uint16_t>(vl));
    t += kHttpFieldBytes;
  }
  put32(rec + 32, at);  // no inline body: HTTP/2 bodies are HttpBodyChunk events
  put32(rec + 36, 0);
  put32(rec + 40, nfields);
  put32(rec + 44, flags);
  uint64_t cl = static_cast<uint64_t>(hd.content_length);
  put32(rec + 48, static_cast<uint32_t>(cl));
  put32(rec + 52, static_cast<uint32_t>(cl >> 32));
  if (h.ep->cfg.compress_n) {  // the codings its answer may use
    compress::Accept ae;
    for (uint32_t i = 0; i < hd.field_count; ++i)
      if (hd.fields[i].first == "accept-encoding") ae.add(hd.fields[i].second.data(), hd.fields[i].second.size());
    sv.set_tag(hd.stream, ae.best());
  }
  s.loaned_plain_.push_back(static_cast<uint32_t>(slot));
  s.emit(kEvHttpRequest, index, c.gen,
         static_cast<int32_t>(static_cast<uint32_t>(method_of(hd.method)) | (kVersion2 << 8) | (flags << 16)),
         static_cast<uint32_t>(s.pool_->slot_offset(static_cast<uint32_t>(slot))), at, hd.stream, 0);
  ++h.ep->stats.requests;
}

void ConnH2::on_data(int32_t stream, const uint8_t* data, size_t n, bool end) {
  Shard& s = *shard;
  Conn& c = s.conns_[index];
  ConnHttp& h = *c.http;
  uint32_t off = 0;
  if (n > 0) {
    if (pooled) {
      off = static_cast<uint32_t>(data - s.pool_->base());
    } else {  // held input: copied into a slot lent for the batch (h2_feed kept slots for it)
      int64_t slot = s.pool_->acquire();
      if (slot < 0) return;  // not reached: h2_feed keeps slots
      size_t k = std::min<size_t>(n, s.pool_->slot_size());
      memcpy(s.pool_->slot_ptr(static_cast<uint32_t>(slot)), data, k);
      s.loaned_plain_.push_back(static_cast<uint32_t>(slot));
      off = static_cast<uint32_t>(s.pool_->slot_offset(static_cast<uint32_t>(slot)));
      n = k;
    }
  }
  s.emit(kEvHttpBody, index, c.gen, end ? 1 : 0, off, static_cast<uint32_t>(n), stream, 0);
  ++h.ep->stats.body_chunks;
}

void ConnH2::on_reset(int32_t stream, uint32_t code) {
  Shard& s = *shard;
  Conn& c = s.conns_[index];
  s.emit(kEvHttpReset, index, c.gen, 0, 0, 0, static_cast<int32_t>(code), stream);
}

void Shard::h2_flush_out(uint32_t index) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  ConnH2& m = *h.h2;
  // Taken from the machine only while the write queue keeps up: a slow reader leaves the
  // answers in the machine (bounded by its allocator and the answers' own buffers).
  while (h.out_empty() && m.sv.want_write() && c.state == ConnState::Open) {
    h2_out_.clear();
    if (m.sv.send(&h2_out_) == 0) break;
    http_send(index, reinterpret_cast<const uint8_t*>(h2_out_.data()), h2_out_.size());
  }
}

int64_t Shard::h2_respond(uint32_t index, uint32_t req, uint16_t status, const http1::Field* fields,
                          uint32_t nfields, const uint8_t* body, size_t body_len, HttpEncoded* stored) {
  ConnHttp& h = *conns_[index].http;
  int tag = h.h2->sv.tag(static_cast<int32_t>(req));
  if (tag >= 0) http_encode(*h.ep, static_cast<uint8_t>(tag), status, &fields, &nfields, &body, &body_len, stored);
  int r = h.h2->sv.respond(static_cast<int32_t>(req), status, fields, nfields, body, body_len, time(nullptr));
  if (r == http2::kStreamGone) {
    ++h.ep->stats.stale_responses;
    return kErrStaleId;
  }
  if (r == http2::kBadField) return http1::kBadField;
  if (r != http2::kOk) return kErrPoolExhausted;
  HttpCounters& st = h.ep->stats;
  ++st.responses;
  ++st.status[status / 100 <= 5 ? status / 100 : 5];
  st.bytes_out += body_len;
  h2_flush_out(index);
  mark_dirty(index);
  return static_cast<int64_t>(body_len) + 1;
}

void Shard::h2_stalled(uint32_t index) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  ConnH2& m = *h.h2;
  if (!m.sv.stalled()) return;
  if (m.sv.body_sent() != h.stall_mark) {  // some DATA went out meanwhile: a slow reader, not a stall
    h.stall_mark = m.sv.body_sent();
    http_set_wait(index, HttpWait::Stall, h.ep->cfg.request_timeout_ms);
    return;
  }
  h.dead = true;
  h.error = "HTTP/2 flow-control stall: the peer kept its windows closed for requestTimeoutMs with answers waiting";
  h.error_code = kErrHttpTimeout;
  ++h.ep->stats.timeouts;
  m.sv.terminate(http2::kEnhanceYourCalm);
  h2_flush(index, false);  // the GOAWAY, then the lingering close
}

void Shard::h2_flush(uint32_t index, bool allow_events) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  ConnH2& m = *h.h2;
  if (allow_events && !h.in.empty() && !h.dead) {
    size_t used = h2_feed(index, h.in.data(), h.in.size(), false);
    h.in.erase(h.in.begin(), h.in.begin() + static_cast<ptrdiff_t>(used));
  }
  // After a fatal error the peer's input is read and dropped (the GOAWAY waits in our queue; a
  // close with unread input would reset the connection and lose it).
  if (h.dead) h.in.clear();
  if (c.state != ConnState::Open) return;
  h2_flush_out(index);
  // Streamed answers whose writers waited and have room again.
  for (int32_t id; allow_events && room(1) && (id = m.sv.take_room()) != 0;)
    emit(kEvHttpWritable, index, c.gen, 0, 0, 0, id, 0);
  const HttpConfig& cfg = h.ep->cfg;
  if (h.rx_paused && !c.recv_armed && h.in.size() <= cfg.limits.head_bytes_max) {
    h.rx_paused = false;
    c.need_rearm = !c.peer_eof;
  }
  bool quiet = m.sv.open_streams() == 0 && h.in.empty();
  if ((h.dead || m.sv.done() || (c.peer_eof && quiet)) && h.out_empty() && !m.sv.want_write()) {
    if (c.peer_eof) {
      if (!c.graceful && !c.end_pending && !c.write_closed && conn_close_graceful(index, c.gen, 2000) == 0 && !h.dead)
        c.graceful_origin = kOriginPeer;
    } else if (!h.dead && m.sv.peer_goaway()) {
      // The client said goodbye (GOAWAY) and its streams are done: close; it ended it.
      if (!c.graceful && !c.end_pending && !c.write_closed && conn_close_graceful(index, c.gen, 2000) == 0)
        c.graceful_origin = kOriginPeer;
    } else if (!h.ending) {
      // Lingering close, as HTTP/1.1's: our FIN after the GOAWAY, then the peer's input is read
      // and dropped until it closes (or kLingerMs). Closing with its input unread would reset
      // the connection, and a peer still sending (a flooder) would lose the GOAWAY.
      h.ending = true;
      conn_end(index, c.gen);
      http_set_wait(index, HttpWait::Linger, kLingerMs);
    }
    return;
  }
  if (quiet && h.wait == HttpWait::None) http_set_wait(index, HttpWait::Idle, cfg.keepalive_timeout_ms);
  else if (!quiet && h.wait == HttpWait::Idle) http_set_wait(index, HttpWait::None, 0);
  // A zero-window stall (answers held by windows the peer does not open) may last
  // requestTimeoutMs without any DATA going out; then the connection ends (h2_stalled).
  if (cfg.request_timeout_ms > 0 && h.out_empty() && m.sv.stalled()) {
    if (h.wait != HttpWait::Stall) {
      h.stall_mark = m.sv.body_sent();
      http_set_wait(index, HttpWait::Stall, cfg.request_timeout_ms);
    }
  } else if (h.wait == HttpWait::Stall) {
    http_set_wait(index, HttpWait::None, 0);
  }
}

}  // namespace zio
