// IoCluster + runPerCore with real sockets and real CPU pinning: clients pinned to CPU 0 and to
// CPU 1 (taskset) connect and send datagrams; the steering program must hand everything from
// CPU c to the shard pinned to CPU c, and each shard's thread must report that CPU.
import { spawnSync } from 'node:child_process';
import { readdirSync, readlinkSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IoCluster, RoutingStrategy, runPerCore, isIoError } from '@zero-io/core';
import { loadAddon } from '../dist/addon.js';

const handler = new URL('./fixtures/cluster-shard.mjs', import.meta.url);
const client = fileURLToPath(new URL('./fixtures/cluster-client.mjs', import.meta.url));
const allowed = loadAddon().threadAffinity();
const twoCpus = allowed.includes(0) && allowed.includes(1);

function clientOn(cpu: number, tcpPort: number, udpPort: number, count: number): { tcp: { greeting: string; echoed: boolean }[]; udp: string[] } {
  const r = spawnSync('taskset', ['-c', String(cpu), process.execPath, client, String(tcpPort), String(udpPort), String(count)],
    { encoding: 'utf8', timeout: 30_000 });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  return JSON.parse(r.stdout);
}

// Sockets this process holds (worker threads come and go with their own eventfds and epolls).
const openSockets = (): number => readdirSync('/proc/self/fd').filter((fd) => {
  try { return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:'); } catch { return false; }
}).length;

// The second case pins shard 0 to CPU 1 and shard 1 to CPU 0: the program follows the pinning,
// not the group index.
describe.each([
  { routing: RoutingStrategy.ReusePortCbpf, cpus: [0, 1] },
  { routing: RoutingStrategy.ReusePortEbpf, cpus: [1, 0] },
])('IoCluster ($routing, shards on CPUs $cpus)', ({ routing, cpus }) => {
  it.runIf(twoCpus)('spreads connections and datagrams by CPU: each shard pinned, each CPU served by its shard', async () => {
    const cluster = new IoCluster({ shardCount: 2, routing, cpuAffinity: cpus });
    expect(cluster.steering).toBe('cpu');
    const tcp = cluster.tcpListen('127.0.0.1:0', { name: 'echo' });
    // GRO and an interface name go through the same validation as udpBindWith.
    const udp = cluster.udpBind('127.0.0.1:0', { name: 'dgram', gro: true, multicastInterface: 'lo' });
    const running = await runPerCore(cluster, handler);
    try {
      expect(running.shards.map((s) => [s.shardId, s.cpu, s.affinity])).toEqual([[0, cpus[0], [cpus[0]]], [1, cpus[1], [cpus[1]]]]);
      for (const cpu of [0, 1]) {
        const shard = cpus.indexOf(cpu);
        const r = clientOn(cpu, tcp.address.port, udp.address.port, 12);
        expect(r.tcp.map((t) => t.greeting)).toEqual(Array(12).fill(`shard ${shard} cpu ${cpu}`));
        expect(r.tcp.every((t) => t.echoed)).toBe(true);
        expect(r.udp).toEqual(Array(12).fill(`shard ${shard}`));
      }
      const stats = await running.stats();
      expect(stats.map((s) => [s.shardId, s.cpu, s.pool.counters.connsAccepted, s.pool.counters.udpRx]))
        .toEqual([[0, cpus[0], 12, 12], [1, cpus[1], 12, 12]]);
    } finally {
      await running.shutdown({ timeoutMs: 1000 });
    }
    // Every member socket closed with the shards: the port is free for a plain listener.
    const s = net.createServer();
    await new Promise<void>((res, rej) => { s.once('error', rej); s.listen(tcp.address.port, '127.0.0.1', () => res()); });
    s.close();
  });
});

describe('IoCluster configuration and failures', () => {
  it('takes DcidDispatch with a power-of-two shard count only, and validates every option by name', () => {
    expect(() => new IoCluster({ shardCount: 3, routing: RoutingStrategy.DcidDispatch, cpuAffinity: false })).toThrow(/DcidDispatch needs a power-of-two shardCount/);
    new IoCluster({ shardCount: 2, routing: RoutingStrategy.DcidDispatch, cpuAffinity: false }).close();
    expect(() => new IoCluster({ shardCount: 0 })).toThrow(/shardCount must be an integer in \[1, 1024\]/);
    expect(() => new IoCluster({ shardCount: 2, cpuAffinity: [0] })).toThrow(/one CPU per shard \(2\)/);
    expect(() => new IoCluster({ expectedProtocols: ['quic'] })).toThrow(/expectedProtocols has "quic"/);
    expect(() => new IoCluster({ config: { poolSlotSize: 10 } })).toThrow(/poolSlotSize/);
    expect(() => new IoCluster({ shards: 2 } as never)).toThrow(/unknown option shards/);
    const c = new IoCluster({ shardCount: 1, expectedProtocols: ['udp'] });
    expect(() => c.tcpListen('127.0.0.1:0')).toThrow(/'tcp' is not in expectedProtocols/);
    expect(() => c.udpBind('127.0.0.1:0', { reusePort: false } as never)).toThrow(/reusePort is how a cluster works/);
    expect(() => c.udpBind('127.0.0.1:0', { sendQueue: 0 })).toThrow(/IoCluster\.udpBind: sendQueue must be an integer/);
    expect(() => c.udpBind('127.0.0.1:0', { multicastInterface: 'no-such-if0' })).toThrow(/no interface named or addressed 'no-such-if0'/);
    c.close();
  });

  it('falls back to the kernel flow hash when shards are not one per CPU, and still serves', async () => {
    const cluster = new IoCluster({ shardCount: 3, cpuAffinity: false });
    expect(cluster.steering).toBe('kernel-hash');
    const tcp = cluster.tcpListen('127.0.0.1:0', { name: 'echo' });
    const udp = cluster.udpBind('127.0.0.1:0', { name: 'dgram' });
    const running = await runPerCore(cluster, handler);
    try {
      expect(running.shards.map((s) => s.cpu)).toEqual([null, null, null]);
      const r = clientOn(allowed[0], tcp.address.port, udp.address.port, 30);
      const shardsSeen = new Set(r.tcp.map((t) => t.greeting.split(' ')[1]));
      expect(r.tcp.every((t) => t.echoed)).toBe(true);
      expect(shardsSeen.size).toBeGreaterThan(1);  // 30 distinct flows over 3 members: all on one has p < 1e-13
      const stats = await running.stats();
      expect(stats.reduce((a, s) => a + s.pool.counters.connsAccepted, 0)).toBe(30);
    } finally {
      await running.shutdown();
    }
  });

  it('a shard whose handler throws fails runPerCore with ShardFailed; the others stop; no socket leaks', async () => {
    const before = openSockets();
    const cluster = new IoCluster({ shardCount: 2, cpuAffinity: false });
    cluster.tcpListen('127.0.0.1:0', { name: 'echo' });
    cluster.udpBind('127.0.0.1:0', { name: 'dgram' });
    const err = await runPerCore(cluster, handler, { workerData: { fail: 'throw' } }).catch((e: unknown) => e);
    expect(isIoError(err) && err.kind).toBe('ShardFailed');
    expect((err as Error).message).toMatch(/shard \d: Error: shard \d refuses to start/);
    expect(openSockets()).toBe(before);
    await expect(runPerCore(cluster, handler)).rejects.toThrow(/already running/);
  });

  it('a handler module without a default export is refused with the fix', async () => {
    const cluster = new IoCluster({ shardCount: 1, cpuAffinity: false });
    cluster.tcpListen('127.0.0.1:0');
    const err = await runPerCore(cluster, new URL('./fixtures/no-default.mjs', import.meta.url)).catch((e: Error) => e);
    expect(isIoError(err) && err.kind).toBe('ShardFailed');
    expect((err as Error).message).toMatch(/has no default export function \(export default function \(io, ctx\)/);
  });
});
