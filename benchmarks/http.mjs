#!/usr/bin/env node
// HTTP benchmark: zero-io vs node:http vs fastify vs Bun.serve vs nginx over HTTP/1.1 (wrk), and
// zero-io vs node:http2 vs nginx over cleartext HTTP/2 (h2load), side by side in one run.
//
//   node run.mjs http        (or node http.mjs; `pnpm bench:http` inside benchmarks/)
//
// Scenarios (wrk -t1 -c64, keep-alive; -p16: 16 requests pipelined per write, http/pipeline.lua):
//   hello, hello-p16   GET / -> 'Hello, World!' (zero-io: one ZeroResponse reused)
//   json, json-p16     GET / -> a ~1 KiB JSON object built and serialised per request
//   json-async         the JSON again; zero-io answers it from runAsync (an async handler per request,
//                      the request detached), the others as in json (their handlers are async anyway)
//   upload             POST of 1 MiB per request, read as a stream and counted, answered with the
//                      count (zero-io: runAsync + req.bodyStream(); node:http: req's data events;
//                      fastify: a stream content-type parser; Bun: req.body's reader)
//   json-gzip          the same JSON with Accept-Encoding: gzip, answered gzip'd at level 5
//                      (zero-io: the engine's compression; node:http and Bun: zlib / Bun.gzipSync
//                      level 5 in the handler; nginx: a fixed JSON with `gzip_comp_level 5`)
// and over h2c with prior knowledge (h2load -c64 -m16 -t1: 16 concurrent streams per connection):
//   h2c-hello, h2c-json  the same answers; zero-io's HTTP listener switches a connection that opens
//                        with the HTTP/2 preface to HTTP/2, so it is the same server process
// nginx (`return 200`) has the hello scenarios and json-gzip only; fastify has no json-gzip (it would
// need @fastify/compress); node:http2 the h2c ones only.
//
// Environment:
//   BENCH_DURATION   measured seconds per run (default 5; whole seconds, wrk's -d)
//   BENCH_ROUNDS     rounds per scenario (default 3)
//   BENCH_SERVERS    comma-separated subset of zero-io,node:http,fastify,bun,nginx,node:http2
//   BENCH_SCENARIOS  comma-separated subset of hello,hello-p16,json,json-p16,json-async,upload,json-gzip,h2c-hello,h2c-json
//   BENCH_HEAP       0 skips the JS-heap pass (zero-io, node:http and node:http2)
//   BUN_BIN          path to a bun binary (default: the `bun` npm dependency, then PATH)
//
// Every run gets a fresh server pinned to CPU 0, started on port 0 (the port is parsed from its
// "listening <port>" line; nginx cannot bind port 0, so it gets a free port that is then read
// back from its listening socket in /proc). One response is checked, wrk (h2load) warms up for
// 1 s, then the measured one runs on CPU 1. The server's CPU time (utime+stime of it and its
// children, /proc/<pid>/stat) is sampled right before the measured run starts and after it exits:
// the server is idle outside that window, so the difference is what its requests cost.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isDeepStrictEqual } from 'node:util';
import zlib from 'node:zlib';
import { makePayload } from './servers/http-payload.mjs';
import { Pinned, fmt, freePort, median, sleep, stamp, table, tail } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const RESULTS = join(HERE, 'results');
const SERVER_CPU = 0;
const LOADGEN_CPU = 1;
const WARMUP_S = 1;
const CONNS = 64;
const H2_STREAMS = 16; // h2load -m: concurrent streams per connection
const UPLOAD_BYTES = 1 << 20; // the upload scenario's request body
const START_TIMEOUT_MS = 15000;
// CPU 0's time over a run's window splits into the server's utime+stime, idle, steal (taken by
// this VM's hypervisor; no process is charged for it) and other (any other process that ran there,
// e.g. an unpinned build). The server was the bottleneck when its core was idle less than
// IDLE_MAX_PCT: it never waited for wrk. OTHER_MAX_PCT or more of other: the core was shared, so
// req/s understates the server (its CPU µs/req still holds).
const IDLE_MAX_PCT = 10;
const OTHER_MAX_PCT = 10;
// As in the heap suite of run.mjs: rarer scavenges, and gc() for a clean start of the window.
const HEAP_NODE_FLAGS = ['--max-semi-space-size=64', '--expose-gc'];

const SCENARIOS = [
  { name: 'hello', mode: 'hello', depth: 1 },
  { name: 'hello-p16', mode: 'hello', depth: 16 },
  { name: 'json', mode: 'json', depth: 1 },
  { name: 'json-p16', mode: 'json', depth: 16 },
  { name: 'json-async', mode: 'jsonasync', depth: 1 },
  { name: 'upload', mode: 'upload', depth: 1, body: UPLOAD_BYTES },
  { name: 'json-gzip', mode: 'jsongz', depth: 1, encoding: 'gzip' },
  { name: 'h2c-hello', mode: 'hello', h2: true, streams: H2_STREAMS },
  { name: 'h2c-json', mode: 'json', h2: true, streams: H2_STREAMS },
];
const loadgenOf = (sc) => (sc.h2 ? 'h2load' : 'wrk');

// ---------------------------------------------------------------- children --

const pinned = new Pinned(HERE);
let CLK_TCK = 100;
const killGroup = (child, signal) => pinned.killGroup(child, signal);
const killAll = () => pinned.killAll();
/** Spawns argv pinned to one CPU with the open-files limit raised (common.mjs Pinned). */
const spawnPinned = (cpu, argv, env = {}) => pinned.spawn(cpu, argv, env);
const stopChild = (child, signal = 'SIGTERM', graceMs = 3000) => pinned.stop(child, signal, graceMs);

