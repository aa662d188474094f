// native/proto/http2/http2.cc — the HTTP/2 server machine on nghttp2 (see http2.h).
#include "proto/http2/http2.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <new>

namespace zio::http2 {

struct Server::Stream {
  int32_t id = 0;
  Stream *prev = nullptr, *next = nullptr;  // every live Stream, for the destructor (nghttp2 does
                                            // not close the streams left when a session is deleted)
  std::string buf;  // the head's names and values, as decoded
  struct F { uint32_t no, nl, vo, vl; };
  std::vector<F> fields;
  F method{}, path{}, authority{}, scheme{};
  int64_t content_length = -1;
  uint32_t head_bytes = 0;
  uint64_t body_bytes = 0;
  bool delivered = false;   // on_request was called
  bool answered = false;    // respond() was called
  bool complete = false;    // the answer's last frame was sent
  bool streaming = false;   // a streamed answer: its body comes in pieces (stream_write)
  bool stream_ended = false;
  bool deferred = false;    // the data provider found nothing to send and is waiting
  bool too_large = false;   // the head passed header_list_bytes_max / header_count_max
  bool stop_body = false;   // answered before the request body ended: RST_STREAM(NO_ERROR) after
  uint32_t cookies = 0, counted = 0;  // cookie fields seen; fields counted against header_count_max
  bool remote_ended = false;  // the request's END_STREAM came (nghttp2's state changes after the callback)
  uint8_t tag = 0;          // the caller's (set_tag)
  bool wants_room = false;  // its writer was told to wait for room
  bool head_method = false;
  std::string out;          // the answer's body, sent as flow control allows
  size_t out_off = 0;
  std::string_view view(const F& f) const { return {buf.data() + f.vo, f.vl}; }
};

namespace {

// ---- the bounded allocator: every byte nghttp2 allocates counts against memory_bytes_max ----
constexpr size_t kHdr = 16;  // size prefix, keeps 16-byte alignment
void* m_alloc(size_t n, void* ud) {
  auto* s = static_cast<Server*>(ud);
  if (s->mem_used_ + n > s->limits_.memory_bytes_max) return nullptr;
  auto* p = static_cast<uint8_t*>(std::malloc(n + kHdr));
  if (!p) return nullptr;
  memcpy(p, &n, sizeof n);
  s->mem_used_ += n;
  return p + kHdr;
}
void m_free(void* ptr, void* ud) {
  if (!ptr) return;
  auto* p = static_cast<uint8_t*>(ptr) - kHdr;
  size_t n;
  memcpy(&n, p, sizeof n);
  static_cast<Server*>(ud)->mem_used_ -= n;
  std::free(p);
}
void* m_calloc(size_t k, size_t n, void* ud) {
  if (n && k > SIZE_MAX / n) return nullptr;
  void* p = m_alloc(k * n, ud);
  if (p) memset(p, 0, k * n);
  return p;
}
void* m_realloc(void* ptr, size_t n, void* ud) {
  if (!ptr) return m_alloc(n, ud);
  auto* old = static_cast<uint8_t*>(ptr) - kHdr;
  size_t was;
  memcpy(&was, old, sizeof was);
  void* p = m_alloc(n, ud);
  if (!p) return nullptr;
  memcpy(p, ptr, was < n ? was : n);
  m_free(ptr, ud);
  return p;
}

Server* self(void* ud) { return static_cast<Server*>(ud); }

bool is_token(uint8_t c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
         strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

int on_begin_headers(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;
  auto* st = new (std::nothrow) Server::Stream;
  if (!st) return NGHTTP2_ERR_CALLBACK_FAILURE;
  st->id = f->hd.stream_id;
  nghttp2_session_set_stream_user_data(s, f->hd.stream_id, st);
  self(ud)->link(st);
  return 0;
}

int on_header(nghttp2_session* s, const nghttp2_frame* f, nghttp2_rcbuf* name, nghttp2_rcbuf* value,
              uint8_t, void* ud) {
  if (f->hd.type != NGHTTP2_HEADERS || f->headers.cat != NGHTTP2_HCAT_REQUEST) return 0;  // trailers: not kept
  auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, f->hd.stream_id));
  if (!st) return 0;
  nghttp2_vec n = nghttp2_rcbuf_get_buf(name), v = nghttp2_rcbuf_get_buf(value);
  const Limits& lim = self(ud)->limits_;
  // RFC 9113 6.5.2: a field's size is its name and value plus 32. An HPACK bomb (a small block
  // that decodes to a huge list) is stopped here, before the list is built.
  // What is over the limit is decoded (HPACK's table must stay in step) but not kept; the
  // request is then answered 431 instead of being delivered (RFC 9113 10.5.1).
  if (st->too_large) return 0;
  st->head_bytes += static_cast<uint32_t>(n.len + v.len + 32);
  // Cookie crumbs (RFC 9113 8.2.3: one cookie field split into several) count as one field.
  bool crumb = n.len == 6 && memcmp(n.base, "cookie", 6) == 0 && st->cookies++ > 0;
  if (!crumb && !(n.len > 0 && n.base[0] == ':')) ++st->counted;
  if (st->head_bytes > lim.header_list_bytes_max || st->counted > lim.header_count_max) {
    st->too_large = true;
    return 0;
  }
  Server::Stream::F fl{static_cast<uint32_t>(st->buf.size()), static_cast<uint32_t>(n.len),
                       static_cast<uint32_t>(st->buf.size() + n.len), static_cast<uint32_t>(v.len)};
  st->buf.append(reinterpret_cast<const char*>(n.base), n.len);
  st->buf.append(reinterpret_cast<const char*>(v.base), v.len);
  std::string_view nm(reinterpret_cast<const char*>(n.base), n.len);
  if (!nm.empty() && nm[0] == ':') {
    if (nm == ":method") st->method = fl;
    else if (nm == ":path") st->path = fl;
    else if (nm == ":authority") st->authority = fl;
    else if (nm == ":scheme") st->scheme = fl;
    return 0;
  }
  if (nm == "content-length") {
    int64_t cl = 0;
    for (size_t i = 0; i < v.len; ++i) cl = cl * 10 + (v.base[i] - '0');  // nghttp2 checked it is digits
    st->content_length = cl;
  }
  st->fields.push_back(fl);
  return 0;
}

int on_frame_recv_rst(Server* sv, const nghttp2_frame* f);

int on_frame_recv(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  Server* sv = self(ud);
  int32_t id = f->hd.stream_id;
  if (f->hd.type == NGHTTP2_RST_STREAM) return on_frame_recv_rst(sv, f);
  if (f->hd.type == NGHTTP2_GOAWAY) sv->peer_goaway_ = true;
  bool end = f->hd.flags & NGHTTP2_FLAG_END_STREAM;
  if (f->hd.type == NGHTTP2_HEADERS && f->headers.cat == NGHTTP2_HCAT_REQUEST) {
    auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, id));
    if (!st) return 0;
    if (st->content_length >= 0 && static_cast<uint64_t>(st->content_length) > sv->limits_.body_bytes_max) {
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_REFUSED_STREAM);
      return 0;
    }
    sv->scratch_fields_.clear();
    for (const auto& fl : st->fields)
      sv->scratch_fields_.emplace_back(std::string_view(st->buf.data() + fl.no, fl.nl), st->view(fl));
    Head h;
    h.stream = id;
    h.too_large = st->too_large;
    h.method = st->view(st->method);
    h.path = st->view(st->path);
    h.authority = st->view(st->authority);
    h.scheme = st->view(st->scheme);
    h.fields = sv->scratch_fields_.data();
    h.field_count = static_cast<uint32_t>(sv->scratch_fields_.size());
    h.end_stream = end;
    st->remote_ended = end;
    h.content_length = st->content_length;
    st->head_method = h.method == "HEAD";
    st->delivered = true;
    sv->events_->on_request(h);
    return 0;
  }
  if (end && (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS)) {  // DATA or trailers
    auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, id));
    if (st) st->remote_ended = true;
    if (st && st->delivered) sv->events_->on_data(id, nullptr, 0, true);
  }
  return 0;
}

