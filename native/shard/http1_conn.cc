// native/shard/http1_conn.cc — the HTTP/1.1 server connection (see http1_conn.h): request
// records, body events, responses in request order, the request / keep-alive / linger timers.
//
// A connection's life (RFC 9112 section 9):
//   Head wait --head parsed--> requests in flight (<= pipeline_max) --answers out--> Idle wait
//   Idle --first byte--> Head wait;  Head --requestTimeoutMs--> 408, close
//   Idle --keepAliveTimeoutMs--> close;  error --status answered--> FIN, Linger --peer's FIN or 2 s--> close
#include <cstring>
#include <ctime>

#include "shard/shard.h"

namespace zio {

namespace {

// Whether a request line that failed to parse still reads as HTTP/1.x: it does unless it is a
// complete line of three or more words with no "HTTP/" (any case) anywhere. Such a client gets
// an HTTP error answer; one that is not speaking HTTP/1.x at all does not.
bool looks_like_http1(const uint8_t* p, size_t n) {
  size_t end = 0;
  while (end < n && p[end] != '\r' && p[end] != '\n') ++end;
  if (end == n) return true;  // the line is not complete: too early to tell
  uint32_t words = 0;
  for (size_t i = 0; i < end; ++i) {
    if (p[i] != ' ' && (i == 0 || p[i - 1] == ' ')) ++words;
    if (i + 5 <= end) {
      size_t k = 0;
      while (k < 5 && (p[i + k] >= 'A' && p[i + k] <= 'Z' ? p[i + k] + 32 : p[i + k]) == "http/"[k]) ++k;
      if (k == 5) return true;
    }
  }
  return words < 3;
}

void put32(uint8_t* p, uint32_t v) { memcpy(p, &v, 4); }  // the pool is read little-endian by JS
void put16(uint8_t* p, uint16_t v) { memcpy(p, &v, 2); }

constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";

// Room for a response head: the status line, Date, the framing and Connection fields, and the
// application's fields with their separators.
size_t head_room(const http1::Field* f, uint32_t n) {
  size_t cap = 192;
  for (uint32_t i = 0; i < n; ++i) cap += f[i].name_len + f[i].value_len + 4;
  return cap;
}

}  // namespace

int Shard::endpoint_set_http(uint32_t ep, uint32_t gen, const HttpConfig& cfg) {
  if (ep >= endpoints_.size()) return kErrStaleId;
  Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.open || e.closing) return kErrStaleId;
  if (e.kind != EpKind::Listener) return kErrWrongKind;
  auto h = std::make_shared<HttpEndpoint>();
  h->cfg = cfg;
  if (h->cfg.pipeline_max == 0) h->cfg.pipeline_max = 1;
  if (h->cfg.limits.headers_max == 0) h->cfg.limits.headers_max = 1;
  e.http = std::move(h);
  return 0;
}

const HttpCounters* Shard::endpoint_http_stats(uint32_t ep, uint32_t gen) const {
  if (ep >= endpoints_.size()) return nullptr;
  const Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.http) return nullptr;
  return &e.http->stats;
}

uint64_t Shard::endpoint_http_in_flight(uint32_t ep, uint32_t gen) const {
  if (ep >= endpoints_.size()) return 0;
  const Endpoint& e = endpoints_[ep];
  if (e.gen != gen || !e.http) return 0;
  uint64_t n = 0;
  for (const Conn& c : conns_)
    if (c.http && c.http->ep == e.http && c.state == ConnState::Open)
      n += c.http->h2 ? c.http->h2->sv.open_streams() : c.http->next_req - c.http->next_resp;
  return n;
}

const char* Shard::conn_http_error(uint32_t index, uint32_t gen, uint32_t* answered) {
  Conn* c = lookup(index, gen);
  if (answered) *answered = 0;
  if (!c || !c->http || !c->http->error) return "";
  if (answered) {
    const ConnHttp& h = *c->http;
    *answered = h.error_status ? h.error_status : h.h2 && h.h2->sv.goaway_code() ? 1000 + h.h2->sv.goaway_code() : 0;
  }
  return c->http->error;
}

void Shard::http_accept(uint32_t index, const std::shared_ptr<HttpEndpoint>& ep) {
  Conn& c = conns_[index];
  c.http = std::make_unique<ConnHttp>();
  ConnHttp& h = *c.http;
  h.ep = ep;
  h.fields.resize(ep->cfg.limits.headers_max);
  // One entry more than requests in flight: the error answer of a full pipeline takes an id too.
  h.req_flags.assign(ep->cfg.pipeline_max + 1, 0);
  h.req_accept.assign(ep->cfg.pipeline_max + 1, 0);
  // The HTTP machine decides when the peer's FIN closes: after the answers it is owed.
  c.half_open = true;
  ++ep->stats.connections;
  ++ep->stats.active;
  http_set_wait(index, HttpWait::Head, ep->cfg.request_timeout_ms);
}

