// Answers from worker threads: an owned request transferred to a worker and answered there,
// and IoHandle.httpRespond with (conn, requestId) posted to a worker. Answers keep request order.
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { Io } from '@zero-io/core';
import { ZeroResponse } from '@zero-io/http';
import { afterEach, expect, it } from 'vitest';
import { onError } from './helpers.js';

let io: Io | undefined;
let worker: Worker | undefined;
afterEach(async () => {
  await worker?.terminate();
  worker = undefined;
  if (io && !io.closed) io.shutdown();
  io = undefined;
});

it('a worker answers: transferred owned requests and IoHandle.httpRespond, 40 requests over keep-alive', async () => {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  worker = new Worker(new URL('./fixtures/http-worker.mjs', import.meta.url));
  const handle = io.handle();
  let n = 0;
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    if (ev.path.startsWith('/owned')) {
      const req = io!.detachHttpRequest()!;
      worker!.postMessage({ owned: req.transfer() });
    } else {
      worker!.postMessage({ handle: handle.id, conn: ev.conn, requestId: ev.requestId, n: n++ });
    }
  }, { onError });
  for (let i = 0; i < 20; i++) {
    const a = await fetch(`http://127.0.0.1:${port}/owned/${i}`, { method: 'POST', body: `b${i}`, headers: { 'x-n': String(i) } });
    expect(a.headers.get('x-worker')).toBe('1');
    expect(await a.text()).toBe(`owned POST /owned/${i} ${i} b${i}`);
    const b = await fetch(`http://127.0.0.1:${port}/h`);
    expect(await b.json()).toEqual({ by: 'handle', n: i });
  }
  expect(io.httpStats(ep)!.responses).toBe(40);
  await h.shutdown();
});

it('a late answer from a worker for a request whose client reset the connection is a no-op', async () => {
  io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  const handle = io.handle();
  let target: { conn: number; requestId: number } | undefined;
  let disconnected = false;
  const rejected: string[] = [];
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') target = { conn: ev.conn, requestId: ev.requestId };
    if (ev.type === 'Disconnected') disconnected = true;
    if (ev.type === 'HandleRejected') rejected.push(ev.reason);
  }, { onError });
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const t0 = Date.now();
  while (!target && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
  s.resetAndDestroy();  // RST: the client is gone
  while (!disconnected && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 5));
  expect(disconnected).toBe(true);
  handle.httpRespond(target!.conn as never, target!.requestId, ZeroResponse.ok().text('late'));
  expect(io.httpRespond(target!.conn as never, target!.requestId, ZeroResponse.ok().text('late'))).toBe(false);
  await new Promise((r) => setTimeout(r, 100));
  expect(rejected).toEqual([]);  // gone: nothing to answer, nothing to report
  expect(io.httpStats(ep)!.responses).toBe(0);
  await h.shutdown({ timeoutMs: 200 });
});
