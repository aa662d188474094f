/**
 * The worker-thread side of {@link runPerCore}: pin, create the ShardIo, take over the
 * endpoints, run the handler module, then answer the main thread (stats, shutdown).
 * @internal
 * @module
 */
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { loadAddon } from './addon.js';
// Through the package entry: it installs every method core adds to Io (UDP, SendBuffer, ...).
import { ShardIo } from './index.js';
import type { ShardBoot, ShardHandler, ShardInfo, ShardStats } from './cluster.js';
import type { ShutdownHandle } from './io.js';

const boot = workerData as ShardBoot;
const port = parentPort!;
const native = loadAddon();

function isHandle(x: unknown): x is ShutdownHandle {
  return typeof x === 'object' && x !== null && typeof (x as ShutdownHandle).shutdown === 'function';
}

let io: ShardIo | undefined;
try {
  if (boot.cpu !== null) native.threadAffinity([boot.cpu]);
  try {
    io = new ShardIo(boot);
  } catch (e) {
    for (const ep of boot.endpoints) native.closeFd(ep.fd);  // not adopted: nobody else closes them
    throw e;
  }
  const mod = (await import(boot.handler)) as { default?: unknown };
  if (typeof mod.default !== 'function') {
    throw new Error(`the handler module ${boot.handler} has no default export function (export default function (io, ctx) { ... })`);
  }
  const ret = await (mod.default as ShardHandler)(io, { shardId: boot.shardId, shardCount: boot.shardCount, workerData: boot.workerData });
  if (isHandle(ret)) io._running = ret;
  if (!io.running) throw new Error(`the handler of ${boot.handler} returned without driving the shard: call io.runSync(handler) in it`);
  const info: ShardInfo = { shardId: boot.shardId, threadId, cpu: boot.cpu, affinity: io.affinity(), backend: io.backend, handleId: io.handle().id };
  port.postMessage({ type: 'ready', info });
} catch (e) {
  io?.shutdown();
  port.postMessage({ type: 'failed', error: (e as Error)?.stack ?? String(e) });
  port.close();
}

port.on('message', (m: { type: string; id?: number; timeoutMs?: number }) => {
  const shard = io;
  if (!shard) return;
  if (m.type === 'stats') {
    if (shard.closed) {
      port.postMessage({ type: 'stats', id: m.id, error: `shard ${boot.shardId} is shutting down` });
      return;
    }
    const value: ShardStats = { shardId: boot.shardId, cpu: shard.currentCpu(), pool: shard.poolStats() };
    port.postMessage({ type: 'stats', id: m.id, value });
  } else if (m.type === 'shutdown') {
    void (async () => {
      try {
        await shard._running?.shutdown({ timeoutMs: m.timeoutMs });
      } finally {
        shard.shutdown();
        port.close();  // nothing else keeps this thread alive: it ends
      }
    })();
  }
});
