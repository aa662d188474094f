// QUIC under delay, loss, corruption and blackholes — the QUIC Interop Runner's LR, L1, L2, C1, C2
// and B — through a UDP relay that impairs both directions: every transfer completes with every
// byte intact under each congestion controller. The relay is ours, in user space: this kernel has
// no sch_netem (CONFIG_NET_SCH_NETEM is not set), so `tc netem` on a veth pair is not available
// here; the relay does what netem would (per-packet delay, random loss and bit flips, a link cut).
import dgram from 'node:dgram';
import { afterAll, describe, expect, it } from 'vitest';
import type { ConnId } from '@zero-io/core';
import '@zero-io/quic';
import type { QuicCongestionControl } from '@zero-io/quic';
import { BulkClient, echoServer, listener, makePki, pattern, sha256, until } from './helpers.js';

const pki = makePki();

let closing = false;  // the suite is closing its sockets: delayed datagrams are dropped

interface Impairment { delayMs: number; loss: number; corrupt: number; cut: boolean; forwarded?: number }

/** A relay client <-> server applying `imp` to every datagram each way. Returns its port. */
async function relay(serverPort: number, imp: Impairment, sockets: dgram.Socket[]): Promise<number> {
  const front = dgram.createSocket('udp4');
  const back = dgram.createSocket('udp4');
  await new Promise<void>((r) => front.bind(0, '127.0.0.1', () => r()));
  await new Promise<void>((r) => back.bind(0, '127.0.0.1', () => r()));
  sockets.push(front, back);
  let client: dgram.RemoteInfo | null = null;
  // Seeded (the same losses every run) and at most 2 drops in a row each way: a loss rate, not a
  // lottery whose bad draws (five handshake losses in a row) would back the timers off for minutes.
  let seed = 0x9e3779b9;
  const random = () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  let dropsInARow = 0;
  const pass = (m: Buffer, out: (b: Buffer) => void) => {
    if (imp.cut) return;
    if (imp.loss > 0 && dropsInARow < 2 && random() < imp.loss) {
      dropsInARow++;
      return;
    }
    dropsInARow = 0;
    imp.forwarded = (imp.forwarded ?? 0) + 1;
    let b = m;
    if (random() < imp.corrupt) {
      b = Buffer.from(m);
      b[Math.floor(random() * b.length)] ^= 1 << Math.floor(random() * 8);
    }
    // (a datagram still in its delay when the suite closes the sockets is dropped, as a link would)
    const send = () => { if (!closing) out(b); };
    if (imp.delayMs > 0) setTimeout(send, imp.delayMs);
    else send();
  };
  front.on('message', (m, from) => {
    client = from;
    pass(m, (b) => back.send(b, serverPort, '127.0.0.1'));
  });
  back.on('message', (m) => { if (client) { const c = client; pass(m, (b) => front.send(b, c.port, c.address)); } });
  return (front.address() as { port: number }).port;
}

const CCS: QuicCongestionControl[] = ['cubic', 'reno', 'bbr2'];
const CASES: [string, Impairment, number, number][] = [
  ['LR: 750 ms RTT', { delayMs: 375, loss: 0, corrupt: 0, cut: false }, 2, 96 * 1024],
  ['L1: 30% loss each way, through the handshake', { delayMs: 2, loss: 0.3, corrupt: 0, cut: false }, 1, 8 * 1024],
  ['L2: 5% loss each way', { delayMs: 5, loss: 0.05, corrupt: 0, cut: false }, 4, 256 * 1024],
  ['C1: 2% of datagrams with a flipped bit', { delayMs: 5, loss: 0, corrupt: 0.02, cut: false }, 4, 256 * 1024],
  ['C2: 10% flipped and 2% lost', { delayMs: 5, loss: 0.02, corrupt: 0.1, cut: false }, 2, 128 * 1024],
];

describe('QUIC through an impaired path (delay, loss, corruption, blackhole)', () => {
  const sockets: dgram.Socket[] = [];
  const handles: { shutdown(): Promise<void> }[] = [];
  afterAll(async () => {
    closing = true;
    for (const h of handles) await h.shutdown();
    for (const s of sockets) s.close();
  });

  for (const cc of CCS) {
    for (const [name, imp, streams, bytes] of CASES) {
      it(`${cc} — ${name}: ${streams} x ${bytes / 1024} KiB echoed intact`, async () => {
        const { io, port } = listener(pki, { congestionControl: cc });
        const clients = new Set<ConnId>();
        const payload = pattern(bytes, 29);
        let bulk: BulkClient | null = null;
        const echo = echoServer(io, clients);
        const h = io.runSync((ev) => {
          if (echo(ev)) return;
          if (ev.type === 'Connected' && bulk && ev.conn === bulk.conn) bulk.open(streams);
          bulk?.onEvent(ev);
        });
        handles.push(h);
        const rport = await relay(port, imp, sockets);
        const conn = io.quicConnectWith({ host: '127.0.0.1', port: rport, congestionControl: cc, idleTimeoutMs: 60_000,
          tls: { ca: pki.ca, servername: 'localhost' } });
        clients.add(conn);
        bulk = new BulkClient(io, conn, payload);
        const t0 = Date.now();
        await until(() => bulk!.results.size === streams, 60_000, `${name} under ${cc}`);
        for (const d of bulk.results.values()) expect(d).toBe(sha256(payload));
        if (imp.delayMs >= 375) expect(Date.now() - t0).toBeGreaterThan(1500);  // the delay was real
        io.close(conn);
      }, 90_000);
    }

    it(`${cc} — B: the path is cut for 2 s of every 7 during a 2 MiB transfer; it completes intact`, async () => {
      const { io, port } = listener(pki, { congestionControl: cc });
      const clients = new Set<ConnId>();
      const payload = pattern(1 << 20, 31);  // x 2 streams, echoed: 4 MiB through the relay
      let bulk: BulkClient | null = null;
      const echo = echoServer(io, clients);
      const h = io.runSync((ev) => {
        if (echo(ev)) return;
        if (ev.type === 'Connected' && bulk && ev.conn === bulk.conn) bulk.open(2);
        bulk?.onEvent(ev);
      });
      handles.push(h);
      const imp: Impairment = { delayMs: 10, loss: 0, corrupt: 0, cut: false, forwarded: 0 };
      const rport = await relay(port, imp, sockets);
      // The first cut falls in the middle of the data (after 300 forwarded datagrams), then one
      // every 7 s while the transfer lasts.
      let cuts = 0;
      const cut = () => {
        imp.cut = true;
        cuts++;
        setTimeout(() => { imp.cut = false; }, 2000);
      };
      let cycle: NodeJS.Timeout | undefined;
      const watch = setInterval(() => {
        if ((imp.forwarded ?? 0) < 300 || cycle) return;
        cut();
        cycle = setInterval(cut, 7000);
      }, 5);
      try {
        const conn = io.quicConnectWith({ host: '127.0.0.1', port: rport, congestionControl: cc, idleTimeoutMs: 60_000,
          tls: { ca: pki.ca, servername: 'localhost' } });
        clients.add(conn);
        bulk = new BulkClient(io, conn, payload);
        await until(() => bulk!.results.size === 2, 60_000, `B under ${cc}`);
        for (const d of bulk.results.values()) expect(d).toBe(sha256(payload));
        expect(cuts).toBeGreaterThanOrEqual(1);
        io.close(conn);
      } finally {
        clearInterval(watch);
        clearInterval(cycle);
        imp.cut = false;
      }
    }, 90_000);
  }
});
