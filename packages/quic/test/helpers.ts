// Helpers of the QUIC tests: one Io that is server and client at once (two shards' worth of
// connections on one event loop), an echo server, and a bulk client that checks every byte.
import { execFileSync, spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Io, type ConnId, type EndpointId, type Event } from '@zero-io/core';
import '@zero-io/quic';
import type { QuicListenConfig } from '@zero-io/quic';
import { makePki, type Pki } from '../../tcp/test/tls-helpers.js';

export { makePki, type Pki };

export async function until(cond: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex');
}

export function pattern(size: number, seed = 7): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + seed) & 255;
  return b;
}

/**
 * Echo on every server-side connection of `io` (connections not in `clients`): each stream's
 * bytes go back on it, FIN for FIN, with Writable honoured; datagrams are echoed.
 */
export function echoServer(io: Io, clients: Set<ConnId>): (ev: Event) => boolean {
  const queues = new Map<string, { bufs: Buffer[]; fin: boolean }>();
  const pump = (conn: ConnId, stream: number) => {
    const k = `${conn}/${stream}`;
    const q = queues.get(k);
    if (!q) return;
    while (q.bufs.length) {
      const b = q.bufs[0];
      const n = io.streamWrite(conn, stream, b);
      if (n < b.length) {
        q.bufs[0] = b.subarray(n);
        return;
      }
      q.bufs.shift();
    }
    if (q.fin) {
      io.streamEnd(conn, stream);
      queues.delete(k);
    }
  };
  const f = (ev: Event) => {
    if (clients.has(ev.conn)) return false;
    if (ev.type === 'StreamFrame') {
      const k = `${ev.conn}/${ev.stream}`;
      let q = queues.get(k);
      if (!q) queues.set(k, (q = { bufs: [], fin: false }));
      if (ev.length) q.bufs.push(Buffer.from(ev.data));
      if (ev.fin) q.fin = true;
      pump(ev.conn, ev.stream);
      return true;
    }
    if (ev.type === 'Writable') {
      pump(ev.conn, ev.stream);
      return true;
    }
    if (ev.type === 'Datagram') {
      io.sendDatagram(ev.conn, ev.data);
      return true;
    }
    if (ev.type === 'Disconnected') {
      for (const k of queues.keys()) if (k.startsWith(`${ev.conn}/`)) queues.delete(k);
    }
    return false;
  };
  return f;
}

/** A client side that writes `payload` on `streams` streams (Writable honoured) and hashes the echo. */
export class BulkClient {
  readonly results = new Map<number, string>();
  private sent = new Map<number, number>();
  private hashes = new Map<number, ReturnType<typeof createHash>>();
  constructor(private io: Io, readonly conn: ConnId, private payload: Buffer) {}
  open(count: number): void {
    for (let i = 0; i < count; i++) {
      const s = this.io.openStream(this.conn);
      this.sent.set(s, 0);
      this.hashes.set(s, createHash('sha256'));
      this.pump(s);
    }
  }
  pump(s: number): void {
    let off = this.sent.get(s);
    if (off === undefined) return;
    while (off < this.payload.length) {
      const n = this.io.streamWrite(this.conn, s, this.payload.subarray(off));
      if (n === 0) break;
      off += n;
    }
    this.sent.set(s, off);
    if (off === this.payload.length) {
      this.io.streamEnd(this.conn, s);
      this.sent.delete(s);
    }
  }
  onEvent(ev: Event): void {
    if (ev.conn !== this.conn) return;
    if (ev.type === 'Writable') this.pump(ev.stream);
    if (ev.type === 'StreamFrame') {
      this.hashes.get(ev.stream)?.update(ev.data);
      if (ev.fin) this.results.set(ev.stream, this.hashes.get(ev.stream)!.digest('hex'));
    }
  }
}

