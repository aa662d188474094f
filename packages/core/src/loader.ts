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
import { existsSync, readdirSync } from 'node:fs';
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
  const override = process.env.ZERO_IO_NATIVE_PATH || process.env.ZERO_IO_ADDON;
  const overrideName = process.env.ZERO_IO_NATIVE_PATH ? 'ZERO_IO_NATIVE_PATH' : 'ZERO_IO_ADDON';
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
    fail(`the zero-io engine package ${pkg} is not installed. It is an optional dependency of @zero-io/core, so it was ` +
      'skipped if optional dependencies were (npm --omit=optional or --no-optional, pnpm --no-optional, ' +
      'or a lockfile made that way): reinstall without that flag (npm install @zero-io/core). ' +
      'In the zero-io repository, build it instead: pnpm build:native.');
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
