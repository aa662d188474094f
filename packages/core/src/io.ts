/**
 * Io: one shard. Owns its sockets, the io_uring ring, the payload pool and the connection
 * table. Single-threaded and bound to the thread (or worker) that created it.
 * @module
 */
import { ERR, HANDLE_OPS, loadAddon, type NativeAddon, type NativeGauge, type ProbeInfo } from './addon.js';
import { resolveConfig, type Config, type ResolvedConfig } from './config.js';
import { UdpAddress, formatHostPort } from './address.js';
import type { MulticastGroup, UdpEndpointConfig, UdpEndpointStats, UdpTarget } from './udp.js';
import type { SendBuffer } from './send-buffer.js';
import type { IoHandle } from './handle.js';
import type { OwnedSlot } from './owned-slot.js';
import { IoError, describeValue, errnoDescription, fromNative, isIoError } from './errors.js';
import { rejectUnknownKeys } from './address.js';
import { engineErrors, failureHooks, packageCloseReason, protocolCloseReason } from './extensions.js';
import {
  EVENT_WORDS, EV_CONNECTED, EV_TLS_READY, EV_DISCONNECTED, EV_STREAM_FRAME, EV_UDP_RECV, EV_HANDLE_REJECTED, EV_POOL_PRESSURE,
  EV_PEER_ENDED, EV_WRITABLE,
  PRESSURE_POOLS, PRESSURE_STATES, type PressurePool, type PressureState,
  type CloseOrigin, type ConnId, type EndpointId, type Event, type MessageKind, type Protocol, type SocketAddress,
} from './events.js';

const ERR_STALE = ERR.STALE;
/** native/binding/addon.cc kEndpointTag: endpoint ids are tagged, so they never name a connection. */
const ENDPOINT_TAG = 2 ** 44;
const ERR_CLOSING = ERR.CLOSING;
const ERR_TABLE_FULL = ERR.TABLE_FULL;
/** errorCode used when name resolution fails before any connect attempt (libuv's UV_EAI_NONAME). */
export const ERR_NAME_NOT_FOUND = 3008;

const protocols: Protocol[] = ['tcp', 'tcp', 'uds', 'tcp', 'quic'];
/** native MessageKind numbers (native/shard/shard.h) -> names. */
const kinds: MessageKind[] = ['Binary', 'WsText', 'WsBinary', 'MqttPacket', 'GrpcFrame', 'FixText', 'Sbe', 'User'];
const origins: CloseOrigin[] = ['local', 'peer', 'error', 'timeout'];

export type { PoolGauge, PoolStats, ConnStats, TlsInfo, PoolPressureInfo } from './stats.js';
import type { PoolGauge, PoolStats, ConnStats, TlsInfo, PoolPressureInfo } from './stats.js';

/** Options of {@link Io.runSync}. */
export interface RunSyncOptions {
  /**
   * Called when the handler throws; the batch goes on with the next event.
   * @default logs the error and the event type to stderr
   */
  onError?: (error: unknown, event: Event) => void;
}

/** Stops a running driver. */
export interface ShutdownHandle {
  /**
   * Stops accepting, closes every connection gracefully (pending writes are flushed, up to
   * `timeoutMs`), then stops the driver. Resolves when done. Idempotent.
   */
  shutdown(options?: { timeoutMs?: number }): Promise<void>;
  /** Stops the driver at once, leaving connections open (poll() may be used again). */
  stop(): void;
}

/** @internal what protocol packages may reach (via `@zero-io/core/internal`). */
export interface IoInternals {
  readonly native: NativeAddon;
  readonly shard: number;
  /** Converts a negative native result into a thrown IoError / a number. */
  check(result: number, what: string): number;
  /**
   * STARTTLS: StreamFrames of `conn` still queued in the current batch were received as
   * plaintext before the upgrade; nextEvent() skips them.
   */
  dropFrames(conn: ConnId): void;
  /** A connect's host name did not resolve: the Disconnected reason names it. */
  noteFailedHost(conn: ConnId, host: string): void;
}

const internalsMap = new WeakMap<Io, IoInternals>();
/** @internal */
export function internalsOf(io: Io): IoInternals {
  const i = internalsMap.get(io);
  if (!i) {
    if (io instanceof Io && io.closed) throw new IoError('ShardClosed', 'this Io was shut down; create a new Io');
    throw new IoError('InvalidArgument', 'not an Io: call this on an instance made with new Io()');
  }
  return i;
}

/** The InvalidConnId message for an endpoint id that is closed or never existed. */
function endpointGone(what: string, endpoint: EndpointId): string {
  return `${what}: endpoint ${endpoint} is closed (closeEndpoint was called) or was never opened. ` +
    'Drop an endpoint id once you close it.';
}

/** Event names by native record type; protocol packages add theirs with registerEventType. */
const eventNames: string[] = [];
eventNames[EV_STREAM_FRAME] = 'StreamFrame';
eventNames[EV_UDP_RECV] = 'UdpRecv';
eventNames[EV_CONNECTED] = 'Connected';
eventNames[EV_DISCONNECTED] = 'Disconnected';
eventNames[EV_HANDLE_REJECTED] = 'HandleRejected';
eventNames[EV_POOL_PRESSURE] = 'PoolPressure';
eventNames[EV_TLS_READY] = 'TlsReady';
eventNames[EV_PEER_ENDED] = 'PeerEnded';
eventNames[EV_WRITABLE] = 'Writable';

