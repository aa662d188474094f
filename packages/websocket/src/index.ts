/**
 * @zero-io/websocket — a WebSocket server and client (RFC 6455) on zero-io's shard engine.
 *
 * Importing this package adds `wsListen`, `wsListenTls`, `wsListenWith`, `wsServe`, `wsConnect`,
 * `wsConnectWith`, `wsSend`,
 * `wsSendBuffer`, `wsClose`, `wsAccept`, `wsReject`, `wsBufferedAmount`, `wsSubscribe`,
 * `wsUnsubscribe`, `wsPublish`, `wsBroadcast`, `wsSubscribers` and `wsStats` to `Io`, and the
 * `WsOpen` / `WsUpgrade` events to the event union. Frames are read natively (unmasked in
 * place, UTF-8 checked, control frames answered); whole messages arrive as
 * `StreamFrame { kind: 'WsText' | 'WsBinary' }` events whose `data` is a borrowed view.
 * @module
 */
import {
  Io, IoError, IoHandle, SendBuffer, parseHostPort, requireFeature, type ConnId, type EndpointId,
} from '@zero-io/core';
import {
  ERR, OP, boolOption, describeValue, intOption, internalsOf, listenOptions, listenTlsArgs, openListener, pushFailed,
  registerCloseReason, registerCloseReasonRange, registerEventType, registerRecordEvent, rejectUnknownKeys, type Latin1Buffer,
} from '@zero-io/core/internal';
import type { TlsClientConfig, TlsServerConfig } from '@zero-io/tcp';

requireFeature('websocket', '@zero-io/websocket');

const EV_STREAM_FRAME = 3;
const EV_WS_OPEN = 14;
const EV_WS_UPGRADE = 15;
const KIND_WS_TEXT = 1;

/**
 * permessage-deflate (RFC 7692) settings. Memory: a connection's inflater (made on its first
 * compressed message) holds 2^clientMaxWindowBits bytes + ~7 KiB (39 KiB at 15, 8 KiB at 10); a
 * deflater 2^(windowBits + 2) + 2^(memLevel + 9) bytes + ~6 KiB (262 KiB at 15 / 8) — one per
 * listener, shared, with `serverNoContextTakeover` (the default), else one per connection.
 */
export interface WsCompressionOptions {
  /** Messages smaller than this are sent as they are. @default the Io config's compressionThreshold (128) */
  threshold?: number;
  /** zlib level, 1 (fastest) to 9 (smallest). @default 3 */
  level?: number;
  /**
   * Our side drops its compression context after every message: one compressor per listener
   * serves every connection, and a publish is compressed once for all subscribers. `false` keeps
   * a context per connection (better ratios for similar messages, 262 KiB each). @default true
   */
  serverNoContextTakeover?: boolean;
  /** Ask the client to drop its context after every message (its messages compress less; our inflater keeps no history). @default false */
  clientNoContextTakeover?: boolean;
  /** Our window, 9-15 (lower if the client asks). @default 15 */
  serverMaxWindowBits?: number;
  /** The client's window, 9-15, when the client lets us choose it (our inflater's memory). @default 15 */
  clientMaxWindowBits?: number;
  /** zlib memLevel, 1-9: the deflater's hash memory. @default 8 */
  memLevel?: number;
  /** Connections of this listener that may use compression at once (a cap on the memory); later ones are served uncompressed. Server only. @default 10000 */
  maxConnections?: number;
}

/** The WebSocket options of a listener ({@link Io.wsServe}; {@link WsListenConfig} has them too). */
export interface WsServeConfig {
  /**
   * Request paths that open a WebSocket (exact match, without the query: each starts with '/'
   * and holds no '?'), e.g. `['/echo', '/ticker']`. On a `wsListen` listener other paths are answered 404; on an HTTP listener
   * (`wsServe`) upgrade requests for other paths stay HTTP requests. @default every path
   */
  paths?: readonly string[];
  /**
   * Origin values allowed to open a WebSocket (browsers send Origin; a request whose Origin is
   * not listed, or that has none, is answered 403). @default any (no check)
   */
  allowedOrigins?: readonly string[];
  /**
   * Subprotocols this server speaks, in its order of preference: the first one the client
   * offers (Sec-WebSocket-Protocol) is chosen and read back as `ev.subprotocol` of `WsOpen`.
   * A client that offers none of them is served with no subprotocol. @default none
   */
  subprotocols?: readonly string[];
  /**
   * The largest message (all its fragments; decompressed), in bytes; a larger one closes the
   * connection with 1009. Messages arrive whole: one larger than a pool slot is assembled in a
   * run of adjacent pool slots, so this is at most a quarter of the pool
   * (`poolSlotCount * poolSlotSize / 4`: 2 MiB with the defaults; raise `poolSlotCount` or
   * `poolSlotSize` in `new Io({ ... })` for larger messages). @default 1 MiB (at most that bound)
   */
  maxMessageSize?: number;
  /**
   * The largest data frame (its payload); a larger one closes with 1009 as soon as its header is
   * read. Fragmented messages are bounded by `maxMessageSize` as a whole. @default maxMessageSize
   */
  maxFrameSize?: number;
  /** A connection that has sent no message for this long is closed with 1001. 0: never. @default 0 */
  idleTimeoutMs?: number;
  /**
   * `'whole'`: a message arrives as one StreamFrame once complete (bounded by the pool: see
   * `maxMessageSize`). `'pieces'`: for streaming very large messages — each message arrives in
   * pieces as its bytes come (a piece per read, each a borrowed view), `ev.final` true on its
   * last piece (a small message is one piece); `maxMessageSize` may then be anything up to
   * 2^53 - 1. Text pieces may cut a UTF-8 character (the whole message is still checked: a bad
   * sequence closes with 1007 after the pieces before it). Compressed messages still arrive
   * whole, so they are bounded by a quarter of the pool as in 'whole' mode (1009 beyond).
   * @default 'whole'
   */
  messageDelivery?: 'whole' | 'pieces';
  /**
   * After this much silence from the peer the engine sends a ping; if nothing (a pong or any
   * frame) arrives within another interval, the peer is taken for dead and the connection
   * closes: `Disconnected` with errorCode 1006, origin 'timeout'. 0: no pings. @default 30000
   */
  pingIntervalMs?: number;
  /** After our close frame, how long the peer has to answer before the TCP connection is closed. @default 5000 */
  closeTimeoutMs?: number;
  /**
   * The send budget's mark, in bytes written and not yet taken by the kernel (see
   * `wsBufferedAmount`): a send that leaves more than this buffered reports `'queued'`, and a
   * `Writable` event follows once everything is out. @default 65536
   */
  sendHighWaterMark?: number;
  /**
   * The send budget: while the connection's buffered bytes are below this, a send is taken whole
   * (whatever its size); once they reach it, sends are not taken: `'dropped'` (and with
   * `slowPolicy: 'close'` the connection is closed). So a connection never buffers more than
   * this plus one message. @default 1 MiB
   */
  maxBufferedBytes?: number;
  /**
   * What a send past `maxBufferedBytes` does besides reporting `'dropped'`: `'drop'` (only the
   * message is lost; the caller sees it), `'close'` (the slow connection is closed with 1008
   * policy violation) or `'close-try-again'` (closed with 1013 try again later). @default 'drop'
   */
  slowPolicy?: 'drop' | 'close' | 'close-try-again';
  /**
   * permessage-deflate: `true` accepts a client's offer with the defaults of
   * {@link WsCompressionOptions}; `false` declines every offer (clients then send uncompressed).
   * @default false
   */
  compression?: boolean | WsCompressionOptions;
  /**
   * `'auto'`: a valid upgrade is answered 101 at once and reported as `WsOpen`. `'manual'`:
   * it is reported as `WsUpgrade` (headers, path, offered subprotocols) and waits for
   * `io.wsAccept(conn)` or `io.wsReject(conn, status)` — now or later (authentication).
   * @default 'auto'
   */
  handshake?: 'auto' | 'manual';
}

