// Graceful shutdown of an HTTP server: idle keep-alive connections close at once, a request in
// flight is answered (with Connection: close) before its connection closes, no new request is
// read meanwhile, and a handler that never answers is bounded by the shutdown's timeout.
import http from 'node:http';
import net from 'node:net';
import { Io } from '@zero-io/core';
import { ZeroResponse } from '@zero-io/http';
import { afterEach, expect, it } from 'vitest';
import { onError } from './helpers.js';

let io: Io | undefined;
afterEach(() => { if (io && !io.closed) io.shutdown(); io = undefined; });

/** A raw connection that collects what it receives and notes the server's FIN. */
function raw(port: number) {
  const s = net.connect(port, '127.0.0.1');
  const st = { data: '', ended: false, s };
  s.setEncoding('latin1');
  s.on('data', (d) => { st.data += d; });
  s.on('end', () => { st.ended = true; });
  s.on('error', () => {});
  return st;
}
const until = async (c: () => boolean, ms = 10_000) => {
  const t0 = Date.now();
  while (!c()) { if (Date.now() - t0 > ms) throw new Error('timed out'); await new Promise((r) => setTimeout(r, 5)); }
};

it('shutdown lets a request in flight finish (Connection: close), closes idle keep-alive connections at once', async () => {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  const pending: { conn: number; id: number }[] = [];
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    if (ev.path === '/slow') pending.push({ conn: ev.conn, id: ev.requestId });
    else io!.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text('fast'));
  }, { onError });
  const idle = raw(port);
  idle.s.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => idle.data.includes('fast'));
  const busy = raw(port);
  busy.s.write('GET /slow HTTP/1.1\r\nHost: x\r\n\r\n');
  await until(() => pending.length === 1);
  const done = h.shutdown({ timeoutMs: 5000 });
  await until(() => idle.ended);                   // idle: closed at once
  expect(busy.ended).toBe(false);                  // in flight: still open
  busy.s.write('GET /fast HTTP/1.1\r\nHost: x\r\n\r\n');  // not read any more
  await new Promise((r) => setTimeout(r, 50));
  io.httpRespond(pending[0].conn as never, pending[0].id, ZeroResponse.ok().text('slow done'));
  await until(() => busy.ended);
  await done;
  expect(busy.data).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  expect(busy.data).toContain('Connection: close\r\n');
  expect(busy.data.endsWith('slow done')).toBe(true);
  expect(busy.data.match(/HTTP\/1\.1 /g)).toHaveLength(1);  // the request sent after shutdown got no answer
});

it("shutdown's timeout bounds a request that is never answered", async () => {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  let seen = 0;
  const h = io.runSync((ev) => { if (ev.type === 'HttpRequest') seen++; }, { onError });
  const req = http.get({ host: '127.0.0.1', port, path: '/never', agent: false });
  const closed = new Promise<string>((r) => req.on('error', (e) => r((e as NodeJS.ErrnoException).code ?? e.message)));
  await until(() => seen === 1);
  const t0 = Date.now();
  await h.shutdown({ timeoutMs: 300 });
  expect(Date.now() - t0).toBeLessThan(5000);
  expect(await closed).toMatch(/ECONNRESET|socket hang up/);
});
