import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { Io, IoError, SendBuffer, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { entries, onError, until } from './helpers.js';

/** Starts a zero-io listener and connects `n` node:net clients; resolves with the conns and clients. */
async function fanoutSetup(io: Io, n: number) {
  const ep = io.tcpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  const conns: ConnId[] = [];
  const h = io.runSync((ev) => { if (ev.type === 'Connected') conns.push(ev.conn); }, { onError });
  const clients = await Promise.all(Array.from({ length: n }, () => new Promise<{ s: net.Socket; got: Buffer[] }>((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(c));
    const c = { s, got: [] as Buffer[] };
    s.on('data', (d) => c.got.push(d));
  })));
  await until(() => conns.length === n, 5000, 'all connections accepted');
  return { conns, clients, h };
}

describe('SendBuffer', () => {
  it('fans one buffer out to many connections with no copy, then the slot returns to the pool', async () => {
    const io = new Io();
    try {
      const { conns, clients, h } = await fanoutSetup(io, 50);
      const base = io.poolStats().freeStack.current;
      const buf = io.sendBuffer(256);
      expect(buf.capacity).toBe(2048);
      const msg = Buffer.alloc(256);
      for (let i = 0; i < 256; i++) msg[i] = (i * 7) & 0xff;
      buf.write(msg);
      for (const c of conns) expect(io.streamWriteBuffer(c, buf)).toBe(256);
      // Fan-out shares one slot: the pool gained exactly one checked-out slot.
      expect(io.poolStats().freeStack.current).toBe(base + 1);
      // A later copying write on the same connections must not land inside the shared slot.
      for (const c of conns) io.streamWrite(c, Buffer.from('tail'));
      buf.release();
      expect(buf.released).toBe(true);
      await until(() => clients.every((c) => Buffer.concat(c.got).length === 260), 5000, 'every client got 260 bytes');
      for (const c of clients) expect(Buffer.concat(c.got).equals(Buffer.concat([msg, Buffer.from('tail')]))).toBe(true);
      await until(() => io.poolStats().freeStack.current === 0, 2000, 'slots back');
      for (const c of clients) c.s.destroy();
      h.stop();
    } finally {
      io.shutdown();
    }
  });

  it('sends one buffer as UDP datagrams to several node:dgram peers', async () => {
    const io = new Io();
    try {
      const ep = io.udpBind('127.0.0.1:0');
      const peers = await Promise.all([0, 1, 2].map(async () => {
        const s = dgram.createSocket('udp4');
        s.bind(0, '127.0.0.1');
        await once(s, 'listening');
        return s;
      }));
      const buf = io.sendBuffer();
      buf.write('market tick 42');
      const got = peers.map((p) => once(p, 'message'));
      for (const p of peers) io.udpSend(ep, { address: '127.0.0.1', port: p.address().port }, buf);
      buf.release();
      io.poll(0);
      for (const g of got) expect(String((await g)[0])).toBe('market tick 42');
      for (let i = 0; i < 100 && io.poolStats().freeStack.current !== 0; i++) { io.poll(0); await new Promise((r) => setTimeout(r, 5)); }
      expect(io.poolStats().freeStack.current).toBe(0);
      for (const p of peers) p.close();
    } finally {
      io.shutdown();
    }
  });

  it('refuses misuse with clear errors', async () => {
    const io = new Io({ poolSlotCount: 16 });
    const other = new Io();
    try {
      const { conns, clients, h } = await fanoutSetup(io, 1);
      const kind = (f: () => unknown): string | undefined => {
        try { f(); } catch (e) { return (e as IoError).kind; }
        return undefined;
      };
      expect(kind(() => io.sendBuffer(4096))).toBe('InvalidArgument');
      const buf = io.sendBuffer(10);
      expect(kind(() => buf.write(Buffer.alloc(5000)))).toBe('InvalidArgument');
      expect(kind(() => io.streamWriteBuffer(conns[0], buf, 99999))).toBe('InvalidArgument');
      expect(kind(() => other.streamWriteBuffer(conns[0], buf))).toBe('InvalidArgument');
      expect(kind(() => io.sendDatagramBuffer(conns[0], buf))).toBe('InvalidArgument');
      buf.release();
      buf.release();  // idempotent
      expect(kind(() => buf.bytes)).toBe('InvalidArgument');
      expect(kind(() => io.streamWriteBuffer(conns[0], buf))).toBe('InvalidArgument');
      // Exhaust the free stack (8 slots): the ninth checkout is PoolExhausted.
      const held: SendBuffer[] = [];
      let err: IoError | undefined;
      try { for (let i = 0; i < 20; i++) held.push(io.sendBuffer()); } catch (e) { err = e as IoError; }
      expect(held.length).toBe(8);
      expect(err?.kind).toBe('PoolExhausted');
      for (const b of held) b.release();
      expect(io.poolStats().freeStack.current).toBe(0);
      clients[0].s.destroy();
      h.stop();
    } finally {
      io.shutdown();
      other.shutdown();
    }
  });

  it('a full write queue takes nothing and reports Writable later', async () => {
    const io = new Io({ maxWriteQueueBytes: 4096 });
    try {
      const { conns, clients, h } = await fanoutSetup(io, 1);
      h.stop();
      clients[0].s.pause();  // a slow reader
      const buf = io.sendBuffer();
      buf.length = 2048;
      let queued = 0;
      let refused = 0;
      // Until the kernel's buffers for the paused reader are full too: Linux >= 6.16 lets a
      // receive buffer grow to 32 MiB (tcp_rmem), so up to 64 MiB is offered.
      for (let i = 0; i < 32768 && refused === 0; i++) {
        const n = io.streamWriteBuffer(conns[0], buf);
        if (n === 0) refused++;
        else queued += n;
        io.poll(0);
      }
      expect(refused).toBe(1);
      expect(queued % 2048).toBe(0);
      buf.release();
      clients[0].s.resume();
      let writable = false;
      for (let i = 0; i < 2000 && !writable; i++) {
        const n = io.poll(0);
        for (let k = 0; k < n; k++) if (io.nextEvent()!.type === 'Writable') writable = true;
        await new Promise((r) => setTimeout(r, 2));  // let the node:net client read
      }
      expect(writable).toBe(true);
      clients[0].s.destroy();
    } finally {
      io.shutdown();
    }
  });

  it('warns about and recovers a SendBuffer garbage-collected without release()', () => {
    const code = `
      import { Io } from ${JSON.stringify(entries.core)};
      const io = new Io();
      (() => { io.sendBuffer().write('leak'); })();
      const before = io.poolStats().freeStack.current;
      // Collect until the FinalizationRegistry has run (when is the engine's business): the cap
      // only keeps a regression from hanging.
      for (let i = 0; i < 400 && io.poolStats().freeStack.current !== 0; i++) {
        global.gc();
        await new Promise((r) => setTimeout(r, 25));
      }
      console.log(before, io.poolStats().freeStack.current);
      io.shutdown();`;
    const r = spawnSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', code], { encoding: 'utf8', timeout: 30_000 });
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toBe('1 0');
    expect(r.stderr).toMatch(/ZeroIoLeakWarning: a SendBuffer was garbage-collected without release\(\)/);
  });
});