void Shard::http_set_wait(uint32_t index, HttpWait w, uint32_t ms) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (w == HttpWait::None || ms == 0) {
    h.wait = HttpWait::None;  // an armed timer finds nothing to do and is not re-armed
    return;
  }
  h.wait = w;
  h.deadline_ms = now_ms() + ms;
  // One wheel timer per connection: it is re-armed for the deadline when it fires early.
  if (h.timer != TimerWheel::kNone && h.timer_at > h.deadline_ms) {
    timers_.cancel(h.timer);
    h.timer = TimerWheel::kNone;
  }
  if (h.timer == TimerWheel::kNone) {
    h.timer = timers_.add(h.deadline_ms, kTimerHttp, index, c.gen);
    h.timer_at = h.deadline_ms;
  }
}

void Shard::http_timer(uint32_t index) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  h.timer = TimerWheel::kNone;
  if (h.wait == HttpWait::None) return;
  uint64_t now = now_ms();
  if (now < h.deadline_ms) {
    h.timer = timers_.add(h.deadline_ms, kTimerHttp, index, c.gen);
    h.timer_at = h.deadline_ms;
    return;
  }
  HttpWait w = h.wait;
  h.wait = HttpWait::None;
  if (w == HttpWait::Head) {
    if (h.in.empty() && h.settled()) {  // nothing of a request arrived: close quietly
      begin_close(index, 0, kOriginTimeout);
      return;
    }
    ++h.ep->stats.timeouts;
    http_fail(index, 408, h.in_body ? "the request body stalled: no byte within requestTimeoutMs"
                                    : "the request did not arrive within requestTimeoutMs", true);
    h.error_code = kErrHttpTimeout;
    h.in.clear();
  } else if (w == HttpWait::Idle && h.h2) {  // an idle HTTP/2 connection: GOAWAY, then the close
    if (h.h2->sv.open_streams() > 0 || !h.in.empty()) return;
    h.h2->sv.shutdown();
    h2_flush_out(index);
    conn_close_graceful(index, c.gen, 1000);
  } else if (w == HttpWait::Idle) {
    if (!h.settled() || !h.in.empty()) return;  // busy again (that state keeps its own wait)
    if (c.tx_count > 0 || c.send_inflight) {    // the last answer is still being read
      http_set_wait(index, HttpWait::Idle, h.ep->cfg.keepalive_timeout_ms);
      return;
    }
    begin_close(index, 0, kOriginTimeout);
  } else if (w == HttpWait::Stall && h.h2) {
    h2_stalled(index);
  } else if (w == HttpWait::Owed) {  // the client ended its side; the answers owed did not come
    begin_close(index, 0, kOriginPeer);
  } else if (!c.write_closed || c.tx_count > 0) {  // Linger, but our answer is still going out
    http_set_wait(index, HttpWait::Linger, kLingerMs);
  } else {  // Linger: the peer did not close after our FIN
    begin_close(index, 0, kOriginLocal);
  }
}

void Shard::http_fail(uint32_t index, uint16_t status, const char* reason, bool limit, const http1::Field* extra,
                      uint32_t nextra) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (h.dead) return;
  h.dead = true;
  h.error = reason;
  h.error_code = kErrHttpProtocol;
  h.error_status = status;
  h.pump_more = false;
  h.need_lf = false;
  if (limit) ++h.ep->stats.limit_hits;
  else ++h.ep->stats.parse_errors;
  h.ep->stats.count_refusal(status);
  // A bad body of a request the application has (and has not answered): the error is that
  // request's answer (a later httpRespond for it finds it answered). Otherwise the answer takes
  // the next request id. Either way it leaves after the answers owed before it.
  uint32_t id;
  bool body_req_open = h.in_body && h.body_req - h.next_resp < h.next_req - h.next_resp;
  for (const auto& st : h.stash)
    if (st.first == h.body_req) body_req_open = false;
  if (body_req_open) {
    id = h.body_req;
  } else {
    id = h.next_req++;
  }
  h.req_flags[id % h.req_flags.size()] = 0;  // no keep-alive: the connection ends after it
  h.in_body = false;
  http1::Field fs[4] = {{"Content-Type", 12, "text/plain; charset=utf-8", 25}};
  if (nextra > 3) nextra = 3;
  for (uint32_t i = 0; i < nextra; ++i) fs[1 + i] = extra[i];
  http1::ResponseHead rh;
  rh.status = status;
  rh.fields = fs;
  rh.field_count = 1 + nextra;
  size_t rlen = strlen(reason);
  rh.body_bytes = static_cast<int64_t>(rlen + 1);
  rh.close = true;
  rh.trusted = true;
  uint8_t buf[512];
  int64_t n = http1::serialize_head(rh, http_date_, time(nullptr), buf, sizeof buf - rlen - 1);
  if (n < 0) return;
  memcpy(buf + n, reason, rlen);
  buf[n + rlen] = '\n';
  ++h.ep->stats.responses;
  ++h.ep->stats.status[status / 100];
  h.ep->stats.bytes_out += static_cast<uint64_t>(n) + rlen + 1;
  http_deliver(index, id, buf, static_cast<size_t>(n) + rlen + 1);
  mark_dirty(index);
}

