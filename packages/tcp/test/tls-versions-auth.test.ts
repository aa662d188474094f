// TLS options the other suites leave out: minVersion (both sides), sessionTickets: false,
// clientAuth: 'request', and tls: true on tcpConnectWith (system CAs).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnId, TlsInfo } from '@zero-io/core';
import { echoHandler, randomPayload, until } from './helpers.js';
import { makePki, nodeTlsClient, recorder, roundTrip } from './tls-helpers.js';

const pki = makePki();
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

type ServerTls = NonNullable<Parameters<ReturnType<typeof recorder>['io']['tcpListenWith']>[0]['tls']>;

function echoServer(extra: Partial<ServerTls> = {}) {
  const infos = new Map<number, TlsInfo | null>();
  const echo = echoHandler();
  const r = recorder((ev, io) => {
    if (ev.type === 'Connected') infos.set(ev.conn, io.tlsInfo(ev.conn));
    echo(ev, io);
  });
  const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, ...extra } });
  closers.push(r.close);
  return { ...r, ep, infos, port: r.io.localAddress(ep)!.port };
}

/** A node:tls connect that resolves with the socket or the error, never rejects. */
function attempt(port: number, opts: tls.ConnectionOptions): Promise<{ s: tls.TLSSocket | null; err: Error | null }> {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts }, () => resolve({ s, err: null }));
    s.on('error', (err) => resolve({ s: null, err }));
  });
}

/** A node:tls server (echo) with `opts`; resolves with its port. */
function nodeTlsServer(opts: tls.TlsOptions): Promise<{ port: number; server: tls.Server }> {
  return new Promise((resolve) => {
    const server = tls.createServer(opts, (s) => { s.on('data', (d) => s.write(d)); s.on('error', () => {}); });
    server.on('tlsClientError', () => {});
    server.listen(0, '127.0.0.1', () => resolve({ port: (server.address() as { port: number }).port, server }));
    closers.push(() => new Promise<void>((r) => server.close(() => r())));
  });
}

describe('minVersion', () => {
  it("server minVersion 'TLSv1.3': a TLS 1.2-only client fails (version reason, -1010), a default client gets 1.3", async () => {
    const srv = echoServer({ minVersion: 'TLSv1.3' });
    const old = await attempt(srv.port, { maxVersion: 'TLSv1.2' });
    expect(old.s).toBeNull();
    expect(old.err!.message).toMatch(/protocol version|alert number 70/i);
    await until(() => srv.log.some((e) => e.type === 'Disconnected'), 5000, 'the failed handshake');
    const d = srv.log.find((e) => e.type === 'Disconnected')!;
    expect(d).toMatchObject({ errorCode: -1010, kind: 'TlsHandshakeFailed', error: expect.stringMatching(/^TLS handshake failed: .*protocol version/) });
    expect(srv.log.some((e) => e.type === 'Connected')).toBe(false);

    const s = await nodeTlsClient(pki, srv.port);
    expect(s.getProtocol()).toBe('TLSv1.3');
    const p = randomPayload(50_000, 31);
    expect((await roundTrip(s, p)).equals(p)).toBe(true);
    s.destroy();
  });

  it("client minVersion 'TLSv1.3' against a TLS 1.2-only node:tls server fails with a version reason; without it 1.2 is used", async () => {
    const { port } = await nodeTlsServer({ cert: pki.serverCert, key: pki.serverKey, maxVersion: 'TLSv1.2' });
    const r = recorder();
    closers.push(r.close);
    const strict = r.io.tcpConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost', minVersion: 'TLSv1.3' } });
    const lax = r.io.tcpConnectWith({ host: '127.0.0.1', port, tls: { ca: pki.ca, servername: 'localhost' } });
    let info: TlsInfo | null = null;
    await until(() => r.log.some((e) => e.type === 'Disconnected' && e.conn === strict) && r.log.some((e) => e.type === 'Connected' && e.conn === lax), 5000, 'both outcomes');
    const d = r.log.find((e) => e.type === 'Disconnected' && e.conn === strict)!;
    expect(d).toMatchObject({ errorCode: -1010, kind: 'TlsHandshakeFailed' });
    expect(d.error).toMatch(/protocol version|version/i);
    expect(r.log.some((e) => e.type === 'Connected' && e.conn === strict)).toBe(false);
    info = r.io.tlsInfo(lax as ConnId);
    expect(info!.version).toBe('TLSv1.2');
    r.io.close(lax as ConnId);
  });
});

