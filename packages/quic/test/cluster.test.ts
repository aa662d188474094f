// QUIC on a 2-shard IoCluster with DcidDispatch: each datagram reaches the shard that issued its
// destination connection id (a reuseport BPF program reads the id's shard bits), so connections
// stay on their owning shard while the client's address changes again and again; and the
// ScidGenerator's layout (core) is the one the engine writes.
import dgram from 'node:dgram';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import { Io, IoCluster, RoutingStrategy, ScidGenerator, runPerCore, type ConnId } from '@zero-io/core';
import '@zero-io/quic';
import { makePki, until } from './helpers.js';

const handler = fileURLToPath(new URL('./fixtures/cluster-quic-shard.mjs', import.meta.url));
const pki = makePki();

it('ScidGenerator: 14 bits (serverId, shardId), the shard bits low, a power-of-two shard count', () => {
  const g = new ScidGenerator(5, 3, 4);
  expect(g.slot).toBe((5 << 2) | 3);
  const id = g.generate();
  expect(id.length).toBe(12);
  expect(ScidGenerator.decode(id, 4)).toEqual({ serverId: 5, shardId: 3 });
  expect(() => new ScidGenerator(0, 0, 3)).toThrow(/power of two/);
  expect(() => new ScidGenerator(4096, 0, 4)).toThrow(/serverId must be an integer from 0 to 4095/);
  expect(() => new IoCluster({ shardCount: 3, routing: RoutingStrategy.DcidDispatch, cpuAffinity: false })).toThrow(/power-of-two/);
});

it('DcidDispatch: connections stay on their shard across six address changes each; unknown ids are dropped', async () => {
  const cluster = new IoCluster({ shardCount: 2, routing: RoutingStrategy.DcidDispatch, cpuAffinity: false });
  const quic = cluster.udpBind('127.0.0.1:0', { name: 'quic' });
  const running = await runPerCore(cluster, handler, { workerData: { cert: pki.serverCert, key: pki.serverKey } });
  const io = new Io();
  const sockets: dgram.Socket[] = [];
  try {
    // One relay per client: it forwards through one of 7 sockets and moves to the next every
    // 40 datagrams (a NAT that keeps rebinding the client's port).
    const relay = async () => {
      const front = dgram.createSocket('udp4');
      await new Promise<void>((r) => front.bind(0, '127.0.0.1', () => r()));
      const backs: dgram.Socket[] = [];
      for (let i = 0; i < 7; i++) {
        const b = dgram.createSocket('udp4');
        await new Promise<void>((r) => b.bind(0, '127.0.0.1', () => r()));
        backs.push(b);
      }
      sockets.push(front, ...backs);
      let client: dgram.RemoteInfo | null = null;
      let n = 0;
      const at = () => Math.min(6, Math.floor(n / 25));
      front.on('message', (m, from) => {
        client = from;
        backs[at()].send(m, quic.address.port, '127.0.0.1');
        n++;
      });
      for (const b of backs) b.on('message', (m) => { if (client) front.send(m, client.port, client.address); });
      return { port: (front.address() as { port: number }).port, moves: at };
    };
    const clients: { conn: ConnId; answers: { shard: number; conn: number; migrations: number }[]; sent: number; moves: () => number }[] = [];
    // 16 clients: their first Initials go by the kernel's hash, so all on one shard has odds of
    // 2^-15 (with 6 it was 2^-5, and a CI run drew it).
    for (let i = 0; i < 16; i++) {
      const { port, moves } = await relay();
      clients.push({ conn: io.quicConnectWith({ host: '127.0.0.1', port, alpn: ['zio-cluster'], tls: { ca: pki.ca, servername: 'localhost' } }), answers: [], sent: 0, moves });
    }
    const bufs = new Map<string, string>();
    const ask = (c: (typeof clients)[number]) => {
      const s = io.openStream(c.conn);
      io.streamWrite(c.conn, s, Buffer.alloc(3000, 1));  // each question moves a few datagrams
      io.streamEnd(c.conn, s);
      c.sent++;
    };
    const h = io.runSync((ev) => {
      const c = clients.find((x) => x.conn === ev.conn);
      if (!c) return;
      if (ev.type === 'Connected') ask(c);
      if (ev.type === 'StreamFrame') {
        const k = `${ev.conn}/${ev.stream}`;
        bufs.set(k, (bufs.get(k) ?? '') + Buffer.from(ev.data).toString());
        if (ev.fin) {
          c.answers.push(JSON.parse(bufs.get(k)!));
          if (c.sent < 60) ask(c);
        }
      }
    });
    await until(() => clients.every((c) => c.answers.length === 60), 30_000, 'every client through its rebindings');
    for (const c of clients) expect(c.moves()).toBe(6);
    await new Promise((r) => setTimeout(r, 100));  // the last path validations settle
    for (const c of clients) ask(c);  // one more question each: what the shard saw in all
    await until(() => clients.every((c) => c.answers.length === 61), 10_000, 'the last answers');
    const shards = new Set<number>();
    for (const c of clients) {
      // One shard and one server-side connection answered everything, and it saw every move.
      expect(new Set(c.answers.map((a) => a.shard)).size).toBe(1);
      expect(new Set(c.answers.map((a) => a.conn)).size).toBe(1);
      expect(c.answers.at(-1)!.migrations).toBe(6);
      shards.add(c.answers[0].shard);
    }
    expect(shards.size).toBe(2);  // both shards own connections (2^-15 odds otherwise)
    // A short header for an id no shard of this server issued (another slot): dropped (counted),
    // never answered — it is not ours to end.
    const probe = dgram.createSocket('udp4');
    sockets.push(probe);
    const answers: Buffer[] = [];
    probe.on('message', (m) => answers.push(m));
    const junk = Buffer.alloc(60, 7);
    junk[0] = 0x40;
    for (let i = 0; i < 4; i++) { junk[2] = i; probe.send(junk, quic.address.port, '127.0.0.1'); }
    await new Promise((r) => setTimeout(r, 200));
    expect(answers).toHaveLength(0);
    // An id with a shard's slot (the id's bytes 1-2, the datagram's 2-3) that the shard does not
    // know (a connection it dropped, or one from before a restart): a Stateless Reset, smaller
    // than the packet, that looks like a short header. (Its token is the shard's HMAC of the id:
    // stateless-reset.test.ts.)
    for (const slot of [0, 1]) {
      const id = Buffer.from(junk);
      id[2] = 0;
      id[3] = slot;
      probe.send(id, quic.address.port, '127.0.0.1');
    }
    await until(() => answers.length === 2, 2000, 'a Stateless Reset from each shard');
    for (const m of answers) {
      expect(m.length).toBeLessThan(junk.length);
      expect(m.length).toBeGreaterThanOrEqual(21);
      expect(m[0] & 0xc0).toBe(0x40);
    }
    for (const c of clients) io.quicClose(c.conn);
    await h.shutdown();
  } finally {
    for (const s of sockets) s.close();
    await running.shutdown({ timeoutMs: 1000 });
  }
}, 60_000);
