#!/usr/bin/env node
// TLS benchmarks: zero-io's TLS server vs node:tls, the same node:tls client against both.
//
//   node benchmarks/tls.mjs     handshakes/s (TLS 1.3, ECDSA P-256), bulk 16 KiB writes, echo 1 KiB
//
// Server pinned to CPU 0, client to CPU 1. Server CPU (utime+stime from /proc) is sampled over
// the client's measured window. BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3).
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTicks as ticks, selfSignedDir, startNodePinned as start } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const dir = selfSignedDir('zio-tls-bench-');
const HZ = 100;

async function run(server, mode, conns, size) {
  const port = 10000 + Math.floor(Math.random() * 20000);  // below the ephemeral range
  const srv = await start(0, [join(HERE, 'servers', server), String(port), dir, mode === 'bulk' ? 'bulk' : 'echo'], 'ready');
  const client = spawn('taskset', ['-c', '1', process.execPath, join(HERE, 'servers', 'tls-client.mjs'), String(port), mode, String(conns), String(size), String(DURATION)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let t0 = 0;
  let out = '';
  client.stderr.on('data', (d) => { if (String(d).includes('start')) t0 = ticks(srv.pid); });
  client.stdout.on('data', (d) => { out += d; });
  await new Promise((r) => client.on('exit', r));
  const cpu = (ticks(srv.pid) - t0) / HZ;
  srv.kill('SIGKILL');
  const { rate } = JSON.parse(out);
  return { rate, cpuPerOp: (cpu / (rate * DURATION)) * 1e6 };  // µs of server CPU per op (per byte*1e6 for bulk)
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const scenarios = [
  ['handshakes/s (TLS 1.3, P-256)', 'handshake', 8, 0, 'hs/s'],
  ['bulk 16 KiB writes', 'bulk', 4, 0, 'MiB/s'],
  ['echo 1 KiB', 'echo', 32, 1024, 'msg/s'],
];
console.log(`TLS: zero-io vs node:tls, ${DURATION} s x ${ROUNDS} rounds, median; server CPU 0, client CPU 1`);
for (const [name, mode, conns, size, unit] of scenarios) {
  const res = {};
  for (const server of ['zero-io-tls.mjs', 'node-tls.mjs']) {
    const rs = [];
    for (let i = 0; i < ROUNDS; i++) rs.push(await run(server, mode, conns, size));
    res[server] = { rate: median(rs.map((r) => r.rate)), cpu: median(rs.map((r) => r.cpuPerOp)) };
  }
  const z = res['zero-io-tls.mjs'];
  const n = res['node-tls.mjs'];
  const fmt = (r) => unit === 'MiB/s' ? (r / 1048576).toFixed(0) : r.toFixed(0);
  console.log(`${name.padEnd(32)} zero-io ${fmt(z.rate)} ${unit}  node:tls ${fmt(n.rate)} ${unit}  ` +
    `throughput ${(z.rate / n.rate).toFixed(2)}x  server CPU/op ${(z.cpu / n.cpu).toFixed(2)}x`);
}
