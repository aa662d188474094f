import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { echoRoundTrip, onError, randomPayload, startEcho, until, type EchoServer } from './helpers.js';

let srv: EchoServer | undefined;
afterEach(async () => { await srv?.close(); srv = undefined; });

describe('TCP echo against node:net clients', () => {
  it('echoes byte-exact payloads of random sizes, including ones far larger than a slot', async () => {
    srv = startEcho();
    const sizes = [1, 100, 1199, 2047, 2048, 2049, 5000, 65_536, 300_000, 1_000_000];
    for (const [i, size] of sizes.entries()) {
      const p = randomPayload(size, i + 1);
      const got = await echoRoundTrip(srv.port, p);
      expect(got.length).toBe(size);
      expect(got.equals(p)).toBe(true);
    }
  });

  it('forwards payloads through io.poolBytes + ev.offset (the zero-allocation write form)', async () => {
    const { Io } = await import('@zero-io/core');
    const io = new Io({ poolSlotCount: 512 });
    const ep = io.tcpListen('127.0.0.1:0');
    const { port } = io.localAddress(ep);
    let boundsError: unknown;
    let mismatches = 0;
    let short = 0;
    const h = io.runSync((ev) => {
      if (ev.type !== 'StreamFrame') return;
      if (!Buffer.from(io.poolBytes.buffer, ev.offset, ev.length).equals(ev.data)) mismatches++;
      if (io.streamWrite(ev.conn, io.poolBytes, ev.offset, ev.length) !== ev.length) short++;
      try { io.streamWrite(ev.conn, io.poolBytes, io.poolBytes.length - 1, 2); } catch (e) { boundsError = e; }
    }, { onError });
    const p = randomPayload(100_000, 42); // below maxWriteQueueBytes: every write is accepted whole
    expect((await echoRoundTrip(port, p)).equals(p)).toBe(true);
    expect(mismatches).toBe(0);
    expect(short).toBe(0);
    expect(boundsError).toMatchObject({ kind: 'InvalidArgument' });
    await h.shutdown();
    io.shutdown();
  });

  it('serves many concurrent connections without mixing their bytes', async () => {
    srv = startEcho({ maxConnections: 512 });
    const payloads = Array.from({ length: 300 }, (_, i) => randomPayload(1 + ((i * 7919) % 20_000), i + 100));
    const results = await Promise.all(payloads.map((p) => echoRoundTrip(srv!.port, p)));
    results.forEach((r, i) => expect(r.equals(payloads[i])).toBe(true));
    await until(() => srv!.events.disconnected.length === 300, 5000, '300 Disconnected');
    expect(srv.events.connected).toBe(300);
    expect(srv.io.poolStats().connections).toBe(0);
  });

  it('works the same with COOP_TASKRUN (the ring fd itself watched by libuv), including timers and Writable', async () => {
    srv = startEcho({ uring: { deferTaskrun: false }, poolSlotCount: 64, maxWriteQueueBytes: 4096 });
    const payloads = Array.from({ length: 50 }, (_, i) => randomPayload(1 + ((i * 7919) % 60_000), i + 900));
    const results = await Promise.all(payloads.map((p) => echoRoundTrip(srv!.port, p)));
    results.forEach((r, i) => expect(r.equals(payloads[i])).toBe(true));
    expect(srv.io.poolStats().counters.txPartialAccepts).toBeGreaterThan(0); // Writable path used
    // A timer-driven event (the graceful-close timeout) must still wake the driver: a client that
    // sends a lot but never reads leaves the server with data it cannot flush.
    const s = net.connect({ port: srv.port, host: '127.0.0.1' });
    s.on('error', () => {});
    await new Promise((r) => s.once('connect', r));
    s.pause();
    s.write(randomPayload(24_000_000, 5));
    // Backed up for real: data queued in TX slots and nothing sent for 300 ms (the kernel's
    // socket buffers are full because the client does not read).
    let lastTx = -1;
    let stuckSince = Date.now();
    await until(() => {
      const st = srv!.io.poolStats();
      if (st.counters.txBytes !== lastTx) { lastTx = st.counters.txBytes; stuckSince = Date.now(); }
      return st.txRing.current > 0 && Date.now() - stuckSince > 300;
    }, 20_000, 'the server to back up');
    const closed = new Promise((r) => s.once('close', r));
    const t0 = Date.now();
    await srv.handle.shutdown({ timeoutMs: 200 });
    s.resume();
    await closed;
    expect(srv.events.disconnected.at(-1)).toMatchObject({ origin: 'timeout', errorCode: 110 });
    expect(Date.now() - t0).toBeLessThan(5000);
  });

  it('handles a half-close: everything sent before FIN is echoed, then the server closes', async () => {
    srv = startEcho();
    const p = randomPayload(200_000, 9);
    const got = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect({ port: srv!.port, host: '127.0.0.1', allowHalfOpen: true });
      const chunks: Buffer[] = [];
      s.on('connect', () => s.end(p)); // write then FIN at once
      s.on('data', (d) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
    });
    expect(got.equals(p)).toBe(true);
    await until(() => srv!.events.disconnected.length === 1);
    expect(srv.events.disconnected[0]).toMatchObject({ errorCode: 0, origin: 'peer', reason: 'closed by peer' });
  });

  it('reports a peer reset as Disconnected(ECONNRESET) and keeps serving others', async () => {
    srv = startEcho();
    await new Promise<void>((resolve) => {
      const s = net.connect(srv!.port, '127.0.0.1', () => { s.write('x'); s.once('data', () => { s.resetAndDestroy(); resolve(); }); });
    });
    await until(() => srv!.events.disconnected.length === 1);
    expect(srv.events.disconnected[0]).toMatchObject({ errorCode: 104, origin: 'error', reason: expect.stringMatching(/^ECONNRESET: connection reset by peer \(peer 127\.0\.0\.1:\d+\)$/) });
    const p = randomPayload(10_000, 3);
    expect((await echoRoundTrip(srv.port, p)).equals(p)).toBe(true);
  });

  it('closes connections beyond maxConnections at accept and counts them', async () => {
    srv = startEcho({ maxConnections: 2 });
    const socks: net.Socket[] = [];
    const closed: boolean[] = [];
    for (let i = 0; i < 4; i++) {
      const s = net.connect(srv.port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => { closed[i] = true; });
      socks.push(s);
    }
    await until(() => srv!.io.poolStats().counters.connsRejected === 2, 5000, 'two rejections');
    expect(srv.io.poolStats().connections).toBe(2);
    socks.forEach((s) => s.destroy());
  });
});