/** An Io with a QUIC listener on 127.0.0.1:0 (certificate of `pki`) and its port. */
export function listener(pki: Pki, extra: Partial<QuicListenConfig> = {}): { io: Io; ep: EndpointId; port: number } {
  const io = new Io();
  const ep = io.quicListenWith({ addr: '127.0.0.1:0', tls: { cert: pki.serverCert, key: pki.serverKey }, ...extra });
  return { io, ep, port: io.localAddress(ep).port };
}

/** A self-signed certificate (ECDSA P-256) for localhost with `names` extra DNS names: a large one. */
export function makeBigCert(names: number): { cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), 'zio-bigcert-'));
  const san = ['DNS:localhost', 'IP:127.0.0.1', ...Array.from({ length: names }, (_, i) => `DNS:host-${i}.a-rather-long-name.example.test`)].join(',');
  writeFileSync(join(dir, 'ext'), `subjectAltName=${san}\n`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=localhost',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-addext', `subjectAltName=${san}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { cert: readFileSync(join(dir, 'cert.pem'), 'latin1'), key: readFileSync(join(dir, 'key.pem'), 'latin1') };
}

/**
 * A UDP relay between a client and the server at 127.0.0.1:`serverPort` that changes the
 * address the server sees after `after` datagrams from the client: a NAT rebinding (BP: a new
 * source port) or an address change (BA: `address` 127.0.0.2). The client keeps talking to
 * `port` and sees nothing change.
 */
export async function rebindingRelay(serverPort: number, after: number, address = '127.0.0.1') {
  const bind = (s: dgram.Socket, host: string) => new Promise<void>((r) => s.bind(0, host, () => r()));
  // Large socket buffers: the relay shares the test's event loop with the engine, and a busy
  // machine must not turn it into a lossy link (a burst of ~100 lost packets on the new path
  // right after the move sends quiche into long loss-recovery backoffs: not what this tests).
  const sock = () => dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
  const front = sock();
  const back1 = sock();
  const back2 = sock();
  await bind(front, '127.0.0.1');
  await bind(back1, '127.0.0.1');
  await bind(back2, address);
  let client: { address: string; port: number } | null = null;
  let back = back1;
  let forwarded = 0;
  front.on('message', (m, from) => {
    client = { address: from.address, port: from.port };
    if (++forwarded === after) back = back2;  // the rebinding
    back.send(m, serverPort, '127.0.0.1');
  });
  for (const b of [back1, back2]) b.on('message', (m) => { if (client) front.send(m, client.port, client.address); });
  const at = (s: dgram.Socket) => s.address() as { address: string; port: number };
  return {
    port: at(front).port,
    before: at(back1),
    after: at(back2),
    forwarded: () => forwarded,
    close: () => { for (const x of [front, back1, back2]) x.close(); },
  };
}

// ---- real peers (aioquic in a venv tooling/bootstrap.sh makes) ----

export const venv = join(process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io'), 'venv-aioquic', 'bin', 'python');
export const peers = join(import.meta.dirname, 'peers');

export function runPeer(cmd: string, args: string[], timeoutMs = 40_000): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}


/** Throws unless the aioquic venv exists (tests that run aioquic call it first). */
export function needAioquic(): void {
  if (!existsSync(venv)) throw new Error(`aioquic is not installed at ${venv}: run tooling/bootstrap.sh (it makes the venv)`);
}

/** Runs the aioquic echo client against 127.0.0.1:`port` (CA of `pki`, ALPN zero-echo); its JSON report. */
export async function aioquicClient(pki: Pki, port: number, extra: string[]) {
  const r = await runPeer(venv, [join(peers, 'aioquic_client.py'), '--host', '127.0.0.1', '--port', String(port), '--ca', pki.path('ca.crt'),
    '--server-name', 'localhost', '--alpn', 'zero-echo', ...extra]);
  let res: Record<string, unknown> = {};
  try { res = JSON.parse(r.out.trim().split('\n').pop() ?? ''); } catch { /* reported by the caller's expectation */ }
  return { ...r, res };
}
