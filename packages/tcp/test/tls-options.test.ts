// TLS options: PEM text or file paths in listen options and reloads alike, encrypted keys with
// a passphrase (server and client), and TLS listeners on an IoCluster.
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { IoCluster, runPerCore } from '@zero-io/core';
import '@zero-io/tcp';
import { until } from './helpers.js';
import { makePki, nodeTlsClient, recorder } from './tls-helpers.js';

const pki = makePki();
// The server and client keys encrypted (PKCS#8, AES-256) with a passphrase.
execFileSync('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', 'server.key', '-out', 'server.enc.key', '-passout', 'pass:s3cret'], { cwd: pki.dir });
execFileSync('openssl', ['pkcs8', '-topk8', '-v2', 'aes-256-cbc', '-in', 'client.key', '-out', 'client.enc.key', '-passout', 'pass:c1ient'], { cwd: pki.dir });
const closers: (() => Promise<void>)[] = [];
afterAll(async () => { for (const c of closers) await c(); });

function echoServer(tlsCfg: Parameters<ReturnType<typeof recorder>['io']['tcpListenWith']>[0]['tls']) {
  const r = recorder((ev, io) => { if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data); });
  const ep = r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: tlsCfg });
  closers.push(r.close);
  return { ...r, ep, port: r.io.localAddress(ep).port };
}

async function ping(port: number, opts: tls.ConnectionOptions = {}): Promise<string> {
  const s = await nodeTlsClient(pki, port, opts);
  s.write('ping');
  const [d] = await new Promise<Buffer[]>((res) => s.once('data', (x) => res([x])));
  s.destroy();
  return d.toString();
}

describe('PEM text or file paths', () => {
  it('listens with cert and key given as file paths', async () => {
    const s = echoServer({ cert: pki.path('server.crt'), key: pki.path('server.key') });
    expect(await ping(s.port)).toBe('ping');
  });

  it('a path that is not readable says so (TlsInvalidCertificate)', () => {
    const r = recorder();
    closers.push(r.close);
    expect(() => r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: join(pki.dir, 'nope.crt'), key: pki.serverKey } }))
      .toThrow(expect.objectContaining({ kind: 'TlsInvalidCertificate', message: expect.stringMatching(/neither PEM text .* nor a readable file/) }));
  });

  it('reloadFromPem takes PEM text as well as paths; reloadFromBytes takes paths', async () => {
    const s = echoServer({ cert: pki.serverCert, key: pki.serverKey });
    const reload = s.io.enableCertHotReload(s.ep);
    expect(reload.reloadFromPem(pki.server2Cert, pki.server2Key)).toBe(2);
    const sub = await new Promise<string>((res, rej) => {
      const c = tls.connect({ host: '127.0.0.1', port: s.port, ca: pki.ca, servername: 'localhost' }, () => {
        res(String(c.getPeerCertificate().subject.CN)); c.destroy();
      });
      c.on('error', rej);
    });
    expect(sub).toBe('second.test');
    expect(reload.reloadFromPem(pki.path('server.crt'), pki.path('server.key'))).toBe(3);
    expect(reload.reloadFromBytes(pki.path('server2.crt'), pki.path('server2.key'))).toBe(4);
  });
});

describe('encrypted private keys', () => {
  it('a server key with its passphrase serves; without one, or with a wrong one, it is refused by name', async () => {
    const s = echoServer({ cert: pki.serverCert, key: pki.path('server.enc.key'), passphrase: 's3cret' });
    expect(await ping(s.port)).toBe('ping');
    const r = recorder();
    closers.push(r.close);
    expect(() => r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.path('server.enc.key') } }))
      .toThrow(expect.objectContaining({ kind: 'TlsInvalidCertificate', message: expect.stringMatching(/the private key is encrypted: give its passphrase/) }));
    expect(() => r.io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: pki.serverCert, key: pki.path('server.enc.key'), passphrase: 'wrong' } }))
      .toThrow(expect.objectContaining({ kind: 'TlsInvalidCertificate', message: expect.stringMatching(/could not be decrypted with the passphrase/) }));
  });

  it('a client certificate whose key is encrypted (mTLS)', async () => {
    const s = echoServer({ cert: pki.serverCert, key: pki.serverKey, clientAuth: 'require', ca: pki.ca });
    const c = recorder((ev, io) => { if (ev.type === 'Connected') io.streamWrite(ev.conn, Buffer.from('hi')); });
    closers.push(c.close);
    const conn = c.io.tcpConnectWith({
      host: '127.0.0.1', port: s.port,
      tls: { ca: pki.ca, servername: 'localhost', cert: pki.clientCert, key: pki.path('client.enc.key'), passphrase: 'c1ient' },
    });
    await until(() => c.bytes(conn).toString() === 'hi', 5000, 'the echo over mTLS');
    const peer = s.log.find((e) => e.type === 'Connected');
    expect(peer).toBeDefined();
  });
});

describe('IoCluster TLS listeners', () => {
  it('a TLS listener declared in the main thread (encrypted key) is served by the shards', async () => {
    const cluster = new IoCluster({ shardCount: 2 });
    const ep = cluster.tcpListen('127.0.0.1:0', { tls: { cert: pki.serverCert, key: pki.path('server.enc.key'), passphrase: 's3cret' } });
    const running = await runPerCore(cluster, new URL('./fixtures/cluster-tls-shard.mjs', import.meta.url));
    try {
      const seen = new Set<string>();
      for (let i = 0; i < 24 && seen.size < 2; i++) {
        const s = await nodeTlsClient(pki, ep.address.port);
        const greeting = await new Promise<string>((res) => s.once('data', (d) => res(d.toString())));
        expect(greeting).toMatch(/^shard [01] tls\n$/);
        seen.add(greeting);
        s.write('echo me');
        expect(await new Promise<string>((res) => s.once('data', (d) => res(d.toString())))).toBe('echo me');
        s.destroy();
      }
      expect(seen.size).toBeGreaterThanOrEqual(1);
    } finally {
      await running.shutdown({ timeoutMs: 1000 });
    }
  });
});
