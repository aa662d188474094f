// Independent HTTP/1.1 clients against a zero-io server (INTEROP.md): curl, undici (Node's global
// fetch), the node:http client and Python's stdlib http.client. A client that is not installed
// fails its test with a message naming it, never a skip.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ZeroResponse } from '@zero-io/http';
import {
  parseResponse, randomPayload, run, sha256, startServer, until,
  type HttpServer, type ParsedResponse, type RequestCopy,
} from './helpers.js';

const CURL = 'Debian package curl';
const PYTHON = 'Debian package python3 (only the standard library is used)';

const tmp = mkdtempSync(join(tmpdir(), 'zio-http-interop-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// One response object built once and sent many times (the API's intended use).
const hello = ZeroResponse.ok().text('hello world');

/** The routes every interop test uses. */
function route(req: RequestCopy): ZeroResponse | null {
  const body = req.fullBody();
  switch (req.path) {
    case '/hello': return hello;
    case '/echo': return ZeroResponse.ok().header('X-Body-Sha256', sha256(body)).bytes(body);
    case '/info': return ZeroResponse.ok().json({
      method: req.method, path: req.path, query: req.query, version: req.version,
      bodyLength: body.length, streamed: req.streamed,
    });
    case '/missing': return ZeroResponse.notFound().text('no such thing');
    case '/redirect': return ZeroResponse.redirect('/hello');
    case '/moved': return ZeroResponse.redirect('/hello', 301);
    case '/empty': return ZeroResponse.noContent();
    case '/created': return ZeroResponse.created().json({ id: 7, name: 'seven' });
    default: return ZeroResponse.ok().text(req.target);
  }
}

function serve(): { srv: HttpServer; base: string } {
  const srv = startServer({ onRequest: route });
  return { srv, base: `http://127.0.0.1:${srv.port}` };
}

const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$/;

/** Date is an IMF-fixdate (RFC 9110 section 5.6.7) of today (a sanity check, not a timing). */
function expectDate(value: string | null): void {
  expect(value).toMatch(IMF_FIXDATE);
  expect(Math.abs(Date.parse(value!) - Date.now())).toBeLessThan(24 * 3600 * 1000);
}

async function curl(args: string[]): Promise<Buffer> {
  const r = await run('curl', ['-sS', '--max-time', '30', ...args], { installHint: CURL, timeoutMs: 45_000 });
  if (r.code !== 0) throw new Error(`curl ${args.join(' ')} exited ${r.code ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

/** The final responses in curl -i / -I output (interim 100 Continue blocks skipped). */
function curlResponses(out: Buffer, head = false): ParsedResponse[] {
  const list: ParsedResponse[] = [];
  let rest = out;
  while (rest.length > 0) {
    const r = parseResponse(rest, { head, eof: true });
    if (!r) throw new Error(`incomplete response in curl output: ${rest.toString('latin1').slice(0, 300)}`);
    if (r.res.status >= 200) list.push(r.res);
    rest = rest.subarray(r.used);
  }
  return list;
}

describe('curl', () => {
  it('GET: status, body, Content-Length, Content-Type, one Date, no Server', async () => {
    const { srv, base } = serve();
    const [res, ...more] = curlResponses(await curl(['-i', `${base}/hello`]));
    expect(more).toHaveLength(0);
    expect(res.version).toBe('HTTP/1.1');
    expect(res.status).toBe(200);
    expect(res.reason).toBe('OK');
    expect(res.body.toString()).toBe('hello world');
    expect(res.headerAll('content-length')).toEqual(['11']);
    expect(res.header('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headerAll('date')).toHaveLength(1);
    expectDate(res.header('date'));
    expect(res.header('server')).toBeNull();
    expect(res.header('transfer-encoding')).toBeNull();
    expect(res.header('connection')).toBeNull();  // HTTP/1.1 keep-alive is the default: nothing to say
    expect(srv.requests).toHaveLength(1);
    expect(srv.requests[0]).toMatchObject({ method: 'GET', path: '/hello', query: '', target: '/hello', version: '1.1', keepAlive: true, streamed: false, bodyLength: 0 });
    expect(srv.requests[0].headers.find(([n]) => n.toLowerCase() === 'user-agent')?.[1]).toMatch(/^curl\//);
    expect(srv.requests[0].host).toBe(`127.0.0.1:${srv.port}`);
  });

  it('HEAD (-I): the GET head with its Content-Length, no body', async () => {
    const { srv, base } = serve();
    const out = await curl(['-I', `${base}/hello`]);
    const [res] = curlResponses(out, true);
    expect(res.status).toBe(200);
    expect(res.header('content-length')).toBe('11');
    expect(res.header('content-type')).toBe('text/plain; charset=utf-8');
    expectDate(res.header('date'));
    expect(res.header('server')).toBeNull();
    // Nothing after the head: curl -I prints exactly what came.
    expect(out.subarray(out.indexOf('\r\n\r\n') + 4).length).toBe(0);
    expect(srv.requests[0]).toMatchObject({ method: 'HEAD', path: '/hello' });
  });

  it('POST --data-binary 2 MiB: streamed to the handler whole and echoed byte-exact (through Expect: 100-continue when curl uses it)', async () => {
    const { srv, base } = serve();
    const payload = randomPayload(2 << 20, 11);
    const file = join(tmp, 'post-2m.bin');
    writeFileSync(file, payload);
    const [res] = curlResponses(await curl(['-i', '--data-binary', `@${file}`, '-H', 'Content-Type: application/octet-stream', `${base}/echo`]));
    expect(res.status).toBe(200);
    expect(res.header('content-length')).toBe(String(payload.length));
    expect(res.header('x-body-sha256')).toBe(sha256(payload));
    expect(res.body.length).toBe(payload.length);
    expect(sha256(res.body)).toBe(sha256(payload));
    const req = srv.requests[0];
    expect(req).toMatchObject({ method: 'POST', path: '/echo', streamed: true, ended: true });
    expect(req.headers.find(([n]) => n.toLowerCase() === 'content-length')?.[1]).toBe(String(payload.length));
    expect(req.chunkEnds.at(-1)).toBe(true);
    expect(req.chunkEnds.slice(0, -1).every((e) => !e)).toBe(true);
  });

  it('POST -d (a small form): the body arrives inline in the HttpRequest event', async () => {
    const { srv, base } = serve();
    const [res] = curlResponses(await curl(['-i', '-d', 'a=1&b=2', `${base}/info`]));
    expect(res.status).toBe(200);
    expect(res.header('content-type')).toMatch(/^application\/json/);
    expect(JSON.parse(res.body.toString())).toEqual({ method: 'POST', path: '/info', query: '', version: '1.1', bodyLength: 7, streamed: false });
    expect(srv.requests[0]).toMatchObject({ streamed: false, bodyLength: 7 });
    expect(srv.requests[0].body.toString()).toBe('a=1&b=2');
    expect(srv.requests[0].chunks).toHaveLength(0);
  });

  it('POST with Transfer-Encoding: chunked: HttpBodyChunk events whose concatenation is the upload', async () => {
    const { srv, base } = serve();
    const payload = randomPayload(300_000, 12);
    const file = join(tmp, 'post-chunked.bin');
    writeFileSync(file, payload);
    const [res] = curlResponses(await curl(['-i', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${file}`, `${base}/echo`]));
    expect(res.status).toBe(200);
    expect(sha256(res.body)).toBe(sha256(payload));
    const req = srv.requests[0];
    expect(req.streamed).toBe(true);
    expect(req.body.length).toBe(0);
    expect(req.headers.find(([n]) => n.toLowerCase() === 'transfer-encoding')?.[1].toLowerCase()).toBe('chunked');
    expect(sha256(req.fullBody())).toBe(sha256(payload));
    expect(req.chunkEnds.at(-1)).toBe(true);
  });

  it("-H 'Connection: close': the answer says Connection: close and the server closes", async () => {
    const { srv, base } = serve();
    const [res] = curlResponses(await curl(['-i', '-H', 'Connection: close', `${base}/hello`]));
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello world');
    expect(res.header('connection')?.toLowerCase()).toBe('close');
    expect(srv.requests[0].keepAlive).toBe(false);
    await until(() => srv.disconnected.size === 1, 10_000, 'the server to close the connection');
  });

  it('--http1.0: answered, with Connection: close, and the connection closes', async () => {
    const { srv, base } = serve();
    const [res] = curlResponses(await curl(['-i', '--http1.0', `${base}/hello`]));
    expect(res.version).toMatch(/^HTTP\/1\.[01]$/);
    expect(res.status).toBe(200);
    expect(res.body.toString()).toBe('hello world');
    expect(res.header('content-length')).toBe('11');
    expect(res.header('connection')?.toLowerCase()).toBe('close');
    expect(srv.requests[0]).toMatchObject({ version: '1.0', keepAlive: false });
    await until(() => srv.disconnected.size === 1, 10_000, 'the server to close the connection');
  });

  it("--http1.0 -H 'Connection: keep-alive': the answer says Connection: keep-alive", async () => {
    const { srv, base } = serve();
    const list = curlResponses(await curl(['-i', '--http1.0', '-H', 'Connection: keep-alive', `${base}/hello`, `${base}/hello`]));
    expect(list).toHaveLength(2);
    for (const res of list) {
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('hello world');
      expect(res.header('connection')?.toLowerCase()).toBe('keep-alive');
    }
    expect(srv.requests.every((r) => r.version === '1.0' && r.keepAlive)).toBe(true);
  });

  it('two URLs in one invocation reuse one connection', async () => {
    const { srv, base } = serve();
    const out = await curl(['-o', '/dev/null', '-o', '/dev/null', '-w', '%{http_code}:%{num_connects} ', `${base}/a`, `${base}/b?x=1`]);
    expect(out.toString().trim()).toBe('200:1 200:0');
    expect(srv.requests.map((r) => r.target)).toEqual(['/a', '/b?x=1']);
    expect(srv.requests[0].conn).toBe(srv.requests[1].conn);
    expect(srv.connected).toHaveLength(1);
  });

  it('query, target and fields reach the handler as sent', async () => {
    const { srv, base } = serve();
    const [res] = curlResponses(await curl(['-i', '-H', 'X-Custom: v1', '-H', 'x-lower:  padded value  ', `${base}/info?a=1&b=two%20words`]));
    expect(JSON.parse(res.body.toString())).toMatchObject({ method: 'GET', path: '/info', query: 'a=1&b=two%20words' });
    const req = srv.requests[0];
    expect(req.target).toBe('/info?a=1&b=two%20words');
    expect(req.headers).toContainEqual(['X-Custom', 'v1']);
    expect(req.headers).toContainEqual(['x-lower', 'padded value']);
  });

  it('status codes: 404 with its body, 302 and 301 with Location (followed with -L), 204 without a body, 201 JSON', async () => {
    const { base } = serve();
    const [nf] = curlResponses(await curl(['-i', `${base}/missing`]));
    expect(nf.status).toBe(404);
    expect(nf.reason).toBe('Not Found');
    expect(nf.body.toString()).toBe('no such thing');
    const [found] = curlResponses(await curl(['-i', `${base}/redirect`]));
    expect(found.status).toBe(302);
    expect(found.header('location')).toBe('/hello');
    const [moved] = curlResponses(await curl(['-i', `${base}/moved`]));
    expect(moved.status).toBe(301);
    expect(moved.header('location')).toBe('/hello');
    expect((await curl(['-L', '-o', '-', '-w', '\n%{http_code} %{num_redirects}', `${base}/redirect`])).toString()).toBe('hello world\n200 1');
    const [empty] = curlResponses(await curl(['-i', `${base}/empty`]));
    expect(empty.status).toBe(204);
    expect(empty.body.length).toBe(0);
    expect(empty.header('content-length')).toBeNull();  // RFC 9110 section 8.6: none on a 204
    const [created] = curlResponses(await curl(['-i', `${base}/created`]));
    expect(created.status).toBe(201);
    expect(JSON.parse(created.body.toString())).toEqual({ id: 7, name: 'seven' });
  });
});

