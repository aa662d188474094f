/**
 * Finding and loading the native engine, and saying exactly why when it cannot be loaded
 * (issue 14, the loader). Resolution order:
 *   1. `ZERO_IO_NATIVE_PATH` (a path to a `zero_io.node`; `ZERO_IO_ADDON` is its older name);
 *   2. a local build: the package's `prebuilds/linux-<arch>/zero_io.node` (the monorepo);
 *   3. the platform package `@zero-io/core-linux-<arch>-<gnu|musl>` (an optional dependency).
 * The engine's version must be core's. Each failure is one IoError naming the cause and the fix.
 * @internal
 * @module
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IoError } from './errors.js';

const ARCHES = ['x64', 'arm64'] as const;

/** glibc or musl, without process.report (which can hang on some systems): musl's loader is a file. */
export function detectLibc(): 'glibc' | 'musl' {
  try {
    if (readdirSync('/lib').some((f) => f.startsWith('ld-musl-'))) return 'musl';
  } catch {
    // no /lib: not a usual Linux layout; glibc is the likelier
  }
  return 'glibc';
}

/** The platform package for this process, e.g. @zero-io/core-linux-x64-gnu. */
export function platformPackage(arch: string = process.arch, libc: 'glibc' | 'musl' = detectLibc()): string {
  return `@zero-io/core-linux-${arch}-${libc === 'musl' ? 'musl' : 'gnu'}`;
}

function fail(message: string): never {
  throw new IoError('NotSupportedOnPlatform', message, { platform: `${process.platform}-${process.arch}` });
}

/** Why dlopen refused a binary, with the fix (exported for its unit test). */
export function explainLoadError(path: string, e: unknown): string {
  const msg = String((e as Error)?.message ?? e);
  const code = (e as { code?: string })?.code;
  if (code === 'ERR_DLOPEN_DISABLED' || /--no-addons/.test(msg)) {
    return 'Node.js was started with --no-addons (or NODE_OPTIONS holds it): the zero-io engine is a native addon. ' +
      'Remove the flag.';
  }
  const glibc = /version [`']GLIBC(XX)?_([\d.]+)['`] not found/.exec(msg);
  if (glibc) {
    return `the engine at ${path} needs ${glibc[1] ? 'libstdc++ (GLIBCXX_' : 'glibc '}${glibc[2]}${glibc[1] ? ')' : ''}, ` +
      'newer than this system has (dlopen: ' + msg.trim() + '). Published engines need glibc 2.28 or later ' +
      '(RHEL 8, Debian 10, Ubuntu 18.10 and newer); on an older system build the engine from source.';
  }
  if (/wrong ELF class|invalid ELF header|ELF file|Exec format error|not a dynamic executable|file too short/i.test(msg)) {
    return `${path} is not a native engine for ${process.platform}-${process.arch} (dlopen: ${msg.trim()}): ` +
      'it was built for another platform, or the file is damaged. Reinstall on this machine (npm install / pnpm install), ' +
      'or rebuild it (pnpm build:native in the repository).';
  }
  return `the engine at ${path} could not be loaded: ${msg.trim()}`;
}

const MACHINES: Record<number, string> = { 0x3e: 'x64', 0xb7: 'arm64', 0x03: 'ia32', 0x28: 'arm', 0x08: 'mips', 0x15: 'ppc64', 0xf3: 'riscv64', 0x16: 's390x' };

/**
 * Reads the ELF header before dlopen sees the file (exported for its unit test): a binary for
 * another CPU makes glibc's dlopen say "No such file or directory", and a truncated one can
 * kill the process with SIGBUS once mapped. Returns why the file is not an engine for this
 * process, or null.
 */
export function checkEngineFile(path: string, arch: string = process.arch): string | null {
  let fd = -1;
  try {
    fd = openSync(path, 'r');
    const size = fstatSync(fd).size;
    const h = Buffer.alloc(64);
    const n = readSync(fd, h, 0, 64, 0);
    if (n < 64 || h.readUInt32BE(0) !== 0x7f454c46) return `${path} is not a native engine for linux-${arch} (not an ELF shared object)`;
    if (h[4] !== 2 || h[5] !== 1) return `${path} is not a native engine for linux-${arch} (not a 64-bit little-endian ELF file)`;
    const machine = h.readUInt16LE(18);
    const built = MACHINES[machine] ?? `ELF machine 0x${machine.toString(16)}`;
    if (built !== arch) return `${path} is not a native engine for linux-${arch}: it was built for ${built}`;
    // The section header table is the file's last part: a file that ends before it was cut short.
    const end = Number(h.readBigUInt64LE(40)) + h.readUInt16LE(58) * h.readUInt16LE(60);
    if (end > size) return `${path} is damaged: ${size} bytes where its header says at least ${end} (an interrupted copy or download?)`;
    return null;
  } catch (e) {
    return `${path} could not be read: ${String((e as Error).message ?? e)}`;
  } finally {
    if (fd >= 0) closeSync(fd);
  }
}

