// Hostile input against the TLS server: garbage, truncated records, renegotiation, stalled
// handshakes, 1000 concurrent handshakes; mTLS; hot reload under load; a testssl.sh audit.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { type Event, type Io } from '@zero-io/core';
import { CertReloadHandle, type TlsServerConfig } from '@zero-io/tcp';
import { until } from './helpers.js';
import { makePki, recorder } from './tls-helpers.js';

const pki = makePki();
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

function server(cfg: Partial<TlsServerConfig> = {}, config = {}, onEvent?: (ev: Event, io: Io) => void) {
  const r = recorder((ev, io) => {
    if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data);
    onEvent?.(ev, io);
  }, config);
  const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, ...cfg } });
  closers.push(r.close);
  return { ...r, ep, port: r.io.localAddress(ep)!.port };
}

function tlsEcho(port: number, opts: tls.ConnectionOptions = {}, msg = 'ping'): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts }, () => s.write(msg));
    s.once('data', (d) => { resolve(d.toString()); s.destroy(); });
    s.once('error', reject);
  });
}

function raw(port: number, bytes: Buffer | string, end = true): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => { s.write(bytes); if (end) s.end(); });
    const got: Buffer[] = [];
    s.on('data', (d) => got.push(d));
    s.on('close', () => resolve(Buffer.concat(got)));
    s.on('error', () => {});
  });
}

