/**
 * @zero-io/http — an HTTP/1.1 and HTTP/2 server on zero-io's shard engine.
 *
 * Importing this package adds `httpListen`, `httpListenWith`, `httpRespond` and `httpStats` to
 * `Io`, and the `HttpRequest` / `HttpBodyChunk` events to the event union. Requests are parsed
 * natively (strict RFC 9112, request-smuggling defences) into a pool slot; the event is a
 * borrowed flyweight whose strings are decoded only when read. Responses are serialised by the
 * engine, in request order (pipelining), with Date / Content-Length / Connection written for you.
 * @module
 */
import {
  Io, IoError, parseHostPort, requireFeature, type ConnId, type EndpointId,
} from '@zero-io/core';
import {
  ERR, R_BODY, REQ_KEEP_ALIVE, REQ_STREAMED, boolOption, describeValue, expired, intOption, internalsOf, listenOptions,
  listenTlsArgs, methodOf, openListener, registerEventType, registerHandlerFailure, registerRecordEvent, rejectUnknownKeys,
  u32, type Latin1Buffer,
} from '@zero-io/core/internal';
import type { TlsServerConfig } from '@zero-io/tcp';
import { ZeroResponse } from './response.js';

export { ZeroResponse };
requireFeature('http', '@zero-io/http');

const EV_HTTP_REQUEST = 10;
const EV_HTTP_BODY = 11;
const EV_HTTP_RESET = 13;

/** The HTTP options of a listener ({@link Io.httpServe}; {@link HttpListenConfig} has them too). */
export type HttpServeConfig = Pick<HttpListenConfig, 'maxHeaderCount' | 'maxHeaderSize' | 'maxTargetSize' | 'maxBodyInline' |
  'maxBodySize' | 'requestTimeoutMs' | 'keepAliveTimeoutMs' | 'maxPipelined' | 'http2' | 'maxConcurrentStreams' |
  'initialWindowSize' | 'maxFrameSize' | 'maxHeaderListSize' | 'compression' | 'compressionThreshold'>;

/** A content coding the engine can compress answers with (RFC 9110 section 8.4.1). */
export type HttpCoding = 'br' | 'zstd' | 'gzip';

