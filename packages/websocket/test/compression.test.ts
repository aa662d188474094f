// permessage-deflate (RFC 7692) against real peers: the ws client and server (npm) across the
// parameter matrix, Python's websockets (which offers it by default), our own client; a
// compressed publish; and hostile input: a compression bomb, invalid deflate data, RSV1 where it
// may not be.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import net from 'node:net';
import { deflateRawSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';
import { Io, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/tcp';
import '@zero-io/websocket';
import { RawWs, frame, pythonEchoServer, startWs, until } from './helpers.js';
import { onError } from '../../core/test/handler-errors.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => { for (const c of cleanups.splice(0).reverse()) await c(); });

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function open(url: string, perMessageDeflate: WebSocket.ClientOptions['perMessageDeflate']): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}
function next(ws: WebSocket): Promise<Buffer> {
  return new Promise((r) => ws.once('message', (d) => r(d as Buffer)));
}
/** Compressible, not trivially: JSON-ish text with varying numbers. */
function ticks(n: number): string {
  let s = '';
  for (let i = 0; s.length < n; i++) s += `{"sym":"AAPL","px":${(100 + (i % 97) / 7).toFixed(4)},"seq":${i}},`;
  return s.slice(0, n);
}

describe('with the ws client (npm) across the parameter matrix', () => {
  const matrix: [string, object, WebSocket.PerMessageDeflateOptions][] = [
    ['defaults', {}, { threshold: 0 }],
    ['server keeps its context', { serverNoContextTakeover: false }, { threshold: 0 }],
    ['client asked to drop its context', { clientNoContextTakeover: true }, { threshold: 0 }],
    ['small windows both ways', { serverMaxWindowBits: 10, clientMaxWindowBits: 9 }, { threshold: 0, clientMaxWindowBits: true }],
    ['the client limits our window', {}, { threshold: 0, serverMaxWindowBits: 10 }],
    ['the client asks for no server context', { serverNoContextTakeover: false }, { threshold: 0, serverNoContextTakeover: true }],
  ];
  it.each(matrix)('%s: echoes intact, both directions compressed', async (_name, ours, theirs) => {
    const s = startWs({ compression: { threshold: 16, ...ours }, maxMessageSize: 4 << 20 }, undefined, { poolSlotCount: 8192 });
    const ws = await open(`ws://127.0.0.1:${s.port}/`, theirs);
    expect(ws.extensions).toContain('permessage-deflate');
    for (const n of [0, 10, 200, 5000, 70_000, 1_500_000]) {
      const t = ticks(n);
      ws.send(t);
      expect((await next(ws)).toString()).toBe(t);
      const b = Buffer.from(t.repeat(1));
      ws.send(b, { binary: true });
      expect(sha(await next(ws))).toBe(sha(b));
    }
    const st = s.io.wsStats(s.ep)!;
    expect(st.deflateConnections).toBe(1);
    expect(st.compressedIn).toBeGreaterThan(5);
    expect(st.compressedOut).toBeGreaterThan(5);
    expect(st.compressSaved).toBeGreaterThan(1_000_000);
    ws.close(1000);
    await until(() => s.seen.closes.length === 1);
    expect(s.io.wsStats(s.ep)!.deflateConnections).toBe(0);
  });

  it('declines every offer when compression is off, and past maxConnections', async () => {
    const off = startWs();
    const a = await open(`ws://127.0.0.1:${off.port}/`, { threshold: 0 });
    expect(a.extensions).toBe('');
    a.send('plain');
    expect((await next(a)).toString()).toBe('plain');
    const capped = startWs({ compression: { maxConnections: 1 } });
    const b = await open(`ws://127.0.0.1:${capped.port}/`, { threshold: 0 });
    const c = await open(`ws://127.0.0.1:${capped.port}/`, { threshold: 0 });
    expect(b.extensions).toContain('permessage-deflate');
    expect(c.extensions).toBe('');
    a.close(); b.close(); c.close();
  });

  it('a compressed publish reaches compressing and plain subscribers alike', async () => {
    const s = startWs({ compression: { threshold: 0 } }, (ev, io) => { if (ev.type === 'WsOpen') io.wsSubscribe(ev.conn, 'px'); });
    const z = await Promise.all([0, 1, 2].map(() => open(`ws://127.0.0.1:${s.port}/`, { threshold: 0 })));
    const plain = await open(`ws://127.0.0.1:${s.port}/`, false);
    await until(() => s.io.wsSubscribers('px') === 4);
    const t = ticks(20_000);
    const got = [...z, plain].map((w) => next(w));
    const r = s.io.wsPublish('px', t);
    expect(r).toMatchObject({ subscribers: 4, dropped: 0 });
    for (const g of got) expect((await g).toString()).toBe(t);
    const st = s.io.wsStats(s.ep)!;
    expect(st.compressedOut).toBe(3);
    expect(st.compressSaved).toBeGreaterThan(10_000);
    [...z, plain].forEach((w) => w.close());
  });
});

describe('with Python websockets (compression on by default there) and our own client', () => {
  it('Python websockets negotiates permessage-deflate and echoes', async () => {
    const s = startWs({ compression: true });
    const script = `
import asyncio, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:${s.port}/", max_size=None) as ws:
        for n in (1, 300, 100000):
            t = ("tick %d;" % n) * (n // 8 + 1)
            await ws.send(t)
            assert await ws.recv() == t
        print("ok", ws.extensions[0].name if ws.extensions else "none")
asyncio.run(main())
`;
    const out = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.env.ZIO_TEST_PYTHON ?? '/usr/bin/python3', ['-c', script]);
      let o = '', e = '';
      p.stdout.on('data', (d) => { o += d; });
      p.stderr.on('data', (d) => { e += d; });
      p.on('close', (code) => (code === 0 ? resolve(o.trim()) : reject(new Error(e))));
    });
    expect(out).toBe('ok permessage-deflate');
    expect(s.io.wsStats(s.ep)!.compressedIn).toBeGreaterThan(0);
  });

  it('our client with compression against a Python websockets server (which compresses by default)', async () => {
    const { port, stop } = await pythonEchoServer();
    cleanups.push(stop);
    const io = new Io();
    const msgs: string[] = [];
    let opened = false;
    const h = io.runSync((ev: Event) => {
      if (ev.type === 'WsOpen') opened = true;
      if (ev.type === 'StreamFrame') msgs.push(ev.text);
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    const conn = io.wsConnectWith({ url: `ws://127.0.0.1:${port}/`, compression: true });
    await until(() => opened);
    const texts = [ticks(10), ticks(3000), ticks(200_000)];
    for (const t of texts) io.wsSend(conn, t);
    await until(() => msgs.length === texts.length);
    expect(msgs).toEqual(texts);
    io.wsClose(conn);
  });

  it('our client with compression against the ws server (npm) with permessage-deflate', async () => {
    const wss = await new Promise<WebSocketServer>((r) => {
      const w = new WebSocketServer({ host: '127.0.0.1', port: 0, perMessageDeflate: { threshold: 0 } }, () => r(w));
    });
    wss.on('connection', (sock) => sock.on('message', (d, bin) => sock.send(d, { binary: bin })));
    cleanups.push(() => new Promise<void>((r) => { for (const c of wss.clients) c.terminate(); wss.close(() => r()); }));
    const io = new Io();
    const msgs: Buffer[] = [];
    let opened = false;
    const h = io.runSync((ev: Event) => {
      if (ev.type === 'WsOpen') opened = true;
      if (ev.type === 'StreamFrame') msgs.push(Buffer.from(ev.data));
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    const conn: ConnId = io.wsConnectWith({ url: `ws://127.0.0.1:${(wss.address() as net.AddressInfo).port}/`, compression: { threshold: 0 } });
    await until(() => opened);
    const sizes = [0, 50, 4000, 300_000];
    for (const n of sizes) io.wsSend(conn, ticks(n));
    await until(() => msgs.length === sizes.length);
    sizes.forEach((n, i) => expect(msgs[i].toString()).toBe(ticks(n)));
    io.wsClose(conn);
  });
});

describe('hostile compressed input', () => {
  /** A raw client that negotiated permessage-deflate. */
  async function rawDeflate(port: number): Promise<RawWs> {
    const c = await RawWs.open(port, '/', 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n');
    expect(c.head.toLowerCase()).toContain('sec-websocket-extensions: permessage-deflate');
    return c;
  }
  const compressed = (b: Buffer) => { const z = deflateRawSync(b, { finishFlush: 2 /* Z_SYNC_FLUSH */ }); return z.subarray(0, z.length - 4); };

  it('a compression bomb (64 KiB that inflates to 64 MiB) closes with 1009, memory bounded', async () => {
    const s = startWs({ compression: true, maxMessageSize: 1 << 20 });
    const bystander = await RawWs.open(s.port);
    const c = await rawDeflate(s.port);
    const bomb = compressed(Buffer.alloc(64 << 20));
    expect(bomb.length).toBeLessThan(100_000);
    c.send(frame(2, bomb, { rsv: 4 }));
    await until(() => c.closeFrame() !== null, 10_000, 'the 1009');
    expect(c.closeFrame()!.code).toBe(1009);
    expect(s.seen.messages).toHaveLength(0);
    bystander.send(frame(1, 'fine'));
    await until(() => bystander.frames.length === 1);
  });

  it('invalid deflate data closes with 1007; compressed text that is not UTF-8 too', async () => {
    const s = startWs({ compression: true });
    const a = await rawDeflate(s.port);
    a.send(frame(2, Buffer.from([0xff, 0xff, 0xff, 0xff, 0x00]), { rsv: 4 }));
    await until(() => a.closeFrame() !== null);
    expect(a.closeFrame()!.code).toBe(1007);
    const b = await rawDeflate(s.port);
    b.send(frame(1, compressed(Buffer.from([0x61, 0xc3, 0x28])), { rsv: 4 }));
    await until(() => b.closeFrame() !== null);
    expect(b.closeFrame()!.code).toBe(1007);
  });

  it('RSV1 on a continuation or a control frame is a protocol error even with deflate (1002)', async () => {
    const s = startWs({ compression: true });
    const a = await rawDeflate(s.port);
    a.send(Buffer.concat([frame(2, compressed(Buffer.from('x')), { rsv: 4, fin: false }), frame(0, Buffer.from('y'), { rsv: 4 })]));
    await until(() => a.closeFrame() !== null);
    expect(a.closeFrame()!.code).toBe(1002);
    const b = await rawDeflate(s.port);
    b.send(frame(9, Buffer.from('p'), { rsv: 4 }));
    await until(() => b.closeFrame() !== null);
    expect(b.closeFrame()!.code).toBe(1002);
  });

  it('a fragmented compressed message (RSV1 on the first frame only) inflates whole', async () => {
    const s = startWs({ compression: true });
    const c = await rawDeflate(s.port);
    const t = ticks(30_000);
    const z = compressed(Buffer.from(t));
    const third = Math.floor(z.length / 3);
    c.send(Buffer.concat([
      frame(1, z.subarray(0, third), { rsv: 4, fin: false }),
      frame(9, 'mid'),
      frame(0, z.subarray(third, 2 * third), { fin: false }),
      frame(0, z.subarray(2 * third)),
    ]));
    await until(() => s.seen.messages.length === 1);
    expect(s.seen.messages[0].data.toString()).toBe(t);
  });
});

describe('what the second trial found', () => {
  it("pieces mode with compression: a compressed message past a quarter of the pool closes with 1009 (no hang, no unbounded inflate)", async () => {
    const s = startWs({ compression: true, messageDelivery: 'pieces', maxMessageSize: 1 << 30 });
    const ws = await open(`ws://127.0.0.1:${s.port}/`, { threshold: 0 });
    const code = new Promise<number>((r) => ws.once('close', (c) => r(c)));
    ws.send(Buffer.alloc(6 << 20, 97));  // 6 MiB > 2 MiB (a quarter of the default 8 MiB pool)
    expect(await code).toBe(1009);
    // A compressed message within the bound arrives whole on a new connection.
    const ok = await open(`ws://127.0.0.1:${s.port}/`, { threshold: 0 });
    ok.send(Buffer.alloc(1 << 20, 98));
    await until(() => s.seen.messages.some((m) => m.data.length === 1 << 20), 10_000, 'the 1 MiB message');
    ok.close();
  });

  it('the client offers the window sizes it is configured with', async () => {
    let head = '';
    const srv = net.createServer((sock) => {
      sock.on('data', (d) => { head += d; if (head.includes('\r\n\r\n')) sock.end('HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n'); });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    const io = new Io();
    let closed = false;
    const h = io.runSync((ev: Event) => { if (ev.type === 'Disconnected') closed = true; }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    io.wsConnectWith({ url: `ws://127.0.0.1:${(srv.address() as net.AddressInfo).port}/`,
      compression: { clientMaxWindowBits: 9, serverMaxWindowBits: 10, serverNoContextTakeover: true } });
    await until(() => closed);
    expect(head).toMatch(/Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits=9; server_max_window_bits=10; server_no_context_takeover\r\n/);
  });

  it('bytesOut counts frames on the wire whichever call sent them', async () => {
    const s = startWs({ compression: { threshold: 0 } }, (ev, io) => { if (ev.type === 'WsOpen') io.wsSubscribe(ev.conn, 't'); return true; });
    const ws = await open(`ws://127.0.0.1:${s.port}/`, { threshold: 0 });
    await until(() => s.io.wsSubscribers('t') === 1);
    const conn = s.seen.opens[0].conn;
    const before = s.io.wsStats(s.ep)!.bytesOut;
    s.io.wsSend(conn, 'a'.repeat(100_000));
    const viaSend = s.io.wsStats(s.ep)!.bytesOut - before;
    s.io.wsPublish('t', 'a'.repeat(100_000));
    const viaPublish = s.io.wsStats(s.ep)!.bytesOut - before - viaSend;
    expect(viaSend).toBeLessThan(1000);  // compressed, with its header
    expect(viaPublish).toBe(viaSend);
    ws.close();
  });
});
