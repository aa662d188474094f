#!/usr/bin/env node
// QUIC benchmarks: zero-io's QUIC server against zero-io's TLS over TCP on the same machine (the
// anchor of PERF.md: QUIC stacks cost about 2x TCP+TLS per byte; target at most 1.5x), with and
// without UDP GSO, and with BBRv2 (quiche's pacer). The same zero-io client drives each.
//
//   node benchmarks/quic.mjs      upload (bulk) and download over one connection (MiB/s, server CPU
//                                 per MiB), handshakes/s; the download against other QUIC servers
//
// Server pinned to CPU 0, client to CPU 1. Server CPU (utime+stime from /proc) over the client's
// measured window. BENCH_DURATION (s, default 5), BENCH_ROUNDS (default 3). No QUIC exists in
// released Node, so there is no Node baseline. aioquic's echo server takes the handshake run too
// (`aioquic`). The download also runs against Debian's ngtcp2 server (`ngtcp2`: gtlsserver, ngtcp2 +
// nghttp3 + GnuTLS) and an aioquic HTTP/3 server (`aioquic-h3`): both speak HTTP/3 only, so the
// client fetches GET /20971520 over and over (h3download: 2 at a time) and counts the body bytes;
// the rows compare with zero-io's `quic` (the same download without HTTP/3 framing).
// BENCH_QUIC_MODES (JSON [[mode, [server...]]...]) picks the runs; the first server of each is the
// anchor of the ratios.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuTicks as ticks, selfSignedDir, startNodePinned as start } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const DURATION = Number(process.env.BENCH_DURATION ?? 5);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const dir = selfSignedDir('zio-quic-bench-');
const HZ = 100;

// aioquic (Python; the venv tooling/bootstrap.sh makes) as another QUIC server under the same
// client: its echo server for handshakes, packages/quic/test/peers/aioquic_h3_server.py for downloads.
const AIOQUIC = join(process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io'), 'venv-aioquic', 'bin', 'python');
const PEERS = join(HERE, '..', 'packages', 'quic', 'test', 'peers');
const pem = [join(dir, 'cert.pem'), join(dir, 'key.pem')];
const H3 = new Set(['ngtcp2', 'aioquic-h3']);  // HTTP/3 servers: the client's h3download mode

// A server pinned to CPU 0, resolved once `isReady(stdout so far)` says so; rejects with its
// stderr when it exits first or is not ready within 10 s.
function startPinned(name, argv, isReady) {
  const p = spawn('taskset', ['-c', '0', ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d) => { out += d; });
  p.stderr.on('data', (d) => { err += d; });
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => { if (isReady(out)) { clearInterval(poll); clearTimeout(limit); resolve(p); } }, 20);
    const limit = setTimeout(() => { clearInterval(poll); p.kill('SIGKILL'); reject(new Error(`${name} not ready after 10 s: ${err}`)); }, 10000);
    p.on('close', (c, sig) => { clearInterval(poll); clearTimeout(limit); reject(new Error(`${name} exited ${c ?? sig}: ${err}`)); });
  });
}
// aioquic's echo server (handshakes) or its HTTP/3 download server: "LISTENING" on stdout.
const startAioquic = (port, h3) => startPinned(h3 ? 'aioquic-h3' : 'aioquic', [AIOQUIC, join(PEERS, h3 ? 'aioquic_h3_server.py' : 'aioquic_echo_server.py'),
  '--port', String(port), '--cert', pem[0], '--key', pem[1], ...(h3 ? [] : ['--alpn', 'bench'])], (out) => out.includes('LISTENING'));
// ngtcp2's gtlsserver says nothing under -q: ready once its UDP port is bound (/proc/net/udp).
// GET /<N> (N <= --max-dyn-length) is its generated N-byte body. Our receive windows (it gets
// none of our data; the client's windows pace the download), cubic, zero-io's 1350-byte packets.
const udpBound = (port) => new RegExp(`^ *\\d+: [0-9A-F]+:${port.toString(16).toUpperCase().padStart(4, '0')} `, 'm').test(readFileSync('/proc/net/udp', 'utf8'));
const startNgtcp2 = (port) => startPinned('ngtcp2 (/usr/sbin/gtlsserver)', ['/usr/sbin/gtlsserver', '-q', '-d', dir, '--cc=cubic',
  '--max-dyn-length=20M', '--max-data=64M', '--max-stream-data-bidi-remote=32M', '--max-window=64M', '--max-stream-window=32M',
  '--max-udp-payload-size=1350', '--no-pmtud', '127.0.0.1', String(port), pem[1], pem[0]], () => udpBound(port));

