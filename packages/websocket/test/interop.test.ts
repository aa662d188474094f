// The server against real peers: the `ws` client (npm), Python's `websockets` (Debian
// python3-websockets) and fetch; plaintext and TLS; upgrades on their own listener, beside HTTP
// routes, and held for the application's answer.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import '@zero-io/tcp';
import { ZeroResponse } from '@zero-io/http';
import '@zero-io/websocket';
import { selfSignedCert } from '../../http/test/helpers.js';
import { startWs, until } from './helpers.js';

function connect(url: string, protocols?: string[], opts: WebSocket.ClientOptions = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, opts);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
  });
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; binary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data, binary) => resolve({ data: data as Buffer, binary })));
}

function closed(ws: WebSocket): Promise<{ code: number; reason: string }> {
  return new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('with the ws client (npm)', () => {
  it('echoes text and binary messages of every length encoding intact', async () => {
    const s = startWs({ maxMessageSize: 4 << 20 }, undefined, { poolSlotCount: 8192 });
    const ws = await connect(`ws://127.0.0.1:${s.port}/`);
    for (const n of [0, 1, 125, 126, 127, 65_535, 65_536, 200_000, 3 << 20]) {
      const bin = Buffer.alloc(n);
      for (let i = 0; i < n; i++) bin[i] = (i * 7 + n) & 0xff;
      ws.send(bin);
      const b = await nextMessage(ws);
      expect(b.binary).toBe(true);
      expect(sha(b.data)).toBe(sha(bin));
      const text = 'é€😀a'.repeat(Math.ceil(n / 10)).slice(0, Math.max(0, n - 3));
      ws.send(text);
      const t = await nextMessage(ws);
      expect(t.binary).toBe(false);
      expect(t.data.toString()).toBe(text);
    }
    ws.close(1000);
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0].code).toBe(1000);
  });

  it('reassembles messages the client fragments, and answers pings with their payload', async () => {
    const s = startWs();
    const ws = await connect(`ws://127.0.0.1:${s.port}/`);
    const parts = [Buffer.from('frag-'), Buffer.alloc(70_000, 0x61), Buffer.from('-end')];
    ws.send(parts[0], { fin: false });
    ws.ping(Buffer.from('between fragments'));
    ws.send(parts[1], { fin: false });
    ws.send(parts[2], { fin: true });
    const pong = new Promise<Buffer>((r) => ws.once('pong', (d) => r(d)));
    const m = await nextMessage(ws);
    expect(m.data.equals(Buffer.concat(parts))).toBe(true);
    expect((await pong).toString()).toBe('between fragments');
    expect(s.seen.messages.filter((x) => x.kind === 'WsBinary')).toHaveLength(1);
    ws.close();
  });

  it('tells the path, query, Origin and the subprotocol chosen (the server\'s preference wins)', async () => {
    const s = startWs({ subprotocols: ['v2.chat', 'v1.chat'], paths: ['/chat'] });
    const ws = await connect(`ws://127.0.0.1:${s.port}/chat?room=7`, ['v1.chat', 'v2.chat'], { origin: 'https://app.example' });
    expect(ws.protocol).toBe('v2.chat');
    await until(() => s.seen.opens.length === 1);
    expect(s.seen.opens[0]).toMatchObject({ path: '/chat', query: 'room=7', subprotocol: 'v2.chat', origin: 'https://app.example' });
    const none = await connect(`ws://127.0.0.1:${s.port}/chat`);
    expect(none.protocol).toBe('');
    await until(() => s.seen.opens.length === 2);
    expect(s.seen.opens[1].subprotocol).toBeNull();
    ws.close();
    none.close();
  });

  it('closes with the full handshake both ways, and Disconnected reports the code', async () => {
    const s = startWs({}, (ev, io) => {
      if (ev.type === 'StreamFrame' && ev.text === 'close me') {
        expect(io.wsClose(ev.conn, 4000, 'as you asked')).toBe(true);
        expect(io.wsSend(ev.conn, 'too late')).toBe('closed');
        expect(io.wsClose(ev.conn, 1000)).toBe(false);
        return true;
      }
    });
    const a = await connect(`ws://127.0.0.1:${s.port}/`);
    const aClosed = closed(a);
    a.send('close me');
    expect(await aClosed).toEqual({ code: 4000, reason: 'as you asked' });
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0]).toMatchObject({ code: 4000, origin: 'local' });
    expect(s.seen.closes[0].reason).toContain('as you asked');

    const b = await connect(`ws://127.0.0.1:${s.port}/`);
    const bClosed = closed(b);
    b.close(4321, 'client done');
    expect((await bClosed).code).toBe(4321);  // the server echoed the code
    await until(() => s.seen.closes.length === 2);
    expect(s.seen.closes[1]).toMatchObject({ code: 4321, origin: 'peer' });
    expect(s.seen.closes[1].reason).toContain('client done');

    const c = await connect(`ws://127.0.0.1:${s.port}/`);
    c.terminate();  // no close frame: abnormal closure
    await until(() => s.seen.closes.length === 3);
    expect(s.seen.closes[2].code).toBe(1006);
  });

  it('refuses what is not a valid upgrade with the right HTTP status', async () => {
    const s = startWs({ paths: ['/ws'], allowedOrigins: ['https://ok.example'] });
    await expect(connect(`ws://127.0.0.1:${s.port}/other`, undefined, { origin: 'https://ok.example' })).rejects.toThrow('HTTP 404');
    await expect(connect(`ws://127.0.0.1:${s.port}/ws`, undefined, { origin: 'https://evil.example' })).rejects.toThrow('HTTP 403');
    await expect(connect(`ws://127.0.0.1:${s.port}/ws`)).rejects.toThrow('HTTP 403');
    const plain = await fetch(`http://127.0.0.1:${s.port}/ws`);
    expect(plain.status).toBe(426);
    const ok = await connect(`ws://127.0.0.1:${s.port}/ws`, undefined, { origin: 'https://ok.example' });
    ok.close();
    expect(s.io.wsStats(s.ep)!.refused).toBe(4);
  });

  it('serves wss:// with the TLS stack of @zero-io/tcp', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zio-wss-'));
    const { cert, key } = await selfSignedCert(dir);
    const s = startWs({}, undefined, {}, (io) => io.wsListenTls('127.0.0.1:0', { cert, key }));
    const ws = await connect(`wss://127.0.0.1:${s.port}/`, undefined, { rejectUnauthorized: false });
    const big = Buffer.alloc(300_000, 0x5a);
    ws.send(big);
    expect(sha((await nextMessage(ws)).data)).toBe(sha(big));
    ws.send('over tls');
    expect((await nextMessage(ws)).data.toString()).toBe('over tls');
    const done = closed(ws);
    ws.close(1000);
    expect((await done).code).toBe(1000);
  });
});

