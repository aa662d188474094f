#!/usr/bin/env node
// UDP receive of GSO trains: what GRO saves the receiver. A sender process (pinned to CPU 1)
// sends 1000-byte datagrams in GSO trains of 32 (zero-io udpSendSegments) for BENCH_DURATION
// seconds; the receiver (pinned to CPU 0) is zero-io with `gro: true`, zero-io without GRO, or
// node:dgram. Each receiver counts datagrams (a GRO train counts its segments) and its own CPU
// time. Reports datagrams/s and receiver CPU µs per datagram, median of rounds, and ratios.
//
//   node udp-gro.mjs      (env: BENCH_DURATION=3  BENCH_ROUNDS=3)
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';

const duration = Number(process.env.BENCH_DURATION ?? 3);
const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
const SEG = 1000, TRAIN = 32;
const self = fileURLToPath(import.meta.url);

if (process.argv[2] === 'receiver') {
  const mode = process.argv[3];
  let count = 0;
  let start = null;
  const report = () => {
    const cpu = process.cpuUsage(start.cpu);
    const secs = Number(process.hrtime.bigint() - start.t) / 1e9;
    process.stdout.write(JSON.stringify({ count, secs, cpuUs: cpu.user + cpu.system }) + '\n');
    process.exit(0);
  };
  process.stdin.on('data', (d) => {
    if (String(d).includes('start')) { count = 0; start = { cpu: process.cpuUsage(), t: process.hrtime.bigint() }; }
    if (String(d).includes('stop')) report();
  });
  if (mode === 'node:dgram') {
    const dgram = await import('node:dgram');
    const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 8 << 20 });
    s.on('message', () => { count++; });
    s.bind(0, '127.0.0.1', () => console.log(`port ${s.address().port}`));
  } else {
    const { Io } = await import('@zero-io/core');
    const io = new Io({ poolSlotCount: 8192 });
    const ep = io.udpBindWith({ host: '127.0.0.1', port: 0, gro: mode === 'zero-io-gro', recvBufferSize: 8 << 20 });
    io.runSync((ev) => {
      if (ev.type !== 'UdpRecv') return;
      count += ev.segmentSize ? Math.ceil(ev.length / ev.segmentSize) : 1;
    });
    console.log(`port ${io.localAddress(ep).port}`);
  }
} else if (process.argv[2] === 'sender') {
  const port = Number(process.argv[3]);
  const { Io } = await import('@zero-io/core');
  const io = new Io({ poolSlotCount: 8192 });
  const ep = io.udpBind('127.0.0.1:0');
  const to = { address: '127.0.0.1', port };
  const train = new Uint8Array(SEG * TRAIN).fill(7);
  const end = Date.now() + (duration + 1) * 1000;
  while (Date.now() < end) {
    for (let k = 0; k < 16; k++) {
      try { io.udpSendSegments(ep, to, train, SEG); } catch { break; }  // queue full: let it drain
    }
    io.poll(0);
  }
  io.shutdown();
} else {
  const pin = (cpu, args) => spawn('taskset', ['-c', String(cpu), process.execPath, self, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const results = {};
  for (let round = 1; round <= rounds; round++) {
    for (const mode of ['zero-io-gro', 'zero-io', 'node:dgram']) {
      const rx = pin(0, ['receiver', mode]);
      let out = '';
      rx.stdout.on('data', (d) => { out += d; });
      while (!/port (\d+)/.test(out)) await once(rx.stdout, 'data');
      const port = /port (\d+)/.exec(out)[1];
      const tx = pin(1, ['sender', port]);
      await new Promise((r) => setTimeout(r, 1000));  // warm-up
      rx.stdin.write('start\n');
      await new Promise((r) => setTimeout(r, duration * 1000));
      rx.stdin.write('stop\n');
      await once(rx, 'exit');
      await once(tx, 'exit');
      const r = JSON.parse(out.trim().split('\n').pop());
      const row = { dps: r.count / r.secs, cpuPerDgram: r.count ? r.cpuUs / r.count : null };
      (results[mode] ??= []).push(row);
      console.log(`round ${round} ${mode}: ${Math.round(row.dps).toLocaleString('en-US')} datagrams/s, ${row.cpuPerDgram?.toFixed(3)} µs CPU per datagram`);
    }
  }
  const med = (xs) => { const v = [...xs].sort((a, b) => a - b); return v[v.length >> 1]; };
  const m = Object.fromEntries(Object.entries(results).map(([k, v]) => [k, { dps: med(v.map((x) => x.dps)), cpu: med(v.map((x) => x.cpuPerDgram)) }]));
  console.log('\n| receiver | datagrams/s | CPU µs / datagram |\n|---|---|---|');
  for (const [k, v] of Object.entries(m)) console.log(`| ${k} | ${Math.round(v.dps).toLocaleString('en-US')} | ${v.cpu.toFixed(3)} |`);
  for (const other of ['zero-io', 'node:dgram']) {
    console.log(`zero-io-gro / ${other}: throughput ${(m['zero-io-gro'].dps / m[other].dps).toFixed(2)}x, CPU per datagram ${(m['zero-io-gro'].cpu / m[other].cpu).toFixed(2)}x`);
  }
}