// ---------------------------------------------------------------- /proc --

function statFields(pid) {
  const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return s.slice(s.lastIndexOf(')') + 2).split(' '); // [0] is field 3
}

/** pid and all its descendants (nginx: the master and its worker). */
function processTree(pid) {
  const kids = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const ppid = Number(statFields(d)[4 - 3]);
      if (!kids.has(ppid)) kids.set(ppid, []);
      kids.get(ppid).push(Number(d));
    } catch {
      /* exited meanwhile */
    }
  }
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...(kids.get(out[i]) ?? []));
  return out;
}

/** utime + stime (fields 14 and 15, all threads) summed over the process tree, in clock ticks. */
function cpuTicks(pid) {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      const f = statFields(p);
      sum += Number(f[14 - 3]) + Number(f[15 - 3]);
    } catch {
      /* exited meanwhile */
    }
  }
  return sum;
}

/** Idle (idle + iowait), steal and total jiffies of one CPU, from its line in /proc/stat. */
function coreTicks(cpu) {
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith(`cpu${cpu} `));
  const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
  return { idle: v[3] + v[4], steal: v[7], total: v.reduce((a, b) => a + b, 0) };
}

function rssKiB(pid) {
  let sum = 0;
  for (const p of processTree(pid)) {
    try {
      sum += Number(/^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${p}/status`, 'utf8'))?.[1] ?? 0);
    } catch {
      /* exited meanwhile */
    }
  }
  return sum;
}

/** TCP ports on which pid holds a listening socket (its fds matched against /proc/net/tcp*). */
function listeningPorts(pid) {
  const inodes = new Set();
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) inodes.add(m[1]);
    }
  } catch {
    return [];
  }
  const ports = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines = [];
    try {
      lines = readFileSync(file, 'utf8').trim().split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const c = line.trim().split(/\s+/); // sl local rem st ... inode at [9]
      if (c[3] === '0A' && inodes.has(c[9])) ports.push(parseInt(c[1].split(':').pop(), 16));
    }
  }
  return ports;
}


// ---------------------------------------------------------------- formatting --





// ---------------------------------------------------------------- servers --

function findBun() {
  if (process.env.BUN_BIN) return existsSync(process.env.BUN_BIN) ? process.env.BUN_BIN : null;
  const local = join(HERE, 'node_modules', '.bin', 'bun');
  if (existsSync(local)) return local;
  const r = spawnSync('bash', ['-c', 'command -v bun'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

/** { version } from a tool's version output, or { problem } when it cannot run. */
function versionOf(argv, re = /\S.*/, anyStatus = false) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 10000 });
  if (r.error) return { problem: `${argv[0]}: ${r.error.code === 'ENOENT' ? 'not found' : r.error.message}` };
  const m = re.exec(`${r.stdout}\n${r.stderr}`);
  return (r.status === 0 || anyStatus) && m ? { version: m[0].trim() } : { problem: `${argv.join(' ')} failed: ${(r.stderr || r.stdout).trim()}` };
}

function serverDefs() {
  const node = (file) => (mode, nodeFlags = []) => [process.execPath, ...nodeFlags, `servers/${file}`, '0', mode];
  const both = ['hello', 'json'];
  const all = ['hello', 'json', 'jsonasync', 'upload', 'jsongz'];
  const bun = findBun();
  const bunV = bun ? versionOf([bun, '--version']) : { problem: 'no bun binary (install the `bun` dependency with pnpm, or set BUN_BIN)' };
  const nginxV = versionOf(['nginx', '-v'], /nginx\/\S+/);
  let fastifyV;
  try {
    fastifyV = { version: 'fastify ' + createRequire(join(HERE, 'package.json'))('fastify/package.json').version };
  } catch {
    fastifyV = { problem: 'fastify is not installed (pnpm install)' };
  }
  // modes: served over HTTP/1.1 (wrk); h2Modes: over h2c (h2load).
  return [
    { name: 'zero-io', modes: all, h2Modes: both, argv: node('zero-io-http.mjs'), heap: true, version: null },
    // The same server with 16 KiB pool slots (receive buffers), for the upload only.
    { name: 'zero-io 16k', modes: ['upload'], argv: (mode, flags) => node('zero-io-http.mjs')(`${mode}:16k`, flags), version: null },
    { name: 'node:http', modes: all, argv: node('node-http.mjs'), heap: true, version: process.version },
    { name: 'fastify', modes: [...both, 'jsonasync', 'upload'], argv: node('fastify-http.mjs'), ...fastifyV },
    { name: 'bun', modes: all, argv: (mode) => [bun, 'servers/bun-http.ts', '0', mode], ...(bunV.version ? { version: 'bun ' + bunV.version } : bunV) },
    { name: 'nginx', modes: ['hello', 'jsongz'], h2Modes: ['hello'], start: startNginx, ...nginxV },
    { name: 'node:http2', modes: [], h2Modes: both, argv: node('node-http2.mjs'), heap: true, version: process.version },
  ];
}

const serves = (def, sc) => (sc.h2 ? def.h2Modes ?? [] : def.modes).includes(sc.mode);

/** Starts a server; resolves { child, port } once it listens. Throws with its stderr on failure. */
async function startServer(def, mode, { env = {}, nodeFlags = [], h2 = false } = {}) {
  if (def.start) return def.start({ h2, mode });
  const child = spawnPinned(SERVER_CPU, def.argv(mode, nodeFlags), env);
  const rl = createInterface({ input: child.stdout });
  const port = await new Promise((res) => {
    const timer = setTimeout(() => res(`timed out after ${START_TIMEOUT_MS / 1000} s`), START_TIMEOUT_MS);
    rl.on('line', (line) => {
      const m = /^listening (\d+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        res(Number(m[1]));
      }
    });
    child.exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      res(error ? error.message : `exited (${signal ?? 'code ' + code}) before listening`);
    });
  });
  if (typeof port !== 'number' || !(port > 0)) {
    await stopChild(child, 'SIGKILL');
    const err = new Error(`${def.name} server failed to start: ${port}`);
    err.detail = tail(child.stderrText());
    throw err;
  }
  child.stdout.resume();
  return { child, port };
}

/**
 * nginx `return 200` with 1 worker, as the current user, from a temp prefix. nginx rejects
 * `listen ...:0`, so it gets a port that was free a moment ago; the port used is the one read
 * back from nginx's own listening socket. h2: `listen ... http2` without ssl, on which nginx
 * (1.22) speaks only HTTP/2 with prior knowledge (h2c), as h2load does.
 */
async function startNginx({ h2 = false, mode = 'hello' } = {}) {
  const dir = mkdtempSync(join(os.tmpdir(), 'zio-bench-nginx-'));
  const want = await freePort();
  const user = process.getuid?.() === 0 ? `user ${os.userInfo().username};\n` : ''; // else workers would be nobody
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'].map((t) => `  ${t}_temp_path ${dir}/${t};`).join('\n');
  writeFileSync(
    join(dir, 'nginx.conf'),
    `${user}worker_processes 1;
error_log stderr warn;
events { worker_connections 4096; }
http {
  access_log off;
  # nginx closes a keep-alive connection after 1000 requests by default; the other servers never do.
  # Since 1.19.7 this also bounds HTTP/2 connections (h2load does not reconnect).
  keepalive_requests 100000000;
  # Debian's built-in temp paths are under /var/lib/nginx.
${temp}
  server {
    listen 127.0.0.1:${want}${h2 ? ' http2' : ''};
    location / {
${mode === 'jsongz'
    ? `      default_type application/json;
      gzip on; gzip_types application/json; gzip_comp_level 5; gzip_min_length 128; gzip_vary on;
      return 200 '${JSON.stringify(makePayload())}';`
    : `      default_type 'text/plain; charset=utf-8';
      return 200 'Hello, World!';`}
    }
  }
}
`,
  );
  const child = spawnPinned(SERVER_CPU, ['nginx', '-p', dir, '-c', join(dir, 'nginx.conf'), '-e', 'stderr', '-g', `daemon off; pid ${dir}/nginx.pid;`]);
  child.exited.then(() => rmSync(dir, { recursive: true, force: true }));
  const t0 = Date.now();
  let ports = [];
  while (!(ports = listeningPorts(child.pid)).length && child.exitCode === null && Date.now() - t0 < START_TIMEOUT_MS) await sleep(50);
  if (!ports.length) {
    const why = child.exitCode !== null ? `exited (code ${child.exitCode}) before listening` : 'not listening after ' + START_TIMEOUT_MS / 1000 + ' s';
    await stopChild(child, 'SIGKILL');
    const err = new Error(`nginx server failed to start: ${why}`);
    err.detail = tail(child.stderrText());
    throw err;
  }
  child.stdout.resume();
  return { child, port: ports[0] };
}

/** null when status and body are what the mode should answer, else what is wrong. */
function badAnswer(status, body, mode) {
  if (status !== 200) return `status ${status}`;
  if (mode === 'upload') return body.trim() === String(UPLOAD_BYTES) ? null : `body ${JSON.stringify(body.slice(0, 80))}, not the upload's size`;
  if (mode === 'hello') return body === 'Hello, World!' ? null : `body ${JSON.stringify(body.slice(0, 80))}`;
  try {
    return isDeepStrictEqual(JSON.parse(body), makePayload()) ? null : 'JSON body differs from makePayload()';
  } catch {
    return `body is not JSON: ${JSON.stringify(body.slice(0, 80))}`;
  }
}

/** One request with Connection: close; null when the response is what the mode should answer. */
function checkResponse(port, mode) {
  const gz = mode === 'jsongz';
  return new Promise((res) => {
    const headers = gz ? { 'accept-encoding': 'gzip' } : {};
    const up = mode === 'upload';
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 5000, method: up ? 'POST' : 'GET',
      headers: up ? { 'content-type': 'application/octet-stream', 'content-length': UPLOAD_BYTES } : headers }, (r) => {
      const chunks = [];
      r.on('data', (c) => chunks.push(c));
      r.on('end', () => {
        if (gz && r.headers['content-encoding'] !== 'gzip') return res(`content-encoding ${r.headers['content-encoding']}, not gzip`);
        const body = Buffer.concat(chunks);
        res(badAnswer(r.statusCode, (gz ? zlib.gunzipSync(body) : body).toString(), mode));
      });
    });
    req.end(up ? Buffer.alloc(UPLOAD_BYTES, 120) : undefined);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => res(e.message));
  });
}

