// The engine's build inputs, shared by build-native.mjs (the repository's gcc build) and
// build-prebuilt.mjs (the zig builds npm users get): the Node-API and libuv headers, and the
// -DZIO_* CMake arguments that point at the Rust staticlib and at the headers its crates ship
// or generate. `die(message)` reports a missing piece and exits.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
export const manifest = join(root, 'native', 'rust', 'Cargo.toml');
export const features = process.env.ZERO_IO_FEATURES ?? 'quic,tcp,http,websocket';
export const coreVersion = JSON.parse(readFileSync(join(root, 'packages', 'core', 'package.json'), 'utf8')).version;

/** -DZIO_* for the Node-API, node-addon-api and libuv headers (uv.h: Node's own, else Debian's libuv1-dev). */
export function nodeHeaderArgs(die) {
  const require = createRequire(join(root, 'package.json'));
  const napiInclude = require('node-api-headers').include_dir;
  const addonApiInclude = require('node-addon-api').include_dir.replace(/^"|"$/g, '');
  const nodeInclude = resolve(dirname(process.execPath), '..', 'include', 'node');
  const uvInclude = existsSync(join(nodeInclude, 'uv.h')) ? nodeInclude : '/usr/include';
  if (!existsSync(join(uvInclude, 'uv.h'))) die('uv.h not found; install libuv1-dev (apt-get install libuv1-dev)');
  return [`-DZIO_NODE_API_INCLUDE=${napiInclude}`, `-DZIO_NODE_ADDON_API_INCLUDE=${addonApiInclude}`, `-DZIO_UV_INCLUDE=${uvInclude}`];
}

/**
 * -DZIO_* for the Rust staticlib built into `releaseDir` (cargo's target/<triple>/release) and
 * the headers of its crates: BoringSSL and quiche from their sources, nghttp2 and zlib-ng from
 * what their build scripts generate in OUT_DIR (the newest build is this one's), brotli and zstd
 * from their sources.
 */
export function rustDepArgs(releaseDir, env, die, cargo = 'cargo') {
  const meta = JSON.parse(execFileSync(cargo, ['metadata', '--format-version', '1', '--locked', '--manifest-path', manifest],
    { env, maxBuffer: 64 << 20 }).toString());
  const crateDir = (name) => {
    const p = meta.packages.find((x) => x.name === name);
    if (!p) die(`${name} is not in the cargo dependency graph (is it in native/rust/Cargo.toml?)`);
    return dirname(p.manifest_path);
  };
  const crateInclude = (crate, sub, marker) => {
    const dir = join(crateDir(crate), sub);
    if (!existsSync(join(dir, marker))) die(`${crate}'s ${marker} not found under ${dir}`);
    return dir;
  };
  const buildRoot = join(releaseDir, 'build');
  const outInclude = (crate, sub, marker) => {
    const dir = readdirSync(buildRoot).filter((d) => d.startsWith(crate + '-'))
      .map((d) => join(buildRoot, d, 'out', sub)).filter((d) => existsSync(join(d, marker)))
      .sort((a, b) => statSync(join(b, marker)).mtimeMs - statSync(join(a, marker)).mtimeMs)[0];
    if (!dir) die(`${marker} not found under ${buildRoot} (${crate} did not build?)`);
    return dir;
  };
  return [
    `-DZIO_RUST_LIB=${join(releaseDir, 'libzero_io_rs.a')}`,
    `-DZIO_BORINGSSL_INCLUDE=${crateInclude('boring-sys', join('deps', 'boringssl', 'include'), join('openssl', 'ssl.h'))}`,
    `-DZIO_QUICHE_INCLUDE=${crateInclude('quiche', 'include', 'quiche.h')}`,
    `-DZIO_NGHTTP2_INCLUDE=${outInclude('libnghttp2-sys', join('i', 'include'), join('nghttp2', 'nghttp2ver.h'))}`,
    `-DZIO_CODEC_INCLUDES=${[
      outInclude('libz-ng-sys', 'include', 'zlib-ng.h'),
      crateInclude('brotlic-sys', join('brotli', 'c', 'include'), join('brotli', 'encode.h')),
      crateInclude('zstd-sys', join('zstd', 'lib'), 'zstd.h'),
    ].join(';')}`,
  ];
}