describe('undici (Node global fetch)', () => {
  it('GET: status, body and headers', async () => {
    const { base } = serve();
    const res = await fetch(`${base}/hello`);
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('hello world');
    expect(res.headers.get('content-length')).toBe('11');
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expectDate(res.headers.get('date'));
    expect(res.headers.get('server')).toBeNull();
  });

  it('HEAD: Content-Length of the GET, empty body', async () => {
    const { srv, base } = serve();
    const res = await fetch(`${base}/hello`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-length')).toBe('11');
    expect(await res.text()).toBe('');
    expect(srv.requests[0].method).toBe('HEAD');
    // The connection is still usable for the next request (no stray body bytes on it).
    expect(await (await fetch(`${base}/hello`)).text()).toBe('hello world');
  });

  it('POST a 200 KB Uint8Array: echoed byte-exact', async () => {
    const { base } = serve();
    const payload = randomPayload(200_000, 21);
    const res = await fetch(`${base}/echo`, { method: 'POST', body: payload, headers: { 'content-type': 'application/octet-stream' } });
    expect(res.status).toBe(200);
    const got = Buffer.from(await res.arrayBuffer());
    expect(got.length).toBe(payload.length);
    expect(sha256(got)).toBe(sha256(payload));
  });

  it('POST a ReadableStream (chunked upload): streamed to the handler, echoed byte-exact', async () => {
    const { srv, base } = serve();
    const payload = randomPayload(150_000, 22);
    let at = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(ctrl) {
        if (at >= payload.length) { ctrl.close(); return; }
        const n = Math.min(7_000 + (at % 5_000), payload.length - at);
        ctrl.enqueue(new Uint8Array(payload.subarray(at, at + n)));
        at += n;
      },
    });
    const res = await fetch(`${base}/echo`, { method: 'POST', body: stream, duplex: 'half' } as RequestInit);
    expect(res.status).toBe(200);
    expect(sha256(Buffer.from(await res.arrayBuffer()))).toBe(sha256(payload));
    expect(srv.requests[0].streamed).toBe(true);
    expect(srv.requests[0].headers.find(([n]) => n.toLowerCase() === 'transfer-encoding')?.[1]).toBe('chunked');
  });

  it('50 concurrent requests: every answer matches its request', async () => {
    const { srv, base } = serve();
    const bodies = await Promise.all(Array.from({ length: 50 }, (_, i) => fetch(`${base}/c/${i}?q=${i * 7}`).then((r) => r.text())));
    bodies.forEach((b, i) => expect(b).toBe(`/c/${i}?q=${i * 7}`));
    expect(srv.requests).toHaveLength(50);
  });

  it('JSON, 404, 204 and a followed redirect', async () => {
    const { base } = serve();
    const created = await fetch(`${base}/created`);
    expect(created.status).toBe(201);
    expect(created.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await created.json()).toEqual({ id: 7, name: 'seven' });
    const nf = await fetch(`${base}/missing`);
    expect(nf.status).toBe(404);
    expect(await nf.text()).toBe('no such thing');
    const empty = await fetch(`${base}/empty`);
    expect(empty.status).toBe(204);
    expect(await empty.text()).toBe('');
    const redirected = await fetch(`${base}/redirect`);
    expect(redirected.redirected).toBe(true);
    expect(new URL(redirected.url).pathname).toBe('/hello');
    expect(await redirected.text()).toBe('hello world');
  });
});

