// Time and size limits of the zero-io HTTP/1.1 server, and load on one and on many connections:
// slowloris (requestTimeoutMs), idle keep-alive connections (keepAliveTimeoutMs), a slow reader
// of an 8 MiB answer, the configurable head / target / field-count / body limits at their
// boundaries, 1000 requests on one connection and 200 connections at once.
// Bounds on waits are generous (a loaded CI host); no duration is asserted.
import { describe, expect, it } from 'vitest';
import { ZeroResponse } from '@zero-io/http';
import {
  RawClient, chunked, get, post, randomPayload, sha256, startServer, until,
  type HttpServer, type RequestCopy,
} from './helpers.js';

/** Time passing is the scenario here (a client that does not read, a connection left idle). */
const elapse = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Sends `wire` on a new connection and expects exactly one answer `status`, Connection: close, the server's FIN, and no request handled. */
async function expectRefused(srv: HttpServer, wire: string | Buffer, status: number): Promise<RawClient> {
  const c = await RawClient.connect(srv.port);
  const conn = await srv.connOf(c);
  c.write(wire);
  await c.waitClose(15_000);
  expect(c.responses).toHaveLength(1);
  expect(c.responses[0].status).toBe(status);
  expect(c.responses[0].header('connection')?.toLowerCase()).toBe('close');
  expect(c.ended).toBe(true);
  expect(srv.requestsOn(conn).filter((r) => !r.streamed || r.ended)).toHaveLength(0);
  return c;
}

/** Sends `wire` on a new connection and expects one 200 answer with `body`. */
async function expectServed(srv: HttpServer, wire: string | Buffer, body: string): Promise<void> {
  const c = await RawClient.connect(srv.port);
  const res = await c.request(wire);
  expect(res.status).toBe(200);
  expect(res.body.toString('latin1')).toBe(body);
  c.destroy();
}

/** Writes `data` one byte every `everyMs` until the server ends the connection or the bytes run out. */
function trickle(c: RawClient, data: Buffer, everyMs: number): { stop(): void; sent(): number } {
  let at = 0;
  const timer = setInterval(() => {
    if (c.ended || c.closed || at >= data.length) { clearInterval(timer); return; }
    c.write(data.subarray(at, at + 1));
    at++;
  }, everyMs);
  return { stop: () => clearInterval(timer), sent: () => at };
}

describe('slowloris: requestTimeoutMs', () => {
  it('a head trickled 1 byte per 200 ms gets 408 and a close (requestTimeoutMs 1000)', async () => {
    const srv = startServer({ listen: { requestTimeoutMs: 1000 } });
    const c = await RawClient.connect(srv.port);
    const conn = await srv.connOf(c);
    const head = Buffer.from(get('/slow', [`X-Pad: ${'a'.repeat(300)}`]));  // ~70 s at this pace
    const t = trickle(c, head, 200);
    try {
      await c.waitClose(20_000);
    } finally {
      t.stop();
    }
    expect(t.sent()).toBeLessThan(head.length);  // the head never completed
    expect(c.responses).toHaveLength(1);
    expect(c.responses[0].statusLine).toMatch(/^HTTP\/1\.1 408 /);
    expect(c.responses[0].header('connection')?.toLowerCase()).toBe('close');
    expect(c.ended).toBe(true);
    expect(srv.requestsOn(conn)).toHaveLength(0);
    await until(() => srv.disconnected.has(conn), 10_000, 'Disconnected');
  });

  it('the same on a kept-alive connection: the first answer is intact, the trickled second request gets 408', async () => {
    const srv = startServer({ listen: { requestTimeoutMs: 1000 } });
    const c = await RawClient.connect(srv.port);
    const conn = await srv.connOf(c);
    const first = await c.request(get('/first'));
    expect(first.body.toString()).toBe('/first');
    const t = trickle(c, Buffer.from(get('/second', [`X-Pad: ${'b'.repeat(300)}`])), 200);
    try {
      await c.waitClose(20_000);
    } finally {
      t.stop();
    }
    expect(c.responses.map((r) => r.status)).toEqual([200, 408]);
    expect(c.responses[1].header('connection')?.toLowerCase()).toBe('close');
    expect(srv.requestsOn(conn).map((r) => r.target)).toEqual(['/first']);
  });

  it('the request timer starts at a request\'s first byte: idling between requests longer than requestTimeoutMs is no 408', async () => {
    const srv = startServer({ listen: { requestTimeoutMs: 1000, keepAliveTimeoutMs: 0 } });
    const c = await RawClient.connect(srv.port);
    expect((await c.request(get('/one'))).status).toBe(200);
    await elapse(2500);  // two and a half request time-outs of idleness
    expect(c.closed).toBe(false);
    expect(c.responses).toHaveLength(1);
    const two = await c.request(get('/two'));
    expect(two.status).toBe(200);
    expect(two.body.toString()).toBe('/two');
  });

  it('other connections are served while a slowloris is running', async () => {
    const srv = startServer({ listen: { requestTimeoutMs: 1000 } });
    const slow = await RawClient.connect(srv.port);
    const t = trickle(slow, Buffer.from(get('/slow', [`X-Pad: ${'c'.repeat(300)}`])), 200);
    try {
      for (let i = 0; i < 5; i++) {
        const c = await RawClient.connect(srv.port);
        expect((await c.request(get(`/ok/${i}`))).body.toString()).toBe(`/ok/${i}`);
        c.destroy();
      }
      await slow.waitClose(20_000);
    } finally {
      t.stop();
    }
    expect(slow.responses[0].status).toBe(408);
  });
});