// Responses leave in request order: the one for `next_resp` is written, later ones wait.
void Shard::http_deliver(uint32_t index, uint32_t req, const uint8_t* data, size_t len) {
  ConnHttp& h = *conns_[index].http;
  if (req != h.next_resp) {
    h.stash.emplace_back(req, std::string(reinterpret_cast<const char*>(data), len));
    return;
  }
  http_send(index, data, len);
  http_advance(index);
}

void Shard::http_advance(uint32_t index) {
  ConnHttp& h = *conns_[index].http;
  // Requests held for an answer (maxPipelined) are parsed at the next tick.
  if (!h.in.empty() && !h.dead) h.pump_more = true;
  for (;;) {
    if (!(h.req_flags[h.next_resp % h.req_flags.size()] & kReqKeepAlive)) h.close_after = true;
    ++h.next_resp;
    if (h.stream_on && h.stream_req == h.next_resp) {
      // A streamed answer is next: what it wrote meanwhile goes out, the rest follows directly.
      h.stream_front = true;
      if (!h.stream_held.empty()) {
        std::string s = std::move(h.stream_held);
        h.stream_held.clear();
        http_send(index, reinterpret_cast<const uint8_t*>(s.data()), s.size());
      }
      mark_dirty(index);  // its writer may be waiting for room
      break;
    }
    size_t i = 0;
    while (i < h.stash.size() && h.stash[i].first != h.next_resp) ++i;
    if (i == h.stash.size()) break;
    std::string s = std::move(h.stash[i].second);
    h.stash.erase(h.stash.begin() + static_cast<ptrdiff_t>(i));
    http_send(index, reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
}

// Into the write queue as far as it takes; the rest waits in `out` (sent on drain).
void Shard::http_send(uint32_t index, const uint8_t* data, size_t len) {
  overflow_write(index, conns_[index].http->out, data, len);
}

void Shard::http_drain(uint32_t index) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (overflow_drain(index, h.out, 1u << 20)) {
    if (!h.in.empty() && !h.dead) {  // requests held behind the answer: parse them now
      h.pump_more = true;
      mark_dirty(index);
    }
    if (h.stream_wants_room) mark_dirty(index);  // its writer is told at the next flush
    if (h.h2) {  // more frames from the HTTP/2 machine; streamed answers may have room again
      h2_flush_out(index);
      mark_dirty(index);
    }
  }
  if (!c.send_inflight && c.tx_count > c.tx_inflight_chunks) start_send(index);
}

// A response head for a request with flags `f` into http_scratch_: its length, or a negative
// http1 code. `body_bytes` -1: a streamed body (chunked; close-delimited for HTTP/1.0).
int64_t Shard::http_head(const ConnHttp& h, uint8_t f, uint16_t status, const http1::Field* fields,
                         uint32_t nfields, int64_t body_bytes, bool trusted) {
  http1::ResponseHead rh;
  rh.status = status;
  rh.fields = fields;
  rh.field_count = nfields;
  rh.body_bytes = body_bytes;
  rh.head_request = f & kReqHead;
  rh.http10 = f & kReqHttp10;
  rh.keep_alive10 = body_bytes >= 0 && (f & kReqHttp10) && (f & kReqKeepAlive);
  rh.close = !(f & kReqKeepAlive) || h.draining;
  rh.trusted = trusted;
  size_t cap = head_room(fields, nfields);
  if (http_scratch_.size() < cap) http_scratch_.resize(cap);
  return http1::serialize_head(rh, http_date_, time(nullptr), reinterpret_cast<uint8_t*>(http_scratch_.data()), cap);
}

int64_t Shard::http_respond(uint32_t index, uint32_t gen, uint32_t req, uint16_t status,
                            const http1::Field* fields, uint32_t nfields, const uint8_t* body,
                            size_t body_len, bool trusted, HttpEncoded* stored) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->http) return kErrNotHttp;
  ConnHttp& h = *c->http;
  if (c->state != ConnState::Open) return kErrStaleId;
  if (h.h2) return h2_respond(index, req, status, fields, nfields, body, body_len, stored);
  // Unsigned differences: request ids wrap.
  if (req - h.next_resp >= h.next_req - h.next_resp) {
    ++h.ep->stats.stale_responses;
    return kErrStaleId;  // answered already, or never parsed
  }
  for (const auto& s : h.stash)
    if (s.first == req) {
      ++h.ep->stats.stale_responses;
      return kErrStaleId;
    }
  if (status < 200 || status > 999) return http1::kBadStatus;  // 1xx are not final answers
  if (h.stream_on && h.stream_req == req) return kErrStaleId;  // being answered by a stream
  uint8_t f = h.req_flags[req % h.req_flags.size()];
  // An answer before its request's body has all arrived (the application's own 413, an early
  // error): the rest of the body is not read. The answer says Connection: close, and what the
  // client still sends is dropped during the lingering close (RFC 9112 section 9.6).
  bool early = h.in_body && h.body_req == req;
  if (early) {
    f = static_cast<uint8_t>(f & ~kReqKeepAlive);
    h.req_flags[req % h.req_flags.size()] = f;
  }
  http_encode(*h.ep, h.req_accept[req % h.req_accept.size()], status, &fields, &nfields, &body, &body_len, stored);
  bool no_body = http1::status_has_no_body(status);
  bool send_body = !(f & kReqHead) && !no_body;
  int64_t n = http_head(h, f, status, fields, nfields, no_body ? 0 : static_cast<int64_t>(body_len), trusted);
  if (n < 0) return n;
  uint8_t* head = reinterpret_cast<uint8_t*>(http_scratch_.data());
  size_t total = static_cast<size_t>(n) + (send_body ? body_len : 0);
  if (req == h.next_resp) {  // in order: head and body straight into the write queue
    http_send(index, head, static_cast<size_t>(n));
    if (send_body && body_len) http_send(index, body, body_len);
    http_advance(index);
  } else {
    std::string s(reinterpret_cast<const char*>(head), static_cast<size_t>(n));
    if (send_body) s.append(reinterpret_cast<const char*>(body), body_len);
    h.stash.emplace_back(req, std::move(s));
  }
  if (early) {  // no more of this connection's input is read: its body's rest is dropped
    h.in_body = false;
    h.dead = true;
    h.in.clear();
    if (h.wait == HttpWait::Head) http_set_wait(index, HttpWait::None, 0);
  }
  HttpCounters& st = h.ep->stats;
  ++st.responses;
  ++st.status[status / 100 <= 5 ? status / 100 : 5];
  st.bytes_out += total;
  mark_dirty(index);
  return static_cast<int64_t>(total);
}

