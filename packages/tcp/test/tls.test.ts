import { spawn } from 'node:child_process';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { type ConnId, type ConnStats, type Io, type TlsInfo } from '@zero-io/core';
import { kTlsSupport, tlsLibrary } from '@zero-io/tcp';
import { echoHandler, randomPayload, until } from './helpers.js';
import { makePki, nodeTlsClient, recorder, roundTrip } from './tls-helpers.js';

const pki = makePki();
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

function echoServer(tlsCfg: Parameters<ReturnType<typeof recorder>['io']['tcpListenWith']>[0]['tls'] = { cert: pki.serverCert, key: pki.serverKey }) {
  const r = recorder(echoHandler());
  const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: tlsCfg });
  closers.push(r.close);
  return { ...r, ep, port: r.io.localAddress(ep)!.port };
}

const nodeClient = (port: number, opts: tls.ConnectionOptions = {}) => nodeTlsClient(pki, port, opts);

describe('TLS engine', () => {
  it('links BoringSSL with its symbols hidden, beside node:tls in one process', async () => {
    expect(tlsLibrary()).toMatch(/BoringSSL/);
    const { execFileSync } = await import('node:child_process');
    const { createRequire } = await import('node:module');
    // The engine this run loaded (the published one when ZERO_IO_NATIVE_PATH names it).
    const addon = process.env.ZERO_IO_NATIVE_PATH ||
      createRequire(import.meta.url).resolve('@zero-io/core/package.json').replace(/package\.json$/, `prebuilds/linux-${process.arch}/zero_io.node`);
    const exported = execFileSync('nm', ['-D', '--defined-only', addon]).toString().trim().split('\n').map((l) => l.split(' ').pop());
    expect(exported.sort()).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
    // node:tls (Node's OpenSSL) and our server (BoringSSL) in the same process, both working.
    const srv = echoServer();
    const s = await nodeClient(srv.port);
    expect((await roundTrip(s, Buffer.from('same process'))).toString()).toBe('same process');
    expect(s.getProtocol()).toBe('TLSv1.3');
    s.destroy();
  });

  it('reports kTLS availability with the reason when absent (this kernel: no CONFIG_TLS)', () => {
    const k = kTlsSupport();
    expect(k.reason === null).toBe(k.available);
    if (!k.available) expect(k.reason).toMatch(/TLS ULP|ZERO_IO_KTLS/);
  });
});