/** Options of {@link Io.httpListenWith}. */
export interface HttpListenConfig {
  /** IP address to bind ('localhost' means 127.0.0.1; '::' also accepts IPv4). @default '0.0.0.0' */
  host?: string;
  /** Port; 0 picks a free one (read it back with `io.localAddress(ep)`). */
  port: number;
  /** listen() backlog. @default 511 */
  backlog?: number;
  /** SO_REUSEPORT, so several shards or processes can bind the same port. @default false */
  reusePort?: boolean;
  /**
   * Serve HTTPS: the `TlsServerConfig` of `@zero-io/tcp` (certificate, key, versions, ...),
   * whose TLS stack this uses — `import '@zero-io/tcp'` as well (FeatureMissing otherwise).
   * ALPN defaults to `['h2', 'http/1.1', 'http/1.0']` (`['http/1.1', 'http/1.0']` with
   * `http2: false`); a client that offers no ALPN is served HTTP/1.1.
   */
  tls?: TlsServerConfig;
  /** Header fields in one request; more are answered with 431 and the connection closes. @default 100 */
  maxHeaderCount?: number;
  /**
   * Bytes of the request line and header section; a larger head is answered with 431 and the
   * connection closes. A request is kept in pool slots (its head, a 12-byte entry per field and
   * a small body): one slot for most, several adjacent ones for a larger head (big cookies).
   * @default 16384 (at most 65535)
   */
  maxHeaderSize?: number;
  /** Bytes of the request-target; longer is answered with 414 and a close. @default min(8192, maxHeaderSize) */
  maxTargetSize?: number;
  /**
   * A Content-Length body up to this size that fits in the request's slot beside its head
   * arrives whole in `ev.body`; larger and chunked bodies arrive as `HttpBodyChunk` events.
   * @default 1024
   */
  maxBodyInline?: number;
  /** The largest request body (declared, or decoded chunked); larger is answered with 413 and a close. @default 16 MiB */
  maxBodySize?: number;
  /**
   * A request head must be complete within this time of its first byte (and a new connection
   * must start one within it), and a streamed body may not stall for longer: otherwise 408 and
   * a close (slowloris). Also how long a client that ended its side waits for the answers it is
   * owed, and how long an HTTP/2 client may keep every flow-control window shut while answers
   * wait (a zero-window stall: GOAWAY ENHANCE_YOUR_CALM). 0: no bound. @default 10000
   */
  requestTimeoutMs?: number;
  /** An idle keep-alive connection (every answer sent, nothing received) closes after this. 0: never. @default 5000 */
  keepAliveTimeoutMs?: number;
  /**
   * Requests of one connection parsed ahead of their answers (HTTP/1.1 pipelining); beyond
   * this the engine stops reading that connection until answers go out. @default 16
   */
  maxPipelined?: number;
  /**
   * Serve HTTP/2 too: a connection that opens with the HTTP/2 client preface (cleartext "h2c"
   * with prior knowledge, or TLS after ALPN "h2", which is then offered first) speaks HTTP/2.
   * Requests arrive as the same events (`version: '2'`, `requestId` is the stream id; bodies
   * always as HttpBodyChunk). A request without a body that asks for `Upgrade: h2c` gets 101
   * and is answered as HTTP/2 stream 1. @default true
   */
  http2?: boolean;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS (more streams are refused). @default 100 */
  maxConcurrentStreams?: number;
  /** HTTP/2 SETTINGS_INITIAL_WINDOW_SIZE: how much of a request body may arrive ahead of reading. @default 65535 */
  initialWindowSize?: number;
  /** HTTP/2 SETTINGS_MAX_FRAME_SIZE. @default 16384 */
  maxFrameSize?: number;
  /**
   * HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE, enforced per request head (decoded bytes: name +
   * value + 32 per field; an HPACK bomb stops here): a larger head is answered 431 on its stream
   * (the application never sees it). @default 16384
   */
  maxHeaderListSize?: number;
  /**
   * Response compression, by the request's Accept-Encoding (q-values honoured): `true` for
   * `['zstd', 'br', 'gzip']`, a list of codings in the order you prefer when a client accepts
   * several equally, or `false` for none. An answer is compressed when its body is at least
   * `compressionThreshold` bytes, its Content-Type is text-like (text/*, JSON, JavaScript, XML,
   * +json/+xml, SVG, WebAssembly), it has no Content-Encoding, Content-Range or
   * `Cache-Control: no-transform` of its own, and the result is smaller; it then carries
   * `Content-Encoding`, and a strong `ETag` becomes weak. Every answer that could have been
   * compressed says `Vary: Accept-Encoding`. A reused `ZeroResponse` is compressed once per
   * coding at the highest quality (brotli 11, zstd 19, gzip 9 up to 64 KiB); an answer built
   * per request at a fast level (zstd 3, brotli 3, gzip 5: for a 1 KiB JSON about 6, 17 and
   * 14 µs). Streamed answers
   * (`httpRespondStream`) are sent as written. @default true
   */
  compression?: boolean | readonly HttpCoding[];
  /** The smallest body compressed, in bytes. @default the Io config's compressionThreshold (128) */
  compressionThreshold?: number;
}

/**
 * An HTTP request arrived (its head, and its body when small: see `maxBodyInline`).
 * Borrowed: the object and everything read from it through views (`body`) are valid during
 * the handler call only; strings you read are yours. Answer it with
 * `io.httpRespond(ev.conn, ev.requestId, response)` — now or later (keep `conn` and
 * `requestId`; answers leave in request order).
 */
export interface HttpRequestEvent {
  readonly type: 'HttpRequest';
  readonly conn: ConnId;
  /** The listener that accepted the connection. */
  readonly endpoint: EndpointId | null;
  /** The request's number on its connection (pass it to httpRespond). */
  readonly requestId: number;
  /** The method as sent ('GET', 'POST', ...). */
  readonly method: string;
  /** The request-target before '?', as sent (not percent-decoded), e.g. '/items/42'. */
  readonly path: string;
  /** The query after '?', without it; '' when there is none. */
  readonly query: string;
  /** The whole request-target as sent. */
  readonly target: string;
  /** '2' for HTTP/2 (then `requestId` is the stream id). */
  readonly version: '1.0' | '1.1' | '2';
  /** The connection stays open after this request's answer (HTTP/1.1 default; 1.0 with keep-alive). */
  readonly keepAlive: boolean;
  /** The first field named `name` (case-insensitive), or null. Values are decoded as latin1, as node:http does. */
  header(name: string): string | null;
  /** Every field as [name, value], names as sent, in order. */
  headers(): [string, string][];
  /**
   * The inline body (a borrowed view; empty when there is none or it is streamed). Bodies up
   * to `maxBodyInline` that fit in the request's slot beside the head come here.
   */
  readonly body: Uint8Array;
  /** Bytes of the inline body. */
  readonly bodyLength: number;
  /** The body arrives as HttpBodyChunk events after this one (large or chunked bodies). */
  readonly streamed: boolean;
}

