// QUIC through the engine, our client against our server on loopback (real UDP sockets, quiche
// on both sides): echo, datagrams, flow control under small windows, thousands of streams,
// closes and their reasons, certificate and ALPN failures, retry, resets, hot reload, and hostile
// datagrams at the listener.
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import { Io, type ConnId, type Event } from '@zero-io/core';
import '@zero-io/quic';
import { BulkClient, echoServer, listener, makeBigCert, makePki, pattern, rebindingRelay, sha256, until } from './helpers.js';

const pki = makePki();

function run(io: Io, clients: Set<ConnId>, onEvent: (ev: Event) => void) {
  const echo = echoServer(io, clients);
  return io.runSync((ev) => {
    if (!echo(ev)) onEvent(ev);
  }, { onError: (e) => { throw e; } });
}

describe('QUIC: our client and our server', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });

  it('echoes a stream and a datagram; Connected says quic and the ALPN; closes carry code and reason', async () => {
    const { io, port } = listener(pki, { alpn: ['zero-echo'] });
    const clients = new Set<ConnId>();
    const seen: string[] = [];
    let echoed = '';
    let dgram = '';
    let clientConn = 0 as ConnId;
    let serverConn = -1 as ConnId;
    const closes: { who: string; reason: string; code: number; origin: string }[] = [];
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Connected') {
        seen.push(`${ev.conn === clientConn ? 'client' : 'server'} ${ev.protocol} ${ev.alpn} tls=${ev.tls}`);
        if (ev.conn !== clientConn) serverConn = ev.conn;
        if (ev.conn === clientConn) {
          const s = io.openStream(clientConn);
          expect(s).toBe(0);
          expect(io.streamWrite(clientConn, s, Buffer.from('hello, quic'))).toBe(11);
          io.streamEnd(clientConn, s);
          io.sendDatagram(clientConn, Buffer.from('a datagram'));
        }
      }
      if (ev.type === 'StreamFrame' && ev.conn === clientConn) {
        echoed += Buffer.from(ev.data).toString();
        if (ev.fin) expect(ev.stream).toBe(0);
      }
      if (ev.type === 'Datagram' && ev.conn === clientConn) dgram = Buffer.from(ev.data).toString();
      if (ev.type === 'Disconnected') {
        closes.push({ who: ev.conn === clientConn ? 'client' : 'server', reason: ev.reason, code: ev.errorCode, origin: ev.origin });
      }
    });
    handles.push(h);
    clientConn = io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['zero-echo'], tls: { ca: pki.ca, servername: 'localhost' } });
    clients.add(clientConn);
    await until(() => echoed === 'hello, quic' && dgram === 'a datagram', 10_000, 'the echo');
    expect(seen.sort()).toEqual(['client quic zero-echo tls=true', 'server quic zero-echo tls=true']);
    const st = io.connStats(clientConn);
    expect(st.rttUs).toBeGreaterThan(0);
    expect(st.cwnd).toBeGreaterThan(0);
    expect(st.bytesSent).toBeGreaterThan(0);
    expect(io.datagramMaxSize(clientConn)).toBeGreaterThan(1000);
    // tlsInfo: the TLS 1.3 session inside QUIC, on both sides.
    expect(io.tlsInfo(clientConn)).toMatchObject({ state: 'open', side: 'client', version: 'TLSv1.3', alpn: 'zero-echo',
      servername: 'localhost', resumed: false, peerSubject: expect.stringContaining('localhost'), peerVerified: true, kTls: false, alert: -1, reason: null });
    expect(io.tlsInfo(clientConn)!.cipher).toMatch(/^TLS_(AES_128_GCM|AES_256_GCM|CHACHA20_POLY1305)_SHA(256|384)$/);
    expect(io.tlsInfo(clientConn)!.kTlsReason).toContain('QUIC');
    expect(io.tlsInfo(serverConn)).toMatchObject({ state: 'open', side: 'server', version: 'TLSv1.3', alpn: 'zero-echo',
      servername: 'localhost', peerSubject: null, peerVerified: false, kTls: false });
    expect(io.tlsInfo(serverConn)!.cipher).toBe(io.tlsInfo(clientConn)!.cipher);
    io.quicClose(clientConn, 42, 'done here');
    await until(() => closes.length === 2, 5000, 'both Disconnected');
    const client = closes.find((c) => c.who === 'client')!;
    const server = closes.find((c) => c.who === 'server')!;
    expect(client).toMatchObject({ code: 42, origin: 'local' });
    expect(client.reason).toContain('application error 42 "done here"');
    expect(server).toMatchObject({ code: 42, origin: 'peer' });
    expect(server.reason).toContain('QUIC closed by the peer: application error 42 "done here"');
  });

  it('moves 20 streams x 1 MiB each way intact through small flow-control windows (Writable per stream)', async () => {
    const { io, ep, port } = listener(pki, { initialMaxStreamData: 64 * 1024, initialMaxData: 256 * 1024 });
    const clients = new Set<ConnId>();
    const payload = pattern(1 << 20);
    const want = sha256(payload);
    let bulk: BulkClient | null = null;
    let writables = 0;
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Writable' && clients.has(ev.conn)) writables++;
      if (ev.type === 'Connected' && bulk && ev.conn === bulk.conn) bulk.open(20);
      bulk?.onEvent(ev);
    });
    handles.push(h);
    const conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' },
      initialMaxStreamData: 64 * 1024, initialMaxData: 256 * 1024 });
    clients.add(conn);
    bulk = new BulkClient(io, conn, payload);
    await until(() => bulk!.results.size === 20, 25_000, 'every stream echoed');
    for (const d of bulk.results.values()) expect(d).toBe(want);
    expect(writables).toBeGreaterThan(0);  // the windows made writes wait
    const st = io.quicStats(ep)!;
    expect(st.accepted).toBe(1);
    expect(st.packetsIn).toBeGreaterThan(1000);
    io.close(conn);
  }, 40_000);

  it('moves 100 MiB over 100 concurrent streams each way with every checksum intact', async () => {
    const { io, port } = listener(pki, { maxStreamsBidi: 100 });
    const clients = new Set<ConnId>();
    const payload = pattern(1 << 20, 21);
    const want = sha256(payload);
    let bulk: BulkClient | null = null;
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Connected' && bulk && ev.conn === bulk.conn) bulk.open(100);
      bulk?.onEvent(ev);
    });
    handles.push(h);
    const conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    clients.add(conn);
    bulk = new BulkClient(io, conn, payload);
    await until(() => bulk!.results.size === 100, 60_000, 'every stream echoed');
    for (const d of bulk.results.values()) expect(d).toBe(want);
    const st = io.connStats(conn);
    expect(st.bytesReceived).toBeGreaterThanOrEqual(100 << 20);
    io.close(conn);
  }, 90_000);

  it('runs 2,000 short streams through a limit of 100 at a time (MAX_STREAMS raised as they finish)', async () => {
    const { io, port } = listener(pki, { maxStreamsBidi: 100 });
    const clients = new Set<ConnId>();
    let conn = 0 as ConnId;
    let opened = 0, finished = 0, refused = 0;
    const open = () => {
      while (opened < 2000) {
        let s: number;
        try {
          s = io.openStream(conn);
        } catch (e) {
          expect(String(e)).toContain('stream limit');
          refused++;
          return;  // a Writable with stream -1 tells when the peer allows more
        }
        io.streamWrite(conn, s, Buffer.from(`stream ${s}`));
        io.streamEnd(conn, s);
        opened++;
      }
    };
    const h = run(io, clients, (ev) => {
      if (ev.conn !== conn) return;
      if (ev.type === 'Connected') open();
      if (ev.type === 'Writable' && ev.stream === -1) open();  // the peer raised MAX_STREAMS
      if (ev.type === 'StreamFrame' && ev.fin) {
        finished++;
        open();
      }
    });
    handles.push(h);
    conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' }, maxStreamsBidi: 100 });
    clients.add(conn);
    await until(() => finished === 2000, 25_000, '2,000 streams');
    expect(refused).toBeGreaterThan(0);  // the limit was met and lifted
    io.close(conn);
  }, 40_000);

  it('fails the handshake on an untrusted certificate (CRYPTO_ERROR with the TLS alert) and on no common ALPN', async () => {
    const { io, port } = listener(pki, { alpn: ['one'] });
    const clients = new Set<ConnId>();
    const ends = new Map<ConnId, { reason: string; origin: string; connected: boolean; tls: ReturnType<Io['tlsInfo']> }>();
    const connected = new Set<ConnId>();
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Connected') connected.add(ev.conn);
      if (ev.type === 'Disconnected' && clients.has(ev.conn)) ends.set(ev.conn, { reason: ev.reason, origin: ev.origin, connected: connected.has(ev.conn), tls: io.tlsInfo(ev.conn) });
    });
    handles.push(h);
    const untrusted = io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['one'], tls: { servername: 'localhost' } });
    const noAlpn = io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['two'], tls: { ca: pki.ca, servername: 'localhost' } });
    clients.add(untrusted).add(noAlpn);
    await until(() => ends.size === 2, 10_000, 'both handshakes to fail');
    expect(ends.get(untrusted)!.connected).toBe(false);
    expect(ends.get(untrusted)!.reason).toMatch(/CRYPTO_ERROR 0x1(2a|30) \(TLS alert (bad_certificate|unknown_ca)\): certificate verification failed: /);
    expect(ends.get(noAlpn)!.reason).toContain('no_application_protocol');
    // tlsInfo in the Disconnected handler says why: the alert we sent (42 bad_certificate or
    // 48 unknown_ca; 120 no_application_protocol came from the server).
    expect(ends.get(untrusted)!.tls).toMatchObject({ state: 'failed', side: 'client', alertReceived: false });
    expect([42, 48]).toContain(ends.get(untrusted)!.tls!.alert);
    expect(ends.get(untrusted)!.tls!.reason).toMatch(/^certificate verification failed: /);
    expect(ends.get(noAlpn)!.tls).toMatchObject({ state: 'failed', alert: 120, alertReceived: true });
    expect(io.quicCloseInfo(untrusted)).toBeNull();  // outside its Disconnected batch
  });

  it('closes an idle connection on idleTimeoutMs (origin timeout, both sides)', async () => {
    const { io, port } = listener(pki, { idleTimeoutMs: 300 });
    const clients = new Set<ConnId>();
    const ends: { origin: string; reason: string }[] = [];
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Disconnected') ends.push({ origin: ev.origin, reason: ev.reason });
    });
    handles.push(h);
    clients.add(io.quicConnectWith({ host: '127.0.0.1', port, idleTimeoutMs: 300, tls: { ca: pki.ca, servername: 'localhost' } }));
    await until(() => ends.length === 2, 5000, 'both idle closes');
    for (const e of ends) {
      expect(e.origin).toBe('timeout');
      expect(e.reason).toContain('QUIC idle timeout');
    }
  });

  it('serves a handshake through a stateless retry (address-validation token)', async () => {
    const { io, ep, port } = listener(pki, { retry: true });
    const clients = new Set<ConnId>();
    let echoed = '';
    let conn = 0 as ConnId;
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Connected' && ev.conn === conn) {
        io.streamWrite(conn, 0, Buffer.from('after retry'));
        io.streamEnd(conn, 0);
      }
      if (ev.type === 'StreamFrame' && ev.conn === conn) echoed += Buffer.from(ev.data).toString();
    });
    handles.push(h);
    conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    clients.add(conn);
    await until(() => echoed === 'after retry', 10_000, 'the echo after a retry');
    expect(io.quicStats(ep)!.retries).toBeGreaterThanOrEqual(1);
    io.close(conn);
  });

  it('reports a reset stream and a STOP_SENDING with their codes', async () => {
    const { io, port } = listener(pki);
    let conn = 0 as ConnId;
    const got: string[] = [];
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected' && ev.conn === conn) {
        io.streamWrite(conn, 0, Buffer.from('x'));
        io.streamReset(conn, 0, 77);            // the server sees StreamReset 77 on stream 0
        io.streamWrite(conn, 4, Buffer.from('y'));
      }
      if (ev.type === 'StreamFrame' && ev.conn !== conn && ev.stream === 4) {
        io.stopSending(ev.conn, 4, 99);         // the client sees StopSending 99 on stream 4
      }
      if (ev.type === 'StreamReset') got.push(`reset ${ev.conn === conn ? 'client' : 'server'} ${ev.stream} ${ev.errorCode}`);
      if (ev.type === 'StopSending') got.push(`stop ${ev.conn === conn ? 'client' : 'server'} ${ev.stream} ${ev.errorCode}`);
      if (ev.type === 'Writable' && ev.conn === conn) got.push(`writable ${ev.stream}`);
    });
    handles.push(h);
    conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    // The client learns of STOP_SENDING when it next writes on the stream.
    const poke = setInterval(() => {
      try { io.streamWrite(conn, 4, Buffer.from('more')); } catch (e) { got.push(`write refused: ${(e as Error).message.includes('stop sending')}`); clearInterval(poke); }
    }, 20);
    await until(() => got.includes('reset server 0 77') && got.some((g) => g.startsWith('write refused')), 10_000, 'reset and stop');
    clearInterval(poke);
    expect(got).toContain('write refused: true');
    io.close(conn);
  });

  it('swaps the certificate through CertReloadHandle.reloadQuicFromPem (new handshakes get it)', async () => {
    const { io, ep, port } = listener(pki);
    const clients = new Set<ConnId>();
    const ok = new Set<ConnId>();
    const failed = new Set<ConnId>();
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Connected' && clients.has(ev.conn)) ok.add(ev.conn);
      if (ev.type === 'Disconnected' && clients.has(ev.conn) && !ok.has(ev.conn)) failed.add(ev.conn);
    });
    handles.push(h);
    // server2's certificate names second.test; the first one does not.
    const before = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'second.test' } });
    clients.add(before);
    await until(() => failed.has(before), 10_000, 'the handshake for second.test to fail before the reload');
    const handle = io.enableCertHotReload(ep);
    expect(handle.reloadQuicFromPem(pki.server2Cert, pki.server2Key)).toBe(2);
    const after = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'second.test' } });
    clients.add(after);
    await until(() => ok.has(after), 10_000, 'the handshake for second.test after the reload');
    io.close(after);
  });

  it('drops garbage, short Initials and unknown ids cheaply, answers an unknown version, and keeps serving', async () => {
    const { io, ep, port } = listener(pki);
    const clients = new Set<ConnId>();
    let echoed = '';
    let conn = 0 as ConnId;
    const h = run(io, clients, (ev) => {
      if (ev.type === 'Connected' && ev.conn === conn) {
        io.streamWrite(conn, 0, Buffer.from('still here'));
        io.streamEnd(conn, 0);
      }
      if (ev.type === 'StreamFrame' && ev.conn === conn) echoed += Buffer.from(ev.data).toString();
    });
    handles.push(h);
    const sock = dgram.createSocket('udp4');
    const answers: Buffer[] = [];
    sock.on('message', (m) => answers.push(m));
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
    const send = (b: Buffer) => new Promise<void>((r) => sock.send(b, port, '127.0.0.1', () => r()));
    let seed = 1;
    const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) & 255;
    for (let i = 0; i < 300; i++) {  // random bytes of every length
      const b = Buffer.alloc(1 + (i * 7) % 1400);
      for (let j = 0; j < b.length; j++) b[j] = rnd();
      await send(b);
      if (i % 20 === 19) await new Promise((r) => setTimeout(r, 5));  // within the socket's receive buffer
    }
    // A long-header Initial (version 1) that is too short, and one of 1200 bytes of junk.
    const initial = (len: number, version: number) => {
      const b = Buffer.alloc(len);
      b[0] = 0xc0;
      b.writeUInt32BE(version, 1);
      b[5] = 8;
      for (let j = 6; j < 14; j++) b[j] = rnd();
      b[14] = 8;
      for (let j = 15; j < len; j++) b[j] = rnd();
      return b;
    };
    await send(initial(300, 1));
    await send(initial(1200, 1));
    const vn = initial(1200, 0x1a2a3a4a);  // an unknown version: a Version Negotiation answer
    await send(vn);
    const short = Buffer.alloc(100, 0x41);
    short[0] = 0x40;
    await send(short);  // a short header for an id nobody has
    await until(() => answers.some((m) => (m[0] & 0x80) !== 0), 5000, 'the version negotiation answer');
    const vnAnswers = answers.filter((m) => (m[0] & 0x80) !== 0);
    expect(vnAnswers).toHaveLength(1);
    expect(vnAnswers[0].readUInt32BE(1)).toBe(0);  // version 0: Version Negotiation
    sock.close();
    const st = io.quicStats(ep)!;
    expect(st.versionNegotiations).toBe(1);
    // Every other answer is a Stateless Reset: random bytes that happened to look like a short
    // header for an id with this listener's slot (1 in 2^14) get one, small and short-headed.
    const resets = answers.filter((m) => (m[0] & 0x80) === 0);
    expect(resets).toHaveLength(st.statelessResets);
    for (const m of resets) {
      expect(m[0] & 0xc0).toBe(0x40);
      expect(m.length).toBeLessThanOrEqual(64);
    }
    expect(st.accepted).toBe(0);  // the junk Initial left no connection behind
    expect(st.dropped + st.unknownConnectionId).toBeGreaterThan(250);
    conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    clients.add(conn);
    await until(() => echoed === 'still here', 10_000, 'a real connection after the garbage');
    io.close(conn);
  });

  it('pull mode: a marked stream waits in the engine until streamRead takes it (flow control holds the sender)', async () => {
    const { io, port } = listener(pki, { initialMaxStreamData: 64 * 1024 });
    let conn = 0 as ConnId;
    const payload = pattern(1 << 20, 11);
    let sent = 0;
    const got: Buffer[] = [];
    let ended = false, readables = 0, pushed = 0;
    const buf = Buffer.alloc(10_000);
    const pumpOut = () => {
      while (sent < payload.length) {
        const n = io.streamWrite(conn, 0, payload.subarray(sent));
        sent += n;
        if (n === 0) return;
      }
      io.streamEnd(conn, 0);
    };
    const h = io.runSync((ev) => {
      if (ev.conn === conn) {
        if (ev.type === 'Connected') pumpOut();
        if (ev.type === 'Writable') pumpOut();
        return;
      }
      if (ev.type === 'Connected') io.pullStream(ev.conn, 0);  // before the client's stream 0 exists
      // Data that came in the batch of Connected, before pullStream took effect, is pushed.
      if (ev.type === 'StreamFrame') { pushed += ev.length; got.push(Buffer.from(ev.data)); }
      if (ev.type === 'StreamReadable') {
        readables++;
        // read slowly: one piece per event, then again on a timer, until dry
        const server = ev.conn;
        const drain = () => {
          for (;;) {
            const r = io.streamRead(server, 0, buf);
            if (r === -1) { ended = true; return; }
            if (r === 0) return;
            got.push(Buffer.from(buf.subarray(0, r)));
            if (got.length % 20 === 0) { setTimeout(drain, 1); return; }
          }
        };
        drain();
      }
    });
    handles.push(h);
    conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' }, initialMaxStreamData: 64 * 1024 });
    await until(() => ended, 20_000, 'the pulled stream to end');
    expect(sha256(Buffer.concat(got))).toBe(sha256(payload));
    expect(pushed).toBeLessThan(payload.length / 4);  // the rest waited for streamRead
    expect(readables).toBeGreaterThan(1);
    expect(() => io.streamRead(conn, 0, buf)).toThrow(/not in pull mode/);
    io.close(conn);
  });

  for (const [name, address] of [['BP: a new source port', '127.0.0.1'], ['BA: a new address (127.0.0.2)', '127.0.0.2']] as const) {
    it(`${name}: follows a client whose address changes mid-transfer (PathMigration, the connection keeps its id)`, async () => {
      const { io, port } = listener(pki);
      const relay = await rebindingRelay(port, 200, address);
      const clients = new Set<ConnId>();
      const payload = pattern(2 << 20, 5);
      let bulk: BulkClient | null = null;
      const moves: { conn: ConnId; old: string; now: string; peer: string }[] = [];
      const fmt = (a: { address: string; port: number } | null | undefined) => a ? `${a.address}:${a.port}` : '';
      const h = run(io, clients, (ev) => {
        if (ev.type === 'PathMigration') moves.push({ conn: ev.conn, old: fmt(ev.oldPeer), now: fmt(ev.newPeer), peer: fmt(io.peerAddress(ev.conn)) });
        if (ev.type === 'Connected' && bulk && ev.conn === bulk.conn) bulk.open(2);
        bulk?.onEvent(ev);
      });
      handles.push(h);
      const conn = io.quicConnectWith({ host: '127.0.0.1', port: relay.port, tls: { ca: pki.ca, servername: 'localhost' } });
      clients.add(conn);
      bulk = new BulkClient(io, conn, payload);
      await until(() => bulk!.results.size === 2, 20_000, 'the transfer across the rebinding');
      for (const d of bulk.results.values()) expect(d).toBe(sha256(payload));
      expect(relay.forwarded()).toBeGreaterThan(200);
      expect(moves).toHaveLength(1);
      expect(moves[0]).toMatchObject({ old: fmt(relay.before), now: fmt(relay.after) });
      expect(moves[0].peer).toBe(moves[0].now);
      io.close(conn);
      relay.close();
    });
  }

  it('6: works over IPv6 (::1)', async () => {
    const srv = new Io();
    const ep = srv.quicListenWith({ addr: '[::1]:0', tls: { cert: pki.serverCert, key: pki.serverKey } });
    const port = srv.localAddress(ep).port;
    expect(srv.localAddress(ep).family).toBe('IPv6');
    const clients = new Set<ConnId>();
    let echoed = '';
    let conn = 0 as ConnId;
    let peer = '';
    const h = run(srv, clients, (ev) => {
      if (ev.type === 'Connected' && ev.conn !== conn) peer = ev.peer?.address ?? '';
      if (ev.type === 'Connected' && ev.conn === conn) {
        srv.streamWrite(conn, 0, Buffer.from('over v6'));
        srv.streamEnd(conn, 0);
      }
      if (ev.type === 'StreamFrame' && ev.conn === conn) echoed += Buffer.from(ev.data).toString();
    });
    handles.push(h);
    conn = srv.quicConnectWith({ host: '::1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    clients.add(conn);
    await until(() => echoed === 'over v6', 10_000, 'the echo over IPv6');
    expect(peer).toBe('::1');
    srv.close(conn);
  });

  it('A: sends at most 3x what it received to an address that has not proved itself (a large certificate)', async () => {
    // A certificate with 400 names: the server's first flight is far larger than 3 x 1,200 bytes.
    const big = makeBigCert(400);
    const { io, port } = listener({ ...pki, serverCert: big.cert, serverKey: big.key });
    // A relay that forwards the client's first datagram only, and counts what comes back.
    const relay = dgram.createSocket('udp4');
    await new Promise<void>((r) => relay.bind(0, '127.0.0.1', () => r()));
    const up = dgram.createSocket('udp4');
    await new Promise<void>((r) => up.bind(0, '127.0.0.1', () => r()));
    let toServer = 0, fromServer = 0, first = true;
    relay.on('message', (m) => {
      if (!first) return;  // the client's later packets (its ACKs: the proof) never arrive
      first = false;
      toServer += m.length;
      up.send(m, port, '127.0.0.1');
    });
    up.on('message', (m) => { fromServer += m.length; });
    const h = io.runSync(() => {});
    handles.push(h);
    const conn = io.quicConnectWith({ host: '127.0.0.1', port: (relay.address() as { port: number }).port, idleTimeoutMs: 4000,
      tls: { ca: pki.ca, servername: 'localhost' } });
    await new Promise((r) => setTimeout(r, 3000));  // the server's retransmissions (PTOs) included
    expect(toServer).toBeGreaterThanOrEqual(1200);
    expect(fromServer).toBeGreaterThan(0);
    expect(fromServer).toBeLessThanOrEqual(3 * toServer);
    expect(big.cert.length).toBeGreaterThan(6 * toServer);  // the limit is what held it back
    io.close(conn);
    relay.close();
    up.close();
  });

  it('tells StopSending without a write, and writes SendBuffers to streams', async () => {
    const { io, port } = listener(pki);
    let conn = 0 as ConnId;
    const got: string[] = [];
    let server = 0 as ConnId;
    const h = io.runSync((ev) => {
      if (ev.type === 'Connected' && ev.conn === conn) {
        const buf = io.sendBuffer();
        buf.write('from a SendBuffer');
        expect(io.streamWriteBuffer(conn, 0, buf)).toBe(17);
        buf.release();
      }
      if (ev.type === 'StreamFrame' && ev.conn !== conn) {
        got.push(Buffer.from(ev.data).toString());
        server = ev.conn;
        io.stopSending(ev.conn, 0, 31);  // the client is not writing: it is told by an event
      }
      if (ev.type === 'StopSending') got.push(`stop ${ev.conn === conn ? 'client' : 'server'} ${ev.stream} ${ev.errorCode}`);
    });
    handles.push(h);
    conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    await until(() => got.includes('stop client 0 31'), 10_000, 'StopSending at the client');
    expect(got[0]).toBe('from a SendBuffer');
    expect(() => io.streamWrite(conn, 0, Buffer.from('x'))).toThrow(/stop sending/);
    // TCP-only calls on a QUIC connection say so.
    expect(() => io.pauseRecv(server)).toThrow(/does not apply to this kind of connection/);
    expect(() => io.streamWrite(conn, Buffer.from('x'))).toThrow(/does not apply to this kind of connection/);
    io.close(conn);
  });

  it('gives up a handshake nobody answers after connectTimeoutMs (ConnectTimeout)', async () => {
    const io = new Io();
    const sink = dgram.createSocket('udp4');  // takes the Initials, answers nothing
    await new Promise<void>((r) => sink.bind(0, '127.0.0.1', () => r()));
    let end: { code: number; origin: string; reason: string; kind: string | undefined } | null = null;
    const t0 = Date.now();
    const h = io.runSync((ev) => {
      if (ev.type === 'Disconnected') end = { code: ev.errorCode, origin: ev.origin, reason: ev.reason, kind: ev.error?.kind };
    });
    handles.push(h);
    io.quicConnectWith({ host: '127.0.0.1', port: (sink.address() as { port: number }).port, connectTimeoutMs: 300 });
    await until(() => end !== null, 5000, 'the connect timeout');
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(end).toMatchObject({ code: -1014, origin: 'timeout', kind: 'ConnectTimeout' });
    expect(end!.reason).toMatch(/connect timed out/);
    sink.close();
  });

  it('refuses what does not apply, with clear errors', () => {
    const { io, port } = listener(pki);
    expect(() => io.quicListenWith({ addr: '127.0.0.1:0', tls: { cert: pki.serverCert, key: pki.serverKey }, congestionControl: 'vegas' as 'cubic' }))
      .toThrow(/congestionControl is 'reno', 'cubic' or 'bbr2'/);
    expect(() => io.quicConnectWith({ host: '', port })).toThrow(/host must be an IP address or a host name/);
    expect(() => io.quicConnectWith({ host: 'localhost', port, family: 5 as never })).toThrow(/family must be 0 \(both\), 4 or 6/);
    const conn = io.quicConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    expect(() => io.streamWrite(conn, 0, Buffer.from('early'))).toThrow(/handshake has not finished/);
    expect(() => io.openStream(conn, 'sideways' as 'uni')).toThrow(/'bidi' or 'uni'/);
    expect(() => io.quicConnectWith({ host: '127.0.0.1', port, tls: { alpn: ['x'] } })).toThrow(/alpn at the top level/);
    io.close(conn);
    io.shutdown();
    let kind = '';
    try { io.openStream(conn); } catch (e) { kind = (e as { kind?: string }).kind ?? 'not an IoError'; }
    expect(kind).toBe('ShardClosed');
  });
});
