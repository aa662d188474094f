#!/usr/bin/env node
// QUIC benchmarks: zero-io's QUIC server against zero-io's TLS over TCP on the same machine (the
// anchor of PERF.md: QUIC stacks cost about 2x TCP+TLS per byte; target at most 1.5x), with and
// without UDP GSO, and with BBRv2 (quiche's pacer). The same zero-io client drives each.
//
//   node benchmarks/quic.mjs      upload (bulk) and download over one connection (MiB/s, server CPU
//                                 per MiB), handshakes/s
//
// Server pinned to CPU 0, client to CPU 1. Server CPU (utime+stime from /proc) over the client's
// measured window. BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3). No QUIC exists in
// released Node, so there is no Node baseline. aioquic's server takes the handshake run too
// (`aioquic`); Debian's ngtcp2 servers speak HTTP/3 only, which this client does not.
import { spawn } from 'node:child_process';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTicks as ticks, selfSignedDir, startNodePinned as start } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const dir = selfSignedDir('zio-quic-bench-');
const HZ = 100;

// aioquic's echo server (Python; the venv tooling/bootstrap.sh makes) as another QUIC server under
// the same client: handshakes only (it echoes rather than sinking or serving downloads).
const AIOQUIC = join(process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io'), 'venv-aioquic', 'bin', 'python');
function startAioquic(port) {
  const p = spawn('taskset', ['-c', '0', AIOQUIC, join(HERE, '..', 'packages', 'quic', 'test', 'peers', 'aioquic_echo_server.py'),
    '--port', String(port), '--cert', join(dir, 'cert.pem'), '--key', join(dir, 'key.pem'), '--alpn', 'bench'], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    p.stdout.on('data', (d) => { if (String(d).includes('LISTENING')) resolve(p); });
    p.on('exit', (c) => reject(new Error(`aioquic server exited ${c}`)));
  });
}

async function run(server, mode) {
  const port = 10000 + Math.floor(Math.random() * 20000);
  const srv = server === 'aioquic' ? await startAioquic(port)
    : await start(0, [join(HERE, 'servers', 'zero-io-quic-sink.mjs'), String(port), dir, server], 'ready');
  const client = spawn('taskset', ['-c', '1', process.execPath, join(HERE, 'servers', 'quic-client.mjs'), String(port), mode,
    server === 'tls' ? 'tls' : 'quic', String(DURATION)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let t0 = 0, t1 = 0, out = '', err = '';
  client.stderr.on('data', (d) => { err += d; if (String(d).includes('start')) { t0 = ticks(srv.pid); t1 = Date.now(); } });
  client.stdout.on('data', (d) => { out += d; });
  await new Promise((r) => client.on('exit', r));
  const cpu = (ticks(srv.pid) - t0) / HZ;
  const secs = (Date.now() - t1) / 1000;
  srv.kill('SIGKILL');
  if (!out) throw new Error(`client failed: ${err}`);
  const { rate } = JSON.parse(out);
  // bulk: server CPU ms per MiB; handshake: server CPU µs per handshake
  return { rate, cpu: mode !== 'handshake' ? (cpu * 1000) / ((rate * secs) / 1048576) : (cpu * 1e6) / (rate * secs) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`QUIC: zero-io QUIC vs zero-io TLS over TCP, ${DURATION} s x ${ROUNDS} rounds, median; server CPU 0, client CPU 1`);
for (const [mode, servers] of (process.env.BENCH_QUIC_MODES ? JSON.parse(process.env.BENCH_QUIC_MODES) : null) ?? [['bulk', ['tls', 'quic', 'quic-bbr2', 'quic-bbr2-nopace']], ['download', ['tls', 'quic', 'quic-nogso', 'quic-bbr2', 'quic-bbr2-nopace']], ['handshake', ['tls', 'quic', 'aioquic']]]) {
  const res = {};
  for (const s of servers) {
    const rs = [];
    for (let i = 0; i < ROUNDS; i++) rs.push(await run(s, mode));
    res[s] = { rate: median(rs.map((r) => r.rate)), cpu: median(rs.map((r) => r.cpu)) };
  }
  for (const s of servers) {
    const r = res[s];
    const rate = mode !== 'handshake' ? `${(r.rate / 1048576).toFixed(0)} MiB/s` : `${r.rate.toFixed(0)} hs/s`;
    const cpu = mode !== 'handshake' ? `${r.cpu.toFixed(2)} ms CPU/MiB` : `${r.cpu.toFixed(0)} µs CPU/hs`;
    console.log(`${mode.padEnd(10)} ${s.padEnd(11)} ${rate.padStart(12)}  ${cpu.padStart(18)}  vs tls: ${(r.rate / res.tls.rate).toFixed(2)}x rate, ${(r.cpu / res.tls.cpu).toFixed(2)}x CPU`);
  }
}
