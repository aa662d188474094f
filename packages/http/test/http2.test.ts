// HTTP/2 on an HTTP listener, against real peers: curl (h2c prior knowledge, h2 over TLS by
// ALPN), node:http2 (many concurrent streams, bodies both ways, HEAD, a cancelled stream), and
// h2spec (the conformance suite; installed with `go install`, cached outside the clone).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import { ZeroResponse } from '@zero-io/http';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { onError, run, selfSignedCert, until, untilServerEnds } from './helpers.js';

let io: Io | undefined;
afterEach(() => { if (io && !io.closed) io.shutdown(); io = undefined; });
const dir = mkdtempSync(join(tmpdir(), 'zio-h2-'));
let cert = '', key = '';
beforeAll(async () => ({ cert, key } = await selfSignedCert(dir)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** An echo server: answers every request with its version, method, path and body hash. */
function serve(tls = false, emptyBody = '-') {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, ...(tls ? { tls: { cert, key } } : {}) });
  const bodies = new Map<string, ReturnType<typeof createHash>>();
  const heads = new Map<string, string>();
  const answer = (conn: number, id: number) => {
    const k = `${conn}/${id}`;
    const sha = bodies.get(k)?.digest('hex') ?? emptyBody;
    io!.httpRespond(conn as never, id, ZeroResponse.ok().header('X-Head', heads.get(k)!).text(sha));
    bodies.delete(k);
    heads.delete(k);
  };
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') {
      heads.set(`${ev.conn}/${ev.requestId}`, `${ev.version}|${ev.method}|${ev.path}|${ev.query}`);
      if (ev.streamed) bodies.set(`${ev.conn}/${ev.requestId}`, createHash('sha256'));
      else answer(ev.conn, ev.requestId);
    } else if (ev.type === 'HttpBodyChunk') {
      bodies.get(`${ev.conn}/${ev.requestId}`)!.update(ev.data);
      if (ev.end) answer(ev.conn, ev.requestId);
    }
  }, { onError });
  return { port: io.localAddress(ep).port, h, ep };
}

function h2request(client: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body?: Buffer) {
  return new Promise<{ status: number; head: string; body: string }>((resolve, reject) => {
    const r = client.request(headers);
    let d = '';
    let status = 0, head = '';
    r.setEncoding('utf8');
    r.on('response', (h) => { status = Number(h[':status']); head = String(h['x-head']); });
    r.on('data', (x) => { d += x; });
    r.on('end', () => resolve({ status, head, body: d }));
    r.on('error', reject);
    r.end(body);
  });
}

it('curl: h2c with prior knowledge (GET, POST), and HTTP/1.1 on the same listener', async () => {
  const { port, h } = serve();
  const get = await run('curl', ['-s', '--http2-prior-knowledge', `http://127.0.0.1:${port}/a?b=1`, '-D', '-', '-w', '\n%{http_version}']);
  expect(get.code).toBe(0);
  const out = get.stdout.toString();
  expect(out).toMatch(/^HTTP\/2 200 \r\n/);
  expect(out).toContain('x-head: 2|GET|/a|b=1');
  expect(out).toMatch(/\ndate: \w{3}, \d\d \w{3} \d{4} /);
  expect(out.endsWith('\n2')).toBe(true);
  const body = Buffer.alloc(300_000, 'q');
  const post = await run('curl', ['-s', '--http2-prior-knowledge', '--data-binary', '@-', `http://127.0.0.1:${port}/up`], { input: body });
  expect(post.stdout.toString()).toBe(createHash('sha256').update(body).digest('hex'));
  const h1 = await run('curl', ['-s', '-D', '-', `http://127.0.0.1:${port}/one`]);
  expect(h1.stdout.toString()).toContain('X-Head: 1.1|GET|/one|');
  await h.shutdown();
});

