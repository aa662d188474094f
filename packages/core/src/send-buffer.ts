/**
 * SendBuffer: a writable pool slot for zero-copy TX (the seed's `send_buffer`). Fill it once,
 * send it to one connection or a thousand: each send takes a reference on the slot instead of a
 * copy, and the slot returns to the pool when the last send completes and you released it.
 * @module
 */
import { ERR } from './addon.js';
import { IoError, shardClosed } from './errors.js';
import type { ConnId } from './events.js';
import { Io, internalsOf } from './io.js';

/** native Protocol number of a QUIC connection (native/shard/shard.h kProtoQuic). */
const PROTO_QUIC = 4;


const encoder = new TextEncoder();

interface Held { io: WeakRef<Io> | null; remote: ((slot: number) => void) | null; slot: number }
const leaks = new FinalizationRegistry<Held>((h) => {
  if (h.remote) {
    h.remote(h.slot);
  } else {
    const io = h.io?.deref();
    if (!io || io.closed) return;
    io._native.slotRelease(io._shard, h.slot);
  }
  process.emitWarning(
    'a SendBuffer was garbage-collected without release(); its pool slot was released now. ' +
    'Call buf.release() once you have sent it everywhere.', { type: 'ZeroIoLeakWarning', code: 'ZIO_SENDBUFFER_LEAK' });
});

/**
 * A writable slot checked out of the pool (`io.sendBuffer(min)`).
 *
 * Ownership rules:
 * - Write into `bytes` (or `write()`), set `length`, then send with `io.streamWriteBuffer`,
 *   `io.udpSend` (or `sendDatagramBuffer` for QUIC/WebTransport): no copy is made; every send
 *   holds a reference until the kernel has taken the bytes.
 * - Do not modify the bytes after the first send: queued sends read them later.
 * - Call `release()` when you will send it no more. The slot returns to the pool once the last
 *   queued send completes. A buffer garbage-collected without `release()` is released then,
 *   with a `ZeroIoLeakWarning`.
 */
export class SendBuffer {
  /** Bytes the slot holds (the pool's slot size). */
  readonly capacity: number;
  /** How many bytes from the start are sent. `write()` advances it. */
  length = 0;
  /** @internal */ readonly _slot: number;
  /** @internal the owning Io (null: checked out through an IoHandle on another thread) */
  readonly _io: Io | null;
  /** @internal for handle buffers: the handle's id, and how the slot goes back */
  readonly _handleId: number;
  #remoteRelease: ((slot: number) => void) | null;
  #bytes: Uint8Array | null;

