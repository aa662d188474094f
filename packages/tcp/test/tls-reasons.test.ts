// Server-side TLS failures say what really happened (issue 10: every failure on a listener
// without client authentication used to read "certificate verification failed: Invalid
// certificate verification context").
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import type { TlsServerConfig } from '@zero-io/tcp';
import { until } from './helpers.js';
import { makePki, recorder } from './tls-helpers.js';

const pki = makePki();
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

function server(cfg: Partial<TlsServerConfig> = {}) {
  const r = recorder();
  const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.serverKey, ...cfg } });
  closers.push(r.close);
  return { ...r, port: r.io.localAddress(ep).port };
}

async function failure(s: ReturnType<typeof server>): Promise<string> {
  await until(() => s.log.some((e) => e.type === 'Disconnected'), 5000, 'the failed handshake');
  const d = s.log.find((e) => e.type === 'Disconnected')!;
  expect(d.kind).toBe('TlsHandshakeFailed');
  return d.error!;
}

function send(port: number, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const c = net.connect(port, '127.0.0.1', () => c.write(bytes));
    c.on('error', () => {});
    c.on('close', () => resolve());
    c.setTimeout(3000, () => c.destroy());
  });
}

function tlsClient(port: number, opts: tls.ConnectionOptions): Promise<void> {
  return new Promise((resolve) => {
    // Wait for the server to end it: with TLS 1.3 the client is done before the server has
    // read (and refused) its certificate, and destroying then would drop that flight.
    const c = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts });
    c.on('error', () => {});
    c.on('close', () => resolve());
    c.setTimeout(3000, () => c.destroy());
  });
}

describe('server-side TLS failure reasons', () => {
  it('a plaintext HTTP request: the peer did not speak TLS, with its first bytes', async () => {
    const s = server();
    await send(s.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    const why = await failure(s);
    expect(why).toMatch(/^TLS handshake failed: the peer did not speak TLS \(first bytes: GET \/ HTTP\/1\.1 Host: x\)/);
    expect(why).not.toMatch(/verification/);
  });

  it('an SSH banner: the peer did not speak TLS', async () => {
    const s = server();
    await send(s.port, 'SSH-2.0-OpenSSH_9.2p1\r\n');
    expect(await failure(s)).toMatch(/the peer did not speak TLS \(first bytes: SSH-2\.0-OpenSSH_9\.2p1\)/);
  });

  it('no ALPN overlap: no common ALPN protocol', async () => {
    const s = server({ alpn: ['h2'] });
    await tlsClient(s.port, { ALPNProtocols: ['zio-other'] });
    const why = await failure(s);
    expect(why).toMatch(/no common ALPN protocol/);
    expect(why).not.toMatch(/verification/);
  });

  it('an old protocol version: not accepted', async () => {
    const s = server();
    await tlsClient(s.port, { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT@SECLEVEL=0' });
    const why = await failure(s);
    expect(why).toMatch(/protocol version not accepted/);
    expect(why).not.toMatch(/verification/);
  });

  it('a missing client certificate where one is required', async () => {
    const s = server({ clientAuth: 'require', ca: pki.ca });
    await tlsClient(s.port, {});
    const why = await failure(s);
    expect(why).toMatch(/the peer sent no certificate \(client authentication is required\)/);
  });

  it('a client certificate from another CA: the verification result is given', async () => {
    const other = makePki();
    const s = server({ clientAuth: 'require', ca: pki.ca });
    await tlsClient(s.port, { cert: other.clientCert, key: other.clientKey });
    expect(await failure(s)).toMatch(/certificate verification failed: /);
  });
});
