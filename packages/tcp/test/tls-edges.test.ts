// TLS edge cases found in review: each test fails on the behaviour it guards against.
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { Io, type ConnId } from '@zero-io/core';
import '@zero-io/tcp';
import { echoHandler, onError, randomPayload, until } from './helpers.js';
import { makePki, nodeTlsClient, recorder, roundTrip } from './tls-helpers.js';

const pki = makePki();
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

const nodeClient = (port: number, opts: tls.ConnectionOptions = {}) => nodeTlsClient(pki, port, opts);

/** A node:tls server that records what each connection sent, until it ended. */
function nodeSink(onSecure?: (s: tls.TLSSocket) => void) {
  const got: { data: Buffer; ended: boolean }[] = [];
  const server = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, (s) => {
    const rec = { data: Buffer.alloc(0), ended: false };
    got.push(rec);
    s.on('data', (d: Buffer) => { rec.data = Buffer.concat([rec.data, d]); });
    s.on('end', () => { rec.ended = true; s.end(); });
    s.on('error', () => {});
    onSecure?.(s);
  });
  server.on('tlsClientError', () => {});
  const ready = new Promise<number>((r) => server.listen(0, '127.0.0.1', () => r((server.address() as net.AddressInfo).port)));
  closers.push(async () => { server.close(); });
  return { got, ready };
}

