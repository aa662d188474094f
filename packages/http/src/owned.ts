/**
 * Owned requests: an HttpRequest kept past its event (`io.detachHttpRequest()`), and the async
 * runtime built on them (`io.runAsync`). The request's record slot is held (an OwnedSlot) until
 * the request is answered or released; a streamed body is read through `bodyStream()`, an
 * async iterator over at most 8 queued pieces of up to 64 KiB (bytes that arrive while the consumer
 * is busy are gathered into one piece): beyond that the connection stops being read
 * (the client meets TCP flow control), so a slow consumer never buffers without bound.
 * @module
 */
import { Io, IoError, IoHandle, OwnedSlot, type ConnId, type Event, type OwnedSlotTransfer, type ShutdownHandle } from '@zero-io/core';
import { describeValue, rejectUnknownKeys } from '@zero-io/core/internal';
import type { HttpBodyChunkEvent } from './index.js';
import {
  R_BODY, R_PATH, R_QUERY, R_TARGET, REQ_HTTP10, REQ_KEEP_ALIVE, REQ_STREAMED, allFields, findField, methodOf,
  span, u32, type Latin1Buffer,
} from '@zero-io/core/internal';
import { ZeroResponse } from './response.js';
import type { HttpBodyWriter } from './stream.js';

const QUEUE_PAUSE = 8;   // pieces queued before the connection stops being read
const QUEUE_RESUME = 2;  // ... and read again once the consumer is down to this
// Body bytes that arrive before the consumer asks for them are gathered into pieces of up to
// this size (a copy): one piece per receive slot (2 KiB by default) would cost a promise, an
// object and, every 8 pieces, a pause and resume of the connection per 16 KiB
// (docs/architecture/0015-http1-server.md, measured with benchmarks/http.mjs upload).
const PIECE_BYTES = 64 * 1024;

/** Per Io: the owned request whose body is being read on each connection, and the unanswered ones. */
interface Owners {
  bodies: Map<number, HttpOwnedRequest>;
  live: Map<number, Set<HttpOwnedRequest>>;
}
const owners = new WeakMap<Io, Owners>();

function ownersOf(io: Io): Owners {
  let o = owners.get(io);
  if (o !== undefined) return o;
  const mine: Owners = { bodies: new Map(), live: new Map() };
  owners.set(io, mine);
  // Body pieces of owned requests go to them, not to the application's handler; a close
  // aborts the owned requests of that connection still waiting for their answer.
  const prev = io._intercept;
  io._intercept = (ev: Event): boolean => {
    try {
      return take(ev) || (prev !== null && prev(ev));
    } catch (err) {  // never out of nextEvent: that would end the driver
      process.emitWarning(`zero-io: @zero-io/http's owned-request bookkeeping failed on ${ev.type}: ${(err as Error)?.message ?? err}`, { code: 'ZIO_HTTP_INTERNAL' });
      return false;
    }
  };
  const take = (ev: Event): boolean => {
    if (ev.type === 'HttpBodyChunk') {
      const r = mine.bodies.get(ev.conn);
      if (r !== undefined && r.requestId === ev.requestId) {
        r._push(ev);
        return true;
      }
    } else if (ev.type === 'HttpReset') {
      // HTTP/2: the client cancelled this stream.
      const set = mine.live.get(ev.conn);
      if (set !== undefined) for (const r of set) if (r.requestId === ev.requestId) r._abort(`the client reset the stream (HTTP/2 error ${ev.errorCode})`, false);
    } else if (ev.type === 'PeerEnded') {
      // The client ended its side with answers owed: it will most likely not read them (a
      // client that gave up). Owned requests hear of it through their signal; an answer still
      // goes out if the application gives one.
      const set = mine.live.get(ev.conn);
      if (set !== undefined) for (const r of set) r._abort('the client ended its side of the connection', true);
    } else if (ev.type === 'Disconnected') {
      const set = mine.live.get(ev.conn);
      mine.bodies.delete(ev.conn);
      if (set !== undefined) {
        mine.live.delete(ev.conn);
        for (const r of set) r._abort(ev.reason, false);
      }
    }
    return false;
  };
  return mine;
}

