import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Io, type ConnId, type PressureState } from '@zero-io/core';
import '@zero-io/tcp';

const tick = () => new Promise((r) => setTimeout(r, 1));

describe('backpressure cascade', () => {
  it('climbs Healthy -> Drain under a stalled reader, applies each policy, and comes back with nothing corrupted', async () => {
    // 64 slots: 32 RX, 32 on the free stack; bulk TX budget 16 slots; thresholds 60/80/90.
    const io = new Io({ poolSlotCount: 64, maxWriteQueueBytes: 64 << 20 });
    const ep = io.tcpListen('127.0.0.1:0');
    const port = io.localAddress(ep).port;
    const p0 = io.poolPressure();
    expect(p0.state).toBe('Healthy');
    expect(p0.budgets).toEqual({ rx: 32, txCritical: 6, txBulk: 16, scratch: 3 });
    expect(p0.thresholds).toEqual({ warning: 60, critical: 80, drain: 90 });

    const transitions: { state: PressureState; previous: PressureState; pct: number }[] = [];
    let conn: ConnId | undefined;
    let rejectedSeen = 0;
    const pump = (): void => {
      const n = io.poll(0);
      for (let i = 0; i < n; i++) {
        const ev = io.nextEvent()!;
        if (ev.type === 'Connected' && conn === undefined) conn = ev.conn;
        if (ev.type === 'PoolPressure') transitions.push({ state: ev.state, previous: ev.previous, pct: ev.utilizationPct });
      }
    };
    const state = (): PressureState => (transitions.length ? transitions[transitions.length - 1].state : 'Healthy');

    const got: Buffer[] = [];
    const client = net.connect(port, '127.0.0.1');
    client.on('data', (d) => got.push(d));
    while (conn === undefined) { pump(); await tick(); }
    client.pause();  // a stalled reader: kernel buffers fill, then our TX slots

    const pattern = Buffer.alloc(1 << 20);
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 7 + (i >> 10)) & 0xff;
    let sent = 0;
    const chunk = 2048;  // one slot per write, one tick per write: the state follows each step
    for (let round = 0; round < 200000 && state() !== 'Drain'; round++) {
      const at = sent % pattern.length;
      sent += io.streamWrite(conn, pattern, at, Math.min(chunk, pattern.length - at));
      pump();
      if (round % 256 === 0) await tick();
    }
    expect(state()).toBe('Drain');
    // Drain policy: bulk TX stays capped at its budget (16 slots)...
    const capped = io.poolPressure().writesCapped;
    const at = sent % pattern.length;
    const want = Math.min(64 * 1024, pattern.length - at);
    const took = io.streamWrite(conn, pattern, at, want);
    sent += took;
    expect(took).toBeLessThan(want);
    expect(io.poolPressure().writesCapped).toBeGreaterThan(capped);
    expect(io.poolStats().txRing.current).toBeLessThanOrEqual(16);
    // ...and new connections are closed at accept.
    const late = net.connect(port, '127.0.0.1');
    late.on('error', () => {});
    late.on('close', () => { rejectedSeen++; });
    for (let i = 0; i < 500 && rejectedSeen === 0; i++) { pump(); await tick(); }
    expect(rejectedSeen).toBe(1);
    expect(io.poolPressure().acceptsRefused).toBe(1);

    // The reader resumes: the cascade steps down with hysteresis to Healthy.
    client.resume();
    for (let i = 0; i < 5000 && state() !== 'Healthy'; i++) { pump(); await tick(); }
    expect(state()).toBe('Healthy');
    for (let i = 0; i < 5000 && got.reduce((n, b) => n + b.length, 0) < sent; i++) { pump(); await tick(); }

    // Each event continues from the previous state; every state was visited going up.
    let prev: PressureState = 'Healthy';
    for (const t of transitions) { expect(t.previous).toBe(prev); prev = t.state; }
    const order = ['Healthy', 'Warning', 'Critical', 'Drain'];
    const up = transitions.filter((t) => order.indexOf(t.state) > order.indexOf(t.previous)).map((t) => t.state);
    expect(up.slice(0, 3)).toEqual(['Warning', 'Critical', 'Drain']);
    const down = transitions.filter((t) => order.indexOf(t.state) < order.indexOf(t.previous));
    expect(down.length).toBeGreaterThan(0);
    // Hysteresis: a state is left only 10 points below where it was entered.
    for (const t of down) expect(t.pct).toBeLessThan(p0.thresholds[t.previous.toLowerCase() as 'warning' | 'critical' | 'drain'] - 10);

    // No corruption: the reader got exactly the accepted bytes, in order.
    const all = Buffer.concat(got);
    expect(all.length).toBe(sent);
    for (let off = 0; off < all.length; off += pattern.length) {
      const n = Math.min(pattern.length, all.length - off);
      expect(all.subarray(off, off + n).equals(pattern.subarray(0, n))).toBe(true);
    }
    client.destroy();
    io.shutdown();
  }, 60_000);
});
