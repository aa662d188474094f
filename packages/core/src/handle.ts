/**
 * IoHandle: the cross-thread, send-side handle of a shard (the seed's `IoHandle`).
 * `io.handle()` on the shard's thread; pass it (or its `id`) to worker threads with postMessage
 * and rebuild it there with `IoHandle.from(value)`. Commands go through a bounded MPSC queue and
 * an eventfd wake; the shard carries them out in its own thread, in order per sender.
 * @module
 */
import { OP, PUSH, loadAddon, type NativeAddon } from './addon.js';
import { IoError } from './errors.js';
import type { ConnId } from './events.js';
import { Io } from './io.js';


function pushFailed(r: number, what: string): never {
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

  toJSON(): { id: number } {
    return { id: this.id };
  }
}

const handles = new WeakMap<Io, IoHandle>();

Io.prototype.handle = function handle(this: Io): IoHandle {
  let h = handles.get(this);
  if (!h) {
    const id = this._native.handleId(this._shard);
    h = new IoHandle(id, this._native, this._native.handleAttach(id));
    handles.set(this, h);
  }
  return h;
};

