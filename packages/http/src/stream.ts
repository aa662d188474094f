/**
 * Streamed answers: `io.httpRespondStream(conn, requestId, head)` sends the head at once
 * (chunked; close-delimited for HTTP/1.0) and returns a writer for the body, with backpressure:
 * `write()` returns false when the connection's write queue is full, and `drained()` resolves
 * when it has room again. Server-sent events, large generated bodies, proxied downloads.
 * @module
 */
import { Io, IoError, type ConnId, type Event } from '@zero-io/core';
import { ERR, describeValue, registerEventType } from '@zero-io/core/internal';
import { ZeroResponse } from './response.js';

const EV_HTTP_WRITABLE = 12;

/** A room event of a streamed answer: taken by its writer, never seen by the application. */
export interface HttpWritableEvent {
  readonly type: 'HttpWritable';
  readonly conn: ConnId;
  readonly requestId: number;
}

interface Cursor { _io(): Io; _base(): number }
registerEventType(EV_HTTP_WRITABLE, 'HttpWritable', {});

// Per Io: connection -> request id -> its open writer (HTTP/2 streams several on a connection).
const writers = new WeakMap<Io, Map<number, Map<number, HttpBodyWriter>>>();

function writersOf(io: Io): Map<number, Map<number, HttpBodyWriter>> {
  let m = writers.get(io);
  if (m !== undefined) return m;
  const mine = new Map<number, Map<number, HttpBodyWriter>>();
  writers.set(io, mine);
  const prev = io._intercept;
  io._intercept = (ev: Event): boolean => {
    const t = (ev as { type: string }).type;
    if (t === 'HttpWritable') {
      const c = ev as unknown as Cursor & { conn: number };
      mine.get(c.conn)?.get(c._io()._i32[c._base() + 6] >>> 0)?._room();
      return true;
    }
    if (t === 'Disconnected' || t === 'HttpReset') {
      const conn = (ev as { conn: number }).conn;
      const ws = mine.get(conn);
      if (ws !== undefined) {
        if (t === 'Disconnected') for (const w of [...ws.values()]) w._gone();
        else ws.get((ev as { requestId: number }).requestId)?._gone();
      }
    }
    return prev !== null && prev(ev);
  };
  return mine;
}

function forget(io: Io, w: HttpBodyWriter): void {
  const m = writers.get(io)?.get(w.conn);
  if (m === undefined) return;
  m.delete(w.requestId);
  if (m.size === 0) writers.get(io)!.delete(w.conn);
}

/**
 * The body of a streamed answer. Write pieces in order, then `end()`. Each piece is copied into
 * the engine; `write()` returning false means "wait for `drained()`" (what you wrote was taken:
 * nothing is lost, but memory grows if you keep writing). HTTP/1.1: one streamed answer may be
 * open per connection at a time; HTTP/2: one per stream.
 */
export class HttpBodyWriter {
  readonly conn: ConnId;
  readonly requestId: number;
  #io: Io;
  #ended = false;
  #gone = false;
  #waiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  #room = true;

  /** @internal */
  constructor(io: Io, conn: ConnId, requestId: number) {
    this.#io = io;
    this.conn = conn;
    this.requestId = requestId;
  }

  /** The request is gone (its connection closed): writes are dropped, `drained()` rejects. */
  get closed(): boolean {
    return this.#gone;
  }
  /** `end()` was called. */
  get ended(): boolean {
    return this.#ended;
  }

  /**
   * Writes a piece of the body (a string is sent as UTF-8). True: write more now. False: the
   * write queue is full (or earlier answers on this connection are still going out) — wait for
   * `drained()`; also false once the request is gone (`closed`).
   */
  write(chunk: Uint8Array | string): boolean {
    if (this.#ended) throw new IoError('InvalidArgument', 'HttpBodyWriter.write after end()');
    if (typeof chunk !== 'string' && !(chunk instanceof Uint8Array)) {
      throw new IoError('InvalidArgument', `HttpBodyWriter.write: expected a Uint8Array or a string, got ${describeValue(chunk)}`);
    }
    if (this.#gone) return false;
    const r = this.#io._native.httpStreamWrite(this.#io._shard, this.conn, this.requestId, chunk);
    if (r < 0) {
      this._gone();
      return false;
    }
    this.#room = r === 1;
    return this.#room;
  }

  /** Resolves when there is room for more (at once when there is); rejects (RequestAborted) when the request is gone. */
  drained(): Promise<void> {
    if (this.#gone) return Promise.reject(new IoError('RequestAborted', 'the connection of this streamed answer closed'));
    if (this.#room) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  /** Ends the body (after an optional last piece); the next answer on the connection may follow. */
  end(chunk?: Uint8Array | string): void {
    if (this.#ended) return;
    if (chunk !== undefined) this.write(chunk);
    this.#ended = true;
    forget(this.#io, this);
    if (!this.#gone && !this.#io.closed) this.#io._native.httpStreamEnd(this.#io._shard, this.conn, this.requestId);
  }

  /** @internal the engine has room again */
  _room(): void {
    this.#room = true;
    const w = this.#waiters;
    this.#waiters = [];
    for (const x of w) x.resolve();
  }

  /** @internal the connection closed */
  _gone(): void {
    if (this.#gone) return;
    this.#gone = true;
    forget(this.#io, this);
    const w = this.#waiters;
    this.#waiters = [];
    for (const x of w) x.reject(new IoError('RequestAborted', 'the connection of this streamed answer closed'));
  }
}

declare module '@zero-io/core' {
  interface EventMap {
    HttpWritable: HttpWritableEvent;
  }
  interface Io {
    /**
     * Answers request `requestId` of `conn` with a streamed body: `head` gives the status and
     * fields (its body must be empty); the engine sends `Transfer-Encoding: chunked` (HTTP/1.0:
     * the body ends with the connection). Returns the writer, or null when the request is gone.
     * HTTP/1.1: one streamed answer may be open per connection (InvalidArgument otherwise);
     * HTTP/2: one per stream, as many as there are streams (DATA frames as flow control allows).
     */
    httpRespondStream(conn: ConnId, requestId: number, head: ZeroResponse): HttpBodyWriter | null;
  }
}

Io.prototype.httpRespondStream = function httpRespondStream(this: Io, conn: ConnId, requestId: number, head: ZeroResponse): HttpBodyWriter | null {
  if (!(head instanceof ZeroResponse)) {
    throw new IoError('InvalidArgument', `httpRespondStream: expected a ZeroResponse for the head (ZeroResponse.ok().header(...)), got ${describeValue(head)}`);
  }
  const [status, fields, hasBody] = head._head();
  if (hasBody) throw new IoError('InvalidArgument', 'httpRespondStream: the head must have no body (write the body with the writer)');
  const r = this._native.httpStreamStart(this._shard, conn, requestId, status, fields);
  if (r === ERR.STALE || r === ERR.CLOSING) return null;
  if (r === ERR.QUEUE_FULL) throw new IoError('InvalidArgument', `httpRespondStream: connection ${conn} has a streamed answer open already; end() it first`);
  if (r === ERR.NOT_HTTP) throw new IoError('InvalidConnId', `httpRespondStream: connection ${conn} is not an HTTP connection`);
  if (r < 0) throw new IoError('InvalidArgument', `httpRespondStream: the head was refused (${r})`);
  const w = new HttpBodyWriter(this, conn, requestId);
  const all = writersOf(this);
  let m = all.get(conn);
  if (m === undefined) all.set(conn, (m = new Map()));
  m.set(requestId, w);
  return w;
};
