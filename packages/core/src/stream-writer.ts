/**
 * StreamWriter: the write discipline every stream server needs, in one small object.
 * @module
 */
import { ERR } from './addon.js';
import { rejectUnknownKeys } from './address.js';
import { IoError, describeValue } from './errors.js';
import { Io } from './io.js';
import type { ConnId, Event } from './events.js';

const CLOSING = -1;

/** Options of {@link StreamWriter}. */
export interface StreamWriterOptions {
  /**
   * Pause reading from a connection while it has bytes waiting here (`io.pauseRecv`), and
   * resume once they are all handed to the engine. The connection paused is the one written
   * to, so this bounds memory when what you write to a connection comes from what it sent (an
   * echo, a request/response server) and its peer reads slower than it writes: the peer meets
   * TCP flow control instead of this process buffering without limit. A proxy writes to one
   * connection what it read from another: pausing the destination does not slow the source, so
   * pause the source yourself (`io.pauseRecv(source)` when `write` returns false, `resumeRecv`
   * when `pending(destination)` is 0 after a `Writable`). Turn it off when what you write does
   * not come from what the same connection sent.
   * @default true
   */
  pauseReading?: boolean;
}

/**
 * Writes whole messages on any stream connection for any message size: what the engine's
 * write queue does not take now (`io.streamWrite` returned less) is copied, kept in order and
 * written when the connection's `Writable` event comes; meanwhile reading from that connection
 * is paused (see {@link StreamWriterOptions.pauseReading}). Pass every event to
 * {@link StreamWriter.handle}.
 *
 * Allocation happens only on the slow path (a refused rest is copied); when the queue takes
 * everything, `write` allocates nothing.
 *
 * @example
 * ```ts
 * const io = new Io();
 * const out = new StreamWriter(io);
 * io.tcpListen('0.0.0.0:7001');
 * io.runSync((ev) => {
 *   out.handle(ev);                                            // Writable / PeerEnded / Disconnected
 *   if (ev.type === 'StreamFrame') out.write(ev.conn, ev.data); // echo, nothing lost
 * });
 * ```
 */
export class StreamWriter {
  readonly #io: Io;
  readonly #pause: boolean;
  readonly #pending = new Map<ConnId, Uint8Array[]>();
  readonly #bytes = new Map<ConnId, number>();
  readonly #ending = new Set<ConnId>();

  constructor(io: Io, options: StreamWriterOptions = {}) {
    if (!(io instanceof Io)) throw new IoError('InvalidArgument', `new StreamWriter(io): io must be an Io, got ${describeValue(io)}`);
    rejectUnknownKeys(options, ['pauseReading'], 'StreamWriter');
    if (options.pauseReading !== undefined && typeof options.pauseReading !== 'boolean') {
      throw new IoError('InvalidConfig', `StreamWriter: pauseReading must be true or false, got ${describeValue(options.pauseReading)}`, { key: 'pauseReading' });
    }
    this.#io = io;
    this.#pause = options.pauseReading ?? true;
  }

  /**
   * Writes `data` after whatever is still waiting for this connection. Returns true when the
   * engine took all of it now; false when (part of) it waits here for `Writable`. `data` may be
   * a borrowed view (`ev.data`): what must wait is copied. A closing connection takes nothing
   * (returns true: there is nothing left to wait for); a stale id throws InvalidConnId.
   */
  write(conn: ConnId, data: Uint8Array): boolean {
    if (!(data instanceof Uint8Array)) {
      throw new IoError('InvalidArgument', `StreamWriter.write: data must be a Uint8Array (a Buffer is one), got ${describeValue(data)}`);
    }
    const q = this.#pending.get(conn);
    if (q !== undefined) {
      q.push(data.slice());
      this.#bytes.set(conn, this.#bytes.get(conn)! + data.length);
      return false;
    }
    const n = this.#write(conn, data);
    if (n === data.length || n === CLOSING) return true;
    this.#pending.set(conn, [data.slice(n)]);
    this.#bytes.set(conn, data.length - n);
    if (this.#pause) this.#io.pauseRecv(conn);
    return false;
  }

  /** Bytes of `conn` waiting here for `Writable` (0 when none). */
  pending(conn: ConnId): number {
    return this.#bytes.get(conn) ?? 0;
  }

  /**
   * Feed every event here: `Writable` writes what waits (and resumes reading once all of it is
   * taken); `Disconnected` forgets the connection. Other events are ignored.
   */
  handle(ev: Event): void {
    if (ev === null || typeof ev !== 'object') throw new IoError('InvalidArgument', `StreamWriter.handle: pass each event, got ${describeValue(ev)}`);
    if (ev.type === 'Writable') this.#flush(ev.conn);
    else if (ev.type === 'Disconnected') {
      this.#pending.delete(ev.conn);
      this.#bytes.delete(ev.conn);
      this.#ending.delete(ev.conn);
    }
  }

  /**
   * Ends the connection (`io.end`: FIN, reading goes on) once everything waiting here has been
   * handed to the engine — at once when nothing waits. `io.end` and `io.closeGraceful` on their
   * own flush only the engine's queue, not what waits here for `Writable`.
   */
  end(conn: ConnId): void {
    if (this.#pending.has(conn)) this.#ending.add(conn);
    else this.#io.end(conn);
  }

  #flush(conn: ConnId): void {
    const q = this.#pending.get(conn);
    if (q === undefined) return;
    let left = this.#bytes.get(conn)!;
    while (q.length > 0) {
      const head = q[0];
      const n = this.#write(conn, head);
      if (n === CLOSING) break;
      left -= n;
      if (n === head.length) {
        q.shift();
        continue;
      }
      q[0] = head.subarray(n);
      this.#bytes.set(conn, left);
      return;
    }
    this.#pending.delete(conn);
    this.#bytes.delete(conn);
    if (this.#ending.delete(conn)) this.#io.end(conn);
    else if (this.#pause) this.#io.resumeRecv(conn);
  }

  // Bytes taken, or CLOSING (io.streamWrite answers 0 for a closing connection as for a full
  // queue; here the two must differ). Other refusals throw as io.streamWrite does.
  #write(conn: ConnId, data: Uint8Array): number {
    if (this.#io.closed) return this.#io.streamWrite(conn, data);  // throws ShardClosed
    let r: number;
    try {
      r = this.#io._native.write(this.#io._shard, conn, data);
    } catch {
      return this.#io.streamWrite(conn, data);  // the same call, with its IoError
    }
    if (r >= 0) return r;
    if (r === ERR.CLOSING) return CLOSING;
    return this.#io.streamWrite(conn, data);  // throws the IoError for r
  }
}
