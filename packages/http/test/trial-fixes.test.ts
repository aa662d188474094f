// What a new user's trial found (docs/architecture/0015's issue note lists them), each fixed:
// a kept event read later throws BorrowExpired (it hung the server), a client that gives up
// (FIN) aborts owned requests, httpStats of a non-endpoint is null, a stalled streamed body is
// bounded by requestTimeoutMs, and a runAsync handler that answered itself is not reported.
import net from 'node:net';
import { Io, type ConnId } from '@zero-io/core';
import { ZeroResponse, type HttpOwnedRequest } from '@zero-io/http';
import { afterEach, expect, it } from 'vitest';
import { h2text, onError, run, until, untilServerEnds } from './helpers.js';

let io: Io | undefined;
afterEach(() => { if (io && !io.closed) io.shutdown(); io = undefined; });
const until = async (c: () => boolean, ms = 10_000) => {
  const t0 = Date.now();
  while (!c()) { if (Date.now() - t0 > ms) throw new Error('timed out'); await new Promise((r) => setTimeout(r, 5)); }
};

it('a kept HttpRequest event read after its handler call throws BorrowExpired, never hangs', async () => {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  let kept: { path: string; header(n: string): string | null; headers(): unknown; requestId: number } | undefined;
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    kept = ev;
    io!.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text('ok'));
  }, { onError });
  await (await fetch(`http://127.0.0.1:${port}/a`)).text();
  await (await fetch(`http://127.0.0.1:${port}/b`, { headers: { connection: 'close' } })).text();
  await new Promise((r) => setTimeout(r, 50));
  // The ring slot now holds another event (Disconnected, ...): every read refuses.
  for (const read of [() => kept!.path, () => kept!.header('host'), () => kept!.headers(), () => kept!.requestId]) {
    let err: unknown;
    try { read(); } catch (e) { err = e; }
    if (err !== undefined) expect(err).toMatchObject({ kind: 'BorrowExpired' });
  }
  await h.shutdown();
});

it('an owned request is aborted when its client gives up (ends its side); unanswered, its connection closes after requestTimeoutMs', async () => {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, requestTimeoutMs: 300 });
  const port = io.localAddress(ep).port;
  let req: HttpOwnedRequest | undefined;
  let reason = '';
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    req = io!.detachHttpRequest()!;
    req.signal.addEventListener('abort', () => {
      reason = (req!.signal.reason as Error).message;
      req!.release();
    });
  }, { onError });
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => req !== undefined);
  s.end();  // the client gives up: FIN
  await until(() => reason !== '');
  expect(reason).toMatch(/ended its side/);
  await until(() => io!.httpStats(ep)!.activeConnections === 0);
  await h.shutdown();
});

it('httpStats of something that is not an HTTP endpoint is null', () => {
  io = new Io();
  for (const bad of [999, 0, -1, 'abc', undefined]) expect(io.httpStats(bad as never)).toBeNull();
});

it('a streamed body that stalls is answered 408 after requestTimeoutMs, in its request\'s place', async () => {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, requestTimeoutMs: 300 });
  const port = io.localAddress(ep).port;
  let seen = 0;
  const h = io.runSync((ev) => { if (ev.type === 'HttpRequest') seen++; }, { onError });
  const got = await untilServerEnds(port, 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nx');
  expect(seen).toBe(1);
  expect(got).toMatch(/^HTTP\/1\.1 408 Request Timeout\r\n/);
  expect(got).toContain('the request body stalled');
  expect(io.httpStats(ep)!.timeouts).toBe(1);
  await h.shutdown();
});

it('runAsync: a handler that answered itself may return anything; nothing is reported', async () => {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  const errors: unknown[] = [];
  const h = io.runAsync(async (req) => {
    req.respond(ZeroResponse.ok().text('mine'));
    return undefined as unknown as ZeroResponse;
  }, { onError: (e) => errors.push(e) });
  expect(await (await fetch(`http://127.0.0.1:${port}/`)).text()).toBe('mine');
  await new Promise((r) => setTimeout(r, 20));
  expect(errors).toEqual([]);
  expect(() => io!.runAsync(() => ZeroResponse.ok())).toThrow(/runAsync\(\): this Io is already driven/);
  await h.shutdown();
  void (0 as unknown as ConnId);
});

