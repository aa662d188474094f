// Shared helpers for the @zero-io/http tests:
//   - startServer(): a zero-io HTTP server on 127.0.0.1:0 driven by runSync (handler errors fail
//     the test, see core/test/handler-errors.ts) that records every request it sees (copied: the
//     events are borrowed flyweights) and, by default, answers each one once its body is whole;
//   - RawClient / exchange(): node:net clients that speak bytes, for pipelining and hostile input;
//   - parseResponse(): a small, strict HTTP/1.x response parser (status line, fields,
//     Content-Length, chunked and close-delimited bodies) that throws on what it does not
//     understand rather than guessing.
// Every wait is bounded and event-driven (no sleeps); no timing is asserted anywhere.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import type http2 from 'node:http2';
import net from 'node:net';
import { join } from 'node:path';
import { afterEach } from 'vitest';
import { Io, type Config, type ConnId, type EndpointId, type Event, type ShutdownHandle } from '@zero-io/core';
import { ZeroResponse, type HttpListenConfig } from '@zero-io/http';
import { checkHandlerErrors, onError } from '../../core/test/handler-errors.js';

export { checkHandlerErrors, onError };

export type HttpRequestEvent = Extract<Event, { type: 'HttpRequest' }>;
export type HttpBodyChunkEvent = Extract<Event, { type: 'HttpBodyChunk' }>;

// ---------------------------------------------------------------- small utilities

/** Waits for `cond`; throws at once what a runSync handler threw meanwhile (see onError). */
export async function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    checkHandlerErrors();
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
  checkHandlerErrors();
}

/** Deterministic pseudo-random bytes (xorshift32), so a reordering or a lost range shows. */
export function randomPayload(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}

export function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * A chunked body (RFC 9112 section 7.1) for `body`, cut into pieces of the given sizes (cycled),
 * with an optional chunk extension on every chunk and trailer fields after the last one.
 */
export function chunked(body: Buffer, sizes: number[] = [body.length || 1], opts: { ext?: string; trailers?: string[] } = {}): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  let k = 0;
  while (at < body.length) {
    const n = Math.min(Math.max(1, sizes[k++ % sizes.length]), body.length - at);
    parts.push(Buffer.from(`${n.toString(16)}${opts.ext ? `;${opts.ext}` : ''}\r\n`, 'latin1'), body.subarray(at, at + n), Buffer.from('\r\n'));
    at += n;
  }
  parts.push(Buffer.from(`0\r\n${(opts.trailers ?? []).map((t) => `${t}\r\n`).join('')}\r\n`, 'latin1'));
  return Buffer.concat(parts);
}

/** A GET request head (HTTP/1.1, Host set) with extra field lines. */
export function get(target: string, extra: string[] = [], method = 'GET'): string {
  return `${method} ${target} HTTP/1.1\r\nHost: test.local\r\n${extra.map((l) => `${l}\r\n`).join('')}\r\n`;
}

/** A request with a Content-Length body. */
export function post(target: string, body: Buffer | string, extra: string[] = []): Buffer {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([
    Buffer.from(`POST ${target} HTTP/1.1\r\nHost: test.local\r\nContent-Length: ${b.length}\r\n${extra.map((l) => `${l}\r\n`).join('')}\r\n`, 'latin1'),
    b,
  ]);
}

/** Printable excerpt of bytes for failure messages. */
export function excerpt(b: Buffer, max = 400): string {
  const s = b.subarray(0, max).toString('latin1').replace(/[^\x20-\x7e]/g, (c) => (c === '\r' ? '\\r' : c === '\n' ? '\\n\n' : `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`));
  return b.length > max ? `${s}... (${b.length} bytes)` : s;
}

// ---------------------------------------------------------------- external programs

export interface RunResult { code: number | null; signal: NodeJS.Signals | null; stdout: Buffer; stderr: string }

/**
 * Runs an external program asynchronously (the server under test runs on this thread's event
 * loop: a spawnSync would block it). A program that is not installed fails the test with a
 * message naming it and what installs it (INTEROP.md: no silent skips).
 */
