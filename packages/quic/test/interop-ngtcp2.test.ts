// Interop with ngtcp2 (Debian's ngtcp2 0.12.1 tools: ngtcp2 + nghttp3 + GnuTLS) in both
// directions, with the QUIC Interop Runner's cases. Both tools speak HTTP/3 only, so our side
// speaks the little of it test/peers/h3.mjs has: our client sends GETs to gtlsserver (`GET /<N>`
// answers N zero bytes); our listener answers gtlsclient's requests.
//
// Success is judged by what moved (bodies counted and compared, the files gtlsclient saved) and
// by our side's state; the peers' own words (stderr, scanned line by line) back up what only
// they can see (a Retry sent, 0-RTT received, a key update). Their exit codes mean nothing
// (test/peers/README.md).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import dgram from 'node:dgram';
import { createWriteStream, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Io, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/quic';
import { listener, makePki, pattern, rebindingRelay, sha256, until } from './helpers.js';
import { CONTROL_STREAM, dataHeader, FrameWalker, get, response } from './peers/h3.mjs';

const pki = makePki();
const tmp = () => mkdtempSync(join(tmpdir(), 'zio-ngtcp2-'));
const CHACHA = 'NORMAL:-VERS-ALL:+VERS-TLS1.3:-CIPHER-ALL:+CHACHA20-POLY1305';  // GnuTLS priority string
/** Waits up to 3 s for `cond` (a running peer's words still in its pipe); the expectation after it says what was missing. */
const soon = (cond: () => boolean) => until(cond, 3000).catch(() => {});

// ---- the peers' processes ----

/**
 * A peer process whose stderr+stdout is scanned line by line: counts of `patterns`, and the last
 * 6 KB. With ZIO_PEER_LOG=<dir> each peer's whole output is kept there too (for a failure's story).
 */
let peerSeq = 0;
function peer(cmd: string, args: string[], patterns: Record<string, RegExp> = {}) {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  if (process.env.ZIO_PEER_LOG) {
    const file = createWriteStream(join(process.env.ZIO_PEER_LOG, `${process.pid}-${++peerSeq}-${basename(cmd)}.log`));
    file.write(`${cmd} ${args.join(' ')}\n`);
    p.stdout.pipe(file, { end: false });
    p.stderr.pipe(file, { end: false });
    p.on('close', () => file.end());
  }
  const counts: Record<string, number> = Object.fromEntries(Object.keys(patterns).map((k) => [k, 0]));
  let tail = '', partial = '';
  const feed = (d: Buffer) => {
    const lines = (partial + d.toString('latin1')).split('\n');
    partial = lines.pop()!;
    for (const line of lines) for (const [k, re] of Object.entries(patterns)) if (re.test(line)) counts[k]++;
    tail = (tail + d.toString('latin1')).slice(-6000);
  };
  p.stdout.on('data', feed);
  p.stderr.on('data', feed);
  const exited = new Promise<number | null>((r) => p.on('close', (code) => r(code)));
  return {
    counts, exited,
    get tail() { return `${cmd} ${args.join(' ')}\n...${tail}`; },
    kill: () => { if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL'); },
  };
}

/** A free UDP port on `host` (bound, read, released). */
async function freePort(host: string): Promise<number> {
  const s = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
  await new Promise<void>((r) => s.bind(0, host, () => r()));
  const { port } = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * gtlsserver on `host`: a free port, then waits until it is bound (it prints nothing when
 * ready). `-d` is an empty directory: only the generated `/<N>` bodies exist.
 */
async function gtlsserver(args: string[], patterns: Record<string, RegExp> = {}, host = '127.0.0.1') {
  const port = await freePort(host);
  const srv = peer('/usr/sbin/gtlsserver', ['-d', tmp(), ...args, host, String(port), pki.path('server.key'), pki.path('server.crt')], patterns);
  const table = host.includes(':') ? '/proc/net/udp6' : '/proc/net/udp';
  const bound = new RegExp(`^ *\\d+: [0-9A-F]+:${port.toString(16).toUpperCase().padStart(4, '0')} `, 'm');
  try {
    await until(() => bound.test(readFileSync(table, 'utf8')), 5000, 'gtlsserver to bind its port');
  } catch (e) {
    srv.kill();
    throw e;
  }
  return { ...srv, port };
}

/** gtlsclient fetching `paths` from 127.0.0.1:`port` (or `host`); exits when every stream closed. */
function gtlsclient(port: number, paths: string[], extra: string[], patterns: Record<string, RegExp> = {}, host = '127.0.0.1') {
  return peer('/usr/bin/gtlsclient', ['--no-quic-dump', '--no-http-dump', '--exit-on-all-streams-close', '--timeout=10s', ...extra,
    host, String(port), ...paths.map((p) => `https://localhost:${port}${p}`)], patterns);
}
// What gtlsclient says about its requests (all on stderr).
const CLIENT_SAYS = {
  ok: /^HTTP stream \d+ closed with error code 256$/,  // 0x100 H3_NO_ERROR: a stream's normal end
  status200: /\[:status: 200\]/,
  failed: /^ngtcp2_|Early data was rejected/,
};

// ---- our HTTP/3 client (for gtlsserver) ----

interface Fetch { walker: FrameWalker; nonZero: number; fin: boolean }

/** GETs on one connection of ours, each response walked (gtlsserver's bodies are zero bytes: any other byte is counted). */
class H3Client {
  readonly fetches = new Map<number, Fetch>();
  connected = false;
  alpn: string | null = null;
  moreStreams = 0;  // Writable events with stream -1: the peer raised its stream limit
  controlSent = false;
  constructor(private io: Io, readonly conn: ConnId) {}
  /** Sends GET `path` on a new stream (0-RTT too: `early`); null when the peer's stream limit says wait. */
  request(path: string, early = false): number | null {
    let s: number;
    try {
      s = this.io.openStream(this.conn);
    } catch (e) {
      if (/stream limit/.test((e as Error).message)) return null;
      throw e;
    }
    const f: Fetch = { walker: new FrameWalker((b) => { for (const x of b) if (x !== 0) f.nonZero++; }), nonZero: 0, fin: false };
    this.fetches.set(s, f);
    const req = get(path, 'localhost');
    const n = early ? this.io.earlyDataSend(this.conn, s, req, true) : this.io.streamWrite(this.conn, s, req);
    expect(n).toBe(req.length);
    if (!early) this.io.streamEnd(this.conn, s);
    return s;
  }
  sendControl(early = false): void {
    const s = this.io.openStream(this.conn, 'uni');
    expect(early ? this.io.earlyDataSend(this.conn, s, CONTROL_STREAM) : this.io.streamWrite(this.conn, s, CONTROL_STREAM)).toBe(CONTROL_STREAM.length);
    this.controlSent = true;
  }
  onEvent(ev: Event): void {
    if (ev.conn !== this.conn) return;
    if (ev.type === 'Connected') {
      this.connected = true;
      this.alpn = ev.alpn;
      if (!this.controlSent) this.sendControl();
    }
    if (ev.type === 'StreamFrame') {
      const f = this.fetches.get(ev.stream);
      if (!f) return;  // the server's control and QPACK streams
      f.walker.push(ev.data, ev.length);
      if (ev.fin) f.fin = true;
    }
    if (ev.type === 'Writable' && ev.stream === -1) this.moreStreams++;
  }
  /** Every fetch ended with its FIN after `size` zero bytes in whole DATA frames, status 200. */
  expectAll(size: number, count = this.fetches.size): void {
    expect(this.fetches.size).toBe(count);
    for (const [s, f] of this.fetches) {
      expect({ stream: s, fin: f.fin, status: f.walker.status, body: f.walker.body, nonZero: f.nonZero, complete: f.walker.complete })
        .toEqual({ stream: s, fin: true, status: 200, body: size, nonZero: 0, complete: true });
    }
  }
  /** Closes the connection (if it is still open): the driver then shuts down at once. */
  close(): void {
    try {
      this.io.quicClose(this.conn);
    } catch { /* closed already */ }
  }
  get done(): number {
    let n = 0;
    for (const f of this.fetches.values()) if (f.fin) n++;
    return n;
  }
}

/** An Io with one client connection of ours to gtlsserver at `host`:`port`, ALPN h3, our test CA. */
function connectTo(port: number, opts: { host?: string; sessionTicket?: Uint8Array; io?: Io } = {}) {
  const io = opts.io ?? new Io();
  const conn = io.quicConnectWith({ host: opts.host ?? '127.0.0.1', port, alpn: ['h3'], tls: { ca: pki.ca, servername: 'localhost' },
    sessionTicket: opts.sessionTicket, initialMaxData: 32 << 20, initialMaxStreamData: 8 << 20 });
  return { io, conn, client: new H3Client(io, conn) };
}

// ---- our HTTP/3 server (for gtlsclient) ----

/**
 * Answers every request on a client bidirectional stream, after its FIN, with status 200 and
 * `bodyFor(index)`: index is the stream's number among the connection's requests (stream id / 4,
 * which is the order of gtlsclient's URIs). The request path is not read: nghttp3 Huffman-codes
 * it and this server has no Huffman decoder, so each test fixes the body. A request's own DATA
 * (a POST body) is hashed. Writable is honoured; the peer's unidirectional streams (control,
 * QPACK) are ignored; a control stream with an empty SETTINGS is opened at Connected.
 */
function h3Server(io: Io, bodyFor: (index: number) => Buffer) {
  const queues = new Map<string, Buffer[]>();
  const requests = new Map<string, { walker: FrameWalker; hash: ReturnType<typeof createHash>; digest?: string; state?: string }>();
  const s = {
    connected: [] as { conn: ConnId; alpn: string | null; tls: ReturnType<Io['tlsInfo']>; early: ReturnType<Io['quicEarlyData']>; peer: string }[],
    migrations: [] as { old: string; now: string; uploadedSoFar: number; sentSoFar: number }[],
    answered: 0,
    requests,
    uploaded: 0,
    sent: 0,  // bytes written to the answers
  };
  const fmt = (a: { address: string; port: number } | null | undefined) => (a ? `${a.address}:${a.port}` : '');
  const pump = (conn: ConnId, stream: number) => {
    const k = `${conn}/${stream}`;
    const q = queues.get(k);
    if (!q) return;
    while (q.length) {
      const n = io.streamWrite(conn, stream, q[0]);
      s.sent += n;
      if (n < q[0].length) {
        q[0] = q[0].subarray(n);
        return;
      }
      q.shift();
    }
    io.streamEnd(conn, stream);
    queues.delete(k);
    s.answered++;
  };
  const onEvent = (ev: Event) => {
    if (ev.type === 'Connected') {
      s.connected.push({ conn: ev.conn, alpn: ev.alpn, tls: io.tlsInfo(ev.conn), early: io.quicEarlyData(ev.conn), peer: fmt(io.peerAddress(ev.conn)) });
      io.streamWrite(ev.conn, io.openStream(ev.conn, 'uni'), CONTROL_STREAM);
    }
    if (ev.type === 'StreamFrame' && ev.stream % 4 === 0) {
      const k = `${ev.conn}/${ev.stream}`;
      let r = requests.get(k);
      if (!r) {
        const hash = createHash('sha256');
        requests.set(k, (r = { walker: new FrameWalker((b) => { hash.update(b); s.uploaded += b.length; }), hash }));
      }
      r.walker.push(ev.data, ev.length);
      if (ev.fin) {
        r.digest = r.hash.digest('hex');
        r.state = io.tlsInfo(ev.conn)?.state;  // 'handshake': the request came in 0-RTT
        const body = bodyFor(ev.stream / 4);
        queues.set(k, [response(200, body.length), dataHeader(body.length), body]);
        pump(ev.conn, ev.stream);
      }
    }
    if (ev.type === 'Writable') pump(ev.conn, ev.stream);
    if (ev.type === 'PathMigration') s.migrations.push({ old: fmt(ev.oldPeer), now: fmt(ev.newPeer), uploadedSoFar: s.uploaded, sentSoFar: s.sent });
  };
  return { ...s, get answered() { return s.answered; }, get uploaded() { return s.uploaded; }, onEvent };
}

/** Our listener (ALPN h3) answering with `bodyFor`, driven by runSync. */
function serveH3(bodyFor: (index: number) => Buffer, extra: Parameters<typeof listener>[1] = {}) {
  const l = listener(pki, { alpn: ['h3'], ...extra });
  const srv = h3Server(l.io, bodyFor);
  const h = l.io.runSync(srv.onEvent, { onError: (e) => { throw e; } });
  return { ...l, srv, h };
}

/** The file gtlsclient saved is `body`: its size first (a short file says how far it got), then its bytes. */
function expectSaved(path: string, body: Buffer, peerTail: string): void {
  let got: Buffer;
  try {
    got = readFileSync(path);
  } catch {
    throw new Error(`gtlsclient saved no ${path}\n${peerTail}`);
  }
  expect(got.length, `the size of ${path}\n${peerTail}`).toBe(body.length);
  expect(sha256(got), peerTail).toBe(sha256(body));
}

// ==== our client -> gtlsserver ====

describe('interop: our client -> ngtcp2 gtlsserver (HTTP/3 GETs)', () => {
  it('H: handshake with ALPN h3 and TLS 1.3, one GET answered', async () => {
    const srv = await gtlsserver(['-q']);
    const { io, conn, client } = connectTo(srv.port);
    const h = io.runSync((ev) => {
      client.onEvent(ev);
      if (ev.type === 'Connected') client.request('/1000');
    });
    try {
      await until(() => client.done === 1, 10_000, 'the answer');
      client.expectAll(1000);
      expect(client.alpn).toBe('h3');
      expect(io.tlsInfo(conn)).toMatchObject({ state: 'open', version: 'TLSv1.3', alpn: 'h3', resumed: false, peerVerified: true });
    } finally {
      srv.kill();
      client.close();
      await h.shutdown();
    }
  }, 30_000);

  it('DC: 4 GETs of 2 MiB at once, every body byte counted and each FIN seen', async () => {
    const srv = await gtlsserver(['-q']);
    const { io, client } = connectTo(srv.port);
    const h = io.runSync((ev) => {
      client.onEvent(ev);
      if (ev.type === 'Connected') for (let i = 0; i < 4; i++) client.request(`/${2 << 20}`);
    });
    try {
      await until(() => client.done === 4, 20_000, 'four 2 MiB bodies');
      client.expectAll(2 << 20, 4);
    } finally {
      srv.kill();
      client.close();
      await h.shutdown();
    }
  }, 40_000);

  it('M: 1,000 small GETs in turn through the server\'s stream limit (100 at a time)', async () => {
    const srv = await gtlsserver(['-q']);
    const { io, client } = connectTo(srv.port);
    let limited = 0;
    const more = () => {
      while (client.fetches.size < 1000) {
        if (client.request('/300') === null) {
          limited++;
          return;  // a Writable with stream -1 follows when gtlsserver raises MAX_STREAMS
        }
      }
    };
    const h = io.runSync((ev) => {
      client.onEvent(ev);
      if (ev.type === 'Connected' || (ev.type === 'Writable' && ev.stream === -1)) more();
    });
    try {
      await until(() => client.done === 1000, 20_000, '1,000 answers');
      client.expectAll(300, 1000);
      expect(limited).toBeGreaterThan(0);  // the limit was met, and lifted
      expect(client.moreStreams).toBeGreaterThan(0);
    } finally {
      srv.kill();
      client.close();
      await h.shutdown();
    }
  }, 40_000);

  it('S: gtlsserver -V answers our first Initial with a Retry; the handshake goes on with its token', async () => {
    const srv = await gtlsserver(['--no-quic-dump', '--no-http-dump', '-V'], { retry: /^Sending Retry packet/, token: /^Verifying Retry token/ });
    const { io, client } = connectTo(srv.port);
    const h = io.runSync((ev) => {
      client.onEvent(ev);
      if (ev.type === 'Connected') client.request('/5000');
    });
    try {
      await until(() => client.done === 1, 10_000, 'the answer');
      client.expectAll(5000);
      // Our ClientHello fills two Initial datagrams: each gets a (stateless) Retry, the client
      // takes the first; then its Initials carry the token.
      await soon(() => srv.counts.retry >= 1 && srv.counts.token >= 1);
      expect(srv.counts.retry, srv.tail).toBeGreaterThanOrEqual(1);
      expect(srv.counts.token, srv.tail).toBeGreaterThanOrEqual(1);
    } finally {
      srv.kill();
      client.close();
      await h.shutdown();
    }
  }, 30_000);

  it('R and Z: the ticket of the first connection resumes the second, whose GET goes in 0-RTT and is accepted', async () => {
    const srv = await gtlsserver(['--no-quic-dump', '--no-http-dump'], { zeroRttGet: /frm rx \d+ 0RTT STREAM\(0x[0-9a-f]+\) id=0x0 fin=1/ });
    const io = new Io();
    const first = connectTo(srv.port, { io });
    let second: ReturnType<typeof connectTo> | null = null;
    let earlyAtConnected: ReturnType<Io['quicEarlyData']> | null = null;
    const h = io.runSync((ev) => {
      first.client.onEvent(ev);
      if (ev.type === 'Connected' && ev.conn === first.conn) first.client.request('/1000');
      if (second && ev.conn === second.conn) {
        if (ev.type === 'Connected') earlyAtConnected = io.quicEarlyData(ev.conn);
        second.client.onEvent(ev);
      }
    });
    try {
      await until(() => first.client.done === 1 && io.sessionTicket(first.conn) !== null, 10_000, 'the answer and a ticket');
      first.client.expectAll(1000);
      expect(io.tlsInfo(first.conn)!.resumed).toBe(false);
      const ticket = io.sessionTicket(first.conn)!;
      io.quicClose(first.conn);
      second = connectTo(srv.port, { io, sessionTicket: ticket });
      // Before the handshake: the control stream and the GET as early data.
      expect(io.quicEarlyData(second.conn)).toEqual({ earlyData: true, reason: 'in early data' });
      second.client.sendControl(true);
      expect(second.client.request('/2000', true)).toBe(0);
      await until(() => second!.client.done === 1, 10_000, 'the answer to the 0-RTT GET');
      second.client.expectAll(2000);
      expect(io.tlsInfo(second.conn)).toMatchObject({ resumed: true, version: 'TLSv1.3', state: 'open' });  // R
      expect(earlyAtConnected).toEqual({ earlyData: true, reason: 'accepted' });  // Z: gtlsserver took our 0-RTT
      expect(io.quicEarlyData(second.conn)).toEqual({ earlyData: true, reason: 'accepted' });
      await soon(() => srv.counts.zeroRttGet >= 1);
      expect(srv.counts.zeroRttGet, srv.tail).toBe(1);  // and says it read the GET from a 0-RTT packet
    } finally {
      srv.kill();
      first.client.close();
      (second as ReturnType<typeof connectTo> | null)?.client.close();
      await h.shutdown();
    }
  }, 30_000);

  it('C20: gtlsserver limited to ChaCha20-Poly1305; our client negotiates it and gets 1 MiB', async () => {
    const srv = await gtlsserver(['-q', `--ciphers=${CHACHA}`]);
    const { io, conn, client } = connectTo(srv.port);
    const h = io.runSync((ev) => {
      client.onEvent(ev);
      if (ev.type === 'Connected') client.request(`/${1 << 20}`);
    });
    try {
      await until(() => client.done === 1, 10_000, 'the answer');
      client.expectAll(1 << 20);
      expect(io.tlsInfo(conn)!.cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
    } finally {
      srv.kill();
      client.close();
      await h.shutdown();
    }
  }, 30_000);

  it('6: over IPv6 (::1)', async () => {
    const srv = await gtlsserver(['-q'], {}, '::1');
    const { io, conn, client } = connectTo(srv.port, { host: '::1' });
    const h = io.runSync((ev) => {
      client.onEvent(ev);
      if (ev.type === 'Connected') client.request('/100000');
    });
    try {
      await until(() => client.done === 1, 10_000, 'the answer over IPv6');
      client.expectAll(100000);
      expect(io.peerAddress(conn)).toMatchObject({ family: 'IPv6', address: '::1', port: srv.port });
    } finally {
      srv.kill();
      client.close();
      await h.shutdown();
    }
  }, 30_000);

  for (const [name, address] of [['BP: a new source port', '127.0.0.1'], ['BA: a new address (127.0.0.2)', '127.0.0.2']] as const) {
    it(`${name}: our client moved by a rebinding relay mid-download; gtlsserver validates the new path and the 4 MiB arrive`, async () => {
      const srv = await gtlsserver(['--no-quic-dump', '--no-http-dump'], { validated: /ptv path has been validated/ });
      const relay = await rebindingRelay(srv.port, 150, address);
      const { io, client } = connectTo(relay.port);
      let bodyAtMove = -1;  // body bytes we had when the relay moved us
      const h = io.runSync((ev) => {
        client.onEvent(ev);
        if (ev.type === 'Connected') client.request(`/${4 << 20}`);
        if (bodyAtMove < 0 && relay.forwarded() >= 150) bodyAtMove = client.fetches.get(0)?.walker.body ?? 0;
      });
      try {
        await until(() => client.done === 1, 20_000, 'the download across the rebinding');
        client.expectAll(4 << 20);
        expect(bodyAtMove).toBeGreaterThanOrEqual(0);
        expect(bodyAtMove).toBeLessThan(4 << 20);  // the move came mid-download
        await soon(() => srv.counts.validated >= 1);
        expect(srv.counts.validated, srv.tail).toBeGreaterThanOrEqual(1);
      } finally {
        srv.kill();
        relay.close();
        client.close();
        await h.shutdown();
      }
    }, 40_000);
  }
});

// ==== gtlsclient -> our server ====

describe('interop: ngtcp2 gtlsclient -> our server (HTTP/3 answers)', () => {
  it('H: handshake (ALPN h3, TLS 1.3), one request answered and saved', async () => {
    const body = pattern(1000, 1);
    const { port, srv, h } = serveH3(() => body);
    const dl = tmp();
    const c = gtlsclient(port, ['/h'], ['--download', dl], CLIENT_SAYS);
    try {
      await c.exited;
      expectSaved(join(dl, 'h'), body, c.tail);
      expect(srv.connected).toHaveLength(1);
      expect(srv.connected[0].alpn).toBe('h3');
      expect(srv.connected[0].tls).toMatchObject({ state: 'open', version: 'TLSv1.3', alpn: 'h3', servername: 'localhost', resumed: false });
      expect(c.counts, c.tail).toMatchObject({ ok: 1, status200: 1, failed: 0 });
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('DC: four URIs at once, 2 MiB each: the saved bodies have the right size and content', async () => {
    const size = 2 << 20;
    const bodies = [0, 1, 2, 3].map((i) => pattern(size, 11 + i));  // by request order (stream 0, 4, 8, 12)
    const { port, srv, h } = serveH3((i) => bodies[i]);
    const dl = tmp();
    const c = gtlsclient(port, ['/d0', '/d1', '/d2', '/d3'], ['--download', dl], CLIENT_SAYS);
    try {
      await c.exited;
      for (let i = 0; i < 4; i++) expectSaved(join(dl, `d${i}`), bodies[i], c.tail);
      expect(srv.answered).toBe(4);
      expect(c.counts, c.tail).toMatchObject({ ok: 4, failed: 0 });
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('M: 1,000 requests (-n 1000) through our listener\'s limit of 100 streams at a time', async () => {
    const body = pattern(200, 2);
    const { port, ep, io, srv, h } = serveH3(() => body, { maxStreamsBidi: 100 });
    const c = gtlsclient(port, ['/m'], ['-n', '1000'], CLIENT_SAYS);
    try {
      await c.exited;
      expect(srv.answered, c.tail).toBe(1000);
      expect(c.counts, c.tail).toMatchObject({ ok: 1000, status200: 1000, failed: 0 });
      expect(io.quicStats(ep)!.accepted).toBe(1);  // one connection
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('S: our listener with retry: gtlsclient goes through the Retry and gets its answer', async () => {
    const body = pattern(50_000, 3);
    const { port, ep, io, srv, h } = serveH3(() => body, { retry: true });
    const dl = tmp();
    const c = gtlsclient(port, ['/s'], ['--download', dl], { ...CLIENT_SAYS, retry: /type=Retry/, retryScid: /retry_source_connection_id=/ });
    try {
      await c.exited;
      expectSaved(join(dl, 's'), body, c.tail);
      expect(io.quicStats(ep)).toMatchObject({ retries: 1, badTokens: 0, accepted: 1 });
      expect(c.counts, c.tail).toMatchObject({ retry: 1, retryScid: 1, ok: 1, failed: 0 });
      expect(srv.connected).toHaveLength(1);
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('R and Z: a second run with --session-file/--tp-file resumes and sends its request in 0-RTT, which our listener accepts', async () => {
    const body = pattern(100_000, 4);
    const { port, srv, h } = serveH3(() => body, { earlyData: true });
    const dir = tmp();
    const files = [`--session-file=${join(dir, 'session.pem')}`, `--tp-file=${join(dir, 'tp.txt')}`];
    const runs: ReturnType<typeof gtlsclient>[] = [];
    try {
      for (const name of ['r1', 'r2']) {
        const c = gtlsclient(port, [`/${name}`], ['--download', dir, ...files], { ...CLIENT_SAYS, zeroRttGet: /frm tx \d+ 0RTT STREAM\(0x[0-9a-f]+\) id=0x0 fin=1/ });
        runs.push(c);
        await c.exited;
        expectSaved(join(dir, name), body, c.tail);
        expect(c.counts.failed, c.tail).toBe(0);
      }
      expect(srv.connected).toHaveLength(2);
      expect(srv.connected[0].tls!.resumed).toBe(false);
      expect(srv.connected[0].early.earlyData).toBe(false);
      expect(srv.connected[1].tls!.resumed).toBe(true);  // R
      expect(srv.connected[1].early).toEqual({ earlyData: true, reason: 'in early data' });  // Z: Connected came in early data
      expect(runs[1].counts.zeroRttGet, runs[1].tail).toBe(1);  // the client sent the GET in a 0-RTT packet
      expect([...srv.requests.values()].map((r) => r.state)).toEqual(['open', 'handshake']);  // and our server read it before the handshake ended
    } finally {
      for (const c of runs) c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('C20: gtlsclient offering only ChaCha20-Poly1305', async () => {
    const body = pattern(1 << 20, 5);
    const { port, srv, h } = serveH3(() => body);
    const dl = tmp();
    const c = gtlsclient(port, ['/c'], ['--download', dl, `--ciphers=${CHACHA}`], { ...CLIENT_SAYS, chacha: /Negotiated cipher suite is CHACHA20-POLY1305/ });
    try {
      await c.exited;
      expectSaved(join(dl, 'c'), body, c.tail);
      expect(srv.connected[0].tls!.cipher).toBe('TLS_CHACHA20_POLY1305_SHA256');
      expect(c.counts, c.tail).toMatchObject({ chacha: 1, ok: 1, failed: 0 });
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('U: gtlsclient updates the keys during an 8 MB download, which arrives intact', async () => {
    const body = pattern(8_000_000, 6);
    const { port, h } = serveH3(() => body);
    const dl = tmp();
    const c = gtlsclient(port, ['/u'], ['--download', dl, '--key-update=1ms'], {
      ...CLIENT_SAYS, initiate: /^Initiate key update/, confirmed: /key update confirmed/, phase1: /pkt rx .* type=1RTT k=1/,
    });
    try {
      await c.exited;
      expectSaved(join(dl, 'u'), body, c.tail);
      expect(c.counts, c.tail).toMatchObject({ initiate: 1, confirmed: 1, ok: 1, failed: 0 });
      expect(c.counts.phase1, c.tail).toBeGreaterThan(100);  // our packets under the new keys (key phase 1)
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  it('6: over IPv6 (::1)', async () => {
    const body = pattern(100_000, 7);
    const io = new Io();
    const ep = io.quicListenWith({ addr: '[::1]:0', tls: { cert: pki.serverCert, key: pki.serverKey }, alpn: ['h3'] });
    const srv = h3Server(io, () => body);
    const h = io.runSync(srv.onEvent, { onError: (e) => { throw e; } });
    const dl = tmp();
    const c = gtlsclient(io.localAddress(ep).port, ['/v6'], ['--download', dl], CLIENT_SAYS, '::1');
    try {
      await c.exited;
      expectSaved(join(dl, 'v6'), body, c.tail);
      expect(srv.connected[0].peer).toMatch(/^::1:\d+$/);
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  // --nat-rebinding moves gtlsclient to a new socket without telling ngtcp2 to validate it. It
  // then drops what still arrives on the old one ("ignore packet from unknown path") and sends
  // nothing until it has something to send: on a pure download it never speaks again and the
  // transfer stalls until the idle timeout (a peer limitation; ngtcp2 upstream does the same).
  // So the client uploads while it rebinds: its STREAM frames reach us from the new port.
  it('BP: gtlsclient --nat-rebinding during a 16 MB upload: our server follows the new port (PathMigration), upload and answer intact', async () => {
    const dir = tmp();
    const upload = pattern(16_000_000, 8);
    writeFileSync(join(dir, 'upload'), upload);
    const body = pattern(1_000_000, 9);
    const { port, srv, h } = serveH3(() => body);
    const c = gtlsclient(port, ['/bp'], ['--download', dir, '-m', 'POST', '-d', join(dir, 'upload'), '--change-local-addr=10ms', '--nat-rebinding'],
      { ...CLIENT_SAYS, changed: /^Local address is now/ });
    try {
      await c.exited;
      expectSaved(join(dir, 'bp'), body, c.tail);
      expect([...srv.requests.values()].map((r) => r.digest)).toEqual([sha256(upload)]);
      expect(c.counts, c.tail).toMatchObject({ changed: 1, ok: 1, failed: 0 });
      expect(srv.migrations).toHaveLength(1);
      const m = srv.migrations[0];
      expect(m.old).toBe(srv.connected[0].peer);
      expect(m.now).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(m.now).not.toBe(m.old);
      expect(m.uploadedSoFar).toBeLessThan(upload.length);  // mid-upload
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);

  // The server side of a migration with data in flight: what our server sent on the old path
  // just before the move and lost there must be sent again. quiche 0.30.0's legacy recovery
  // (cubic and reno) does not do it (cloudflare/quiche#2452, open; fix proposed in #2454): the
  // old path's packets are never declared lost (its largest-acked only advances on its own
  // packets) and each PTO re-queues only the same two oldest ones, so a hole stays in the stream
  // and the transfer dies at the idle timeout — seen in 17 of 40 cubic downloads with a client
  // that moves, 0 of 18 with BBRv2, whose recovery (quiche's newer one) resends them. These two
  // run with bbr2, what the README tells users whose clients move under load; the limitation is
  // docs/architecture/0021-quic.md decision 21.
  it('BA: gtlsclient moved from 127.0.0.1 to 127.0.0.2 by a relay mid-download: our server follows (PathMigration), 8 MB intact', async () => {
    const body = pattern(8_000_000, 10);
    const { port, srv, h } = serveH3(() => body, { congestionControl: 'bbr2' });
    const relay = await rebindingRelay(port, 150, '127.0.0.2');
    const dl = tmp();
    const c = gtlsclient(relay.port, ['/ba'], ['--download', dl], CLIENT_SAYS);
    try {
      await c.exited;
      expectSaved(join(dl, 'ba'), body, c.tail);
      expect(relay.forwarded()).toBeGreaterThan(150);
      expect(srv.migrations).toMatchObject([{ old: `127.0.0.1:${relay.before.port}`, now: `127.0.0.2:${relay.after.port}` }]);
      expect(srv.migrations[0].sentSoFar).toBeLessThan(body.length);  // before the whole answer was written
      expect(c.counts, c.tail).toMatchObject({ ok: 1, failed: 0 });
    } finally {
      c.kill();
      relay.close();
      await h.shutdown();
    }
  }, 30_000);

  // --change-local-addr moves gtlsclient to the address the kernel routes from: on loopback
  // 127.0.0.1 again, so a new port, and with a new connection id and PATH_CHALLENGE (an active,
  // client-initiated migration; the address change itself is the relay's test above).
  it('BA (client-initiated): gtlsclient --change-local-addr mid-download: our server answers its PATH_CHALLENGE, follows it, 8 MB intact', async () => {
    const body = pattern(8_000_000, 12);
    const { port, srv, h } = serveH3(() => body, { congestionControl: 'bbr2' });
    const dl = tmp();
    const c = gtlsclient(port, ['/cm'], ['--download', dl, '--change-local-addr=10ms'],
      { ...CLIENT_SAYS, validated: /^Path validation against path .* succeeded/ });
    try {
      await c.exited;
      expectSaved(join(dl, 'cm'), body, c.tail);
      expect(c.counts, c.tail).toMatchObject({ validated: 1, ok: 1, failed: 0 });
      expect(srv.migrations).toHaveLength(1);
      expect(srv.migrations[0].old).toBe(srv.connected[0].peer);
      expect(srv.migrations[0].now).toMatch(/^127\.0\.0\.1:\d+$/);
      expect(srv.migrations[0].now).not.toBe(srv.migrations[0].old);
      expect(srv.migrations[0].sentSoFar).toBeLessThan(body.length);  // before the whole answer was written
    } finally {
      c.kill();
      await h.shutdown();
    }
  }, 30_000);
});
