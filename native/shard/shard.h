// native/shard/shard.h — one shard: connection table, tick, completion dispatch, event ring.
//
// A shard is single-threaded: every method must be called from the thread that created it.
// Calling shape (STYLE.md 1): tick(timeout) = recycle borrowed RX slots -> flush TX -> submit and
// wait -> drain completions into events -> fire timers. Events and their payloads are BORROWED
// by the caller until the next tick(): the RX slots they point at return to the kernel then.
//
// Connection and endpoint ids are (generation, index) pairs. A stale id (its generation moved on
// after close) is refused with kErrStaleId and never reaches another connection's state.
#pragma once
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "driver/timer_wheel.h"
#include "driver/driver.h"
#include "shard/handle.h"
#include "pool/pool.h"
#include "proto/tls/tls.h"
#include "proto/http1/response.h"
#include "shard/http1_conn.h"
#include "shard/ws_conn.h"
#include "shard/quic_conn.h"

#include <unordered_map>

namespace zio {

// ---- configuration (resolved and validated by the TypeScript layer, checked again here) ----
struct ShardConfig {
  uint32_t pool_slot_count = 4096;
  uint32_t pool_slot_size = 2048;
  HugePages huge_pages = HugePages::Auto;
  uint32_t max_connections = 1024;
  uint32_t max_events_per_poll = 256;
  uint32_t pool_pressure_pct = 80;
  uint32_t max_write_queue_bytes = 256 * 1024;  // per connection (WriteBufferPool limit)
  uint32_t max_endpoints = 64;
  uint32_t sq_entries = 1024;
  uint32_t handle_queue = 4096;  // IoHandle commands queued from other threads
  uint32_t gro_buffers = 8;      // UDP GRO receive buffers (a power of two; 0: no GRO)
  bool defer_taskrun = true;
  bool no_delay = true;
  Backend backend = Backend::Auto;  // Auto: io_uring when the kernel offers it, else epoll
};

// ---- the event ring shared with JS (Uint32Array/Int32Array over the same memory) ----
enum EventType : int32_t {
  kEvConnected = 1,     // conn, aux = endpoint index (-1 outbound), off = endpoint gen, kind = protocol
  kEvDisconnected = 2,  // conn, code = errno (0: clean close), aux = origin, off = 1 when the
                        // connection never opened (a failed connect)
  kEvStreamFrame = 3,   // conn, kind = MessageKind, off/len into the pool
  kEvWritable = 4,      // conn: the write queue drained after a partial streamWrite
  kEvHandleRejected = 6,  // conn index/gen: an IoHandle command could not be carried out;
                          // kind = HandleOp, len = payload bytes dropped, code = kErr* / -errno
  kEvPoolPressure = 7,  // code = new Pressure state, aux = previous state, len = utilization %,
                        // kind = the leading pool (PressurePool)
  kEvUdpRecv = 5,       // endpoint index/gen, off/len = payload, code = kUdpTruncated flag,
                        // aux = bytes from the sender's sockaddr (in the same slot) to the payload
  kEvTlsReady = 8,      // conn: a STARTTLS upgrade finished its handshake
  kEvPeerEnded = 9,     // conn, kind = protocol: the peer's FIN, after every byte it sent was
                        // delivered. Without half-open the connection closes once the
                        // application's answer is written (see flush()).
  kEvHttpRequest = 10,  // conn, kind = method | version minor << 8 | kReq* flags << 16, off/len =
                        // the request record (a pool slot: http1_conn.h), code = request id,
                        // aux = inline body bytes
  kEvHttpBody = 11,     // conn, kind = 1 on the body's last piece, off/len = body bytes in the
                        // pool, code = request id
  kEvHttpWritable = 12, // conn, code = request id: a streamed answer that was told to wait has
                        // room again (everything it wrote is in the write queue)
  kEvHttpReset = 13,    // conn, code = HTTP/2 error code, aux = request id (the stream): the
                        // client reset the stream before its answer was complete
  kEvWsOpen = 14,       // conn, kind = the subprotocol chosen (index into the listener's list, -1:
                        // none), off/len = the upgrade request's record (as kEvHttpRequest's),
                        // code = request flags: the connection speaks WebSocket now (101 sent)
  kEvWsUpgrade = 15,    // the same fields: an upgrade waits for ws_accept / ws_reject (manual)
  // QUIC (quic_conn.cc). Its StreamFrames are kEvStreamFrame with code = the stream id and aux
  // bit kQuicFin on the stream's last piece; its Writable is kEvWritable with code = the stream.
  kEvQuicDatagram = 16,   // conn, off/len = the datagram (RFC 9221) in the pool
  kEvQuicStreamReset = 17,  // conn, code = the peer's error code (low 31 bits), aux = stream id
  kEvQuicStopSending = 18,  // the same: the peer asked us to stop sending on the stream
  kEvQuicReadable = 19,     // conn, aux = stream: a pulled stream has data (or its end) to read
  kEvPathMigration = 20,    // conn: the peer moved to a new address (quic_migration tells both)
};
// Connected.code bit: the connection is TLS (emitted once its handshake finished).
constexpr int32_t kConnectedTls = 1;
enum Protocol : int32_t { kProtoTcp = 1, kProtoUds = 2, kProtoUdp = 3, kProtoQuic = 4 };
constexpr int32_t kQuicFin = 2;  // StreamFrame.aux: the stream's FIN came with this piece
constexpr int32_t kUdpTruncated = 1;  // the datagram was longer than the slot could hold
enum MessageKind : int32_t { kKindBinary = 0, kKindWsText = 1, kKindWsBinary = 2 };
enum CloseOrigin : int32_t { kOriginLocal = 0, kOriginPeer = 1, kOriginError = 2, kOriginTimeout = 3 };

struct EventRec {
  int32_t type, index, gen, kind;
  uint32_t off, len;
  int32_t code, aux;
};
static_assert(sizeof(EventRec) == 32, "the JS side reads 8 x 32-bit fields per event");

// Error codes returned by the hot-path calls (never thrown from native code).
enum : int32_t {
  kErrStaleId = -1000,     // the id is closed or was never opened
  kErrClosing = -1001,     // close()/closeGraceful() already called on it
  kErrTableFull = -1002,   // maxConnections / maxEndpoints reached
  kErrNotConnected = -1003,
  kErrQueueFull = -1004,   // a bounded queue (UDP send queue) is full
  kErrPoolExhausted = -1005,  // no free pool slot for the payload
  kErrWrongKind = -1006,   // e.g. a UDP call on a TCP listener
  kErrTlsHandshake = -1010,  // Disconnected.code: the TLS handshake failed (conn_tls_error says why)
  kErrTlsProtocol = -1011,   // Disconnected.code: a TLS error after the handshake
  kErrTlsTimeout = -1012,    // Disconnected.code: the handshake did not finish in time
  kErrTlsState = -1013,      // a TLS upgrade on a connection that has TLS already, or is not open
  kErrConnectTimeout = -1014,  // Disconnected.code: no connection within connectTimeoutMs
  kErrHttpProtocol = -1020,  // Disconnected.code: the peer broke HTTP (conn_http_error says how);
                             // the error status was answered before the close
  kErrHttpTimeout = -1021,   // Disconnected.code: a request head did not arrive within requestTimeoutMs
  kErrNotHttp = -1022,       // an HTTP call on a connection that is not HTTP
  kErrNotWs = -1023,         // a WebSocket call on a connection that is not (yet) a WebSocket
  kErrWsHandshake = -1024,   // Disconnected.code: a client's opening handshake failed (ws_close_info says why)
  kErrNotQuic = -1030,       // a QUIC call on a connection that is not QUIC
  kErrQuicStreamState = -1031,  // the stream is not open for this (finished, reset, wrong direction)
  kErrQuicStreamLimit = -1032,  // the peer's stream limit (MAX_STREAMS) is reached
  kErrQuicStreamStopped = -1033,  // the peer sent STOP_SENDING on the stream
  kErrQuicNotReady = -1034,     // the handshake has not finished (and 0-RTT is not on)
  kErrQuicDatagram = -1035,     // datagrams not negotiated, or the datagram is too large
  kErrQuicTls = -1036,          // the TLS configuration was refused (quic_connect / quic_listen)
  kErrQuicStreamReset = -1037,  // a pulled stream was reset by the peer (quic_stream_read)
  kErrQuicNotPulled = -1038,    // quic_stream_read on a stream that is not marked pulled
  kErrQuicTicket = -1039,       // a session ticket refused: malformed, or too late (packets sent)
};

// A queued TX range. `shared`: a SendBuffer slot queued by reference (refcounted fan-out): it
// took no pool slot, so it is not counted against the bulk-TX budget and never coalesced into.
struct TxChunk {
  uint32_t slot;
  uint32_t off : 31;
  uint32_t shared : 1;
  uint32_t len;
};

// The backpressure cascade (SPEC.md "Backpressure"). Utilization is the highest of the pools'
// use against their budgets; states change with hysteresis (enter at a threshold, leave 10
// points below it). Drop policy: Warning reports only; Critical caps bulk TX at its budget
// (25% of slots): writes beyond it are accepted partially / refused (Writable follows), UDP sends
// throw PoolExhausted; Drain keeps that cap and closes new connections at accept.
enum Pressure : int32_t { kHealthy = 0, kWarning = 1, kCritical = 2, kDrain = 3 };
enum PressurePool : int32_t { kPpFillRing = 0, kPpTxRing = 1, kPpPerConn = 2, kPpFreeStack = 3 };
struct PressureInfo {
  int32_t state = kHealthy;
  uint32_t pct = 0;             // utilization: max of pool_pct
  int32_t leader = kPpFillRing;
  uint32_t pool_pct[4] = {0, 0, 0, 0};
  uint32_t enter[4] = {0, 0, 0, 0};  // per state (enter[kHealthy] unused)
  uint32_t budget_rx = 0, budget_tx_critical = 0, budget_tx_bulk = 0, budget_scratch = 0;
  uint64_t transitions = 0, writes_capped = 0, accepts_refused = 0;
  uint64_t since_ms = 0;  // when the state last changed (the dwell before stepping down)
};
// A state is left downwards no sooner than this after it was entered.
constexpr uint64_t kPressureDwellMs = 250;
// Beyond the bulk-TX budget each connection may still hold this many TX slots (its fair share
// is the budget over the connections holding TX slots, never less than this).
constexpr uint32_t kTxMinShareSlots = 4;

// The fields of the kernel's TCP_INFO we report (tcp_info.cc reads them with <linux/tcp.h>,
// whose struct is newer than glibc's and cannot share a translation unit with it).
struct TcpStats {
  uint32_t rtt_us = 0, rttvar_us = 0, min_rtt_us = 0, cwnd = 0, ssthresh = 0, mss = 0;
  uint32_t retransmits = 0, lost = 0, unacked = 0;
  uint64_t bytes_sent = 0, bytes_retrans = 0, bytes_acked = 0, bytes_received = 0;
  uint64_t delivery_rate = 0, bytes_in = 0, bytes_out = 0;
};
int read_tcp_info(int fd, TcpStats* out);  // 0 or -errno

constexpr uint16_t kBufGroup = 0;  // the RX provided-buffer group (pool slots)
constexpr uint16_t kGroBufGroup = 1;  // UDP GRO buffers (after the slots, in the same mapping)
constexpr uint32_t kGroBufSize = 68 * 1024;  // a 64 KiB train + recvmsg header, name, cmsg
constexpr uint16_t kLoanGro = 0x8000;  // loaned_ entries: a GRO buffer id (RX bids are < 32768)
// kTimerAcceptRetry re-arms an endpoint's multishot op (accept, or UDP recvmsg) after an error.
enum TimerKind : uint16_t { kTimerHeNext = 1, kTimerGraceful = 2, kTimerAcceptRetry = 3,
                            kTimerTlsHandshake = 4, kTimerPressure = 5, kTimerConnect = 6,
                            kTimerHttp = 7, kTimerWs = 8, kTimerQuic = 9, kTimerQuicPace = 10 };

// kTLS (kernel TLS) state of a TLS connection (shard/ktls.cc).
enum class Ktls : uint8_t { Off, Wanted, Active };

class Shard;
// A TLS connection's machine and its wiring: ciphertext from the machine goes to the
// connection's write queue through put() (shard/tls_conn.cc).
// Ciphertext kept while plaintext waits for event room or pool slots is bounded: above two
// full records the connection's multishot recv is cancelled (the peer meets TCP flow control),
// at one or less it is re-armed. A peer streaming tiny records cannot grow the buffer.
constexpr size_t kTlsRxCap = 2 * (16384 + 325);
constexpr size_t kTlsRxResume = 16384 + 325;

struct ConnTls final : tls::Sink {
  Shard* shard = nullptr;
  uint32_t index = 0;
  tls::Session s;
  bool announce = true;     // handshake done -> Connected (true) or TlsReady (a STARTTLS upgrade)
  bool event_owed = false;  // the handshake finished but the event ring was full
  bool recv_cancel = false; // kTLS set-up cancelled the multishot recv
  bool rx_paused = false;   // too much ciphertext waits for event room / pool slots: recv is off
  bool rx_dead = false;     // the peer's FIN came with an incomplete record: nothing more to read
  bool pump_more = false;   // the last pump stopped for event room or a pool slot, not for input
  uint8_t ktls_tries = 0;   // kTLS set-ups abandoned because the connection did not stay quiet
  uint8_t ktls_warnings = 0;  // warning alerts skipped under kTLS (more than 4 fail it)
  Ktls ktls = Ktls::Off;
  std::string ktls_why;     // why kTLS is not active
  size_t put(const uint8_t* data, size_t len) override;
};

constexpr uint32_t kIovMax = 16;
constexpr uint32_t kHeMax = 8;

// Closed: Disconnected was emitted in the current batch; the id stays valid (writes are
// refused with kErrClosing) until the batch ends, then the generation moves on.
enum class ConnState : uint8_t { Free, Resolving, Connecting, Open, Closing, Closed };

struct Conn {
  int fd = -1;
  uint32_t gen = 1;
  ConnState state = ConnState::Free;
  int32_t proto = kProtoTcp;
  int32_t endpoint = -1;
  uint32_t endpoint_gen = 0;      // the listener's generation when it accepted this connection
  uint32_t inflight = 0;          // SQEs whose final CQE has not arrived
  bool recv_armed = false, send_inflight = false, peer_eof = false, want_writable = false;
  bool graceful = false, need_rearm = false, parked = false, dirty = false, cancel_sent = false;
  bool final_pending = false;     // close done, Disconnected not yet emitted (event ring full)
  bool pool_waiting = false;      // on pool_waiters_
  bool opened = false;            // reached Open (Disconnected.off = 1: it never did)
  bool half_open = false;         // allowHalfOpen: the peer's FIN does not close; the app does
  bool eof_owed = false;          // the peer's FIN came; PeerEnded not emitted yet
  bool user_paused = false;       // pauseRecv(): the multishot recv stays down until resumeRecv()
  bool end_pending = false;       // end(): FIN (TLS: close_notify first) once the queue drained
  bool write_closed = false;      // end() done: our FIN is out; the peer's ends the connection
  int32_t graceful_origin = kOriginLocal;  // origin reported when a graceful close completes
  uint32_t app_epoch = 0;         // epoch_ when PeerEnded / Writable last went to the app
  int32_t close_err = 0, close_origin = kOriginLocal;
  int32_t drain_err = 0, drain_origin = kOriginLocal;  // a graceful close's cause (TLS failure)
  std::unique_ptr<ConnTls> tls;   // TLS connections (and STARTTLS after the upgrade)
  std::unique_ptr<ConnHttp> http; // HTTP/1.1 server connections (the top of the stack)
  std::unique_ptr<ConnWs> ws;     // WebSocket (after an upgrade; HTTP's state goes at the 101)
  std::unique_ptr<ConnQuic> quic; // QUIC (proto kProtoQuic: no fd, packets on its endpoint)
  std::unique_ptr<QuicRace> quic_race;  // a QUIC connect racing a host name's addresses
  uint32_t tls_timeout_ms = 0;
  uint32_t timer = TimerWheel::kNone;
  uint32_t connect_timer = TimerWheel::kNone;  // connectTimeoutMs: resolution + every attempt
  uint32_t next_free = 0;
  // TX: a ring of chunks into pool slots (WriteBufferPool); bounded by max_write_queue_bytes.
  uint32_t tx_head = 0, tx_count = 0, tx_inflight_chunks = 0;
  uint32_t tx_slots = 0;          // pool slots of its own in the queue (not SendBuffer refs)
  uint64_t tx_bytes = 0;
  uint64_t bytes_in = 0, bytes_out = 0;
  msghdr msg{};
  iovec iov[kIovMax];
  // Connect: the target (UDS) or Happy Eyeballs candidates (TCP, RFC 8305).
  sockaddr_storage addr{};
  socklen_t addr_len = 0;
  uint8_t he_count = 0, he_next = 0, he_pending = 0;
  int32_t he_err = 0;
  int he_fd[kHeMax];
  sockaddr_in6 he_addr[kHeMax];   // sockaddr_in fits in the same storage
  uint64_t he_delay_ms = 250;
};

// One queued datagram: its payload slots stay referenced until the send completes.
struct UdpTx {
  uint32_t nslots = 0;
  bool shared = false;  // a SendBuffer slot by reference: not counted against the bulk-TX budget
  uint32_t slots[kIovMax];
  uint32_t next_free = 0;
  sockaddr_in6 to{};  // sockaddr_in fits in the same storage
  msghdr msg{};
  iovec iov[kIovMax];
  alignas(cmsghdr) char cmsg[CMSG_SPACE(sizeof(uint16_t)) + CMSG_SPACE(sizeof(uint64_t))];
};

struct UdpOptions {
  bool reuse_addr = false, reuse_port = false, broadcast = false;
  int ipv6_only = -1;          // -1: leave the default (dual stack on "::")
  int rcvbuf = 0, sndbuf = 0;  // 0: system default
  int ttl = -1, multicast_ttl = -1, multicast_loop = -1;
  uint32_t multicast_if = 0;   // interface index for outgoing multicast (0: by route)
  uint32_t send_queue = 1024;  // datagrams queued or in flight
  bool gro = false;            // UDP_GRO: coalesced trains into the GRO buffers
};

enum class EpKind : uint8_t { Listener, Udp };

struct Endpoint {
  int fd = -1;
  uint32_t gen = 1;
  EpKind kind = EpKind::Listener;
  bool open = false, closing = false, accept_armed = false;
  bool half_open = false;  // accepted connections start with Conn::half_open set
  bool recv_armed = false, parked = false, gro = false;  // UDP
  uint32_t inflight = 0;
  int32_t proto = kProtoTcp;
  int family = 0;
  uint32_t timer = TimerWheel::kNone;
  std::string path;  // UDS: unlinked on close, like node:net
  std::shared_ptr<tls::CertSlot> tls;  // a TLS listener: the context new handshakes start with
  std::shared_ptr<HttpEndpoint> http;  // an HTTP listener: its connections parse HTTP/1.1
  std::shared_ptr<QuicEndpoint> quic;  // a UDP endpoint that speaks QUIC (no UdpRecv events)
  uint32_t tls_timeout_ms = 10000;
  uint64_t accepted = 0, rejected = 0, accept_errors = 0;
  // UDP: the multishot recvmsg template (name + control sizes) and the send queue.
  msghdr rx_msg{};
  std::vector<UdpTx> udp_tx;
  uint32_t udp_free = 0, udp_queued = 0;
  uint64_t rx_datagrams = 0, rx_truncated = 0, tx_datagrams = 0, tx_errors = 0;
  int32_t tx_last_errno = 0;
};

// The seven pools of the backpressure model. The free stack's gauge is kept by the pool itself
// (SlotPool::free_stack); the others are kept here.
struct GaugeSet {
  PoolGauge fill_ring, rx_ring, tx_ring, completion_ring, scratch_pool, per_conn;
};

struct ShardCounters {
  uint64_t rx_enobufs = 0, rx_rearm = 0, rx_bytes = 0, tx_bytes = 0, tx_short = 0;
  uint64_t tx_partial_accepts = 0, stale_cqes = 0, events_deferred = 0, conns_accepted = 0;
  uint64_t conns_rejected = 0, conns_connected = 0, conns_closed = 0, timers_fired = 0;
  uint64_t handle_cmds = 0, handle_rejected = 0, slots_detached = 0;
  uint64_t udp_rx = 0, udp_rx_truncated = 0, udp_tx = 0, udp_tx_errors = 0, udp_tx_refused = 0;
  uint64_t udp_rx_gro_trains = 0, udp_rx_gro_segments = 0;
  uint64_t tls_handshakes = 0, tls_failed = 0, tls_timeouts = 0, ktls_active = 0, tls_rx_paused = 0;
  uint64_t tls_rx_peak = 0;  // the most ciphertext one connection had buffered (bytes)
};

// Connect completions carry kOpConnectBase + the Happy Eyeballs attempt index (RFC 8305).
constexpr uint8_t kOpConnectBase = 16;
// An outbound TCP connection's peer address is its Happy Eyeballs candidate `a` (connect.cc).
void keep_target(Conn& c, uint32_t a);
// The address length of a Unix socket path (endpoint.cc): exact for abstract names.
socklen_t uds_len(const sockaddr_un& su, size_t path_len);

// Socket set-up shared by shards and by reuseport groups (shard/reuseport.cc). Each returns
// the fd, or -errno with *err_op naming the failing call (the socket is closed on failure).
int listen_socket(const sockaddr* sa, socklen_t len, int backlog, bool reuse_port,
                  const char** err_op);                       // TCP (SO_REUSEADDR) or UDS
int udp_socket(int family, const UdpOptions& o, const char** err_op);  // options set, not bound

// What the kernel offers for UDP (probed once per shard).
struct UdpProbe { bool gso = false, gro = false; };
void probe_udp(UdpProbe* out);

class Shard {
 public:
  Shard() = default;
  ~Shard();
  // 0 on success; on failure fills *err_kind ("KernelTooOld", "NotSupportedOnBackend", ...)
  // and *err (an actionable message).
  // Every failure leaves the shard safe to destroy (nothing half-set-up is touched); the steps
  // can be failed one by one with ZERO_IO_FAULT_INIT=<pool|ring|bufring|eventfd|handle|tables>.
  int init(const ShardConfig& cfg, std::string* err_kind, std::string* err);

