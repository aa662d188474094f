// FIN or RST from a peer while the server has megabytes queued for it (the peer stopped reading):
// the FIN must not cut the queued answer (PeerEnded, then every byte, then the close; with
// allowHalfOpen the application closes when it is done), the RST must free every slot the queue
// held and harm no other connection.
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Io, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/tcp';
import { echoHandler, onError, randomPayload, until } from './helpers.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

const TOTAL = 8 << 20;
const pattern = randomPayload(TOTAL, 21);

/**
 * Writes `pattern` to a connection following the write discipline (the refused rest waits for
 * Writable). `stalled` turns true at the first refused write: from then on bytes are queued.
 */
function bulkWriter(io: Io, source: Buffer = pattern) {
  const TOTAL = source.length;
  const state = new Map<ConnId, { at: number; stalled: boolean; done: boolean }>();
  const pump = (conn: ConnId): void => {
    const s = state.get(conn)!;
    while (s.at < TOTAL) {
      const want = Math.min(256 * 1024, TOTAL - s.at);
      const n = io.streamWrite(conn, source, s.at, want);
      s.at += n;
      if (n < want) { s.stalled = true; return; }
    }
    s.done = true;
  };
  return {
    state,
    start(conn: ConnId) { state.set(conn, { at: 0, stalled: false, done: false }); pump(conn); },
    onWritable(conn: ConnId) { if (state.has(conn) && !state.get(conn)!.done) pump(conn); },
  };
}

function serve(handler: (ev: Event, io: Io) => void, listen: { allowHalfOpen?: boolean } = {}) {
  const io = new Io({ poolSlotCount: 1024 });
  const ep = io.tcpListenWith({ host: '127.0.0.1', port: 0, ...listen });
  const h = io.runSync((ev) => handler(ev, io), { onError });
  cleanups.push(async () => { await h.shutdown({ timeoutMs: 500 }); io.shutdown(); });
  return { io, ep, port: io.localAddress(ep).port };
}

/** A node:net client that connects and reads nothing until resumed. */
async function stalledClient(port: number) {
  const s = net.connect({ port, host: '127.0.0.1' });
  s.pause();
  const chunks: Buffer[] = [];
  let got = 0;
  s.on('data', (d: Buffer) => { chunks.push(d); got += d.length; });
  let ended = false;
  s.on('end', () => { ended = true; });
  let error: Error | null = null;
  s.on('error', (e) => { error = e; });
  await new Promise<void>((res) => s.once('connect', () => res()));
  return { s, bytes: () => Buffer.concat(chunks), got: () => got, ended: () => ended, error: () => error };
}

describe('FIN while a large write queue is pending', () => {
  for (const allowHalfOpen of [false, true]) {
    it(`allowHalfOpen ${allowHalfOpen}: PeerEnded arrives, the 8 MiB still queued all reach the peer${allowHalfOpen ? ', the connection stays open until closeGraceful' : ', then the connection closes by itself'}`, async () => {
      const log: string[] = [];
      let writer!: ReturnType<typeof bulkWriter>;
      let server!: ConnId;
      // With allowHalfOpen, the application answers past the FIN: a trailer after the 8 MiB.
      const source = allowHalfOpen ? Buffer.concat([pattern, Buffer.from('TRAILER')]) : pattern;
      let closed = false;
      const { io, ep, port } = serve((ev, i) => {
        writer ??= bulkWriter(i, source);
        if (ev.type === 'Connected') { server = ev.conn; writer.start(ev.conn); }
        else if (ev.type === 'Writable') {
          writer.onWritable(ev.conn);
          // allowHalfOpen: once all of it is queued, the application closes (after the FIN).
          if (allowHalfOpen && writer.state.get(ev.conn)!.done && !closed) {
            expect(log).toContain('PeerEnded');
            closed = true;
            i.closeGraceful(ev.conn, 10_000);
          }
        } else if (ev.type === 'PeerEnded') {
          log.push('PeerEnded');
          expect(ev.endpoint).toBe(ep);
          expect(writer.state.get(ev.conn)!.stalled).toBe(true);
        } else if (ev.type === 'Disconnected') {
          log.push(`Disconnected:${ev.origin}:${ev.errorCode}`);
          expect(ev.endpoint).toBe(ep);
        }
      }, { allowHalfOpen });
      const c = await stalledClient(port);
      await until(() => writer?.state.get(server)?.stalled === true, 10_000, 'the server write queue to fill');
      // The peer ends its side while megabytes wait for it, and has still read nothing.
      c.s.end();
      await until(() => log.includes('PeerEnded'), 10_000, 'PeerEnded');
      expect(c.got()).toBe(0);
      // With allowHalfOpen, the connection is still open for writing after PeerEnded.
      if (allowHalfOpen) expect(io.peerAddress(server)).not.toBeNull();
      c.s.resume();
      await until(() => c.ended(), 20_000, "the server's FIN");
      expect(c.error()).toBeNull();
      const got = c.bytes();
      const expected = source;
      expect(got.length).toBe(expected.length);
      expect(got.equals(expected)).toBe(true);
      await until(() => log.length === 2, 5000, 'Disconnected');
      expect(log).toEqual(['PeerEnded', allowHalfOpen ? 'Disconnected:local:0' : 'Disconnected:peer:0']);
      expect(io.poolStats().txRing.current).toBe(0);
    }, 60_000);
  }
});