/** Options of {@link Io.wsListenWith}. */
export interface WsListenConfig extends WsServeConfig {
  /** IP address to bind ('localhost' means 127.0.0.1; '::' also accepts IPv4). @default '0.0.0.0' */
  host?: string;
  /** Port; 0 picks a free one (read it back with `io.localAddress(ep)`). */
  port: number;
  /** listen() backlog. @default 511 */
  backlog?: number;
  /** SO_REUSEPORT. @default false */
  reusePort?: boolean;
  /** Serve wss:// — the `TlsServerConfig` of `@zero-io/tcp` (import '@zero-io/tcp' too). */
  tls?: TlsServerConfig;
  /** Bytes of an upgrade request's head (its line and fields); larger is answered 431. @default 16384 */
  maxHeaderSize?: number;
  /** An upgrade request must arrive within this time of the connection's first byte. @default 10000 */
  requestTimeoutMs?: number;
}

/** Options of {@link Io.wsConnectWith}. */
export interface WsConnectConfig {
  /** `ws://host[:port]/path?query` or `wss://...` (wss:// needs `import '@zero-io/tcp'` too, as ws:// does for connecting). */
  url: string;
  /** Subprotocols to offer (Sec-WebSocket-Protocol), in order of preference; `ev.subprotocol` of WsOpen is the one the server chose. */
  subprotocols?: readonly string[];
  /** Extra request fields (e.g. Authorization, Cookie). */
  headers?: Record<string, string>;
  /** The Origin field to send (browsers send one; servers may check it). @default none */
  origin?: string;
  /** wss://: the `TlsClientConfig` of `@zero-io/tcp` (CA, servername, ...). @default system CAs, SNI and verification against the URL's host */
  tls?: TlsClientConfig;
  /** The TCP connect (name resolution, Happy Eyeballs, every attempt) must finish within this. @default 10000 */
  connectTimeoutMs?: number;
  /** The server's 101 must arrive within this of the call (after the connect). @default 10000 */
  handshakeTimeoutMs?: number;
  /** As {@link WsServeConfig.maxMessageSize}. @default 1 MiB */
  maxMessageSize?: number;
  /** As {@link WsServeConfig.pingIntervalMs}. @default 30000 */
  pingIntervalMs?: number;
  /** As {@link WsServeConfig.closeTimeoutMs}. @default 5000 */
  closeTimeoutMs?: number;
  /** As {@link WsServeConfig.sendHighWaterMark}. @default 65536 */
  sendHighWaterMark?: number;
  /** As {@link WsServeConfig.maxBufferedBytes}. @default 1 MiB */
  maxBufferedBytes?: number;
  /** As {@link WsServeConfig.messageDelivery}. @default 'whole' */
  messageDelivery?: 'whole' | 'pieces';
  /** As {@link WsServeConfig.maxFrameSize}. @default maxMessageSize */
  maxFrameSize?: number;
  /**
   * Offer permessage-deflate (the server may decline). The options keep the RFC's names, seen
   * from the client: `clientMaxWindowBits` / `clientNoContextTakeover` are about our own
   * compressor (offered to the server), `serverMaxWindowBits` / `serverNoContextTakeover` ask the
   * server to limit its window (bounding our inflater: 2^bits + ~7 KiB) or drop its context; a
   * server that does not agree fails the handshake. Client defaults: 15 / false for all four.
   * @default false
   */
  compression?: boolean | Omit<WsCompressionOptions, 'maxConnections'>;
}

/**
 * What a send did:
 * - `'sent'`: the message is in the connection's queue and the buffered bytes are within
 *   `sendHighWaterMark`;
 * - `'queued'`: it is queued, but the buffered bytes passed the mark: a `Writable` event
 *   follows when everything is out (a good time to send more);
 * - `'dropped'`: it was not sent: the send budget (`maxBufferedBytes`) would be exceeded
 *   (with `slowPolicy: 'close'` the connection is closing too);
 * - `'closed'`: the connection is closing or gone (its close frame is out, or it closed).
 */
export type WsSendStatus = 'sent' | 'queued' | 'dropped' | 'closed';

/**
 * What a publish or broadcast did, per connection reached. The object is reused by the next
 * `wsPublish` / `wsBroadcast` of the same Io: read it (or copy it) before publishing again.
 */
