#!/usr/bin/env node
// prepublishOnly of @zero-io/core-linux-*: refuses to publish a platform package without its
// engine, with an engine for another machine, or one that needs a glibc above the floor.
// Run from the package's directory (npm/pnpm publish do that).
import { execFileSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, readSync, closeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = process.cwd();
const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'));
const arch = pkg.cpu?.[0];
const file = join(dir, 'zero_io.node');
const refuse = (why) => {
  console.error(`${pkg.name}: not publishing: ${why}`);
  process.exit(1);
};
if (!existsSync(file)) refuse(`${file} is missing; build it first: node tooling/build-prebuilt.mjs --arch ${arch}`);
const head = Buffer.alloc(20);
const fd = openSync(file, 'r');
readSync(fd, head, 0, 20, 0);
closeSync(fd);
const machine = head.readUInt16LE(18);
const want = { x64: 0x3e, arm64: 0xb7 }[arch];
if (head.readUInt32BE(0) !== 0x7f454c46 || machine !== want) {
  refuse(`zero_io.node is not an ELF shared object for ${arch} (e_machine 0x${machine.toString(16)})`);
}
const core = JSON.parse(readFileSync(join(dir, '..', 'core', 'package.json'), 'utf8'));
if (core.version !== pkg.version) refuse(`version ${pkg.version} differs from @zero-io/core ${core.version} (one fixed group)`);
if (!readFileSync(file).includes(Buffer.from(`zero-io-engine-version=${pkg.version}\0`))) {
  refuse(`zero_io.node does not carry version ${pkg.version}; rebuild it: node tooling/build-prebuilt.mjs --arch ${arch}`);
}
const floor = join(dirname(fileURLToPath(import.meta.url)), 'glibc-floor.mjs');
try {
  execFileSync(process.execPath, [floor, '--floor', '2.28', file], { stdio: 'inherit' });
} catch {
  refuse('the engine needs a glibc above the 2.28 floor');
}
console.log(`${pkg.name}@${pkg.version}: zero_io.node for ${arch} checked`);
