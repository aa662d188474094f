// Raw node:net clients against the zero-io HTTP/1.1 server: pipelining and response order,
// keep-alive, answers given out of order, stale request ids, 100-continue, inline and streamed
// request bodies (Content-Length and chunked), HEAD, HTTP/1.0, and what ZeroResponse writes.
import { describe, expect, it } from 'vitest';
import { type ConnId } from '@zero-io/core';
import { ZeroResponse } from '@zero-io/http';
import {
  RawClient, chunked, exchange, get, post, randomPayload, sha256, startServer, until,
  type HttpRequestEvent, type RequestCopy,
} from './helpers.js';

/** Lets the server's event loop turn: a complete request/response on another connection. */
async function roundTrip(port: number): Promise<void> {
  const other = await RawClient.connect(port);
  const res = await other.request(get('/barrier'));
  expect(res.status).toBe(200);
  other.destroy();
}

describe('pipelining', () => {
  it('16 GETs in one write get 16 responses, in request order', async () => {
    const srv = startServer();
    const targets = Array.from({ length: 16 }, (_, i) => `/p/${i}?n=${i * i}`);
    const c = await exchange(srv.port, targets.map((t) => get(t)).join(''), { until: 16 });
    expect(c.responses.map((r) => r.status)).toEqual(targets.map(() => 200));
    expect(c.responses.map((r) => r.body.toString())).toEqual(targets);
    expect(c.responses.every((r) => r.header('connection') === null)).toBe(true);
    expect(c.leftover.length).toBe(0);
    const conn = await srv.connOf(c);
    const seen = srv.requestsOn(conn);
    expect(seen.map((r) => r.target)).toEqual(targets);
    for (let i = 1; i < seen.length; i++) expect(seen[i].requestId).toBeGreaterThan(seen[i - 1].requestId);
    expect(c.closed).toBe(false);
  });

  for (const maxPipelined of [undefined, 2]) {
    it(`200 GETs in one write, each answered later (setImmediate), maxPipelined ${maxPipelined ?? 'default (16)'}: all answered in order, never more than maxPipelined parsed ahead`, async () => {
      let inFlight = 0;
      let maxInFlight = 0;
      const refused: number[] = [];
      const srv = startServer({
        listen: maxPipelined === undefined ? {} : { maxPipelined },
        onRequest: (req, io) => {
          inFlight++;
          maxInFlight = Math.max(maxInFlight, inFlight);
          setImmediate(() => {
            inFlight--;
            if (!io.httpRespond(req.conn, req.requestId, ZeroResponse.ok().text(req.target))) refused.push(req.requestId);
          });
          return null;
        },
      });
      const targets = Array.from({ length: 200 }, (_, i) => `/later/${i}`);
      const c = await exchange(srv.port, targets.map((t) => get(t)).join(''), { until: 200, timeoutMs: 30_000 });
      expect(c.responses.map((r) => r.body.toString())).toEqual(targets);
      expect(refused).toEqual([]);
      expect(maxInFlight).toBeGreaterThanOrEqual(1);
      expect(maxInFlight).toBeLessThanOrEqual(maxPipelined ?? 16);
    }, 60_000);
  }

  it('keep-alive: 10 requests one after another on one connection, which stays open', async () => {
    const srv = startServer();
    const c = await RawClient.connect(srv.port);
    for (let i = 0; i < 10; i++) {
      const res = await c.request(get(`/ka/${i}`));
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(`/ka/${i}`);
      expect(res.header('connection')).toBeNull();
    }
    const conn = await srv.connOf(c);
    expect(srv.requestsOn(conn)).toHaveLength(10);
    expect(srv.requestsOn(conn).every((r) => r.keepAlive)).toBe(true);
    expect(srv.connected).toHaveLength(1);
    expect(c.closed).toBe(false);
    expect(srv.disconnected.size).toBe(0);
  });

  it('answers given for later requests first wait for the earlier ones (held answers, then the first)', async () => {
    const held: RequestCopy[] = [];
    const srv = startServer({ onRequest: (req) => { if (req.path === '/barrier') return ZeroResponse.ok().text('b'); held.push(req); return null; } });
    const c = await RawClient.connect(srv.port);
    c.write([0, 1, 2, 3].map((i) => get(`/r/${i}`)).join(''));
    await until(() => held.length === 4, 10_000, 'four requests to reach the handler');
    // Later ones first: request n+3, n+2, n+1.
    for (const i of [3, 2, 1]) expect(srv.io.httpRespond(held[i].conn, held[i].requestId, ZeroResponse.ok().text(`answer ${i}`))).toBe(true);
    // The server had every chance to send them (a full exchange on another connection): nothing
    // may have left, since the first request is still unanswered.
    await roundTrip(srv.port);
    await roundTrip(srv.port);
    expect(c.bytesReceived).toBe(0);
    expect(srv.io.httpRespond(held[0].conn, held[0].requestId, ZeroResponse.ok().text('answer 0'))).toBe(true);
    await c.waitResponses(4);
    expect(c.responses.map((r) => r.body.toString())).toEqual(['answer 0', 'answer 1', 'answer 2', 'answer 3']);
  });

  it('answers given in reverse order from setImmediate go out in request order', async () => {
    const batch: RequestCopy[] = [];
    const accepted: boolean[] = [];
    const srv = startServer({
      onRequest: (req, io) => {
        batch.push(req);
        if (batch.length === 8) {
          const all = batch.splice(0);
          setImmediate(() => {
            for (const r of all.reverse()) accepted.push(io.httpRespond(r.conn, r.requestId, ZeroResponse.ok().text(`answer ${r.path}`)));
          });
        }
        return null;
      },
    });
    const paths = Array.from({ length: 8 }, (_, i) => `/rev/${i}`);
    const c = await exchange(srv.port, paths.map((p) => get(p)).join(''), { until: 8 });
    expect(accepted).toEqual(paths.map(() => true));
    expect(c.responses.map((r) => r.body.toString())).toEqual(paths.map((p) => `answer ${p}`));
  });

  it("Connection: close: that request's answer says so, the connection closes, a request pipelined behind it is never handled", async () => {
    const srv = startServer();
    const c = await exchange(srv.port, get('/last', ['Connection: close']) + get('/never'));
    expect(c.responses).toHaveLength(1);
    expect(c.responses[0].body.toString()).toBe('/last');
    expect(c.responses[0].header('connection')?.toLowerCase()).toBe('close');
    expect(c.leftover.length).toBe(0);
    const conn = await srv.connOf(c);
    expect(srv.requestsOn(conn).map((r) => r.target)).toEqual(['/last']);
    expect(srv.requestsOn(conn)[0].keepAlive).toBe(false);
    await until(() => srv.disconnected.has(conn), 10_000, 'Disconnected');
  });

  it('HTTP/1.0 without keep-alive: answered with Connection: close, then closed', async () => {
    const srv = startServer();
    const c = await exchange(srv.port, 'GET /old HTTP/1.0\r\n\r\n');
    expect(c.responses).toHaveLength(1);
    expect(c.responses[0].status).toBe(200);
    expect(c.responses[0].body.toString()).toBe('/old');
    expect(c.responses[0].header('connection')?.toLowerCase()).toBe('close');
    expect(srv.requests[0]).toMatchObject({ version: '1.0', keepAlive: false, host: null });
  });

  it('HTTP/1.0 with Connection: keep-alive: answered with Connection: keep-alive, the connection is reused', async () => {
    const srv = startServer();
    const c = await RawClient.connect(srv.port);
    for (const p of ['/a', '/b', '/c']) {
      const res = await c.request(`GET ${p} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`);
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe(p);
      expect(res.header('connection')?.toLowerCase()).toBe('keep-alive');
      expect(res.header('content-length')).toBe('2');
    }
    expect(srv.requests.every((r) => r.version === '1.0' && r.keepAlive)).toBe(true);
    expect(srv.connected).toHaveLength(1);
    expect(c.closed).toBe(false);
  });
});