export interface WsPublishResult {
  /** Subscribers (or listed connections that are open WebSockets) the message was offered to. */
  subscribers: number;
  sent: number;
  queued: number;
  /** Connections whose send budget it would have exceeded (or that were closing / gone). */
  dropped: number;
}

/** Counters of a WebSocket listener ({@link Io.wsStats}). */
export interface WsStats {
  /** Upgrade requests accepted (101 sent, or held for wsAccept: a held one later refused counts in `refused` too). */
  upgrades: number;
  /** Upgrade requests refused (bad version, key, path, Origin, or wsReject). */
  refused: number;
  /** WebSocket connections open now. */
  open: number;
  messagesIn: number;
  messagesOut: number;
  /** Bytes read from the connections after their 101: frames with their headers, as they came (compressed). */
  bytesIn: number;
  /** Bytes sent: frames with their headers, after compression (what goes on the wire before TLS). */
  bytesOut: number;
  /** Sends and publishes refused by the send budget (a publish's `dropped` also counts subscribers that are closing). */
  dropped: number;
  /** Connections closed by slowPolicy 'close'. */
  closedSlow: number;
  /** Connections closed because a ping went unanswered. */
  pingTimeouts: number;
  /** Connections failed for a protocol violation (1002 / 1007). */
  protocolErrors: number;
  /** Connections failed for a message over maxMessageSize (1009). */
  tooBig: number;
  /** Messages sent by wsPublish / wsBroadcast (one per subscriber reached). */
  published: number;
  /** Connections open now with permessage-deflate. */
  deflateConnections: number;
  /** Compressed messages received / sent (a publish counts once per subscriber). */
  compressedIn: number;
  compressedOut: number;
  /** Bytes compression saved on what was sent (a shared publish frame counts once). */
  compressSaved: number;
}

/**
 * A connection became a WebSocket (the 101 is out). Borrowed like every event: read what you
 * need during the handler call. The request's fields are those of the upgrade request.
 */
export interface WsOpenEvent {
  readonly type: 'WsOpen';
  readonly conn: ConnId;
  /** The listener that accepted the connection. */
  readonly endpoint: EndpointId | null;
  /** The request path, without the query ('' on a client connection: it made no request here). */
  readonly path: string;
  /** The query, without '?' ('' when none). */
  readonly query: string;
  /** The request-target as sent ('' on a client connection). */
  readonly target: string;
  /** The subprotocol chosen (one of the listener's `subprotocols`), or null when none was. */
  readonly subprotocol: string | null;
  /** The first field named `name` (case-insensitive), or null. */
  header(name: string): string | null;
  /** Every field as [name, value], in order. */
  headers(): [string, string][];
}

/**
 * An upgrade request waits for your answer (`handshake: 'manual'`): `io.wsAccept(ev.conn)`
 * or `io.wsReject(ev.conn, 401)`, now or later (keep `ev.conn`, not `ev`: events are borrowed).
 * The request stays readable during this handler call; a `WsOpen` with the same fields follows
 * the accept. `subprotocol` is the engine's choice from the listener's list; what the client
 * offered is `header('sec-websocket-protocol')`.
 */
export interface WsUpgradeEvent extends Omit<WsOpenEvent, 'type'> {
  readonly type: 'WsUpgrade';
}

/** Options of {@link Io.wsAccept}. */
export interface WsAcceptOptions {
  /** The subprotocol to answer with (one of the listener's `subprotocols`); default: the one the engine chose. */
  protocol?: string | null;
  /** Extra response fields of the 101 (e.g. a Set-Cookie). */
  headers?: Record<string, string>;
}

