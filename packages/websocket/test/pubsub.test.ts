// Pub/sub, send budgets and liveness: one frame to many subscribers, a slow reader that must
// not hold the others back or grow memory, the sent / queued / dropped outcomes and Writable,
// dead peers found by pings, idle connections, and shutdown's going-away close.
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { ConnId } from '@zero-io/core';
import '@zero-io/websocket';
import { RawWs, frame, startWs, until } from './helpers.js';

function open(port: number, path = '/'): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${path}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  });
}

describe('wsPublish', () => {
  it('reaches every subscriber with every message, in order, and counts them', async () => {
    const s = startWs({}, (ev, io) => {
      if (ev.type === 'WsOpen') expect(io.wsSubscribe(ev.conn, 'ticks')).toBe(true);
    });
    const clients = await Promise.all(Array.from({ length: 100 }, () => open(s.port)));
    const got = clients.map(() => [] as string[]);
    clients.forEach((c, i) => c.on('message', (d) => got[i].push(d.toString())));
    await until(() => s.io.wsSubscribers('ticks') === 100);
    for (let k = 0; k < 50; k++) {
      const r = s.io.wsPublish('ticks', `tick ${k}`);
      expect(r.subscribers).toBe(100);
      expect(r.sent + r.queued).toBe(100);
      expect(r.dropped).toBe(0);
    }
    await until(() => got.every((g) => g.length === 50), 20_000, 'every tick at every subscriber');
    for (const g of got) expect(g).toEqual(Array.from({ length: 50 }, (_, k) => `tick ${k}`));
    // A frame larger than a pool slot is built once in a run of slots.
    const big = Buffer.alloc(50_000, 0x42);
    expect(s.io.wsPublish('ticks', big).subscribers).toBe(100);
    await until(() => got.every((g) => g.length === 51), 20_000);
    expect(got[0][50]).toBe(big.toString());
    clients.forEach((c) => c.terminate());
    await until(() => s.io.wsSubscribers('ticks') === 0, 10_000, 'closed connections leaving the topic');
  });

  it('subscribe / unsubscribe are idempotent; broadcast to a list counts ids that are gone as dropped', async () => {
    const conns: ConnId[] = [];
    const s = startWs({}, (ev) => { if (ev.type === 'WsOpen') conns.push(ev.conn); });
    const a = await open(s.port);
    const b = await open(s.port);
    await until(() => conns.length === 2);
    expect(s.io.wsSubscribe(conns[0], 't')).toBe(true);
    expect(s.io.wsSubscribe(conns[0], 't')).toBe(false);
    expect(s.io.wsUnsubscribe(conns[0], 't')).toBe(true);
    expect(s.io.wsUnsubscribe(conns[0], 't')).toBe(false);
    expect(s.io.wsSubscribers('t')).toBe(0);
    expect(s.io.wsPublish('nobody', 'x').subscribers).toBe(0);
    const gotA = new Promise<string>((r) => a.once('message', (d) => r(d.toString())));
    const gotB = new Promise<string>((r) => b.once('message', (d) => r(d.toString())));
    const r = s.io.wsBroadcast([conns[0], conns[1], 123456789 as ConnId], 'to a list');
    expect(r).toMatchObject({ subscribers: 2, dropped: 1 });
    expect(await gotA).toBe('to a list');
    expect(await gotB).toBe('to a list');
    a.close(1000);
    b.close(1000);
  });
});