/** An error of a body reader, with the status a runtime answers it with. */
function bodyError(kind: 'BodyTooLarge' | 'InvalidArgument', message: string, status: number): IoError {
  const e = new IoError(kind, message);
  (e as IoError & { httpStatus: number }).httpStatus = status;
  return e;
}

/** What crosses to another thread (postMessage it; rebuild with `HttpOwnedRequest.fromTransfer`). */
export interface HttpOwnedRequestTransfer {
  readonly slot: OwnedSlotTransfer;
  readonly conn: ConnId;
  readonly requestId: number;
  readonly kind: number;
}

/** Options of the body readers. */
export interface BodyReadOptions {
  /** The most bytes read; a larger body throws BodyTooLarge (runAsync answers 413). @default 1048576 */
  maxBytes?: number;
}

/**
 * An HTTP request that outlives its event: `io.detachHttpRequest()` during an `HttpRequest`
 * event, or the argument of a `runAsync` handler. It holds one pool slot (the request's
 * record) until it is answered (`respond`) or released (`release`); hold few at a time.
 * Accessors throw once it is answered or released.
 */
export class HttpOwnedRequest {
  /** The connection the request came on. */
  readonly conn: ConnId;
  /** Its number on the connection (what `io.httpRespond` takes). */
  readonly requestId: number;
  readonly method: string;
  readonly version: '1.0' | '1.1' | '2';
  readonly keepAlive: boolean;
  /** The body arrives after the head (read it with bodyStream() / text() / json() / bytes()). */
  readonly streamed: boolean;
  #io: Io | null;          // null in another thread: answers go through #handle
  #handle: IoHandle | null = null;
  #kind: number;
  #slot: OwnedSlot;
  #bytes: Uint8Array;
  #text: Latin1Buffer;
  // Made when `signal` is first read (an AbortController per request costs ~2 µs most never use).
  #abort: AbortController | null = null;
  #aborted: IoError | null = null;
  #peerEnded = false;  // aborted because the client ended its side (the connection is still open)
  #writer: HttpBodyWriter | null = null;
  #pieces: Uint8Array[] = [];
  #tail: Uint8Array | null = null;  // the piece being filled (not in #pieces yet)
  #tailLen = 0;
  #ended: boolean;
  #wake: (() => void) | null = null;
  #paused = false;
  #reading = false;
  #answered = false;

