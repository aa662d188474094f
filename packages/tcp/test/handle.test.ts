import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Io, IoHandle, IoError, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/tcp';
import { entries, onError, until } from './helpers.js';

const workerFile = fileURLToPath(new URL('./fixtures/handle-worker.mjs', import.meta.url));

describe('IoHandle', () => {
  it('takes writes from 4 worker threads: nothing lost, nothing reordered per sender', async () => {
    const io = new Io({ maxWriteQueueBytes: 8 << 20, handleQueue: 256 });
    const events: Event['type'][] = [];
    let conn: ConnId | undefined;
    const ep = io.tcpListen('127.0.0.1:0');
    const h = io.runSync((ev) => {
      events.push(ev.type);
      if (ev.type === 'Connected') conn = ev.conn;
    }, { onError });
    try {
      let text = '';
      const client = net.connect(io.localAddress(ep).port, '127.0.0.1');
      client.setEncoding('utf8');
      client.on('data', (d) => { text += d; });
      await until(() => conn !== undefined, 5000, 'connected');
      const count = 20_000;
      const workers = [0, 1, 2, 3].map((k) => new Worker(workerFile, {
        workerData: { core: entries.core, handle: structuredClone(io.handle()), conn, k, count },
      }));
      const results = await Promise.all(workers.map((w) => new Promise<{ full: number }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      })));
      const total = [0, 1, 2, 3].reduce((n, k) => n + count * `w${k}:`.length + Array.from({ length: count }, (_, s) => `${s}\n`.length).reduce((a, b) => a + b, 0), 0);
      await until(() => text.length >= total, 20_000, `all ${total} bytes (have ${text.length})`);
      const next = [0, 0, 0, 0];
      for (const line of text.trimEnd().split('\n')) {
        const m = /^w(\d):(\d+)$/.exec(line);
        expect(m).not.toBeNull();
        const k = Number(m![1]);
        expect(Number(m![2])).toBe(next[k]);
        next[k]++;
      }
      expect(next).toEqual([count, count, count, count]);
      expect(events).not.toContain('HandleRejected');
      const st = io.poolStats().counters;
      expect(st.handleCommands).toBe(4 * count);
      // A 256-command queue under 4 writers fills up: callers got PoolExhausted and retried.
      const full = results.reduce((n, r) => n + r.full, 0);
      expect(full).toBe(st.handleQueueFull);
      // Redundant wakes are elided: far fewer eventfd writes than commands.
      expect(st.handleWakes).toBeLessThan(4 * count);
      client.destroy();
    } finally {
      h.stop();
      io.shutdown();
    }
  }, 60_000);

  it('reports commands the shard cannot carry out as HandleRejected events, and ShardClosed after shutdown', async () => {
    const io = new Io();
    const handle = io.handle();
    expect(io.handle()).toBe(handle);
    const got: { type: string; op?: string; length?: number; reason?: string }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'HandleRejected') got.push({ type: ev.type, op: ev.op, length: ev.length, reason: ev.reason });
    }, { onError });
    const stale = (5 * 1048576 + 7) as ConnId;  // never opened
    handle.streamWrite(stale, Buffer.from('lost?'));
    await until(() => got.length === 1, 5000, 'HandleRejected');
    expect(got[0]).toEqual({ type: 'HandleRejected', op: 'streamWrite', length: 5, reason: 'the connection is closed (stale id)' });
    h.stop();
    const id = handle.id;
    io.shutdown();
    let err: IoError | undefined;
    try { handle.streamWrite(stale, Buffer.from('x')); } catch (e) { err = e as IoError; }
    expect(err?.kind).toBe('ShardClosed');
    expect(() => IoHandle.from(id)).toThrowError(/gone/);
  });

  it('refuses a write that does not fit whole: nothing of it is sent, HandleRejected says how much', async () => {
    const io = new Io({ maxWriteQueueBytes: 4096 });
    const ep = io.tcpListen('127.0.0.1:0');
    let conn: ConnId | undefined;
    const rejected: { length: number; reason: string }[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') conn = ev.conn;
      if (ev.type === 'HandleRejected') rejected.push({ length: ev.length, reason: ev.reason });
    }, { onError });
    try {
      let got = '';
      const client = net.connect(io.localAddress(ep).port, '127.0.0.1');
      client.setEncoding('utf8');
      client.on('data', (d) => { got += d; });
      await until(() => conn !== undefined, 5000, 'connected');
      io.handle().streamWrite(conn!, Buffer.alloc(10_000, 'a'));
      io.handle().streamWrite(conn!, Buffer.from('fits'));
      await until(() => got === 'fits', 5000, 'the second write');
      expect(rejected).toEqual([{ length: 10_000, reason: "the connection's write queue has no room for the whole write (maxWriteQueueBytes)" }]);
      client.destroy();
    } finally {
      h.stop();
      io.shutdown();
    }
  });

  it('closes connections from another thread', async () => {
    const io = new Io();
    const ep = io.tcpListen('127.0.0.1:0');
    let conn: ConnId | undefined;
    let disconnected = false;
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') conn = ev.conn;
      if (ev.type === 'Disconnected') disconnected = true;
    }, { onError });
    try {
      const client = net.connect(io.localAddress(ep).port, '127.0.0.1');
      client.resume();
      let closed = false;
      client.on('close', () => { closed = true; });
      client.on('error', () => {});
      await until(() => conn !== undefined, 5000, 'connected');
      const w = new Worker(`
        const { workerData } = require('node:worker_threads');
        import(workerData.core).then(({ IoHandle }) => {
          const h = IoHandle.from(workerData.id);
          h.streamWrite(workerData.conn, new TextEncoder().encode('bye\\n'));
          h.closeGraceful(workerData.conn, 1000);
        });`, { eval: true, workerData: { core: entries.core, id: io.handle().id, conn } });
      await new Promise((r) => w.once('exit', r));
      await until(() => closed && disconnected, 5000, 'closed by the worker');
    } finally {
      h.stop();
      io.shutdown();
    }
  });

  it('fans one SendBuffer out from a worker to 20 connections with no copy; every slot comes back', async () => {
    const io = new Io({ poolSlotCount: 512 });
    const ep = io.tcpListen('127.0.0.1:0');
    const conns: ConnId[] = [];
    const rejected: string[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') conns.push(ev.conn);
      if (ev.type === 'HandleRejected') rejected.push(ev.reason);
    }, { onError });
    try {
      const texts: string[] = [];
      const clients = Array.from({ length: 20 }, (_, i) => {
        texts.push('');
        const c = net.connect(io.localAddress(ep).port, '127.0.0.1');
        c.setEncoding('latin1');
        c.on('data', (d: string) => { texts[i] += d; });
        return c;
      });
      await until(() => conns.length === 20, 5000, '20 connections');
      // Without a reservoir a worker gets the fix in the error.
      expect(() => io.handle().sendBuffer()).toThrow(/enable or enlarge it with io\.handle\(\{ sendBuffers: n \}\)/);
      const handle = io.handle({ sendBuffers: 8 });
      await until(() => io.poolStats().freeStack.current === 8, 5000, 'the reservoir filled');
      const count = 200, size = 1000;
      const w = new Worker(fileURLToPath(new URL('./fixtures/handle-fanout-worker.mjs', import.meta.url)),
        { workerData: { core: entries.core, handle: structuredClone(handle), conns, count, size } });
      const report = await new Promise<{ empty: number; errors: Record<string, string> }>((resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      });
      const expected = Array.from({ length: count }, (_, i) => {
        const head = `msg ${i} `;
        return head + String.fromCharCode(97 + (i % 26)).repeat(size - 1 - head.length) + '\n';
      }).join('');
      await until(() => texts.every((t) => t.length >= expected.length), 20_000, `every message on every connection (${texts.map((t) => t.length)} of ${expected.length}; rejected ${rejected.length}: ${rejected[0]}; ${JSON.stringify(report)})`);
      for (const t of texts) expect(t === expected).toBe(true);
      expect(rejected).toEqual([]);
      expect(report.errors).toEqual({
        sendDatagram: expect.stringMatching(/^InvalidArgument: IoHandle\.sendDatagram: no connection kind carries datagrams yet/),
        sendDatagramBuffer: 'InvalidArgument',
        afterRelease: 'InvalidArgument',
      });
      // The shard took 200 buffers x 20 writes by reference: only the reservoir holds slots now.
      await until(() => io.poolStats().freeStack.current === io.poolStats().counters.handleReservoir, 5000,
        `every slot back (${io.poolStats().freeStack.current} out, ${io.poolStats().counters.handleReservoir} in the reservoir)`);
      expect(io.poolStats().counters.handleReservoir).toBeGreaterThanOrEqual(4);
      expect(io.poolStats().counters.handleCommands).toBe(count * 20 + count + 1);
      // A buffer from the shard's own pool goes through io, not the handle: refused with the reason.
      const own = io.sendBuffer();
      expect(() => handle.streamWriteBuffer(conns[0], own)).toThrow(/not taken from this handle's shard/);
      own.release();
      // A SendBuffer written to a closed connection comes back as HandleRejected, bytes counted.
      const b = handle.sendBuffer();
      b.write('late');
      const gone = conns[0];
      clients[0].destroy();
      await until(() => io.poolStats().connections === 19, 5000, 'the close');
      handle.streamWriteBuffer(gone, b);
      b.release();
      await until(() => rejected.length === 1, 5000, 'HandleRejected');
      expect(rejected[0]).toBe('the connection is closed (stale id)');
      for (const c of clients) c.destroy();
      // Turning the reservoir off gives its slots back to the pool.
      io.handle({ sendBuffers: 0 });
      await until(() => io.poolStats().freeStack.current === 0, 5000, 'the reservoir emptied');
      expect(io.poolStats().counters.handleReservoir).toBe(0);
    } finally {
      h.stop();
      io.shutdown();
    }
  }, 60_000);
});
