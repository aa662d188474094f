// What review found could go wrong under pressure: a burst of more messages than the event ring
// holds in one read, a close while a backlog waits in the engine, the slow-reader close frame
// reaching the slow reader, a ping flood from a peer that never reads, and reading a refused
// upgrade's request in the handler that refused it.
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import type { ConnId } from '@zero-io/core';
import '@zero-io/websocket';
import { RawWs, frame, startWs, until } from './helpers.js';

describe('bursts and backlogs', () => {
  it('2,000 small messages in one write (more than the event ring holds) are all echoed, in order', async () => {
    const s = startWs();
    const c = await RawWs.open(s.port);
    const n = 2000;
    c.send(Buffer.concat(Array.from({ length: n }, (_, i) => frame(1, `m${i}`))));
    await until(() => c.frames.length === n, 10_000, 'every echo');
    expect(c.frames.map((f) => f.payload.toString())).toEqual(Array.from({ length: n }, (_, i) => `m${i}`));
  });

  it('a peer that closes while a backlog waits gets every frame, then the close echo', async () => {
    let conn = 0 as ConnId;
    const s = startWs({ maxBufferedBytes: 8 << 20 }, (ev) => { if (ev.type === 'WsOpen') conn = ev.conn; });
    const c = await RawWs.open(s.port, '/', '', { read: false });
    await until(() => conn !== 0);
    const msg = Buffer.alloc(64 * 1024, 0x61);
    let sent = 0;
    for (let i = 0; i < 64; i++) if (s.io.wsSend(conn, msg) !== 'dropped') sent++;
    expect(s.io.wsBufferedAmount(conn)).toBeGreaterThan(1 << 20);  // far more than the kernel takes
    c.send(frame(8, Buffer.from([0x03, 0xe8])));  // close 1000, then read everything
    c.sock.resume();
    await until(() => c.closeFrame() !== null, 20_000, 'the close echo');
    const data = c.frames.filter((f) => f.opcode === 2);
    expect(data).toHaveLength(sent);
    expect(data.every((f) => f.payload.equals(msg))).toBe(true);
    expect(c.frames.at(-1)!.opcode).toBe(8);
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0]).toMatchObject({ code: 1000, origin: 'peer' });
  });

  it("slowPolicy 'close': the slow reader, once it reads, finds its data intact and the 1008 close frame", async () => {
    let conn = 0 as ConnId;
    const s = startWs({ maxBufferedBytes: 1 << 20, slowPolicy: 'close' }, (ev) => { if (ev.type === 'WsOpen') conn = ev.conn; });
    const c = await RawWs.open(s.port, '/', '', { read: false });
    await until(() => conn !== 0);
    const msg = Buffer.alloc(64 * 1024, 0x62);
    const statuses: string[] = [];
    for (let i = 0; i < 200 && statuses.at(-1) !== 'dropped'; i++) statuses.push(s.io.wsSend(conn, msg));
    expect(statuses.at(-1)).toBe('dropped');
    c.sock.resume();
    await until(() => c.closeFrame() !== null, 20_000, 'the 1008 close frame');
    expect(c.closeFrame()!.code).toBe(1008);
    const data = c.frames.filter((f) => f.opcode === 2);
    expect(data).toHaveLength(statuses.length - 1);
    expect(data.every((f) => f.payload.equals(msg))).toBe(true);
  });
});

describe('hostile peers', () => {
  it('a ping flood from a peer that never reads leaves the server memory bounded', async () => {
    let conn = 0 as ConnId;
    const s = startWs({ maxBufferedBytes: 256 * 1024 }, (ev) => { if (ev.type === 'WsOpen') conn = ev.conn; });
    const c = await RawWs.open(s.port, '/', '', { read: false });
    await until(() => conn !== 0);
    const ping = frame(9, Buffer.alloc(125, 1));
    const burst = Buffer.concat(Array.from({ length: 512 }, () => ping));
    for (let i = 0; i < 200; i++) {  // 13 MB of pings
      if (!c.sock.write(burst)) await new Promise((r) => c.sock.once('drain', r));
      if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
    }
    await new Promise((r) => setTimeout(r, 100));
    expect(s.io.wsBufferedAmount(conn)).toBeLessThanOrEqual(256 * 1024 + 200);
    c.destroy();
  });

  it('a refused upgrade can still be read in the handler that refused it', async () => {
    const seen: string[] = [];
    const s = startWs({ handshake: 'manual' }, (ev, io) => {
      if (ev.type === 'WsUpgrade') {
        io.wsReject(ev.conn, 401, 'no token');
        seen.push(`${ev.path} ${ev.header('x-who')}`);
      }
    });
    const c = await RawWs.open(s.port, '/private', 'X-Who: tester\r\n');
    expect(c.status).toBe(401);
    expect(seen).toEqual(['/private tester']);
  });
});