/** One node:http request; resolves with status, headers, body and whether the socket was reused. */
function nodeRequest(base: string, path: string, opts: { agent?: http.Agent; method?: string; body?: Buffer[] } = {}) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer; reused: boolean }>((resolve, reject) => {
    const req = http.request(`${base}${path}`, { agent: opts.agent, method: opts.method ?? 'GET' }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(parts), reused: req.reusedSocket }));
      res.on('error', reject);
    });
    req.setTimeout(20_000, () => req.destroy(new Error(`node:http ${path} timed out`)));
    req.on('error', reject);
    for (const b of opts.body ?? []) req.write(b);
    req.end();
  });
}

describe('node:http client', () => {
  it('a keepAlive agent: 100 sequential requests on one socket', async () => {
    const { srv, base } = serve();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      let reused = 0;
      for (let i = 0; i < 100; i++) {
        const r = await nodeRequest(base, `/seq/${i}`, { agent });
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe(`/seq/${i}`);
        expect(r.headers['content-length']).toBe(String(`/seq/${i}`.length));
        if (r.reused) reused++;
      }
      expect(reused).toBe(99);
      expect(srv.requests).toHaveLength(100);
      expect(new Set(srv.requests.map((r) => r.conn)).size).toBe(1);
      expect(srv.connected).toHaveLength(1);
    } finally {
      agent.destroy();
    }
  });

  it('50 concurrent requests (50 sockets): every answer matches its request', async () => {
    const { srv, base } = serve();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 50 });
    try {
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => nodeRequest(base, `/par/${i}`, { agent })));
      results.forEach((r, i) => {
        expect(r.status).toBe(200);
        expect(r.body.toString()).toBe(`/par/${i}`);
      });
      expect(srv.requests).toHaveLength(50);
      // And once more on the same (kept-alive) sockets.
      const again = await Promise.all(Array.from({ length: 50 }, (_, i) => nodeRequest(base, `/again/${i}`, { agent })));
      again.forEach((r, i) => expect(r.body.toString()).toBe(`/again/${i}`));
      expect(srv.connected.length).toBeLessThanOrEqual(50);
    } finally {
      agent.destroy();
    }
  });

  it('a chunked POST written in pieces, and a HEAD', async () => {
    const { srv, base } = serve();
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const payload = randomPayload(100_000, 31);
      const pieces = [payload.subarray(0, 1), payload.subarray(1, 5000), payload.subarray(5000, 60_000), payload.subarray(60_000)];
      const r = await nodeRequest(base, '/echo', { agent, method: 'POST', body: pieces });
      expect(r.status).toBe(200);
      expect(sha256(r.body)).toBe(sha256(payload));
      expect(srv.requests[0].streamed).toBe(true);
      const h = await nodeRequest(base, '/hello', { agent, method: 'HEAD' });
      expect(h.status).toBe(200);
      expect(h.headers['content-length']).toBe('11');
      expect(h.body.length).toBe(0);
      const g = await nodeRequest(base, '/hello', { agent });
      expect(g.body.toString()).toBe('hello world');
      expect(g.reused).toBe(true);
    } finally {
      agent.destroy();
    }
  });
});