int on_data_chunk(nghttp2_session* s, uint8_t, int32_t id, const uint8_t* data, size_t len, void* ud) {
  Server* sv = self(ud);
  auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, id));
  if (!st || !st->delivered) return 0;
  st->body_bytes += len;
  if (st->body_bytes > sv->limits_.body_bytes_max) {
    nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
    return 0;
  }
  sv->events_->on_data(id, data, len, false);
  return 0;
}

int on_stream_close(nghttp2_session* s, int32_t id, uint32_t code, void* ud) {
  auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, id));
  Server* sv = self(ud);
  if (code != NGHTTP2_NO_ERROR && !Server::in_ring(sv->reset_by_peer_, id))
    sv->reset_by_us_[sv->reset_by_us_at_++ % Server::kClosedRing] = id;
  else
    sv->closed_[sv->closed_at_++ % Server::kClosedRing] = id;
  if (!st) return 0;
  if (st->delivered && !st->complete) sv->events_->on_reset(id, code);
  nghttp2_session_set_stream_user_data(s, id, nullptr);
  self(ud)->unlink(st);
  delete st;
  return 0;
}

int on_frame_recv_rst(Server* sv, const nghttp2_frame* f) {
  if (f->hd.type == NGHTTP2_RST_STREAM) {
    sv->reset_by_peer_[sv->reset_by_peer_at_++ % Server::kClosedRing] = f->hd.stream_id;
    sv->reset_received();
  }
  return 0;
}