describe('httpRespond with stale or wrong arguments', () => {
  it('a second answer to the same request returns false and writes nothing', async () => {
    const held: RequestCopy[] = [];
    const srv = startServer({ onRequest: (req) => { held.push(req); return null; } });
    const c = await RawClient.connect(srv.port);
    c.write(get('/once'));
    await until(() => held.length === 1, 10_000, 'the request');
    const r = held[0];
    expect(srv.io.httpRespond(r.conn, r.requestId, ZeroResponse.ok().text('first'))).toBe(true);
    expect(srv.io.httpRespond(r.conn, r.requestId, ZeroResponse.ok().text('second'))).toBe(false);
    expect(srv.io.httpRespond(r.conn, r.requestId + 100, ZeroResponse.ok().text('never parsed'))).toBe(false);
    await c.waitResponses(1);
    c.write(get('/next'));
    await until(() => held.length === 2, 10_000, 'the second request');
    expect(srv.io.httpRespond(held[1].conn, held[1].requestId, ZeroResponse.ok().text('next'))).toBe(true);
    await c.waitResponses(2);
    expect(c.responses.map((x) => x.body.toString())).toEqual(['first', 'next']);
    expect(c.leftover.length).toBe(0);
  });

  it('an answer for a closed connection returns false, and never reaches a newer connection', async () => {
    const held: RequestCopy[] = [];
    const srv = startServer({ onRequest: (req) => { held.push(req); return null; } });
    const a = await RawClient.connect(srv.port);
    a.write(get('/gone'));
    await until(() => held.length === 1, 10_000, 'the request');
    const stale = held[0];
    // A reset, so the server learns at once that the connection is gone (after a plain FIN it
    // would rightly keep the connection to deliver the answer it still owes).
    a.socket.resetAndDestroy();
    await until(() => srv.disconnected.has(stale.conn), 10_000, 'Disconnected');
    // New connections (a recycled connection slot gets a new generation, not the old id).
    const clients = await Promise.all(Array.from({ length: 4 }, () => RawClient.connect(srv.port)));
    for (const c of clients) await srv.connOf(c);
    expect(() => srv.io.httpRespond(stale.conn, stale.requestId, ZeroResponse.ok().text('stale'))).not.toThrow();
    expect(srv.io.httpRespond(stale.conn, stale.requestId, ZeroResponse.ok().text('stale'))).toBe(false);
    for (const [i, c] of clients.entries()) c.write(get(`/fresh/${i}`));
    await until(() => held.length === 5, 10_000, 'four fresh requests');
    for (const r of held.slice(1)) expect(srv.io.httpRespond(r.conn, r.requestId, ZeroResponse.ok().text(r.target))).toBe(true);
    for (const [i, c] of clients.entries()) {
      await c.waitResponses(1);
      expect(c.responses.map((x) => x.body.toString())).toEqual([`/fresh/${i}`]);
      expect(c.leftover.length).toBe(0);
    }
  });

  it('something other than a ZeroResponse throws InvalidArgument', async () => {
    const held: RequestCopy[] = [];
    const srv = startServer({ onRequest: (req) => { held.push(req); return null; } });
    const c = await RawClient.connect(srv.port);
    c.write(get('/x'));
    await until(() => held.length === 1, 10_000, 'the request');
    const { conn, requestId } = held[0];
    for (const bad of [{}, 'hello', null, new Uint8Array(3), { status: 200, body: 'x' }]) {
      expect(() => srv.io.httpRespond(conn, requestId, bad as unknown as ZeroResponse)).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    }
    // The request is still answerable after the refusals.
    expect(srv.io.httpRespond(conn, requestId, ZeroResponse.ok().text('fine'))).toBe(true);
    expect((await c.waitResponses(1))[0].body.toString()).toBe('fine');
  });
});