/** Finds and loads the engine; throws one IoError with the cause and the fix. */
export function resolveEngine<T>(): T {
  if (process.platform !== 'linux' || !(ARCHES as readonly string[]).includes(process.arch)) {
    fail(`zero-io runs on Linux (x86-64 and arm64); this is ${process.platform}-${process.arch}. ` +
      'Run it on Linux (a VM or a container with io_uring allowed), or use node:net here.');
  }
  if (process.execArgv.includes('--no-addons') || /(^|\s)--no-addons(\s|$)/.test(process.env.NODE_OPTIONS ?? '')) {
    fail(explainLoadError('', { code: 'ERR_DLOPEN_DISABLED', message: '--no-addons' }));
  }
  const here = dirname(fileURLToPath(import.meta.url));
  const require = createRequire(import.meta.url);
  const pkg = platformPackage();
  // ZERO_IO_ADDON: the test suite's hook for stand-in engines (any module, not checked as ELF).
  const override = process.env.ZERO_IO_ADDON || process.env.ZERO_IO_NATIVE_PATH;
  const overrideName = process.env.ZERO_IO_ADDON ? 'ZERO_IO_ADDON' : 'ZERO_IO_NATIVE_PATH';
  let path: string | undefined;
  if (override) {
    if (!existsSync(override)) fail(`${overrideName} is set to ${override}, which does not exist: point it at a zero_io.node, or unset it.`);
    path = override;
  } else {
    const local = join(here, '..', 'prebuilds', `linux-${process.arch}`, 'zero_io.node');
    if (existsSync(local)) path = local;
    else {
      try {
        path = require.resolve(`${pkg}/zero_io.node`);
      } catch {
        // not installed: said below
      }
    }
  }
  if (!path && detectLibc() === 'musl') {
    fail('no zero-io engine is published for musl libc (Alpine Linux) yet: only glibc >= 2.28 (x86-64 and arm64). ' +
      'Use a glibc-based image (for example node:22-bookworm-slim), or build the engine from source in the zero-io ' +
      'repository and point ZERO_IO_NATIVE_PATH at it.');
  }
  if (!path) {
    const others = ARCHES.flatMap((a) => (['glibc', 'musl'] as const).map((l) => platformPackage(a, l)))
      .filter((p) => p !== pkg && (() => { try { require.resolve(`${p}/package.json`); return true; } catch { return false; } })());
    if (others.length > 0) {
      fail(`this machine needs ${pkg}, but node_modules holds ${others.join(', ')}: it was installed on another platform ` +
        '(copied in, or a Docker build that copies node_modules from the host). Run npm install (or pnpm install) on this machine.');
    }
    fail(`the zero-io engine package ${pkg} is not installed. It is an optional dependency of @zero-io/core, and ` +
      'optional dependencies were skipped (npm --omit=optional or --no-optional, pnpm --no-optional), or the lockfile ' +
      'was made on another platform (an npm bug leaves other platforms\' optional packages out of it): reinstall without ' +
      'the flag (npm install @zero-io/core), or delete package-lock.json and node_modules and run npm install. ' +
      'In the zero-io repository, build it instead: pnpm build:native.');
  }
  if (overrideName !== 'ZERO_IO_ADDON') {
    const bad = checkEngineFile(path);
    if (bad) {
      fail(`${bad}. ` + (override
        ? 'Point ZERO_IO_NATIVE_PATH at a zero_io.node built for this machine, or unset it.'
        : 'Reinstall on this machine (npm install / pnpm install), or rebuild it (pnpm build:native in the repository).'));
    }
  }
  let addon: T & { version?: () => string };
  try {
    addon = require(path) as T & { version?: () => string };
  } catch (e) {
    fail(explainLoadError(path, e));
  }
  const want = (require('../package.json') as { version: string }).version;
  const have = typeof addon.version === 'function' ? addon.version() : undefined;
  if (have !== undefined && have !== '0.0.0' && have !== want) {
    fail(`the engine at ${path} is version ${have}, but @zero-io/core is ${want}: they are released together. ` +
      `Install matching versions (npm install @zero-io/core@${want}), or rebuild the engine (pnpm build:native).`);
  }
  return addon;
}