int on_frame_send(nghttp2_session* s, const nghttp2_frame* f, void* ud) {
  if (f->hd.type == NGHTTP2_GOAWAY) self(ud)->goaway_code_ = f->goaway.error_code;
  if (f->hd.type == NGHTTP2_DATA) ++self(ud)->data_frames_sent_;
  // RFC 9113 8.1: a complete answer sent before the request ended; the client is told to stop
  // sending the rest, without error.
  if ((f->hd.flags & NGHTTP2_FLAG_END_STREAM) && (f->hd.type == NGHTTP2_DATA || f->hd.type == NGHTTP2_HEADERS)) {
    auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, f->hd.stream_id));
    if (st && st->stop_body) {
      st->stop_body = false;
      // DATA the client sent before it sees the reset is ignored (RFC 9113 5.4.2), not a
      // frame on a closed stream.
      Server* sv = self(ud);
      sv->reset_by_us_[sv->reset_by_us_at_++ % Server::kClosedRing] = f->hd.stream_id;
      nghttp2_submit_rst_stream(s, NGHTTP2_FLAG_NONE, f->hd.stream_id, NGHTTP2_NO_ERROR);
    }
  }
  return 0;
}

nghttp2_ssize read_body(nghttp2_session* s, int32_t id, uint8_t* buf, size_t length, uint32_t* flags,
                        nghttp2_data_source*, void* ud) {
  auto* st = static_cast<Server::Stream*>(nghttp2_session_get_stream_user_data(s, id));
  if (!st) return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
  size_t n = st->out.size() - st->out_off;
  if (n > length) n = length;
  memcpy(buf, st->out.data() + st->out_off, n);
  st->out_off += n;
  self(ud)->body_sent_ += n;
  if (st->out_off == st->out.size()) {
    if (st->streaming && !st->stream_ended) {  // a streamed answer waits for its next piece
      st->out.clear();
      st->out_off = 0;
      if (n == 0) {
        st->deferred = true;
        return NGHTTP2_ERR_DEFERRED;
      }
      return static_cast<nghttp2_ssize>(n);
    }
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    st->complete = true;
    std::string().swap(st->out);
  }
  return static_cast<nghttp2_ssize>(n);
}

}  // namespace