export function run(cmd: string, args: string[], opts: { input?: Buffer | string; timeoutMs?: number; installHint?: string } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const timer = setTimeout(() => p.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ENOENT') {
        reject(new Error(`${cmd} is not installed: this interoperability test needs it as an independent HTTP peer${opts.installHint ? ` (${opts.installHint})` : ''}`));
      } else reject(e);
    });
    p.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() });
    });
    p.stdin.on('error', () => {});
    p.stdin.end(opts.input ?? '');
  });
}

/** A self-signed P-256 certificate for CN=localhost, written into `dir` by openssl: its paths. */
export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem'), key = join(dir, 'key.pem');
  const r = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-keyout', key, '-out', cert], { installHint: 'Debian package openssl' });
  if (r.code !== 0) throw new Error(`openssl could not make a certificate: ${r.stderr}`);
  return { cert, key };
}

/** One HTTP/2 GET on `session` (more pseudo-headers and fields in `headers`): the answer's body as text. */
export function h2text(session: http2.ClientHttp2Session, path: string, headers: http2.OutgoingHttpHeaders = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = session.request({ ':path': path, ...headers });
    let b = '';
    r.setEncoding('utf8');
    r.on('data', (d: string) => (b += d));
    r.on('end', () => resolve(b));
    r.on('error', reject);
    r.end();
  });
}

// ---------------------------------------------------------------- the response parser

export interface ParsedResponse {
  /** "HTTP/1.1 200 OK" as received. */
  statusLine: string;
  version: string;
  status: number;
  reason: string;
  /** Field lines in order, names as sent, values without surrounding whitespace. */
  headers: [string, string][];
  /** The first field of that name (case-insensitive), or null. */
  header(name: string): string | null;
  /** Every field of that name (case-insensitive). */
  headerAll(name: string): string[];
  body: Buffer;
  /** The head's bytes as text, without the empty line. */
  head: string;
}

/**
 * Parses one response from the start of `buf`. Returns null while incomplete (or, for a
 * close-delimited body, until `eof`); throws on a malformed one (bare LF, no status line, a field
 * line without a colon, a bad Content-Length or chunk size). `head`: the response answers a HEAD
 * request (no body whatever the framing fields say).
 */
export function parseResponse(buf: Buffer, opts: { head?: boolean; eof?: boolean } = {}): { res: ParsedResponse; used: number } | null {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) {
    if (/^HTTP\/\d\.\d [0-9]{3}/.test(buf.subarray(0, 13).toString('latin1')) || buf.length < 13) return null;
    throw new Error(`not an HTTP response: ${excerpt(buf)}`);
  }
  const headBytes = buf.subarray(0, end);
  for (let i = 0; i < headBytes.length; i++) {
    if (headBytes[i] === 0x0a && (i === 0 || headBytes[i - 1] !== 0x0d)) throw new Error(`bare LF in a response head: ${excerpt(headBytes)}`);
    if (headBytes[i] === 0x0d && headBytes[i + 1] !== 0x0a) throw new Error(`bare CR in a response head: ${excerpt(headBytes)}`);
  }
  const head = headBytes.toString('latin1');
  const lines = head.split('\r\n');
  const m = /^(HTTP\/\d\.\d) ([0-9]{3}) ?(.*)$/.exec(lines[0]);
  if (!m) throw new Error(`malformed status line: ${JSON.stringify(lines[0])}`);
  const headers: [string, string][] = lines.slice(1).map((l) => {
    const i = l.indexOf(':');
    if (i <= 0 || /[\s]/.test(l.slice(0, i))) throw new Error(`malformed response field line: ${JSON.stringify(l)}`);
    return [l.slice(0, i), l.slice(i + 1).trim()];
  });
  const headerAll = (name: string): string[] => headers.filter(([n]) => n.toLowerCase() === name.toLowerCase()).map(([, v]) => v);
  const header = (name: string): string | null => headerAll(name)[0] ?? null;
  const status = Number(m[2]);
  let at = end + 4;
  let body: Buffer;
  const te = header('transfer-encoding');
  const cl = header('content-length');
  if (headerAll('content-length').length > 1) throw new Error(`response with ${headerAll('content-length').length} Content-Length fields`);
  if (te !== null && cl !== null) throw new Error('response with both Transfer-Encoding and Content-Length');
  if (opts.head || (status >= 100 && status < 200) || status === 204 || status === 304) {
    body = Buffer.alloc(0);
  } else if (te !== null) {
    if (te.toLowerCase() !== 'chunked') throw new Error(`response Transfer-Encoding ${JSON.stringify(te)}`);
    const parts: Buffer[] = [];
    for (;;) {
      const lineEnd = buf.indexOf('\r\n', at);
      if (lineEnd < 0) return null;
      const sizeText = buf.subarray(at, lineEnd).toString('latin1').split(';')[0];
      if (!/^[0-9a-fA-F]{1,16}$/.test(sizeText)) throw new Error(`malformed chunk size line ${JSON.stringify(sizeText)}`);
      const size = parseInt(sizeText, 16);
      at = lineEnd + 2;
      if (size === 0) {
        // Trailer fields, then the empty line.
        for (;;) {
          const te2 = buf.indexOf('\r\n', at);
          if (te2 < 0) return null;
          const empty = te2 === at;
          at = te2 + 2;
          if (empty) break;
        }
        break;
      }
      if (buf.length < at + size + 2) return null;
      parts.push(buf.subarray(at, at + size));
      if (buf[at + size] !== 0x0d || buf[at + size + 1] !== 0x0a) throw new Error('chunk data not followed by CRLF');
      at += size + 2;
    }
    body = Buffer.concat(parts);
  } else if (cl !== null) {
    if (!/^[0-9]+$/.test(cl)) throw new Error(`malformed response Content-Length ${JSON.stringify(cl)}`);
    const n = Number(cl);
    if (buf.length - at < n) return null;
    body = Buffer.from(buf.subarray(at, at + n));
    at += n;
  } else {
    if (!opts.eof) return null;  // delimited by the close
    body = Buffer.from(buf.subarray(at));
    at = buf.length;
  }
  return {
    res: { statusLine: lines[0], version: m[1], status, reason: m[3], headers, header, headerAll, body, head },
    used: at,
  };
}

