// native/proto/http2/http2.h — the HTTP/2 server machine (RFC 9113) on nghttp2, sans-IO.
//
// Calling shape (STYLE.md 1): recv(bytes) -> events (Events::on_request / on_data / on_reset);
// respond(stream, ...) queues an answer; send(&out) appends the bytes to write. No syscalls, no
// clock (the caller passes the Date seconds), no Node-API: the shard wires it to a connection
// (after ALPN "h2" or the client preface on a cleartext listener).
//
// Defences (each a limit, unit last; the session ends with GOAWAY and the code shown):
//   rapid reset (CVE-2023-44487)           resets_burst / resets_per_sec   ENHANCE_YOUR_CALM
//   CONTINUATION flood (CVE-2024-27316)    8 CONTINUATIONs per head        ENHANCE_YOUR_CALM
//   SETTINGS / PING floods                 32 settings per frame, 1000 queued ACKs   ENHANCE_YOUR_CALM
//   glitches (PRIORITY, WINDOW_UPDATE, ...) nghttp2's glitch rate limit     ENHANCE_YOUR_CALM
//   HPACK bomb, huge heads                 header_list_bytes_max decoded bytes per head -> the
//                                          request is answered 431 (Head::too_large), others go on
//   WINDOW_UPDATE flood                    more than 2 x (DATA frames sent + HEADERS) + 1000
//                                          updates -> ENHANCE_YOUR_CALM
//   too many streams                       max_concurrent_streams (SETTINGS) -> REFUSED_STREAM
//                                          before the client acknowledged our SETTINGS; after,
//                                          nghttp2 ends the connection (PROTOCOL_ERROR: 5.1.2)
//   zero-window stall                      stalled() (answers waiting, no window): the shard's
//                                          requestTimeoutMs timer -> ENHANCE_YOUR_CALM
//   memory                                 memory_bytes_max for everything nghttp2 allocates
//                                          (a bounded allocator: over it, the session fails)
// Borrowed vs owned: everything an Events call receives is valid for that call only.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "proto/http1/response.h"

struct nghttp2_session;

namespace zio::http2 {

struct Limits {
  uint32_t max_concurrent_streams = 100;
  uint32_t initial_window = 65535;
  uint32_t max_frame_size = 16384;
  uint32_t header_list_bytes_max = 16384;  // RFC 9113 6.5.2: name + value + 32 per field
  uint32_t header_count_max = 100;
  uint64_t body_bytes_max = 16u << 20;
  uint32_t resets_burst = 1000, resets_per_sec = 33;
  size_t memory_bytes_max = 4u << 20;
};

// A request head, when its HEADERS (and CONTINUATIONs) ended. Borrowed for the call.
struct Head {
  int32_t stream = 0;
  std::string_view method, path, authority, scheme;
  const std::pair<std::string_view, std::string_view>* fields = nullptr;
  uint32_t field_count = 0;
  bool end_stream = false;       // no body follows
  int64_t content_length = -1;   // -1: none declared
  bool too_large = false;        // over header_list_bytes_max / header_count_max: the caller must
                                 // answer 431 and not hand it on (its fields are not all here)
};

class Events {
 public:
  virtual ~Events() = default;
  virtual void on_request(const Head& h) = 0;
  // Body bytes of `stream` (n may be 0 on the end). `end`: END_STREAM, the body is complete.
  virtual void on_data(int32_t stream, const uint8_t* data, size_t n, bool end) = 0;
  // The stream ended before its answer was complete (the peer reset it, or we did): its answer
  // is no longer wanted. `code` is the HTTP/2 error code.
  virtual void on_reset(int32_t stream, uint32_t code) = 0;
};

enum : int {
  kOk = 0,
  kFatal = -1,       // the session is over: send() the GOAWAY, then close the connection
  kStreamGone = -2,  // respond(): no such open stream (answered, reset, or never opened)
  kBadField = -3,    // respond(): a field name or value that would break the head
  kNoMemory = -4,
};

constexpr uint32_t kEnhanceYourCalm = 0xb;  // the GOAWAY code of the defences (RFC 9113 section 7)

class Server {
 public:
  Server() = default;
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Sends our SETTINGS (queued for send()). 0, or kNoMemory / kFatal with *err.
  int init(const Limits& limits, Events* events, std::string* err);
  // Bytes from the peer (the client preface first) at `now_ms` (for the reset rate). kOk or
  // kFatal (a GOAWAY is queued).
  int recv(const uint8_t* data, size_t len, uint64_t now_ms);
  // Appends what is ready to go out to *out, at most `max` bytes (more stays queued: call again).
  // Returns the bytes appended.
  size_t send(std::string* out, size_t max = 256 * 1024);
  bool want_write() const;
  // Neither side will send more (after a GOAWAY both ways, or a fatal error): close.
  bool done() const;
  // Answers `stream`: ":status", `fields` (names lowercased as HTTP/2 requires), "date",
  // "content-length", then `body` (copied; sent as flow control allows). HEAD: no body frames.
  int respond(int32_t stream, uint16_t status, const http1::Field* fields, uint32_t nfields,
              const uint8_t* body, size_t body_len, int64_t unix_seconds);
  // A streamed answer: the head now, the body in pieces (DATA as flow control allows; the
  // data provider defers while nothing is buffered). write: 1 when there is room for more
  // (less than kStreamRoom buffered), 0 when the writer should wait (take_room() says when).
  static constexpr size_t kStreamRoom = 256 * 1024;
  int stream_start(int32_t stream, uint16_t status, const http1::Field* fields, uint32_t nfields,
                   int64_t unix_seconds);
  int stream_write(int32_t stream, const uint8_t* data, size_t len);
  int stream_end(int32_t stream);
  // A stream whose writer waited and now has room (its buffer drained below half), or 0.
  int32_t take_room();
  bool room_waiting() const;  // whether take_room() would find one
  // HTTP/1.1 `Upgrade: h2c` (RFC 7540 3.2): the request that asked becomes stream 1, half-closed
  // (its answer goes out as HTTP/2); `settings` is the decoded HTTP2-Settings field. kOk or kFatal.
  int upgrade(const uint8_t* settings, size_t len, bool head_request);
  // Graceful shutdown (RFC 9113 6.8): GOAWAY with the last stream we took; streams in flight
  // finish. Then done() once they have.
  void shutdown();
  // Ends the session now with GOAWAY(code).
  void terminate(uint32_t code);
  size_t open_streams() const;
  // The peer ended its side of the connection (TCP FIN): streams whose request it had not
  // finished can never finish; each is reset (CANCEL), so its on_reset follows.
  void peer_ended();
  // Answer bytes are waiting and nothing can go out: the peer's flow-control windows (the
  // connection's or the streams') are closed. body_sent() counts DATA payload bytes sent.
  bool stalled() const;
  uint64_t body_sent() const { return body_sent_; }
  bool peer_goaway() const { return peer_goaway_; }  // the client sent GOAWAY (it is leaving)
  // A byte the caller keeps with an open stream (the shard: the codings its answer may use);
  // tag() is -1 when the stream is not open.
  void set_tag(int32_t stream, uint8_t v);
  int tag(int32_t stream);
  nghttp2_session* session() { return s_; }
  // Why the session failed (static text; "" when it did not), and the GOAWAY code we sent.
  const char* error() const { return error_; }
  uint32_t goaway_code() const { return goaway_code_; }
  size_t memory_bytes() const { return mem_used_; }