describe('sessionTickets: false', () => {
  // Counts the tickets a node:tls client receives while it does an echo round trip (a server
  // sends its tickets right after the handshake, before any answer), and whether it resumed.
  async function visit(port: number, opts: tls.ConnectionOptions) {
    let tickets = 0;
    const s = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const c = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts }, () => resolve(c));
      c.on('session', () => { tickets++; });
      c.on('error', reject);
    });
    const p = randomPayload(1000, 32);
    expect((await roundTrip(s, p)).equals(p)).toBe(true);
    const out = { tickets, tlsTicket: s.getTLSTicket(), reused: s.isSessionReused(), session: s.getSession() };
    s.destroy();
    return out;
  }

  for (const maxVersion of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`${maxVersion}: no ticket is issued and a second connection is a full handshake (the default issues one and resumes)`, async () => {
      // The default, as the control: tickets arrive and the next connect resumes.
      const on = echoServer();
      const a = await visit(on.port, { maxVersion });
      if (maxVersion === 'TLSv1.3') expect(a.tickets).toBeGreaterThan(0);
      else expect(a.tlsTicket).toBeDefined();
      expect((await visit(on.port, { maxVersion, session: a.session })).reused).toBe(true);

      const off = echoServer({ sessionTickets: false });
      const b = await visit(off.port, { maxVersion });
      if (maxVersion === 'TLSv1.3') expect(b.tickets).toBe(0);
      else expect(b.tlsTicket).toBeUndefined();
      const again = await visit(off.port, { maxVersion, session: b.session });
      expect(again.reused).toBe(false);
      await until(() => off.infos.size === 2, 5000, 'both Connected');
      for (const i of off.infos.values()) expect(i!.resumed).toBe(false);
    });
  }
});

describe("clientAuth: 'request'", () => {
  it('a client without a certificate connects (no peer subject); one with a certificate is verified and its subject shown', async () => {
    const srv = echoServer({ clientAuth: 'request', ca: pki.ca });
    const anon = await nodeTlsClient(pki, srv.port);
    const p = randomPayload(10_000, 33);
    expect((await roundTrip(anon, p)).equals(p)).toBe(true);
    const withCert = await nodeTlsClient(pki, srv.port, { cert: pki.clientCert, key: pki.clientKey });
    expect((await roundTrip(withCert, p)).equals(p)).toBe(true);
    await until(() => srv.infos.size === 2, 5000, 'both Connected');
    const [first, second] = [...srv.infos.values()];
    expect(first).toMatchObject({ side: 'server', state: 'open', peerSubject: null, peerVerified: false });
    expect(second).toMatchObject({ side: 'server', state: 'open', peerVerified: true });
    expect(second!.peerSubject).toMatch(/CN ?= ?zero-io client/);
    expect(srv.log.filter((e) => e.type === 'Disconnected')).toEqual([]);
    anon.destroy();
    withCert.destroy();
  });

  it('a client certificate from an unknown CA is refused even when only requested (-1010, verification reason)', async () => {
    const other = makePki();
    const srv = echoServer({ clientAuth: 'request', ca: pki.ca });
    const r = await attempt(srv.port, { cert: other.clientCert, key: other.clientKey });
    // TLS 1.3: the client learns of the refusal on its first read.
    if (r.s) await new Promise<void>((res) => { r.s!.on('error', () => res()); r.s!.on('close', () => res()); r.s!.write('x'); });
    await until(() => srv.log.some((e) => e.type === 'Disconnected'), 5000, 'the refusal');
    const d = srv.log.find((e) => e.type === 'Disconnected')!;
    expect(d).toMatchObject({ errorCode: -1010, kind: 'TlsHandshakeFailed' });
    expect(d.error).toMatch(/certificate verification failed/);
    expect(srv.log.some((e) => e.type === 'Connected')).toBe(false);
  });
});

/** A self-signed leaf for localhost (no system CA signed it): self.crt / self.key in the PKI dir, made once. */
let made = false;
function selfSigned(): void {
  if (made) return;
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', 'self.key', '-out', 'self.crt'],
  { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  made = true;
}

describe('tls: true on tcpConnectWith (system CAs)', () => {
  it('a local server with a self-signed certificate fails verification with a clear reason', async () => {
    selfSigned();
    const { port } = await nodeTlsServer({ cert: readFileSync(pki.path('self.crt')), key: readFileSync(pki.path('self.key')) });
    const r = recorder();
    closers.push(r.close);
    const conn = r.io.tcpConnectWith({ host: 'localhost', port, tls: true });
    await until(() => r.log.some((e) => e.type === 'Disconnected' && e.conn === conn), 10_000, 'the failed handshake');
    expect(r.log.some((e) => e.type === 'Connected')).toBe(false);
    const d = r.log.find((e) => e.type === 'Disconnected' && e.conn === conn)!;
    // We refuse it (alert unknown_ca, 48, sent by us) and say why the verification failed.
    expect(d).toMatchObject({ errorCode: -1010, kind: 'TlsHandshakeFailed', origin: 'error', alert: 48 });
    expect(d.error).toMatch(/^TLS handshake failed: /);
    expect(d.error).toMatch(/certificate verification failed: self[- ]signed certificate/i);
  });

  it('the same server is accepted when its certificate is given as ca (the control: tls: true differs only by the trust anchors)', async () => {
    selfSigned();
    const { port } = await nodeTlsServer({ cert: readFileSync(pki.path('self.crt')), key: readFileSync(pki.path('self.key')) });
    const r = recorder();
    closers.push(r.close);
    const conn = r.io.tcpConnectWith({ host: 'localhost', port, tls: { ca: readFileSync(pki.path('self.crt'), 'latin1') } });
    await until(() => r.log.some((e) => e.conn === conn && (e.type === 'Connected' || e.type === 'Disconnected')), 10_000, 'the handshake');
    expect(r.log.find((e) => e.conn === conn)).toMatchObject({ type: 'Connected', tls: true });
    expect(r.io.tlsInfo(conn)).toMatchObject({ side: 'client', peerVerified: true, servername: 'localhost' });
    r.io.close(conn);
  });
});
