// Entry points named by the issue that the other suites do not reach: httpListenTls, and
// ZeroResponse.sendBuffer.
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import { ZeroResponse } from '@zero-io/http';
import { h2text, onError, run, selfSignedCert } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'zio-http-api-'));
let cert = '', key = '';
beforeAll(async () => ({ cert, key } = await selfSignedCert(dir)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

it('httpListenTls(addr, tls): HTTPS with ALPN h2 and http/1.1; a bad config is refused with the key named', async () => {
  const io = new Io();
  const ep = io.httpListenTls('127.0.0.1:0', { cert, key });
  const port = io.localAddress(ep).port;
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, ZeroResponse.ok().text(`tls ${ev.version}`));
  }, { onError });
  try {
    const c1 = await run('curl', ['-sk', '--http1.1', `https://127.0.0.1:${port}/`]);
    expect(c1.stdout.toString()).toBe('tls 1.1');
    const s = http2.connect(`https://127.0.0.1:${port}`, { rejectUnauthorized: false });
    try {
      expect(await h2text(s, '/')).toBe('tls 2');
      expect(s.alpnProtocol).toBe('h2');
    } finally {
      s.close();
    }
    expect(() => io.httpListenTls('127.0.0.1:0', null as never)).toThrow(/TlsServerConfig/);
  } finally {
    await h.shutdown();
  }
});

it('ZeroResponse.sendBuffer(buf): the bytes written are the body; the buffer can be released at once and the response reused', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const buf = io.sendBuffer(64);
  buf.write('from a SendBuffer');
  const res = ZeroResponse.ok().sendBuffer(buf);
  buf.release();  // copied: the response does not hold the slot
  const scribble = io.sendBuffer(64);  // likely the same slot, written over
  scribble.write('x'.repeat(40));
  const h = io.runSync((ev) => {
    if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, res);
  }, { onError });
  try {
    const base = `http://127.0.0.1:${io.localAddress(ep).port}/`;
    for (let i = 0; i < 3; i++) {  // the second answer makes it a template: still the same bytes
      const r = await fetch(base);
      expect(r.headers.get('content-type')).toBe('application/octet-stream');
      expect(await r.text()).toBe('from a SendBuffer');
    }
    expect(() => ZeroResponse.ok().sendBuffer(new Uint8Array(3) as never)).toThrow(/SendBuffer/);
  } finally {
    scribble.release();
    await h.shutdown();
  }
});

it('HttpOwnedRequest.arrayBuffer(): the whole body as an ArrayBuffer of its own, inline and streamed; maxBytes gives 413', async () => {
  const io = new Io();
  const ep = io.httpListen('127.0.0.1:0');
  const h = io.runAsync(async (req) => {
    const ab = await req.arrayBuffer({ maxBytes: 300_000 });
    const u = new Uint8Array(ab);
    let sum = 0;
    for (const x of u) sum = (sum + x) % 65_521;
    return ZeroResponse.ok().text(`${ab instanceof ArrayBuffer} ${ab.byteLength} ${sum}`);
  }, { onError });
  try {
    const base = `http://127.0.0.1:${io.localAddress(ep).port}/`;
    const small = Buffer.from('hello');
    const big = Buffer.alloc(200_000, 7);
    const expectSum = (b: Buffer) => b.reduce((a, x) => (a + x) % 65_521, 0);
    expect(await (await fetch(base, { method: 'POST', body: small })).text()).toBe(`true 5 ${expectSum(small)}`);
    expect(await (await fetch(base, { method: 'POST', body: big })).text()).toBe(`true 200000 ${expectSum(big)}`);
    expect((await fetch(base, { method: 'POST', body: Buffer.alloc(400_000) })).status).toBe(413);
  } finally {
    await h.shutdown();
  }
});
