// What review found could go wrong under pressure: a burst of more messages than the event ring
// holds in one read, a close while a backlog waits in the engine, the slow-reader close frame
// reaching the slow reader, a ping flood from a peer that never reads, and reading a refused
// upgrade's request in the handler that refused it.
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