describe('kTLS', () => {
  const k = kTlsSupport();
  // A TLS 1.2 AES-GCM session is the kind the engine hands to the kernel.
  async function tls12Echo() {
    const srv = echoServer();
    let stats: { kTls: boolean; tls: boolean } | null = null;
    let reason: string | null = null;
    const s = await nodeClient(srv.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    const p = randomPayload(200_000, 11);
    expect((await roundTrip(s, p)).equals(p)).toBe(true);
    const conn = srv.log.find((e) => e.type === 'Connected')!.conn as ConnId;
    stats = srv.io.connStats(conn);
    reason = srv.io.tlsInfo(conn)!.kTlsReason;
    // The client's close_notify (then FIN) is a clean end, not an error.
    s.end();
    await until(() => srv.log.some((e) => e.type === 'Disconnected' && e.conn === conn), 5000, 'Disconnected');
    const peerClose = srv.log.find((e) => e.type === 'Disconnected' && e.conn === conn)!;
    // A graceful close from our side sends close_notify: node:tls ends without an error.
    const s2 = await nodeClient(srv.port, { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
    expect((await roundTrip(s2, p.subarray(0, 1000))).equals(p.subarray(0, 1000))).toBe(true);
    const conn2 = srv.log.filter((e) => e.type === 'Connected').at(-1)!.conn as ConnId;
    let ended = false;
    let clientError: Error | null = null;
    s2.on('end', () => { ended = true; });
    s2.on('error', (e) => { clientError = e; });
    srv.io.closeGraceful(conn2, 2000);
    await until(() => ended, 5000, 'the client saw the end');
    s2.destroy();
    return { stats, reason, peerClose, clientError };
  }

  it.runIf(!k.available)(`fallback: in-process encryption, connStats().kTls false and the reason (${k.reason ?? 'n/a'})`, async () => {
    const { stats, reason, peerClose, clientError } = await tls12Echo();
    expect(stats).toMatchObject({ tls: true, kTls: false });
    expect(reason).toBe(k.reason);
    expect(peerClose).toMatchObject({ origin: 'peer', kind: undefined });
    expect(clientError).toBeNull();
  });

  // The only skip allowed: where the kernel has no CONFIG_TLS the kernel path cannot run.
  it.skipIf(!k.available)(`kernel path: a TLS 1.2 AES-GCM session is offloaded, close_notify both ways [not applicable here: ${k.reason ?? ''}]`, async () => {
    const { stats, peerClose, clientError } = await tls12Echo();
    expect(stats).toMatchObject({ tls: true, kTls: true });
    expect(peerClose).toMatchObject({ origin: 'peer', kind: undefined });
    expect(clientError).toBeNull();
  });
});

describe('tcpListenWith({ tls }) against node:tls and openssl s_client', () => {
  it('echoes 1 MiB to a node:tls client, TLS 1.3 and TLS 1.2, with Connected after the handshake', async () => {
    const srv = echoServer();
    for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
      const s = await nodeClient(srv.port, { maxVersion });
      const p = randomPayload(1 << 20, 7);
      expect((await roundTrip(s, p)).equals(p)).toBe(true);
      expect(s.getProtocol()).toBe(maxVersion);
      s.destroy();
    }
    const connected = srv.log.filter((e) => e.type === 'Connected');
    expect(connected.length).toBe(2);
    expect(connected.every((e) => e.tls)).toBe(true);
  });

  it('serves per-name certificates by SNI, negotiates ALPN, reports it in tlsInfo and connStats', async () => {
    let info: TlsInfo | null = null;
    let stats: ConnStats | null = null;
    const r = recorder((ev, io) => {
      if (ev.type === 'Connected') { info = io.tlsInfo(ev.conn); stats = io.connStats(ev.conn); }
    });
    closers.push(r.close);
    const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: {
      cert: pki.serverCert, key: pki.serverKey, alpn: ['h2', 'http/1.1'],
      sni: { 'second.test': { cert: pki.server2Cert, key: pki.server2Key } },
    } });
    const port = r.io.localAddress(ep)!.port;
    const s = await nodeClient(port, { servername: 'second.test', ALPNProtocols: ['http/1.1'] });
    expect(s.getPeerCertificate().subject.CN).toBe('second.test');
    expect(s.alpnProtocol).toBe('http/1.1');
    await until(() => info !== null);
    expect(info).toMatchObject({ state: 'open', side: 'server', alpn: 'http/1.1', servername: 'second.test', kTls: false });
    expect(stats).toMatchObject({ tls: true, kTls: false });
    if (!kTlsSupport().available) expect(info!.kTlsReason).toMatch(/TLS ULP|ZERO_IO_KTLS/);
    s.destroy();
    const d = await nodeClient(port, { servername: 'localhost' });
    expect(d.getPeerCertificate().subject.CN).toBe('localhost');
    d.destroy();
  });

  it('answers openssl s_client (TLS 1.3 and 1.2) byte for byte', async () => {
    const srv = echoServer();
    for (const v of ['-tls1_3', '-tls1_2']) {
      const out = await sClient(['-connect', `127.0.0.1:${srv.port}`, v, '-CAfile', pki.path('ca.crt'), '-servername', 'localhost', '-verify_return_error', '-quiet'], 'hello from s_client\n');
      expect(out).toContain('hello from s_client');
    }
  });
});