describe('keepAliveTimeoutMs', () => {
  it('an idle connection after one answer is closed by the server (keepAliveTimeoutMs 500), with nothing more sent', async () => {
    const srv = startServer({ listen: { keepAliveTimeoutMs: 500 } });
    const c = await RawClient.connect(srv.port);
    const conn = await srv.connOf(c);
    const res = await c.request(get('/once'));
    expect(res.status).toBe(200);
    expect(res.header('connection')).toBeNull();
    await c.waitClose(15_000);
    expect(c.ended).toBe(true);
    expect(c.responses).toHaveLength(1);
    expect(c.leftover.length).toBe(0);
    await until(() => srv.disconnected.has(conn), 10_000, 'Disconnected');
  });

  it('a connection whose answer is still owed is not idle: a late answer (after 3x the time-out) still goes out', async () => {
    const held: RequestCopy[] = [];
    const srv = startServer({ listen: { keepAliveTimeoutMs: 500 }, onRequest: (req) => { held.push(req); return null; } });
    const c = await RawClient.connect(srv.port);
    c.write(get('/late'));
    await until(() => held.length === 1, 10_000, 'the request');
    await elapse(1500);
    expect(c.closed).toBe(false);
    expect(srv.io.httpRespond(held[0].conn, held[0].requestId, ZeroResponse.ok().text('late but here'))).toBe(true);
    const [res] = await c.waitResponses(1);
    expect(res.body.toString()).toBe('late but here');
    await c.waitClose(15_000);  // then idle: closed
  });
});

describe('a slow reader of a large answer', () => {
  it('8 MiB answer, the client does not read for a second, then reads: every byte arrives, in order', async () => {
    const big = randomPayload(8 << 20, 99);
    const answer = ZeroResponse.ok().bytes(big);
    const srv = startServer({ onRequest: () => answer });
    const c = await RawClient.connect(srv.port);
    c.socket.pause();
    c.write(get('/big'));
    await elapse(1000);
    expect(c.closed).toBe(false);
    c.socket.resume();
    const [res] = await c.waitResponses(1, 60_000);
    expect(res.status).toBe(200);
    expect(res.header('content-length')).toBe(String(big.length));
    expect(res.body.length).toBe(big.length);
    expect(sha256(res.body)).toBe(sha256(big));
    expect(c.leftover.length).toBe(0);
    // The connection is still good for another request.
    const again = await c.request(get('/big'), 60_000);
    expect(sha256(again.body)).toBe(sha256(big));
  }, 90_000);

  it('two large answers pipelined (8 MiB, 3 MiB) to a paused reader arrive whole and in order, then a small one', async () => {
    const a = randomPayload(8 << 20, 5);
    const b = randomPayload(3 << 20, 6);
    const srv = startServer({ onRequest: (req) => (req.path === '/a' ? ZeroResponse.ok().bytes(a) : req.path === '/b' ? ZeroResponse.ok().bytes(b) : ZeroResponse.ok().text('small')) });
    const c = await RawClient.connect(srv.port);
    c.socket.pause();
    c.write(get('/a') + get('/b') + get('/c'));
    await elapse(1000);
    c.socket.resume();
    const list = await c.waitResponses(3, 60_000);
    expect(sha256(list[0].body)).toBe(sha256(a));
    expect(sha256(list[1].body)).toBe(sha256(b));
    expect(list[2].body.toString()).toBe('small');
  }, 90_000);

  it('four clients each pausing on an 8 MiB answer all get every byte', async () => {
    const big = randomPayload(8 << 20, 123);
    const answer = ZeroResponse.ok().bytes(big);
    const srv = startServer({ onRequest: () => answer });
    const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.connect(srv.port)));
    for (const c of clients) { c.socket.pause(); c.write(get('/big')); }
    await elapse(1000);
    for (const c of clients) c.socket.resume();
    const want = sha256(big);
    for (const c of clients) {
      const [res] = await c.waitResponses(1, 60_000);
      expect(sha256(res.body)).toBe(want);
    }
  }, 120_000);
});