  // One tick. timeout_ms < 0 waits until a completion; 0 never blocks. Returns the number of
  // events written to the event ring (<= max_events_per_poll), or -errno on a ring failure.
  int tick(int64_t timeout_ms);
  // Prepares SQEs for queued writes / pending closes and submits them (no wait). Events
  // (Writable, Disconnected) are only emitted when allow_events: i.e. inside tick().
  void flush(bool allow_events);
  // The JS batch is over: borrowed RX slots go back to the kernel, queued writes go out.
  void end_batch();
  // True when a tick now would produce events (CQEs ready, or an owed event).
  bool has_pending_work();
  // Called by the libuv driver: keep one kernel timeout armed for the next timer deadline.
  void set_timer_op_mode(bool on) { timer_op_mode_ = on; }

  // ---- endpoints ----
  // Returns endpoint index >= 0 or -errno; *err_op names the failing syscall.
  int64_t tcp_listen(const sockaddr* sa, socklen_t len, int backlog, bool reuse_port,
                     const char** err_op);
  int64_t uds_listen(const std::string& path, int backlog, const char** err_op);
  // Takes over a listening socket made elsewhere (an IoCluster reuseport group): the shard owns
  // it from now on. Endpoint index or -errno (-EINVAL: not a listening socket).
  int64_t adopt_listener(int fd, int32_t proto);
  int endpoint_close(uint32_t index, uint32_t gen);
  uint32_t endpoint_gen(uint32_t index) const { return endpoints_[index].gen; }
  int endpoint_local(uint32_t index, uint32_t gen, sockaddr_storage* out, socklen_t* len);

