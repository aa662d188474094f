/**
 * IoHandle: the cross-thread, send-side handle of a shard (the seed's `IoHandle`).
 * `io.handle()` on the shard's thread; pass it (or its `id`) to worker threads with postMessage
 * and rebuild it there with `IoHandle.from(value)`. Commands go through a bounded MPSC queue and
 * an eventfd wake; the shard carries them out in its own thread, in order per sender.
 * @module
 */
import { OP, PUSH, loadAddon, type NativeAddon } from './addon.js';
import { IoError, shardClosed } from './errors.js';
import type { ConnId } from './events.js';
import { Io } from './io.js';
import { SendBuffer } from './send-buffer.js';


/** @internal the error of a refused push (protocol packages' handle commands too) */
export function pushFailed(r: number, what: string): never {
  if (r === PUSH.FULL) {
    throw new IoError('PoolExhausted', `IoHandle.${what}: the shard's command queue is full (config.handleQueue); ` +
      'the shard is not keeping up: retry later, send less, or raise handleQueue', { pool: 'HandleQueue' });
  }
  if (r === PUSH.GONE) throw new IoError('ShardClosed', `IoHandle.${what}: the shard behind this handle was shut down`);
  if (r === PUSH.TOO_BIG) throw new IoError('InvalidArgument', `IoHandle.${what}: payloads are limited to 16 MiB per command`);
  throw new IoError('InvalidArgument', `IoHandle.${what}: invalid connection id`);
}

/**
 * Send-side handle usable from any thread. Every method queues a command and returns at once;
 * it never blocks. Throws PoolExhausted when the shard's queue is full (nothing was queued) and
 * ShardClosed when the shard is gone. A command the shard cannot carry out (stale connection,
 * full write queue) comes back to the shard's owner as a `HandleRejected` event: nothing is
 * dropped silently. Writes are all-or-nothing and keep their order per sending thread.
 */
export class IoHandle {
  /** The handle's id: what crosses thread boundaries (structured clone keeps it). */
  readonly id: number;
  #native: NativeAddon;
  #q: unknown;

  /** @internal use `io.handle()` or `IoHandle.from()` */
  constructor(id: number, native: NativeAddon, q: unknown) {
    this.id = id;
    this.#native = native;
    this.#q = q;
  }

  /**
   * Rebuilds a handle in this thread from an IoHandle, its structured clone (`{ id }`) or its id.
   * Throws ShardClosed when the shard is gone.
   */
  static from(value: IoHandle | { id: number } | number): IoHandle {
    if (value instanceof IoHandle) return value;
    const id = typeof value === 'number' ? value : value?.id;
    if (!Number.isInteger(id)) throw new IoError('InvalidArgument', 'IoHandle.from expects an IoHandle, { id } or an id number');
    const native = loadAddon();
    const q = native.handleAttach(id);
    if (q === null) throw new IoError('ShardClosed', `IoHandle.from: shard handle ${id} is gone (its Io was shut down)`);
    return new IoHandle(id, native, q);
  }

  /** @internal a protocol package's command (its op, connection, number and bytes): 0 or a PUSH code */
  _push(op: number, conn: number, arg: number, data?: Uint8Array): number {
    return this.#native.handlePush(this.#q, op, conn, arg, data);
  }

  /** Queues bytes for a connection (copied into the queue). */
  streamWrite(conn: ConnId, data: Uint8Array): void;
  /** Stream form (QUIC / WebTransport); TCP and UDS connections take stream 0. */
  streamWrite(conn: ConnId, stream: number, data: Uint8Array): void;
  streamWrite(conn: ConnId, a: Uint8Array | number, b?: Uint8Array): void {
    const data = typeof a === 'number' ? b! : a;
    const r = this.#native.handlePush(this.#q, OP.WRITE, conn, 0, data);
    if (r !== 0) pushFailed(r, 'streamWrite');
  }

  /** Immediate close (a Disconnected event follows on the shard's thread). */
  close(conn: ConnId): void {
    const r = this.#native.handlePush(this.#q, OP.CLOSE, conn, 0);
    if (r !== 0) pushFailed(r, 'close');
  }

  /** Flushes what is queued, then closes; force-closes after `timeoutMs`. @default timeoutMs 5000 */
  closeGraceful(conn: ConnId, timeoutMs = 5000): void {
    const r = this.#native.handlePush(this.#q, OP.CLOSE_GRACEFUL, conn, Math.max(0, Math.min(timeoutMs, 0xffffffff)));
    if (r !== 0) pushFailed(r, 'closeGraceful');
  }

  /**
   * {@link Io.pauseRecv} from another thread (carried out on the shard's thread). On a closed or
   * closing connection it is a no-op, never reported as `HandleRejected`.
   */
  pauseRecv(conn: ConnId): void {
    const r = this.#native.handlePush(this.#q, OP.PAUSE_RECV, conn, 0);
    if (r !== 0) pushFailed(r, 'pauseRecv');
  }

  /** {@link Io.resumeRecv} from another thread. */
  resumeRecv(conn: ConnId): void {
    const r = this.#native.handlePush(this.#q, OP.RESUME_RECV, conn, 0);
    if (r !== 0) pushFailed(r, 'resumeRecv');
  }