void Shard::http_input(uint32_t index, const uint8_t* p, size_t n) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  h.ep->stats.bytes_in += n;
  if (h.dead) return;  // after an error answer: read and dropped (lingering close)
  if (h.h2) {
    if (h.in.empty()) {
      size_t used = h2_feed(index, p, n, true);
      if (used < n && !h.dead) h.in.assign(p + used, p + n);
    } else {
      h.in.insert(h.in.end(), p, p + n);
      http_pump(index);
    }
  } else if (h.in.empty()) {
    size_t used = http_parse(index, p, n, true);
    if (used < n && !h.dead) h.in.assign(p + used, p + n);
  } else {
    bool lf = memchr(p, '\n', n) != nullptr;
    h.in.insert(h.in.end(), p, p + n);
    if ((!h.need_lf || lf) && h.in.size() >= h.need_bytes) http_pump(index);
  }
  if (h.dead) h.in.clear();
  const HttpConfig& cfg = h.ep->cfg;
  size_t cap = cfg.limits.head_bytes_max + cfg.body_inline_max + 2 * pool_->slot_size();
  if (c.state == ConnState::Open && h.in.size() > cap && !h.rx_paused) {
    h.rx_paused = true;  // the peer meets TCP flow control until the held input is parsed
    cancel_recv(index);
  }
}

void Shard::http_pump(uint32_t index) {
  ConnHttp& h = *conns_[index].http;
  size_t used = h.h2 ? h2_feed(index, h.in.data(), h.in.size(), false)
                     : http_parse(index, h.in.data(), h.in.size(), false);
  if (h.dead) h.in.clear();
  else h.in.erase(h.in.begin(), h.in.begin() + static_cast<ptrdiff_t>(used));
}