  // ---- nghttp2 callbacks (internal) ----
  struct Stream;
  Stream* stream_of(int32_t id);
  Limits limits_;
  Events* events_ = nullptr;
  const char* error_ = "";
  uint32_t goaway_code_ = 0;
  size_t mem_used_ = 0;
  uint64_t body_sent_ = 0;
  bool peer_goaway_ = false;
  // The WINDOW_UPDATE flood defence: updates received vs DATA frames sent (check_frame).
  static constexpr uint64_t kWindowUpdateSlack = 1000;
  uint64_t window_updates_ = 0, data_frames_sent_ = 0, headers_seen_ = 0;
  size_t open_ = 0;  // streams with a request head begun and not closed
  Stream* streams_ = nullptr;
  void link(Stream* st);
  void unlink(Stream* st);
  // Recently closed streams (RFC 9113 5.1: a frame on a closed stream is STREAM_CLOSED, but one
  // still in flight after our own RST_STREAM is ignored, 5.4.2). Rings of the last 256 ids.
  static constexpr uint32_t kClosedRing = 256;
  int32_t closed_[kClosedRing] = {}, reset_by_us_[kClosedRing] = {}, reset_by_peer_[kClosedRing] = {};
  uint32_t closed_at_ = 0, reset_by_us_at_ = 0, reset_by_peer_at_ = 0;
  static bool in_ring(const int32_t* r, int32_t id) {
    for (uint32_t i = 0; i < kClosedRing; ++i) if (r[i] == id) return true;
    return false;
  }
  // Rapid reset (CVE-2023-44487): a token bucket of the peer's RST_STREAMs on streams it opened
  // (resets_burst tokens, resets_per_sec back each second); empty: GOAWAY ENHANCE_YOUR_CALM.
  double reset_tokens_ = 0;
  uint64_t reset_at_ms_ = 0, now_ms_ = 0;
  void reset_received();
  // The frame scanner (recv): where the input stands between frames.
  struct Scan {
    size_t preface_left = 24;  // the client magic, nghttp2's to check
    size_t payload_left = 0;   // of the current frame, already looked at
    uint8_t head[16] = {};     // a frame header (and a short payload) being gathered
    uint8_t have = 0, need = 9;
  } scan_;
  int feed(const uint8_t* data, size_t len);  // nghttp2_session_mem_recv2: kOk / kFatal
  // 0: feed the frame; 1: it was answered (RST_STREAM) and is dropped; -1: connection error.
  int check_frame(uint8_t type, int32_t id, const uint8_t* payload, size_t n);
  std::vector<std::pair<std::string_view, std::string_view>> scratch_fields_;

 private:
  nghttp2_session* s_ = nullptr;
  http1::DateCache date_;
  std::string nv_buf_;
  bool fatal_ = false;
};

}  // namespace zio::http2