it('node:http2: 100 concurrent streams with bodies on one connection, HEAD, and a cancelled stream', async () => {
  const { port, h, ep } = serve();
  const c = http2.connect(`http://127.0.0.1:${port}`);
  try {
    const bodies = Array.from({ length: 100 }, (_, i) => Buffer.alloc(i * 997, i & 0xff));
    const got = await Promise.all(bodies.map((b, i) => h2request(c, { ':method': 'POST', ':path': `/s${i}` }, b)));
    got.forEach((g, i) => {
      expect(g.status).toBe(200);
      expect(g.head).toBe(`2|POST|/s${i}|`);
      const want = createHash('sha256').update(bodies[i]).digest('hex');
      // An empty body: no DATA at all ('-'), or one empty DATA frame ending the stream.
      expect(i === 0 ? [want, '-'] : [want]).toContain(g.body);
    });
    const head = await h2request(c, { ':method': 'HEAD', ':path': '/h' });
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
    // A stream the client cancels mid-body: the others go on.
    const r = c.request({ ':method': 'POST', ':path': '/cancel' });
    r.on('error', () => {});
    r.write(Buffer.alloc(1000));
    await new Promise((res) => setTimeout(res, 20));
    r.close(http2.constants.NGHTTP2_CANCEL);
    const after = await h2request(c, { ':path': '/after' });
    expect(after.head).toBe('2|GET|/after|');
  } finally {
    c.close();
  }
  expect(io!.httpStats(ep)!.requests).toBe(103);
  await h.shutdown();
});

it('h2 over TLS: ALPN picks h2 for node:http2 and curl, http/1.1 for an HTTP/1.1 client', async () => {
  const { port, h } = serve(true);
  const c = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
  try {
    const g = await h2request(c, { ':path': '/tls' });
    expect(g.head).toBe('2|GET|/tls|');
    expect(c.alpnProtocol).toBe('h2');
  } finally {
    c.close();
  }
  const curl2 = await run('curl', ['-sk', '--http2', '-D', '-', `https://127.0.0.1:${port}/c`]);
  expect(curl2.stdout.toString()).toMatch(/^HTTP\/2 200/);
  const curl1 = await run('curl', ['-sk', '--http1.1', '-D', '-', `https://127.0.0.1:${port}/c`]);
  expect(curl1.stdout.toString()).toMatch(/^HTTP\/1\.1 200/);
  await h.shutdown();
});

/** h2spec, installed once with `go install` into the cache outside the clone. */
async function h2specBin(): Promise<string> {
  const bin = join(process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io'), 'go-bin');
  const h2spec = join(bin, 'h2spec');
  if (!existsSync(h2spec)) {
    mkdirSync(bin, { recursive: true });
    const inst = await runEnv('go', ['install', 'github.com/summerwind/h2spec/cmd/h2spec@v2.6.0'], { GOBIN: bin });
    expect(existsSync(h2spec), `h2spec could not be installed (go install): ${inst}`).toBe(true);
  }
  return h2spec;
}

// Every one of h2spec's 145 cases passes, over h2c (prior knowledge) and over TLS (ALPN h2); a
// failure names its cases (read from the JUnit report: the text report's numbering mixes its
// generic, hpack and http2 sections).
for (const tls of [false, true]) {
  it(`h2spec (${tls ? 'h2 over TLS' : 'h2c'}): all 145 cases pass`, async () => {
    const h2spec = await h2specBin();
    // An answer longer than one byte: h2spec skips its window-size case on a 1-byte body.
    const { port, h } = serve(tls, 'no body: hello from zero-io');
    const junit = join(dir, `h2spec-${tls ? 'tls' : 'h2c'}.xml`);
    const r = await run(h2spec, ['-h', '127.0.0.1', '-p', String(port), '-o', '2', '-j', junit, ...(tls ? ['-t', '-k'] : [])],
      { timeoutMs: 120_000 });
    const text = r.stdout.toString();
    const m = /(\d+) tests, (\d+) passed, (\d+) skipped, (\d+) failed/.exec(text);
    expect(m, text.slice(-2000)).not.toBeNull();
    expect(failingCases(readFileSync(junit, 'utf8')), text.slice(-4000)).toEqual([]);
    expect(Number(m![1])).toBe(145);
    expect(Number(m![2]), text.slice(-3000)).toBe(145);
    await h.shutdown({ timeoutMs: 200 });
  }, 180_000);
}

/** 'http2/5.1/5' (suite package / position) for each case of h2spec's JUnit report that failed. */
function failingCases(xml: string): string[] {
  const out: string[] = [];
  for (const suite of xml.split('<testsuite ').slice(1)) {
    const pkg = /package="([^"]+)"/.exec(suite)?.[1] ?? '?';
    suite.split('<testcase ').slice(1).forEach((tc, i) => {
      if (/<(error|failure)[\s>]/.test(tc.split('</testcase>')[0])) out.push(`${pkg}/${i + 1}`);
    });
  }
  return out;
}

