// The loader (issue 14): where it looks for the engine and what it says when it cannot load it.
// Each case is a fresh Node process importing a copy of @zero-io/core (dist + package.json, no
// local build) from a scratch node_modules, with the platform packages it needs faked or real.
import { spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { checkEngineFile, explainLoadError, platformPackage } from '../src/loader.js';

const core = fileURLToPath(new URL('..', import.meta.url));
const engine = join(core, 'prebuilds', `linux-${process.arch}`, 'zero_io.node');
const dirs: string[] = [];
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

/** A scratch project whose node_modules holds a copy of core (without its local build). */
function project(version?: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'zio-loader-'));
  dirs.push(dir);
  const at = join(dir, 'node_modules', '@zero-io', 'core');
  mkdirSync(at, { recursive: true });
  cpSync(join(core, 'dist'), join(at, 'dist'), { recursive: true });
  const pkg = JSON.parse(readFileSync(join(core, 'package.json'), 'utf8'));
  if (version) pkg.version = version;
  writeFileSync(join(at, 'package.json'), JSON.stringify(pkg));
  writeFileSync(join(dir, 'main.mjs'), "import { features } from '@zero-io/core';\ntry { console.log('loaded', features().join(',')); } catch (e) { console.log(e.kind + ': ' + e.message); }\n");
  return dir;
}

/** A platform package in the project: the real engine, or a file that is not one. */
function platform(dir: string, name: string, file: string | Buffer): void {
  const at = join(dir, 'node_modules', ...name.split('/'));
  mkdirSync(at, { recursive: true });
  writeFileSync(join(at, 'package.json'), JSON.stringify({ name, version: '0.1.0' }));
  writeFileSync(join(at, 'zero_io.node'), file);
}

function run(dir: string, env: Record<string, string> = {}, args: string[] = []): string {
  const clean = { ...process.env };
  delete clean.ZERO_IO_NATIVE_PATH;
  delete clean.ZERO_IO_ADDON;
  // pnpm exec points NODE_PATH into the workspace, where the platform packages are linked.
  delete clean.NODE_PATH;
  const r = spawnSync(process.execPath, [...args, join(dir, 'main.mjs')], { encoding: 'utf8', timeout: 30_000, cwd: dir, env: { ...clean, ...env } });
  return (r.stdout + r.stderr).trim();
}

describe('the loader', () => {
  it('loads the platform package when there is no local build', () => {
    const dir = project();
    platform(dir, platformPackage(), readFileSync(engine));
    expect(run(dir)).toMatch(/^loaded (\w+,)*tcp(,|$)/);
  });

  it('says the optional dependency was skipped when the platform package is missing', () => {
    const out = run(project());
    expect(out).toContain(`NotSupportedOnPlatform: the zero-io engine package ${platformPackage()} is not installed`);
    expect(out).toContain('--omit=optional');
  });

  it("says node_modules came from another platform when only another platform's package is there", () => {
    const dir = project();
    const other = platformPackage(process.arch === 'x64' ? 'arm64' : 'x64');
    platform(dir, other, 'not for this machine');
    const out = run(dir);
    expect(out).toContain(`but node_modules holds ${other}`);
    expect(out).toContain('installed on another platform');
  });

  it('names a binary that is not an engine for this platform, and an override that does not exist', () => {
    const dir = project();
    platform(dir, platformPackage(), 'this is not an ELF file at all, just text that is long enough');
    expect(run(dir)).toContain(`is not a native engine for linux-${process.arch}`);
    expect(run(project(), { ZERO_IO_NATIVE_PATH: '/nonexistent/zero_io.node' })).toContain('ZERO_IO_NATIVE_PATH is set to /nonexistent/zero_io.node, which does not exist');
    expect(run(project(), { ZERO_IO_NATIVE_PATH: engine })).toMatch(/^loaded (\w+,)*tcp(,|$)/);
  });

  it('names the CPU an engine was built for, and a truncated engine, before dlopen sees them (no misleading "No such file", no SIGBUS)', () => {
    const other = process.arch === 'x64' ? 'arm64' : 'x64';
    const foreign = join(core, '..', `core-linux-${other}-gnu`, 'zero_io.node');
    const dir = project();
    platform(dir, platformPackage(), readFileSync(foreign));
    const out = run(dir);
    expect(out).toContain(`is not a native engine for linux-${process.arch}: it was built for ${other}`);
    expect(out).toContain('Reinstall on this machine');
    expect(run(project(), { ZERO_IO_NATIVE_PATH: foreign })).toContain('Point ZERO_IO_NATIVE_PATH at a zero_io.node built for this machine');
    const cut = project();
    platform(cut, platformPackage(), readFileSync(engine).subarray(0, 100_000));
    const o2 = run(cut);
    expect(o2).toMatch(/is damaged: 100000 bytes where its header says at least \d+/);
    expect(checkEngineFile(engine)).toBeNull();
    expect(checkEngineFile(join(core, 'package.json'))).toContain('not an ELF shared object');
  });

  it('refuses an engine of another version than core, and says so under --no-addons', () => {
    const dir = project('9.9.9');
    platform(dir, platformPackage(), readFileSync(engine));
    expect(run(dir)).toContain('is version 0.1.0, but @zero-io/core is 9.9.9: they are released together');
    const d2 = project();
    platform(d2, platformPackage(), readFileSync(engine));
    expect(run(d2, {}, ['--no-addons'])).toContain('started with --no-addons');
  });

  it('explains an engine that needs a newer glibc', () => {
    const m = explainLoadError('/x/zero_io.node', new Error("/lib/x86_64-linux-gnu/libc.so.6: version `GLIBC_2.34' not found (required by /x/zero_io.node)"));
    expect(m).toContain('needs glibc 2.34, newer than this system has');
    expect(m).toContain('glibc 2.28 or later');
  });
});