/** Which word of a record holds its stream id (QUIC), by record type; 0: none (stream 0). */
const streamWords: number[] = [];
streamWords[EV_STREAM_FRAME] = 6;
streamWords[EV_WRITABLE] = 6;

/**
 * @internal For protocol packages: a native event record type, its name, and the fields it
 * adds to the flyweight (getters that read the record through `this._record()`).
 */
export function registerEventType(code: number, name: string, fields: PropertyDescriptorMap, streamWord?: number): void {
  eventNames[code] = name;
  if (streamWord !== undefined) streamWords[code] = streamWord;
  for (const [key, d] of Object.entries(fields)) {
    if (!Object.prototype.hasOwnProperty.call(EventCursor.prototype, key)) Object.defineProperty(EventCursor.prototype, key, d);
  }
}

/**
 * The flyweight behind every event of one Io. Fields are decoded from the shared event ring;
 * `data`, `peer` and `reason` are built only when read.
 */
class EventCursor {
  type: Event['type'] = 'Writable';
  conn = 0 as ConnId;
  stream = 0;
  kind: MessageKind = 'Binary';
  length = 0;
  errorCode = 0;
  #io: Io;
  #base = 0;
  constructor(io: Io) {
    this.#io = io;
  }
  /** @internal */
  load(i32: Int32Array, base: number): void {
    this.#base = base;
    const t = i32[base];
    this.conn = (i32[base + 2] * 1048576 + i32[base + 1]) as ConnId;
    this.type = (eventNames[t] ?? 'Writable') as Event['type'];
    this.length = i32[base + 5] >>> 0;
    this.errorCode = i32[base + 6];
    // QUIC: a StreamFrame / Writable names its stream in the code word (0 for TCP, UDS, WebSocket)
    const sw = streamWords[t];
    this.stream = sw ? i32[base + sw] : 0;
    if (t === EV_STREAM_FRAME) this.kind = kinds[i32[base + 3]] ?? 'User';
  }
  get offset(): number {
    return this.#io._u32[this.#base + 4];
  }
  /** @internal the Io and the record's first word in its event ring (protocol packages' getters) */
  _record(): { io: Io; base: number } {
    return { io: this.#io, base: this.#base };
  }
  /** @internal */
  _io(): Io {
    return this.#io;
  }
  /** @internal */
  _base(): number {
    return this.#base;
  }
  get data(): Uint8Array {
    const u32 = this.#io._u32;
    return new Uint8Array(this.#io._pool, u32[this.#base + 4], u32[this.#base + 5]);
  }
  get endpoint(): EndpointId | null {
    // Endpoint ids carry a tag (2^44) that keeps them apart from connection ids.
    if (this.type === 'UdpRecv') return (this.conn + ENDPOINT_TAG) as EndpointId;
    if (this.type === 'Connected') {
      const aux = this.#io._i32[this.#base + 7];
      return aux < 0 ? null : ((ENDPOINT_TAG + this.#io._u32[this.#base + 4] * 1048576 + aux) as EndpointId);
    }
    // Other connection events: the connection knows its listener (valid through this batch).
    const r = this.#io._native.connEndpoint(this.#io._shard, this.conn);
    return r < 0 ? null : (r as EndpointId);
  }
  /** @internal where the sender's sockaddr of a UdpRecv sits in the pool */
  get _fromOffset(): number {
    return this.#io._u32[this.#base + 4] - this.#io._i32[this.#base + 7];
  }
  get from(): UdpAddress {
    const at = this._fromOffset;
    const pool = this.#io.poolBytes;
    return new UdpAddress(pool.slice(at, at + (pool[at] === 2 ? 16 : 28)));
  }
  get truncated(): boolean {
    return this.type === 'UdpRecv' && this.errorCode === 1;
  }
  get segmentSize(): number {
    return this.type === 'UdpRecv' ? this.#io._i32[this.#base + 3] : 0;
  }
  get protocol(): Protocol {
    return protocols[this.#io._i32[this.#base + 3]] ?? 'tcp';
  }
  get origin(): CloseOrigin {
    return origins[this.#io._i32[this.#base + 7]] ?? 'error';
  }
  get state(): PressureState {
    return PRESSURE_STATES[this.errorCode] ?? 'Healthy';
  }
  get previous(): PressureState {
    return PRESSURE_STATES[this.#io._i32[this.#base + 7]] ?? 'Healthy';
  }
  get utilizationPct(): number {
    return this.length;
  }
  get pool(): PressurePool {
    return PRESSURE_POOLS[this.#io._i32[this.#base + 3]] ?? 'fillRing';
  }
  get op(): string {
    return HANDLE_OPS[this.#io._i32[this.#base + 3]] ?? 'unknown';
  }
  get tls(): boolean {
    return this.type === 'Connected' && (this.errorCode & 1) === 1;
  }
  get error(): IoError | null {
    const code = this.errorCode;
    if (this.type === 'Disconnected' && code === ERR.CONNECT_TIMEOUT) {
      return new IoError('ConnectTimeout', `connect timed out: no connection within connectTimeoutMs${this.#target()}`);
    }
    if (this.type !== 'Disconnected' || code > ERR.TLS_HANDSHAKE || code < ERR.TLS_TIMEOUT) return null;
    const t = this.#io.tlsInfo(this.conn);
    const fields = { alert: t?.alert ?? -1, alertReceived: t?.alertReceived ?? false };
    if (code === ERR.TLS_TIMEOUT) return new IoError('TlsHandshakeFailed', 'TLS handshake timed out (handshakeTimeoutMs)', fields);
    if (code === ERR.TLS_HANDSHAKE) return new IoError('TlsHandshakeFailed', `TLS handshake failed: ${t?.reason || 'unknown reason'}`, fields);
    return new IoError('TlsProtocolError', `TLS error: ${t?.reason || 'unknown reason'}`, fields);
  }
  get reason(): string {
    const code = this.errorCode;
    if (this.type === 'Disconnected' && (code <= ERR.TLS_HANDSHAKE && code >= ERR.TLS_TIMEOUT || code === ERR.CONNECT_TIMEOUT)) {
      return this.error!.message;
    }
    if (this.type === 'HandleRejected') {
      return code === ERR_STALE ? 'the connection is closed (stale id)'
        : code === ERR_CLOSING ? 'the connection is closing'
          : code === ERR.QUEUE_FULL ? 'the connection\'s write queue has no room for the whole write (maxWriteQueueBytes)'
            : code === ERR.POOL_EXHAUSTED && this.op === 'wsPublish' ? 'no run of free pool slots for the published frame (a message too large for the pool, or the pool is in use)'
          : code === ERR.POOL_EXHAUSTED ? "no pool slots for the whole write now (the pool is out of free slots, or the write is over this connection's share of the bulk-TX budget)"
              : code === ERR.WRONG_KIND ? 'the SendBuffer was released before the shard took it'
                : errnoDescription(-code);
    }
    const own = this.type !== 'Disconnected' ? undefined
      : protocolCloseReason(this.#io, this.conn, this.#io._i32[this.#base + 3], code, this.origin) ?? packageCloseReason(this.#io, this.conn, code);
    if (own !== undefined) return own + this.#target();
    if (code === 0) return this.origin === 'peer' ? 'closed by peer' : this.origin === 'timeout' ? 'closed locally (idle timeout)' : 'closed locally';
    if (code === ERR_NAME_NOT_FOUND) {
      const host = this.#io._failedHost(this.conn);
      return host === undefined ? 'ENOTFOUND: name resolution failed' : `ENOTFOUND: name resolution failed for ${host}`;
    }
    const what = this.origin === 'timeout' ? `${errnoDescription(code)} (graceful close timed out)` : errnoDescription(code);
    return this.type === 'Disconnected' ? what + this.#target() : what;
  }
  /** ' (connect to 127.0.0.1:9)' / ' (peer [::1]:5000)': the other end, as node:net names it; '' when unknown. */
  #target(): string {
    const p = this.peer;
    if (p === null) return '';
    const at = p.family === 'unix' ? p.address || 'an unnamed socket' : formatHostPort(p.address, p.port);
    return ` (${this.#io._u32[this.#base + 4] === 1 ? 'connect to' : 'peer'} ${at})`;
  }
  get peer(): SocketAddress | null {
    return this.#io.peerAddress(this.conn);
  }
}

/**
 * One shard: `new Io(config)`, then either drive it yourself (`poll()` + `nextEvent()`) or let
 * {@link Io.runSync} drive it from Node's event loop.
 *
 * @example
 * ```ts
 * const io = new Io();
 * io.tcpListen('127.0.0.1:7001');            // from @zero-io/tcp
 * io.runSync((ev) => { if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data); });
 * ```
 */
export class Io {
  /** The resolved, frozen configuration. */
  readonly config: ResolvedConfig;
  /** The active backend: what `config.backend` asked for, or what `'auto'` chose. */
  readonly backend: 'io_uring' | 'epoll';
  /** Why `'auto'` fell back to epoll (e.g. "io_uring_setup failed: Operation not permitted"); '' otherwise. */
  readonly backendReason: string;
  /**
   * One long-lived view over the whole slot pool. Payload ranges in it (`ev.offset`,
   * `ev.length`) are borrowed like `ev.data`; reading through this view allocates nothing.
   */
  readonly poolBytes: Uint8Array;
  /** @internal */ _pool: ArrayBuffer;
  /** @internal */ _i32: Int32Array;
  /** @internal */ _u32: Uint32Array;
  /** @internal the addon, for core's own modules (udp.ts) */ readonly _native: NativeAddon;
  /** @internal */ readonly _shard: number;
  #native: NativeAddon;
  #shard: number;
  #count = 0;
  #next = 0;
  #dropped: Set<number> | null = null;
  // Host names whose resolution failed (for the ENOTFOUND reason): noted by the connect, read in
  // the Disconnected batch that follows, forgotten one batch later.
  #failedHosts: Map<number, string> | null = null;
  #failedHostsOld: Map<number, string> | null = null;
  // debug.checkBorrows: the current event's sequence number, and the payload copies of this batch.
  #borrowSeq = 0;
  #borrowCopies: ArrayBuffer[] | null = null;
  #cursor: EventCursor;
  #backing: string;
  #driving = false;
  #closed = false;
  /** Endpoints closeEndpoint() was called on whose close the engine has not finished yet. */

  /** Creates a shard: maps the pool, opens the ring. Throws {@link IoError} (KernelTooOld, NotSupportedOnBackend, InvalidConfig, ...). */
  constructor(config: Config = {}) {
    this.config = resolveConfig(config);
    this.#native = loadAddon();
    const c = this.config;
    try {
      this.#shard = this.#native.createShard({
        poolSlotCount: c.poolSlotCount, poolSlotSize: c.poolSlotSize, hugePages: c.hugePages,
        maxConnections: c.maxConnections, maxEventsPerPoll: c.maxEventsPerPoll,
        poolPressurePct: c.poolPressurePct, maxWriteQueueBytes: c.maxWriteQueueBytes,
        maxEndpoints: c.maxEndpoints, sqEntries: c.uring.sqEntries, deferTaskrun: c.uring.deferTaskrun,
        noDelay: c.noDelay, handleQueue: c.handleQueue, backend: c.backend, udpGroBuffers: c.udpGroBuffers,
      });
    } catch (e) {
      throw fromNative(e, 'new Io()');
    }
    this._native = this.#native;
    this._shard = this.#shard;
    const b = this.#native.buffers(this.#shard);
    this._pool = b.pool;
    this.poolBytes = new Uint8Array(b.pool);
    this._i32 = new Int32Array(b.events);
    this._u32 = new Uint32Array(b.events);
    this.#backing = b.backing;
    this.backend = b.backend === 'epoll' ? 'epoll' : 'io_uring';
    this.backendReason = b.backendReason;
    this.#cursor = new EventCursor(this);
    const native = this.#native;
    const shard = this.#shard;
    internalsMap.set(this, {
      native, shard,
      check: (r: number, what: string) => this.#check(r, what),
      dropFrames: (conn: ConnId) => {
        (this.#dropped ??= new Set()).add(conn);
      },
      noteFailedHost: (conn: ConnId, host: string) => {
        (this.#failedHosts ??= new Map()).set(conn, host);
      },
    });
    if (c.debug.log) {
      const why = b.backendReason ? ` (auto fell back: ${b.backendReason})` : '';
      process.stderr.write(`zero-io: shard ${shard} backend=${this.backend}${why} pool=${c.poolSlotCount}x${c.poolSlotSize} (${b.backing}, ${b.rxSlots} RX) ring flags=0x${b.setupFlags.toString(16)}\n`);
    }
  }

  /** Reports what the running kernel offers (no shard needed). */
  static probe(): ProbeInfo {
    return loadAddon().probe();
  }

  /** The engine features compiled into the loaded addon (e.g. ['tcp']). */
  static features(): string[] {
    return loadAddon().features();
  }

  #check(r: number, what: string): number {
    if (r >= 0) return r;
    if (r === ERR_STALE) {
      throw new IoError('InvalidConnId', `${what}: the id is closed or was never opened (a stale id after Disconnected?), or is not a connection id (an endpoint id, or not a number). Drop ids when their Disconnected event arrives.`);
    }
    if (r === ERR_CLOSING) return 0;
    if (r === ERR_TABLE_FULL) throw new IoError('TableFull', `${what}: the connection table is full (maxConnections=${this.config.maxConnections}). Raise maxConnections or close idle connections.`);
    const own = engineErrors.get(r);
    if (own) throw own(what);
    if (r === ERR.WRONG_KIND) {
      throw new IoError('InvalidArgument', `${what}: this call does not apply to this kind of connection or endpoint ` +
        '(a QUIC connection writes with streamWrite(conn, stream, data) and ends streams with streamEnd; pauseRecv, end and the two-argument streamWrite are for TCP and UDS)');
    }
    throw new IoError('SyscallFailed', `${what} failed: ${errnoDescription(-r)}`, { errno: -r });
  }

  #live(): void {
    if (this.#closed) throw new IoError('ShardClosed', 'this Io was shut down; create a new Io');
  }

  /**
   * One tick: return borrowed slots, flush writes, wait up to `timeoutMs` for completions
   * (-1: until one arrives), turn them into events, fire timers. Returns the event count.
   * Events of the previous poll become invalid.
   */
  poll(timeoutMs = 0): number {
    this.#live();
    let n: number;
    try {
      n = this.#native.poll(this.#shard, timeoutMs);
    } catch (e) {
      throw fromNative(e, 'poll()');
    }
    if (n < 0) throw new IoError('SyscallFailed', `io_uring_enter failed: ${errnoDescription(-n)}`, { syscall: 'io_uring_enter', errno: -n });
    this.#newBatch(n);
    return n;
  }

  /** @internal the host name whose resolution failed for `conn` (ENOTFOUND reasons) */
  _failedHost(conn: ConnId): string | undefined {
    return this.#failedHosts?.get(conn) ?? this.#failedHostsOld?.get(conn);
  }

  #newBatch(n: number): void {
    this.#expireBorrows();
    this.#count = n;
    this.#next = 0;
    this.#dropped = null;
    if (this.#failedHosts !== null || this.#failedHostsOld !== null) {
      this.#failedHostsOld = this.#failedHosts;
      this.#failedHosts = null;
    }
  }

  /** @internal the event nextEvent() returned last, while the batch lasts */
  _current(): Event | null {
    return this.#next > 0 && this.#next <= this.#count ? (this.#cursor as unknown as Event) : null;
  }

  /** @internal Benchmarks only: treat the first `n` records of the event ring as the current batch. */
  _setBatchForBench(n: number): void {
    this.#count = n;
    this.#next = 0;
  }

  /**
   * The next event of the current poll, or null when drained. The returned object is reused for
   * every event: read what you need before calling nextEvent() again.
   */
  nextEvent(): Event | null {
    let ev: Event | null;
    do {
      if (this.#next >= this.#count) return null;
      this.#cursor.load(this._i32, this.#next++ * EVENT_WORDS);
      ev = this.#dropped !== null ? this.#skipDropped() : (this.#cursor as unknown as Event);
    } while (ev !== null && this._intercept !== null && this._intercept(ev));
    return this.config.debug.checkBorrows && ev !== null ? this.#guard(ev) : ev;
  }

  /**
   * @internal A protocol package's look at every event before the application's: true takes
   * the event (the application does not see it). Owned HTTP requests take their body chunks.
   */
  _intercept: ((ev: Event) => boolean) | null = null;

  // debug.checkBorrows: a guard per event that refuses reads once the event is over.
  #guard(ev: Event): Event {
    const seq = ++this.#borrowSeq;
    const copies = (this.#borrowCopies ??= []);
    return new Proxy(ev, {
      get: (target, prop) => {
        // Only the event's own fields are guarded: symbol keys, 'constructor' and names it does
        // not have (inspection, equality helpers, promise probing) read no event data.
        if (typeof prop === 'symbol' || prop === 'constructor' || !(prop in target)) return Reflect.get(target, prop, target);
        if (this.#borrowSeq !== seq) {
          throw new IoError('BorrowExpired',
            `a ${target.type} event was read (.${String(prop)}) after its turn: events are one reused object, valid ` +
            'only during the handler call (or until nextEvent()). Copy the fields you need (const { conn, length } = ev), ' +
            'copy the payload (Buffer.from(ev.data)) or detach it (io.detachEventData()). (debug.checkBorrows)');
        }
        if (prop === 'data' && (target.type === 'StreamFrame' || target.type === 'UdpRecv')) {
          const copy = (target as { data: Uint8Array }).data.slice();
          copies.push(copy.buffer);
          return copy;
        }
        return Reflect.get(target, prop, target);
      },
    });
  }

  #expireBorrows(): void {
    if (!this.config.debug.checkBorrows) return;
    ++this.#borrowSeq;
    // Payload copies handed out in the batch: emptied, so a kept view reads as empty.
    if (this.#borrowCopies !== null) {
      for (const b of this.#borrowCopies) structuredClone(b, { transfer: [b] });
      this.#borrowCopies = null;
    }
  }

  #skipDropped(): Event | null {
    const dropped = this.#dropped!;
    while (this.#cursor.type === 'StreamFrame' && dropped.has(this.#cursor.conn)) {
      if (this.#next >= this.#count) return null;
      this.#cursor.load(this._i32, this.#next++ * EVENT_WORDS);
    }
    return this.#cursor as unknown as Event;
  }

  /**
   * Queues bytes for a connection (copied into pool slots; sent at the end of the batch or the
   * next poll). Returns the bytes accepted: fewer than given when the write queue limit
   * (maxWriteQueueBytes) or the pool is reached — a `Writable` event follows when it drains.
   * Returns 0 for a connection that is closing (or after `end()`). Throws InvalidConnId for a
   * stale id. An outbound connection takes writes before it is `Connected`: they are queued and
   * sent once it connects (TLS: after the handshake).
   */
  streamWrite(conn: ConnId, data: Uint8Array): number;
  /**
   * Writes `length` bytes of `data` from `offset` (as `fs.write(fd, buffer, offset, length)`).
   * With `io.poolBytes` and a StreamFrame's `offset`/`length` this forwards a payload with zero
   * JS allocation.
   */
  streamWrite(conn: ConnId, data: Uint8Array, offset: number, length: number): number;
  /**
   * Stream form (QUIC / WebTransport, with `@zero-io/quic`): writes to stream `stream` of the
   * connection, opening it when it is new; returns the bytes flow control took now (a
   * `Writable` event with this `stream` follows a short write). TCP and UDS connections take
   * stream 0 only.
   */
  streamWrite(conn: ConnId, stream: number, data: Uint8Array): number;
  streamWrite(conn: ConnId, a: Uint8Array | number, b?: Uint8Array | number, c?: number): number {
    let r: number;
    try {
      if (typeof a === 'number') {
        if (!Number.isInteger(a) || a < 0 || a > 0x7fffffff) {
          throw new IoError('InvalidArgument', `streamWrite: stream must be a stream id (an integer from 0), got ${describeValue(a)}`);
        }
        r = this.#native.streamWriteTo(this.#shard, conn, a, false, b as Uint8Array);
      }
      else if (b === undefined) r = this.#native.write(this.#shard, conn, a);
      else r = this.#native.write(this.#shard, conn, a, b as number, c ?? a.length - (b as number));
    } catch (e) {
      throw fromNative(e, 'streamWrite');
    }
    return r >= 0 ? r : this.#check(r, 'streamWrite');
  }

  /**
   * Stops reading from a connection: its receive is cancelled, so the kernel's socket buffer
   * fills and the peer meets TCP flow control (its writes block or return EAGAIN). Use it when
   * your writes are refused (a proxy, an echo to a slow reader) instead of buffering without
   * bound: pause on a short `streamWrite`, resume on `Writable`. StreamFrames received before
   * the call (in this batch or the receive in flight) may still arrive; none after that until
   * {@link Io.resumeRecv}. A peer's FIN is seen only after resuming. Idempotent; a no-op on a
   * closing connection; throws InvalidConnId for a stale id. Also on `IoHandle`.
   */
  pauseRecv(conn: ConnId): void {
    this.#live();
    this.#check(this.#native.pauseRecv(this.#shard, conn, true), 'pauseRecv');
  }

  /** Reads again after {@link Io.pauseRecv} (what the kernel buffered meanwhile arrives first). Idempotent. */
  resumeRecv(conn: ConnId): void {
    this.#live();
    this.#check(this.#native.pauseRecv(this.#shard, conn, false), 'resumeRecv');
  }

  /**
   * Pull-mode read (QUIC streams marked with `io.pullStream(conn, stream)`, @zero-io/quic):
   * copies up to `buf.length` bytes of the stream into `buf` and returns how many; 0 when
   * nothing is there now (a `StreamReadable` event follows when there is); -1 once the stream's
   * end has been read (the call that reads the last bytes returns them, the next one -1). A
   * stream the peer reset throws InvalidArgument with its code. TCP and UDS are push-only: this
   * throws StreamNotPullable for them (use StreamFrame events).
   */
  streamRead(conn: ConnId, stream: number, buf: Uint8Array): number {
    this.#live();
    const r = this.#native.streamReadFrom(this.#shard, conn, stream, buf);
    if (typeof r !== 'number') {
      throw new IoError('InvalidArgument', `streamRead: the peer reset stream ${stream} (code ${r[1]}): nothing more comes on it`);
    }
    if (r >= -1) return r;
    if (r === ERR.WRONG_KIND) {
      const protocol = protocols[this.#native.connProto(this.#shard, conn)] ?? 'tcp';
      throw new IoError('StreamNotPullable',
        `streamRead: ${protocol} connections are push-only; handle StreamFrame events instead`, { protocol });
    }
    return this.#check(r, 'streamRead');
  }

  /**
   * Ends your side of the connection, as node:net's `socket.end()`: what is queued is sent,
   * then FIN (TLS: close_notify first). Reading goes on — a proxy passes a client's FIN on and
   * still reads the backend's answer — and the connection closes (`Disconnected`) once the
   * peer has ended its side too (`PeerEnded`). Writes after it take nothing (0). Idempotent; a
   * connection still connecting is closed. Throws InvalidConnId for a stale id.
   */
  end(conn: ConnId): void {
    this.#live();
    this.#check(this.#native.end(this.#shard, conn), 'end');
  }

  /**
   * Immediate close: queued writes are dropped. A Disconnected event follows. Closing again
   * while it is closing (until its Disconnected batch ends) is a no-op; after that the id is
   * stale and throws InvalidConnId.
   */
  close(conn: ConnId): void {
    this.#live();
    this.#check(this.#native.close(this.#shard, conn), 'close');
  }

  /**
   * Flushes queued writes, then closes; force-closes after `timeoutMs`. TLS: close_notify goes
   * after the queued data; during a handshake the close waits for it (writes held for the
   * handshake go first). QUIC (@zero-io/quic): no new streams; the streams already written to
   * may still be written and ended, and CONNECTION_CLOSE (code 0) goes once each of them is over
   * both ways (ours ended and acknowledged, the peer's side ended) — or after `timeoutMs`:
   * Disconnected with origin 'timeout' (ETIMEDOUT). @default timeoutMs 5000
   */
  closeGraceful(conn: ConnId, timeoutMs = 5000): void {
    this.#live();
    if (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 0xffffffff) {
      throw new IoError('InvalidArgument', `closeGraceful: timeoutMs must be a whole number of milliseconds (0 to ${0xffffffff}), got ${describeValue(timeoutMs)}`);
    }
    this.#check(this.#native.closeGraceful(this.#shard, conn, timeoutMs), 'closeGraceful');
  }

  /**
   * The bound address of an endpoint (TCP/UDS listener or UDP), useful after binding port 0.
   * An abstract Unix socket name ('\0name') reads as '@name'. Throws InvalidConnId when it is
   * not open (from the `closeEndpoint` call on).
   */
  localAddress(endpoint: EndpointId): SocketAddress {
    this.#live();
    const a = this.#native.endpointAddress(this.#shard, endpoint);
    if (!a) throw new IoError('InvalidConnId', endpointGone('localAddress', endpoint));
    return { family: a[0] as SocketAddress['family'], address: a[1], port: a[2] };
  }

  /**
   * Closes an endpoint: a listener stops accepting (its open connections stay open); a UDP
   * endpoint stops receiving and its socket closes once queued datagrams are sent or cancelled.
   * The id is invalid from this call on: closing it again, or `localAddress`, throws
   * InvalidConnId. The socket itself closes on a later tick (a UDP endpoint once its queued
   * datagrams are gone; `udpStats(ep)` answers until then): poll before binding the same port
   * again.
   */
  closeEndpoint(endpoint: EndpointId): void {
    this.#live();
    const r = this.#native.endpointClose(this.#shard, endpoint);
    if (r === ERR_STALE || r === ERR_CLOSING) throw new IoError('InvalidConnId', endpointGone('closeEndpoint', endpoint));
    this.#check(r, 'closeEndpoint');
  }

  /**
   * RTT, congestion window, bytes and retransmits/lost for an open TCP connection (TCP_INFO).
   * Throws InvalidConnId for a stale id and InvalidArgument for a Unix-socket connection.
   */
  connStats(conn: ConnId): ConnStats {
    this.#live();
    const r = this.#native.connStats(this.#shard, conn);
    if (typeof r === 'number') {
      if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', 'connStats: TCP_INFO exists for TCP connections only (this one is a Unix socket)');
      if (r === ERR.NOT_CONNECTED) throw new IoError('InvalidConnId', 'connStats: the connection is not established yet');
      this.#check(r, 'connStats');
    }
    const { ktls, ...rest } = r as Exclude<typeof r, number>;
    return Object.freeze({ ...rest, kTls: ktls }) as ConnStats;
  }

  /**
   * The TLS state of a connection: version, cipher, ALPN, SNI, resumption, the peer
   * certificate, and whether kTLS carries it (with the reason when not). Null for a plaintext
   * connection or a stale id. In a Disconnected handler it still answers for the closing
   * connection (why its handshake failed). On a QUIC connection: the TLS 1.3 session inside
   * QUIC (`kTls` false; a failed handshake's `alert` is the one its CRYPTO_ERROR carried).
   */
  tlsInfo(conn: ConnId): TlsInfo | null {
    this.#live();
    const t = this.#native.connTlsInfo(this.#shard, conn);
    if (!t) return null;
    return Object.freeze({
      state: t.phase, side: t.server ? 'server' : 'client', version: t.version || null, cipher: t.cipher || null,
      alpn: t.alpn || null, servername: t.servername || null, resumed: t.resumed,
      peerSubject: t.peerSubject || null, peerVerified: t.peerVerified, kTls: t.ktls,
      kTlsReason: t.ktls ? null : t.ktlsReason || null, alert: t.alert, alertReceived: t.alertReceived,
      reason: t.reason || null,
    }) as TlsInfo;
  }

  /** The remote address of an open connection, or null. */
  peerAddress(conn: ConnId): SocketAddress | null {
    this.#live();
    const a = this.#native.connPeer(this.#shard, conn);
    return a ? { family: a[0] as SocketAddress['family'], address: a[1], port: a[2] } : null;
  }

  /** Current / peak / capacity for each of the seven pools, and engine counters. */
  poolStats(): PoolStats {
    this.#live();
    const s = this.#native.poolStats(this.#shard);
    const g = (x: NativeGauge): PoolGauge => Object.freeze({ ...x });
    return Object.freeze({
      freeStack: g(s.freeStack), fillRing: g(s.fillRing), rxRing: g(s.rxRing), txRing: g(s.txRing),
      completionRing: g(s.completionRing), scratchPool: g(s.scratchPool), perConn: g(s.perConn),
      backing: this.#backing, zeroCopy: true, connections: s.connections, backend: this.backend,
      counters: Object.freeze(s.counters),
    });
  }

  /**
   * The backpressure cascade now. The state follows the RX ring, the free stack and the bulk-TX
   * budget (which raises Critical at most); the connection table (`pools.perConn`) is reported
   * only. In every state a TCP / Unix-socket write keeps to its fair share: 4 slots always, and
   * beyond that the budget over the connections holding TX slots while the budget lasts (a
   * refusal is a partial `streamWrite`, a `Writable` follows). Policy per state — Healthy:
   * nothing more; Warning: reported (a `PoolPressure` event); Critical: TLS writes encrypted in
   * process and UDP sends are capped at the bulk-TX budget too (UDP sends throw PoolExhausted);
   * Drain (from the RX ring or the free stack only): the same caps, and a new connection is
   * closed at accept while the RX ring or the free stack is still at the Drain threshold.
   * A state is left 10 points below its threshold and no sooner than 250 ms after the last change.
   */
  poolPressure(): PoolPressureInfo {
    this.#live();
    const p = this.#native.poolPressure(this.#shard);
    return Object.freeze({
      state: PRESSURE_STATES[p.state], utilizationPct: p.utilizationPct, pool: PRESSURE_POOLS[p.leader],
      pools: Object.freeze({ fillRing: p.pools[0], txRing: p.pools[1], perConn: p.pools[2], freeStack: p.pools[3] }),
      thresholds: Object.freeze({ warning: p.enter[0], critical: p.enter[1], drain: p.enter[2] }),
      budgets: Object.freeze({ rx: p.budgetRx, txCritical: p.budgetTxCritical, txBulk: p.budgetTxBulk, scratch: p.budgetScratch }),
      transitions: p.transitions, writesCapped: p.writesCapped, acceptsRefused: p.acceptsRefused,
    });
  }

  /** Resets every pool's peak to its current value. */
  resetPeaks(): void {
    this.#live();
    this.#native.resetPeaks(this.#shard);
  }

  /**
   * Drives this Io from Node's event loop: the ring's eventfd is watched by libuv, each wake-up
   * runs one tick, and JS is entered once per batch. `handler` gets each event (borrowed: valid
   * during the call). Writes made in the handler go out at the end of the batch. Node's event
   * loop is never blocked.
   */
  runSync(handler: (event: Event, io: Io) => void, options: RunSyncOptions = {}): ShutdownHandle {
    this.#live();
    if (typeof handler !== 'function') throw new IoError('InvalidArgument', `runSync: the handler must be a function (event, io) => void, got ${describeValue(handler)}`);
    rejectUnknownKeys(options, ['onError'], 'runSync');
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new IoError('InvalidArgument', `runSync: onError must be a function (error, event) => void, got ${describeValue(options.onError)}`);
    }
    if (this.#driving) throw new IoError('DriverRunning', 'runSync() is already driving this Io');
    const onError = options.onError ?? ((err: unknown, ev: Event) => {
      process.stderr.write(`zero-io: handler threw on ${ev.type} (conn ${(ev as { conn?: number }).conn}): ${(err as Error)?.stack ?? String(err)}\n`);
    });
    const onBatch = (n: number): void => {
      this.#newBatch(n);
      let ev: Event | null;
      while ((ev = this.nextEvent()) !== null) {
        try {
          handler(ev, this);
        } catch (err) {
          for (const hook of failureHooks) {
            try {
              hook(this, ev);
            } catch {
              // a cleanup that fails leaves the event as it was
            }
          }
          onError(err, ev);
        }
      }
      this.#expireBorrows();
    };
    try {
      this.#native.startDriver(this.#shard, onBatch);
    } catch (e) {
      throw fromNative(e, 'runSync()');
    }
    this.#driving = true;
    let done: Promise<void> | undefined;
    const stop = (): void => {
      if (!this.#driving || this.#closed) return;
      this.#native.stopDriver(this.#shard);
      this.#driving = false;
    };
    return {
      stop,
      shutdown: (opts = {}) => {
        done ??= (async () => {
          if (this.#closed) return;
          const timeoutMs = opts.timeoutMs ?? 5000;
          this.#native.closeAll(this.#shard, timeoutMs);
          const deadline = Date.now() + timeoutMs + 1000;
          while (this.#native.poolStats(this.#shard).connections > 0 && Date.now() < deadline) {
            await new Promise((r) => setTimeout(r, 5));
          }
          stop();
        })();
        return done;
      },
    };
  }

  /** Whether shutdown() was called. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether runSync() is driving this Io. */
  get running(): boolean {
    return this.#driving;
  }

  /** Releases the shard: every socket closes at once, the pool is unmapped once JS drops its views. */
  shutdown(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#driving = false;
    internalsMap.delete(this);
    this.#native.destroyShard(this.#shard);
  }

  [Symbol.dispose](): void {
    this.shutdown();
  }
}

/** UDP (udp.ts) and SendBuffer (send-buffer.ts). */
export interface Io {
  /**
   * Checks out a writable pool slot of at least `min` bytes (one slot: `poolSlotSize`) for
   * zero-copy TX. Throws PoolExhausted when none is free. See {@link SendBuffer} for the rules.
   */
  sendBuffer(min?: number): SendBuffer;
  /**
   * Promotes the current event's payload (StreamFrame or UdpRecv) to an {@link OwnedSlot} that
   * outlives the poll and may go to a worker thread. Null for events without a payload, or when
   * it was detached already. No copy: the slot itself is held.
   */
  detachEventData(): OwnedSlot | null;
  /**
   * The cross-thread send-side handle of this shard (one per Io). Pass it (or `handle.id`) to
   * worker threads and rebuild it there with `IoHandle.from(value)`.
   *
   * `sendBuffers`: pool slots kept ready for `handle.sendBuffer()` on other threads (zero-copy
   * fan-out from a worker). The shard refills them as they are taken; calling again changes the
   * number. @default 0
   */
  handle(options?: { sendBuffers?: number }): IoHandle;
  /**
   * Queues `length` (default `buf.length`) bytes of a SendBuffer on a connection without a copy;
   * the same buffer may be queued on many connections. Returns the bytes queued: all of them, or
   * 0 when the write queue is full (a `Writable` event follows). 0 for a closing connection.
   * On a TLS connection encrypted in process the bytes are encrypted into the write queue (a
   * copy: the buffer is free to reuse at once); with kTLS the slot is queued as is.
   */
  streamWriteBuffer(conn: ConnId, buf: SendBuffer, length?: number): number;
  /** Stream form (QUIC / WebTransport); TCP and UDS connections take stream 0. */
  streamWriteBuffer(conn: ConnId, stream: number, buf: SendBuffer, length?: number): number;
  /**
   * Sends a SendBuffer as a connection datagram: QUIC connections (with `@zero-io/quic`: RFC
   * 9221 datagrams; the bytes are copied into quiche's queue and the buffer is released). TCP and
   * UDS connections carry no datagrams: InvalidArgument (InvalidConnId for a stale id). UDP
   * endpoints use {@link Io.udpSend}.
   */
  sendDatagramBuffer(conn: ConnId, buf: SendBuffer): void;
  /** Sends a SendBuffer as one UDP datagram without a copy (the seed's `udp_send`). Errors as {@link Io.udpSendBytes}. */
  udpSend(endpoint: EndpointId, to: UdpTarget, buf: SendBuffer, length?: number): void;
  /** Binds a UDP endpoint on `"host:port"`, `"[v6]:port"` or a port (on 0.0.0.0). Datagrams arrive as `UdpRecv` events. */
  udpBind(addr: string | number): EndpointId;
  /** Binds a UDP endpoint with options. */
  udpBindWith(config: UdpEndpointConfig): EndpointId;
  /**
   * Sends one datagram (one copy into a pool slot, then sendmsg from it). Returns when it is
   * queued; it leaves at the end of the batch (or at once outside one). Throws PoolExhausted
   * when the endpoint's send queue or the pool is full (nothing is queued then), and
   * InvalidArgument for a datagram over `maxDatagram`. Asynchronous kernel refusals (e.g.
   * ENETUNREACH) are counted in `udpStats(ep).sendErrors`.
   */
  udpSendBytes(endpoint: EndpointId, to: UdpTarget, data: Uint8Array, offset?: number, length?: number): void;
  /**
   * Sends `data` as consecutive datagrams of `segmentSize` bytes (the last may be shorter) to
   * one peer with UDP GSO: one sendmsg, segmented by the kernel (or the NIC). Where the kernel
   * lacks GSO, each segment is sent on its own, with the same result for the peer.
   */
  udpSendSegments(endpoint: EndpointId, to: UdpTarget, data: Uint8Array, segmentSize: number): void;
  /** Joins a multicast group on a UDP endpoint. */
  multicastJoin(endpoint: EndpointId, group: MulticastGroup): void;
  /** Leaves a multicast group joined with {@link Io.multicastJoin}. */
  multicastLeave(endpoint: EndpointId, group: MulticastGroup): void;
  /** Counters and limits of a UDP endpoint; throws InvalidConnId when it is not an open UDP endpoint. */
  udpStats(endpoint: EndpointId): UdpEndpointStats;
}

export { isIoError };