describe('TLS server under hostile input', () => {
  it('garbage instead of a ClientHello: TlsHandshakeFailed with an alert, others unharmed', async () => {
    const s = server();
    const answer = await raw(s.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(answer.length === 0 || answer[0] === 0x15).toBe(true);  // nothing, or an alert record
    await until(() => s.log.some((e) => e.type === 'Disconnected'));
    const d = s.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBe('TlsHandshakeFailed');
    expect(d.error).toMatch(/TLS handshake failed: .+/);
    expect(await tlsEcho(s.port)).toBe('ping');
  });

  it('truncated records: a cut ClientHello then FIN, and a record header promising more than comes', async () => {
    const s = server();
    // A TLS handshake record header announcing 512 bytes, then 20 bytes of them.
    const hdr = Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]);
    await raw(s.port, Buffer.concat([hdr, Buffer.alloc(9, 7)]));
    await until(() => s.log.filter((e) => e.type === 'Disconnected').length === 1);
    expect(s.log.find((e) => e.type === 'Disconnected')!.error).toMatch(/closed the connection during the handshake|TLS handshake failed/);
    // An oversized record length (2^14 + 2048 + 1 is over every limit): refused at once.
    await raw(s.port, Buffer.from([0x16, 0x03, 0x03, 0xff, 0xff, 0, 0, 0]), false);
    await until(() => s.log.filter((e) => e.type === 'Disconnected').length === 2);
    expect(s.log.filter((e) => e.type === 'Disconnected')[1].kind).toBe('TlsHandshakeFailed');
    expect(await tlsEcho(s.port)).toBe('ping');
  });

  it('refuses renegotiation (TLS 1.2 client asks): the connection ends with a TLS error, the server stays up', async () => {
    const s = server();
    const sock = await new Promise<tls.TLSSocket>((r) => { const x = tls.connect({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost', maxVersion: 'TLSv1.2' }, () => r(x)); });
    sock.on('error', () => {});
    const result = await new Promise<Error | null | 'closed'>((r) => {
      const ok = sock.renegotiate({}, (err) => r(err ?? null));
      if (!ok) r(new Error('renegotiate refused locally'));
      sock.once('close', () => r('closed'));
    });
    expect(result).not.toBeNull();  // never a successful renegotiation
    await until(() => s.log.some((e) => e.type === 'Disconnected'));
    const d = s.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBe('TlsProtocolError');
    expect(await tlsEcho(s.port)).toBe('ping');
  });

  it('a handshake that never completes is closed by handshakeTimeoutMs', async () => {
    const s = server({ handshakeTimeoutMs: 300 });
    const sock = net.connect(s.port, '127.0.0.1');
    sock.on('error', () => {});
    const closed = new Promise((r) => sock.on('close', r));
    const t0 = Date.now();
    await closed;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await until(() => s.log.some((e) => e.type === 'Disconnected'));
    const d = s.log.find((e) => e.type === 'Disconnected')!;
    expect(d).toMatchObject({ kind: 'TlsHandshakeFailed', origin: 'timeout' });
    expect(d.error).toMatch(/timed out/);
    expect(s.io.poolStats().counters.tlsTimeouts).toBe(1);
  });

  it('1000 concurrent handshakes all complete and echo', async () => {
    const s = server({}, { maxConnections: 2048, poolSlotCount: 8192 });
    const results = await Promise.all(Array.from({ length: 1000 }, (_, i) => tlsEcho(s.port, {}, `m${i}`)));
    expect(results.every((r, i) => r === `m${i}`)).toBe(true);
    await until(() => s.log.filter((e) => e.type === 'Disconnected').length === 1000, 10000);
    expect(s.log.filter((e) => e.type === 'Connected' && e.tls).length).toBe(1000);
    expect(s.io.poolStats().counters.tlsHandshakes).toBe(1000);
  }, 60000);
});

describe('mutual TLS', () => {
  it('requires and verifies a client certificate', async () => {
    let subject: string | null = null;
    let verified = false;
    const s = server({ clientAuth: 'require', ca: pki.ca }, {}, (ev, io) => {
      if (ev.type === 'Connected') ({ peerSubject: subject, peerVerified: verified } = io.tlsInfo(ev.conn)!);
    });
    expect(await tlsEcho(s.port, { cert: pki.clientCert, key: pki.clientKey })).toBe('ping');
    expect(subject).toBe('/CN=zero-io client');
    expect(verified).toBe(true);
    await expect(tlsEcho(s.port)).rejects.toThrow();  // no certificate: refused
    await until(() => s.log.some((e) => e.kind === 'TlsHandshakeFailed'));
    // Our client presents one to a node:tls server that requires it.
    const nsrv = tls.createServer({ cert: pki.serverCert, key: pki.serverKey, ca: pki.ca, requestCert: true, rejectUnauthorized: true }, (c) => {
      subject = c.getPeerCertificate().subject.CN;
      c.end('ok');
    });
    await new Promise<void>((res) => nsrv.listen(0, '127.0.0.1', res));
    const c = recorder();
    closers.push(c.close);
    const conn = c.io.tcpConnectWith({ host: '127.0.0.1', port: (nsrv.address() as net.AddressInfo).port, tls: { ca: pki.ca, servername: 'localhost', cert: pki.clientCert, key: pki.clientKey } });
    await until(() => c.bytes(conn).toString() === 'ok');
    expect(subject).toBe('zero-io client');
    nsrv.close();
  });
});

describe('certificate hot reload', () => {
  it('swaps under load: running connections keep going, new handshakes get the new certificate, bad PEM is refused', async () => {
    const s = server();
    const h = s.io.enableCertHotReload(s.ep);
    expect(h.generation).toBe(1);
    // Connections running across the reload.
    const live = await Promise.all(Array.from({ length: 20 }, () => new Promise<tls.TLSSocket>((r) => {
      const x = tls.connect({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost' }, () => r(x));
    })));
    let echoed = 0;
    for (const x of live) x.on('data', (d) => { echoed += d.length; }).on('error', () => {});
    const pump = setInterval(() => { for (const x of live) x.write('0123456789'); }, 2);
    const cn = async () => new Promise<string>((res, rej) => {
      const x = tls.connect({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost' }, () => { res(x.getPeerCertificate().subject.CN); x.destroy(); });
      x.on('error', rej);
    });
    const before = await Promise.all([cn(), cn(), cn()]);
    // A bad PEM and a mismatched key are refused; the old certificate stays.
    expect(() => h.reloadFromBytes('garbage', 'garbage')).toThrow(expect.objectContaining({ kind: 'TlsInvalidCertificate' }));
    expect(() => h.reloadFromBytes(pki.server2Cert, pki.serverKey)).toThrow(/does not match/);
    expect(h.generation).toBe(1);
    expect(await cn()).toBe('localhost');
    // From another thread, by id.
    const w = new Worker(new URL('./fixtures/reload-worker.mjs', import.meta.url), { workerData: { id: h.id, cert: pki.path('server2.crt'), key: pki.path('server2.key') } });
    const gen = await new Promise((r, j) => { w.once('message', r); w.once('error', j); });
    expect(gen).toBe(2);
    const after = await Promise.all([cn(), cn(), cn()]);
    clearInterval(pump);
    expect(before).toEqual(['localhost', 'localhost', 'localhost']);
    expect(after).toEqual(['second.test', 'second.test', 'second.test']);
    const echoedAtSwap = echoed;
    for (const x of live) x.write('still here');
    await until(() => echoed >= echoedAtSwap + 200, 5000, 'old connections still echo');
    for (const x of live) x.destroy();
    expect(CertReloadHandle.from(h).generation).toBe(2);
    // The same slot reloads through the QUIC name (one mechanism for both); a bad PEM is refused, the old one stays.
    expect(() => h.reloadQuicFromPem('a', 'b')).toThrow(expect.objectContaining({ kind: 'TlsInvalidCertificate' }));
    expect(CertReloadHandle.from(h).generation).toBe(2);
  });
});

describe('testssl.sh audit', () => {
  it('offers TLS 1.2 and 1.3 only, AEAD suites with forward secrecy only', async () => {
    const s = server();
    // A fresh directory: testssl will not write over an existing file, and a pid-named file
    // left by an earlier run would be read instead of this run's findings.
    const dir = mkdtempSync(join(tmpdir(), 'zio-testssl-'));
    const json = join(dir, 'findings.json');
    // Asynchronously: the server under audit runs on this thread's event loop. testssl exits
    // non-zero on findings; the JSON says which.
    await new Promise<void>((resolve) => {
      const p = spawn('testssl', ['--quiet', '--color', '0', '--warnings', 'off', '--jsonfile', json, '-p', '-s', '-f', `127.0.0.1:${s.port}`], { stdio: 'ignore' });
      const t = setTimeout(() => p.kill(), 120000);
      p.on('exit', () => { clearTimeout(t); resolve(); });
    });
    const findings = JSON.parse(readFileSync(json, 'utf8')) as { id: string; severity: string; finding: string }[];
    rmSync(dir, { recursive: true, force: true });
    const by = (id: string) => findings.find((f) => f.id === id)?.finding ?? '(missing)';
    for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1']) expect(by(id)).toMatch(/not offered/);
    expect(by('TLS1_2')).toMatch(/^offered/);
    expect(by('TLS1_3')).toMatch(/offered/);
    for (const id of ['cipherlist_NULL', 'cipherlist_aNULL', 'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE']) {
      expect(by(id)).toMatch(/not offered/);
    }
    const bad = findings.filter((f) => ['MEDIUM', 'HIGH', 'CRITICAL'].includes(f.severity));
    expect(bad).toEqual([]);
    expect(by('PFS')).toBe('offered');
  }, 150000);
});

