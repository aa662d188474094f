import dgram from 'node:dgram';
import { once } from 'node:events';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Io, OwnedSlot } from '@zero-io/core';
import '@zero-io/tcp';
import { entries, onError, until } from './helpers.js';

describe('OwnedSlot (detachEventData)', () => {
  it('keeps a StreamFrame payload valid across later batches until release()', async () => {
    const io = new Io();
    const ep = io.tcpListen('127.0.0.1:0');
    const kept: OwnedSlot[] = [];
    let others = 0;
    let connected = 0;
    // The expects in the handler fail the test through onError (runSync alone only prints them).
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') { connected++; expect(io.detachEventData()).toBeNull(); }  // no payload
      if (ev.type !== 'StreamFrame') return;
      if (kept.length === 0) {
        const s = io.detachEventData()!;
        expect(io.detachEventData()).toBeNull();  // once
        kept.push(s);
      } else {
        others++;
      }
    }, { onError });
    try {
      const c = net.connect(io.localAddress(ep).port, '127.0.0.1');
      c.setNoDelay(true);
      await once(c, 'connect');
      c.write('first payload');
      await until(() => kept.length === 1, 5000, 'first frame');
      expect(connected).toBe(1);  // the Connected check above ran
      for (let i = 0; i < 50; i++) {
        c.write(`other ${i} ${'x'.repeat(500)}`);
        await new Promise((r) => setTimeout(r, 1));
      }
      await until(() => others > 0, 5000, 'more frames');
      await new Promise((r) => setTimeout(r, 50));
      // The borrowed slots of later batches went back to the ring; ours did not.
      expect(Buffer.from(kept[0].data).toString()).toBe('first payload');
      expect(io.poolStats().fillRing.current).toBe(1);
      kept[0].release();
      expect(kept[0].released).toBe(true);
      expect(io.poolStats().fillRing.current).toBe(0);
      expect(() => kept[0].data).toThrowError(/released/);
      c.destroy();
    } finally {
      h.stop();
      io.shutdown();
    }
  });

  it('transfers UDP payloads to a worker thread, which reads and releases them there', async () => {
    const io = new Io();
    const ep = io.udpBind('127.0.0.1:0');
    const worker = new Worker(fileURLToPath(new URL('./fixtures/owned-worker.mjs', import.meta.url)), { workerData: { core: entries.core } });
    const seen: string[] = [];
    worker.on('message', (m) => seen.push(m));
    const h = io.runSync((ev) => {
      if (ev.type !== 'UdpRecv') return;
      const slot = io.detachEventData()!;
      worker.postMessage(slot.transfer());
      expect(slot.released).toBe(true);
    }, { onError });
    try {
      const c = dgram.createSocket('udp4');
      for (let i = 0; i < 20; i++) c.send(`datagram ${i}`, io.localAddress(ep).port, '127.0.0.1');
      await until(() => seen.length === 20, 5000, 'worker read 20');
      expect(seen.sort()).toEqual(Array.from({ length: 20 }, (_, i) => `datagram ${i}`).sort());
      // Released in the worker, carried out by the shard: every RX slot is back in the ring.
      await until(() => io.poolStats().fillRing.current === 0, 5000, 'slots back');
      expect(io.poolStats().counters.slotsDetached).toBe(20);
      c.close();
    } finally {
      worker.postMessage('end');
      await worker.terminate();
      h.stop();
      io.shutdown();
    }
  });
});
