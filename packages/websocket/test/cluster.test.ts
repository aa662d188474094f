// Pub/sub across an IoCluster: subscribers spread over two shards, one publish per shard through
// each shard's IoHandle (from the main thread) reaches every one of them exactly once.
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';
import WebSocket from 'ws';
import { IoCluster, IoHandle, runPerCore } from '@zero-io/core';
import '@zero-io/websocket';
import { until } from './helpers.js';

const handler = fileURLToPath(new URL('./fixtures/cluster-ws-shard.mjs', import.meta.url));

it('a publish on every shard handle reaches the subscribers of every shard once', async () => {
  const cluster = new IoCluster({ shardCount: 2, cpuAffinity: false });
  const ws = cluster.tcpListen('127.0.0.1:0', { name: 'ws' });
  const running = await runPerCore(cluster, handler);
  const clients: WebSocket[] = [];
  try {
    const greetings: string[] = [];
    const got: string[][] = [];
    for (let i = 0; i < 40; i++) {
      const c = new WebSocket(`ws://127.0.0.1:${ws.address.port}/`);
      const mine: string[] = [];
      got.push(mine);
      c.on('message', (d) => { const t = String(d); if (t.startsWith('shard ')) greetings.push(t); else mine.push(t); });
      clients.push(c);
    }
    await until(() => greetings.length === 40, 10_000, 'every greeting');
    expect(new Set(greetings).size).toBe(2);  // both shards have subscribers (2^-39 odds otherwise)
    const handles = running.shards.map((s) => IoHandle.from(s.handleId));
    for (let k = 0; k < 5; k++) for (const h of handles) h.wsPublish('all', `tick ${k}`);
    await until(() => got.every((g) => g.length === 5), 10_000, 'every tick at every client');
    for (const g of got) expect(g).toEqual(['tick 0', 'tick 1', 'tick 2', 'tick 3', 'tick 4']);
  } finally {
    clients.forEach((c) => c.terminate());
    await running.shutdown({ timeoutMs: 1000 });
  }
});
