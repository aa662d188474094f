/**
 * @zero-io/quic — QUIC (RFC 9000) servers and clients on zero-io's shard engine, with quiche's
 * protocol machine in C++ and its packets on the shard's UDP path (GSO trains out, GRO in).
 *
 * Importing this package adds `quicListen`, `quicListenWith`, `quicConnect`, `quicConnectWith`,
 * `openStream`, `streamEnd`, `streamReset`, `stopSending`, `sendDatagram`, `datagramMaxSize`,
 * `quicClose`, `quicAlpn` and `quicStats` to `Io`, makes the stream form of
 * `io.streamWrite(conn, stream, data)` and `io.sendDatagramBuffer` work on QUIC connections, and
 * adds the `Datagram`, `StreamReset` and `StopSending` events. Stream data arrives as
 * `StreamFrame` events with `stream` set and `fin` on a stream's last piece.
 *
 * TLS comes from `@zero-io/tcp` (a dependency): the same certificate options, and the same
 * `CertReloadHandle` (`io.enableCertHotReload(ep).reloadQuicFromPem(cert, key)`).
 * @module
 */
import { randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { Io, IoError, ScidGenerator, SendBuffer, formatHostPort, parseHostPort, requireFeature, type ConnId, type EndpointId } from '@zero-io/core';
import {
  ERR, bindIp, boolOption, checkPort, describeValue, getTlsContexts, intOption, internalsOf, registerEventType,
  registerEngineError, registerProtocolCloseReason, rejectUnknownKeys,
} from '@zero-io/core/internal';
import { resolveThenConnect } from '@zero-io/tcp';
import type { Pem, TlsClientConfig, TlsServerConfig } from '@zero-io/tcp';

requireFeature('quic', '@zero-io/quic');

const EV_STREAM_FRAME = 3;
const EV_QUIC_DATAGRAM = 16;
const EV_QUIC_STREAM_RESET = 17;
const EV_QUIC_STOP_SENDING = 18;
const EV_QUIC_READABLE = 19;
const EV_PATH_MIGRATION = 20;
const PROTO_QUIC = 4;
const QUIC_FIN = 2;

/** Congestion controllers quiche offers. Only `'bbr2'` paces its packets (quiche's own pacer). */
export type QuicCongestionControl = 'reno' | 'cubic' | 'bbr2';

/** Transport settings shared by listeners and clients. */
export interface QuicTransportOptions {
  /**
   * Application protocols (ALPN), in preference order; a peer must offer one of them or the
   * handshake fails (TLS alert 120, QUIC error 0x178). @default ['zero-io']
   */
  alpn?: string[];
  /** Close a connection after this long without a packet from the peer (0: never). @default 30000 */
  idleTimeoutMs?: number;
  /** Connection flow-control window: bytes the peer may send before we read them. @default 16 MiB */
  initialMaxData?: number;
  /** Per-stream flow-control window (bidirectional both ways, and unidirectional). @default 1 MiB */
  initialMaxStreamData?: number;
  /** Bidirectional streams the peer may open (MAX_STREAMS, raised as they close). @default 100 */
  maxStreamsBidi?: number;
  /** Unidirectional streams the peer may open. @default 100 */
  maxStreamsUni?: number;
  /**
   * The congestion controller. `'bbr2'` is quiche's only pacer, and its recovery resends what a
   * peer that moved (a new address or port) lost on its old path; with `'cubic'` and `'reno'`
   * quiche 0.30 may not (cloudflare/quiche#2452: the transfer stalls until the idle timeout), so
   * serve clients that move under load with `'bbr2'`. @default 'cubic'
   */
  congestionControl?: QuicCongestionControl;
  /**
   * How packets keep the send times quiche's pacer gives them (in quiche 0.30 only `'bbr2'`
   * paces; with `'cubic'` / `'reno'` every packet is due at once and this changes nothing):
   * `'wheel'` holds a packet that is due later in the connection and sends it from the shard's
   * timer wheel (1 ms ticks); `'txtime'` hands the time to the kernel (SO_TXTIME, one time per
   * GSO train), which keeps it only under the `fq` qdisc — unless every interface but loopback has
   * fq at its root, the endpoint falls back to `'wheel'` and {@link Io.quicStats} `pacingNote`
   * says why; `'off'` sends every packet when made.
   * @default 'wheel'
   */
  pacing?: 'wheel' | 'txtime' | 'off';
  /**
   * The most quiche's pacer sends, in bytes per second, rounded up to whole megabits per second
   * (BBRv2 with `pacing` on; 0: no cap). @default 0
   */
  maxPacingRate?: number;
  /** Datagram Packetization Layer PMTU Discovery (RFC 8899): probe for packets above maxUdpPayload. @default false */
  pmtud?: boolean;
  /** The largest UDP payload we send (1200 to 1472 on Ethernet paths). @default 1350 */
  maxUdpPayload?: number;
  /** Offer RFC 9221 datagrams (`sendDatagram`, `Datagram` events). @default true */
  datagrams?: boolean;
  /** Datagrams queued each way before sends fail with QueueFull / arrivals are dropped. @default 1024 */
  datagramQueue?: number;
}

/** A QUIC listener's options ({@link Io.quicListenWith}). */
export interface QuicListenConfig extends QuicTransportOptions {
  /** `"host:port"`, `"[v6]:port"`, or a port (on 0.0.0.0). Port 0 picks a free one (read it with `io.localAddress(ep)`). */
  addr: string | number;
  /**
   * The certificate: `{ cert, key }` (PEM text or file paths), or a whole `TlsServerConfig` of
   * `@zero-io/tcp` (SNI certificates, passphrase). QUIC is TLS 1.3 only whatever the config says.
   */
  tls: TlsServerConfig;
  /**
   * Stateless retry (RFC 9000 section 8.1.2): a client's first Initial is answered with a Retry
   * carrying an address-validation token (HMAC-SHA256, expires after 10 s, key rotated hourly);
   * no state is kept until it comes back with it. Costs one round trip. @default false
   */
  retry?: boolean;
  /** Connections in their handshake at once; Initials beyond are dropped (the client retries). @default 1000 */
  maxHandshakes?: number;
  /**
   * Stateless resets (RFC 9000 section 10.3): a short-header packet to a connection id this
   * listener issued but no longer knows is answered with a Stateless Reset, so the peer ends the
   * connection at once rather than at its idle timeout (at most 1,000 a second; only ids that
   * carry this listener's server and shard id). @default true
   */
  statelessReset?: boolean;
  /**
   * The key of the reset tokens (16 to 64 bytes; keep 32 random bytes secret). Without it each
   * listener draws a random one: resets then work for connections it dropped while running, but
   * not after a restart — give the same key to the restarted server (and to every server that
   * shares its `serverId`) so its resets are recognised. @default 32 random bytes
   */
  statelessResetKey?: Uint8Array;
  /**
   * Accept 0-RTT data (RFC 9001 section 4.6) from clients resuming a session: their first
   * streams arrive before the handshake completes (`Connected` comes at once, in early data).
   * **Early data can be replayed** by an attacker who captured it: accept it only for requests
   * that are safe to repeat (idempotent reads), or check a nonce of your own. @default false
   */
  earlyData?: boolean;
  /**
   * Origins WebTransport sessions may come from (kept for @zero-io/webtransport; a plain QUIC
   * connection has no origin). @default [] (any)
   */
  allowedOrigins?: string[];
  /**
   * This server's id among the servers behind one load balancer: written into every connection
   * id it issues (with the shard's id: {@link ScidGenerator}), so a QUIC-LB-style balancer can
   * route by it. @default 0
   */
  serverId?: number;
  /** SO_REUSEPORT on the UDP socket. @default false */
  reusePort?: boolean;
  /** UDP GRO on receive (coalesced packet trains), when the kernel has it. @default true */
  gro?: boolean;
  /**
   * UDP GSO on send: up to 16 equal-size packets of a connection leave in one sendmsg
   * (UDP_SEGMENT), when the kernel has it. `false` sends each packet on its own (measurement).
   * @default true
   */
  gso?: boolean;
}

/** The options of {@link Io.quicServe}: a listener's, without the address and socket options. */
export type QuicServeConfig = Omit<QuicListenConfig, 'addr' | 'reusePort' | 'gro'>;

/** A QUIC client's options ({@link Io.quicConnectWith}). */
export interface QuicConnectConfig extends QuicTransportOptions {
  /**
   * The server: an IP address or a host name. A name is resolved (dns.lookup, all addresses)
   * and its addresses are raced as RFC 8305 says: families interleaved, the next attempt after
   * `attemptDelayMs` without an answer (UDP gets no refusal: an attempt fails only at quiche's
   * idle timeout, so an unreachable address costs the delay); the first address a server
   * answers from wins and the other attempts are dropped without a trace. The name is also the
   * default TLS servername.
   */
  host: string;
  port: number;
  /** Happy Eyeballs' Connection Attempt Delay (RFC 8305 section 5). @default 250 */
  attemptDelayMs?: number;
  /** Address family of a host name's addresses: 0 both, 4 or 6 only. @default 0 */
  family?: 0 | 4 | 6;
  /**
   * TLS settings of `@zero-io/tcp` (`servername`, `ca`, `rejectUnauthorized`, `resume`), or true
   * for the defaults (the system CAs, servername = host). A session the context kept from an
   * earlier connection to the same name is offered for resumption. @default true
   */
  tls?: TlsClientConfig | true;
  /**
   * A session ticket from an earlier connection to the same server ({@link Io.sessionTicket}):
   * the handshake resumes it, and when the server's ticket allows early data the client may
   * write before Connected ({@link Io.earlyDataSend}; 0-RTT). A ticket quiche cannot read is
   * ignored (a full handshake; {@link Io.quicEarlyData} says so).
   */
  sessionTicket?: Uint8Array;
  /**
   * No handshake within this long (nothing answers, packets lost): the connection closes with
   * Disconnected errorCode -1014 (ConnectTimeout, origin 'timeout'). 0: only the idle timeout.
   * @default 10000
   */
  connectTimeoutMs?: number;
}

/** How a QUIC connection ended: read it in the Disconnected handler ({@link Io.quicCloseInfo}). */
export interface QuicCloseInfo {
  /** An application error code (CONNECTION_CLOSE 0x1d) rather than a transport one. */
  readonly application: boolean;
  /** The peer closed (its CONNECTION_CLOSE); false: we did, or the idle timer did. */
  readonly byPeer: boolean;
  /** Closed by the idle timeout (no packet for idleTimeoutMs). */
  readonly idleTimeout: boolean;
  /** The error code (0: NO_ERROR). Transport codes: RFC 9000 section 20.1; 0x100-0x1ff: TLS alerts. */
  readonly code: number;
  /** The reason phrase sent with the close. */
  readonly reason: string;
  /** A handshake we failed on the peer's certificate: the verifier's reason (else ''). */
  readonly tlsReason: string;
  /**
   * The peer ended the connection with a Stateless Reset (RFC 9000 section 10.3): it has no
   * state for it (it restarted, or dropped the connection). `byPeer` is true, Disconnected
   * errorCode 104 (ECONNRESET).
   */
  readonly statelessReset: boolean;
}

/** A QUIC listener's counters ({@link Io.quicStats}). */
export interface QuicStats {
  readonly accepted: number;
  /** Initials dropped: too many handshakes at once, or no room in the connection table. */
  readonly refused: number;
  readonly handshakesFailed: number;
  readonly packetsIn: number;
  readonly packetsOut: number;
  /** Datagrams that were not QUIC, too short for an Initial, or that quiche refused. */
  readonly dropped: number;
  readonly versionNegotiations: number;
  readonly retries: number;
  /** Retry tokens that were forged, expired or for another address. */
  readonly badTokens: number;
  /** Packets for a connection id we do not know (not an Initial): dropped, short-header ones answered with a Stateless Reset ({@link QuicListenConfig.statelessReset}). */
  readonly unknownConnectionId: number;
  /** Sends that carried several packets (UDP GSO). */
  readonly gsoTrains: number;
  /** Packets that waited in their connection for quiche's send time (`pacing: 'wheel'`). */
  readonly pacedWaits: number;
  /** Stateless Resets sent for packets to connection ids this listener no longer knows. */
  readonly statelessResets: number;
  /** The pacing in effect: `'txtime'` falls back to `'wheel'` where no qdisc keeps send times. */
  readonly pacing: 'wheel' | 'txtime' | 'off';
  /** Why `'txtime'` fell back to `'wheel'` ('' otherwise). */
  readonly pacingNote: string;
}

/** A datagram (RFC 9221) arrived on a QUIC connection. */
export interface DatagramEvent {
  readonly type: 'Datagram';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  /** The payload: a borrowed view into the pool (valid until the next poll). */
  readonly data: Uint8Array;
  readonly length: number;
  readonly offset: number;
}

/** The peer reset a stream it was sending on (RESET_STREAM): no more data comes on it. */
export interface StreamResetEvent {
  readonly type: 'StreamReset';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  readonly stream: number;
  /** The peer's application error code (codes above 2^31 - 1 read as 2147483647). */
  readonly errorCode: number;
}

/** The peer asked us to stop sending on a stream (STOP_SENDING); quiche answered with RESET_STREAM. */
export interface StopSendingEvent {
  readonly type: 'StopSending';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  readonly stream: number;
  readonly errorCode: number;
}

/** A pulled stream (`io.pullStream`) has data, or its end, to read with `io.streamRead`. Once per time it is read dry. */
export interface StreamReadableEvent {
  readonly type: 'StreamReadable';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  readonly stream: number;
}

/**
 * The peer moved to a new address (NAT rebinding, or a client migrating on purpose): quiche
 * validated the new path (PATH_CHALLENGE / PATH_RESPONSE) and sends there now. The connection
 * keeps its id, its streams and its shard.
 */
export interface PathMigrationEvent {
  readonly type: 'PathMigration';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  /** The address the peer had. */
  readonly oldPeer: import('@zero-io/core').SocketAddress;
  /** The address it has now (also what `io.peerAddress(conn)` answers from now on). */
  readonly newPeer: import('@zero-io/core').SocketAddress;
}

declare module '@zero-io/core' {
  interface EventMap {
    Datagram: DatagramEvent;
    StreamReset: StreamResetEvent;
    StopSending: StopSendingEvent;
    StreamReadable: StreamReadableEvent;
    PathMigration: PathMigrationEvent;
  }
  interface StreamFrameEvent {
    /** QUIC: this piece is the stream's last (the peer's FIN came with it; it may be empty). False for TCP. */
    readonly fin: boolean;
  }
  interface ConnectedEvent {
    /** QUIC: the negotiated application protocol (ALPN); null for other connections. */
    readonly alpn: string | null;
  }
  interface WritableEvent {
    /**
     * QUIC: the stream that has room again after a short `streamWrite`; -1 when the peer raised
     * its stream limit after a write was refused with 'stream limit' (open streams again). 0 for TCP.
     */
    readonly stream: number;
  }
  interface Io {
    /**
     * A QUIC listener on `addr` (UDP) with a certificate and key (PEM text or file paths), and the
     * defaults of {@link QuicListenConfig} (ALPN `zero-io`). `Connected { protocol: 'quic' }`
     * follows each handshake.
     */
    quicListen(addr: string | number, cert: Pem, key: Pem): EndpointId;
    /** A QUIC listener with options. */
    quicListenWith(config: QuicListenConfig): EndpointId;
    /**
     * Makes a bound UDP endpoint a QUIC listener — in an IoCluster shard, its member of a
     * cluster `udpBind` (with `routing: DcidDispatch` each datagram reaches the shard that owns
     * its connection, whatever address it comes from). The connection ids it issues carry
     * (serverId, this shard's id) ({@link ScidGenerator}). The endpoint's datagrams no longer
     * arrive as UdpRecv events.
     */
    quicServe(ep: EndpointId, config: QuicServeConfig): void;
    /** A QUIC client connection to `"ip:port"` (defaults of {@link QuicConnectConfig}; certificate verified). */
    quicConnect(addr: string): ConnId;
    /**
     * A QUIC client connection with options. Returns its id at once; `Connected` follows the
     * handshake, or `Disconnected` with the QUIC error (e.g. 0x130 unknown_ca: the certificate was not trusted).
     */
    quicConnectWith(config: QuicConnectConfig): ConnId;
    /**
     * The id of a new stream of ours (`'bidi'`: both directions, `'uni'`: we send only); it
     * opens on its first `streamWrite`. Throws InvalidArgument 'stream limit' when the peer
     * allows no more streams of that kind now: a `Writable` event with `stream` -1 follows when
     * it raises its limit (MAX_STREAMS). @default kind 'bidi'
     */
    openStream(conn: ConnId, kind?: 'bidi' | 'uni'): number;
    /**
     * Pull mode for one stream (`on` false: back to push): its data stays in the engine (within
     * the stream's flow-control window: the peer waits) until `io.streamRead(conn, stream, buf)`
     * copies it into your buffer; `StreamReadable` says when there is some. Mark a peer's stream
     * on its first StreamReadable-free moment: data that arrived before the call was delivered
     * as StreamFrames already; streams of our own can be marked before writing.
     */
    pullStream(conn: ConnId, stream: number, on?: boolean): void;
    /** Ends our side of a stream (FIN after what was written). Idempotent on a finished stream. */
    streamEnd(conn: ConnId, stream: number): void;
    /** Abandons sending on a stream (RESET_STREAM with an application error code). */
    streamReset(conn: ConnId, stream: number, code?: number): void;
    /** Asks the peer to stop sending on a stream (STOP_SENDING with an application error code). */
    stopSending(conn: ConnId, stream: number, code?: number): void;
    /**
     * Sends a datagram (RFC 9221; unreliable, unordered). Throws PoolExhausted when the send
     * queue (datagramQueue) is full, InvalidArgument when the peer does not take datagrams or it is larger than
     * {@link Io.datagramMaxSize}.
     */
    sendDatagram(conn: ConnId, data: Uint8Array): void;
    /** The largest datagram the connection takes now (0 when the peer did not offer datagrams). */
    datagramMaxSize(conn: ConnId): number;
    /** Closes with an application error code and reason (CONNECTION_CLOSE 0x1d). */
    quicClose(conn: ConnId, code?: number, reason?: string): void;
    /** The negotiated ALPN of a QUIC connection (null before its handshake, or for another protocol). */
    quicAlpn(conn: ConnId): string | null;
    /** How a QUIC connection ended: answers in its Disconnected handler (null elsewhere). */
    quicCloseInfo(conn: ConnId): QuicCloseInfo | null;
    /** A QUIC listener's counters (null for another endpoint). */
    quicStats(ep: EndpointId): QuicStats | null;
    /**
     * The newest session ticket the server issued on this client connection (servers send them
     * just after the handshake), null before one came. Keep it (it is plain bytes: memory, a
     * file) and pass it as `sessionTicket` to a later {@link Io.quicConnectWith} to the same
     * server for a resumed handshake and 0-RTT. Answers until the Disconnected handler returns.
     */
    sessionTicket(conn: ConnId): Uint8Array | null;
    /**
     * Sets the session ticket of a client connection that has sent nothing yet: call it in the
     * same event handler (or before the driver runs) as quicConnectWith; once the first packet
     * is out it throws InvalidArgument — pass `sessionTicket` in the connect config instead.
     */
    setSessionTicket(conn: ConnId, ticket: Uint8Array): void;
    /**
     * Writes to a stream before the handshake finishes (0-RTT), with the ticket given at connect:
     * as {@link Io.streamWrite} (bytes taken, or 0 and a Writable later), `fin` ends the stream.
     * After Connected it is an ordinary write. Throws InvalidArgument when 0-RTT is not possible
     * (no ticket, or a ticket without early data): send after Connected instead.
     *
     * Replay: 0-RTT data can be replayed by an attacker who captured it — send only requests that
     * are safe to repeat (RFC 9001 section 9.2); the server decides whether to accept early data
     * (QuicListenConfig.earlyData). When the server refuses it, quiche sends the same bytes again
     * after the handshake: nothing is lost either way ({@link Io.quicEarlyData} tells which).
     */
    earlyDataSend(conn: ConnId, stream: number, data: Uint8Array, fin?: boolean): number;
    /**
     * 0-RTT state: before Connected, whether early writes are possible now; after, whether the
     * server accepted our early data. `reason` is BoringSSL's word for it (e.g. 'accepted',
     * 'peer_declined', 'session_not_resumed').
     */
    quicEarlyData(conn: ConnId): { readonly earlyData: boolean; readonly reason: string };
  }
}

// ---- events ----

interface Cursor { _io(): Io; _base(): number; conn: ConnId }

function borrowExpired(): IoError {
  return new IoError('BorrowExpired',
    'a QUIC event was read after its handler call returned: events are borrowed (one reused object). Copy what you need during the call.');
}
// Reset / stop-sending records: code = the peer's error code (the cursor's errorCode), aux = the stream.
registerEventType(EV_QUIC_DATAGRAM, 'Datagram', {});
registerEventType(EV_QUIC_STREAM_RESET, 'StreamReset', {}, 7);
registerEventType(EV_QUIC_STOP_SENDING, 'StopSending', {}, 7);
registerEventType(EV_QUIC_READABLE, 'StreamReadable', {}, 7);
function migrationAddress(which: 0 | 1): PropertyDescriptor {
  return {
    get(this: Cursor) {
      const io = this._io();
      if (io._i32[this._base()] !== EV_PATH_MIGRATION) throw borrowExpired();
      const r = io._native.quicMigration(io._shard, this.conn);
      if (r === null) return null;
      const [family, address, port] = r[which];
      return { family, address, port };
    },
    configurable: true,
  };
}
registerEventType(EV_PATH_MIGRATION, 'PathMigration', { oldPeer: migrationAddress(0), newPeer: migrationAddress(1) });
registerEventType(EV_STREAM_FRAME, 'StreamFrame', {
  fin: {
    get(this: Cursor) {
      const io = this._io();
      const b = this._base();
      if (io._i32[b] !== EV_STREAM_FRAME) return undefined;  // another event: no fin
      return (io._i32[b + 7] & QUIC_FIN) !== 0;
    },
    configurable: true,
  },
});
registerEventType(1, 'Connected', {
  alpn: {
    get(this: Cursor) {
      const io = this._io();
      if (io._i32[this._base() + 3] !== PROTO_QUIC) return null;
      return io._native.quicAlpn(io._shard, this.conn) || null;
    },
    configurable: true,
  },
});

// ---- Disconnected reasons ----

const TRANSPORT_ERRORS: Record<number, string> = {
  0x0: 'NO_ERROR', 0x1: 'INTERNAL_ERROR', 0x2: 'CONNECTION_REFUSED', 0x3: 'FLOW_CONTROL_ERROR',
  0x4: 'STREAM_LIMIT_ERROR', 0x5: 'STREAM_STATE_ERROR', 0x6: 'FINAL_SIZE_ERROR', 0x7: 'FRAME_ENCODING_ERROR',
  0x8: 'TRANSPORT_PARAMETER_ERROR', 0x9: 'CONNECTION_ID_LIMIT_ERROR', 0xa: 'PROTOCOL_VIOLATION', 0xb: 'INVALID_TOKEN',
  0xc: 'APPLICATION_ERROR', 0xd: 'CRYPTO_BUFFER_EXCEEDED', 0xe: 'KEY_UPDATE_ERROR', 0xf: 'AEAD_LIMIT_REACHED',
  0x10: 'NO_VIABLE_PATH',
};
const TLS_ALERTS: Record<number, string> = {
  10: 'unexpected_message', 20: 'bad_record_mac', 40: 'handshake_failure', 42: 'bad_certificate',
  43: 'unsupported_certificate', 44: 'certificate_revoked', 45: 'certificate_expired', 46: 'certificate_unknown',
  47: 'illegal_parameter', 48: 'unknown_ca', 50: 'decode_error', 51: 'decrypt_error', 70: 'protocol_version',
  80: 'internal_error', 109: 'missing_extension', 110: 'unsupported_extension', 112: 'unrecognized_name',
  116: 'certificate_required', 120: 'no_application_protocol',
};

/** A QUIC error code's name: a transport error, a TLS alert (CRYPTO_ERROR), or an application code. */
export function quicErrorName(code: number, application: boolean): string {
  if (application) return `application error ${code}`;
  if (code >= 0x100 && code <= 0x1ff) {
    const alert = code - 0x100;
    return `CRYPTO_ERROR 0x${code.toString(16)} (TLS alert ${TLS_ALERTS[alert] ?? alert})`;
  }
  return `${TRANSPORT_ERRORS[code] ?? 'transport error'} (0x${code.toString(16)})`;
}

registerProtocolCloseReason(PROTO_QUIC, (io, conn, code, origin) => {
  if (code < 0) return undefined;  // an engine code (ConnectTimeout): core's reason
  const info = io.quicCloseInfo(conn);
  if (info === null) return undefined;  // no QUIC machine yet (a name that failed to resolve or connect): core's reason
  if (info.idleTimeout) return 'QUIC idle timeout: no packet from the peer for idleTimeoutMs';
  if (info.statelessReset) return 'QUIC stateless reset from the peer: it has no state for this connection (it restarted, or dropped the connection)';
  if (origin === 'timeout') return 'graceful close timed out: streams written to were not finished both ways (ours acknowledged, the peer\'s ended) within timeoutMs; CONNECTION_CLOSE code 0 "graceful close timed out" sent';
  const who = info.byPeer ? 'closed by the peer' : origin === 'error' ? 'closed after an error' : 'closed locally';
  const why = info.code === 0 ? 'NO_ERROR' : quicErrorName(info.code, info.application);
  return `QUIC ${who}: ${why}${info.reason ? ` "${info.reason}"` : ''}${info.tlsReason ? `: ${info.tlsReason}` : ''}`;
});

// ---- options ----

const TRANSPORT_KEYS = ['alpn', 'idleTimeoutMs', 'initialMaxData', 'initialMaxStreamData', 'maxStreamsBidi', 'maxStreamsUni',
  'congestionControl', 'pacing', 'maxPacingRate', 'pmtud', 'maxUdpPayload', 'datagrams', 'datagramQueue'];

function transport(c: QuicTransportOptions, what: string): Record<string, unknown> {
  const alpn = c.alpn ?? ['zero-io'];
  if (!Array.isArray(alpn) || alpn.length === 0 || alpn.some((a) => typeof a !== 'string' || a.length === 0 || Buffer.byteLength(a) > 255)) {
    throw new IoError('InvalidConfig', `${what}: alpn must be a non-empty list of protocol names (1 to 255 bytes each), got ${describeValue(c.alpn)}`, { key: 'alpn' });
  }
  const cc = c.congestionControl ?? 'cubic';
  if (!['reno', 'cubic', 'bbr2'].includes(cc)) {
    throw new IoError('InvalidConfig', `${what}: congestionControl is 'reno', 'cubic' or 'bbr2', got ${describeValue(cc)}`, { key: 'congestionControl' });
  }
  const pacing = c.pacing ?? 'wheel';
  if (!['wheel', 'txtime', 'off'].includes(pacing)) {
    throw new IoError('InvalidConfig', `${what}: pacing is 'wheel', 'txtime' or 'off', got ${describeValue(pacing)}`, { key: 'pacing' });
  }
  return {
    alpn,
    pacing,
    maxPacingRate: intOption(c.maxPacingRate, 0, 0, Number.MAX_SAFE_INTEGER, 'maxPacingRate', what),
    idleTimeoutMs: intOption(c.idleTimeoutMs, 30_000, 0, 86_400_000, 'idleTimeoutMs', what),
    // Bounds that keep quiche's transport parameters within its 128-byte encoding (with retry).
    initialMaxData: intOption(c.initialMaxData, 16 << 20, 0, 2 ** 30 - 1, 'initialMaxData', what),
    initialMaxStreamData: intOption(c.initialMaxStreamData, 1 << 20, 0, 2 ** 30 - 1, 'initialMaxStreamData', what),
    maxStreamsBidi: intOption(c.maxStreamsBidi, 100, 0, 16_383, 'maxStreamsBidi', what),
    maxStreamsUni: intOption(c.maxStreamsUni, 100, 0, 16_383, 'maxStreamsUni', what),
    congestionControl: cc,
    pmtud: boolOption(c.pmtud, false, 'pmtud', what),
    maxUdpPayload: intOption(c.maxUdpPayload, 1350, 1200, 1472, 'maxUdpPayload', what),
    datagrams: boolOption(c.datagrams, true, 'datagrams', what),
    datagramQueue: intOption(c.datagramQueue, 1024, 1, 65_536, 'datagramQueue', what),
  };
}

function tlsContexts(what: string) {
  const t = getTlsContexts();
  if (t === null) throw new IoError('FeatureMissing', `${what}: QUIC takes its TLS from @zero-io/tcp, which did not load`, { feature: 'tcp' });
  return t;
}

const QUIC_ERRORS: [number, string][] = [
  [ERR.NOT_QUIC, 'the connection is not a QUIC connection (TCP and UDS connections take stream 0 only)'],
  [ERR.QUIC_STREAM_STATE, "the stream is not open for this (finished, reset, or the peer's unidirectional stream)"],
  [ERR.QUIC_STREAM_LIMIT, 'stream limit: the peer allows no more streams of this kind now (wait for one to finish; the peer raises MAX_STREAMS)'],
  [ERR.QUIC_STREAM_STOPPED, 'the peer asked us to stop sending on this stream (a StopSending event tells the code)'],
  [ERR.QUIC_NOT_READY, 'the handshake has not finished (wait for Connected)'],
  [ERR.QUIC_DATAGRAM, 'the peer takes no datagrams, or the datagram is larger than io.datagramMaxSize(conn)'],
  [ERR.QUIC_NOT_PULLED, 'the stream is not in pull mode (io.pullStream(conn, stream) first; its data arrives as StreamFrame events)'],
];
for (const [code, text] of QUIC_ERRORS) registerEngineError(code, (what) => new IoError('InvalidArgument', `${what}: ${text}`));

function quicCheck(io: Io, r: number, what: string): number {
  if (r === ERR.QUEUE_FULL) {
    throw new IoError('PoolExhausted', `${what}: the datagram send queue is full (datagramQueue datagrams waiting): send fewer, or raise datagramQueue`);
  }
  return r >= 0 ? r : internalsOf(io).check(r, what);
}

// ---- listening and connecting ----

const SERVE_KEYS = ['tls', 'retry', 'maxHandshakes', 'allowedOrigins', 'gso', 'serverId', 'earlyData', 'statelessReset', 'statelessResetKey', ...TRANSPORT_KEYS];

/** A listener's native settings and TLS slot (quicListenWith, quicServe). */
function serverSide(io: Io, config: QuicServeConfig, what: string): { settings: Record<string, unknown>; slot: number; tls: TlsServerConfig } {
  if (config.tls === null || typeof config.tls !== 'object') {
    throw new IoError('InvalidConfig', `${what}: tls must be { cert, key } (PEM text or file paths)`, { key: 'tls' });
  }
  if ((config.tls as { alpn?: unknown }).alpn !== undefined) {
    throw new IoError('InvalidConfig', `${what}: QUIC takes alpn at the top level of its config (it is the TLS ALPN too), not inside tls`, { key: 'alpn' });
  }
  // The shard's place in its cluster (a ShardIo of runPerCore), else a lone shard.
  const shard = io as Io & { shardId?: number; shardCount?: number };
  const shardCount = shard.shardCount !== undefined && (shard.shardCount & (shard.shardCount - 1)) === 0 ? shard.shardCount : 1;
  const ids = new ScidGenerator(config.serverId ?? 0, shardCount > 1 ? shard.shardId ?? 0 : 0, shardCount);
  const settings: Record<string, unknown> = {
    ...transport(config, what),
    retry: boolOption(config.retry, false, 'retry', what),
    maxHandshakes: intOption(config.maxHandshakes, 1000, 1, 1 << 20, 'maxHandshakes', what),
    gso: boolOption(config.gso, true, 'gso', what),
    earlyData: boolOption(config.earlyData, false, 'earlyData', what),
    cidSlot: ids.slot,
  };
  const key = config.statelessResetKey;
  if (key !== undefined && (!(key instanceof Uint8Array) || key.length < 16 || key.length > 64)) {
    throw new IoError('InvalidConfig', `${what}: statelessResetKey must be a Uint8Array (or Buffer) of 16 to 64 bytes, got ${describeValue(key)}${key instanceof Uint8Array ? ` of ${key.length} bytes` : ''}`, { key: 'statelessResetKey' });
  }
  if (boolOption(config.statelessReset, true, 'statelessReset', what)) settings.statelessResetKey = key ?? randomBytes(32);
  const t = tlsContexts(what);
  // The TLS context answers ALPN from the same list (BoringSSL needs ALPN for QUIC).
  const tls = { ...config.tls, alpn: settings.alpn as string[] };
  return { settings, slot: t.serverSlot(tls, what), tls };
}

Io.prototype.quicListenWith = function quicListenWith(this: Io, config: QuicListenConfig): EndpointId {
  const what = 'quicListenWith';
  if (config === null || typeof config !== 'object') throw new IoError('InvalidConfig', `${what}: expected a config object, got ${describeValue(config)}`);
  rejectUnknownKeys(config, ['addr', 'reusePort', 'gro', ...SERVE_KEYS], what);
  const { host, port } = parseHostPort(config.addr, what);
  const { settings, slot, tls } = serverSide(this, config, what);
  const { native, shard } = internalsOf(this);
  const udp = { reusePort: boolOption(config.reusePort, false, 'reusePort', what), gro: boolOption(config.gro, true, 'gro', what), sendQueue: 4096 };
  let ep: number;
  try {
    ep = native.quicListen(shard, bindIp(host, what), checkPort(port, what), slot, settings, udp);
  } catch (e) {
    throw e instanceof IoError ? e : new IoError('InvalidConfig', `${what}: ${(e as Error).message}`);
  }
  if (ep < 0) internalsOf(this).check(ep, what);
  getTlsContexts()!.registerEndpoint(this, ep as EndpointId, slot, tls);
  return ep as EndpointId;
};

Io.prototype.quicServe = function quicServe(this: Io, ep: EndpointId, config: QuicServeConfig): void {
  const what = 'quicServe';
  if (config === null || typeof config !== 'object') throw new IoError('InvalidConfig', `${what}: expected a config object, got ${describeValue(config)}`);
  rejectUnknownKeys(config, SERVE_KEYS, what);
  const { settings, slot, tls } = serverSide(this, config, what);
  const r = internalsOf(this).native.quicServe(internalsOf(this).shard, ep, slot, settings);
  if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', `${what}: endpoint ${ep} is not a UDP endpoint, or serves QUIC already`);
  if (r === ERR.STALE) throw new IoError('InvalidConnId', `${what}: endpoint ${ep} is closed or was never opened`);
  internalsOf(this).check(r, what);
  getTlsContexts()!.registerEndpoint(this, ep, slot, tls);
};

Io.prototype.quicListen = function quicListen(this: Io, addr: string | number, cert: Pem, key: Pem): EndpointId {
  return this.quicListenWith({ addr, tls: { cert, key } });
};

// The TLS config a QUIC client hands @zero-io/tcp: the caller's (or the defaults) with the ALPN
// list, one object per (config, ALPN list) so the native context — its CA store, its session for
// resumption — is made once and reused, not rebuilt per connection.
const defaultTls: TlsClientConfig = {};
const derivedTls = new WeakMap<TlsClientConfig, Map<string, TlsClientConfig>>();
function clientTls(tls: TlsClientConfig | true | undefined, alpn: string[]): TlsClientConfig {
  const base = tls === undefined || tls === true ? defaultTls : tls;
  const key = alpn.join('\0');
  let byAlpn = derivedTls.get(base);
  if (!byAlpn) derivedTls.set(base, (byAlpn = new Map()));
  let d = byAlpn.get(key);
  if (!d) byAlpn.set(key, (d = { ...base, alpn }));
  return d;
}

Io.prototype.quicConnectWith = function quicConnectWith(this: Io, config: QuicConnectConfig): ConnId {
  const what = 'quicConnectWith';
  if (config === null || typeof config !== 'object') throw new IoError('InvalidConfig', `${what}: expected a config object, got ${describeValue(config)}`);
  rejectUnknownKeys(config, ['host', 'port', 'tls', 'connectTimeoutMs', 'sessionTicket', 'attemptDelayMs', 'family', ...TRANSPORT_KEYS], what);
  if (config.sessionTicket !== undefined && !(config.sessionTicket instanceof Uint8Array)) {
    throw new IoError('InvalidConfig', `${what}: sessionTicket must be a Uint8Array (from io.sessionTicket(conn)), got ${describeValue(config.sessionTicket)}`, { key: 'sessionTicket' });
  }
  const raw = config.host;
  if (typeof raw !== 'string' || raw === '') {
    throw new IoError('InvalidAddress', `${what}: host must be an IP address or a host name, got ${describeValue(raw)}`, { address: String(raw) });
  }
  const host = raw.startsWith('[') && raw.endsWith(']') ? raw.slice(1, -1) : raw;
  const port = checkPort(config.port, what);
  const delay = intOption(config.attemptDelayMs, 250, 0, 60_000, 'attemptDelayMs', what);
  const family = config.family ?? 0;
  if (family !== 0 && family !== 4 && family !== 6) {
    throw new IoError('InvalidConfig', `${what}: family must be 0 (both), 4 or 6, got ${describeValue(family)}`, { key: 'family' });
  }
  const settings = transport(config, what);
  if (typeof config.tls === 'object' && config.tls !== null && config.tls.alpn !== undefined) {
    throw new IoError('InvalidConfig', `${what}: QUIC takes alpn at the top level of its config (it is the TLS ALPN too), not inside tls`, { key: 'alpn' });
  }
  const t = tlsContexts(what);
  const id = t.clientContext(clientTls(config.tls, settings.alpn as string[]), host, what);
  if (config.sessionTicket !== undefined) (settings as Record<string, unknown>).sessionTicket = config.sessionTicket;
  const connectTimeout = intOption(config.connectTimeoutMs, 10_000, 0, 3_600_000, 'connectTimeoutMs', what);
  (settings as Record<string, unknown>).connectTimeoutMs = connectTimeout;
  const internals = internalsOf(this);
  const { native, shard } = internals;
  if (isIP(host)) {
    const r = native.quicConnect(shard, host, port, id, settings);
    if (r < 0) internals.check(r, what);
    return r as ConnId;
  }
  // A name: reserved now (the id is the application's at once), resolved off the event loop,
  // then its addresses raced in the shard.
  const r = native.connReserve(shard, PROTO_QUIC);
  if (r === ERR.TABLE_FULL) {
    throw new IoError('TableFull',
      `${what}(${formatHostPort(host, port)}): the connection table is full (maxConnections=${this.config.maxConnections}). Raise maxConnections or close idle connections.`,
      { address: formatHostPort(host, port) });
  }
  const conn = internals.check(r, what) as ConnId;
  if (connectTimeout > 0) native.connSetConnectTimeout(shard, conn, connectTimeout);
  resolveThenConnect(this, conn, host, family, (ips) => {
    try {
      return native.quicConnectRace(shard, conn, ips, port, delay, id, settings);
    } catch {
      return ERR.QUIC_TLS;  // the TLS context went away meanwhile: reported on the connection
    }
  });
  return conn;
};

Io.prototype.quicConnect = function quicConnect(this: Io, addr: string): ConnId {
  const { host, port } = parseHostPort(addr, 'quicConnect');
  return this.quicConnectWith({ host, port });
};

// ---- streams and datagrams ----

function streamId(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 0x7fffffff) {
    throw new IoError('InvalidArgument', `${what}: stream must be a stream id (an integer from 0), got ${describeValue(v)}`);
  }
  return v;
}
function appCode(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > Number.MAX_SAFE_INTEGER) {
    throw new IoError('InvalidArgument', `${what}: code must be a non-negative integer, got ${describeValue(v)}`);
  }
  return v;
}