/** A piece of a streamed request body (see `HttpRequestEvent.streamed`), in order. */
export interface HttpBodyChunkEvent {
  readonly type: 'HttpBodyChunk';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  /** The request this body belongs to. */
  readonly requestId: number;
  /** The bytes: a borrowed view into the slot pool, valid during the handler call only. */
  readonly data: Uint8Array;
  readonly length: number;
  /** Where the bytes start in `io.poolBytes`. */
  readonly offset: number;
  /** The last piece of the body (it may be empty). */
  readonly end: boolean;
}

/**
 * HTTP/2: the client reset a stream before its answer was complete (it cancelled the request).
 * An answer given now is dropped (`httpRespond` returns false); owned requests' `signal` fires.
 */
export interface HttpResetEvent {
  readonly type: 'HttpReset';
  readonly conn: ConnId;
  readonly endpoint: EndpointId | null;
  /** The request (the stream id). */
  readonly requestId: number;
  /** The HTTP/2 error code of the reset (8: CANCEL). */
  readonly errorCode: number;
}

/** Counters of one HTTP listener (`io.httpStats(ep)`). */
export interface HttpStats {
  requests: number;
  responses: number;
  status1xx: number; status2xx: number; status3xx: number; status4xx: number; status5xx: number;
  bytesIn: number;
  bytesOut: number;
  /** Connections accepted so far, and open now. */
  connections: number;
  activeConnections: number;
  /** Requests refused as malformed (400, 501, 505), and HTTP/2 connections ended for a protocol error. */
  parseErrors: number;
  /** Requests refused for a limit (408, 413, 414, 431). */
  limitsHit: number;
  /** Heads not complete within requestTimeoutMs (408). */
  timeouts: number;
  bodyChunks: number;
  /** httpRespond calls for a request that was gone (returned false). */
  staleResponses: number;
  /** Answers sent compressed (see `compression`), and the body bytes that saved. */
  compressed: number;
  compressSaved: number;
  /** Requests in flight now: HTTP/2 streams open, HTTP/1.1 requests read and not yet answered. */
  activeStreams: number;
  /** Requests refused by the engine, by the status it answered (400, 408, 413, 414, 417, 431, 501, 505). */
  refusedByStatus: Record<'400' | '408' | '413' | '414' | '417' | '431' | '501' | '505', number>;
  /** HTTP/2 connections that ended with a GOAWAY error, by code (ENHANCE_YOUR_CALM: a flood or a stall; see docs/errors.md). */
  h2GoawayByCode: Record<'PROTOCOL_ERROR' | 'INTERNAL_ERROR' | 'FLOW_CONTROL_ERROR' | 'SETTINGS_TIMEOUT' | 'STREAM_CLOSED' |
    'FRAME_SIZE_ERROR' | 'REFUSED_STREAM' | 'CANCEL' | 'COMPRESSION_ERROR' | 'CONNECT_ERROR' | 'ENHANCE_YOUR_CALM' |
    'INADEQUATE_SECURITY' | 'HTTP_1_1_REQUIRED' | 'OTHER', number>;
}

