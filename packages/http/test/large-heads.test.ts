// Request heads larger than a pool slot (big cookies): the record takes adjacent slots, on
// HTTP/1.1 (pipelined among small ones, with an inline body, detached by runAsync) and HTTP/2.
import http2 from 'node:http2';
import { expect, it } from 'vitest';
import { Io } from '@zero-io/core';
import { ZeroResponse } from '@zero-io/http';
import { exchange, get, h2text, onError, post, startServer, until, type RequestCopy } from './helpers.js';

const cookieOf = (req: RequestCopy) => req.headers.find(([n]) => n.toLowerCase() === 'cookie')?.[1] ?? '';
const cookie = (n: number, seed: string) => Array.from({ length: n }, (_, i) => `${seed}${i}=${'v'.repeat(90)}`).join('; ');

it('HTTP/1.1: 10 KiB and 60 KiB cookies (5 and 30 default slots) among small pipelined requests, each read back exactly', async () => {
  const big = cookie(100, 'a');      // ~10 KiB
  const huge = cookie(600, 'b');     // ~60 KiB
  const srv = startServer({
    listen: { maxHeaderSize: 65_535 },
    onRequest: (req) => ZeroResponse.ok().text(`${req.target} ${cookieOf(req).length} ${req.fullBody().length}`),
  });
  const c = await exchange(srv.port, [
    get('/small1'), get('/big', [`Cookie: ${big}`]), get('/small2'),
    post('/huge', 'body!', [`Cookie: ${huge}`]), get('/small3'),
  ], { until: 5 });
  expect(c.responses.map((r) => r.body.toString())).toEqual([
    '/small1 0 0', `/big ${big.length} 0`, '/small2 0 0', `/huge ${huge.length} 5`, '/small3 0 0',
  ]);
  expect(cookieOf(srv.requests.find((r) => r.target === '/big')!)).toBe(big);
  expect(cookieOf(srv.requests.find((r) => r.target === '/huge')!)).toBe(huge);
});

it('runAsync: a detached request with a large head keeps its fields until answered', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const big = cookie(150, 'c');  // ~15 KiB
  const h = io.runAsync(async (req) => {
    await new Promise((r) => setTimeout(r, 20));  // other requests reuse slots meanwhile
    return ZeroResponse.ok().text(`${req.path()} ${req.header('cookie') === big} ${req.headers().length}`);
  }, { onError });
  try {
    const base = `http://127.0.0.1:${io.localAddress(ep).port}`;
    const res = await Promise.all([
      fetch(`${base}/a`, { headers: { cookie: big } }),
      ...Array.from({ length: 20 }, (_, i) => fetch(`${base}/s${i}`)),
      fetch(`${base}/b`, { headers: { cookie: big } }),
    ]);
    const texts = await Promise.all(res.map((r) => r.text()));
    expect(texts[0]).toMatch(/^\/a true \d+$/);
    expect(texts[21]).toMatch(/^\/b true \d+$/);
    expect(texts.slice(1, 21).every((t, i) => t.startsWith(`/s${i} false`))).toBe(true);
  } finally {
    await h.shutdown();
  }
});

it('HTTP/2: a 12 KiB header (within maxHeaderListSize) is served on its stream beside small ones', async () => {
  const big = cookie(120, 'd');
  const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(`${req.path} ${cookieOf(req).length}`) });
  const s = http2.connect(`http://127.0.0.1:${srv.port}`);
  try {
    expect(await Promise.all([h2text(s, '/x'), h2text(s, '/big', { cookie: big }), h2text(s, '/y')])).toEqual(['/x 0', `/big ${big.length}`, '/y 0']);
  } finally {
    s.close();
  }
  await until(() => srv.io.httpStats(srv.ep)!.activeStreams === 0, 5000, 'streams done');
});