Io.prototype.openStream = function openStream(this: Io, conn: ConnId, kind: 'bidi' | 'uni' = 'bidi'): number {
  if (kind !== 'bidi' && kind !== 'uni') throw new IoError('InvalidArgument', `openStream: kind is 'bidi' or 'uni', got ${describeValue(kind)}`);
  const r = internalsOf(this).native.quicOpenStream(internalsOf(this).shard, conn, kind === 'uni');
  if (r === ERR.CLOSING) throw new IoError('InvalidArgument', 'openStream: the connection is closing (closeGraceful, shutdown, or the peer closed it): no new streams');
  return quicCheck(this, r, 'openStream');
};

Io.prototype.pullStream = function pullStream(this: Io, conn: ConnId, stream: number, on = true): void {
  quicCheck(this, internalsOf(this).native.quicStreamPull(internalsOf(this).shard, conn, streamId(stream, 'pullStream'), on !== false), 'pullStream');
};

Io.prototype.streamEnd = function streamEnd(this: Io, conn: ConnId, stream: number): void {
  quicCheck(this, internalsOf(this).native.streamWriteTo(internalsOf(this).shard, conn, streamId(stream, 'streamEnd'), true, null), 'streamEnd');
};

Io.prototype.streamReset = function streamReset(this: Io, conn: ConnId, stream: number, code = 0): void {
  quicCheck(this, internalsOf(this).native.quicStreamShutdown(internalsOf(this).shard, conn, streamId(stream, 'streamReset'), false, appCode(code, 'streamReset')), 'streamReset');
};