async function runEnv(cmd: string, args: string[], env: Record<string, string>): Promise<string> {
  const { spawnSync } = await import('node:child_process');
  const r = spawnSync(cmd, args, { env: { ...process.env, ...env }, encoding: 'utf8', timeout: 300_000 });
  return `${r.status} ${r.stderr?.slice(-500)}`;
}

it('http2: false — the HTTP/2 preface is answered 505 and closed, HTTP/1.1 still served', async () => {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, http2: false });
  const port = io.localAddress(ep).port;
  let seen = 0;
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') { seen++; io!.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text('one')); }
  }, { onError });
  const got = await untilServerEnds(port, 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n');
  expect(got).toMatch(/^HTTP\/1\.1 505 HTTP Version Not Supported\r\n/);
  expect(got).toContain('Connection: close\r\n');
  expect(seen).toBe(0);
  const r = await run('curl', ['-s', `http://127.0.0.1:${port}/`]);
  expect(r.stdout.toString()).toBe('one');
  await h.shutdown();
});

it('neither HTTP/1.x nor the HTTP/2 preface: closed without an answer (h2spec 3.5/2); with http2: false it is a 400', async () => {
  const { port, h } = serve();
  expect(await untilServerEnds(port, 'INVALID CONNECTION PREFACE\r\n\r\n')).toBe('');
  // An HTTP/1.x client that got its request line wrong is still answered.
  expect(await untilServerEnds(port, 'GET /a b HTTP/1.1\r\nHost: h\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
  await h.shutdown();
  const io1 = new Io();
  const ep = io1.httpListenWith({ host: '127.0.0.1', port: 0, http2: false });
  const h1 = io1.runSync(() => {}, { onError });
  expect(await untilServerEnds(io1.localAddress(ep).port, 'INVALID CONNECTION PREFACE\r\n\r\n')).toMatch(/^HTTP\/1\.1 400 /);
  await h1.shutdown();
});

it('a zero-window stall (the client never opens its windows) ends with GOAWAY ENHANCE_YOUR_CALM after requestTimeoutMs; a slow but reading client is not cut', async () => {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, requestTimeoutMs: 1000 });
  const port = io.localAddress(ep).port;
  const big = ZeroResponse.ok().header('Content-Type', 'application/octet-stream').bytes(Buffer.alloc(1 << 20, 1));
  const closed: { code: number; reason: string }[] = [];
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') io!.httpRespond(ev.conn, ev.requestId, big);
    else if (ev.type === 'Disconnected') closed.push({ code: ev.errorCode, reason: ev.reason });
  }, { onError });
  // Stream windows of 0: not one DATA byte can go, and the client never sends WINDOW_UPDATE.
  const c = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
  c.on('error', () => {});
  const goaway = new Promise<number>((res) => c.on('goaway', (code: number) => res(code)));
  const r = c.request({ ':path': '/stall' });
  r.on('error', () => {});
  expect(await goaway).toBe(http2.constants.NGHTTP2_ENHANCE_YOUR_CALM);
  await until(() => closed.length === 1, 5000, 'the stalled connection to close');
  expect(closed[0].code).toBe(-1021);
  expect(closed[0].reason).toMatch(/flow-control stall/);
  c.destroy();
  // A client that reads slowly (pauses of a tenth of the time-out, longer than it in all) gets it all.
  const s = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 16384 } });
  try {
    const got = await new Promise<number>((res, rej) => {
      const q = s.request({ ':path': '/slow' });
      let n = 0;
      let pauses = 0;
      q.on('data', (d: Buffer) => {
        n += d.length;
        if (pauses++ < 20) {
          q.pause();
          setTimeout(() => q.resume(), 100);
        }
      });
      q.on('end', () => res(n));
      q.on('error', rej);
    });
    expect(got).toBe(1 << 20);
  } finally {
    s.close();
  }
  expect(io.httpStats(ep)!.timeouts).toBe(1);
  await h.shutdown();
}, 30_000);

