#!/usr/bin/env node
// Cross-thread send throughput: worker threads hand 64-byte messages for one TCP connection to
// the shard's thread, either through an IoHandle (MPSC queue + eventfd wake) or through
// worker.postMessage (the main thread then calls io.streamWrite). A node:net client in a
// separate process drains the connection. Reports messages/s and the ratio, median of rounds.
//
//   node handle-throughput.mjs        (env: BENCH_WORKERS=1,4  BENCH_MSGS=200000  BENCH_ROUNDS=3)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';

const workersList = (process.env.BENCH_WORKERS ?? '1,4').split(',').map(Number);
const total = Number(process.env.BENCH_MSGS ?? 200000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const SIZE = 64;

const workerSrc = `
const { workerData, parentPort } = require('node:worker_threads');
const { mode, count, core, handleId, conn } = workerData;
const msg = new Uint8Array(${SIZE}).fill(120);
const nap = new Int32Array(new SharedArrayBuffer(4));
(async () => {
  if (mode === 'handle') {
    const { IoHandle } = await import(core);
    const h = IoHandle.from(handleId);
    for (let i = 0; i < count; i++) {
      for (;;) { try { h.streamWrite(conn, msg); break; } catch { Atomics.wait(nap, 0, 0, 1); } }
    }
  } else {
    for (let i = 0; i < count; i++) parentPort.postMessage(msg);
  }
  parentPort.postMessage('done');
})();`;

async function run(mode, nWorkers) {
  // Pool and write queue hold every message even if the sink falls behind (no loss to retry).
  const io = new Io({ maxWriteQueueBytes: 64 << 20, handleQueue: 8192, poolSlotCount: 16384 });
  const ep = io.tcpListen('127.0.0.1:0');
  let conn;
  const h = io.runSync((ev) => { if (ev.type === 'Connected') conn = ev.conn; });
  const sink = spawn(process.execPath, ['-e', `
    const s = require('node:net').connect(${io.localAddress(ep).port}, '127.0.0.1');
    let n = 0; s.on('data', (d) => { n += d.length; if (n >= ${total * SIZE}) { process.stdout.write('all'); s.destroy(); } });`]);
  while (conn === undefined) await new Promise((r) => setTimeout(r, 5));
  const per = Math.floor(total / nWorkers);
  const t0 = process.hrtime.bigint();
  const workers = Array.from({ length: nWorkers }, () => new Worker(workerSrc, {
    eval: true, workerData: { mode, count: per, core: new URL('./node_modules/@zero-io/core/dist/index.js', import.meta.url).href, handleId: io.handle().id, conn },
  }));
  for (const w of workers) {
    w.on('message', (m) => { if (m !== 'done') io.streamWrite(conn, m); });
  }
  await once(sink.stdout, 'data');
  const secs = Number(process.hrtime.bigint() - t0) / 1e9;
  await Promise.all(workers.map((w) => w.terminate()));
  h.stop();
  io.shutdown();
  sink.kill();
  return (per * nWorkers) / secs;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
console.log(`bench handle-throughput: ${total} messages of ${SIZE} B, rounds=${rounds}`);
console.log('| workers | IoHandle msgs/s | postMessage msgs/s | ratio |\n|---|---|---|---|');
for (const n of workersList) {
  const a = [];
  const b = [];
  for (let r = 0; r < rounds; r++) {
    a.push(await run('handle', n));
    b.push(await run('post', n));
  }
  const ma = median(a);
  const mb = median(b);
  console.log(`| ${n} | ${Math.round(ma).toLocaleString('en-US')} | ${Math.round(mb).toLocaleString('en-US')} | ${(ma / mb).toFixed(2)}x |`);
}
process.exit(0);
