// httpStats: requests in flight (HTTP/1.1 and HTTP/2), refusals by status, compression counters.
import http2 from 'node:http2';
import { expect, it } from 'vitest';
import { ZeroResponse } from '@zero-io/http';
import { exchange, get, startServer, until, untilServerEnds, type RequestCopy } from './helpers.js';

it('activeStreams counts requests read and not answered, on HTTP/1.1 (pipelined) and HTTP/2 (streams)', async () => {
  const held: RequestCopy[] = [];
  const srv = startServer({ onRequest: (req) => { held.push(req); return null; } });
  const stats = () => srv.io.httpStats(srv.ep)!;
  expect(stats().activeStreams).toBe(0);
  const c1 = exchange(srv.port, [get('/a'), get('/b')], { until: 2 });
  await until(() => held.length === 2, 5000, 'two HTTP/1.1 requests');
  expect(stats().activeStreams).toBe(2);
  const session = http2.connect(`http://127.0.0.1:${srv.port}`);
  try {
    const closed = [0, 1, 2].map((i) => {
      const r = session.request({ ':path': `/h2/${i}` });
      r.resume();
      r.end();
      return new Promise((res) => r.on('close', res));
    });
    await until(() => held.length === 5, 5000, 'three HTTP/2 streams');
    expect(stats().activeStreams).toBe(5);
    for (const r of held) srv.io.httpRespond(r.conn, r.requestId, ZeroResponse.ok().text('done'));
    await c1;
    await Promise.all(closed);
    await until(() => stats().activeStreams === 0, 5000, 'no request in flight');
  } finally {
    session.close();
  }
});

it('refusedByStatus counts each refusal by its status; responses and parseErrors / limitsHit agree', async () => {
  const srv = startServer({ listen: { maxHeaderCount: 4 } });
  expect(await untilServerEnds(srv.port, 'GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n')).toMatch(/^HTTP\/1\.1 431 /);
  expect(await untilServerEnds(srv.port, 'GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
  expect(await untilServerEnds(srv.port, 'GET / HTTP/1.7\r\nHost: a\r\n\r\n')).toMatch(/^HTTP\/1\.1 505 /);
  const st = srv.io.httpStats(srv.ep)!;
  expect(st.refusedByStatus).toEqual({ 400: 1, 408: 0, 413: 0, 414: 0, 417: 0, 431: 1, 501: 0, 505: 1 });
  expect(st.limitsHit).toBe(1);
  expect(st.parseErrors).toBe(2);
  expect(st.status4xx + st.status5xx).toBe(3);
  expect(Object.values(st.h2GoawayByCode).every((n) => n === 0)).toBe(true);
  // Each Disconnected reason names what the engine answered.
  await until(() => srv.disconnected.size === 3, 5000, 'three closes');
  const reasons = [...srv.disconnected.values()].map((d) => d.reason);
  for (const status of [400, 431, 505])
    expect(reasons.filter((r) => new RegExp(`^HTTP protocol error: .* \\(answered ${status}\\) \\(peer `).test(r)), reasons.join('\n')).toHaveLength(1);
});