describe('a slow reader', () => {
  async function slowTicker(slowPolicy: 'drop' | 'close') {
    const subs: ConnId[] = [];
    const s = startWs({ maxBufferedBytes: 256 * 1024, slowPolicy }, (ev, io) => {
      if (ev.type === 'WsOpen') { io.wsSubscribe(ev.conn, 'ticker'); subs.push(ev.conn); }
    });
    const fast = await Promise.all(Array.from({ length: 10 }, () => open(s.port)));
    const counts = fast.map(() => 0);
    fast.forEach((c, i) => c.on('message', () => { counts[i]++; }));
    const slow = await RawWs.open(s.port, '/', '', { read: false });  // never reads
    await until(() => s.io.wsSubscribers('ticker') === 11);
    const slowConn = subs[10];
    const tick = Buffer.alloc(16 * 1024, 0x31);
    let dropped = 0;
    let maxBuffered = 0;
    const n = 1500;  // 24 MB to the slow reader: far past what the kernel buffers for it
    for (let k = 0; k < n; k++) {
      const r = s.io.wsPublish('ticker', tick);
      dropped += r.dropped;
      maxBuffered = Math.max(maxBuffered, s.io.wsBufferedAmount(slowConn));
      // The fast ones read as fast as ticks come: at most 8 ticks (128 KiB) are ever buffered for
      // them, well inside the budget (a synchronous burst of 16 would be the whole budget).
      if (k % 4 === 3) await until(() => counts.every((c) => c >= k - 3), 10_000, `the fast subscribers keeping up (tick ${k}: ${counts})`);
    }
    await until(() => counts.every((c) => c === n), 30_000, 'every tick at every fast subscriber');
    return { s, slow, slowConn, dropped, maxBuffered, fast };
  }

  it("drops the slow reader's ticks (counted), keeps the others whole and its memory bounded", async () => {
    const { s, slow, dropped, maxBuffered, fast } = await slowTicker('drop');
    expect(dropped).toBeGreaterThan(0);
    expect(maxBuffered).toBeLessThanOrEqual(256 * 1024 + 16 * 1024 + 14);
    expect(s.io.wsStats(s.ep)!.dropped).toBe(dropped);
    expect(slow.closed).toBe(false);
    fast.forEach((c) => c.terminate());
    slow.destroy();
  });

  it("with slowPolicy 'close' closes the slow reader with 1008 and only it", async () => {
    const { s, slowConn, dropped, fast } = await slowTicker('close');
    expect(dropped).toBeGreaterThan(0);
    await until(() => s.seen.closes.some((c) => c.conn === slowConn), 10_000, 'the slow reader closed');
    const c = s.seen.closes.find((x) => x.conn === slowConn)!;
    expect(c.code).toBe(1008);
    expect(s.seen.closes.filter((x) => x.conn !== slowConn)).toHaveLength(0);
    expect(s.io.wsStats(s.ep)!.closedSlow).toBe(1);
    fast.forEach((x) => x.terminate());
  });
});

describe('wsSend outcomes', () => {
  it("reports 'queued' past the mark and 'dropped' past the budget, then Writable once drained; nothing sent is lost", async () => {
    let conn = 0 as ConnId;
    const statuses: string[] = [];
    const s = startWs({ sendHighWaterMark: 64 * 1024, maxBufferedBytes: 512 * 1024 }, (ev) => {
      if (ev.type === 'WsOpen') conn = ev.conn;
    });
    const c = await RawWs.open(s.port, '/', '', { read: false });
    await until(() => conn !== 0);
    const msg = Buffer.alloc(32 * 1024, 0x77);
    for (let k = 0; k < 400 && statuses.at(-1) !== 'dropped'; k++) {
      statuses.push(s.io.wsSend(conn, msg));
      if (k % 8 === 7) await new Promise((r) => setTimeout(r, 1));
    }
    expect(statuses).toContain('sent');
    expect(statuses).toContain('queued');
    expect(statuses.at(-1)).toBe('dropped');
    const accepted = statuses.filter((x) => x !== 'dropped').length;
    expect(s.io.wsBufferedAmount(conn)).toBeLessThanOrEqual(512 * 1024 + 32 * 1024 + 14);  // the budget + one message
    c.sock.resume();
    await until(() => s.seen.writable.includes(conn), 20_000, 'Writable after the queue drained');
    await until(() => c.frames.length === accepted, 20_000, 'every accepted message at the peer');
    expect(c.frames.every((f) => f.payload.equals(msg))).toBe(true);
  });
});

describe('liveness', () => {
  it('a peer that never answers pings is closed with 1006 (origin timeout); one that does stays', async () => {
    const s = startWs({ pingIntervalMs: 250 });  // (the live client is served by this same process: room for a slow event loop)
    const live = await open(s.port);  // ws answers pings by itself
    const dead = await RawWs.open(s.port);  // reads, but never answers
    await until(() => s.seen.closes.length === 1, 10_000, 'the dead peer closed');
    expect(dead.frames.some((f) => f.opcode === 9)).toBe(true);
    expect(s.seen.closes[0]).toMatchObject({ code: 1006, origin: 'timeout' });
    expect(s.io.wsStats(s.ep)!.pingTimeouts).toBe(1);
    expect(live.readyState).toBe(WebSocket.OPEN);
    live.send('alive');
    await until(() => s.seen.messages.length === 1);
    live.close(1000);
  });

  it('an idle connection is closed with 1001 after idleTimeoutMs', async () => {
    const s = startWs({ idleTimeoutMs: 150, pingIntervalMs: 0 });
    const c = await RawWs.open(s.port);
    c.send(frame(1, 'one message, then silence'));
    await until(() => c.closeFrame() !== null, 10_000, 'the idle close');
    expect(c.closeFrame()).toEqual({ code: 1001, reason: 'idle timeout' });
  });

  it('shutdown sends every WebSocket a going-away close (1001)', async () => {
    const s = startWs();
    const a = await open(s.port);
    const code = new Promise<number>((r) => a.once('close', (c) => r(c)));
    s.stop();
    expect(await code).toBe(1001);
  });
});
