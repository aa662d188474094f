// The packed-tarball install (issue 14, "Show"): every public package packed with pnpm, no
// manifest left with a workspace: or catalog: range, then installed from the tarballs in an
// empty directory outside the repository — with npm and with pnpm 10, npm_config_* variables
// cleared, and a PATH that holds no compiler (no gcc, cc, c++, cmake, cargo) — and used there: a
// TCP echo, a TLS echo, an HTTP request and a WebSocket echo. (The engine rides in core's
// tarball today; platform packages come next.) Run once per Node version: the backend does not
// change what is installed.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const PACKAGES = ['core', 'tcp', 'http', 'websocket', 'quic'];
const TOOLS = ['node', 'npm', 'npx', 'pnpm', 'corepack', 'sh', 'bash', 'env', 'tar', 'gzip', 'openssl'];
let work = '';
let tarballs: string[] = [];
let cleanPath = '';

/** The environment of a user's shell: no npm_config_* from the test runner, no compiler on PATH. */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (/^npm_|^PNPM_|^ZERO_IO_|^VITEST|^NODE_OPTIONS$/i.test(k)) continue;
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
console.log(out.join(', '));
await h.shutdown();
io.shutdown();
`;

describe.skipIf(process.env.ZERO_IO_BACKEND === 'epoll')('installed from packed tarballs, outside the repository, with no compiler', () => {
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
  }, 180_000);
  afterAll(() => { if (work) rmSync(work, { recursive: true, force: true }); });

  it('packs every public package with no workspace: or catalog: range left, and the PATH has no compiler', () => {
    expect(tarballs).toHaveLength(PACKAGES.length);
    for (const t of tarballs) {
      const manifest = spawnSync('tar', ['-xzOf', t, 'package/package.json'], { encoding: 'utf8' }).stdout;
      expect(manifest, t).not.toMatch(/"(workspace|catalog):/);
      expect(JSON.parse(manifest).scripts?.install ?? JSON.parse(manifest).scripts?.postinstall, t).toBeUndefined();
    }
    for (const c of ['gcc', 'cc', 'c++', 'cmake', 'cargo']) {
      expect(spawnSync('bash', ['-c', `command -v ${c}`], { env: userEnv() }).status, c).not.toBe(0);
    }
  });

  it('installs with npm and runs a TCP, TLS, HTTP, WebSocket and QUIC echo', () => {
    const app = join(work, 'npm-app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    writeFileSync(join(app, 'main.mjs'), SMOKE);
    const i = sh('npm', ['install', '--no-audit', '--no-fund', '--offline', ...tarballs], app);
    expect(i.code, i.out).toBe(0);
    const r = sh('node', ['main.mjs'], app);
    expect(r.out.trim()).toBe('tcp ok, tls ok, http ok, ws ok, quic ok');
  }, 180_000);

  it('installs with pnpm 10 and runs the same', () => {
    const app = join(work, 'pnpm-app');
    mkdirSync(app);
    // The pnpm 10 the repository pins (corepack has it; a user's project names its own).
    const pinned = JSON.parse(readFileSync(join(repo, 'package.json'), 'utf8')).packageManager as string;
    expect(pinned).toMatch(/^pnpm@10\./);
    // From the registry pnpm would resolve http's and websocket's dependency on core there; from
    // tarballs it needs to be told that core (and tcp) are these files.
    const overrides = Object.fromEntries(tarballs.map((t) => {
      const name = JSON.parse(spawnSync('tar', ['-xzOf', t, 'package/package.json'], { encoding: 'utf8' }).stdout).name as string;
      return [name, `file:${t}`];
    }));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module', packageManager: pinned, pnpm: { overrides } }));
    writeFileSync(join(app, 'main.mjs'), SMOKE);
    const i = sh('pnpm', ['add', '--offline', '--store-dir', join(work, 'store'), ...tarballs], app);
    expect(i.code, i.out).toBe(0);
    const r = sh('node', ['main.mjs'], app);
    expect(r.out.trim()).toBe('tcp ok, tls ok, http ok, ws ok, quic ok');
  }, 180_000);
});