describe('TLS writes', () => {
  it('a SendBuffer written to a TLS connection is encrypted, not sent as plaintext', async () => {
    const r = recorder();
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const s = await nodeClient(r.io.localAddress(ep)!.port);
    await until(() => r.log.some((e) => e.type === 'Connected'), 5000, 'Connected');
    const conn = r.log.find((e) => e.type === 'Connected')!.conn as ConnId;
    const msg = randomPayload(1500, 1);
    const buf = r.io.sendBuffer(msg.length);
    buf.write(msg);
    let got = Buffer.alloc(0);
    s.on('data', (d: Buffer) => { got = Buffer.concat([got, d]); });
    expect(r.io.streamWriteBuffer(conn, buf)).toBe(msg.length);
    r.io.streamWrite(conn, Buffer.from('|after'));
    await until(() => got.length >= msg.length + 6, 5000, 'the SendBuffer bytes, decrypted');
    expect(got.equals(Buffer.concat([msg, Buffer.from('|after')]))).toBe(true);
    s.destroy();
  });

  it('an IoHandle write that does not fit during the handshake is refused whole, never cut', async () => {
    const sink = nodeSink();
    const port = await sink.ready;
    const rejected: number[] = [];
    const r = recorder((ev) => { if (ev.type === 'HandleRejected') rejected.push(ev.length); }, { maxWriteQueueBytes: 64 * 1024 });
    closers.push(r.close);
    const conn = r.io.tcpConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    const h = r.io.handle();
    const a = Buffer.alloc(40_000, 'a');
    const b = Buffer.alloc(40_000, 'b');  // a + b exceed the 64 KiB queue bound
    h.streamWrite(conn, a);
    h.streamWrite(conn, b);
    await until(() => rejected.length === 1 && sink.got[0]?.data.length >= a.length, 5000, 'a delivered, b rejected');
    expect(rejected).toEqual([b.length]);
    await new Promise((res) => setTimeout(res, 100));
    expect(sink.got[0].data.equals(a)).toBe(true);
  });

  it('closeGraceful during the handshake sends the held writes and close_notify after it', async () => {
    const sink = nodeSink();
    const port = await sink.ready;
    // Plain TCP first, then tlsUpgrade: the connection is open while its handshake runs.
    const r = recorder((ev, io) => {
      if (ev.type !== 'Connected') return;
      io.tlsUpgrade(ev.conn, { ca: pki.ca, servername: 'localhost' });
      expect(io.streamWrite(ev.conn, Buffer.from('held until the handshake'))).toBe(24);
      io.closeGraceful(ev.conn, 5000);
    });
    closers.push(r.close);
    r.io.tcpConnectWith({ host: '127.0.0.1', port });
    await until(() => r.log.some((e) => e.type === 'Disconnected'), 5000, 'Disconnected');
    await until(() => sink.got[0]?.ended === true, 5000, 'the server saw the end');
    expect(sink.got[0].data.toString()).toBe('held until the handshake');
    const d = r.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBeUndefined();
    expect(r.log.some((e) => e.type === 'TlsReady')).toBe(true);
  });

  it('streamWriteBuffer on TLS queues all of the buffer or none of it', async () => {
    const r = recorder(undefined, { maxWriteQueueBytes: 4096 });
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const s = await nodeClient(r.io.localAddress(ep)!.port);
    await until(() => r.log.some((e) => e.type === 'Connected'), 5000, 'Connected');
    const conn = r.log.find((e) => e.type === 'Connected')!.conn as ConnId;
    expect(r.io.streamWrite(conn, Buffer.alloc(3000, 'a'))).toBe(3000);
    const buf = r.io.sendBuffer(1500);
    buf.write(Buffer.alloc(1500, 'b'));
    expect(r.io.streamWriteBuffer(conn, buf)).toBe(0);  // ~1 KB of room left: none of it, not a part
    await until(() => r.log.some((e) => e.type === 'Writable'), 5000, 'Writable');
    expect(r.io.streamWriteBuffer(conn, buf)).toBe(1500);
    buf.release();
    s.destroy();
  });

  it('closeGraceful mid-handshake still fails at once when the peer closes', async () => {
    const quitter = net.createServer((sock) => sock.once('data', () => sock.end()));  // reads the ClientHello, leaves
    await new Promise<void>((res) => quitter.listen(0, '127.0.0.1', res));
    closers.push(async () => { quitter.close(); });
    const r = recorder((ev, io) => {
      if (ev.type !== 'Connected') return;
      io.tlsUpgrade(ev.conn, { ca: pki.ca, servername: 'localhost' });
      io.streamWrite(ev.conn, Buffer.from('held'));
      io.closeGraceful(ev.conn, 600_000);  // far beyond the test: only the peer's close can end it
    });
    closers.push(r.close);
    r.io.tcpConnectWith({ host: '127.0.0.1', port: (quitter.address() as net.AddressInfo).port });
    await until(() => r.log.some((e) => e.type === 'Disconnected'), 20_000, 'Disconnected');
    const d = r.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBe('TlsHandshakeFailed');
    expect(d.origin).not.toBe('timeout');
  });

  it('shutdown does not wait for handshakes of connections the application never saw', async () => {
    const io = new Io();
    const ep = io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const h = io.runSync(() => {}, { onError });
    const silent = net.connect(io.localAddress(ep)!.port, '127.0.0.1');  // never sends a ClientHello
    silent.on('error', () => {});
    await until(() => io.poolStats().counters.connsAccepted >= 1, 5000, 'accepted');
    const closed = new Promise((res) => silent.once('close', res));
    silent.resume();  // flowing, so the FIN ends and closes it
    // A drain timeout far beyond the test: a shutdown that waited for the handshake would not
    // resolve in it. It must close the unseen connection at once instead.
    let done = false;
    const stopping = h.shutdown({ timeoutMs: 600_000 }).then(() => { done = true; });
    await until(() => done, 20_000, 'shutdown() to resolve without waiting for the handshake');
    await stopping;
    expect(io.poolStats().connections).toBe(0);
    await closed;  // the peer saw the close
    io.shutdown();
  });

  it('no Writable storm while writes wait for a handshake that does not finish', async () => {
    // A TCP server that accepts and never answers: the client's handshake stays open.
    const silent = net.createServer(() => {});
    await new Promise<void>((res) => silent.listen(0, '127.0.0.1', res));
    closers.push(async () => { silent.close(); });
    const r = recorder(undefined, { maxWriteQueueBytes: 16 * 1024 });
    closers.push(r.close);
    const conn = r.io.tcpConnectWith({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port, tls: { ca: pki.ca, servername: 'localhost', handshakeTimeoutMs: 400 } });
    expect(r.io.streamWrite(conn, Buffer.alloc(20_000))).toBe(16 * 1024);  // the rest is refused
    // One CI run (Node 22, the zig engine, under the full suite) saw no Disconnected within 5 s
    // and could not be reproduced since: if it happens again, say what the engine saw.
    await until(() => r.log.some((e) => e.type === 'Disconnected'), 5000, 'the handshake timeout').catch((err: Error) => {
      let stats: unknown;
      try { stats = r.io.connStats(conn); } catch (e) { stats = String(e); }
      throw new Error(`${err.message}; events ${JSON.stringify(r.log.map((e) => e.type))}; ` +
        `counters ${JSON.stringify(r.io.poolStats().counters)}; connStats ${JSON.stringify(stats)}`);
    });
    expect(r.log.filter((e) => e.type === 'Writable')).toHaveLength(0);
    expect(r.log.find((e) => e.type === 'Disconnected')!.origin).toBe('timeout');
  });
});