declare module '@zero-io/core' {
  interface EventMap {
    HttpRequest: HttpRequestEvent;
    HttpBodyChunk: HttpBodyChunkEvent;
    HttpReset: HttpResetEvent;
  }
  interface Io {
    /**
     * Serves HTTP/1.1 and HTTP/2 (h2c with prior knowledge or `Upgrade: h2c`) on
     * `"host:port"`, `"[v6]:port"` or a port number, with the defaults of
     * {@link HttpListenConfig}. Requests arrive as `HttpRequest` events.
     */
    httpListen(addr: string | number): EndpointId;
    /** Serves HTTP/1.1 and HTTP/2 with options (HTTPS with `tls`: ALPN h2, http/1.1, http/1.0). */
    httpListenWith(config: HttpListenConfig): EndpointId;
    /**
     * Serves HTTPS (HTTP/1.1, and HTTP/2 by ALPN "h2") on `"host:port"`, `"[v6]:port"` or a
     * port number: `httpListenWith({ host, port, tls })`. Needs `import '@zero-io/tcp'`, whose
     * `TlsServerConfig` this takes.
     */
    httpListenTls(addr: string | number, tls: TlsServerConfig): EndpointId;
    /**
     * Serves HTTP/1.1 and HTTP/2 on a listener you have already: an IoCluster shard's member
     * (`io.httpServe(io.endpoint('web'))` in a `runPerCore` handler), or one from
     * `tcpListen` / `udsListen` (with its TLS, if it has one). Call it before the first poll:
     * connections it accepted before are plain streams.
     */
    httpServe(ep: EndpointId, config?: HttpServeConfig): void;
    /**
     * Answers request `requestId` of `conn`. Returns true when the answer is queued; false when
     * the request is gone (its connection closed, or it was answered already) — a late answer
     * is a no-op, never a write to another connection. Answers go out in request order, and
     * whole whatever their size (what the write queue cannot take yet waits in the engine and
     * follows as the client reads). Throws InvalidArgument for a response that is not a
     * ZeroResponse, InvalidConnId for a connection that is not HTTP.
     */
    httpRespond(conn: ConnId, requestId: number, response: ZeroResponse): boolean;
    /** Counters of an HTTP listener (null when `ep` is not one). */
    httpStats(ep: EndpointId): HttpStats | null;
  }
}

// ---- the events: getters on core's flyweight that read the request record lazily ----

interface Cursor { _io(): Io; _base(): number }
type HttpIo = Io & { _httpBuf?: Latin1Buffer };

/** One Buffer over the pool per Io (latin1 decoding straight from the pool). */
function poolBuf(io: HttpIo): Latin1Buffer {
  return (io._httpBuf ??= Buffer.from(io._pool) as Latin1Buffer);
}
/**
 * The record's pool offset (the event's off word). The ring record must still be an HttpRequest:
 * a kept event read later finds another record there (BorrowExpired, never garbage).
 */
function rec(c: Cursor): number {
  const io = c._io();
  if (io._i32[c._base()] !== EV_HTTP_REQUEST) throw expired();
  return io._u32[c._base() + 4];
}
function size(c: Cursor): number {
  return c._io()._u32[c._base() + 5];
}
function flags(c: Cursor): number {
  rec(c);
  return c._io()._i32[c._base() + 3] >>> 16;
}

const requestId = {
  get(this: Cursor) {
    const i32 = this._io()._i32;
    const t = i32[this._base()];
    if (t === EV_HTTP_RESET) return i32[this._base() + 7] >>> 0;  // (its code word is the error code)
    if (t !== EV_HTTP_REQUEST && t !== EV_HTTP_BODY) throw expired();
    return i32[this._base() + 6] >>> 0;
  },
  configurable: true,
};
registerEventType(EV_HTTP_REQUEST, 'HttpRequest', {
  ...registerRecordEvent(EV_HTTP_REQUEST),
  requestId,
  method: {
    get(this: Cursor) {
      const io = this._io() as HttpIo;
      const r = rec(this);
      return methodOf(io._i32[this._base() + 3] & 0xff, io.poolBytes, poolBuf(io), r, size(this));
    },
    configurable: true,
  },
  version: {
    get(this: Cursor) {
      rec(this);
      const v = (this._io()._i32[this._base() + 3] >> 8) & 0xff;
      return v === 0 ? '1.0' : v === 20 ? '2' : '1.1';
    },
    configurable: true,
  },
  keepAlive: { get(this: Cursor) { return (flags(this) & REQ_KEEP_ALIVE) !== 0; }, configurable: true },
  streamed: { get(this: Cursor) { return (flags(this) & REQ_STREAMED) !== 0; }, configurable: true },
  bodyLength: { get(this: Cursor) { rec(this); return this._io()._i32[this._base() + 7]; }, configurable: true },
  body: {
    get(this: Cursor) {
      const io = this._io();
      const r = rec(this);
      const off = u32(io.poolBytes, r + R_BODY), len = io._i32[this._base() + 7];
      if (off + len > size(this)) throw expired();
      return new Uint8Array(io._pool, r + off, len);
    },
    configurable: true,
  },
});
// HttpReset's errorCode is the cursor's own errorCode field (the record's code word).
registerEventType(EV_HTTP_RESET, 'HttpReset', { requestId });
registerEventType(EV_HTTP_BODY, 'HttpBodyChunk', {
  requestId,
  end: { get(this: Cursor) { return (this._io()._i32[this._base() + 3] & 1) === 1; }, configurable: true },
});

