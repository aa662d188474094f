// native/shard/ws_conn.h — a WebSocket server connection: the adapter between the shard's byte
// stream (plaintext, or TLS plaintext) and the sans-IO frame machine in proto/ws (DESIGN.md
// section 7: WebSocket sits on HTTP/1.1, which hands the connection over after its 101).
//
// Life: an HTTP/1.1 request with `Upgrade: websocket` on a listener that serves WebSocket
// (endpoint_set_ws) is checked (GET, HTTP/1.1, version 13, a valid key, path, Origin); refused
// with an HTTP status, or (auto) answered 101 at once / (manual) held for ws_accept/ws_reject.
// Once switched, bytes go to the Reader; messages become StreamFrame events (kind WsText /
// WsBinary): a message that arrived whole in one piece of input is delivered where it lies in
// the pool (unmasked in place), a larger or fragmented one is assembled and delivered in a run of
// pool slots (docs/architecture/0018-websocket-connections.md).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "driver/timer_wheel.h"
#include "proto/ws/deflate.h"
#include "proto/ws/ws.h"
#include "shard/overflow.h"

namespace zio {

// What a send does when the connection's send budget is exceeded.
enum class WsSlowPolicy : uint8_t { Drop = 0, Close = 1 };
// Outcome of a send (wsSend / wsPublish per subscriber).
enum : int32_t { kWsDropped = 0, kWsSent = 1, kWsQueued = 2 };

// A listener's WebSocket settings (resolved and validated by the TypeScript layer).
struct WsConfig {
  std::vector<std::string> paths;      // accepted request paths (empty: any)
  std::vector<std::string> origins;    // allowed Origin values (empty: any, or none sent)
  std::vector<std::string> protocols;  // subprotocols, in the server's order of preference
  uint64_t max_message = 1u << 20;     // bytes of one message (1009 beyond)
  uint64_t max_frame = UINT64_MAX;     // bytes of one data frame's payload (1009 beyond)
  uint64_t max_whole = 1u << 20;       // bytes of a message delivered whole (a compressed one in
                                       // pieces mode too): at most a quarter of the pool
  uint32_t idle_timeout_ms = 0;        // no message for this long: close 1001 (0: never)
  uint32_t ping_interval_ms = 30000;   // a ping after this much silence; no answer by the next: 1006
  uint32_t close_timeout_ms = 5000;    // after our close frame, the peer's must come within this
  uint32_t handshake_timeout_ms = 10000;  // a client: the server's 101 must come within this
  uint32_t send_mark = 64 * 1024;      // buffered bytes above which a send reports Queued
  uint32_t send_max = 1024 * 1024;     // buffered bytes a send may not pass (Dropped beyond)
  WsSlowPolicy slow = WsSlowPolicy::Drop;
  uint16_t slow_close_code = 1008;     // the close code of WsSlowPolicy::Close
  bool pieces = false;                 // deliver messages in pieces as they arrive (StreamFrame aux = 1
                                       // on every piece but a message's last), not whole
  bool only = false;                   // a wsListen listener: other requests get 426
  bool manual = false;                 // upgrades wait for ws_accept / ws_reject (WsUpgrade event)
  // permessage-deflate (RFC 7692): offered / accepted when `deflate`; messages of at least
  // deflate_min bytes are compressed; at most deflate_max_conns connections of the listener use it.
  bool deflate = false;
  ws::DeflateConfig dc;
  uint32_t deflate_min = 128;
  uint32_t deflate_max_conns = 10000;
};

// Per-listener counters (readable from JS: wsStats).
struct WsCounters {
  uint64_t upgrades = 0, refused = 0, open = 0, messages_in = 0, messages_out = 0;
  uint64_t bytes_in = 0, bytes_out = 0, dropped = 0, closed_slow = 0, ping_timeouts = 0;
  uint64_t protocol_errors = 0, too_big = 0, published = 0;
  uint64_t deflate_open = 0, compressed_in = 0, compressed_out = 0, compress_saved = 0;
};

struct WsEndpoint {
  WsConfig cfg;
  WsCounters stats;
  // The compressor of connections without server context takeover (one per listener: the
  // context is dropped after every message, so they can share it).
  ws::Deflater shared;
};

class Shard;
struct ConnWs final : ws::Events {
  Shard* shard = nullptr;
  uint32_t index = 0;
  std::shared_ptr<WsEndpoint> ep;
  ws::Reader rd;
  explicit ConnWs(const ws::Limits& l) : rd(l, this) {}
  // Input the reader could not take yet (a cut frame header, or what waits for event room).
  std::vector<uint8_t> in;
  bool rx_paused = false;     // too much input held: the multishot recv is down
  bool pump_more = false;     // reading stopped for event room / a pool slot: flush() resumes
  bool upgraded = false;      // the 101 went out (a held upgrade has not yet)
  bool open_owed = false;     // accepted later (manual): WsOpen goes out from flush()
  bool feed_pooled = false;   // the input being fed lies in the pool for this batch
  bool ready = false, ready_text = false;  // a whole message waits for a pool run
  // The upgrade request's record (a pool slot held until WsOpen is emitted), its flags, the
  // subprotocol chosen (index into the listener's list, -1: none) and the accept key.
  int64_t record = -1;
  uint32_t record_len = 0, record_flags = 0;
  int32_t proto = -1;
  char accept[28] = {};
  // A client (ws_client_start): the accept value the server must answer, the subprotocol it
  // chose, and when its answer is due.
  bool client = false;
  std::string chosen;
  uint64_t hs_deadline = 0;
  // The message being read: one piece seen in place (a pool pointer valid for this batch), or
  // the bytes gathered so far.
  const uint8_t* piece = nullptr;
  size_t piece_len = 0;
  std::string msg;
  bool gathering = false;
  // Pieces mode: the latest piece, held back so that the message's last one can say so.
  const uint8_t* hold_p = nullptr;
  size_t hold_n = 0;
  bool hold_text = false, held = false;
  // Output beyond the write queue's room (a whole message is always taken: see ws_send).
  Overflow out;
  // The close handshake.
  bool close_sent = false, close_recv = false, failed = false, clean = false;
  uint64_t close_at = 0;      // our close frame's answer is due by then
  // The TCP close is decided (ws_end) and waits for the overflow to drain (then a graceful close,
  // or with `linger` our FIN); end_at bounds it.
  bool ending = false, linger = false;
  uint64_t end_at = 0;
  uint16_t code = 0;          // the code Disconnected reports (0: none yet -> 1006)
  std::string reason;         // its reason text
  int32_t origin = 0;         // CloseOrigin of the code
  int32_t sys_err = 0;        // errno when the TCP connection ended without a close frame
  // Liveness: the last input, and whether a ping is unanswered.
  uint64_t last_in_ms = 0, last_msg_ms = 0, ping_at = 0;
  bool ping_out = false;
  uint32_t timer = TimerWheel::kNone;
  uint64_t timer_at = 0;
  std::vector<uint32_t> topics;  // topic ids subscribed (ws_pubsub.cc)
  // permessage-deflate, when agreed: the parameters, the inflater (made on the first compressed
  // message) and, with context takeover on our side, our own deflater.
  bool deflate = false;
  ws::DeflateParams dp;
  std::string ext_answer;  // the 101's Sec-WebSocket-Extensions value (a held upgrade keeps it)
  std::unique_ptr<ws::Inflater> inf;
  std::unique_ptr<ws::Deflater> def;
  // Whether our side keeps its compression context between messages, and whether the peer does.
  bool own_ctx() const { return client ? !dp.client_no_context_takeover : !dp.server_no_context_takeover; }
  bool peer_reset() const { return client ? dp.server_no_context_takeover : dp.client_no_context_takeover; }
  uint8_t own_bits() const { return client ? dp.client_max_window_bits : dp.server_max_window_bits; }
  uint8_t peer_bits() const { return client ? dp.server_max_window_bits : dp.client_max_window_bits; }
  bool out_empty() const { return out.empty(); }
  size_t out_left() const { return out.left(); }

  void on_data(const uint8_t* p, size_t n, bool text) override;
  void on_message_end(bool text) override;
  void on_ping(const uint8_t* p, size_t n) override;
  void on_pong(const uint8_t* p, size_t n) override;
  void on_close(uint16_t code, const uint8_t* reason, size_t n) override;
};

// Close information of a WebSocket connection (valid until its Disconnected batch ends).
struct WsCloseInfo {
  uint16_t code = 0;
  const std::string* reason = nullptr;
  int32_t sys_err = 0;
  bool clean = false;  // both close frames were exchanged
  int32_t origin = 0;
};

}  // namespace zio