/** The same over h2c with prior knowledge (node:http2's client on an http:// URL), one stream. */
function checkResponseH2(port, mode) {
  return new Promise((res) => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    const done = (why) => {
      session.destroy();
      res(why);
    };
    session.setTimeout(5000, () => done('timed out'));
    session.on('error', (e) => done(e.message));
    const req = session.request({ ':path': '/' });
    const chunks = [];
    let status;
    req.on('response', (h) => (status = h[':status']));
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => done(badAnswer(status, Buffer.concat(chunks).toString(), mode)));
    req.on('error', (e) => done(e.message));
  });
}

/** Runs a load generator on its CPU, bounded in time; resolves { code, stdout, stderr }. */
async function runPinnedLoad(argv, seconds) {
  const child = spawnPinned(LOADGEN_CPU, argv);
  let stdout = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => (stdout += d));
  const killer = setTimeout(() => killGroup(child, 'SIGKILL'), (seconds + 20) * 1000);
  const { code, signal } = await child.exited;
  clearTimeout(killer);
  return { code: code ?? signal, stdout, stderr: child.stderrText() };
}

/** wrk -t1 -c64 on the load generator's CPU; resolves { code, result, stderr }. */
async function runWrk(port, depth, seconds, encoding, body = 0) {
  const enc = encoding ? ['-H', `Accept-Encoding: ${encoding}`] : [];
  const { code, stdout, stderr } = await runPinnedLoad(['wrk', '-t1', `-c${CONNS}`, `-d${seconds}s`, ...enc, '-s', 'http/pipeline.lua', `http://127.0.0.1:${port}/`, '--', String(depth), String(body)], seconds);
  const line = stdout.split('\n').find((l) => l.startsWith('wrk-json '));
  let result = null;
  try {
    result = line ? JSON.parse(line.slice('wrk-json '.length)) : null;
  } catch {
    /* no result */
  }
  return { code, result, stderr };
}