it('a client that ends its side with a request body unfinished: that stream is reset at once (HttpReset CANCEL), then the close — not after requestTimeoutMs', async () => {
  io = new Io();
  const ep = io.httpListenWith({ host: '127.0.0.1', port: 0, requestTimeoutMs: 60_000 });
  const port = io.localAddress(ep).port;
  const seen: string[] = [];
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') seen.push(`request ${ev.requestId} streamed=${ev.streamed}`);
    else if (ev.type === 'HttpReset') seen.push(`reset ${ev.requestId} ${ev.errorCode}`);
    else if (ev.type === 'Disconnected') seen.push('closed');
  }, { onError });
  const frame = (type: number, flags: number, stream: number, payload: Buffer) => {
    const f = Buffer.alloc(9);
    f.writeUIntBE(payload.length, 0, 3);
    f[3] = type;
    f[4] = flags;
    f.writeUInt32BE(stream, 5);
    return Buffer.concat([f, payload]);
  };
  const s = (await import('node:net')).connect(port, '127.0.0.1');
  s.on('error', () => {});
  s.resume();
  await new Promise((r) => s.once('connect', r));
  // The preface, SETTINGS, then HEADERS (:method POST, :path /, :scheme http, :authority x) with
  // END_HEADERS but not END_STREAM: a body should follow. Then our FIN instead.
  s.write(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame(4, 0, 0, Buffer.alloc(0)),
    frame(1, 0x4, 1, Buffer.from([0x83, 0x84, 0x86, 0x41, 0x01, 0x78]))]));
  await until(() => seen.length > 0, 5000, 'the request');
  s.end();
  // Bounded well below the 60 s requestTimeoutMs that used to end it.
  await until(() => seen.includes('closed'), 10_000, 'the close');
  expect(seen).toEqual(['request 1 streamed=true', 'reset 1 8', 'closed']);
  s.destroy();
  await h.shutdown();
});

it('nghttp (nghttp2-client): prior knowledge, Upgrade: h2c, a POST body, and 20 multiplexed requests on one connection', async () => {
  const { port, h } = serve();
  const NGHTTP = { installHint: 'Debian package nghttp2-client' };
  const body = join(dir, 'nghttp-body.bin');
  writeFileSync(body, Buffer.alloc(100_000, 9));
  const get = await run('nghttp', ['-n', '-s', `http://127.0.0.1:${port}/ng?q=1`], NGHTTP);
  expect(get.code, get.stderr).toBe(0);
  const up = await run('nghttp', ['-u', `http://127.0.0.1:${port}/upgraded`], NGHTTP);
  expect(up.code, up.stderr).toBe(0);
  expect(up.stdout.toString()).toBe('-');  // the echo server's answer to a request without a body
  const post = await run('nghttp', ['-d', body, `http://127.0.0.1:${port}/post`], NGHTTP);
  expect(post.stdout.toString()).toBe(createHash('sha256').update(Buffer.alloc(100_000, 9)).digest('hex'));
  const many = await run('nghttp', ['-n', '-s', '-m', '20', `http://127.0.0.1:${port}/m`], NGHTTP);
  expect(many.code, many.stderr).toBe(0);
  expect((many.stdout.toString().match(/\/m\b/g) ?? []).length).toBeGreaterThanOrEqual(20);  // -s: one line per stream
  await h.shutdown();
});