async function run(server, mode) {
  if (H3.has(server) && mode !== 'download') throw new Error(`${server} serves downloads only (HTTP/3 GET), not ${mode}`);
  const port = 10000 + Math.floor(Math.random() * 20000);
  const srv = server === 'aioquic' || server === 'aioquic-h3' ? await startAioquic(port, server === 'aioquic-h3')
    : server === 'ngtcp2' ? await startNgtcp2(port)
    : await start(0, [join(HERE, 'servers', 'zero-io-quic-sink.mjs'), String(port), dir, server], 'ready');
  const client = spawn('taskset', ['-c', '1', process.execPath, join(HERE, 'servers', 'quic-client.mjs'), String(port),
    H3.has(server) ? `h3${mode}` : mode, server === 'tls' ? 'tls' : 'quic', String(DURATION)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let t0 = 0, t1 = 0, out = '', err = '';
  client.stderr.on('data', (d) => { err += d; if (String(d).includes('start')) { t0 = ticks(srv.pid); t1 = Date.now(); } });
  client.stdout.on('data', (d) => { out += d; });
  const limit = setTimeout(() => client.kill('SIGKILL'), (DURATION + 20) * 1000);  // a stuck handshake
  await new Promise((r) => client.on('exit', r));
  clearTimeout(limit);
  const cpu = (ticks(srv.pid) - t0) / HZ;
  const secs = (Date.now() - t1) / 1000;
  srv.kill('SIGKILL');
  if (!out || !t1) throw new Error(`client against ${server} failed: ${err}`);
  const { rate } = JSON.parse(out);
  // bulk: server CPU ms per MiB; handshake: server CPU µs per handshake
  return { rate, cpu: mode !== 'handshake' ? (cpu * 1000) / ((rate * secs) / 1048576) : (cpu * 1e6) / (rate * secs) };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`QUIC: zero-io QUIC vs zero-io TLS over TCP, ${DURATION} s x ${ROUNDS} rounds, median; server CPU 0, client CPU 1`);
for (const [mode, servers] of (process.env.BENCH_QUIC_MODES ? JSON.parse(process.env.BENCH_QUIC_MODES) : null) ?? [['bulk', ['tls', 'quic', 'quic-bbr2', 'quic-bbr2-nopace']], ['download', ['tls', 'quic', 'quic-nogso', 'quic-bbr2', 'quic-bbr2-nopace']], ['download', ['quic', 'ngtcp2', 'aioquic-h3']], ['handshake', ['tls', 'quic', 'aioquic']]]) {
  const res = {};
  for (const s of servers) {
    const rs = [];
    for (let i = 0; i < ROUNDS; i++) rs.push(await run(s, mode));
    res[s] = { rate: median(rs.map((r) => r.rate)), cpu: median(rs.map((r) => r.cpu)) };
  }
  const base = res[servers[0]];  // tls, or quic against the other QUIC servers
  for (const s of servers) {
    const r = res[s];
    const rate = mode !== 'handshake' ? `${(r.rate / 1048576).toFixed(0)} MiB/s` : `${r.rate.toFixed(0)} hs/s`;
    const cpu = mode !== 'handshake' ? `${r.cpu.toFixed(2)} ms CPU/MiB` : `${r.cpu.toFixed(0)} µs CPU/hs`;
    console.log(`${mode.padEnd(10)} ${s.padEnd(11)} ${rate.padStart(12)}  ${cpu.padStart(18)}  vs ${servers[0]}: ${(r.rate / base.rate).toFixed(2)}x rate, ${(r.cpu / base.cpu).toFixed(2)}x CPU`);
  }
}