/** Runs openssl s_client, writes `input`, returns stdout once it echoed (or the process ended). */
function sClient(args: string[], input: string, waitFor = input.trim()): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn('openssl', ['s_client', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    const t = setTimeout(() => { p.kill(); reject(new Error(`s_client timed out: ${err}\n${out}`)); }, 8000);
    p.stdout.on('data', (d) => { out += d; if (out.includes(waitFor)) { clearTimeout(t); p.kill(); resolve(out); } });
    p.stderr.on('data', (d) => { err += d; });
    p.on('exit', () => { clearTimeout(t); resolve(out + err); });
    p.stdin.write(input);
  });
}

describe('tcpConnectWith({ tls }) against node:tls and openssl s_server', () => {
  it('connects to a node:tls echo server, verifies it, echoes 256 KiB', async () => {
    const server = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, (c) => c.pipe(c));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const c = recorder();
    closers.push(c.close);
    const conn = c.io.tcpConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca } });
    const p = randomPayload(256 * 1024, 3);
    expect(c.io.streamWrite(conn, p)).toBe(p.length);  // held until the handshake is done
    await until(() => c.bytes(conn).length >= p.length, 5000, 'echo');
    expect(c.bytes(conn).equals(p)).toBe(true);
    const info = c.io.tlsInfo(conn)!;
    expect(info).toMatchObject({ side: 'client', version: 'TLSv1.3', peerVerified: true, peerSubject: '/CN=localhost' });
    expect(c.log.find((e) => e.type === 'Connected')!.tls).toBe(true);
    server.close();
  });

  it('fails with TlsHandshakeFailed and the alert when the certificate does not verify', async () => {
    const server = tls.createServer({ cert: pki.serverCert, key: pki.serverKey }, (c) => c.pipe(c));
    server.on('tlsClientError', () => {});
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as { port: number }).port;
    const c = recorder();
    closers.push(c.close);
    const conn = c.io.tcpConnectWith({ host: '127.0.0.1', port, tls: {} });  // system store: our CA is not in it
    await until(() => c.log.some((e) => e.type === 'Disconnected' && e.conn === conn));
    const d = c.log.find((e) => e.type === 'Disconnected')!;
    expect(d.kind).toBe('TlsHandshakeFailed');
    expect(d.error).toMatch(/certificate verification failed/);
    expect(d.alert).toBeGreaterThan(0);
    expect(c.log.some((e) => e.type === 'Connected')).toBe(false);
    server.close();
  });

  it('talks to openssl s_server (TLS 1.2 and 1.3) and resumes the session on the next connect', async () => {
    for (const v of ['-tls1_2', '-tls1_3']) {
      // Port 0: s_server binds an ephemeral port and prints it ("ACCEPT 127.0.0.1:<port>"), so no
      // guessed port can collide with one in use.
      const srv = spawn('openssl', ['s_server', '-accept', '127.0.0.1:0', '-cert', pki.path('server.crt'), '-key', pki.path('server.key'), v, '-rev'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let srvOut = '';
      srv.stdout.on('data', (d) => { srvOut += d; });
      srv.stderr.on('data', (d) => { srvOut += d; });
      await until(() => /ACCEPT \S+:\d+/.test(srvOut), 5000, 's_server up');
      const port = Number(/ACCEPT \S+:(\d+)/.exec(srvOut)![1]);
      const c = recorder();
      const cfg = { ca: pki.ca, servername: 'localhost' };
      const a = c.io.tcpConnectWith({ host: '127.0.0.1', port, tls: cfg });
      c.io.streamWrite(a, Buffer.from('abcdef\n'));
      await until(() => c.bytes(a).toString().includes('fedcba'), 5000, 's_server -rev answer');
      expect(c.io.tlsInfo(a)!.version).toBe(v === '-tls1_2' ? 'TLSv1.2' : 'TLSv1.3');
      c.io.close(a);
      const b = c.io.tcpConnectWith({ host: '127.0.0.1', port, tls: cfg });
      c.io.streamWrite(b, Buffer.from('xyz\n'));
      await until(() => c.bytes(b).toString().includes('zyx'), 5000, 'second answer');
      expect(c.io.tlsInfo(b)!.resumed).toBe(true);
      await c.close();
      srv.kill();
    }
  });
});