describe('configured limits, at their boundaries', () => {
  it('maxHeaderCount 5: five fields are served, six get 431', async () => {
    const srv = startServer({ listen: { maxHeaderCount: 5 } });
    await expectServed(srv, get('/five', ['A: 1', 'B: 2', 'C: 3', 'D: 4']), '/five');
    await expectRefused(srv, get('/six', ['A: 1', 'B: 2', 'C: 3', 'D: 4', 'E: 5']), 431);
  });

  it('maxTargetSize 64: a 64-byte target is served, 65 bytes get 414', async () => {
    const srv = startServer({ listen: { maxTargetSize: 64 } });
    const t64 = `/${'t'.repeat(63)}`;
    await expectServed(srv, get(t64), t64);
    await expectRefused(srv, get(`${t64}u`), 414);
  });

  it('maxHeaderSize 512: a 300-byte head is served, a 700-byte head gets 431', async () => {
    const srv = startServer({ listen: { maxHeaderSize: 512 } });
    const okHead = get('/h', [`X-Pad: ${'p'.repeat(300 - get('/h', ['X-Pad: ']).length)}`]);
    expect(okHead.length).toBe(300);
    await expectServed(srv, okHead, '/h');
    await expectRefused(srv, get('/h', [`X-Pad: ${'p'.repeat(650)}`]), 431);
  });

  it('maxBodySize 1000: 1000 bytes (Content-Length or chunked) are served, 1001 get 413', async () => {
    const srv = startServer({
      listen: { maxBodySize: 1000, maxBodyInline: 512 },
      onRequest: (req) => ZeroResponse.ok().text(`${req.fullBody().length}`),
    });
    const b1000 = randomPayload(1000, 1);
    await expectServed(srv, post('/cl', b1000), '1000');
    await expectServed(srv, Buffer.concat([Buffer.from('POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'), chunked(b1000, [300])]), '1000');
    await expectRefused(srv, post('/cl', randomPayload(1001, 2)), 413);
    await expectRefused(srv, Buffer.concat([Buffer.from('POST /te HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'), chunked(randomPayload(1001, 3), [300])]), 413);
  });

  it('a declared body over maxBodySize with Expect: 100-continue gets 413 and no 100 Continue', async () => {
    const srv = startServer({ listen: { maxBodySize: 1000, maxBodyInline: 512 } });
    const c = await expectRefused(srv, 'POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n', 413);
    expect(c.interim).toHaveLength(0);
  });
});

describe('load', () => {
  it('1000 requests one after another on one connection', async () => {
    const srv = startServer();
    const c = await RawClient.connect(srv.port);
    for (let i = 0; i < 1000; i++) {
      const res = await c.request(get(`/n/${i}`), 20_000);
      if (res.status !== 200 || res.body.toString() !== `/n/${i}`) {
        throw new Error(`request ${i}: ${res.statusLine} ${JSON.stringify(res.body.toString())}`);
      }
    }
    expect(c.responses).toHaveLength(1000);
    const conn = await srv.connOf(c);
    expect(srv.requestsOn(conn)).toHaveLength(1000);
    expect(srv.connected).toHaveLength(1);
    expect(c.closed).toBe(false);
  }, 120_000);

  it('200 connections at once, 5 requests each', async () => {
    const srv = startServer();
    const clients = await Promise.all(Array.from({ length: 200 }, () => RawClient.connect(srv.port)));
    await Promise.all(clients.map(async (c, i) => {
      for (let k = 0; k < 5; k++) {
        const res = await c.request(get(`/c/${i}/${k}`), 30_000);
        expect(res.status).toBe(200);
        expect(res.body.toString()).toBe(`/c/${i}/${k}`);
      }
    }));
    expect(srv.requests).toHaveLength(1000);
    expect(srv.connected).toHaveLength(200);
    for (const c of clients) {
      const seen = srv.requestsOn(await srv.connOf(c)).map((r) => r.target);
      const i = clients.indexOf(c);
      expect(seen).toEqual([0, 1, 2, 3, 4].map((k) => `/c/${i}/${k}`));
    }
    for (const c of clients) c.destroy();
    await until(() => srv.disconnected.size === 200, 15_000, '200 Disconnected');
  }, 120_000);
});