// A runSync handler that threw on an HttpRequest: the request is answered 500 (a no-op when the
// handler answered it before throwing), so its client does not wait for ever.
const handlerFailed = ZeroResponse.serverError().text('internal server error\n');
registerHandlerFailure((io, ev) => {
  if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, handlerFailed);
});

// ---- listening and answering ----


/** The HTTP options of a listener, validated; `what` names the call in messages. */
const CODINGS: Record<HttpCoding, number> = { gzip: 1, br: 2, zstd: 3 };

function compressionOption(v: unknown, what: string): number[] {
  if (v === undefined || v === true) return [CODINGS.zstd, CODINGS.br, CODINGS.gzip];
  if (v === false) return [];
  const bad = (): never => {
    throw new IoError('InvalidConfig',
      `${what}: compression must be true, false or a list of distinct codings from 'br', 'zstd', 'gzip', got ${describeValue(v)}`,
      { key: 'compression' });
  };
  if (!Array.isArray(v)) return bad();
  const out: number[] = [];
  for (const c of v) {
    const id = typeof c === 'string' ? CODINGS[c as HttpCoding] : undefined;
    if (id === undefined || out.includes(id)) bad();
    out.push(id as number);
  }
  return out;
}

function httpOptions(io: Io, config: HttpServeConfig, what: string): Record<string, number | number[]> {
  const slot = io.config.poolSlotSize;
  const headerCount = intOption(config.maxHeaderCount, 100, 1, 4096, 'maxHeaderCount', what);
  const headerBytes = intOption(config.maxHeaderSize, 16_384, 64, 65_535, 'maxHeaderSize', what);
  return {
    headerCount,
    headerBytes,
    targetBytes: intOption(config.maxTargetSize, Math.min(8192, headerBytes), 1, headerBytes, 'maxTargetSize', what),
    bodyInline: intOption(config.maxBodyInline, 1024, 0, slot, 'maxBodyInline', what),
    bodyMax: intOption(config.maxBodySize, 16 * 1024 * 1024, 0, Number.MAX_SAFE_INTEGER, 'maxBodySize', what),
    requestTimeoutMs: intOption(config.requestTimeoutMs, 10_000, 0, 3_600_000, 'requestTimeoutMs', what),
    keepAliveTimeoutMs: intOption(config.keepAliveTimeoutMs, 5_000, 0, 3_600_000, 'keepAliveTimeoutMs', what),
    pipeline: intOption(config.maxPipelined, 16, 1, 1024, 'maxPipelined', what),
    http2: boolOption(config.http2, true, 'http2', what) ? 1 : 0,
    h2Streams: intOption(config.maxConcurrentStreams, 100, 1, 10_000, 'maxConcurrentStreams', what),
    h2Window: intOption(config.initialWindowSize, 65_535, 1, 2_147_483_647, 'initialWindowSize', what),
    h2FrameSize: intOption(config.maxFrameSize, 16_384, 16_384, 16_777_215, 'maxFrameSize', what),
    h2HeaderList: intOption(config.maxHeaderListSize, 16_384, 64, 1 << 20, 'maxHeaderListSize', what),
    compressOrder: compressionOption(config.compression, what),
    compressMin: intOption(config.compressionThreshold, io.config.compressionThreshold, 0, 1 << 30, 'compressionThreshold', what),
  };
}

const SERVE_KEYS = ['maxHeaderCount', 'maxHeaderSize', 'maxTargetSize', 'maxBodyInline', 'maxBodySize',
  'requestTimeoutMs', 'keepAliveTimeoutMs', 'maxPipelined', 'http2', 'maxConcurrentStreams', 'initialWindowSize',
  'maxFrameSize', 'maxHeaderListSize', 'compression', 'compressionThreshold'] as const;


