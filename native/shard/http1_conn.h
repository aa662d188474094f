// native/shard/http1_conn.h — an HTTP/1.1 server connection: the adapter between the shard's
// byte stream (plaintext, or TLS plaintext) and the sans-IO parser in proto/http1
// (DESIGN.md section 7: the top of a connection's stack). The shard never knows HTTP beyond
// the calls declared in shard.h's HTTP section; this header holds the state they share.
//
// A parsed request becomes one pool slot (the "request record"), lent to JS for the batch like
// an RX slot. Layout (little-endian u32 words, offsets from the slot's start):
//   w0,w1 method   w2,w3 target   w4,w5 path   w6,w7 query   w8,w9 inline body
//   w10 header count   w11 flags (kReq*)   w12,w13 content-length (int64, -1: none)
//   w14,w15 reserved
//   at 64: the field table, 12 bytes a field: u32 name offset, u32 value offset,
//          u16 name length, u16 value length
//   then the request head as received (copied), then the inline body.
// Heads are copied once (a few hundred bytes): in exchange a head that spans RX slots, a
// pipelined batch and a request kept past its batch all look the same to JS
// (docs/architecture/0015-http1-request-records.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "driver/timer_wheel.h"
#include "proto/compress/compress.h"
#include "proto/http1/http1.h"
#include "proto/http2/http2.h"
#include "shard/overflow.h"

