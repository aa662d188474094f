// The client (wsConnect / wsConnectWith) against real servers: the `ws` server (npm), Python's
// `websockets` server, our own server, over TLS; and against servers that answer the opening
// handshake wrongly (each must fail with -1024 and a reason that names what was wrong).
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocketServer } from 'ws';
import { Io, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/tcp';
import '@zero-io/websocket';
import { selfSignedCert } from '../../http/test/helpers.js';
import { checkHandlerErrors, pythonEchoServer, startWs, until } from './helpers.js';
import { onError } from '../../core/test/handler-errors.js';

interface Client {
  io: Io;
  opens: { conn: ConnId; subprotocol: string | null }[];
  messages: { conn: ConnId; kind: string; data: Buffer }[];
  closes: { conn: ConnId; code: number; reason: string; origin: string }[];
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function client(onEvent?: (ev: Event, io: Io) => void): Client {
  const io = new Io();
  const c: Client = { io, opens: [], messages: [], closes: [] };
  const h = io.runSync((ev) => {
    if (ev.type === 'WsOpen') c.opens.push({ conn: ev.conn, subprotocol: ev.subprotocol });
    if (ev.type === 'StreamFrame') c.messages.push({ conn: ev.conn, kind: ev.kind, data: Buffer.from(ev.data) });
    if (ev.type === 'Disconnected') c.closes.push({ conn: ev.conn, code: ev.errorCode, reason: ev.reason, origin: ev.origin });
    onEvent?.(ev, io);
  }, { onError });
  cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
  return c;
}

function wsServer(opts: ConstructorParameters<typeof WebSocketServer>[0] = {}): Promise<{ wss: WebSocketServer; port: number }> {
  return new Promise((resolve) => {
    const wss = new WebSocketServer({ host: '127.0.0.1', port: 0, ...opts }, () => resolve({ wss, port: (wss.address() as net.AddressInfo).port }));
    wss.on('connection', (s) => s.on('message', (d, bin) => s.send(d, { binary: bin })));
    cleanups.push(() => new Promise<void>((r) => { for (const s of wss.clients) s.terminate(); wss.close(() => r()); }));
  });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('wsConnect against the ws server (npm)', () => {
  it('opens, sends masked frames the server accepts, receives echoes of every size, closes', async () => {
    const { wss, port } = await wsServer({ handleProtocols: (p) => (p.has('b') ? 'b' : false) });
    let serverSaw = '';
    wss.on('connection', (_s, req) => { serverSaw = `${req.url} ${req.headers.origin} ${req.headers['x-token']}`; });
    const c = client();
    const conn = c.io.wsConnectWith({ url: `ws://127.0.0.1:${port}/feed?x=1`, subprotocols: ['a', 'b'], origin: 'https://me.example', headers: { 'X-Token': 't1' } });
    await until(() => c.opens.length === 1, 10_000, 'WsOpen');
    expect(c.opens[0]).toEqual({ conn, subprotocol: 'b' });
    expect(serverSaw).toBe('/feed?x=1 https://me.example t1');
    const sizes = [0, 5, 125, 126, 65_535, 65_536, 500_000];
    for (const n of sizes) {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
      expect(c.io.wsSend(conn, b)).not.toBe('dropped');
      c.io.wsSend(conn, `text ${n}`);
    }
    await until(() => c.messages.length === sizes.length * 2, 10_000, 'every echo');
    for (let k = 0; k < sizes.length; k++) {
      const n = sizes[k];
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = (i * 31 + n) & 0xff;
      expect(c.messages[2 * k].kind).toBe('WsBinary');
      expect(sha(c.messages[2 * k].data)).toBe(sha(b));
      expect(c.messages[2 * k + 1]).toMatchObject({ kind: 'WsText' });
      expect(c.messages[2 * k + 1].data.toString()).toBe(`text ${n}`);
    }
    expect(c.io.wsClose(conn, 4001, 'client done')).toBe(true);
    await until(() => c.closes.length === 1, 10_000, 'the close');
    expect(c.closes[0]).toMatchObject({ conn, code: 4001, origin: 'local' });
  });

  it('reports the server closing first with its code', async () => {
    const { wss, port } = await wsServer();
    wss.on('connection', (s) => s.on('message', () => s.close(4200, 'server says bye')));
    const c = client();
    const conn = c.io.wsConnect(`ws://127.0.0.1:${port}/`);
    await until(() => c.opens.length === 1);
    c.io.wsSend(conn, 'anything');
    await until(() => c.closes.length === 1);
    expect(c.closes[0]).toMatchObject({ code: 4200, origin: 'peer' });
    expect(c.closes[0].reason).toContain('server says bye');
  });

  it('speaks wss:// with a CA it is given', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zio-wssc-'));
    const { cert, key } = await selfSignedCert(dir);
    const https = createHttpsServer({ cert: readFileSync(cert), key: readFileSync(key) });
    const wss = new WebSocketServer({ server: https });
    wss.on('connection', (s) => s.on('message', (d, bin) => s.send(d, { binary: bin })));
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => { for (const s of wss.clients) s.terminate(); https.close(() => r()); }));
    const port = (https.address() as net.AddressInfo).port;
    const c = client();
    const conn = c.io.wsConnectWith({ url: `wss://localhost:${port}/`, tls: { ca: readFileSync(cert, 'utf8') } });
    await until(() => c.opens.length === 1, 10_000, 'WsOpen over TLS');
    c.io.wsSend(conn, Buffer.alloc(100_000, 9));
    await until(() => c.messages.length === 1);
    expect(c.messages[0].data.equals(Buffer.alloc(100_000, 9))).toBe(true);
    c.io.wsClose(conn);
    await until(() => c.closes.length === 1);
    expect(c.closes[0].code).toBe(1000);
  });
});