Server::~Server() {
  if (s_) nghttp2_session_del(s_);
  while (streams_) {  // the streams still open when the session went
    Stream* st = streams_;
    unlink(st);
    delete st;
  }
}

void Server::link(Stream* st) {
  st->next = streams_;
  if (streams_) streams_->prev = st;
  streams_ = st;
  ++open_;
}

void Server::unlink(Stream* st) {
  if (st->prev) st->prev->next = st->next; else streams_ = st->next;
  if (st->next) st->next->prev = st->prev;
  st->prev = st->next = nullptr;
  --open_;
}

Server::Stream* Server::stream_of(int32_t id) {
  return static_cast<Stream*>(nghttp2_session_get_stream_user_data(s_, id));
}

void Server::set_tag(int32_t stream, uint8_t v) {
  if (Stream* st = stream_of(stream)) st->tag = v;
}

int Server::tag(int32_t stream) {
  Stream* st = stream_of(stream);
  return st ? st->tag : -1;
}

int Server::init(const Limits& limits, Events* events, std::string* err) {
  limits_ = limits;
  events_ = events;
  nghttp2_session_callbacks* cb = nullptr;
  nghttp2_option* opt = nullptr;
  if (nghttp2_session_callbacks_new(&cb) != 0 || nghttp2_option_new(&opt) != 0) {
    if (cb) nghttp2_session_callbacks_del(cb);
    *err = "out of memory";
    return kNoMemory;
  }
  nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
  nghttp2_session_callbacks_set_on_header_callback2(cb, on_header);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data_chunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
  nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
  // Our own bucket answers with ENHANCE_YOUR_CALM (reset_received); nghttp2's, at four times
  // the rate, stays as a backstop (it answers INTERNAL_ERROR).
  nghttp2_option_set_stream_reset_rate_limit(opt, 4ull * limits.resets_burst + 1000, 4ull * limits.resets_per_sec);
  reset_tokens_ = limits.resets_burst;
  nghttp2_option_set_max_continuations(opt, 8);
  nghttp2_option_set_max_settings(opt, 32);
  nghttp2_option_set_max_outbound_ack(opt, 1000);
  nghttp2_mem mem{this, m_alloc, m_free, m_calloc, m_realloc};
  int r = nghttp2_session_server_new3(&s_, cb, this, opt, &mem);
  nghttp2_session_callbacks_del(cb);
  nghttp2_option_del(opt);
  if (r != 0) {
    s_ = nullptr;
    *err = nghttp2_strerror(r);
    return kNoMemory;
  }
  nghttp2_settings_entry iv[] = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, limits.initial_window},
      {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, limits.max_frame_size},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.header_list_bytes_max},
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
  };
  r = nghttp2_submit_settings(s_, NGHTTP2_FLAG_NONE, iv, sizeof iv / sizeof iv[0]);
  if (r != 0) {
    *err = nghttp2_strerror(r);
    return kFatal;
  }
  return kOk;
}

void Server::reset_received() {
  if (fatal_) return;
  if (reset_at_ms_ == 0) reset_at_ms_ = now_ms_;
  double back = static_cast<double>(now_ms_ - reset_at_ms_) * limits_.resets_per_sec / 1000.0;
  reset_tokens_ = std::min<double>(limits_.resets_burst, reset_tokens_ + back);
  reset_at_ms_ = now_ms_;
  if (reset_tokens_ >= 1) {
    reset_tokens_ -= 1;
    return;
  }
  error_ = "rapid reset: the peer cancels streams faster than resets_per_sec (CVE-2023-44487)";
  fatal_ = true;
  nghttp2_session_terminate_session(s_, NGHTTP2_ENHANCE_YOUR_CALM);
}