it('HTTPS serves an HTTP/1.0 client that offers ALPN http/1.0 (curl --http1.0), and HTTP/1.1 as before', async () => {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { join } = await import('node:path');
  await import('@zero-io/tcp');
  const dir = mkdtempSync(join(tmpdir(), 'zio-http10-'));
  try {
    const gen = await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
      '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')]);
    expect(gen.code).toBe(0);
    io = new Io();
    const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') } });
    const port = io.localAddress(ep).port;
    const h = io.runSync((ev) => {
      if (ev.type === 'HttpRequest') io!.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text(`v${ev.version}`));
    }, { onError });
    for (const [flag, want] of [['--http1.0', 'v1.0'], ['--http1.1', 'v1.1']]) {
      const r = await run('curl', ['-sk', flag, `https://127.0.0.1:${port}/`]);
      expect(r.code).toBe(0);
      expect(r.stdout.toString()).toBe(want);
    }
    await h.shutdown();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

// Second trial (2026-12-03): the documented way to handle a client that gave up — the signal
// fires, the handler stops and release()s — left the connection waiting requestTimeoutMs for
// the answer owed, and shutdown() waited its whole timeout for it.
it('release() after the client ended its side closes the connection at once; shutdown does not wait for it', async () => {
  const io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, requestTimeoutMs: 60_000 });
  const closed: { origin: string }[] = [];
  let released = 0;
  const server = io.runAsync(async (req) => {
    await new Promise((r) => req.signal.addEventListener('abort', r));
    req.release();
    released++;
    return ZeroResponse.ok();  // ignored: released already
  }, { onError, onEvent: (ev) => { if (ev.type === 'Disconnected') closed.push({ origin: ev.origin }); } });
  const s = net.connect(io.localAddress(ep).port, '127.0.0.1');
  s.on('error', () => {});
  s.resume();
  await new Promise((r) => s.once('connect', r));
  s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => setTimeout(r, 50));
  s.end();  // the client gives up (FIN)
  await until(() => closed.length === 1, 10_000, 'the close (within 10 s, not the 60 s requestTimeoutMs)');
  expect(released).toBe(1);
  s.destroy();
  await server.shutdown({ timeoutMs: 30_000 });
  expect(io.httpStats(ep)?.activeStreams ?? 0).toBe(0);
});

it('a client that closes an idle keep-alive connection (HTTP/1.1 FIN, HTTP/2 session close) is reported with origin peer', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  const closed: string[] = [];
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text('ok'));
    else if (ev.type === 'Disconnected') closed.push(ev.origin);
  }, { onError });
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  let got = '';
  s.on('data', (d) => (got += d));
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  while (!got.endsWith('ok')) await new Promise((r) => setTimeout(r, 5));
  s.end();
  await until(() => closed.length === 1, 10_000, 'the HTTP/1.1 close');
  const session = (await import('node:http2')).connect(`http://127.0.0.1:${port}`);
  expect(await h2text(session, '/')).toBe('ok');
  session.close();
  await until(() => closed.length === 2, 10_000, 'the HTTP/2 close');
  expect(closed).toEqual(['peer', 'peer']);
  await h.shutdown();
});

it('a runSync handler that throws on an HttpRequest: the request is answered 500 and onError hears of it; a handler that answered first keeps its answer', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const errors: string[] = [];
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    if (ev.path === '/answered-then-throw') {
      io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text('answered'));
      throw new Error('after answering');
    }
    if (ev.path === '/boom') throw new Error('boom');
    io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text('fine'));
  }, { onError: (err) => errors.push((err as Error).message) });
  try {
    const base = `http://127.0.0.1:${io.localAddress(ep).port}`;
    const boom = await fetch(`${base}/boom`);
    expect(boom.status).toBe(500);
    const first = await fetch(`${base}/answered-then-throw`);
    expect([first.status, await first.text()]).toEqual([200, 'answered']);
    expect(await (await fetch(`${base}/ok`)).text()).toBe('fine');
    expect(errors).toEqual(['boom', 'after answering']);
  } finally {
    await h.shutdown();
  }
});

