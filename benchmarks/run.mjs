#!/usr/bin/env node
// zero-io benchmark runner.
//
//   node run.mjs [tcp-echo]   TCP echo: zero-io vs node:net vs Bun, C load generator
//   node run.mjs udp-echo     UDP echo 64 B: zero-io vs node:dgram, C load generator (flows = BENCH_CONNS)
//   node run.mjs broadcast    one 256 B message to 1000 TCP connections: SendBuffer fan-out vs a
//                             copy per connection vs node:net (msgs = deliveries)
//   node run.mjs backends     TCP echo: zero-io on io_uring vs the same server on epoll (and node:net)
//   node run.mjs heap         JS heap allocated per echoed message: zero-io vs node:net
//   node run.mjs ws-echo      WebSocket echo (binary frames, BENCH_SIZE default 20; run again with
//                             BENCH_SIZE=4096): zero-io vs ws (npm) vs Bun.serve's websocket, and the
//                             C epoll TCP echo server fed the same frames with no handshake (the
//                             kernel's floor for these bytes: no WebSocket work at all)
//   node run.mjs ws-broadcast one 256 B message to 1000 WebSocket subscribers: wsPublish vs a ws
//                             send loop vs Bun's server.publish (msgs = deliveries)
//   node run.mjs http         HTTP/1.1 hello and ~1 KiB JSON, keep-alive and pipelined x16: zero-io vs
//                             node:http vs fastify vs Bun.serve vs nginx, wrk; the same over h2c: zero-io
//                             vs node:http2 vs nginx, h2load (http.mjs, its own settings)
//
// Environment:
//   BENCH_CONNS     comma-separated connection counts (default 1,64,1000)
//   BENCH_DURATION  measured seconds per run (default 5)
//   BENCH_ROUNDS    rounds per scenario (default 3)
//   BENCH_SIZE      message size in bytes (default 1024)
//   BENCH_SERVERS   comma-separated subset of zero-io,node:net,bun,c-epoll (and zero-io-coop, an A/B variant)
//   BUN_BIN         path to a bun binary (default: the `bun` npm dependency, then PATH)
//
// Servers run pinned to CPU 0 and the load generator to CPU 1 (taskset). The
// load generator prints "measure-start"/"measure-end" on stderr around the
// measured window; the server's CPU time (utime+stime from /proc/<pid>/stat)
// is sampled at exactly those two points.
import { spawnSync, execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Pinned, fmt, freePort, median, sleep, stamp, table, tail } from './common.mjs';

const HERE = dirname(fileURLToPath(import.meta.url));
const LOADGEN = join(HERE, 'bin', 'echo_client');
const RESULTS = join(HERE, 'results');

const SERVER_CPU = 0;
const LOADGEN_CPU = 1;
const WARMUP_S = 1;
const START_TIMEOUT_MS = 15000;

// ---------------------------------------------------------------- children --

// 'exit', not 'close': the load generator's output is read line by line as it runs.
const pinned = new Pinned(HERE, { waitFor: 'exit' });
const killGroup = (child, signal) => pinned.killGroup(child, signal);
const killAll = () => pinned.killAll();

process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    console.error(`\nbench: ${sig}, stopping`);
    killAll();
    process.exit(130);
  });
}
process.on('uncaughtException', (err) => {
  console.error(err);
  killAll();
  process.exit(1);
});
process.on('unhandledRejection', (err) => {
  console.error(err);
  killAll();
  process.exit(1);
});

/** Spawns argv pinned to one CPU with the open-files limit raised (common.mjs Pinned). */
const spawnPinned = (cpu, argv, env = {}) => pinned.spawn(cpu, argv, env);
const stopChild = (child, graceMs = 2000) => pinned.stop(child, 'SIGTERM', graceMs);

// ---------------------------------------------------------------- helpers --

let CLK_TCK = 100;
try {
  CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
} catch {
  /* keep 100 */
}

/** utime and stime of the whole process, in clock ticks (fields 14 and 15). */
function cpuTicks(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' '); // f[0] is field 3
    return { user: Number(f[14 - 3]), sys: Number(f[15 - 3]) };
  } catch {
    return null;
  }
}

function rssKiB(pid) {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}







// ---------------------------------------------------------------- servers --

