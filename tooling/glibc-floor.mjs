#!/usr/bin/env node
// Prints the newest glibc (GLIBC_x.y) and libstdc++ (GLIBCXX_x.y.z) symbol versions a native
// binary needs, read from its dynamic symbol table (objdump -T), and with --floor x.y fails
// (exit 1) when it needs a glibc newer than the floor or links libstdc++ dynamically at all
// (issue 14: published engines target glibc 2.28 with -static-libstdc++).
//   node tooling/glibc-floor.mjs [--floor 2.28] [file.node ...]   (default: core's local build)
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
let floor = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--floor') floor = args[++i];
  else files.push(args[i]);
}
if (files.length === 0) files.push(join(root, 'packages', 'core', 'prebuilds', `linux-${process.arch}`, 'zero_io.node'));

const cmp = (a, b) => {
  const x = a.split('.').map(Number), y = b.split('.').map(Number);
  for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? 0) !== (y[i] ?? 0)) return (x[i] ?? 0) - (y[i] ?? 0);
  return 0;
};
const newest = (list) => list.sort(cmp).at(-1) ?? null;

let failed = false;
for (const f of files) {
  if (!existsSync(f)) {
    console.error(`glibc-floor: ${f} does not exist (build it: node tooling/build-native.mjs)`);
    process.exit(2);
  }
  const syms = execFileSync('objdump', ['-T', f], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const glibc = newest([...syms.matchAll(/\bGLIBC_([\d.]+)/g)].map((m) => m[1]));
  const cxx = newest([...syms.matchAll(/\bGLIBCXX_([\d.]+)/g)].map((m) => m[1]));
  const over = floor !== null && glibc !== null && cmp(glibc, floor) > 0;
  const dynCxx = floor !== null && cxx !== null;
  console.log(`${f}: needs GLIBC_${glibc ?? '-'}${cxx ? `, GLIBCXX_${cxx} (libstdc++ linked dynamically)` : ''}` +
    (floor === null ? '' : over || dynCxx ? `  — ABOVE the floor ${floor}${dynCxx ? ' / libstdc++ must be static' : ''}` : `  — within the floor ${floor}`));
  if (over || dynCxx) failed = true;
}
process.exit(failed ? 1 : 0);