declare module '@zero-io/core' {
  interface IoHandle {
    /**
     * Publishes from any thread to a topic of the handle's shard (as `io.wsPublish` on it; the
     * message is copied into the command). With an IoCluster, call it on every shard's handle
     * (`IoHandle.from(info.handleId)` for each of `cluster.shards`) to reach every subscriber.
     * Returns nothing: the counts are the shard's (`wsStats`); a publish the shard cannot carry
     * out (no pool slot for the frame) comes back to it as `HandleRejected` (op 'wsPublish').
     * Throws PoolExhausted when the shard's command queue is full.
     */
    wsPublish(topic: string, data: Uint8Array | string, text?: boolean): void;
  }
  interface EventMap {
    WsOpen: WsOpenEvent;
    WsUpgrade: WsUpgradeEvent;
  }
  interface StreamFrameEvent {
    /**
     * The payload decoded as UTF-8 (a new string: yours to keep). For `WsText` messages, whose
     * UTF-8 the engine has checked.
     */
    readonly text: string;
    /**
     * WebSocket with `messageDelivery: 'pieces'`: whether this is the message's last piece
     * (always true for whole messages, and for TCP frames).
     */
    readonly final: boolean;
  }
  interface Io {
    /** Serves WebSocket on `"host:port"`, `"[v6]:port"` or a port, with the defaults of {@link WsListenConfig}. */
    wsListen(addr: string | number): EndpointId;
    /** Serves wss:// (needs `import '@zero-io/tcp'`, whose TlsServerConfig this takes). */
    wsListenTls(addr: string | number, tls: TlsServerConfig): EndpointId;
    /** Serves WebSocket with options. Requests that are not upgrades are answered 426. */
    wsListenWith(config: WsListenConfig): EndpointId;
    /**
     * Serves WebSocket upgrades on an `httpListen` listener (same port as your HTTP routes):
     * upgrade requests for `paths` become WebSockets, everything else stays HTTP. Needs
     * `@zero-io/http` for the listener; this package itself depends only on core.
     */
    wsServe(ep: EndpointId, config?: WsServeConfig): void;
    /**
     * Sends one message (`text`: a text message; a string is always sent as text — bytes sent
     * with `text: true` are not checked: invalid UTF-8 makes the peer close with 1007). Whole
     * or not at all, whatever its size. Never throws for a slow, closed or unknown connection:
     * see {@link WsSendStatus} (`'closed'` for an id that is gone). Throws InvalidConnId when
     * `conn` is an open connection that is not a WebSocket, InvalidArgument for data that is
     * neither a string nor a Uint8Array.
     */
    wsSend(conn: ConnId, data: Uint8Array | string, text?: boolean): WsSendStatus;
    /** Sends the bytes written into a SendBuffer (`buf.length` of them) as one message. */
    wsSendBuffer(conn: ConnId, buf: SendBuffer, text?: boolean): WsSendStatus;
    /**
     * Starts the close handshake (RFC 6455 section 7): our close frame with `code` (1000-1003,
     * 1007-1014, or 3000-4999 for applications) and a reason of at most 123 bytes; the connection closes when
     * the peer answers (or after `closeTimeoutMs`), and `Disconnected` reports the code. False
     * when it is closing or gone already.
     */
    wsClose(conn: ConnId, code?: number, reason?: string): boolean;
    /** Accepts a held upgrade (`WsUpgrade`): the 101 goes out and `WsOpen` follows. False when it is gone. */
    wsAccept(conn: ConnId, options?: WsAcceptOptions): boolean;
    /** Refuses a held upgrade with an HTTP status (and `reason` as its text body); the connection closes. */
    wsReject(conn: ConnId, status?: number, reason?: string): boolean;
    /** Bytes sent and not yet taken by the kernel (0 for a closed connection). */
    wsBufferedAmount(conn: ConnId): number;
    /** {@link Io.wsBufferedAmount} under the name of the browser's `WebSocket.bufferedAmount`. */
    bufferedAmount(conn: ConnId): number;
    /** Subscribes an open WebSocket to a topic of this shard; false when it was already subscribed, or is closing or gone. */
    wsSubscribe(conn: ConnId, topic: string): boolean;
    /** Unsubscribes; false when it was not subscribed. A closed connection leaves all its topics. */
    wsUnsubscribe(conn: ConnId, topic: string): boolean;
    /**
     * Sends one message to every subscriber of `topic` on this shard: the frame is built once,
     * in a pool slot, and queued by reference on each plaintext subscriber (a copy for TLS).
     * Each subscriber's send budget applies as to wsSend; the result counts the outcomes. The
     * frame takes a run of adjacent free pool slots: a message too large for the pool (about a
     * quarter of it is safe) throws PoolExhausted, and nothing is sent.
     */
    wsPublish(topic: string, data: Uint8Array | string | SendBuffer, text?: boolean): WsPublishResult;
    /**
     * The same fan-out to an explicit list of connections (any that are not open WebSockets count
     * as dropped). A SendBuffer (its `length` bytes) is framed once, as any data: one copy for
     * the whole list, none per connection.
     */
    wsBroadcast(conns: readonly ConnId[], data: Uint8Array | string | SendBuffer, text?: boolean): WsPublishResult;
    /** Subscribers of a topic on this shard. */
    wsSubscribers(topic: string): number;
    /** Counters of a WebSocket listener (null when `ep` serves no WebSocket). */
    wsStats(ep: EndpointId): WsStats | null;
    /**
     * Opens a WebSocket client connection to `ws://...` or `wss://...` (needs `import '@zero-io/tcp'`,
     * whose connect and TLS this uses). Returns its id at once: `Connected` follows the TCP (and
     * TLS) connect, `WsOpen` the server's 101 (its Sec-WebSocket-Accept checked); then
     * `StreamFrame` messages, `wsSend`, `wsClose` as on a server connection. A failed handshake
     * is a `Disconnected` with errorCode -1024 and the reason (e.g. `the server answered 403`).
     */
    wsConnect(url: string): ConnId;
    /** {@link Io.wsConnect} with options. */
    wsConnectWith(config: WsConnectConfig): ConnId;
  }
}

// ---- events ----

interface Cursor { _io(): Io; _base(): number }
type WsIo = Io & { _wsBuf?: Latin1Buffer; _wsResult?: WsPublishResult; _wsCounts?: Uint32Array };

function poolBuf(io: WsIo): Latin1Buffer {
  return (io._wsBuf ??= Buffer.from(io._pool) as Latin1Buffer);
}

/** The subprotocol lists of WebSocket listeners, by Io and endpoint. */
const protocolsOf = new WeakMap<Io, Map<number, readonly string[]>>();

function borrowExpired(): IoError {
  return new IoError('BorrowExpired',
    'a WsOpen / WsUpgrade / StreamFrame event was read after its handler call returned: events are borrowed (one reused object). ' +
    'Copy what you need during the call (const { conn } = ev; const path = ev.path).');
}
const subprotocol: PropertyDescriptor = {
  get(this: Cursor & { conn: ConnId }) {
    const io = this._io();
    const t = io._i32[this._base()];
    if (t !== EV_WS_OPEN && t !== EV_WS_UPGRADE) throw borrowExpired();
    return io._native.wsProtocol(io._shard, this.conn) || null;
  },
  configurable: true,
};
registerEventType(EV_WS_OPEN, 'WsOpen', { ...registerRecordEvent(EV_WS_OPEN), subprotocol });
registerEventType(EV_WS_UPGRADE, 'WsUpgrade', { ...registerRecordEvent(EV_WS_UPGRADE), subprotocol });
registerEventType(EV_STREAM_FRAME, 'StreamFrame', {
  final: {
    get(this: Cursor) {
      const io = this._io();
      const b = this._base();
      if (io._i32[b] !== EV_STREAM_FRAME) throw borrowExpired();
      return io._i32[b + 7] === 0;
    },
    configurable: true,
  },
  text: {
    get(this: Cursor) {
      const io = this._io() as WsIo;
      const b = this._base();
      if (io._i32[b] !== EV_STREAM_FRAME) throw borrowExpired();
      const off = io._u32[b + 4], len = io._u32[b + 5];
      return (poolBuf(io) as unknown as { utf8Slice(s: number, e: number): string }).utf8Slice(off, off + len);
    },
    configurable: true,
  },
});

// ---- Disconnected: the close code and its reason ----