size_t Shard::http_parse(uint32_t index, const uint8_t* buf, size_t len, bool pooled) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  const HttpConfig& cfg = h.ep->cfg;
  const uint32_t ss = pool_->slot_size();
  size_t pos = 0;
  h.pump_more = false;
  h.need_lf = false;
  h.need_bytes = 0;
  while (pos < len && c.state == ConnState::Open && !h.dead) {
    if (h.in_body) {
      if (!room(2)) {
        h.pump_more = true;
        break;
      }
      const uint8_t* p = buf + pos;
      size_t n = len - pos;
      int64_t slot = -1;
      if (!pooled) {  // held input: the body bytes are copied into a slot lent for the batch
        slot = pool_->acquire();
        if (slot < 0) {
          h.pump_more = true;
          wait_for_slot(index);
          break;
        }
        n = std::min<size_t>(n, ss);
      }
      http1::Span d;
      http1::Error e;
      int32_t r = h.body.feed(p, n, &d, &e);
      if (r == http1::kError) {
        if (slot >= 0) pool_->release(static_cast<uint32_t>(slot));
        http_fail(index, e.status, e.reason, e.status == 413);
        break;
      }
      pos += static_cast<size_t>(r);
      bool done = h.body.done();
      if (d.len == 0 && !done) {  // framing only (a chunk-size line)
        if (slot >= 0) pool_->release(static_cast<uint32_t>(slot));
        continue;
      }
      uint32_t off;
      if (slot >= 0) {
        uint32_t s = static_cast<uint32_t>(slot);
        memcpy(pool_->slot_ptr(s), p + d.off, d.len);
        loaned_plain_.push_back(s);
        off = static_cast<uint32_t>(pool_->slot_offset(s));
      } else {
        off = static_cast<uint32_t>(p + d.off - pool_->base());
      }
      emit(kEvHttpBody, index, c.gen, done ? 1 : 0, off, d.len, static_cast<int32_t>(h.body_req), 0);
      ++h.ep->stats.body_chunks;
      if (done) {
        h.in_body = false;
        http_set_wait(index, HttpWait::None, 0);
      } else {
        http_set_wait(index, HttpWait::Head, cfg.request_timeout_ms);  // the body must keep coming
      }
      continue;
    }
    if (h.no_more) {  // after a request without keep-alive nothing more is read
      pos = len;
      break;
    }
    // Held until answers go out: too many in flight, or an answer still waiting for queue room
    // (a slow reader's pipelined requests do not pile answers up in `out`).
    if (h.next_req - h.next_resp >= cfg.pipeline_max || !h.out_empty()) break;
    if (!room(3)) {
      h.pump_more = true;
      break;
    }
    http1::Head head;
    http1::Error e;
    int32_t r = http1::parse_head(buf + pos, len - pos, cfg.limits, &head, h.fields.data(), &e);
    if (r == http1::kIncomplete) {
      h.need_lf = true;
      if (h.wait != HttpWait::Head) http_set_wait(index, HttpWait::Head, cfg.request_timeout_ms);
      break;
    }
    if (r == http1::kError) {
      if (h.next_req == 0 && cfg.http2 && !looks_like_http1(buf + pos, len - pos)) {
        // Neither HTTP/1.x nor the HTTP/2 preface (an invalid preface, RFC 9113 section 3.4: a
        // connection error before any frame): there is no protocol to answer in, so the
        // connection just closes (our FIN, then the peer's).
        h.dead = true;
        h.error = "neither an HTTP/1.x request line nor the HTTP/2 client preface";
        h.error_code = kErrHttpProtocol;
        ++h.ep->stats.parse_errors;
        conn_close_graceful(index, c.gen, 2000);
        break;
      }
      http_fail(index, e.status, e.reason, e.status == 413 || e.status == 414 || e.status == 431);
      break;
    }
    if (head.h2_preface) {
      if (h.next_req == 0 && h2_start(index)) return pos + h2_feed(index, buf + pos, len - pos, pooled);
      http_fail(index, 505, "HTTP/2 is not served on this listener (http2: false)", false);
      break;
    }
    size_t head_len = static_cast<size_t>(r);
    int64_t cl = head.content_length;
    uint32_t table = kHttpRecordHeader + kHttpFieldBytes * head.header_count;
    // The record takes as many adjacent slots as it needs (a head larger than a slot: big
    // cookies); a small body rides along when it fits in the same slots.
    uint32_t run = static_cast<uint32_t>((table + head_len + ss - 1) / ss);
    bool inline_body = !head.chunked && cl > 0 && static_cast<uint64_t>(cl) <= cfg.body_inline_max &&
                       table + head_len + static_cast<uint64_t>(cl) <= static_cast<uint64_t>(run) * ss;
    if (head.expect_continue && !h.continued && h.next_resp == h.next_req &&
        (head.chunked || cl > 0) && head.version_minor == 1) {
      // RFC 9110 section 10.1.1: the client waits for this before it sends the body (never a
      // 1xx to an HTTP/1.0 client: section 15.2).
      h.continued = true;
      http_send(index, reinterpret_cast<const uint8_t*>(kContinue), sizeof kContinue - 1);
    }
    if (inline_body && len - pos - head_len < static_cast<uint64_t>(cl)) {
      h.need_bytes = head_len + static_cast<size_t>(cl);  // a small body: wait for all of it
      if (h.wait != HttpWait::Head) http_set_wait(index, HttpWait::Head, cfg.request_timeout_ms);
      break;
    }
    // Upgrade: h2c (RFC 7540 3.2) on a request without a body, with nothing in flight: 101,
    // then HTTP/2, this request being stream 1. Anything else with Upgrade is plain HTTP/1.1.
    const http1::Header* h2s = nullptr;
    if (head.upgrade && cfg.http2 && !head.chunked && cl <= 0 && h.next_req == h.next_resp &&
        http1::span_is(buf + pos, head.upgrade_to, "h2c")) {
      for (uint32_t i = 0; i < head.header_count; ++i)
        if (http1::span_is(buf + pos, h.fields[i].name, "http2-settings")) h2s = &h.fields[i];
    }
    uint8_t accept = 0;  // the codings its answer may use (Accept-Encoding, possibly several lines)
    if (cfg.compress_n) {
      compress::Accept ae;
      for (uint32_t i = 0; i < head.header_count; ++i)
        if (http1::span_is(buf + pos, h.fields[i].name, "accept-encoding"))
          ae.add(reinterpret_cast<const char*>(buf + pos + h.fields[i].value.off), h.fields[i].value.len);
      accept = ae.best();
    }
    int32_t ws_proto = -1;
    http1::Span ws_key;
    bool to_ws = false;
    if (h.ep->ws) {  // a listener that serves WebSocket: is this its upgrade?
      int v = ws_check(index, buf + pos, head, &ws_proto, &ws_key);
      if (v < 0) break;
      to_ws = v == 1;
    }
    int64_t s = pool_->acquire_run(run);
    if (s < 0) {
      if (run > 1 && pool_->free_count() >= run * 4) {  // free slots, but none adjacent enough
        http_fail(index, 431, "no run of adjacent pool slots is free for this large request head (raise poolSlotSize)", true);
        break;
      }
      h.pump_more = true;
      wait_for_slot(index);
      break;
    }
    uint32_t slot = static_cast<uint32_t>(s);
    bool to_h2 = h2s != nullptr &&
                 h2_upgrade(index, buf + pos + h2s->value.off, h2s->value.len, head.method == http1::Method::Head);
    uint8_t* rec = pool_->slot_ptr(slot);
    memcpy(rec + table, buf + pos, head_len);
    uint32_t body_off = table + static_cast<uint32_t>(head_len);
    uint32_t body_len = inline_body ? static_cast<uint32_t>(cl) : 0;
    if (body_len) memcpy(rec + body_off, buf + pos + head_len, body_len);
    bool streamed = (head.chunked || cl > 0) && !inline_body;
    uint32_t flags = (streamed ? kReqStreamed : 0) | (head.keep_alive ? kReqKeepAlive : 0) |
                     (head.method == http1::Method::Head ? kReqHead : 0) |
                     (head.version_minor == 0 ? kReqHttp10 : 0) |
                     (head.expect_continue ? kReqExpect : 0) | (head.upgrade ? kReqUpgrade : 0);
    put32(rec + 0, table + head.method_text.off);
    put32(rec + 4, head.method_text.len);
    put32(rec + 8, table + head.target.off);
    put32(rec + 12, head.target.len);
    put32(rec + 16, table + head.path.off);
    put32(rec + 20, head.path.len);
    put32(rec + 24, table + head.query.off);
    put32(rec + 28, head.query.len);
    put32(rec + 32, body_off);
    put32(rec + 36, body_len);
    put32(rec + 40, head.header_count);
    put32(rec + 44, flags);
    put32(rec + 48, static_cast<uint32_t>(static_cast<uint64_t>(cl)));
    put32(rec + 52, static_cast<uint32_t>(static_cast<uint64_t>(cl) >> 32));
    uint8_t* t = rec + kHttpRecordHeader;
    for (uint32_t i = 0; i < head.header_count; ++i, t += kHttpFieldBytes) {
      const http1::Header& f = h.fields[i];
      put32(t, table + f.name.off);
      put32(t + 4, table + f.value.off);
      put16(t + 8, static_cast<uint16_t>(f.name.len));
      put16(t + 10, static_cast<uint16_t>(f.value.len));
    }
    if (to_ws) {  // the connection speaks WebSocket from here on (ws_conn.cc)
      pos += head_len;
      return pos + ws_begin(index, slot, body_off, flags, buf + pos - head_len + ws_key.off, ws_proto,
                            const_cast<uint8_t*>(buf + pos), len - pos);
    }
    uint32_t id = to_h2 ? 1 : h.next_req++;
    if (!to_h2) {
      h.req_flags[id % h.req_flags.size()] = static_cast<uint8_t>(flags);
      h.req_accept[id % h.req_accept.size()] = accept;
    } else {
      h.h2->sv.set_tag(1, accept);
    }
    h.continued = false;
    loaned_plain_.push_back(slot);
    uint32_t version = to_h2 ? 20 : head.version_minor;  // answered as HTTP/2's stream 1
    emit(kEvHttpRequest, index, c.gen,
         static_cast<int32_t>(static_cast<uint32_t>(head.method) | (version << 8) | (flags << 16)),
         static_cast<uint32_t>(pool_->slot_offset(slot)), body_off + body_len, static_cast<int32_t>(id),
         static_cast<int32_t>(body_len));
    ++h.ep->stats.requests;
    pos += head_len + body_len;
    if (to_h2) return pos + h2_feed(index, buf + pos, len - pos, pooled);  // the client's preface and on
    http_set_wait(index, HttpWait::None, 0);
    if (!head.keep_alive) h.no_more = true;
    if (streamed) {
      h.in_body = true;
      h.body_req = id;
      h.body.start(cl, head.chunked, cfg.limits);
      http_set_wait(index, HttpWait::Head, cfg.request_timeout_ms);
    }
  }
  return pos;
}