describe('TLS reads', () => {
  it('Connected comes before data that arrived in the same segment as the client Finished', async () => {
    const r = recorder();
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    // A relay that forwards client->server bytes by TLS record: the ClientHello at once, then
    // it holds the client's second flight until two application_data records are in (TLS 1.3:
    // the encrypted Finished, then the first request) and forwards them in one write, so they
    // reach the server in one segment. It waits for the records, not for a time.
    const forwarded: number[] = [];  // the size of each write to the server
    const relay = net.createServer((down) => {
      const up = net.connect(r.io.localAddress(ep)!.port, '127.0.0.1');
      let held = Buffer.alloc(0);
      let appData = 0;      // application_data records held so far
      let scanned = 0;      // bytes of `held` parsed into whole records
      let merged = false;   // the Finished + request write went out: plain relay from here
      const forward = (b: Buffer) => { forwarded.push(b.length); up.write(b); };
      down.on('data', (d: Buffer) => {
        if (merged) { up.write(d); return; }
        held = Buffer.concat([held, d]);
        while (held.length - scanned >= 5 && held.length - scanned >= 5 + held.readUInt16BE(scanned + 3)) {
          const type = held[scanned];
          scanned += 5 + held.readUInt16BE(scanned + 3);
          if (type === 22 && forwarded.length === 0) { forward(held.subarray(0, scanned)); held = held.subarray(scanned); scanned = 0; }
          if (type === 23 && ++appData === 2) { forward(held); held = Buffer.alloc(0); merged = true; return; }
        }
      });
      up.pipe(down);
      down.on('error', () => up.destroy());
      up.on('error', () => down.destroy());
    });
    await new Promise<void>((res) => relay.listen(0, '127.0.0.1', res));
    closers.push(async () => { relay.close(); });
    const s = tls.connect({ host: '127.0.0.1', port: (relay.address() as net.AddressInfo).port, ca: pki.ca, servername: 'localhost', minVersion: 'TLSv1.3' });
    s.on('error', () => {});
    s.on('secureConnect', () => s.write('first request'));
    await until(() => r.log.some((e) => e.type === 'StreamFrame'), 5000, 'the request');
    // The relay merged the client's Finished and its request into one write (ClientHello, then that).
    expect(forwarded).toHaveLength(2);
    const types = r.log.filter((e) => e.type === 'Connected' || e.type === 'StreamFrame').map((e) => e.type);
    expect(types[0]).toBe('Connected');
    expect(r.bytes(r.log.find((e) => e.type === 'Connected')!.conn).toString()).toBe('first request');
    s.destroy();
  });

  it('plaintext before the peer FIN is all delivered before Disconnected', async () => {
    // Few events per poll: 1 MiB of records takes many ticks to deliver after the FIN arrived.
    const r = recorder(undefined, { maxEventsPerPoll: 8 });
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const s = await nodeClient(r.io.localAddress(ep)!.port);
    const payload = randomPayload(1 << 20, 2);
    s.end(payload);
    await until(() => r.log.some((e) => e.type === 'Disconnected'), 10000, 'Disconnected');
    const conn = r.log.find((e) => e.type === 'Connected')!.conn;
    expect(r.bytes(conn).length).toBe(payload.length);
    expect(r.bytes(conn).equals(payload)).toBe(true);
    const d = r.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBeUndefined();
  });

  it('a peer streaming tiny records is paused by TCP flow control, not buffered without bound', async () => {
    // Few events per poll, and a server that stalls at first: ciphertext of one-byte records
    // arrives far faster than 8 events a tick can deliver it.
    let stalled = false;
    const r = recorder((ev) => {
      if (ev.type === 'Connected' && !stalled) {
        stalled = true;
        const t0 = Date.now();
        while (Date.now() - t0 < 300) { /* the client keeps sending meanwhile */ }
      }
    }, { maxEventsPerPoll: 8, poolSlotCount: 128 });
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const n = 40_000;  // ~1 MB of ciphertext in 22-byte records
    const child = spawn(process.execPath, [new URL('./fixtures/tiny-records-client.mjs', import.meta.url).pathname,
      String(r.io.localAddress(ep)!.port), pki.path('ca.crt'), String(n)], { stdio: ['ignore', 'ignore', 'pipe'] });
    let childErr = '';
    child.stderr!.on('data', (d) => { childErr += d; });
    const exited = new Promise<number | null>((res) => child.on('exit', res));
    const conn = () => r.log.find((e) => e.type === 'Connected')?.conn;
    await until(() => conn() !== undefined && r.bytes(conn()!).length >= n, 30000, 'all records');
    expect(await exited, childErr).toBe(0);
    const got = r.bytes(conn()!);
    expect(got.length).toBe(n);
    for (let i = 0; i < n; i += 997) expect(got[i]).toBe(i & 0xff);
    const stats = r.io.poolStats();
    expect(stats.counters.tlsRxPaused).toBeGreaterThan(0);
    // At most the pause threshold (two records) plus what the receive ring already held when
    // the recv was cancelled; the ~880 KB sent would otherwise pile up.
    const ring = stats.fillRing.capacity * r.io.config.poolSlotSize;
    expect(ring).toBeLessThan(n * 22 / 4);
    expect(stats.counters.tlsRxPeak).toBeLessThanOrEqual(2 * (16384 + 325) + ring);
  }, 40000);
});

