// Streamed answers (httpRespondStream): chunked framing read back by real clients, order with
// pipelined answers, backpressure against a slow reader (every byte arrives, write() says when
// to wait), HTTP/1.0 close-delimited bodies, and a writer whose client left.
import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Io } from '@zero-io/core';
import { ZeroResponse, type HttpBodyWriter } from '@zero-io/http';
import { afterEach, expect, it } from 'vitest';
import { onError, untilServerEnds } from './helpers.js';

let io: Io | undefined;
afterEach(() => { if (io && !io.closed) io.shutdown(); io = undefined; });

function serve(onRequest: (ev: { conn: number; requestId: number; path: string }) => void) {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') onRequest({ conn: ev.conn, requestId: ev.requestId, path: ev.path });
  }, { onError });
  return { port: io.localAddress(ep).port, h, ep };
}

/** Writes `total` bytes in 16 KiB pieces, waiting whenever write() says so; counts the waits. */
async function pump(w: HttpBodyWriter, total: number, seed: number): Promise<{ sha: string; waits: number }> {
  const hash = createHash('sha256');
  let waits = 0;
  for (let at = 0, i = 0; at < total; at += 16384, i++) {
    const piece = Buffer.alloc(Math.min(16384, total - at), (seed + i) & 0xff);
    hash.update(piece);
    if (!w.write(piece)) { waits++; await w.drained(); }
  }
  w.end();
  return { sha: hash.digest('hex'), waits };
}

it('a streamed answer reaches fetch whole (chunked), and the connection serves the next request', async () => {
  const { port, h } = serve((r) => {
    if (r.path === '/events') {
      const w = io!.httpRespondStream(r.conn as never, r.requestId, ZeroResponse.ok().header('Content-Type', 'text/event-stream'))!;
      let n = 0;
      const t = setInterval(() => { w.write(`data: ${n}\n\n`); if (++n === 5) { clearInterval(t); w.end(); } }, 5);
    } else {
      io!.httpRespond(r.conn as never, r.requestId, ZeroResponse.ok().text('after'));
    }
  });
  const res = await fetch(`http://127.0.0.1:${port}/events`);
  expect(res.headers.get('transfer-encoding')).toBe('chunked');
  expect(res.headers.get('content-type')).toBe('text/event-stream');
  expect(await res.text()).toBe([0, 1, 2, 3, 4].map((n) => `data: ${n}\n\n`).join(''));
  expect(await (await fetch(`http://127.0.0.1:${port}/next`)).text()).toBe('after');
  await h.shutdown();
});

it('16 MiB streamed to a reader that pauses: every byte arrives, write() asked to wait', async () => {
  let result: Promise<{ sha: string; waits: number }> | undefined;
  const { port, h } = serve((r) => {
    const w = io!.httpRespondStream(r.conn as never, r.requestId, ZeroResponse.ok())!;
    result = pump(w, 16 << 20, 7);
  });
  const got = await new Promise<{ sha: string; n: number }>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/big', agent: false }, (res) => {
      const hash = createHash('sha256');
      let n = 0;
      res.pause();
      setTimeout(() => res.resume(), 500);  // a slow start: the engine must hold back, not drop
      res.on('data', (d: Buffer) => { hash.update(d); n += d.length; });
      res.on('end', () => resolve({ sha: hash.digest('hex'), n }));
    }).on('error', reject);
  });
  const sent = await result!;
  expect(got.n).toBe(16 << 20);
  expect(got.sha).toBe(sent.sha);
  expect(sent.waits).toBeGreaterThan(0);
  await h.shutdown();
});

it('answers keep request order around a streamed one; HTTP/1.0 gets a close-delimited body', async () => {
  const { port, h } = serve((r) => {
    if (r.path === '/s') {
      const w = io!.httpRespondStream(r.conn as never, r.requestId, ZeroResponse.ok())!;
      setTimeout(() => { w.write('one,'); w.end('two'); }, 20);
    } else {
      io!.httpRespond(r.conn as never, r.requestId, ZeroResponse.ok().text(r.path));
    }
  });
  const raw = await untilServerEnds(port, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /s HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  const bodies = raw.split('HTTP/1.1 200 OK').slice(1);
  expect(bodies).toHaveLength(3);
  expect(bodies[0].endsWith('\r\n\r\n/a')).toBe(true);
  expect(bodies[1]).toContain('Transfer-Encoding: chunked\r\n');
  expect(bodies[1].endsWith('\r\n\r\n4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n')).toBe(true);
  expect(bodies[2].endsWith('\r\n\r\n/b')).toBe(true);
  const ten = await untilServerEnds(port, 'GET /s HTTP/1.0\r\n\r\n');
  expect(ten).toContain('Connection: close\r\n');
  expect(ten).not.toContain('chunked');
  expect(ten.endsWith('\r\n\r\none,two')).toBe(true);
  await h.shutdown();
});

it('a writer whose client left: writes return false, drained() rejects RequestAborted', async () => {
  let writer: HttpBodyWriter | undefined;
  const { port, h } = serve((r) => { writer = io!.httpRespondStream(r.conn as never, r.requestId, ZeroResponse.ok())!; });
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const t0 = Date.now();
  while (!writer && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
  s.resetAndDestroy();
  while (!writer!.closed && Date.now() - t0 < 5000) {
    writer!.write('x');
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(writer!.closed).toBe(true);
  expect(writer!.write('more')).toBe(false);
  await expect(writer!.drained()).rejects.toMatchObject({ kind: 'RequestAborted' });
  await h.shutdown({ timeoutMs: 200 });
});

it('HTTP/2: streamed answers on several streams of one connection, 8 MiB to a reader that pauses, every byte in order', async () => {
  const http2 = await import('node:http2');
  const results: Promise<{ sha: string; waits: number }>[] = [];
  const { port, h } = serve((r) => {
    const w = io!.httpRespondStream(r.conn as never, r.requestId, ZeroResponse.ok().header('Content-Type', 'application/octet-stream'))!;
    results.push(pump(w, r.path === '/big' ? 8 << 20 : 200_000, r.path.length));
  });
  const c = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const get = (path: string, pauseMs = 0) => new Promise<{ sha: string; n: number; te: unknown }>((resolve, reject) => {
      const req = c.request({ ':path': path });
      const hash = createHash('sha256');
      let n = 0;
      let te: unknown;
      req.on('response', (hd) => { te = hd['content-length']; });
      if (pauseMs) { req.pause(); setTimeout(() => req.resume(), pauseMs); }
      req.on('data', (d: Buffer) => { hash.update(d); n += d.length; });
      req.on('end', () => resolve({ sha: hash.digest('hex'), n, te }));
      req.on('error', reject);
    });
    const [big, a, b] = await Promise.all([get('/big', 500), get('/a'), get('/bb')]);
    const sent = await Promise.all(results);
    expect(big.n).toBe(8 << 20);
    expect(a.n).toBe(200_000);
    expect(b.n).toBe(200_000);
    expect(big.te).toBeUndefined();  // no content-length: END_STREAM ends a streamed answer
    const shas = sent.map((s) => s.sha).sort();
    expect([big.sha, a.sha, b.sha].sort()).toEqual(shas);
    expect(sent.some((s) => s.waits > 0)).toBe(true);  // the paused reader made a writer wait
  } finally {
    c.close();
  }
  await h.shutdown();
});