void Shard::http_peer_ended(uint32_t index) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (h.in_body && !h.dead) {
    // The body can never complete: the request is abandoned.
    h.error = "the peer ended the connection in the middle of a request body";
    h.error_code = kErrHttpProtocol;
    begin_close(index, kErrHttpProtocol, kOriginPeer);
    return;
  }
  // HTTP/2: requests whose body had not ended can never end: their streams are reset (HttpReset
  // events), the complete ones are still answered.
  if (h.h2 && !h.dead) {
    h.h2->sv.peer_ended();
    h2_flush_out(index);
  }
  // The application hears of it (an owned request's signal fires: the client will not read an
  // answer it may still be computing); the answers owed still go out, then the close.
  if (h.h2 ? h.h2->sv.open_streams() > 0 : !h.settled()) {
    if (room(1)) emit(kEvPeerEnded, index, c.gen, c.proto, 0, 0, 0, 0);
    // A client that gave up is not kept for ever by answers that never come.
    http_set_wait(index, HttpWait::Owed, h.ep->cfg.request_timeout_ms);
  }
  mark_dirty(index);  // http_flush closes once the answers owed are out
}

int64_t Shard::http_stream_start(uint32_t index, uint32_t gen, uint32_t req, uint16_t status,
                                 const http1::Field* fields, uint32_t nfields, bool trusted) {
  Conn* c = lookup(index, gen);
  if (!c) return kErrStaleId;
  if (!c->http) return kErrNotHttp;
  ConnHttp& h = *c->http;
  if (c->state != ConnState::Open) return kErrStaleId;
  if (h.h2) {
    int r = h.h2->sv.stream_start(static_cast<int32_t>(req), status, fields, nfields, time(nullptr));
    if (r == http2::kStreamGone) return kErrStaleId;
    if (r == http2::kBadField) return http1::kBadField;
    if (r != http2::kOk) return kErrPoolExhausted;
    ++h.ep->stats.responses;
    ++h.ep->stats.status[status / 100 <= 5 ? status / 100 : 5];
    h2_flush_out(index);
    mark_dirty(index);
    return 0;
  }
  if (req - h.next_resp >= h.next_req - h.next_resp) return kErrStaleId;
  for (const auto& s : h.stash)
    if (s.first == req) return kErrStaleId;
  if (h.stream_on) return h.stream_req == req ? kErrStaleId : kErrQueueFull;
  if (status < 200 || status > 999) return http1::kBadStatus;
  uint8_t& f = h.req_flags[req % h.req_flags.size()];
  // Chunked; HTTP/1.0: delimited by the close (serialize_head says so).
  int64_t n = http_head(h, f, status, fields, nfields, -1, false);
  if (n < 0) return n;
  uint8_t* head = reinterpret_cast<uint8_t*>(http_scratch_.data());
  h.stream_on = true;
  h.stream_req = req;
  h.stream_chunked = !(f & kReqHttp10);
  h.stream_nobody = (f & kReqHead) || http1::status_has_no_body(status);
  if (f & kReqHttp10) f &= static_cast<uint8_t>(~kReqKeepAlive);  // the close ends the body
  h.stream_wants_room = false;
  h.stream_held.clear();
  h.stream_front = req == h.next_resp;
  if (h.stream_front) http_send(index, head, static_cast<size_t>(n));
  else h.stream_held.assign(reinterpret_cast<const char*>(head), static_cast<size_t>(n));
  HttpCounters& st = h.ep->stats;
  ++st.responses;
  ++st.status[status / 100 <= 5 ? status / 100 : 5];
  st.bytes_out += static_cast<uint64_t>(n);
  mark_dirty(index);
  return 0;
}