const CODE_NAMES: Record<number, string> = {
  1000: 'normal closure', 1001: 'going away', 1002: 'protocol error', 1003: 'unsupported data',
  1005: 'no status code', 1006: 'abnormal closure', 1007: 'invalid payload data', 1008: 'policy violation',
  1009: 'message too big', 1010: 'mandatory extension', 1011: 'internal error', 1012: 'service restart',
  1013: 'try again later', 1015: 'TLS handshake failure',
};
const ORIGIN_WORDS = ['by us', 'by the peer', 'after an error', 'on a timeout'];
registerCloseReasonRange(1000, 4999, (io, conn, code) => {
  const { native, shard } = internalsOf(io);
  const info = native.wsCloseInfo(shard, conn);
  const name = CODE_NAMES[code] ?? (code >= 4000 ? 'application code' : code >= 3000 ? 'registered code' : 'code');
  if (info === null) return `WebSocket closed: ${code} (${name})`;
  const [, reason, errno, clean, origin] = info;
  const how = clean ? 'closed' : 'ended';
  const why = reason ? `: ${reason}` : '';
  const sys = errno > 0 ? ` (errno ${errno})` : '';
  return `WebSocket ${how} ${ORIGIN_WORDS[origin] ?? ''} with ${code} (${name})${why}${sys}`;
});

// ---- options ----


function pathList(v: unknown, what: string): string[] {
  const list = stringList(v, 'paths', what);
  for (const p of list) {
    if (!p.startsWith('/') || p.includes('?') || p.includes('#')) {
      throw new IoError('InvalidConfig', `${what}: each of paths is a request path that starts with '/' and has no query, got ${describeValue(p)}`, { key: 'paths' });
    }
  }
  return list;
}

function stringList(v: unknown, key: string, what: string, check?: (s: string) => boolean): string[] {
  if (v === undefined) return [];
  if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || s.length === 0 || (check !== undefined && !check(s)))) {
    throw new IoError('InvalidConfig', `${what}: ${key} must be a list of non-empty strings${check ? ' (see its TSDoc)' : ''}, got ${describeValue(v)}`, { key });
  }
  return [...v] as string[];
}

function messageOption(v: unknown, bound: number, what: string): number {
  if (typeof v === 'number' && Number.isInteger(v) && v > bound) {
    throw new IoError('InvalidConfig',
      `${what}: maxMessageSize ${v} is over ${bound}, a quarter of this Io's pool (messages are delivered whole, in pool slots): ` +
      'raise poolSlotCount or poolSlotSize in new Io({ ... })', { key: 'maxMessageSize' });
  }
  return intOption(v, Math.min(1 << 20, bound), 1, bound, 'maxMessageSize', what);
}

/** The largest maxMessageSize: a quarter of the pool, and a run of at most 65,535 slots. */
function messageBound(io: Io): number {
  return Math.floor(Math.min(io.config.poolSlotCount / 4, 65_535) * io.config.poolSlotSize);
}

function compressionOptions(io: Io, v: unknown, what: string, server: boolean): Record<string, number> {
  if (v === undefined || v === false) return { deflate: 0 };
  const o = (v === true ? {} : v) as WsCompressionOptions;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) {
    throw new IoError('InvalidConfig', `${what}: compression must be true, false or an options object, got ${describeValue(v)}`, { key: 'compression' });
  }
  rejectUnknownKeys(o, ['threshold', 'level', 'serverNoContextTakeover', 'clientNoContextTakeover', 'serverMaxWindowBits',
    'clientMaxWindowBits', 'memLevel', ...(server ? ['maxConnections'] : [])], `${what}({ compression })`);
  const bool = (x: unknown, d: boolean, key: string): number => (boolOption(x, d, `compression.${key}`, what) ? 1 : 0);
  return {
    deflate: 1,
    deflateMin: intOption(o.threshold, io.config.compressionThreshold, 0, 0x7fffffff, 'compression.threshold', what),
    deflateLevel: intOption(o.level, 3, 1, 9, 'compression.level', what),
    memLevel: intOption(o.memLevel, 8, 1, 9, 'compression.memLevel', what),
    serverNoContextTakeover: bool(o.serverNoContextTakeover, server, 'serverNoContextTakeover'),
    clientNoContextTakeover: bool(o.clientNoContextTakeover, false, 'clientNoContextTakeover'),
    serverMaxWindowBits: intOption(o.serverMaxWindowBits, 15, 9, 15, 'compression.serverMaxWindowBits', what),
    clientMaxWindowBits: intOption(o.clientMaxWindowBits, 15, 9, 15, 'compression.clientMaxWindowBits', what),
    deflateMaxConns: intOption(o.maxConnections, 10_000, 0, 0x7fffffff, 'compression.maxConnections', what),
  };
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const SERVE_KEYS = ['paths', 'allowedOrigins', 'subprotocols', 'maxMessageSize', 'idleTimeoutMs', 'pingIntervalMs',
  'closeTimeoutMs', 'sendHighWaterMark', 'maxBufferedBytes', 'slowPolicy', 'handshake', 'compression', 'messageDelivery',
  'maxFrameSize'] as const;

/** The options a server's and a client's connections share, validated. */
function connOptions(io: Io, config: WsServeConfig | WsConnectConfig, what: string): Record<string, number | string[]> {
  const delivery = config.messageDelivery ?? 'whole';
  if (delivery !== 'whole' && delivery !== 'pieces') {
    throw new IoError('InvalidConfig', `${what}: messageDelivery must be 'whole' or 'pieces', got ${describeValue(delivery)}`, { key: 'messageDelivery' });
  }
  const poolBound = delivery === 'pieces' ? Number.MAX_SAFE_INTEGER : messageBound(io);
  const maxBuffered = intOption(config.maxBufferedBytes, 1 << 20, 1, 0x7fffffff, 'maxBufferedBytes', what);
  const maxMessage = messageOption(config.maxMessageSize, poolBound, what);
  return {
    protocols: stringList(config.subprotocols, 'subprotocols', what, (s) => TOKEN.test(s)),
    maxMessage,
    maxWhole: messageBound(io),  // what can be delivered whole (a compressed message, in pieces mode too)
    maxFrame: intOption(config.maxFrameSize, maxMessage, 1, maxMessage, 'maxFrameSize', what),
    pingIntervalMs: intOption(config.pingIntervalMs, 30_000, 0, 86_400_000, 'pingIntervalMs', what),
    closeTimeoutMs: intOption(config.closeTimeoutMs, 5_000, 0, 3_600_000, 'closeTimeoutMs', what),
    sendMark: intOption(config.sendHighWaterMark, Math.min(65_536, maxBuffered), 0, maxBuffered, 'sendHighWaterMark', what),
    sendMax: maxBuffered,
    pieces: delivery === 'pieces' ? 1 : 0,
  };
}