it('h2load (nghttp2-client): 2,000 requests over 4 connections x 10 streams, h2c and h2 over TLS, every one succeeds', async () => {
  for (const tls of [false, true]) {
    const { port, h } = serve(tls);
    const r = await run('h2load', ['-n', '2000', '-c', '4', '-m', '10', `${tls ? 'https' : 'http'}://127.0.0.1:${port}/load`],
      { installHint: 'Debian package nghttp2-client', timeoutMs: 60_000 });
    const out = r.stdout.toString();
    expect(out, out).toMatch(/requests: 2000 total, 2000 started, 2000 done, 2000 succeeded, 0 failed, 0 errored, 0 timeout/);
    expect(out).toMatch(/status codes: 2000 2xx/);
    if (tls) expect(out).toMatch(/Application protocol: h2/);
    await h.shutdown();
  }
});

it('Upgrade: h2c (curl --http2 on http://): 101, then the request is answered as HTTP/2 stream 1; with a body it stays HTTP/1.1', async () => {
  const { port, h } = serve();
  const up = await run('curl', ['-s', '--http2', '-D', '-', `http://127.0.0.1:${port}/up`, '-w', '\n%{http_version}']);
  const out = up.stdout.toString();
  expect(out).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
  expect(out).toContain('HTTP/2 200');
  expect(out).toContain('x-head: 2|GET|/up|');
  expect(out.endsWith('\n2')).toBe(true);
  const post = await run('curl', ['-s', '--http2', '-D', '-', '--data-binary', 'abc', `http://127.0.0.1:${port}/p`]);
  expect(post.stdout.toString()).toMatch(/^HTTP\/1\.1 200 OK\r\n/);  // a request with a body is not upgraded
  await h.shutdown();
});

it('a stream the client cancels: HttpReset with its id and CANCEL in runSync; an owned request\'s signal fires in runAsync; the server goes on', async () => {
  // runSync: the event
  io = new Io();
  let ep = io.httpListen('127.0.0.1:0');
  let port = io.localAddress(ep).port;
  const resets: [number, number][] = [];
  let hostSeen: string | null = null;
  let target = -1;
  let h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') { target = ev.requestId; hostSeen = ev.header('host'); }
    else if (ev.type === 'HttpReset') resets.push([ev.requestId, ev.errorCode]);
  }, { onError });
  let c = http2.connect(`http://127.0.0.1:${port}`);
  let r = c.request({ ':path': '/slow' });
  r.on('error', () => {});
  const t0 = Date.now();
  while (target < 0 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 5));
  expect(hostSeen).toBe(`127.0.0.1:${port}`);  // :authority as the host field
  r.close(http2.constants.NGHTTP2_CANCEL);
  while (resets.length === 0 && Date.now() - t0 < 5000) await new Promise((res) => setTimeout(res, 5));
  expect(resets).toEqual([[target, 8]]);
  expect(io.httpRespond(0 as never, 0, ZeroResponse.ok())).toBe(false);
  c.close();
  await h.shutdown({ timeoutMs: 200 });
  io.shutdown();
  // runAsync: the owned request's signal
  io = new Io();
  ep = io.httpListen('127.0.0.1:0');
  port = io.localAddress(ep).port;
  let aborted = '';
  h = io.runAsync(async (req) => {
    if (req.path() === '/slow') {
      await new Promise<void>((res) => req.signal.addEventListener('abort', () => { aborted = (req.signal.reason as Error).message; res(); }));
      return ZeroResponse.ok().text('late');
    }
    return ZeroResponse.ok().text('fine');
  });
  c = http2.connect(`http://127.0.0.1:${port}`);
  r = c.request({ ':path': '/slow' });
  r.on('error', () => {});
  await new Promise((res) => setTimeout(res, 100));
  r.close(http2.constants.NGHTTP2_CANCEL);
  const t1 = Date.now();
  while (!aborted && Date.now() - t1 < 5000) await new Promise((res) => setTimeout(res, 5));
  expect(aborted).toMatch(/reset the stream \(HTTP\/2 error 8\)/);
  expect((await h2request(c, { ':path': '/after' })).body).toBe('fine');  // the session goes on
  c.close();
  await h.shutdown({ timeoutMs: 200 });
});
