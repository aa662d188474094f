// Interop with independent QUIC stacks (INTEROP.md): aioquic (PyPI, installed by
// tooling/bootstrap.sh into a venv beside the caches) as client and server. Cases named by the
// QUIC Interop Runner: H handshake, DC/M transfer over many streams, S retry, R resumption, C20
// ChaCha20 only, U key update initiated by the peer, and datagrams. ngtcp2 (both directions,
// over HTTP/3): interop-ngtcp2.test.ts.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnId, Io } from '@zero-io/core';
import '@zero-io/quic';
import { aioquicClient, BulkClient, echoServer, listener, makePki, needAioquic, pattern, peers, runPeer, sha256, until, venv } from './helpers.js';

const pki = makePki();
needAioquic();
function serve(io: Io) {
  return io.runSync(echoServer(io, new Set()), { onError: (e) => { throw e; } });
}

describe('interop: aioquic client -> our server', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });
  const client = (port: number, extra: string[]) => aioquicClient(pki, port, extra);

  it('H / M / DC: 100 streams x 100 KB echoed intact, and 20 datagrams', async () => {
    const { io, port } = listener(pki, { alpn: ['zero-echo'] });
    handles.push(serve(io));
    const r = await client(port, ['--streams', '100', '--size', '100000', '--datagrams', '20', '--datagram-loss', '2']);
    expect(r.res, r.err.slice(-2000)).toMatchObject({ ok: true, streams: 100, alpn: 'zero-echo' });
    expect(r.res.datagramsEchoed as number).toBeGreaterThanOrEqual(18);
  }, 60_000);

  it('S retry, C20 ChaCha20 only, U key update by the peer', async () => {
    const { io, ep, port } = listener(pki, { alpn: ['zero-echo'], retry: true });
    handles.push(serve(io));
    const r = await client(port, ['--streams', '4', '--size', '200000', '--chacha20', '--key-update']);
    expect(r.res, r.err.slice(-2000)).toMatchObject({ ok: true, streams: 4 });
    expect(io.quicStats(ep)!.retries).toBeGreaterThanOrEqual(1);
  }, 60_000);

  it('6 IPv6: aioquic over ::1', async () => {
    const { Io } = await import('@zero-io/core');
    const io = new Io();
    const ep = io.quicListenWith({ addr: '[::1]:0', tls: { cert: pki.serverCert, key: pki.serverKey }, alpn: ['zero-echo'] });
    handles.push(serve(io));
    const r = await client(io.localAddress(ep).port, ['--host', '::1', '--streams', '4', '--size', '100000']);
    expect(r.res, r.err.slice(-2000)).toMatchObject({ ok: true, streams: 4 });
  }, 60_000);

  it('R resumption with the session ticket our server issued', async () => {
    const { io, port } = listener(pki, { alpn: ['zero-echo'] });
    handles.push(serve(io));
    const ticket = join(mkdtempSync(join(tmpdir(), 'zio-quic-')), 'ticket.pickle');
    const first = await client(port, ['--session-ticket-out', ticket]);
    expect(first.res, first.err.slice(-2000)).toMatchObject({ ok: true });
    const second = await client(port, ['--session-ticket-in', ticket, '--expect-resumed']);
    expect(second.res, second.err.slice(-2000)).toMatchObject({ ok: true, resumed: true });
  }, 60_000);
});

describe('interop: 0-RTT (aioquic client -> our server)', () => {
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    for (const h of handles) await h.shutdown();
  });
  const client = async (port: number, extra: string[]) => {
    const r = await runPeer(venv, [join(peers, 'aioquic_client.py'), '--host', '127.0.0.1', '--port', String(port), '--ca', pki.path('ca.crt'),
      '--server-name', 'localhost', '--alpn', 'zero-echo', ...extra]);
    let res: Record<string, unknown> = {};
    try { res = JSON.parse(r.out.trim().split('\n').pop() ?? ''); } catch { /* reported below */ }
    return { ...r, res };
  };
  it('Z: the 0-RTT streams of a resumed client are accepted and echoed when the listener takes early data, refused (1-RTT) when not', async () => {
    const { Io } = await import('@zero-io/core');
    for (const earlyData of [true, false]) {
      const io = new Io();
      const ep = io.quicListenWith({ addr: '127.0.0.1:0', tls: { cert: pki.serverCert, key: pki.serverKey }, alpn: ['zero-echo'], earlyData });
      handles.push(serve(io));
      const port = io.localAddress(ep).port;
      const ticket = join(mkdtempSync(join(tmpdir(), 'zio-quic-')), 'ticket.pickle');
      const first = await client(port, ['--session-ticket-out', ticket]);
      expect(first.res, first.err.slice(-2000)).toMatchObject({ ok: true });
      const second = await client(port, ['--session-ticket-in', ticket, '--early-data', '--streams', '3', '--size', '3000']);
      expect(second.res, second.err.slice(-2000)).toMatchObject({ ok: true, resumed: true, earlyDataAccepted: earlyData, streams: 3 });
    }
  }, 60_000);
});

describe('interop: our client -> aioquic server', () => {
  it('H / DC / datagrams: 10 streams x 256 KB and datagrams echoed by aioquic', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'zio-quic-'));
    writeFileSync(join(dir, 'x'), '');
    const srv = spawn(venv, [join(peers, 'aioquic_echo_server.py'), '--host', '127.0.0.1', '--port', '0',
      '--cert', pki.path('server.crt'), '--key', pki.path('server.key'), '--alpn', 'zero-echo'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    srv.stdout.on('data', (d) => (out += d));
    try {
      await until(() => /LISTENING (\d+)/.test(out), 15_000, 'aioquic to listen');
      const port = Number(/LISTENING (\d+)/.exec(out)![1]);
      const { io } = listener(pki);
      const payload = pattern(256 * 1024, 3);
      let bulk: BulkClient | null = null;
      let dgrams = 0;
      let alpn: string | null = null;
      const h = io.runSync((ev) => {
        if (!bulk || ev.conn !== bulk.conn) return;
        if (ev.type === 'Connected') {
          alpn = ev.alpn;
          bulk.open(10);
          for (let i = 0; i < 10; i++) io.sendDatagram(bulk.conn, Buffer.from(`d${i}`));
        }
        if (ev.type === 'Datagram') dgrams++;
        bulk.onEvent(ev);
      });
      const conn: ConnId = io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['zero-echo'], tls: { ca: pki.ca, servername: 'localhost' } });
      bulk = new BulkClient(io, conn, payload);
      await until(() => bulk!.results.size === 10 && dgrams >= 8, 30_000, 'the echoes from aioquic');
      for (const d of bulk.results.values()) expect(d).toBe(sha256(payload));
      expect(alpn).toBe('zero-echo');
      io.quicClose(conn);
      await h.shutdown();
    } finally {
      srv.kill('SIGKILL');
    }
  }, 60_000);
});