int64_t Shard::http_stream_write(uint32_t index, uint32_t gen, uint32_t req, const uint8_t* data,
                                 size_t len) {
  Conn* c = lookup(index, gen);
  if (!c || !c->http || c->state != ConnState::Open) return kErrStaleId;
  ConnHttp& h = *c->http;
  if (h.h2) {
    int r = h.h2->sv.stream_write(static_cast<int32_t>(req), data, len);
    if (r < 0) return kErrStaleId;
    h.ep->stats.bytes_out += len;
    h2_flush_out(index);
    mark_dirty(index);
    return r;
  }
  if (!h.stream_on || h.stream_req != req) return kErrStaleId;
  if (len > 0 && !h.stream_nobody) {
    uint8_t line[http1::kChunkLineMax];
    size_t ln = h.stream_chunked ? http1::chunk_line(len, line) : 0;
    h.ep->stats.bytes_out += ln + len + (h.stream_chunked ? 2 : 0);
    if (h.stream_front) {
      if (ln) http_send(index, line, ln);
      http_send(index, data, len);
      if (h.stream_chunked) http_send(index, reinterpret_cast<const uint8_t*>(http1::kChunkEnd), 2);
    } else {
      h.stream_held.append(reinterpret_cast<const char*>(line), ln);
      h.stream_held.append(reinterpret_cast<const char*>(data), len);
      if (h.stream_chunked) h.stream_held.append(http1::kChunkEnd, 2);
    }
    mark_dirty(index);
  }
  if (h.stream_front && h.out_empty()) return 1;
  h.stream_wants_room = true;
  return 0;
}