  // ---- UDP (udp.cc) ----
  int64_t udp_bind(const sockaddr* sa, socklen_t len, const UdpOptions& opt, const char** err_op);
  // Takes over a bound UDP socket (an IoCluster reuseport group member). Index or -errno.
  int64_t udp_adopt(int fd, const UdpOptions& opt);
  // Queues one datagram (copied into pool slots; `gso` > 0 asks the kernel to cut it into
  // segments of that size: UDP GSO). 0, or kErrQueueFull / kErrPoolExhausted / kErr* / -errno.
  int udp_send(uint32_t ep, uint32_t gen, const sockaddr* to, socklen_t tolen, const uint8_t* data,
               size_t len, uint16_t gso);
  // Largest datagram udp_send takes: the write path gathers at most kIovMax slots.
  size_t udp_max_datagram() const;
  // Largest datagram (or GRO train) an endpoint receives whole: its RX buffer less the recvmsg
  // header, name and control space.
  size_t udp_max_receive(const Endpoint& e) const;
  // join/leave a group (source == nullptr: any-source, RFC 1112; else source-specific,
  // RFC 4607) on interface `ifindex` (0: chosen by route). 0 or -errno / kErr*.
  int udp_multicast(uint32_t ep, uint32_t gen, bool join, const sockaddr_storage& group,
                    const sockaddr_storage* source, uint32_t ifindex, const char** err_op);
  const Endpoint* endpoint(uint32_t index, uint32_t gen) const;
  const UdpProbe& udp_probe() const { return udp_probe_; }
  // Whether udp endpoints may ask for GRO (the kernel has UDP_GRO and GRO buffers exist).
  bool gro_available() const { return udp_probe_.gro && gro_count_ > 0; }
  const PressureInfo& pressure() const { return pressure_; }

