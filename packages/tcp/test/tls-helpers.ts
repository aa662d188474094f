// Certificates for the TLS tests, made with the openssl CLI (a real CA, a server and a client).
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { Io, type ConnId, type Event } from '@zero-io/core';
import { onError } from './helpers.js';

export interface Pki {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  server2Cert: string;
  server2Key: string;
  clientCert: string;
  clientKey: string;
  path(name: string): string;
}

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A CA and leaf certificates signed by it (ECDSA P-256), SANs for localhost / 127.0.0.1. */
export function makePki(): Pki {
  const dir = mkdtempSync(join(tmpdir(), 'zio-pki-'));
  ossl(dir, ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', '/CN=zero-io test CA', '-keyout', 'ca.key', '-out', 'ca.crt']);
  // x509 -extfile reads the extensions from a file: one per leaf.
  const mk = (name: string, cn: string, san: string, eku: string) => {
    writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\nextendedKeyUsage=${eku}\n`);
    ossl(dir, ['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${cn}`,
      '-keyout', `${name}.key`, '-out', `${name}.csr`]);
    ossl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2',
      '-out', `${name}.crt`, '-extfile', `${name}.ext`]);
  };
  mk('server', 'localhost', 'DNS:localhost,IP:127.0.0.1', 'serverAuth');
  mk('server2', 'second.test', 'DNS:second.test,DNS:localhost,IP:127.0.0.1', 'serverAuth');
  mk('client', 'zero-io client', 'DNS:client.test', 'clientAuth');
  const r = (f: string) => readFileSync(join(dir, f), 'latin1');
  return {
    dir, ca: r('ca.crt'), serverCert: r('server.crt'), serverKey: r('server.key'),
    server2Cert: r('server2.crt'), server2Key: r('server2.key'), clientCert: r('client.crt'), clientKey: r('client.key'),
    path: (n: string) => join(dir, n),
  };
}

export interface Rec { type: string; conn: number; tls?: boolean; bytes?: Buffer; error?: string; errorCode?: number; kind?: string; alert?: number; origin?: string }

/** An Io under runSync that records events; `onEvent` may answer. */
export function recorder(onEvent?: (ev: Event, io: Io) => void, config: ConstructorParameters<typeof Io>[0] = {}) {
  const io = new Io({ poolSlotCount: 1024, ...config });
  const log: Rec[] = [];
  const handle = io.runSync((ev, i) => {
    if (ev.type === 'StreamFrame') log.push({ type: ev.type, conn: ev.conn, bytes: Buffer.from(ev.data) });
    else if (ev.type === 'Connected') log.push({ type: ev.type, conn: ev.conn, tls: ev.tls });
    else if (ev.type === 'Disconnected') {
      const e = ev.error;
      log.push({ type: ev.type, conn: ev.conn, error: ev.reason, errorCode: ev.errorCode, kind: e?.kind, alert: e?.alert, origin: ev.origin });
    } else log.push({ type: ev.type, conn: (ev as { conn?: number }).conn ?? -1 });
    onEvent?.(ev, i);
  }, { onError });
  const bytes = (conn: ConnId | number) => Buffer.concat(log.filter((e) => e.type === 'StreamFrame' && e.conn === conn).map((e) => e.bytes!));
  return { io, log, bytes, async close() { await handle.shutdown({ timeoutMs: 500 }); io.shutdown(); } };
}

/** A node:tls client trusting the test CA, connected (secureConnect) to 127.0.0.1:`port` as localhost. */
export function nodeTlsClient(pki: Pki, port: number, opts: tls.ConnectionOptions = {}): Promise<tls.TLSSocket> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: pki.ca, servername: 'localhost', ...opts }, () => resolve(s));
    s.on('error', reject);
  });
}

/** Writes `payload` and resolves with what comes back once as many bytes arrived (an echo). */
export async function roundTrip(s: tls.TLSSocket, payload: Buffer): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  const done = new Promise<void>((res) => s.on('data', (d: Buffer) => { chunks.push(d); n += d.length; if (n >= payload.length) res(); }));
  s.write(payload);
  await done;
  return Buffer.concat(chunks);
}
