// pauseRecv / resumeRecv: a paused connection reads nothing, the peer meets TCP flow control,
// and resuming delivers every byte; StreamWriter bounds an echo's memory against a slow reader.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, IoHandle, StreamWriter, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { onError, randomPayload, until } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

function server(config: ConstructorParameters<typeof Io>[0] = { poolSlotCount: 1024 }) {
  const io = new Io(config);
  const ep = io.tcpListen('127.0.0.1:0');
  cleanups.push(() => { io.shutdown(); });
  return { io, port: io.localAddress(ep).port };
}

describe('pauseRecv / resumeRecv', () => {
  for (const via of ['Io', 'IoHandle'] as const) {
    it(`a paused connection receives nothing until resumed, then every byte (${via})`, async () => {
      const { io, port } = server();
      const handle = via === 'IoHandle' ? IoHandle.from(io.handle().id) : null;
      let conn: ConnId | null = null;
      const received: Buffer[] = [];
      let bytes = 0;
      const h = io.runSync((ev) => {
        if (ev.type === 'Connected') {
          conn = ev.conn;
          if (handle) handle.pauseRecv(ev.conn); else io.pauseRecv(ev.conn);
        } else if (ev.type === 'StreamFrame') {
          received.push(Buffer.from(ev.data));
          bytes += ev.length;
        }
      }, { onError });
      cleanups.push(() => h.stop());
      // More than loopback's socket buffers hold: the client's writes must stall while paused.
      const payload = randomPayload(48 << 20, 3);
      const client = net.connect(port, '127.0.0.1');
      cleanups.push(() => { client.destroy(); });
      await new Promise<void>((r) => client.on('connect', () => r()));
      client.write(payload);
      await until(() => conn !== null, 5000, 'Connected');
      // The kernel buffers fill and the client's writes stall: its bytesWritten stops growing
      // while nothing reaches the server.
      let last = -1;
      let stable = 0;
      await until(() => {
        const w = client.bytesWritten - client.writableLength;
        stable = w === last ? stable + 1 : 0;
        last = w;
        return stable >= 20;
      }, 20_000, 'the client to stall');
      expect(bytes).toBe(0);
      expect(client.writableLength).toBeGreaterThan(0);
      if (handle) handle.resumeRecv(conn!); else io.resumeRecv(conn!);
      await until(() => bytes === payload.length, 20_000, 'every byte after resume');
      expect(Buffer.concat(received).equals(payload)).toBe(true);
    });
  }

  it('is idempotent, a no-op on a closing connection, and throws InvalidConnId for a stale id', async () => {
    const { io, port } = server();
    let conn: ConnId | null = null;
    let gone = false;
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') {
        conn = ev.conn;
        io.pauseRecv(ev.conn);
        io.pauseRecv(ev.conn);
        io.resumeRecv(ev.conn);
        io.resumeRecv(ev.conn);
        io.close(ev.conn);
        io.pauseRecv(ev.conn);  // closing: no-op
      } else if (ev.type === 'Disconnected') gone = true;
    }, { onError });
    cleanups.push(() => h.stop());
    const c = net.connect(port, '127.0.0.1');
    c.on('error', () => {});
    cleanups.push(() => { c.destroy(); });
    await until(() => gone, 5000, 'Disconnected');
    expect(() => io.pauseRecv(conn!)).toThrow(expect.objectContaining({ kind: 'InvalidConnId' }));
  });
});

describe('StreamWriter against a slow reader', () => {
  it('keeps JS memory bounded (reading pauses) and loses nothing', async () => {
    const { io, port } = server({ poolSlotCount: 1024, maxWriteQueueBytes: 64 * 1024 });
    const out = new StreamWriter(io);
    let peakPending = 0;
    const h = io.runSync((ev) => {
      out.handle(ev);
      if (ev.type === 'StreamFrame') {
        out.write(ev.conn, ev.data);
        peakPending = Math.max(peakPending, out.pending(ev.conn));
      }
    }, { onError });
    cleanups.push(() => h.stop());
    const payload = randomPayload(16 << 20, 9);
    const got: Buffer[] = [];
    let gotBytes = 0;
    const client = net.connect(port, '127.0.0.1');
    cleanups.push(() => { client.destroy(); });
    client.on('connect', () => client.write(payload));
    // Slow reader: take 256 KiB, pause for a moment, repeat.
    client.on('data', (d) => {
      got.push(d);
      const before = gotBytes;
      gotBytes += d.length;
      if (Math.floor(before / 262_144) !== Math.floor(gotBytes / 262_144)) {
        client.pause();
        setTimeout(() => client.resume(), 10);
      }
    });
    await until(() => gotBytes === payload.length, 60_000, 'the whole echo');
    expect(Buffer.concat(got).equals(payload)).toBe(true);
    // What waits in JS is bounded by what was already received when reading paused (a batch or
    // two of RX slots: maxEventsPerPoll x poolSlotSize = 512 KiB each), not by the 16 MiB sent.
    expect(peakPending).toBeGreaterThan(0);
    expect(peakPending).toBeLessThanOrEqual(2 << 20);
  });
});