Io.prototype.stopSending = function stopSending(this: Io, conn: ConnId, stream: number, code = 0): void {
  quicCheck(this, internalsOf(this).native.quicStreamShutdown(internalsOf(this).shard, conn, streamId(stream, 'stopSending'), true, appCode(code, 'stopSending')), 'stopSending');
};

Io.prototype.sendDatagram = function sendDatagram(this: Io, conn: ConnId, data: Uint8Array): void {
  if (!(data instanceof Uint8Array)) throw new IoError('InvalidArgument', `sendDatagram: data must be a Uint8Array (or Buffer), got ${describeValue(data)}`);
  quicCheck(this, internalsOf(this).native.quicDatagram(internalsOf(this).shard, conn, data), 'sendDatagram');
};

Io.prototype.sendDatagramBuffer = function sendDatagramBuffer(this: Io, conn: ConnId, buf: SendBuffer): void {
  if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', `sendDatagramBuffer: expected a SendBuffer, got ${describeValue(buf)}`);
  // The datagram is copied into quiche's queue: the buffer is released at once.
  quicCheck(this, internalsOf(this).native.quicDatagram(internalsOf(this).shard, conn, buf.bytes.subarray(0, buf.length)), 'sendDatagramBuffer');
  buf.release();
};

Io.prototype.datagramMaxSize = function datagramMaxSize(this: Io, conn: ConnId): number {
  return quicCheck(this, internalsOf(this).native.quicDatagramMax(internalsOf(this).shard, conn), 'datagramMaxSize');
};