  // ---- cross-thread commands (IoHandle) ----
  std::shared_ptr<HandleQueue> handle_queue() { return handle_q_; }
  // Keeps `n` free-stack slots in the handle queue's reservoir for IoHandle.sendBuffer (0: off;
  // a lower target gives the surplus back). Fills it now, as far as the pool allows.
  void set_handle_reservoir(uint32_t n);

  // ---- connections ----
  // Reserves a connection for an outbound connect; returns index or kErrTableFull.
  int64_t conn_reserve(int32_t proto);
  // Starts Happy Eyeballs over `addrs` (already ordered, RFC 8305 section 4).
  int conn_connect(uint32_t index, uint32_t gen, const sockaddr_in6* addrs, uint32_t count,
                   uint32_t attempt_delay_ms);
  int conn_connect_uds(uint32_t index, uint32_t gen, const std::string& path);
  // Bounds resolution and the connect attempts of a reserved connection: still not connected
  // after `ms` (0: no bound), it closes with kErrConnectTimeout. Call right after conn_reserve.
  int conn_set_connect_timeout(uint32_t index, uint32_t gen, uint32_t ms);
  // Fails a reserved connection (e.g. name resolution failed): emits Disconnected(code).
  int conn_fail(uint32_t index, uint32_t gen, int32_t code);
  // Queues bytes (copied into pool slots). Returns bytes accepted (may be < len: queue limit or
  // pool exhausted -> a Writable event follows when it drains) or a negative kErr code.
  int64_t conn_write(uint32_t index, uint32_t gen, const uint8_t* data, size_t len);
  // Zero-copy TX (SendBuffer): queues [off, off+len) of a held free-stack slot, taking one
  // reference (refcounted fan-out: the same slot may be queued on many connections). Returns
  // len, 0 when the write queue is full (a Writable event follows), or a negative kErr code.
  int64_t conn_write_slot(uint32_t index, uint32_t gen, uint32_t slot, uint32_t off, uint32_t len);
  int udp_send_slot(uint32_t ep, uint32_t gen, const sockaddr* to, socklen_t tolen, uint32_t slot,
                    uint32_t off, uint32_t len);
  // OwnedSlot: promotes the payload at pool offset `off` of the current batch (an RX slot lent
  // to JS) to a held slot that survives the batch. Returns the slot index or kErrStaleId.
  int64_t detach_rx(uint64_t off);
  // Drops an OwnedSlot's reference: the slot goes back to the buffer ring at zero.
  int owned_release(uint32_t slot);
  // SendBuffer checkout / release (JS holds one reference while it owns the buffer).
  int64_t slot_acquire();
  int slot_release(uint32_t slot);
  // allowHalfOpen for a listener's future connections / for one connection (outbound: set it
  // right after conn_reserve). With it, the peer's FIN only emits PeerEnded: the connection
  // stays writable until the application closes it. 0 or kErr*.
  int endpoint_set_half_open(uint32_t ep, uint32_t gen, bool on);
  int conn_set_half_open(uint32_t index, uint32_t gen, bool on);
  // pauseRecv / resumeRecv: a paused connection's multishot recv is cancelled (bytes already
  // received still arrive), so the peer meets TCP flow control; resume re-arms it. 0 or kErr*.
  int conn_pause_recv(uint32_t index, uint32_t gen, bool pause);
  // The listener a connection was accepted on, as an endpoint id (gen << 20 | index), or -1
  // for an outbound one; kErrStaleId once its Disconnected batch is over.
  int64_t conn_endpoint(uint32_t index, uint32_t gen);
  // end() as node:net's socket.end(): what is queued goes out, then FIN (TLS: close_notify
  // first); reading goes on, and the connection closes once the peer has ended too. Writes
  // after it are refused (kErrClosing). 0 or kErr*.
  int conn_end(uint32_t index, uint32_t gen);
  int conn_close(uint32_t index, uint32_t gen);
  int conn_close_graceful(uint32_t index, uint32_t gen, uint32_t timeout_ms);
  // Shutdown: closes every endpoint and gracefully closes every connection.
  void close_all(uint32_t timeout_ms);
  int conn_peer(uint32_t index, uint32_t gen, sockaddr_storage* out, socklen_t* len);
  int conn_proto(uint32_t index, uint32_t gen);  // Protocol or negative kErr
  // TCP_INFO of an open TCP connection (the kernel's view: RTT, cwnd, retransmits, ...), plus
  // our byte counters. 0 or kErr* / -errno.
  int conn_tcp_info(uint32_t index, uint32_t gen, TcpStats* out);
  uint32_t conn_gen(uint32_t index) const { return conns_[index].gen; }

  // ---- TLS (shard/tls_conn.cc) ----
  // Makes a listener a TLS listener: each accepted connection handshakes with the slot's
  // current context first; Connected (code kConnectedTls) follows the handshake.
  int endpoint_set_tls(uint32_t ep, uint32_t gen, std::shared_ptr<tls::CertSlot> slot,
                       uint32_t handshake_timeout_ms);
  // An outbound connection reserved by conn_reserve(): TLS starts when TCP connects.
  int conn_set_tls_client(uint32_t index, uint32_t gen, std::shared_ptr<tls::Context> ctx,
                          uint32_t handshake_timeout_ms);
  // STARTTLS on an open plaintext connection (client or server side). Bytes received before
  // this call were delivered as plaintext; every byte after it belongs to the TLS stream.
  int conn_tls_upgrade(uint32_t index, uint32_t gen, std::shared_ptr<tls::Context> ctx,
                       uint32_t handshake_timeout_ms);
  // The TLS state of a connection (nullptr: not TLS). Valid until the batch ends.
  const ConnTls* conn_tls(uint32_t index, uint32_t gen);
  // ciphertext from a session (ConnTls::put): appended to the write queue, no queue limit
  size_t tls_put(uint32_t index, const uint8_t* data, size_t len);
  // Whether this kernel has kTLS (probed once per process: TCP_ULP "tls"); *why when not.
  static bool ktls_available(std::string* why);