function wsOptions(io: Io, config: WsServeConfig, what: string, only: boolean): Record<string, number | string[]> {
  const slow = config.slowPolicy ?? 'drop';
  if (slow !== 'drop' && slow !== 'close' && slow !== 'close-try-again') {
    throw new IoError('InvalidConfig', `${what}: slowPolicy must be 'drop', 'close' or 'close-try-again', got ${describeValue(slow)}`, { key: 'slowPolicy' });
  }
  const hs = config.handshake ?? 'auto';
  if (hs !== 'auto' && hs !== 'manual') {
    throw new IoError('InvalidConfig', `${what}: handshake must be 'auto' or 'manual', got ${describeValue(hs)}`, { key: 'handshake' });
  }
  return {
    ...connOptions(io, config, what),
    ...compressionOptions(io, config.compression, what, true),
    paths: pathList(config.paths, what),
    origins: stringList(config.allowedOrigins, 'allowedOrigins', what),
    idleTimeoutMs: intOption(config.idleTimeoutMs, 0, 0, 86_400_000, 'idleTimeoutMs', what),
    slowClose: slow === 'drop' ? 0 : 1,
    slowCode: slow === 'close-try-again' ? 1013 : 1008,
    only: only ? 1 : 0,
    manual: hs === 'manual' ? 1 : 0,
  };
}

function enable(io: Io, ep: EndpointId, opts: Record<string, number | string[]>, what: string): void {
  const { native, shard } = internalsOf(io);
  const r = native.wsEnable(shard, ep, opts);
  if (r === ERR.NOT_HTTP) {
    throw new IoError('InvalidArgument', `${what}: endpoint ${ep} is not an HTTP listener (make it one first: io.httpListen / httpListenWith, or io.httpServe(ep) for a listener you have, such as an IoCluster shard's member — from @zero-io/http; or use io.wsListen)`);
  }
  if (r < 0) throw new IoError('InvalidConnId', `${what}: endpoint ${ep} is closed or was never opened`);
  let m = protocolsOf.get(io);
  if (m === undefined) protocolsOf.set(io, m = new Map());
  m.set(ep, opts.protocols as string[]);
}

// ---- listening ----

Io.prototype.wsListenWith = function wsListenWith(this: Io, config: WsListenConfig): EndpointId {
  const what = 'wsListenWith';
  rejectUnknownKeys(config, [...SERVE_KEYS, 'host', 'port', 'backlog', 'reusePort', 'tls', 'maxHeaderSize', 'requestTimeoutMs'], what);
  const addr = listenOptions(config, what);
  const opts = wsOptions(this, config, what, true);
  const headerBytes = intOption(config.maxHeaderSize, 16_384, 64, 65_535, 'maxHeaderSize', what);
  const { ep, attachTls } = openListener(this, addr, config.tls, what, 'wsListen', 'wss://');
  const { native, shard, check } = internalsOf(this);
  try {
    const r = native.httpEnable(shard, ep, {
      headerCount: 100, headerBytes, targetBytes: Math.min(8192, headerBytes), bodyInline: 0, bodyMax: 0,
      requestTimeoutMs: intOption(config.requestTimeoutMs, 10_000, 0, 3_600_000, 'requestTimeoutMs', what),
      keepAliveTimeoutMs: 5_000, pipeline: 1, http2: 0, compressOrder: [],
    });
    check(r, what);
    enable(this, ep, opts, what);
    if (config.tls !== undefined) {
      const tls = config.tls;
      attachTls!(this, ep, tls.alpn === undefined ? { ...tls, alpn: ['http/1.1'] } : tls);
    }
  } catch (e) {
    this.closeEndpoint(ep);
    throw e;
  }
  return ep;
};

Io.prototype.wsListen = function wsListen(this: Io, addr: string | number): EndpointId {
  const { host, port } = parseHostPort(addr, 'wsListen');
  return this.wsListenWith({ host, port });
};

Io.prototype.wsListenTls = function wsListenTls(this: Io, addr: string | number, tls: TlsServerConfig): EndpointId {
  return this.wsListenWith(listenTlsArgs(addr, tls, 'wsListenTls'));
};

Io.prototype.wsServe = function wsServe(this: Io, ep: EndpointId, config: WsServeConfig = {}): void {
  rejectUnknownKeys(config, SERVE_KEYS, 'wsServe');
  if (protocolsOf.get(this)?.has(ep)) {
    throw new IoError('InvalidArgument', `wsServe: endpoint ${ep} serves WebSocket already; give all its paths in one call (paths: ['/a', '/b'])`);
  }
  enable(this, ep, wsOptions(this, config, 'wsServe', false), 'wsServe');
};

// ---- connecting ----

