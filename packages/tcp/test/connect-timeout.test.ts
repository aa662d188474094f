// connectTimeoutMs: a connect to a black hole ends with ConnectTimeout instead of hanging for
// the kernel's two minutes of SYN retries.
import { afterEach, describe, expect, it } from 'vitest';
import { Io, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { blackHole, listenLocal, onError, until } from './helpers.js';
import net from 'node:net';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function client() {
  const io = new Io({ poolSlotCount: 64 });
  const log: { type: string; conn: ConnId; reason?: string; origin?: string; error?: unknown; at: number }[] = [];
  const h = io.runSync((ev) => {
    if (ev.type === 'Connected' || ev.type === 'Disconnected') {
      log.push({
        type: ev.type, conn: ev.conn, at: performance.now(),
        ...(ev.type === 'Disconnected' ? { reason: ev.reason, origin: ev.origin, error: ev.error } : {}),
      });
    }
  }, { onError });
  cleanups.push(async () => { await h.shutdown({ timeoutMs: 200 }); io.shutdown(); });
  return { io, log };
}

describe('connectTimeoutMs', () => {
  it('a black-holed address ends with ConnectTimeout after the bound, naming the address', async () => {
    const hole = await blackHole();
    cleanups.push(() => hole.close());
    const c = client();
    const t0 = performance.now();
    const conn = c.io.tcpConnectWith({ host: hole.host, port: hole.port, connectTimeoutMs: 300 });
    await until(() => c.log.length > 0, 10_000, 'the timeout');
    const [d] = c.log;
    expect(d).toMatchObject({
      type: 'Disconnected', conn, origin: 'timeout',
      reason: `connect timed out: no connection within connectTimeoutMs (connect to 127.0.0.1:${hole.port})`,
    });
    expect(d.error).toMatchObject({ kind: 'ConnectTimeout' });
    expect(d.at - t0).toBeGreaterThanOrEqual(290);
  });

  it('does not fire once connected, and 0 means no bound', async () => {
    const server = net.createServer((s) => s.on('data', () => {}));
    const port = await listenLocal(server);
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const c = client();
    const conn = c.io.tcpConnectWith({ host: '127.0.0.1', port, connectTimeoutMs: 100 });
    await until(() => c.log.length > 0, 5000, 'Connected');
    // Wait well past the bound: still connected.
    await new Promise((r) => setTimeout(r, 300));
    expect(c.log).toEqual([expect.objectContaining({ type: 'Connected', conn })]);
    c.io.tcpConnectWith({ host: '127.0.0.1', port, connectTimeoutMs: 0 });
    await until(() => c.log.length === 2, 5000, 'the second Connected');
    expect(c.log[1].type).toBe('Connected');
  });

  it('rejects a bad value by name', () => {
    const io = new Io({ poolSlotCount: 64 });
    cleanups.push(() => io.shutdown());
    expect(() => io.tcpConnectWith({ host: '127.0.0.1', port: 1, connectTimeoutMs: -1 }))
      .toThrow(expect.objectContaining({ kind: 'InvalidConfig', key: 'connectTimeoutMs' }));
  });
});