int Server::feed(const uint8_t* data, size_t len) {
  nghttp2_ssize r = nghttp2_session_mem_recv2(s_, data, len);
  if (r >= 0 && !fatal_) return kOk;
  fatal_ = true;
  if (r >= 0) return kFatal;  // a defence ended the session (reset_received): its GOAWAY is queued
  switch (r) {
    case NGHTTP2_ERR_BAD_CLIENT_MAGIC: error_ = "the client preface is not HTTP/2's"; break;
    case NGHTTP2_ERR_FLOODED: error_ = "flooded: too many frames that need an answer (PING/SETTINGS)"; break;
    case NGHTTP2_ERR_TOO_MANY_CONTINUATIONS: error_ = "CONTINUATION flood: more than 8 CONTINUATION frames for one head"; break;
    case NGHTTP2_ERR_NOMEM: error_ = "the session's memory limit was reached"; break;
    case NGHTTP2_ERR_CALLBACK_FAILURE: error_ = "internal failure"; break;
    default: error_ = nghttp2_strerror(static_cast<int>(r)); break;
  }
  // nghttp2 has queued its GOAWAY for protocol errors; make sure one goes out.
  bool calm = r == NGHTTP2_ERR_FLOODED || r == NGHTTP2_ERR_TOO_MANY_CONTINUATIONS;
  if (goaway_code_ == 0) nghttp2_session_terminate_session(s_, calm ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
  return kFatal;
}

// The frame scanner: nghttp2 is fed up to each frame header, which is then looked at with the
// session exactly as the frames before it left it (check_frame: what nghttp2 1.68 leaves out —
// it forgets closed streams, drops DATA on them before any callback, makes a stream window
// overflow a connection error and ignores RFC 7540 priorities).
// Frames are held back only until their header is whole (and, for WINDOW_UPDATE and PRIORITY,
// their few payload bytes): nothing is copied beyond that.
int Server::recv(const uint8_t* data, size_t len, uint64_t now_ms) {
  if (fatal_) return kFatal;
  now_ms_ = now_ms;
  size_t i = 0;
  while (i < len) {
    if (scan_.preface_left > 0 || scan_.payload_left > 0) {  // bytes nghttp2 can have as they are
      size_t& left = scan_.preface_left > 0 ? scan_.preface_left : scan_.payload_left;
      size_t k = std::min(left, len - i);
      if (feed(data + i, k) != kOk) return kFatal;
      left -= k;
      i += k;
      continue;
    }
    size_t k = std::min<size_t>(scan_.need - scan_.have, len - i);  // a frame's head being gathered
    memcpy(scan_.head + scan_.have, data + i, k);
    scan_.have += k;
    i += k;
    if (scan_.have < scan_.need) break;
    const uint8_t* h = scan_.head;
    uint32_t flen = (uint32_t{h[0]} << 16) | (uint32_t{h[1]} << 8) | h[2];
    uint8_t type = h[3];
    int32_t id = static_cast<int32_t>(((uint32_t{h[5]} << 24) | (uint32_t{h[6]} << 16) | (uint32_t{h[7]} << 8) | h[8]) & 0x7fffffff);
    // WINDOW_UPDATE and PRIORITY on a stream: gather their payload too (4 and 5 bytes).
    size_t want = (type == NGHTTP2_WINDOW_UPDATE && flen == 4 && id > 0) || (type == NGHTTP2_PRIORITY && flen == 5 && id > 0)
                      ? 9 + flen : 9;
    if (scan_.need < want) {
      scan_.need = static_cast<uint8_t>(want);
      continue;
    }
    size_t fed = scan_.have;
    scan_.have = 0;
    scan_.need = 9;
    scan_.payload_left = 9 + flen - fed;
    if (int v = check_frame(type, id, h + 9, fed - 9); v != 0) {
      if (v < 0) return kFatal;  // a connection error: its GOAWAY is queued
      continue;                  // answered with RST_STREAM, the frame dropped (no payload left)
    }
    if (feed(h, fed) != kOk) return kFatal;
  }
  return kOk;
}

int Server::check_frame(uint8_t type, int32_t id, const uint8_t* payload, size_t n) {
  auto fail = [&](uint32_t code, const char* why) {
    error_ = why;
    fatal_ = true;
    nghttp2_session_terminate_session(s_, code);
    return -1;
  };
  if (type == NGHTTP2_PRIORITY && id == 0) return fail(NGHTTP2_PROTOCOL_ERROR, "PRIORITY frame on stream 0");  // 6.3
  // DATA or HEADERS on a stream the client opened before: closed (5.1), unless it is in flight
  // after our own RST_STREAM (5.4.2: ignored); a HEADERS opening a stream below an earlier one
  // breaks 5.1.1.
  if ((type == NGHTTP2_DATA || type == NGHTTP2_HEADERS) && id > 0 && (id & 1) &&
      id <= nghttp2_session_get_last_proc_stream_id(s_)) {
    nghttp2_stream* st = nghttp2_session_find_stream(s_, id);
    bool open = st != nullptr && nghttp2_stream_get_state(st) != NGHTTP2_STREAM_STATE_CLOSED;
    if (!open && !in_ring(reset_by_us_, id)) {
      if (type == NGHTTP2_DATA) return fail(NGHTTP2_STREAM_CLOSED, "DATA on a closed stream");
      if (in_ring(closed_, id) || in_ring(reset_by_peer_, id)) return fail(NGHTTP2_STREAM_CLOSED, "a frame on a closed stream");
      return fail(NGHTTP2_PROTOCOL_ERROR, "a stream id smaller than an earlier one");
    }
  }
  if (type == NGHTTP2_PRIORITY && n == 5) {
    uint32_t dep = ((uint32_t{payload[0]} << 24) | (uint32_t{payload[1]} << 16) | (uint32_t{payload[2]} << 8) | payload[3]) & 0x7fffffff;
    if (dep == static_cast<uint32_t>(id)) return fail(NGHTTP2_PROTOCOL_ERROR, "a stream that depends on itself");  // 5.3.1
  }
  // WINDOW_UPDATE flood: a client opens windows for the DATA we send (a stream's and the
  // connection's: two per DATA frame at most) and for its streams; beyond that, and a slack,
  // updates do nothing but cost.
  if (type == NGHTTP2_HEADERS) ++headers_seen_;
  if (type == NGHTTP2_WINDOW_UPDATE && ++window_updates_ > 2 * (data_frames_sent_ + headers_seen_) + kWindowUpdateSlack)
    return fail(NGHTTP2_ENHANCE_YOUR_CALM, "WINDOW_UPDATE flood: more window updates than the DATA sent could need");
  if (type == NGHTTP2_WINDOW_UPDATE && n == 4 && nghttp2_session_find_stream(s_, id) != nullptr) {
    uint32_t inc = ((uint32_t{payload[0]} << 24) | (uint32_t{payload[1]} << 16) | (uint32_t{payload[2]} << 8) | payload[3]) & 0x7fffffff;
    int32_t w = nghttp2_session_get_stream_remote_window_size(s_, id);
    if (inc > 0 && w >= 0 && static_cast<uint64_t>(w) + inc > 0x7fffffffu) {  // 6.9.1: a stream error
      reset_by_us_[reset_by_us_at_++ % kClosedRing] = id;
      nghttp2_submit_rst_stream(s_, NGHTTP2_FLAG_NONE, id, NGHTTP2_FLOW_CONTROL_ERROR);
      return 1;
    }
  }
  return 0;
}

size_t Server::send(std::string* out, size_t max) {
  size_t before = out->size();
  while (out->size() - before < max) {
    const uint8_t* p = nullptr;
    nghttp2_ssize n = nghttp2_session_mem_send2(s_, &p);
    if (n <= 0) {
      if (n < 0) fatal_ = true;
      break;
    }
    out->append(reinterpret_cast<const char*>(p), static_cast<size_t>(n));
  }
  return out->size() - before;
}

bool Server::want_write() const { return s_ && nghttp2_session_want_write(s_); }

bool Server::done() const {
  if (!s_) return true;
  if (fatal_) return !nghttp2_session_want_write(s_);
  return !nghttp2_session_want_read(s_) && !nghttp2_session_want_write(s_);
}

size_t Server::open_streams() const {
  return open_;
}

void Server::peer_ended() {
  if (!s_ || fatal_) return;
  for (Stream* st = streams_; st; st = st->next) {
    nghttp2_stream* ns = nghttp2_session_find_stream(s_, st->id);
    int state = ns ? nghttp2_stream_get_state(ns) : NGHTTP2_STREAM_STATE_CLOSED;
    if (state == NGHTTP2_STREAM_STATE_OPEN || state == NGHTTP2_STREAM_STATE_HALF_CLOSED_LOCAL)
      nghttp2_submit_rst_stream(s_, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
  }
}

bool Server::stalled() const {
  if (!s_ || fatal_ || nghttp2_session_want_write(s_)) return false;
  for (const Stream* st = streams_; st; st = st->next)
    if (st->answered && st->out_off < st->out.size()) return true;
  return false;
}

int Server::respond(int32_t stream, uint16_t status, const http1::Field* fields, uint32_t nfields,
                    const uint8_t* body, size_t body_len, int64_t unix_seconds) {
  Stream* st = stream_of(stream);
  if (!st || !st->delivered || st->answered) return kStreamGone;
  if (status < 200 || status > 999) return kBadField;
  // Names lowercased (RFC 9113 8.2.1), values checked: nothing that could break the head.
  size_t need = 3 + http1::DateCache::kLen + 20;
  for (uint32_t i = 0; i < nfields; ++i) {
    const http1::Field& f = fields[i];
    if (f.name_len == 0) return kBadField;
    for (size_t k = 0; k < f.name_len; ++k)
      if (!is_token(static_cast<uint8_t>(f.name[k]))) return kBadField;
    for (size_t k = 0; k < f.value_len; ++k) {
      char c = f.value[k];
      if (c == '\r' || c == '\n' || c == '\0') return kBadField;
    }
    need += f.name_len;
  }
  nv_buf_.resize(need);  // no reallocation below: the pointers into it stay valid
  char* w = nv_buf_.data();
  std::vector<nghttp2_nv> nva;
  nva.reserve(nfields + 3);
  auto nv = [&](const char* n, size_t nl, const char* v, size_t vl) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(n)), reinterpret_cast<uint8_t*>(const_cast<char*>(v)), nl, vl,
                   NGHTTP2_NV_FLAG_NONE});
  };
  char* st_txt = w;
  w[0] = static_cast<char>('0' + status / 100);
  w[1] = static_cast<char>('0' + status / 10 % 10);
  w[2] = static_cast<char>('0' + status % 10);
  w += 3;
  nv(":status", 7, st_txt, 3);
  const char* d = date_.get(unix_seconds);
  nv("date", 4, d, http1::DateCache::kLen);
  bool no_body = http1::status_has_no_body(status);
  if (!no_body && !st->streaming) {  // a streamed answer's length is not known: END_STREAM ends it
    char* cl = w;
    int n = snprintf(cl, 21, "%zu", body_len);
    w += n;
    nv("content-length", 14, cl, static_cast<size_t>(n));
  }
  for (uint32_t i = 0; i < nfields; ++i) {
    const http1::Field& f = fields[i];
    char* nm = w;
    for (size_t k = 0; k < f.name_len; ++k) {
      char c = f.name[k];
      *w++ = (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c;
    }
    // RFC 9113 8.2.1: no whitespace at either end of a value (HTTP/1.1 readers drop it anyway).
    const char* v = f.value;
    size_t vl = f.value_len;
    while (vl && (v[0] == ' ' || v[0] == '\t')) { ++v; --vl; }
    while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t')) --vl;
    nv(nm, f.name_len, v, vl);
  }
  st->answered = true;
  st->stop_body = !st->remote_ended;  // the body is still coming: stop it after the answer
  bool send_body = (!no_body && !st->head_method && body_len > 0) || st->streaming;
  int r;
  if (send_body) {
    if (st->streaming) st->out.clear();
    else st->out.assign(reinterpret_cast<const char*>(body), body_len);
    st->out_off = 0;
    nghttp2_data_provider2 dp{};
    dp.read_callback = read_body;
    r = nghttp2_submit_response2(s_, stream, nva.data(), nva.size(), &dp);
  } else {
    st->complete = true;
    r = nghttp2_submit_response2(s_, stream, nva.data(), nva.size(), nullptr);
  }
  if (r != 0) return r == NGHTTP2_ERR_NOMEM ? kNoMemory : kStreamGone;
  return kOk;
}

