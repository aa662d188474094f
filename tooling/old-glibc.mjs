#!/usr/bin/env node
// An older glibc to load the published engine against (issue 14, "Old glibc"): Debian 11's
// libc6 2.31 with its libstdc++6 and libgcc-s1, downloaded with apt-get from deb.debian.org
// (a private apt configuration: nothing on this system changes) and unpacked into
// ZERO_IO_CACHE/bullseye-libc/root. Debian 10 (glibc 2.28, the floor itself) is no longer on
// deb.debian.org, so 2.31 is the oldest glibc the registries here serve.
//
// Node runs on it through that glibc's own dynamic loader:
//   <root>/lib/x86_64-linux-gnu/ld-2.31.so --library-path <root>/lib/x86_64-linux-gnu:<root>/usr/lib/x86_64-linux-gnu node ...
// and every library it loads (the engine too) binds to glibc 2.31.
//
//   node tooling/old-glibc.mjs      prints the root directory (fetching it once)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const OLD_GLIBC = '2.31';

/** The unpacked Debian 11 root, fetched on first use; throws with the reason when it cannot be had. */
export function oldGlibcRoot(cache = process.env.ZERO_IO_CACHE ?? join(homedir(), '.cache', 'zero-io')) {
  const base = join(cache, 'bullseye-libc');
  const root = join(base, 'root');
  const loader = join(root, 'lib', 'x86_64-linux-gnu', `ld-${OLD_GLIBC}.so`);
  if (existsSync(loader)) return root;
  const apt = join(base, 'apt');
  rmSync(base, { recursive: true, force: true });
  for (const d of ['lists/partial', 'cache/archives/partial', 'debs']) mkdirSync(join(apt, d), { recursive: true });
  writeFileSync(join(apt, 'sources.list'),
    'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian bullseye main\n');
  writeFileSync(join(apt, 'status'), '');
  const o = [
    `Dir::Etc::SourceList=${join(apt, 'sources.list')}`, 'Dir::Etc::SourceParts=/dev/null',
    `Dir::State::Lists=${join(apt, 'lists')}`, `Dir::State::status=${join(apt, 'status')}`,
    `Dir::Cache=${join(apt, 'cache')}`, 'APT::Architecture=amd64', 'APT::Architectures=amd64',
    'Debug::NoLocking=1', 'APT::Sandbox::User=root',
  ].flatMap((x) => ['-o', x]);
  execFileSync('apt-get', [...o, '-qq', 'update'], { stdio: ['ignore', 'ignore', 'inherit'] });
  const debs = join(apt, 'debs');
  execFileSync('apt-get', [...o, '-qq', 'download', 'libc6', 'libstdc++6', 'libgcc-s1'], { cwd: debs, stdio: ['ignore', 'ignore', 'inherit'] });
  const tmp = `${root}.tmp`;
  for (const d of readdirSync(debs).filter((f) => f.endsWith('.deb'))) execFileSync('dpkg-deb', ['-x', join(debs, d), tmp]);
  renameSync(tmp, root);
  if (!existsSync(loader)) throw new Error(`old-glibc: ${loader} is not in Debian 11's libc6 any more`);
  return root;
}

/** argv prefix that runs `node` on the old glibc. */
export function onOldGlibc(root, node = process.execPath) {
  const lib = join(root, 'lib', 'x86_64-linux-gnu');
  return [join(lib, `ld-${OLD_GLIBC}.so`), '--library-path', `${lib}:${join(root, 'usr', 'lib', 'x86_64-linux-gnu')}`, node];
}

if (process.argv[1] === fileURLToPath(import.meta.url)) console.log(oldGlibcRoot());
