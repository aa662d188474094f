// Recovery: after Drain (the free stack exhausted by held SendBuffers) and after a full
// connection table, accepts resume and the new connections are served.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, isIoError, type ConnId, type PressureState, type SendBuffer } from '@zero-io/core';
import '@zero-io/tcp';
import { echoHandler, onError, randomPayload, until } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

/** A node:net client: resolves 'accepted' when an echo comes back, 'refused' when closed without one. */
function probe(port: number, payload: Buffer): Promise<'accepted' | 'refused'> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let got = 0;
    s.on('connect', () => s.write(payload));
    s.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= payload.length) {
        s.destroy();
        resolve(Buffer.concat(chunks).equals(payload) ? 'accepted' : 'refused');
      }
    });
    s.on('error', () => {});
    s.on('close', () => { if (got < payload.length) resolve('refused'); });
  });
}

describe('recovery after Drain', () => {
  it('accepts are refused in Drain and resume once the held slots are released', async () => {
    // 64 slots: 32 RX, 32 on the free stack.
    const io = new Io({ poolSlotCount: 64 });
    const ep = io.tcpListen('127.0.0.1:0');
    const port = io.localAddress(ep).port;
    const transitions: { state: PressureState; previous: PressureState }[] = [];
    const echo = echoHandler();
    const h = io.runSync((ev) => {
      if (ev.type === 'PoolPressure') transitions.push({ state: ev.state, previous: ev.previous });
      echo(ev, io);
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    const state = (): PressureState => (transitions.length ? transitions[transitions.length - 1].state : 'Healthy');

    // Healthy: a client is served.
    expect(await probe(port, randomPayload(1000, 1))).toBe('accepted');
    const free0 = io.poolStats().freeStack.current;

    // Hold SendBuffers until the free stack is exhausted: sendBuffer() then says PoolExhausted.
    const held: SendBuffer[] = [];
    let exhausted: unknown = null;
    for (let i = 0; i < 1000 && exhausted === null; i++) {
      try { held.push(io.sendBuffer()); } catch (e) { exhausted = e; }
    }
    expect(isIoError(exhausted) && exhausted.kind).toBe('PoolExhausted');
    expect((exhausted as { pool?: string }).pool).toBe('FreeStack');
    await until(() => state() === 'Drain', 5000, 'Drain');
    expect(io.poolPressure().pool).toBe('freeStack');

    // In Drain a new connection is closed at accept.
    const refused0 = io.poolPressure().acceptsRefused;
    expect(await probe(port, randomPayload(100, 2))).toBe('refused');
    expect(io.poolPressure().acceptsRefused).toBe(refused0 + 1);

    // Release: the cascade steps down (after its dwell), then accepts resume.
    for (const b of held) b.release();
    await until(() => state() !== 'Drain', 10_000, 'the cascade to leave Drain');
    await until(() => state() === 'Healthy', 10_000, 'Healthy');
    expect(io.poolStats().freeStack.current).toBe(free0);
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => probe(port, randomPayload(20_000, 10 + i))));
    expect(results).toEqual(Array(8).fill('accepted'));
    expect(io.poolPressure().acceptsRefused).toBe(refused0 + 1);
  });
});

describe('recovery after a full connection table', () => {
  it('beyond maxConnections new clients are closed at accept; after some close, accepts resume', async () => {
    const io = new Io({ poolSlotCount: 256, maxConnections: 4 });
    const ep = io.tcpListen('127.0.0.1:0');
    const port = io.localAddress(ep).port;
    const open = new Set<ConnId>();
    let disconnected = 0;
    const echo = echoHandler();
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') open.add(ev.conn);
      if (ev.type === 'Disconnected') { open.delete(ev.conn); disconnected++; }
      echo(ev, io);
    }, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });

    // Fill the table with 4 clients that stay connected (each echoed once, so each is served).
    const holders: net.Socket[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      await new Promise<void>((res) => { s.once('data', () => res()); s.once('connect', () => s.write('hi')); });
      holders.push(s);
    }
    expect(open.size).toBe(4);
    expect(io.poolStats().connections).toBe(4);

    // Full: two more are closed at accept; an outbound connect is refused with TableFull.
    expect(await probe(port, randomPayload(100, 3))).toBe('refused');
    expect(await probe(port, randomPayload(100, 4))).toBe('refused');
    await until(() => io.poolStats().counters.connsRejected === 2, 5000, 'two rejections');
    let full: unknown = null;
    try { io.tcpConnect(`127.0.0.1:${port}`); } catch (e) { full = e; }
    expect(isIoError(full) && full.kind).toBe('TableFull');

    // Two holders leave; once their Disconnected events are in, new clients are served.
    holders[0].destroy();
    holders[1].destroy();
    await until(() => disconnected === 2 && open.size === 2, 5000, 'two Disconnected');
    const results = await Promise.all([probe(port, randomPayload(30_000, 5)), probe(port, randomPayload(30_000, 6))]);
    expect(results).toEqual(['accepted', 'accepted']);
    expect(io.poolStats().counters.connsRejected).toBe(2);
    // The two holders that stayed were never disturbed.
    for (const s of holders.slice(2)) {
      const back = new Promise<Buffer>((res) => s.once('data', res));
      s.write('still here');
      expect((await back).toString()).toBe('still here');
      s.destroy();
    }
  });
});