/** h2load's durations ("1.01s", "34.92ms", "889us") in µs. */
const toUs = (v, unit) => Number(v) * { s: 1e6, ms: 1e3, us: 1 }[unit];

/**
 * h2load -c64 -m<streams> -t1 for a fixed time, h2c with prior knowledge (its default for an
 * http:// URL), on the load generator's CPU; resolves { code, result, stderr }. h2load reports no
 * CPU time of its own, so bash runs it and then `times`, whose second line is the utime and
 * stime of bash's children (getrusage), i.e. h2load's.
 */
async function runH2load(port, streams, seconds) {
  const argv = ['h2load', `-c${CONNS}`, `-m${streams}`, '-t1', '-D', String(seconds), `http://127.0.0.1:${port}/`];
  const { code, stdout, stderr } = await runPinnedLoad(['bash', '-c', '"$@"; rc=$?; times; exit $rc', 'bash', ...argv], seconds);
  const fin = /finished in ([\d.]+)(s|ms|us), ([\d.]+) req\/s/.exec(stdout);
  const req = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(stdout);
  if (!fin || !req) return { code, result: null, stderr: stderr + stdout.split('\n').slice(-5).join('\n') };
  const [total, started, done, succeeded, failed, errored, timeout] = req.slice(1).map(Number);
  const times = [...stdout.matchAll(/^(\d+)m([\d.]+)s (\d+)m([\d.]+)s$/gm)].pop(); // children: user sys
  const mean = /time for request:\s+\S+\s+\S+\s+([\d.]+)(s|ms|us)/.exec(stdout);
  const result = {
    seconds: toUs(fin[1], fin[2]) / 1e6,
    reqPerSec: Number(fin[3]), // h2load's: succeeded streams over the -D duration
    total, started, done, succeeded, failed, errored, timeout,
    bytes: Number(/traffic: \S+ \((\d+)\) total/.exec(stdout)?.[1] ?? NaN),
    meanUs: mean ? toUs(mean[1], mean[2]) : null,
    cpuTicks: times ? (60 * (Number(times[1]) + Number(times[3])) + Number(times[2]) + Number(times[4])) * CLK_TCK : null,
  };
  return { code, result, stderr };
}

/** The scenario's load generator: wrk for HTTP/1.1, h2load for h2c. */
const runLoad = (port, sc, seconds) => (sc.h2 ? runH2load(port, sc.streams, seconds) : runWrk(port, sc.depth, seconds, sc.encoding, sc.body));

// ---------------------------------------------------------------- runs --

/** One measured run: fresh server, response check, warmup, measured load with CPU sampled around it. */
async function measure(def, sc, duration) {
  const { child, port } = await startServer(def, sc.mode, { h2: sc.h2 }); // throws: the server is reported as failed
  try {
    return await measureOn(def, sc, duration, child, port);
  } finally {
    await stopChild(child);
  }
}