Io.prototype.quicClose = function quicClose(this: Io, conn: ConnId, code = 0, reason = ''): void {
  const r = internalsOf(this).native.quicClose(internalsOf(this).shard, conn, appCode(code, 'quicClose'), String(reason).slice(0, 1000));
  if (r === ERR.CLOSING) return;
  quicCheck(this, r, 'quicClose');
};

Io.prototype.quicAlpn = function quicAlpn(this: Io, conn: ConnId): string | null {
  return internalsOf(this).native.quicAlpn(internalsOf(this).shard, conn) || null;
};

Io.prototype.quicCloseInfo = function quicCloseInfo(this: Io, conn: ConnId): QuicCloseInfo | null {
  const r = internalsOf(this).native.quicCloseInfo(internalsOf(this).shard, conn);
  if (r === null) return null;
  return Object.freeze({ application: r[0], byPeer: r[1] || r[6], idleTimeout: r[2], code: r[3], reason: r[4], tlsReason: r[5] ?? '', statelessReset: r[6] });
};

Io.prototype.sessionTicket = function sessionTicket(this: Io, conn: ConnId): Uint8Array | null {
  const r = internalsOf(this).native.quicTicket(internalsOf(this).shard, conn);
  if (typeof r === 'number') quicCheck(this, r, 'sessionTicket');  // throws: the code says why
  return typeof r === 'number' ? null : r;
};

