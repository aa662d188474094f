// Helpers shared by the benchmark suites (run.mjs, http.mjs): free ports, medians, number
// formatting, Markdown tables, time stamps, pinned child processes.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A port that was free a moment ago (for servers that cannot bind port 0 and report it). */
export function freePort() {
  return new Promise((res, rej) => {
    const s = net.createServer();
    s.unref();
    s.on('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

export function median(xs) {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

export const fmt = (x, digits = 0) =>
  x === null || x === undefined || !Number.isFinite(x)
    ? '–'
    : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

export function table(header, rows) {
  const out = [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`];
  for (const r of rows) out.push(`| ${r.join(' | ')} |`);
  return out.join('\n');
}

export const stamp = () => new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
export const tail = (text, lines = 6) => text.trim().split('\n').slice(-lines).join('\n    ');

/**
 * The child processes of a benchmark run: each pinned to one CPU (taskset; `canPin = false`
 * where taskset is missing) with the open-files limit raised, in its own process group so a
 * stop reaches its children too (nginx's worker). `child.exited` resolves with { code, signal }
 * on `waitFor` ('close': every byte of stdout/stderr read; 'exit': the process ended);
 * `child.stderrText()` is the last 32–64 KiB of its stderr.
 */
export class Pinned {
  constructor(cwd, { waitFor = 'close' } = {}) {
    this.cwd = cwd;
    this.waitFor = waitFor;
    this.children = new Set();
    this.canPin = true;
  }

  killGroup(child, signal) {
    if (child.exitCode !== null || child.signalCode !== null) return;
    try {
      process.kill(-child.pid, signal); // detached: the child leads its own process group
    } catch {
      try {
        child.kill(signal);
      } catch {
        /* already gone */
      }
    }
  }

  killAll() {
    for (const c of this.children) this.killGroup(c, 'SIGKILL');
    this.children.clear();
  }

  spawn(cpu, argv, env = {}) {
    const pin = this.canPin ? `exec taskset -c ${cpu} "$@"` : 'exec "$@"';
    const script = `ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null; ${pin}`;
    const child = spawn('bash', ['-c', script, 'bash', ...argv], {
      cwd: this.cwd,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
      env: { ...process.env, ...env },
    });
    this.children.add(child);
    child.exited = new Promise((res) => {
      child.on(this.waitFor, (code, signal) => {
        this.children.delete(child);
        res({ code, signal });
      });
      child.on('error', (err) => {
        this.children.delete(child);
        res({ code: -1, signal: null, error: err });
      });
    });
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.length > 65536) stderr = stderr.slice(-32768);
    });
    child.stderrText = () => stderr;
    return child;
  }

  /** Signals the child's group, then SIGKILL after graceMs; resolves when it is gone. */
  async stop(child, signal = 'SIGTERM', graceMs = 3000) {
    this.killGroup(child, signal);
    const t = setTimeout(() => this.killGroup(child, 'SIGKILL'), graceMs);
    const r = await child.exited;
    clearTimeout(t);
    return r;
  }
}

/** A directory holding a fresh self-signed ECDSA P-256 cert.pem / key.pem for localhost (openssl CLI). */
export function selfSignedDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
    '-subj', '/CN=localhost', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')], { stdio: 'ignore' });
  return dir;
}

/** CPU time (utime + stime, clock ticks of 1/100 s) a process has used, from /proc. */
export const cpuTicks = (pid) => { const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' '); return Number(f[11]) + Number(f[12]); };

/** Starts `node <args>` pinned to `cpu` and resolves once its stderr says `waitFor`. */
export function startNodePinned(cpu, args, waitFor) {
  const p = spawn('taskset', ['-c', String(cpu), process.execPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    p.stderr.on('data', (d) => { err += d; if (err.includes(waitFor)) resolve(p); });
    p.on('exit', (c) => { if (c !== null) process.stderr.write(`${args[0]} exited ${c}: ${err}\n`); reject(new Error(`${args[0]} exited ${c}: ${err}`)); });
  });
}