describe('TLS under pool pressure', () => {
  it('echoes 1 MiB on each of 4 connections through a 96-slot pool, byte-exact, and every slot comes back', async () => {
    const r = recorder(echoHandler(), { poolSlotCount: 96, maxWriteQueueBytes: 32 * 1024 });
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const port = r.io.localAddress(ep)!.port;
    const base = r.io.poolStats().freeStack.current;
    const results = await Promise.all([0, 1, 2, 3].map(async (k) => {
      const s = await nodeClient(port);
      const payload = randomPayload(1 << 20, 40 + k);
      const back = await roundTrip(s, payload);
      s.destroy();
      return back.equals(payload);
    }));
    expect(results).toEqual([true, true, true, true]);
    const stats = r.io.poolStats();
    expect(stats.freeStack.peak).toBeGreaterThan(stats.freeStack.capacity / 2);  // it was under pressure
    await until(() => r.io.poolStats().freeStack.current === base && r.io.poolStats().connections === 0, 5000, 'slots back');
  }, 30000);
});

describe('TLS configuration', () => {
  it('SNI certificates get the same cipher policy and client-certificate trust as the default one', async () => {
    const r = recorder();
    closers.push(r.close);
    const ep = r.io.tcpListenWith({
      host: '127.0.0.1', port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, sni: { 'second.test': { cert: pki.server2Cert, key: pki.server2Key } }, clientAuth: 'require', ca: pki.ca },
    });
    const port = r.io.localAddress(ep)!.port;
    // mTLS against the SNI certificate: the client certificate verifies there too.
    const ok = await nodeClient(port, { servername: 'second.test', cert: pki.clientCert, key: pki.clientKey });
    expect(ok.getPeerCertificate().subject.CN).toBe('second.test');
    ok.destroy();
    // A CBC-only TLS 1.2 client is refused on the SNI name as on the default one (without
    // client authentication, so the cipher policy alone decides).
    const open = r.io.tcpListenWith({
      host: '127.0.0.1', port: 0,
      tls: { cert: pki.serverCert, key: pki.serverKey, sni: { 'second.test': { cert: pki.server2Cert, key: pki.server2Key } } },
    });
    const openPort = r.io.localAddress(open)!.port;
    for (const servername of ['localhost', 'second.test']) {
      await expect(nodeClient(openPort, { servername, ciphers: 'ECDHE-ECDSA-AES128-SHA', maxVersion: 'TLSv1.2' }))
        .rejects.toThrow(/handshake failure/);
      const s = await nodeClient(openPort, { servername, maxVersion: 'TLSv1.2' });
      expect(s.getCipher().name).toMatch(/GCM|CHACHA20/);
      s.destroy();
    }
  });

  it('node:tls clients resume on our tickets (TLS 1.2 and 1.3), also across a certificate reload', async () => {
    const r = recorder();
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
    const port = r.io.localAddress(ep)!.port;
    const reload = r.io.enableCertHotReload(ep);
    // Connects, waits up to 1 s for a ticket (the client only sends; a TLS 1.2 resumption
    // brings none), and reports whether it resumed and the session to offer next time.
    const connect = (opts: tls.ConnectionOptions) => new Promise<{ reused: boolean; session: Buffer }>((resolve, reject) => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts });
      let ticket: Buffer | undefined;
      s.on('session', (t: Buffer) => { ticket = t; });
      s.on('error', reject);
      s.on('secureConnect', () => {
        s.write('x');
        const t0 = Date.now();
        const done = () => {
          if (!ticket && !(s.isSessionReused() && maxVersionOf(opts) === 'TLSv1.2') && Date.now() - t0 < 1000) return void setTimeout(done, 5);
          resolve({ reused: s.isSessionReused(), session: ticket ?? s.getSession()! });
          s.destroy();
        };
        done();
      });
    });
    const maxVersionOf = (o: tls.ConnectionOptions) => o.maxVersion;
    for (const maxVersion of ['TLSv1.2', 'TLSv1.3'] as const) {
      const first = await connect({ maxVersion });
      expect(first.reused).toBe(false);
      const second = await connect({ maxVersion, session: first.session });
      expect(second.reused).toBe(true);
      await reload.reloadFromBytes(pki.serverCert, pki.serverKey);
      const third = await connect({ maxVersion, session: second.session });
      expect(third.reused).toBe(true);
    }
  });

  it('refuses to verify a server without a name, and a name that cannot be checked fails the connection clearly', async () => {
    const r = recorder();
    closers.push(r.close);
    expect(() => r.io.tcpConnectWith({ host: '127.0.0.1', port: 1, tls: { servername: '' } })).toThrow(/servername is needed/);
    const sink = nodeSink();
    const port = await sink.ready;
    const conn = r.io.tcpConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'bad\u0000name' } });
    await until(() => r.log.some((e) => e.type === 'Disconnected' && e.conn === conn), 5000, 'Disconnected');
    const d = r.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBe('TlsHandshakeFailed');
    expect(d.error).toMatch(/servername/);
  });
});