// ---------------------------------------------------------------- raw clients

/**
 * How many bytes the response at the start of `buf` takes in all, when its head is complete and
 * it has a Content-Length; 0 when unknown (then any new byte may complete it).
 */
function knownLength(buf: Buffer, headRequest: boolean): number {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0 || headRequest) return 0;
  const text = buf.subarray(0, end).toString('latin1');
  if (/^HTTP\/\d\.\d (1\d\d|204|304)/.test(text)) return 0;  // no body whatever the fields say
  const m = /\r\ncontent-length:[ \t]*([0-9]+)[ \t]*(\r\n|$)/i.exec(text);
  return m ? end + 4 + Number(m[1]) : 0;
}

const openClients = new Set<RawClient>();

/**
 * A node:net client that writes raw bytes and parses what comes back into responses as it
 * arrives. Interim (1xx) responses go to `interim`, final ones to `responses`.
 */
export class RawClient {
  readonly socket: net.Socket;
  readonly responses: ParsedResponse[] = [];
  readonly interim: ParsedResponse[] = [];
  /** Indexes (into `responses`) of the answers to HEAD requests: parsed without a body. */
  readonly headAt = new Set<number>();
  /** Every byte received, in order. */
  readonly chunks: Buffer[] = [];
  bytesReceived = 0;
  /** The server's FIN arrived. */
  ended = false;
  /** The socket is closed (both ways). */
  closed = false;
  error: Error | null = null;
  parseError: Error | null = null;
  // Received bytes not parsed yet, kept as pieces: joined only when a parse can succeed (a large
  // Content-Length body is not re-copied on every read).
  #parts: Buffer[] = [];
  #partsLen = 0;
  #need = 0;
  #waiters = new Set<() => void>();
  #localPort = -1;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    openClients.add(this);
    socket.setNoDelay(true);
    // Kept: node:net forgets it once the socket is destroyed.
    socket.once('connect', () => { this.#localPort = socket.localPort ?? -1; });
    socket.on('data', (d: Buffer) => {
      this.chunks.push(d);
      this.bytesReceived += d.length;
      this.#parts.push(d);
      this.#partsLen += d.length;
      if (this.#partsLen >= this.#need) this.#parse(false);
      this.#notify();
    });
    socket.on('end', () => { this.ended = true; this.#parse(true); this.#notify(); });
    socket.on('close', () => { this.closed = true; this.#parse(true); openClients.delete(this); this.#notify(); });
    socket.on('error', (e) => { this.error = e; this.#notify(); });
  }

  /** Connects to 127.0.0.1:`port`. `persistent`: not destroyed by the afterEach cleanup. */
  static connect(port: number, opts: { persistent?: boolean } = {}): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect({ port, host: '127.0.0.1' });
      const c = new RawClient(s);
      if (opts.persistent) openClients.delete(c);
      const t = setTimeout(() => { s.destroy(); reject(new Error(`connect to 127.0.0.1:${port} timed out`)); }, 10_000);
      s.once('connect', () => { clearTimeout(t); resolve(c); });
      s.once('error', (e) => { clearTimeout(t); reject(e); });
    });
  }

  /** The client's own port: the server's Connected event reports it as the peer's port. */
  get localPort(): number { return this.#localPort; }

  /** Everything received, in one buffer. */
  get raw(): Buffer { return Buffer.concat(this.chunks); }

  /** Bytes received that are not (yet) part of a complete response. */
  get leftover(): Buffer { return this.#joined(); }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable) this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Writes `data`, marking the response it will get (the next one) as an answer to HEAD. */
  writeHead(data: string | Buffer, expectedIndex = this.responses.length): void {
    this.headAt.add(expectedIndex);
    this.write(data);
  }

  /**
   * Resolves once `cond()` holds; re-checked on every socket event and every 20 ms (so a
   * handler error recorded meanwhile is thrown here at once). Rejects on timeout with what was
   * received so far, or at once on a malformed response.
   */
  waitFor(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      let finished = false;
      const t0 = Date.now();
      const check = (): void => {
        if (finished) return;
        let err: unknown = null;
        try { checkHandlerErrors(); } catch (e) { err = e; }
        if (!err && this.parseError) err = this.parseError;
        if (!err && cond()) { finish(); resolve(); return; }
        if (!err && Date.now() - t0 > timeoutMs) {
          err = new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${this.responses.length} response(s), ` +
            `ended=${this.ended} closed=${this.closed} error=${this.error?.message ?? 'none'}; received: ${excerpt(this.raw)}`);
        }
        if (err) { finish(); reject(err); }
      };
      const timer = setInterval(check, 20);
      const finish = (): void => { finished = true; clearInterval(timer); this.#waiters.delete(check); };
      this.#waiters.add(check);
      check();
    });
  }

  /** Waits until `n` final responses have arrived in all (not n more). */
  async waitResponses(n: number, timeoutMs = 10_000): Promise<ParsedResponse[]> {
    await this.waitFor(() => this.responses.length >= n, timeoutMs, `${n} response(s)`);
    return this.responses;
  }

  /** Waits until the socket is closed (the server's FIN came; node:net then ends its side). */
  async waitClose(timeoutMs = 10_000): Promise<void> {
    await this.waitFor(() => this.closed, timeoutMs, 'the server to close the connection');
  }

  /** Sends one request and waits for its response (the next final one). */
  async request(data: string | Buffer, timeoutMs = 10_000): Promise<ParsedResponse> {
    const n = this.responses.length + 1;
    this.write(data);
    await this.waitResponses(n, timeoutMs);
    return this.responses[n - 1];
  }

  destroy(): void {
    this.socket.destroy();
    openClients.delete(this);
  }

  #joined(): Buffer {
    if (this.#parts.length > 1) this.#parts = [Buffer.concat(this.#parts)];
    return this.#parts[0] ?? Buffer.alloc(0);
  }

  #parse(eof: boolean): void {
    if (this.parseError) return;
    try {
      let pending = this.#joined();
      this.#need = 0;
      for (;;) {
        if (pending.length === 0) break;
        const headRequest = this.headAt.has(this.responses.length);
        const r = parseResponse(pending, { head: headRequest, eof });
        if (!r) {
          this.#need = knownLength(pending, headRequest);
          break;
        }
        if (r.res.status < 200) this.interim.push(r.res);
        else this.responses.push(r.res);
        pending = pending.subarray(r.used);
      }
      this.#parts = pending.length ? [pending] : [];
      this.#partsLen = pending.length;
    } catch (e) {
      this.parseError = e as Error;
    }
  }

  #notify(): void {
    for (const w of [...this.#waiters]) w();
  }
}

export interface ExchangeOptions {
  /** 'close': until the server closes the connection; a number: until that many final responses. */
  until?: 'close' | number;
  timeoutMs?: number;
  /** Indexes of responses that answer HEAD requests. */
  head?: number[];
}

/**
 * Connects, writes `data` (pieces written one after another), and collects the responses until
 * the server closes the connection or `until` final responses arrived. The client is returned
 * (open when `until` is a number; the afterEach cleanup destroys it).
 */
/**
 * Sends `data` on a new connection and collects what comes back (latin1) until the server's
 * FIN (or an error): for answers that end the connection. The client never ends its side first.
 */
export function untilServerEnds(port: number, data: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let d = '';
    s.setEncoding('latin1');
    s.on('data', (x) => { d += x; });
    s.on('end', () => resolve(d));
    s.on('error', () => resolve(d));
    s.write(data);
  });
}

export async function exchange(port: number, data: string | Buffer | (string | Buffer)[], opts: ExchangeOptions = {}): Promise<RawClient> {
  const c = await RawClient.connect(port);
  for (const i of opts.head ?? []) c.headAt.add(i);
  for (const piece of Array.isArray(data) ? data : [data]) c.write(piece);
  const u = opts.until ?? 'close';
  if (u === 'close') await c.waitClose(opts.timeoutMs);
  else await c.waitResponses(u, opts.timeoutMs);
  return c;
}

// ---------------------------------------------------------------- the server

/** A request as the handler saw it, copied out of the borrowed event. */
export interface RequestCopy {
  conn: ConnId;
  endpoint: EndpointId | null;
  requestId: number;
  method: string;
  path: string;
  query: string;
  target: string;
  version: '1.0' | '1.1' | '2';
  keepAlive: boolean;
  headers: [string, string][];
  /** ev.header('host') as read in the handler. */
  host: string | null;
  /** The inline body (ev.body). */
  body: Buffer;
  bodyLength: number;
  streamed: boolean;
  /** Streamed bodies: each HttpBodyChunk's data (copied), and whether the last (end) came. */
  chunks: Buffer[];
  chunkEnds: boolean[];
  ended: boolean;
  /** The whole body: the inline one, or the chunks joined. */
  fullBody(): Buffer;
}

export interface ServerOptions {
  /** Merged over `{ host: '127.0.0.1', port: 0 }`. */
  listen?: Partial<HttpListenConfig>;
  config?: Config;
  /**
   * Called once a request's body is whole (inline: with its HttpRequest; streamed: at the
   * HttpBodyChunk with end). Return a response to send it at once, null to answer later (or
   * never). Default: 200 with the request-target as text.
   */
  onRequest?: (req: RequestCopy, io: Io) => ZeroResponse | null;
  /** Every event, after it is recorded and before onRequest. */
  onEvent?: (ev: Event, io: Io) => void;
  /** Leave it to the caller to close (afterAll); otherwise the afterEach cleanup closes it. */
  persistent?: boolean;
}

export interface HttpServer {
  io: Io;
  ep: EndpointId;
  port: number;
  handle: ShutdownHandle;
  /** Every HttpRequest, in arrival order. */
  requests: RequestCopy[];
  connected: ConnId[];
  disconnected: Map<ConnId, { origin: string; errorCode: number; reason: string }>;
  /** The server-side connection id of each client port (from Connected's peer), while open. */
  peerPorts: Map<number, ConnId>;
  /** httpRespond results of the default answers (false would mean a lost answer). */
  refusedAnswers: number;
  requestsOn(conn: ConnId): RequestCopy[];
  /** The server's id for a client's connection (waits for its Connected event). */
  connOf(client: RawClient | net.Socket | number): Promise<ConnId>;
  close(): Promise<void>;
}

const openServers = new Set<HttpServer>();

export function startServer(opts: ServerOptions = {}): HttpServer {
  const io = new Io(opts.config ?? {});
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, ...opts.listen } as HttpListenConfig);
  const port = io.localAddress(ep).port;
  const requests: RequestCopy[] = [];
  const byConn = new Map<ConnId, RequestCopy[]>();
  const streaming = new Map<string, RequestCopy>();
  const connected: ConnId[] = [];
  const disconnected: HttpServer['disconnected'] = new Map();
  const peerPorts = new Map<number, ConnId>();
  const pastPeers = new Map<number, ConnId>();
  const onRequest = opts.onRequest ?? ((req: RequestCopy) => ZeroResponse.ok().text(req.target));
  const answer = (req: RequestCopy): void => {
    const res = onRequest(req, io);
    if (res !== null && !io.httpRespond(req.conn, req.requestId, res)) srv.refusedAnswers++;
  };
  const handle = io.runSync((ev) => {
    let whole: RequestCopy | null = null;  // a request whose body is now complete
    switch (ev.type) {
      case 'Connected': {
        connected.push(ev.conn);
        const peer = ev.peer;
        if (peer) peerPorts.set(peer.port, ev.conn);
        break;
      }
      case 'Disconnected': {
        disconnected.set(ev.conn, { origin: ev.origin, errorCode: ev.errorCode, reason: ev.reason });
        // A client port may be reused by a later connection: only live connections stay mapped.
        const peer = ev.peer;
        if (peer && peerPorts.get(peer.port) === ev.conn) {
          peerPorts.delete(peer.port);
          pastPeers.set(peer.port, ev.conn);
        }
        for (const k of [...streaming.keys()]) if (k.startsWith(`${ev.conn}:`)) streaming.delete(k);
        break;
      }
      case 'HttpRequest': {
        const r = copyRequest(ev);
        requests.push(r);
        let list = byConn.get(r.conn);
        if (!list) byConn.set(r.conn, (list = []));
        list.push(r);
        if (r.streamed) streaming.set(`${r.conn}:${r.requestId}`, r);
        else whole = r;
        break;
      }
      case 'HttpBodyChunk': {
        const r = streaming.get(`${ev.conn}:${ev.requestId}`);
        if (!r) throw new Error(`HttpBodyChunk for request ${ev.requestId} on conn ${ev.conn}: no streamed HttpRequest announced it (or its end came already)`);
        if (ev.data.length !== ev.length) throw new Error(`HttpBodyChunk: data.length ${ev.data.length} != length ${ev.length}`);
        r.chunks.push(Buffer.from(ev.data));
        r.chunkEnds.push(ev.end);
        if (ev.end) {
          r.ended = true;
          streaming.delete(`${ev.conn}:${ev.requestId}`);
          whole = r;
        }
        break;
      }
    }
    opts.onEvent?.(ev, io);
    if (whole) answer(whole);
  }, { onError });
  let closing: Promise<void> | undefined;
  const srv: HttpServer = {
    io, ep, port, handle, requests, connected, disconnected, peerPorts,
    refusedAnswers: 0,
    requestsOn: (conn) => byConn.get(conn) ?? [],
    async connOf(client) {
      const p = typeof client === 'number' ? client : client instanceof RawClient ? client.localPort : client.localPort ?? -1;
      const gone = (): boolean => (client instanceof RawClient ? client.closed : typeof client === 'number' ? true : client.destroyed);
      // A live connection of that port; for a client already closed, the last one that had it.
      await until(() => peerPorts.has(p) || (gone() && pastPeers.has(p)), 10_000, `the server's Connected event for client port ${p}`);
      return peerPorts.get(p) ?? pastPeers.get(p)!;
    },
    close() {
      closing ??= (async () => {
        openServers.delete(srv);
        await handle.shutdown({ timeoutMs: 1000 });
        io.shutdown();
      })();
      return closing;
    },
  };
  if (!opts.persistent) openServers.add(srv);
  return srv;
}

export function copyRequest(ev: HttpRequestEvent): RequestCopy {
  const r: RequestCopy = {
    conn: ev.conn,
    endpoint: ev.endpoint,
    requestId: ev.requestId,
    method: ev.method,
    path: ev.path,
    query: ev.query,
    target: ev.target,
    version: ev.version,
    keepAlive: ev.keepAlive,
    headers: ev.headers().map(([n, v]) => [n, v] as [string, string]),
    host: ev.header('host'),
    body: Buffer.from(ev.body),
    bodyLength: ev.bodyLength,
    streamed: ev.streamed,
    chunks: [],
    chunkEnds: [],
    ended: false,
    fullBody() { return this.streamed ? Buffer.concat(this.chunks) : this.body; },
  };
  return r;
}

// Raw clients first (so the servers see their closes), then the servers.
afterEach(async () => {
  for (const c of [...openClients]) c.destroy();
  for (const s of [...openServers]) await s.close();
});
