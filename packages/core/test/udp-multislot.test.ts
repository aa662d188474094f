// Datagrams larger than one pool slot (2 KiB by default) sent with udpSendBytes: each spans
// several slots (up to 16: 32 KiB) and must reach a node:dgram peer byte-exact, in order, and
// give every slot back once sent.
import dgram from 'node:dgram';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, isIoError, type EndpointId } from '@zero-io/core';
import { checkHandlerErrors, onError } from './handler-errors.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function payload(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}

async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    checkHandlerErrors();
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function peer(family: 'udp4' | 'udp6', host: string) {
  const sock = dgram.createSocket({ type: family, recvBufferSize: 4 << 20 });
  const got: { data: Buffer; from: { address: string; port: number } }[] = [];
  sock.on('message', (m, r) => got.push({ data: m, from: { address: r.address, port: r.port } }));
  await new Promise<void>((res) => sock.bind(0, host, () => res()));
  cleanups.push(() => new Promise<void>((res) => sock.close(() => res())));
  return { sock, got, port: sock.address().port };
}

const sizes = [2049, 4096, 6000, 8192, 12_345, 16_385, 24_576, 30_000, 32_768];

describe('multi-slot udpSendBytes', () => {
  for (const [family, host] of [['udp4', '127.0.0.1'], ['udp6', '::1']] as const) {
    it(`sends 2–32 KiB datagrams (2 to 16 slots each) byte-exact to a node:dgram peer (${family})`, async () => {
      const io = new Io({ poolSlotCount: 1024 });
      const ep: EndpointId = io.udpBind(family === 'udp4' ? '127.0.0.1:0' : '[::1]:0');
      const stats0 = io.udpStats(ep);
      expect(stats0.maxDatagram).toBe(32_768);
      const h = io.runSync(() => {}, { onError });
      cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
      const free0 = io.poolStats().freeStack.current;
      const p = await peer(family, host);

      const sent = sizes.map((n, i) => payload(n, 100 + i));
      // Half of them from the middle of a larger buffer (offset/length form, odd offset).
      for (let i = 0; i < sent.length; i++) {
        if (i % 2 === 0) io.udpSendBytes(ep, { address: host, port: p.port }, sent[i]);
        else {
          const big = Buffer.concat([Buffer.alloc(7, 0xee), sent[i], Buffer.alloc(5, 0xdd)]);
          io.udpSendBytes(ep, { address: host, port: p.port }, big, 7, sent[i].length);
        }
      }
      // Queued at once: each datagram holds its slots until the kernel took it.
      const slots = sizes.reduce((a, n) => a + Math.ceil(n / io.config.poolSlotSize), 0);
      expect(io.poolStats().freeStack.current - free0).toBeGreaterThanOrEqual(slots);

      await until(() => p.got.length === sizes.length, 10_000, 'every datagram');
      expect(p.got.map((g) => g.data.length)).toEqual(sizes);
      for (let i = 0; i < sizes.length; i++) expect(p.got[i].data.equals(sent[i])).toBe(true);
      const local = io.localAddress(ep);
      for (const g of p.got) expect(g.from).toEqual({ address: host, port: local.port });

      await until(() => io.udpStats(ep).datagramsSent === sizes.length, 5000, 'the sent count');
      const st = io.udpStats(ep);
      expect(st.sendErrors).toBe(0);
      await until(() => io.poolStats().freeStack.current === free0 && io.udpStats(ep).sendQueued === 0, 5000, 'every slot back');

      // One byte past maxDatagram is refused, naming the limit; nothing was queued.
      let err: unknown = null;
      try { io.udpSendBytes(ep, { address: host, port: p.port }, Buffer.alloc(32_769)); } catch (e) { err = e; }
      expect(isIoError(err) && err.kind).toBe('InvalidArgument');
      expect((err as Error).message).toMatch(/maxDatagram = 32768/);
      expect(io.poolStats().freeStack.current).toBe(free0);
    });
  }

  it('a burst of 200 multi-slot datagrams (8 slots each) arrives complete and in order', async () => {
    const io = new Io({ poolSlotCount: 4096 });
    const ep = io.udpBindWith({ host: '127.0.0.1', port: 0, sendQueue: 256 });
    const h = io.runSync(() => {}, { onError });
    cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
    const free0 = io.poolStats().freeStack.current;
    const p = await peer('udp4', '127.0.0.1');
    const sent: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const d = payload(16_000, 1000 + i);
      d.writeUInt32BE(i, 0);
      sent.push(d);
      io.udpSendBytes(ep, { address: '127.0.0.1', port: p.port }, d);
    }
    await until(() => p.got.length === 200 || io.udpStats(ep).sendErrors > 0, 20_000, '200 datagrams');
    expect(io.udpStats(ep).sendErrors).toBe(0);
    expect(p.got.map((g) => g.data.readUInt32BE(0))).toEqual(sent.map((_, i) => i));
    for (let i = 0; i < 200; i++) expect(p.got[i].data.equals(sent[i])).toBe(true);
    await until(() => io.poolStats().freeStack.current === free0, 5000, 'every slot back');
  });
});