  // ---- HTTP/1.1 server (shard/http1_conn.cc) ----
  // Makes a TCP/UDS listener an HTTP listener: its future connections carry HTTP/1.1 requests
  // (HttpRequest / HttpBodyChunk events) instead of StreamFrames. 0 or kErr*.
  int endpoint_set_http(uint32_t ep, uint32_t gen, const HttpConfig& cfg);
  // The listener's counters (nullptr: not an HTTP listener / stale).
  const HttpCounters* endpoint_http_stats(uint32_t ep, uint32_t gen) const;
  // Requests in flight on the listener's open connections now: HTTP/2 streams open and HTTP/1.1
  // requests parsed and not answered (counted on demand: a walk over the connections).
  uint64_t endpoint_http_in_flight(uint32_t ep, uint32_t gen) const;
  // Answers request `req` of an HTTP connection: the head (status, the application's fields,
  // Date, Content-Length, Connection as the request needs) and `body`, all copied. Responses
  // leave in request order: one for a later request waits for the earlier ones. `trusted`:
  // the fields were checked already (a response template). Returns the bytes of the response,
  // kErrStaleId when the request is gone (answered, its connection closed) or never existed,
  // kErrNotHttp, or http1::kBadField / kBadStatus (nothing written).
  // `stored`: the answer is a template whose encoded bodies are kept there (made on first use);
  // nullptr: encoded per answer when the request accepts a coding (http_encode).
  int64_t http_respond(uint32_t index, uint32_t gen, uint32_t req, uint16_t status,
                       const http1::Field* fields, uint32_t nfields, const uint8_t* body,
                       size_t body_len, bool trusted, HttpEncoded* stored = nullptr);
  // A streamed answer (chunked; close-delimited for HTTP/1.0): its head now, its body in pieces.
  // One streamed answer may be open per connection. Start: 0, or kErrStaleId / kErrNotHttp /
  // kErrQueueFull (another one is open) / kBadField / kBadStatus. Write: 1 when there is room for
  // more, 0 when the writer should wait for kEvHttpWritable (the bytes are taken either way), or
  // kErrStaleId when the answer is gone. End: 0 or kErrStaleId.
  int64_t http_stream_start(uint32_t index, uint32_t gen, uint32_t req, uint16_t status,
                            const http1::Field* fields, uint32_t nfields, bool trusted);
  int64_t http_stream_write(uint32_t index, uint32_t gen, uint32_t req, const uint8_t* data, size_t len);
  int64_t http_stream_end(uint32_t index, uint32_t gen, uint32_t req);
  // The last HTTP protocol error of a connection (static text; "" when none), and what the
  // engine answered it with: an HTTP status (HTTP/1.x), 1000 + the GOAWAY code (HTTP/2), or 0.
  const char* conn_http_error(uint32_t index, uint32_t gen, uint32_t* answered = nullptr);

  // ---- WebSocket server (shard/ws_conn.cc, shard/ws_pubsub.cc) ----
  // Serves WebSocket upgrades on an HTTP listener (endpoint_set_http first). 0 or kErr*.
  int endpoint_set_ws(uint32_t ep, uint32_t gen, const WsConfig& cfg);
  const WsCounters* endpoint_ws_stats(uint32_t ep, uint32_t gen) const;
  // One message (text: opcode 1, else 2), taken whole or not at all. kWsSent (buffered bytes
  // at most the send mark), kWsQueued (above it: a Writable event follows once all is out),
  // kWsDropped (the send budget is exceeded; with WsSlowPolicy::Close the connection is closed
  // too), or kErrStaleId / kErrNotWs / kErrClosing (our close frame is out).
  int32_t ws_send(uint32_t index, uint32_t gen, bool text, const uint8_t* data, size_t len);
  // Starts the close handshake: our close frame (code, reason of at most 123 bytes), then the
  // peer's answers it and the connection closes (or close_timeout_ms passes). 0 or kErr*.
  int ws_close(uint32_t index, uint32_t gen, uint16_t code, const uint8_t* reason, size_t n);
  // A held upgrade (manual): accepted with subprotocol `proto` (index into the listener's list,
  // -1 none) and extra response fields; or refused with an HTTP status. 0 or kErr*.
  int ws_accept(uint32_t index, uint32_t gen, int32_t proto, const http1::Field* fields, uint32_t nfields);
  int ws_reject(uint32_t index, uint32_t gen, uint16_t status, const char* reason);
  // Bytes written and not yet handed to the kernel (the write queue and the overflow), or kErr*.
  int64_t ws_buffered(uint32_t index, uint32_t gen);
  // The close of a WebSocket connection: valid from its Disconnected until the batch ends.
  bool ws_close_info(uint32_t index, uint32_t gen, WsCloseInfo* out);
  // Pub/sub (per shard): 1 subscribed / 0 already; 1 unsubscribed / 0 was not; or kErr*.
  int ws_subscribe(uint32_t index, uint32_t gen, const std::string& topic, bool on);
  // One frame built once, queued by reference on every subscriber that can take it (a copy for
  // TLS connections). counts[0..2] = sent, queued, dropped (kWs* per subscriber). Returns the
  // subscribers reached, or kErrPoolExhausted.
  int64_t ws_publish(const std::string& topic, bool text, const uint8_t* data, size_t len, uint32_t counts[3]);
  // The same fan-out to an explicit list of connection ids (gen << 20 | index, as JS has them);
  // ids that are not open WebSockets count as dropped.
  int64_t ws_broadcast(const double* ids, size_t n, bool text, const uint8_t* data, size_t len, uint32_t counts[3]);
  uint32_t ws_topic_count(const std::string& topic) const;
  // A client: makes a connection reserved by conn_reserve (and being connected) a WebSocket
  // client — its opening handshake is queued now (sent once TCP / TLS is up), the answer is
  // checked (101, Upgrade, Connection, Sec-WebSocket-Accept, a subprotocol we offered, no
  // extension), then WsOpen. `protocols`: offered, in order; `extra`: "Name: value\r\n" lines.
  int ws_client_start(uint32_t index, uint32_t gen, const WsConfig& cfg, const std::string& host,
                      const std::string& path, const std::string& extra);
  // The subprotocol of a WebSocket connection ("" when none), nullptr when it is not one.
  const std::string* ws_subprotocol(uint32_t index, uint32_t gen);