int64_t Shard::http_stream_end(uint32_t index, uint32_t gen, uint32_t req) {
  Conn* c = lookup(index, gen);
  if (!c || !c->http || c->state != ConnState::Open) return kErrStaleId;
  ConnHttp& h = *c->http;
  if (h.h2) {
    if (h.h2->sv.stream_end(static_cast<int32_t>(req)) != http2::kOk) return kErrStaleId;
    h2_flush_out(index);
    mark_dirty(index);
    return 0;
  }
  if (!h.stream_on || h.stream_req != req) return kErrStaleId;
  h.stream_on = false;
  h.stream_wants_room = false;
  bool last = h.stream_chunked && !h.stream_nobody;
  if (last) h.ep->stats.bytes_out += sizeof http1::kLastChunk - 1;
  if (h.stream_front) {
    if (last) http_send(index, reinterpret_cast<const uint8_t*>(http1::kLastChunk), sizeof http1::kLastChunk - 1);
    http_advance(index);
  } else {  // earlier answers are still owed: the whole answer waits with theirs
    if (last) h.stream_held.append(http1::kLastChunk, sizeof http1::kLastChunk - 1);
    h.stash.emplace_back(req, std::move(h.stream_held));
    h.stream_held.clear();
  }
  mark_dirty(index);
  return 0;
}

bool Shard::http_shutdown(uint32_t index, uint32_t timeout_ms) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (h.h2) {  // GOAWAY: streams in flight finish, no new one is taken
    h.h2->sv.shutdown();
    h2_flush_out(index);
    if (h.h2->sv.open_streams() == 0) return false;
  } else if (h.settled()) {
    return false;
  }
  h.draining = true;
  h.no_more = true;
  h.close_after = true;
  // The bound: at the graceful timer what is still queued is dropped and the connection closes.
  if (c.timer != TimerWheel::kNone) timers_.cancel(c.timer);
  c.timer = timers_.add(now_ms() + timeout_ms, kTimerGraceful, index, c.gen);
  mark_dirty(index);
  return true;
}

bool Shard::http_owes(const Conn& c) {
  if (!c.http || c.state != ConnState::Open) return false;
  const ConnHttp& h = *c.http;
  return (h.pump_more && !c.pool_waiting) || (h.stream_wants_room && h.stream_front && h.out_empty()) ||
         (h.h2 && h.out_empty() && h.h2->sv.room_waiting());
}

void Shard::http_flush(uint32_t index, bool allow_events) {
  Conn& c = conns_[index];
  ConnHttp& h = *c.http;
  if (h.h2) {
    h2_flush(index, allow_events);
    return;
  }
  if (h.dead) {
    h.in.clear();
  } else if (allow_events && !h.in.empty() && !h.need_lf && h.in.size() >= h.need_bytes &&
             (h.pump_more || h.in_body || h.next_req - h.next_resp < h.ep->cfg.pipeline_max)) {
    http_pump(index);  // input held for event room, a pool slot, or answers
  }
  if (c.state != ConnState::Open || c.ws) return;  // (an upgrade held in that input took the connection)
  if (h.stream_wants_room && h.stream_front && h.out_empty() && allow_events && room(1)) {
    h.stream_wants_room = false;  // everything it wrote is in the write queue: write more
    emit(kEvHttpWritable, index, c.gen, 0, 0, 0, static_cast<int32_t>(h.stream_req), 0);
  }
  const HttpConfig& cfg = h.ep->cfg;
  if (h.rx_paused && !c.recv_armed &&
      h.in.size() <= cfg.limits.head_bytes_max + cfg.body_inline_max) {
    h.rx_paused = false;
    c.need_rearm = !c.peer_eof;
  }
  if (!h.settled()) return;
  if (c.peer_eof) {
    // The peer is done sending and every request it sent is answered: close once that is out
    // (the peer ended it: Disconnected says origin 'peer').
    if (!c.graceful && !c.end_pending && !c.write_closed && conn_close_graceful(index, c.gen, 5000) == 0)
      c.graceful_origin = kOriginPeer;
  } else if (h.close_after || h.dead) {
    if (!h.ending) {  // lingering close: our FIN after the last answer, then the peer's
      h.ending = true;
      conn_end(index, c.gen);
      http_set_wait(index, HttpWait::Linger, kLingerMs);
    }
  } else if (h.in.empty() && h.wait == HttpWait::None) {
    http_set_wait(index, HttpWait::Idle, cfg.keepalive_timeout_ms);
  }
}

}  // namespace zio
