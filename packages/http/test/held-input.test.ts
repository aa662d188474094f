// A client that pipelines without reading answers (or a server that does not answer) meets TCP
// flow control: the engine holds a bounded amount of its input, then stops reading.
import net from 'node:net';
import { Io } from '@zero-io/core';
import { ZeroResponse } from '@zero-io/http';
import { afterEach, expect, it } from 'vitest';
import { onError } from './helpers.js';

let io: Io | undefined;
afterEach(() => { if (io && !io.closed) io.shutdown(); io = undefined; });

it('unanswered pipelined requests: input held is bounded (the client is flow-controlled), and all are answered once the server answers', async () => {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, maxPipelined: 4 });
  const port = io.localAddress(ep).port;
  const held: { conn: number; id: number }[] = [];
  const ok = ZeroResponse.ok().text('ok');
  let answering = false;
  const h = io.runSync((ev) => {
    if (ev.type !== 'HttpRequest') return;
    if (answering) io!.httpRespond(ev.conn, ev.requestId, ok);
    else held.push({ conn: ev.conn, id: ev.requestId });
  }, { onError });
  const one = Buffer.from('GET /p HTTP/1.1\r\nHost: x\r\n\r\n');
  const total = 600_000;  // 16.8 MB of requests: more than the kernel buffers on both sides
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  let answers = 0;
  let buf = '';
  s.setEncoding('latin1');
  s.on('data', (d) => { buf += d; let i; while ((i = buf.indexOf('\r\n\r\nok')) >= 0) { answers++; buf = buf.slice(i + 6); } });
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(Buffer.concat(Array(total).fill(one)));
  await new Promise((r) => setTimeout(r, 500));
  // Not answered: 4 parsed, the rest waits in the kernel and in the client.
  expect(held.length).toBe(4);
  expect(s.writableLength).toBeGreaterThan(1_000_000);
  // Now answer the held ones, and every request as it comes.
  answering = true;
  for (const r of held) io.httpRespond(r.conn as never, r.id, ok);
  const t0 = Date.now();
  while (answers < total && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 20));
  expect(answers).toBe(total);
  s.destroy();
  await h.shutdown({ timeoutMs: 200 });
});