Io.prototype.httpListenWith = function httpListenWith(this: Io, config: HttpListenConfig): EndpointId {
  const what = 'httpListenWith';
  rejectUnknownKeys(config, [...SERVE_KEYS, 'host', 'port', 'backlog', 'reusePort', 'tls'], what);
  const opts = httpOptions(this, config, what);
  const { ep, attachTls } = openListener(this, listenOptions(config, what), config.tls, what, 'httpListen', 'HTTPS');
  const { native, shard, check } = internalsOf(this);
  const r = native.httpEnable(shard, ep, opts);
  if (r < 0) {
    this.closeEndpoint(ep);
    check(r, what);
  }
  if (config.tls !== undefined) {
    const tls = config.tls;
    try {
      const alpn = opts.http2 ? ['h2', 'http/1.1', 'http/1.0'] : ['http/1.1', 'http/1.0'];
      attachTls!(this, ep, tls.alpn === undefined ? { ...tls, alpn } : tls);
    } catch (e) {
      this.closeEndpoint(ep);
      throw e;
    }
  }
  return ep;
};

Io.prototype.httpServe = function httpServe(this: Io, ep: EndpointId, config: HttpServeConfig = {}): void {
  const what = 'httpServe';
  rejectUnknownKeys(config, SERVE_KEYS, what);
  const opts = httpOptions(this, config, what);
  const { native, shard } = internalsOf(this);
  const r = native.httpEnable(shard, ep, opts);
  if (r === ERR.WRONG_KIND) throw new IoError('InvalidArgument', `${what}: endpoint ${ep} is not a TCP or Unix-socket listener`);
  if (r < 0) throw new IoError('InvalidConnId', `${what}: endpoint ${ep} is closed or was never opened`);
};

Io.prototype.httpListen = function httpListen(this: Io, addr: string | number): EndpointId {
  const { host, port } = parseHostPort(addr, 'httpListen');
  return this.httpListenWith({ host, port });
};

Io.prototype.httpListenTls = function httpListenTls(this: Io, addr: string | number, tls: TlsServerConfig): EndpointId {
  return this.httpListenWith(listenTlsArgs(addr, tls, 'httpListenTls'));
};

Io.prototype.httpRespond = function httpRespond(this: Io, conn: ConnId, requestId: number, response: ZeroResponse): boolean {
  if (!(response instanceof ZeroResponse)) {
    throw new IoError('InvalidArgument', `httpRespond: expected a ZeroResponse (ZeroResponse.ok().text('...')), got ${describeValue(response)}`);
  }
  if (typeof requestId !== 'number' || !Number.isInteger(requestId) || requestId < 0 || requestId > 0xffffffff) {
    throw new IoError('InvalidArgument', `httpRespond: requestId must be the event's requestId, got ${describeValue(requestId)}`);
  }
  const r = response._respond(this._native, this._shard, conn, requestId);
  if (r >= 0) return true;
  if (r === ERR.STALE || r === ERR.CLOSING) return false;
  if (r === ERR.NOT_HTTP) {
    throw new IoError('InvalidConnId', `httpRespond: connection ${conn} is not an HTTP connection (it was accepted on a listener that is not an httpListen one)`);
  }
  if (r === -2) throw new IoError('InvalidArgument', 'httpRespond: a header name is not a token, or a name or value holds CR, LF or NUL');
  if (r === -3) throw new IoError('InvalidArgument', `httpRespond: invalid status ${response.statusCode}`);
  return internalsOf(this).check(r, 'httpRespond') >= 0;
};

Io.prototype.httpStats = function httpStats(this: Io, ep: EndpointId): HttpStats | null {
  const { native, shard } = internalsOf(this);
  const r = native.httpStats(shard, ep) as HttpStats | number | null;
  return typeof r === 'object' ? r : null;  // a malformed or stale id answers a code
};

export { Io };
export { HttpOwnedRequest, type BodyReadOptions, type HttpOwnedRequestTransfer, type RunAsyncOptions } from './owned.js';
import './handle.js';
export { HttpBodyWriter, type HttpWritableEvent } from './stream.js';