  /** @internal */
  constructor(io: Io | null, conn: ConnId, requestId: number, kind: number, slot: OwnedSlot) {
    this.#io = io;
    this.#kind = kind;
    this.conn = conn;
    this.requestId = requestId;
    this.#slot = slot;
    this.#bytes = slot.data;
    this.#text = Buffer.from(this.#bytes.buffer, this.#bytes.byteOffset, this.#bytes.length) as Latin1Buffer;
    const flags = kind >>> 16;
    this.method = methodOf(kind & 0xff, this.#bytes, this.#text, 0, this.#bytes.length);
    const v = (kind >> 8) & 0xff;
    this.version = v === 20 ? '2' : (flags & REQ_HTTP10) !== 0 ? '1.0' : '1.1';
    this.keepAlive = (flags & REQ_KEEP_ALIVE) !== 0;
    this.streamed = (flags & REQ_STREAMED) !== 0;
    this.#ended = !this.streamed;
    if (io === null) return;
    const o = ownersOf(io);
    let set = o.live.get(conn);
    if (set === undefined) o.live.set(conn, (set = new Set()));
    set.add(this);
    if (this.streamed) o.bodies.set(conn, this);
  }

  /**
   * Aborted when the client goes away before the answer: it ended its side of the connection
   * (a client that gave up: `curl -m`, a closed browser tab) or the connection closed; its
   * `reason` is a RequestAborted IoError. Pass it on to what the handler awaits (fetch, timers,
   * database drivers). As with node:http's 'aborted', a client that half-closes after its
   * request (rare for HTTP) is counted as gone too; an answer given anyway is still sent.
   */
  get signal(): AbortSignal {
    if (this.#abort === null) {
      this.#abort = new AbortController();
      if (this.#aborted !== null) this.#abort.abort(this.#aborted);
    }
    return this.#abort.signal;
  }
  /** Whether respond(), respondStream() or release() was called. */
  get answered(): boolean {
    return this.#answered;
  }

  /** @internal runAsync: the handler failed after respondStream(); the answer cannot be completed. */
  _abandonStream(): void {
    const w = this.#writer;
    if (w === null || w.closed || this.#io === null || this.#io.closed) return;
    try {
      this.#io.close(this.conn);  // the client sees a cut answer, never a complete-looking one
    } catch {
      // closed meanwhile
    }
  }

  #live(): Uint8Array {
    if (this.#answered) throw new IoError('InvalidArgument', 'this HttpOwnedRequest was answered or released: read what you need before responding');
    return this.#bytes;
  }
  /** The request-target before '?' (not percent-decoded). */
  path(): string { return span(this.#live(), this.#text, 0, this.#bytes.length, R_PATH); }
  /** The query after '?', without it ('' when none). */
  query(): string { return span(this.#live(), this.#text, 0, this.#bytes.length, R_QUERY); }
  /** The whole request-target. */
  target(): string { return span(this.#live(), this.#text, 0, this.#bytes.length, R_TARGET); }
  /** The first field named `name` (case-insensitive), or null. */
  header(name: string): string | null { return findField(this.#live(), this.#text, 0, this.#bytes.length, name); }
  /** Every field as [name, value], in order. */
  headers(): [string, string][] { return allFields(this.#live(), this.#text, 0, this.#bytes.length); }
  /** The inline body (a view into the held slot, valid until the request is answered); empty when streamed. */
  body(): Uint8Array {
    const b = this.#live();
    const off = u32(b, R_BODY);
    return b.subarray(off, off + u32(b, R_BODY + 4));
  }

  /**
   * The body, piece by piece: each piece is yours to keep (bytes that arrived while you were busy
   * come as one piece of up to 64 KiB). With more than 8 pieces waiting (512 KiB), the
   * connection is not read until the consumer catches up. Throws
   * RequestAborted when the client goes away first. Callable once.
   */
  bodyStream(): AsyncGenerator<Uint8Array, void, void> {
    if (this.#reading) {
      throw new IoError('InvalidArgument', 'the body was read already (bodyStream(), bytes(), text() and json() each read it; read it once)');
    }
    this.#reading = true;
    return this.#pieces_();
  }

  async *#pieces_(): AsyncGenerator<Uint8Array, void, void> {
    if (!this.streamed) {
      const b = this.body();
      if (b.length > 0) yield b;
      return;
    }
    for (;;) {
      let p = this.#pieces.shift();
      if (p === undefined && this.#tail !== null) {  // nothing complete queued: take what has come
        p = this.#tail.subarray(0, this.#tailLen);
        this.#tail = null;
      }
      if (p !== undefined) {
        if (this.#paused && this.#pieces.length <= QUEUE_RESUME) this.#resume();
        yield p;
        continue;
      }
      if (this.#ended) return;
      if (this.#aborted !== null) throw this.#aborted;
      if (this.#answered) return;
      await new Promise<void>((resolve) => { this.#wake = resolve; });
    }
  }

  /** The whole body as bytes (a copy), at most `maxBytes`. */
  async bytes(options: BodyReadOptions = {}): Promise<Uint8Array> {
    const max = options.maxBytes ?? 1 << 20;
    if (!Number.isInteger(max) || max < 0) throw new IoError('InvalidArgument', `maxBytes must be a non-negative integer, got ${describeValue(max)}`);
    // A declared length over the cap is refused before a byte is read (a client that sent
    // Expect: 100-continue may be waiting, or still uploading).
    const declared = Number(this.header('content-length') ?? -1);
    if (declared > max) {
      this.#reading = true;
      throw bodyError('BodyTooLarge', `the request body is larger than ${max} bytes (maxBytes): Content-Length ${declared}`, 413);
    }
    const parts: Uint8Array[] = [];
    let n = 0;
    for await (const piece of this.bodyStream()) {
      n += piece.length;
      if (n > max) throw bodyError('BodyTooLarge', `the request body is larger than ${max} bytes (maxBytes)`, 413);
      parts.push(this.streamed ? piece : piece.slice());  // streamed pieces are copies already
    }
    if (parts.length === 1) return parts[0];
    const out = new Uint8Array(n);
    let at = 0;
    for (const p of parts) { out.set(p, at); at += p.length; }
    return out;
  }
  /** The whole body as an ArrayBuffer of its own (as `Request.arrayBuffer()`), at most `maxBytes`. */
  async arrayBuffer(options: BodyReadOptions = {}): Promise<ArrayBuffer> {
    const b = await this.bytes(options);
    if (b.byteOffset === 0 && b.byteLength === b.buffer.byteLength) return b.buffer as ArrayBuffer;
    return b.slice().buffer as ArrayBuffer;
  }
  /** The whole body decoded as UTF-8 (invalid sequences become U+FFFD), at most `maxBytes`. */
  async text(options: BodyReadOptions = {}): Promise<string> {
    return new TextDecoder().decode(await this.bytes(options));
  }
  /** The whole body parsed as JSON; a body that is not JSON throws InvalidArgument (runAsync answers 400). */
  async json<T = unknown>(options: BodyReadOptions = {}): Promise<T> {
    const t = await this.text(options);
    try {
      return JSON.parse(t) as T;
    } catch (e) {
      throw bodyError('InvalidArgument', `the request body is not valid JSON: ${(e as Error).message}`, 400);
    }
  }

  /**
   * Answers the request (as `io.httpRespond`) and releases it. True when the answer is queued;
   * false when the request is gone (the client went away: see `signal`).
   */
  respond(response: ZeroResponse): boolean {
    if (this.#answered) return false;
    let ok: boolean;
    if (this.#io === null) {  // another thread: through the shard's command queue
      this.#handle!.httpRespond(this.conn, this.requestId, response);
      ok = true;
    } else {
      ok = this.#io.closed ? false : this.#io.httpRespond(this.conn, this.requestId, response);
    }
    this.#drop(true);
    return ok;
  }

  /**
   * Answers the request with a streamed body (as `io.httpRespondStream`: the head now, then
   * `write()` / `end()` on the writer it returns) and releases the request; null when the request
   * is gone. On the shard's thread only (not after `transfer()`). From `runAsync`, return nothing
   * after calling it.
   */
  respondStream(head: ZeroResponse): HttpBodyWriter | null {
    if (this.#answered) return null;
    if (this.#io === null) {
      throw new IoError('InvalidArgument', 'respondStream(): a streamed answer is made on the shard\'s thread (a transferred request answers with respond())');
    }
    const w = this.#io.closed ? null : this.#io.httpRespondStream(this.conn, this.requestId, head);
    this.#writer = w;
    this.#drop(w !== null);
    return w;
  }

  /**
   * Hands the request to another thread: postMessage the result, then
   * `HttpOwnedRequest.fromTransfer(t)` there, whose `respond()` answers through the shard's
   * IoHandle. For requests whose body is inline (or absent): read a streamed body here first
   * (`await req.bytes()`) and post it along. This object is unusable afterwards.
   */
  transfer(): HttpOwnedRequestTransfer {
    if (this.#answered) throw new IoError('InvalidArgument', 'transfer(): this HttpOwnedRequest was answered or released');
    if (this.#io === null) throw new IoError('InvalidArgument', 'transfer(): a transferred request stays in the thread it was sent to');
    if (this.streamed && !(this.#ended && this.#pieces.length === 0 && this.#tail === null)) {
      throw new IoError('InvalidArgument', 'transfer(): the body of this request is streamed; read it first (await req.bytes()) and post it along');
    }
    const t: HttpOwnedRequestTransfer = { slot: this.#slot.transfer(), conn: this.conn, requestId: this.requestId, kind: this.#kind };
    this.#answered = true;
    this.#forget();
    return t;
  }

  /** Rebuilds a transferred request in this thread (its new owner). */
  static fromTransfer(t: HttpOwnedRequestTransfer): HttpOwnedRequest {
    const slot = OwnedSlot.fromTransfer(t.slot);
    const r = new HttpOwnedRequest(null, t.conn, t.requestId, t.kind, slot);
    r.#handle = IoHandle.from(t.slot.handle);
    return r;
  }


  /** Gives the slot back without answering (answer with `io.httpRespond` yourself). Idempotent. */
  release(): void {
    this.#drop(false);
  }

  #drop(answered: boolean): void {
    if (this.#answered) return;
    this.#answered = true;
    this.#forget();
    // Released unanswered after the client ended its side (it gave up on this request): nothing
    // will be answered, so its connection closes now instead of waiting requestTimeoutMs.
    if (!answered && this.#peerEnded && this.#io !== null && !this.#io.closed) {
      try {
        this.#io.close(this.conn);
      } catch {
        // closed meanwhile
      }
    }
    // Body pieces still on their way are dropped (the owner stays registered until the end).
    this.#pieces.length = 0;
    this.#tail = null;
    if (this.#paused) this.#resume();
    this.#slot.release();
    this.#wake?.();
  }

  #forget(): void {
    if (this.#io === null) return;
    const o = owners.get(this.#io);
    const set = o?.live.get(this.conn);
    set?.delete(this);
    if (set?.size === 0) o!.live.delete(this.conn);
  }

  #resume(): void {
    this.#paused = false;
    if (this.#io !== null && !this.#io.closed) {
      try {
        this.#io.resumeRecv(this.conn);
      } catch {
        // the connection closed meanwhile: nothing to resume
      }
    }
  }

  /** @internal a piece of this request's body (the event is borrowed: kept by detach or copy) */
  _push(ev: HttpBodyChunkEvent): void {
    if (ev.end) {
      this.#ended = true;
      const o = owners.get(this.#io!);
      if (o?.bodies.get(this.conn) === this) o.bodies.delete(this.conn);
    }
    if (!this.#answered && ev.length > 0) {
      const io = this.#io!;
      const n = ev.length;
      let tail = this.#tail;
      if (tail !== null && this.#tailLen + n > tail.length) {  // full: queued whole
        this.#pieces.push(tail.subarray(0, this.#tailLen));
        tail = null;
      }
      if (tail === null) {
        tail = this.#tail = Buffer.allocUnsafe(Math.max(PIECE_BYTES, n));  // every byte is written before it is read
        this.#tailLen = 0;
      }
      tail.set(new Uint8Array(io._pool, ev.offset, n), this.#tailLen);
      this.#tailLen += n;
      if (this.#pieces.length >= QUEUE_PAUSE && !this.#paused && !this.#ended) {
        this.#paused = true;
        io.pauseRecv(this.conn);
      }
    }
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  /** @internal the connection closed before the answer */
  _abort(reason: string, peerEnded: boolean): void {
    if (this.#answered || this.#aborted !== null) return;
    this.#peerEnded = peerEnded;
    this.#aborted = new IoError('RequestAborted', `the request ended before its answer: ${reason}`);
    this.#abort?.abort(this.#aborted);
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }
}

/** Options of {@link Io.runAsync}. */
export interface RunAsyncOptions {
  /**
   * Requests being handled at once on this Io; beyond it a request is answered
   * `503 Service Unavailable` (with `Retry-After: 1`) without calling the handler. @default 1024
   */
  maxInFlight?: number;
  /**
   * Called when the handler throws or rejects; the request is answered 500. (A body reader's
   * BodyTooLarge or bad JSON that the handler lets through is answered 413 / 400 and is not
   * reported: it is the client's mistake.) @default logs to stderr
   */
  onError?: (error: unknown, request: HttpOwnedRequest) => void;
  /** Every event that is not an HTTP request (Connected, Disconnected, other protocols' events). */
  onEvent?: (event: Event, io: Io) => void;
}

declare module '@zero-io/core' {
  interface Io {
    /**
     * During an `HttpRequest` event: keeps the request past the event, as an
     * {@link HttpOwnedRequest} (null for any other event, or when detached already). Its body
     * pieces then go to the owned request (`bodyStream()`), not to the handler.
     */
    detachHttpRequest(): HttpOwnedRequest | null;
    /**
     * Drives the Io like runSync, calling `handler` for every HTTP request with an owned
     * request; what it returns (or resolves to) is the answer. A handler that answered itself
     * (`request.respondStream(head)` for a streamed answer, `respond()`, or `release()`)
     * returns nothing. A handler that throws or rejects is answered 500 (413 / 400 for body
     * readers' errors) and reported to `onError`.
     */
    runAsync(handler: (request: HttpOwnedRequest) => ZeroResponse | void | Promise<ZeroResponse | void>, options?: RunAsyncOptions): ShutdownHandle;
  }
}

Io.prototype.detachHttpRequest = function detachHttpRequest(this: Io): HttpOwnedRequest | null {
  const ev = this._current();
  if (ev === null || ev.type !== 'HttpRequest') return null;
  const c = ev as unknown as { offset: number; length: number; _base(): number };
  const off = c.offset, len = c.length;
  const s = this._native.detachRx(this._shard, off);
  if (s < 0) return null;
  const slot = new OwnedSlot(this, this.handle().id, s, off, len, new Uint8Array(this._pool, off, len));
  return new HttpOwnedRequest(this, ev.conn, ev.requestId, this._i32[c._base() + 3], slot);
};

Io.prototype.runAsync = function runAsync(this: Io, handler, options: RunAsyncOptions = {}): ShutdownHandle {
  if (typeof handler !== 'function') {
    throw new IoError('InvalidArgument', `runAsync: the handler must be a function (request) => ZeroResponse | Promise<ZeroResponse>, got ${describeValue(handler)}`);
  }
  rejectUnknownKeys(options, ['maxInFlight', 'onError', 'onEvent'], 'runAsync');
  const max = options.maxInFlight ?? 1024;
  if (!Number.isInteger(max) || max < 1) throw new IoError('InvalidConfig', `runAsync: maxInFlight must be a positive integer, got ${describeValue(max)}`, { key: 'maxInFlight' });
  const onError = options.onError ?? ((err: unknown, req: HttpOwnedRequest) => {
    const path = req.answered ? '' : ` ${req.path()}`;
    process.stderr.write(`zero-io: runAsync handler failed on ${req.method}${path} (conn ${req.conn}, request ${req.requestId}): ${(err as Error)?.stack ?? String(err)}\n`);
  });
  const onEvent = options.onEvent;
  const busy = ZeroResponse.status(503).header('Retry-After', '1').text('server busy: too many requests in flight\n');
  const failed = ZeroResponse.serverError().text('internal server error\n');
  const tooLarge = ZeroResponse.status(413).text('request body too large\n');
  const badBody = ZeroResponse.badRequest().text('bad request body\n');
  let inFlight = 0;
  const answer = (req: HttpOwnedRequest, res: unknown): void => {
    if (req.answered) return;  // the handler answered (or released) it itself
    if (!(res instanceof ZeroResponse)) {
      throw new IoError('InvalidArgument', res === undefined
        ? 'runAsync: the handler returned nothing and did not answer (return a ZeroResponse, or call request.respond() / respondStream())'
        : `runAsync: the handler must return (or resolve to) a ZeroResponse, got ${describeValue(res)}`);
    }
    req.respond(res);
  };
  const fail = (req: HttpOwnedRequest, err: unknown): void => {
    const status = (err as { httpStatus?: number } | null)?.httpStatus;
    // A client's mistake (a body too large, not JSON) is answered, not reported as a failure.
    if (!req.signal.aborted && status === undefined) onError(err, req);
    if (!req.answered) req.respond(status === 413 ? tooLarge : status === 400 ? badBody : failed);
    else req._abandonStream();  // a streamed answer its handler cannot finish: its connection closes
  };
  if (this.running) throw new IoError('DriverRunning', 'runAsync(): this Io is already driven (runSync() or runAsync()); stop that driver first');
  return this.runSync((ev, io) => {
    if (ev.type !== 'HttpRequest') {
      onEvent?.(ev, io);
      return;
    }
    const req = io.detachHttpRequest();
    if (req === null) return;
    if (inFlight >= max) {
      req.respond(busy);
      return;
    }
    inFlight++;
    let r: ZeroResponse | void | Promise<ZeroResponse | void>;
    try {
      r = handler(req);
    } catch (err) {
      inFlight--;
      fail(req, err);
      return;
    }
    if (r instanceof ZeroResponse) {  // answered at once: no promise, no microtask
      inFlight--;
      try { answer(req, r); } catch (err) { fail(req, err); }
      return;
    }
    Promise.resolve(r).then((res) => answer(req, res)).catch((err) => fail(req, err)).finally(() => { inFlight--; });
  }, { onError: (err, ev) => process.stderr.write(`zero-io: runAsync event handler threw on ${ev.type}: ${(err as Error)?.stack ?? String(err)}\n`) });
};

export { Io };