describe('Python http.client (stdlib)', () => {
  it('GET, HEAD, POST (Content-Length and chunked) and 20 requests on one kept-alive connection', async () => {
    const { srv } = serve();
    const script = `
import hashlib, http.client, json, sys
port = int(sys.argv[1])
out = {}
c = http.client.HTTPConnection('127.0.0.1', port, timeout=20)
c.request('GET', '/hello')
r = c.getresponse()
out['get'] = [r.status, r.read().decode(), r.getheader('Content-Length'), r.getheader('Date'), r.getheader('Server')]
sock = c.sock
c.request('HEAD', '/hello')
r = c.getresponse()
out['head'] = [r.status, r.read().decode(), r.getheader('Content-Length')]
body = bytes((i * 31 + 7) % 256 for i in range(100000))
c.request('POST', '/echo', body=body, headers={'Content-Type': 'application/octet-stream'})
r = c.getresponse()
out['post'] = [r.status, hashlib.sha256(r.read()).hexdigest() == hashlib.sha256(body).hexdigest()]
def parts():
    for i in range(10):
        yield b'part %d;' % i
c.request('POST', '/echo', body=parts())
r = c.getresponse()
out['chunked'] = [r.status, r.read().decode()]
seq = []
for i in range(20):
    c.request('GET', '/py/seq/%d' % i)
    r = c.getresponse()
    seq.append(r.read().decode())
out['seq'] = seq
out['same_socket'] = c.sock is sock
c.close()
print(json.dumps(out))
`;
    const r = await run('python3', ['-c', script, String(srv.port)], { installHint: PYTHON, timeoutMs: 60_000 });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout.toString()) as Record<string, unknown>;
    const [status, body, cl, date, server] = out.get as [number, string, string, string, string | null];
    expect([status, body, cl, server]).toEqual([200, 'hello world', '11', null]);
    expectDate(date);
    expect(out.head).toEqual([200, '', '11']);
    expect(out.post).toEqual([200, true]);
    expect(out.chunked).toEqual([200, Array.from({ length: 10 }, (_, i) => `part ${i};`).join('')]);
    expect(out.seq).toEqual(Array.from({ length: 20 }, (_, i) => `/py/seq/${i}`));
    expect(out.same_socket).toBe(true);
    expect(srv.connected).toHaveLength(1);
    expect(srv.requests).toHaveLength(24);
    expect(srv.requests[3].streamed).toBe(true);  // the generator body went chunked
  });
});