function findBun() {
  if (process.env.BUN_BIN) return existsSync(process.env.BUN_BIN) ? process.env.BUN_BIN : null;
  try {
    const req = createRequire(import.meta.url);
    const pj = req.resolve('bun/package.json');
    const { bin } = JSON.parse(readFileSync(pj, 'utf8'));
    const rel = typeof bin === 'string' ? bin : bin?.bun;
    if (rel) {
      const p = resolve(dirname(pj), rel);
      if (existsSync(p)) return p;
    }
  } catch {
    /* not installed */
  }
  const local = join(HERE, 'node_modules', '.bin', 'bun');
  if (existsSync(local)) return local;
  const r = spawnSync('bash', ['-c', 'command -v bun'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() ? r.stdout.trim() : null;
}

function serverDefs() {
  const bun = findBun();
  let bunProblem = null;
  let bunVersion = null;
  if (!bun) {
    bunProblem = 'no bun binary found (install the `bun` dependency with pnpm, put bun on PATH, or set BUN_BIN)';
  } else {
    const r = spawnSync(bun, ['--version'], { encoding: 'utf8', timeout: 10000 });
    if (r.status === 0) bunVersion = r.stdout.trim();
    else bunProblem = `${bun} --version failed: ${(r.stderr || r.error?.message || '').trim()}`;
  }
  return [
    {
      name: 'zero-io',
      argv: (port, nodeFlags = []) => [process.execPath, ...nodeFlags, 'servers/zero-io-echo.mjs', String(port)],
      version: null,
    },
    {
      name: 'node:net',
      argv: (port, nodeFlags = []) => [process.execPath, ...nodeFlags, 'servers/node-net-echo.mjs', String(port)],
      version: process.version,
    },
    {
      name: 'bun',
      argv: (port) => [bun, 'servers/bun-echo.ts', String(port)],
      version: bunVersion,
      problem: bunProblem,
    },
    {
      // The same server with IORING_SETUP_COOP_TASKRUN instead of DEFER_TASKRUN (A/B).
      name: 'zero-io-coop',
      argv: (port, nodeFlags = []) => [process.execPath, ...nodeFlags, 'servers/zero-io-echo.mjs', String(port)],
      env: { ZIO_DEFER_TASKRUN: '0' },
      version: null,
    },
    {
      name: 'c-epoll',
      argv: (port) => [join(HERE, 'bin', 'epoll_echo'), String(port)],
      version: 'minimal C epoll server (servers/epoll_echo.c)',
    },
  ];
}

/** Starts a server and resolves once it printed "listening". Throws with its stderr on failure. */
async function startServer(def, port, { env = {}, nodeFlags = [] } = {}) {
  const child = spawnPinned(SERVER_CPU, def.argv(port, nodeFlags), { ...(def.env ?? {}), ...env });
  const rl = createInterface({ input: child.stdout });
  const ok = await new Promise((res) => {
    const timer = setTimeout(() => res('timed out after ' + START_TIMEOUT_MS / 1000 + ' s'), START_TIMEOUT_MS);
    rl.on('line', (line) => {
      if (/^listening\b/.test(line)) {
        clearTimeout(timer);
        res(true);
      }
    });
    child.exited.then(({ code, signal, error }) => {
      clearTimeout(timer);
      res(error ? error.message : `exited (${signal ?? 'code ' + code}) before listening`);
    });
  });
  if (ok !== true) {
    await stopChild(child, 500);
    await sleep(50); // let the last stderr bytes arrive
    const err = new Error(`${def.name} server failed to start: ${ok}`);
    err.detail = tail(child.stderrText());
    throw err;
  }
  child.stdout.resume();
  return child;
}

/**
 * Runs the load generator. hooks.start/hooks.end run synchronously when it
 * reports the start/end of its measured window.
 */
async function runLoadgen(port, conns, duration, size, hooks = {}, loadgen = LOADGEN, extraArgs = []) {
  const child = spawnPinned(LOADGEN_CPU, [
    loadgen,
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--conns',
    String(conns),
    '--size',
    String(size),
    '--duration',
    String(duration),
    '--warmup',
    String(WARMUP_S),
    ...extraArgs,
  ]);
  let stdout = '';
  let stderr = '';
  let started = false;
  let ended = false;
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => (stdout += d));
  createInterface({ input: child.stderr }).on('line', (line) => {
    if (line === 'measure-start') {
      started = true;
      hooks.start?.();
    } else if (line === 'measure-end') {
      ended = true;
      hooks.end?.();
    } else stderr += line + '\n';
  });
  // Hard bound: connect phase (<= 15 s) + warmup + duration + slack.
  const killer = setTimeout(() => killGroup(child, 'SIGKILL'), (20 + WARMUP_S + duration) * 1000);
  const { code, signal } = await child.exited;
  clearTimeout(killer);
  await sleep(20); // drain the last readline events
  if (started && !ended) hooks.end?.();
  let result = null;
  try {
    result = JSON.parse(stdout.trim().split('\n').pop());
  } catch {
    /* no result */
  }
  return { code, signal, result, stderr, started };
}

// ---------------------------------------------------------------- tcp-echo --

/** The side-by-side echo suites. */
const ECHO_SUITES = {
  'tcp-echo': {
    loadgen: LOADGEN,
    conns: '1,64,1000',
    size: 1024,
    servers: () => serverDefs(),
    competitors: ['node:net', 'bun', 'c-epoll'],
    abVariants: ['zero-io-coop'],
  },
  'udp-echo': {
    loadgen: join(HERE, 'bin', 'udp_echo_client'),
    conns: '1,64',
    size: 64,
    servers: () => [
      { name: 'zero-io', argv: (port) => [process.execPath, 'servers/zero-io-udp-echo.mjs', String(port)], version: null },
      { name: 'node:dgram', argv: (port) => [process.execPath, 'servers/node-dgram-echo.mjs', String(port)], version: process.version },
    ],
    competitors: ['node:dgram'],
    abVariants: [],
  },
  // The same zero-io echo server on each backend (Config.backend via ZERO_IO_BACKEND).
  'backends': {
    loadgen: LOADGEN,
    conns: '1,64,1000',
    size: 1024,
    servers: () => {
      const zio = serverDefs().find((s) => s.name === 'zero-io');
      const net = serverDefs().find((s) => s.name === 'node:net');
      return [
        { ...zio, env: { ZERO_IO_BACKEND: 'io_uring' }, version: 'backend io_uring' },
        { ...zio, name: 'zero-io-epoll', env: { ZERO_IO_BACKEND: 'epoll' }, version: 'backend epoll' },
        net,
      ];
    },
    competitors: ['zero-io-epoll', 'node:net'],
    abVariants: [],
  },
  // WebSocket echo: the echo client in --ws mode (a server's own args may change its mode: the C
  // reference gets the same frames without the handshake).
  'ws-echo': {
    loadgen: LOADGEN,
    loadgenArgs: (def) => ['--ws', def.name === 'c-epoll' ? 'raw-frames' : 'frames'],
    conns: '1,64,1000',
    size: 20,
    servers: () => {
      const defs = serverDefs();
      const bun = defs.find((s) => s.name === 'bun');
      return [
        { name: 'zero-io', argv: (port) => [process.execPath, 'servers/zero-io-ws.mjs', String(port)], version: null },
        { name: 'ws', argv: (port) => [process.execPath, 'servers/node-ws.mjs', String(port)], version: `ws ${createRequire(import.meta.url)('ws/package.json').version} on ${process.version}` },
        { ...bun, argv: (port) => [bun.argv(port)[0], 'servers/bun-ws.ts', String(port)] },
        { ...defs.find((s) => s.name === 'c-epoll'), version: 'minimal C epoll TCP echo of the same frames (no WebSocket work)' },
      ];
    },
    competitors: ['ws', 'bun', 'c-epoll'],
    abVariants: [],
  },
  // WebSocket pub/sub: one trigger frame -> one SIZE-byte message to every connection, zero-io's
  // wsPublish vs a ws send loop vs Bun's server.publish (msgs = deliveries).
  'ws-broadcast': {
    loadgen: join(HERE, 'bin', 'broadcast_client'),
    loadgenArgs: () => ['--ws', 'frames'],
    conns: '1000',
    size: 256,
    servers: () => {
      const size = String(Number(process.env.BENCH_SIZE ?? 256));
      const bun = serverDefs().find((s) => s.name === 'bun');
      return [
        { name: 'zero-io', argv: (port) => [process.execPath, 'servers/zero-io-ws-broadcast.mjs', String(port), size], version: 'wsPublish' },
        { name: 'ws', argv: (port) => [process.execPath, 'servers/node-ws-broadcast.mjs', String(port), size], version: `ws ${createRequire(import.meta.url)('ws/package.json').version} send loop` },
        { ...bun, argv: (port) => [bun.argv(port)[0], 'servers/bun-ws-broadcast.ts', String(port), size], version: `${bun.version} server.publish` },
      ];
    },
    competitors: ['ws', 'bun'],
    abVariants: [],
  },
  // One trigger byte -> one SIZE-byte message to every connection (conns = receivers).
  broadcast: {
    loadgen: join(HERE, 'bin', 'broadcast_client'),
    conns: '1000',
    size: 256,
    servers: () => {
      const size = String(Number(process.env.BENCH_SIZE ?? 256));
      const zio = (mode) => (port) => [process.execPath, 'servers/zero-io-broadcast.mjs', String(port), size];
      return [
        { name: 'zero-io', argv: zio('fanout'), env: { ZIO_BCAST: 'fanout' }, version: 'SendBuffer fan-out' },
        { name: 'zero-io-copy', argv: zio('copy'), env: { ZIO_BCAST: 'copy' }, version: 'streamWrite copy per connection' },
        { name: 'node:net', argv: (port) => [process.execPath, 'servers/node-net-broadcast.mjs', String(port), size], version: process.version },
      ];
    },
    competitors: ['zero-io-copy', 'node:net'],
    abVariants: [],
  },
};

async function suiteEcho(suiteName = 'tcp-echo') {
  const spec = ECHO_SUITES[suiteName];
  const connsList = (process.env.BENCH_CONNS ?? spec.conns).split(',').map((s) => Number(s.trim())).filter((n) => n > 0);
  const duration = Number(process.env.BENCH_DURATION ?? 5);
  const rounds = Number(process.env.BENCH_ROUNDS ?? 3);
  const size = Number(process.env.BENCH_SIZE ?? spec.size);
  const only = process.env.BENCH_SERVERS?.split(',').map((s) => s.trim());

  let servers = spec.servers();
  // A/B variants run only when named in BENCH_SERVERS.
  servers = only ? servers.filter((s) => only.includes(s.name)) : servers.filter((s) => !spec.abVariants.includes(s.name));
  const skipped = new Map(); // name -> reason
  for (const s of servers) {
    if (s.problem) {
      skipped.set(s.name, s.problem);
      console.log(`bench: skipping ${s.name}: ${s.problem}`);
    }
  }

  console.log(
    `bench ${suiteName}: conns=[${connsList}] size=${size} B duration=${duration} s warmup=${WARMUP_S} s rounds=${rounds}` +
      ` servers=[${servers.map((s) => s.name)}] pin: server cpu ${SERVER_CPU}, loadgen cpu ${LOADGEN_CPU}` +
      (pinned.canPin ? '' : ' (NOT pinned)'),
  );

  const runs = [];
  for (const conns of connsList) {
    for (let round = 1; round <= rounds; round++) {
      for (const def of servers) {
        if (skipped.has(def.name)) continue;
        const label = `c=${conns} round ${round}/${rounds} ${def.name}`;
        const port = await freePort();
        let server;
        try {
          server = await startServer(def, port);
        } catch (err) {
          skipped.set(def.name, err.message);
          console.log(`bench: ${err.message}${err.detail ? '\n    ' + err.detail : ''}`);
          console.log(`bench: continuing without ${def.name}`);
          continue;
        }
        const pid = server.pid;
        let cpu0 = null;
        let cpu1 = null;
        let rss = null;
        const lg = await runLoadgen(port, conns, duration, size, {
          start: () => (cpu0 = cpuTicks(pid)),
          end: () => {
            cpu1 = cpuTicks(pid);
            rss = rssKiB(pid);
          },
        }, spec.loadgen, spec.loadgenArgs?.(def) ?? []);
        const alive = server.exitCode === null && server.signalCode === null;
        await stopChild(server);
        const r = lg.result;
        const run = {
          server: def.name,
          conns,
          size,
          round,
          ok: false,
          loadgenExit: lg.code,
          serverAlive: alive,
          cpuTicks: cpu0 !== null && cpu1 !== null ? cpu1.user + cpu1.sys - cpu0.user - cpu0.sys : null,
          sysTicks: cpu0 !== null && cpu1 !== null ? cpu1.sys - cpu0.sys : null,
          rssKiB: rss,
          ...(r ?? {}),
        };
        if (r && run.cpuTicks !== null && r.msgs > 0) {
          run.cpuUsPerMsg = (run.cpuTicks * (1e6 / CLK_TCK)) / r.msgs;
          // The kernel's share (stime): on loopback it includes the peer's receive path, which runs
          // in softirq context on the sender's CPU. It bounds what any user-space design can save.
          run.sysUsPerMsg = (run.sysTicks * (1e6 / CLK_TCK)) / r.msgs;
          run.serverCpuPct = (100 * run.cpuTicks) / CLK_TCK / r.seconds;
        }
        const problems = [];
        if (!r) problems.push(`load generator produced no result (exit ${lg.code ?? lg.signal})`);
        else {
          if (r.errors > 0) problems.push(`${r.errors} errors (${r.mismatches} echo mismatches, ${r.connErrors} connection errors)`);
          if (r.msgs === 0) problems.push('no messages echoed');
        }
        if (lg.code !== 0 && r) problems.push(`load generator exit ${lg.code ?? lg.signal}`);
        if (!alive) problems.push('server died during the run');
        if (lg.stderr.trim()) problems.push(tail(lg.stderr, 3));
        run.ok = problems.length === 0;
        if (!run.ok) run.problems = problems;
        runs.push(run);
        console.log(
          `  ${label}: ` +
            (r
              ? `${fmt(r.msgsPerSec)} msg/s, cpu ${fmt(run.cpuUsPerMsg, 2)} µs/msg (kernel ${fmt(run.sysUsPerMsg, 2)}, ${fmt(run.serverCpuPct)}%), ` +
                `p50 ${r.p50us} µs, p99 ${r.p99us} µs, rss ${fmt(rss / 1024, 1)} MiB`
              : 'no result') +
            (run.ok ? '' : `  !! ${problems.join('; ')}`),
        );
        await sleep(200);
      }
    }
  }

  // -------- summary
  const summary = [];
  const rows = [];
  for (const conns of connsList) {
    const scenario = `${suiteName} c=${conns} ${size} B`;
    for (const def of servers) {
      const ok = runs.filter((r) => r.conns === conns && r.server === def.name && r.ok);
      const all = runs.filter((r) => r.conns === conns && r.server === def.name);
      if (!all.length) {
        rows.push([scenario, def.name, 'skipped', '', '', '', '', '']);
        continue;
      }
      const s = {
        scenario,
        conns,
        server: def.name,
        rounds: ok.length,
        failedRounds: all.length - ok.length,
        msgsPerSec: median(ok.map((r) => r.msgsPerSec)),
        cpuUsPerMsg: median(ok.map((r) => r.cpuUsPerMsg)),
        sysUsPerMsg: median(ok.map((r) => r.sysUsPerMsg)),
        p50us: median(ok.map((r) => r.p50us)),
        p99us: median(ok.map((r) => r.p99us)),
        rssMiB: median(ok.map((r) => (r.rssKiB ?? NaN) / 1024)),
      };
      summary.push(s);
      rows.push([
        scenario,
        def.name + (s.failedRounds ? ` (${s.failedRounds} failed)` : ''),
        fmt(s.msgsPerSec),
        fmt(s.cpuUsPerMsg, 2),
        fmt(s.sysUsPerMsg, 2),
        fmt(s.p50us),
        fmt(s.p99us),
        fmt(s.rssMiB, 1),
      ]);
    }
  }

  const ratios = [];
  const ratioRows = [];
  for (const conns of connsList) {
    const scenario = `${suiteName} c=${conns} ${size} B`;
    const cell = (competitor, key) => {
      const per = [];
      for (let round = 1; round <= rounds; round++) {
        const a = runs.find((r) => r.conns === conns && r.round === round && r.server === 'zero-io' && r.ok);
        const b = runs.find((r) => r.conns === conns && r.round === round && r.server === competitor && r.ok);
        if (a && b && Number.isFinite(a[key]) && Number.isFinite(b[key]) && b[key] > 0) per.push(a[key] / b[key]);
      }
      const sa = summary.find((s) => s.conns === conns && s.server === 'zero-io');
      const sb = summary.find((s) => s.conns === conns && s.server === competitor);
      const ratio = sa && sb && sa[key] !== null && sb[key] ? sa[key] / sb[key] : null;
      return { ratio, min: per.length ? Math.min(...per) : null, max: per.length ? Math.max(...per) : null, perRound: per };
    };
    for (const [metric, key, note] of [
      ['msgs/s', 'msgsPerSec', 'higher is better'],
      ['cpu µs/msg', 'cpuUsPerMsg', 'lower is better'],
    ]) {
      const vs = Object.fromEntries(spec.competitors.map((c) => [c, cell(c, key)]));
      ratios.push({ scenario, conns, metric, vs });
      const show = (v) => (v.ratio === null ? '–' : `${fmt(v.ratio, 2)}×`);
      const spread = (v) => (v.min === null ? '–' : `${fmt(v.min, 2)}–${fmt(v.max, 2)}`);
      ratioRows.push([scenario, `${metric} (${note})`, ...spec.competitors.flatMap((c) => [show(vs[c]), spread(vs[c])])]);
    }
  }

  console.log('\n' + table(['scenario', 'server', 'msgs/s', 'cpu µs/msg', 'kernel µs/msg', 'p50 µs', 'p99 µs', 'RSS MiB'], rows));
  console.log(
    '\nRatios are zero-io / competitor, from the medians; spread is the min–max of the per-round ratios.\n\n' +
      table(['scenario', 'metric', ...spec.competitors.flatMap((c) => [`zero-io / ${c}`, 'spread'])], ratioRows),
  );
  for (const [name, why] of skipped) console.log(`\nnote: ${name} was not measured (or not in every run): ${why}`);

  const file = join(RESULTS, `${suiteName}-${stamp()}.json`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    file,
    JSON.stringify(
      {
        suite: suiteName,
        date: new Date().toISOString(),
        config: { conns: connsList, size, duration, warmup: WARMUP_S, rounds, serverCpu: SERVER_CPU, loadgenCpu: LOADGEN_CPU, pinned: pinned.canPin, clkTck: CLK_TCK },
        machine: machineInfo(servers),
        skipped: Object.fromEntries(skipped),
        summary,
        ratios,
        runs,
      },
      null,
      2,
    ) + '\n',
  );
  console.log(`\nraw results: ${file}`);
}

// ---------------------------------------------------------------- heap --

async function suiteHeap() {
  const conns = 64;
  const duration = Number(process.env.BENCH_DURATION ?? 5);
  const size = Number(process.env.BENCH_SIZE ?? 1024);
  const nodeFlags = ['--max-semi-space-size=64', '--expose-gc'];
  const zero = serverDefs().find((s) => s.name === 'zero-io');
  const servers = [
    zero,
    { ...zero, name: 'zero-io (poolBytes+offset)', env: { ZIO_ECHO_MODE: 'offset' } },
    serverDefs().find((s) => s.name === 'node:net'),
  ];
  console.log(`bench heap: ${conns} conns, ${size} B, ${duration} s (+${WARMUP_S} s warmup), node ${nodeFlags.join(' ')}`);

  const results = [];
  for (const def of servers) {
    const port = await freePort();
    let server;
    try {
      server = await startServer(def, port, {
        nodeFlags,
        env: { ZIO_HEAP_REPORT: '1', ZIO_HEAP_WAIT_SIGNAL: '1', ...(def.env ?? {}) },
      });
    } catch (err) {
      console.log(`bench: ${err.message}${err.detail ? '\n    ' + err.detail : ''}`);
      console.log(`bench: continuing without ${def.name}`);
      results.push({ server: def.name, error: err.message });
      continue;
    }
    const pid = server.pid;
    const lg = await runLoadgen(port, conns, duration, size, {
      start: () => process.kill(pid, 'SIGUSR2'), // window starts: gc() + baseline
      end: () => process.kill(pid, 'SIGTERM'), // window ends: report + exit
    });
    const t = setTimeout(() => killGroup(server, 'SIGKILL'), 5000);
    await server.exited;
    clearTimeout(t);
    await sleep(20);
    let report = null;
    for (const line of server.stderrText().trim().split('\n').reverse()) {
      try {
        report = JSON.parse(line);
        break;
      } catch {
        /* not the report */
      }
    }
    const r = lg.result;
    const res = { server: def.name, loadgen: r, report };
    if (report && r && report.bytesPerFrame !== null && r.msgs > 0) {
      res.framesPerMsg = report.frames / r.msgs;
      res.bytesPerMsg = report.bytesPerFrame * res.framesPerMsg;
    }
    if (!report) res.error = `no heap report from the server${server.stderrText().trim() ? ': ' + tail(server.stderrText(), 3) : ''}`;
    if (r?.errors) res.error = `${r.errors} load generator errors`;
    results.push(res);
    console.log(
      `  ${def.name}: ` +
        (report
          ? `${fmt(report.frames)} frames, ${fmt(r?.msgs)} msgs, ${fmt(report.heapDeltaBytes)} B of JS heap allocated, ` +
            `${report.gcCount} GCs, ${fmt(report.bytesPerFrame, 1)} B/frame`
          : res.error),
    );
    await sleep(200);
  }

  const rows = results.map((x) =>
    x.report
      ? [x.server, fmt(x.loadgen?.msgsPerSec), fmt(x.report.frames), fmt(x.report.gcCount), fmt(x.report.bytesPerFrame, 1), fmt(x.bytesPerMsg, 1)]
      : [x.server, '–', '–', '–', '–', x.error ?? '–'],
  );
  console.log('\n' + table(['server', 'msgs/s', 'frames', 'GCs', 'heap B/frame', 'heap B/msg'], rows));
  const ours = results.find((x) => x.server === 'zero-io')?.bytesPerMsg;
  const theirs = results.find((x) => x.server === 'node:net')?.bytesPerMsg;
  if (Number.isFinite(ours) && Number.isFinite(theirs) && theirs > 0)
    console.log(`\nheap bytes per message, zero-io / node:net: ${fmt(ours / theirs, 3)}× (lower is better)`);
  const file = join(RESULTS, `heap-${stamp()}.json`);
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(
    file,
    JSON.stringify({ suite: 'heap', date: new Date().toISOString(), config: { conns, size, duration, warmup: WARMUP_S, nodeFlags }, machine: machineInfo(servers), results }, null, 2) + '\n',
  );
  console.log(`\nraw results: ${file}`);
}

// ---------------------------------------------------------------- main --

function machineInfo(servers) {
  return {
    node: process.version,
    bun: servers.find((s) => s.name === 'bun')?.version ?? null,
    cpu: os.cpus()[0]?.model,
    cpus: os.cpus().length,
    kernel: os.release(),
    platform: `${os.platform()} ${os.arch()}`,
  };
}

function prepare() {
  if (os.platform() !== 'linux') throw new Error('the benchmarks need Linux (/proc, taskset)');
  const b = spawnSync('bash', [join(HERE, 'loadgen', 'build.sh')], { stdio: 'inherit' });
  if (b.status !== 0 || !existsSync(LOADGEN)) throw new Error('building the load generator failed (needs a C compiler: cc)');
  if (spawnSync('taskset', ['-c', '0', 'true']).status !== 0 || os.cpus().length < 2) {
    pinned.canPin = false;
    console.log('bench: WARNING: taskset unavailable or fewer than 2 CPUs; server and load generator are NOT pinned');
  }
}

const suites = {
  'tcp-echo': () => suiteEcho('tcp-echo'),
  'udp-echo': () => suiteEcho('udp-echo'),
  broadcast: () => suiteEcho('broadcast'),
  'ws-echo': () => suiteEcho('ws-echo'),
  'ws-broadcast': () => suiteEcho('ws-broadcast'),
  backends: () => suiteEcho('backends'),
  heap: suiteHeap,
};
const name = process.argv[2] ?? 'tcp-echo';
if (name === 'http') {
  // wrk is its load generator, not the echo client: http.mjs checks its own requirements.
  await (await import('./http.mjs')).suiteHttp();
} else {
  if (!suites[name]) {
    console.error(`usage: node run.mjs [${[...Object.keys(suites), 'http'].join('|')}]`);
    process.exit(2);
  }
  prepare();
  await suites[name]();
}
killAll();
