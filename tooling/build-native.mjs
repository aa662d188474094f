#!/usr/bin/env node
// Builds native/ with CMake into native/build and copies the addon to
// packages/core/prebuilds/linux-<arch>/zero_io.node. Uses ccache when present, with its cache
// outside the clone (ZERO_IO_CACHE, default ~/.cache/zero-io). Incremental: a second run with no
// source change only re-links nothing.
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, renameSync } from 'node:fs';
import { homedir, cpus } from 'node:os';
import { join } from 'node:path';
import { coreVersion, features, manifest, nodeHeaderArgs, root, rustDepArgs } from './native-deps.mjs';

const args = new Set(process.argv.slice(2));
const buildType = args.has('--debug') ? 'Debug' : 'Release';
const sanitize = args.has('--sanitize');
const buildDir = join(root, 'native', sanitize ? 'build-asan' : 'build');
const cache = process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io');

const die = (m) => { console.error(`build-native: ${m}`); process.exit(1); };
const nodeHeaders = nodeHeaderArgs(die);  // before the long cargo step: a missing uv.h says so at once
const env = { ...process.env };

// The Rust staticlib (native/rust: quiche + the BoringSSL it builds), with its target directory
// in the cache outside the clone: a warm cache makes this a no-op check, a cold machine builds
// it once (~3 min on 2 cores). docs/architecture/0009-tls-stack.md.
const cargoTarget = join(cache, 'cargo-target');
const cargo = process.env.CARGO ?? 'cargo';
try {
  execFileSync(cargo, ['--version'], { stdio: 'ignore' });
} catch {
  console.error('build-native: cargo not found; install Rust >= 1.88 (https://rustup.rs) and retry');
  process.exit(1);
}
const tc = Date.now();
console.log('build-native: cargo build (quiche + BoringSSL, nghttp2, zlib-ng, brotli, zstd staticlib)');
execFileSync(cargo, ['build', '--release', '--locked', '--manifest-path', manifest], {
  stdio: ['ignore', 'inherit', 'inherit'], env: { ...env, CARGO_TARGET_DIR: cargoTarget },
});
console.log(`build-native: cargo done in ${((Date.now() - tc) / 1000).toFixed(1)} s`);

const cmakeArgs = [
  '-S', join(root, 'native'), '-B', buildDir, '-G', 'Ninja',
  `-DCMAKE_BUILD_TYPE=${buildType}`,
  `-DZIO_FEATURES=${features}`,
  `-DZIO_VERSION=${coreVersion}`,
  `-DZIO_SANITIZE=${sanitize ? 'ON' : 'OFF'}`,
  ...nodeHeaders,
  ...rustDepArgs(join(cargoTarget, 'release'), { ...env, CARGO_TARGET_DIR: cargoTarget }, die, cargo),
];
try {
  execFileSync('ccache', ['--version'], { stdio: 'ignore' });
  env.CCACHE_DIR = join(cache, 'ccache');
  mkdirSync(env.CCACHE_DIR, { recursive: true });
  cmakeArgs.push('-DCMAKE_CXX_COMPILER_LAUNCHER=ccache');
} catch { /* no ccache: a plain build */ }

const t0 = Date.now();
console.log(`build-native: configuring (${buildType}, features=${features})`);
execFileSync('cmake', cmakeArgs, { stdio: ['ignore', 'ignore', 'inherit'], env });
console.log('build-native: compiling');
// The sanitizer build exists for the native unit tests only (an ASan addon cannot load into node).
const target = sanitize ? ['--target', 'zio_native_tests'] : [];
execFileSync('cmake', ['--build', buildDir, '-j', String(Math.max(1, cpus().length)), ...target], {
  stdio: 'inherit', env,
});
if (!sanitize) {
  const out = join(root, 'packages', 'core', 'prebuilds', `linux-${process.arch}`);
  mkdirSync(out, { recursive: true });
  // Copied beside, then renamed over: a process that has the old addon loaded keeps its mapping
  // (another inode); writing into the loaded file would crash it.
  copyFileSync(join(buildDir, 'zero_io.node'), join(out, `zero_io.node.${process.pid}.tmp`));
  renameSync(join(out, `zero_io.node.${process.pid}.tmp`), join(out, 'zero_io.node'));
}
console.log(`build-native: done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
