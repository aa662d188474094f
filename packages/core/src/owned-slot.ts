/**
 * OwnedSlot: a received payload promoted out of the per-poll lifetime (the seed's
 * `detach_event_data`). A refcounted pool slot that stays valid until released, and that can be
 * handed to a worker thread.
 * @module
 */
import { OP, PUSH, loadAddon } from './addon.js';
import { IoError } from './errors.js';
import { Io } from './io.js';

/** What crosses to another thread (postMessage it; rebuild with `OwnedSlot.fromTransfer`). */
export interface OwnedSlotTransfer {
  readonly handle: number;
  readonly slot: number;
  readonly offset: number;
  readonly length: number;
}

interface Held { io?: WeakRef<Io>; handle: number; slot: number }
const leaks = new FinalizationRegistry<Held>((h) => {
  release(h.io?.deref(), h.handle, h.slot);
  process.emitWarning(
    'an OwnedSlot was garbage-collected without release(); its pool slot was released now. ' +
    'Call slot.release() when you are done with the payload.', { type: 'ZeroIoLeakWarning', code: 'ZIO_OWNEDSLOT_LEAK' });
});

/** Shard queues attached by this thread, by handle id (an attach takes the registry lock). */
const queues = new Map<number, unknown>();

function release(io: Io | undefined, handle: number, slot: number): void {
  if (io) {
    if (!io.closed) io._native.ownedRelease(io._shard, slot);
    return;
  }
  // Another thread: the shard releases it in its own thread, through its command queue.
  const native = loadAddon();
  let q = queues.get(handle);
  if (q === undefined) {
    q = native.handleAttach(handle);
    if (q === null) return;  // the shard is gone, and its pool with it
    queues.set(handle, q);
  }
  const r = native.handlePush(q, OP.RELEASE_SLOT, slot, 0);
  if (r === PUSH.GONE) queues.delete(handle);
  // A full queue: try again shortly, without blocking this thread (the release is not lost).
  else if (r === PUSH.FULL) setTimeout(() => release(undefined, handle, slot), 1).unref();
}

/**
 * A payload that outlives its poll: `io.detachEventData()` during a `StreamFrame` or `UdpRecv`
 * event. Ownership rules:
 * - `data` stays valid until `release()` (or until `transfer()` hands it to another thread).
 * - Release it exactly once; the slot then goes back to the kernel's receive ring. While held,
 *   it is one RX slot fewer for the shard: hold few, briefly.
 * - `transfer()` gives a plain object for postMessage; the receiving thread calls
 *   `OwnedSlot.fromTransfer(t)` and becomes the owner (this object is then unusable).
 * - A slot garbage-collected without `release()` is released then, with a `ZeroIoLeakWarning`.
 */
export class OwnedSlot {
  readonly length: number;
  #io: Io | undefined;
  #handle: number;
  #slot: number;
  #offset: number;
  #data: Uint8Array | null;

  /** @internal */
  constructor(io: Io | undefined, handle: number, slot: number, offset: number, length: number, data: Uint8Array) {
    this.#io = io;
    this.#handle = handle;
    this.#slot = slot;
    this.#offset = offset;
    this.length = length;
    this.#data = data;
    leaks.register(this, { io: io ? new WeakRef(io) : undefined, handle, slot }, this);
  }

  /** Rebuilds a transferred slot in this thread (its new owner). */
  static fromTransfer(t: OwnedSlotTransfer): OwnedSlot {
    const ab = loadAddon().slotView(t.handle, t.offset, t.length);
    if (!ab) throw new IoError('ShardClosed', 'OwnedSlot.fromTransfer: the shard that owns this slot was shut down');
    return new OwnedSlot(undefined, t.handle, t.slot, t.offset, t.length, new Uint8Array(ab));
  }

  /** The payload. Throws after release() or transfer(). */
  get data(): Uint8Array {
    if (!this.#data) throw new IoError('InvalidArgument', 'this OwnedSlot was released or transferred');
    return this.#data;
  }

  /** Whether release() or transfer() was called. */
  get released(): boolean {
    return this.#data === null;
  }

  /** Gives the slot back. Idempotent. Works on any thread. */
  release(): void {
    if (!this.#data) return;
    this.#data = null;
    leaks.unregister(this);
    release(this.#io, this.#handle, this.#slot);
  }

  /** Hands ownership to another thread: postMessage the result, then `OwnedSlot.fromTransfer` there. */
  transfer(): OwnedSlotTransfer {
    if (!this.#data) throw new IoError('InvalidArgument', 'this OwnedSlot was released or transferred');
    this.#data = null;
    leaks.unregister(this);
    return { handle: this.#handle, slot: this.#slot, offset: this.#offset, length: this.length };
  }

  [Symbol.dispose](): void {
    this.release();
  }
}

Io.prototype.detachEventData = function detachEventData(this: Io): OwnedSlot | null {
  const ev = this._current();
  if (!ev || (ev.type !== 'StreamFrame' && ev.type !== 'UdpRecv')) return null;
  const offset = ev.offset;
  const length = ev.length;
  const slot = this._native.detachRx(this._shard, offset);
  if (slot < 0) return null;  // detached already
  const handle = this.handle().id;
  return new OwnedSlot(this, handle, slot, offset, length, new Uint8Array(this._pool, offset, length));
};
