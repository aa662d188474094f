// Closing without losing data: closeGraceful and shutdown() wait until the peer has acknowledged
// everything written (then CONNECTION_CLOSE code 0), time out when it never does, refuse new
// connections meanwhile; a receiver keeps what arrived before the peer's close (pushed, or
// waiting in pulled streams until streamRead takes it).
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { Io, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/quic';
import { listener, makePki, pattern, sha256, until } from './helpers.js';

const pki = makePki();
const tls = { ca: pki.ca, servername: 'localhost' };
const BIG = 8 << 20;  // what the server writes at once (the client's windows allow it)
const windows = { initialMaxData: 32 << 20, initialMaxStreamData: 16 << 20 };

interface Ended { origin: string; reason: string; code: number }

/**
 * A server that answers a request on stream 0 with `payload` (+ FIN), written as fast as quiche
 * takes it (Writable), and calls `then(conn)` right after the last bytes went in ('written':
 * quiche still holds about a congestion window of them, unsent or unacknowledged) or after the
 * first write ('started': most of the answer is still to be written).
 */
function server(io: Io, payload: Buffer, then: (conn: ConnId) => void, ends: Ended[], when: 'written' | 'started' = 'written') {
  const sent = new Map<ConnId, number>();
  const pump = (conn: ConnId) => {
    let at = sent.get(conn)!;
    while (at < payload.length) {
      const n = io.streamWrite(conn, 0, payload.subarray(at));
      if (n === 0) break;
      at += n;
    }
    sent.set(conn, at);
    if (at === payload.length) {
      sent.delete(conn);
      io.streamEnd(conn, 0);
      if (when === 'written') then(conn);
    }
  };
  return (ev: Event) => {
    if (ev.type === 'StreamFrame' && ev.stream === 0 && !sent.has(ev.conn) && (ev.fin || when === 'started')) {
      sent.set(ev.conn, 0);
      pump(ev.conn);
      if (when === 'started') then(ev.conn);
    }
    if (ev.type === 'Writable' && sent.has(ev.conn)) pump(ev.conn);
    if (ev.type === 'Disconnected') ends.push({ origin: ev.origin, reason: ev.reason, code: ev.errorCode });
  };
}

/** Drives `io` as the server (`onServer`) and as the client `client()`, which sends a request ('GET' + FIN) on stream 0 once Connected. */
function serveAndRequest(io: Io, onServer: (ev: Event) => void, client: () => ConnId, onClient: (ev: Event) => void) {
  return io.runSync((ev) => {
    if (ev.conn !== client()) return onServer(ev);
    if (ev.type === 'Connected') {
      io.streamWrite(ev.conn, 0, Buffer.from('GET'));
      io.streamEnd(ev.conn, 0);
    }
    onClient(ev);
  }, { onError: (e) => { throw e; } });
}

describe('QUIC graceful close', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });

  for (const when of ['written', 'started'] as const) {
    it(`closeGraceful ${when === 'written' ? 'right after 8 MiB were written' : 'after the first of 8 MiB were written (the rest follows on Writable)'}: all of it arrives, then code 0 both sides`, async () => {
      const payload = pattern(BIG, 3);
      const { io, port } = listener(pki);
      const serverEnds: Ended[] = [];
      const onServer = server(io, payload, (conn) => {
        io.closeGraceful(conn, 10_000);
        expect(io.streamWrite(conn, 1, Buffer.from('late'))).toBe(0);  // a new stream: not taken
        expect(() => io.openStream(conn)).toThrow(/closing/);
      }, serverEnds, when);
      const got: Buffer[] = [];
      let fin = false;
      const clientEnds: Ended[] = [];
      let client = 0 as ConnId;
      const h = serveAndRequest(io, onServer, () => client, (ev) => {
        if (ev.type === 'StreamFrame') { got.push(Buffer.from(ev.data)); fin ||= ev.fin; }
        if (ev.type === 'Disconnected') clientEnds.push({ origin: ev.origin, reason: ev.reason, code: ev.errorCode });
      });
      handles.push(h);
      client = io.quicConnectWith({ host: '127.0.0.1', port, tls, ...windows });
      await until(() => clientEnds.length === 1 && serverEnds.length === 1, 20_000, 'both Disconnected');
      expect(fin).toBe(true);
      expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
      expect(serverEnds[0]).toMatchObject({ origin: 'local', code: 0 });
      expect(serverEnds[0].reason).toContain('QUIC closed locally: NO_ERROR');
      expect(clientEnds[0]).toMatchObject({ origin: 'peer', code: 0 });
      expect(clientEnds[0].reason).toContain('QUIC closed by the peer: NO_ERROR');
    });
  }

  it('a peer that stops answering: the graceful close times out (origin timeout, ETIMEDOUT)', async () => {
    const { io, port } = listener(pki);
    // A relay that carries the client's datagrams until the request is in, then drops them
    // (the client's acknowledgements never reach the server).
    const front = dgram.createSocket('udp4');
    const back = dgram.createSocket('udp4');
    await new Promise<void>((r) => front.bind(0, '127.0.0.1', () => r()));
    await new Promise<void>((r) => back.bind(0, '127.0.0.1', () => r()));
    let cut = false;
    let clientAddr: { address: string; port: number } | null = null;
    front.on('message', (m, from) => {
      clientAddr = { address: from.address, port: from.port };
      if (!cut) back.send(m, port, '127.0.0.1');
    });
    back.on('message', (m) => { if (clientAddr) front.send(m, clientAddr.port, clientAddr.address); });
    const serverEnds: Ended[] = [];
    let closedAt = 0;
    let client = 0 as ConnId;
    const h = io.runSync((ev) => {
      if (ev.conn === client) {
        if (ev.type === 'Connected') {
          io.streamWrite(client, 0, Buffer.from('GET'));
          io.streamEnd(client, 0);
        }
        return;
      }
      if (ev.type === 'StreamFrame' && ev.fin) {
        cut = true;
        expect(io.streamWrite(ev.conn, 0, pattern(BIG, 5))).toBeGreaterThan(0);
        closedAt = Date.now();
        io.closeGraceful(ev.conn, 300);
      }
      if (ev.type === 'Disconnected') serverEnds.push({ origin: ev.origin, reason: ev.reason, code: ev.errorCode });
    }, { onError: (e) => { throw e; } });
    handles.push(h);
    client = io.quicConnectWith({ host: '127.0.0.1', port: (front.address() as { port: number }).port, tls, idleTimeoutMs: 2000 });
    await until(() => serverEnds.length === 1, 10_000, 'the server to give up');
    expect(Date.now() - closedAt).toBeGreaterThanOrEqual(290);
    expect(serverEnds[0].origin).toBe('timeout');
    expect(serverEnds[0].code).toBe(110);  // ETIMEDOUT
    expect(serverEnds[0].reason).toContain('graceful close timed out');
    io.close(client);
    front.close();
    back.close();
  });

  it('shutdown() lets an exchange in flight finish, refuses new connections meanwhile, then resolves', async () => {
    const payload = pattern(BIG, 9);
    const { io, ep, port } = listener(pki);
    const serverEnds: Ended[] = [];
    let shutdownDone: Promise<void> | null = null;
    let resolved = false;
    // The server answers the first bytes of stream 0 and shuts down; the client ends its side of
    // the stream only once it has read the whole answer: until then the exchange is in flight.
    const hs = io.runSync(server(io, payload, () => {
      shutdownDone = hs.shutdown({ timeoutMs: 10_000 }).then(() => { resolved = true; });
    }, serverEnds, 'started'), { onError: (e) => { throw e; } });
    const cio = new Io();
    const got: Buffer[] = [];
    let fin = false;
    const ends = new Map<ConnId, Ended>();
    let first = 0 as ConnId, second = 0 as ConnId;
    const buf = Buffer.alloc(64 * 1024);
    // In pull mode; its side of the stream ends when the test says so.
    let release = false, ended = false;
    const maybeEnd = () => {
      if (fin && release && !ended) {
        ended = true;
        cio.streamEnd(first, 0);
      }
    };
    const drain = () => {
      for (let i = 0; i < 4; i++) {
        const r = cio.streamRead(first, 0, buf);
        if (r === -1) {
          fin = true;
          maybeEnd();
          return;
        }
        if (r === 0) return;
        got.push(Buffer.from(buf.subarray(0, r)));
      }
      setTimeout(drain, 2);
    };
    const hc = cio.runSync((ev) => {
      if (ev.type === 'Connected' && ev.conn === first) {
        cio.pullStream(first, 0);
        cio.streamWrite(first, 0, Buffer.from('GET'));
      }
      if (ev.type === 'StreamReadable') drain();
      if (ev.type === 'Disconnected') ends.set(ev.conn, { origin: ev.origin, reason: ev.reason, code: ev.errorCode });
    }, { onError: (e) => { throw e; } });
    handles.push(hc);
    first = cio.quicConnectWith({ host: '127.0.0.1', port, tls, ...windows });
    await until(() => shutdownDone !== null, 10_000, 'the request');
    const refusedBefore = io.quicStats(ep)!.refused;
    second = cio.quicConnectWith({ host: '127.0.0.1', port, tls, connectTimeoutMs: 400 });
    await until(() => ends.has(second), 5000, 'the second client to give up');
    expect(ends.get(second)!.reason).toMatch(/timed out|ConnectTimeout/i);
    expect(io.quicStats(ep)!.refused).toBeGreaterThan(refusedBefore);  // the listener was open, refusing
    release = true;
    maybeEnd();
    await until(() => ends.has(first) && resolved, 20_000, 'the first client to end and shutdown to resolve');
    expect(fin).toBe(true);
    expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
    expect(ends.get(first)).toMatchObject({ origin: 'peer', code: 0 });
    expect(serverEnds).toHaveLength(1);
    expect(serverEnds[0]).toMatchObject({ origin: 'local', code: 0 });
    await shutdownDone;
    io.shutdown();
  });

  for (const [name, opts] of [['cubic', {}], ['BBRv2 paced by the wheel', { congestionControl: 'bbr2' as const, maxPacingRate: 4 << 20 }]] as const) {
    it(`quicClose with a transfer in flight (${name}) still reaches the peer: its Disconnected says so, not its idle timeout`, async () => {
      const { io, port } = listener(pki, opts);
      const serverEnds: Ended[] = [];
      const onServer = server(io, pattern(BIG, 4), (conn) => io.quicClose(conn, 7, 'bye'), serverEnds, 'started');
      const clientEnds: Ended[] = [];
      let client = 0 as ConnId;
      const h = serveAndRequest(io, onServer, () => client, (ev) => {
        if (ev.type === 'Disconnected') clientEnds.push({ origin: ev.origin, reason: ev.reason, code: ev.errorCode });
      });
      handles.push(h);
      client = io.quicConnectWith({ host: '127.0.0.1', port, tls, ...windows, idleTimeoutMs: 60_000 });
      await until(() => clientEnds.length === 1, 20_000, 'the client to hear of the close');
      expect(clientEnds[0]).toMatchObject({ origin: 'peer', code: 7 });
      expect(clientEnds[0].reason).toContain('application error 7 "bye"');
    });
  }

  it('a pulled stream read to its end (-1) after the peer closed: Disconnected follows at once, not at the 10 s bound', async () => {
    const { io, port } = listener(pki);
    const serverEnds: Ended[] = [];
    const cio = new Io();
    const hs = io.runSync(server(io, pattern(1 << 20, 6), (conn) => io.closeGraceful(conn), serverEnds), { onError: (e) => { throw e; } });
    handles.push(hs);
    let client = 0 as ConnId;
    let endAt = 0, discAt = 0;
    const buf = Buffer.alloc(16 * 1024);
    const slowly = () => {
      const r = cio.streamRead(client, 0, buf);
      if (r === -1) { endAt = Date.now(); return; }
      setTimeout(slowly, r === 0 ? 20 : 1);
    };
    const hc = cio.runSync((ev) => {
      if (ev.type === 'Connected') {
        cio.pullStream(client, 0);
        cio.streamWrite(client, 0, Buffer.from('GET'));
        cio.streamEnd(client, 0);
        setTimeout(slowly, 50);
      }
      if (ev.type === 'Disconnected') discAt = Date.now();
    }, { onError: (e) => { throw e; } });
    handles.push(hc);
    client = cio.quicConnectWith({ host: '127.0.0.1', port, tls, ...windows });
    await until(() => discAt > 0, 20_000, 'the client Disconnected');
    expect(endAt).toBeGreaterThan(0);
    expect(discAt).toBeGreaterThanOrEqual(endAt);
    expect(discAt - endAt).toBeLessThan(9000);  // the wait for unread data is 10 s
  });

  it('a client receiving pushed data keeps everything that came before the peer\'s close', async () => {
    // The server's CONNECTION_CLOSE comes as soon as the client's quiche has acknowledged the
    // answer, long before a client handed 8 events per poll has been told all of it: the data
    // events still come first, then Disconnected.
    const payload = pattern(1 << 20, 13);
    const { io, port } = listener(pki);
    const serverEnds: Ended[] = [];
    const onServer = server(io, payload, (conn) => io.closeGraceful(conn), serverEnds);
    const cio = new Io({ maxEventsPerPoll: 8 });
    const got: Buffer[] = [];
    let fin = false, ended = false, afterEnd = 0;
    const hs = io.runSync(onServer, { onError: (e) => { throw e; } });
    handles.push(hs);
    let client = 0 as ConnId;
    const hc = cio.runSync((ev) => {
      if (ev.type === 'Connected') {
        cio.streamWrite(client, 0, Buffer.from('GET'));
        cio.streamEnd(client, 0);
      }
      if (ev.type === 'StreamFrame') { if (ended) afterEnd++; got.push(Buffer.from(ev.data)); fin ||= ev.fin; }
      if (ev.type === 'Disconnected') ended = true;
    }, { onError: (e) => { throw e; } });
    handles.push(hc);
    client = cio.quicConnectWith({ host: '127.0.0.1', port, tls, ...windows });
    await until(() => ended, 10_000, 'the client to end');
    expect(afterEnd).toBe(0);
    expect(fin).toBe(true);
    expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
  });
});