int Server::upgrade(const uint8_t* settings, size_t len, bool head_request) {
  auto* st = new (std::nothrow) Stream;
  if (!st) return kNoMemory;
  st->id = 1;
  st->delivered = true;  // the HTTP/1.1 request was the application's already
  st->remote_ended = true;  // upgraded requests have no body
  st->head_method = head_request;
  int r = nghttp2_session_upgrade2(s_, settings, len, head_request ? 1 : 0, st);
  if (r != 0) {
    delete st;
    error_ = "a bad HTTP2-Settings field";
    return kFatal;
  }
  nghttp2_session_set_stream_user_data(s_, 1, st);  // upgrade2 keeps it for clients only
  link(st);
  return kOk;
}

int Server::stream_start(int32_t stream, uint16_t status, const http1::Field* fields, uint32_t nfields,
                         int64_t unix_seconds) {
  Stream* st = stream_of(stream);
  if (!st || !st->delivered || st->answered) return kStreamGone;
  if (http1::status_has_no_body(status) || st->head_method) {
    return respond(stream, status, fields, nfields, nullptr, 0, unix_seconds);  // no body to stream
  }
  st->streaming = true;
  int r = respond(stream, status, fields, nfields, nullptr, 0, unix_seconds);  // head + a deferring provider
  if (r != kOk) st->streaming = false;
  return r;
}