describe('TLS half-close', () => {
  it('a TLS client that writes then ends at once gets the whole echo (StreamWriter), TLS 1.2 and 1.3', async () => {
    const { StreamWriter } = await import('@zero-io/core');
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      let out: InstanceType<typeof StreamWriter> | undefined;
      const r = recorder((ev, io) => {
        out ??= new StreamWriter(io);
        out.handle(ev);
        if (ev.type === 'StreamFrame') out.write(ev.conn, ev.data);
      });
      const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey } });
      const payload = Buffer.alloc(1 << 20, version);
      const got = await new Promise<Buffer>((resolve, reject) => {
        const s = tls.connect({ host: '127.0.0.1', port: r.io.localAddress(ep).port, ca: pki.ca, servername: 'localhost',
          minVersion: version, maxVersion: version }, () => s.end(payload));
        const parts: Buffer[] = [];
        s.on('data', (d) => parts.push(d));
        s.on('end', () => resolve(Buffer.concat(parts)));
        s.on('error', reject);
      });
      expect(got.length).toBe(payload.length);
      expect(got.equals(payload)).toBe(true);
      await until(() => r.log.some((e) => e.type === 'Disconnected'), 5000, 'the close');
      expect(r.log.filter((e) => e.type === 'PeerEnded').length).toBe(1);
      await r.close();
    }
  });
});