  // ---- QUIC (shard/quic_conn.cc) ----
  // Makes a bound UDP endpoint a QUIC listener: its datagrams go to QUIC connections (new ones
  // accepted from Initial packets) instead of UdpRecv events. 0 or kErr*.
  int quic_listen(uint32_t ep, uint32_t gen, std::shared_ptr<QuicEndpoint> q);
  // A client connection to `peer` on a UDP endpoint of its own; Connected follows the
  // handshake. Connection index, or kErr* / -errno (*err says why for kErrQuicTls).
  int64_t quic_connect(const sockaddr* peer, socklen_t len, std::shared_ptr<QuicEndpoint> q,
                       std::string* err);
  // A reserved connection (conn_reserve) connects to the first of `addrs` to answer: attempts
  // start `delay_ms` apart (RFC 8305), each like quic_connect with `model`'s settings; the
  // first a server answers takes the entry, the rest are dropped. 0 or kErr*.
  int quic_connect_race(uint32_t index, uint32_t gen, const sockaddr_storage* addrs, uint32_t n,
                        uint32_t delay_ms, std::shared_ptr<QuicEndpoint> model, std::string ticket);
  // Writes to a stream (opening it when it is new): the bytes flow control and quiche's
  // buffer take now (a Writable event with code = the stream follows a short write), or kErr*.
  // `fin`: the stream's last bytes (a FIN after them; 0 bytes with fin ends the stream).
  int64_t quic_stream_write(uint32_t index, uint32_t gen, uint64_t stream, const uint8_t* data,
                            size_t len, bool fin);
  // RESET_STREAM (write side) or STOP_SENDING (read side) with an application error code.
  int quic_stream_shutdown(uint32_t index, uint32_t gen, uint64_t stream, bool read, uint64_t code);
  // The id our next stream of that kind will have (bidirectional or unidirectional), reserved.
  int64_t quic_open_stream(uint32_t index, uint32_t gen, bool uni);
  // One datagram (RFC 9221): 0, or kErrQuicDatagram / kErrQueueFull / kErr*.
  int quic_datagram(uint32_t index, uint32_t gen, const uint8_t* data, size_t len);
  // Pull mode: a pulled stream's data stays in quiche until quic_stream_read takes it (a
  // kEvQuicReadable event says when there is some); `on` false returns it to StreamFrame events.
  int quic_stream_pull(uint32_t index, uint32_t gen, uint64_t stream, bool on);
  // Reads up to `cap` bytes of a pulled stream: the bytes read (0: nothing now; *fin: the
  // stream's end was reached), or kErrQuicNotPulled / kErrQuicStreamReset (*code) / kErr*.
  int64_t quic_stream_read(uint32_t index, uint32_t gen, uint64_t stream, uint8_t* buf, size_t cap,
                           bool* fin, uint64_t* code);
  // The addresses of the last path migration (valid from its kEvPathMigration on).
  int quic_migration(uint32_t index, uint32_t gen, sockaddr_storage* old_peer, sockaddr_storage* new_peer);
  // The largest datagram the connection takes now (0: not negotiated), or kErr*.
  int64_t quic_datagram_max(uint32_t index, uint32_t gen);
  // 0-RTT (a client): a session ticket from an earlier connection to the same server, set before
  // the connection's first packet — the ClientHello goes at once, and writes may follow before
  // Connected (early data) when the ticket allows it. 0, or kErrQuicTicket / kErr*.
  int quic_set_ticket(uint32_t index, uint32_t gen, const uint8_t* data, size_t len);
  // The newest session ticket the server issued on this connection ("" when none yet).
  int quic_ticket(uint32_t index, uint32_t gen, std::string* out);
  // Whether early data is possible now (1) or not (0), or kErr*; after the handshake: 1 when
  // the server accepted our 0-RTT data. *reason: BoringSSL's word for why (or why not).
  int quic_early_data(uint32_t index, uint32_t gen, std::string* reason);
  // CONNECTION_CLOSE with an application error code and reason, then the close.
  int quic_close(uint32_t index, uint32_t gen, uint64_t code, const std::string& reason);
  // The negotiated ALPN ("" before the handshake), nullptr when not a QUIC connection.
  bool quic_alpn(uint32_t index, uint32_t gen, std::string* out);
  bool quic_close_info(uint32_t index, uint32_t gen, QuicCloseInfo* out);
  // The TLS side of a QUIC connection (tlsInfo): the SSL quiche drives (valid while the
  // connection is, through its Disconnected), its side and phase (tls::Phase), and the alert
  // of a handshake that failed (-1: none). False when not a QUIC connection.
  struct QuicTlsView {
    const void* ssl = nullptr;
    bool server = false;
    uint8_t phase = 0;
    int alert = -1;
    bool alert_received = false;
    std::string reason;
  };
  bool quic_tls(uint32_t index, uint32_t gen, QuicTlsView* out);
  int quic_conn_stats(uint32_t index, uint32_t gen, TcpStats* out);
  const QuicCounters* endpoint_quic_stats(uint32_t ep, uint32_t gen) const;
  const QuicEndpoint* endpoint_quic(uint32_t ep, uint32_t gen) const;  // its pacing mode and why

  // ---- memory shared with JS ----
  std::shared_ptr<SlotPool> pool() { return pool_; }
  std::shared_ptr<EventRec[]> events() { return events_; }
  uint32_t events_capacity() const { return cfg_.max_events_per_poll; }
  const GaugeSet& gauges() const { return gauges_; }
  const ShardCounters& counters() const { return counters_; }
  const UringProbe& probe() const { return probe_; }
  Driver& driver() { return drv_; }
  Backend backend() const { return drv_.backend(); }
  // Why 'auto' chose epoll (empty when it did not).
  const std::string& fallback_reason() const { return fallback_reason_; }
  void reset_peaks();
  uint32_t conns_open() const { return conns_used_; }
  // Native bytes reserved per connection-table entry (state + its write-queue ring).
  size_t bytes_per_conn() const { return sizeof(Conn) + txq_cap_ * sizeof(TxChunk); }