async function measureOn(def, sc, duration, child, port) {
  const lg = loadgenOf(sc);
  const run = { server: def.name, scenario: sc.name, loadgen: lg, ...(sc.h2 ? { streams: sc.streams } : { depth: sc.depth }), port, ok: false };
  const problems = [];
  const bad = await (sc.h2 ? checkResponseH2 : checkResponse)(port, sc.mode);
  if (bad) problems.push(`response check failed: ${bad}`);
  else {
    await runLoad(port, sc, WARMUP_S);
    const cpu0 = cpuTicks(child.pid);
    const core0 = coreTicks(SERVER_CPU);
    const w = await runLoad(port, sc, duration);
    const cpu1 = cpuTicks(child.pid);
    const core1 = coreTicks(SERVER_CPU);
    run.rssKiB = rssKiB(child.pid);
    const pct = (ticks) => (100 * ticks) / (core1.total - core0.total);
    const r = w.result;
    if (!r) problems.push(`${lg} produced no result (exit ${w.code})${w.stderr.trim() ? ': ' + tail(w.stderr, 3) : ''}`);
    else {
      const requests = sc.h2 ? r.succeeded : r.requests;
      const secs = sc.h2 ? r.seconds : r.durationUs / 1e6;
      Object.assign(run, {
        requests,
        seconds: secs,
        reqPerSec: sc.h2 ? r.reqPerSec : r.requests / secs, // h2load's: succeeded streams over its -D
        cpuTicks: cpu1 - cpu0,
        cpuUsPerReq: requests > 0 ? ((cpu1 - cpu0) * (1e6 / CLK_TCK)) / requests : null,
        // Shares of CPU 0's ticks over the window (both files count in USER_HZ). The load
        // generator lived about as long as the window, on CPU 1.
        serverCpuPct: pct(cpu1 - cpu0),
        coreIdlePct: pct(core1.idle - core0.idle),
        coreStealPct: pct(core1.steal - core0.steal),
        coreOtherPct: Math.max(0, 100 - pct(cpu1 - cpu0) - pct(core1.idle - core0.idle) - pct(core1.steal - core0.steal)),
      });
      run.serverBound = run.coreIdlePct < IDLE_MAX_PCT;
      run.coreShared = run.coreOtherPct >= OTHER_MAX_PCT;
      if (sc.h2) {
        Object.assign(run, {
          h2loadCpuPct: r.cpuTicks !== null ? pct(r.cpuTicks) : null,
          // h2load gives min/max/mean/sd per request, no percentiles; the mean stays in the raw JSON.
          p50us: null,
          p99us: null,
          h2loadMeanUs: r.meanUs,
          bytesPerResp: r.done > 0 ? r.bytes / r.done : null, // all bytes received: HPACK'd heads, DATA, framing
          // Streams that did not end with a 2xx/3xx answer: another status, reset, or a broken connection.
          failedRequests: r.total - r.succeeded,
          h2loadRequests: { total: r.total, started: r.started, done: r.done, succeeded: r.succeeded, failed: r.failed, errored: r.errored, timeout: r.timeout },
        });
        if (run.failedRequests > 0)
          problems.push(`${fmt(run.failedRequests)} of ${fmt(r.total)} requests FAILED (h2load: ${r.failed} failed, ${r.errored} errored, ${r.timeout} timeout)`);
      } else {
        const errors = Object.values(r.errors).reduce((a, b) => a + b, 0);
        Object.assign(run, {
          wrkCpuPct: r.cpuTicks >= 0 ? pct(r.cpuTicks) : null,
          // wrk corrects latencies for coordinated omission with an interval computed per request,
          // which is 16x too short when a sample covers a batch of 16: its pipelined percentiles
          // are wrong (p99 even reads 0). Kept in wrkLatencyUs, not reported.
          p50us: sc.depth === 1 ? r.latencyUs.p50 : null,
          p99us: sc.depth === 1 ? r.latencyUs.p99 : null,
          wrkLatencyUs: r.latencyUs,
          bytesPerResp: r.requests > 0 ? r.bytes / r.requests : null,
          wrkErrors: r.errors,
          failedRequests: errors,
        });
        if (errors > 0) problems.push(`wrk errors ${JSON.stringify(r.errors)}`);
      }
      if (requests === 0) problems.push('no requests answered');
    }
    if (w.code !== 0) problems.push(`${lg} exit ${w.code}`);
  }
  if (child.exitCode !== null || child.signalCode !== null) problems.push(`server died during the run: ${tail(child.stderrText(), 3)}`);
  run.ok = problems.length === 0;
  if (!run.ok) run.problems = problems;
  return run;
}

/**
 * JS heap allocated per request (heap-report.mjs in the server): a separate run under
 * HEAP_NODE_FLAGS, so the measured runs keep node's default GC settings. SIGUSR2 opens the
 * window between warmup and the measured load (gc() runs while the server is idle); SIGTERM closes
 * it and the server prints its report on stderr.
 */
async function measureHeap(def, sc, duration) {
  const { child, port } = await startServer(def, sc.mode, { nodeFlags: HEAP_NODE_FLAGS, env: { ZIO_HEAP_REPORT: '1', ZIO_HEAP_WAIT_SIGNAL: '1' } });
  let w;
  try {
    await runLoad(port, sc, WARMUP_S);
    process.kill(child.pid, 'SIGUSR2');
    await sleep(100);
    w = await runLoad(port, sc, duration);
  } finally {
    await stopChild(child, 'SIGTERM', 5000); // the report is written on SIGTERM
  }
  let report = null;
  for (const line of child.stderrText().trim().split('\n').reverse()) {
    try {
      report = JSON.parse(line);
      break;
    } catch {
      /* not the report */
    }
  }
  const res = { server: def.name, scenario: sc.name, [`${loadgenOf(sc)}Requests`]: (sc.h2 ? w.result?.succeeded : w.result?.requests) ?? null, report };
  if (report?.bytesPerFrame !== null && report?.bytesPerFrame !== undefined) res.bytesPerReq = report.bytesPerFrame; // frames = requests
  else res.error = report ? report.note ?? 'no requests in the window' : `no heap report: ${tail(child.stderrText(), 3)}`;
  return res;
}

// ---------------------------------------------------------------- suite --