Io.prototype.setSessionTicket = function setSessionTicket(this: Io, conn: ConnId, ticket: Uint8Array): void {
  if (!(ticket instanceof Uint8Array)) throw new IoError('InvalidArgument', `setSessionTicket: ticket must be a Uint8Array, got ${describeValue(ticket)}`);
  const r = internalsOf(this).native.quicSetTicket(internalsOf(this).shard, conn, ticket);
  if (r === ERR.QUIC_TICKET) {
    throw new IoError('InvalidArgument', 'setSessionTicket: the ticket is malformed, or the connection has sent its first packet already (pass sessionTicket to quicConnectWith instead)');
  }
  if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', 'setSessionTicket: only a client connection takes a session ticket');
  quicCheck(this, r, 'setSessionTicket');
};

Io.prototype.earlyDataSend = function earlyDataSend(this: Io, conn: ConnId, stream: number, data: Uint8Array, fin = false): number {
  if (!(data instanceof Uint8Array)) throw new IoError('InvalidArgument', `earlyDataSend: data must be a Uint8Array (or Buffer), got ${describeValue(data)}`);
  const { native, shard } = internalsOf(this);
  const r = native.streamWriteTo(shard, conn, streamId(stream, 'earlyDataSend'), fin === true, data);
  if (r === ERR.QUIC_NOT_READY) {
    const e = native.quicEarlyData(shard, conn);
    const why = Array.isArray(e) ? e[1] : 'no session ticket';
    throw new IoError('InvalidArgument', `earlyDataSend: 0-RTT is not possible on this connection (${why}); write after Connected`);
  }
  return quicCheck(this, r, 'earlyDataSend');
};

Io.prototype.quicEarlyData = function quicEarlyData(this: Io, conn: ConnId): { readonly earlyData: boolean; readonly reason: string } {
  const r = internalsOf(this).native.quicEarlyData(internalsOf(this).shard, conn);
  if (typeof r === 'number') quicCheck(this, r, 'quicEarlyData');
  const [earlyData, reason] = r as [boolean, string];
  return Object.freeze({ earlyData, reason });
};

Io.prototype.quicStats = function quicStats(this: Io, ep: EndpointId): QuicStats | null {
  const r = internalsOf(this).native.quicStats(internalsOf(this).shard, ep);
  return r === null || typeof r !== 'object' ? null : Object.freeze(r) as unknown as QuicStats;
};