 private:
  int init_steps(const ShardConfig& cfg, std::string* err_kind, std::string* err);
  Conn* lookup(uint32_t index, uint32_t gen);
  int64_t free_endpoint() const;
  Endpoint& claim_endpoint(uint32_t ep, int fd, EpKind kind, int32_t proto);
  int64_t open_endpoint(int family, const sockaddr* sa, socklen_t len, int backlog,
                        bool reuse_port, int32_t proto, const std::string& path,
                        const char** err_op);
  bool room(uint32_t n) const { return n_events_ + n <= cfg_.max_events_per_poll; }
  void emit(int32_t type, uint32_t index, uint32_t gen, int32_t kind, uint32_t off, uint32_t len,
            int32_t code, int32_t aux);
  void mark_dirty(uint32_t index);
  int64_t alloc_conn();
  void arm_recv(uint32_t index);
  void arm_accept(uint32_t ep);
  void start_send(uint32_t index);
  void start_attempt(uint32_t index);
  void begin_close(uint32_t index, int32_t err, int32_t origin);
  void try_finalize(uint32_t index);
  void emit_peer_ended(uint32_t index);
  // Default (not half-open) end of a connection whose peer sent FIN: the app has seen
  // PeerEnded and every Writable, wrote nothing more, and the queue is empty.
  bool eof_close_due(const Conn& c) const;
  void release_tx(Conn& c);
  void recycle_rx();
  void release_closed();
  void release_closed_now(uint32_t index);
  void handle_cqe(io_uring_cqe* cqe);
  void on_accept(uint32_t ep, uint32_t gen, int res, uint32_t flags);
  void on_recv(uint32_t index, int res, uint32_t flags);
  void on_send(uint32_t index, int res);
  void on_connect(uint32_t index, uint32_t attempt, int res);
  // TLS wiring (tls_conn.cc)
  size_t tx_append(uint32_t index, const uint8_t* data, size_t len, size_t limit, bool budget);
  int tls_start(uint32_t index, std::shared_ptr<tls::Context> ctx, bool announce, uint32_t timeout_ms);
  void tls_pump(uint32_t index);
  // `whole`: take all `len` bytes or none (SendBuffer writes).
  int64_t tls_write(uint32_t index, const uint8_t* data, size_t len, bool whole = false);
  // Plaintext bytes a TLS write would take now (of `len`), with why less (kErrQueueFull or
  // kErrPoolExhausted) in *short_why. tls_write and write_fits both ask this.
  size_t tls_admit(uint32_t index, size_t len, int* short_why, bool count_capped = true);
  void tls_emit_ready(uint32_t index);  // Connected (connect/accept) or TlsReady (STARTTLS)
  void tls_pause_rx(uint32_t index);
  // Cancels a connection's multishot recv (by user_data); its last CQE ends it.
  void cancel_recv(uint32_t index);
  // Cancels every operation on `fd` (a connection's socket or a connect attempt's); the cancel's
  // own CQE is counted in the connection's inflight.
  void cancel_conn_fd(uint32_t index, int fd);
  // Whether the TLS machine still owes the application something (an event, or plaintext).
  static bool tls_owes(const Conn& c);
  // Whether the multishot recv must stay down (TLS input over its bound, kTLS set-up, HTTP input
  // held for answers, pauseRecv).
  static bool rx_held(const Conn& c);
  // Whether the session encrypts writes now (open, or the peer sent close_notify: half-close),
  // rather than holding them for the handshake.
  static bool tls_sending(const ConnTls& t);
  // Whether a Writable event is due: asked for, the queue drained, and (TLS) the handshake done.
  static bool writable_owed(const Conn& c);
  void tls_established(uint32_t index);
  void tls_fail(uint32_t index, int32_t code);
  // HTTP/1.1 (http1_conn.cc)
  void http_accept(uint32_t index, const std::shared_ptr<HttpEndpoint>& ep);
  // Bytes received on an HTTP connection. `p` lies in the pool (an RX slot, or a TLS plaintext
  // slot) and stays valid until the batch ends.
  void http_input(uint32_t index, const uint8_t* p, size_t n);
  // Parses what it can of buf[0, len) (`pooled`: buf lies in the pool for this batch, so body
  // events may point into it). Returns the bytes consumed.
  size_t http_parse(uint32_t index, const uint8_t* buf, size_t len, bool pooled);
  void http_flush(uint32_t index, bool allow_events);
  void http_peer_ended(uint32_t index);
  // Shutdown of an HTTP connection with requests in flight: they are answered (with
  // Connection: close), no new one is read, then the connection closes; bounded by timeout_ms.
  // False when it has none in flight (the caller closes it gracefully now).
  bool http_shutdown(uint32_t index, uint32_t timeout_ms);
  // HTTP/2 (http2_conn.cc)
  friend struct ConnH2;
  bool h2_start(uint32_t index);  // the client preface came: the connection speaks HTTP/2 now
  // `Upgrade: h2c` on a request without a body: 101, then HTTP/2 with that request as stream 1.
  bool h2_upgrade(uint32_t index, const uint8_t* settings_b64, size_t len, bool head_request);
  size_t h2_feed(uint32_t index, const uint8_t* p, size_t n, bool pooled);  // bytes consumed
  void h2_flush_out(uint32_t index);
  void h2_flush(uint32_t index, bool allow_events);
  void h2_stalled(uint32_t index);  // the Stall timer: end a connection whose windows stayed shut
  int64_t h2_respond(uint32_t index, uint32_t req, uint16_t status, const http1::Field* fields,
                     uint32_t nfields, const uint8_t* body, size_t body_len, HttpEncoded* stored);
  // Response compression (http_encode.cc): when the request accepted (`accept`, bits of
  // compress::Coding) a coding of the listener and the answer is compressible, points *fields /
  // *body at the encoded answer (Content-Encoding, Vary, a strong ETag made weak); an answer that
  // could have been encoded gets Vary: Accept-Encoding either way. The results live in the
  // shard's http_z* buffers (or `stored`) until the next call.
  void http_encode(HttpEndpoint& ep, uint8_t accept, uint16_t status, const http1::Field** fields,
                   uint32_t* nfields, const uint8_t** body, size_t* body_len, HttpEncoded* stored);
  void http_timer(uint32_t index);
  // `extra`: fields the status needs (426: Upgrade, Sec-WebSocket-Version), after Content-Type.
  void http_fail(uint32_t index, uint16_t status, const char* reason, bool limit,
                 const http1::Field* extra = nullptr, uint32_t nextra = 0);
  void http_deliver(uint32_t index, uint32_t req, const uint8_t* data, size_t len);
  void http_advance(uint32_t index);  // the response for next_resp went out: on to the next
  int64_t http_head(const ConnHttp& h, uint8_t f, uint16_t status, const http1::Field* fields,
                    uint32_t nfields, int64_t body_bytes, bool trusted);
  void http_pump(uint32_t index);     // parses the held input
  void http_send(uint32_t index, const uint8_t* data, size_t len);
  void http_drain(uint32_t index);
  void http_set_wait(uint32_t index, HttpWait w, uint32_t ms);
  static bool http_owes(const Conn& c);
  // WebSocket (ws_conn.cc): the upgrade check of a parsed request — 1: it becomes a WebSocket
  // (*proto, *key set), 0: plain HTTP, -1: refused (answered with an HTTP status).
  int ws_check(uint32_t index, const uint8_t* head_buf, const http1::Head& head, int32_t* proto,
               http1::Span* key);
  // The request (its record in `slot`, `rec_len` bytes) becomes a WebSocket: 101 now (auto) or
  // held (manual). `rest`: input after the head. Returns the bytes of `rest` consumed.
  size_t ws_begin(uint32_t index, uint32_t slot, uint32_t rec_len, uint32_t flags, const uint8_t* key,
                  int32_t proto, uint8_t* rest, size_t rest_len);
  // The connection's WebSocket state for a listener's (or a client's) settings.
  ConnWs& ws_make(uint32_t index, std::shared_ptr<WsEndpoint> ep, bool client);
  void ws_open(uint32_t index, const http1::Field* fields, uint32_t nfields);  // the 101
  void ws_input(uint32_t index, uint8_t* p, size_t n);
  size_t ws_feed(uint32_t index, uint8_t* p, size_t n);
  void ws_pump(uint32_t index);
  bool ws_deliver(uint32_t index, bool text);
  void ws_flush(uint32_t index, bool allow_events);
  void ws_raw(uint32_t index, const uint8_t* data, size_t len);
  // One frame out: header and payload, masked with a fresh key when the connection is a client.
  void ws_frame(uint32_t index, uint8_t opcode, const uint8_t* p, size_t n);
  void ws_client_input(uint32_t index);
  void ws_client_fail(uint32_t index, const char* why);  // Disconnected kErrWsHandshake
  void ws_control(uint32_t index, uint8_t opcode, const uint8_t* p, size_t n);
  void ws_fail(uint32_t index, uint16_t code, const char* why, int32_t origin);
  void ws_peer_ended(uint32_t index);
  void ws_timer(uint32_t index);
  void ws_arm(uint32_t index);
  void ws_release(Conn& c);  // its topics, its timer (the connection is being freed)
  void ws_unsubscribe_all(Conn& c);
  void ws_closed_both(uint32_t index);  // both close frames exchanged: the TCP close
  void ws_final(Conn& c, int32_t* err, int32_t* origin);  // Disconnected's code for a WebSocket
  static bool ws_owes(const Conn& c);
  // Whether a WebSocket still holds input it has not read (a FIN waits for it, as for TLS).
  static bool ws_holds(const Conn& c);
  // The end of a WebSocket's TCP connection once its overflow is out: a graceful close, or
  // (`linger`, after a failure) our FIN and the peer's input read and dropped until it closes.
  void ws_end(uint32_t index, uint32_t ms, bool linger);
  void ws_pong(uint32_t index, const uint8_t* p, size_t n);
  // permessage-deflate: inflate a compressed message's bytes / its end (false: failed, closing).
  bool ws_inflate(uint32_t index, const uint8_t* p, size_t n);
  bool ws_inflate_end(uint32_t index, bool text);
  // Pieces mode: a piece of the current message (held back one step); the held piece out, as
  // the message's last (`final`) or not. False when the connection failed (no pool slot).
  bool ws_piece(uint32_t index, const uint8_t* p, size_t n, bool text);
  void ws_piece_out(uint32_t index, bool final);
  friend struct ConnWs;
  // Sends a frame to one subscriber: by reference to `slot` (a run holding the frame) when it
  // can, else a copy. Returns kWs*.
  // `slot` < 0: no shareable frame for this subscriber (TLS, its own compression context, ...):
  // the message (`payload`) is framed for it alone.
  int32_t ws_fan_one(uint32_t index, int64_t slot, const uint8_t* frame, size_t n, bool text,
                     const uint8_t* payload, size_t plen);
  int64_t ws_fan(const std::vector<uint64_t>& targets, bool text, const uint8_t* data, size_t len, uint32_t counts[3]);
  int32_t ws_outcome(uint32_t index);
  // The send budget (maxBufferedBytes) is used up: the drop counted, the slow policy applied.
  bool ws_over_budget(uint32_t index);
  // QUIC (quic_conn.cc)
  // Packets of one datagram (a GRO train: `seg` > 0 cuts it) arrived on a QUIC endpoint.
  void quic_recv(uint32_t ep, const sockaddr* from, socklen_t fromlen, uint8_t* p, size_t n, uint32_t seg);
  void quic_packet(uint32_t ep, const sockaddr* from, socklen_t fromlen, uint8_t* p, size_t n);
  int64_t quic_accept(uint32_t ep, const quic::Header& h, const sockaddr* from, socklen_t fromlen,
                      const uint8_t* odcid, size_t odcid_len);
  void quic_reply(uint32_t ep, const sockaddr* to, socklen_t tolen, const uint8_t* p, size_t n);
  void quic_stateless_reset(uint32_t ep, const quic::Header& h, const sockaddr* to, socklen_t tolen, size_t n);
  // Events (Connected, stream data, datagrams, resets, Writable), packets out, the timer, and
  // the close once quiche says the connection is over.
  void quic_service(uint32_t index, bool allow_events);
  void quic_send(uint32_t index, bool unpaced = false);  // unpaced: closing
  void quic_timer(uint32_t index);
  void quic_stop_told(uint32_t index, uint64_t stream);
  void quic_begin_close(uint32_t index, int32_t* err, int32_t* origin);
  void quic_release(Conn& c);
  void quic_endpoint_closing(uint32_t ep);
  int quic_close_graceful(uint32_t index, uint32_t timeout_ms);
  void quic_race_next(uint32_t leader);            // starts the next attempt (or fails the race)
  void quic_race_win(uint32_t attempt);            // a server answered this attempt
  void quic_race_lost(uint32_t attempt);           // this attempt ended before any answer
  void quic_race_drop(uint32_t attempt, uint32_t gen);  // silently, without an event
  void quic_race_end(uint32_t leader);             // the entry closes: its attempts go
  bool quic_delivered(ConnQuic& cq);  // a graceful close may send CONNECTION_CLOSE
  void quic_wake_tx(uint32_t ep);
  void quic_drop_paced(ConnQuic& cq);  // a packet held for its send time is given up (closing)
  void quic_paths(uint32_t index);  // path events (migration), spare and retired connection ids
  ConnQuic* quic_conn(uint32_t index, uint32_t gen, int* err);
  static bool quic_owes(const Conn& c);
  void ktls_try(uint32_t index);  // ktls.cc: install kernel TLS once the connection is quiet
  void ktls_control_record(uint32_t index);  // a non-data record under kTLS (recv gave EIO)
  void ktls_close_notify(uint32_t index);
  void arm_udp_recv(uint32_t ep);
  int udp_check(uint32_t ep, uint32_t gen, socklen_t tolen);
  // `txtime_ns`: SO_TXTIME's send time (CLOCK_MONOTONIC), 0 for none.
  int udp_submit(uint32_t ep, uint32_t entry, const sockaddr* to, socklen_t tolen, uint16_t gso,
                 uint64_t txtime_ns = 0);
  // QUIC pacing: makes the endpoint's socket honour SO_TXTIME when a qdisc that does (fq, etf)
  // is the root of some interface; false with *why otherwise (shard/udp.cc).
  bool udp_enable_txtime(uint32_t ep, std::string* why);
  void on_udp_recv(uint32_t ep, uint32_t gen, int res, uint32_t flags, bool gro);
  void on_udp_send(uint32_t ep, uint32_t entry, uint32_t gen, int res);
  void endpoint_finish(uint32_t ep);
  void arm_handle_wake();
  void update_pressure();
  // Whether bulk TX may take `slots` more pool slots under the current pressure state.
  bool bulk_allowed(uint32_t slots);
  bool bulk_fits(uint32_t slots) const;  // the same answer, not counted in writesCapped
  bool pool_exhausted() const;  // Drain refuses accepts only while this holds
  // TCP writes: whether `c` may take `slots` more TX slots (bulk budget, then fair share).
  bool tx_admit(const Conn& c, uint32_t slots) const;
  void tx_slot_add(Conn& c);
  void tx_slot_sub(Conn& c);
  // A protocol's bytes into the write queue as far as it takes them, the rest kept in `o` (after
  // whatever `o` holds already: order is kept); nothing when the connection is closing.
  void overflow_write(uint32_t index, Overflow& o, const uint8_t* data, size_t len);
  // Moves what `o` holds into the write queue as it has room; true when `o` is empty (its buffer
  // freed when larger than `keep`).
  bool overflow_drain(uint32_t index, Overflow& o, size_t keep);
  // Whether a write of `len` bytes is taken whole (all-or-nothing IoHandle writes): 0 or
  // kErrQueueFull / kErrPoolExhausted. `by_ref`: a SendBuffer slot queued by reference.
  int write_fits(uint32_t index, size_t len, bool by_ref);
  void drain_handle();  // the last CQE of a closing endpoint arrived
  int64_t handle_http_respond(uint32_t index, uint32_t gen, const HandleCmd& cmd);
  void refill_reservoir(uint32_t need);
  void fire_timers();
  void arm_timer_op();
  uint64_t now_ms() const;