Io.prototype.wsConnectWith = function wsConnectWith(this: Io, config: WsConnectConfig): ConnId {
  const what = 'wsConnectWith';
  rejectUnknownKeys(config, ['url', 'subprotocols', 'headers', 'origin', 'tls', 'connectTimeoutMs', 'handshakeTimeoutMs',
    'maxMessageSize', 'pingIntervalMs', 'closeTimeoutMs', 'sendHighWaterMark', 'maxBufferedBytes', 'compression', 'messageDelivery',
    'maxFrameSize'], what);
  let url: URL;
  try {
    url = new URL(config.url);
  } catch {
    throw new IoError('InvalidAddress', `${what}: url must be a ws:// or wss:// URL, got ${describeValue(config.url)}`, { address: String(config.url) });
  }
  if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new IoError('InvalidAddress', `${what}: url must be a ws:// or wss:// URL, got ${describeValue(config.url)}`, { address: String(config.url) });
  }
  const secure = url.protocol === 'wss:';
  const connect = (this as unknown as { tcpConnectWith?: (c: object) => ConnId }).tcpConnectWith;
  if (typeof connect !== 'function') {
    throw new IoError('FeatureMissing', `${what}: connecting uses @zero-io/tcp (its Happy Eyeballs and TLS); install it and import '@zero-io/tcp'`, { feature: 'tcp' });
  }
  const extra: string[] = [];
  const field = (k: string, v: unknown) => {
    if (!TOKEN.test(k) || typeof v !== 'string' || /[\r\n\0]/.test(v)) {
      throw new IoError('InvalidArgument', `${what}: header ${describeValue(k)} must be a token with a string value free of CR, LF and NUL`);
    }
    extra.push(`${k}: ${v}\r\n`);
  };
  if (config.origin !== undefined) field('Origin', config.origin);
  for (const [k, v] of Object.entries(config.headers ?? {})) {
    if (/^(host|upgrade|connection|sec-websocket-(key|version|protocol|extensions))$/i.test(k)) {
      throw new IoError('InvalidArgument', `${what}: header ${k} is written by the handshake itself`);
    }
    field(k, v);
  }
  const opts = {
    ...connOptions(this, config, what),
    ...compressionOptions(this, config.compression, what, false),
    handshakeTimeoutMs: intOption(config.handshakeTimeoutMs, 10_000, 0, 3_600_000, 'handshakeTimeoutMs', what),
  };
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port ? Number(url.port) : secure ? 443 : 80;
  const conn = connect.call(this, {
    host, port,
    ...(secure ? { tls: config.tls ?? true } : {}),
    ...(config.connectTimeoutMs !== undefined ? { connectTimeoutMs: config.connectTimeoutMs } : {}),
  });
  const { native, shard } = internalsOf(this);
  const r = native.wsClientStart(shard, conn, opts, url.host, (url.pathname || '/') + url.search, extra.join(''));
  if (r < 0) {
    this.close(conn);
    throw new IoError('InvalidConnId', `${what}: the connection could not start its handshake (code ${r})`);
  }
  return conn;
};

Io.prototype.wsConnect = function wsConnect(this: Io, url: string): ConnId {
  return this.wsConnectWith({ url });
};

registerCloseReason(ERR.WS_HANDSHAKE, (io, conn) => {
  const info = internalsOf(io).native.wsCloseInfo(internalsOf(io).shard, conn);
  return `WebSocket handshake failed: ${info?.[1] || 'no answer'}`;
});

// ---- sending and closing ----

const STATUS: WsSendStatus[] = ['dropped', 'sent', 'queued'];

function sendResult(r: number, conn: ConnId, what: string): WsSendStatus {
  if (r >= 0) return STATUS[r];
  if (r === ERR.STALE || r === ERR.CLOSING) return 'closed';
  if (r === ERR.NOT_WS) throw new IoError('InvalidConnId', `${what}: connection ${conn} is not a WebSocket (not upgraded, or accepted on a listener that serves no WebSocket)`);
  throw new IoError('InvalidArgument', `${what}: failed with code ${r}`);
}

function badSend(what: string, conn: unknown, data: unknown): never {
  if (typeof conn !== 'number') throw new IoError('InvalidArgument', `${what}: conn must be a connection id (a number from an event), got ${describeValue(conn)}`);
  throw new IoError('InvalidArgument', `${what}: a message must be a string or a Uint8Array (or Buffer), got ${describeValue(data)}`);
}

Io.prototype.wsSend = function wsSend(this: Io, conn: ConnId, data: Uint8Array | string, text = false): WsSendStatus {
  const isText = typeof data === 'string';
  if ((!isText && !(data instanceof Uint8Array)) || typeof conn !== 'number') badSend('wsSend', conn, data);
  return sendResult(this._native.wsSend(this._shard, conn, data, isText || text === true), conn, 'wsSend');
};

Io.prototype.wsSendBuffer = function wsSendBuffer(this: Io, conn: ConnId, buf: SendBuffer, text = false): WsSendStatus {
  if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', `wsSendBuffer: expected a SendBuffer (io.sendBuffer(n)), got ${describeValue(buf)}`);
  return sendResult(this._native.wsSend(this._shard, conn, buf.bytes.subarray(0, buf.length), text === true), conn, 'wsSendBuffer');
};

function closeCode(code: unknown, what: string): number {
  if (typeof code !== 'number' || !Number.isInteger(code) ||
      !(code === 1000 || (code >= 1001 && code <= 1003) || (code >= 1007 && code <= 1014) || (code >= 3000 && code <= 4999))) {
    throw new IoError('InvalidArgument', `${what}: code must be 1000-1003, 1007-1014 or 3000-4999 (RFC 6455 section 7.4), got ${describeValue(code)}`);
  }
  return code;
}

Io.prototype.wsClose = function wsClose(this: Io, conn: ConnId, code = 1000, reason = ''): boolean {
  closeCode(code, 'wsClose');
  if (typeof reason !== 'string' || Buffer.byteLength(reason) > 123) {
    throw new IoError('InvalidArgument', `wsClose: reason must be a string of at most 123 bytes (a close frame holds 125), got ${describeValue(reason)}`);
  }
  const r = this._native.wsClose(this._shard, conn, code, reason);
  if (r === 0) return true;
  if (r === ERR.STALE || r === ERR.CLOSING) return false;
  if (r === ERR.NOT_WS) throw new IoError('InvalidConnId', `wsClose: connection ${conn} is not an open WebSocket`);
  return internalsOf(this).check(r, 'wsClose') >= 0;
};

Io.prototype.wsAccept = function wsAccept(this: Io, conn: ConnId, options: WsAcceptOptions = {}): boolean {
  rejectUnknownKeys(options, ['protocol', 'headers'], 'wsAccept');
  const { native, shard } = internalsOf(this);
  let proto = -2;
  if (options.protocol === null) proto = -1;
  else if (options.protocol !== undefined) {
    const ep = native.connEndpoint(shard, conn);
    const list = ep < 0 ? undefined : protocolsOf.get(this)?.get(ep);
    proto = list?.indexOf(options.protocol) ?? -1;
    if (proto < 0) throw new IoError('InvalidArgument', `wsAccept: protocol ${describeValue(options.protocol)} is not one of the listener's subprotocols`);
  }
  const fields: string[] = [];
  for (const [k, v] of Object.entries(options.headers ?? {})) {
    if (!TOKEN.test(k) || typeof v !== 'string' || /[\r\n\0]/.test(v)) {
      throw new IoError('InvalidArgument', `wsAccept: header ${describeValue(k)} must be a token with a string value free of CR, LF and NUL`);
    }
    fields.push(k, v);
  }
  const r = native.wsAccept(shard, conn, proto, fields);
  if (r === 0) return true;
  if (r === ERR.STALE || r === ERR.CLOSING) return false;
  throw new IoError('InvalidConnId', `wsAccept: connection ${conn} has no upgrade waiting (handshake: 'manual' listeners only, once)`);
};