describe('what a new user tried (trial findings)', () => {
  it('a 5 MiB snapshot sent on WsOpen goes out whole (only the 101 was buffered)', async () => {
    const statuses: string[] = [];
    const big = Buffer.alloc(5 << 20, 0x35);
    const s = startWs({}, (ev, io) => { if (ev.type === 'WsOpen') statuses.push(io.wsSend(ev.conn, big)); });
    const c = await RawWs.open(s.port);
    await until(() => c.frames.length === 1, 20_000, 'the snapshot');
    expect(statuses).toEqual(['queued']);
    expect(c.frames[0].payload.equals(big)).toBe(true);
  });

  it('an echo that pauses reading on queued loses nothing, whatever the sizes', async () => {
    const s = startWs({}, (ev, io) => {
      if (ev.type === 'StreamFrame') {
        if (io.wsSend(ev.conn, ev.data, ev.kind === 'WsText') === 'queued') io.pauseRecv(ev.conn);
        return true;
      }
      if (ev.type === 'Writable') io.resumeRecv(ev.conn);
    }, { poolSlotCount: 8192 });
    const c = await RawWs.open(s.port);
    const msgs = Array.from({ length: 12 }, (_, i) => Buffer.alloc(900_000 + i, i));
    c.send(Buffer.concat(msgs.map((m) => frame(2, m))));
    await until(() => c.frames.length === msgs.length, 30_000, 'every echo');
    c.frames.forEach((f, i) => expect(f.payload.equals(msgs[i])).toBe(true));
  });

  it('a refused upgrade ends with a Disconnected that says why; 426 names what it needs', async () => {
    const s = startWs({ paths: ['/ws'] });
    const c = await RawWs.open(s.port, '/nope');
    expect(c.status).toBe(404);
    await until(() => s.seen.closes.length === 1);
    expect(s.seen.closes[0].code).toBe(-1020);
    expect(s.seen.closes[0].reason).toContain('no WebSocket is served at this path');
    const v = await new Promise<string>((resolve) => {
      const sock = net.connect(s.port, '127.0.0.1', () => sock.write('GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n'));
      let b = '';
      sock.on('data', (d) => { b += d; });
      sock.on('close', () => resolve(b));
    });
    expect(v).toMatch(/^HTTP\/1\.1 426 /);
    expect(v).toContain('Sec-WebSocket-Version: 13\r\n');
  });

  it('wrong arguments throw IoErrors that say what to pass', () => {
    const s = startWs();
    expect(() => s.io.wsSend(1 as ConnId, 42 as unknown as string)).toThrow(expect.objectContaining({ kind: 'InvalidArgument' }));
    expect(() => s.io.wsSend('abc' as unknown as ConnId, 'x')).toThrow('conn must be a connection id');
    expect(s.io.wsSend(123456 as ConnId, 'x')).toBe('closed');
    expect(() => s.io.wsListenWith({ port: 0, host: '127.0.0.1', paths: ['chat'] })).toThrow("starts with '/'");
    expect(() => s.io.wsListenWith({ port: 0, host: '127.0.0.1', maxMessageSize: 64 << 20 })).toThrow('raise poolSlotCount or poolSlotSize');
  });
});

describe('maxFrameSize, bufferedAmount, a SendBuffer broadcast', () => {
  it('a frame over maxFrameSize closes with 1009 even when the message limit is larger', async () => {
    const s = startWs({ maxFrameSize: 1000, maxMessageSize: 100_000 });
    const ok = await RawWs.open(s.port);
    ok.send(Buffer.concat([frame(2, Buffer.alloc(1000), { fin: false }), frame(0, Buffer.alloc(1000))]));  // 2 frames of 1000: fine
    await until(() => ok.frames.length === 1);
    expect(ok.frames[0].payload.length).toBe(2000);
    const bad = await RawWs.open(s.port);
    bad.send(frame(2, Buffer.alloc(1001)));
    await until(() => bad.closeFrame() !== null);
    expect(bad.closeFrame()!.code).toBe(1009);
  });

  it('a SendBuffer is broadcast to a list of connections (framed once); bufferedAmount is wsBufferedAmount', async () => {
    const conns: ConnId[] = [];
    const s = startWs({}, (ev) => { if (ev.type === 'WsOpen') conns.push(ev.conn); });
    const a = await RawWs.open(s.port);
    const b = await RawWs.open(s.port);
    await until(() => conns.length === 2);
    const buf = s.io.sendBuffer(64);
    buf.write('from a SendBuffer');
    const r = s.io.wsBroadcast(conns, buf);
    buf.release();
    expect(r).toMatchObject({ subscribers: 2, dropped: 0 });
    await until(() => a.frames.length === 1 && b.frames.length === 1);
    expect(a.frames[0]).toMatchObject({ opcode: 2 });
    expect(a.frames[0].payload.toString()).toBe('from a SendBuffer');
    expect(s.io.bufferedAmount(conns[0])).toBe(s.io.wsBufferedAmount(conns[0]));
  });
});