  ShardConfig cfg_;
  UringProbe probe_;
  Driver drv_;
  bool drv_ready_ = false;  // the ring (or epoll set) exists: the destructor may submit to it
  std::string fallback_reason_;
  std::shared_ptr<SlotPool> pool_;
  std::shared_ptr<EventRec[]> events_;
  uint32_t n_events_ = 0;
  // Advances at every tick and every end of a JS batch: an event emitted in epoch E has been
  // seen by the application once epoch_ != E (its handler ran, its writes are queued).
  uint32_t epoch_ = 1;
  std::vector<Conn> conns_;
  std::vector<Endpoint> endpoints_;
  std::vector<TxChunk> txq_;      // conns_.size() * txq_cap_
  uint32_t txq_cap_ = 0;
  uint32_t free_head_ = 0, free_tail_ = 0, free_count_ = 0;  // FIFO: delays id reuse
  uint32_t conns_used_ = 0;
  uint32_t tx_conns_ = 0;  // connections holding TX slots (tx_slots > 0)
  uint32_t pressure_timer_ = TimerWheel::kNone;  // re-evaluates the cascade after a dwell
  bool emittable_pending() const;
  std::vector<uint32_t> dirty_, dirty_work_;
  std::vector<uint32_t> parked_;
  std::vector<uint32_t> pool_waiters_;  // refused a write for lack of pool slots, nothing queued
  void wake_pool_waiters();
  // The connection needs a free-stack slot that is not there: it is marked dirty when one is
  // released (once, however often it asks).
  void wait_for_slot(uint32_t index);
  std::vector<uint32_t> closed_;  // finalised this batch, released at its end
  std::vector<uint16_t> loaned_;  // RX slots lent to JS for this batch
  std::vector<uint32_t> loaned_plain_;  // free-stack slots holding TLS plaintext lent to JS
  uint32_t rx_in_ring_ = 0;
  uint32_t gro_in_ring_ = 0, gro_count_ = 0;  // GRO buffers in their ring / in all
  uint8_t* gro_ptr(uint32_t bid) const {
    return pool_->base() + pool_->extra_offset() + static_cast<size_t>(bid) * kGroBufSize;
  }
  TimerWheel timers_;
  bool timer_op_mode_ = false;
  uint64_t timer_op_deadline_ = UINT64_MAX;
  __kernel_timespec timer_ts_{};
  GaugeSet gauges_;
  ShardCounters counters_;
  UdpProbe udp_probe_;
  std::shared_ptr<HandleQueue> handle_q_;
  PressureInfo pressure_;
  uint64_t handle_buf_ = 0;
  http1::DateCache http_date_;
  std::string http_scratch_;  // a response being assembled (grows to the largest, then reused)
  std::string h2_out_;        // HTTP/2 frames on their way to the write queue (reused)
  compress::Encoder http_enc_;              // codec state kept between answers
  // WebSocket topics (ws_pubsub.cc): id by name, subscribers (gen << 32 | index) by id.
  struct WsTopic { std::string name; std::vector<uint64_t> subs; };
  std::unordered_map<std::string, uint32_t> ws_topic_ids_;
  std::vector<WsTopic> ws_topics_;
  std::vector<uint32_t> ws_topic_free_;
  std::vector<uint64_t> ws_targets_;        // a fan-out's list (reused)
  std::string ws_mask_;                     // a client frame being masked (reused)
  std::string ws_z_;                        // a message being compressed (reused)
  // ws_check's permessage-deflate result, taken by ws_begin.
  bool ws_ext_ok_ = false;
  ws::DeflateParams ws_ext_params_;
  std::string ws_ext_answer_;
  std::string http_zbody_, http_zetag_;     // an encoded answer's body and weakened ETag (reused)
  std::vector<http1::Field> http_zfields_;  // its fields (the application's + ours; reused)
};

}  // namespace zio