describe('RST while a large write queue is pending', () => {
  it('Disconnected with ECONNRESET or EPIPE, every TX slot back, another connection unharmed', async () => {
    let writer!: ReturnType<typeof bulkWriter>;
    let bulk: ConnId | null = null;
    const ends: { conn: ConnId; errorCode: number; reason: string; origin: string }[] = [];
    const echo = echoHandler();
    const { io, port } = serve((ev, i) => {
      writer ??= bulkWriter(i);
      if (ev.type === 'Connected' && bulk === null) { bulk = ev.conn; writer.start(ev.conn); return; }
      if ((ev as { conn?: ConnId }).conn === bulk) {
        if (ev.type === 'Writable') writer.onWritable(ev.conn);
        if (ev.type === 'Disconnected') ends.push({ conn: ev.conn, errorCode: ev.errorCode, reason: ev.reason, origin: ev.origin });
        return;
      }
      if (ev.type === 'Disconnected') ends.push({ conn: ev.conn, errorCode: ev.errorCode, reason: ev.reason, origin: ev.origin });
      echo(ev, i);  // every other connection is an echo
    });
    const start = io.poolStats();
    const free0 = start.freeStack.current;
    expect(start.txRing.current).toBe(0);

    const c = await stalledClient(port);
    await until(() => bulk !== null && writer.state.get(bulk)?.stalled === true, 10_000, 'the write queue to fill');
    expect(io.poolStats().txRing.current).toBeGreaterThan(0);

    // Another connection, echoing while the bulk one is stuck.
    const other = net.connect(port, '127.0.0.1');
    const otherChunks: Buffer[] = [];
    let otherGot = 0;
    other.on('data', (d) => { otherChunks.push(d); otherGot += d.length; });
    await new Promise<void>((r) => other.once('connect', () => r()));
    const p1 = randomPayload(200_000, 22);
    other.write(p1);
    await until(() => otherGot >= p1.length, 10_000, 'the first echo');

    // The stalled peer resets (SO_LINGER 0 + close: an RST, its receive buffer discarded).
    c.s.resetAndDestroy();
    await until(() => ends.some((e) => e.conn === bulk), 10_000, "the bulk connection's Disconnected");
    const d = ends.find((e) => e.conn === bulk)!;
    expect([104, 32]).toContain(d.errorCode);
    expect(d.reason).toMatch(/^(ECONNRESET|EPIPE)/);
    expect(d.origin).toBe('error');

    // Every slot the queue held is back.
    await until(() => io.poolStats().txRing.current === 0 && io.poolStats().freeStack.current === free0, 5000, 'the slots to come back');

    // The other connection is unharmed: still open, still echoes byte-exact.
    const p2 = randomPayload(500_000, 23);
    other.write(p2);
    await until(() => otherGot >= p1.length + p2.length, 10_000, 'the second echo');
    expect(Buffer.concat(otherChunks).equals(Buffer.concat([p1, p2]))).toBe(true);
    expect(ends.filter((e) => e.conn !== bulk)).toEqual([]);
    other.destroy();
    // The echo's last TX slots come back at its send completion, which the epoll backend may
    // take a tick after the client has read the bytes: waited for, not sampled.
    await until(() => io.poolStats().txRing.current === 0, 5000, 'the echo slots to come back');
    expect(io.poolStats().txRing.current).toBe(0);
  }, 60_000);
});
