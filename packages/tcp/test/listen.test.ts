import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, existsSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, IoError, StreamWriter, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { echoRoundTrip, listenLocal, onError, randomPayload, startEcho, until, type EchoServer } from './helpers.js';

let srv: EchoServer | undefined;
afterEach(async () => { await srv?.close(); srv = undefined; });

function requireSocat(): void {
  try {
    execFileSync('socat', ['-V'], { stdio: 'ignore' });
  } catch {
    throw new Error('socat is required for this test (apt-get install socat; tooling/bootstrap.sh installs it)');
  }
}

/** Pipes `input` through socat to `target` and resolves with what came back. */
function socat(target: string, input: string): Promise<string> {
  const child = spawn('socat', ['-t', '2', '-', target]);
  let out = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stdin.end(input);
  return new Promise((resolve) => child.on('close', () => resolve(out)));
}

describe('listening', () => {
  it('serves socat as an independent TCP client', async () => {
    requireSocat();
    srv = startEcho();
    expect(await socat(`TCP:127.0.0.1:${srv.port}`, 'hello from socat\n')).toBe('hello from socat\n');
  });

  it('listens on a Unix socket: socat and node:net clients, path removed on close', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'zio-uds-')), 'echo.sock');
    const io = new Io({ poolSlotCount: 128 });
    const ep = io.udsListen(path);
    expect(io.localAddress(ep)).toEqual({ family: 'unix', address: path, port: 0 });
    const endpoints: unknown[] = [];
    const out = new StreamWriter(io);  // 100 KB is more than one connection's share of this small pool
    const h = io.runSync((ev) => {
      out.handle(ev);
      if (ev.type === 'Connected') endpoints.push(ev.endpoint);
      if (ev.type === 'StreamFrame') out.write(ev.conn, ev.data);
    }, { onError });
    requireSocat();
    expect(await socat(`UNIX-CONNECT:${path}`, 'unix socat\n')).toBe('unix socat\n');
    const p = randomPayload(100_000, 77);
    expect((await echoRoundTrip(0, p, { path })).equals(p)).toBe(true);
    expect(endpoints).toEqual([ep, ep]); // Connected.endpoint is the id udsListen returned
    io.closeEndpoint(ep);
    await until(() => !existsSync(path), 2000, 'socket path removal');
    await h.shutdown();
    io.shutdown();
  });

  it('gives an actionable SyscallFailed for a port in use', async () => {
    const blocker = net.createServer();
    const port = await listenLocal(blocker);
    const io = new Io({ poolSlotCount: 64 });
    try {
      io.tcpListen(`127.0.0.1:${port}`);
      expect.unreachable();
    } catch (e) {
      const err = e as IoError;
      expect(err.kind).toBe('SyscallFailed');
      expect(err.syscall).toBe('bind');
      expect(err.code).toBe('EADDRINUSE');
      expect(err.message).toMatch(new RegExp(`bind\\(127\\.0\\.0\\.1:${port}\\) for tcpListen failed: EADDRINUSE: address already in use\\. Fix: `));
    } finally {
      io.shutdown();
      blocker.close();
    }
  });

  it('rejects unknown listen options and host names by name', () => {
    const io = new Io({ poolSlotCount: 64 });
    try {
      expect(() => io.tcpListenWith({ port: 0, reuseport: true } as never)).toThrowError(/unknown option reuseport/);
      expect(() => io.tcpListen('example.com:80')).toThrowError(/binding needs an IP address/);
    } finally {
      io.shutdown();
    }
  });

  it('supports the blocking poll()/nextEvent() loop of the seed', async () => {
    const io = new Io({ poolSlotCount: 64 });
    const ep = io.tcpListen('127.0.0.1:0');
    const { port } = io.localAddress(ep);
    const got = echoRoundTrip(port, Buffer.from('poll loop'));
    let done = false;
    got.then(() => { done = true; });
    const seen = new Set<string>();
    while (!done) {
      io.poll(0);
      for (let ev = io.nextEvent(); ev; ev = io.nextEvent()) {
        seen.add(ev.type);
        if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data);
      }
      await new Promise((r) => setImmediate(r)); // let the node:net client run
    }
    expect((await got).toString()).toBe('poll loop');
    expect([...seen]).toEqual(expect.arrayContaining(['Connected', 'StreamFrame']));
    io.shutdown();
  });

  it('closeGraceful flushes queued data before closing', async () => {
    const big = randomPayload(2_000_000, 4);
    const io = new Io({ poolSlotCount: 4096, maxWriteQueueBytes: 4 * 1024 * 1024 });
    const ep = io.tcpListen('127.0.0.1:0');
    const { port } = io.localAddress(ep);
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') {
        const n = io.streamWrite(ev.conn, big);
        expect(n).toBeGreaterThan(0);
        io.streamWrite(ev.conn, big.subarray(n)); // the rest, possibly partially
        io.closeGraceful(ev.conn, 5000);
      }
    }, { onError });
    const received = await new Promise<Buffer>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      const chunks: Buffer[] = [];
      s.on('data', (d) => chunks.push(d));
      s.on('end', () => resolve(Buffer.concat(chunks)));
      s.on('error', reject);
    });
    const accepted = Math.min(big.length, received.length);
    expect(received.length).toBeGreaterThan(1_000_000);
    expect(received.equals(big.subarray(0, accepted))).toBe(true);
    await h.shutdown();
    io.shutdown();
  });
});