int Server::stream_write(int32_t stream, const uint8_t* data, size_t len) {
  Stream* st = stream_of(stream);
  if (!st || !st->streaming || st->stream_ended) return kStreamGone;
  st->out.append(reinterpret_cast<const char*>(data), len);
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(s_, stream);
  }
  if (st->out.size() - st->out_off < kStreamRoom) return 1;
  st->wants_room = true;
  return 0;
}

int Server::stream_end(int32_t stream) {
  Stream* st = stream_of(stream);
  if (!st || !st->streaming || st->stream_ended) return kStreamGone;
  st->stream_ended = true;
  if (st->deferred) {
    st->deferred = false;
    nghttp2_session_resume_data(s_, stream);
  }
  return kOk;
}

bool Server::room_waiting() const {
  for (Stream* st = streams_; st; st = st->next)
    if (st->wants_room && st->out.size() - st->out_off < kStreamRoom / 2) return true;
  return false;
}

int32_t Server::take_room() {
  for (Stream* st = streams_; st; st = st->next) {
    if (st->wants_room && st->out.size() - st->out_off < kStreamRoom / 2) {
      st->wants_room = false;
      return st->id;
    }
  }
  return 0;
}

void Server::shutdown() {
  if (!s_ || fatal_) return;
  nghttp2_submit_goaway(s_, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s_),
                        NGHTTP2_NO_ERROR, nullptr, 0);
}

void Server::terminate(uint32_t code) {
  if (!s_) return;
  fatal_ = true;
  nghttp2_session_terminate_session(s_, code);
}

}  // namespace zio::http2
