// native/shard/quic_conn.h — QUIC in the shard (DESIGN.md section 7): a UDP endpoint carries
// many QUIC connections, found by the destination connection id of each packet; each one lives
// in the shard's connection table (proto kProtoQuic, no fd of its own) with quiche's machine,
// its timer in the shard's wheel, its packets sent through the endpoint's UDP queue (GSO).
#pragma once
#include <sys/socket.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "driver/timer_wheel.h"
#include "proto/quic/quic.h"
#include "proto/tls/tls.h"

struct quiche_config;
struct quiche_conn;

namespace zio {

struct QuicCounters {
  uint64_t accepted = 0, refused = 0, handshakes_failed = 0, packets_in = 0, packets_out = 0;
  uint64_t dropped = 0, version_negotiations = 0, retries = 0, bad_tokens = 0, unknown_cid = 0;
  uint64_t gso_trains = 0;
  uint64_t paced_waits = 0;    // packets held until quiche's send time (pacing by the wheel)
  uint64_t stateless_resets = 0;  // sent for packets to connection ids we no longer know
};

// How packets keep quiche's send times (send_info.at; only BBRv2 paces in quiche 0.30).
enum class QuicPacing : uint8_t {
  Off,     // sent when made
  Wheel,   // a packet due later waits in the connection for the shard's timer wheel (1 ms)
  Txtime,  // SO_TXTIME: the kernel's fq / etf qdisc releases each send at its time
};

// Connection-id lookups by string_view (no allocation per packet).
struct CidHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

// Stateless resets a listener sends per second at most (answers to unknown ids cost no state,
// but each is a datagram out: a flood of junk must not turn into a flood of resets).
constexpr uint32_t kResetsPerSecond = 1000;

// A QUIC endpoint: a listener (server) or one client connection's socket.
struct QuicEndpoint {
  QuicEndpoint() = default;
  QuicEndpoint(const QuicEndpoint&) = delete;
  QuicEndpoint& operator=(const QuicEndpoint&) = delete;
  std::shared_ptr<quiche_config> cfg_hold;  // owns cfg (shared by clients with the same settings)
  quiche_config* cfg = nullptr;
  quic::Settings settings;
  std::shared_ptr<tls::CertSlot> certs;    // server: the context new handshakes start with
  std::shared_ptr<tls::Context> client;    // client: its context (servername, CAs, ALPN, session)
  std::unordered_map<std::string, uint32_t, CidHash, std::equal_to<>> cids;  // connection id bytes -> connection index
  uint32_t client_conn = UINT32_MAX;       // a client endpoint's connection
  uint32_t connect_timeout_ms = 10000;     // a client: no handshake within this: kErrConnectTimeout
  uint32_t max_handshakes = 1000, handshaking = 0;
  bool retry = false;                      // stateless retry before any state is kept
  bool resets = false;                     // stateless resets for ids we issued and no longer know
  std::string reset_key;                   // their tokens' key (the listener's, or random)
  uint64_t reset_second = 0;               // resets sent in this second (at most kResetsPerSecond)
  uint32_t resets_this_second = 0;
  bool gso = true;                         // packet trains (UDP_SEGMENT) when the kernel has it
  quic::RetryTokens tokens;
  uint16_t slot = 0;                       // cluster slot in our connection ids (ScidGenerator)
  uint32_t conns = 0;                      // a listener's open connections
  QuicPacing pacing = QuicPacing::Wheel;
  std::string pacing_note;                 // why Txtime fell back to Wheel ("" when it did not)
  bool refusing = false;                   // shutdown: no new connections; closes after the last one
  std::vector<uint32_t> tx_waiters;        // connections that found the send queue full
  sockaddr_storage local{};
  socklen_t local_len = 0;
  QuicCounters stats;
};

// A client connect to a host name racing its addresses (RFC 8305): each attempt is a hidden
// connection of its own (own socket, own quiche machine); the first one a server answers
// becomes the connection the application knows (its entry), the others are dropped.
struct QuicRace {
  std::shared_ptr<QuicEndpoint> model;     // settings, quiche configuration, TLS context
  std::vector<sockaddr_storage> addrs;
  size_t next = 0;                         // the next address to try
  uint32_t delay_ms = 250;                 // Connection Attempt Delay
  std::vector<std::pair<uint32_t, uint32_t>> attempts;  // live attempts (index, gen)
  int32_t err = 0;                         // the last attempt's failure
  std::string ticket;                      // a session ticket each attempt starts with
};

// How a QUIC connection ended (valid from its Disconnected until the batch ends).
struct QuicCloseInfo {
  bool known = false, app = false, peer = false, timed_out = false;
  bool reset = false;      // the peer's Stateless Reset ended it (it has no state for it)
  uint64_t code = 0;
  std::string reason;
  std::string tls_reason;  // a failed handshake: why the certificate was refused (ours)
};

// Closed, draining after the peer's CONNECTION_CLOSE, or closing after ours (quiche's own
// decision included).
bool quic_conn_over(quiche_conn* q);

// quiche's C API takes no NULL buffer, even for zero bytes (a FIN alone, a probe for a stream's
// STOP_SENDING code).
inline constexpr uint8_t kQuicNoBytes[1] = {0};

// After the connection is over, how long pulled streams' data waits for streamRead.
constexpr uint64_t kQuicReadAfterCloseMs = 10000;

struct ConnQuic {
  ConnQuic() = default;
  ConnQuic(const ConnQuic&) = delete;
  ConnQuic& operator=(const ConnQuic&) = delete;
  ~ConnQuic();
  quiche_conn* q = nullptr;
  std::shared_ptr<QuicEndpoint> ep;
  uint32_t ep_index = 0, ep_gen = 0;
  std::shared_ptr<tls::Context> tls;       // keeps the SSL_CTX of its SSL alive
  std::vector<std::string> cids;           // the ids it is found by in ep->cids
  uint32_t timer = TimerWheel::kNone;
  uint64_t deadline = UINT64_MAX;
  int64_t paced = -1;                      // a packet (pool slot) waiting for its send time
  size_t paced_len = 0;
  uint64_t paced_at_ns = 0;                // its send time (CLOCK_MONOTONIC)
  sockaddr_storage paced_to{};
  socklen_t paced_to_len = 0;
  uint32_t pace_timer = TimerWheel::kNone;
  bool connected_sent = false;             // Connected emitted
  bool handshaking = true;                 // counted in ep->handshaking
  bool events_more = false;                // events left for lack of event room or pool slots
  bool tx_blocked = false;                 // on ep->tx_waiters
  bool client = false;
  bool want_bidi = false, want_uni = false;  // openStream met the peer's stream limit: tell when it rises
  void* ssl = nullptr;                     // the connection's SSL (quiche owns it): why a handshake failed
  uint64_t next_bidi = 0, next_uni = 0;    // our next stream ids
  uint64_t opened_bidi = 0, opened_uni = 0;  // our streams opened in quiche (highest index written + 1)
  std::vector<uint64_t> want_writable;     // streams told to wait (a Writable each follows)
  std::vector<uint64_t> stop_told;         // streams whose StopSending was emitted
  uint64_t stops_seen = 0;                 // the peer's STOP_SENDING frames accounted for
  std::vector<uint64_t> sending;           // streams we wrote to, not yet known delivered (graceful close)
  size_t sending_prune = 64;               // `sending` is pruned of finished streams past this size
  std::vector<uint64_t> pulled;            // streams read with quic_stream_read (pull mode)
  std::vector<uint64_t> pull_told;         // pulled streams told Readable, not yet read dry
  std::vector<uint64_t> pull_ended;        // pulled streams whose end was read
  std::vector<uint64_t> pull_done;         // ... and told so (-1, or the reset)
  sockaddr_storage old_peer{};             // the address before the last migration
  bool migrated = false;
  uint64_t read_until = 0;                 // over: Disconnected waits (until then) for what is unread
  tls::SessionSink sink;                   // a client: the server's tickets land in `ticket`
  std::string ticket;                      // the newest session ticket (quiche's session format)
  bool ticket_refused = false;             // the one given was malformed (a full handshake)
  bool ticket_set = false;                 // quiche took a ticket
  uint32_t leader = UINT32_MAX, leader_gen = 0;  // an attempt of a racing connect: its entry
  QuicCloseInfo close;
};

}  // namespace zio
