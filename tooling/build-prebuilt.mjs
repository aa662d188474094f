#!/usr/bin/env node
// Builds the engine that npm users get (issue 14): the whole of native/ — the Rust staticlib
// (quiche + BoringSSL, nghttp2, zlib-ng, brotli, zstd), liburing and the C++ engine — with one
// toolchain, zig (PyPI `ziglang`) and cargo-zigbuild (PyPI), for glibc 2.28 on x86_64 and
// aarch64. zig links its own libc++/libunwind statically, so the binary needs no libstdc++ and no
// libgcc_s. The result is stripped into packages/core-linux-<arch>-gnu/zero_io.node; the debug
// symbols stay beside the build (native/build-zig-<arch>/zero_io.node.debug, linked by
// .gnu_debuglink). docs/architecture/0022-prebuilt-engines.md says why this toolchain.
//
//   node tooling/build-prebuilt.mjs [--arch x64|arm64|all] [--check]
//
// --check only runs the glibc floor check on what is there. Caches (the zig venv, cargo's
// target directory, ccache) live outside the clone in ZERO_IO_CACHE (default ~/.cache/zero-io).
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { join } from 'node:path';
import { coreVersion, features, manifest, nodeHeaderArgs, root, rustDepArgs } from './native-deps.mjs';

const argv = process.argv.slice(2);
const argOf = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt; };
const arches = argOf('--arch', 'all') === 'all' ? ['x64', 'arm64'] : [argOf('--arch')];
const cache = process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io');
const GLIBC_FLOOR = '2.28';
const ZIG_VERSION = '0.17.1';        // PyPI ziglang (pinned: the C++ ABI of the binary is its libc++)
const ZIGBUILD_VERSION = '0.24.1';   // PyPI cargo-zigbuild

const TARGETS = {
  x64: { rust: 'x86_64-unknown-linux-gnu', zig: `x86_64-linux-gnu.${GLIBC_FLOOR}`, multiarch: 'x86_64-linux-gnu' },
  arm64: { rust: 'aarch64-unknown-linux-gnu', zig: `aarch64-linux-gnu.${GLIBC_FLOOR}`, multiarch: 'aarch64-linux-gnu' },
};
const log = (m) => console.log(`build-prebuilt: ${m}`);
const die = (m) => { console.error(`build-prebuilt: ${m}`); process.exit(1); };
const run = (cmd, args, opts = {}) => execFileSync(cmd, args, { stdio: ['ignore', 'inherit', 'inherit'], ...opts });

for (const a of arches) if (!TARGETS[a]) die(`unknown --arch ${a} (x64, arm64 or all)`);

function packageDir(arch) {
  return join(root, 'packages', `core-linux-${arch}-gnu`);
}

function floorCheck(arch) {
  const out = join(packageDir(arch), 'zero_io.node');
  run(process.execPath, [join(root, 'tooling', 'glibc-floor.mjs'), '--floor', GLIBC_FLOOR, out]);
}

if (argv.includes('--check')) {
  for (const a of arches) floorCheck(a);
  process.exit(0);
}