Io.prototype.wsReject = function wsReject(this: Io, conn: ConnId, status = 403, reason = 'refused'): boolean {
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 400 || status > 599) {
    throw new IoError('InvalidArgument', `wsReject: status must be a 4xx or 5xx code, got ${describeValue(status)}`);
  }
  const r = internalsOf(this).native.wsReject(this._shard, conn, status, String(reason).replace(/[\r\n\0]/g, ' '));
  if (r === 0) return true;
  if (r === ERR.STALE || r === ERR.CLOSING) return false;
  throw new IoError('InvalidConnId', `wsReject: connection ${conn} has no upgrade waiting`);
};

Io.prototype.wsBufferedAmount = function wsBufferedAmount(this: Io, conn: ConnId): number {
  const r = this._native.wsBuffered(this._shard, conn);
  return r < 0 ? 0 : r;
};
Io.prototype.bufferedAmount = Io.prototype.wsBufferedAmount;

// ---- pub/sub ----

function subscribe(io: Io, conn: ConnId, topic: string, on: boolean, what: string): boolean {
  if (typeof topic !== 'string' || topic.length === 0) throw new IoError('InvalidArgument', `${what}: topic must be a non-empty string, got ${describeValue(topic)}`);
  const r = io._native.wsSubscribe(io._shard, conn, topic, on);
  if (r >= 0) return r === 1;
  if (r === ERR.STALE || r === ERR.CLOSING) return false;
  throw new IoError('InvalidConnId', `${what}: connection ${conn} is not an open WebSocket`);
}

Io.prototype.wsSubscribe = function wsSubscribe(this: Io, conn: ConnId, topic: string): boolean {
  return subscribe(this, conn, topic, true, 'wsSubscribe');
};
Io.prototype.wsUnsubscribe = function wsUnsubscribe(this: Io, conn: ConnId, topic: string): boolean {
  return subscribe(this, conn, topic, false, 'wsUnsubscribe');
};

function fanResult(io: WsIo, r: number, what: string): WsPublishResult {
  if (r === ERR.POOL_EXHAUSTED) {
    throw new IoError('PoolExhausted', `${what}: no free pool slots for the frame (raise poolSlotCount, or publish smaller messages)`);
  }
  const c = io._wsCounts!;
  const out = (io._wsResult ??= { subscribers: 0, sent: 0, queued: 0, dropped: 0 });
  out.subscribers = r;
  out.sent = c[1];
  out.queued = c[2];
  out.dropped = c[0];
  return out;
}

/** A SendBuffer's written bytes (the frame is built from them once). */
function bytesOf(data: Uint8Array | string | SendBuffer): Uint8Array | string {
  return data instanceof SendBuffer ? data.bytes.subarray(0, data.length) : data;
}

Io.prototype.wsPublish = function wsPublish(this: Io, topic: string, d: Uint8Array | string | SendBuffer, text = false): WsPublishResult {
  if (typeof topic !== 'string') throw new IoError('InvalidArgument', `wsPublish: topic must be a string, got ${describeValue(topic)}`);
  const data = bytesOf(d);
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) badSend('wsPublish', 0, data);
  const io = this as WsIo;
  const counts = (io._wsCounts ??= new Uint32Array(3));
  const r = this._native.wsPublish(this._shard, topic, data, typeof data === 'string' || text === true, counts);
  return fanResult(io, r, 'wsPublish');
};

Io.prototype.wsBroadcast = function wsBroadcast(this: Io, conns: readonly ConnId[], d: Uint8Array | string | SendBuffer, text = false): WsPublishResult {
  const data = bytesOf(d);
  if (!Array.isArray(conns)) throw new IoError('InvalidArgument', `wsBroadcast: conns must be an array of connection ids, got ${describeValue(conns)}`);
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) badSend('wsBroadcast', 0, data);
  const io = this as WsIo;
  const counts = (io._wsCounts ??= new Uint32Array(3));
  const ids = Float64Array.from(conns as number[]);
  const r = this._native.wsBroadcast(this._shard, ids, data, typeof data === 'string' || text === true, counts);
  return fanResult(io, r, 'wsBroadcast');
};

const utf8 = new TextEncoder();
IoHandle.prototype.wsPublish = function wsPublish(this: IoHandle, topic: string, data: Uint8Array | string, text = false): void {
  if (typeof topic !== 'string' || topic.length === 0) throw new IoError('InvalidArgument', `IoHandle.wsPublish: topic must be a non-empty string, got ${describeValue(topic)}`);
  if (typeof data !== 'string' && !(data instanceof Uint8Array)) badSend('IoHandle.wsPublish', 0, data);
  const t = utf8.encode(topic);
  const d = typeof data === 'string' ? utf8.encode(data) : data;
  const buf = new Uint8Array(t.length + d.length);
  buf.set(t, 0);
  buf.set(d, t.length);
  const r = this._push(OP.WS_PUBLISH, 0, (t.length * 2) + (typeof data === 'string' || text === true ? 1 : 0), buf);
  if (r !== 0) pushFailed(r, 'wsPublish');
};

Io.prototype.wsSubscribers = function wsSubscribers(this: Io, topic: string): number {
  return this._native.wsTopicCount(this._shard, String(topic));
};

Io.prototype.wsStats = function wsStats(this: Io, ep: EndpointId): WsStats | null {
  const r = this._native.wsStats(this._shard, ep) as WsStats | number | null;
  return typeof r === 'object' ? r : null;
};

export { Io };
