import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Io, type Config, type ConnId, type Event, type ShutdownHandle } from '@zero-io/core';
import '@zero-io/tcp';
import { checkHandlerErrors, onError } from '../../core/test/handler-errors.js';

// Every runSync in these tests passes `{ onError }`: a handler that throws fails its test.
export { checkHandlerErrors, onError };

/** A zero-io echo server driven by runSync; honours partial writes (Writable) by queueing copies. */
export interface EchoServer {
  io: Io;
  port: number;
  handle: ShutdownHandle;
  events: { connected: number; disconnected: { conn: ConnId; errorCode: number; reason: string; origin: string }[] };
  close(): Promise<void>;
}

/**
 * An event handler that echoes StreamFrames and honours partial writes: what the write queue
 * refuses waits (copied) until the connection's Writable event.
 */
export function echoHandler(): (ev: Event, io: Io) => void {
  const pending = new Map<ConnId, Buffer[]>();
  const flush = (io: Io, conn: ConnId): void => {
    const q = pending.get(conn);
    while (q && q.length) {
      const head = q[0];
      const n = io.streamWrite(conn, head);
      if (n === head.length) q.shift();
      else { q[0] = head.subarray(n); return; }
    }
    pending.delete(conn);
  };
  return (ev, io) => {
    switch (ev.type) {
      case 'StreamFrame': {
        const q = pending.get(ev.conn);
        if (q) { q.push(Buffer.from(ev.data)); break; }
        const n = io.streamWrite(ev.conn, ev.data);
        if (n < ev.length) pending.set(ev.conn, [Buffer.from(ev.data.subarray(n))]);
        break;
      }
      case 'Writable': flush(io, ev.conn); break;
      case 'Disconnected': pending.delete(ev.conn); break;
    }
  };
}

export function startEcho(config: Config = {}, onEvent?: (ev: Event, io: Io) => void): EchoServer {
  const io = new Io(config);
  const ep = io.tcpListen('127.0.0.1:0');
  const port = io.localAddress(ep).port;
  const events: EchoServer['events'] = { connected: 0, disconnected: [] };
  const echo = echoHandler();
  const handle = io.runSync((ev) => {
    onEvent?.(ev, io);
    echo(ev, io);
    if (ev.type === 'Connected') events.connected++;
    else if (ev.type === 'Disconnected') {
      events.disconnected.push({ conn: ev.conn, errorCode: ev.errorCode, reason: ev.reason, origin: ev.origin });
    }
  }, { onError });
  return {
    io, port, handle, events,
    async close() {
      await handle.shutdown({ timeoutMs: 1000 });
      io.shutdown();
    },
  };
}

/** Sends `payload` over a node:net client and resolves with everything echoed until `payload.length` bytes came back. */
export function echoRoundTrip(port: number, payload: Buffer, opts: { host?: string; path?: string } = {}): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = opts.path ? net.connect(opts.path) : net.connect(port, opts.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    let got = 0;
    s.on('connect', () => s.write(payload));
    s.on('data', (d) => {
      chunks.push(d);
      got += d.length;
      if (got >= payload.length) { s.end(); resolve(Buffer.concat(chunks)); }
    });
    s.on('error', reject);
  });
}

export function randomPayload(size: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; b[i] = x & 0xff; }
  return b;
}

/** Waits for `cond`; throws at once what a runSync handler threw meanwhile (see onError). */
export async function until(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    checkHandlerErrors();
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Absolute paths of the built core and tcp entry points, for scripts run in child processes. */
export const entries = {
  core: fileURLToPath(new URL('../../core/dist/index.js', import.meta.url)),
  tcp: fileURLToPath(new URL('../dist/index.js', import.meta.url)),
};

/**
 * Runs a module script in a child node process that sees `hosts` as its /etc/hosts: a private
 * mount namespace (unshare -m + a bind mount), so name resolution goes through the real system
 * resolver. With `privateNet`, also a private network namespace with only loopback up, so the
 * kernel's TCP counters (/proc/net/netstat) count this script's sockets alone. Needs root and
 * util-linux's unshare (both present on the project's machines and CI), and iproute2 for
 * `privateNet`.
 */
export function runWithHosts(hosts: string, script: string, extraFiles: Record<string, string> = {}, opts: { privateNet?: boolean } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'zio-hosts-'));
  writeFileSync(join(dir, 'hosts'), hosts);
  for (const [name, text] of Object.entries(extraFiles)) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'main.mjs'), script);
  const netns = opts.privateNet ? ['-n'] : [];
  const lo = opts.privateNet ? 'ip link set lo up && ' : '';
  const r = spawnSync('unshare', ['-m', ...netns, 'sh', '-c', `${lo}mount --bind ${join(dir, 'hosts')} /etc/hosts && exec ${process.execPath} ${join(dir, 'main.mjs')}`],
    { encoding: 'utf8', timeout: 30_000, cwd: dir });
  if (r.error) throw new Error(`unshare(1) could not run (this test needs root and util-linux): ${r.error.message}`);
  return { dir, status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Listens `server` on 127.0.0.1 with a free port and resolves with that port. */
export function listenLocal(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/**
 * A real black hole on loopback: a listener with backlog 0 that never accepts (a small C
 * program: node:net always accepts), holding one completed connection, so Linux drops every
 * further SYN to it (accept queue full). A connect there hangs until the kernel gives up.
 */
export async function blackHole(host = '127.0.0.1'): Promise<{ host: string; port: number; close(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'zio-hole-'));
  writeFileSync(join(dir, 'hole.c'), `
    #include <arpa/inet.h>
    #include <stdio.h>
    #include <unistd.h>
    int main(int argc, char **argv) {
      int fd = socket(AF_INET, SOCK_STREAM, 0);
      struct sockaddr_in a = { .sin_family = AF_INET };
      inet_pton(AF_INET, argv[1], &a.sin_addr);
      socklen_t len = sizeof a;
      if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 0) || getsockname(fd, (struct sockaddr *)&a, &len)) { perror("hole"); return 1; }
      printf("%d\\n", ntohs(a.sin_port)); fflush(stdout);
      sleep(120);   /* never accepts */
      return 0;
    }`);
  const cc = spawnSync('cc', ['-O1', '-o', join(dir, 'hole'), join(dir, 'hole.c')], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc failed (build-essential is installed by tooling/bootstrap.sh): ${cc.stderr}`);
  const proc = spawn(join(dir, 'hole'), [host], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve) => proc.stdout!.once('data', (d) => resolve(Number(String(d).trim()))));
  const filler = net.connect(port, host);  // completes into the accept queue, never accepted
  filler.on('error', () => {});
  await new Promise((r) => filler.once('connect', r));
  // Wait until the kernel has the filler queued: from then on SYNs are dropped.
  const local = host.split('.').map((b) => Number(b).toString(16).padStart(2, '0')).reverse().join('').toUpperCase() +
    ':' + port.toString(16).toUpperCase().padStart(4, '0');
  await until(() => {
    const row = readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
      .find((f) => f[1] === local && f[3] === '0A');
    return row !== undefined && parseInt(row[4].split(':')[1], 16) === 1;
  }, 5000, 'the black hole to fill');
  return { host, port, close() { filler.destroy(); proc.kill(); } };
}
