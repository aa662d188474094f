// The packed-tarball install (issue 14, "Show"): every public package packed with pnpm, no
// manifest left with a workspace: or catalog: range, then installed from the tarballs in an
// empty directory outside the repository — with npm and with pnpm 10, npm_config_* variables
// cleared, and a PATH that holds no compiler (no gcc, cc, c++, cmake, cargo) — and used there: a
// TCP echo, a TLS echo, an HTTP request, a WebSocket echo and a QUIC echo, on the engine from the
// platform package (@zero-io/core-linux-x64-gnu, the zig build for glibc 2.28: core's tarball
// carries no engine). The registry is stood in for by overrides that name the tarballs, so the
// package manager still chooses the platform package by its os/cpu/libc. Also: --omit=optional
// and a node_modules made for arm64 give the loader's clear errors. Run once per Node version:
// the backend does not change what is installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const PACKAGES = ['core', 'core-linux-x64-gnu', 'core-linux-arm64-gnu', 'tcp', 'http', 'websocket', 'quic'];
const RESULT = 'tcp ok, tls ok, http ok, ws ok, quic ok, engine @zero-io/core-linux-x64-gnu';
const TOOLS = ['node', 'npm', 'npx', 'pnpm', 'corepack', 'sh', 'bash', 'env', 'tar', 'gzip', 'openssl'];
let work = '';
let tarballs: string[] = [];
let cleanPath = '';

