import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { entries, randomPayload, startEcho, echoRoundTrip } from './helpers.js';

describe('context-aware addon: a shard per worker thread', () => {
  it('runs echo shards in two workers and the main thread at once, and survives worker termination', async () => {
    const main = startEcho({ poolSlotCount: 256 });
    const code = `
      const { parentPort } = require('node:worker_threads');
      (async () => {
        const { Io } = await import(${JSON.stringify(entries.core)});
        await import(${JSON.stringify(entries.tcp)});
        const io = new Io({ poolSlotCount: 256 });
        const ep = io.tcpListen('127.0.0.1:0');
        io.runSync((ev) => { if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data); });
        parentPort.postMessage(io.localAddress(ep).port);
      })();
    `;
    const workers = [new Worker(code, { eval: true }), new Worker(code, { eval: true })];
    const ports = await Promise.all(workers.map((w) => new Promise<number>((r, j) => { w.once('message', r); w.once('error', j); })));
    for (const port of [...ports, main.port]) {
      const p = randomPayload(100_000, port);
      expect((await echoRoundTrip(port, p)).equals(p)).toBe(true);
    }
    // Terminating a worker with a live shard and an open connection must not crash the process.
    const open = net.connect(ports[0], '127.0.0.1');
    await new Promise((r) => open.once('connect', r));
    open.write('x');
    await new Promise((r) => open.once('data', r)); // accepted and served by the worker
    const closed = new Promise((r) => open.once('close', r));
    await Promise.all(workers.map((w) => w.terminate()));
    await closed; // the worker's shard released its sockets: the peer sees the close
    const p = randomPayload(10_000, 1);
    expect((await echoRoundTrip(main.port, p)).equals(p)).toBe(true);
    await main.close();
  });
});