describe('wsConnect against our own server and Python websockets', () => {
  it('a zero-io client and a zero-io server exchange messages (on two Io instances)', async () => {
    const s = startWs({ subprotocols: ['v1'] });
    const c = client();
    const conn = c.io.wsConnectWith({ url: `ws://127.0.0.1:${s.port}/x`, subprotocols: ['v1'] });
    await until(() => c.opens.length === 1);
    expect(c.opens[0].subprotocol).toBe('v1');
    for (let i = 0; i < 100; i++) c.io.wsSend(conn, `m${i}`);
    await until(() => c.messages.length === 100);
    expect(c.messages.map((m) => m.data.toString())).toEqual(Array.from({ length: 100 }, (_, i) => `m${i}`));
    c.io.wsClose(conn, 1000);
    await until(() => s.seen.closes.length === 1 && c.closes.length === 1);
    expect(s.seen.closes[0]).toMatchObject({ code: 1000, origin: 'peer' });
  });

  it('talks to a Python websockets server', async () => {
    const { port, stop } = await pythonEchoServer();
    cleanups.push(stop);
    const c = client();
    const conn = c.io.wsConnect(`ws://127.0.0.1:${port}/`);
    await until(() => c.opens.length === 1);
    const big = Buffer.alloc(300_000, 0x41);
    c.io.wsSend(conn, big);
    c.io.wsSend(conn, 'héllo');
    await until(() => c.messages.length === 2);
    expect(c.messages[0].data.equals(big)).toBe(true);
    expect(c.messages[1].data.toString()).toBe('héllo');
    c.io.wsClose(conn, 1000);
    await until(() => c.closes.length === 1);
    expect(c.closes[0].code).toBe(1000);
  });
});

describe('handshake failures', () => {
  /** A raw server that answers every request with `answer` (the key's accept can be spliced in). */
  async function rawServer(answer: (key: string) => string): Promise<number> {
    const srv = net.createServer((sock) => {
      let buf = '';
      sock.on('data', (d) => {
        buf += d;
        const m = /sec-websocket-key: (\S+)/i.exec(buf);
        if (buf.includes('\r\n\r\n') && m) sock.write(answer(m[1]));
      });
      sock.on('error', () => {});
    });
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
    cleanups.push(() => new Promise<void>((r) => srv.close(() => r())));
    return (srv.address() as net.AddressInfo).port;
  }
  const accept = (k: string) => createHash('sha1').update(k + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');

  it.each([
    ['a 403', () => 'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n', 'answered 403'],
    ['a wrong accept', () => 'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n', 'does not match'],
    ['no Upgrade field', (k: string) => `HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\n\r\n`, 'no Upgrade'],
    ['a subprotocol not offered', (k: string) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\nSec-WebSocket-Protocol: other\r\n\r\n`, 'did not offer'],
    ['an extension not offered', (k: string) => `HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept(k)}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n`, 'extension'],
    ['not HTTP at all', () => 'SSH-2.0-OpenSSH\r\n\r\n', 'not HTTP/1.1'],
  ])('%s fails the connection with -1024 and says why', async (_name, answer, why) => {
    const port = await rawServer(answer as (k: string) => string);
    const c = client();
    c.io.wsConnect(`ws://127.0.0.1:${port}/`);
    await until(() => c.closes.length === 1, 10_000, 'the failure');
    expect(c.opens).toHaveLength(0);
    expect(c.closes[0].code).toBe(-1024);
    expect(c.closes[0].reason).toContain('WebSocket handshake failed');
    expect(c.closes[0].reason).toContain(why);
  });

  it('a server that never answers fails after handshakeTimeoutMs; a bad URL throws', async () => {
    const port = await rawServer(() => '');
    const c = client();
    c.io.wsConnectWith({ url: `ws://127.0.0.1:${port}/`, handshakeTimeoutMs: 200 });
    await until(() => c.closes.length === 1, 10_000);
    expect(c.closes[0].code).toBe(-1024);
    expect(c.closes[0].reason).toContain('handshakeTimeoutMs');
    expect(() => c.io.wsConnect('http://127.0.0.1/')).toThrow('ws:// or wss://');
    checkHandlerErrors();
  });
});