/** Checks the platform and tools; returns the scenarios that can run (h2c ones need h2load). */
function prepare(scenarios) {
  if (os.platform() !== 'linux') throw new Error('the benchmarks need Linux (/proc, taskset)');
  // The load generators and the native ceiling come from Debian (installed here when missing and
  // root): tool -> package, for the tools the chosen scenarios use.
  const h1 = scenarios.some((s) => !s.h2);
  const h2 = scenarios.some((s) => s.h2);
  const pkgs = { ...(h1 && { wrk: 'wrk' }), ...(h2 && { h2load: 'nghttp2-client' }), nginx: 'nginx' };
  const has = (t) => spawnSync('bash', ['-c', `command -v ${t} || test -x /usr/sbin/${t}`]).status === 0;
  const missing = Object.keys(pkgs).filter((t) => !has(t));
  if (missing.length && process.getuid?.() === 0) {
    console.log(`bench: installing ${missing.map((t) => pkgs[t]).join(' ')} (apt-get)`);
    spawnSync('bash', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.map((t) => pkgs[t]).join(' ')}`], { stdio: 'inherit' });
  }
  if (h1 && !has('wrk')) throw new Error('wrk not found (Debian: apt-get install -y wrk)');
  if (h2 && !has('h2load')) {
    // Without it the HTTP/1.1 scenarios still run, as before the h2c ones existed.
    console.log('bench: h2load not found (Debian: apt-get install -y nghttp2-client); skipping the h2c scenarios');
    scenarios = scenarios.filter((s) => !s.h2);
    if (!scenarios.length) throw new Error('no scenario left to run: h2load not found');
  }
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0 || os.cpus().length < 2) {
    pinned.canPin = false;
    console.log('bench: WARNING: taskset unavailable or fewer than 2 CPUs; server and load generator are NOT pinned');
  }
  CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout?.trim()) || 100;
  return scenarios;
}

export async function suiteHttp() {
  const onlyScen = process.env.BENCH_SCENARIOS?.split(',').map((s) => s.trim());
  const scenarios = prepare(SCENARIOS.filter((s) => !onlyScen || onlyScen.includes(s.name)));
  process.on('exit', killAll);
  if (process.listenerCount('SIGINT') === 0) {
    // Run directly (run.mjs has its own handlers, which exit and so reach killAll above).
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(sig, () => process.exit(130));
  }
  const duration = Math.max(1, Math.round(Number(process.env.BENCH_DURATION ?? 5)));
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const heapPass = process.env.BENCH_HEAP !== '0';
  const onlyServers = process.env.BENCH_SERVERS?.split(',').map((s) => s.trim());
  // Servers with nothing to serve in the chosen scenarios (node:http2 in HTTP/1.1 ones) are left out.
  const servers = serverDefs().filter((s) => (!onlyServers || onlyServers.includes(s.name)) && scenarios.some((sc) => serves(s, sc)));
  const hasH1 = scenarios.some((s) => !s.h2);
  const hasH2 = scenarios.some((s) => s.h2);
  const wrkV = hasH1 ? versionOf(['wrk', '-v'], /wrk \S+/, true).version ?? 'wrk' : null; // -v prints the usage too and exits 1
  const h2loadV = hasH2 ? versionOf(['h2load', '--version']).version ?? 'h2load' : null;
  // The load generators and their flags, as stated next to every figure.
  const loadDesc = [
    ...(hasH1 ? [`${wrkV} -t1 -c${CONNS}`] : []),
    ...(hasH2 ? [`${h2loadV} -c${CONNS} -m${H2_STREAMS} -t1 (h2c prior knowledge)`] : []),
  ].join(' / ');
  const loadFlags = [...(hasH1 ? [`wrk -t1 -c${CONNS}`] : []), ...(hasH2 ? [`h2load -c${CONNS} -m${H2_STREAMS} -t1`] : [])].join(' / ');
  const lgNames = [...(hasH1 ? ['wrk'] : []), ...(hasH2 ? ['h2load'] : [])].join('/');
  const lgCpu = (r) => r[`${r.loadgen}CpuPct`]; // a run's load generator's share of a core
  const failed = new Map(); // server -> reason: reported, and not started again
  for (const s of servers) if (s.problem) failed.set(s.name, s.problem);

  console.log(
    `bench http: ${loadDesc}, ${duration} s (+${WARMUP_S} s warmup) x ${rounds} rounds, ` +
      `scenarios=[${scenarios.map((s) => s.name)}] servers=[${servers.map((s) => s.name)}] ` +
      `pin: server cpu ${SERVER_CPU}, ${lgNames} cpu ${LOADGEN_CPU}${pinned.canPin ? '' : ' (NOT pinned)'}`,
  );
  for (const [name, why] of failed) console.log(`bench: ${name} FAILED: ${why}; continuing without it`);

  const runs = [];
  for (const sc of scenarios) {
    for (let round = 1; round <= rounds; round++) {
      for (const def of servers) {
        if (failed.has(def.name) || !serves(def, sc)) continue;
        let run;
        try {
          run = { round, ...(await measure(def, sc, duration)) };
        } catch (err) {
          failed.set(def.name, err.message + (err.detail ? '\n    ' + err.detail : ''));
          console.log(`bench: ${def.name} FAILED: ${err.message}${err.detail ? '\n    ' + err.detail : ''}\nbench: continuing without ${def.name}`);
          continue;
        }
        runs.push(run);
        console.log(
          `  ${sc.name} round ${round}/${rounds} ${def.name}: ` +
            (run.reqPerSec !== undefined
              ? `${fmt(run.reqPerSec)} req/s, cpu ${fmt(run.cpuUsPerReq, 2)} µs/req (CPU ${SERVER_CPU}: server ${fmt(run.serverCpuPct)}%, ` +
                `other ${fmt(run.coreOtherPct)}%, idle ${fmt(run.coreIdlePct)}%, steal ${fmt(run.coreStealPct)}%; ${run.loadgen} ${fmt(lgCpu(run))}%), ` +
                (sc.depth === 1 ? `p50 ${fmt(run.p50us)} µs, p99 ${fmt(run.p99us)} µs, ` : '') +
                `rss ${fmt(run.rssKiB / 1024, 1)} MiB`
              : 'no result') +
            (run.ok ? '' : `  !! ${run.problems.join('; ')}`),
        );
        await sleep(200);
      }
    }
  }

  const heap = [];
  if (heapPass) {
    console.log(`\nJS heap pass (node ${HEAP_NODE_FLAGS.join(' ')}, ${duration} s, heap-report.mjs):`);
    for (const sc of scenarios) {
      for (const def of servers.filter((s) => s.heap && serves(s, sc) && !failed.has(s.name))) {
        let h;
        try {
          h = await measureHeap(def, sc, duration);
        } catch (err) {
          h = { server: def.name, scenario: sc.name, error: err.message };
        }
        heap.push(h);
        const r = h.report;
        console.log(
          `  ${sc.name} ${def.name}: ` +
            (h.error ? `!! ${h.error}` : `${fmt(r.frames)} requests, ${fmt(r.heapDeltaBytes)} B allocated, ${r.gcCount} GCs, ${fmt(h.bytesPerReq, 1)} B/req`),
        );
        await sleep(200);
      }
    }
  }

  // -------- summary
  const summary = [];
  const rows = [];
  for (const sc of scenarios) {
    const label = `${sc.name} (${sc.h2 ? `${sc.streams} streams/conn` : sc.depth > 1 ? `pipelined x${sc.depth}` : 'keep-alive'})`;
    for (const def of servers.filter((s) => serves(s, sc))) {
      const all = runs.filter((r) => r.scenario === sc.name && r.server === def.name);
      const ok = all.filter((r) => r.ok);
      const hp = heap.find((h) => h.scenario === sc.name && h.server === def.name);
      if (!all.length) {
        rows.push([label, def.name, failed.has(def.name) ? 'FAILED' : 'skipped', ...Array(12).fill('')]);
        continue;
      }
      const s = { scenario: sc.name, server: def.name, rounds: ok.length, failedRounds: all.length - ok.length };
      const lgKey = `${loadgenOf(sc)}CpuPct`;
      for (const k of ['reqPerSec', 'cpuUsPerReq', 'serverCpuPct', 'coreOtherPct', 'coreIdlePct', 'coreStealPct', lgKey, 'p50us', 'p99us', 'bytesPerResp']) s[k] = median(ok.map((r) => r[k]));
      s.rssMiB = median(ok.map((r) => r.rssKiB / 1024));
      // Over every run, the failed ones too: they are left out of the medians, not out of sight.
      s.failedRequests = all.reduce((sum, r) => sum + (r.failedRequests ?? 0), 0);
      s.heapBytesPerReq = hp?.bytesPerReq ?? null;
      summary.push(s);
      rows.push([
        label,
        def.name + (s.failedRounds ? ` (${s.failedRounds} failed)` : ''),
        fmt(s.reqPerSec),
        fmt(s.cpuUsPerReq, 2),
        fmt(s.failedRequests) + (s.failedRequests ? ' !!' : ''),
        fmt(s.serverCpuPct),
        fmt(s.coreOtherPct) + (s.coreOtherPct !== null && s.coreOtherPct >= OTHER_MAX_PCT ? ' (shared)' : ''),
        fmt(s.coreIdlePct) + (s.coreIdlePct !== null && s.coreIdlePct >= IDLE_MAX_PCT ? ' (not server-bound)' : ''),
        fmt(s.coreStealPct),
        fmt(s[lgKey]),
        sc.depth === 1 ? fmt(s.p50us) : 'n/a',
        sc.depth === 1 ? fmt(s.p99us) : 'n/a',
        fmt(s.rssMiB, 1),
        def.heap ? fmt(s.heapBytesPerReq, 1) : '',
        fmt(s.bytesPerResp),
      ]);
    }
  }

  const ratios = [];
  const ratioRows = [];
  const competitors = servers.filter((s) => !s.name.startsWith('zero-io')).map((s) => s.name);
  for (const sc of scenarios) {
    const cell = (competitor, key) => {
      const per = [];
      for (let round = 1; round <= rounds; round++) {
        const a = runs.find((r) => r.scenario === sc.name && r.round === round && r.server === 'zero-io' && r.ok);
        const b = runs.find((r) => r.scenario === sc.name && r.round === round && r.server === competitor && r.ok);
        if (a && b && Number.isFinite(a[key]) && Number.isFinite(b[key]) && b[key] > 0) per.push(a[key] / b[key]);
      }
      const sa = summary.find((s) => s.scenario === sc.name && s.server === 'zero-io');
      const sb = summary.find((s) => s.scenario === sc.name && s.server === competitor);
      const ratio = sa?.[key] && sb?.[key] ? sa[key] / sb[key] : null;
      return { ratio, min: per.length ? Math.min(...per) : null, max: per.length ? Math.max(...per) : null, perRound: per };
    };
    for (const [metric, key, note] of [
      ['req/s', 'reqPerSec', 'higher is better'],
      ['cpu µs/req', 'cpuUsPerReq', 'lower is better'],
    ]) {
      const vs = Object.fromEntries(competitors.map((c) => [c, cell(c, key)]));
      ratios.push({ scenario: sc.name, metric, vs });
      const show = (v) => (v.ratio === null ? '–' : `${fmt(v.ratio, 2)}×`);
      const spread = (v) => (v.min === null ? '–' : `${fmt(v.min, 2)}–${fmt(v.max, 2)}`);
      ratioRows.push([sc.name, `${metric} (${note})`, ...competitors.flatMap((c) => [show(vs[c]), spread(vs[c])])]);
    }
  }

  console.log(
    `\n${loadFlags}, ${duration} s per run, medians of ${rounds} rounds. cpu µs/req and server CPU: the server's ` +
      `utime+stime over the measured window; failed req: summed over all rounds (wrk's errors; h2load's requests ` +
      `that did not succeed), a run with any is left out of the medians; ` +
      `server + other + idle + steal = 100% of CPU 0 over that window (/proc/stat); ` +
      `p50/p99 from wrk, keep-alive only (wrk's latency correction is wrong for pipelined batches; h2load gives no percentiles); ` +
      `heap B/req from the separate heap pass; B/resp: response bytes on the wire.\n\n` +
      table(['scenario', 'server', 'req/s', 'cpu µs/req', 'failed req', 'server %', 'other %', 'idle %', 'steal %', `${lgNames} CPU %`, 'p50 µs', 'p99 µs', 'RSS MiB', 'JS heap B/req', 'B/resp'], rows),
  );
  console.log(
    '\nRatios are zero-io / competitor, from the medians; spread is the min–max of the per-round ratios.\n\n' +
      table(['scenario', 'metric', ...competitors.flatMap((c) => [`zero-io / ${c}`, 'spread'])], ratioRows),
  );

  // The figures compare servers only when the server, not the load generator or another process, set the pace.
  const measured = runs.filter((r) => r.ok);
  const bound = measured.filter((r) => r.serverBound && !r.coreShared);
  console.log(
    `\nbottleneck: the server was the bottleneck (CPU ${SERVER_CPU} idle < ${IDLE_MAX_PCT}% and other processes ` +
      `< ${OTHER_MAX_PCT}% of the window) in ${bound.length} of ${measured.length} measured runs` +
      (bound.length === measured.length ? ' (all).' : ':'),
  );
  for (const r of measured.filter((x) => !bound.includes(x))) {
    const why = !r.serverBound
      ? lgCpu(r) >= 100 - IDLE_MAX_PCT
        ? `${r.loadgen} saturated: the load generator set the pace`
        : 'neither side saturated: round trips and wake-ups set the pace; a noisy run'
      : 'CPU 0 shared with other processes: req/s understates the server, its CPU µs/req holds; rerun on a quiet machine';
    console.log(
      `  ${r.scenario} round ${r.round} ${r.server}: CPU ${SERVER_CPU} server ${fmt(r.serverCpuPct)}%, other ${fmt(r.coreOtherPct)}%, ` +
        `idle ${fmt(r.coreIdlePct)}%; ${r.loadgen} ${fmt(lgCpu(r))}% (${why})`,
    );
  }
  const stolen = measured.filter((r) => r.coreStealPct >= 5);
  if (stolen.length)
    console.log(
      `note: the hypervisor stole >= 5% of CPU ${SERVER_CPU} in ${stolen.length} runs (req/s is noisier there): ` +
        stolen.map((r) => `${r.scenario}/${r.round}/${r.server} ${fmt(r.coreStealPct)}%`).join(', '),
    );
  const badRuns = runs.filter((r) => !r.ok);
  if (badRuns.length) {
    console.log(`\nFAILED RUNS: ${badRuns.length} of ${runs.length}, left out of the medians:`);
    for (const r of badRuns) console.log(`  ${r.scenario} round ${r.round} ${r.server}: ${r.problems.join('; ')}`);
  }
  for (const [name, why] of failed) console.log(`\nFAILED: ${name} was not measured (or not in every run): ${why}`);

  const file = join(RESULTS, `http-${stamp()}.json`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        suite: 'http',
        date: new Date().toISOString(),
        config: {
          loadgen: hasH1 ? `${wrkV} -t1 -c${CONNS} -d${duration}s -s http/pipeline.lua` : null,
          h2loadgen: hasH2 ? `${h2loadV} -c${CONNS} -m${H2_STREAMS} -t1 -D ${duration}` : null,
          scenarios,
          duration,
          warmup: WARMUP_S,
          rounds,
          serverCpu: SERVER_CPU,
          loadgenCpu: LOADGEN_CPU,
          pinned: pinned.canPin,
          clkTck: CLK_TCK,
          idleMaxPct: IDLE_MAX_PCT,
          otherMaxPct: OTHER_MAX_PCT,
          heapNodeFlags: HEAP_NODE_FLAGS,
        },
        machine: {
          cpu: os.cpus()[0]?.model,
          cpus: os.cpus().length,
          kernel: os.release(),
          versions: Object.fromEntries(servers.map((s) => [s.name, s.version ?? null])),
        },
        failed: Object.fromEntries(failed),
        summary,
        ratios,
        heap,
        runs,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nraw results: ${file}`);
  killAll();
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await suiteHttp();
