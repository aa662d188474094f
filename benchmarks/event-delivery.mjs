#!/usr/bin/env node
// Event delivery across the JS boundary and wake-up latency, side by side.
//
// 1. drain: ns per event for io.nextEvent() over a full batch of records in the shared event ring
//    (records written by the engine's benchFillEvents; no kernel in the loop), with and without
//    reading the payload view `ev.data`. Target (PERF.md): <= 15 ns per event.
// 2. wake-up: time from a client's write() to the server's handler seeing the bytes, for zero-io
//    (io_uring completion -> eventfd -> uv_poll -> one JS entry) and node:net ('data' event), both
//    in this process, sequential ping-pongs, p50 / p99. Target: p50 <= 2 µs (the part that is
//    ours: kernel loopback delivery is in both numbers).
//
// Usage: node benchmarks/event-delivery.mjs   (BENCH_ROUNDS=3)
import net from 'node:net';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import { internalsOf } from '@zero-io/core/internal';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const median = (a) => { const s = [...a].sort((x, y) => x - y); return s[Math.floor(s.length / 2)]; };
const pct = (a, p) => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };

function drainBench(readData) {
  const io = new Io({ poolSlotCount: 1024, maxEventsPerPoll: 4096 });
  const { native, shard } = internalsOf(io);
  const n = native.benchFillEvents(shard, 4096);
  let sink = 0;
  const iters = 2000;
  for (let w = 0; w < 200; w++) { io._setBatchForBench(n); for (let ev = io.nextEvent(); ev; ev = io.nextEvent()) sink += ev.length; }
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iters; i++) {
    io._setBatchForBench(n);
    if (readData) { for (let ev = io.nextEvent(); ev; ev = io.nextEvent()) sink += ev.data.length; }
    else { for (let ev = io.nextEvent(); ev; ev = io.nextEvent()) sink += ev.length; }
  }
  const ns = Number(process.hrtime.bigint() - t0) / (iters * n);
  io.shutdown();
  if (sink === 42) console.log('');
  return ns;
}

/** Sequential ping-pongs over `c`; the server side records samples against `clock.sentAt`. */
async function pingPong(c, count, clock) {
  c.setNoDelay(true);
  await new Promise((r) => c.once('connect', r));
  let resolveOne;
  c.on('data', () => resolveOne());
  const msg = Buffer.alloc(32, 1);
  for (let i = 0; i < count; i++) {
    const p = new Promise((r) => { resolveOne = r; });
    clock.sentAt = process.hrtime.bigint();
    c.write(msg);
    await p;
  }
  c.destroy();
}

async function wakeZero(count) {
  const io = new Io({ poolSlotCount: 256 });
  const ep = io.tcpListen('127.0.0.1:0');
  const { port } = io.localAddress(ep);
  const clock = { sentAt: 0n };
  const samples = [];
  const h = io.runSync((ev) => {
    if (ev.type === 'StreamFrame') { samples.push(Number(process.hrtime.bigint() - clock.sentAt) / 1000); io.streamWrite(ev.conn, ev.data); }
  });
  await pingPong(net.connect(port, '127.0.0.1'), count, clock);
  await h.shutdown();
  io.shutdown();
  return samples.slice(100);
}

async function wakeNode(count) {
  const clock = { sentAt: 0n };
  const samples = [];
  const server = net.createServer((s) => { s.setNoDelay(true); s.on('data', (d) => { samples.push(Number(process.hrtime.bigint() - clock.sentAt) / 1000); s.write(d); }); });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  await pingPong(net.connect(server.address().port, '127.0.0.1'), count, clock);
  server.close();
  return samples.slice(100);
}

const drain = [], drainData = [], zp50 = [], np50 = [], zp99 = [], np99 = [];
for (let r = 0; r < ROUNDS; r++) {
  drain.push(drainBench(false));
  drainData.push(drainBench(true));
  const z = await wakeZero(3000);
  const n = await wakeNode(3000);
  zp50.push(pct(z, 0.5)); zp99.push(pct(z, 0.99)); np50.push(pct(n, 0.5)); np99.push(pct(n, 0.99));
  console.error(`round ${r + 1}/${ROUNDS}: drain ${drain.at(-1).toFixed(1)} ns/event, +data ${drainData.at(-1).toFixed(1)} ns; wake p50 zero-io ${zp50.at(-1).toFixed(1)} µs, node:net ${np50.at(-1).toFixed(1)} µs`);
}
console.log('| measure | zero-io | node:net | ratio |');
console.log('|---|---|---|---|');
console.log(`| event drain, ns/event (nextEvent) | ${median(drain).toFixed(1)} | – | – |`);
console.log(`| event drain + ev.data view, ns/event | ${median(drainData).toFixed(1)} | – | – |`);
console.log(`| wake-up to handler, p50 µs | ${median(zp50).toFixed(1)} | ${median(np50).toFixed(1)} | ${(median(zp50) / median(np50)).toFixed(2)}× |`);
console.log(`| wake-up to handler, p99 µs | ${median(zp99).toFixed(1)} | ${median(np99).toFixed(1)} | ${(median(zp99) / median(np99)).toFixed(2)}× |`);