it('runAsync + req.respondStream(head): a streamed answer from an async handler that returns nothing, without an error report', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const errors: unknown[] = [];
  const h = io.runAsync(async (req) => {
    if (req.path() === '/none') return;  // neither answered nor streamed: 500 and a report
    const w = req.respondStream(ZeroResponse.ok().header('Content-Type', 'text/event-stream'))!;
    expect(req.answered).toBe(true);
    for (let i = 0; i < 3; i++) {
      if (!w.write(`data: ${i}\n\n`)) await w.drained();
      await new Promise((r) => setTimeout(r, 10));
    }
    w.end();
  }, { onError: (e) => errors.push(e) });
  try {
    const base = `http://127.0.0.1:${io.localAddress(ep).port}`;
    const res = await fetch(`${base}/events`);
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    expect(await res.text()).toBe('data: 0\n\ndata: 1\n\ndata: 2\n\n');
    expect(errors).toEqual([]);
    expect((await fetch(`${base}/none`)).status).toBe(500);
    expect(String(errors[0])).toMatch(/returned nothing and did not answer/);
  } finally {
    await h.shutdown();
  }
});

it('an answer before the request body has all arrived (json({ maxBytes }) -> 413) says Connection: close, and the rest of the upload is not read', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const h = io.runAsync(async (req) => ZeroResponse.ok().json(await req.json({ maxBytes: 1000 })), { onError });
  try {
    const s = net.connect(io.localAddress(ep).port, '127.0.0.1');
    s.on('error', () => {});
    let got = '';
    s.setEncoding('latin1');
    s.on('data', (d) => (got += d));
    const ended = new Promise((r) => s.on('close', r));
    await new Promise((r) => s.once('connect', r));
    s.write(`POST /up HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${5 << 20}\r\n\r\n`);
    s.write(Buffer.alloc(64 * 1024, 0x20));  // the client keeps uploading; the server answers early
    await ended;  // the server closes (after its lingering close), not waiting for 5 MiB
    expect(got).toMatch(/^HTTP\/1\.1 413 /);
    expect(got).toContain('Connection: close\r\n');
  } finally {
    await h.shutdown();
  }
});

// Third trial (confirmation): an early answer over HTTP/2 ended the whole connection.
it('HTTP/2: an answer before the upload ends (401 without reading) resets only that stream (NO_ERROR); other streams and the connection go on', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    io.httpRespond(ev.conn, ev.requestId, ev.path === '/upload' ? ZeroResponse.status(401).text('no') : ZeroResponse.ok().text(ev.path));
  }, { onError });
  const http2 = await import('node:http2');
  const s = http2.connect(`http://127.0.0.1:${io.localAddress(ep).port}`);
  let goaway = -1;
  s.on('goaway', (code: number) => (goaway = code));
  s.on('error', () => {});
  try {
    const up = s.request({ ':method': 'POST', ':path': '/upload' });
    up.on('error', () => {});
    const status = new Promise<number>((r) => up.on('response', (hd) => r(Number(hd[':status']))));
    for (let i = 0; i < 40; i++) up.write(Buffer.alloc(16 * 1024, 1));  // keeps sending after the answer
    expect(await status).toBe(401);
    await new Promise((r) => setTimeout(r, 100));
    expect(await h2text(s, '/after')).toBe('/after');
    expect(goaway).toBe(-1);
  } finally {
    s.close();
    await h.shutdown();
  }
});

it('HTTP/2 cookie crumbs (RFC 9113 8.2.3) are read as one cookie field joined by "; ", and count once against maxHeaderCount', async () => {
  const io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, maxHeaderCount: 10 });
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text(`${ev.header('cookie')}|${ev.headers().filter(([n]) => n === 'cookie').length}`));
  }, { onError });
  const http2 = await import('node:http2');
  const s = http2.connect(`http://127.0.0.1:${io.localAddress(ep).port}`);
  try {
    const crumbs = Array.from({ length: 30 }, (_, i) => `k${i}=v${i}`);
    const body = await h2text(s, '/', { cookie: crumbs });
    expect(body).toBe(`${crumbs.join('; ')}|1`);
  } finally {
    s.close();
    await h.shutdown();
  }
});

it('bytes()/json() with a declared Content-Length over maxBytes answer 413 before reading (even behind Expect: 100-continue)', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const h = io.runAsync(async (req) => ZeroResponse.ok().json(await req.json({ maxBytes: 1000 })), { onError });
  try {
    const got = await untilServerEnds(io.localAddress(ep).port,
      'POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5242880\r\nExpect: 100-continue\r\n\r\n{"a":1');
    expect(got).toMatch(/413 /);
    expect(got).toContain('Connection: close\r\n');
  } finally {
    await h.shutdown();
  }
});
