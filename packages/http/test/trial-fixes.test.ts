// What a new user's trial found (docs/architecture/0015's issue note lists them), each fixed:
// a kept event read later throws BorrowExpired (it hung the server), a client that gives up
// (FIN) aborts owned requests, httpStats of a non-endpoint is null, a stalled streamed body is
// bounded by requestTimeoutMs, and a runAsync handler that answered itself is not reported.
import net from 'node:net';
import { Io, type ConnId } from '@zero-io/core';
import { ZeroResponse, type HttpOwnedRequest } from '@zero-io/http';
import { afterEach, expect, it } from 'vitest';
import { onError, run, untilServerEnds } from './helpers.js';

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