describe('responses', () => {
  it('HEAD gets the GET head (Content-Length included) and no body: a GET pipelined behind it parses', async () => {
    const body = 'x'.repeat(1234);
    const srv = startServer({ onRequest: () => ZeroResponse.ok().text(body) });
    const c = await exchange(srv.port, get('/h', [], 'HEAD') + get('/g'), { until: 2, head: [0] });
    expect(c.responses[0].status).toBe(200);
    expect(c.responses[0].header('content-length')).toBe('1234');
    expect(c.responses[0].body.length).toBe(0);
    expect(c.responses[1].header('content-length')).toBe('1234');
    expect(c.responses[1].body.toString()).toBe(body);
    expect(c.leftover.length).toBe(0);
  });

  it('every answer carries one Date and one Content-Length and no Server; builders set status, reason and type', async () => {
    const routes: Record<string, () => ZeroResponse> = {
      '/text': () => ZeroResponse.ok().text('héllo'),
      '/json': () => ZeroResponse.ok().json({ a: [1, 2], b: 'c' }),
      '/bytes': () => ZeroResponse.ok().bytes(new Uint8Array([0, 1, 2, 255])),
      '/typed': () => ZeroResponse.ok().header('Content-Type', 'text/html; charset=utf-8').text('<b>x</b>'),
      '/created': () => ZeroResponse.created().json({ id: 1 }),
      '/bad': () => ZeroResponse.badRequest().text('nope'),
      '/nf': () => ZeroResponse.notFound(),
      '/err': () => ZeroResponse.serverError().text('oops'),
      '/teapot': () => ZeroResponse.status(418).header('X-Extra', 'a b  c').text('short and stout'),
      '/redir': () => ZeroResponse.redirect('/elsewhere?x=1'),
      '/redir307': () => ZeroResponse.redirect('https://example.com/', 307),
    };
    const srv = startServer({ onRequest: (req) => routes[req.path]() });
    const paths = Object.keys(routes);
    const c = await exchange(srv.port, paths.map((p) => get(p)).join(''), { until: paths.length });
    const by = Object.fromEntries(paths.map((p, i) => [p, c.responses[i]]));
    for (const res of c.responses) {
      expect(res.headerAll('date')).toHaveLength(1);
      expect(res.header('date')).toMatch(/^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT$/);
      expect(res.headerAll('content-length')).toHaveLength(1);
      expect(Number(res.header('content-length'))).toBe(res.body.length);
      expect(res.header('server')).toBeNull();
      expect(res.header('transfer-encoding')).toBeNull();
      expect(res.version).toBe('HTTP/1.1');
    }
    expect(by['/text'].status).toBe(200);
    expect(by['/text'].reason).toBe('OK');
    expect(by['/text'].body.toString('utf8')).toBe('héllo');
    expect(by['/text'].header('content-length')).toBe('6');  // UTF-8 bytes, not characters
    expect(by['/text'].header('content-type')).toBe('text/plain; charset=utf-8');
    expect(by['/json'].header('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(by['/json'].body.toString())).toEqual({ a: [1, 2], b: 'c' });
    expect(by['/bytes'].header('content-type')).toBe('application/octet-stream');
    expect([...by['/bytes'].body]).toEqual([0, 1, 2, 255]);
    expect(by['/typed'].headerAll('content-type')).toEqual(['text/html; charset=utf-8']);
    expect(by['/created'].status).toBe(201);
    expect(by['/bad'].status).toBe(400);
    expect(by['/nf'].status).toBe(404);
    expect(by['/err'].status).toBe(500);
    expect(by['/teapot'].status).toBe(418);
    expect(by['/teapot'].header('x-extra')).toBe('a b  c');
    expect(by['/teapot'].body.toString()).toBe('short and stout');
    expect(by['/redir'].status).toBe(302);
    expect(by['/redir'].header('location')).toBe('/elsewhere?x=1');
    expect(by['/redir307'].status).toBe(307);
    expect(by['/redir307'].header('location')).toBe('https://example.com/');
  });

  it('204 No Content: no Content-Length and no body (RFC 9110 section 8.6), the next answer parses', async () => {
    const srv = startServer({ onRequest: (req) => (req.path === '/none' ? ZeroResponse.noContent() : ZeroResponse.ok().text('after')) });
    const c = await exchange(srv.port, get('/none') + get('/after'), { until: 2 });
    expect(c.responses[0].status).toBe(204);
    expect(c.responses[0].header('content-length')).toBeNull();
    expect(c.responses[1].body.toString()).toBe('after');
    expect(c.leftover.length).toBe(0);
  });

  it('one ZeroResponse sent 100 times (pipelined) gives 100 identical answers', async () => {
    const shared = ZeroResponse.ok().header('X-Shared', 'yes').json({ shared: true });
    const srv = startServer({ onRequest: () => shared });
    const c = await exchange(srv.port, Array.from({ length: 100 }, (_, i) => get(`/s/${i}`)).join(''), { until: 100 });
    expect(new Set(c.responses.map((r) => r.body.toString()))).toEqual(new Set(['{"shared":true}']));
    expect(c.responses.every((r) => r.header('x-shared') === 'yes')).toBe(true);
  });

  it('response splitting is refused: CR, LF or NUL in a field, or a non-token name, throws InvalidArgument', () => {
    const bad: [string, string][] = [
      ['X-A', 'a\r\nSet-Cookie: evil=1'],
      ['X-A', 'a\nb'],
      ['X-A', 'a\rb'],
      ['X-A', 'a\0b'],
      ['X-A\r\nSet-Cookie', 'evil=1'],
      ['Bad Name', 'v'],
      ['X:Y', 'v'],
      ['', 'v'],
      ['X(A)', 'v'],
    ];
    for (const [name, value] of bad) {
      expect(() => ZeroResponse.ok().header(name, value), JSON.stringify([name, value])).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    }
    expect(() => ZeroResponse.redirect('/a\r\nSet-Cookie: evil=1')).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    // Legal values pass: visible ASCII, spaces, tabs inside, obs-text.
    expect(() => ZeroResponse.ok().header('X-Fine', 'a b\tc ~!#$%&\'*+-.^_`|')).not.toThrow();
  });
});

describe('request fields', () => {
  it('method, path, query, target, version and fields as the handler reads them', async () => {
    const seen: Record<string, unknown>[] = [];
    const srv = startServer({
      onEvent: (ev) => {
        if (ev.type !== 'HttpRequest') return;
        const e = ev as HttpRequestEvent;
        seen.push({
          endpoint: e.endpoint, method: e.method, path: e.path, query: e.query, target: e.target,
          mixed: e.header('X-MiXeD'), lower: e.header('x-mixed'), dup: e.header('x-dup'),
          absent: e.header('x-absent'), names: e.headers().map(([n]) => n),
        });
      },
    });
    const c = await exchange(srv.port, [
      'PURGE /cache/item?key=a%20b&x= HTTP/1.1\r\nHost: h\r\nX-MiXeD:  v1 \r\nX-Dup: first\r\nx-dup: second\r\n\r\n',
      'GET http://example.com:8080/abs/path?q=1 HTTP/1.1\r\nHost: example.com:8080\r\n\r\n',
      'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n',
      'GET /no-query HTTP/1.1\r\nHost: h\r\n\r\n',
      'GET /empty-query? HTTP/1.1\r\nHost: h\r\n\r\n',
    ].join(''), { until: 5 });
    expect(c.responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(seen[0]).toEqual({
      endpoint: srv.ep, method: 'PURGE', path: '/cache/item', query: 'key=a%20b&x=', target: '/cache/item?key=a%20b&x=',
      mixed: 'v1', lower: 'v1', dup: 'first', absent: null, names: ['Host', 'X-MiXeD', 'X-Dup', 'x-dup'],
    });
    expect(seen[1]).toMatchObject({ method: 'GET', path: '/abs/path', query: 'q=1', target: 'http://example.com:8080/abs/path?q=1' });
    expect(seen[2]).toMatchObject({ method: 'OPTIONS', target: '*', query: '' });
    expect(seen[3]).toMatchObject({ path: '/no-query', query: '' });
    expect(seen[4]).toMatchObject({ path: '/empty-query', query: '', target: '/empty-query?' });
  });
});

describe('request bodies', () => {
  it('Expect: 100-continue (small body): "HTTP/1.1 100 Continue" comes before the body is sent', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(`got ${req.fullBody().toString()}`) });
    const c = await RawClient.connect(srv.port);
    c.write('POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\nExpect: 100-continue\r\n\r\n');
    await c.waitFor(() => c.interim.length === 1, 10_000, '100 Continue');
    expect(c.raw.toString('latin1')).toMatch(/^HTTP\/1\.1 100 Continue\r\n/);
    expect(c.interim[0].status).toBe(100);
    expect(c.responses).toHaveLength(0);
    c.write('hello world');
    const [res] = await c.waitResponses(1);
    expect(res.body.toString()).toBe('got hello world');
    expect(c.interim).toHaveLength(1);
  });

  it('Expect: 100-continue (streamed body): 100 Continue first, then the whole body reaches the handler', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(sha256(req.fullBody())) });
    const payload = randomPayload(100_000, 5);
    const c = await RawClient.connect(srv.port);
    c.write(`POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: ${payload.length}\r\nExpect: 100-continue\r\n\r\n`);
    await c.waitFor(() => c.interim.length === 1, 10_000, '100 Continue');
    expect(c.interim[0].statusLine).toBe('HTTP/1.1 100 Continue');
    c.write(payload);
    const [res] = await c.waitResponses(1);
    expect(res.body.toString()).toBe(sha256(payload));
    expect(srv.requests[0].streamed).toBe(true);
  });

  it('Expect: 100-continue in an HTTP/1.0 request is ignored: no 1xx to a 1.0 client (RFC 9110 sections 10.1.1, 15.2)', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(`got ${req.fullBody().toString()}`) });
    const c = await exchange(srv.port, 'POST /old HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello');
    expect(c.interim).toHaveLength(0);
    expect(c.responses).toHaveLength(1);
    expect(c.responses[0].body.toString()).toBe('got hello');
  });

  it('a chunked upload written in many pieces arrives as HttpBodyChunk events whose concatenation is the body; only the last has end', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(sha256(req.fullBody())) });
    const payload = randomPayload(60_000, 77);
    const wire = Buffer.concat([
      Buffer.from('POST /chunked HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'),
      chunked(payload, [1, 2, 3, 1000, 4096, 17, 9000], { ext: 'name=value', trailers: ['X-Checksum: abc', 'X-Other: 1'] }),
    ]);
    const c = await RawClient.connect(srv.port);
    // Cut at uneven places (inside size lines, inside CRLFs, inside data), each piece its own write.
    let at = 0;
    let k = 0;
    while (at < wire.length) {
      const n = Math.min([1, 3, 7, 50, 333, 2048, 5][k++ % 7], wire.length - at);
      c.write(wire.subarray(at, at + n));
      at += n;
      if (k % 5 === 0) await new Promise((r) => setImmediate(r));
    }
    const [res] = await c.waitResponses(1, 20_000);
    expect(res.body.toString()).toBe(sha256(payload));
    const req = srv.requests[0];
    expect(req.streamed).toBe(true);
    expect(req.body.length).toBe(0);
    expect(req.bodyLength).toBe(0);
    expect(req.chunks.length).toBeGreaterThan(0);
    expect(Buffer.concat(req.chunks).equals(payload)).toBe(true);
    expect(req.chunkEnds.at(-1)).toBe(true);
    expect(req.chunkEnds.filter((e) => e)).toHaveLength(1);
  });

  it('an empty chunked body: one end, nothing in it', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(`len ${req.fullBody().length}`) });
    const c = await exchange(srv.port, 'POST /e HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', { until: 1 });
    expect(c.responses[0].body.toString()).toBe('len 0');
    expect(srv.requests[0].streamed).toBe(true);
    expect(srv.requests[0].ended).toBe(true);
    expect(srv.requests[0].chunkEnds.filter((e) => e)).toHaveLength(1);
  });

  it('a Content-Length body over maxBodyInline (default 1024) is streamed; a small one is inline', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(sha256(req.fullBody())) });
    const big = randomPayload(5000, 1);
    const small = randomPayload(100, 2);
    const c = await exchange(srv.port, Buffer.concat([post('/big', big), post('/small', small)]), { until: 2 });
    expect(c.responses.map((r) => r.body.toString())).toEqual([sha256(big), sha256(small)]);
    const [b, s] = srv.requests;
    expect(b).toMatchObject({ path: '/big', streamed: true, bodyLength: 0, ended: true });
    expect(b.body.length).toBe(0);
    expect(Buffer.concat(b.chunks).equals(big)).toBe(true);
    expect(b.chunkEnds.at(-1)).toBe(true);
    expect(s).toMatchObject({ path: '/small', streamed: false, bodyLength: 100 });
    expect(s.body.equals(small)).toBe(true);
    expect(s.chunks).toHaveLength(0);
  });

  it('maxBodyInline: 0 streams even a 10-byte body; Content-Length: 0 is an inline empty body', async () => {
    const srv = startServer({ listen: { maxBodyInline: 0 }, onRequest: (req) => ZeroResponse.ok().text(req.fullBody().toString() || '(empty)') });
    const c = await exchange(srv.port, Buffer.concat([post('/ten', '0123456789'), post('/zero', '')]), { until: 2 });
    expect(c.responses.map((r) => r.body.toString())).toEqual(['0123456789', '(empty)']);
    expect(srv.requests[0]).toMatchObject({ streamed: true, bodyLength: 0 });
    expect(srv.requests[1]).toMatchObject({ streamed: false, bodyLength: 0 });
    expect(srv.requests[1].chunks).toHaveLength(0);
  });

  it('bodies end exactly where the next pipelined request starts (CL streamed, CL inline, chunked, GETs between)', async () => {
    const srv = startServer({ onRequest: (req) => ZeroResponse.ok().text(`${req.method} ${req.path} ${sha256(req.fullBody()).slice(0, 16)}`) });
    const b1 = randomPayload(3000, 3);
    const b2 = Buffer.from('GET /not-a-request HTTP/1.1\r\nHost: h\r\n\r\n');  // a body that looks like a request
    const b3 = randomPayload(2500, 4);
    const wire = Buffer.concat([
      post('/one', b1),
      Buffer.from(get('/two')),
      post('/three', b2),
      Buffer.from('POST /four HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n'),
      chunked(b3, [700]),
      Buffer.from(get('/five')),
    ]);
    const c = await exchange(srv.port, wire, { until: 5 });
    const short = (b: Buffer) => sha256(b).slice(0, 16);
    expect(c.responses.map((r) => r.body.toString())).toEqual([
      `POST /one ${short(b1)}`, `GET /two ${short(Buffer.alloc(0))}`, `POST /three ${short(b2)}`,
      `POST /four ${short(b3)}`, `GET /five ${short(Buffer.alloc(0))}`,
    ]);
    const conn: ConnId = await srv.connOf(c);
    expect(srv.requestsOn(conn).map((r) => r.path)).toEqual(['/one', '/two', '/three', '/four', '/five']);
  });
});