describe('pool exhaustion', () => {
  it('with a tiny pool, 40 connections blasting data: all echoed intact, ENOBUFS parked and re-armed, partial writes resumed', async () => {
    // 16 slots: 8 for RX (the buffer ring), 8 for TX. Far less than the traffic in flight.
    srv = startEcho({ poolSlotCount: 16, poolSlotSize: 2048, maxWriteQueueBytes: 4096 });
    const payloads = Array.from({ length: 40 }, (_, i) => randomPayload(64 * 1024 + i * 1000, 500 + i));
    const results = await Promise.all(payloads.map((p) => echoRoundTrip(srv!.port, p)));
    results.forEach((r, i) => expect(r.equals(payloads[i])).toBe(true));
    const c = srv.io.poolStats().counters;
    expect(c.rxEnobufs).toBeGreaterThan(0);        // RX waited for slots (the kernel held the data)
    expect(c.txPartialAccepts).toBeGreaterThan(0); // TX refused past the queue/pool bound, then resumed
    const s = srv.io.poolStats();
    expect(s.freeStack.peak).toBeLessThanOrEqual(s.freeStack.capacity);
  });

  it('a slow reader cannot grow memory without bound: streamWrite accepts at most maxWriteQueueBytes', async () => {
    const io = new Io({ poolSlotCount: 256, maxWriteQueueBytes: 64 * 1024 });
    const ep = io.tcpListen('127.0.0.1:0');
    const { port } = io.localAddress(ep);
    let conn: ConnId | undefined;
    let accepted = 0;
    let writable = 0;
    const chunk = randomPayload(32 * 1024, 1);
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected') conn = ev.conn;
      if (ev.type === 'Writable') writable++;
    }, { onError });
    const s = net.connect(port, '127.0.0.1');
    s.pause(); // never reads
    await until(() => conn !== undefined);
    // Keep writing for a while: the kernel buffers fill, then our queue caps.
    for (let i = 0; i < 200; i++) {
      accepted += io.streamWrite(conn!, chunk);
      await new Promise((r) => setTimeout(r, 1));
    }
    const stats = io.poolStats();
    expect(stats.txRing.current * 2048).toBeLessThanOrEqual(64 * 1024 + 2048);
    expect(accepted).toBeLessThan(200 * chunk.length);
    s.resume();
    await until(() => writable > 0, 5000, 'Writable after the reader resumed');
    s.destroy();
    await h.shutdown();
    io.shutdown();
  });
});