  /**
   * Checks out a writable pool slot on this thread for zero-copy sends through this handle
   * (`streamWriteBuffer`), e.g. one market-data update written once and queued on a thousand
   * connections. Slots come from a reservoir the shard keeps filled: enable it on the shard's
   * thread with `io.handle({ sendBuffers: n })`. Throws PoolExhausted when the reservoir is
   * empty (the shard refills it at its next tick). Same ownership rules as `io.sendBuffer()`:
   * fill it, send it, then `release()` it (the release travels through the queue, after the
   * sends queued before it).
   */
  sendBuffer(min = 0): SendBuffer {
    const t = this.#native.handleTakeSlot(this.#q);
    if (t === null) {
      throw new IoError('PoolExhausted', 'IoHandle.sendBuffer: no slot in the handle reservoir; enable or enlarge it with ' +
        'io.handle({ sendBuffers: n }) on the shard\'s thread, release buffers you are done with, or retry after the shard\'s next tick',
        { pool: 'FreeStack' });
    }
    const [slot, view] = t;
    if (!Number.isInteger(min) || min < 0 || min > view.byteLength) {
      this.#release(slot);
      throw new IoError('InvalidArgument', `IoHandle.sendBuffer(${min}): a SendBuffer is one pool slot (${view.byteLength} bytes)`);
    }
    return new SendBuffer(null, slot, view.byteLength, view, this.id, (s) => this.#release(s));
  }

  #release(slot: number): void {
    // A full queue is retried on a timer rather than leaking the slot; a gone shard took its pool.
    const r = this.#native.handlePush(this.#q, OP.RELEASE_SLOT, slot, 0);
    if (r === PUSH.FULL) setTimeout(() => this.#release(slot), 1).unref();
  }

  /**
   * Queues `length` (default `buf.length`) bytes of a SendBuffer from {@link IoHandle.sendBuffer}
   * on a connection without a copy (the shard takes a reference; the same buffer may go to many
   * connections). All-or-nothing like `streamWrite`: a refusal comes back as `HandleRejected`.
   */
  streamWriteBuffer(conn: ConnId, buf: SendBuffer, length?: number): void;
  /** Stream form (QUIC / WebTransport); TCP and UDS connections take stream 0. */
  streamWriteBuffer(conn: ConnId, stream: number, buf: SendBuffer, length?: number): void;
  streamWriteBuffer(conn: ConnId, a: SendBuffer | number, b?: SendBuffer | number, c?: number): void {
    const buf = (typeof a === 'number' ? b : a) as SendBuffer;
    const length = (typeof a === 'number' ? c : b) as number | undefined;
    if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', 'IoHandle.streamWriteBuffer expects a SendBuffer from handle.sendBuffer()');
    const n = buf._check(null, 'IoHandle.streamWriteBuffer', length, this.id);
    const r = this.#native.handlePush(this.#q, OP.WRITE_SLOT, conn, buf._slot, undefined, n);
    if (r !== 0) pushFailed(r, 'streamWriteBuffer');
  }

  /**
   * A datagram on a connection (QUIC / WebTransport). **Always throws in this release:** TCP
   * and Unix-socket connections carry streams, so this throws InvalidArgument until
   * `@zero-io/quic` brings a datagram-capable kind. Use `streamWrite`, or `io.udpSendBytes` on
   * the shard for UDP.
   * @throws {IoError} InvalidArgument, always (for now).
   */
  sendDatagram(conn: ConnId, data: Uint8Array): void {
    void conn;
    void data;
    throw new IoError('InvalidArgument',
      'IoHandle.sendDatagram: no connection kind carries datagrams yet (TCP and Unix sockets carry streams; QUIC / WebTransport ' +
      'datagrams arrive with @zero-io/quic); use streamWrite, or io.udpSendBytes on the shard for UDP');
  }

  /**
   * The zero-copy form of {@link IoHandle.sendDatagram}. **Always throws in this release**
   * (InvalidArgument), as `sendDatagram` does.
   * @throws {IoError} InvalidArgument, always (for now).
   */
  sendDatagramBuffer(conn: ConnId, buf: SendBuffer): void {
    if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', 'IoHandle.sendDatagramBuffer expects a SendBuffer from handle.sendBuffer()');
    buf._check(null, 'IoHandle.sendDatagramBuffer', undefined, this.id);
    this.sendDatagram(conn, new Uint8Array(0));
  }

  toJSON(): { id: number } {
    return { id: this.id };
  }
}

const handles = new WeakMap<Io, IoHandle>();

Io.prototype.handle = function handle(this: Io, options: { sendBuffers?: number } = {}): IoHandle {
  if (this.closed) throw shardClosed('io.handle');
  if (options.sendBuffers !== undefined) {
    const n = options.sendBuffers;
    const max = Math.floor(this.config.poolSlotCount / 4);
    if (!Number.isInteger(n) || n < 0 || n > max) {
      throw new IoError('InvalidConfig', `io.handle: sendBuffers must be an integer in [0, ${max}] (a quarter of the pool), got ${String(n)}`, { key: 'sendBuffers' });
    }
    this._native.handleReservoir(this._shard, n);
  }
  let h = handles.get(this);
  if (!h) {
    const id = this._native.handleId(this._shard);
    h = new IoHandle(id, this._native, this._native.handleAttach(id));
    handles.set(this, h);
  }
  return h;
};