/** The environment of a user's shell: no npm_config_* from the test runner, no compiler on PATH. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_|^PNPM_|^ZERO_IO_|^VITEST|^NODE_OPTIONS$|^NODE_PATH$/i.test(k)) continue; // NODE_PATH: pnpm exec points it into the workspace
    env[k] = v;
  }
  env.PATH = cleanPath;
  return env;
}

function sh(cmd: string, args: string[], cwd: string, env = userEnv()): { code: number | null; out: string } {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', timeout: 180_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}` };
}

const SMOKE = `
import net from 'node:net';
import tlsClient from 'node:tls';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Io } from '@zero-io/core';
import '@zero-io/tcp';
import { ZeroResponse } from '@zero-io/http';
import '@zero-io/websocket';
import '@zero-io/quic';

const dir = mkdtempSync(join(tmpdir(), 'zio-smoke-'));
execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1',
  '-subj', '/CN=localhost', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' });
const io = new Io();
const tcp = io.tcpListen('127.0.0.1:0');
const tls = io.tcpListenWith({ host: '127.0.0.1', port: 0, tls: { cert: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'k.pem')) } });
const http = io.httpListen('127.0.0.1:0');
const ws = io.wsListen('127.0.0.1:0');
const quic = io.quicListenWith({ addr: '127.0.0.1:0', tls: { cert: readFileSync(join(dir, 'c.pem')), key: readFileSync(join(dir, 'k.pem')) } });
const qc = io.quicConnectWith({ host: '127.0.0.1', port: io.localAddress(quic).port, tls: { ca: readFileSync(join(dir, 'c.pem')), servername: 'localhost' } });
let quicGot = '';
const hello = ZeroResponse.ok().text('http ok');
const echoes = new Set([tcp, tls]);
let wsGot = '';
const client = io.wsConnect('ws://127.0.0.1:' + io.localAddress(ws).port + '/');
const h = io.runSync((ev) => {
  if (ev.type === 'StreamFrame' && ev.kind === 'Binary' && echoes.has(ev.endpoint)) io.streamWrite(ev.conn, ev.data);
  if (ev.type === 'StreamFrame' && ev.kind === 'WsText' && ev.conn !== client) io.wsSend(ev.conn, ev.text);
  if (ev.type === 'StreamFrame' && ev.kind === 'WsText' && ev.conn === client) wsGot = ev.text;
  if (ev.type === 'WsOpen' && ev.conn === client) io.wsSend(client, 'ws ok');
  if (ev.type === 'HttpRequest') io.httpRespond(ev.conn, ev.requestId, hello);
  if (ev.type === 'Connected' && ev.conn === qc) { io.streamWrite(qc, 0, Buffer.from('quic ok')); io.streamEnd(qc, 0); }
  if (ev.type === 'StreamFrame' && ev.endpoint === quic) { io.streamWrite(ev.conn, ev.stream, ev.data); if (ev.fin) io.streamEnd(ev.conn, ev.stream); }
  if (ev.type === 'StreamFrame' && ev.conn === qc) quicGot += Buffer.from(ev.data).toString();
});
const echo = (port, secure) => new Promise((resolve, reject) => {
  const s = secure ? tlsClient.connect({ host: '127.0.0.1', port, rejectUnauthorized: false }) : net.connect(port, '127.0.0.1');
  s.once(secure ? 'secureConnect' : 'connect', () => s.write(secure ? 'tls ok' : 'tcp ok'));
  s.once('data', (d) => { resolve(String(d)); s.destroy(); });
  s.once('error', reject);
});
const out = [await echo(io.localAddress(tcp).port, false), await echo(io.localAddress(tls).port, true),
  await (await fetch('http://127.0.0.1:' + io.localAddress(http).port + '/')).text()];
for (let i = 0; i < 200 && !wsGot; i++) await new Promise((r) => setTimeout(r, 10));
out.push(wsGot);
for (let i = 0; i < 200 && quicGot !== 'quic ok'; i++) await new Promise((r) => setTimeout(r, 10));
out.push(quicGot);
// The engine this process mapped: the platform package's, not a build from anywhere else.
const mapped = readFileSync('/proc/self/maps', 'utf8').split(String.fromCharCode(10)).find((l) => l.endsWith('/zero_io.node')) ?? '';
out.push('engine ' + mapped.split('/').slice(-3, -1).join('/'));
console.log(out.join(', '));
await h.shutdown();
io.shutdown();
`;

describe.skipIf(process.env.ZERO_IO_BACKEND === 'epoll')('installed from packed tarballs, outside the repository, with no compiler', () => {
  const names = new Map<string, string>(); // package name -> tarball
  beforeAll(() => {
    work = mkdtempSync(join(tmpdir(), 'zio-packed-'));
    const bin = join(work, 'bin');
    mkdirSync(bin);
    for (const t of TOOLS) {
      // node: the one running this test (each Node version the test command covers).
      const at = t === 'node' ? process.execPath : spawnSync('bash', ['-c', `command -v ${t}`], { encoding: 'utf8' }).stdout.trim();
      if (at) symlinkSync(at, join(bin, t));
    }
    cleanPath = bin;
    const out = join(work, 'tarballs');
    mkdirSync(out);
    for (const p of PACKAGES) {
      const r = spawnSync('pnpm', ['pack', '--pack-destination', out], { cwd: join(repo, 'packages', p), encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0) throw new Error(`pnpm pack of ${p} failed: ${r.stderr}`);
    }
    tarballs = readdirSync(out).filter((f) => f.endsWith('.tgz')).map((f) => join(out, f));
    for (const t of tarballs) names.set(manifestOf(t).name as string, t);
  }, 180_000);
  afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

  /** A project whose dependencies are the public packages, resolved to the tarballs (the registry's stand-in). */
  function app(dir: string, extra: Record<string, unknown> = {}): string {
    const at = join(work, dir);
    mkdirSync(at);
    const overrides = Object.fromEntries([...names].map(([n, t]) => [n, `file:${t}`]));
    const dependencies = Object.fromEntries(['core', 'tcp', 'http', 'websocket', 'quic'].map((p) => [`@zero-io/${p}`, `file:${names.get(`@zero-io/${p}`)}`]));
    writeFileSync(join(at, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', dependencies, overrides, ...extra }));
    writeFileSync(join(at, 'main.mjs'), SMOKE);
    return at;
  }
  const installed = (dir: string, name: string): boolean => existsSync(join(dir, 'node_modules', ...name.split('/'), 'package.json'));

  it('packs every public package with no workspace: or catalog: range left, the engine only in the platform packages, and the PATH has no compiler', () => {
    expect(tarballs).toHaveLength(PACKAGES.length);
    for (const t of tarballs) {
      const manifest = manifestOf(t);
      expect(JSON.stringify(manifest), t).not.toMatch(/"(workspace|catalog):/);
      expect(manifest.scripts?.install ?? manifest.scripts?.postinstall ?? manifest.scripts?.preinstall, t).toBeUndefined();
      const files = spawnSync('tar', ['-tzf', t], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
      if (/core-linux-/.test(manifest.name)) {
        expect(files.sort(), t).toEqual(['package/README.md', 'package/package.json', 'package/zero_io.node']);
        expect(manifest.libc, t).toEqual(['glibc']);
        expect(manifest.version).toBe(manifestOf(names.get('@zero-io/core')!).version);
      } else {
        expect(files.filter((f) => f.endsWith('.node')), t).toEqual([]);
      }
    }
    expect(manifestOf(names.get('@zero-io/core')!).optionalDependencies).toEqual({
      '@zero-io/core-linux-x64-gnu': manifestOf(names.get('@zero-io/core')!).version,
      '@zero-io/core-linux-arm64-gnu': manifestOf(names.get('@zero-io/core')!).version,
    });
    for (const c of ['gcc', 'cc', 'c++', 'cmake', 'cargo']) {
      expect(spawnSync('bash', ['-c', `command -v ${c}`], { env: userEnv() }).status, c).not.toBe(0);
    }
  });

  it('installs with npm (the x64 platform package only) and runs a TCP, TLS, HTTP, WebSocket and QUIC echo on it', () => {
    const dir = app('npm-app');
    const t0 = Date.now();
    const i = sh('npm', ['install', '--no-audit', '--no-fund', '--offline'], dir);
    expect(i.code, i.out).toBe(0);
    const r = sh('node', ['main.mjs'], dir);
    expect(r.out.trim()).toBe(RESULT);
    console.log(`npm install of the tarballs to a running TCP/TLS/HTTP/WS/QUIC echo: ${Date.now() - t0} ms`);
    expect(installed(dir, '@zero-io/core-linux-x64-gnu')).toBe(true);
    expect(installed(dir, '@zero-io/core-linux-arm64-gnu')).toBe(false);
  }, 180_000);

  it('installs with pnpm 10 and runs the same', () => {
    // The pnpm 10 the repository pins (corepack has it; a user's project names its own).
    const pinned = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).packageManager as string;
    expect(pinned).toMatch(/^pnpm@10\./);
    const dir = app('pnpm-app', { packageManager: pinned, pnpm: { overrides: Object.fromEntries([...names].map(([n, t]) => [n, `file:${t}`])) } });
    const i = sh('pnpm', ['install', '--offline', '--store-dir', join(work, 'store')], dir);
    expect(i.code, i.out).toBe(0);
    const r = sh('node', ['main.mjs'], dir);
    expect(r.out.trim()).toBe(RESULT);
  }, 180_000);

  it('npm --omit=optional: the loader says the engine package was skipped and how to get it', () => {
    const dir = app('npm-omit');
    const i = sh('npm', ['install', '--no-audit', '--no-fund', '--offline', '--omit=optional'], dir);
    expect(i.code, i.out).toBe(0);
    expect(installed(dir, '@zero-io/core-linux-x64-gnu')).toBe(false);
    const r = sh('node', ['main.mjs'], dir);
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toContain('the zero-io engine package @zero-io/core-linux-x64-gnu is not installed');
    expect(r.out).toContain('--omit=optional');
    expect(r.out).not.toMatch(/Cannot find module|dlopen/);
  }, 180_000);

  it("a node_modules that holds only the arm64 engine (copied from an arm64 machine into an x64 one): the loader says so", () => {
    const dir = app('npm-arm64');
    const i = sh('npm', ['install', '--no-audit', '--no-fund', '--offline', '--omit=optional'], dir);
    expect(i.code, i.out).toBe(0);
    // What npm installs on an arm64 machine, unpacked here as a copied node_modules would have it.
    const at = join(dir, 'node_modules', '@zero-io', 'core-linux-arm64-gnu');
    mkdirSync(at, { recursive: true });
    const x = sh('tar', ['-xzf', names.get('@zero-io/core-linux-arm64-gnu')!, '--strip-components=1', '-C', at], dir);
    expect(x.code, x.out).toBe(0);
    expect(installed(dir, '@zero-io/core-linux-x64-gnu')).toBe(false);
    const r = sh('node', ['main.mjs'], dir);
    expect(r.code, r.out).not.toBe(0);
    expect(r.out).toContain('this machine needs @zero-io/core-linux-x64-gnu, but node_modules holds @zero-io/core-linux-arm64-gnu');
    expect(r.out).toContain('Run npm install (or pnpm install) on this machine');
  }, 180_000);
});

function manifestOf(tgz: string): Record<string, any> {
  return JSON.parse(spawnSync('tar', ['-xzOf', tgz, 'package/package.json'], { encoding: 'utf8' }).stdout);
}
