// A shard's worker dies on its own (process.exit in the worker, or an uncaught error): the
// cluster emits 'shardExit' with the shard, the exit code and the error, and the other shard
// keeps serving (ClusterHandle's TSDoc: "the others keep serving").
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { IoCluster, runPerCore, type ClusterHandle, type ShardExit } from '@zero-io/core';
// @ts-expect-error: plain JS fixture module (shared with the child-process main)
import { connectTo as connectToJs, greet as greetJs } from './fixtures/greet.mjs';

const greet = greetJs as (port: number, timeoutMs?: number) => Promise<{ s: net.Socket; shard: number }>;
const connectTo = connectToJs as (port: number, shard: number) => Promise<net.Socket>;
const handler = new URL('./fixtures/cluster-mortal.mjs', import.meta.url);

async function echoOnce(s: net.Socket, text: string): Promise<string> {
  const back = new Promise<string>((res) => s.once('data', (d) => res(String(d))));
  s.write(text);
  return back;
}

/** LISTEN sockets on 127.0.0.1:port (/proc/net/tcp): one per live shard. */
function listening(port: number): number {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  return readFileSync('/proc/net/tcp', 'utf8').split('\n').map((l) => l.trim().split(/\s+/))
    .filter((f) => f[1] === local && f[3] === '0A').length;
}

async function start(): Promise<{ running: ClusterHandle; port: number; exits: ShardExit[]; listenersAtExit: number[] }> {
  const cluster = new IoCluster({ shardCount: 2, cpuAffinity: false });
  const ep = cluster.tcpListen('127.0.0.1:0');
  const running = await runPerCore(cluster, handler);
  const exits: ShardExit[] = [];
  const listenersAtExit: number[] = [];
  // Read when the event is emitted: the dead shard's member of the group must be gone by then.
  running.on('shardExit', (e: ShardExit) => { exits.push(e); listenersAtExit.push(listening(ep.address.port)); });
  return { running, port: ep.address.port, exits, listenersAtExit };
}

async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("shardExit on a worker's death", () => {
  it.each(['timer', 'handler'])('a shard that exits (code 7, process.exit from its %s) is reported once; the other shard serves every new connection', (where) => {
    // In a child process: if the death takes the whole process down, the test fails with its output.
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/cluster-exit-main.mjs', import.meta.url)), where],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/FATAL ERROR/);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
    expect(out.exits).toEqual([{ shardId: 0, exitCode: 7, error: null }]);
    expect(out.survivorEcho).toBe('after the death');
    // New connections all reach the live shard (none is left in a dead shard's accept queue).
    expect(out.greeted).toEqual(Array(20).fill(1));
    expect(out.stats).toEqual([1]);
  });

  it('a shard whose worker throws an uncaught error is reported with that error', async () => {
    const { running, port, exits, listenersAtExit } = await start();
    try {
      expect(listening(port)).toBe(2);
      const victim = await connectTo(port, 1);
      victim.on('error', () => {});
      victim.write('throw');
      await waitFor(() => exits.length > 0, 10_000, 'shardExit');
      expect(exits.length).toBe(1);
      expect(exits[0].shardId).toBe(1);
      expect(exits[0].exitCode).toBe(1);
      expect(exits[0].error).toBeInstanceOf(Error);
      expect(exits[0].error!.message).toBe('shard 1 dies on request');
      // When shardExit is emitted, the dead shard no longer holds a listening socket.
      expect(listenersAtExit).toEqual([1]);
      // From shardExit on, new connections all reach the live shard: none is refused or left
      // in the dead shard's accept queue.
      const greeted: (number | string)[] = [];
      for (let i = 0; i < 20; i++) {
        const g = await greet(port).catch((e: Error) => e.message);
        if (typeof g === 'string') greeted.push(g);
        else { greeted.push(g.shard); g.s.destroy(); }
      }
      expect(greeted).toEqual(Array(20).fill(0));
      victim.destroy();
    } finally {
      await running.shutdown({ timeoutMs: 1000 });
    }
    expect(exits.length).toBe(1);
  });

  it('a busy shard thread ended by Worker.terminate() (the forced shutdown) ends that thread only', () => {
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./fixtures/terminate-main.mjs', import.meta.url))],
      { encoding: 'utf8', timeout: 60_000 });
    expect(r.stderr).not.toMatch(/FATAL ERROR/);
    expect(r.signal).toBeNull();
    expect(r.status).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([0, 1, 2, 3, 4].map((i) => `round ${i} terminated 1`));
  });
});