  /**
   * @internal use `io.sendBuffer(min)` or `handle.sendBuffer(min)`. `io` null: a handle buffer,
   * `view` over its slot and `remoteRelease` to give it back.
   */
  constructor(io: Io | null, slot: number, slotSize: number, view?: ArrayBuffer, handleId = -1, remoteRelease?: (slot: number) => void) {
    this._io = io;
    this._slot = slot;
    this._handleId = handleId;
    this.capacity = slotSize;
    this.#remoteRelease = remoteRelease ?? null;
    this.#bytes = io ? new Uint8Array(io._pool, slot * slotSize, slotSize) : new Uint8Array(view!);
    leaks.register(this, { io: io ? new WeakRef(io) : null, remote: this.#remoteRelease, slot }, this);
  }

  /** The writable bytes (all `capacity` of them). Throws after `release()`. */
  get bytes(): Uint8Array {
    if (!this.#bytes) throw new IoError('InvalidArgument', 'this SendBuffer was released');
    return this.#bytes;
  }

  /** The seed's `as_mut_slice()`: the same view as `bytes`. */
  asMutSlice(): Uint8Array {
    return this.bytes;
  }

  /** Appends bytes (a string is UTF-8 encoded) at `length`; returns the new length. Throws when it does not fit. */
  write(data: Uint8Array | string): number {
    const b = this.bytes;
    if (typeof data === 'string') {
      const r = encoder.encodeInto(data, b.subarray(this.length));
      if (r.read < data.length) throw new IoError('InvalidArgument', `SendBuffer.write: ${data.length} characters do not fit in the ${this.capacity - this.length} bytes left`);
      this.length += r.written;
    } else {
      if (data.length > this.capacity - this.length) {
        throw new IoError('InvalidArgument', `SendBuffer.write: ${data.length} bytes do not fit in the ${this.capacity - this.length} bytes left`);
      }
      b.set(data, this.length);
      this.length += data.length;
    }
    return this.length;
  }

  /** Whether `release()` was called. */
  get released(): boolean {
    return this.#bytes === null;
  }

  /** Gives the slot back (after the sends already queued complete). Idempotent. */
  release(): void {
    if (!this.#bytes) return;
    this.#bytes = null;
    leaks.unregister(this);
    if (this.#remoteRelease) this.#remoteRelease(this._slot);
    else if (this._io && !this._io.closed) this._io._native.slotRelease(this._io._shard, this._slot);
  }

  [Symbol.dispose](): void {
    this.release();
  }

  /** @internal validates a buffer for a send on `io`; returns the byte count */
  _check(io: Io | null, what: string, length: number | undefined, handleId = -1): number {
    if (this._io !== io || (io === null && this._handleId !== handleId)) {
      throw new IoError('InvalidArgument', io
        ? `${what}: this SendBuffer belongs to another Io (a buffer from handle.sendBuffer() goes through that handle)`
        : `${what}: this SendBuffer was not taken from this handle's shard (use handle.sendBuffer())`);
    }
    if (!this.#bytes) throw new IoError('InvalidArgument', `${what}: this SendBuffer was released`);
    const n = length ?? this.length;
    if (!Number.isInteger(n) || n < 0 || n > this.capacity) {
      throw new IoError('InvalidArgument', `${what}: length ${n} is outside the buffer (capacity ${this.capacity})`);
    }
    return n;
  }
}

Io.prototype.sendBuffer = function sendBuffer(this: Io, min = 0): SendBuffer {
  if (this.closed) throw shardClosed('sendBuffer');
  const size = this.config.poolSlotSize;
  if (!Number.isInteger(min) || min < 0 || min > size) {
    throw new IoError('InvalidArgument', `sendBuffer(${min}): a SendBuffer is one pool slot (${size} bytes); ask for at most that, or raise poolSlotSize`);
  }
  const slot = this._native.slotAcquire(this._shard);
  if (slot === ERR.POOL_EXHAUSTED) {
    throw new IoError('PoolExhausted', 'sendBuffer: no free pool slot; release SendBuffers you are done with, wait for queued writes to drain, or raise poolSlotCount', { pool: 'FreeStack' });
  }
  return new SendBuffer(this, slot, size);
};

Io.prototype.streamWriteBuffer = function streamWriteBuffer(this: Io, conn: ConnId, a: SendBuffer | number, b?: SendBuffer | number, c?: number): number {
  // (conn, buf[, length]) or the stream form (conn, stream, buf[, length]); TCP/UDS use stream 0.
  if (this.closed) throw shardClosed('streamWriteBuffer');
  const buf = (typeof a === 'number' ? b : a) as SendBuffer;
  const length = (typeof a === 'number' ? c : b) as number | undefined;
  if (!(buf instanceof SendBuffer)) throw new IoError('InvalidArgument', 'streamWriteBuffer expects a SendBuffer from io.sendBuffer()');
  const n = buf._check(this, 'streamWriteBuffer', length);
  // A QUIC stream (the stream form, @zero-io/quic): quiche copies what it takes into its stream
  // buffer, so the bytes go through streamWriteTo; the buffer stays the caller's.
  if (typeof a === 'number' && this._native.connProto(this._shard, conn) === PROTO_QUIC) {
    const q = this._native.streamWriteTo(this._shard, conn, a, false, buf.bytes.subarray(0, n));
    return q >= 0 ? q : internalsOf(this).check(q, 'streamWriteBuffer');
  }
  const r = this._native.writeSlot(this._shard, conn, buf._slot, 0, n);
  if (r >= 0) return r;
  if (r === ERR.CLOSING) return 0;
  if (r === ERR.STALE) throw new IoError('InvalidConnId', `streamWriteBuffer: connection ${conn} is closed or was never opened`);
  if (r === ERR.WRONG_KIND && this._native.connProto(this._shard, conn) === PROTO_QUIC) {
    throw new IoError('InvalidArgument', 'streamWriteBuffer: a QUIC connection takes the stream form, streamWriteBuffer(conn, stream, buf)');
  }
  if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', 'streamWriteBuffer: the SendBuffer is not checked out (released?)');
  throw new IoError('SyscallFailed', `streamWriteBuffer failed (${r})`);
};

Io.prototype.sendDatagramBuffer = function sendDatagramBuffer(this: Io, conn: ConnId, buf: SendBuffer): void {
  if (this.closed) throw shardClosed('sendDatagramBuffer');
  buf._check(this, 'sendDatagramBuffer', undefined);
  const p = this._native.connProto(this._shard, conn);
  if (p === ERR.STALE) throw new IoError('InvalidConnId', `sendDatagramBuffer: connection ${conn} is closed or was never opened`);
  throw new IoError('InvalidArgument',
    'sendDatagramBuffer: TCP and Unix-socket connections carry streams, not datagrams; use streamWriteBuffer, ' +
    'or io.udpSend(endpoint, to, buf) for UDP. Connection datagrams are for QUIC / WebTransport connections.', { protocol: p === 2 ? 'uds' : 'tcp' });
};
