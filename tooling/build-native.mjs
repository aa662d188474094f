#!/usr/bin/env node
// Builds native/ with CMake into native/build and copies the addon to
// packages/core/prebuilds/linux-<arch>/zero_io.node. Uses ccache when present, with its cache
// outside the clone (ZERO_IO_CACHE, default ~/.cache/zero-io). Incremental: a second run with no
// source change only re-links nothing.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { homedir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(join(root, 'package.json'));
const args = new Set(process.argv.slice(2));
const buildType = args.has('--debug') ? 'Debug' : 'Release';
const sanitize = args.has('--sanitize');
const buildDir = join(root, 'native', sanitize ? 'build-asan' : 'build');
const features = process.env.ZERO_IO_FEATURES ?? 'quic,tcp,http,websocket';
const cache = process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io');

const napiInclude = require('node-api-headers').include_dir;
const addonApiInclude = require('node-addon-api').include_dir.replace(/^"|"$/g, '');
// uv.h: Node's own headers when the install has them, else Debian's libuv1-dev (same ABI, 1.x).
const nodeInclude = resolve(dirname(process.execPath), '..', 'include', 'node');
const uvInclude = existsSync(join(nodeInclude, 'uv.h')) ? nodeInclude : '/usr/include';
if (!existsSync(join(uvInclude, 'uv.h'))) {
  console.error('build-native: uv.h not found; install libuv1-dev (apt-get install libuv1-dev)');
  process.exit(1);
}

const env = { ...process.env };

// The Rust staticlib (native/rust: quiche + the BoringSSL it builds), with its target directory
// in the cache outside the clone: a warm cache makes this a no-op check, a cold machine builds
// it once (~3 min on 2 cores). docs/architecture/0009-tls-stack.md.
const cargoTarget = join(cache, 'cargo-target');
const manifest = join(root, 'native', 'rust', 'Cargo.toml');
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
const rustLib = join(cargoTarget, 'release', 'libzero_io_rs.a');
const meta = JSON.parse(execFileSync(cargo, ['metadata', '--format-version', '1', '--locked', '--manifest-path', manifest], {
  env: { ...env, CARGO_TARGET_DIR: cargoTarget }, maxBuffer: 64 << 20,
}).toString());
const boring = meta.packages.find((p) => p.name === 'boring-sys');
if (!boring) {
  console.error('build-native: boring-sys not in the cargo dependency graph (quiche features changed?)');
  process.exit(1);
}
const boringInclude = join(dirname(boring.manifest_path), 'deps', 'boringssl', 'include');
const quiche = meta.packages.find((p) => p.name === 'quiche');
const quicheInclude = join(dirname(quiche.manifest_path), 'include');
// Headers a -sys crate's build script installs into its OUT_DIR (nghttp2 with its generated
// nghttp2ver.h, zlib-ng with its generated zlib-ng.h); the newest build is this one's.
const buildRoot = join(cargoTarget, 'release', 'build');
function outInclude(crate, sub, marker) {
  const dir = readdirSync(buildRoot)
    .filter((d) => d.startsWith(crate + '-'))
    .map((d) => join(buildRoot, d, 'out', sub))
    .filter((d) => existsSync(join(d, marker)))
    .sort((a, b) => statSync(join(b, marker)).mtimeMs - statSync(join(a, marker)).mtimeMs)[0];
  if (!dir) {
    console.error(`build-native: ${marker} not found under ${buildRoot} (${crate} did not build?)`);
    process.exit(1);
  }
  return dir;
}
// Headers shipped in a crate's sources.
function crateInclude(crate, sub, marker) {
  const pkg = meta.packages.find((p) => p.name === crate);
  const dir = pkg && join(dirname(pkg.manifest_path), sub);
  if (!dir || !existsSync(join(dir, marker))) {
    console.error(`build-native: ${crate}'s ${marker} not found (is it in native/rust/Cargo.toml?)`);
    process.exit(1);
  }
  return dir;
}
const nghttp2Include = outInclude('libnghttp2-sys', join('i', 'include'), join('nghttp2', 'nghttp2ver.h'));
const codecIncludes = [
  outInclude('libz-ng-sys', 'include', 'zlib-ng.h'),
  crateInclude('brotlic-sys', join('brotli', 'c', 'include'), join('brotli', 'encode.h')),
  crateInclude('zstd-sys', join('zstd', 'lib'), 'zstd.h'),
];

const cmakeArgs = [
  '-S', join(root, 'native'), '-B', buildDir, '-G', 'Ninja',
  `-DCMAKE_BUILD_TYPE=${buildType}`,
  `-DZIO_FEATURES=${features}`,
  `-DZIO_VERSION=${JSON.parse(readFileSync(join(root, 'packages', 'core', 'package.json'), 'utf8')).version}`,
  `-DZIO_NODE_API_INCLUDE=${napiInclude}`,
  `-DZIO_NODE_ADDON_API_INCLUDE=${addonApiInclude}`,
  `-DZIO_UV_INCLUDE=${uvInclude}`,
  `-DZIO_SANITIZE=${sanitize ? 'ON' : 'OFF'}`,
  `-DZIO_RUST_LIB=${rustLib}`,
  `-DZIO_BORINGSSL_INCLUDE=${boringInclude}`,
  `-DZIO_NGHTTP2_INCLUDE=${nghttp2Include}`,
  `-DZIO_QUICHE_INCLUDE=${quicheInclude}`,
  `-DZIO_CODEC_INCLUDES=${codecIncludes.join(';')}`,
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