describe('beside HTTP routes (wsServe on an httpListen listener)', () => {
  it('upgrades /live and answers every other request as HTTP', async () => {
    const hello = ZeroResponse.ok().text('plain http\n');
    const s = startWs({}, (ev, io) => {
      if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, hello);
    }, {}, (io) => {
      const ep = io.httpListen('127.0.0.1:0');
      io.wsServe(ep, { paths: ['/live'] });
      return ep;
    });
    expect(await (await fetch(`http://127.0.0.1:${s.port}/`)).text()).toBe('plain http\n');
    const ws = await connect(`ws://127.0.0.1:${s.port}/live`);
    ws.send('on the same port');
    expect((await nextMessage(ws)).data.toString()).toBe('on the same port');
    // An upgrade to another path is an HTTP request the application answers.
    await expect(connect(`ws://127.0.0.1:${s.port}/elsewhere`)).rejects.toThrow('HTTP 200');
    ws.close(1000);
    await until(() => s.seen.closes.some((c) => c.code === 1000));
  });
});

describe('manual handshake (handshake: "manual")', () => {
  it('holds the upgrade until wsAccept (later, with a header) or wsReject', async () => {
    const s = startWs({ handshake: 'manual', subprotocols: ['a', 'b'] }, (ev, io) => {
      if (ev.type === 'WsUpgrade') {
        const conn = ev.conn;
        const token = ev.header('authorization');
        setTimeout(() => {  // an asynchronous check (a database, a token service)
          if (token === 'Bearer good') io.wsAccept(conn, { protocol: 'b', headers: { 'X-Session': '42' } });
          else io.wsReject(conn, 401, 'bad token');
        }, 20);
      }
    });
    let headers: Record<string, string | string[] | undefined> = {};
    const ws = new WebSocket(`ws://127.0.0.1:${s.port}/`, ['a', 'b'], { headers: { Authorization: 'Bearer good' } });
    ws.once('upgrade', (res) => { headers = res.headers; });
    await new Promise((r, j) => { ws.once('open', r); ws.once('error', j); });
    expect(ws.protocol).toBe('b');
    expect(headers['x-session']).toBe('42');
    await until(() => s.seen.opens.length === 1);
    expect(s.seen.opens[0].subprotocol).toBe('b');
    ws.send('accepted');
    expect((await nextMessage(ws)).data.toString()).toBe('accepted');
    await expect(connect(`ws://127.0.0.1:${s.port}/`, undefined, { headers: { Authorization: 'Bearer bad' } })).rejects.toThrow('HTTP 401');
    ws.close();
  });
});

describe('with Python websockets (Debian python3-websockets)', () => {
  let python = '/usr/bin/python3';
  beforeAll(() => { python = process.env.ZIO_TEST_PYTHON ?? '/usr/bin/python3'; });

  it('echoes, pings and closes with a client of another implementation', async () => {
    const s = startWs({ subprotocols: ['echo'] });
    const script = `
import asyncio, sys, websockets
async def main():
    async with websockets.connect("ws://127.0.0.1:${s.port}/py", subprotocols=["echo"], max_size=None) as ws:
        assert ws.subprotocol == "echo", ws.subprotocol
        for n in (0, 10, 126, 70000, 1000000):
            b = bytes((i * 13) & 255 for i in range(n))
            await ws.send(b)
            assert await ws.recv() == b, n
        await ws.send("héllo")
        assert await ws.recv() == "héllo"
        pong = await ws.ping(b"py")
        await asyncio.wait_for(pong, 5)
        await ws.close(code=4100, reason="py done")
        print("ok", ws.close_code)
asyncio.run(main())
`;
    const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
      const p = spawn(python, ['-c', script]);
      let stdout = '', stderr = '';
      p.stdout.on('data', (d) => { stdout += d; });
      p.stderr.on('data', (d) => { stderr += d; });
      p.on('close', (code) => resolve({ code, stdout, stderr }));
    });
    expect(out.stderr).toBe('');
    expect(out.stdout.trim()).toBe('ok 4100');
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0]).toMatchObject({ code: 4100, origin: 'peer' });
  });
});