namespace zio {

constexpr uint32_t kHttpRecordHeader = 64;   // fixed words before the field table
constexpr uint32_t kHttpFieldBytes = 12;     // one field table entry
constexpr uint32_t kLingerMs = 2000;  // after our FIN, how long the peer has to close (RFC 9112 9.6)

// Request flags (record word 11, and bits 16.. of the event's kind).
constexpr uint32_t kReqStreamed = 1;   // the body follows as HttpBodyChunk events
constexpr uint32_t kReqKeepAlive = 2;  // the connection stays open after the response
constexpr uint32_t kReqHead = 4;       // HEAD: the response carries no body
constexpr uint32_t kReqHttp10 = 8;     // HTTP/1.0
constexpr uint32_t kReqExpect = 16;    // Expect: 100-continue
constexpr uint32_t kReqUpgrade = 32;   // Connection: upgrade with an Upgrade field (answered as plain HTTP/1.1)

// A listener's HTTP settings (resolved and validated by the TypeScript layer).
struct HttpConfig {
  http1::Limits limits;
  uint32_t body_inline_max = 1024;
  uint32_t request_timeout_ms = 10000;    // a head must be complete this long after its first byte
  uint32_t keepalive_timeout_ms = 5000;   // idle keep-alive connections close after this
  uint32_t pipeline_max = 16;             // requests parsed ahead of their responses
  bool http2 = true;                      // a client preface switches the connection to HTTP/2
  http2::Limits h2;                       // its SETTINGS and defences
  // Response compression (shard/http_encode.cc): answers of a compressible type with a body of
  // at least compress_min bytes, in the first of compress_order the request accepts
  // (compress_n codings; 0: compression off).
  uint32_t compress_min = 128;
  uint8_t compress_order[compress::kCodings - 1] = {compress::kZstd, compress::kBr, compress::kGzip};
  uint8_t compress_n = 3;
};

// A stored answer's encoded bodies (a ZeroResponse template): each coding made once, on the
// first request that takes it, at the stored effort (smallest output), then reused.
struct HttpEncoded {
  std::string body[compress::kCodings];
  uint8_t tried = 0, ok = 0;  // bit(coding): attempted / smaller than identity
};

// Per-listener counters (readable from JS: httpStats).
struct HttpCounters {
  uint64_t requests = 0, responses = 0, status[6] = {0, 0, 0, 0, 0, 0};  // status[1..5]: 1xx..5xx
  uint64_t bytes_in = 0, bytes_out = 0, parse_errors = 0, limit_hits = 0, timeouts = 0;
  uint64_t connections = 0, active = 0, body_chunks = 0, stale_responses = 0;
  uint64_t compressed = 0, compress_saved = 0;  // answers sent encoded, bytes that saved
  // Refusals by the status answered (kRefusalStatus order), and HTTP/2 connections ended with a
  // GOAWAY error code (by code; 0 is not counted, 14.. are in [14]).
  static constexpr uint16_t kRefusalStatus[8] = {400, 408, 413, 414, 417, 431, 501, 505};
  uint64_t refused[8] = {};
  uint64_t goaway[15] = {};
  void count_refusal(uint16_t status) {
    for (uint32_t i = 0; i < 8; ++i)
      if (kRefusalStatus[i] == status) ++refused[i];
  }
};

// What a listener and its connections share (a connection may outlive its listener).
struct WsEndpoint;
struct HttpEndpoint {
  HttpConfig cfg;
  HttpCounters stats;
  std::shared_ptr<WsEndpoint> ws;  // WebSocket upgrades served on this listener (ws_conn.cc)
};

class Shard;
// An HTTP/2 connection's machine and its wiring to the shard (shard/http2_conn.cc): requests
// become the same records and events as HTTP/1.1, with the stream id as the request id.
struct ConnH2 final : http2::Events {
  Shard* shard = nullptr;
  uint32_t index = 0;
  http2::Server sv;
  // The input being fed: where it lies, and whether it is in the pool for this batch (body
  // events point into it) or held (copied into lent slots).
  const uint8_t* feed = nullptr;
  bool pooled = false;
  void on_request(const http2::Head& h) override;
  void on_data(int32_t stream, const uint8_t* data, size_t n, bool end) override;
  void on_reset(int32_t stream, uint32_t code) override;
};

// Why the connection's timer runs.
// Owed: the client ended its side with answers owed; they have requestTimeoutMs to come.
// Stall: HTTP/2 answers wait on flow-control windows the peer keeps closed (a zero-window stall).
enum class HttpWait : uint8_t { None, Head, Idle, Linger, Owed, Stall };

struct ConnHttp {
  std::shared_ptr<HttpEndpoint> ep;
  std::vector<http1::Header> fields;  // parse_head's storage (limits.headers_max entries)
  std::vector<uint8_t> in;            // input not consumed yet (a partial head, or held back)
  http1::BodyDecoder body;
  bool in_body = false;       // a streamed body is being decoded (HttpBodyChunk events)
  bool dead = false;          // an error was answered: further input is discarded
  bool no_more = false;       // a request without keep-alive was read: nothing after it is parsed
  bool close_after = false;   // close once every response is out
  bool rx_paused = false;     // too much input held: the multishot recv is down
  bool pump_more = false;     // parsing stopped for event room or a pool slot
  bool need_lf = false;       // the held input is an incomplete head: reparse once a LF arrives
  bool ending = false;        // our FIN is queued (end): waiting for the peer's
  bool continued = false;     // 100 Continue was sent for the request being read
  bool draining = false;      // shutdown: answers say Connection: close, no new request is read
  // A streamed answer (one open at a time per connection): its request; whether it reached the
  // front of the answer order (its chunks then go straight out); its framing; whether its writer
  // waits for room (a kEvHttpWritable follows once everything it wrote is in the write queue).
  bool stream_on = false, stream_front = false, stream_chunked = true, stream_nobody = false;
  bool stream_wants_room = false;
  uint32_t stream_req = 0;
  std::string stream_held;    // what it wrote while earlier answers were owed
  std::unique_ptr<ConnH2> h2; // HTTP/2 (after the client preface): the rest of this struct's
                              // request bookkeeping is HTTP/1.1's
  size_t need_bytes = 0;      // the held input is a head whose small body is incomplete
  uint32_t body_req = 0;      // the request whose body is being decoded
  uint32_t next_req = 0;      // id of the next parsed request
  uint32_t next_resp = 0;     // id whose response goes out next (responses leave in order)
  std::vector<uint8_t> req_flags;  // kReq* per request in flight, by id % pipeline_max
  std::vector<uint8_t> req_accept; // the codings each accepts (compress::Accept::best), same index
  Overflow out;               // response bytes waiting for write-queue room
  std::vector<std::pair<uint32_t, std::string>> stash;  // answers that came before earlier ones'
  uint32_t timer = TimerWheel::kNone;
  HttpWait wait = HttpWait::None;
  uint64_t deadline_ms = 0;
  uint64_t timer_at = 0;      // the armed wheel timer's deadline
  uint64_t stall_mark = 0;    // HTTP/2 DATA bytes sent when the current stall began
  const char* error = nullptr;  // the last protocol error (static text), for Disconnected
  int32_t error_code = 0;       // kErrHttpProtocol / kErrHttpTimeout with `error`
  uint16_t error_status = 0;    // the status the engine answered it with (0: none was sent)

  bool out_empty() const { return out.empty(); }
  // Every parsed request has been answered and its bytes handed to the write queue.
  bool settled() const { return next_resp == next_req && out_empty() && !in_body; }
};

}  // namespace zio