// 1. The toolchain: zig and cargo-zigbuild from PyPI in a venv outside the clone, and a `zig`
//    on PATH (cargo-zigbuild looks for one) that runs the venv's.
const venv = join(cache, 'venv-zig');
const py = join(venv, 'bin', 'python');
const have = (mod, ver) => {
  try {
    return execFileSync(py, ['-m', 'pip', 'show', mod], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .includes(`Version: ${ver}\n`);
  } catch { return false; }
};
if (!have('ziglang', ZIG_VERSION) || !have('cargo-zigbuild', ZIGBUILD_VERSION)) {
  log(`installing ziglang ${ZIG_VERSION} and cargo-zigbuild ${ZIGBUILD_VERSION} into ${venv}`);
  if (!existsSync(py)) run(existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-m', 'venv', venv]);
  run(py, ['-m', 'pip', 'install', '-q', '--disable-pip-version-check', '--no-input',
    `ziglang==${ZIG_VERSION}`, `cargo-zigbuild==${ZIGBUILD_VERSION}`]);
}
const bin = join(cache, 'zig-bin');
mkdirSync(bin, { recursive: true });
const shim = (name, body) => {
  const p = join(bin, name);
  const text = `#!/bin/sh\n${body}\n`;
  if (!existsSync(p) || readFileSync(p, 'utf8') !== text) { writeFileSync(p, text); chmodSync(p, 0o755); }
  return p;
};
shim('zig', `exec "${py}" -m ziglang "$@"`);
const env = {
  ...process.env,
  PATH: `${bin}:${join(venv, 'bin')}:${join(homedir(), '.cargo', 'bin')}:${process.env.PATH}`,
  CARGO_TARGET_DIR: join(cache, 'cargo-target'),
};
const zigVersion = execFileSync(join(bin, 'zig'), ['version'], { encoding: 'utf8' }).trim();

const nodeHeaders = nodeHeaderArgs(die);

for (const arch of arches) {
  const t = TARGETS[arch];
  const t0 = Date.now();
  // Rust's std for the target (rustup), and liburing for it (Debian's multiarch liburing-dev:
  // built without libc calls beyond calloc/free, so any glibc works).
  const installed = execFileSync('rustup', ['target', 'list', '--installed'], { encoding: 'utf8', env });
  if (!installed.split('\n').includes(t.rust)) {
    log(`rustup target add ${t.rust}`);
    run('rustup', ['target', 'add', t.rust], { env });
  }
  const uringLib = `/usr/lib/${t.multiarch}/liburing.a`;
  if (!existsSync(uringLib)) {
    die(`${uringLib} is missing: apt-get install liburing-dev:${arch === 'x64' ? 'amd64' : 'arm64'} ` +
      `(for arm64 first: dpkg --add-architecture arm64 && apt-get update; tooling/bootstrap.sh does this)`);
  }

  // 2. The Rust staticlib for <triple>.2.28: cargo-zigbuild hands the glibc suffix to zig only,
  //    sets CC/CXX/linker for the target and a CMake toolchain file that boring-sys uses.
  log(`${arch}: cargo zigbuild --target ${t.rust}.${GLIBC_FLOOR} (zig ${zigVersion})`);
  const tc = Date.now();
  run('cargo', ['zigbuild', '--release', '--locked', '--manifest-path', manifest, '--target', `${t.rust}.${GLIBC_FLOOR}`], { env });
  log(`${arch}: cargo done in ${((Date.now() - tc) / 1000).toFixed(1)} s`);
  const rel = join(env.CARGO_TARGET_DIR, t.rust, 'release');

  // 3. liburing's headers alone in a private directory: adding /usr/include to a zig build would
  //    put Debian's glibc 2.36 headers over zig's 2.28 ones.
  const buildDir = join(root, 'native', `build-zig-${arch}`);
  const uringInclude = join(buildDir, 'uring-include');
  rmSync(uringInclude, { recursive: true, force: true });
  mkdirSync(uringInclude, { recursive: true });
  copyFileSync('/usr/include/liburing.h', join(uringInclude, 'liburing.h'));
  cpSync('/usr/include/liburing', join(uringInclude, 'liburing'), { recursive: true });

  // 4. The C++ engine with zig c++ (CMake takes one program as the compiler: a shim per target).
  const cxx = shim(`zcxx-${arch}`, `exec "${py}" -m ziglang c++ -target ${t.zig} "$@"`);
  const cmakeArgs = [
    '-S', join(root, 'native'), '-B', buildDir, '-G', 'Ninja',
    '-DCMAKE_BUILD_TYPE=Release', '-DCMAKE_CXX_FLAGS=-g',
    `-DCMAKE_CXX_COMPILER=${cxx}`,
    '-DCMAKE_SYSTEM_NAME=Linux', `-DCMAKE_SYSTEM_PROCESSOR=${arch === 'x64' ? 'x86_64' : 'aarch64'}`,
    '-DZIO_ZIG=ON', '-DZIO_BUILD_TESTS=OFF',
    `-DZIO_FEATURES=${features}`, `-DZIO_VERSION=${coreVersion}`,
    `-DZIO_URING_INCLUDE=${uringInclude}`, `-DZIO_URING_LIB=${uringLib}`,
    ...nodeHeaders,
    ...rustDepArgs(rel, env, die),
  ];
  try {
    execFileSync('ccache', ['--version'], { stdio: 'ignore' });
    env.CCACHE_DIR = join(cache, 'ccache');
    // The shim's path and text do not change with zig's version; its version does.
    env.CCACHE_COMPILERCHECK = `string:zig-${zigVersion}`;
    // Hits across clones (CI builds a fresh one each time): paths relative to the clone, and the
    // build directory left out of the hash (-g would put it in).
    env.CCACHE_BASEDIR = root;
    env.CCACHE_NOHASHDIR = '1';
    cmakeArgs.push('-DCMAKE_CXX_COMPILER_LAUNCHER=ccache');
  } catch { /* no ccache: a plain build */ }
  log(`${arch}: configuring the engine (zig c++ -target ${t.zig})`);
  run('cmake', cmakeArgs, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  run('cmake', ['--build', buildDir, '-j', String(Math.max(1, cpus().length)), '--target', 'zero_io'], { env });

  // 5. Strip into the platform package, debug symbols beside the build.
  const built = join(buildDir, 'zero_io.node');
  const debug = join(buildDir, 'zero_io.node.debug');
  const objcopy = process.env.OBJCOPY ?? 'llvm-objcopy';
  run(objcopy, ['--only-keep-debug', built, debug]);
  const out = join(packageDir(arch), 'zero_io.node');
  const tmp = `${out}.${process.pid}.tmp`;
  run(objcopy, ['--strip-all', `--add-gnu-debuglink=${debug}`, built, tmp]);
  renameSync(tmp, out);
  const mb = (f) => (statSync(f).size / 1048576).toFixed(1);
  log(`${arch}: ${out}: ${mb(out)} MB stripped (${mb(built)} MB with symbols; debug file ${mb(debug)} MB) ` +
    `in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  floorCheck(arch);
}
